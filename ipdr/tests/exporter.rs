//! The exporter state machine against the collector state machine, in memory (no
//! sockets): both connection directions, windowing, acknowledgement after durability,
//! resending after a lost connection, documents, keep-alive.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ipdr::codec::{Body, Capabilities, DocumentId, ErrorCode, Message, SessionStopReason};
use ipdr::collector::{Collector, CollectorConfig, ConnectionInfo, Direction, Output, Record};
use ipdr::exporter::{
    Exporter, ExporterConfig, ExporterEvent, ExporterOutput, ExporterSession, Role,
};
use ipdr::tr232::{tr232_template, BulkDataLayout, BulkDataReport, TR232_TEMPLATE_ID};
use sim::ipdr::DeviceFleet;

const SID: u8 = b'A';
const DOC: DocumentId = DocumentId([7; 16]);

fn local() -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::LOCALHOST, 40000)
}

fn fleet() -> DeviceFleet {
    DeviceFleet {
        oui: "02EE15".into(),
        product_class: "Sim".into(),
        serial_prefix: "T".into(),
        devices: 5,
        pairs: 20,
        seed: 3,
        interval: 300,
    }
}

fn exporter_config(window: usize) -> ExporterConfig {
    ExporterConfig {
        keep_alive_interval: 10,
        boot_time: 1_700_000_000,
        window_size: window,
        sessions: vec![ExporterSession {
            session_id: SID,
            name: "bulk".into(),
            description: "TR-232".into(),
            ack_time_interval: 1,
            ack_sequence_interval: 1_000_000,
            config_id: 3,
            templates: vec![tr232_template(BulkDataLayout::Structured, 20)],
            document_id: DOC,
        }],
        ..ExporterConfig::default()
    }
}

fn collector(direction: Direction, now: Instant) -> Collector {
    Collector::new(
        Arc::new(CollectorConfig {
            keep_alive_interval: 20,
            ..CollectorConfig::default()
        }),
        ConnectionInfo {
            exporter: Arc::from("sim"),
            direction,
            unix_time: 1_700_000_000,
            nonce: 42,
        },
        now,
    )
}

/// Both machines and a storage that is made durable on demand.
struct Pair {
    e: Exporter,
    c: Collector,
    now: Instant,
    /// Persisted, not yet durable.
    pending: Vec<Record>,
    /// Durable (may hold duplicates; `keys` de-duplicates).
    stored: Vec<Record>,
    keys: BTreeSet<(DocumentId, u64)>,
    to_collector: Vec<Message>,
    to_exporter: Vec<Message>,
    exporter_events: Vec<ExporterEvent>,
    exporter_closed: bool,
    collector_closed: bool,
}

impl Pair {
    fn new(exporter_initiates: bool, window: usize) -> Pair {
        Pair::with_config(exporter_initiates, exporter_config(window))
    }

    fn with_config(exporter_initiates: bool, cfg: ExporterConfig) -> Pair {
        let now = Instant::now();
        let mut e = Exporter::new(Arc::new(cfg), now);
        let c = if exporter_initiates {
            e.connection_opened(now, Role::Initiator { local: local() });
            collector(Direction::Inbound, now)
        } else {
            e.connection_opened(now, Role::Responder);
            collector(Direction::Outbound { local: local() }, now)
        };
        Pair {
            e,
            c,
            now,
            pending: Vec::new(),
            stored: Vec::new(),
            keys: BTreeSet::new(),
            to_collector: Vec::new(),
            to_exporter: Vec::new(),
            exporter_events: Vec::new(),
            exporter_closed: false,
            collector_closed: false,
        }
    }

    fn enqueue(&mut self, n: u64) {
        let f = fleet();
        for _ in 0..n {
            let i = self.e.stats().records_enqueued;
            let mut b = Vec::new();
            f.encode_report(i, 1_700_000_000_000 + i, BulkDataLayout::Structured, &mut b);
            self.e
                .enqueue(SID, TR232_TEMPLATE_ID, Bytes::from(b))
                .unwrap();
        }
    }

    /// Moves messages both ways (through encode/decode) until nothing moves. Storage is
    /// made durable after each round when `durable`.
    fn pump(&mut self, durable: bool) {
        loop {
            let mut moved = false;
            while let Some(o) = self.e.poll_output(self.now) {
                moved = true;
                match o {
                    ExporterOutput::Send(m) => {
                        let m = Message::decode(Bytes::from(m.to_bytes().unwrap())).unwrap();
                        self.to_collector.push(m.clone());
                        self.c.handle_message(self.now, m);
                    }
                    ExporterOutput::Event(ev) => self.exporter_events.push(ev),
                    ExporterOutput::Close => self.exporter_closed = true,
                }
            }
            while let Some(o) = self.c.poll_output() {
                moved = true;
                match o {
                    Output::Send(m) => {
                        let m = Message::decode(Bytes::from(m.to_bytes().unwrap())).unwrap();
                        self.to_exporter.push(m.clone());
                        if !self.exporter_closed {
                            self.e.handle_message(self.now, m);
                        }
                    }
                    Output::Persist(r) => self.pending.push(r),
                    Output::Event(_) => {}
                    Output::Close => self.collector_closed = true,
                }
            }
            if durable && !self.pending.is_empty() {
                self.make_durable(usize::MAX);
                moved = true;
            }
            if !moved {
                break;
            }
        }
    }

    /// Makes the first `n` pending records durable and tells the collector.
    fn make_durable(&mut self, n: usize) {
        let n = n.min(self.pending.len());
        let done: Vec<Record> = self.pending.drain(..n).collect();
        if let Some(last) = done.last() {
            self.c.records_durable(
                self.now,
                last.session_id,
                last.document_id,
                last.sequence_num,
            );
        }
        for r in done {
            self.keys.insert((r.document_id, r.sequence_num));
            self.stored.push(r);
        }
    }

    fn data_sent(&self) -> Vec<(u64, bool)> {
        self.to_collector
            .iter()
            .filter_map(|m| match &m.body {
                Body::Data(d) => Some((d.sequence_num, d.possible_duplicate())),
                _ => None,
            })
            .collect()
    }

    fn acks(&self) -> Vec<u64> {
        self.to_exporter
            .iter()
            .filter_map(|m| match &m.body {
                Body::DataAck(a) => Some(a.sequence_num),
                _ => None,
            })
            .collect()
    }

    /// Lets half the ackTimeInterval (1 s) pass on the collector.
    fn ack_timer(&mut self) {
        self.now += Duration::from_millis(600);
        self.c.handle_timeout(self.now);
    }

    /// A new transport connection (the old one is gone on both sides).
    fn reconnect(&mut self, exporter_initiates: bool) {
        self.now += Duration::from_millis(10);
        self.e.connection_lost(self.now);
        self.pending.clear(); // the collector died with them: never acknowledged
        self.to_collector.clear();
        self.to_exporter.clear();
        self.exporter_closed = false;
        self.collector_closed = false;
        if exporter_initiates {
            self.e
                .connection_opened(self.now, Role::Initiator { local: local() });
            self.c = collector(Direction::Inbound, self.now);
        } else {
            self.e.connection_opened(self.now, Role::Responder);
            self.c = collector(Direction::Outbound { local: local() }, self.now);
        }
    }
}

fn message_names(ms: &[Message]) -> Vec<&'static str> {
    ms.iter().map(|m| m.id().name()).collect()
}

#[test]
fn full_session_both_directions() {
    for initiates in [true, false] {
        let mut p = Pair::new(initiates, 64);
        p.enqueue(100);
        p.pump(true);
        assert!(
            p.e.is_connected() && p.e.is_active(SID),
            "initiates={initiates}"
        );
        let names = message_names(&p.to_collector);
        let first = if initiates {
            "CONNECT"
        } else {
            "CONNECT_RESPONSE"
        };
        assert_eq!(
            &names[..4],
            &[
                first,
                "GET_SESSIONS_RESPONSE",
                "TEMPLATE_DATA",
                "SESSION_START"
            ]
        );
        let to_e = message_names(&p.to_exporter);
        let want: &[&str] = if initiates {
            &[
                "CONNECT_RESPONSE",
                "GET_SESSIONS",
                "FLOW_START",
                "FINAL_TEMPLATE_DATA_ACK",
            ]
        } else {
            &[
                "CONNECT",
                "GET_SESSIONS",
                "FLOW_START",
                "FINAL_TEMPLATE_DATA_ACK",
            ]
        };
        assert_eq!(&to_e[..4], want);
        assert_eq!(p.keys.len(), 100);
        assert_eq!(p.stored.len(), 100);
        assert!(p.e.all_acknowledged());
        assert_eq!(p.e.stats().records_acked, 100);
        assert_eq!(*p.acks().last().unwrap(), 99);
        // The records decode back to the fleet's reports.
        let f = fleet();
        for r in &p.stored {
            let rep = BulkDataReport::from_fields(&r.fields).unwrap();
            let want = f.report(r.sequence_num, 1_700_000_000_000 + r.sequence_num);
            assert_eq!(rep, want);
            assert_eq!(r.document_id, DOC);
            assert!(!r.possible_duplicate);
        }
        // Polite end: SESSION_STOP, DISCONNECT, close on both sides.
        p.e.disconnect(p.now).unwrap();
        p.pump(true);
        assert!(p.exporter_closed && p.collector_closed);
        let tail = message_names(&p.to_collector);
        assert_eq!(&tail[tail.len() - 2..], &["SESSION_STOP", "DISCONNECT"]);
    }
}

#[test]
fn window_limits_outstanding_data_and_acks_follow_durability() {
    let mut p = Pair::new(true, 8);
    p.enqueue(30);
    p.pump(false);
    // Eight DATA out, nothing acknowledged: storage has confirmed nothing.
    assert_eq!(p.data_sent().len(), 8);
    assert!(p.acks().is_empty());
    assert_eq!(p.e.unacknowledged(SID), 30);
    // Three become durable: the ack covers exactly them, and three more DATA go out.
    p.make_durable(3);
    p.pump(false);
    assert!(
        p.acks().is_empty(),
        "not caught up: waits for the ack timer"
    );
    p.ack_timer();
    p.pump(false);
    assert_eq!(p.acks(), vec![2]);
    assert_eq!(p.e.unacknowledged(SID), 27);
    assert_eq!(p.data_sent().len(), 11);
    p.pump(true);
    assert!(p.e.all_acknowledged());
    assert_eq!(p.keys.len(), 30);
    // Every DATA_ACK covered only durable records.
    assert!(p.acks().windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn lost_connection_resends_everything_unacknowledged_in_both_directions() {
    for initiates in [true, false] {
        let mut p = Pair::new(initiates, 1000);
        p.enqueue(50);
        p.pump(false);
        assert_eq!(p.data_sent().len(), 50);
        p.make_durable(20);
        p.ack_timer();
        p.pump(false);
        assert_eq!(p.acks(), vec![19]);
        // The collector goes away with 30 records persisted but not durable.
        p.reconnect(initiates);
        p.enqueue(10);
        p.pump(true);
        let start = p
            .to_collector
            .iter()
            .find_map(|m| match &m.body {
                Body::SessionStart(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(start.document_id, DOC, "same document resumed");
        assert_eq!(start.first_record_sequence_number, 20);
        let sent = p.data_sent();
        assert_eq!(
            sent.first(),
            Some(&(20, true)),
            "resent from the last DATA_ACK"
        );
        assert_eq!(
            sent.iter().filter(|d| d.1).count(),
            30,
            "duplicate flag on resends"
        );
        assert_eq!(sent.iter().filter(|d| !d.1).count(), 10);
        assert_eq!(p.keys.len(), 60);
        assert_eq!(
            p.keys.iter().map(|k| k.1).collect::<Vec<_>>(),
            (0..60).collect::<Vec<_>>()
        );
        assert!(p.e.all_acknowledged());
        assert_eq!(p.e.stats().data_resent, 30);
        assert!(p.exporter_events.iter().any(|e| matches!(
            e,
            ExporterEvent::SessionStarted {
                resending: 30,
                first_sequence_num: 20,
                ..
            }
        )));
    }
}

#[test]
fn new_document_restarts_sequence_numbers() {
    let mut p = Pair::new(true, 100);
    p.enqueue(5);
    p.pump(true);
    let doc2 = DocumentId([9; 16]);
    p.e.new_document(p.now, SID, doc2).unwrap();
    p.enqueue(5);
    p.pump(true);
    let names = message_names(&p.to_collector);
    let stop = names.iter().position(|n| *n == "SESSION_STOP").unwrap();
    assert_eq!(names[stop + 1], "SESSION_START");
    assert!(p.to_collector.iter().any(|m| matches!(&m.body,
        Body::SessionStop(s) if s.reason_code == SessionStopReason::END_OF_DOCUMENT)));
    assert_eq!(p.keys.len(), 10);
    assert_eq!(
        p.keys
            .iter()
            .filter(|k| k.0 == doc2)
            .map(|k| k.1)
            .collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
    // Not allowed while records are unacknowledged.
    p.enqueue(1);
    assert!(p.e.new_document(p.now, SID, DocumentId([1; 16])).is_err());
}

#[test]
fn keep_alive_and_expiry() {
    let mut p = Pair::with_config(
        true,
        ExporterConfig {
            keep_alive_interval: 30,
            ..exporter_config(10)
        },
    );
    p.pump(true);
    // The collector advertised 20 s: the exporter speaks every 10 s at the latest.
    let t = p.e.poll_timeout().unwrap();
    assert!(t <= p.now + Duration::from_secs(10));
    p.now += Duration::from_secs(10);
    p.e.handle_timeout(p.now);
    p.c.handle_timeout(p.now);
    p.pump(true);
    assert!(p.to_collector.iter().any(|m| m.id().name() == "KEEP_ALIVE"));
    assert!(!p.exporter_closed);
    // Silence from the collector for our 10 s: ERROR 0 and close.
    let mut e = Exporter::new(Arc::new(exporter_config(10)), p.now);
    e.connection_opened(p.now, Role::Responder);
    let later = p.now + Duration::from_secs(16);
    e.handle_timeout(later); // connect timeout (15 s) first
    let outs: Vec<_> = std::iter::from_fn(|| e.poll_output(later)).collect();
    assert!(outs
        .iter()
        .any(|o| matches!(o, ExporterOutput::Event(ExporterEvent::ConnectTimeout))));
    assert!(matches!(outs.last(), Some(ExporterOutput::Close)));

    let mut p = Pair::new(true, 10);
    p.pump(true);
    let silent = p.now + Duration::from_secs(10);
    p.e.handle_timeout(silent);
    let outs: Vec<_> = std::iter::from_fn(|| p.e.poll_output(silent)).collect();
    let err = outs.iter().find_map(|o| match o {
        ExporterOutput::Send(m) => match &m.body {
            Body::Error(e) => Some(e.clone()),
            _ => None,
        },
        _ => None,
    });
    assert_eq!(err.unwrap().code, ErrorCode::KEEP_ALIVE_EXPIRED);
    assert!(matches!(outs.last(), Some(ExporterOutput::Close)));
}

#[test]
fn window_timeout_gives_up_the_connection() {
    let mut p = Pair::with_config(
        true,
        ExporterConfig {
            keep_alive_interval: 0,
            ..exporter_config(4)
        },
    );
    p.enqueue(4);
    p.pump(false);
    assert_eq!(p.data_sent().len(), 4);
    let late = p.now + Duration::from_secs(61);
    p.e.handle_timeout(late);
    let outs: Vec<_> = std::iter::from_fn(|| p.e.poll_output(late)).collect();
    assert!(outs.iter().any(|o| matches!(
        o,
        ExporterOutput::Event(ExporterEvent::WindowTimeout { outstanding: 4, .. })
    )));
    assert!(matches!(outs.last(), Some(ExporterOutput::Close)));
    assert_eq!(p.e.unacknowledged(SID), 4, "records stay queued");
}

#[test]
fn collector_requests_are_answered() {
    let mut p = Pair::new(true, 4);
    p.pump(true);
    let now = p.now;
    // Unknown session: a session-specific ERROR, the connection stays.
    p.e.handle_message(now, Message::new(b'Z', Body::FlowStart));
    p.e.handle_message(now, Message::new(SID, Body::StartNegotiation));
    p.e.handle_message(
        now,
        Message::new(
            SID,
            Body::GetTemplates(ipdr::codec::GetTemplates { request_id: 9 }),
        ),
    );
    let outs: Vec<_> = std::iter::from_fn(|| p.e.poll_output(now)).collect();
    let sent: Vec<&Message> = outs
        .iter()
        .filter_map(|o| match o {
            ExporterOutput::Send(m) => Some(m),
            _ => None,
        })
        .collect();
    assert!(
        matches!(&sent[0].body, Body::Error(e) if e.session_specific && e.code == ErrorCode::MESSAGE_INVALID_FOR_STATE)
    );
    assert_eq!(sent[1].id().name(), "START_NEGOTIATION_REJECT");
    assert!(
        matches!(&sent[2].body, Body::GetTemplatesResponse(r) if r.request_id == 9 && r.config_id == 3 && r.templates.len() == 1)
    );
    assert!(p.e.is_connected());
    // Capabilities in force are the intersection.
    assert_eq!(
        p.e.capabilities(),
        Capabilities::STRUCTURES.union(Capabilities::MULTISESSION)
    );
}
