//! [`Envelope`] → bytes.
//!
//! Output is written straight into one `Vec<u8>` (no DOM) following the
//! conservative style prefix-sensitive CPE parsers need (checklist §1.5,
//! §0.2, §9 P4): fixed prefixes all declared on `Envelope`, `cwmp:` on the
//! RPC element only, unqualified children in XSD order, correct
//! `arrayType` counts, and only ASCII on the wire (non-ASCII as `&#xNN;`).

use super::types::*;

/// Prefix pair for the SOAP envelope/encoding namespaces; configurable per
/// device profile because some CPE parsers match prefixes literally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EnvPrefix {
    /// `soap-env` / `soap-enc` (our default).
    #[default]
    SoapEnv,
    /// `SOAP-ENV` / `SOAP-ENC` (gSOAP style).
    Upper,
}

impl EnvPrefix {
    fn env(self) -> &'static str {
        match self {
            EnvPrefix::SoapEnv => "soap-env",
            EnvPrefix::Upper => "SOAP-ENV",
        }
    }

    fn enc(self) -> &'static str {
        match self {
            EnvPrefix::SoapEnv => "soap-enc",
            EnvPrefix::Upper => "SOAP-ENC",
        }
    }
}

/// Boolean literal style; some CPEs only accept `1`/`0` (checklist §7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BoolStyle {
    /// `true` / `false` (default).
    #[default]
    Words,
    /// `1` / `0`.
    Digits,
}

/// Per-device-profile output options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutputStyle {
    pub envelope_prefix: EnvPrefix,
    pub boolean_style: BoolStyle,
}

/// Serializes an envelope to UTF-8 bytes (pure ASCII in practice).
///
/// Header fields are emitted only when set; `unknown_must_understand` is
/// never emitted. Values without `xsi_type` get `xsd:string` in
/// SetParameterValues and no `xsi:type` elsewhere. An empty dateTime string
/// is emitted as [`UNKNOWN_TIME`] so the output stays schema-valid, as are
/// an empty fault `faultcode` (`Server`) and `faultstring` (`CWMP fault`).
pub fn serialize(env: &Envelope, style: &OutputStyle) -> Vec<u8> {
    let mut w = W {
        buf: Vec::with_capacity(estimate(env)),
        env: style.envelope_prefix.env(),
        enc: style.envelope_prefix.enc(),
        bools: style.boolean_style,
    };
    w.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<");
    w.raw(w.env);
    w.raw(":Envelope xmlns:");
    w.raw(w.env);
    w.raw("=\"");
    w.raw(SOAP_ENV_NS);
    w.raw("\" xmlns:");
    w.raw(w.enc);
    w.raw("=\"");
    w.raw(SOAP_ENC_NS);
    w.raw("\" xmlns:xsd=\"");
    w.raw(XSD_NS);
    w.raw("\" xmlns:xsi=\"");
    w.raw(XSI_NS);
    w.raw("\" xmlns:cwmp=\"");
    w.text(&env.ns);
    w.raw("\">");
    write_header(&mut w, &env.header);
    w.raw("<");
    w.raw(w.env);
    w.raw(":Body>");
    match &env.body {
        Body::Rpc(rpc) => write_rpc(&mut w, rpc),
        Body::Fault(f) => write_fault(&mut w, f),
    }
    w.raw("</");
    w.raw(w.env);
    w.raw(":Body></");
    w.raw(w.env);
    w.raw(":Envelope>");
    w.buf
}

/// Rough output size so the buffer is allocated once in the common case.
fn estimate(env: &Envelope) -> usize {
    // Saturating: an estimate never needs to overflow to be useful.
    fn sum(lens: impl Iterator<Item = usize>) -> usize {
        lens.fold(0, usize::saturating_add)
    }
    fn pvs(list: &[ParameterValueStruct]) -> usize {
        sum(list.iter().map(|p| {
            p.name
                .len()
                .saturating_add(p.value.len())
                .saturating_add(110)
        }))
    }
    let body = match &env.body {
        Body::Rpc(Rpc::Inform(i)) => i
            .event
            .len()
            .saturating_mul(90)
            .saturating_add(pvs(&i.parameter_list))
            .saturating_add(400),
        Body::Rpc(Rpc::SetParameterValues(s)) => pvs(&s.parameter_list),
        Body::Rpc(Rpc::GetParameterValuesResponse(s)) => pvs(&s.parameter_list),
        Body::Rpc(Rpc::GetParameterValues(g)) => {
            sum(g.parameter_names.iter().map(|n| n.len().saturating_add(20)))
        }
        Body::Rpc(Rpc::GetParameterNamesResponse(g)) => sum(g
            .parameter_list
            .iter()
            .map(|p| p.name.len().saturating_add(90))),
        _ => 512,
    };
    body.saturating_add(700)
}

struct W {
    buf: Vec<u8>,
    env: &'static str,
    enc: &'static str,
    bools: BoolStyle,
}

impl W {
    fn raw(&mut self, s: &str) {
        self.buf.extend_from_slice(s.as_bytes());
    }

    /// Escaped character data: the five XML specials as entities, CR and
    /// non-ASCII as hex character references, other C0 controls (not
    /// representable in XML 1.0) as U+FFFD.
    fn text(&mut self, s: &str) {
        fn special(b: u8) -> bool {
            matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'' | 0x00..=0x08 | 0x0B..=0x1F | 0x7F..)
        }
        let mut rest = s;
        // Every byte before the one found is ASCII, so it starts a character.
        while let Some((plain, tail)) = rest
            .bytes()
            .position(special)
            .and_then(|at| rest.split_at_checked(at))
        {
            self.raw(plain);
            let mut chars = tail.chars();
            let Some(c) = chars.next() else { break };
            match c {
                '&' => self.raw("&amp;"),
                '<' => self.raw("&lt;"),
                '>' => self.raw("&gt;"),
                '"' => self.raw("&quot;"),
                '\'' => self.raw("&apos;"),
                '\r' => self.raw("&#xD;"),
                c if c.is_ascii_control() => self.raw("&#xFFFD;"),
                c => self.char_ref(u32::from(c)),
            }
            rest = chars.as_str();
        }
        self.raw(rest);
    }

    fn char_ref(&mut self, cp: u32) {
        use std::io::Write as _;
        // Writing to a Vec cannot fail.
        let _ = write!(self.buf, "&#x{cp:X};");
    }

    fn u64(&mut self, v: u64) {
        self.raw(itoa::Buffer::new().format(v));
    }

    fn i64(&mut self, v: i64) {
        self.raw(itoa::Buffer::new().format(v));
    }

    fn open(&mut self, name: &str) {
        self.buf.push(b'<');
        self.raw(name);
        self.buf.push(b'>');
    }

    fn close(&mut self, name: &str) {
        self.raw("</");
        self.raw(name);
        self.buf.push(b'>');
    }

    fn leaf(&mut self, name: &str, value: &str) {
        self.open(name);
        self.text(value);
        self.close(name);
    }

    fn leaf_opt(&mut self, name: &str, value: &Option<String>) {
        if let Some(v) = value {
            self.leaf(name, v);
        }
    }

    fn leaf_time(&mut self, name: &str, value: &str) {
        self.leaf(
            name,
            if value.is_empty() {
                UNKNOWN_TIME
            } else {
                value
            },
        );
    }

    fn leaf_u32(&mut self, name: &str, v: u32) {
        self.open(name);
        self.u64(u64::from(v));
        self.close(name);
    }

    fn leaf_i32(&mut self, name: &str, v: i32) {
        self.open(name);
        self.i64(i64::from(v));
        self.close(name);
    }

    fn bool_str(&self, v: bool) -> &'static str {
        match (self.bools, v) {
            (BoolStyle::Words, true) => "true",
            (BoolStyle::Words, false) => "false",
            (BoolStyle::Digits, true) => "1",
            (BoolStyle::Digits, false) => "0",
        }
    }

    fn leaf_bool(&mut self, name: &str, v: bool) {
        let s = self.bool_str(v);
        self.open(name);
        self.raw(s);
        self.close(name);
    }

    /// `<name soap-enc:arrayType="type[count]">`; `type` carries its prefix
    /// (`cwmp:`, `xsd:`), or `None` prefix means the encoding prefix.
    fn open_array(&mut self, name: &str, type_prefix: Option<&str>, ty: &str, count: usize) {
        self.buf.push(b'<');
        self.raw(name);
        self.buf.push(b' ');
        self.raw(self.enc);
        self.raw(":arrayType=\"");
        self.raw(type_prefix.unwrap_or(self.enc));
        self.buf.push(b':');
        self.raw(ty);
        self.buf.push(b'[');
        self.u64(count as u64);
        self.raw("]\">");
    }

    fn string_array(&mut self, name: &str, items: &[String]) {
        self.open_array(name, Some("xsd"), "string", items.len());
        for s in items {
            self.leaf("string", s);
        }
        self.close(name);
    }

    /// `<cwmp:Name>`
    fn open_rpc(&mut self, name: &str) {
        self.raw("<cwmp:");
        self.raw(name);
        self.buf.push(b'>');
    }

    fn close_rpc(&mut self, name: &str) {
        self.raw("</cwmp:");
        self.raw(name);
        self.buf.push(b'>');
    }

    fn empty_rpc(&mut self, name: &str) {
        self.raw("<cwmp:");
        self.raw(name);
        self.raw("/>");
    }

    fn header_elem(&mut self, name: &str, must_understand: &str, value: &str) {
        self.raw("<cwmp:");
        self.raw(name);
        self.buf.push(b' ');
        self.raw(self.env);
        self.raw(":mustUnderstand=\"");
        self.raw(must_understand);
        self.raw("\">");
        self.text(value);
        self.close_rpc(name);
    }
}

fn write_header(w: &mut W, h: &Header) {
    let any = h.id.is_some()
        || h.hold_requests.is_some()
        || h.session_timeout.is_some()
        || h.supported_cwmp_versions.is_some()
        || h.use_cwmp_version.is_some()
        || h.no_more_requests.is_some();
    if !any {
        return;
    }
    w.buf.push(b'<');
    w.raw(w.env);
    w.raw(":Header>");
    if let Some(id) = &h.id {
        w.header_elem("ID", "1", id);
    }
    if let Some(v) = h.hold_requests {
        let s = w.bool_str(v);
        w.header_elem("HoldRequests", "1", s);
    }
    if let Some(v) = h.session_timeout {
        w.header_elem("SessionTimeout", "0", &v.to_string());
    }
    if let Some(v) = &h.supported_cwmp_versions {
        w.header_elem("SupportedCWMPVersions", "0", v);
    }
    if let Some(v) = &h.use_cwmp_version {
        w.header_elem("UseCWMPVersion", "1", v);
    }
    if let Some(v) = h.no_more_requests {
        let s = w.bool_str(v);
        w.header_elem("NoMoreRequests", "1", s);
    }
    w.raw("</");
    w.raw(w.env);
    w.raw(":Header>");
}

fn write_fault(w: &mut W, f: &Fault) {
    w.buf.push(b'<');
    w.raw(w.env);
    w.raw(":Fault>");
    // Empty SOAP fields would be schema-invalid; fall back to the
    // conventional values.
    w.leaf(
        "faultcode",
        if f.faultcode.is_empty() {
            "Server"
        } else {
            &f.faultcode
        },
    );
    w.leaf(
        "faultstring",
        if f.faultstring.is_empty() {
            "CWMP fault"
        } else {
            &f.faultstring
        },
    );
    w.open("detail");
    w.open_rpc("Fault");
    w.leaf_u32("FaultCode", f.detail.fault_code);
    w.leaf("FaultString", &f.detail.fault_string);
    for s in &f.detail.set_parameter_values_fault {
        w.open("SetParameterValuesFault");
        w.leaf("ParameterName", &s.parameter_name);
        w.leaf_u32("FaultCode", s.fault_code);
        w.leaf("FaultString", &s.fault_string);
        w.close("SetParameterValuesFault");
    }
    w.close_rpc("Fault");
    w.close("detail");
    w.raw("</");
    w.raw(w.env);
    w.raw(":Fault>");
}

fn write_pvs_list(w: &mut W, list: &[ParameterValueStruct], default_type: Option<&str>) {
    w.open_array(
        "ParameterList",
        Some("cwmp"),
        "ParameterValueStruct",
        list.len(),
    );
    for p in list {
        w.open("ParameterValueStruct");
        w.leaf("Name", &p.name);
        match p.xsi_type.as_deref().or(default_type) {
            Some(t) => {
                w.raw("<Value xsi:type=\"");
                w.text(t);
                w.raw("\">");
            }
            None => w.open("Value"),
        }
        w.text(&p.value);
        w.close("Value");
        w.close("ParameterValueStruct");
    }
    w.close("ParameterList");
}

fn write_fault_struct(w: &mut W, name: &str, f: &FaultStruct) {
    w.open(name);
    w.leaf_u32("FaultCode", f.fault_code);
    w.leaf("FaultString", &f.fault_string);
    w.close(name);
}

#[allow(clippy::too_many_arguments)]
fn write_op_result(
    w: &mut W,
    uuid: &str,
    deployment_unit_ref: &str,
    version: &str,
    current_state: &str,
    resolved: bool,
    execution_unit_ref_list: &str,
    start_time: &str,
    complete_time: &str,
    fault: &FaultStruct,
) {
    w.leaf("UUID", uuid);
    w.leaf("DeploymentUnitRef", deployment_unit_ref);
    w.leaf("Version", version);
    w.leaf("CurrentState", current_state);
    w.leaf_bool("Resolved", resolved);
    w.leaf("ExecutionUnitRefList", execution_unit_ref_list);
    w.leaf_time("StartTime", start_time);
    w.leaf_time("CompleteTime", complete_time);
    write_fault_struct(w, "Fault", fault);
}

fn write_rpc(w: &mut W, rpc: &Rpc) {
    let name = rpc.method_name();
    match rpc {
        // Methods/responses without arguments.
        Rpc::GetRPCMethods(_)
        | Rpc::SetParameterAttributesResponse(_)
        | Rpc::RebootResponse(_)
        | Rpc::FactoryReset(_)
        | Rpc::FactoryResetResponse(_)
        | Rpc::GetQueuedTransfers(_)
        | Rpc::GetAllQueuedTransfers(_)
        | Rpc::ScheduleInformResponse(_)
        | Rpc::SetVouchersResponse(_)
        | Rpc::ScheduleDownloadResponse(_)
        | Rpc::CancelTransferResponse(_)
        | Rpc::ChangeDUStateResponse(_)
        | Rpc::TransferCompleteResponse(_)
        | Rpc::AutonomousTransferCompleteResponse(_)
        | Rpc::DUStateChangeCompleteResponse(_)
        | Rpc::AutonomousDUStateChangeCompleteResponse(_)
        | Rpc::RequestDownloadResponse(_) => w.empty_rpc(name),
        Rpc::Unknown { name } => {
            // Only the name is known; emitted so a simulator can probe the
            // ACS with vendor methods.
            let mut safe = String::with_capacity(name.len());
            safe.extend(
                name.chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-' || *c == '.'),
            );
            if safe.is_empty() || safe.starts_with(|c: char| c.is_ascii_digit()) {
                safe.insert(0, 'X');
            }
            w.empty_rpc(&safe);
        }
        _ => {
            w.open_rpc(name);
            write_args(w, rpc);
            w.close_rpc(name);
        }
    }
}

fn write_args(w: &mut W, rpc: &Rpc) {
    match rpc {
        Rpc::GetRPCMethodsResponse(r) => w.string_array("MethodList", &r.method_list),
        Rpc::SetParameterValues(r) => {
            write_pvs_list(w, &r.parameter_list, Some("xsd:string"));
            w.leaf("ParameterKey", &r.parameter_key);
        }
        Rpc::SetParameterValuesResponse(r) => w.leaf_i32("Status", r.status),
        Rpc::GetParameterValues(r) => w.string_array("ParameterNames", &r.parameter_names),
        Rpc::GetParameterValuesResponse(r) => write_pvs_list(w, &r.parameter_list, None),
        Rpc::GetParameterNames(r) => {
            w.leaf("ParameterPath", &r.parameter_path);
            w.leaf_bool("NextLevel", r.next_level);
        }
        Rpc::GetParameterNamesResponse(r) => {
            w.open_array(
                "ParameterList",
                Some("cwmp"),
                "ParameterInfoStruct",
                r.parameter_list.len(),
            );
            for p in &r.parameter_list {
                w.open("ParameterInfoStruct");
                w.leaf("Name", &p.name);
                w.leaf_bool("Writable", p.writable);
                w.close("ParameterInfoStruct");
            }
            w.close("ParameterList");
        }
        Rpc::SetParameterAttributes(r) => {
            w.open_array(
                "ParameterList",
                Some("cwmp"),
                "SetParameterAttributesStruct",
                r.parameter_list.len(),
            );
            for p in &r.parameter_list {
                w.open("SetParameterAttributesStruct");
                w.leaf("Name", &p.name);
                w.leaf_bool("NotificationChange", p.notification_change);
                w.leaf_i32("Notification", p.notification);
                w.leaf_bool("AccessListChange", p.access_list_change);
                w.string_array("AccessList", &p.access_list);
                w.close("SetParameterAttributesStruct");
            }
            w.close("ParameterList");
        }
        Rpc::GetParameterAttributes(r) => w.string_array("ParameterNames", &r.parameter_names),
        Rpc::GetParameterAttributesResponse(r) => {
            w.open_array(
                "ParameterList",
                Some("cwmp"),
                "ParameterAttributeStruct",
                r.parameter_list.len(),
            );
            for p in &r.parameter_list {
                w.open("ParameterAttributeStruct");
                w.leaf("Name", &p.name);
                w.leaf_i32("Notification", p.notification);
                w.string_array("AccessList", &p.access_list);
                w.close("ParameterAttributeStruct");
            }
            w.close("ParameterList");
        }
        Rpc::AddObject(r) => {
            w.leaf("ObjectName", &r.object_name);
            w.leaf("ParameterKey", &r.parameter_key);
        }
        Rpc::AddObjectResponse(r) => {
            w.leaf_u32("InstanceNumber", r.instance_number);
            w.leaf_i32("Status", r.status);
        }
        Rpc::DeleteObject(r) => {
            w.leaf("ObjectName", &r.object_name);
            w.leaf("ParameterKey", &r.parameter_key);
        }
        Rpc::DeleteObjectResponse(r) => w.leaf_i32("Status", r.status),
        Rpc::Reboot(r) => w.leaf("CommandKey", &r.command_key),
        Rpc::Download(r) => {
            w.leaf("CommandKey", &r.command_key);
            w.leaf("FileType", &r.file_type);
            w.leaf("URL", &r.url);
            w.leaf("Username", &r.username);
            w.leaf("Password", &r.password);
            w.leaf_u32("FileSize", r.file_size);
            w.leaf("TargetFileName", &r.target_file_name);
            w.leaf_u32("DelaySeconds", r.delay_seconds);
            w.leaf("SuccessURL", &r.success_url);
            w.leaf("FailureURL", &r.failure_url);
        }
        Rpc::DownloadResponse(r) => {
            w.leaf_i32("Status", r.status);
            w.leaf_time("StartTime", &r.start_time);
            w.leaf_time("CompleteTime", &r.complete_time);
        }
        Rpc::Upload(r) => {
            w.leaf("CommandKey", &r.command_key);
            w.leaf("FileType", &r.file_type);
            w.leaf("URL", &r.url);
            w.leaf("Username", &r.username);
            w.leaf("Password", &r.password);
            w.leaf_u32("DelaySeconds", r.delay_seconds);
        }
        Rpc::UploadResponse(r) => {
            w.leaf_i32("Status", r.status);
            w.leaf_time("StartTime", &r.start_time);
            w.leaf_time("CompleteTime", &r.complete_time);
        }
        Rpc::GetQueuedTransfersResponse(r) => {
            w.open_array(
                "TransferList",
                Some("cwmp"),
                "QueuedTransferStruct",
                r.transfer_list.len(),
            );
            for t in &r.transfer_list {
                w.open("QueuedTransferStruct");
                w.leaf("CommandKey", &t.command_key);
                w.leaf_i32("State", t.state);
                w.close("QueuedTransferStruct");
            }
            w.close("TransferList");
        }
        Rpc::GetAllQueuedTransfersResponse(r) => {
            w.open_array(
                "TransferList",
                Some("cwmp"),
                "AllQueuedTransferStruct",
                r.transfer_list.len(),
            );
            for t in &r.transfer_list {
                w.open("AllQueuedTransferStruct");
                w.leaf("CommandKey", &t.command_key);
                w.leaf_i32("State", t.state);
                w.leaf_bool("IsDownload", t.is_download);
                w.leaf("FileType", &t.file_type);
                w.leaf_u32("FileSize", t.file_size);
                w.leaf("TargetFileName", &t.target_file_name);
                w.close("AllQueuedTransferStruct");
            }
            w.close("TransferList");
        }
        Rpc::ScheduleInform(r) => {
            w.leaf_u32("DelaySeconds", r.delay_seconds);
            w.leaf("CommandKey", &r.command_key);
        }
        Rpc::SetVouchers(r) => {
            w.open_array("VoucherList", None, "base64", r.voucher_list.len());
            for v in &r.voucher_list {
                w.leaf("base64", v);
            }
            w.close("VoucherList");
        }
        Rpc::GetOptions(r) => w.leaf("OptionName", &r.option_name),
        Rpc::GetOptionsResponse(r) => {
            w.open_array(
                "OptionList",
                Some("cwmp"),
                "OptionStruct",
                r.option_list.len(),
            );
            for o in &r.option_list {
                w.open("OptionStruct");
                w.leaf("OptionName", &o.option_name);
                w.leaf_u32("VoucherSN", o.voucher_sn);
                w.leaf_u32("State", o.state);
                w.leaf_i32("Mode", o.mode);
                w.leaf_time("StartDate", &o.start_date);
                if let Some(e) = &o.expiration_date {
                    w.leaf_time("ExpirationDate", e);
                }
                w.leaf_i32("IsTransferable", o.is_transferable);
                w.close("OptionStruct");
            }
            w.close("OptionList");
        }
        Rpc::ScheduleDownload(r) => {
            w.leaf("CommandKey", &r.command_key);
            w.leaf("FileType", &r.file_type);
            w.leaf("URL", &r.url);
            w.leaf("Username", &r.username);
            w.leaf("Password", &r.password);
            w.leaf_u32("FileSize", r.file_size);
            w.leaf("TargetFileName", &r.target_file_name);
            w.open_array(
                "TimeWindowList",
                Some("cwmp"),
                "TimeWindowStruct",
                r.time_window_list.len(),
            );
            for t in &r.time_window_list {
                w.open("TimeWindowStruct");
                w.leaf_u32("WindowStart", t.window_start);
                w.leaf_u32("WindowEnd", t.window_end);
                w.leaf("WindowMode", &t.window_mode);
                w.leaf("UserMessage", &t.user_message);
                w.leaf_i32("MaxRetries", t.max_retries);
                w.close("TimeWindowStruct");
            }
            w.close("TimeWindowList");
        }
        Rpc::CancelTransfer(r) => w.leaf("CommandKey", &r.command_key),
        Rpc::ChangeDUState(r) => {
            for op in &r.operations {
                w.raw("<Operations xsi:type=\"cwmp:");
                w.raw(op.type_name());
                w.raw("\">");
                match op {
                    OperationStruct::Install(o) => {
                        w.leaf("URL", &o.url);
                        w.leaf_opt("UUID", &o.uuid);
                        w.leaf_opt("Username", &o.username);
                        w.leaf_opt("Password", &o.password);
                        w.leaf_opt("ExecutionEnvRef", &o.execution_env_ref);
                    }
                    OperationStruct::Update(o) => {
                        w.leaf_opt("UUID", &o.uuid);
                        w.leaf_opt("Version", &o.version);
                        w.leaf_opt("URL", &o.url);
                        w.leaf_opt("Username", &o.username);
                        w.leaf_opt("Password", &o.password);
                    }
                    OperationStruct::Uninstall(o) => {
                        w.leaf("UUID", &o.uuid);
                        w.leaf_opt("Version", &o.version);
                        w.leaf_opt("ExecutionEnvRef", &o.execution_env_ref);
                    }
                }
                w.close("Operations");
            }
            w.leaf_opt("CommandKey", &r.command_key);
        }
        Rpc::Inform(r) => {
            w.open("DeviceId");
            w.leaf("Manufacturer", &r.device_id.manufacturer);
            w.leaf("OUI", &r.device_id.oui);
            w.leaf("ProductClass", &r.device_id.product_class);
            w.leaf("SerialNumber", &r.device_id.serial_number);
            w.close("DeviceId");
            w.open_array("Event", Some("cwmp"), "EventStruct", r.event.len());
            for e in &r.event {
                w.open("EventStruct");
                w.leaf("EventCode", &e.event_code);
                w.leaf("CommandKey", &e.command_key);
                w.close("EventStruct");
            }
            w.close("Event");
            w.leaf_u32("MaxEnvelopes", r.max_envelopes);
            w.leaf_time("CurrentTime", &r.current_time);
            w.leaf_u32("RetryCount", r.retry_count);
            write_pvs_list(w, &r.parameter_list, None);
        }
        Rpc::InformResponse(r) => w.leaf_u32("MaxEnvelopes", r.max_envelopes),
        Rpc::TransferComplete(r) => {
            w.leaf("CommandKey", &r.command_key);
            write_fault_struct(w, "FaultStruct", &r.fault_struct);
            w.leaf_time("StartTime", &r.start_time);
            w.leaf_time("CompleteTime", &r.complete_time);
        }
        Rpc::AutonomousTransferComplete(r) => {
            w.leaf("AnnounceURL", &r.announce_url);
            w.leaf("TransferURL", &r.transfer_url);
            w.leaf_bool("IsDownload", r.is_download);
            w.leaf("FileType", &r.file_type);
            w.leaf_u32("FileSize", r.file_size);
            w.leaf("TargetFileName", &r.target_file_name);
            write_fault_struct(w, "FaultStruct", &r.fault_struct);
            w.leaf_time("StartTime", &r.start_time);
            w.leaf_time("CompleteTime", &r.complete_time);
        }
        Rpc::DUStateChangeComplete(r) => {
            for x in &r.results {
                w.open("Results");
                write_op_result(
                    w,
                    &x.uuid,
                    &x.deployment_unit_ref,
                    &x.version,
                    &x.current_state,
                    x.resolved,
                    &x.execution_unit_ref_list,
                    &x.start_time,
                    &x.complete_time,
                    &x.fault,
                );
                w.close("Results");
            }
            w.leaf_opt("CommandKey", &r.command_key);
        }
        Rpc::AutonomousDUStateChangeComplete(r) => {
            for x in &r.results {
                w.open("Results");
                write_op_result(
                    w,
                    &x.uuid,
                    &x.deployment_unit_ref,
                    &x.version,
                    &x.current_state,
                    x.resolved,
                    &x.execution_unit_ref_list,
                    &x.start_time,
                    &x.complete_time,
                    &x.fault,
                );
                w.leaf("OperationPerformed", &x.operation_performed);
                w.close("Results");
            }
        }
        Rpc::RequestDownload(r) => {
            w.leaf("FileType", &r.file_type);
            w.open_array(
                "FileTypeArg",
                Some("cwmp"),
                "ArgStruct",
                r.file_type_arg.len(),
            );
            for a in &r.file_type_arg {
                w.open("ArgStruct");
                w.leaf("Name", &a.name);
                w.leaf("Value", &a.value);
                w.close("ArgStruct");
            }
            w.close("FileTypeArg");
        }
        Rpc::Kicked(r) => {
            w.leaf("Command", &r.command);
            w.leaf("Referer", &r.referer);
            w.leaf("Arg", &r.arg);
            w.leaf("Next", &r.next);
        }
        Rpc::KickedResponse(r) => w.leaf("NextURL", &r.next_url),
        // Argument-less variants are handled in write_rpc.
        _ => {}
    }
}
