//! The ACS is data-model aware: tasks are checked against the device's BBF model when queued,
//! values are typed from it, parameter views explain themselves; and the `keelson datamodel` CLI.

mod common;

use common::wire::Conn;
use common::*;
use serde_json::{json, Value};

const INFORM: &str = include_str!("../../acs/tests/fixtures/checklist/8.1-inform.xml");
const DEV_URL: &str = "001A2B-HGW%252D1000-SN0123456789";

fn device(s: &Server) {
    let mut c = Conn::open(s.http_port);
    let r = c.post(&[("Content-Type", "text/xml")], INFORM.as_bytes());
    assert_eq!(r.status, 200);
    assert_eq!(c.post(&[], b"").status, 204);
}

fn queue(s: &Server, kind: &str, args: Value) -> (u16, Value) {
    s.post(
        &format!("/api/v1/devices/{DEV_URL}/tasks"),
        &json!({"kind": kind, "args": args}),
    )
}

fn problems(body: &Value) -> Vec<(String, String)> {
    body["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("no problems list in {body}"))
        .iter()
        .map(|p| {
            (
                p["parameter"].as_str().unwrap().to_string(),
                p["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn tasks_are_checked_against_the_device_model() {
    let s = Server::start(ServerOpts::default());
    device(&s);

    // Every bad parameter is listed with its reason; nothing is queued.
    let (st, body) = queue(
        &s,
        "SetParameterValues",
        json!({"values": {
            "Device.ManagementServer.NoSuchThing": "1",
            "Device.DeviceInfo.SoftwareVersion": "9.9",
            "Device.ManagementServer.PeriodicInformInterval": "0",
            "Device.ManagementServer.PeriodicInformEnable": "maybe",
            "Device.X_ACME_Tweak.Level": "3"
        }}),
    );
    assert_eq!(st, 422, "{body}");
    let p = problems(&body);
    assert_eq!(p.len(), 4, "{p:?}");
    let reason = |name: &str| {
        p.iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| r.clone())
            .unwrap_or_default()
    };
    assert!(
        reason("Device.ManagementServer.NoSuchThing").contains("unknown"),
        "{p:?}"
    );
    assert!(
        reason("Device.DeviceInfo.SoftwareVersion").contains("not writable"),
        "{p:?}"
    );
    assert!(
        !reason("Device.ManagementServer.PeriodicInformInterval").is_empty(),
        "{p:?}"
    );
    assert!(
        !reason("Device.ManagementServer.PeriodicInformEnable").is_empty(),
        "{p:?}"
    );
    let (_, tasks) = s.get(&format!("/api/v1/tasks?device={DEV_URL}"));
    assert_eq!(tasks["total"], 0, "a refused task is not queued");

    // A good one is accepted, typed from the model where the device reported no type, and a
    // vendor extension passes as unknown.
    let (st, body) = queue(
        &s,
        "SetParameterValues",
        json!({"values": {
            "Device.ManagementServer.PeriodicInformInterval": "3600",
            "Device.ManagementServer.PeriodicInformEnable": "true",
            "Device.X_ACME_Tweak.Level": "3"
        }}),
    );
    assert_eq!(st, 201, "{body}");
    let list = body["task"]["args"]["parameter_list"].as_array().unwrap();
    let ty = |n: &str| list.iter().find(|p| p["name"] == n).unwrap()["xsi_type"].clone();
    assert_eq!(
        ty("Device.ManagementServer.PeriodicInformInterval"),
        "xsd:unsignedInt"
    );
    assert_eq!(
        ty("Device.ManagementServer.PeriodicInformEnable"),
        "xsd:boolean"
    );
    assert_eq!(ty("Device.X_ACME_Tweak.Level"), "xsd:string");

    // AddObject/DeleteObject only on writable tables.
    let (st, body) = queue(
        &s,
        "AddObject",
        json!({"object_name": "Device.DeviceInfo."}),
    );
    assert_eq!(st, 422, "{body}");
    let (st, body) = queue(
        &s,
        "AddObject",
        json!({"object_name": "Device.Hosts.Host."}),
    );
    assert_eq!(st, 422, "read-only table: {body}");
    let (st, body) = queue(
        &s,
        "DeleteObject",
        json!({"object_name": "Device.IP.Interface.1.IPv4Address.7."}),
    );
    assert_eq!(st, 201, "{body}");
    let (st, body) = queue(
        &s,
        "AddObject",
        json!({"object_name": "Device.NAT.PortMapping."}),
    );
    assert_eq!(st, 201, "{body}");

    // Parameter views carry the model's type, access and a one-line description.
    let (_, p) = s.get(&format!(
        "/api/v1/devices/{DEV_URL}/parameters?prefix=Device.DeviceInfo.SoftwareVersion"
    ));
    let row = &p["parameters"][0];
    assert_eq!(row["model_type"], "xsd:string", "{row}");
    assert_eq!(row["model_access"], "ReadOnly", "{row}");
    assert!(
        !row["description"].as_str().unwrap_or("").is_empty(),
        "{row}"
    );
}

fn cli(args: &[&str]) -> (bool, String) {
    let out = keelson().args(args).output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn datamodel_cli() {
    let (ok, out) = cli(&[
        "datamodel",
        "show",
        "Device.ManagementServer.PeriodicInformInterval",
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("xsd:unsignedInt") && out.contains("ReadWrite"),
        "{out}"
    );
    let (ok, out) = cli(&["datamodel", "show", "Device.NAT.PortMapping.3."]);
    assert!(ok, "{out}");
    let (ok, out) = cli(&[
        "datamodel",
        "validate",
        "Device.ManagementServer.PeriodicInformInterval",
        "3600",
    ]);
    assert!(ok, "{out}");
    let (ok, out) = cli(&[
        "datamodel",
        "validate",
        "Device.ManagementServer.PeriodicInformInterval",
        "0",
    ]);
    assert!(!ok, "0 is below the minimum: {out}");
    assert!(out.contains("invalid"), "{out}");
    let (ok, out) = cli(&["datamodel", "show", "Device.NoSuch.Thing"]);
    assert!(!ok, "{out}");
    let (ok, out) = cli(&[
        "datamodel",
        "validate",
        "InternetGatewayDevice.ManagementServer.PeriodicInformEnable",
        "yes",
    ]);
    assert!(!ok, "{out}");
    if let Some(dir) = testkit::shared_or_skip("datamodels", "TR-104 CLI check") {
        let (ok, out) = cli(&[
            "datamodel",
            "info",
            dir.join("tr-104-2-0-2-cwmp-full.xml").to_str().unwrap(),
        ]);
        assert!(ok, "{out}");
        assert!(out.contains("VoiceService:2"), "{out}");
    }
}
