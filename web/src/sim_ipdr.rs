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
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: IpdrSimArgs) -> anyhow::Result<()> {
    let connection = match (&args.collector, args.listen) {
        (Some(c), None) => ipdr::sim::SimConnection::Dial(c.clone()),
        (None, Some(l)) => ipdr::sim::SimConnection::Listen(l),
        _ => anyhow::bail!("give --collector HOST:PORT or --listen ADDR"),
    };
    if args.records.is_none() && args.duration.is_none() {
        anyhow::bail!("give --records N or --duration SECONDS");
    }
    let cfg = ipdr::sim::SimExporterConfig {
        connection,
        records: args.records,
        duration: args.duration.map(Duration::from_secs_f64),
        rate: args.rate,
        devices: args.devices,
        pairs: args.pairs,
        oui: args.oui,
        product_class: args.product_class,
        serial_prefix: args.serial_prefix,
        ..Default::default()
    };
    let report = ipdr::sim::run_exporter(cfg)
        .await
        .context("IPDR exporter simulator")?;
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
