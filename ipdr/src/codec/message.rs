//! The IPDR/SP version 2 message catalogue (spec §3.2, §3.3): one struct per message body,
//! [`Body`] over all of them, and [`Message`] = header fields + body.

// Outside input: no panicking arithmetic, indexing or unwrapping here (clippy enforces it).
#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::fmt;
use std::net::Ipv4Addr;

use bytes::Bytes;

use super::wire::{
    len_u32, put_opaque, put_string, put_u16, put_u32, put_u64, put_u8, DecodeError, EncodeError,
    Reader,
};
use crate::xdr::{TypeId, MAX_NESTING};

/// IPDR/SP protocol version carried in byte 0 of every header.
pub const VERSION: u8 = 2;
/// Length of the common header (version, messageId, sessionId, messageFlags, messageLen).
pub const HEADER_LEN: usize = 8;
/// Default IPDR/SP TCP port (and UDP version-discovery port).
pub const DEFAULT_PORT: u16 = 4737;

/// Message identifiers (spec §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageId {
    FlowStart = 0x01,
    FlowStop = 0x03,
    Connect = 0x05,
    ConnectResponse = 0x06,
    Disconnect = 0x07,
    SessionStart = 0x08,
    SessionStop = 0x09,
    TemplateData = 0x10,
    FinalTemplateDataAck = 0x13,
    GetSessions = 0x14,
    GetSessionsResponse = 0x15,
    GetTemplates = 0x16,
    GetTemplatesResponse = 0x17,
    ModifyTemplate = 0x1a,
    ModifyTemplateResponse = 0x1b,
    StartNegotiation = 0x1d,
    StartNegotiationReject = 0x1e,
    Data = 0x20,
    DataAck = 0x21,
    Error = 0x23,
    Request = 0x30,
    Response = 0x31,
    KeepAlive = 0x40,
}

impl MessageId {
    /// Every message of the catalogue, in ID order.
    pub const ALL: [MessageId; 23] = [
        MessageId::FlowStart,
        MessageId::FlowStop,
        MessageId::Connect,
        MessageId::ConnectResponse,
        MessageId::Disconnect,
        MessageId::SessionStart,
        MessageId::SessionStop,
        MessageId::TemplateData,
        MessageId::FinalTemplateDataAck,
        MessageId::GetSessions,
        MessageId::GetSessionsResponse,
        MessageId::GetTemplates,
        MessageId::GetTemplatesResponse,
        MessageId::ModifyTemplate,
        MessageId::ModifyTemplateResponse,
        MessageId::StartNegotiation,
        MessageId::StartNegotiationReject,
        MessageId::Data,
        MessageId::DataAck,
        MessageId::Error,
        MessageId::Request,
        MessageId::Response,
        MessageId::KeepAlive,
    ];

    /// The message for a wire ID, `None` if the ID is not in the catalogue.
    pub fn from_u8(id: u8) -> Option<MessageId> {
        MessageId::ALL.iter().copied().find(|m| *m as u8 == id)
    }

    /// The name used by the specification, e.g. `FINAL_TEMPLATE_DATA_ACK`.
    pub fn name(self) -> &'static str {
        match self {
            MessageId::FlowStart => "FLOW_START",
            MessageId::FlowStop => "FLOW_STOP",
            MessageId::Connect => "CONNECT",
            MessageId::ConnectResponse => "CONNECT_RESPONSE",
            MessageId::Disconnect => "DISCONNECT",
            MessageId::SessionStart => "SESSION_START",
            MessageId::SessionStop => "SESSION_STOP",
            MessageId::TemplateData => "TEMPLATE_DATA",
            MessageId::FinalTemplateDataAck => "FINAL_TEMPLATE_DATA_ACK",
            MessageId::GetSessions => "GET_SESSIONS",
            MessageId::GetSessionsResponse => "GET_SESSIONS_RESPONSE",
            MessageId::GetTemplates => "GET_TEMPLATES",
            MessageId::GetTemplatesResponse => "GET_TEMPLATES_RESPONSE",
            MessageId::ModifyTemplate => "MODIFY_TEMPLATE",
            MessageId::ModifyTemplateResponse => "MODIFY_TEMPLATE_RESPONSE",
            MessageId::StartNegotiation => "START_NEGOTIATION",
            MessageId::StartNegotiationReject => "START_NEGOTIATION_REJECT",
            MessageId::Data => "DATA",
            MessageId::DataAck => "DATA_ACK",
            MessageId::Error => "ERROR",
            MessageId::Request => "REQUEST",
            MessageId::Response => "RESPONSE",
            MessageId::KeepAlive => "KEEP_ALIVE",
        }
    }

    /// Whether the header `sessionId` is meaningful for this message. Connection-level
    /// messages (CONNECT, CONNECT_RESPONSE, DISCONNECT, KEEP_ALIVE, GET_SESSIONS(_RESPONSE))
    /// ignore it; for ERROR it depends on the error code's session flag.
    pub fn is_session_scoped(self) -> bool {
        !matches!(
            self,
            MessageId::Connect
                | MessageId::ConnectResponse
                | MessageId::Disconnect
                | MessageId::GetSessions
                | MessageId::GetSessionsResponse
                | MessageId::Error
                | MessageId::KeepAlive
        )
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// CONNECT / CONNECT_RESPONSE capability bits (spec §3.4). A capability is in force only
/// when both sides set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(pub u32);

impl Capabilities {
    /// Records may contain arrays and sub-structures.
    pub const STRUCTURES: Capabilities = Capabilities(0x01);
    /// More than one session on the connection.
    pub const MULTISESSION: Capabilities = Capabilities(0x02);
    /// The collector may send MODIFY_TEMPLATE / START_NEGOTIATION.
    pub const TEMPLATE_NEGOTIATION: Capabilities = Capabilities(0x04);
    pub const NONE: Capabilities = Capabilities(0);

    pub fn contains(self, other: Capabilities) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn intersection(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 & other.0)
    }

    pub fn union(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 | other.0)
    }
}

/// ERROR message codes (spec §3.5): the low 15 bits of `errorCode`. 0–255 are standard,
/// above 255 vendor-specific.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u16);

impl ErrorCode {
    pub const KEEP_ALIVE_EXPIRED: ErrorCode = ErrorCode(0);
    pub const MESSAGE_INVALID_FOR_CAPABILITIES: ErrorCode = ErrorCode(1);
    pub const MESSAGE_INVALID_FOR_STATE: ErrorCode = ErrorCode(2);
    pub const MESSAGE_DECODE_ERROR: ErrorCode = ErrorCode(3);
    pub const PROCESS_TERMINATING: ErrorCode = ErrorCode(4);

    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "keep-alive expired",
            1 => "message invalid for capabilities",
            2 => "message invalid for state",
            3 => "message decode error",
            4 => "process terminating",
            5..=255 => "reserved",
            _ => "vendor-specific",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.0, self.name())
    }
}

/// FLOW_STOP reason codes (spec §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowStopReason(pub u16);

impl FlowStopReason {
    pub const NORMAL: FlowStopReason = FlowStopReason(0);
    pub const PROCESS_ERROR: FlowStopReason = FlowStopReason(1);
}

/// SESSION_STOP reason codes (spec §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionStopReason(pub u16);

impl SessionStopReason {
    pub const END_OF_DATA: SessionStopReason = SessionStopReason(0);
    pub const HANDOFF_TO_HIGHER_PRIORITY: SessionStopReason = SessionStopReason(1);
    pub const EXPORTER_TERMINATING: SessionStopReason = SessionStopReason(2);
    pub const CONGESTION: SessionStopReason = SessionStopReason(3);
    pub const RENEGOTIATION_REQUIRED: SessionStopReason = SessionStopReason(4);
    pub const START_NEGOTIATION_ACK: SessionStopReason = SessionStopReason(5);
    pub const END_OF_DOCUMENT: SessionStopReason = SessionStopReason(6);
    pub const TEMPLATE_DATA_UPDATED: SessionStopReason = SessionStopReason(7);
}

/// The 16-byte `documentId` of SESSION_START (a UUID).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct DocumentId(pub [u8; 16]);

impl DocumentId {
    pub const NIL: DocumentId = DocumentId([0; 16]);

    pub fn is_nil(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocumentId({self})")
    }
}

/// One field of a template (spec §3.3 `FieldDescriptor`).
///
/// `children` is only used when `type_id` has the structure flag: the nested descriptors
/// then follow `isEnabled` on the wire as a `u32` count + descriptors. SP 2.1 does not spell
/// the wire form of structured templates out; this follows the IPDR/XDR file library and is
/// **unverified** against a real exporter (spec §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDescriptor {
    pub type_id: TypeId,
    pub field_id: u32,
    pub name: String,
    pub enabled: bool,
    pub children: Vec<FieldDescriptor>,
}

impl FieldDescriptor {
    /// A primitive field, enabled.
    pub fn new(type_id: TypeId, field_id: u32, name: impl Into<String>) -> Self {
        FieldDescriptor {
            type_id,
            field_id,
            name: name.into(),
            enabled: true,
            children: Vec::new(),
        }
    }
}

/// One template (spec §3.3 `TemplateBlock`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateBlock {
    pub template_id: u16,
    pub schema_name: String,
    pub type_name: String,
    pub fields: Vec<FieldDescriptor>,
}

/// One session as listed by GET_SESSIONS_RESPONSE (spec §3.3 `SessionBlock`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionBlock {
    pub session_id: u8,
    /// Reserved; the reference exporter fills it with junk. Kept for exact re-encoding.
    pub reserved: u8,
    pub name: String,
    pub description: String,
    /// The reference exporter reports milliseconds here but seconds in SESSION_START.
    pub ack_time_interval: u32,
    pub ack_sequence_interval: u32,
}

/// CONNECT (0x05).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    pub initiator_address: Ipv4Addr,
    pub initiator_port: u16,
    pub capabilities: Capabilities,
    /// Longest silence (seconds) the initiator tolerates from the peer.
    pub keep_alive_interval: u32,
    pub vendor_id: String,
}

/// CONNECT_RESPONSE (0x06).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectResponse {
    pub capabilities: Capabilities,
    /// Longest silence (seconds) the responder tolerates from the initiator.
    pub keep_alive_interval: u32,
    pub vendor_id: String,
}

/// FLOW_STOP (0x03).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStop {
    pub reason_code: FlowStopReason,
    pub reason_info: String,
}

/// SESSION_START (0x08).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStart {
    /// Seconds since the epoch.
    pub exporter_boot_time: u32,
    pub first_record_sequence_number: u64,
    pub dropped_record_count: u64,
    pub primary: bool,
    /// Seconds.
    pub ack_time_interval: u32,
    pub ack_sequence_interval: u32,
    pub document_id: DocumentId,
}

/// SESSION_STOP (0x09).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStop {
    pub reason_code: SessionStopReason,
    pub reason_info: String,
}

/// TEMPLATE_DATA (0x10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateData {
    pub config_id: u16,
    /// Bit 0: the templates are negotiable.
    pub flags: u8,
    pub templates: Vec<TemplateBlock>,
}

impl TemplateData {
    pub const FLAG_NEGOTIABLE: u8 = 0x01;

    pub fn negotiable(&self) -> bool {
        self.flags & Self::FLAG_NEGOTIABLE != 0
    }
}

/// GET_SESSIONS (0x14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetSessions {
    pub request_id: u16,
}

/// GET_SESSIONS_RESPONSE (0x15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetSessionsResponse {
    pub request_id: u16,
    pub sessions: Vec<SessionBlock>,
}

/// GET_TEMPLATES (0x16); the header sessionId selects the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetTemplates {
    pub request_id: u16,
}

/// GET_TEMPLATES_RESPONSE (0x17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetTemplatesResponse {
    pub request_id: u16,
    pub config_id: u16,
    pub templates: Vec<TemplateBlock>,
}

/// MODIFY_TEMPLATE (0x1a): the changes the collector proposes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModifyTemplate {
    pub config_id: u16,
    pub flags: u8,
    pub templates: Vec<TemplateBlock>,
}

/// MODIFY_TEMPLATE_RESPONSE (0x1b): the final set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModifyTemplateResponse {
    pub config_id: u16,
    pub flags: u8,
    pub templates: Vec<TemplateBlock>,
}

/// DATA (0x20). `record` is the record bytes after the `u32` record length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Data {
    pub template_id: u16,
    pub config_id: u16,
    /// Bit 0: possible duplicate (resent after a failover).
    pub flags: u8,
    pub sequence_num: u64,
    pub record: Bytes,
}

impl Data {
    pub const FLAG_DUPLICATE: u8 = 0x01;

    pub fn possible_duplicate(&self) -> bool {
        self.flags & Self::FLAG_DUPLICATE != 0
    }
}

/// DATA_ACK (0x21).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataAck {
    pub config_id: u16,
    /// Last in-order sequence number durably processed.
    pub sequence_num: u64,
}

/// ERROR (0x23).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMessage {
    /// Seconds since the epoch.
    pub timestamp: u32,
    /// MSB of `errorCode`: the error concerns the header's session only. When false the
    /// sender closes the connection after sending it.
    pub session_specific: bool,
    pub code: ErrorCode,
    pub description: String,
}

/// REQUEST (0x30) / RESPONSE (0x31), SP 2.2. `data` is everything after the request number
/// (layout known from Wireshark only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestResponse {
    pub template_id: u16,
    pub config_id: u16,
    pub flags: u8,
    pub request_number: u64,
    pub data: Bytes,
}

/// The body of one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    FlowStart,
    FlowStop(FlowStop),
    Connect(Connect),
    ConnectResponse(ConnectResponse),
    Disconnect,
    SessionStart(SessionStart),
    SessionStop(SessionStop),
    TemplateData(TemplateData),
    FinalTemplateDataAck,
    GetSessions(GetSessions),
    GetSessionsResponse(GetSessionsResponse),
    GetTemplates(GetTemplates),
    GetTemplatesResponse(GetTemplatesResponse),
    ModifyTemplate(ModifyTemplate),
    ModifyTemplateResponse(ModifyTemplateResponse),
    StartNegotiation,
    StartNegotiationReject,
    Data(Data),
    DataAck(DataAck),
    Error(ErrorMessage),
    Request(RequestResponse),
    Response(RequestResponse),
    KeepAlive,
}

impl Body {
    pub fn id(&self) -> MessageId {
        match self {
            Body::FlowStart => MessageId::FlowStart,
            Body::FlowStop(_) => MessageId::FlowStop,
            Body::Connect(_) => MessageId::Connect,
            Body::ConnectResponse(_) => MessageId::ConnectResponse,
            Body::Disconnect => MessageId::Disconnect,
            Body::SessionStart(_) => MessageId::SessionStart,
            Body::SessionStop(_) => MessageId::SessionStop,
            Body::TemplateData(_) => MessageId::TemplateData,
            Body::FinalTemplateDataAck => MessageId::FinalTemplateDataAck,
            Body::GetSessions(_) => MessageId::GetSessions,
            Body::GetSessionsResponse(_) => MessageId::GetSessionsResponse,
            Body::GetTemplates(_) => MessageId::GetTemplates,
            Body::GetTemplatesResponse(_) => MessageId::GetTemplatesResponse,
            Body::ModifyTemplate(_) => MessageId::ModifyTemplate,
            Body::ModifyTemplateResponse(_) => MessageId::ModifyTemplateResponse,
            Body::StartNegotiation => MessageId::StartNegotiation,
            Body::StartNegotiationReject => MessageId::StartNegotiationReject,
            Body::Data(_) => MessageId::Data,
            Body::DataAck(_) => MessageId::DataAck,
            Body::Error(_) => MessageId::Error,
            Body::Request(_) => MessageId::Request,
            Body::Response(_) => MessageId::Response,
            Body::KeepAlive => MessageId::KeepAlive,
        }
    }
}

/// One IPDR/SP message: the header fields that are not derived from the body, the body,
/// and any bytes inside `messageLen` after the body.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub session_id: u8,
    /// Header `messageFlags` (reserved, 0).
    pub message_flags: u8,
    pub body: Body,
    /// Bytes counted in `messageLen` after the decoded body. The reference exporter's
    /// CONNECT_RESPONSE carries one junk byte here. Kept so that re-encoding is exact.
    pub trailing: Bytes,
}

impl Message {
    /// A message with flags 0 and no trailing bytes.
    pub fn new(session_id: u8, body: Body) -> Message {
        Message {
            session_id,
            message_flags: 0,
            body,
            trailing: Bytes::new(),
        }
    }

    pub fn id(&self) -> MessageId {
        self.body.id()
    }

    /// Appends the encoded message (header included) to `out`; returns its length.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
        let start = out.len();
        out.extend_from_slice(&[
            VERSION,
            self.id() as u8,
            self.session_id,
            self.message_flags,
        ]);
        put_u32(out, 0); // patched below
        let r = encode_body(&self.body, out).and_then(|()| {
            out.extend_from_slice(&self.trailing);
            len_u32(out.len().saturating_sub(start), "messageLen")
        });
        match r {
            Ok(len) => {
                // The header's messageLen field, written as 0 above.
                let at = start.saturating_add(4);
                if let Some(field) = out.get_mut(at..at.saturating_add(4)) {
                    field.copy_from_slice(&len.to_be_bytes());
                }
                Ok(len as usize)
            }
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }

    /// The encoded message as a new vector.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut v = Vec::new();
        self.encode(&mut v)?;
        Ok(v)
    }
}

fn encode_templates(out: &mut Vec<u8>, ts: &[TemplateBlock]) -> Result<(), EncodeError> {
    put_u32(out, len_u32(ts.len(), "templates")?);
    for t in ts {
        put_u16(out, t.template_id);
        put_string(out, &t.schema_name, "schemaName")?;
        put_string(out, &t.type_name, "typeName")?;
        encode_fields(out, &t.fields)?;
    }
    Ok(())
}

fn encode_fields(out: &mut Vec<u8>, fs: &[FieldDescriptor]) -> Result<(), EncodeError> {
    put_u32(out, len_u32(fs.len(), "fields")?);
    for f in fs {
        put_u32(out, f.type_id.0);
        put_u32(out, f.field_id);
        put_string(out, &f.name, "fieldName")?;
        put_u8(out, f.enabled as u8);
        if f.type_id.is_structure() {
            encode_fields(out, &f.children)?;
        }
    }
    Ok(())
}

fn encode_body(body: &Body, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match body {
        Body::FlowStart
        | Body::Disconnect
        | Body::FinalTemplateDataAck
        | Body::StartNegotiation
        | Body::StartNegotiationReject
        | Body::KeepAlive => {}
        Body::FlowStop(m) => {
            put_u16(out, m.reason_code.0);
            put_string(out, &m.reason_info, "reasonInfo")?;
        }
        Body::Connect(m) => {
            put_u32(out, u32::from(m.initiator_address));
            put_u16(out, m.initiator_port);
            put_u32(out, m.capabilities.0);
            put_u32(out, m.keep_alive_interval);
            put_string(out, &m.vendor_id, "vendorId")?;
        }
        Body::ConnectResponse(m) => {
            put_u32(out, m.capabilities.0);
            put_u32(out, m.keep_alive_interval);
            put_string(out, &m.vendor_id, "vendorId")?;
        }
        Body::SessionStart(m) => {
            put_u32(out, m.exporter_boot_time);
            put_u64(out, m.first_record_sequence_number);
            put_u64(out, m.dropped_record_count);
            put_u8(out, m.primary as u8);
            put_u32(out, m.ack_time_interval);
            put_u32(out, m.ack_sequence_interval);
            out.extend_from_slice(&m.document_id.0);
        }
        Body::SessionStop(m) => {
            put_u16(out, m.reason_code.0);
            put_string(out, &m.reason_info, "reasonInfo")?;
        }
        Body::TemplateData(m) => {
            put_u16(out, m.config_id);
            put_u8(out, m.flags);
            encode_templates(out, &m.templates)?;
        }
        Body::GetSessions(m) => put_u16(out, m.request_id),
        Body::GetSessionsResponse(m) => {
            put_u16(out, m.request_id);
            put_u32(out, len_u32(m.sessions.len(), "sessions")?);
            for s in &m.sessions {
                put_u8(out, s.session_id);
                put_u8(out, s.reserved);
                put_string(out, &s.name, "sessionName")?;
                put_string(out, &s.description, "sessionDescription")?;
                put_u32(out, s.ack_time_interval);
                put_u32(out, s.ack_sequence_interval);
            }
        }
        Body::GetTemplates(m) => put_u16(out, m.request_id),
        Body::GetTemplatesResponse(m) => {
            put_u16(out, m.request_id);
            put_u16(out, m.config_id);
            encode_templates(out, &m.templates)?;
        }
        Body::ModifyTemplate(m) => {
            put_u16(out, m.config_id);
            put_u8(out, m.flags);
            encode_templates(out, &m.templates)?;
        }
        Body::ModifyTemplateResponse(m) => {
            put_u16(out, m.config_id);
            put_u8(out, m.flags);
            encode_templates(out, &m.templates)?;
        }
        Body::Data(m) => {
            put_u16(out, m.template_id);
            put_u16(out, m.config_id);
            put_u8(out, m.flags);
            put_u64(out, m.sequence_num);
            put_opaque(out, &m.record, "dataRecord")?;
        }
        Body::DataAck(m) => {
            put_u16(out, m.config_id);
            put_u64(out, m.sequence_num);
        }
        Body::Error(m) => {
            put_u32(out, m.timestamp);
            let flag = if m.session_specific { 0x8000 } else { 0 };
            put_u16(out, flag | (m.code.0 & 0x7fff));
            put_string(out, &m.description, "description")?;
        }
        Body::Request(m) | Body::Response(m) => {
            put_u16(out, m.template_id);
            put_u16(out, m.config_id);
            put_u8(out, m.flags);
            put_u64(out, m.request_number);
            out.extend_from_slice(&m.data);
        }
    }
    Ok(())
}

// Smallest wire sizes, used to bound element counts before allocating.
const MIN_FIELD_DESCRIPTOR: usize = 4 + 4 + 4 + 1;
const MIN_TEMPLATE_BLOCK: usize = 2 + 4 + 4 + 4;
const MIN_SESSION_BLOCK: usize = 1 + 1 + 4 + 4 + 4 + 4;

fn decode_templates(r: &mut Reader<'_>) -> Result<Vec<TemplateBlock>, DecodeError> {
    let n = r.count("templates", MIN_TEMPLATE_BLOCK)?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(TemplateBlock {
            template_id: r.u16("templateId")?,
            schema_name: r.string("schemaName")?,
            type_name: r.string("typeName")?,
            fields: decode_fields(r, 0)?,
        });
    }
    Ok(v)
}

fn decode_fields(r: &mut Reader<'_>, depth: usize) -> Result<Vec<FieldDescriptor>, DecodeError> {
    if depth > MAX_NESTING {
        return Err(DecodeError::TooDeep { max: MAX_NESTING });
    }
    let n = r.count("fields", MIN_FIELD_DESCRIPTOR)?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let type_id = TypeId(r.u32("typeId")?);
        let field_id = r.u32("fieldId")?;
        let name = r.string("fieldName")?;
        let enabled = r.u8("isEnabled")? != 0;
        let children = if type_id.is_structure() {
            decode_fields(r, depth.saturating_add(1))?
        } else {
            Vec::new()
        };
        v.push(FieldDescriptor {
            type_id,
            field_id,
            name,
            enabled,
            children,
        });
    }
    Ok(v)
}

/// Decodes the body of a message whose header said `id`. `frame` is the whole message
/// (header included); byte payloads (DATA records) are zero-copy slices of it.
pub(crate) fn decode_body(id: MessageId, frame: &Bytes) -> Result<(Body, usize), DecodeError> {
    let mut r = Reader::new(frame);
    r.take(HEADER_LEN, "header")?;
    let body = match id {
        MessageId::FlowStart => Body::FlowStart,
        MessageId::Disconnect => Body::Disconnect,
        MessageId::FinalTemplateDataAck => Body::FinalTemplateDataAck,
        MessageId::StartNegotiation => Body::StartNegotiation,
        MessageId::StartNegotiationReject => Body::StartNegotiationReject,
        MessageId::KeepAlive => Body::KeepAlive,
        MessageId::FlowStop => Body::FlowStop(FlowStop {
            reason_code: FlowStopReason(r.u16("reasonCode")?),
            reason_info: r.string("reasonInfo")?,
        }),
        MessageId::Connect => Body::Connect(Connect {
            initiator_address: Ipv4Addr::from(r.u32("initiatorAddress")?),
            initiator_port: r.u16("initiatorPort")?,
            capabilities: Capabilities(r.u32("capabilities")?),
            keep_alive_interval: r.u32("keepAliveInterval")?,
            vendor_id: r.string("vendorId")?,
        }),
        MessageId::ConnectResponse => Body::ConnectResponse(ConnectResponse {
            capabilities: Capabilities(r.u32("capabilities")?),
            keep_alive_interval: r.u32("keepAliveInterval")?,
            vendor_id: r.string("vendorId")?,
        }),
        MessageId::SessionStart => Body::SessionStart(SessionStart {
            exporter_boot_time: r.u32("exporterBootTime")?,
            first_record_sequence_number: r.u64("firstRecordSequenceNumber")?,
            dropped_record_count: r.u64("droppedRecordCount")?,
            primary: r.u8("primary")? != 0,
            ack_time_interval: r.u32("ackTimeInterval")?,
            ack_sequence_interval: r.u32("ackSequenceInterval")?,
            document_id: DocumentId(r.bytes16("documentId")?),
        }),
        MessageId::SessionStop => Body::SessionStop(SessionStop {
            reason_code: SessionStopReason(r.u16("reasonCode")?),
            reason_info: r.string("reasonInfo")?,
        }),
        MessageId::TemplateData => Body::TemplateData(TemplateData {
            config_id: r.u16("configId")?,
            flags: r.u8("flags")?,
            templates: decode_templates(&mut r)?,
        }),
        MessageId::GetSessions => Body::GetSessions(GetSessions {
            request_id: r.u16("requestId")?,
        }),
        MessageId::GetSessionsResponse => {
            let request_id = r.u16("requestId")?;
            let n = r.count("sessions", MIN_SESSION_BLOCK)?;
            let mut sessions = Vec::with_capacity(n);
            for _ in 0..n {
                sessions.push(SessionBlock {
                    session_id: r.u8("sessionId")?,
                    reserved: r.u8("reserved")?,
                    name: r.string("sessionName")?,
                    description: r.string("sessionDescription")?,
                    ack_time_interval: r.u32("ackTimeInterval")?,
                    ack_sequence_interval: r.u32("ackSequenceInterval")?,
                });
            }
            Body::GetSessionsResponse(GetSessionsResponse {
                request_id,
                sessions,
            })
        }
        MessageId::GetTemplates => Body::GetTemplates(GetTemplates {
            request_id: r.u16("requestId")?,
        }),
        MessageId::GetTemplatesResponse => Body::GetTemplatesResponse(GetTemplatesResponse {
            request_id: r.u16("requestId")?,
            config_id: r.u16("configId")?,
            templates: decode_templates(&mut r)?,
        }),
        MessageId::ModifyTemplate => Body::ModifyTemplate(ModifyTemplate {
            config_id: r.u16("configId")?,
            flags: r.u8("flags")?,
            templates: decode_templates(&mut r)?,
        }),
        MessageId::ModifyTemplateResponse => Body::ModifyTemplateResponse(ModifyTemplateResponse {
            config_id: r.u16("configId")?,
            flags: r.u8("flags")?,
            templates: decode_templates(&mut r)?,
        }),
        MessageId::Data => {
            let template_id = r.u16("templateId")?;
            let config_id = r.u16("configId")?;
            let flags = r.u8("flags")?;
            let sequence_num = r.u64("sequenceNum")?;
            let rec = r.opaque("dataRecord")?;
            let end = r.position();
            Body::Data(Data {
                template_id,
                config_id,
                flags,
                sequence_num,
                // `rec` is the last `rec.len()` bytes read: end ≥ rec.len().
                record: frame.slice(end.saturating_sub(rec.len())..end),
            })
        }
        MessageId::DataAck => Body::DataAck(DataAck {
            config_id: r.u16("configId")?,
            sequence_num: r.u64("sequenceNum")?,
        }),
        MessageId::Error => {
            let timestamp = r.u32("timestamp")?;
            let code = r.u16("errorCode")?;
            Body::Error(ErrorMessage {
                timestamp,
                session_specific: code & 0x8000 != 0,
                code: ErrorCode(code & 0x7fff),
                description: r.string("description")?,
            })
        }
        MessageId::Request | MessageId::Response => {
            let template_id = r.u16("templateId")?;
            let config_id = r.u16("configId")?;
            let flags = r.u8("flags")?;
            let request_number = r.u64("requestNumber")?;
            let start = r.position();
            r.rest();
            let m = RequestResponse {
                template_id,
                config_id,
                flags,
                request_number,
                data: frame.slice(start..),
            };
            if id == MessageId::Request {
                Body::Request(m)
            } else {
                Body::Response(m)
            }
        }
    };
    Ok((body, r.position()))
}
