-- The replay cache keyed by the request's signed timestamp first (docs/agents.md "Replay
-- rules"). Claims land on the index pages of the current second and pruning removes a
-- contiguous leading range, where the old key (org_id, agent_id, nonce) put every claim and every
-- prune on a random index page (docs/BENCHMARKS.md). A replay carries the same signed timestamp,
-- so it still conflicts on the key, on every replica. The expiry index is no longer needed:
-- pruning ranges over `signed_at`.
-- Keep in step with migrations/sqlite/20261208000000_nonce_key_by_time.sql.
CREATE TABLE agent_nonces_by_time (
    signed_at  BIGINT NOT NULL, -- the request's X-AIM-Timestamp (Unix seconds, as signed)
    org_id     UUID NOT NULL,
    agent_id   TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    expires_at BIGINT NOT NULL, -- Unix ms: signed_at + the claiming server's window
    CONSTRAINT agent_nonces_by_time_pkey PRIMARY KEY (signed_at, org_id, agent_id, nonce)
);
-- Rows claimed before this migration did not keep their timestamp: it is derived assuming the
-- default 300-s window (exact for servers that ran with it).
INSERT INTO agent_nonces_by_time (signed_at, org_id, agent_id, nonce, expires_at)
    SELECT (expires_at - 300000) / 1000, org_id, agent_id, nonce, expires_at FROM agent_nonces
    ON CONFLICT DO NOTHING;
DROP TABLE agent_nonces;
ALTER TABLE agent_nonces_by_time RENAME TO agent_nonces;
ALTER TABLE agent_nonces RENAME CONSTRAINT agent_nonces_by_time_pkey TO agent_nonces_pkey;
