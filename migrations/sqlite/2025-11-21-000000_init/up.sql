-- Keelson schema, SQLite flavour. Keep in step with ../../postgres/<same version>.
-- Timestamps are UTC, stored by diesel as TEXT 'YYYY-MM-DD HH:MM:SS[.ffffff]'
-- (that format sorts and compares correctly as text).

CREATE TABLE devices (
    id                             TEXT PRIMARY KEY NOT NULL, -- canonical OUI-ProductClass-Serial
    oui                            TEXT NOT NULL,
    product_class                  TEXT NOT NULL DEFAULT '',
    serial_number                  TEXT NOT NULL,
    manufacturer                   TEXT NOT NULL DEFAULT '',
    root_object                    TEXT NOT NULL DEFAULT '',  -- 'Device.' or 'InternetGatewayDevice.'
    software_version               TEXT,
    hardware_version               TEXT,
    connection_request_url         TEXT,
    udp_connection_request_address TEXT,
    parameter_key                  TEXT,
    cwmp_ns                        TEXT NOT NULL DEFAULT '',  -- namespace URI the CPE last used
    cwmp_version                   TEXT NOT NULL DEFAULT '',
    last_inform_at                 TEXT NOT NULL,
    last_remote_addr               TEXT,
    last_current_time              TEXT,                      -- raw CurrentTime of the last Inform
    last_retry_count               INTEGER NOT NULL DEFAULT 0,
    first_seen_at                  TEXT NOT NULL,
    bootstrap_epoch                INTEGER NOT NULL DEFAULT 0,
    cpe_username                   TEXT,                      -- NULL: global default
    cpe_password                   TEXT,
    cr_username                    TEXT,
    cr_password                    TEXT,
    last_cr_at                     TEXT,
    last_cr_result                 TEXT,
    tags                           TEXT NOT NULL DEFAULT ''
);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    device_id   TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    received_at TEXT NOT NULL,
    event_code  TEXT NOT NULL,
    command_key TEXT NOT NULL DEFAULT '',
    session_id  TEXT
);
CREATE INDEX events_device_id ON events (device_id, id);

CREATE TABLE parameters (
    device_id  TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    path       TEXT NOT NULL,
    value      TEXT,             -- NULL for objects
    xsd_type   TEXT,
    writable   BOOLEAN,
    is_object  BOOLEAN NOT NULL DEFAULT 0,
    fetched_at TEXT NOT NULL,
    PRIMARY KEY (device_id, path)
) WITHOUT ROWID;
-- Cross-device search by path, or by path and value. (PostgreSQL indexes a
-- value prefix instead, because of its btree entry-size limit; the search
-- query tests both, and SQLite folds the prefix test away once it knows
-- `value = ?`, so here the whole value is indexed.)
CREATE INDEX parameters_path_value ON parameters (path, value);

CREATE TABLE tasks (
    id           INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: command keys derive from it
    device_id    TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,                     -- CPE method name
    args         TEXT NOT NULL DEFAULT '{}',        -- JSON
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'running', 'waiting', 'done', 'fault', 'expired', 'cancelled')),
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 1,
    command_key  TEXT UNIQUE,
    result       TEXT,                              -- JSON
    fault_code   INTEGER,
    fault_string TEXT,
    fault_detail TEXT,                              -- JSON
    started_at   TEXT,
    completed_at TEXT,
    session_id   TEXT
);
CREATE INDEX tasks_device_status ON tasks (device_id, status, id);
CREATE INDEX tasks_status ON tasks (status, id);

CREATE TABLE files (
    id            TEXT PRIMARY KEY NOT NULL, -- uuid
    name          TEXT NOT NULL,
    file_type     TEXT NOT NULL,             -- TR-069 FileType, e.g. '1 Firmware Upgrade Image'
    oui           TEXT NOT NULL DEFAULT '',
    product_class TEXT NOT NULL DEFAULT '',
    version       TEXT NOT NULL DEFAULT '',
    size          BIGINT NOT NULL,
    sha256        TEXT NOT NULL,
    content_type  TEXT NOT NULL DEFAULT 'application/octet-stream',
    stored_path   TEXT NOT NULL,
    device_id     TEXT,                      -- set for files a device uploaded to us
    task_id       BIGINT,
    created_at    TEXT NOT NULL
);
CREATE INDEX files_device_id ON files (device_id);
