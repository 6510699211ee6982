//! HTTP bulk data (TR-069 Annex N) against the real server: JSON and CSV reports are stored
//! (2xx only after commit) and queryable; a bad report gets 4xx and stores nothing.

mod common;

use common::wire::Conn;
use common::*;

const Q: &str = "/bulkdata?oui=001a2b&pc=HGW-1000&sn=SN0123456789";
const DEV: &str = "001A2B-HGW%2D1000-SN0123456789";

fn post(s: &Server, headers: &[(&str, &str)], body: &[u8]) -> u16 {
    let mut c = Conn::open(s.http_port);
    c.post_to(Q, headers, body).status
}

fn samples(s: &Server, extra: &str) -> Vec<serde_json::Value> {
    let (st, v) = s.get(&format!(
        "/api/v1/bulkdata/samples?device=001A2B-HGW%252D1000-SN0123456789{extra}"
    ));
    assert_eq!(st, 200, "{v}");
    v["samples"].as_array().unwrap().clone()
}

#[test]
fn json_and_csv_reports_are_stored_and_bad_ones_refused() {
    let s = Server::start(ServerOpts::default());
    let json = br#"{"Report":[
        {"CollectionTime":1700000000,"Device.DeviceInfo.UpTime":3600,"Device.WiFi.Radio.1.Enable":true},
        {"CollectionTime":1700000300,"Device.DeviceInfo.UpTime":3900}
    ]}"#;
    let st = post(
        &s,
        &[
            ("Content-Type", "application/json; charset=UTF-8"),
            ("BBF-Report-Format", "\"NameValuePair\""),
        ],
        json,
    );
    assert_eq!(st, 204);
    let all = samples(&s, "");
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|x| x["device_id"] == DEV), "{all:?}");
    let up = samples(&s, "&path=Device.DeviceInfo.UpTime");
    assert_eq!(up.len(), 2);
    assert_eq!(up[0]["value"], "3900", "newest first");
    let ranged = samples(&s, "&from=2023-11-14T22:14:00Z");
    assert_eq!(ranged.len(), 1);

    let csv = "ReportTimestamp,ParameterName,ParameterValue,ParameterType\r\n\
        1700000600,Device.IP.Interface.1.Stats.BytesSent,12345,unsignedLong\r\n";
    let st = post(
        &s,
        &[
            ("Content-Type", "text/csv; charset=UTF-8; header=present"),
            ("BBF-Report-Format", "ParameterPerRow"),
        ],
        csv.as_bytes(),
    );
    assert_eq!(st, 204);
    assert_eq!(samples(&s, "&path=Device.IP.").len(), 1, "subtree query");

    // Bad reports: 4xx, nothing stored.
    let before = samples(&s, "").len();
    for (ct, fmt, body, want) in [
        ("application/json", "NameValuePair", &b"{broken"[..], 400),
        ("text/csv", "ParameterPerRow", &b"a,b\r\n1,2\r\n"[..], 400),
        ("text/plain", "NameValuePair", &b"x"[..], 415),
    ] {
        let st = post(
            &s,
            &[("Content-Type", ct), ("BBF-Report-Format", fmt)],
            body,
        );
        assert_eq!(st, want, "{ct} {fmt}");
    }
    let mut c = Conn::open(s.http_port);
    assert_eq!(
        c.post_to(
            "/bulkdata?pc=x",
            &[("Content-Type", "application/json")],
            json
        )
        .status,
        400
    );
    assert_eq!(samples(&s, "").len(), before, "bad reports stored nothing");
}

#[test]
fn bulk_data_needs_cpe_credentials_when_auth_is_on() {
    let s = Server::start(ServerOpts {
        cwmp_toml: "auth = \"digest\"\npassword = \"pw\"\n".into(),
        ..Default::default()
    });
    let body = br#"{"Report":[{"Device.DeviceInfo.UpTime":1}]}"#;
    let mut c = Conn::open(s.http_port);
    let r = c.post_to(Q, &[("Content-Type", "application/json")], body);
    assert_eq!(r.status, 401);
    // Answered before the body was read: the connection closes.
    assert_eq!(r.header("Connection"), Some("close"));
    let challenge = r.header("WWW-Authenticate").unwrap().to_string();
    let mut prompt = digest_auth::parse(&challenge).unwrap();
    let ctx = digest_auth::AuthContext::new_post(
        "001A2B-HGW%2D1000-SN0123456789",
        "pw",
        Q,
        None::<&[u8]>,
    );
    let auth = prompt.respond(&ctx).unwrap().to_header_string();
    let mut c = Conn::open(s.http_port);
    let r = c.post_to(
        Q,
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
        ],
        body,
    );
    assert_eq!(r.status, 204);
    assert_eq!(samples(&s, "").len(), 1);
}

/// IPDR/SP end to end: `keelson sim ipdr` streams TR-232 records over TCP to the real
/// collector in `keelson serve`; every record is stored once and linked to its device.
#[test]
fn ipdr_stream_over_tcp_is_stored_once() {
    let s = Server::start(ServerOpts::default());
    let out = keelson()
        .args([
            "sim",
            "ipdr",
            "--collector",
            &format!("127.0.0.1:{}", s.ipdr_port),
            "--records",
            "600",
            "--devices",
            "3",
            "--pairs",
            "5",
            "--serial-prefix",
            "IPX",
            "--json",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(report["records_acked"], 600);
    // Acknowledged means committed: the samples are there now.
    let (_, v) = s.get("/api/v1/bulkdata/samples?limit=10000");
    let samples = v["samples"].as_array().unwrap();
    assert_eq!(
        samples.len(),
        600 * 5,
        "every record's pairs stored exactly once"
    );
    let devices: std::collections::BTreeSet<&str> = samples
        .iter()
        .map(|x| x["device_id"].as_str().unwrap())
        .collect();
    assert_eq!(devices.len(), 3, "{devices:?}");
    assert!(
        devices.iter().all(|d| d.starts_with("02CAFE-SimHGW-IPX")),
        "{devices:?}"
    );
    let (_, e) = s.get("/api/v1/ipdr/exporters");
    assert!(!e["exporters"].as_array().unwrap().is_empty(), "{e}");
}
