-- Trust evidence kept incrementally (PostgreSQL flavour; keep in step with
-- migrations/sqlite/20260402000000_agent_activity.sql). See docs/TRUST.md "Server evidence".

-- Per-agent daily counters, upserted by the audit append (`append_audits_on`) in the transaction
-- of the events they count, so they commit and roll back with them. `day` = Unix ms / 86 400 000
-- (UTC day). `last_*_at` are the newest times inside the day (Unix ms). Reading an agent's
-- evidence reads its rows of the last 90 days (primary-key range scan) and its newest row with a
-- key proof / with activity (backward scan stopping at the first hit). No foreign
-- keys: an audit record may name an agent id the server never stored (e.g. a failed lookup).
CREATE TABLE agent_activity (
    agent_id            TEXT COLLATE "C" NOT NULL,
    day                 BIGINT NOT NULL,
    org_id              UUID NOT NULL,
    decisions           BIGINT NOT NULL DEFAULT 0,
    violations          BIGINT NOT NULL DEFAULT 0,
    results_ok          BIGINT NOT NULL DEFAULT 0,
    results_failed      BIGINT NOT NULL DEFAULT 0,
    key_proofs          BIGINT NOT NULL DEFAULT 0,
    key_proof_failures  BIGINT NOT NULL DEFAULT 0,
    challenges_passed   BIGINT NOT NULL DEFAULT 0,
    last_key_proof_at   BIGINT,
    last_activity_at    BIGINT,
    PRIMARY KEY (agent_id, day)
);

-- Every change of an agent's published trust score (docs/TRUST.md "History"). `factors` is the
-- JSON object {factor key: value or null} the new score was computed from (the next change's
-- reason is the difference to it).
CREATE TABLE trust_history (
    id             UUID PRIMARY KEY,
    org_id         UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    agent_id       TEXT COLLATE "C" NOT NULL,
    at             BIGINT NOT NULL,
    previous_score DOUBLE PRECISION,
    new_score      DOUBLE PRECISION,
    delta          DOUBLE PRECISION,
    level          TEXT NOT NULL,
    reason         TEXT NOT NULL,
    actor          TEXT NOT NULL,
    factors        TEXT NOT NULL
);
CREATE INDEX trust_history_agent ON trust_history (org_id, agent_id, id);
