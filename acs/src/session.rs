//! The ACS side of one CWMP session as a pure state machine.
//!
//! The HTTP glue feeds it what each POST carried (an envelope or nothing) and gets back what to
//! answer plus what must be made durable *before* that answer is sent (the Inform's events before
//! the InformResponse, a TransferComplete before its response, RPC results before the next step).
//! It never touches a socket, a clock or a database, so every rule of checklist §1.3 is testable
//! with plain values.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::codec::*;
use crate::faults;

/// Versions this ACS speaks, lowest first.
pub const SUPPORTED_VERSIONS: [&str; 5] = ["1.0", "1.1", "1.2", "1.3", "1.4"];

/// Methods we answer when a CPE calls GetRPCMethods (checklist §2.1).
pub const ACS_METHODS: [&str; 8] = [
    "Inform",
    "GetRPCMethods",
    "TransferComplete",
    "AutonomousTransferComplete",
    "DUStateChangeComplete",
    "AutonomousDUStateChangeComplete",
    "RequestDownload",
    "Kicked",
];

/// Task kinds the queue accepts: one per CPE method.
pub const TASK_KINDS: [&str; 20] = crate::codec::CPE_METHODS;

/// A queued task as the session sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    pub id: i64,
    pub kind: String,
    pub args: Value,
    pub command_key: Option<String>,
    /// Upload tasks: the single-use token `{upload_token}` in the URL stands for.
    pub upload_token: Option<String>,
}

/// What happened to a task in this session.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskOutcome {
    /// Finished; `result` is the CPE's response as JSON.
    Done { id: i64, result: Value },
    /// Accepted by the CPE, completion reported later (TransferComplete, `M Reboot`, …).
    /// `declared_delay` is how long the RPC itself allows before completion starts
    /// (DelaySeconds, the last ScheduleDownload window), in seconds.
    Waiting {
        id: i64,
        result: Value,
        declared_delay: u64,
    },
    /// The CPE answered with a fault, or the exchange failed.
    Fault {
        id: i64,
        code: u32,
        message: String,
        detail: Value,
        retryable: bool,
    },
    /// Sent to the CPE (bookkeeping: attempts, start time, the key it went out with).
    Started { id: i64, sent_key: Option<String> },
}

/// A change to the device's parameter store.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamChange {
    pub path: String,
    pub value: Option<String>,
    pub xsd_type: Option<String>,
    pub writable: Option<bool>,
    pub is_object: bool,
}

/// Everything the Inform tells us about the device, ready to persist.
#[derive(Debug, Clone, PartialEq)]
pub struct InformInfo {
    pub device_id: String,
    pub device: DeviceIdStruct,
    pub events: Vec<EventStruct>,
    pub bootstrap: bool,
    pub parameters: Vec<ParamChange>,
    pub root_object: String,
    pub software_version: Option<String>,
    pub hardware_version: Option<String>,
    pub connection_request_url: Option<String>,
    pub udp_connection_request_address: Option<String>,
    pub parameter_key: Option<String>,
    pub current_time: String,
    pub retry_count: u32,
    pub ns: String,
    pub cwmp_version: String,
}

/// Writes the driver must make durable before sending the reply that accompanies them.
#[derive(Debug, Clone, PartialEq)]
pub enum Persist {
    Inform(Box<InformInfo>),
    Results {
        tasks: Vec<TaskOutcome>,
        params: Vec<ParamChange>,
        deletes: Vec<String>,
    },
    TransferComplete {
        command_key: String,
        fault: Option<FaultStruct>,
        start_time: String,
        complete_time: String,
    },
    DuStateChangeComplete {
        command_key: String,
        result: Value,
        fault: Option<FaultStruct>,
    },
    /// The CPE confirmed a CancelTransfer: the transfer sent with `command_key` is over.
    TransferCancelled {
        command_key: String,
    },
    /// A CPE-initiated report worth keeping (autonomous transfers, RequestDownload, Kicked).
    Report {
        kind: String,
        body: Value,
    },
}

/// What to put on the wire.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// 200 with this envelope.
    Envelope(Box<Envelope>),
    /// 204, session over (`Connection: close`).
    End,
    /// 400 + close; the session is aborted.
    BadRequest(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub persist: Vec<Persist>,
    pub reply: Reply,
}

/// What the machine needs from the driver after an empty POST or a CPE response.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    Step(Step),
    /// Load the device's runnable tasks and call [`Session::supply_tasks`].
    NeedTasks {
        persist: Vec<Persist>,
    },
}

// One per session, moved rarely: boxing the outstanding request would save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
enum State {
    /// InformResponse sent; the CPE may send its requests, then an empty POST.
    CpeRequests,
    /// One ACS request outstanding.
    AwaitResponse {
        task: TaskSpec,
        request_id: String,
        method: String,
        sent: Rpc,
    },
    Done,
}

#[derive(Debug)]
pub struct Session {
    pub id: String,
    pub device_id: String,
    pub ns: String,
    pub cwmp_version: String,
    state: State,
    queue: VecDeque<TaskSpec>,
    tasks_loaded: bool,
    next_request: u32,
    last_activity: Instant,
    timeout: Duration,
    root_object: String,
}

/// Per-session settings: how long a session may sit idle, and how much one Inform may carry.
///
/// A CPE may ask for more than `base` with its `<cwmp:SessionTimeout>` header, never for
/// more than `max`: an abandoned session must not hold its device (and a session slot) for
/// hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    pub base: Duration,
    pub max: Duration,
    pub inform: InformBounds,
}

/// What one Inform may carry; over a bound, the Inform is refused with a CWMP fault (8003
/// for an oversized DeviceId field, 8004 for too many events or parameters) and nothing of
/// it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InformBounds {
    /// Bytes of each DeviceId field (TR-069 allows 64; 256 leaves room for odd CPEs).
    pub max_id_field_bytes: usize,
    /// Events in one Inform (TR-069: at most 64).
    pub max_events: usize,
    /// Parameters in one Inform's ParameterList.
    pub max_parameters: usize,
}

impl Default for InformBounds {
    fn default() -> Self {
        InformBounds {
            max_id_field_bytes: 256,
            max_events: 64,
            max_parameters: 5_000,
        }
    }
}

/// The cap on a CPE's SessionTimeout when none is configured.
pub const DEFAULT_MAX_SESSION_TIMEOUT: Duration = Duration::from_secs(300);

impl From<Duration> for SessionConfig {
    /// `base`, capped at [`DEFAULT_MAX_SESSION_TIMEOUT`] (or `base` if larger), default
    /// Inform bounds.
    fn from(base: Duration) -> Self {
        SessionConfig {
            base,
            max: DEFAULT_MAX_SESSION_TIMEOUT,
            inform: InformBounds::default(),
        }
    }
}

impl SessionConfig {
    /// The idle timeout of a session whose CPE asked for `requested` seconds.
    pub fn effective(&self, requested: Option<u32>) -> Duration {
        let max = self.max.max(self.base);
        match requested {
            Some(s) => Duration::from_secs(u64::from(s)).clamp(self.base, max),
            None => self.base,
        }
    }
}

/// Failure to start a session from an Inform.
#[derive(Debug, Clone, PartialEq)]
pub enum StartError {
    /// Answer with this CWMP fault (HTTP 200) and end the session.
    Fault(Box<Envelope>),
    /// Not an Inform: 400 + close.
    BadRequest(String),
}

impl Session {
    /// Starts a session from the first POST. Returns the session, the InformResponse step
    /// (persist the Inform first), or the error to answer.
    pub fn start(
        id: String,
        env: Envelope,
        now: Instant,
        config: impl Into<SessionConfig>,
    ) -> Result<(Session, Step), StartError> {
        let config = config.into();
        let Envelope { ns, header, body } = env;
        let inform = match body {
            Body::Rpc(Rpc::Inform(i)) => i,
            Body::Rpc(other) => {
                return Err(StartError::BadRequest(format!(
                    "session must start with Inform, got {}",
                    other.method_name()
                )))
            }
            Body::Fault(_) => {
                return Err(StartError::BadRequest(
                    "session must start with Inform, got a SOAP Fault".into(),
                ))
            }
        };
        let fault = |code: u32, msg: &str| {
            StartError::Fault(Box::new(Envelope {
                ns: ns.clone(),
                header: Header {
                    id: header.id.clone(),
                    ..Default::default()
                },
                body: Body::Fault(Fault::acs(code, msg)),
            }))
        };
        if inform.device_id.oui.trim().is_empty()
            || inform.device_id.serial_number.trim().is_empty()
        {
            return Err(fault(8003, "DeviceId needs OUI and SerialNumber"));
        }
        let b = &config.inform;
        let d = &inform.device_id;
        if [&d.manufacturer, &d.oui, &d.product_class, &d.serial_number]
            .iter()
            .any(|f| f.len() > b.max_id_field_bytes)
        {
            return Err(fault(
                8003,
                &format!(
                    "a DeviceId field is longer than {} bytes",
                    b.max_id_field_bytes
                ),
            ));
        }
        if inform.event.len() > b.max_events {
            return Err(fault(
                8004,
                &format!("more than {} events in one Inform", b.max_events),
            ));
        }
        if inform.parameter_list.len() > b.max_parameters {
            return Err(fault(
                8004,
                &format!("more than {} parameters in one Inform", b.max_parameters),
            ));
        }
        // Version negotiation (checklist §1.7).
        let (version, reply_ns, use_version) = match &header.supported_cwmp_versions {
            Some(list) => {
                let theirs: Vec<&str> = list.split(',').map(str::trim).collect();
                let best = SUPPORTED_VERSIONS
                    .iter()
                    .rev()
                    .find(|v| theirs.contains(v))
                    .copied();
                match best {
                    None => return Err(fault(8006, "ACS version incompatible with CPE")),
                    Some(v) => {
                        let ns_for = match v {
                            "1.0" => "urn:dslforum-org:cwmp-1-0".to_string(),
                            "1.1" => "urn:dslforum-org:cwmp-1-1".to_string(),
                            _ => ns.clone(),
                        };
                        (v.to_string(), ns_for, Some(v.to_string()))
                    }
                }
            }
            None => {
                let v = match ns.rsplit('-').next() {
                    Some("0") => "1.0",
                    Some("1") => "1.1",
                    Some("2") if header.session_timeout.is_some() => "1.3",
                    Some("2") => "1.2",
                    Some("3") => "1.3",
                    _ => "1.4",
                };
                (v.to_string(), ns.clone(), None)
            }
        };
        let timeout = config.effective(header.session_timeout);
        let info = inform_info(&inform, &reply_ns, &version);
        let response = Envelope {
            ns: reply_ns.clone(),
            header: Header {
                id: header.id.clone(),
                use_cwmp_version: use_version,
                ..Default::default()
            },
            body: Body::Rpc(Rpc::InformResponse(InformResponse { max_envelopes: 1 })),
        };
        let session = Session {
            id,
            device_id: info.device_id.clone(),
            ns: reply_ns,
            cwmp_version: version,
            state: State::CpeRequests,
            queue: VecDeque::new(),
            tasks_loaded: false,
            next_request: 0,
            last_activity: now,
            timeout,
            root_object: info.root_object.clone(),
        };
        Ok((
            session,
            Step {
                persist: vec![Persist::Inform(Box::new(info))],
                reply: Reply::Envelope(Box::new(response)),
            },
        ))
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// True once the session has been idle longer than its timeout.
    pub fn expired(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_activity) > self.timeout
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The task whose RPC is on the wire, if any (its outcome is unknown when the session dies).
    pub fn outstanding_task(&self) -> Option<i64> {
        match &self.state {
            State::AwaitResponse { task, .. } => Some(task.id),
            _ => None,
        }
    }

    /// Forget the loaded queue so the next empty POST (or response) reloads it: new tasks were
    /// queued while the session ran.
    pub fn invalidate_tasks(&mut self) {
        self.tasks_loaded = false;
        self.queue.clear();
    }

    /// Marks the session aborted (timeout or transport error). Returns what to persist: the
    /// outstanding task, whose outcome is unknown, goes back for a retry.
    pub fn abort(&mut self, reason: &str) -> Vec<Persist> {
        self.abort_with(faults::SESSION_ABORTED, reason)
    }

    /// [`abort`](Self::abort), recording `code` (a [`faults`] code) on the outstanding task.
    pub fn abort_with(&mut self, code: u32, reason: &str) -> Vec<Persist> {
        let prev = std::mem::replace(&mut self.state, State::Done);
        match prev {
            State::AwaitResponse { task, .. } => vec![Persist::Results {
                tasks: vec![TaskOutcome::Fault {
                    id: task.id,
                    code,
                    message: format!("session aborted, outcome unknown: {reason}"),
                    detail: Value::Null,
                    retryable: true,
                }],
                params: vec![],
                deletes: vec![],
            }],
            _ => vec![],
        }
    }

    /// A POST with an envelope, after the Inform.
    pub fn on_envelope(&mut self, env: Envelope, now: Instant) -> Next {
        self.last_activity = now;
        if self.state == State::Done {
            return Next::Step(Step {
                persist: vec![],
                reply: Reply::BadRequest("session already ended".into()),
            });
        }
        let request_id = env.header.id.clone();
        match env.body {
            Body::Rpc(rpc) if !rpc.is_response() => self.on_cpe_request(rpc, request_id),
            body => self.on_cpe_response(body, request_id),
        }
    }

    /// An empty POST: the CPE has nothing more to ask.
    pub fn on_empty(&mut self, now: Instant) -> Next {
        self.last_activity = now;
        match &self.state {
            State::Done => Next::Step(Step {
                persist: vec![],
                reply: Reply::BadRequest("session already ended".into()),
            }),
            State::AwaitResponse { task, .. } => {
                // The CPE dropped our request (checklist §1.3): record it and carry on.
                let id = task.id;
                self.state = State::CpeRequests;
                let persist = vec![Persist::Results {
                    tasks: vec![TaskOutcome::Fault {
                        id,
                        code: faults::NO_RESPONSE,
                        message: "CPE sent an empty POST instead of a response".into(),
                        detail: Value::Null,
                        retryable: true,
                    }],
                    params: vec![],
                    deletes: vec![],
                }];
                self.next_rpc(persist)
            }
            State::CpeRequests => self.next_rpc(vec![]),
        }
    }

    /// Hands the machine the device's runnable tasks (after [`Next::NeedTasks`]).
    pub fn supply_tasks(&mut self, tasks: Vec<TaskSpec>, persist: Vec<Persist>) -> Step {
        self.tasks_loaded = true;
        self.queue = tasks.into();
        match self.next_rpc(persist) {
            Next::Step(s) => s,
            // Cannot happen: tasks_loaded is now true.
            Next::NeedTasks { persist } => Step {
                persist,
                reply: Reply::End,
            },
        }
    }

    fn next_rpc(&mut self, mut persist: Vec<Persist>) -> Next {
        if !self.tasks_loaded {
            return Next::NeedTasks { persist };
        }
        while let Some(task) = self.queue.pop_front() {
            match build_rpc(&task, &self.root_object) {
                Ok(rpc) => {
                    self.next_request = self.next_request.wrapping_add(1);
                    let request_id = format!("acs-{}-{}", task.id, self.next_request);
                    let method = rpc.method_name().to_string();
                    let env = Envelope {
                        ns: self.ns.clone(),
                        header: Header {
                            id: Some(request_id.clone()),
                            ..Default::default()
                        },
                        body: Body::Rpc(rpc.clone()),
                    };
                    persist.push(Persist::Results {
                        tasks: vec![TaskOutcome::Started {
                            id: task.id,
                            sent_key: sent_key(&rpc),
                        }],
                        params: vec![],
                        deletes: vec![],
                    });
                    self.state = State::AwaitResponse {
                        task,
                        request_id,
                        method,
                        sent: rpc,
                    };
                    return Next::Step(Step {
                        persist: merge(persist),
                        reply: Reply::Envelope(Box::new(env)),
                    });
                }
                Err(reason) => persist.push(Persist::Results {
                    tasks: vec![TaskOutcome::Fault {
                        id: task.id,
                        code: faults::INVALID_ARGUMENTS,
                        message: format!("invalid task arguments: {reason}"),
                        detail: Value::Null,
                        retryable: false,
                    }],
                    params: vec![],
                    deletes: vec![],
                }),
            }
        }
        self.state = State::Done;
        Next::Step(Step {
            persist: merge(persist),
            reply: Reply::End,
        })
    }

    fn reply(&self, id: Option<String>, body: Body) -> Reply {
        Reply::Envelope(Box::new(Envelope {
            ns: self.ns.clone(),
            header: Header {
                id,
                ..Default::default()
            },
            body,
        }))
    }

    fn on_cpe_request(&mut self, rpc: Rpc, id: Option<String>) -> Next {
        let (persist, body) = match rpc {
            Rpc::Inform(_) => {
                self.state = State::Done;
                return Next::Step(Step {
                    persist: vec![],
                    reply: Reply::BadRequest("second Inform in one session".into()),
                });
            }
            Rpc::TransferComplete(tc) => {
                let fault = (tc.fault_struct.fault_code != 0).then(|| tc.fault_struct.clone());
                (
                    vec![Persist::TransferComplete {
                        command_key: tc.command_key.clone(),
                        fault,
                        start_time: tc.start_time.clone(),
                        complete_time: tc.complete_time.clone(),
                    }],
                    Body::Rpc(Rpc::TransferCompleteResponse(TransferCompleteResponse {})),
                )
            }
            Rpc::AutonomousTransferComplete(atc) => (
                vec![Persist::Report {
                    kind: "AutonomousTransferComplete".into(),
                    body: serde_json::to_value(&atc).unwrap_or(Value::Null),
                }],
                Body::Rpc(Rpc::AutonomousTransferCompleteResponse(
                    AutonomousTransferCompleteResponse {},
                )),
            ),
            Rpc::DUStateChangeComplete(du) => {
                let fault = du
                    .results
                    .iter()
                    .find(|r| r.fault.fault_code != 0)
                    .map(|r| r.fault.clone());
                (
                    vec![Persist::DuStateChangeComplete {
                        command_key: du.command_key.clone().unwrap_or_default(),
                        result: serde_json::to_value(&du).unwrap_or(Value::Null),
                        fault,
                    }],
                    Body::Rpc(Rpc::DUStateChangeCompleteResponse(
                        DUStateChangeCompleteResponse {},
                    )),
                )
            }
            Rpc::AutonomousDUStateChangeComplete(adu) => (
                vec![Persist::Report {
                    kind: "AutonomousDUStateChangeComplete".into(),
                    body: serde_json::to_value(&adu).unwrap_or(Value::Null),
                }],
                Body::Rpc(Rpc::AutonomousDUStateChangeCompleteResponse(
                    AutonomousDUStateChangeCompleteResponse {},
                )),
            ),
            Rpc::RequestDownload(rd) => (
                vec![Persist::Report {
                    kind: "RequestDownload".into(),
                    body: serde_json::to_value(&rd).unwrap_or(Value::Null),
                }],
                Body::Rpc(Rpc::RequestDownloadResponse(RequestDownloadResponse {})),
            ),
            Rpc::Kicked(k) => (
                vec![Persist::Report {
                    kind: "Kicked".into(),
                    body: serde_json::to_value(&k).unwrap_or(Value::Null),
                }],
                Body::Rpc(Rpc::KickedResponse(KickedResponse {
                    next_url: k.next.clone(),
                })),
            ),
            Rpc::GetRPCMethods(_) => (
                vec![],
                Body::Rpc(Rpc::GetRPCMethodsResponse(GetRPCMethodsResponse {
                    method_list: ACS_METHODS.iter().map(|s| s.to_string()).collect(),
                })),
            ),
            other => (
                vec![],
                Body::Fault(Fault::acs(
                    8000,
                    format!("Method not supported: {}", other.method_name()),
                )),
            ),
        };
        // A CPE request is answered, never followed by an ACS request (S4); the outstanding
        // ACS request, if any, stays outstanding.
        Next::Step(Step {
            persist,
            reply: self.reply(id, body),
        })
    }

    fn on_cpe_response(&mut self, body: Body, id: Option<String>) -> Next {
        let prev = std::mem::replace(&mut self.state, State::CpeRequests);
        let State::AwaitResponse {
            task,
            request_id,
            method,
            sent,
        } = prev
        else {
            // Nothing outstanding: a stray response. Ignore it and carry on.
            tracing::warn!(session = %self.id, device = %self.device_id, "response with no outstanding request ignored");
            self.state = prev;
            return self.next_rpc(vec![]);
        };
        if let Some(got) = &id {
            if *got != request_id {
                tracing::warn!(session = %self.id, device = %self.device_id, expected = %request_id, got = %got, "response with wrong cwmp:ID");
                let persist = vec![Persist::Results {
                    tasks: vec![TaskOutcome::Fault {
                        id: task.id,
                        code: faults::INVALID_RESPONSE,
                        message: format!(
                            "invalid response: cwmp:ID {got:?} does not match {request_id:?}"
                        ),
                        detail: Value::Null,
                        retryable: true,
                    }],
                    params: vec![],
                    deletes: vec![],
                }];
                return self.next_rpc(persist);
            }
        }
        let persist = match body {
            Body::Fault(f) => {
                let code = f.detail.fault_code;
                vec![Persist::Results {
                    tasks: vec![TaskOutcome::Fault {
                        id: task.id,
                        code,
                        message: f.detail.fault_string.clone(),
                        detail: serde_json::to_value(&f.detail).unwrap_or(Value::Null),
                        retryable: matches!(code, 9001 | 9002 | 9004),
                    }],
                    params: vec![],
                    deletes: vec![],
                }]
            }
            Body::Rpc(rpc) => {
                let expected = format!("{method}Response");
                if rpc.method_name() != expected {
                    vec![Persist::Results {
                        tasks: vec![TaskOutcome::Fault {
                            id: task.id,
                            code: faults::INVALID_RESPONSE,
                            message: format!(
                                "invalid response: expected {expected}, got {}",
                                rpc.method_name()
                            ),
                            detail: Value::Null,
                            retryable: true,
                        }],
                        params: vec![],
                        deletes: vec![],
                    }]
                } else {
                    apply_response(&task, &sent, rpc)
                }
            }
        };
        self.next_rpc(persist)
    }
}

/// Folds consecutive `Results` into one write.
fn merge(persist: Vec<Persist>) -> Vec<Persist> {
    let mut out: Vec<Persist> = Vec::with_capacity(persist.len());
    for p in persist {
        if let (
            Some(Persist::Results {
                tasks,
                params,
                deletes,
            }),
            Persist::Results {
                tasks: t2,
                params: p2,
                deletes: d2,
            },
        ) = (out.last_mut(), &p)
        {
            tasks.extend(t2.iter().cloned());
            params.extend(p2.iter().cloned());
            deletes.extend(d2.iter().cloned());
            continue;
        }
        out.push(p);
    }
    out
}

/// Hidden parameters read back as "" (checklist §7.3): never store that over a known secret.
fn looks_hidden(path: &str) -> bool {
    let last = path.rsplit('.').next().unwrap_or(path);
    last.ends_with("Password")
        || last.ends_with("Passphrase")
        || last == "PreSharedKey"
        || last == "KeyPassphrase"
        || last == "WEPKey"
}

fn done(id: i64, result: Value) -> TaskOutcome {
    TaskOutcome::Done { id, result }
}

/// True if `name` lies under one of the names a GetParameterValues/GetParameterNames asked
/// for: equal to a full name, below a partial path (ending with `.`), or anything for an
/// empty name (the whole tree).
fn was_asked(asked: &[String], name: &str) -> bool {
    asked
        .iter()
        .any(|a| a.is_empty() || a == name || (a.ends_with('.') && name.starts_with(a.as_str())))
}

/// The CommandKey or ParameterKey an RPC carries (what the CPE will echo back).
fn sent_key(rpc: &Rpc) -> Option<String> {
    let k = match rpc {
        Rpc::SetParameterValues(a) => &a.parameter_key,
        Rpc::AddObject(a) => &a.parameter_key,
        Rpc::DeleteObject(a) => &a.parameter_key,
        Rpc::Reboot(a) => &a.command_key,
        Rpc::Download(a) => &a.command_key,
        Rpc::Upload(a) => &a.command_key,
        Rpc::ScheduleInform(a) => &a.command_key,
        Rpc::ScheduleDownload(a) => &a.command_key,
        Rpc::CancelTransfer(a) => &a.command_key,
        Rpc::ChangeDUState(a) => return a.command_key.clone().filter(|k| !k.is_empty()),
        _ => return None,
    };
    (!k.is_empty()).then(|| k.clone())
}

/// How long an RPC itself allows before its completion begins, in seconds.
fn declared_delay(sent: &Rpc) -> u64 {
    match sent {
        Rpc::Download(d) => u64::from(d.delay_seconds),
        Rpc::Upload(u) => u64::from(u.delay_seconds),
        Rpc::ScheduleInform(s) => u64::from(s.delay_seconds),
        Rpc::ScheduleDownload(s) => s
            .time_window_list
            .iter()
            .map(|w| u64::from(w.window_end))
            .max()
            .unwrap_or(0),
        _ => 0,
    }
}

/// A response the CPE could not truthfully have sent: recorded as a fault, nothing stored.
fn impossible(task: &TaskSpec, what: String) -> TaskOutcome {
    TaskOutcome::Fault {
        id: task.id,
        code: faults::INVALID_RESPONSE,
        message: format!("invalid response: {what}"),
        detail: Value::Null,
        retryable: false,
    }
}

/// Turns a successful CPE response into task and parameter-store updates.
fn apply_response(task: &TaskSpec, sent: &Rpc, rpc: Rpc) -> Vec<Persist> {
    let result = serde_json::to_value(&rpc).unwrap_or(Value::Null);
    let result = strip_variant(result);
    let mut params = Vec::new();
    let mut deletes = Vec::new();
    let mut extra = Vec::new();
    let status_ok = |s: i32| s == 0 || s == 1;
    let waiting = |result: Value| TaskOutcome::Waiting {
        id: task.id,
        result,
        declared_delay: declared_delay(sent),
    };
    let outcome = match (&rpc, sent) {
        (Rpc::GetParameterValuesResponse(r), sent) => {
            let asked: &[String] = match sent {
                Rpc::GetParameterValues(g) => &g.parameter_names,
                _ => &[],
            };
            let mut unasked = 0usize;
            for p in &r.parameter_list {
                if !was_asked(asked, &p.name) {
                    unasked = unasked.saturating_add(1);
                    continue;
                }
                if p.value.is_empty() && looks_hidden(&p.name) {
                    continue;
                }
                params.push(ParamChange {
                    path: p.name.clone(),
                    value: Some(p.value.clone()),
                    xsd_type: Some(p.xsi_type.clone().unwrap_or_else(|| "xsd:string".into())),
                    writable: None,
                    is_object: false,
                });
            }
            if unasked > 0 {
                tracing::warn!(task = task.id, unasked, "GetParameterValuesResponse carried values that were not asked for; not stored");
            }
            done(task.id, result)
        }
        (Rpc::GetParameterNamesResponse(r), sent) => {
            let asked: Vec<String> = match sent {
                Rpc::GetParameterNames(g) => vec![g.parameter_path.clone()],
                _ => Vec::new(),
            };
            for p in &r.parameter_list {
                if !was_asked(&asked, &p.name) {
                    continue;
                }
                params.push(ParamChange {
                    path: p.name.clone(),
                    value: None,
                    xsd_type: None,
                    writable: Some(p.writable),
                    is_object: p.name.ends_with('.'),
                });
            }
            done(task.id, result)
        }
        (Rpc::SetParameterValuesResponse(r), _) if !status_ok(r.status) => {
            impossible(task, format!("SetParameterValuesResponse Status {}", r.status))
        }
        (Rpc::SetParameterValuesResponse(_), Rpc::SetParameterValues(spv)) => {
            for p in &spv.parameter_list {
                params.push(ParamChange {
                    path: p.name.clone(),
                    value: Some(p.value.clone()),
                    xsd_type: Some(p.xsi_type.clone().unwrap_or_else(|| "xsd:string".into())),
                    writable: Some(true),
                    is_object: false,
                });
            }
            params.push(ParamChange {
                path: format!(
                    "{}ManagementServer.ParameterKey",
                    root_of(&spv.parameter_list)
                ),
                value: Some(spv.parameter_key.clone()),
                xsd_type: Some("xsd:string".into()),
                writable: None,
                is_object: false,
            });
            done(task.id, result)
        }
        (Rpc::AddObjectResponse(r), _) if !status_ok(r.status) || r.instance_number == 0 => {
            impossible(
                task,
                format!(
                    "AddObjectResponse InstanceNumber {} Status {} (instance numbers start at 1; Status is 0 or 1)",
                    r.instance_number, r.status
                ),
            )
        }
        (Rpc::AddObjectResponse(r), Rpc::AddObject(a)) => {
            params.push(ParamChange {
                path: format!("{}{}.", a.object_name, r.instance_number),
                value: None,
                xsd_type: None,
                writable: Some(true),
                is_object: true,
            });
            done(task.id, result)
        }
        (Rpc::DeleteObjectResponse(r), _) if !status_ok(r.status) => {
            impossible(task, format!("DeleteObjectResponse Status {}", r.status))
        }
        (Rpc::DeleteObjectResponse(_), Rpc::DeleteObject(d)) => {
            deletes.push(d.object_name.clone());
            done(task.id, result)
        }
        (Rpc::DownloadResponse(r), _) if !status_ok(r.status) => {
            impossible(task, format!("DownloadResponse Status {}", r.status))
        }
        (Rpc::UploadResponse(r), _) if !status_ok(r.status) => {
            impossible(task, format!("UploadResponse Status {}", r.status))
        }
        (Rpc::DownloadResponse(r), _) if r.status == 1 => waiting(result),
        (Rpc::UploadResponse(r), _) if r.status == 1 => waiting(result),
        (Rpc::CancelTransferResponse(_), Rpc::CancelTransfer(c)) => {
            extra.push(Persist::TransferCancelled {
                command_key: c.command_key.clone(),
            });
            done(task.id, result)
        }
        (Rpc::ScheduleDownloadResponse(_), _)
        | (Rpc::ChangeDUStateResponse(_), _)
        | (Rpc::RebootResponse(_), _)
        | (Rpc::ScheduleInformResponse(_), _) => waiting(result),
        _ => done(task.id, result),
    };
    let mut out = vec![Persist::Results {
        tasks: vec![outcome],
        params,
        deletes,
    }];
    out.extend(extra);
    out
}

fn root_of(list: &[ParameterValueStruct]) -> &'static str {
    match list.first() {
        Some(p) if p.name.starts_with("InternetGatewayDevice.") => "InternetGatewayDevice.",
        _ => "Device.",
    }
}

/// `{"GetParameterValuesResponse": {...}}` → `{...}`: the task kind already names the method.
fn strip_variant(v: Value) -> Value {
    match v {
        Value::Object(mut m) if m.len() == 1 => {
            let k = m.keys().next().cloned().unwrap_or_default();
            m.remove(&k).unwrap_or(Value::Null)
        }
        other => other,
    }
}

/// Builds the RPC a task asks for. Arguments are the method's fields as JSON (snake_case of the
/// XSD names); CommandKey and ParameterKey default to the task's command key.
///
/// The RPC is also checked the way a CPE reads it: serialized and parsed with our own codec,
/// whose rules for required arguments (a ScheduleDownload needs a FileType and URL, …) it
/// must meet. A task that could only produce an invalid request is refused here, at queue
/// time, instead of being sent.
pub fn build_rpc(task: &TaskSpec, root: &str) -> Result<Rpc, String> {
    let rpc = build_rpc_unchecked(task, root)?;
    let env = Envelope {
        ns: CWMP_NS_1_0.to_string(),
        header: Header {
            id: Some("check".into()),
            ..Default::default()
        },
        body: Body::Rpc(rpc),
    };
    let bytes = serialize(&env, &OutputStyle::default());
    let limits = Limits {
        max_body_bytes: usize::MAX,
        max_elements: usize::MAX,
        ..Limits::default()
    };
    match parse(&bytes, &limits) {
        Ok(_) => match env.body {
            Body::Rpc(rpc) => Ok(rpc),
            Body::Fault(_) => Err("not an RPC".into()),
        },
        Err(CodecError::InvalidArguments { reason, .. }) => Err(reason),
        Err(e) => Err(format!(
            "the request would not be a valid CWMP message: {e}"
        )),
    }
}

fn build_rpc_unchecked(task: &TaskSpec, root: &str) -> Result<Rpc, String> {
    fn args<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, String> {
        let v = if v.is_null() {
            Value::Object(Default::default())
        } else {
            v.clone()
        };
        serde_json::from_value(v).map_err(|e| e.to_string())
    }
    let key = task.command_key.clone().unwrap_or_default();
    let rpc = match task.kind.as_str() {
        "GetRPCMethods" => Rpc::GetRPCMethods(GetRPCMethods {}),
        "SetParameterValues" => {
            let mut a: SetParameterValues = args(&task.args)?;
            if a.parameter_list.is_empty() {
                return Err("parameter_list is empty".into());
            }
            if a.parameter_key.is_empty() {
                a.parameter_key = key;
            }
            Rpc::SetParameterValues(a)
        }
        "GetParameterValues" => {
            let a: GetParameterValues = args(&task.args)?;
            if a.parameter_names.is_empty() {
                return Err("parameter_names is empty".into());
            }
            Rpc::GetParameterValues(a)
        }
        "GetParameterNames" => {
            let mut a: GetParameterNames = args(&task.args)?;
            if a.parameter_path.is_empty() {
                // Some stacks choke on an empty path (checklist P13): use the root.
                a.parameter_path = root.to_string();
            }
            Rpc::GetParameterNames(a)
        }
        "SetParameterAttributes" => Rpc::SetParameterAttributes(args(&task.args)?),
        "GetParameterAttributes" => Rpc::GetParameterAttributes(args(&task.args)?),
        "AddObject" => {
            let mut a: AddObject = args(&task.args)?;
            if !a.object_name.ends_with('.') {
                return Err("object_name must end with '.'".into());
            }
            if a.parameter_key.is_empty() {
                a.parameter_key = key;
            }
            Rpc::AddObject(a)
        }
        "DeleteObject" => {
            let mut a: DeleteObject = args(&task.args)?;
            if !a.object_name.ends_with('.') {
                return Err("object_name must end with '.'".into());
            }
            if a.parameter_key.is_empty() {
                a.parameter_key = key;
            }
            Rpc::DeleteObject(a)
        }
        "Reboot" => {
            let mut a: Reboot = args(&task.args)?;
            if a.command_key.is_empty() {
                a.command_key = key;
            }
            Rpc::Reboot(a)
        }
        "Download" => {
            let mut a: Download = args(&task.args)?;
            if a.command_key.is_empty() {
                a.command_key = key;
            }
            if a.url.is_empty() {
                return Err("url is required".into());
            }
            Rpc::Download(a)
        }
        "Upload" => {
            let mut a: Upload = args(&task.args)?;
            if a.command_key.is_empty() {
                a.command_key = key;
            }
            // Our upload receiver's URL names the task and carries its single-use token.
            a.url = a
                .url
                .replace("{upload_token}", task.upload_token.as_deref().unwrap_or(""))
                .replace("{command_key}", &a.command_key)
                .replace("{task_id}", &task.id.to_string());
            if a.url.is_empty() {
                return Err("url is required".into());
            }
            Rpc::Upload(a)
        }
        "FactoryReset" => Rpc::FactoryReset(FactoryReset {}),
        "GetQueuedTransfers" => Rpc::GetQueuedTransfers(GetQueuedTransfers {}),
        "GetAllQueuedTransfers" => Rpc::GetAllQueuedTransfers(GetAllQueuedTransfers {}),
        "ScheduleInform" => {
            let mut a: ScheduleInform = args(&task.args)?;
            if a.delay_seconds == 0 {
                return Err("delay_seconds must be > 0".into());
            }
            if a.command_key.is_empty() {
                a.command_key = key;
            }
            Rpc::ScheduleInform(a)
        }
        "SetVouchers" => Rpc::SetVouchers(args(&task.args)?),
        "GetOptions" => Rpc::GetOptions(args(&task.args)?),
        "ScheduleDownload" => {
            let mut a: ScheduleDownload = args(&task.args)?;
            if a.command_key.is_empty() {
                a.command_key = key;
            }
            Rpc::ScheduleDownload(a)
        }
        "CancelTransfer" => Rpc::CancelTransfer(args(&task.args)?),
        "ChangeDUState" => {
            let mut a: ChangeDUState = args(&task.args)?;
            if a.operations.is_empty() {
                return Err("operations is empty".into());
            }
            if a.command_key.as_deref().unwrap_or("").is_empty() {
                a.command_key = Some(key);
            }
            Rpc::ChangeDUState(a)
        }
        other => return Err(format!("unknown task kind {other:?}")),
    };
    Ok(rpc)
}

/// Extracts what the Inform says about the device (checklist §3.1, §3.4).
pub fn inform_info(inform: &Inform, ns: &str, version: &str) -> InformInfo {
    let find = |suffix: &str| {
        inform
            .parameter_list
            .iter()
            .rev()
            .find(|p| {
                p.name
                    .strip_prefix("Device.")
                    .or_else(|| p.name.strip_prefix("InternetGatewayDevice."))
                    == Some(suffix)
            })
            .map(|p| p.value.clone())
    };
    let root_object = if inform
        .parameter_list
        .iter()
        .any(|p| p.name.starts_with("InternetGatewayDevice."))
    {
        "InternetGatewayDevice."
    } else {
        "Device."
    };
    let parameters = inform
        .parameter_list
        .iter()
        .filter(|p| !(p.value.is_empty() && looks_hidden(&p.name)))
        .map(|p| ParamChange {
            path: p.name.clone(),
            value: Some(p.value.clone()),
            xsd_type: Some(p.xsi_type.clone().unwrap_or_else(|| "xsd:string".into())),
            writable: None,
            is_object: false,
        })
        .collect();
    let events: Vec<EventStruct> = inform
        .event
        .iter()
        .map(|e| EventStruct {
            event_code: normalize_event(&e.event_code),
            command_key: e.command_key.clone(),
        })
        .collect();
    InformInfo {
        device_id: inform.device_id.canonical_id(),
        device: inform.device_id.clone(),
        bootstrap: events.iter().any(|e| e.event_code == "0 BOOTSTRAP"),
        events,
        parameters,
        root_object: root_object.to_string(),
        software_version: find("DeviceInfo.SoftwareVersion"),
        hardware_version: find("DeviceInfo.HardwareVersion"),
        connection_request_url: find("ManagementServer.ConnectionRequestURL"),
        udp_connection_request_address: find("ManagementServer.UDPConnectionRequestAddress"),
        parameter_key: find("ManagementServer.ParameterKey"),
        current_time: inform.current_time.clone(),
        retry_count: inform.retry_count,
        ns: ns.to_string(),
        cwmp_version: version.to_string(),
    }
}

/// Normalises the spelling variants seen in the wild (`1 Boot`, `3 SCHEDULE`, checklist P21).
pub fn normalize_event(code: &str) -> String {
    let code = code.trim();
    const KNOWN: [&str; 15] = [
        "0 BOOTSTRAP",
        "1 BOOT",
        "2 PERIODIC",
        "3 SCHEDULED",
        "4 VALUE CHANGE",
        "5 KICKED",
        "6 CONNECTION REQUEST",
        "7 TRANSFER COMPLETE",
        "8 DIAGNOSTICS COMPLETE",
        "9 REQUEST DOWNLOAD",
        "10 AUTONOMOUS TRANSFER COMPLETE",
        "11 DU STATE CHANGE COMPLETE",
        "12 AUTONOMOUS DU STATE CHANGE COMPLETE",
        "13 WAKEUP",
        "14 HEARTBEAT",
    ];
    if code.starts_with("M ") || code.starts_with("X ") {
        return code.to_string();
    }
    for k in KNOWN {
        if k.eq_ignore_ascii_case(code) {
            return k.to_string();
        }
    }
    if code.eq_ignore_ascii_case("3 SCHEDULE") {
        return "3 SCHEDULED".to_string();
    }
    code.to_string()
}
