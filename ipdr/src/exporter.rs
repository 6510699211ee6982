//! The exporter side of IPDR/SP as a sans-IO state machine: the mirror of
//! [`crate::collector`].
//!
//! One [`Exporter`] lives as long as the exporting process: it owns the per-session record
//! queues, documentIds and sequence numbers, which survive transport connections. Each
//! transport connection is announced with [`Exporter::connection_opened`] and ended with
//! [`Exporter::connection_lost`] (or by the machine itself with [`ExporterOutput::Close`]).
//!
//! Inputs: decoded messages ([`Exporter::handle_message`]), framing errors, time
//! ([`Exporter::handle_timeout`] at [`Exporter::poll_timeout`]) and records to export
//! ([`Exporter::enqueue`]). Outputs, drained with [`Exporter::poll_output`]: messages to send,
//! events, close.
//!
//! # Protocol rules this machine keeps
//!
//! * Either side may connect ([`Role`]): the initiator sends CONNECT and waits for
//!   CONNECT_RESPONSE; the responder waits for CONNECT and answers with the capabilities
//!   both sides offered (spec §3.4).
//! * GET_SESSIONS and GET_TEMPLATES are answered in any state after the handshake.
//! * FLOW_START → TEMPLATE_DATA (non-negotiable). FINAL_TEMPLATE_DATA_ACK → SESSION_START,
//!   then DATA. MODIFY_TEMPLATE is answered with the unchanged set (records are already
//!   encoded against it); START_NEGOTIATION with START_NEGOTIATION_REJECT.
//! * Every enqueued record gets the next DSN of its session's document and stays queued
//!   until a DATA_ACK covers it. At most [`ExporterConfig::window_size`] DATA are
//!   outstanding (sent, unacknowledged) per session.
//! * Recovery (spec §3.7): after a new connection the session resumes the same documentId
//!   and resends every unacknowledged record from the one after the last DATA_ACK, in DSN
//!   order, with the DATA duplicate flag set on those that were sent before.
//!   `firstRecordSequenceNumber` is the first DSN that will be sent.
//! * A new document ([`Exporter::new_document`]) is SESSION_STOP (6, end of document) and
//!   SESSION_START with the new documentId; DSNs restart at 0.
//! * Keep-alive: KEEP_ALIVE when nothing was sent for half the interval the collector
//!   advertised; ERROR 0 and close when nothing arrives within ours.
//! * With DATA outstanding and no DATA_ACK progress for [`ExporterConfig::window_timeout`],
//!   the connection is given up (DISCONNECT, close), as the reference exporter's
//!   `windowTimeout` does; the records stay queued for the next connection.

// The exporter side runs in the simulator (`keelson sim ipdr`, the benchmarks), never in
// `keelson serve`, and reads only what the collector it dialled sends: the crate's
// no-panic lints are relaxed here.
#![allow(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used
)]
use std::collections::VecDeque;
use std::net::SocketAddrV4;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use thiserror::Error;

use crate::codec::{
    Body, Capabilities, Connect, ConnectResponse, Data, DataAck, DocumentId, ErrorCode,
    ErrorMessage, FlowStop, FlowStopReason, FrameError, GetSessions, GetSessionsResponse,
    GetTemplates, GetTemplatesResponse, Message, ModifyTemplate, ModifyTemplateResponse,
    SessionBlock, SessionStart, SessionStop, SessionStopReason, TemplateBlock, TemplateData,
};

/// One session the exporter offers (spec §3.3 `SessionBlock` + its templates).
#[derive(Debug, Clone)]
pub struct ExporterSession {
    pub session_id: u8,
    pub name: String,
    pub description: String,
    /// Seconds; announced in SESSION_START and GET_SESSIONS_RESPONSE.
    pub ack_time_interval: u32,
    pub ack_sequence_interval: u32,
    pub config_id: u16,
    pub templates: Vec<TemplateBlock>,
    /// The first document; later ones come from [`Exporter::new_document`].
    pub document_id: DocumentId,
}

/// Exporter configuration.
#[derive(Debug, Clone)]
pub struct ExporterConfig {
    /// vendorId in CONNECT / CONNECT_RESPONSE.
    pub vendor_id: String,
    /// Capabilities offered.
    pub capabilities: Capabilities,
    /// Seconds of silence we tolerate from the collector (advertised); 0 = never time out.
    pub keep_alive_interval: u32,
    /// How long to wait for CONNECT (responder) or CONNECT_RESPONSE (initiator).
    pub connect_timeout: Duration,
    /// exporterBootTime (seconds since the epoch); also the clock base of ERROR timestamps.
    pub boot_time: u32,
    pub sessions: Vec<ExporterSession>,
    /// Most DATA outstanding (sent, not acknowledged) per session.
    pub window_size: usize,
    /// With DATA outstanding, how long without DATA_ACK progress before the connection is
    /// given up. Zero: never.
    pub window_timeout: Duration,
    /// Most records queued (sent or not, unacknowledged) per session.
    pub max_queue: usize,
}

impl Default for ExporterConfig {
    fn default() -> Self {
        ExporterConfig {
            vendor_id: "Keelson IPDR exporter".into(),
            capabilities: Capabilities::STRUCTURES.union(Capabilities::MULTISESSION),
            keep_alive_interval: 30,
            connect_timeout: Duration::from_secs(15),
            boot_time: 0,
            sessions: Vec::new(),
            window_size: 4096,
            window_timeout: Duration::from_secs(60),
            max_queue: 65_536,
        }
    }
}

/// Who opened the transport connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// We connected to the collector from `local`: send CONNECT.
    Initiator { local: SocketAddrV4 },
    /// The collector connected to us: wait for its CONNECT.
    Responder,
}

/// Something the caller may log or count.
#[derive(Debug, Clone, PartialEq)]
pub enum ExporterEvent {
    /// Handshake done.
    Connected {
        vendor_id: String,
        capabilities: Capabilities,
        peer_keep_alive: u32,
    },
    FlowStarted {
        session_id: u8,
    },
    FlowStopped {
        session_id: u8,
        reason: FlowStopReason,
        reason_info: String,
    },
    /// SESSION_START sent. `resending` records sent on an earlier connection (or before a
    /// FLOW_STOP) were never acknowledged and go out again first.
    SessionStarted {
        session_id: u8,
        document_id: DocumentId,
        first_sequence_num: u64,
        resending: usize,
    },
    SessionStopped {
        session_id: u8,
        reason: SessionStopReason,
    },
    /// A DATA_ACK released `records` records of `document_id`, up to `sequence_num`.
    Acked {
        session_id: u8,
        document_id: DocumentId,
        sequence_num: u64,
        records: usize,
    },
    /// The peer sent ERROR.
    PeerError {
        session_id: u8,
        session_specific: bool,
        code: ErrorCode,
        description: String,
    },
    /// We sent ERROR.
    ErrorSent {
        session_id: Option<u8>,
        code: ErrorCode,
        description: String,
        fatal: bool,
    },
    ConnectTimeout,
    /// DATA outstanding without acknowledgement progress for the window timeout.
    WindowTimeout {
        session_id: u8,
        outstanding: usize,
    },
    Disconnected {
        by_peer: bool,
    },
}

/// What the machine wants done, in order.
#[derive(Debug, Clone)]
pub enum ExporterOutput {
    /// Encode and send.
    Send(Message),
    Event(ExporterEvent),
    /// Flush what was sent before and close the transport.
    Close,
}

/// A request that cannot be carried out.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExporterError {
    #[error("session {0} is not configured")]
    UnknownSession(u8),
    #[error("session {session_id}: queue full ({max} records unacknowledged)")]
    QueueFull { session_id: u8, max: usize },
    #[error("session {0}: records of the current document are still unacknowledged")]
    DocumentBusy(u8),
    #[error("session {0} is not active")]
    NotActive(u8),
    #[error("no connection")]
    NotConnected,
}

/// Counters, kept across connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExporterStats {
    pub connections: u64,
    pub records_enqueued: u64,
    /// DATA messages sent, resends included.
    pub data_sent: u64,
    /// DATA messages sent again (duplicate flag set).
    pub data_resent: u64,
    pub records_acked: u64,
    pub data_acks_received: u64,
    pub documents: u64,
    pub errors_received: u64,
    pub errors_sent: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    AwaitingConnect,
    AwaitingConnectResponse,
    Connected,
    Closed,
}

#[derive(Debug)]
struct Conn {
    state: ConnState,
    created: Instant,
    capabilities: Capabilities,
    peer_keep_alive: Option<Duration>,
    last_sent: Instant,
    last_received: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// No FLOW_START on this connection (or FLOW_STOP received).
    Idle,
    /// TEMPLATE_DATA sent, waiting for FINAL_TEMPLATE_DATA_ACK.
    TemplatesSent,
    /// Templates acknowledged, no session running (after [`Exporter::stop_session`]).
    Ready,
    /// SESSION_START sent: DATA flows.
    Active,
}

#[derive(Debug)]
struct Queued {
    dsn: u64,
    template_id: u16,
    record: Bytes,
}

#[derive(Debug)]
struct SessionState {
    config: usize,
    id: u8,
    document_id: DocumentId,
    next_dsn: u64,
    /// Unacknowledged records, ascending DSN; `queue[..next_unsent]` are outstanding.
    queue: VecDeque<Queued>,
    next_unsent: usize,
    /// Highest DSN of the current document ever sent (on any connection).
    sent_high: Option<u64>,
    dropped: u64,
    flow: Flow,
    /// Last DATA_ACK progress, or when DATA became outstanding.
    ack_progress: Instant,
}

/// The exporter side of IPDR/SP. See the [module docs](self).
#[derive(Debug)]
pub struct Exporter {
    config: Arc<ExporterConfig>,
    created: Instant,
    sessions: Vec<SessionState>,
    conn: Option<Conn>,
    out: VecDeque<ExporterOutput>,
    stats: ExporterStats,
    next_session: usize,
}

impl Exporter {
    pub fn new(config: Arc<ExporterConfig>, now: Instant) -> Exporter {
        let sessions = config
            .sessions
            .iter()
            .enumerate()
            .map(|(i, s)| SessionState {
                config: i,
                id: s.session_id,
                document_id: s.document_id,
                next_dsn: 0,
                queue: VecDeque::new(),
                next_unsent: 0,
                sent_high: None,
                dropped: 0,
                flow: Flow::Idle,
                ack_progress: now,
            })
            .collect();
        Exporter {
            config,
            created: now,
            sessions,
            conn: None,
            out: VecDeque::new(),
            stats: ExporterStats {
                documents: 1,
                ..ExporterStats::default()
            },
            next_session: 0,
        }
    }

    pub fn config(&self) -> &Arc<ExporterConfig> {
        &self.config
    }

    pub fn stats(&self) -> &ExporterStats {
        &self.stats
    }

    /// A transport connection exists (handshake may be pending).
    pub fn has_connection(&self) -> bool {
        self.conn
            .as_ref()
            .is_some_and(|c| c.state != ConnState::Closed)
    }

    /// The CONNECT handshake is done on the current connection.
    pub fn is_connected(&self) -> bool {
        self.conn
            .as_ref()
            .is_some_and(|c| c.state == ConnState::Connected)
    }

    /// Capabilities in force on the current connection.
    pub fn capabilities(&self) -> Capabilities {
        self.conn
            .as_ref()
            .map_or(Capabilities::NONE, |c| c.capabilities)
    }

    /// Whether DATA can flow for the session now.
    pub fn is_active(&self, session_id: u8) -> bool {
        self.is_connected()
            && self
                .session(session_id)
                .is_some_and(|s| s.flow == Flow::Active)
    }

    fn session(&self, id: u8) -> Option<&SessionState> {
        self.sessions.iter().find(|s| s.id == id)
    }

    fn session_pos(&self, id: u8) -> Option<usize> {
        self.sessions.iter().position(|s| s.id == id)
    }

    /// Records queued and not acknowledged (sent or not).
    pub fn unacknowledged(&self, session_id: u8) -> usize {
        self.session(session_id).map_or(0, |s| s.queue.len())
    }

    /// How many more records [`Exporter::enqueue`] accepts now.
    pub fn queue_room(&self, session_id: u8) -> usize {
        self.session(session_id)
            .map_or(0, |s| self.config.max_queue.saturating_sub(s.queue.len()))
    }

    /// Every enqueued record of every session has been acknowledged.
    pub fn all_acknowledged(&self) -> bool {
        self.sessions.iter().all(|s| s.queue.is_empty())
    }

    /// The session's current documentId and next DSN.
    pub fn document(&self, session_id: u8) -> Option<(DocumentId, u64)> {
        self.session(session_id)
            .map(|s| (s.document_id, s.next_dsn))
    }

    /// Queues one encoded record (the bytes after the DATA record length) for the session;
    /// returns its DSN. Works with or without a connection.
    pub fn enqueue(
        &mut self,
        session_id: u8,
        template_id: u16,
        record: Bytes,
    ) -> Result<u64, ExporterError> {
        let max = self.config.max_queue;
        let i = self
            .session_pos(session_id)
            .ok_or(ExporterError::UnknownSession(session_id))?;
        let s = &mut self.sessions[i];
        if s.queue.len() >= max {
            s.dropped += 1;
            return Err(ExporterError::QueueFull { session_id, max });
        }
        let dsn = s.next_dsn;
        s.next_dsn += 1;
        s.queue.push_back(Queued {
            dsn,
            template_id,
            record,
        });
        self.stats.records_enqueued += 1;
        Ok(dsn)
    }

    /// A new transport connection. A previous one, if any, is considered lost. As
    /// [`Role::Initiator`] the CONNECT is queued at once.
    pub fn connection_opened(&mut self, now: Instant, role: Role) {
        if self.conn.is_some() {
            self.connection_lost(now);
        }
        self.out.clear();
        self.stats.connections += 1;
        let state = match role {
            Role::Initiator { .. } => ConnState::AwaitingConnectResponse,
            Role::Responder => ConnState::AwaitingConnect,
        };
        self.conn = Some(Conn {
            state,
            created: now,
            capabilities: Capabilities::NONE,
            peer_keep_alive: None,
            last_sent: now,
            last_received: now,
        });
        if let Role::Initiator { local } = role {
            let body = Body::Connect(Connect {
                initiator_address: *local.ip(),
                initiator_port: local.port(),
                capabilities: self.config.capabilities,
                keep_alive_interval: self.config.keep_alive_interval,
                vendor_id: self.config.vendor_id.clone(),
            });
            self.send(now, Message::new(0, body));
        }
    }

    /// The transport connection is gone. Outstanding DATA will be resent on the next one.
    pub fn connection_lost(&mut self, _now: Instant) {
        self.conn = None;
        self.out.clear();
        for s in &mut self.sessions {
            s.flow = Flow::Idle;
            s.next_unsent = 0;
        }
    }

    /// Next thing to do, `None` when idle. DATA messages are produced here, lazily, while
    /// the window allows: a caller that stops pulling stops the flow.
    pub fn poll_output(&mut self, now: Instant) -> Option<ExporterOutput> {
        if let Some(o) = self.out.pop_front() {
            return Some(o);
        }
        self.next_data(now)
    }

    fn next_data(&mut self, now: Instant) -> Option<ExporterOutput> {
        let conn = self.conn.as_mut()?;
        if conn.state != ConnState::Connected {
            return None;
        }
        let window = self.config.window_size.max(1);
        let n = self.sessions.len();
        for k in 0..n {
            let i = (self.next_session + k) % n;
            let s = &mut self.sessions[i];
            if s.flow != Flow::Active || s.next_unsent >= s.queue.len() || s.next_unsent >= window {
                continue;
            }
            if s.next_unsent == 0 {
                s.ack_progress = now;
            }
            let q = &s.queue[s.next_unsent];
            s.next_unsent += 1;
            let duplicate = s.sent_high.is_some_and(|h| q.dsn <= h);
            if !duplicate {
                s.sent_high = Some(q.dsn);
            }
            let config_id = self.config.sessions[s.config].config_id;
            let msg = Message::new(
                s.id,
                Body::Data(Data {
                    template_id: q.template_id,
                    config_id,
                    flags: if duplicate { Data::FLAG_DUPLICATE } else { 0 },
                    sequence_num: q.dsn,
                    record: q.record.clone(),
                }),
            );
            self.stats.data_sent += 1;
            if duplicate {
                self.stats.data_resent += 1;
            }
            self.next_session = (i + 1) % n;
            conn.last_sent = now;
            return Some(ExporterOutput::Send(msg));
        }
        None
    }

    /// When [`Exporter::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let conn = self.conn.as_ref()?;
        let mut t: Option<Instant> = None;
        let mut at = |x: Instant| t = Some(t.map_or(x, |t| t.min(x)));
        match conn.state {
            ConnState::Closed => return None,
            ConnState::AwaitingConnect | ConnState::AwaitingConnectResponse => {
                if let Some(x) = conn.created.checked_add(self.config.connect_timeout) {
                    at(x);
                }
            }
            ConnState::Connected => {
                if let Some(ka) = conn.peer_keep_alive {
                    at(conn.last_sent + ka / 2);
                }
                if self.config.keep_alive_interval > 0 {
                    at(conn.last_received
                        + Duration::from_secs(self.config.keep_alive_interval.into()));
                }
                if !self.config.window_timeout.is_zero() {
                    for s in &self.sessions {
                        if s.flow == Flow::Active && s.next_unsent > 0 {
                            at(s.ack_progress + self.config.window_timeout);
                        }
                    }
                }
            }
        }
        t
    }

    /// Runs the timers that are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(conn) = self.conn.as_ref() else {
            return;
        };
        match conn.state {
            ConnState::Closed => {}
            ConnState::AwaitingConnect | ConnState::AwaitingConnectResponse => {
                let due = conn.created.checked_add(self.config.connect_timeout);
                if due.is_some_and(|due| now >= due) {
                    self.event(ExporterEvent::ConnectTimeout);
                    self.close();
                }
            }
            ConnState::Connected => {
                let ka = self.config.keep_alive_interval;
                if ka > 0 && now >= conn.last_received + Duration::from_secs(ka.into()) {
                    let d = format!(
                        "no message received from the collector within the {ka} s keep-alive interval"
                    );
                    self.send_error(now, None, ErrorCode::KEEP_ALIVE_EXPIRED, d);
                    return;
                }
                let wt = self.config.window_timeout;
                if !wt.is_zero() {
                    let stalled = self.sessions.iter().find(|s| {
                        s.flow == Flow::Active && s.next_unsent > 0 && now >= s.ack_progress + wt
                    });
                    if let Some(s) = stalled {
                        let e = ExporterEvent::WindowTimeout {
                            session_id: s.id,
                            outstanding: s.next_unsent,
                        };
                        self.event(e);
                        self.send(now, Message::new(0, Body::Disconnect));
                        self.event(ExporterEvent::Disconnected { by_peer: false });
                        self.close();
                        return;
                    }
                }
                if let Some(ka) = conn.peer_keep_alive {
                    if now >= conn.last_sent + ka / 2 {
                        self.send(now, Message::new(0, Body::KeepAlive));
                    }
                }
            }
        }
    }

    /// Handles a framing or decoding error: answers ERROR and closes when it is fatal.
    pub fn handle_frame_error(&mut self, now: Instant, error: &FrameError) {
        if !self.has_connection() {
            return;
        }
        if let Some(c) = self.conn.as_mut() {
            c.last_received = now;
        }
        let sid = error.session_specific().then_some(error.session_id);
        self.send_error(now, sid, error.error_code(), error.to_string());
    }

    /// Handles one message from the collector.
    pub fn handle_message(&mut self, now: Instant, msg: Message) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        if conn.state == ConnState::Closed {
            return;
        }
        conn.last_received = now;
        let state = conn.state;
        let sid = msg.session_id;
        let id = msg.id();
        match msg.body {
            Body::KeepAlive => {}
            Body::Error(e) => {
                self.stats.errors_received += 1;
                let fatal = !e.session_specific;
                self.event(ExporterEvent::PeerError {
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
                self.event(ExporterEvent::Disconnected { by_peer: true });
                self.close();
            }
            Body::Connect(c) if state == ConnState::AwaitingConnect => self.on_connect(now, c),
            Body::ConnectResponse(r) if state == ConnState::AwaitingConnectResponse => {
                self.on_connect_response(now, r)
            }
            Body::Connect(_) | Body::ConnectResponse(_) => {
                let d = format!("unexpected {id}");
                self.send_error(now, None, ErrorCode::MESSAGE_INVALID_FOR_STATE, d);
            }
            _ if state != ConnState::Connected => {
                let d = format!("{id} before the CONNECT handshake");
                self.send_error(now, None, ErrorCode::MESSAGE_INVALID_FOR_STATE, d);
            }
            Body::GetSessions(g) => self.on_get_sessions(now, g),
            Body::GetTemplates(g) => self.on_get_templates(now, sid, g),
            Body::FlowStart => self.on_flow_start(now, sid),
            Body::FlowStop(f) => self.on_flow_stop(now, sid, f),
            Body::FinalTemplateDataAck => self.on_final_ack(now, sid),
            Body::ModifyTemplate(m) => self.on_modify_template(now, sid, m),
            Body::StartNegotiation => {
                if self.session_pos(sid).is_some() {
                    self.send(now, Message::new(sid, Body::StartNegotiationReject));
                } else {
                    self.unknown_session(now, sid, id.name());
                }
            }
            Body::DataAck(a) => self.on_data_ack(now, sid, a),
            Body::Request(_) | Body::Response(_) => {
                let d = format!("{id} (IPDR/SP 2.2 request/response) is not supported");
                self.send_error(
                    now,
                    Some(sid),
                    ErrorCode::MESSAGE_INVALID_FOR_CAPABILITIES,
                    d,
                );
            }
            Body::SessionStart(_)
            | Body::SessionStop(_)
            | Body::TemplateData(_)
            | Body::GetSessionsResponse(_)
            | Body::GetTemplatesResponse(_)
            | Body::ModifyTemplateResponse(_)
            | Body::StartNegotiationReject
            | Body::Data(_) => {
                let d = format!("{id} is sent by an exporter, not to one");
                self.send_error(now, Some(sid), ErrorCode::MESSAGE_INVALID_FOR_STATE, d);
            }
        }
    }

    // ----- commands -----

    /// Ends the current document of a session and starts a new one (DSNs restart at 0).
    /// Every record of the current document must have been acknowledged. When the session
    /// is active this sends SESSION_STOP (6, end of document) and SESSION_START.
    pub fn new_document(
        &mut self,
        now: Instant,
        session_id: u8,
        document_id: DocumentId,
    ) -> Result<(), ExporterError> {
        let i = self
            .session_pos(session_id)
            .ok_or(ExporterError::UnknownSession(session_id))?;
        if !self.sessions[i].queue.is_empty() {
            return Err(ExporterError::DocumentBusy(session_id));
        }
        let active = self.is_connected() && self.sessions[i].flow == Flow::Active;
        if active {
            self.session_stop(
                now,
                i,
                SessionStopReason::END_OF_DOCUMENT,
                "end of document",
            );
        }
        let s = &mut self.sessions[i];
        s.document_id = document_id;
        s.next_dsn = 0;
        s.sent_high = None;
        s.dropped = 0;
        self.stats.documents += 1;
        if active {
            self.session_start(now, i);
        }
        Ok(())
    }

    /// Sends SESSION_STOP for an active session; DATA stops until
    /// [`Exporter::start_session`].
    pub fn stop_session(
        &mut self,
        now: Instant,
        session_id: u8,
        reason: SessionStopReason,
        reason_info: &str,
    ) -> Result<(), ExporterError> {
        let i = self
            .session_pos(session_id)
            .ok_or(ExporterError::UnknownSession(session_id))?;
        if !self.is_connected() || self.sessions[i].flow != Flow::Active {
            return Err(ExporterError::NotActive(session_id));
        }
        self.session_stop(now, i, reason, reason_info);
        Ok(())
    }

    /// Sends SESSION_START again after [`Exporter::stop_session`] (same document; the
    /// unacknowledged records are resent).
    pub fn start_session(&mut self, now: Instant, session_id: u8) -> Result<(), ExporterError> {
        let i = self
            .session_pos(session_id)
            .ok_or(ExporterError::UnknownSession(session_id))?;
        if !self.is_connected() || self.sessions[i].flow != Flow::Ready {
            return Err(ExporterError::NotActive(session_id));
        }
        self.session_start(now, i);
        Ok(())
    }

    /// Ends the connection politely: SESSION_STOP (0, end of data) for every active
    /// session, DISCONNECT, close. Unacknowledged records stay queued.
    pub fn disconnect(&mut self, now: Instant) -> Result<(), ExporterError> {
        if !self.has_connection() {
            return Err(ExporterError::NotConnected);
        }
        if self.is_connected() {
            for i in 0..self.sessions.len() {
                if self.sessions[i].flow == Flow::Active {
                    self.session_stop(now, i, SessionStopReason::END_OF_DATA, "end of data");
                }
            }
        }
        self.send(now, Message::new(0, Body::Disconnect));
        self.event(ExporterEvent::Disconnected { by_peer: false });
        self.close();
        Ok(())
    }

    // ----- internals -----

    fn unix_time(&self, now: Instant) -> u32 {
        let secs = now.saturating_duration_since(self.created).as_secs();
        self.config
            .boot_time
            .saturating_add(secs.min(u32::MAX as u64) as u32)
    }

    fn send(&mut self, now: Instant, msg: Message) {
        if let Some(c) = self.conn.as_mut() {
            c.last_sent = now;
        }
        self.out.push_back(ExporterOutput::Send(msg));
    }

    fn event(&mut self, e: ExporterEvent) {
        self.out.push_back(ExporterOutput::Event(e));
    }

    fn close(&mut self) {
        if let Some(c) = self.conn.as_mut() {
            if c.state != ConnState::Closed {
                c.state = ConnState::Closed;
                self.out.push_back(ExporterOutput::Close);
            }
        }
        for s in &mut self.sessions {
            s.flow = Flow::Idle;
            s.next_unsent = 0;
        }
    }

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
        self.stats.errors_sent += 1;
        self.send(now, Message::new(session.unwrap_or(0), body));
        self.event(ExporterEvent::ErrorSent {
            session_id: session,
            code,
            description,
            fatal: session.is_none(),
        });
        if session.is_none() {
            self.close();
        }
    }

    fn unknown_session(&mut self, now: Instant, sid: u8, what: &str) {
        let d = format!("{what} for session {sid}, which this exporter does not offer");
        self.send_error(now, Some(sid), ErrorCode::MESSAGE_INVALID_FOR_STATE, d);
    }

    fn connected(&mut self, caps: Capabilities, peer_ka: u32, vendor_id: String) {
        if let Some(c) = self.conn.as_mut() {
            c.state = ConnState::Connected;
            c.capabilities = caps;
            c.peer_keep_alive = (peer_ka > 0).then(|| Duration::from_secs(peer_ka.into()));
        }
        self.event(ExporterEvent::Connected {
            vendor_id,
            capabilities: caps,
            peer_keep_alive: peer_ka,
        });
    }

    fn on_connect(&mut self, now: Instant, c: Connect) {
        let caps = self.config.capabilities.intersection(c.capabilities);
        let body = Body::ConnectResponse(ConnectResponse {
            capabilities: caps,
            keep_alive_interval: self.config.keep_alive_interval,
            vendor_id: self.config.vendor_id.clone(),
        });
        self.send(now, Message::new(0, body));
        self.connected(caps, c.keep_alive_interval, c.vendor_id);
    }

    fn on_connect_response(&mut self, _now: Instant, r: ConnectResponse) {
        let caps = self.config.capabilities.intersection(r.capabilities);
        self.connected(caps, r.keep_alive_interval, r.vendor_id);
    }

    fn on_get_sessions(&mut self, now: Instant, g: GetSessions) {
        let sessions = self
            .config
            .sessions
            .iter()
            .map(|s| SessionBlock {
                session_id: s.session_id,
                reserved: 0,
                name: s.name.clone(),
                description: s.description.clone(),
                ack_time_interval: s.ack_time_interval,
                ack_sequence_interval: s.ack_sequence_interval,
            })
            .collect();
        let body = Body::GetSessionsResponse(GetSessionsResponse {
            request_id: g.request_id,
            sessions,
        });
        self.send(now, Message::new(0, body));
    }

    fn on_get_templates(&mut self, now: Instant, sid: u8, g: GetTemplates) {
        let Some(i) = self.session_pos(sid) else {
            return self.unknown_session(now, sid, "GET_TEMPLATES");
        };
        let sc = &self.config.sessions[self.sessions[i].config];
        let body = Body::GetTemplatesResponse(GetTemplatesResponse {
            request_id: g.request_id,
            config_id: sc.config_id,
            templates: sc.templates.clone(),
        });
        self.send(now, Message::new(sid, body));
    }

    fn on_flow_start(&mut self, now: Instant, sid: u8) {
        let Some(i) = self.session_pos(sid) else {
            return self.unknown_session(now, sid, "FLOW_START");
        };
        let multi = self.capabilities().contains(Capabilities::MULTISESSION);
        let others = self
            .sessions
            .iter()
            .any(|s| s.id != sid && s.flow != Flow::Idle);
        if !multi && others {
            let d = format!("FLOW_START for session {sid}: MULTISESSION is not in force and another session flows");
            self.send_error(
                now,
                Some(sid),
                ErrorCode::MESSAGE_INVALID_FOR_CAPABILITIES,
                d,
            );
            return;
        }
        // A repeated FLOW_START restarts the flow: whatever was outstanding goes again.
        let s = &mut self.sessions[i];
        s.flow = Flow::TemplatesSent;
        s.next_unsent = 0;
        let sc = &self.config.sessions[s.config];
        let body = Body::TemplateData(TemplateData {
            config_id: sc.config_id,
            flags: 0,
            templates: sc.templates.clone(),
        });
        self.event(ExporterEvent::FlowStarted { session_id: sid });
        self.send(now, Message::new(sid, body));
    }

    fn on_flow_stop(&mut self, now: Instant, sid: u8, f: FlowStop) {
        let Some(i) = self.session_pos(sid) else {
            return self.unknown_session(now, sid, "FLOW_STOP");
        };
        let s = &mut self.sessions[i];
        s.flow = Flow::Idle;
        s.next_unsent = 0;
        self.event(ExporterEvent::FlowStopped {
            session_id: sid,
            reason: f.reason_code,
            reason_info: f.reason_info,
        });
    }

    fn on_final_ack(&mut self, now: Instant, sid: u8) {
        let Some(i) = self.session_pos(sid) else {
            return self.unknown_session(now, sid, "FINAL_TEMPLATE_DATA_ACK");
        };
        if self.sessions[i].flow != Flow::TemplatesSent {
            let d = format!("FINAL_TEMPLATE_DATA_ACK for session {sid} without TEMPLATE_DATA");
            self.send_error(now, Some(sid), ErrorCode::MESSAGE_INVALID_FOR_STATE, d);
            return;
        }
        self.session_start(now, i);
    }

    fn on_modify_template(&mut self, now: Instant, sid: u8, _m: ModifyTemplate) {
        let Some(i) = self.session_pos(sid) else {
            return self.unknown_session(now, sid, "MODIFY_TEMPLATE");
        };
        // Templates are offered as non-negotiable: the final set is the unchanged one.
        let sc = &self.config.sessions[self.sessions[i].config];
        let body = Body::ModifyTemplateResponse(ModifyTemplateResponse {
            config_id: sc.config_id,
            flags: 0,
            templates: sc.templates.clone(),
        });
        self.send(now, Message::new(sid, body));
    }

    fn on_data_ack(&mut self, now: Instant, sid: u8, a: DataAck) {
        let Some(i) = self.session_pos(sid) else {
            return self.unknown_session(now, sid, "DATA_ACK");
        };
        self.stats.data_acks_received += 1;
        let s = &mut self.sessions[i];
        let mut released = 0;
        // Only records actually sent on this connection can be acknowledged.
        while released < s.next_unsent {
            match s.queue.front() {
                Some(q) if q.dsn <= a.sequence_num => {
                    s.queue.pop_front();
                    released += 1;
                }
                _ => break,
            }
        }
        s.next_unsent -= released;
        if released > 0 {
            s.ack_progress = now;
        }
        self.stats.records_acked += released as u64;
        let document_id = s.document_id;
        self.event(ExporterEvent::Acked {
            session_id: sid,
            document_id,
            sequence_num: a.sequence_num,
            records: released,
        });
    }

    fn session_start(&mut self, now: Instant, i: usize) {
        let s = &mut self.sessions[i];
        s.flow = Flow::Active;
        s.next_unsent = 0;
        s.ack_progress = now;
        let first = s.queue.front().map_or(s.next_dsn, |q| q.dsn);
        let resending = match s.sent_high {
            Some(h) => s.queue.iter().take_while(|q| q.dsn <= h).count(),
            None => 0,
        };
        let sc = &self.config.sessions[s.config];
        let body = Body::SessionStart(SessionStart {
            exporter_boot_time: self.config.boot_time,
            first_record_sequence_number: first,
            dropped_record_count: s.dropped,
            primary: true,
            ack_time_interval: sc.ack_time_interval,
            ack_sequence_interval: sc.ack_sequence_interval,
            document_id: s.document_id,
        });
        let (sid, document_id) = (s.id, s.document_id);
        self.send(now, Message::new(sid, body));
        self.event(ExporterEvent::SessionStarted {
            session_id: sid,
            document_id,
            first_sequence_num: first,
            resending,
        });
    }

    fn session_stop(&mut self, now: Instant, i: usize, reason: SessionStopReason, info: &str) {
        // Outstanding DATA may still be acknowledged; what is not goes again at the next
        // SESSION_START.
        let s = &mut self.sessions[i];
        s.flow = Flow::Ready;
        let sid = s.id;
        let body = Body::SessionStop(SessionStop {
            reason_code: reason,
            reason_info: info.to_string(),
        });
        self.send(now, Message::new(sid, body));
        self.event(ExporterEvent::SessionStopped {
            session_id: sid,
            reason,
        });
    }
}
