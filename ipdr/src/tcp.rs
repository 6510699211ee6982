//! IPDR/SP over TCP for the collector (tokio), both connection directions, and UDP version
//! discovery (spec §1, §3.9).
//!
//! * [`serve`]: accept exporters that connect in (TR-232 CPEs, older CMTSs; port 4737 by
//!   default). One task per connection; one connection's failure never touches another.
//! * [`dial`]: connect out to an exporter that listens (DOCSIS CMTSs), reconnecting with
//!   exponential back-off for as long as the shutdown signal allows.
//! * [`serve_discovery`] / [`discover`]: the UDP version-discovery responder and query.
//!
//! The per-connection loop (framing, batching records into [`RecordSink::commit`],
//! acknowledging only after the commit, timers) is shared with SCTP; see
//! [`crate::transport`].

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinSet;

use crate::codec::{
    ProtocolInfo, ProtocolTag, TransportType, VersionRequest, VersionResponse, VERSION,
};
use crate::collector::{Direction, ExporterId};
use crate::transport::{run_collector, unix_now, CloseReason, Link};
pub use crate::transport::{
    ExporterNaming, NullSink, RecordSink, Shutdown, ShutdownTrigger, SinkError, SinkFuture,
    TransportConfig,
};

/// A connected TCP stream as a [`Link`].
pub struct TcpLink(pub TcpStream);

impl Link for TcpLink {
    async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            self.0.readable().await?;
            match self.0.try_read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }

    async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        loop {
            self.0.writable().await?;
            match self.0.try_write(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn shutdown_write(&self) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        // SAFETY: shutdown(2) on the stream's open descriptor.
        let r = unsafe { libc::shutdown(self.0.as_raw_fd(), libc::SHUT_WR) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// IPv4 form of a socket address for CONNECT's initiatorAddress (IPv6 → 0.0.0.0 unless it
/// is IPv4-mapped; the field cannot carry IPv6).
pub fn v4_of(a: SocketAddr) -> SocketAddrV4 {
    match a {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(a) => SocketAddrV4::new(
            a.ip().to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
            a.port(),
        ),
    }
}

pub(crate) fn exporter_name(naming: ExporterNaming, peer: SocketAddr) -> ExporterId {
    match naming {
        ExporterNaming::PeerIp => Arc::from(peer.ip().to_string()),
        ExporterNaming::PeerAddress => Arc::from(peer.to_string()),
    }
}

/// Runs the collector over a connected link and logs how the connection ended; returns
/// whether the handshake completed (callers reset their reconnect back-off on it).
pub(crate) async fn run_and_log<L: Link>(
    link: &L,
    exporter: ExporterId,
    direction: Direction,
    cfg: &crate::transport::TransportConfig,
    sink: &dyn crate::transport::RecordSink,
    shutdown: &mut crate::transport::Shutdown,
) -> bool {
    let o = run_collector(link, exporter.clone(), direction, cfg, sink, shutdown).await;
    log_outcome(&exporter, o.handshake, o.records_committed, &o.reason);
    o.handshake
}

pub(crate) fn log_outcome(exporter: &str, handshake: bool, committed: u64, reason: &CloseReason) {
    match reason {
        CloseReason::Protocol | CloseReason::PeerClosed => tracing::info!(
            exporter,
            handshake,
            records = committed,
            reason = %reason,
            "IPDR connection closed"
        ),
        _ => tracing::warn!(
            exporter,
            handshake,
            records = committed,
            reason = %reason,
            "IPDR connection failed"
        ),
    }
}

/// Accepts exporters that connect in, until shutdown is requested; then lets each
/// connection commit, acknowledge and DISCONNECT (within
/// [`TransportConfig::shutdown_grace`]) and returns.
///
/// Dropping the returned future aborts every connection at once (no DISCONNECT, nothing
/// further acknowledged).
pub async fn serve(
    listener: TcpListener,
    cfg: Arc<TransportConfig>,
    sink: Arc<dyn RecordSink>,
    mut shutdown: Shutdown,
) -> io::Result<()> {
    let mut tasks: JoinSet<()> = JoinSet::new();
    if let Ok(a) = listener.local_addr() {
        tracing::info!(addr = %a, "IPDR collector listening (TCP)");
    }
    loop {
        tokio::select! {
            _ = shutdown.requested() => break,
            Some(res) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(e) = res {
                    if e.is_panic() {
                        tracing::error!(error = %e, "IPDR connection task panicked");
                    }
                }
            }
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    // Refusals are logged (rate-limited) and counted by the registry.
                    let Ok(slot) = cfg.admission.admit(peer.ip(), 0, None) else {
                        drop(stream);
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let (cfg, sink, mut shutdown) = (cfg.clone(), sink.clone(), shutdown.clone());
                    tasks.spawn(async move {
                        let _slot = slot;
                        let exporter = exporter_name(cfg.exporter_naming, peer);
                        tracing::debug!(exporter = &*exporter, %peer, "IPDR exporter connected (TCP)");
                        let link = TcpLink(stream);
                        run_and_log(&link, exporter.clone(), Direction::Inbound, &cfg, &*sink, &mut shutdown).await;
                    });
                }
                Err(e) => {
                    // EMFILE and friends: back off a little instead of spinning.
                    tracing::warn!(error = %e, "IPDR accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Connects to an exporter that listens (`addr` = `host:port`) and collects from it,
/// reconnecting after any failure with exponential back-off
/// ([`TransportConfig::reconnect_min`] doubling up to `reconnect_max`, reset after a
/// connection that completed its handshake). Returns when shutdown is requested (after a
/// graceful DISCONNECT of the current connection).
///
/// Records are named after `addr` ([`crate::Record::exporter`]), stable across
/// reconnections.
pub async fn dial(
    addr: impl Into<String>,
    cfg: Arc<TransportConfig>,
    sink: Arc<dyn RecordSink>,
    mut shutdown: Shutdown,
) {
    let addr: String = addr.into();
    let exporter: ExporterId = Arc::from(addr.as_str());
    let mut backoff = cfg.reconnect_min;
    loop {
        if shutdown.is_requested() {
            return;
        }
        let attempt = tokio::select! {
            _ = shutdown.requested() => return,
            r = tokio::time::timeout(cfg.connect_attempt_timeout, TcpStream::connect(addr.as_str())) => r,
        };
        match attempt {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                let local = stream
                    .local_addr()
                    .map(v4_of)
                    .unwrap_or_else(|_| SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
                tracing::debug!(exporter = %addr, "IPDR collector connected out (TCP)");
                let link = TcpLink(stream);
                let handshake = run_and_log(
                    &link,
                    exporter.clone(),
                    Direction::Outbound { local },
                    &cfg,
                    &*sink,
                    &mut shutdown,
                )
                .await;
                if handshake {
                    backoff = cfg.reconnect_min;
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(exporter = %addr, error = %e, retry_in = ?backoff, "IPDR connect failed")
            }
            Err(_) => {
                tracing::warn!(exporter = %addr, retry_in = ?backoff, "IPDR connect timed out")
            }
        }
        if shutdown.is_requested() {
            return;
        }
        // ±25 % jitter so that many collectors do not reconnect in step.
        let jitter = 0.75 + rand::random::<f64>() * 0.5;
        let wait = backoff.mul_f64(jitter);
        tokio::select! {
            _ = shutdown.requested() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        backoff = backoff
            .saturating_mul(2)
            .min(cfg.reconnect_max.max(cfg.reconnect_min));
    }
}

/// The version-discovery answer offering IPDR/SP version 2 on each (transport, port).
pub fn discovery_response(offers: &[(TransportType, u16)]) -> VersionResponse {
    VersionResponse {
        protocols: offers
            .iter()
            .map(|&(transport_type, port)| ProtocolInfo {
                transport_type,
                protocol_version: VERSION as u32,
                port,
                reserved: 0,
            })
            .collect(),
    }
}

/// Answers UDP version-discovery requests (spec §3.9) on `socket` (normally bound to the
/// streaming port number) with `response`, until shutdown. Requests for another protocol
/// family (`CRAN`) and malformed datagrams are ignored.
pub async fn serve_discovery(
    socket: UdpSocket,
    response: VersionResponse,
    mut shutdown: Shutdown,
) -> io::Result<()> {
    let reply = response
        .encode()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut buf = [0u8; 512];
    loop {
        let (n, from) = tokio::select! {
            _ = shutdown.requested() => return Ok(()),
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    // ICMP errors from earlier replies surface here on Linux.
                    tracing::debug!(error = %e, "IPDR discovery receive error");
                    continue;
                }
            },
        };
        match VersionRequest::decode(buf.get(..n).unwrap_or_default()) {
            Ok(req) if req.protocol == ProtocolTag::Ipdr => {
                tracing::debug!(%from, requester = %req.requester_address, "IPDR version discovery");
                if let Err(e) = socket.send_to(&reply, from).await {
                    tracing::debug!(%from, error = %e, "IPDR discovery reply failed");
                }
            }
            Ok(req) => {
                tracing::debug!(%from, protocol = ?req.protocol, "IPDR discovery for another protocol ignored")
            }
            Err(e) => {
                tracing::debug!(%from, error = %e, "malformed IPDR discovery request ignored")
            }
        }
    }
}

/// Asks `addr` which IPDR/SP transports and ports it offers (spec §3.9): up to three
/// requests within `timeout`.
pub async fn discover(addr: SocketAddr, timeout: Duration) -> io::Result<VersionResponse> {
    let bind: SocketAddr = if addr.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(bind).await?;
    socket.connect(addr).await?;
    let local = socket.local_addr().map(v4_of)?;
    let request = VersionRequest {
        requester_address: *local.ip(),
        requester_boot_time: unix_now(),
        protocol: ProtocolTag::Ipdr,
    }
    .encode();
    let per_try = timeout.checked_div(3).unwrap_or_default();
    let mut buf = [0u8; 1500];
    let mut last: io::Error =
        io::Error::new(io::ErrorKind::TimedOut, "no version-discovery answer");
    let start = tokio::time::Instant::now();
    for i in 1..=3u32 {
        let until = per_try
            .checked_mul(i)
            .and_then(|d| start.checked_add(d))
            .unwrap_or(start);
        // A refusal (ICMP port unreachable, e.g. the responder is not up yet) surfaces as
        // a send or receive error: wait out this attempt's time before the next one.
        match socket.send(&request).await {
            Ok(_) => match tokio::time::timeout_at(until, socket.recv(&mut buf)).await {
                Ok(Ok(n)) => {
                    return VersionResponse::decode(buf.get(..n).unwrap_or_default())
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e));
                }
                Ok(Err(e)) => last = e,
                Err(_) => continue,
            },
            Err(e) => last = e,
        }
        tokio::time::sleep_until(until).await;
    }
    Err(last)
}
