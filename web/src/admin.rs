//! Northbound routes of operator access: sign-in and sign-out, users, roles, API tokens,
//! tenants and the audit log. Every change here is audited by the access layer
//! ([`crate::access::layer`]); handlers only say what they changed ([`note`]).

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::access::{self, note, note_actor, Perm, Principal};
use crate::app::AppState;
use crate::problem::{problem, problem_with};

pub(crate) fn store_error(e: store::StoreError) -> HttpResponse {
    match e {
        store::StoreError::Invalid(msg) => problem(StatusCode::CONFLICT, msg),
        store::StoreError::NotFound(what) => {
            problem(StatusCode::UNPROCESSABLE_ENTITY, format!("no {what}"))
        }
        e if e.is_unique_violation() => problem(StatusCode::CONFLICT, "the name is taken"),
        e => {
            tracing::error!(error = %e, "store error in the northbound API");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("storage error: {e}"),
            )
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginBody {
    username: String,
    password: String,
}

pub(crate) async fn login(
    req: HttpRequest,
    body: web::Json<LoginBody>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let LoginBody { username, password } = body.into_inner();
    note(
        &req,
        "auth.login",
        username.clone(),
        Vec::new(),
        Value::Null,
    );
    note_actor(&req, format!("user:{username}"));
    let ip = access::peer_ip(&req);
    if let Some(wait) = state.limiter.blocked(&username, ip) {
        let mut r = problem(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed sign-ins; try again later",
        );
        if let Ok(v) =
            actix_web::http::header::HeaderValue::from_str(&wait.as_secs().max(1).to_string())
        {
            r.headers_mut()
                .insert(actix_web::http::header::RETRY_AFTER, v);
        }
        return r;
    }
    let user = match state.store.get_user_auth(&username).await {
        Ok(u) => u,
        Err(e) => return store_error(e),
    };
    // Verify against a dummy hash for unknown users, so timing says nothing about names.
    let phc = user.as_ref().map(|u| u.password_hash.clone());
    let ok = tokio::task::spawn_blocking(move || {
        access::verify_password(&password, &phc.unwrap_or_else(dummy_hash))
    })
    .await
    .unwrap_or(false);
    let user = match user {
        Some(u) if ok && !u.user.disabled => u.user,
        other => {
            state.limiter.failed(&username, ip);
            let reason = match other {
                None => "unknown user",
                Some(u) if u.user.disabled && ok => "user disabled",
                Some(_) => "wrong password",
            };
            tracing::warn!(user = %username, reason, "sign-in refused");
            access::note_detail(&req, "reason", json!(reason));
            return problem(StatusCode::UNAUTHORIZED, "wrong user name or password");
        }
    };
    state.limiter.succeeded(&username);
    let secret = access::random_password() + &access::random_password();
    let ttl = chrono::TimeDelta::try_seconds(
        i64::try_from(state.cfg.access.session_ttl_secs).unwrap_or(i64::MAX),
    )
    .unwrap_or(chrono::TimeDelta::hours(8));
    let expires = Utc::now().checked_add_signed(ttl).unwrap_or_else(Utc::now);
    let remote = ip.map(|i| i.to_string());
    if let Err(e) = state
        .store
        .create_session(
            &access::secret_hash(&secret),
            &user.name,
            expires,
            remote.as_deref(),
        )
        .await
    {
        return store_error(e);
    }
    if let Err(e) = state.store.touch_login(&user.name).await {
        tracing::warn!(error = %e, "recording sign-in time");
    }
    let cookie = Cookie::build(access::SESSION_COOKIE, secret)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.cfg.access.secure_cookies)
        .max_age(actix_web::cookie::time::Duration::seconds(
            i64::try_from(state.cfg.access.session_ttl_secs).unwrap_or(i64::MAX),
        ))
        .finish();
    HttpResponse::Ok().cookie(cookie).json(json!({
        "user": user,
        "expires_at": expires,
    }))
}

/// An argon2id hash of a random password: what unknown user names are verified against,
/// so that the time a refusal takes says nothing about which names exist.
fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| access::hash_password(&access::random_password()).unwrap_or_default())
        .clone()
}

pub(crate) async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    note(
        &req,
        "auth.logout",
        p.actor.clone(),
        Vec::new(),
        Value::Null,
    );
    if let Some(c) = req.cookie(access::SESSION_COOKIE) {
        if let Err(e) = state
            .store
            .delete_session(&access::secret_hash(c.value()))
            .await
        {
            return store_error(e);
        }
    }
    let mut gone = Cookie::build(access::SESSION_COOKIE, "")
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .finish();
    gone.make_removal();
    HttpResponse::NoContent().cookie(gone).finish()
}

pub(crate) async fn me(p: Principal) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "actor": p.actor,
        "user": p.user,
        "role": p.role,
        "tenant": p.tenant,
        "permissions": p.permission_names(),
        "scopes": p.scopes,
    }))
}

pub(crate) async fn permissions(_p: Principal) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "permissions": access::PERMISSIONS
            .iter()
            .map(|(_, n, d)| json!({ "name": n, "description": d }))
            .collect::<Vec<_>>(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordChange {
    current_password: String,
    new_password: String,
}

pub(crate) async fn change_own_password(
    req: HttpRequest,
    body: web::Json<PasswordChange>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    let Some(name) = p.user.clone() else {
        return problem(StatusCode::CONFLICT, "API tokens have no password");
    };
    note(
        &req,
        "user.password",
        name.clone(),
        Vec::new(),
        json!({ "self": true }),
    );
    let PasswordChange {
        current_password,
        new_password,
    } = body.into_inner();
    if let Err(msg) = access::check_password_rules(&new_password) {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, msg);
    }
    let user = match state.store.get_user_auth(&name).await {
        Ok(Some(u)) => u,
        Ok(None) => return problem(StatusCode::NOT_FOUND, "no such user"),
        Err(e) => return store_error(e),
    };
    let phc = user.password_hash.clone();
    let ok = tokio::task::spawn_blocking(move || {
        access::verify_password(&current_password, &phc)
            .then(|| access::hash_password(&new_password))
    })
    .await
    .ok()
    .flatten();
    let hash = match ok {
        None => return problem(StatusCode::FORBIDDEN, "the current password is wrong"),
        Some(Err(e)) => return problem(StatusCode::INTERNAL_SERVER_ERROR, e),
        Some(Ok(h)) => h,
    };
    let update = store::UserUpdate {
        password_hash: Some(hash),
        ..Default::default()
    };
    match state.store.update_user(&name, update).await {
        Ok(_) => HttpResponse::NoContent().finish(),
        Err(e) => store_error(e),
    }
}

// -- Users ----------------------------------------------------------------------------

pub(crate) async fn list_users(state: web::Data<AppState>, p: Principal) -> HttpResponse {
    if let Err(r) = p.require(Perm::UsersAdmin) {
        return r;
    }
    match state.store.list_users(p.tenant.as_deref()).await {
        Ok(u) => HttpResponse::Ok().json(json!({ "users": u })),
        Err(e) => store_error(e),
    }
}

/// A user the principal may see: its own tenant's, or any for a principal without tenant.
pub(crate) async fn visible_user(
    state: &AppState,
    p: &Principal,
    name: &str,
) -> Result<store::UserRow, HttpResponse> {
    match state.store.get_user_auth(name).await {
        Ok(Some(u)) if p.tenant.is_none() || u.user.tenant == p.tenant => Ok(u.user),
        Ok(_) => Err(problem(StatusCode::NOT_FOUND, format!("no user {name}"))),
        Err(e) => Err(store_error(e)),
    }
}

pub(crate) async fn get_user(
    name: web::Path<String>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    if let Err(r) = p.require(Perm::UsersAdmin) {
        return r;
    }
    match visible_user(&state, &p, &name).await {
        Ok(u) => HttpResponse::Ok().json(json!({ "user": u })),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewUserBody {
    name: String,
    /// Omitted: a random password is generated and returned once.
    password: Option<String>,
    role: String,
    tenant: Option<String>,
}

/// The role `name`, if the principal may hand it out for `tenant`.
pub(crate) async fn grantable(
    state: &AppState,
    p: &Principal,
    name: &str,
    tenant: Option<&str>,
) -> Result<store::Role, HttpResponse> {
    let role = match state.store.get_role(name).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return Err(problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("no role {name}"),
            ))
        }
        Err(e) => return Err(store_error(e)),
    };
    p.may_grant(&role, tenant)
        .map_err(|m| problem(StatusCode::FORBIDDEN, m))?;
    Ok(role)
}

pub(crate) async fn create_user(
    req: HttpRequest,
    body: web::Json<NewUserBody>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    let b = body.into_inner();
    note(
        &req,
        "user.create",
        b.name.clone(),
        Vec::new(),
        json!({ "role": b.role, "tenant": b.tenant }),
    );
    if let Err(r) = p.require(Perm::UsersAdmin) {
        return r;
    }
    if let Err(m) = access::check_name("user", &b.name) {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, m);
    }
    // A tenant's administrator creates users of its own tenant.
    let tenant = b.tenant.or_else(|| p.tenant.clone());
    if let Err(r) = grantable(&state, &p, &b.role, tenant.as_deref()).await {
        return r;
    }
    let (password, generated) = match b.password {
        Some(pw) => {
            if let Err(m) = access::check_password_rules(&pw) {
                return problem(StatusCode::UNPROCESSABLE_ENTITY, m);
            }
            (pw, false)
        }
        None => (access::random_password(), true),
    };
    let pw = password.clone();
    let hash = match tokio::task::spawn_blocking(move || access::hash_password(&pw)).await {
        Ok(Ok(h)) => h,
        _ => {
            return problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "hashing the password failed",
            )
        }
    };
    match state
        .store
        .create_user(&b.name, &hash, &b.role, tenant.as_deref())
        .await
    {
        Ok(u) => {
            let mut body = json!({ "user": u });
            if generated {
                access::set_key(&mut body, "password", json!(password));
            }
            HttpResponse::Created().json(body)
        }
        Err(e) => store_error(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserPatch {
    password: Option<String>,
    role: Option<String>,
    /// `null` removes the tenant.
    #[serde(default, with = "double_option")]
    tenant: Option<Option<String>>,
    disabled: Option<bool>,
}

/// Tells an absent field from an explicit `null`.
mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

pub(crate) async fn update_user(
    req: HttpRequest,
    name: web::Path<String>,
    body: web::Json<UserPatch>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    let b = body.into_inner();
    let name = name.into_inner();
    let action = match (&b.password, &b.disabled) {
        (Some(_), _) => "user.password",
        (None, Some(true)) => "user.disable",
        (None, Some(false)) => "user.enable",
        _ => "user.update",
    };
    note(
        &req,
        action,
        name.clone(),
        Vec::new(),
        json!({ "role": b.role, "tenant": b.tenant, "disabled": b.disabled, "password_changed": b.password.is_some() }),
    );
    if let Err(r) = p.require(Perm::UsersAdmin) {
        return r;
    }
    let current = match visible_user(&state, &p, &name).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let tenant_after = b.tenant.clone().unwrap_or(current.tenant.clone());
    let role_after = b.role.clone().unwrap_or(current.role.clone());
    if let Err(r) = grantable(&state, &p, &role_after, tenant_after.as_deref()).await {
        return r;
    }
    let password_hash = match b.password {
        Some(pw) => {
            if let Err(m) = access::check_password_rules(&pw) {
                return problem(StatusCode::UNPROCESSABLE_ENTITY, m);
            }
            match tokio::task::spawn_blocking(move || access::hash_password(&pw)).await {
                Ok(Ok(h)) => Some(h),
                _ => {
                    return problem(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "hashing the password failed",
                    )
                }
            }
        }
        None => None,
    };
    let update = store::UserUpdate {
        password_hash,
        role: b.role,
        tenant: b.tenant,
        disabled: b.disabled,
    };
    match state.store.update_user(&name, update).await {
        Ok(Some(u)) => HttpResponse::Ok().json(json!({ "user": u })),
        Ok(None) => problem(StatusCode::NOT_FOUND, format!("no user {name}")),
        Err(e) => store_error(e),
    }
}

// -- Roles ----------------------------------------------------------------------------

pub(crate) async fn list_roles(state: web::Data<AppState>, p: Principal) -> HttpResponse {
    if let Err(r) = p.require(Perm::UsersAdmin) {
        return r;
    }
    match state.store.list_roles().await {
        Ok(r) => HttpResponse::Ok().json(json!({ "roles": r })),
        Err(e) => store_error(e),
    }
}

pub(crate) async fn get_role(
    name: web::Path<String>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    if let Err(r) = p.require(Perm::UsersAdmin) {
        return r;
    }
    match state.store.get_role(&name).await {
        Ok(Some(r)) => HttpResponse::Ok().json(json!({ "role": r })),
        Ok(None) => problem(StatusCode::NOT_FOUND, format!("no role {name}")),
        Err(e) => store_error(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleBody {
    name: Option<String>,
    #[serde(default)]
    description: String,
    permissions: Vec<String>,
    #[serde(default)]
    scope: store::DeviceFilter,
}

pub(crate) async fn save_role(
    req: &HttpRequest,
    state: &AppState,
    p: &Principal,
    name: String,
    b: RoleBody,
    create: bool,
) -> HttpResponse {
    note(
        req,
        if create { "role.create" } else { "role.update" },
        name.clone(),
        Vec::new(),
        json!({ "permissions": b.permissions, "scope": b.scope }),
    );
    if let Err(r) = p.require(Perm::UsersAdmin) {
        return r;
    }
    if !p.fleet_wide() || p.tenant.is_some() {
        return problem(
            StatusCode::FORBIDDEN,
            "roles are managed by administrators without a scope or tenant",
        );
    }
    if let Err(m) = access::check_name("role", &name) {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, m);
    }
    if let Err(unknown) = access::check_permissions(&b.permissions) {
        return problem_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("unknown permission(s): {}", unknown.join(", ")),
            json!({
                "unknown_permissions": unknown,
                "known_permissions": access::PERMISSIONS.iter().map(|(_, n, _)| *n).collect::<Vec<_>>(),
            }),
        );
    }
    let role = store::Role {
        name,
        description: b.description,
        permissions: b.permissions,
        scope: b.scope,
        builtin: false,
    };
    if let Err(m) = p.may_grant(&role, None) {
        return problem(StatusCode::FORBIDDEN, m);
    }
    match state.store.put_role(role, create).await {
        Ok(r) => {
            state.access.invalidate();
            if create {
                HttpResponse::Created().json(json!({ "role": r }))
            } else {
                HttpResponse::Ok().json(json!({ "role": r }))
            }
        }
        Err(e) => store_error(e),
    }
}

pub(crate) async fn create_role(
    req: HttpRequest,
    body: web::Json<RoleBody>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    let mut b = body.into_inner();
    let name = b.name.take().unwrap_or_default();
    save_role(&req, &state, &p, name, b, true).await
}

pub(crate) async fn replace_role(
    req: HttpRequest,
    name: web::Path<String>,
    body: web::Json<RoleBody>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    let b = body.into_inner();
    let name = name.into_inner();
    if b.name.as_deref().is_some_and(|n| n != name) {
        note(&req, "role.update", name.clone(), Vec::new(), Value::Null);
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the body names another role",
        );
    }
    save_role(&req, &state, &p, name, b, false).await
}

pub(crate) async fn delete_role(
    req: HttpRequest,
    name: web::Path<String>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    note(&req, "role.delete", name.as_str(), Vec::new(), Value::Null);
    if let Err(r) = p.require(Perm::UsersAdmin) {
        return r;
    }
    if !p.fleet_wide() || p.tenant.is_some() {
        return problem(
            StatusCode::FORBIDDEN,
            "roles are managed by administrators without a scope or tenant",
        );
    }
    match state.store.delete_role(&name).await {
        Ok(true) => {
            state.access.invalidate();
            HttpResponse::NoContent().finish()
        }
        Ok(false) => problem(StatusCode::NOT_FOUND, format!("no role {name}")),
        Err(e) => store_error(e),
    }
}

// -- Tokens ---------------------------------------------------------------------------

pub(crate) async fn list_tokens(state: web::Data<AppState>, p: Principal) -> HttpResponse {
    if let Err(r) = p.require(Perm::UsersAdmin) {
        return r;
    }
    match state.store.list_tokens(p.tenant.as_deref()).await {
        Ok(t) => HttpResponse::Ok().json(json!({ "tokens": t })),
        Err(e) => store_error(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewTokenBody {
    name: String,
    role: String,
    tenant: Option<String>,
    /// Lifetime in days (omitted or 0: no expiry).
    expires_in_days: Option<u32>,
    /// Or an RFC 3339 expiry.
    expires_at: Option<chrono::DateTime<Utc>>,
}

/// Creates a token; the secret is in the answer and nowhere else.
pub async fn issue_token(
    store: &store::Store,
    name: &str,
    role: &str,
    tenant: Option<String>,
    created_by: &str,
    expires_at: Option<chrono::DateTime<Utc>>,
) -> store::Result<(String, store::TokenRow)> {
    let secret = access::new_token_secret();
    let row = store
        .create_token(store::NewToken {
            name: name.to_string(),
            token_hash: access::secret_hash(&secret),
            prefix: secret.chars().take(10).collect(),
            role: role.to_string(),
            tenant,
            created_by: created_by.to_string(),
            expires_at,
        })
        .await?;
    Ok((secret, row))
}

/// When a token given `days` expires (`None`: never).
pub fn token_expiry(days: Option<u32>) -> Option<chrono::DateTime<Utc>> {
    let days = days.filter(|d| *d > 0)?;
    Utc::now().checked_add_signed(chrono::TimeDelta::try_days(i64::from(days.min(36_500)))?)
}

pub(crate) async fn create_token(
    req: HttpRequest,
    body: web::Json<NewTokenBody>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    let b = body.into_inner();
    note(
        &req,
        "token.create",
        b.name.clone(),
        Vec::new(),
        json!({ "role": b.role, "tenant": b.tenant }),
    );
    if let Err(r) = p.require(Perm::UsersAdmin) {
        return r;
    }
    if let Err(m) = access::check_name("token", &b.name) {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, m);
    }
    let tenant = b.tenant.or_else(|| p.tenant.clone());
    if let Err(r) = grantable(&state, &p, &b.role, tenant.as_deref()).await {
        return r;
    }
    let expires_at = match (b.expires_at, b.expires_in_days) {
        (Some(_), Some(_)) => {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "give expires_at or expires_in_days, not both",
            )
        }
        (Some(at), None) if at <= Utc::now() => {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "expires_at is in the past",
            )
        }
        (Some(at), None) => Some(at),
        (None, days) => token_expiry(days),
    };
    match issue_token(&state.store, &b.name, &b.role, tenant, &p.actor, expires_at).await {
        Ok((secret, row)) => {
            let mut v = serde_json::to_value(&row).unwrap_or(Value::Null);
            access::set_key(&mut v, "token", json!(secret));
            HttpResponse::Created().json(json!({ "token": v }))
        }
        Err(e) => store_error(e),
    }
}

pub(crate) async fn revoke_token(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    note(&req, "token.revoke", id.as_str(), Vec::new(), Value::Null);
    if let Err(r) = p.require(Perm::UsersAdmin) {
        return r;
    }
    match state.store.get_token(&id).await {
        Ok(Some(t)) if p.tenant.is_none() || t.tenant == p.tenant => {}
        Ok(_) => return problem(StatusCode::NOT_FOUND, format!("no token {id}")),
        Err(e) => return store_error(e),
    }
    match state.store.revoke_token(&id).await {
        Ok(Some(t)) => {
            state.access.invalidate();
            HttpResponse::Ok().json(json!({ "token": t }))
        }
        Ok(None) => problem(StatusCode::NOT_FOUND, format!("no token {id}")),
        Err(e) => store_error(e),
    }
}

// -- Tenants --------------------------------------------------------------------------

#[allow(clippy::result_large_err)]
fn fleet_admin(p: &Principal) -> Result<(), HttpResponse> {
    p.require(Perm::UsersAdmin)?;
    if !p.fleet_wide() {
        return Err(problem(
            StatusCode::FORBIDDEN,
            "tenants are managed by administrators without a scope or tenant",
        ));
    }
    Ok(())
}

pub(crate) async fn list_tenants(state: web::Data<AppState>, p: Principal) -> HttpResponse {
    if let Err(r) = fleet_admin(&p) {
        return r;
    }
    match state.store.list_tenants().await {
        Ok(t) => HttpResponse::Ok().json(json!({ "tenants": t })),
        Err(e) => store_error(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TenantBody {
    rules: Vec<store::DeviceFilter>,
}

pub(crate) async fn put_tenant(
    req: HttpRequest,
    name: web::Path<String>,
    body: web::Json<TenantBody>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    let name = name.into_inner();
    let rules = body.into_inner().rules;
    note(
        &req,
        "tenant.put",
        name.clone(),
        Vec::new(),
        json!({ "rules": rules }),
    );
    if let Err(r) = fleet_admin(&p) {
        return r;
    }
    if let Err(m) = access::check_name("tenant", &name) {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, m);
    }
    if rules.iter().any(|r| r.tenant.is_some()) {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "a tenant rule cannot itself name a tenant",
        );
    }
    if rules.iter().any(store::DeviceFilter::is_everything) {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "an empty rule would take every device; name what the tenant's devices have",
        );
    }
    let t = store::Tenant { name, rules };
    match state.store.put_tenant(t.clone()).await {
        Ok(n) => HttpResponse::Ok().json(json!({ "tenant": t, "devices_with_a_tenant": n })),
        Err(e) => store_error(e),
    }
}

pub(crate) async fn delete_tenant(
    req: HttpRequest,
    name: web::Path<String>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    note(
        &req,
        "tenant.delete",
        name.as_str(),
        Vec::new(),
        Value::Null,
    );
    if let Err(r) = fleet_admin(&p) {
        return r;
    }
    match state.store.delete_tenant(&name).await {
        Ok(true) => HttpResponse::NoContent().finish(),
        Ok(false) => problem(StatusCode::NOT_FOUND, format!("no tenant {name}")),
        Err(e) => store_error(e),
    }
}

// -- Audit ----------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditParams {
    actor: Option<String>,
    action: Option<String>,
    device: Option<String>,
    outcome: Option<String>,
    from: Option<chrono::DateTime<Utc>>,
    to: Option<chrono::DateTime<Utc>>,
    /// Cursor: records older than this id (the `next_cursor` of the previous page).
    cursor: Option<i64>,
    limit: Option<i64>,
    /// `json` (default), `jsonl` or `csv`.
    format: Option<String>,
}

pub(crate) async fn query_audit(
    q: web::Query<AuditParams>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    if let Err(r) = p.require(Perm::AuditRead) {
        return r;
    }
    // The audit log names devices of every tenant: it is read fleet-wide only.
    if !p.fleet_wide() {
        return problem(
            StatusCode::FORBIDDEN,
            "the audit log is readable only without a device scope or tenant",
        );
    }
    let q = q.into_inner();
    let format = q.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "jsonl" | "csv") {
        return problem(StatusCode::BAD_REQUEST, "format is json, jsonl or csv");
    }
    let limit = q
        .limit
        .unwrap_or(if format == "json" { 100 } else { 10_000 })
        .clamp(1, 10_000);
    let query = store::AuditQuery {
        actor: q.actor,
        action: q.action,
        device: q.device,
        outcome: q.outcome,
        from: q.from,
        to: q.to,
        before: q.cursor,
        limit,
    };
    let rows = match state.store.query_audit(query).await {
        Ok(r) => r,
        Err(e) => return store_error(e),
    };
    let next = (i64::try_from(rows.len()).unwrap_or(i64::MAX) >= limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    match format {
        "jsonl" => {
            let mut out = String::new();
            for r in &rows {
                out.push_str(&serde_json::to_string(r).unwrap_or_default());
                out.push('\n');
            }
            with_cursor(HttpResponse::Ok(), next)
                .content_type("application/x-ndjson")
                .body(out)
        }
        "csv" => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let _ = w.write_record([
                "id",
                "at",
                "actor",
                "remote_addr",
                "action",
                "target",
                "devices",
                "outcome",
                "detail",
            ]);
            for r in &rows {
                let _ = w.write_record([
                    r.id.to_string(),
                    r.at.to_rfc3339(),
                    r.actor.clone(),
                    r.remote_addr.clone().unwrap_or_default(),
                    r.action.clone(),
                    r.target.clone(),
                    r.devices.to_string(),
                    r.outcome.clone(),
                    r.detail.to_string(),
                ]);
            }
            let body = w.into_inner().unwrap_or_default();
            with_cursor(HttpResponse::Ok(), next)
                .content_type("text/csv; charset=utf-8")
                .body(body)
        }
        _ => HttpResponse::Ok().json(json!({ "records": rows, "next_cursor": next })),
    }
}

fn with_cursor(
    mut b: actix_web::HttpResponseBuilder,
    next: Option<i64>,
) -> actix_web::HttpResponseBuilder {
    if let Some(n) = next {
        b.insert_header(("X-Next-Cursor", n.to_string()));
    }
    b
}
