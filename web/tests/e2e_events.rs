//! Events for OSS systems end to end: a `keelson sim` device against the real server, a
//! webhook receiver on loopback (first down, then up), HMAC signatures checked, and the
//! server-sent-events stream filtered by the subscriber's scope.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{free_port, Proc, Server, ServerOpts};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};

const CPE_PASSWORD: &str = "cpe-secret";

fn server() -> Server {
    Server::start(ServerOpts {
        cwmp_toml: format!("auth = \"digest\"\npassword = \"{CPE_PASSWORD}\"\n"),
        extra_toml: "[connection_request]\nusername = \"keelson\"\npassword = \"keelson\"\nmin_interval_secs = 0\n\
                     [webhooks]\nretry_base_secs = 1\nretry_max_secs = 1\n"
            .into(),
        ..Default::default()
    })
}

fn sim(s: &Server) -> Proc {
    let args: Vec<String> = [
        "sim",
        "--acs-url",
        &s.acs_url(false),
        "--devices",
        "1",
        "--serial-prefix",
        "EV",
        "--password",
        CPE_PASSWORD,
        "--periodic-interval",
        "3600",
        "--retry-scale",
        "0.01",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    Proc::spawn("keelson sim", &args, s.dir().join("sim.log"), &[])
}

const DEV: &str = "02CAFE-SimHGW-EV000001";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Got {
    headers: Vec<(String, String)>,
    body: String,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A webhook receiver on `port`: records every request and answers 204.
fn receiver(port: u16) -> Arc<Mutex<Vec<Got>>> {
    let got: Arc<Mutex<Vec<Got>>> = Arc::default();
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let g = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let g = g.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut headers = Vec::new();
                    loop {
                        let mut h = String::new();
                        r.read_line(&mut h).unwrap();
                        let h = h.trim_end().to_string();
                        if h.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            headers.push((k.trim().to_string(), v.trim().to_string()));
                        }
                    }
                    let len: usize = headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                        .map(|(_, v)| v.parse().unwrap())
                        .unwrap_or(0);
                    let mut body = vec![0u8; len];
                    r.read_exact(&mut body).unwrap();
                    g.lock().unwrap().push(Got {
                        headers,
                        body: String::from_utf8(body).unwrap(),
                    });
                    conn.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                        .unwrap();
                }
            });
        }
    });
    got
}

fn verify(secret: &str, g: &Got) {
    let ts = g.header("X-Keelson-Timestamp").expect("a timestamp");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{ts}.{}", g.body).as_bytes());
    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(
        g.header("X-Keelson-Signature"),
        Some(want.as_str()),
        "{g:?}"
    );
}

#[test]
fn webhooks_are_signed_and_reach_a_receiver_that_comes_back() {
    let s = server();
    let port = free_port();
    let (st, h) = s.post(
        "/api/v1/webhooks",
        &json!({"name": "oss", "url": format!("http://127.0.0.1:{port}/hook"),
                "events": ["device.registered", "device.boot", "device.bootstrap", "task.completed", "task.faulted"]}),
    );
    assert_eq!(st, 201, "{h}");
    let hook = h["webhook"]["id"].as_str().unwrap().to_string();
    let secret = h["secret"].as_str().unwrap().to_string();
    assert!(
        !h["webhook"].to_string().contains(&secret),
        "the secret only once, apart"
    );
    // Bad subscriptions.
    for (url, events) in [
        ("ftp://127.0.0.1/x", json!([])),
        ("javascript:alert(1)", json!([])),
        ("http://127.0.0.1:1/x", json!(["device.exploded"])),
    ] {
        let (st, v) = s.post(
            "/api/v1/webhooks",
            &json!({"name": "bad", "url": url, "events": events}),
        );
        assert_eq!(st, 422, "{url}: {v}");
    }

    // The device boots while the receiver is down; a task completes, another faults.
    let _sim = sim(&s);
    s.wait_for("the device", Duration::from_secs(30), |s| {
        (s.get(&format!("/api/v1/devices/{DEV}")).0 == 200).then_some(())
    });
    let (st, t) = s.post(
        &format!("/api/v1/devices/{DEV}/tasks?connection_request=true&wait=20"),
        &json!({"kind": "GetParameterValues", "args": {"parameter_names": ["Device.DeviceInfo.SoftwareVersion"]}}),
    );
    assert_eq!(st, 200, "{t}");
    assert_eq!(t["task"]["status"], "done", "{t}");
    let done_id = t["task"]["id"].as_i64().unwrap();
    let (st, t) = s.post(
        &format!("/api/v1/devices/{DEV}/tasks?connection_request=true&wait=20"),
        &json!({"kind": "GetParameterValues", "args": {"parameter_names": ["Device.NoSuchThing."]}, "max_attempts": 1, "force": true}),
    );
    assert_eq!(st, 200, "{t}");
    assert_eq!(t["task"]["status"], "fault", "{t}");
    let fault_id = t["task"]["id"].as_i64().unwrap();

    // Deliveries are pending and have been tried (the receiver is down).
    let pending = s.wait_for("failed attempts", Duration::from_secs(30), |s| {
        let (_, d) = s.get(&format!("/api/v1/webhooks/{hook}/deliveries"));
        let list = d["deliveries"].as_array().cloned().unwrap_or_default();
        (list.len() >= 5
            && list
                .iter()
                .all(|d| d["status"] == "pending" && d["attempts"].as_i64() >= Some(1)))
        .then_some(list)
    });
    assert!(
        pending.iter().all(|d| d["last_error"].is_string()),
        "{pending:?}"
    );

    // The receiver comes back: everything arrives, signed.
    let got = receiver(port);
    let all = s.wait_for("the deliveries", Duration::from_secs(30), |_| {
        let g = got.lock().unwrap().clone();
        let kinds: Vec<String> = g
            .iter()
            .map(|g| g.header("X-Keelson-Event").unwrap_or("").to_string())
            .collect();
        let want = [
            "device.registered",
            "device.bootstrap",
            "device.boot",
            "task.completed",
            "task.faulted",
        ];
        want.iter()
            .all(|w| kinds.iter().any(|k| k == w))
            .then_some(g)
    });
    for g in &all {
        verify(&secret, g);
        let v: Value = serde_json::from_str(&g.body).unwrap();
        assert_eq!(v["device"], DEV, "{v}");
        assert_eq!(v["type"], g.header("X-Keelson-Event").unwrap());
    }
    let task_of = |kind: &str| -> Value {
        let g = all
            .iter()
            .find(|g| g.header("X-Keelson-Event") == Some(kind))
            .unwrap();
        serde_json::from_str::<Value>(&g.body).unwrap()["data"].clone()
    };
    assert_eq!(task_of("task.completed")["task"], done_id);
    assert_eq!(task_of("task.faulted")["task"], fault_id);
    assert_eq!(task_of("task.faulted")["fault_code"], 9005);
    s.wait_for("delivery state", Duration::from_secs(10), |s| {
        let (_, d) = s.get(&format!(
            "/api/v1/webhooks/{hook}/deliveries?status=delivered"
        ));
        (d["deliveries"].as_array().map_or(0, Vec::len) >= 5).then_some(())
    });
    let (_, m) = s.get("/api/v1/webhooks");
    assert_eq!(m["webhooks"].as_array().unwrap().len(), 1);
    let (st, _) = s.delete(&format!("/api/v1/webhooks/{hook}"));
    assert_eq!(st, 204);
}

/// Reads server-sent events from `/api/v1/events` until `n` events arrived.
fn read_events(port: u16, token: &str, query: &str, n: usize, timeout: Duration) -> Vec<Value> {
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(timeout)).unwrap();
    write!(
        c,
        "GET /api/v1/events{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(c);
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    assert!(status.contains(" 200 "), "{status}");
    let mut out = Vec::new();
    let mut line = String::new();
    while out.len() < n {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        // Chunked framing lines are not `data:` lines; event lines are.
        if let Some(d) = line.trim_end().strip_prefix("data: ") {
            out.push(serde_json::from_str(d).unwrap());
        }
    }
    out
}

#[test]
fn the_event_stream_carries_what_the_subscriber_may_see() {
    let s = Server::start(ServerOpts::default());
    // A role scoped to ProductClass GWX.
    let (st, _) = s.post(
        "/api/v1/roles",
        &json!({"name": "gwx", "permissions": ["devices:read"], "scope": {"product_class": ["GWX"]}}),
    );
    assert_eq!(st, 201);
    let scoped = s.token_for("gwx", "gwx", None);
    let (st, v) = s.call_as(Some(&scoped), "GET", "/api/v1/events?types=nonsense", None);
    assert_eq!(st, 422, "{v}");
    let port = s.nbi_port;
    let (tok_all, tok_gwx) = (s.token.clone(), scoped.clone());
    let all = std::thread::spawn(move || {
        read_events(port, &tok_all, "?types=inform", 2, Duration::from_secs(20))
    });
    let mine =
        std::thread::spawn(move || read_events(port, &tok_gwx, "", 2, Duration::from_secs(8)));
    std::thread::sleep(Duration::from_millis(700));
    let inform = include_str!("../../acs/tests/fixtures/checklist/8.1-inform.xml");
    for pc in ["GWY", "GWX"] {
        let body = inform.replace("HGW-1000", pc);
        let mut c = common::wire::Conn::open(s.http_port);
        common::envelope(&c.post(&common::xml(), body.as_bytes()));
        assert_eq!(c.post(&[], b"").status, 204);
    }
    let all = all.join().unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all.iter().all(|e| e["type"] == "inform"));
    let mine = mine.join().unwrap();
    assert!(!mine.is_empty(), "the GWX device's events");
    assert!(
        mine.iter()
            .all(|e| e["device"].as_str().unwrap().contains("GWX")),
        "only the GWX device: {mine:?}"
    );
}
