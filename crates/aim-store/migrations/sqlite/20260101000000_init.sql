-- AIM server schema, SQLite flavour. Times are Unix milliseconds (UTC); ids are UUIDv7 as 16-byte BLOBs.
-- Keep in step with migrations/postgres/20260101000000_init.sql (same tables, columns and indexes).

CREATE TABLE server_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE organizations (
    id                 BLOB PRIMARY KEY,
    name               TEXT NOT NULL,
    require_2fa_admins INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL
) STRICT;

CREATE TABLE users (
    id                  BLOB PRIMARY KEY,
    org_id              BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    email               TEXT NOT NULL UNIQUE,
    password_hash       TEXT NOT NULL,
    role                TEXT NOT NULL CHECK (role IN ('admin', 'manager', 'member', 'viewer')),
    active              INTEGER NOT NULL DEFAULT 1,
    must_change_password INTEGER NOT NULL DEFAULT 0,
    failed_logins       INTEGER NOT NULL DEFAULT 0,
    failed_window_start INTEGER,
    locked_until        INTEGER,
    totp_enabled        INTEGER NOT NULL DEFAULT 0,
    totp_secret         BLOB,
    totp_pending_secret BLOB,
    totp_last_step      INTEGER,
    created_by          BLOB,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
) STRICT;
CREATE INDEX users_org_id ON users (org_id, id);

CREATE TABLE sessions (
    id             BLOB PRIMARY KEY,
    org_id         BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id        BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at     INTEGER NOT NULL,
    revoked_at     INTEGER,
    revoked_reason TEXT
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE refresh_tokens (
    id         BLOB PRIMARY KEY,
    session_id BLOB NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
) STRICT;
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE recovery_codes (
    id        BLOB PRIMARY KEY,
    user_id   BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash BLOB NOT NULL,
    used_at   INTEGER
) STRICT;
CREATE INDEX recovery_codes_user ON recovery_codes (user_id, code_hash);

CREATE TABLE api_keys (
    id               BLOB PRIMARY KEY,
    org_id           BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    owner_id         BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    prefix           TEXT NOT NULL,
    key_hash         BLOB NOT NULL UNIQUE,
    role             TEXT NOT NULL CHECK (role IN ('admin', 'manager', 'member', 'viewer')),
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER,
    revoked_at       INTEGER,
    last_used_at     INTEGER,
    use_count        INTEGER NOT NULL DEFAULT 0,
    last_client_addr TEXT
) STRICT;
CREATE INDEX api_keys_org ON api_keys (org_id, id);
CREATE INDEX api_keys_owner ON api_keys (org_id, owner_id, id);

CREATE TABLE jwt_keys (
    kid            TEXT PRIMARY KEY,
    algorithm      TEXT NOT NULL,
    private_sealed BLOB NOT NULL,
    public_key     BLOB NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX jwt_keys_created ON jwt_keys (created_at);

-- Security events. The hash chain (seq, prev_hash, hash) is filled in when the server audit log
-- is wired to aim_core::audit; rows are appended in the same transaction as the change.
CREATE TABLE audit_entries (
    id          BLOB PRIMARY KEY,
    org_id      BLOB,
    seq         INTEGER,
    at          INTEGER NOT NULL,
    event_type  TEXT NOT NULL,
    actor       TEXT NOT NULL,
    subject     TEXT,
    payload     TEXT NOT NULL,
    client_addr TEXT,
    prev_hash   BLOB,
    hash        BLOB
) STRICT;
CREATE INDEX audit_entries_org ON audit_entries (org_id, id);
