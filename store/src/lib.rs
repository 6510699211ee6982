//! Keelson storage: devices, their parameters and events, the task queue and
//! files, over SQLite (embedded, the default) or PostgreSQL, chosen at run
//! time by the database URL.
//!
//! ```no_run
//! # async fn demo() -> store::Result<()> {
//! use store::{Store, StoreOptions};
//! let store = Store::open("data/keelson.db", StoreOptions::default()).await?;
//! let pg = Store::open("postgres://keelson@db/keelson", StoreOptions::default()).await?;
//! # Ok(()) }
//! ```
//!
//! # Design
//!
//! * **One schema, two backends.** `schema.rs` is shared; `migrations/sqlite`
//!   and `migrations/postgres` hold each backend's DDL and are embedded in
//!   the binary. Queries are written once and compiled for each backend (see
//!   `db.rs`).
//! * **Reads** run on tokio's blocking pool with an r2d2 connection pool
//!   (SQLite readers are `query_only`).
//! * **Writes** all go through one group-commit writer thread (`writer.rs`):
//!   concurrent jobs share a transaction, each in its own savepoint, and each
//!   caller is answered only after the commit, so an `Ok` means committed
//!   (with SQLite's `synchronous=NORMAL`, a crash of the process loses
//!   nothing; a power cut may lose the last commits).
//! * **A CWMP session costs few round trips**: [`Store::device_auth`] (read),
//!   [`Store::record_inform`] (one write job), [`Store::next_tasks`] (read),
//!   [`Store::apply_session_results`] (one write job). Hot statements keep
//!   their prepared statements (`cached.rs`); SQLite WAL checkpoints run on
//!   their own thread (`checkpoint.rs`). On a 2-core box this sustains
//!   several thousand sessions/s on SQLite (`tests/throughput.rs`).
//! * **Bulk data** (IPDR collector, HTTP bulk data; `bulkdata.rs`): a batch
//!   of IPDR records is one write job ([`Store::ipdr_commit`]); a record's
//!   key (exporter, session, documentId, DSN) is unique, so a resent record
//!   is stored once. Every transport ends up as `bulk_reports` rows (device,
//!   time, layout of paths, values, source): one row per report, not per
//!   sample, and a by-device index appended behind the ingest in sorted
//!   chunks ([`Store::index_bulk_reports`]), because an index updated at
//!   random by every insert bounds throughput by the pages each commit
//!   rewrites (`benches/ipdr.rs`).
//! * Timestamps are UTC with microsecond precision; the API speaks
//!   `DateTime<Utc>`, the tables hold naive UTC `TIMESTAMP`s.

use std::sync::Arc;

use chrono::{DateTime, Utc};

mod access;
pub use access::{
    AuditQuery, AuditRow, DeviceFilter, NewAudit, NewToken, ParamMatch, Role, Tenant, TokenRow,
    UserAuth, UserRow, UserUpdate,
};
mod bulkdata;
pub use bulkdata::{IndexOutcome, PruneOutcome};
pub use ops::FAULT_BOOTSTRAP_CODE;
mod bulktypes;
mod cached;
mod checkpoint;
mod db;
mod error;
mod ops;
mod schema;
mod sqlconv;
mod types;
mod webhooks;
pub use webhooks::{DeliveryRow, NewWebhook, Webhook};
mod writer;

#[cfg(any(test, feature = "testing"))]
pub mod testpg;

pub use bulktypes::*;
pub use error::{Result, StoreError};
pub use types::*;

use db::{Db, Pool, Target};
use writer::Writer;

/// Handle to the database. Cheap to clone; all clones share the pool and the
/// writer. The writer thread stops once every clone is dropped and the
/// queued writes are done.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    pool: Pool,
    writer: Writer,
    _checkpointer: Option<checkpoint::Checkpointer>,
    index_safety_lag: std::time::Duration,
    /// PostgreSQL: (time, highest report id) observations for the indexer's
    /// safe watermark (see [`Store::index_bulk_reports`]).
    index_marks: std::sync::Mutex<std::collections::VecDeque<(std::time::Instant, i64)>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.backend)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `url` and applies pending
    /// migrations.
    ///
    /// `postgres://…` or `postgresql://…` selects PostgreSQL; anything else
    /// is a SQLite file path (`sqlite://path` and `sqlite:path` also work).
    /// SQLite runs in WAL mode with `synchronous=NORMAL`.
    pub async fn open(url: &str, opts: StoreOptions) -> Result<Store> {
        let target = Target::parse(url)?;
        blocking(move || {
            let mut conn = target.connect(&opts)?;
            db::migrate(&mut conn)?;
            let pool = target.pool(&opts)?;
            let backend = target.backend();
            let checkpointer = match &target {
                Target::Sqlite(path) => Some(checkpoint::Checkpointer::spawn(
                    &db::sqlite_path(path)?,
                    opts.busy_timeout,
                )?),
                Target::Pg(_) => None,
            };
            let writer = Writer::spawn(conn, target, &opts)?;
            Ok(Store {
                inner: Arc::new(Inner {
                    backend,
                    pool,
                    writer,
                    _checkpointer: checkpointer,
                    index_marks: Default::default(),
                    index_safety_lag: opts.index_safety_lag,
                }),
            })
        })
        .await
    }

    /// Applies pending migrations to the database at `url`; returns the
    /// names of the migrations applied (empty when up to date).
    pub async fn migrate(url: &str) -> Result<Vec<String>> {
        let target = Target::parse(url)?;
        blocking(move || {
            let mut conn = target.connect(&StoreOptions::default())?;
            db::migrate(&mut conn)
        })
        .await
    }

    /// Which database this store talks to.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db<'_>) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        blocking(move || inner.pool.with(f)).await
    }

    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db<'_>) -> Result<T> + Send + 'static,
    {
        self.inner.writer.write(f).await
    }

    // -- CWMP hot path -----------------------------------------------------

    /// Per-device credentials of the CPE; `None` if the device is unknown.
    pub async fn device_auth(&self, id: &str) -> Result<Option<DeviceAuth>> {
        let id = id.to_string();
        self.read(move |db| ops::device_auth(db, &id)).await
    }

    /// Persists an Inform in one write job: upserts the device, appends the
    /// events, upserts the reported parameters and closes tasks that the
    /// events complete (`M Reboot`, `M ScheduleInform` with our CommandKey).
    ///
    /// With `rec.bootstrap` it first forgets the device's state: deletes its
    /// parameters, bumps `bootstrap_epoch`, completes waiting `FactoryReset`
    /// tasks and faults the other `waiting` tasks ("cancelled by BOOTSTRAP"),
    /// except those whose completion this same Inform announces.
    pub async fn record_inform(&self, rec: InformRecord) -> Result<InformOutcome> {
        self.write(move |db| ops::record_inform(db, rec)).await
    }

    /// Runnable tasks of a device: `pending`, not expired at `now`, oldest
    /// first, at most `limit`. Pending tasks found expired are marked
    /// `expired` (a write, only when there are some).
    pub async fn next_tasks(
        &self,
        device_id: &str,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<TaskRow>> {
        let id = device_id.to_string();
        let (runnable, expired) = self
            .read(move |db| ops::pending_tasks(db, &id, now, limit))
            .await?;
        if !expired.is_empty() {
            self.write(move |db| ops::expire_tasks(db, expired, now))
                .await?;
        }
        Ok(runnable)
    }

    /// Writes what a session did, in one job: parameter deletes, parameter
    /// upserts, then task updates. A `Fault` update with `retryable` goes
    /// back to `Pending` while attempts remain. Returns each updated task's
    /// resulting status (unknown task ids are skipped).
    pub async fn apply_session_results(
        &self,
        batch: SessionResults,
    ) -> Result<Vec<(i64, TaskStatus)>> {
        self.write(move |db| ops::apply_session_results(db, batch))
            .await
    }

    /// Settles the task a `TransferComplete` refers to: `done`, or `fault`
    /// with `fault`. Returns the task id, `None` if no task of the device has
    /// that CommandKey. Idempotent: a task already settled is left alone and
    /// its id returned again.
    pub async fn complete_transfer(
        &self,
        device_id: &str,
        command_key: &str,
        fault: Option<TaskFault>,
        start: Option<DateTime<Utc>>,
        complete: Option<DateTime<Utc>>,
    ) -> Result<Option<i64>> {
        let (id, key) = (device_id.to_string(), command_key.to_string());
        self.write(move |db| ops::complete_transfer(db, &id, &key, fault, start, complete))
            .await
    }

    /// Returns tasks whose lease expired to the queue (`pending`, with the attempt
    /// counted; `fault` once attempts are used up), and faults `waiting` tasks whose
    /// deadline passed. With `restarted_node`, every lease that node holds counts as
    /// expired: call it at start-up. Safe to run on every node at any time.
    pub async fn reclaim_tasks(&self, r: Reclaim) -> Result<ReclaimOutcome> {
        self.write(move |db| ops::reclaim_tasks(db, r)).await
    }

    /// Uses up the upload token of an Upload task that is `running` or `waiting`; returns
    /// the task, or `None` if the token does not open it (wrong, used, task over).
    pub async fn claim_upload(&self, task_id: i64, token: &str) -> Result<Option<TaskRow>> {
        let token = token.to_string();
        self.write(move |db| ops::claim_upload(db, task_id, &token))
            .await
    }

    /// Gives back a token claimed by [`Store::claim_upload`] whose upload failed.
    pub async fn release_upload(&self, task_id: i64, token: &str) -> Result<()> {
        let token = token.to_string();
        self.write(move |db| ops::release_upload(db, task_id, &token))
            .await
    }

    /// The (unused) upload token of an Upload task.
    pub async fn upload_token(&self, task_id: i64) -> Result<Option<String>> {
        self.read(move |db| ops::upload_token(db, task_id)).await
    }

    /// A CPE confirmed a CancelTransfer: the transfer task sent with `command_key` is
    /// `cancelled`. Returns its id (`None`: no open transfer with that key).
    pub async fn cancel_transfer(&self, device_id: &str, command_key: &str) -> Result<Option<i64>> {
        let (id, key) = (device_id.to_string(), command_key.to_string());
        self.write(move |db| ops::cancel_transfer(db, &id, &key))
            .await
    }

    /// Records the outcome of a connection request to the device.
    pub async fn record_connection_request(
        &self,
        device_id: &str,
        at: DateTime<Utc>,
        result: &str,
    ) -> Result<bool> {
        let (id, result) = (device_id.to_string(), result.to_string());
        self.write(move |db| ops::record_connection_request(db, &id, at, &result))
            .await
    }

    // -- Devices -------------------------------------------------------------

    /// A page of devices (ordered by id) and the total matching `q`.
    pub async fn list_devices(&self, q: DeviceQuery) -> Result<(Vec<DeviceRow>, i64)> {
        self.read(move |db| ops::list_devices(db, &q)).await
    }

    /// One device; `None` if unknown.
    pub async fn get_device(&self, id: &str) -> Result<Option<DeviceRow>> {
        let id = id.to_string();
        self.read(move |db| ops::get_device(db, &id)).await
    }

    /// Number of devices.
    pub async fn count_devices(&self) -> Result<i64> {
        self.read(ops::count_devices).await
    }

    /// Cached parameters of a device, ordered by path; with `prefix`, only
    /// paths starting with it (`"Device.WiFi."` for a subtree).
    pub async fn get_parameters(
        &self,
        device_id: &str,
        prefix: Option<&str>,
    ) -> Result<Vec<ParameterRow>> {
        let id = device_id.to_string();
        let prefix = prefix.map(str::to_string);
        self.read(move |db| ops::get_parameters(db, &id, prefix.as_deref()))
            .await
    }

    /// The device's most recent events, newest first.
    pub async fn get_events(&self, device_id: &str, limit: i64) -> Result<Vec<EventRow>> {
        let id = device_id.to_string();
        self.read(move |db| ops::get_events(db, &id, limit)).await
    }

    /// Sets (or, with `None`, clears) a device's credentials: the CPE's username and
    /// sealed password ([`CpeSecret`]: no password is stored in clear), and the
    /// connection-request credentials we use toward it (kept as given: they must be
    /// replayed; never serialized or logged). `false` if the device is unknown.
    pub async fn set_device_credentials(
        &self,
        id: &str,
        cpe_username: Option<String>,
        cpe_secret: Option<CpeSecret>,
        cr_username: Option<String>,
        cr_password: Option<String>,
    ) -> Result<bool> {
        let id = id.to_string();
        self.write(move |db| {
            ops::set_device_credentials(db, &id, cpe_username, cpe_secret, cr_username, cr_password)
        })
        .await
    }

    /// Devices whose CPE password an older version stored in clear: (id, username,
    /// password), for [`Store::seal_cpe_password`].
    pub async fn cleartext_cpe_passwords(&self) -> Result<Vec<(String, Option<String>, String)>> {
        self.read(ops::cleartext_cpe_passwords).await
    }

    /// Replaces a cleartext CPE password with its sealed form.
    pub async fn seal_cpe_password(&self, id: &str, secret: CpeSecret) -> Result<bool> {
        let id = id.to_string();
        self.write(move |db| ops::seal_cpe_password(db, &id, secret))
            .await
    }

    /// How many devices hold a CPE secret sealed for a realm other than `realm`.
    pub async fn count_foreign_realm_secrets(&self, realm: &str) -> Result<i64> {
        let realm = realm.to_string();
        self.read(move |db| ops::count_foreign_realm_secrets(db, &realm))
            .await
    }

    /// Deletes a device with its parameters, events and tasks. `false` if
    /// it did not exist.
    pub async fn delete_device(&self, id: &str) -> Result<bool> {
        let id = id.to_string();
        self.write(move |db| ops::delete_device(db, &id)).await
    }

    // -- Operator access ---------------------------------------------------

    pub async fn list_roles(&self) -> Result<Vec<Role>> {
        self.read(access::list_roles).await
    }

    pub async fn get_role(&self, name: &str) -> Result<Option<Role>> {
        let name = name.to_string();
        self.read(move |db| access::get_role(db, &name)).await
    }

    /// Creates (`create_only`) or replaces a role. Built-in roles change only when `role`
    /// is itself marked built in (the server's start-up seeding).
    pub async fn put_role(&self, role: Role, create_only: bool) -> Result<Role> {
        self.write(move |db| access::put_role(db, &role, create_only))
            .await
    }

    /// Deletes a custom role that no user or live token holds.
    pub async fn delete_role(&self, name: &str) -> Result<bool> {
        let name = name.to_string();
        self.write(move |db| access::delete_role(db, &name)).await
    }

    pub async fn count_users(&self) -> Result<i64> {
        self.read(access::count_users).await
    }

    pub async fn create_user(
        &self,
        name: &str,
        password_hash: &str,
        role: &str,
        tenant: Option<&str>,
    ) -> Result<UserRow> {
        let (name, hash, role) = (
            name.to_string(),
            password_hash.to_string(),
            role.to_string(),
        );
        let tenant = tenant.map(str::to_string);
        self.write(move |db| access::create_user(db, &name, &hash, &role, tenant.as_deref()))
            .await
    }

    /// Users, all or of one tenant.
    pub async fn list_users(&self, tenant: Option<&str>) -> Result<Vec<UserRow>> {
        let tenant = tenant.map(str::to_string);
        self.read(move |db| access::list_users(db, tenant.as_deref()))
            .await
    }

    pub async fn get_user_auth(&self, name: &str) -> Result<Option<UserAuth>> {
        let name = name.to_string();
        self.read(move |db| access::get_user_auth(db, &name)).await
    }

    /// Changes a user; a new password, a new role or disabling ends its console sessions.
    pub async fn update_user(&self, name: &str, u: UserUpdate) -> Result<Option<UserRow>> {
        let name = name.to_string();
        self.write(move |db| access::update_user(db, &name, &u))
            .await
    }

    pub async fn touch_login(&self, name: &str) -> Result<()> {
        let name = name.to_string();
        self.write(move |db| access::touch_login(db, &name)).await
    }

    pub async fn create_session(
        &self,
        id_hash: &str,
        user: &str,
        expires_at: DateTime<Utc>,
        remote_addr: Option<&str>,
    ) -> Result<()> {
        let (h, u) = (id_hash.to_string(), user.to_string());
        let addr = remote_addr.map(str::to_string);
        self.write(move |db| access::create_session(db, &h, &u, expires_at, addr.as_deref()))
            .await
    }

    /// The enabled user of an unexpired console session.
    pub async fn session_user(&self, id_hash: &str) -> Result<Option<UserRow>> {
        let h = id_hash.to_string();
        self.read(move |db| access::session_user(db, &h)).await
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<bool> {
        let h = id_hash.to_string();
        self.write(move |db| access::delete_session(db, &h)).await
    }

    pub async fn create_token(&self, t: NewToken) -> Result<TokenRow> {
        self.write(move |db| access::create_token(db, &t)).await
    }

    pub async fn list_tokens(&self, tenant: Option<&str>) -> Result<Vec<TokenRow>> {
        let tenant = tenant.map(str::to_string);
        self.read(move |db| access::list_tokens(db, tenant.as_deref()))
            .await
    }

    pub async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>> {
        let h = hash.to_string();
        self.read(move |db| access::token_by_hash(db, &h)).await
    }

    pub async fn get_token(&self, id: &str) -> Result<Option<TokenRow>> {
        let id = id.to_string();
        self.read(move |db| access::get_token(db, &id)).await
    }

    pub async fn revoke_token(&self, id: &str) -> Result<Option<TokenRow>> {
        let id = id.to_string();
        self.write(move |db| access::revoke_token(db, &id)).await
    }

    pub async fn touch_token(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        let id = id.to_string();
        self.write(move |db| access::touch_token(db, &id, at)).await
    }

    pub async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        self.read(access::list_tenants).await
    }

    /// Creates or replaces a tenant and reassigns every device; returns how many devices
    /// belong to some tenant afterwards.
    pub async fn put_tenant(&self, t: Tenant) -> Result<u64> {
        self.write(move |db| access::put_tenant(db, &t)).await
    }

    pub async fn delete_tenant(&self, name: &str) -> Result<bool> {
        let name = name.to_string();
        self.write(move |db| access::delete_tenant(db, &name)).await
    }

    /// Re-evaluates the tenant of one device (e.g. after its first Inform).
    pub async fn assign_tenant(&self, device_id: &str) -> Result<()> {
        let id = device_id.to_string();
        self.write(move |db| access::assign_tenants(db, Some(&id)).map(|_| ()))
            .await
    }

    pub async fn device_tags(&self, device_id: &str) -> Result<Vec<String>> {
        let id = device_id.to_string();
        self.read(move |db| access::device_tags(db, &id)).await
    }

    /// Adds and removes tags; `None` if the device is unknown.
    pub async fn change_tags(
        &self,
        device_id: &str,
        add: Vec<String>,
        remove: Vec<String>,
    ) -> Result<Option<Vec<String>>> {
        let id = device_id.to_string();
        self.write(move |db| access::change_tags(db, &id, &add, &remove))
            .await
    }

    /// True when the device exists and every filter admits it.
    pub async fn device_in_scope(&self, device_id: &str, scopes: &[DeviceFilter]) -> Result<bool> {
        let id = device_id.to_string();
        if access::unrestricted(scopes) {
            return self.read(move |db| ops::device_exists(db, &id)).await;
        }
        let scopes = scopes.to_vec();
        self.read(move |db| access::device_in_scope(db, &id, &scopes))
            .await
    }

    /// Appends one audit record (committed when this returns).
    pub async fn append_audit(&self, a: NewAudit) -> Result<i64> {
        self.write(move |db| access::append_audit(db, &a)).await
    }

    pub async fn query_audit(&self, q: AuditQuery) -> Result<Vec<AuditRow>> {
        self.read(move |db| access::query_audit(db, &q)).await
    }

    /// Runs one SQL statement as a write job (tests: e.g. to show what the database itself
    /// refuses).
    #[cfg(any(test, feature = "testing"))]
    pub async fn execute_sql(&self, sql: &str) -> Result<usize> {
        let sql = sql.to_string();
        self.write(move |db| {
            use diesel::RunQueryDsl;
            Ok(db::on!(db, |c| diesel::sql_query(&sql).execute(c))?)
        })
        .await
    }

    // -- Webhooks ------------------------------------------------------------

    pub async fn create_webhook(&self, n: NewWebhook) -> Result<Webhook> {
        self.write(move |db| webhooks::create_webhook(db, &n)).await
    }

    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>> {
        self.read(webhooks::list_webhooks).await
    }

    pub async fn get_webhook(&self, id: &str) -> Result<Option<Webhook>> {
        let id = id.to_string();
        self.read(move |db| webhooks::get_webhook(db, &id)).await
    }

    pub async fn delete_webhook(&self, id: &str) -> Result<bool> {
        let id = id.to_string();
        self.write(move |db| webhooks::delete_webhook(db, &id))
            .await
    }

    /// Persists one event for each webhook in `hooks` (one write job).
    pub async fn enqueue_deliveries(
        &self,
        hooks: Vec<String>,
        event_id: String,
        event_type: String,
        payload: serde_json::Value,
    ) -> Result<()> {
        self.write(move |db| webhooks::enqueue(db, &hooks, &event_id, &event_type, &payload))
            .await
    }

    /// Pending deliveries due at `at`, oldest first.
    pub async fn due_deliveries(&self, at: DateTime<Utc>, limit: i64) -> Result<Vec<DeliveryRow>> {
        self.read(move |db| webhooks::due(db, at, limit)).await
    }

    /// Records one delivery attempt: delivered, to retry at `retry_at`, or given up.
    pub async fn record_delivery_attempt(
        &self,
        id: i64,
        delivered: bool,
        status: Option<i32>,
        error: Option<String>,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        self.write(move |db| {
            webhooks::record_attempt(db, id, delivered, status, error.as_deref(), retry_at)
        })
        .await
    }

    /// Deliveries of a webhook, newest first.
    pub async fn webhook_deliveries(
        &self,
        hook: &str,
        status: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>> {
        let (hook, status) = (hook.to_string(), status.map(str::to_string));
        self.read(move |db| webhooks::deliveries(db, &hook, status.as_deref(), before, limit))
            .await
    }

    // -- Tasks ---------------------------------------------------------------

    /// Queues a task; its CommandKey (`"k<id>-<random>"`, ≤ 32 chars) is set
    /// in the same transaction. [`StoreError::NotFound`] for an unknown device.
    pub async fn create_task(&self, task: NewTask) -> Result<TaskRow> {
        self.write(move |db| ops::create_task(db, task)).await
    }

    /// One task; `None` if unknown.
    pub async fn get_task(&self, id: i64) -> Result<Option<TaskRow>> {
        self.read(move |db| ops::get_task(db, id)).await
    }

    /// A page of tasks (newest first) and the total matching `q`.
    pub async fn list_tasks(&self, q: TaskQuery) -> Result<(Vec<TaskRow>, i64)> {
        self.read(move |db| ops::list_tasks(db, &q)).await
    }

    /// Tasks in status `fault` (newest first, at most 1,000).
    pub async fn list_faults(&self, device_id: Option<&str>) -> Result<Vec<TaskRow>> {
        let q = TaskQuery {
            device_id: device_id.map(str::to_string),
            status: Some(TaskStatus::Fault),
            limit: 1000,
            ..TaskQuery::default()
        };
        Ok(self.list_tasks(q).await?.0)
    }

    /// Open tasks by status (the queue depth).
    pub async fn task_counts(&self) -> Result<Vec<(String, i64)>> {
        self.read(ops::task_counts).await
    }

    /// Acknowledges faulted tasks; returns the ids that were changed.
    pub async fn acknowledge_faults(&self, ids: Vec<i64>, who: &str) -> Result<Vec<i64>> {
        let who = who.to_string();
        self.write(move |db| ops::acknowledge_faults(db, &ids, &who))
            .await
    }

    /// Cancels a `pending`, `running` or `waiting` task. Returns the task as
    /// it is afterwards (check its status: settled tasks are left alone), or
    /// `None` if there is no such task.
    pub async fn cancel_task(&self, id: i64) -> Result<Option<TaskRow>> {
        self.write(move |db| ops::cancel_task(db, id)).await
    }

    // -- Files ---------------------------------------------------------------

    /// Registers a stored file (a UUID is assigned when `file.id` is `None`).
    pub async fn insert_file(&self, file: NewFile) -> Result<FileRow> {
        self.write(move |db| ops::insert_file(db, file)).await
    }

    /// Newest first: all files, or only those `device_id` uploaded.
    pub async fn list_files(
        &self,
        device_id: Option<&str>,
        scopes: &[DeviceFilter],
    ) -> Result<Vec<FileRow>> {
        let id = device_id.map(str::to_string);
        let scopes = scopes.to_vec();
        self.read(move |db| ops::list_files(db, id.as_deref(), &scopes))
            .await
    }

    /// One file; `None` if unknown.
    pub async fn get_file(&self, id: &str) -> Result<Option<FileRow>> {
        let id = id.to_string();
        self.read(move |db| ops::get_file(db, &id)).await
    }

    /// Deletes the row and returns it (the caller removes `stored_path`).
    pub async fn delete_file(&self, id: &str) -> Result<Option<FileRow>> {
        let id = id.to_string();
        self.write(move |db| ops::delete_file(db, &id)).await
    }
}

impl Store {
    // -- Bulk data: IPDR -----------------------------------------------------

    /// Stores a batch of IPDR records in ONE write job: `session_updates`
    /// (in order), then each record unless its key (exporter, session,
    /// document, DSN) is already stored, with its samples only if the record
    /// was inserted, then the per-document counters (`records`,
    /// `last_sequence`) and the exporter's `records_total`. Exporter and
    /// session rows that do not exist yet are created.
    ///
    /// All or nothing; once this returns `Ok` the records are durable, so
    /// the collector may DATA_ACK them. The `fields` JSON is encoded before
    /// the job is queued, on the caller's task. NUL characters in stored
    /// text (ids, paths, values) become `.`, as TR-232 does with bytes it
    /// cannot carry (PostgreSQL text cannot hold NUL).
    pub async fn ipdr_commit(&self, batch: IpdrBatch) -> Result<IpdrCommitOutcome> {
        let prepared = bulkdata::prepare_ipdr(batch)?;
        self.write(move |db| bulkdata::ipdr_commit(db, prepared))
            .await
    }

    /// Creates or updates an exporter (its `records_total` is kept;
    /// `None` fields keep their stored value).
    pub async fn upsert_ipdr_exporter(&self, exporter: IpdrExporterIn) -> Result<IpdrExporterRow> {
        let exporter = bulkdata::prepare_exporter(exporter)?;
        self.write(move |db| bulkdata::upsert_ipdr_exporter(db, exporter))
            .await
    }

    /// Records a session start (a document): creates the row, or, for a
    /// recovered session continuing the same document, updates its
    /// `config_id` and `template` and clears `stopped_at` (counters and
    /// `started_at` stay). Creates the exporter row if needed.
    pub async fn upsert_ipdr_session(
        &self,
        exporter_id: &str,
        session: IpdrSessionIn,
    ) -> Result<IpdrSessionRow> {
        let (exporter, prepared) = bulkdata::prepare_session(exporter_id, session)?;
        self.write(move |db| bulkdata::upsert_ipdr_session(db, &exporter, prepared))
            .await
    }

    /// Sets `stopped_at` of a document; `false` if there is no such session.
    pub async fn stop_ipdr_session(
        &self,
        exporter_id: &str,
        session_id: i32,
        document_id: &str,
        stopped_at: DateTime<Utc>,
    ) -> Result<bool> {
        // Ids are stored with NUL replaced (see `ipdr_commit`): look them up so.
        let exporter = bulkdata::strip_nul(exporter_id.to_string());
        let document = bulkdata::strip_nul(document_id.to_string());
        let at = sqlconv::to_db(stopped_at);
        self.write(move |db| bulkdata::stop_ipdr_session(db, &exporter, session_id, document, at))
            .await
    }

    /// All exporters, by id.
    pub async fn list_ipdr_exporters(&self) -> Result<Vec<IpdrExporterRow>> {
        self.read(bulkdata::list_ipdr_exporters).await
    }

    /// Sessions (documents), newest start first, at most 1,000; all, or
    /// those of one exporter.
    pub async fn list_ipdr_sessions(&self, exporter: Option<&str>) -> Result<Vec<IpdrSessionRow>> {
        let exporter = exporter.map(str::to_string);
        self.read(move |db| bulkdata::list_ipdr_sessions(db, exporter.as_deref()))
            .await
    }

    /// The highest DSN stored for a document, `None` if none is: what a
    /// collector seeds its de-duplication with after a restart
    /// (`Collector::resume_document`).
    pub async fn last_ipdr_sequence(
        &self,
        exporter_id: &str,
        session_id: i32,
        document_id: &str,
    ) -> Result<Option<i64>> {
        let exporter = bulkdata::strip_nul(exporter_id.to_string());
        let document = bulkdata::strip_nul(document_id.to_string());
        self.read(move |db| bulkdata::last_ipdr_sequence(db, &exporter, session_id, &document))
            .await
    }

    /// Stored IPDR records, newest first, at most `limit` (1..=10,000); all,
    /// or those of an exporter and/or a session id.
    pub async fn query_ipdr_records(
        &self,
        exporter: Option<&str>,
        session_id: Option<i32>,
        limit: i64,
    ) -> Result<Vec<IpdrRecordRow>> {
        self.ipdr_records(IpdrRecordQuery {
            exporter: exporter.map(str::to_string),
            session_id,
            limit,
            ..Default::default()
        })
        .await
    }

    /// Stored IPDR records (of templates other than TR-232's, whose reports become samples)
    /// matching `q`, newest first.
    pub async fn ipdr_records(&self, q: IpdrRecordQuery) -> Result<Vec<IpdrRecordRow>> {
        self.read(move |db| bulkdata::query_ipdr_records(db, &q))
            .await
    }

    // -- Bulk data: samples ----------------------------------------------------

    /// Stores the samples of one bulk-data report (HTTP JSON/CSV) in one
    /// write job, all or nothing; returns how many were stored. `source` is
    /// one of [`SAMPLE_SOURCES`]; `device_id` is the canonical id
    /// ([`canonical_device_id`]) of the reporting device, whether or not the
    /// ACS knows it yet.
    pub async fn insert_samples(
        &self,
        device_id: Option<String>,
        source: &str,
        source_ref: Option<String>,
        samples: Vec<SampleIn>,
    ) -> Result<u64> {
        let prepared = bulkdata::prepare_samples(device_id, source, source_ref, samples)?;
        if prepared.samples == 0 {
            return Ok(0);
        }
        self.write(move |db| bulkdata::insert_samples(db, &prepared))
            .await
    }

    /// Indexes reports by device, one chunk of at most `max_rows` reports
    /// (see the `bulkdata` module): call it periodically (`keelson serve`
    /// does, every second) while `more` is returned. Queries are right
    /// either way; an unindexed tail only makes them scan more.
    ///
    /// With PostgreSQL several writers (nodes) may hold uncommitted reports
    /// with ids below ones already committed, so the watermark only moves up
    /// to the highest id seen at least `StoreOptions::index_safety_lag` ago.
    pub async fn index_bulk_reports(&self, max_rows: i64) -> Result<bulkdata::IndexOutcome> {
        let safe = match self.inner.backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let top = self.read(bulkdata::max_report_id).await?;
                let now = std::time::Instant::now();
                let lag = self.inner.index_safety_lag;
                let mut marks = self.inner.index_marks.lock().expect("index marks");
                marks.push_back((now, top));
                let mut safe = 0;
                while let Some(&(t, id)) = marks.front() {
                    if now.duration_since(t) >= lag {
                        safe = id;
                        marks.pop_front();
                    } else {
                        break;
                    }
                }
                // Keep the newest expired mark for the next run.
                if safe > 0 {
                    marks.push_front((now.checked_sub(lag).unwrap_or(now), safe));
                }
                if marks.len() > 4096 {
                    marks.pop_back();
                }
                Some(safe)
            }
        };
        self.write(move |db| bulkdata::index_reports(db, max_rows, safe))
            .await
    }

    /// How far the by-device index lags: (`indexed_upto`, highest report id).
    pub async fn bulk_index_lag(&self) -> Result<(i64, i64)> {
        self.read(bulkdata::index_lag).await
    }

    /// Deletes bulk-data reports and IPDR records received before `before`
    /// (and their index entries), in writer jobs of at most `chunk` rows each
    /// so that ingest goes on meanwhile; returns the totals.
    pub async fn prune_bulk_data(
        &self,
        before: DateTime<Utc>,
        chunk: i64,
    ) -> Result<bulkdata::PruneOutcome> {
        let at = sqlconv::to_db(before);
        let mut total = bulkdata::PruneOutcome::default();
        loop {
            let o = self
                .write(move |db| bulkdata::prune_bulk(db, at, chunk))
                .await?;
            total.reports += o.reports;
            total.index_entries += o.index_entries;
            total.records += o.records;
            if o.reports == 0 && o.records == 0 {
                return Ok(total);
            }
        }
    }

    /// Samples matching `q`, newest first (`sampled_at`, then insertion).
    /// Fast with `device_id` (the by-device report index plus its unindexed
    /// tail); without it every report in the time range is read.
    pub async fn query_samples(&self, q: SampleQuery) -> Result<Vec<SampleRow>> {
        self.read(move |db| bulkdata::query_samples(db, &q)).await
    }

    /// Maps a TR-069/TR-232 identity to the ACS device: the canonical id
    /// ([`canonical_device_id`]) if a device with that id is stored.
    pub async fn device_exists_by_identity(
        &self,
        oui: &str,
        product_class: &str,
        serial_number: &str,
    ) -> Result<Option<String>> {
        let (oui, pc, sn) = (
            oui.to_string(),
            product_class.to_string(),
            serial_number.to_string(),
        );
        self.read(move |db| bulkdata::device_exists_by_identity(db, &oui, &pc, &sn))
            .await
    }
}

/// Runs blocking database work on tokio's blocking pool.
async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(StoreError::Closed),
    }
}

#[cfg(test)]
mod tests {
    //! The writer's all-or-nothing guarantee per job, at the job level.

    use super::*;

    fn rec(serial: &str) -> InformRecord {
        InformRecord {
            device_id: format!("dev-{serial}"),
            oui: "000000".into(),
            product_class: "T".into(),
            serial_number: serial.into(),
            manufacturer: "M".into(),
            root_object: "Device.".into(),
            software_version: None,
            hardware_version: None,
            connection_request_url: None,
            udp_connection_request_address: None,
            parameter_key: None,
            cwmp_ns: "urn:dslforum-org:cwmp-1-0".into(),
            cwmp_version: "1.0".into(),
            remote_addr: None,
            current_time: None,
            retry_count: 0,
            received_at: Utc::now(),
            session_id: None,
            events: vec![InformEvent {
                code: "2 PERIODIC".into(),
                command_key: String::new(),
            }],
            params: vec![InformParam {
                path: "Device.X".into(),
                value: "1".into(),
                xsd_type: None,
            }],
            bootstrap: false,
        }
    }

    /// Writes a device, then fails (or panics) after the write.
    async fn write_then_fail(store: &Store, serial: &str, panic: bool) -> StoreError {
        let rec = rec(serial);
        store
            .write(move |db| {
                ops::record_inform(db, rec)?;
                if panic {
                    panic!("job panicked on purpose");
                }
                Err::<(), _>(StoreError::NotFound("on purpose".into()))
            })
            .await
            .unwrap_err()
    }

    async fn failed_jobs_leave_no_trace(store: Store) {
        // A lone job (no savepoint): the transaction rolls back.
        let e = write_then_fail(&store, "lone", false).await;
        assert!(matches!(e, StoreError::NotFound(_)), "{e:?}");
        assert!(store.get_device("dev-lone").await.unwrap().is_none());
        let e = write_then_fail(&store, "panic", true).await;
        assert!(matches!(e, StoreError::Panicked(_)), "{e:?}");
        assert!(store.get_device("dev-panic").await.unwrap().is_none());

        // In shared batches: failing jobs roll back to their savepoints,
        // the others commit.
        let mut handles = Vec::new();
        for i in 0..60 {
            let s = store.clone();
            handles.push(tokio::spawn(async move {
                let serial = format!("b{i}");
                match i % 3 {
                    0 => Some(write_then_fail(&s, &serial, false).await),
                    1 => Some(write_then_fail(&s, &serial, true).await),
                    _ => s.record_inform(rec(&serial)).await.err(),
                }
            }));
        }
        for (i, h) in handles.into_iter().enumerate() {
            let err = h.await.unwrap();
            let stored = store.get_device(&format!("dev-b{i}")).await.unwrap();
            if i % 3 == 2 {
                assert!(err.is_none(), "{err:?}");
                assert!(stored.is_some());
                assert_eq!(
                    store
                        .get_events(&format!("dev-b{i}"), 5)
                        .await
                        .unwrap()
                        .len(),
                    1
                );
            } else {
                assert!(err.is_some());
                assert!(stored.is_none(), "job {i} failed but left its device");
                assert!(store
                    .get_events(&format!("dev-b{i}"), 5)
                    .await
                    .unwrap()
                    .is_empty());
            }
        }
        assert_eq!(store.count_devices().await.unwrap(), 20);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite_failed_jobs_leave_no_trace() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("k.db").display().to_string();
        let store = Store::open(&url, StoreOptions::default()).await.unwrap();
        failed_jobs_leave_no_trace(store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres_failed_jobs_leave_no_trace() {
        let Some(pg) = testpg::TestPg::start() else {
            return;
        };
        let store = Store::open(pg.url(), StoreOptions::default())
            .await
            .unwrap();
        failed_jobs_leave_no_trace(store).await;
    }
}
