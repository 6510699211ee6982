//! The ACS session state machine, driven with plain values (no sockets, no clock).

use std::time::{Duration, Instant};

use acs::codec::*;
use acs::session::*;
use serde_json::json;

const NS: &str = "urn:dslforum-org:cwmp-1-0";

fn inform(events: &[&str], supported: Option<&str>) -> Envelope {
    Envelope {
        ns: NS.into(),
        header: Header {
            id: Some("inform".into()),
            supported_cwmp_versions: supported.map(String::from),
            ..Default::default()
        },
        body: Body::Rpc(Rpc::Inform(Inform {
            device_id: DeviceIdStruct {
                manufacturer: "ExampleCo".into(),
                oui: "001a2b".into(),
                product_class: "HGW-1000".into(),
                serial_number: "SN1".into(),
            },
            event: events.iter().map(|e| EventStruct::new(*e, "")).collect(),
            max_envelopes: 1,
            current_time: "2024-05-01T12:00:00".into(),
            retry_count: 0,
            parameter_list: vec![
                ParameterValueStruct::new(
                    "Device.DeviceInfo.SoftwareVersion",
                    "2.4.0",
                    "xsd:string",
                ),
                ParameterValueStruct::new(
                    "Device.ManagementServer.ConnectionRequestURL",
                    "http://127.0.0.1:9/cr",
                    "xsd:string",
                ),
                ParameterValueStruct::new(
                    "Device.ManagementServer.ConnectionRequestPassword",
                    "",
                    "xsd:string",
                ),
            ],
        })),
    }
}

fn start(events: &[&str]) -> (Session, Step) {
    Session::start(
        "s1".into(),
        inform(events, None),
        Instant::now(),
        Duration::from_secs(30),
    )
    .expect("session starts")
}

fn envelope(reply: &Reply) -> &Envelope {
    match reply {
        Reply::Envelope(e) => e,
        other => panic!("expected an envelope, got {other:?}"),
    }
}

fn step(next: Next) -> Step {
    match next {
        Next::Step(s) => s,
        other => panic!("expected a step, got {other:?}"),
    }
}

fn task(id: i64, kind: &str, args: serde_json::Value) -> TaskSpec {
    TaskSpec {
        id,
        kind: kind.into(),
        args,
        command_key: Some(format!("k{id}")),
        upload_token: None,
    }
}

fn response(id: &str, rpc: Rpc) -> Envelope {
    Envelope {
        ns: NS.into(),
        header: Header {
            id: Some(id.into()),
            ..Default::default()
        },
        body: Body::Rpc(rpc),
    }
}

#[test]
fn inform_is_persisted_and_answered_in_the_cpe_namespace() {
    let (s, step) = start(&["0 BOOTSTRAP", "1 Boot"]);
    let env = envelope(&step.reply);
    assert_eq!(env.ns, NS);
    assert_eq!(env.header.id.as_deref(), Some("inform"));
    assert_eq!(env.header.use_cwmp_version, None);
    assert!(matches!(
        env.body,
        Body::Rpc(Rpc::InformResponse(InformResponse { max_envelopes: 1 }))
    ));
    assert_eq!(s.device_id, "001A2B-HGW%2D1000-SN1");
    let Persist::Inform(info) = &step.persist[0] else {
        panic!("first effect must persist the Inform")
    };
    assert!(info.bootstrap);
    assert_eq!(
        info.events[1].event_code, "1 BOOT",
        "spelling variants are normalised"
    );
    assert_eq!(info.software_version.as_deref(), Some("2.4.0"));
    assert_eq!(
        info.connection_request_url.as_deref(),
        Some("http://127.0.0.1:9/cr")
    );
    assert_eq!(info.root_object, "Device.");
    assert!(
        !info.parameters.iter().any(|p| p.path.ends_with("Password")),
        "an empty hidden value must not overwrite the stored secret"
    );
}

#[test]
fn version_negotiation() {
    let (s, step) = Session::start(
        "s".into(),
        inform(&["2 PERIODIC"], Some("1.0,1.1,1.2,1.3,1.4")),
        Instant::now(),
        Duration::from_secs(30),
    )
    .unwrap();
    assert_eq!(s.cwmp_version, "1.4");
    assert_eq!(
        envelope(&step.reply).header.use_cwmp_version.as_deref(),
        Some("1.4")
    );

    let err = Session::start(
        "s".into(),
        inform(&["2 PERIODIC"], Some("2.0")),
        Instant::now(),
        Duration::from_secs(30),
    )
    .unwrap_err();
    let StartError::Fault(env) = err else {
        panic!()
    };
    let Body::Fault(f) = &env.body else { panic!() };
    assert_eq!(f.detail.fault_code, 8006);
}

#[test]
fn first_message_must_be_an_inform() {
    let env = response("x", Rpc::GetRPCMethods(GetRPCMethods {}));
    assert!(matches!(
        Session::start("s".into(), env, Instant::now(), Duration::from_secs(30)),
        Err(StartError::BadRequest(_))
    ));
    let mut bad = inform(&[], None);
    if let Body::Rpc(Rpc::Inform(i)) = &mut bad.body {
        i.device_id.serial_number.clear();
    }
    let Err(StartError::Fault(env)) =
        Session::start("s".into(), bad, Instant::now(), Duration::from_secs(30))
    else {
        panic!("empty SerialNumber must be refused with a fault")
    };
    assert!(matches!(&env.body, Body::Fault(f) if f.detail.fault_code == 8003));
}

#[test]
fn empty_post_runs_queued_tasks_one_at_a_time_then_204() {
    let (mut s, _) = start(&["2 PERIODIC"]);
    let now = Instant::now();
    let Next::NeedTasks { persist } = s.on_empty(now) else {
        panic!("tasks are loaded lazily")
    };
    let st = s.supply_tasks(
        vec![
            task(1, "GetParameterValues", json!({"parameter_names": ["Device.DeviceInfo.UpTime"]})),
            task(2, "SetParameterValues", json!({"parameter_list": [
                {"name": "Device.ManagementServer.PeriodicInformInterval", "value": "60", "xsi_type": "xsd:unsignedInt"}
            ]})),
        ],
        persist,
    );
    assert!(st.persist.iter().any(|p| matches!(p, Persist::Results { tasks, .. } if tasks == &vec![TaskOutcome::Started { id: 1, sent_key: None }])));
    let env = envelope(&st.reply).clone();
    let Body::Rpc(Rpc::GetParameterValues(g)) = &env.body else {
        panic!()
    };
    assert_eq!(g.parameter_names, vec!["Device.DeviceInfo.UpTime"]);
    assert_eq!(s.outstanding_task(), Some(1));

    let resp = response(
        env.header.id.as_deref().unwrap(),
        Rpc::GetParameterValuesResponse(GetParameterValuesResponse {
            parameter_list: vec![ParameterValueStruct::new(
                "Device.DeviceInfo.UpTime",
                "3600",
                "xsd:unsignedInt",
            )],
        }),
    );
    let st = step(s.on_envelope(resp, now));
    let Persist::Results { tasks, params, .. } = &st.persist[0] else {
        panic!()
    };
    assert!(
        matches!(&tasks[0], TaskOutcome::Done { id: 1, result } if result["parameter_list"][0]["value"] == "3600")
    );
    assert_eq!(params[0].value.as_deref(), Some("3600"));
    assert_eq!(params[0].xsd_type.as_deref(), Some("xsd:unsignedInt"));
    let spv_env = envelope(&st.reply).clone();
    let Body::Rpc(Rpc::SetParameterValues(spv)) = &spv_env.body else {
        panic!()
    };
    assert_eq!(
        spv.parameter_key, "k2",
        "ParameterKey defaults to the task's key"
    );

    let st = step(s.on_envelope(
        response(
            spv_env.header.id.as_deref().unwrap(),
            Rpc::SetParameterValuesResponse(SetParameterValuesResponse { status: 0 }),
        ),
        now,
    ));
    let Persist::Results { tasks, params, .. } = &st.persist[0] else {
        panic!()
    };
    assert!(matches!(tasks[0], TaskOutcome::Done { id: 2, .. }));
    assert!(params.iter().any(
        |p| p.path == "Device.ManagementServer.PeriodicInformInterval"
            && p.value.as_deref() == Some("60")
    ));
    assert!(params
        .iter()
        .any(|p| p.path == "Device.ManagementServer.ParameterKey"
            && p.value.as_deref() == Some("k2")));
    assert_eq!(st.reply, Reply::End);
    assert!(s.is_done());
}

#[test]
fn cpe_requests_are_answered_and_persisted_first() {
    let (mut s, _) = start(&["7 TRANSFER COMPLETE", "M Download"]);
    let tc = Envelope {
        ns: NS.into(),
        header: Header {
            id: Some("cpe-7".into()),
            ..Default::default()
        },
        body: Body::Rpc(Rpc::TransferComplete(TransferComplete {
            command_key: "k9".into(),
            fault_struct: FaultStruct {
                fault_code: 9016,
                fault_string: "404".into(),
            },
            start_time: "2024-05-01T12:01:00Z".into(),
            complete_time: "2024-05-01T12:03:30Z".into(),
        })),
    };
    let st = step(s.on_envelope(tc, Instant::now()));
    assert!(
        matches!(&st.persist[0], Persist::TransferComplete { command_key, fault: Some(f), .. } if command_key == "k9" && f.fault_code == 9016)
    );
    let env = envelope(&st.reply);
    assert_eq!(env.header.id.as_deref(), Some("cpe-7"));
    assert!(matches!(
        env.body,
        Body::Rpc(Rpc::TransferCompleteResponse(_))
    ));

    let st = step(s.on_envelope(
        response("cpe-8", Rpc::GetRPCMethods(GetRPCMethods {})),
        Instant::now(),
    ));
    let Body::Rpc(Rpc::GetRPCMethodsResponse(m)) = &envelope(&st.reply).body else {
        panic!()
    };
    assert!(m.method_list.contains(&"TransferComplete".to_string()));

    let st = step(s.on_envelope(
        response(
            "cpe-9",
            Rpc::Unknown {
                name: "X_FOO_Bar".into(),
            },
        ),
        Instant::now(),
    ));
    let Body::Fault(f) = &envelope(&st.reply).body else {
        panic!()
    };
    assert_eq!(f.detail.fault_code, 8000);
    assert_eq!(f.faultcode, "Server");
    assert!(
        !s.is_done(),
        "a fault to a CPE request keeps the session alive"
    );
}

#[test]
fn second_inform_is_a_protocol_error() {
    let (mut s, _) = start(&["2 PERIODIC"]);
    let st = step(s.on_envelope(inform(&["2 PERIODIC"], None), Instant::now()));
    assert!(matches!(st.reply, Reply::BadRequest(_)));
    assert!(
        st.persist.is_empty(),
        "nothing is stored from the bad message"
    );
    assert!(s.is_done());
}

fn with_outstanding_gpv() -> (Session, String) {
    let (mut s, _) = start(&["6 CONNECTION REQUEST"]);
    let Next::NeedTasks { persist } = s.on_empty(Instant::now()) else {
        panic!()
    };
    let st = s.supply_tasks(
        vec![task(
            5,
            "GetParameterValues",
            json!({"parameter_names": ["Device."]}),
        )],
        persist,
    );
    let id = envelope(&st.reply).header.id.clone().unwrap();
    (s, id)
}

#[test]
fn wrong_cwmp_id_records_a_fault_and_stores_no_values() {
    let (mut s, _) = with_outstanding_gpv();
    let st = step(s.on_envelope(
        response(
            "not-ours",
            Rpc::GetParameterValuesResponse(GetParameterValuesResponse {
                parameter_list: vec![ParameterValueStruct::new("Device.X", "1", "xsd:string")],
            }),
        ),
        Instant::now(),
    ));
    let Persist::Results { tasks, params, .. } = &st.persist[0] else {
        panic!()
    };
    assert!(params.is_empty());
    assert!(
        matches!(&tasks[0], TaskOutcome::Fault { id: 5, message, .. } if message.contains("cwmp:ID"))
    );
    assert_eq!(st.reply, Reply::End);
}

#[test]
fn response_without_id_is_matched_by_method() {
    let (mut s, _) = with_outstanding_gpv();
    let mut env = response(
        "",
        Rpc::GetParameterValuesResponse(GetParameterValuesResponse {
            parameter_list: vec![ParameterValueStruct::new("Device.X", "1", "xsd:string")],
        }),
    );
    env.header.id = None;
    let st = step(s.on_envelope(env, Instant::now()));
    let Persist::Results { tasks, params, .. } = &st.persist[0] else {
        panic!()
    };
    assert_eq!(params.len(), 1);
    assert!(matches!(tasks[0], TaskOutcome::Done { id: 5, .. }));
}

#[test]
fn cpe_fault_and_wrong_method_become_task_faults() {
    let (mut s, id) = with_outstanding_gpv();
    let fault = Envelope {
        ns: NS.into(),
        header: Header {
            id: Some(id),
            ..Default::default()
        },
        body: Body::Fault(Fault::cpe(9005, "Invalid parameter name")),
    };
    let st = step(s.on_envelope(fault, Instant::now()));
    let Persist::Results { tasks, .. } = &st.persist[0] else {
        panic!()
    };
    assert!(matches!(
        &tasks[0],
        TaskOutcome::Fault {
            code: 9005,
            retryable: false,
            ..
        }
    ));

    let (mut s, id) = with_outstanding_gpv();
    let st = step(s.on_envelope(
        response(&id, Rpc::RebootResponse(RebootResponse {})),
        Instant::now(),
    ));
    let Persist::Results { tasks, .. } = &st.persist[0] else {
        panic!()
    };
    assert!(
        matches!(&tasks[0], TaskOutcome::Fault { message, .. } if message.contains("expected GetParameterValuesResponse"))
    );
}

#[test]
fn empty_post_instead_of_response_and_abort() {
    let (mut s, _) = with_outstanding_gpv();
    let st = step(s.on_empty(Instant::now()));
    let Persist::Results { tasks, .. } = &st.persist[0] else {
        panic!()
    };
    assert!(matches!(
        &tasks[0],
        TaskOutcome::Fault {
            id: 5,
            retryable: true,
            ..
        }
    ));
    assert_eq!(st.reply, Reply::End);

    let (mut s, _) = with_outstanding_gpv();
    let t0 = Instant::now();
    assert!(!s.expired(t0));
    assert!(s.expired(t0 + Duration::from_secs(31)));
    let p = s.abort("timeout");
    assert!(
        matches!(&p[0], Persist::Results { tasks, .. } if matches!(tasks[0], TaskOutcome::Fault { id: 5, retryable: true, .. }))
    );
    assert!(s.is_done());
}

#[test]
fn transfers_and_reboots_wait_for_their_completion() {
    let (mut s, _) = start(&["2 PERIODIC"]);
    let Next::NeedTasks { persist } = s.on_empty(Instant::now()) else {
        panic!()
    };
    let st = s.supply_tasks(
        vec![
            task(
                7,
                "Download",
                json!({"url": "http://127.0.0.1/fw.bin", "file_type": "1 Firmware Upgrade Image"}),
            ),
            task(8, "Reboot", json!({})),
        ],
        persist,
    );
    let env = envelope(&st.reply).clone();
    let Body::Rpc(Rpc::Download(d)) = &env.body else {
        panic!()
    };
    assert_eq!(d.command_key, "k7");
    let st = step(s.on_envelope(
        response(
            env.header.id.as_deref().unwrap(),
            Rpc::DownloadResponse(DownloadResponse {
                status: 1,
                start_time: UNKNOWN_TIME.into(),
                complete_time: UNKNOWN_TIME.into(),
            }),
        ),
        Instant::now(),
    ));
    assert!(
        matches!(&st.persist[0], Persist::Results { tasks, .. } if matches!(tasks[0], TaskOutcome::Waiting { id: 7, .. }))
    );
    let env = envelope(&st.reply).clone();
    let Body::Rpc(Rpc::Reboot(r)) = &env.body else {
        panic!()
    };
    assert_eq!(r.command_key, "k8");
}

#[test]
fn every_task_kind_builds_its_rpc() {
    let cases = [
        ("GetRPCMethods", json!({})),
        (
            "SetParameterValues",
            json!({"parameter_list": [{"name": "Device.A", "value": "1", "xsi_type": "xsd:int"}]}),
        ),
        (
            "GetParameterValues",
            json!({"parameter_names": ["Device."]}),
        ),
        (
            "GetParameterNames",
            json!({"parameter_path": "", "next_level": true}),
        ),
        (
            "SetParameterAttributes",
            json!({"parameter_list": [{"name": "Device.A", "notification_change": true, "notification": 2, "access_list_change": false, "access_list": []}]}),
        ),
        (
            "GetParameterAttributes",
            json!({"parameter_names": ["Device.A"]}),
        ),
        (
            "AddObject",
            json!({"object_name": "Device.NAT.PortMapping."}),
        ),
        (
            "DeleteObject",
            json!({"object_name": "Device.NAT.PortMapping.1."}),
        ),
        ("Reboot", json!({})),
        (
            "Download",
            json!({"url": "http://127.0.0.1/f", "file_type": "1 Firmware Upgrade Image"}),
        ),
        (
            "Upload",
            json!({"url": "http://127.0.0.1/upload/{task_id}/{command_key}/x", "file_type": "2 Vendor Log File"}),
        ),
        ("FactoryReset", json!(null)),
        ("GetQueuedTransfers", json!({})),
        ("GetAllQueuedTransfers", json!({})),
        ("ScheduleInform", json!({"delay_seconds": 5})),
        ("SetVouchers", json!({"voucher_list": []})),
        ("GetOptions", json!({"option_name": ""})),
        (
            "ScheduleDownload",
            json!({"url": "http://127.0.0.1/f", "file_type": "1 Firmware Upgrade Image", "time_window_list": [{"window_start": 0, "window_end": 60, "window_mode": "1 At Any Time", "user_message": "", "max_retries": 0}]}),
        ),
        ("CancelTransfer", json!({"command_key": "k1"})),
        (
            "ChangeDUState",
            json!({"operations": [{"Install": {"url": "http://127.0.0.1/du.ipk", "uuid": "3f2504e0-4f89-11d3-9a0c-0305e82c3301"}}]}),
        ),
    ];
    assert_eq!(cases.len(), TASK_KINDS.len());
    for (kind, args) in cases {
        let rpc =
            build_rpc(&task(3, kind, args), "Device.").unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(rpc.method_name(), kind);
        if let Rpc::GetParameterNames(g) = &rpc {
            assert_eq!(
                g.parameter_path, "Device.",
                "an empty path becomes the root (P13)"
            );
        }
        if let Rpc::Upload(u) = &rpc {
            assert_eq!(u.url, "http://127.0.0.1/upload/3/k3/x");
        }
        // And it serialises.
        let env = Envelope::rpc(NS, Some("acs-1".into()), rpc.clone());
        let back = parse(
            &serialize(&env, &OutputStyle::default()),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(back.body, Body::Rpc(rpc), "{kind}");
    }
    assert!(build_rpc(
        &task(
            1,
            "AddObject",
            json!({"object_name": "Device.NAT.PortMapping"})
        ),
        "Device."
    )
    .is_err());
    assert!(build_rpc(
        &task(1, "ScheduleInform", json!({"delay_seconds": 0})),
        "Device."
    )
    .is_err());
    assert!(build_rpc(&task(1, "Teleport", json!({})), "Device.").is_err());
    assert!(build_rpc(
        &task(1, "GetParameterValues", json!({"parameter_names": "oops"})),
        "Device."
    )
    .is_err());
}
