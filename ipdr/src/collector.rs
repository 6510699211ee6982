//! The collector side of IPDR/SP as a sans-IO state machine (one per connection).
//!
//! Inputs: decoded messages ([`Collector::handle_message`]), framing errors
//! ([`Collector::handle_frame_error`]), time ([`Collector::handle_timeout`] at
//! [`Collector::poll_timeout`]), storage durability ([`Collector::records_durable`]) and
//! commands (GET_SESSIONS, FLOW_STOP, DISCONNECT…). Outputs, drained with
//! [`Collector::poll_output`]: messages to send, records to persist, events, close.
//!
//! # Protocol rules this machine keeps
//!
//! * Either side may connect: [`Direction::Outbound`] sends CONNECT at once and waits for
//!   CONNECT_RESPONSE; [`Direction::Inbound`] waits for CONNECT and answers. Capabilities in
//!   force are the intersection of both offers (spec §3.4).
//! * After the handshake: GET_SESSIONS (if [`CollectorConfig::query_sessions`]), then
//!   FLOW_START for each wanted session (only one unless MULTISESSION is in force).
//! * TEMPLATE_DATA is answered with FINAL_TEMPLATE_DATA_ACK. When the templates are
//!   negotiable, negotiation is in force and [`CollectorConfig::fields`] (or an unsupported
//!   type) wants fields disabled, MODIFY_TEMPLATE goes first and the final set comes from
//!   MODIFY_TEMPLATE_RESPONSE. Fields that could not be disabled are decoded and dropped.
//! * DATA: records are decoded and handed out as [`Output::Persist`]. DATA_ACK carries the
//!   highest DSN up to which every persisted record is **durable** (as reported by
//!   [`Collector::records_durable`]), never more. It is sent as soon as storage has caught
//!   up with everything received, or earlier-than-caught-up when `ackSequenceInterval`
//!   records are unacknowledged or half of `ackTimeInterval` has passed since the oldest
//!   unacknowledged record.
//! * De-duplication: per (session, documentId) the highest processed DSN is kept (also
//!   across SESSION_STOP/SESSION_START of the same document); a DATA at or below it is a
//!   retransmission or out of order and is discarded (spec §3.7). Forward gaps are accepted
//!   with an [`Event::SequenceGap`] warning. The storage key of a record is
//!   (exporter, session, documentId, DSN); across connections storage must insert
//!   idempotently on it (or seed the machine with [`Collector::resume_document`]).
//! * A nil documentId (the reference exporter sends all zeros) cannot identify a document:
//!   each such SESSION_START gets a synthesized RFC 9562 version-8 UUID built from
//!   [`ConnectionInfo::nonce`], so records of successive documents never collide.
//! * A DATA that cannot be used is answered with a session-specific ERROR and nothing is
//!   persisted: before SESSION_START or with a configId not in force → code 2; unknown
//!   template or undecodable record → code 3. An undecodable record (received in a started
//!   session) still counts as processed, so acknowledgements move past it; the raw bytes
//!   are in [`Event::RecordRejected`] for the caller to dead-letter.
//! * Keep-alive: a KEEP_ALIVE is sent when nothing was sent for half the interval the peer
//!   advertised; when nothing arrives within our advertised interval the machine sends
//!   ERROR 0 (keep-alive expired) and closes.
//! * A connection-level ERROR or DISCONNECT from the peer closes; a fatal framing error is
//!   answered with ERROR 3 and closes.

// Outside input: no panicking arithmetic, indexing or unwrapping here (clippy enforces it).
// Indexing is allowed: every index into the session table comes from our own lookup in it.
#![deny(
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used
)]
#![allow(clippy::indexing_slicing)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddrV4;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use thiserror::Error;

use crate::codec::{
    Body, Capabilities, Connect, ConnectResponse, Data, DataAck, DocumentId, ErrorCode,
    ErrorMessage, FieldDescriptor, FlowStop, FlowStopReason, FrameError, Framer, GetSessions,
    GetSessionsResponse, GetTemplates, Message, ModifyTemplate, ModifyTemplateResponse,
    SessionBlock, SessionStart, SessionStop, SessionStopReason, TemplateBlock, TemplateData,
    DEFAULT_MAX_MESSAGE_LEN,
};
use crate::xdr::{
    decode_record, FieldName, RecordError, RecordOptions, Template, TemplateError, Value,
};

/// Who the records come from, as the caller names it (peer address, device id…). Carried
/// in every [`Record`].
pub type ExporterId = Arc<str>;

/// Which sessions to FLOW_START.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SessionFilter {
    /// Every session listed by GET_SESSIONS_RESPONSE.
    #[default]
    All,
    /// These session IDs (started directly when [`CollectorConfig::query_sessions`] is
    /// false).
    Only(Vec<u8>),
}

impl SessionFilter {
    pub fn accepts(&self, session_id: u8) -> bool {
        match self {
            SessionFilter::All => true,
            SessionFilter::Only(ids) => ids.contains(&session_id),
        }
    }
}

/// Which template fields the collector wants. A name matches a field whose full name is
/// equal to it or whose local part (after the last `:`) is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FieldSelection {
    #[default]
    All,
    Only(Vec<String>),
    Except(Vec<String>),
}

impl FieldSelection {
    pub fn keeps(&self, field: &str) -> bool {
        let matches = |p: &String| p == field || field.rsplit(':').next() == Some(p.as_str());
        match self {
            FieldSelection::All => true,
            FieldSelection::Only(names) => names.iter().any(matches),
            FieldSelection::Except(names) => !names.iter().any(matches),
        }
    }
}

/// Configuration shared by all connections.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    /// vendorId in CONNECT / CONNECT_RESPONSE.
    pub vendor_id: String,
    /// Capabilities offered.
    pub capabilities: Capabilities,
    /// Seconds of silence we tolerate from the exporter (advertised); 0 = never time out.
    pub keep_alive_interval: u32,
    /// How long to wait for CONNECT (inbound) or CONNECT_RESPONSE (outbound).
    pub connect_timeout: Duration,
    /// Send GET_SESSIONS after the handshake and FLOW_START what it lists.
    pub query_sessions: bool,
    pub sessions: SessionFilter,
    pub fields: FieldSelection,
    /// Per-peer record decoding quirks.
    pub record_options: RecordOptions,
    /// How many (session, documentId) de-duplication watermarks to remember.
    pub max_documents: usize,
    /// Largest `messageLen` accepted by [`CollectorConfig::framer`].
    pub max_message_len: usize,
}

impl CollectorConfig {
    /// A framer bounded by [`CollectorConfig::max_message_len`].
    pub fn framer(&self) -> Framer {
        Framer::new(self.max_message_len)
    }
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            vendor_id: "Keelson IPDR collector".into(),
            capabilities: Capabilities::STRUCTURES
                .union(Capabilities::MULTISESSION)
                .union(Capabilities::TEMPLATE_NEGOTIATION),
            keep_alive_interval: 30,
            connect_timeout: Duration::from_secs(15),
            query_sessions: true,
            sessions: SessionFilter::All,
            fields: FieldSelection::All,
            record_options: RecordOptions::default(),
            max_documents: 4096,
            max_message_len: DEFAULT_MAX_MESSAGE_LEN,
        }
    }
}

/// Who opened the transport connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Direction {
    /// The exporter connected to us: wait for its CONNECT.
    Inbound,
    /// We dialled the exporter from `local`: send CONNECT (initiatorAddress/Port = `local`).
    Outbound { local: SocketAddrV4 },
}

/// Per-connection facts supplied by the caller.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub exporter: ExporterId,
    pub direction: Direction,
    /// Wall clock (seconds since the epoch) at creation; ERROR timestamps derive from it.
    pub unix_time: u32,
    /// Unique per connection (random or a counter); seeds synthesized documentIds.
    pub nonce: u64,
}

/// One decoded record to store. Acknowledge it with [`Collector::records_durable`].
#[derive(Debug, Clone)]
pub struct Record {
    pub exporter: ExporterId,
    pub session_id: u8,
    /// Effective documentId (synthesized when the exporter sent a nil one).
    pub document_id: DocumentId,
    pub sequence_num: u64,
    pub config_id: u16,
    pub template: Arc<Template>,
    /// DATA flag bit 0: the exporter resent it after a failover.
    pub possible_duplicate: bool,
    pub fields: Vec<(FieldName, Value)>,
}

/// Something the caller must do or may log.
#[derive(Debug, Clone)]
pub enum Event {
    /// Handshake done.
    Connected {
        vendor_id: String,
        capabilities: Capabilities,
        peer_keep_alive: u32,
    },
    SessionsListed {
        request_id: u16,
        sessions: Vec<SessionBlock>,
    },
    /// A template set is now in force for the session.
    TemplateChanged {
        session_id: u8,
        config_id: u16,
        templates: Vec<Arc<Template>>,
    },
    /// TEMPLATE_DATA could not be used; the flow was stopped.
    TemplateRejected {
        session_id: u8,
        config_id: u16,
        error: TemplateError,
    },
    /// Answer to [`Collector::get_templates`] (informational; templates in force change only
    /// through TEMPLATE_DATA / MODIFY_TEMPLATE_RESPONSE).
    TemplatesReported {
        session_id: u8,
        request_id: u16,
        config_id: u16,
        templates: Vec<TemplateBlock>,
    },
    NegotiationRejected {
        session_id: u8,
    },
    SessionStarted {
        session_id: u8,
        /// Effective documentId used in [`Record::document_id`].
        document_id: DocumentId,
        start: SessionStart,
    },
    SessionStopped {
        session_id: u8,
        /// The document that was running (`None` if the session had none).
        document_id: Option<DocumentId>,
        reason: SessionStopReason,
        reason_info: String,
    },
    /// DSNs were skipped (spec §3.7: a warning, not an error).
    SequenceGap {
        session_id: u8,
        document_id: DocumentId,
        expected: u64,
        received: u64,
    },
    /// A DATA record could not be decoded: nothing persisted, ERROR sent.
    RecordRejected {
        session_id: u8,
        document_id: DocumentId,
        sequence_num: u64,
        config_id: u16,
        template_id: u16,
        error: RecordError,
        record: Bytes,
    },
    /// Records have waited longer than ackTimeInterval for durability.
    AckOverdue {
        session_id: u8,
        document_id: DocumentId,
        pending: usize,
    },
    /// The peer sent ERROR.
    PeerError {
        session_id: u8,
        session_specific: bool,
        code: ErrorCode,
        description: String,
    },
    /// We sent ERROR (protocol violation, framing error, keep-alive expiry…).
    ErrorSent {
        session_id: Option<u8>,
        code: ErrorCode,
        description: String,
        fatal: bool,
    },
    ConnectTimeout,
    Disconnected {
        by_peer: bool,
    },
}

/// What the machine wants done, in order.
#[derive(Debug, Clone)]
pub enum Output {
    /// Encode and send.
    Send(Message),
    /// Store, then report durability with [`Collector::records_durable`].
    Persist(Record),
    Event(Event),
    /// Flush what was sent before and close the transport.
    Close,
}

/// A command that cannot be carried out now.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CommandError {
    #[error("the connection is closed")]
    Closed,
    #[error("the CONNECT handshake is not complete")]
    NotConnected,
    #[error("template negotiation is not in force on this connection")]
    NegotiationNotAvailable,
    #[error("session {0} has no active flow")]
    NoFlow(u8),
}

/// The handshake state of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    AwaitingConnect,
    AwaitingConnectResponse,
    Connected,
    Closed,
}

/// Counters for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub messages_received: u64,
    pub records_persisted: u64,
    pub duplicates_discarded: u64,
    pub records_rejected: u64,
    pub data_acks_sent: u64,
    pub errors_sent: u64,
}

#[derive(Debug)]
enum Flow {
    /// No FLOW_START sent.
    Idle,
    /// FLOW_STOP sent: messages still in flight for the session are dropped silently.
    Stopped,
    /// FLOW_START sent, waiting for TEMPLATE_DATA.
    AwaitTemplates,
    /// MODIFY_TEMPLATE sent for this TEMPLATE_DATA.
    Negotiating(TemplateData),
    /// FINAL_TEMPLATE_DATA_ACK sent, or the session stopped: waiting for SESSION_START.
    AwaitSessionStart,
    Active,
}

#[derive(Debug)]
struct Doc {
    id: DocumentId,
    config_id: u16,
    /// Highest DSN processed (persisted or rejected).
    highest: Option<u64>,
    /// Persisted, not yet durable, ascending.
    pending: VecDeque<(u64, Instant)>,
    /// Highest DSN up to which everything processed is durable.
    done: Option<u64>,
    acked: Option<u64>,
    processed_since_ack: u64,
    oldest_unacked: Option<Instant>,
    overdue_reported: bool,
}

#[derive(Debug)]
struct Session {
    id: u8,
    flow: Flow,
    config_id: u16,
    templates: Vec<Arc<Template>>,
    doc: Option<Doc>,
    wire_document_id: DocumentId,
    ack_time: Duration,
    ack_seq: u64,
}

impl Session {
    fn new(id: u8) -> Session {
        Session {
            id,
            flow: Flow::Idle,
            config_id: 0,
            templates: Vec::new(),
            doc: None,
            wire_document_id: DocumentId::NIL,
            ack_time: Duration::from_secs(1),
            ack_seq: 1,
        }
    }
}

/// The collector side of one IPDR/SP connection. See the [module docs](self).
#[derive(Debug)]
pub struct Collector {
    config: Arc<CollectorConfig>,
    exporter: ExporterId,
    nonce: u64,
    created: Instant,
    unix_time: u32,
    state: ConnectionState,
    capabilities: Capabilities,
    peer_vendor_id: String,
    peer_keep_alive: Option<Duration>,
    last_sent: Instant,
    last_received: Instant,
    next_request_id: u16,
    auto_request: Option<u16>,
    sessions: Vec<Session>,
    watermarks: HashMap<(u8, DocumentId), u64>,
    watermark_order: VecDeque<(u8, DocumentId)>,
    generation: u32,
    out: VecDeque<Output>,
    stats: Stats,
}

/// Half of a duration (keep-alive and acknowledgement pacing run at half their interval).
fn half(d: Duration) -> Duration {
    d.checked_div(2).unwrap_or_default()
}

impl Collector {
    /// A machine for a new transport connection. With [`Direction::Outbound`] the CONNECT
    /// is queued at once.
    pub fn new(config: Arc<CollectorConfig>, info: ConnectionInfo, now: Instant) -> Collector {
        let state = match info.direction {
            Direction::Inbound => ConnectionState::AwaitingConnect,
            Direction::Outbound { .. } => ConnectionState::AwaitingConnectResponse,
        };
        let mut c = Collector {
            config,
            exporter: info.exporter,
            nonce: info.nonce,
            created: now,
            unix_time: info.unix_time,
            state,
            capabilities: Capabilities::NONE,
            peer_vendor_id: String::new(),
            peer_keep_alive: None,
            last_sent: now,
            last_received: now,
            next_request_id: 1,
            auto_request: None,
            sessions: Vec::new(),
            watermarks: HashMap::new(),
            watermark_order: VecDeque::new(),
            generation: 0,
            out: VecDeque::new(),
            stats: Stats::default(),
        };
        if let Direction::Outbound { local } = info.direction {
            let connect = Body::Connect(Connect {
                initiator_address: *local.ip(),
                initiator_port: local.port(),
                capabilities: c.config.capabilities,
                keep_alive_interval: c.config.keep_alive_interval,
                vendor_id: c.config.vendor_id.clone(),
            });
            c.send(now, Message::new(0, connect));
        }
        c
    }

    pub fn state(&self) -> ConnectionState {
        self.state
    }

    pub fn is_closed(&self) -> bool {
        self.state == ConnectionState::Closed
    }

    /// Capabilities in force (both sides offered them).
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    pub fn peer_vendor_id(&self) -> &str {
        &self.peer_vendor_id
    }

    pub fn exporter(&self) -> &ExporterId {
        &self.exporter
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The templates in force for a session.
    pub fn templates(&self, session_id: u8) -> &[Arc<Template>] {
        self.sessions
            .iter()
            .find(|s| s.id == session_id)
            .map(|s| s.templates.as_slice())
            .unwrap_or(&[])
    }

    /// Seeds de-duplication: records of (session, document) up to `last_stored` are already
    /// stored (e.g. from a previous connection). Only meaningful for non-nil documentIds.
    pub fn resume_document(&mut self, session_id: u8, document_id: DocumentId, last_stored: u64) {
        self.save_watermark(session_id, document_id, last_stored);
    }

    /// Next thing to do, `None` when idle.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`Collector::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut at = |x: Instant| t = Some(t.map_or(x, |t| t.min(x)));
        match self.state {
            ConnectionState::Closed => return None,
            ConnectionState::AwaitingConnect | ConnectionState::AwaitingConnectResponse => {
                // A huge configured timeout means no timeout rather than an overflow.
                if let Some(t) = self.created.checked_add(self.config.connect_timeout) {
                    at(t);
                }
            }
            ConnectionState::Connected => {
                // Deadlines past the end of time (checked_add fails) are no deadlines.
                if let Some(t) = self
                    .peer_keep_alive
                    .and_then(|ka| self.last_sent.checked_add(half(ka)))
                {
                    at(t);
                }
                if self.config.keep_alive_interval > 0 {
                    if let Some(t) = self
                        .last_received
                        .checked_add(Duration::from_secs(self.config.keep_alive_interval.into()))
                    {
                        at(t);
                    }
                }
                for s in &self.sessions {
                    if let Some(d) = &s.doc {
                        if let Some(old) = d.oldest_unacked {
                            let due = if d.done > d.acked {
                                old.checked_add(half(s.ack_time))
                            } else if !d.overdue_reported && !d.pending.is_empty() {
                                old.checked_add(s.ack_time)
                            } else {
                                None
                            };
                            if let Some(t) = due {
                                at(t);
                            }
                        }
                    }
                }
            }
        }
        t
    }

    /// Runs the timers that are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            ConnectionState::Closed => {}
            ConnectionState::AwaitingConnect | ConnectionState::AwaitingConnectResponse => {
                let due = self.created.checked_add(self.config.connect_timeout);
                if due.is_some_and(|due| now >= due) {
                    self.event(Event::ConnectTimeout);
                    self.close();
                }
            }
            ConnectionState::Connected => {
                let ka = self.config.keep_alive_interval;
                if ka > 0
                    && self
                        .last_received
                        .checked_add(Duration::from_secs(ka.into()))
                        .is_some_and(|t| now >= t)
                {
                    let d = format!("no message received from the exporter within the {ka} s keep-alive interval");
                    self.send_error(now, None, ErrorCode::KEEP_ALIVE_EXPIRED, d);
                    return;
                }
                for i in 0..self.sessions.len() {
                    self.maybe_ack(now, i);
                    let s = &mut self.sessions[i];
                    let (sid, ack_time) = (s.id, s.ack_time);
                    if let Some(d) = &mut s.doc {
                        if let Some(old) = d.oldest_unacked {
                            if !d.overdue_reported
                                && !d.pending.is_empty()
                                && old.checked_add(ack_time).is_some_and(|t| now >= t)
                            {
                                d.overdue_reported = true;
                                let e = Event::AckOverdue {
                                    session_id: sid,
                                    document_id: d.id,
                                    pending: d.pending.len(),
                                };
                                self.event(e);
                            }
                        }
                    }
                }
                if let Some(ka) = self.peer_keep_alive {
                    if self
                        .last_sent
                        .checked_add(half(ka))
                        .is_some_and(|t| now >= t)
                    {
                        self.send(now, Message::new(0, Body::KeepAlive));
                    }
                }
            }
        }
    }

    /// Reports that every record of (session, document) with DSN ≤ `up_to` that this machine
    /// handed out is durably stored. May send DATA_ACK. Notifications for a document that is
    /// no longer the session's current one are ignored (a DATA_ACK could not name it).
    pub fn records_durable(
        &mut self,
        now: Instant,
        session_id: u8,
        document_id: DocumentId,
        up_to: u64,
    ) {
        if self.is_closed() {
            return;
        }
        let Some(i) = self.sessions.iter().position(|s| s.id == session_id) else {
            return;
        };
        let Some(d) = self.sessions[i]
            .doc
            .as_mut()
            .filter(|d| d.id == document_id)
        else {
            return;
        };
        let mut popped = None;
        while let Some(&(dsn, _)) = d.pending.front() {
            if dsn > up_to {
                break;
            }
            popped = Some(dsn);
            d.pending.pop_front();
        }
        if popped.is_none() {
            return;
        }
        d.done = if d.pending.is_empty() {
            d.highest
        } else {
            d.done.max(popped)
        };
        self.maybe_ack(now, i);
    }

    /// Handles a framing or decoding error from the [`crate::Framer`]: answers ERROR and
    /// closes when the error is fatal.
    pub fn handle_frame_error(&mut self, now: Instant, error: &FrameError) {
        if self.is_closed() {
            return;
        }
        self.last_received = now;
        let sid = error.session_specific().then_some(error.session_id);
        self.send_error(now, sid, error.error_code(), error.to_string());
    }

    /// Handles one message from the exporter.
    pub fn handle_message(&mut self, now: Instant, msg: Message) {
        if self.is_closed() {
            return;
        }
        self.last_received = now;
        self.stats.messages_received = self.stats.messages_received.saturating_add(1);
        let sid = msg.session_id;
        let id = msg.id();
        match msg.body {
            Body::KeepAlive => {}
            Body::Error(e) => {
                let fatal = !e.session_specific;
                self.event(Event::PeerError {
                    session_id: sid,
                    session_specific: e.session_specific,
                    code: e.code,
                    description: e.description,
                });
                if fatal {
                    self.close();
                }
            }
            Body::Disconnect => {
                self.event(Event::Disconnected { by_peer: true });
                self.close();
            }
            Body::Connect(c) => {
                if self.state == ConnectionState::AwaitingConnect {
                    self.on_connect(now, c);
                } else {
                    self.send_error(
                        now,
                        None,
                        ErrorCode::MESSAGE_INVALID_FOR_STATE,
                        "unexpected CONNECT".into(),
                    );
                }
            }
            Body::ConnectResponse(r) => {
                if self.state == ConnectionState::AwaitingConnectResponse {
                    self.on_connect_response(now, r);
                } else {
                    // Harmless stray: refuse without closing.
                    let d = "unexpected CONNECT_RESPONSE".to_string();
                    self.send_error(now, Some(sid), ErrorCode::MESSAGE_INVALID_FOR_STATE, d);
                }
            }
            _ if self.state != ConnectionState::Connected => {
                let d = format!("{id} before the CONNECT handshake");
                self.send_error(now, None, ErrorCode::MESSAGE_INVALID_FOR_STATE, d);
            }
            Body::GetSessionsResponse(r) => self.on_sessions(now, r),
            Body::TemplateData(t) => self.on_template_data(now, sid, t),
            Body::ModifyTemplateResponse(m) => self.on_modify_response(now, sid, m),
            Body::SessionStart(s) => self.on_session_start(now, sid, s),
            Body::SessionStop(s) => self.on_session_stop(now, sid, s),
            Body::Data(d) => self.on_data(now, sid, d),
            Body::GetTemplatesResponse(r) => self.event(Event::TemplatesReported {
                session_id: sid,
                request_id: r.request_id,
                config_id: r.config_id,
                templates: r.templates,
            }),
            Body::StartNegotiationReject => {
                self.event(Event::NegotiationRejected { session_id: sid })
            }
            Body::Request(_) | Body::Response(_) => {
                let d = format!("{id} (IPDR/SP 2.2 request/response) is not supported");
                self.send_error(
                    now,
                    Some(sid),
                    ErrorCode::MESSAGE_INVALID_FOR_CAPABILITIES,
                    d,
                );
            }
            Body::FlowStart
            | Body::FlowStop(_)
            | Body::FinalTemplateDataAck
            | Body::GetSessions(_)
            | Body::GetTemplates(_)
            | Body::ModifyTemplate(_)
            | Body::StartNegotiation
            | Body::DataAck(_) => {
                let d = format!("{id} is sent by a collector, not to one");
                self.send_error(now, Some(sid), ErrorCode::MESSAGE_INVALID_FOR_STATE, d);
            }
        }
    }

    // ----- commands -----

    fn check_connected(&self) -> Result<(), CommandError> {
        match self.state {
            ConnectionState::Closed => Err(CommandError::Closed),
            ConnectionState::Connected => Ok(()),
            _ => Err(CommandError::NotConnected),
        }
    }

    fn request_id(&mut self) -> u16 {
        let id = self.next_request_id;
        self.next_request_id = self.next_request_id.wrapping_add(1);
        id
    }

    /// Sends GET_SESSIONS; returns its requestId.
    pub fn get_sessions(&mut self, now: Instant) -> Result<u16, CommandError> {
        self.check_connected()?;
        let request_id = self.request_id();
        self.send(
            now,
            Message::new(0, Body::GetSessions(GetSessions { request_id })),
        );
        Ok(request_id)
    }

    /// Sends GET_TEMPLATES for a session; returns its requestId.
    pub fn get_templates(&mut self, now: Instant, session_id: u8) -> Result<u16, CommandError> {
        self.check_connected()?;
        let request_id = self.request_id();
        self.send(
            now,
            Message::new(session_id, Body::GetTemplates(GetTemplates { request_id })),
        );
        Ok(request_id)
    }

    /// Sends FLOW_START for a session (done automatically per [`CollectorConfig`]).
    pub fn start_flow(&mut self, now: Instant, session_id: u8) -> Result<(), CommandError> {
        self.check_connected()?;
        let i = self.session_index(session_id);
        self.sessions[i].flow = Flow::AwaitTemplates;
        self.send(now, Message::new(session_id, Body::FlowStart));
        Ok(())
    }

    /// Sends FLOW_STOP for a session.
    pub fn stop_flow(
        &mut self,
        now: Instant,
        session_id: u8,
        reason: FlowStopReason,
        reason_info: &str,
    ) -> Result<(), CommandError> {
        self.check_connected()?;
        let i = self
            .sessions
            .iter()
            .position(|s| s.id == session_id && !matches!(s.flow, Flow::Idle | Flow::Stopped))
            .ok_or(CommandError::NoFlow(session_id))?;
        self.sessions[i].flow = Flow::Stopped;
        let body = Body::FlowStop(FlowStop {
            reason_code: reason,
            reason_info: reason_info.to_string(),
        });
        self.send(now, Message::new(session_id, body));
        Ok(())
    }

    /// Sends START_NEGOTIATION (the exporter answers START_NEGOTIATION_REJECT, or
    /// SESSION_STOP 5 and new TEMPLATE_DATA).
    pub fn start_negotiation(&mut self, now: Instant, session_id: u8) -> Result<(), CommandError> {
        self.check_connected()?;
        if !self
            .capabilities
            .contains(Capabilities::TEMPLATE_NEGOTIATION)
        {
            return Err(CommandError::NegotiationNotAvailable);
        }
        if !self
            .sessions
            .iter()
            .any(|s| s.id == session_id && matches!(s.flow, Flow::Active | Flow::AwaitSessionStart))
        {
            return Err(CommandError::NoFlow(session_id));
        }
        self.send(now, Message::new(session_id, Body::StartNegotiation));
        Ok(())
    }

    /// Sends DISCONNECT and closes.
    pub fn disconnect(&mut self, now: Instant) -> Result<(), CommandError> {
        if self.is_closed() {
            return Err(CommandError::Closed);
        }
        self.send(now, Message::new(0, Body::Disconnect));
        self.event(Event::Disconnected { by_peer: false });
        self.close();
        Ok(())
    }

    /// Sends ERROR 4 (process terminating) and closes, e.g. on shutdown.
    pub fn terminate(&mut self, now: Instant, description: &str) -> Result<(), CommandError> {
        if self.is_closed() {
            return Err(CommandError::Closed);
        }
        self.send_error(
            now,
            None,
            ErrorCode::PROCESS_TERMINATING,
            description.to_string(),
        );
        Ok(())
    }

    // ----- internals -----

    fn unix_time(&self, now: Instant) -> u32 {
        let secs = now.saturating_duration_since(self.created).as_secs();
        self.unix_time
            .saturating_add(secs.min(u32::MAX as u64) as u32)
    }

    fn send(&mut self, now: Instant, msg: Message) {
        self.last_sent = now;
        self.out.push_back(Output::Send(msg));
    }

    fn event(&mut self, e: Event) {
        self.out.push_back(Output::Event(e));
    }

    fn close(&mut self) {
        if self.state != ConnectionState::Closed {
            self.state = ConnectionState::Closed;
            self.out.push_back(Output::Close);
        }
    }

    /// Sends ERROR; `session = None` means connection-level, which closes.
    fn send_error(
        &mut self,
        now: Instant,
        session: Option<u8>,
        code: ErrorCode,
        description: String,
    ) {
        let body = Body::Error(ErrorMessage {
            timestamp: self.unix_time(now),
            session_specific: session.is_some(),
            code,
            description: description.clone(),
        });
        self.stats.errors_sent = self.stats.errors_sent.saturating_add(1);
        self.send(now, Message::new(session.unwrap_or(0), body));
        self.event(Event::ErrorSent {
            session_id: session,
            code,
            description,
            fatal: session.is_none(),
        });
        if session.is_none() {
            self.close();
        }
    }

    fn session_index(&mut self, id: u8) -> usize {
        match self.sessions.iter().position(|s| s.id == id) {
            Some(i) => i,
            None => {
                self.sessions.push(Session::new(id));
                self.sessions.len().saturating_sub(1)
            }
        }
    }

    /// The session with a started flow, or an ERROR 2 answered.
    fn flowing(&mut self, now: Instant, sid: u8, what: &str) -> Option<usize> {
        let i = self.sessions.iter().position(|s| s.id == sid);
        if let Some(i) = i {
            match self.sessions[i].flow {
                Flow::Stopped => return None,
                Flow::Idle => {}
                _ => return Some(i),
            }
        }
        let d = format!("{what} for session {sid}, which has no flow started");
        self.send_error(now, Some(sid), ErrorCode::MESSAGE_INVALID_FOR_STATE, d);
        None
    }

    fn on_connect(&mut self, now: Instant, c: Connect) {
        self.capabilities = self.config.capabilities.intersection(c.capabilities);
        self.peer_keep_alive =
            (c.keep_alive_interval > 0).then(|| Duration::from_secs(c.keep_alive_interval.into()));
        self.peer_vendor_id = c.vendor_id.clone();
        let body = Body::ConnectResponse(ConnectResponse {
            capabilities: self.capabilities,
            keep_alive_interval: self.config.keep_alive_interval,
            vendor_id: self.config.vendor_id.clone(),
        });
        self.send(now, Message::new(0, body));
        self.connected(now, c.vendor_id, c.keep_alive_interval);
    }

    fn on_connect_response(&mut self, now: Instant, r: ConnectResponse) {
        // A responder should echo only offered bits; mask in case it does not.
        self.capabilities = self.config.capabilities.intersection(r.capabilities);
        self.peer_keep_alive =
            (r.keep_alive_interval > 0).then(|| Duration::from_secs(r.keep_alive_interval.into()));
        self.peer_vendor_id = r.vendor_id.clone();
        self.connected(now, r.vendor_id, r.keep_alive_interval);
    }

    fn connected(&mut self, now: Instant, vendor_id: String, peer_keep_alive: u32) {
        self.state = ConnectionState::Connected;
        self.event(Event::Connected {
            vendor_id,
            capabilities: self.capabilities,
            peer_keep_alive,
        });
        if self.config.query_sessions {
            let request_id = self.request_id();
            self.auto_request = Some(request_id);
            self.send(
                now,
                Message::new(0, Body::GetSessions(GetSessions { request_id })),
            );
        } else if let SessionFilter::Only(ids) = &self.config.sessions {
            let ids = ids.clone();
            self.start_flows(now, ids);
        }
    }

    fn start_flows(&mut self, now: Instant, ids: Vec<u8>) {
        let multi = self.capabilities.contains(Capabilities::MULTISESSION);
        for id in ids {
            let flowing = self
                .sessions
                .iter()
                .filter(|s| !matches!(s.flow, Flow::Idle))
                .count();
            if !multi && flowing > 0 {
                break;
            }
            let i = self.session_index(id);
            if matches!(self.sessions[i].flow, Flow::Idle | Flow::Stopped) {
                self.sessions[i].flow = Flow::AwaitTemplates;
                self.send(now, Message::new(id, Body::FlowStart));
            }
        }
    }

    fn on_sessions(&mut self, now: Instant, r: GetSessionsResponse) {
        let auto = self.auto_request == Some(r.request_id);
        let ids: Vec<u8> = r
            .sessions
            .iter()
            .map(|s| s.session_id)
            .filter(|id| self.config.sessions.accepts(*id))
            .collect();
        self.event(Event::SessionsListed {
            request_id: r.request_id,
            sessions: r.sessions,
        });
        if auto {
            self.auto_request = None;
            self.start_flows(now, ids);
        }
    }

    /// Blocks with the fields we want disabled turned off; `None` if nothing changes.
    fn narrowed(&self, blocks: &[TemplateBlock]) -> Option<Vec<TemplateBlock>> {
        let mut changed = Vec::new();
        for b in blocks {
            let mut nb = b.clone();
            let mut any = false;
            for f in nb.fields.iter_mut() {
                if f.enabled && !(self.config.fields.keeps(&f.name) && field_supported(f, 0)) {
                    f.enabled = false;
                    any = true;
                }
            }
            if any {
                changed.push(nb);
            }
        }
        (!changed.is_empty()).then_some(changed)
    }

    fn on_template_data(&mut self, now: Instant, sid: u8, t: TemplateData) {
        let Some(i) = self.flowing(now, sid, "TEMPLATE_DATA") else {
            return;
        };
        let negotiable = t.negotiable()
            && self
                .capabilities
                .contains(Capabilities::TEMPLATE_NEGOTIATION);
        if negotiable {
            if let Some(changes) = self.narrowed(&t.templates) {
                let body = Body::ModifyTemplate(ModifyTemplate {
                    config_id: t.config_id,
                    flags: 0,
                    templates: changes,
                });
                self.sessions[i].flow = Flow::Negotiating(t);
                self.send(now, Message::new(sid, body));
                return;
            }
        }
        self.install_templates(now, i, t.config_id, t.templates);
    }

    fn on_modify_response(&mut self, now: Instant, sid: u8, m: ModifyTemplateResponse) {
        let Some(i) = self.flowing(now, sid, "MODIFY_TEMPLATE_RESPONSE") else {
            return;
        };
        let flow = std::mem::replace(&mut self.sessions[i].flow, Flow::AwaitTemplates);
        let Flow::Negotiating(offered) = flow else {
            self.sessions[i].flow = flow;
            let d = "MODIFY_TEMPLATE_RESPONSE without MODIFY_TEMPLATE".to_string();
            self.send_error(now, Some(sid), ErrorCode::MESSAGE_INVALID_FOR_STATE, d);
            return;
        };
        // The response is the final set; merge by templateId in case it lists only changes.
        let mut blocks = offered.templates;
        for nb in m.templates {
            match blocks.iter_mut().find(|b| b.template_id == nb.template_id) {
                Some(b) => *b = nb,
                None => blocks.push(nb),
            }
        }
        self.install_templates(now, i, m.config_id, blocks);
    }

    fn install_templates(
        &mut self,
        now: Instant,
        i: usize,
        config_id: u16,
        blocks: Vec<TemplateBlock>,
    ) {
        let sid = self.sessions[i].id;
        let mut templates = Vec::with_capacity(blocks.len());
        for b in blocks {
            match Template::with_options(b, self.config.record_options.clone()) {
                Ok(mut t) => {
                    if self.config.fields != FieldSelection::All {
                        let sel = &self.config.fields;
                        t.restrict_output(|n| sel.keeps(n));
                    }
                    templates.push(Arc::new(t));
                }
                Err(error) => {
                    let d = error.to_string();
                    self.send_error(now, Some(sid), ErrorCode::MESSAGE_DECODE_ERROR, d.clone());
                    self.event(Event::TemplateRejected {
                        session_id: sid,
                        config_id,
                        error,
                    });
                    self.sessions[i].flow = Flow::Idle;
                    let body = Body::FlowStop(FlowStop {
                        reason_code: FlowStopReason::PROCESS_ERROR,
                        reason_info: d,
                    });
                    self.send(now, Message::new(sid, body));
                    return;
                }
            }
        }
        let s = &mut self.sessions[i];
        s.config_id = config_id;
        s.templates = templates.clone();
        s.flow = Flow::AwaitSessionStart;
        self.event(Event::TemplateChanged {
            session_id: sid,
            config_id,
            templates,
        });
        self.send(now, Message::new(sid, Body::FinalTemplateDataAck));
    }

    fn save_watermark(&mut self, sid: u8, doc: DocumentId, highest: u64) {
        let key = (sid, doc);
        let prev = self.watermarks.insert(key, highest);
        if prev.is_none() {
            self.watermark_order.push_back(key);
            while self.watermark_order.len() > self.config.max_documents.max(1) {
                if let Some(old) = self.watermark_order.pop_front() {
                    self.watermarks.remove(&old);
                }
            }
        } else if let Some(p) = prev {
            if p > highest {
                self.watermarks.insert(key, p);
            }
        }
    }

    fn retire_doc(&mut self, i: usize) {
        let sid = self.sessions[i].id;
        if let Some(d) = self.sessions[i].doc.take() {
            if let Some(h) = d.highest {
                self.save_watermark(sid, d.id, h);
            }
        }
    }

    fn synthesize_document_id(&mut self, sid: u8) -> DocumentId {
        self.generation = self.generation.wrapping_add(1);
        let mut b = [0u8; 16];
        b[0..8].copy_from_slice(&self.nonce.to_be_bytes());
        b[9..13].copy_from_slice(&self.generation.to_be_bytes());
        b[13] = sid;
        b[14] = b'S';
        b[15] = b'P';
        b[6] = (b[6] & 0x0f) | 0x80; // version 8
        b[8] = 0x80; // RFC 9562 variant
        DocumentId(b)
    }

    fn on_session_start(&mut self, now: Instant, sid: u8, s: SessionStart) {
        let Some(i) = self.flowing(now, sid, "SESSION_START") else {
            return;
        };
        if !matches!(
            self.sessions[i].flow,
            Flow::AwaitSessionStart | Flow::Active
        ) {
            let d =
                format!("SESSION_START for session {sid} before its templates were acknowledged");
            self.send_error(now, Some(sid), ErrorCode::MESSAGE_INVALID_FOR_STATE, d);
            return;
        }
        let same_doc = !s.document_id.is_nil()
            && self.sessions[i].doc.is_some()
            && self.sessions[i].wire_document_id == s.document_id;
        if same_doc {
            // Resumed document: keep DSN state, pending records and acks.
            let config_id = self.sessions[i].config_id;
            if let Some(d) = self.sessions[i].doc.as_mut() {
                d.config_id = config_id;
            }
        } else {
            self.retire_doc(i);
            let id = if s.document_id.is_nil() {
                self.synthesize_document_id(sid)
            } else {
                s.document_id
            };
            let highest = self.watermarks.get(&(sid, id)).copied();
            let config_id = self.sessions[i].config_id;
            self.sessions[i].doc = Some(Doc {
                id,
                config_id,
                highest,
                pending: VecDeque::new(),
                done: highest,
                // A resumed document is acknowledged up to its watermark on first occasion.
                acked: None,
                processed_since_ack: 0,
                oldest_unacked: None,
                overdue_reported: false,
            });
        }
        let sess = &mut self.sessions[i];
        sess.wire_document_id = s.document_id;
        sess.ack_time = Duration::from_secs(s.ack_time_interval.into());
        sess.ack_seq = u64::from(s.ack_sequence_interval).max(1);
        sess.flow = Flow::Active;
        let document_id = sess.doc.as_ref().map_or(s.document_id, |d| d.id);
        self.event(Event::SessionStarted {
            session_id: sid,
            document_id,
            start: s,
        });
    }

    fn on_session_stop(&mut self, now: Instant, sid: u8, s: SessionStop) {
        let Some(i) = self.flowing(now, sid, "SESSION_STOP") else {
            return;
        };
        let sess = &mut self.sessions[i];
        if matches!(sess.flow, Flow::Active) {
            sess.flow = Flow::AwaitSessionStart;
        }
        // Keep the document: durability may still arrive and be acknowledged.
        let document_id = sess.doc.as_ref().map(|d| d.id);
        if let Some(d) = &sess.doc {
            if let Some(h) = d.highest {
                let id = d.id;
                self.save_watermark(sid, id, h);
            }
        }
        self.event(Event::SessionStopped {
            session_id: sid,
            document_id,
            reason: s.reason_code,
            reason_info: s.reason_info,
        });
    }

    fn on_data(&mut self, now: Instant, sid: u8, data: Data) {
        let Some(i) = self.flowing(now, sid, "DATA") else {
            self.stats.records_rejected = self.stats.records_rejected.saturating_add(1);
            return;
        };
        let sess = &self.sessions[i];
        if !matches!(sess.flow, Flow::Active) || sess.doc.is_none() {
            self.stats.records_rejected = self.stats.records_rejected.saturating_add(1);
            let d = format!(
                "DATA (DSN {}) for session {sid} before SESSION_START",
                data.sequence_num
            );
            self.send_error(now, Some(sid), ErrorCode::MESSAGE_INVALID_FOR_STATE, d);
            return;
        }
        if data.config_id != sess.config_id {
            self.stats.records_rejected = self.stats.records_rejected.saturating_add(1);
            let d = format!(
                "DATA (DSN {}) with configId {} but configId {} is in force",
                data.sequence_num, data.config_id, sess.config_id
            );
            self.send_error(now, Some(sid), ErrorCode::MESSAGE_INVALID_FOR_STATE, d);
            return;
        }
        let Some(template) = sess
            .templates
            .iter()
            .find(|t| t.id() == data.template_id)
            .cloned()
        else {
            self.stats.records_rejected = self.stats.records_rejected.saturating_add(1);
            let d = format!(
                "DATA (DSN {}) for unknown templateId {} (configId {})",
                data.sequence_num, data.template_id, data.config_id
            );
            self.send_error(now, Some(sid), ErrorCode::MESSAGE_DECODE_ERROR, d);
            return;
        };
        let dsn = data.sequence_num;
        let Some(doc) = self.sessions[i].doc.as_mut() else {
            return;
        };
        let document_id = doc.id;
        if let Some(h) = doc.highest {
            if dsn <= h {
                self.stats.duplicates_discarded = self.stats.duplicates_discarded.saturating_add(1);
                self.maybe_ack(now, i);
                return;
            }
        }
        let gap = doc
            .highest
            .and_then(|h| h.checked_add(1))
            .filter(|&next| dsn > next);
        doc.highest = Some(dsn);
        doc.processed_since_ack = doc.processed_since_ack.saturating_add(1);
        doc.oldest_unacked.get_or_insert(now);
        let decoded = decode_record(&template, &data.record);
        if let Some(expected) = gap {
            self.event(Event::SequenceGap {
                session_id: sid,
                document_id,
                expected,
                received: dsn,
            });
        }
        match decoded {
            Ok(fields) => {
                if let Some(doc) = self.sessions[i].doc.as_mut() {
                    doc.pending.push_back((dsn, now));
                }
                self.stats.records_persisted = self.stats.records_persisted.saturating_add(1);
                self.out.push_back(Output::Persist(Record {
                    exporter: self.exporter.clone(),
                    session_id: sid,
                    document_id,
                    sequence_num: dsn,
                    config_id: data.config_id,
                    template,
                    possible_duplicate: data.possible_duplicate(),
                    fields,
                }));
            }
            Err(error) => {
                if let Some(doc) = self.sessions[i].doc.as_mut() {
                    if doc.pending.is_empty() {
                        doc.done = Some(dsn);
                    }
                }
                self.stats.records_rejected = self.stats.records_rejected.saturating_add(1);
                let d = format!("DATA (DSN {dsn}, templateId {}): {error}", data.template_id);
                self.send_error(now, Some(sid), ErrorCode::MESSAGE_DECODE_ERROR, d);
                self.event(Event::RecordRejected {
                    session_id: sid,
                    document_id,
                    sequence_num: dsn,
                    config_id: data.config_id,
                    template_id: data.template_id,
                    error,
                    record: data.record,
                });
                self.maybe_ack(now, i);
            }
        }
    }

    fn maybe_ack(&mut self, now: Instant, i: usize) {
        let s = &mut self.sessions[i];
        let (sid, ack_seq, ack_time) = (s.id, s.ack_seq, s.ack_time);
        let Some(d) = s.doc.as_mut() else {
            return;
        };
        let Some(target) = d.done else {
            return;
        };
        if d.acked.is_some_and(|a| a >= target) {
            return;
        }
        let caught_up = d.pending.is_empty();
        let window = d.processed_since_ack >= ack_seq;
        let late = d
            .oldest_unacked
            .and_then(|o| o.checked_add(half(ack_time)))
            .is_some_and(|t| now >= t);
        if !(caught_up || window || late) {
            return;
        }
        d.acked = Some(target);
        d.processed_since_ack = d.pending.len() as u64;
        d.oldest_unacked = d.pending.front().map(|p| p.1);
        d.overdue_reported = false;
        let body = Body::DataAck(DataAck {
            config_id: d.config_id,
            sequence_num: target,
        });
        self.stats.data_acks_sent = self.stats.data_acks_sent.saturating_add(1);
        self.send(now, Message::new(sid, body));
    }
}

/// Whether the record decoder can handle an (enabled) field.
fn field_supported(f: &FieldDescriptor, depth: usize) -> bool {
    if f.type_id.is_structure() {
        depth < crate::xdr::MAX_NESTING
            && f.children
                .iter()
                .filter(|c| c.enabled)
                .all(|c| field_supported(c, depth.saturating_add(1)))
    } else {
        f.type_id.name().is_some() || (0x21..=0x2d).contains(&f.type_id.base())
    }
}
