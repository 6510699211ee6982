//! IPDR documents (IPDR/XML and IPDR/XDR) against the real `keelson serve`: posted to the
//! northbound API (`POST /api/v1/ipdr/documents`), to the CWMP listener (`POST /bulkdata`),
//! and dropped into the watched directory (`[ipdr] watch_dir`). TR-232 reports become
//! samples of their devices, other record types IPDR records of the document's session; a
//! document delivered twice is stored once; a bad document is refused with a reason and
//! stores nothing.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::wire::Conn;
use common::*;
use ipdr::doc::{encode_xdr, encode_xml_tr232, tr232_document, XdrEncodeOptions};
use ipdr::tr232::{BulkDataLayout, BulkDataReport};
use serde_json::Value;

const OUI: &str = "00D09E";
const PC: &str = "IGD";
const DOCS: &str = "/api/v1/ipdr/documents";
/// `[ipdr] max_document_bytes` of the watched-directory test.
const MAX_DOC: usize = 16 * 1024;

// 2023-11-14T22:13:20Z and a few later times (milliseconds since the epoch).
const T0: u64 = 1_700_000_000_000;

fn report(sn: &str, t_ms: u64, suspect: bool, pairs: &[(&str, &str)]) -> BulkDataReport {
    BulkDataReport {
        creation_time_ms: t_ms,
        oui: OUI.into(),
        product_class: PC.into(),
        serial_number: sn.into(),
        suspect,
        bulk_data: pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    }
}

fn device(sn: &str) -> String {
    format!("{OUI}-{PC}-{sn}")
}

/// One sample as compared: (path, value, sampled_at in ms, suspect).
type Sample = (String, String, i64, bool);

/// The samples `reports` give for the device with serial `sn`; a report without a time
/// takes `doc_time_ms` (the document's creationTime).
fn expected(reports: &[BulkDataReport], sn: &str, doc_time_ms: u64) -> BTreeSet<Sample> {
    reports
        .iter()
        .filter(|r| r.serial_number == sn)
        .flat_map(|r| {
            let t = if r.creation_time_ms == 0 {
                doc_time_ms
            } else {
                r.creation_time_ms
            };
            r.bulk_data
                .iter()
                .map(move |(p, v)| (p.clone(), v.clone(), t as i64, r.suspect))
        })
        .collect()
}

fn ms(v: &Value) -> i64 {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("sampled_at is not a string: {v}"));
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("sampled_at {s:?}: {e}"))
        .timestamp_millis()
}

/// `GET /api/v1/bulkdata/samples?limit=10000<extra>`.
fn samples(s: &Server, extra: &str) -> Vec<Value> {
    let (st, v) = s.get(&format!("/api/v1/bulkdata/samples?limit=10000{extra}"));
    assert_eq!(st, 200, "{v}");
    v["samples"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .clone()
}

fn sessions(s: &Server) -> Vec<Value> {
    let (st, v) = s.get("/api/v1/ipdr/sessions");
    assert_eq!(st, 200, "{v}");
    v["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .clone()
}

fn exporters(s: &Server) -> Vec<Value> {
    let (st, v) = s.get("/api/v1/ipdr/exporters");
    assert_eq!(st, 200, "{v}");
    v["exporters"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .clone()
}

/// The session row of document `doc_id`, exactly one.
fn session_of(s: &Server, doc_id: &str) -> Value {
    let all = sessions(s);
    let rows: Vec<&Value> = all.iter().filter(|r| r["document_id"] == doc_id).collect();
    assert_eq!(rows.len(), 1, "one session row for {doc_id}: {all:?}");
    rows[0].clone()
}

/// Checks a device's samples: exactly `want`, all from `source`, newest first.
fn check_device(s: &Server, sn: &str, source: &str, want: &BTreeSet<Sample>) {
    let dev = device(sn);
    let rows = samples(s, &format!("&device={dev}"));
    let mut got = BTreeSet::new();
    for r in &rows {
        assert_eq!(r["device_id"], dev.as_str(), "{r}");
        assert_eq!(r["source"], source, "{r}");
        assert!(r["report_id"].is_i64(), "{r}");
        assert!(r.get("source_ref").is_some(), "{r}");
        got.insert((
            r["path"].as_str().unwrap().to_string(),
            r["value"].as_str().unwrap().to_string(),
            ms(&r["sampled_at"]),
            r["suspect"].as_bool().unwrap(),
        ));
    }
    assert_eq!(
        rows.len(),
        want.len(),
        "no sample twice for {dev}: {rows:?}"
    );
    assert_eq!(&got, want, "samples of {dev}");
    let times: Vec<i64> = rows.iter().map(|r| ms(&r["sampled_at"])).collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// `POST /bulkdata` (no query) on the CWMP HTTP listener, on a fresh connection.
fn post_bulk(s: &Server, content_type: &str, body: &[u8]) -> (u16, String) {
    let mut c = Conn::open(s.http_port);
    let r = c.post_to("/bulkdata", &[("Content-Type", content_type)], body);
    (r.status, r.text())
}

fn assert_no_panic(s: &Server) {
    let log = s.all_logs();
    assert!(!log.contains("panicked"), "the server panicked:\n{log}");
}

/// A DOCSIS SAMIS-like (non-TR-232) IPDR/XML document: default namespace IPDR, records
/// with `seqNum`s 10, 11, … and a declared count.
fn samis_doc(doc_id: &str, recorder: &str, declared: usize, records: usize) -> String {
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <IPDRDoc xmlns=\"http://www.ipdr.org/namespaces/ipdr\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         docId=\"{doc_id}\" creationTime=\"2024-01-02T03:04:05Z\" \
         IPDRRecorderInfo=\"{recorder}\" version=\"3.5.1\">\n"
    );
    for i in 0..records {
        s.push_str(&format!(
            "  <IPDR xsi:type=\"SAMIS-TYPE-1\">\n\
             \x20   <IPDRCreationTime>2024-01-02T03:0{i}:00Z</IPDRCreationTime>\n\
             \x20   <seqNum>{}</seqNum>\n\
             \x20   <CMTShostName>cmts-01</CMTShostName>\n\
             \x20   <CMmacAddress>00-11-22-33-44-5{i}</CMmacAddress>\n\
             \x20   <RecType>1</RecType>\n\
             \x20   <serviceOctetsPassed>{}</serviceOctetsPassed>\n\
             \x20 </IPDR>\n",
            10 + i,
            1000 * (i + 1)
        ));
    }
    s.push_str(&format!(
        "  <IPDRDoc.End count=\"{declared}\" endTime=\"2024-01-02T03:10:00Z\"/>\n</IPDRDoc>\n"
    ));
    s
}

// ---------------------------------------------------------------------------

/// A TR-232 IPDR/XML document of two devices through the NBI: the answer counts, every
/// sample with its path, value, time and flags, and the same document again (by the NBI
/// and by `/bulkdata`) storing nothing.
#[test]
fn tr232_xml_document_via_nbi_is_stored_once() {
    let s = Server::start(ServerOpts::default());
    let doc_time = T0 + 3_600_000;
    let reports = vec![
        report(
            "S1",
            T0,
            false,
            &[
                ("Device.DeviceInfo.UpTime", "3600"),
                ("Device.WiFi.Radio.1.Enable", "true"),
                ("Device.DeviceInfo.Description", "a<b & \"c\" 'd'"),
            ],
        ),
        report(
            "S2",
            T0 + 60_500,
            true,
            &[
                ("Device.DeviceInfo.UpTime", "120"),
                ("Device.Ethernet.Interface.1.Stats.BytesSent", "987654321"),
            ],
        ),
        // No IPDRCreationTime: the document's creationTime applies.
        report("S1", 0, false, &[("Device.DeviceInfo.UpTime", "3900")]),
    ];
    let xml = encode_xml_tr232("doc-tr232-0001", "cpe-gw-7", doc_time, &reports);

    let (st, v) = s.post_bytes(DOCS, xml.as_bytes());
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["doc_id"], "doc-tr232-0001", "{v}");
    assert_eq!(v["encoding"], "xml", "{v}");
    assert_eq!(v["exporter"], "doc:cpe-gw-7", "{v}");
    assert_eq!(v["records"], 3, "{v}");
    assert_eq!(v["inserted"], 3, "{v}");
    assert_eq!(v["duplicates"], 0, "{v}");
    assert_eq!(v["samples"], 6, "{v}");
    assert!(v.get("declared_count").is_none(), "count agrees: {v}");

    let s1 = expected(&reports, "S1", doc_time);
    let s2 = expected(&reports, "S2", doc_time);
    assert_eq!((s1.len(), s2.len()), (4, 2));
    check_device(&s, "S1", "ipdr-xml", &s1);
    check_device(&s, "S2", "ipdr-xml", &s2);
    // Spot checks independent of the helper: the exact values and times.
    let up = samples(&s, "&device=00D09E-IGD-S1&path=Device.DeviceInfo.UpTime");
    assert_eq!(up.len(), 2, "{up:?}");
    assert_eq!(up[0]["value"], "3900", "newest first: {up:?}");
    assert_eq!(ms(&up[0]["sampled_at"]), doc_time as i64);
    assert_eq!(up[1]["value"], "3600");
    assert_eq!(up[1]["sampled_at"], "2023-11-14T22:13:20Z");
    let d = samples(
        &s,
        "&device=00D09E-IGD-S1&path=Device.DeviceInfo.Description",
    );
    assert_eq!(d[0]["value"], "a<b & \"c\" 'd'", "escaping round trip");
    let b = samples(&s, "&device=00D09E-IGD-S2&path=Device.Ethernet.");
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(
        ms(&b[0]["sampled_at"]),
        (T0 + 60_500) as i64,
        "milliseconds kept"
    );
    assert_eq!(b[0]["suspect"], true);
    let total = samples(&s, "").len();
    assert_eq!(total, 6);

    let sess = session_of(&s, "doc-tr232-0001");
    assert_eq!(sess["exporter_id"], "doc:cpe-gw-7", "{sess}");
    assert_eq!(sess["session_id"], 0, "{sess}");
    assert_eq!(sess["records"], 3, "{sess}");
    assert_eq!(sess["last_sequence"], 3, "positions 1..3: {sess}");

    // The same document again: nothing new.
    let (st, v) = s.post_bytes(DOCS, xml.as_bytes());
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["records"], 3, "{v}");
    assert_eq!(v["inserted"], 0, "{v}");
    assert_eq!(v["duplicates"], 3, "{v}");
    assert_eq!(v["samples"], 0, "{v}");
    assert_eq!(
        samples(&s, "").len(),
        total,
        "a repeated document adds no samples"
    );
    check_device(&s, "S1", "ipdr-xml", &s1);
    assert_eq!(session_of(&s, "doc-tr232-0001")["records"], 3);

    // And by the other route (a CPE posting it to /bulkdata): still stored once.
    let (st, body) = post_bulk(&s, "text/xml; charset=utf-8", xml.as_bytes());
    assert_eq!(st, 204, "{body}");
    assert_eq!(
        samples(&s, "").len(),
        total,
        "same document by another route"
    );
    let ex = exporters(&s);
    let e: Vec<&Value> = ex.iter().filter(|e| e["id"] == "doc:cpe-gw-7").collect();
    assert_eq!(e.len(), 1, "{ex:?}");
    assert_eq!(e[0]["records_total"], 3, "{ex:?}");

    // Another document delivered six times at once, by both routes: stored exactly once.
    let more = vec![
        report(
            "S1",
            T0 + 900_000,
            false,
            &[("Device.X.A", "1"), ("Device.X.B", "2")],
        ),
        report("S2", T0 + 900_000, false, &[("Device.X.A", "3")]),
    ];
    let xml2 = encode_xml_tr232("doc-tr232-0002", "cpe-gw-7", doc_time, &more);
    let nbi_inserted: u64 = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let (s, xml2) = (&s, &xml2);
                sc.spawn(move || {
                    if i % 2 == 0 {
                        let (st, v) = s.post_bytes(DOCS, xml2.as_bytes());
                        assert_eq!(st, 200, "{v}");
                        assert_eq!(
                            v["inserted"].as_u64().unwrap() + v["duplicates"].as_u64().unwrap(),
                            2,
                            "{v}"
                        );
                        v["inserted"].as_u64().unwrap()
                    } else {
                        let (st, body) = post_bulk(s, "application/xml", xml2.as_bytes());
                        assert_eq!(st, 204, "{body}");
                        0
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert!(nbi_inserted <= 2, "{nbi_inserted}");
    assert_eq!(samples(&s, "").len(), total + 3, "each sample once");
    assert_eq!(samples(&s, "&path=Device.X.").len(), 3);
    assert_eq!(session_of(&s, "doc-tr232-0002")["records"], 2);
    assert_no_panic(&s);
}

/// An IPDR/XDR file of TR-232 reports posted by a CPE to `/bulkdata` without oui/sn: 204
/// after commit, samples with source `ipdr-xdr`; again (as octet-stream) stores nothing.
#[test]
fn tr232_xdr_file_via_bulkdata_is_stored() {
    let s = Server::start(ServerOpts::default());
    let doc_id = "6f9619ff-8b86-4011-b42d-00c04fc964ff";
    let reports = vec![
        report(
            "X1",
            T0 + 1_000,
            false,
            &[
                ("Device.DeviceInfo.UpTime", "42"),
                ("Device.WiFi.SSID.1.SSID", "home net"),
            ],
        ),
        report(
            "X2",
            T0 + 2_250,
            false,
            &[("Device.DeviceInfo.MemoryStatus.Free", "65536")],
        ),
        report(
            "X1",
            T0 + 301_000,
            true,
            &[("Device.DeviceInfo.UpTime", "342")],
        ),
    ];
    let doc = tr232_document(
        doc_id,
        "cpe-xdr-1",
        T0 + 400_000,
        &reports,
        BulkDataLayout::Structured,
    );
    let xdr = encode_xdr(&doc, &XdrEncodeOptions::default()).unwrap();
    assert_ne!(xdr.first(), Some(&b'<'));

    let (st, body) = post_bulk(&s, "application/x-ipdr-xdr", &xdr);
    assert_eq!(st, 204, "{body}");
    // 204 follows the commit: the samples are there at once.
    let x1 = expected(&reports, "X1", 0);
    let x2 = expected(&reports, "X2", 0);
    check_device(&s, "X1", "ipdr-xdr", &x1);
    check_device(&s, "X2", "ipdr-xdr", &x2);
    let total = samples(&s, "").len();
    assert_eq!(total, 4);
    let sess = session_of(&s, doc_id);
    assert_eq!(sess["exporter_id"], "doc:cpe-xdr-1", "{sess}");
    assert_eq!(sess["records"], 3, "{sess}");

    // Delivered again, as application/octet-stream: accepted, nothing new.
    let (st, body) = post_bulk(&s, "application/octet-stream", &xdr);
    assert_eq!(st, 204, "{body}");
    assert_eq!(samples(&s, "").len(), total);
    assert_eq!(session_of(&s, doc_id)["records"], 3);

    // The flattened layout (Name1/Value1…) of another document is read too.
    let flat_id = "6f9619ff-8b86-4011-b42d-00c04fc96500";
    let flat = vec![report(
        "X2",
        T0 + 500_000,
        false,
        &[("Device.A", "1"), ("Device.B", "2")],
    )];
    let doc = tr232_document(flat_id, "cpe-xdr-1", T0, &flat, BulkDataLayout::Flattened);
    let (st, body) = post_bulk(
        &s,
        "application/x-ipdr-xdr",
        &encode_xdr(&doc, &XdrEncodeOptions::default()).unwrap(),
    );
    assert_eq!(st, 204, "{body}");
    let mut x2b = x2.clone();
    x2b.extend(expected(&flat, "X2", 0));
    check_device(&s, "X2", "ipdr-xdr", &x2b);

    // A gzip-compressed file (Content-Encoding: gzip) is inflated first.
    let gz_id = "6f9619ff-8b86-4011-b42d-00c04fc96501";
    let gz = vec![report("X1", T0 + 600_000, false, &[("Device.Z", "zz")])];
    let doc = tr232_document(gz_id, "cpe-xdr-1", T0, &gz, BulkDataLayout::Structured);
    let raw = encode_xdr(&doc, &XdrEncodeOptions::default()).unwrap();
    let mut c = Conn::open(s.http_port);
    let r = c.post_to(
        "/bulkdata",
        &[
            ("Content-Type", "application/x-ipdr-xdr"),
            ("Content-Encoding", "gzip"),
        ],
        &gzip(&raw),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let mut x1b = x1.clone();
    x1b.extend(expected(&gz, "X1", 0));
    check_device(&s, "X1", "ipdr-xdr", &x1b);
    assert_no_panic(&s);
}

/// A TR-232 report without a time (0, which `encode_xml_tr232` writes as no
/// `IPDRCreationTime` at all) takes the document's time, in XML as in XDR: the same
/// reports give the same samples whichever encoding carries them.
///
/// Fails today for XDR (the sample gets the reception time): `ipdr::doc::xdr_record` keeps
/// an `IPDRCreationTime` of 0 as `Some(0)`, so neither its own `.or(doc_time)` nor the
/// zero-time fallback in `keelson::ipdrdoc::record_in` (`r.creation_time_ms.unwrap_or(..)`)
/// reaches the document time, and `collector::report_in` turns 0 into "now".
#[test]
fn report_without_time_takes_the_document_time_in_both_encodings() {
    let s = Server::start(ServerOpts::default());
    let doc_time = T0 + 7_200_000;
    let xml_reports = vec![report("N1", 0, false, &[("Device.DeviceInfo.UpTime", "5")])];
    let xml = encode_xml_tr232("doc-notime-xml", "cpe-n", doc_time, &xml_reports);
    let (st, v) = s.post_bytes(DOCS, xml.as_bytes());
    assert_eq!(st, 200, "{v}");
    check_device(
        &s,
        "N1",
        "ipdr-xml",
        &expected(&xml_reports, "N1", doc_time),
    );

    let xdr_reports = vec![report("N2", 0, false, &[("Device.DeviceInfo.UpTime", "6")])];
    let doc = tr232_document(
        "0d0c0b0a-0000-4000-8000-00000000000a",
        "cpe-n",
        doc_time,
        &xdr_reports,
        BulkDataLayout::Structured,
    );
    let xdr = encode_xdr(&doc, &XdrEncodeOptions::default()).unwrap();
    let (st, v) = s.post_bytes(DOCS, &xdr);
    assert_eq!(st, 200, "{v}");
    check_device(
        &s,
        "N2",
        "ipdr-xdr",
        &expected(&xdr_reports, "N2", doc_time),
    );
    assert_no_panic(&s);
}

/// A non-TR-232 IPDR/XML document (DOCSIS SAMIS-like): its records are stored under the
/// document's session (exporter `doc:<recorder>`, keyed by seqNum), no samples.
#[test]
fn generic_xml_document_stores_records_not_samples() {
    let s = Server::start(ServerOpts::default());
    let doc_id = "samis-2024-01-02-0001";
    let xml = samis_doc(doc_id, "cmts-01.example.net", 3, 3);
    let (st, v) = s.post_bytes(DOCS, xml.as_bytes());
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["doc_id"], doc_id, "{v}");
    assert_eq!(v["encoding"], "xml", "{v}");
    assert_eq!(v["exporter"], "doc:cmts-01.example.net", "{v}");
    assert_eq!(v["records"], 3, "{v}");
    assert_eq!(v["inserted"], 3, "{v}");
    assert_eq!(v["duplicates"], 0, "{v}");
    assert_eq!(v["samples"], 0, "{v}");
    assert!(v.get("declared_count").is_none(), "{v}");

    let sess = session_of(&s, doc_id);
    assert_eq!(sess["exporter_id"], "doc:cmts-01.example.net", "{sess}");
    assert_eq!(sess["session_id"], 0, "{sess}");
    assert_eq!(sess["records"], 3, "{sess}");
    assert_eq!(sess["last_sequence"], 12, "keyed by seqNum 10..12: {sess}");
    let ex = exporters(&s);
    let e: Vec<&Value> = ex
        .iter()
        .filter(|e| e["id"] == "doc:cmts-01.example.net")
        .collect();
    assert_eq!(e.len(), 1, "{ex:?}");
    assert_eq!(e[0]["records_total"], 3, "{ex:?}");
    assert!(samples(&s, "").is_empty(), "no samples from SAMIS records");

    // Again: all duplicates.
    let (st, v) = s.post_bytes(DOCS, xml.as_bytes());
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (v["inserted"].as_i64(), v["duplicates"].as_i64()),
        (Some(0), Some(3)),
        "{v}"
    );
    assert_eq!(session_of(&s, doc_id)["records"], 3);

    // A document whose IPDRDoc.End count disagrees: stored, and the answer says so.
    let other = "samis-2024-01-02-0002";
    let (st, v) = s.post_bytes(
        DOCS,
        samis_doc(other, "cmts-01.example.net", 5, 2).as_bytes(),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["records"], 2, "{v}");
    assert_eq!(v["inserted"], 2, "{v}");
    assert_eq!(v["declared_count"], 5, "{v}");
    assert_eq!(session_of(&s, other)["records"], 2);
    let ex = exporters(&s);
    let e = ex
        .iter()
        .find(|e| e["id"] == "doc:cmts-01.example.net")
        .unwrap();
    assert_eq!(e["records_total"], 5, "{ex:?}");
    assert!(samples(&s, "").is_empty());
    assert_no_panic(&s);
}

/// Malformed XML, DTDs and entity declarations, wrong roots, truncated XDR and garbage,
/// by both routes: 400 with a reason, nothing stored; good documents still work after.
#[test]
fn bad_documents_are_refused_and_store_nothing() {
    let s = Server::start(ServerOpts::default());
    let reports = vec![
        report("B1", T0, false, &[("Device.DeviceInfo.UpTime", "1")]),
        report(
            "B2",
            T0 + 1_000,
            false,
            &[("Device.DeviceInfo.UpTime", "2")],
        ),
    ];
    let good_xml = encode_xml_tr232("doc-bad-base", "cpe-b", T0, &reports);
    let xdr = encode_xdr(
        &tr232_document(
            "0b2c7d3e-1111-4222-8333-444455556666",
            "cpe-b",
            T0,
            &reports,
            BulkDataLayout::Structured,
        ),
        &XdrEncodeOptions::default(),
    )
    .unwrap();

    // A complete first record, then a mismatched end tag: nothing of it may be stored.
    let mismatched = good_xml.replace("</ipdr:IPDRDoc>", "</ipdr:IPDRDocument>");
    assert_ne!(mismatched, good_xml);
    let truncated_xml = good_xml[..good_xml.len() * 2 / 3].to_string();
    let header = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    let body_after_decl = good_xml.strip_prefix(header).unwrap();
    let laughs = format!(
        "{header}<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]>\n{}",
        body_after_decl.replace("<Value>1</Value>", "<Value>&lol2;</Value>")
    );
    let xxe = format!(
        "{header}<!DOCTYPE foo [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n{}",
        body_after_decl.replace("<Value>1</Value>", "<Value>&xxe;</Value>")
    );
    let bare_entity = format!("{header}<!ENTITY x \"y\">\n{body_after_decl}");
    let wrong_root = "<?xml version=\"1.0\"?><Report xmlns=\"urn:example\"><a>1</a></Report>";
    let no_doc_id = good_xml.replace(" docId=\"doc-bad-base\"", "");
    assert_ne!(no_doc_id, good_xml);
    let truncated_xdr = xdr[..xdr.len() - 20].to_vec();
    let half_xdr = xdr[..xdr.len() / 2].to_vec();
    let garbage: Vec<u8> = (0..300u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 | 0x80)
        .collect();

    // (name, body, XML?, words one of which the reason must contain)
    let cases: Vec<(&str, Vec<u8>, bool, &[&str])> = vec![
        (
            "mismatched end tag",
            mismatched.into_bytes(),
            true,
            &["malformed"],
        ),
        (
            "truncated XML",
            truncated_xml.into_bytes(),
            true,
            &["malformed", "end"],
        ),
        (
            "DOCTYPE with entities",
            laughs.into_bytes(),
            true,
            &["DOCTYPE", "DTD"],
        ),
        (
            "DOCTYPE with external entity",
            xxe.into_bytes(),
            true,
            &["DOCTYPE", "DTD"],
        ),
        (
            "entity declaration",
            bare_entity.into_bytes(),
            true,
            &["DOCTYPE", "DTD", "entity"],
        ),
        (
            "wrong root",
            wrong_root.as_bytes().to_vec(),
            true,
            &["IPDRDoc"],
        ),
        ("no docId", no_doc_id.into_bytes(), true, &["docId"]),
        (
            "truncated XDR",
            truncated_xdr,
            false,
            &["ends", "DOCEND", "truncated"],
        ),
        (
            "half an XDR file",
            half_xdr,
            false,
            &["ends", "DOCEND", "truncated"],
        ),
        ("garbage bytes", garbage, false, &["version"]),
        (
            "text garbage",
            b"this is not an IPDR document".to_vec(),
            false,
            &["version"],
        ),
        ("empty", Vec::new(), false, &["empty"]),
    ];

    let (samples0, sessions0, exporters0) = (samples(&s, ""), sessions(&s), exporters(&s));
    assert!(
        samples0.is_empty() && sessions0.is_empty(),
        "a fresh server"
    );
    for (name, body, is_xml, words) in &cases {
        let reason_ok = |reason: &str| {
            words
                .iter()
                .any(|w| reason.to_lowercase().contains(&w.to_lowercase()))
        };
        // Northbound API: 400 with a problem document.
        let (st, v) = s.post_bytes(DOCS, body);
        assert_eq!(st, 400, "{name} via the NBI: {v}");
        let reason = v["detail"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: {v}"));
        assert!(
            reason.starts_with("invalid IPDR document: ") && reason_ok(reason),
            "{name} via the NBI: reason {reason:?}, wanted one of {words:?}"
        );
        // CWMP listener: 400 with a plain-text reason.
        let ct = if *is_xml {
            "application/xml"
        } else {
            "application/x-ipdr-xdr"
        };
        let (st, text) = post_bulk(&s, ct, body);
        assert_eq!(st, 400, "{name} via /bulkdata: {text}");
        assert!(
            text.starts_with("invalid IPDR document: ") && reason_ok(&text),
            "{name} via /bulkdata: reason {text:?}, wanted one of {words:?}"
        );
    }
    // Garbage as octet-stream too.
    let (st, text) = post_bulk(&s, "application/octet-stream", &cases[9].1);
    assert_eq!(st, 400, "{text}");

    assert_eq!(samples(&s, ""), samples0, "bad documents stored no samples");
    assert_eq!(sessions(&s), sessions0, "bad documents opened no session");
    assert_eq!(
        exporters(&s),
        exporters0,
        "bad documents created no exporter"
    );

    // Still healthy: the good documents go through both routes.
    let (st, _) = s.get("/healthz");
    assert_eq!(st, 200);
    let (st, v) = s.post_bytes(DOCS, good_xml.as_bytes());
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["inserted"], 2, "{v}");
    check_device(&s, "B1", "ipdr-xml", &expected(&reports, "B1", T0));
    check_device(&s, "B2", "ipdr-xml", &expected(&reports, "B2", T0));
    let (st, text) = post_bulk(&s, "application/x-ipdr-xdr", &xdr);
    assert_eq!(st, 204, "{text}");
    let all = samples(&s, "");
    assert_eq!(all.len(), 4, "2 from XML + 2 from XDR: {all:?}");
    for sn in ["B1", "B2"] {
        let rows = samples(&s, &format!("&device={}", device(sn)));
        let mut sources: Vec<&str> = rows.iter().map(|r| r["source"].as_str().unwrap()).collect();
        sources.sort_unstable();
        assert_eq!(sources, ["ipdr-xdr", "ipdr-xml"], "{rows:?}");
    }
    assert_no_panic(&s);
}

/// Polls `f` for up to 15 s ([`Server::wait_for`]); fails at once, saying so, when the
/// server stopped meanwhile (something outside the test signalled it).
fn wait<T>(s: &Server, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    s.wait_for(what, Duration::from_secs(15), |s| {
        let v = f();
        if v.is_none() && s.proc.log_text().contains(" shutting down") {
            panic!("keelson serve was stopped (SIGTERM/SIGINT from outside the test) while waiting for {what}");
        }
        v
    })
}

fn wait_file(s: &Server, path: &Path, what: &str) {
    wait(s, what, || path.is_file().then_some(()));
}

/// The watched directory: a good document (written to a dotfile, then renamed) is stored
/// and moved to `done/`; a bad one goes to `failed/` with a `.error` note; a dotfile is
/// left alone.
#[test]
fn watched_directory_takes_documents() {
    let watch = tempfile::tempdir().unwrap();
    let dir = watch.path().to_path_buf();
    let s = Server::start(ServerOpts {
        extra_toml: format!(
            "watch_dir = {:?}\nwatch_interval_secs = 1\nmax_document_bytes = {MAX_DOC}\n",
            dir.to_string_lossy()
        ),
        ..Default::default()
    });
    let reports = vec![
        report(
            "W1",
            T0 + 5_000,
            false,
            &[
                ("Device.DeviceInfo.UpTime", "77"),
                ("Device.Hosts.HostNumberOfEntries", "4"),
            ],
        ),
        report(
            "W2",
            T0 + 6_000,
            false,
            &[("Device.DeviceInfo.UpTime", "88")],
        ),
    ];
    let good = encode_xml_tr232("doc-dir-good", "cpe-dir", T0, &reports);
    // A careful producer: write under a dot name, then rename into place.
    std::fs::write(dir.join(".good.xml.part"), &good).unwrap();
    std::fs::rename(dir.join(".good.xml.part"), dir.join("good.xml")).unwrap();
    // Another document still being written (dot name): must be left alone.
    let pending = encode_xml_tr232(
        "doc-dir-pending",
        "cpe-dir",
        T0,
        &[report("W3", T0, false, &[("Device.X", "1")])],
    );
    std::fs::write(dir.join(".pending.xml"), &pending).unwrap();
    // A bad document (a DTD), and a valid record before a broken end.
    let bad = encode_xml_tr232(
        "doc-dir-bad",
        "cpe-dir",
        T0,
        &[report("W4", T0, false, &[("Device.Y", "2")])],
    )
    .replace("</ipdr:IPDRDoc>", "</ipdr:Oops>");
    std::fs::write(dir.join("bad.xml"), &bad).unwrap();

    wait_file(&s, &dir.join("done").join("good.xml"), "good.xml in done/");
    assert!(!dir.join("good.xml").exists(), "moved, not copied");
    // Moved after the commit: the samples are there.
    check_device(&s, "W1", "ipdr-xml", &expected(&reports, "W1", T0));
    check_device(&s, "W2", "ipdr-xml", &expected(&reports, "W2", T0));
    let sess = session_of(&s, "doc-dir-good");
    assert_eq!(sess["exporter_id"], "doc:cpe-dir", "{sess}");
    assert_eq!(sess["records"], 2, "{sess}");

    let note = dir.join("failed").join("bad.xml.error");
    wait_file(
        &s,
        &dir.join("failed").join("bad.xml"),
        "bad.xml in failed/",
    );
    let reason = wait(&s, "the .error note", || {
        std::fs::read_to_string(&note)
            .ok()
            .filter(|t| !t.trim().is_empty())
    });
    assert!(
        reason.contains("malformed XML"),
        "the note gives the reason: {reason:?}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("failed").join("bad.xml")).unwrap(),
        bad,
        "the refused file is kept as it was"
    );
    assert!(!dir.join("bad.xml").exists());
    assert!(
        samples(&s, "&device=00D09E-IGD-W4").is_empty(),
        "nothing stored from the bad document"
    );
    assert!(
        sessions(&s)
            .iter()
            .all(|r| r["document_id"] != "doc-dir-bad"),
        "no session for the bad document"
    );
    // Over max_document_bytes: refused unread, with the limit as the reason.
    let big = encode_xml_tr232(
        "doc-dir-big",
        "cpe-dir",
        T0,
        &[report(
            "W5",
            T0,
            false,
            &[("Device.Big", &"x".repeat(MAX_DOC))],
        )],
    );
    assert!(big.len() > MAX_DOC);
    std::fs::write(dir.join("big.xml"), &big).unwrap();
    // The bad document again under the same name: failed/ keeps both, each with its note.
    std::fs::write(dir.join("bad.xml"), &bad).unwrap();
    let big_note = dir.join("failed").join("big.xml.error");
    let reason = wait(&s, "big.xml.error", || {
        std::fs::read_to_string(&big_note)
            .ok()
            .filter(|t| !t.trim().is_empty())
    });
    assert!(reason.contains("limit"), "{reason:?}");
    assert!(dir.join("failed").join("big.xml").is_file());
    let failed = wait(&s, "the second bad.xml refused", || {
        let names: Vec<String> = std::fs::read_dir(dir.join("failed"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let notes = names
            .iter()
            .filter(|n| n.starts_with("bad.xml") && n.ends_with(".error"))
            .count();
        (notes == 2 && !dir.join("bad.xml").exists()).then_some(names)
    });
    let second: Vec<&String> = failed
        .iter()
        .filter(|n| n.starts_with("bad.xml.") && !n.ends_with(".error"))
        .collect();
    assert_eq!(second.len(), 1, "{failed:?}");
    assert!(
        failed.contains(&format!("{}.error", second[0])),
        "the note sits beside the renamed file: {failed:?}"
    );
    // The same limit on the HTTP routes: 413, nothing stored.
    let (st, v) = s.post_bytes(DOCS, big.as_bytes());
    assert_eq!(st, 413, "{v}");
    let (st, text) = post_bulk(&s, "application/xml", big.as_bytes());
    assert_eq!(st, 413, "{text}");
    assert!(samples(&s, "&device=00D09E-IGD-W5").is_empty());

    // The dotfile survived several polls untouched.
    std::thread::sleep(Duration::from_millis(2_500));
    assert_eq!(
        std::fs::read_to_string(dir.join(".pending.xml")).unwrap(),
        pending
    );
    assert!(samples(&s, "&device=00D09E-IGD-W3").is_empty());
    assert_eq!(samples(&s, "").len(), 3, "only the good document's samples");

    // The same good document dropped again under the same name: stored once, and the
    // second file still lands in done/ (under another name).
    std::fs::write(dir.join(".again.part"), &good).unwrap();
    std::fs::rename(dir.join(".again.part"), dir.join("good.xml")).unwrap();
    wait(&s, "the second good.xml taken", || {
        (!dir.join("good.xml").exists()).then_some(())
    });
    let done: Vec<String> = std::fs::read_dir(dir.join("done"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(done.len(), 2, "{done:?}");
    assert!(done.iter().all(|n| n.starts_with("good.xml")), "{done:?}");
    assert_eq!(
        samples(&s, "").len(),
        3,
        "a repeated document adds no samples"
    );
    assert_eq!(session_of(&s, "doc-dir-good")["records"], 2);
    assert_no_panic(&s);
}

/// Records of non-TR-232 templates are readable and exportable through the NBI: by exporter,
/// document, time received, with a cursor, as JSON, JSON lines and CSV (one column per field).
#[test]
fn non_tr232_records_are_read_and_exported() {
    let s = Server::start(ServerOpts::default());
    let (st, v) = s.post_bytes(DOCS, samis_doc("samis-a", "cmts-01", 3, 3).as_bytes());
    assert_eq!(st, 200, "{v}");
    let (st, v) = s.post_bytes(DOCS, samis_doc("samis-b", "cmts-02", 2, 2).as_bytes());
    assert_eq!(st, 200, "{v}");
    let (st, all) = s.get("/api/v1/ipdr/records");
    assert_eq!(st, 200, "{all}");
    assert_eq!(all["records"].as_array().unwrap().len(), 5, "{all}");
    let (_, a) = s.get("/api/v1/ipdr/records?exporter=doc:cmts-01");
    let recs = a["records"].as_array().unwrap();
    assert_eq!(recs.len(), 3, "{a}");
    assert_eq!(recs[0]["sequence"], 12, "newest first: {a}");
    assert_eq!(
        recs[0]["fields"]["serviceOctetsPassed"]
            .to_string()
            .trim_matches('"'),
        "3000",
        "{a}"
    );
    let (_, b) = s.get("/api/v1/ipdr/records?document=samis-b");
    assert_eq!(b["records"].as_array().unwrap().len(), 2, "{b}");
    // Pages by cursor.
    let (_, p1) = s.get("/api/v1/ipdr/records?limit=2");
    assert_eq!(p1["records"].as_array().unwrap().len(), 2);
    let cursor = p1["next_cursor"].as_i64().expect("a cursor");
    let (_, p2) = s.get(&format!("/api/v1/ipdr/records?limit=10&cursor={cursor}"));
    assert_eq!(p2["records"].as_array().unwrap().len(), 3);
    assert!(p2["next_cursor"].is_null());
    // A time range after everything: nothing.
    let (_, none) = s.get("/api/v1/ipdr/records?from=2999-01-01T00:00:00Z");
    assert_eq!(none["records"].as_array().unwrap().len(), 0);
    // Exports.
    let mut c = common::wire::Conn::open(s.nbi_port);
    let bearer = s.bearer();
    let r = c.request_with(
        "GET",
        "/api/v1/ipdr/records?exporter=doc:cmts-01&format=csv",
        &[("Authorization", &bearer)],
    );
    assert_eq!(r.status, 200);
    let mut rd = csv::Reader::from_reader(r.body.as_slice());
    let head: Vec<String> = rd.headers().unwrap().iter().map(str::to_string).collect();
    assert!(head.contains(&"CMmacAddress".to_string()), "{head:?}");
    let col = head
        .iter()
        .position(|h| h == "serviceOctetsPassed")
        .unwrap();
    let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(&rows[2][col], "1000");
    let r = c.request_with(
        "GET",
        "/api/v1/ipdr/records?format=jsonl",
        &[("Authorization", &bearer)],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.text().lines().count(), 5);
    // A viewer (bulkdata:read) reads them too.
    let v = s.token_for("v", "viewer", None);
    let (st, _) = s.call_as(Some(&v), "GET", "/api/v1/ipdr/records", None);
    assert_eq!(st, 200);
}
