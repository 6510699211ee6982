//! End-to-end IPDR/SP throughput over TCP loopback: the exporter simulator streams TR-232
//! BulkDataReport records (OUI, ProductClass, SerialNumber, Suspect and 20 TR-181
//! name/value pairs from 1,000 simulated devices) to the collector ([`ipdr::tcp::serve`]),
//! which frames, decodes and hands them to a no-op durable sink, then acknowledges. The
//! figure is records acknowledged per second, both ends sharing one 2-worker runtime.
//!
//! Run: `cargo bench -p ipdr --bench tcp`
//! Environment: `IPDR_BENCH_RECORDS` (default 300000), `IPDR_BENCH_LAYOUT` (`structured`,
//! the default, or `flat`), `IPDR_BENCH_WINDOW` (default 4096).

/// The allocator `keelson` itself uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::Instant;

use ipdr::tcp::{serve, NullSink};
use ipdr::tr232::BulkDataLayout;
use ipdr::{Shutdown, TransportConfig};
use sim::ipdr::{run_exporter, SimConnection, SimExporterConfig};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this quickly instead.
    let quick = !std::env::args().any(|a| a == "--bench");
    let records = if quick {
        5_000
    } else {
        env_u64("IPDR_BENCH_RECORDS", 300_000)
    };
    let window = env_u64("IPDR_BENCH_WINDOW", 4096) as usize;
    let layout = match std::env::var("IPDR_BENCH_LAYOUT").as_deref() {
        Ok("flat") => BulkDataLayout::Flattened,
        _ => BulkDataLayout::Structured,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, shutdown) = Shutdown::new();
        let server = tokio::spawn(serve(
            listener,
            Arc::new(TransportConfig::default()),
            Arc::new(NullSink),
            shutdown,
        ));
        let cfg = |n: u64| SimExporterConfig {
            connection: SimConnection::Dial(addr.to_string()),
            records: Some(n),
            devices: 1000,
            pairs: 20,
            layout,
            window,
            ack_sequence_interval: (window as u32 / 4).max(1),
            ..SimExporterConfig::default()
        };
        // Warm-up (allocator, connection set-up paths).
        run_exporter(cfg(records / 10)).await.unwrap();
        let t = Instant::now();
        let report = run_exporter(cfg(records)).await.unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert!(report.complete, "{report}");
        let per_record = {
            let mut b = Vec::new();
            cfg(1).fleet().encode_report(12_345, 0, layout, &mut b);
            b.len() + 25
        };
        println!(
            "ipdr tcp loopback ({layout:?}, 20 pairs, window {window}): {records} records acknowledged in {secs:.2} s = {:.0} records/s ({:.1} MB/s of DATA, ~{per_record} B per DATA message)",
            records as f64 / secs,
            (records as f64 * per_record as f64) / secs / 1e6,
        );
        stop.trigger();
        server.await.unwrap().unwrap();
    });
}
