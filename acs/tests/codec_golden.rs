//! Golden inputs: the XSD-validated fixtures of checklist §8 (copied into
//! `tests/fixtures/checklist/`) and real device captures from the shared
//! golden directory.

use acs::codec::*;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/checklist")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn parse_fixture(name: &str) -> Envelope {
    parse(&fixture(name), &Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn rpc(env: &Envelope) -> &Rpc {
    match &env.body {
        Body::Rpc(r) => r,
        Body::Fault(f) => panic!("unexpected fault {f:?}"),
    }
}

fn pv(name: &str, value: &str, ty: &str) -> ParameterValueStruct {
    ParameterValueStruct::new(name, value, ty)
}

/// Drops whitespace-only text between tags so fixture text (indented) and
/// our compact output can be compared byte for byte.
fn compact(xml: &[u8]) -> String {
    let s = String::from_utf8(xml.to_vec()).unwrap();
    let mut out = String::with_capacity(s.len());
    let mut pending = String::new();
    let mut last_was_gt = false;
    for c in s.chars() {
        if last_was_gt && c.is_whitespace() {
            pending.push(c);
            continue;
        }
        if c == '<' {
            pending.clear();
        } else if !pending.is_empty() {
            out.push_str(&pending);
            pending.clear();
        }
        out.push(c);
        last_was_gt = c == '>';
    }
    out
}

/// Every fixture must survive parse → serialize → parse unchanged (C24).
fn assert_reserializes(name: &str) {
    let env = parse_fixture(name);
    for style in [
        OutputStyle::default(),
        OutputStyle {
            envelope_prefix: EnvPrefix::Upper,
            boolean_style: BoolStyle::Digits,
        },
    ] {
        let bytes = serialize(&env, &style);
        let back = parse(&bytes, &Limits::default()).unwrap();
        assert_eq!(back, env, "{name} re-serialized with {style:?}");
    }
}

/// ACS-side fixtures are written in exactly our output style, so our
/// serialization must reproduce them byte for byte (modulo indentation).
fn assert_exact_output(name: &str) {
    let env = parse_fixture(name);
    let ours = serialize(&env, &OutputStyle::default());
    assert_eq!(compact(&ours), compact(&fixture(name)), "{name}");
}

const ALL_FIXTURES: [&str; 22] = [
    "8.1-inform.xml",
    "8.2-inform-response-negotiated.xml",
    "8.2-inform-cwmp10.xml",
    "8.2-inform-response-cwmp10.xml",
    "8.3-gpv.xml",
    "8.3-gpv-response.xml",
    "8.4-gpn.xml",
    "8.4-gpn-response.xml",
    "8.5-spv.xml",
    "8.5-spv-response.xml",
    "8.6-cpe-fault-spv.xml",
    "8.7-acs-fault-8000.xml",
    "8.8-download.xml",
    "8.8-download-response.xml",
    "8.9-inform-transfer-complete.xml",
    "8.9-transfer-complete.xml",
    "8.9-transfer-complete-response.xml",
    "8.10-reboot.xml",
    "8.10-reboot-response.xml",
    "8.11-add-object.xml",
    "8.11-add-object-response.xml",
    "8.12-change-du-state.xml",
];

/// The messages the ACS sends (soap-env style in the checklist).
const ACS_OUTPUT_FIXTURES: [&str; 11] = [
    "8.2-inform-response-negotiated.xml",
    "8.2-inform-response-cwmp10.xml",
    "8.3-gpv.xml",
    "8.4-gpn.xml",
    "8.5-spv.xml",
    "8.7-acs-fault-8000.xml",
    "8.8-download.xml",
    "8.9-transfer-complete-response.xml",
    "8.10-reboot.xml",
    "8.11-add-object.xml",
    "8.12-change-du-state.xml",
];

#[test]
fn all_checklist_fixtures_reserialize() {
    for name in ALL_FIXTURES {
        assert_reserializes(name);
    }
}

#[test]
fn acs_fixtures_match_our_output_exactly() {
    for name in ACS_OUTPUT_FIXTURES {
        assert_exact_output(name);
    }
}

#[test]
fn cpe_fixtures_match_upper_case_style_except_booleans() {
    // CPE-side fixtures use SOAP-ENV/SOAP-ENC; the simulator can reproduce
    // them with the Upper style (GPN uses 1/0 booleans, the rest words).
    let upper = |bools| OutputStyle {
        envelope_prefix: EnvPrefix::Upper,
        boolean_style: bools,
    };
    for (name, bools) in [
        ("8.1-inform.xml", BoolStyle::Words),
        ("8.3-gpv-response.xml", BoolStyle::Words),
        ("8.4-gpn-response.xml", BoolStyle::Digits),
        ("8.5-spv-response.xml", BoolStyle::Words),
        ("8.6-cpe-fault-spv.xml", BoolStyle::Words),
        ("8.8-download-response.xml", BoolStyle::Words),
        ("8.9-transfer-complete.xml", BoolStyle::Words),
        ("8.10-reboot-response.xml", BoolStyle::Words),
        ("8.11-add-object-response.xml", BoolStyle::Words),
    ] {
        let env = parse_fixture(name);
        let ours = serialize(&env, &upper(bools));
        assert_eq!(compact(&ours), compact(&fixture(name)), "{name}");
    }
}

#[test]
fn inform_8_1() {
    let env = parse_fixture("8.1-inform.xml");
    assert_eq!(env.ns, "urn:dslforum-org:cwmp-1-2");
    assert_eq!(
        env.header,
        Header {
            id: Some("cpe-1001".into()),
            session_timeout: Some(60),
            supported_cwmp_versions: Some("1.0,1.1,1.2,1.3,1.4".into()),
            ..Header::default()
        }
    );
    let Rpc::Inform(i) = rpc(&env) else {
        panic!("not an Inform")
    };
    assert_eq!(
        i.device_id,
        DeviceIdStruct {
            manufacturer: "ExampleCo".into(),
            oui: "001A2B".into(),
            product_class: "HGW-1000".into(),
            serial_number: "SN0123456789".into(),
        }
    );
    assert_eq!(i.device_id.canonical_id(), "001A2B-HGW%2D1000-SN0123456789");
    assert_eq!(
        i.event,
        vec![
            EventStruct::new("0 BOOTSTRAP", ""),
            EventStruct::new("1 BOOT", "")
        ]
    );
    assert_eq!(i.max_envelopes, 1);
    assert_eq!(i.current_time, "2024-05-01T14:00:00+02:00");
    assert_eq!(
        parse_datetime_lenient(&i.current_time).map(|d| format_datetime(&d)),
        Some("2024-05-01T12:00:00Z".into())
    );
    assert_eq!(i.retry_count, 0);
    assert_eq!(
        i.parameter_list,
        vec![
            pv("Device.RootDataModelVersion", "2.17", "xsd:string"),
            pv("Device.DeviceInfo.HardwareVersion", "HW-B2", "xsd:string"),
            pv("Device.DeviceInfo.SoftwareVersion", "2.4.0", "xsd:string"),
            pv("Device.DeviceInfo.ProvisioningCode", "", "xsd:string"),
            pv("Device.ManagementServer.ParameterKey", "", "xsd:string"),
            pv(
                "Device.ManagementServer.ConnectionRequestURL",
                "http://192.0.2.10:7547/cr-4f2a",
                "xsd:string"
            ),
            pv(
                "Device.ManagementServer.AliasBasedAddressing",
                "false",
                "xsd:boolean"
            ),
        ]
    );
    assert!(rpc(&env).is_cpe_request());
}

#[test]
fn inform_response_8_2() {
    let env = parse_fixture("8.2-inform-response-negotiated.xml");
    assert_eq!(env.header.id.as_deref(), Some("cpe-1001"));
    assert_eq!(env.header.use_cwmp_version.as_deref(), Some("1.4"));
    assert_eq!(
        rpc(&env),
        &Rpc::InformResponse(InformResponse { max_envelopes: 1 })
    );

    let env = parse_fixture("8.2-inform-cwmp10.xml");
    assert_eq!(env.ns, "urn:dslforum-org:cwmp-1-0");
    assert_eq!(env.header.id.as_deref(), Some("77"));
    assert_eq!(env.header.supported_cwmp_versions, None);
    let Rpc::Inform(i) = rpc(&env) else { panic!() };
    assert_eq!(i.device_id.product_class, "IGD-500");
    assert_eq!(i.event, vec![EventStruct::new("2 PERIODIC", "")]);
    assert_eq!(i.parameter_list.len(), 8);
    assert_eq!(
        i.parameter_list[0].value,
        "InternetGatewayDevice:1.4[](Baseline:1, EthernetLAN:1, Time:1, IPPing:1)"
    );
    assert_eq!(
        i.parameter_list[7],
        pv(
            "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection.1.ExternalIPAddress",
            "198.51.100.7",
            "xsd:string"
        )
    );

    let env = parse_fixture("8.2-inform-response-cwmp10.xml");
    assert_eq!(env.ns, "urn:dslforum-org:cwmp-1-0");
    assert_eq!(env.header.use_cwmp_version, None);
}

#[test]
fn gpv_8_3() {
    let env = parse_fixture("8.3-gpv.xml");
    assert_eq!(env.header.id.as_deref(), Some("acs-0001"));
    assert_eq!(
        rpc(&env),
        &Rpc::GetParameterValues(GetParameterValues {
            parameter_names: vec![
                "Device.DeviceInfo.UpTime".into(),
                "Device.ManagementServer.HeartbeatPolicy.".into()
            ]
        })
    );
    let env = parse_fixture("8.3-gpv-response.xml");
    assert_eq!(
        rpc(&env),
        &Rpc::GetParameterValuesResponse(GetParameterValuesResponse {
            parameter_list: vec![
                pv("Device.DeviceInfo.UpTime", "3600", "xsd:unsignedInt"),
                pv(
                    "Device.ManagementServer.HeartbeatPolicy.Enable",
                    "false",
                    "xsd:boolean"
                ),
                pv(
                    "Device.ManagementServer.HeartbeatPolicy.ReportingInterval",
                    "86400",
                    "xsd:unsignedInt"
                ),
                pv(
                    "Device.ManagementServer.HeartbeatPolicy.InitiationTime",
                    UNKNOWN_TIME,
                    "xsd:dateTime"
                ),
            ]
        })
    );
    assert!(rpc(&env).is_response());
}

#[test]
fn gpn_8_4() {
    let env = parse_fixture("8.4-gpn.xml");
    assert_eq!(
        rpc(&env),
        &Rpc::GetParameterNames(GetParameterNames {
            parameter_path: "Device.ManagementServer.HeartbeatPolicy.".into(),
            next_level: true,
        })
    );
    let env = parse_fixture("8.4-gpn-response.xml");
    let info = |n: &str| ParameterInfoStruct {
        name: format!("Device.ManagementServer.HeartbeatPolicy.{n}"),
        writable: true,
    };
    assert_eq!(
        rpc(&env),
        &Rpc::GetParameterNamesResponse(GetParameterNamesResponse {
            parameter_list: vec![
                info("Enable"),
                info("ReportingInterval"),
                info("InitiationTime")
            ]
        })
    );
}

#[test]
fn spv_8_5_and_fault_8_6() {
    let env = parse_fixture("8.5-spv.xml");
    assert_eq!(
        rpc(&env),
        &Rpc::SetParameterValues(SetParameterValues {
            parameter_list: vec![
                pv(
                    "Device.ManagementServer.PeriodicInformEnable",
                    "true",
                    "xsd:boolean"
                ),
                pv(
                    "Device.ManagementServer.PeriodicInformInterval",
                    "3600",
                    "xsd:unsignedInt"
                ),
                pv(
                    "Device.ManagementServer.PeriodicInformTime",
                    "2024-01-01T00:00:00Z",
                    "xsd:dateTime"
                ),
            ],
            parameter_key: "cfg-20240501-01".into(),
        })
    );
    let env = parse_fixture("8.5-spv-response.xml");
    assert_eq!(
        rpc(&env),
        &Rpc::SetParameterValuesResponse(SetParameterValuesResponse { status: 0 })
    );

    let env = parse_fixture("8.6-cpe-fault-spv.xml");
    assert_eq!(env.ns, "urn:dslforum-org:cwmp-1-2");
    assert_eq!(env.header.id.as_deref(), Some("acs-0002"));
    assert_eq!(
        env.body,
        Body::Fault(Fault::cpe(9003, "Invalid arguments").with_spv_fault(
            "Device.ManagementServer.PeriodicInformInterval",
            9007,
            "Invalid parameter value"
        ))
    );
}

#[test]
fn acs_fault_8_7() {
    let env = parse_fixture("8.7-acs-fault-8000.xml");
    assert_eq!(env.header.id.as_deref(), Some("cpe-1004"));
    assert_eq!(
        env.body,
        Body::Fault(Fault::acs(8000, "Method not supported"))
    );
}

#[test]
fn download_8_8() {
    let env = parse_fixture("8.8-download.xml");
    assert_eq!(
        rpc(&env),
        &Rpc::Download(Download {
            command_key: "fw-upgrade-7".into(),
            file_type: "1 Firmware Upgrade Image".into(),
            url: "https://files.example.net/fw/hgw-1000-2.4.1.bin".into(),
            file_size: 16_777_216,
            ..Download::default()
        })
    );
    let env = parse_fixture("8.8-download-response.xml");
    assert_eq!(
        rpc(&env),
        &Rpc::DownloadResponse(DownloadResponse {
            status: 1,
            start_time: UNKNOWN_TIME.into(),
            complete_time: UNKNOWN_TIME.into(),
        })
    );
}

#[test]
fn transfer_complete_8_9() {
    let env = parse_fixture("8.9-inform-transfer-complete.xml");
    let Rpc::Inform(i) = rpc(&env) else { panic!() };
    assert_eq!(
        i.event,
        vec![
            EventStruct::new("1 BOOT", ""),
            EventStruct::new("7 TRANSFER COMPLETE", ""),
            EventStruct::new("M Download", "fw-upgrade-7"),
        ]
    );
    assert_eq!(i.parameter_list.len(), 6);
    assert_eq!(i.parameter_list[4].value, "cfg-20240501-01");

    let env = parse_fixture("8.9-transfer-complete.xml");
    assert_eq!(env.header.id.as_deref(), Some("cpe-1003"));
    assert_eq!(
        rpc(&env),
        &Rpc::TransferComplete(TransferComplete {
            command_key: "fw-upgrade-7".into(),
            fault_struct: FaultStruct {
                fault_code: 0,
                fault_string: String::new()
            },
            start_time: "2024-05-01T12:01:00Z".into(),
            complete_time: "2024-05-01T12:03:30Z".into(),
        })
    );
    let env = parse_fixture("8.9-transfer-complete-response.xml");
    assert_eq!(
        rpc(&env),
        &Rpc::TransferCompleteResponse(TransferCompleteResponse {})
    );
}

#[test]
fn reboot_add_object_cdus_8_10_to_8_12() {
    assert_eq!(
        rpc(&parse_fixture("8.10-reboot.xml")),
        &Rpc::Reboot(Reboot {
            command_key: "reboot-42".into()
        })
    );
    assert_eq!(
        rpc(&parse_fixture("8.10-reboot-response.xml")),
        &Rpc::RebootResponse(RebootResponse {})
    );
    assert_eq!(
        rpc(&parse_fixture("8.11-add-object.xml")),
        &Rpc::AddObject(AddObject {
            object_name: "Device.NAT.PortMapping.".into(),
            parameter_key: "pm-add-01".into(),
        })
    );
    assert_eq!(
        rpc(&parse_fixture("8.11-add-object-response.xml")),
        &Rpc::AddObjectResponse(AddObjectResponse {
            instance_number: 3,
            status: 0
        })
    );
    assert_eq!(
        rpc(&parse_fixture("8.12-change-du-state.xml")),
        &Rpc::ChangeDUState(ChangeDUState {
            operations: vec![OperationStruct::Install(InstallOpStruct {
                url: "https://files.example.net/du/app-1.0.ipk".into(),
                uuid: Some("3f2504e0-4f89-11d3-9a0c-0305e82c3301".into()),
                username: Some(String::new()),
                password: Some(String::new()),
                execution_env_ref: Some("Device.SoftwareModules.ExecEnv.1".into()),
            })],
            command_key: Some("du-install-1".into()),
        })
    );
}

// ---------------------------------------------------------------------------
// Real captures in the shared golden directory
// ---------------------------------------------------------------------------

/// `shared/golden/cwmp/<sub>`, or a SKIP (a failure under `CI=true`).
fn golden_cwmp(sub: &str) -> Option<PathBuf> {
    testkit::shared_or_skip(&format!("golden/cwmp/{sub}"), "CWMP golden captures")
}

fn sorted_files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some(ext))
        .collect();
    v.sort();
    v
}

fn check_golden_body(origin: &str, body: &[u8]) -> Envelope {
    let env = parse(body, &Limits::default()).unwrap_or_else(|e| panic!("{origin}: {e}"));
    assert!(is_cwmp_namespace(&env.ns), "{origin}: ns {}", env.ns);
    // What we parsed must also survive our own serializer.
    let again = parse(
        &serialize(&env, &OutputStyle::default()),
        &Limits::default(),
    )
    .unwrap_or_else(|e| panic!("{origin} re-serialized: {e}"));
    assert_eq!(again, env, "{origin} re-serialized");
    env
}

#[test]
fn huawei_captures_parse() {
    let Some(dir) = golden_cwmp("huawei-bm632w") else {
        return;
    };
    let mut parsed = 0;
    let mut empty = 0;
    let mut informs = 0;
    for path in sorted_files(&dir, "json") {
        let text = std::fs::read_to_string(&path).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        // Only the [headers, body] message arrays; other JSON (device dumps)
        // is not a message.
        let Some(arr) = json.as_array() else { continue };
        let Some(body) = arr.get(1).and_then(|b| b.as_str()) else {
            continue;
        };
        if is_empty_body(body.as_bytes()) {
            empty += 1;
            continue;
        }
        let env = check_golden_body(&path.display().to_string(), body.as_bytes());
        match env.as_rpc() {
            Some(Rpc::Inform(i)) => {
                informs += 1;
                assert_eq!(i.device_id.oui, "202BC1");
                assert_eq!(i.device_id.serial_number, "8KA8WA1151100043");
                assert_eq!(i.current_time, "2012-10-08T21:31:55");
                assert!(parse_datetime_lenient(&i.current_time).is_some());
                assert!(!i.event.is_empty());
            }
            Some(Rpc::GetParameterNamesResponse(r)) => assert!(r.parameter_list.len() > 100),
            Some(Rpc::GetParameterValuesResponse(r)) => assert!(!r.parameter_list.is_empty()),
            other => panic!("{}: unexpected {other:?}", path.display()),
        }
        parsed += 1;
    }
    println!("huawei: parsed {parsed} bodies, {empty} empty");
    assert!(parsed > 0);
    assert_eq!(informs, 1);
}

/// One HTTP message reconstructed from a tshark "follow tcp,ascii" dump.
struct HttpMsg {
    start_line: String,
    body: Vec<u8>,
}

/// Reassembles the per-direction byte streams of a follow dump. Each chunk
/// is a length line (tab-indented for node 1) followed by exactly that many
/// bytes and a newline, so HTTP messages may span several chunks.
fn follow_dump_messages(raw: &[u8]) -> Vec<HttpMsg> {
    let mut streams: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut pos = 0usize;
    let next_line = |pos: &mut usize| -> Option<&[u8]> {
        if *pos >= raw.len() {
            return None;
        }
        let end = raw[*pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| *pos + i)
            .unwrap_or(raw.len());
        let line = &raw[*pos..end];
        *pos = end + 1;
        Some(line)
    };
    // Skip the preamble up to the "Node 1:" line.
    while let Some(line) = next_line(&mut pos) {
        if line.starts_with(b"Node 1:") {
            break;
        }
    }
    while let Some(line) = next_line(&mut pos) {
        if line.starts_with(b"====") {
            break;
        }
        if line.is_empty() {
            continue;
        }
        let node1 = line[0] == b'\t';
        let n: usize = std::str::from_utf8(line)
            .unwrap()
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("bad chunk header {:?}", String::from_utf8_lossy(line)));
        let data = &raw[pos..pos + n];
        streams[usize::from(node1)].extend_from_slice(data);
        pos += n;
        assert_eq!(raw.get(pos), Some(&b'\n'), "chunk not newline-terminated");
        pos += 1;
    }
    let mut out = Vec::new();
    for stream in &streams {
        let mut p = 0;
        while p < stream.len() {
            let head_end = stream[p..]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| p + i)
                .expect("HTTP head terminator");
            let head = String::from_utf8_lossy(&stream[p..head_end]).to_string();
            let len = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| v.trim().parse::<usize>().unwrap())
                .unwrap_or(0);
            let body_start = head_end + 4;
            let body = stream[body_start..body_start + len].to_vec();
            out.push(HttpMsg {
                start_line: head.lines().next().unwrap_or_default().to_string(),
                body,
            });
            p = body_start + len;
        }
    }
    out
}

#[test]
fn baicells_captures_parse() {
    let Some(dir) = golden_cwmp("baicells-enb") else {
        return;
    };
    let mut parsed = 0;
    let mut empty = 0;
    let mut names = std::collections::BTreeSet::new();
    for path in sorted_files(&dir, "txt") {
        let raw = std::fs::read(&path).unwrap();
        let msgs = follow_dump_messages(&raw);
        assert!(!msgs.is_empty(), "{}", path.display());
        for (i, m) in msgs.iter().enumerate() {
            let origin = format!("{} message {i} ({})", path.display(), m.start_line);
            if is_empty_body(&m.body) {
                empty += 1;
                continue;
            }
            let env = check_golden_body(&origin, &m.body);
            let r = env.as_rpc().unwrap_or_else(|| panic!("{origin}: fault"));
            // The CPE (the HTTP client, whichever node it is) sends
            // ACS-method requests and responses to CPE methods; the ACS
            // sends the opposite in HTTP responses.
            let answers_acs_request = r.is_response() && {
                let base = r.method_name().trim_end_matches("Response");
                !matches!(
                    base,
                    "Inform"
                        | "TransferComplete"
                        | "AutonomousTransferComplete"
                        | "DUStateChangeComplete"
                        | "AutonomousDUStateChangeComplete"
                        | "RequestDownload"
                        | "Kicked"
                )
            };
            let cpe_sent = (r.is_cpe_request() && !r.is_acs_request()) || answers_acs_request;
            assert_eq!(m.start_line.starts_with("POST "), cpe_sent, "{origin}");
            if let Rpc::Inform(inf) = r {
                assert_eq!(inf.device_id.oui, "48BF74");
                assert_eq!(inf.device_id.product_class, "FAP/pBS31010/CA");
                assert_eq!(
                    inf.device_id.canonical_id(),
                    format!("48BF74-FAP%2FpBS31010%2FCA-{}", inf.device_id.serial_number)
                );
                // `<Value/>` without xsi:type.
                let pc = inf
                    .parameter_list
                    .iter()
                    .find(|p| p.name == "Device.DeviceInfo.ProvisioningCode")
                    .unwrap();
                assert_eq!(pc.value, "");
                assert_eq!(pc.xsi_type, None);
            }
            if r.method_name() != "Inform" && env.header.id.is_some() {
                // This ACS/CPE pair uses the literal ID "null".
                assert_eq!(env.header.id.as_deref(), Some("null"));
            }
            names.insert(r.method_name().to_string());
            parsed += 1;
        }
    }
    println!("baicells: parsed {parsed} bodies, {empty} empty, methods {names:?}");
    assert!(parsed > 0);
    for m in [
        "Inform",
        "InformResponse",
        "GetParameterValues",
        "GetParameterValuesResponse",
        "SetParameterValues",
        "SetParameterValuesResponse",
    ] {
        assert!(names.contains(m), "no {m} found in captures");
    }
}
