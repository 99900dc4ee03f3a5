-- Trust evidence kept incrementally (SQLite flavour; keep in step with
-- migrations/postgres/20260402000000_agent_activity.sql). See docs/TRUST.md "Server evidence".

-- Per-agent daily counters, upserted by the audit append (`append_audits_on`) in the transaction
-- of the events they count, so they commit and roll back with them. `day` = Unix ms / 86 400 000
-- (UTC day). `last_*_at` are the newest times inside the day (Unix ms). Reading an agent's
-- evidence reads its rows of the last 90 days (primary-key range scan) and its newest row with a
-- key proof / with activity (backward scan stopping at the first hit). No foreign
-- keys: an audit record may name an agent id the server never stored (e.g. a failed lookup).
CREATE TABLE agent_activity (
    agent_id            TEXT NOT NULL,
    day                 INTEGER NOT NULL,
    org_id              BLOB NOT NULL,
    decisions           INTEGER NOT NULL DEFAULT 0,
    violations          INTEGER NOT NULL DEFAULT 0,
    results_ok          INTEGER NOT NULL DEFAULT 0,
    results_failed      INTEGER NOT NULL DEFAULT 0,
    key_proofs          INTEGER NOT NULL DEFAULT 0,
    key_proof_failures  INTEGER NOT NULL DEFAULT 0,
    challenges_passed   INTEGER NOT NULL DEFAULT 0,
    last_key_proof_at   INTEGER,
    last_activity_at    INTEGER,
    PRIMARY KEY (agent_id, day)
) STRICT;

-- Every change of an agent's published trust score (docs/TRUST.md "History"). `factors` is the
-- JSON object {factor key: value or null} the new score was computed from (the next change's
-- reason is the difference to it).
CREATE TABLE trust_history (
    id             BLOB PRIMARY KEY,
    org_id         BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    agent_id       TEXT NOT NULL,
    at             INTEGER NOT NULL,
    previous_score REAL,
    new_score      REAL,
    delta          REAL,
    level          TEXT NOT NULL,
    reason         TEXT NOT NULL,
    actor          TEXT NOT NULL,
    factors        TEXT NOT NULL
) STRICT;
CREATE INDEX trust_history_agent ON trust_history (org_id, agent_id, id);
