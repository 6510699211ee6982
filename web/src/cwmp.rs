//! The CWMP endpoint: HTTP glue around the sans-IO session machine (`acs::session`).
//!
//! A session is found by its TCP connection first, then by cookie (checklist §1.10). Everything
//! a step must persist is written (through the store's group-commit writer) before the HTTP
//! response that acknowledges it leaves.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};
use dashmap::DashMap;
use tracing::{info_span, Instrument};

use acs::codec::{self, Body, Envelope, Rpc};
use acs::session::{Next, Reply, Session, StartError, Step, TaskSpec};

use crate::app::{AppState, ConnInfo};

pub const COOKIE: &str = "keelson_sid";

/// Live sessions of this node.
#[derive(Default)]
pub struct Sessions {
    by_id: DashMap<String, Arc<tokio::sync::Mutex<Live>>>,
    by_conn: DashMap<u64, String>,
    by_device: DashMap<String, String>,
    /// Devices whose queue changed while they were in session.
    dirty: DashMap<String, ()>,
    /// Connections already authenticated, with the device they authenticated as.
    authed: DashMap<u64, (String, Instant)>,
    active: AtomicUsize,
}

struct Live {
    session: Session,
    /// Connections the session has used that are still open.
    conns: HashSet<u64>,
    /// Since when the session has had no open connection (`None`: attached). A detached
    /// session is not counted against `max_sessions`, expires after the base timeout, and
    /// gives way to a new Inform from its device.
    detached_since: Option<Instant>,
    /// Runnable tasks known to be pending at Inform time (None: unknown, ask the store).
    pending_hint: Option<i64>,
    /// The method of the last request we sent (what a fault answers, for the metrics).
    last_sent: Option<String>,
}

impl Live {
    fn abandoned(&self, now: Instant, base: std::time::Duration) -> bool {
        self.session.expired(now)
            || self
                .detached_since
                .is_some_and(|t| now.saturating_duration_since(t) > base)
    }
}

impl Sessions {
    /// Sessions with an open connection (those `max_sessions` counts).
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Sessions held, with or without an open connection.
    pub fn held(&self) -> usize {
        self.by_id.len()
    }

    /// A connection ended: forget it, and detach its session if it has no other.
    pub fn connection_closed(&self, conn_id: u64) {
        self.authed.remove(&conn_id);
        let Some((_, sid)) = self.by_conn.remove(&conn_id) else {
            return;
        };
        let Some(entry) = self.by_id.get(&sid).map(|e| e.clone()) else {
            return;
        };
        // A handler holding the lock is serving another open connection of this session.
        if let Ok(mut live) = entry.try_lock() {
            live.conns.remove(&conn_id);
            if live.conns.is_empty() && live.detached_since.is_none() {
                live.detached_since = Some(Instant::now());
                self.active.fetch_sub(1, Ordering::Relaxed);
            }
        };
    }

    /// The session came back on a new connection.
    fn attach(&self, live: &mut Live, conn_id: u64, sid: &str) {
        live.conns.insert(conn_id);
        self.by_conn.insert(conn_id, sid.to_string());
        if live.detached_since.take().is_some() {
            self.active.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// True if the device is in a session on this node right now.
    pub fn in_session(&self, device_id: &str) -> bool {
        self.by_device.contains_key(device_id)
    }

    /// A task was queued for the device: a running session reloads its queue.
    pub fn mark_dirty(&self, device_id: &str) {
        if self.by_device.contains_key(device_id) {
            self.dirty.insert(device_id.to_string(), ());
        }
    }

    fn remove(&self, sid: &str, live: &Live) {
        if self.by_id.remove(sid).is_some() && live.detached_since.is_none() {
            self.active.fetch_sub(1, Ordering::Relaxed);
        }
        for c in &live.conns {
            self.by_conn.remove_if(c, |_, v| v == sid);
        }
        self.by_device
            .remove_if(&live.session.device_id, |_, v| v == sid);
        self.dirty.remove(&live.session.device_id);
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(usize::MAX))
        .route(
            "/healthz",
            web::get().to(|| async { HttpResponse::Ok().body("ok") }),
        )
        .configure(crate::files::cpe_routes)
        .configure(crate::bulk::routes)
        .default_service(web::to(endpoint));
}

fn xml(status: StatusCode) -> HttpResponseBuilder {
    let mut b = HttpResponse::build(status);
    b.insert_header((
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=\"utf-8\""),
    ));
    b
}

fn close(mut b: HttpResponseBuilder, body: impl Into<String>) -> HttpResponse {
    b.force_close();
    b.content_type("text/plain; charset=utf-8")
        .body(body.into())
}

/// 503 + Retry-After + close: the CPE retries later with back-off (checklist H13; never 8005).
fn busy(state: &AppState) -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .insert_header((
            header::RETRY_AFTER,
            state.cfg.cwmp.retry_after_secs.to_string(),
        ))
        .force_close()
        .finish()
}

fn cookie_sid(req: &HttpRequest) -> Option<String> {
    // Some CPEs join cookies with ',' instead of ';' (checklist §1.10).
    for v in req.headers().get_all(header::COOKIE) {
        let Ok(s) = v.to_str() else { continue };
        for part in s.split([';', ',']) {
            if let Some((k, val)) = part.trim().split_once('=') {
                if k.trim() == COOKIE {
                    return Some(val.trim().trim_matches('"').to_string());
                }
            }
        }
    }
    None
}

/// The connection facts `on_connect` attached to this request.
pub fn conn_info(req: &HttpRequest) -> ConnInfo {
    req.conn_data::<ConnInfo>().cloned().unwrap_or(ConnInfo {
        id: 0,
        tls: false,
        client_cert: None,
    })
}

/// An answer sent before the request body was read: the connection closes after it, so the
/// unread body is never taken for the next request.
pub fn without_body(mut resp: HttpResponse) -> HttpResponse {
    resp.head_mut()
        .set_connection_type(actix_web::http::ConnectionType::Close);
    resp
}

/// Every request to the CWMP listener that is not a file route.
async fn endpoint(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    if req.method() != actix_web::http::Method::POST {
        return HttpResponse::MethodNotAllowed()
            .insert_header((header::ALLOW, "POST"))
            .finish();
    }
    if req.conn_data::<crate::conns::Refused>().is_some() {
        return busy(&state);
    }
    if let Err(enc) = crate::body::encoding(req.headers()) {
        tracing::warn!(encoding = %enc, "unsupported Content-Encoding");
        return close(
            HttpResponse::build(StatusCode::UNSUPPORTED_MEDIA_TYPE),
            format!("unsupported Content-Encoding {enc}"),
        );
    }
    let conn = conn_info(&req);
    let body = match crate::body::read(
        &req,
        payload,
        state.limits.max_body_bytes,
        std::time::Duration::from_secs(state.cfg.cwmp.body_timeout_secs.max(1)),
    )
    .await
    {
        Ok(b) => b,
        Err(e) => {
            let resp = e.response();
            tracing::warn!(remote = ?req.peer_addr(), status = %resp.status(), error = ?e, "CWMP body rejected");
            abort_conn_session(&state, &req, &conn, "bad body").await;
            return resp;
        }
    };
    let envelope = if codec::is_empty_body(&body) {
        None
    } else {
        match codec::parse(&body, &state.limits) {
            Ok(env) => Some(env),
            Err(e) => {
                let status = match e {
                    codec::CodecError::TooLarge { .. }
                    | codec::CodecError::LimitExceeded { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                    _ => StatusCode::BAD_REQUEST,
                };
                let sid = find_session(&state, &req, &conn);
                let device = sid.as_ref().and_then(|s| session_device(&state, s));
                tracing::warn!(remote = ?req.peer_addr(), device = ?device, session = ?sid, error = %e, "malformed CWMP message");
                abort_conn_session(&state, &req, &conn, &e.to_string()).await;
                return close(HttpResponse::build(status), e.to_string());
            }
        }
    };
    match find_session(&state, &req, &conn) {
        Some(sid) => match envelope {
            // A new Inform in an open session: the CPE started over (it rebooted, or gave
            // up on the session). The old session ends, its RPC in flight back to the
            // queue, and the Inform starts a new one.
            Some(env) if matches!(env.body, Body::Rpc(Rpc::Inform(_))) => {
                tracing::info!(session = %sid, remote = ?req.peer_addr(), "new Inform in an open session: ending it and starting over");
                end_session_with(
                    &state,
                    &sid,
                    acs::faults::SUPERSEDED,
                    "the CPE sent a new Inform",
                )
                .await;
                new_session(&state, &req, &conn, env).await
            }
            envelope => continue_session(&state, &req, &conn, sid, envelope).await,
        },
        None => match envelope {
            Some(env) => new_session(&state, &req, &conn, env).await,
            None => {
                tracing::warn!(remote = ?req.peer_addr(), "empty POST outside a session");
                close(HttpResponse::BadRequest(), "Invalid session")
            }
        },
    }
}

/// The device of a live session (for log lines about messages that could not be parsed).
fn session_device(state: &AppState, sid: &str) -> Option<String> {
    let entry = state.sessions.by_id.get(sid)?.clone();
    let live = entry.try_lock().ok()?;
    Some(live.session.device_id.clone())
}

fn find_session(state: &AppState, req: &HttpRequest, conn: &ConnInfo) -> Option<String> {
    if let Some(sid) = state.sessions.by_conn.get(&conn.id) {
        return Some(sid.clone());
    }
    cookie_sid(req).filter(|sid| state.sessions.by_id.contains_key(sid))
}

async fn abort_conn_session(state: &AppState, req: &HttpRequest, conn: &ConnInfo, reason: &str) {
    if let Some(sid) = find_session(state, req, conn) {
        end_session(state, &sid, reason).await;
    }
}

/// Aborts a session: its outstanding task is recorded as unknown and goes back for a retry.
async fn end_session(state: &AppState, sid: &str, reason: &str) {
    end_session_with(state, sid, acs::faults::SESSION_ABORTED, reason).await
}

/// [`end_session`] recording `code` on the outstanding task.
async fn end_session_with(state: &AppState, sid: &str, code: u32, reason: &str) {
    let Some(entry) = state.sessions.by_id.get(sid).map(|e| e.clone()) else {
        return;
    };
    let mut live = entry.lock().await;
    let persist = live.session.abort_with(code, reason);
    crate::metrics::session_ended(if reason.contains("timeout") {
        "timeout"
    } else {
        "aborted"
    });
    let device = live.session.device_id.clone();
    if let Err(e) = crate::persist::persist(state, sid, &device, persist).await {
        tracing::error!(session = %sid, device = %device, error = %e, "persisting aborted session");
    }
    state.sessions.remove(sid, &live);
}

pub async fn sweep_expired(state: &AppState) {
    let now = Instant::now();
    let base = std::time::Duration::from_secs(state.cfg.cwmp.session_timeout_secs);
    let mut expired = Vec::new();
    for e in state.sessions.by_id.iter() {
        if let Ok(live) = e.value().try_lock() {
            if live.abandoned(now, base) {
                expired.push(e.key().clone());
            }
        }
    }
    for sid in expired {
        tracing::info!(session = %sid, "session timed out");
        end_session(state, &sid, "session timeout").await;
    }
    state
        .sessions
        .authed
        .retain(|_, (_, t)| now.saturating_duration_since(*t).as_secs() < 600);
}

/// Checks the CPE's credentials (checklist §1.9). `None` = authenticated.
pub(crate) async fn authenticate(
    state: &AppState,
    req: &HttpRequest,
    conn: &ConnInfo,
    device_id: &str,
) -> Option<HttpResponse> {
    authenticate_as(state, req, conn, device_id, None).await
}

/// [`authenticate`], also accepting `alternative` (username, password): the credentials an
/// Upload RPC gave the CPE for our file server.
pub(crate) async fn authenticate_as(
    state: &AppState,
    req: &HttpRequest,
    conn: &ConnInfo,
    device_id: &str,
    alternative: Option<(&str, &str)>,
) -> Option<HttpResponse> {
    let auth = state.auth.as_ref()?;
    // A verified client certificate authenticates the device it names (checklist §1.9).
    if let Some(names) = &conn.client_cert {
        if cert_names_device(names, device_id) {
            return None;
        }
        tracing::warn!(device = %device_id, names = ?names, "client certificate does not name this device; falling back to HTTP authentication");
    }
    if let Some(a) = state.sessions.authed.get(&conn.id) {
        if a.0 == device_id {
            return None;
        }
    }
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let challenge = |stale: bool| {
        let mut b = HttpResponse::Unauthorized();
        for c in auth.challenge(stale) {
            b.append_header((header::WWW_AUTHENTICATE, c));
        }
        b.insert_header((header::CONTENT_LENGTH, 0));
        b.finish()
    };
    if header.is_empty() {
        return Some(challenge(false));
    }
    let creds = match state.store.device_auth(device_id).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(device = %device_id, error = %e, "credential lookup failed");
            return Some(busy(state));
        }
    };
    let (user, secret) = device_secret(state, device_id, creds);
    let uri = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let request = acs::auth::Request {
        authorization: header,
        method: req.method().as_str(),
        uri,
        tls: conn.tls,
        identity: device_id,
        now: std::time::SystemTime::now(),
    };
    let result = auth.verify_request(&request, |name| {
        if let Some((u, p)) = alternative.filter(|(u, _)| ids::username_matches(name, u)) {
            debug_assert!(!u.is_empty());
            return Some(acs::auth::Secret::Password(p.to_string()));
        }
        (user.is_empty() || ids::username_matches(name, &user)).then_some(secret)
    });
    match result {
        acs::auth::AuthResult::Ok { .. } => {
            state
                .sessions
                .authed
                .insert(conn.id, (device_id.to_string(), Instant::now()));
            None
        }
        acs::auth::AuthResult::Stale => Some(challenge(true)),
        other => {
            metrics::counter!("keelson_cwmp_auth_failures_total").increment(1);
            tracing::warn!(device = %device_id, remote = ?req.peer_addr(), result = ?other, "CPE authentication failed");
            Some(challenge(false))
        }
    }
}

/// The username and secret a device authenticates with: its own sealed (or, from an older
/// version, cleartext) password, else the global one.
fn device_secret(
    state: &AppState,
    device_id: &str,
    creds: Option<store::DeviceAuth>,
) -> (String, acs::auth::Secret) {
    let global = || {
        (
            state.cfg.cwmp.username.clone(),
            acs::auth::Secret::Password(state.cfg.cwmp.password.clone()),
        )
    };
    let Some(c) = creds else {
        return global();
    };
    let user = c.cpe_username.unwrap_or_default();
    if let Some(sealed) = c.cpe_secret {
        if sealed.realm != state.cfg.cwmp.realm {
            tracing::warn!(device = %device_id, realm = %sealed.realm, "the device's password was set for another realm; set it again");
        }
        return (
            user,
            acs::auth::Secret::Ha1 {
                md5: Some(sealed.md5),
                sha256: Some(sealed.sha256),
            },
        );
    }
    match c.cpe_password {
        Some(p) => (user, acs::auth::Secret::Password(p)),
        None => global(),
    }
}

/// Seals a CPE password for storage: its Digest HA1 values for `realm`.
pub fn seal_password(realm: &str, username: &str, password: &str) -> store::CpeSecret {
    use acs::auth::{ha1, DigestAlgorithm};
    store::CpeSecret {
        md5: ha1(DigestAlgorithm::Md5, username, realm, password),
        sha256: ha1(DigestAlgorithm::Sha256, username, realm, password),
        realm: realm.to_string(),
    }
}

/// True if a certificate name identifies the device: its canonical id, `OUI-ProductClass-Serial`
/// or `OUI-Serial` unescaped, or the bare SerialNumber (case-insensitive).
fn cert_names_device(names: &[String], device_id: &str) -> bool {
    let mut accepted = vec![device_id.to_string()];
    if let Some(p) = ids::DeviceIdParts::parse(device_id) {
        if p.product_class.is_empty() {
            accepted.push(format!("{}-{}", p.oui, p.serial_number));
        } else {
            accepted.push(format!("{}-{}-{}", p.oui, p.product_class, p.serial_number));
            accepted.push(format!("{}-{}", p.oui, p.serial_number));
        }
        accepted.push(p.serial_number);
    }
    names
        .iter()
        .any(|n| accepted.iter().any(|a| a.eq_ignore_ascii_case(n)))
}

async fn new_session(
    state: &AppState,
    req: &HttpRequest,
    conn: &ConnInfo,
    env: Envelope,
) -> HttpResponse {
    let device_id = match &env.body {
        Body::Rpc(Rpc::Inform(inform)) => inform.device_id.canonical_id(),
        Body::Rpc(other) => {
            tracing::warn!(remote = ?req.peer_addr(), method = other.method_name(), "message outside a session");
            return close(HttpResponse::BadRequest(), "Invalid session");
        }
        Body::Fault(_) => {
            tracing::warn!(remote = ?req.peer_addr(), "SOAP Fault outside a session");
            return close(HttpResponse::BadRequest(), "Invalid session");
        }
    };
    if let Some(resp) = authenticate(state, req, conn, &device_id).await {
        return resp;
    }
    // One session per device (S11): a stale one is aborted, a live one wins.
    if let Some(old) = state.sessions.by_device.get(&device_id).map(|s| s.clone()) {
        let base = std::time::Duration::from_secs(state.cfg.cwmp.session_timeout_secs);
        let stale = match state.sessions.by_id.get(&old).map(|e| e.clone()) {
            // Expired, on this very connection, or with no connection left: the device
            // has moved on, and its new Inform wins.
            Some(entry) => match entry.try_lock() {
                Ok(live) => {
                    live.abandoned(Instant::now(), base)
                        || live.detached_since.is_some()
                        || live.conns.contains(&conn.id)
                }
                Err(_) => false,
            },
            None => true,
        };
        if stale {
            end_session(state, &old, "superseded by a new Inform").await;
        } else {
            tracing::warn!(device = %device_id, "Inform while the device is already in session");
            return busy(state);
        }
    }
    if state.sessions.active() >= state.cfg.cwmp.max_sessions {
        tracing::warn!(device = %device_id, active = state.sessions.active(), "overloaded: refusing session");
        return busy(state);
    }
    let sid = hex::encode(rand::random::<[u8; 16]>());
    let span = info_span!("cwmp", device = %device_id, session = %sid);
    async move {
        let timeouts = acs::session::SessionConfig {
            base: std::time::Duration::from_secs(state.cfg.cwmp.session_timeout_secs),
            max: std::time::Duration::from_secs(state.cfg.cwmp.max_session_timeout_secs),
            inform: acs::session::InformBounds {
                max_id_field_bytes: state.cfg.cwmp.max_device_id_field_bytes,
                max_events: state.cfg.cwmp.max_inform_events,
                max_parameters: state.cfg.cwmp.max_inform_parameters,
            },
        };
        let (session, step) = match Session::start(sid.clone(), env, Instant::now(), timeouts) {
            Ok(x) => x,
            Err(StartError::Fault(env)) => {
                tracing::warn!("Inform refused with a CWMP fault");
                let body = codec::serialize(&env, &state.style);
                return xml(StatusCode::OK).force_close().body(body);
            }
            Err(StartError::BadRequest(msg)) => {
                tracing::warn!(%msg, "bad first message");
                return close(HttpResponse::BadRequest(), msg);
            }
        };
        let remote = req
            .connection_info()
            .peer_addr()
            .map(|s| s.to_string())
            .unwrap_or_default();
        let pending = match crate::persist::persist_inform(state, &sid, &remote, step.persist).await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "persisting Inform failed; CPE will retry");
                return busy(state);
            }
        };
        let mut conns = HashSet::new();
        conns.insert(conn.id);
        let live = Live {
            session,
            conns,
            detached_since: None,
            pending_hint: Some(pending),
            last_sent: None,
        };
        crate::metrics::inform_received();
        state.sessions.active.fetch_add(1, Ordering::Relaxed);
        state
            .sessions
            .by_id
            .insert(sid.clone(), Arc::new(tokio::sync::Mutex::new(live)));
        state.sessions.by_conn.insert(conn.id, sid.clone());
        state
            .sessions
            .by_device
            .insert(device_id.clone(), sid.clone());
        tracing::debug!("session started");
        let mut resp = render(state, step.reply);
        if let Ok(v) = HeaderValue::from_str(&format!("{COOKIE}={sid}; Path=/")) {
            resp.headers_mut().insert(header::SET_COOKIE, v);
        }
        resp
    }
    .instrument(span)
    .await
}

/// Counts what a CPE sent in a session: the answer to our last request (ok, or a fault with
/// its code), or a request of its own.
fn count_incoming(body: &Body, last_sent: Option<String>) {
    match body {
        Body::Rpc(r) if r.is_response() => {
            let method = r.method_name().trim_end_matches("Response").to_string();
            metrics::counter!("keelson_cwmp_rpcs_total", "method" => method, "result" => "ok")
                .increment(1);
        }
        Body::Rpc(r) => {
            metrics::counter!("keelson_cwmp_cpe_rpcs_total", "method" => r.method_name().to_string())
                .increment(1);
        }
        Body::Fault(f) => {
            let method = last_sent.unwrap_or_else(|| "unknown".into());
            metrics::counter!("keelson_cwmp_rpcs_total", "method" => method, "result" => "fault")
                .increment(1);
            metrics::counter!("keelson_cwmp_faults_total", "code" => f.detail.fault_code.to_string())
                .increment(1);
        }
    }
}

fn render(state: &AppState, reply: Reply) -> HttpResponse {
    match reply {
        Reply::Envelope(env) => {
            let body = codec::serialize(&env, &state.style);
            xml(StatusCode::OK).body(body)
        }
        Reply::End => {
            let mut b = HttpResponse::NoContent();
            if !state.cfg.cwmp.keep_alive_after_session {
                b.force_close();
            }
            b.finish()
        }
        Reply::BadRequest(msg) => close(HttpResponse::BadRequest(), msg),
    }
}

async fn continue_session(
    state: &AppState,
    req: &HttpRequest,
    conn: &ConnInfo,
    sid: String,
    envelope: Option<Envelope>,
) -> HttpResponse {
    let Some(entry) = state.sessions.by_id.get(&sid).map(|e| e.clone()) else {
        return close(HttpResponse::BadRequest(), "Invalid session");
    };
    let mut live = entry.lock().await;
    let device_id = live.session.device_id.clone();
    let span = info_span!("cwmp", device = %device_id, session = %sid);
    async {
        // A session that moved to a new TCP connection re-authenticates (checklist §1.9).
        if !live.conns.contains(&conn.id) {
            if let Some(resp) = authenticate(state, req, conn, &device_id).await {
                return resp;
            }
            state.sessions.attach(&mut live, conn.id, &sid);
        }
        if state.sessions.dirty.remove(&device_id).is_some() {
            live.session.invalidate_tasks();
            live.pending_hint = None;
        }
        let now = Instant::now();
        if let Some(env) = &envelope {
            count_incoming(&env.body, live.last_sent.take());
        }
        let next = match envelope {
            Some(env) => live.session.on_envelope(env, now),
            None => live.session.on_empty(now),
        };
        let step = match next {
            Next::Step(step) => step,
            Next::NeedTasks { persist } => {
                let tasks = if live.pending_hint == Some(0) {
                    Vec::new()
                } else {
                    match state
                        .store
                        .next_tasks(&device_id, chrono::Utc::now(), 16)
                        .await
                    {
                        Ok(rows) => rows
                            .into_iter()
                            .map(|t| TaskSpec {
                                id: t.id,
                                kind: t.kind,
                                args: t.args,
                                command_key: t.command_key,
                                upload_token: t.upload_token,
                            })
                            .collect(),
                        Err(e) => {
                            tracing::error!(error = %e, "loading tasks failed; ending session");
                            Vec::new()
                        }
                    }
                };
                live.pending_hint = None;
                live.session.supply_tasks(tasks, persist)
            }
        };
        finish_step(state, &sid, &device_id, &mut live, step).await
    }
    .instrument(span)
    .await
}

async fn finish_step(
    state: &AppState,
    sid: &str,
    device_id: &str,
    live: &mut Live,
    step: Step,
) -> HttpResponse {
    if let Err(e) = crate::persist::persist(state, sid, device_id, step.persist).await {
        tracing::error!(error = %e, "persisting session step failed");
        // Nothing is acknowledged that is not durable: a CPE request gets 8002, anything
        // else ends the session.
        if let Reply::Envelope(env) = &step.reply {
            if matches!(env.body, Body::Rpc(ref r) if r.is_response()) {
                let fault = Envelope {
                    ns: env.ns.clone(),
                    header: env.header.clone(),
                    body: Body::Fault(acs::codec::Fault::acs(8002, "Internal error")),
                };
                return xml(StatusCode::OK).body(codec::serialize(&fault, &state.style));
            }
        }
        live.session.abort("storage failure");
        crate::metrics::session_ended("storage_failure");
        state.sessions.remove(sid, live);
        return busy(state);
    }
    if let Reply::Envelope(env) = &step.reply {
        if let Body::Rpc(r) = &env.body {
            if !r.is_response() {
                live.last_sent = Some(r.method_name().to_string());
            }
        }
    }
    let ended = matches!(step.reply, Reply::End | Reply::BadRequest(_));
    if ended {
        if let Reply::BadRequest(msg) = &step.reply {
            tracing::warn!(%msg, "session ended on a protocol error");
            crate::metrics::session_ended("protocol_error");
        } else {
            tracing::debug!("session complete");
            crate::metrics::session_ended("complete");
        }
        state.sessions.remove(sid, live);
    }
    render(state, step.reply)
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
    fn certificate_names_bind_to_the_device() {
        let id = "001A2B-HGW%2D1000-SN0123456789";
        for ok in [
            id,
            "001A2B-HGW-1000-SN0123456789",
            "001A2B-SN0123456789",
            "sn0123456789",
        ] {
            assert!(cert_names_device(&[ok.to_string()], id), "{ok}");
        }
        assert!(!cert_names_device(&["SN999".to_string()], id));
        assert!(!cert_names_device(&[], id));
    }
}
