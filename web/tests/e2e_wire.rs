//! The CWMP endpoint on the wire, against the real `keelson serve`: bad input gets the status or
//! SOAP fault of the checklist and changes no stored state; authentication; the empty-POST
//! variants; overload; and replay of real CPE captures (Huawei, Baicells).

mod common;

use std::io::Write;

use acs::codec::{self, Body, Rpc};
use common::wire::{Conn, Resp};
use common::*;
use serde_json::json;

const INFORM: &str = include_str!("../../acs/tests/fixtures/checklist/8.1-inform.xml");
/// The device id as it goes into a URL (ids contain `%`).
const DEV_URL: &str = "001A2B-HGW%252D1000-SN0123456789";

fn device_count(s: &Server) -> i64 {
    s.get("/api/v1/devices").1["total"].as_i64().unwrap()
}

fn event_count(s: &Server) -> usize {
    s.get(&format!("/api/v1/devices/{DEV_URL}/events?limit=1000"))
        .1["events"]
        .as_array()
        .map_or(0, |a| a.len())
}

fn inform_ok(s: &Server) -> Conn {
    let mut c = Conn::open(s.http_port);
    let r = c.post(&xml(), INFORM.as_bytes());
    let env = envelope(&r);
    assert!(matches!(env.body, Body::Rpc(Rpc::InformResponse(_))));
    c
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let s = Server::start(ServerOpts {
        cwmp_toml: "max_body_bytes = 65536\n".into(),
        ..Default::default()
    });
    let mut c = Conn::open(s.http_port);
    let r = c.request("GET", "/");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("POST"));

    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "malformed XML",
            b"<soap-env:Envelope><unclosed>".to_vec(),
            400,
        ),
        (
            "a DTD with an entity",
            format!(
                "<?xml version=\"1.0\"?><!DOCTYPE lol [<!ENTITY a \"aaaa\">]>{}",
                INFORM.split_once("?>").unwrap().1
            )
            .into_bytes(),
            400,
        ),
        (
            "a wrong cwmp namespace",
            INFORM
                .replace("urn:dslforum-org:cwmp-1-2", "urn:example:cwmp")
                .into_bytes(),
            400,
        ),
        (
            "a SOAP 1.2 envelope",
            INFORM
                .replace(
                    "http://schemas.xmlsoap.org/soap/envelope/",
                    "http://www.w3.org/2003/05/soap-envelope",
                )
                .into_bytes(),
            400,
        ),
        (
            "a body over the limit",
            {
                let mut b = INFORM.as_bytes().to_vec();
                b.extend(std::iter::repeat_n(b' ', 70_000));
                b
            },
            413,
        ),
        (
            "a request that is not an Inform",
            INFORM
                .replace("cwmp:Inform>", "cwmp:GetRPCMethods>")
                .into_bytes(),
            400,
        ),
    ];
    for (what, body, status) in cases {
        let mut c = Conn::open(s.http_port);
        let r = c.post(&xml(), &body);
        assert_eq!(r.status, status, "{what}: {}", r.text());
        assert_eq!(r.header("Connection"), Some("close"), "{what}");
    }
    let mut c = Conn::open(s.http_port);
    let r = c.post(&[], b"");
    assert_eq!(r.status, 400, "empty POST outside a session");
    let mut c = Conn::open(s.http_port);
    let r = c.post(&[("Content-Encoding", "br")], INFORM.as_bytes());
    assert_eq!(r.status, 415);
    assert_eq!(device_count(&s), 0, "nothing was stored from bad messages");
    let log = s.proc.log_text();
    assert!(
        log.contains("malformed CWMP message"),
        "bad input is logged"
    );

    // A good Inform, then protocol errors inside the session.
    let mut c = inform_ok(&s);
    assert_eq!(device_count(&s), 1);
    assert_eq!(event_count(&s), 2);
    let unknown = INFORM
        .split_once("<cwmp:Inform>")
        .map(|(head, rest)| {
            format!(
                "{head}<cwmp:X_ACME_Frobnicate><Level>3</Level></cwmp:X_ACME_Frobnicate>{}",
                rest.split_once("</cwmp:Inform>").unwrap().1
            )
        })
        .unwrap();
    let env = envelope(&c.post(&xml(), unknown.as_bytes()));
    let Body::Fault(f) = env.body else {
        panic!("unknown method must get a SOAP fault")
    };
    assert_eq!(f.detail.fault_code, 8000);
    // A second Inform in an open session: the CPE started over (it rebooted or gave up on
    // the session), so the old session ends and the Inform starts a new one.
    let env = envelope(&c.post(&xml(), INFORM.as_bytes()));
    assert!(
        matches!(env.body, Body::Rpc(Rpc::InformResponse(_))),
        "a new Inform in an open session starts a new one"
    );
    assert_eq!(event_count(&s), 4, "the new Inform's events are stored");
    assert_eq!(c.post(&[], b"").status, 204);

    // A response with the wrong cwmp:ID: the task records the problem, the values are not kept.
    let mut c = inform_ok(&s);
    let (st, _) = s.post(
        &format!("/api/v1/devices/{DEV_URL}/tasks"),
        &json!({"kind": "GetParameterValues", "args": {"parameter_names": ["Device.DeviceInfo.UpTime"]}}),
    );
    assert_eq!(st, 201);
    let req = envelope(&c.post(&[], b""));
    assert!(
        matches!(req.body, Body::Rpc(Rpc::GetParameterValues(_))),
        "queued task runs after the Inform"
    );
    let resp = codec::Envelope {
        ns: req.ns.clone(),
        header: codec::Header {
            id: Some("definitely-not-ours".into()),
            ..Default::default()
        },
        body: Body::Rpc(Rpc::GetParameterValuesResponse(
            codec::GetParameterValuesResponse {
                parameter_list: vec![codec::ParameterValueStruct::new(
                    "Device.DeviceInfo.UpTime",
                    "42",
                    "xsd:unsignedInt",
                )],
            },
        )),
    };
    let r = c.post(
        &xml(),
        &codec::serialize(&resp, &codec::OutputStyle::default()),
    );
    assert_eq!(r.status, 204);
    let (_, tasks) = s.get(&format!("/api/v1/tasks?device={DEV_URL}"));
    let t = &tasks["tasks"][0];
    assert!(
        t["fault_string"].as_str().unwrap().contains("cwmp:ID"),
        "{t}"
    );
    let (_, p) = s.get(&format!(
        "/api/v1/devices/{DEV_URL}/parameters?prefix=Device.DeviceInfo.UpTime"
    ));
    assert_eq!(
        p["parameters"].as_array().unwrap().len(),
        0,
        "values from a mismatched response are not stored"
    );

    // One session per device: a second connection gets 503 while the first is live.
    let _a = inform_ok(&s);
    let mut b = Conn::open(s.http_port);
    let r = b.post(&xml(), INFORM.as_bytes());
    assert_eq!(r.status, 503);
    assert!(r.header("Retry-After").is_some());
}

fn digest_header(r: &Resp, user: &str, pass: &str) -> String {
    let challenge = r.header("WWW-Authenticate").expect("a Digest challenge");
    let mut prompt = digest_auth::parse(challenge).unwrap();
    let ctx = digest_auth::AuthContext::new_post(user, pass, "/", None::<&[u8]>);
    prompt.respond(&ctx).unwrap().to_header_string()
}

#[test]
fn digest_authentication_and_per_device_credentials() {
    let s = Server::start(ServerOpts {
        cwmp_toml: "auth = \"digest\"\npassword = \"global-pw\"\n".into(),
        ..Default::default()
    });
    let user = "001A2B-HGW%2D1000-SN0123456789";
    let mut c = Conn::open(s.http_port);
    let r = c.post(&xml(), INFORM.as_bytes());
    assert_eq!(r.status, 401);
    assert!(r.header("WWW-Authenticate").unwrap().starts_with("Digest "));
    let bad = digest_header(&r, user, "wrong");
    let r2 = c.post(&[("Authorization", &bad)], INFORM.as_bytes());
    assert_eq!(r2.status, 401, "wrong password");
    assert!(r2.body.is_empty());
    assert_eq!(device_count(&s), 0);

    let good = digest_header(&r2, user, "global-pw");
    let env = envelope(&c.post(&[("Authorization", &good)], INFORM.as_bytes()));
    assert!(matches!(env.body, Body::Rpc(Rpc::InformResponse(_))));
    // The connection is authenticated for the rest of the session.
    assert_eq!(c.post(&[], b"").status, 204);

    // Per-device credentials override the global ones.
    let (st, _) = s.put(
        &format!("/api/v1/devices/{DEV_URL}/credentials"),
        &json!({"cpe_username": user, "cpe_password": "device-pw"}),
    );
    assert_eq!(st, 204);
    let mut c = Conn::open(s.http_port);
    let r = c.post(&xml(), INFORM.as_bytes());
    let old = digest_header(&r, user, "global-pw");
    let r = c.post(&[("Authorization", &old)], INFORM.as_bytes());
    assert_eq!(
        r.status, 401,
        "the global password no longer works for this device"
    );
    let new = digest_header(&r, user, "device-pw");
    let env = envelope(&c.post(&[("Authorization", &new)], INFORM.as_bytes()));
    assert!(matches!(env.body, Body::Rpc(Rpc::InformResponse(_))));
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn empty_post_variants_and_encodings() {
    let s = Server::start(ServerOpts::default());
    // A gzip-compressed Inform is accepted.
    let mut c = Conn::open(s.http_port);
    let mut h = xml().to_vec();
    h.push(("Content-Encoding", "gzip"));
    let env = envelope(&c.post(&h, &gzip(INFORM.as_bytes())));
    assert!(matches!(env.body, Body::Rpc(Rpc::InformResponse(_))));
    assert_eq!(c.post(&[], b"").status, 204);

    type Variant = Box<dyn Fn(&mut Conn) -> Resp>;
    let variants: Vec<(&str, Variant)> = vec![
        ("spec form", Box::new(|c: &mut Conn| c.post(&[], b""))),
        (
            "gSOAP headers",
            Box::new(|c: &mut Conn| c.post(&xml(), b"")),
        ),
        (
            "zero-length chunked",
            Box::new(|c: &mut Conn| c.post_chunked(&[], b"")),
        ),
        (
            "whitespace only",
            Box::new(|c: &mut Conn| c.post(&xml(), b" \r\n\t\r\n")),
        ),
        (
            "gzip of nothing",
            Box::new(|c: &mut Conn| c.post(&[("Content-Encoding", "gzip")], &gzip(b""))),
        ),
    ];
    for (what, send) in variants {
        let mut c = inform_ok(&s);
        let r = send(&mut c);
        assert_eq!(r.status, 204, "{what}");
        // actix-http never writes Content-Length on a 204 (RFC 7230 §3.3.2 forbids it);
        // the body is empty by definition.
        assert!(
            matches!(r.header("Content-Length"), None | Some("0")),
            "{what}"
        );
        assert!(r.body.is_empty(), "{what}");
        assert!(r.header("Content-Type").is_none(), "{what}");
    }
    // A chunked Inform body works too.
    let mut c = Conn::open(s.http_port);
    let env = envelope(&c.post_chunked(&xml(), INFORM.as_bytes()));
    assert!(matches!(env.body, Body::Rpc(Rpc::InformResponse(_))));
    assert_eq!(env.header.use_cwmp_version.as_deref(), Some("1.4"));
    assert_eq!(env.header.id.as_deref(), Some("cpe-1001"));
}

#[test]
fn overload_answers_503_before_any_session() {
    let s = Server::start(ServerOpts {
        cwmp_toml: "max_sessions = 0\nretry_after_secs = 17\n".into(),
        ..Default::default()
    });
    let mut c = Conn::open(s.http_port);
    let r = c.post(&xml(), INFORM.as_bytes());
    assert_eq!(r.status, 503);
    assert_eq!(r.header("Retry-After"), Some("17"));
    assert_eq!(device_count(&s), 0);
}

/// Extracts the HTTP bodies of a tshark "follow tcp,ascii" dump: each direction's data comes in
/// numbered chunks; bodies start after a blank line following an HTTP head.
fn follow_bodies(text: &str) -> Vec<String> {
    let mut data = String::new();
    let mut in_data = false;
    for line in text.lines() {
        if line.starts_with("====")
            || line.starts_with("Follow:")
            || line.starts_with("Filter:")
            || line.starts_with("Node ")
        {
            continue;
        }
        // Chunk headers: a byte count, tab-indented for one direction, flush for the other.
        let t = line.trim();
        if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) {
            in_data = true;
            continue;
        }
        // Chunk boundaries fall anywhere, even inside a tag: join without separators (line
        // breaks between XML elements carry nothing).
        if in_data {
            data.push_str(line);
        }
    }
    // Envelopes with any prefix (`soap-env`, `soap11env`, ...), start tag to matching end tag.
    let mut out = Vec::new();
    let mut rest = data.as_str();
    while let Some(pos) = rest.find(":Envelope") {
        let open = rest[..pos].rfind('<').unwrap();
        let prefix = &rest[open + 1..pos];
        if prefix.starts_with('/') || prefix.contains(char::is_whitespace) {
            rest = &rest[pos + 9..];
            continue;
        }
        let close = format!("</{prefix}:Envelope>");
        match rest[pos..].find(&close) {
            Some(end) => {
                let stop = pos + end + close.len();
                out.push(rest[open..stop].to_string());
                rest = &rest[stop..];
            }
            None => break,
        }
    }
    out
}

/// Queues a task matching a captured CPE response, lets the session send it, and answers with
/// the captured bytes (only the cwmp:ID rewritten to ours).
fn replay_response(s: &Server, c: &mut Conn, dev: &str, raw: &str, first: &mut bool) -> String {
    let env =
        codec::parse(raw.as_bytes(), &codec::Limits::default()).expect("golden response parses");
    let (kind, args) = match &env.body {
        // Forced: real CPEs report names their data model version does not have (the
        // Huawei's WPS.PinPhrase), which an unforced GetParameterValues refuses with 422.
        Body::Rpc(Rpc::GetParameterValuesResponse(r)) => (
            "GetParameterValues",
            json!({"parameter_names": r.parameter_list.iter().map(|p| p.name.clone()).collect::<Vec<_>>()}),
        ),
        Body::Rpc(Rpc::GetParameterNamesResponse(_)) => (
            "GetParameterNames",
            json!({"parameter_path": "", "next_level": false}),
        ),
        Body::Rpc(Rpc::SetParameterValuesResponse(_)) => (
            "SetParameterValues",
            json!({"values": {"Device.ManagementServer.PeriodicInformInterval": "300"}}),
        ),
        other => panic!("unexpected golden response {other:?}"),
    };
    let (st, t) = s.post(
        &format!("/api/v1/devices/{dev}/tasks"),
        &json!({"kind": kind, "args": args, "force": kind == "GetParameterValues"}),
    );
    assert_eq!(st, 201, "{t}");
    let req = if *first {
        *first = false;
        envelope(&c.post(&[], b""))
    } else {
        panic!("one task per round")
    };
    assert_eq!(req.body.as_rpc_name(), kind);
    let ours = req.header.id.clone().unwrap();
    let theirs = env.header.id.clone().unwrap_or_default();
    let patched = if theirs.is_empty() {
        raw.to_string()
    } else {
        raw.replacen(&format!(">{theirs}<"), &format!(">{ours}<"), 1)
    };
    let r = c.post(&xml(), patched.as_bytes());
    assert_eq!(r.status, 204, "{}", r.text());
    let id = t["task"]["id"].as_i64().unwrap();
    let (_, t) = s.get(&format!("/api/v1/tasks/{id}"));
    assert_eq!(t["task"]["status"], "done", "{t}");
    kind.to_string()
}

trait RpcName {
    fn as_rpc_name(&self) -> String;
}
impl RpcName for Body {
    fn as_rpc_name(&self) -> String {
        match self {
            Body::Rpc(r) => r.method_name().to_string(),
            Body::Fault(_) => "Fault".into(),
        }
    }
}

#[test]
fn real_cpe_captures_replay() {
    let Some(shared) = testkit::shared_or_skip("golden/cwmp", "CWMP golden captures replay")
        .and_then(|p| p.parent().and_then(|p| p.parent()).map(|p| p.to_path_buf()))
    else {
        return;
    };
    let s = Server::start(ServerOpts::default());

    // Huawei BM632w (TR-098, cwmp-1-0): the Inform, then every captured response.
    let dir = shared.join("golden/cwmp/huawei-bm632w");
    let load = |n: usize| -> String {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{n}.json"))).unwrap())
                .unwrap();
        v[1].as_str().unwrap().to_string()
    };
    let dev = "202BC1-BM632w-8KA8WA1151100043";
    let mut replayed = 0;
    for n in 2..=48 {
        let mut c = Conn::open(s.http_port);
        let env = envelope(&c.post(
            &[("Content-Type", "text/xml; charset=UTF-8")],
            load(0).as_bytes(),
        ));
        assert_eq!(
            env.ns, "urn:dslforum-org:cwmp-1-0",
            "answered in the CPE's namespace"
        );
        assert_eq!(env.header.id.as_deref(), Some("37"));
        assert_eq!(env.header.use_cwmp_version, None);
        let mut first = true;
        replay_response(&s, &mut c, dev, &load(n), &mut first);
        replayed += 1;
    }
    let (_, d) = s.get(&format!("/api/v1/devices/{dev}"));
    assert_eq!(d["device"]["root_object"], "InternetGatewayDevice.");
    assert!(
        d["parameters"].as_array().unwrap().len() > 100,
        "captured values stored"
    );

    // Baicells eNB (TR-181 FAPService, cwmp-1-0, odd IDs such as "null" and empty).
    let mut informs = 0;
    let enb = "48BF74-FAP%252FpBS31010%252FCA-1202000291213VB0009";
    for f in ["tcp-stream-0.txt", "tcp-stream-1.txt", "tcp-stream-2.txt"] {
        let text =
            std::fs::read_to_string(shared.join("golden/cwmp/baicells-enb").join(f)).unwrap();
        let bodies = follow_bodies(&text);
        assert!(!bodies.is_empty(), "{f}");
        let mut last_inform: Option<String> = None;
        for b in bodies {
            let env =
                codec::parse(b.as_bytes(), &codec::Limits::default()).expect("golden body parses");
            match &env.body {
                Body::Rpc(Rpc::Inform(_)) => {
                    let mut conn = Conn::open(s.http_port);
                    let reply = envelope(&conn.post(&xml(), b.as_bytes()));
                    assert_eq!(
                        reply.header.id, env.header.id,
                        "cwmp:ID echoed byte for byte"
                    );
                    assert_eq!(reply.ns, env.ns);
                    assert!(matches!(reply.body, Body::Rpc(Rpc::InformResponse(_))));
                    assert_eq!(conn.post(&[], b"").status, 204);
                    last_inform = Some(b.clone());
                    informs += 1;
                }
                Body::Rpc(r) if r.is_response() && r.method_name() != "InformResponse" => {
                    // Each captured response is replayed in a session of its own.
                    let inform = last_inform.as_ref().expect("response after an Inform");
                    let mut conn = Conn::open(s.http_port);
                    envelope(&conn.post(&xml(), inform.as_bytes()));
                    let mut first = true;
                    replay_response(&s, &mut conn, enb, &b, &mut first);
                    replayed += 1;
                }
                _ => {} // the other ACS's requests
            }
        }
    }
    let (_, d) = s.get(&format!("/api/v1/devices/{enb}"));
    assert_eq!(d["device"]["software_version"], "BaiBS_QRTB_2.8.15_Helium");
    assert_eq!(informs, 3);
    assert!(replayed >= 47 + 11, "replayed {replayed}");
}

/// A device whose HTTP connection-request URL is dead but which reported a UDP address gets
/// the Annex G datagram: three copies, HMAC-SHA1 signed with its CR password.
#[test]
fn udp_connection_request_when_http_fails() {
    use hmac::{Hmac, Mac};
    let s = Server::start(ServerOpts {
        extra_toml: "[connection_request]\nusername = \"cruser\"\npassword = \"crpass\"\nmin_interval_secs = 0\ntimeout_secs = 2\n".into(),
        ..Default::default()
    });
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let udp_addr = udp.local_addr().unwrap().to_string();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/cr", dead.local_addr().unwrap());
    drop(dead);
    let inform = INFORM
        .replace("http://192.0.2.10:7547/cr-4f2a", &dead_url)
        .replace(
            "</ParameterList>",
            &format!("<ParameterValueStruct><Name>Device.ManagementServer.UDPConnectionRequestAddress</Name><Value xsi:type=\"xsd:string\">{udp_addr}</Value></ParameterValueStruct></ParameterList>"),
        );
    let mut c = Conn::open(s.http_port);
    envelope(&c.post(&xml(), inform.as_bytes()));
    assert_eq!(c.post(&[], b"").status, 204);

    let (st, r) = s.post(
        &format!("/api/v1/devices/{DEV_URL}/connection-request"),
        &json!({}),
    );
    assert_eq!(st, 200);
    assert_eq!(r["result"], "udp_sent", "{r}");
    let mut seen = Vec::new();
    for _ in 0..3 {
        let mut buf = [0u8; 1500];
        let (n, _) = udp.recv_from(&mut buf).unwrap();
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(seen.iter().all(|m| m == &seen[0]), "three identical copies");
    let msg = &seen[0];
    assert!(
        msg.starts_with(&format!("GET http://{udp_addr}?ts=")),
        "{msg}"
    );
    let q: std::collections::HashMap<&str, &str> = msg
        .split_once('?')
        .unwrap()
        .1
        .split_once(' ')
        .unwrap()
        .0
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    assert_eq!(q["un"], "cruser");
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(b"crpass").unwrap();
    mac.update(format!("{}{}{}{}", q["ts"], q["id"], q["un"], q["cn"]).as_bytes());
    assert!(q["sig"].eq_ignore_ascii_case(&hex::encode(mac.finalize().into_bytes())));
}

/// An idle session is aborted after its timeout: the device can start a new one, and the task
/// whose response never came goes back to the queue.
#[test]
fn idle_session_times_out_and_its_task_is_retried() {
    let s = Server::start(ServerOpts {
        cwmp_toml: "session_timeout_secs = 1\n".into(),
        ..Default::default()
    });
    let inform = INFORM.replace(
        "<cwmp:SessionTimeout SOAP-ENV:mustUnderstand=\"0\">60</cwmp:SessionTimeout>",
        "",
    );
    let mut c = Conn::open(s.http_port);
    envelope(&c.post(&xml(), inform.as_bytes()));
    let (st, t) = s.post(
        &format!("/api/v1/devices/{DEV_URL}/tasks"),
        &json!({"kind": "GetParameterValues", "args": {"parameter_names": ["Device.DeviceInfo."]}}),
    );
    assert_eq!(st, 201);
    let id = t["task"]["id"].as_i64().unwrap();
    let req = envelope(&c.post(&[], b""));
    assert!(matches!(req.body, Body::Rpc(Rpc::GetParameterValues(_))));
    // The CPE goes silent. The sweeper aborts the session within timeout + one sweep.
    let t = s.wait_for(
        "the idle session's task back in the queue",
        std::time::Duration::from_secs(30),
        |s| {
            let (_, t) = s.get(&format!("/api/v1/tasks/{id}"));
            (t["task"]["status"] == "pending").then_some(t)
        },
    );
    assert_eq!(t["task"]["attempts"], 1);
    let mut c2 = Conn::open(s.http_port);
    let env = envelope(&c2.post(&xml(), inform.as_bytes()));
    assert!(
        matches!(env.body, Body::Rpc(Rpc::InformResponse(_))),
        "a new session is accepted"
    );
    let req = envelope(&c2.post(&[], b""));
    assert!(
        matches!(req.body, Body::Rpc(Rpc::GetParameterValues(_))),
        "the task runs again"
    );
}

/// SIGTERM stops `keelson serve` (gracefully, bounded) even with a session and a connection open.
#[test]
fn sigterm_stops_the_server() {
    let mut s = Server::start(ServerOpts::default());
    let _open = inform_ok(&s);
    // SAFETY: plain kill(2) on our own child's pid.
    let rc = unsafe { libc::kill(s.proc.child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(status) = s.proc.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running 20 s after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(s.proc.log_text().contains("stopped"));
}

/// Files uploaded through the NBI are served to CPEs with range requests (resumed downloads).
#[test]
fn file_server_serves_ranges() {
    let s = Server::start(ServerOpts::default());
    let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let (st, f) = s.post_bytes("/api/v1/files?name=fw.bin&version=1.2.3", &content);
    assert_eq!(st, 201, "{f}");
    let url = f["url"].as_str().unwrap();
    let path = &url[url.find("/files/").unwrap()..];
    let mut c = Conn::open(s.http_port);
    let r = c.request("GET", path);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, content);
    let r = c.request_with("GET", path, &[("Range", "bytes=1000-1999")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.header("Content-Range"), Some("bytes 1000-1999/100000"));
    assert_eq!(r.body, &content[1000..2000]);
    let r = c.request_with("GET", "/files/no-such-id/x.bin", &[]);
    assert_eq!(r.status, 404);
    // And the NBI lists and deletes it.
    let (_, list) = s.get("/api/v1/files");
    assert_eq!(list["files"].as_array().unwrap().len(), 1);
    let id = f["file"]["id"].as_str().unwrap();
    let (st, _) = s.delete(&format!("/api/v1/files/{id}"));
    assert_eq!(st, 204);
    let r = c.request("GET", path);
    assert_eq!(r.status, 404);
}

/// `keelson migrate` applies the embedded migrations once, then reports the database current.
#[test]
fn migrate_command() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        let out = keelson()
            .args(["migrate", "--data-dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        run().contains("applied"),
        "first run applies the migrations"
    );
    assert!(run().contains("up to date"));
    assert!(dir.path().join("keelson.db").exists());
}

/// With `client_ca` configured, a client certificate issued by that CA and naming the device
/// authenticates it without HTTP authentication; a certificate naming another device does not.
#[test]
fn client_certificate_authenticates_its_device() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    use std::io::{Read, Write};
    use std::sync::Arc;

    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Test CPE CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let client = |cn: &str| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        let cert = p.signed_by(&key, &ca_cert, &ca_key).unwrap();
        (cert, key)
    };
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca_cert.pem()).unwrap();
    let s = Server::start(ServerOpts {
        cwmp_toml: format!(
            "auth = \"digest\"\npassword = \"pw\"\nclient_ca = {:?}\n",
            ca_path.to_string_lossy()
        ),
        ..Default::default()
    });

    let status = |cn: &str| -> u16 {
        let (cert, key) = client(cn);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(acs::connreq::AcceptAnyServerCert(provider)))
            .with_client_auth_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let conn =
            rustls::ClientConnection::new(Arc::new(cfg), "localhost".try_into().unwrap()).unwrap();
        let tcp = std::net::TcpStream::connect(("127.0.0.1", s.https_port)).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        // Reads one response: status and body (by Content-Length).
        fn read_resp(tls: &mut impl Read) -> (u16, usize) {
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                tls.read_exact(&mut b).unwrap();
                head.push(b[0]);
            }
            let head = String::from_utf8_lossy(&head).to_string();
            let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            let mut body = vec![0u8; len];
            tls.read_exact(&mut body).unwrap();
            (status, len)
        }
        let req = format!(
            "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{INFORM}",
            INFORM.len()
        );
        tls.write_all(req.as_bytes()).unwrap();
        let (status, _) = read_resp(&mut tls);
        if status == 200 {
            // End the session so the next one is not refused as concurrent.
            tls.write_all(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
            assert_eq!(read_resp(&mut tls).0, 204);
        }
        status
    };
    assert_eq!(
        status("SN0123456789"),
        200,
        "a certificate naming the device authenticates it"
    );
    assert_eq!(status("001A2B-HGW-1000-SN0123456789"), 200);
    assert_eq!(
        status("SN-SOMEONE-ELSE"),
        401,
        "another device's certificate falls back to Digest"
    );
}
