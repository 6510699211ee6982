DROP TABLE bulk_samples;
DROP TABLE ipdr_records;
DROP TABLE ipdr_sessions;
DROP TABLE ipdr_exporters;
