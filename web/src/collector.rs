//! The IPDR collector inside `keelson serve`: the `ipdr` crate's TCP transport with a
//! `RecordSink` over the ACS database. A DATA_ACK follows the commit of the records it covers.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use ipdr::collector::{Event, Record};
use ipdr::transport::{RecordSink, SinkError, SinkFuture};
use ipdr::xdr::Value;
use serde_json::{json, Value as Json};

/// Writes IPDR records (and, for TR-232 BulkDataReport records, their samples linked to the
/// device) in one transaction per batch.
pub struct StoreSink {
    pub store: store::Store,
}

fn to_json(v: &Value) -> Json {
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

fn record_in(r: &Record, now: chrono::DateTime<Utc>) -> store::IpdrRecordIn {
    let fields: serde_json::Map<String, Json> = r
        .fields
        .iter()
        .map(|(k, v)| (k.to_string(), to_json(v)))
        .collect();
    let (device_id, samples) = match ipdr::sim::BulkDataReport::from_fields(&r.fields) {
        Some(rep) if !rep.serial_number.is_empty() => {
            let at = if rep.creation_time_ms > 0 {
                Utc.timestamp_millis_opt(rep.creation_time_ms as i64)
                    .single()
                    .unwrap_or(now)
            } else {
                now
            };
            (
                Some(store::canonical_device_id(
                    &rep.oui.to_ascii_uppercase(),
                    &rep.product_class,
                    &rep.serial_number,
                )),
                rep.bulk_data
                    .into_iter()
                    .map(|(p, v)| store::SampleIn::new(p, v, at))
                    .collect(),
            )
        }
        _ => (None, Vec::new()),
    };
    store::IpdrRecordIn {
        session_id: i32::from(r.session_id),
        document_id: r.document_id.to_string(),
        sequence: r.sequence_num as i64,
        template_id: i32::from(r.template.id()),
        received_at: now,
        fields: Json::Object(fields),
        device_id,
        samples,
    }
}

impl RecordSink for StoreSink {
    fn commit<'a>(&'a self, exporter: &'a str, records: &'a [Record]) -> SinkFuture<'a> {
        Box::pin(async move {
            let now = Utc::now();
            let mut batch = store::IpdrBatch::new(exporter);
            batch.records = records.iter().map(|r| record_in(r, now)).collect();
            match self.store.ipdr_commit(batch).await {
                Ok(out) => {
                    tracing::debug!(
                        exporter,
                        inserted = out.inserted,
                        duplicates = out.duplicates,
                        "IPDR records committed"
                    );
                    Ok(())
                }
                Err(e) => {
                    tracing::error!(exporter, error = %e, "committing IPDR records failed");
                    Err(SinkError::transient(e.to_string()))
                }
            }
        })
    }

    fn event(&self, exporter: &str, event: &Event) {
        tracing::info!(exporter, event = ?event, "IPDR collector event");
        let store = self.store.clone();
        let exporter = exporter.to_string();
        let state = match event {
            Event::Connected { .. } => Some("connected"),
            _ => None,
        };
        if let Some(state) = state {
            tokio::spawn(async move {
                let _ = store
                    .upsert_ipdr_exporter(store::IpdrExporterIn {
                        id: exporter,
                        direction: "inbound".into(),
                        state: state.into(),
                        last_connected_at: Some(Utc::now()),
                        last_error: None,
                    })
                    .await;
            });
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
    let tcfg = Arc::new(ipdr::transport::TransportConfig::default());
    let sink: Arc<dyn RecordSink> = Arc::new(StoreSink {
        store: state.store.clone(),
    });
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
    match ipdr::sctp::sctp_available() {
        Ok(()) => tracing::info!("kernel SCTP available"),
        Err(reason) => {
            tracing::info!(%reason, "SCTP transport unavailable on this kernel; IPDR over TCP only")
        }
    }
    Ok(())
}
