//! Bulk-data queries: IPDR exporters, sessions and records, and bulk-data
//! reports.
//!
//! # Layout
//!
//! A bulk-data report (a TR-232 record, an HTTP JSON report, one timestamp
//! of a CSV report) is ONE `bulk_reports` row: its parameter paths are
//! interned in `bulk_layouts` (id = 63 bits of the paths' SHA-256, so a
//! writer needs no lookup) and its values are a JSON array in layout order.
//! IPDR records of other templates (e.g. DOCSIS SAMIS) are `ipdr_records`
//! rows with their fields as JSON. Both carry the IPDR key (exporter,
//! session, document, DSN) under a unique index — reports as (stream, DSN),
//! the stream being the numbered (exporter, session, document) of
//! `ipdr_streams` — so a resent record is stored once.
//!
//! The by-device index (`bulk_report_index`) is not maintained by the
//! inserts: [`index_reports`] appends the new reports to it in large chunks
//! sorted by device, so one commit touches a few index pages per device
//! instead of one scattered page per report. Reads add the unindexed tail
//! (`id > bulk_index_state.indexed_upto`) by scanning it.
//!
//! # The IPDR commit path
//!
//! [`ipdr_commit`] is one writer job per batch of records (typically the
//! records received since the last DATA_ACK). Everything the job can do
//! before it reaches the writer thread is done by [`prepare_ipdr`] on the
//! caller's task (validation, layouts, JSON encoding), so the single writer
//! thread spends its time on binds and B-tree inserts only:
//!
//! * SQLite inserts records one by one with `INSERT OR IGNORE … RETURNING
//!   id` (one cached prepared statement per table, no round trips to save);
//! * PostgreSQL sends chunks of multi-row `INSERT … ON CONFLICT DO NOTHING
//!   RETURNING` and matches the returned keys to the batch.
//!
//! Either way a record whose key is already stored (or earlier in the
//! batch) is a duplicate. Then one upsert per (session, document) touched
//! and one update of the exporter keep the counters.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDateTime;
use diesel::dsl::{case_when, max};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel::upsert::excluded;
use sha2::{Digest, Sha256};

use crate::bulktypes::*;
use crate::db::{on, Db};
use crate::error::{Result, StoreError};
use crate::schema::{
    bulk_index_state, bulk_layouts, bulk_reports, devices, ipdr_exporters, ipdr_records,
    ipdr_sessions,
};
use crate::sqlconv::to_db;

/// Records per multi-row INSERT on PostgreSQL (at most 13 binds each: well
/// under the 65,535 bind limit).
const PG_RECORD_CHUNK: usize = 1000;

/// Most sessions [`list_ipdr_sessions`] returns.
const SESSION_LIST_LIMIT: i64 = 1000;

/// Reports loaded per round while a sample query expands reports.
const QUERY_REPORT_PAGE: i64 = 256;

// ---------------------------------------------------------------------------
// Insertable shapes

#[derive(Insertable)]
#[diesel(table_name = ipdr_records, treat_none_as_default_value = false)]
struct NewRecord<'a> {
    exporter_id: &'a str,
    session_id: i32,
    document_id: &'a str,
    sequence: i64,
    template_id: i32,
    received_at: NaiveDateTime,
    fields: &'a str,
    device_id: Option<&'a str>,
}

#[derive(Insertable)]
#[diesel(table_name = bulk_reports, treat_none_as_default_value = false)]
struct NewReport<'a> {
    device_id: Option<&'a str>,
    sampled_at: NaiveDateTime,
    received_at: NaiveDateTime,
    layout_id: i64,
    vals: &'a str,
    suspect: bool,
    source: &'a str,
    source_ref: Option<&'a str>,
    stream_id: Option<i64>,
    sequence: Option<i64>,
}

#[derive(Insertable)]
#[diesel(table_name = ipdr_sessions, treat_none_as_default_value = false)]
struct NewSession<'a> {
    exporter_id: &'a str,
    session_id: i32,
    document_id: &'a str,
    config_id: i32,
    template: &'a str,
    started_at: NaiveDateTime,
}

// ---------------------------------------------------------------------------
// Validation and preparation (on the caller's task, not the writer's)

fn check_source(source: &str) -> Result<()> {
    if SAMPLE_SOURCES.contains(&source) {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "unknown bulk-data source {source:?} (expected one of {SAMPLE_SOURCES:?})"
        )))
    }
}

fn check_exporter_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(StoreError::Invalid("empty IPDR exporter id".into()));
    }
    Ok(())
}

/// Replaces NUL characters by `.`, as TR-232 does for any byte it cannot
/// carry: PostgreSQL `TEXT` cannot hold NUL, and one bad value must not make
/// a whole report unstorable (the device would resend it forever).
pub(crate) fn strip_nul(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', ".")
    } else {
        s
    }
}

/// The `bulk_layouts.id` of a list of paths: 63 bits of SHA-256 over the
/// paths, each followed by a NUL (which no stored path contains).
pub(crate) fn layout_id<'a>(paths: impl IntoIterator<Item = &'a str>) -> i64 {
    let mut h = Sha256::new();
    for p in paths {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    (u64::from_be_bytes(b) >> 1) as i64
}

/// A report ready for the writer: layout resolved, values encoded.
pub(crate) struct PreparedReport {
    sampled_at: NaiveDateTime,
    layout_id: i64,
    vals: String,
    suspect: bool,
    samples: usize,
}

/// Turns pairs into reports' layouts and values. Consecutive reports of one
/// profile have the same paths: those are compared, not hashed again.
#[derive(Default)]
struct LayoutBuilder {
    last_paths: Vec<String>,
    last_id: Option<i64>,
    /// Layouts met in this batch: id → paths JSON.
    layouts: Vec<(i64, String)>,
    seen: HashSet<i64>,
}

impl LayoutBuilder {
    fn report(&mut self, r: ReportIn) -> PreparedReport {
        let same = self.last_id.is_some()
            && self.last_paths.len() == r.pairs.len()
            && self
                .last_paths
                .iter()
                .zip(&r.pairs)
                .all(|(a, (p, _))| a.as_str() == strip_nul_ref(p));
        if !same {
            self.last_paths = r.pairs.iter().map(|(p, _)| strip_nul(p.clone())).collect();
            let id = layout_id(self.last_paths.iter().map(String::as_str));
            self.last_id = Some(id);
            if self.seen.insert(id) {
                self.layouts.push((
                    id,
                    serde_json::to_string(&self.last_paths).expect("strings serialize"),
                ));
            }
        }
        let vals: Vec<std::borrow::Cow<'_, str>> =
            r.pairs.iter().map(|(_, v)| strip_nul_ref(v)).collect();
        PreparedReport {
            sampled_at: to_db(r.sampled_at),
            layout_id: self.last_id.expect("set above"),
            vals: serde_json::to_string(&vals).expect("strings serialize"),
            suspect: r.suspect,
            samples: r.pairs.len(),
        }
    }
}

/// What `strip_nul` would make of `s`, for comparisons (rarely allocates).
fn strip_nul_ref(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        std::borrow::Cow::Owned(s.replace('\0', "."))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

pub(crate) enum RecordBody {
    /// `ipdr_records.fields` (JSON text).
    Fields(String),
    Report(PreparedReport),
}

pub(crate) struct PreparedRecord {
    session_id: i32,
    document_id: String,
    sequence: i64,
    template_id: i32,
    received_at: NaiveDateTime,
    device_id: Option<String>,
    body: RecordBody,
}

pub(crate) enum PreparedSession {
    Start {
        session_id: i32,
        document_id: String,
        config_id: i32,
        template: String,
        started_at: NaiveDateTime,
    },
    Stop {
        session_id: i32,
        document_id: String,
        stopped_at: NaiveDateTime,
    },
}

impl PreparedSession {
    fn start(s: IpdrSessionIn) -> Self {
        PreparedSession::Start {
            session_id: s.session_id,
            document_id: strip_nul(s.document_id),
            config_id: s.config_id,
            template: s.template.to_string(),
            started_at: to_db(s.started_at),
        }
    }
}

/// An [`IpdrBatch`] validated and encoded for the writer.
pub(crate) struct PreparedBatch {
    exporter_id: String,
    source: String,
    sessions: Vec<PreparedSession>,
    records: Vec<PreparedRecord>,
    layouts: Vec<(i64, String)>,
}

pub(crate) fn prepare_ipdr(batch: IpdrBatch) -> Result<PreparedBatch> {
    check_exporter_id(&batch.exporter_id)?;
    check_source(&batch.source)?;
    let sessions = batch
        .session_updates
        .into_iter()
        .map(|u| match u {
            IpdrSessionUpdate::Start(s) => PreparedSession::start(s),
            IpdrSessionUpdate::Stop {
                session_id,
                document_id,
                stopped_at,
            } => PreparedSession::Stop {
                session_id,
                document_id: strip_nul(document_id),
                stopped_at: to_db(stopped_at),
            },
        })
        .collect();
    let mut layouts = LayoutBuilder::default();
    let records = batch
        .records
        .into_iter()
        .map(|r| PreparedRecord {
            session_id: r.session_id,
            document_id: strip_nul(r.document_id),
            sequence: r.sequence,
            template_id: r.template_id,
            received_at: to_db(r.received_at),
            device_id: r.device_id.map(strip_nul),
            body: match r.report {
                Some(rep) => RecordBody::Report(layouts.report(rep)),
                // JSON text escapes NUL itself.
                None => RecordBody::Fields(r.fields.to_string()),
            },
        })
        .collect();
    Ok(PreparedBatch {
        exporter_id: strip_nul(batch.exporter_id),
        source: batch.source,
        sessions,
        records,
        layouts: layouts.layouts,
    })
}

pub(crate) fn prepare_session(
    exporter_id: &str,
    s: IpdrSessionIn,
) -> Result<(String, PreparedSession)> {
    check_exporter_id(exporter_id)?;
    Ok((
        strip_nul(exporter_id.to_string()),
        PreparedSession::start(s),
    ))
}

/// The arguments of [`insert_samples`], validated and grouped into reports
/// (one per distinct time, in order of first appearance).
pub(crate) struct PreparedSamples {
    device_id: Option<String>,
    source: String,
    source_ref: Option<String>,
    received_at: NaiveDateTime,
    reports: Vec<PreparedReport>,
    layouts: Vec<(i64, String)>,
    pub(crate) samples: usize,
}

pub(crate) fn prepare_samples(
    device_id: Option<String>,
    source: &str,
    source_ref: Option<String>,
    samples: Vec<SampleIn>,
) -> Result<PreparedSamples> {
    check_source(source)?;
    let total = samples.len();
    let mut order: Vec<chrono::DateTime<chrono::Utc>> = Vec::new();
    let mut groups: HashMap<chrono::DateTime<chrono::Utc>, Vec<(String, String)>> = HashMap::new();
    for s in samples {
        groups
            .entry(s.sampled_at)
            .or_insert_with(|| {
                order.push(s.sampled_at);
                Vec::new()
            })
            .push((s.path, s.value));
    }
    let mut layouts = LayoutBuilder::default();
    let reports = order
        .into_iter()
        .map(|t| {
            layouts.report(ReportIn {
                sampled_at: t,
                suspect: false,
                pairs: groups.remove(&t).unwrap_or_default(),
            })
        })
        .collect();
    Ok(PreparedSamples {
        device_id: device_id.map(strip_nul),
        source: source.to_string(),
        source_ref: source_ref.map(strip_nul),
        received_at: to_db(chrono::Utc::now()),
        reports,
        layouts: layouts.layouts,
        samples: total,
    })
}

// ---------------------------------------------------------------------------
// Writes

/// Creates the exporter row if it is missing (sessions refer to it).
fn ensure_exporter(db: &mut Db<'_>, id: &str) -> Result<()> {
    on!(db, |c| diesel::insert_into(ipdr_exporters::table)
        .values(ipdr_exporters::id.eq(id))
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(())
}

pub(crate) fn prepare_exporter(e: IpdrExporterIn) -> Result<IpdrExporterIn> {
    check_exporter_id(&e.id)?;
    Ok(IpdrExporterIn {
        id: strip_nul(e.id),
        direction: strip_nul(e.direction),
        state: strip_nul(e.state),
        last_connected_at: e.last_connected_at,
        last_error: e.last_error.map(strip_nul),
    })
}

pub(crate) fn upsert_ipdr_exporter(db: &mut Db<'_>, e: IpdrExporterIn) -> Result<IpdrExporterRow> {
    use crate::schema::ipdr_exporters::dsl as x;
    let connected = e.last_connected_at.map(to_db);
    Ok(on!(db, |c| diesel::insert_into(x::ipdr_exporters)
        .values((
            x::id.eq(&e.id),
            x::direction.eq(&e.direction),
            x::state.eq(&e.state),
            x::last_connected_at.eq(connected),
            x::last_error.eq(&e.last_error),
        ))
        .on_conflict(x::id)
        .do_update()
        .set((
            x::direction.eq(excluded(x::direction)),
            x::state.eq(excluded(x::state)),
            x::last_connected_at.eq(case_when(
                excluded(x::last_connected_at).is_null(),
                x::last_connected_at,
            )
            .otherwise(excluded(x::last_connected_at))),
            x::last_error.eq(case_when(excluded(x::last_error).is_null(), x::last_error)
                .otherwise(excluded(x::last_error))),
        ))
        .returning(IpdrExporterRow::as_returning())
        .get_result(c))?)
}

/// Applies one session update; `false` when a `Stop` found no session.
fn apply_session(db: &mut Db<'_>, exporter: &str, s: &PreparedSession) -> Result<bool> {
    use crate::schema::ipdr_sessions::dsl as s_;
    match s {
        PreparedSession::Start {
            session_id,
            document_id,
            config_id,
            template,
            started_at,
        } => {
            let row = NewSession {
                exporter_id: exporter,
                session_id: *session_id,
                document_id,
                config_id: *config_id,
                template,
                started_at: *started_at,
            };
            // A recovered session (same documentId) continues its row: the
            // counters and the first start time stay.
            on!(db, |c| diesel::insert_into(s_::ipdr_sessions)
                .values(&row)
                .on_conflict((s_::exporter_id, s_::session_id, s_::document_id))
                .do_update()
                .set((
                    s_::config_id.eq(excluded(s_::config_id)),
                    s_::template.eq(excluded(s_::template)),
                    s_::stopped_at.eq(None::<NaiveDateTime>),
                ))
                .execute(c))?;
            Ok(true)
        }
        PreparedSession::Stop {
            session_id,
            document_id,
            stopped_at,
        } => {
            let n = on!(db, |c| diesel::update(s_::ipdr_sessions.find((
                exporter,
                *session_id,
                document_id.as_str()
            )))
            .set(s_::stopped_at.eq(*stopped_at))
            .execute(c))?;
            Ok(n > 0)
        }
    }
}

pub(crate) fn upsert_ipdr_session(
    db: &mut Db<'_>,
    exporter_id: &str,
    s: PreparedSession,
) -> Result<IpdrSessionRow> {
    use crate::schema::ipdr_sessions::dsl as s_;
    ensure_exporter(db, exporter_id)?;
    apply_session(db, exporter_id, &s)?;
    let (PreparedSession::Start {
        session_id,
        document_id,
        ..
    }
    | PreparedSession::Stop {
        session_id,
        document_id,
        ..
    }) = &s;
    Ok(on!(db, |c| s_::ipdr_sessions
        .find((exporter_id, *session_id, document_id.as_str()))
        .select(IpdrSessionRow::as_select())
        .first(c))?)
}

pub(crate) fn stop_ipdr_session(
    db: &mut Db<'_>,
    exporter_id: &str,
    session_id: i32,
    document_id: String,
    stopped_at: NaiveDateTime,
) -> Result<bool> {
    apply_session(
        db,
        exporter_id,
        &PreparedSession::Stop {
            session_id,
            document_id,
            stopped_at,
        },
    )
}

/// Stores the batch's layouts unless they are stored already.
fn insert_layouts(db: &mut Db<'_>, layouts: &[(i64, String)]) -> Result<()> {
    use crate::schema::bulk_layouts::dsl as l;
    for (id, paths) in layouts {
        match db {
            Db::Sqlite(c) => {
                diesel::insert_or_ignore_into(l::bulk_layouts)
                    .values((l::id.eq(*id), l::paths.eq(paths)))
                    .execute(*c)?;
            }
            Db::Pg(c) => {
                diesel::insert_into(l::bulk_layouts)
                    .values((l::id.eq(*id), l::paths.eq(paths)))
                    .on_conflict_do_nothing()
                    .execute(*c)?;
            }
        }
    }
    Ok(())
}

fn report_row<'a>(
    device_id: Option<&'a str>,
    received_at: NaiveDateTime,
    r: &'a PreparedReport,
    source: &'a str,
    source_ref: Option<&'a str>,
    key: Option<(i64, i64)>,
) -> NewReport<'a> {
    NewReport {
        device_id,
        sampled_at: r.sampled_at,
        received_at,
        layout_id: r.layout_id,
        vals: &r.vals,
        suspect: r.suspect,
        source,
        source_ref,
        stream_id: key.map(|k| k.0),
        sequence: key.map(|k| k.1),
    }
}

/// The `ipdr_streams.id` of (exporter, session, document), created if new.
fn stream_id(db: &mut Db<'_>, exporter: &str, session_id: i32, document_id: &str) -> Result<i64> {
    use crate::schema::ipdr_streams::dsl as t;
    let row = (
        t::exporter_id.eq(exporter),
        t::session_id.eq(session_id),
        t::document_id.eq(document_id),
    );
    match db {
        Db::Sqlite(c) => {
            diesel::insert_or_ignore_into(t::ipdr_streams)
                .values(row)
                .execute(*c)?;
        }
        Db::Pg(c) => {
            diesel::insert_into(t::ipdr_streams)
                .values(row)
                .on_conflict_do_nothing()
                .execute(*c)?;
        }
    }
    Ok(on!(db, |c| t::ipdr_streams
        .filter(t::exporter_id.eq(exporter))
        .filter(t::session_id.eq(session_id))
        .filter(t::document_id.eq(document_id))
        .select(t::id)
        .first(c))?)
}

/// Inserts the records, each unless its key exists; returns, in batch
/// order, the indexes in `records` of the inserted ones.
fn insert_records(
    db: &mut Db<'_>,
    exporter: &str,
    source: &str,
    records: &[PreparedRecord],
) -> Result<Vec<usize>> {
    // Reports carry their stream's number instead of the text key.
    let mut streams: HashMap<(i32, &str), i64> = HashMap::new();
    for r in records {
        if matches!(r.body, RecordBody::Report(_))
            && !streams.contains_key(&(r.session_id, r.document_id.as_str()))
        {
            let id = stream_id(db, exporter, r.session_id, &r.document_id)?;
            streams.insert((r.session_id, r.document_id.as_str()), id);
        }
    }
    let stream_of = |r: &PreparedRecord| streams[&(r.session_id, r.document_id.as_str())];
    fn fields_row<'a>(exporter: &'a str, r: &'a PreparedRecord, fields: &'a str) -> NewRecord<'a> {
        NewRecord {
            exporter_id: exporter,
            session_id: r.session_id,
            document_id: &r.document_id,
            sequence: r.sequence,
            template_id: r.template_id,
            received_at: r.received_at,
            fields,
            device_id: r.device_id.as_deref(),
        }
    }
    fn rep_row<'a>(
        stream: i64,
        source: &'a str,
        r: &'a PreparedRecord,
        rep: &'a PreparedReport,
    ) -> NewReport<'a> {
        report_row(
            r.device_id.as_deref(),
            r.received_at,
            rep,
            source,
            None,
            Some((stream, r.sequence)),
        )
    }
    let mut inserted = Vec::with_capacity(records.len());
    match db {
        Db::Sqlite(c) => {
            // `OR IGNORE` (unlike `ON CONFLICT`) keeps a static query id, so
            // each statement is prepared once per connection. Only the
            // unique key can conflict.
            // The affected-row count tells an insert (1) from an ignored duplicate (0).
            for (i, r) in records.iter().enumerate() {
                let n = match &r.body {
                    RecordBody::Report(rep) => diesel::insert_or_ignore_into(bulk_reports::table)
                        .values(&rep_row(stream_of(r), source, r, rep))
                        .execute(*c)?,
                    RecordBody::Fields(f) => diesel::insert_or_ignore_into(ipdr_records::table)
                        .values(&fields_row(exporter, r, f))
                        .execute(*c)?,
                };
                if n > 0 {
                    inserted.push(i);
                }
            }
        }
        Db::Pg(c) => {
            // RETURNING order is not guaranteed: match by key. A key
            // repeated within the batch was inserted by its first row.
            let mut first: HashMap<(i32, &str, i64), usize> = HashMap::with_capacity(records.len());
            for (i, r) in records.iter().enumerate() {
                first
                    .entry((r.session_id, r.document_id.as_str(), r.sequence))
                    .or_insert(i);
            }
            let (reports, others): (Vec<(usize, &PreparedRecord)>, Vec<_>) = records
                .iter()
                .enumerate()
                .partition(|(_, r)| matches!(r.body, RecordBody::Report(_)));
            let by_stream: HashMap<i64, i32> = streams.iter().map(|(k, v)| (*v, k.0)).collect();
            let doc_of: HashMap<i64, &str> = streams.iter().map(|(k, v)| (*v, k.1)).collect();
            for chunk in reports.chunks(PG_RECORD_CHUNK) {
                let rows: Vec<NewReport<'_>> = chunk
                    .iter()
                    .filter_map(|(_, r)| match &r.body {
                        RecordBody::Report(rep) => Some(rep_row(stream_of(r), source, r, rep)),
                        RecordBody::Fields(_) => None,
                    })
                    .collect();
                let returned: Vec<(Option<i64>, Option<i64>)> =
                    diesel::insert_into(bulk_reports::table)
                        .values(&rows)
                        .on_conflict_do_nothing()
                        .returning((bulk_reports::stream_id, bulk_reports::sequence))
                        .get_results(*c)?;
                for (st, q) in &returned {
                    if let (Some(st), Some(q)) = (st, q) {
                        if let (Some(&s), Some(&d)) = (by_stream.get(st), doc_of.get(st)) {
                            if let Some(&i) = first.get(&(s, d, *q)) {
                                inserted.push(i);
                            }
                        }
                    }
                }
            }
            for chunk in others.chunks(PG_RECORD_CHUNK) {
                let rows: Vec<NewRecord<'_>> = chunk
                    .iter()
                    .filter_map(|(_, r)| match &r.body {
                        RecordBody::Fields(f) => Some(fields_row(exporter, r, f)),
                        RecordBody::Report(_) => None,
                    })
                    .collect();
                let returned: Vec<(i32, String, i64)> = diesel::insert_into(ipdr_records::table)
                    .values(&rows)
                    .on_conflict_do_nothing()
                    .returning((
                        ipdr_records::session_id,
                        ipdr_records::document_id,
                        ipdr_records::sequence,
                    ))
                    .get_results(*c)?;
                for (s, d, q) in &returned {
                    if let Some(&i) = first.get(&(*s, d.as_str(), *q)) {
                        inserted.push(i);
                    }
                }
            }
            inserted.sort_unstable();
        }
    }
    Ok(inserted)
}

/// Counters of one (session, document) touched by a batch.
struct SessionTally {
    records: i64,
    last_sequence: i64,
    first_received: NaiveDateTime,
}

pub(crate) fn ipdr_commit(db: &mut Db<'_>, b: PreparedBatch) -> Result<IpdrCommitOutcome> {
    use crate::schema::ipdr_exporters::dsl as x;
    use crate::schema::ipdr_sessions::dsl as s_;

    let exporter = b.exporter_id.as_str();
    if b.sessions.is_empty() && b.records.is_empty() {
        return Ok(IpdrCommitOutcome::default());
    }
    ensure_exporter(db, exporter)?;
    for s in &b.sessions {
        apply_session(db, exporter, s)?;
    }
    insert_layouts(db, &b.layouts)?;
    let inserted = insert_records(db, exporter, &b.source, &b.records)?;

    let mut samples = 0u64;
    let mut tallies: HashMap<(i32, &str), SessionTally> = HashMap::new();
    for &i in &inserted {
        let r = &b.records[i];
        if let RecordBody::Report(rep) = &r.body {
            samples += rep.samples as u64;
        }
        let t = tallies
            .entry((r.session_id, r.document_id.as_str()))
            .or_insert(SessionTally {
                records: 0,
                last_sequence: r.sequence,
                first_received: r.received_at,
            });
        t.records += 1;
        t.last_sequence = t.last_sequence.max(r.sequence);
        t.first_received = t.first_received.min(r.received_at);
    }

    for ((session_id, document_id), t) in &tallies {
        // A document never announced by SESSION_START (IPDR documents, or a
        // lost start) gets its row here.
        on!(db, |c| diesel::insert_into(s_::ipdr_sessions)
            .values((
                s_::exporter_id.eq(exporter),
                s_::session_id.eq(*session_id),
                s_::document_id.eq(*document_id),
                s_::started_at.eq(t.first_received),
                s_::last_sequence.eq(Some(t.last_sequence)),
                s_::records.eq(t.records),
            ))
            .on_conflict((s_::exporter_id, s_::session_id, s_::document_id))
            .do_update()
            .set((
                s_::records.eq(s_::records + excluded(s_::records)),
                s_::last_sequence.eq(case_when(
                    s_::last_sequence
                        .is_null()
                        .or(excluded(s_::last_sequence).gt(s_::last_sequence)),
                    excluded(s_::last_sequence),
                )
                .otherwise(s_::last_sequence)),
            ))
            .execute(c))?;
    }
    let n = inserted.len() as i64;
    if n > 0 {
        on!(db, |c| diesel::update(x::ipdr_exporters.find(exporter))
            .set(x::records_total.eq(x::records_total + n))
            .execute(c))?;
    }
    Ok(IpdrCommitOutcome {
        inserted: inserted.len() as u64,
        duplicates: (b.records.len() - inserted.len()) as u64,
        samples,
    })
}

/// Stores the reports of one HTTP bulk-data request; returns the samples stored.
pub(crate) fn insert_samples(db: &mut Db<'_>, p: &PreparedSamples) -> Result<u64> {
    insert_layouts(db, &p.layouts)?;
    let rows: Vec<NewReport<'_>> = p
        .reports
        .iter()
        .map(|r| {
            report_row(
                p.device_id.as_deref(),
                p.received_at,
                r,
                &p.source,
                p.source_ref.as_deref(),
                None,
            )
        })
        .collect();
    for chunk in rows.chunks(PG_RECORD_CHUNK) {
        on!(db, |c| diesel::insert_into(bulk_reports::table)
            .values(chunk)
            .execute(c))?;
    }
    Ok(p.samples as u64)
}

/// What one [`index_reports`] run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IndexOutcome {
    /// Index entries written (reports with a device).
    pub indexed: u64,
    /// Reports now covered: `bulk_index_state.indexed_upto`.
    pub upto: i64,
    /// Whether reports past `upto` (and at most `safe_upto`) remain.
    pub more: bool,
}

/// Appends the by-device index entries of the reports with ids in
/// (`indexed_upto`, `indexed_upto + max_rows`], at most `safe_upto`, in one
/// sorted `INSERT … SELECT`, and moves the watermark.
///
/// `safe_upto` must be an id below which no report can still be inserted by
/// a transaction that has not committed: with SQLite's single writer (this
/// runs as a writer job) that is simply the highest id; PostgreSQL callers
/// pass an id observed some time ago (see `Store::index_bulk_reports`).
pub(crate) fn index_reports(
    db: &mut Db<'_>,
    max_rows: i64,
    safe_upto: Option<i64>,
) -> Result<IndexOutcome> {
    use crate::schema::bulk_index_state::dsl as st;
    let upto: i64 = on!(db, |c| st::bulk_index_state
        .find(1)
        .select(st::indexed_upto)
        .first(c))?;
    let top: Option<i64> = on!(db, |c| bulk_reports::table
        .select(max(bulk_reports::id))
        .first(c))?;
    let limit = match safe_upto {
        Some(s) => top.map(|t| t.min(s)),
        None => top,
    };
    let Some(limit) = limit.filter(|&l| l > upto) else {
        return Ok(IndexOutcome {
            indexed: 0,
            upto,
            more: false,
        });
    };
    let hi = limit.min(upto.saturating_add(max_rows.max(1)));
    let indexed = match db {
        Db::Sqlite(c) => diesel::sql_query(
            "INSERT OR IGNORE INTO bulk_report_index (device_id, sampled_at, report_id) \
             SELECT device_id, sampled_at, id FROM bulk_reports \
             WHERE id > ? AND id <= ? AND device_id IS NOT NULL \
             ORDER BY device_id, sampled_at, id",
        )
        .bind::<BigInt, _>(upto)
        .bind::<BigInt, _>(hi)
        .execute(*c)?,
        Db::Pg(c) => diesel::sql_query(
            "INSERT INTO bulk_report_index (device_id, sampled_at, report_id) \
             SELECT device_id, sampled_at, id FROM bulk_reports \
             WHERE id > $1 AND id <= $2 AND device_id IS NOT NULL \
             ORDER BY device_id, sampled_at, id ON CONFLICT DO NOTHING",
        )
        .bind::<BigInt, _>(upto)
        .bind::<BigInt, _>(hi)
        .execute(*c)?,
    };
    on!(db, |c| diesel::update(st::bulk_index_state.find(1))
        .filter(st::indexed_upto.lt(hi))
        .set(st::indexed_upto.eq(hi))
        .execute(c))?;
    Ok(IndexOutcome {
        indexed: indexed as u64,
        upto: hi,
        more: hi < limit,
    })
}

/// (`indexed_upto`, highest report id).
pub(crate) fn index_lag(db: &mut Db<'_>) -> Result<(i64, i64)> {
    let upto: i64 = on!(db, |c| bulk_index_state::table
        .find(1)
        .select(bulk_index_state::indexed_upto)
        .first(c))?;
    Ok((upto, max_report_id(db)?))
}

/// The highest report id (0 when there is none).
pub(crate) fn max_report_id(db: &mut Db<'_>) -> Result<i64> {
    let top: Option<i64> = on!(db, |c| bulk_reports::table
        .select(max(bulk_reports::id))
        .first(c))?;
    Ok(top.unwrap_or(0))
}

/// What one [`prune_bulk`] step deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PruneOutcome {
    pub reports: u64,
    pub index_entries: u64,
    pub records: u64,
}

/// Deletes up to `chunk` reports and IPDR records received before `before`,
/// with their index entries. Ids grow with reception, so the expired rows
/// are those below the first id received at or after `before`: finding it
/// scans only expired rows. Callers repeat until nothing is deleted.
pub(crate) fn prune_bulk(
    db: &mut Db<'_>,
    before: NaiveDateTime,
    chunk: i64,
) -> Result<PruneOutcome> {
    use crate::schema::bulk_reports::dsl as r;
    use crate::schema::ipdr_records::dsl as x;
    let chunk = chunk.max(1);
    // Reports: ids of the oldest `chunk` rows, kept while expired.
    let ids: Vec<(i64, NaiveDateTime)> = on!(db, |c| r::bulk_reports
        .select((r::id, r::received_at))
        .order(r::id.asc())
        .limit(chunk)
        .load(c))?;
    let cut = ids
        .iter()
        .take_while(|(_, at)| *at < before)
        .last()
        .map(|(id, _)| *id);
    let mut out = PruneOutcome::default();
    if let Some(cut) = cut {
        // Point deletes by the index's key, taken from the reports.
        let lo = ids[0].0;
        let sql = |p: &str| {
            format!(
                "DELETE FROM bulk_report_index WHERE (device_id, sampled_at, report_id) IN \
                 (SELECT device_id, sampled_at, id FROM bulk_reports \
                 WHERE id >= {p}1 AND id <= {p}2 AND device_id IS NOT NULL)"
            )
        };
        out.index_entries = match db {
            Db::Sqlite(c) => diesel::sql_query(sql("?"))
                .bind::<BigInt, _>(lo)
                .bind::<BigInt, _>(cut)
                .execute(*c)?,
            Db::Pg(c) => diesel::sql_query(sql("$"))
                .bind::<BigInt, _>(lo)
                .bind::<BigInt, _>(cut)
                .execute(*c)?,
        } as u64;
        out.reports = on!(db, |c| diesel::delete(
            r::bulk_reports.filter(r::id.le(cut))
        )
        .execute(c))? as u64;
    }
    let recs: Vec<(i64, NaiveDateTime)> = on!(db, |c| x::ipdr_records
        .select((x::id, x::received_at))
        .order(x::id.asc())
        .limit(chunk)
        .load(c))?;
    if let Some(cut) = recs
        .iter()
        .take_while(|(_, at)| *at < before)
        .last()
        .map(|(id, _)| *id)
    {
        out.records = on!(db, |c| diesel::delete(
            x::ipdr_records.filter(x::id.le(cut))
        )
        .execute(c))? as u64;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Reads

pub(crate) fn list_ipdr_exporters(db: &mut Db<'_>) -> Result<Vec<IpdrExporterRow>> {
    Ok(on!(db, |c| ipdr_exporters::table
        .order(ipdr_exporters::id.asc())
        .select(IpdrExporterRow::as_select())
        .load(c))?)
}

/// Newest first (by start), at most 1,000.
pub(crate) fn list_ipdr_sessions(
    db: &mut Db<'_>,
    exporter: Option<&str>,
) -> Result<Vec<IpdrSessionRow>> {
    use crate::schema::ipdr_sessions::dsl as s_;
    Ok(on!(db, |c| {
        let mut q = s_::ipdr_sessions
            .select(IpdrSessionRow::as_select())
            .order((
                s_::started_at.desc(),
                s_::exporter_id.asc(),
                s_::session_id.asc(),
                s_::document_id.asc(),
            ))
            .limit(SESSION_LIST_LIMIT)
            .into_boxed();
        if let Some(e) = exporter {
            q = q.filter(s_::exporter_id.eq(e));
        }
        q.load(c)
    })?)
}

/// The highest stored DSN of a document: from its records and reports, or from the
/// session row's counter when the records are gone (retention).
pub(crate) fn last_ipdr_sequence(
    db: &mut Db<'_>,
    exporter: &str,
    session_id: i32,
    document_id: &str,
) -> Result<Option<i64>> {
    use crate::schema::bulk_reports::dsl as b;
    use crate::schema::ipdr_records::dsl as r;
    use crate::schema::ipdr_sessions::dsl as s_;
    let from_records: Option<i64> = on!(db, |c| r::ipdr_records
        .filter(r::exporter_id.eq(exporter))
        .filter(r::session_id.eq(session_id))
        .filter(r::document_id.eq(document_id))
        .select(max(r::sequence))
        .first(c))?;
    use crate::schema::ipdr_streams::dsl as t;
    let stream: Option<i64> = on!(db, |c| t::ipdr_streams
        .filter(t::exporter_id.eq(exporter))
        .filter(t::session_id.eq(session_id))
        .filter(t::document_id.eq(document_id))
        .select(t::id)
        .first(c)
        .optional())?;
    let from_reports: Option<i64> = match stream {
        Some(st) => on!(db, |c| b::bulk_reports
            .filter(b::stream_id.eq(st))
            .select(max(b::sequence))
            .first(c))?,
        None => None,
    };
    let from_session: Option<i64> = on!(db, |c| s_::ipdr_sessions
        .find((exporter, session_id, document_id))
        .select(s_::last_sequence)
        .first::<Option<i64>>(c)
        .optional())?
    .flatten();
    Ok(from_records.max(from_reports).max(from_session))
}

/// Newest first (by id), at most `limit` (1..=10,000).
pub(crate) fn query_ipdr_records(
    db: &mut Db<'_>,
    q: &IpdrRecordQuery,
) -> Result<Vec<IpdrRecordRow>> {
    use crate::schema::ipdr_records::dsl as r;
    let limit = q.limit.clamp(1, 10_000);
    let from = q.from.map(to_db);
    let to = q.to.map(to_db);
    let scoped = !crate::access::unrestricted(&q.scopes);
    Ok(on!(db, |c| {
        let mut s = r::ipdr_records
            .select(IpdrRecordRow::as_select())
            .order(r::id.desc())
            .limit(limit)
            .into_boxed();
        if let Some(e) = &q.exporter {
            s = s.filter(r::exporter_id.eq(e));
        }
        if let Some(v) = q.session_id {
            s = s.filter(r::session_id.eq(v));
        }
        if let Some(d) = &q.document_id {
            s = s.filter(r::document_id.eq(d));
        }
        if let Some(t) = q.template_id {
            s = s.filter(r::template_id.eq(t));
        }
        if let Some(d) = &q.device_id {
            s = s.filter(r::device_id.eq(d));
        }
        if let Some(f) = from {
            s = s.filter(r::received_at.ge(f));
        }
        if let Some(t) = to {
            s = s.filter(r::received_at.lt(t));
        }
        if let Some(b) = q.before {
            s = s.filter(r::id.lt(b));
        }
        if scoped {
            // A scoped caller sees records of its devices only (never device-less ones).
            s = s.filter(r::device_id.eq_any(crate::access::scope_where!(
                devices::table.select(devices::id.nullable()).into_boxed(),
                q.scopes
            )));
        }
        s.load(c)
    })?)
}

/// A report as the sample queries read it.
#[derive(Queryable)]
struct ReportRow {
    id: i64,
    device_id: Option<String>,
    sampled_at: NaiveDateTime,
    layout_id: i64,
    vals: String,
    suspect: bool,
    source: String,
    source_ref: Option<String>,
}

type ReportColumns = (
    bulk_reports::id,
    bulk_reports::device_id,
    bulk_reports::sampled_at,
    bulk_reports::layout_id,
    bulk_reports::vals,
    bulk_reports::suspect,
    bulk_reports::source,
    bulk_reports::source_ref,
);

const REPORT_COLUMNS: ReportColumns = (
    bulk_reports::id,
    bulk_reports::device_id,
    bulk_reports::sampled_at,
    bulk_reports::layout_id,
    bulk_reports::vals,
    bulk_reports::suspect,
    bulk_reports::source,
    bulk_reports::source_ref,
);

/// Which paths a query wants.
enum PathFilter<'a> {
    All,
    Exact(&'a str),
    Subtree(&'a str),
}

impl PathFilter<'_> {
    fn wants(&self, p: &str) -> bool {
        match self {
            PathFilter::All => true,
            PathFilter::Exact(x) => p == *x,
            PathFilter::Subtree(x) => p.starts_with(x),
        }
    }
}

/// Expands reports into the samples `q` wants, appending to `out` until it
/// holds `need`; layouts are loaded as met.
fn expand_reports(
    db: &mut Db<'_>,
    reports: Vec<ReportRow>,
    filter: &PathFilter<'_>,
    layouts: &mut HashMap<i64, Vec<String>>,
    skip: &mut i64,
    need: usize,
    out: &mut Vec<SampleRow>,
) -> Result<()> {
    let missing: Vec<i64> = reports
        .iter()
        .map(|r| r.layout_id)
        .filter(|id| !layouts.contains_key(id))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if !missing.is_empty() {
        let rows: Vec<(i64, String)> = on!(db, |c| bulk_layouts::table
            .filter(bulk_layouts::id.eq_any(&missing))
            .select((bulk_layouts::id, bulk_layouts::paths))
            .load(c))?;
        for (id, paths) in rows {
            let paths: Vec<String> = serde_json::from_str(&paths).map_err(|e| {
                StoreError::Invalid(format!("bulk_layouts row {id} is not a JSON array: {e}"))
            })?;
            layouts.insert(id, paths);
        }
    }
    for r in reports {
        let Some(paths) = layouts.get(&r.layout_id) else {
            tracing::warn!(
                report = r.id,
                layout = r.layout_id,
                "bulk report without its layout"
            );
            continue;
        };
        let vals: Vec<String> = serde_json::from_str(&r.vals)
            .map_err(|e| StoreError::Invalid(format!("bulk_reports row {} values: {e}", r.id)))?;
        let at = chrono::DateTime::from_naive_utc_and_offset(r.sampled_at, chrono::Utc);
        for (p, v) in paths.iter().zip(vals) {
            if !filter.wants(p) {
                continue;
            }
            if *skip > 0 {
                *skip -= 1;
                continue;
            }
            if out.len() >= need {
                return Ok(());
            }
            out.push(SampleRow {
                report_id: r.id,
                device_id: r.device_id.clone(),
                sampled_at: at,
                path: p.clone(),
                value: v,
                source: r.source.clone(),
                source_ref: r.source_ref.clone(),
                suspect: r.suspect,
            });
        }
    }
    Ok(())
}

/// Narrows a boxed query to `from <= column < to` (each bound when given).
macro_rules! in_range {
    ($q:ident, $column:expr, $from:expr, $to:expr) => {{
        if let Some(f) = $from {
            $q = $q.filter($column.ge(f));
        }
        if let Some(x) = $to {
            $q = $q.filter($column.lt(x));
        }
        $q
    }};
}

/// Newest first (`sampled_at`, then report id, then the report's order).
///
/// With `device_id`: the report ids come from `bulk_report_index` plus the
/// unindexed tail, so the cost follows that device's reports. Without it,
/// every report in the time range is read.
pub(crate) fn query_samples(db: &mut Db<'_>, q: &SampleQuery) -> Result<Vec<SampleRow>> {
    use crate::schema::bulk_report_index::dsl as i_;
    use crate::schema::bulk_reports::dsl as r;
    let filter = match q.path.as_deref().filter(|p| !p.is_empty()) {
        Some(p) if p.ends_with('.') => PathFilter::Subtree(p),
        Some(p) => PathFilter::Exact(p),
        None => PathFilter::All,
    };
    let from = q.from.map(to_db);
    let to = q.to.map(to_db);
    let need = q.limit.clamp(1, 10_000) as usize;
    let mut skip = q.offset.max(0);
    let mut out = Vec::new();
    let mut layouts = HashMap::new();

    if let Some(device) = &q.device_id {
        let upto: i64 = on!(db, |c| bulk_index_state::table
            .find(1)
            .select(bulk_index_state::indexed_upto)
            .first(c))?;
        // The unindexed tail of this device (bounded by the indexer's lag).
        let mut ids: Vec<(NaiveDateTime, i64)> = on!(db, |c| {
            let mut t = r::bulk_reports
                .filter(r::id.gt(upto))
                .filter(r::device_id.eq(device))
                .select((r::sampled_at, r::id))
                .into_boxed();
            in_range!(t, r::sampled_at, from, to).load(c)
        })?;
        let mut indexed_done = false;
        let mut indexed_read: i64 = 0;
        let mut pos = 0usize;
        loop {
            // Pull the next page of indexed ids, newest first, and keep the
            // merged list sorted (the tail entries are merged in once).
            if !indexed_done {
                let page: Vec<(NaiveDateTime, i64)> = on!(db, |c| {
                    let mut t = i_::bulk_report_index
                        .filter(i_::device_id.eq(device))
                        .filter(i_::report_id.le(upto))
                        .select((i_::sampled_at, i_::report_id))
                        .order((i_::sampled_at.desc(), i_::report_id.desc()))
                        .limit(QUERY_REPORT_PAGE)
                        .offset(indexed_read)
                        .into_boxed();
                    in_range!(t, i_::sampled_at, from, to).load(c)
                })?;
                indexed_done = (page.len() as i64) < QUERY_REPORT_PAGE;
                indexed_read += page.len() as i64;
                ids.extend(page);
                // Newest first; everything before `pos` is already expanded
                // and every new id is older than the last page's, except
                // tail ids, which are all in from the start.
                ids[pos..].sort_unstable_by(|a, b| b.cmp(a));
            }
            // Expand the ids that are certainly next: all of them when the
            // index is exhausted, else those not older than the oldest id of
            // the page just read (older ones may interleave with the next page).
            let end = if indexed_done {
                ids.len()
            } else {
                let oldest = *ids[pos..]
                    .iter()
                    .filter(|e| e.1 <= upto)
                    .min()
                    .expect("page");
                pos + ids[pos..].iter().filter(|e| **e >= oldest).count()
            };
            let chunk: Vec<i64> = ids[pos..end].iter().map(|e| e.1).collect();
            pos = end;
            if !chunk.is_empty() {
                let mut rows: Vec<ReportRow> = on!(db, |c| r::bulk_reports
                    .filter(r::id.eq_any(&chunk))
                    .select(REPORT_COLUMNS)
                    .load(c))?;
                rows.sort_unstable_by_key(|r| std::cmp::Reverse((r.sampled_at, r.id)));
                expand_reports(db, rows, &filter, &mut layouts, &mut skip, need, &mut out)?;
            }
            if out.len() >= need || (indexed_done && pos >= ids.len()) {
                break;
            }
        }
        return Ok(out);
    }

    let mut page_offset: i64 = 0;
    loop {
        let rows: Vec<ReportRow> = on!(db, |c| {
            let mut t = r::bulk_reports
                .select(REPORT_COLUMNS)
                .order((r::sampled_at.desc(), r::id.desc()))
                .limit(QUERY_REPORT_PAGE)
                .offset(page_offset)
                .into_boxed();
            in_range!(t, r::sampled_at, from, to).load(c)
        })?;
        let done = (rows.len() as i64) < QUERY_REPORT_PAGE;
        page_offset += rows.len() as i64;
        expand_reports(db, rows, &filter, &mut layouts, &mut skip, need, &mut out)?;
        if done || out.len() >= need {
            return Ok(out);
        }
    }
}

/// The canonical id of the identity if the ACS knows that device.
pub(crate) fn device_exists_by_identity(
    db: &mut Db<'_>,
    oui: &str,
    product_class: &str,
    serial_number: &str,
) -> Result<Option<String>> {
    let id = canonical_device_id(oui, product_class, serial_number);
    Ok(on!(db, |c| devices::table
        .find(&id)
        .select(devices::id)
        .first::<String>(c)
        .optional())?)
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;

    use super::*;
    use crate::cached::Prepares;

    fn migrated() -> SqliteConnection {
        let mut c = SqliteConnection::establish(":memory:").unwrap();
        for m in [
            include_str!("../../migrations/sqlite/2025-11-22-000000_bulkdata/up.sql"),
            include_str!("../../migrations/sqlite/2025-11-23-000000_bulk_reports/up.sql"),
        ] {
            c.batch_execute(m).unwrap();
        }
        c
    }

    /// The hot statements are prepared once per connection, then reused.
    #[test]
    fn hot_statements_stay_prepared() {
        let mut c = migrated();
        let prepares = Prepares::default();
        c.set_instrumentation(prepares.clone());
        let now = chrono::Utc::now();
        for round in 0..3 {
            let records = (0..5)
                .map(|q| IpdrRecordIn {
                    session_id: 1,
                    document_id: "d".into(),
                    sequence: round * 5 + q,
                    template_id: 1,
                    received_at: now,
                    fields: serde_json::json!({}),
                    device_id: Some("dev".into()),
                    report: (q % 2 == 0).then(|| ReportIn {
                        sampled_at: now,
                        suspect: false,
                        pairs: (0..20)
                            .map(|i| (format!("Device.P{i}"), i.to_string()))
                            .collect(),
                    }),
                })
                .collect();
            let mut b = IpdrBatch::new("e");
            b.records = records;
            let b = prepare_ipdr(b).unwrap();
            let ids =
                insert_records(&mut Db::Sqlite(&mut c), "e", SOURCE_IPDR, &b.records).unwrap();
            assert_eq!(ids.len(), 5);
        }
        // Over three rounds: the stream insert and lookup, the report insert and the
        // record insert, each prepared once.
        let prepared = prepares.0.lock().unwrap().clone();
        assert_eq!(prepared.len(), 4, "{prepared:#?}");
        let n: i64 = bulk_reports::table.count().get_result(&mut c).unwrap();
        assert_eq!(n, 3 * 3);
        let n: i64 = ipdr_records::table.count().get_result(&mut c).unwrap();
        assert_eq!(n, 3 * 2);
        // The text timestamp reads back as the same instant.
        let t: NaiveDateTime = bulk_reports::table
            .select(bulk_reports::sampled_at)
            .first(&mut c)
            .unwrap();
        assert_eq!(t, to_db(now));
    }

    #[test]
    fn layout_ids_are_stable_and_positive() {
        let a = layout_id(["Device.A", "Device.B"]);
        assert!(a >= 0);
        assert_eq!(a, layout_id(["Device.A", "Device.B"]));
        assert_ne!(a, layout_id(["Device.AD", "evice.B"]));
        assert_ne!(a, layout_id(["Device.B", "Device.A"]));
        // Fixed forever: stored ids depend on it.
        assert_eq!(layout_id(["Device.A"]), layout_id(["Device.A"]));
    }
}
