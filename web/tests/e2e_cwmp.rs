//! End to end: the real `keelson serve` and `keelson sim` on loopback, over HTTP and over TLS,
//! on SQLite and on PostgreSQL. Every task kind goes through the northbound API (with a
//! connection request) to a correct result in the database.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const CPE_PASSWORD: &str = "cpe-secret";

fn server(db: Option<String>) -> Server {
    Server::start(ServerOpts {
        database_url: db,
        cwmp_toml: format!("auth = \"digest\"\npassword = \"{CPE_PASSWORD}\"\n"),
        extra_toml: "[connection_request]\nusername = \"keelson\"\npassword = \"keelson\"\nmin_interval_secs = 0\n".into(),
        ..Default::default()
    })
}

fn sim(s: &Server, tls: bool, prefix: &str) -> Proc {
    let args: Vec<String> = [
        "sim",
        "--acs-url",
        &s.acs_url(tls),
        "--devices",
        "1",
        "--serial-prefix",
        prefix,
        "--password",
        CPE_PASSWORD,
        "--periodic-interval",
        "3600",
        "--reboot-delay",
        "0.3",
        "--retry-scale",
        "0.01",
        "--log-level",
        "debug",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    Proc::spawn("keelson sim", &args, s.dir().join("sim.log"), &[])
}

fn device_id(prefix: &str) -> String {
    format!("02CAFE-SimHGW-{prefix}000001")
}

/// Queues a task with a connection request and waits for it to reach a final state.
fn run_task(s: &Server, dev: &str, kind: &str, args: Value) -> Value {
    let (status, body) = s.post(
        &format!("/api/v1/devices/{dev}/tasks?connection_request=true&wait=20"),
        &json!({ "kind": kind, "args": args }),
    );
    assert!(matches!(status, 200 | 202), "{kind}: HTTP {status}: {body}");
    let id = body["task"]["id"].as_i64().unwrap();
    s.wait_for(
        &format!("{kind} task {id} to finish"),
        Duration::from_secs(60),
        |s| {
            let (_, t) = s.get(&format!("/api/v1/tasks/{id}"));
            let st = t["task"]["status"].as_str().unwrap_or("").to_string();
            matches!(st.as_str(), "done" | "fault" | "expired" | "cancelled")
                .then(|| t["task"].clone())
        },
    )
}

fn done(s: &Server, dev: &str, kind: &str, args: Value) -> Value {
    let t = run_task(s, dev, kind, args);
    assert_eq!(t["status"], "done", "{kind} did not complete: {t}");
    t
}

fn param(s: &Server, dev: &str, path: &str) -> Option<Value> {
    let (_, p) = s.get(&format!("/api/v1/devices/{dev}/parameters?prefix={path}"));
    p["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == path)
        .cloned()
}

fn events(s: &Server, dev: &str) -> Vec<String> {
    let (_, e) = s.get(&format!("/api/v1/devices/{dev}/events?limit=1000"));
    e["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_code"].as_str().unwrap().to_string())
        .collect()
}

fn scenario(db: Option<String>, tls: bool, prefix: &str) {
    let s = server(db);
    let dev = device_id(prefix);
    let _sim = sim(&s, tls, prefix);
    let device = s.wait_for(
        "the simulated device to inform",
        Duration::from_secs(30),
        |s| {
            let (status, d) = s.get(&format!("/api/v1/devices/{dev}"));
            (status == 200).then_some(d)
        },
    );
    assert_eq!(device["device"]["oui"], "02CAFE");
    assert!(events(&s, &dev).contains(&"0 BOOTSTRAP".to_string()));
    assert!(device["device"]["connection_request_url"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));

    // Reads.
    let t = done(&s, &dev, "GetRPCMethods", json!({}));
    assert!(
        events(&s, &dev).contains(&"6 CONNECTION REQUEST".to_string()),
        "the connection request made the device open a session"
    );
    assert!(t["result"]["method_list"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m == "ChangeDUState"));
    done(
        &s,
        &dev,
        "GetParameterNames",
        json!({"parameter_path": "Device.ManagementServer.", "next_level": true}),
    );
    assert_eq!(
        param(&s, &dev, "Device.ManagementServer.PeriodicInformInterval").unwrap()["writable"],
        true
    );
    let t = done(
        &s,
        &dev,
        "GetParameterValues",
        json!({"parameter_names": ["Device.DeviceInfo.", "Device.ManagementServer."]}),
    );
    assert!(t["result"]["parameter_list"].as_array().unwrap().len() > 10);
    let up = param(&s, &dev, "Device.DeviceInfo.UpTime").expect("UpTime stored");
    assert_eq!(up["xsd_type"], "xsd:unsignedInt");

    // Writes: the value goes out with the type the device reported, and lands in the store.
    let t = done(
        &s,
        &dev,
        "SetParameterValues",
        json!({"values": {"Device.ManagementServer.PeriodicInformInterval": "1800"}}),
    );
    assert_eq!(
        t["args"]["parameter_list"][0]["xsi_type"],
        "xsd:unsignedInt"
    );
    assert_eq!(
        param(&s, &dev, "Device.ManagementServer.PeriodicInformInterval").unwrap()["value"],
        "1800"
    );
    let key = t["command_key"].as_str().unwrap().to_string();
    assert_eq!(
        param(&s, &dev, "Device.ManagementServer.ParameterKey").unwrap()["value"],
        key.as_str()
    );
    // A CPE fault is kept on the task. (The data model passes vendor extensions as unknown;
    // this device has no such parameter.)
    let t = run_task(
        &s,
        &dev,
        "SetParameterValues",
        json!({"values": {"Device.X_ACME_NoSuch.Level": "5"}}),
    );
    assert_eq!(t["status"], "fault");
    assert_eq!(t["fault_code"], 9003);
    assert_eq!(
        t["fault_detail"]["set_parameter_values_fault"][0]["fault_code"],
        9005
    );
    let (_, f) = s.get(&format!("/api/v1/faults?device={dev}"));
    assert!(f["faults"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["id"] == t["id"]));

    done(
        &s,
        &dev,
        "SetParameterAttributes",
        json!({"parameter_list": [{
        "name": "Device.ManagementServer.ConnectionRequestURL", "notification_change": true,
        "notification": 2, "access_list_change": false, "access_list": []}]}),
    );
    let t = done(
        &s,
        &dev,
        "GetParameterAttributes",
        json!({"parameter_names": ["Device.ManagementServer.ConnectionRequestURL"]}),
    );
    assert_eq!(t["result"]["parameter_list"][0]["notification"], 2);

    let t = done(
        &s,
        &dev,
        "AddObject",
        json!({"object_name": "Device.NAT.PortMapping."}),
    );
    let n = t["result"]["instance_number"].as_u64().unwrap();
    assert!(n >= 1);
    let inst = format!("Device.NAT.PortMapping.{n}.");
    assert_eq!(param(&s, &dev, &inst).unwrap()["is_object"], true);
    done(
        &s,
        &dev,
        "GetParameterValues",
        json!({"parameter_names": [inst.clone()]}),
    );
    assert!(param(&s, &dev, &format!("{inst}Enable")).is_some());
    done(
        &s,
        &dev,
        "DeleteObject",
        json!({"object_name": inst.clone()}),
    );
    assert!(param(&s, &dev, &inst).is_none());
    assert!(
        param(&s, &dev, &format!("{inst}Enable")).is_none(),
        "the subtree is gone"
    );

    // Files: a firmware image served by Keelson, downloaded for real by the device.
    let image = vec![0x5au8; 256 * 1024];
    let (st, file) = s.post_bytes(
        "/api/v1/files?name=simhgw-2.5.0.bin&file_type=1%20Firmware%20Upgrade%20Image&version=2.5.0",
        &image,
    );
    assert_eq!(st, 201, "{file}");
    let file_id = file["file"]["id"].as_str().unwrap().to_string();
    let t = done(&s, &dev, "Download", json!({"file_id": file_id}));
    assert!(t["args"]["url"].as_str().unwrap().contains(&file_id));
    s.wait_for("the new firmware version", Duration::from_secs(30), |s| {
        let (_, d) = s.get(&format!("/api/v1/devices/{dev}"));
        (d["device"]["software_version"].as_str() != device["device"]["software_version"].as_str())
            .then_some(())
    });
    assert!(events(&s, &dev).contains(&"7 TRANSFER COMPLETE".to_string()));
    done(&s, &dev, "ScheduleDownload", json!({"file_id": file_id}));

    // Upload: the device PUTs its log to Keelson, which attaches it to the device.
    done(
        &s,
        &dev,
        "Upload",
        json!({"file_type": "2 Vendor Log File"}),
    );
    let (_, files) = s.get(&format!("/api/v1/files?device={dev}"));
    let up = &files["files"].as_array().unwrap()[0];
    assert!(up["size"].as_i64().unwrap() > 0, "{files}");

    let t = done(&s, &dev, "GetQueuedTransfers", json!({}));
    assert!(t["result"]["transfer_list"].is_array());
    done(&s, &dev, "GetAllQueuedTransfers", json!({}));
    let t = run_task(
        &s,
        &dev,
        "CancelTransfer",
        json!({"command_key": "no-such-transfer"}),
    );
    assert_eq!(t["fault_code"], 9021, "{t}");
    done(&s, &dev, "SetVouchers", json!({"voucher_list": []}));
    done(&s, &dev, "GetOptions", json!({"option_name": ""}));
    done(
        &s,
        &dev,
        "ChangeDUState",
        json!({"operations": [{"Install": {
        "url": format!("{}files/{file_id}/app.ipk", s.acs_url(false)),
        "uuid": "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
        "execution_env_ref": "Device.SoftwareModules.ExecEnv.1"}}]}),
    );
    done(&s, &dev, "ScheduleInform", json!({"delay_seconds": 1}));
    assert!(events(&s, &dev).contains(&"M ScheduleInform".to_string()));
    done(&s, &dev, "Reboot", json!({}));
    assert!(events(&s, &dev).contains(&"M Reboot".to_string()));
    let epoch = s.get(&format!("/api/v1/devices/{dev}")).1["device"]["bootstrap_epoch"]
        .as_i64()
        .unwrap();
    done(&s, &dev, "FactoryReset", json!({}));
    s.wait_for(
        "the BOOTSTRAP after the factory reset",
        Duration::from_secs(30),
        |s| {
            let (_, d) = s.get(&format!("/api/v1/devices/{dev}"));
            (d["device"]["bootstrap_epoch"].as_i64().unwrap() > epoch).then_some(())
        },
    );
    assert!(
        param(&s, &dev, "Device.DeviceInfo.UpTime").is_none(),
        "BOOTSTRAP forgets what the ACS knew of the device"
    );
}

#[test]
fn every_task_kind_sqlite_http() {
    scenario(None, false, "SQH");
}

#[test]
fn every_task_kind_sqlite_tls() {
    scenario(None, true, "SQT");
}

#[test]
fn every_task_kind_postgres_http() {
    let Some(pg) = postgres() else { return };
    scenario(Some(pg.url().to_string()), false, "PGH");
}

#[test]
fn every_task_kind_postgres_tls() {
    let Some(pg) = postgres() else { return };
    scenario(Some(pg.url().to_string()), true, "PGT");
}
