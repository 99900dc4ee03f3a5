-- Security monitoring (seed Layer 4), SQLite flavour; keep in step with
-- migrations/postgres/20260501000000_monitoring.sql. See docs/monitoring.md.

-- The monitor's position in each organization's audit log: entries with seq < next_seq were
-- analysed. Moved by compare-and-swap in the transaction that stores what they produced. No
-- foreign key: the log of records without an organization has a chain (and a cursor) too.
CREATE TABLE monitor_cursors (
    org_id     BLOB PRIMARY KEY,
    next_seq   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- Per-agent detector state: the anomaly baseline and the correlator (JSON documents).
CREATE TABLE agent_monitor (
    org_id       BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    agent_id     TEXT NOT NULL,
    observations INTEGER NOT NULL,
    baseline     TEXT NOT NULL,
    correlator   TEXT NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (org_id, agent_id)
) STRICT;

-- Append-only anomaly findings, with the statistic, baseline and threshold that fired.
CREATE TABLE anomalies (
    id        BLOB PRIMARY KEY,
    org_id    BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    agent_id  TEXT NOT NULL,
    detector  TEXT NOT NULL,
    severity  TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    weight    REAL NOT NULL,
    at        INTEGER NOT NULL,
    statistic REAL NOT NULL,
    baseline  REAL NOT NULL,
    threshold REAL NOT NULL,
    message   TEXT NOT NULL,
    event_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX anomalies_agent ON anomalies (org_id, agent_id, at);
CREATE INDEX anomalies_org ON anomalies (org_id, id);

CREATE TABLE incidents (
    id         BLOB PRIMARY KEY,
    org_id     BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    agent_id   TEXT NOT NULL,
    rule       TEXT NOT NULL,
    severity   TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    state      TEXT NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
    first_at   INTEGER NOT NULL,
    last_at    INTEGER NOT NULL,
    members    TEXT NOT NULL,
    summary    TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT
) STRICT;
CREATE INDEX incidents_org ON incidents (org_id, id);

CREATE TABLE alerts (
    id         BLOB PRIMARY KEY,
    org_id     BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    severity   TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    kind       TEXT NOT NULL,
    title      TEXT NOT NULL,
    agent_id   TEXT,
    details    TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT
) STRICT;
CREATE INDEX alerts_org ON alerts (org_id, id);

-- `secret` is sealed by the server (AES-256-GCM, context `alert_route:<id>`).
CREATE TABLE alert_routes (
    id           BLOB PRIMARY KEY,
    org_id       BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    min_severity TEXT NOT NULL CHECK (min_severity IN ('low', 'medium', 'high', 'critical')),
    enabled      INTEGER NOT NULL,
    channel      TEXT NOT NULL CHECK (channel IN ('webhook', 'email')),
    target       TEXT NOT NULL,
    secret       BLOB,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX alert_routes_org ON alert_routes (org_id, id);

CREATE TABLE alert_deliveries (
    id               BLOB PRIMARY KEY,
    org_id           BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    alert_id         BLOB NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    route_id         BLOB NOT NULL REFERENCES alert_routes(id) ON DELETE CASCADE,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts         INTEGER NOT NULL,
    next_attempt_at  INTEGER NOT NULL,
    lease_until      INTEGER NOT NULL,
    last_error       TEXT,
    last_http_status INTEGER,
    updated_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX alert_deliveries_due ON alert_deliveries (status, next_attempt_at);
CREATE INDEX alert_deliveries_alert ON alert_deliveries (org_id, alert_id);

-- The delivery log: one row per attempt.
CREATE TABLE alert_delivery_attempts (
    id          BLOB PRIMARY KEY,
    org_id      BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    delivery_id BLOB NOT NULL REFERENCES alert_deliveries(id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    ok          INTEGER NOT NULL,
    http_status INTEGER,
    error       TEXT
) STRICT;
CREATE INDEX alert_delivery_attempts_delivery ON alert_delivery_attempts (delivery_id, attempt);
