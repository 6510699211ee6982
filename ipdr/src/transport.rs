//! What the TCP and SCTP transports share: the [`RecordSink`] storage contract, the
//! [`Shutdown`] signal, [`TransportConfig`], and the collector's per-connection loop.
//!
//! The loop is the only place where the collector machine meets I/O. Per connection:
//!
//! * bytes read → [`crate::Framer`] → [`Collector::handle_message`] /
//!   [`Collector::handle_frame_error`];
//! * [`Output::Persist`] records are batched; one batch at a time is handed to
//!   [`RecordSink::commit`]. Only when that future resolves `Ok` is
//!   [`Collector::records_durable`] called, so a DATA_ACK never precedes durability.
//!   While a batch commits, the next one accumulates (group commit);
//! * a failed commit is retried with back-off when the sink says it is transient; when
//!   retries run out (or the failure is permanent) the connection ends with ERROR 4
//!   (process terminating): nothing was acknowledged, so the exporter resends;
//! * timers come from [`Collector::poll_timeout`]; reading pauses while too many records
//!   wait for storage, so a slow sink throttles the exporter instead of growing memory;
//! * a connection's failure ends that connection's task only.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use thiserror::Error;
use tokio::sync::watch;

use crate::codec::DocumentId;
use crate::collector::{
    Collector, CollectorConfig, ConnectionInfo, Direction, Event, ExporterId, Output, Record,
};

/// The future returned by [`RecordSink::commit`].
pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>>;

/// Durable storage for records, implemented by the application (the ACS over its
/// database; tests over memory).
///
/// `commit` must resolve `Ok` only once every record of the slice is durable. Records are
/// keyed by (exporter, session, documentId, DSN): an exporter resends what was not
/// acknowledged after a reconnection, so the same key can arrive again (with
/// [`Record::possible_duplicate`] set, or not, if the first copy never reached the
/// exporter's knowledge) and must be stored idempotently.
///
/// Batches of one connection are committed one at a time, in order.
pub trait RecordSink: Send + Sync {
    fn commit<'a>(&'a self, exporter: &'a str, records: &'a [Record]) -> SinkFuture<'a>;

    /// A protocol event of a connection (informational; called inline, keep it cheap).
    fn event(&self, exporter: &str, event: &Event) {
        let _ = (exporter, event);
    }
}

/// Why a commit failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct SinkError {
    pub message: String,
    /// Worth retrying the same batch (e.g. a busy database); otherwise the connection ends
    /// at once and the exporter resends later.
    pub retryable: bool,
}

impl SinkError {
    pub fn transient(message: impl Into<String>) -> SinkError {
        SinkError {
            message: message.into(),
            retryable: true,
        }
    }

    pub fn permanent(message: impl Into<String>) -> SinkError {
        SinkError {
            message: message.into(),
            retryable: false,
        }
    }
}

/// A sink that stores nothing and says everything is durable (benchmarks, dry runs).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl RecordSink for NullSink {
    fn commit<'a>(&'a self, _exporter: &'a str, _records: &'a [Record]) -> SinkFuture<'a> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// A cloneable shutdown signal. Triggered by [`ShutdownTrigger::trigger`], or by dropping
/// the trigger.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: Option<watch::Receiver<bool>>,
}

/// The sending side of [`Shutdown`]. Dropping it also requests shutdown.
#[derive(Debug)]
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

impl Shutdown {
    /// A trigger and its first signal.
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger { tx }, Shutdown { rx: Some(rx) })
    }

    /// A signal that never fires.
    pub fn never() -> Shutdown {
        Shutdown { rx: None }
    }

    pub fn is_requested(&self) -> bool {
        match &self.rx {
            None => false,
            Some(rx) => *rx.borrow() || rx.has_changed().is_err(),
        }
    }

    /// Completes when shutdown is requested (at once if it already was). Cancel-safe.
    pub async fn requested(&mut self) {
        match &mut self.rx {
            None => std::future::pending().await,
            Some(rx) => {
                let _ = rx.wait_for(|v| *v).await;
            }
        }
    }
}

impl From<watch::Receiver<bool>> for Shutdown {
    /// Shutdown is requested when the value becomes `true` or the sender is dropped.
    fn from(rx: watch::Receiver<bool>) -> Shutdown {
        Shutdown { rx: Some(rx) }
    }
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Another signal fed by this trigger.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            rx: Some(self.tx.subscribe()),
        }
    }
}

/// How a connection's exporter is named in [`Record::exporter`] and to the sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExporterNaming {
    /// The peer's IP address: stable across reconnections from new source ports, so the
    /// sink's de-duplication key holds across them.
    #[default]
    PeerIp,
    /// `ip:port`: one name per connection.
    PeerAddress,
}

/// Settings of the collector transports (TCP and SCTP).
#[derive(Debug, Clone)]
pub struct TransportConfig {
    pub collector: Arc<CollectorConfig>,
    /// Most records per [`RecordSink::commit`].
    pub max_batch_records: usize,
    /// Reading from a connection pauses while this many records wait for storage. The
    /// exporter's own window normally stops it first. While reading is paused nothing is
    /// received, so a sink that stalls for longer than the collector's keep-alive interval
    /// ends the connection (ERROR 0); the exporter then resends what was not acknowledged.
    pub max_pending_records: usize,
    /// Retries of a batch whose commit failed with a transient error.
    pub commit_retries: u32,
    /// First retry delay (doubles per retry, up to [`TransportConfig::commit_backoff_max`]).
    pub commit_backoff: Duration,
    pub commit_backoff_max: Duration,
    /// A connection whose peer accepts no bytes for this long is dropped.
    pub write_timeout: Duration,
    /// On shutdown, how long a connection may take to commit, acknowledge and DISCONNECT.
    pub shutdown_grace: Duration,
    /// Dialling: first delay before reconnecting (doubles up to `reconnect_max`; reset
    /// after a connection that completed its handshake).
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// Dialling: limit for one connection attempt.
    pub connect_attempt_timeout: Duration,
    /// Accepting: who may connect in (allow-list of peer networks) and how many at once
    /// (per peer address and in total). A refused connection is closed at once, logged and
    /// counted. Shared by the TCP and SCTP listeners of one configuration.
    pub admission: Arc<admission::Registry>,
    pub exporter_naming: ExporterNaming,
    /// Bytes read per socket read.
    pub read_buffer: usize,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            collector: Arc::new(CollectorConfig::default()),
            max_batch_records: 4096,
            max_pending_records: 65_536,
            commit_retries: 5,
            commit_backoff: Duration::from_millis(100),
            commit_backoff_max: Duration::from_secs(5),
            write_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(5),
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(60),
            connect_attempt_timeout: Duration::from_secs(10),
            admission: admission::Registry::new(
                "ipdr",
                admission::Caps {
                    per_address: 10_000,
                    total: 10_000,
                },
            ),
            exporter_naming: ExporterNaming::PeerIp,
            read_buffer: 64 * 1024,
        }
    }
}

/// Seconds since the epoch, saturated to `u32`.
pub fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().min(u32::MAX as u64) as u32)
}

/// A connected, reliable, ordered byte transport. Both methods take `&self` so that a
/// read and a write can be pending at once; both must be cancel-safe.
pub trait Link: Send + Sync {
    /// Reads some bytes; `Ok(0)` when the peer closed.
    fn recv<'a>(&'a self, buf: &'a mut [u8])
        -> impl Future<Output = io::Result<usize>> + Send + 'a;

    /// Writes a prefix of `buf` (which always starts at a message boundary); returns how
    /// many bytes were taken.
    fn send<'a>(&'a self, buf: &'a [u8]) -> impl Future<Output = io::Result<usize>> + Send + 'a;

    /// Sends end-of-stream (TCP FIN / SCTP SHUTDOWN); reading stays possible.
    fn shutdown_write(&self) -> io::Result<()>;
}

/// How long a connection that is being closed keeps reading (and discarding) after its
/// last message went out: closing a socket with unread input makes the kernel send a
/// reset, which can destroy the last messages (DATA_ACK, DISCONNECT, ERROR) before the
/// peer reads them.
pub const LINGER: Duration = Duration::from_secs(2);

/// Ends a connection without a reset: end-of-stream, then read and discard until the
/// peer closes too (or [`LINGER`] passes).
pub async fn close_gracefully<L: Link>(link: &L, buf: &mut [u8]) {
    if link.shutdown_write().is_err() {
        return;
    }
    let _ = tokio::time::timeout(LINGER, async {
        while let Ok(n) = link.recv(buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// How a collector connection ended.
#[derive(Debug)]
pub(crate) enum CloseReason {
    /// The protocol closed it (DISCONNECT, ERROR, keep-alive, our DISCONNECT on shutdown).
    Protocol,
    /// The peer closed the transport.
    PeerClosed,
    Io(io::Error),
    WriteTimeout,
    /// Shutdown grace period ran out with work outstanding.
    ShutdownTimeout,
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::Protocol => f.write_str("closed by the protocol"),
            CloseReason::PeerClosed => f.write_str("peer closed the connection"),
            CloseReason::Io(e) => write!(f, "I/O error: {e}"),
            CloseReason::WriteTimeout => f.write_str("peer stopped reading (write timeout)"),
            CloseReason::ShutdownTimeout => f.write_str("shutdown grace period ran out"),
        }
    }
}

#[derive(Debug)]
pub(crate) struct ConnOutcome {
    /// The CONNECT handshake completed.
    pub handshake: bool,
    pub records_committed: u64,
    pub reason: CloseReason,
}

struct Commit<'s> {
    records: Arc<Vec<Record>>,
    attempt: u32,
    fut: SinkFuture<'s>,
}

fn start_commit<'s>(
    sink: &'s dyn RecordSink,
    exporter: &ExporterId,
    records: Arc<Vec<Record>>,
    attempt: u32,
) -> Commit<'s> {
    let (exp, recs) = (exporter.clone(), records.clone());
    let fut: SinkFuture<'s> = Box::pin(async move { sink.commit(&exp, &recs).await });
    Commit {
        records,
        attempt,
        fut,
    }
}

/// The highest DSN per (session, document) in a batch.
fn durability_marks(records: &[Record]) -> Vec<(u8, DocumentId, u64)> {
    let mut marks: Vec<(u8, DocumentId, u64)> = Vec::new();
    for r in records {
        match marks
            .iter_mut()
            .find(|m| m.0 == r.session_id && m.1 == r.document_id)
        {
            Some(m) => m.2 = m.2.max(r.sequence_num),
            None => marks.push((r.session_id, r.document_id, r.sequence_num)),
        }
    }
    marks
}

fn log_event(exporter: &str, e: &Event) {
    match e {
        Event::Connected {
            vendor_id,
            capabilities,
            peer_keep_alive,
        } => tracing::info!(
            exporter,
            vendor_id,
            capabilities = capabilities.0,
            peer_keep_alive,
            "IPDR exporter connected"
        ),
        Event::PeerError {
            code, description, ..
        } => tracing::warn!(exporter, %code, description, "IPDR exporter sent ERROR"),
        Event::ErrorSent {
            code,
            description,
            fatal,
            ..
        } => tracing::warn!(exporter, %code, description, fatal, "IPDR ERROR sent"),
        Event::RecordRejected { error, .. } => {
            tracing::warn!(exporter, %error, "IPDR record rejected")
        }
        Event::TemplateRejected { error, .. } => {
            tracing::warn!(exporter, %error, "IPDR template rejected")
        }
        Event::SequenceGap {
            expected, received, ..
        } => tracing::debug!(exporter, expected, received, "IPDR sequence gap"),
        other => tracing::debug!(exporter, event = ?other, "IPDR event"),
    }
}

/// Resolves with the in-flight commit's result; never when there is none.
async fn commit_done(inflight: &mut Option<Commit<'_>>) -> Result<(), SinkError> {
    match inflight.as_mut() {
        Some(c) => c.fut.as_mut().await,
        None => std::future::pending().await,
    }
}

const FAR: Duration = Duration::from_secs(86_400);

/// Runs the collector machine over one connected link until it closes.
pub(crate) async fn run_collector<L: Link>(
    link: &L,
    exporter: ExporterId,
    direction: Direction,
    cfg: &TransportConfig,
    sink: &dyn RecordSink,
    shutdown: &mut Shutdown,
) -> ConnOutcome {
    let start = Instant::now();
    let info = ConnectionInfo {
        exporter: exporter.clone(),
        direction,
        unix_time: unix_now(),
        nonce: rand::random(),
    };
    let mut c = Collector::new(cfg.collector.clone(), info, start);
    let mut framer = cfg.collector.framer();
    let mut rbuf = vec![0u8; cfg.read_buffer.max(1024)];
    let mut wbuf: Vec<u8> = Vec::with_capacity(4096);
    let mut wpos = 0usize;
    let mut write_since: Option<Instant> = None;
    let mut batch: Vec<Record> = Vec::new();
    let mut inflight: Option<Commit<'_>> = None;
    let mut retry: Option<(Instant, Arc<Vec<Record>>, u32)> = None;
    let mut closing = false;
    let mut eof = false;
    let mut link_dead = false;
    let mut shutting = false;
    let mut shutdown_deadline: Option<Instant> = None;
    let mut handshake = false;
    let mut committed = 0u64;
    let mut reason: Option<CloseReason> = None;
    let timer = tokio::time::sleep(FAR);
    tokio::pin!(timer);
    let mut timer_at: Option<Instant> = None;

    loop {
        while let Some(o) = c.poll_output() {
            match o {
                Output::Send(m) => {
                    if let Err(e) = m.encode(&mut wbuf) {
                        tracing::warn!(exporter = &*exporter, error = %e, "cannot encode {}", m.id());
                    }
                }
                Output::Persist(r) => batch.push(r),
                Output::Event(e) => {
                    handshake |= matches!(e, Event::Connected { .. });
                    log_event(&exporter, &e);
                    sink.event(&exporter, &e);
                }
                Output::Close => closing = true,
            }
        }
        let now = Instant::now();
        if wpos >= wbuf.len() {
            wbuf.clear();
            wpos = 0;
            write_since = None;
        } else if write_since.is_none() {
            write_since = Some(now);
        }
        let ending = closing || eof;
        if ending {
            // Nothing after the close can be acknowledged: a failed batch is not retried
            // (the exporter resends it to the next connection).
            retry = None;
        }
        if inflight.is_none() && retry.is_none() && !batch.is_empty() {
            let n = batch.len().min(cfg.max_batch_records.max(1));
            let records: Vec<Record> = if n == batch.len() {
                std::mem::take(&mut batch)
            } else {
                batch.drain(..n).collect()
            };
            inflight = Some(start_commit(sink, &exporter, Arc::new(records), 1));
        }
        if shutting && !closing && inflight.is_none() && retry.is_none() && batch.is_empty() && !eof
        {
            // Everything received is durable and acknowledged: leave politely.
            let _ = c.disconnect(now);
            continue;
        }
        let flushed = link_dead || wpos >= wbuf.len();
        if ending && flushed && inflight.is_none() && batch.is_empty() {
            break;
        }
        if shutdown_deadline.is_some_and(|d| now >= d) {
            reason.get_or_insert(CloseReason::ShutdownTimeout);
            break;
        }

        let pending = batch
            .len()
            .saturating_add(inflight.as_ref().map_or(0, |c| c.records.len()))
            .saturating_add(retry.as_ref().map_or(0, |r| r.1.len()));
        let can_read = !ending && !shutting && pending < cfg.max_pending_records;
        let can_write = !link_dead && wpos < wbuf.len();
        let mut deadline = if ending { None } else { c.poll_timeout() };
        let mut at = |x: Option<Instant>| {
            if let Some(x) = x {
                deadline = Some(deadline.map_or(x, |d| d.min(x)));
            }
        };
        at(retry.as_ref().map(|r| r.0));
        at(write_since.map(|w| after(w, cfg.write_timeout)));
        at(shutdown_deadline);
        if deadline != timer_at {
            timer
                .as_mut()
                .reset(deadline.unwrap_or_else(|| after(now, FAR)).into());
            timer_at = deadline;
        }

        tokio::select! {
            biased;
            res = commit_done(&mut inflight), if inflight.is_some() => {
                let Some(done) = inflight.take() else { continue };
                let now = Instant::now();
                match res {
                    Ok(()) => {
                        committed = committed.saturating_add(done.records.len() as u64);
                        for (sid, doc, up_to) in durability_marks(&done.records) {
                            c.records_durable(now, sid, doc, up_to);
                        }
                    }
                    Err(e) => {
                        let more = e.retryable
                            && done.attempt <= cfg.commit_retries
                            && !closing
                            && !eof;
                        tracing::warn!(
                            exporter = &*exporter,
                            error = %e,
                            attempt = done.attempt,
                            records = done.records.len(),
                            retrying = more,
                            "IPDR record commit failed"
                        );
                        if more {
                            let shift = done.attempt.saturating_sub(1).min(16);
                            let delay = cfg
                                .commit_backoff
                                .saturating_mul(1 << shift)
                                .min(cfg.commit_backoff_max);
                            retry = Some((
                                after(now, delay),
                                done.records,
                                done.attempt.saturating_add(1),
                            ));
                        } else {
                            // Unacknowledged records are resent by the exporter later;
                            // the later ones cannot be acknowledged past the gap.
                            batch.clear();
                            let d = format!("storage unavailable: {e}");
                            let _ = c.terminate(now, &d);
                        }
                    }
                }
            }
            r = link.send(wbuf.get(wpos..).unwrap_or_default()), if can_write => match r {
                Ok(0) => {
                    link_dead = true;
                    eof = true;
                    reason.get_or_insert(CloseReason::PeerClosed);
                }
                Ok(n) => {
                    wpos = wpos.saturating_add(n);
                    write_since = (wpos < wbuf.len()).then(Instant::now);
                }
                Err(e) => {
                    link_dead = true;
                    eof = true;
                    reason.get_or_insert(CloseReason::Io(e));
                }
            },
            r = link.recv(&mut rbuf), if can_read => {
                let now = Instant::now();
                match r {
                    Ok(0) => {
                        eof = true;
                        reason.get_or_insert(CloseReason::PeerClosed);
                    }
                    Ok(n) => {
                        framer.push(rbuf.get(..n).unwrap_or_default());
                        while let Some(m) = framer.next_message() {
                            match m {
                                Ok(m) => c.handle_message(now, m),
                                Err(e) => c.handle_frame_error(now, &e),
                            }
                        }
                    }
                    Err(e) => {
                        eof = true;
                        link_dead = true;
                        reason.get_or_insert(CloseReason::Io(e));
                    }
                }
                if eof && !c.is_closed() {
                    let e = Event::Disconnected { by_peer: true };
                    log_event(&exporter, &e);
                    sink.event(&exporter, &e);
                }
            },
            _ = shutdown.requested(), if !shutting => {
                shutting = true;
                shutdown_deadline = Some(after(Instant::now(), cfg.shutdown_grace));
            },
            _ = &mut timer, if timer_at.is_some() => {
                timer_at = None;
                let now = Instant::now();
                if write_since.is_some_and(|w| now >= after(w, cfg.write_timeout)) {
                    link_dead = true;
                    eof = true;
                    reason.get_or_insert(CloseReason::WriteTimeout);
                }
                if retry.as_ref().is_some_and(|r| now >= r.0) {
                    if let Some((_, records, attempt)) = retry.take() {
                        inflight = Some(start_commit(sink, &exporter, records, attempt));
                    }
                }
                if c.poll_timeout().is_some_and(|t| now >= t) {
                    c.handle_timeout(now);
                }
            },
        }
    }
    if !link_dead {
        close_gracefully(link, &mut rbuf).await;
    }
    ConnOutcome {
        handshake,
        records_committed: committed,
        reason: reason.unwrap_or(CloseReason::Protocol),
    }
}

/// `t + d`, or as late as can be when that overflows (durations come from the
/// configuration and may be "forever").
fn after(t: Instant, d: Duration) -> Instant {
    t.checked_add(d).or_else(|| t.checked_add(FAR)).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_signals() {
        let (t, mut s) = Shutdown::new();
        assert!(!s.is_requested());
        let mut s2 = t.subscribe();
        t.trigger();
        assert!(s.is_requested());
        s.requested().await;
        s2.requested().await;
        let (t, mut s) = Shutdown::new();
        drop(t);
        assert!(s.is_requested());
        s.requested().await;
        let never = Shutdown::never();
        assert!(!never.is_requested());
    }
}
