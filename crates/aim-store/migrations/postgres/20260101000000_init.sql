-- AIM server schema, PostgreSQL flavour. Times are Unix milliseconds (UTC); ids are UUIDv7.
-- Keep in step with migrations/sqlite/20260101000000_init.sql (same tables, columns and indexes).

CREATE TABLE server_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE organizations (
    id                 UUID PRIMARY KEY,
    name               TEXT NOT NULL,
    require_2fa_admins BOOLEAN NOT NULL DEFAULT FALSE,
    created_at         BIGINT NOT NULL
);

CREATE TABLE users (
    id                  UUID PRIMARY KEY,
    org_id              UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    email               TEXT NOT NULL UNIQUE,
    password_hash       TEXT NOT NULL,
    role                TEXT NOT NULL CHECK (role IN ('admin', 'manager', 'member', 'viewer')),
    active              BOOLEAN NOT NULL DEFAULT TRUE,
    must_change_password BOOLEAN NOT NULL DEFAULT FALSE,
    failed_logins       BIGINT NOT NULL DEFAULT 0,
    failed_window_start BIGINT,
    locked_until        BIGINT,
    totp_enabled        BOOLEAN NOT NULL DEFAULT FALSE,
    totp_secret         BYTEA,
    totp_pending_secret BYTEA,
    totp_last_step      BIGINT,
    created_by          UUID,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX users_org_id ON users (org_id, id);

CREATE TABLE sessions (
    id             UUID PRIMARY KEY,
    org_id         UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id        UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at     BIGINT NOT NULL,
    revoked_at     BIGINT,
    revoked_reason TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE refresh_tokens (
    id         UUID PRIMARY KEY,
    session_id UUID NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    token_hash BYTEA NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE recovery_codes (
    id        UUID PRIMARY KEY,
    user_id   UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash BYTEA NOT NULL,
    used_at   BIGINT
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id, code_hash);

CREATE TABLE api_keys (
    id               UUID PRIMARY KEY,
    org_id           UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    owner_id         UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    prefix           TEXT NOT NULL,
    key_hash         BYTEA NOT NULL UNIQUE,
    role             TEXT NOT NULL CHECK (role IN ('admin', 'manager', 'member', 'viewer')),
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT,
    revoked_at       BIGINT,
    last_used_at     BIGINT,
    use_count        BIGINT NOT NULL DEFAULT 0,
    last_client_addr TEXT
);
CREATE INDEX api_keys_org ON api_keys (org_id, id);
CREATE INDEX api_keys_owner ON api_keys (org_id, owner_id, id);

CREATE TABLE jwt_keys (
    kid            TEXT PRIMARY KEY,
    algorithm      TEXT NOT NULL,
    private_sealed BYTEA NOT NULL,
    public_key     BYTEA NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX jwt_keys_created ON jwt_keys (created_at);

-- Security events. The hash chain (seq, prev_hash, hash) is filled in when the server audit log
-- is wired to aim_core::audit; rows are appended in the same transaction as the change.
CREATE TABLE audit_entries (
    id          UUID PRIMARY KEY,
    org_id      UUID,
    seq         BIGINT,
    at          BIGINT NOT NULL,
    event_type  TEXT NOT NULL,
    actor       TEXT NOT NULL,
    subject     TEXT,
    payload     TEXT NOT NULL,
    client_addr TEXT,
    prev_hash   BYTEA,
    hash        BYTEA
);
CREATE INDEX audit_entries_org ON audit_entries (org_id, id);
