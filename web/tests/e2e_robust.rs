//! Regression tests for the defects of the "trustworthy core" review, against the real
//! `keelson serve` on loopback: each test reproduces what a careless CPE, a hostile client or
//! a killed process did, and checks the answer a serious ACS gives instead.

mod common;

use acs::codec::{self, Body, Rpc};
use common::wire::{Conn, Resp};
use common::*;
use serde_json::json;

const INFORM: &str = include_str!("../../acs/tests/fixtures/checklist/8.1-inform.xml");
const TRANSFER_COMPLETE: &str =
    include_str!("../../acs/tests/fixtures/checklist/8.9-transfer-complete.xml");
/// The device id of [`INFORM`] as it goes into a URL (ids contain `%`).
const DEV_URL: &str = "001A2B-HGW%252D1000-SN0123456789";

fn xml() -> [(&'static str, &'static str); 2] {
    [
        ("Content-Type", "text/xml; charset=\"utf-8\""),
        ("SOAPAction", ""),
    ]
}

fn envelope(r: &Resp) -> codec::Envelope {
    assert_eq!(
        r.status,
        200,
        "expected an envelope, got {} {}",
        r.status,
        r.text()
    );
    codec::parse(&r.body, &codec::Limits::default()).expect("ACS output parses")
}

/// Informs on a new connection and returns it with the session open.
fn inform(s: &Server) -> Conn {
    let mut c = Conn::open(s.http_port);
    let env = envelope(&c.post(&xml(), INFORM.as_bytes()));
    assert!(matches!(env.body, Body::Rpc(Rpc::InformResponse(_))));
    c
}

/// Informs and ends the session at once (empty POST → 204).
fn inform_and_end(s: &Server) {
    let mut c = inform(s);
    assert_eq!(c.post(&[], b"").status, 204);
}

#[test]
fn out_of_range_expiry_is_a_400_not_a_dropped_connection() {
    let s = Server::start(ServerOpts::default());
    inform_and_end(&s);
    let (status, body) = s.post(
        &format!("/api/v1/devices/{DEV_URL}/tasks"),
        &json!({"kind": "Reboot", "args": {}, "expires_in": 10_000_000_000_000i64}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("expires_in"), "{body}");
    // Nothing was queued, and the server still answers.
    let (status, tasks) = s.get(&format!("/api/v1/devices/{DEV_URL}/tasks"));
    assert_eq!(status, 200);
    assert_eq!(tasks["total"], 0, "{tasks}");
}

#[test]
fn transfer_complete_with_an_extreme_time_is_acknowledged() {
    let s = Server::start(ServerOpts::default());
    let mut c = inform(&s);
    let tc = TRANSFER_COMPLETE
        .replace(
            "<StartTime>2024-05-01T12:01:00Z</StartTime>",
            "<StartTime>262142-12-31T23:59:59-23:00</StartTime>",
        )
        .replace(
            "<CompleteTime>2024-05-01T12:03:30Z</CompleteTime>",
            "<CompleteTime>-262143-01-01T00:00:00+23:59</CompleteTime>",
        );
    let env = envelope(&c.post(&xml(), tc.as_bytes()));
    assert!(
        matches!(env.body, Body::Rpc(Rpc::TransferCompleteResponse(_))),
        "{:?}",
        env.body
    );
    assert_eq!(c.post(&[], b"").status, 204);
}

#[test]
fn basic_credentials_with_escapes_and_non_ascii_get_401() {
    let s = Server::start(ServerOpts {
        cwmp_toml: "auth = \"digest\"\npassword = \"pw\"\n".into(),
        ..Default::default()
    });
    // "JWHDqTp4" is base64 of "%aé:x": a username whose escape ends inside a UTF-8 sequence.
    for auth in [
        "Basic JWHDqTp4",
        "Basic JcOp",
        "Basic JQ==:",
        "Digest username=\"%aé\"",
    ] {
        let mut c = Conn::open_tls(s.https_port);
        let mut headers = xml().to_vec();
        headers.push(("Authorization", auth));
        let r = c.post(&headers, INFORM.as_bytes());
        assert_eq!(r.status, 401, "{auth}: {}", r.text());
    }
    // The right password still works over Basic on TLS.
    let mut c = Conn::open_tls(s.https_port);
    let mut headers = xml().to_vec();
    headers.push(("Authorization", "Basic YW55OnB3")); // any:pw
    assert_eq!(c.post(&headers, INFORM.as_bytes()).status, 200);
}

/// Runs `keelson serve` on a minimal configuration plus `cwmp` (keys of `[cwmp]`) and
/// `extra` (sections) and returns its stderr, asserting that it refused to start.
fn serve_refuses(cwmp: &str, extra: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("k.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = {:?}\n[cwmp]\nhttp_listen = \"127.0.0.1:{}\"\nhttps_listen = \"\"\n{cwmp}\n[nbi]\nlisten = \"127.0.0.1:{}\"\n{extra}",
            dir.path().join("data"),
            free_port(),
            free_port()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(bin())
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A server that wrongly starts would run forever: give it a deadline.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("keelson serve started although it should have refused: {extra}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        !status.success(),
        "serve must refuse to start: {extra}\n{err}"
    );
    err
}

#[test]
fn impossible_retention_is_refused_at_start() {
    let err = serve_refuses(
        "",
        "[ipdr]\nenabled = false\n[bulkdata]\nretention_days = 4294967295\n",
    );
    assert!(err.contains("bulkdata.retention_days"), "{err}");
}

/// Defect 6: an unknown Digest algorithm used to become MD5 silently.
#[test]
fn unknown_digest_algorithm_is_refused_at_start() {
    let err = serve_refuses(
        "auth = \"digest\"\npassword = \"pw\"\ndigest_algorithms = [\"SHA-512-256\"]",
        "[ipdr]\nenabled = false\n",
    );
    assert!(err.contains("SHA-512-256"), "{err}");
}

/// Defect 14: with the IPDR port taken, `keelson serve` used to start and report healthy.
#[test]
fn ipdr_listener_that_cannot_bind_fails_the_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = serve_refuses(
        "",
        &format!("[ipdr]\nlisten = \"127.0.0.1:{port}\"\nsctp_listen = \"\"\n"),
    );
    assert!(err.contains("binding the IPDR collector"), "{err}");
    assert!(err.contains(&port.to_string()), "{err}");
}

/// Defect 13: the collector took connections from anyone, without a per-address cap.
#[test]
fn ipdr_collector_admits_only_allowed_addresses_within_caps() {
    use std::io::Read;
    let s = Server::start(ServerOpts {
        extra_toml:
            "sctp_listen = \"\"\nallow = [\"127.0.0.2/32\"]\nmax_connections_per_address = 2\n"
                .into(),
        ..Default::default()
    });
    let connect_from = |ip: &str| {
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.bind(
            &format!("{ip}:0")
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
        sock.connect(
            &format!("127.0.0.1:{}", s.ipdr_port)
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
        let t: std::net::TcpStream = sock.into();
        t.set_read_timeout(Some(std::time::Duration::from_millis(1500)))
            .unwrap();
        t
    };
    // Closed at once (end of stream) vs held open (the read times out: the collector waits
    // for the exporter's CONNECT).
    let closed = |t: &std::net::TcpStream| {
        let mut b = [0u8; 1];
        match (&*t).read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    };
    let outside = connect_from("127.0.0.1");
    assert!(closed(&outside), "127.0.0.1 is not in ipdr.allow");
    let a = connect_from("127.0.0.2");
    let b = connect_from("127.0.0.2");
    let c = connect_from("127.0.0.2");
    assert!(
        closed(&c),
        "a third connection from one address is over the cap"
    );
    assert!(
        !closed(&a) && !closed(&b),
        "two connections from an allowed address are held"
    );
    let (_, h) = s.get("/healthz");
    let ipdr = &h["connections"]["ipdr"];
    assert_eq!(ipdr["refused"]["not_allowed"], 1, "{h}");
    assert_eq!(ipdr["refused"]["per_address"], 1, "{h}");
    assert_eq!(ipdr["open"], 2, "{h}");
    let log = s.proc.log_text();
    assert!(log.contains("connection refused"), "refusals are logged");
    drop((a, b));
}

/// Defect 18: a 6 MB DeviceId and 100,000 parameters in one Inform were stored.
#[test]
fn oversized_informs_get_a_fault_and_store_nothing() {
    let s = Server::start(ServerOpts {
        cwmp_toml: "max_inform_parameters = 10\n".into(),
        ..Default::default()
    });
    let long_serial = INFORM.replace("SN0123456789", &"S".repeat(300));
    let mut params = String::new();
    for i in 0..11 {
        params.push_str(&format!(
            "<ParameterValueStruct><Name>Device.X_Test.P{i}</Name><Value xsi:type=\"xsd:string\">v</Value></ParameterValueStruct>"
        ));
    }
    let (head, rest) = INFORM.split_once("<ParameterList").unwrap();
    let (_, tail) = rest.split_once("</ParameterList>").unwrap();
    let many = format!(
        "{head}<ParameterList soap-enc:arrayType=\"cwmp:ParameterValueStruct[11]\">{params}</ParameterList>{tail}"
    );
    for (what, body, code) in [
        ("long SerialNumber", long_serial, 8003),
        ("11 parameters", many, 8004),
    ] {
        let mut c = Conn::open(s.http_port);
        let env = envelope(&c.post(&xml(), body.as_bytes()));
        let Body::Fault(f) = env.body else {
            panic!("{what}: expected a SOAP fault")
        };
        assert_eq!(
            f.detail.fault_code, code,
            "{what}: {}",
            f.detail.fault_string
        );
    }
    let (_, d) = s.get("/api/v1/devices");
    assert_eq!(
        d["devices"].as_array().map(Vec::len),
        Some(0),
        "nothing stored: {d}"
    );
}

/// Defect 10: one element with 100,000 attributes took seconds of a worker to parse.
#[test]
fn attribute_floods_are_refused_before_parsing() {
    let s = Server::start(ServerOpts::default());
    let mut attrs = String::with_capacity(1_200_000);
    for i in 0..100_000 {
        attrs.push_str(&format!(" a{i}=\"\""));
    }
    let body = INFORM.replacen("<cwmp:Inform>", &format!("<cwmp:Inform{attrs}>"), 1);
    let mut c = Conn::open(s.http_port);
    let r = c.post(&xml(), body.as_bytes());
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("attributes"), "{}", r.text());
    // The same limit holds for IPDR documents on the northbound API.
    let doc = format!(
        "<?xml version=\"1.0\"?><IPDRDoc xmlns=\"http://www.ipdr.org/namespaces/ipdr\"{attrs}/>"
    );
    let (st, b) = s.post_bytes("/api/v1/ipdr/documents", doc.as_bytes());
    assert!(st == 400 || st == 413 || st == 422, "{st} {b}");
    assert!(b.to_string().contains("attributes"), "{b}");
    // Real sessions still run.
    inform_and_end(&s);
}

/// Defect 19: the NBI answered a text/plain POST from a foreign Origin and any Host.
#[test]
fn cross_site_requests_are_refused() {
    let s = Server::start(ServerOpts::default());
    let port = s.nbi_port;
    let upload = "/api/v1/files?name=fw.bin";
    for (what, headers) in [
        (
            "foreign Origin",
            vec![
                ("Origin", "http://evil.example"),
                ("Content-Type", "text/plain"),
            ],
        ),
        ("Origin: null", vec![("Origin", "null")]),
        ("Sec-Fetch-Site", vec![("Sec-Fetch-Site", "cross-site")]),
    ] {
        let r = Conn::open(port).post_to(upload, &headers, b"firmware");
        assert_eq!(r.status, 403, "{what}: {}", r.text());
        assert_eq!(r.header("Content-Type"), Some("application/problem+json"));
    }
    let (_, files) = s.get("/api/v1/files");
    assert_eq!(
        files["files"].as_array().map(Vec::len),
        Some(0),
        "nothing stored: {files}"
    );
    // A page reaching the listener under its own name (DNS rebinding) is refused too.
    let mut c = Conn::open(port);
    c.write_raw(b"GET /api/v1/devices HTTP/1.1\r\nHost: rebind.evil.example:7557\r\n\r\n")
        .unwrap();
    assert_eq!(c.read_one().status, 421);
    // The API's own origin and tools without browser headers pass.
    let own = format!("http://127.0.0.1:{port}");
    let r = Conn::open(port).post_to(
        upload,
        &[("Origin", own.as_str()), ("Sec-Fetch-Site", "same-origin")],
        b"fw",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = Conn::open(port).post_to("/api/v1/files?name=fw2.bin", &[], b"fw");
    assert_eq!(r.status, 201, "{}", r.text());
}

/// Defect 28: a load run where every session failed printed a table and exited 0.
#[test]
fn sim_load_against_no_acs_fails() {
    let port = free_port();
    let out = std::process::Command::new(bin())
        .args([
            "sim",
            "load",
            "--acs-url",
            &format!("http://127.0.0.1:{port}/"),
            "--devices",
            "4",
            "--concurrency",
            "2",
            "--duration",
            "1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "exit status must say the run failed");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no session completed"), "{err}");
}
