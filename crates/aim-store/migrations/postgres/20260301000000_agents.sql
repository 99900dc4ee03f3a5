-- Agents, their key history, AIP challenges and the signed-request replay cache (PostgreSQL flavour).
-- Keep in step with migrations/sqlite/20260301000000_agents.sql.

-- An agent is named by its self-certifying id (`aim_…`, derived from the inception public key), so
-- the id is unique server-wide; the name is unique per organization. The server stores only public
-- keys. `previous_key` stays valid for signed requests until `previous_key_valid_until` (rotation
-- grace period).
CREATE TABLE agents (
    id                       TEXT COLLATE "C" PRIMARY KEY,
    org_id                   UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name                     TEXT NOT NULL,
    owner_id                 UUID REFERENCES users(id) ON DELETE SET NULL,
    status                   TEXT NOT NULL CHECK (status IN ('pending', 'active', 'suspended', 'revoked')),
    capabilities             TEXT NOT NULL,
    public_key               BYTEA NOT NULL UNIQUE,
    key_version              BIGINT NOT NULL,
    previous_key             BYTEA,
    previous_key_valid_until BIGINT,
    created_at               BIGINT NOT NULL,
    updated_at               BIGINT NOT NULL,
    verified_at              BIGINT,
    revoked_at               BIGINT,
    UNIQUE (org_id, name)
);
CREATE INDEX agents_org ON agents (org_id, id);

-- Every key an agent ever had, in order. `valid_until` is the end of the grace period of a
-- retired key.
CREATE TABLE agent_keys (
    agent_id    TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    version     BIGINT NOT NULL,
    public_key  BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT,
    valid_until BIGINT,
    PRIMARY KEY (agent_id, version)
);

-- AIP challenges issued by this server (any replica). Single use: `used_at` is set by one
-- conditional UPDATE when a response is accepted.
CREATE TABLE agent_challenges (
    nonce      TEXT PRIMARY KEY,
    org_id     UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    agent_id   TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    body       TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX agent_challenges_expiry ON agent_challenges (expires_at);

-- Replay cache of signed agent requests, shared by every replica: a replay is a primary-key
-- conflict. Rows are pruned once `expires_at` (request timestamp + window) has passed.
CREATE TABLE agent_nonces (
    org_id     UUID NOT NULL,
    agent_id   TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, agent_id, nonce)
);
CREATE INDEX agent_nonces_expiry ON agent_nonces (expires_at);
