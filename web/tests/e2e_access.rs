//! Operator access end to end: the real `keelson serve` on loopback, SQLite and PostgreSQL.
//! Every `/api/v1` route refuses a request without credentials; roles, device scopes and
//! tenants hold on every route (walked from the route list the server mounts); every change
//! leaves exactly one audit record; sign-in, sessions, tokens and bad input behave.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::wire::Conn;
use common::{envelope, postgres, xml, Server, ServerOpts};
use serde_json::{json, Value};

const INFORM: &str = include_str!("../../acs/tests/fixtures/checklist/8.1-inform.xml");

/// An Inform of device (OUI 00AAAA, `pc`, `sn`) whose connection-request URL is on loopback.
fn inform_of(pc: &str, sn: &str, version: &str) -> String {
    INFORM
        .replace("<OUI>001A2B</OUI>", "<OUI>00AAAA</OUI>")
        .replace("HGW-1000", pc)
        .replace("SN0123456789", sn)
        .replace(">2.4.0<", &format!(">{version}<"))
        .replace("http://192.0.2.10:7547/cr-4f2a", "http://127.0.0.1:9/cr")
}

/// Runs one Inform-only session; returns the canonical device id.
fn register(s: &Server, pc: &str, sn: &str, version: &str) -> String {
    let mut c = Conn::open(s.http_port);
    envelope(&c.post(&xml(), inform_of(pc, sn, version).as_bytes()));
    assert_eq!(c.post(&[], b"").status, 204);
    format!("00AAAA-{pc}-{sn}")
}

/// Makes a faulted task on a device: queue a GetParameterValues, open a session, answer the
/// RPC with CWMP fault 9005.
fn fault_on(s: &Server, pc: &str, sn: &str, id: &str) -> i64 {
    let (st, t) = s.post(
        &format!("/api/v1/devices/{id}/tasks"),
        &json!({"kind": "GetParameterValues", "args": {"parameter_names": ["Device.Nope."]}, "max_attempts": 1, "force": true}),
    );
    assert_eq!(st, 201, "{t}");
    let task = t["task"]["id"].as_i64().unwrap();
    let mut c = Conn::open(s.http_port);
    envelope(&c.post(&xml(), inform_of(pc, sn, "1.0").as_bytes()));
    let req = envelope(&c.post(&[], b""));
    let fault = format!(
        r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-2"><SOAP-ENV:Header><cwmp:ID SOAP-ENV:mustUnderstand="1">{}</cwmp:ID></SOAP-ENV:Header><SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>Client</faultcode><faultstring>CWMP fault</faultstring><detail><cwmp:Fault><FaultCode>9005</FaultCode><FaultString>Invalid parameter name</FaultString></cwmp:Fault></detail></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>"#,
        req.header.id.clone().unwrap_or_default()
    );
    let r = c.post(&xml(), fault.as_bytes());
    assert!(r.status == 204 || r.status == 200, "{}", r.text());
    s.wait_for("the task to fault", Duration::from_secs(20), |s| {
        let (_, t) = s.get(&format!("/api/v1/tasks/{task}"));
        (t["task"]["status"] == "fault").then_some(())
    });
    task
}

/// A file attached to a device, as an Upload would leave it (written through the store,
/// the server's own storage layer, on the server's database).
fn attach_file(url: &str, device: &str) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let st = store::Store::open(url, store::StoreOptions::default())
            .await
            .unwrap();
        let f = st
            .insert_file(store::NewFile {
                id: None,
                name: "log.txt".into(),
                file_type: "2 Vendor Log File".into(),
                oui: String::new(),
                product_class: String::new(),
                version: String::new(),
                size: 3,
                sha256: "00".into(),
                content_type: "text/plain".into(),
                stored_path: "/nonexistent".into(),
                device_id: Some(device.into()),
                task_id: None,
            })
            .await
            .unwrap();
        f.id
    })
}

fn db_url(s: &Server, pg: Option<&str>) -> String {
    pg.map(str::to_string).unwrap_or_else(|| {
        s.dir()
            .join("data/keelson.db")
            .to_string_lossy()
            .into_owned()
    })
}

/// A route pattern with its placeholders filled in.
fn fill(pattern: &str, device: &str, task: i64, file: &str) -> String {
    let mut out = pattern
        .replace("{id}", device)
        .replace("{tag}", "t1")
        .replace("{name}", "admin");
    if pattern.starts_with("/tasks/") {
        out = pattern.replace("{id}", &task.to_string());
    } else if pattern.starts_with("/files/") {
        out = pattern.replace("{id}", file);
    } else if pattern.starts_with("/tokens/") || pattern.starts_with("/webhooks/") {
        out = pattern.replace("{id}", "00000000-0000-0000-0000-000000000000");
    }
    format!("/api/v1{out}")
}

/// A body each change route accepts in shape (so that a refusal is about access).
fn body_for(method: &str, pattern: &str, task: i64) -> Option<Value> {
    if method == "get" || method == "delete" {
        return None;
    }
    Some(match pattern {
        "/devices/{id}/tasks" => json!({"kind": "Reboot"}),
        "/devices/{id}/tags" => json!({"add": ["t1"], "remove": ["keep"]}),
        "/devices/{id}/credentials" => json!({"cr_username": "u", "cr_password": "p"}),
        "/faults/acknowledge" => json!({"ids": [task]}),
        "/auth/login" => json!({"username": "nobody", "password": "wrong-password-1"}),
        "/auth/password" => json!({"current_password": "x", "new_password": "yyyyyyyyyyyyyy"}),
        "/users" => json!({"name": "eve", "role": "admin"}),
        "/users/{name}" => json!({"disabled": true}),
        "/roles" => json!({"name": "r2", "permissions": ["devices:read"]}),
        "/roles/{name}" => json!({"permissions": ["devices:read"]}),
        "/tokens" => json!({"name": "t9", "role": "admin"}),
        "/tenants/{name}" => json!({"rules": [{"product_class": ["GWY"]}]}),
        "/webhooks" => json!({"name": "w9", "url": "http://127.0.0.1:9/hook"}),
        _ => json!({}),
    })
}

/// Walks every route with `token` aimed at a device it must not see, and checks that no
/// answer shows that device and nothing about it changed.
fn walk_foreign(s: &Server, token: &str, foreign: &str, foreign_pc: &str, task: i64, file: &str) {
    const NONE_DEV: &str = "00AAAA-GWY-NOSUCH";
    for (method, pattern) in keelson::nbi::ROUTES {
        if *pattern == "/events" {
            continue; // a stream that does not end; its scope is tested in e2e_events
        }
        let m = method.to_uppercase();
        let body = body_for(method, pattern, task);
        let path = fill(pattern, foreign, task, file);
        let (st, v) = s.call_as(Some(token), &m, &path, body.as_ref());
        let text = v.to_string();
        assert_ne!(st, 500, "{m} {path}: {text}");
        if (200..300).contains(&st) {
            assert!(
                !text.contains(foreign_pc) && !text.contains(foreign),
                "{m} {path} ({st}) shows the foreign device: {text}"
            );
        }
        let device_route = pattern.contains("/devices/{id}")
            || pattern.starts_with("/tasks/{id}")
            || pattern.starts_with("/files/{id}");
        if device_route {
            assert!(
                st == 404 || st == 403,
                "{m} {path}: a foreign device's route answered {st} {text}"
            );
            // Exactly what a device (task, file) that does not exist gets.
            let missing = fill(pattern, NONE_DEV, 999_999_999, "no-such-file");
            let (st2, v2) = s.call_as(Some(token), &m, &missing, body.as_ref());
            assert_eq!(st, st2, "{m} {pattern}: {v} vs {v2}");
            let norm = |v: &Value| {
                v["detail"]
                    .as_str()
                    .unwrap_or("")
                    .replace(foreign, "X")
                    .replace(NONE_DEV, "X")
                    .replace(file, "X")
                    .replace("no-such-file", "X")
                    .replace("999999999", "X")
                    .replace(&task.to_string(), "X")
            };
            assert_eq!(norm(&v), norm(&v2), "{m} {pattern}");
        }
    }
    // Nothing about the foreign device changed.
    let (st, d) = s.get(&format!("/api/v1/devices/{foreign}"));
    assert_eq!(st, 200, "the foreign device still exists: {d}");
    assert_eq!(d["tags"], json!(["keep"]), "{d}");
    let (_, t) = s.get(&format!("/api/v1/tasks/{task}"));
    assert_eq!(t["task"]["status"], "fault");
    assert!(t["task"]["acknowledged_at"].is_null(), "{t}");
    let (st, _) = s.get(&format!("/api/v1/files/{file}"));
    assert_eq!(st, 200);
    let (_, tasks) = s.get(&format!("/api/v1/devices/{foreign}/tasks"));
    assert_eq!(tasks["total"], 1, "no task was queued on it: {tasks}");
}

/// Two devices (ProductClass GWX and GWY), a fault and a file on the GWY one.
struct Fleet {
    x: String,
    y: String,
    y_task: i64,
    y_file: String,
}

fn fleet(s: &Server, pg: Option<&str>) -> Fleet {
    let x = register(s, "GWX", "SX1", "1.0");
    let y = register(s, "GWY", "SY1", "1.0");
    let y_task = fault_on(s, "GWY", "SY1", &y);
    let (st, _) = s.put(&format!("/api/v1/devices/{y}/tags/keep"), &json!({}));
    assert_eq!(st, 200);
    let y_file = attach_file(&db_url(s, pg), &y);
    Fleet {
        x,
        y,
        y_task,
        y_file,
    }
}

fn scoped_operator_is_confined(pg: Option<&str>) {
    let s = Server::start(ServerOpts {
        database_url: pg.map(str::to_string),
        ..Default::default()
    });
    let f = fleet(&s, pg);
    let (st, r) = s.post(
        "/api/v1/roles",
        &json!({
            "name": "gwx-operator",
            "permissions": ["devices:read", "devices:write", "refresh", "parameters:write", "reboot",
                            "factory-reset", "firmware", "files", "credentials", "faults:ack", "bulkdata:read"],
            "scope": {"product_class": ["GWX"]},
        }),
    );
    assert_eq!(st, 201, "{r}");
    let (st, t) = s.post(
        "/api/v1/tokens",
        &json!({"name": "gwx", "role": "gwx-operator"}),
    );
    assert_eq!(st, 201, "{t}");
    let token = t["token"]["token"].as_str().unwrap().to_string();

    // Its own device: visible and manageable.
    let (st, d) = s.call_as(
        Some(&token),
        "GET",
        &format!("/api/v1/devices/{}", f.x),
        None,
    );
    assert_eq!(st, 200, "{d}");
    let (st, l) = s.call_as(Some(&token), "GET", "/api/v1/devices", None);
    assert_eq!(st, 200);
    assert_eq!(l["total"], 1, "only the GWX device: {l}");
    let (st, _) = s.call_as(
        Some(&token),
        "POST",
        &format!("/api/v1/devices/{}/tags", f.x),
        Some(&json!({"add": ["mine"]})),
    );
    assert_eq!(st, 200);
    // The other one: through no route.
    walk_foreign(&s, &token, &f.y, "GWY", f.y_task, &f.y_file);
    // Searching by what the other device has finds nothing.
    for q in [
        "q=GWY",
        "tag=keep",
        "param=Device.DeviceInfo.SoftwareVersion&value=1.0",
    ] {
        let (_, l) = s.call_as(Some(&token), "GET", &format!("/api/v1/devices?{q}"), None);
        assert!(!l.to_string().contains("GWY"), "{q}: {l}");
    }
}

#[test]
fn scoped_operator_is_confined_sqlite() {
    scoped_operator_is_confined(None);
}

#[test]
fn scoped_operator_is_confined_postgres() {
    let Some(pg) = postgres() else { return };
    scoped_operator_is_confined(Some(pg.url()));
}

fn tenants_are_isolated(pg: Option<&str>) {
    let s = Server::start(ServerOpts {
        database_url: pg.map(str::to_string),
        ..Default::default()
    });
    let f = fleet(&s, pg);
    let (st, t) = s.put(
        "/api/v1/tenants/acme",
        &json!({"rules": [{"product_class": ["GWX"]}]}),
    );
    assert_eq!(st, 200, "{t}");
    assert_eq!(t["devices_with_a_tenant"], 1, "{t}");
    let (st, t) = s.put(
        "/api/v1/tenants/globex",
        &json!({"rules": [{"tags": ["keep"]}]}),
    );
    assert_eq!(st, 200, "{t}");
    // An admin token of tenant acme: every permission, but only acme's devices.
    let token = s.token_for("acme-admin", "admin", Some("acme"));
    let (st, d) = s.call_as(
        Some(&token),
        "GET",
        &format!("/api/v1/devices/{}", f.x),
        None,
    );
    assert_eq!(st, 200, "{d}");
    assert_eq!(d["device"]["tenant"], "acme");
    walk_foreign(&s, &token, &f.y, "GWY", f.y_task, &f.y_file);
    // A device that informs later joins its tenant at once.
    let z = register(&s, "GWX", "SX2", "1.0");
    let (st, l) = s.call_as(Some(&token), "GET", "/api/v1/devices", None);
    assert_eq!(st, 200);
    assert_eq!(l["total"], 2, "{l}");
    assert!(l.to_string().contains(&z));
    // Cursor pages: one device each, then none; the total counts the tenant's devices.
    let (_, p1) = s.call_as(Some(&token), "GET", "/api/v1/devices?limit=1", None);
    let first = p1["devices"][0]["id"].as_str().unwrap().to_string();
    let cursor = p1["next_cursor"].as_str().expect("a cursor").to_string();
    let (_, p2) = s.call_as(
        Some(&token),
        "GET",
        &format!("/api/v1/devices?limit=1&cursor={cursor}"),
        None,
    );
    let second = p2["devices"][0]["id"].as_str().unwrap().to_string();
    assert_ne!(first, second);
    assert_eq!(p2["total"], 2);
    let (_, p3) = s.call_as(
        Some(&token),
        "GET",
        &format!("/api/v1/devices?limit=1&cursor={second}"),
        None,
    );
    assert_eq!(p3["devices"].as_array().unwrap().len(), 0, "{p3}");
    // The tenant's admin manages only its own tenant's users and tokens.
    let (st, r) = s.call_as(
        Some(&token),
        "POST",
        "/api/v1/users",
        Some(&json!({"name": "bob", "role": "viewer", "tenant": "globex"})),
    );
    assert_eq!(st, 403, "{r}");
    let (st, r) = s.call_as(
        Some(&token),
        "POST",
        "/api/v1/users",
        Some(&json!({"name": "bob", "role": "viewer"})),
    );
    assert_eq!(st, 201, "{r}");
    assert_eq!(r["user"]["tenant"], "acme", "{r}");
    let (_, users) = s.call_as(Some(&token), "GET", "/api/v1/users", None);
    let names: Vec<&str> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    // bob, and eve (made by the walk above); admin (no tenant) is not acme's.
    assert_eq!(names, ["bob", "eve"], "{users}");
    assert!(users["users"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["tenant"] == "acme"));
}

#[test]
fn tenants_are_isolated_sqlite() {
    tenants_are_isolated(None);
}

#[test]
fn tenants_are_isolated_postgres() {
    let Some(pg) = postgres() else { return };
    tenants_are_isolated(Some(pg.url()));
}

#[test]
fn every_route_refuses_requests_without_credentials() {
    // Every route is tried with a wrong token: lift the per-address limit on refusals.
    let s = Server::start(ServerOpts {
        extra_toml: "[access]\nlogin_max_failures_per_address = 100000\n".into(),
        ..Default::default()
    });
    let known = register(&s, "GWX", "SX1", "1.0");
    assert!(keelson::nbi::ROUTES.len() >= 40);
    for (method, pattern) in keelson::nbi::ROUTES {
        let m = method.to_uppercase();
        let mut answers = Vec::new();
        for device in [known.as_str(), "00AAAA-GWX-NOSUCH"] {
            let path = fill(pattern, device, 1, "f");
            for token in [None, Some("kt_not-a-token")] {
                let (st, v) = s.call_as(token, &m, &path, body_for(method, pattern, 1).as_ref());
                if *pattern == "/auth/login" && token.is_none() {
                    // The one public route: a wrong password is refused for what it is.
                    assert_eq!(st, 401, "{v}");
                    assert_eq!(v["detail"], "wrong user name or password");
                    continue;
                }
                assert_eq!(st, 401, "{m} {path} with {token:?}: {v}");
                assert_eq!(v["status"], 401, "a problem document: {v}");
                answers.push(v);
            }
        }
        // Whether the device exists makes no difference to the answer.
        if answers.len() == 4 {
            assert_eq!(answers[0], answers[2], "{m} {pattern}");
            assert_eq!(answers[1], answers[3], "{m} {pattern}");
        }
    }
    // Unknown routes under /api/v1 too; /healthz stays open and says CPE auth is off.
    let (st, _) = s.call_as(None, "GET", "/api/v1/nothing-here", None);
    assert_eq!(st, 401);
    let (st, h) = s.call_as(None, "GET", "/healthz", None);
    assert_eq!(st, 200);
    assert_eq!(h["cwmp_auth"], "none");
    assert!(h["warnings"][0]
        .as_str()
        .unwrap()
        .contains("CPE authentication is off"));
    // The content type of a refusal.
    let mut c = Conn::open(s.nbi_port);
    let r = c.request("GET", "/api/v1/devices");
    assert_eq!(r.status, 401);
    assert_eq!(r.header("Content-Type"), Some("application/problem+json"));
    assert!(r.header("WWW-Authenticate").unwrap().starts_with("Bearer"));
}

/// Reads the password file of the first start.
fn initial_password(s: &Server) -> String {
    use std::os::unix::fs::PermissionsExt;
    let p = s.dir().join("data").join("initial-admin-password");
    let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", p.display());
    std::fs::read_to_string(&p).unwrap().trim().to_string()
}

/// Signs in; returns (status, body, the session cookie).
fn login(s: &Server, user: &str, password: &str) -> (u16, Value, Option<String>) {
    let mut c = Conn::open(s.nbi_port);
    let body = json!({"username": user, "password": password}).to_string();
    let r = c.post_to(
        "/api/v1/auth/login",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    let cookie = r
        .header("Set-Cookie")
        .map(|c| c.split(';').next().unwrap().to_string());
    if let Some(c) = r.header("Set-Cookie") {
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Strict"),
            "{c}"
        );
    }
    let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, v, cookie)
}

fn with_cookie(s: &Server, method: &str, path: &str, cookie: &str) -> (u16, Value) {
    let mut c = Conn::open(s.nbi_port);
    let r = c.request_with(method, path, &[("Cookie", cookie)]);
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    )
}

fn audit(s: &Server, q: &str) -> Vec<Value> {
    let (st, v) = s.get(&format!("/api/v1/audit?{q}"));
    assert_eq!(st, 200, "{v}");
    v["records"].as_array().unwrap().clone()
}

#[test]
fn first_start_admin_signs_in_and_sessions_end() {
    let s = Server::start(ServerOpts::default());
    let pw = initial_password(&s);
    assert!(pw.len() >= 20);
    assert!(
        !s.proc.log_text().contains(&pw),
        "the password is never logged"
    );
    let (st, v, cookie) = login(&s, "admin", &pw);
    assert_eq!(st, 200, "{v}");
    let cookie = cookie.expect("a session cookie");
    let (st, me) = with_cookie(&s, "GET", "/api/v1/auth/me", &cookie);
    assert_eq!(st, 200, "{me}");
    assert_eq!(me["user"], "admin");
    assert_eq!(me["role"], "admin");
    // A forged cookie is refused, and audited.
    let (st, _) = with_cookie(&s, "GET", "/api/v1/devices", "keelson_session=forged");
    assert_eq!(st, 401);
    // Sign-out ends the session: the same cookie, replayed, is refused.
    let (st, _) = with_cookie(&s, "POST", "/api/v1/auth/logout", &cookie);
    assert_eq!(st, 204);
    let (st, _) = with_cookie(&s, "GET", "/api/v1/auth/me", &cookie);
    assert_eq!(st, 401);
    let recs = audit(&s, "action=auth.login");
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["actor"], "user:admin");
    assert_eq!(recs[0]["outcome"], "ok");
    let refused = audit(&s, "action=auth.refused");
    assert!(
        refused
            .iter()
            .any(|r| r["detail"]["reason"] == "unknown or expired console session"),
        "{refused:?}"
    );
    // A restart does not make a new password (there is a user now).
    let before = std::fs::read_to_string(s.dir().join("data/initial-admin-password")).unwrap();
    let mut s = s;
    s.restart();
    let after = std::fs::read_to_string(s.dir().join("data/initial-admin-password")).unwrap();
    assert_eq!(before, after);
}

#[test]
fn failed_sign_ins_are_audited_and_rate_limited() {
    let s = Server::start(ServerOpts::default());
    for i in 0..5 {
        let (st, v, cookie) = login(&s, "admin", "wrong-password-123");
        assert_eq!(st, 401, "attempt {i}: {v}");
        assert!(cookie.is_none());
    }
    // Past the per-user limit, even the right password waits.
    let pw = initial_password(&s);
    let (st, v, _) = login(&s, "admin", &pw);
    assert_eq!(st, 429, "{v}");
    let recs = audit(&s, "action=auth.login");
    assert_eq!(recs.len(), 6, "{recs:?}");
    assert!(recs.iter().filter(|r| r["outcome"] == "denied").count() == 5);
    assert_eq!(recs[0]["outcome"], "throttled");
    assert_eq!(recs[1]["detail"]["reason"], "wrong password");
    // Unknown users are refused the same way.
    let (st, v, _) = login(&s, "nobody", &pw);
    assert_eq!(st, 401);
    assert_eq!(v["detail"], "wrong user name or password");
}

#[test]
fn tokens_roles_and_bad_input() {
    let s = Server::start(ServerOpts::default());
    let dev = register(&s, "GWX", "SX1", "1.0");
    // A viewer reads but cannot queue a task; the refusal is audited.
    let viewer = s.token_for("ro", "viewer", None);
    let (st, _) = s.call_as(
        Some(&viewer),
        "GET",
        &format!("/api/v1/devices/{dev}"),
        None,
    );
    assert_eq!(st, 200);
    let (st, v) = s.call_as(
        Some(&viewer),
        "POST",
        &format!("/api/v1/devices/{dev}/tasks"),
        Some(&json!({"kind": "Reboot"})),
    );
    assert_eq!(st, 403, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("reboot"), "{v}");
    let (_, tasks) = s.get(&format!("/api/v1/devices/{dev}/tasks"));
    assert_eq!(tasks["total"], 0, "nothing queued");
    let recs = audit(&s, "action=task.create");
    assert_eq!(recs[0]["actor"], "token:ro");
    assert_eq!(recs[0]["outcome"], "denied");
    assert_eq!(recs[0]["devices"], json!([dev]));

    // Revoked: refused at once.
    let (_, list) = s.get("/api/v1/tokens");
    let id = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ro")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !list.to_string().contains(&viewer),
        "secrets are never listed"
    );
    let (st, _) = s.delete(&format!("/api/v1/tokens/{id}"));
    assert_eq!(st, 200);
    let (st, v) = s.call_as(Some(&viewer), "GET", "/api/v1/devices", None);
    assert_eq!(st, 401, "{v}");
    // Expired: refused once its time has passed.
    let soon = (chrono::Utc::now() + chrono::TimeDelta::seconds(2)).to_rfc3339();
    let (st, t) = s.post(
        "/api/v1/tokens",
        &json!({"name": "brief", "role": "viewer", "expires_at": soon}),
    );
    assert_eq!(st, 201, "{t}");
    let brief = t["token"]["token"].as_str().unwrap().to_string();
    let (st, _) = s.call_as(Some(&brief), "GET", "/api/v1/devices", None);
    assert_eq!(st, 200);
    std::thread::sleep(Duration::from_millis(2500));
    let (st, _) = s.call_as(Some(&brief), "GET", "/api/v1/devices", None);
    assert_eq!(st, 401);
    let refused = audit(&s, "action=auth.refused");
    let reasons: BTreeSet<String> = refused
        .iter()
        .map(|r| r["detail"]["reason"].as_str().unwrap().to_string())
        .collect();
    assert!(reasons.contains("revoked API token"), "{reasons:?}");
    assert!(reasons.contains("expired API token"), "{reasons:?}");

    // A role naming an unknown permission.
    let (st, v) = s.post(
        "/api/v1/roles",
        &json!({"name": "bad", "permissions": ["devices:read", "launch-missiles"]}),
    );
    assert_eq!(st, 422, "{v}");
    assert_eq!(v["unknown_permissions"], json!(["launch-missiles"]));
    let (st, _) = s.get("/api/v1/roles/bad");
    assert_eq!(st, 404, "nothing created");
    // A scope naming an unknown field.
    let (st, v) = s.post(
        "/api/v1/roles",
        &json!({"name": "bad", "permissions": [], "scope": {"colour": ["red"]}}),
    );
    assert_eq!(st, 400, "{v}");
    // Built-in roles cannot be changed.
    let (st, _) = s.put("/api/v1/roles/admin", &json!({"permissions": []}));
    assert_eq!(st, 409);
    // Malformed and oversized JSON: problem documents.
    let mut c = Conn::open(s.nbi_port);
    let bearer = s.bearer();
    let r = c.post_to(
        "/api/v1/users",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &bearer),
        ],
        b"{\"name\": ",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.header("Content-Type"), Some("application/problem+json"));
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat((4 << 20) + 100));
    let mut c = Conn::open(s.nbi_port);
    let r = c.post_to(
        "/api/v1/users",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &bearer),
        ],
        big.as_bytes(),
    );
    assert_eq!(r.status, 413, "{}", r.text());
    // Passwords too short are refused; a user can then sign in with a good one.
    let (st, _) = s.post(
        "/api/v1/users",
        &json!({"name": "carol", "role": "operator", "password": "short"}),
    );
    assert_eq!(st, 422);
    let (st, u) = s.post(
        "/api/v1/users",
        &json!({"name": "carol", "role": "operator"}),
    );
    assert_eq!(st, 201, "{u}");
    let pw = u["password"].as_str().unwrap().to_string();
    let (st, _, cookie) = login(&s, "carol", &pw);
    assert_eq!(st, 200);
    // Disabling ends her session.
    let (st, _) = s.patch("/api/v1/users/carol", &json!({"disabled": true}));
    assert_eq!(st, 200);
    let (st, _) = with_cookie(&s, "GET", "/api/v1/auth/me", &cookie.unwrap());
    assert_eq!(st, 401);
    let (st, _, _) = login(&s, "carol", &pw);
    assert_eq!(st, 401);
    // ETags on device reads.
    let mut c = Conn::open(s.nbi_port);
    let r = c.request_with(
        "GET",
        &format!("/api/v1/devices/{dev}"),
        &[("Authorization", &bearer)],
    );
    assert_eq!(r.status, 200);
    let etag = r.header("ETag").unwrap().to_string();
    let r = c.request_with(
        "GET",
        &format!("/api/v1/devices/{dev}"),
        &[("Authorization", &bearer), ("If-None-Match", &etag)],
    );
    assert_eq!(r.status, 304);
}

/// Every change route, called once each (in an order where each finds what it needs),
/// writes exactly one audit record naming the caller and the outcome.
#[test]
fn every_change_route_writes_one_audit_record() {
    let s = Server::start(ServerOpts::default());
    let dev = register(&s, "GWX", "SX1", "1.0");
    let gone = register(&s, "GWX", "SX9", "1.0");
    let pw = initial_password(&s);
    let last_id = |s: &Server| -> i64 {
        audit(s, "limit=1")
            .first()
            .map_or(0, |r| r["id"].as_i64().unwrap())
    };
    let mut covered: BTreeSet<(String, String)> = BTreeSet::new();
    let mut call = |s: &Server,
                    method: &str,
                    pattern: &str,
                    path: String,
                    body: Option<Value>,
                    want: u16,
                    actor: &str|
     -> Value {
        let before = last_id(s);
        let (st, v) = s.call_as(Some(&s.token), method, &path, body.as_ref());
        assert_eq!(st, want, "{method} {path}: {v}");
        let recs: Vec<Value> = audit(s, "limit=50")
            .into_iter()
            .filter(|r| r["id"].as_i64().unwrap() > before)
            .collect();
        assert_eq!(recs.len(), 1, "{method} {path}: {recs:?}");
        let want_outcome = if (200..300).contains(&want) {
            "ok"
        } else {
            "invalid"
        };
        assert_eq!(
            recs[0]["outcome"], want_outcome,
            "{method} {path}: {recs:?}"
        );
        assert_eq!(recs[0]["actor"], actor, "{method} {path}");
        assert_eq!(recs[0]["remote_addr"], "127.0.0.1");
        covered.insert((method.to_lowercase(), pattern.to_string()));
        v
    };
    let me = "token:harness";
    call(
        &s,
        "POST",
        "/auth/login",
        "/api/v1/auth/login".into(),
        Some(json!({"username": "admin", "password": pw})),
        200,
        "user:admin",
    );
    call(
        &s,
        "POST",
        "/auth/password",
        "/api/v1/auth/password".into(),
        Some(json!({"current_password": "a", "new_password": "bbbbbbbbbbbbbb"})),
        409,
        me,
    );
    call(
        &s,
        "POST",
        "/users",
        "/api/v1/users".into(),
        Some(json!({"name": "bob", "role": "viewer"})),
        201,
        me,
    );
    call(
        &s,
        "PATCH",
        "/users/{name}",
        "/api/v1/users/bob".into(),
        Some(json!({"role": "operator"})),
        200,
        me,
    );
    call(
        &s,
        "POST",
        "/roles",
        "/api/v1/roles".into(),
        Some(json!({"name": "r1", "permissions": ["devices:read"]})),
        201,
        me,
    );
    call(
        &s,
        "PUT",
        "/roles/{name}",
        "/api/v1/roles/r1".into(),
        Some(json!({"permissions": ["devices:read", "refresh"]})),
        200,
        me,
    );
    call(
        &s,
        "DELETE",
        "/roles/{name}",
        "/api/v1/roles/r1".into(),
        None,
        204,
        me,
    );
    let t = call(
        &s,
        "POST",
        "/tokens",
        "/api/v1/tokens".into(),
        Some(json!({"name": "t1", "role": "viewer"})),
        201,
        me,
    );
    let tid = t["token"]["id"].as_str().unwrap().to_string();
    call(
        &s,
        "DELETE",
        "/tokens/{id}",
        format!("/api/v1/tokens/{tid}"),
        None,
        200,
        me,
    );
    call(
        &s,
        "PUT",
        "/tenants/{name}",
        "/api/v1/tenants/ta".into(),
        Some(json!({"rules": [{"oui": ["00AAAA"]}]})),
        200,
        me,
    );
    call(
        &s,
        "DELETE",
        "/tenants/{name}",
        "/api/v1/tenants/ta".into(),
        None,
        204,
        me,
    );
    call(
        &s,
        "POST",
        "/devices/{id}/tags",
        format!("/api/v1/devices/{dev}/tags"),
        Some(json!({"add": ["a"]})),
        200,
        me,
    );
    call(
        &s,
        "PUT",
        "/devices/{id}/tags/{tag}",
        format!("/api/v1/devices/{dev}/tags/b"),
        Some(json!({})),
        200,
        me,
    );
    call(
        &s,
        "DELETE",
        "/devices/{id}/tags/{tag}",
        format!("/api/v1/devices/{dev}/tags/b"),
        None,
        200,
        me,
    );
    call(
        &s,
        "PUT",
        "/devices/{id}/credentials",
        format!("/api/v1/devices/{dev}/credentials"),
        Some(json!({"cr_username": "u", "cr_password": "p"})),
        204,
        me,
    );
    let t = call(
        &s,
        "POST",
        "/devices/{id}/tasks",
        format!("/api/v1/devices/{dev}/tasks"),
        Some(json!({"kind": "Reboot"})),
        201,
        me,
    );
    let task = t["task"]["id"].as_i64().unwrap();
    call(
        &s,
        "POST",
        "/devices/{id}/connection-request",
        format!("/api/v1/devices/{dev}/connection-request"),
        None,
        200,
        me,
    );
    call(
        &s,
        "DELETE",
        "/tasks/{id}",
        format!("/api/v1/tasks/{task}"),
        None,
        200,
        me,
    );
    call(
        &s,
        "POST",
        "/tasks/{id}/retry",
        format!("/api/v1/tasks/{task}/retry"),
        None,
        201,
        me,
    );
    call(
        &s,
        "POST",
        "/faults/acknowledge",
        "/api/v1/faults/acknowledge".into(),
        Some(json!({"ids": [task]})),
        200,
        me,
    );
    call(
        &s,
        "POST",
        "/ipdr/documents",
        "/api/v1/ipdr/documents".into(),
        Some(json!("not a document")),
        400,
        me,
    );
    let f = call(
        &s,
        "POST",
        "/files",
        "/api/v1/files?name=fw.bin".into(),
        Some(json!("firmware")),
        201,
        me,
    );
    let fid = f["file"]["id"].as_str().unwrap().to_string();
    call(
        &s,
        "DELETE",
        "/files/{id}",
        format!("/api/v1/files/{fid}"),
        None,
        204,
        me,
    );
    call(
        &s,
        "DELETE",
        "/devices/{id}",
        format!("/api/v1/devices/{gone}"),
        None,
        204,
        me,
    );
    let w = call(
        &s,
        "POST",
        "/webhooks",
        "/api/v1/webhooks".into(),
        Some(json!({"name": "w1", "url": "http://127.0.0.1:9/hook"})),
        201,
        me,
    );
    let wid = w["webhook"]["id"].as_str().unwrap().to_string();
    call(
        &s,
        "DELETE",
        "/webhooks/{id}",
        format!("/api/v1/webhooks/{wid}"),
        None,
        204,
        me,
    );
    call(
        &s,
        "POST",
        "/auth/logout",
        "/api/v1/auth/logout".into(),
        None,
        204,
        me,
    );
    // What the records say about a task.
    let recs = audit(&s, &format!("device={dev}&action=task.create"));
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["target"], format!("task {task}"));
    assert_eq!(recs[0]["detail"]["kind"], "Reboot");
    // Every change route of the API was exercised.
    let all: BTreeSet<(String, String)> = keelson::nbi::ROUTES
        .iter()
        .filter(|(m, _)| *m != "get")
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let missing: Vec<_> = all.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "change routes not exercised: {missing:?}"
    );
    // Exports: JSON lines and CSV carry the same records; the log cannot be rewritten.
    let mut c = Conn::open(s.nbi_port);
    let bearer = s.bearer();
    let r = c.request_with(
        "GET",
        "/api/v1/audit?format=jsonl",
        &[("Authorization", &bearer)],
    );
    assert_eq!(r.status, 200);
    let lines = r.text().lines().count();
    assert!(lines >= 25, "{lines}");
    let r = c.request_with(
        "GET",
        "/api/v1/audit?format=csv",
        &[("Authorization", &bearer)],
    );
    assert_eq!(r.status, 200);
    let mut rd = csv::Reader::from_reader(r.body.as_slice());
    assert_eq!(rd.records().count(), lines);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let st = store::Store::open(&db_url(&s, None), store::StoreOptions::default())
            .await
            .unwrap();
        for sql in ["UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"] {
            let e = st.execute_sql(sql).await.unwrap_err();
            assert!(e.to_string().contains("append-only"), "{sql}: {e}");
        }
    });
}

/// Scrapes `/metrics` over a connection from `ip` (with `token` when given).
fn scrape(s: &Server, ip: &str, token: Option<&str>) -> (u16, String) {
    let mut c = Conn::over(common::connect_from(ip, s.nbi_port), s.nbi_port);
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let r = c.request_with("GET", "/metrics", &headers);
    (r.status, r.text())
}

fn samples(text: &str) -> Vec<prometheus_parse::Sample> {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines)
        .expect("Prometheus text format")
        .samples
}

/// The value of a counter or gauge sample with these labels (0 when absent).
fn value(samples: &[prometheus_parse::Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

#[test]
fn metrics_parse_move_with_traffic_and_have_their_own_access() {
    let s = Server::start(ServerOpts {
        extra_toml: "[metrics]\nallow_networks = [\"127.0.0.1/32\"]\ntoken = \"scrape-secret\"\n"
            .into(),
        ..Default::default()
    });
    // Access: another address needs the token; API tokens are not metrics tokens.
    let (st, _) = scrape(&s, "127.0.0.2", None);
    assert_eq!(st, 403);
    let (st, _) = scrape(&s, "127.0.0.2", Some(&s.token));
    assert_eq!(st, 403);
    let (st, before) = scrape(&s, "127.0.0.2", Some("scrape-secret"));
    assert_eq!(st, 200, "{before}");
    assert!(
        before.contains("# WARNING: CPE authentication is off"),
        "{before}"
    );
    let b = samples(&before);
    assert_eq!(value(&b, "keelson_cwmp_auth_enabled", &[]), 0.0);
    // Traffic: three sessions, one RPC answered with a fault, a connection request, a
    // bulk-data report.
    let x = register(&s, "GWX", "SX1", "1.0");
    register(&s, "GWX", "SX2", "1.0");
    fault_on(&s, "GWX", "SX1", &x);
    let (st, _) = s.post(
        &format!("/api/v1/devices/{x}/connection-request"),
        &json!({}),
    );
    assert_eq!(st, 200);
    let (st, _) = s.post(
        &format!("/api/v1/devices/{x}/tasks"),
        &json!({"kind": "Reboot"}),
    );
    assert_eq!(st, 201);
    let mut c = Conn::open(s.http_port);
    let r = c.post_to(
        "/bulkdata?oui=00AAAA&pc=GWX&sn=SX1",
        &[("Content-Type", "application/json")],
        br#"{"Report":[{"CollectionTime":1700000000,"Device.DeviceInfo.UpTime":3600}]}"#,
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let (st, after) = scrape(&s, "127.0.0.1", None);
    assert_eq!(st, 200);
    let a = samples(&after);
    let moved =
        |name: &str, labels: &[(&str, &str)]| value(&a, name, labels) - value(&b, name, labels);
    assert_eq!(
        moved("keelson_cwmp_sessions_total", &[("outcome", "complete")]),
        3.0,
        "{after}"
    );
    assert_eq!(
        moved("keelson_cwmp_cpe_rpcs_total", &[("method", "Inform")]),
        3.0
    );
    assert_eq!(
        moved(
            "keelson_cwmp_rpcs_total",
            &[("method", "GetParameterValues"), ("result", "fault")]
        ),
        1.0,
        "{after}"
    );
    assert_eq!(moved("keelson_cwmp_faults_total", &[("code", "9005")]), 1.0);
    assert_eq!(
        moved("keelson_connection_requests_total", &[]),
        1.0,
        "{after}"
    );
    assert_eq!(
        moved("keelson_bulkdata_reports_total", &[("source", "http-json")]),
        1.0
    );
    assert_eq!(
        value(&a, "keelson_tasks", &[("status", "pending")]),
        1.0,
        "the Reboot"
    );
    let commits = a
        .iter()
        .find(|s| s.metric == "keelson_db_commit_seconds")
        .expect("the commit latency histogram");
    match &commits.value {
        prometheus_parse::Value::Histogram(buckets) => {
            assert!(buckets.iter().any(|b| b.count > 0.0), "{buckets:?}")
        }
        other => panic!("keelson_db_commit_seconds is {other:?}"),
    }
}
