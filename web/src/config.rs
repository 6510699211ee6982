//! Keelson's one typed configuration: defaults, then a TOML file, then `KEELSON_*` environment
//! variables, then command-line flags (each layer overrides the previous one).
//!
//! With no configuration at all Keelson runs on an embedded SQLite database in `./keelson-data`,
//! CWMP on HTTP :7547 and HTTPS :7548, and the northbound API on 127.0.0.1:7557.

use std::net::SocketAddr;
use std::path::PathBuf;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory for the embedded database, the TLS certificate and stored files.
    pub data_dir: PathBuf,
    /// `postgres://…` selects PostgreSQL; empty means SQLite at `<data_dir>/keelson.db`;
    /// anything else is a SQLite path (or `sqlite://path`).
    pub database_url: String,
    /// SQLite: fsync each commit, so that everything acknowledged (InformResponse, DATA_ACK,
    /// 2xx) also survives a power loss. `false` keeps it safe against the process dying
    /// only, for a little more speed.
    pub sqlite_fsync: bool,
    /// This server's name among the nodes sharing a database: the tasks its sessions send
    /// are leased to it, and at start it takes back the leases its previous run held. Must
    /// differ between nodes (and stay the same across restarts of one). Empty: the host
    /// name.
    pub node_id: String,
    pub cwmp: CwmpConfig,
    pub nbi: NbiConfig,
    pub connection_request: ConnectionRequestConfig,
    pub datamodel: DatamodelConfig,
    pub ipdr: IpdrConfig,
    pub bulkdata: BulkDataConfig,
    pub files: FilesConfig,
    pub access: AccessConfig,
    pub metrics: MetricsConfig,
    pub webhooks: WebhookConfig,
    pub log: LogConfig,
}

/// Webhook delivery: retries with exponential back-off.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// The first retry waits this long; each next one twice as long...
    pub retry_base_secs: u64,
    /// ...up to this.
    pub retry_max_secs: u64,
    /// Attempts before a delivery is marked failed.
    pub max_attempts: u32,
    /// Per attempt (connect, send, answer).
    pub timeout_secs: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            retry_base_secs: 5,
            retry_max_secs: 3600,
            max_attempts: 15,
            timeout_secs: 10,
        }
    }
}

/// `GET /metrics` (Prometheus text format) on the northbound listener: its own access, apart
/// from the API's users and tokens.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Scrapers from these networks need nothing else.
    pub allow_networks: Vec<ipnet::IpNet>,
    /// When set, a scraper presenting `Authorization: Bearer <token>` is admitted from anywhere.
    pub token: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            allow_networks: vec![
                "127.0.0.0/8"
                    .parse()
                    .unwrap_or(ipnet::IpNet::V4(Default::default())),
                "::1/128"
                    .parse()
                    .unwrap_or(ipnet::IpNet::V6(Default::default())),
            ],
            token: String::new(),
        }
    }
}

/// Operator access: console sessions and sign-in limits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AccessConfig {
    /// How long a console session lasts after sign-in.
    pub session_ttl_secs: u64,
    /// Failed sign-ins of one user within the window before its sign-ins are refused.
    pub login_max_failures_per_user: u32,
    /// Failed sign-ins (and refused tokens or session cookies) from one address within the
    /// window before that address is refused.
    pub login_max_failures_per_address: u32,
    pub login_window_secs: u64,
    /// Mark the session cookie `Secure` (set it when the northbound listener is reached over
    /// HTTPS, e.g. behind a TLS-terminating proxy).
    pub secure_cookies: bool,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            session_ttl_secs: 8 * 3600,
            login_max_failures_per_user: 5,
            login_max_failures_per_address: 20,
            login_window_secs: 900,
            secure_cookies: false,
        }
    }
}

/// Files: what the NBI stores for CPEs to download, and what CPEs upload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FilesConfig {
    /// Largest file an operator may store through the NBI (firmware images).
    pub max_file_bytes: usize,
    /// Largest file a CPE may upload for an Upload task (logs, configuration backups).
    pub max_upload_bytes: usize,
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            max_file_bytes: 1 << 30,
            max_upload_bytes: 64 << 20,
        }
    }
}

/// The IPDR/SP bulk-data collector that runs beside the ACS.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IpdrConfig {
    pub enabled: bool,
    /// TCP listen address for exporters that connect in ("" disables).
    pub listen: String,
    /// Exporters (e.g. CMTSs) the collector dials, as `host:port`.
    pub exporters: Vec<String>,
    /// SCTP listen address ("" disables), used when the kernel has SCTP (probed at start).
    pub sctp_listen: String,
    /// Exporters the collector dials over SCTP, as `ip:port`.
    pub sctp_exporters: Vec<String>,
    /// Keep-alive interval we advertise: an exporter silent this long is dropped (0 = never).
    pub keep_alive_secs: u32,
    /// Time allowed for the CONNECT / CONNECT_RESPONSE handshake.
    pub connect_timeout_secs: u64,
    /// Largest IPDR/SP message accepted (`messageLen`); larger gets ERROR and a close.
    pub max_message_bytes: usize,
    /// Acknowledgement pacing: records are committed, then acknowledged, in batches of at
    /// most this many, and at the latest when the exporter's ackSequenceInterval or
    /// ackTimeInterval (from its SESSION_START) is reached.
    pub max_batch_records: usize,
    /// Reading from an exporter pauses while this many of its records wait for storage.
    pub max_pending_records: usize,
    /// Inbound connections above this number are closed at once.
    pub max_connections: usize,
    /// Inbound connections from one address above this number are closed at once.
    pub max_connections_per_address: usize,
    /// Networks exporters may connect in from (default: loopback only), e.g.
    /// `["127.0.0.0/8", "10.20.0.0/16"]`; `["0.0.0.0/0", "::/0"]` admits any address.
    /// Connections from elsewhere are closed at once, logged and counted.
    pub allow: Vec<ipnet::IpNet>,
    /// Template fields to collect (names, with or without their namespace prefix): when set,
    /// the collector narrows each template with MODIFY_TEMPLATE to these fields. Empty: all.
    pub only_fields: Vec<String>,
    /// Template fields to leave out (MODIFY_TEMPLATE), when `only_fields` is empty.
    pub except_fields: Vec<String>,
    /// A directory watched for IPDR documents (IPDR/XML or IPDR/XDR files; "" disables).
    /// Stored files move to `done/`, refused ones to `failed/` with a `.error` note.
    pub watch_dir: String,
    pub watch_interval_secs: u64,
    /// Largest IPDR document accepted (watched directory and HTTP).
    pub max_document_bytes: usize,
}

impl Default for IpdrConfig {
    fn default() -> Self {
        let t = ipdr::TransportConfig::default();
        let c = ipdr::CollectorConfig::default();
        IpdrConfig {
            enabled: true,
            listen: "0.0.0.0:4737".into(),
            exporters: Vec::new(),
            sctp_listen: "0.0.0.0:4737".into(),
            sctp_exporters: Vec::new(),
            keep_alive_secs: c.keep_alive_interval,
            connect_timeout_secs: c.connect_timeout.as_secs(),
            max_message_bytes: c.max_message_len,
            max_batch_records: t.max_batch_records,
            max_pending_records: t.max_pending_records,
            max_connections: t.admission.caps().total,
            max_connections_per_address: 256,
            allow: vec![
                ipnet::IpNet::V4(ipnet::Ipv4Net::new_assert(std::net::Ipv4Addr::LOCALHOST, 8)),
                ipnet::IpNet::V6(ipnet::Ipv6Net::new_assert(
                    std::net::Ipv6Addr::LOCALHOST,
                    128,
                )),
            ],
            only_fields: Vec::new(),
            except_fields: Vec::new(),
            watch_dir: String::new(),
            watch_interval_secs: 2,
            max_document_bytes: 64 << 20,
        }
    }
}

impl IpdrConfig {
    /// A connection registry with these caps and allow-list.
    pub fn admission(&self) -> std::sync::Arc<admission::Registry> {
        admission::Registry::with_allow(
            "ipdr",
            admission::Caps {
                per_address: self.max_connections_per_address,
                total: self.max_connections,
            },
            self.allow.clone(),
        )
    }

    /// The transport settings these options give.
    pub fn transport(&self) -> ipdr::TransportConfig {
        let d = ipdr::TransportConfig::default();
        let collector = ipdr::CollectorConfig {
            keep_alive_interval: self.keep_alive_secs,
            connect_timeout: std::time::Duration::from_secs(self.connect_timeout_secs.max(1)),
            max_message_len: self.max_message_bytes.max(64),
            fields: if !self.only_fields.is_empty() {
                ipdr::collector::FieldSelection::Only(self.only_fields.clone())
            } else if !self.except_fields.is_empty() {
                ipdr::collector::FieldSelection::Except(self.except_fields.clone())
            } else {
                ipdr::collector::FieldSelection::All
            },
            ..ipdr::CollectorConfig::default()
        };
        ipdr::TransportConfig {
            collector: std::sync::Arc::new(collector),
            max_batch_records: self.max_batch_records.max(1),
            max_pending_records: self.max_pending_records.max(self.max_batch_records.max(1)),
            admission: self.admission(),
            ..d
        }
    }
}

/// Bulk-data storage upkeep (all transports).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BulkDataConfig {
    /// Reports and IPDR records received longer ago than this are deleted (0 = keep all).
    pub retention_days: u32,
    /// The by-device index of reports is brought up to date when this many reports wait…
    pub index_chunk: i64,
    /// …or this many seconds after its last update, whichever comes first. Until then,
    /// queries by device also scan the unindexed reports.
    pub index_interval_secs: u64,
}

impl Default for BulkDataConfig {
    fn default() -> Self {
        BulkDataConfig {
            retention_days: 30,
            index_chunk: 1_000_000,
            index_interval_secs: 10,
        }
    }
}

/// Data models beyond the built-in TR-181 Device:2 and TR-098 InternetGatewayDevice:1.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatamodelConfig {
    /// Directories of BBF cwmp-datamodel XML files (full, or with imports resolved among them).
    pub dirs: Vec<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CwmpConfig {
    /// Plain-HTTP CWMP listener; empty disables it.
    pub http_listen: String,
    /// HTTPS CWMP listener; empty disables it.
    pub https_listen: String,
    /// PEM certificate chain and key. When unset a self-signed certificate is generated on first
    /// start and kept in `<data_dir>/tls/`.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Extra names put in the generated certificate (CPEs check the ACS URL host against it).
    pub tls_hostnames: Vec<String>,
    /// CA bundle for CPE client certificates; with it, a verified client certificate
    /// authenticates the CPE instead of HTTP authentication.
    pub client_ca: Option<PathBuf>,
    pub require_client_cert: bool,
    /// Base URL CPEs use to reach Keelson's file server and upload receiver.
    /// Empty: `http://<host of http_listen>` (127.0.0.1 when listening on all addresses).
    pub public_url: String,
    pub max_body_bytes: usize,
    /// Idle time after which a session is aborted (the CPE's SessionTimeout header can raise it,
    /// up to `max_session_timeout_secs`).
    pub session_timeout_secs: u64,
    /// The most a CPE's `<cwmp:SessionTimeout>` may raise the idle timeout to.
    pub max_session_timeout_secs: u64,
    /// How long a task the CPE acknowledged (Download, Upload, Reboot, ScheduleInform,
    /// ChangeDUState, …) waits for its completion report, beyond any delay the RPC itself
    /// declares, before it becomes a fault.
    pub completion_timeout_secs: u64,
    /// Keep the TCP connection open after the 204 that ends a session (HTTP keep-alive across
    /// sessions). Default false: `Connection: close`, as most ACSs do and CPEs expect.
    pub keep_alive_after_session: bool,
    /// Concurrent sessions above which new Informs get 503 + Retry-After.
    pub max_sessions: usize,
    /// Open connections accepted on each CWMP listener, in total and from one address; a
    /// connection over either cap is closed at once (logged and counted). Raise the
    /// per-address cap when many CPEs share an address (carrier-grade NAT).
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    /// A request's head must arrive within this many seconds of the connection (or of the
    /// previous response), its body within `body_timeout_secs`; an idle keep-alive
    /// connection is closed after `idle_timeout_secs`.
    pub header_timeout_secs: u64,
    pub body_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    pub retry_after_secs: u64,
    /// What one Inform may carry (bytes per DeviceId field, events, parameters); over a
    /// bound, the Inform is answered with fault 8003 or 8004 and nothing is stored.
    pub max_device_id_field_bytes: usize,
    pub max_inform_events: usize,
    pub max_inform_parameters: usize,
    /// `none` (the default: every CPE is accepted, and a warning says so at start) or
    /// `digest` (HTTP Digest; Basic is also accepted over TLS).
    pub auth: AuthMode,
    pub realm: String,
    /// Global default CPE credentials (per-device credentials override them).
    /// Empty username: any username is accepted with the global password.
    pub username: String,
    pub password: String,
    /// Digest algorithms offered: "MD5", "SHA-256".
    pub digest_algorithms: Vec<String>,
    /// Secret for stateless digest nonces; share it between nodes. Empty: random per start.
    pub nonce_secret: String,
    /// `true`/`false` (default) or `1`/`0` in booleans we send.
    pub boolean_digits: bool,
    /// Default task expiry when the NBI gives none (0 = never).
    pub task_expiry_secs: u64,
    pub task_max_attempts: i32,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    None,
    Digest,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NbiConfig {
    pub listen: String,
    /// As for `[cwmp]`: connection caps and request timeouts of the northbound listener.
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub header_timeout_secs: u64,
    pub body_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    /// Host names the northbound API answers to (the `Host` header), besides IP addresses,
    /// `localhost`, this machine's host name, `cwmp.tls_hostnames` and the host of
    /// `cwmp.public_url`; a request for any other name gets 421 (a defence against DNS
    /// rebinding). `["*"]` accepts any name.
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionRequestConfig {
    /// Default credentials for connection requests when the device has none stored.
    pub username: String,
    pub password: String,
    /// Minimum seconds between two connection requests to one device.
    pub min_interval_secs: u64,
    pub timeout_secs: u64,
    pub allow_basic: bool,
    /// Networks (CIDR) connection requests may be sent to besides the address each device
    /// last informed from, e.g. the management VLAN behind a NAT that hides the CPEs.
    pub allow_networks: Vec<ipnet::IpNet>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// tracing-subscriber filter, e.g. `info` or `keelson=debug,acs=debug`.
    pub level: String,
    pub json: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("keelson-data"),
            database_url: String::new(),
            sqlite_fsync: true,
            node_id: String::new(),
            cwmp: CwmpConfig::default(),
            nbi: NbiConfig::default(),
            connection_request: ConnectionRequestConfig::default(),
            datamodel: DatamodelConfig::default(),
            ipdr: IpdrConfig::default(),
            bulkdata: BulkDataConfig::default(),
            files: FilesConfig::default(),
            access: AccessConfig::default(),
            metrics: MetricsConfig::default(),
            webhooks: WebhookConfig::default(),
            log: LogConfig::default(),
        }
    }
}

impl Default for CwmpConfig {
    fn default() -> Self {
        CwmpConfig {
            http_listen: "0.0.0.0:7547".into(),
            https_listen: "0.0.0.0:7548".into(),
            tls_cert: None,
            tls_key: None,
            tls_hostnames: Vec::new(),
            client_ca: None,
            require_client_cert: false,
            public_url: String::new(),
            max_body_bytes: 8 * 1024 * 1024,
            session_timeout_secs: 30,
            max_session_timeout_secs: 300,
            completion_timeout_secs: 24 * 3600,
            keep_alive_after_session: false,
            max_sessions: 20_000,
            max_connections: 100_000,
            max_connections_per_address: 1_000,
            header_timeout_secs: 10,
            body_timeout_secs: 60,
            idle_timeout_secs: 30,
            retry_after_secs: 30,
            max_device_id_field_bytes: 256,
            max_inform_events: 64,
            max_inform_parameters: 5_000,
            auth: AuthMode::None,
            realm: "Keelson".into(),
            username: String::new(),
            password: String::new(),
            digest_algorithms: vec!["MD5".into()],
            nonce_secret: String::new(),
            boolean_digits: false,
            task_expiry_secs: 7 * 24 * 3600,
            task_max_attempts: 3,
        }
    }
}

impl Default for NbiConfig {
    fn default() -> Self {
        NbiConfig {
            listen: "127.0.0.1:7557".into(),
            max_connections: 1_024,
            max_connections_per_address: 256,
            header_timeout_secs: 10,
            body_timeout_secs: 300,
            idle_timeout_secs: 60,
            hosts: Vec::new(),
        }
    }
}

impl Default for ConnectionRequestConfig {
    fn default() -> Self {
        ConnectionRequestConfig {
            username: String::new(),
            password: String::new(),
            min_interval_secs: 5,
            timeout_secs: 15,
            allow_basic: false,
            allow_networks: Vec::new(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            json: false,
        }
    }
}

/// Flags that override the file and the environment (the `serve`/`migrate` options).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigFlags {
    /// TOML configuration file.
    #[arg(long, short = 'c', env = "KEELSON_CONFIG")]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[arg(long)]
    pub database_url: Option<String>,
    /// CWMP HTTP listen address ("" disables).
    #[arg(long)]
    pub cwmp_http: Option<String>,
    /// CWMP HTTPS listen address ("" disables).
    #[arg(long)]
    pub cwmp_https: Option<String>,
    /// Northbound API listen address.
    #[arg(long)]
    pub nbi_listen: Option<String>,
    /// Log filter (tracing-subscriber syntax).
    #[arg(long)]
    pub log_level: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Figment(#[from] Box<figment::Error>),
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("configuration: invalid listen address {field} = {value:?}: {reason}")]
    BadAddress {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("configuration: tls_cert and tls_key must be given together")]
    TlsPair,
    #[error("configuration: unknown digest algorithm {0:?} (use MD5 or SHA-256)")]
    DigestAlgorithm(String),
    #[error("configuration: {field} = {value} is out of range: {reason}")]
    OutOfRange {
        field: &'static str,
        value: String,
        reason: String,
    },
}

/// What a secret is printed as.
pub const REDACTED: &str = "<redacted>";

/// Longest bulk-data retention accepted (100 years).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

impl Config {
    /// Builds the configuration from defaults, the file, `KEELSON_*` variables and the flags.
    /// Nested keys use a double underscore: `KEELSON_CWMP__HTTP_LISTEN=0.0.0.0:8080`.
    pub fn load(flags: &ConfigFlags) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = &flags.config {
            if !path.exists() {
                return Err(ConfigError::MissingFile(path.clone()));
            }
            fig = fig.merge(Toml::file(path));
        }
        fig = fig.merge(
            Env::prefixed("KEELSON_")
                .ignore(&["CONFIG"])
                .split("__")
                .lowercase(true),
        );
        let mut cfg: Config = fig.extract().map_err(Box::new)?;
        if let Some(v) = &flags.data_dir {
            cfg.data_dir = v.clone();
        }
        if let Some(v) = &flags.database_url {
            cfg.database_url = v.clone();
        }
        if let Some(v) = &flags.cwmp_http {
            cfg.cwmp.http_listen = v.clone();
        }
        if let Some(v) = &flags.cwmp_https {
            cfg.cwmp.https_listen = v.clone();
        }
        if let Some(v) = &flags.nbi_listen {
            cfg.nbi.listen = v.clone();
        }
        if let Some(v) = &flags.log_level {
            cfg.log.level = v.clone();
        }
        cfg.validate()?;
        cfg.resolve();
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (field, value) in [
            ("cwmp.http_listen", &self.cwmp.http_listen),
            ("cwmp.https_listen", &self.cwmp.https_listen),
            ("nbi.listen", &self.nbi.listen),
            ("ipdr.listen", &self.ipdr.listen),
        ] {
            if !value.is_empty() {
                value
                    .parse::<SocketAddr>()
                    .map_err(|e| ConfigError::BadAddress {
                        field,
                        value: value.clone(),
                        reason: e.to_string(),
                    })?;
            }
        }
        if self.cwmp.tls_cert.is_some() != self.cwmp.tls_key.is_some() {
            return Err(ConfigError::TlsPair);
        }
        for a in &self.cwmp.digest_algorithms {
            if !matches!(a.to_ascii_uppercase().as_str(), "MD5" | "SHA-256") {
                return Err(ConfigError::DigestAlgorithm(a.clone()));
            }
        }
        if self.bulkdata.retention_days > MAX_RETENTION_DAYS {
            return Err(ConfigError::OutOfRange {
                field: "bulkdata.retention_days",
                value: self.bulkdata.retention_days.to_string(),
                reason: format!("at most {MAX_RETENTION_DAYS} days (0 keeps everything)"),
            });
        }
        if self.ipdr.enabled && self.ipdr.allow.is_empty() {
            return Err(ConfigError::OutOfRange {
                field: "ipdr.allow",
                value: "[]".into(),
                reason: "no exporter could connect; list the exporters' networks, or [\"0.0.0.0/0\", \"::/0\"] to admit any address".into(),
            });
        }
        Ok(())
    }

    /// The database URL in effect (SQLite in the data directory by default).
    pub fn effective_database_url(&self) -> String {
        if self.database_url.is_empty() {
            self.data_dir
                .join("keelson.db")
                .to_string_lossy()
                .into_owned()
        } else {
            self.database_url.clone()
        }
    }

    /// Base URL CPEs use for files and uploads.
    pub fn public_url(&self) -> String {
        if !self.cwmp.public_url.is_empty() {
            return self.cwmp.public_url.trim_end_matches('/').to_string();
        }
        let (scheme, listen) = if !self.cwmp.http_listen.is_empty() {
            ("http", &self.cwmp.http_listen)
        } else {
            ("https", &self.cwmp.https_listen)
        };
        match listen.parse::<SocketAddr>() {
            Ok(addr) if addr.ip().is_unspecified() => {
                format!("{scheme}://127.0.0.1:{}", addr.port())
            }
            Ok(addr) => format!("{scheme}://{addr}"),
            Err(_) => format!("{scheme}://127.0.0.1:7547"),
        }
    }

    pub fn files_dir(&self) -> PathBuf {
        self.data_dir.join("files")
    }

    /// The configuration with every secret replaced by `<redacted>` (passwords, the nonce
    /// secret, the database URL's password): what `keelson config` prints.
    pub fn redacted(&self) -> Config {
        let hide = |s: &mut String| {
            if !s.is_empty() {
                *s = REDACTED.into();
            }
        };
        let mut c = self.clone();
        hide(&mut c.cwmp.password);
        hide(&mut c.cwmp.nonce_secret);
        hide(&mut c.connection_request.password);
        hide(&mut c.metrics.token);
        c.database_url = crate::app::redact_url(&c.database_url);
        c
    }

    /// How long a running task is leased to this node: longer than any session may idle.
    pub fn task_lease_secs(&self) -> u64 {
        self.cwmp
            .max_session_timeout_secs
            .max(self.cwmp.session_timeout_secs)
            .saturating_add(60)
    }

    /// Fills in what is derived at start (the node id from the host name).
    pub fn resolve(&mut self) {
        if self.node_id.is_empty() {
            self.node_id = host_name().unwrap_or_else(|| "keelson".into());
        }
    }
}

/// The machine's host name, if it has one.
pub fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_string())
}

#[cfg(test)]
#[allow(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used
)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_zero_config_setup() {
        let c = Config::default();
        assert_eq!(c.cwmp.http_listen, "0.0.0.0:7547");
        assert_eq!(c.cwmp.https_listen, "0.0.0.0:7548");
        assert_eq!(c.nbi.listen, "127.0.0.1:7557");
        assert!(c.effective_database_url().ends_with("keelson.db"));
        assert_eq!(c.public_url(), "http://127.0.0.1:7547");
        assert_eq!(c.cwmp.max_body_bytes, 8 * 1024 * 1024);
    }

    #[test]
    fn file_then_flags_override() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.toml");
        std::fs::write(
            &path,
            "database_url = \"postgres://x@127.0.0.1/k\"\n[cwmp]\nhttp_listen = \"127.0.0.1:9000\"\nrealm = \"R\"\n",
        )
        .unwrap();
        let flags = ConfigFlags {
            config: Some(path),
            nbi_listen: Some("127.0.0.1:9001".into()),
            ..Default::default()
        };
        let c = Config::load(&flags).unwrap();
        assert_eq!(c.cwmp.http_listen, "127.0.0.1:9000");
        assert_eq!(c.cwmp.realm, "R");
        assert_eq!(c.nbi.listen, "127.0.0.1:9001");
        assert_eq!(c.effective_database_url(), "postgres://x@127.0.0.1/k");
        assert_eq!(c.public_url(), "http://127.0.0.1:9000");
    }

    #[test]
    fn bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.toml");
        std::fs::write(&path, "[cwmp]\nhttp_listen = \"nonsense\"\n").unwrap();
        let flags = ConfigFlags {
            config: Some(path.clone()),
            ..Default::default()
        };
        let e = Config::load(&flags).unwrap_err().to_string();
        assert!(e.contains("cwmp.http_listen"), "{e}");
        std::fs::write(&path, "[cwmp]\nno_such_key = 1\n").unwrap();
        let e = Config::load(&flags).unwrap_err().to_string();
        assert!(e.contains("no_such_key"), "{e}");
    }

    #[test]
    fn ipdr_settings_reach_the_collector() {
        let c = IpdrConfig {
            keep_alive_secs: 45,
            max_message_bytes: 1 << 20,
            max_batch_records: 100,
            max_pending_records: 10,
            except_fields: vec!["Suspect".into()],
            ..IpdrConfig::default()
        };
        let t = c.transport();
        assert_eq!(t.collector.keep_alive_interval, 45);
        assert_eq!(t.collector.max_message_len, 1 << 20);
        assert_eq!(t.max_batch_records, 100);
        // Never fewer pending records than one batch.
        assert_eq!(t.max_pending_records, 100);
        assert!(!t.collector.fields.keeps("Suspect"));
        assert!(!t.collector.fields.keeps("tr232:Suspect"));
        assert!(t.collector.fields.keeps("OUI"));
        let only = IpdrConfig {
            only_fields: vec!["OUI".into()],
            except_fields: vec!["OUI".into()],
            ..IpdrConfig::default()
        }
        .transport();
        assert!(only.collector.fields.keeps("OUI"), "only_fields wins");
        assert!(!only.collector.fields.keeps("SerialNumber"));
        assert!(IpdrConfig::default()
            .transport()
            .collector
            .fields
            .keeps("X"));
    }
}
