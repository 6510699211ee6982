//! The collector state machine: the golden session replayed, and the protocol rules.

mod common;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use ipdr::codec::*;
use ipdr::collector::*;
use ipdr::xdr::{encode_record, Template, TypeId, Value};
use ipdr::{Body, Framer, Message};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn feed(c: &mut Collector, now: Instant, bytes: &[u8]) -> Vec<Output> {
    c.handle_message(now, Message::decode_slice(bytes).unwrap());
    drain(c)
}

fn feed_msg(c: &mut Collector, now: Instant, m: Message) -> Vec<Output> {
    c.handle_message(now, m);
    drain(c)
}

/// Pushes raw bytes through a framer into the collector.
fn feed_raw(c: &mut Collector, f: &mut Framer, now: Instant, bytes: &[u8]) -> Vec<Output> {
    f.push(bytes);
    while let Some(r) = f.next_message() {
        match r {
            Ok(m) => c.handle_message(now, m),
            Err(e) => c.handle_frame_error(now, &e),
        }
    }
    drain(c)
}

fn errors(outs: &[Output]) -> Vec<(u8, ErrorMessage)> {
    sent(outs)
        .into_iter()
        .filter_map(|m| match m.body {
            Body::Error(e) => Some((m.session_id, e)),
            _ => None,
        })
        .collect()
}

fn events(outs: &[Output]) -> Vec<Event> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn acks(outs: &[Output]) -> Vec<u64> {
    sent(outs)
        .into_iter()
        .filter_map(|m| match m.body {
            Body::DataAck(a) => Some(a.sequence_num),
            _ => None,
        })
        .collect()
}

/// Golden collector brought to the active session (CONNECT … SESSION_START).
fn active_golden(t0: Instant) -> Collector {
    let mut c = golden_collector(t0);
    drain(&mut c);
    for name in [
        "CONNECT_RESPONSE",
        "GET_SESSIONS_RESPONSE",
        "TEMPLATE_DATA",
        "SESSION_START",
    ] {
        feed(&mut c, t0, &golden_msg(name, 0));
    }
    c
}

fn document_of(outs: &[Output]) -> DocumentId {
    events(outs)
        .into_iter()
        .find_map(|e| match e {
            Event::SessionStarted { document_id, .. } => Some(document_id),
            _ => None,
        })
        .expect("SessionStarted")
}

#[test]
fn golden_session_replayed_byte_for_byte() {
    let t0 = Instant::now();
    let mut c = golden_collector(t0);
    let mut ours: Vec<Vec<u8>> = Vec::new();
    let g = |n: &str| golden_msg(n, 0);

    // Outbound: CONNECT goes first.
    let o = drain(&mut c);
    assert_eq!(sent_bytes(&o), vec![g("CONNECT")]);
    ours.extend(sent_bytes(&o));
    assert_eq!(c.state(), ConnectionState::AwaitingConnectResponse);

    // CONNECT_RESPONSE (with its junk byte) → connected, GET_SESSIONS.
    let o = feed(&mut c, t0 + ms(1), &g("CONNECT_RESPONSE"));
    assert_eq!(sent_bytes(&o), vec![g("GET_SESSIONS")]);
    ours.extend(sent_bytes(&o));
    assert!(matches!(
        &events(&o)[..],
        [Event::Connected { vendor_id, capabilities, peer_keep_alive: 5 }]
            if vendor_id.starts_with("Amdocs") && *capabilities == Capabilities::MULTISESSION
    ));
    assert_eq!(c.state(), ConnectionState::Connected);

    // GET_SESSIONS_RESPONSE → FLOW_START for session 1.
    let o = feed(&mut c, t0 + ms(2), &g("GET_SESSIONS_RESPONSE"));
    assert_eq!(sent_bytes(&o), vec![g("FLOW_START")]);
    ours.extend(sent_bytes(&o));

    // TEMPLATE_DATA (not negotiable) → FINAL_TEMPLATE_DATA_ACK.
    let o = feed(&mut c, t0 + ms(3), &g("TEMPLATE_DATA"));
    assert_eq!(sent_bytes(&o), vec![g("FINAL_TEMPLATE_DATA_ACK")]);
    ours.extend(sent_bytes(&o));
    assert!(events(&o).iter().any(|e| matches!(e, Event::TemplateChanged { session_id: 1, config_id: 1, templates } if templates.len() == 1)));
    assert_eq!(c.templates(1).len(), 1);

    // SESSION_START → nothing to send.
    let o = feed(&mut c, t0 + ms(4), &g("SESSION_START"));
    assert!(sent(&o).is_empty());
    let doc = document_of(&o);
    assert!(
        !doc.is_nil(),
        "nil documentId replaced by a synthesized one"
    );

    // GET_TEMPLATES (command) → requestId 2.
    assert_eq!(c.get_templates(t0 + ms(5), 1), Ok(2));
    let o = drain(&mut c);
    assert_eq!(sent_bytes(&o), vec![g("GET_TEMPLATES")]);
    ours.extend(sent_bytes(&o));
    let o = feed(&mut c, t0 + ms(6), &g("GET_TEMPLATES_RESPONSE"));
    assert!(sent(&o).is_empty());
    assert!(matches!(
        &events(&o)[..],
        [Event::TemplatesReported {
            session_id: 1,
            request_id: 2,
            config_id: 1,
            ..
        }]
    ));

    // Silence: KEEP_ALIVE at half the exporter's 5 s.
    assert_eq!(c.poll_timeout(), Some(t0 + ms(5) + ms(2500)));
    c.handle_timeout(t0 + ms(2504));
    assert!(drain(&mut c).is_empty(), "not due yet");
    c.handle_timeout(t0 + ms(2505));
    let o = drain(&mut c);
    assert_eq!(sent_bytes(&o), vec![g("KEEP_ALIVE")]);
    ours.extend(sent_bytes(&o));

    // DATA → a record to persist, and no DATA_ACK until storage says it is durable.
    let t = t0 + ms(3000);
    for n in 0..3u64 {
        let o = feed(&mut c, t, &golden_msg("DATA", n as usize));
        assert!(sent(&o).is_empty(), "no DATA_ACK before durability");
        let recs = persisted(&o);
        assert_eq!(recs.len(), 1);
        let r = &recs[0];
        assert_eq!(
            (
                &*r.exporter,
                r.session_id,
                r.document_id,
                r.sequence_num,
                r.config_id
            ),
            ("amdocs-sim", 1, doc, n, 1)
        );
        assert_eq!(r.fields.len(), 23);
        assert_eq!(r.fields[0], (Arc::from("counter"), Value::Int(n as i32)));
        assert_eq!(r.fields[2].1, Value::String("xdrBASE64".into()));
        // Time passing alone never acknowledges.
        c.handle_timeout(t + ms(900));
        assert!(acks(&drain(&mut c)).is_empty());

        c.records_durable(t, 1, doc, n);
        let o = drain(&mut c);
        assert_eq!(sent_bytes(&o), vec![golden_msg("DATA_ACK", n as usize)]);
        ours.extend(sent_bytes(&o));
    }

    // FLOW_STOP and DISCONNECT (commands).
    c.stop_flow(t, 1, FlowStopReason::NORMAL, "done").unwrap();
    c.disconnect(t).unwrap();
    let o = drain(&mut c);
    assert_eq!(sent_bytes(&o), vec![g("FLOW_STOP"), g("DISCONNECT")]);
    ours.extend(sent_bytes(&o));
    assert!(closed(&o));
    assert!(c.is_closed());

    // Our side of the session is exactly the golden collector's.
    let golden_c: Vec<Vec<u8>> = golden()
        .into_iter()
        .filter(|m| !m.from_exporter)
        .map(|m| m.bytes)
        .collect();
    assert_eq!(ours, golden_c);
    assert_eq!(c.stats().records_persisted, 3);
    assert_eq!(c.stats().data_acks_sent, 3);
}

#[test]
fn captured_segments_replayed_with_batched_acks() {
    // The capture delivers the three DATA back to back (in separate segments).
    let t0 = Instant::now();
    let mut c = golden_collector(t0);
    drain(&mut c);
    let mut f = Framer::default();
    let mut all = Vec::new();
    let mut doc = None;
    for (_, seg) in pcap_segments().into_iter().filter(|s| s.0) {
        let o = feed_raw(&mut c, &mut f, t0, &seg);
        if doc.is_none()
            && events(&o)
                .iter()
                .any(|e| matches!(e, Event::SessionStarted { .. }))
        {
            doc = Some(document_of(&o));
        }
        all.extend(o);
    }
    let doc = doc.unwrap();
    let recs = persisted(&all);
    assert_eq!(
        recs.iter().map(|r| r.sequence_num).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert!(acks(&all).is_empty(), "nothing durable yet");

    // Storage confirms DSN 0 while 1 and 2 are still pending: the ack is deferred (storage
    // has not caught up, the 50-record window is far) until half of ackTimeInterval (1 s).
    c.records_durable(t0 + ms(10), 1, doc, 0);
    assert!(acks(&drain(&mut c)).is_empty());
    assert_eq!(c.poll_timeout(), Some(t0 + ms(500)));
    c.handle_timeout(t0 + ms(500));
    assert_eq!(acks(&drain(&mut c)), [0]);
    // Everything durable: acknowledged at once.
    c.records_durable(t0 + ms(600), 1, doc, 2);
    assert_eq!(acks(&drain(&mut c)), [2]);
    // A stale or repeated notification changes nothing.
    c.records_durable(t0 + ms(700), 1, doc, 2);
    c.records_durable(t0 + ms(700), 1, DocumentId([9; 16]), 5);
    assert!(drain(&mut c).is_empty());
}

fn exporter_connect() -> Message {
    Message::new(
        0,
        Body::Connect(Connect {
            initiator_address: Ipv4Addr::new(10, 0, 0, 7),
            initiator_port: 40000,
            capabilities: Capabilities(0x06),
            keep_alive_interval: 5,
            vendor_id: "cpe".into(),
        }),
    )
}

fn inbound(config: CollectorConfig, t0: Instant) -> Collector {
    Collector::new(
        Arc::new(config),
        ConnectionInfo {
            exporter: Arc::from("cpe-1"),
            direction: Direction::Inbound,
            unix_time: 1_700_000_000,
            nonce: 7,
        },
        t0,
    )
}

#[test]
fn inbound_connect_answered_with_offered_capabilities_only() {
    let t0 = Instant::now();
    let mut c = inbound(CollectorConfig::default(), t0);
    assert!(
        drain(&mut c).is_empty(),
        "an inbound collector waits for CONNECT"
    );
    assert_eq!(c.state(), ConnectionState::AwaitingConnect);
    let o = feed_msg(&mut c, t0, exporter_connect());
    let s = sent(&o);
    assert_eq!(s.len(), 2);
    assert_eq!(
        s[0].body,
        Body::ConnectResponse(ConnectResponse {
            capabilities: Capabilities(0x06),
            keep_alive_interval: 30,
            vendor_id: "Keelson IPDR collector".into(),
        })
    );
    assert_eq!(s[1].body, Body::GetSessions(GetSessions { request_id: 1 }));
    assert_eq!(c.capabilities(), Capabilities(0x06));
    assert_eq!(c.peer_vendor_id(), "cpe");
}

#[test]
fn inbound_without_query_starts_configured_sessions() {
    let t0 = Instant::now();
    let cfg = CollectorConfig {
        query_sessions: false,
        sessions: SessionFilter::Only(vec![b'A', b'B']),
        ..CollectorConfig::default()
    };
    let mut c = inbound(cfg, t0);
    let o = feed_msg(&mut c, t0, exporter_connect());
    let starts: Vec<u8> = sent(&o)
        .iter()
        .filter(|m| m.body == Body::FlowStart)
        .map(|m| m.session_id)
        .collect();
    assert_eq!(starts, [b'A', b'B']);
}

#[test]
fn single_session_without_multisession() {
    let t0 = Instant::now();
    let mut c = inbound(CollectorConfig::default(), t0);
    let mut connect = exporter_connect();
    if let Body::Connect(cn) = &mut connect.body {
        cn.capabilities = Capabilities::NONE;
    }
    feed_msg(&mut c, t0, connect);
    let block = |id| SessionBlock {
        session_id: id,
        reserved: 0,
        name: String::new(),
        description: String::new(),
        ack_time_interval: 1,
        ack_sequence_interval: 1,
    };
    let o = feed_msg(
        &mut c,
        t0,
        Message::new(
            0,
            Body::GetSessionsResponse(GetSessionsResponse {
                request_id: 1,
                sessions: vec![block(1), block(2)],
            }),
        ),
    );
    let starts: Vec<u8> = sent(&o)
        .iter()
        .filter(|m| m.body == Body::FlowStart)
        .map(|m| m.session_id)
        .collect();
    assert_eq!(starts, [1]);
}

#[test]
fn connect_timeout_closes() {
    let t0 = Instant::now();
    let mut c = inbound(CollectorConfig::default(), t0);
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(15)));
    c.handle_timeout(t0 + Duration::from_secs(15));
    let o = drain(&mut c);
    assert!(closed(&o));
    assert!(events(&o)
        .iter()
        .any(|e| matches!(e, Event::ConnectTimeout)));
}

#[test]
fn messages_before_connect_are_refused() {
    let t0 = Instant::now();
    let mut c = inbound(CollectorConfig::default(), t0);
    let o = feed(&mut c, t0, &golden_msg("DATA", 0));
    let e = errors(&o);
    assert_eq!(e.len(), 1);
    assert_eq!(
        (e[0].1.code, e[0].1.session_specific),
        (ErrorCode::MESSAGE_INVALID_FOR_STATE, false)
    );
    assert!(closed(&o));
    assert!(persisted(&o).is_empty());
}

#[test]
fn keep_alive_expiry_sends_error_0_and_closes() {
    let t0 = Instant::now();
    let mut c = active_golden(t0);
    // We keep sending keep-alives to the exporter, but it stays silent for 30 s.
    let mut t = t0;
    loop {
        let next = c.poll_timeout().unwrap();
        assert!(next > t);
        t = next;
        c.handle_timeout(t);
        let o = drain(&mut c);
        if closed(&o) {
            let e = errors(&o);
            assert_eq!(e.len(), 1);
            assert_eq!(
                (e[0].0, e[0].1.code, e[0].1.session_specific),
                (0, ErrorCode::KEEP_ALIVE_EXPIRED, false)
            );
            assert_eq!(e[0].1.timestamp, 1_795_239_057 + 30);
            assert_eq!(t, t0 + Duration::from_secs(30));
            break;
        }
        assert!(sent(&o).iter().all(|m| m.body == Body::KeepAlive));
    }
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn peer_error_and_disconnect() {
    let t0 = Instant::now();
    let mut c = active_golden(t0);
    let session_err = Message::new(
        1,
        Body::Error(ErrorMessage {
            timestamp: 0,
            session_specific: true,
            code: ErrorCode(300),
            description: "vendor".into(),
        }),
    );
    let o = feed_msg(&mut c, t0, session_err);
    assert!(!closed(&o));
    assert!(matches!(
        &events(&o)[..],
        [Event::PeerError {
            session_id: 1,
            session_specific: true,
            ..
        }]
    ));
    // The reference exporter's keep-alive ERROR: code 0, NUL counted in the description.
    let conn_err = Message::new(
        0,
        Body::Error(ErrorMessage {
            timestamp: 0,
            session_specific: false,
            code: ErrorCode::KEEP_ALIVE_EXPIRED,
            description: "KeepAlive was NOT received before timer elapsed\0".into(),
        }),
    );
    let o = feed_msg(&mut c, t0, conn_err);
    assert!(closed(&o));
    assert!(sent(&o).is_empty(), "no answer to an ERROR");

    let mut c = active_golden(t0);
    let o = feed(&mut c, t0, &golden_msg("DISCONNECT", 0));
    assert!(closed(&o));
    assert!(matches!(
        &events(&o)[..],
        [Event::Disconnected { by_peer: true }]
    ));
    // After close everything is ignored.
    let o = feed(&mut c, t0, &golden_msg("DATA", 0));
    assert!(o.is_empty());
}

// ----- bad input -----

#[test]
fn frame_length_7_is_fatal() {
    let t0 = Instant::now();
    let mut c = active_golden(t0);
    let mut f = Framer::default();
    let o = feed_raw(&mut c, &mut f, t0, &[2, 0x40, 0, 0, 0, 0, 0, 7]);
    let e = errors(&o);
    assert_eq!(e.len(), 1);
    assert_eq!(
        (e[0].0, e[0].1.code, e[0].1.session_specific),
        (0, ErrorCode::MESSAGE_DECODE_ERROR, false)
    );
    assert!(closed(&o));
    assert!(persisted(&o).is_empty());
    // Nothing after it is read.
    f.push(&golden_msg("DATA", 0));
    assert!(f.next_message().is_none());
}

#[test]
fn frame_longer_than_max_is_fatal_before_buffering() {
    let t0 = Instant::now();
    let mut c = active_golden(t0);
    let mut f = Framer::new(1024);
    let o = feed_raw(&mut c, &mut f, t0, &[2, 0x20, 1, 0, 0, 0, 0x10, 0]);
    assert_eq!(errors(&o)[0].1.code, ErrorCode::MESSAGE_DECODE_ERROR);
    assert!(errors(&o)[0].1.description.contains("4096"));
    assert!(closed(&o));
    assert_eq!(f.buffered(), 0);
}

#[test]
fn version_1_is_fatal() {
    let t0 = Instant::now();
    let mut c = active_golden(t0);
    let mut f = Framer::default();
    // Refused on the first byte, without waiting for a full header.
    let o = feed_raw(&mut c, &mut f, t0, &[1]);
    assert!(closed(&o));
    assert!(errors(&o)[0].1.description.contains("version 1"));
}

#[test]
fn unknown_message_id_is_skipped_with_a_session_error() {
    let t0 = Instant::now();
    let mut c = active_golden(t0);
    let mut f = Framer::default();
    let mut bytes = vec![2, 0x99, 1, 0, 0, 0, 0, 12, 1, 2, 3, 4];
    bytes.extend(golden_msg("DATA", 0));
    let o = feed_raw(&mut c, &mut f, t0, &bytes);
    let e = errors(&o);
    assert_eq!(e.len(), 1);
    assert_eq!(
        (e[0].0, e[0].1.code, e[0].1.session_specific),
        (1, ErrorCode::MESSAGE_DECODE_ERROR, true)
    );
    assert!(!closed(&o));
    assert_eq!(
        persisted(&o).len(),
        1,
        "the next message is still processed"
    );
}

#[test]
fn garbage_is_fatal_and_persists_nothing() {
    let t0 = Instant::now();
    let mut rng = Rng(42);
    for _ in 0..200 {
        let mut c = active_golden(t0);
        let mut f = Framer::default();
        let n = 1 + rng.below(300);
        let mut g = rng.bytes(n);
        if g[0] == 2 {
            g[0] = 0xff;
        }
        let o = feed_raw(&mut c, &mut f, t0, &g);
        assert!(closed(&o));
        assert!(persisted(&o).is_empty());
    }
}

#[test]
fn undecodable_body_of_session_message_is_not_fatal() {
    let t0 = Instant::now();
    let mut c = active_golden(t0);
    let mut f = Framer::default();
    // DATA with a record length running past the end of the message.
    let mut d = golden_msg("DATA", 0);
    d[21..25].copy_from_slice(&1000u32.to_be_bytes());
    let o = feed_raw(&mut c, &mut f, t0, &d);
    let e = errors(&o);
    assert_eq!(
        (e[0].0, e[0].1.code, e[0].1.session_specific),
        (1, ErrorCode::MESSAGE_DECODE_ERROR, true)
    );
    assert!(!closed(&o));
    assert!(persisted(&o).is_empty());
    // A broken CONNECT_RESPONSE-level message (GET_SESSIONS_RESPONSE) is fatal.
    let mut g = golden_msg("GET_SESSIONS_RESPONSE", 0);
    g[10..14].copy_from_slice(&5u32.to_be_bytes());
    let o = feed_raw(&mut c, &mut f, t0, &g);
    assert!(closed(&o));
}

fn short_record_data(dsn: u64) -> Message {
    let Body::Data(mut d) = Message::decode_slice(&golden_msg("DATA", 0)).unwrap().body else {
        panic!()
    };
    d.sequence_num = dsn;
    d.record = d.record.slice(..150);
    Message::new(1, Body::Data(d))
}

#[test]
fn record_shorter_than_template() {
    let t0 = Instant::now();
    let mut c = active_golden(t0);
    let o = feed_msg(&mut c, t0, short_record_data(0));
    let e = errors(&o);
    assert_eq!(e.len(), 1);
    assert_eq!(
        (e[0].0, e[0].1.code, e[0].1.session_specific),
        (1, ErrorCode::MESSAGE_DECODE_ERROR, true)
    );
    assert!(
        e[0].1.description.contains("uuid"),
        "{}",
        e[0].1.description
    );
    assert!(persisted(&o).is_empty());
    assert!(!closed(&o));
    assert!(events(&o).iter().any(|e| matches!(e, Event::RecordRejected { sequence_num: 0, record, .. } if record.len() == 150)));
    // The rejected DSN counts as processed: the next good record is acknowledged past it.
    let doc = {
        let o = feed(&mut c, t0, &golden_msg("DATA", 1));
        let r = persisted(&o);
        assert_eq!(r.len(), 1);
        r[0].document_id
    };
    c.records_durable(t0, 1, doc, 1);
    assert_eq!(acks(&drain(&mut c)), [1]);
    assert_eq!(c.stats().records_rejected, 1);
}

#[test]
fn data_before_template() {
    let t0 = Instant::now();
    let mut c = golden_collector(t0);
    drain(&mut c);
    feed(&mut c, t0, &golden_msg("CONNECT_RESPONSE", 0));
    feed(&mut c, t0, &golden_msg("GET_SESSIONS_RESPONSE", 0));
    // Flow started, no TEMPLATE_DATA yet.
    let o = feed(&mut c, t0, &golden_msg("DATA", 0));
    let e = errors(&o);
    assert_eq!(
        (e[0].0, e[0].1.code, e[0].1.session_specific),
        (1, ErrorCode::MESSAGE_INVALID_FOR_STATE, true)
    );
    assert!(persisted(&o).is_empty());
    assert!(!closed(&o));
    // Templates acknowledged but no SESSION_START yet: still refused.
    feed(&mut c, t0, &golden_msg("TEMPLATE_DATA", 0));
    let o = feed(&mut c, t0, &golden_msg("DATA", 0));
    assert_eq!(errors(&o)[0].1.code, ErrorCode::MESSAGE_INVALID_FOR_STATE);
    assert!(persisted(&o).is_empty());
    // DATA for a session never started.
    let mut d = golden_msg("DATA", 0);
    d[2] = 9;
    let o = feed(&mut c, t0, &d);
    assert_eq!(errors(&o)[0].0, 9);
    assert!(persisted(&o).is_empty());
}

#[test]
fn data_for_unknown_template_or_config() {
    let t0 = Instant::now();
    let mut c = active_golden(t0);
    let mut d = golden_msg("DATA", 0);
    d[8..10].copy_from_slice(&7u16.to_be_bytes()); // templateId 7
    let o = feed(&mut c, t0, &d);
    assert_eq!(errors(&o)[0].1.code, ErrorCode::MESSAGE_DECODE_ERROR);
    assert!(errors(&o)[0].1.description.contains("templateId 7"));
    assert!(persisted(&o).is_empty());
    let mut d = golden_msg("DATA", 0);
    d[10..12].copy_from_slice(&2u16.to_be_bytes()); // configId 2
    let o = feed(&mut c, t0, &d);
    assert_eq!(errors(&o)[0].1.code, ErrorCode::MESSAGE_INVALID_FOR_STATE);
    assert!(persisted(&o).is_empty());
}

#[test]
fn collector_bound_messages_from_the_exporter_are_refused() {
    let t0 = Instant::now();
    let mut c = active_golden(t0);
    let o = feed(&mut c, t0, &golden_msg("DATA_ACK", 0));
    assert_eq!(errors(&o)[0].1.code, ErrorCode::MESSAGE_INVALID_FOR_STATE);
    assert!(!closed(&o));
    let req = Message::new(
        1,
        Body::Request(RequestResponse {
            template_id: 1,
            config_id: 1,
            flags: 0,
            request_number: 1,
            data: Bytes::new(),
        }),
    );
    let o = feed_msg(&mut c, t0, req);
    assert_eq!(
        errors(&o)[0].1.code,
        ErrorCode::MESSAGE_INVALID_FOR_CAPABILITIES
    );
}

// ----- sequence numbers, de-duplication, acknowledgement -----

fn data_msg(dsn: u64, flags: u8) -> Message {
    let Body::Data(mut d) = Message::decode_slice(&golden_msg("DATA", 0)).unwrap().body else {
        panic!()
    };
    d.sequence_num = dsn;
    d.flags = flags;
    Message::new(1, Body::Data(d))
}

fn session_start(doc: DocumentId, ack_time: u32, ack_seq: u32) -> Message {
    Message::new(
        1,
        Body::SessionStart(SessionStart {
            exporter_boot_time: 1,
            first_record_sequence_number: 0,
            dropped_record_count: 0,
            primary: true,
            ack_time_interval: ack_time,
            ack_sequence_interval: ack_seq,
            document_id: doc,
        }),
    )
}

fn session_stop(reason: SessionStopReason) -> Message {
    Message::new(
        1,
        Body::SessionStop(SessionStop {
            reason_code: reason,
            reason_info: String::new(),
        }),
    )
}

/// Golden collector with templates acknowledged, before SESSION_START.
fn templated(t0: Instant) -> Collector {
    let mut c = golden_collector(t0);
    drain(&mut c);
    for name in ["CONNECT_RESPONSE", "GET_SESSIONS_RESPONSE", "TEMPLATE_DATA"] {
        feed(&mut c, t0, &golden_msg(name, 0));
    }
    c
}

#[test]
fn retransmitted_records_are_stored_once() {
    let t0 = Instant::now();
    let doc = DocumentId([0x42; 16]);
    let mut c = templated(t0);
    assert_eq!(
        document_of(&feed_msg(&mut c, t0, session_start(doc, 1, 50))),
        doc
    );
    let mut stored = Vec::new();
    for (dsn, flags) in [(0, 0), (1, 0), (1, 1), (0, 1), (2, 0)] {
        stored.extend(
            persisted(&feed_msg(&mut c, t0, data_msg(dsn, flags)))
                .into_iter()
                .map(|r| r.sequence_num),
        );
    }
    assert_eq!(stored, [0, 1, 2]);
    assert_eq!(c.stats().duplicates_discarded, 2);

    // The exporter stops and resumes the same document, resending unacknowledged DSNs with
    // the duplicate flag: only the new one is stored.
    feed_msg(&mut c, t0, session_stop(SessionStopReason::END_OF_DATA));
    assert_eq!(
        document_of(&feed_msg(&mut c, t0, session_start(doc, 1, 50))),
        doc
    );
    let mut again = Vec::new();
    for (dsn, flags) in [(1, 1), (2, 1), (3, 0)] {
        let o = feed_msg(&mut c, t0, data_msg(dsn, flags));
        again.extend(
            persisted(&o)
                .into_iter()
                .map(|r| (r.sequence_num, r.possible_duplicate)),
        );
    }
    assert_eq!(again, [(3, false)]);
    c.records_durable(t0, 1, doc, 3);
    assert_eq!(acks(&drain(&mut c)), [3]);
}

#[test]
fn resumed_document_across_connections() {
    let t0 = Instant::now();
    let doc = DocumentId([0x17; 16]);
    let mut c = templated(t0);
    c.resume_document(1, doc, 5);
    feed_msg(&mut c, t0, session_start(doc, 1, 50));
    // A resent, already stored record is discarded but acknowledged, so the exporter can
    // drop it.
    let o = feed_msg(&mut c, t0, data_msg(4, 1));
    assert!(persisted(&o).is_empty());
    assert_eq!(acks(&o), [5]);
    let o = feed_msg(&mut c, t0, data_msg(6, 0));
    assert_eq!(persisted(&o).len(), 1);
}

#[test]
fn nil_document_ids_do_not_collide() {
    let t0 = Instant::now();
    let mut c = templated(t0);
    let d1 = document_of(&feed_msg(&mut c, t0, session_start(DocumentId::NIL, 1, 50)));
    let r1 = persisted(&feed_msg(&mut c, t0, data_msg(0, 0)));
    feed_msg(&mut c, t0, session_stop(SessionStopReason::END_OF_DOCUMENT));
    let d2 = document_of(&feed_msg(&mut c, t0, session_start(DocumentId::NIL, 1, 50)));
    // DSN restarts at 0 in the new document and is stored again.
    let r2 = persisted(&feed_msg(&mut c, t0, data_msg(0, 0)));
    assert_ne!(d1, d2);
    assert_eq!((r1.len(), r2.len()), (1, 1));
    assert_eq!((r1[0].document_id, r2[0].document_id), (d1, d2));
    // RFC 9562 version 8, variant 10.
    assert_eq!(d1.0[6] >> 4, 8);
    assert_eq!(d1.0[8] >> 6, 2);
    // Durability of the old document no longer acknowledges anything.
    c.records_durable(t0, 1, d1, 0);
    assert!(acks(&drain(&mut c)).is_empty());
    c.records_durable(t0, 1, d2, 0);
    assert_eq!(acks(&drain(&mut c)), [0]);
}

#[test]
fn gaps_are_warnings() {
    let t0 = Instant::now();
    let mut c = templated(t0);
    let doc = document_of(&feed_msg(
        &mut c,
        t0,
        session_start(DocumentId([1; 16]), 1, 50),
    ));
    // The reference exporter announces first=2 and then sends 0: accepted.
    assert_eq!(persisted(&feed_msg(&mut c, t0, data_msg(0, 0))).len(), 1);
    let o = feed_msg(&mut c, t0, data_msg(5, 0));
    assert_eq!(persisted(&o).len(), 1);
    assert!(matches!(
        &events(&o)[..],
        [Event::SequenceGap {
            expected: 1,
            received: 5,
            ..
        }]
    ));
    // A late record from the gap is out of order: discarded.
    assert!(persisted(&feed_msg(&mut c, t0, data_msg(3, 0))).is_empty());
    c.records_durable(t0, 1, doc, 5);
    assert_eq!(acks(&drain(&mut c)), [5]);
}

#[test]
fn ack_sequence_interval_forces_an_ack_while_storage_lags() {
    let t0 = Instant::now();
    let mut c = templated(t0);
    let doc = document_of(&feed_msg(
        &mut c,
        t0,
        session_start(DocumentId([3; 16]), 60, 6),
    ));
    for dsn in 0..10 {
        let o = feed_msg(&mut c, t0, data_msg(dsn, 0));
        assert!(acks(&o).is_empty());
    }
    // Durable up to 1 while 2..9 are pending: 10 records unacknowledged ≥ 6 → ack 1 now.
    c.records_durable(t0, 1, doc, 1);
    assert_eq!(acks(&drain(&mut c)), [1]);
    // Still 8, then 6 unacknowledged: every step storage makes is acknowledged.
    c.records_durable(t0, 1, doc, 3);
    assert_eq!(acks(&drain(&mut c)), [3]);
    c.records_durable(t0, 1, doc, 4);
    assert_eq!(acks(&drain(&mut c)), [4]);
    // 5 unacknowledged < 6 and storage still behind: wait.
    c.records_durable(t0, 1, doc, 5);
    assert!(acks(&drain(&mut c)).is_empty());
    // Caught up: acknowledge everything.
    c.records_durable(t0, 1, doc, 9);
    assert_eq!(acks(&drain(&mut c)), [9]);
}

#[test]
fn slow_storage_is_reported_never_acknowledged_early() {
    let t0 = Instant::now();
    let mut c = templated(t0);
    feed_msg(&mut c, t0, session_start(DocumentId([4; 16]), 2, 50));
    feed_msg(&mut c, t0, data_msg(0, 0));
    let mut t = t0;
    let mut overdue = 0;
    while t < t0 + Duration::from_secs(10) {
        t = c.poll_timeout().unwrap();
        c.handle_timeout(t);
        let o = drain(&mut c);
        assert!(acks(&o).is_empty());
        overdue += events(&o)
            .iter()
            .filter(|e| matches!(e, Event::AckOverdue { pending: 1, .. }))
            .count();
        // Keep the exporter "alive" so that only the storage is slow.
        c.handle_message(t, Message::new(0, Body::KeepAlive));
    }
    assert_eq!(overdue, 1, "reported once, at ackTimeInterval");
}

// ----- templates -----

fn negotiable_template_data() -> Message {
    let Body::TemplateData(mut t) = Message::decode_slice(&golden_msg("TEMPLATE_DATA", 0))
        .unwrap()
        .body
    else {
        panic!()
    };
    t.flags = TemplateData::FLAG_NEGOTIABLE;
    Message::new(1, Body::TemplateData(t))
}

fn negotiating(fields: FieldSelection, caps: Capabilities, t0: Instant) -> Collector {
    let mut c = inbound(
        CollectorConfig {
            fields,
            ..CollectorConfig::default()
        },
        t0,
    );
    let mut connect = exporter_connect();
    if let Body::Connect(cn) = &mut connect.body {
        cn.capabilities = caps;
    }
    feed_msg(&mut c, t0, connect);
    c.start_flow(t0, 1).unwrap();
    drain(&mut c);
    c
}

#[test]
fn modify_template_narrows_fields() {
    let t0 = Instant::now();
    let mut c = negotiating(
        FieldSelection::Except(vec!["IPDR_DOUBLE".into(), "uuid".into()]),
        Capabilities(0x06),
        t0,
    );
    let o = feed_msg(&mut c, t0, negotiable_template_data());
    let s = sent(&o);
    assert_eq!(s.len(), 1);
    let Body::ModifyTemplate(m) = &s[0].body else {
        panic!("{s:?}")
    };
    assert_eq!((s[0].session_id, m.config_id), (1, 1));
    let disabled: Vec<&str> = m.templates[0]
        .fields
        .iter()
        .filter(|f| !f.enabled)
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(disabled, ["IPDR_DOUBLE", "uuid"]);
    // Round trip of the message we built.
    assert_eq!(
        Message::decode_slice(&s[0].to_bytes().unwrap()).unwrap(),
        s[0]
    );

    // The exporter accepts and sends the final set under a new configId.
    let final_set = ModifyTemplateResponse {
        config_id: 2,
        flags: 0,
        templates: m.templates.clone(),
    };
    let o = feed_msg(
        &mut c,
        t0,
        Message::new(1, Body::ModifyTemplateResponse(final_set)),
    );
    assert_eq!(
        sent(&o).iter().map(|m| m.body.clone()).collect::<Vec<_>>(),
        [Body::FinalTemplateDataAck]
    );
    assert!(events(&o)
        .iter()
        .any(|e| matches!(e, Event::TemplateChanged { config_id: 2, .. })));
    let t = c.templates(1)[0].clone();
    assert_eq!(t.enabled_fields().count(), 21);

    // DATA now comes without the two fields.
    feed_msg(&mut c, t0, session_start(DocumentId([5; 16]), 1, 50));
    let all = golden_test_values();
    let values: Vec<Value> = all
        .into_iter()
        .filter(|(n, _)| *n != "IPDR_DOUBLE" && *n != "uuid")
        .map(|(_, v)| v)
        .collect();
    let mut rec = Vec::new();
    encode_record(&t, &values, &mut rec).unwrap();
    let d = Data {
        template_id: 1,
        config_id: 2,
        flags: 0,
        sequence_num: 0,
        record: rec.into(),
    };
    let r = persisted(&feed_msg(&mut c, t0, Message::new(1, Body::Data(d))));
    assert_eq!(r[0].fields.len(), 21);
}

fn golden_test_values() -> Vec<(&'static str, Value)> {
    let t = {
        let Body::TemplateData(t) = Message::decode_slice(&golden_msg("TEMPLATE_DATA", 0))
            .unwrap()
            .body
        else {
            panic!()
        };
        Template::new(t.templates[0].clone()).unwrap()
    };
    let Body::Data(d) = Message::decode_slice(&golden_msg("DATA", 0)).unwrap().body else {
        panic!()
    };
    let names: Vec<&'static str> = t
        .enabled_fields()
        .map(|n| &*Box::leak(n.to_string().into_boxed_str()))
        .collect();
    names
        .into_iter()
        .zip(
            ipdr::decode_record(&t, &d.record)
                .unwrap()
                .into_iter()
                .map(|(_, v)| v),
        )
        .collect()
}

#[test]
fn no_negotiation_capability_means_ack_and_drop_locally() {
    let t0 = Instant::now();
    // Negotiation not in force (exporter offered only MULTISESSION).
    let mut c = negotiating(
        FieldSelection::Only(vec!["counter".into(), "name".into()]),
        Capabilities(0x02),
        t0,
    );
    let o = feed_msg(&mut c, t0, negotiable_template_data());
    assert_eq!(
        sent(&o).iter().map(|m| m.body.clone()).collect::<Vec<_>>(),
        [Body::FinalTemplateDataAck]
    );
    feed_msg(&mut c, t0, session_start(DocumentId([6; 16]), 1, 50));
    let r = persisted(&feed(&mut c, t0, &golden_msg("DATA", 2)));
    let names: Vec<&str> = r[0].fields.iter().map(|(n, _)| &**n).collect();
    assert_eq!(names, ["counter", "name"]);
    assert_eq!(r[0].fields[0].1, Value::Int(2));
}

#[test]
fn unsupported_type_is_negotiated_away_or_rejected() {
    let t0 = Instant::now();
    let weird = |flags| {
        let block = TemplateBlock {
            template_id: 1,
            schema_name: "s".into(),
            type_name: "t".into(),
            fields: vec![
                FieldDescriptor::new(TypeId::INT, 1, "a"),
                FieldDescriptor::new(TypeId(0x99), 2, "b"),
            ],
        };
        Message::new(
            1,
            Body::TemplateData(TemplateData {
                config_id: 1,
                flags,
                templates: vec![block],
            }),
        )
    };
    // Negotiable: disabled by MODIFY_TEMPLATE.
    let mut c = negotiating(FieldSelection::All, Capabilities(0x06), t0);
    let o = feed_msg(&mut c, t0, weird(1));
    let Body::ModifyTemplate(m) = &sent(&o)[0].body else {
        panic!()
    };
    assert!(!m.templates[0].fields[1].enabled);
    // Not negotiable: ERROR 3 + FLOW_STOP 1.
    let mut c = negotiating(FieldSelection::All, Capabilities(0x06), t0);
    let o = feed_msg(&mut c, t0, weird(0));
    let s = sent(&o);
    assert!(
        matches!(&s[0].body, Body::Error(e) if e.code == ErrorCode::MESSAGE_DECODE_ERROR && e.session_specific)
    );
    assert!(
        matches!(&s[1].body, Body::FlowStop(f) if f.reason_code == FlowStopReason::PROCESS_ERROR)
    );
    assert!(events(&o)
        .iter()
        .any(|e| matches!(e, Event::TemplateRejected { .. })));
}

#[test]
fn start_negotiation_and_reject() {
    let t0 = Instant::now();
    let mut c = negotiating(FieldSelection::All, Capabilities(0x06), t0);
    feed_msg(&mut c, t0, negotiable_template_data());
    feed_msg(&mut c, t0, session_start(DocumentId([7; 16]), 1, 50));
    c.start_negotiation(t0, 1).unwrap();
    assert_eq!(sent(&drain(&mut c))[0].body, Body::StartNegotiation);
    let o = feed_msg(&mut c, t0, Message::new(1, Body::StartNegotiationReject));
    assert!(matches!(
        &events(&o)[..],
        [Event::NegotiationRejected { session_id: 1 }]
    ));
    // Accepted: SESSION_STOP 5 then new TEMPLATE_DATA, acknowledged again.
    c.start_negotiation(t0, 1).unwrap();
    drain(&mut c);
    feed_msg(
        &mut c,
        t0,
        session_stop(SessionStopReason::START_NEGOTIATION_ACK),
    );
    let o = feed_msg(&mut c, t0, negotiable_template_data());
    assert_eq!(sent(&o)[0].body, Body::FinalTemplateDataAck);

    let mut c = negotiating(FieldSelection::All, Capabilities(0x02), t0);
    assert_eq!(
        c.start_negotiation(t0, 1),
        Err(CommandError::NegotiationNotAvailable)
    );
}

#[test]
fn data_in_flight_after_flow_stop_is_dropped_quietly() {
    let t0 = Instant::now();
    let mut c = active_golden(t0);
    c.stop_flow(t0, 1, FlowStopReason::NORMAL, "bye").unwrap();
    drain(&mut c);
    let o = feed(&mut c, t0, &golden_msg("DATA", 0));
    assert!(o.is_empty());
    assert_eq!(
        c.stop_flow(t0, 1, FlowStopReason::NORMAL, ""),
        Err(CommandError::NoFlow(1))
    );
}

#[test]
fn terminate_sends_error_4() {
    let t0 = Instant::now();
    let mut c = active_golden(t0);
    c.terminate(t0, "shutting down").unwrap();
    let o = drain(&mut c);
    assert_eq!(errors(&o)[0].1.code, ErrorCode::PROCESS_TERMINATING);
    assert!(closed(&o));
    assert_eq!(c.get_sessions(t0), Err(CommandError::Closed));
}
