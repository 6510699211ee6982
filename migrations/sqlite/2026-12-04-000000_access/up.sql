-- Operator access: users, roles, API tokens, console sessions, tenants, tags, the audit log.
-- SQLite flavour; keep in step with ../../postgres/<same version>.

-- A role: permissions (JSON array of names) bound to a device scope (JSON object: filters on
-- OUI, ProductClass, software version, tags, parameter values, tenant; {} = every device).
CREATE TABLE roles (
    name        TEXT PRIMARY KEY NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    permissions TEXT NOT NULL DEFAULT '[]',
    scope       TEXT NOT NULL DEFAULT '{}',
    builtin     BOOLEAN NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- A tenant: a named partition of the fleet; `rules` (JSON array of filters) assign devices.
CREATE TABLE tenants (
    name       TEXT PRIMARY KEY NOT NULL,
    rules      TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE users (
    name          TEXT PRIMARY KEY NOT NULL,
    password_hash TEXT NOT NULL,             -- argon2id PHC string
    role          TEXT NOT NULL REFERENCES roles (name),
    tenant        TEXT,                      -- NULL: no tenant restriction
    disabled      BOOLEAN NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    last_login_at TEXT
);

-- API tokens: only the SHA-256 of the (256-bit random) secret is kept.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY NOT NULL,  -- uuid
    name         TEXT NOT NULL UNIQUE,
    token_hash   TEXT NOT NULL UNIQUE,       -- hex SHA-256 of the secret
    prefix       TEXT NOT NULL,              -- first characters of the secret, to recognise it
    role         TEXT NOT NULL REFERENCES roles (name),
    tenant       TEXT,
    created_by   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    revoked_at   TEXT,
    last_used_at TEXT
);

-- Console sessions (cookie), by the SHA-256 of the cookie's secret.
CREATE TABLE web_sessions (
    id_hash     TEXT PRIMARY KEY NOT NULL,
    user_name   TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    remote_addr TEXT
);
CREATE INDEX web_sessions_user ON web_sessions (user_name);

-- Every change made through Keelson, append-only (the triggers refuse UPDATE and DELETE).
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,               -- 'user:NAME', 'token:NAME', 'cli', 'system', or '-' (unknown)
    remote_addr TEXT,
    action      TEXT NOT NULL,               -- e.g. 'task.create', 'auth.login'
    target      TEXT NOT NULL DEFAULT '',    -- what was acted on (task id, user name, ...)
    devices     TEXT NOT NULL DEFAULT '[]',  -- JSON array of device ids
    outcome     TEXT NOT NULL,               -- 'ok', 'denied', 'failed', 'invalid'
    detail      TEXT NOT NULL DEFAULT '{}'   -- JSON, never a secret
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

-- Tags of devices (replaces the unused devices.tags column).
CREATE TABLE device_tags (
    device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    tag       TEXT NOT NULL,
    PRIMARY KEY (device_id, tag)
) WITHOUT ROWID;
CREATE INDEX device_tags_tag ON device_tags (tag, device_id);
ALTER TABLE devices DROP COLUMN tags;

ALTER TABLE devices ADD COLUMN tenant TEXT;
-- Scope filters. The Inform upsert never sets these columns on an existing device (the OUI
-- and ProductClass are part of its id; the tenant changes only by rule), so they cost the
-- hot path nothing; software_version changes with firmware and is left unindexed.
CREATE INDEX devices_tenant ON devices (tenant, id);
CREATE INDEX devices_product_class ON devices (product_class, id);
CREATE INDEX devices_oui ON devices (oui, id);

-- Fault acknowledgement.
ALTER TABLE tasks ADD COLUMN acknowledged_at TEXT;
ALTER TABLE tasks ADD COLUMN acknowledged_by TEXT;

-- Webhook subscriptions: events of the subscriber's scope, POSTed with an HMAC signature.
CREATE TABLE webhooks (
    id         TEXT PRIMARY KEY NOT NULL,        -- uuid
    name       TEXT NOT NULL,
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,                    -- the HMAC-SHA256 key (shown once at creation)
    events     TEXT NOT NULL DEFAULT '[]',       -- JSON array of event types ([] = all)
    scopes     TEXT NOT NULL DEFAULT '[]',       -- JSON array of device filters (the creator's)
    tenant     TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    enabled    BOOLEAN NOT NULL DEFAULT 1
);

-- One event for one webhook: persisted when the event happens, retried until delivered.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,              -- the JSON body sent
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_status     INTEGER,                    -- HTTP status of the last attempt
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    delivered_at    TEXT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (webhook_id, id);
