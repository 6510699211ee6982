//! `keelson sim`: simulated TR-181 CPEs talking CWMP to an ACS.
//!
//! The protocol behaviour lives in the sans-IO core [`crate::cpe`]; this module
//! only moves bytes and keeps time:
//!
//! - an HTTP/1.1 client (hyper, plain or TLS) with cookies and Digest/Basic
//!   authentication whose challenge is cached so steady-state sessions need
//!   no extra 401 round trip;
//! - per device, a Digest-protected HTTP Connection Request listener and an
//!   Annex G UDP Connection Request listener, both reported in the device's
//!   `ManagementServer` parameters;
//! - per device, a task that runs sessions when events are pending, keeps
//!   the periodic-inform timer, carries out the device's post-session work
//!   (reboot, real HTTP downloads and uploads, scheduled informs, DU
//!   changes) and retries failed sessions with the TR-069 back-off;
//! - `keelson sim load`: a closed-loop benchmark of complete sessions.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cpe::{
    CpeDevice, CpeSession, DeviceIdentity, DeviceSettings, Effect, SessionStep, TransferJob,
    TransferKind, TransferOutcome,
};
use acs::codec::{CWMP_NS_1_0, CWMP_NS_1_1, CWMP_NS_1_2};
use anyhow::{anyhow, bail, Context as _};
use base64::Engine as _;
use bytes::Bytes;
use chrono::Utc;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{
    HeaderMap, HeaderValue, AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST,
    LOCATION, SET_COOKIE, USER_AGENT, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{watch, Notify};
use tokio_rustls::TlsConnector;
use tracing::{debug, info, warn, Instrument};

const USER_AGENT_VALUE: &str = concat!("Keelson-Sim/", env!("CARGO_PKG_VERSION"));
/// Largest ACS response we read (whole-tree requests can be big).
const MAX_ACS_BODY: usize = 16 * 1024 * 1024;
/// Largest file a simulated Download accepts (bytes are counted, not kept).
const MAX_DOWNLOAD: u64 = 2 * 1024 * 1024 * 1024;
/// Redirects followed for the Inform and for file transfers.
const MAX_REDIRECTS: u32 = 5;
/// Realm of the devices' Connection Request Digest challenge.
const CR_REALM: &str = "Keelson CPE";

// ===========================================================================
// Command line
// ===========================================================================

/// `keelson sim [OPTIONS]` runs simulated devices against an ACS until
/// stopped; `keelson sim load [OPTIONS]` benchmarks complete sessions.
#[derive(clap::Args, Debug, Clone)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SimArgs {
    #[command(subcommand)]
    pub command: Option<SimCommand>,
    #[command(flatten)]
    pub run: RunArgs,
    /// Log filter (tracing `EnvFilter` syntax): `info` prints a summary,
    /// `debug` one line per device and session.
    #[arg(long = "log-level", global = true, default_value = "info")]
    pub log_filter: String,
}

impl SimArgs {
    /// The tracing filter the binary should install.
    pub fn log_level(&self) -> String {
        self.log_filter.clone()
    }
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum SimCommand {
    /// Closed-loop load test: N devices, C concurrent sessions, report sessions/s and latency.
    Load(LoadArgs),
    /// An IPDR/SP exporter streaming TR-232 bulk-data records to a collector.
    Ipdr(crate::ipdr_run::IpdrSimArgs),
}

/// Identity, credentials and protocol options shared by `sim` and `sim load`.
#[derive(clap::Args, Debug, Clone)]
pub struct IdentityArgs {
    /// ManufacturerOUI of the simulated devices (6 upper-case hex digits).
    #[arg(long, default_value = "02CAFE")]
    pub oui: String,
    /// ProductClass of the simulated devices.
    #[arg(long, default_value = "SimHGW")]
    pub product_class: String,
    /// Serial numbers are this prefix plus a 6-digit index.
    #[arg(long, default_value = "KSIM")]
    pub serial_prefix: String,
    /// Index of the first device's serial number.
    #[arg(long, default_value_t = 1)]
    pub serial_start: u64,
    /// CPE→ACS username (`ManagementServer.Username`). Placeholders: {oui}
    /// {product_class} {serial} {index}. Default: OUI-ProductClass-SerialNumber,
    /// each part percent-encoded (TR-069 Amendment 6).
    #[arg(long)]
    pub username: Option<String>,
    /// CPE→ACS password (`ManagementServer.Password`); placeholders as for --username.
    #[arg(long, default_value = "")]
    pub password: String,
    /// Send xsd:boolean values as 1/0 instead of true/false.
    #[arg(long)]
    pub boolean_digits: bool,
    /// CWMP version the devices speak: 1.0–1.2 send no version headers,
    /// 1.3 adds SessionTimeout, 1.4 also SupportedCWMPVersions.
    #[arg(long, default_value = "1.4", value_parser = ["1.0", "1.1", "1.2", "1.3", "1.4"])]
    pub cwmp_version: String,
    /// PEM CA bundle to verify the ACS (and file servers) over https.
    /// Without it any certificate is accepted.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Seconds to wait for each HTTP response (TR-069 says at least 30).
    #[arg(long, default_value_t = 30.0)]
    pub http_timeout: f64,
}

/// Options of `keelson sim`.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// The ACS URL (`ManagementServer.URL`).
    #[arg(long, default_value = "http://127.0.0.1:7547/")]
    pub acs_url: String,
    /// Number of simulated devices.
    #[arg(long, default_value_t = 1)]
    pub devices: usize,
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// ConnectionRequestUsername (placeholders as for --username).
    #[arg(long, default_value = "keelson")]
    pub cr_username: String,
    /// ConnectionRequestPassword (placeholders as for --username).
    #[arg(long, default_value = "keelson")]
    pub cr_password: String,
    /// PeriodicInformInterval in seconds (the ACS may change it).
    #[arg(long, default_value_t = 300)]
    pub periodic_interval: u32,
    /// Spread the devices' first sessions evenly over this many seconds.
    #[arg(long, default_value_t = 0.0)]
    pub start_spread: f64,
    /// Address the Connection Request listeners bind to (port 0 each).
    #[arg(long, default_value = "127.0.0.1")]
    pub cr_bind: IpAddr,
    /// Connection Requests a device accepts per minute; more get 503.
    #[arg(long, default_value_t = 30)]
    pub cr_rate_limit: usize,
    /// Answer Connection Requests with 503 while a session is in progress
    /// (some CPEs do). By default they are accepted and served by a new
    /// session right after the current one (TR-069 §3.2.2).
    #[arg(long)]
    pub cr_busy_503: bool,
    /// Stop after this many seconds.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Each device runs one (bootstrap) session and stops; exits non-zero if any failed.
    #[arg(long)]
    pub once: bool,
    /// Multiplier for the session-retry back-off (TR-069 §3.2.1.1); e.g. 0.01 in tests.
    #[arg(long, default_value_t = 1.0)]
    pub retry_scale: f64,
    /// Seconds a Reboot or FactoryReset keeps the device offline.
    #[arg(long, default_value_t = 1.0)]
    pub reboot_delay: f64,
}

/// Options of `keelson sim load`.
#[derive(clap::Args, Debug, Clone)]
pub struct LoadArgs {
    /// The ACS URL.
    #[arg(long, default_value = "http://127.0.0.1:7547/")]
    pub acs_url: String,
    /// Distinct devices cycled through.
    #[arg(long, default_value_t = 1000)]
    pub devices: usize,
    /// Sessions in flight at once (one connection each).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Run for this many seconds (default 10 unless --sessions is given).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Stop after this many sessions in total.
    #[arg(long)]
    pub sessions: Option<u64>,
    /// With https: open a new connection and do a full TLS handshake for
    /// every session (no keep-alive, no resumption). With http connections
    /// are always kept alive per worker.
    #[arg(long)]
    pub tls_handshake_per_session: bool,
    /// Every session is a bootstrap (`0 BOOTSTRAP` + `1 BOOT`); by default
    /// only a device's first session is, later ones are `2 PERIODIC`.
    #[arg(long)]
    pub bootstrap: bool,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub identity: IdentityArgs,
}

/// Entry point of `keelson sim` (and `keelson sim load`).
pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    match args.command {
        Some(SimCommand::Load(load)) => {
            let json = load.json;
            let report = run_load(load).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.table());
            }
            if report.sessions_ok == 0 {
                let why = report.failures.iter().max_by_key(|(_, n)| **n).map_or_else(
                    || "no session was attempted".to_string(),
                    |(r, n)| format!("{n}× {r}"),
                );
                bail!(
                    "no session completed against {} ({} failed; most common: {why})",
                    report.acs_url,
                    report.sessions_failed
                );
            }
            Ok(())
        }
        Some(SimCommand::Ipdr(ipdr)) => crate::ipdr_run::run(ipdr).await,
        None => run_devices(args.run).await,
    }
}

// ===========================================================================
// Device identities
// ===========================================================================

fn expand(template: &str, id: &DeviceIdentity, n: u64) -> String {
    template
        .replace("{oui}", &id.oui)
        .replace("{product_class}", &id.product_class)
        .replace("{serial}", &id.serial_number)
        .replace("{index}", &n.to_string())
}

/// FNV-1a, to derive a stable per-device seed from its serial number.
fn seed_of(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

fn identity_of(args: &IdentityArgs, n: u64) -> DeviceIdentity {
    let serial = format!("{}{:06}", args.serial_prefix, n);
    DeviceIdentity {
        manufacturer: "Keelson Simulated Networks".into(),
        oui: args.oui.to_ascii_uppercase(),
        product_class: args.product_class.clone(),
        seed: seed_of(&serial),
        serial_number: serial,
    }
}

fn base_settings(
    args: &IdentityArgs,
    acs_url: &str,
    id: &DeviceIdentity,
    n: u64,
) -> DeviceSettings {
    use ids::encode_username as enc;
    let username = match &args.username {
        Some(t) => expand(t, id, n),
        None => format!(
            "{}-{}-{}",
            enc(&id.oui),
            enc(&id.product_class),
            enc(&id.serial_number)
        ),
    };
    let (ns, versions, timeout) = match args.cwmp_version.as_str() {
        "1.0" => (CWMP_NS_1_0, None, None),
        "1.1" => (CWMP_NS_1_1, None, None),
        "1.2" => (CWMP_NS_1_2, None, None),
        "1.3" => (CWMP_NS_1_2, None, Some(60)),
        _ => (
            CWMP_NS_1_2,
            Some("1.0,1.1,1.2,1.3,1.4".to_string()),
            Some(60),
        ),
    };
    DeviceSettings {
        acs_url: acs_url.to_string(),
        username,
        password: expand(&args.password, id, n),
        boolean_digits: args.boolean_digits,
        cwmp_ns: ns.to_string(),
        supported_cwmp_versions: versions,
        session_timeout: timeout,
        ..DeviceSettings::default()
    }
}

fn validate_identity(args: &IdentityArgs) -> anyhow::Result<()> {
    let oui = args.oui.to_ascii_uppercase();
    if oui.len() != 6 || !oui.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("--oui must be 6 hex digits, got {:?}", args.oui);
    }
    if args.http_timeout <= 0.0 {
        bail!("--http-timeout must be positive");
    }
    Ok(())
}

// ===========================================================================
// HTTP client
// ===========================================================================

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}
type BoxIo = Pin<Box<dyn Io>>;

/// A parsed http(s) URL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    https: bool,
    /// Host to connect to (IPv6 without brackets).
    host: String,
    port: u16,
    /// `Host` header value.
    authority: String,
    /// Request target: path plus query.
    path: String,
}

impl Target {
    fn parse(url: &str) -> anyhow::Result<Target> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("invalid URL {url:?}"))?;
        let https = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => false,
            Some(s) if s.eq_ignore_ascii_case("https") => true,
            _ => bail!("URL {url:?} is not http:// or https://"),
        };
        let auth = uri
            .authority()
            .ok_or_else(|| anyhow!("URL {url:?} has no host"))?;
        if auth.as_str().contains('@') {
            bail!("URL {url:?} must not carry credentials");
        }
        let host = auth.host().trim_start_matches('[').trim_end_matches(']');
        let port = auth.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into());
        Ok(Target {
            https,
            host: host.to_string(),
            port,
            authority: auth.as_str().to_string(),
            path,
        })
    }

    fn same_origin(&self, other: &Target) -> bool {
        self.https == other.https && self.host == other.host && self.port == other.port
    }

    /// Resolves a `Location` header against this URL.
    fn join(&self, location: &str) -> anyhow::Result<Target> {
        if location.contains("://") {
            return Target::parse(location);
        }
        let mut t = self.clone();
        if location.starts_with('/') {
            t.path = location.to_string();
        } else {
            let base = t.path.rsplit_once('/').map(|(b, _)| b).unwrap_or("");
            t.path = format!("{base}/{location}");
        }
        Ok(t)
    }
}

/// TLS client configuration: verify against `ca_file`, or accept any
/// certificate (simulated CPEs talk to test ACSs with self-signed certs).
fn tls_connector(ca_file: Option<&Path>, resumption: bool) -> anyhow::Result<TlsConnector> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let mut cfg = match ca_file {
        Some(path) => {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading CA file {}", path.display()))?;
            let mut roots = RootCertStore::empty();
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                roots
                    .add(cert.context("parsing CA file")?)
                    .context("adding CA certificate")?;
            }
            if roots.is_empty() {
                bail!("no certificate in {}", path.display());
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(acs::connreq::AcceptAnyServerCert(provider)))
            .with_no_client_auth(),
    };
    if !resumption {
        cfg.resumption = rustls::client::Resumption::disabled();
    }
    Ok(TlsConnector::from(Arc::new(cfg)))
}

/// Why an HTTP exchange failed, classified the way TransferComplete needs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HttpError {
    /// TCP/TLS connection could not be established.
    Connect(String),
    /// No (complete) response within the timeout.
    Timeout,
    /// The connection broke or the peer spoke nonsense.
    Protocol(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Connect(e) => write!(f, "connect: {e}"),
            HttpError::Timeout => write!(f, "timeout"),
            HttpError::Protocol(e) => write!(f, "http: {e}"),
        }
    }
}

async fn open_connection(
    t: &Target,
    tls: Option<&TlsConnector>,
    timeout: Duration,
) -> Result<SendRequest<Full<Bytes>>, HttpError> {
    let connect = async {
        let tcp = TcpStream::connect((t.host.as_str(), t.port))
            .await
            .map_err(|e| HttpError::Connect(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let io: BoxIo = if t.https {
            let tls = tls.ok_or_else(|| HttpError::Connect("https without TLS config".into()))?;
            let name = ServerName::try_from(t.host.clone())
                .map_err(|e| HttpError::Connect(format!("bad server name: {e}")))?;
            let s = tls
                .connect(name, tcp)
                .await
                .map_err(|e| HttpError::Connect(format!("TLS: {e}")))?;
            Box::pin(s)
        } else {
            Box::pin(tcp)
        };
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| HttpError::Connect(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    };
    match tokio::time::timeout(timeout, connect).await {
        Ok(r) => r,
        Err(_) => Err(HttpError::Connect("connect timeout".into())),
    }
}

/// A cached authentication challenge.
#[derive(Debug, Clone)]
enum Challenge {
    Digest(Box<digest_auth::WwwAuthenticateHeader>),
    Basic,
}

/// Picks the challenge to answer: Digest (MD5 preferred) over Basic.
fn parse_challenge(headers: &HeaderMap) -> Option<Challenge> {
    let mut digest: Option<digest_auth::WwwAuthenticateHeader> = None;
    let mut basic = false;
    for v in headers.get_all(WWW_AUTHENTICATE) {
        let Ok(s) = v.to_str() else { continue };
        let s = s.trim();
        let scheme = s.split_whitespace().next().unwrap_or("");
        if scheme.eq_ignore_ascii_case("Digest") {
            let params = s[scheme.len()..].trim_start();
            if let Ok(h) = digest_auth::parse(params) {
                let md5 = h.algorithm.algo == digest_auth::AlgorithmType::MD5;
                if digest.is_none() || md5 {
                    digest = Some(h);
                }
            }
        } else if scheme.eq_ignore_ascii_case("Basic") {
            basic = true;
        }
    }
    match (digest, basic) {
        (Some(d), _) => Some(Challenge::Digest(Box::new(d))),
        (None, true) => Some(Challenge::Basic),
        _ => None,
    }
}

fn authorization(
    ch: &mut Challenge,
    user: &str,
    pass: &str,
    method: &Method,
    uri: &str,
    body: &[u8],
) -> Option<String> {
    match ch {
        Challenge::Basic => Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )),
        Challenge::Digest(prompt) => {
            let ctx = digest_auth::AuthContext::new_with_method(
                user,
                pass,
                uri,
                Some(body),
                digest_auth::HttpMethod::from(method.as_str().to_string()),
            );
            prompt.respond(&ctx).ok().map(|h| h.to_header_string())
        }
    }
}

/// What came back from one request.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: Bytes,
    /// Bytes received (for discarded bodies).
    len: u64,
    location: Option<String>,
}

/// An HTTP/1.1 client for one origin at a time: one kept-alive connection,
/// a cookie jar, and a cached authentication challenge whose Digest `nc`
/// increments on every request.
struct HttpClient {
    target: Option<Target>,
    tls: Option<TlsConnector>,
    timeout: Duration,
    conn: Option<SendRequest<Full<Bytes>>>,
    cookies: Vec<(String, String)>,
    challenge: Option<Challenge>,
    username: String,
    password: String,
    /// TCP connections opened so far.
    connections: u64,
}

impl HttpClient {
    fn new(tls: Option<TlsConnector>, timeout: Duration) -> Self {
        HttpClient {
            target: None,
            tls,
            timeout,
            conn: None,
            cookies: Vec::new(),
            challenge: None,
            username: String::new(),
            password: String::new(),
            connections: 0,
        }
    }

    /// Points the client at `t`, dropping the connection and challenge if
    /// the origin changes.
    fn set_target(&mut self, t: Target) {
        if let Some(old) = &self.target {
            if !old.same_origin(&t) {
                self.conn = None;
                self.challenge = None;
                self.cookies.clear();
            }
        }
        self.target = Some(t);
    }

    fn set_credentials(&mut self, user: &str, pass: &str) {
        if self.username != user || self.password != pass {
            self.username = user.to_string();
            self.password = pass.to_string();
        }
    }

    /// Forget the session cookies (a new CWMP session starts).
    fn clear_cookies(&mut self) {
        self.cookies.clear();
    }

    /// Drop the connection (the next request opens a new one).
    fn close(&mut self) {
        self.conn = None;
    }

    fn store_cookies(&mut self, headers: &HeaderMap) {
        for v in headers.get_all(SET_COOKIE) {
            let Ok(s) = v.to_str() else { continue };
            let pair = s.split(';').next().unwrap_or("").trim();
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let (name, value) = (name.trim().to_string(), value.trim().to_string());
            let expired = s
                .split(';')
                .any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
            self.cookies.retain(|(n, _)| *n != name);
            if !expired {
                self.cookies.push((name, value));
            }
        }
    }

    fn build(
        &mut self,
        method: &Method,
        body: &Bytes,
        soap: bool,
    ) -> Result<Request<Full<Bytes>>, HttpError> {
        let t = self.target.as_ref().expect("target set before requests");
        let mut b = Request::builder()
            .method(method.clone())
            .uri(t.path.as_str())
            .header(HOST, t.authority.as_str())
            .header(USER_AGENT, USER_AGENT_VALUE)
            .header(CONTENT_LENGTH, body.len());
        if soap && !body.is_empty() {
            b = b
                .header(CONTENT_TYPE, "text/xml; charset=\"utf-8\"")
                .header("SOAPAction", "");
        }
        if !self.cookies.is_empty() {
            let c: Vec<String> = self
                .cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            b = b.header(COOKIE, c.join("; "));
        }
        let path = t.path.clone();
        if let Some(ch) = self.challenge.as_mut() {
            if let Some(h) = authorization(ch, &self.username, &self.password, method, &path, body)
            {
                b = b.header(AUTHORIZATION, h);
            }
        }
        b.body(Full::new(body.clone()))
            .map_err(|e| HttpError::Protocol(e.to_string()))
    }

    /// One request with authentication retries: a 401 with a challenge we
    /// can answer is retried (twice at most, so a `stale=true` works).
    /// `discard` counts the response body instead of keeping it.
    async fn request(
        &mut self,
        method: Method,
        body: Bytes,
        soap: bool,
        discard: bool,
    ) -> Result<Reply, HttpError> {
        let mut auth_tries = 0;
        let mut reconnected = false;
        loop {
            let reused = self.conn.as_ref().is_some_and(|c| !c.is_closed());
            if !reused {
                let t = self.target.clone().expect("target set before requests");
                self.conn = Some(open_connection(&t, self.tls.as_ref(), self.timeout).await?);
                self.connections += 1;
            }
            let req = self.build(&method, &body, soap)?;
            let sender = self.conn.as_mut().expect("connection open");
            let exchange = async {
                sender
                    .ready()
                    .await
                    .map_err(|e| HttpError::Protocol(e.to_string()))?;
                let resp = sender
                    .send_request(req)
                    .await
                    .map_err(|e| HttpError::Protocol(e.to_string()))?;
                let (parts, incoming) = resp.into_parts();
                let (bytes, len) = read_body(incoming, discard).await?;
                Ok::<_, HttpError>((parts, bytes, len))
            };
            let result = match tokio::time::timeout(self.timeout, exchange).await {
                Ok(r) => r,
                Err(_) => {
                    self.conn = None;
                    return Err(HttpError::Timeout);
                }
            };
            let (parts, bytes, len) = match result {
                Ok(x) => x,
                Err(e) => {
                    self.conn = None;
                    // A kept-alive connection the server had closed: retry once.
                    if reused && !reconnected {
                        reconnected = true;
                        continue;
                    }
                    return Err(e);
                }
            };
            self.store_cookies(&parts.headers);
            let close = parts
                .headers
                .get(CONNECTION)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("close"));
            if close {
                self.conn = None;
            }
            if parts.status == StatusCode::UNAUTHORIZED && auth_tries < 2 {
                if let Some(ch) = parse_challenge(&parts.headers) {
                    self.challenge = Some(ch);
                    auth_tries += 1;
                    continue;
                }
            }
            let location = parts
                .headers
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            return Ok(Reply {
                status: parts.status.as_u16(),
                body: bytes,
                len,
                location,
            });
        }
    }
}

async fn read_body(mut body: Incoming, discard: bool) -> Result<(Bytes, u64), HttpError> {
    let mut buf = Vec::new();
    let mut len: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| HttpError::Protocol(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            len += data.len() as u64;
            if discard {
                if len > MAX_DOWNLOAD {
                    return Err(HttpError::Protocol("file too large".into()));
                }
            } else {
                if buf.len() + data.len() > MAX_ACS_BODY {
                    return Err(HttpError::Protocol("response too large".into()));
                }
                buf.extend_from_slice(&data);
            }
        }
    }
    Ok((Bytes::from(buf), len))
}

// ===========================================================================
// One CWMP session over HTTP
// ===========================================================================

/// Access to a device model for the duration of one call (a mutex for the
/// long-running simulator, a plain borrow in load mode).
trait DeviceAccess {
    fn with<R>(&mut self, f: impl FnOnce(&mut CpeDevice) -> R) -> R;
}

impl DeviceAccess for &Mutex<CpeDevice> {
    fn with<R>(&mut self, f: impl FnOnce(&mut CpeDevice) -> R) -> R {
        f(&mut self.lock())
    }
}

impl DeviceAccess for &mut CpeDevice {
    fn with<R>(&mut self, f: impl FnOnce(&mut CpeDevice) -> R) -> R {
        f(self)
    }
}

/// How a session ended.
#[derive(Debug)]
struct SessionReport {
    ok: bool,
    reason: String,
    effects: Vec<Effect>,
    acs_requests: u32,
}

/// Runs one complete session: Inform (following redirects), the device's
/// own requests, the empty POST, and every ACS request until the 204.
async fn drive_session<A: DeviceAccess>(mut dev: A, client: &mut HttpClient) -> SessionReport {
    let now = Utc::now();
    let (mut session, first, url, (user, pass)) = dev.with(|d| {
        let (s, b) = CpeSession::start(d, now);
        (s, b, d.acs_url(), d.acs_credentials())
    });
    match Target::parse(&url) {
        Ok(t) => client.set_target(t),
        Err(e) => {
            let step = dev.with(|d| session.abort(d, format!("bad ACS URL: {e}"), Utc::now()));
            return finish(step, &session);
        }
    }
    client.set_credentials(&user, &pass);
    client.clear_cookies();
    let mut body = Bytes::from(first);
    let mut redirects = 0;
    loop {
        let reply = client
            .request(Method::POST, body.clone(), true, false)
            .await;
        let step = match reply {
            Err(e) => dev.with(|d| session.abort(d, e.to_string(), Utc::now())),
            Ok(r)
                if matches!(r.status, 301 | 302 | 303 | 307 | 308)
                    && !session.informed()
                    && redirects < MAX_REDIRECTS =>
            {
                let next = r
                    .location
                    .as_deref()
                    .and_then(|l| client.target.as_ref().map(|t| t.join(l)));
                match next {
                    Some(Ok(t)) => {
                        redirects += 1;
                        debug!(to = %t.path, "ACS redirect");
                        client.set_target(t);
                        client.clear_cookies();
                        continue;
                    }
                    _ => dev.with(|d| {
                        session.abort(d, "redirect without a usable Location", Utc::now())
                    }),
                }
            }
            Ok(r) => dev.with(|d| session.on_reply(d, r.status, &r.body, Utc::now())),
        };
        match step {
            SessionStep::Post(b) => body = Bytes::from(b),
            other => return finish(other, &session),
        }
    }
}

fn finish(step: SessionStep, session: &CpeSession) -> SessionReport {
    let acs_requests = session.acs_requests_handled();
    match step {
        SessionStep::Done(effects) => SessionReport {
            ok: true,
            reason: String::new(),
            effects,
            acs_requests,
        },
        SessionStep::Failed { reason, effects } => SessionReport {
            ok: false,
            reason,
            effects,
            acs_requests,
        },
        SessionStep::Post(_) => unreachable!("finish is called on terminal steps"),
    }
}

// ===========================================================================
// File transfers
// ===========================================================================

/// Carries out a Download (GET, size check) or Upload (PUT) for real.
async fn perform_transfer(
    job: &TransferJob,
    tls: Option<TlsConnector>,
    timeout: Duration,
) -> TransferOutcome {
    let start = Utc::now();
    let download = job.kind != TransferKind::Upload;
    let fail = |code: u32, msg: String| TransferOutcome::failure(code, msg, start, Utc::now());
    let mut target = match Target::parse(&job.url) {
        Ok(t) => t,
        Err(e) => return fail(9013, e.to_string()),
    };
    if target.https && tls.is_none() {
        return fail(9013, "https is not available".into());
    }
    let mut client = HttpClient::new(tls, timeout);
    client.set_credentials(&job.username, &job.password);
    let (method, body) = if download {
        (Method::GET, Bytes::new())
    } else {
        (Method::PUT, Bytes::from(job.body.clone()))
    };
    let mut redirects = 0;
    loop {
        client.set_target(target.clone());
        let reply = client
            .request(method.clone(), body.clone(), false, true)
            .await;
        let r = match reply {
            Ok(r) => r,
            Err(HttpError::Connect(e)) => {
                return fail(9015, format!("unable to contact file server: {e}"))
            }
            Err(HttpError::Timeout) if download => {
                return fail(9017, "unable to complete download: timeout".into())
            }
            Err(e) if download => return fail(9017, format!("unable to complete download: {e}")),
            Err(e) => return fail(9011, format!("upload failure: {e}")),
        };
        match r.status {
            200..=299 => {
                if download && job.file_size != 0 && r.len != job.file_size as u64 {
                    return fail(
                        9010,
                        format!(
                            "file size {} differs from FileSize {}",
                            r.len, job.file_size
                        ),
                    );
                }
                return TransferOutcome::success(start, Utc::now());
            }
            301 | 302 | 303 | 307 | 308 if redirects < MAX_REDIRECTS => {
                match r.location.as_deref().map(|l| target.join(l)) {
                    Some(Ok(t)) => {
                        redirects += 1;
                        target = t;
                    }
                    _ => return fail(if download { 9010 } else { 9011 }, "bad redirect".into()),
                }
            }
            401 => return fail(9012, "file server authentication failure".into()),
            403 | 404 | 410 if download => {
                return fail(9016, format!("unable to access file: HTTP {}", r.status))
            }
            s if download => return fail(9010, format!("download failure: HTTP {s}")),
            s => return fail(9011, format!("upload failure: HTTP {s}")),
        }
    }
}

// ===========================================================================
// The long-running simulator
// ===========================================================================

#[derive(Default)]
struct Stats {
    sessions_ok: AtomicU64,
    sessions_failed: AtomicU64,
    acs_requests: AtomicU64,
    crs_http: AtomicU64,
    crs_udp: AtomicU64,
    crs_rejected: AtomicU64,
    transfers_ok: AtomicU64,
    transfers_failed: AtomicU64,
    reboots: AtomicU64,
}

fn bump(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

struct RunCtx {
    args: RunArgs,
    tls: Option<TlsConnector>,
    timeout: Duration,
    auth: acs::auth::Authenticator,
    stats: Stats,
    shutdown: watch::Receiver<bool>,
}

/// Connection-request bookkeeping of one device.
#[derive(Default)]
struct CrState {
    accepted: VecDeque<Instant>,
    last_udp_ts: u64,
    last_udp_id: Option<u32>,
}

struct SimDevice {
    serial: String,
    model: Mutex<CpeDevice>,
    notify: Notify,
    /// Rebooting: CRs get 503, no sessions.
    offline: AtomicBool,
    /// A session is in progress.
    in_session: AtomicBool,
    cr: Mutex<CrState>,
    cr_path: String,
}

impl SimDevice {
    /// Rate limit: true if a CR may be accepted now.
    fn cr_allowed(&self, limit: usize) -> bool {
        let mut st = self.cr.lock();
        let now = Instant::now();
        while st
            .accepted
            .front()
            .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(60))
        {
            st.accepted.pop_front();
        }
        if st.accepted.len() >= limit {
            return false;
        }
        st.accepted.push_back(now);
        true
    }

    /// Whether a CR must be refused with 503 right now.
    fn cr_refused(&self, args: &RunArgs) -> bool {
        self.offline.load(Ordering::Relaxed)
            || (args.cr_busy_503 && self.in_session.load(Ordering::Relaxed))
            || !self.cr_allowed(args.cr_rate_limit)
    }

    fn accept_cr(&self) {
        self.model.lock().connection_request();
        self.notify.notify_one();
    }
}

fn empty_response(status: StatusCode) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
    r
}

/// The device's HTTP Connection Request endpoint (TR-069 §3.2.2): Digest
/// with the ConnectionRequestUsername/Password, then 200 and a session
/// with `6 CONNECTION REQUEST`; 503 when rate-limited or rebooting.
fn handle_cr(dev: &SimDevice, ctx: &RunCtx, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.uri().path() != dev.cr_path {
        return empty_response(StatusCode::NOT_FOUND);
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return empty_response(StatusCode::METHOD_NOT_ALLOWED);
    }
    let challenge = |stale: bool| {
        let mut r = empty_response(StatusCode::UNAUTHORIZED);
        for c in ctx.auth.challenge(stale) {
            if let Ok(v) = HeaderValue::from_str(&c) {
                r.headers_mut().append(WWW_AUTHENTICATE, v);
            }
        }
        r
    };
    let Some(header) = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return challenge(false);
    };
    let (user, pass) = dev.model.lock().cr_credentials();
    let uri = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let verdict = ctx
        .auth
        .verify_with_uri(header, req.method().as_str(), uri, false, |u| {
            (u == user).then(|| pass.clone())
        });
    match verdict {
        acs::auth::AuthResult::Ok { .. } => {
            if dev.cr_refused(&ctx.args) {
                bump(&ctx.stats.crs_rejected);
                return empty_response(StatusCode::SERVICE_UNAVAILABLE);
            }
            bump(&ctx.stats.crs_http);
            debug!(serial = %dev.serial, "HTTP connection request accepted");
            dev.accept_cr();
            empty_response(StatusCode::OK)
        }
        acs::auth::AuthResult::Stale => challenge(true),
        _ => {
            bump(&ctx.stats.crs_rejected);
            challenge(false)
        }
    }
}

async fn serve_cr_http(listener: TcpListener, dev: Arc<SimDevice>, ctx: Arc<RunCtx>) {
    let mut shutdown = ctx.shutdown.clone();
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let (dev, ctx) = (dev.clone(), ctx.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let resp = handle_cr(&dev, &ctx, &req);
                async move { Ok::<_, Infallible>(resp) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

use acs::connreq::{parse_udp_connection_request as parse_udp_cr, UdpConnectionRequest as UdpCr};

/// Annex G checks: username, HMAC-SHA1 signature (either hex case), no
/// replay (`id` differs from the last accepted, `ts` not older).
fn udp_cr_valid(cr: &UdpCr, user: &str, pass: &str, st: &CrState) -> bool {
    let expected =
        acs::connreq::udp_connection_request_signature(cr.ts, cr.id, &cr.un, &cr.cn, pass, false);
    cr.un == user
        && cr.sig.eq_ignore_ascii_case(&expected)
        && st.last_udp_id != Some(cr.id)
        && cr.ts >= st.last_udp_ts
}

async fn serve_cr_udp(sock: UdpSocket, dev: Arc<SimDevice>, ctx: Arc<RunCtx>) {
    let mut shutdown = ctx.shutdown.clone();
    let mut buf = vec![0u8; 2048];
    loop {
        let n = tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok((n, _)) => n,
                Err(_) => continue,
            },
            _ = shutdown.changed() => break,
        };
        let Some(cr) = parse_udp_cr(&buf[..n]) else {
            continue;
        };
        let (user, pass) = dev.model.lock().cr_credentials();
        let valid = {
            let mut st = dev.cr.lock();
            let ok = udp_cr_valid(&cr, &user, &pass, &st);
            if ok {
                st.last_udp_id = Some(cr.id);
                st.last_udp_ts = cr.ts;
            }
            ok
        };
        if !valid {
            // Duplicated copies of an accepted message land here too.
            continue;
        }
        if dev.cr_refused(&ctx.args) {
            bump(&ctx.stats.crs_rejected);
            continue;
        }
        bump(&ctx.stats.crs_udp);
        debug!(serial = %dev.serial, "UDP connection request accepted");
        dev.accept_cr();
    }
}

/// Timers a device task keeps.
#[derive(Debug, Clone, PartialEq)]
enum Timer {
    Reboot(String),
    FactoryReset,
    Transfer(u64),
    Scheduled(String),
    DuChange(u64),
}

fn instant_of(at: chrono::DateTime<Utc>) -> Instant {
    let delta = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    Instant::now() + delta
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// The life of one device: sessions when events are pending, timers, retries.
/// Returns whether its last session succeeded (for `--once`).
async fn device_main(dev: Arc<SimDevice>, ctx: Arc<RunCtx>, start_delay: Duration) -> bool {
    let mut shutdown = ctx.shutdown.clone();
    if !start_delay.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(start_delay) => {}
            _ = shutdown.changed() => return false,
        }
    }
    let mut client = HttpClient::new(ctx.tls.clone(), ctx.timeout);
    let mut timers: Vec<(Instant, Timer)> = Vec::new();
    let mut next_periodic = dev
        .model
        .lock()
        .next_periodic_inform(Utc::now())
        .map(instant_of);
    let mut backoff_until: Option<Instant> = None;
    let mut offline_until: Option<Instant> = None;
    let mut sessions: u64 = 0;
    let mut last_ok = false;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let now = Instant::now();
        // Fire due timers.
        if offline_until.is_some_and(|t| t <= now) {
            offline_until = None;
        }
        let mut i = 0;
        while i < timers.len() {
            if timers[i].0 > now
                || (offline_until.is_some()
                    && !matches!(timers[i].1, Timer::Reboot(_) | Timer::FactoryReset))
            {
                i += 1;
                continue;
            }
            let (_, timer) = timers.swap_remove(i);
            let t = Utc::now();
            match timer {
                Timer::Reboot(ck) => {
                    dev.model.lock().reboot(t, Some(&ck));
                    dev.offline.store(false, Ordering::Relaxed);
                    offline_until = None;
                    next_periodic = dev.model.lock().next_periodic_inform(t).map(instant_of);
                    debug!("rebooted");
                }
                Timer::FactoryReset => {
                    dev.model.lock().factory_reset(t);
                    dev.offline.store(false, Ordering::Relaxed);
                    offline_until = None;
                    client.challenge = None;
                    next_periodic = dev.model.lock().next_periodic_inform(t).map(instant_of);
                    debug!("factory reset done");
                }
                Timer::Scheduled(ck) => dev.model.lock().scheduled_inform(&ck),
                Timer::DuChange(id) => dev.model.lock().apply_du_change(id, t),
                Timer::Transfer(id) => {
                    let job = dev.model.lock().begin_transfer(id, t);
                    if let Some(job) = job {
                        let (dev, ctx) = (dev.clone(), ctx.clone());
                        let span = tracing::Span::current();
                        tokio::spawn(
                            async move {
                                debug!(url = %job.url, kind = ?job.kind, "transfer started");
                                let outcome = perform_transfer(&job, ctx.tls.clone(), ctx.timeout).await;
                                if outcome.fault_code == 0 {
                                    bump(&ctx.stats.transfers_ok);
                                    debug!(url = %job.url, "transfer complete");
                                } else {
                                    bump(&ctx.stats.transfers_failed);
                                    warn!(url = %job.url, code = outcome.fault_code, error = %outcome.fault_string, "transfer failed");
                                }
                                dev.model.lock().complete_transfer(job.id, outcome, Utc::now());
                                dev.notify.notify_one();
                            }
                            .instrument(span),
                        );
                    }
                }
            }
        }
        if next_periodic.is_some_and(|t| t <= now) && offline_until.is_none() {
            let t = Utc::now();
            let mut m = dev.model.lock();
            m.periodic_inform();
            next_periodic = m.next_periodic_inform(t).map(instant_of);
        }
        if backoff_until.is_some_and(|t| t <= now) {
            backoff_until = None;
        }

        let wants =
            offline_until.is_none() && backoff_until.is_none() && dev.model.lock().wants_session();
        if wants {
            sessions += 1;
            let span = tracing::debug_span!("session", n = sessions);
            dev.in_session.store(true, Ordering::Relaxed);
            let report = drive_session(&dev.model, &mut client)
                .instrument(span)
                .await;
            dev.in_session.store(false, Ordering::Relaxed);
            client.close();
            bump_report(&ctx.stats, &report);
            last_ok = report.ok;
            if report.ok {
                debug!(acs_requests = report.acs_requests, "session done");
            } else {
                let delay = dev.model.lock().retry_delay_secs() * ctx.args.retry_scale;
                warn!(reason = %report.reason, retry_in = format!("{delay:.1}s"), "session failed");
                backoff_until = Some(Instant::now() + secs(delay));
            }
            if ctx.args.once {
                break;
            }
            for e in report.effects {
                let now = Instant::now();
                match e {
                    Effect::Reboot { command_key } => {
                        bump(&ctx.stats.reboots);
                        dev.offline.store(true, Ordering::Relaxed);
                        let at = now + secs(ctx.args.reboot_delay);
                        offline_until = Some(at);
                        timers.push((at, Timer::Reboot(command_key)));
                    }
                    Effect::FactoryReset => {
                        bump(&ctx.stats.reboots);
                        dev.offline.store(true, Ordering::Relaxed);
                        let at = now + secs(ctx.args.reboot_delay);
                        offline_until = Some(at);
                        timers.push((at, Timer::FactoryReset));
                    }
                    Effect::Transfer { id, delay_seconds } => timers.push((
                        now + Duration::from_secs(delay_seconds as u64),
                        Timer::Transfer(id),
                    )),
                    Effect::ScheduleInform {
                        delay_seconds,
                        command_key,
                    } => timers.push((
                        now + Duration::from_secs(delay_seconds as u64),
                        Timer::Scheduled(command_key),
                    )),
                    Effect::ChangeDuState { id } => {
                        timers.push((now + Duration::from_millis(200), Timer::DuChange(id)))
                    }
                    Effect::PeriodicInformChanged => {
                        next_periodic = dev
                            .model
                            .lock()
                            .next_periodic_inform(Utc::now())
                            .map(instant_of);
                    }
                    Effect::AcsUrlChanged { url } => {
                        debug!(%url, "ACS URL changed");
                        client.challenge = None;
                    }
                }
            }
            continue;
        }

        // Sleep until something is due, a CR/transfer wakes us, or shutdown.
        let next = timers
            .iter()
            .map(|(t, _)| *t)
            .chain(next_periodic)
            .chain(backoff_until)
            .chain(offline_until)
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()) => {}
            _ = dev.notify.notified() => {
                // A Connection Request (or finished transfer) is a fresh
                // reason to call: it does not wait for the retry back-off.
                backoff_until = None;
            }
            _ = shutdown.changed() => break,
        }
    }
    last_ok
}

fn bump_report(stats: &Stats, r: &SessionReport) {
    if r.ok {
        bump(&stats.sessions_ok);
    } else {
        bump(&stats.sessions_failed);
    }
    stats
        .acs_requests
        .fetch_add(r.acs_requests as u64, Ordering::Relaxed);
}

/// Raise the soft open-files limit to the hard one: every device holds a
/// TCP listener and a UDP socket.
#[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
fn raise_fd_limit() -> u64 {
    #[cfg(unix)]
    // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
            if r.rlim_cur < r.rlim_max {
                let want = libc::rlimit {
                    rlim_cur: r.rlim_max,
                    rlim_max: r.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                    return want.rlim_cur as u64;
                }
            }
            return r.rlim_cur as u64;
        }
    }
    u64::MAX
}

/// `keelson sim`: start the devices and run until `--duration`, `--once`
/// completion, or Ctrl-C.
async fn run_devices(args: RunArgs) -> anyhow::Result<()> {
    validate_identity(&args.identity)?;
    Target::parse(&args.acs_url).context("--acs-url")?;
    if args.devices == 0 {
        bail!("--devices must be at least 1");
    }
    if args.periodic_interval == 0 {
        bail!("--periodic-interval must be at least 1");
    }
    let fds = raise_fd_limit();
    if (args.devices as u64).saturating_mul(2) + 64 > fds {
        warn!(
            devices = args.devices,
            open_files_limit = fds,
            "the open-files limit is probably too low for this many devices"
        );
    }
    let tls = Some(tls_connector(args.identity.ca_file.as_deref(), true)?);
    let (stop_tx, stop_rx) = watch::channel(false);
    let auth = acs::auth::Authenticator::new(
        acs::auth::AuthConfig {
            realm: CR_REALM.into(),
            allow_basic_over_tls: false,
            ..acs::auth::AuthConfig::default()
        },
        rand::random(),
    );
    let ctx = Arc::new(RunCtx {
        timeout: secs(args.identity.http_timeout),
        args: args.clone(),
        tls,
        auth,
        stats: Stats::default(),
        shutdown: stop_rx,
    });
    let report_host = if args.cr_bind.is_unspecified() {
        IpAddr::from([127, 0, 0, 1])
    } else {
        args.cr_bind
    };
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.devices {
        let n = args.identity.serial_start + i as u64;
        let id = identity_of(&args.identity, n);
        let mut settings = base_settings(&args.identity, &args.acs_url, &id, n);
        settings.cr_username = expand(&args.cr_username, &id, n);
        settings.cr_password = expand(&args.cr_password, &id, n);
        settings.periodic_inform_interval = args.periodic_interval;
        let tcp = TcpListener::bind(SocketAddr::new(args.cr_bind, 0))
            .await
            .with_context(|| {
                format!("binding a connection-request listener on {}", args.cr_bind)
            })?;
        let udp = UdpSocket::bind(SocketAddr::new(args.cr_bind, 0))
            .await
            .with_context(|| {
                format!(
                    "binding a UDP connection-request socket on {}",
                    args.cr_bind
                )
            })?;
        let cr_path = format!("/cr/{:016x}", rand::random::<u64>());
        let cr_url = format!(
            "http://{}{}",
            SocketAddr::new(report_host, tcp.local_addr()?.port()),
            cr_path
        );
        let udp_addr = SocketAddr::new(report_host, udp.local_addr()?.port()).to_string();
        let serial = id.serial_number.clone();
        let mut model = CpeDevice::new(id, settings, Utc::now());
        model.set_connection_request_endpoints(&cr_url, &udp_addr);
        debug!(%serial, %cr_url, udp = %udp_addr, "device started");
        let dev = Arc::new(SimDevice {
            serial: serial.clone(),
            model: Mutex::new(model),
            notify: Notify::new(),
            offline: AtomicBool::new(false),
            in_session: AtomicBool::new(false),
            cr: Mutex::new(CrState::default()),
            cr_path,
        });
        let span = tracing::info_span!("device", %serial);
        tokio::spawn(serve_cr_http(tcp, dev.clone(), ctx.clone()).instrument(span.clone()));
        tokio::spawn(serve_cr_udp(udp, dev.clone(), ctx.clone()).instrument(span.clone()));
        let delay = if args.devices > 1 {
            secs(args.start_spread * i as f64 / args.devices as f64)
        } else {
            Duration::ZERO
        };
        tasks.spawn(device_main(dev, ctx.clone(), delay).instrument(span));
    }
    info!(devices = args.devices, acs = %args.acs_url, "simulated devices started");

    let deadline = args.duration.map(|d| Instant::now() + secs(d));
    let mut all_ok = true;
    let mut finished = 0usize;
    loop {
        let until = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = tasks.join_next() => match r {
                Some(Ok(ok)) => { finished += 1; all_ok &= ok; }
                Some(Err(e)) => { finished += 1; all_ok = false; warn!(error = %e, "device task failed"); }
                None => break,
            },
            _ = until => { info!("duration reached"); break; }
            _ = tokio::signal::ctrl_c() => { info!("interrupted"); break; }
        }
    }
    let _ = stop_tx.send(true);
    let drain = async {
        while let Some(r) = tasks.join_next().await {
            finished += 1;
            if !matches!(r, Ok(true)) {
                all_ok = false;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
    tasks.abort_all();
    let s = &ctx.stats;
    let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
    info!(
        devices = args.devices,
        elapsed = format!("{:.1}s", started.elapsed().as_secs_f64()),
        sessions_ok = ld(&s.sessions_ok),
        sessions_failed = ld(&s.sessions_failed),
        acs_requests = ld(&s.acs_requests),
        crs_http = ld(&s.crs_http),
        crs_udp = ld(&s.crs_udp),
        crs_rejected = ld(&s.crs_rejected),
        transfers_ok = ld(&s.transfers_ok),
        transfers_failed = ld(&s.transfers_failed),
        reboots = ld(&s.reboots),
        "simulation finished"
    );
    let _ = finished;
    if args.once && !all_ok {
        bail!(
            "{} of {} devices failed their session",
            ld(&s.sessions_failed),
            args.devices
        );
    }
    Ok(())
}

// ===========================================================================
// keelson sim load
// ===========================================================================

/// Latency percentiles of complete sessions, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LatencySummary {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl LatencySummary {
    /// From per-session durations in microseconds (any order).
    fn from_micros(mut v: Vec<u64>) -> Self {
        if v.is_empty() {
            return LatencySummary::default();
        }
        v.sort_unstable();
        let pick = |q: f64| {
            let i = ((v.len() - 1) as f64 * q).round() as usize;
            v[i.min(v.len() - 1)] as f64 / 1000.0
        };
        LatencySummary {
            p50: pick(0.50),
            p90: pick(0.90),
            p99: pick(0.99),
            max: *v.last().unwrap_or(&0) as f64 / 1000.0,
            mean: v.iter().sum::<u64>() as f64 / v.len() as f64 / 1000.0,
        }
    }
}

/// Result of `keelson sim load`.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub acs_url: String,
    pub devices: usize,
    pub concurrency: usize,
    pub tls_handshake_per_session: bool,
    pub bootstrap: bool,
    pub elapsed_secs: f64,
    /// Sessions that ended with the ACS's 204.
    pub sessions_ok: u64,
    pub sessions_failed: u64,
    /// Complete sessions per second.
    pub sessions_per_sec: f64,
    /// ACS requests (GPV, SPV, …) the devices answered.
    pub acs_requests: u64,
    /// TCP connections opened.
    pub connections: u64,
    /// Latency of complete sessions (Inform to final 204).
    pub latency_ms: LatencySummary,
    /// Failed sessions by reason.
    pub failures: BTreeMap<String, u64>,
}

impl LoadReport {
    /// The report as an aligned text table.
    pub fn table(&self) -> String {
        let mut rows: Vec<(String, String)> = vec![
            ("ACS".into(), self.acs_url.clone()),
            ("devices".into(), self.devices.to_string()),
            ("concurrency".into(), self.concurrency.to_string()),
            ("elapsed".into(), format!("{:.2} s", self.elapsed_secs)),
            ("sessions ok".into(), self.sessions_ok.to_string()),
            ("sessions failed".into(), self.sessions_failed.to_string()),
            ("sessions/s".into(), format!("{:.1}", self.sessions_per_sec)),
            (
                "ACS requests answered".into(),
                self.acs_requests.to_string(),
            ),
            ("connections opened".into(), self.connections.to_string()),
            (
                "latency p50".into(),
                format!("{:.2} ms", self.latency_ms.p50),
            ),
            (
                "latency p90".into(),
                format!("{:.2} ms", self.latency_ms.p90),
            ),
            (
                "latency p99".into(),
                format!("{:.2} ms", self.latency_ms.p99),
            ),
            (
                "latency max".into(),
                format!("{:.2} ms", self.latency_ms.max),
            ),
            (
                "latency mean".into(),
                format!("{:.2} ms", self.latency_ms.mean),
            ),
        ];
        for (reason, n) in &self.failures {
            rows.push((format!("failure: {reason}"), n.to_string()));
        }
        let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (k, v) in rows {
            out.push_str(&format!("{k:<w$}  {v}\n"));
        }
        out
    }
}

struct LoadDevice {
    model: CpeDevice,
    sessions: u64,
}

#[derive(Default)]
struct WorkerResult {
    ok: u64,
    failed: u64,
    acs_requests: u64,
    connections: u64,
    latencies_us: Vec<u64>,
    failures: BTreeMap<String, u64>,
}

struct LoadCtx {
    args: LoadArgs,
    devices: Vec<Arc<tokio::sync::Mutex<LoadDevice>>>,
    next_device: AtomicU64,
    started: AtomicU64,
    total: Option<u64>,
    deadline: Option<Instant>,
    tls: Option<TlsConnector>,
    timeout: Duration,
}

/// Post-session work done on the spot (load mode has no timers): reboots
/// and scheduled informs are immediate, transfers succeed without I/O.
fn apply_effects_instantly(d: &mut CpeDevice, effects: Vec<Effect>) {
    let now = Utc::now();
    for e in effects {
        match e {
            Effect::Reboot { command_key } => d.reboot(now, Some(&command_key)),
            Effect::FactoryReset => d.factory_reset(now),
            Effect::Transfer { id, .. } => {
                if d.begin_transfer(id, now).is_some() {
                    d.complete_transfer(id, TransferOutcome::success(now, now), now);
                }
            }
            Effect::ScheduleInform { command_key, .. } => d.scheduled_inform(&command_key),
            Effect::ChangeDuState { id } => d.apply_du_change(id, now),
            Effect::PeriodicInformChanged | Effect::AcsUrlChanged { .. } => {}
        }
    }
}

fn failure_key(reason: &str) -> String {
    reason.chars().take(80).collect()
}

async fn load_worker(ctx: Arc<LoadCtx>) -> WorkerResult {
    let mut res = WorkerResult::default();
    let mut client = HttpClient::new(ctx.tls.clone(), ctx.timeout);
    let https = Target::parse(&ctx.args.acs_url).is_ok_and(|t| t.https);
    let n = ctx.devices.len() as u64;
    loop {
        if ctx.deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if let Some(total) = ctx.total {
            if ctx.started.fetch_add(1, Ordering::Relaxed) >= total {
                break;
            }
        }
        // Claim a device no other worker is using.
        let mut guard = loop {
            let i = ctx.next_device.fetch_add(1, Ordering::Relaxed) % n;
            if let Ok(g) = ctx.devices[i as usize].clone().try_lock_owned() {
                break g;
            }
            tokio::task::yield_now().await;
        };
        let ld = &mut *guard;
        if ld.sessions > 0 {
            ld.model.periodic_inform();
        }
        if ctx.args.bootstrap {
            ld.model.add_event("0 BOOTSTRAP", "");
            ld.model.add_event("1 BOOT", "");
        }
        ld.sessions += 1;
        let t0 = Instant::now();
        let report = drive_session(&mut ld.model, &mut client).await;
        let elapsed = t0.elapsed();
        res.acs_requests += report.acs_requests as u64;
        if report.ok {
            res.ok += 1;
            res.latencies_us.push(elapsed.as_micros() as u64);
        } else {
            res.failed += 1;
            *res.failures.entry(failure_key(&report.reason)).or_default() += 1;
            client.close();
        }
        apply_effects_instantly(&mut ld.model, report.effects);
        drop(guard);
        if https && ctx.args.tls_handshake_per_session {
            client.close();
        }
    }
    res.connections = client.connections;
    res
}

/// `keelson sim load`: `concurrency` workers run complete sessions back to
/// back over `devices` distinct devices until `--duration` or `--sessions`.
pub async fn run_load(args: LoadArgs) -> anyhow::Result<LoadReport> {
    validate_identity(&args.identity)?;
    let target = Target::parse(&args.acs_url).context("--acs-url")?;
    if args.devices == 0 || args.concurrency == 0 {
        bail!("--devices and --concurrency must be at least 1");
    }
    let concurrency = args.concurrency.min(args.devices);
    let tls = if target.https {
        Some(tls_connector(
            args.identity.ca_file.as_deref(),
            !args.tls_handshake_per_session,
        )?)
    } else {
        None
    };
    let now = Utc::now();
    let devices = (0..args.devices)
        .map(|i| {
            let n = args.identity.serial_start + i as u64;
            let id = identity_of(&args.identity, n);
            let settings = base_settings(&args.identity, &args.acs_url, &id, n);
            let mut model = CpeDevice::new(id, settings, now);
            model.set_connection_request_endpoints("", "");
            Arc::new(tokio::sync::Mutex::new(LoadDevice { model, sessions: 0 }))
        })
        .collect();
    let duration = match (args.duration, args.sessions) {
        (Some(d), _) => Some(d),
        (None, Some(_)) => None,
        (None, None) => Some(10.0),
    };
    let ctx = Arc::new(LoadCtx {
        devices,
        next_device: AtomicU64::new(0),
        started: AtomicU64::new(0),
        total: args.sessions,
        deadline: duration.map(|d| Instant::now() + secs(d)),
        tls,
        timeout: secs(args.identity.http_timeout),
        args: args.clone(),
    });
    info!(acs = %args.acs_url, devices = args.devices, concurrency, "load test started");
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        set.spawn(load_worker(ctx.clone()));
    }
    let mut total = WorkerResult::default();
    let mut latencies = Vec::new();
    while let Some(r) = set.join_next().await {
        let r = r.context("load worker panicked")?;
        total.ok += r.ok;
        total.failed += r.failed;
        total.acs_requests += r.acs_requests;
        total.connections += r.connections;
        latencies.extend(r.latencies_us);
        for (k, v) in r.failures {
            *total.failures.entry(k).or_default() += v;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok(LoadReport {
        acs_url: args.acs_url,
        devices: args.devices,
        concurrency,
        tls_handshake_per_session: args.tls_handshake_per_session,
        bootstrap: args.bootstrap,
        elapsed_secs: elapsed,
        sessions_ok: total.ok,
        sessions_failed: total.failed,
        sessions_per_sec: if elapsed > 0.0 {
            total.ok as f64 / elapsed
        } else {
            0.0
        },
        acs_requests: total.acs_requests,
        connections: total.connections,
        latency_ms: LatencySummary::from_micros(latencies),
        failures: total.failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_target_parsing() {
        let t = Target::parse("http://127.0.0.1:7547/acs?x=1").unwrap();
        assert_eq!(
            (t.https, t.host.as_str(), t.port, t.path.as_str()),
            (false, "127.0.0.1", 7547, "/acs?x=1")
        );
        let t = Target::parse("https://[::1]/").unwrap();
        assert_eq!(
            (t.https, t.host.as_str(), t.port, t.authority.as_str()),
            (true, "::1", 443, "[::1]")
        );
        assert_eq!(Target::parse("http://h").unwrap().path, "/");
        assert!(Target::parse("ftp://h/x").is_err());
        assert!(Target::parse("http://u:p@h/x").is_err());
        let j = t.join("/other").unwrap();
        assert_eq!(j.path, "/other");
        assert_eq!(
            Target::parse("http://a/b/c")
                .unwrap()
                .join("d")
                .unwrap()
                .path,
            "/b/d"
        );
        assert_eq!(t.join("http://x:1/y").unwrap().host, "x");
    }

    #[test]
    fn sim_udp_cr_validation() {
        // Checklist §5.2 test vector.
        let msg = "GET http://203.0.113.5:50123?ts=1700000000&id=1234567&un=cruser&cn=5e3f2a9c1b7d4e60&sig=1E69CBDDF7C19D8DA353B4CABA42D8E168A00FBE HTTP/1.1\r\nHost: 203.0.113.5:50123\r\n\r\n";
        let cr = parse_udp_cr(msg.as_bytes()).unwrap();
        assert_eq!(cr.ts, 1_700_000_000);
        assert_eq!(cr.id, 1_234_567);
        let mut st = CrState::default();
        assert!(udp_cr_valid(&cr, "cruser", "crpass", &st));
        assert!(!udp_cr_valid(&cr, "cruser", "wrong", &st));
        assert!(!udp_cr_valid(&cr, "other", "crpass", &st));
        st.last_udp_id = Some(1_234_567);
        assert!(!udp_cr_valid(&cr, "cruser", "crpass", &st), "duplicate id");
        st.last_udp_id = Some(1);
        st.last_udp_ts = 1_700_000_001;
        assert!(!udp_cr_valid(&cr, "cruser", "crpass", &st), "stale ts");
        assert!(parse_udp_cr(b"POST http://x?ts=1 HTTP/1.1\r\n\r\n").is_none());
        assert!(parse_udp_cr(b"GET http://x?ts=1&id=2 HTTP/1.1\r\n\r\n").is_none());
    }

    #[test]
    fn sim_latency_summary() {
        let l = LatencySummary::from_micros((1..=100).map(|i| i * 1000).collect());
        assert_eq!(l.p50, 51.0);
        assert_eq!(l.p90, 90.0);
        assert_eq!(l.p99, 99.0);
        assert_eq!(l.max, 100.0);
        assert!((l.mean - 50.5).abs() < 1e-9);
        assert_eq!(
            LatencySummary::from_micros(vec![]),
            LatencySummary::default()
        );
    }

    #[test]
    fn sim_default_username_is_percent_encoded() {
        let args = IdentityArgs {
            oui: "02cafe".into(),
            product_class: "HGW-1000".into(),
            serial_prefix: "SN".into(),
            serial_start: 1,
            username: None,
            password: "pw-{serial}".into(),
            boolean_digits: false,
            cwmp_version: "1.0".into(),
            ca_file: None,
            http_timeout: 30.0,
        };
        let id = identity_of(&args, 7);
        assert_eq!(id.serial_number, "SN000007");
        let s = base_settings(&args, "http://acs/", &id, 7);
        assert_eq!(s.username, "02CAFE-HGW%2D1000-SN000007");
        assert_eq!(s.password, "pw-SN000007");
        assert_eq!(s.cwmp_ns, CWMP_NS_1_0);
        assert_eq!(s.supported_cwmp_versions, None);
    }

    /// A server answering every request with `status` and `len` bytes.
    async fn file_server(status: u16, len: usize) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let svc =
                        hyper::service::service_fn(move |_req: Request<Incoming>| async move {
                            let mut r = Response::new(Full::new(Bytes::from(vec![b'x'; len])));
                            *r.status_mut() = StatusCode::from_u16(status).unwrap();
                            Ok::<_, Infallible>(r)
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        port
    }

    fn job(kind: TransferKind, url: String, file_size: u32) -> TransferJob {
        TransferJob {
            id: 1,
            kind,
            file_type: "1 Firmware Upgrade Image".into(),
            url,
            username: String::new(),
            password: String::new(),
            file_size,
            body: b"payload".to_vec(),
        }
    }

    #[tokio::test]
    async fn sim_transfer_outcomes_map_to_fault_codes() {
        let tls = Some(tls_connector(None, true).unwrap());
        let t = Duration::from_secs(5);
        let run = |kind, status: u16, len: usize, size: u32| {
            let tls = tls.clone();
            async move {
                let port = file_server(status, len).await;
                let j = job(kind, format!("http://127.0.0.1:{port}/f/fw-1.2.bin"), size);
                perform_transfer(&j, tls, t).await.fault_code
            }
        };
        assert_eq!(run(TransferKind::Download, 200, 10, 10).await, 0);
        assert_eq!(
            run(TransferKind::Download, 200, 10, 0).await,
            0,
            "FileSize 0 = unknown"
        );
        assert_eq!(
            run(TransferKind::Download, 200, 10, 11).await,
            9010,
            "size mismatch"
        );
        assert_eq!(run(TransferKind::Download, 404, 0, 0).await, 9016);
        assert_eq!(run(TransferKind::Download, 500, 0, 0).await, 9010);
        assert_eq!(run(TransferKind::Download, 401, 0, 0).await, 9012);
        assert_eq!(run(TransferKind::Upload, 204, 0, 0).await, 0);
        assert_eq!(run(TransferKind::Upload, 500, 0, 0).await, 9011);
        // Nothing listens on a port we just released.
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap().port()
        };
        let j = job(
            TransferKind::Download,
            format!("http://127.0.0.1:{port}/x"),
            0,
        );
        assert_eq!(perform_transfer(&j, tls.clone(), t).await.fault_code, 9015);
        let j = job(TransferKind::Download, "ftp://127.0.0.1/x".into(), 0);
        assert_eq!(perform_transfer(&j, tls.clone(), t).await.fault_code, 9013);
    }

    #[test]
    fn sim_cookie_jar() {
        let mut c = HttpClient::new(None, Duration::from_secs(1));
        let mut h = HeaderMap::new();
        h.append(SET_COOKIE, HeaderValue::from_static("cwmpsid=abc; Path=/"));
        h.append(SET_COOKIE, HeaderValue::from_static("lb=n1"));
        c.store_cookies(&h);
        assert_eq!(
            c.cookies,
            vec![("cwmpsid".into(), "abc".into()), ("lb".into(), "n1".into())]
        );
        let mut h = HeaderMap::new();
        h.append(SET_COOKIE, HeaderValue::from_static("cwmpsid=def"));
        h.append(SET_COOKIE, HeaderValue::from_static("lb=x; Max-Age=0"));
        c.store_cookies(&h);
        assert_eq!(c.cookies, vec![("cwmpsid".into(), "def".into())]);
    }
}
