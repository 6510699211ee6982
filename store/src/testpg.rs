//! Throwaway PostgreSQL clusters for tests (feature `testing`).
//!
//! [`TestPg::start`] runs `initdb` into a fresh temporary directory and
//! starts a private server on `127.0.0.1:<free port>` (its unix socket also
//! in that directory), trusting local connections as user `postgres`. The
//! cluster is stopped and its directory removed when the [`TestPg`] drops;
//! a small watchdog process does the same if the test process dies first
//! (so a cluster kept in a `static`, see [`TestPg::shared`], never leaks).
//!
//! Binaries are looked for in `$KEELSON_PG_BIN`, then the newest
//! `/usr/lib/postgresql/*/bin`, then `PATH`. Without them `start` prints
//! `SKIP: PostgreSQL tests: no initdb found` and returns `None`, so suites can
//! skip; any other failure panics, so a broken setup fails the tests.
//!
//! PostgreSQL refuses to run as root: when the tests run as root, the cluster
//! runs as user `postgres` (created if missing) through `runuser` or `su`.
//!
//! ```no_run
//! # async fn demo() {
//! use store::testpg::TestPg;
//! let Some(pg) = TestPg::shared() else { return };   // prints SKIP
//! let url = pg.fresh_database();                      // isolated per test
//! let store = store::Store::open(&url, Default::default()).await.unwrap();
//! # }
//! ```

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use diesel::{Connection, PgConnection, RunQueryDsl};

/// Name of the database created by [`TestPg::start`] (see [`TestPg::url`]).
pub const DEFAULT_DB: &str = "keelson";

const SUPERUSER: &str = "postgres";

/// A running throwaway PostgreSQL cluster.
pub struct TestPg {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    run_as: Option<RunAs>,
    url: String,
    watchdog: Mutex<Option<Child>>,
}

/// The unprivileged account the cluster runs under when we are root.
#[derive(Debug, Clone)]
struct RunAs {
    user: String,
    uid: u32,
    gid: u32,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestPg {
    /// Starts a new cluster with database [`DEFAULT_DB`]. `None` (after
    /// printing a `SKIP:` line) when no PostgreSQL binaries are installed.
    ///
    /// # Panics
    /// When binaries exist but the cluster cannot be started.
    pub fn start() -> Option<TestPg> {
        let Some(bin) = find_bin_dir() else {
            skip_notice();
            return None;
        };
        match Self::start_with(&bin) {
            Ok(pg) => Some(pg),
            Err(e) => panic!("cannot start a test PostgreSQL from {}: {e}", bin.display()),
        }
    }

    /// One cluster per process, started on first use. It is never dropped;
    /// its watchdog stops it when the process exits. Pair it with
    /// [`TestPg::fresh_database`] to keep tests independent.
    pub fn shared() -> Option<&'static TestPg> {
        static SHARED: OnceLock<Option<TestPg>> = OnceLock::new();
        SHARED.get_or_init(TestPg::start).as_ref()
    }

    /// URL of database [`DEFAULT_DB`].
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// URL of database `name` in this cluster (which need not exist).
    pub fn url_for(&self, name: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates database `name` and returns its URL.
    ///
    /// # Panics
    /// If the database cannot be created (e.g. it exists).
    pub fn create_database(&self, name: &str) -> String {
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "database name {name:?}: use [A-Za-z0-9_]"
        );
        let mut c = PgConnection::establish(&self.url_for("postgres"))
            .unwrap_or_else(|e| panic!("connect to test PostgreSQL: {e}"));
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        self.url_for(name)
    }

    /// Creates a database with a unique name and returns its URL.
    pub fn fresh_database(&self) -> String {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        self.create_database(&format!("t{}_{n}", std::process::id()))
    }

    fn start_with(bin: &Path) -> Result<TestPg, String> {
        let run_as = if effective_uid() == Some(0) {
            Some(ensure_user(SUPERUSER)?)
        } else {
            None
        };
        let base = std::env::temp_dir();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = base.join(format!("keelson-pg-{}-{n}-{nanos:x}", std::process::id()));
        fs::create_dir(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("chmod {}: {e}", dir.display()))?;
        if let Some(u) = &run_as {
            chown(&dir, Some(u.uid), Some(u.gid))
                .map_err(|e| format!("chown {} to {}: {e}", dir.display(), u.user))?;
        }
        let mut pg = TestPg {
            bin: bin.to_path_buf(),
            dir,
            port: 0,
            run_as,
            url: String::new(),
            watchdog: Mutex::new(None),
        };
        // From here on, Drop cleans up whatever was set up.
        pg.initdb()?;
        pg.spawn_watchdog()?;
        let mut last_err = String::new();
        for _ in 0..3 {
            pg.port = free_port()?;
            match pg.pg_ctl_start() {
                Ok(()) => {
                    pg.url = pg.create_database(DEFAULT_DB);
                    return Ok(pg);
                }
                // Most likely someone took the port in the meantime.
                Err(e) => last_err = e,
            }
        }
        Err(last_err)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A command for PostgreSQL binary `prog`, run as the cluster's user.
    fn command(&self, prog: &str, args: &[String]) -> Command {
        let exe = self.bin.join(prog);
        let mut cmd = match &self.run_as {
            None => {
                let mut c = Command::new(exe);
                c.args(args);
                c
            }
            Some(u) if Path::new("/usr/sbin/runuser").exists() || which("runuser").is_some() => {
                let mut c = Command::new("runuser");
                c.arg("-u").arg(&u.user).arg("--").arg(exe).args(args);
                c
            }
            Some(u) => {
                let line = std::iter::once(exe.display().to_string())
                    .chain(args.iter().cloned())
                    .map(|a| shell_quote(&a))
                    .collect::<Vec<_>>()
                    .join(" ");
                let mut c = Command::new("su");
                c.arg(&u.user).arg("-s").arg("/bin/sh").arg("-c").arg(line);
                c
            }
        };
        // The cluster user may not be able to enter our working directory.
        cmd.current_dir(&self.dir).stdin(Stdio::null());
        cmd
    }

    fn run(&self, prog: &str, args: &[String]) -> Result<(), String> {
        let out = self
            .command(prog, args)
            .output()
            .map_err(|e| format!("run {prog}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{prog} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn initdb(&self) -> Result<(), String> {
        self.run(
            "initdb",
            &[
                "-D".into(),
                self.data_dir().display().to_string(),
                "-U".into(),
                SUPERUSER.into(),
                "-A".into(),
                "trust".into(),
                "-E".into(),
                "UTF8".into(),
                "--locale=C".into(),
                "--no-sync".into(),
            ],
        )
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        // Durability is pointless for a throwaway cluster; speed is not.
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=300",
            self.port,
            self.dir.display()
        );
        let res = self.run(
            "pg_ctl",
            &[
                "-D".into(),
                self.data_dir().display().to_string(),
                "-l".into(),
                self.dir.join("server.log").display().to_string(),
                "-w".into(),
                "-t".into(),
                "60".into(),
                "-o".into(),
                opts,
                "start".into(),
            ],
        );
        res.map_err(|e| {
            let log = fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            format!("{e}\nserver log:\n{log}")
        })
    }

    /// A shell loop that stops the cluster and removes its directory once
    /// this process is gone (covers panics that abort, `exit`, SIGKILL).
    fn spawn_watchdog(&self) -> Result<(), String> {
        let stop = self.command(
            "pg_ctl",
            &[
                "-D".into(),
                self.data_dir().display().to_string(),
                "-m".into(),
                "immediate".into(),
                "stop".into(),
            ],
        );
        let stop_line = std::iter::once(stop.get_program())
            .chain(stop.get_args())
            .map(|a| shell_quote(&a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ");
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; cd /; {stop_line} >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            dir = shell_quote(&self.dir.display().to_string()),
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn watchdog: {e}"))?;
        *self.watchdog.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        Ok(())
    }
}

impl Drop for TestPg {
    fn drop(&mut self) {
        if let Some(mut w) = self
            .watchdog
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = w.kill();
            let _ = w.wait();
        }
        if self.data_dir().join("postmaster.pid").exists() {
            let _ = self.run(
                "pg_ctl",
                &[
                    "-D".into(),
                    self.data_dir().display().to_string(),
                    "-m".into(),
                    "immediate".into(),
                    "-w".into(),
                    "stop".into(),
                ],
            );
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl std::fmt::Debug for TestPg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPg")
            .field("url", &self.url)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Printed even under libtest's output capture (which only sees `print!`).
/// Under `CI=true` a missing PostgreSQL fails the run instead: CI must not pass by skipping.
fn skip_notice() {
    if std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1") {
        panic!("CI=true and no PostgreSQL server binaries (initdb, pg_ctl, postgres) were found: install postgresql");
    }
    let _ = writeln!(std::io::stderr(), "SKIP: PostgreSQL tests: no initdb found");
}

fn find_bin_dir() -> Option<PathBuf> {
    let complete = |d: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|p| d.join(p).is_file())
    };
    if let Some(dir) = std::env::var_os("KEELSON_PG_BIN").map(PathBuf::from) {
        return complete(&dir).then_some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, d)| complete(d))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Some(dir);
    }
    // On PATH; follow symlinks so initdb finds postgres and its share dir.
    let initdb = fs::canonicalize(which("initdb")?).ok()?;
    let dir = initdb.parent()?.to_path_buf();
    complete(&dir).then_some(dir)
}

fn which(prog: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    // Uid: real effective saved filesystem
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Looks up `user` in /etc/passwd, creating a system account if missing.
fn ensure_user(user: &str) -> Result<RunAs, String> {
    if let Some(u) = lookup_user(user) {
        return Ok(u);
    }
    let status = Command::new("useradd")
        .args(["--system", "--no-create-home", "--shell", "/bin/sh", user])
        .status()
        .map_err(|e| format!("useradd {user}: {e}"))?;
    if !status.success() {
        return Err(format!("useradd {user} failed ({status})"));
    }
    lookup_user(user).ok_or_else(|| format!("user {user} missing after useradd"))
}

fn lookup_user(user: &str) -> Option<RunAs> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && f[0] == user).then(|| {
            Some(RunAs {
                user: user.to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
            })
        })?
    })
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("find a free port: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("find a free port: {e}"))
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
