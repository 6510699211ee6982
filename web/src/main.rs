//! The `keelson` binary: `serve` (ACS + northbound API), `migrate`, `sim` (CPE simulator).

mod app;
mod config;
mod connreq;
mod cwmp;
mod files;
mod nbi;
mod persist;
mod sim;
mod tls;

use clap::{Parser, Subcommand};

use config::{Config, ConfigFlags};

#[derive(Parser)]
#[command(
    name = "keelson",
    version,
    about = "Keelson: a TR-069 (CWMP) Auto-Configuration Server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the ACS: CWMP on HTTP/HTTPS, the northbound API and the file server.
    Serve(ConfigFlags),
    /// Apply database migrations and exit.
    Migrate(ConfigFlags),
    /// Run simulated CPEs against an ACS (`keelson sim load` for the load benchmark).
    Sim(sim::SimArgs),
    /// Print the effective configuration as TOML.
    Config(ConfigFlags),
}

fn init_tracing(filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEELSON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    if json {
        builder
            .event_format(tracing_subscriber::fmt::format().json())
            .init();
    } else {
        builder.init();
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(flags) => {
            let cfg = Config::load(&flags)?;
            init_tracing(&cfg.log.level, cfg.log.json);
            actix_web::rt::System::new().block_on(app::serve(cfg))
        }
        Command::Migrate(flags) => {
            let cfg = Config::load(&flags)?;
            init_tracing(&cfg.log.level, cfg.log.json);
            let url = cfg.effective_database_url();
            let rt = tokio::runtime::Runtime::new()?;
            let applied = rt.block_on(store::Store::migrate(&url))?;
            if applied.is_empty() {
                println!("database {} is up to date", app::redact_url(&url));
            } else {
                for m in applied {
                    println!("applied {m}");
                }
            }
            Ok(())
        }
        Command::Sim(args) => {
            init_tracing(&args.log_level(), false);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(sim::run(args))
        }
        Command::Config(flags) => {
            let cfg = Config::load(&flags)?;
            print!("{}", toml::to_string_pretty(&cfg)?);
            Ok(())
        }
    }
}
