//! Connection Requests (checklist §5.1, §5.2, §8.14, §8.15) against real
//! loopback servers.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use acs::connreq::{
    http_connection_request, udp_connection_request, udp_connection_request_message,
    udp_connection_request_signature, CrOptions, CrOutcome,
};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use md5::{Digest as _, Md5};
use sha1::Sha1;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

const REALM: &str = "IGD Authentication";
const CR_USER: &str = "cruser";
const CR_PASS: &str = "crpass";

fn md5_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

/// `key=value` pairs of a Digest header (values without quotes).
fn digest_params(header: &str) -> Option<HashMap<String, String>> {
    let rest = header.strip_prefix("Digest ")?;
    let mut out = HashMap::new();
    for part in rest.split(", ") {
        let (k, v) = part.split_once('=')?;
        out.insert(k.trim().to_owned(), v.trim().trim_matches('"').to_owned());
    }
    Some(out)
}

/// What the test CPE saw.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    host: Option<String>,
    authorization: Option<String>,
}

#[derive(Clone)]
struct Cpe {
    /// Nonces handed out, in order.
    nonces: Arc<Mutex<Vec<String>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    busy: bool,
    /// Answer the first correct response with `401 stale=true`.
    stale_once: Arc<AtomicBool>,
}

const OPAQUE: &str = "5ccc069c403ebaf9";

impl Cpe {
    fn new(busy: bool) -> Self {
        Cpe {
            nonces: Arc::default(),
            seen: Arc::default(),
            busy,
            stale_once: Arc::default(),
        }
    }

    /// Independent Digest check (RFC 2617, MD5, qop=auth).
    fn authorized(&self, target: &str, authorization: Option<&str>) -> bool {
        let Some(p) = authorization.and_then(digest_params) else {
            return false;
        };
        let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
        if get("username") != CR_USER
            || get("realm") != REALM
            || get("uri") != target
            || get("opaque") != OPAQUE
            || get("qop") != "auth"
            || !self
                .nonces
                .lock()
                .unwrap()
                .iter()
                .any(|n| n == get("nonce"))
        {
            return false;
        }
        let ha1 = md5_hex(&format!("{CR_USER}:{REALM}:{CR_PASS}"));
        let ha2 = md5_hex(&format!("GET:{target}"));
        let expected = md5_hex(&format!(
            "{ha1}:{}:{}:{}:auth:{ha2}",
            get("nonce"),
            get("nc"),
            get("cnonce")
        ));
        expected == get("response")
    }

    /// Status and extra headers for one request.
    fn answer(&self, seen: Seen) -> (u16, Vec<(&'static str, String)>) {
        let ok = self.authorized(&seen.target, seen.authorization.as_deref());
        self.seen.lock().unwrap().push(seen);
        if self.busy {
            return (503, vec![]);
        }
        let stale = ok && self.stale_once.swap(false, Ordering::SeqCst);
        if ok && !stale {
            return (204, vec![]);
        }
        let nonce = hex::encode(rand::random::<[u8; 8]>());
        let mut nonces = self.nonces.lock().unwrap();
        if stale {
            nonces.clear();
        }
        nonces.push(nonce.clone());
        let stale = if stale { ", stale=true" } else { "" };
        (
            401,
            vec![(
                "WWW-Authenticate",
                format!(
                    r#"Digest realm="{REALM}", nonce="{nonce}", qop="auth", opaque="{OPAQUE}"{stale}"#
                ),
            )],
        )
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn seen_of(req: &Request<Incoming>) -> Seen {
    Seen {
        method: req.method().to_string(),
        target: req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        host: req
            .headers()
            .get("host")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        authorization: req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

async fn serve_hyper<S>(io: S, cpe: Cpe, keep_alive: bool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let cpe = cpe.clone();
        async move {
            let (status, headers) = cpe.answer(seen_of(&req));
            let mut resp = Response::builder().status(StatusCode::from_u16(status).unwrap());
            for (k, v) in headers {
                resp = resp.header(k, v);
            }
            Ok::<_, Infallible>(resp.body(Empty::<Bytes>::new()).unwrap())
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(keep_alive)
        .serve_connection(TokioIo::new(io), svc)
        .await;
}

/// A hyper CPE. With `keep_alive == false` hyper answers the 401 with
/// `Connection: close` and closes.
async fn hyper_cpe(busy: bool, keep_alive: bool) -> (SocketAddr, Cpe) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cpe = Cpe::new(busy);
    let c = cpe.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(serve_hyper(stream, c.clone(), keep_alive));
        }
    });
    (addr, cpe)
}

/// A CPE that answers each connection's first request and then closes the
/// socket *without* announcing `Connection: close`.
async fn rude_cpe() -> (SocketAddr, Cpe) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cpe = Cpe::new(false);
    let c = cpe.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let c = c.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&buf).to_string();
                let mut lines = text.split("\r\n");
                let mut start = lines.next().unwrap().split(' ');
                let method = start.next().unwrap().to_owned();
                let target = start.next().unwrap().to_owned();
                let mut headers = HashMap::new();
                for l in lines.take_while(|l| !l.is_empty()) {
                    if let Some((k, v)) = l.split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                    }
                }
                let (status, extra) = c.answer(Seen {
                    method,
                    target,
                    host: headers.get("host").cloned(),
                    authorization: headers.get("authorization").cloned(),
                });
                let reason = if status == 401 {
                    "Unauthorized"
                } else {
                    "No Content"
                };
                let mut resp = format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\n");
                for (k, v) in extra {
                    resp.push_str(&format!("{k}: {v}\r\n"));
                }
                resp.push_str("\r\n");
                let _ = stream.write_all(resp.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (addr, cpe)
}

fn assert_digest_exchange(seen: &[Seen], addr: SocketAddr, target: &str) {
    assert_eq!(seen.len(), 2, "{seen:#?}");
    for s in seen {
        assert_eq!(s.method, "GET");
        assert_eq!(s.target, target);
        assert_eq!(s.host.as_deref(), Some(addr.to_string().as_str()));
    }
    assert!(seen[0].authorization.is_none());
    let p = digest_params(seen[1].authorization.as_deref().unwrap()).unwrap();
    assert_eq!(p["uri"], target);
    assert_eq!(p["opaque"], OPAQUE);
    assert_eq!(p["nc"], "00000001");
    assert_eq!(p["realm"], REALM);
}

#[tokio::test]
async fn correct_credentials_are_accepted() {
    let (addr, cpe) = hyper_cpe(false, true).await;
    let url = format!("http://{addr}/cr-4f2a?x=1&y=2");
    let out = http_connection_request(&url, CR_USER, CR_PASS, &CrOptions::default()).await;
    assert_eq!(out, CrOutcome::Accepted);
    assert_digest_exchange(&cpe.seen(), addr, "/cr-4f2a?x=1&y=2");
}

#[tokio::test]
async fn wrong_credentials_fail() {
    let (addr, cpe) = hyper_cpe(false, true).await;
    let url = format!("http://{addr}/cr");
    let out = http_connection_request(&url, CR_USER, "wrong", &CrOptions::default()).await;
    assert_eq!(out, CrOutcome::AuthFailed);
    assert_eq!(cpe.seen().len(), 2, "one challenge, one answer, no loop");
}

#[tokio::test]
async fn stale_nonce_earns_one_retry() {
    let (addr, cpe) = hyper_cpe(false, true).await;
    cpe.stale_once.store(true, Ordering::SeqCst);
    let out = http_connection_request(
        &format!("http://{addr}/cr"),
        CR_USER,
        CR_PASS,
        &CrOptions::default(),
    )
    .await;
    assert_eq!(out, CrOutcome::Accepted);
    assert_eq!(cpe.seen().len(), 3);
}

#[tokio::test]
async fn busy_cpe() {
    let (addr, _cpe) = hyper_cpe(true, true).await;
    let out = http_connection_request(
        &format!("http://{addr}/cr"),
        CR_USER,
        CR_PASS,
        &CrOptions::default(),
    )
    .await;
    assert_eq!(out, CrOutcome::Busy);
}

#[tokio::test]
async fn closed_port_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let out = http_connection_request(
        &format!("http://{addr}/cr"),
        CR_USER,
        CR_PASS,
        &CrOptions::default(),
    )
    .await;
    assert_eq!(out, CrOutcome::Refused);
}

#[tokio::test]
async fn close_after_401_announced() {
    let (addr, cpe) = hyper_cpe(false, false).await;
    let out = http_connection_request(
        &format!("http://{addr}/cr"),
        CR_USER,
        CR_PASS,
        &CrOptions::default(),
    )
    .await;
    assert_eq!(out, CrOutcome::Accepted);
    assert_digest_exchange(&cpe.seen(), addr, "/cr");
}

#[tokio::test]
async fn close_after_401_silently() {
    let (addr, cpe) = rude_cpe().await;
    let out = http_connection_request(
        &format!("http://{addr}/cr"),
        CR_USER,
        CR_PASS,
        &CrOptions::default(),
    )
    .await;
    assert_eq!(out, CrOutcome::Accepted);
    assert_digest_exchange(&cpe.seen(), addr, "/cr");
}

#[tokio::test]
async fn silent_cpe_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let opts = CrOptions {
        total_timeout: Duration::from_millis(400),
        ..CrOptions::default()
    };
    let started = Instant::now();
    let out = http_connection_request(&format!("http://{addr}/cr"), CR_USER, CR_PASS, &opts).await;
    assert_eq!(out, CrOutcome::Timeout);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn bad_urls() {
    for url in ["", "ftp://127.0.0.1/x", "not a url", "http:///nohost"] {
        let out = http_connection_request(url, CR_USER, CR_PASS, &CrOptions::default()).await;
        assert!(matches!(out, CrOutcome::Error(_)), "{url:?} -> {out:?}");
    }
}

#[tokio::test]
async fn basic_challenge_refused_by_default() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::<Option<String>>::new()));
    let s2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = s2.clone();
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let auth = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                seen.lock().unwrap().push(auth.clone());
                async move {
                    // "cruser:crpass"
                    let ok = auth.as_deref() == Some("Basic Y3J1c2VyOmNycGFzcw==");
                    let resp = if ok {
                        Response::builder().status(200)
                    } else {
                        Response::builder()
                            .status(401)
                            .header("WWW-Authenticate", r#"Basic realm="IGD Authentication""#)
                    };
                    Ok::<_, Infallible>(resp.body(Empty::<Bytes>::new()).unwrap())
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc),
            );
        }
    });
    let url = format!("http://{addr}/cr");
    let out = http_connection_request(&url, CR_USER, CR_PASS, &CrOptions::default()).await;
    assert_eq!(out, CrOutcome::AuthFailed);
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "no credentials sent in clear"
    );

    let opts = CrOptions {
        allow_basic: true,
        ..CrOptions::default()
    };
    assert_eq!(
        http_connection_request(&url, CR_USER, CR_PASS, &opts).await,
        CrOutcome::Accepted
    );
}

#[tokio::test]
async fn https_with_self_signed_certificate() {
    let ck = rcgen::generate_simple_self_signed(vec!["cpe.invalid".to_owned()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.key_pair.serialize_der().into());
    let server_cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![ck.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_cfg));

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cpe = Cpe::new(false);
    let c = cpe.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let c = c.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    serve_hyper(tls, c, true).await;
                }
            });
        }
    });

    let url = format!("https://{addr}/cr-tls");
    let out = http_connection_request(&url, CR_USER, CR_PASS, &CrOptions::default()).await;
    assert_eq!(out, CrOutcome::Accepted);
    assert_digest_exchange(&cpe.seen(), addr, "/cr-tls");

    // Verifying certificates without trust anchors fails.
    let strict = CrOptions {
        insecure_tls: false,
        ..CrOptions::default()
    };
    let out = http_connection_request(&url, CR_USER, CR_PASS, &strict).await;
    assert!(matches!(out, CrOutcome::Error(_)), "{out:?}");
}

// --- UDP (Annex G) ---------------------------------------------------------

#[test]
fn udp_hmac_vector() {
    let sig = udp_connection_request_signature(
        1_700_000_000,
        1_234_567,
        "cruser",
        "5e3f2a9c1b7d4e60",
        "crpass",
        false,
    );
    assert_eq!(sig, "1e69cbddf7c19d8da353b4caba42d8e168a00fbe");
    let upper = udp_connection_request_signature(
        1_700_000_000,
        1_234_567,
        "cruser",
        "5e3f2a9c1b7d4e60",
        "crpass",
        true,
    );
    assert_eq!(upper, "1E69CBDDF7C19D8DA353B4CABA42D8E168A00FBE");
}

#[test]
fn udp_datagram_section_8_15() {
    let msg = udp_connection_request_message(
        "203.0.113.5:50123",
        1_700_000_000,
        1_234_567,
        "cruser",
        "5e3f2a9c1b7d4e60",
        "crpass",
        true,
    );
    assert_eq!(
        msg,
        "GET http://203.0.113.5:50123?ts=1700000000&id=1234567&un=cruser&cn=5e3f2a9c1b7d4e60&sig=1E69CBDDF7C19D8DA353B4CABA42D8E168A00FBE HTTP/1.1\r\nHost: 203.0.113.5:50123\r\n\r\n"
    );
    let lower = udp_connection_request_message(
        "203.0.113.5:50123",
        1_700_000_000,
        1_234_567,
        "cruser",
        "5e3f2a9c1b7d4e60",
        "crpass",
        false,
    );
    assert!(lower.contains("&sig=1e69cbddf7c19d8da353b4caba42d8e168a00fbe HTTP/1.1\r\n"));
}

/// Parse a datagram like a CPE would and check its signature.
fn parse_udp_cr(datagram: &str, addr: &str) -> HashMap<String, String> {
    let (request_line, rest) = datagram.split_once("\r\n").unwrap();
    assert_eq!(rest, format!("Host: {addr}\r\n\r\n"));
    let target = request_line
        .strip_prefix("GET ")
        .and_then(|r| r.strip_suffix(" HTTP/1.1"))
        .unwrap();
    let query = target.strip_prefix(&format!("http://{addr}?")).unwrap();
    let q: HashMap<String, String> = query
        .split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let mut mac = Hmac::<Sha1>::new_from_slice(CR_PASS.as_bytes()).unwrap();
    mac.update(format!("{}{}{}{}", q["ts"], q["id"], q["un"], q["cn"]).as_bytes());
    let expected = hex::encode(mac.finalize().into_bytes());
    assert!(
        q["sig"].eq_ignore_ascii_case(&expected),
        "bad sig in {datagram:?}"
    );
    q
}

#[tokio::test]
async fn udp_three_copies_signed() {
    let cpe = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let cpe_addr = cpe.local_addr().unwrap().to_string();
    let stun = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let stun_addr = stun.local_addr().unwrap();

    let started = Instant::now();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let send = tokio::spawn({
        let cpe_addr = cpe_addr.clone();
        async move { udp_connection_request(&stun, &cpe_addr, CR_USER, CR_PASS).await }
    });

    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    for _ in 0..3 {
        let (n, from) = tokio::time::timeout(Duration::from_secs(3), cpe.recv_from(&mut buf))
            .await
            .expect("datagram")
            .unwrap();
        assert_eq!(from, stun_addr, "sent from the given socket");
        got.push(String::from_utf8(buf[..n].to_vec()).unwrap());
    }
    send.await.unwrap().unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "copies are spaced"
    );
    assert!(got.iter().all(|d| d == &got[0]), "three identical copies");

    let q = parse_udp_cr(&got[0], &cpe_addr);
    assert_eq!(q["un"], CR_USER);
    assert!(q["id"].parse::<u32>().is_ok());
    let ts: u64 = q["ts"].parse().unwrap();
    assert!(ts.abs_diff(now) <= 2, "ts is now");
    assert_eq!(q["cn"].len(), 16);
    assert!(q["cn"].bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(q["sig"].len(), 40);
    assert_eq!(
        q["sig"],
        q["sig"].to_ascii_uppercase(),
        "upper-case by default"
    );

    // A second request gets a fresh id and cnonce.
    let stun = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let send = tokio::spawn({
        let cpe_addr = cpe_addr.clone();
        async move { udp_connection_request(&stun, &cpe_addr, CR_USER, CR_PASS).await }
    });
    let (n, _) = cpe.recv_from(&mut buf).await.unwrap();
    let q2 = parse_udp_cr(std::str::from_utf8(&buf[..n]).unwrap(), &cpe_addr);
    assert_ne!(
        (q2["id"].as_str(), q2["cn"].as_str()),
        (q["id"].as_str(), q["cn"].as_str())
    );
    send.await.unwrap().unwrap();
}
