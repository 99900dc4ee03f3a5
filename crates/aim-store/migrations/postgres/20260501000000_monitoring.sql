-- Security monitoring (seed Layer 4), PostgreSQL flavour; keep in step with
-- migrations/sqlite/20260501000000_monitoring.sql. See docs/monitoring.md.

-- The monitor's position in each organization's audit log: entries with seq < next_seq were
-- analysed. Moved by compare-and-swap in the transaction that stores what they produced. No
-- foreign key: the log of records without an organization has a chain (and a cursor) too.
CREATE TABLE monitor_cursors (
    org_id     UUID PRIMARY KEY,
    next_seq   BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Per-agent detector state: the anomaly baseline and the correlator (JSON documents).
CREATE TABLE agent_monitor (
    org_id       UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    agent_id     TEXT COLLATE "C" NOT NULL,
    observations BIGINT NOT NULL,
    baseline     TEXT NOT NULL,
    correlator   TEXT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (org_id, agent_id)
);

-- Append-only anomaly findings, with the statistic, baseline and threshold that fired.
CREATE TABLE anomalies (
    id        UUID PRIMARY KEY,
    org_id    UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    agent_id  TEXT NOT NULL,
    detector  TEXT NOT NULL,
    severity  TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    weight    DOUBLE PRECISION NOT NULL,
    at        BIGINT NOT NULL,
    statistic DOUBLE PRECISION NOT NULL,
    baseline  DOUBLE PRECISION NOT NULL,
    threshold DOUBLE PRECISION NOT NULL,
    message   TEXT NOT NULL,
    event_seq BIGINT NOT NULL
);
CREATE INDEX anomalies_agent ON anomalies (org_id, agent_id, at);
CREATE INDEX anomalies_org ON anomalies (org_id, id);

CREATE TABLE incidents (
    id         UUID PRIMARY KEY,
    org_id     UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    agent_id   TEXT NOT NULL,
    rule       TEXT NOT NULL,
    severity   TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    state      TEXT NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
    first_at   BIGINT NOT NULL,
    last_at    BIGINT NOT NULL,
    members    TEXT NOT NULL,
    summary    TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT
);
CREATE INDEX incidents_org ON incidents (org_id, id);

CREATE TABLE alerts (
    id         UUID PRIMARY KEY,
    org_id     UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    severity   TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    kind       TEXT NOT NULL,
    title      TEXT NOT NULL,
    agent_id   TEXT,
    details    TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT
);
CREATE INDEX alerts_org ON alerts (org_id, id);

-- `secret` is sealed by the server (AES-256-GCM, context `alert_route:<id>`).
CREATE TABLE alert_routes (
    id           UUID PRIMARY KEY,
    org_id       UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    min_severity TEXT NOT NULL CHECK (min_severity IN ('low', 'medium', 'high', 'critical')),
    enabled      BOOLEAN NOT NULL,
    channel      TEXT NOT NULL CHECK (channel IN ('webhook', 'email')),
    target       TEXT NOT NULL,
    secret       BYTEA,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX alert_routes_org ON alert_routes (org_id, id);

CREATE TABLE alert_deliveries (
    id               UUID PRIMARY KEY,
    org_id           UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    alert_id         UUID NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    route_id         UUID NOT NULL REFERENCES alert_routes(id) ON DELETE CASCADE,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts         BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    lease_until      BIGINT NOT NULL,
    last_error       TEXT,
    last_http_status BIGINT,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (status, next_attempt_at);
CREATE INDEX alert_deliveries_alert ON alert_deliveries (org_id, alert_id);

-- The delivery log: one row per attempt.
CREATE TABLE alert_delivery_attempts (
    id          UUID PRIMARY KEY,
    org_id      UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    delivery_id UUID NOT NULL REFERENCES alert_deliveries(id) ON DELETE CASCADE,
    attempt     BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    ok          BOOLEAN NOT NULL,
    http_status BIGINT,
    error       TEXT
);
CREATE INDEX alert_delivery_attempts_delivery ON alert_delivery_attempts (delivery_id, attempt);
