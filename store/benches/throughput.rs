//! Session throughput of the store, a benchmark (not a test):
//! `cargo bench -p keelson-store --bench throughput` (SQLite, then PostgreSQL when installed).
//!
//! A "session" is what the CWMP hot path asks of the store: `device_auth`,
//! `record_inform` (2 events, 8 parameters) and `next_tasks`, over 2,000
//! existing devices. Knobs: `SESSIONS` (20000), `CONCURRENCY` (256),
//! `WRITE_ONLY=1` (only `record_inform`).

use std::time::Instant;

use chrono::Utc;
use store::testpg::TestPg;
use store::*;

const DEVICES: usize = 2_000;

fn inform(i: usize) -> InformRecord {
    let serial = format!("SN{i:06}");
    InformRecord {
        device_id: format!("00D09E-Router-{serial}"),
        oui: "00D09E".into(),
        product_class: "Router".into(),
        serial_number: serial,
        manufacturer: "Acme".into(),
        root_object: "Device.".into(),
        software_version: Some("1.0".into()),
        hardware_version: Some("hw1".into()),
        connection_request_url: Some(format!("http://10.0.{}.{}:7547/", i / 250, i % 250)),
        udp_connection_request_address: None,
        parameter_key: Some(String::new()),
        cwmp_ns: "urn:dslforum-org:cwmp-1-4".into(),
        cwmp_version: "1.4".into(),
        remote_addr: Some("192.0.2.1:40000".into()),
        current_time: Some("2025-11-21T10:00:00Z".into()),
        retry_count: 0,
        received_at: Utc::now(),
        session_id: Some(format!("s{i}")),
        events: vec![
            InformEvent {
                code: "2 PERIODIC".into(),
                command_key: String::new(),
            },
            InformEvent {
                code: "4 VALUE CHANGE".into(),
                command_key: String::new(),
            },
        ],
        params: (0..8)
            .map(|p| InformParam {
                path: format!("Device.DeviceInfo.X_Param{p}"),
                value: format!("value-{p}-{i}"),
                xsd_type: Some("xsd:string".into()),
            })
            .collect(),
        bootstrap: false,
    }
}

async fn run(store: Store, label: &str) {
    let sessions: usize = std::env::var("SESSIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let concurrency: usize = std::env::var("CONCURRENCY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    let write_only = std::env::var("WRITE_ONLY").is_ok_and(|v| v == "1");
    // Warm up: every device exists (steady state is updates, not inserts).
    let mut warm = Vec::new();
    for i in 0..DEVICES {
        let s = store.clone();
        warm.push(tokio::spawn(
            async move { s.record_inform(inform(i)).await },
        ));
    }
    for h in warm {
        h.await.unwrap().unwrap();
    }

    let start = Instant::now();
    let per_worker = sessions / concurrency;
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let s = store.clone();
        workers.push(tokio::spawn(async move {
            for k in 0..per_worker {
                let i = (w * per_worker + k) % DEVICES;
                let rec = inform(i);
                let id = rec.device_id.clone();
                if !write_only {
                    s.device_auth(&id).await.unwrap();
                }
                s.record_inform(rec).await.unwrap();
                if !write_only {
                    s.next_tasks(&id, Utc::now(), 16).await.unwrap();
                }
            }
        }));
    }
    for h in workers {
        h.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let done = per_worker * concurrency;
    println!(
        "{label}: {done} sessions in {secs:.2} s = {:.0} sessions/s (concurrency {concurrency})",
        done as f64 / secs
    );
}

async fn sqlite_sessions_per_second() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("bench.db").display().to_string();
    let store = Store::open(&url, StoreOptions::default()).await.unwrap();
    run(store, "sqlite").await;
    let wal = std::fs::metadata(format!("{url}-wal")).map_or(0, |m| m.len());
    println!("sqlite: WAL file {} kB", wal / 1024);
}

async fn postgres_sessions_per_second() {
    let Some(pg) = TestPg::start() else {
        println!("SKIP: postgres: no PostgreSQL server binaries");
        return;
    };
    let store = Store::open(pg.url(), StoreOptions::default())
        .await
        .unwrap();
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
        rt.block_on(sqlite_sessions_per_second());
    }
    if wants("postgres") {
        rt.block_on(postgres_sessions_per_second());
    }
}
