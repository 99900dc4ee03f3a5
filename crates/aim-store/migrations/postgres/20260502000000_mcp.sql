-- MCP servers on the AIM server (docs/MCP.md "Server"), PostgreSQL flavour; keep in step with
-- migrations/sqlite/20260502000000_mcp.sql.

-- Registered MCP servers. `public_key`: the server's own Ed25519 key (32 raw bytes) when it signs
-- its manifests. `pinned_*`: the manifest a human (or the server's own verified signature) pinned;
-- `drift_*`: the newest attestation that differed from the pin (cleared by the next pin).
CREATE TABLE mcp_servers (
    id              UUID PRIMARY KEY,
    org_id          UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    public_key      BYTEA,
    pinned_hash     TEXT,
    pinned_manifest TEXT,
    pinned_signed   BOOLEAN NOT NULL DEFAULT FALSE,
    pinned_at       BIGINT,
    pinned_by       TEXT,
    drift_at        BIGINT,
    drift_hash      TEXT,
    drift_severity  TEXT,
    created_at      BIGINT NOT NULL,
    created_by      TEXT NOT NULL,
    UNIQUE (org_id, name)
);

-- Agents' signed statements "I connected to this server and it showed me this manifest", written
-- in the transaction of the agent's signed request (with its nonce and audit record).
CREATE TABLE mcp_attestations (
    id            UUID PRIMARY KEY,
    org_id        UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    server_id     UUID NOT NULL REFERENCES mcp_servers(id) ON DELETE CASCADE,
    agent_id      TEXT COLLATE "C" NOT NULL,
    manifest_hash TEXT NOT NULL,
    capabilities  TEXT NOT NULL,
    matches_pin   BOOLEAN,
    at            BIGINT NOT NULL
);
CREATE INDEX mcp_attestations_server ON mcp_attestations (server_id, agent_id, at);

-- Connection patterns: uses of a server by an agent per UTC day (`day` = Unix ms / 86 400 000).
CREATE TABLE mcp_usage (
    org_id    UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    agent_id  TEXT COLLATE "C" NOT NULL,
    server_id UUID NOT NULL REFERENCES mcp_servers(id) ON DELETE CASCADE,
    day       BIGINT NOT NULL,
    uses      BIGINT NOT NULL,
    first_at  BIGINT NOT NULL,
    last_at   BIGINT NOT NULL,
    PRIMARY KEY (agent_id, server_id, day)
);
