//! One simulated CPE: identity, parameter tree, pending events, queued
//! transfers, deployment units, and the behaviour behind every CPE method.
//!
//! Everything here is synchronous and clock-free: callers pass `now`, and
//! work that a real device does *after* the session (reboot, transfers,
//! scheduled informs, DU changes) is returned as [`Effect`]s for the I/O
//! runner, which reports results back through [`CpeDevice::complete_transfer`],
//! [`CpeDevice::reboot`] and friends.

use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};

use super::gateway::DeviceIdentity;
use super::tree::{ParamTree, ReadCtx};
use super::SplitMix64;
use acs::codec::*;

/// Methods the simulated CPE implements (GetRPCMethodsResponse): all of them.
pub use acs::codec::CPE_METHODS;

/// Most transfers a CPE queues (XSD `TransferList` maxOccurs).
const MAX_TRANSFERS: usize = 16;
/// Most events in one Inform (XSD).
const MAX_EVENTS: usize = 64;
/// Lines kept for the simulated "Vendor Log File".
const LOG_LINES: usize = 20;

const MS: &str = "Device.ManagementServer.";
const EXEC_ENV: &str = "Device.SoftwareModules.ExecEnv.1";
const DU_TABLE: &str = "Device.SoftwareModules.DeploymentUnit.";
const EU_TABLE: &str = "Device.SoftwareModules.ExecutionUnit.";

/// Deployment-specific settings: applied on creation and again after a
/// factory reset (they model the device's factory/bootstrap configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSettings {
    /// `ManagementServer.URL`.
    pub acs_url: String,
    /// `ManagementServer.Username`/`Password` (CPE → ACS HTTP auth).
    pub username: String,
    pub password: String,
    /// `ManagementServer.ConnectionRequestUsername`/`Password`.
    pub cr_username: String,
    pub cr_password: String,
    pub periodic_inform_enable: bool,
    /// `ManagementServer.PeriodicInformInterval` in seconds (≥ 1).
    pub periodic_inform_interval: u32,
    /// Emit booleans as `1`/`0`.
    pub boolean_digits: bool,
    /// Namespace of the Inform, normally `urn:dslforum-org:cwmp-1-2`.
    pub cwmp_ns: String,
    /// `SupportedCWMPVersions` header (a CWMP 1.4 CPE); `None` for a 1.0–1.3 CPE.
    pub supported_cwmp_versions: Option<String>,
    /// `SessionTimeout` header (CWMP 1.3+).
    pub session_timeout: Option<u32>,
}

impl Default for DeviceSettings {
    fn default() -> Self {
        DeviceSettings {
            acs_url: "http://127.0.0.1:7547/".into(),
            username: String::new(),
            password: String::new(),
            cr_username: String::new(),
            cr_password: String::new(),
            periodic_inform_enable: true,
            periodic_inform_interval: 86400,
            boolean_digits: false,
            cwmp_ns: CWMP_NS_1_2.into(),
            supported_cwmp_versions: Some("1.0,1.1,1.2,1.3,1.4".into()),
            session_timeout: Some(60),
        }
    }
}

/// Which RPC queued a transfer (its completion event is `M <method>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferKind {
    Download,
    ScheduleDownload,
    Upload,
}

impl TransferKind {
    fn method(self) -> &'static str {
        match self {
            TransferKind::Download => "Download",
            TransferKind::ScheduleDownload => "ScheduleDownload",
            TransferKind::Upload => "Upload",
        }
    }
    pub fn is_download(self) -> bool {
        !matches!(self, TransferKind::Upload)
    }
}

/// Queued-transfer state as in `QueuedTransferStruct.State`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferState {
    NotStarted = 1,
    InProgress = 2,
    Completed = 3,
}

/// A transfer the ACS asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Transfer {
    pub id: u64,
    pub kind: TransferKind,
    pub command_key: String,
    pub file_type: String,
    pub url: String,
    pub username: String,
    pub password: String,
    pub file_size: u32,
    pub target_file_name: String,
    /// Seconds after the session ends before the transfer may start.
    pub delay_seconds: u32,
    pub state: TransferState,
}

/// What the runner needs to carry out one transfer.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferJob {
    pub id: u64,
    pub kind: TransferKind,
    pub file_type: String,
    pub url: String,
    pub username: String,
    pub password: String,
    /// Expected size (0 = unknown), downloads only.
    pub file_size: u32,
    /// The bytes to PUT, uploads only.
    pub body: Vec<u8>,
}

/// How a transfer ended, as the runner observed it.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferOutcome {
    /// 0 on success, else a TransferComplete fault code (9010, 9015, …).
    pub fault_code: u32,
    pub fault_string: String,
    pub start_time: DateTime<Utc>,
    pub complete_time: DateTime<Utc>,
}

impl TransferOutcome {
    pub fn success(start_time: DateTime<Utc>, complete_time: DateTime<Utc>) -> Self {
        TransferOutcome {
            fault_code: 0,
            fault_string: String::new(),
            start_time,
            complete_time,
        }
    }
    pub fn failure(
        code: u32,
        msg: impl Into<String>,
        start_time: DateTime<Utc>,
        complete_time: DateTime<Utc>,
    ) -> Self {
        TransferOutcome {
            fault_code: code,
            fault_string: msg.into(),
            start_time,
            complete_time,
        }
    }
}

/// A request the CPE sends to the ACS after the InformResponse.
#[derive(Debug, Clone, PartialEq)]
pub enum PendingRequest {
    TransferComplete { id: u64, rpc: TransferComplete },
    DUStateChangeComplete { id: u64, rpc: DUStateChangeComplete },
}

impl PendingRequest {
    pub fn id(&self) -> u64 {
        match self {
            PendingRequest::TransferComplete { id, .. }
            | PendingRequest::DUStateChangeComplete { id, .. } => *id,
        }
    }
    pub fn to_rpc(&self) -> Rpc {
        match self {
            PendingRequest::TransferComplete { rpc, .. } => Rpc::TransferComplete(rpc.clone()),
            PendingRequest::DUStateChangeComplete { rpc, .. } => {
                Rpc::DUStateChangeComplete(rpc.clone())
            }
        }
    }
    /// Whether `resp` is the response that delivers this request.
    pub fn is_answered_by(&self, resp: &Rpc) -> bool {
        matches!(
            (self, resp),
            (
                PendingRequest::TransferComplete { .. },
                Rpc::TransferCompleteResponse(_)
            ) | (
                PendingRequest::DUStateChangeComplete { .. },
                Rpc::DUStateChangeCompleteResponse(_)
            )
        )
    }
}

/// One accepted ChangeDUState operation list waiting to be applied.
#[derive(Debug, Clone, PartialEq)]
pub struct DuOp {
    pub id: u64,
    pub command_key: Option<String>,
    pub operations: Vec<OperationStruct>,
}

/// Work for the I/O runner once the session is over.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Reboot, then call [`CpeDevice::reboot`] with the CommandKey.
    Reboot { command_key: String },
    /// Reset, then call [`CpeDevice::factory_reset`].
    FactoryReset,
    /// After `delay_seconds`, call [`CpeDevice::begin_transfer`] and carry it out.
    Transfer { id: u64, delay_seconds: u32 },
    /// After `delay_seconds`, call [`CpeDevice::scheduled_inform`].
    ScheduleInform {
        delay_seconds: u32,
        command_key: String,
    },
    /// Call [`CpeDevice::apply_du_change`] (installs take "a moment").
    ChangeDuState { id: u64 },
    /// Periodic inform settings changed: recompute the periodic timer.
    PeriodicInformChanged,
    /// `ManagementServer.URL` changed: the next session goes to the new URL
    /// with `0 BOOTSTRAP`.
    AcsUrlChanged { url: String },
}

/// One simulated device.
#[derive(Debug, Clone)]
pub struct CpeDevice {
    pub identity: DeviceIdentity,
    pub settings: DeviceSettings,
    pub tree: ParamTree,
    boot_time: DateTime<Utc>,
    /// Pending events with the sequence number they were raised at.
    events: Vec<(EventStruct, u64)>,
    seq: u64,
    /// Event mark of the Inform of the session in progress.
    in_flight: Option<u64>,
    /// Pending requests with the sequence number they were raised at.
    requests: VecDeque<(PendingRequest, u64)>,
    transfers: Vec<Transfer>,
    du_ops: Vec<DuOp>,
    /// Names of parameters changed locally with notification 1/2, not yet informed.
    value_changes: Vec<(String, u64)>,
    retry_count: u32,
    effects: Vec<Effect>,
    next_id: u64,
    msg_id: u64,
    rng: SplitMix64,
    log: VecDeque<String>,
    cr_url: String,
    udp_cr_address: String,
}

fn is_valid_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn url_scheme_ok(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

fn url_has_userinfo(url: &str) -> bool {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority.contains('@')
}

/// The "version-ish" part of a file URL: `…/hgw-1000-2.4.1.bin` → `2.4.1`,
/// `app-1.0.ipk` → `1.0`; the file stem when it has no dotted number.
pub fn version_from_url(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let file = path.rsplit('/').next().unwrap_or(path);
    let bytes = file.as_bytes();
    let mut runs: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            runs.push(file[start..i].trim_end_matches('.'));
        } else {
            i += 1;
        }
    }
    if let Some(v) = runs.iter().rev().find(|r| r.contains('.')) {
        return (*v).to_string();
    }
    if let Some(v) = runs.last() {
        return (*v).to_string();
    }
    let stem = file.split('.').next().unwrap_or(file);
    if stem.is_empty() {
        "unknown".into()
    } else {
        stem.chars().take(32).collect()
    }
}

fn file_name_of(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split('.').next().unwrap_or(file);
    if stem.is_empty() {
        "package".into()
    } else {
        stem.to_string()
    }
}

fn is_numbered_event(code: &str) -> bool {
    code.as_bytes().first().is_some_and(|b| b.is_ascii_digit())
}

impl CpeDevice {
    /// A factory-fresh device: TR-181 gateway tree, settings applied,
    /// pending `0 BOOTSTRAP` + `1 BOOT`.
    pub fn new(identity: DeviceIdentity, settings: DeviceSettings, now: DateTime<Utc>) -> Self {
        let tree = ParamTree::tr181_gateway(
            &identity.serial_number,
            &identity.oui,
            &identity.product_class,
            identity.seed,
        );
        let rng = SplitMix64::new(identity.seed.rotate_left(17) ^ 0x5eed);
        let mut d = CpeDevice {
            identity,
            settings,
            tree,
            boot_time: now,
            events: Vec::new(),
            seq: 0,
            in_flight: None,
            requests: VecDeque::new(),
            transfers: Vec::new(),
            du_ops: Vec::new(),
            value_changes: Vec::new(),
            retry_count: 0,
            effects: Vec::new(),
            next_id: 1,
            msg_id: 0,
            rng,
            log: VecDeque::new(),
            cr_url: String::new(),
            udp_cr_address: String::new(),
        };
        d.apply_settings();
        d.add_event("0 BOOTSTRAP", "");
        d.add_event("1 BOOT", "");
        d.log_line(now, "system booted (factory defaults)");
        d
    }

    fn apply_settings(&mut self) {
        let s = self.settings.clone();
        let t = &mut self.tree;
        t.set_local(&format!("{MS}URL"), s.acs_url);
        t.set_local(&format!("{MS}Username"), s.username);
        t.set_local(&format!("{MS}Password"), s.password);
        t.set_local(&format!("{MS}ConnectionRequestUsername"), s.cr_username);
        t.set_local(&format!("{MS}ConnectionRequestPassword"), s.cr_password);
        t.set_local(
            &format!("{MS}PeriodicInformEnable"),
            if s.periodic_inform_enable {
                "true"
            } else {
                "false"
            },
        );
        t.set_local(
            &format!("{MS}PeriodicInformInterval"),
            s.periodic_inform_interval.max(1).to_string(),
        );
        let (cr, udp) = (self.cr_url.clone(), self.udp_cr_address.clone());
        self.tree
            .set_local(&format!("{MS}ConnectionRequestURL"), cr);
        self.tree
            .set_local(&format!("{MS}UDPConnectionRequestAddress"), udp);
    }

    fn log_line(&mut self, now: DateTime<Utc>, msg: &str) {
        if self.log.len() >= LOG_LINES {
            self.log.pop_front();
        }
        self.log
            .push_back(format!("{} {}", format_datetime(&now), msg));
    }

    /// The device id the ACS will derive (`OUI-ProductClass-Serial`, escaped).
    pub fn device_id(&self) -> DeviceIdStruct {
        DeviceIdStruct {
            manufacturer: self
                .tree
                .get("Device.DeviceInfo.Manufacturer")
                .unwrap_or_default()
                .to_string(),
            oui: self.identity.oui.clone(),
            product_class: self.identity.product_class.clone(),
            serial_number: self.identity.serial_number.clone(),
        }
    }

    fn fresh_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// A new `cwmp:ID` for a request this device sends.
    pub fn next_message_id(&mut self) -> String {
        self.msg_id += 1;
        format!("cpe-{}", self.msg_id)
    }

    /// Current `xsd:dateTime`-relevant read context.
    pub fn read_ctx(&self, now: DateTime<Utc>) -> ReadCtx {
        ReadCtx {
            now,
            uptime_secs: (now - self.boot_time).num_seconds().max(0) as u64,
            boolean_digits: self.settings.boolean_digits,
        }
    }

    // -----------------------------------------------------------------
    // Endpoints, credentials, timers
    // -----------------------------------------------------------------

    /// Records where the CR listeners are (set before the first Inform;
    /// not a value change).
    pub fn set_connection_request_endpoints(&mut self, cr_url: &str, udp_address: &str) {
        self.cr_url = cr_url.to_string();
        self.udp_cr_address = udp_address.to_string();
        self.tree
            .set_local(&format!("{MS}ConnectionRequestURL"), cr_url);
        self.tree
            .set_local(&format!("{MS}UDPConnectionRequestAddress"), udp_address);
    }

    /// `ManagementServer.URL`.
    pub fn acs_url(&self) -> String {
        self.ms("URL")
    }

    fn ms(&self, name: &str) -> String {
        self.tree
            .get(&format!("{MS}{name}"))
            .unwrap_or_default()
            .to_string()
    }

    /// `(Username, Password)` for HTTP auth towards the ACS.
    pub fn acs_credentials(&self) -> (String, String) {
        (self.ms("Username"), self.ms("Password"))
    }

    /// `(ConnectionRequestUsername, ConnectionRequestPassword)`.
    pub fn cr_credentials(&self) -> (String, String) {
        (
            self.ms("ConnectionRequestUsername"),
            self.ms("ConnectionRequestPassword"),
        )
    }

    /// Periodic inform interval, if periodic informs are enabled.
    pub fn periodic_interval(&self) -> Option<u32> {
        if self.ms("PeriodicInformEnable") != "true" {
            return None;
        }
        self.ms("PeriodicInformInterval")
            .parse()
            .ok()
            .filter(|&n| n > 0)
    }

    /// When the next periodic inform is due, given the previous one (or the
    /// boot). Honours `PeriodicInformTime` as the phase reference when set.
    pub fn next_periodic_inform(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let interval = self.periodic_interval()? as i64;
        let reference = parse_datetime_lenient(&self.ms("PeriodicInformTime"))
            .filter(|t| t.format("%Y").to_string() != "0001");
        match reference {
            Some(r) => {
                let diff = (after - r).num_seconds();
                let k = diff.div_euclid(interval) + 1;
                Some(r + Duration::seconds(k * interval))
            }
            None => Some(after + Duration::seconds(interval)),
        }
    }

    /// Back-off before retry `n` (= the current RetryCount, ≥ 1) of a failed
    /// session, per TR-069 §3.2.1.1: uniformly random in
    /// `[m·(k/1000)^(n-1), m·(k/1000)^n]` seconds, exponent capped at 10.
    pub fn retry_delay_secs(&mut self) -> f64 {
        let m: f64 = self
            .ms("CWMPRetryMinimumWaitInterval")
            .parse()
            .unwrap_or(5.0);
        let k: f64 = self
            .ms("CWMPRetryIntervalMultiplier")
            .parse::<f64>()
            .unwrap_or(2000.0)
            / 1000.0;
        let n = self.retry_count.clamp(1, 10) as i32;
        let lo = m * k.powi(n - 1);
        let hi = m * k.powi(n);
        let r = (self.rng.next() >> 11) as f64 / (1u64 << 53) as f64;
        lo + (hi - lo) * r
    }

    pub fn retry_count(&self) -> u32 {
        self.retry_count
    }

    // -----------------------------------------------------------------
    // Events
    // -----------------------------------------------------------------

    /// Queues an event. Numbered events are single (kept once), `M …`/`X …`
    /// events are cumulative (one per originating call). An event raised
    /// after the running session's Inform was built is kept separately, so
    /// that Inform's delivery does not swallow it (it opens a new session).
    pub fn add_event(&mut self, code: &str, command_key: &str) {
        let floor = self.in_flight.unwrap_or(0);
        if is_numbered_event(code)
            && self
                .events
                .iter()
                .any(|(e, seq)| e.event_code == code && (*seq > floor || self.in_flight.is_none()))
        {
            return;
        }
        if self.events.len() >= MAX_EVENTS {
            return;
        }
        self.seq += 1;
        self.events
            .push((EventStruct::new(code, command_key), self.seq));
    }

    /// Pending events, oldest first.
    pub fn pending_events(&self) -> Vec<EventStruct> {
        let mut out: Vec<EventStruct> = Vec::with_capacity(self.events.len());
        for (e, _) in &self.events {
            if is_numbered_event(&e.event_code) && out.iter().any(|o| o.event_code == e.event_code)
            {
                continue;
            }
            out.push(e.clone());
        }
        out
    }

    /// Marks the events and value changes that exist now: an Inform built
    /// now carries exactly these. See [`CpeDevice::inform_delivered`].
    pub fn event_mark(&self) -> u64 {
        self.seq
    }

    /// A session is starting; returns the [`event_mark`](Self::event_mark)
    /// of its Inform.
    pub fn session_started(&mut self) -> u64 {
        self.in_flight = Some(self.seq);
        self.seq
    }

    /// Pending CPE requests (TransferComplete, DUStateChangeComplete).
    pub fn pending_requests(&self) -> impl Iterator<Item = &PendingRequest> {
        self.requests.iter().map(|(r, _)| r)
    }

    /// Pending requests a session whose Inform was built at `mark` may
    /// send: those whose events that Inform announced. Newer ones wait for
    /// the next session, so their `7 TRANSFER COMPLETE`/`M …` events are
    /// informed before the request is.
    pub fn requests_for(&self, mark: u64) -> impl Iterator<Item = &PendingRequest> {
        self.requests
            .iter()
            .filter(move |(_, seq)| *seq <= mark)
            .map(|(r, _)| r)
    }

    fn push_request(&mut self, r: PendingRequest) {
        self.seq += 1;
        self.requests.push_back((r, self.seq));
    }

    /// True if the device has something to tell the ACS.
    /// False while `ManagementServer.EnableCWMP` is false.
    pub fn wants_session(&self) -> bool {
        (!self.events.is_empty() || !self.requests.is_empty()) && self.ms("EnableCWMP") != "false"
    }

    /// A Connection Request was accepted (HTTP or UDP).
    pub fn connection_request(&mut self) {
        self.add_event("6 CONNECTION REQUEST", "");
    }

    /// The periodic inform timer fired.
    pub fn periodic_inform(&mut self) {
        self.add_event("2 PERIODIC", "");
    }

    /// A ScheduleInform timer fired.
    pub fn scheduled_inform(&mut self, command_key: &str) {
        self.add_event("3 SCHEDULED", "");
        self.add_event("M ScheduleInform", command_key);
    }

    /// A local (non-ACS) change of a parameter. Returns true when it has
    /// active notification, i.e. the device should open a session now.
    pub fn set_param_local(&mut self, path: &str, value: &str) -> bool {
        match self.tree.set_local(path, value) {
            Some(n @ 1..=2) => {
                self.value_changes.retain(|(p, _)| p != path);
                self.add_event("4 VALUE CHANGE", "");
                self.seq += 1;
                self.value_changes.push((path.to_string(), self.seq));
                n == 2
            }
            _ => false,
        }
    }

    /// The Inform for a new session (events and parameters as of `now`).
    pub fn build_inform(&self, now: DateTime<Utc>) -> Inform {
        let ctx = self.read_ctx(now);
        let mut parameter_list: Vec<ParameterValueStruct> = Vec::new();
        for (name, p) in self.tree.params() {
            if p.meta.forced_inform || self.value_changes.iter().any(|(c, _)| *c == name) {
                parameter_list.push(ParameterValueStruct::new(
                    name,
                    self.tree.read_value(p, &ctx),
                    p.meta.ty.xsi_type(),
                ));
            }
        }
        Inform {
            device_id: self.device_id(),
            event: self.pending_events(),
            max_envelopes: 1,
            current_time: format_datetime(&now),
            retry_count: self.retry_count,
            parameter_list,
        }
    }

    /// The InformResponse arrived for an Inform built at `mark`: the events
    /// and value changes it carried are delivered. Transfer and DU
    /// completion events stay until their completion RPC is answered.
    pub fn inform_delivered(&mut self, mark: u64) {
        let keep = |e: &EventStruct| {
            matches!(
                e.event_code.as_str(),
                "7 TRANSFER COMPLETE"
                    | "M Download"
                    | "M Upload"
                    | "M ScheduleDownload"
                    | "11 DU STATE CHANGE COMPLETE"
                    | "M ChangeDUState"
            )
        };
        self.events.retain(|(e, seq)| *seq > mark || keep(e));
        self.value_changes.retain(|(_, seq)| *seq > mark);
    }

    /// The ACS acknowledged a pending request: drop it and its events.
    pub fn request_delivered(&mut self, id: u64) {
        let Some(pos) = self.requests.iter().position(|(r, _)| r.id() == id) else {
            return;
        };
        let (req, _) = self.requests.remove(pos).expect("position is valid");
        let remove_one = |events: &mut Vec<(EventStruct, u64)>, code: &str, ck: &str| {
            if let Some(i) = events
                .iter()
                .position(|(e, _)| e.event_code == code && e.command_key == ck)
            {
                events.remove(i);
            }
        };
        match req {
            PendingRequest::TransferComplete { id, rpc } => {
                let method = self
                    .transfers
                    .iter()
                    .find(|t| t.id == id)
                    .map(|t| t.kind.method())
                    .unwrap_or("Download");
                remove_one(&mut self.events, &format!("M {method}"), &rpc.command_key);
                self.transfers.retain(|t| t.id != id);
                if !self
                    .requests
                    .iter()
                    .any(|(r, _)| matches!(r, PendingRequest::TransferComplete { .. }))
                {
                    self.events
                        .retain(|(e, _)| e.event_code != "7 TRANSFER COMPLETE");
                }
            }
            PendingRequest::DUStateChangeComplete { rpc, .. } => {
                remove_one(
                    &mut self.events,
                    "M ChangeDUState",
                    rpc.command_key.as_deref().unwrap_or(""),
                );
                if !self
                    .requests
                    .iter()
                    .any(|(r, _)| matches!(r, PendingRequest::DUStateChangeComplete { .. }))
                {
                    self.events
                        .retain(|(e, _)| e.event_code != "11 DU STATE CHANGE COMPLETE");
                }
            }
        }
    }

    /// Called by [`CpeSession`](super::CpeSession) when a session ends;
    /// returns the work to do now. A failed session bumps RetryCount.
    pub fn session_ended(&mut self, success: bool, now: DateTime<Utc>) -> Vec<Effect> {
        self.in_flight = None;
        if success {
            self.retry_count = 0;
            self.log_line(now, "cwmp: session completed");
        } else {
            self.retry_count = self.retry_count.saturating_add(1);
            self.log_line(now, "cwmp: session failed");
        }
        std::mem::take(&mut self.effects)
    }

    // -----------------------------------------------------------------
    // Lifecycle effects, applied by the runner
    // -----------------------------------------------------------------

    /// The device rebooted (after a Reboot RPC when `command_key` is given).
    pub fn reboot(&mut self, now: DateTime<Utc>, command_key: Option<&str>) {
        self.boot_time = now;
        self.add_event("1 BOOT", "");
        if let Some(ck) = command_key {
            self.add_event("M Reboot", ck);
        }
        // Transfers that were running are lost; not-started ones persist.
        self.transfers
            .retain(|t| t.state != TransferState::InProgress);
        self.log_line(now, "system rebooted");
    }

    /// The device reset to factory defaults and rebooted.
    pub fn factory_reset(&mut self, now: DateTime<Utc>) {
        self.tree = ParamTree::tr181_gateway(
            &self.identity.serial_number,
            &self.identity.oui,
            &self.identity.product_class,
            self.identity.seed,
        );
        self.apply_settings();
        self.events.clear();
        self.requests.clear();
        self.transfers.clear();
        self.du_ops.clear();
        self.value_changes.clear();
        self.retry_count = 0;
        self.boot_time = now;
        self.log.clear();
        self.add_event("0 BOOTSTRAP", "");
        self.add_event("1 BOOT", "");
        self.log_line(now, "factory reset");
    }

    /// Starts a queued transfer. `None` if it was cancelled meanwhile.
    pub fn begin_transfer(&mut self, id: u64, now: DateTime<Utc>) -> Option<TransferJob> {
        let t = self
            .transfers
            .iter_mut()
            .find(|t| t.id == id && t.state == TransferState::NotStarted)?;
        t.state = TransferState::InProgress;
        let t = t.clone();
        let body = if t.kind == TransferKind::Upload {
            self.upload_content(&t.file_type, now)
        } else {
            Vec::new()
        };
        Some(TransferJob {
            id,
            kind: t.kind,
            file_type: t.file_type,
            url: t.url,
            username: t.username,
            password: t.password,
            file_size: t.file_size,
            body,
        })
    }

    /// The file the device uploads for an Upload FileType.
    pub fn upload_content(&self, file_type: &str, now: DateTime<Utc>) -> Vec<u8> {
        if file_type.contains("Log File") {
            let mut s = String::new();
            for l in &self.log {
                s.push_str(l);
                s.push('\n');
            }
            s.push_str(&format!("{} upload requested\n", format_datetime(&now)));
            return s.into_bytes();
        }
        // Configuration: every writable, non-hidden parameter.
        let ctx = self.read_ctx(now);
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<config>\n");
        for (name, p) in self.tree.params() {
            if p.meta.writable && !p.meta.hidden {
                let v = self.tree.read_value(p, &ctx);
                let v = v
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('"', "&quot;");
                s.push_str(&format!("  <param name=\"{name}\">{v}</param>\n"));
            }
        }
        s.push_str("</config>\n");
        s.into_bytes()
    }

    /// A transfer finished: queue TransferComplete with the events
    /// `7 TRANSFER COMPLETE` and `M <method>`. A successful firmware image is "installed": the
    /// SoftwareVersion changes and the device reboots (`1 BOOT`).
    pub fn complete_transfer(&mut self, id: u64, outcome: TransferOutcome, now: DateTime<Utc>) {
        let Some(t) = self.transfers.iter_mut().find(|t| t.id == id) else {
            return;
        };
        t.state = TransferState::Completed;
        let t = t.clone();
        if outcome.fault_code == 0 && t.kind.is_download() && t.file_type.starts_with("1 ") {
            let v = version_from_url(&t.url);
            self.tree
                .set_local("Device.DeviceInfo.SoftwareVersion", v.clone());
            self.boot_time = now;
            self.add_event("1 BOOT", "");
            self.log_line(now, &format!("firmware {v} installed, rebooted"));
        } else if outcome.fault_code == 0 && t.kind.is_download() && t.file_type.starts_with("3 ") {
            self.log_line(now, "vendor configuration file applied");
        }
        self.add_event("7 TRANSFER COMPLETE", "");
        self.add_event(&format!("M {}", t.kind.method()), &t.command_key);
        self.push_request(PendingRequest::TransferComplete {
            id,
            rpc: TransferComplete {
                command_key: t.command_key.clone(),
                fault_struct: FaultStruct {
                    fault_code: outcome.fault_code,
                    fault_string: outcome.fault_string,
                },
                start_time: format_datetime(&outcome.start_time),
                complete_time: format_datetime(&outcome.complete_time),
            },
        });
    }

    /// Queued transfers, for inspection.
    pub fn transfers(&self) -> &[Transfer] {
        &self.transfers
    }

    /// Applies an accepted ChangeDUState and queues DUStateChangeComplete
    /// with `11 DU STATE CHANGE COMPLETE` + `M ChangeDUState`.
    pub fn apply_du_change(&mut self, id: u64, now: DateTime<Utc>) {
        let Some(pos) = self.du_ops.iter().position(|o| o.id == id) else {
            return;
        };
        let op = self.du_ops.remove(pos);
        let mut results = Vec::new();
        for o in &op.operations {
            match o {
                OperationStruct::Install(i) => results.push(self.du_install(i, now)),
                OperationStruct::Update(u) => results.extend(self.du_update(u, now)),
                OperationStruct::Uninstall(u) => results.push(self.du_uninstall(u, now)),
            }
        }
        let ck = op.command_key.clone().unwrap_or_default();
        self.add_event("11 DU STATE CHANGE COMPLETE", "");
        self.add_event("M ChangeDUState", &ck);
        self.push_request(PendingRequest::DUStateChangeComplete {
            id,
            rpc: DUStateChangeComplete {
                results,
                command_key: op.command_key,
            },
        });
    }

    fn du_failed(uuid: &str, code: u32, msg: &str, now: DateTime<Utc>) -> OpResultStruct {
        OpResultStruct {
            uuid: uuid.to_string(),
            deployment_unit_ref: String::new(),
            version: String::new(),
            current_state: "Failed".into(),
            resolved: false,
            execution_unit_ref_list: String::new(),
            start_time: format_datetime(&now),
            complete_time: format_datetime(&now),
            fault: FaultStruct {
                fault_code: code,
                fault_string: msg.into(),
            },
        }
    }

    fn find_du(&self, uuid: Option<&str>, version: Option<&str>, url: Option<&str>) -> Vec<u32> {
        self.tree
            .instances(DU_TABLE)
            .into_iter()
            .filter(|n| {
                let get = |f: &str| {
                    self.tree
                        .get(&format!("{DU_TABLE}{n}.{f}"))
                        .unwrap_or_default()
                        .to_string()
                };
                (uuid.is_none() || uuid.is_some_and(|u| get("UUID").eq_ignore_ascii_case(u)))
                    && (version.is_none() || version == Some(get("Version").as_str()))
                    && (url.is_none() || url == Some(get("URL").as_str()))
            })
            .collect()
    }

    fn gen_uuid(&mut self) -> String {
        let a = self.rng.next();
        let b = self.rng.next();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            (a >> 32) as u32,
            (a >> 16) as u16,
            (a as u16) & 0x0fff,
            ((b >> 48) as u16 & 0x3fff) | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }

    fn du_install(&mut self, op: &InstallOpStruct, now: DateTime<Utc>) -> OpResultStruct {
        let uuid_in = op.uuid.clone().filter(|u| !u.is_empty());
        let shown = uuid_in.clone().unwrap_or_default();
        if let Some(ee) = op.execution_env_ref.as_deref().filter(|e| !e.is_empty()) {
            if ee.trim_end_matches('.') != EXEC_ENV {
                return Self::du_failed(&shown, 9023, "Unknown Execution Environment", now);
            }
        }
        if op.url.is_empty() {
            return Self::du_failed(&shown, 9003, "Invalid arguments: empty URL", now);
        }
        if !url_scheme_ok(&op.url) {
            return Self::du_failed(&shown, 9013, "Unsupported protocol for file transfer", now);
        }
        if let Some(u) = &uuid_in {
            if !self.find_du(Some(u), None, None).is_empty() {
                return Self::du_failed(u, 9026, "Duplicate Deployment Unit", now);
            }
        }
        let uuid = uuid_in.unwrap_or_else(|| self.gen_uuid());
        let version = version_from_url(&op.url);
        let name = file_name_of(&op.url);
        let now_s = format_datetime(&now);
        let Some(eu) = self.tree.create_instance(EU_TABLE) else {
            return Self::du_failed(&uuid, 9027, "System resources exceeded", now);
        };
        let Some(du) = self.tree.create_instance(DU_TABLE) else {
            return Self::du_failed(&uuid, 9027, "System resources exceeded", now);
        };
        let eu_path = format!("{EU_TABLE}{eu}");
        let du_path = format!("{DU_TABLE}{du}");
        for (f, v) in [
            ("EUID", format!("eu{eu}")),
            ("Name", name.clone()),
            ("ExecEnvLabel", name.clone()),
            ("Status", "Active".into()),
            ("RequestedState", "Active".into()),
            ("Vendor", "Keelson".into()),
            ("Version", version.clone()),
            ("Description", format!("{name} service")),
            ("ExecutionEnvRef", EXEC_ENV.into()),
        ] {
            self.tree.set_local(&format!("{eu_path}.{f}"), v);
        }
        for (f, v) in [
            ("UUID", uuid.clone()),
            ("DUID", format!("du{du}")),
            ("Name", name.clone()),
            ("Status", "Installed".into()),
            ("Resolved", "true".into()),
            ("URL", op.url.clone()),
            ("Description", format!("{name} package")),
            ("Vendor", "Keelson".into()),
            ("Version", version.clone()),
            ("ExecutionUnitList", eu_path.clone()),
            ("ExecutionEnvRef", EXEC_ENV.into()),
            ("Installed", now_s.clone()),
            ("LastUpdate", now_s.clone()),
        ] {
            self.tree.set_local(&format!("{du_path}.{f}"), v);
        }
        self.refresh_active_eus();
        self.log_line(now, &format!("du: installed {name} {version}"));
        OpResultStruct {
            uuid,
            deployment_unit_ref: du_path,
            version,
            current_state: "Installed".into(),
            resolved: true,
            execution_unit_ref_list: eu_path,
            start_time: now_s.clone(),
            complete_time: now_s,
            fault: FaultStruct::default(),
        }
    }

    fn du_update(&mut self, op: &UpdateOpStruct, now: DateTime<Utc>) -> Vec<OpResultStruct> {
        let uuid = op.uuid.as_deref().filter(|u| !u.is_empty());
        let url = op.url.as_deref().filter(|u| !u.is_empty());
        let version = op.version.as_deref().filter(|v| !v.is_empty());
        let targets = match (uuid, url) {
            (Some(u), _) => self.find_du(Some(u), version, None),
            (None, Some(l)) => self.find_du(None, version, Some(l)),
            (None, None) => self.find_du(None, version, None),
        };
        if targets.is_empty() {
            return vec![Self::du_failed(
                uuid.unwrap_or(""),
                9028,
                "Unknown Deployment Unit",
                now,
            )];
        }
        if let Some(l) = url {
            if !url_scheme_ok(l) {
                return vec![Self::du_failed(
                    uuid.unwrap_or(""),
                    9013,
                    "Unsupported protocol for file transfer",
                    now,
                )];
            }
        }
        let now_s = format_datetime(&now);
        let mut out = Vec::new();
        for n in targets {
            let base = format!("{DU_TABLE}{n}.");
            let get = |t: &ParamTree, f: &str| {
                t.get(&format!("{base}{f}")).unwrap_or_default().to_string()
            };
            let du_uuid = get(&self.tree, "UUID");
            let cur_version = get(&self.tree, "Version");
            let eus = get(&self.tree, "ExecutionUnitList");
            let new_version = match url {
                Some(l) => {
                    let v = version_from_url(l);
                    if v == cur_version {
                        out.push(Self::du_failed(
                            &du_uuid,
                            9032,
                            "Invalid DU update: version already exists",
                            now,
                        ));
                        continue;
                    }
                    self.tree.set_local(&format!("{base}URL"), l);
                    v
                }
                None => cur_version.clone(),
            };
            self.tree
                .set_local(&format!("{base}Version"), new_version.clone());
            self.tree
                .set_local(&format!("{base}LastUpdate"), now_s.clone());
            for eu in eus.split(',').filter(|s| !s.is_empty()) {
                self.tree
                    .set_local(&format!("{eu}.Version"), new_version.clone());
            }
            self.log_line(now, &format!("du: updated {du_uuid} to {new_version}"));
            out.push(OpResultStruct {
                uuid: du_uuid,
                deployment_unit_ref: base.trim_end_matches('.').to_string(),
                version: new_version,
                current_state: "Installed".into(),
                resolved: true,
                execution_unit_ref_list: eus,
                start_time: now_s.clone(),
                complete_time: now_s.clone(),
                fault: FaultStruct::default(),
            });
        }
        out
    }

    fn du_uninstall(&mut self, op: &UninstallOpStruct, now: DateTime<Utc>) -> OpResultStruct {
        if let Some(ee) = op.execution_env_ref.as_deref().filter(|e| !e.is_empty()) {
            if ee.trim_end_matches('.') != EXEC_ENV {
                return Self::du_failed(&op.uuid, 9023, "Unknown Execution Environment", now);
            }
        }
        let version = op.version.as_deref().filter(|v| !v.is_empty());
        let Some(&n) = self.find_du(Some(&op.uuid), version, None).first() else {
            return Self::du_failed(&op.uuid, 9028, "Unknown Deployment Unit", now);
        };
        let base = format!("{DU_TABLE}{n}.");
        let version = self
            .tree
            .get(&format!("{base}Version"))
            .unwrap_or_default()
            .to_string();
        let eus = self
            .tree
            .get(&format!("{base}ExecutionUnitList"))
            .unwrap_or_default()
            .to_string();
        for eu in eus.split(',').filter(|s| !s.is_empty()) {
            self.tree.remove_instance(&format!("{eu}."));
        }
        self.tree.remove_instance(&base);
        self.refresh_active_eus();
        self.log_line(now, &format!("du: uninstalled {}", op.uuid));
        let now_s = format_datetime(&now);
        OpResultStruct {
            uuid: op.uuid.clone(),
            deployment_unit_ref: String::new(),
            version,
            current_state: "Uninstalled".into(),
            resolved: true,
            execution_unit_ref_list: String::new(),
            start_time: now_s.clone(),
            complete_time: now_s,
            fault: FaultStruct::default(),
        }
    }

    fn refresh_active_eus(&mut self) {
        let list: Vec<String> = self
            .tree
            .instances(EU_TABLE)
            .into_iter()
            .map(|n| format!("{EU_TABLE}{n}"))
            .collect();
        self.tree
            .set_local(&format!("{EXEC_ENV}.ActiveExecutionUnits"), list.join(","));
    }

    // -----------------------------------------------------------------
    // The CPE methods
    // -----------------------------------------------------------------

    fn store_parameter_key(&mut self, key: &str) {
        self.tree.set_local(&format!("{MS}ParameterKey"), key);
    }

    fn check_key(key: &str, what: &str) -> Result<(), Fault> {
        if key.chars().count() > 32 {
            return Err(Fault::cpe(
                9003,
                format!("{what} longer than 32 characters"),
            ));
        }
        Ok(())
    }

    /// Answers one ACS request: the response RPC, or the CWMP fault.
    pub fn handle_request(&mut self, rpc: &Rpc, now: DateTime<Utc>) -> Result<Rpc, Fault> {
        match rpc {
            Rpc::GetRPCMethods(_) => Ok(Rpc::GetRPCMethodsResponse(GetRPCMethodsResponse {
                method_list: CPE_METHODS.iter().map(|s| s.to_string()).collect(),
            })),
            Rpc::GetParameterValues(r) => {
                if r.parameter_names.is_empty() {
                    return Err(Fault::cpe(9003, "ParameterNames is empty"));
                }
                let ctx = self.read_ctx(now);
                let list = self.tree.get_parameter_values(&r.parameter_names, &ctx)?;
                Ok(Rpc::GetParameterValuesResponse(
                    GetParameterValuesResponse {
                        parameter_list: list,
                    },
                ))
            }
            Rpc::GetParameterNames(r) => {
                let list = self
                    .tree
                    .get_parameter_names(&r.parameter_path, r.next_level)?;
                Ok(Rpc::GetParameterNamesResponse(GetParameterNamesResponse {
                    parameter_list: list,
                }))
            }
            Rpc::SetParameterValues(r) => self.spv(r),
            Rpc::SetParameterAttributes(r) => {
                if r.parameter_list.is_empty() {
                    return Err(Fault::cpe(9003, "ParameterList is empty"));
                }
                self.tree.set_parameter_attributes(&r.parameter_list)?;
                Ok(Rpc::SetParameterAttributesResponse(
                    SetParameterAttributesResponse {},
                ))
            }
            Rpc::GetParameterAttributes(r) => {
                if r.parameter_names.is_empty() {
                    return Err(Fault::cpe(9003, "ParameterNames is empty"));
                }
                let list = self.tree.get_parameter_attributes(&r.parameter_names)?;
                Ok(Rpc::GetParameterAttributesResponse(
                    GetParameterAttributesResponse {
                        parameter_list: list,
                    },
                ))
            }
            Rpc::AddObject(r) => {
                Self::check_key(&r.parameter_key, "ParameterKey")?;
                let n = self.tree.add_object_rpc(&r.object_name)?;
                self.store_parameter_key(&r.parameter_key);
                Ok(Rpc::AddObjectResponse(AddObjectResponse {
                    instance_number: n,
                    status: 0,
                }))
            }
            Rpc::DeleteObject(r) => {
                Self::check_key(&r.parameter_key, "ParameterKey")?;
                self.tree.delete_object_rpc(&r.object_name)?;
                self.store_parameter_key(&r.parameter_key);
                Ok(Rpc::DeleteObjectResponse(DeleteObjectResponse {
                    status: 0,
                }))
            }
            Rpc::Reboot(r) => {
                Self::check_key(&r.command_key, "CommandKey")?;
                self.effects.push(Effect::Reboot {
                    command_key: r.command_key.clone(),
                });
                Ok(Rpc::RebootResponse(RebootResponse {}))
            }
            Rpc::FactoryReset(_) => {
                self.effects.push(Effect::FactoryReset);
                Ok(Rpc::FactoryResetResponse(FactoryResetResponse {}))
            }
            Rpc::Download(r) => self.download(r),
            Rpc::ScheduleDownload(r) => self.schedule_download(r),
            Rpc::Upload(r) => self.upload(r),
            Rpc::CancelTransfer(r) => {
                let mut found = false;
                self.transfers.retain(|t| {
                    if t.command_key == r.command_key && t.state == TransferState::NotStarted {
                        found = true;
                        false
                    } else {
                        true
                    }
                });
                if found {
                    Ok(Rpc::CancelTransferResponse(CancelTransferResponse {}))
                } else {
                    Err(Fault::cpe(
                        9021,
                        "Cancellation of file transfer not permitted in current transfer state",
                    ))
                }
            }
            Rpc::GetQueuedTransfers(_) => Ok(Rpc::GetQueuedTransfersResponse(
                GetQueuedTransfersResponse {
                    transfer_list: self
                        .transfers
                        .iter()
                        .map(|t| QueuedTransferStruct {
                            command_key: t.command_key.clone(),
                            state: t.state as i32,
                        })
                        .collect(),
                },
            )),
            Rpc::GetAllQueuedTransfers(_) => Ok(Rpc::GetAllQueuedTransfersResponse(
                GetAllQueuedTransfersResponse {
                    transfer_list: self
                        .transfers
                        .iter()
                        .map(|t| AllQueuedTransferStruct {
                            command_key: t.command_key.clone(),
                            state: t.state as i32,
                            is_download: t.kind.is_download(),
                            file_type: t.file_type.clone(),
                            file_size: t.file_size,
                            target_file_name: t.target_file_name.clone(),
                        })
                        .collect(),
                },
            )),
            Rpc::ScheduleInform(r) => {
                if r.delay_seconds == 0 {
                    return Err(Fault::cpe(9003, "DelaySeconds must be greater than 0"));
                }
                Self::check_key(&r.command_key, "CommandKey")?;
                self.effects.push(Effect::ScheduleInform {
                    delay_seconds: r.delay_seconds,
                    command_key: r.command_key.clone(),
                });
                Ok(Rpc::ScheduleInformResponse(ScheduleInformResponse {}))
            }
            Rpc::SetVouchers(_) => Ok(Rpc::SetVouchersResponse(SetVouchersResponse {})),
            Rpc::GetOptions(_) => Ok(Rpc::GetOptionsResponse(GetOptionsResponse {
                option_list: Vec::new(),
            })),
            Rpc::ChangeDUState(r) => self.change_du_state(r),
            other => Err(Fault::cpe(
                9000,
                format!("Method not supported: {}", other.method_name()),
            )),
        }
    }

    fn spv(&mut self, r: &SetParameterValues) -> Result<Rpc, Fault> {
        Self::check_key(&r.parameter_key, "ParameterKey")?;
        if r.parameter_list.is_empty() {
            return Err(Fault::cpe(9003, "ParameterList is empty"));
        }
        let old_url = self.acs_url();
        let changes = self.tree.set_parameter_values(&r.parameter_list)?;
        self.store_parameter_key(&r.parameter_key);
        // Changes made by the ACS are never notified back; a stale pending
        // local change of the same parameter is superseded.
        self.value_changes
            .retain(|(p, _)| !changes.params.iter().any(|c| c == p));
        if changes
            .params
            .iter()
            .any(|p| p.starts_with(&format!("{MS}PeriodicInform")))
        {
            self.effects.push(Effect::PeriodicInformChanged);
        }
        let new_url = self.acs_url();
        if new_url != old_url {
            // A new ACS means a new relationship (checklist §3.6).
            self.add_event("0 BOOTSTRAP", "");
            self.effects.push(Effect::AcsUrlChanged { url: new_url });
        }
        Ok(Rpc::SetParameterValuesResponse(
            SetParameterValuesResponse { status: 0 },
        ))
    }

    fn check_transfer_common(&self, command_key: &str, url: &str) -> Result<(), Fault> {
        Self::check_key(command_key, "CommandKey")?;
        if url.is_empty() || url.chars().count() > 256 || url_has_userinfo(url) {
            return Err(Fault::cpe(9003, "Invalid URL"));
        }
        if !url_scheme_ok(url) {
            return Err(Fault::cpe(9013, "Unsupported protocol for file transfer"));
        }
        if self.transfers.len() >= MAX_TRANSFERS {
            return Err(Fault::cpe(9004, "Too many queued transfers"));
        }
        Ok(())
    }

    fn check_download_type(file_type: &str) -> Result<(), Fault> {
        const TYPES: [&str; 6] = [
            "1 Firmware Upgrade Image",
            "2 Web Content",
            "3 Vendor Configuration File",
            "4 Tone File",
            "5 Ringer File",
            "6 Stored Firmware Image",
        ];
        if TYPES.contains(&file_type) || file_type.starts_with("X ") {
            Ok(())
        } else {
            Err(Fault::cpe(
                9003,
                format!("Unsupported FileType: {file_type}"),
            ))
        }
    }

    fn queue_transfer(&mut self, mut t: Transfer) -> u64 {
        let id = self.fresh_id();
        t.id = id;
        self.effects.push(Effect::Transfer {
            id,
            delay_seconds: t.delay_seconds,
        });
        self.transfers.push(t);
        id
    }

    fn download(&mut self, r: &Download) -> Result<Rpc, Fault> {
        self.check_transfer_common(&r.command_key, &r.url)?;
        Self::check_download_type(&r.file_type)?;
        self.queue_transfer(Transfer {
            id: 0,
            kind: TransferKind::Download,
            command_key: r.command_key.clone(),
            file_type: r.file_type.clone(),
            url: r.url.clone(),
            username: r.username.clone(),
            password: r.password.clone(),
            file_size: r.file_size,
            target_file_name: r.target_file_name.clone(),
            delay_seconds: r.delay_seconds,
            state: TransferState::NotStarted,
        });
        Ok(Rpc::DownloadResponse(DownloadResponse {
            status: 1,
            start_time: UNKNOWN_TIME.into(),
            complete_time: UNKNOWN_TIME.into(),
        }))
    }

    fn schedule_download(&mut self, r: &ScheduleDownload) -> Result<Rpc, Fault> {
        self.check_transfer_common(&r.command_key, &r.url)?;
        Self::check_download_type(&r.file_type)?;
        let w = &r.time_window_list;
        if w.is_empty() || w.len() > 2 {
            return Err(Fault::cpe(9003, "TimeWindowList must hold 1 or 2 windows"));
        }
        for tw in w {
            let mode_ok = matches!(
                tw.window_mode.as_str(),
                "1 At Any Time" | "2 Immediately" | "3 When Idle" | "4 Confirmation Needed"
            ) || tw.window_mode.starts_with("X ");
            if tw.window_end < tw.window_start || !mode_ok || tw.max_retries < -1 {
                return Err(Fault::cpe(9003, "Invalid time window"));
            }
        }
        if w.len() == 2 && w[1].window_start < w[0].window_end {
            return Err(Fault::cpe(9003, "Time windows overlap"));
        }
        self.queue_transfer(Transfer {
            id: 0,
            kind: TransferKind::ScheduleDownload,
            command_key: r.command_key.clone(),
            file_type: r.file_type.clone(),
            url: r.url.clone(),
            username: r.username.clone(),
            password: r.password.clone(),
            file_size: r.file_size,
            target_file_name: r.target_file_name.clone(),
            delay_seconds: w[0].window_start,
            state: TransferState::NotStarted,
        });
        Ok(Rpc::ScheduleDownloadResponse(ScheduleDownloadResponse {}))
    }

    fn upload(&mut self, r: &Upload) -> Result<Rpc, Fault> {
        self.check_transfer_common(&r.command_key, &r.url)?;
        let ft = r.file_type.as_str();
        let table_ok = |table: &str, rest: &str| -> bool {
            rest.trim()
                .parse::<u32>()
                .is_ok_and(|n| self.tree.instances(table).contains(&n))
        };
        let ok = match ft {
            "1 Vendor Configuration File" | "2 Vendor Log File" => true,
            _ if ft.starts_with("3 Vendor Configuration File ") => table_ok(
                "Device.DeviceInfo.VendorConfigFile.",
                &ft["3 Vendor Configuration File ".len()..],
            ),
            _ if ft.starts_with("4 Vendor Log File ") => table_ok(
                "Device.DeviceInfo.VendorLogFile.",
                &ft["4 Vendor Log File ".len()..],
            ),
            _ => ft.starts_with("X "),
        };
        if !ok {
            return Err(Fault::cpe(9003, format!("Unsupported FileType: {ft}")));
        }
        self.queue_transfer(Transfer {
            id: 0,
            kind: TransferKind::Upload,
            command_key: r.command_key.clone(),
            file_type: r.file_type.clone(),
            url: r.url.clone(),
            username: r.username.clone(),
            password: r.password.clone(),
            file_size: 0,
            target_file_name: String::new(),
            delay_seconds: r.delay_seconds,
            state: TransferState::NotStarted,
        });
        Ok(Rpc::UploadResponse(UploadResponse {
            status: 1,
            start_time: UNKNOWN_TIME.into(),
            complete_time: UNKNOWN_TIME.into(),
        }))
    }

    fn change_du_state(&mut self, r: &ChangeDUState) -> Result<Rpc, Fault> {
        if r.operations.is_empty() || r.operations.len() > 16 {
            return Err(Fault::cpe(9003, "Operations must hold 1 to 16 entries"));
        }
        if let Some(ck) = &r.command_key {
            Self::check_key(ck, "CommandKey")?;
        }
        for op in &r.operations {
            let uuid = match op {
                OperationStruct::Install(i) => i.uuid.as_deref(),
                OperationStruct::Update(u) => u.uuid.as_deref(),
                OperationStruct::Uninstall(u) => Some(u.uuid.as_str()),
            };
            let required = matches!(op, OperationStruct::Uninstall(_));
            match uuid {
                Some(u) if !u.is_empty() && !is_valid_uuid(u) => {
                    return Err(Fault::cpe(9022, format!("Invalid UUID format: {u}")))
                }
                Some("") | None if required => {
                    return Err(Fault::cpe(9022, "Invalid UUID format: empty"))
                }
                _ => {}
            }
        }
        let id = self.fresh_id();
        self.du_ops.push(DuOp {
            id,
            command_key: r.command_key.clone(),
            operations: r.operations.clone(),
        });
        self.effects.push(Effect::ChangeDuState { id });
        Ok(Rpc::ChangeDUStateResponse(ChangeDUStateResponse {}))
    }
}
