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
    let mut child = keelson()
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
    // Reads wait at most 1.5 s: a held connection times out, a refused one ends at once.
    let held = |t: std::net::TcpStream| {
        t.set_read_timeout(Some(std::time::Duration::from_millis(1500)))
            .unwrap();
        t
    };
    let outside = held(connect_from("127.0.0.1", s.ipdr_port));
    assert!(closed(&outside), "127.0.0.1 is not in ipdr.allow");
    let a = held(connect_from("127.0.0.2", s.ipdr_port));
    let b = held(connect_from("127.0.0.2", s.ipdr_port));
    // Admission happens when the collector accepts: let it hold both before the third.
    s.wait_for(
        "two IPDR connections admitted",
        std::time::Duration::from_secs(10),
        |s| (s.get("/healthz").1["connections"]["ipdr"]["open"].as_u64() >= Some(2)).then_some(()),
    );
    let c = held(connect_from("127.0.0.2", s.ipdr_port));
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
    let bearer = s.bearer();
    let r = Conn::open(port).post_to(
        upload,
        &[
            ("Origin", own.as_str()),
            ("Sec-Fetch-Site", "same-origin"),
            ("Authorization", bearer.as_str()),
        ],
        b"fw",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = Conn::open(port).post_to(
        "/api/v1/files?name=fw2.bin",
        &[("Authorization", bearer.as_str())],
        b"fw",
    );
    assert_eq!(r.status, 201, "{}", r.text());
}

/// Defect 28: a load run where every session failed printed a table and exited 0.
#[test]
fn sim_load_against_no_acs_fails() {
    let port = free_port();
    let out = keelson()
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

/// [`INFORM`] with these events (no BOOTSTRAP: that would cancel waiting tasks).
fn inform_with(events: &[(&str, &str)]) -> String {
    let (head, rest) = INFORM.split_once("<Event ").unwrap();
    let (_, tail) = rest.split_once("</Event>").unwrap();
    let mut ev = format!(
        "<Event SOAP-ENC:arrayType=\"cwmp:EventStruct[{}]\">",
        events.len()
    );
    for (code, key) in events {
        ev.push_str(&format!(
            "<EventStruct><EventCode>{code}</EventCode><CommandKey>{key}</CommandKey></EventStruct>"
        ));
    }
    format!("{head}{ev}</Event>{tail}")
}

fn periodic() -> String {
    inform_with(&[("2 PERIODIC", "")])
}

/// Opens a session with `body` (an Inform) on a new connection.
fn open_with(s: &Server, body: &str) -> Conn {
    let mut c = Conn::open(s.http_port);
    let env = envelope(&c.post(&xml(), body.as_bytes()));
    assert!(matches!(env.body, Body::Rpc(Rpc::InformResponse(_))));
    c
}

/// Posts the CPE's answer `rpc` to the ACS request `req` (same cwmp:ID).
fn answer(c: &mut Conn, req: &codec::Envelope, rpc: Rpc) -> Resp {
    let env = codec::Envelope {
        ns: req.ns.clone(),
        header: codec::Header {
            id: req.header.id.clone(),
            ..Default::default()
        },
        body: Body::Rpc(rpc),
    };
    c.post(
        &xml(),
        &codec::serialize(&env, &codec::OutputStyle::default()),
    )
}

fn queue(s: &Server, body: serde_json::Value) -> i64 {
    let (st, t) = s.post(&format!("/api/v1/devices/{DEV_URL}/tasks"), &body);
    assert_eq!(st, 201, "{t}");
    t["task"]["id"].as_i64().unwrap()
}

fn task(s: &Server, id: i64) -> serde_json::Value {
    let (_, t) = s.get(&format!("/api/v1/tasks/{id}"));
    t["task"].clone()
}

fn wait_status(s: &Server, id: i64, status: &str) -> serde_json::Value {
    s.wait_for(
        &format!("task {id} {status}"),
        std::time::Duration::from_secs(30),
        |s| Some(task(s, id)).filter(|t| t["status"] == status),
    )
}

fn gpv_response(name: &str, value: &str) -> Rpc {
    Rpc::GetParameterValuesResponse(codec::GetParameterValuesResponse {
        parameter_list: vec![codec::ParameterValueStruct::new(name, value, "xsd:string")],
    })
}

/// Defect 2: a SIGKILL while an RPC was on the wire left its task `running` forever. A
/// restart reclaims the lease at once; the device's next session runs the task to the end.
#[test]
fn sigkill_mid_rpc_then_restart_runs_the_task_to_completion() {
    let mut s = Server::start(ServerOpts::default());
    drop(open_with(&s, &periodic()));
    let id = queue(
        &s,
        json!({"kind": "GetParameterValues", "args": {"parameter_names": ["Device.DeviceInfo.UpTime"]}}),
    );
    let mut c = open_with(&s, &periodic());
    let req = envelope(&c.post(&[], b""));
    assert!(matches!(req.body, Body::Rpc(Rpc::GetParameterValues(_))));
    assert_eq!(task(&s, id)["status"], "running");
    s.restart();
    let t = wait_status(&s, id, "pending");
    assert_eq!(t["attempts"], 1, "the lost attempt is counted: {t}");
    let mut c = open_with(&s, &periodic());
    let req = envelope(&c.post(&[], b""));
    assert!(matches!(req.body, Body::Rpc(Rpc::GetParameterValues(_))));
    let r = answer(&mut c, &req, gpv_response("Device.DeviceInfo.UpTime", "42"));
    assert_eq!(r.status, 204, "{}", r.text());
    let t = task(&s, id);
    assert_eq!(t["status"], "done", "{t}");
    assert!(s.all_logs().contains("reclaim"), "the reclaim is logged");
}

/// Defect 8: abandoned sessions with a huge SessionTimeout made every new device get 503.
#[test]
fn abandoned_sessions_lock_no_device_out() {
    let s = Server::start(ServerOpts {
        cwmp_toml: "max_sessions = 5\n".into(),
        ..Default::default()
    });
    let forever = |serial: &str| {
        INFORM
            .replace(
                ">60</cwmp:SessionTimeout>",
                ">4294967295</cwmp:SessionTimeout>",
            )
            .replace("SN0123456789", serial)
    };
    for i in 0..20 {
        // Inform, read the InformResponse, drop the connection.
        drop(open_with(&s, &forever(&format!("ABANDONED{i}"))));
    }
    // A new device, and one of the abandoned ones, get sessions.
    for serial in ["FRESH1", "ABANDONED3"] {
        s.wait_for(
            &format!("a session for {serial}"),
            std::time::Duration::from_secs(10),
            |s| {
                let mut c = Conn::open(s.http_port);
                let r = c.post(&xml(), forever(serial).as_bytes());
                (r.status == 200).then_some(())
            },
        );
    }
}

/// Defect 9: a gzip body of zeros was inflated whole before the limit applied.
#[test]
fn compression_bombs_stop_at_the_limit() {
    use std::io::Write;
    let s = Server::start(ServerOpts::default());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..256 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = gz.finish().unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (port, bomb) = (s.http_port, bomb.clone());
            std::thread::spawn(move || {
                let mut c = Conn::open(port);
                c.post(&[("Content-Encoding", "gzip")], &bomb).status
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 413);
    }
    // Four 256 MiB bombs at once: the server never held more than a little over the
    // limit for each (8 MiB), far from the 1 GiB they inflate to.
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.proc.child.id())).unwrap();
    let hwm_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(hwm_kb < 300 * 1024, "peak RSS {hwm_kb} kB");
    inform_and_end(&s);
}

fn digest_header(r: &Resp, user: &str, pass: &str, uri: &str) -> String {
    let challenge = r.header("WWW-Authenticate").expect("a Digest challenge");
    let mut prompt = digest_auth::parse(challenge).unwrap();
    let ctx = digest_auth::AuthContext::new_post(user, pass, uri, None::<&[u8]>);
    prompt.respond(&ctx).unwrap().to_header_string()
}

/// Defect 11: a captured Authorization header worked again on new connections, for any
/// body and DeviceId.
#[test]
fn captured_digest_headers_do_not_replay() {
    let s = Server::start(ServerOpts {
        cwmp_toml: "auth = \"digest\"\npassword = \"pw\"\n".into(),
        ..Default::default()
    });
    let user = "001A2B-HGW%2D1000-SN0123456789";
    let mut c = Conn::open(s.http_port);
    let r = c.post(&xml(), INFORM.as_bytes());
    assert_eq!(r.status, 401);
    let good = digest_header(&r, user, "pw", "/");
    let mut headers = xml().to_vec();
    headers.push(("Authorization", good.as_str()));
    assert_eq!(c.post(&headers, INFORM.as_bytes()).status, 200);
    assert_eq!(c.post(&[], b"").status, 204);
    // The same header again, on a new connection: the nonce count did not grow.
    let mut c = Conn::open(s.http_port);
    assert_eq!(c.post(&headers, INFORM.as_bytes()).status, 401, "replay");
    // For another device.
    let other = INFORM.replace("SN0123456789", "SN-OTHER");
    let mut c = Conn::open(s.http_port);
    assert_eq!(c.post(&headers, other.as_bytes()).status, 401, "transplant");
    // Without qop, and with another uri.
    let mut c = Conn::open(s.http_port);
    let r = c.post(&xml(), INFORM.as_bytes());
    let wrong_uri = digest_header(&r, user, "pw", "/elsewhere");
    let no_qop = digest_header(&r, user, "pw", "/")
        .replace(", qop=auth", "")
        .replace("qop=auth, ", "");
    for (what, h) in [("uri", wrong_uri), ("qop", no_qop)] {
        let mut c = Conn::open(s.http_port);
        let mut headers = xml().to_vec();
        headers.push(("Authorization", h.as_str()));
        assert_eq!(c.post(&headers, INFORM.as_bytes()).status, 401, "{what}");
    }
}

/// Defect 12: a connection that sent its headers and stalled stayed open indefinitely, and
/// one address could hold every connection.
#[test]
fn stalled_bodies_time_out_and_one_address_cannot_hold_every_connection() {
    use std::io::{Read, Write};
    let s = Server::start(ServerOpts {
        cwmp_toml: "body_timeout_secs = 1\nmax_connections_per_address = 3\n".into(),
        ..Default::default()
    });
    let mut stalled = std::net::TcpStream::connect(("127.0.0.1", s.http_port)).unwrap();
    stalled
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n<soap")
        .unwrap();
    stalled
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let t0 = std::time::Instant::now();
    let mut buf = Vec::new();
    let _ = stalled.read_to_end(&mut buf);
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(15),
        "the stalled connection was closed by the server"
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );

    let held: Vec<_> = (0..3)
        .map(|_| connect_from("127.0.0.2", s.http_port))
        .collect();
    // The server admits connections as it accepts them, not as the kernel completes them:
    // wait until it holds all three, so that the fourth is the one over the cap.
    s.wait_for(
        "three connections admitted",
        std::time::Duration::from_secs(10),
        |s| (s.get("/healthz").1["connections"]["cwmp"]["open"].as_u64() >= Some(3)).then_some(()),
    );
    let mut over = connect_from("127.0.0.2", s.http_port);
    over.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut b = [0u8; 1];
    assert!(
        matches!(over.read(&mut b), Ok(0) | Err(_)),
        "a fourth connection from 127.0.0.2 is closed"
    );
    // Others are not affected.
    inform_and_end(&s);
    let (_, h) = s.get("/healthz");
    assert!(
        h["connections"]["cwmp"]["refused"]["per_address"].as_u64() >= Some(1),
        "{h}"
    );
    drop(held);
}

/// Defects 15 and 25: a device-reported ConnectionRequestURL aimed Keelson at another local
/// service; the outcome of a connection request was never recorded.
#[test]
fn connection_requests_go_only_where_the_device_informed_from() {
    let target = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
    target.set_nonblocking(true).unwrap();
    let url = format!(
        "http://{}/internal/admin?delete=all",
        target.local_addr().unwrap()
    );
    let s = Server::start(ServerOpts {
        extra_toml: "[connection_request]\nmin_interval_secs = 0\ntimeout_secs = 2\n".into(),
        ..Default::default()
    });
    let body = periodic().replace("http://192.0.2.10:7547/cr-4f2a", &url);
    let mut c = open_with(&s, &body);
    assert_eq!(c.post(&[], b"").status, 204);
    let (st, r) = s.post(
        &format!("/api/v1/devices/{DEV_URL}/connection-request"),
        &json!({}),
    );
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["result"], "forbidden", "{r}");
    assert!(
        matches!(target.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the other address was never contacted"
    );
    let (_, d) = s.get(&format!("/api/v1/devices/{DEV_URL}"));
    assert_eq!(d["device"]["last_cr_result"], "forbidden", "{d}");
    assert!(d["device"]["last_cr_at"].is_string(), "{d}");
}

/// Defect 20: connection requests carried lower-case header names, which embedded Digest
/// checks (easycwmp's `Authorization: Digest `) do not match.
#[test]
fn connection_requests_use_the_header_names_cpes_match() {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/cr", listener.local_addr().unwrap());
    // A CPE's CR endpoint that matches its header names case-sensitively.
    let cpe = std::thread::spawn(move || -> Vec<String> {
        let mut heads = Vec::new();
        for _ in 0..2 {
            let (stream, _) = listener.accept().unwrap();
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let mut w = stream;
            if head.contains("\r\nAuthorization: Digest ") {
                w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    .unwrap();
                heads.push(head);
                break;
            }
            w.write_all(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"cpe\", nonce=\"abc123\", qop=\"auth\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
            heads.push(head);
        }
        heads
    });
    let s = Server::start(ServerOpts {
        extra_toml: "[connection_request]\nusername = \"cr\"\npassword = \"crpw\"\nmin_interval_secs = 0\ntimeout_secs = 5\n".into(),
        ..Default::default()
    });
    let body = periodic().replace("http://192.0.2.10:7547/cr-4f2a", &url);
    let mut c = open_with(&s, &body);
    assert_eq!(c.post(&[], b"").status, 204);
    let (_, r) = s.post(
        &format!("/api/v1/devices/{DEV_URL}/connection-request"),
        &json!({}),
    );
    let heads = cpe.join().unwrap();
    assert_eq!(r["result"], "accepted", "{r}\n{heads:?}");
    assert!(
        heads.last().unwrap().contains("\r\nAuthorization: Digest "),
        "{heads:?}"
    );
    assert!(heads[0].contains("\r\nHost: "), "{heads:?}");
}

/// Defects 21 and 22: a CPE that rebooted and re-Informed on the same connection got 400,
/// its Reboot never completed (empty CommandKey), and the RPC on the wire stayed running.
#[test]
fn reboot_then_new_inform_on_the_same_connection() {
    let s = Server::start(ServerOpts::default());
    drop(open_with(&s, &periodic()));
    let reboot = queue(
        &s,
        json!({"kind": "Reboot", "args": {"command_key": "rk-1"}}),
    );
    let gpv = queue(
        &s,
        json!({"kind": "GetParameterValues", "args": {"parameter_names": ["Device.DeviceInfo.UpTime"]}}),
    );
    let mut c = open_with(&s, &periodic());
    let req = envelope(&c.post(&[], b""));
    assert!(matches!(req.body, Body::Rpc(Rpc::Reboot(_))));
    let next = envelope(&answer(
        &mut c,
        &req,
        Rpc::RebootResponse(codec::RebootResponse {}),
    ));
    assert!(matches!(next.body, Body::Rpc(Rpc::GetParameterValues(_))));
    assert_eq!(task(&s, reboot)["status"], "waiting");
    // The CPE reboots and informs again on the same keep-alive connection, as cwmp-sim
    // does, with an empty CommandKey on `M Reboot`.
    let env = envelope(&c.post(
        &xml(),
        inform_with(&[("1 BOOT", ""), ("M Reboot", "")]).as_bytes(),
    ));
    assert!(matches!(env.body, Body::Rpc(Rpc::InformResponse(_))));
    let t = task(&s, reboot);
    assert_eq!(t["status"], "done", "{t}");
    let t = task(&s, gpv);
    assert_eq!(
        t["status"], "pending",
        "the RPC in flight goes back to the queue: {t}"
    );
    // And runs in the new session.
    let req = envelope(&c.post(&[], b""));
    assert!(matches!(req.body, Body::Rpc(Rpc::GetParameterValues(_))));
    assert_eq!(
        answer(&mut c, &req, gpv_response("Device.DeviceInfo.UpTime", "5")).status,
        204
    );
    assert_eq!(task(&s, gpv)["status"], "done");
}

/// Defect 23: `Status 9005, InstanceNumber 0` was recorded done with a phantom instance.
#[test]
fn impossible_add_object_responses_are_faults() {
    let s = Server::start(ServerOpts::default());
    drop(open_with(&s, &periodic()));
    let id = queue(
        &s,
        json!({"kind": "AddObject", "args": {"object_name": "Device.IP.Interface."}}),
    );
    let mut c = open_with(&s, &periodic());
    let req = envelope(&c.post(&[], b""));
    assert!(matches!(req.body, Body::Rpc(Rpc::AddObject(_))));
    let r = answer(
        &mut c,
        &req,
        Rpc::AddObjectResponse(codec::AddObjectResponse {
            instance_number: 0,
            status: 9005,
        }),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let t = task(&s, id);
    assert_eq!(t["status"], "fault", "{t}");
    assert_eq!(t["fault_code"], 8802, "{t}");
    assert!(t["fault_meaning"].is_string(), "{t}");
    let (_, p) = s.get(&format!(
        "/api/v1/devices/{DEV_URL}/parameters?prefix=Device.IP.Interface.0"
    ));
    assert!(
        !p.to_string().contains("Device.IP.Interface.0."),
        "no phantom instance: {p}"
    );
}

/// Defect 26: an aborted session reported `fault_code: 0`.
#[test]
fn an_aborted_session_reports_a_keelson_fault_code() {
    let s = Server::start(ServerOpts {
        cwmp_toml: "session_timeout_secs = 1\n".into(),
        ..Default::default()
    });
    let body = periodic().replace(
        "<cwmp:SessionTimeout SOAP-ENV:mustUnderstand=\"0\">60</cwmp:SessionTimeout>",
        "",
    );
    drop(open_with(&s, &body));
    let id = queue(
        &s,
        json!({"kind": "GetParameterValues", "args": {"parameter_names": ["Device.DeviceInfo."]}, "max_attempts": 1}),
    );
    let mut c = open_with(&s, &body);
    let req = envelope(&c.post(&[], b""));
    assert!(matches!(req.body, Body::Rpc(Rpc::GetParameterValues(_))));
    // The CPE goes silent; the session times out with the RPC outcome unknown.
    let t = wait_status(&s, id, "fault");
    assert_eq!(t["fault_code"], 8800, "{t}");
    assert!(
        t["fault_meaning"]
            .as_str()
            .unwrap_or_default()
            .contains("session"),
        "{t}"
    );
    drop(c);
}

/// Defect 27: GetParameterValues of a name the data model does not have was queued.
#[test]
fn unknown_standard_names_are_refused_unless_forced() {
    let s = Server::start(ServerOpts::default());
    drop(open_with(&s, &periodic()));
    let args = json!({"parameter_names": ["Device.DeviceInfo.NoSuchThing"]});
    let (st, b) = s.post(
        &format!("/api/v1/devices/{DEV_URL}/tasks"),
        &json!({"kind": "GetParameterValues", "args": args}),
    );
    assert_eq!(st, 422, "{b}");
    assert!(b.to_string().contains("NoSuchThing"), "{b}");
    queue(
        &s,
        json!({"kind": "GetParameterValues", "args": args, "force": true}),
    );
    // Vendor extensions pass.
    queue(
        &s,
        json!({"kind": "GetParameterValues", "args": {"parameter_names": ["Device.X_ACME_Thing"]}}),
    );
}

/// Defect 5: `keelson config` printed passwords.
#[test]
fn keelson_config_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("k.toml");
    std::fs::write(
        &cfg,
        "database_url = \"postgres://keelson:db-secret-1@db/keelson\"\n[cwmp]\npassword = \"cpe-secret-2\"\nnonce_secret = \"nonce-secret-3\"\n[connection_request]\npassword = \"cr-secret-4\"\n",
    )
    .unwrap();
    let out = keelson()
        .args(["config", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for secret in [
        "db-secret-1",
        "cpe-secret-2",
        "nonce-secret-3",
        "cr-secret-4",
    ] {
        assert!(!text.contains(secret), "{secret} printed:\n{text}");
    }
    assert!(text.contains("***"), "{text}");
}

/// Defect 17: data files were created 0644, passwords stored in clear, server paths shown.
#[test]
fn files_and_secrets_at_rest() {
    use std::os::unix::fs::PermissionsExt;
    let s = Server::start(ServerOpts::default());
    drop(open_with(&s, &periodic()));
    let (st, f) = s.post_bytes("/api/v1/files?name=fw.bin", b"firmware bytes");
    assert_eq!(st, 201, "{f}");
    let (st, _) = s.put(
        &format!("/api/v1/devices/{DEV_URL}/credentials"),
        &json!({"cpe_username": "u", "cpe_password": "device-secret-pw", "cr_username": "cr", "cr_password": "cr-pw"}),
    );
    assert_eq!(st, 204);
    let data = s.dir().join("data");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    let mut checked = 0;
    for entry in walk(&data) {
        let m = mode(&entry);
        if entry.is_dir() {
            assert_eq!(m, 0o700, "{}", entry.display());
        } else {
            assert_eq!(m & 0o077, 0, "{} is {m:o}", entry.display());
            checked += 1;
            let bytes = std::fs::read(&entry).unwrap();
            assert!(
                !bytes.windows(16).any(|w| w == b"device-secret-pw"),
                "the CPE password is stored in clear in {}",
                entry.display()
            );
        }
    }
    assert!(checked >= 3, "database, WAL, file");
    let (_, files) = s.get("/api/v1/files");
    let text = files.to_string();
    assert!(
        !text.contains("stored_path") && !text.contains(data.to_str().unwrap()),
        "{text}"
    );
    let (_, d) = s.get(&format!("/api/v1/devices/{DEV_URL}"));
    assert!(!d.to_string().contains("cr-pw"), "{d}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

/// Defect 4: `/bulkdata` read the body before authenticating.
#[test]
fn bulk_data_authenticates_before_reading_the_body() {
    let s = Server::start(ServerOpts {
        cwmp_toml: "auth = \"digest\"\npassword = \"pw\"\n".into(),
        ..Default::default()
    });
    let mut c = Conn::open(s.http_port);
    // A 60 MB body announced, none sent: the 401 comes at once.
    c.write_raw(
        b"POST /bulkdata?oui=001A2B&pc=HGW-1000&sn=SN1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60000000\r\n\r\n",
    )
    .unwrap();
    let r = c.read_one();
    assert_eq!(r.status, 401);
    assert_eq!(r.header("Connection"), Some("close"));
}

/// A PUT of `body` to `path` with `headers`, on `c`.
fn put(c: &mut Conn, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut head = format!(
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    c.write_raw(&bytes).unwrap();
    c.read_one()
}

/// PUTs `body` to an upload URL with Digest credentials, after the 401 challenge an
/// unauthenticated PUT gets (a URL that is gone answers 404 at once, returned as it is).
fn put_with_digest(port: u16, path: &str, user: &str, pass: &str, body: &[u8]) -> Resp {
    let mut c = Conn::open(port);
    let r = put(&mut c, path, &[], b"");
    if r.status == 404 {
        return r;
    }
    assert_eq!(
        r.status,
        401,
        "an upload needs the CPE's credentials: {}",
        r.text()
    );
    let challenge = r.header("WWW-Authenticate").unwrap().to_string();
    let mut prompt = digest_auth::parse(&challenge).unwrap();
    let ctx = digest_auth::AuthContext::new_with_method(
        user,
        pass,
        path,
        None::<&[u8]>,
        digest_auth::HttpMethod::PUT,
    );
    let h = prompt.respond(&ctx).unwrap().to_header_string();
    let mut c = Conn::open(port);
    put(&mut c, path, &[("Authorization", h.as_str())], body)
}

/// Defect 16: uploads were accepted after the task was cancelled, repeatedly, up to 1 GiB
/// each, and without CPE authentication.
#[test]
fn one_authenticated_size_limited_upload_per_upload_task() {
    let s = Server::start(ServerOpts {
        cwmp_toml: "auth = \"digest\"\npassword = \"pw\"\n".into(),
        extra_toml: "[files]\nmax_upload_bytes = 1000\n".into(),
        ..Default::default()
    });
    let user = "001A2B-HGW%2D1000-SN0123456789";
    let session = |s: &Server| {
        let mut c = Conn::open(s.http_port);
        let r = c.post(&xml(), periodic().as_bytes());
        assert_eq!(r.status, 401);
        let h = digest_header(&r, user, "pw", "/");
        let mut headers = xml().to_vec();
        headers.push(("Authorization", h.as_str()));
        let env = envelope(&c.post(&headers, periodic().as_bytes()));
        assert!(matches!(env.body, Body::Rpc(Rpc::InformResponse(_))));
        c
    };
    drop(session(&s));
    let upload_task = |s: &Server| {
        queue(
            s,
            json!({"kind": "Upload", "args": {"file_type": "2 Vendor Log File"}}),
        )
    };
    // The CPE gets the Upload with a URL and credentials for our receiver.
    let first = upload_task(&s);
    let too_big = upload_task(&s);
    let mut c = session(&s);
    let mut urls = Vec::new();
    let mut req = envelope(&c.post(&[], b""));
    for i in 0..2 {
        let Body::Rpc(Rpc::Upload(u)) = &req.body else {
            panic!("expected Upload, got {:?}", req.body)
        };
        assert!(u.url.contains("/upload/"), "{}", u.url);
        assert!(!u.username.is_empty() && !u.password.is_empty());
        let path = format!("/{}", u.url.splitn(4, '/').nth(3).unwrap());
        let token = path.split('/').nth(3).unwrap_or_default();
        assert!(
            token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()),
            "a 128-bit token: {path}"
        );
        urls.push((path, u.username.clone(), u.password.clone()));
        let next = answer(
            &mut c,
            &req,
            Rpc::UploadResponse(codec::UploadResponse {
                status: 1,
                ..Default::default()
            }),
        );
        if i == 0 {
            req = envelope(&next);
        } else {
            assert_eq!(next.status, 204);
        }
    }
    let (path, u, p) = &urls[0];
    // Without credentials: 401 (inside put_with_digest); with them: stored.
    let r = put_with_digest(s.http_port, path, u, p, b"log line\n");
    assert_eq!(r.status, 201, "{}", r.text());
    // The same URL again: gone.
    let r = put_with_digest(s.http_port, path, u, p, b"again\n");
    assert_eq!(r.status, 404, "one upload per task");
    // Over files.max_upload_bytes: 413, and the token is still there for a proper retry.
    let (path2, u2, p2) = &urls[1];
    let r = put_with_digest(s.http_port, path2, u2, p2, &[b'x'; 2000]);
    assert_eq!(r.status, 413, "{}", r.text());
    // Cancelled: the URL is dead.
    let (st, _) = s.delete(&format!("/api/v1/tasks/{too_big}"));
    assert!((200..300).contains(&st), "{st}");
    let r = put_with_digest(s.http_port, path2, u2, p2, b"small");
    assert_eq!(r.status, 404, "a cancelled task takes no upload");
    let (_, files) = s.get(&format!("/api/v1/files?device={DEV_URL}"));
    assert_eq!(files["files"].as_array().map(Vec::len), Some(1), "{files}");
    assert_eq!(task(&s, first)["kind"], "Upload");
}

/// Defect 3: the canonical device id was computed twice, and the two bulk-data paths used
/// different copies. CWMP, HTTP bulk data and IPDR documents name each tricky identity
/// with one id.
#[test]
fn every_path_agrees_on_tricky_identities() {
    let s = Server::start(ServerOpts::default());
    let tricky = [
        ("00d09e", "Home Gateway", "SN 1"),
        ("00D09E", "", "100%"),
        ("00D09E", "HGW-1000", "a-b-c"),
        ("00D09E", "FAP/pBS3101/CA", "é_ü"),
        ("00D09E", "%2D", "%41"),
    ];
    let mut reports = Vec::new();
    for (i, (oui, pc, sn)) in tricky.iter().enumerate() {
        // CWMP.
        let body = periodic()
            .replace("<OUI>001A2B</OUI>", &format!("<OUI>{oui}</OUI>"))
            .replace(
                "<ProductClass>HGW-1000</ProductClass>",
                &format!("<ProductClass>{pc}</ProductClass>"),
            )
            .replace(
                "<SerialNumber>SN0123456789</SerialNumber>",
                &format!("<SerialNumber>{sn}</SerialNumber>"),
            );
        let mut c = open_with(&s, &body);
        assert_eq!(c.post(&[], b"").status, 204);
        // HTTP bulk data.
        let q = format!(
            "/bulkdata?oui={}&pc={}&sn={}",
            ids::url_segment(oui),
            ids::url_segment(pc),
            ids::url_segment(sn)
        );
        let r = Conn::open(s.http_port).post_to(
            &q,
            &[
                ("Content-Type", "application/json"),
                ("BBF-Report-Format", "NameValuePair"),
            ],
            br#"{"Report":[{"CollectionTime":1700000000,"Device.X_Test.Http":1}]}"#,
        );
        assert_eq!(r.status, 204, "{q}: {}", r.text());
        reports.push(ipdr::tr232::BulkDataReport {
            creation_time_ms: 1_700_000_000_000 + i as u64,
            oui: oui.to_string(),
            product_class: pc.to_string(),
            serial_number: sn.to_string(),
            suspect: false,
            bulk_data: vec![("Device.X_Test.Ipdr".into(), "2".into())],
        });
    }
    // IPDR/XML.
    let doc = ipdr::doc::encode_xml_tr232("doc-tricky-ids", "tricky", 1_700_000_100_000, &reports);
    let (st, v) = s.post_bytes("/api/v1/ipdr/documents", doc.as_bytes());
    assert_eq!(st, 200, "{v}");
    let (_, d) = s.get("/api/v1/devices?limit=100");
    let listed: std::collections::BTreeSet<String> = d["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    let expected: std::collections::BTreeSet<String> = tricky
        .iter()
        .map(|(o, p, n)| ids::canonical_device_id(o, p, n))
        .collect();
    assert_eq!(listed, expected, "one device per identity");
    for id in &expected {
        let (_, v) = s.get(&format!(
            "/api/v1/bulkdata/samples?device={}",
            ids::url_segment(id)
        ));
        let paths: std::collections::BTreeSet<&str> = v["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["path"].as_str().unwrap())
            .collect();
        assert_eq!(
            paths,
            ["Device.X_Test.Http", "Device.X_Test.Ipdr"].into(),
            "both bulk-data paths reached {id}: {v}"
        );
    }
}

/// Defect 4: an IPDR document posted to `/bulkdata` could name any device.
#[test]
fn a_device_posts_ipdr_documents_only_about_itself() {
    let s = Server::start(ServerOpts {
        cwmp_toml: "auth = \"digest\"\npassword = \"pw\"\n".into(),
        ..Default::default()
    });
    let user = "001A2B-HGW%2D1000-SN0123456789";
    let q = "/bulkdata?oui=001A2B&pc=HGW-1000&sn=SN0123456789";
    let report = |sn: &str| ipdr::tr232::BulkDataReport {
        creation_time_ms: 1_700_000_000_000,
        oui: "001A2B".into(),
        product_class: "HGW-1000".into(),
        serial_number: sn.into(),
        suspect: false,
        bulk_data: vec![("Device.DeviceInfo.UpTime".into(), "1".into())],
    };
    let post = |doc: &str| {
        let mut c = Conn::open(s.http_port);
        let ct = [("Content-Type", "application/xml")];
        let r = c.post_to(q, &ct, doc.as_bytes());
        assert_eq!(r.status, 401);
        let h = digest_header(&r, user, "pw", q);
        let mut c = Conn::open(s.http_port);
        c.post_to(
            q,
            &[
                ("Content-Type", "application/xml"),
                ("Authorization", h.as_str()),
            ],
            doc.as_bytes(),
        )
    };
    let other =
        ipdr::doc::encode_xml_tr232("doc-other", "x", 1_700_000_000_000, &[report("SN-VICTIM")]);
    let r = post(&other);
    assert_eq!(r.status, 403, "{}", r.text());
    let (_, v) = s.get("/api/v1/bulkdata/samples");
    assert_eq!(
        v["samples"].as_array().map(Vec::len),
        Some(0),
        "nothing stored: {v}"
    );
    let own =
        ipdr::doc::encode_xml_tr232("doc-own", "x", 1_700_000_000_000, &[report("SN0123456789")]);
    let r = post(&own);
    assert!(
        r.status == 200 || r.status == 204,
        "{} {}",
        r.status,
        r.text()
    );
}

/// Defect 18 (last part): GetParameterValues values that were never asked for were stored.
#[test]
fn only_asked_for_values_are_stored() {
    let s = Server::start(ServerOpts::default());
    drop(open_with(&s, &periodic()));
    let id = queue(
        &s,
        json!({"kind": "GetParameterValues", "args": {"parameter_names": ["Device.DeviceInfo.UpTime"]}}),
    );
    let mut c = open_with(&s, &periodic());
    let req = envelope(&c.post(&[], b""));
    let mut extra = gpv_response("Device.DeviceInfo.UpTime", "77");
    if let Rpc::GetParameterValuesResponse(r) = &mut extra {
        r.parameter_list.push(codec::ParameterValueStruct::new(
            "Device.ManagementServer.Username",
            "planted",
            "xsd:string",
        ));
    }
    assert_eq!(answer(&mut c, &req, extra).status, 204);
    assert_eq!(task(&s, id)["status"], "done");
    let (_, p) = s.get(&format!("/api/v1/devices/{DEV_URL}/parameters"));
    let text = p.to_string();
    assert!(text.contains("\"77\""), "the asked value is stored: {text}");
    assert!(!text.contains("planted"), "the unasked one is not: {text}");
}

/// Defect 24: a confirmed CancelTransfer left its Download task `waiting`.
#[test]
fn a_confirmed_cancel_transfer_closes_its_transfer() {
    let s = Server::start(ServerOpts::default());
    drop(open_with(&s, &periodic()));
    let dl = queue(
        &s,
        json!({"kind": "Download", "args": {"file_type": "1 Firmware Upgrade Image", "url": "http://198.51.100.1/fw.bin", "file_size": 10}}),
    );
    let mut c = open_with(&s, &periodic());
    let req = envelope(&c.post(&[], b""));
    let Body::Rpc(Rpc::Download(d)) = &req.body else {
        panic!("expected Download, got {:?}", req.body)
    };
    let key = d.command_key.clone();
    let r = answer(
        &mut c,
        &req,
        Rpc::DownloadResponse(codec::DownloadResponse {
            status: 1,
            ..Default::default()
        }),
    );
    assert_eq!(r.status, 204);
    assert_eq!(task(&s, dl)["status"], "waiting");
    let cancel = queue(
        &s,
        json!({"kind": "CancelTransfer", "args": {"command_key": key}}),
    );
    let mut c = open_with(&s, &periodic());
    let req = envelope(&c.post(&[], b""));
    assert!(matches!(req.body, Body::Rpc(Rpc::CancelTransfer(_))));
    let r = answer(
        &mut c,
        &req,
        Rpc::CancelTransferResponse(codec::CancelTransferResponse {}),
    );
    assert_eq!(r.status, 204);
    assert_eq!(task(&s, cancel)["status"], "done");
    let t = task(&s, dl);
    assert_eq!(t["status"], "cancelled", "{t}");
}
