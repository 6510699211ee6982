//! One connection type over two backends.
//!
//! diesel's `MultiConnection` derive cannot express `ON CONFLICT`, which the
//! hot path relies on, so dispatch is an enum of borrowed connections plus
//! the [`on!`] macro: the same diesel expression is written once and
//! compiled once per backend, fully typed on each. Code that must differ
//! (transaction flavour, migrations, pragmas) matches on [`Db`] directly.

use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, ConnectionManager, CustomizeConnection};
use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::{Result, StoreError};
use crate::types::{Backend, StoreOptions};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");
const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");

/// Key of the advisory lock that serialises migrations of concurrent
/// PostgreSQL instances ("keelson" in ASCII).
const PG_MIGRATION_LOCK: i64 = 0x006b_6565_6c73_6f6e;

/// A borrowed connection to either backend.
pub(crate) enum Db<'a> {
    Sqlite(&'a mut SqliteConnection),
    Pg(&'a mut PgConnection),
}

/// Runs the same diesel code on whichever connection a `&mut Db` holds.
///
/// ```ignore
/// let n: i64 = on!(db, |c| devices::table.count().get_result(c))?;
/// ```
///
/// The body is expanded once per backend, with `c` bound to
/// `&mut SqliteConnection` or `&mut PgConnection`.
macro_rules! on {
    ($db:expr, |$c:ident| $body:expr) => {
        match &mut *$db {
            $crate::db::Db::Sqlite($c) => {
                let $c: &mut ::diesel::SqliteConnection = &mut **$c;
                $body
            }
            $crate::db::Db::Pg($c) => {
                let $c: &mut ::diesel::PgConnection = &mut **$c;
                $body
            }
        }
    };
}
pub(crate) use on;

impl<'a> From<&'a mut SqliteConnection> for Db<'a> {
    fn from(c: &'a mut SqliteConnection) -> Self {
        Db::Sqlite(c)
    }
}

impl<'a> From<&'a mut PgConnection> for Db<'a> {
    fn from(c: &'a mut PgConnection) -> Self {
        Db::Pg(c)
    }
}

impl Db<'_> {
    /// Runs `f` in a transaction, or in a savepoint when one is already open.
    pub(crate) fn transaction<T, F>(&mut self, f: F) -> Result<T>
    where
        F: FnOnce(&mut Db<'_>) -> Result<T>,
    {
        on!(self, |c| c.transaction(|c| f(&mut Db::from(c))))
    }

    /// The writer's batch transaction. SQLite takes the write lock up front
    /// (`BEGIN IMMEDIATE`) so that a lock conflict with another process
    /// waits in `busy_timeout` instead of failing at the first write.
    pub(crate) fn write_transaction<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        E: From<diesel::result::Error>,
        F: FnOnce(&mut Db<'_>) -> Result<T, E>,
    {
        match self {
            Db::Sqlite(c) => c.immediate_transaction(|c| f(&mut Db::from(c))),
            Db::Pg(c) => c.transaction(|c| f(&mut Db::from(c))),
        }
    }

    /// A cheap round trip, to tell a dead connection from a failed query.
    pub(crate) fn ping(&mut self) -> bool {
        on!(self, |c| diesel::sql_query("SELECT 1").execute(c)).is_ok()
    }
}

/// An owned connection (the writer's, or a one-off for migrations).
pub(crate) enum Conn {
    Sqlite(SqliteConnection),
    Pg(PgConnection),
}

impl Conn {
    pub(crate) fn db(&mut self) -> Db<'_> {
        match self {
            Conn::Sqlite(c) => Db::Sqlite(c),
            Conn::Pg(c) => Db::Pg(c),
        }
    }
}

/// Where the data lives, parsed from the database URL.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Sqlite(PathBuf),
    Pg(String),
}

impl Target {
    /// `postgres://…` and `postgresql://…` select PostgreSQL; anything else
    /// is a SQLite file path, optionally written `sqlite://path` or
    /// `sqlite:path`.
    pub(crate) fn parse(url: &str) -> Result<Target> {
        let url = url.trim();
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            return Ok(Target::Pg(url.to_string()));
        }
        let path = if lower.starts_with("sqlite://") {
            &url["sqlite://".len()..]
        } else if lower.starts_with("sqlite:") {
            &url["sqlite:".len()..]
        } else {
            url
        };
        if path.is_empty() || path == ":memory:" || path.starts_with("file:") {
            return Err(StoreError::Config(format!(
                "{url:?}: give a SQLite file path (the store opens several connections, \
                 so in-memory and URI databases are not supported) or a postgres:// URL"
            )));
        }
        Ok(Target::Sqlite(PathBuf::from(path)))
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Target::Sqlite(_) => Backend::Sqlite,
            Target::Pg(_) => Backend::Postgres,
        }
    }

    /// Opens one connection, configured for writing.
    pub(crate) fn connect(&self, opts: &StoreOptions) -> Result<Conn> {
        match self {
            Target::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Config(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                let mut c = SqliteConnection::establish(&sqlite_path(path)?)
                    .map_err(|e| StoreError::Connect(format!("{}: {e}", path.display())))?;
                // A big page cache keeps a large batch from spilling dirty
                // pages into the WAL before its commit.
                c.batch_execute(&format!(
                    "PRAGMA busy_timeout = {};
                     PRAGMA journal_mode = WAL;
                     PRAGMA synchronous = {};
                     PRAGMA foreign_keys = ON;
                     PRAGMA cache_size = -65536;
                     PRAGMA temp_store = MEMORY;
                     PRAGMA wal_autocheckpoint = {};",
                    opts.busy_timeout.as_millis(),
                    if opts.sqlite_fsync_commits {
                        "FULL"
                    } else {
                        "NORMAL"
                    },
                    crate::checkpoint::WRITER_AUTOCHECKPOINT,
                ))?;
                Ok(Conn::Sqlite(c))
            }
            Target::Pg(url) => {
                let c = PgConnection::establish(url)
                    .map_err(|e| StoreError::Connect(redact(url, &e.to_string())))?;
                Ok(Conn::Pg(c))
            }
        }
    }

    /// Builds the read pool.
    pub(crate) fn pool(&self, opts: &StoreOptions) -> Result<Pool> {
        fn builder<M: r2d2::ManageConnection>(
            opts: &StoreOptions,
            default: u32,
        ) -> r2d2::Builder<M> {
            r2d2::Pool::builder()
                .max_size(opts.pool_size.unwrap_or(default).max(1))
                .min_idle(Some(1))
                .connection_timeout(opts.connect_timeout)
        }
        match self {
            Target::Sqlite(path) => {
                let cpus = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
                let pool = builder(opts, (2 * cpus).max(4))
                    .connection_customizer(Box::new(SqliteReader {
                        busy_timeout: opts.busy_timeout,
                    }))
                    .build(ConnectionManager::new(sqlite_path(path)?))
                    .map_err(|e| StoreError::Pool(e.to_string()))?;
                Ok(Pool::Sqlite(pool))
            }
            Target::Pg(url) => {
                let pool = builder(opts, 8)
                    .build(ConnectionManager::new(url.clone()))
                    .map_err(|e| StoreError::Pool(redact(url, &e.to_string())))?;
                Ok(Pool::Pg(pool))
            }
        }
    }
}

pub(crate) fn sqlite_path(path: &Path) -> Result<String> {
    path.to_str()
        .map(str::to_string)
        .ok_or_else(|| StoreError::Config(format!("{}: path is not UTF-8", path.display())))
}

/// Error text with any password of `url` blanked out.
fn redact(url: &str, msg: &str) -> String {
    let shown = match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].find(':') {
            Some(colon) => format!("{}:***{}", &url[..s + 3 + colon], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    };
    format!("{shown}: {msg}")
}

/// Per-connection setup of pooled SQLite readers.
#[derive(Debug)]
struct SqliteReader {
    busy_timeout: Duration,
}

impl CustomizeConnection<SqliteConnection, r2d2::Error> for SqliteReader {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), r2d2::Error> {
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {};
             PRAGMA foreign_keys = ON;
             PRAGMA query_only = ON;
             PRAGMA cache_size = -16384;",
            self.busy_timeout.as_millis()
        ))
        .map_err(r2d2::Error::QueryError)
    }
}

/// The read pool.
pub(crate) enum Pool {
    Sqlite(r2d2::Pool<ConnectionManager<SqliteConnection>>),
    Pg(r2d2::Pool<ConnectionManager<PgConnection>>),
}

impl Pool {
    /// Checks out a connection and runs `f` on it (blocking).
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Db<'_>) -> Result<T>) -> Result<T> {
        match self {
            Pool::Sqlite(p) => {
                let mut c = p.get().map_err(|e| StoreError::Pool(e.to_string()))?;
                f(&mut Db::Sqlite(&mut c))
            }
            Pool::Pg(p) => {
                let mut c = p.get().map_err(|e| StoreError::Pool(e.to_string()))?;
                f(&mut Db::Pg(&mut c))
            }
        }
    }
}

/// Applies pending migrations; returns the names of those applied.
pub(crate) fn migrate(conn: &mut Conn) -> Result<Vec<String>> {
    match conn {
        Conn::Sqlite(c) => apply(c, SQLITE_MIGRATIONS),
        Conn::Pg(c) => {
            diesel::sql_query(format!("SELECT pg_advisory_lock({PG_MIGRATION_LOCK})"))
                .execute(c)?;
            let applied = apply(c, PG_MIGRATIONS);
            let unlocked =
                diesel::sql_query(format!("SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})"))
                    .execute(c);
            let applied = applied?;
            unlocked?;
            Ok(applied)
        }
    }
}

fn apply<DB, C>(conn: &mut C, migrations: EmbeddedMigrations) -> Result<Vec<String>>
where
    DB: diesel::backend::Backend,
    C: MigrationHarness<DB>,
{
    let pending = conn
        .pending_migrations(migrations)
        .map_err(|e| StoreError::Migration(e.to_string()))?;
    let mut applied = Vec::with_capacity(pending.len());
    for m in pending {
        let name = m.name().to_string();
        conn.run_migration(&*m)
            .map_err(|e| StoreError::Migration(format!("{name}: {e}")))?;
        tracing::info!(migration = %name, "applied database migration");
        applied.push(name);
    }
    Ok(applied)
}
