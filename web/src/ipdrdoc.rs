//! IPDR documents (IPDR/XML `IPDRDoc`, TR-232 BulkDataReport or any other record type, and
//! IPDR/XDR files) into the ACS database, from three places:
//!
//! * `POST /api/v1/ipdr/documents` on the northbound API (mediation systems, operators);
//! * `POST|PUT /bulkdata` on the CWMP listeners with an XML or XDR body (CPEs), authenticated
//!   like CWMP — see `bulk.rs`;
//! * a watched directory (`[ipdr] watch_dir`), where finished files are moved to `done/`
//!   and refused ones to `failed/` beside a `<name>.error` note.
//!
//! A document's records are keyed like streamed ones: exporter `doc:<IPDRRecorderInfo>`,
//! session 0, the document's `docId`, and the record's `seqNum` (else its position from 1).
//! So a document delivered twice, or by two routes, is stored once. The answer (2xx, or the
//! move to `done/`) follows the commit of every record.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::Utc;
use serde::Serialize;
use serde_json::Value as Json;

/// Records per store commit while a large document is ingested.
const COMMIT_CHUNK: usize = 4096;

/// What ingesting one document did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Ingested {
    pub doc_id: String,
    pub encoding: &'static str,
    pub exporter: String,
    pub records: u64,
    /// Records stored now (the others were stored before).
    pub inserted: u64,
    pub duplicates: u64,
    /// Parameter samples of the TR-232 reports stored now.
    pub samples: u64,
    /// `IPDRDoc.End` / DOCEND count when it disagrees with the records found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declared_count: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The document is malformed or over a limit: the sender must not resend it as is.
    #[error("{0}")]
    Invalid(String),
    /// Storage failed: nothing acknowledged; the sender may retry.
    #[error("storage error: {0}")]
    Store(String),
    /// The document names a device other than the one that posted it: nothing stored.
    #[error("{0}")]
    Forbidden(String),
}

/// Parses `bytes` (XML or XDR, sniffed) and stores every record; `origin` names the route in
/// logs and stands in for the exporter when the document has no IPDRRecorderInfo. With
/// `only_device` (a CPE posting its own data), every record must be a report of that device,
/// or nothing is stored.
pub async fn ingest(
    store: &store::Store,
    bytes: Vec<u8>,
    max_bytes: usize,
    origin: &str,
    only_device: Option<&str>,
) -> Result<Ingested, IngestError> {
    let limits = ipdr::doc::DocLimits {
        max_bytes,
        ..ipdr::doc::DocLimits::default()
    };
    // Parsing a large document takes a while: keep it off the event loop.
    let doc = tokio::task::spawn_blocking(move || ipdr::doc::parse(&bytes, &limits))
        .await
        .map_err(|e| IngestError::Store(format!("document parser task: {e}")))?
        .map_err(|e| IngestError::Invalid(e.to_string()))?;
    let (encoding, source) = match doc.encoding {
        ipdr::doc::DocEncoding::Xml => ("xml", store::SOURCE_IPDR_XML),
        ipdr::doc::DocEncoding::Xdr => ("xdr", store::SOURCE_IPDR_XDR),
    };
    let exporter = if doc.recorder_info.trim().is_empty() {
        format!("doc:{origin}")
    } else {
        format!("doc:{}", doc.recorder_info.trim())
    };
    let mismatch = doc.count_mismatch();
    if let Some((declared, found)) = mismatch {
        tracing::warn!(doc_id = %doc.doc_id, declared, found, "IPDR document count differs from its records");
    }
    let now = Utc::now();
    let mut out = Ingested {
        doc_id: doc.doc_id.clone(),
        encoding,
        exporter: exporter.clone(),
        records: doc.records.len() as u64,
        inserted: 0,
        duplicates: 0,
        samples: 0,
        declared_count: mismatch.map(|m| m.0),
    };
    let doc_time = doc
        .creation_time_ms
        .filter(|&t| t > 0)
        .and_then(|ms| chrono::TimeZone::timestamp_millis_opt(&Utc, ms as i64).single());
    let all: Vec<store::IpdrRecordIn> = doc
        .records
        .into_iter()
        .enumerate()
        .map(|(i, r)| record_in(r, i, &doc.doc_id, doc_time.unwrap_or(now), now))
        .collect();
    if let Some(device) = only_device {
        if let Some(other) = all.iter().find(|r| r.device_id.as_deref() != Some(device)) {
            return Err(IngestError::Forbidden(format!(
                "the document has a record of {} (sequence {}); a device may post only its own reports",
                other.device_id.as_deref().unwrap_or("no device"),
                other.sequence
            )));
        }
    }
    let mut records = all.into_iter().peekable();
    while records.peek().is_some() {
        let mut batch = store::IpdrBatch::new(exporter.clone());
        batch.source = source.to_string();
        batch.records.extend(records.by_ref().take(COMMIT_CHUNK));
        let o = store
            .ipdr_commit(batch)
            .await
            .map_err(|e| IngestError::Store(e.to_string()))?;
        out.inserted = out.inserted.saturating_add(o.inserted);
        out.duplicates = out.duplicates.saturating_add(o.duplicates);
        out.samples = out.samples.saturating_add(o.samples);
    }
    metrics::counter!("keelson_bulkdata_reports_total", "source" => format!("ipdr-document-{origin}"))
        .increment(1);
    tracing::info!(
        origin,
        exporter = %out.exporter,
        doc_id = %out.doc_id,
        encoding,
        records = out.records,
        inserted = out.inserted,
        duplicates = out.duplicates,
        "IPDR document stored"
    );
    Ok(out)
}

fn record_in(
    r: ipdr::doc::DocRecord,
    index: usize,
    doc_id: &str,
    doc_time: chrono::DateTime<Utc>,
    now: chrono::DateTime<Utc>,
) -> store::IpdrRecordIn {
    let mut out = store::IpdrRecordIn {
        session_id: 0,
        document_id: doc_id.to_string(),
        sequence: r.seq_num.map_or_else(
            || i64::try_from(index).unwrap_or(i64::MAX).saturating_add(1),
            |s| i64::try_from(s).unwrap_or(i64::MAX),
        ),
        template_id: 0,
        received_at: now,
        fields: Json::Null,
        device_id: None,
        report: None,
    };
    match r.bulk_data {
        Some(mut rep) if !rep.serial_number.is_empty() => {
            if rep.creation_time_ms == 0 {
                // 0 is no time (XDR files write the absent time as 0).
                rep.creation_time_ms = r
                    .creation_time_ms
                    .filter(|&t| t > 0)
                    .unwrap_or(doc_time.timestamp_millis().max(0) as u64);
            }
            let (device, report) = crate::collector::report_in(rep, now);
            out.device_id = Some(device);
            out.report = Some(report);
        }
        _ => {
            let mut fields = serde_json::Map::new();
            fields.insert("type".into(), Json::String(r.type_name));
            for (k, v) in &r.fields {
                let v = crate::collector::to_json(v);
                match fields.get_mut(&**k) {
                    // Repeated elements: an array of their values.
                    Some(Json::Array(a)) => a.push(v),
                    Some(prev) => *prev = Json::Array(vec![prev.take(), v]),
                    None => {
                        fields.insert(k.to_string(), v);
                    }
                }
            }
            out.fields = Json::Object(fields);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Watched directory

/// Polls `dir` every `interval` for documents; runs until the task is dropped.
pub async fn watch(store: store::Store, dir: PathBuf, interval: Duration, max_bytes: usize) {
    for sub in ["done", "failed"] {
        if let Err(e) = tokio::fs::create_dir_all(dir.join(sub)).await {
            tracing::error!(dir = %dir.display(), error = %e, "cannot prepare the IPDR document directory");
            return;
        }
    }
    tracing::info!(dir = %dir.display(), "watching for IPDR documents");
    // Files are taken once they are unchanged between two polls (still being written otherwise).
    let mut seen: HashMap<PathBuf, (u64, Option<SystemTime>)> = HashMap::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mut now_seen = HashMap::new();
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot read the IPDR document directory");
                continue;
            }
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let Ok(meta) = entry.metadata().await else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let stamp = (meta.len(), meta.modified().ok());
            if seen.get(&path) != Some(&stamp) {
                now_seen.insert(path, stamp);
                continue;
            }
            if take_file(&store, &dir, &path, &name, meta.len(), max_bytes).await {
                // Not done (storage failed, or the file could not be moved): next poll again.
                now_seen.insert(path, stamp);
            }
        }
        seen = now_seen;
    }
}

/// Ingests one stable file and moves it; `true` when it must be tried again later.
async fn take_file(
    store: &store::Store,
    dir: &Path,
    path: &Path,
    name: &str,
    len: u64,
    max_bytes: usize,
) -> bool {
    let result = if len > max_bytes as u64 {
        Err(IngestError::Invalid(format!(
            "{len} bytes, over the limit of {max_bytes}"
        )))
    } else {
        match tokio::fs::read(path).await {
            Ok(bytes) => ingest(store, bytes, max_bytes, "dir", None).await,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot read IPDR document");
                return true;
            }
        }
    };
    let (sub, note) = match result {
        Ok(_) => ("done", None),
        Err(IngestError::Store(e)) => {
            tracing::error!(file = %path.display(), error = %e, "storing IPDR document failed; will retry");
            return true;
        }
        Err(IngestError::Invalid(reason) | IngestError::Forbidden(reason)) => {
            tracing::warn!(file = %path.display(), %reason, "IPDR document refused");
            ("failed", Some(reason))
        }
    };
    let mut target = dir.join(sub).join(name);
    if tokio::fs::try_exists(&target).await.unwrap_or(false) {
        target = dir
            .join(sub)
            .join(format!("{name}.{}", Utc::now().format("%Y%m%dT%H%M%S%.3f")));
    }
    if let Err(e) = tokio::fs::rename(path, &target).await {
        tracing::error!(file = %path.display(), error = %e, "cannot move IPDR document");
        return true;
    }
    if let Some(reason) = note {
        let mut err = target.clone().into_os_string();
        err.push(".error");
        let _ = tokio::fs::write(PathBuf::from(err), format!("{reason}\n")).await;
    }
    false
}
