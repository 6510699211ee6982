//! IPDR documents (`ipdr::doc`): IPDR/XML (TR-232 and generic records) and IPDR/XDR files.
//! Exact decoding of fixtures, every refusal, XDR round trips in every record-marker mode,
//! truncation at every byte offset, and seeded garbage that must never panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ipdr::doc::*;
use ipdr::tr232::{BulkDataLayout, BulkDataReport, TR232_SCHEMA};
use ipdr::xdr::{FieldName, Ipv6Encoding, MacAddress, TypeId, Value};

const TR232_CPE: &[u8] = include_bytes!("fixtures/doc/tr232_cpe.xml");
const TR232_MULTI: &[u8] = include_bytes!("fixtures/doc/tr232_multi.xml");
const SAMIS: &[u8] = include_bytes!("fixtures/doc/samis.xml");
const ENTITIES: &[u8] = include_bytes!("fixtures/doc/entities.xml");
const DOCTYPE_ENTITY: &[u8] = include_bytes!("fixtures/doc/doctype_entity.xml");
const WRONG_NAMESPACE: &[u8] = include_bytes!("fixtures/doc/wrong_namespace.xml");
const MISSING_DOCID: &[u8] = include_bytes!("fixtures/doc/missing_docid.xml");

/// xorshift64*, seeded: the same inputs on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn limits() -> DocLimits {
    DocLimits::default()
}

fn name(s: &str) -> FieldName {
    Arc::from(s)
}

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

fn field_list(r: &DocRecord) -> Vec<(&str, Value)> {
    r.fields.iter().map(|(n, v)| (&**n, v.clone())).collect()
}

fn line_of(e: &DocError) -> usize {
    let at = match e {
        DocError::Dtd { at }
        | DocError::Malformed { at, .. }
        | DocError::NotIpdrDoc { at, .. }
        | DocError::MissingAttribute { at, .. }
        | DocError::InvalidValue { at, .. }
        | DocError::LimitExceeded { at, .. } => *at,
        other => panic!("no XML position in {other:?}"),
    };
    match at {
        Position::Xml { line, .. } => line,
        other => panic!("not an XML position: {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// IPDR/XML
// ---------------------------------------------------------------------------

#[test]
fn tr232_cpe_document_decodes_to_exact_values() {
    let doc = parse_xml(TR232_CPE, &limits()).unwrap();
    assert_eq!(doc.encoding, DocEncoding::Xml);
    assert_eq!(doc.doc_id, "3f2504e0-4f89-41d3-9a0c-0305e82c3301");
    assert_eq!(doc.version, "3.5.1");
    assert_eq!(doc.recorder_info, "cpe-profile-1");
    assert_eq!(doc.creation_time_ms, Some(1_335_866_400_000));
    assert_eq!(doc.default_namespace.as_deref(), Some(TR232_SCHEMA));
    assert_eq!(doc.declared_count, Some(1));
    assert_eq!(doc.end_time_ms, Some(1_335_866_401_000));
    assert_eq!(doc.count_mismatch(), None);
    assert_eq!(doc.records.len(), 1);

    let r = &doc.records[0];
    assert_eq!(r.type_name, "BulkDataReport");
    assert_eq!(r.seq_num, None);
    assert_eq!(r.creation_time_ms, None);
    assert_eq!(
        field_list(r),
        vec![
            ("OUI", s("00D09E")),
            ("ProductClass", s("HGW-7")),
            ("SerialNumber", s("SN0001234")),
            ("Suspect", s("false")),
            ("BulkData.Name", s("Device.DeviceInfo.UpTime")),
            ("BulkData.Value", s("86400")),
            (
                "BulkData.Name",
                s("Device.Ethernet.Interface.1.Stats.BytesSent")
            ),
            ("BulkData.Value", s("123456789")),
            ("BulkData.Name", s("Device.DeviceInfo.Description")),
            // Fields keep the text as sent; only bulk_data is made printable.
            ("BulkData.Value", s("Home\tgateway \u{e9}t\u{e9}")),
            (
                "BulkData.Name",
                s("Device.IP.Interface.1.IPv4Address.1.IPAddress")
            ),
            ("BulkData.Value", s("")),
        ]
    );
    assert_eq!(
        r.bulk_data,
        Some(BulkDataReport {
            // No IPDRCreationTime in the record: the document's creationTime.
            creation_time_ms: 1_335_866_400_000,
            oui: "00D09E".into(),
            product_class: "HGW-7".into(),
            serial_number: "SN0001234".into(),
            suspect: false,
            bulk_data: vec![
                ("Device.DeviceInfo.UpTime".into(), "86400".into()),
                (
                    "Device.Ethernet.Interface.1.Stats.BytesSent".into(),
                    "123456789".into()
                ),
                (
                    "Device.DeviceInfo.Description".into(),
                    "Home.gateway .t.".into()
                ),
                (
                    "Device.IP.Interface.1.IPv4Address.1.IPAddress".into(),
                    "".into()
                ),
            ],
        })
    );
    // Field names are shared between records and repeats.
    assert!(Arc::ptr_eq(&r.fields[4].0, &r.fields[6].0));
    // The sniffing entry point agrees.
    assert_eq!(parse(TR232_CPE, &limits()).unwrap(), doc);
    assert_eq!(doc.reports().count(), 1);
}

#[test]
fn multiple_reports_with_ipdr_type_elements_and_a_count_mismatch() {
    let doc = parse(TR232_MULTI, &limits()).unwrap();
    assert_eq!(doc.doc_id, "a1b2c3d4-0000-4000-8000-000000000001");
    assert_eq!(doc.creation_time_ms, Some(1_335_866_400_123));
    assert_eq!(doc.end_time_ms, Some(1_335_866_405_000));
    assert_eq!(doc.records.len(), 3);
    // Declared 4, holds 3: visible, not an error.
    assert_eq!(doc.declared_count, Some(4));
    assert_eq!(doc.count_mismatch(), Some((4, 3)));

    let reports: Vec<&BulkDataReport> = doc.reports().collect();
    assert_eq!(reports.len(), 3);
    let r0 = &doc.records[0];
    assert_eq!(r0.seq_num, Some(1));
    assert_eq!(r0.creation_time_ms, Some(1_335_866_340_500));
    assert_eq!(
        r0.fields[0],
        (name("IPDRCreationTime"), s("2012-05-01T09:59:00.500Z"))
    );
    assert_eq!(r0.fields[1], (name("seqNum"), s("1")));
    assert_eq!(
        reports[0],
        &BulkDataReport {
            creation_time_ms: 1_335_866_340_500,
            oui: "00D09E".into(),
            product_class: "HGW".into(),
            serial_number: "A1".into(),
            suspect: true,
            bulk_data: vec![("Device.DeviceInfo.UpTime".into(), "10".into())],
        }
    );
    assert_eq!(doc.records[1].seq_num, Some(2));
    assert_eq!(doc.records[1].creation_time_ms, None);
    assert_eq!(
        reports[1],
        &BulkDataReport {
            creation_time_ms: 1_335_866_400_123,
            oui: "00D09E".into(),
            product_class: "HGW".into(),
            serial_number: "A2".into(),
            suspect: false,
            bulk_data: vec![
                ("Device.DeviceInfo.UpTime".into(), "20".into()),
                ("Device.WiFi.Radio.1.Channel".into(), "6".into()),
            ],
        }
    );
    assert_eq!(reports[2].serial_number, "A3");
    assert!(reports[2].bulk_data.is_empty());
}

#[test]
fn generic_docsis_samis_like_record() {
    let doc = parse_xml(SAMIS, &limits()).unwrap();
    assert_eq!(doc.doc_id, "0f0e0d0c-0b0a-4908-8706-050403020100");
    assert_eq!(doc.version, "3.5");
    assert_eq!(doc.recorder_info, "");
    assert_eq!(doc.creation_time_ms, Some(1_357_095_845_006));
    assert_eq!(
        doc.default_namespace.as_deref(),
        Some("http://www.ipdr.org/namespaces/IPDR")
    );
    assert_eq!(doc.records.len(), 2);
    assert_eq!(doc.count_mismatch(), None);
    assert_eq!(doc.end_time_ms, Some(1_357_095_900_000));

    let r = &doc.records[0];
    assert_eq!(r.type_name, "DOCSIS-SAMIS-TYPE-1_Type");
    assert_eq!(r.seq_num, Some(42));
    assert_eq!(r.creation_time_ms, Some(1_357_095_845_000));
    assert_eq!(r.bulk_data, None);
    assert_eq!(
        field_list(r),
        vec![
            ("IPDRCreationTime", s("2013-01-02T03:04:05.000Z")),
            ("seqNum", s("42")),
            ("CmtsHostName", s("cmts01.example.net")),
            ("CmtsSysUpTime", s("1234567")),
            ("CmMacAddr", s("00-11-22-33-44-55")),
            ("CmIpv6Addr", s("")),
            ("ServiceFlowChSet.ChannelId", s("1")),
            ("ServiceFlowChSet.ChannelId", s("2")),
            ("ServiceFlowChSet.Bonding.Group", s("7")),
            ("ServiceOctetsPassed", s("987654321012")),
        ]
    );
    let r = &doc.records[1];
    assert_eq!(field_list(r), vec![("CmtsHostName", s("cmts02"))]);
    assert_eq!((r.seq_num, r.creation_time_ms), (None, None));
}

#[test]
fn entity_and_character_references_are_unescaped_never_expanded() {
    let doc = parse_xml(ENTITIES, &limits()).unwrap();
    assert_eq!(doc.recorder_info, "R&D & \"lab\"");
    assert_eq!(doc.creation_time_ms, None);
    assert_eq!(doc.declared_count, Some(1));
    assert_eq!(doc.end_time_ms, None);
    let rep = doc.records[0].bulk_data.as_ref().unwrap();
    assert_eq!(rep.product_class, "A&B");
    assert_eq!(rep.serial_number, "SN1");
    assert_eq!(rep.creation_time_ms, 0);
    assert_eq!(
        rep.bulk_data,
        vec![
            ("Device.X.Y".to_string(), "<tag> 'q' &amp;".to_string()),
            ("Device.X.Z".to_string(), "<raw> & stuff".to_string()),
            // A CPE that does not escape: kept literally, nothing resolved.
            (
                "Device.X.W".to_string(),
                "fish & chips &unknown; &#0; &#xZZ;".to_string()
            ),
        ]
    );
}

#[test]
fn byte_order_marks_and_utf16() {
    let mut b = vec![0xEF, 0xBB, 0xBF];
    b.extend_from_slice(TR232_MULTI);
    assert!(looks_like_xml(&b));
    assert_eq!(parse(&b, &limits()).unwrap().records.len(), 3);

    let text = String::from_utf8(TR232_MULTI.to_vec()).unwrap();
    let mut le = vec![0xFF, 0xFE];
    for u in text.encode_utf16() {
        le.extend_from_slice(&u.to_le_bytes());
    }
    let doc = parse(&le, &limits()).unwrap();
    assert_eq!(doc.records.len(), 3);
    assert_eq!(doc, parse(TR232_MULTI, &limits()).unwrap());
}

#[test]
fn doctype_with_entities_is_refused() {
    let e = parse_xml(DOCTYPE_ENTITY, &limits()).unwrap_err();
    assert!(matches!(e, DocError::Dtd { .. }), "{e:?}");
    assert_eq!(line_of(&e), 2);
    assert!(e.to_string().contains("line 2"), "{e}");
    // Through the sniffing entry point too, and a bare entity declaration.
    assert!(matches!(
        parse(DOCTYPE_ENTITY, &limits()),
        Err(DocError::Dtd { .. })
    ));
    let bare = br#"<?xml version="1.0"?><!ENTITY x "y"><ipdr:IPDRDoc xmlns:ipdr="http://www.ipdr.org/namespaces/ipdr" docId="1"/>"#;
    assert!(matches!(
        parse_xml(bare, &limits()),
        Err(DocError::Dtd { .. })
    ));
}

#[test]
fn wrong_root_or_namespace_is_refused() {
    let e = parse_xml(WRONG_NAMESPACE, &limits()).unwrap_err();
    match &e {
        DocError::NotIpdrDoc { found, .. } => {
            assert!(found.contains("http://www.example.com/not-ipdr"), "{found}")
        }
        other => panic!("{other:?}"),
    }
    for doc in [
        &br#"<IPDRDoc docId="1"/>"#[..],
        br#"<x:IPDRDoc xmlns:y="http://www.ipdr.org/namespaces/ipdr" docId="1"/>"#,
        br#"<IPDRDocument xmlns="http://www.ipdr.org/namespaces/ipdr" docId="1"/>"#,
        br#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"/>"#,
    ] {
        let e = parse_xml(doc, &limits()).unwrap_err();
        assert!(matches!(e, DocError::NotIpdrDoc { .. }), "{e:?}");
    }
}

#[test]
fn missing_doc_id_is_refused() {
    let e = parse_xml(MISSING_DOCID, &limits()).unwrap_err();
    assert_eq!(
        e,
        DocError::MissingAttribute {
            at: match &e {
                DocError::MissingAttribute { at, .. } => *at,
                _ => unreachable!(),
            },
            element: "IPDRDoc",
            attribute: "docId",
        }
    );
    assert_eq!(line_of(&e), 2);
    let empty = br#"<IPDRDoc xmlns="http://www.ipdr.org/namespaces/ipdr" docId="  "/>"#;
    assert!(matches!(
        parse_xml(empty, &limits()),
        Err(DocError::MissingAttribute { .. })
    ));
}

#[test]
fn truncated_xml_is_refused_at_every_byte_offset() {
    for doc in [TR232_CPE, TR232_MULTI, SAMIS, ENTITIES] {
        let text = std::str::from_utf8(doc).unwrap();
        let end = text.rfind('>').unwrap() + 1; // trailing newline is not content
        for cut in 0..end {
            if !text.is_char_boundary(cut) {
                continue;
            }
            let r = parse_xml(&doc[..cut], &limits());
            assert!(r.is_err(), "cut at {cut} parsed: {:?}", r.unwrap());
        }
        assert!(parse_xml(&doc[..end], &limits()).is_ok());
    }
}

#[test]
fn garbage_and_malformed_xml_are_refused_with_positions() {
    let cases: &[&[u8]] = &[
        b"",
        b"   \n ",
        b"hello",
        b"<<>>",
        b"<ipdr:IPDRDoc",
        br#"<IPDRDoc xmlns="http://www.ipdr.org/namespaces/ipdr" docId="1"><IPDR></IPDRDoc>"#,
        br#"<IPDRDoc xmlns="http://www.ipdr.org/namespaces/ipdr" docId="1"></IPDRDoc><IPDRDoc xmlns="http://www.ipdr.org/namespaces/ipdr" docId="2"/>"#,
        br#"<IPDRDoc xmlns="http://www.ipdr.org/namespaces/ipdr" docId="1"/> trailing text"#,
        br#"<IPDRDoc xmlns="http://www.ipdr.org/namespaces/ipdr" docId="1" docId="2"/>"#,
        br#"<IPDRDoc xmlns="http://www.ipdr.org/namespaces/ipdr" docId="1"><!-- a -- b --></IPDRDoc>"#,
        b"\x00\x00\x00\x04garbage",
    ];
    for c in cases {
        let r = parse(c, &limits());
        assert!(r.is_err(), "{:?} parsed", String::from_utf8_lossy(c));
    }
    assert_eq!(parse_xml(b"  ", &limits()), Err(DocError::Empty));

    // A mismatched end tag is reported on its line.
    let doc = b"<IPDRDoc xmlns=\"http://www.ipdr.org/namespaces/ipdr\" docId=\"1\">\n<IPDR>\n<OUI>x</SerialNumber>\n</IPDR>\n</IPDRDoc>";
    let e = parse_xml(doc, &limits()).unwrap_err();
    assert!(matches!(e, DocError::Malformed { .. }), "{e:?}");
    assert_eq!(line_of(&e), 3, "{e}");
}

#[test]
fn invalid_times_counts_and_sequence_numbers_are_refused() {
    let wrap = |root_attrs: &str, body: &str| {
        format!(
            r#"<IPDRDoc xmlns="http://www.ipdr.org/namespaces/ipdr" docId="1" {root_attrs}>{body}</IPDRDoc>"#
        )
    };
    for doc in [
        wrap(r#"creationTime="yesterday""#, ""),
        wrap(
            "",
            r#"<IPDR><IPDRCreationTime>soon</IPDRCreationTime></IPDR>"#,
        ),
        wrap("", r#"<IPDR><seqNum>-1</seqNum></IPDR>"#),
        wrap("", r#"<IPDRDoc.End count="one"/>"#),
        wrap("", r#"<IPDRDoc.End count="1" endTime="1999"/>"#),
    ] {
        let e = parse_xml(doc.as_bytes(), &limits()).unwrap_err();
        assert!(matches!(e, DocError::InvalidValue { .. }), "{doc}: {e:?}");
    }
    // Accepted forms of dateTimeMsec.
    for (t, ms) in [
        ("2012-05-01T10:00:00Z", 1_335_866_400_000u64),
        ("2012-05-01T10:00:00.5Z", 1_335_866_400_500),
        ("2012-05-01T10:00:00.123456Z", 1_335_866_400_123),
        ("2012-05-01T12:00:00+02:00", 1_335_866_400_000),
        ("2012-05-01T10:00:00", 1_335_866_400_000),
    ] {
        let doc = wrap(&format!(r#"creationTime=" {t} ""#), "");
        assert_eq!(
            parse_xml(doc.as_bytes(), &limits())
                .unwrap()
                .creation_time_ms,
            Some(ms),
            "{t}"
        );
    }
}

#[test]
fn xml_limits_are_enforced() {
    let l = |f: &dyn Fn(&mut DocLimits)| {
        let mut l = limits();
        f(&mut l);
        l
    };
    let e = parse_xml(TR232_CPE, &l(&|l| l.max_bytes = 100)).unwrap_err();
    assert_eq!(
        e,
        DocError::TooLarge {
            size: TR232_CPE.len(),
            limit: 100
        }
    );
    let e = parse(TR232_MULTI, &l(&|l| l.max_records = 2)).unwrap_err();
    assert!(
        matches!(
            e,
            DocError::LimitExceeded {
                what: "record count",
                limit: 2,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        parse(TR232_MULTI, &l(&|l| l.max_records = 3))
            .unwrap()
            .records
            .len(),
        3
    );
    let e = parse(TR232_CPE, &l(&|l| l.max_fields_per_record = 3)).unwrap_err();
    assert!(
        matches!(
            e,
            DocError::LimitExceeded {
                what: "fields per record",
                ..
            }
        ),
        "{e:?}"
    );
    let e = parse(TR232_CPE, &l(&|l| l.max_string_len = 8)).unwrap_err();
    assert!(matches!(e, DocError::LimitExceeded { .. }), "{e:?}");
    let e = parse(SAMIS, &l(&|l| l.max_depth = 4)).unwrap_err();
    assert!(
        matches!(
            e,
            DocError::LimitExceeded {
                what: "element nesting depth",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(parse(SAMIS, &l(&|l| l.max_depth = 5)).is_ok());
    // A deep bomb of nested elements stops at the limit, not the stack.
    let mut deep =
        String::from(r#"<IPDRDoc xmlns="http://www.ipdr.org/namespaces/ipdr" docId="1"><IPDR>"#);
    for _ in 0..100_000 {
        deep.push_str("<a>");
    }
    assert!(matches!(
        parse(deep.as_bytes(), &limits()),
        Err(DocError::LimitExceeded { .. })
    ));
}

fn sample_reports() -> Vec<BulkDataReport> {
    vec![
        BulkDataReport {
            creation_time_ms: 1_700_000_000_123,
            oui: "00D09E".into(),
            product_class: "HGW & <Co>".into(),
            serial_number: "SN\"1'".into(),
            suspect: false,
            bulk_data: vec![
                ("Device.DeviceInfo.UpTime".into(), "86400".into()),
                ("Device.X.Text".into(), "a<b>&c \"d\" 'e'".into()),
                ("Device.X.Empty".into(), "".into()),
            ],
        },
        BulkDataReport {
            creation_time_ms: 1_700_000_001_000,
            oui: "001122".into(),
            product_class: "STB".into(),
            serial_number: "S2".into(),
            suspect: true,
            bulk_data: vec![],
        },
        BulkDataReport {
            creation_time_ms: 0,
            oui: "001122".into(),
            product_class: "STB".into(),
            serial_number: "S3".into(),
            suspect: false,
            bulk_data: (0..50)
                .map(|i| {
                    (
                        format!("Device.Hosts.Host.{i}.Active"),
                        (i % 2 == 0).to_string(),
                    )
                })
                .collect(),
        },
    ]
}

#[test]
fn tr232_xml_writer_round_trips() {
    let mut reports = sample_reports();
    let xml = encode_xml_tr232(
        "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
        "profile & co",
        1_700_000_002_000,
        &reports,
    );
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ipdr:IPDRDoc "));
    assert!(xml.contains("<ipdr:IPDR xsi:type=\"BulkDataReport\">"));
    assert!(xml.contains("<ipdr:IPDRDoc.End count=\"3\" endTime=\"2023-11-14T22:13:22.000Z\"/>"));
    let doc = parse(xml.as_bytes(), &limits()).unwrap();
    assert_eq!(doc.doc_id, "3f2504e0-4f89-41d3-9a0c-0305e82c3301");
    assert_eq!(doc.recorder_info, "profile & co");
    assert_eq!(doc.version, "3.5.1");
    assert_eq!(doc.creation_time_ms, Some(1_700_000_002_000));
    assert_eq!(doc.default_namespace.as_deref(), Some(TR232_SCHEMA));
    assert_eq!(doc.count_mismatch(), None);
    // A report with time 0 takes the document's.
    reports[2].creation_time_ms = 1_700_000_002_000;
    let got: Vec<BulkDataReport> = doc.reports().cloned().collect();
    assert_eq!(got, reports);

    // Non-printable characters leave as '.', as TR-232 requires.
    let r = BulkDataReport {
        bulk_data: vec![("Device.X".into(), "tab\there\u{1}\u{e9}".into())],
        ..sample_reports()[1].clone()
    };
    let xml = encode_xml_tr232("00000000-0000-0000-0000-000000000000", "", 1, &[r]);
    let doc = parse_xml(xml.as_bytes(), &limits()).unwrap();
    assert_eq!(
        doc.reports().next().unwrap().bulk_data,
        vec![("Device.X".to_string(), "tab.here..".to_string())]
    );
}

// ---------------------------------------------------------------------------
// IPDR/XDR
// ---------------------------------------------------------------------------

const DOC_ID: &str = "0123abcd-4567-89ef-0123-456789abcdef";

fn tr232_doc(layout: BulkDataLayout) -> Document {
    tr232_document(
        DOC_ID,
        "keelson-sim",
        1_700_000_002_000,
        &sample_reports(),
        layout,
    )
}

fn xdr_opts(marker: RecordMarker) -> XdrFileOptions {
    XdrFileOptions {
        record_marker: marker,
        ..XdrFileOptions::default()
    }
}

fn enc(doc: &Document, marker: bool) -> Vec<u8> {
    encode_xdr(
        doc,
        &XdrEncodeOptions {
            record_marker: marker,
        },
    )
    .unwrap()
}

#[test]
fn tr232_report_fields_are_what_from_fields_reads() {
    for layout in [BulkDataLayout::Structured, BulkDataLayout::Flattened] {
        for r in sample_reports() {
            let rec = DocRecord::from_report(&r, layout);
            assert_eq!(BulkDataReport::from_fields(&rec.fields), Some(r.clone()));
        }
    }
}

#[test]
fn tr232_xdr_round_trip_in_every_marker_mode() {
    for layout in [BulkDataLayout::Structured, BulkDataLayout::Flattened] {
        let doc = tr232_doc(layout);
        // A report with time 0 has no time: it takes the document's (header startTime).
        let mut expected = doc.clone();
        for r in &mut expected.records {
            if r.creation_time_ms == Some(0) {
                r.creation_time_ms = None;
                if let Some(b) = r.bulk_data.as_mut() {
                    b.creation_time_ms = doc.creation_time_ms.unwrap();
                }
            }
        }
        assert!(expected != doc, "the document has a report without time");
        for marker in [true, false] {
            let bytes = enc(&doc, marker);
            let want = if marker {
                RecordMarker::Present
            } else {
                RecordMarker::Absent
            };
            for mode in [RecordMarker::Auto, want] {
                let got = parse_xdr(&bytes, &xdr_opts(mode), &limits()).unwrap();
                assert_eq!(got, expected, "{layout:?} marker={marker} {mode:?}");
            }
            // parse() sniffs XDR and uses Auto.
            assert_eq!(parse(&bytes, &limits()).unwrap(), expected);
        }
    }
}

#[test]
fn tr232_xdr_records_are_the_simulator_record_bytes() {
    // The record body of the file is exactly what the IPDR/SP simulator sends in DATA.
    for layout in [BulkDataLayout::Structured, BulkDataLayout::Flattened] {
        let doc = tr232_doc(layout);
        let bytes = enc(&doc, false);
        for r in sample_reports() {
            let mut body = Vec::new();
            r.encode(layout, &mut body);
            assert!(
                bytes.windows(body.len()).any(|w| w == body),
                "{layout:?}: record of {} not found",
                r.serial_number
            );
        }
    }
}

fn many_types_doc() -> Document {
    let st = |a: i32, b: &str, c: Vec<u16>| {
        Value::Structure(vec![
            (name("a"), Value::Int(a)),
            (name("b"), s(b)),
            (
                name("c"),
                Value::Array(c.into_iter().map(Value::UnsignedShort).collect()),
            ),
        ])
    };
    let rec1 = |seq: u64, first: i32, ints: Vec<i32>| DocRecord {
        type_name: "AllTypes".into(),
        seq_num: Some(seq),
        creation_time_ms: Some(1_600_000_000_000 + seq),
        fields: vec![
            (name("first"), Value::Int(first)),
            (name("seqNum"), Value::UnsignedLong(seq)),
            (
                name("IPDRCreationTime"),
                Value::DateTimeMsec(1_600_000_000_000 + seq),
            ),
            (name("u32"), Value::UnsignedInt(0xFFFF_FFFF)),
            (name("i64"), Value::Long(-1_234_567_890_123)),
            (name("f32"), Value::Float(1.5)),
            (name("f64"), Value::Double(-2.25e100)),
            (name("hex"), Value::HexBinary(vec![0, 1, 2, 0xff])),
            (name("str"), s("h\u{e9}llo")),
            (name("bool"), Value::Boolean(true)),
            (name("i8"), Value::Byte(-7)),
            (name("u8"), Value::UnsignedByte(200)),
            (name("i16"), Value::Short(-300)),
            (name("u16"), Value::UnsignedShort(60_000)),
            (name("dt"), Value::DateTime(1_600_000_000)),
            (name("usec"), Value::DateTimeUsec(-5)),
            (name("v4"), Value::Ipv4Addr(Ipv4Addr::new(192, 0, 2, 1))),
            (
                name("v6"),
                Value::Ipv6Addr("2001:db8::1".parse::<Ipv6Addr>().unwrap()),
            ),
            (
                name("ip4"),
                Value::IpAddr(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
            ),
            (name("ip6"), Value::IpAddr("fe80::2".parse().unwrap())),
            (name("uuid"), Value::Uuid([0xab; 16])),
            (
                name("mac"),
                Value::MacAddress(MacAddress(0x0000_0011_2233_4455)),
            ),
            (name("absent"), Value::Absent),
            (
                name("ints"),
                Value::Array(ints.into_iter().map(Value::Int).collect()),
            ),
            (name("strs"), Value::Array(vec![s("x"), s(""), s("zz")])),
            (name("st"), st(-1, "in", vec![1, 2, 3])),
            (
                name("sts"),
                Value::Array(vec![st(1, "one", vec![]), st(2, "two", vec![9])]),
            ),
        ],
        bulk_data: None,
    };
    let other = DocRecord {
        type_name: "Other".into(),
        seq_num: None,
        creation_time_ms: None,
        fields: vec![(name("only"), Value::Int(-1))],
        bulk_data: None,
    };
    Document {
        encoding: DocEncoding::Xdr,
        doc_id: DOC_ID.into(),
        version: "4".into(),
        recorder_info: "many".into(),
        creation_time_ms: Some(1_600_000_000_000),
        default_namespace: None,
        records: vec![
            rec1(1, 5, vec![1, 2, 3]),
            // First field -1: the ambiguous case of the Auto marker heuristic.
            rec1(2, -1, vec![]),
            other.clone(),
            rec1(3, -1, vec![-1]),
            other,
        ],
        declared_count: None,
        end_time_ms: None,
    }
}

#[test]
fn many_types_xdr_round_trip_in_every_marker_mode() {
    let doc = many_types_doc();
    for marker in [true, false] {
        let bytes = enc(&doc, marker);
        let exact = if marker {
            RecordMarker::Present
        } else {
            RecordMarker::Absent
        };
        for mode in [RecordMarker::Auto, exact] {
            for ipv6 in [Ipv6Encoding::Auto, Ipv6Encoding::Prefixed] {
                let opts = XdrFileOptions {
                    record_marker: mode,
                    ipv6,
                };
                let got = parse_xdr(&bytes, &opts, &limits()).unwrap();
                assert_eq!(got, doc, "marker={marker} {mode:?} {ipv6:?}");
            }
        }
    }
    // Descriptors are reused: two types, the empty array fits the first descriptor.
    let bytes = enc(&doc, true);
    let count = |needle: &[u8]| bytes.windows(needle.len()).filter(|w| *w == needle).count();
    assert_eq!(count(b"AllTypes"), 1);
    assert_eq!(count(b"\x00\x00\x00\x05Other"), 1);
}

#[test]
fn wrong_marker_mode_is_refused() {
    let doc = tr232_doc(BulkDataLayout::Structured);
    let with = enc(&doc, true);
    let without = enc(&doc, false);
    let e = parse_xdr(&without, &xdr_opts(RecordMarker::Present), &limits()).unwrap_err();
    assert!(
        matches!(&e, DocError::InvalidXdr { message, .. } if message.contains("record marker")),
        "{e:?}"
    );
    assert!(parse_xdr(&with, &xdr_opts(RecordMarker::Absent), &limits()).is_err());
}

// -- Hand-built documents (independent of the writer) --------------------------------

struct W(Vec<u8>);

impl W {
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    fn str(self, s: &str) -> Self {
        self.u32(s.len() as u32).raw(s.as_bytes())
    }
}

fn header(version: u32) -> W {
    W(Vec::new())
        .u32(version)
        .str("Hand Built")
        .u64(1_000)
        .str("urn:example:default")
        .u32(2)
        .str("urn:example:a")
        .str("a")
        .str("urn:example:b")
        .str("b")
        .u32(1)
        .str("http://example.com/service.xsd")
        .u32(16)
        .raw(&[
            0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8,
        ])
        .u32(0xFFFF_FFFF)
}

/// RECORDDESC 7 "Hand": `n` string, `pairs` array (bound 10) of structure {Name, Value},
/// `v6` ipV6Addr, `ids` array (bound -1) of unsignedShort.
fn hand_descriptor(w: W) -> W {
    w.u32(1)
        .u32(7)
        .str("a:Hand")
        .u32(4)
        .str("n")
        .u32(TypeId::STRING.0)
        .str("pairs")
        .u32(TypeId::STRUCTURE_FLAG | TypeId::ARRAY_FLAG)
        .u32(2) // members
        .u32(10) // bound
        .str("Name")
        .u32(TypeId::STRING.0)
        .str("Value")
        .u32(TypeId::STRING.0)
        .str("v6")
        .u32(TypeId::IPV6_ADDR.0)
        .str("ids")
        .u32(TypeId::UNSIGNED_SHORT.0 | TypeId::ARRAY_FLAG)
        .u32(0xFFFF_FFFF)
}

#[test]
fn hand_built_document_with_namespaces_structures_and_arrays() {
    let v6: Ipv6Addr = "2001:db8::7".parse().unwrap();
    let bytes = hand_descriptor(header(4))
        .u32(2)
        .u32(7)
        .u32(0xFFFF_FFFF)
        .str("hello")
        .u32(2)
        .str("N1")
        .str("V1")
        .str("N2")
        .str("V2")
        .u32(16)
        .raw(&v6.octets())
        .u32(3)
        .raw(&[0, 1, 0, 2, 0xff, 0xff])
        .u32(3)
        .u32(0xFFFF_FFFF) // count -1: unknown
        .u64(0)
        .0;
    let doc = parse_xdr(&bytes, &XdrFileOptions::default(), &limits()).unwrap();
    assert_eq!(doc.encoding, DocEncoding::Xdr);
    assert_eq!(doc.doc_id, "12345678-9abc-def0-0102-030405060708");
    assert_eq!(doc.version, "4");
    assert_eq!(doc.recorder_info, "Hand Built");
    assert_eq!(doc.creation_time_ms, Some(1_000));
    assert_eq!(
        doc.default_namespace.as_deref(),
        Some("urn:example:default")
    );
    assert_eq!((doc.declared_count, doc.end_time_ms), (None, None));
    assert_eq!(doc.count_mismatch(), None);
    let r = &doc.records[0];
    assert_eq!(r.type_name, "a:Hand");
    let pair =
        |n: &str, v: &str| Value::Structure(vec![(name("Name"), s(n)), (name("Value"), s(v))]);
    assert_eq!(
        field_list(r),
        vec![
            ("n", s("hello")),
            (
                "pairs",
                Value::Array(vec![pair("N1", "V1"), pair("N2", "V2")])
            ),
            ("v6", Value::Ipv6Addr(v6)),
            (
                "ids",
                Value::Array(vec![
                    Value::UnsignedShort(1),
                    Value::UnsignedShort(2),
                    Value::UnsignedShort(0xffff)
                ])
            ),
        ]
    );
    assert_eq!(r.bulk_data, None);
}

#[test]
fn tr232_in_a_hand_built_xdr_file_gives_a_report() {
    // A structured TR-232 descriptor as a CPE might write it, prefixed type name, no marker.
    let bytes = W(Vec::new())
        .u32(4)
        .str("cpe")
        .u64(1_335_866_400_000)
        .str(TR232_SCHEMA)
        .u32(0)
        .u32(0)
        .u32(16)
        .raw(&[7; 16])
        .u32(0xFFFF_FFFF)
        .u32(1)
        .u32(1)
        .str("tr232:BulkDataReport")
        .u32(5)
        .str("OUI")
        .u32(TypeId::STRING.0)
        .str("ProductClass")
        .u32(TypeId::STRING.0)
        .str("SerialNumber")
        .u32(TypeId::STRING.0)
        .str("Suspect")
        .u32(TypeId::BOOLEAN.0)
        .str("BulkData")
        .u32(TypeId::STRUCTURE_FLAG | TypeId::ARRAY_FLAG)
        .u32(2)
        .u32(0xFFFF_FFFF)
        .str("Name")
        .u32(TypeId::STRING.0)
        .str("Value")
        .u32(TypeId::STRING.0)
        .u32(2)
        .u32(1)
        .str("00D09E")
        .str("HGW")
        .str("SN9")
        .raw(&[1])
        .u32(1)
        .str("Device.X")
        .str("a\u{1}b")
        .u32(3)
        .u32(1)
        .u64(1_335_866_401_000)
        .0;
    let doc = parse(&bytes, &limits()).unwrap();
    assert_eq!(doc.doc_id, "07070707-0707-0707-0707-070707070707");
    assert_eq!(doc.declared_count, Some(1));
    assert_eq!(doc.end_time_ms, Some(1_335_866_401_000));
    assert_eq!(
        doc.records[0].bulk_data,
        Some(BulkDataReport {
            creation_time_ms: 1_335_866_400_000,
            oui: "00D09E".into(),
            product_class: "HGW".into(),
            serial_number: "SN9".into(),
            suspect: true,
            bulk_data: vec![("Device.X".into(), "a.b".into())],
        })
    );
}

/// Like the `example.xdr` quirks: no per-record marker, IPv6 written as a zero length word
/// followed by 16 bytes; and an IPv6 that really is absent.
fn quirk_doc(quirk: bool) -> Vec<u8> {
    let w = W(Vec::new())
        .u32(4)
        .str("quirk")
        .u64(1)
        .str("test_namespace")
        .u32(0)
        .u32(0)
        .u32(16)
        .raw(&[0x12, 0x34, 0x56, 0x78].repeat(4))
        .u32(0xFFFF_FFFF)
        .u32(1)
        .u32(2)
        .str("Test Non-Numericals")
        .u32(3)
        .str("Test_Ipv4Addr")
        .u32(TypeId::IPV4_ADDR.0)
        .str("Test_Ipv6Addr")
        .u32(TypeId::IPV6_ADDR.0)
        .str("Test_String")
        .u32(TypeId::STRING.0)
        .u32(2)
        .u32(2)
        .raw(&[0xfe, 0xfd, 0xfc, 0xfb])
        .u32(0);
    let w = if quirk {
        w.raw(&[
            0, 0xff, 0, 0xfe, 0, 0xfd, 0, 0xfc, 0, 0xfb, 0, 0xfa, 0, 0, 0, 1,
        ])
    } else {
        w
    };
    w.str("s").u32(3).u32(0xFFFF_FFFF).u64(1).0
}

#[test]
fn ipv6_zero_length_quirk_is_read_leniently() {
    let doc = parse(&quirk_doc(true), &limits()).unwrap();
    let r = &doc.records[0];
    assert_eq!(
        field_list(r),
        vec![
            (
                "Test_Ipv4Addr",
                Value::Ipv4Addr(Ipv4Addr::new(0xfe, 0xfd, 0xfc, 0xfb))
            ),
            (
                "Test_Ipv6Addr",
                Value::Ipv6Addr("ff:fe:fd:fc:fb:fa:0:1".parse().unwrap())
            ),
            ("Test_String", s("s")),
        ]
    );
    assert_eq!(doc.creation_time_ms, Some(1));
    assert_eq!(doc.end_time_ms, Some(1));
    // A genuinely absent address stays absent.
    let doc = parse(&quirk_doc(false), &limits()).unwrap();
    assert_eq!(doc.records[0].fields[1].1, Value::Absent);
    // Strictly prefixed, the quirk does not decode.
    let strict = XdrFileOptions {
        ipv6: Ipv6Encoding::Prefixed,
        ..XdrFileOptions::default()
    };
    assert!(parse_xdr(&quirk_doc(true), &strict, &limits()).is_err());
    assert!(parse_xdr(&quirk_doc(false), &strict, &limits()).is_ok());
}

#[test]
fn xdr_refusals() {
    let l = limits();
    let p = |b: &[u8]| parse_xdr(b, &XdrFileOptions::default(), &l);
    assert_eq!(p(b""), Err(DocError::Empty));
    for v in [3u32, 5, 0] {
        let bytes = header(v).u32(3).u32(0).u64(0).0;
        let e = p(&bytes).unwrap_err();
        assert_eq!(
            e,
            DocError::UnsupportedVersion {
                at: Position::Byte(0),
                version: v as i32
            }
        );
        if v == 3 {
            assert!(e.to_string().contains("padded"), "{e}");
        }
    }
    // No 0xFFFFFFFF after the header.
    let mut bytes = header(4).u32(3).u32(0).u64(0).0;
    let at = bytes.len() - 16 - 4;
    bytes[at..at + 4].copy_from_slice(&[0, 0, 0, 1]);
    assert!(matches!(p(&bytes), Err(DocError::InvalidXdr { .. })));
    // Unknown element kind.
    let e = p(&header(4).u32(9).0).unwrap_err();
    assert!(
        matches!(&e, DocError::InvalidXdr { message, .. } if message.contains("kind 9")),
        "{e:?}"
    );
    // A record before its descriptor.
    let e = p(&header(4).u32(2).u32(7).u32(0).0).unwrap_err();
    assert!(
        matches!(
            e,
            DocError::UnknownDescriptor {
                descriptor_id: 7,
                ..
            }
        ),
        "{e:?}"
    );
    // An attribute type that is not a primitive.
    let bytes = header(4)
        .u32(1)
        .u32(1)
        .str("T")
        .u32(1)
        .str("odd")
        .u32(0x99)
        .u32(3)
        .u32(0)
        .u64(0)
        .0;
    let e = p(&bytes).unwrap_err();
    assert!(
        matches!(&e, DocError::UnsupportedType { attribute, type_id, .. } if attribute == "odd" && *type_id == TypeId(0x99)),
        "{e:?}"
    );
    // Bytes after DOCEND; no DOCEND at all.
    let good = header(4).u32(3).u32(0).u64(0).0;
    assert!(p(&good).is_ok());
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(matches!(
        p(&trailing),
        Err(DocError::TrailingBytes { count: 1, .. })
    ));
    let no_end = header(4).0;
    assert!(matches!(p(&no_end), Err(DocError::MissingDocEnd { .. })));
    // A record that does not decode names the record and the field.
    let bytes = hand_descriptor(header(4))
        .u32(2)
        .u32(7)
        .str("n")
        .u32(1)
        .str("only a name")
        .0;
    let e = p(&bytes).unwrap_err();
    assert!(
        matches!(
            e,
            DocError::Record {
                index: 0,
                descriptor_id: 7,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn xdr_limits_are_enforced() {
    let doc = many_types_doc();
    let bytes = enc(&doc, true);
    let with = |f: &dyn Fn(&mut DocLimits)| {
        let mut l = limits();
        f(&mut l);
        parse(&bytes, &l)
    };
    assert!(matches!(
        with(&|l| l.max_bytes = 10),
        Err(DocError::TooLarge { .. })
    ));
    assert!(matches!(
        with(&|l| l.max_records = 4),
        Err(DocError::LimitExceeded {
            what: "record count",
            ..
        })
    ));
    assert!(with(&|l| l.max_records = 5).is_ok());
    assert!(matches!(
        with(&|l| l.max_string_len = 3),
        Err(DocError::LimitExceeded {
            what: "string length",
            ..
        })
    ));
    assert!(matches!(
        with(&|l| l.max_fields_per_record = 20),
        Err(DocError::LimitExceeded { .. })
    ));
    assert!(matches!(
        with(&|l| l.max_depth = 1),
        Err(DocError::LimitExceeded {
            what: "structure nesting depth",
            ..
        })
    ));

    // A hostile array count: refused before any allocation.
    let bytes = hand_descriptor(header(4))
        .u32(2)
        .u32(7)
        .str("n")
        .u32(0x7FFF_FFFF)
        .0;
    assert!(matches!(
        parse(&bytes, &limits()),
        Err(DocError::LimitExceeded {
            what: "values per record",
            ..
        })
    ));
    let mut l = limits();
    l.max_fields_per_record = usize::MAX;
    assert!(matches!(parse(&bytes, &l), Err(DocError::Record { .. })));
    // Deeply nested structures in a descriptor.
    let mut w = header(4).u32(1).u32(1).str("Deep").u32(1);
    for _ in 0..1000 {
        w = w.str("s").u32(TypeId::STRUCTURE_FLAG).u32(1);
    }
    assert!(matches!(
        parse(&w.0, &limits()),
        Err(DocError::LimitExceeded {
            what: "structure nesting depth",
            ..
        })
    ));
}

#[test]
fn truncated_xdr_is_refused_at_every_byte_offset() {
    let docs = [
        enc(&tr232_doc(BulkDataLayout::Structured), true),
        enc(&tr232_doc(BulkDataLayout::Flattened), false),
        enc(&many_types_doc(), true),
        enc(&many_types_doc(), false),
        quirk_doc(true),
        quirk_doc(false),
    ];
    for bytes in &docs {
        for mode in [
            RecordMarker::Auto,
            RecordMarker::Present,
            RecordMarker::Absent,
        ] {
            let opts = xdr_opts(mode);
            for cut in 0..bytes.len() {
                let r = parse_xdr(&bytes[..cut], &opts, &limits());
                assert!(
                    r.is_err(),
                    "cut at {cut} of {} parsed ({mode:?})",
                    bytes.len()
                );
            }
        }
        assert!(parse(bytes, &limits()).is_ok());
    }
}

#[test]
fn encode_xdr_refuses_what_it_cannot_describe() {
    let mut doc = many_types_doc();
    doc.doc_id = "not-a-uuid".into();
    assert_eq!(
        encode_xdr(&doc, &XdrEncodeOptions::default()),
        Err(DocEncodeError::DocId("not-a-uuid".into()))
    );
    let mut doc = many_types_doc();
    doc.records[0].fields[0].1 = Value::Array(vec![Value::Int(1), s("x")]);
    assert!(matches!(
        encode_xdr(&doc, &XdrEncodeOptions::default()),
        Err(DocEncodeError::Record { index: 0, .. })
    ));
    doc.records[0].fields[0].1 = Value::Array(vec![Value::Array(vec![])]);
    assert!(matches!(
        encode_xdr(&doc, &XdrEncodeOptions::default()),
        Err(DocEncodeError::Record { index: 0, .. })
    ));
    // Hyphens are optional in the docId; the parser gives it back hyphenated.
    let mut doc = many_types_doc();
    doc.doc_id = DOC_ID.replace('-', "").to_uppercase();
    let got = parse(&enc(&doc, true), &limits()).unwrap();
    assert_eq!(got.doc_id, DOC_ID);
}

// ---------------------------------------------------------------------------
// Fuzz
// ---------------------------------------------------------------------------

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut b = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        if b.is_empty() {
            break;
        }
        let i = rng.below(b.len());
        match rng.below(6) {
            0 => b[i] ^= 1 << rng.below(8),
            1 => b[i] = rng.next() as u8,
            2 => b.truncate(i),
            3 => {
                b.remove(i);
            }
            4 => b.insert(i, rng.next() as u8),
            _ => {
                // Overwrite a word with an interesting value.
                let v: u32 = [0, 1, 2, 3, 16, 0xFFFF_FFFF, 0x7FFF_FFFF, 0x8000_0000][rng.below(8)];
                for (k, x) in v.to_be_bytes().iter().enumerate() {
                    if let Some(y) = b.get_mut(i + k) {
                        *y = *x;
                    }
                }
            }
        }
    }
    b
}

#[test]
fn random_garbage_never_panics() {
    let mut rng = Rng(0x5eed_d0c5_1234_abcd);
    let l = DocLimits {
        max_fields_per_record: 10_000,
        ..limits()
    };
    let seeds: Vec<Vec<u8>> = vec![
        enc(&tr232_doc(BulkDataLayout::Structured), true),
        enc(&tr232_doc(BulkDataLayout::Flattened), false),
        enc(&many_types_doc(), true),
        enc(&many_types_doc(), false),
        quirk_doc(true),
        TR232_CPE.to_vec(),
        TR232_MULTI.to_vec(),
        SAMIS.to_vec(),
        ENTITIES.to_vec(),
    ];
    let (mut ok, mut err) = (0usize, 0usize);
    let mut count = |r: Result<Document, DocError>| match r {
        Ok(d) => {
            // Whatever parses can be looked at.
            let _ = (d.count_mismatch(), d.reports().count(), format!("{d:?}"));
            ok += 1;
        }
        Err(e) => {
            let _ = e.to_string();
            err += 1;
        }
    };
    for _ in 0..3_000 {
        let len = rng.below(300);
        let mut b = rng.bytes(len);
        match rng.below(3) {
            // Looks like an XDR header.
            0 if len >= 4 => b[..4].copy_from_slice(&[0, 0, 0, 4]),
            // Looks like XML.
            1 if len >= 1 => b[0] = b'<',
            _ => {}
        }
        count(parse(&b, &l));
        count(parse_xml(&b, &l));
        for mode in [
            RecordMarker::Auto,
            RecordMarker::Present,
            RecordMarker::Absent,
        ] {
            count(parse_xdr(&b, &xdr_opts(mode), &l));
        }
    }
    for i in 0..6_000 {
        let seed = &seeds[i % seeds.len()];
        let m = mutate(&mut rng, seed);
        count(parse(&m, &l));
        if i % 3 == 0 {
            count(parse_xdr(&m, &xdr_opts(RecordMarker::Present), &l));
            count(parse_xdr(
                &m,
                &XdrFileOptions {
                    record_marker: RecordMarker::Absent,
                    ipv6: Ipv6Encoding::Raw16,
                },
                &l,
            ));
        }
    }
    assert!(err > 0 && ok > 0, "ok {ok}, err {err}");
}
