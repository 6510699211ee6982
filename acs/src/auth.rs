//! Server-side HTTP authentication of CPEs (TR-069 §3.4.4; checklist §1.9).
//!
//! This module is sans-IO: it turns configuration into `WWW-Authenticate`
//! header values and judges `Authorization` header values. The HTTP layer
//! decides what to do with the verdict (answer 401 with [`Authenticator::challenge`],
//! go on with the session, ...).
//!
//! # Schemes
//!
//! * **Digest** (RFC 2617/7616), `qop="auth"`, MD5 by default and optionally
//!   SHA-256 (one challenge per configured algorithm, in configuration order;
//!   some CPEs break on several challenges, hence MD5 only by default).
//! * **Basic**, only over TLS and only when [`AuthConfig::allow_basic_over_tls`]
//!   is set. Basic over cleartext HTTP is always refused, whatever the
//!   configuration says.
//!
//! # Nonces
//!
//! Nonces are stateless: `hex(timestamp ‖ random ‖ HMAC-SHA256(secret, timestamp ‖ random)[..16])`,
//! 64 hex characters. Any Keelson node that shares the 32-byte secret can
//! verify a nonce issued by another node, so a CPE may be load-balanced
//! between its 401 and its authenticated retry. A nonce older than
//! [`AuthConfig::nonce_ttl`] yields [`AuthResult::Stale`] (if the response was
//! otherwise correct), and the caller re-challenges with `stale=true`.
//!
//! The `opaque` value is also derived from the secret (and the realm), so it
//! is the same on every node.
//!
//! # Replay protection
//!
//! Being stateless, the authenticator does **not** track `nc` values: a
//! captured `Authorization` header can be replayed until its nonce expires
//! (bounded by `nonce_ttl`). Callers that want strict `nc` monotonicity can
//! keep the last `(nonce, nc)` per connection or session; the header is
//! available to them. TR-069 sessions re-authenticate on every new TCP
//! connection anyway, and a replayed Inform gains an attacker nothing it
//! could not get from the (cleartext) original.
//!
//! # Usernames
//!
//! Since TR-069 Amendment 6 the recommended CPE username
//! (`OUI-ProductClass-SerialNumber`) is percent-encoded after UTF-8
//! conversion; GenieACS escapes every byte except `A-Z a-z 0-9 _`. The lookup
//! callback receives the username exactly as the CPE sent it (that string
//! enters the digest). Use [`username_forms`] in the callback to match a
//! stored username in either its raw or its encoded form.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use digest_auth::{AlgorithmType, AuthContext, AuthorizationHeader, HttpMethod, Qop};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Domain-separation labels for the values derived from the server secret.
const NONCE_LABEL: &[u8] = b"keelson-digest-nonce-v1";
const OPAQUE_LABEL: &[u8] = b"keelson-digest-opaque-v1";
/// Length of the truncated MAC inside a nonce, in bytes.
const NONCE_MAC_LEN: usize = 16;
/// timestamp (8) + random (8) + MAC.
const NONCE_LEN: usize = 8 + 8 + NONCE_MAC_LEN;
/// How far in the future a nonce timestamp may lie (clock skew between
/// Keelson nodes sharing the secret).
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// Digest hash algorithm offered in the challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    /// `algorithm=MD5` — what every CPE supports.
    Md5,
    /// `algorithm=SHA-256` (RFC 7616).
    Sha256,
}

impl DigestAlgorithm {
    /// The token used in the `algorithm` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Sha256 => "SHA-256",
        }
    }

    fn matches(self, algo: AlgorithmType) -> bool {
        matches!(
            (self, algo),
            (DigestAlgorithm::Md5, AlgorithmType::MD5)
                | (DigestAlgorithm::Sha256, AlgorithmType::SHA2_256)
        )
    }
}

/// Configuration of CPE authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// The Digest/Basic realm.
    pub realm: String,
    /// Digest algorithms to offer, one challenge each, in this order.
    /// Default: `[Md5]`.
    pub algorithms: Vec<DigestAlgorithm>,
    /// Accept Basic credentials on TLS connections. Never used on cleartext.
    /// Default: `true`.
    pub allow_basic_over_tls: bool,
    /// Lifetime of a nonce. Default: 300 s.
    pub nonce_ttl: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            realm: "Keelson".to_owned(),
            algorithms: vec![DigestAlgorithm::Md5],
            allow_basic_over_tls: true,
            nonce_ttl: Duration::from_secs(300),
        }
    }
}

/// Verdict on an `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthResult {
    /// Authenticated. `username` is the name exactly as the CPE sent it.
    Ok { username: String },
    /// No credentials were sent: answer 401 with a challenge.
    Missing,
    /// Credentials were sent but are wrong, malformed or not acceptable
    /// (e.g. Basic over cleartext). The reason is for logs, not for the CPE.
    Invalid(String),
    /// The credentials were correct but the nonce has expired: answer 401
    /// with `challenge(true)` so the CPE retries without asking its user.
    Stale,
}

/// Issues challenges and verifies credentials. Cheap to share (`&self` only).
#[derive(Clone)]
pub struct Authenticator {
    cfg: AuthConfig,
    secret: [u8; 32],
    opaque: String,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("cfg", &self.cfg)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NonceState {
    Fresh,
    Expired,
    Forged,
}

impl Authenticator {
    /// Create an authenticator. `secret` keys the nonce MAC; every node that
    /// must accept the others' nonces needs the same secret. An empty
    /// `cfg.algorithms` falls back to `[Md5]`.
    pub fn new(mut cfg: AuthConfig, secret: [u8; 32]) -> Self {
        if cfg.algorithms.is_empty() {
            cfg.algorithms.push(DigestAlgorithm::Md5);
        }
        let mut mac = hmac_with(&secret);
        mac.update(OPAQUE_LABEL);
        mac.update(cfg.realm.as_bytes());
        let opaque = hex::encode(&mac.finalize().into_bytes()[..8]);
        Authenticator {
            cfg,
            secret,
            opaque,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &AuthConfig {
        &self.cfg
    }

    /// The `opaque` value sent in every challenge.
    pub fn opaque(&self) -> &str {
        &self.opaque
    }

    /// `WWW-Authenticate` header values (one per configured algorithm) for a
    /// 401 response. Set `stale` when [`verify`](Self::verify) returned
    /// [`AuthResult::Stale`].
    pub fn challenge(&self, stale: bool) -> Vec<String> {
        self.challenge_at(stale, SystemTime::now())
    }

    /// [`challenge`](Self::challenge) with an explicit clock.
    pub fn challenge_at(&self, stale: bool, now: SystemTime) -> Vec<String> {
        let nonce = self.issue_nonce_at(now);
        let realm = quote(&self.cfg.realm);
        self.cfg
            .algorithms
            .iter()
            .map(|alg| {
                let mut v = format!(
                    "Digest realm=\"{realm}\", qop=\"auth\", nonce=\"{nonce}\", opaque=\"{}\", algorithm={}",
                    self.opaque,
                    alg.as_str()
                );
                if stale {
                    v.push_str(", stale=true");
                }
                v
            })
            .collect()
    }

    /// A `WWW-Authenticate: Basic` value, for callers that want to offer
    /// Basic on TLS connections in addition to (or instead of) Digest.
    pub fn basic_challenge(&self) -> String {
        format!("Basic realm=\"{}\"", quote(&self.cfg.realm))
    }

    /// Mint a fresh nonce stamped with `now`.
    pub fn issue_nonce_at(&self, now: SystemTime) -> String {
        let ts = unix_secs(now);
        let salt: [u8; 8] = rand::random();
        let mut raw = [0u8; NONCE_LEN];
        raw[..8].copy_from_slice(&ts.to_be_bytes());
        raw[8..16].copy_from_slice(&salt);
        let tag = self.nonce_mac(&raw[..16]).finalize().into_bytes();
        raw[16..].copy_from_slice(&tag[..NONCE_MAC_LEN]);
        hex::encode(raw)
    }

    fn nonce_mac(&self, stamp: &[u8]) -> HmacSha256 {
        let mut mac = hmac_with(&self.secret);
        mac.update(NONCE_LABEL);
        mac.update(stamp);
        mac
    }

    fn nonce_state(&self, nonce: &str, now: SystemTime) -> NonceState {
        let raw = match hex::decode(nonce) {
            Ok(raw) if raw.len() == NONCE_LEN => raw,
            _ => return NonceState::Forged,
        };
        if self
            .nonce_mac(&raw[..16])
            .verify_truncated_left(&raw[16..])
            .is_err()
        {
            return NonceState::Forged;
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&raw[..8]);
        let issued = u64::from_be_bytes(ts);
        let now = unix_secs(now);
        if issued > now.saturating_add(MAX_CLOCK_SKEW.as_secs()) {
            // Authentic but from the future: a node with a badly wrong clock.
            return NonceState::Expired;
        }
        if now.saturating_sub(issued) > self.cfg.nonce_ttl.as_secs() {
            NonceState::Expired
        } else {
            NonceState::Fresh
        }
    }

    /// Judge an `Authorization` header value.
    ///
    /// * `method` is the request method (`POST` for CWMP).
    /// * `tls` tells whether the request came over TLS (Basic is refused otherwise).
    /// * `lookup` maps the username, exactly as sent, to the expected
    ///   password; it is called at most once, and only after the header has
    ///   been found well-formed and (for Digest) its nonce authentic.
    ///
    /// The `uri` parameter of a Digest header is not compared with the
    /// request target here; use [`verify_with_uri`](Self::verify_with_uri)
    /// for that.
    pub fn verify(
        &self,
        authorization_header: &str,
        method: &str,
        tls: bool,
        lookup: impl FnOnce(&str) -> Option<String>,
    ) -> AuthResult {
        self.verify_at(
            authorization_header,
            method,
            None,
            tls,
            SystemTime::now(),
            lookup,
        )
    }

    /// [`verify`](Self::verify), additionally requiring that a Digest `uri`
    /// names `request_uri` (the request target, e.g. `/acs` or
    /// `/acs?x=1`): the CPE may echo the path alone or the path with the
    /// query (checklist §1.9), and an absolute URI with that path is also
    /// accepted.
    pub fn verify_with_uri(
        &self,
        authorization_header: &str,
        method: &str,
        request_uri: &str,
        tls: bool,
        lookup: impl FnOnce(&str) -> Option<String>,
    ) -> AuthResult {
        self.verify_at(
            authorization_header,
            method,
            Some(request_uri),
            tls,
            SystemTime::now(),
            lookup,
        )
    }

    /// The full verifier with an explicit clock (for tests and for callers
    /// that already read the time).
    pub fn verify_at(
        &self,
        authorization_header: &str,
        method: &str,
        request_uri: Option<&str>,
        tls: bool,
        now: SystemTime,
        lookup: impl FnOnce(&str) -> Option<String>,
    ) -> AuthResult {
        let header = authorization_header.trim();
        if header.is_empty() {
            return AuthResult::Missing;
        }
        let (scheme, params) = split_scheme(header);
        if scheme.eq_ignore_ascii_case("Digest") {
            self.verify_digest(params, method, request_uri, now, lookup)
        } else if scheme.eq_ignore_ascii_case("Basic") {
            self.verify_basic(params, tls, lookup)
        } else {
            AuthResult::Invalid(format!("unsupported authentication scheme {scheme:?}"))
        }
    }

    fn verify_basic(
        &self,
        params: &str,
        tls: bool,
        lookup: impl FnOnce(&str) -> Option<String>,
    ) -> AuthResult {
        if !tls {
            return AuthResult::Invalid(
                "Basic authentication refused over cleartext HTTP (Digest required)".into(),
            );
        }
        if !self.cfg.allow_basic_over_tls {
            return AuthResult::Invalid("Basic authentication is disabled".into());
        }
        let decoded = match base64::engine::general_purpose::STANDARD.decode(params.trim()) {
            Ok(d) => d,
            Err(_) => return AuthResult::Invalid("Basic credentials are not valid base64".into()),
        };
        let decoded = match String::from_utf8(decoded) {
            Ok(s) => s,
            Err(_) => return AuthResult::Invalid("Basic credentials are not UTF-8".into()),
        };
        let Some((username, password)) = decoded.split_once(':') else {
            return AuthResult::Invalid("Basic credentials lack a ':'".into());
        };
        let Some(expected) = lookup(username) else {
            return AuthResult::Invalid(format!("unknown username {username:?}"));
        };
        if ct_eq(password.as_bytes(), expected.as_bytes()) {
            AuthResult::Ok {
                username: username.to_owned(),
            }
        } else {
            AuthResult::Invalid(format!("wrong password for {username:?}"))
        }
    }

    fn verify_digest(
        &self,
        params: &str,
        method: &str,
        request_uri: Option<&str>,
        now: SystemTime,
        lookup: impl FnOnce(&str) -> Option<String>,
    ) -> AuthResult {
        let hdr = match parse_digest_params(params) {
            Ok(h) => h,
            Err(e) => return AuthResult::Invalid(e),
        };
        if hdr.realm != self.cfg.realm {
            return AuthResult::Invalid(format!("wrong realm {:?}", hdr.realm));
        }
        if hdr.algorithm.sess
            || !self
                .cfg
                .algorithms
                .iter()
                .any(|a| a.matches(hdr.algorithm.algo))
        {
            return AuthResult::Invalid(format!("algorithm {} not offered", hdr.algorithm));
        }
        // RFC 2069 style (no qop) is tolerated; auth-int was not offered.
        // A client must echo opaque, but some CPEs drop it: only a wrong
        // value is refused.
        if let Some(opaque) = &hdr.opaque {
            if opaque != &self.opaque {
                return AuthResult::Invalid("wrong opaque".into());
            }
        }
        if let Some(uri) = request_uri {
            if !uri_matches(&hdr.uri, uri) {
                return AuthResult::Invalid(format!(
                    "digest uri {:?} does not match request {uri:?}",
                    hdr.uri
                ));
            }
        }
        let nonce_state = self.nonce_state(&hdr.nonce, now);
        if nonce_state == NonceState::Forged {
            return AuthResult::Invalid("nonce was not issued by this ACS".into());
        }
        let Some(password) = lookup(&hdr.username) else {
            return AuthResult::Invalid(format!("unknown username {:?}", hdr.username));
        };
        if !response_matches(&hdr, method, &password) {
            return AuthResult::Invalid(format!("wrong digest response for {:?}", hdr.username));
        }
        match nonce_state {
            NonceState::Fresh => AuthResult::Ok {
                username: hdr.username,
            },
            _ => AuthResult::Stale,
        }
    }
}

/// Check a Digest `Authorization` header (with or without the leading
/// `Digest` token) against a known password: recompute the response for
/// `method` and the header's own `uri`, `nonce`, `nc`, `cnonce`, `qop`,
/// `realm` and `algorithm`, and compare in constant time.
///
/// This checks the arithmetic only: not the nonce's origin or age, nor the
/// realm or opaque. [`Authenticator::verify`] does all of that.
pub fn verify_digest_response(authorization: &str, method: &str, password: &str) -> bool {
    let authorization = authorization.trim();
    let (scheme, params) = split_scheme(authorization);
    let params = if scheme.eq_ignore_ascii_case("Digest") {
        params
    } else {
        authorization
    };
    match parse_digest_params(params) {
        Ok(hdr) => response_matches(&hdr, method, password),
        Err(_) => false,
    }
}

/// Percent-encode a username the way GenieACS does (and TR-069 A6
/// recommends): UTF-8 bytes other than `A-Z a-z 0-9 _` become `%XX`
/// (upper-case hex). `HGW-1000` → `HGW%2D1000`.
pub fn percent_encode_username(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Decode `%XX` escapes (either hex case). `None` if an escape is malformed
/// or the result is not UTF-8.
pub fn percent_decode_username(encoded: &str) -> Option<String> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = (*bytes.get(i + 1)? as char).to_digit(16)?;
            let lo = (*bytes.get(i + 2)? as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The spellings under which a username sent by a CPE may be stored: the
/// name as sent first, then its decoded (raw) form, then its canonical
/// encoded form, without duplicates. Use it inside the lookup callback.
pub fn username_forms(sent: &str) -> Vec<String> {
    let mut forms = vec![sent.to_owned()];
    let raw = percent_decode_username(sent).unwrap_or_else(|| sent.to_owned());
    let encoded = percent_encode_username(&raw);
    for f in [raw, encoded] {
        if !forms.contains(&f) {
            forms.push(f);
        }
    }
    forms
}

// ---------------------------------------------------------------------------

fn split_scheme(header: &str) -> (&str, &str) {
    match header.find(|c: char| c.is_ascii_whitespace()) {
        Some(i) => (&header[..i], header[i..].trim_start()),
        None => (header, ""),
    }
}

fn parse_digest_params(params: &str) -> Result<AuthorizationHeader, String> {
    // digest_auth's parser slices by character index; keep it on ASCII.
    if !params.is_ascii() {
        return Err("non-ASCII Digest parameters".into());
    }
    let hdr =
        AuthorizationHeader::parse(params).map_err(|e| format!("malformed Digest header: {e}"))?;
    if hdr.userhash {
        return Err("userhash was not offered".into());
    }
    if hdr.qop == Some(Qop::AUTH_INT) {
        return Err("qop=auth-int was not offered".into());
    }
    Ok(hdr)
}

fn response_matches(hdr: &AuthorizationHeader, method: &str, password: &str) -> bool {
    let mut expected = hdr.clone();
    let ctx = AuthContext::new_with_method(
        hdr.username.as_str(),
        password,
        hdr.uri.as_str(),
        Option::<&[u8]>::None,
        HttpMethod::from(method),
    );
    expected.digest(&ctx);
    ct_eq(
        expected.response.as_bytes(),
        hdr.response.to_ascii_lowercase().as_bytes(),
    )
}

fn uri_matches(digest_uri: &str, request_uri: &str) -> bool {
    if digest_uri == request_uri {
        return true;
    }
    let path = request_uri.split('?').next().unwrap_or(request_uri);
    if digest_uri == path {
        return true;
    }
    // Absolute form: scheme://authority/path[?query]
    if let Some(rest) = digest_uri.split_once("://").map(|(_, r)| r) {
        let target = rest.find('/').map(|i| &rest[i..]).unwrap_or("/");
        return target == request_uri || target == path;
    }
    false
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn hmac_with(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length.
    HmacSha256::new_from_slice(key).expect("HMAC takes any key length")
}

/// Constant-time equality of two byte strings of any length: both sides are
/// MACed with a per-process random key and the tags compared with
/// `verify_slice` (constant time), so neither the position of the first
/// difference nor the secret's length leaks through timing.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    let key = KEY.get_or_init(rand::random);
    let mut ma = hmac_with(key);
    ma.update(a);
    let tag_a = ma.finalize().into_bytes();
    let mut mb = hmac_with(key);
    mb.update(b);
    mb.verify_slice(&tag_a).is_ok()
}
