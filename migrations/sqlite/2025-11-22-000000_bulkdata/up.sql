-- Bulk data: the IPDR collector (TR-232 over IPDR/SP, IPDR/XML documents) and
-- HTTP bulk data (TR-069 Annex N, JSON/CSV). SQLite flavour; keep in step with
-- ../../postgres/<same version>. Timestamps are UTC TEXT, as in the init migration.

-- An IPDR exporter: a peer we dialled or that connected to us, or the source of
-- IPDR documents. `id` is the exporter's address or its configured name.
CREATE TABLE ipdr_exporters (
    id                TEXT PRIMARY KEY NOT NULL,
    direction         TEXT NOT NULL DEFAULT 'unknown', -- 'inbound' | 'outbound' | 'file' | 'unknown'
    state             TEXT NOT NULL DEFAULT 'unknown', -- free text, e.g. 'connected', 'disconnected'
    last_connected_at TEXT,
    records_total     BIGINT NOT NULL DEFAULT 0,       -- records stored (duplicates not counted)
    last_error        TEXT
);

-- One IPDR document of a session: (exporter, sessionId, documentId). A new
-- documentId starts a new row; a recovered session continues its row.
CREATE TABLE ipdr_sessions (
    exporter_id   TEXT NOT NULL REFERENCES ipdr_exporters (id) ON DELETE CASCADE,
    session_id    INTEGER NOT NULL,
    document_id   TEXT NOT NULL,                -- UUID (or hex) text
    config_id     INTEGER NOT NULL DEFAULT 0,
    template      TEXT NOT NULL DEFAULT 'null', -- JSON: the templates in force
    started_at    TEXT NOT NULL,
    stopped_at    TEXT,
    last_sequence BIGINT,                       -- highest DSN stored
    records       BIGINT NOT NULL DEFAULT 0,    -- records stored
    PRIMARY KEY (exporter_id, session_id, document_id)
) WITHOUT ROWID;

-- Decoded IPDR records. (exporter, session, document, DSN) identifies a record,
-- so a retransmission is stored once. No foreign keys: this is the hot path.
CREATE TABLE ipdr_records (
    id          INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: bulk_samples.record_id points here
    exporter_id TEXT NOT NULL,
    session_id  INTEGER NOT NULL,
    document_id TEXT NOT NULL,
    sequence    BIGINT NOT NULL,                   -- DSN
    template_id INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    fields      TEXT NOT NULL,                     -- JSON object: field name -> typed value
    device_id   TEXT                               -- canonical device id when the record names one
);
CREATE UNIQUE INDEX ipdr_records_key ON ipdr_records (exporter_id, session_id, document_id, sequence);
-- "Newest records of a session" (ids only grow per session: cheap to maintain).
CREATE INDEX ipdr_records_session ON ipdr_records (exporter_id, session_id, id);

-- One (parameter, value) of a device at a time, from any bulk-data transport.
-- `device_id` is the canonical id (OUI-ProductClass-Serial) when the identity
-- is known, with no foreign key: samples of devices the ACS has not seen yet
-- are kept and join up once the device informs. `record_id` is set for
-- samples of an IPDR record: they are written with the record, and only when
-- the record was new, so the record's unique key de-duplicates them too.
CREATE TABLE bulk_samples (
    id         INTEGER PRIMARY KEY,
    device_id  TEXT,
    sampled_at TEXT NOT NULL,
    path       TEXT NOT NULL,
    value      TEXT NOT NULL,
    source     TEXT NOT NULL, -- 'ipdr' | 'ipdr-xml' | 'http-json' | 'http-csv'
    source_ref TEXT,          -- e.g. the HTTP report's request id or file name
    record_id  BIGINT         -- ipdr_records.id
);
-- A device's time series of one parameter, or of a subtree (path range).
-- (The rowid is implicitly the last key column: ties sort by id.)
CREATE INDEX bulk_samples_device_path_time ON bulk_samples (device_id, path, sampled_at);
