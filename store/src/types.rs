//! Public row and request types.
//!
//! Rows derive `Serialize` because the northbound API returns them as JSON.
//! Secrets (`cpe_password`, `cr_password`) are never serialized.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::backend::Backend as DieselBackend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::prelude::*;
use diesel::sql_types::Text;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::schema::{devices, events, files, parameters, tasks};
use crate::sqlconv::{JsonText, OptJsonText, OptUtcTs, UtcTs};

/// Which database a [`Store`](crate::Store) talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// An embedded SQLite file (the default).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// Tuning knobs for [`Store::open`](crate::Store::open).
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Read connections in the pool. `None`: 2 x CPUs (at least 4) for
    /// SQLite, 8 for PostgreSQL.
    pub pool_size: Option<u32>,
    /// Most write jobs committed in one transaction by the group-commit writer.
    pub max_batch: usize,
    /// Write jobs that may wait for the writer before callers are held back.
    pub queue_depth: usize,
    /// SQLite `busy_timeout` (waiting for another process's lock).
    pub busy_timeout: Duration,
    /// How long to wait for a pooled connection. (For the PostgreSQL connect
    /// itself, libpq reads `connect_timeout=N` from the URL.)
    pub connect_timeout: Duration,
    /// PostgreSQL: how long the bulk-report indexer waits before trusting a
    /// report id as committed by every writer (several nodes may share the
    /// database; see `Store::index_bulk_reports`). Longer than any write
    /// transaction can take.
    pub index_safety_lag: Duration,
    /// SQLite: fsync every commit (`PRAGMA synchronous = FULL`) so that acknowledged data
    /// also survives a power loss or OS crash. Off (`NORMAL`, WAL mode): a commit survives
    /// the process being killed, and the WAL is fsynced at checkpoints only.
    pub sqlite_fsync_commits: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            pool_size: None,
            max_batch: 256,
            queue_depth: 8192,
            busy_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            index_safety_lag: Duration::from_secs(30),
            sqlite_fsync_commits: true,
        }
    }
}

/// A managed device (one row of `devices`).
///
/// `Debug` and `Serialize` leave the passwords out.
#[derive(Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = devices)]
pub struct DeviceRow {
    /// Canonical id, `OUI-ProductClass-SerialNumber`.
    pub id: String,
    pub oui: String,
    pub product_class: String,
    pub serial_number: String,
    pub manufacturer: String,
    /// `"Device."` or `"InternetGatewayDevice."`.
    pub root_object: String,
    pub software_version: Option<String>,
    pub hardware_version: Option<String>,
    pub connection_request_url: Option<String>,
    pub udp_connection_request_address: Option<String>,
    pub parameter_key: Option<String>,
    /// The cwmp namespace URI the CPE last used.
    pub cwmp_ns: String,
    pub cwmp_version: String,
    #[diesel(deserialize_as = UtcTs)]
    pub last_inform_at: DateTime<Utc>,
    pub last_remote_addr: Option<String>,
    /// `CurrentTime` of the last Inform, as sent.
    pub last_current_time: Option<String>,
    pub last_retry_count: i32,
    #[diesel(deserialize_as = UtcTs)]
    pub first_seen_at: DateTime<Utc>,
    /// Number of `0 BOOTSTRAP` Informs seen.
    pub bootstrap_epoch: i32,
    /// Credentials the CPE uses toward us; `None`: the global default.
    pub cpe_username: Option<String>,
    #[serde(skip_serializing)]
    pub cpe_password: Option<String>,
    /// Connection-request credentials we use toward the CPE.
    pub cr_username: Option<String>,
    #[serde(skip_serializing)]
    pub cr_password: Option<String>,
    #[diesel(deserialize_as = OptUtcTs)]
    pub last_cr_at: Option<DateTime<Utc>>,
    pub last_cr_result: Option<String>,
    /// The tenant the device belongs to (assigned by the tenants' rules), if any.
    pub tenant: Option<String>,
}

/// Per-device credentials for authenticating a CPE (`None`: use the default).
/// `Debug` leaves the secrets out.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct DeviceAuth {
    pub cpe_username: Option<String>,
    /// A password stored in clear by an older version, until the server seals it into a
    /// [`CpeSecret`] at start.
    pub cpe_password: Option<String>,
    pub cpe_secret: Option<CpeSecret>,
}

/// What is kept of a CPE's password: the Digest HA1 values (`H(username:realm:password)`,
/// lower-case hex) for the realm they were made with, never the password.
#[derive(Clone, PartialEq, Eq)]
pub struct CpeSecret {
    pub md5: String,
    pub sha256: String,
    pub realm: String,
}

impl fmt::Debug for CpeSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CpeSecret")
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

/// Shows whether a secret is set, never its value.
fn redacted(secret: &Option<String>) -> Option<&'static str> {
    secret.as_ref().map(|_| "<redacted>")
}

impl fmt::Debug for DeviceAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceAuth")
            .field("cpe_username", &self.cpe_username)
            .field("cpe_password", &redacted(&self.cpe_password))
            .field("cpe_secret", &self.cpe_secret)
            .finish()
    }
}

impl fmt::Debug for DeviceRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceRow")
            .field("id", &self.id)
            .field("oui", &self.oui)
            .field("product_class", &self.product_class)
            .field("serial_number", &self.serial_number)
            .field("manufacturer", &self.manufacturer)
            .field("root_object", &self.root_object)
            .field("software_version", &self.software_version)
            .field("hardware_version", &self.hardware_version)
            .field("connection_request_url", &self.connection_request_url)
            .field(
                "udp_connection_request_address",
                &self.udp_connection_request_address,
            )
            .field("parameter_key", &self.parameter_key)
            .field("cwmp_ns", &self.cwmp_ns)
            .field("cwmp_version", &self.cwmp_version)
            .field("last_inform_at", &self.last_inform_at)
            .field("last_remote_addr", &self.last_remote_addr)
            .field("last_current_time", &self.last_current_time)
            .field("last_retry_count", &self.last_retry_count)
            .field("first_seen_at", &self.first_seen_at)
            .field("bootstrap_epoch", &self.bootstrap_epoch)
            .field("cpe_username", &self.cpe_username)
            .field("cpe_password", &redacted(&self.cpe_password))
            .field("cr_username", &self.cr_username)
            .field("cr_password", &redacted(&self.cr_password))
            .field("last_cr_at", &self.last_cr_at)
            .field("last_cr_result", &self.last_cr_result)
            .field("tenant", &self.tenant)
            .finish()
    }
}

/// One `EventStruct` of an Inform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InformEvent {
    /// e.g. `"1 BOOT"`, `"M Reboot"`.
    pub code: String,
    pub command_key: String,
}

/// One `ParameterValueStruct` of an Inform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InformParam {
    pub path: String,
    pub value: String,
    /// e.g. `"xsd:string"`; `None` keeps what is stored.
    pub xsd_type: Option<String>,
}

/// Everything [`Store::record_inform`](crate::Store::record_inform) persists.
///
/// `Option` device fields that are `None` keep their stored value (a CPE
/// only reports `UDPConnectionRequestAddress` when it changes, for example).
#[derive(Debug, Clone)]
pub struct InformRecord {
    /// Canonical device id.
    pub device_id: String,
    pub oui: String,
    pub product_class: String,
    pub serial_number: String,
    pub manufacturer: String,
    pub root_object: String,
    pub software_version: Option<String>,
    pub hardware_version: Option<String>,
    pub connection_request_url: Option<String>,
    pub udp_connection_request_address: Option<String>,
    pub parameter_key: Option<String>,
    pub cwmp_ns: String,
    pub cwmp_version: String,
    pub remote_addr: Option<String>,
    /// `CurrentTime` exactly as received.
    pub current_time: Option<String>,
    pub retry_count: i32,
    pub received_at: DateTime<Utc>,
    pub session_id: Option<String>,
    pub events: Vec<InformEvent>,
    pub params: Vec<InformParam>,
    /// The Inform carries `0 BOOTSTRAP`: forget what we knew first.
    pub bootstrap: bool,
}

/// What [`Store::record_inform`](crate::Store::record_inform) learned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InformOutcome {
    /// Pending, unexpired tasks queued for the device.
    pub pending_tasks: i64,
    /// The device was not known before this Inform.
    pub new_device: bool,
    pub bootstrap_epoch: i32,
}

/// One row of `events`.
#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = events)]
pub struct EventRow {
    pub id: i64,
    pub device_id: String,
    #[diesel(deserialize_as = UtcTs)]
    pub received_at: DateTime<Utc>,
    pub event_code: String,
    pub command_key: String,
    pub session_id: Option<String>,
}

/// One cached parameter of a device.
#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = parameters)]
pub struct ParameterRow {
    pub path: String,
    /// `None` for objects (and for parameters known only by name).
    pub value: Option<String>,
    pub xsd_type: Option<String>,
    pub writable: Option<bool>,
    pub is_object: bool,
    #[diesel(deserialize_as = UtcTs)]
    pub fetched_at: DateTime<Utc>,
}

/// Life cycle of a task.
///
/// `pending` → `running` (sent in a session) → `done` | `fault` | `waiting`
/// (accepted, completion reported later, e.g. Download `Status=1` →
/// `TransferComplete`) → `done` | `fault`. `expired` and `cancelled` end a
/// task that never completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, FromSqlRow)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    Pending,
    Running,
    Waiting,
    Done,
    Fault,
    Expired,
    Cancelled,
}

impl TaskStatus {
    /// The statuses of tasks not finished yet: the queue.
    pub const OPEN: [TaskStatus; 3] = [
        TaskStatus::Pending,
        TaskStatus::Running,
        TaskStatus::Waiting,
    ];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Running => "running",
            TaskStatus::Waiting => "waiting",
            TaskStatus::Done => "done",
            TaskStatus::Fault => "fault",
            TaskStatus::Expired => "expired",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    /// True for states a task never leaves by itself.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Done | TaskStatus::Fault | TaskStatus::Expired | TaskStatus::Cancelled
        )
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error of [`TaskStatus::from_str`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown task status {0:?}")]
pub struct UnknownTaskStatus(pub String);

impl FromStr for TaskStatus {
    type Err = UnknownTaskStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pending" => TaskStatus::Pending,
            "running" => TaskStatus::Running,
            "waiting" => TaskStatus::Waiting,
            "done" => TaskStatus::Done,
            "fault" => TaskStatus::Fault,
            "expired" => TaskStatus::Expired,
            "cancelled" => TaskStatus::Cancelled,
            other => return Err(UnknownTaskStatus(other.to_string())),
        })
    }
}

impl<DB> FromSql<Text, DB> for TaskStatus
where
    DB: DieselBackend,
    String: FromSql<Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        Ok(String::from_sql(bytes)?.parse()?)
    }
}

/// One row of `tasks`.
#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = tasks)]
pub struct TaskRow {
    pub id: i64,
    pub device_id: String,
    /// CPE method name, e.g. `"GetParameterValues"`.
    pub kind: String,
    #[diesel(deserialize_as = JsonText)]
    pub args: Value,
    pub status: TaskStatus,
    #[diesel(deserialize_as = UtcTs)]
    pub created_at: DateTime<Utc>,
    #[diesel(deserialize_as = OptUtcTs)]
    pub expires_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    pub max_attempts: i32,
    /// Unique key sent as the RPC's CommandKey (≤ 32 characters).
    pub command_key: Option<String>,
    #[diesel(deserialize_as = OptJsonText)]
    pub result: Option<Value>,
    pub fault_code: Option<i32>,
    pub fault_string: Option<String>,
    #[diesel(deserialize_as = OptJsonText)]
    pub fault_detail: Option<Value>,
    #[diesel(deserialize_as = OptUtcTs)]
    pub started_at: Option<DateTime<Utc>>,
    #[diesel(deserialize_as = OptUtcTs)]
    pub completed_at: Option<DateTime<Utc>>,
    pub session_id: Option<String>,
    /// Upload tasks: the unused single-use token of the upload URL (a secret: never shown).
    #[serde(skip_serializing)]
    pub upload_token: Option<String>,
    /// The key the RPC went out with (CommandKey or ParameterKey).
    pub sent_key: Option<String>,
    /// Running tasks: the node whose session sent the RPC, and until when it holds it.
    pub lease_node: Option<String>,
    #[diesel(deserialize_as = OptUtcTs)]
    pub lease_until: Option<DateTime<Utc>>,
    /// Waiting tasks: when waiting for the completion ends in a fault.
    #[diesel(deserialize_as = OptUtcTs)]
    pub waiting_until: Option<DateTime<Utc>>,
    /// Faults: when an operator acknowledged the fault, and who.
    #[diesel(deserialize_as = OptUtcTs)]
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
}

/// A task to queue with [`Store::create_task`](crate::Store::create_task).
#[derive(Debug, Clone)]
pub struct NewTask {
    pub device_id: String,
    pub kind: String,
    pub args: Value,
    pub expires_at: Option<DateTime<Utc>>,
    /// Attempts allowed before a retryable fault becomes final (at least 1).
    pub max_attempts: i32,
}

impl NewTask {
    /// A task with no expiry and a single attempt.
    pub fn new(device_id: impl Into<String>, kind: impl Into<String>, args: Value) -> Self {
        NewTask {
            device_id: device_id.into(),
            kind: kind.into(),
            args,
            expires_at: None,
            max_attempts: 1,
        }
    }
}

/// A fault reported for a task (CWMP FaultCode/FaultString, details as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskFault {
    pub code: i32,
    pub string: String,
    pub detail: Option<Value>,
}

/// A state change of one task, applied by
/// [`Store::apply_session_results`](crate::Store::apply_session_results).
///
/// `None` fields leave the stored value alone, except that reaching `Done`
/// clears an earlier fault and reaching a non-terminal state clears
/// `completed_at`.
#[derive(Debug, Clone)]
pub struct TaskUpdate {
    pub id: i64,
    pub status: TaskStatus,
    pub result: Option<Value>,
    pub fault: Option<TaskFault>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Count this as one more attempt.
    pub attempts_inc: bool,
    pub session_id: Option<String>,
    /// With status `Fault`: the task goes back to `Pending` while
    /// `attempts < max_attempts` (after `attempts_inc`).
    pub retryable: bool,
    /// With status `Running`: the lease of the session that sent the RPC. Leaving
    /// `Running` always clears the lease.
    pub lease: Option<TaskLease>,
    /// With status `Waiting`: when to give up waiting for the completion. Leaving
    /// `Waiting` always clears it.
    pub waiting_until: Option<DateTime<Utc>>,
    /// The CommandKey or ParameterKey the RPC went out with (kept for matching
    /// TransferComplete and `M` events).
    pub sent_key: Option<String>,
}

/// The lease of a running task: the node whose session sent its RPC, until when. An
/// expired lease means the outcome is unknown (the node died, or the session vanished).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskLease {
    pub node: String,
    pub until: DateTime<Utc>,
}

/// What [`Store::reclaim_tasks`](crate::Store::reclaim_tasks) does.
#[derive(Debug, Clone)]
pub struct Reclaim {
    pub now: DateTime<Utc>,
    /// A node that has just started: every lease it holds is void at once (its sessions
    /// died with the previous process).
    pub restarted_node: Option<String>,
    /// Recorded on a task whose lease expired (back to `pending` while attempts remain,
    /// else final).
    pub lease_fault: TaskFault,
    /// Recorded on a `waiting` task whose deadline passed (final).
    pub waiting_fault: TaskFault,
}

/// Tasks [`Store::reclaim_tasks`](crate::Store::reclaim_tasks) moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReclaimOutcome {
    /// Expired leases, back to `pending`.
    pub requeued: Vec<i64>,
    /// Expired leases with no attempt left: `fault`.
    pub faulted: Vec<i64>,
    /// `waiting` past their deadline: `fault`.
    pub timed_out: Vec<i64>,
}

impl TaskUpdate {
    /// An update that only sets `status`.
    pub fn new(id: i64, status: TaskStatus) -> Self {
        TaskUpdate {
            id,
            status,
            result: None,
            fault: None,
            started_at: None,
            completed_at: None,
            attempts_inc: false,
            session_id: None,
            retryable: false,
            lease: None,
            waiting_until: None,
            sent_key: None,
        }
    }
}

/// A parameter learned in a session (GPV, GPN, SPV, AddObject...).
///
/// `None` for `value`, `xsd_type` or `writable` keeps what is stored, so a
/// GetParameterNames result does not erase values a GPV fetched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamUpsert {
    pub path: String,
    pub value: Option<String>,
    pub xsd_type: Option<String>,
    pub writable: Option<bool>,
    pub is_object: bool,
}

/// What one CWMP session changed for one device, written in one job.
///
/// Applied in this order: `deletes`, then `params`, then `tasks`.
#[derive(Debug, Clone)]
pub struct SessionResults {
    pub device_id: String,
    /// `fetched_at` of the upserted parameters.
    pub at: DateTime<Utc>,
    pub tasks: Vec<TaskUpdate>,
    pub params: Vec<ParamUpsert>,
    /// Subtrees to forget: a prefix ending with `.` deletes the object and
    /// everything under it; any other string deletes that one parameter.
    pub deletes: Vec<String>,
}

impl SessionResults {
    pub fn new(device_id: impl Into<String>, at: DateTime<Utc>) -> Self {
        SessionResults {
            device_id: device_id.into(),
            at,
            tasks: Vec::new(),
            params: Vec::new(),
            deletes: Vec::new(),
        }
    }
}

/// Filters for [`Store::list_devices`](crate::Store::list_devices).
#[derive(Debug, Clone)]
pub struct DeviceQuery {
    /// Case-insensitive (ASCII) substring of id, serial number or product class.
    pub text: Option<String>,
    /// Devices having this exact parameter path...
    pub param_path: Option<String>,
    /// ...with this value: exact, or a SQL `LIKE` pattern (ASCII
    /// case-insensitive) when it contains `%`.
    pub param_value: Option<String>,
    /// Devices carrying this tag.
    pub tag: Option<String>,
    /// Only devices every filter admits (the caller's access scope).
    pub scopes: Vec<crate::DeviceFilter>,
    /// Sort column and direction; ties are broken by id.
    pub sort: DeviceSort,
    pub descending: bool,
    /// Cursor (sort by id only): devices after this id (before it, descending).
    pub after: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// Sort orders of [`DeviceQuery`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeviceSort {
    #[default]
    Id,
    LastInform,
    ProductClass,
    SoftwareVersion,
    FirstSeen,
}

impl std::str::FromStr for DeviceSort {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "id" => DeviceSort::Id,
            "last_inform_at" => DeviceSort::LastInform,
            "product_class" => DeviceSort::ProductClass,
            "software_version" => DeviceSort::SoftwareVersion,
            "first_seen_at" => DeviceSort::FirstSeen,
            other => {
                return Err(format!(
                    "unknown sort {other:?}; one of id, last_inform_at, product_class, software_version, first_seen_at"
                ))
            }
        })
    }
}

impl Default for DeviceQuery {
    fn default() -> Self {
        DeviceQuery {
            text: None,
            param_path: None,
            param_value: None,
            tag: None,
            scopes: Vec::new(),
            sort: DeviceSort::Id,
            descending: false,
            after: None,
            limit: 100,
            offset: 0,
        }
    }
}

/// Filters for [`Store::list_tasks`](crate::Store::list_tasks).
#[derive(Debug, Clone)]
pub struct TaskQuery {
    pub device_id: Option<String>,
    pub status: Option<TaskStatus>,
    /// CPE method name.
    pub kind: Option<String>,
    pub fault_code: Option<i32>,
    /// Faults: only acknowledged (`Some(true)`) or unacknowledged (`Some(false)`) ones.
    pub acknowledged: Option<bool>,
    /// Only tasks of devices every filter admits.
    pub scopes: Vec<crate::DeviceFilter>,
    /// Cursor: tasks with a smaller id (the list is newest first).
    pub before: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

impl Default for TaskQuery {
    fn default() -> Self {
        TaskQuery {
            device_id: None,
            status: None,
            kind: None,
            fault_code: None,
            acknowledged: None,
            scopes: Vec::new(),
            before: None,
            limit: 100,
            offset: 0,
        }
    }
}

/// One row of `files`.
#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = files)]
pub struct FileRow {
    /// A UUID.
    pub id: String,
    pub name: String,
    /// TR-069 FileType, e.g. `"1 Firmware Upgrade Image"`.
    pub file_type: String,
    pub oui: String,
    pub product_class: String,
    pub version: String,
    pub size: i64,
    pub sha256: String,
    pub content_type: String,
    /// Where the content lives on the server: never shown through the API.
    #[serde(skip_serializing)]
    pub stored_path: String,
    /// Set for files a device uploaded to us.
    pub device_id: Option<String>,
    pub task_id: Option<i64>,
    #[diesel(deserialize_as = UtcTs)]
    pub created_at: DateTime<Utc>,
}

/// A file to register with [`Store::insert_file`](crate::Store::insert_file).
#[derive(Debug, Clone, Default)]
pub struct NewFile {
    /// `None`: a new UUID v4.
    pub id: Option<String>,
    pub name: String,
    pub file_type: String,
    pub oui: String,
    pub product_class: String,
    pub version: String,
    pub size: i64,
    pub sha256: String,
    pub content_type: String,
    pub stored_path: String,
    pub device_id: Option<String>,
    pub task_id: Option<i64>,
}
