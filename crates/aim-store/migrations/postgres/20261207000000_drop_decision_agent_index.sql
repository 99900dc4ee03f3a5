-- `action_decisions_agent (org_id, agent_id, created_at)` served no query the newer
-- `action_decisions_agent_status (org_id, agent_id, status, created_at)` does not serve with its
-- (org_id, agent_id) prefix (the per-agent listing sorts by id either way), yet every decision
-- paid for it: one more randomly placed index leaf written per decision (docs/BENCHMARKS.md).
DROP INDEX IF EXISTS action_decisions_agent;
