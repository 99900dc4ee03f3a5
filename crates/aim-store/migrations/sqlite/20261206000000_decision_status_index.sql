-- The outcome-report evidence of the trust score reads an agent's newest approved decisions
-- (crate::activity::DUE_SAMPLE): one bounded range of this index.
CREATE INDEX action_decisions_agent_status ON action_decisions (org_id, agent_id, status, created_at);
