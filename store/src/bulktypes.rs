//! Public types of the bulk-data storage: IPDR exporters, sessions
//! (documents) and records, and the samples every bulk-data transport
//! (IPDR/SP, IPDR/XML, HTTP JSON/CSV) produces.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::schema::{ipdr_exporters, ipdr_records, ipdr_sessions};
use crate::sqlconv::{JsonText, OptUtcTs, UtcTs};

/// `bulk_reports.source` of reports decoded from IPDR/SP (XDR) records.
pub const SOURCE_IPDR: &str = "ipdr";
/// `bulk_reports.source` of reports from IPDR/XML documents.
pub const SOURCE_IPDR_XML: &str = "ipdr-xml";
/// `bulk_reports.source` of reports from IPDR/XDR files.
pub const SOURCE_IPDR_XDR: &str = "ipdr-xdr";
/// `bulk_reports.source` of HTTP bulk data in JSON.
pub const SOURCE_HTTP_JSON: &str = "http-json";
/// `bulk_reports.source` of HTTP bulk data in CSV.
pub const SOURCE_HTTP_CSV: &str = "http-csv";

/// The sample sources the store accepts (anything else is
/// [`StoreError::Invalid`](crate::StoreError::Invalid)).
pub const SAMPLE_SOURCES: &[&str] = &[
    SOURCE_IPDR,
    SOURCE_IPDR_XML,
    SOURCE_IPDR_XDR,
    SOURCE_HTTP_JSON,
    SOURCE_HTTP_CSV,
];

/// The ACS's canonical device id for a TR-069/TR-232 identity (see [`ids`]); re-exported so
/// that store callers and tests name devices exactly as the CWMP side does.
pub use ids::canonical_device_id;

/// One (parameter, value) observed at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleIn {
    /// Full parameter path (or the report's alternative name).
    pub path: String,
    /// The value as text (TR-232 values are strings; JSON numbers and
    /// booleans are stored in their JSON spelling).
    pub value: String,
    /// The report's time (CollectionTime, row timestamp, IPDRCreationTime),
    /// or the reception time when the report has none.
    pub sampled_at: DateTime<Utc>,
}

impl SampleIn {
    pub fn new(
        path: impl Into<String>,
        value: impl Into<String>,
        sampled_at: DateTime<Utc>,
    ) -> Self {
        SampleIn {
            path: path.into(),
            value: value.into(),
            sampled_at,
        }
    }
}

/// A decoded IPDR record to store with [`Store::ipdr_commit`](crate::Store::ipdr_commit).
///
/// (exporter, `session_id`, `document_id`, `sequence`) identifies the record:
/// a second record with the same key is a duplicate and is not stored, nor
/// are its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct IpdrRecordIn {
    /// IPDR/SP sessionId (for TR-232 streaming, the ASCII code of
    /// `StreamingSessionID`); 0 for documents outside a session.
    pub session_id: i32,
    /// The documentId (UUID text) or the IPDR/XML `docId`.
    pub document_id: String,
    /// The DSN (IPDR/SP `sequenceNum`) or the record's `seqNum`.
    pub sequence: i64,
    pub template_id: i32,
    pub received_at: DateTime<Utc>,
    /// Field name → typed value (stored as JSON text in `ipdr_records`);
    /// unused when `report` is set.
    pub fields: Value,
    /// Canonical device id ([`canonical_device_id`]) when the record names
    /// a device (TR-232 OUI/ProductClass/SerialNumber), known to the ACS or not.
    pub device_id: Option<String>,
    /// A TR-232 BulkDataReport: the record is stored as a bulk-data report
    /// (one `bulk_reports` row carrying its pairs) instead of an
    /// `ipdr_records` row, under the same key.
    pub report: Option<ReportIn>,
}

/// The content of one bulk-data report: its time and (parameter, value)
/// pairs, in the order the device sent them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportIn {
    /// The report's time (CollectionTime, row timestamp, IPDRCreationTime),
    /// or the reception time when the report has none.
    pub sampled_at: DateTime<Utc>,
    /// TR-232 `Suspect`: the device flagged the report as incomplete.
    pub suspect: bool,
    pub pairs: Vec<(String, String)>,
}

/// A session start (SESSION_START, or a new document) as
/// [`Store::upsert_ipdr_session`](crate::Store::upsert_ipdr_session) stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct IpdrSessionIn {
    pub session_id: i32,
    pub document_id: String,
    pub config_id: i32,
    /// The templates in force (any JSON).
    pub template: Value,
    pub started_at: DateTime<Utc>,
}

/// A change to a session made in the same job as an [`IpdrBatch`]'s records.
#[derive(Debug, Clone, PartialEq)]
pub enum IpdrSessionUpdate {
    /// Upsert, as [`Store::upsert_ipdr_session`](crate::Store::upsert_ipdr_session).
    Start(IpdrSessionIn),
    /// As [`Store::stop_ipdr_session`](crate::Store::stop_ipdr_session).
    Stop {
        session_id: i32,
        document_id: String,
        stopped_at: DateTime<Utc>,
    },
}

/// What [`Store::ipdr_commit`](crate::Store::ipdr_commit) writes in one job:
/// first `session_updates` (in order), then `records` (reports and others),
/// then the session and exporter counters.
#[derive(Debug, Clone, PartialEq)]
pub struct IpdrBatch {
    pub exporter_id: String,
    /// `bulk_reports.source` of the records' reports: [`SOURCE_IPDR`]
    /// (the default), [`SOURCE_IPDR_XML`] or [`SOURCE_IPDR_XDR`].
    pub source: String,
    pub session_updates: Vec<IpdrSessionUpdate>,
    pub records: Vec<IpdrRecordIn>,
}

impl IpdrBatch {
    /// An empty batch of IPDR/SP records (source [`SOURCE_IPDR`]).
    pub fn new(exporter_id: impl Into<String>) -> Self {
        IpdrBatch {
            exporter_id: exporter_id.into(),
            source: SOURCE_IPDR.to_string(),
            session_updates: Vec::new(),
            records: Vec::new(),
        }
    }
}

/// What [`Store::ipdr_commit`](crate::Store::ipdr_commit) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct IpdrCommitOutcome {
    /// Records stored.
    pub inserted: u64,
    /// Records not stored because their key was already stored (or
    /// appeared earlier in the same batch).
    pub duplicates: u64,
    /// Samples stored (the pairs of the inserted reports).
    pub samples: u64,
}

/// An exporter's state, for [`Store::upsert_ipdr_exporter`](crate::Store::upsert_ipdr_exporter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpdrExporterIn {
    /// The exporter's address (`"192.0.2.7:4737"`) or configured name.
    pub id: String,
    /// `"inbound"`, `"outbound"`, `"file"` (free text).
    pub direction: String,
    /// e.g. `"connected"`, `"disconnected"`, `"error"` (free text).
    pub state: String,
    /// `None` keeps the stored value.
    pub last_connected_at: Option<DateTime<Utc>>,
    /// `None` keeps the stored value.
    pub last_error: Option<String>,
}

/// One row of `ipdr_exporters`.
#[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable)]
#[diesel(table_name = ipdr_exporters)]
pub struct IpdrExporterRow {
    pub id: String,
    pub direction: String,
    pub state: String,
    #[diesel(deserialize_as = OptUtcTs)]
    pub last_connected_at: Option<DateTime<Utc>>,
    /// Records stored from this exporter (duplicates not counted).
    pub records_total: i64,
    pub last_error: Option<String>,
}

/// One row of `ipdr_sessions`: a document of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable)]
#[diesel(table_name = ipdr_sessions)]
pub struct IpdrSessionRow {
    pub exporter_id: String,
    pub session_id: i32,
    pub document_id: String,
    pub config_id: i32,
    #[diesel(deserialize_as = JsonText)]
    pub template: Value,
    #[diesel(deserialize_as = UtcTs)]
    pub started_at: DateTime<Utc>,
    #[diesel(deserialize_as = OptUtcTs)]
    pub stopped_at: Option<DateTime<Utc>>,
    /// Highest DSN stored, `None` before the first record.
    pub last_sequence: Option<i64>,
    /// Records stored (duplicates not counted).
    pub records: i64,
}

/// Filters of [`Store::ipdr_records`](crate::Store::ipdr_records): newest first; `before`
/// is the cursor (records with a smaller id).
#[derive(Debug, Clone, Default)]
pub struct IpdrRecordQuery {
    pub exporter: Option<String>,
    pub session_id: Option<i32>,
    pub document_id: Option<String>,
    pub template_id: Option<i32>,
    pub device_id: Option<String>,
    /// `received_at` bounds: from (inclusive), to (exclusive).
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub before: Option<i64>,
    pub scopes: Vec<crate::DeviceFilter>,
    pub limit: i64,
}

/// One row of `ipdr_records`.
#[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable)]
#[diesel(table_name = ipdr_records)]
pub struct IpdrRecordRow {
    pub id: i64,
    pub exporter_id: String,
    pub session_id: i32,
    pub document_id: String,
    pub sequence: i64,
    pub template_id: i32,
    #[diesel(deserialize_as = UtcTs)]
    pub received_at: DateTime<Utc>,
    #[diesel(deserialize_as = JsonText)]
    pub fields: Value,
    pub device_id: Option<String>,
}

/// One (parameter, value) of a stored report, as [`Store::query_samples`](crate::Store::query_samples)
/// returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SampleRow {
    /// The `bulk_reports` row the sample is part of.
    pub report_id: i64,
    pub device_id: Option<String>,
    pub sampled_at: DateTime<Utc>,
    pub path: String,
    pub value: String,
    pub source: String,
    pub source_ref: Option<String>,
    /// TR-232 `Suspect` of the report.
    pub suspect: bool,
}

/// Filters for [`Store::query_samples`](crate::Store::query_samples).
#[derive(Debug, Clone)]
pub struct SampleQuery {
    /// Samples of this device only.
    pub device_id: Option<String>,
    /// Exact path, or a subtree when it ends with `.` (`"Device.WiFi."`).
    pub path: Option<String>,
    /// `sampled_at >= from`.
    pub from: Option<DateTime<Utc>>,
    /// `sampled_at < to`.
    pub to: Option<DateTime<Utc>>,
    /// 1..=10,000.
    pub limit: i64,
    pub offset: i64,
}

impl Default for SampleQuery {
    fn default() -> Self {
        SampleQuery {
            device_id: None,
            path: None,
            from: None,
            to: None,
            limit: 100,
            offset: 0,
        }
    }
}
