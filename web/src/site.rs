//! Browser cross-site protection on the northbound listener.
//!
//! Until every route is authenticated, and afterwards as defence in depth, a page on another
//! site must not be able to drive the API through a visitor's browser:
//!
//! - **Host.** A request must name this server in `Host`: an IP address, `localhost`, this
//!   machine's host name, a configured name (`nbi.hosts`, `cwmp.tls_hostnames`, the host of
//!   `cwmp.public_url`). Anything else (a DNS-rebinding page reaching a loopback listener
//!   under its own name) gets 421 Misdirected Request.
//! - **Origin.** A state-changing request (any method but GET, HEAD, OPTIONS) that a browser
//!   marks as coming from another site (`Sec-Fetch-Site: cross-site` or `same-site`, or an
//!   `Origin` whose host and port differ from `Host`, or `Origin: null`) gets 403. Browsers
//!   send these headers on every cross-origin POST, including the "simple" ones (text/plain,
//!   form posts) that need no CORS preflight; tools (curl, an OSS) send none and pass.

use std::future::Future;
use std::net::IpAddr;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse};

/// The names the listener answers to.
#[derive(Debug, Clone, Default)]
pub struct SitePolicy {
    /// Lower-case host names (no port).
    names: Vec<String>,
    any_host: bool,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    UnknownHost,
    CrossSite,
}

impl SitePolicy {
    pub fn new<I, S>(names: I) -> SitePolicy
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut p = SitePolicy::default();
        for n in names {
            let n = n.as_ref().trim().trim_end_matches('.').to_ascii_lowercase();
            if n == "*" {
                p.any_host = true;
            } else if !n.is_empty() && !p.names.contains(&n) {
                p.names.push(n);
            }
        }
        p
    }

    /// The policy of a configuration.
    pub fn from_config(cfg: &crate::config::Config) -> SitePolicy {
        let mut names: Vec<String> = cfg.nbi.hosts.clone();
        names.extend(cfg.cwmp.tls_hostnames.iter().cloned());
        if let Some(h) = crate::config::host_name() {
            names.push(h);
        }
        if !cfg.cwmp.public_url.is_empty() {
            if let Some(authority) = cfg.cwmp.public_url.split("://").nth(1) {
                let authority = authority.split('/').next().unwrap_or_default();
                names.push(host_part(authority).to_string());
            }
        }
        SitePolicy::new(names)
    }

    fn host_known(&self, host: &str) -> bool {
        if self.any_host {
            return true;
        }
        let h = host_part(host);
        let bare = h.trim_start_matches('[').trim_end_matches(']');
        if bare.parse::<IpAddr>().is_ok() {
            return true;
        }
        let h = h.trim_end_matches('.').to_ascii_lowercase();
        h == "localhost" || h.ends_with(".localhost") || self.names.contains(&h)
    }

    /// Judges one request from its method and headers.
    pub fn judge(
        &self,
        method: &Method,
        host: Option<&str>,
        origin: Option<&str>,
        fetch_site: Option<&str>,
    ) -> Result<(), Refusal> {
        // A request without Host (HTTP/1.0) names no site and is judged by Origin alone.
        if let Some(h) = host {
            if !self.host_known(h) {
                return Err(Refusal::UnknownHost);
            }
        }
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(());
        }
        if let Some(site) = fetch_site {
            let site = site.trim().to_ascii_lowercase();
            if site == "cross-site" || site == "same-site" {
                return Err(Refusal::CrossSite);
            }
        }
        if let Some(origin) = origin {
            let origin = origin.trim();
            if origin.eq_ignore_ascii_case("null") {
                return Err(Refusal::CrossSite);
            }
            let Some((scheme, authority)) = origin.split_once("://") else {
                return Err(Refusal::CrossSite);
            };
            let same = host.is_some_and(|h| same_authority(scheme, authority, h));
            if !same {
                return Err(Refusal::CrossSite);
            }
        }
        Ok(())
    }
}

/// `host:port`, `[v6]:port` or `host` → the host.
fn host_part(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .find(']')
            .and_then(|i| authority.get(..=i))
            .unwrap_or(authority);
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    }
}

/// Whether an Origin's authority (with its scheme's default port) is the Host header's.
fn same_authority(scheme: &str, origin_authority: &str, host: &str) -> bool {
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        "443"
    } else {
        "80"
    };
    let norm = |a: &str| -> (String, String) {
        let h = host_part(a);
        let port = a
            .get(h.len()..)
            .and_then(|rest| rest.strip_prefix(':'))
            .filter(|p| !p.is_empty())
            .unwrap_or(default_port);
        (h.to_ascii_lowercase(), port.to_string())
    };
    norm(origin_authority) == norm(host)
}

/// The middleware (`actix_web::middleware::from_fn`).
#[allow(clippy::type_complexity)]
pub fn guard<B: MessageBody + 'static>(
    policy: std::sync::Arc<SitePolicy>,
) -> impl Fn(
    ServiceRequest,
    Next<B>,
) -> std::pin::Pin<Box<dyn Future<Output = Result<ServiceResponse<BoxBody>, Error>>>>
       + Clone {
    move |req: ServiceRequest, next: Next<B>| {
        let policy = policy.clone();
        Box::pin(async move {
            let h = |name: header::HeaderName| {
                req.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let verdict = policy.judge(
                req.method(),
                h(header::HOST).as_deref(),
                h(header::ORIGIN).as_deref(),
                h(header::HeaderName::from_static("sec-fetch-site")).as_deref(),
            );
            match verdict {
                Ok(()) => next.call(req).await.map(|r| r.map_into_boxed_body()),
                Err(why) => {
                    let (status, detail) = match why {
                        Refusal::UnknownHost => (
                            StatusCode::MISDIRECTED_REQUEST,
                            "this server does not answer to that host name (see nbi.hosts)",
                        ),
                        Refusal::CrossSite => (
                            StatusCode::FORBIDDEN,
                            "cross-site request refused: a page on another site may not change state here",
                        ),
                    };
                    tracing::warn!(
                        method = %req.method(),
                        path = req.path(),
                        host = h(header::HOST).unwrap_or_default(),
                        origin = h(header::ORIGIN).unwrap_or_default(),
                        peer = ?req.peer_addr(),
                        "northbound request refused: {detail}"
                    );
                    let resp = HttpResponse::build(status)
                        .content_type("application/problem+json")
                        .body(
                            serde_json::json!({
                                "type": "about:blank",
                                "title": status.canonical_reason().unwrap_or_default(),
                                "status": status.as_u16(),
                                "detail": detail,
                            })
                            .to_string(),
                        );
                    Ok(req.into_response(resp))
                }
            }
        })
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

    fn p() -> SitePolicy {
        SitePolicy::new(["acs.example.net", "Console.Example.NET."])
    }

    #[test]
    fn hosts() {
        let p = p();
        for ok in [
            "127.0.0.1:7557",
            "[::1]:7557",
            "localhost:7557",
            "acs.example.net",
            "console.example.net:443",
            "10.0.0.1",
        ] {
            assert_eq!(p.judge(&Method::GET, Some(ok), None, None), Ok(()), "{ok}");
        }
        for bad in [
            "evil.example:7557",
            "acs.example.net.evil.example",
            "127.0.0.1.nip.io",
        ] {
            assert_eq!(
                p.judge(&Method::GET, Some(bad), None, None),
                Err(Refusal::UnknownHost),
                "{bad}"
            );
        }
        assert_eq!(
            SitePolicy::new(["*"]).judge(&Method::POST, Some("evil.example"), None, None),
            Ok(())
        );
    }

    #[test]
    fn origins() {
        let p = p();
        let host = Some("127.0.0.1:7557");
        assert_eq!(p.judge(&Method::POST, host, None, None), Ok(()), "a tool");
        assert_eq!(
            p.judge(
                &Method::POST,
                host,
                Some("http://127.0.0.1:7557"),
                Some("same-origin")
            ),
            Ok(())
        );
        assert_eq!(
            p.judge(
                &Method::POST,
                Some("acs.example.net"),
                Some("https://acs.example.net:443"),
                None
            ),
            Ok(()),
            "default port"
        );
        for (origin, site) in [
            (Some("http://evil.example"), None),
            (Some("http://127.0.0.1:8080"), None),
            (Some("null"), None),
            (Some("garbage"), None),
            (None, Some("cross-site")),
            (None, Some("same-site")),
        ] {
            assert_eq!(
                p.judge(&Method::POST, host, origin, site),
                Err(Refusal::CrossSite),
                "{origin:?} {site:?}"
            );
            assert_eq!(
                p.judge(&Method::DELETE, host, origin, site),
                Err(Refusal::CrossSite)
            );
            assert_eq!(
                p.judge(&Method::GET, host, origin, site),
                Ok(()),
                "reads pass"
            );
        }
    }
}
