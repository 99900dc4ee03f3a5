-- The replay cache keyed by the request's signed timestamp first (docs/agents.md "Replay
-- rules"). Claims land on the pages of the current second and pruning removes a contiguous
-- leading range, where the old key (org_id, agent_id, nonce) put every claim and every prune on
-- a random page of the whole table (docs/BENCHMARKS.md). A replay carries the same signed
-- timestamp, so it still conflicts on the key, on every replica. The expiry index is no longer
-- needed: pruning ranges over `signed_at`.
-- Keep in step with migrations/postgres/20261208000000_nonce_key_by_time.sql.
CREATE TABLE agent_nonces_by_time (
    signed_at  INTEGER NOT NULL, -- the request's X-AIM-Timestamp (Unix seconds, as signed)
    org_id     BLOB NOT NULL,
    agent_id   TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    expires_at INTEGER NOT NULL, -- Unix ms: signed_at + the claiming server's window
    PRIMARY KEY (signed_at, org_id, agent_id, nonce)
) STRICT, WITHOUT ROWID;
-- Rows claimed before this migration did not keep their timestamp: it is derived assuming the
-- default 300-s window (exact for servers that ran with it).
INSERT OR IGNORE INTO agent_nonces_by_time (signed_at, org_id, agent_id, nonce, expires_at)
    SELECT (expires_at - 300000) / 1000, org_id, agent_id, nonce, expires_at FROM agent_nonces;
DROP TABLE agent_nonces;
ALTER TABLE agent_nonces_by_time RENAME TO agent_nonces;
