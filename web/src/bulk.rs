//! HTTP bulk data (TR-069 Annex N): CPEs POST (or PUT) JSON or CSV reports to
//! `/bulkdata?oui=…&pc=…&sn=…` on the CWMP listeners. Authenticated like CWMP (Digest, or Basic
//! over TLS); the 2xx is sent only after the samples are committed.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use std::collections::HashMap;

use crate::app::{AppState, ConnInfo};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/bulkdata", web::post().to(receive))
        .route("/bulkdata", web::put().to(receive));
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
    let (Some(oui), Some(sn)) = (q.get("oui"), q.get("sn")) else {
        tracing::warn!(remote = ?req.peer_addr(), "bulk-data report without oui/sn");
        return bad(
            StatusCode::BAD_REQUEST,
            "query parameters oui and sn are required",
        );
    };
    let identity = acs::codec::DeviceIdStruct {
        manufacturer: String::new(),
        oui: oui.to_ascii_uppercase(),
        product_class: q.get("pc").cloned().unwrap_or_default(),
        serial_number: sn.clone(),
    };
    let device_id = identity.canonical_id();
    let conn = req.conn_data::<ConnInfo>().cloned().unwrap_or(ConnInfo {
        id: 0,
        tls: false,
        client_cert: None,
    });
    // Read the body before answering, even with a 401, so the connection stays usable.
    let body = match crate::cwmp::read_body(&req, payload, state.limits.max_body_bytes).await {
        Ok(b) => b,
        Err(resp) => {
            tracing::warn!(device = %device_id, status = %resp.status(), "bulk-data body refused");
            return resp;
        }
    };
    if let Some(resp) = crate::cwmp::authenticate(&state, &req, &conn, &device_id).await {
        return resp;
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
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
