//! The `keelson` binary: `serve` (ACS + northbound API), `migrate`, `sim` (CPE simulator).

/// mimalloc: the collector's decode path allocates small strings at a high rate, where it
/// is markedly faster than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

use keelson::config::{Config, ConfigFlags};
use keelson::{app, dm};

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

// Parsed once at start.
#[allow(clippy::large_enum_variant)]
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
    /// Broadband Forum data models: summaries, definitions, value checks.
    #[command(subcommand)]
    Datamodel(DatamodelCommand),
    /// Operator accounts (console and NBI sign-in).
    #[command(subcommand)]
    User(UserCmd),
    /// API tokens for OSS/BSS systems and scripts.
    #[command(subcommand)]
    Token(TokenCmd),
}

#[derive(Subcommand)]
enum UserCmd {
    /// Creates a user. Without --password-stdin a password is generated and printed once.
    Add {
        name: String,
        #[arg(long, default_value = "viewer")]
        role: String,
        #[arg(long)]
        tenant: Option<String>,
        /// Read the password (one line) from standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        flags: ConfigFlags,
    },
    /// Sets a new password (generated and printed unless --password-stdin); ends the user's sessions.
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        flags: ConfigFlags,
    },
    /// Disables a user: no sign-in, sessions ended.
    Disable {
        name: String,
        #[command(flatten)]
        flags: ConfigFlags,
    },
    /// Enables a disabled user.
    Enable {
        name: String,
        #[command(flatten)]
        flags: ConfigFlags,
    },
    /// Lists users.
    List {
        #[command(flatten)]
        flags: ConfigFlags,
    },
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Creates a token and prints it (only this once) on standard output.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        tenant: Option<String>,
        /// Lifetime in days (default: no expiry).
        #[arg(long)]
        expires_in_days: Option<u32>,
        #[command(flatten)]
        flags: ConfigFlags,
    },
    /// Lists tokens (never their secrets).
    List {
        #[command(flatten)]
        flags: ConfigFlags,
    },
    /// Revokes a token by id.
    Revoke {
        id: String,
        #[command(flatten)]
        flags: ConfigFlags,
    },
}

#[derive(Subcommand)]
enum DatamodelCommand {
    /// Models in a BBF XML file or directory, with counts of objects, parameters and profiles.
    Info { path: std::path::PathBuf },
    /// The definition and description of a parameter or object path.
    Show {
        path: String,
        /// Extra model directories (besides the built-in TR-181 and TR-098).
        #[arg(long = "dir")]
        dirs: Vec<std::path::PathBuf>,
    },
    /// Checks a value against a parameter's definition.
    Validate {
        path: String,
        value: String,
        #[arg(long = "dir")]
        dirs: Vec<std::path::PathBuf>,
    },
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

fn cmd_to_args(cmd: DatamodelCommand) -> dm::CliCommand {
    match cmd {
        DatamodelCommand::Info { path } => dm::CliCommand::Info(path),
        DatamodelCommand::Show { path, dirs } => dm::CliCommand::Show { path, dirs },
        DatamodelCommand::Validate { path, value, dirs } => {
            dm::CliCommand::Validate { path, value, dirs }
        }
    }
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One clear line (with its causes), not a backtrace.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(flags) => {
            let cfg = Config::load(&flags)?;
            init_tracing(&cfg.log.level, cfg.log.json);
            keelson::guard::install_panic_hook();
            actix_web::rt::System::new().block_on(app::serve(cfg))
        }
        Command::Migrate(flags) => {
            let cfg = Config::load(&flags)?;
            init_tracing(&cfg.log.level, cfg.log.json);
            let url = cfg.effective_database_url();
            app::private_umask();
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
            // Secrets are never printed: `<redacted>` says one is set.
            print!("{}", toml::to_string_pretty(&cfg.redacted())?);
            Ok(())
        }
        Command::Datamodel(cmd) => dm::cli(cmd_to_args(cmd)),
        Command::User(cmd) => {
            use keelson::usercli::UserCommand as U;
            let (flags, cmd) = match cmd {
                UserCmd::Add {
                    name,
                    role,
                    tenant,
                    password_stdin,
                    flags,
                } => (
                    flags,
                    U::Add {
                        name,
                        role,
                        tenant,
                        password_stdin,
                    },
                ),
                UserCmd::Passwd {
                    name,
                    password_stdin,
                    flags,
                } => (
                    flags,
                    U::Passwd {
                        name,
                        password_stdin,
                    },
                ),
                UserCmd::Disable { name, flags } => (flags, U::Disable(name)),
                UserCmd::Enable { name, flags } => (flags, U::Enable(name)),
                UserCmd::List { flags } => (flags, U::List),
            };
            let cfg = Config::load(&flags)?;
            init_tracing("warn", false);
            keelson::usercli::user(cfg, cmd)
        }
        Command::Token(cmd) => {
            use keelson::usercli::TokenCommand as T;
            let (flags, cmd) = match cmd {
                TokenCmd::Create {
                    name,
                    role,
                    tenant,
                    expires_in_days,
                    flags,
                } => (
                    flags,
                    T::Create {
                        name,
                        role,
                        tenant,
                        expires_in_days,
                    },
                ),
                TokenCmd::List { flags } => (flags, T::List),
                TokenCmd::Revoke { id, flags } => (flags, T::Revoke(id)),
            };
            let cfg = Config::load(&flags)?;
            init_tracing("warn", false);
            keelson::usercli::token(cfg, cmd)
        }
    }
}
