//! Error answers of the northbound API: RFC 9457 problem documents
//! (`application/problem+json`), one shape for every route.

use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;
use serde_json::{json, Value};

pub const CONTENT_TYPE: &str = "application/problem+json";

/// A problem document: `type` (about:blank), `title` (the status's reason), `status`, `detail`.
pub fn problem(status: StatusCode, detail: impl Into<String>) -> HttpResponse {
    problem_with(status, detail, Value::Null)
}

/// A problem document with extension members (an object's fields are merged in).
pub fn problem_with(status: StatusCode, detail: impl Into<String>, extra: Value) -> HttpResponse {
    let mut doc = json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail.into(),
    });
    if let (Some(d), Value::Object(x)) = (doc.as_object_mut(), extra) {
        for (k, v) in x {
            d.entry(k).or_insert(v);
        }
    }
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, CONTENT_TYPE))
        .body(doc.to_string())
}

/// 401 with the challenge a client needs.
pub fn unauthorized(detail: impl Into<String>) -> HttpResponse {
    let mut r = problem(StatusCode::UNAUTHORIZED, detail);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"keelson\""),
    );
    r
}
