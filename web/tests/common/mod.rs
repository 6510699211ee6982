//! End-to-end harness: the real `keelson` binary (serve and sim) on loopback, a real SQLite
//! file or a private PostgreSQL cluster, and a plain HTTP client for the northbound API.
#![allow(dead_code)]

pub mod wire;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BUILT_BIN: &str = env!("CARGO_BIN_EXE_keelson");

/// The `keelson` binary under test: the one cargo built, or `KEELSON_TEST_BIN` (to run these
/// tests against another build, e.g. an older release, and see which of them it fails).
pub fn bin() -> String {
    std::env::var("KEELSON_TEST_BIN").unwrap_or_else(|_| BUILT_BIN.to_string())
}

/// A command running [`bin`]. `KEELSON_TEST_BIN` is the harness's, not the server's: the
/// server reads every `KEELSON_*` variable as configuration.
pub fn keelson() -> Command {
    let mut cmd = Command::new(bin());
    cmd.env_remove("KEELSON_TEST_BIN");
    cmd
}

/// A port free for a server to bind. Ports come from 20000–31999, below Linux's ephemeral
/// range (so no outgoing connection of a test can take one before its server binds it), each
/// handed out once per test process (parallel tests never get the same one), starting at an
/// offset derived from the process id.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const BASE: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        (std::process::id().wrapping_mul(7919)) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let port = (BASE + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port in {BASE}..{}", BASE + SPAN);
}

/// A child process killed on drop; its output goes to a log file printed on failure.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
    pub name: String,
}

impl Proc {
    pub fn spawn(name: &str, args: &[String], log: PathBuf, envs: &[(&str, String)]) -> Proc {
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let mut cmd = keelson();
        cmd.args(args)
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {name}: {e}"));
        Proc {
            child,
            log,
            name: name.into(),
        }
    }

    pub fn log_text(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let text = self.log_text();
            let tail: String = text
                .chars()
                .rev()
                .take(6000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            eprintln!("----- {} log (tail) -----\n{}\n-----", self.name, tail);
        }
    }
}

pub struct Server {
    pub proc: Proc,
    /// Earlier `keelson serve` processes of this server (see [`Server::restart`]), oldest
    /// first; kept so their logs can be checked and are printed on failure
    /// (declared before `dir`, which is removed when dropped).
    pub previous: Vec<Proc>,
    pub dir: tempfile::TempDir,
    pub http_port: u16,
    pub https_port: u16,
    pub nbi_port: u16,
    pub ipdr_port: u16,
    pub agent: ureq::Agent,
    /// An admin API token (made with `keelson token create` before the server started);
    /// every helper request carries it.
    pub token: String,
}

#[derive(Default)]
pub struct ServerOpts {
    pub database_url: Option<String>,
    /// Extra keys inside `[cwmp]`.
    pub cwmp_toml: String,
    /// Extra keys inside `[nbi]`.
    pub nbi_toml: String,
    /// Extra sections appended at the end.
    pub extra_toml: String,
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

impl Server {
    pub fn start(opts: ServerOpts) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let (http_port, https_port, nbi_port, ipdr_port) =
            (free_port(), free_port(), free_port(), free_port());
        let mut toml = format!(
            "data_dir = {:?}\n",
            dir.path().join("data").to_string_lossy()
        );
        if let Some(url) = &opts.database_url {
            toml.push_str(&format!("database_url = {url:?}\n"));
        }
        toml.push_str(&format!(
            "[cwmp]\nhttp_listen = \"127.0.0.1:{http_port}\"\nhttps_listen = \"127.0.0.1:{https_port}\"\n{}\n[nbi]\nlisten = \"127.0.0.1:{nbi_port}\"\n{}\n[log]\nlevel = \"info,acs=debug,keelson=debug\"\n[ipdr]\nlisten = \"127.0.0.1:{ipdr_port}\"\n{}\n",
            opts.cwmp_toml, opts.nbi_toml, opts.extra_toml
        ));
        let cfg = dir.path().join("keelson.toml");
        std::fs::write(&cfg, toml).unwrap();
        let token = create_token(&cfg, "harness", "admin");
        let proc = Proc::spawn(
            "keelson serve",
            &[
                "serve".into(),
                "--config".into(),
                cfg.to_string_lossy().into_owned(),
            ],
            dir.path().join("serve.log"),
            &[],
        );
        let mut server = Server {
            proc,
            dir,
            http_port,
            https_port,
            nbi_port,
            ipdr_port,
            agent: agent(),
            previous: Vec::new(),
            token,
        };
        server.wait_ready();
        server
    }

    /// Starts a new `keelson serve` on the same configuration file (same data directory,
    /// database and ports) and waits until it is ready. The current process is SIGKILLed
    /// first if it is still running (`Proc::kill`); it is kept in [`Server::previous`]. The
    /// new process logs to `serve-<n>.log`.
    pub fn restart(&mut self) {
        self.proc.kill();
        let n = self.previous.len() + 1;
        let cfg = self.dir.path().join("keelson.toml");
        let proc = Proc::spawn(
            &format!("keelson serve (restart {n})"),
            &[
                "serve".into(),
                "--config".into(),
                cfg.to_string_lossy().into_owned(),
            ],
            self.dir.path().join(format!("serve-{n}.log")),
            &[],
        );
        let old = std::mem::replace(&mut self.proc, proc);
        self.previous.push(old);
        self.wait_ready();
    }

    /// The logs of every `keelson serve` process of this server, oldest first.
    pub fn all_logs(&self) -> String {
        self.previous
            .iter()
            .chain(std::iter::once(&self.proc))
            .map(|p| format!("===== {} =====\n{}", p.name, p.log_text()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = self.agent.get(&self.nbi("/healthz")).call() {
                if r.status() == 200 {
                    return;
                }
            }
            if let Ok(Some(status)) = self.proc.child.try_wait() {
                panic!(
                    "keelson serve exited ({status}) before it was ready:\n{}",
                    self.proc.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "keelson serve did not start:\n{}",
                self.proc.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn nbi(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.nbi_port, path)
    }

    pub fn acs_url(&self, tls: bool) -> String {
        if tls {
            format!("https://127.0.0.1:{}/", self.https_port)
        } else {
            format!("http://127.0.0.1:{}/", self.http_port)
        }
    }

    /// The configuration file of this server.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("keelson.toml")
    }

    /// `Authorization` value of the harness's admin token.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// A new token of `role` (and tenant), made with `keelson token create`.
    pub fn token_for(&self, name: &str, role: &str, tenant: Option<&str>) -> String {
        let mut args = vec!["token", "create", "--name", name, "--role", role];
        if let Some(t) = tenant {
            args.extend(["--tenant", t]);
        }
        run_token_create(&self.config_path(), &args)
    }

    /// A request with `token` (None: no credentials); answers (status, JSON or text).
    pub fn call_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let url = self.nbi(path);
        let auth = token.map(|t| format!("Bearer {t}"));
        macro_rules! with_auth {
            ($req:expr) => {{
                let mut r = $req;
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r
            }};
        }
        let resp = match method {
            "GET" => with_auth!(self.agent.get(&url)).call(),
            "DELETE" => with_auth!(self.agent.delete(&url)).call(),
            "POST" => {
                let r = with_auth!(self.agent.post(&url));
                match body {
                    Some(b) => r.send_json(b),
                    None => r.send_empty(),
                }
            }
            "PUT" => {
                let r = with_auth!(self.agent.put(&url));
                match body {
                    Some(b) => r.send_json(b),
                    None => r.send_empty(),
                }
            }
            "PATCH" => {
                let r = with_auth!(self.agent.patch(&url));
                match body {
                    Some(b) => r.send_json(b),
                    None => r.send_empty(),
                }
            }
            other => panic!("method {other}"),
        };
        let mut r = resp.unwrap();
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        self.call_as(Some(&self.token), "PUT", path, Some(body))
    }

    pub fn patch(&self, path: &str, body: &Value) -> (u16, Value) {
        self.call_as(Some(&self.token), "PATCH", path, Some(body))
    }

    pub fn delete(&self, path: &str) -> (u16, Value) {
        self.call_as(Some(&self.token), "DELETE", path, None)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        let mut r = self
            .agent
            .get(&self.nbi(path))
            .header("Authorization", &self.bearer())
            .call()
            .unwrap();
        let status = r.status().as_u16();
        let body = r.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    }

    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let mut r = self
            .agent
            .post(&self.nbi(path))
            .header("Authorization", &self.bearer())
            .send_json(body)
            .unwrap();
        let status = r.status().as_u16();
        let body = r.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    }

    pub fn post_bytes(&self, path: &str, bytes: &[u8]) -> (u16, Value) {
        let mut r = self
            .agent
            .post(&self.nbi(path))
            .header("Authorization", &self.bearer())
            .send(bytes)
            .unwrap();
        let status = r.status().as_u16();
        let body = r.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    }

    /// Polls until `f` returns Some or the timeout passes.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut(&Server) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}",
                self.proc
                    .log_text()
                    .lines()
                    .rev()
                    .take(60)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Makes an API token with `keelson token create` against a server's configuration file
/// (works before the server starts: it applies the migrations and seeds the roles).
pub fn create_token(cfg: &Path, name: &str, role: &str) -> String {
    run_token_create(cfg, &["token", "create", "--name", name, "--role", role])
}

fn run_token_create(cfg: &Path, args: &[&str]) -> String {
    let out = keelson()
        .args(args)
        .arg("--config")
        .arg(cfg)
        .output()
        .expect("running keelson token create");
    assert!(
        out.status.success(),
        "keelson token create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("kt_"), "token {token:?}");
    token
}

/// The PostgreSQL cluster for this test, or None (with a visible SKIP) where none is installed.
pub fn postgres() -> Option<store::testpg::TestPg> {
    // `TestPg::start` says SKIP (or fails the run under CI=true) when no server is installed.
    store::testpg::TestPg::start()
}

/// The headers of a CWMP POST.
pub fn xml() -> [(&'static str, &'static str); 2] {
    [
        ("Content-Type", "text/xml; charset=\"utf-8\""),
        ("SOAPAction", ""),
    ]
}

/// The SOAP envelope of a 200 answer (panics on any other status).
pub fn envelope(r: &wire::Resp) -> acs::codec::Envelope {
    assert_eq!(
        r.status,
        200,
        "expected an envelope, got {} {}",
        r.status,
        r.text()
    );
    acs::codec::parse(&r.body, &acs::codec::Limits::default()).expect("ACS output parses")
}

/// A TCP connection to `port` on 127.0.0.1 from the loopback address `ip` (e.g. 127.0.0.2),
/// for tests of per-address caps and allow-lists.
pub fn connect_from(ip: &str, port: u16) -> std::net::TcpStream {
    let addr =
        |a: String| -> socket2::SockAddr { a.parse::<std::net::SocketAddr>().unwrap().into() };
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&addr(format!("{ip}:0"))).unwrap();
    sock.connect(&addr(format!("127.0.0.1:{port}"))).unwrap();
    sock.into()
}
