//! The SQL text of the hot-path writes (decision batches and audit appends), shared by the
//! multi-row sqlx statements of both backends ([`crate::sql`], [`crate::agents_sql`]), the
//! synchronous SQLite batch ([`crate::sqlite_batch`]) and the PostgreSQL array batch
//! ([`crate::postgres_batch`]), so they cannot drift apart.
//!
//! The `*_INTO` prefixes end with the column list and a space; callers append `VALUES ...` and,
//! where given, the matching `*_ON_CONFLICT` suffix. The `PG_*` statements take one array per
//! column and name the same columns in the same order as their `*_INTO` counterparts.

/// Nonce claims; with [`NONCE_ON_CONFLICT`] a replay inserts nothing.
pub(crate) const NONCE_INTO: &str =
    "INSERT INTO agent_nonces (signed_at, org_id, agent_id, nonce, expires_at) ";
pub(crate) const NONCE_ON_CONFLICT: &str = " ON CONFLICT DO NOTHING";

/// Decision rows (14 columns).
pub(crate) const ACTION_INTO: &str = "INSERT INTO action_decisions (id, org_id, agent_id, capability, resource, context, \
     risk_level, status, reason, matched_policies, approvers, policy_version, created_at, expires_at) ";

/// An approved decision's reported outcome (binds: org, id, agent, result, at, detail); one row
/// changed when it applied.
pub(crate) const ACTION_RESULT_UPDATE: &str = "UPDATE action_decisions SET result = $4, result_at = $5, result_detail = $6 \
     WHERE org_id = $1 AND id = $2 AND agent_id = $3 AND status = 'approved' AND result IS NULL";

/// Cache invalidation events (4 columns).
pub(crate) const CACHE_EVENT_INTO: &str = "INSERT INTO cache_events (org_id, kind, key, at) ";

/// Per-(agent, day) trust evidence counters (12 columns), added up by [`ACTIVITY_ON_CONFLICT`].
pub(crate) const ACTIVITY_INTO: &str = "INSERT INTO agent_activity (agent_id, day, org_id, decisions, violations, results_ok, \
     results_failed, key_proofs, key_proof_failures, challenges_passed, last_key_proof_at, last_activity_at) ";
pub(crate) const ACTIVITY_ON_CONFLICT: &str = " ON CONFLICT (agent_id, day) DO UPDATE SET \
     decisions = agent_activity.decisions + excluded.decisions, \
     violations = agent_activity.violations + excluded.violations, \
     results_ok = agent_activity.results_ok + excluded.results_ok, \
     results_failed = agent_activity.results_failed + excluded.results_failed, \
     key_proofs = agent_activity.key_proofs + excluded.key_proofs, \
     key_proof_failures = agent_activity.key_proof_failures + excluded.key_proof_failures, \
     challenges_passed = agent_activity.challenges_passed + excluded.challenges_passed, \
     last_key_proof_at = CASE WHEN agent_activity.last_key_proof_at IS NULL \
       OR excluded.last_key_proof_at > agent_activity.last_key_proof_at \
       THEN COALESCE(excluded.last_key_proof_at, agent_activity.last_key_proof_at) \
       ELSE agent_activity.last_key_proof_at END, \
     last_activity_at = CASE WHEN agent_activity.last_activity_at IS NULL \
       OR excluded.last_activity_at > agent_activity.last_activity_at \
       THEN COALESCE(excluded.last_activity_at, agent_activity.last_activity_at) \
       ELSE agent_activity.last_activity_at END";

/// Locks (creating if missing) a chain's head and returns `(size, head_hash, frontier)`
/// (binds: chain, zero hash, empty frontier, updated_at). The first write of an append.
pub(crate) const AUDIT_HEAD_LOCK: &str = "INSERT INTO audit_heads (org_id, size, head_hash, frontier, updated_at) \
     VALUES ($1, 0, $2, $3, $4) ON CONFLICT (org_id) DO UPDATE SET size = audit_heads.size \
     RETURNING size, head_hash, frontier";

/// Chain entries (11 columns).
pub(crate) const AUDIT_ENTRY_INTO: &str = "INSERT INTO audit_entries (id, org_id, at, event_type, actor, subject, payload, \
     client_addr, seq, prev_hash, hash) ";

/// Closed Merkle subtrees (5 columns: org, [`closed_at`], level, idx, hash).
pub(crate) const AUDIT_NODE_INTO: &str =
    "INSERT INTO audit_nodes (org_id, closed_at, level, idx, hash) ";

/// The key column of subtree `(level, idx)`: the log size whose append closed it,
/// `(idx + 1) << level` (the tables' CHECK). Nodes closed by one batch of appends have adjacent
/// keys, so they are written to the end of one key range.
pub(crate) fn closed_at(level: u8, idx: u64) -> i64 {
    (idx.saturating_add(1) << level) as i64
}

/// The head after an append (binds: chain, size, head_hash, frontier, updated_at).
pub(crate) const AUDIT_HEAD_UPDATE: &str = "UPDATE audit_heads SET size = $2, head_hash = $3, frontier = $4, updated_at = $5 WHERE org_id = $1";

/// PostgreSQL: a batch's nonce claims from arrays (binds: signed_at, org, agent, nonce,
/// expires_at), inserted in array order — the callers' key order, the lock order two writers
/// share (see [`crate::postgres_batch`]) — and returning the fresh ones. One statement text for
/// every batch size, so each connection parses and plans it once.
pub(crate) const PG_NONCE_CLAIMS: &str = "INSERT INTO agent_nonces (signed_at, org_id, agent_id, nonce, expires_at) \
     SELECT s, o, a, n, e FROM UNNEST($1::int8[], $2::uuid[], $3::text[], $4::text[], $5::int8[]) \
     WITH ORDINALITY AS u(s, o, a, n, e, i) ORDER BY i \
     ON CONFLICT DO NOTHING RETURNING signed_at, org_id, agent_id, nonce";

/// PostgreSQL: a batch's decision rows from arrays (the 14 columns of [`ACTION_INTO`], in order).
pub(crate) const PG_ACTIONS: &str = "INSERT INTO action_decisions (id, org_id, agent_id, capability, resource, context, \
     risk_level, status, reason, matched_policies, approvers, policy_version, created_at, expires_at) \
     SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
     $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::int8[], $14::int8[])";

/// PostgreSQL: a batch's trust counters from arrays (the 12 columns of [`ACTIVITY_INTO`], in
/// order), upserted in array order — ascending (agent, day), the lock order of every writer.
pub(crate) const PG_ACTIVITY: &str = "INSERT INTO agent_activity (agent_id, day, org_id, decisions, violations, results_ok, \
     results_failed, key_proofs, key_proof_failures, challenges_passed, last_key_proof_at, last_activity_at) \
     SELECT a, d, o, n1, n2, n3, n4, n5, n6, n7, t1, t2 FROM UNNEST($1::text[], $2::int8[], $3::uuid[], $4::int8[], \
     $5::int8[], $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::int8[]) \
     WITH ORDINALITY AS u(a, d, o, n1, n2, n3, n4, n5, n6, n7, t1, t2, i) ORDER BY i";

/// PostgreSQL: one chain's appended entries, closed subtrees and new head in one statement
/// (binds: chain; the entries' id, at, event_type, actor, subject, payload, client_addr, seq,
/// prev_hash, hash arrays; the nodes' closed_at, level, idx, hash arrays; the head's size,
/// head_hash, frontier, updated_at). Run after [`AUDIT_HEAD_LOCK`] in the same transaction.
pub(crate) const PG_CHAIN_APPEND: &str = "WITH e AS (INSERT INTO audit_entries (id, org_id, at, event_type, actor, subject, \
     payload, client_addr, seq, prev_hash, hash) \
     SELECT id, $1, at, ev, ac, su, pa, ca, sq, pr, ha FROM UNNEST($2::uuid[], $3::int8[], $4::text[], $5::text[], \
     $6::text[], $7::text[], $8::text[], $9::int8[], $10::bytea[], $11::bytea[]) AS u(id, at, ev, ac, su, pa, ca, sq, pr, ha)), \
     n AS (INSERT INTO audit_nodes (org_id, closed_at, level, idx, hash) \
     SELECT $1, c, l, x, h FROM UNNEST($12::int8[], $13::int8[], $14::int8[], $15::bytea[]) AS v(c, l, x, h)) \
     UPDATE audit_heads SET size = $16, head_hash = $17, frontier = $18, updated_at = $19 WHERE org_id = $1";

/// `VALUES ($1, ..., $n)`: one row of `n` numbered parameters.
pub(crate) fn values_row(n: usize) -> String {
    let params: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
    format!("VALUES ({})", params.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subtree_closes_at_the_size_that_completes_it() {
        assert_eq!(closed_at(0, 0), 1); // leaf 0 closes at size 1
        assert_eq!(closed_at(0, 6), 7);
        assert_eq!(closed_at(1, 0), 2); // leaves 0..2
        assert_eq!(closed_at(2, 1), 8); // leaves 4..8
        assert_eq!(closed_at(3, 2), 24); // leaves 16..24
    }

    /// The table and column list of an `INSERT INTO table (columns)` text.
    fn insert_target(sql: &str) -> (String, Vec<String>) {
        let rest = sql.trim_start().strip_prefix("INSERT INTO ").expect(sql);
        let (table, rest) = rest.split_once(" (").expect(sql);
        let (cols, _) = rest.split_once(')').expect(sql);
        (
            table.to_owned(),
            cols.split(',').map(|c| c.trim().to_owned()).collect(),
        )
    }

    #[test]
    fn array_statements_write_the_columns_of_their_row_statements() {
        let chain = PG_CHAIN_APPEND.strip_prefix("WITH e AS (").unwrap();
        let nodes = &PG_CHAIN_APPEND[PG_CHAIN_APPEND.find("n AS (").unwrap() + 6..];
        for (array, rows) in [
            (PG_NONCE_CLAIMS, NONCE_INTO),
            (PG_ACTIONS, ACTION_INTO),
            (PG_ACTIVITY, ACTIVITY_INTO),
            (chain, AUDIT_ENTRY_INTO),
            (nodes, AUDIT_NODE_INTO),
        ] {
            assert_eq!(insert_target(array), insert_target(rows), "{array}");
        }
        // One array per column (the chain statement adds the chain id and the head's four).
        for (sql, cols) in [(PG_NONCE_CLAIMS, 5), (PG_ACTIONS, 14), (PG_ACTIVITY, 12)] {
            assert_eq!(sql.matches("[]").count(), cols, "{sql}");
        }
        assert_eq!(PG_CHAIN_APPEND.matches("[]").count(), 10 + 4);
    }

    #[test]
    fn one_row_of_numbered_parameters() {
        assert_eq!(values_row(1), "VALUES ($1)");
        assert_eq!(values_row(4), "VALUES ($1, $2, $3, $4)");
    }
}
