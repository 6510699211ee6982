//! `keelson sim ipdr`: an IPDR/SP exporter streaming TR-232 BulkDataReport records, in either
//! connection direction, on the `ipdr` crate's simulator.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;

#[derive(clap::Args, Debug, Clone)]
pub struct IpdrSimArgs {
    /// Connect to the collector at host:port (exporter-initiated connection).
    #[arg(long, conflicts_with = "listen")]
    pub collector: Option<String>,
    /// Listen here and let the collector connect (collector-initiated connection).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Records to send, then stop once all are acknowledged.
    #[arg(long)]
    pub records: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Records per second (default: as fast as acknowledged).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Tests: send this many records, then hold the rest until the connection is lost
    /// (kill the collector meanwhile; the rest go after the reconnection). Per connection.
    #[arg(long)]
    pub pause_at: Option<u64>,
    /// Simulated devices whose reports are sent (round robin).
    #[arg(long, default_value_t = 100)]
    pub devices: u32,
    /// Name/value pairs per record.
    #[arg(long, default_value_t = 20)]
    pub pairs: usize,
    #[arg(long, default_value = "02CAFE")]
    pub oui: String,
    #[arg(long, default_value = "SimHGW")]
    pub product_class: String,
    #[arg(long, default_value = "KSIM")]
    pub serial_prefix: String,
    /// Exporters streaming in parallel, each its own connection and document, with its own
    /// share of the devices (serial numbers `<prefix><n>_<device>`). Load mode: the
    /// figure printed is the records acknowledged per second by all of them together.
    /// Dialling only.
    #[arg(long, default_value_t = 1)]
    pub connections: u32,
    /// Most DATA messages outstanding before a DATA_ACK (per connection).
    #[arg(long, default_value_t = 4096)]
    pub window: usize,
    /// ackSequenceInterval announced in SESSION_START.
    #[arg(long, default_value_t = 1024)]
    pub ack_sequence_interval: u32,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: IpdrSimArgs) -> anyhow::Result<()> {
    let connection = match (&args.collector, args.listen) {
        (Some(c), None) => crate::ipdr::SimConnection::Dial(c.clone()),
        (None, Some(l)) => crate::ipdr::SimConnection::Listen(l),
        _ => anyhow::bail!("give --collector HOST:PORT or --listen ADDR"),
    };
    if args.records.is_none() && args.duration.is_none() {
        anyhow::bail!("give --records N or --duration SECONDS");
    }
    let n = args.connections.max(1);
    if n > 1 && args.listen.is_some() {
        anyhow::bail!("--connections applies to --collector only");
    }
    let mut runs = Vec::new();
    for i in 0..n {
        let serial_prefix = if n == 1 {
            args.serial_prefix.clone()
        } else {
            format!("{}{i}_", args.serial_prefix)
        };
        let devices = (args.devices / n + u32::from(i < args.devices % n)).max(1);
        let records = args
            .records
            .map(|r| r / u64::from(n) + u64::from(u64::from(i) < r % u64::from(n)));
        let cfg = crate::ipdr::SimExporterConfig {
            connection: connection.clone(),
            records,
            duration: args.duration.map(Duration::from_secs_f64),
            rate: args.rate.map(|r| r / f64::from(n)),
            pause_at: args.pause_at,
            devices,
            pairs: args.pairs,
            oui: args.oui.clone(),
            product_class: args.product_class.clone(),
            serial_prefix,
            window: args.window.max(1),
            ack_sequence_interval: args.ack_sequence_interval.max(1),
            seed: 1 + u64::from(i),
            ..Default::default()
        };
        runs.push(tokio::spawn(crate::ipdr::run_exporter(cfg)));
    }
    let started = std::time::Instant::now();
    let mut reports = Vec::new();
    for r in runs {
        reports.push(
            r.await
                .context("IPDR exporter simulator task")?
                .context("IPDR exporter simulator")?,
        );
    }
    let report = if reports.len() == 1 {
        reports.remove(0)
    } else {
        let mut t = crate::ipdr::ExporterReport {
            complete: true,
            elapsed: started.elapsed(),
            ..Default::default()
        };
        for one in &reports {
            t.records_generated += one.records_generated;
            t.records_acked += one.records_acked;
            t.data_sent += one.data_sent;
            t.data_resent += one.data_resent;
            t.data_acks += one.data_acks;
            t.connections += one.connections;
            t.documents += one.documents;
            t.peer_errors += one.peer_errors;
            t.complete &= one.complete;
        }
        t
    };
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "records_generated": report.records_generated,
                "records_acked": report.records_acked,
                "records_per_second": report.acked_per_second(),
                "connections": report.connections,
                "elapsed_s": report.elapsed.as_secs_f64(),
                "complete": report.complete,
            })
        );
    } else {
        println!("{report}");
    }
    if !report.complete {
        anyhow::bail!("not every record was acknowledged");
    }
    Ok(())
}
