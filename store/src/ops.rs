//! The queries. Each function runs on a borrowed [`Db`] and is either a read
//! (run on the pool) or the body of one writer job (already inside a
//! transaction savepoint); `lib.rs` decides which.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable, Text};
use diesel::upsert::excluded;
use serde_json::{json, Value};

use crate::access::scope_where;
use crate::cached::Cached;
use crate::db::{on, Db};
use crate::error::{Result, StoreError};
use crate::schema::{device_tags, devices, events, files, parameters, tasks};
use crate::sqlconv::{now, to_db};
use crate::types::*;

diesel::define_sql_function! {
    /// `coalesce` over nullable text.
    #[sql_name = "coalesce"]
    fn coalesce_text(a: Nullable<Text>, b: Nullable<Text>) -> Nullable<Text>;
}

diesel::define_sql_function! {
    /// `coalesce` over nullable booleans.
    #[sql_name = "coalesce"]
    fn coalesce_bool(a: Nullable<Bool>, b: Nullable<Bool>) -> Nullable<Bool>;
}

diesel::define_sql_function! {
    /// ASCII lower-casing on both backends for the columns we search.
    fn lower(a: Text) -> Text;
}

diesel::define_sql_function! {
    #[sql_name = "lower"]
    fn lower_opt(a: Nullable<Text>) -> Nullable<Text>;
}

/// The indexed prefix of `parameters.value` in PostgreSQL's
/// `parameters_path_value` index; must stay identical to that expression
/// (a bound parameter would not match an expression index). SQLite indexes
/// `(path, value)` and simply evaluates this as a constant.
const INDEXED_VALUE: &str = "substr(parameters.value, 1, 256)";
const INDEXED_VALUE_CHARS: usize = 256;

/// Rows per multi-row INSERT on PostgreSQL (one round trip each; well under
/// the bind limit). SQLite has no round trips: it inserts row by row with
/// one cached prepared statement, which beats re-preparing a multi-row
/// statement of varying length every time.
const INSERT_CHUNK: usize = 500;

/// Multi-row statements of up to this many rows keep their prepared
/// statement (one per row count: a bounded set), saving PostgreSQL a
/// round trip; typical Informs report 5–15 parameters and 1–3 events.
const CACHED_ROWS: usize = 64;

const FAULT_BOOTSTRAP: &str = "cancelled by BOOTSTRAP";
/// Keelson's code for it (`acs::faults::CANCELLED_BY_BOOTSTRAP`).
pub const FAULT_BOOTSTRAP_CODE: i32 = 8806;

// ---------------------------------------------------------------------------
// Insertable / changeset shapes (private: the API has its own types)

#[derive(Insertable)]
#[diesel(table_name = devices, treat_none_as_default_value = false)]
struct NewDevice<'a> {
    id: &'a str,
    oui: &'a str,
    product_class: &'a str,
    serial_number: &'a str,
    manufacturer: &'a str,
    root_object: &'a str,
    software_version: Option<&'a str>,
    hardware_version: Option<&'a str>,
    connection_request_url: Option<&'a str>,
    udp_connection_request_address: Option<&'a str>,
    parameter_key: Option<&'a str>,
    cwmp_ns: &'a str,
    cwmp_version: &'a str,
    last_inform_at: NaiveDateTime,
    last_remote_addr: Option<&'a str>,
    last_current_time: Option<&'a str>,
    last_retry_count: i32,
    first_seen_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = events, treat_none_as_default_value = false)]
struct NewEvent<'a> {
    device_id: &'a str,
    received_at: NaiveDateTime,
    event_code: &'a str,
    command_key: &'a str,
    session_id: Option<&'a str>,
}

#[derive(Insertable)]
#[diesel(table_name = parameters, treat_none_as_default_value = false)]
struct NewParam<'a> {
    device_id: &'a str,
    path: &'a str,
    value: Option<&'a str>,
    xsd_type: Option<&'a str>,
    writable: Option<bool>,
    is_object: bool,
    fetched_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = tasks, treat_none_as_default_value = false)]
struct NewTaskRow<'a> {
    device_id: &'a str,
    kind: &'a str,
    args: String,
    status: &'a str,
    created_at: NaiveDateTime,
    expires_at: Option<NaiveDateTime>,
    attempts: i32,
    max_attempts: i32,
}

/// `None` leaves a column alone; `Some(None)` sets it to NULL.
#[derive(AsChangeset)]
#[diesel(table_name = tasks)]
struct TaskChange {
    status: &'static str,
    attempts: Option<i32>,
    result: Option<Option<String>>,
    fault_code: Option<Option<i32>>,
    fault_string: Option<Option<String>>,
    fault_detail: Option<Option<String>>,
    started_at: Option<NaiveDateTime>,
    completed_at: Option<Option<NaiveDateTime>>,
    session_id: Option<String>,
    lease_node: Option<Option<String>>,
    lease_until: Option<Option<NaiveDateTime>>,
    waiting_until: Option<Option<NaiveDateTime>>,
    sent_key: Option<String>,
}

#[derive(Insertable)]
#[diesel(table_name = files, treat_none_as_default_value = false)]
struct NewFileRow<'a> {
    id: &'a str,
    name: &'a str,
    file_type: &'a str,
    oui: &'a str,
    product_class: &'a str,
    version: &'a str,
    size: i64,
    sha256: &'a str,
    content_type: &'a str,
    stored_path: &'a str,
    device_id: Option<&'a str>,
    task_id: Option<i64>,
    created_at: NaiveDateTime,
}

// ---------------------------------------------------------------------------
// Helpers

/// Keeps only the last of several items with the same key (order of those kept
/// is preserved): a multi-row upsert may not touch one row twice.
fn last_wins<T>(items: Vec<T>, key: impl Fn(&T) -> &str) -> Vec<T> {
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        last.insert(key(item), i);
    }
    if last.len() == items.len() {
        return items;
    }
    let keep: Vec<bool> = items
        .iter()
        .enumerate()
        .map(|(i, item)| last[key(item)] == i)
        .collect();
    items
        .into_iter()
        .zip(keep)
        .filter_map(|(item, k)| k.then_some(item))
        .collect()
}

/// `[lo, hi)` covering every string that starts with `prefix`, in bytewise
/// (= code point) order. `None` for the empty prefix (everything).
pub(crate) fn prefix_bounds(prefix: &str) -> Option<(String, String)> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(c as u32 + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some((prefix.to_string(), chars.into_iter().collect()));
        }
    }
    None
}

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern.
pub(crate) fn like_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for ch in s.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

fn json_text(v: &Value) -> String {
    v.to_string()
}

/// The CommandKey of task `id`: unique through the id, with a random tail so
/// that keys from an earlier database never match a new task. ≤ 29 chars.
fn command_key_for(id: i64) -> String {
    format!("k{id}-{:08x}", uuid::Uuid::new_v4().as_u128() as u32)
}

fn clamp_limit(limit: i64) -> i64 {
    limit.clamp(1, 10_000)
}

// ---------------------------------------------------------------------------
// Hot path

pub(crate) fn device_auth(db: &mut Db<'_>, id: &str) -> Result<Option<DeviceAuth>> {
    type Row = (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let row: Option<Row> = on!(db, |c| devices::table
        .find(id)
        .select((
            devices::cpe_username,
            devices::cpe_password,
            devices::cpe_ha1_md5,
            devices::cpe_ha1_sha256,
            devices::cpe_realm,
        ))
        .first(c)
        .optional())?;
    Ok(row.map(
        |(cpe_username, cpe_password, md5, sha256, realm)| DeviceAuth {
            cpe_username,
            cpe_password,
            cpe_secret: match (md5, sha256, realm) {
                (Some(md5), Some(sha256), Some(realm)) => Some(CpeSecret { md5, sha256, realm }),
                _ => None,
            },
        },
    ))
}

/// Devices whose CPE password is still stored in clear: (id, username, password).
pub(crate) fn cleartext_cpe_passwords(
    db: &mut Db<'_>,
) -> Result<Vec<(String, Option<String>, String)>> {
    let rows: Vec<(String, Option<String>, Option<String>)> = on!(db, |c| devices::table
        .filter(devices::cpe_password.is_not_null())
        .select((devices::id, devices::cpe_username, devices::cpe_password))
        .load(c))?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, u, p)| p.map(|p| (id, u, p)))
        .collect())
}

/// Replaces a device's cleartext CPE password with its sealed form.
pub(crate) fn seal_cpe_password(db: &mut Db<'_>, id: &str, secret: CpeSecret) -> Result<bool> {
    use crate::schema::devices::dsl as d;
    let n = on!(db, |c| diesel::update(d::devices.find(id))
        .set((
            d::cpe_password.eq(None::<String>),
            d::cpe_ha1_md5.eq(Some(&secret.md5)),
            d::cpe_ha1_sha256.eq(Some(&secret.sha256)),
            d::cpe_realm.eq(Some(&secret.realm)),
        ))
        .execute(c))?;
    Ok(n > 0)
}

/// Devices whose sealed CPE secret was made for another realm (it cannot verify there).
pub(crate) fn count_foreign_realm_secrets(db: &mut Db<'_>, realm: &str) -> Result<i64> {
    Ok(on!(db, |c| devices::table
        .filter(devices::cpe_realm.is_not_null())
        .filter(devices::cpe_realm.ne(realm))
        .count()
        .get_result(c))?)
}

pub(crate) fn record_inform(db: &mut Db<'_>, rec: InformRecord) -> Result<InformOutcome> {
    use crate::schema::devices::dsl as d;
    use crate::schema::tasks::dsl as t;

    let at = to_db(rec.received_at);
    let id = rec.device_id.as_str();
    let new = NewDevice {
        id,
        oui: &rec.oui,
        product_class: &rec.product_class,
        serial_number: &rec.serial_number,
        manufacturer: &rec.manufacturer,
        root_object: &rec.root_object,
        software_version: rec.software_version.as_deref(),
        hardware_version: rec.hardware_version.as_deref(),
        connection_request_url: rec.connection_request_url.as_deref(),
        udp_connection_request_address: rec.udp_connection_request_address.as_deref(),
        parameter_key: rec.parameter_key.as_deref(),
        cwmp_ns: &rec.cwmp_ns,
        cwmp_version: &rec.cwmp_version,
        last_inform_at: at,
        last_remote_addr: rec.remote_addr.as_deref(),
        last_current_time: rec.current_time.as_deref(),
        last_retry_count: rec.retry_count,
        first_seen_at: at,
    };
    let (first_seen, mut epoch): (NaiveDateTime, i32) = on!(db, |c| Cached(
        diesel::insert_into(d::devices)
            .values(&new)
            .on_conflict(d::id)
            .do_update()
            // Not the OUI, ProductClass and serial number: they make the id, so they cannot
            // differ, and leaving them out spares their indexes a rewrite on every Inform.
            .set((
                d::manufacturer.eq(excluded(d::manufacturer)),
                d::root_object.eq(excluded(d::root_object)),
                d::software_version.eq(coalesce_text(
                    excluded(d::software_version),
                    d::software_version
                )),
                d::hardware_version.eq(coalesce_text(
                    excluded(d::hardware_version),
                    d::hardware_version
                )),
                d::connection_request_url.eq(coalesce_text(
                    excluded(d::connection_request_url),
                    d::connection_request_url,
                )),
                d::udp_connection_request_address.eq(coalesce_text(
                    excluded(d::udp_connection_request_address),
                    d::udp_connection_request_address,
                )),
                d::parameter_key.eq(coalesce_text(excluded(d::parameter_key), d::parameter_key)),
                d::cwmp_ns.eq(excluded(d::cwmp_ns)),
                d::cwmp_version.eq(excluded(d::cwmp_version)),
                d::last_inform_at.eq(excluded(d::last_inform_at)),
                d::last_remote_addr.eq(coalesce_text(
                    excluded(d::last_remote_addr),
                    d::last_remote_addr
                )),
                d::last_current_time.eq(excluded(d::last_current_time)),
                d::last_retry_count.eq(excluded(d::last_retry_count)),
            ))
            .returning((d::first_seen_at, d::bootstrap_epoch))
    )
    .get_result(c))?;

    // What the device has queued, in one query: runnable tasks (what the session needs to
    // know) and open ones (waiting for, or running on, the CPE). The updates below touch
    // only open tasks, so an Inform from a device without any (the common case) runs none
    // of them. They never make a task runnable, so counting first is exact.
    let counts: Vec<(String, i64)> = on!(db, |c| Cached(
        t::tasks
            .filter(t::device_id.eq(id))
            .filter(t::status.eq_any(["pending", "waiting", "running"]))
            .filter(
                t::status
                    .ne("pending")
                    .or(t::expires_at.is_null())
                    .or(t::expires_at.gt(at))
            )
            .group_by(t::status)
            .select((t::status, diesel::dsl::count_star()))
    )
    .load(c))?;
    let pending_tasks: i64 = counts
        .iter()
        .filter(|(s, _)| s == "pending")
        .map(|(_, n)| *n)
        .sum();
    let open_tasks = counts.iter().any(|(s, n)| s != "pending" && *n > 0);

    // `M <Method>` events name operations whose completion this session
    // reports; BOOTSTRAP must not cancel those.
    let completed: Vec<(&str, &str)> = rec
        .events
        .iter()
        .filter_map(|e| Some((e.code.strip_prefix("M ")?, e.command_key.as_str())))
        .filter(|(_, key)| !key.is_empty())
        .collect();

    if rec.bootstrap {
        on!(db, |c| diesel::delete(
            parameters::table.filter(parameters::device_id.eq(id))
        )
        .execute(c))?;
        epoch = on!(db, |c| diesel::update(d::devices.find(id))
            .set(d::bootstrap_epoch.eq(d::bootstrap_epoch + 1))
            .returning(d::bootstrap_epoch)
            .get_result(c))?;
    }
    if rec.bootstrap && open_tasks {
        // A factory reset is complete when the CPE bootstraps.
        on!(db, |c| diesel::update(t::tasks)
            .filter(t::device_id.eq(id))
            .filter(t::kind.eq("FactoryReset"))
            .filter(t::status.eq_any(["waiting", "running"]))
            .set((t::status.eq("done"), t::completed_at.eq(at)))
            .execute(c))?;
        // Anything else we were waiting for is lost with the CPE's state.
        let keep: Vec<&str> = completed.iter().map(|(_, key)| *key).collect();
        on!(db, |c| {
            let mut q = diesel::update(t::tasks)
                .filter(t::device_id.eq(id))
                .filter(t::status.eq("waiting"))
                .into_boxed();
            if !keep.is_empty() {
                q = q.filter(t::command_key.is_null().or(t::command_key.ne_all(&keep)));
            }
            q.set((
                t::status.eq("fault"),
                t::fault_code.eq(Some(FAULT_BOOTSTRAP_CODE)),
                t::fault_string.eq(FAULT_BOOTSTRAP),
                t::completed_at.eq(at),
            ))
            .execute(c)
        })?;
    }

    let new_events: Vec<NewEvent<'_>> = rec
        .events
        .iter()
        .map(|e| NewEvent {
            device_id: id,
            received_at: at,
            event_code: &e.code,
            command_key: &e.command_key,
            session_id: rec.session_id.as_deref(),
        })
        .collect();
    match db {
        Db::Sqlite(c) => {
            for row in &new_events {
                diesel::insert_into(events::table).values(row).execute(*c)?;
            }
        }
        Db::Pg(c) => {
            for chunk in new_events.chunks(INSERT_CHUNK) {
                let insert = diesel::insert_into(events::table).values(chunk);
                if chunk.len() <= CACHED_ROWS {
                    Cached(insert).run(*c)?;
                } else {
                    insert.execute(*c)?;
                }
            }
        }
    }

    let params: Vec<NewParam<'_>> = rec
        .params
        .iter()
        .map(|p| NewParam {
            device_id: id,
            path: &p.path,
            value: Some(&p.value),
            xsd_type: p.xsd_type.as_deref(),
            writable: None,
            is_object: false,
            fetched_at: at,
        })
        .collect();
    upsert_params(db, last_wins(params, |p| p.path))?;

    // Reboot and ScheduleInform complete with their `M` event; transfers
    // complete with TransferComplete. `running` too: the response may have
    // been lost with the session (the CPE acted anyway).
    for (method, key) in completed.iter().filter(|_| open_tasks) {
        if matches!(*method, "Reboot" | "ScheduleInform") {
            on!(db, |c| Cached(
                diesel::update(t::tasks)
                    .filter(t::device_id.eq(id))
                    .filter(t::kind.eq(*method))
                    .filter(t::command_key.eq(*key).or(t::sent_key.eq(*key)))
                    .filter(t::status.eq_any(["waiting", "running"]))
                    .set(done_now(at))
            )
            .run(c))?;
        }
    }
    // A device that boots has finished any Reboot it acknowledged, whatever CommandKey its
    // `M Reboot` carries (some stacks send it empty, some send no `M Reboot` at all).
    let booted = rec
        .events
        .iter()
        .any(|e| e.code == "1 BOOT" || e.code == "M Reboot");
    if booted && open_tasks {
        on!(db, |c| Cached(
            diesel::update(t::tasks)
                .filter(t::device_id.eq(id))
                .filter(t::kind.eq("Reboot"))
                .filter(t::status.eq_any(["waiting", "running"]))
                .set(done_now(at))
        )
        .run(c))?;
    }

    let new_device = first_seen == at;
    if new_device {
        // A new device joins its tenant in the same transaction: it is never visible to a
        // tenant it does not belong to, nor briefly without its own.
        crate::access::assign_new_device(db, id)?;
    }

    Ok(InformOutcome {
        pending_tasks,
        new_device,
        bootstrap_epoch: epoch,
    })
}

/// `status = 'done'` now, with the lease and the waiting deadline cleared.
#[allow(clippy::type_complexity)]
fn done_now(
    at: NaiveDateTime,
) -> (
    diesel::dsl::Eq<tasks::status, &'static str>,
    diesel::dsl::Eq<tasks::completed_at, NaiveDateTime>,
    diesel::dsl::Eq<tasks::lease_node, Option<String>>,
    diesel::dsl::Eq<tasks::lease_until, Option<NaiveDateTime>>,
    diesel::dsl::Eq<tasks::waiting_until, Option<NaiveDateTime>>,
) {
    (
        tasks::status.eq("done"),
        tasks::completed_at.eq(at),
        tasks::lease_node.eq(None::<String>),
        tasks::lease_until.eq(None::<NaiveDateTime>),
        tasks::waiting_until.eq(None::<NaiveDateTime>),
    )
}

fn upsert_params(db: &mut Db<'_>, rows: Vec<NewParam<'_>>) -> Result<()> {
    use crate::schema::parameters::dsl as p;
    macro_rules! upsert {
        ($values:expr) => {
            diesel::insert_into(p::parameters)
                .values($values)
                .on_conflict((p::device_id, p::path))
                .do_update()
                .set((
                    p::value.eq(coalesce_text(excluded(p::value), p::value)),
                    p::xsd_type.eq(coalesce_text(excluded(p::xsd_type), p::xsd_type)),
                    p::writable.eq(coalesce_bool(excluded(p::writable), p::writable)),
                    p::is_object.eq(excluded(p::is_object)),
                    p::fetched_at.eq(excluded(p::fetched_at)),
                ))
        };
    }
    match db {
        Db::Sqlite(c) => {
            for row in &rows {
                Cached(upsert!(row)).run(*c)?;
            }
        }
        Db::Pg(c) => {
            for chunk in rows.chunks(INSERT_CHUNK) {
                if chunk.len() <= CACHED_ROWS {
                    Cached(upsert!(chunk)).run(*c)?;
                } else {
                    upsert!(chunk).execute(*c)?;
                }
            }
        }
    }
    Ok(())
}

/// Pending tasks of a device in queue order, split into runnable ones (at
/// most `limit`) and the ids of those that expired.
pub(crate) fn pending_tasks(
    db: &mut Db<'_>,
    device_id: &str,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<(Vec<TaskRow>, Vec<i64>)> {
    let rows: Vec<TaskRow> = on!(db, |c| tasks::table
        .filter(tasks::device_id.eq(device_id))
        .filter(tasks::status.eq("pending"))
        .order(tasks::id.asc())
        .select(TaskRow::as_select())
        .load(c))?;
    let now = to_db(now);
    let limit = usize::try_from(limit.max(0)).unwrap_or(usize::MAX);
    let mut runnable = Vec::new();
    let mut expired = Vec::new();
    for row in rows {
        if row.expires_at.is_some_and(|e| e.naive_utc() <= now) {
            expired.push(row.id);
        } else if runnable.len() < limit {
            runnable.push(row);
        }
    }
    Ok((runnable, expired))
}

pub(crate) fn expire_tasks(db: &mut Db<'_>, ids: Vec<i64>, now: DateTime<Utc>) -> Result<usize> {
    let now = to_db(now);
    let n = on!(db, |c| diesel::update(tasks::table)
        .filter(tasks::id.eq_any(&ids))
        .filter(tasks::status.eq("pending"))
        .set((tasks::status.eq("expired"), tasks::completed_at.eq(now)))
        .execute(c))?;
    Ok(n)
}

pub(crate) fn apply_session_results(
    db: &mut Db<'_>,
    batch: SessionResults,
) -> Result<Vec<(i64, TaskStatus)>> {
    use crate::schema::parameters::dsl as p;
    use crate::schema::tasks::dsl as t;

    let device = batch.device_id.as_str();
    let at = to_db(batch.at);

    for prefix in &batch.deletes {
        if prefix.ends_with('.') {
            match prefix_bounds(prefix) {
                Some((lo, hi)) => on!(db, |c| diesel::delete(
                    p::parameters
                        .filter(p::device_id.eq(device))
                        .filter(p::path.ge(&lo))
                        .filter(p::path.lt(&hi))
                )
                .execute(c))?,
                None => 0,
            };
        } else {
            on!(db, |c| diesel::delete(
                p::parameters
                    .filter(p::device_id.eq(device))
                    .filter(p::path.eq(prefix))
            )
            .execute(c))?;
        }
    }

    let params: Vec<NewParam<'_>> = batch
        .params
        .iter()
        .map(|u| NewParam {
            device_id: device,
            path: &u.path,
            value: u.value.as_deref(),
            xsd_type: u.xsd_type.as_deref(),
            writable: u.writable,
            is_object: u.is_object,
            fetched_at: at,
        })
        .collect();
    upsert_params(db, last_wins(params, |p| p.path))?;

    let mut statuses = Vec::with_capacity(batch.tasks.len());
    for u in batch.tasks {
        let current: Option<(TaskStatus, i32, i32, Option<String>)> = on!(db, |c| t::tasks
            .filter(t::id.eq(u.id))
            .filter(t::device_id.eq(device))
            .select((t::status, t::attempts, t::max_attempts, t::session_id))
            .first(c)
            .optional())?;
        let Some((current, attempts, max_attempts, holder)) = current else {
            tracing::warn!(task = u.id, device, "session result for an unknown task");
            continue;
        };
        if current == TaskStatus::Running
            && u.status != TaskStatus::Running
            && u.session_id.is_some()
            && holder.is_some()
            && holder != u.session_id
        {
            // The lease was reclaimed and another session runs the task now: this late
            // result of the old session must not overwrite it.
            tracing::warn!(
                task = u.id,
                device,
                "result of a session that no longer holds the task ignored"
            );
            continue;
        }
        let attempts = attempts + i32::from(u.attempts_inc);
        let mut status = u.status;
        if status == TaskStatus::Fault && u.retryable && attempts < max_attempts {
            status = TaskStatus::Pending;
        }
        if current == TaskStatus::Cancelled && !status.is_terminal() {
            // Cancelled while in flight: record what happened, but never
            // put it back in the queue.
            status = TaskStatus::Cancelled;
        }
        let (fault_code, fault_string, fault_detail) = match (&u.fault, status) {
            (Some(f), _) => (
                Some(Some(f.code)),
                Some(Some(f.string.clone())),
                Some(f.detail.as_ref().map(json_text)),
            ),
            (None, TaskStatus::Done) => (Some(None), Some(None), Some(None)),
            (None, _) => (None, None, None),
        };
        let completed_at = if status.is_terminal() {
            Some(Some(u.completed_at.map_or(at, to_db)))
        } else {
            Some(None)
        };
        let (lease_node, lease_until) = match (status, &u.lease) {
            (TaskStatus::Running, Some(l)) => {
                (Some(Some(l.node.clone())), Some(Some(to_db(l.until))))
            }
            (TaskStatus::Running, None) => (None, None),
            _ => (Some(None), Some(None)),
        };
        let waiting_until = match status {
            TaskStatus::Waiting => u.waiting_until.map(|w| Some(to_db(w))),
            _ => Some(None),
        };
        let change = TaskChange {
            status: status.as_str(),
            attempts: Some(attempts),
            result: u.result.as_ref().map(|r| Some(json_text(r))),
            fault_code,
            fault_string,
            fault_detail,
            started_at: u.started_at.map(to_db),
            completed_at,
            session_id: u.session_id.clone(),
            lease_node,
            lease_until,
            waiting_until,
            sent_key: u.sent_key.clone(),
        };
        on!(db, |c| Cached(
            diesel::update(t::tasks.find(u.id)).set(&change)
        )
        .run(c))?;
        statuses.push((u.id, status));
    }
    Ok(statuses)
}

pub(crate) fn complete_transfer(
    db: &mut Db<'_>,
    device_id: &str,
    command_key: &str,
    fault: Option<TaskFault>,
    start: Option<DateTime<Utc>>,
    complete: Option<DateTime<Utc>>,
) -> Result<Option<i64>> {
    use crate::schema::tasks::dsl as t;

    // Our own key first; else the newest task that went out with this key (an operator's
    // key need not be unique).
    let mut found: Option<(i64, TaskStatus)> = on!(db, |c| t::tasks
        .filter(t::device_id.eq(device_id))
        .filter(t::command_key.eq(command_key))
        .select((t::id, t::status))
        .first(c)
        .optional())?;
    if found.is_none() && !command_key.is_empty() {
        found = on!(db, |c| t::tasks
            .filter(t::device_id.eq(device_id))
            .filter(t::sent_key.eq(command_key))
            .filter(t::status.eq_any(["running", "waiting"]))
            .order(t::id.desc())
            .select((t::id, t::status))
            .first(c)
            .optional())?;
    }
    let Some((id, status)) = found else {
        return Ok(None);
    };
    if status.is_terminal() {
        // Already settled (a retried TransferComplete, or cancelled): no-op.
        return Ok(Some(id));
    }
    let result = json!({
        "start_time": start.map(|t| t.to_rfc3339()),
        "complete_time": complete.map(|t| t.to_rfc3339()),
    });
    let change = TaskChange {
        status: if fault.is_some() { "fault" } else { "done" },
        attempts: None,
        result: Some(Some(json_text(&result))),
        fault_code: Some(fault.as_ref().map(|f| f.code)),
        fault_string: Some(fault.as_ref().map(|f| f.string.clone())),
        fault_detail: Some(
            fault
                .as_ref()
                .and_then(|f| f.detail.as_ref())
                .map(json_text),
        ),
        started_at: None,
        completed_at: Some(Some(to_db(now()))),
        session_id: None,
        lease_node: Some(None),
        lease_until: Some(None),
        waiting_until: Some(None),
        sent_key: None,
    };
    on!(db, |c| diesel::update(t::tasks.find(id))
        .set(&change)
        .execute(c))?;
    Ok(Some(id))
}

// ---------------------------------------------------------------------------
// Northbound / console

pub(crate) fn list_devices(db: &mut Db<'_>, q: &DeviceQuery) -> Result<(Vec<DeviceRow>, i64)> {
    use crate::schema::devices::dsl as d;
    use crate::schema::parameters::dsl as p;

    let text = q
        .text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| format!("%{}%", like_literal(&t.to_ascii_lowercase())));
    let path = q.param_path.as_deref().filter(|p| !p.is_empty());
    let value = q.param_value.as_deref();
    let by_param = path.is_some() || value.is_some();
    let value_pattern = value
        .filter(|v| v.contains('%'))
        .map(str::to_ascii_lowercase);
    let value_prefix: Option<String> = value
        .filter(|v| !v.contains('%'))
        .map(|v| v.chars().take(INDEXED_VALUE_CHARS).collect());

    // Expanded once per use and per backend: boxed queries are typed by both.
    macro_rules! filtered {
        () => {{
            let mut query = d::devices.into_boxed();
            if let Some(pattern) = &text {
                query = query.filter(
                    lower(d::id)
                        .like(pattern)
                        .escape('\\')
                        .or(lower(d::serial_number).like(pattern).escape('\\'))
                        .or(lower(d::product_class).like(pattern).escape('\\')),
                );
            }
            if by_param {
                let mut sub = p::parameters.select(p::device_id).distinct().into_boxed();
                if let Some(path) = path {
                    sub = sub.filter(p::path.eq(path));
                }
                if let Some(pattern) = &value_pattern {
                    sub = sub.filter(lower_opt(p::value).like(pattern));
                } else if let (Some(v), Some(prefix)) = (value, &value_prefix) {
                    sub = sub
                        .filter(sql::<Nullable<Text>>(INDEXED_VALUE).eq(prefix))
                        .filter(p::value.eq(v));
                }
                query = query.filter(d::id.eq_any(sub));
            }
            if let Some(tag) = &q.tag {
                query = query.filter(
                    d::id.eq_any(
                        device_tags::table
                            .select(device_tags::device_id)
                            .filter(device_tags::tag.eq(tag)),
                    ),
                );
            }
            scope_where!(query, q.scopes)
        }};
    }
    // The cursor narrows the page, not the total.
    macro_rules! paged {
        () => {{
            let query = filtered!();
            match &q.after {
                Some(a) if q.descending => query.filter(d::id.lt(a.clone())),
                Some(a) => query.filter(d::id.gt(a.clone())),
                None => query,
            }
        }};
    }
    macro_rules! sorted {
        ($query:expr, $col:expr) => {
            if q.descending {
                $query.order(($col.desc(), d::id.desc()))
            } else {
                $query.order(($col.asc(), d::id.asc()))
            }
        };
    }

    let limit = clamp_limit(q.limit);
    let offset = q.offset.max(0);
    let (rows, total) = on!(db, |c| {
        let total: i64 = filtered!().count().get_result(c)?;
        let query = paged!();
        let query = match q.sort {
            DeviceSort::Id if q.descending => query.order(d::id.desc()),
            DeviceSort::Id => query.order(d::id.asc()),
            DeviceSort::LastInform => sorted!(query, d::last_inform_at),
            DeviceSort::FirstSeen => sorted!(query, d::first_seen_at),
            DeviceSort::ProductClass => sorted!(query, d::product_class),
            DeviceSort::SoftwareVersion => sorted!(query, d::software_version),
        };
        if q.sort == DeviceSort::Id {
            let rows: Vec<DeviceRow> = query
                .limit(limit)
                .offset(offset)
                .select(DeviceRow::as_select())
                .load(c)?;
            return Ok::<_, StoreError>((rows, total));
        }
        // Another order: sort only the ids (a narrow sort, not of whole rows), then read the
        // page's rows.
        let ids: Vec<String> = query.limit(limit).offset(offset).select(d::id).load(c)?;
        let mut rows: Vec<DeviceRow> = d::devices
            .filter(d::id.eq_any(&ids))
            .select(DeviceRow::as_select())
            .load(c)?;
        let pos: HashMap<&str, usize> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        rows.sort_by_key(|r| pos.get(r.id.as_str()).copied().unwrap_or(usize::MAX));
        Ok::<_, StoreError>((rows, total))
    })?;
    Ok((rows, total))
}

pub(crate) fn get_device(db: &mut Db<'_>, id: &str) -> Result<Option<DeviceRow>> {
    Ok(on!(db, |c| devices::table
        .find(id)
        .select(DeviceRow::as_select())
        .first(c)
        .optional())?)
}

/// Open tasks (pending, running, waiting) by status, fleet-wide.
pub(crate) fn task_counts(db: &mut Db<'_>) -> Result<Vec<(String, i64)>> {
    use crate::schema::tasks::dsl as t;
    Ok(on!(db, |c| t::tasks
        .filter(t::status.eq_any(["pending", "running", "waiting"]))
        .group_by(t::status)
        .select((t::status, diesel::dsl::count_star()))
        .load(c))?)
}

pub(crate) fn device_exists(db: &mut Db<'_>, id: &str) -> Result<bool> {
    let n: i64 = on!(db, |c| devices::table
        .filter(devices::id.eq(id))
        .count()
        .get_result(c))?;
    Ok(n > 0)
}

pub(crate) fn count_devices(db: &mut Db<'_>) -> Result<i64> {
    Ok(on!(db, |c| devices::table.count().get_result(c))?)
}

pub(crate) fn get_parameters(
    db: &mut Db<'_>,
    device_id: &str,
    prefix: Option<&str>,
) -> Result<Vec<ParameterRow>> {
    use crate::schema::parameters::dsl as p;
    let bounds = prefix.and_then(prefix_bounds);
    Ok(on!(db, |c| {
        let mut q = p::parameters
            .filter(p::device_id.eq(device_id))
            .select(ParameterRow::as_select())
            .order(p::path.asc())
            .into_boxed();
        if let Some((lo, hi)) = &bounds {
            q = q.filter(p::path.ge(lo)).filter(p::path.lt(hi));
        }
        q.load(c)
    })?)
}

/// Newest first.
pub(crate) fn get_events(db: &mut Db<'_>, device_id: &str, limit: i64) -> Result<Vec<EventRow>> {
    Ok(on!(db, |c| events::table
        .filter(events::device_id.eq(device_id))
        .order(events::id.desc())
        .limit(clamp_limit(limit))
        .select(EventRow::as_select())
        .load(c))?)
}

pub(crate) fn create_task(db: &mut Db<'_>, task: NewTask) -> Result<TaskRow> {
    use crate::schema::tasks::dsl as t;

    let exists: i64 = on!(db, |c| devices::table
        .filter(devices::id.eq(&task.device_id))
        .count()
        .get_result(c))?;
    if exists == 0 {
        return Err(StoreError::NotFound(format!("device {}", task.device_id)));
    }
    let row = NewTaskRow {
        device_id: &task.device_id,
        kind: &task.kind,
        args: json_text(&task.args),
        status: TaskStatus::Pending.as_str(),
        created_at: to_db(now()),
        expires_at: task.expires_at.map(to_db),
        attempts: 0,
        max_attempts: task.max_attempts.max(1),
    };
    let id: i64 = on!(db, |c| diesel::insert_into(t::tasks)
        .values(&row)
        .returning(t::id)
        .get_result(c))?;
    let key = command_key_for(id);
    // An Upload's URL carries a single-use 128-bit token (the CommandKey is no secret: it
    // is sent in clear in the RPC and echoed in TransferComplete).
    let token = (task.kind == "Upload").then(|| hex::encode(rand::random::<[u8; 16]>()));
    Ok(on!(db, |c| diesel::update(t::tasks.find(id))
        .set((t::command_key.eq(&key), t::upload_token.eq(&token)))
        .returning(TaskRow::as_returning())
        .get_result(c))?)
}

/// Claims an Upload task's token for one upload: the task must be an Upload that is
/// `running` or `waiting` and still hold this token, which is then used up. Returns the
/// task, `None` when the token does not (or no longer) open this task.
pub(crate) fn claim_upload(db: &mut Db<'_>, task_id: i64, token: &str) -> Result<Option<TaskRow>> {
    use crate::schema::tasks::dsl as t;
    if token.is_empty() {
        return Ok(None);
    }
    let n = on!(db, |c| diesel::update(t::tasks.find(task_id))
        .filter(t::kind.eq("Upload"))
        .filter(t::upload_token.eq(token))
        .filter(t::status.eq_any(["running", "waiting"]))
        .set(t::upload_token.eq(None::<String>))
        .execute(c))?;
    if n == 0 {
        return Ok(None);
    }
    get_task(db, task_id)
}

/// Gives a claimed upload token back (the upload failed before it was stored), if the task
/// is still open.
pub(crate) fn release_upload(db: &mut Db<'_>, task_id: i64, token: &str) -> Result<()> {
    use crate::schema::tasks::dsl as t;
    on!(db, |c| diesel::update(t::tasks.find(task_id))
        .filter(t::upload_token.is_null())
        .filter(t::status.eq_any(["running", "waiting"]))
        .set(t::upload_token.eq(token))
        .execute(c))?;
    Ok(())
}

/// The upload token of an Upload task (for building the URL sent to the CPE).
pub(crate) fn upload_token(db: &mut Db<'_>, task_id: i64) -> Result<Option<String>> {
    use crate::schema::tasks::dsl as t;
    Ok(on!(db, |c| t::tasks
        .find(task_id)
        .select(t::upload_token)
        .first::<Option<String>>(c)
        .optional())?
    .flatten())
}

/// A CPE confirmed CancelTransfer for `command_key`: the transfer task that went out with
/// that key is `cancelled`. Returns its id.
pub(crate) fn cancel_transfer(
    db: &mut Db<'_>,
    device_id: &str,
    command_key: &str,
) -> Result<Option<i64>> {
    use crate::schema::tasks::dsl as t;
    let found: Option<i64> = on!(db, |c| t::tasks
        .filter(t::device_id.eq(device_id))
        .filter(
            t::command_key
                .eq(command_key)
                .or(t::sent_key.eq(command_key))
        )
        .filter(t::kind.eq_any(["Download", "ScheduleDownload", "Upload"]))
        .filter(t::status.eq_any(["pending", "running", "waiting"]))
        .order(t::id.desc())
        .select(t::id)
        .first(c)
        .optional())?;
    let Some(id) = found else {
        return Ok(None);
    };
    let at = to_db(now());
    on!(db, |c| diesel::update(t::tasks.find(id))
        .set((
            t::status.eq("cancelled"),
            t::completed_at.eq(at),
            t::lease_node.eq(None::<String>),
            t::lease_until.eq(None::<NaiveDateTime>),
            t::waiting_until.eq(None::<NaiveDateTime>),
            t::upload_token.eq(None::<String>),
        ))
        .execute(c))?;
    Ok(Some(id))
}

/// Expired leases back to `pending` (or `fault` without attempts left), and `waiting` tasks
/// past their deadline to `fault`, in one job.
pub(crate) fn reclaim_tasks(db: &mut Db<'_>, r: Reclaim) -> Result<ReclaimOutcome> {
    use crate::schema::tasks::dsl as t;
    let now = to_db(r.now);
    let node = r.restarted_node.clone().unwrap_or_default();
    let running: Vec<(i64, i32, i32)> = on!(db, |c| t::tasks
        .filter(t::status.eq("running"))
        .filter(
            t::lease_until
                .is_null()
                .or(t::lease_until.le(now))
                .or(t::lease_node.eq(&node)),
        )
        .select((t::id, t::attempts, t::max_attempts))
        .load(c))?;
    let mut out = ReclaimOutcome::default();
    for (id, attempts, max_attempts) in running {
        let again = attempts < max_attempts;
        let f = &r.lease_fault;
        on!(db, |c| diesel::update(t::tasks.find(id))
            .filter(t::status.eq("running"))
            .set((
                t::status.eq(if again { "pending" } else { "fault" }),
                t::fault_code.eq(Some(f.code)),
                t::fault_string.eq(Some(&f.string)),
                t::completed_at.eq((!again).then_some(now)),
                t::lease_node.eq(None::<String>),
                t::lease_until.eq(None::<NaiveDateTime>),
            ))
            .execute(c))?;
        if again {
            out.requeued.push(id);
        } else {
            out.faulted.push(id);
        }
    }
    let f = &r.waiting_fault;
    out.timed_out = on!(db, |c| diesel::update(t::tasks)
        .filter(t::status.eq("waiting"))
        .filter(t::waiting_until.le(now))
        .set((
            t::status.eq("fault"),
            t::fault_code.eq(Some(f.code)),
            t::fault_string.eq(Some(&f.string)),
            t::completed_at.eq(Some(now)),
            t::waiting_until.eq(None::<NaiveDateTime>),
            t::upload_token.eq(None::<String>),
        ))
        .returning(t::id)
        .get_results(c))?;
    Ok(out)
}

pub(crate) fn get_task(db: &mut Db<'_>, id: i64) -> Result<Option<TaskRow>> {
    Ok(on!(db, |c| tasks::table
        .find(id)
        .select(TaskRow::as_select())
        .first(c)
        .optional())?)
}

/// Newest first.
pub(crate) fn list_tasks(db: &mut Db<'_>, q: &TaskQuery) -> Result<(Vec<TaskRow>, i64)> {
    use crate::schema::tasks::dsl as t;

    macro_rules! filtered {
        () => {{
            let mut query = t::tasks.into_boxed();
            if let Some(device) = &q.device_id {
                query = query.filter(t::device_id.eq(device));
            }
            if let Some(status) = q.status {
                query = query.filter(t::status.eq(status.as_str()));
            }
            if let Some(kind) = &q.kind {
                query = query.filter(t::kind.eq(kind));
            }
            if let Some(code) = q.fault_code {
                query = query.filter(t::fault_code.eq(code));
            }
            match q.acknowledged {
                Some(true) => query = query.filter(t::acknowledged_at.is_not_null()),
                Some(false) => query = query.filter(t::acknowledged_at.is_null()),
                None => {}
            }
            if let Some(before) = q.before {
                query = query.filter(t::id.lt(before));
            }
            if !crate::access::unrestricted(&q.scopes) {
                query = query.filter(t::device_id.eq_any(scope_where!(
                    devices::table.select(devices::id).into_boxed(),
                    q.scopes
                )));
            }
            query
        }};
    }

    let limit = clamp_limit(q.limit);
    let offset = q.offset.max(0);
    let (rows, total) = on!(db, |c| {
        let total: i64 = filtered!().count().get_result(c)?;
        let rows: Vec<TaskRow> = filtered!()
            .order(t::id.desc())
            .limit(limit)
            .offset(offset)
            .select(TaskRow::as_select())
            .load(c)?;
        Ok::<_, StoreError>((rows, total))
    })?;
    Ok((rows, total))
}

/// Marks faulted tasks acknowledged by `who`; returns the ids it changed (faults not yet
/// acknowledged among `ids`).
pub(crate) fn acknowledge_faults(db: &mut Db<'_>, ids: &[i64], who: &str) -> Result<Vec<i64>> {
    use crate::schema::tasks::dsl as t;
    let at = to_db(now());
    Ok(on!(db, |c| diesel::update(t::tasks)
        .filter(t::id.eq_any(ids))
        .filter(t::status.eq("fault"))
        .filter(t::acknowledged_at.is_null())
        .set((t::acknowledged_at.eq(at), t::acknowledged_by.eq(who)))
        .returning(t::id)
        .get_results(c))?)
}

pub(crate) fn cancel_task(db: &mut Db<'_>, id: i64) -> Result<Option<TaskRow>> {
    use crate::schema::tasks::dsl as t;
    let at = to_db(now());
    on!(db, |c| diesel::update(t::tasks.find(id))
        .filter(t::status.eq_any(["pending", "running", "waiting"]))
        .set((t::status.eq("cancelled"), t::completed_at.eq(at)))
        .execute(c))?;
    get_task(db, id)
}

pub(crate) fn set_device_credentials(
    db: &mut Db<'_>,
    id: &str,
    cpe_username: Option<String>,
    cpe_secret: Option<CpeSecret>,
    cr_username: Option<String>,
    cr_password: Option<String>,
) -> Result<bool> {
    use crate::schema::devices::dsl as d;
    let (md5, sha256, realm) = match cpe_secret {
        Some(s) => (Some(s.md5), Some(s.sha256), Some(s.realm)),
        None => (None, None, None),
    };
    let n = on!(db, |c| diesel::update(d::devices.find(id))
        .set((
            d::cpe_username.eq(&cpe_username),
            d::cpe_password.eq(None::<String>),
            d::cpe_ha1_md5.eq(&md5),
            d::cpe_ha1_sha256.eq(&sha256),
            d::cpe_realm.eq(&realm),
            d::cr_username.eq(&cr_username),
            d::cr_password.eq(&cr_password),
        ))
        .execute(c))?;
    Ok(n > 0)
}

pub(crate) fn record_connection_request(
    db: &mut Db<'_>,
    id: &str,
    at: DateTime<Utc>,
    result: &str,
) -> Result<bool> {
    use crate::schema::devices::dsl as d;
    let at = to_db(at);
    let n = on!(db, |c| diesel::update(d::devices.find(id))
        .set((d::last_cr_at.eq(at), d::last_cr_result.eq(result)))
        .execute(c))?;
    Ok(n > 0)
}

/// Deletes the device with its parameters, events and tasks (explicitly, so
/// it does not depend on foreign-key enforcement). Files are kept.
pub(crate) fn delete_device(db: &mut Db<'_>, id: &str) -> Result<bool> {
    on!(db, |c| diesel::delete(
        parameters::table.filter(parameters::device_id.eq(id))
    )
    .execute(c))?;
    on!(db, |c| diesel::delete(
        events::table.filter(events::device_id.eq(id))
    )
    .execute(c))?;
    on!(db, |c| diesel::delete(
        tasks::table.filter(tasks::device_id.eq(id))
    )
    .execute(c))?;
    let n = on!(db, |c| diesel::delete(devices::table.find(id)).execute(c))?;
    Ok(n > 0)
}

pub(crate) fn insert_file(db: &mut Db<'_>, f: NewFile) -> Result<FileRow> {
    let id =
        f.id.clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let content_type = if f.content_type.is_empty() {
        "application/octet-stream"
    } else {
        &f.content_type
    };
    let row = NewFileRow {
        id: &id,
        name: &f.name,
        file_type: &f.file_type,
        oui: &f.oui,
        product_class: &f.product_class,
        version: &f.version,
        size: f.size,
        sha256: &f.sha256,
        content_type,
        stored_path: &f.stored_path,
        device_id: f.device_id.as_deref(),
        task_id: f.task_id,
        created_at: to_db(now()),
    };
    Ok(on!(db, |c| diesel::insert_into(files::table)
        .values(&row)
        .returning(FileRow::as_returning())
        .get_result(c))?)
}

/// Newest first; all files, or those a given device uploaded.
pub(crate) fn list_files(
    db: &mut Db<'_>,
    device_id: Option<&str>,
    scopes: &[crate::DeviceFilter],
) -> Result<Vec<FileRow>> {
    Ok(on!(db, |c| {
        let mut q = files::table
            .select(FileRow::as_select())
            .order((files::created_at.desc(), files::id.asc()))
            .into_boxed();
        if let Some(device) = device_id {
            q = q.filter(files::device_id.eq(device));
        }
        if !crate::access::unrestricted(scopes) {
            // Fleet files (firmware, configurations) belong to no device; a device's files
            // only to those who may see the device.
            q = q.filter(
                files::device_id
                    .is_null()
                    .or(files::device_id.eq_any(scope_where!(
                        devices::table.select(devices::id.nullable()).into_boxed(),
                        scopes
                    ))),
            );
        }
        q.load(c)
    })?)
}

pub(crate) fn get_file(db: &mut Db<'_>, id: &str) -> Result<Option<FileRow>> {
    Ok(on!(db, |c| files::table
        .find(id)
        .select(FileRow::as_select())
        .first(c)
        .optional())?)
}

pub(crate) fn delete_file(db: &mut Db<'_>, id: &str) -> Result<Option<FileRow>> {
    Ok(on!(db, |c| diesel::delete(files::table.find(id))
        .returning(FileRow::as_returning())
        .get_result(c)
        .optional())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_bounds_cover_subtrees() {
        assert_eq!(
            prefix_bounds("Device.WiFi."),
            Some(("Device.WiFi.".into(), "Device.WiFi/".into()))
        );
        assert_eq!(prefix_bounds("ab"), Some(("ab".into(), "ac".into())));
        assert_eq!(prefix_bounds(""), None);
        assert_eq!(
            prefix_bounds("a\u{10FFFF}"),
            Some(("a\u{10FFFF}".into(), "b".into()))
        );
        assert_eq!(
            prefix_bounds("\u{D7FF}"),
            Some(("\u{D7FF}".into(), "\u{E000}".into()))
        );
    }

    #[test]
    fn last_wins_keeps_order_and_last_value() {
        let v = vec![("a", 1), ("b", 2), ("a", 3)];
        assert_eq!(last_wins(v, |x| x.0), vec![("b", 2), ("a", 3)]);
    }

    #[test]
    fn like_literal_escapes() {
        assert_eq!(like_literal(r"50%_a\b"), r"50\%\_a\\b");
    }

    #[test]
    fn command_keys_fit_cwmp() {
        let k = command_key_for(i64::MAX);
        assert!(k.len() <= 32, "{k}");
        assert!(k.starts_with('k'));
    }
}
