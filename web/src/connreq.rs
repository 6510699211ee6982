//! Connection requests as the ACS issues them: per-device single flight and rate limit, HTTP
//! Digest first, UDP (Annex G) when the device reported a UDP address and HTTP did not work.

use std::time::{Duration, Instant};

use dashmap::DashMap;
use serde::Serialize;

use acs::connreq::{CrOptions, CrOutcome};

use crate::config::ConnectionRequestConfig;

pub struct CrManager {
    last: DashMap<String, Instant>,
    opts: CrOptions,
    min_interval: Duration,
    username: String,
    password: String,
    /// Networks connection requests may go to besides the address a device informed from.
    allow_networks: Vec<ipnet::IpNet>,
    udp: tokio::sync::OnceCell<tokio::net::UdpSocket>,
}

/// What the NBI reports about a connection request.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CrReport {
    /// `accepted`, `in_session`, `rate_limited`, `no_url`, `auth_failed`, `busy`, `refused`,
    /// `timeout`, `forbidden` (the URL is not where the device informed from), `udp_sent`,
    /// `error`.
    pub result: String,
    pub detail: String,
}

impl CrReport {
    fn new(result: &str, detail: impl Into<String>) -> Self {
        CrReport {
            result: result.into(),
            detail: detail.into(),
        }
    }
}

/// The device facts a connection request needs.
pub struct CrTarget<'a> {
    pub device_id: &'a str,
    pub url: Option<&'a str>,
    pub udp_address: Option<&'a str>,
    pub username: Option<&'a str>,
    pub password: Option<&'a str>,
    /// Where the device last informed from (`ip:port`): connection requests go there only.
    pub informed_from: Option<&'a str>,
}

/// The IP of an `ip:port` (or bare IP) string.
fn ip_of(addr: &str) -> Option<std::net::IpAddr> {
    addr.parse::<std::net::SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| addr.parse::<std::net::IpAddr>())
        .ok()
        .map(|ip| match ip {
            std::net::IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
            v4 => v4,
        })
}

impl CrManager {
    pub fn new(cfg: &ConnectionRequestConfig) -> Self {
        let opts = CrOptions {
            allow_basic: cfg.allow_basic,
            total_timeout: Duration::from_secs(cfg.timeout_secs.max(1)),
            ..CrOptions::default()
        };
        CrManager {
            last: DashMap::new(),
            opts,
            min_interval: Duration::from_secs(cfg.min_interval_secs),
            username: cfg.username.clone(),
            password: cfg.password.clone(),
            allow_networks: cfg.allow_networks.clone(),
            udp: tokio::sync::OnceCell::new(),
        }
    }

    /// Asks the device to open a session. At most one request per device per `min_interval`.
    pub async fn request(&self, t: CrTarget<'_>) -> CrReport {
        let now = Instant::now();
        {
            // (`now - min_interval` could underflow shortly after boot: no arithmetic.)
            let mut e = self.last.entry(t.device_id.to_string()).or_insert(now);
            if *e != now && now.saturating_duration_since(*e) < self.min_interval {
                return CrReport::new("rate_limited", "a connection request was sent recently");
            }
            *e = now;
        }
        let user = t
            .username
            .filter(|u| !u.is_empty())
            .unwrap_or(&self.username);
        let pass = t
            .password
            .filter(|p| !p.is_empty())
            .unwrap_or(&self.password);
        // Only where the device informed from (or a network the operator lists): a
        // device-reported URL must not aim our requests at other hosts.
        let informed = t.informed_from.and_then(ip_of);
        let allowed = |ip: std::net::IpAddr| {
            let ip = ip_of(&ip.to_string()).unwrap_or(ip);
            Some(ip) == informed || self.allow_networks.iter().any(|n| n.contains(&ip))
        };
        let mut report = match t.url.filter(|u| !u.is_empty()) {
            Some(url) => {
                let outcome =
                    acs::connreq::http_connection_request_to(url, user, pass, &self.opts, &allowed)
                        .await;
                tracing::info!(device = %t.device_id, url, outcome = ?outcome, "connection request");
                // What the target answered stays in the log: the NBI says only what kind of
                // outcome it was.
                match outcome {
                    CrOutcome::Accepted => return CrReport::new("accepted", "the CPE accepted"),
                    CrOutcome::AuthFailed => {
                        CrReport::new("auth_failed", "the CPE refused our credentials")
                    }
                    CrOutcome::Busy => CrReport::new(
                        "busy",
                        "the CPE is busy (rate limit, or proxied device offline)",
                    ),
                    CrOutcome::Refused => CrReport::new("refused", "connection refused or reset"),
                    CrOutcome::Timeout => CrReport::new("timeout", "no answer"),
                    CrOutcome::Forbidden(_) => CrReport::new(
                        "forbidden",
                        "the ConnectionRequestURL is not at the address the device informed from",
                    ),
                    CrOutcome::HttpStatus(_) | CrOutcome::Error(_) => CrReport::new(
                        "error",
                        "the answer was not a connection-request answer (see the server log)",
                    ),
                }
            }
            None => CrReport::new("no_url", "the device reported no ConnectionRequestURL"),
        };
        if let Some(addr) = t.udp_address.filter(|a| !a.is_empty()) {
            let host_ip = addr
                .rsplit_once(':')
                .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
                .and_then(ip_of);
            if !host_ip.is_some_and(allowed) {
                tracing::warn!(device = %t.device_id, addr, "UDP connection request not sent: not the address the device informed from");
                return report;
            }
            match self.udp_socket().await {
                Ok(sock) => {
                    match acs::connreq::udp_connection_request(sock, addr, user, pass).await {
                        Ok(()) => {
                            tracing::info!(device = %t.device_id, addr, "UDP connection request sent");
                            report = CrReport::new("udp_sent", addr);
                        }
                        Err(e) => {
                            tracing::warn!(device = %t.device_id, addr, error = %e, "UDP connection request failed")
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open the UDP connection-request socket")
                }
            }
        }
        report
    }

    async fn udp_socket(&self) -> std::io::Result<&tokio::net::UdpSocket> {
        self.udp
            .get_or_try_init(|| async { tokio::net::UdpSocket::bind("0.0.0.0:0").await })
            .await
    }
}

/// Wakes a device: nothing when it is in session on this node, else a connection request
/// whose outcome is recorded on the device (`last_cr_at`, `last_cr_result`).
pub async fn wake(state: &crate::app::AppState, device: &store::DeviceRow) -> CrReport {
    if state.sessions.in_session(&device.id) {
        metrics::counter!("keelson_connection_requests_total", "result" => "in_session")
            .increment(1);
        return CrReport::new(
            "in_session",
            "the device is in session; queued tasks run in it",
        );
    }
    let report = state
        .cr
        .request(CrTarget {
            device_id: &device.id,
            url: device.connection_request_url.as_deref(),
            udp_address: device.udp_connection_request_address.as_deref(),
            username: device.cr_username.as_deref(),
            password: device.cr_password.as_deref(),
            informed_from: device.last_remote_addr.as_deref(),
        })
        .await;
    metrics::counter!("keelson_connection_requests_total", "result" => report.result.clone())
        .increment(1);
    if let Err(e) = state
        .store
        .record_connection_request(&device.id, chrono::Utc::now(), &report.result)
        .await
    {
        tracing::warn!(device = %device.id, error = %e, "recording the connection request failed");
    }
    report
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

    #[tokio::test]
    async fn one_request_per_device_per_interval() {
        let cr = CrManager::new(&ConnectionRequestConfig {
            min_interval_secs: 60,
            timeout_secs: 2,
            ..Default::default()
        });
        // A closed loopback port: the first attempt is made (and refused), the second is not.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/cr");
        let target = || CrTarget {
            device_id: "dev-1",
            url: Some(&url),
            udp_address: None,
            username: None,
            password: None,
            informed_from: Some("127.0.0.1:7547"),
        };
        assert_eq!(cr.request(target()).await.result, "refused");
        assert_eq!(cr.request(target()).await.result, "rate_limited");
        let other = CrTarget {
            device_id: "dev-2",
            ..target()
        };
        assert_eq!(
            cr.request(other).await.result,
            "refused",
            "limits are per device"
        );
        let no_url = CrTarget {
            device_id: "dev-3",
            url: None,
            ..target()
        };
        assert_eq!(cr.request(no_url).await.result, "no_url");
    }
}
