//! HTTP bulk data (TR-069 Annex N): CPEs POST (or PUT) JSON or CSV reports to
//! `/bulkdata?oui=…&pc=…&sn=…` on the CWMP listeners. Authenticated like CWMP (Digest, or Basic
//! over TLS); the 2xx is sent only after the samples are committed. An XML or XDR body is an
//! IPDR document (see `ipdrdoc.rs`); its records name their devices, so the query is optional.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use std::collections::HashMap;

use crate::app::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/bulkdata", web::post().to(receive))
        .route("/bulkdata", web::put().to(receive));
}

/// XML (`application/xml`, `text/xml`, `…+xml`) or XDR (`application/x-ipdr-xdr`,
/// `application/octet-stream`) bodies are IPDR documents.
fn is_ipdr_document(content_type: &str) -> bool {
    let m = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    m == "application/xml"
        || m == "text/xml"
        || m.ends_with("+xml")
        || m == "application/x-ipdr-xdr"
        || m == "application/octet-stream"
}

fn bad(status: actix_web::http::StatusCode, msg: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(msg.into())
}

async fn receive(
    req: HttpRequest,
    q: web::Query<HashMap<String, String>>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    use actix_web::http::StatusCode;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    // IPDR documents (TR-232 File/XML or XDR encodings) name their devices themselves; with
    // CPE authentication on, the query still names the device that posts (and whose
    // credentials are checked), and the document may carry only its reports.
    let document = is_ipdr_document(&content_type);
    let auth_on = state.auth.is_some();
    let device_id = match (q.get("oui"), q.get("sn")) {
        (Some(oui), Some(sn)) if !oui.is_empty() && !sn.is_empty() => {
            let pc = q.get("pc").map(String::as_str).unwrap_or_default();
            Some(ids::canonical_device_id(oui, pc, sn))
        }
        _ if document && !auth_on => None,
        _ => {
            tracing::warn!(remote = ?req.peer_addr(), "bulk-data report without oui/sn");
            return crate::cwmp::without_body(bad(
                StatusCode::BAD_REQUEST,
                "query parameters oui and sn are required (they name the reporting device)",
            ));
        }
    };
    let conn = crate::cwmp::conn_info(&req);
    // Authenticate before reading a byte of the body: a 401 closes the connection with the
    // body unread.
    if let Some(id) = &device_id {
        if let Some(resp) = crate::cwmp::authenticate(&state, &req, &conn, id).await {
            return crate::cwmp::without_body(resp);
        }
    }
    let device_label = device_id.as_deref().unwrap_or("");
    let limit = if document {
        state.cfg.ipdr.max_document_bytes
    } else {
        state.limits.max_body_bytes
    };
    let timeout = std::time::Duration::from_secs(state.cfg.cwmp.body_timeout_secs.max(1));
    let body = match crate::body::read(&req, payload, limit, timeout).await {
        Ok(b) => b,
        Err(e) => {
            let resp = e.response();
            tracing::warn!(device = %device_label, status = %resp.status(), error = ?e, "bulk-data body refused");
            return resp;
        }
    };
    if document {
        let only = device_id.as_deref();
        return match crate::ipdrdoc::ingest(&state.store, body.to_vec(), limit, "http", only).await
        {
            Ok(_) => HttpResponse::NoContent().finish(),
            Err(crate::ipdrdoc::IngestError::Invalid(reason)) => {
                tracing::warn!(device = %device_label, %reason, "IPDR document refused");
                bad(
                    StatusCode::BAD_REQUEST,
                    format!("invalid IPDR document: {reason}"),
                )
            }
            Err(crate::ipdrdoc::IngestError::Forbidden(reason)) => {
                tracing::warn!(device = %device_label, %reason, "IPDR document naming other devices refused");
                bad(StatusCode::FORBIDDEN, reason)
            }
            Err(e) => {
                tracing::error!(device = %device_label, error = %e, "storing IPDR document failed");
                HttpResponse::ServiceUnavailable()
                    .insert_header((header::RETRY_AFTER, "30"))
                    .finish()
            }
        };
    }
    let Some(device_id) = device_id else {
        return bad(
            StatusCode::BAD_REQUEST,
            "query parameters oui and sn are required",
        );
    };
    let content_type = content_type.as_str();
    let format = req
        .headers()
        .get("BBF-Report-Format")
        .and_then(|v| v.to_str().ok());
    let reports = match ipdr::bulkhttp::parse_report(content_type, format, &body) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(device = %device_id, error = %e, "bulk-data report refused");
            let status = match e {
                ipdr::bulkhttp::BulkError::ContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                _ => StatusCode::BAD_REQUEST,
            };
            return bad(status, e.to_string());
        }
    };
    let source = if content_type.to_ascii_lowercase().contains("csv") {
        "http-csv"
    } else {
        "http-json"
    };
    let now = chrono::Utc::now();
    let samples: Vec<store::SampleIn> = reports
        .into_iter()
        .flat_map(|r| {
            let at = r.collection_time.unwrap_or(now);
            r.samples
                .into_iter()
                .map(move |(path, value)| store::SampleIn::new(path, value, at))
        })
        .collect();
    let n = samples.len();
    match state
        .store
        .insert_samples(Some(device_id.clone()), source, None, samples)
        .await
    {
        Ok(_) => {
            metrics::counter!("keelson_bulkdata_reports_total", "source" => source).increment(1);
            tracing::info!(device = %device_id, samples = n, source, "bulk-data report stored");
            HttpResponse::NoContent().finish()
        }
        Err(e) => {
            tracing::error!(device = %device_id, error = %e, "storing bulk-data report failed");
            HttpResponse::ServiceUnavailable()
                .insert_header((header::RETRY_AFTER, "30"))
                .finish()
        }
    }
}
