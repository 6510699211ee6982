//! Record decoding for every type of spec §4, arrays and structures, options and limits.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::*;
use ipdr::codec::{Body, FieldDescriptor, Message, TemplateBlock, TemplateData};
use ipdr::xdr::*;

fn block(fields: Vec<FieldDescriptor>) -> TemplateBlock {
    TemplateBlock {
        template_id: 7,
        schema_name: "urn:test".into(),
        type_name: "T".into(),
        fields,
    }
}

fn f(t: TypeId, name: &str) -> FieldDescriptor {
    FieldDescriptor::new(t, 0, name)
}

fn values(t: &Template, rec: &[u8]) -> Vec<Value> {
    decode_record(t, rec)
        .unwrap()
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

#[test]
fn every_primitive_and_derived_type() {
    let t = Template::new(block(vec![
        f(TypeId::INT, "int"),
        f(TypeId::UNSIGNED_INT, "uint"),
        f(TypeId::LONG, "long"),
        f(TypeId::UNSIGNED_LONG, "ulong"),
        f(TypeId::FLOAT, "float"),
        f(TypeId::DOUBLE, "double"),
        f(TypeId::HEX_BINARY, "hex"),
        f(TypeId::STRING, "string"),
        f(TypeId::BOOLEAN, "bool"),
        f(TypeId::BYTE, "byte"),
        f(TypeId::UNSIGNED_BYTE, "ubyte"),
        f(TypeId::SHORT, "short"),
        f(TypeId::UNSIGNED_SHORT, "ushort"),
        f(TypeId::DATE_TIME, "dt"),
        f(TypeId::DATE_TIME_MSEC, "dtms"),
        f(TypeId::IPV4_ADDR, "v4"),
        f(TypeId::IPV6_ADDR, "v6"),
        f(TypeId::UUID, "uuid"),
        f(TypeId::DATE_TIME_USEC, "dtus"),
        f(TypeId::MAC_ADDRESS, "mac"),
        f(TypeId::IP_ADDR, "ip4"),
        f(TypeId::IP_ADDR, "ip6"),
    ]))
    .unwrap();
    let rec = unhex(concat!(
        "fffffffe",         // int -2
        "fffffffe",         // uint
        "fffffffffffffffd", // long -3
        "0000000100000000", // ulong 2^32
        "3fc00000",         // float 1.5
        "c004000000000000", // double -2.5
        "00000003",
        "0a0b0c", // hex
        "00000005",
        "68c3a96c6c",       // "héll"
        "01",               // true
        "ff",               // byte -1
        "ff",               // ubyte 255
        "8000",             // short -32768
        "ffff",             // ushort
        "5f5e1000",         // dateTime
        "0000017a598c3a00", // dateTimeMsec
        "0a000001",         // 10.0.0.1
        "00000010",
        "20010db8000000000000000000000001", // 2001:db8::1 (prefixed)
        "00000010",
        "00112233445566778899aabbccddeeff", // uuid
        "fffffffffffffc18",                 // dateTimeUsec -1000
        "0000a0b1c2d3e4f5",                 // mac
        "00000004",
        "c0a80001", // ipAddr v4
        "00000010",
        "fe800000000000000000000000000002", // ipAddr v6
    ));
    let v = values(&t, &rec);
    assert_eq!(
        v,
        vec![
            Value::Int(-2),
            Value::UnsignedInt(0xffff_fffe),
            Value::Long(-3),
            Value::UnsignedLong(1 << 32),
            Value::Float(1.5),
            Value::Double(-2.5),
            Value::HexBinary(vec![10, 11, 12]),
            Value::String("héll".into()),
            Value::Boolean(true),
            Value::Byte(-1),
            Value::UnsignedByte(255),
            Value::Short(-32768),
            Value::UnsignedShort(65535),
            Value::DateTime(1_600_000_000),
            Value::DateTimeMsec(1_625_000_000_000),
            Value::Ipv4Addr(Ipv4Addr::new(10, 0, 0, 1)),
            Value::Ipv6Addr("2001:db8::1".parse().unwrap()),
            Value::Uuid(*b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff"),
            Value::DateTimeUsec(-1000),
            Value::MacAddress(MacAddress(0xa0b1_c2d3_e4f5)),
            Value::IpAddr(IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1))),
            Value::IpAddr(IpAddr::V6("fe80::2".parse().unwrap())),
        ]
    );
    assert_eq!(
        MacAddress(0xa0b1_c2d3_e4f5).to_string(),
        "a0:b1:c2:d3:e4:f5"
    );
    // Encoding the decoded values gives the same bytes back.
    let mut out = Vec::new();
    encode_record(&t, &v, &mut out).unwrap();
    assert_eq!(out, rec);
}

#[test]
fn unknown_derived_type_falls_back_to_its_base() {
    let t = Template::new(block(vec![f(TypeId(0x0922), "u"), f(TypeId(0x1f28), "s")])).unwrap();
    assert_eq!(
        values(&t, &unhex("0000002a0000000161")),
        [Value::UnsignedInt(42), Value::String("a".into())]
    );
}

#[test]
fn ipv6_encodings() {
    let fs = || block(vec![f(TypeId::IPV6_ADDR, "a"), f(TypeId::BYTE, "b")]);
    let raw = unhex("20010db800000000000000000000000107");
    let pre = unhex("0000001020010db800000000000000000000000107");
    let absent = unhex("0000000007");
    let addr = Value::Ipv6Addr("2001:db8::1".parse().unwrap());
    let with = |e| {
        Template::with_options(
            fs(),
            RecordOptions {
                ipv6: e,
                ..RecordOptions::default()
            },
        )
        .unwrap()
    };
    assert_eq!(
        values(&with(Ipv6Encoding::Raw16), &raw),
        [addr.clone(), Value::Byte(7)]
    );
    assert_eq!(
        values(&with(Ipv6Encoding::Prefixed), &pre),
        [addr.clone(), Value::Byte(7)]
    );
    assert_eq!(
        values(&with(Ipv6Encoding::Prefixed), &absent),
        [Value::Absent, Value::Byte(7)]
    );
    assert_eq!(
        values(&with(Ipv6Encoding::Auto), &raw),
        [addr.clone(), Value::Byte(7)]
    );
    assert_eq!(
        values(&with(Ipv6Encoding::Auto), &pre),
        [addr.clone(), Value::Byte(7)]
    );
    assert_eq!(
        values(&with(Ipv6Encoding::Auto), &absent),
        [Value::Absent, Value::Byte(7)]
    );
    // Wrong explicit mode: a clean error, never a panic.
    assert!(decode_record(&with(Ipv6Encoding::Raw16), &pre).is_err());
    assert!(decode_record(&with(Ipv6Encoding::Prefixed), &raw).is_err());
    // Raw encoding round trip.
    let mut out = Vec::new();
    encode_record(
        &with(Ipv6Encoding::Raw16),
        &[addr, Value::Byte(7)],
        &mut out,
    )
    .unwrap();
    assert_eq!(out, raw);
}

#[test]
fn uuid_ipaddr_absent_and_odd_lengths() {
    let t = Template::new(block(vec![
        f(TypeId::UUID, "u"),
        f(TypeId::IP_ADDR, "a"),
        f(TypeId::IP_ADDR, "b"),
    ]))
    .unwrap();
    let v = values(
        &t,
        &unhex("00000000" /* uuid absent */)
            .into_iter()
            .chain(unhex("00000000"))
            .chain(unhex("00000002abcd"))
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        v,
        [
            Value::Absent,
            Value::Absent,
            Value::HexBinary(vec![0xab, 0xcd])
        ]
    );
}

#[test]
fn disabled_fields_are_absent_from_records() {
    let mut fs = vec![
        f(TypeId::INT, "a"),
        f(TypeId::STRING, "b"),
        f(TypeId::BYTE, "c"),
    ];
    fs[1].enabled = false;
    let t = Template::new(block(fs)).unwrap();
    assert_eq!(
        t.enabled_fields().map(|n| &**n).collect::<Vec<_>>(),
        ["a", "c"]
    );
    let r = decode_record(&t, &unhex("0000000105")).unwrap();
    assert_eq!(r.iter().map(|(n, _)| &**n).collect::<Vec<_>>(), ["a", "c"]);
    // A disabled field of an unknown type does not matter.
    let mut fs = vec![f(TypeId::INT, "a"), f(TypeId(0x77), "weird")];
    fs[1].enabled = false;
    assert!(Template::new(block(fs)).is_ok());
}

#[test]
fn restricting_output_still_reads_the_wire() {
    let mut t = Template::new(block(vec![f(TypeId::STRING, "x"), f(TypeId::INT, "ns:y")])).unwrap();
    t.restrict_output(|n| n == "ns:y");
    assert_eq!(t.emitted_fields().count(), 1);
    let r = decode_record(&t, &unhex("00000002686900000009")).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!((&*r[0].0, &r[0].1), ("ns:y", &Value::Int(9)));
}

#[test]
fn unsupported_types_and_nesting() {
    let e = Template::new(block(vec![f(TypeId(0x1234_5699), "z")])).unwrap_err();
    assert!(
        matches!(e, TemplateError::UnsupportedType { ref field, .. } if field == "z"),
        "{e}"
    );
    // Structures nested 9 deep.
    let mut d = f(TypeId::INT, "leaf");
    for i in 0..MAX_NESTING + 1 {
        let mut s = f(TypeId::STRUCTURE, &format!("s{i}"));
        s.children = vec![d];
        d = s;
    }
    assert!(matches!(
        Template::new(block(vec![d])),
        Err(TemplateError::TooDeep { .. })
    ));
}

/// TR-232 BulkDataReport as an array of structure {Name, Value}.
fn bulk_data_template() -> TemplateBlock {
    let mut pair = f(
        TypeId(TypeId::STRUCTURE_FLAG | TypeId::ARRAY_FLAG),
        "BulkData",
    );
    pair.children = vec![f(TypeId::STRING, "Name"), f(TypeId::STRING, "Value")];
    block(vec![
        f(TypeId::STRING, "OUI"),
        f(TypeId::STRING, "ProductClass"),
        f(TypeId::STRING, "SerialNumber"),
        f(TypeId::BOOLEAN, "Suspect"),
        pair,
        f(TypeId::UNSIGNED_INT.array_of(), "Counters"),
    ])
}

#[test]
fn arrays_and_structures() {
    let t = Template::new(bulk_data_template()).unwrap();
    let s = |x: &str| Value::String(x.into());
    let pair =
        |n: &str, v: &str| Value::Structure(vec![("Name".into(), s(n)), ("Value".into(), s(v))]);
    let vals = vec![
        s("00D09E"),
        s("HGW"),
        s("S1"),
        Value::Boolean(false),
        Value::Array(vec![pair("Device.A", "1"), pair("Device.B", "two")]),
        Value::Array(vec![
            Value::UnsignedInt(1),
            Value::UnsignedInt(2),
            Value::UnsignedInt(3),
        ]),
    ];
    let mut rec = Vec::new();
    encode_record(&t, &vals, &mut rec).unwrap();
    assert_eq!(values(&t, &rec), vals);
    // The template with nested descriptors survives TEMPLATE_DATA encode/decode.
    let m = Message::new(
        b'A',
        Body::TemplateData(TemplateData {
            config_id: 3,
            flags: 0,
            templates: vec![bulk_data_template()],
        }),
    );
    let bytes = m.to_bytes().unwrap();
    assert_eq!(Message::decode_slice(&bytes).unwrap(), m);
    // Every truncation is an error.
    for n in 0..rec.len() {
        assert!(
            matches!(
                decode_record(&t, &rec[..n]),
                Err(RecordError::Truncated { .. })
            ),
            "{n}"
        );
    }
}

#[test]
fn hostile_array_counts() {
    let t = Template::new(block(vec![f(TypeId::UNSIGNED_INT.array_of(), "a")])).unwrap();
    assert!(matches!(
        decode_record(&t, &unhex("ffffffff")),
        Err(RecordError::ArrayTooLong { .. })
    ));
    assert!(matches!(
        decode_record(&t, &unhex("0000fffe00000001")),
        Err(RecordError::Truncated { .. })
    ));
    // Array of an empty structure: bounded by max_array_len, no unbounded loop.
    let mut s = f(TypeId(TypeId::STRUCTURE_FLAG | TypeId::ARRAY_FLAG), "empty");
    s.children = vec![];
    let t = Template::new(block(vec![s])).unwrap();
    assert!(matches!(
        decode_record(&t, &unhex("00100000")),
        Err(RecordError::ArrayTooLong { .. })
    ));
    assert_eq!(values(&t, &unhex("00000003")).len(), 1);
}

#[test]
fn golden_record_shorter_than_template_at_every_length() {
    let Body::TemplateData(td) = Message::decode_slice(&golden_msg("TEMPLATE_DATA", 0))
        .unwrap()
        .body
    else {
        panic!()
    };
    let t = Template::new(td.templates[0].clone()).unwrap();
    let Body::Data(d) = Message::decode_slice(&golden_msg("DATA", 1)).unwrap().body else {
        panic!()
    };
    for n in 0..d.record.len() {
        match decode_record(&t, &d.record[..n]) {
            Err(RecordError::Truncated { .. }) => {}
            other => panic!("{n}: {other:?}"),
        }
    }
    // Longer than the template: refused unless allowed.
    let mut long = d.record.to_vec();
    long.push(0);
    assert!(matches!(
        decode_record(&t, &long),
        Err(RecordError::TrailingBytes { count: 1, .. })
    ));
    let lenient = Template::with_options(
        td.templates[0].clone(),
        RecordOptions {
            allow_trailing_bytes: true,
            ..RecordOptions::default()
        },
    )
    .unwrap();
    assert_eq!(decode_record(&lenient, &long).unwrap().len(), 23);
    // The golden record re-encodes exactly (IPv6 raw, as the reference exporter sends it).
    let raw = Template::with_options(
        td.templates[0].clone(),
        RecordOptions {
            ipv6: Ipv6Encoding::Raw16,
            ..RecordOptions::default()
        },
    )
    .unwrap();
    let v = values(&raw, &d.record);
    let mut out = Vec::new();
    encode_record(&raw, &v, &mut out).unwrap();
    assert_eq!(out, &d.record[..]);
}

#[test]
fn encode_errors() {
    let t = Template::new(block(vec![f(TypeId::INT, "a")])).unwrap();
    let mut out = vec![1, 2];
    assert!(matches!(
        encode_record(&t, &[], &mut out),
        Err(RecordError::ValueCount { .. })
    ));
    assert!(matches!(
        encode_record(&t, &[Value::Long(1)], &mut out),
        Err(RecordError::TypeMismatch { .. })
    ));
    assert_eq!(out, [1, 2], "nothing appended on error");
}

#[test]
fn type_names() {
    assert_eq!(TypeId::MAC_ADDRESS.name(), Some("ipdr:macAddress"));
    assert_eq!(TypeId::STRUCTURE.name(), Some("structure"));
    assert!(TypeId::STRING.array_of().is_array());
    assert_eq!(TypeId::IP_ADDR.base(), 0x27);
    assert_eq!(TypeId::IP_ADDR.derived(), 8);
    assert_eq!(
        format!("{:?}", TypeId::STRING.array_of()),
        "TypeId(0x40000028 string[])"
    );
    let _ = Ipv6Addr::LOCALHOST;
}
