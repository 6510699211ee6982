-- Bulk data, second layout: one row per report instead of one row per sample.
-- SQLite flavour; keep in step with ../../postgres/<same version>.
--
-- A TR-232 record (or an HTTP report, or one timestamp of a CSV report) is one
-- `bulk_reports` row: its parameter paths are interned as a layout (the same
-- profile sends the same paths every time) and its values are a JSON array in
-- layout order. That is one B-tree insert per report, not one per sample, and
-- about a fifth of the bytes.
--
-- Finding a device's reports needs an index by device, and an index that
-- every insert updates at a random place is what made ingest slow (each
-- commit rewrote thousands of scattered index pages). So the device index,
-- `bulk_report_index`, is built behind the ingest, in large sorted chunks
-- (see `Store::index_bulk_reports`): `bulk_index_state.indexed_upto` is the
-- highest report id indexed, and reads look at the (small) unindexed tail by
-- scanning it.

-- The paths of a report, in order, as a JSON array. `id` is derived from the
-- paths (63 bits of their SHA-256), so writers need no lookup to use one;
-- carried-over layouts below have negative ids.
CREATE TABLE bulk_layouts (
    id    BIGINT PRIMARY KEY NOT NULL,
    paths TEXT NOT NULL
);

-- (exporter, session, document) of IPDR records, numbered: reports carry the
-- number, which keeps their rows and unique index small.
CREATE TABLE ipdr_streams (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    exporter_id TEXT NOT NULL,
    session_id  INTEGER NOT NULL,
    document_id TEXT NOT NULL
);
CREATE UNIQUE INDEX ipdr_streams_key ON ipdr_streams (exporter_id, session_id, document_id);

CREATE TABLE bulk_reports (
    id          INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: the index watermark relies on it
    device_id   TEXT,                              -- canonical device id when known (no FK)
    sampled_at  TEXT NOT NULL,                     -- the report's time
    received_at TEXT NOT NULL,
    layout_id   BIGINT NOT NULL,                   -- bulk_layouts.id
    vals        TEXT NOT NULL,                     -- JSON array of strings, layout order
    suspect     BOOLEAN NOT NULL DEFAULT 0,        -- TR-232 Suspect
    source      TEXT NOT NULL,                     -- 'ipdr' | 'ipdr-xml' | 'ipdr-xdr' | 'http-json' | 'http-csv'
    source_ref  TEXT,
    -- The IPDR record key when the report is an IPDR record: a resent record is stored once.
    stream_id   BIGINT,                            -- ipdr_streams.id
    sequence    BIGINT                             -- DSN
);
-- NULLs are distinct: reports that are not IPDR records never conflict.
CREATE UNIQUE INDEX bulk_reports_key ON bulk_reports (stream_id, sequence);

CREATE TABLE bulk_report_index (
    device_id  TEXT NOT NULL,
    sampled_at TEXT NOT NULL,
    report_id  BIGINT NOT NULL,
    PRIMARY KEY (device_id, sampled_at, report_id)
) WITHOUT ROWID;

CREATE TABLE bulk_index_state (
    id           INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    indexed_upto BIGINT NOT NULL
);

-- Carry the samples of the first layout over: one single-path report each.
INSERT INTO bulk_layouts (id, paths)
    SELECT -ROW_NUMBER() OVER (ORDER BY path), json_array(path)
    FROM (SELECT DISTINCT path FROM bulk_samples);
INSERT INTO bulk_reports (device_id, sampled_at, received_at, layout_id, vals, source, source_ref)
    SELECT s.device_id, s.sampled_at, s.sampled_at, l.id, json_array(s.value), s.source, s.source_ref
    FROM bulk_samples s JOIN bulk_layouts l ON l.paths = json_array(s.path)
    ORDER BY s.id;
INSERT INTO bulk_index_state (id, indexed_upto) VALUES (1, 0);

DROP INDEX bulk_samples_device_path_time;
DROP TABLE bulk_samples;
