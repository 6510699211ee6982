//! Connection Requests: asking a CPE to open a CWMP session with us.
//!
//! * HTTP (TR-069 §3.2.2; checklist §5.1): an authenticated `GET` to the
//!   CPE's `ConnectionRequestURL` — [`http_connection_request`].
//! * UDP (Annex G; checklist §5.2): a signed, HTTP-like datagram to the CPE's
//!   `UDPConnectionRequestAddress`, normally sent from the STUN server's
//!   socket — [`udp_connection_request_message`] and
//!   [`udp_connection_request`].
//!
//! Rate limiting (one CR in flight per device, back-off, the ≥ 30 s wait for
//! the Inform, one distinct UDP CR per second per device) belongs to the
//! caller.

use std::error::Error as StdError;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONNECTION, HOST, USER_AGENT};
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha1::Sha1;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UdpSocket};

/// Largest response body we bother to read (CR answers are empty).
const MAX_BODY: usize = 64 * 1024;
const USER_AGENT_VALUE: &str = concat!("Keelson-ACS/", env!("CARGO_PKG_VERSION"));

/// Options of an HTTP Connection Request.
#[derive(Debug, Clone)]
pub struct CrOptions {
    /// Limit on establishing the TCP connection (each attempt). Default 5 s.
    pub connect_timeout: Duration,
    /// Limit on the whole exchange, retries and TLS included. Default 15 s.
    pub total_timeout: Duration,
    /// Answer a `Basic` challenge. Default `false`: TR-069 says the CPE
    /// authenticates the ACS with Digest, and Basic would put the
    /// ConnectionRequestPassword on the wire in clear (GenieACS keeps the
    /// same default).
    pub allow_basic: bool,
    /// Accept any certificate from an `https://` ConnectionRequestURL.
    ///
    /// Default `true`: CPEs serve their connection-request endpoint with
    /// self-signed certificates, usually issued for an address that is not
    /// the one we reach them on, and the URL came from the CPE's own Inform.
    /// The TLS channel still protects the exchange from passive observers,
    /// and the Digest exchange authenticates the request, not the CPE.
    /// Set it to `false` together with [`tls_roots`](Self::tls_roots) when
    /// the CPE certificates are issued by a CA you control.
    pub insecure_tls: bool,
    /// Trust anchors used when `insecure_tls` is `false`. With `None`
    /// nothing is trusted and every `https://` CR fails.
    pub tls_roots: Option<Arc<RootCertStore>>,
}

impl Default for CrOptions {
    fn default() -> Self {
        CrOptions {
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(15),
            allow_basic: false,
            insecure_tls: true,
            tls_roots: None,
        }
    }
}

/// Result of an HTTP Connection Request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrOutcome {
    /// The CPE answered 200 or 204: expect an Inform with `6 CONNECTION REQUEST`.
    Accepted,
    /// The CPE kept answering 401 (wrong credentials), or offered no
    /// challenge we may answer (e.g. Basic while `allow_basic` is off).
    AuthFailed,
    /// 503: the CPE rate-limits CRs (for a Virtual CWMP Device: the proxied
    /// device is offline).
    Busy,
    /// Connection refused or reset: offline or firewalled.
    Refused,
    /// Connect or total timeout.
    Timeout,
    /// Any other HTTP status.
    HttpStatus(u16),
    /// Bad URL, TLS failure, protocol error, ...
    Error(String),
    /// The URL names an address the caller does not allow (it is not where the device
    /// informed from): nothing was sent.
    Forbidden(String),
}

/// Which addresses a connection request may go to.
pub type TargetFilter<'a> = &'a (dyn Fn(std::net::IpAddr) -> bool + Send + Sync);

/// Send an HTTP Connection Request to `url` (`http://` or `https://`) with
/// the ConnectionRequestUsername/Password.
///
/// The flow: `GET` with `Host`; on a 401 with a Digest challenge, the same
/// `GET` with `Authorization: Digest …` (the `uri` is the URL's path and
/// query exactly as requested, `opaque` is echoed, `qop=auth` or none), on
/// the same connection unless the CPE closed it or announced
/// `Connection: close`, in which case a fresh connection is used. A second
/// 401 means wrong credentials, except with `stale=true`, which earns one
/// more attempt with the new nonce.
pub async fn http_connection_request(
    url: &str,
    username: &str,
    password: &str,
    opts: &CrOptions,
) -> CrOutcome {
    http_connection_request_to(url, username, password, opts, &|_| true).await
}

/// [`http_connection_request`] to addresses `allowed` accepts only: the URL's host is
/// resolved first, and only an allowed address is connected to (no second lookup, so a DNS
/// answer cannot change between the check and the connection).
pub async fn http_connection_request_to(
    url: &str,
    username: &str,
    password: &str,
    opts: &CrOptions,
    allowed: TargetFilter<'_>,
) -> CrOutcome {
    let target = match Target::parse(url) {
        Ok(t) => t,
        Err(e) => return CrOutcome::Error(e),
    };
    let work = async {
        let addr = resolve_allowed(&target, opts, allowed).await?;
        run(&target, addr, username, password, opts).await
    };
    match tokio::time::timeout(opts.total_timeout, work).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(fail)) => fail.into_outcome(),
        Err(_) => CrOutcome::Timeout,
    }
}

/// The first address of the target's host that `allowed` accepts.
async fn resolve_allowed(
    t: &Target,
    opts: &CrOptions,
    allowed: TargetFilter<'_>,
) -> Result<SocketAddr, Fail> {
    let addrs: Vec<SocketAddr> = match tokio::time::timeout(
        opts.connect_timeout,
        tokio::net::lookup_host((t.host.as_str(), t.port)),
    )
    .await
    {
        Ok(Ok(a)) => a.collect(),
        Ok(Err(e)) => return Err(Fail::Connect(e)),
        Err(_) => return Err(Fail::ConnectTimeout),
    };
    addrs
        .iter()
        .copied()
        .find(|a| allowed(a.ip()))
        .ok_or_else(|| {
            Fail::Forbidden(format!(
                "{} resolves to no address connection requests may go to",
                t.host
            ))
        })
}

/// A parsed ConnectionRequestURL.
#[derive(Debug)]
struct Target {
    tls: bool,
    /// Host for connecting and for SNI (IPv6 without brackets).
    host: String,
    port: u16,
    /// `Host` header value: the URL's authority without user info.
    host_header: String,
    /// Request target and Digest `uri`: path plus query.
    path_and_query: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, String> {
        let uri: Uri = url
            .trim()
            .parse()
            .map_err(|e| format!("invalid ConnectionRequestURL {url:?}: {e}"))?;
        let tls = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => false,
            Some(s) if s.eq_ignore_ascii_case("https") => true,
            _ => return Err(format!("ConnectionRequestURL {url:?} is not http(s)")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("ConnectionRequestURL {url:?} has no host"))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(format!("ConnectionRequestURL {url:?} has no host"));
        }
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let host_header = match authority.as_str().rsplit_once('@') {
            Some((_, h)) => h.to_owned(),
            None => authority.as_str().to_owned(),
        };
        let path_and_query = uri
            .path_and_query()
            .map(|pq| pq.as_str())
            .filter(|pq| !pq.is_empty())
            .unwrap_or("/")
            .to_owned();
        Ok(Target {
            tls,
            host,
            port,
            host_header,
            path_and_query,
        })
    }
}

/// Internal failure, mapped to a [`CrOutcome`] at the end.
#[derive(Debug)]
enum Fail {
    ConnectTimeout,
    Connect(io::Error),
    Tls(io::Error),
    Http(hyper::Error),
    Other(String),
    Forbidden(String),
}

impl Fail {
    fn into_outcome(self) -> CrOutcome {
        match self {
            Fail::ConnectTimeout => CrOutcome::Timeout,
            Fail::Connect(e) if is_refusal(&e) => CrOutcome::Refused,
            Fail::Connect(e) => CrOutcome::Error(format!("connect: {e}")),
            Fail::Tls(e) if is_refusal(&e) => CrOutcome::Refused,
            Fail::Tls(e) => CrOutcome::Error(format!("TLS handshake: {e}")),
            Fail::Http(e) => {
                if e.is_timeout() {
                    return CrOutcome::Timeout;
                }
                let mut src: Option<&(dyn StdError + 'static)> = e.source();
                while let Some(s) = src {
                    if let Some(io) = s.downcast_ref::<io::Error>() {
                        if is_refusal(io) {
                            return CrOutcome::Refused;
                        }
                    }
                    src = s.source();
                }
                CrOutcome::Error(format!("HTTP: {}", error_chain(&e)))
            }
            Fail::Other(msg) => CrOutcome::Error(msg),
            Fail::Forbidden(msg) => CrOutcome::Forbidden(msg),
        }
    }
}

fn is_refusal(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

fn error_chain(e: &dyn StdError) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

type Sender = SendRequest<Empty<Bytes>>;

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
}

async fn run(
    t: &Target,
    addr: SocketAddr,
    username: &str,
    password: &str,
    opts: &CrOptions,
) -> Result<CrOutcome, Fail> {
    let mut sender = connect(t, addr, opts).await?;
    let first = send(&mut sender, t, None).await?;
    match first.status.as_u16() {
        200 | 204 => return Ok(CrOutcome::Accepted),
        401 => {}
        503 => return Ok(CrOutcome::Busy),
        s => return Ok(CrOutcome::HttpStatus(s)),
    }

    let mut challenge = first.headers;
    for attempt in 0..2 {
        let Some(authorization) = authorization_for(&challenge, t, username, password, opts) else {
            return Ok(CrOutcome::AuthFailed);
        };
        // UTF-8 credentials travel as obs-text; control characters cannot.
        let Ok(authorization) = HeaderValue::from_bytes(authorization.as_bytes()) else {
            return Ok(CrOutcome::Error(
                "the credentials contain characters that cannot be sent in a header".into(),
            ));
        };
        let reusable = !announces_close(&challenge) && !sender.is_closed();
        if !reusable {
            sender = connect(t, addr, opts).await?;
        }
        let answer = match send(&mut sender, t, Some(&authorization)).await {
            Ok(a) => a,
            // The CPE closed the connection after its 401 without saying
            // so (or while we were sending): retry once on a fresh one.
            Err(Fail::Http(e)) if reusable => {
                tracing::debug!(host = %t.host_header, error = %e, "CR: connection lost after 401, reconnecting");
                sender = connect(t, addr, opts).await?;
                send(&mut sender, t, Some(&authorization)).await?
            }
            Err(e) => return Err(e),
        };
        match answer.status.as_u16() {
            200 | 204 => return Ok(CrOutcome::Accepted),
            401 if attempt == 0 && is_stale(&answer.headers) => challenge = answer.headers,
            401 => return Ok(CrOutcome::AuthFailed),
            503 => return Ok(CrOutcome::Busy),
            s => return Ok(CrOutcome::HttpStatus(s)),
        }
    }
    Ok(CrOutcome::AuthFailed)
}

async fn connect(t: &Target, addr: SocketAddr, opts: &CrOptions) -> Result<Sender, Fail> {
    let tcp = match tokio::time::timeout(opts.connect_timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(Fail::Connect(e)),
        Err(_) => return Err(Fail::ConnectTimeout),
    };
    let _ = tcp.set_nodelay(true);
    if !t.tls {
        return handshake(tcp, opts).await;
    }
    let server_name = ServerName::try_from(t.host.clone())
        .map_err(|e| Fail::Other(format!("invalid TLS server name {:?}: {e}", t.host)))?;
    let connector = tokio_rustls::TlsConnector::from(tls_client_config(opts)?);
    let tls = connector
        .connect(server_name, tcp)
        .await
        .map_err(Fail::Tls)?;
    handshake(tls, opts).await
}

async fn handshake<S>(io: S, opts: &CrOptions) -> Result<Sender, Fail>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Header names as real CPEs expect them (`Authorization: Digest …`): embedded stacks
    // such as easycwmp match them case-sensitively.
    let (sender, conn) = hyper::client::conn::http1::Builder::new()
        .title_case_headers(true)
        .handshake(TokioIo::new(io))
        .await
        .map_err(Fail::Http)?;
    // The connection task ends when the CPE closes or when the sender is
    // dropped; the timeout bounds it if a CPE never answers.
    let limit = opts.total_timeout;
    tokio::spawn(async move {
        let _ = tokio::time::timeout(limit, conn).await;
    });
    Ok(sender)
}

async fn send(
    sender: &mut Sender,
    t: &Target,
    authorization: Option<&HeaderValue>,
) -> Result<Answer, Fail> {
    sender.ready().await.map_err(Fail::Http)?;
    let mut req = Request::get(t.path_and_query.as_str())
        .header(HOST, t.host_header.as_str())
        .header(USER_AGENT, USER_AGENT_VALUE);
    if let Some(a) = authorization {
        req = req.header(AUTHORIZATION, a.clone());
    }
    // Path and host come from a parsed URI, so this does not fail in practice.
    let req = req
        .body(Empty::<Bytes>::new())
        .map_err(|e| Fail::Other(format!("building the request: {e}")))?;
    let resp = sender.send_request(req).await.map_err(Fail::Http)?;
    let (parts, body) = resp.into_parts();
    // Drain the (normally empty) body so the connection can be reused.
    let _ = Limited::new(body, MAX_BODY).collect().await;
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
    })
}

fn announces_close(headers: &HeaderMap) -> bool {
    headers.get_all(CONNECTION).iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
            .unwrap_or(false)
    })
}

fn is_stale(headers: &HeaderMap) -> bool {
    digest_challenges(headers).any(|c| c.stale)
}

/// The parseable Digest challenges among the `WWW-Authenticate` values.
fn digest_challenges(
    headers: &HeaderMap,
) -> impl Iterator<Item = digest_auth::WwwAuthenticateHeader> + '_ {
    headers
        .get_all(hyper::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| {
            let v = v.trim();
            let (scheme, params) = v.split_once(char::is_whitespace)?;
            // digest_auth's parser indexes by characters; keep it on ASCII.
            if !scheme.eq_ignore_ascii_case("Digest") || !params.is_ascii() {
                return None;
            }
            digest_auth::WwwAuthenticateHeader::parse(params).ok()
        })
}

fn authorization_for(
    challenge: &HeaderMap,
    t: &Target,
    username: &str,
    password: &str,
    opts: &CrOptions,
) -> Option<String> {
    if let Some(mut prompt) = digest_challenges(challenge).next() {
        let ctx = digest_auth::AuthContext::new(username, password, t.path_and_query.as_str());
        match prompt.respond(&ctx) {
            Ok(h) => return Some(h.to_header_string()),
            Err(e) => {
                tracing::warn!(host = %t.host_header, error = %e, "CR: cannot answer Digest challenge")
            }
        }
    }
    let offers_basic = challenge
        .get_all(hyper::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.trim()
                .get(..5)
                .is_some_and(|s| s.eq_ignore_ascii_case("Basic"))
        });
    if offers_basic && opts.allow_basic {
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        return Some(format!("Basic {token}"));
    }
    tracing::warn!(
        host = %t.host_header,
        basic_offered = offers_basic,
        "CR: the CPE offered no usable authentication challenge"
    );
    None
}

fn tls_client_config(opts: &CrOptions) -> Result<Arc<ClientConfig>, Fail> {
    if opts.insecure_tls {
        static INSECURE: OnceLock<Arc<ClientConfig>> = OnceLock::new();
        if let Some(cfg) = INSECURE.get() {
            return Ok(cfg.clone());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(AcceptAnyServerCert(provider.clone()));
        let mut cfg = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Fail::Other(format!("TLS config: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        return Ok(INSECURE.get_or_init(|| Arc::new(cfg)).clone());
    }
    let roots = opts
        .tls_roots
        .clone()
        .unwrap_or_else(|| Arc::new(RootCertStore::empty()));
    let mut cfg =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| Fail::Other(format!("TLS config: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Accepts any CPE certificate (see [`CrOptions::insecure_tls`]) but still
/// checks the handshake signatures, so the peer must hold the key of the
/// certificate it presents.
#[derive(Debug)]
pub struct AcceptAnyServerCert(pub Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

// ---------------------------------------------------------------------------
// UDP Connection Request (Annex G)

/// Options of a UDP Connection Request.
#[derive(Debug, Clone)]
pub struct UdpCrOptions {
    /// Copies of the datagram (same `id`). Default 3.
    pub copies: u32,
    /// Pause between copies. Default 200 ms.
    pub interval: Duration,
    /// Upper-case hex `sig`, as in the specification's example. Default
    /// `true`; some CPEs compare case-sensitively against one or the other.
    pub uppercase_sig: bool,
}

impl Default for UdpCrOptions {
    fn default() -> Self {
        UdpCrOptions {
            copies: 3,
            interval: Duration::from_millis(200),
            uppercase_sig: true,
        }
    }
}

/// The Annex G `sig`: HMAC-SHA1 keyed with the ConnectionRequestPassword
/// over `ts ‖ id ‖ un ‖ cn` (no separators), as 40 hex characters.
pub fn udp_connection_request_signature(
    ts: u64,
    id: u32,
    username: &str,
    cnonce: &str,
    password: &str,
    uppercase: bool,
) -> String {
    // HMAC accepts a key of any length: `new_from_slice` has no error to return for it.
    #[allow(clippy::expect_used)]
    let mut mac =
        Hmac::<Sha1>::new_from_slice(password.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{ts}{id}{username}{cnonce}").as_bytes());
    let tag = mac.finalize().into_bytes();
    if uppercase {
        hex::encode_upper(tag)
    } else {
        hex::encode(tag)
    }
}

/// The UDP Connection Request datagram (checklist §5.2 item 4, §8.15):
///
/// ```text
/// GET http://<addr>?ts=<ts>&id=<id>&un=<un>&cn=<cn>&sig=<sig> HTTP/1.1\r\n
/// Host: <addr>\r\n
/// \r\n
/// ```
///
/// `addr` is the CPE's `UDPConnectionRequestAddress` verbatim. `username`
/// and `cnonce` are inserted as they are (CPEs do not URL-decode): keep the
/// cnonce to hex or alphanumerics.
pub fn udp_connection_request_message(
    addr: &str,
    ts: u64,
    id: u32,
    username: &str,
    cnonce: &str,
    password: &str,
    uppercase_sig: bool,
) -> String {
    let sig = udp_connection_request_signature(ts, id, username, cnonce, password, uppercase_sig);
    format!(
        "GET http://{addr}?ts={ts}&id={id}&un={username}&cn={cnonce}&sig={sig} HTTP/1.1\r\nHost: {addr}\r\n\r\n"
    )
}

/// A UDP Connection Request as a CPE reads it (the fields of the request line's query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpConnectionRequest {
    pub ts: u64,
    pub id: u32,
    pub un: String,
    pub cn: String,
    pub sig: String,
}

/// The CPE side of Annex G: the fields of a `GET http://addr?ts=…&id=…&un=…&cn=…&sig=…`
/// datagram, or `None` when it is not one (any field missing or unparsable). Checking the
/// signature and replay is the CPE's business ([`udp_connection_request_signature`]).
pub fn parse_udp_connection_request(msg: &[u8]) -> Option<UdpConnectionRequest> {
    let text = std::str::from_utf8(msg).ok()?;
    let line = text.lines().next()?;
    let mut parts = line.split_whitespace();
    if parts.next()? != "GET" {
        return None;
    }
    let target = parts.next()?;
    let query = target.split_once('?')?.1;
    let (mut ts, mut id, mut un, mut cn, mut sig) = (None, None, None, None, None);
    for kv in query.split('&') {
        let (k, v) = kv.split_once('=')?;
        match k {
            "ts" => ts = v.parse().ok(),
            "id" => id = v.parse().ok(),
            "un" => un = Some(v.to_string()),
            "cn" => cn = Some(v.to_string()),
            "sig" => sig = Some(v.to_string()),
            _ => {}
        }
    }
    Some(UdpConnectionRequest {
        ts: ts?,
        id: id?,
        un: un?,
        cn: cn?,
        sig: sig?,
    })
}

/// Send a UDP Connection Request to `addr` (`host:port`, or `host` for port
/// 80) from `socket` — normally the STUN server's socket, so the datagram
/// passes address-restricted NATs. Three copies 200 ms apart, same `id`;
/// a fresh random `id` and hex `cnonce` per call; `ts` = now.
pub async fn udp_connection_request(
    socket: &UdpSocket,
    addr: &str,
    username: &str,
    password: &str,
) -> io::Result<()> {
    udp_connection_request_with(socket, addr, username, password, &UdpCrOptions::default()).await
}

/// [`udp_connection_request`] with explicit options.
pub async fn udp_connection_request_with(
    socket: &UdpSocket,
    addr: &str,
    username: &str,
    password: &str,
    opts: &UdpCrOptions,
) -> io::Result<()> {
    let dest = resolve_udp_addr(addr).await?;
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let id: u32 = rand::random();
    let cnonce = hex::encode(rand::random::<[u8; 8]>());
    let msg = udp_connection_request_message(
        addr,
        ts,
        id,
        username,
        &cnonce,
        password,
        opts.uppercase_sig,
    );
    for i in 0..opts.copies.max(1) {
        if i > 0 {
            tokio::time::sleep(opts.interval).await;
        }
        socket.send_to(msg.as_bytes(), dest).await?;
    }
    Ok(())
}

/// Resolve a `UDPConnectionRequestAddress` (`host:port`, `[v6]:port`, or a
/// bare host meaning port 80) to one socket address.
async fn resolve_udp_addr(addr: &str) -> io::Result<SocketAddr> {
    let addr = addr.trim();
    if let Ok(sa) = addr.parse::<SocketAddr>() {
        return Ok(sa);
    }
    let has_port = match addr.rfind(':') {
        Some(i) => {
            let host = &addr[..i];
            // "::1" style literals without brackets have no port.
            let port = addr.get(i.saturating_add(1)..).unwrap_or_default();
            (!host.contains(':') || host.ends_with(']')) && port.parse::<u16>().is_ok()
        }
        None => false,
    };
    let first = if has_port {
        tokio::net::lookup_host(addr).await?.next()
    } else {
        let host = addr.trim_start_matches('[').trim_end_matches(']');
        tokio::net::lookup_host((host, 80)).await?.next()
    };
    first.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("UDPConnectionRequestAddress {addr:?} does not resolve"),
        )
    })
}
