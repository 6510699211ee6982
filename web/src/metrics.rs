//! `GET /metrics`: Prometheus text format, through the `metrics` facade and
//! `metrics-exporter-prometheus`. Counters are bumped where things happen (CWMP sessions and
//! RPCs, connection requests, IPDR records, bulk-data reports, the store's commits); gauges
//! (open connections, sessions, the task queue) are read when scraped.
//!
//! Access is its own setting (`[metrics]`): an allow-list of networks (loopback by default),
//! or a bearer token from anywhere.

use std::sync::OnceLock;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::app::AppState;
use crate::problem::problem;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls reuse it).
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("keelson_db_commit_seconds".into()),
                    &[
                        0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                    ],
                )
                .ok()?;
            match builder.install_recorder() {
                Ok(h) => {
                    describe();
                    Some(h)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "keelson_cwmp_sessions_total",
        "CWMP sessions ended, by outcome"
    );
    describe_counter!(
        "keelson_cwmp_rpcs_total",
        "RPCs the ACS sent, by method and result (ok, fault)"
    );
    describe_counter!(
        "keelson_cwmp_cpe_rpcs_total",
        "RPCs CPEs sent (Inform, TransferComplete, ...), by method"
    );
    describe_counter!(
        "keelson_cwmp_faults_total",
        "CWMP faults CPEs answered, by fault code"
    );
    describe_counter!(
        "keelson_cwmp_auth_failures_total",
        "CPE authentication refusals"
    );
    describe_counter!(
        "keelson_connection_requests_total",
        "connection requests issued, by result"
    );
    describe_counter!(
        "keelson_ipdr_records_received_total",
        "IPDR records decoded and handed to storage"
    );
    describe_counter!(
        "keelson_ipdr_records_acknowledged_total",
        "IPDR records committed (and so acknowledged)"
    );
    describe_counter!(
        "keelson_ipdr_records_refused_total",
        "IPDR records refused (undecodable, or storage failed)"
    );
    describe_counter!(
        "keelson_bulkdata_reports_total",
        "bulk-data reports and documents stored, by source"
    );
    describe_counter!(
        "keelson_webhook_deliveries_total",
        "webhook deliveries, by result"
    );
    describe_counter!("keelson_db_write_jobs_total", "store write jobs committed");
    describe_histogram!(
        "keelson_db_commit_seconds",
        Unit::Seconds,
        "duration of one group commit"
    );
    describe_gauge!("keelson_cwmp_open_connections", "open CWMP connections");
    describe_gauge!(
        "keelson_nbi_open_connections",
        "open northbound connections"
    );
    describe_gauge!("keelson_cwmp_active_sessions", "CWMP sessions in progress");
    describe_gauge!(
        "keelson_tasks",
        "open tasks by status: pending (the queue), running, waiting"
    );
    describe_gauge!(
        "keelson_cwmp_auth_enabled",
        "1 when CPEs must authenticate; 0 means cwmp.auth = none"
    );
}

/// One ended session. The common outcome's handle is kept: a labelled `counter!` hashes its
/// labels on every call, which the hot path need not pay.
pub fn session_ended(outcome: &'static str) {
    static COMPLETE: OnceLock<metrics::Counter> = OnceLock::new();
    if outcome == "complete" {
        COMPLETE
            .get_or_init(
                || metrics::counter!("keelson_cwmp_sessions_total", "outcome" => "complete"),
            )
            .increment(1);
    } else {
        metrics::counter!("keelson_cwmp_sessions_total", "outcome" => outcome).increment(1);
    }
}

/// One Inform received (a session started).
pub fn inform_received() {
    static INFORM: OnceLock<metrics::Counter> = OnceLock::new();
    INFORM
        .get_or_init(|| metrics::counter!("keelson_cwmp_cpe_rpcs_total", "method" => "Inform"))
        .increment(1);
}

fn allowed(state: &AppState, req: &HttpRequest) -> bool {
    let m = &state.cfg.metrics;
    let from_allowed = req
        .peer_addr()
        .is_some_and(|a| m.allow_networks.iter().any(|n| n.contains(&a.ip())));
    if from_allowed {
        return true;
    }
    if m.token.is_empty() {
        return false;
    }
    use sha2::Digest;
    let presented = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Compared as digests: the time taken says nothing about a common prefix.
    sha2::Sha256::digest(presented.as_bytes()) == sha2::Sha256::digest(m.token.as_bytes())
}

pub async fn scrape(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if !allowed(&state, &req) {
        tracing::warn!(remote = ?req.peer_addr(), "metrics scrape refused");
        return problem(
            StatusCode::FORBIDDEN,
            "metrics are open to [metrics] allow_networks, or with its token",
        );
    }
    let Some(handle) = install() else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics are not recorded in this process",
        );
    };
    metrics::gauge!("keelson_cwmp_open_connections").set(state.cwmp_conns.open() as f64);
    metrics::gauge!("keelson_nbi_open_connections").set(state.nbi_conns.open() as f64);
    metrics::gauge!("keelson_cwmp_active_sessions").set(state.sessions.active() as f64);
    metrics::gauge!("keelson_cwmp_auth_enabled").set(if state.auth.is_some() { 1.0 } else { 0.0 });
    match state.store.task_counts().await {
        Ok(counts) => {
            for status in store::TaskStatus::OPEN {
                let n = counts
                    .iter()
                    .find(|(s, _)| s == status.as_str())
                    .map_or(0, |(_, n)| *n);
                metrics::gauge!("keelson_tasks", "status" => status.as_str()).set(n as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "counting tasks for metrics"),
    }
    let mut body = handle.render();
    if state.auth.is_none() {
        body.push_str(&format!("# WARNING: {}\n", crate::nbi::CPE_AUTH_OFF));
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body)
}
