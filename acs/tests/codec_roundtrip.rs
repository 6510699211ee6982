//! Every RPC variant and fault must survive serialize → parse unchanged, in
//! both output styles, because the ACS and the CPE simulator talk to each
//! other through this one codec.

use acs::codec::*;
use std::collections::BTreeSet;

const NS: &str = "urn:dslforum-org:cwmp-1-2";
/// Exercises escaping (all five specials), non-ASCII (Latin-1, CJK, emoji),
/// tab/newline and a CR.
const NASTY: &str = "a&b<c>d\"e'f é 日本 😀\ttab\nnl\rcr";

fn styles() -> Vec<OutputStyle> {
    vec![
        OutputStyle::default(),
        OutputStyle {
            envelope_prefix: EnvPrefix::Upper,
            boolean_style: BoolStyle::Digits,
        },
        OutputStyle {
            envelope_prefix: EnvPrefix::SoapEnv,
            boolean_style: BoolStyle::Digits,
        },
    ]
}

fn pvs() -> Vec<ParameterValueStruct> {
    vec![
        ParameterValueStruct::new("Device.WiFi.SSID.1.SSID", NASTY, "xsd:string"),
        ParameterValueStruct::new(
            "Device.ManagementServer.PeriodicInformInterval",
            "3600",
            "xsd:unsignedInt",
        ),
        ParameterValueStruct::new(
            "Device.ManagementServer.PeriodicInformEnable",
            "true",
            "xsd:boolean",
        ),
        ParameterValueStruct::new("Device.X_ACME.Empty", "", "xsd:string"),
        ParameterValueStruct::new("Device.X_ACME.Blob", "AAECAwQ=", "xsd:base64Binary"),
        ParameterValueStruct::new("Device.X_ACME.Padded", "  spaced  ", "xsd:string"),
    ]
}

fn fault_struct(code: u32) -> FaultStruct {
    FaultStruct {
        fault_code: code,
        fault_string: if code == 0 {
            String::new()
        } else {
            format!("failed: {NASTY}")
        },
    }
}

/// One non-trivial instance of every variant of [`Rpc`].
fn all_rpcs() -> Vec<Rpc> {
    let uuid = "3f2504e0-4f89-11d3-9a0c-0305e82c3301".to_string();
    vec![
        // ---- CPE methods ----
        Rpc::GetRPCMethods(GetRPCMethods {}),
        Rpc::SetParameterValues(SetParameterValues {
            parameter_list: pvs(),
            parameter_key: "cfg & <1>".into(),
        }),
        Rpc::GetParameterValues(GetParameterValues {
            parameter_names: vec![
                "Device.DeviceInfo.UpTime".into(),
                "Device.ManagementServer.".into(),
                "Device.X_ÄCME.".into(),
            ],
        }),
        Rpc::GetParameterNames(GetParameterNames {
            parameter_path: "Device.ManagementServer.".into(),
            next_level: true,
        }),
        Rpc::SetParameterAttributes(SetParameterAttributes {
            parameter_list: vec![
                SetParameterAttributesStruct {
                    name: "Device.ManagementServer.ConnectionRequestURL".into(),
                    notification_change: true,
                    notification: 2,
                    access_list_change: true,
                    access_list: vec!["Subscriber".into()],
                },
                SetParameterAttributesStruct {
                    name: "Device.DeviceInfo.".into(),
                    notification_change: false,
                    notification: 0,
                    access_list_change: false,
                    access_list: vec![],
                },
            ],
        }),
        Rpc::GetParameterAttributes(GetParameterAttributes {
            parameter_names: vec!["Device.DeviceInfo.SoftwareVersion".into()],
        }),
        Rpc::AddObject(AddObject {
            object_name: "Device.NAT.PortMapping.".into(),
            parameter_key: "pm-add-01".into(),
        }),
        Rpc::DeleteObject(DeleteObject {
            object_name: "Device.NAT.PortMapping.3.".into(),
            parameter_key: "pm-del-01".into(),
        }),
        Rpc::Reboot(Reboot {
            command_key: "reboot-42".into(),
        }),
        Rpc::Download(Download {
            command_key: "fw-upgrade-7".into(),
            file_type: "1 Firmware Upgrade Image".into(),
            url: "https://files.example.net/fw/hgw.bin?a=1&b=2".into(),
            username: "üser".into(),
            password: "p&ss<w>rd".into(),
            file_size: 16_777_216,
            target_file_name: "hgw.bin".into(),
            delay_seconds: 30,
            success_url: "http://example.net/ok".into(),
            failure_url: "http://example.net/fail".into(),
        }),
        Rpc::Upload(Upload {
            command_key: "up-1".into(),
            file_type: "2 Vendor Log File".into(),
            url: "https://files.example.net/up/".into(),
            username: "u".into(),
            password: "p".into(),
            delay_seconds: 5,
        }),
        Rpc::FactoryReset(FactoryReset {}),
        Rpc::GetQueuedTransfers(GetQueuedTransfers {}),
        Rpc::GetAllQueuedTransfers(GetAllQueuedTransfers {}),
        Rpc::ScheduleInform(ScheduleInform {
            delay_seconds: 120,
            command_key: "sched-1".into(),
        }),
        Rpc::SetVouchers(SetVouchers {
            voucher_list: vec!["PHZvdWNoZXIvPg==".into(), "YWJj".into()],
        }),
        Rpc::GetOptions(GetOptions {
            option_name: "X_ACME_Option".into(),
        }),
        Rpc::ScheduleDownload(ScheduleDownload {
            command_key: "sd-1".into(),
            file_type: "1 Firmware Upgrade Image".into(),
            url: "http://files.example.net/fw.bin".into(),
            username: String::new(),
            password: String::new(),
            file_size: 0,
            target_file_name: String::new(),
            time_window_list: vec![
                TimeWindowStruct {
                    window_start: 0,
                    window_end: 3600,
                    window_mode: "1 At Any Time".into(),
                    user_message: "Mise à jour".into(),
                    max_retries: -1,
                },
                TimeWindowStruct {
                    window_start: 7200,
                    window_end: 10800,
                    window_mode: "4 Confirmation Needed".into(),
                    user_message: String::new(),
                    max_retries: 3,
                },
            ],
        }),
        Rpc::CancelTransfer(CancelTransfer {
            command_key: "sd-1".into(),
        }),
        Rpc::ChangeDUState(ChangeDUState {
            operations: vec![
                OperationStruct::Install(InstallOpStruct {
                    url: "https://files.example.net/du/app-1.0.ipk".into(),
                    uuid: Some(uuid.clone()),
                    username: Some(String::new()),
                    password: None,
                    execution_env_ref: Some("Device.SoftwareModules.ExecEnv.1".into()),
                }),
                OperationStruct::Update(UpdateOpStruct {
                    uuid: Some(uuid.clone()),
                    version: Some("2.0".into()),
                    url: None,
                    username: Some("u".into()),
                    password: Some("p".into()),
                }),
                OperationStruct::Update(UpdateOpStruct::default()),
                OperationStruct::Uninstall(UninstallOpStruct {
                    uuid: uuid.clone(),
                    version: None,
                    execution_env_ref: Some("Device.SoftwareModules.ExecEnv.2".into()),
                }),
            ],
            command_key: Some("du-1".into()),
        }),
        // ---- CPE method responses ----
        Rpc::GetRPCMethodsResponse(GetRPCMethodsResponse {
            method_list: vec![
                "GetRPCMethods".into(),
                "SetParameterValues".into(),
                "X_ACME_Special".into(),
            ],
        }),
        Rpc::SetParameterValuesResponse(SetParameterValuesResponse { status: 1 }),
        Rpc::GetParameterValuesResponse(GetParameterValuesResponse {
            parameter_list: {
                let mut v = pvs();
                // A value with no xsi:type must come back as None.
                v.push(ParameterValueStruct {
                    name: "Device.Untyped".into(),
                    value: "x".into(),
                    xsi_type: None,
                });
                v
            },
        }),
        Rpc::GetParameterNamesResponse(GetParameterNamesResponse {
            parameter_list: vec![
                ParameterInfoStruct {
                    name: "Device.ManagementServer.URL".into(),
                    writable: true,
                },
                ParameterInfoStruct {
                    name: "Device.ManagementServer.ParameterKey".into(),
                    writable: false,
                },
            ],
        }),
        Rpc::SetParameterAttributesResponse(SetParameterAttributesResponse {}),
        Rpc::GetParameterAttributesResponse(GetParameterAttributesResponse {
            parameter_list: vec![
                ParameterAttributeStruct {
                    name: "Device.DeviceInfo.SoftwareVersion".into(),
                    notification: 2,
                    access_list: vec![],
                },
                ParameterAttributeStruct {
                    name: "Device.WiFi.SSID.1.SSID".into(),
                    notification: 6,
                    access_list: vec!["Subscriber".into()],
                },
            ],
        }),
        Rpc::AddObjectResponse(AddObjectResponse {
            instance_number: 3,
            status: 1,
        }),
        Rpc::DeleteObjectResponse(DeleteObjectResponse { status: 0 }),
        Rpc::RebootResponse(RebootResponse {}),
        Rpc::DownloadResponse(DownloadResponse {
            status: 0,
            start_time: "2024-05-01T12:01:00Z".into(),
            complete_time: "2024-05-01T12:03:30+02:00".into(),
        }),
        Rpc::UploadResponse(UploadResponse {
            status: 1,
            start_time: UNKNOWN_TIME.into(),
            complete_time: UNKNOWN_TIME.into(),
        }),
        Rpc::FactoryResetResponse(FactoryResetResponse {}),
        Rpc::GetQueuedTransfersResponse(GetQueuedTransfersResponse {
            transfer_list: vec![
                QueuedTransferStruct {
                    command_key: "a".into(),
                    state: 1,
                },
                QueuedTransferStruct {
                    command_key: "b".into(),
                    state: 3,
                },
            ],
        }),
        Rpc::GetAllQueuedTransfersResponse(GetAllQueuedTransfersResponse {
            transfer_list: vec![AllQueuedTransferStruct {
                command_key: "fw".into(),
                state: 2,
                is_download: true,
                file_type: "1 Firmware Upgrade Image".into(),
                file_size: 1234,
                target_file_name: "fw.bin".into(),
            }],
        }),
        Rpc::ScheduleInformResponse(ScheduleInformResponse {}),
        Rpc::SetVouchersResponse(SetVouchersResponse {}),
        Rpc::GetOptionsResponse(GetOptionsResponse {
            option_list: vec![
                OptionStruct {
                    option_name: "X_ACME_Opt".into(),
                    voucher_sn: 99,
                    state: 3,
                    mode: 2,
                    start_date: "2024-01-01T00:00:00Z".into(),
                    expiration_date: Some("9999-12-31T23:59:59Z".into()),
                    is_transferable: 1,
                },
                OptionStruct {
                    option_name: "Other".into(),
                    voucher_sn: 1,
                    state: 0,
                    mode: 0,
                    start_date: "2024-01-01T00:00:00Z".into(),
                    expiration_date: None,
                    is_transferable: 0,
                },
            ],
        }),
        Rpc::ScheduleDownloadResponse(ScheduleDownloadResponse {}),
        Rpc::CancelTransferResponse(CancelTransferResponse {}),
        Rpc::ChangeDUStateResponse(ChangeDUStateResponse {}),
        // ---- ACS methods ----
        Rpc::Inform(Inform {
            device_id: DeviceIdStruct {
                manufacturer: "Exämple & Co <GmbH>".into(),
                oui: "001A2B".into(),
                product_class: "HGW-1000".into(),
                serial_number: "SN0123456789".into(),
            },
            event: vec![
                EventStruct::new("1 BOOT", ""),
                EventStruct::new("7 TRANSFER COMPLETE", ""),
                EventStruct::new("M Download", "fw-upgrade-7"),
            ],
            max_envelopes: 1,
            current_time: "2024-05-01T14:00:00+02:00".into(),
            retry_count: 3,
            parameter_list: pvs(),
        }),
        Rpc::TransferComplete(TransferComplete {
            command_key: "fw-upgrade-7".into(),
            fault_struct: fault_struct(9010),
            start_time: "2024-05-01T12:01:00Z".into(),
            complete_time: "2024-05-01T12:03:30Z".into(),
        }),
        Rpc::AutonomousTransferComplete(AutonomousTransferComplete {
            announce_url: "http://announce.example.net/".into(),
            transfer_url: "http://files.example.net/x.bin".into(),
            is_download: true,
            file_type: "1 Firmware Upgrade Image".into(),
            file_size: 42,
            target_file_name: "x.bin".into(),
            fault_struct: fault_struct(0),
            start_time: "2024-05-01T12:01:00Z".into(),
            complete_time: "2024-05-01T12:03:30Z".into(),
        }),
        Rpc::DUStateChangeComplete(DUStateChangeComplete {
            results: vec![
                OpResultStruct {
                    uuid: uuid.clone(),
                    deployment_unit_ref: "Device.SoftwareModules.DeploymentUnit.1".into(),
                    version: "1.0".into(),
                    current_state: "Installed".into(),
                    resolved: true,
                    execution_unit_ref_list: "Device.SoftwareModules.ExecutionUnit.1,Device.SoftwareModules.ExecutionUnit.2".into(),
                    start_time: "2024-05-01T12:01:00Z".into(),
                    complete_time: "2024-05-01T12:03:30Z".into(),
                    fault: fault_struct(0),
                },
                OpResultStruct {
                    uuid: uuid.clone(),
                    deployment_unit_ref: String::new(),
                    version: String::new(),
                    current_state: "Failed".into(),
                    resolved: false,
                    execution_unit_ref_list: String::new(),
                    start_time: UNKNOWN_TIME.into(),
                    complete_time: UNKNOWN_TIME.into(),
                    fault: fault_struct(9028),
                },
            ],
            command_key: Some("du-1".into()),
        }),
        Rpc::AutonomousDUStateChangeComplete(AutonomousDUStateChangeComplete {
            results: vec![AutonOpResultStruct {
                uuid,
                deployment_unit_ref: "Device.SoftwareModules.DeploymentUnit.2".into(),
                version: "3.1".into(),
                current_state: "Uninstalled".into(),
                resolved: true,
                execution_unit_ref_list: String::new(),
                start_time: "2024-05-01T12:01:00Z".into(),
                complete_time: "2024-05-01T12:03:30Z".into(),
                fault: fault_struct(0),
                operation_performed: "Uninstall".into(),
            }],
        }),
        Rpc::RequestDownload(RequestDownload {
            file_type: "3 Vendor Configuration File".into(),
            file_type_arg: vec![
                ArgStruct {
                    name: "Version".into(),
                    value: NASTY.into(),
                },
                ArgStruct {
                    name: "Empty".into(),
                    value: String::new(),
                },
            ],
        }),
        Rpc::Kicked(Kicked {
            command: "cmd".into(),
            referer: "http://lan/".into(),
            arg: "a=1&b=2".into(),
            next: "http://lan/next".into(),
        }),
        // ---- ACS method responses ----
        Rpc::InformResponse(InformResponse { max_envelopes: 1 }),
        Rpc::TransferCompleteResponse(TransferCompleteResponse {}),
        Rpc::AutonomousTransferCompleteResponse(AutonomousTransferCompleteResponse {}),
        Rpc::DUStateChangeCompleteResponse(DUStateChangeCompleteResponse {}),
        Rpc::AutonomousDUStateChangeCompleteResponse(AutonomousDUStateChangeCompleteResponse {}),
        Rpc::RequestDownloadResponse(RequestDownloadResponse {}),
        Rpc::KickedResponse(KickedResponse {
            next_url: "http://lan/next?x=1&y=2".into(),
        }),
        Rpc::Unknown {
            name: "X_ACME_Frobnicate".into(),
        },
    ]
}

use acs::codec::CPE_METHODS;
const ACS_METHODS: [&str; 7] = [
    "Inform",
    "TransferComplete",
    "AutonomousTransferComplete",
    "DUStateChangeComplete",
    "AutonomousDUStateChangeComplete",
    "RequestDownload",
    "Kicked",
];

fn header() -> Header {
    Header {
        id: Some(" id <&> é ".into()),
        ..Header::default()
    }
}

fn roundtrip(env: &Envelope, style: &OutputStyle) -> Envelope {
    let bytes = serialize(env, style);
    assert!(bytes.is_ascii(), "serializer output must be ASCII");
    match parse(&bytes, &Limits::default()) {
        Ok(e) => e,
        Err(e) => panic!("parse failed: {e}\n{}", String::from_utf8_lossy(&bytes)),
    }
}

#[test]
fn every_variant_is_covered() {
    let names: BTreeSet<String> = all_rpcs()
        .iter()
        .map(|r| r.method_name().to_string())
        .collect();
    for m in CPE_METHODS.iter().chain(ACS_METHODS.iter()) {
        assert!(names.contains(*m), "missing request {m}");
        let resp = format!("{m}Response");
        assert!(names.contains(&resp), "missing response {resp}");
    }
    // 20 CPE + 7 ACS methods, their 27 responses, and Unknown.
    assert_eq!(names.len(), 20 + 7 + 27 + 1);
}

#[test]
fn every_rpc_round_trips_in_every_style() {
    for style in styles() {
        for rpc in all_rpcs() {
            let env = Envelope {
                ns: NS.into(),
                header: header(),
                body: Body::Rpc(rpc.clone()),
            };
            let back = roundtrip(&env, &style);
            assert_eq!(
                back,
                env,
                "round trip of {} with {style:?}",
                rpc.method_name()
            );
        }
    }
}

#[test]
fn round_trip_keeps_other_namespaces_and_headers() {
    for ns in [
        "urn:dslforum-org:cwmp-1-0",
        "urn:dslforum-org:cwmp-1-1",
        "urn:dslforum-org:cwmp-1-3",
        "urn:dslforum-org:cwmp-1-4",
    ] {
        let env = Envelope {
            ns: ns.into(),
            header: Header {
                id: Some("SAGEM_ID_7589".into()),
                hold_requests: Some(false),
                session_timeout: Some(60),
                supported_cwmp_versions: Some("1.0,1.1,1.2,1.3,1.4".into()),
                use_cwmp_version: Some("1.4".into()),
                no_more_requests: Some(true),
                unknown_must_understand: vec![],
            },
            body: Body::Rpc(Rpc::InformResponse(InformResponse { max_envelopes: 1 })),
        };
        for style in styles() {
            assert_eq!(roundtrip(&env, &style), env);
        }
    }
    // No header at all, and an empty ID.
    for id in [None, Some(String::new())] {
        let env = Envelope::rpc(NS, id, Rpc::GetRPCMethods(GetRPCMethods {}));
        assert_eq!(roundtrip(&env, &OutputStyle::default()), env);
    }
}

#[test]
fn acs_faults_round_trip() {
    for code in 8000..=8006u32 {
        let fault = Fault::acs(code, format!("ACS fault {code} {NASTY}"));
        assert_eq!(
            fault.faultcode,
            if code == 8003 { "Client" } else { "Server" }
        );
        assert_eq!(fault.faultstring, "CWMP fault");
        let env = Envelope::fault(NS, Some("cpe-1004".into()), fault);
        for style in styles() {
            let back = roundtrip(&env, &style);
            assert_eq!(back, env, "fault {code}");
            let Body::Fault(f) = &back.body else {
                panic!("not a fault")
            };
            assert_eq!(f.detail.fault_code, code);
        }
    }
}

#[test]
fn cpe_spv_fault_round_trips() {
    let fault = Fault::cpe(9003, "Invalid arguments")
        .with_spv_fault(
            "Device.ManagementServer.PeriodicInformInterval",
            9007,
            "Invalid parameter value",
        )
        .with_spv_fault(
            "Device.X_ÄCME.ReadOnly",
            9008,
            "Attempt to set a non-writable parameter",
        )
        .with_spv_fault("Device.Nope", 9005, "");
    assert_eq!(fault.faultcode, "Client");
    let env = Envelope::fault("urn:dslforum-org:cwmp-1-0", Some("acs-0002".into()), fault);
    for style in styles() {
        let back = roundtrip(&env, &style);
        assert_eq!(back, env);
    }
    // Client/Server split of checklist §4.1.
    for (code, fc) in [
        (9000, "Server"),
        (9001, "Server"),
        (9002, "Server"),
        (9003, "Client"),
        (9004, "Server"),
        (9005, "Client"),
        (9006, "Client"),
        (9007, "Client"),
        (9008, "Client"),
        (9009, "Server"),
        (9010, "Server"),
        (9022, "Client"),
        (9032, "Server"),
    ] {
        assert_eq!(Fault::cpe(code, "x").faultcode, fc, "code {code}");
    }
}

#[test]
fn rpc_predicates() {
    for rpc in all_rpcs() {
        let name = rpc.method_name().to_string();
        let is_resp = name.ends_with("Response");
        assert_eq!(rpc.is_response(), is_resp, "{name}");
        if let Rpc::Unknown { .. } = rpc {
            assert!(!rpc.is_cpe_request() && !rpc.is_acs_request());
            continue;
        }
        let acs_method = ACS_METHODS.contains(&name.as_str()) || name == "GetRPCMethods";
        assert_eq!(rpc.is_cpe_request(), acs_method, "{name}");
        let cpe_method = CPE_METHODS.contains(&name.as_str());
        assert_eq!(rpc.is_acs_request(), cpe_method, "{name}");
        if is_resp {
            assert_eq!(rpc.response_name(), None);
        } else {
            assert_eq!(rpc.response_name(), Some(format!("{name}Response")));
        }
    }
    let unknown_resp = Rpc::Unknown {
        name: "X_ACME_FooResponse".into(),
    };
    assert!(unknown_resp.is_response());
}

#[test]
fn serde_json_round_trip_of_model() {
    // The ACS stores task arguments/results as JSON built from these types.
    for rpc in all_rpcs() {
        let json = serde_json::to_string(&rpc).unwrap();
        let back: Rpc = serde_json::from_str(&json).unwrap();
        assert_eq!(back, rpc);
    }
    let env = Envelope::fault(
        NS,
        None,
        Fault::cpe(9003, "x").with_spv_fault("a", 9007, "b"),
    );
    let json = serde_json::to_string(&env).unwrap();
    assert_eq!(serde_json::from_str::<Envelope>(&json).unwrap(), env);
}

#[test]
fn output_shape_follows_the_checklist() {
    let env = Envelope {
        ns: NS.into(),
        header: Header {
            id: Some("acs-1".into()),
            session_timeout: Some(30),
            supported_cwmp_versions: Some("1.4".into()),
            use_cwmp_version: Some("1.4".into()),
            ..Header::default()
        },
        body: Body::Rpc(Rpc::SetParameterValues(SetParameterValues {
            parameter_list: vec![
                ParameterValueStruct {
                    name: "A".into(),
                    value: "é&".into(),
                    xsi_type: None,
                },
                ParameterValueStruct::new("B", "1", "xsd:unsignedInt"),
            ],
            parameter_key: "k".into(),
        })),
    };
    let s = String::from_utf8(serialize(&env, &OutputStyle::default())).unwrap();
    assert!(s.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    for decl in [
        "xmlns:soap-env=\"http://schemas.xmlsoap.org/soap/envelope/\"",
        "xmlns:soap-enc=\"http://schemas.xmlsoap.org/soap/encoding/\"",
        "xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\"",
        "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"",
        "xmlns:cwmp=\"urn:dslforum-org:cwmp-1-2\"",
    ] {
        assert!(s.contains(decl), "missing {decl}");
    }
    assert_eq!(
        s.matches("xmlns:").count(),
        5,
        "all namespaces on Envelope only"
    );
    assert!(s.contains("<cwmp:ID soap-env:mustUnderstand=\"1\">acs-1</cwmp:ID>"));
    assert!(
        s.contains("<cwmp:SessionTimeout soap-env:mustUnderstand=\"0\">30</cwmp:SessionTimeout>")
    );
    assert!(s.contains("<cwmp:SupportedCWMPVersions soap-env:mustUnderstand=\"0\">1.4</cwmp:SupportedCWMPVersions>"));
    assert!(
        s.contains("<cwmp:UseCWMPVersion soap-env:mustUnderstand=\"1\">1.4</cwmp:UseCWMPVersion>")
    );
    assert!(!s.contains("HoldRequests"));
    assert!(!s.contains("NoMoreRequests"));
    assert!(s.contains(
        "<cwmp:SetParameterValues><ParameterList soap-enc:arrayType=\"cwmp:ParameterValueStruct[2]\">"
    ));
    // Untyped SPV values default to xsd:string; non-ASCII as char refs.
    assert!(s.contains("<Name>A</Name><Value xsi:type=\"xsd:string\">&#xE9;&amp;</Value>"));
    assert!(s.contains("<Value xsi:type=\"xsd:unsignedInt\">1</Value>"));
    assert!(s.contains("</ParameterList><ParameterKey>k</ParameterKey></cwmp:SetParameterValues>"));

    // CR would be normalised away by conforming XML parsers: keep it as a
    // character reference; specials escaped; nothing outside ASCII.
    let env = Envelope::rpc(
        NS,
        None,
        Rpc::Reboot(Reboot {
            command_key: NASTY.into(),
        }),
    );
    let s = String::from_utf8(serialize(&env, &OutputStyle::default())).unwrap();
    assert!(s.contains(
        "<CommandKey>a&amp;b&lt;c&gt;d&quot;e&apos;f &#xE9; &#x65E5;&#x672C; &#x1F600;\ttab\nnl&#xD;cr</CommandKey>"
    ));
    assert!(!s.contains('\r'));

    // Upper-case prefixes and digit booleans.
    let env = Envelope::rpc(
        NS,
        Some("x".into()),
        Rpc::GetParameterNames(GetParameterNames {
            parameter_path: "Device.".into(),
            next_level: false,
        }),
    );
    let upper = OutputStyle {
        envelope_prefix: EnvPrefix::Upper,
        boolean_style: BoolStyle::Digits,
    };
    let s = String::from_utf8(serialize(&env, &upper)).unwrap();
    assert!(s.contains("<SOAP-ENV:Envelope xmlns:SOAP-ENV="));
    assert!(s.contains("xmlns:SOAP-ENC="));
    assert!(s.contains("<cwmp:ID SOAP-ENV:mustUnderstand=\"1\">x</cwmp:ID>"));
    assert!(s.contains("<NextLevel>0</NextLevel>"));
    let s = String::from_utf8(serialize(&env, &OutputStyle::default())).unwrap();
    assert!(s.contains("<NextLevel>false</NextLevel>"));
}

#[test]
fn output_shapes_of_arrays_and_operations() {
    let render = |rpc: Rpc| {
        String::from_utf8(serialize(
            &Envelope::rpc(NS, None, rpc),
            &OutputStyle::default(),
        ))
        .unwrap()
    };
    let s = render(Rpc::GetParameterValues(GetParameterValues {
        parameter_names: vec!["a".into(), "b".into()],
    }));
    assert!(s.contains("<ParameterNames soap-enc:arrayType=\"xsd:string[2]\"><string>a</string><string>b</string></ParameterNames>"));

    let s = render(Rpc::SetParameterAttributes(SetParameterAttributes {
        parameter_list: vec![SetParameterAttributesStruct {
            name: "Device.".into(),
            ..Default::default()
        }],
    }));
    assert!(s.contains(
        "<SetParameterAttributesStruct><Name>Device.</Name><NotificationChange>false</NotificationChange>\
<Notification>0</Notification><AccessListChange>false</AccessListChange>\
<AccessList soap-enc:arrayType=\"xsd:string[0]\"></AccessList></SetParameterAttributesStruct>"
    ));

    let s = render(Rpc::Download(Download::default()));
    for e in [
        "CommandKey",
        "FileType",
        "URL",
        "Username",
        "Password",
        "FileSize",
        "TargetFileName",
        "DelaySeconds",
        "SuccessURL",
        "FailureURL",
    ] {
        assert!(s.contains(&format!("<{e}>")), "Download lacks {e}");
    }
    assert!(s.contains("<CommandKey></CommandKey><FileType></FileType><URL></URL><Username></Username><Password></Password><FileSize>0</FileSize><TargetFileName></TargetFileName><DelaySeconds>0</DelaySeconds><SuccessURL></SuccessURL><FailureURL></FailureURL>"));

    let s = render(Rpc::ChangeDUState(ChangeDUState {
        operations: vec![
            OperationStruct::Install(InstallOpStruct {
                url: "u".into(),
                ..Default::default()
            }),
            OperationStruct::Uninstall(UninstallOpStruct {
                uuid: "x".into(),
                ..Default::default()
            }),
        ],
        command_key: None,
    }));
    assert!(s.contains("<Operations xsi:type=\"cwmp:InstallOpStruct\"><URL>u</URL></Operations><Operations xsi:type=\"cwmp:UninstallOpStruct\"><UUID>x</UUID></Operations></cwmp:ChangeDUState>"));

    let s = render(Rpc::SetVouchers(SetVouchers {
        voucher_list: vec!["YQ==".into()],
    }));
    assert!(s.contains("<VoucherList soap-enc:arrayType=\"soap-enc:base64[1]\"><base64>YQ==</base64></VoucherList>"));

    let s = render(Rpc::RebootResponse(RebootResponse {}));
    assert!(s.contains("<soap-env:Body><cwmp:RebootResponse/></soap-env:Body>"));

    let s = render(Rpc::Inform(Inform {
        device_id: DeviceIdStruct {
            oui: "001A2B".into(),
            serial_number: "1".into(),
            ..Default::default()
        },
        event: vec![EventStruct::new("2 PERIODIC", "")],
        max_envelopes: 1,
        current_time: String::new(),
        retry_count: 0,
        parameter_list: vec![],
    }));
    assert!(s.contains("<Event soap-enc:arrayType=\"cwmp:EventStruct[1]\">"));
    assert!(s.contains("<CurrentTime>0001-01-01T00:00:00Z</CurrentTime>"));
    assert!(s.contains(
        "<ParameterList soap-enc:arrayType=\"cwmp:ParameterValueStruct[0]\"></ParameterList>"
    ));

    let s = String::from_utf8(serialize(
        &Envelope::fault(
            NS,
            Some("1".into()),
            Fault::acs(8000, "Method not supported"),
        ),
        &OutputStyle::default(),
    ))
    .unwrap();
    assert!(s.contains("<soap-env:Body><soap-env:Fault><faultcode>Server</faultcode><faultstring>CWMP fault</faultstring><detail><cwmp:Fault><FaultCode>8000</FaultCode><FaultString>Method not supported</FaultString></cwmp:Fault></detail></soap-env:Fault></soap-env:Body>"));
}

#[test]
fn datetime_helpers() {
    use chrono::{TimeZone, Utc};
    let t = |y, mo, d, h, mi, s| Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap();
    assert_eq!(
        parse_datetime_lenient("2024-05-01T14:00:00+02:00"),
        Some(t(2024, 5, 1, 12, 0, 0))
    );
    assert_eq!(
        parse_datetime_lenient("2024-05-01T12:00:00Z"),
        Some(t(2024, 5, 1, 12, 0, 0))
    );
    assert_eq!(
        parse_datetime_lenient("2012-10-08T21:31:55"),
        Some(t(2012, 10, 8, 21, 31, 55))
    );
    assert_eq!(
        parse_datetime_lenient("2022-04-25T10:11:42-06:00"),
        Some(t(2022, 4, 25, 16, 11, 42))
    );
    assert_eq!(
        parse_datetime_lenient("2019-03-05T11:54::14"),
        Some(t(2019, 3, 5, 11, 54, 14))
    );
    assert_eq!(
        parse_datetime_lenient("2024-05-01 12:00:00+0100"),
        Some(t(2024, 5, 1, 11, 0, 0))
    );
    assert_eq!(
        parse_datetime_lenient("2024-05-01T12:00:00.123456Z").map(|d| format_datetime(&d)),
        Some("2024-05-01T12:00:00Z".to_string())
    );
    assert_eq!(
        parse_datetime_lenient(UNKNOWN_TIME),
        Some(t(1, 1, 1, 0, 0, 0))
    );
    assert_eq!(parse_datetime_lenient(""), None);
    assert_eq!(parse_datetime_lenient("garbage"), None);
    assert_eq!(parse_datetime_lenient("2024-13-01T00:00:00Z"), None);
    assert_eq!(
        format_datetime(&t(2024, 5, 1, 12, 3, 4)),
        "2024-05-01T12:03:04Z"
    );
    assert_eq!(format_datetime(&t(1, 1, 1, 0, 0, 0)), UNKNOWN_TIME);
}

#[test]
fn canonical_device_id() {
    let mut d = DeviceIdStruct {
        manufacturer: "ExampleCo".into(),
        oui: "001a2b".into(),
        product_class: "HGW-1000".into(),
        serial_number: "SN0123456789".into(),
    };
    assert_eq!(d.canonical_id(), "001A2B-HGW%2D1000-SN0123456789");
    d.product_class.clear();
    assert_eq!(d.canonical_id(), "001A2B-SN0123456789");
    d.product_class = "FAP/pBS31010/CA".into();
    d.serial_number = "a b_é".into();
    assert_eq!(d.canonical_id(), "001A2B-FAP%2FpBS31010%2FCA-a%20b_%C3%A9");
}

#[test]
fn namespace_predicate() {
    assert!(is_cwmp_namespace("urn:dslforum-org:cwmp-1-0"));
    assert!(is_cwmp_namespace("urn:dslforum-org:cwmp-1-4"));
    assert!(is_cwmp_namespace("urn:dslforum-org:cwmp-1-12"));
    assert!(!is_cwmp_namespace("urn:dslforum-org:cwmp-1-"));
    assert!(!is_cwmp_namespace("urn:dslforum-org:cwmp-2-0"));
    assert!(!is_cwmp_namespace("urn:dslforum-org:cwmp-1-2x"));
    assert!(!is_cwmp_namespace(
        "urn:broadband-forum-org:cwmp:lwnotif-1-0"
    ));
}
