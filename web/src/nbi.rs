//! Northbound REST API (JSON over HTTP, shaped by TR-131's operations): devices, tags,
//! parameters, events, tasks (with optional connection request and wait), faults, files,
//! bulk data, and (in [`crate::admin`]) operator access.
//!
//! Every `/api/v1` route runs under [`crate::access::layer`]: no credentials, 401; each
//! handler then checks its permission (403) and the caller's device scope (404, exactly as
//! for a device that does not exist). Errors are RFC 9457 problem documents.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::access::{note, task_permission, Perm, Principal};
use crate::admin::store_error;
use crate::app::AppState;
use crate::connreq::CrReport;
use crate::problem::{problem, problem_with};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(4 << 20)
            .error_handler(|e, _| {
                let msg = e.to_string();
                let status = match &e {
                    actix_web::error::JsonPayloadError::Overflow { .. }
                    | actix_web::error::JsonPayloadError::OverflowKnownLength { .. } => {
                        StatusCode::PAYLOAD_TOO_LARGE
                    }
                    actix_web::error::JsonPayloadError::ContentType => {
                        StatusCode::UNSUPPORTED_MEDIA_TYPE
                    }
                    _ => StatusCode::BAD_REQUEST,
                };
                actix_web::error::InternalError::from_response(e, error(status, msg)).into()
            }),
    )
    .app_data(web::QueryConfig::default().error_handler(|e, _| {
        let msg = e.to_string();
        actix_web::error::InternalError::from_response(e, error(StatusCode::BAD_REQUEST, msg))
            .into()
    }))
    .app_data(web::PathConfig::default().error_handler(|e, _| {
        let msg = e.to_string();
        actix_web::error::InternalError::from_response(e, error(StatusCode::NOT_FOUND, msg)).into()
    }))
    .route("/healthz", web::get().to(health))
    .route("/metrics", web::get().to(crate::metrics::scrape))
    .service(
        mount(web::scope("/api/v1"))
            .default_service(web::to(not_found))
            .wrap(actix_web::middleware::from_fn(crate::access::layer)),
    );
}

/// Declares every `/api/v1` route once: [`ROUTES`] (what tests and the API description
/// walk) and the mounting come from the same list, so neither can miss one.
macro_rules! api_routes {
    ($($method:ident $path:literal => $handler:path;)*) => {
        /// Every route under `/api/v1`: (lower-case method, path pattern).
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path),)*];

        fn mount(scope: actix_web::Scope) -> actix_web::Scope {
            scope$(.route($path, web::$method().to($handler)))*
        }
    };
}

use crate::admin as adm;

api_routes! {
    post "/auth/login" => adm::login;
    post "/auth/logout" => adm::logout;
    get "/auth/me" => adm::me;
    post "/auth/password" => adm::change_own_password;
    get "/permissions" => adm::permissions;
    get "/users" => adm::list_users;
    post "/users" => adm::create_user;
    get "/users/{name}" => adm::get_user;
    patch "/users/{name}" => adm::update_user;
    get "/roles" => adm::list_roles;
    post "/roles" => adm::create_role;
    get "/roles/{name}" => adm::get_role;
    put "/roles/{name}" => adm::replace_role;
    delete "/roles/{name}" => adm::delete_role;
    get "/tokens" => adm::list_tokens;
    post "/tokens" => adm::create_token;
    delete "/tokens/{id}" => adm::revoke_token;
    get "/tenants" => adm::list_tenants;
    put "/tenants/{name}" => adm::put_tenant;
    delete "/tenants/{name}" => adm::delete_tenant;
    get "/audit" => adm::query_audit;
    get "/devices" => list_devices;
    get "/devices/{id}" => get_device;
    delete "/devices/{id}" => delete_device;
    get "/devices/{id}/parameters" => get_parameters;
    get "/devices/{id}/events" => get_events;
    get "/devices/{id}/tags" => get_tags;
    post "/devices/{id}/tags" => change_tags;
    put "/devices/{id}/tags/{tag}" => add_tag;
    delete "/devices/{id}/tags/{tag}" => remove_tag;
    put "/devices/{id}/credentials" => put_credentials;
    post "/devices/{id}/tasks" => create_task;
    get "/devices/{id}/tasks" => device_tasks;
    post "/devices/{id}/connection-request" => connection_request;
    get "/tasks" => list_tasks;
    get "/tasks/{id}" => get_task;
    delete "/tasks/{id}" => cancel_task;
    post "/tasks/{id}/retry" => retry_task;
    get "/faults" => list_faults;
    post "/faults/acknowledge" => acknowledge_faults;
    get "/bulkdata/samples" => list_samples;
    get "/ipdr/exporters" => list_exporters;
    get "/ipdr/sessions" => list_ipdr_sessions;
    get "/ipdr/records" => list_ipdr_records;
    post "/ipdr/documents" => post_ipdr_document;
    get "/files" => list_files;
    post "/files" => upload_file;
    get "/files/{id}" => get_file;
    delete "/files/{id}" => delete_file;
    get "/events" => crate::events::stream;
    get "/webhooks" => crate::events::list_hooks;
    post "/webhooks" => crate::events::create_hook;
    get "/webhooks/{id}" => crate::events::get_hook;
    delete "/webhooks/{id}" => crate::events::delete_hook;
    get "/webhooks/{id}/deliveries" => crate::events::list_deliveries;
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    error(
        StatusCode::NOT_FOUND,
        format!("no route {} {}", req.method(), req.path()),
    )
}

fn error(status: StatusCode, msg: impl Into<String>) -> HttpResponse {
    problem(status, msg)
}

/// 404 for a device that does not exist or lies outside the caller's scope (the same
/// answer, so that a caller learns nothing of devices it may not see).
fn no_device(id: &str) -> HttpResponse {
    error(StatusCode::NOT_FOUND, format!("no device {id}"))
}

/// Checks that the caller holds `perm` (403) and sees device `id` (404).
async fn device_visible(
    state: &AppState,
    p: &Principal,
    id: &str,
    perm: Perm,
) -> Result<(), HttpResponse> {
    p.require(perm)?;
    match state.store.device_in_scope(id, &p.scopes).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(no_device(id)),
        Err(e) => Err(store_error(e)),
    }
}

/// The device, when the caller holds `perm` and sees it.
async fn device_for(
    state: &AppState,
    p: &Principal,
    id: &str,
    perm: Perm,
) -> Result<store::DeviceRow, HttpResponse> {
    device_visible(state, p, id, perm).await?;
    match state.store.get_device(id).await {
        Ok(Some(d)) => Ok(d),
        Ok(None) => Err(no_device(id)),
        Err(e) => Err(store_error(e)),
    }
}

/// A task the caller sees (its device is in scope), for `perm` (or the permission of the
/// task's kind when `perm` is `None`).
async fn task_for(
    state: &AppState,
    p: &Principal,
    id: i64,
    perm: Option<Perm>,
) -> Result<store::TaskRow, HttpResponse> {
    p.require(Perm::DevicesRead)?;
    let task = match state.store.get_task(id).await {
        Ok(Some(t)) => t,
        Ok(None) => return Err(error(StatusCode::NOT_FOUND, format!("no task {id}"))),
        Err(e) => return Err(store_error(e)),
    };
    match state
        .store
        .device_in_scope(&task.device_id, &p.scopes)
        .await
    {
        Ok(true) => {}
        Ok(false) => return Err(error(StatusCode::NOT_FOUND, format!("no task {id}"))),
        Err(e) => return Err(store_error(e)),
    }
    p.require(perm.unwrap_or_else(|| task_permission(&task.kind)))?;
    Ok(task)
}

/// A task as the NBI shows it: file-server passwords in its arguments are redacted, and a
/// Keelson fault code comes with its meaning.
fn task_json(t: &store::TaskRow) -> Value {
    let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
    if let Some(Value::String(p)) = v.pointer_mut("/args/password") {
        if !p.is_empty() {
            *p = "<redacted>".into();
        }
    }
    if let Some(meaning) = t
        .fault_code
        .and_then(|c| u32::try_from(c).ok())
        .and_then(acs::faults::describe)
    {
        if let Some(o) = v.as_object_mut() {
            o.insert("fault_meaning".into(), json!(meaning));
        }
    }
    v
}

async fn health(state: web::Data<AppState>) -> HttpResponse {
    let listener = |r: &crate::conns::Registry| {
        let refused = r.refused();
        json!({
            "open": r.open(),
            "refused": {
                "not_allowed": refused.not_allowed,
                "per_address": refused.per_address,
                "total": refused.total,
            },
        })
    };
    let mut warnings = Vec::new();
    if state.auth.is_none() {
        warnings.push(CPE_AUTH_OFF);
    }
    HttpResponse::Ok().json(json!({
        "status": "ok",
        "cwmp_auth": if state.auth.is_some() { "digest" } else { "none" },
        "warnings": warnings,
        "active_sessions": state.sessions.active(),
        "connections": {
            "cwmp": listener(&state.cwmp_conns),
            "nbi": listener(&state.nbi_conns),
            "ipdr": listener(&state.ipdr_conns),
        },
    }))
}

/// What `/healthz`, `/metrics` and the console say while CPEs are not authenticated.
pub const CPE_AUTH_OFF: &str = "CPE authentication is off (cwmp.auth = \"none\"): any host that reaches the CWMP port can pose as any device";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceQueryParams {
    q: Option<String>,
    param: Option<String>,
    value: Option<String>,
    tag: Option<String>,
    /// `id` (default), `last_inform_at`, `first_seen_at`, `product_class`, `software_version`;
    /// a leading `-` sorts descending.
    sort: Option<String>,
    /// Cursor (with the default sort by id): the `next_cursor` of the previous page.
    cursor: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn list_devices(
    q: web::Query<DeviceQueryParams>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    if let Err(r) = p.require(Perm::DevicesRead) {
        return r;
    }
    let q = q.into_inner();
    let sort_spec = q.sort.unwrap_or_default();
    let (descending, sort_name) = match sort_spec.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, sort_spec.as_str()),
    };
    let sort = if sort_name.is_empty() {
        store::DeviceSort::Id
    } else {
        match sort_name.parse() {
            Ok(s) => s,
            Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
        }
    };
    if q.cursor.is_some() && sort != store::DeviceSort::Id {
        return error(
            StatusCode::BAD_REQUEST,
            "cursor pages follow the id order: use offset with another sort",
        );
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
    let query = store::DeviceQuery {
        text: q.q,
        param_path: q.param,
        param_value: q.value,
        tag: q.tag,
        scopes: p.scopes.clone(),
        sort,
        descending,
        after: q.cursor,
        limit,
        offset: q.offset.unwrap_or(0).max(0),
    };
    match state.store.list_devices(query).await {
        Ok((rows, total)) => {
            let next = (sort == store::DeviceSort::Id
                && i64::try_from(rows.len()).unwrap_or(i64::MAX) >= limit)
                .then(|| rows.last().map(|d| d.id.clone()))
                .flatten();
            HttpResponse::Ok().json(json!({ "total": total, "devices": rows, "next_cursor": next }))
        }
        Err(e) => store_error(e),
    }
}

async fn get_device(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    let id = id.into_inner();
    let device = match device_for(&state, &p, &id, Perm::DevicesRead).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let tags = match state.store.device_tags(&id).await {
        Ok(t) => t,
        Err(e) => return store_error(e),
    };
    let params = match state.store.get_parameters(&id, None).await {
        Ok(p) => annotated(&state, &device.root_object, p),
        Err(e) => return store_error(e),
    };
    let events = match state.store.get_events(&id, 50).await {
        Ok(e) => e,
        Err(e) => return store_error(e),
    };
    let body = json!({
        "device": device,
        "tags": tags,
        "in_session": state.sessions.in_session(&id),
        "parameters": params,
        "events": events,
    })
    .to_string();
    with_etag(&req, body)
}

/// A JSON answer with a strong ETag of its bytes; 304 when the client's `If-None-Match`
/// names it.
fn with_etag(req: &HttpRequest, body: String) -> HttpResponse {
    use sha2::Digest;
    let tag = format!(
        "\"{}\"",
        hex::encode(
            sha2::Sha256::digest(body.as_bytes())
                .get(..16)
                .unwrap_or_default()
        )
    );
    let matches = req
        .headers()
        .get(actix_web::http::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    if matches {
        return HttpResponse::NotModified()
            .insert_header((actix_web::http::header::ETAG, tag))
            .finish();
    }
    HttpResponse::Ok()
        .insert_header((actix_web::http::header::ETAG, tag))
        .content_type("application/json")
        .body(body)
}

async fn delete_device(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    note(
        &req,
        "device.delete",
        id.as_str(),
        vec![id.to_string()],
        Value::Null,
    );
    if let Err(r) = device_visible(&state, &p, &id, Perm::DevicesWrite).await {
        return r;
    }
    match state.store.delete_device(&id).await {
        Ok(true) => HttpResponse::NoContent().finish(),
        Ok(false) => no_device(&id),
        Err(e) => store_error(e),
    }
}

async fn get_tags(id: web::Path<String>, state: web::Data<AppState>, p: Principal) -> HttpResponse {
    if let Err(r) = device_visible(&state, &p, &id, Perm::DevicesRead).await {
        return r;
    }
    match state.store.device_tags(&id).await {
        Ok(t) => HttpResponse::Ok().json(json!({ "tags": t })),
        Err(e) => store_error(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagChange {
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
}

/// A tag: 1–128 printable characters, no comma or whitespace.
fn check_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != ',');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag {tag:?} must be 1 to 128 characters without spaces or commas"
        ))
    }
}

async fn apply_tags(
    req: &HttpRequest,
    state: &AppState,
    p: &Principal,
    id: &str,
    add: Vec<String>,
    remove: Vec<String>,
) -> HttpResponse {
    note(
        req,
        "device.tags",
        id,
        vec![id.to_string()],
        json!({ "add": add, "remove": remove }),
    );
    if let Err(r) = device_visible(state, p, id, Perm::DevicesWrite).await {
        return r;
    }
    if let Some(msg) = add.iter().chain(&remove).find_map(|t| check_tag(t).err()) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, msg);
    }
    match state.store.change_tags(id, add, remove).await {
        Ok(Some(t)) => HttpResponse::Ok().json(json!({ "tags": t })),
        Ok(None) => no_device(id),
        Err(e) => store_error(e),
    }
}

async fn change_tags(
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<TagChange>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    let b = body.into_inner();
    apply_tags(&req, &state, &p, &id, b.add, b.remove).await
}

async fn add_tag(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    let (id, tag) = path.into_inner();
    apply_tags(&req, &state, &p, &id, vec![tag], Vec::new()).await
}

async fn remove_tag(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    let (id, tag) = path.into_inner();
    apply_tags(&req, &state, &p, &id, Vec::new(), vec![tag]).await
}

#[derive(Deserialize)]
struct PrefixQuery {
    prefix: Option<String>,
}

async fn get_parameters(
    id: web::Path<String>,
    q: web::Query<PrefixQuery>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    let root = match device_for(&state, &p, &id, Perm::DevicesRead).await {
        Ok(d) => d.root_object,
        Err(r) => return r,
    };
    match state.store.get_parameters(&id, q.prefix.as_deref()).await {
        Ok(p) => HttpResponse::Ok().json(json!({ "parameters": annotated(&state, &root, p) })),
        Err(e) => store_error(e),
    }
}

/// Parameter rows with the model's type, access and one-line description.
fn annotated(state: &AppState, root: &str, rows: Vec<store::ParameterRow>) -> Vec<Value> {
    let rows = rows
        .into_iter()
        .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
        .collect();
    crate::dm::annotate(state.dm.model_for_root(root), rows)
}

#[derive(Deserialize)]
struct LimitQuery {
    limit: Option<i64>,
}

async fn get_events(
    id: web::Path<String>,
    q: web::Query<LimitQuery>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    if let Err(r) = device_visible(&state, &p, &id, Perm::DevicesRead).await {
        return r;
    }
    match state
        .store
        .get_events(&id, q.limit.unwrap_or(100).clamp(1, 10_000))
        .await
    {
        Ok(e) => HttpResponse::Ok().json(json!({ "events": e })),
        Err(e) => store_error(e),
    }
}

#[derive(Deserialize)]
struct Credentials {
    cpe_username: Option<String>,
    cpe_password: Option<String>,
    cr_username: Option<String>,
    cr_password: Option<String>,
}

async fn put_credentials(
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Credentials>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    let c = body.into_inner();
    note(
        &req,
        "device.credentials",
        id.as_str(),
        vec![id.to_string()],
        json!({
            "cpe_username": c.cpe_username,
            "cpe_password_set": c.cpe_password.is_some(),
            "cr_username": c.cr_username,
            "cr_password_set": c.cr_password.is_some(),
        }),
    );
    if let Err(r) = device_visible(&state, &p, &id, Perm::Credentials).await {
        return r;
    }
    // Only the Digest HA1 of a CPE password is kept, and HA1 covers the username: a
    // password needs the username the CPE will send.
    let cpe_secret = match (&c.cpe_username, &c.cpe_password) {
        (_, None) => None,
        (Some(u), Some(p)) if !u.is_empty() => {
            Some(crate::cwmp::seal_password(&state.cfg.cwmp.realm, u, p))
        }
        (_, Some(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "cpe_password needs cpe_username (the username the CPE sends)",
            )
        }
    };
    match state
        .store
        .set_device_credentials(
            &id,
            c.cpe_username,
            cpe_secret,
            c.cr_username,
            c.cr_password,
        )
        .await
    {
        Ok(true) => {
            // The CPE username may decide the device's tenant.
            if let Err(e) = state.store.assign_tenant(&id).await {
                tracing::warn!(device = %id, error = %e, "re-assigning the tenant");
            }
            HttpResponse::NoContent().finish()
        }
        Ok(false) => no_device(&id),
        Err(e) => store_error(e),
    }
}

/// `POST /api/v1/devices/{id}/tasks`
/// Body: `{"kind": "GetParameterValues", "args": {"parameter_names": ["Device.DeviceInfo."]},
/// "expires_in": 3600, "max_attempts": 3}`.
/// Query: `connection_request=true` to wake the device now, `wait=<seconds>` to answer with the
/// result if the device finishes in time (200), else 202; without `wait`, 201.
#[derive(Deserialize)]
struct NewTaskBody {
    kind: String,
    #[serde(default)]
    args: Value,
    expires_in: Option<i64>,
    max_attempts: Option<i32>,
    /// Queue even what the device's data model says the device does not have.
    #[serde(default)]
    force: bool,
}

#[derive(Deserialize)]
struct TaskQueryParams {
    connection_request: Option<bool>,
    wait: Option<f64>,
}

async fn create_task(
    req: HttpRequest,
    id: web::Path<String>,
    q: web::Query<TaskQueryParams>,
    body: web::Json<NewTaskBody>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    let device_id = id.into_inner();
    let body = body.into_inner();
    note(
        &req,
        "task.create",
        device_id.clone(),
        vec![device_id.clone()],
        json!({ "kind": body.kind, "connection_request": q.connection_request.unwrap_or(false) }),
    );
    if !acs::session::TASK_KINDS.contains(&body.kind.as_str()) {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "unknown task kind {:?}; one of: {}",
                body.kind,
                acs::session::TASK_KINDS.join(", ")
            ),
        );
    }
    let device = match device_for(&state, &p, &device_id, task_permission(&body.kind)).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let mut args = match prepare_args(&state, &p, &body.kind, body.args).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    // The device's model refuses what the device would refuse, and types the values.
    if let Err(resp) = check_with_model(
        &state,
        &device_id,
        &device.root_object,
        &body.kind,
        &mut args,
        body.force,
    )
    .await
    {
        return resp;
    }
    // Refuse now what the session would refuse later.
    let probe = acs::session::TaskSpec {
        id: 0,
        kind: body.kind.clone(),
        args: args.clone(),
        command_key: Some("probe".into()),
        upload_token: None,
    };
    if let Err(reason) = acs::session::build_rpc(&probe, &device.root_object) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("invalid {} arguments: {reason}", body.kind),
        );
    }
    let expires_in = body
        .expires_in
        .unwrap_or_else(|| i64::try_from(state.cfg.cwmp.task_expiry_secs).unwrap_or(i64::MAX));
    let expires_at = match expires_at(expires_in) {
        Ok(t) => t,
        Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
    };
    let new = store::NewTask {
        device_id: device_id.clone(),
        kind: body.kind.clone(),
        args,
        expires_at,
        max_attempts: body
            .max_attempts
            .unwrap_or(state.cfg.cwmp.task_max_attempts)
            .max(1),
    };
    let task = match state.store.create_task(new).await {
        Ok(t) => t,
        Err(e) => return store_error(e),
    };
    tracing::info!(device = %device_id, task = task.id, kind = %task.kind, actor = %p.actor, "task queued");
    if let Some(n) = req.extensions_mut().get_mut::<crate::access::AuditNote>() {
        n.target = format!("task {}", task.id);
    }
    state.sessions.mark_dirty(&device_id);

    let mut cr: Option<CrReport> = None;
    if q.connection_request.unwrap_or(false) {
        cr = Some(crate::connreq::wake(&state, &device).await);
    }
    let Some(wait) = q.wait.filter(|w| *w > 0.0) else {
        return HttpResponse::Created()
            .json(json!({ "task": task_json(&task), "connection_request": cr }));
    };
    let deadline = Instant::now()
        .checked_add(Duration::from_secs_f64(wait.min(600.0)))
        .unwrap_or_else(Instant::now);
    let mut current = task;
    loop {
        if current.status.is_terminal() {
            return HttpResponse::Ok()
                .json(json!({ "task": task_json(&current), "connection_request": cr }));
        }
        if Instant::now() >= deadline {
            return HttpResponse::Accepted()
                .json(json!({ "task": task_json(&current), "connection_request": cr }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        match state.store.get_task(current.id).await {
            Ok(Some(t)) => current = t,
            Ok(None) => return error(StatusCode::GONE, "task disappeared"),
            Err(e) => return store_error(e),
        }
    }
}

/// Longest task lifetime accepted: ten years.
const MAX_EXPIRES_IN: i64 = 10 * 366 * 24 * 3600;

/// When a task given `expires_in` seconds expires (`None`: never, for 0 or less).
fn expires_at(expires_in: i64) -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
    if expires_in <= 0 {
        return Ok(None);
    }
    if expires_in > MAX_EXPIRES_IN {
        return Err(format!(
            "expires_in {expires_in} is out of range (at most {MAX_EXPIRES_IN} seconds; 0 = never)"
        ));
    }
    let delta = chrono::TimeDelta::try_seconds(expires_in)
        .ok_or_else(|| format!("expires_in {expires_in} is out of range"))?;
    chrono::Utc::now()
        .checked_add_signed(delta)
        .map(Some)
        .ok_or_else(|| format!("expires_in {expires_in} is out of range"))
}

/// Fills in what the operator need not spell out: the SPV short form, Download URL/size from a
/// stored file, the Upload target on our receiver.
async fn prepare_args(
    state: &AppState,
    p: &Principal,
    kind: &str,
    mut args: Value,
) -> Result<Value, HttpResponse> {
    if args.is_null() {
        args = json!({});
    }
    let Some(obj) = args.as_object_mut() else {
        return Err(error(StatusCode::BAD_REQUEST, "args must be a JSON object"));
    };
    match kind {
        "SetParameterValues" => {
            // Accept {"parameter_list": [...]} or the short form {"values": {"path": value}}.
            if let Some(Value::Object(values)) = obj.remove("values") {
                let list: Vec<Value> = values
                    .into_iter()
                    .map(|(name, v)| {
                        let value = match v {
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        json!({ "name": name, "value": value, "xsi_type": null })
                    })
                    .collect();
                obj.insert("parameter_list".into(), Value::Array(list));
            }
            obj.entry("parameter_key").or_insert(json!(""));
        }
        "Download" | "ScheduleDownload" => {
            if let Some(file_id) = obj
                .remove("file_id")
                .and_then(|v| v.as_str().map(String::from))
            {
                let file = match file_for(state, p, &file_id).await {
                    Ok(f) => f,
                    Err(_) => {
                        return Err(error(StatusCode::BAD_REQUEST, format!("no file {file_id}")))
                    }
                };
                obj.insert(
                    "url".into(),
                    json!(format!(
                        "{}/files/{}/{}",
                        state.public_url,
                        file.id,
                        ids::url_segment(&file.name)
                    )),
                );
                obj.entry("file_type").or_insert(json!(file.file_type));
                obj.entry("file_size").or_insert(json!(file.size));
            }
            for k in [
                "command_key",
                "file_type",
                "url",
                "username",
                "password",
                "target_file_name",
            ] {
                obj.entry(k).or_insert(json!(""));
            }
            obj.entry("file_size").or_insert(json!(0));
            if kind == "Download" {
                obj.entry("delay_seconds").or_insert(json!(0));
                obj.entry("success_url").or_insert(json!(""));
                obj.entry("failure_url").or_insert(json!(""));
            } else {
                obj.entry("time_window_list").or_insert(json!([{
                    "window_start": 0, "window_end": 3600, "window_mode": "1 At Any Time",
                    "user_message": "", "max_retries": -1
                }]));
            }
        }
        "Upload" => {
            obj.entry("file_type")
                .or_insert(json!("1 Vendor Configuration File"));
            if obj
                .get("url")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                let name = if obj["file_type"].as_str().unwrap_or("").contains("Log") {
                    "log.txt"
                } else {
                    "config.bin"
                };
                obj.insert(
                    "url".into(),
                    json!(format!(
                        "{}/upload/{{task_id}}/{{upload_token}}/{}",
                        state.public_url, name
                    )),
                );
            }
            // With CPE authentication on, our receiver wants credentials: the Upload RPC
            // hands the CPE a pair for this task alone.
            let ours = obj
                .get("url")
                .and_then(Value::as_str)
                .is_some_and(|u| u.contains("{upload_token}"));
            let blank = |k: &str| obj.get(k).and_then(Value::as_str).is_none_or(str::is_empty);
            if ours && state.auth.is_some() && blank("username") && blank("password") {
                obj.insert("username".into(), json!("keelson-upload"));
                obj.insert(
                    "password".into(),
                    json!(hex::encode(rand::random::<[u8; 16]>())),
                );
            }
            for k in ["command_key", "username", "password"] {
                obj.entry(k).or_insert(json!(""));
            }
            obj.entry("delay_seconds").or_insert(json!(0));
        }
        "AddObject" | "DeleteObject" => {
            obj.entry("parameter_key").or_insert(json!(""));
        }
        "Reboot" | "ScheduleInform" | "CancelTransfer" => {
            obj.entry("command_key").or_insert(json!(""));
        }
        "GetParameterNames" => {
            obj.entry("parameter_path").or_insert(json!(""));
            obj.entry("next_level").or_insert(json!(false));
        }
        "GetOptions" => {
            obj.entry("option_name").or_insert(json!(""));
        }
        _ => {}
    }
    Ok(args)
}

/// Checks a task against the device's data model and types SetParameterValues values: the
/// device's last reported xsi:type, else the model's, else xsd:string. A refusal lists every bad
/// item with its reason (HTTP 422).
async fn check_with_model(
    state: &AppState,
    device_id: &str,
    root: &str,
    kind: &str,
    args: &mut Value,
    force: bool,
) -> Result<(), HttpResponse> {
    let known = if kind == "SetParameterValues" {
        state
            .store
            .get_parameters(device_id, None)
            .await
            .map_err(store_error)?
    } else {
        Vec::new()
    };
    let reported = |path: &str| {
        known
            .iter()
            .find(|k| k.path == path)
            .and_then(|k| k.xsd_type.clone())
    };
    if let Some(model) = state.dm.model_for_root(root).filter(|_| !force) {
        if let Err(problems) = crate::dm::check_task(model, kind, args, reported) {
            tracing::info!(device = %device_id, kind, problems = problems.len(), "task refused by the data model");
            return Err(problem_with(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{kind} refused by the {} data model", model.name()),
                json!({ "problems": problems }),
            ));
        }
    }
    if let Some(Value::Array(list)) = args.get_mut("parameter_list") {
        for item in list.iter_mut() {
            let Some(p) = item.as_object_mut() else {
                continue;
            };
            if p.get("xsi_type")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                let name = p.get("name").and_then(Value::as_str).unwrap_or("");
                let ty = reported(name).unwrap_or_else(|| "xsd:string".into());
                p.insert("xsi_type".into(), json!(ty));
            }
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskListParams {
    device: Option<String>,
    status: Option<String>,
    kind: Option<String>,
    /// Cursor: the `next_cursor` of the previous page (tasks older than it).
    cursor: Option<i64>,
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn list_tasks(
    q: web::Query<TaskListParams>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    tasks_response(&state, &p, q.into_inner(), None).await
}

async fn device_tasks(
    id: web::Path<String>,
    q: web::Query<TaskListParams>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    if let Err(r) = device_visible(&state, &p, &id, Perm::DevicesRead).await {
        return r;
    }
    let mut q = q.into_inner();
    q.device = Some(id.into_inner());
    tasks_response(&state, &p, q, None).await
}

/// A page of tasks, newest first, with `next_cursor` when more may follow.
async fn tasks_response(
    state: &AppState,
    p: &Principal,
    q: TaskListParams,
    faults: Option<FaultFilters>,
) -> HttpResponse {
    if let Err(r) = p.require(Perm::DevicesRead) {
        return r;
    }
    let status = match q.status.as_deref().map(str::parse::<store::TaskStatus>) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
    let is_faults = faults.is_some();
    let f = faults.unwrap_or_default();
    let query = store::TaskQuery {
        device_id: q.device,
        status: if is_faults {
            Some(store::TaskStatus::Fault)
        } else {
            status
        },
        kind: q.kind,
        fault_code: f.code,
        acknowledged: f.acknowledged,
        scopes: p.scopes.clone(),
        before: q.cursor,
        limit,
        offset: q.offset.unwrap_or(0).max(0),
    };
    match state.store.list_tasks(query).await {
        Ok((t, total)) => {
            let next = (i64::try_from(t.len()).unwrap_or(i64::MAX) >= limit)
                .then(|| t.last().map(|t| t.id))
                .flatten();
            let list: Vec<Value> = t.iter().map(task_json).collect();
            if is_faults {
                HttpResponse::Ok()
                    .json(json!({ "total": total, "faults": list, "next_cursor": next }))
            } else {
                HttpResponse::Ok()
                    .json(json!({ "total": total, "tasks": list, "next_cursor": next }))
            }
        }
        Err(e) => store_error(e),
    }
}

async fn get_task(id: web::Path<i64>, state: web::Data<AppState>, p: Principal) -> HttpResponse {
    match task_for(&state, &p, *id, Some(Perm::DevicesRead)).await {
        Ok(t) => HttpResponse::Ok().json(json!({ "task": task_json(&t) })),
        Err(r) => r,
    }
}

async fn cancel_task(
    req: HttpRequest,
    id: web::Path<i64>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    note(
        &req,
        "task.cancel",
        format!("task {id}"),
        Vec::new(),
        Value::Null,
    );
    let task = match task_for(&state, &p, *id, None).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    note(
        &req,
        "task.cancel",
        format!("task {id}"),
        vec![task.device_id.clone()],
        json!({ "kind": task.kind }),
    );
    match state.store.cancel_task(*id).await {
        Ok(Some(t)) if t.status == store::TaskStatus::Cancelled => {
            HttpResponse::Ok().json(json!({ "task": task_json(&t) }))
        }
        Ok(_) => error(
            StatusCode::CONFLICT,
            format!("task {id} is not pending, running or waiting"),
        ),
        Err(e) => store_error(e),
    }
}

/// `POST /api/v1/tasks/{id}/retry`: queues a new task with the kind and arguments of a
/// finished one (faulted, expired or cancelled). 201 with the new task.
async fn retry_task(
    req: HttpRequest,
    id: web::Path<i64>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    note(
        &req,
        "task.retry",
        format!("task {id}"),
        Vec::new(),
        Value::Null,
    );
    let old = match task_for(&state, &p, *id, None).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    note(
        &req,
        "task.retry",
        format!("task {id}"),
        vec![old.device_id.clone()],
        json!({ "kind": old.kind }),
    );
    if !matches!(
        old.status,
        store::TaskStatus::Fault | store::TaskStatus::Expired | store::TaskStatus::Cancelled
    ) {
        return error(
            StatusCode::CONFLICT,
            format!(
                "task {id} is {}: only faulted, expired or cancelled tasks are retried",
                old.status.as_str()
            ),
        );
    }
    let expires_at =
        match expires_at(i64::try_from(state.cfg.cwmp.task_expiry_secs).unwrap_or(i64::MAX)) {
            Ok(t) => t,
            Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
        };
    let new = store::NewTask {
        device_id: old.device_id.clone(),
        kind: old.kind.clone(),
        args: old.args.clone(),
        expires_at,
        max_attempts: old.max_attempts.max(1),
    };
    match state.store.create_task(new).await {
        Ok(t) => {
            state.sessions.mark_dirty(&t.device_id);
            crate::access::note_detail(&req, "new_task", json!(t.id));
            HttpResponse::Created().json(json!({ "task": task_json(&t), "retry_of": old.id }))
        }
        Err(e) => store_error(e),
    }
}

#[derive(Default)]
struct FaultFilters {
    code: Option<i32>,
    acknowledged: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultListParams {
    device: Option<String>,
    kind: Option<String>,
    code: Option<i32>,
    acknowledged: Option<bool>,
    cursor: Option<i64>,
    limit: Option<i64>,
}

/// `GET /api/v1/faults?device=&kind=&code=&acknowledged=&cursor=&limit=`: faulted tasks,
/// newest first.
async fn list_faults(
    q: web::Query<FaultListParams>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    let q = q.into_inner();
    let list = TaskListParams {
        device: q.device,
        status: None,
        kind: q.kind,
        cursor: q.cursor,
        limit: q.limit,
        offset: None,
    };
    let f = FaultFilters {
        code: q.code,
        acknowledged: q.acknowledged,
    };
    tasks_response(&state, &p, list, Some(f)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    ids: Vec<i64>,
}

/// `POST /api/v1/faults/acknowledge {"ids": [..]}`: marks faults seen; answers with the ids
/// acknowledged now (faults of devices outside the caller's scope are left alone).
async fn acknowledge_faults(
    req: HttpRequest,
    body: web::Json<AckBody>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    let ids = body.into_inner().ids;
    note(
        &req,
        "fault.acknowledge",
        format!("{} fault(s)", ids.len()),
        Vec::new(),
        json!({ "ids": ids }),
    );
    if let Err(r) = p.require(Perm::FaultsAck) {
        return r;
    }
    if ids.is_empty() || ids.len() > 10_000 {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "ids: 1 to 10,000 task ids",
        );
    }
    let mut mine = Vec::with_capacity(ids.len());
    let mut devices = Vec::new();
    for id in &ids {
        if let Ok(t) = task_for(&state, &p, *id, Some(Perm::FaultsAck)).await {
            if !devices.contains(&t.device_id) {
                devices.push(t.device_id.clone());
            }
            mine.push(*id);
        }
    }
    match state.store.acknowledge_faults(mine, &p.actor).await {
        Ok(done) => {
            if let Some(n) = req.extensions_mut().get_mut::<crate::access::AuditNote>() {
                n.devices = devices;
            }
            crate::access::note_detail(&req, "acknowledged", json!(done));
            HttpResponse::Ok().json(json!({ "acknowledged": done }))
        }
        Err(e) => store_error(e),
    }
}

async fn connection_request(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    note(
        &req,
        "device.connection_request",
        id.as_str(),
        vec![id.to_string()],
        Value::Null,
    );
    let device = match device_for(&state, &p, &id, Perm::Refresh).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    HttpResponse::Ok().json(crate::connreq::wake(&state, &device).await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceFilter {
    device: Option<String>,
}

/// A file the caller may see: a fleet file, or one of a device in its scope.
async fn file_for(
    state: &AppState,
    p: &Principal,
    id: &str,
) -> Result<store::FileRow, HttpResponse> {
    p.require(Perm::DevicesRead)?;
    let f = match state.store.get_file(id).await {
        Ok(Some(f)) => f,
        Ok(None) => return Err(error(StatusCode::NOT_FOUND, format!("no file {id}"))),
        Err(e) => return Err(store_error(e)),
    };
    if let Some(dev) = &f.device_id {
        match state.store.device_in_scope(dev, &p.scopes).await {
            Ok(true) => {}
            Ok(false) => return Err(error(StatusCode::NOT_FOUND, format!("no file {id}"))),
            Err(e) => return Err(store_error(e)),
        }
    }
    Ok(f)
}

async fn list_files(
    q: web::Query<DeviceFilter>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    if let Err(r) = p.require(Perm::DevicesRead) {
        return r;
    }
    match state.store.list_files(q.device.as_deref(), &p.scopes).await {
        Ok(f) => HttpResponse::Ok().json(json!({ "files": f })),
        Err(e) => store_error(e),
    }
}

#[derive(Deserialize)]
struct FileParams {
    name: String,
    file_type: Option<String>,
    version: Option<String>,
    oui: Option<String>,
    product_class: Option<String>,
}

/// `POST /api/v1/files?name=fw.bin&file_type=1%20Firmware%20Upgrade%20Image&version=2.4.1`
/// with the file as the raw body (or multipart).
async fn upload_file(
    req: HttpRequest,
    q: web::Query<FileParams>,
    payload: web::Payload,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    let q = q.into_inner();
    note(
        &req,
        "file.upload",
        q.name.clone(),
        Vec::new(),
        json!({ "file_type": q.file_type, "version": q.version, "oui": q.oui, "product_class": q.product_class }),
    );
    if let Err(r) = p.require(Perm::Files) {
        return r;
    }
    if q.name.is_empty() || q.name.contains('/') {
        return error(StatusCode::BAD_REQUEST, "name must be a plain file name");
    }
    let (path, size, sha, ctype) = match crate::files::receive_body(
        &req,
        payload,
        &state.cfg.files_dir(),
        state.cfg.files.max_file_bytes,
    )
    .await
    {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let new = store::NewFile {
        id: None,
        name: q.name,
        file_type: q
            .file_type
            .unwrap_or_else(|| "1 Firmware Upgrade Image".into()),
        oui: q.oui.unwrap_or_default(),
        product_class: q.product_class.unwrap_or_default(),
        version: q.version.unwrap_or_default(),
        size,
        sha256: sha,
        content_type: ctype,
        stored_path: path.to_string_lossy().into_owned(),
        device_id: None,
        task_id: None,
    };
    match state.store.insert_file(new).await {
        Ok(row) => {
            if let Some(n) = req.extensions_mut().get_mut::<crate::access::AuditNote>() {
                n.target = format!("file {}", row.id);
            }
            crate::access::note_detail(&req, "sha256", json!(row.sha256));
            crate::access::note_detail(&req, "size", json!(row.size));
            let url = format!(
                "{}/files/{}/{}",
                state.public_url,
                row.id,
                ids::url_segment(&row.name)
            );
            HttpResponse::Created().json(json!({ "file": row, "url": url }))
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            store_error(e)
        }
    }
}

async fn get_file(id: web::Path<String>, state: web::Data<AppState>, p: Principal) -> HttpResponse {
    match file_for(&state, &p, &id).await {
        Ok(f) => HttpResponse::Ok().json(json!({ "file": f })),
        Err(r) => r,
    }
}

async fn delete_file(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    note(
        &req,
        "file.delete",
        format!("file {id}"),
        Vec::new(),
        Value::Null,
    );
    let f = match file_for(&state, &p, &id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = p.require(Perm::Files) {
        return r;
    }
    note(
        &req,
        "file.delete",
        format!("file {id}"),
        f.device_id.iter().cloned().collect(),
        json!({ "name": f.name, "sha256": f.sha256 }),
    );
    match state.store.delete_file(&id).await {
        Ok(Some(f)) => {
            if let Err(e) = tokio::fs::remove_file(&f.stored_path).await {
                tracing::warn!(file = %id, error = %e, "removing file content");
            }
            HttpResponse::NoContent().finish()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no file {id}")),
        Err(e) => store_error(e),
    }
}

#[derive(Deserialize)]
struct SampleParams {
    device: Option<String>,
    /// Exact path, or a subtree when it ends with '.'.
    path: Option<String>,
    /// RFC 3339 bounds: from (inclusive), to (exclusive).
    from: Option<String>,
    to: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

// The error is the handler's finished answer, returned at once.
#[allow(clippy::result_large_err)]
fn rfc3339(
    name: &str,
    v: Option<&str>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, HttpResponse> {
    match v {
        None => Ok(None),
        Some(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&chrono::Utc)))
            .map_err(|e| {
                error(
                    StatusCode::BAD_REQUEST,
                    format!("{name}: {e} (use RFC 3339)"),
                )
            }),
    }
}

/// `GET /api/v1/bulkdata/samples?device=&path=&from=&to=`: bulk-data samples, newest first.
async fn list_samples(
    q: web::Query<SampleParams>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    let q = q.into_inner();
    match &q.device {
        // Samples are kept for devices the ACS has not seen yet: a fleet-wide caller reads
        // them by id; a scoped one only of devices in its scope.
        Some(d) if !p.fleet_wide() => {
            if let Err(r) = device_visible(&state, &p, d, Perm::BulkdataRead).await {
                return r;
            }
        }
        Some(_) => {
            if let Err(r) = p.require(Perm::BulkdataRead) {
                return r;
            }
        }
        None => {
            if let Err(r) = p.require(Perm::BulkdataRead) {
                return r;
            }
            if !p.fleet_wide() {
                return error(
                    StatusCode::FORBIDDEN,
                    "a caller with a device scope reads bulk data one device at a time (device=)",
                );
            }
        }
    }
    let (from, to) = match (
        rfc3339("from", q.from.as_deref()),
        rfc3339("to", q.to.as_deref()),
    ) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let query = store::SampleQuery {
        device_id: q.device,
        path: q.path,
        from,
        to,
        limit: q.limit.unwrap_or(100).clamp(1, 10_000),
        offset: q.offset.unwrap_or(0).max(0),
    };
    match state.store.query_samples(query).await {
        Ok(s) => HttpResponse::Ok().json(json!({ "samples": s })),
        Err(e) => store_error(e),
    }
}

/// `POST /api/v1/ipdr/documents`: an IPDR/XML or IPDR/XDR document; 200 with what was
/// stored, once it is durable. A document posted again stores nothing new.
async fn post_ipdr_document(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    note(&req, "ipdr.document", "", Vec::new(), Value::Null);
    if let Err(r) = p.require(Perm::BulkdataWrite) {
        return r;
    }
    let max = state.cfg.ipdr.max_document_bytes;
    let timeout = Duration::from_secs(state.cfg.nbi.body_timeout_secs.max(1));
    let body = match crate::body::read(&req, payload, max, timeout).await {
        Ok(b) => b,
        Err(e) => return e.problem(),
    };
    match crate::ipdrdoc::ingest(&state.store, body.to_vec(), max, "nbi", None).await {
        Ok(out) => {
            if let Some(n) = req.extensions_mut().get_mut::<crate::access::AuditNote>() {
                n.detail = serde_json::to_value(&out).unwrap_or(Value::Null);
            }
            HttpResponse::Ok().json(out)
        }
        Err(crate::ipdrdoc::IngestError::Invalid(reason)) => {
            tracing::warn!(%reason, "IPDR document refused");
            error(
                StatusCode::BAD_REQUEST,
                format!("invalid IPDR document: {reason}"),
            )
        }
        Err(crate::ipdrdoc::IngestError::Forbidden(reason)) => error(StatusCode::FORBIDDEN, reason),
        Err(e @ crate::ipdrdoc::IngestError::Store(_)) => {
            tracing::error!(error = %e, "storing IPDR document failed");
            error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
    }
}

async fn list_exporters(state: web::Data<AppState>, p: Principal) -> HttpResponse {
    if let Err(r) = p.require(Perm::BulkdataRead) {
        return r;
    }
    match state.store.list_ipdr_exporters().await {
        Ok(e) => HttpResponse::Ok().json(json!({ "exporters": e })),
        Err(e) => store_error(e),
    }
}

#[derive(Deserialize)]
struct ExporterFilter {
    exporter: Option<String>,
}

async fn list_ipdr_sessions(
    q: web::Query<ExporterFilter>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    if let Err(r) = p.require(Perm::BulkdataRead) {
        return r;
    }
    match state.store.list_ipdr_sessions(q.exporter.as_deref()).await {
        Ok(s) => HttpResponse::Ok().json(json!({ "sessions": s })),
        Err(e) => store_error(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IpdrRecordParams {
    exporter: Option<String>,
    session: Option<i32>,
    document: Option<String>,
    template: Option<i32>,
    device: Option<String>,
    /// RFC 3339 bounds on the time received: from (inclusive), to (exclusive).
    from: Option<String>,
    to: Option<String>,
    cursor: Option<i64>,
    limit: Option<i64>,
    /// `json` (default), `jsonl` or `csv` (one column per field name found).
    format: Option<String>,
}

/// `GET /api/v1/ipdr/records`: IPDR records of templates other than TR-232 (DOCSIS SAMIS and
/// the like; TR-232 reports are read as bulk-data samples), newest first, by exporter,
/// session, document, template, device and time received.
async fn list_ipdr_records(
    q: web::Query<IpdrRecordParams>,
    state: web::Data<AppState>,
    p: Principal,
) -> HttpResponse {
    if let Err(r) = p.require(Perm::BulkdataRead) {
        return r;
    }
    let q = q.into_inner();
    let (from, to) = match (
        rfc3339("from", q.from.as_deref()),
        rfc3339("to", q.to.as_deref()),
    ) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let format = q.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "jsonl" | "csv") {
        return error(StatusCode::BAD_REQUEST, "format is json, jsonl or csv");
    }
    let limit = q
        .limit
        .unwrap_or(if format == "json" { 100 } else { 10_000 })
        .clamp(1, 10_000);
    let query = store::IpdrRecordQuery {
        exporter: q.exporter,
        session_id: q.session,
        document_id: q.document,
        template_id: q.template,
        device_id: q.device,
        from,
        to,
        before: q.cursor,
        scopes: p.scopes.clone(),
        limit,
    };
    let rows = match state.store.ipdr_records(query).await {
        Ok(r) => r,
        Err(e) => return store_error(e),
    };
    let next = (i64::try_from(rows.len()).unwrap_or(i64::MAX) >= limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let mut resp = HttpResponse::Ok();
    if let Some(n) = next {
        resp.insert_header(("X-Next-Cursor", n.to_string()));
    }
    match format {
        "jsonl" => {
            let mut out = String::new();
            for r in &rows {
                out.push_str(&serde_json::to_string(r).unwrap_or_default());
                out.push('\n');
            }
            resp.content_type("application/x-ndjson").body(out)
        }
        "csv" => {
            let mut names: Vec<&str> = rows
                .iter()
                .filter_map(|r| r.fields.as_object())
                .flat_map(|o| o.keys().map(String::as_str))
                .collect();
            names.sort_unstable();
            names.dedup();
            let mut w = csv::Writer::from_writer(Vec::new());
            let mut head = vec![
                "id",
                "exporter",
                "session",
                "document",
                "sequence",
                "template",
                "received_at",
                "device",
            ];
            head.extend(names.iter().copied());
            let _ = w.write_record(&head);
            for r in &rows {
                let mut rec = vec![
                    r.id.to_string(),
                    r.exporter_id.clone(),
                    r.session_id.to_string(),
                    r.document_id.clone(),
                    r.sequence.to_string(),
                    r.template_id.to_string(),
                    r.received_at.to_rfc3339(),
                    r.device_id.clone().unwrap_or_default(),
                ];
                for n in &names {
                    rec.push(match r.fields.get(*n) {
                        None | Some(Value::Null) => String::new(),
                        Some(Value::String(s)) => s.clone(),
                        Some(v) => v.to_string(),
                    });
                }
                let _ = w.write_record(&rec);
            }
            resp.content_type("text/csv; charset=utf-8")
                .body(w.into_inner().unwrap_or_default())
        }
        _ => resp.json(json!({ "records": rows, "next_cursor": next })),
    }
}
