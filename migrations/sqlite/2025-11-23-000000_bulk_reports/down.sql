CREATE TABLE bulk_samples (
    id         INTEGER PRIMARY KEY,
    device_id  TEXT,
    sampled_at TEXT NOT NULL,
    path       TEXT NOT NULL,
    value      TEXT NOT NULL,
    source     TEXT NOT NULL,
    source_ref TEXT,
    record_id  BIGINT
);
CREATE INDEX bulk_samples_device_path_time ON bulk_samples (device_id, path, sampled_at);
INSERT INTO bulk_samples (device_id, sampled_at, path, value, source, source_ref)
    SELECT r.device_id, r.sampled_at, p.value, v.value, r.source, r.source_ref
    FROM bulk_reports r
    JOIN bulk_layouts l ON l.id = r.layout_id
    JOIN json_each(l.paths) p
    JOIN json_each(r.vals) v ON v.key = p.key;
DROP TABLE bulk_index_state;
DROP TABLE bulk_report_index;
DROP TABLE bulk_reports;
DROP TABLE bulk_layouts;
DROP TABLE ipdr_streams;
