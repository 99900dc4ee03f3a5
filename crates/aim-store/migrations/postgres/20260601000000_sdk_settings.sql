-- Per-organization settings of the aim-sdk compatibility routes (docs/COMPATIBILITY.md),
-- PostgreSQL flavour; keep in step with migrations/sqlite/20260601000000_sdk_settings.sql. No row
-- means the defaults: server-generated keys allowed, declared capabilities granted.
CREATE TABLE sdk_settings (
    org_id                    UUID PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    server_generated_keys     BOOLEAN NOT NULL DEFAULT TRUE,
    registration_capabilities TEXT NOT NULL DEFAULT 'grant'
        CHECK (registration_capabilities IN ('grant', 'request'))
);
