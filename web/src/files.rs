//! The file server CPEs download from (range requests via actix-files) and the receiver for the
//! Upload RPC (PUT, or POST raw or multipart — checklist P28). Files live under
//! `<data_dir>/files/`, their metadata in the database.

use std::path::PathBuf;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use sha2::Digest;
use tokio::io::AsyncWriteExt;

use crate::app::AppState;

/// Largest file accepted from a CPE or the NBI.
pub const MAX_FILE_BYTES: usize = 1 << 30;

pub fn cpe_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/files/{id}/{name}", web::get().to(download))
        .route("/files/{id}/{name}", web::head().to(download))
        .route("/files/{id}", web::get().to(download_by_id))
        .route("/upload/{task}/{key}/{name}", web::put().to(upload))
        .route("/upload/{task}/{key}/{name}", web::post().to(upload))
        .route("/upload/{task}/{key}", web::put().to(upload_noname))
        .route("/upload/{task}/{key}", web::post().to(upload_noname));
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

/// Writes a request body (raw or the first multipart file part) to a new file under the data
/// directory, returning (path, size, sha256 hex, content type).
pub async fn receive_body(
    req: &HttpRequest,
    payload: web::Payload,
    dir: &std::path::Path,
) -> Result<(PathBuf, i64, String, String), HttpResponse> {
    tokio::fs::create_dir_all(dir).await.map_err(internal)?;
    let id = uuid::Uuid::new_v4().to_string();
    let path = dir.join(&id);
    let mut file = tokio::fs::File::create(&path).await.map_err(internal)?;
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
                    size += chunk.len();
                    if size > MAX_FILE_BYTES {
                        return Err(HttpResponse::PayloadTooLarge().finish());
                    }
                    hasher.update(&chunk);
                    file.write_all(&chunk).await.map_err(internal)?;
                }
            }
            if !got {
                return Err(HttpResponse::BadRequest().body("multipart body without a part"));
            }
        } else {
            let mut payload = payload;
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(bad)?;
                size += chunk.len();
                if size > MAX_FILE_BYTES {
                    return Err(HttpResponse::PayloadTooLarge().finish());
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
        size as i64,
        hex::encode(hasher.finalize()),
        content_type,
    ))
}

fn internal(e: impl std::fmt::Display) -> HttpResponse {
    tracing::error!(error = %e, "file storage error");
    HttpResponse::InternalServerError().body("file storage error")
}

fn bad(e: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::BadRequest().body(format!("bad upload body: {e}"))
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

/// Accepts the file of an Upload task. The URL names the task and carries its command key,
/// which only the device we sent the Upload to knows.
async fn receive_upload(
    req: &HttpRequest,
    task_id: i64,
    token: &str,
    name: &str,
    payload: web::Payload,
    state: &AppState,
) -> HttpResponse {
    let task = match state.store.get_task(task_id).await {
        Ok(Some(t)) if t.kind == "Upload" && t.command_key.as_deref() == Some(token) => t,
        Ok(_) => {
            tracing::warn!(task_id, "upload for an unknown task");
            return HttpResponse::NotFound().body("no such upload");
        }
        Err(e) => {
            tracing::error!(error = %e, "task lookup failed");
            return HttpResponse::ServiceUnavailable().finish();
        }
    };
    let dir = state.cfg.files_dir();
    let (path, size, sha, ctype) = match receive_body(req, payload, &dir).await {
        Ok(x) => x,
        Err(resp) => return resp,
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
            tracing::error!(error = %e, "recording upload failed");
            HttpResponse::ServiceUnavailable().finish()
        }
    }
}
