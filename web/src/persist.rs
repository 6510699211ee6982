//! Maps the session machine's `Persist` effects onto store writes.

use acs::session::{InformInfo, ParamChange, Persist, TaskOutcome};
use chrono::Utc;
use store::TaskStatus;

use crate::app::AppState;

fn param(p: ParamChange) -> store::ParamUpsert {
    store::ParamUpsert {
        path: p.path,
        value: p.value,
        xsd_type: p.xsd_type,
        writable: p.writable,
        is_object: p.is_object,
    }
}

fn inform_record(info: InformInfo, session_id: &str, remote: &str) -> store::InformRecord {
    store::InformRecord {
        device_id: info.device_id,
        oui: info.device.oui.to_ascii_uppercase(),
        product_class: info.device.product_class,
        serial_number: info.device.serial_number,
        manufacturer: info.device.manufacturer,
        root_object: info.root_object,
        software_version: info.software_version,
        hardware_version: info.hardware_version,
        connection_request_url: info.connection_request_url,
        udp_connection_request_address: info.udp_connection_request_address,
        parameter_key: info.parameter_key,
        cwmp_ns: info.ns,
        cwmp_version: info.cwmp_version,
        remote_addr: (!remote.is_empty()).then(|| remote.to_string()),
        current_time: Some(info.current_time),
        retry_count: i32::try_from(info.retry_count).unwrap_or(i32::MAX),
        session_id: Some(session_id.to_string()),
        events: info
            .events
            .into_iter()
            .map(|e| store::InformEvent {
                code: e.event_code,
                command_key: e.command_key,
            })
            .collect(),
        bootstrap: info.bootstrap,
        params: info
            .parameters
            .into_iter()
            .map(|p| store::InformParam {
                path: p.path,
                value: p.value.unwrap_or_default(),
                xsd_type: p.xsd_type,
            })
            .collect(),
        received_at: Utc::now(),
    }
}

/// Persists the Inform (and anything else the first step carries); returns the number of
/// runnable tasks the device has.
pub async fn persist_inform(
    state: &AppState,
    session_id: &str,
    remote: &str,
    persist: Vec<Persist>,
) -> Result<i64, store::StoreError> {
    let mut pending = 0;
    let mut rest = Vec::new();
    let mut device = String::new();
    for p in persist {
        match p {
            Persist::Inform(info) => {
                device = info.device_id.clone();
                let facts = state.events.wanted().then(|| inform_facts(&info, remote));
                let out = state
                    .store
                    .record_inform(inform_record(*info, session_id, remote))
                    .await?;
                pending = out.pending_tasks;
                if let Some(facts) = facts {
                    emit_inform(state, &device, out.new_device, facts);
                }
            }
            other => rest.push(other),
        }
    }
    self::persist(state, session_id, &device, rest).await?;
    Ok(pending)
}

/// What the Inform events say, taken before the Inform is moved into the store.
struct InformFacts {
    codes: Vec<String>,
    data: serde_json::Value,
    changed: Vec<serde_json::Value>,
}

fn inform_facts(info: &InformInfo, remote: &str) -> InformFacts {
    let codes: Vec<String> = info.events.iter().map(|e| e.event_code.clone()).collect();
    let changed = if codes.iter().any(|c| c == "4 VALUE CHANGE") {
        info.parameters
            .iter()
            .map(|p| serde_json::json!({ "name": p.path, "value": p.value }))
            .collect()
    } else {
        Vec::new()
    };
    InformFacts {
        data: serde_json::json!({
            "events": codes,
            "remote_addr": remote,
            "software_version": info.software_version,
            "product_class": info.device.product_class,
        }),
        codes,
        changed,
    }
}

fn emit_inform(state: &AppState, device: &str, new_device: bool, f: InformFacts) {
    let bus = &state.events;
    let d = Some(device);
    if new_device {
        bus.emit(&state.store, "device.registered", d, f.data.clone());
    }
    bus.emit(&state.store, "inform", d, f.data.clone());
    if f.codes.iter().any(|c| c == "0 BOOTSTRAP") {
        bus.emit(&state.store, "device.bootstrap", d, f.data.clone());
    }
    if f.codes.iter().any(|c| c == "1 BOOT") {
        bus.emit(&state.store, "device.boot", d, f.data.clone());
    }
    if !f.changed.is_empty() {
        bus.emit(
            &state.store,
            "value.change",
            d,
            serde_json::json!({ "parameters": f.changed }),
        );
    }
}

/// `task.completed` / `task.faulted` for tasks that reached `done` or `fault`.
async fn emit_tasks(state: &AppState, device: &str, ids: Vec<i64>) {
    for id in ids {
        let Ok(Some(t)) = state.store.get_task(id).await else {
            continue;
        };
        let kind = match t.status {
            store::TaskStatus::Done => "task.completed",
            store::TaskStatus::Fault => "task.faulted",
            _ => continue,
        };
        state.events.emit(
            &state.store,
            kind,
            Some(device),
            serde_json::json!({
                "task": t.id,
                "kind": t.kind,
                "status": t.status.as_str(),
                "fault_code": t.fault_code,
                "fault_string": t.fault_string,
            }),
        );
    }
}

fn task_update(state: &AppState, o: TaskOutcome, session_id: &str) -> store::TaskUpdate {
    let now = Utc::now();
    let base = |id: i64, status: TaskStatus| store::TaskUpdate {
        session_id: Some(session_id.to_string()),
        ..store::TaskUpdate::new(id, status)
    };
    let after = |secs: u64| {
        chrono::TimeDelta::try_seconds(i64::try_from(secs).unwrap_or(i64::MAX))
            .and_then(|d| now.checked_add_signed(d))
    };
    match o {
        TaskOutcome::Started { id, sent_key } => store::TaskUpdate {
            started_at: Some(now),
            attempts_inc: true,
            // Longer than any session may stay idle: while the session lives, its sweeper
            // settles the task; the lease only matters once the node is gone.
            lease: after(state.cfg.task_lease_secs()).map(|until| store::TaskLease {
                node: state.cfg.node_id.clone(),
                until,
            }),
            sent_key,
            ..base(id, TaskStatus::Running)
        },
        TaskOutcome::Done { id, result } => store::TaskUpdate {
            result: Some(result),
            completed_at: Some(now),
            ..base(id, TaskStatus::Done)
        },
        TaskOutcome::Waiting {
            id,
            result,
            declared_delay,
        } => store::TaskUpdate {
            result: Some(result),
            waiting_until: after(
                declared_delay.saturating_add(state.cfg.cwmp.completion_timeout_secs),
            ),
            ..base(id, TaskStatus::Waiting)
        },
        TaskOutcome::Fault {
            id,
            code,
            message,
            detail,
            retryable,
        } => store::TaskUpdate {
            fault: Some(store::TaskFault {
                code: i32::try_from(code).unwrap_or(i32::MAX),
                string: message,
                detail: Some(detail),
            }),
            completed_at: Some(now),
            retryable,
            ..base(id, TaskStatus::Fault)
        },
    }
}

/// Persists a session step's effects for one device.
pub async fn persist(
    state: &AppState,
    session_id: &str,
    device_id: &str,
    persist: Vec<Persist>,
) -> Result<(), store::StoreError> {
    for p in persist {
        match p {
            Persist::Inform(info) => {
                state
                    .store
                    .record_inform(inform_record(*info, session_id, ""))
                    .await?;
            }
            Persist::Results {
                tasks,
                params,
                deletes,
            } => {
                let settled: Vec<i64> = if state.events.wanted() {
                    tasks
                        .iter()
                        .filter_map(|t| match t {
                            TaskOutcome::Done { id, .. } | TaskOutcome::Fault { id, .. } => {
                                Some(*id)
                            }
                            _ => None,
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                state
                    .store
                    .apply_session_results(store::SessionResults {
                        device_id: device_id.to_string(),
                        at: Utc::now(),
                        tasks: tasks
                            .into_iter()
                            .map(|t| task_update(state, t, session_id))
                            .collect(),
                        params: params.into_iter().map(param).collect(),
                        deletes,
                    })
                    .await?;
                emit_tasks(state, device_id, settled).await;
            }
            Persist::TransferComplete {
                command_key,
                fault,
                start_time,
                complete_time,
            } => {
                let fault = fault.map(|f| store::TaskFault {
                    code: i32::try_from(f.fault_code).unwrap_or(i32::MAX),
                    string: f.fault_string,
                    detail: None,
                });
                let id = state
                    .store
                    .complete_transfer(
                        device_id,
                        &command_key,
                        fault,
                        acs::codec::parse_datetime_lenient(&start_time),
                        acs::codec::parse_datetime_lenient(&complete_time),
                    )
                    .await?;
                match id {
                    None => {
                        tracing::info!(device = %device_id, command_key = %command_key, "TransferComplete for no known task (orphan)")
                    }
                    Some(id) if state.events.wanted() => {
                        emit_tasks(state, device_id, vec![id]).await
                    }
                    Some(_) => {}
                }
            }
            Persist::DuStateChangeComplete {
                command_key,
                result,
                fault,
            } => {
                let fault = fault.map(|f| store::TaskFault {
                    code: i32::try_from(f.fault_code).unwrap_or(i32::MAX),
                    string: f.fault_string,
                    detail: Some(result.clone()),
                });
                tracing::info!(device = %device_id, command_key = %command_key, result = %result, "DUStateChangeComplete");
                let id = state
                    .store
                    .complete_transfer(device_id, &command_key, fault, None, None)
                    .await?;
                if id.is_none() {
                    tracing::info!(device = %device_id, command_key = %command_key, "DUStateChangeComplete for no known task");
                }
            }
            Persist::TransferCancelled { command_key } => {
                match state.store.cancel_transfer(device_id, &command_key).await? {
                    Some(task) => {
                        tracing::info!(device = %device_id, task, command_key = %command_key, "transfer cancelled by CancelTransfer")
                    }
                    None => {
                        tracing::info!(device = %device_id, command_key = %command_key, "CancelTransfer confirmed for no open transfer")
                    }
                }
            }
            Persist::Report { kind, body } => {
                // The event history already holds the Inform's event code; the details go
                // to the log until the store grows a report table.
                tracing::info!(device = %device_id, session = %session_id, kind = %kind, body = %body, "CPE report");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used
)]
mod tests {
    #[test]
    fn the_store_records_keelsons_bootstrap_code() {
        assert_eq!(
            store::FAULT_BOOTSTRAP_CODE,
            acs::faults::CANCELLED_BY_BOOTSTRAP as i32
        );
    }
}
