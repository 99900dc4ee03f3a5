-- The monitor's per-agent detector state (two JSON documents of a few KB each, rewritten for
-- every agent a monitor page touches) is compressed with lz4 instead of the default pglz.
--
-- Under the decision load pglz compression of these updates was ~5 % of the database's CPU
-- (docs/BENCHMARKS.md, 2026-12-07 afternoon); lz4 compresses several times faster at a similar
-- ratio for JSON. A PostgreSQL built without lz4 keeps pglz: the change is an optimisation, never
-- a reason for the migration to fail. Existing values keep their compression until rewritten
-- (each monitor page rewrites the states it touches).
DO $$
BEGIN
    ALTER TABLE agent_monitor ALTER COLUMN baseline SET COMPRESSION lz4;
    ALTER TABLE agent_monitor ALTER COLUMN correlator SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 is not available in this PostgreSQL build; agent_monitor keeps pglz';
END
$$;
