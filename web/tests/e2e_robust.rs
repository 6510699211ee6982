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

#[test]
fn impossible_retention_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("k.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = {:?}\n[cwmp]\nhttp_listen = \"127.0.0.1:{}\"\nhttps_listen = \"\"\n[nbi]\nlisten = \"127.0.0.1:{}\"\n[ipdr]\nenabled = false\n[bulkdata]\nretention_days = 4294967295\n",
            dir.path().join("data"),
            free_port(),
            free_port()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(bin())
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success(), "serve must refuse to start");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bulkdata.retention_days"), "{err}");
}
