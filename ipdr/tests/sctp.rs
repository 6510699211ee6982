//! SCTP transport. Kernel SCTP is often absent (the build machines' kernel has
//! `CONFIG_IP_SCTP` unset): the socket tests then print `SKIP: SCTP: <reason>` to the
//! terminal (uncaptured) and pass. The message framing is unit-tested without a socket in
//! `src/sctp.rs`.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ipdr::sctp::{dial_sctp, sctp_available, serve_sctp};
use ipdr::{Record, RecordSink, Shutdown, SinkFuture, TransportConfig};
use sim::ipdr::{run_exporter, SimConnection, SimError, SimExporterConfig};

/// Prints past the test harness's output capture, so a skip is visible in every run.
fn skip(reason: &str) {
    let _ = writeln!(std::io::stderr(), "SKIP: SCTP: {reason}");
}

#[derive(Default)]
struct CountSink(AtomicU64);

impl RecordSink for CountSink {
    fn commit<'a>(&'a self, _exporter: &'a str, records: &'a [Record]) -> SinkFuture<'a> {
        self.0.fetch_add(records.len() as u64, Ordering::SeqCst);
        Box::pin(async { Ok(()) })
    }
}

fn free_port() -> u16 {
    // Any number free for TCP is very likely free for SCTP too.
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporter_to_collector_over_sctp() {
    if let Err(reason) = sctp_available() {
        skip(&reason);
        return;
    }
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let sink = Arc::new(CountSink::default());
    let (stop, shutdown) = Shutdown::new();
    let server = tokio::spawn(serve_sctp(
        addr,
        Arc::new(TransportConfig::default()),
        sink.clone(),
        shutdown,
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let cfg = SimExporterConfig {
        connection: SimConnection::DialSctp(addr),
        records: Some(2000),
        window: 256,
        ..SimExporterConfig::default()
    };
    let report = tokio::time::timeout(Duration::from_secs(60), run_exporter(cfg))
        .await
        .unwrap()
        .unwrap();
    assert!(report.complete, "{report}");
    assert_eq!(sink.0.load(Ordering::SeqCst), 2000);
    stop.trigger();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn without_kernel_sctp_every_entry_point_says_why() {
    let Err(reason) = sctp_available() else {
        return;
    };
    skip(&reason);
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let cfg = Arc::new(TransportConfig::default());
    let sink: Arc<dyn RecordSink> = Arc::new(CountSink::default());
    let e = serve_sctp(addr, cfg.clone(), sink.clone(), Shutdown::never())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::Unsupported);
    assert_eq!(e.to_string(), reason);
    let e = dial_sctp(addr, cfg, sink, Shutdown::never())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::Unsupported);
    let sim = SimExporterConfig {
        connection: SimConnection::DialSctp(addr),
        ..SimExporterConfig::default()
    };
    match run_exporter(sim).await {
        Err(SimError::Connect { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::Unsupported)
        }
        other => panic!("{other:?}"),
    }
}

/// The public entry points can run on a multi-threaded runtime (`tokio::spawn` needs
/// `Send` futures). Compile-time only.
#[allow(dead_code)]
fn entry_points_are_send(listener: tokio::net::TcpListener) {
    fn send<T: Send>(_: T) {}
    let addr: SocketAddr = ([127, 0, 0, 1], 1).into();
    let cfg = Arc::new(TransportConfig::default());
    let sink: Arc<dyn RecordSink> = Arc::new(CountSink::default());
    send(serve_sctp(
        addr,
        cfg.clone(),
        sink.clone(),
        Shutdown::never(),
    ));
    send(dial_sctp(
        addr,
        cfg.clone(),
        sink.clone(),
        Shutdown::never(),
    ));
    send(ipdr::tcp::dial(
        "127.0.0.1:1",
        cfg.clone(),
        sink.clone(),
        Shutdown::never(),
    ));
    send(ipdr::tcp::discover(addr, Duration::from_secs(1)));
    send(run_exporter(SimExporterConfig::default()));
    send(ipdr::tcp::serve(listener, cfg, sink, Shutdown::never()));
}
