//! The CPE side of one CWMP session as a sans-IO state machine.
//!
//! ```text
//! start ──► POST Inform ──InformResponse──► POST TransferComplete / DUStateChangeComplete
//!                │                               (one per POST, each answered)
//!                │                          ──► empty POST
//!                │                                   │
//!                │           ACS request ◄───────────┤ 200 + RPC: answer it (response or fault)
//!                │                                   │ 204 / empty 200: session over
//!                └─ fault/4xx/5xx/garbage: session failed, events kept, RetryCount+1
//! ```
//!
//! The runner does the HTTP (auth retries, cookies, redirects) and hands
//! every final response to [`CpeSession::on_reply`], which says what to POST
//! next. Events are deleted only when the response that delivers them
//! arrives (InformResponse, TransferCompleteResponse,
//! DUStateChangeCompleteResponse), so a failed session re-sends them.

use chrono::{DateTime, Utc};

use super::device::{CpeDevice, Effect};
use acs::codec::*;

/// How often a `8005 Retry request` fault makes us re-send at once.
const MAX_8005_RETRIES: u32 = 5;
/// Hard cap on exchanges in one session, against a looping ACS.
const MAX_EXCHANGES: u32 = 100_000;

/// What the runner does next.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionStep {
    /// POST this body next (an empty body is the empty POST).
    Post(Vec<u8>),
    /// The session ended normally; carry out the effects.
    Done(Vec<Effect>),
    /// The session failed: undelivered events stay pending and RetryCount
    /// was bumped. Carry out the effects, then retry after the back-off.
    Failed {
        reason: String,
        effects: Vec<Effect>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitInformResponse,
    AwaitRequestResponse,
    AwaitAcs,
    Over,
}

/// One CPE session in progress.
#[derive(Debug, Clone)]
pub struct CpeSession {
    state: State,
    ns: String,
    style: OutputStyle,
    limits: Limits,
    inform_events: Vec<EventStruct>,
    inform_mark: u64,
    inform_body: Vec<u8>,
    /// (pending request id, body) of our outstanding request.
    outstanding: Option<(u64, Vec<u8>)>,
    /// Requests already attempted in this session (not re-sent after a fault).
    tried: Vec<u64>,
    retries_8005: u32,
    exchanges: u32,
    use_cwmp_version: Option<String>,
    acs_requests: u32,
}

impl CpeSession {
    /// Opens a session: builds the Inform from the device's pending events
    /// and returns the session plus the first POST body.
    pub fn start(device: &mut CpeDevice, now: DateTime<Utc>) -> (CpeSession, Vec<u8>) {
        let mark = device.session_started();
        let inform = device.build_inform(now);
        let style = OutputStyle {
            envelope_prefix: EnvPrefix::Upper,
            boolean_style: if device.settings.boolean_digits {
                BoolStyle::Digits
            } else {
                BoolStyle::Words
            },
        };
        let ns = device.settings.cwmp_ns.clone();
        let env = Envelope {
            ns: ns.clone(),
            header: Header {
                id: Some(device.next_message_id()),
                session_timeout: device.settings.session_timeout,
                supported_cwmp_versions: device.settings.supported_cwmp_versions.clone(),
                ..Header::default()
            },
            body: Body::Rpc(Rpc::Inform(inform.clone())),
        };
        let body = serialize(&env, &style);
        let s = CpeSession {
            state: State::AwaitInformResponse,
            ns,
            style,
            limits: Limits::default(),
            inform_events: inform.event,
            inform_mark: mark,
            inform_body: body.clone(),
            outstanding: None,
            tried: Vec::new(),
            retries_8005: 0,
            exchanges: 0,
            use_cwmp_version: None,
            acs_requests: 0,
        };
        (s, body)
    }

    /// The events carried by this session's Inform.
    pub fn inform_events(&self) -> &[EventStruct] {
        &self.inform_events
    }

    /// The namespace in use (the ACS's, once it has answered).
    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// `UseCWMPVersion` from the InformResponse, if the ACS negotiated.
    pub fn use_cwmp_version(&self) -> Option<&str> {
        self.use_cwmp_version.as_deref()
    }

    /// ACS requests answered so far.
    pub fn acs_requests_handled(&self) -> u32 {
        self.acs_requests
    }

    /// True once the Inform has been answered (the point after which a
    /// redirect is no longer allowed).
    pub fn informed(&self) -> bool {
        self.state != State::AwaitInformResponse
    }

    /// True once the session has ended (either way).
    pub fn is_over(&self) -> bool {
        self.state == State::Over
    }

    fn fail(&mut self, device: &mut CpeDevice, reason: String, now: DateTime<Utc>) -> SessionStep {
        self.state = State::Over;
        let effects = device.session_ended(false, now);
        SessionStep::Failed { reason, effects }
    }

    fn done(&mut self, device: &mut CpeDevice, now: DateTime<Utc>) -> SessionStep {
        self.state = State::Over;
        SessionStep::Done(device.session_ended(true, now))
    }

    /// The transport failed (connect error, timeout, connection closed).
    pub fn abort(
        &mut self,
        device: &mut CpeDevice,
        reason: impl Into<String>,
        now: DateTime<Utc>,
    ) -> SessionStep {
        if self.state == State::Over {
            return SessionStep::Failed {
                reason: reason.into(),
                effects: Vec::new(),
            };
        }
        self.fail(device, reason.into(), now)
    }

    fn envelope(&self, id: Option<String>, body: Body) -> Vec<u8> {
        let env = Envelope {
            ns: self.ns.clone(),
            header: Header {
                id,
                ..Header::default()
            },
            body,
        };
        serialize(&env, &self.style)
    }

    /// Sends the next not-yet-tried pending request, or the empty POST.
    fn next_request_or_empty(&mut self, device: &mut CpeDevice) -> SessionStep {
        let next = device
            .requests_for(self.inform_mark)
            .find(|r| !self.tried.contains(&r.id()))
            .cloned();
        match next {
            Some(req) => {
                let id = device.next_message_id();
                let body = self.envelope(Some(id), Body::Rpc(req.to_rpc()));
                self.outstanding = Some((req.id(), body.clone()));
                self.retries_8005 = 0;
                self.state = State::AwaitRequestResponse;
                SessionStep::Post(body)
            }
            None => {
                self.outstanding = None;
                self.state = State::AwaitAcs;
                SessionStep::Post(Vec::new())
            }
        }
    }

    fn answer_acs_request(
        &mut self,
        device: &mut CpeDevice,
        id: Option<String>,
        rpc: &Rpc,
        now: DateTime<Utc>,
    ) -> SessionStep {
        self.acs_requests += 1;
        self.state = State::AwaitAcs;
        self.outstanding = None;
        let body = match device.handle_request(rpc, now) {
            Ok(resp) => Body::Rpc(resp),
            Err(fault) => Body::Fault(fault),
        };
        SessionStep::Post(self.envelope(id, body))
    }

    /// Handles the ACS's HTTP response to our last POST (after any 401
    /// round trip, which the runner does). Returns what to do next.
    pub fn on_reply(
        &mut self,
        device: &mut CpeDevice,
        status: u16,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> SessionStep {
        if self.state == State::Over {
            return SessionStep::Failed {
                reason: "session already over".into(),
                effects: Vec::new(),
            };
        }
        self.exchanges += 1;
        if self.exchanges > MAX_EXCHANGES {
            return self.fail(device, "too many messages in one session".into(), now);
        }
        if status != 200 && status != 204 {
            return self.fail(device, format!("ACS answered HTTP {status}"), now);
        }
        if status == 204 || is_empty_body(body) {
            return match self.state {
                State::AwaitInformResponse => {
                    self.fail(device, "empty response to the Inform".into(), now)
                }
                State::AwaitRequestResponse => {
                    // Not acknowledged: the request stays pending for a later session.
                    if let Some((rid, _)) = self.outstanding.take() {
                        self.tried.push(rid);
                    }
                    self.next_request_or_empty(device)
                }
                State::AwaitAcs | State::Over => self.done(device, now),
            };
        }
        let env = match parse(body, &self.limits) {
            Ok(env) => env,
            Err(e) => return self.fail(device, format!("unparsable ACS message: {e}"), now),
        };
        if is_cwmp_namespace(&env.ns) {
            self.ns = env.ns.clone();
        }
        match self.state {
            State::AwaitInformResponse => match &env.body {
                Body::Rpc(Rpc::InformResponse(_)) => {
                    self.use_cwmp_version = env.header.use_cwmp_version.clone();
                    device.inform_delivered(self.inform_mark);
                    self.next_request_or_empty(device)
                }
                Body::Fault(f)
                    if f.detail.fault_code == 8005 && self.retries_8005 < MAX_8005_RETRIES =>
                {
                    self.retries_8005 += 1;
                    SessionStep::Post(self.inform_body.clone())
                }
                Body::Fault(f) => self.fail(
                    device,
                    format!(
                        "ACS fault {} to the Inform: {}",
                        f.detail.fault_code, f.detail.fault_string
                    ),
                    now,
                ),
                Body::Rpc(other) => self.fail(
                    device,
                    format!("expected InformResponse, got {}", other.method_name()),
                    now,
                ),
            },
            State::AwaitRequestResponse => {
                let Some((rid, sent)) = self.outstanding.clone() else {
                    return self.next_request_or_empty(device);
                };
                let pending = device.pending_requests().find(|r| r.id() == rid).cloned();
                match &env.body {
                    Body::Rpc(resp) if pending.as_ref().is_some_and(|p| p.is_answered_by(resp)) => {
                        device.request_delivered(rid);
                        self.tried.push(rid);
                        self.next_request_or_empty(device)
                    }
                    Body::Fault(f)
                        if f.detail.fault_code == 8005 && self.retries_8005 < MAX_8005_RETRIES =>
                    {
                        self.retries_8005 += 1;
                        SessionStep::Post(sent)
                    }
                    Body::Rpc(req)
                        if req.is_acs_request()
                            || (matches!(req, Rpc::Unknown { .. }) && !req.is_response()) =>
                    {
                        // Protocol deviation (checklist S4): the ACS sent a
                        // request instead of answering ours. Answer it; ours
                        // stays pending for a later session.
                        self.tried.push(rid);
                        self.answer_acs_request(device, env.header.id.clone(), req, now)
                    }
                    _ => {
                        // A fault or a mismatched response: not delivered.
                        self.tried.push(rid);
                        self.next_request_or_empty(device)
                    }
                }
            }
            State::AwaitAcs => match &env.body {
                Body::Rpc(rpc) if !rpc.is_response() => {
                    self.answer_acs_request(device, env.header.id.clone(), rpc, now)
                }
                Body::Rpc(_) => {
                    // A stray response: nothing to answer, keep the session going.
                    SessionStep::Post(Vec::new())
                }
                Body::Fault(f) => self.fail(
                    device,
                    format!("unexpected SOAP fault {} from the ACS", f.detail.fault_code),
                    now,
                ),
            },
            State::Over => unreachable!("checked above"),
        }
    }
}
