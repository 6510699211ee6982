//! Unit tests of the simulator core: tree generation, every CPE method's
//! semantics and faults, and whole sessions against a fake ACS built from
//! codec calls (no sockets).

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;
use acs::codec::*;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
}

fn identity(serial: &str) -> DeviceIdentity {
    DeviceIdentity {
        manufacturer: "Keelson".into(),
        oui: "00D09E".into(),
        product_class: "HGW-1000".into(),
        serial_number: serial.into(),
        seed: 42,
    }
}

fn settings() -> DeviceSettings {
    DeviceSettings {
        acs_url: "http://127.0.0.1:7547/".into(),
        username: "00D09E-HGW%2D1000-SN0001".into(),
        password: "cpepass".into(),
        cr_username: "cruser".into(),
        cr_password: "crpass".into(),
        periodic_inform_interval: 300,
        ..DeviceSettings::default()
    }
}

fn dev() -> CpeDevice {
    let mut d = CpeDevice::new(identity("SN0001"), settings(), t0());
    d.set_connection_request_endpoints("http://127.0.0.1:30005/cr", "127.0.0.1:30006");
    d
}

fn call(d: &mut CpeDevice, rpc: impl Into<Rpc>) -> Result<Rpc, Fault> {
    d.handle_request(&rpc.into(), t0())
}

fn code(r: Result<Rpc, Fault>) -> u32 {
    match r {
        Err(f) => f.detail.fault_code,
        Ok(r) => panic!("expected a fault, got {r:?}"),
    }
}

fn gpv(d: &mut CpeDevice, names: &[&str]) -> Result<Vec<ParameterValueStruct>, Fault> {
    match call(
        d,
        GetParameterValues {
            parameter_names: names.iter().map(|s| s.to_string()).collect(),
        },
    )? {
        Rpc::GetParameterValuesResponse(r) => Ok(r.parameter_list),
        other => panic!("unexpected {other:?}"),
    }
}

fn value(d: &mut CpeDevice, name: &str) -> String {
    gpv(d, &[name]).unwrap()[0].value.clone()
}

fn gpn(d: &mut CpeDevice, path: &str, next_level: bool) -> Result<Vec<(String, bool)>, Fault> {
    match call(
        d,
        GetParameterNames {
            parameter_path: path.into(),
            next_level,
        },
    )? {
        Rpc::GetParameterNamesResponse(r) => Ok(r
            .parameter_list
            .into_iter()
            .map(|p| (p.name, p.writable))
            .collect()),
        other => panic!("unexpected {other:?}"),
    }
}

fn pv(name: &str, value: &str, ty: &str) -> ParameterValueStruct {
    ParameterValueStruct::new(name, value, ty)
}

fn spv(d: &mut CpeDevice, list: Vec<ParameterValueStruct>, key: &str) -> Result<Rpc, Fault> {
    call(
        d,
        SetParameterValues {
            parameter_list: list,
            parameter_key: key.into(),
        },
    )
}

fn events(d: &CpeDevice) -> Vec<(String, String)> {
    d.pending_events()
        .iter()
        .map(|e| (e.event_code.clone(), e.command_key.clone()))
        .collect()
}

fn ev(code: &str, ck: &str) -> (String, String) {
    (code.to_string(), ck.to_string())
}

// ---------------------------------------------------------------------------
// Tree generation
// ---------------------------------------------------------------------------

#[test]
fn sim_gateway_tree_is_realistic_and_deterministic() {
    let a = ParamTree::tr181_gateway("SN0001", "00D09E", "HGW-1000", 7);
    let b = ParamTree::tr181_gateway("SN0001", "00D09E", "HGW-1000", 7);
    let c = ParamTree::tr181_gateway("SN0002", "00D09E", "HGW-1000", 8);
    let n = a.param_count();
    assert!((250..700).contains(&n), "{n} parameters");
    let names = |t: &ParamTree| -> Vec<(String, String)> {
        t.params()
            .into_iter()
            .map(|(n, p)| (n, p.value().to_string()))
            .collect()
    };
    assert_eq!(names(&a), names(&b));
    assert_ne!(names(&a), names(&c));
    for required in [
        "Device.RootDataModelVersion",
        "Device.DeviceInfo.SerialNumber",
        "Device.ManagementServer.PeriodicInformTime",
        "Device.ManagementServer.UDPConnectionRequestAddress",
        "Device.ManagementServer.HeartbeatPolicy.InitiationTime",
        "Device.Time.CurrentLocalTime",
        "Device.Ethernet.Interface.1.Stats.BytesSent",
        "Device.IP.Interface.1.IPv4Address.1.IPAddress",
        "Device.WiFi.Radio.2.Channel",
        "Device.WiFi.SSID.1.SSID",
        "Device.WiFi.AccessPoint.1.Security.KeyPassphrase",
        "Device.Hosts.Host.1.PhysAddress",
        "Device.DHCPv4.Server.Pool.1.MinAddress",
        "Device.NAT.PortMappingNumberOfEntries",
        "Device.Firewall.Config",
        "Device.DNS.Client.Server.1.DNSServer",
        "Device.SoftwareModules.ExecEnv.1.Name",
        "Device.DeviceInfo.VendorConfigFile.1.Name",
        "Device.DeviceInfo.VendorLogFile.2.Name",
    ] {
        assert!(a.param(required).is_some(), "missing {required}");
    }
    assert_eq!(a.get("Device.DeviceInfo.SerialNumber"), Some("SN0001"));
    assert_eq!(a.get("Device.DeviceInfo.ManufacturerOUI"), Some("00D09E"));
    assert_eq!(a.get("Device.NAT.PortMappingNumberOfEntries"), Some("0"));
    assert!(a.instances("Device.NAT.PortMapping.").is_empty());
    assert_eq!(a.get("Device.WiFi.SSIDNumberOfEntries"), Some("2"));
    assert_eq!(a.get("Device.Ethernet.InterfaceNumberOfEntries"), Some("5"));
    let hosts: usize = a
        .get("Device.Hosts.HostNumberOfEntries")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(hosts, a.instances("Device.Hosts.Host.").len());
}

#[test]
fn sim_xsd_types_validate_and_canonicalise() {
    assert_eq!(XsdType::Boolean.canonical("1").as_deref(), Some("true"));
    assert_eq!(
        XsdType::Boolean.canonical("false").as_deref(),
        Some("false")
    );
    assert_eq!(XsdType::Boolean.canonical("yes"), None);
    assert_eq!(XsdType::UnsignedInt.canonical("-1"), None);
    assert_eq!(XsdType::Int.canonical("-1").as_deref(), Some("-1"));
    assert_eq!(XsdType::UnsignedInt.canonical("4294967296"), None);
    assert_eq!(
        XsdType::DateTime
            .canonical("2024-01-01T01:00:00+01:00")
            .as_deref(),
        Some("2024-01-01T00:00:00Z")
    );
    assert_eq!(XsdType::DateTime.canonical("tomorrow"), None);
    assert_eq!(XsdType::HexBinary.canonical("0aF"), None);
    assert_eq!(XsdType::Base64.canonical("aGk=").as_deref(), Some("aGk="));
    assert_eq!(
        XsdType::from_xsi_type("xsd:unsignedInt"),
        Some(XsdType::UnsignedInt)
    );
    assert_eq!(
        XsdType::from_xsi_type("soap-enc:base64"),
        Some(XsdType::Base64)
    );
    assert_eq!(XsdType::from_xsi_type("xsd:float"), None);
    assert!(XsdType::UnsignedInt.accepts_tag(XsdType::String));
    assert!(XsdType::UnsignedInt.accepts_tag(XsdType::Int));
    assert!(!XsdType::UnsignedInt.accepts_tag(XsdType::Boolean));
    assert!(XsdType::String.accepts_tag(XsdType::Boolean));
}

// ---------------------------------------------------------------------------
// GetParameterValues / GetParameterNames
// ---------------------------------------------------------------------------

#[test]
fn sim_gpv_full_names_partial_paths_and_hidden() {
    let mut d = dev();
    let l = gpv(
        &mut d,
        &[
            "Device.DeviceInfo.UpTime",
            "Device.ManagementServer.HeartbeatPolicy.",
        ],
    )
    .unwrap();
    let names: Vec<&str> = l.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Device.DeviceInfo.UpTime",
            "Device.ManagementServer.HeartbeatPolicy.Enable",
            "Device.ManagementServer.HeartbeatPolicy.ReportingInterval",
            "Device.ManagementServer.HeartbeatPolicy.InitiationTime",
        ]
    );
    assert_eq!(l[0].xsi_type.as_deref(), Some("xsd:unsignedInt"));
    assert_eq!(l[1].value, "false");
    assert_eq!(l[1].xsi_type.as_deref(), Some("xsd:boolean"));
    assert_eq!(l[3].value, "0001-01-01T00:00:00Z");

    // Hidden values read back empty, but the device keeps them.
    assert_eq!(value(&mut d, "Device.ManagementServer.Password"), "");
    assert_eq!(
        value(&mut d, "Device.ManagementServer.ConnectionRequestPassword"),
        ""
    );
    assert_eq!(d.cr_credentials(), ("cruser".into(), "crpass".into()));
    assert_eq!(
        value(&mut d, "Device.ManagementServer.ConnectionRequestURL"),
        "http://127.0.0.1:30005/cr"
    );

    // Any unknown name fails the whole call.
    let r = gpv(
        &mut d,
        &["Device.DeviceInfo.UpTime", "Device.DeviceInfo.Nope"],
    );
    assert_eq!(r.unwrap_err().detail.fault_code, 9005);
    // An object named without the trailing dot is not a parameter.
    assert_eq!(
        gpv(&mut d, &["Device.DeviceInfo"])
            .unwrap_err()
            .detail
            .fault_code,
        9005
    );
    // A parameter named with a trailing dot is not an object.
    assert_eq!(
        gpv(&mut d, &["Device.DeviceInfo.UpTime."])
            .unwrap_err()
            .detail
            .fault_code,
        9005
    );
    // Instance wildcards are not supported.
    assert_eq!(
        gpv(&mut d, &["Device.WiFi.SSID.*.SSID"])
            .unwrap_err()
            .detail
            .fault_code,
        9005
    );
    assert_eq!(
        code(call(
            &mut d,
            GetParameterValues {
                parameter_names: vec![]
            }
        )),
        9003
    );

    // The empty name is the whole tree.
    let all = gpv(&mut d, &[""]).unwrap();
    assert_eq!(all.len(), d.tree.param_count());
}

#[test]
fn sim_gpv_dynamic_values_follow_time() {
    let mut d = dev();
    let later = t0() + Duration::seconds(3600);
    let r = d
        .handle_request(
            &Rpc::GetParameterValues(GetParameterValues {
                parameter_names: vec![
                    "Device.DeviceInfo.UpTime".into(),
                    "Device.Time.CurrentLocalTime".into(),
                ],
            }),
            later,
        )
        .unwrap();
    let Rpc::GetParameterValuesResponse(r) = r else {
        panic!()
    };
    assert_eq!(r.parameter_list[0].value, "3600");
    assert_eq!(r.parameter_list[1].value, "2024-05-01T13:00:00Z");
}

#[test]
fn sim_boolean_digits_style() {
    let mut s = settings();
    s.boolean_digits = true;
    let mut d = CpeDevice::new(identity("SN0001"), s, t0());
    assert_eq!(
        value(&mut d, "Device.ManagementServer.PeriodicInformEnable"),
        "1"
    );
}

#[test]
fn sim_gpn_next_level_semantics() {
    let mut d = dev();
    assert_eq!(
        gpn(&mut d, "", true).unwrap(),
        vec![("Device.".to_string(), false)]
    );
    let hb = gpn(&mut d, "Device.ManagementServer.HeartbeatPolicy.", true).unwrap();
    assert_eq!(
        hb,
        vec![
            (
                "Device.ManagementServer.HeartbeatPolicy.Enable".to_string(),
                true
            ),
            (
                "Device.ManagementServer.HeartbeatPolicy.ReportingInterval".to_string(),
                true
            ),
            (
                "Device.ManagementServer.HeartbeatPolicy.InitiationTime".to_string(),
                true
            ),
        ]
    );
    // NextLevel=false on a partial path: the object itself plus everything below.
    let all = gpn(&mut d, "Device.ManagementServer.HeartbeatPolicy.", false).unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(
        all[0],
        (
            "Device.ManagementServer.HeartbeatPolicy.".to_string(),
            false
        )
    );
    // A parameter: NextLevel must be false.
    assert_eq!(
        gpn(&mut d, "Device.DeviceInfo.UpTime", false).unwrap(),
        vec![("Device.DeviceInfo.UpTime".to_string(), false)]
    );
    assert_eq!(
        gpn(&mut d, "Device.DeviceInfo.UpTime", true)
            .unwrap_err()
            .detail
            .fault_code,
        9003
    );
    assert_eq!(
        gpn(&mut d, "Device.Nope.", true)
            .unwrap_err()
            .detail
            .fault_code,
        9005
    );
    // Writable: tables that allow AddObject, instances that allow DeleteObject.
    let nat = gpn(&mut d, "Device.NAT.", true).unwrap();
    assert!(nat.contains(&("Device.NAT.PortMapping.".to_string(), true)));
    assert!(nat.contains(&("Device.NAT.PortMappingNumberOfEntries".to_string(), false)));
    let hosts = gpn(&mut d, "Device.Hosts.", true).unwrap();
    assert!(hosts.contains(&("Device.Hosts.Host.".to_string(), false)));
    let ip = gpn(&mut d, "Device.IP.Interface.", true).unwrap();
    assert_eq!(
        ip,
        vec![
            ("Device.IP.Interface.1.".to_string(), true),
            ("Device.IP.Interface.2.".to_string(), true)
        ]
    );
    assert!(!gpn(&mut d, "Device.Hosts.Host.1.", false).unwrap()[0].1);
    // The whole tree: every object and parameter, no root entry.
    let whole = gpn(&mut d, "", false).unwrap();
    assert_eq!(whole[0].0, "Device.");
    assert!(whole.len() > d.tree.param_count());
}

// ---------------------------------------------------------------------------
// SetParameterValues
// ---------------------------------------------------------------------------

#[test]
fn sim_spv_applies_and_stores_parameter_key() {
    let mut d = dev();
    let r = spv(
        &mut d,
        vec![
            pv(
                "Device.ManagementServer.PeriodicInformEnable",
                "1",
                "xsd:boolean",
            ),
            pv(
                "Device.ManagementServer.PeriodicInformInterval",
                "3600",
                "xsd:unsignedInt",
            ),
            pv(
                "Device.ManagementServer.PeriodicInformTime",
                "2024-01-01T00:00:00Z",
                "xsd:dateTime",
            ),
            pv("Device.WiFi.SSID.1.SSID", "home", "xsd:string"),
        ],
        "cfg-1",
    )
    .unwrap();
    assert_eq!(
        r,
        Rpc::SetParameterValuesResponse(SetParameterValuesResponse { status: 0 })
    );
    assert_eq!(
        value(&mut d, "Device.ManagementServer.ParameterKey"),
        "cfg-1"
    );
    assert_eq!(
        value(&mut d, "Device.ManagementServer.PeriodicInformEnable"),
        "true"
    );
    assert_eq!(value(&mut d, "Device.WiFi.SSID.1.SSID"), "home");
    assert_eq!(d.periodic_interval(), Some(3600));
    // The ACS's own changes are not notified back.
    assert!(!events(&d).contains(&ev("4 VALUE CHANGE", "")));
    let eff = d.session_ended(true, t0());
    assert_eq!(eff, vec![Effect::PeriodicInformChanged]);
}

#[test]
fn sim_spv_is_atomic_with_per_parameter_faults() {
    let mut d = dev();
    let f = spv(
        &mut d,
        vec![
            pv("Device.WiFi.SSID.1.SSID", "changed", "xsd:string"),
            pv("Device.DeviceInfo.Nope", "1", "xsd:string"),
            pv("Device.DeviceInfo.SerialNumber", "X", "xsd:string"),
            pv(
                "Device.ManagementServer.PeriodicInformInterval",
                "0",
                "xsd:unsignedInt",
            ),
            pv(
                "Device.ManagementServer.CWMPRetryMinimumWaitInterval",
                "true",
                "xsd:boolean",
            ),
            pv("Device.Firewall.Config", "Paranoid", "xsd:string"),
            pv("Device.WiFi.SSID.1.SSID", "again", "xsd:string"),
            pv("Device.DeviceInfo.", "x", "xsd:string"),
        ],
        "cfg-2",
    )
    .unwrap_err();
    assert_eq!(f.detail.fault_code, 9003);
    assert_eq!(f.faultcode, "Client");
    let got: Vec<(&str, u32)> = f
        .detail
        .set_parameter_values_fault
        .iter()
        .map(|s| (s.parameter_name.as_str(), s.fault_code))
        .collect();
    assert_eq!(
        got,
        vec![
            ("Device.DeviceInfo.Nope", 9005),
            ("Device.DeviceInfo.SerialNumber", 9008),
            ("Device.ManagementServer.PeriodicInformInterval", 9007),
            ("Device.ManagementServer.CWMPRetryMinimumWaitInterval", 9006),
            ("Device.Firewall.Config", 9007),
            ("Device.WiFi.SSID.1.SSID", 9003),
            ("Device.DeviceInfo.", 9005),
        ]
    );
    // Nothing applied, ParameterKey unchanged.
    assert_ne!(value(&mut d, "Device.WiFi.SSID.1.SSID"), "changed");
    assert_eq!(value(&mut d, "Device.ManagementServer.ParameterKey"), "");
}

#[test]
fn sim_spv_type_tags_like_a_strict_cpe() {
    let mut d = dev();
    let ok = |d: &mut CpeDevice, v: &str, ty: &str| {
        spv(
            d,
            vec![pv("Device.ManagementServer.PeriodicInformInterval", v, ty)],
            "",
        )
        .is_ok()
    };
    assert!(ok(&mut d, "600", "xsd:unsignedInt"));
    assert!(
        ok(&mut d, "601", "xsd:string"),
        "xsd:string is accepted for anything"
    );
    assert!(
        ok(&mut d, "602", "xsd:int"),
        "integer types are interchangeable"
    );
    let mut no_type = pv("Device.ManagementServer.PeriodicInformInterval", "603", "");
    no_type.xsi_type = None;
    assert!(spv(&mut d, vec![no_type], "").is_ok());
    assert!(!ok(&mut d, "true", "xsd:boolean"));
    assert!(!ok(&mut d, "604", "xsd:float"), "unknown xsi:type");
    assert!(!ok(&mut d, "abc", "xsd:string"));
    assert_eq!(d.periodic_interval(), Some(603));
    // A string parameter takes any tag.
    assert!(spv(
        &mut d,
        vec![pv("Device.DeviceInfo.ProvisioningCode", "1", "xsd:int")],
        ""
    )
    .is_ok());
    // Hidden parameters are writable, read back empty.
    spv(
        &mut d,
        vec![pv(
            "Device.ManagementServer.ConnectionRequestPassword",
            "s3cret",
            "xsd:string",
        )],
        "k",
    )
    .unwrap();
    assert_eq!(
        value(&mut d, "Device.ManagementServer.ConnectionRequestPassword"),
        ""
    );
    assert_eq!(d.cr_credentials().1, "s3cret");
    // ParameterKey longer than 32 characters.
    assert_eq!(
        code(spv(
            &mut d,
            vec![pv("Device.DeviceInfo.ProvisioningCode", "x", "xsd:string")],
            &"k".repeat(33)
        )),
        9003
    );
}

#[test]
fn sim_spv_acs_url_change_means_bootstrap() {
    let mut d = dev();
    d.inform_delivered(d.event_mark());
    assert!(events(&d).is_empty());
    spv(
        &mut d,
        vec![pv(
            "Device.ManagementServer.URL",
            "http://acs2.example/",
            "xsd:string",
        )],
        "",
    )
    .unwrap();
    assert_eq!(events(&d), vec![ev("0 BOOTSTRAP", "")]);
    assert_eq!(
        d.session_ended(true, t0()),
        vec![Effect::AcsUrlChanged {
            url: "http://acs2.example/".into()
        }]
    );
}

// ---------------------------------------------------------------------------
// SetParameterAttributes / GetParameterAttributes
// ---------------------------------------------------------------------------

fn spa(name: &str, notification: i32) -> SetParameterAttributesStruct {
    SetParameterAttributesStruct {
        name: name.into(),
        notification_change: true,
        notification,
        access_list_change: false,
        access_list: vec![],
    }
}

fn gpa(d: &mut CpeDevice, names: &[&str]) -> Result<Vec<ParameterAttributeStruct>, Fault> {
    match call(
        d,
        GetParameterAttributes {
            parameter_names: names.iter().map(|s| s.to_string()).collect(),
        },
    )? {
        Rpc::GetParameterAttributesResponse(r) => Ok(r.parameter_list),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn sim_spa_gpa_notification_and_access_list() {
    let mut d = dev();
    let set = |d: &mut CpeDevice, list: Vec<SetParameterAttributesStruct>| {
        call(
            d,
            SetParameterAttributes {
                parameter_list: list,
            },
        )
    };
    // Defaults: forceEnabled/forceDefaultEnabled are active.
    let a = gpa(
        &mut d,
        &[
            "Device.DeviceInfo.SoftwareVersion",
            "Device.ManagementServer.ConnectionRequestURL",
            "Device.DeviceInfo.HostName",
        ],
    )
    .unwrap();
    assert_eq!(
        a.iter().map(|x| x.notification).collect::<Vec<_>>(),
        vec![2, 2, 0]
    );

    set(
        &mut d,
        vec![spa(
            "Device.ManagementServer.UDPConnectionRequestAddress",
            2,
        )],
    )
    .unwrap();
    set(&mut d, vec![spa("Device.DeviceInfo.UpTime", 1)]).unwrap();
    // Active notification on a counter/clock is refused.
    assert_eq!(
        code(set(&mut d, vec![spa("Device.DeviceInfo.UpTime", 2)])),
        9009
    );
    assert_eq!(
        code(set(
            &mut d,
            vec![spa("Device.Ethernet.Interface.1.Stats.", 6)]
        )),
        9009
    );
    // forceEnabled cannot be turned off.
    assert_eq!(
        code(set(
            &mut d,
            vec![spa("Device.DeviceInfo.SoftwareVersion", 0)]
        )),
        9009
    );
    assert_eq!(
        code(set(&mut d, vec![spa("Device.DeviceInfo.HostName", 7)])),
        9003
    );
    assert_eq!(code(set(&mut d, vec![spa("Device.Nope", 1)])), 9005);
    // Atomic: a failing entry leaves the earlier one unapplied.
    assert_eq!(
        code(set(
            &mut d,
            vec![
                spa("Device.DeviceInfo.HostName", 1),
                spa("Device.DeviceInfo.UpTime", 2)
            ]
        )),
        9009
    );
    assert_eq!(
        gpa(&mut d, &["Device.DeviceInfo.HostName"]).unwrap()[0].notification,
        0
    );

    // Partial path + AccessList; NotificationChange=false leaves it alone.
    set(
        &mut d,
        vec![SetParameterAttributesStruct {
            name: "Device.WiFi.SSID.1.".into(),
            notification_change: false,
            notification: 0,
            access_list_change: true,
            access_list: vec!["Subscriber".into()],
        }],
    )
    .unwrap();
    let a = gpa(
        &mut d,
        &[
            "Device.WiFi.SSID.1.SSID",
            "Device.ManagementServer.UDPConnectionRequestAddress",
            "Device.DeviceInfo.UpTime",
        ],
    )
    .unwrap();
    assert_eq!(a[0].access_list, vec!["Subscriber".to_string()]);
    assert_eq!(a[0].notification, 0);
    assert_eq!(a[1].notification, 2);
    assert_eq!(a[2].notification, 1);
    assert_eq!(
        gpa(&mut d, &["Device.Nope."])
            .unwrap_err()
            .detail
            .fault_code,
        9005
    );
    let bad_acl = SetParameterAttributesStruct {
        access_list_change: true,
        access_list: vec!["Everyone".into()],
        ..spa("Device.DeviceInfo.HostName", 0)
    };
    assert_eq!(code(set(&mut d, vec![bad_acl])), 9003);
}

#[test]
fn sim_value_change_notification() {
    let mut d = dev();
    d.inform_delivered(d.event_mark());
    // Default notification 0: no event.
    assert!(!d.set_param_local("Device.DeviceInfo.HostName", "renamed"));
    assert!(events(&d).is_empty());
    call(
        &mut d,
        SetParameterAttributes {
            parameter_list: vec![spa("Device.DeviceInfo.HostName", 1)],
        },
    )
    .unwrap();
    // Passive: event and parameter in the next Inform, no immediate session.
    assert!(!d.set_param_local("Device.DeviceInfo.HostName", "again"));
    assert_eq!(events(&d), vec![ev("4 VALUE CHANGE", "")]);
    let mark = d.session_started();
    let inf = d.build_inform(t0());
    assert!(inf
        .parameter_list
        .iter()
        .any(|p| p.name == "Device.DeviceInfo.HostName" && p.value == "again"));
    // Active (forceDefaultEnabled ConnectionRequestURL), raised while that
    // Inform is in flight: it survives the Inform's delivery.
    assert!(d.set_param_local(
        "Device.ManagementServer.ConnectionRequestURL",
        "http://127.0.0.1:1/x"
    ));
    d.inform_delivered(mark);
    d.session_ended(true, t0());
    assert_eq!(events(&d), vec![ev("4 VALUE CHANGE", "")]);
    let inf = d.build_inform(t0());
    assert!(!inf
        .parameter_list
        .iter()
        .any(|p| p.name == "Device.DeviceInfo.HostName"));
    assert!(inf
        .parameter_list
        .iter()
        .any(|p| p.name == "Device.ManagementServer.ConnectionRequestURL"
            && p.value == "http://127.0.0.1:1/x"));
}

// ---------------------------------------------------------------------------
// AddObject / DeleteObject
// ---------------------------------------------------------------------------

fn add(d: &mut CpeDevice, name: &str, key: &str) -> Result<u32, Fault> {
    match call(
        d,
        AddObject {
            object_name: name.into(),
            parameter_key: key.into(),
        },
    )? {
        Rpc::AddObjectResponse(r) => {
            assert_eq!(r.status, 0);
            Ok(r.instance_number)
        }
        other => panic!("unexpected {other:?}"),
    }
}

fn del(d: &mut CpeDevice, name: &str, key: &str) -> Result<Rpc, Fault> {
    call(
        d,
        DeleteObject {
            object_name: name.into(),
            parameter_key: key.into(),
        },
    )
}

#[test]
fn sim_add_and_delete_object() {
    let mut d = dev();
    assert_eq!(add(&mut d, "Device.NAT.PortMapping.", "pm-1").unwrap(), 1);
    assert_eq!(
        value(&mut d, "Device.ManagementServer.ParameterKey"),
        "pm-1"
    );
    assert_eq!(value(&mut d, "Device.NAT.PortMappingNumberOfEntries"), "1");
    let l = gpv(&mut d, &["Device.NAT.PortMapping.1."]).unwrap();
    assert!(l.len() >= 10);
    assert_eq!(value(&mut d, "Device.NAT.PortMapping.1.Enable"), "false");
    assert_eq!(value(&mut d, "Device.NAT.PortMapping.1.Alias"), "cpe-1");
    assert_eq!(value(&mut d, "Device.NAT.PortMapping.1.Protocol"), "TCP");
    spv(
        &mut d,
        vec![
            pv("Device.NAT.PortMapping.1.Enable", "true", "xsd:boolean"),
            pv(
                "Device.NAT.PortMapping.1.ExternalPort",
                "8080",
                "xsd:unsignedInt",
            ),
            pv("Device.NAT.PortMapping.1.Protocol", "UDP", "xsd:string"),
        ],
        "pm-1b",
    )
    .unwrap();
    assert_eq!(add(&mut d, "Device.NAT.PortMapping.", "pm-2").unwrap(), 2);
    assert_eq!(
        del(&mut d, "Device.NAT.PortMapping.1.", "pm-3").unwrap(),
        Rpc::DeleteObjectResponse(DeleteObjectResponse { status: 0 })
    );
    assert_eq!(
        value(&mut d, "Device.ManagementServer.ParameterKey"),
        "pm-3"
    );
    assert_eq!(value(&mut d, "Device.NAT.PortMappingNumberOfEntries"), "1");
    assert_eq!(
        gpv(&mut d, &["Device.NAT.PortMapping.1."])
            .unwrap_err()
            .detail
            .fault_code,
        9005
    );
    // Instance numbers are not reused.
    assert_eq!(add(&mut d, "Device.NAT.PortMapping.", "").unwrap(), 3);
    // Nested writable table.
    assert_eq!(
        add(&mut d, "Device.IP.Interface.1.IPv4Address.", "").unwrap(),
        2
    );
    assert_eq!(
        value(&mut d, "Device.IP.Interface.1.IPv4AddressNumberOfEntries"),
        "2"
    );
    // A new IP interface gets an empty nested table.
    let n = add(&mut d, "Device.IP.Interface.", "").unwrap();
    assert_eq!(n, 3);
    assert_eq!(
        value(&mut d, "Device.IP.Interface.3.IPv4AddressNumberOfEntries"),
        "0"
    );
    assert_eq!(
        add(&mut d, "Device.IP.Interface.3.IPv4Address.", "").unwrap(),
        1
    );

    // Faults: read-only tables, non-tables, instance paths, no trailing dot.
    let before = value(&mut d, "Device.ManagementServer.ParameterKey");
    assert_eq!(
        add(&mut d, "Device.Hosts.Host.", "x")
            .unwrap_err()
            .detail
            .fault_code,
        9005
    );
    assert_eq!(
        add(&mut d, "Device.NAT.", "x")
            .unwrap_err()
            .detail
            .fault_code,
        9005
    );
    assert_eq!(
        add(&mut d, "Device.NAT.PortMapping.2.", "x")
            .unwrap_err()
            .detail
            .fault_code,
        9005
    );
    assert_eq!(
        add(&mut d, "Device.NAT.PortMapping", "x")
            .unwrap_err()
            .detail
            .fault_code,
        9005
    );
    assert_eq!(code(del(&mut d, "Device.NAT.PortMapping.", "x")), 9005);
    assert_eq!(code(del(&mut d, "Device.NAT.PortMapping.9.", "x")), 9005);
    assert_eq!(code(del(&mut d, "Device.Hosts.Host.1.", "x")), 9005);
    assert_eq!(code(del(&mut d, "Device.NAT.PortMapping.2", "x")), 9005);
    assert_eq!(
        value(&mut d, "Device.ManagementServer.ParameterKey"),
        before
    );
    // Deleting a nested instance subtree.
    del(&mut d, "Device.IP.Interface.3.", "").unwrap();
    assert_eq!(value(&mut d, "Device.IP.InterfaceNumberOfEntries"), "2");
}

// ---------------------------------------------------------------------------
// Reboot / FactoryReset / ScheduleInform / misc
// ---------------------------------------------------------------------------

#[test]
fn sim_reboot_and_factory_reset() {
    let mut d = dev();
    d.inform_delivered(d.event_mark());
    assert_eq!(
        call(
            &mut d,
            Reboot {
                command_key: "reboot-42".into()
            }
        )
        .unwrap(),
        Rpc::RebootResponse(RebootResponse {})
    );
    assert_eq!(
        d.session_ended(true, t0()),
        vec![Effect::Reboot {
            command_key: "reboot-42".into()
        }]
    );
    let later = t0() + Duration::seconds(100);
    d.reboot(later, Some("reboot-42"));
    assert_eq!(
        events(&d),
        vec![ev("1 BOOT", ""), ev("M Reboot", "reboot-42")]
    );
    let r = d
        .handle_request(
            &Rpc::GetParameterValues(GetParameterValues {
                parameter_names: vec!["Device.DeviceInfo.UpTime".into()],
            }),
            later + Duration::seconds(5),
        )
        .unwrap();
    let Rpc::GetParameterValuesResponse(r) = r else {
        panic!()
    };
    assert_eq!(r.parameter_list[0].value, "5");

    add(&mut d, "Device.NAT.PortMapping.", "k").unwrap();
    spv(
        &mut d,
        vec![pv(
            "Device.ManagementServer.PeriodicInformInterval",
            "60",
            "xsd:unsignedInt",
        )],
        "k2",
    )
    .unwrap();
    assert_eq!(
        call(&mut d, FactoryReset {}).unwrap(),
        Rpc::FactoryResetResponse(FactoryResetResponse {})
    );
    assert!(d.session_ended(true, later).contains(&Effect::FactoryReset));
    d.factory_reset(later);
    assert_eq!(events(&d), vec![ev("0 BOOTSTRAP", ""), ev("1 BOOT", "")]);
    assert!(d.tree.instances("Device.NAT.PortMapping.").is_empty());
    assert_eq!(value(&mut d, "Device.ManagementServer.ParameterKey"), "");
    // Deployment settings come back (factory provisioning), endpoints too.
    assert_eq!(d.periodic_interval(), Some(300));
    assert_eq!(
        value(&mut d, "Device.ManagementServer.ConnectionRequestURL"),
        "http://127.0.0.1:30005/cr"
    );
}

#[test]
fn sim_schedule_inform() {
    let mut d = dev();
    assert_eq!(
        code(call(
            &mut d,
            ScheduleInform {
                delay_seconds: 0,
                command_key: "s".into()
            }
        )),
        9003
    );
    call(
        &mut d,
        ScheduleInform {
            delay_seconds: 30,
            command_key: "sched-1".into(),
        },
    )
    .unwrap();
    assert_eq!(
        d.session_ended(true, t0()),
        vec![Effect::ScheduleInform {
            delay_seconds: 30,
            command_key: "sched-1".into()
        }]
    );
    d.inform_delivered(d.event_mark());
    d.scheduled_inform("sched-1");
    assert_eq!(
        events(&d),
        vec![ev("3 SCHEDULED", ""), ev("M ScheduleInform", "sched-1")]
    );
}

#[test]
fn sim_misc_methods() {
    let mut d = dev();
    let Rpc::GetRPCMethodsResponse(r) = call(&mut d, GetRPCMethods {}).unwrap() else {
        panic!()
    };
    assert_eq!(r.method_list.len(), 20);
    assert!(r.method_list.contains(&"ChangeDUState".to_string()));
    assert_eq!(
        call(
            &mut d,
            SetVouchers {
                voucher_list: vec!["aGk=".into()]
            }
        )
        .unwrap(),
        Rpc::SetVouchersResponse(SetVouchersResponse {})
    );
    assert_eq!(
        call(
            &mut d,
            GetOptions {
                option_name: String::new()
            }
        )
        .unwrap(),
        Rpc::GetOptionsResponse(GetOptionsResponse {
            option_list: vec![]
        })
    );
    assert_eq!(
        code(call(
            &mut d,
            Rpc::Unknown {
                name: "X_ACME_Frobnicate".into()
            }
        )),
        9000
    );
    assert_eq!(code(call(&mut d, Inform::default())), 9000);
    assert_eq!(code(call(&mut d, RequestDownload::default())), 9000);
}

// ---------------------------------------------------------------------------
// Transfers
// ---------------------------------------------------------------------------

fn download(ck: &str, file_type: &str, url: &str, delay: u32) -> Download {
    Download {
        command_key: ck.into(),
        file_type: file_type.into(),
        url: url.into(),
        file_size: 0,
        delay_seconds: delay,
        ..Download::default()
    }
}

#[test]
fn sim_download_queue_cancel_and_states() {
    let mut d = dev();
    let r = call(
        &mut d,
        download(
            "fw-7",
            "1 Firmware Upgrade Image",
            "http://files/fw/hgw-1000-2.4.1.bin",
            0,
        ),
    )
    .unwrap();
    assert_eq!(
        r,
        Rpc::DownloadResponse(DownloadResponse {
            status: 1,
            start_time: UNKNOWN_TIME.into(),
            complete_time: UNKNOWN_TIME.into()
        })
    );
    call(
        &mut d,
        download(
            "cfg-1",
            "3 Vendor Configuration File",
            "https://files/cfg.xml",
            60,
        ),
    )
    .unwrap();
    let Rpc::GetQueuedTransfersResponse(q) = call(&mut d, GetQueuedTransfers {}).unwrap() else {
        panic!()
    };
    assert_eq!(q.transfer_list.len(), 2);
    assert!(q.transfer_list.iter().all(|t| t.state == 1));
    let Rpc::GetAllQueuedTransfersResponse(q) = call(&mut d, GetAllQueuedTransfers {}).unwrap()
    else {
        panic!()
    };
    assert_eq!(q.transfer_list[1].file_type, "3 Vendor Configuration File");
    assert!(q.transfer_list[1].is_download);

    let eff = d.session_ended(true, t0());
    let ids: Vec<(u64, u32)> = eff
        .iter()
        .filter_map(|e| match e {
            Effect::Transfer { id, delay_seconds } => Some((*id, *delay_seconds)),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[1].1, 60);

    // Cancel a not-yet-started transfer; a second cancel has nothing to cancel.
    call(
        &mut d,
        CancelTransfer {
            command_key: "cfg-1".into(),
        },
    )
    .unwrap();
    assert_eq!(
        code(call(
            &mut d,
            CancelTransfer {
                command_key: "cfg-1".into()
            }
        )),
        9021
    );
    assert!(
        d.begin_transfer(ids[1].0, t0()).is_none(),
        "cancelled transfer does not start"
    );

    // In progress: not cancellable.
    let job = d.begin_transfer(ids[0].0, t0()).unwrap();
    assert_eq!(job.url, "http://files/fw/hgw-1000-2.4.1.bin");
    let Rpc::GetQueuedTransfersResponse(q) = call(&mut d, GetQueuedTransfers {}).unwrap() else {
        panic!()
    };
    assert_eq!(q.transfer_list[0].state, 2);
    assert_eq!(
        code(call(
            &mut d,
            CancelTransfer {
                command_key: "fw-7".into()
            }
        )),
        9021
    );

    d.inform_delivered(d.event_mark());
    let done = t0() + Duration::seconds(20);
    d.complete_transfer(job.id, TransferOutcome::success(t0(), done), done);
    assert_eq!(value(&mut d, "Device.DeviceInfo.SoftwareVersion"), "2.4.1");
    assert_eq!(
        events(&d),
        vec![
            ev("1 BOOT", ""),
            ev("7 TRANSFER COMPLETE", ""),
            ev("M Download", "fw-7")
        ]
    );
    let req: Vec<_> = d.pending_requests().cloned().collect();
    assert_eq!(req.len(), 1);
    let Rpc::TransferComplete(tc) = req[0].to_rpc() else {
        panic!()
    };
    assert_eq!(tc.command_key, "fw-7");
    assert_eq!(tc.fault_struct.fault_code, 0);
    assert_eq!(tc.start_time, "2024-05-01T12:00:00Z");
    assert_eq!(tc.complete_time, "2024-05-01T12:00:20Z");
    let Rpc::GetQueuedTransfersResponse(q) = call(&mut d, GetQueuedTransfers {}).unwrap() else {
        panic!()
    };
    assert_eq!(q.transfer_list[0].state, 3);
    // Delivery of the TransferComplete clears its events and the queue entry.
    d.inform_delivered(d.event_mark());
    assert_eq!(
        events(&d),
        vec![ev("7 TRANSFER COMPLETE", ""), ev("M Download", "fw-7")]
    );
    d.request_delivered(req[0].id());
    assert!(events(&d).is_empty());
    assert!(d.transfers().is_empty());
}

#[test]
fn sim_download_faults() {
    let mut d = dev();
    assert_eq!(
        code(call(
            &mut d,
            download("a", "1 Firmware Upgrade Image", "ftp://files/fw.bin", 0)
        )),
        9013
    );
    assert_eq!(
        code(call(
            &mut d,
            download("a", "7 Something", "http://files/fw.bin", 0)
        )),
        9003
    );
    assert_eq!(
        code(call(
            &mut d,
            download(
                "a",
                "1 Firmware Upgrade Image",
                "http://u:p@files/fw.bin",
                0
            )
        )),
        9003
    );
    assert_eq!(
        code(call(
            &mut d,
            download(
                &"k".repeat(33),
                "1 Firmware Upgrade Image",
                "http://files/fw.bin",
                0
            )
        )),
        9003
    );
    for i in 0..16 {
        call(
            &mut d,
            download(&format!("k{i}"), "2 Web Content", "http://files/w.tar", 0),
        )
        .unwrap();
    }
    assert_eq!(
        code(call(
            &mut d,
            download("k16", "2 Web Content", "http://files/w.tar", 0)
        )),
        9004
    );
}

#[test]
fn sim_failed_download_reports_fault() {
    let mut d = dev();
    call(
        &mut d,
        download(
            "fw-8",
            "1 Firmware Upgrade Image",
            "http://files/missing-9.9.bin",
            0,
        ),
    )
    .unwrap();
    let Effect::Transfer { id, .. } = d.session_ended(true, t0())[0].clone() else {
        panic!()
    };
    let sw = value(&mut d, "Device.DeviceInfo.SoftwareVersion");
    d.begin_transfer(id, t0()).unwrap();
    d.complete_transfer(
        id,
        TransferOutcome::failure(9016, "HTTP 404", t0(), t0()),
        t0(),
    );
    assert_eq!(value(&mut d, "Device.DeviceInfo.SoftwareVersion"), sw);
    let Rpc::TransferComplete(tc) = d.pending_requests().next().unwrap().to_rpc() else {
        panic!()
    };
    assert_eq!(tc.fault_struct.fault_code, 9016);
    assert!(!events(&d)
        .iter()
        .any(|(c, _)| c == "1 BOOT" && d.pending_events().len() < 3));
}

#[test]
fn sim_upload_and_schedule_download() {
    let mut d = dev();
    let up = |ft: &str| Upload {
        command_key: "up".into(),
        file_type: ft.into(),
        url: "http://files/upload/cfg".into(),
        ..Upload::default()
    };
    let Rpc::UploadResponse(r) = call(&mut d, up("1 Vendor Configuration File")).unwrap() else {
        panic!()
    };
    assert_eq!(r.status, 1);
    call(&mut d, up("3 Vendor Configuration File 1")).unwrap();
    call(&mut d, up("4 Vendor Log File 2")).unwrap();
    assert_eq!(
        code(call(&mut d, up("3 Vendor Configuration File 9"))),
        9003
    );
    assert_eq!(code(call(&mut d, up("5 Something"))), 9003);
    let eff = d.session_ended(true, t0());
    let Effect::Transfer { id, .. } = eff[0] else {
        panic!()
    };
    let job = d.begin_transfer(id, t0()).unwrap();
    assert_eq!(job.kind, TransferKind::Upload);
    let body = String::from_utf8(job.body).unwrap();
    assert!(body.contains("Device.ManagementServer.PeriodicInformInterval"));
    assert!(!body.contains("crpass"), "hidden values are not exported");
    let Effect::Transfer { id: log_id, .. } = eff[2] else {
        panic!()
    };
    let log = String::from_utf8(d.begin_transfer(log_id, t0()).unwrap().body).unwrap();
    assert!(log.contains("system booted"));
    d.complete_transfer(id, TransferOutcome::success(t0(), t0()), t0());
    assert!(events(&d).contains(&ev("M Upload", "up")));

    let sd = |windows: Vec<TimeWindowStruct>| ScheduleDownload {
        command_key: "sd-1".into(),
        file_type: "1 Firmware Upgrade Image".into(),
        url: "http://files/fw-3.0.bin".into(),
        time_window_list: windows,
        ..ScheduleDownload::default()
    };
    let w = |s: u32, e: u32, mode: &str| TimeWindowStruct {
        window_start: s,
        window_end: e,
        window_mode: mode.into(),
        user_message: String::new(),
        max_retries: 0,
    };
    assert_eq!(code(call(&mut d, sd(vec![]))), 9003);
    assert_eq!(
        code(call(&mut d, sd(vec![w(10, 5, "1 At Any Time")]))),
        9003
    );
    assert_eq!(
        code(call(
            &mut d,
            sd(vec![w(0, 50, "1 At Any Time"), w(40, 90, "2 Immediately")])
        )),
        9003
    );
    assert_eq!(code(call(&mut d, sd(vec![w(0, 50, "9 Whenever")]))), 9003);
    assert_eq!(
        call(
            &mut d,
            sd(vec![w(5, 50, "2 Immediately"), w(60, 90, "1 At Any Time")])
        )
        .unwrap(),
        Rpc::ScheduleDownloadResponse(ScheduleDownloadResponse {})
    );
    let eff = d.session_ended(true, t0());
    let Effect::Transfer { id, delay_seconds } = eff[0] else {
        panic!()
    };
    assert_eq!(delay_seconds, 5);
    d.begin_transfer(id, t0()).unwrap();
    d.complete_transfer(id, TransferOutcome::success(t0(), t0()), t0());
    assert!(events(&d).contains(&ev("M ScheduleDownload", "sd-1")));
    assert_eq!(value(&mut d, "Device.DeviceInfo.SoftwareVersion"), "3.0");
}

#[test]
fn sim_version_from_url() {
    assert_eq!(version_from_url("https://f/fw/hgw-1000-2.4.1.bin"), "2.4.1");
    assert_eq!(version_from_url("http://f/app-1.0.ipk?x=1"), "1.0");
    assert_eq!(version_from_url("http://f/fw_v7.bin"), "7");
    assert_eq!(version_from_url("http://f/firmware.bin"), "firmware");
}

// ---------------------------------------------------------------------------
// ChangeDUState
// ---------------------------------------------------------------------------

const UUID1: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";

fn install(url: &str, uuid: Option<&str>) -> OperationStruct {
    OperationStruct::Install(InstallOpStruct {
        url: url.into(),
        uuid: uuid.map(String::from),
        username: None,
        password: None,
        execution_env_ref: Some("Device.SoftwareModules.ExecEnv.1".into()),
    })
}

fn du_results(d: &mut CpeDevice, ops: Vec<OperationStruct>, ck: &str) -> Vec<OpResultStruct> {
    call(
        d,
        ChangeDUState {
            operations: ops,
            command_key: Some(ck.into()),
        },
    )
    .unwrap();
    let eff = d.session_ended(true, t0());
    let Some(Effect::ChangeDuState { id }) = eff.into_iter().next() else {
        panic!()
    };
    d.apply_du_change(id, t0());
    let req = d.pending_requests().last().unwrap().clone();
    let Rpc::DUStateChangeComplete(r) = req.to_rpc() else {
        panic!()
    };
    assert_eq!(r.command_key.as_deref(), Some(ck));
    d.request_delivered(req.id());
    r.results
}

#[test]
fn sim_change_du_state() {
    let mut d = dev();
    d.inform_delivered(d.event_mark());
    // Bad UUIDs fail the whole call.
    let bad = ChangeDUState {
        operations: vec![install("http://f/app-1.0.ipk", Some("not-a-uuid"))],
        command_key: None,
    };
    assert_eq!(code(call(&mut d, bad)), 9022);
    let bad = ChangeDUState {
        operations: vec![OperationStruct::Uninstall(UninstallOpStruct {
            uuid: String::new(),
            version: None,
            execution_env_ref: None,
        })],
        command_key: None,
    };
    assert_eq!(code(call(&mut d, bad)), 9022);
    assert_eq!(
        code(call(
            &mut d,
            ChangeDUState {
                operations: vec![],
                command_key: None
            }
        )),
        9003
    );

    let r = du_results(
        &mut d,
        vec![
            install("http://f/app-1.0.ipk", Some(UUID1)),
            install("http://f/other-2.1.ipk", None),
        ],
        "du-1",
    );
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].uuid, UUID1);
    assert_eq!(r[0].current_state, "Installed");
    assert_eq!(r[0].version, "1.0");
    assert_eq!(
        r[0].deployment_unit_ref,
        "Device.SoftwareModules.DeploymentUnit.1"
    );
    assert_eq!(
        r[0].execution_unit_ref_list,
        "Device.SoftwareModules.ExecutionUnit.1"
    );
    assert_eq!(r[0].fault.fault_code, 0);
    assert!(r[1].uuid.len() == 36 && r[1].uuid.chars().nth(14) == Some('4'));
    assert_eq!(
        value(
            &mut d,
            "Device.SoftwareModules.DeploymentUnitNumberOfEntries"
        ),
        "2"
    );
    assert_eq!(
        value(&mut d, "Device.SoftwareModules.DeploymentUnit.1.Status"),
        "Installed"
    );
    assert_eq!(
        value(&mut d, "Device.SoftwareModules.ExecutionUnit.2.Status"),
        "Active"
    );
    assert!(events(&d).is_empty(), "delivered DU events are gone");

    // Duplicate install, unknown EE, unknown uninstall: per-operation faults.
    let r = du_results(
        &mut d,
        vec![
            install("http://f/app-1.0.ipk", Some(UUID1)),
            OperationStruct::Install(InstallOpStruct {
                url: "http://f/x-1.ipk".into(),
                execution_env_ref: Some("Device.SoftwareModules.ExecEnv.7".into()),
                ..InstallOpStruct::default()
            }),
            OperationStruct::Uninstall(UninstallOpStruct {
                uuid: "00000000-0000-4000-8000-000000000000".into(),
                version: None,
                execution_env_ref: None,
            }),
        ],
        "du-2",
    );
    let codes: Vec<u32> = r.iter().map(|x| x.fault.fault_code).collect();
    assert_eq!(codes, vec![9026, 9023, 9028]);
    assert!(r.iter().all(|x| x.current_state == "Failed"));

    // Update to a new version, then the same version again.
    let upd = |url: &str| {
        OperationStruct::Update(UpdateOpStruct {
            uuid: Some(UUID1.into()),
            version: None,
            url: Some(url.into()),
            username: None,
            password: None,
        })
    };
    let r = du_results(&mut d, vec![upd("http://f/app-1.1.ipk")], "du-3");
    assert_eq!((r[0].version.as_str(), r[0].fault.fault_code), ("1.1", 0));
    assert_eq!(
        value(&mut d, "Device.SoftwareModules.ExecutionUnit.1.Version"),
        "1.1"
    );
    let r = du_results(&mut d, vec![upd("http://f/app-1.1.ipk")], "du-4");
    assert_eq!(r[0].fault.fault_code, 9032);

    // Uninstall removes the DU and its EU.
    let r = du_results(
        &mut d,
        vec![OperationStruct::Uninstall(UninstallOpStruct {
            uuid: UUID1.into(),
            version: None,
            execution_env_ref: None,
        })],
        "du-5",
    );
    assert_eq!(r[0].current_state, "Uninstalled");
    assert_eq!(
        value(
            &mut d,
            "Device.SoftwareModules.DeploymentUnitNumberOfEntries"
        ),
        "1"
    );
    assert_eq!(
        value(
            &mut d,
            "Device.SoftwareModules.ExecutionUnitNumberOfEntries"
        ),
        "1"
    );
    assert_eq!(
        value(
            &mut d,
            "Device.SoftwareModules.ExecEnv.1.ActiveExecutionUnits"
        ),
        "Device.SoftwareModules.ExecutionUnit.2"
    );
}

// ---------------------------------------------------------------------------
// Timers
// ---------------------------------------------------------------------------

#[test]
fn sim_periodic_and_retry_timing() {
    let mut d = dev();
    assert_eq!(
        d.next_periodic_inform(t0()),
        Some(t0() + Duration::seconds(300))
    );
    spv(
        &mut d,
        vec![
            pv(
                "Device.ManagementServer.PeriodicInformInterval",
                "3600",
                "xsd:unsignedInt",
            ),
            pv(
                "Device.ManagementServer.PeriodicInformTime",
                "2024-01-01T00:30:00Z",
                "xsd:dateTime",
            ),
        ],
        "",
    )
    .unwrap();
    assert_eq!(
        d.next_periodic_inform(t0()),
        Some(Utc.with_ymd_and_hms(2024, 5, 1, 12, 30, 0).unwrap())
    );
    spv(
        &mut d,
        vec![pv(
            "Device.ManagementServer.PeriodicInformEnable",
            "false",
            "xsd:boolean",
        )],
        "",
    )
    .unwrap();
    assert_eq!(d.next_periodic_inform(t0()), None);

    // Back-off windows of TR-069 §3.2.1.1 with the defaults m=5, k=2.
    for (n, lo, hi) in [
        (1u32, 5.0, 10.0),
        (2, 10.0, 20.0),
        (3, 20.0, 40.0),
        (10, 2560.0, 5120.0),
        (15, 2560.0, 5120.0),
    ] {
        while d.retry_count() < n {
            d.session_ended(false, t0());
        }
        for _ in 0..20 {
            let w = d.retry_delay_secs();
            assert!((lo..=hi).contains(&w), "retry {n}: {w}");
        }
    }
    d.session_ended(true, t0());
    assert_eq!(d.retry_count(), 0);
}

// ---------------------------------------------------------------------------
// Whole sessions against a fake ACS
// ---------------------------------------------------------------------------

/// A minimal ACS built from codec calls: parses what the CPE POSTs and
/// serializes its answers, the way the real endpoint would.
struct FakeAcs {
    ns: String,
    n: u32,
}

impl FakeAcs {
    fn new() -> Self {
        FakeAcs {
            ns: CWMP_NS_1_2.into(),
            n: 0,
        }
    }
    fn read(&mut self, body: &[u8]) -> Envelope {
        let env = parse(body, &Limits::default()).expect("CPE output parses");
        self.ns = env.ns.clone();
        env
    }
    fn reply(&self, id: Option<String>, rpc: Rpc) -> Vec<u8> {
        serialize(
            &Envelope::rpc(self.ns.clone(), id, rpc),
            &OutputStyle::default(),
        )
    }
    fn request(&mut self, rpc: impl Into<Rpc>) -> Vec<u8> {
        self.n += 1;
        self.reply(Some(format!("acs-{:04}", self.n)), rpc.into())
    }
    fn inform_response(&self, inform: &Envelope, use_version: Option<&str>) -> Vec<u8> {
        let env = Envelope {
            ns: self.ns.clone(),
            header: Header {
                id: inform.header.id.clone(),
                use_cwmp_version: use_version.map(String::from),
                ..Header::default()
            },
            body: Body::Rpc(Rpc::InformResponse(InformResponse { max_envelopes: 1 })),
        };
        serialize(&env, &OutputStyle::default())
    }
}

fn post(step: SessionStep) -> Vec<u8> {
    match step {
        SessionStep::Post(b) => b,
        other => panic!("expected a POST, got {other:?}"),
    }
}

fn inform_of(env: &Envelope) -> &Inform {
    match env.as_rpc() {
        Some(Rpc::Inform(i)) => i,
        other => panic!("expected Inform, got {other:?}"),
    }
}

fn event_codes(i: &Inform) -> Vec<(String, String)> {
    i.event
        .iter()
        .map(|e| (e.event_code.clone(), e.command_key.clone()))
        .collect()
}

#[test]
fn sim_session_bootstrap_then_acs_requests() {
    let mut d = dev();
    let mut acs = FakeAcs::new();
    let (mut s, body) = CpeSession::start(&mut d, t0());
    let env = acs.read(&body);
    assert_eq!(env.ns, CWMP_NS_1_2);
    assert_eq!(
        env.header.supported_cwmp_versions.as_deref(),
        Some("1.0,1.1,1.2,1.3,1.4")
    );
    assert_eq!(env.header.session_timeout, Some(60));
    let inf = inform_of(&env);
    assert_eq!(
        event_codes(inf),
        vec![ev("0 BOOTSTRAP", ""), ev("1 BOOT", "")]
    );
    assert_eq!(inf.device_id.oui, "00D09E");
    assert_eq!(inf.device_id.product_class, "HGW-1000");
    assert_eq!(inf.device_id.serial_number, "SN0001");
    assert_eq!(inf.retry_count, 0);
    assert_eq!(inf.max_envelopes, 1);
    let forced: Vec<&str> = inf.parameter_list.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        forced,
        vec![
            "Device.RootDataModelVersion",
            "Device.DeviceInfo.HardwareVersion",
            "Device.DeviceInfo.SoftwareVersion",
            "Device.DeviceInfo.ProvisioningCode",
            "Device.ManagementServer.ParameterKey",
            "Device.ManagementServer.ConnectionRequestURL",
        ]
    );

    let step = s.on_reply(&mut d, 200, &acs.inform_response(&env, Some("1.4")), t0());
    assert_eq!(post(step), Vec::<u8>::new(), "empty POST: no CPE requests");
    assert_eq!(s.use_cwmp_version(), Some("1.4"));
    assert!(
        d.pending_events().is_empty(),
        "InformResponse delivers the events"
    );

    // GPV: answered with the ACS's ID.
    let req = acs.request(GetParameterValues {
        parameter_names: vec!["Device.ManagementServer.HeartbeatPolicy.".into()],
    });
    let resp = acs.read(&post(s.on_reply(&mut d, 200, &req, t0())));
    assert_eq!(resp.header.id.as_deref(), Some("acs-0001"));
    let Some(Rpc::GetParameterValuesResponse(r)) = resp.as_rpc() else {
        panic!("{resp:?}")
    };
    assert_eq!(r.parameter_list.len(), 3);

    // SPV with a bad value: a SOAP fault with per-parameter detail.
    let req = acs.request(SetParameterValues {
        parameter_list: vec![pv(
            "Device.ManagementServer.PeriodicInformInterval",
            "soon",
            "xsd:unsignedInt",
        )],
        parameter_key: "k1".into(),
    });
    let resp = acs.read(&post(s.on_reply(&mut d, 200, &req, t0())));
    assert_eq!(resp.header.id.as_deref(), Some("acs-0002"));
    let Body::Fault(f) = &resp.body else {
        panic!("{resp:?}")
    };
    assert_eq!(f.detail.fault_code, 9003);
    assert_eq!(f.detail.set_parameter_values_fault[0].fault_code, 9007);

    // AddObject, then Reboot, then 204.
    let req = acs.request(AddObject {
        object_name: "Device.NAT.PortMapping.".into(),
        parameter_key: "pm".into(),
    });
    let resp = acs.read(&post(s.on_reply(&mut d, 200, &req, t0())));
    assert_eq!(
        resp.as_rpc(),
        Some(&Rpc::AddObjectResponse(AddObjectResponse {
            instance_number: 1,
            status: 0
        }))
    );
    let req = acs.request(Reboot {
        command_key: "reboot-1".into(),
    });
    let resp = acs.read(&post(s.on_reply(&mut d, 200, &req, t0())));
    assert_eq!(resp.as_rpc(), Some(&Rpc::RebootResponse(RebootResponse {})));
    assert_eq!(s.acs_requests_handled(), 4);
    let step = s.on_reply(&mut d, 204, b"", t0());
    assert_eq!(
        step,
        SessionStep::Done(vec![Effect::Reboot {
            command_key: "reboot-1".into()
        }])
    );
    assert!(s.is_over());

    // After the reboot: 1 BOOT + M Reboot, and the ParameterKey shows the AddObject.
    d.reboot(t0() + Duration::seconds(10), Some("reboot-1"));
    let (_s, body) = CpeSession::start(&mut d, t0() + Duration::seconds(12));
    let env = acs.read(&body);
    let inf = inform_of(&env);
    assert_eq!(
        event_codes(inf),
        vec![ev("1 BOOT", ""), ev("M Reboot", "reboot-1")]
    );
    let key = inf
        .parameter_list
        .iter()
        .find(|p| p.name == "Device.ManagementServer.ParameterKey")
        .unwrap();
    assert_eq!(key.value, "pm");
}

#[test]
fn sim_session_replies_in_the_acs_namespace() {
    let mut d = dev();
    let mut acs = FakeAcs::new();
    let (mut s, body) = CpeSession::start(&mut d, t0());
    let env = acs.read(&body);
    acs.ns = CWMP_NS_1_0.into();
    post(s.on_reply(&mut d, 200, &acs.inform_response(&env, None), t0()));
    assert_eq!(s.namespace(), CWMP_NS_1_0);
    let req = acs.request(GetRPCMethods {});
    let resp = acs.read(&post(s.on_reply(&mut d, 200, &req, t0())));
    assert_eq!(resp.ns, CWMP_NS_1_0);
    assert!(matches!(resp.as_rpc(), Some(Rpc::GetRPCMethodsResponse(_))));
}

#[test]
fn sim_session_answers_unknown_methods_with_9000() {
    let mut d = dev();
    let mut acs = FakeAcs::new();
    let (mut s, body) = CpeSession::start(&mut d, t0());
    let env = acs.read(&body);
    post(s.on_reply(&mut d, 200, &acs.inform_response(&env, None), t0()));
    let vendor = br#"<?xml version="1.0"?>
<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-2">
 <soap-env:Header><cwmp:ID soap-env:mustUnderstand="1">v-1</cwmp:ID></soap-env:Header>
 <soap-env:Body><cwmp:X_ACME_Frobnicate><Level>9</Level></cwmp:X_ACME_Frobnicate></soap-env:Body>
</soap-env:Envelope>"#;
    let resp = acs.read(&post(s.on_reply(&mut d, 200, vendor, t0())));
    assert_eq!(resp.header.id.as_deref(), Some("v-1"));
    let Body::Fault(f) = &resp.body else {
        panic!("{resp:?}")
    };
    assert_eq!(f.detail.fault_code, 9000);
    assert!(matches!(
        s.on_reply(&mut d, 200, b"  \r\n", t0()),
        SessionStep::Done(_)
    ));
}

#[test]
fn sim_session_failure_keeps_events_and_counts_retries() {
    let mut d = dev();
    let mut acs = FakeAcs::new();
    let (mut s, _) = CpeSession::start(&mut d, t0());
    let step = s.on_reply(&mut d, 500, b"", t0());
    assert!(matches!(step, SessionStep::Failed { .. }));
    assert_eq!(d.retry_count(), 1);
    // Unparsable answer also fails.
    let (mut s, _) = CpeSession::start(&mut d, t0());
    assert!(matches!(
        s.on_reply(&mut d, 200, b"<html>oops</html>", t0()),
        SessionStep::Failed { .. }
    ));
    // A non-8005 fault to the Inform fails too.
    let (mut s, body) = CpeSession::start(&mut d, t0());
    let env = acs.read(&body);
    let fault = serialize(
        &Envelope::fault(CWMP_NS_1_2, env.header.id.clone(), Fault::acs(8003, "bad")),
        &OutputStyle::default(),
    );
    assert!(matches!(
        s.on_reply(&mut d, 200, &fault, t0()),
        SessionStep::Failed { .. }
    ));
    // An empty answer to the Inform, and a dropped connection, too.
    let (mut s, _) = CpeSession::start(&mut d, t0());
    assert!(matches!(
        s.on_reply(&mut d, 204, b"", t0()),
        SessionStep::Failed { .. }
    ));
    let (mut s, _) = CpeSession::start(&mut d, t0());
    assert!(matches!(
        s.abort(&mut d, "connection refused", t0()),
        SessionStep::Failed { .. }
    ));
    assert_eq!(d.retry_count(), 5);

    // The retry carries the same events and RetryCount.
    let (mut s, body) = CpeSession::start(&mut d, t0());
    let env = acs.read(&body);
    let inf = inform_of(&env);
    assert_eq!(inf.retry_count, 5);
    assert_eq!(
        event_codes(inf),
        vec![ev("0 BOOTSTRAP", ""), ev("1 BOOT", "")]
    );
    // 8005: re-send the Inform at once.
    let fault = serialize(
        &Envelope::fault(
            CWMP_NS_1_2,
            env.header.id.clone(),
            Fault::acs(8005, "retry"),
        ),
        &OutputStyle::default(),
    );
    let again = post(s.on_reply(&mut d, 200, &fault, t0()));
    assert_eq!(again, body);
    post(s.on_reply(&mut d, 200, &acs.inform_response(&env, None), t0()));
    assert!(matches!(
        s.on_reply(&mut d, 204, b"", t0()),
        SessionStep::Done(_)
    ));
    assert_eq!(d.retry_count(), 0);
    assert!(d.pending_events().is_empty());
}

#[test]
fn sim_session_transfer_complete_until_acknowledged() {
    let mut d = dev();
    let mut acs = FakeAcs::new();
    // Session 1: bootstrap + Download.
    let (mut s, body) = CpeSession::start(&mut d, t0());
    let env = acs.read(&body);
    post(s.on_reply(&mut d, 200, &acs.inform_response(&env, None), t0()));
    let req = acs.request(download(
        "fw-7",
        "1 Firmware Upgrade Image",
        "http://files/hgw-1000-2.4.1.bin",
        0,
    ));
    let resp = acs.read(&post(s.on_reply(&mut d, 200, &req, t0())));
    let Some(Rpc::DownloadResponse(r)) = resp.as_rpc() else {
        panic!()
    };
    assert_eq!(r.status, 1);
    let SessionStep::Done(eff) = s.on_reply(&mut d, 204, b"", t0()) else {
        panic!()
    };
    let [Effect::Transfer {
        id,
        delay_seconds: 0,
    }] = eff[..]
    else {
        panic!("{eff:?}")
    };

    // The runner downloads; the image installs and the device reboots.
    let t1 = t0() + Duration::seconds(30);
    d.begin_transfer(id, t0()).unwrap();
    d.complete_transfer(id, TransferOutcome::success(t0(), t1), t1);

    // Session 2: Inform, TransferComplete, then the ACS connection drops.
    let (mut s, body) = CpeSession::start(&mut d, t1);
    let env = acs.read(&body);
    let inf = inform_of(&env);
    assert_eq!(
        event_codes(inf),
        vec![
            ev("1 BOOT", ""),
            ev("7 TRANSFER COMPLETE", ""),
            ev("M Download", "fw-7")
        ]
    );
    let sw = inf
        .parameter_list
        .iter()
        .find(|p| p.name == "Device.DeviceInfo.SoftwareVersion")
        .unwrap();
    assert_eq!(sw.value, "2.4.1");
    let tc = acs.read(&post(s.on_reply(
        &mut d,
        200,
        &acs.inform_response(&env, None),
        t1,
    )));
    let Some(Rpc::TransferComplete(tc_rpc)) = tc.as_rpc() else {
        panic!("{tc:?}")
    };
    assert_eq!(tc_rpc.command_key, "fw-7");
    assert_eq!(tc_rpc.fault_struct.fault_code, 0);
    assert!(matches!(
        s.abort(&mut d, "connection reset", t1),
        SessionStep::Failed { .. }
    ));
    assert_eq!(
        events(&d),
        vec![ev("7 TRANSFER COMPLETE", ""), ev("M Download", "fw-7")],
        "1 BOOT was delivered; the transfer events wait for TransferCompleteResponse"
    );

    // Session 3: an ACS fault to the TransferComplete keeps it pending too.
    let (mut s, body) = CpeSession::start(&mut d, t1);
    let env = acs.read(&body);
    assert_eq!(inform_of(&env).retry_count, 1);
    let tc = acs.read(&post(s.on_reply(
        &mut d,
        200,
        &acs.inform_response(&env, None),
        t1,
    )));
    let fault = serialize(
        &Envelope::fault(
            CWMP_NS_1_2,
            tc.header.id.clone(),
            Fault::acs(8002, "db down"),
        ),
        &OutputStyle::default(),
    );
    assert_eq!(post(s.on_reply(&mut d, 200, &fault, t1)), Vec::<u8>::new());
    assert!(matches!(
        s.on_reply(&mut d, 204, b"", t1),
        SessionStep::Done(_)
    ));
    assert_eq!(d.pending_requests().count(), 1);

    // Session 4: acknowledged at last.
    let (mut s, body) = CpeSession::start(&mut d, t1);
    let env = acs.read(&body);
    let tc = acs.read(&post(s.on_reply(
        &mut d,
        200,
        &acs.inform_response(&env, None),
        t1,
    )));
    let ack = acs.reply(
        tc.header.id.clone(),
        Rpc::TransferCompleteResponse(TransferCompleteResponse {}),
    );
    assert_eq!(post(s.on_reply(&mut d, 200, &ack, t1)), Vec::<u8>::new());
    assert!(matches!(
        s.on_reply(&mut d, 204, b"", t1),
        SessionStep::Done(_)
    ));
    assert!(d.pending_events().is_empty());
    assert_eq!(d.pending_requests().count(), 0);
    assert!(d.transfers().is_empty());
}

#[test]
fn sim_session_du_state_change_complete() {
    let mut d = dev();
    let mut acs = FakeAcs::new();
    let (mut s, body) = CpeSession::start(&mut d, t0());
    let env = acs.read(&body);
    post(s.on_reply(&mut d, 200, &acs.inform_response(&env, None), t0()));
    let req = acs.request(ChangeDUState {
        operations: vec![install("http://f/app-1.0.ipk", Some(UUID1))],
        command_key: Some("du-1".into()),
    });
    let resp = acs.read(&post(s.on_reply(&mut d, 200, &req, t0())));
    assert!(matches!(resp.as_rpc(), Some(Rpc::ChangeDUStateResponse(_))));
    let SessionStep::Done(eff) = s.on_reply(&mut d, 204, b"", t0()) else {
        panic!()
    };
    let [Effect::ChangeDuState { id }] = eff[..] else {
        panic!("{eff:?}")
    };
    d.apply_du_change(id, t0());

    let (mut s, body) = CpeSession::start(&mut d, t0());
    let env = acs.read(&body);
    assert_eq!(
        event_codes(inform_of(&env)),
        vec![
            ev("11 DU STATE CHANGE COMPLETE", ""),
            ev("M ChangeDUState", "du-1")
        ]
    );
    let msg = acs.read(&post(s.on_reply(
        &mut d,
        200,
        &acs.inform_response(&env, None),
        t0(),
    )));
    let Some(Rpc::DUStateChangeComplete(r)) = msg.as_rpc() else {
        panic!("{msg:?}")
    };
    assert_eq!(r.results[0].uuid, UUID1);
    assert_eq!(r.results[0].current_state, "Installed");
    let ack = acs.reply(
        msg.header.id.clone(),
        Rpc::DUStateChangeCompleteResponse(DUStateChangeCompleteResponse {}),
    );
    assert_eq!(post(s.on_reply(&mut d, 200, &ack, t0())), Vec::<u8>::new());
    assert!(matches!(
        s.on_reply(&mut d, 204, b"", t0()),
        SessionStep::Done(_)
    ));
    assert!(d.pending_events().is_empty());
}

#[test]
fn sim_session_connection_request_and_periodic_events() {
    let mut d = dev();
    let mut acs = FakeAcs::new();
    d.inform_delivered(d.event_mark());
    d.connection_request();
    d.connection_request();
    d.periodic_inform();
    assert!(d.wants_session());
    let (mut s, body) = CpeSession::start(&mut d, t0());
    let env = acs.read(&body);
    assert_eq!(
        event_codes(inform_of(&env)),
        vec![ev("6 CONNECTION REQUEST", ""), ev("2 PERIODIC", "")]
    );
    // A CR arriving mid-session waits for the next session.
    d.connection_request();
    post(s.on_reply(&mut d, 200, &acs.inform_response(&env, None), t0()));
    assert!(matches!(
        s.on_reply(&mut d, 204, b"", t0()),
        SessionStep::Done(_)
    ));
    assert_eq!(events(&d), vec![ev("6 CONNECTION REQUEST", "")]);
}

#[test]
fn sim_session_boolean_digits_on_the_wire() {
    let mut st = settings();
    st.boolean_digits = true;
    st.supported_cwmp_versions = None;
    st.cwmp_ns = CWMP_NS_1_0.into();
    let mut d = CpeDevice::new(identity("SN0009"), st, t0());
    let mut acs = FakeAcs::new();
    let (mut s, body) = CpeSession::start(&mut d, t0());
    let env = acs.read(&body);
    assert_eq!(env.ns, CWMP_NS_1_0);
    assert_eq!(env.header.supported_cwmp_versions, None);
    post(s.on_reply(&mut d, 200, &acs.inform_response(&env, None), t0()));
    let req = acs.request(GetParameterNames {
        parameter_path: "Device.ManagementServer.HeartbeatPolicy.".into(),
        next_level: true,
    });
    let raw = post(s.on_reply(&mut d, 200, &req, t0()));
    let text = String::from_utf8(raw).unwrap();
    assert!(text.contains("<Writable>1</Writable>"), "{text}");
    assert!(text.contains("SOAP-ENV:Envelope"));
}

#[test]
fn sim_session_defers_requests_raised_mid_session() {
    let mut d = dev();
    let mut acs = FakeAcs::new();
    for ck in ["dl-a", "dl-b"] {
        call(
            &mut d,
            download(ck, "2 Web Content", "http://files/web.tar", 0),
        )
        .unwrap();
    }
    let ids: Vec<u64> = d
        .session_ended(true, t0())
        .into_iter()
        .filter_map(|e| match e {
            Effect::Transfer { id, .. } => Some(id),
            _ => None,
        })
        .collect();
    d.inform_delivered(d.event_mark());
    for id in &ids {
        d.begin_transfer(*id, t0()).unwrap();
    }
    d.complete_transfer(ids[0], TransferOutcome::success(t0(), t0()), t0());

    let (mut s, body) = CpeSession::start(&mut d, t0());
    let env = acs.read(&body);
    assert_eq!(
        event_codes(inform_of(&env)),
        vec![ev("7 TRANSFER COMPLETE", ""), ev("M Download", "dl-a")]
    );
    // dl-b finishes while the session runs: its TransferComplete waits
    // for a session whose Inform announces it.
    d.complete_transfer(ids[1], TransferOutcome::success(t0(), t0()), t0());
    let tc = acs.read(&post(s.on_reply(
        &mut d,
        200,
        &acs.inform_response(&env, None),
        t0(),
    )));
    let Some(Rpc::TransferComplete(r)) = tc.as_rpc() else {
        panic!("{tc:?}")
    };
    assert_eq!(r.command_key, "dl-a");
    let ack = acs.reply(
        tc.header.id.clone(),
        Rpc::TransferCompleteResponse(TransferCompleteResponse {}),
    );
    assert_eq!(post(s.on_reply(&mut d, 200, &ack, t0())), Vec::<u8>::new());
    assert!(matches!(
        s.on_reply(&mut d, 204, b"", t0()),
        SessionStep::Done(_)
    ));
    assert_eq!(
        events(&d),
        vec![ev("7 TRANSFER COMPLETE", ""), ev("M Download", "dl-b")]
    );

    let (mut s, body) = CpeSession::start(&mut d, t0());
    let env = acs.read(&body);
    assert_eq!(
        event_codes(inform_of(&env)),
        vec![ev("7 TRANSFER COMPLETE", ""), ev("M Download", "dl-b")]
    );
    let tc = acs.read(&post(s.on_reply(
        &mut d,
        200,
        &acs.inform_response(&env, None),
        t0(),
    )));
    let Some(Rpc::TransferComplete(r)) = tc.as_rpc() else {
        panic!("{tc:?}")
    };
    assert_eq!(r.command_key, "dl-b");
}

#[test]
fn sim_enable_cwmp_false_silences_the_device() {
    let mut d = dev();
    assert!(d.wants_session());
    spv(
        &mut d,
        vec![pv(
            "Device.ManagementServer.EnableCWMP",
            "false",
            "xsd:boolean",
        )],
        "",
    )
    .unwrap();
    assert!(
        !d.wants_session(),
        "pending events wait while CWMP is disabled"
    );
    d.set_param_local("Device.ManagementServer.EnableCWMP", "true");
    assert!(d.wants_session());
}
