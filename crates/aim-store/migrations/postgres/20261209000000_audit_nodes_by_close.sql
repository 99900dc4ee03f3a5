-- Merkle nodes keyed by the log size whose append closed them, so one batch's new nodes land on
-- the last page of one key range instead of one place per level (see
-- migrations/sqlite/20261209000000_audit_nodes_by_close.sql, kept in step with this one).
-- closed_at = (idx + 1) << level; the CHECK keeps the columns in step.
CREATE TABLE audit_nodes_by_close (
    org_id    UUID NOT NULL,
    closed_at BIGINT NOT NULL, -- (idx + 1) << level: the log size at which the subtree closed
    level     BIGINT NOT NULL,
    idx       BIGINT NOT NULL,
    hash      BYTEA NOT NULL,
    PRIMARY KEY (org_id, closed_at, level),
    CHECK (closed_at = (idx + 1) << level::integer)
);
INSERT INTO audit_nodes_by_close (org_id, closed_at, level, idx, hash)
    SELECT org_id, (idx + 1) << level::integer, level, idx, hash FROM audit_nodes;
DROP TABLE audit_nodes;
ALTER TABLE audit_nodes_by_close RENAME TO audit_nodes;
ALTER INDEX audit_nodes_by_close_pkey RENAME TO audit_nodes_pkey;
