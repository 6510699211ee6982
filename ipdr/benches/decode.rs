//! Throughput of the receive path: framing + message decoding + record decoding + the
//! collector machine, with storage acknowledging each pushed segment immediately.
//!
//! TR-232-like DATA: OUI, ProductClass, SerialNumber, Suspect and 20 (Name, Value) string
//! pairs per record, built with this crate's encoder, in two template shapes:
//! * `flat`: 40 string fields Name1, Value1, … Name20, Value20;
//! * `bulk`: `BulkData` as an array of structure {Name, Value} (20 elements).
//!
//! Run: `cargo bench --manifest-path ipdr/Cargo.toml --bench decode`
//! (`IPDR_BENCH_SECS` sets the measuring time per shape, default 3).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipdr::codec::{
    Body, Capabilities, Connect, Data, DocumentId, FieldDescriptor, GetSessionsResponse, Message,
    SessionBlock, SessionStart, TemplateBlock, TemplateData,
};
use ipdr::collector::{Collector, CollectorConfig, ConnectionInfo, Direction, Output};
use ipdr::xdr::{encode_record, Template, TypeId, Value};
use ipdr::Framer;

const SESSION: u8 = b'A';
const MESSAGES: usize = 20_000;
const SEGMENT: usize = 64 * 1024;
const PAIRS: usize = 20;

const PARAMS: [&str; PAIRS] = [
    "Device.DeviceInfo.UpTime",
    "Device.DeviceInfo.MemoryStatus.Free",
    "Device.DeviceInfo.ProcessStatus.CPUUsage",
    "Device.Ethernet.Interface.1.Stats.BytesSent",
    "Device.Ethernet.Interface.1.Stats.BytesReceived",
    "Device.Ethernet.Interface.1.Stats.PacketsSent",
    "Device.Ethernet.Interface.1.Stats.PacketsReceived",
    "Device.Ethernet.Interface.1.Stats.ErrorsSent",
    "Device.WiFi.Radio.1.Stats.BytesSent",
    "Device.WiFi.Radio.1.Stats.BytesReceived",
    "Device.WiFi.Radio.1.Stats.Noise",
    "Device.WiFi.Radio.1.Channel",
    "Device.WiFi.AccessPoint.1.AssociatedDeviceNumberOfEntries",
    "Device.WiFi.AccessPoint.1.AssociatedDevice.1.SignalStrength",
    "Device.WiFi.AccessPoint.1.AssociatedDevice.1.LastDataDownlinkRate",
    "Device.IP.Interface.1.IPv4Address.1.IPAddress",
    "Device.IP.Interface.1.Stats.BytesSent",
    "Device.IP.Interface.1.Stats.BytesReceived",
    "Device.Hosts.HostNumberOfEntries",
    "Device.Time.CurrentLocalTime",
];

#[derive(Clone, Copy)]
enum Shape {
    Flat,
    Bulk,
}

fn field(t: TypeId, id: u32, name: &str) -> FieldDescriptor {
    FieldDescriptor::new(t, id, name)
}

fn template_block(shape: Shape) -> TemplateBlock {
    let mut fields = vec![
        field(TypeId::STRING, 1, "OUI"),
        field(TypeId::STRING, 2, "ProductClass"),
        field(TypeId::STRING, 3, "SerialNumber"),
        field(TypeId::BOOLEAN, 4, "Suspect"),
    ];
    match shape {
        Shape::Flat => {
            for i in 1..=PAIRS as u32 {
                fields.push(field(TypeId::STRING, 2 * i + 3, &format!("Name{i}")));
                fields.push(field(TypeId::STRING, 2 * i + 4, &format!("Value{i}")));
            }
        }
        Shape::Bulk => {
            let mut bulk = field(
                TypeId(TypeId::STRUCTURE_FLAG | TypeId::ARRAY_FLAG),
                5,
                "BulkData",
            );
            bulk.children = vec![
                field(TypeId::STRING, 6, "Name"),
                field(TypeId::STRING, 7, "Value"),
            ];
            fields.push(bulk);
        }
    }
    TemplateBlock {
        template_id: 1,
        schema_name: "urn:broadband-forum-org:ipdr:tr-232-1-0".into(),
        type_name: "BulkDataReport".into(),
        fields,
    }
}

fn record_values(shape: Shape, n: usize) -> Vec<Value> {
    let s = |x: String| Value::String(x);
    let mut v = vec![
        s("00D09E".into()),
        s("HGW-2000".into()),
        s(format!("SN{:010}", n % 100_000)),
        Value::Boolean(false),
    ];
    let value = |i: usize| format!("{}", (n * 7919 + i * 104_729) % 1_000_000_007);
    match shape {
        Shape::Flat => {
            for (i, p) in PARAMS.iter().enumerate() {
                v.push(s(p.to_string()));
                v.push(s(value(i)));
            }
        }
        Shape::Bulk => {
            let pairs = PARAMS
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    Value::Structure(vec![
                        ("Name".into(), s(p.to_string())),
                        ("Value".into(), s(value(i))),
                    ])
                })
                .collect();
            v.push(Value::Array(pairs));
        }
    }
    v
}

struct Stream {
    setup: Vec<u8>,
    data: Vec<u8>,
    /// Offsets of the sequenceNum field of each DATA message in `data`.
    dsn_at: Vec<usize>,
}

fn build(shape: Shape) -> Stream {
    let mut setup = Vec::new();
    let msgs = [
        Message::new(
            0,
            Body::Connect(Connect {
                initiator_address: [10, 0, 0, 2].into(),
                initiator_port: 50000,
                capabilities: Capabilities(0x07),
                keep_alive_interval: 60,
                vendor_id: "bench-cpe".into(),
            }),
        ),
        Message::new(
            0,
            Body::GetSessionsResponse(GetSessionsResponse {
                request_id: 1,
                sessions: vec![SessionBlock {
                    session_id: SESSION,
                    reserved: 0,
                    name: "BulkData".into(),
                    description: String::new(),
                    ack_time_interval: 10,
                    ack_sequence_interval: 1000,
                }],
            }),
        ),
        Message::new(
            SESSION,
            Body::TemplateData(TemplateData {
                config_id: 1,
                flags: 0,
                templates: vec![template_block(shape)],
            }),
        ),
        Message::new(
            SESSION,
            Body::SessionStart(SessionStart {
                exporter_boot_time: 1,
                first_record_sequence_number: 0,
                dropped_record_count: 0,
                primary: true,
                ack_time_interval: 10,
                ack_sequence_interval: 1000,
                document_id: DocumentId(*b"bench-document-1"),
            }),
        ),
    ];
    for m in &msgs {
        m.encode(&mut setup).unwrap();
    }
    let template = Template::new(template_block(shape)).unwrap();
    let mut data = Vec::new();
    let mut dsn_at = Vec::with_capacity(MESSAGES);
    let mut rec = Vec::new();
    for n in 0..MESSAGES {
        rec.clear();
        encode_record(&template, &record_values(shape, n), &mut rec).unwrap();
        dsn_at.push(data.len() + 13);
        let d = Data {
            template_id: 1,
            config_id: 1,
            flags: 0,
            sequence_num: n as u64,
            record: rec.clone().into(),
        };
        Message::new(SESSION, Body::Data(d))
            .encode(&mut data)
            .unwrap();
    }
    Stream {
        setup,
        data,
        dsn_at,
    }
}

/// Drains outputs as the glue would: encode sends, "store" records. Returns the last DSN
/// handed to storage and the number of records.
fn drain(c: &mut Collector, wire: &mut Vec<u8>, last: &mut Option<(DocumentId, u64)>) -> u64 {
    let mut n = 0;
    while let Some(o) = c.poll_output() {
        match o {
            Output::Send(m) => {
                m.encode(wire).unwrap();
            }
            Output::Persist(r) => {
                black_box(&r.fields);
                *last = Some((r.document_id, r.sequence_num));
                n += 1;
            }
            Output::Event(e) => {
                black_box(e);
            }
            Output::Close => panic!("closed during the benchmark"),
        }
    }
    n
}

fn run(shape: Shape, name: &str, secs: f64) {
    let mut stream = build(shape);
    let bytes_per_pass = stream.data.len();
    let now = Instant::now();
    let mut c = Collector::new(
        Arc::new(CollectorConfig::default()),
        ConnectionInfo {
            exporter: Arc::from("bench"),
            direction: Direction::Inbound,
            unix_time: 1_700_000_000,
            nonce: 1,
        },
        now,
    );
    let mut framer = Framer::default();
    let mut wire = Vec::new();
    let mut last = None;
    framer.push(&stream.setup);
    while let Some(m) = framer.next_message() {
        c.handle_message(now, m.unwrap());
    }
    drain(&mut c, &mut wire, &mut last);

    let mut records = 0u64;
    let mut acks = 0usize;
    let mut busy = Duration::ZERO;
    let mut pass = 0u64;
    let mut warm = true;
    loop {
        // Continue the DSNs from the previous pass (not timed).
        let base = pass * MESSAGES as u64;
        for (i, &at) in stream.dsn_at.iter().enumerate() {
            stream.data[at..at + 8].copy_from_slice(&(base + i as u64).to_be_bytes());
        }
        pass += 1;
        let start = Instant::now();
        let mut n = 0;
        for seg in stream.data.chunks(SEGMENT) {
            let now = Instant::now();
            framer.push(seg);
            while let Some(m) = framer.next_message() {
                match m {
                    Ok(m) => c.handle_message(now, m),
                    Err(e) => panic!("{e}"),
                }
            }
            wire.clear();
            n += drain(&mut c, &mut wire, &mut last);
            // Storage commits the segment's records at once.
            if let Some((doc, dsn)) = last {
                c.records_durable(now, SESSION, doc, dsn);
                drain(&mut c, &mut wire, &mut last);
                acks += !wire.is_empty() as usize;
            }
        }
        let el = start.elapsed();
        assert_eq!(n, MESSAGES as u64, "every record persisted once");
        if warm {
            warm = false;
            acks = 0;
            continue;
        }
        busy += el;
        records += n;
        if busy.as_secs_f64() >= secs {
            break;
        }
    }
    let s = busy.as_secs_f64();
    let passes = records / MESSAGES as u64;
    println!(
        "{name:5} {:>9.0} records/s  {:>6.1} MB/s  ({} records, {} B/record on the wire, {} DATA_ACKs, {:.2} s)",
        records as f64 / s,
        (passes * bytes_per_pass as u64) as f64 / s / 1e6,
        records,
        bytes_per_pass / MESSAGES,
        acks,
        s
    );
    assert_eq!(c.stats().records_persisted, records + MESSAGES as u64);
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this briefly.
    let quick = !std::env::args().any(|a| a == "--bench");
    let secs = std::env::var("IPDR_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if quick { 0.01 } else { 3.0 });
    println!(
        "IPDR/SP receive path: framing + decode + collector, storage acked per {} KiB segment",
        SEGMENT / 1024
    );
    run(Shape::Flat, "flat", secs);
    run(Shape::Bulk, "bulk", secs);
}
