//! The store suite, run against SQLite (temp dir) and a throwaway
//! PostgreSQL cluster (`store::testpg`; skipped with a SKIP line when no
//! PostgreSQL binaries are installed).

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::json;
use store::testpg::TestPg;
use store::*;

// ---------------------------------------------------------------------------
// Harness

struct Ctx {
    store: Store,
    url: String,
    kind: Backend,
    dir: Option<tempfile::TempDir>,
}

impl Ctx {
    async fn sqlite() -> Ctx {
        let dir = tempfile::tempdir().unwrap();
        // A missing parent directory must be created by open().
        let url = dir
            .path()
            .join("nested/dir/keelson.db")
            .display()
            .to_string();
        let store = Store::open(&url, StoreOptions::default()).await.unwrap();
        Ctx {
            store,
            url,
            kind: Backend::Sqlite,
            dir: Some(dir),
        }
    }

    async fn postgres() -> Option<Ctx> {
        let pg = TestPg::shared()?;
        let url = pg.fresh_database();
        let opts = StoreOptions {
            pool_size: Some(4),
            ..StoreOptions::default()
        };
        let store = Store::open(&url, opts).await.unwrap();
        Some(Ctx {
            store,
            url,
            kind: Backend::Postgres,
            dir: None,
        })
    }

    /// A URL for another, empty database of the same backend.
    fn another_url(&self) -> String {
        match self.kind {
            Backend::Sqlite => format!(
                "sqlite://{}",
                self.dir.as_ref().unwrap().path().join("other.db").display()
            ),
            Backend::Postgres => TestPg::shared().unwrap().fresh_database(),
        }
    }
}

/// Runs each listed case against both backends: `sqlite::<case>` and
/// `postgres::<case>`.
macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let ctx = super::Ctx::sqlite().await;
                    super::$case(&ctx).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some(ctx) = super::Ctx::postgres().await else { return };
                    super::$case(&ctx).await;
                }
            )*
        }
    };
}

suite!(
    migrations_apply_once,
    inform_upserts_device_events_and_params,
    bootstrap_forgets_state,
    method_events_close_tasks,
    task_lifecycle_with_retry,
    task_expiry,
    cancel_and_unknown_device,
    complete_transfer_is_idempotent,
    session_results_params_and_deletes,
    device_search,
    long_values_are_stored_and_found,
    group_commit_under_concurrency,
    failing_job_does_not_poison_batch,
    files_crud,
    credentials_and_delete,
    survives_lost_connections,
    leases_and_waiting_deadlines_are_reclaimed,
);

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn inform(serial: &str) -> InformRecord {
    InformRecord {
        device_id: format!("00D09E-Router-{serial}"),
        oui: "00D09E".into(),
        product_class: "Router".into(),
        serial_number: serial.into(),
        manufacturer: "Acme".into(),
        root_object: "Device.".into(),
        software_version: Some("1.0".into()),
        hardware_version: Some("hw1".into()),
        connection_request_url: Some(format!("http://10.0.0.1:7547/{serial}")),
        udp_connection_request_address: None,
        parameter_key: Some("".into()),
        cwmp_ns: "urn:dslforum-org:cwmp-1-4".into(),
        cwmp_version: "1.4".into(),
        remote_addr: Some("192.0.2.1:40000".into()),
        current_time: Some("2025-11-21T10:00:00+01:00".into()),
        retry_count: 0,
        received_at: now(),
        session_id: Some("s1".into()),
        events: vec![ev("2 PERIODIC", "")],
        params: vec![
            param("Device.DeviceInfo.SoftwareVersion", "1.0"),
            param("Device.DeviceInfo.HardwareVersion", "hw1"),
        ],
        bootstrap: false,
    }
}

fn ev(code: &str, key: &str) -> InformEvent {
    InformEvent {
        code: code.into(),
        command_key: key.into(),
    }
}

fn param(path: &str, value: &str) -> InformParam {
    InformParam {
        path: path.into(),
        value: value.into(),
        xsd_type: Some("xsd:string".into()),
    }
}

/// Creates a task and moves it to `waiting` as a session would.
async fn waiting_task(s: &Store, device: &str, kind: &str) -> TaskRow {
    let t = s
        .create_task(NewTask::new(device, kind, json!({})))
        .await
        .unwrap();
    let mut r = SessionResults::new(device, now());
    r.tasks.push(TaskUpdate {
        started_at: Some(now()),
        attempts_inc: true,
        session_id: Some("s0".into()),
        ..TaskUpdate::new(t.id, TaskStatus::Waiting)
    });
    let st = s.apply_session_results(r).await.unwrap();
    assert_eq!(st, vec![(t.id, TaskStatus::Waiting)]);
    s.get_task(t.id).await.unwrap().unwrap()
}

async fn status(s: &Store, id: i64) -> TaskStatus {
    s.get_task(id).await.unwrap().unwrap().status
}

// ---------------------------------------------------------------------------
// Cases

async fn migrations_apply_once(ctx: &Ctx) {
    assert_eq!(ctx.store.backend(), ctx.kind);
    // Already applied by open().
    assert!(Store::migrate(&ctx.url).await.unwrap().is_empty());

    let other = ctx.another_url();
    let applied = Store::migrate(&other).await.unwrap();
    assert_eq!(
        applied,
        [
            "2025-11-21-000000_init",
            "2025-11-22-000000_bulkdata",
            "2025-11-23-000000_bulk_reports",
            "2026-12-03-000000_leases_and_secrets",
            "2026-12-04-000000_access",
        ]
    );
    assert!(Store::migrate(&other).await.unwrap().is_empty());
    let s = Store::open(&other, StoreOptions::default()).await.unwrap();
    assert_eq!(s.count_devices().await.unwrap(), 0);
}

async fn inform_upserts_device_events_and_params(ctx: &Ctx) {
    let s = &ctx.store;
    let mut rec = inform("S1");
    rec.udp_connection_request_address = Some("192.0.2.1:5000".into());
    rec.events = vec![ev("1 BOOT", ""), ev("4 VALUE CHANGE", "")];
    let id = rec.device_id.clone();
    let first_at = rec.received_at;
    let out = s.record_inform(rec).await.unwrap();
    assert_eq!(
        out,
        InformOutcome {
            pending_tasks: 0,
            new_device: true,
            bootstrap_epoch: 0
        }
    );

    let d = s.get_device(&id).await.unwrap().expect("device stored");
    assert_eq!(d.oui, "00D09E");
    assert_eq!(d.serial_number, "S1");
    assert_eq!(d.manufacturer, "Acme");
    assert_eq!(d.root_object, "Device.");
    assert_eq!(d.software_version.as_deref(), Some("1.0"));
    assert_eq!(d.cwmp_version, "1.4");
    assert_eq!(
        d.last_current_time.as_deref(),
        Some("2025-11-21T10:00:00+01:00")
    );
    assert_eq!(
        d.udp_connection_request_address.as_deref(),
        Some("192.0.2.1:5000")
    );
    assert_eq!(d.first_seen_at, first_at);
    assert_eq!(d.last_inform_at, first_at);
    assert_eq!(d.tenant, None);

    // Second Inform: a new software version; UDP address not reported.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut rec = inform("S1");
    rec.software_version = Some("2.0".into());
    rec.retry_count = 3;
    rec.params = vec![
        param("Device.DeviceInfo.SoftwareVersion", "1.9"),
        // Duplicates in one ParameterList: last wins.
        param("Device.DeviceInfo.SoftwareVersion", "2.0"),
        param("Device.ManagementServer.ParameterKey", "pk1"),
    ];
    let second_at = rec.received_at;
    s.create_task(NewTask::new(
        &id,
        "GetParameterValues",
        json!({"names": ["Device."]}),
    ))
    .await
    .unwrap();
    let out = s.record_inform(rec).await.unwrap();
    assert!(!out.new_device);
    assert_eq!(out.pending_tasks, 1);

    let d = s.get_device(&id).await.unwrap().unwrap();
    assert_eq!(d.software_version.as_deref(), Some("2.0"));
    assert_eq!(
        d.udp_connection_request_address.as_deref(),
        Some("192.0.2.1:5000")
    );
    assert_eq!(d.last_retry_count, 3);
    assert_eq!(d.first_seen_at, first_at);
    assert_eq!(d.last_inform_at, second_at);

    let events = s.get_events(&id, 10).await.unwrap();
    let codes: Vec<&str> = events.iter().map(|e| e.event_code.as_str()).collect();
    assert_eq!(
        codes,
        ["2 PERIODIC", "4 VALUE CHANGE", "1 BOOT"],
        "newest first"
    );
    assert_eq!(events[0].session_id.as_deref(), Some("s1"));

    let params = s.get_parameters(&id, None).await.unwrap();
    let got: Vec<(&str, Option<&str>)> = params
        .iter()
        .map(|p| (p.path.as_str(), p.value.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("Device.DeviceInfo.HardwareVersion", Some("hw1")),
            ("Device.DeviceInfo.SoftwareVersion", Some("2.0")),
            ("Device.ManagementServer.ParameterKey", Some("pk1")),
        ]
    );
    assert_eq!(params[1].xsd_type.as_deref(), Some("xsd:string"));
    assert!(!params[1].is_object);
    assert_eq!(params[1].fetched_at, second_at);

    let info = s
        .get_parameters(&id, Some("Device.DeviceInfo."))
        .await
        .unwrap();
    assert_eq!(info.len(), 2);
    assert_eq!(s.count_devices().await.unwrap(), 1);
}

async fn bootstrap_forgets_state(ctx: &Ctx) {
    let s = &ctx.store;
    let mut rec = inform("B1");
    rec.params.push(param("Device.X_Custom.Old", "stale"));
    let id = rec.device_id.clone();
    s.record_inform(rec).await.unwrap();

    let lost = waiting_task(s, &id, "Download").await;
    let reset = waiting_task(s, &id, "FactoryReset").await;
    let announced = waiting_task(s, &id, "Download").await;
    let queued = s
        .create_task(NewTask::new(&id, "GetParameterValues", json!({})))
        .await
        .unwrap();

    let mut rec = inform("B1");
    rec.bootstrap = true;
    rec.events = vec![
        ev("0 BOOTSTRAP", ""),
        ev("1 BOOT", ""),
        ev("7 TRANSFER COMPLETE", ""),
        ev("M Download", announced.command_key.as_deref().unwrap()),
    ];
    rec.params = vec![param("Device.DeviceInfo.SoftwareVersion", "1.0")];
    let out = s.record_inform(rec).await.unwrap();
    assert_eq!(out.bootstrap_epoch, 1);
    assert_eq!(out.pending_tasks, 1);

    let params = s.get_parameters(&id, None).await.unwrap();
    let paths: Vec<&str> = params.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        ["Device.DeviceInfo.SoftwareVersion"],
        "old params forgotten"
    );
    assert_eq!(s.get_device(&id).await.unwrap().unwrap().bootstrap_epoch, 1);

    let lost = s.get_task(lost.id).await.unwrap().unwrap();
    assert_eq!(lost.status, TaskStatus::Fault);
    assert_eq!(lost.fault_string.as_deref(), Some("cancelled by BOOTSTRAP"));
    assert!(lost.completed_at.is_some());
    assert_eq!(status(s, reset.id).await, TaskStatus::Done);
    // Its TransferComplete follows in this very session.
    assert_eq!(status(s, announced.id).await, TaskStatus::Waiting);
    assert_eq!(status(s, queued.id).await, TaskStatus::Pending);

    let faults = s.list_faults(Some(&id)).await.unwrap();
    assert_eq!(faults.iter().map(|t| t.id).collect::<Vec<_>>(), [lost.id]);

    // A second bootstrap bumps the epoch again; a plain Inform does not.
    let mut rec = inform("B1");
    rec.bootstrap = true;
    assert_eq!(s.record_inform(rec).await.unwrap().bootstrap_epoch, 2);
    assert_eq!(
        s.record_inform(inform("B1")).await.unwrap().bootstrap_epoch,
        2
    );
}

async fn method_events_close_tasks(ctx: &Ctx) {
    let s = &ctx.store;
    let rec = inform("M1");
    let id = rec.device_id.clone();
    s.record_inform(rec).await.unwrap();

    let reboot = waiting_task(s, &id, "Reboot").await;
    let other_reboot = waiting_task(s, &id, "Reboot").await;
    let sched = waiting_task(s, &id, "ScheduleInform").await;
    let download = waiting_task(s, &id, "Download").await;

    let mut rec = inform("M1");
    rec.events = vec![
        ev("3 SCHEDULED", ""),
        ev("M ScheduleInform", sched.command_key.as_deref().unwrap()),
        ev("M Download", download.command_key.as_deref().unwrap()),
        // A key of another kind must not close anything.
        ev(
            "M ScheduleInform",
            other_reboot.command_key.as_deref().unwrap(),
        ),
    ];
    s.record_inform(rec).await.unwrap();
    assert_eq!(status(s, sched.id).await, TaskStatus::Done);
    assert_eq!(status(s, reboot.id).await, TaskStatus::Waiting);
    assert_eq!(status(s, other_reboot.id).await, TaskStatus::Waiting);

    let mut rec = inform("M1");
    rec.events = vec![
        ev("1 BOOT", ""),
        ev("M Reboot", reboot.command_key.as_deref().unwrap()),
    ];
    s.record_inform(rec).await.unwrap();
    assert_eq!(status(s, reboot.id).await, TaskStatus::Done);
    assert!(s
        .get_task(reboot.id)
        .await
        .unwrap()
        .unwrap()
        .completed_at
        .is_some());
    // A boot completes every Reboot the device acknowledged, whatever the M event's key.
    assert_eq!(status(s, other_reboot.id).await, TaskStatus::Done);
    // Transfers complete through TransferComplete only.
    assert_eq!(status(s, download.id).await, TaskStatus::Waiting);
}

async fn task_lifecycle_with_retry(ctx: &Ctx) {
    let s = &ctx.store;
    let rec = inform("T1");
    let id = rec.device_id.clone();
    s.record_inform(rec).await.unwrap();

    let t = s
        .create_task(NewTask {
            max_attempts: 2,
            ..NewTask::new(
                &id,
                "SetParameterValues",
                json!({"values": [["Device.X", "1", "xsd:string"]]}),
            )
        })
        .await
        .unwrap();
    assert_eq!(t.status, TaskStatus::Pending);
    assert_eq!(t.attempts, 0);
    assert_eq!(t.args["values"][0][1], "1");
    let key = t.command_key.clone().unwrap();
    assert!(
        key.starts_with(&format!("k{}", t.id)) && key.len() <= 32,
        "{key}"
    );
    let t2 = s
        .create_task(NewTask::new(&id, "Reboot", json!({})))
        .await
        .unwrap();
    assert_ne!(t2.command_key, t.command_key);

    let next = s.next_tasks(&id, now(), 10).await.unwrap();
    assert_eq!(next.iter().map(|t| t.id).collect::<Vec<_>>(), [t.id, t2.id]);
    assert_eq!(s.next_tasks(&id, now(), 1).await.unwrap().len(), 1);

    let fault = TaskFault {
        code: 9002,
        string: "Internal error".into(),
        detail: Some(json!({"SetParameterFaults": []})),
    };
    // Attempt 1 fails, retryable: back to pending.
    let mut r = SessionResults::new(&id, now());
    r.tasks.push(TaskUpdate {
        fault: Some(fault.clone()),
        started_at: Some(now()),
        attempts_inc: true,
        retryable: true,
        session_id: Some("sA".into()),
        ..TaskUpdate::new(t.id, TaskStatus::Fault)
    });
    r.tasks.push(TaskUpdate {
        attempts_inc: true,
        result: Some(json!({"ok": true})),
        ..TaskUpdate::new(t2.id, TaskStatus::Done)
    });
    assert_eq!(
        s.apply_session_results(r).await.unwrap(),
        [(t.id, TaskStatus::Pending), (t2.id, TaskStatus::Done)]
    );
    let row = s.get_task(t.id).await.unwrap().unwrap();
    assert_eq!((row.status, row.attempts), (TaskStatus::Pending, 1));
    assert_eq!(
        row.fault_code,
        Some(9002),
        "last fault kept for the operator"
    );
    assert!(row.completed_at.is_none());
    assert_eq!(row.session_id.as_deref(), Some("sA"));
    let done = s.get_task(t2.id).await.unwrap().unwrap();
    assert_eq!(done.result, Some(json!({"ok": true})));
    assert!(done.completed_at.is_some());

    // Attempt 2 fails too: attempts exhausted, the fault is final.
    let mut r = SessionResults::new(&id, now());
    r.tasks.push(TaskUpdate {
        fault: Some(fault.clone()),
        attempts_inc: true,
        retryable: true,
        ..TaskUpdate::new(t.id, TaskStatus::Fault)
    });
    assert_eq!(
        s.apply_session_results(r).await.unwrap(),
        [(t.id, TaskStatus::Fault)]
    );
    let row = s.get_task(t.id).await.unwrap().unwrap();
    assert_eq!((row.status, row.attempts), (TaskStatus::Fault, 2));
    assert_eq!(row.fault_string.as_deref(), Some("Internal error"));
    assert_eq!(row.fault_detail, Some(json!({"SetParameterFaults": []})));
    assert!(row.status.is_terminal());
    assert!(s.next_tasks(&id, now(), 10).await.unwrap().is_empty());

    let faults = s.list_faults(None).await.unwrap();
    assert!(faults.iter().any(|f| f.id == t.id));
    let (page, total) = s
        .list_tasks(TaskQuery {
            device_id: Some(id.clone()),
            ..TaskQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(total, 2);
    assert_eq!(page[0].id, t2.id, "newest first");
    let (page, total) = s
        .list_tasks(TaskQuery {
            status: Some(TaskStatus::Done),
            ..TaskQuery::default()
        })
        .await
        .unwrap();
    assert_eq!((page.len(), total), (1, 1));

    // A later success clears the fault.
    let mut r = SessionResults::new(&id, now());
    r.tasks.push(TaskUpdate::new(t.id, TaskStatus::Done));
    s.apply_session_results(r).await.unwrap();
    let row = s.get_task(t.id).await.unwrap().unwrap();
    assert_eq!(row.status, TaskStatus::Done);
    assert_eq!((row.fault_code, row.fault_string.as_deref()), (None, None));

    // Updates for a task of another device are ignored.
    let mut r = SessionResults::new("someone-else", now());
    r.tasks.push(TaskUpdate::new(t.id, TaskStatus::Fault));
    assert!(s.apply_session_results(r).await.unwrap().is_empty());
    assert_eq!(status(s, t.id).await, TaskStatus::Done);

    // JSON shape of a row for the API.
    let v = serde_json::to_value(&row).unwrap();
    assert_eq!(v["status"], "done");
    assert_eq!(v["kind"], "SetParameterValues");
}

async fn task_expiry(ctx: &Ctx) {
    let s = &ctx.store;
    let rec = inform("E1");
    let id = rec.device_id.clone();
    s.record_inform(rec).await.unwrap();

    let t0 = now();
    let stale = s
        .create_task(NewTask {
            expires_at: Some(t0 - chrono::Duration::seconds(1)),
            ..NewTask::new(&id, "Reboot", json!({}))
        })
        .await
        .unwrap();
    let soon = s
        .create_task(NewTask {
            expires_at: Some(t0 + chrono::Duration::hours(1)),
            ..NewTask::new(&id, "GetParameterValues", json!({}))
        })
        .await
        .unwrap();
    let forever = s
        .create_task(NewTask::new(&id, "GetParameterNames", json!({})))
        .await
        .unwrap();

    // The Inform's count already leaves expired tasks out.
    let mut rec = inform("E1");
    rec.received_at = t0;
    assert_eq!(s.record_inform(rec).await.unwrap().pending_tasks, 2);

    let next = s.next_tasks(&id, t0, 10).await.unwrap();
    assert_eq!(
        next.iter().map(|t| t.id).collect::<Vec<_>>(),
        [soon.id, forever.id]
    );
    let stale = s.get_task(stale.id).await.unwrap().unwrap();
    assert_eq!(stale.status, TaskStatus::Expired);
    assert!(stale.completed_at.is_some());

    // Two hours later the second one has expired as well.
    let later = t0 + chrono::Duration::hours(2);
    let next = s.next_tasks(&id, later, 10).await.unwrap();
    assert_eq!(next.iter().map(|t| t.id).collect::<Vec<_>>(), [forever.id]);
    assert_eq!(status(s, soon.id).await, TaskStatus::Expired);
    // Expired is final: cancelling does nothing.
    assert_eq!(
        s.cancel_task(soon.id).await.unwrap().unwrap().status,
        TaskStatus::Expired
    );
}

async fn cancel_and_unknown_device(ctx: &Ctx) {
    let s = &ctx.store;
    let err = s
        .create_task(NewTask::new("no-such-device", "Reboot", json!({})))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    let rec = inform("C1");
    let id = rec.device_id.clone();
    s.record_inform(rec).await.unwrap();
    let t = s
        .create_task(NewTask::new(&id, "Reboot", json!({})))
        .await
        .unwrap();
    let w = waiting_task(s, &id, "Download").await;
    assert_eq!(
        s.cancel_task(t.id).await.unwrap().unwrap().status,
        TaskStatus::Cancelled
    );
    assert_eq!(
        s.cancel_task(w.id).await.unwrap().unwrap().status,
        TaskStatus::Cancelled
    );
    assert!(s.cancel_task(999_999).await.unwrap().is_none());
    assert!(s.next_tasks(&id, now(), 10).await.unwrap().is_empty());

    // A cancelled task reported as a retryable fault is not requeued.
    let mut r = SessionResults::new(&id, now());
    r.tasks.push(TaskUpdate {
        attempts_inc: true,
        retryable: true,
        ..TaskUpdate::new(t.id, TaskStatus::Fault)
    });
    s.apply_session_results(r).await.unwrap();
    assert_ne!(status(s, t.id).await, TaskStatus::Pending);
    // A cancelled waiting task is no longer completed by TransferComplete.
    let key = w.command_key.unwrap();
    assert_eq!(
        s.complete_transfer(&id, &key, None, None, None)
            .await
            .unwrap(),
        Some(w.id)
    );
    assert_eq!(status(s, w.id).await, TaskStatus::Cancelled);
}

async fn complete_transfer_is_idempotent(ctx: &Ctx) {
    let s = &ctx.store;
    let rec = inform("X1");
    let id = rec.device_id.clone();
    s.record_inform(rec).await.unwrap();

    let ok = waiting_task(s, &id, "Download").await;
    let bad = waiting_task(s, &id, "Upload").await;
    let key = ok.command_key.clone().unwrap();
    let start = now() - chrono::Duration::seconds(30);
    let end = now();

    let first = s
        .complete_transfer(&id, &key, None, Some(start), Some(end))
        .await
        .unwrap();
    assert_eq!(first, Some(ok.id));
    let row = s.get_task(ok.id).await.unwrap().unwrap();
    assert_eq!(row.status, TaskStatus::Done);
    assert_eq!(
        row.result.as_ref().unwrap()["complete_time"],
        json!(end.to_rfc3339())
    );

    // The CPE retries its TransferComplete: same answer, nothing changes.
    let again = s
        .complete_transfer(&id, &key, None, Some(start), Some(end))
        .await
        .unwrap();
    assert_eq!(again, first);
    let row2 = s.get_task(ok.id).await.unwrap().unwrap();
    assert_eq!(row2.completed_at, row.completed_at);
    assert_eq!(row2.result, row.result);

    let fault = TaskFault {
        code: 9010,
        string: "Download failure".into(),
        detail: None,
    };
    let bad_key = bad.command_key.clone().unwrap();
    assert_eq!(
        s.complete_transfer(&id, &bad_key, Some(fault.clone()), None, None)
            .await
            .unwrap(),
        Some(bad.id)
    );
    let row = s.get_task(bad.id).await.unwrap().unwrap();
    assert_eq!(row.status, TaskStatus::Fault);
    assert_eq!(row.fault_code, Some(9010));
    assert_eq!(
        s.complete_transfer(&id, &bad_key, Some(fault), None, None)
            .await
            .unwrap(),
        Some(bad.id)
    );

    assert_eq!(
        s.complete_transfer(&id, "k0-unknown", None, None, None)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.complete_transfer("other-device", &key, None, None, None)
            .await
            .unwrap(),
        None
    );
}

async fn session_results_params_and_deletes(ctx: &Ctx) {
    let s = &ctx.store;
    let rec = inform("P1");
    let id = rec.device_id.clone();
    s.record_inform(rec).await.unwrap();

    let up = |path: &str, value: Option<&str>, writable: Option<bool>, obj: bool| ParamUpsert {
        path: path.into(),
        value: value.map(str::to_string),
        xsd_type: value.map(|_| "xsd:string".to_string()),
        writable,
        is_object: obj,
    };
    // GPV values...
    let mut r = SessionResults::new(&id, now());
    r.params = vec![
        up("Device.WiFi.SSID.1.SSID", Some("home"), None, false),
        up("Device.WiFi.SSID.2.SSID", Some("guest"), None, false),
        up("Device.WiFiX", Some("not a child"), None, false),
    ];
    s.apply_session_results(r).await.unwrap();
    // ...then GPN names: writability learned, values kept.
    let mut r = SessionResults::new(&id, now());
    r.params = vec![
        up("Device.WiFi.", None, Some(false), true),
        up("Device.WiFi.SSID.1.", None, Some(false), true),
        up("Device.WiFi.SSID.1.SSID", None, Some(true), false),
    ];
    s.apply_session_results(r).await.unwrap();
    let wifi = s.get_parameters(&id, Some("Device.WiFi.")).await.unwrap();
    let got: Vec<(&str, Option<&str>, Option<bool>, bool)> = wifi
        .iter()
        .map(|p| (p.path.as_str(), p.value.as_deref(), p.writable, p.is_object))
        .collect();
    assert_eq!(
        got,
        [
            ("Device.WiFi.", None, Some(false), true),
            ("Device.WiFi.SSID.1.", None, Some(false), true),
            ("Device.WiFi.SSID.1.SSID", Some("home"), Some(true), false),
            ("Device.WiFi.SSID.2.SSID", Some("guest"), None, false),
        ]
    );

    // DeleteObject of instance 1 forgets its subtree only.
    let mut r = SessionResults::new(&id, now());
    r.deletes = vec![
        "Device.WiFi.SSID.1.".into(),
        "Device.DeviceInfo.HardwareVersion".into(),
    ];
    s.apply_session_results(r).await.unwrap();
    let all: Vec<String> = s
        .get_parameters(&id, None)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.path)
        .collect();
    assert_eq!(
        all,
        [
            "Device.DeviceInfo.SoftwareVersion",
            "Device.WiFi.",
            "Device.WiFi.SSID.2.SSID",
            "Device.WiFiX",
        ]
    );
    // A prefix is literal: '_' and '%' are not wildcards.
    assert!(s
        .get_parameters(&id, Some("Device.WiFi_"))
        .await
        .unwrap()
        .is_empty());
}

async fn device_search(ctx: &Ctx) {
    let s = &ctx.store;
    for (serial, pc, ssid) in [
        ("AA01", "Router", "home-net"),
        ("AA02", "Router", "office"),
        ("BB03", "Gateway", "home-5G"),
    ] {
        let mut rec = inform(serial);
        rec.product_class = pc.into();
        rec.device_id = format!("00D09E-{pc}-{serial}");
        rec.params.push(param("Device.WiFi.SSID.1.SSID", ssid));
        s.record_inform(rec).await.unwrap();
    }
    let ids = |v: &[DeviceRow]| {
        v.iter()
            .map(|d| d.serial_number.clone())
            .collect::<Vec<_>>()
    };

    let (all, total) = s.list_devices(DeviceQuery::default()).await.unwrap();
    assert_eq!((total, all.len()), (3, 3));
    assert_eq!(ids(&all), ["BB03", "AA01", "AA02"], "ordered by id");

    let q = |text: Option<&str>, path: Option<&str>, value: Option<&str>| DeviceQuery {
        text: text.map(str::to_string),
        param_path: path.map(str::to_string),
        param_value: value.map(str::to_string),
        ..DeviceQuery::default()
    };
    let (r, n) = s.list_devices(q(Some("aa0"), None, None)).await.unwrap();
    assert_eq!(
        (ids(&r), n),
        (vec!["AA01".to_string(), "AA02".to_string()], 2)
    );
    let (r, _) = s
        .list_devices(q(Some("GATEWAY"), None, None))
        .await
        .unwrap();
    assert_eq!(ids(&r), ["BB03"]);
    let (r, _) = s.list_devices(q(Some("a%"), None, None)).await.unwrap();
    assert!(r.is_empty(), "% in free text is literal");

    let ssid = Some("Device.WiFi.SSID.1.SSID");
    let (r, n) = s.list_devices(q(None, ssid, Some("office"))).await.unwrap();
    assert_eq!((ids(&r), n), (vec!["AA02".to_string()], 1));
    let (r, n) = s.list_devices(q(None, ssid, Some("home%"))).await.unwrap();
    assert_eq!(
        (ids(&r), n),
        (vec!["BB03".to_string(), "AA01".to_string()], 2)
    );
    let (r, _) = s.list_devices(q(None, ssid, Some("HOME%"))).await.unwrap();
    assert_eq!(r.len(), 2, "LIKE patterns ignore ASCII case");
    let (r, _) = s
        .list_devices(q(None, ssid, Some("HOME-NET")))
        .await
        .unwrap();
    assert!(r.is_empty(), "exact values are exact");
    let (r, _) = s.list_devices(q(None, ssid, None)).await.unwrap();
    assert_eq!(r.len(), 3);
    let (r, _) = s
        .list_devices(q(None, Some("Device.Nope"), None))
        .await
        .unwrap();
    assert!(r.is_empty());
    let (r, _) = s
        .list_devices(q(Some("router"), ssid, Some("%e%")))
        .await
        .unwrap();
    assert_eq!(ids(&r), ["AA01", "AA02"]);

    let (page, total) = s
        .list_devices(DeviceQuery {
            limit: 2,
            offset: 2,
            ..DeviceQuery::default()
        })
        .await
        .unwrap();
    assert_eq!((ids(&page), total), (vec!["AA02".to_string()], 3));
}

async fn long_values_are_stored_and_found(ctx: &Ctx) {
    let s = &ctx.store;
    // Longer than PostgreSQL's btree entry limit (~2.7 kB) if fully indexed.
    let cert: String = "MIIB".repeat(2500);
    let mut other = cert.clone();
    other.push('x');
    for (serial, v) in [("L1", &cert), ("L2", &other)] {
        let mut rec = inform(serial);
        rec.params
            .push(param("Device.Security.Certificate.1.Certificate", v));
        s.record_inform(rec).await.unwrap();
    }
    let (r, n) = s
        .list_devices(DeviceQuery {
            param_path: Some("Device.Security.Certificate.1.Certificate".into()),
            param_value: Some(cert.clone()),
            ..DeviceQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(r[0].serial_number, "L1");
    let p = s
        .get_parameters(&r[0].id, Some("Device.Security."))
        .await
        .unwrap();
    assert_eq!(p[0].value.as_deref(), Some(cert.as_str()));
}

async fn group_commit_under_concurrency(ctx: &Ctx) {
    let s = &ctx.store;
    let mut handles = Vec::new();
    for i in 0..200 {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            let mut rec = inform(&format!("G{i:03}"));
            rec.events = vec![ev("2 PERIODIC", ""), ev("6 CONNECTION REQUEST", "")];
            rec.params.push(param("Device.Index", &i.to_string()));
            s.record_inform(rec).await
        }));
    }
    // The same device from many sessions at once, too.
    for _ in 0..50 {
        let s = s.clone();
        handles.push(tokio::spawn(
            async move { s.record_inform(inform("HOT")).await },
        ));
    }
    for h in handles {
        h.await.unwrap().unwrap();
    }
    // Everything acknowledged is visible to readers.
    assert_eq!(s.count_devices().await.unwrap(), 201);
    for i in [0, 57, 199] {
        let id = format!("00D09E-Router-G{i:03}");
        assert_eq!(s.get_events(&id, 10).await.unwrap().len(), 2);
        let p = s.get_parameters(&id, Some("Device.Index")).await.unwrap();
        assert_eq!(p[0].value.as_deref(), Some(i.to_string().as_str()));
    }
    assert_eq!(
        s.get_events("00D09E-Router-HOT", 1000).await.unwrap().len(),
        50
    );
    let (all, total) = s
        .list_devices(DeviceQuery {
            limit: 1000,
            ..DeviceQuery::default()
        })
        .await
        .unwrap();
    assert_eq!((all.len(), total), (201, 201));

    // A reopened store (fresh connections) sees the same data.
    if ctx.kind == Backend::Sqlite {
        let again = Store::open(&ctx.url, StoreOptions::default())
            .await
            .unwrap();
        assert_eq!(again.count_devices().await.unwrap(), 201);
    }
}

async fn failing_job_does_not_poison_batch(ctx: &Ctx) {
    let s = &ctx.store;
    let file = |id: &str| NewFile {
        id: Some(id.into()),
        name: "fw.bin".into(),
        file_type: "1 Firmware Upgrade Image".into(),
        size: 1,
        sha256: "00".into(),
        stored_path: "/tmp/x".into(),
        ..NewFile::default()
    };
    s.insert_file(file("dup")).await.unwrap();
    // Interleave failing jobs (duplicate key, unknown device) with good ones
    // so that they share batches.
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for i in 0..100 {
        let s1 = s.clone();
        good.push(tokio::spawn(async move {
            s1.record_inform(inform(&format!("F{i}"))).await
        }));
        let s2 = s.clone();
        bad.push(tokio::spawn(async move {
            s2.insert_file(file("dup")).await.map(drop)
        }));
        let s3 = s.clone();
        bad.push(tokio::spawn(async move {
            s3.create_task(NewTask::new("ghost", "Reboot", json!({})))
                .await
                .map(drop)
        }));
    }
    for h in good {
        h.await.unwrap().unwrap();
    }
    for h in bad {
        let e = match h.await.unwrap() {
            Ok(_) => panic!("a failing job succeeded"),
            Err(e) => e,
        };
        assert!(
            e.is_unique_violation() || matches!(e, StoreError::NotFound(_)),
            "{e:?}"
        );
    }
    assert_eq!(s.count_devices().await.unwrap(), 100);
    assert_eq!(s.list_files(None, &[]).await.unwrap().len(), 1);
}

async fn files_crud(ctx: &Ctx) {
    let s = &ctx.store;
    let fw = s
        .insert_file(NewFile {
            name: "fw-2.0.bin".into(),
            file_type: "1 Firmware Upgrade Image".into(),
            oui: "00D09E".into(),
            product_class: "Router".into(),
            version: "2.0".into(),
            size: 1234,
            sha256: "ab".repeat(32),
            content_type: "".into(),
            stored_path: "/var/lib/keelson/files/fw".into(),
            ..NewFile::default()
        })
        .await
        .unwrap();
    assert_eq!(fw.id.len(), 36, "uuid assigned");
    assert_eq!(fw.content_type, "application/octet-stream");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let log = s
        .insert_file(NewFile {
            id: Some("log-1".into()),
            name: "syslog.txt".into(),
            file_type: "2 Vendor Log File".into(),
            size: 10,
            sha256: "cd".repeat(32),
            content_type: "text/plain".into(),
            stored_path: "/var/lib/keelson/files/log-1".into(),
            device_id: Some("00D09E-Router-S1".into()),
            task_id: Some(7),
            ..NewFile::default()
        })
        .await
        .unwrap();
    assert_eq!(log.id, "log-1");

    let all = s.list_files(None, &[]).await.unwrap();
    assert_eq!(
        all.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
        ["log-1", fw.id.as_str()],
        "newest first"
    );
    let mine = s.list_files(Some("00D09E-Router-S1"), &[]).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].task_id, Some(7));
    let got = s.get_file(&fw.id).await.unwrap().unwrap();
    assert_eq!((got.size, got.version.as_str()), (1234, "2.0"));
    assert_eq!(got.created_at, fw.created_at);

    let gone = s.delete_file(&fw.id).await.unwrap().unwrap();
    assert_eq!(gone.stored_path, "/var/lib/keelson/files/fw");
    assert!(s.delete_file(&fw.id).await.unwrap().is_none());
    assert!(s.get_file(&fw.id).await.unwrap().is_none());
    assert_eq!(s.list_files(None, &[]).await.unwrap().len(), 1);
}

async fn credentials_and_delete(ctx: &Ctx) {
    let s = &ctx.store;
    assert!(s.device_auth("nobody").await.unwrap().is_none());
    let rec = inform("D1");
    let id = rec.device_id.clone();
    s.record_inform(rec).await.unwrap();
    assert_eq!(
        s.device_auth(&id).await.unwrap(),
        Some(DeviceAuth::default())
    );

    let sealed = CpeSecret {
        md5: "ha1-md5-value".into(),
        sha256: "ha1-sha-value".into(),
        realm: "R".into(),
    };
    assert!(s
        .set_device_credentials(
            &id,
            Some("cpe".into()),
            Some(sealed.clone()),
            Some("acs".into()),
            Some("cr-secret".into()),
        )
        .await
        .unwrap());
    assert!(!s
        .set_device_credentials("nobody", None, None, None, None)
        .await
        .unwrap());
    let auth = s.device_auth(&id).await.unwrap().unwrap();
    assert_eq!(auth.cpe_username.as_deref(), Some("cpe"));
    assert_eq!(auth.cpe_password, None);
    assert_eq!(auth.cpe_secret, Some(sealed.clone()));
    assert!(s.cleartext_cpe_passwords().await.unwrap().is_empty());
    assert_eq!(s.count_foreign_realm_secrets("R").await.unwrap(), 0);
    assert_eq!(s.count_foreign_realm_secrets("Other").await.unwrap(), 1);
    let d = s.get_device(&id).await.unwrap().unwrap();
    assert_eq!(d.cr_password.as_deref(), Some("cr-secret"));
    let json = serde_json::to_string(&d).unwrap();
    assert!(
        !json.contains("secret"),
        "passwords never serialized: {json}"
    );
    assert!(json.contains("\"cr_username\":\"acs\""));
    let debug = format!("{d:?} {auth:?}");
    for secret in ["cr-secret", "ha1-md5-value", "ha1-sha-value"] {
        assert!(!debug.contains(secret), "secrets never logged: {debug}");
    }
    assert!(debug.contains("<redacted>"));

    let at = now();
    assert!(s.record_connection_request(&id, at, "ok").await.unwrap());
    let d = s.get_device(&id).await.unwrap().unwrap();
    assert_eq!(
        (d.last_cr_at, d.last_cr_result.as_deref()),
        (Some(at), Some("ok"))
    );

    let t = s
        .create_task(NewTask::new(&id, "Reboot", json!({})))
        .await
        .unwrap();
    assert!(s.delete_device(&id).await.unwrap());
    assert!(!s.delete_device(&id).await.unwrap());
    assert!(s.get_device(&id).await.unwrap().is_none());
    assert!(s.get_parameters(&id, None).await.unwrap().is_empty());
    assert!(s.get_events(&id, 10).await.unwrap().is_empty());
    assert!(s.get_task(t.id).await.unwrap().is_none());

    // It comes back as a new device on its next Inform.
    assert!(s.record_inform(inform("D1")).await.unwrap().new_device);
    let ids: HashSet<String> = s
        .list_devices(DeviceQuery::default())
        .await
        .unwrap()
        .0
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert!(ids.contains(&id));
}

#[test]
fn store_is_send_sync_clone() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<Store>();
}

#[test]
fn bad_urls_are_rejected() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for url in [":memory:", "", "sqlite://"] {
        let err = rt
            .block_on(Store::open(url, StoreOptions::default()))
            .unwrap_err();
        assert!(matches!(err, StoreError::Config(_)), "{url}: {err:?}");
    }
}

/// PostgreSQL: every connection of the store is killed (server restart,
/// failover); the store reconnects by itself.
async fn survives_lost_connections(ctx: &Ctx) {
    use diesel::{Connection, PgConnection, RunQueryDsl};

    let s = &ctx.store;
    s.record_inform(inform("R1")).await.unwrap();
    if ctx.kind != Backend::Postgres {
        return;
    }
    let mut admin = PgConnection::establish(&ctx.url).unwrap();
    diesel::sql_query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(&mut admin)
    .unwrap();
    // The write that meets the dead connection may fail (nothing of it is
    // committed); the next one must succeed on a new connection.
    let first = s.record_inform(inform("R2")).await;
    s.record_inform(inform("R3")).await.unwrap();
    assert!(s.get_device("00D09E-Router-R3").await.unwrap().is_some());
    assert_eq!(
        s.get_device("00D09E-Router-R2").await.unwrap().is_some(),
        first.is_ok()
    );
    assert!(s.get_device("00D09E-Router-R1").await.unwrap().is_some());
}

/// A running task holds a lease (node, deadline): an expired lease, or any lease of a node
/// that restarted, returns the task to `pending` while attempts remain (else `fault`); a
/// `waiting` task past its deadline faults. Nothing acknowledged stays stranded.
async fn leases_and_waiting_deadlines_are_reclaimed(ctx: &Ctx) {
    let s = &ctx.store;
    let rec = inform("L1");
    let id = rec.device_id.clone();
    s.record_inform(rec).await.unwrap();
    let task = |max: i32, kind: &str| {
        let id = id.clone();
        let kind = kind.to_string();
        async move {
            s.create_task(NewTask {
                max_attempts: max,
                ..NewTask::new(&id, kind, json!({}))
            })
            .await
            .unwrap()
            .id
        }
    };
    let live = task(2, "GetRPCMethods").await;
    let lost = task(1, "GetRPCMethods").await;
    let waiting = task(1, "Reboot").await;
    let t0 = now();
    let mut r = SessionResults::new(&id, t0);
    for (task, until) in [
        (live, t0 + chrono::Duration::seconds(600)),
        (lost, t0 - chrono::Duration::seconds(1)),
    ] {
        r.tasks.push(TaskUpdate {
            attempts_inc: true,
            started_at: Some(t0),
            lease: Some(TaskLease {
                node: "node-a".into(),
                until,
            }),
            ..TaskUpdate::new(task, TaskStatus::Running)
        });
    }
    r.tasks.push(TaskUpdate {
        waiting_until: Some(t0 - chrono::Duration::seconds(1)),
        ..TaskUpdate::new(waiting, TaskStatus::Waiting)
    });
    s.apply_session_results(r).await.unwrap();
    let fault = |code: i32, what: &str| TaskFault {
        code,
        string: what.into(),
        detail: None,
    };
    let reclaim = |restarted: Option<&str>| Reclaim {
        now: t0,
        restarted_node: restarted.map(str::to_string),
        lease_fault: fault(8804, "lease expired"),
        waiting_fault: fault(8805, "completion timeout"),
    };
    // While node-a runs: only the expired lease and the overdue wait are reclaimed.
    let out = s.reclaim_tasks(reclaim(None)).await.unwrap();
    assert_eq!(out.requeued, Vec::<i64>::new());
    assert_eq!(out.faulted, vec![lost], "its only attempt was used");
    assert_eq!(out.timed_out, vec![waiting]);
    let t = s.get_task(lost).await.unwrap().unwrap();
    assert_eq!((t.status, t.fault_code), (TaskStatus::Fault, Some(8804)));
    let t = s.get_task(waiting).await.unwrap().unwrap();
    assert_eq!((t.status, t.fault_code), (TaskStatus::Fault, Some(8805)));
    assert_eq!(
        s.get_task(live).await.unwrap().unwrap().status,
        TaskStatus::Running
    );
    // Another node starting leaves node-a's live lease alone.
    let out = s.reclaim_tasks(reclaim(Some("node-b"))).await.unwrap();
    assert!(out.requeued.is_empty() && out.faulted.is_empty(), "{out:?}");
    // node-a restarted: its sessions died with it, so its lease is void at once.
    let out = s.reclaim_tasks(reclaim(Some("node-a"))).await.unwrap();
    assert_eq!(out.requeued, vec![live]);
    let t = s.get_task(live).await.unwrap().unwrap();
    assert_eq!(t.status, TaskStatus::Pending);
    assert_eq!(t.attempts, 1, "the lost attempt counts");
    assert_eq!(
        s.next_tasks(&id, now(), 10).await.unwrap().len(),
        1,
        "runnable again"
    );
    // Idempotent.
    assert_eq!(
        s.reclaim_tasks(reclaim(Some("node-a"))).await.unwrap(),
        ReclaimOutcome::default()
    );
}
