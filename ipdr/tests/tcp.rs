//! The exporter simulator against the TCP collector over real loopback sockets
//! (127.0.0.1 only): both connection directions, exactly-once storage, acknowledgements
//! that wait for the sink, dropped connections, several exporters with a bad one among
//! them, UDP version discovery, graceful shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipdr::codec::{
    Body, Capabilities, Connect, DocumentId, ErrorCode, Message, ProtocolTag, TransportType,
    VersionRequest,
};
use ipdr::exporter::ExporterEvent;
use ipdr::tcp::{dial, discover, discovery_response, serve, serve_discovery};
use ipdr::tr232::{BulkDataLayout, BulkDataReport};
use ipdr::{Framer, Record, RecordSink, Shutdown, SinkError, SinkFuture, TransportConfig};
use sim::ipdr::{
    run_exporter, run_exporter_listening, run_exporter_until, ExporterReport, SimConnection,
    SimExporterConfig,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;

type Key = (String, u8, DocumentId, u64);

/// An in-memory sink: stores records after a small async delay, de-duplicating on
/// (exporter, session, documentId, DSN). Can fail its first commits or wait at a gate.
#[derive(Default)]
struct MemSink {
    delay: Duration,
    fail_first: AtomicUsize,
    fail_always: bool,
    gate: Option<Semaphore>,
    calls: AtomicUsize,
    state: Mutex<SinkState>,
}

#[derive(Default)]
struct SinkState {
    records: HashMap<Key, BulkDataReport>,
    /// Records that arrived again for a key already stored.
    duplicates: u64,
    commits: u64,
}

impl MemSink {
    fn with_delay(ms: u64) -> MemSink {
        MemSink {
            delay: Duration::from_millis(ms),
            ..MemSink::default()
        }
    }

    fn len(&self) -> usize {
        self.state.lock().unwrap().records.len()
    }

    fn duplicates(&self) -> u64 {
        self.state.lock().unwrap().duplicates
    }

    /// Every DSN 0..=up_to of the document is stored.
    fn holds(&self, doc: DocumentId, up_to: u64) -> bool {
        let st = self.state.lock().unwrap();
        let n = st
            .records
            .keys()
            .filter(|k| k.2 == doc && k.3 <= up_to)
            .count() as u64;
        n == up_to + 1
    }

    /// Records of one document, by DSN.
    fn document(&self, doc: DocumentId) -> Vec<(u64, BulkDataReport)> {
        let st = self.state.lock().unwrap();
        let mut v: Vec<_> = st
            .records
            .iter()
            .filter(|(k, _)| k.2 == doc)
            .map(|(k, r)| (k.3, r.clone()))
            .collect();
        v.sort_by_key(|x| x.0);
        v
    }

    fn documents(&self) -> Vec<DocumentId> {
        let st = self.state.lock().unwrap();
        let mut d: Vec<_> = st.records.keys().map(|k| k.2).collect();
        d.sort();
        d.dedup();
        d
    }
}

impl RecordSink for MemSink {
    fn commit<'a>(&'a self, exporter: &'a str, records: &'a [Record]) -> SinkFuture<'a> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if let Some(g) = &self.gate {
                let _permit = g.acquire().await.unwrap();
            }
            tokio::time::sleep(self.delay).await;
            if self.fail_always {
                return Err(SinkError::permanent("disk on fire"));
            }
            if self
                .fail_first
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(SinkError::transient("database busy"));
            }
            let mut st = self.state.lock().unwrap();
            st.commits += 1;
            for r in records {
                let key = (
                    exporter.to_string(),
                    r.session_id,
                    r.document_id,
                    r.sequence_num,
                );
                let rep = BulkDataReport::from_fields(&r.fields).expect("a TR-232 report");
                if st.records.insert(key, rep).is_some() {
                    st.duplicates += 1;
                }
            }
            Ok(())
        })
    }
}

/// Counts DATA_ACKs seen by the simulator and every one that covered a record the sink
/// did not yet hold.
#[derive(Default)]
struct AckWatch {
    acks: AtomicU64,
    early: AtomicU64,
}

fn watch(cfg: &mut SimExporterConfig, sink: &Arc<MemSink>) -> Arc<AckWatch> {
    let w = Arc::new(AckWatch::default());
    let (w2, sink) = (w.clone(), sink.clone());
    cfg.on_event = Some(Arc::new(move |e| {
        if let ExporterEvent::Acked {
            document_id,
            sequence_num,
            records,
            ..
        } = e
        {
            if *records > 0 {
                w2.acks.fetch_add(1, Ordering::SeqCst);
                if !sink.holds(*document_id, *sequence_num) {
                    w2.early.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }));
    w
}

fn transport(fast: bool) -> Arc<TransportConfig> {
    Arc::new(TransportConfig {
        commit_backoff: Duration::from_millis(20),
        reconnect_min: Duration::from_millis(50),
        reconnect_max: Duration::from_millis(200),
        max_batch_records: if fast { 4096 } else { 256 },
        ..TransportConfig::default()
    })
}

fn sim(connection: SimConnection, records: u64) -> SimExporterConfig {
    SimExporterConfig {
        connection,
        records: Some(records),
        devices: 25,
        window: 256,
        ack_sequence_interval: 64,
        reconnect_delay: Duration::from_millis(50),
        drain_timeout: Duration::from_secs(20),
        ..SimExporterConfig::default()
    }
}

async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

async fn within<T>(secs: u64, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("test timed out")
}

/// Every record of the run is stored exactly once and matches the fleet's report.
fn check_complete(sink: &MemSink, cfg: &SimExporterConfig, report: &ExporterReport, n: u64) {
    assert!(report.complete, "{report}");
    assert_eq!(report.records_generated, n);
    assert_eq!(report.records_acked, n);
    let docs = sink.documents();
    let fleet = cfg.fleet();
    let mut index = 0u64;
    let mut total = 0;
    // Documents in creation order: by first record's index (serial numbers cycle, so
    // compare contents instead of ordering by id).
    let mut docs: Vec<Vec<(u64, BulkDataReport)>> =
        docs.into_iter().map(|d| sink.document(d)).collect();
    docs.sort_by_key(|d| {
        let first = &d[0].1;
        (0..n).find(|i| {
            fleet.report(*i, 0).bulk_data == first.bulk_data
                && fleet.report(*i, 0).serial_number == first.serial_number
        })
    });
    for d in &docs {
        for (j, (dsn, rep)) in d.iter().enumerate() {
            assert_eq!(*dsn, j as u64, "DSNs 0.. without gaps");
            let want = fleet.report(index, rep.creation_time_ms);
            assert_eq!(rep, &want, "record {index}");
            index += 1;
            total += 1;
        }
    }
    assert_eq!(total, n as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporter_dials_collector_every_record_once() {
    let (l, addr) = listener().await;
    let sink = Arc::new(MemSink::with_delay(2));
    let (stop, shutdown) = Shutdown::new();
    let server = tokio::spawn(serve(l, transport(false), sink.clone(), shutdown));
    let mut cfg = sim(SimConnection::Dial(addr.to_string()), 3000);
    let w = watch(&mut cfg, &sink);
    let report = within(60, run_exporter(cfg.clone())).await.unwrap();
    check_complete(&sink, &cfg, &report, 3000);
    assert_eq!(sink.duplicates(), 0);
    assert_eq!(report.data_resent, 0);
    assert_eq!(report.connections, 1);
    assert!(w.acks.load(Ordering::SeqCst) > 0);
    assert_eq!(
        w.early.load(Ordering::SeqCst),
        0,
        "a DATA_ACK preceded its commit"
    );
    stop.trigger();
    within(10, server).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flattened_layout_and_several_documents() {
    let (l, addr) = listener().await;
    let sink = Arc::new(MemSink::with_delay(1));
    let (stop, shutdown) = Shutdown::new();
    let server = tokio::spawn(serve(l, transport(false), sink.clone(), shutdown));
    let mut cfg = sim(SimConnection::Dial(addr.to_string()), 1000);
    cfg.layout = BulkDataLayout::Flattened;
    cfg.pairs = 23;
    cfg.records_per_document = Some(300);
    let w = watch(&mut cfg, &sink);
    let report = within(60, run_exporter(cfg.clone())).await.unwrap();
    assert_eq!(report.documents, 4);
    assert_eq!(sink.documents().len(), 4);
    check_complete(&sink, &cfg, &report, 1000);
    assert_eq!(w.early.load(Ordering::SeqCst), 0);
    stop.trigger();
    within(10, server).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_dials_listening_exporter() {
    let (l, addr) = listener().await;
    let sink = Arc::new(MemSink::with_delay(2));
    let mut cfg = sim(SimConnection::Listen(addr), 2000);
    let w = watch(&mut cfg, &sink);
    let exporter = tokio::spawn(run_exporter_listening(cfg.clone(), l, Shutdown::never()));
    let (stop, shutdown) = Shutdown::new();
    let collector = tokio::spawn(dial(
        addr.to_string(),
        transport(false),
        sink.clone(),
        shutdown,
    ));
    let report = within(60, exporter).await.unwrap().unwrap();
    check_complete(&sink, &cfg, &report, 2000);
    assert_eq!(sink.duplicates(), 0);
    assert_eq!(w.early.load(Ordering::SeqCst), 0);
    // Records are named after the dialled address.
    assert!(sink
        .state
        .lock()
        .unwrap()
        .records
        .keys()
        .all(|k| k.0 == addr.to_string()));
    stop.trigger();
    within(10, collector).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_wait_for_a_slow_sink() {
    let (l, addr) = listener().await;
    let sink = Arc::new(MemSink {
        gate: Some(Semaphore::new(0)),
        ..MemSink::default()
    });
    let (stop, shutdown) = Shutdown::new();
    let server = tokio::spawn(serve(l, transport(false), sink.clone(), shutdown));
    let mut cfg = sim(SimConnection::Dial(addr.to_string()), 300);
    cfg.window = 100;
    let w = watch(&mut cfg, &sink);
    let exporter = tokio::spawn(run_exporter(cfg.clone()));
    // Records arrive, a commit is under way, but storage has confirmed nothing.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        sink.calls.load(Ordering::SeqCst) >= 1,
        "a commit was started"
    );
    assert_eq!(sink.len(), 0);
    assert_eq!(
        w.acks.load(Ordering::SeqCst),
        0,
        "no DATA_ACK before the commit"
    );
    // Open the gate: everything is stored, then acknowledged.
    sink.gate.as_ref().unwrap().add_permits(1_000_000);
    let report = within(60, exporter).await.unwrap().unwrap();
    check_complete(&sink, &cfg, &report, 300);
    assert_eq!(w.early.load(Ordering::SeqCst), 0);
    stop.trigger();
    within(10, server).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_commits_are_retried_and_never_acknowledged() {
    let (l, addr) = listener().await;
    let sink = Arc::new(MemSink {
        fail_first: AtomicUsize::new(3),
        delay: Duration::from_millis(1),
        ..MemSink::default()
    });
    let (stop, shutdown) = Shutdown::new();
    let server = tokio::spawn(serve(l, transport(false), sink.clone(), shutdown));
    let mut cfg = sim(SimConnection::Dial(addr.to_string()), 1000);
    let w = watch(&mut cfg, &sink);
    let report = within(60, run_exporter(cfg.clone())).await.unwrap();
    check_complete(&sink, &cfg, &report, 1000);
    assert_eq!(
        report.connections, 1,
        "transient failures do not cost the connection"
    );
    assert_eq!(w.early.load(Ordering::SeqCst), 0);
    assert!(sink.calls.load(Ordering::SeqCst) as u64 >= sink.state.lock().unwrap().commits + 3);
    stop.trigger();
    within(10, server).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_keeps_failing_ends_the_connection_unacknowledged() {
    let (l, addr) = listener().await;
    let sink = Arc::new(MemSink {
        fail_always: true,
        ..MemSink::default()
    });
    let (stop, shutdown) = Shutdown::new();
    let server = tokio::spawn(serve(l, transport(false), sink.clone(), shutdown));
    let mut cfg = sim(SimConnection::Dial(addr.to_string()), 20);
    cfg.drain_timeout = Duration::from_millis(1500);
    let w = watch(&mut cfg, &sink);
    let report = within(60, run_exporter(cfg)).await.unwrap();
    assert!(!report.complete);
    assert_eq!(report.records_acked, 0);
    assert_eq!(w.acks.load(Ordering::SeqCst), 0);
    assert!(
        report.peer_errors >= 1,
        "the collector said ERROR (process terminating)"
    );
    assert!(report.connections >= 2, "the exporter came back and resent");
    assert!(report.data_resent >= 20);
    assert_eq!(sink.len(), 0);
    stop.trigger();
    within(10, server).await.unwrap().unwrap();
}

/// A TCP proxy that cuts its first connection after `cut_after` bytes (both directions
/// counted) and passes later ones untouched.
async fn cutting_proxy(target: SocketAddr, cut_after: usize) -> (SocketAddr, Arc<AtomicUsize>) {
    let (l, addr) = listener().await;
    let conns = Arc::new(AtomicUsize::new(0));
    let c2 = conns.clone();
    tokio::spawn(async move {
        loop {
            let Ok((a, _)) = l.accept().await else { return };
            let Ok(b) = TcpStream::connect(target).await else {
                continue;
            };
            let n = c2.fetch_add(1, Ordering::SeqCst);
            let cut = (n == 0).then_some(cut_after);
            tokio::spawn(async move {
                let counted = Arc::new(AtomicUsize::new(0));
                let (ar, aw) = a.into_split();
                let (br, bw) = b.into_split();
                let pump = |mut r: tokio::net::tcp::OwnedReadHalf,
                            mut w: tokio::net::tcp::OwnedWriteHalf,
                            counted: Arc<AtomicUsize>| async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = match r.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if w.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                        let total = counted.fetch_add(n, Ordering::SeqCst) + n;
                        if cut.is_some_and(|c| total >= c) {
                            return;
                        }
                    }
                };
                let up = pump(ar, bw, counted.clone());
                let down = pump(br, aw, counted);
                tokio::select! {
                    _ = up => {}
                    _ = down => {}
                }
                // Both halves of both sockets drop here: the connection is cut.
            });
        }
    });
    (addr, conns)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_exporter_dials_resends_unacknowledged() {
    let (l, addr) = listener().await;
    let sink = Arc::new(MemSink::with_delay(2));
    let (stop, shutdown) = Shutdown::new();
    let server = tokio::spawn(serve(l, transport(false), sink.clone(), shutdown));
    let (proxy, conns) = cutting_proxy(addr, 1_000_000).await;
    let mut cfg = sim(SimConnection::Dial(proxy.to_string()), 4000);
    let w = watch(&mut cfg, &sink);
    let report = within(60, run_exporter(cfg.clone())).await.unwrap();
    assert!(conns.load(Ordering::SeqCst) >= 2);
    assert!(report.connections >= 2, "{report}");
    assert!(
        report.data_resent > 0,
        "unacknowledged records were resent: {report}"
    );
    check_complete(&sink, &cfg, &report, 4000);
    assert_eq!(w.early.load(Ordering::SeqCst), 0);
    stop.trigger();
    within(10, server).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_collector_dials_again() {
    let (l, addr) = listener().await;
    let sink = Arc::new(MemSink::with_delay(2));
    let mut cfg = sim(SimConnection::Listen(addr), 4000);
    let w = watch(&mut cfg, &sink);
    let exporter = tokio::spawn(run_exporter_listening(cfg.clone(), l, Shutdown::never()));
    let (proxy, conns) = cutting_proxy(addr, 1_000_000).await;
    let (stop, shutdown) = Shutdown::new();
    let collector = tokio::spawn(dial(
        proxy.to_string(),
        transport(false),
        sink.clone(),
        shutdown,
    ));
    let report = within(60, exporter).await.unwrap().unwrap();
    assert!(conns.load(Ordering::SeqCst) >= 2);
    assert!(report.data_resent > 0, "{report}");
    check_complete(&sink, &cfg, &report, 4000);
    assert_eq!(w.early.load(Ordering::SeqCst), 0);
    stop.trigger();
    within(10, collector).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_crash_and_restart_mid_stream() {
    let (l, addr) = listener().await;
    let sink = Arc::new(MemSink::with_delay(5));
    let server = tokio::spawn(serve(l, transport(false), sink.clone(), Shutdown::never()));
    let mut cfg = sim(SimConnection::Dial(addr.to_string()), 4000);
    let w = watch(&mut cfg, &sink);
    let exporter = tokio::spawn(run_exporter(cfg.clone()));
    // Let part of the stream through, then kill the collector (commits in flight are
    // abandoned like a crashed process's transactions).
    while sink.len() < 800 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.abort();
    let _ = server.await;
    let stored_at_crash = sink.len();
    assert!(stored_at_crash < 4000);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let l = TcpListener::bind(addr).await.unwrap();
    let (stop, shutdown) = Shutdown::new();
    let server = tokio::spawn(serve(l, transport(false), sink.clone(), shutdown));
    let report = within(60, exporter).await.unwrap().unwrap();
    assert!(report.connections >= 2);
    check_complete(&sink, &cfg, &report, 4000);
    assert_eq!(w.early.load(Ordering::SeqCst), 0);
    stop.trigger();
    within(10, server).await.unwrap().unwrap();
}

/// Reads messages until EOF; returns them (errors from the framer end the read).
async fn read_all(mut s: TcpStream) -> Vec<Message> {
    let mut f = Framer::default();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return out,
            Ok(Ok(n)) => n,
        };
        f.push(&buf[..n]);
        while let Some(m) = f.next_message() {
            match m {
                Ok(m) => out.push(m),
                Err(_) => return out,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_exporters_one_sends_garbage() {
    let (l, addr) = listener().await;
    let sink = Arc::new(MemSink::with_delay(2));
    let (stop, shutdown) = Shutdown::new();
    let server = tokio::spawn(serve(l, transport(false), sink.clone(), shutdown));
    let mut runs = Vec::new();
    let mut watches = Vec::new();
    for k in 0..3u64 {
        let mut cfg = sim(SimConnection::Dial(addr.to_string()), 1500);
        cfg.seed = 100 + k;
        cfg.serial_prefix = format!("E{k}-");
        watches.push(watch(&mut cfg, &sink));
        runs.push(tokio::spawn(run_exporter(cfg)));
    }
    // Garbage 1: not IPDR at all.
    let mut g1 = TcpStream::connect(addr).await.unwrap();
    g1.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // Garbage 2: a proper CONNECT, then DATA for a session that never started, then a
    // frame with an impossible length.
    let mut g2 = TcpStream::connect(addr).await.unwrap();
    let mut bytes = Vec::new();
    Message::new(
        0,
        Body::Connect(Connect {
            initiator_address: std::net::Ipv4Addr::LOCALHOST,
            initiator_port: 1,
            capabilities: Capabilities::NONE,
            keep_alive_interval: 30,
            vendor_id: "garbage".into(),
        }),
    )
    .encode(&mut bytes)
    .unwrap();
    bytes.extend_from_slice(&[2, 0x20, b'A', 0, 0, 0, 0, 30]);
    bytes.extend_from_slice(&[0u8; 22]);
    bytes.extend_from_slice(&[2, 0x20, b'A', 0, 0, 0, 0, 3]);
    g2.write_all(&bytes).await.unwrap();
    let (m1, m2) = tokio::join!(read_all(g1), read_all(g2));
    // Answered with a connection-level ERROR (decode error) and closed.
    assert!(
        matches!(&m1[..], [m] if matches!(&m.body, Body::Error(e) if !e.session_specific && e.code == ErrorCode::MESSAGE_DECODE_ERROR)),
        "{m1:?}"
    );
    let errs: Vec<_> = m2
        .iter()
        .filter_map(|m| match &m.body {
            Body::Error(e) => Some(e.clone()),
            _ => None,
        })
        .collect();
    assert!(m2.iter().any(|m| m.id().name() == "CONNECT_RESPONSE"));
    assert!(errs.iter().any(|e| e.session_specific), "{errs:?}");
    assert!(errs.last().is_some_and(|e| !e.session_specific), "{errs:?}");
    for r in runs {
        let report = within(60, r).await.unwrap().unwrap();
        assert!(report.complete, "{report}");
        assert_eq!(report.connections, 1);
    }
    assert_eq!(sink.len(), 4500);
    assert_eq!(sink.duplicates(), 0);
    for w in watches {
        assert_eq!(w.early.load(Ordering::SeqCst), 0);
    }
    stop.trigger();
    within(10, server).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_version_discovery() {
    // The collector's responder on the same port number as its TCP listener.
    let (l, addr) = listener().await;
    let udp = UdpSocket::bind(addr).await.unwrap();
    let (stop, shutdown) = Shutdown::new();
    let responder = tokio::spawn(serve_discovery(
        udp,
        discovery_response(&[
            (TransportType::TCP, addr.port()),
            (TransportType::SCTP, 4737),
        ]),
        shutdown,
    ));
    let resp = within(10, discover(addr, Duration::from_secs(3)))
        .await
        .unwrap();
    assert_eq!(resp.protocols.len(), 2);
    let tcp = resp.find(TransportType::TCP).unwrap();
    assert_eq!(tcp.port, addr.port());
    assert_eq!(resp.find(TransportType::SCTP).unwrap().port, 4737);
    // A CRANE request gets no answer; the responder keeps serving.
    let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let crane = VersionRequest {
        requester_address: std::net::Ipv4Addr::LOCALHOST,
        requester_boot_time: 1,
        protocol: ProtocolTag::Crane,
    };
    c.send_to(&crane.encode(), addr).await.unwrap();
    c.send_to(b"junk", addr).await.unwrap();
    let mut buf = [0u8; 64];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), c.recv_from(&mut buf))
            .await
            .is_err()
    );
    assert!(within(10, discover(addr, Duration::from_secs(3)))
        .await
        .is_ok());
    stop.trigger();
    within(10, responder).await.unwrap().unwrap();
    drop(l);

    // The listening simulator answers discovery on its streaming port.
    let (l, addr) = listener().await;
    let (stop, shutdown) = Shutdown::new();
    let mut cfg = sim(SimConnection::Listen(addr), 10);
    cfg.discovery = true;
    let exporter = tokio::spawn(run_exporter_listening(cfg, l, shutdown));
    let resp = within(10, discover(addr, Duration::from_secs(3)))
        .await
        .unwrap();
    assert_eq!(resp.find(TransportType::TCP).unwrap().port, addr.port());
    stop.trigger();
    let report = within(10, exporter).await.unwrap().unwrap();
    assert_eq!(report.connections, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_commits_acknowledges_and_disconnects() {
    let (l, addr) = listener().await;
    let sink = Arc::new(MemSink::with_delay(20));
    let (stop, shutdown) = Shutdown::new();
    let server = tokio::spawn(serve(l, transport(false), sink.clone(), shutdown));
    let mut cfg = sim(SimConnection::Dial(addr.to_string()), 0);
    cfg.records = None;
    cfg.rate = Some(2000.0);
    cfg.max_connect_failures = Some(1);
    cfg.reconnect_delay = Duration::from_secs(2);
    cfg.drain_timeout = Duration::from_millis(300);
    let w = watch(&mut cfg, &sink);
    let (stop_sim, sim_shutdown) = Shutdown::new();
    let exporter = tokio::spawn(run_exporter_until(cfg, sim_shutdown));
    while sink.len() < 500 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.trigger();
    within(10, server).await.unwrap().unwrap();
    // Everything the collector received before leaving was stored and acknowledged.
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop_sim.trigger();
    let r = within(10, exporter).await.unwrap();
    let acked = match r {
        Ok(report) => report.records_acked,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        acked as usize,
        sink.len(),
        "all stored records were acknowledged"
    );
    assert_eq!(w.early.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_rate_duration_and_progress_reports() {
    let (l, addr) = listener().await;
    let sink = Arc::new(MemSink::with_delay(1));
    let (stop, shutdown) = Shutdown::new();
    let server = tokio::spawn(serve(l, transport(false), sink.clone(), shutdown));
    // 250 records at 500/s take about half a second.
    let progress = Arc::new(Mutex::new(Vec::<ExporterReport>::new()));
    let mut cfg = sim(SimConnection::Dial(addr.to_string()), 250);
    cfg.rate = Some(500.0);
    cfg.progress_interval = Some(Duration::from_millis(100));
    let p2 = progress.clone();
    cfg.progress = Some(Arc::new(move |r| p2.lock().unwrap().push(r.clone())));
    let report = within(30, run_exporter(cfg)).await.unwrap();
    assert!(report.complete, "{report}");
    assert!(report.elapsed >= Duration::from_millis(450), "{report}");
    assert!(report.elapsed < Duration::from_secs(5), "{report}");
    {
        let p = progress.lock().unwrap();
        assert!(p.len() >= 3, "{} progress reports", p.len());
        assert!(p
            .windows(2)
            .all(|w| w[0].records_acked <= w[1].records_acked));
    }
    // Unlimited records for a fixed duration.
    let mut cfg = sim(SimConnection::Dial(addr.to_string()), 0);
    cfg.records = None;
    cfg.duration = Some(Duration::from_millis(300));
    cfg.rate = Some(1000.0);
    let report = within(30, run_exporter(cfg)).await.unwrap();
    assert!(report.complete, "{report}");
    assert!((200..=400).contains(&report.records_generated), "{report}");
    assert_eq!(sink.len() as u64, 250 + report.records_generated);
    stop.trigger();
    within(10, server).await.unwrap().unwrap();
}
