//! Northbound REST API, first slice (JSON over HTTP, shaped by TR-131's operations): devices,
//! parameters, events, tasks (with optional connection request and wait), faults, files.
//!
//! Authentication of OSS/BSS callers comes later; every route goes through [`routes`], the one
//! place to wrap with an auth middleware.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::connreq::CrReport;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(4 << 20)
            .error_handler(|e, _| {
                let msg = e.to_string();
                actix_web::error::InternalError::from_response(
                    e,
                    error(StatusCode::BAD_REQUEST, msg),
                )
                .into()
            }),
    )
    .app_data(web::QueryConfig::default().error_handler(|e, _| {
        let msg = e.to_string();
        actix_web::error::InternalError::from_response(e, error(StatusCode::BAD_REQUEST, msg))
            .into()
    }))
    .route("/healthz", web::get().to(health))
    .service(
        web::scope("/api/v1")
            .route("/devices", web::get().to(list_devices))
            .route("/devices/{id}", web::get().to(get_device))
            .route("/devices/{id}", web::delete().to(delete_device))
            .route("/devices/{id}/parameters", web::get().to(get_parameters))
            .route("/devices/{id}/events", web::get().to(get_events))
            .route("/devices/{id}/credentials", web::put().to(put_credentials))
            .route("/devices/{id}/tasks", web::post().to(create_task))
            .route("/devices/{id}/tasks", web::get().to(device_tasks))
            .route(
                "/devices/{id}/connection-request",
                web::post().to(connection_request),
            )
            .route("/tasks", web::get().to(list_tasks))
            .route("/tasks/{id}", web::get().to(get_task))
            .route("/tasks/{id}", web::delete().to(cancel_task))
            .route("/faults", web::get().to(list_faults))
            .route("/bulkdata/samples", web::get().to(list_samples))
            .route("/ipdr/exporters", web::get().to(list_exporters))
            .route("/ipdr/sessions", web::get().to(list_ipdr_sessions))
            .route("/ipdr/documents", web::post().to(post_ipdr_document))
            .route("/files", web::get().to(list_files))
            .route("/files", web::post().to(upload_file))
            .route("/files/{id}", web::get().to(get_file))
            .route("/files/{id}", web::delete().to(delete_file)),
    );
}

fn error(status: StatusCode, msg: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": msg.into() }))
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

fn store_error(e: store::StoreError) -> HttpResponse {
    tracing::error!(error = %e, "store error in the northbound API");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("storage error: {e}"),
    )
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
    HttpResponse::Ok().json(json!({
        "status": "ok",
        "active_sessions": state.sessions.active(),
        "connections": {
            "cwmp": listener(&state.cwmp_conns),
            "nbi": listener(&state.nbi_conns),
            "ipdr": listener(&state.ipdr_conns),
        },
    }))
}

#[derive(Deserialize)]
struct DeviceQueryParams {
    q: Option<String>,
    param: Option<String>,
    value: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn list_devices(
    q: web::Query<DeviceQueryParams>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let q = q.into_inner();
    let query = store::DeviceQuery {
        text: q.q,
        param_path: q.param,
        param_value: q.value,
        limit: q.limit.unwrap_or(100).clamp(1, 10_000),
        offset: q.offset.unwrap_or(0).max(0),
    };
    match state.store.list_devices(query).await {
        Ok((rows, total)) => HttpResponse::Ok().json(json!({ "total": total, "devices": rows })),
        Err(e) => store_error(e),
    }
}

async fn get_device(id: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let id = id.into_inner();
    let device = match state.store.get_device(&id).await {
        Ok(Some(d)) => d,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no device {id}")),
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
    HttpResponse::Ok().json(json!({
        "device": device,
        "in_session": state.sessions.in_session(&id),
        "parameters": params,
        "events": events,
    }))
}

async fn delete_device(id: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    match state.store.delete_device(&id).await {
        Ok(true) => HttpResponse::NoContent().finish(),
        Ok(false) => error(StatusCode::NOT_FOUND, format!("no device {id}")),
        Err(e) => store_error(e),
    }
}

#[derive(Deserialize)]
struct PrefixQuery {
    prefix: Option<String>,
}

async fn get_parameters(
    id: web::Path<String>,
    q: web::Query<PrefixQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let root = match state.store.get_device(&id).await {
        Ok(Some(d)) => d.root_object,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no device {id}")),
        Err(e) => return store_error(e),
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
) -> HttpResponse {
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
    id: web::Path<String>,
    body: web::Json<Credentials>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let c = body.into_inner();
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
        Ok(true) => HttpResponse::NoContent().finish(),
        Ok(false) => error(StatusCode::NOT_FOUND, format!("no device {id}")),
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
    id: web::Path<String>,
    q: web::Query<TaskQueryParams>,
    body: web::Json<NewTaskBody>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let device_id = id.into_inner();
    let body = body.into_inner();
    let device = match state.store.get_device(&device_id).await {
        Ok(Some(d)) => d,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no device {device_id}")),
        Err(e) => return store_error(e),
    };
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
    let mut args = match prepare_args(&state, &body.kind, body.args).await {
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
    tracing::info!(device = %device_id, task = task.id, kind = %task.kind, "task queued");
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
                let file = match state.store.get_file(&file_id).await.map_err(store_error)? {
                    Some(f) => f,
                    None => {
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
            return Err(HttpResponse::UnprocessableEntity().json(json!({
                "error": format!("{kind} refused by the {} data model", model.name()),
                "problems": problems,
            })));
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
struct TaskListParams {
    device: Option<String>,
    status: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn list_tasks(q: web::Query<TaskListParams>, state: web::Data<AppState>) -> HttpResponse {
    let q = q.into_inner();
    tasks_response(&state, q.device, q.status, q.limit, q.offset).await
}

async fn device_tasks(
    id: web::Path<String>,
    q: web::Query<TaskListParams>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let q = q.into_inner();
    tasks_response(&state, Some(id.into_inner()), q.status, q.limit, q.offset).await
}

async fn tasks_response(
    state: &AppState,
    device: Option<String>,
    status: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
) -> HttpResponse {
    let status = match status.as_deref().map(str::parse::<store::TaskStatus>) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let query = store::TaskQuery {
        device_id: device,
        status,
        limit: limit.unwrap_or(100).clamp(1, 10_000),
        offset: offset.unwrap_or(0).max(0),
    };
    match state.store.list_tasks(query).await {
        Ok((t, total)) => HttpResponse::Ok()
            .json(json!({ "total": total, "tasks": t.iter().map(task_json).collect::<Vec<_>>() })),
        Err(e) => store_error(e),
    }
}

async fn get_task(id: web::Path<i64>, state: web::Data<AppState>) -> HttpResponse {
    match state.store.get_task(*id).await {
        Ok(Some(t)) => HttpResponse::Ok().json(json!({ "task": task_json(&t) })),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no task {id}")),
        Err(e) => store_error(e),
    }
}

async fn cancel_task(id: web::Path<i64>, state: web::Data<AppState>) -> HttpResponse {
    match state.store.cancel_task(*id).await {
        Ok(Some(t)) => HttpResponse::Ok().json(json!({ "task": task_json(&t) })),
        Ok(None) => error(
            StatusCode::CONFLICT,
            format!("task {id} is not pending (or does not exist)"),
        ),
        Err(e) => store_error(e),
    }
}

#[derive(Deserialize)]
struct DeviceFilter {
    device: Option<String>,
}

async fn list_faults(q: web::Query<DeviceFilter>, state: web::Data<AppState>) -> HttpResponse {
    match state.store.list_faults(q.device.as_deref()).await {
        Ok(t) => HttpResponse::Ok()
            .json(json!({ "faults": t.iter().map(task_json).collect::<Vec<_>>() })),
        Err(e) => store_error(e),
    }
}

async fn connection_request(id: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let device = match state.store.get_device(&id).await {
        Ok(Some(d)) => d,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no device {id}")),
        Err(e) => return store_error(e),
    };
    HttpResponse::Ok().json(crate::connreq::wake(&state, &device).await)
}

async fn list_files(q: web::Query<DeviceFilter>, state: web::Data<AppState>) -> HttpResponse {
    match state.store.list_files(q.device.as_deref()).await {
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
) -> HttpResponse {
    let q = q.into_inner();
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

async fn get_file(id: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    match state.store.get_file(&id).await {
        Ok(Some(f)) => HttpResponse::Ok().json(json!({ "file": f })),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no file {id}")),
        Err(e) => store_error(e),
    }
}

async fn delete_file(id: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
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
async fn list_samples(q: web::Query<SampleParams>, state: web::Data<AppState>) -> HttpResponse {
    let q = q.into_inner();
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
) -> HttpResponse {
    let max = state.cfg.ipdr.max_document_bytes;
    let timeout = Duration::from_secs(state.cfg.nbi.body_timeout_secs.max(1));
    let body = match crate::body::read(&req, payload, max, timeout).await {
        Ok(b) => b,
        Err(e) => return e.response(),
    };
    match crate::ipdrdoc::ingest(&state.store, body.to_vec(), max, "nbi", None).await {
        Ok(out) => HttpResponse::Ok().json(out),
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

async fn list_exporters(state: web::Data<AppState>) -> HttpResponse {
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
) -> HttpResponse {
    match state.store.list_ipdr_sessions(q.exporter.as_deref()).await {
        Ok(s) => HttpResponse::Ok().json(json!({ "sessions": s })),
        Err(e) => store_error(e),
    }
}
