//! Encode/decode of every message of the catalogue, the framing error table, and UDP
//! version discovery.

mod common;

use std::net::Ipv4Addr;

use bytes::Bytes;
use common::*;
use ipdr::codec::*;
use ipdr::xdr::TypeId;

fn template(id: u16) -> TemplateBlock {
    TemplateBlock {
        template_id: id,
        schema_name: "urn:broadband-forum-org:ipdr:tr-232-1-0".into(),
        type_name: "BulkDataReport".into(),
        fields: vec![FieldDescriptor::new(TypeId::STRING, 1, "OUI"), {
            let mut f = FieldDescriptor::new(TypeId::BOOLEAN, 2, "Suspect");
            f.enabled = false;
            f
        }],
    }
}

/// One message of every kind, with non-trivial field values.
pub fn every_message() -> Vec<Message> {
    let b = |s: u8, body| Message::new(s, body);
    vec![
        b(1, Body::FlowStart),
        b(
            1,
            Body::FlowStop(FlowStop {
                reason_code: FlowStopReason(300),
                reason_info: "vendor".into(),
            }),
        ),
        b(
            0,
            Body::Connect(Connect {
                initiator_address: Ipv4Addr::new(192, 0, 2, 1),
                initiator_port: 4737,
                capabilities: Capabilities(7),
                keep_alive_interval: 10,
                vendor_id: "v".into(),
            }),
        ),
        b(
            0,
            Body::ConnectResponse(ConnectResponse {
                capabilities: Capabilities(6),
                keep_alive_interval: 5,
                vendor_id: String::new(),
            }),
        ),
        b(0, Body::Disconnect),
        b(
            0x41,
            Body::SessionStart(SessionStart {
                exporter_boot_time: u32::MAX,
                first_record_sequence_number: u64::MAX,
                dropped_record_count: 3,
                primary: false,
                ack_time_interval: 60,
                ack_sequence_interval: 1000,
                document_id: DocumentId(*b"0123456789abcdef"),
            }),
        ),
        b(
            0x41,
            Body::SessionStop(SessionStop {
                reason_code: SessionStopReason::TEMPLATE_DATA_UPDATED,
                reason_info: "t".into(),
            }),
        ),
        b(
            2,
            Body::TemplateData(TemplateData {
                config_id: 9,
                flags: 1,
                templates: vec![template(1), template(2)],
            }),
        ),
        b(2, Body::FinalTemplateDataAck),
        b(0, Body::GetSessions(GetSessions { request_id: 65535 })),
        b(
            0,
            Body::GetSessionsResponse(GetSessionsResponse {
                request_id: 4,
                sessions: vec![SessionBlock {
                    session_id: 0x5a,
                    reserved: 0,
                    name: "Z".into(),
                    description: "zed".into(),
                    ack_time_interval: 2,
                    ack_sequence_interval: 3,
                }],
            }),
        ),
        b(3, Body::GetTemplates(GetTemplates { request_id: 5 })),
        b(
            3,
            Body::GetTemplatesResponse(GetTemplatesResponse {
                request_id: 5,
                config_id: 6,
                templates: vec![],
            }),
        ),
        b(
            3,
            Body::ModifyTemplate(ModifyTemplate {
                config_id: 6,
                flags: 0,
                templates: vec![template(1)],
            }),
        ),
        b(
            3,
            Body::ModifyTemplateResponse(ModifyTemplateResponse {
                config_id: 7,
                flags: 0,
                templates: vec![template(1)],
            }),
        ),
        b(3, Body::StartNegotiation),
        b(3, Body::StartNegotiationReject),
        b(
            3,
            Body::Data(Data {
                template_id: 1,
                config_id: 7,
                flags: 1,
                sequence_num: 1 << 40,
                record: Bytes::from_static(b"\x00\x00\x00\x01a"),
            }),
        ),
        b(
            3,
            Body::DataAck(DataAck {
                config_id: 7,
                sequence_num: 1 << 40,
            }),
        ),
        b(
            3,
            Body::Error(ErrorMessage {
                timestamp: 1,
                session_specific: true,
                code: ErrorCode(0x7fff),
                description: "x\0".into(),
            }),
        ),
        b(
            3,
            Body::Request(RequestResponse {
                template_id: 1,
                config_id: 2,
                flags: 3,
                request_number: 4,
                data: Bytes::from_static(b"q"),
            }),
        ),
        b(
            3,
            Body::Response(RequestResponse {
                template_id: 1,
                config_id: 2,
                flags: 3,
                request_number: 4,
                data: Bytes::new(),
            }),
        ),
        b(0, Body::KeepAlive),
    ]
}

#[test]
fn every_message_of_the_catalogue_round_trips() {
    let all = every_message();
    let ids: Vec<MessageId> = all.iter().map(|m| m.id()).collect();
    assert_eq!(ids, MessageId::ALL, "one of each, in ID order");
    for m in all {
        let bytes = m.to_bytes().unwrap();
        assert_eq!(bytes[0], 2);
        assert_eq!(bytes[1], m.id() as u8);
        assert_eq!(bytes[2], m.session_id);
        assert_eq!(
            u32::from_be_bytes(bytes[4..8].try_into().unwrap()) as usize,
            bytes.len()
        );
        assert_eq!(Message::decode_slice(&bytes).unwrap(), m, "{}", m.id());
        assert_eq!(MessageId::from_u8(m.id() as u8), Some(m.id()));
    }
}

#[test]
fn fixed_sizes_from_the_catalogue() {
    let size = |m: &Message| m.to_bytes().unwrap().len();
    let all = every_message();
    let by = |id| all.iter().find(|m| m.id() == id).unwrap();
    for id in [
        MessageId::FlowStart,
        MessageId::Disconnect,
        MessageId::FinalTemplateDataAck,
        MessageId::StartNegotiation,
        MessageId::StartNegotiationReject,
        MessageId::KeepAlive,
    ] {
        assert_eq!(size(by(id)), 8, "{id}");
    }
    assert_eq!(size(by(MessageId::SessionStart)), 53);
    assert_eq!(size(by(MessageId::GetSessions)), 10);
    assert_eq!(size(by(MessageId::GetTemplates)), 10);
    assert_eq!(size(by(MessageId::DataAck)), 18);
    assert_eq!(size(by(MessageId::Data)), 25 + 5);
}

#[test]
fn error_code_session_flag_is_the_msb() {
    let m = Message::new(
        4,
        Body::Error(ErrorMessage {
            timestamp: 0x01020304,
            session_specific: true,
            code: ErrorCode(3),
            description: String::new(),
        }),
    );
    assert_eq!(
        m.to_bytes().unwrap(),
        unhex("022304000000001201020304800300000000")
    );
}

#[test]
fn trailing_bytes_are_kept() {
    let mut bytes = Message::new(0, Body::KeepAlive).to_bytes().unwrap();
    bytes.extend([1, 2, 3]);
    bytes[7] = 11;
    let m = Message::decode_slice(&bytes).unwrap();
    assert_eq!(&m.trailing[..], &[1, 2, 3]);
    assert_eq!(m.to_bytes().unwrap(), bytes);
}

#[test]
fn frame_error_table() {
    let err = |bytes: &[u8], max: usize| {
        let mut f = Framer::new(max);
        f.push(bytes);
        f.next_message().unwrap().unwrap_err()
    };
    let cases: Vec<(FrameError, bool, &str)> = vec![
        (
            err(&unhex("0240000000000007"), 1024),
            true,
            "shorter than the 8-byte header",
        ),
        (err(&unhex("0240000000000000"), 1024), true, "shorter"),
        (
            err(&unhex("0220010000000401"), 1024),
            true,
            "exceeds the maximum of 1024",
        ),
        (err(&unhex("01"), 1024), true, "version 1"),
        (err(&unhex("ff00"), 1024), true, "version 255"),
        (
            err(&unhex("029901000000000a0000"), 1024),
            false,
            "unknown message id 0x99",
        ),
        (
            err(&unhex("0220070000000009ff"), 1024),
            false,
            "cannot decode DATA",
        ),
        (
            err(&unhex("0205000000000009ff"), 1024),
            true,
            "cannot decode CONNECT",
        ),
    ];
    for (e, close, text) in cases {
        assert_eq!(e.error_code(), ErrorCode::MESSAGE_DECODE_ERROR);
        assert_eq!(e.must_close(), close, "{e}");
        assert!(e.to_string().contains(text), "{e} / {text}");
        let reply = e.to_error_message(77);
        let Body::Error(em) = &reply.body else {
            panic!()
        };
        assert_eq!(em.session_specific, !close);
        assert_eq!(em.timestamp, 77);
        assert_eq!(reply.session_id, if close { 0 } else { e.session_id });
        assert_eq!(
            Message::decode_slice(&reply.to_bytes().unwrap()).unwrap(),
            reply
        );
    }
    // Session id and message id come from the header.
    let e = err(&unhex("0220070000000009ff"), 1024);
    assert_eq!((e.message_id, e.session_id), (0x20, 7));
}

#[test]
fn framer_stops_after_a_fatal_error() {
    let mut f = Framer::default();
    f.push(&unhex("0240000000000008"));
    f.push(&unhex("0240000000000003"));
    f.push(&unhex("0240000000000008"));
    assert!(f.next_message().unwrap().is_ok());
    assert!(f.next_message().unwrap().is_err());
    assert!(f.is_failed());
    assert!(f.next_message().is_none());
    f.push(&unhex("0240000000000008"));
    assert!(f.next_message().is_none());
    assert_eq!(f.buffered(), 0);
}

#[test]
fn decode_checks_the_declared_length() {
    let e = Message::decode_slice(&unhex("02400000000000090000")).unwrap_err();
    assert!(matches!(
        e.kind,
        FrameErrorKind::LengthMismatch {
            declared: 9,
            actual: 10
        }
    ));
    assert!(Message::decode_slice(&[]).is_err());
    assert!(Message::decode_slice(&[2, 0x40]).is_err());
}

#[test]
fn hostile_counts_do_not_allocate() {
    // TEMPLATE_DATA announcing 2^32-1 templates in a 15-byte message.
    let e = Message::decode_slice(&unhex("021001000000000f000100ffffffff")).unwrap_err();
    assert!(
        matches!(
            e.kind,
            FrameErrorKind::Body {
                source: DecodeError::CountTooLarge { .. },
                ..
            }
        ),
        "{e}"
    );
    // Nesting bomb: structure descriptors nested far beyond the limit.
    let mut body = unhex("000100");
    body.extend(unhex("00000001" /* 1 template */));
    body.extend(unhex("0001" /* id */));
    body.extend(unhex("0000000000000000" /* names */));
    for _ in 0..50 {
        body.extend(unhex("00000001" /* 1 field */));
        body.extend(unhex("80000000" /* structure */));
        body.extend(unhex("00000000" /* fieldId */));
        body.extend(unhex("00000000" /* name */));
        body.extend(unhex("01"));
    }
    body.extend(unhex("00000000"));
    let mut msg = unhex("02100100");
    msg.extend(((body.len() + 8) as u32).to_be_bytes());
    msg.extend(body);
    let e = Message::decode_slice(&msg).unwrap_err();
    assert!(
        matches!(
            e.kind,
            FrameErrorKind::Body {
                source: DecodeError::TooDeep { .. },
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn version_discovery() {
    let req = VersionRequest {
        requester_address: Ipv4Addr::new(127, 0, 0, 1),
        requester_boot_time: 5,
        protocol: ProtocolTag::Ipdr,
    };
    let b = req.encode();
    assert_eq!(b.to_vec(), unhex("7f0000010000000549504452"));
    assert_eq!(VersionRequest::decode(&b).unwrap(), req);
    assert_eq!(
        VersionRequest::decode(&unhex("7f0000010000000543524e41"))
            .unwrap()
            .protocol,
        ProtocolTag::Other(*b"CRNA")
    );
    assert_eq!(
        VersionRequest::decode(b"\0\0\0\0\0\0\0\0CRAN")
            .unwrap()
            .protocol,
        ProtocolTag::Crane
    );
    assert!(VersionRequest::decode(&b[..11]).is_err());

    // The reference exporter's reply: TCP, version 2, port 14742, no additional entries.
    let observed = unhex("0000000100000002399600000000000000");
    let observed = &observed[..16];
    let r = VersionResponse::decode(observed).unwrap();
    assert_eq!(
        r.protocols,
        [ProtocolInfo {
            transport_type: TransportType::TCP,
            protocol_version: 2,
            port: 14742,
            reserved: 0
        }]
    );
    assert_eq!(r.find(TransportType::TCP).unwrap().port, 14742);
    assert!(r.find(TransportType::SCTP).is_none());
    assert_eq!(r.encode().unwrap(), observed);

    let two = VersionResponse {
        protocols: vec![
            ProtocolInfo {
                transport_type: TransportType::TCP,
                protocol_version: 2,
                port: 4737,
                reserved: 0,
            },
            ProtocolInfo {
                transport_type: TransportType::SCTP,
                protocol_version: 2,
                port: 4737,
                reserved: 0,
            },
        ],
    };
    let b = two.encode().unwrap();
    assert_eq!(b.len(), 28);
    assert_eq!(VersionResponse::decode(&b).unwrap(), two);
    assert!(VersionResponse::decode(&b[..27]).is_err());
    let mut bomb = b[..16].to_vec();
    bomb[12..16].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(VersionResponse::decode(&bomb).is_err());
}
