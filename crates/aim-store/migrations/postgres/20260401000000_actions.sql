-- Action verification: enforcement mode, decisions, capability requests, organization policies and
-- the cache-invalidation log shared by replicas (PostgreSQL flavour).
-- Keep in step with migrations/sqlite/20260401000000_actions.sql.

-- New organizations start in `strict` (zero trust by default).
ALTER TABLE organizations ADD COLUMN enforcement_mode TEXT NOT NULL DEFAULT 'strict'
    CHECK (enforcement_mode IN ('strict', 'monitoring'));

-- One row per action verification. Inserted in the same transaction as the request's nonce claim
-- and audit record (the hot path's single durable write). `expires_at`: for `pending`, the
-- approval deadline; for `approved`, until when the approval may be acted on.
CREATE TABLE action_decisions (
    id               UUID PRIMARY KEY,
    org_id           UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    agent_id         TEXT NOT NULL,
    capability       TEXT NOT NULL,
    resource         TEXT NOT NULL,
    context          TEXT NOT NULL,
    risk_level       TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('approved', 'denied', 'pending', 'expired')),
    reason           TEXT NOT NULL,
    matched_policies TEXT NOT NULL,
    approvers        TEXT NOT NULL,
    policy_version   TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    decided_by       UUID,
    decided_at       BIGINT,
    result           TEXT CHECK (result IN ('success', 'failure')),
    result_at        BIGINT,
    result_detail    TEXT
);
CREATE INDEX action_decisions_agent ON action_decisions (org_id, agent_id, created_at);
CREATE INDEX action_decisions_pending ON action_decisions (status, expires_at) WHERE status = 'pending';

-- Capability requests (the approval queue of capabilities). At most one pending request per
-- agent and capability.
CREATE TABLE capability_requests (
    id           UUID PRIMARY KEY,
    org_id       UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    agent_id     TEXT COLLATE "C" NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    capability   TEXT NOT NULL,
    reason       TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied')),
    requested_by TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    decided_by   UUID,
    decided_at   BIGINT,
    note         TEXT
);
CREATE UNIQUE INDEX capability_requests_one_pending ON capability_requests (agent_id, capability)
    WHERE status = 'pending';
CREATE INDEX capability_requests_org ON capability_requests (org_id, status, created_at);

-- Every version of an organization's policy set; the highest version is in force. Versions are
-- never edited or deleted (an audit trail of what decided when).
CREATE TABLE org_policies (
    org_id     UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    version    BIGINT NOT NULL,
    language   TEXT NOT NULL CHECK (language IN ('cedar', 'governance_yaml')),
    source     TEXT NOT NULL,
    digest     TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, version)
);

-- What cached state changed, written in the transaction of the change: every replica polls the
-- recent rows and evicts (`kind` is 'agent' with `key` = agent id, or 'org' with `key` = org id).
CREATE TABLE cache_events (
    seq    BIGSERIAL PRIMARY KEY,
    org_id UUID NOT NULL,
    kind   TEXT NOT NULL,
    key    TEXT NOT NULL,
    at     BIGINT NOT NULL
);
CREATE INDEX cache_events_at ON cache_events (at);
