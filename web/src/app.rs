//! Startup: builds the shared state and runs the CWMP (HTTP, HTTPS) and northbound listeners.

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Extensions;
use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use anyhow::Context;

use crate::config::{AuthMode, Config};
use crate::connreq::CrManager;
use crate::cwmp::Sessions;
use crate::guard::{CatchPanic, Listener};

/// Shared by every handler of every listener.
pub struct AppState {
    pub cfg: Config,
    pub store: store::Store,
    pub sessions: Sessions,
    pub auth: Option<acs::auth::Authenticator>,
    pub limits: acs::codec::Limits,
    pub style: acs::codec::OutputStyle,
    pub cr: CrManager,
    pub public_url: String,
    /// Broadband Forum data models (built-in plus `datamodel.dirs`).
    pub dm: datamodel::Registry,
}

/// Per-TCP-connection facts, attached by `on_connect` and read by the CWMP handler.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub id: u64,
    pub tls: bool,
    /// Names (subject CN, DNS SANs) of the client certificate rustls verified, if any.
    pub client_cert: Option<Arc<[String]>>,
}

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// Subject common names and DNS subject-alternative names of a certificate.
pub fn certificate_names(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let mut names: Vec<String> = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_string))
        .collect();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                names.push(d.to_string());
            }
        }
    }
    names
}

fn on_connect(conn: &dyn Any, ext: &mut Extensions) {
    let id = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    if let Some(tls) = conn
        .downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>>()
    {
        let client_cert = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| Arc::from(certificate_names(c)));
        ext.insert(ConnInfo {
            id,
            tls: true,
            client_cert,
        });
    } else {
        ext.insert(ConnInfo {
            id,
            tls: false,
            client_cert: None,
        });
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db` for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

pub async fn build_state(cfg: Config) -> anyhow::Result<Arc<AppState>> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating data directory {}", cfg.data_dir.display()))?;
    std::fs::create_dir_all(cfg.files_dir())?;
    let url = cfg.effective_database_url();
    let store_opts = store::StoreOptions {
        sqlite_fsync_commits: cfg.sqlite_fsync,
        ..store::StoreOptions::default()
    };
    let store = store::Store::open(&url, store_opts)
        .await
        .with_context(|| format!("opening database {}", redact_url(&url)))?;
    tracing::info!(database = %redact_url(&url), backend = ?store.backend(), "database ready");
    let auth = match cfg.cwmp.auth {
        AuthMode::None => {
            tracing::warn!("CPE authentication is off (cwmp.auth = \"none\"); set cwmp.auth = \"digest\" and credentials for production");
            None
        }
        AuthMode::Digest => {
            let secret: [u8; 32] = if cfg.cwmp.nonce_secret.is_empty() {
                rand::random()
            } else {
                use sha2::Digest;
                sha2::Sha256::digest(cfg.cwmp.nonce_secret.as_bytes()).into()
            };
            let algorithms = cfg
                .cwmp
                .digest_algorithms
                .iter()
                .map(|a| {
                    if a.eq_ignore_ascii_case("SHA-256") {
                        acs::auth::DigestAlgorithm::Sha256
                    } else {
                        acs::auth::DigestAlgorithm::Md5
                    }
                })
                .collect();
            Some(acs::auth::Authenticator::new(
                acs::auth::AuthConfig {
                    realm: cfg.cwmp.realm.clone(),
                    algorithms,
                    ..Default::default()
                },
                secret,
            ))
        }
    };
    let limits = acs::codec::Limits {
        max_body_bytes: cfg.cwmp.max_body_bytes,
        ..Default::default()
    };
    let style = acs::codec::OutputStyle {
        boolean_style: if cfg.cwmp.boolean_digits {
            acs::codec::BoolStyle::Digits
        } else {
            acs::codec::BoolStyle::Words
        },
        ..Default::default()
    };
    seal_cleartext_passwords(&store, &cfg).await?;
    let public_url = cfg.public_url();
    let cr = CrManager::new(&cfg.connection_request);
    let started = std::time::Instant::now();
    let dm = crate::dm::load_registry(&cfg.datamodel.dirs)?;
    tracing::info!(
        models = dm.models().count(),
        ms = started.elapsed().as_millis() as u64,
        "data models ready"
    );
    Ok(Arc::new(AppState {
        cfg,
        store,
        sessions: Sessions::default(),
        auth,
        limits,
        style,
        cr,
        public_url,
        dm,
    }))
}

/// Seals CPE passwords an older version stored in clear (Digest HA1 for the configured
/// realm), and warns about secrets sealed for another realm.
async fn seal_cleartext_passwords(store: &store::Store, cfg: &Config) -> anyhow::Result<()> {
    let realm = &cfg.cwmp.realm;
    let mut sealed = 0usize;
    for (id, user, password) in store.cleartext_cpe_passwords().await? {
        let Some(user) = user.filter(|u| !u.is_empty()) else {
            tracing::warn!(device = %id, "a CPE password without username cannot be sealed; set the device's credentials again");
            continue;
        };
        let secret = crate::cwmp::seal_password(realm, &user, &password);
        if store.seal_cpe_password(&id, secret).await? {
            sealed = sealed.saturating_add(1);
        }
    }
    if sealed > 0 {
        tracing::info!(
            devices = sealed,
            "cleartext CPE passwords sealed (only their HA1 is kept)"
        );
    }
    let foreign = store.count_foreign_realm_secrets(realm).await?;
    if foreign > 0 {
        tracing::warn!(devices = foreign, %realm, "CPE passwords were set for another realm and cannot authenticate; set them again");
    }
    Ok(())
}

/// A listening socket whose accepted connections start with `TCP_NODELAY` (Linux copies it
/// from the listener): actix sets it only after the TLS handshake, leaving the handshake
/// flights to Nagle's algorithm and delayed ACKs.
fn cwmp_listener(addr: &str) -> anyhow::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let addr: std::net::SocketAddr = addr
        .parse()
        .with_context(|| format!("listen address {addr}"))?;
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    sock.set_reuse_address(true)?;
    sock.set_tcp_nodelay(true)?;
    sock.bind(&addr.into())
        .with_context(|| format!("binding {addr}"))?;
    sock.listen(4096)?;
    Ok(sock.into())
}

/// The faults [`reclaim`] records.
fn reclaim_request(node: Option<&str>) -> store::Reclaim {
    store::Reclaim {
        now: chrono::Utc::now(),
        restarted_node: node.map(str::to_string),
        lease_fault: store::TaskFault {
            code: acs::faults::LEASE_EXPIRED as i32,
            string: "lease expired: the node running the RPC stopped or lost it; outcome unknown"
                .into(),
            detail: None,
        },
        waiting_fault: store::TaskFault {
            code: acs::faults::COMPLETION_TIMEOUT as i32,
            string: "the CPE acknowledged the RPC but never reported its completion".into(),
            detail: None,
        },
    }
}

/// Returns tasks stranded by a dead node or a vanished CPE to the queue (see
/// [`store::Store::reclaim_tasks`]). `restarted`: this node has just started.
pub async fn reclaim(state: &AppState, restarted: bool) {
    let node = restarted.then_some(state.cfg.node_id.as_str());
    match state.store.reclaim_tasks(reclaim_request(node)).await {
        Ok(o) => {
            if !(o.requeued.is_empty() && o.faulted.is_empty() && o.timed_out.is_empty()) {
                tracing::info!(
                    requeued = ?o.requeued,
                    faulted = ?o.faulted,
                    timed_out = ?o.timed_out,
                    restarted,
                    "stranded tasks reclaimed"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "reclaiming stranded tasks failed"),
    }
}

pub async fn serve(cfg: Config) -> anyhow::Result<()> {
    let state = build_state(cfg).await?;
    // Whatever this node's previous run had on the wire died with it.
    reclaim(&state, true).await;
    let cfg = &state.cfg;
    let data = web::Data::from(state.clone());
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);

    // One CWMP server per listener (HTTP, HTTPS); TLS when a rustls config is given.
    let cwmp_server = |listen: &str, tls: Option<rustls::ServerConfig>| -> anyhow::Result<Server> {
        let d = data.clone();
        let builder = HttpServer::new(move || {
            App::new()
                .wrap(CatchPanic(Listener::Cwmp))
                .app_data(d.clone())
                .configure(crate::cwmp::routes)
        })
        .on_connect(on_connect)
        .tcp_nodelay(true)
        .workers(workers)
        .max_connections(100_000)
        .keep_alive(Duration::from_secs(cfg.cwmp.session_timeout_secs.max(30)))
        .client_request_timeout(Duration::from_secs(30))
        .shutdown_timeout(5);
        let listener = cwmp_listener(listen)?;
        let builder = match tls {
            Some(tls) => builder.listen_rustls_0_23(listener, tls),
            None => builder.listen(listener),
        }
        .with_context(|| format!("CWMP listener on {listen}"))?;
        tracing::info!(listen, "CWMP listening");
        Ok(builder.disable_signals().run())
    };

    let mut servers = Vec::new();
    if !cfg.cwmp.http_listen.is_empty() {
        servers.push(cwmp_server(&cfg.cwmp.http_listen, None)?);
    }
    if !cfg.cwmp.https_listen.is_empty() {
        let paths = crate::tls::load_or_generate(
            cfg.cwmp.tls_cert.as_deref(),
            cfg.cwmp.tls_key.as_deref(),
            &cfg.data_dir,
            &cfg.cwmp.tls_hostnames,
        )?;
        let tls = crate::tls::server_config(
            &paths,
            cfg.cwmp.client_ca.as_deref(),
            cfg.cwmp.require_client_cert,
        )?;
        servers.push(cwmp_server(&cfg.cwmp.https_listen, Some(tls))?);
    }
    {
        let d = data.clone();
        let srv = HttpServer::new(move || {
            App::new()
                .wrap(CatchPanic(Listener::Nbi))
                .app_data(d.clone())
                .configure(crate::nbi::routes)
        })
        .workers(1)
        .tcp_nodelay(true)
        .shutdown_timeout(5)
        .bind(&cfg.nbi.listen)
        .with_context(|| format!("binding northbound API on {}", cfg.nbi.listen))?
        .disable_signals()
        .run();
        tracing::info!(listen = %cfg.nbi.listen, "northbound API listening");
        servers.push(srv);
    }

    // The IPDR collector runs on its own runtime so bulk data never competes with the CWMP
    // workers' event loops.
    let (ipdr_stop, ipdr_shutdown) = ipdr::transport::Shutdown::new();
    let ipdr_thread = {
        let state = state.clone();
        std::thread::Builder::new()
            .name("ipdr-collector".into())
            .spawn(move || -> anyhow::Result<()> {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("ipdr")
                    .enable_all()
                    .build()?;
                rt.block_on(async move {
                    let upkeep = {
                        let (store, cfg) = (state.store.clone(), state.cfg.bulkdata.clone());
                        tokio::spawn(supervise("bulk-data upkeep", move || {
                            crate::collector::maintain(store.clone(), cfg.clone())
                        }))
                    };
                    let _abort = AbortOnDrop(upkeep);
                    let ipdr_cfg = state.cfg.ipdr.clone();
                    let _watch = (!ipdr_cfg.watch_dir.is_empty()).then(|| {
                        let store = state.store.clone();
                        AbortOnDrop(tokio::spawn(supervise("IPDR document watch", move || {
                            crate::ipdrdoc::watch(
                                store.clone(),
                                std::path::PathBuf::from(&ipdr_cfg.watch_dir),
                                Duration::from_secs(ipdr_cfg.watch_interval_secs.max(1)),
                                ipdr_cfg.max_document_bytes,
                            )
                        })))
                    });
                    crate::collector::start(state, ipdr_shutdown.clone()).await?;
                    let mut wait = ipdr_shutdown;
                    wait.requested().await;
                    Ok(())
                })
            })?
    };

    // Abort sessions that went idle (checklist §1.4).
    let sweeper = {
        let state = state.clone();
        tokio::spawn(supervise("session sweeper", move || {
            let state = state.clone();
            async move {
                let mut tick = tokio::time::interval(Duration::from_secs(2));
                let mut n: u64 = 0;
                loop {
                    tick.tick().await;
                    crate::cwmp::sweep_expired(&state).await;
                    n = n.wrapping_add(1);
                    if n % 5 == 0 {
                        reclaim(&state, false).await;
                    }
                }
            }
        }))
    };

    let handles: Vec<_> = servers.iter().map(|s| s.handle()).collect();
    let mut joined = futures_util::future::join_all(servers);
    tokio::select! {
        res = &mut joined => {
            for r in res { r?; }
        }
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            // The Server futures process the stop commands, so keep polling them.
            for h in &handles {
                let h = h.clone();
                actix_web::rt::spawn(async move { h.stop(true).await });
            }
            for r in joined.await { r?; }
        }
    }
    tracing::info!("stopped");
    sweeper.abort();
    ipdr_stop.trigger();
    match ipdr_thread.join() {
        Ok(Err(e)) => tracing::error!(error = %e, "IPDR collector"),
        Err(_) => tracing::error!("IPDR collector thread panicked"),
        Ok(Ok(())) => {}
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Runs a background task for the life of the server. A panic in it (a defect) is logged by
/// the panic hook and the task is started again a second later, so that indexing, retention
/// or session expiry never stop silently.
pub async fn supervise<F, Fut>(name: &'static str, mut make: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        // Aborted with this future, so stopping the supervisor stops the task too.
        let mut task = AbortOnDrop(tokio::spawn(make()));
        match (&mut task.0).await {
            Ok(()) => return,
            Err(e) if e.is_panic() => {
                tracing::error!(
                    task = name,
                    "background task panicked; restarting it in 1 s"
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(_) => return,
        }
    }
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact_url("postgres://k:secret@127.0.0.1:5432/db"),
            "postgres://k:***@127.0.0.1:5432/db"
        );
        assert_eq!(super::redact_url("/tmp/k.db"), "/tmp/k.db");
    }
}
