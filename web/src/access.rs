//! Operator access: permissions, the built-in roles, who is calling (a [`Principal`], from an
//! API token or a console session), the authentication layer on `/api/v1`, sign-in rate
//! limits, and the audit record every change request leaves.
//!
//! Order of checks on every route: credentials (401) → permission (403) → device scope
//! (a device outside the caller's scope is answered exactly like a device that does not
//! exist: 404). So neither answer tells an outsider whether a device exists.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, Error, FromRequest, HttpMessage, HttpRequest, HttpResponse};
use base64::Engine;
use chrono::Utc;
use parking_lot::{Mutex, RwLock};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::problem::{problem, unauthorized};
use store::{DeviceFilter, Role};

/// Name of the console session cookie.
pub const SESSION_COOKIE: &str = "keelson_session";
/// Where the first start writes the generated admin password.
pub const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";

macro_rules! permissions {
    ($($variant:ident = $name:literal: $doc:literal,)*) => {
        /// What a role may do. Device-bound permissions apply within the role's scope.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Perm { $(#[doc = $doc] $variant,)* }

        /// Every permission: name and meaning.
        pub const PERMISSIONS: &[(Perm, &str, &str)] = &[$((Perm::$variant, $name, $doc),)*];
    };
}

permissions! {
    DevicesRead = "devices:read": "See devices in scope: identity, parameters, events, tags, tasks, faults, their files.",
    DevicesWrite = "devices:write": "Tag, untag and delete devices in scope.",
    Refresh = "refresh": "Queue read-only tasks (GetParameterValues/Names/Attributes, GetRPCMethods, ScheduleInform, ...) and send connection requests.",
    ParametersWrite = "parameters:write": "Queue SetParameterValues, SetParameterAttributes, AddObject, DeleteObject.",
    Reboot = "reboot": "Queue Reboot.",
    FactoryReset = "factory-reset": "Queue FactoryReset.",
    Firmware = "firmware": "Queue Download, ScheduleDownload, ChangeDUState, CancelTransfer.",
    Files = "files": "Upload and delete files; queue Upload (fetch a device's log or configuration).",
    Diagnostics = "diagnostics": "Run diagnostics (TR-143 and the diagnostics objects).",
    Credentials = "credentials": "Change the CPE and connection-request credentials of devices in scope.",
    FaultsAck = "faults:ack": "Acknowledge faults of devices in scope.",
    BulkdataRead = "bulkdata:read": "Read bulk data (TR-232, HTTP bulk data, IPDR records) of devices in scope, and IPDR exporters and sessions.",
    BulkdataWrite = "bulkdata:write": "Submit IPDR documents.",
    Webhooks = "webhooks": "Manage webhook subscriptions (they deliver events of the caller's scope).",
    UsersAdmin = "users:admin": "Manage users, roles, API tokens and tenants.",
    AuditRead = "audit:read": "Read and export the audit log.",
}

impl Perm {
    pub fn name(self) -> &'static str {
        PERMISSIONS
            .iter()
            .find(|(p, _, _)| *p == self)
            .map_or("?", |(_, n, _)| n)
    }

    pub fn parse(name: &str) -> Option<Perm> {
        PERMISSIONS
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(p, _, _)| *p)
    }

    fn bit(self) -> u32 {
        1u32.checked_shl(self as u32).unwrap_or(0)
    }
}

/// The permission a task of `kind` needs.
pub fn task_permission(kind: &str) -> Perm {
    match kind {
        "SetParameterValues" | "SetParameterAttributes" | "AddObject" | "DeleteObject" => {
            Perm::ParametersWrite
        }
        "Reboot" => Perm::Reboot,
        "FactoryReset" => Perm::FactoryReset,
        "Download" | "ScheduleDownload" | "ChangeDUState" | "CancelTransfer" => Perm::Firmware,
        "Upload" => Perm::Files,
        _ => Perm::Refresh,
    }
}

/// The roles every Keelson has; they are written at each start and cannot be changed.
pub fn builtin_roles() -> Vec<Role> {
    let names = |ps: &[Perm]| ps.iter().map(|p| p.name().to_string()).collect();
    use Perm::*;
    vec![
        Role {
            name: "admin".into(),
            description: "Everything, on every device.".into(),
            permissions: PERMISSIONS.iter().map(|(_, n, _)| n.to_string()).collect(),
            scope: DeviceFilter::default(),
            builtin: true,
        },
        Role {
            name: "operator".into(),
            description: "Day-to-day device management: read, configure, reboot, upgrade, diagnose; no factory reset, no user administration.".into(),
            permissions: names(&[
                DevicesRead, DevicesWrite, Refresh, ParametersWrite, Reboot, Firmware, Files,
                Diagnostics, FaultsAck, BulkdataRead,
            ]),
            scope: DeviceFilter::default(),
            builtin: true,
        },
        Role {
            name: "viewer".into(),
            description: "Read only.".into(),
            permissions: names(&[DevicesRead, BulkdataRead]),
            scope: DeviceFilter::default(),
            builtin: true,
        },
    ]
}

/// Checks a role's permission names; the error lists the unknown ones.
pub fn check_permissions(names: &[String]) -> Result<(), Vec<String>> {
    let unknown: Vec<String> = names
        .iter()
        .filter(|n| Perm::parse(n).is_none())
        .cloned()
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(unknown)
    }
}

/// Who is calling, with what rights, on which devices.
#[derive(Debug, Clone)]
pub struct Principal {
    /// `user:NAME` or `token:NAME`: what audit records name.
    pub actor: String,
    pub role: String,
    perms: u32,
    /// Every filter must admit a device for the principal to see it (the role's scope and,
    /// for a user or token of a tenant, the tenant).
    pub scopes: Vec<DeviceFilter>,
    pub tenant: Option<String>,
    /// The user name for console sessions.
    pub user: Option<String>,
    /// The role's own device scope (without the tenant).
    role_scope: DeviceFilter,
}

impl Principal {
    fn new(actor: String, role: &Role, tenant: Option<String>, user: Option<String>) -> Self {
        let perms = role
            .permissions
            .iter()
            .filter_map(|n| Perm::parse(n))
            .fold(0u32, |acc, p| acc | p.bit());
        let mut scopes = Vec::new();
        if !role.scope.is_everything() {
            scopes.push(role.scope.clone());
        }
        if let Some(t) = &tenant {
            scopes.push(DeviceFilter::tenant(t));
        }
        Principal {
            actor,
            role: role.name.clone(),
            perms,
            scopes,
            tenant,
            user,
            role_scope: role.scope.clone(),
        }
    }

    pub fn can(&self, p: Perm) -> bool {
        self.perms & p.bit() != 0
    }

    /// 403 unless the principal holds `p`.
    #[allow(clippy::result_large_err)]
    pub fn require(&self, p: Perm) -> Result<(), HttpResponse> {
        if self.can(p) {
            Ok(())
        } else {
            Err(problem(
                StatusCode::FORBIDDEN,
                format!("role {} lacks the permission {}", self.role, p.name()),
            ))
        }
    }

    /// True when the principal sees every device.
    pub fn fleet_wide(&self) -> bool {
        self.scopes.is_empty()
    }

    /// The permission names held.
    pub fn permission_names(&self) -> Vec<&'static str> {
        PERMISSIONS
            .iter()
            .filter(|(p, _, _)| self.can(*p))
            .map(|(_, n, _)| *n)
            .collect()
    }

    /// May this principal hand out `role` (to a user or token) for `tenant`? Only what it
    /// holds itself, and, for a principal of a tenant, only within that tenant.
    pub fn may_grant(&self, role: &Role, tenant: Option<&str>) -> Result<(), String> {
        if let Some(mine) = &self.tenant {
            if tenant != Some(mine.as_str()) {
                return Err(format!(
                    "only users and tokens of tenant {mine} can be managed"
                ));
            }
        }
        // A caller whose role has a device scope hands out only roles of that same scope.
        if !self.role_scope.is_everything() && role.scope != self.role_scope {
            return Err(format!(
                "role {} has another device scope than this caller's",
                role.name
            ));
        }
        let missing: Vec<&String> = role
            .permissions
            .iter()
            .filter(|n| Perm::parse(n).is_none_or(|p| !self.can(p)))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "role {} has permissions this caller lacks: {}",
                role.name,
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
    }
}

impl FromRequest for Principal {
    type Error = Error;
    type Future = std::future::Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let p = req.extensions().get::<Principal>().cloned();
        std::future::ready(p.ok_or_else(|| {
            actix_web::error::InternalError::from_response(
                "no credentials",
                unauthorized("credentials required: an API token (Authorization: Bearer) or a console session"),
            )
            .into()
        }))
    }
}

/// SHA-256, hex: how token and session secrets are stored (they are 256-bit random, so a
/// fast hash is the right one; passwords get argon2id).
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn random_secret() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// A new API token secret: `kt_` and 43 base64url characters.
pub fn new_token_secret() -> String {
    format!("kt_{}", random_secret())
}

/// A generated password: 24 base64url characters (144 bits).
pub fn random_password() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 18]>())
}

/// argon2id (the crate's defaults: 19 MiB, 2 passes) in PHC string form.
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(phc).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A password an operator may choose: 12 to 1,024 characters.
pub fn check_password_rules(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < 12 {
        return Err("a password needs at least 12 characters".into());
    }
    if password.len() > 1024 {
        return Err("a password has at most 1,024 bytes".into());
    }
    Ok(())
}

/// A user, token, role or tenant name: 1–64 of `A-Za-z0-9._@-`.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} name {name:?} must be 1 to 64 characters of A-Z a-z 0-9 . _ - @"
        ))
    }
}

/// Roles and live tokens, cached briefly so that authenticating a request costs no database
/// read on the common path. Changes made through this server take effect at once
/// ([`AccessCache::invalidate`]); changes made by another process within [`CACHE_TTL`].
#[derive(Default)]
pub struct AccessCache {
    roles: RwLock<Option<(Instant, RoleMap)>>,
    tokens: Mutex<HashMap<String, (Instant, store::TokenRow)>>,
    /// Last `last_used_at` write per token id (at most one a minute).
    touched: Mutex<HashMap<String, Instant>>,
}

type RoleMap = Arc<HashMap<String, Role>>;

pub const CACHE_TTL: Duration = Duration::from_secs(5);
const TOKEN_CACHE_MAX: usize = 10_000;

impl AccessCache {
    pub fn invalidate(&self) {
        *self.roles.write() = None;
        self.tokens.lock().clear();
    }

    async fn roles(&self, store: &store::Store) -> store::Result<Arc<HashMap<String, Role>>> {
        if let Some((at, roles)) = &*self.roles.read() {
            if at.elapsed() < CACHE_TTL {
                return Ok(roles.clone());
            }
        }
        let roles: Arc<HashMap<String, Role>> = Arc::new(
            store
                .list_roles()
                .await?
                .into_iter()
                .map(|r| (r.name.clone(), r))
                .collect(),
        );
        *self.roles.write() = Some((Instant::now(), roles.clone()));
        Ok(roles)
    }

    async fn token(
        &self,
        store: &store::Store,
        hash: &str,
    ) -> store::Result<Option<store::TokenRow>> {
        if let Some((at, row)) = self.tokens.lock().get(hash) {
            if at.elapsed() < CACHE_TTL {
                return Ok(Some(row.clone()));
            }
        }
        let row = store.token_by_hash(hash).await?;
        if let Some(r) = &row {
            let mut cache = self.tokens.lock();
            if cache.len() >= TOKEN_CACHE_MAX {
                cache.clear();
            }
            cache.insert(hash.to_string(), (Instant::now(), r.clone()));
        }
        Ok(row)
    }

    fn should_touch(&self, id: &str) -> bool {
        let mut t = self.touched.lock();
        if t.len() >= TOKEN_CACHE_MAX {
            t.clear();
        }
        match t.get(id) {
            Some(at) if at.elapsed() < Duration::from_secs(60) => false,
            _ => {
                t.insert(id.to_string(), Instant::now());
                true
            }
        }
    }
}

/// Sign-in failures per user and per address in a sliding window; past the limit, sign-ins
/// are refused (429) until the window has passed.
pub struct LoginLimiter {
    window: Duration,
    per_user: u32,
    per_address: u32,
    users: Mutex<HashMap<String, (Instant, u32)>>,
    addrs: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

const LIMITER_MAX_KEYS: usize = 100_000;

impl LoginLimiter {
    pub fn new(cfg: &crate::config::AccessConfig) -> Self {
        LoginLimiter {
            window: Duration::from_secs(cfg.login_window_secs.max(1)),
            per_user: cfg.login_max_failures_per_user.max(1),
            per_address: cfg.login_max_failures_per_address.max(1),
            users: Mutex::default(),
            addrs: Mutex::default(),
        }
    }

    fn over<K: std::hash::Hash + Eq>(
        map: &Mutex<HashMap<K, (Instant, u32)>>,
        key: &K,
        limit: u32,
        window: Duration,
    ) -> Option<Duration> {
        let m = map.lock();
        let (start, n) = m.get(key)?;
        let age = start.elapsed();
        (age < window && *n >= limit).then(|| window.saturating_sub(age))
    }

    /// `Some(wait)` while credentials from this address are refused.
    pub fn address_blocked(&self, addr: Option<IpAddr>) -> Option<Duration> {
        addr.and_then(|a| Self::over(&self.addrs, &a, self.per_address, self.window))
    }

    /// Counts refused credentials (a wrong token or cookie) against the address.
    pub fn address_failed(&self, addr: Option<IpAddr>) {
        if let Some(a) = addr {
            Self::bump(&self.addrs, a, self.window);
        }
    }

    /// `Some(wait)` when sign-ins for this user or from this address are blocked.
    pub fn blocked(&self, user: &str, addr: Option<IpAddr>) -> Option<Duration> {
        let u = Self::over(&self.users, &user.to_string(), self.per_user, self.window);
        let a = addr.and_then(|a| Self::over(&self.addrs, &a, self.per_address, self.window));
        u.into_iter().chain(a).max()
    }

    fn bump<K: std::hash::Hash + Eq>(
        map: &Mutex<HashMap<K, (Instant, u32)>>,
        key: K,
        window: Duration,
    ) {
        let mut m = map.lock();
        if m.len() >= LIMITER_MAX_KEYS {
            m.retain(|_, (start, _)| start.elapsed() < window);
        }
        let e = m.entry(key).or_insert((Instant::now(), 0));
        if e.0.elapsed() >= window {
            *e = (Instant::now(), 0);
        }
        e.1 = e.1.saturating_add(1);
    }

    pub fn failed(&self, user: &str, addr: Option<IpAddr>) {
        Self::bump(&self.users, user.to_string(), self.window);
        if let Some(a) = addr {
            Self::bump(&self.addrs, a, self.window);
        }
    }

    pub fn succeeded(&self, user: &str) {
        self.users.lock().remove(user);
    }
}

/// What a handler tells the audit layer about the change it handled (the layer writes the
/// record once the handler has answered, with the outcome taken from the status).
#[derive(Debug, Clone, Default)]
pub struct AuditNote {
    pub action: String,
    pub target: String,
    pub devices: Vec<String>,
    pub detail: Value,
    /// Who, when the request had no principal (a sign-in names the user it tried).
    pub actor: Option<String>,
}

/// Attaches what the audit record of this request should say.
pub fn note(
    req: &HttpRequest,
    action: &str,
    target: impl Into<String>,
    devices: Vec<String>,
    detail: Value,
) {
    req.extensions_mut().insert(AuditNote {
        action: action.into(),
        target: target.into(),
        devices,
        detail,
        actor: None,
    });
}

/// Adds `key: value` to the detail of this request's audit record.
pub fn note_detail(req: &HttpRequest, key: &str, value: Value) {
    if let Some(n) = req.extensions_mut().get_mut::<AuditNote>() {
        set_key(&mut n.detail, key, value);
    }
}

/// Sets a member of a JSON object (a `null` becomes an object first).
pub fn set_key(v: &mut Value, key: &str, value: Value) {
    if v.is_null() {
        *v = json!({});
    }
    if let Some(o) = v.as_object_mut() {
        o.insert(key.to_string(), value);
    }
}

/// Sets the actor of a request that has no principal (sign-in).
pub fn note_actor(req: &HttpRequest, actor: String) {
    if let Some(n) = req.extensions_mut().get_mut::<AuditNote>() {
        n.actor = Some(actor);
    }
}

pub fn peer_ip(req: &HttpRequest) -> Option<IpAddr> {
    req.peer_addr().map(|a| a.ip())
}

/// How an answer's status reads in the audit log.
pub fn outcome(status: StatusCode) -> &'static str {
    if status.is_success() || status.is_redirection() {
        "ok"
    } else if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        "denied"
    } else if status == StatusCode::TOO_MANY_REQUESTS {
        "throttled"
    } else if status.is_client_error() {
        "invalid"
    } else {
        "failed"
    }
}

fn is_change(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Routes under `/api/v1` reachable without credentials.
fn is_public(path: &str, method: &Method) -> bool {
    path == "/api/v1/auth/login" && method == Method::POST
}

enum Credential {
    None,
    Bearer(String),
    Cookie(String),
    Malformed,
}

fn credential(req: &ServiceRequest) -> Credential {
    if let Some(h) = req.headers().get(actix_web::http::header::AUTHORIZATION) {
        let Ok(v) = h.to_str() else {
            return Credential::Malformed;
        };
        return match v.split_once(' ') {
            Some((scheme, token))
                if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
            {
                Credential::Bearer(token.trim().to_string())
            }
            _ => Credential::Malformed,
        };
    }
    match req.cookie(SESSION_COOKIE) {
        Some(c) if !c.value().is_empty() => Credential::Cookie(c.value().to_string()),
        _ => Credential::None,
    }
}

/// Why presented credentials were refused (said in the audit log, not to the caller).
enum Refused {
    UnknownToken,
    Expired(String),
    Revoked(String),
    UnknownSession,
    Malformed,
    Throttled(Duration),
}

async fn authenticate(
    state: &AppState,
    req: &ServiceRequest,
) -> Result<Option<Principal>, (Refused, Option<store::StoreError>)> {
    let cred = credential(req);
    if matches!(cred, Credential::None) {
        return Ok(None);
    }
    // Guessing tokens or session cookies counts against the address like failed sign-ins.
    let ip = req.peer_addr().map(|a| a.ip());
    if let Some(wait) = state.limiter.address_blocked(ip) {
        return Err((Refused::Throttled(wait), None));
    }
    match cred {
        Credential::None => Ok(None),
        Credential::Malformed => Err((Refused::Malformed, None)),
        Credential::Bearer(secret) => {
            let hash = secret_hash(&secret);
            let row = state
                .access
                .token(&state.store, &hash)
                .await
                .map_err(|e| (Refused::UnknownToken, Some(e)))?;
            let Some(row) = row else {
                return Err((Refused::UnknownToken, None));
            };
            let now = Utc::now();
            if row.revoked_at.is_some() {
                return Err((Refused::Revoked(row.name), None));
            }
            if !row.is_live(now) {
                return Err((Refused::Expired(row.name), None));
            }
            let roles = state
                .access
                .roles(&state.store)
                .await
                .map_err(|e| (Refused::UnknownToken, Some(e)))?;
            let Some(role) = roles.get(&row.role) else {
                return Err((Refused::UnknownToken, None));
            };
            if state.access.should_touch(&row.id) {
                let (store, id) = (state.store.clone(), row.id.clone());
                actix_web::rt::spawn(async move {
                    if let Err(e) = store.touch_token(&id, now).await {
                        tracing::debug!(error = %e, "recording token use");
                    }
                });
            }
            Ok(Some(Principal::new(
                format!("token:{}", row.name),
                role,
                row.tenant.clone(),
                None,
            )))
        }
        Credential::Cookie(secret) => {
            let user = state
                .store
                .session_user(&secret_hash(&secret))
                .await
                .map_err(|e| (Refused::UnknownSession, Some(e)))?;
            let Some(user) = user else {
                return Err((Refused::UnknownSession, None));
            };
            let roles = state
                .access
                .roles(&state.store)
                .await
                .map_err(|e| (Refused::UnknownSession, Some(e)))?;
            let Some(role) = roles.get(&user.role) else {
                return Err((Refused::UnknownSession, None));
            };
            Ok(Some(Principal::new(
                format!("user:{}", user.name),
                role,
                user.tenant.clone(),
                Some(user.name.clone()),
            )))
        }
    }
}

/// The access layer of `/api/v1`: authenticates, refuses what has no credentials (401),
/// runs the handler with the [`Principal`] in the request, and writes the audit record of
/// every change request (and of refused credentials) before the answer leaves.
pub async fn layer(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(req.into_response(problem(StatusCode::INTERNAL_SERVER_ERROR, "no state")));
    };
    let path = req.path().to_string();
    let method = req.method().clone();
    let remote = req.peer_addr().map(|a| a.ip().to_string());
    let principal = match authenticate(&state, &req).await {
        Ok(p) => p,
        Err((why, err)) => {
            if let Some(e) = err {
                tracing::error!(error = %e, "store error while authenticating");
                return Ok(req.into_response(problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage error while checking credentials",
                )));
            }
            let (detail, actor, answer) = match why {
                Refused::Throttled(wait) => {
                    let mut r = problem(
                        StatusCode::TOO_MANY_REQUESTS,
                        "too many failed attempts from this address; try again later",
                    );
                    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(
                        &wait.as_secs().max(1).to_string(),
                    ) {
                        r.headers_mut()
                            .insert(actix_web::http::header::RETRY_AFTER, v);
                    }
                    // Not audited: a blocked address could otherwise fill the log.
                    return Ok(req.into_response(r));
                }
                Refused::UnknownToken => (
                    "unknown API token",
                    "-".to_string(),
                    "invalid or expired credentials",
                ),
                Refused::Expired(n) => (
                    "expired API token",
                    format!("token:{n}"),
                    "invalid or expired credentials",
                ),
                Refused::Revoked(n) => (
                    "revoked API token",
                    format!("token:{n}"),
                    "invalid or expired credentials",
                ),
                Refused::UnknownSession => (
                    "unknown or expired console session",
                    "-".to_string(),
                    "invalid or expired credentials",
                ),
                Refused::Malformed => (
                    "malformed Authorization header",
                    "-".to_string(),
                    "malformed Authorization header (use: Bearer <token>)",
                ),
            };
            state
                .limiter
                .address_failed(req.peer_addr().map(|a| a.ip()));
            tracing::warn!(%path, remote = remote.as_deref().unwrap_or("-"), reason = detail, "credentials refused");
            write_audit(
                &state,
                store::NewAudit {
                    actor,
                    remote_addr: remote,
                    action: "auth.refused".into(),
                    target: format!("{method} {path}"),
                    devices: Vec::new(),
                    outcome: "denied".into(),
                    detail: json!({ "reason": detail }),
                },
            )
            .await;
            return Ok(req.into_response(unauthorized(answer)));
        }
    };
    if principal.is_none() && !is_public(&path, &method) {
        return Ok(req.into_response(unauthorized(
            "credentials required: an API token (Authorization: Bearer) or a console session",
        )));
    }
    let actor = principal.as_ref().map(|p| p.actor.clone());
    if let Some(p) = principal {
        req.extensions_mut().insert(p);
    }
    let change = is_change(&method);
    let mut res = next.call(req).await?;
    // The server's own time for the request (authentication, handler, serialisation), for
    // clients and benchmarks (W3C Server-Timing).
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&format!("app;dur={ms:.3}")) {
        res.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("server-timing"),
            v,
        );
    }
    if change {
        let status = res.status();
        let note = res
            .request()
            .extensions()
            .get::<AuditNote>()
            .cloned()
            .unwrap_or_default();
        let pattern = res
            .request()
            .match_pattern()
            .unwrap_or_else(|| path.clone());
        let mut detail = if note.detail.is_null() {
            json!({})
        } else {
            note.detail
        };
        if let Some(d) = detail.as_object_mut() {
            d.insert("status".into(), json!(status.as_u16()));
        }
        write_audit(
            &state,
            store::NewAudit {
                actor: note.actor.or(actor).unwrap_or_else(|| "-".into()),
                remote_addr: remote,
                action: if note.action.is_empty() {
                    format!("{method} {pattern}")
                } else {
                    note.action
                },
                target: if note.target.is_empty() {
                    path
                } else {
                    note.target
                },
                devices: note.devices,
                outcome: outcome(status).into(),
                detail,
            },
        )
        .await;
    }
    Ok(res.map_into_boxed_body())
}

/// Appends an audit record; a failure is logged (the change itself already happened or
/// failed on its own).
pub async fn write_audit(state: &AppState, a: store::NewAudit) {
    if let Err(e) = state.store.append_audit(a.clone()).await {
        tracing::error!(error = %e, action = %a.action, actor = %a.actor, "AUDIT RECORD LOST");
    }
}

/// Makes sure the built-in roles are current, and on a database without users creates
/// `admin` with a random password written to `<data_dir>/initial-admin-password` (0600).
pub async fn bootstrap(store: &store::Store, data_dir: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    seed_roles(store).await?;
    if store.count_users().await? > 0 {
        return Ok(());
    }
    let password = random_password();
    let hash = tokio::task::spawn_blocking(move || (hash_password(&password), password))
        .await
        .context("hashing the initial password")?;
    let (hash, password) = (hash.0.map_err(|e| anyhow::anyhow!(e))?, hash.1);
    let path = data_dir.join(INITIAL_PASSWORD_FILE);
    write_private(&path, format!("{password}\n").as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    store.create_user("admin", &hash, "admin", None).await?;
    store
        .append_audit(store::NewAudit {
            actor: "system".into(),
            action: "user.create".into(),
            target: "admin".into(),
            outcome: "ok".into(),
            detail: json!({ "role": "admin", "reason": "first start: no users", "password_file": path.display().to_string() }),
            ..Default::default()
        })
        .await?;
    tracing::warn!(
        file = %path.display(),
        "first start: created user admin; its password is in this file (readable by this user only): sign in, change it, delete the file"
    );
    Ok(())
}

/// Writes the built-in roles as this version defines them.
pub async fn seed_roles(store: &store::Store) -> store::Result<()> {
    for role in builtin_roles() {
        store.put_role(role, false).await?;
    }
    Ok(())
}

/// Writes a file only this user can read (replacing an older one).
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let _ = std::fs::remove_file(path);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn permission_names_round_trip_and_fit_the_mask() {
        assert!(PERMISSIONS.len() < 32);
        for (p, n, _) in PERMISSIONS {
            assert_eq!(Perm::parse(n), Some(*p));
            assert_eq!(p.name(), *n);
        }
        assert_eq!(Perm::parse("devices:everything"), None);
    }

    #[test]
    fn builtin_roles_know_their_permissions() {
        for r in builtin_roles() {
            check_permissions(&r.permissions).unwrap();
        }
        let viewer = builtin_roles()
            .into_iter()
            .find(|r| r.name == "viewer")
            .unwrap();
        let p = Principal::new("token:v".into(), &viewer, None, None);
        assert!(p.can(Perm::DevicesRead));
        assert!(!p.can(Perm::Reboot));
        assert!(p.require(Perm::Refresh).is_err());
    }

    #[test]
    fn task_kinds_map_to_permissions() {
        assert_eq!(task_permission("FactoryReset"), Perm::FactoryReset);
        assert_eq!(task_permission("SetParameterValues"), Perm::ParametersWrite);
        assert_eq!(task_permission("Download"), Perm::Firmware);
        assert_eq!(task_permission("GetParameterValues"), Perm::Refresh);
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong horse battery", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn granting_is_bounded_by_what_the_granter_holds() {
        let roles = builtin_roles();
        let get = |n: &str| roles.iter().find(|r| r.name == n).unwrap().clone();
        let op = Principal::new("user:o".into(), &get("operator"), None, None);
        assert!(op.may_grant(&get("viewer"), None).is_ok());
        assert!(op.may_grant(&get("admin"), None).is_err());
        let mut scoped_admin_role = get("admin");
        scoped_admin_role.scope.product_class = vec!["X".into()];
        let scoped = Principal::new("user:s".into(), &scoped_admin_role, None, None);
        assert!(
            scoped.may_grant(&get("viewer"), None).is_err(),
            "viewer sees every device"
        );
        let mut other = get("viewer");
        other.scope.product_class = vec!["Y".into()];
        assert!(scoped.may_grant(&other, None).is_err(), "another scope");
        other.scope.product_class = vec!["X".into()];
        assert!(scoped.may_grant(&other, None).is_ok(), "the same scope");
        let tenant_admin = Principal::new("user:t".into(), &get("admin"), Some("A".into()), None);
        assert!(tenant_admin.may_grant(&get("viewer"), Some("A")).is_ok());
        assert!(tenant_admin.may_grant(&get("viewer"), Some("B")).is_err());
        assert!(tenant_admin.may_grant(&get("viewer"), None).is_err());
    }

    #[test]
    fn limiter_blocks_after_the_limit_and_forgives_on_success() {
        let cfg = crate::config::AccessConfig {
            login_max_failures_per_user: 2,
            login_max_failures_per_address: 3,
            ..Default::default()
        };
        let l = LoginLimiter::new(&cfg);
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        l.failed("alice", Some(ip));
        assert!(l.blocked("alice", Some(ip)).is_none());
        l.failed("alice", Some(ip));
        assert!(l.blocked("alice", None).is_some());
        l.succeeded("alice");
        assert!(l.blocked("alice", None).is_none());
        l.failed("bob", Some(ip));
        assert!(
            l.blocked("carol", Some(ip)).is_some(),
            "the address is over its limit"
        );
    }

    #[test]
    fn outcomes_follow_status() {
        assert_eq!(outcome(StatusCode::CREATED), "ok");
        assert_eq!(outcome(StatusCode::FORBIDDEN), "denied");
        assert_eq!(outcome(StatusCode::UNPROCESSABLE_ENTITY), "invalid");
        assert_eq!(outcome(StatusCode::SERVICE_UNAVAILABLE), "failed");
    }
}
