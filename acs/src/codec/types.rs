//! Message model of the CWMP SOAP codec.
//!
//! One Rust struct per XSD element (`cwmp-1-0` … `cwmp-1-4`), field names are
//! the snake_case of the XSD element names. Times are kept as the raw strings
//! seen on the wire because real CPEs send malformed ones (checklist §3.1/§9
//! P7); use [`parse_datetime_lenient`] when a value is needed.
//!
//! Everything derives serde so the ACS can persist task arguments/results as
//! JSON built straight from these structs.

// Outside input: no panicking arithmetic, indexing or unwrapping here (clippy enforces it).
#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used
)]

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// SOAP 1.1 envelope namespace; the only one CWMP allows.
pub const SOAP_ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// SOAP 1.1 encoding namespace (arrays, `arrayType`).
pub const SOAP_ENC_NS: &str = "http://schemas.xmlsoap.org/soap/encoding/";
/// SOAP 1.2 envelope namespace, recognised only to reject it.
pub const SOAP12_ENV_NS: &str = "http://www.w3.org/2003/05/soap-envelope";
/// XML Schema namespace (`xsd:` prefix on output).
pub const XSD_NS: &str = "http://www.w3.org/2001/XMLSchema";
/// XML Schema instance namespace (`xsi:type`).
pub const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// CWMP 1.0 namespace.
pub const CWMP_NS_1_0: &str = "urn:dslforum-org:cwmp-1-0";
/// CWMP 1.1 namespace.
pub const CWMP_NS_1_1: &str = "urn:dslforum-org:cwmp-1-1";
/// CWMP 1.2 namespace, also used by CWMP 1.3 and 1.4 (there is no official
/// `cwmp-1-3`/`cwmp-1-4` namespace, checklist §0.1).
pub const CWMP_NS_1_2: &str = "urn:dslforum-org:cwmp-1-2";

/// TR-069 "Unknown Time" (checklist §7.3); also what the serializer emits for
/// an empty dateTime string so the output stays schema-valid.
pub const UNKNOWN_TIME: &str = "0001-01-01T00:00:00Z";

/// The CPE methods of TR-069 Amendment 6 (the RPCs an ACS calls), in Table 5 order.
pub const CPE_METHODS: [&str; 20] = [
    "GetRPCMethods",
    "SetParameterValues",
    "GetParameterValues",
    "GetParameterNames",
    "SetParameterAttributes",
    "GetParameterAttributes",
    "AddObject",
    "DeleteObject",
    "Reboot",
    "Download",
    "Upload",
    "FactoryReset",
    "GetQueuedTransfers",
    "GetAllQueuedTransfers",
    "ScheduleInform",
    "SetVouchers",
    "GetOptions",
    "ScheduleDownload",
    "CancelTransfer",
    "ChangeDUState",
];

/// True for any `urn:dslforum-org:cwmp-1-<n>` URI: we must accept and echo
/// non-standard ones such as `cwmp-1-3` (checklist §0.1, §9 P2).
pub fn is_cwmp_namespace(uri: &str) -> bool {
    match uri.strip_prefix("urn:dslforum-org:cwmp-1-") {
        Some(rest) => !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

/// Parses an `xsd:dateTime` the way CPEs actually send it: with `Z`, with a
/// `±hh:mm`/`±hhmm` offset, without offset (taken as UTC), with fractions,
/// with a space instead of `T`, or with doubled separators (`11:54::14`).
/// Returns `None` only for hopeless garbage; callers must never fail a
/// message because of it.
pub fn parse_datetime_lenient(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    // Split date and time on 'T', 't' or ' '.
    let (date_part, rest) = match s.split_once(['T', 't', ' ']) {
        Some((d, r)) => (d, r.trim_start()),
        None => (s, ""),
    };
    let date = parse_date_part(date_part)?;
    // Separate an offset suffix from the time.
    let (time_part, offset_secs) = split_offset(rest)?;
    let time = if time_part.is_empty() {
        NaiveTime::from_hms_opt(0, 0, 0)?
    } else {
        parse_time_part(time_part)?
    };
    let naive = NaiveDateTime::new(date, time);
    let utc = Utc.from_utc_datetime(&naive);
    // Checked: a date at the edge of chrono's range with an offset would overflow.
    utc.checked_sub_signed(chrono::TimeDelta::try_seconds(i64::from(offset_secs))?)
}

fn parse_date_part(s: &str) -> Option<NaiveDate> {
    let mut it = s.split('-').filter(|p| !p.is_empty());
    let y: i32 = it.next()?.trim().parse().ok()?;
    let m: u32 = it.next()?.trim().parse().ok()?;
    let d: u32 = it.next()?.trim().parse().ok()?;
    if it.next().is_some() {
        return None;
    }
    NaiveDate::from_ymd_opt(y, m, d)
}

fn parse_time_part(s: &str) -> Option<NaiveTime> {
    let mut nums = s.split(':').filter(|p| !p.is_empty());
    let h: u32 = nums.next()?.trim().parse().ok()?;
    let m: u32 = nums
        .next()
        .map(|x| x.trim().parse().ok())
        .unwrap_or(Some(0))?;
    let sec_str = nums.next().unwrap_or("0").trim();
    if nums.next().is_some() {
        return None;
    }
    let (sec_int, frac) = sec_str.split_once(['.', ',']).unwrap_or((sec_str, ""));
    let sec: u32 = sec_int.parse().ok()?;
    let mut nanos: u32 = 0;
    if !frac.is_empty() {
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Nanoseconds: the first nine digits, right-padded with zeros.
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        nanos = digits.parse::<u32>().ok()?;
    }
    // A leap second (:60) is clamped rather than rejected.
    let sec = sec.min(59);
    NaiveTime::from_hms_nano_opt(h, m, sec, nanos)
}

/// Returns (time text, offset east of UTC in seconds).
fn split_offset(rest: &str) -> Option<(&str, i32)> {
    let rest = rest.trim();
    if let Some(t) = rest.strip_suffix(['Z', 'z']) {
        return Some((t.trim_end(), 0));
    }
    if let Some(i) = rest.rfind(['+', '-']) {
        let (t, off) = rest.split_at(i);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let digits: String = off.chars().skip(1).filter(|c| *c != ':').collect();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (hh, mm) = match digits.len() {
            1 | 2 => (digits.parse::<i32>().ok()?, 0),
            4 => {
                let (h, m) = digits.split_at_checked(2)?;
                (h.parse::<i32>().ok()?, m.parse::<i32>().ok()?)
            }
            _ => return None,
        };
        if hh > 23 || mm > 59 {
            return None;
        }
        // At most 23:59: no overflow possible, but checked all the same.
        let secs = hh.checked_mul(3600)?.checked_add(mm.checked_mul(60)?)?;
        return Some((t.trim_end(), secs.checked_mul(sign)?));
    }
    Some((rest, 0))
}

/// Formats a time for the wire: `YYYY-MM-DDThh:mm:ssZ`, never with
/// fractions because some CPEs reject them (checklist §7.3, §9 P7).
pub fn format_datetime(dt: &DateTime<Utc>) -> String {
    dt.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

// ---------------------------------------------------------------------------
// Envelope, header, body
// ---------------------------------------------------------------------------

/// One CWMP SOAP message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Exact cwmp namespace URI of the message (e.g. `urn:dslforum-org:cwmp-1-0`);
    /// echoed verbatim in replies (checklist §1.7).
    pub ns: String,
    pub header: Header,
    pub body: Body,
}

impl Envelope {
    /// Convenience for the common case: an RPC (request or response) with an ID.
    pub fn rpc(ns: impl Into<String>, id: Option<String>, rpc: Rpc) -> Self {
        Envelope {
            ns: ns.into(),
            header: Header {
                id,
                ..Header::default()
            },
            body: Body::Rpc(rpc),
        }
    }

    /// Convenience for answering a request with a SOAP fault (same ID).
    pub fn fault(ns: impl Into<String>, id: Option<String>, fault: Fault) -> Self {
        Envelope {
            ns: ns.into(),
            header: Header {
                id,
                ..Header::default()
            },
            body: Body::Fault(fault),
        }
    }

    /// The RPC, if the body is not a fault.
    pub fn as_rpc(&self) -> Option<&Rpc> {
        match &self.body {
            Body::Rpc(r) => Some(r),
            Body::Fault(_) => None,
        }
    }
}

/// SOAP header elements CWMP defines (checklist §1.6). Unset = absent.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Header {
    /// `cwmp:ID`, echoed byte-for-byte in the reply.
    pub id: Option<String>,
    /// Deprecated; the serializer emits it only when set.
    pub hold_requests: Option<bool>,
    /// CWMP 1.3+ session timeout proposed by the CPE (seconds).
    pub session_timeout: Option<u32>,
    /// CWMP 1.4 comma-separated version list from the CPE's Inform.
    pub supported_cwmp_versions: Option<String>,
    /// CWMP 1.4 negotiated version, ACS → CPE in the InformResponse.
    pub use_cwmp_version: Option<String>,
    /// Legacy (pre-Amendment 1) header; recognised so it raises no
    /// MustUnderstand fault. The serializer emits it only when set.
    pub no_more_requests: Option<bool>,
    /// Local names of unknown header elements flagged `mustUnderstand="1"`,
    /// so the caller can decide between ignoring and a MustUnderstand fault.
    /// Never serialized.
    pub unknown_must_understand: Vec<String>,
}

/// Body of a message: an RPC/response or a SOAP fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Body {
    Rpc(Rpc),
    Fault(Fault),
}

// ---------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------

/// A SOAP 1.1 fault carrying a CWMP fault in `detail` (checklist §1.8).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Fault {
    /// `Client` or `Server`; any prefix seen on input is stripped.
    pub faultcode: String,
    /// Always `CWMP fault` when we build it.
    pub faultstring: String,
    /// `detail/cwmp:Fault`. A SOAP fault with no CWMP detail parses as
    /// `fault_code: 0` with `fault_string` copied from `faultstring`.
    pub detail: CwmpFault,
}

/// `cwmp:Fault` element.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CwmpFault {
    pub fault_code: u32,
    pub fault_string: String,
    pub set_parameter_values_fault: Vec<SetParameterValuesFault>,
}

/// Per-parameter detail of an SPV fault (CPE → ACS only).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SetParameterValuesFault {
    pub parameter_name: String,
    pub fault_code: u32,
    pub fault_string: String,
}

impl Fault {
    fn with(faultcode: &str, code: u32, msg: impl Into<String>) -> Self {
        Fault {
            faultcode: faultcode.to_string(),
            faultstring: "CWMP fault".to_string(),
            detail: CwmpFault {
                fault_code: code,
                fault_string: msg.into(),
                set_parameter_values_fault: Vec::new(),
            },
        }
    }

    /// ACS fault (8000–8899): `Client` for 8003 (bad request content),
    /// `Server` otherwise (checklist §1.8).
    pub fn acs(code: u32, msg: impl Into<String>) -> Self {
        let fc = if code == 8003 { "Client" } else { "Server" };
        Self::with(fc, code, msg)
    }

    /// CPE fault (9000–9899) with the conventional Client/Server split of
    /// checklist §4.1: Client for argument/name/type/value errors
    /// (9003, 9005–9008, 9022), Server otherwise.
    pub fn cpe(code: u32, msg: impl Into<String>) -> Self {
        let fc = match code {
            9003 | 9005 | 9006 | 9007 | 9008 | 9022 => "Client",
            _ => "Server",
        };
        Self::with(fc, code, msg)
    }

    /// Adds one per-parameter SPV fault (builder style, for 9003 faults).
    pub fn with_spv_fault(
        mut self,
        parameter_name: impl Into<String>,
        fault_code: u32,
        fault_string: impl Into<String>,
    ) -> Self {
        self.detail
            .set_parameter_values_fault
            .push(SetParameterValuesFault {
                parameter_name: parameter_name.into(),
                fault_code,
                fault_string: fault_string.into(),
            });
        self
    }
}

// ---------------------------------------------------------------------------
// Shared structures
// ---------------------------------------------------------------------------

/// `ParameterValueStruct`: a name and an `anySimpleType` value.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ParameterValueStruct {
    pub name: String,
    /// Value text; `<Value/>` is `""`.
    pub value: String,
    /// `xsi:type` as written (e.g. `xsd:string`), `None` when absent. A type
    /// in the XSD namespace is normalised to the `xsd:` prefix on input.
    pub xsi_type: Option<String>,
}

impl ParameterValueStruct {
    /// A value tagged with an explicit `xsi:type`.
    pub fn new(name: impl Into<String>, value: impl Into<String>, xsi_type: &str) -> Self {
        ParameterValueStruct {
            name: name.into(),
            value: value.into(),
            xsi_type: Some(xsi_type.to_string()),
        }
    }
}

/// Inform `DeviceId`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DeviceIdStruct {
    pub manufacturer: String,
    /// Raw as sent (may be lower case); see [`DeviceIdStruct::canonical_id`].
    pub oui: String,
    pub product_class: String,
    pub serial_number: String,
}

impl DeviceIdStruct {
    /// Stable device key (checklist §3.1): each part percent-escaped except
    /// `[A-Za-z0-9_]` as `%XX` upper-case hex, OUI upper-cased, joined with
    /// `-`; ProductClass omitted when empty.
    pub fn canonical_id(&self) -> String {
        ids::canonical_device_id(&self.oui, &self.product_class, &self.serial_number)
    }
}

/// Inform `EventStruct`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct EventStruct {
    pub event_code: String,
    pub command_key: String,
}

impl EventStruct {
    pub fn new(event_code: impl Into<String>, command_key: impl Into<String>) -> Self {
        EventStruct {
            event_code: event_code.into(),
            command_key: command_key.into(),
        }
    }
}

/// `GetParameterNamesResponse` entry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ParameterInfoStruct {
    pub name: String,
    pub writable: bool,
}

/// `SetParameterAttributes` entry; all five elements are always emitted.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SetParameterAttributesStruct {
    pub name: String,
    pub notification_change: bool,
    /// 0–6; an empty `<Notification/>` on input reads as 0 (checklist §9 P25).
    pub notification: i32,
    pub access_list_change: bool,
    pub access_list: Vec<String>,
}

/// `GetParameterAttributesResponse` entry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ParameterAttributeStruct {
    pub name: String,
    pub notification: i32,
    pub access_list: Vec<String>,
}

/// `TransferComplete`/`AutonomousTransferComplete` `FaultStruct`, also used
/// for the DU result `Fault` element (whose `FaultString` is optional; absent
/// reads as `""`). `fault_code` 0 means success.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultStruct {
    pub fault_code: u32,
    pub fault_string: String,
}

/// `ScheduleDownload` time window.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TimeWindowStruct {
    pub window_start: u32,
    pub window_end: u32,
    pub window_mode: String,
    pub user_message: String,
    pub max_retries: i32,
}

/// `GetQueuedTransfersResponse` entry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct QueuedTransferStruct {
    pub command_key: String,
    /// 1 not yet started, 2 in progress, 3 completed.
    pub state: i32,
}

/// `GetAllQueuedTransfersResponse` entry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AllQueuedTransferStruct {
    pub command_key: String,
    pub state: i32,
    pub is_download: bool,
    pub file_type: String,
    pub file_size: u32,
    pub target_file_name: String,
}

/// `ChangeDUState` install operation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct InstallOpStruct {
    pub url: String,
    pub uuid: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub execution_env_ref: Option<String>,
}

/// `ChangeDUState` update operation (neither UUID nor URL = update all).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct UpdateOpStruct {
    pub uuid: Option<String>,
    pub version: Option<String>,
    pub url: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// `ChangeDUState` uninstall operation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct UninstallOpStruct {
    pub uuid: String,
    pub version: Option<String>,
    pub execution_env_ref: Option<String>,
}

/// Abstract XSD `OperationStruct`; on the wire selected by
/// `xsi:type="cwmp:InstallOpStruct"` etc.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OperationStruct {
    Install(InstallOpStruct),
    Update(UpdateOpStruct),
    Uninstall(UninstallOpStruct),
}

impl OperationStruct {
    /// XSD type name, as used in `xsi:type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            OperationStruct::Install(_) => "InstallOpStruct",
            OperationStruct::Update(_) => "UpdateOpStruct",
            OperationStruct::Uninstall(_) => "UninstallOpStruct",
        }
    }
}

/// `DUStateChangeComplete` result entry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OpResultStruct {
    pub uuid: String,
    pub deployment_unit_ref: String,
    pub version: String,
    /// `Installed` | `Uninstalled` | `Failed`.
    pub current_state: String,
    pub resolved: bool,
    pub execution_unit_ref_list: String,
    pub start_time: String,
    pub complete_time: String,
    pub fault: FaultStruct,
}

/// `AutonomousDUStateChangeComplete` result entry: an [`OpResultStruct`]
/// plus `OperationPerformed`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AutonOpResultStruct {
    pub uuid: String,
    pub deployment_unit_ref: String,
    pub version: String,
    pub current_state: String,
    pub resolved: bool,
    pub execution_unit_ref_list: String,
    pub start_time: String,
    pub complete_time: String,
    pub fault: FaultStruct,
    /// `Install` | `Update` | `Uninstall` or a vendor string.
    pub operation_performed: String,
}

/// `GetOptionsResponse` entry (deprecated feature).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OptionStruct {
    pub option_name: String,
    pub voucher_sn: u32,
    pub state: u32,
    pub mode: i32,
    pub start_date: String,
    pub expiration_date: Option<String>,
    pub is_transferable: i32,
}

/// `RequestDownload` `FileTypeArg` entry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ArgStruct {
    pub name: String,
    pub value: String,
}

// ---------------------------------------------------------------------------
// CPE methods (called by the ACS) and their responses
// ---------------------------------------------------------------------------

/// `GetRPCMethods` (both directions).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GetRPCMethods {}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GetRPCMethodsResponse {
    pub method_list: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SetParameterValues {
    /// Values without `xsi_type` are sent as `xsd:string`.
    pub parameter_list: Vec<ParameterValueStruct>,
    pub parameter_key: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SetParameterValuesResponse {
    pub status: i32,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GetParameterValues {
    pub parameter_names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GetParameterValuesResponse {
    pub parameter_list: Vec<ParameterValueStruct>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GetParameterNames {
    pub parameter_path: String,
    pub next_level: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GetParameterNamesResponse {
    pub parameter_list: Vec<ParameterInfoStruct>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SetParameterAttributes {
    pub parameter_list: Vec<SetParameterAttributesStruct>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SetParameterAttributesResponse {}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GetParameterAttributes {
    pub parameter_names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GetParameterAttributesResponse {
    pub parameter_list: Vec<ParameterAttributeStruct>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AddObject {
    pub object_name: String,
    pub parameter_key: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AddObjectResponse {
    pub instance_number: u32,
    pub status: i32,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DeleteObject {
    pub object_name: String,
    pub parameter_key: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DeleteObjectResponse {
    pub status: i32,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Reboot {
    pub command_key: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RebootResponse {}

/// `Download`; all ten elements are always emitted.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Download {
    pub command_key: String,
    pub file_type: String,
    pub url: String,
    pub username: String,
    pub password: String,
    pub file_size: u32,
    pub target_file_name: String,
    pub delay_seconds: u32,
    pub success_url: String,
    pub failure_url: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DownloadResponse {
    pub status: i32,
    pub start_time: String,
    pub complete_time: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Upload {
    pub command_key: String,
    pub file_type: String,
    pub url: String,
    pub username: String,
    pub password: String,
    pub delay_seconds: u32,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct UploadResponse {
    pub status: i32,
    pub start_time: String,
    pub complete_time: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FactoryReset {}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FactoryResetResponse {}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GetQueuedTransfers {}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GetQueuedTransfersResponse {
    pub transfer_list: Vec<QueuedTransferStruct>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GetAllQueuedTransfers {}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GetAllQueuedTransfersResponse {
    pub transfer_list: Vec<AllQueuedTransferStruct>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ScheduleInform {
    pub delay_seconds: u32,
    pub command_key: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ScheduleInformResponse {}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SetVouchers {
    /// base64 text of each voucher, kept as sent.
    pub voucher_list: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SetVouchersResponse {}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GetOptions {
    pub option_name: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GetOptionsResponse {
    pub option_list: Vec<OptionStruct>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ScheduleDownload {
    pub command_key: String,
    pub file_type: String,
    pub url: String,
    pub username: String,
    pub password: String,
    pub file_size: u32,
    pub target_file_name: String,
    pub time_window_list: Vec<TimeWindowStruct>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ScheduleDownloadResponse {}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CancelTransfer {
    pub command_key: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CancelTransferResponse {}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ChangeDUState {
    pub operations: Vec<OperationStruct>,
    pub command_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChangeDUStateResponse {}

// ---------------------------------------------------------------------------
// ACS methods (called by the CPE) and their responses
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Inform {
    pub device_id: DeviceIdStruct,
    pub event: Vec<EventStruct>,
    pub max_envelopes: u32,
    /// Raw; see [`parse_datetime_lenient`].
    pub current_time: String,
    /// Missing or invalid on input reads as 0.
    pub retry_count: u32,
    pub parameter_list: Vec<ParameterValueStruct>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct InformResponse {
    pub max_envelopes: u32,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TransferComplete {
    pub command_key: String,
    pub fault_struct: FaultStruct,
    pub start_time: String,
    pub complete_time: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TransferCompleteResponse {}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AutonomousTransferComplete {
    pub announce_url: String,
    pub transfer_url: String,
    pub is_download: bool,
    pub file_type: String,
    pub file_size: u32,
    pub target_file_name: String,
    pub fault_struct: FaultStruct,
    pub start_time: String,
    pub complete_time: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AutonomousTransferCompleteResponse {}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DUStateChangeComplete {
    pub results: Vec<OpResultStruct>,
    pub command_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DUStateChangeCompleteResponse {}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AutonomousDUStateChangeComplete {
    pub results: Vec<AutonOpResultStruct>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AutonomousDUStateChangeCompleteResponse {}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RequestDownload {
    pub file_type: String,
    pub file_type_arg: Vec<ArgStruct>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RequestDownloadResponse {}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Kicked {
    pub command: String,
    pub referer: String,
    pub arg: String,
    pub next: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct KickedResponse {
    pub next_url: String,
}

// ---------------------------------------------------------------------------
// The RPC enum
// ---------------------------------------------------------------------------

macro_rules! rpc_enum {
    (
        requests_acs_calls { $($cpe:ident),* $(,)? }
        requests_cpe_calls { $($acs:ident),* $(,)? }
        responses { $($resp:ident),* $(,)? }
    ) => {
        /// Every CWMP RPC and response; variant = XSD element name.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub enum Rpc {
            $($cpe($cpe),)*
            $($acs($acs),)*
            $($resp($resp),)*
            /// A method element in a cwmp namespace that we don't know
            /// (e.g. a vendor `X_…` method): the ACS answers 8000, a CPE 9000.
            Unknown { name: String },
        }

        impl Rpc {
            /// XSD element name of the method (`Unknown` gives its raw local name).
            pub fn method_name(&self) -> &str {
                match self {
                    $(Rpc::$cpe(_) => stringify!($cpe),)*
                    $(Rpc::$acs(_) => stringify!($acs),)*
                    $(Rpc::$resp(_) => stringify!($resp),)*
                    Rpc::Unknown { name } => name.as_str(),
                }
            }

            /// True for every `…Response`. This is the reliable request/response
            /// discriminator (GetRPCMethods is a request in both directions).
            /// For `Unknown` it is true when the name ends in `Response`.
            pub fn is_response(&self) -> bool {
                match self {
                    $(Rpc::$resp(_) => true,)*
                    Rpc::Unknown { name } => name.ends_with("Response"),
                    _ => false,
                }
            }

            /// True for an ACS method, i.e. a request the CPE sends to the ACS:
            /// Inform, TransferComplete, AutonomousTransferComplete,
            /// DUStateChangeComplete, AutonomousDUStateChangeComplete,
            /// RequestDownload, Kicked, and GetRPCMethods (which either side
            /// may send). False for `Unknown`: check for it explicitly.
            pub fn is_cpe_request(&self) -> bool {
                matches!(self, $(Rpc::$acs(_))|* | Rpc::GetRPCMethods(_))
            }

            /// True for a CPE method, i.e. a request the ACS sends to the CPE
            /// (including GetRPCMethods). False for `Unknown`.
            pub fn is_acs_request(&self) -> bool {
                matches!(self, $(Rpc::$cpe(_))|*)
            }

            /// Name of the response element that answers this request
            /// (request name + `Response`); `None` for responses.
            pub fn response_name(&self) -> Option<String> {
                if self.is_response() {
                    None
                } else {
                    Some(format!("{}Response", self.method_name()))
                }
            }
        }

        $(
            impl From<$cpe> for Rpc {
                fn from(v: $cpe) -> Rpc { Rpc::$cpe(v) }
            }
        )*
        $(
            impl From<$acs> for Rpc {
                fn from(v: $acs) -> Rpc { Rpc::$acs(v) }
            }
        )*
        $(
            impl From<$resp> for Rpc {
                fn from(v: $resp) -> Rpc { Rpc::$resp(v) }
            }
        )*
    };
}

rpc_enum! {
    requests_acs_calls {
        GetRPCMethods, SetParameterValues, GetParameterValues, GetParameterNames,
        SetParameterAttributes, GetParameterAttributes, AddObject, DeleteObject,
        Reboot, Download, Upload, FactoryReset, GetQueuedTransfers,
        GetAllQueuedTransfers, ScheduleInform, SetVouchers, GetOptions,
        ScheduleDownload, CancelTransfer, ChangeDUState,
    }
    requests_cpe_calls {
        Inform, TransferComplete, AutonomousTransferComplete, DUStateChangeComplete,
        AutonomousDUStateChangeComplete, RequestDownload, Kicked,
    }
    responses {
        GetRPCMethodsResponse, SetParameterValuesResponse, GetParameterValuesResponse,
        GetParameterNamesResponse, SetParameterAttributesResponse,
        GetParameterAttributesResponse, AddObjectResponse, DeleteObjectResponse,
        RebootResponse, DownloadResponse, UploadResponse, FactoryResetResponse,
        GetQueuedTransfersResponse, GetAllQueuedTransfersResponse,
        ScheduleInformResponse, SetVouchersResponse, GetOptionsResponse,
        ScheduleDownloadResponse, CancelTransferResponse, ChangeDUStateResponse,
        InformResponse, TransferCompleteResponse, AutonomousTransferCompleteResponse,
        DUStateChangeCompleteResponse, AutonomousDUStateChangeCompleteResponse,
        RequestDownloadResponse, KickedResponse,
    }
}
