//! IPDR commit throughput of the store, a benchmark (not a test):
//! `cargo bench -p keelson-store --bench ipdr` (SQLite, then PostgreSQL
//! when installed; `-- sqlite` or `-- postgres` picks one).
//!
//! Commits TR-232 BulkDataReport records (`SAMPLES` name/value pairs each,
//! stored as one report row) in `ipdr_commit` batches of `BATCH` records
//! from `PRODUCERS` concurrent tasks (one exporter each, as collector
//! connections), over `DEVICES` devices, and reports records/s and
//! samples/s from the first call to the last durable answer. The batches
//! are built before the clock starts, so this measures the store (including
//! its layout and JSON encoding), not the decoder. Then it times indexing
//! every report by device, and one batch committed again (a resend:
//! duplicates only).
//!
//! Knobs: `RECORDS` (100000), `BATCH` (500), `SAMPLES` (20), `PRODUCERS` (4),
//! `DEVICES` (10000), `SQLITE_SQL` (SQL run on the SQLite database after the
//! migrations, e.g. to try another index).
//!
//! Besides the rates it prints how much the process wrote to storage per
//! record (`/proc/self/io`).
//!
//! Measured on the 2-core build VM (`RECORDS=1000000 BATCH=2048`,
//! 2026-11-21, fsync per commit): SQLite 196,929 records/s (0.8 kB written
//! per record), indexing 1,000,000 reports in 1.34 s; PostgreSQL (test
//! cluster on the same cores) 62,775 records/s, indexing 4.90 s. The first
//! commit after an indexing step is slow (500 ms after indexing 300,000
//! reports, 11 ms the next time): it pays for the index pages' checkpoint. The first layout (one row
//! per sample with a (device, path, time) index) did 4,600–5,500 records/s
//! on SQLite and 6,100–7,000 on PostgreSQL.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{Duration, Utc};
use store::testpg::TestPg;
use store::*;

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

struct Knobs {
    records: usize,
    batch: usize,
    samples: usize,
    producers: usize,
    devices: usize,
}

const PATHS: [&str; 8] = [
    "Device.WiFi.Radio.1.Stats.BytesSent",
    "Device.WiFi.Radio.1.Stats.BytesReceived",
    "Device.WiFi.Radio.1.Stats.PacketsSent",
    "Device.WiFi.Radio.1.Stats.PacketsReceived",
    "Device.IP.Interface.1.Stats.BytesSent",
    "Device.IP.Interface.1.Stats.BytesReceived",
    "Device.DeviceInfo.MemoryStatus.Free",
    "Device.DeviceInfo.ProcessStatus.CPUUsage",
];

fn record(k: &Knobs, producer: usize, seq: i64) -> IpdrRecordIn {
    let serial = format!(
        "SN{:06}",
        (seq as usize * k.producers + producer) % k.devices
    );
    let at = Utc::now() - Duration::seconds(3600) + Duration::milliseconds(seq);
    let pairs: Vec<(String, String)> = (0..k.samples)
        .map(|i| {
            (
                PATHS[i % PATHS.len()].replace(".1.", &format!(".{}.", 1 + i / PATHS.len())),
                (seq as u64 * 7919 + i as u64).to_string(),
            )
        })
        .collect();
    IpdrRecordIn {
        session_id: 65,
        document_id: format!("6f1e3c1a-9a4b-4c39-8f3e-{producer:012x}"),
        sequence: seq,
        template_id: 3000,
        received_at: Utc::now(),
        fields: serde_json::Value::Null,
        device_id: Some(canonical_device_id("00D09E", "IGD", &serial)),
        report: Some(ReportIn {
            sampled_at: at,
            suspect: false,
            pairs,
        }),
    }
}

fn batches(k: &Knobs) -> Vec<IpdrBatch> {
    let per_producer = k.records / k.producers;
    let mut out = Vec::new();
    for p in 0..k.producers {
        let mut seq = 0;
        while seq < per_producer {
            let n = k.batch.min(per_producer - seq);
            let mut b = IpdrBatch::new(format!("192.0.2.{}:4737", p + 1));
            b.records = (seq..seq + n).map(|s| record(k, p, s as i64)).collect();
            out.push(b);
            seq += n;
        }
    }
    out
}

async fn run(store: Store, label: &str) {
    let k = Knobs {
        records: knob("RECORDS", 100_000),
        batch: knob("BATCH", 500).max(1),
        samples: knob("SAMPLES", 20),
        producers: knob("PRODUCERS", 4).max(1),
        devices: knob("DEVICES", 10_000).max(1),
    };
    let built = Instant::now();
    let all = batches(&k);
    let resend = all[0].clone();
    let total: usize = all.iter().map(|b| b.records.len()).sum();
    println!(
        "{label}: built {} batches, {total} records x {} samples in {:.2} s",
        all.len(),
        k.samples,
        built.elapsed().as_secs_f64()
    );
    let queue = Arc::new(Mutex::new(all));

    let written = io_written();
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..k.producers {
        let (s, q) = (store.clone(), queue.clone());
        workers.push(tokio::spawn(async move {
            let mut done = (0u64, 0u64);
            loop {
                let Some(b) = q.lock().unwrap().pop() else {
                    return done;
                };
                let out = s.ipdr_commit(b).await.unwrap();
                done.0 += out.inserted;
                done.1 += out.samples;
            }
        }));
    }
    let (mut records, mut samples) = (0u64, 0u64);
    for w in workers {
        let (r, s) = w.await.unwrap();
        records += r;
        samples += s;
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(records as usize, total);
    println!(
        "{label}: {records} records ({samples} samples) committed in {secs:.2} s = {:.0} records/s, {:.0} samples/s \
         (batches of {}, {} producers)",
        records as f64 / secs,
        samples as f64 / secs,
        k.batch,
        k.producers,
    );

    // (PostgreSQL writes from its own processes: nothing to see here.)
    if let Some((before, after)) = written.zip(io_written()).filter(|(b, a)| a > b) {
        println!(
            "{label}: this process wrote {} MB meanwhile ({:.1} kB per record)",
            (after - before) / (1024 * 1024),
            (after - before) as f64 / 1024.0 / records as f64
        );
    }

    // The by-device index, built behind the ingest (what `keelson serve` does every
    // `index_interval_secs` or `index_chunk` reports).
    let t = Instant::now();
    let mut indexed = 0;
    loop {
        let o = store.index_bulk_reports(500_000).await.unwrap();
        indexed += o.indexed;
        if !o.more {
            break;
        }
    }
    println!(
        "{label}: indexed {indexed} reports by device in {:.2} s",
        t.elapsed().as_secs_f64()
    );

    // Let the checkpoint thread copy the indexing's WAL frames first: otherwise the next
    // commit pays for that checkpoint and the resend below would time it.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let n = resend.records.len();
    for round in ["first", "second"] {
        let t = Instant::now();
        let out = store.ipdr_commit(resend.clone()).await.unwrap();
        assert_eq!(out.duplicates as usize, n);
        println!(
            "{label}: resend of {n} records (all duplicates, {round} time) in {:.1} ms",
            t.elapsed().as_secs_f64() * 1e3
        );
    }
}

/// Bytes this process caused to be written to storage so far (Linux).
fn io_written() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
}

async fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("bench.db").display().to_string();
    let store = Store::open(&url, StoreOptions::default()).await.unwrap();
    if let Ok(sql) = std::env::var("SQLITE_SQL") {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        diesel::SqliteConnection::establish(&url)
            .unwrap()
            .batch_execute(&sql)
            .unwrap();
    }
    run(store, "sqlite").await;
    let size = |p: String| std::fs::metadata(p).map_or(0, |m| m.len()) / (1024 * 1024);
    println!(
        "sqlite: database {} MB, WAL {} MB",
        size(url.clone()),
        size(format!("{url}-wal"))
    );
}

async fn postgres() {
    let Some(pg) = TestPg::start() else {
        println!("SKIP: postgres: no PostgreSQL server binaries");
        return;
    };
    let opts = StoreOptions {
        index_safety_lag: std::time::Duration::ZERO,
        ..StoreOptions::default()
    };
    let store = Store::open(pg.url(), opts).await.unwrap();
    run(store, "postgres").await;
}

fn main() {
    // `cargo bench` passes `--bench`; a plain filter argument picks one backend.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wants = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if wants("sqlite") {
        rt.block_on(sqlite());
    }
    if wants("postgres") {
        rt.block_on(postgres());
    }
}
