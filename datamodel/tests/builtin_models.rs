//! The embedded TR-181 Device:2.19 (2.19.1) and TR-098 InternetGatewayDevice:1.14 models:
//! counts from shared/spec/tr181-notes.md, schema defaults, statuses, path look-up, validation.

mod common;

use datamodel::{
    Access, ActiveNotify, BaseType, Child, DefaultKind, Lookup, Model, ObjectRequirement,
    Reference, Status,
};

fn tr181() -> &'static Model {
    common::builtin()
        .model_for_root("Device.")
        .expect("Device model")
}

fn tr098() -> &'static Model {
    common::builtin()
        .model_for_root("InternetGatewayDevice.")
        .expect("IGD model")
}

fn reason(m: &Model, path: &str, value: &str) -> String {
    match m.validate(path, value) {
        Ok(()) => panic!("{path} = {value:?} was accepted"),
        Err(e) => {
            assert_eq!(e.path, path);
            e.reason
        }
    }
}

fn ok(m: &Model, path: &str, value: &str) {
    if let Err(e) = m.validate(path, value) {
        panic!("{path} = {value:?} refused: {}", e.reason);
    }
}

#[test]
fn tr181_counts_match_the_notes() {
    let m = tr181();
    let s = m.summary();
    assert_eq!(s.name, "Device:2.19");
    assert_eq!(s.root, "Device.");
    assert_eq!(s.objects, 873, "object definitions");
    assert_eq!(s.live_objects, 856, "objects not deleted/obsoleted");
    assert_eq!(s.parameters, 7343, "parameter definitions");
    assert_eq!(s.live_parameters, 7138, "live parameters");
    assert_eq!(s.multi_instance, 444, "multi-instance objects");
    assert_eq!(s.profiles, 243, "profiles");
    assert!(!s.is_service);
    assert_eq!(s.file.to_str(), Some("builtin:tr-181-2-19-1-cwmp-full.xml"));
}

#[test]
fn tr181_breakdowns_match_the_notes() {
    let m = tr181();
    let objs: Vec<_> = m.objects().collect();
    let ro = objs.iter().filter(|o| o.access == Access::ReadOnly).count();
    let rw = objs
        .iter()
        .filter(|o| o.access == Access::ReadWrite)
        .count();
    assert_eq!((ro, rw), (682, 191), "object access readOnly/readWrite");
    assert_eq!(
        objs.iter()
            .filter(|o| o.num_entries_parameter.is_some())
            .count(),
        442
    );
    assert_eq!(
        objs.iter().filter(|o| o.enable_parameter.is_some()).count(),
        152
    );
    assert_eq!(objs.iter().map(|o| o.unique_keys.len()).sum::<usize>(), 601);

    let params: Vec<_> = m.parameters().map(|(_, p)| p).collect();
    let pro = params
        .iter()
        .filter(|p| p.access == Access::ReadOnly)
        .count();
    let prw = params
        .iter()
        .filter(|p| p.access == Access::ReadWrite)
        .count();
    assert_eq!(
        (pro, prw),
        (4657, 2686),
        "parameter access readOnly/readWrite"
    );

    let mut status = [0usize; 4];
    for s in objs
        .iter()
        .map(|o| o.status)
        .chain(params.iter().map(|p| p.status))
    {
        status[s as usize] += 1;
    }
    // current, deprecated, obsoleted, deleted
    assert_eq!(status, [8051, 66, 16, 83]);

    // 465 parameters have a <list> in their syntax (the notes' figure); two more are lists
    // through their data type (MocaBand has a <list>).
    let lists: Vec<_> = params.iter().filter(|p| p.syntax.list.is_some()).collect();
    let via_type = lists
        .iter()
        .filter(|p| p.syntax.named_type.as_deref() == Some("MocaBand"))
        .count();
    assert_eq!(
        (lists.len() - via_type, via_type),
        (465, 2),
        "list-valued parameters"
    );
    assert_eq!(params.iter().filter(|p| p.command).count(), 66, "command");
    assert_eq!(params.iter().filter(|p| p.secured).count(), 44, "secured");
    assert_eq!(params.iter().filter(|p| p.hidden).count(), 4, "hidden");
    assert_eq!(
        params.iter().filter(|p| p.forced_inform).count(),
        7,
        "forcedInform"
    );
    let named = params
        .iter()
        .filter(|p| p.syntax.named_type.is_some())
        .count();
    assert_eq!(named, 1649, "named data types");
    let stats64 = params
        .iter()
        .filter(|p| p.syntax.named_type.as_deref() == Some("StatsCounter64"))
        .count();
    assert_eq!(stats64, 608);
    let object_defaults = params
        .iter()
        .filter(|p| {
            p.default
                .as_ref()
                .is_some_and(|d| d.kind == DefaultKind::Object)
        })
        .count();
    assert_eq!(object_defaults, 1111);
    let can_deny = params
        .iter()
        .filter(|p| p.active_notify == ActiveNotify::CanDeny)
        .count();
    assert_eq!(can_deny, 1035);
    let strong = params
        .iter()
        .filter(|p| matches!(p.syntax.facets.reference, Some(Reference::Path { .. })))
        .count();
    assert_eq!(strong, 377, "pathRef");
}

#[test]
fn tr098_loads() {
    let s = tr098().summary();
    assert_eq!(s.name, "InternetGatewayDevice:1.14");
    assert_eq!(
        (s.objects, s.parameters, s.multi_instance, s.profiles),
        (192, 1801, 91, 92),
        "IGD:1.14 figures from the notes"
    );
    assert_eq!((s.live_objects, s.live_parameters), (190, 1784));
    let m = tr098();
    assert_eq!(
        m.xsd_type("InternetGatewayDevice.ManagementServer.PeriodicInformInterval"),
        Some("xsd:unsignedInt")
    );
    assert!(m
        .validate(
            "InternetGatewayDevice.ManagementServer.PeriodicInformInterval",
            "0"
        )
        .is_err());
    assert!(matches!(
        m.lookup("InternetGatewayDevice.WANDevice.1.WANConnectionDevice.2.WANIPConnection.3.ExternalIPAddress"),
        Lookup::Parameter { .. }
    ));
}

#[test]
fn model_for_root_and_names() {
    let reg = common::builtin();
    assert_eq!(reg.models().count(), 2);
    assert_eq!(reg.model_for_root("Device").unwrap().name(), "Device:2.19");
    assert_eq!(
        reg.model("InternetGatewayDevice:1.14").unwrap().root(),
        "InternetGatewayDevice."
    );
    assert!(reg.model_for_root("Services.").is_none());
    assert_eq!(tr181().version(), (2, 19));
}

#[test]
fn schema_default_access_is_read_only() {
    let m = tr181();
    // <parameter name="Status"> has no access attribute.
    let p = m.parameter("Device.IP.Interface.1.Status").unwrap();
    assert_eq!(p.access, Access::ReadOnly);
    assert_eq!(m.writable("Device.IP.Interface.1.Status"), Some(false));
    // <object name="Device.DSL.Line.{i}."> has no access attribute either.
    let o = m.object("Device.DSL.Line.{i}.").unwrap();
    assert_eq!(o.access, Access::ReadOnly);
    assert!(!o.is_writable_table());
    // activeNotify default
    assert_eq!(p.active_notify, ActiveNotify::Normal);
}

#[test]
fn deleted_obsoleted_deprecated_are_kept_with_status() {
    let m = tr181();
    let o = m.object("Device.UserInterface.RemoteAccess.").unwrap();
    assert_eq!(o.status, Status::Deleted);
    assert!(!o.is_live());
    // A current parameter in a deleted object is kept, and not live.
    let p = m
        .parameter("Device.UserInterface.RemoteAccess.Port")
        .unwrap();
    assert_eq!(p.status, Status::Current);
    assert!(!p.is_live());

    let p = m.parameter("Device.Time.NTPServer1").unwrap();
    assert_eq!(p.status, Status::Deleted);
    assert!(!p.is_live());

    let p = m
        .parameter("Device.MoCA.Interface.1.PrivacyEnabled")
        .unwrap();
    assert_eq!(p.status, Status::Obsoleted);
    assert!(!p.is_live());

    let o = m.object("Device.DeviceInfo.Processor.1.").unwrap();
    assert_eq!(o.status, Status::Deprecated);
    assert!(o.is_live());

    let b = m.profile("Baseline:1").unwrap();
    assert_eq!(b.status, Status::Deleted);
    assert_eq!(b.extends, vec!["_Baseline:1".to_string()]);
}

#[test]
fn lookup_path_forms() {
    let m = tr181();
    let p = "Device.IP.Interface.2.IPv4Address.1.IPAddress";
    let Lookup::Parameter { object, param } = m.lookup(p) else {
        panic!("{p}")
    };
    assert_eq!(object.path, "Device.IP.Interface.{i}.IPv4Address.{i}.");
    assert_eq!(
        param.path,
        "Device.IP.Interface.{i}.IPv4Address.{i}.IPAddress"
    );
    assert_eq!(param.syntax.named_type.as_deref(), Some("IPv4Address"));

    for form in [
        "Device.IP.Interface.[wan-primary].IPv4Address.[cpe-1].IPAddress",
        "Device.IP.Interface.{i}.IPv4Address.{i}.IPAddress",
        "Device.IP.Interface.*.IPv4Address.7.IPAddress",
    ] {
        match m.lookup(form) {
            Lookup::Parameter { param, .. } => assert_eq!(param.name, "IPAddress", "{form}"),
            other => panic!("{form}: {other:?}"),
        }
    }

    // Paths longer than the lookup's stack buffer, and malformed instance segments.
    let long = format!(
        "Device.IP.Interface.{}.IPv4Address.[{}].IPAddress",
        "7".repeat(200),
        "a".repeat(200)
    );
    match m.lookup(&long) {
        Lookup::Parameter { param, .. } => assert_eq!(param.name, "IPAddress"),
        other => panic!("long path: {other:?}"),
    }
    for bad in [
        "Device.IP.Interface.[wan.IPv4Address.1.IPAddress",
        "Device.IP.Interface.[wan]x.IPv4Address.1.IPAddress",
        "Device.IP.Interface.[",
        "[",
    ] {
        assert!(matches!(m.lookup(bad), Lookup::Unknown), "{bad}");
    }

    // Table path, instance path, template path all name the table object.
    for form in [
        "Device.NAT.PortMapping.",
        "Device.NAT.PortMapping.3.",
        "Device.NAT.PortMapping.[web].",
        "Device.NAT.PortMapping.{i}.",
    ] {
        match m.lookup(form) {
            Lookup::Object(o) => {
                assert_eq!(o.path, "Device.NAT.PortMapping.{i}.", "{form}");
                assert!(o.multi_instance);
                assert_eq!(o.max_entries, None);
            }
            other => panic!("{form}: {other:?}"),
        }
    }
    assert!(matches!(m.lookup("Device.DeviceInfo."), Lookup::Object(o) if !o.multi_instance));
    assert!(matches!(m.lookup("Device."), Lookup::Object(_)));

    // Wrong shapes.
    for bad in [
        "Device.DeviceInfo", // object without its dot
        "Device.DeviceInfo.Nope",
        "Device.IP.Interface.1",  // instance without its dot
        "Device.IP.Interface.[x", // unterminated alias
        "Device..DeviceInfo.",
        "",
        "InternetGatewayDevice.DeviceInfo.",
    ] {
        assert!(matches!(m.lookup(bad), Lookup::Unknown), "{bad}");
    }
}

#[test]
fn vendor_extensions() {
    let m = tr181();
    for p in [
        "Device.X_ACME_Foo.Bar",
        "Device.DeviceInfo.X_COM_CloudKey",
        "Device.IP.Interface.3.X_ACME_Stats.",
        "Device.NAT.PortMapping.[web].X_VENDOR_Flag",
    ] {
        assert!(matches!(m.lookup(p), Lookup::VendorExtension), "{p}");
        assert_eq!(m.writable(p), None);
        assert_eq!(m.xsd_type(p), None);
        assert!(m.validate(p, "anything").is_ok());
    }
    // Not under this model's root.
    assert!(matches!(m.lookup("Other.X_ACME_Foo"), Lookup::Unknown));
    // An unknown standard path is an error for validate.
    assert!(m.validate("Device.DeviceInfo.Nope", "1").is_err());
}

#[test]
fn writability() {
    let m = tr181();
    assert_eq!(
        m.writable("Device.ManagementServer.PeriodicInformInterval"),
        Some(true)
    );
    assert_eq!(m.writable("Device.DeviceInfo.SoftwareVersion"), Some(false));
    // AddObject on the table, DeleteObject on an instance.
    assert_eq!(m.writable("Device.NAT.PortMapping."), Some(true));
    assert_eq!(m.writable("Device.NAT.PortMapping.3."), Some(true));
    assert!(m
        .object("Device.NAT.PortMapping.")
        .unwrap()
        .is_writable_table());
    // A read-only table.
    assert_eq!(m.writable("Device.Hosts.Host."), Some(false));
    assert_eq!(m.writable("Device.Hosts.Host.1."), Some(false));
    assert!(!m.object("Device.Hosts.Host.").unwrap().is_writable_table());
    // A single-instance object.
    assert_eq!(m.writable("Device.DeviceInfo."), Some(false));
    assert_eq!(m.writable("Device.Nope."), None);
}

#[test]
fn xsd_types() {
    let m = tr181();
    let cases = [
        (
            "Device.ManagementServer.PeriodicInformInterval",
            "xsd:unsignedInt",
        ),
        (
            "Device.ManagementServer.PeriodicInformEnable",
            "xsd:boolean",
        ),
        ("Device.ManagementServer.PeriodicInformTime", "xsd:dateTime"),
        ("Device.ManagementServer.DelayReboot", "xsd:int"),
        ("Device.ManagementServer.URL", "xsd:string"), // named type URL
        ("Device.Ethernet.Interface.1.MACAddress", "xsd:string"), // MACAddress
        (
            "Device.Ethernet.Interface.1.Stats.BytesSent",
            "xsd:unsignedLong",
        ), // StatsCounter64
        (
            "Device.Ethernet.Interface.1.Stats.ErrorsSent",
            "xsd:unsignedInt",
        ), // StatsCounter32
        (
            "Device.Ethernet.Interface.1.SupportedLinkModes",
            "xsd:string",
        ), // list of unsignedInt
        ("Device.IP.Interface.1.LowerLayers", "xsd:string"), // list of references
        ("Device.NAT.PortMapping.1.Interface", "xsd:string"), // reference
        ("Device.Hosts.Host.1.ClientID", "xsd:hexBinary"),
    ];
    for (p, t) in cases {
        assert_eq!(m.xsd_type(p), Some(t), "{p}");
    }
    assert_eq!(m.xsd_type("Device.DeviceInfo."), None);
    let p = m
        .parameter("Device.Ethernet.Interface.1.Stats.BytesSent")
        .unwrap();
    assert_eq!(p.syntax.base, BaseType::UnsignedLong);
    assert_eq!(p.syntax.named_type.as_deref(), Some("StatsCounter64"));
}

#[test]
fn validation_of_real_parameters() {
    let m = tr181();
    let pii = "Device.ManagementServer.PeriodicInformInterval";
    ok(m, pii, "3600");
    assert_eq!(reason(m, pii, "0"), "value 0 below minInclusive 1");
    assert!(reason(m, pii, "4294967296").contains("overflows unsignedInt"));
    assert!(reason(m, pii, "-5").contains("unsigned"));
    assert!(reason(m, pii, "12s").contains("not an integer"));

    let mtu = "Device.IP.Interface.1.MaxMTUSize";
    ok(m, mtu, "1500");
    assert_eq!(
        reason(m, mtu, "70000"),
        "value 70000 above maxInclusive 65535"
    );

    let en = "Device.NAT.PortMapping.1.Enable";
    for v in ["true", "false", "1", "0"] {
        ok(m, en, v);
    }
    assert!(reason(m, en, "maybe").contains("not a boolean"));

    let ip = "Device.IP.Interface.1.IPv4Address.1.IPAddress";
    ok(m, ip, "192.168.1.1");
    ok(m, ip, ""); // the IPv4Address type allows the empty string
    assert!(reason(m, ip, "256.1.1.1").contains("does not match"));
    assert_eq!(
        reason(m, ip, "192.168.100.100.1"),
        "length 17 above maxLength 15"
    );

    let mac = "Device.Hosts.Host.1.PhysAddress"; // string(64), no pattern
    ok(m, mac, "whatever");
    let mac = "Device.Ethernet.Interface.1.MACAddress";
    ok(m, mac, "00:1A:2b:3c:4D:5e");
    let r = reason(m, mac, "00-1A-2B-3C-4D-5E");
    assert!(r.contains("does not match"), "{r}");

    let status = "Device.IP.Interface.1.Status";
    ok(m, status, "Up");
    let r = reason(m, status, "Sideways");
    assert!(
        r.starts_with("\"Sideways\" is not one of the enumerated values: Up, Down,"),
        "{r}"
    );

    let name = "Device.IP.Interface.1.Name"; // string(64)
    assert_eq!(
        reason(m, name, &"x".repeat(70)),
        "length 70 above maxLength 64"
    );

    let oui = "Device.DeviceInfo.ManufacturerOUI"; // size 6:6, pattern [0-9A-F]{6}
    ok(m, oui, "00D09E");
    assert!(reason(m, oui, "00d09e").contains("does not match pattern"));
    assert!(reason(m, oui, "00D0").contains("length 4 below minLength 6"));

    let t = "Device.ManagementServer.PeriodicInformTime";
    ok(m, t, "2024-02-29T01:02:03Z");
    ok(m, t, "0001-01-01T00:00:00Z");
    assert!(reason(m, t, "2024-02-30T01:02:03Z").contains("dateTime malformed"));
    assert!(reason(m, t, "tomorrow").contains("dateTime malformed"));

    let delay = "Device.ManagementServer.DelayReboot"; // int, min -1
    ok(m, delay, "-1");
    assert!(reason(m, delay, "-2").contains("below minInclusive -1"));
    assert!(reason(m, delay, "2147483648").contains("overflows int"));
}

#[test]
fn validation_of_lists() {
    let m = tr181();
    // list of unsignedInt
    let modes = "Device.Ethernet.Interface.1.AdvertisedLinkModes";
    ok(m, modes, "10,100,1000");
    ok(m, modes, "");
    ok(m, modes, "10, 100");
    let r = reason(m, modes, "10,fast,1000");
    assert!(r.starts_with("list item 2 (\"fast\") invalid:"), "{r}");

    // list with maxItems 32 and items string(256)
    let jids = "Device.ManagementServer.ConnReqAllowedJabberIDs";
    ok(m, jids, "a@b.c,d@e.f");
    let many = vec!["x@y.z"; 33].join(",");
    assert_eq!(
        reason(m, jids, &many),
        "33 list items, more than maxItems 32"
    );

    // list whose whole string is limited (AdditionalSoftwareVersion: list size 64)
    let v = "Device.DeviceInfo.AdditionalSoftwareVersion";
    assert!(reason(m, v, &"a,".repeat(40)).contains("list length 80 above maxLength 64"));

    // list of enumerated values
    let sup = "Device.ManagementServer.SupportedConnReqMethods";
    ok(m, sup, "HTTP");
    assert!(reason(m, sup, "HTTP,Pigeon").contains("list item 2"));
}

#[test]
fn validate_for_write_refuses_read_only_enumeration_values() {
    let m = tr181();
    let ds = "Device.IP.Diagnostics.IPPing.DiagnosticsState";
    let p = m.parameter(ds).unwrap();
    assert_eq!(p.syntax.named_type.as_deref(), Some("DiagnosticsState"));
    assert!(m.validate(ds, "Complete").is_ok());
    assert!(m.validate_for_write(ds, "Requested").is_ok());
    let e = m.validate_for_write(ds, "Complete").unwrap_err();
    assert!(e.reason.contains("read-only value"), "{}", e.reason);
}

#[test]
fn parameter_metadata() {
    let m = tr181();
    let p = m.parameter("Device.ManagementServer.ParameterKey").unwrap();
    assert!(p.forced_inform);
    let p = m.parameter("Device.ManagementServer.Password").unwrap();
    assert!(p.secured || p.hidden);
    assert_eq!(
        m.xsd_type("Device.ManagementServer.Password"),
        Some("xsd:string")
    );
    let p = m.parameter("Device.NAT.PortMapping.1.Enable").unwrap();
    let d = p.default.as_ref().unwrap();
    assert_eq!((d.kind, d.value.as_str()), (DefaultKind::Object, "false"));
    let p = m
        .parameter("Device.ManagementServer.PeriodicInformInterval")
        .unwrap();
    assert_eq!(p.syntax.facets.units.as_deref(), Some("seconds"));
    assert_eq!(p.version.as_deref(), Some("2.0"));
    assert_eq!(
        p.summary_line(),
        "The duration in seconds of the interval for which the CPE MUST attempt to connect with the ACS and call the Inform method if PeriodicInformEnable is true."
    );
    let p = m
        .parameter("Device.NAT.PortMappingNumberOfEntries")
        .unwrap();
    assert_eq!(
        p.summary_line(),
        "The number of entries in the PortMapping table."
    );
    let p = m
        .parameter("Device.ManagementServer.HTTPCompression")
        .unwrap();
    assert_eq!(
        p.syntax
            .facets
            .enumeration_ref
            .as_ref()
            .map(|e| e.target_param.as_str()),
        Some("HTTPCompressionSupported")
    );

    let o = m.object("Device.NAT.PortMapping.").unwrap();
    assert_eq!(
        o.num_entries_parameter.as_deref(),
        Some("PortMappingNumberOfEntries")
    );
    assert_eq!(o.enable_parameter.as_deref(), Some("Enable"));
    assert_eq!(o.min_entries, 0);
    assert_eq!(o.unique_keys.len(), 2);
    assert!(o
        .unique_keys
        .iter()
        .any(|k| k.functional && k.parameters == ["RemoteHost", "ExternalPort", "Protocol"]));
    assert_eq!(o.summary_line(), "Port mapping table.");

    let pr = m.profile("NAT:1").unwrap();
    assert!(pr
        .objects
        .iter()
        .any(|po| po.path == "Device.NAT.PortMapping.{i}."
            && po.requirement == ObjectRequirement::CreateDelete));
}

#[test]
fn children() {
    let m = tr181();
    let kids = m.children("Device.NAT.").unwrap();
    let names: Vec<&str> = kids.iter().map(|c| c.name()).collect();
    assert!(names.contains(&"PortMappingNumberOfEntries"));
    assert!(names.contains(&"PortMapping."), "{names:?}");
    assert!(names.contains(&"InterfaceSetting."));

    let kids = m.children("Device.NAT.PortMapping.").unwrap();
    assert_eq!(kids.len(), 1);
    assert!(matches!(kids[0], Child::Object { name: "{i}.", .. }));

    let kids = m.children("Device.NAT.PortMapping.7.").unwrap();
    assert!(kids.iter().any(|c| c.name() == "ExternalPort"));

    let roots = m.children("").unwrap();
    assert_eq!(roots.len(), 1);
    assert_eq!(roots[0].name(), "Device.");
    let top = m.children("Device.").unwrap();
    assert!(top.iter().any(|c| c.name() == "DeviceInfo."));
    assert!(top.iter().any(|c| c.name() == "RootDataModelVersion"));

    assert!(m.children("Device.DeviceInfo.Manufacturer").is_none());
    assert!(m.children("Device.Nope.").is_none());
}

#[test]
fn every_definition_is_reachable_by_its_template_path() {
    let m = tr181();
    for o in m.objects() {
        match m.lookup(&o.path) {
            Lookup::Object(found) => assert_eq!(found.path, o.path),
            other => panic!("{}: {other:?}", o.path),
        }
        for p in &o.parameters {
            match m.lookup(&p.path) {
                Lookup::Parameter { param, object } => {
                    assert_eq!(param.path, p.path);
                    assert_eq!(object.path, o.path);
                }
                other => panic!("{}: {other:?}", p.path),
            }
            // Every parameter's summary line can be computed.
            let _ = p.summary_line();
        }
    }
}

#[test]
fn validation_never_panics() {
    let m = tr181();
    let values = [
        "",
        "0",
        "-1",
        "+",
        "-",
        "1e5",
        "1.5",
        "ü",
        "[",
        "]",
        "[1,2",
        "a,b,,c",
        " , ",
        "99999999999999999999999999999999999999999999999999",
        "-99999999999999999999999999999999999999999999999999",
        "0001-01-01T00:00:00Z",
        "2024-01-01T00:00:00+01:00é",
        "2024-01-01Tééééé+01:00",
        "====",
        "AA==",
        "é€𝄞",
        "\u{0}",
    ];
    let mut checked = 0;
    for (_, p) in m.parameters() {
        for v in values {
            let _ = m.validate(&p.path, v);
            let _ = m.validate_for_write(&p.path, v);
            checked += 1;
        }
    }
    assert_eq!(checked, 7343 * values.len());
}

#[test]
fn registry_is_shareable_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<datamodel::Registry>();
    send_sync::<datamodel::Model>();
    send_sync::<datamodel::DmError>();
    let reg = common::builtin();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let m = reg.model_for_root("Device.").unwrap();
                assert!(m
                    .validate("Device.ManagementServer.ManufacturerOUI", "x")
                    .is_err());
                assert!(m
                    .validate("Device.DeviceInfo.ManufacturerOUI", "00D09E")
                    .is_ok());
            });
        }
    });
}
