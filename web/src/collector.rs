//! The IPDR collector inside `keelson serve`: the `ipdr` crate's TCP transport with a
//! `RecordSink` over the ACS database. A DATA_ACK follows the commit of the records it covers.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use ipdr::collector::{Event, Record};
use ipdr::transport::{RecordSink, SinkError, SinkFuture};
use ipdr::xdr::Value;
use serde_json::{json, Value as Json};

pub(crate) fn to_json(v: &Value) -> Json {
    match v {
        Value::Int(x) => json!(x),
        Value::UnsignedInt(x) => json!(x),
        Value::Long(x) => json!(x),
        Value::UnsignedLong(x) => json!(x.to_string()),
        Value::Float(x) => json!(x),
        Value::Double(x) => json!(x),
        Value::HexBinary(b) => json!(b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
        Value::String(s) => json!(s),
        Value::Boolean(b) => json!(b),
        Value::Byte(x) => json!(x),
        Value::UnsignedByte(x) => json!(x),
        Value::Short(x) => json!(x),
        Value::UnsignedShort(x) => json!(x),
        Value::DateTime(s) => json!(Utc
            .timestamp_opt(i64::from(*s), 0)
            .single()
            .map(|t| t.to_rfc3339())),
        Value::DateTimeMsec(ms) => json!(Utc
            .timestamp_millis_opt(*ms as i64)
            .single()
            .map(|t| t.to_rfc3339())),
        Value::DateTimeUsec(us) => {
            json!(Utc.timestamp_micros(*us).single().map(|t| t.to_rfc3339()))
        }
        Value::Ipv4Addr(a) => json!(a.to_string()),
        Value::Ipv6Addr(a) => json!(a.to_string()),
        Value::IpAddr(a) => json!(a.to_string()),
        Value::Uuid(u) => json!(u.iter().map(|x| format!("{x:02x}")).collect::<String>()),
        Value::MacAddress(m) => json!(format!("{m}")),
        Value::Absent => Json::Null,
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        #[allow(unreachable_patterns)]
        other => json!(format!("{other:?}")),
    }
}

fn record_in(r: &Record, document_id: String, now: chrono::DateTime<Utc>) -> store::IpdrRecordIn {
    let mut out = store::IpdrRecordIn {
        session_id: i32::from(r.session_id),
        document_id,
        sequence: r.sequence_num as i64,
        template_id: i32::from(r.template.id()),
        received_at: now,
        fields: Json::Null,
        device_id: None,
        report: None,
    };
    match ipdr::tr232::BulkDataReport::from_fields(&r.fields) {
        // A TR-232 BulkDataReport: stored as a report of the device.
        Some(rep) if !rep.serial_number.is_empty() => {
            let (device, report) = report_in(rep, now);
            out.device_id = Some(device);
            out.report = Some(report);
        }
        // Any other template (e.g. DOCSIS SAMIS): kept with its field names and types.
        _ => {
            out.fields = Json::Object(
                r.fields
                    .iter()
                    .map(|(k, v)| (k.to_string(), to_json(v)))
                    .collect(),
            );
        }
    }
    out
}

/// A TR-232 BulkDataReport as a stored report: (canonical device id, report). Its time is
/// the record's creation time, or `now` when it has none.
pub(crate) fn report_in(
    rep: ipdr::tr232::BulkDataReport,
    now: chrono::DateTime<Utc>,
) -> (String, store::ReportIn) {
    let at = if rep.creation_time_ms > 0 {
        Utc.timestamp_millis_opt(rep.creation_time_ms as i64)
            .single()
            .unwrap_or(now)
    } else {
        now
    };
    (
        ids::canonical_device_id(
            &rep.oui.to_ascii_uppercase(),
            &rep.product_class,
            &rep.serial_number,
        ),
        store::ReportIn {
            sampled_at: at,
            suspect: rep.suspect,
            pairs: rep.bulk_data,
        },
    )
}

/// Session and exporter state changes, applied in order by one task.
enum StateChange {
    Exporter {
        id: String,
        direction: &'static str,
        state: &'static str,
        connected: bool,
        error: Option<String>,
    },
    Start {
        exporter: String,
        session: store::IpdrSessionIn,
    },
    Stop {
        exporter: String,
        session_id: u8,
        document_id: String,
    },
}

/// Writes IPDR records (TR-232 BulkDataReport records as reports of their device, others
/// with their fields) in one transaction per batch, and keeps exporter and session rows.
pub struct StoreSink {
    store: store::Store,
    /// Exporters we dial (the others connected in).
    outbound: Vec<String>,
    changes: tokio::sync::mpsc::UnboundedSender<StateChange>,
    /// Per (exporter, session): the config and templates in force (from TEMPLATE_DATA).
    templates: std::sync::Mutex<HashMap<(String, u8), (u16, Json)>>,
}

fn templates_json(templates: &[Arc<ipdr::Template>]) -> Json {
    Json::Array(
        templates
            .iter()
            .map(|t| {
                let b = t.block();
                json!({
                    "id": b.template_id,
                    "schema": b.schema_name,
                    "type": b.type_name,
                    "fields": t.enabled_fields().map(|f| f.to_string()).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

impl StoreSink {
    /// A sink over `store`; must be created inside a tokio runtime (it spawns the task that
    /// applies session and exporter changes in order).
    pub fn new(
        store: store::Store,
        outbound: Vec<String>,
        app: Option<Arc<crate::app::AppState>>,
    ) -> StoreSink {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<StateChange>();
        let st = store.clone();
        tokio::spawn(async move {
            while let Some(change) = rx.recv().await {
                let r = match change {
                    StateChange::Exporter {
                        id,
                        direction,
                        state,
                        connected,
                        error,
                    } => {
                        if let Some(app) = &app {
                            app.events.emit(
                                &app.store,
                                "ipdr.exporter",
                                None,
                                serde_json::json!({
                                    "exporter": id,
                                    "direction": direction,
                                    "state": state,
                                    "error": error,
                                }),
                            );
                        }
                        st.upsert_ipdr_exporter(store::IpdrExporterIn {
                            direction: direction.into(),
                            id,
                            state: state.into(),
                            last_connected_at: connected.then(Utc::now),
                            last_error: error,
                        })
                        .await
                        .map(drop)
                    }
                    StateChange::Start { exporter, session } => {
                        st.upsert_ipdr_session(&exporter, session).await.map(drop)
                    }
                    StateChange::Stop {
                        exporter,
                        session_id,
                        document_id,
                    } => st
                        .stop_ipdr_session(
                            &exporter,
                            i32::from(session_id),
                            &document_id,
                            Utc::now(),
                        )
                        .await
                        .map(drop),
                };
                if let Err(e) = r {
                    tracing::warn!(error = %e, "recording IPDR session state failed");
                }
            }
        });
        StoreSink {
            store,
            outbound,
            changes: tx,
            templates: Default::default(),
        }
    }
}

impl RecordSink for StoreSink {
    fn commit<'a>(&'a self, exporter: &'a str, records: &'a [Record]) -> SinkFuture<'a> {
        Box::pin(async move {
            let now = Utc::now();
            let mut batch = store::IpdrBatch::new(exporter);
            // Records of a batch nearly always share their document: format its id once.
            let mut doc: Option<(ipdr::codec::DocumentId, String)> = None;
            batch.records = records
                .iter()
                .map(|r| {
                    let id = match &doc {
                        Some((d, text)) if *d == r.document_id => text.clone(),
                        _ => {
                            let text = r.document_id.to_string();
                            doc = Some((r.document_id, text.clone()));
                            text
                        }
                    };
                    record_in(r, id, now)
                })
                .collect();
            let n = records.len() as u64;
            metrics::counter!("keelson_ipdr_records_received_total").increment(n);
            match self.store.ipdr_commit(batch).await {
                Ok(out) => {
                    metrics::counter!("keelson_ipdr_records_acknowledged_total").increment(n);
                    tracing::debug!(
                        exporter,
                        inserted = out.inserted,
                        duplicates = out.duplicates,
                        "IPDR records committed"
                    );
                    Ok(())
                }
                Err(e) => {
                    metrics::counter!("keelson_ipdr_records_refused_total").increment(n);
                    tracing::error!(exporter, error = %e, "committing IPDR records failed");
                    Err(SinkError::transient(e.to_string()))
                }
            }
        })
    }

    fn event(&self, exporter: &str, event: &Event) {
        if matches!(event, Event::RecordRejected { .. }) {
            metrics::counter!("keelson_ipdr_records_refused_total").increment(1);
        }
        match event {
            Event::AckOverdue { .. } | Event::SequenceGap { .. } | Event::RecordRejected { .. } => {
                tracing::warn!(exporter, event = ?event, "IPDR collector event")
            }
            _ => tracing::info!(exporter, event = ?event, "IPDR collector event"),
        }
        let direction = if self.outbound.iter().any(|o| o == exporter) {
            "outbound"
        } else {
            "inbound"
        };
        let change = match event {
            Event::Connected { .. } => Some(StateChange::Exporter {
                id: exporter.to_string(),
                direction,
                state: "connected",
                connected: true,
                error: None,
            }),
            Event::Disconnected { .. } => Some(StateChange::Exporter {
                id: exporter.to_string(),
                direction,
                state: "disconnected",
                connected: false,
                error: None,
            }),
            Event::PeerError { description, .. } | Event::ErrorSent { description, .. } => {
                Some(StateChange::Exporter {
                    id: exporter.to_string(),
                    direction,
                    state: "error",
                    connected: false,
                    error: Some(description.clone()),
                })
            }
            Event::TemplateChanged {
                session_id,
                config_id,
                templates,
            } => {
                self.templates
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(
                        (exporter.to_string(), *session_id),
                        (*config_id, templates_json(templates)),
                    );
                None
            }
            Event::SessionStarted {
                session_id,
                document_id,
                ..
            } => {
                let (config_id, template) = self
                    .templates
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&(exporter.to_string(), *session_id))
                    .cloned()
                    .unwrap_or((0, Json::Null));
                Some(StateChange::Start {
                    exporter: exporter.to_string(),
                    session: store::IpdrSessionIn {
                        session_id: i32::from(*session_id),
                        document_id: document_id.to_string(),
                        config_id: i32::from(config_id),
                        template,
                        started_at: Utc::now(),
                    },
                })
            }
            Event::SessionStopped {
                session_id,
                document_id: Some(document_id),
                ..
            } => Some(StateChange::Stop {
                exporter: exporter.to_string(),
                session_id: *session_id,
                document_id: document_id.to_string(),
            }),
            _ => None,
        };
        if let Some(c) = change {
            let _ = self.changes.send(c);
        }
    }
}

/// Starts the collector's listener (and dials configured exporters) on the current runtime.
pub async fn start(
    state: Arc<crate::app::AppState>,
    shutdown: ipdr::transport::Shutdown,
) -> anyhow::Result<()> {
    let cfg = &state.cfg.ipdr;
    if !cfg.enabled {
        return Ok(());
    }
    let tcfg = Arc::new(ipdr::TransportConfig {
        admission: state.ipdr_conns.clone(),
        ..cfg.transport()
    });
    let sink: Arc<dyn RecordSink> = Arc::new(StoreSink::new(
        state.store.clone(),
        cfg.exporters.clone(),
        Some(state.clone()),
    ));
    if !cfg.listen.is_empty() {
        let listener = tokio::net::TcpListener::bind(&cfg.listen)
            .await
            .map_err(|e| anyhow::anyhow!("binding the IPDR collector on {}: {e}", cfg.listen))?;
        tracing::info!(listen = %cfg.listen, "IPDR/SP collector listening (TCP)");
        let (t, s, sh) = (tcfg.clone(), sink.clone(), shutdown.clone());
        tokio::spawn(async move {
            if let Err(e) = ipdr::tcp::serve(listener, t, s, sh).await {
                tracing::error!(error = %e, "IPDR collector stopped");
            }
        });
    }
    for exporter in &cfg.exporters {
        tracing::info!(exporter = %exporter, "dialling IPDR exporter");
        let (t, s, sh, e) = (
            tcfg.clone(),
            sink.clone(),
            shutdown.clone(),
            exporter.clone(),
        );
        tokio::spawn(async move { ipdr::tcp::dial(e, t, s, sh).await });
    }
    let wants_sctp = !cfg.sctp_listen.is_empty() || !cfg.sctp_exporters.is_empty();
    match ipdr::sctp::sctp_available() {
        Ok(()) if wants_sctp => {
            if !cfg.sctp_listen.is_empty() {
                let addr: std::net::SocketAddr = cfg
                    .sctp_listen
                    .parse()
                    .map_err(|e| anyhow::anyhow!("ipdr.sctp_listen {:?}: {e}", cfg.sctp_listen))?;
                tracing::info!(listen = %addr, "IPDR/SP collector listening (SCTP)");
                let (t, s, sh) = (tcfg.clone(), sink.clone(), shutdown.clone());
                tokio::spawn(async move {
                    if let Err(e) = ipdr::sctp::serve_sctp(addr, t, s, sh).await {
                        tracing::error!(error = %e, "IPDR SCTP listener stopped");
                    }
                });
            }
            for exporter in &cfg.sctp_exporters {
                let addr: std::net::SocketAddr = exporter
                    .parse()
                    .map_err(|e| anyhow::anyhow!("ipdr.sctp_exporters entry {exporter:?}: {e}"))?;
                tracing::info!(exporter = %addr, "dialling IPDR exporter over SCTP");
                let (t, s, sh) = (tcfg.clone(), sink.clone(), shutdown.clone());
                tokio::spawn(async move {
                    if let Err(e) = ipdr::sctp::dial_sctp(addr, t, s, sh).await {
                        tracing::error!(exporter = %addr, error = %e, "IPDR SCTP dialling stopped");
                    }
                });
            }
        }
        Ok(()) => tracing::info!("kernel SCTP available (no SCTP listener or exporter configured)"),
        Err(reason) if wants_sctp => {
            tracing::info!(%reason, "SCTP transport unavailable on this kernel; IPDR over TCP only")
        }
        Err(_) => {}
    }
    Ok(())
}

/// Bulk-data upkeep: indexes new reports by device and applies the retention period (hourly).
/// Runs for as long as the server does.
///
/// Indexing runs when `index_chunk` reports wait, or `index_interval_secs` after the last
/// run: the bigger the chunk, the more reports of each device land on one index page, so
/// heavy ingest is indexed in big steps and light ingest within seconds.
pub async fn maintain(store: store::Store, cfg: crate::config::BulkDataConfig) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_prune: Option<std::time::Instant> = None;
    let mut last_index = std::time::Instant::now();
    let chunk = cfg.index_chunk.max(1);
    let every = std::time::Duration::from_secs(cfg.index_interval_secs.max(1));
    loop {
        tick.tick().await;
        let due = match store.bulk_index_lag().await {
            Ok((upto, top)) => {
                top.saturating_sub(upto) >= chunk || (top > upto && last_index.elapsed() >= every)
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the bulk-report index state failed");
                false
            }
        };
        if due {
            last_index = std::time::Instant::now();
            loop {
                match store.index_bulk_reports(chunk).await {
                    Ok(o) => {
                        if o.indexed > 0 {
                            tracing::debug!(
                                indexed = o.indexed,
                                upto = o.upto,
                                "bulk reports indexed"
                            );
                        }
                        if o.more {
                            continue;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "indexing bulk reports failed"),
                }
                break;
            }
        }
        let cutoff = retention_cutoff(Utc::now(), cfg.retention_days);
        if let Some(before) = cutoff.filter(|_| {
            last_prune.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(3600))
        }) {
            last_prune = Some(std::time::Instant::now());
            match store.prune_bulk_data(before, 10_000).await {
                Ok(o) if o.reports.saturating_add(o.records) > 0 => tracing::info!(
                    reports = o.reports,
                    records = o.records,
                    %before,
                    "bulk data past retention deleted"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "bulk-data retention failed"),
            }
        }
    }
}

/// The time before which bulk data is past `retention_days` (`None`: keep everything, for 0
/// days or a period reaching past the start of time).
pub fn retention_cutoff(
    now: chrono::DateTime<Utc>,
    retention_days: u32,
) -> Option<chrono::DateTime<Utc>> {
    if retention_days == 0 {
        return None;
    }
    now.checked_sub_signed(chrono::TimeDelta::try_days(i64::from(retention_days))?)
}

#[cfg(test)]
#[allow(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used
)]
mod tests {
    use super::*;

    #[test]
    fn retention_cutoff_never_overflows() {
        let now = Utc::now();
        assert_eq!(retention_cutoff(now, 0), None);
        assert_eq!(
            retention_cutoff(now, 30),
            Some(now - chrono::TimeDelta::days(30))
        );
        // Past the start of chrono's time: keep everything rather than panic.
        assert_eq!(retention_cutoff(now, u32::MAX), None);
        assert_eq!(retention_cutoff(chrono::DateTime::<Utc>::MIN_UTC, 1), None);
    }
}
