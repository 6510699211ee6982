//! The file server CPEs download from (range requests via actix-files) and the receiver for the
//! Upload RPC (PUT, or POST raw or multipart — checklist P28). Files live under
//! `<data_dir>/files/`, their metadata in the database.

use std::path::PathBuf;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use sha2::Digest;
use tokio::io::AsyncWriteExt;

use crate::app::AppState;
use crate::problem::problem;

/// Creates `dir` (and its parents) readable by this user only (0700).
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        b.mode(0o700);
        b.create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
    }
    #[cfg(not(unix))]
    b.create(dir)
}

/// A new file readable by this user only (0600).
async fn create_private_file(path: &std::path::Path) -> std::io::Result<tokio::fs::File> {
    let mut o = tokio::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    o.mode(0o600);
    o.open(path).await
}

pub fn cpe_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/files/{id}/{name}", web::get().to(download))
        .route("/files/{id}/{name}", web::head().to(download))
        .route("/files/{id}", web::get().to(download_by_id))
        .route("/upload/{task}/{token}/{name}", web::put().to(upload))
        .route("/upload/{task}/{token}/{name}", web::post().to(upload))
        .route("/upload/{task}/{token}", web::put().to(upload_noname))
        .route("/upload/{task}/{token}", web::post().to(upload_noname));
}

async fn download_by_id(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    serve_file(&req, &path, &state).await
}

async fn download(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> HttpResponse {
    serve_file(&req, &path.0, &state).await
}

async fn serve_file(req: &HttpRequest, id: &str, state: &AppState) -> HttpResponse {
    let row = match state.store.get_file(id).await {
        Ok(Some(r)) => r,
        Ok(None) => return HttpResponse::NotFound().body("no such file"),
        Err(e) => {
            tracing::error!(error = %e, "file lookup failed");
            return HttpResponse::ServiceUnavailable().finish();
        }
    };
    match actix_files::NamedFile::open_async(&row.stored_path).await {
        Ok(f) => f
            .use_etag(true)
            .use_last_modified(true)
            .set_content_type(
                row.content_type
                    .parse::<actix_web::mime::Mime>()
                    .unwrap_or(actix_web::mime::APPLICATION_OCTET_STREAM),
            )
            .into_response(req),
        Err(e) => {
            tracing::error!(file = %id, path = %row.stored_path, error = %e, "stored file missing");
            HttpResponse::NotFound().body("file content missing")
        }
    }
}

/// Writes a request body (raw or the first multipart file part) of at most `max` bytes to a
/// new private file under the data directory, returning (path, size, sha256 hex, content
/// type).
pub async fn receive_body(
    req: &HttpRequest,
    payload: web::Payload,
    dir: &std::path::Path,
    max: usize,
) -> Result<(PathBuf, i64, String, String), HttpResponse> {
    if let Some(len) = crate::body::declared_length(req) {
        if len > max {
            return Err(too_large(max));
        }
    }
    create_private_dir(dir).map_err(internal)?;
    let id = uuid::Uuid::new_v4().to_string();
    let path = dir.join(&id);
    let mut file = create_private_file(&path).await.map_err(internal)?;
    let mut hasher = sha2::Sha256::new();
    let mut size: usize = 0;
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    let mut content_type = ctype.clone();
    let result: Result<(), HttpResponse> = async {
        if ctype.to_ascii_lowercase().starts_with("multipart/") {
            let mut mp = actix_multipart::Multipart::new(req.headers(), payload);
            let mut got = false;
            while let Some(field) = mp.next().await {
                let mut field = field.map_err(bad)?;
                if got {
                    // Drain the remaining parts: only the first file is kept.
                    while let Some(c) = field.next().await {
                        c.map_err(bad)?;
                    }
                    continue;
                }
                got = true;
                if let Some(ct) = field.content_type() {
                    content_type = ct.to_string();
                }
                while let Some(chunk) = field.next().await {
                    let chunk = chunk.map_err(bad)?;
                    size = size.saturating_add(chunk.len());
                    if size > max {
                        return Err(too_large(max));
                    }
                    hasher.update(&chunk);
                    file.write_all(&chunk).await.map_err(internal)?;
                }
            }
            if !got {
                return Err(problem(
                    StatusCode::BAD_REQUEST,
                    "multipart body without a part",
                ));
            }
        } else {
            let mut payload = payload;
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(bad)?;
                size = size.saturating_add(chunk.len());
                if size > max {
                    return Err(too_large(max));
                }
                hasher.update(&chunk);
                file.write_all(&chunk).await.map_err(internal)?;
            }
        }
        file.sync_all().await.map_err(internal)?;
        Ok(())
    }
    .await;
    if let Err(resp) = result {
        let _ = tokio::fs::remove_file(&path).await;
        return Err(resp);
    }
    Ok((
        path,
        i64::try_from(size).unwrap_or(i64::MAX),
        hex::encode(hasher.finalize()),
        content_type,
    ))
}

// Upload errors are problem documents (RFC 9457), for the NBI and the CPE upload receiver.
fn too_large(max: usize) -> HttpResponse {
    let mut r = problem(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the file exceeds the {max}-byte limit"),
    );
    r.head_mut()
        .set_connection_type(actix_web::http::ConnectionType::Close);
    r
}

fn internal(e: impl std::fmt::Display) -> HttpResponse {
    tracing::error!(error = %e, "file storage error");
    problem(StatusCode::INTERNAL_SERVER_ERROR, "file storage error")
}

fn bad(e: impl std::fmt::Display) -> HttpResponse {
    problem(StatusCode::BAD_REQUEST, format!("bad upload body: {e}"))
}

async fn upload_noname(
    req: HttpRequest,
    path: web::Path<(i64, String)>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    receive_upload(&req, path.0, &path.1, "upload.bin", payload, &state).await
}

async fn upload(
    req: HttpRequest,
    path: web::Path<(i64, String, String)>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    receive_upload(&req, path.0, &path.1, &path.2, payload, &state).await
}

/// Accepts the file of an Upload task. The URL names the task and carries its single-use
/// 128-bit token, which only the device we sent the Upload to knows. One file per task, only
/// while the task runs or waits for its TransferComplete, from the device itself when CPE
/// authentication is on (checked before the body is read), at most `files.max_upload_bytes`.
async fn receive_upload(
    req: &HttpRequest,
    task_id: i64,
    token: &str,
    name: &str,
    payload: web::Payload,
    state: &AppState,
) -> HttpResponse {
    let refused = || {
        HttpResponse::NotFound()
            .force_close()
            .body("no such upload")
    };
    let task = match state.store.get_task(task_id).await {
        Ok(Some(t))
            if t.kind == "Upload"
                && matches!(
                    t.status,
                    store::TaskStatus::Running | store::TaskStatus::Waiting
                )
                && t.upload_token
                    .as_deref()
                    .is_some_and(|k| acs::auth::ct_eq(k.as_bytes(), token.as_bytes())) =>
        {
            t
        }
        Ok(_) => {
            tracing::warn!(task_id, remote = ?req.peer_addr(), "upload refused: no open Upload task with this token");
            return refused();
        }
        Err(e) => {
            tracing::error!(error = %e, "task lookup failed");
            return HttpResponse::ServiceUnavailable().finish();
        }
    };
    let conn = crate::cwmp::conn_info(req);
    // The file-server credentials the Upload RPC carried, or the device's own.
    let arg = |k: &str| task.args.get(k).and_then(|v| v.as_str()).unwrap_or("");
    let rpc_creds =
        Some((arg("username"), arg("password"))).filter(|(u, p)| !u.is_empty() && !p.is_empty());
    if let Some(resp) =
        crate::cwmp::authenticate_as(state, req, &conn, &task.device_id, rpc_creds).await
    {
        return crate::cwmp::without_body(resp);
    }
    // Claim the token before taking the body: a second upload on the same URL finds it gone.
    match state.store.claim_upload(task_id, token).await {
        Ok(Some(_)) => {}
        Ok(None) => return refused(),
        Err(e) => {
            tracing::error!(error = %e, "claiming the upload failed");
            return HttpResponse::ServiceUnavailable().finish();
        }
    }
    let dir = state.cfg.files_dir();
    let max = state.cfg.files.max_upload_bytes;
    let (path, size, sha, ctype) = match receive_body(req, payload, &dir, max).await {
        Ok(x) => x,
        Err(resp) => {
            if let Err(e) = state.store.release_upload(task_id, token).await {
                tracing::warn!(task_id, error = %e, "giving back the upload token failed");
            }
            tracing::warn!(device = %task.device_id, task_id, status = %resp.status(), "upload body refused");
            return resp;
        }
    };
    let file_type = task
        .args
        .get("file_type")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    let new = store::NewFile {
        id: None,
        name: name.to_string(),
        file_type,
        oui: String::new(),
        product_class: String::new(),
        version: String::new(),
        size,
        sha256: sha,
        content_type: ctype,
        stored_path: path.to_string_lossy().into_owned(),
        device_id: Some(task.device_id.clone()),
        task_id: Some(task.id),
    };
    match state.store.insert_file(new).await {
        Ok(row) => {
            tracing::info!(device = %task.device_id, task = task.id, file = %row.id, size, "upload received");
            HttpResponse::Created().finish()
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            let _ = state.store.release_upload(task_id, token).await;
            tracing::error!(error = %e, "recording upload failed");
            HttpResponse::ServiceUnavailable().finish()
        }
    }
}
