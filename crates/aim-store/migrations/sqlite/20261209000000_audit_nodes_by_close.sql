-- Merkle nodes keyed by the log size whose append closed them, so one batch's new nodes land on
-- the last page of one key range. Under the old key (org_id, level, idx) every level appended at
-- its own place: a batch of appends rewrote about one page per level it touched (about ten
-- WAL frames of 4 KiB per decision batch, docs/BENCHMARKS.md). Lookups by (level, idx) become
-- lookups by (closed_at, level), closed_at = (idx + 1) << level (the CHECK keeps the columns in step).
-- Keep in step with migrations/postgres/20261209000000_audit_nodes_by_close.sql.
CREATE TABLE audit_nodes_by_close (
    org_id    BLOB NOT NULL,
    closed_at INTEGER NOT NULL, -- (idx + 1) << level: the log size at which the subtree closed
    level     INTEGER NOT NULL,
    idx       INTEGER NOT NULL,
    hash      BLOB NOT NULL,
    PRIMARY KEY (org_id, closed_at, level),
    CHECK (closed_at = (idx + 1) << level)
) STRICT, WITHOUT ROWID;
INSERT INTO audit_nodes_by_close (org_id, closed_at, level, idx, hash)
    SELECT org_id, (idx + 1) << level, level, idx, hash FROM audit_nodes;
DROP TABLE audit_nodes;
ALTER TABLE audit_nodes_by_close RENAME TO audit_nodes;
