//! Every message of the Amdocs reference-exporter session: exact field values, exact
//! re-encoding, and framing of the whole stream split and merged at every byte boundary.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};

use common::*;
use ipdr::codec::*;
use ipdr::xdr::{decode_record, MacAddress, Template, TypeId, Value};
use ipdr::{Body, Framer, Message};

fn decode(bytes: &[u8]) -> Message {
    let m = Message::decode_slice(bytes).expect("golden message decodes");
    assert_eq!(
        m.to_bytes().unwrap(),
        bytes,
        "{} re-encodes to the same bytes",
        m.id()
    );
    m
}

/// (typeId, fieldId, name) of the 23 fields of the reference exporter's template.
const FIELDS: [(u32, u32, &str); 23] = [
    (0x21, 1, "counter"),
    (0x21, 2, "counter2"),
    (0x28, 3, "name"),
    (0x22, 4, "unsigned32"),
    (0x22, 5, "unsigned32_2"),
    (0x24, 6, "unsigned64"),
    (0x322, 7, "ipAddress"),
    (0x723, 8, "macAddress"),
    (0x23, 9, "IPDRCLong"),
    (0x224, 10, "IPDRCreationTime"),
    (0x25, 11, "IPDR_FLOAT"),
    (0x26, 12, "IPDR_DOUBLE"),
    (0x27, 13, "IPDR_BASE64"),
    (0x27, 14, "IPDR_HEXBINARY"),
    (0x29, 15, "IPDR_BOOLEAN"),
    (0x2a, 17, "IPDR_BYTE"),
    (0x2b, 18, "IPDR_UBYTE"),
    (0x2c, 19, "IPDR_SHORT"),
    (0x2d, 20, "IPDR_USHORT"),
    (0x122, 21, "IPDR_DATETIME"),
    (0x427, 22, "ip6Address"),
    (0x527, 23, "uuid"),
    (0x623, 24, "timeUsec"),
];

fn check_template_block(t: &TemplateBlock) {
    assert_eq!(t.template_id, 1);
    assert_eq!(t.schema_name, "OutputRecord");
    assert_eq!(t.type_name, "");
    assert_eq!(t.fields.len(), 23);
    for (f, (ty, id, name)) in t.fields.iter().zip(FIELDS) {
        assert_eq!(f.type_id, TypeId(ty), "{name}");
        assert_eq!(f.field_id, id, "{name}");
        assert_eq!(f.name, name);
        assert!(f.enabled, "{name}");
        assert!(f.children.is_empty());
    }
}

fn golden_template() -> Template {
    let m = decode(&golden_msg("TEMPLATE_DATA", 0));
    let Body::TemplateData(t) = m.body else {
        panic!()
    };
    Template::new(t.templates[0].clone()).unwrap()
}

/// The expected values of the n-th golden DATA record (n = 0, 1, 2).
pub fn expected_record(n: i32) -> Vec<(&'static str, Value)> {
    vec![
        ("counter", Value::Int(n)),
        ("counter2", Value::Int(n)),
        ("name", Value::String("xdrBASE64".into())),
        ("unsigned32", Value::UnsignedInt(1)),
        ("unsigned32_2", Value::UnsignedInt(2)),
        ("unsigned64", Value::UnsignedLong(3)),
        (
            "ipAddress",
            Value::Ipv4Addr(Ipv4Addr::new(192, 168, 1, 255)),
        ),
        (
            "macAddress",
            Value::MacAddress(MacAddress(0x1122_3344_5566_7788)),
        ),
        ("IPDRCLong", Value::Long(38_675_690)),
        ("IPDRCreationTime", Value::DateTimeMsec(123_456)),
        ("IPDR_FLOAT", Value::Float(f32::from_bits(0x432f_9375))),
        ("IPDR_DOUBLE", Value::Double(12345.45)),
        ("IPDR_BASE64", Value::HexBinary(b"alex".to_vec())),
        (
            "IPDR_HEXBINARY",
            Value::HexBinary(b"123456789123456".to_vec()),
        ),
        ("IPDR_BOOLEAN", Value::Boolean(true)),
        ("IPDR_BYTE", Value::Byte(5)),
        ("IPDR_UBYTE", Value::UnsignedByte(3)),
        ("IPDR_SHORT", Value::Short(99)),
        ("IPDR_USHORT", Value::UnsignedShort(111)),
        ("IPDR_DATETIME", Value::DateTime(0)),
        (
            "ip6Address",
            Value::Ipv6Addr(Ipv6Addr::from(*b"1234567812345678")),
        ),
        ("uuid", Value::Uuid(*b"1234567812345678")),
        ("timeUsec", Value::DateTimeUsec(0xaaa)),
    ]
}

#[test]
fn connect() {
    let m = decode(&golden_msg("CONNECT", 0));
    assert_eq!((m.session_id, m.message_flags), (0, 0));
    assert_eq!(
        m.body,
        Body::Connect(Connect {
            initiator_address: Ipv4Addr::new(127, 0, 0, 1),
            initiator_port: 59708,
            capabilities: Capabilities::MULTISESSION,
            keep_alive_interval: 30,
            vendor_id: "mini-collector".into(),
        })
    );
    assert!(m.trailing.is_empty());
}

#[test]
fn connect_response_with_junk_byte() {
    let m = decode(&golden_msg("CONNECT_RESPONSE", 0));
    assert_eq!(m.session_id, 0);
    assert_eq!(
        m.body,
        Body::ConnectResponse(ConnectResponse {
            capabilities: Capabilities(0x02),
            keep_alive_interval: 5,
            vendor_id: "Amdocs Technologies Ltd. - IPDR simple client simulator".into(),
        })
    );
    assert_eq!(&m.trailing[..], &[0xa1]);
}

#[test]
fn get_sessions_and_response() {
    let m = decode(&golden_msg("GET_SESSIONS", 0));
    assert_eq!(m.session_id, 0);
    assert_eq!(m.body, Body::GetSessions(GetSessions { request_id: 1 }));

    let m = decode(&golden_msg("GET_SESSIONS_RESPONSE", 0));
    assert_eq!(
        m.body,
        Body::GetSessionsResponse(GetSessionsResponse {
            request_id: 1,
            sessions: vec![SessionBlock {
                session_id: 1,
                reserved: 0xa1,
                name: "session1".into(),
                description: "NE/one".into(),
                ack_time_interval: 1000,
                ack_sequence_interval: 50,
            }],
        })
    );
    assert!(m.trailing.is_empty());
}

#[test]
fn flow_start_and_final_template_data_ack() {
    let m = decode(&golden_msg("FLOW_START", 0));
    assert_eq!((m.session_id, m.body), (1, Body::FlowStart));
    let m = decode(&golden_msg("FINAL_TEMPLATE_DATA_ACK", 0));
    assert_eq!((m.session_id, m.body), (1, Body::FinalTemplateDataAck));
}

#[test]
fn template_data() {
    let m = decode(&golden_msg("TEMPLATE_DATA", 0));
    assert_eq!(m.session_id, 1);
    let Body::TemplateData(t) = &m.body else {
        panic!("{m:?}")
    };
    assert_eq!(t.config_id, 1);
    assert_eq!(t.flags, 0);
    assert!(!t.negotiable());
    assert_eq!(t.templates.len(), 1);
    check_template_block(&t.templates[0]);
    assert!(m.trailing.is_empty());
}

#[test]
fn session_start() {
    let m = decode(&golden_msg("SESSION_START", 0));
    assert_eq!(m.session_id, 1);
    assert_eq!(
        m.body,
        Body::SessionStart(SessionStart {
            exporter_boot_time: 0x6b01_2c8f,
            first_record_sequence_number: 0,
            dropped_record_count: 0,
            primary: true,
            ack_time_interval: 1,
            ack_sequence_interval: 50,
            document_id: DocumentId::NIL,
        })
    );
}

#[test]
fn get_templates_and_response() {
    let m = decode(&golden_msg("GET_TEMPLATES", 0));
    assert_eq!(
        (m.session_id, m.body),
        (1, Body::GetTemplates(GetTemplates { request_id: 2 }))
    );
    let m = decode(&golden_msg("GET_TEMPLATES_RESPONSE", 0));
    assert_eq!(m.session_id, 1);
    let Body::GetTemplatesResponse(r) = &m.body else {
        panic!()
    };
    assert_eq!((r.request_id, r.config_id), (2, 1));
    assert_eq!(r.templates.len(), 1);
    check_template_block(&r.templates[0]);
}

#[test]
fn keep_alive_flow_stop_disconnect() {
    let m = decode(&golden_msg("KEEP_ALIVE", 0));
    assert_eq!((m.session_id, m.body), (0, Body::KeepAlive));
    let m = decode(&golden_msg("FLOW_STOP", 0));
    assert_eq!(
        (m.session_id, m.body),
        (
            1,
            Body::FlowStop(FlowStop {
                reason_code: FlowStopReason::NORMAL,
                reason_info: "done".into()
            })
        )
    );
    let m = decode(&golden_msg("DISCONNECT", 0));
    assert_eq!((m.session_id, m.body), (0, Body::Disconnect));
}

#[test]
fn data_and_data_ack() {
    let template = golden_template();
    for n in 0..3 {
        let m = decode(&golden_msg("DATA", n));
        assert_eq!(m.session_id, 1);
        let Body::Data(d) = &m.body else { panic!() };
        assert_eq!(
            (d.template_id, d.config_id, d.flags, d.sequence_num),
            (1, 1, 0, n as u64)
        );
        assert!(!d.possible_duplicate());
        assert_eq!(d.record.len(), 159);
        let fields = decode_record(&template, &d.record).unwrap();
        let got: Vec<(&str, Value)> = fields.iter().map(|(k, v)| (&**k, v.clone())).collect();
        assert_eq!(got, expected_record(n as i32));
        if let Value::Float(f) = got[10].1 {
            assert!((f - 175.576).abs() < 1e-4);
        }

        let m = decode(&golden_msg("DATA_ACK", n));
        assert_eq!(m.session_id, 1);
        assert_eq!(
            m.body,
            Body::DataAck(DataAck {
                config_id: 1,
                sequence_num: n as u64
            })
        );
    }
}

#[test]
fn every_golden_message_round_trips() {
    let all = golden();
    assert_eq!(all.len(), 19);
    for g in &all {
        let m = decode(&g.bytes);
        assert_eq!(m.id().name(), g.name);
    }
}

#[test]
fn json_matches_the_capture() {
    // The capture's streams are the JSON's messages per direction (the DATA messages
    // arrived before the DATA_ACKs in the capture).
    for dir in [true, false] {
        let stream: Vec<u8> = pcap_segments()
            .into_iter()
            .filter(|s| s.0 == dir)
            .flat_map(|s| s.1)
            .collect();
        let mut json: Vec<Vec<u8>> = golden()
            .into_iter()
            .filter(|g| g.from_exporter == dir)
            .map(|g| g.bytes)
            .collect();
        let mut f = Framer::default();
        f.push(&stream);
        let mut got: Vec<Vec<u8>> = std::iter::from_fn(|| f.next_message())
            .map(|m| m.unwrap().to_bytes().unwrap())
            .collect();
        assert_eq!(f.buffered(), 0);
        got.sort();
        json.sort();
        assert_eq!(got, json);
    }
}

fn stream(dir: bool) -> (Vec<u8>, Vec<Message>) {
    let msgs: Vec<Vec<u8>> = golden()
        .into_iter()
        .filter(|g| g.from_exporter == dir)
        .map(|g| g.bytes)
        .collect();
    let expected = msgs
        .iter()
        .map(|b| Message::decode_slice(b).unwrap())
        .collect();
    (msgs.concat(), expected)
}

fn drain_framer(f: &mut Framer, into: &mut Vec<Message>) {
    while let Some(r) = f.next_message() {
        into.push(r.expect("golden stream frames cleanly"));
    }
}

#[test]
fn framing_split_at_every_byte_boundary() {
    for dir in [true, false] {
        let (bytes, expected) = stream(dir);
        // Two segments, cut at every position.
        for cut in 0..=bytes.len() {
            let mut f = Framer::default();
            let mut got = Vec::new();
            f.push(&bytes[..cut]);
            drain_framer(&mut f, &mut got);
            f.push(&bytes[cut..]);
            drain_framer(&mut f, &mut got);
            assert_eq!(got, expected, "cut at {cut}");
            assert_eq!(f.buffered(), 0);
        }
        // Three segments, cut at every pair of positions (coarser step on the second cut).
        for a in 0..=bytes.len() {
            for b in (a..=bytes.len()).step_by(37) {
                let mut f = Framer::default();
                let mut got = Vec::new();
                for part in [&bytes[..a], &bytes[a..b], &bytes[b..]] {
                    f.push(part);
                    drain_framer(&mut f, &mut got);
                }
                assert_eq!(got, expected, "cuts at {a},{b}");
            }
        }
        // One byte at a time.
        let mut f = Framer::default();
        let mut got = Vec::new();
        for b in &bytes {
            f.push(std::slice::from_ref(b));
            drain_framer(&mut f, &mut got);
        }
        assert_eq!(got, expected);
        // Everything merged into one segment.
        let mut f = Framer::default();
        let mut got = Vec::new();
        f.push(&bytes);
        drain_framer(&mut f, &mut got);
        assert_eq!(got, expected);
    }
}

#[test]
fn framing_as_captured() {
    let mut f = Framer::default();
    let mut got = Vec::new();
    for (_, seg) in pcap_segments().into_iter().filter(|s| s.0) {
        f.push(&seg);
        drain_framer(&mut f, &mut got);
    }
    let names: Vec<&str> = got.iter().map(|m| m.id().name()).collect();
    assert_eq!(
        names,
        [
            "CONNECT_RESPONSE",
            "GET_SESSIONS_RESPONSE",
            "TEMPLATE_DATA",
            "SESSION_START",
            "GET_TEMPLATES_RESPONSE",
            "DATA",
            "DATA",
            "DATA"
        ]
    );
}
