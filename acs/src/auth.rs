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
//! Every Digest response must use `qop=auth` (RFC 2069 responses without `qop` are refused)
//! and, when the caller passes the request target, name it in `uri`. The stateless checks
//! (`verify*`) stop there. A server uses [`Authenticator::verify_request`], which also keeps
//! a ledger of the nonces it accepted: a nonce's `nc` must grow with every use, and a nonce
//! stays bound to the identity (device) it first authenticated, so a captured
//! `Authorization` header can neither be replayed nor moved to another DeviceId. The ledger
//! is per node and bounded ([`AuthConfig::max_tracked_nonces`]); nodes that share the nonce
//! secret each track what they saw.
//!
//! # Secrets
//!
//! The lookup callback answers with a [`Secret`]: a password, or the Digest `HA1` values
//! (`H(username:realm:password)`) a store keeps instead of the password. Basic credentials
//! are checked against either.
//!
//! # Usernames
//!
//! Since TR-069 Amendment 6 the recommended CPE username
//! (`OUI-ProductClass-SerialNumber`) is percent-encoded after UTF-8
//! conversion; GenieACS escapes every byte except `A-Z a-z 0-9 _`. The lookup
//! callback receives the username exactly as the CPE sent it (that string
//! enters the digest). Use [`ids::username_forms`] in the callback to match a
//! stored username in either its raw or its encoded form.

// Outside input: no panicking arithmetic, indexing or unwrapping here (clippy enforces it).
#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used
)]

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
    /// Nonces [`Authenticator::verify_request`] remembers at most (their last `nc` and
    /// identity); the oldest are forgotten first. Default: 1,000,000.
    pub max_tracked_nonces: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            realm: "Keelson".to_owned(),
            algorithms: vec![DigestAlgorithm::Md5],
            allow_basic_over_tls: true,
            nonce_ttl: Duration::from_secs(300),
            max_tracked_nonces: 1_000_000,
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
    ledger: std::sync::Arc<std::sync::Mutex<NonceLedger>>,
}

/// What a server remembers of a nonce it accepted.
#[derive(Debug, Clone)]
struct NonceUse {
    nc: u32,
    identity: String,
    seen: u64,
}

#[derive(Debug, Default)]
struct NonceLedger {
    nonces: std::collections::HashMap<String, NonceUse>,
}

impl NonceLedger {
    /// Records a use of `nonce` by `identity` with count `nc`; refuses a count that does not
    /// grow or another identity.
    fn admit(
        &mut self,
        nonce: &str,
        nc: u32,
        identity: &str,
        now: u64,
        ttl: u64,
        cap: usize,
    ) -> Result<(), String> {
        if let Some(u) = self.nonces.get_mut(nonce) {
            if u.identity != identity {
                return Err(format!(
                    "nonce already authenticated {:?}, not {identity:?}",
                    u.identity
                ));
            }
            if nc <= u.nc {
                return Err(format!("replayed nonce count {nc:08x} (last {:08x})", u.nc));
            }
            u.nc = nc;
            u.seen = now;
            return Ok(());
        }
        if self.nonces.len() >= cap.max(1) {
            // Forget what has expired; if that is not enough, the oldest half.
            let horizon = now.saturating_sub(ttl.saturating_add(MAX_CLOCK_SKEW.as_secs()));
            self.nonces.retain(|_, u| u.seen >= horizon);
            if self.nonces.len() >= cap.max(1) {
                let mut seen: Vec<u64> = self.nonces.values().map(|u| u.seen).collect();
                seen.sort_unstable();
                let cut = seen.get(seen.len() / 2).copied().unwrap_or(u64::MAX);
                self.nonces.retain(|_, u| u.seen > cut);
            }
        }
        self.nonces.insert(
            nonce.to_owned(),
            NonceUse {
                nc,
                identity: identity.to_owned(),
                seen: now,
            },
        );
        Ok(())
    }
}

/// What the lookup callback knows of a user's password.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// The password itself.
    Password(String),
    /// Digest `HA1 = H(username:realm:password)` in lower-case hex, per algorithm, for the
    /// realm the authenticator uses (see [`ha1`]).
    Ha1 {
        md5: Option<String>,
        sha256: Option<String>,
    },
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Secret::Password(_) => "Secret::Password(<redacted>)",
            Secret::Ha1 { .. } => "Secret::Ha1(<redacted>)",
        })
    }
}

impl From<String> for Secret {
    fn from(p: String) -> Self {
        Secret::Password(p)
    }
}

impl From<&str> for Secret {
    fn from(p: &str) -> Self {
        Secret::Password(p.to_owned())
    }
}

/// Digest `HA1 = H(username:realm:password)` in lower-case hex.
pub fn ha1(algorithm: DigestAlgorithm, username: &str, realm: &str, password: &str) -> String {
    let data = format!("{username}:{realm}:{password}");
    match algorithm {
        DigestAlgorithm::Md5 => hex::encode(<md5::Md5 as md5::Digest>::digest(data.as_bytes())),
        DigestAlgorithm::Sha256 => {
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(data.as_bytes()))
        }
    }
}

impl Secret {
    /// The HA1 for `algorithm`, if this secret can give it.
    fn ha1_for(&self, algorithm: DigestAlgorithm, username: &str, realm: &str) -> Option<String> {
        match self {
            Secret::Password(p) => Some(ha1(algorithm, username, realm, p)),
            Secret::Ha1 { md5, sha256 } => match algorithm {
                DigestAlgorithm::Md5 => md5.clone(),
                DigestAlgorithm::Sha256 => sha256.clone(),
            },
        }
    }

    /// True if `password` (sent in clear, e.g. Basic over TLS) is this secret.
    fn matches_password(&self, username: &str, realm: &str, password: &str) -> bool {
        match self {
            Secret::Password(p) => ct_eq(password.as_bytes(), p.as_bytes()),
            Secret::Ha1 { md5, sha256 } => {
                let check = |alg, stored: &Option<String>| {
                    stored.as_deref().is_some_and(|h| {
                        ct_eq(ha1(alg, username, realm, password).as_bytes(), h.as_bytes())
                    })
                };
                check(DigestAlgorithm::Md5, md5) || check(DigestAlgorithm::Sha256, sha256)
            }
        }
    }
}

/// One request to judge with [`Authenticator::verify_request`].
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The `Authorization` header value ("" when absent).
    pub authorization: &'a str,
    pub method: &'a str,
    /// The request target (path and query), which a Digest `uri` must name.
    pub uri: &'a str,
    pub tls: bool,
    /// Who the request claims to be (the device id): a nonce stays bound to it.
    pub identity: &'a str,
    pub now: SystemTime,
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
        let opaque = hex::encode(mac.finalize().into_bytes().get(..8).unwrap_or_default());
        Authenticator {
            cfg,
            secret,
            opaque,
            ledger: Default::default(),
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
        // ts (8) ‖ salt (8) ‖ MAC over both, truncated.
        let mut stamp = [0u8; 16];
        let (t, s) = stamp.split_at_mut(8);
        t.copy_from_slice(&ts.to_be_bytes());
        s.copy_from_slice(&salt);
        let tag = self.nonce_mac(&stamp).finalize().into_bytes();
        let mut raw = Vec::with_capacity(NONCE_LEN);
        raw.extend_from_slice(&stamp);
        raw.extend(tag.iter().take(NONCE_MAC_LEN));
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
        let (stamp, tag) = raw.split_at(16.min(raw.len()));
        if self.nonce_mac(stamp).verify_truncated_left(tag).is_err() {
            return NonceState::Forged;
        }
        let Some(ts) = stamp.get(..8).and_then(|t| <[u8; 8]>::try_from(t).ok()) else {
            return NonceState::Forged;
        };
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

    /// Judge an `Authorization` header value, statelessly (see the module docs on replay
    /// protection; servers use [`verify_request`](Self::verify_request)).
    ///
    /// * `method` is the request method (`POST` for CWMP).
    /// * `tls` tells whether the request came over TLS (Basic is refused otherwise).
    /// * `lookup` maps the username, exactly as sent, to the expected secret; it is called
    ///   at most once, and only after the header has been found well-formed and (for
    ///   Digest) its nonce authentic.
    ///
    /// The `uri` parameter of a Digest header is not compared with the request target here;
    /// use [`verify_with_uri`](Self::verify_with_uri) for that.
    pub fn verify<S: Into<Secret>>(
        &self,
        authorization_header: &str,
        method: &str,
        tls: bool,
        lookup: impl FnOnce(&str) -> Option<S>,
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

    /// [`verify`](Self::verify), additionally requiring that a Digest `uri` names
    /// `request_uri` (the request target, e.g. `/acs` or `/acs?x=1`): the CPE may echo the
    /// path alone or the path with the query (checklist §1.9), and an absolute URI with that
    /// path is also accepted.
    pub fn verify_with_uri<S: Into<Secret>>(
        &self,
        authorization_header: &str,
        method: &str,
        request_uri: &str,
        tls: bool,
        lookup: impl FnOnce(&str) -> Option<S>,
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

    /// The stateless verifier with an explicit clock (for tests and for callers that
    /// already read the time).
    pub fn verify_at<S: Into<Secret>>(
        &self,
        authorization_header: &str,
        method: &str,
        request_uri: Option<&str>,
        tls: bool,
        now: SystemTime,
        lookup: impl FnOnce(&str) -> Option<S>,
    ) -> AuthResult {
        self.check(authorization_header, method, request_uri, tls, now, lookup)
            .0
    }

    /// The server's verifier: the stateless checks (with the Digest `uri` compared with
    /// `req.uri`), then the nonce ledger: a nonce's `nc` must grow with each use, and a
    /// nonce stays bound to the identity it first authenticated. A replayed or transplanted
    /// header is [`AuthResult::Invalid`].
    pub fn verify_request<S: Into<Secret>>(
        &self,
        req: &Request<'_>,
        lookup: impl FnOnce(&str) -> Option<S>,
    ) -> AuthResult {
        let (result, used) = self.check(
            req.authorization,
            req.method,
            Some(req.uri),
            req.tls,
            req.now,
            lookup,
        );
        match (&result, used) {
            (AuthResult::Ok { .. }, Some((nonce, nc))) => {
                let mut ledger = self
                    .ledger
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                match ledger.admit(
                    &nonce,
                    nc,
                    req.identity,
                    unix_secs(req.now),
                    self.cfg.nonce_ttl.as_secs(),
                    self.cfg.max_tracked_nonces,
                ) {
                    Ok(()) => result,
                    Err(why) => AuthResult::Invalid(why),
                }
            }
            _ => result,
        }
    }

    /// The stateless checks; on a Digest success also the (nonce, nc) used.
    fn check<S: Into<Secret>>(
        &self,
        authorization_header: &str,
        method: &str,
        request_uri: Option<&str>,
        tls: bool,
        now: SystemTime,
        lookup: impl FnOnce(&str) -> Option<S>,
    ) -> (AuthResult, Option<(String, u32)>) {
        let header = authorization_header.trim();
        if header.is_empty() {
            return (AuthResult::Missing, None);
        }
        let (scheme, params) = split_scheme(header);
        if scheme.eq_ignore_ascii_case("Digest") {
            self.verify_digest(params, method, request_uri, now, lookup)
        } else if scheme.eq_ignore_ascii_case("Basic") {
            (self.verify_basic(params, tls, lookup), None)
        } else {
            (
                AuthResult::Invalid(format!("unsupported authentication scheme {scheme:?}")),
                None,
            )
        }
    }

    fn verify_basic<S: Into<Secret>>(
        &self,
        params: &str,
        tls: bool,
        lookup: impl FnOnce(&str) -> Option<S>,
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
        let Some(expected) = lookup(username).map(Into::into) else {
            return AuthResult::Invalid(format!("unknown username {username:?}"));
        };
        if expected.matches_password(username, &self.cfg.realm, password) {
            AuthResult::Ok {
                username: username.to_owned(),
            }
        } else {
            AuthResult::Invalid(format!("wrong password for {username:?}"))
        }
    }

    fn verify_digest<S: Into<Secret>>(
        &self,
        params: &str,
        method: &str,
        request_uri: Option<&str>,
        now: SystemTime,
        lookup: impl FnOnce(&str) -> Option<S>,
    ) -> (AuthResult, Option<(String, u32)>) {
        let invalid = |why: String| (AuthResult::Invalid(why), None);
        let hdr = match parse_digest_params(params) {
            Ok(h) => h,
            Err(e) => return invalid(e),
        };
        if hdr.realm != self.cfg.realm {
            return invalid(format!("wrong realm {:?}", hdr.realm));
        }
        let Some(algorithm) = self
            .cfg
            .algorithms
            .iter()
            .copied()
            .find(|a| !hdr.algorithm.sess && a.matches(hdr.algorithm.algo))
        else {
            return invalid(format!("algorithm {} not offered", hdr.algorithm));
        };
        // qop=auth was offered and is required: without it (RFC 2069) there is no nonce
        // count or client nonce to make a response single-use.
        if hdr.qop != Some(Qop::AUTH) || hdr.cnonce.as_deref().is_none_or(str::is_empty) {
            return invalid("qop=auth with a cnonce is required".into());
        }
        // A client must echo opaque, but some CPEs drop it: only a wrong value is refused.
        if let Some(opaque) = &hdr.opaque {
            if opaque != &self.opaque {
                return invalid("wrong opaque".into());
            }
        }
        if let Some(uri) = request_uri {
            if !uri_matches(&hdr.uri, uri) {
                return invalid(format!(
                    "digest uri {:?} does not match request {uri:?}",
                    hdr.uri
                ));
            }
        }
        let nonce_state = self.nonce_state(&hdr.nonce, now);
        if nonce_state == NonceState::Forged {
            return invalid("nonce was not issued by this ACS".into());
        }
        let Some(secret) = lookup(&hdr.username).map(Into::into) else {
            return invalid(format!("unknown username {:?}", hdr.username));
        };
        let Some(ha1) = secret.ha1_for(algorithm, &hdr.username, &self.cfg.realm) else {
            return invalid(format!(
                "no {} secret stored for {:?}",
                algorithm.as_str(),
                hdr.username
            ));
        };
        if !response_matches_ha1(&hdr, algorithm, method, &ha1) {
            return invalid(format!("wrong digest response for {:?}", hdr.username));
        }
        match nonce_state {
            NonceState::Fresh => (
                AuthResult::Ok {
                    username: hdr.username.clone(),
                },
                Some((hdr.nonce.clone(), hdr.nc)),
            ),
            _ => (AuthResult::Stale, None),
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

/// `response = H(HA1:nonce:nc:cnonce:qop:H(method:uri))` (RFC 7616 §3.4.1, qop=auth),
/// compared in constant time.
fn response_matches_ha1(
    hdr: &AuthorizationHeader,
    algorithm: DigestAlgorithm,
    method: &str,
    ha1: &str,
) -> bool {
    let h = |data: String| match algorithm {
        DigestAlgorithm::Md5 => hex::encode(<md5::Md5 as md5::Digest>::digest(data.as_bytes())),
        DigestAlgorithm::Sha256 => {
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(data.as_bytes()))
        }
    };
    let ha2 = h(format!("{method}:{}", hdr.uri));
    let expected = h(format!(
        "{ha1}:{}:{:08x}:{}:auth:{ha2}",
        hdr.nonce,
        hdr.nc,
        hdr.cnonce.as_deref().unwrap_or("")
    ));
    ct_eq(
        expected.as_bytes(),
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

// HMAC accepts keys of any length: `new_from_slice` cannot fail.
#[allow(clippy::expect_used)]
fn hmac_with(key: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC takes any key length")
}

/// Constant-time equality of two byte strings of any length: both sides are
/// MACed with a per-process random key and the tags compared with
/// `verify_slice` (constant time), so neither the position of the first
/// difference nor the secret's length leaks through timing.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    let key = KEY.get_or_init(rand::random);
    let mut ma = hmac_with(key);
    ma.update(a);
    let tag_a = ma.finalize().into_bytes();
    let mut mb = hmac_with(key);
    mb.update(b);
    mb.verify_slice(&tag_a).is_ok()
}
