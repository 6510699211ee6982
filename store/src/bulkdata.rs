//! Bulk-data queries: IPDR exporters, sessions and records, and samples.
//!
//! # The IPDR commit path
//!
//! [`ipdr_commit`] is one writer job per batch of records (typically the
//! records received since the last DATA_ACK). Everything the job can do
//! before it reaches the writer thread is done by [`prepare_ipdr`] on the
//! caller's task (validation, JSON encoding), so the single writer thread
//! spends its time on binds and B-tree inserts only:
//!
//! * records: SQLite inserts them one by one with `INSERT OR IGNORE …
//!   RETURNING id` (one cached prepared statement, no round trips to save);
//!   PostgreSQL sends chunks of multi-row `INSERT … ON CONFLICT DO NOTHING
//!   RETURNING`, and matches the returned keys to the batch. Either way a
//!   record whose key is already stored (or earlier in the batch) yields no
//!   id: it is a duplicate, and its samples are skipped.
//! * samples of the inserted records: SQLite uses multi-row `INSERT`s of
//!   fixed sizes (64/16/4/1 rows, each a statically typed statement that
//!   stays prepared); PostgreSQL streams them with binary `COPY FROM`.
//! * counters: one upsert per (session, document) touched, one update of
//!   the exporter.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::dsl::{case_when, max};
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::sqlite::Sqlite;
use diesel::upsert::excluded;
use diesel::{PgConnection, SqliteConnection};

use crate::bulktypes::*;
use crate::db::{on, Db};
use crate::error::{Result, StoreError};
use crate::ops::prefix_bounds;
use crate::schema::{bulk_samples, devices, ipdr_exporters, ipdr_records, ipdr_sessions};
use crate::sqlconv::to_db;

/// Records per multi-row INSERT on PostgreSQL (8 binds each: well under the
/// 65,535 bind limit).
const PG_RECORD_CHUNK: usize = 1000;

/// Most sessions [`list_ipdr_sessions`] returns.
const SESSION_LIST_LIMIT: i64 = 1000;

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
#[diesel(table_name = bulk_samples, treat_none_as_default_value = false)]
struct NewSample<'a> {
    device_id: Option<&'a str>,
    sampled_at: NaiveDateTime,
    path: &'a str,
    value: &'a str,
    source: &'a str,
    source_ref: Option<&'a str>,
    record_id: Option<i64>,
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

fn clean_samples(samples: Vec<SampleIn>) -> Vec<SampleIn> {
    if !samples
        .iter()
        .any(|s| s.path.contains('\0') || s.value.contains('\0'))
    {
        return samples;
    }
    samples
        .into_iter()
        .map(|s| SampleIn {
            path: strip_nul(s.path),
            value: strip_nul(s.value),
            sampled_at: s.sampled_at,
        })
        .collect()
}

pub(crate) struct PreparedRecord {
    session_id: i32,
    document_id: String,
    sequence: i64,
    template_id: i32,
    received_at: NaiveDateTime,
    fields: String,
    device_id: Option<String>,
    samples: Vec<SampleIn>,
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
    let records = batch
        .records
        .into_iter()
        .map(|r| PreparedRecord {
            session_id: r.session_id,
            document_id: strip_nul(r.document_id),
            sequence: r.sequence,
            template_id: r.template_id,
            received_at: to_db(r.received_at),
            // JSON text escapes NUL itself.
            fields: r.fields.to_string(),
            device_id: r.device_id.map(strip_nul),
            samples: clean_samples(r.samples),
        })
        .collect();
    Ok(PreparedBatch {
        exporter_id: strip_nul(batch.exporter_id),
        source: batch.source,
        sessions,
        records,
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

/// The arguments of [`insert_samples`], validated and cleaned.
pub(crate) struct PreparedSamples {
    pub(crate) device_id: Option<String>,
    pub(crate) source: String,
    pub(crate) source_ref: Option<String>,
    pub(crate) samples: Vec<SampleIn>,
}

pub(crate) fn prepare_samples(
    device_id: Option<String>,
    source: &str,
    source_ref: Option<String>,
    samples: Vec<SampleIn>,
) -> Result<PreparedSamples> {
    check_source(source)?;
    Ok(PreparedSamples {
        device_id: device_id.map(strip_nul),
        source: source.to_string(),
        source_ref: source_ref.map(strip_nul),
        samples: clean_samples(samples),
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

/// Inserts the records, each unless its key exists; returns, in batch
/// order, the index in `records` and the new id of each inserted one.
fn insert_records(
    db: &mut Db<'_>,
    exporter: &str,
    records: &[PreparedRecord],
) -> Result<Vec<(usize, i64)>> {
    fn row<'a>(exporter: &'a str, r: &'a PreparedRecord) -> NewRecord<'a> {
        NewRecord {
            exporter_id: exporter,
            session_id: r.session_id,
            document_id: &r.document_id,
            sequence: r.sequence,
            template_id: r.template_id,
            received_at: r.received_at,
            fields: &r.fields,
            device_id: r.device_id.as_deref(),
        }
    }
    let mut inserted = Vec::with_capacity(records.len());
    match db {
        Db::Sqlite(c) => {
            // `OR IGNORE` (unlike `ON CONFLICT`) keeps a static query id, so
            // the statement is prepared once per connection. Only the unique
            // key can conflict: the columns are typed and NOT NULL-safe.
            for (i, r) in records.iter().enumerate() {
                let id: Option<i64> = diesel::insert_or_ignore_into(ipdr_records::table)
                    .values(&row(exporter, r))
                    .returning(ipdr_records::id)
                    .get_result(*c)
                    .optional()?;
                if let Some(id) = id {
                    inserted.push((i, id));
                }
            }
        }
        Db::Pg(c) => {
            for (n, chunk) in records.chunks(PG_RECORD_CHUNK).enumerate() {
                let base = n * PG_RECORD_CHUNK;
                let rows: Vec<NewRecord<'_>> = chunk.iter().map(|r| row(exporter, r)).collect();
                let returned: Vec<(i64, i32, String, i64)> =
                    diesel::insert_into(ipdr_records::table)
                        .values(&rows)
                        .on_conflict_do_nothing()
                        .returning((
                            ipdr_records::id,
                            ipdr_records::session_id,
                            ipdr_records::document_id,
                            ipdr_records::sequence,
                        ))
                        .get_results(*c)?;
                if returned.is_empty() {
                    continue;
                }
                // RETURNING order is not guaranteed: match by key. A key
                // repeated within the chunk was inserted by its first row.
                let mut first: HashMap<(i32, &str, i64), usize> =
                    HashMap::with_capacity(chunk.len());
                for (i, r) in chunk.iter().enumerate() {
                    first
                        .entry((r.session_id, r.document_id.as_str(), r.sequence))
                        .or_insert(base + i);
                }
                let start = inserted.len();
                for (id, session, document, sequence) in &returned {
                    if let Some(&i) = first.get(&(*session, document.as_str(), *sequence)) {
                        inserted.push((i, *id));
                    }
                }
                inserted[start..].sort_unstable_by_key(|&(i, _)| i);
            }
        }
    }
    Ok(inserted)
}

/// Inserts sample rows (all or nothing, within the job's transaction).
fn insert_sample_rows(db: &mut Db<'_>, rows: &[NewSample<'_>]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    match db {
        Db::Sqlite(c) => insert_samples_sqlite(c, rows)?,
        Db::Pg(c) => insert_samples_pg(c, rows)?,
    }
    Ok(())
}

/// A sample row as SQLite binds it: the timestamp pre-formatted as text.
struct SqliteSample<'a> {
    device_id: Option<&'a str>,
    sampled_at: &'a str,
    path: &'a str,
    value: &'a str,
    source: &'a str,
    source_ref: Option<&'a str>,
    record_id: Option<i64>,
}

/// `INSERT INTO bulk_samples … VALUES (…), … ` with exactly `N` rows.
///
/// Written by hand rather than with `insert_into(…).values(&[row; N])`
/// because diesel's query id of a fixed-size batch is the row type itself,
/// which must then be `'static` (owned strings: a copy of every path and
/// value). This one borrows, and its query id is static per `N`, so each
/// size is prepared once per connection and found by type, without
/// rendering the SQL again.
struct SqliteSampleRows<'a, const N: usize>(&'a [SqliteSample<'a>; N]);

struct SqliteSampleRowsId<const N: usize>;

impl<const N: usize> QueryId for SqliteSampleRows<'_, N> {
    type QueryId = SqliteSampleRowsId<N>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<const N: usize> QueryFragment<Sqlite> for SqliteSampleRows<'_, N> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql(
            "INSERT INTO bulk_samples \
             (device_id, sampled_at, path, value, source, source_ref, record_id) VALUES ",
        );
        for (i, r) in self.0.iter().enumerate() {
            out.push_sql(if i == 0 { "(" } else { ", (" });
            out.push_bind_param::<Nullable<Text>, _>(&r.device_id)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(&r.sampled_at)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(&r.path)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(&r.value)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(&r.source)?;
            out.push_sql(", ");
            out.push_bind_param::<Nullable<Text>, _>(&r.source_ref)?;
            out.push_sql(", ");
            out.push_bind_param::<Nullable<BigInt>, _>(&r.record_id)?;
            out.push_sql(")");
        }
        Ok(())
    }
}

impl<const N: usize> RunQueryDsl<SqliteConnection> for SqliteSampleRows<'_, N> {}

/// diesel's text form of a SQLite `TIMESTAMP` (what `NaiveDateTime`
/// binds as): it sorts and compares correctly as text.
const SQLITE_TIMESTAMP_FORMAT: &str = "%F %T%.f";

fn insert_samples_sqlite(c: &mut SqliteConnection, rows: &[NewSample<'_>]) -> QueryResult<()> {
    // Samples of one report share their time: format each distinct run once.
    let mut times: Vec<String> = Vec::new();
    let mut time_of: Vec<usize> = Vec::with_capacity(rows.len());
    let mut last = None;
    for r in rows {
        if last != Some(r.sampled_at) {
            times.push(r.sampled_at.format(SQLITE_TIMESTAMP_FORMAT).to_string());
            last = Some(r.sampled_at);
        }
        time_of.push(times.len() - 1);
    }
    let lite: Vec<SqliteSample<'_>> = rows
        .iter()
        .zip(time_of)
        .map(|(r, t)| SqliteSample {
            device_id: r.device_id,
            sampled_at: &times[t],
            path: r.path,
            value: r.value,
            source: r.source,
            source_ref: r.source_ref,
            record_id: r.record_id,
        })
        .collect();
    let mut rest = &lite[..];
    macro_rules! chunks_of {
        ($n:literal) => {
            while rest.len() >= $n {
                let (head, tail) = rest.split_at($n);
                let head: &[SqliteSample<'_>; $n] = head.try_into().expect("split at N");
                SqliteSampleRows(head).execute(c)?;
                rest = tail;
            }
        };
    }
    chunks_of!(64);
    chunks_of!(16);
    chunks_of!(4);
    chunks_of!(1);
    Ok(())
}

fn insert_samples_pg(c: &mut PgConnection, rows: &[NewSample<'_>]) -> QueryResult<()> {
    diesel::copy_from(bulk_samples::table)
        .from_insertable(rows)
        .execute(c)?;
    Ok(())
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

    let inserted = insert_records(db, exporter, &b.records)?;

    let mut samples = Vec::with_capacity(
        inserted
            .iter()
            .map(|&(i, _)| b.records[i].samples.len())
            .sum(),
    );
    let mut tallies: HashMap<(i32, &str), SessionTally> = HashMap::new();
    for &(i, id) in &inserted {
        let r = &b.records[i];
        samples.extend(r.samples.iter().map(|s| NewSample {
            device_id: r.device_id.as_deref(),
            sampled_at: to_db(s.sampled_at),
            path: &s.path,
            value: &s.value,
            source: &b.source,
            source_ref: None,
            record_id: Some(id),
        }));
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
    insert_sample_rows(db, &samples)?;

    for ((session_id, document_id), t) in &tallies {
        // A document never announced by SESSION_START (IPDR/XML files, or a
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
        samples: samples.len() as u64,
    })
}

pub(crate) fn insert_samples(db: &mut Db<'_>, p: &PreparedSamples) -> Result<u64> {
    let rows: Vec<NewSample<'_>> = p
        .samples
        .iter()
        .map(|s| NewSample {
            device_id: p.device_id.as_deref(),
            sampled_at: to_db(s.sampled_at),
            path: &s.path,
            value: &s.value,
            source: &p.source,
            source_ref: p.source_ref.as_deref(),
            record_id: None,
        })
        .collect();
    insert_sample_rows(db, &rows)?;
    Ok(rows.len() as u64)
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

/// The highest stored DSN of a document: from its records, or from the
/// session row's counter when the records are gone (retention).
pub(crate) fn last_ipdr_sequence(
    db: &mut Db<'_>,
    exporter: &str,
    session_id: i32,
    document_id: &str,
) -> Result<Option<i64>> {
    use crate::schema::ipdr_records::dsl as r;
    use crate::schema::ipdr_sessions::dsl as s_;
    let from_records: Option<i64> = on!(db, |c| r::ipdr_records
        .filter(r::exporter_id.eq(exporter))
        .filter(r::session_id.eq(session_id))
        .filter(r::document_id.eq(document_id))
        .select(max(r::sequence))
        .first(c))?;
    let from_session: Option<i64> = on!(db, |c| s_::ipdr_sessions
        .find((exporter, session_id, document_id))
        .select(s_::last_sequence)
        .first::<Option<i64>>(c)
        .optional())?
    .flatten();
    Ok(from_records.max(from_session))
}

/// Newest first (by id), at most `limit` (1..=10,000).
pub(crate) fn query_ipdr_records(
    db: &mut Db<'_>,
    exporter: Option<&str>,
    session_id: Option<i32>,
    limit: i64,
) -> Result<Vec<IpdrRecordRow>> {
    use crate::schema::ipdr_records::dsl as r;
    let limit = limit.clamp(1, 10_000);
    Ok(on!(db, |c| {
        let mut q = r::ipdr_records
            .select(IpdrRecordRow::as_select())
            .order(r::id.desc())
            .limit(limit)
            .into_boxed();
        if let Some(e) = exporter {
            q = q.filter(r::exporter_id.eq(e));
        }
        if let Some(s) = session_id {
            q = q.filter(r::session_id.eq(s));
        }
        q.load(c)
    })?)
}

/// Newest first (`sampled_at`, then id).
pub(crate) fn query_samples(db: &mut Db<'_>, q: &SampleQuery) -> Result<Vec<SampleRow>> {
    use crate::schema::bulk_samples::dsl as b;
    let path = q.path.as_deref().filter(|p| !p.is_empty());
    let (exact, range) = match path {
        Some(p) if p.ends_with('.') => (None, prefix_bounds(p)),
        Some(p) => (Some(p), None),
        None => (None, None),
    };
    let from = q.from.map(to_db);
    let to = q.to.map(to_db);
    let limit = q.limit.clamp(1, 10_000);
    let offset = q.offset.max(0);
    Ok(on!(db, |c| {
        let mut query = b::bulk_samples
            .select(SampleRow::as_select())
            .order((b::sampled_at.desc(), b::id.desc()))
            .limit(limit)
            .offset(offset)
            .into_boxed();
        if let Some(d) = &q.device_id {
            query = query.filter(b::device_id.eq(d));
        }
        if let Some(p) = exact {
            query = query.filter(b::path.eq(p));
        }
        if let Some((lo, hi)) = &range {
            query = query.filter(b::path.ge(lo)).filter(b::path.lt(hi));
        }
        if let Some(t) = from {
            query = query.filter(b::sampled_at.ge(t));
        }
        if let Some(t) = to {
            query = query.filter(b::sampled_at.lt(t));
        }
        query.load(c)
    })?)
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

    /// The hot statements are prepared once per connection, then reused.
    #[test]
    fn hot_statements_stay_prepared() {
        let mut c = SqliteConnection::establish(":memory:").unwrap();
        c.batch_execute(include_str!(
            "../../migrations/sqlite/2025-11-22-000000_bulkdata/up.sql"
        ))
        .unwrap();
        let prepares = Prepares::default();
        c.set_instrumentation(prepares.clone());
        let at = to_db(chrono::Utc::now());
        let samples: Vec<SampleIn> = (0..85)
            .map(|i| SampleIn::new(format!("Device.P{i}"), i.to_string(), chrono::Utc::now()))
            .collect();
        for round in 0..3 {
            let records: Vec<PreparedRecord> = (0..5)
                .map(|q| PreparedRecord {
                    session_id: 1,
                    document_id: "d".into(),
                    sequence: round * 5 + q,
                    template_id: 1,
                    received_at: at,
                    fields: "{}".into(),
                    device_id: None,
                    samples: vec![],
                })
                .collect();
            let ids = insert_records(&mut Db::Sqlite(&mut c), "e", &records).unwrap();
            assert_eq!(ids.len(), 5);
            let rows: Vec<NewSample<'_>> = samples
                .iter()
                .map(|s| NewSample {
                    device_id: Some("dev"),
                    sampled_at: to_db(s.sampled_at),
                    path: &s.path,
                    value: &s.value,
                    source: SOURCE_IPDR,
                    source_ref: None,
                    record_id: Some(ids[0].1),
                })
                .collect();
            // 85 = 64 + 16 + 4 + 1: four statement sizes.
            insert_sample_rows(&mut Db::Sqlite(&mut c), &rows).unwrap();
        }
        let prepared = prepares.0.lock().unwrap().clone();
        assert_eq!(prepared.len(), 5, "{prepared:#?}");
        let n: i64 = bulk_samples::table.count().get_result(&mut c).unwrap();
        assert_eq!(n, 3 * 85);
        // The text timestamp reads back as the same instant.
        let t: NaiveDateTime = bulk_samples::table
            .select(bulk_samples::sampled_at)
            .first(&mut c)
            .unwrap();
        assert_eq!(t, to_db(samples[0].sampled_at));
    }
}
