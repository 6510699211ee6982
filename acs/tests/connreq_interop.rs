//! Our connection-request client against our own CPE-side Digest verifier (the one the
//! simulator uses), over a real loopback socket.

use std::convert::Infallible;
use std::sync::Arc;

use acs::auth::{AuthConfig, AuthResult, Authenticator};
use acs::connreq::{http_connection_request, CrOptions, CrOutcome};
use bytes::Bytes;
use http_body_util::Empty;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

async fn cpe(realm: &str) -> std::net::SocketAddr {
    let auth = Arc::new(Authenticator::new(
        AuthConfig {
            realm: realm.into(),
            allow_basic_over_tls: false,
            ..AuthConfig::default()
        },
        [7u8; 32],
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (s, _) = listener.accept().await.unwrap();
            let auth = auth.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let auth = auth.clone();
                    async move {
                        let hdr = req
                            .headers()
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string();
                        let uri = req.uri().to_string();
                        let res = auth.verify_with_uri(&hdr, "GET", &uri, false, |u| {
                            (u == "cruser").then(|| "crpass".to_string())
                        });
                        let mut resp = Response::new(Empty::<Bytes>::new());
                        match res {
                            AuthResult::Ok { .. } => {}
                            other => {
                                if !hdr.is_empty() {
                                    eprintln!("verify: {other:?} for {hdr}");
                                }
                                *resp.status_mut() = StatusCode::UNAUTHORIZED;
                                for c in auth.challenge(matches!(other, AuthResult::Stale)) {
                                    resp.headers_mut()
                                        .append("www-authenticate", c.parse().unwrap());
                                }
                            }
                        }
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn client_and_verifier_agree() {
    let addr = cpe("Keelson CPE").await;
    let url = format!("http://{addr}/cr/abc?x=1");
    let ok = http_connection_request(&url, "cruser", "crpass", &CrOptions::default()).await;
    assert_eq!(ok, CrOutcome::Accepted);
    let bad = http_connection_request(&url, "cruser", "nope", &CrOptions::default()).await;
    assert_eq!(bad, CrOutcome::AuthFailed);
}
