//! IPDR exporter simulator: a fleet of simulated CPEs streaming TR-232 `BulkDataReport`
//! records (spec §7) over IPDR/SP, driven by the sans-IO [`Exporter`].
//!
//! * Either connection direction ([`SimConnection`]): the simulator dials the collector
//!   (TR-232 CPEs do), or listens and the collector dials it (DOCSIS CMTSs do); when
//!   listening it also answers UDP version discovery on the same port.
//! * At a fixed rate ([`SimExporterConfig::rate`]) or as fast as the collector
//!   acknowledges (bounded by the exporter window).
//! * Reconnects after a lost connection and resends every unacknowledged record (same
//!   documentId, same DSNs, duplicate flag set), so a collector that stores idempotently on
//!   (session, documentId, DSN) ends with every record exactly once.
//! * [`run_exporter`] returns an [`ExporterReport`]; [`SimExporterConfig::progress`] is
//!   called periodically in load runs.
//!
//! Record shape: `IPDRCreationTime` (dateTimeMsec), `OUI`, `ProductClass`, `SerialNumber`,
//! `Suspect`, then the name/value pairs, either as `BulkData`, an array of structure
//! {`Name`, `Value`} (the faithful form; needs the STRUCTURES capability), or flattened to
//! `Name1`, `Value1`, … ([`BulkDataLayout`]). How real CPEs flatten TR-232 over XDR is not
//! known (spec §7, §13), so both are offered.

use std::fmt;
use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use thiserror::Error;
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use ipdr::codec::{Capabilities, DocumentId, Framer, TransportType, DEFAULT_MAX_MESSAGE_LEN};
use ipdr::exporter::{
    Exporter, ExporterConfig, ExporterEvent, ExporterOutput, ExporterSession, Role,
};
use ipdr::tcp::{discovery_response, serve_discovery, v4_of, TcpLink};
use ipdr::tr232::{put_str, tr232_template, BulkDataLayout, BulkDataReport, TR232_TEMPLATE_ID};
use ipdr::transport::{close_gracefully, unix_now, Link, Shutdown};

/// TR-181 parameters reported by every simulated device (the first 20 pairs); more pairs
/// report `Device.Hosts.Host.{i}.Active`.
pub const TR181_PARAMETERS: [&str; 20] = [
    "Device.DeviceInfo.UpTime",
    "Device.DeviceInfo.MemoryStatus.Total",
    "Device.DeviceInfo.MemoryStatus.Free",
    "Device.DeviceInfo.ProcessStatus.CPUUsage",
    "Device.DeviceInfo.TemperatureStatus.TemperatureSensor.1.Value",
    "Device.Ethernet.Interface.1.Stats.BytesSent",
    "Device.Ethernet.Interface.1.Stats.BytesReceived",
    "Device.Ethernet.Interface.1.Stats.ErrorsReceived",
    "Device.IP.Interface.1.Stats.BytesSent",
    "Device.IP.Interface.1.Stats.BytesReceived",
    "Device.IP.Interface.1.Stats.PacketsSent",
    "Device.IP.Interface.1.Stats.PacketsReceived",
    "Device.WiFi.Radio.1.Channel",
    "Device.WiFi.Radio.1.Stats.Noise",
    "Device.WiFi.Radio.1.Stats.BytesSent",
    "Device.WiFi.Radio.1.Stats.BytesReceived",
    "Device.WiFi.AccessPoint.1.AssociatedDeviceNumberOfEntries",
    "Device.WiFi.SSID.1.Stats.ErrorsSent",
    "Device.Hosts.HostNumberOfEntries",
    "Device.IP.Interface.1.IPv4Address.1.IPAddress",
];

fn mix(mut x: u64) -> u64 {
    // splitmix64 finaliser
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A set of simulated devices. Report `index` comes from device `index % devices`, its
/// `index / devices`-th report; values are deterministic in (seed, device, round).
#[derive(Debug, Clone)]
pub struct DeviceFleet {
    pub oui: String,
    pub product_class: String,
    pub serial_prefix: String,
    pub devices: u32,
    pub pairs: usize,
    pub seed: u64,
    /// Simulated reporting interval (seconds), for uptimes and counters.
    pub interval: u64,
}

impl DeviceFleet {
    pub fn serial_number(&self, device: u32) -> String {
        format!("{}{:08}", self.serial_prefix, device)
    }

    fn device_round(&self, index: u64) -> (u32, u64) {
        let n = u64::from(self.devices.max(1));
        ((index % n) as u32, index / n)
    }

    fn value(&self, device: u32, round: u64, k: usize, out: &mut String) {
        use std::fmt::Write;
        let d = u64::from(device);
        let h = |salt: u64| mix(self.seed ^ (d << 20) ^ (k as u64) ^ (salt << 40));
        let noise = mix(self.seed ^ (d << 20) ^ ((k as u64) << 8) ^ (round << 32));
        let counter = |scale: u64| h(1) % (scale * 1000) + round * (scale / 2 + h(2) % scale);
        let _ = match k {
            0 => write!(out, "{}", h(3) % 2_592_000 + round * self.interval),
            1 => write!(out, "{}", 262_144u64 << (h(4) % 3)),
            2 => write!(out, "{}", 60_000 + noise % 150_000),
            3 => write!(out, "{}", noise % 100),
            4 => write!(out, "{}", 35 + noise % 40),
            5 => write!(out, "{}", counter(1_500_000)),
            6 => write!(out, "{}", counter(9_000_000)),
            7 => write!(out, "{}", counter(3) / 1000),
            8 => write!(out, "{}", counter(1_400_000)),
            9 => write!(out, "{}", counter(8_800_000)),
            10 => write!(out, "{}", counter(1_200)),
            11 => write!(out, "{}", counter(7_000)),
            12 => write!(out, "{}", [1, 6, 11, 36, 44, 149][(h(5) % 6) as usize]),
            13 => write!(out, "-{}", 85 + noise % 15),
            14 => write!(out, "{}", counter(2_000_000)),
            15 => write!(out, "{}", counter(6_000_000)),
            16 => write!(out, "{}", noise % 12),
            17 => write!(out, "{}", counter(2) / 1000),
            18 => write!(out, "{}", 1 + noise % 24),
            19 => write!(out, "192.168.{}.{}", h(6) % 256, 2 + h(7) % 250),
            _ => write!(out, "{}", noise & 1 == 0),
        };
    }

    fn name(k: usize, out: &mut String) {
        use std::fmt::Write;
        match TR181_PARAMETERS.get(k) {
            Some(p) => out.push_str(p),
            None => {
                let _ = write!(
                    out,
                    "Device.Hosts.Host.{}.Active",
                    k - TR181_PARAMETERS.len() + 1
                );
            }
        }
    }

    /// Report number `index`.
    pub fn report(&self, index: u64, creation_time_ms: u64) -> BulkDataReport {
        let (device, round) = self.device_round(index);
        let bulk_data = (0..self.pairs)
            .map(|k| {
                let (mut n, mut v) = (String::new(), String::new());
                Self::name(k, &mut n);
                self.value(device, round, k, &mut v);
                (n, v)
            })
            .collect();
        BulkDataReport {
            creation_time_ms,
            oui: self.oui.clone(),
            product_class: self.product_class.clone(),
            serial_number: self.serial_number(device),
            suspect: false,
            bulk_data,
        }
    }

    /// Appends report `index` encoded for `layout`, without building a
    /// [`BulkDataReport`] (same bytes as `report(index, t).encode(layout, out)`).
    pub fn encode_report(
        &self,
        index: u64,
        creation_time_ms: u64,
        layout: BulkDataLayout,
        out: &mut Vec<u8>,
    ) {
        use std::fmt::Write;
        let (device, round) = self.device_round(index);
        out.extend_from_slice(&creation_time_ms.to_be_bytes());
        put_str(out, &self.oui);
        put_str(out, &self.product_class);
        let mut s = String::with_capacity(64);
        let _ = write!(s, "{}{:08}", self.serial_prefix, device);
        put_str(out, &s);
        out.push(0);
        if layout == BulkDataLayout::Structured {
            out.extend_from_slice(&(self.pairs as u32).to_be_bytes());
        }
        for k in 0..self.pairs {
            match TR181_PARAMETERS.get(k) {
                Some(p) => put_str(out, p),
                None => {
                    s.clear();
                    Self::name(k, &mut s);
                    put_str(out, &s);
                }
            }
            s.clear();
            self.value(device, round, k, &mut s);
            put_str(out, &s);
        }
    }
}

/// A random RFC 9562 version-4 documentId.
pub fn random_document_id() -> DocumentId {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    DocumentId(b)
}

/// Which side opens the transport connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimConnection {
    /// The simulator connects to the collector at `host:port` (and reconnects).
    Dial(String),
    /// The simulator listens; the collector connects to it (one collector at a time).
    Listen(SocketAddr),
    /// The simulator connects to the collector over SCTP (needs kernel SCTP, see
    /// [`ipdr::sctp::sctp_available`]).
    DialSctp(SocketAddr),
}

/// Called with a report snapshot every [`SimExporterConfig::progress_interval`] (the
/// acknowledged rate over an interval is the difference of two snapshots). Without one,
/// progress is logged with `tracing` at info level.
pub type ProgressFn = Arc<dyn Fn(&ExporterReport) + Send + Sync>;
/// Called with every exporter event (tests use it to watch acknowledgements).
pub type EventFn = Arc<dyn Fn(&ExporterEvent) + Send + Sync>;

/// What to simulate. [`Default`] gives 100 devices, 20 pairs, structured layout, as fast
/// as acknowledged, dialling `127.0.0.1:4737`, 10,000 records.
#[derive(Clone)]
pub struct SimExporterConfig {
    pub connection: SimConnection,
    /// Records to send in all; `None` = until `duration` or shutdown.
    pub records: Option<u64>,
    /// Stop generating after this long (outstanding records are still awaited for up to
    /// `drain_timeout`).
    pub duration: Option<Duration>,
    /// Records per second; `None` = as fast as the collector acknowledges.
    pub rate: Option<f64>,
    /// Tests: generate this many records, then hold the rest until the first connection is
    /// lost (so a test can kill the collector mid-stream without racing the stream's end).
    pub pause_at: Option<u64>,
    /// Simulated devices (reports round-robin over them).
    pub devices: u32,
    /// Name/value pairs per report.
    pub pairs: usize,
    pub layout: BulkDataLayout,
    pub oui: String,
    pub product_class: String,
    pub serial_prefix: String,
    pub seed: u64,
    /// Header sessionId (TR-181 StreamingSessionID: '0'–'9', 'A'–'Z').
    pub session_id: u8,
    /// Start a new document every this many records (SESSION_STOP 6 + SESSION_START).
    pub records_per_document: Option<u64>,
    /// The first documentId; random when `None`.
    pub document_id: Option<DocumentId>,
    /// Most DATA outstanding before a DATA_ACK.
    pub window: usize,
    /// Seconds, announced in SESSION_START.
    pub ack_time_interval: u32,
    pub ack_sequence_interval: u32,
    /// Seconds of collector silence tolerated (advertised in CONNECT).
    pub keep_alive_interval: u32,
    /// Outstanding DATA without acknowledgement progress for this long ends the connection.
    pub window_timeout: Duration,
    pub vendor_id: String,
    pub capabilities: Capabilities,
    /// Dialling: first reconnection delay (doubles up to 5 s).
    pub reconnect_delay: Duration,
    /// Dialling: give up after this many consecutive failed connection attempts.
    pub max_connect_failures: Option<u32>,
    /// When generation has stopped, how long to wait for the last acknowledgements.
    pub drain_timeout: Duration,
    /// Listening: answer UDP version discovery on the same port.
    pub discovery: bool,
    pub progress_interval: Option<Duration>,
    pub progress: Option<ProgressFn>,
    pub on_event: Option<EventFn>,
}

impl Default for SimExporterConfig {
    fn default() -> Self {
        SimExporterConfig {
            connection: SimConnection::Dial("127.0.0.1:4737".into()),
            records: Some(10_000),
            duration: None,
            rate: None,
            pause_at: None,
            devices: 100,
            pairs: 20,
            layout: BulkDataLayout::Structured,
            oui: "02EE15".into(),
            product_class: "KeelsonSimCPE".into(),
            serial_prefix: "SIM".into(),
            seed: 1,
            session_id: b'A',
            records_per_document: None,
            document_id: None,
            window: 4096,
            ack_time_interval: 1,
            ack_sequence_interval: 1024,
            keep_alive_interval: 30,
            window_timeout: Duration::from_secs(60),
            vendor_id: "Keelson IPDR simulator".into(),
            capabilities: Capabilities::STRUCTURES.union(Capabilities::MULTISESSION),
            reconnect_delay: Duration::from_millis(200),
            max_connect_failures: Some(20),
            drain_timeout: Duration::from_secs(10),
            discovery: true,
            progress_interval: None,
            progress: None,
            on_event: None,
        }
    }
}

impl fmt::Debug for SimExporterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimExporterConfig")
            .field("connection", &self.connection)
            .field("records", &self.records)
            .field("duration", &self.duration)
            .field("rate", &self.rate)
            .field("devices", &self.devices)
            .field("pairs", &self.pairs)
            .field("layout", &self.layout)
            .field("session_id", &self.session_id)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl SimExporterConfig {
    /// The device fleet this configuration simulates.
    pub fn fleet(&self) -> DeviceFleet {
        DeviceFleet {
            oui: self.oui.clone(),
            product_class: self.product_class.clone(),
            serial_prefix: self.serial_prefix.clone(),
            devices: self.devices.max(1),
            pairs: self.pairs,
            seed: self.seed,
            interval: 300,
        }
    }

    fn check(&self) -> Result<(), SimError> {
        if self.window == 0 {
            return Err(SimError::Config("window must be at least 1".into()));
        }
        if let Some(r) = self.rate {
            if !(r.is_finite() && r > 0.0) {
                return Err(SimError::Config(format!("rate must be positive, not {r}")));
            }
        }
        if self.records_per_document == Some(0) {
            return Err(SimError::Config(
                "records_per_document must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// What a simulator run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExporterReport {
    pub records_generated: u64,
    /// Records released by DATA_ACKs.
    pub records_acked: u64,
    /// DATA messages sent, resends included.
    pub data_sent: u64,
    /// DATA messages resent after a reconnection (duplicate flag set).
    pub data_resent: u64,
    pub data_acks: u64,
    /// Transport connections that were established.
    pub connections: u64,
    pub documents: u64,
    pub peer_errors: u64,
    pub elapsed: Duration,
    /// Every generated record was acknowledged.
    pub complete: bool,
}

impl ExporterReport {
    /// Acknowledged records per second over the run.
    pub fn acked_per_second(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.records_acked as f64 / s
        } else {
            0.0
        }
    }
}

impl fmt::Display for ExporterReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} records acknowledged of {} generated in {:.2} s ({:.0} records/s); {} DATA sent ({} resent), {} DATA_ACKs, {} connection(s), {} document(s)",
            self.records_acked,
            self.records_generated,
            self.elapsed.as_secs_f64(),
            self.acked_per_second(),
            self.data_sent,
            self.data_resent,
            self.data_acks,
            self.connections,
            self.documents,
        )
    }
}

/// Why a simulator run could not go on.
#[derive(Debug, Error)]
pub enum SimError {
    #[error("invalid simulator configuration: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("cannot connect to the collector at {addr} ({attempts} attempts): {source}")]
    Connect {
        addr: String,
        attempts: u32,
        #[source]
        source: io::Error,
    },
}

/// Runs the simulator until every record is acknowledged (or `duration` ends).
pub async fn run_exporter(cfg: SimExporterConfig) -> Result<ExporterReport, SimError> {
    run_exporter_until(cfg, Shutdown::never()).await
}

/// [`run_exporter`], stopping early when `shutdown` is requested (DISCONNECT is sent and
/// the report returned).
pub async fn run_exporter_until(
    cfg: SimExporterConfig,
    shutdown: Shutdown,
) -> Result<ExporterReport, SimError> {
    cfg.check()?;
    match cfg.connection.clone() {
        SimConnection::Dial(addr) => {
            let target = addr.clone();
            run_dial(cfg, addr, move || tcp_connect(target.clone()), shutdown).await
        }
        SimConnection::DialSctp(addr) => run_dial_sctp(cfg, addr, shutdown).await,
        SimConnection::Listen(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| SimError::Bind { addr, source })?;
            run_listening(cfg, listener, shutdown).await
        }
    }
}

/// The listening simulator on an already bound listener (lets a caller bind port 0 and
/// learn the port first). `cfg.connection` is ignored.
pub async fn run_exporter_listening(
    cfg: SimExporterConfig,
    listener: TcpListener,
    shutdown: Shutdown,
) -> Result<ExporterReport, SimError> {
    cfg.check()?;
    run_listening(cfg, listener, shutdown).await
}

#[cfg(all(feature = "sctp", target_os = "linux"))]
async fn run_dial_sctp(
    cfg: SimExporterConfig,
    addr: SocketAddr,
    shutdown: Shutdown,
) -> Result<ExporterReport, SimError> {
    if let Err(reason) = ipdr::sctp::sctp_available() {
        return Err(SimError::Connect {
            addr: addr.to_string(),
            attempts: 0,
            source: io::Error::new(io::ErrorKind::Unsupported, reason),
        });
    }
    run_dial(
        cfg,
        addr.to_string(),
        move || ipdr::sctp::sctp_connect(addr),
        shutdown,
    )
    .await
}

#[cfg(not(all(feature = "sctp", target_os = "linux")))]
async fn run_dial_sctp(
    _cfg: SimExporterConfig,
    addr: SocketAddr,
    _shutdown: Shutdown,
) -> Result<ExporterReport, SimError> {
    let reason = ipdr::sctp::sctp_available().err().unwrap_or_default();
    Err(SimError::Connect {
        addr: addr.to_string(),
        attempts: 0,
        source: io::Error::new(io::ErrorKind::Unsupported, reason),
    })
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How one connection ended.
#[derive(Debug, PartialEq, Eq)]
enum ConnEnd {
    /// Everything is done (or stopped) and DISCONNECT went out.
    Finished,
    Lost,
}

struct Sim {
    cfg: SimExporterConfig,
    exp: Exporter,
    fleet: DeviceFleet,
    sid: u8,
    generated: u64,
    doc_generated: u64,
    start: Instant,
    stop_generating_at: Option<Instant>,
    /// Generation stopped (target reached, duration over or shutdown).
    stopped_at: Option<Instant>,
    shutdown_requested: bool,
    finished: bool,
    /// A connection was lost: [`SimExporterConfig::pause_at`] no longer holds.
    pause_released: bool,
    peer_errors: u64,
    next_progress: Option<Instant>,
    /// Time and acknowledged count at the previous progress report.
    last_progress: (Instant, u64),
    enc: Vec<u8>,
    /// Per device, the creation time of its last report: each device's reports get
    /// strictly increasing times (ms), as a real CPE's would.
    last_ms: Vec<u64>,
}

impl Sim {
    fn new(cfg: SimExporterConfig) -> Sim {
        let now = Instant::now();
        let template = tr232_template(cfg.layout, cfg.pairs);
        let session = ExporterSession {
            session_id: cfg.session_id,
            name: "TR-232 BulkData".into(),
            description: format!(
                "{} simulated devices, {} parameters per report",
                cfg.devices, cfg.pairs
            ),
            ack_time_interval: cfg.ack_time_interval,
            ack_sequence_interval: cfg.ack_sequence_interval,
            config_id: 1,
            templates: vec![template],
            document_id: cfg.document_id.unwrap_or_else(random_document_id),
        };
        let ecfg = ExporterConfig {
            vendor_id: cfg.vendor_id.clone(),
            capabilities: cfg.capabilities,
            keep_alive_interval: cfg.keep_alive_interval,
            connect_timeout: Duration::from_secs(15),
            boot_time: unix_now(),
            sessions: vec![session],
            window_size: cfg.window,
            window_timeout: cfg.window_timeout,
            max_queue: cfg.window.saturating_mul(2).max(1),
        };
        Sim {
            fleet: cfg.fleet(),
            sid: cfg.session_id,
            exp: Exporter::new(Arc::new(ecfg), now),
            generated: 0,
            doc_generated: 0,
            start: now,
            stop_generating_at: cfg.duration.map(|d| now + d),
            stopped_at: None,
            shutdown_requested: false,
            finished: false,
            pause_released: false,
            peer_errors: 0,
            next_progress: cfg.progress_interval.map(|i| now + i),
            last_progress: (now, 0),
            enc: Vec::with_capacity(1024),
            last_ms: vec![0; cfg.devices.max(1) as usize],
            cfg,
        }
    }

    fn report(&self) -> ExporterReport {
        let s = self.exp.stats();
        ExporterReport {
            records_generated: self.generated,
            records_acked: s.records_acked,
            data_sent: s.data_sent,
            data_resent: s.data_resent,
            data_acks: s.data_acks_received,
            connections: s.connections,
            documents: s.documents,
            peer_errors: self.peer_errors,
            elapsed: self.start.elapsed(),
            complete: self.generated == s.records_acked && self.exp.all_acknowledged(),
        }
    }

    /// Generation is over for good.
    fn generation_over(&mut self, now: Instant) -> bool {
        if self.stopped_at.is_none() {
            let over = self.shutdown_requested
                || self.cfg.records.is_some_and(|n| self.generated >= n)
                || self.stop_generating_at.is_some_and(|t| now >= t);
            if over {
                self.stopped_at = Some(now);
            }
        }
        self.stopped_at.is_some()
    }

    /// Nothing more to do on a connection: generation over and all acknowledged (or
    /// the drain time ran out, or shutdown).
    fn done(&mut self, now: Instant) -> bool {
        if !self.generation_over(now) {
            return false;
        }
        self.shutdown_requested
            || self.exp.all_acknowledged()
            || self
                .stopped_at
                .is_some_and(|t| now >= t + self.cfg.drain_timeout)
    }

    fn generate(&mut self, now: Instant) {
        if self.generation_over(now) {
            return;
        }
        if let Some(per) = self.cfg.records_per_document {
            if self.doc_generated >= per {
                if self.exp.unacknowledged(self.sid) > 0 {
                    return;
                }
                if self
                    .exp
                    .new_document(now, self.sid, random_document_id())
                    .is_err()
                {
                    return;
                }
                self.doc_generated = 0;
            }
        }
        let mut room = self.exp.queue_room(self.sid) as u64;
        if let Some(n) = self.cfg.records {
            room = room.min(n.saturating_sub(self.generated));
        }
        if let Some(per) = self.cfg.records_per_document {
            room = room.min(per.saturating_sub(self.doc_generated));
        }
        if let Some(p) = self.cfg.pause_at.filter(|_| !self.pause_released) {
            room = room.min(p.saturating_sub(self.generated));
        }
        if let Some(rate) = self.cfg.rate {
            let due = (now.duration_since(self.start).as_secs_f64() * rate) as u64 + 1;
            room = room.min(due.saturating_sub(self.generated));
        }
        if room == 0 {
            return;
        }
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        for _ in 0..room {
            self.enc.clear();
            let device = (self.generated % self.last_ms.len() as u64) as usize;
            let t = ms.max(self.last_ms[device] + 1);
            self.last_ms[device] = t;
            self.fleet
                .encode_report(self.generated, t, self.cfg.layout, &mut self.enc);
            let record = Bytes::copy_from_slice(&self.enc);
            if self
                .exp
                .enqueue(self.sid, TR232_TEMPLATE_ID, record)
                .is_err()
            {
                break;
            }
            self.generated += 1;
            self.doc_generated += 1;
        }
    }

    /// When the rate limiter allows the next record (if rate-limited and waiting).
    fn next_generation(&self) -> Option<Instant> {
        let rate = self.cfg.rate?;
        if self.stopped_at.is_some() || self.exp.queue_room(self.sid) == 0 {
            return None;
        }
        let secs = self.generated as f64 / rate;
        Some(self.start + Duration::from_secs_f64(secs))
    }

    fn on_event(&mut self, e: &ExporterEvent) {
        match e {
            ExporterEvent::PeerError {
                code, description, ..
            } => {
                self.peer_errors += 1;
                tracing::warn!(%code, description, "IPDR collector sent ERROR");
            }
            ExporterEvent::ErrorSent {
                code, description, ..
            } => tracing::warn!(%code, description, "IPDR simulator sent ERROR"),
            ExporterEvent::WindowTimeout {
                session_id,
                outstanding,
            } => tracing::warn!(
                session_id,
                outstanding,
                "IPDR simulator: no DATA_ACK progress, dropping the connection"
            ),
            ExporterEvent::Connected {
                vendor_id,
                capabilities,
                ..
            } => {
                tracing::info!(vendor_id, "IPDR simulator connected");
                if self.cfg.layout == BulkDataLayout::Structured
                    && !capabilities.contains(Capabilities::STRUCTURES)
                {
                    tracing::warn!(
                        "the collector did not agree to STRUCTURES: BulkData is sent as an array of structures anyway (use the flattened layout for such collectors)"
                    );
                }
            }
            ExporterEvent::SessionStarted {
                document_id,
                first_sequence_num,
                resending,
                ..
            } => tracing::debug!(
                %document_id,
                first_sequence_num,
                resending,
                "IPDR simulator session started"
            ),
            other => tracing::trace!(event = ?other, "IPDR simulator event"),
        }
        if let Some(f) = &self.cfg.on_event {
            f(e);
        }
    }

    fn progress(&mut self, now: Instant) {
        if let (Some(at), Some(iv)) = (self.next_progress, self.cfg.progress_interval) {
            if now >= at {
                self.next_progress = Some(now + iv);
                let r = self.report();
                match &self.cfg.progress {
                    Some(f) => f(&r),
                    None => {
                        let (t0, a0) = self.last_progress;
                        let secs = now.duration_since(t0).as_secs_f64().max(1e-9);
                        let recent = r.records_acked.saturating_sub(a0) as f64 / secs;
                        tracing::info!("{r}; last interval {recent:.0} records/s");
                    }
                }
                self.last_progress = (now, r.records_acked);
            }
        }
    }
}

const WBUF_HIGH: usize = 256 * 1024;
const FAR: Duration = Duration::from_secs(86_400);

/// One connection: handshake, stream, until lost or finished.
async fn run_connection<L: Link>(
    sim: &mut Sim,
    link: &L,
    role: Role,
    shutdown: &mut Shutdown,
) -> ConnEnd {
    sim.exp.connection_opened(Instant::now(), role);
    let mut framer = Framer::new(DEFAULT_MAX_MESSAGE_LEN);
    let mut rbuf = vec![0u8; 64 * 1024];
    let mut wbuf: Vec<u8> = Vec::with_capacity(WBUF_HIGH + 4096);
    let mut wpos = 0usize;
    let mut closing = false;
    let mut disconnecting = false;
    let mut lost = false;
    let timer = tokio::time::sleep(FAR);
    tokio::pin!(timer);
    let mut timer_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        sim.generate(now);
        if !disconnecting && !closing && sim.done(now) {
            disconnecting = true;
            sim.finished = true;
            if sim.exp.disconnect(now).is_err() {
                closing = true;
            }
        }
        while wbuf.len() - wpos < WBUF_HIGH {
            match sim.exp.poll_output(now) {
                Some(ExporterOutput::Send(m)) => {
                    if let Err(e) = m.encode(&mut wbuf) {
                        tracing::warn!(error = %e, "cannot encode {}", m.id());
                    }
                }
                Some(ExporterOutput::Event(e)) => sim.on_event(&e),
                Some(ExporterOutput::Close) => closing = true,
                None => break,
            }
        }
        sim.progress(now);
        if wpos >= wbuf.len() {
            wbuf.clear();
            wpos = 0;
        }
        if lost || (closing && wpos >= wbuf.len()) {
            if !lost {
                close_gracefully(link, &mut rbuf).await;
            }
            sim.exp.connection_lost(Instant::now());
            if !sim.finished {
                sim.pause_released = true;
            }
            return if sim.finished {
                ConnEnd::Finished
            } else {
                ConnEnd::Lost
            };
        }
        let mut deadline = if closing {
            None
        } else {
            sim.exp.poll_timeout()
        };
        for x in [
            sim.next_generation(),
            sim.next_progress,
            sim.stop_generating_at.filter(|_| sim.stopped_at.is_none()),
            sim.stopped_at.map(|t| t + sim.cfg.drain_timeout),
        ]
        .into_iter()
        .flatten()
        {
            deadline = Some(deadline.map_or(x, |d| d.min(x)));
        }
        if deadline != timer_at {
            timer
                .as_mut()
                .reset(deadline.unwrap_or_else(|| now + FAR).into());
            timer_at = deadline;
        }
        tokio::select! {
            biased;
            _ = shutdown.requested(), if !sim.shutdown_requested => {
                sim.shutdown_requested = true;
            }
            r = link.send(&wbuf[wpos..]), if wpos < wbuf.len() => match r {
                Ok(0) | Err(_) => lost = true,
                Ok(n) => wpos += n,
            },
            r = link.recv(&mut rbuf), if !closing => {
                let now = Instant::now();
                match r {
                    Ok(0) | Err(_) => lost = true,
                    Ok(n) => {
                        framer.push(&rbuf[..n]);
                        while let Some(m) = framer.next_message() {
                            match m {
                                Ok(m) => sim.exp.handle_message(now, m),
                                Err(e) => sim.exp.handle_frame_error(now, &e),
                            }
                        }
                    }
                }
            },
            _ = &mut timer, if timer_at.is_some() => {
                timer_at = None;
                let now = Instant::now();
                if sim.exp.poll_timeout().is_some_and(|t| now >= t) {
                    sim.exp.handle_timeout(now);
                }
            },
        }
    }
}

async fn tcp_connect(addr: String) -> io::Result<(TcpLink, SocketAddrV4)> {
    let stream = TcpStream::connect(addr.as_str()).await?;
    let _ = stream.set_nodelay(true);
    let local = v4_of(stream.local_addr()?);
    Ok((TcpLink(stream), local))
}

async fn run_dial<L, F, Fut>(
    cfg: SimExporterConfig,
    addr: String,
    mut connect: F,
    mut shutdown: Shutdown,
) -> Result<ExporterReport, SimError>
where
    L: Link,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = io::Result<(L, SocketAddrV4)>>,
{
    let mut sim = Sim::new(cfg);
    let mut failures = 0u32;
    let mut delay = sim.cfg.reconnect_delay;
    loop {
        let attempt = tokio::select! {
            _ = shutdown.requested() => return Ok(sim.report()),
            r = tokio::time::timeout(Duration::from_secs(10), connect()) => r,
        };
        let err = match attempt {
            Ok(Ok((link, local))) => {
                failures = 0;
                match run_connection(&mut sim, &link, Role::Initiator { local }, &mut shutdown)
                    .await
                {
                    ConnEnd::Finished => return Ok(sim.report()),
                    ConnEnd::Lost => {
                        tracing::info!(collector = %addr, "IPDR simulator lost the connection; reconnecting");
                        delay = sim.cfg.reconnect_delay;
                        None
                    }
                }
            }
            Ok(Err(e)) => Some(e),
            Err(_) => Some(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
        };
        if let Some(e) = err {
            failures += 1;
            tracing::warn!(collector = %addr, error = %e, attempt = failures, "IPDR simulator cannot connect");
            if sim.cfg.max_connect_failures.is_some_and(|m| failures >= m) {
                return Err(SimError::Connect {
                    addr,
                    attempts: failures,
                    source: e,
                });
            }
        }
        let now = Instant::now();
        let drain_over = sim.generation_over(now)
            && sim
                .stopped_at
                .is_some_and(|t| now >= t + sim.cfg.drain_timeout);
        if sim.shutdown_requested || drain_over {
            return Ok(sim.report());
        }
        tokio::select! {
            _ = shutdown.requested() => return Ok(sim.report()),
            _ = tokio::time::sleep(delay) => {}
        }
        delay = delay.saturating_mul(2).min(Duration::from_secs(5));
    }
}

async fn run_listening(
    cfg: SimExporterConfig,
    listener: TcpListener,
    mut shutdown: Shutdown,
) -> Result<ExporterReport, SimError> {
    let local = listener.local_addr().map_err(|source| SimError::Bind {
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        source,
    })?;
    let _discovery = if cfg.discovery {
        match UdpSocket::bind(local).await {
            Ok(udp) => {
                let resp = discovery_response(&[(TransportType::TCP, local.port())]);
                Some(AbortOnDrop(tokio::spawn(async move {
                    if let Err(e) = serve_discovery(udp, resp, Shutdown::never()).await {
                        tracing::warn!(error = %e, "IPDR simulator discovery responder failed");
                    }
                })))
            }
            Err(e) => {
                tracing::warn!(addr = %local, error = %e, "IPDR simulator: no UDP version discovery");
                None
            }
        }
    } else {
        None
    };
    tracing::info!(addr = %local, "IPDR simulator listening for collectors");
    let mut sim = Sim::new(cfg);
    loop {
        let now = Instant::now();
        let give_up = sim
            .stopped_at
            .map(|t| t + sim.cfg.drain_timeout)
            .or(sim.stop_generating_at);
        if sim.shutdown_requested || give_up.is_some_and(|t| now >= t) {
            sim.generation_over(now);
            return Ok(sim.report());
        }
        let sleep_until = give_up.unwrap_or(now + FAR);
        let accepted = tokio::select! {
            _ = shutdown.requested() => return Ok(sim.report()),
            _ = tokio::time::sleep_until(sleep_until.into()) => continue,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                tracing::info!(%peer, "IPDR simulator: collector connected");
                let link = TcpLink(stream);
                if run_connection(&mut sim, &link, Role::Responder, &mut shutdown).await
                    == ConnEnd::Finished
                {
                    return Ok(sim.report());
                }
                tracing::info!(%peer, "IPDR simulator lost the collector; waiting for it to reconnect");
            }
            Err(e) => {
                tracing::warn!(error = %e, "IPDR simulator accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipdr::tr232::tr232_printable;
    use ipdr::xdr::{decode_record, Template};

    fn fleet(pairs: usize) -> DeviceFleet {
        SimExporterConfig {
            pairs,
            devices: 7,
            ..SimExporterConfig::default()
        }
        .fleet()
    }

    #[test]
    fn fast_encoder_matches_report_encoder_and_template() {
        for layout in [BulkDataLayout::Structured, BulkDataLayout::Flattened] {
            for pairs in [0, 1, 20, 23] {
                let f = fleet(pairs);
                let t = Template::new(tr232_template(layout, pairs)).unwrap();
                for i in [0u64, 1, 6, 7, 1000] {
                    let r = f.report(i, 1_700_000_000_123);
                    let (mut a, mut b) = (Vec::new(), Vec::new());
                    r.encode(layout, &mut a);
                    f.encode_report(i, 1_700_000_000_123, layout, &mut b);
                    assert_eq!(a, b, "layout {layout:?} pairs {pairs} report {i}");
                    let fields = decode_record(&t, &a).unwrap();
                    assert_eq!(BulkDataReport::from_fields(&fields).unwrap(), r);
                    for (_, v) in &r.bulk_data {
                        assert_eq!(&tr232_printable(v), v);
                    }
                }
            }
        }
    }

    #[test]
    fn reports_are_deterministic_and_counters_grow() {
        let f = fleet(20);
        assert_eq!(f.report(3, 0), f.report(3, 0));
        let r0 = f.report(2, 0);
        let r1 = f.report(2 + 7, 0);
        assert_eq!(r0.serial_number, r1.serial_number);
        assert_eq!(r0.serial_number, "SIM00000002");
        let n = |r: &BulkDataReport, k: usize| r.bulk_data[k].1.parse::<u64>().unwrap();
        assert!(n(&r1, 0) > n(&r0, 0), "uptime grows");
        assert!(n(&r1, 5) > n(&r0, 5), "BytesSent grows");
        assert_eq!(r0.bulk_data.len(), 20);
        assert_eq!(
            r0.bulk_data[19].0,
            "Device.IP.Interface.1.IPv4Address.1.IPAddress"
        );
    }
}
