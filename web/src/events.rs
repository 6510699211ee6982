//! Events for OSS systems: one bus that feeds a server-sent-events stream
//! (`GET /api/v1/events`) and webhook subscriptions (HMAC-signed POSTs, persisted per
//! subscriber before they are tried, retried with back-off, delivery state in the API).
//! Both are filtered by the subscriber's device scope.
//!
//! Event types: `device.registered`, `inform`, `device.boot`, `device.bootstrap`,
//! `value.change`, `task.completed`, `task.faulted`, `ipdr.exporter`.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::access::{note, Perm, Principal};
use crate::admin::store_error;
use crate::app::AppState;
use crate::problem::{problem, problem_with};

/// Every event type.
pub const KINDS: &[&str] = &[
    "device.registered",
    "inform",
    "device.boot",
    "device.bootstrap",
    "value.change",
    "task.completed",
    "task.faulted",
    "ipdr.exporter",
];

/// One event.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub kind: &'static str,
    pub at: DateTime<Utc>,
    pub device: Option<String>,
    pub data: Value,
}

impl Event {
    /// The JSON a subscriber receives.
    pub fn payload(&self) -> Value {
        json!({
            "id": self.id,
            "type": self.kind,
            "at": self.at,
            "device": self.device,
            "data": self.data,
        })
    }
}

/// The event bus: a broadcast channel for live streams, and the enabled webhooks (kept
/// current by [`Bus::refresh`]: after every change through the API, and every few seconds by
/// the delivery loop) for persisted deliveries.
pub struct Bus {
    tx: broadcast::Sender<Arc<Event>>,
    hooks: RwLock<Option<Arc<Vec<store::Webhook>>>>,
}

impl Default for Bus {
    fn default() -> Self {
        Bus {
            tx: broadcast::channel(4096).0,
            hooks: RwLock::new(None),
        }
    }
}

impl Bus {
    /// Reloads the enabled webhooks.
    pub async fn refresh(&self, store: &store::Store) {
        match store.list_webhooks().await {
            Ok(l) => {
                let list: Vec<_> = l.into_iter().filter(|h| h.enabled).collect();
                *self.hooks.write() = Some(Arc::new(list));
            }
            Err(e) => tracing::warn!(error = %e, "loading webhooks"),
        }
    }

    /// True when someone may listen (a stream, or a webhook): callers skip building events
    /// nobody would receive.
    pub fn wanted(&self) -> bool {
        self.tx.receiver_count() > 0 || self.hooks.read().as_ref().is_none_or(|h| !h.is_empty())
    }

    /// Publishes an event: to live streams at once, and persisted for every webhook that
    /// wants it (in the background; the caller does not wait).
    pub fn emit(
        &self,
        store: &store::Store,
        kind: &'static str,
        device: Option<&str>,
        data: Value,
    ) {
        let ev = Arc::new(Event {
            id: uuid::Uuid::new_v4().to_string(),
            kind,
            at: Utc::now(),
            device: device.map(str::to_string),
            data,
        });
        let _ = self.tx.send(ev.clone());
        let cached = self.hooks.read().clone();
        if cached.as_ref().is_some_and(|h| h.is_empty()) {
            return;
        }
        let store = store.clone();
        tokio::spawn(async move {
            let hooks = match cached {
                Some(h) => h,
                None => match store.list_webhooks().await {
                    Ok(l) => Arc::new(l.into_iter().filter(|h| h.enabled).collect()),
                    Err(e) => {
                        tracing::warn!(error = %e, "loading webhooks");
                        return;
                    }
                },
            };
            let mut targets = Vec::new();
            for h in hooks.iter() {
                if !h.events.is_empty() && !h.events.iter().any(|k| k == ev.kind) {
                    continue;
                }
                if !visible(&store, &h.scopes, ev.device.as_deref()).await {
                    continue;
                }
                targets.push(h.id.clone());
            }
            if targets.is_empty() {
                return;
            }
            if let Err(e) = store
                .enqueue_deliveries(targets, ev.id.clone(), ev.kind.to_string(), ev.payload())
                .await
            {
                tracing::error!(error = %e, event = ev.kind, "persisting webhook deliveries failed");
            }
        });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }
}

/// May a subscriber with `scopes` see an event of `device`? Events of no device (an IPDR
/// exporter's state) go to fleet-wide subscribers only.
async fn visible(
    store: &store::Store,
    scopes: &[store::DeviceFilter],
    device: Option<&str>,
) -> bool {
    if scopes.iter().all(store::DeviceFilter::is_everything) {
        return true;
    }
    match device {
        Some(d) => store.device_in_scope(d, scopes).await.unwrap_or(false),
        None => false,
    }
}

// -- Server-sent events ---------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StreamParams {
    /// Comma-separated event types (default: all).
    types: Option<String>,
}

#[allow(clippy::result_large_err)]
fn parse_types(types: Option<&str>) -> Result<Vec<String>, HttpResponse> {
    let list: Vec<String> = types
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    let unknown: Vec<&String> = list
        .iter()
        .filter(|t| !KINDS.contains(&t.as_str()))
        .collect();
    if unknown.is_empty() {
        Ok(list)
    } else {
        Err(problem_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "unknown event type(s): {}",
                unknown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            json!({ "known_types": KINDS }),
        ))
    }
}

/// `GET /api/v1/events?types=inform,task.completed`: a `text/event-stream` of events of
/// the caller's devices (`id`, `event`, `data` per event; a comment every 15 s).
pub(crate) async fn stream(
    q: web::Query<StreamParams>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    if let Err(r) = p.require(Perm::DevicesRead) {
        return r;
    }
    let types = match parse_types(q.types.as_deref()) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let rx = state.events.subscribe();
    let store = state.store.clone();
    let scopes = p.scopes.clone();
    let s = futures_util::stream::unfold(
        (rx, store, scopes, types),
        |(mut rx, store, scopes, types)| async move {
            loop {
                let next = tokio::time::timeout(Duration::from_secs(15), rx.recv()).await;
                let chunk = match next {
                    Err(_) => Some(": keep-alive\n\n".to_string()),
                    Ok(Err(broadcast::error::RecvError::Lagged(n))) => {
                        Some(format!(": {n} events dropped (the stream fell behind)\n\n"))
                    }
                    Ok(Err(broadcast::error::RecvError::Closed)) => return None,
                    Ok(Ok(ev)) => {
                        let wanted = types.is_empty() || types.iter().any(|t| t == ev.kind);
                        if !wanted || !visible(&store, &scopes, ev.device.as_deref()).await {
                            None
                        } else {
                            Some(format!(
                                "id: {}\nevent: {}\ndata: {}\n\n",
                                ev.id,
                                ev.kind,
                                ev.payload()
                            ))
                        }
                    }
                };
                if let Some(c) = chunk {
                    return Some((
                        Ok::<_, actix_web::Error>(web::Bytes::from(c)),
                        (rx, store, scopes, types),
                    ));
                }
            }
        },
    );
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(s)
}

// -- Webhook routes -------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewHookBody {
    name: String,
    url: String,
    #[serde(default)]
    events: Vec<String>,
    /// The HMAC key; omitted: generated and returned once.
    secret: Option<String>,
}

/// An http(s) URL with a host.
pub fn check_url(raw: &str) -> Result<(), String> {
    let u = url::Url::parse(raw).map_err(|e| format!("url {raw:?}: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!("url {raw:?}: only http and https are delivered to"));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("url {raw:?} has no host"));
    }
    Ok(())
}

fn hook_visible(p: &Principal, h: &store::Webhook) -> bool {
    p.tenant.is_none() || h.tenant == p.tenant
}

pub(crate) async fn create_hook(
    req: HttpRequest,
    body: web::Json<NewHookBody>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    let b = body.into_inner();
    note(
        &req,
        "webhook.create",
        b.name.clone(),
        Vec::new(),
        json!({ "url": b.url, "events": b.events }),
    );
    if let Err(r) = p.require(Perm::Webhooks) {
        return r;
    }
    if let Err(m) = crate::access::check_name("webhook", &b.name) {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, m);
    }
    if let Err(m) = check_url(&b.url) {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, m);
    }
    if let Err(r) = parse_types(Some(&b.events.join(","))) {
        return r;
    }
    let secret = b
        .secret
        .unwrap_or_else(|| crate::access::random_password() + &crate::access::random_password());
    if secret.len() < 16 || secret.len() > 256 {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, "secret: 16 to 256 bytes");
    }
    let n = store::NewWebhook {
        name: b.name,
        url: b.url,
        secret: secret.clone(),
        events: b.events,
        scopes: p.scopes.clone(),
        tenant: p.tenant.clone(),
        created_by: p.actor.clone(),
    };
    match state.store.create_webhook(n).await {
        Ok(h) => {
            state.events.refresh(&state.store).await;
            crate::access::note_detail(&req, "id", json!(h.id));
            HttpResponse::Created().json(json!({ "webhook": h, "secret": secret }))
        }
        Err(e) => store_error(e),
    }
}

pub(crate) async fn list_hooks(state: web::Data<AppState>, p: Principal) -> HttpResponse {
    if let Err(r) = p.require(Perm::Webhooks) {
        return r;
    }
    match state.store.list_webhooks().await {
        Ok(l) => {
            let mine: Vec<_> = l.into_iter().filter(|h| hook_visible(&p, h)).collect();
            HttpResponse::Ok().json(json!({ "webhooks": mine }))
        }
        Err(e) => store_error(e),
    }
}

async fn hook_for(
    state: &AppState,
    p: &Principal,
    id: &str,
) -> Result<store::Webhook, HttpResponse> {
    p.require(Perm::Webhooks)?;
    match state.store.get_webhook(id).await {
        Ok(Some(h)) if hook_visible(p, &h) => Ok(h),
        Ok(_) => Err(problem(StatusCode::NOT_FOUND, format!("no webhook {id}"))),
        Err(e) => Err(store_error(e)),
    }
}

pub(crate) async fn get_hook(
    id: web::Path<String>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    match hook_for(&state, &p, &id).await {
        Ok(h) => HttpResponse::Ok().json(json!({ "webhook": h })),
        Err(r) => r,
    }
}

pub(crate) async fn delete_hook(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    note(&req, "webhook.delete", id.as_str(), Vec::new(), Value::Null);
    if let Err(r) = hook_for(&state, &p, &id).await {
        return r;
    }
    match state.store.delete_webhook(&id).await {
        Ok(true) => {
            state.events.refresh(&state.store).await;
            HttpResponse::NoContent().finish()
        }
        Ok(false) => problem(StatusCode::NOT_FOUND, format!("no webhook {id}")),
        Err(e) => store_error(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeliveryParams {
    status: Option<String>,
    cursor: Option<i64>,
    limit: Option<i64>,
}

pub(crate) async fn list_deliveries(
    id: web::Path<String>,
    q: web::Query<DeliveryParams>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    if let Err(r) = hook_for(&state, &p, &id).await {
        return r;
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
    match state
        .store
        .webhook_deliveries(&id, q.status.as_deref(), q.cursor, limit)
        .await
    {
        Ok(d) => {
            let next = (i64::try_from(d.len()).unwrap_or(i64::MAX) >= limit)
                .then(|| d.last().map(|r| r.id))
                .flatten();
            HttpResponse::Ok().json(json!({ "deliveries": d, "next_cursor": next }))
        }
        Err(e) => store_error(e),
    }
}

// -- Delivery -------------------------------------------------------------------------

/// `X-Keelson-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`, with the
/// timestamp in `X-Keelson-Timestamp` (seconds since the epoch).
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The delivery loop: every pending delivery that is due is POSTed; 2xx settles it, anything
/// else retries after `retry_base_secs · 2^attempts` (at most `retry_max_secs`) until
/// `max_attempts`.
pub async fn deliver_forever(state: Arc<AppState>) {
    let cfg = state.cfg.webhooks.clone();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(cfg.timeout_secs.max(1))))
        .max_redirects(0)
        .build()
        .into();
    let mut tick: u32 = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        tick = tick.wrapping_add(1);
        if tick.is_multiple_of(10) {
            // Webhooks changed elsewhere (another node, the CLI) are seen within 5 s.
            state.events.refresh(&state.store).await;
        }
        let due = match state.store.due_deliveries(Utc::now(), 32).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "reading due webhook deliveries");
                continue;
            }
        };
        for d in due {
            let hook = match state.store.get_webhook(&d.webhook_id).await {
                Ok(Some(h)) if h.enabled => h,
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "reading a webhook");
                    continue;
                }
            };
            let body = d.payload.to_string();
            let ts = Utc::now().timestamp();
            let sig = signature(&hook.secret, ts, &body);
            let (agent, url, event_type, event_id) = (
                agent.clone(),
                hook.url.clone(),
                d.event_type.clone(),
                d.event_id.clone(),
            );
            let delivery = d.id.to_string();
            let sent = tokio::task::spawn_blocking(move || {
                agent
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .header("User-Agent", "keelson-webhooks")
                    .header("X-Keelson-Event", &event_type)
                    .header("X-Keelson-Event-Id", &event_id)
                    .header("X-Keelson-Delivery", &delivery)
                    .header("X-Keelson-Timestamp", &ts.to_string())
                    .header("X-Keelson-Signature", &sig)
                    .send(body.as_bytes())
                    .map(|r| r.status().as_u16())
            })
            .await;
            let (ok, status, error) = match sent {
                Ok(Ok(s)) if (200..300).contains(&s) => (true, Some(i32::from(s)), None),
                Ok(Ok(s)) => (false, Some(i32::from(s)), Some(format!("HTTP {s}"))),
                Ok(Err(e)) => (false, None, Some(e.to_string())),
                Err(e) => (false, None, Some(e.to_string())),
            };
            let attempts = u32::try_from(d.attempts)
                .unwrap_or(u32::MAX)
                .saturating_add(1);
            let retry_at = (!ok && attempts < cfg.max_attempts).then(|| {
                let backoff = cfg
                    .retry_base_secs
                    .max(1)
                    .saturating_mul(
                        1u64.checked_shl(attempts.saturating_sub(1).min(30))
                            .unwrap_or(u64::MAX),
                    )
                    .min(cfg.retry_max_secs.max(1));
                Utc::now()
                    .checked_add_signed(chrono::TimeDelta::seconds(
                        i64::try_from(backoff).unwrap_or(3600),
                    ))
                    .unwrap_or_else(Utc::now)
            });
            let result = match (ok, retry_at.is_some()) {
                (true, _) => "delivered",
                (false, true) => "retry",
                (false, false) => "failed",
            };
            metrics::counter!("keelson_webhook_deliveries_total", "result" => result).increment(1);
            if !ok {
                tracing::info!(webhook = %hook.id, delivery = d.id, attempts, error = ?error, result, "webhook delivery failed");
            }
            if let Err(e) = state
                .store
                .record_delivery_attempt(d.id, ok, status, error, retry_at)
                .await
            {
                tracing::warn!(error = %e, "recording a webhook delivery");
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http_or_https_with_a_host() {
        assert!(check_url("https://oss.example/hook").is_ok());
        assert!(check_url("http://127.0.0.1:9000/x").is_ok());
        assert!(check_url("ftp://oss.example/").is_err());
        assert!(check_url("file:///etc/passwd").is_err());
        assert!(check_url("javascript:alert(1)").is_err());
        assert!(check_url("not a url").is_err());
    }

    #[test]
    fn signatures_are_hmac_sha256_of_timestamp_and_body() {
        // RFC 4231-style check against an independent computation.
        let s = signature("key", 1, "{}");
        assert!(s.starts_with("sha256="));
        assert_eq!(s.len(), 7 + 64);
        assert_ne!(s, signature("key", 2, "{}"));
        assert_ne!(s, signature("other", 1, "{}"));
    }
}
