//! The last net under every listener: a handler that panics answers 500 instead of dropping
//! the connection and losing the request. On the CWMP listeners the 500 carries a SOAP Fault
//! 8002 (Internal error), so a CPE backs off and retries as for any ACS fault; on the
//! northbound API it is an `application/problem+json` body.
//!
//! The panic itself is logged once, by the hook [`install_panic_hook`] sets, inside the
//! request's span (method, path, peer, and the CWMP span's device and session when the panic
//! came from there). Panics are defects: this layer keeps the server answering while they
//! are found and fixed, it is not a way of handling input.

use std::future::{ready, Future, Ready};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::Rc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{Error, HttpResponse};
use futures_util::FutureExt;
use tracing::Instrument;

/// Which kind of listener the layer protects (decides the 500's body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Cwmp,
    Nbi,
}

/// Installs a panic hook that logs the panic (message, location) as one `tracing` error in
/// the current span, instead of the default hook's unstructured line on stderr.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(non-string panic payload)".into());
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(panic = %msg, %location, "panic (a defect; the request is answered with 500)");
    }));
}

/// The 500 a panicking handler's request gets.
pub fn internal_error(listener: Listener) -> HttpResponse {
    let mut b = HttpResponse::build(StatusCode::INTERNAL_SERVER_ERROR);
    b.force_close();
    match listener {
        Listener::Cwmp => {
            let env = acs::codec::Envelope {
                ns: acs::codec::CWMP_NS_1_0.to_string(),
                header: acs::codec::Header::default(),
                body: acs::codec::Body::Fault(acs::codec::Fault::acs(8002, "Internal error")),
            };
            b.insert_header((
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/xml; charset=\"utf-8\""),
            ))
            .body(acs::codec::serialize(
                &env,
                &acs::codec::OutputStyle::default(),
            ))
        }
        Listener::Nbi => b.content_type("application/problem+json").body(
            serde_json::json!({
                "type": "about:blank",
                "title": "Internal Server Error",
                "status": 500,
                "detail": "internal error; the server log has the details",
            })
            .to_string(),
        ),
    }
}

/// The middleware factory: `App::new().wrap(CatchPanic(Listener::Cwmp))`.
#[derive(Debug, Clone, Copy)]
pub struct CatchPanic(pub Listener);

impl<S, B> Transform<S, ServiceRequest> for CatchPanic
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Transform = CatchPanicService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(CatchPanicService {
            service: Rc::new(service),
            listener: self.0,
        }))
    }
}

pub struct CatchPanicService<S> {
    service: Rc<S>,
    listener: Listener,
}

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

impl<S, B> Service<ServiceRequest> for CatchPanicService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Future = LocalBoxFuture<Result<Self::Response, Self::Error>>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let span = tracing::info_span!(
            "http",
            method = %req.method(),
            path = %req.path(),
            peer = ?req.peer_addr(),
        );
        let listener = self.listener;
        let service = self.service.clone();
        Box::pin(
            async move {
                let call = std::panic::catch_unwind(AssertUnwindSafe(|| service.call(req)));
                let outcome = match call {
                    Ok(fut) => AssertUnwindSafe(fut).catch_unwind().await,
                    Err(payload) => Err(payload),
                };
                match outcome {
                    Ok(res) => res.map(ServiceResponse::map_into_boxed_body),
                    // The request went down with the handler (routing needs it unshared, so
                    // no copy is kept): an error carrying the response is answered as it.
                    Err(_) => Err(actix_web::error::InternalError::from_response(
                        "handler panicked",
                        internal_error(listener),
                    )
                    .into()),
                }
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
#[allow(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used
)]
mod tests {
    use super::*;
    use actix_web::{test, web, App};

    async fn boom() -> HttpResponse {
        let v: Vec<u8> = Vec::new();
        // An out-of-bounds index, as a defect in a handler would do.
        let i = v.len() + 3;
        HttpResponse::Ok().body(vec![v[i]])
    }

    #[actix_web::test]
    async fn a_panicking_cwmp_handler_answers_8002() {
        let app = test::init_service(
            App::new()
                .wrap(CatchPanic(Listener::Cwmp))
                .route("/", web::post().to(boom))
                .route(
                    "/ok",
                    web::post().to(|| async { HttpResponse::Ok().body("fine") }),
                ),
        )
        .await;
        let err = test::try_call_service(&app, test::TestRequest::post().uri("/").to_request())
            .await
            .expect_err("the panic becomes an error response");
        let resp = err.error_response();
        assert_eq!(resp.status(), 500);
        let body = actix_web::body::to_bytes(resp.into_body()).await.unwrap();
        let env = acs::codec::parse(&body, &acs::codec::Limits::default()).unwrap();
        match env.body {
            acs::codec::Body::Fault(f) => assert_eq!(f.detail.fault_code, 8002),
            other => panic!("expected a fault, got {other:?}"),
        }
        // The service is still there for the next request.
        let resp =
            test::call_service(&app, test::TestRequest::post().uri("/ok").to_request()).await;
        assert_eq!(resp.status(), 200);
    }

    #[actix_web::test]
    async fn a_panicking_nbi_handler_answers_problem_json() {
        let app = test::init_service(
            App::new()
                .wrap(CatchPanic(Listener::Nbi))
                .route("/", web::get().to(boom)),
        )
        .await;
        let err = test::try_call_service(&app, test::TestRequest::get().uri("/").to_request())
            .await
            .expect_err("the panic becomes an error response");
        let resp = err.error_response();
        assert_eq!(resp.status(), 500);
        assert_eq!(
            resp.headers().get(header::CONTENT_TYPE).unwrap(),
            "application/problem+json"
        );
        let body = actix_web::body::to_bytes(resp.into_body()).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["status"], 500);
    }
}
