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
    /// Open connections of the CWMP listeners and of the northbound listener.
    pub cwmp_conns: Arc<crate::conns::Registry>,
    pub nbi_conns: Arc<crate::conns::Registry>,
    /// The IPDR/SP listeners' admission (allow-list and caps).
    pub ipdr_conns: Arc<crate::conns::Registry>,
    /// Roles and tokens, cached for authentication.
    pub access: crate::access::AccessCache,
    /// Sign-in (and refused-credential) limits per user and per address.
    pub limiter: crate::access::LoginLimiter,
    /// Events for server-sent-event streams and webhooks.
    pub events: crate::events::Bus,
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

/// The CWMP listeners' `on_connect`: admission under the connection caps (the close hook
/// detaches the connection's session), then the connection facts handlers read.
fn cwmp_on_connect(
    state: &Arc<AppState>,
) -> impl Fn(&dyn Any, &mut Extensions) + Send + Sync + 'static {
    let registry = state.cwmp_conns.clone();
    let hook: crate::conns::CloseHook = {
        let state = Arc::downgrade(state);
        Arc::new(move |id| {
            if let Some(state) = state.upgrade() {
                state.sessions.connection_closed(id);
            }
        })
    };
    move |conn, ext| {
        let id = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
        crate::conns::admit_connection(&registry, conn, ext, id, Some(hook.clone()));
        let tls = conn
            .downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>>();
        let client_cert = tls.and_then(|tls| {
            tls.get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| Arc::from(certificate_names(c)))
        });
        ext.insert(ConnInfo {
            id,
            tls: tls.is_some(),
            client_cert,
        });
    }
}

/// The northbound listener's `on_connect`: admission under its connection caps.
fn nbi_on_connect(
    state: &Arc<AppState>,
) -> impl Fn(&dyn Any, &mut Extensions) + Send + Sync + 'static {
    let registry = state.nbi_conns.clone();
    move |conn, ext| {
        let id = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
        crate::conns::admit_connection(&registry, conn, ext, id, None);
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db` for logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.rsplit_once('@') {
        Some((creds, host)) => match creds.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

pub async fn build_state(cfg: Config) -> anyhow::Result<Arc<AppState>> {
    // Everything in the data directory is this user's alone: the database holds CPE and
    // connection-request credentials, the files directory what CPEs uploaded.
    crate::files::create_private_dir(&cfg.data_dir)
        .with_context(|| format!("creating data directory {}", cfg.data_dir.display()))?;
    crate::files::create_private_dir(&cfg.files_dir())
        .with_context(|| format!("creating {}", cfg.files_dir().display()))?;
    let url = cfg.effective_database_url();
    if cfg.database_url.is_empty() {
        make_private_if_present(&[
            cfg.data_dir.join("keelson.db"),
            cfg.data_dir.join("keelson.db-wal"),
            cfg.data_dir.join("keelson.db-shm"),
        ])?;
    }
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
    crate::access::bootstrap(&store, &cfg.data_dir).await?;
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
        store,
        sessions: Sessions::default(),
        auth,
        limits,
        style,
        cr,
        public_url,
        dm,
        cwmp_conns: crate::conns::Registry::new(
            "cwmp",
            crate::conns::Caps {
                per_address: cfg.cwmp.max_connections_per_address,
                total: cfg.cwmp.max_connections,
            },
        ),
        nbi_conns: crate::conns::Registry::new(
            "nbi",
            crate::conns::Caps {
                per_address: cfg.nbi.max_connections_per_address,
                total: cfg.nbi.max_connections,
            },
        ),
        ipdr_conns: cfg.ipdr.admission(),
        access: crate::access::AccessCache::default(),
        limiter: crate::access::LoginLimiter::new(&cfg.access),
        events: crate::events::Bus::default(),
        cfg,
    }))
}

/// Files this process creates from now on (the database, uploads, certificates) are private
/// to its user.
pub fn private_umask() {
    #[cfg(unix)]
    // SAFETY: umask(2) only sets the process's file-creation mask.
    unsafe {
        libc::umask(0o077);
    }
}

/// Files an older version created readable by others become 0600.
fn make_private_if_present(paths: &[std::path::PathBuf]) -> anyhow::Result<()> {
    #[cfg(unix)]
    for p in paths {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(p) {
            Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("making {} private", p.display()))?;
                tracing::info!(file = %p.display(), "made private (0600)");
            }
            _ => {}
        }
    }
    Ok(())
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
    private_umask();
    let _ = crate::metrics::install();
    // Thousands of CPE connections need descriptors; the soft limit is often 1024.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(limit = n, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
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
        let c = &cfg.cwmp;
        let builder = HttpServer::new(move || {
            App::new()
                .wrap(CatchPanic(Listener::Cwmp))
                .app_data(d.clone())
                .configure(crate::cwmp::routes)
        })
        .on_connect(cwmp_on_connect(&state))
        .tcp_nodelay(true)
        .workers(workers)
        .max_connections(c.max_connections.max(1))
        // An open session may idle between POSTs up to its base timeout.
        .keep_alive(Duration::from_secs(
            c.idle_timeout_secs.max(c.session_timeout_secs).max(1),
        ))
        .client_request_timeout(Duration::from_secs(c.header_timeout_secs.max(1)))
        .client_disconnect_timeout(Duration::from_secs(2))
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
        let site = Arc::new(crate::site::SitePolicy::from_config(cfg));
        let srv = HttpServer::new(move || {
            App::new()
                .wrap(CatchPanic(Listener::Nbi))
                .wrap(actix_web::middleware::from_fn(crate::site::guard(
                    site.clone(),
                )))
                .app_data(d.clone())
                .configure(crate::nbi::routes)
        })
        .on_connect(nbi_on_connect(&state))
        .workers(1)
        .max_connections(cfg.nbi.max_connections.max(1))
        .keep_alive(Duration::from_secs(cfg.nbi.idle_timeout_secs.max(1)))
        .client_request_timeout(Duration::from_secs(cfg.nbi.header_timeout_secs.max(1)))
        .client_disconnect_timeout(Duration::from_secs(2))
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
    // The thread says whether its listeners are up; a listener that cannot bind fails the
    // start (before anything reports healthy) instead of logging at shutdown.
    let (ipdr_ready, ipdr_started) = tokio::sync::oneshot::channel::<Result<(), String>>();
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
                    if let Err(e) = crate::collector::start(state, ipdr_shutdown.clone()).await {
                        let _ = ipdr_ready.send(Err(format!("{e:#}")));
                        return Err(e);
                    }
                    let _ = ipdr_ready.send(Ok(()));
                    let mut wait = ipdr_shutdown;
                    wait.requested().await;
                    Ok(())
                })
            })?
    };

    match ipdr_started.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => anyhow::bail!("{e}"),
        Err(_) => {
            // The thread ended without a word: it could not build its runtime.
            match ipdr_thread.join() {
                Ok(Err(e)) => return Err(e.context("starting the IPDR collector")),
                _ => anyhow::bail!("the IPDR collector thread stopped while starting"),
            }
        }
    }

    state.events.refresh(&state.store).await;
    let webhooks = {
        let state = state.clone();
        tokio::spawn(supervise("webhook delivery", move || {
            crate::events::deliver_forever(state.clone())
        }))
    };
    let _webhooks = AbortOnDrop(webhooks);

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
                    if n.is_multiple_of(5) {
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
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot handle SIGTERM; stop with Ctrl-C (SIGINT)");
                let _ = ctrl_c.await;
            }
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
#[allow(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used
)]
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
