//! Fuzz targets: every parser that reads outside input, each checking a property where one
//! exists. `scripts/fuzz.sh TARGET SECONDS` runs one under AFL++ (`cargo afl`); `cargo test`
//! replays every file of `fuzz/corpus/<target>/` (the minimised seed corpus and the inputs
//! fuzzing found) and `fuzz/regressions/<target>/` (inputs that once crashed a target).
//!
//! A target panics only on a defect: a parser panicking, a property failing, or (under
//! AFL's memory limit) memory growing without bound.

use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use acs::codec::{self, Body, Envelope, Header, Limits, OutputStyle};

/// A fuzz target: runs one input.
pub type Target = fn(&[u8]);

/// Every target by name (the corpus directory names).
pub const TARGETS: &[(&str, Target)] = &[
    ("cwmp", cwmp),
    ("authorization", authorization),
    ("bulk_json", bulk_json),
    ("bulk_csv", bulk_csv),
    ("ipdr_stream", ipdr_stream),
    ("ipdr_doc", ipdr_doc),
    ("datamodel", datamodel),
    ("udp_cr", udp_cr),
    ("task_args", task_args),
];

/// Limits for re-reading our own output (it may be larger than what was read).
fn unbounded() -> Limits {
    Limits {
        max_body_bytes: usize::MAX,
        max_elements: usize::MAX,
        ..Limits::default()
    }
}

/// The CWMP SOAP parser, both roles (every RPC, responses and faults): what parses must
/// serialize to something that parses again and serializes to the same bytes.
pub fn cwmp(data: &[u8]) {
    let Ok(env) = codec::parse(data, &Limits::default()) else {
        return;
    };
    let style = OutputStyle::default();
    let once = codec::serialize(&env, &style);
    let again = codec::parse(&once, &unbounded()).unwrap_or_else(|e| {
        panic!(
            "our serialization does not parse: {e}\n{}",
            String::from_utf8_lossy(&once)
        )
    });
    let twice = codec::serialize(&again, &style);
    assert!(
        once == twice,
        "serialize(parse(serialize(x))) differs:\n{}\n---\n{}",
        String::from_utf8_lossy(&once),
        String::from_utf8_lossy(&twice)
    );
}

/// The `Authorization` header (Basic and Digest, with escapes, on both transports) through
/// the server's verifier and its nonce ledger.
pub fn authorization(data: &[u8]) {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    let auth = acs::auth::Authenticator::new(
        acs::auth::AuthConfig {
            algorithms: vec![
                acs::auth::DigestAlgorithm::Md5,
                acs::auth::DigestAlgorithm::Sha256,
            ],
            max_tracked_nonces: 16,
            ..Default::default()
        },
        [7u8; 32],
    );
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for tls in [false, true] {
        let req = acs::auth::Request {
            authorization: header,
            method: "POST",
            uri: "/",
            tls,
            identity: "001A2B-Gateway-SN1",
            now,
        };
        let _ = auth.verify_request(&req, |_| Some("secret"));
        let _ = acs::auth::verify_digest_response(header, "POST", "secret");
    }
}

fn split_choice(data: &[u8]) -> Option<(u8, &[u8])> {
    let (&c, rest) = data.split_first()?;
    Some((c, rest))
}

/// HTTP bulk-data JSON reports (NameValuePair, ObjectHierarchy, no header).
pub fn bulk_json(data: &[u8]) {
    let Some((c, body)) = split_choice(data) else {
        return;
    };
    let format = [None, Some("NameValuePair"), Some("ObjectHierarchy")][usize::from(c % 3)];
    let _ = ipdr::bulkhttp::parse_report("application/json; charset=utf-8", format, body);
}

/// HTTP bulk-data CSV reports (ParameterPerRow, ParameterPerColumn, with and without a
/// header row).
pub fn bulk_csv(data: &[u8]) {
    let Some((c, body)) = split_choice(data) else {
        return;
    };
    let format = [None, Some("ParameterPerRow"), Some("ParameterPerColumn")][usize::from(c % 3)];
    let ctype = if c & 0x80 == 0 {
        "text/csv; charset=UTF-8; header=present"
    } else {
        "text/csv"
    };
    let _ = ipdr::bulkhttp::parse_report(ctype, format, body);
}

/// An IPDR/SP byte stream from an exporter: the framer (in chunks the first byte sizes),
/// the message decoder (every decoded message must encode and decode to itself) and the
/// collector state machine with its template-driven record decoder; storage confirms
/// every record at once.
pub fn ipdr_stream(data: &[u8]) {
    use ipdr::collector::{Collector, CollectorConfig, ConnectionInfo, Direction, Output};
    let Some((c, bytes)) = split_choice(data) else {
        return;
    };
    let chunk = usize::from(c).max(1);
    let info = ConnectionInfo {
        exporter: Arc::from("fuzz"),
        direction: Direction::Inbound,
        unix_time: 1_700_000_000,
        nonce: 1,
    };
    let t = Instant::now();
    let cfg = Arc::new(CollectorConfig::default());
    let mut framer = cfg.framer();
    let mut col = Collector::new(cfg, info, t);
    for part in bytes.chunks(chunk) {
        framer.push(part);
        while let Some(r) = framer.next_message() {
            match r {
                Ok(m) => {
                    let enc = m.to_bytes().expect("a decoded message encodes");
                    let back =
                        ipdr::Message::decode_slice(&enc).expect("an encoded message decodes");
                    assert_eq!(back, m, "decode(encode(m)) != m");
                    col.handle_message(t, m);
                }
                Err(e) => col.handle_frame_error(t, &e),
            }
        }
        while let Some(out) = col.poll_output() {
            if let Output::Persist(rec) = out {
                col.records_durable(t, rec.session_id, rec.document_id, rec.sequence_num);
            }
        }
        if col.is_closed() {
            return;
        }
    }
}

/// IPDR documents (IPDR/XML and IPDR/XDR, detected): what parses must encode as IPDR/XDR
/// and parse back with as many records.
pub fn ipdr_doc(data: &[u8]) {
    use ipdr::doc;
    let limits = doc::DocLimits {
        max_bytes: 1 << 20,
        max_records: 10_000,
        ..doc::DocLimits::default()
    };
    let Ok(d) = doc::parse(data, &limits) else {
        return;
    };
    let Ok(xdr) = doc::encode_xdr(&d, &doc::XdrEncodeOptions::default()) else {
        return;
    };
    let opts = doc::XdrFileOptions {
        record_marker: doc::RecordMarker::Present,
        ..doc::XdrFileOptions::default()
    };
    let big = doc::DocLimits {
        max_bytes: usize::MAX,
        ..limits
    };
    let back = doc::parse_xdr(&xdr, &opts, &big)
        .unwrap_or_else(|e| panic!("our IPDR/XDR encoding does not parse: {e}"));
    assert_eq!(
        back.records.len(),
        d.records.len(),
        "records lost in IPDR/XDR"
    );
}

/// The BBF cwmp-datamodel loader (one document, no import directories), then what a loaded
/// model answers for outside input: lookups of paths in every instance form (numbers,
/// `[alias]`, `*`), children, one-line summaries of the descriptions, and value validation
/// with values taken from the input itself.
pub fn datamodel(data: &[u8]) {
    let mut reg = datamodel::Registry::new();
    if reg.load_bytes("fuzz.xml", data).is_err() {
        return;
    }
    let text = String::from_utf8_lossy(data);
    let values: Vec<&str> = text
        .split(['<', '>', '"'])
        .filter(|v| v.len() <= 64)
        .take(16)
        .collect();
    for m in reg.models() {
        for o in m.objects().take(64) {
            let _ = o.summary_line();
            for instance in ["1", "[a]", "*", "01", "[a.b]", ""] {
                let path = o.path.replace("{i}", instance);
                let _ = m.lookup(&path);
                let _ = m.children(&path);
                let _ = m.writable(&path);
            }
        }
        for (_, p) in m.parameters().take(64) {
            let _ = p.summary_line();
            let path = p.path.replace("{i}", "7");
            for v in &values {
                let _ = m.validate(&path, v);
                let _ = m.validate_for_write(&path, v);
            }
        }
    }
}

/// The Annex G UDP connection-request datagram as a CPE reads it: the fields it yields,
/// written back into a datagram, read the same.
pub fn udp_cr(data: &[u8]) {
    let Some(cr) = acs::connreq::parse_udp_connection_request(data) else {
        return;
    };
    let msg = format!(
        "GET http://cpe?ts={}&id={}&un={}&cn={}&sig={} HTTP/1.1\r\n\r\n",
        cr.ts, cr.id, cr.un, cr.cn, cr.sig
    );
    let back = acs::connreq::parse_udp_connection_request(msg.as_bytes())
        .expect("a datagram of parsed fields parses");
    assert_eq!(back, cr);
}

/// NBI task arguments (the first byte picks the kind, the rest is the `args` JSON): what
/// builds an RPC must serialize to a request that parses as the same method.
pub fn task_args(data: &[u8]) {
    let Some((c, json)) = split_choice(data) else {
        return;
    };
    let kinds = &codec::CPE_METHODS;
    let Some(kind) = kinds.get(usize::from(c) % kinds.len()) else {
        return;
    };
    let Ok(args) = serde_json::from_slice::<serde_json::Value>(json) else {
        return;
    };
    let task = acs::session::TaskSpec {
        id: 1,
        kind: kind.to_string(),
        args,
        command_key: None,
        upload_token: Some("0123456789abcdef0123456789abcdef".into()),
    };
    let Ok(rpc) = acs::session::build_rpc(&task, "Device.") else {
        return;
    };
    let env = Envelope {
        ns: codec::CWMP_NS_1_0.to_string(),
        header: Header {
            id: Some("1".into()),
            ..Default::default()
        },
        body: Body::Rpc(rpc),
    };
    let bytes = codec::serialize(&env, &OutputStyle::default());
    let back = codec::parse(&bytes, &unbounded()).unwrap_or_else(|e| {
        panic!(
            "the RPC we would send does not parse: {e}\n{}",
            String::from_utf8_lossy(&bytes)
        )
    });
    match (&back.body, &env.body) {
        (Body::Rpc(a), Body::Rpc(b)) => assert_eq!(a.method_name(), b.method_name()),
        _ => panic!("the RPC we would send reads back as a fault"),
    }
}

/// Runs `target` on every file under `dir` (recursively); returns how many ran.
pub fn replay_dir(target: Target, dir: &std::path::Path) -> usize {
    let mut n = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            n += replay_dir(target, &p);
        } else if let Ok(bytes) = std::fs::read(&p) {
            let r = std::panic::catch_unwind(|| target(&bytes));
            if let Err(e) = r {
                eprintln!("input {} failed", p.display());
                std::panic::resume_unwind(e);
            }
            n += 1;
        }
    }
    n
}
