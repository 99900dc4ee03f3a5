-- Agents, their key history, AIP challenges and the signed-request replay cache (SQLite flavour).
-- Keep in step with migrations/postgres/20260301000000_agents.sql.

-- An agent is named by its self-certifying id (`aim_…`, derived from the inception public key), so
-- the id is unique server-wide; the name is unique per organization. The server stores only public
-- keys. `previous_key` stays valid for signed requests until `previous_key_valid_until` (rotation
-- grace period).
CREATE TABLE agents (
    id                       TEXT PRIMARY KEY,
    org_id                   BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name                     TEXT NOT NULL,
    owner_id                 BLOB REFERENCES users(id) ON DELETE SET NULL,
    status                   TEXT NOT NULL CHECK (status IN ('pending', 'active', 'suspended', 'revoked')),
    capabilities             TEXT NOT NULL,
    public_key               BLOB NOT NULL UNIQUE,
    key_version              INTEGER NOT NULL,
    previous_key             BLOB,
    previous_key_valid_until INTEGER,
    created_at               INTEGER NOT NULL,
    updated_at               INTEGER NOT NULL,
    verified_at              INTEGER,
    revoked_at               INTEGER,
    UNIQUE (org_id, name)
) STRICT;
CREATE INDEX agents_org ON agents (org_id, id);

-- Every key an agent ever had, in order. `valid_until` is the end of the grace period of a
-- retired key.
CREATE TABLE agent_keys (
    agent_id    TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    public_key  BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER,
    valid_until INTEGER,
    PRIMARY KEY (agent_id, version)
) STRICT;

-- AIP challenges issued by this server (any replica). Single use: `used_at` is set by one
-- conditional UPDATE when a response is accepted.
CREATE TABLE agent_challenges (
    nonce      TEXT PRIMARY KEY,
    org_id     BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    agent_id   TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    body       TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
) STRICT;
CREATE INDEX agent_challenges_expiry ON agent_challenges (expires_at);

-- Replay cache of signed agent requests, shared by every replica: a replay is a primary-key
-- conflict. Rows are pruned once `expires_at` (request timestamp + window) has passed.
CREATE TABLE agent_nonces (
    org_id     BLOB NOT NULL,
    agent_id   TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, agent_id, nonce)
) STRICT, WITHOUT ROWID;
CREATE INDEX agent_nonces_expiry ON agent_nonces (expires_at);
