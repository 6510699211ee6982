//! tshark's IPDR/SP dissector as an independent oracle for our encoder.
//!
//! Encodes with [`ipdr::codec`] a whole IPDR/SP conversation: every message of the
//! catalogue, in both directions, with the TR-232 template and a real TR-232 record of 20
//! name/value pairs. It writes the bytes as a pcap of Ethernet/IPv4/TCP frames on
//! 127.0.0.1: a 3-way handshake, then exact sequence and acknowledgement numbers. One
//! segment carries several messages; some messages are split across segments, once inside
//! the 8-byte header. The test then runs `tshark -T json` on the file and checks:
//!
//! * tshark finds exactly our messages, in order, each in the frame that carries its last
//!   byte;
//! * each message shows our header fields and every body field the dissector decodes;
//! * there is no expert info and no malformed-packet mark on any frame that carries IPDR.
//!
//! The test skips, with a `SKIP:` line on stderr, only when `tshark` is not on PATH.
//! CI (`.ci/run`) installs it.
//!
//! Known limits of the Wireshark dissector (epan/dissectors/packet-ipdr.c; checked with
//! tshark 4.0.17, Debian 12). The test asserts what the dissector shows for these and does
//! not count them as failures:
//!
//! * FLOW_STOP / SESSION_STOP `reasonInfo` and ERROR `description` are UTF8Strings: a u32
//!   length, then the bytes (spec §3.2). The dissector reads them as a plain
//!   NUL-terminated ASCII string (`FT_STRING`) that runs from the length prefix to the end
//!   of the message. The shown value therefore stops at the prefix's first NUL byte and is
//!   empty. Wireshark also attaches a "Trailing stray characters" warning
//!   (`_ws.string.trailing_stray_characters`) to the field. The golden capture of the
//!   reference exporter session (tests/data) gets the same warning on its FLOW_STOP. The
//!   test checks the raw bytes tshark gives for the field (`-x`): the length prefix
//!   followed by the text. It accepts exactly that one warning, or none (a tshark that does
//!   not warn, or a fixed dissector). CONNECT / CONNECT_RESPONSE `vendorId` is decoded
//!   correctly as a counted string (`FT_UINT_STRING`).
//! * TEMPLATE_DATA, GET_TEMPLATES_RESPONSE, MODIFY_TEMPLATE(_RESPONSE) and
//!   GET_SESSIONS_RESPONSE: the dissector stops after the fixed fields and never parses
//!   TemplateBlocks or SessionBlocks. MODIFY_TEMPLATE shows only configId (no flags).
//! * DATA: `ipdr.data_record` is everything after sequenceNum, so it starts with the u32
//!   record length (spec §3.2). REQUEST / RESPONSE: `ipdr.data_record` is everything after
//!   requestNumber.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use bytes::Bytes;
use etherparse::PacketBuilder;
use ipdr::codec::*;
use ipdr::tr232::{tr232_template, BulkDataLayout, BulkDataReport, TR232_TEMPLATE_ID};
use ipdr::xdr::{decode_record, Template};
use serde_json::Value as Json;
use sim::ipdr::DeviceFleet;

/// The collector listens on a non-default port, so the test also exercises `-d`.
const COLLECTOR: Endpoint = Endpoint {
    mac: [0x02, 0, 0, 0, 0, 0x01],
    ip: [127, 0, 0, 1],
    port: 14737,
};
/// The exporter (a TR-232 CPE) dials the collector.
const EXPORTER: Endpoint = Endpoint {
    mac: [0x02, 0, 0, 0, 0, 0x02],
    ip: [127, 0, 0, 1],
    port: 50123,
};
const CONFIG_ID: u16 = 3;
const SESSION: u8 = 1;
const PAIRS: usize = 20;

struct Endpoint {
    mac: [u8; 6],
    ip: [u8; 4],
    port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    /// Exporter to collector (the TCP client to the server).
    ToCollector,
    /// Collector to exporter.
    ToExporter,
}

impl Dir {
    fn index(self) -> usize {
        self as usize
    }

    fn ends(self) -> (&'static Endpoint, &'static Endpoint) {
        match self {
            Dir::ToCollector => (&EXPORTER, &COLLECTOR),
            Dir::ToExporter => (&COLLECTOR, &EXPORTER),
        }
    }
}

/// Messages sent back to back in one direction. Their bytes are concatenated and cut into
/// TCP segments at `cuts` (offsets into the concatenation); no cuts means one segment.
struct Flight {
    dir: Dir,
    msgs: Vec<Message>,
    cuts: Vec<usize>,
}

fn one(dir: Dir, session_id: u8, body: Body) -> Flight {
    Flight {
        dir,
        msgs: vec![Message::new(session_id, body)],
        cuts: Vec::new(),
    }
}

fn len(m: &Message) -> usize {
    m.to_bytes().expect("encode").len()
}

fn fleet() -> DeviceFleet {
    DeviceFleet {
        oui: "02EE15".into(),
        product_class: "KeelsonSim".into(),
        serial_prefix: "KS".into(),
        devices: 3,
        pairs: PAIRS,
        seed: 42,
        interval: 300,
    }
}

/// A real TR-232 record (20 name/value pairs), checked against our own decoder.
fn tr232_record(index: u64) -> Bytes {
    let mut rec = Vec::new();
    fleet().encode_report(
        index,
        1_700_000_000_000 + index * 300_000,
        BulkDataLayout::Structured,
        &mut rec,
    );
    let template = Template::new(tr232_template(BulkDataLayout::Structured, PAIRS)).unwrap();
    let fields = decode_record(&template, &rec).expect("our own TR-232 record decodes");
    let report = BulkDataReport::from_fields(&fields).expect("a BulkDataReport");
    assert_eq!(report.bulk_data.len(), PAIRS);
    assert_eq!(report.bulk_data[0].0, "Device.DeviceInfo.UpTime");
    Bytes::from(rec)
}

/// The conversation: every message of the catalogue, both directions.
fn conversation() -> Vec<Flight> {
    use Dir::*;
    let tr232 = tr232_template(BulkDataLayout::Structured, PAIRS);
    let mut without_suspect = tr232.clone();
    without_suspect
        .fields
        .iter_mut()
        .filter(|f| f.name == "Suspect")
        .for_each(|f| f.enabled = false);
    let data = |dsn: u64, flags: u8| {
        Message::new(
            SESSION,
            Body::Data(Data {
                template_id: TR232_TEMPLATE_ID,
                config_id: CONFIG_ID,
                flags,
                sequence_num: dsn,
                record: tr232_record(dsn),
            }),
        )
    };
    let d: Vec<Message> = vec![data(0, 0), data(1, 0), data(2, Data::FLAG_DUPLICATE)];
    let data_cut = len(&d[0]) + len(&d[1]) + 100;
    let error = Message::new(
        SESSION,
        Body::Error(ErrorMessage {
            timestamp: 1_700_000_123,
            session_specific: true,
            code: ErrorCode::MESSAGE_INVALID_FOR_STATE,
            description: "unexpected START_NEGOTIATION".into(),
        }),
    );
    let error_len = len(&error);
    let session_stop = Message::new(
        SESSION,
        Body::SessionStop(SessionStop {
            reason_code: SessionStopReason::END_OF_DATA,
            reason_info: "end of data for session".into(),
        }),
    );

    vec![
        one(
            ToCollector,
            0,
            Body::Connect(Connect {
                initiator_address: Ipv4Addr::from(EXPORTER.ip),
                initiator_port: EXPORTER.port,
                capabilities: Capabilities::STRUCTURES
                    .union(Capabilities::MULTISESSION)
                    .union(Capabilities::TEMPLATE_NEGOTIATION),
                keep_alive_interval: 30,
                vendor_id: "Keelson sim exporter".into(),
            }),
        ),
        one(
            ToExporter,
            0,
            Body::ConnectResponse(ConnectResponse {
                capabilities: Capabilities(0x07),
                keep_alive_interval: 10,
                vendor_id: "Keelson ACS".into(),
            }),
        ),
        one(
            ToExporter,
            0,
            Body::GetSessions(GetSessions { request_id: 7 }),
        ),
        one(
            ToCollector,
            0,
            Body::GetSessionsResponse(GetSessionsResponse {
                request_id: 7,
                sessions: vec![SessionBlock {
                    session_id: SESSION,
                    reserved: 0,
                    name: "BulkData".into(),
                    description: "TR-232 BulkDataReport".into(),
                    ack_time_interval: 1,
                    ack_sequence_interval: 50,
                }],
            }),
        ),
        one(
            ToExporter,
            SESSION,
            Body::GetTemplates(GetTemplates { request_id: 8 }),
        ),
        one(
            ToCollector,
            SESSION,
            Body::GetTemplatesResponse(GetTemplatesResponse {
                request_id: 8,
                config_id: CONFIG_ID,
                templates: vec![tr232.clone()],
            }),
        ),
        one(ToExporter, SESSION, Body::FlowStart),
        // Split in three segments: inside the header, inside the body, rest.
        Flight {
            dir: ToCollector,
            msgs: vec![Message::new(
                SESSION,
                Body::TemplateData(TemplateData {
                    config_id: CONFIG_ID,
                    flags: TemplateData::FLAG_NEGOTIABLE,
                    templates: vec![tr232.clone()],
                }),
            )],
            cuts: vec![5, 100],
        },
        one(
            ToExporter,
            SESSION,
            Body::ModifyTemplate(ModifyTemplate {
                config_id: CONFIG_ID,
                flags: 0,
                templates: vec![without_suspect],
            }),
        ),
        // The exporter keeps its set: the final set is the original one.
        one(
            ToCollector,
            SESSION,
            Body::ModifyTemplateResponse(ModifyTemplateResponse {
                config_id: CONFIG_ID,
                flags: 0,
                templates: vec![tr232],
            }),
        ),
        one(ToExporter, SESSION, Body::FinalTemplateDataAck),
        one(
            ToCollector,
            SESSION,
            Body::SessionStart(SessionStart {
                exporter_boot_time: 1_699_999_000,
                first_record_sequence_number: 0,
                dropped_record_count: 5,
                primary: true,
                ack_time_interval: 1,
                ack_sequence_interval: 50,
                document_id: DocumentId([
                    0x6f, 0x1c, 0x2a, 0x4b, 0x9d, 0x3e, 0x4f, 0x70, 0x81, 0x92, 0xa3, 0xb4, 0xc5,
                    0xd6, 0xe7, 0xf8,
                ]),
            }),
        ),
        // DATA 0 and DATA 1 whole plus the head of DATA 2 in one segment, then the rest.
        Flight {
            dir: ToCollector,
            msgs: d,
            cuts: vec![data_cut],
        },
        // Two collector messages in one segment.
        Flight {
            dir: ToExporter,
            msgs: vec![
                Message::new(
                    SESSION,
                    Body::DataAck(DataAck {
                        config_id: CONFIG_ID,
                        sequence_num: 2,
                    }),
                ),
                Message::new(0, Body::KeepAlive),
            ],
            cuts: Vec::new(),
        },
        one(
            ToExporter,
            SESSION,
            Body::Request(RequestResponse {
                template_id: TR232_TEMPLATE_ID,
                config_id: CONFIG_ID,
                flags: 0,
                request_number: 9,
                data: Bytes::from_static(b"\x00\x00\x00\x05hello"),
            }),
        ),
        one(
            ToCollector,
            SESSION,
            Body::Response(RequestResponse {
                template_id: TR232_TEMPLATE_ID,
                config_id: CONFIG_ID,
                flags: 0x01,
                request_number: 9,
                data: Bytes::from_static(b"\x00\x00\x00\x02ok"),
            }),
        ),
        one(ToExporter, SESSION, Body::StartNegotiation),
        one(ToCollector, SESSION, Body::StartNegotiationReject),
        one(ToCollector, 0, Body::KeepAlive),
        // ERROR whole plus five header bytes of SESSION_STOP, then the rest.
        Flight {
            dir: ToCollector,
            msgs: vec![error, session_stop],
            cuts: vec![error_len + 5],
        },
        one(
            ToExporter,
            SESSION,
            Body::FlowStop(FlowStop {
                reason_code: FlowStopReason::NORMAL,
                reason_info: "collector leaving".into(),
            }),
        ),
        one(ToExporter, 0, Body::Disconnect),
    ]
}

/// A value tshark should show for one field.
#[derive(Debug, Clone, PartialEq)]
enum Want {
    /// An integer field (tshark prints decimal or `0x` hex by the field's base).
    Num(u64),
    /// A field shown as text (addresses, GUIDs, strings).
    Text(String),
    /// A byte field (tshark prints `aa:bb:...`).
    Hex(Vec<u8>),
    /// The raw bytes under a field (`<field>_raw` with `-x`), for fields whose displayed
    /// value is unusable.
    Raw(Vec<u8>),
    /// A `<field>_tree` holding only the "Trailing stray characters" warning that
    /// Wireshark adds when it reads a UTF8String as a NUL-terminated string (module docs).
    StrayCharacters,
}

fn counted(s: &str) -> Vec<u8> {
    let mut v = (s.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(s.as_bytes());
    v
}

/// A UTF8String the dissector reads as a plain string from its length prefix (module
/// docs): the raw bytes are ours; the shown value is empty, because the prefix starts with
/// a NUL; and when anything but NULs follows, Wireshark warns about trailing stray
/// characters.
fn misread_string(
    put: &mut impl FnMut(&'static str, Want),
    field: &'static str,
    tree: &'static str,
    s: &str,
) {
    let bytes = counted(s);
    put(field, Want::Raw(bytes.clone()));
    if bytes.iter().any(|b| *b != 0) {
        put(tree, Want::StrayCharacters);
    }
}

/// What tshark's IPDR dissector should show for `m`, whose encoding is `wire`: every field
/// it decodes, and no other.
fn expected(m: &Message, wire: &[u8]) -> BTreeMap<&'static str, Want> {
    use Want::*;
    let mut w = BTreeMap::new();
    w.insert("ipdr.version", Num(2));
    w.insert("ipdr.message_id", Num(m.id() as u64));
    w.insert("ipdr.session_id", Num(m.session_id.into()));
    w.insert("ipdr.message_flags", Num(m.message_flags.into()));
    w.insert("ipdr.message_len", Num(wire.len() as u64));
    let mut put = |k: &'static str, v: Want| assert!(w.insert(k, v).is_none(), "{k} twice");
    match &m.body {
        Body::FlowStart
        | Body::Disconnect
        | Body::FinalTemplateDataAck
        | Body::StartNegotiation
        | Body::StartNegotiationReject
        | Body::KeepAlive => {}
        Body::Connect(c) => {
            put("ipdr.initiator_id", Text(c.initiator_address.to_string()));
            put("ipdr.initiator_port", Num(c.initiator_port.into()));
            put("ipdr.capabilities", Num(c.capabilities.0.into()));
            put("ipdr.keepalive_interval", Num(c.keep_alive_interval.into()));
            put("ipdr.vendor_id", Text(c.vendor_id.clone()));
        }
        Body::ConnectResponse(c) => {
            put("ipdr.capabilities", Num(c.capabilities.0.into()));
            put("ipdr.keepalive_interval", Num(c.keep_alive_interval.into()));
            put("ipdr.vendor_id", Text(c.vendor_id.clone()));
        }
        Body::FlowStop(FlowStop {
            reason_code,
            reason_info,
        }) => {
            put("ipdr.reason_code", Num(reason_code.0.into()));
            misread_string(
                &mut put,
                "ipdr.reason_info",
                "ipdr.reason_info_tree",
                reason_info,
            );
        }
        Body::SessionStop(SessionStop {
            reason_code,
            reason_info,
        }) => {
            put("ipdr.reason_code", Num(reason_code.0.into()));
            misread_string(
                &mut put,
                "ipdr.reason_info",
                "ipdr.reason_info_tree",
                reason_info,
            );
        }
        Body::SessionStart(s) => {
            put("ipdr.exporter_boot_time", Num(s.exporter_boot_time.into()));
            put(
                "ipdr.first_record_sequence_number",
                Num(s.first_record_sequence_number),
            );
            put("ipdr.dropped_record_count", Num(s.dropped_record_count));
            put("ipdr.primary", Num(s.primary.into()));
            put("ipdr.ack_time_interval", Num(s.ack_time_interval.into()));
            put(
                "ipdr.ack_sequence_interval",
                Num(s.ack_sequence_interval.into()),
            );
            put("ipdr.document_id", Text(s.document_id.to_string()));
        }
        Body::TemplateData(t) => {
            put("ipdr.config_id", Num(t.config_id.into()));
            put("ipdr.flags", Num(t.flags.into()));
        }
        Body::GetSessions(g) => put("ipdr.request_id", Num(g.request_id.into())),
        Body::GetSessionsResponse(g) => put("ipdr.request_id", Num(g.request_id.into())),
        Body::GetTemplates(g) => put("ipdr.request_id", Num(g.request_id.into())),
        Body::GetTemplatesResponse(g) => {
            put("ipdr.request_id", Num(g.request_id.into()));
            put("ipdr.config_id", Num(g.config_id.into()));
        }
        Body::ModifyTemplate(t) => put("ipdr.config_id", Num(t.config_id.into())),
        Body::ModifyTemplateResponse(t) => {
            put("ipdr.config_id", Num(t.config_id.into()));
            put("ipdr.flags", Num(t.flags.into()));
        }
        Body::Data(d) => {
            put("ipdr.template_id", Num(d.template_id.into()));
            put("ipdr.config_id", Num(d.config_id.into()));
            put("ipdr.flags", Num(d.flags.into()));
            put("ipdr.sequence_num", Num(d.sequence_num));
            let mut rec = (d.record.len() as u32).to_be_bytes().to_vec();
            rec.extend_from_slice(&d.record);
            put("ipdr.data_record", Hex(rec));
        }
        Body::DataAck(a) => {
            put("ipdr.config_id", Num(a.config_id.into()));
            put("ipdr.sequence_num", Num(a.sequence_num));
        }
        Body::Error(e) => {
            put("ipdr.timestamp", Num(e.timestamp.into()));
            let flag = if e.session_specific { 0x8000 } else { 0 };
            put("ipdr.error_code", Num((flag | e.code.0).into()));
            misread_string(
                &mut put,
                "ipdr.description",
                "ipdr.description_tree",
                &e.description,
            );
        }
        Body::Request(r) | Body::Response(r) => {
            put("ipdr.template_id", Num(r.template_id.into()));
            put("ipdr.config_id", Num(r.config_id.into()));
            put("ipdr.flags", Num(r.flags.into()));
            put("ipdr.request_number", Num(r.request_number));
            put("ipdr.data_record", Hex(r.data.to_vec()));
        }
    }
    w
}

/// A pcap (Ethernet link type) of one TCP connection between the exporter and the
/// collector, with exact sequence and acknowledgement numbers.
struct Capture {
    pcap: Vec<u8>,
    frames: u32,
    /// Next sequence number per direction ([`Dir::index`]).
    next_seq: [u32; 2],
}

impl Capture {
    fn new() -> Capture {
        let mut pcap = Vec::new();
        pcap.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes()); // magic, microseconds
        pcap.extend_from_slice(&2u16.to_le_bytes()); // version 2.4
        pcap.extend_from_slice(&4u16.to_le_bytes());
        pcap.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        pcap.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        pcap.extend_from_slice(&65_535u32.to_le_bytes()); // snaplen
        pcap.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
        Capture {
            pcap,
            frames: 0,
            next_seq: [0x1000_0000, 0x7000_0000],
        }
    }

    /// Appends one frame; returns its 1-based frame number.
    fn frame(&mut self, dir: Dir, syn: bool, ack: bool, payload: &[u8]) -> u32 {
        let (src, dst) = dir.ends();
        let seq = self.next_seq[dir.index()];
        let mut b = PacketBuilder::ethernet2(src.mac, dst.mac)
            .ipv4(src.ip, dst.ip, 64)
            .tcp(src.port, dst.port, seq, 65_535);
        if syn {
            b = b.syn();
        }
        if ack {
            b = b.ack(self.next_seq[1 - dir.index()]);
        }
        if !payload.is_empty() {
            b = b.psh();
        }
        let mut pkt = Vec::with_capacity(b.size(payload.len()));
        b.write(&mut pkt, payload).expect("build frame");
        self.next_seq[dir.index()] = seq
            .wrapping_add(payload.len() as u32)
            .wrapping_add(syn as u32);

        // One frame per millisecond.
        let t = 1_700_000_000_000_000u64 + u64::from(self.frames) * 1_000;
        self.pcap
            .extend_from_slice(&((t / 1_000_000) as u32).to_le_bytes());
        self.pcap
            .extend_from_slice(&((t % 1_000_000) as u32).to_le_bytes());
        self.pcap
            .extend_from_slice(&(pkt.len() as u32).to_le_bytes());
        self.pcap
            .extend_from_slice(&(pkt.len() as u32).to_le_bytes());
        self.pcap.extend_from_slice(&pkt);
        self.frames += 1;
        self.frames
    }
}

/// One message as sent, with the frame tshark should report it in.
struct Sent {
    dir: Dir,
    msg: Message,
    wire: Vec<u8>,
    frame: u32,
}

/// Writes the conversation as frames: handshake, then each flight cut into its segments.
fn capture(flights: &[Flight]) -> (Capture, Vec<Sent>) {
    let mut cap = Capture::new();
    cap.frame(Dir::ToCollector, true, false, &[]);
    cap.frame(Dir::ToExporter, true, true, &[]);
    cap.frame(Dir::ToCollector, false, true, &[]);
    let mut sent = Vec::new();
    for f in flights {
        let mut bytes = Vec::new();
        let mut ends = Vec::new();
        for m in &f.msgs {
            m.encode(&mut bytes).expect("encode");
            ends.push(bytes.len());
        }
        let mut bounds = vec![0];
        bounds.extend(f.cuts.iter().copied());
        bounds.push(bytes.len());
        assert!(
            bounds.windows(2).all(|w| w[0] < w[1]),
            "bad cuts {bounds:?}"
        );
        let mut start = 0;
        for w in bounds.windows(2) {
            let frame = cap.frame(f.dir, false, true, &bytes[w[0]..w[1]]);
            // A message is reported in the frame that carries its last byte.
            for (m, &end) in f.msgs.iter().zip(&ends) {
                if end > w[0] && end <= w[1] {
                    sent.push(Sent {
                        dir: f.dir,
                        msg: m.clone(),
                        wire: bytes[start..end].to_vec(),
                        frame,
                    });
                    start = end;
                }
            }
        }
    }
    (cap, sent)
}

/// Runs tshark on `pcap`; `None` if tshark is not installed.
fn tshark(dir: &Path, pcap: &Path) -> Option<Vec<Json>> {
    let decode_as = format!("tcp.port=={},ipdr", COLLECTOR.port);
    let out = Command::new("tshark")
        // Keep the user's Wireshark preferences out of it.
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir)
        .args(["-n", "-r"])
        .arg(pcap)
        .args(["-d", &decode_as])
        .args(["-o", "tcp.desegment_tcp_streams:TRUE"])
        .args(["-o", "tcp.analyze_sequence_numbers:TRUE"])
        .args(["-o", "tcp.check_checksum:TRUE"])
        .args(["-o", "ip.check_checksum:TRUE"])
        // No session is decoded as DOCSIS SAMIS-TYPE-1: DATA records stay raw bytes.
        .args(["-o", "ipdr.sessions.samis_type_1:"])
        .args(["-T", "json", "--no-duplicate-keys", "-x"])
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) if e.kind() == ErrorKind::NotFound => return None,
        Err(e) => panic!("cannot run tshark: {e}"),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tshark failed ({}):\n{stderr}",
        out.status
    );
    match serde_json::from_slice::<Json>(&out.stdout) {
        Ok(Json::Array(v)) => Some(v),
        other => panic!("tshark printed no JSON array ({other:?}); stderr:\n{stderr}"),
    }
}

/// The value tshark shows for `key` in one IPDR PDU, compared the way `want` needs.
fn check_field(pdu: &Json, key: &str, want: &Want) -> Result<(), String> {
    let got = |k: &str| pdu.get(k).ok_or_else(|| format!("{k} missing"));
    let text = |v: &Json| {
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("{key} is not a single value: {v}"))
    };
    let unhex = |s: &str| -> Result<Vec<u8>, String> {
        let s: String = s.chars().filter(|c| *c != ':').collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(s.get(i..i + 2).unwrap_or("?"), 16))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{key}: bad hex {s:?}: {e}"))
    };
    let ok = match want {
        Want::Num(n) => {
            let s = text(got(key)?)?;
            let v = match s.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16),
                None => s.parse(),
            };
            v.map_err(|e| format!("{key}: {s:?} is not a number: {e}"))? == *n
        }
        Want::Text(t) => text(got(key)?)? == *t,
        Want::Hex(b) => unhex(&text(got(key)?)?)? == *b,
        Want::Raw(b) => {
            // `-x` adds `<field>_raw`: [hex, offset, length, bitmask, type].
            let raw_key = format!("{key}_raw");
            let raw = got(&raw_key)?;
            let hex = raw.get(0).and_then(Json::as_str).ok_or("no raw hex")?;
            unhex(hex)? == *b
        }
        Want::StrayCharacters => {
            let Some(tree) = pdu.get(key) else {
                return Ok(());
            };
            let expert = tree.get("_ws.expert");
            tree.as_object().map(|o| o.len()) == Some(1)
                && expert
                    .and_then(|e| e.get("_ws.string.trailing_stray_characters"))
                    .is_some()
                && expert
                    .and_then(|e| e.get("_ws.expert.severity"))
                    .and_then(Json::as_str)
                    == Some(SEVERITY_WARN)
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{key}: tshark shows {:?}, we sent {want:?}",
            pdu.get(key)
        ))
    }
}

/// Every expert info under `v`: (severity, message).
fn experts(v: &Json, out: &mut Vec<(String, String)>) {
    match v {
        Json::Object(o) => {
            for (k, x) in o {
                if k.starts_with("_ws.malformed") {
                    out.push(("malformed".into(), format!("{k}: {x}")));
                } else if k.starts_with("_ws.expert") && x.is_object() {
                    let s = |f: &str| x.get(f).and_then(Json::as_str).unwrap_or("?").to_owned();
                    out.push((s("_ws.expert.severity"), s("_ws.expert.message")));
                }
                experts(x, out);
            }
        }
        Json::Array(a) => a.iter().for_each(|x| experts(x, out)),
        _ => {}
    }
}

/// `PI_CHAT`: TCP's SYN / SYN-ACK notes.
const SEVERITY_CHAT: &str = "2097152";
/// `PI_WARN`.
const SEVERITY_WARN: &str = "6291456";

#[test]
fn tshark_dissects_our_conversation() {
    let flights = conversation();
    let (cap, sent) = capture(&flights);

    // The conversation covers the whole catalogue, in both directions.
    for id in MessageId::ALL {
        assert!(sent.iter().any(|s| s.msg.id() == id), "{id} not covered");
    }
    for dir in [Dir::ToCollector, Dir::ToExporter] {
        assert!(sent.iter().filter(|s| s.dir == dir).count() > 5);
    }

    let tmp = tempfile::tempdir().unwrap();
    let pcap = tmp.path().join("ipdr-conversation.pcap");
    std::fs::write(&pcap, &cap.pcap).unwrap();
    // To look at the capture yourself: IPDR_TSHARK_PCAP=/tmp/ipdr.pcap cargo test ...
    if let Some(keep) = std::env::var_os("IPDR_TSHARK_PCAP") {
        std::fs::write(&keep, &cap.pcap).unwrap();
    }
    let Some(packets) = tshark(tmp.path(), &pcap) else {
        // Written to the stream itself, not through eprintln!, so that libtest's output
        // capture does not hide it.
        testkit::skip(
            "tshark not installed (not on PATH); install it (apt-get install tshark) \
             to check our IPDR/SP bytes against Wireshark's dissector",
        );
        return;
    };
    assert_eq!(
        packets.len(),
        cap.frames as usize,
        "tshark read every frame"
    );

    // Per frame: the IPDR PDUs tshark found and any expert info.
    let mut found: Vec<(u32, Json)> = Vec::new();
    let mut problems = Vec::new();
    for p in &packets {
        let layers = &p["_source"]["layers"];
        let frame: u32 = layers["frame"]["frame.number"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("frame.number");
        let pdus = match layers.get("ipdr") {
            None => Vec::new(),
            Some(Json::Array(a)) => a.clone(),
            Some(o) => vec![o.clone()],
        };
        // Below IPDR (Ethernet, IPv4 and TCP, including checksums, sequence analysis and
        // reassembly) and as a separate layer (`_ws.malformed`). TCP notes the handshake
        // at chat level; frames that carry IPDR must have nothing to say at all.
        let mut ex = Vec::new();
        if let Json::Object(o) = layers {
            o.iter()
                .filter(|(k, _)| *k != "ipdr")
                .for_each(|(_, v)| experts(v, &mut ex));
        }
        for (severity, message) in ex {
            if !(pdus.is_empty() && severity == SEVERITY_CHAT) {
                problems.push(format!("frame {frame}: expert info {severity}: {message}"));
            }
        }
        found.extend(pdus.into_iter().map(|pdu| (frame, pdu)));
    }

    let ids = |v: &mut dyn Iterator<Item = String>| v.collect::<Vec<_>>().join(" ");
    let ours = ids(&mut sent.iter().map(|s| format!("{}@{}", s.msg.id(), s.frame)));
    let theirs = ids(&mut found.iter().map(|(frame, pdu)| {
        let id = pdu["ipdr.message_id"].as_str().unwrap_or("?");
        let name = id
            .parse()
            .ok()
            .and_then(MessageId::from_u8)
            .map_or(format!("?{id}"), |m| m.to_string());
        format!("{name}@{frame}")
    }));
    assert_eq!(
        theirs, ours,
        "tshark's messages (id@frame) differ from ours\n  tshark: {theirs}\n  ours:   {ours}"
    );

    for (s, (frame, pdu)) in sent.iter().zip(&found) {
        let want = expected(&s.msg, &s.wire);
        for (key, w) in &want {
            if let Err(e) = check_field(pdu, key, w) {
                problems.push(format!("frame {frame} {}: {e}", s.msg.id()));
            }
        }
        // Nothing decoded that we did not expect (e.g. a SAMIS-TYPE-1 decode of DATA),
        // and no expert info inside the PDU other than the known string warning, which
        // check_field has just matched exactly.
        let Json::Object(o) = pdu else {
            panic!("frame {frame}: IPDR PDU is not an object: {pdu}");
        };
        for (k, v) in o {
            let base = k.strip_suffix("_raw").unwrap_or(k);
            if !want.contains_key(base) {
                problems.push(format!("frame {frame} {}: unexpected {k}", s.msg.id()));
            }
            if want.get(k.as_str()) != Some(&Want::StrayCharacters) {
                let mut ex = Vec::new();
                experts(
                    &Json::Object([(k.clone(), v.clone())].into_iter().collect()),
                    &mut ex,
                );
                for (severity, message) in ex {
                    problems.push(format!(
                        "frame {frame} {}: expert info {severity}: {message}",
                        s.msg.id()
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "tshark disagrees with our encoder:\n  {}",
        problems.join("\n  ")
    );
    eprintln!(
        "tshark dissected {} IPDR/SP messages ({} message types, both directions) in {} \
         frames exactly as encoded (message@frame):\n  {ours}",
        found.len(),
        MessageId::ALL.len(),
        cap.frames
    );
}
