//! End-to-end test of the CPE simulator's I/O runner (`sim::run`)
//! against a small fake ACS built from the `acs` codec and authenticator:
//! Digest auth with a cached challenge, session cookies, real Download and
//! Upload transfers, TransferComplete, HTTP and UDP Connection Requests,
//! Reboot, `--once`, and `keelson sim load`. Everything stays on 127.0.0.1.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use acs::auth::{AuthConfig, AuthResult, Authenticator};
use acs::codec::*;
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::net::{TcpListener, UdpSocket};

const PASSWORD: &str = "cpe-secret";
const FIRMWARE_LEN: usize = 1000;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    Sim(sim::SimArgs),
}

fn sim_args(args: &[&str]) -> sim::SimArgs {
    let mut v = vec!["keelson", "sim"];
    v.extend_from_slice(args);
    let Cmd::Sim(a) = Cli::parse_from(v).cmd;
    a
}

/// What the fake ACS does with each device.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// InformResponse, then 204.
    Plain,
    /// The scripted scenario of `sim_device_full_lifecycle`.
    Scripted,
}

#[derive(Default)]
struct Device {
    stage: u32,
    informs: Vec<Inform>,
    transfer_completes: Vec<TransferComplete>,
    cr_url: String,
    udp_addr: String,
    software_version: String,
    parameter_key: String,
}

#[derive(Default)]
struct Session {
    serial: String,
    queue: Vec<Rpc>,
    next_id: u32,
}

struct FakeAcs {
    mode: Mode,
    port: u16,
    auth: Authenticator,
    devices: Mutex<HashMap<String, Device>>,
    sessions: Mutex<HashMap<String, Session>>,
    unauthorized: Mutex<u32>,
    sessions_done: Mutex<u32>,
    missing_cookie: Mutex<u32>,
    uploads: Mutex<Vec<Vec<u8>>>,
}

fn response(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r
}

impl FakeAcs {
    fn xml(&self, ns: &str, id: Option<String>, rpc: Rpc) -> Vec<u8> {
        serialize(&Envelope::rpc(ns, id, rpc), &OutputStyle::default())
    }

    /// The requests the scripted ACS sends in a session, given its Inform.
    fn script(&self, dev: &mut Device, inform: &Inform) -> Vec<Rpc> {
        let has = |code: &str, ck: &str| {
            inform
                .event
                .iter()
                .any(|e| e.event_code == code && (ck.is_empty() || e.command_key == ck))
        };
        let port = self.port;
        match dev.stage {
            0 if has("0 BOOTSTRAP", "") => {
                dev.stage = 1;
                vec![
                    Rpc::GetParameterValues(GetParameterValues {
                        parameter_names: vec!["Device.ManagementServer.".into()],
                    }),
                    Rpc::SetParameterValues(SetParameterValues {
                        parameter_list: vec![
                            ParameterValueStruct::new(
                                "Device.ManagementServer.ConnectionRequestUsername",
                                "acs-cr",
                                "xsd:string",
                            ),
                            ParameterValueStruct::new(
                                "Device.ManagementServer.ConnectionRequestPassword",
                                "cr-s3cret",
                                "xsd:string",
                            ),
                            ParameterValueStruct::new(
                                "Device.ManagementServer.PeriodicInformInterval",
                                "3600",
                                "xsd:unsignedInt",
                            ),
                        ],
                        parameter_key: "boot-1".into(),
                    }),
                    Rpc::Download(Download {
                        command_key: "fw-1".into(),
                        file_type: "1 Firmware Upgrade Image".into(),
                        url: format!("http://127.0.0.1:{port}/fw/hgw-9.9.9.bin"),
                        username: "files".into(),
                        password: "files-pw".into(),
                        file_size: FIRMWARE_LEN as u32,
                        ..Download::default()
                    }),
                    Rpc::Upload(Upload {
                        command_key: "up-1".into(),
                        file_type: "1 Vendor Configuration File".into(),
                        url: format!("http://127.0.0.1:{port}/upload/cfg.xml"),
                        ..Upload::default()
                    }),
                ]
            }
            2 if has("6 CONNECTION REQUEST", "") => {
                dev.stage = 3;
                vec![Rpc::Reboot(Reboot {
                    command_key: "rb-1".into(),
                })]
            }
            3 if has("M Reboot", "rb-1") && has("1 BOOT", "") => {
                dev.stage = 4;
                vec![]
            }
            5 if has("6 CONNECTION REQUEST", "") => {
                dev.stage = 6;
                vec![]
            }
            _ => vec![],
        }
    }

    fn handle(&self, parts: &hyper::http::request::Parts, body: &[u8]) -> Response<Full<Bytes>> {
        let path = parts.uri.path();
        if path.starts_with("/fw/") {
            // File server: Basic auth required.
            let ok = parts
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v == "Basic ZmlsZXM6ZmlsZXMtcHc="); // files:files-pw
            if !ok {
                let mut r = response(StatusCode::UNAUTHORIZED, vec![]);
                r.headers_mut()
                    .insert("www-authenticate", "Basic realm=\"files\"".parse().unwrap());
                return r;
            }
            return response(StatusCode::OK, vec![0x5a; FIRMWARE_LEN]);
        }
        if path.starts_with("/missing/") {
            return response(StatusCode::NOT_FOUND, vec![]);
        }
        if path.starts_with("/upload/") {
            assert_eq!(parts.method, hyper::Method::PUT);
            self.uploads.lock().push(body.to_vec());
            return response(StatusCode::CREATED, vec![]);
        }
        // CWMP endpoint: Digest auth for every POST.
        let header = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let verdict = self.auth.verify(header, "POST", false, |u| {
            ids::username_forms(u)
                .iter()
                .any(|f| f.starts_with("02CAFE-SimHGW-"))
                .then(|| PASSWORD.to_string())
        });
        if !matches!(verdict, AuthResult::Ok { .. }) {
            *self.unauthorized.lock() += 1;
            let mut r = response(StatusCode::UNAUTHORIZED, vec![]);
            for c in self.auth.challenge(verdict == AuthResult::Stale) {
                r.headers_mut()
                    .append("www-authenticate", c.parse().unwrap());
            }
            return r;
        }
        let cookie = parts
            .headers
            .get("cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|c| c.split(';').find_map(|p| p.trim().strip_prefix("sid=")))
            .map(String::from);

        if is_empty_body(body) {
            let Some(sid) = cookie else {
                *self.missing_cookie.lock() += 1;
                return response(StatusCode::BAD_REQUEST, vec![]);
            };
            return self.next_request(&sid);
        }
        let env = parse(body, &Limits::default()).expect("the simulator sends valid CWMP");
        let ns = env.ns.clone();
        match env.body {
            Body::Rpc(Rpc::Inform(inform)) => {
                let serial = inform.device_id.serial_number.clone();
                let queue = {
                    let mut devs = self.devices.lock();
                    let dev = devs.entry(serial.clone()).or_default();
                    for p in &inform.parameter_list {
                        match p.name.as_str() {
                            "Device.ManagementServer.ConnectionRequestURL" => {
                                dev.cr_url = p.value.clone()
                            }
                            "Device.DeviceInfo.SoftwareVersion" => {
                                dev.software_version = p.value.clone()
                            }
                            "Device.ManagementServer.ParameterKey" => {
                                dev.parameter_key = p.value.clone()
                            }
                            _ => {}
                        }
                    }
                    let q = if self.mode == Mode::Scripted {
                        self.script(dev, &inform)
                    } else {
                        vec![]
                    };
                    dev.informs.push(inform);
                    q
                };
                let sid = format!("s{}", rand::random::<u64>());
                self.sessions.lock().insert(
                    sid.clone(),
                    Session {
                        serial,
                        queue: queue.into_iter().rev().collect(),
                        next_id: 0,
                    },
                );
                let mut r = response(
                    StatusCode::OK,
                    self.xml(
                        &ns,
                        env.header.id,
                        Rpc::InformResponse(InformResponse { max_envelopes: 1 }),
                    ),
                );
                r.headers_mut()
                    .insert("set-cookie", format!("sid={sid}; Path=/").parse().unwrap());
                r
            }
            Body::Rpc(Rpc::TransferComplete(tc)) => {
                let sid = cookie.expect("cookie on TransferComplete");
                let serial = self.sessions.lock()[&sid].serial.clone();
                let mut devs = self.devices.lock();
                let dev = devs.get_mut(&serial).unwrap();
                dev.transfer_completes.push(tc);
                let cks: Vec<&str> = dev
                    .transfer_completes
                    .iter()
                    .map(|t| t.command_key.as_str())
                    .collect();
                if dev.stage == 1 && cks.contains(&"fw-1") && cks.contains(&"up-1") {
                    dev.stage = 2;
                }
                response(
                    StatusCode::OK,
                    self.xml(
                        &ns,
                        env.header.id,
                        Rpc::TransferCompleteResponse(TransferCompleteResponse {}),
                    ),
                )
            }
            Body::Rpc(Rpc::GetParameterValuesResponse(r)) => {
                let sid = cookie.expect("cookie");
                let serial = self.sessions.lock()[&sid].serial.clone();
                for p in r.parameter_list {
                    if p.name == "Device.ManagementServer.UDPConnectionRequestAddress" {
                        self.devices.lock().get_mut(&serial).unwrap().udp_addr = p.value.clone();
                    }
                    if p.name == "Device.ManagementServer.ConnectionRequestPassword" {
                        assert_eq!(p.value, "", "hidden parameters read back empty");
                    }
                }
                self.next_request(&sid)
            }
            Body::Rpc(rpc) => {
                assert!(rpc.is_response(), "unexpected {rpc:?}");
                if let Rpc::SetParameterValuesResponse(r) = &rpc {
                    assert_eq!(r.status, 0);
                }
                self.next_request(&cookie.expect("cookie"))
            }
            Body::Fault(f) => panic!("CPE fault: {f:?}"),
        }
    }

    fn next_request(&self, sid: &str) -> Response<Full<Bytes>> {
        let mut sessions = self.sessions.lock();
        let s = sessions.get_mut(sid).expect("known session");
        match s.queue.pop() {
            Some(rpc) => {
                s.next_id += 1;
                let id = format!("acs-{}", s.next_id);
                response(StatusCode::OK, self.xml(CWMP_NS_1_2, Some(id), rpc))
            }
            None => {
                sessions.remove(sid);
                *self.sessions_done.lock() += 1;
                response(StatusCode::NO_CONTENT, vec![])
            }
        }
    }
}

async fn start_acs(mode: Mode) -> Arc<FakeAcs> {
    start_acs_with(mode, None).await
}

/// A self-signed certificate for 127.0.0.1: (server config, PEM).
fn tls_server() -> (Arc<rustls::ServerConfig>, String) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let pem = ck.cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.key_pair.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .unwrap();
    (Arc::new(cfg), pem)
}

async fn start_acs_with(mode: Mode, tls: Option<Arc<rustls::ServerConfig>>) -> Arc<FakeAcs> {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acs = Arc::new(FakeAcs {
        mode,
        port,
        auth: Authenticator::new(AuthConfig::default(), [7u8; 32]),
        devices: Mutex::new(HashMap::new()),
        sessions: Mutex::new(HashMap::new()),
        unauthorized: Mutex::new(0),
        sessions_done: Mutex::new(0),
        missing_cookie: Mutex::new(0),
        uploads: Mutex::new(Vec::new()),
    });
    let a = acs.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let a = a.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let a = a.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.unwrap().to_bytes();
                        Ok::<_, Infallible>(a.handle(&parts, &body))
                    }
                });
                let builder = hyper::server::conn::http1::Builder::new();
                match acceptor {
                    Some(acc) => {
                        if let Ok(tls) = acc.accept(stream).await {
                            let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
                        }
                    }
                    None => {
                        let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                    }
                }
            });
        }
    });
    acs
}

async fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn stage(acs: &FakeAcs, serial: &str) -> u32 {
    acs.devices.lock().get(serial).map(|d| d.stage).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_device_full_lifecycle() {
    let acs = start_acs(Mode::Scripted).await;
    let url = format!("http://127.0.0.1:{}/acs", acs.port);
    let args = sim_args(&[
        "--acs-url",
        &url,
        "--password",
        PASSWORD,
        "--retry-scale",
        "0.01",
        "--reboot-delay",
        "0.2",
        "--duration",
        "60",
    ]);
    let runner = tokio::spawn(sim::run(args));
    let serial = "KSIM000001";
    let t = Duration::from_secs(20);

    // Bootstrap session, then the transfers and their TransferCompletes.
    wait_for("transfer completes", t, || stage(&acs, serial) >= 2).await;
    {
        let devs = acs.devices.lock();
        let d = &devs[serial];
        let first = &d.informs[0];
        assert_eq!(first.event[0].event_code, "0 BOOTSTRAP");
        assert_eq!(first.device_id.oui, "02CAFE");
        assert!(!d.udp_addr.is_empty());
        let fw = d
            .transfer_completes
            .iter()
            .find(|t| t.command_key == "fw-1")
            .unwrap();
        assert_eq!(fw.fault_struct.fault_code, 0, "{fw:?}");
        let up = d
            .transfer_completes
            .iter()
            .find(|t| t.command_key == "up-1")
            .unwrap();
        assert_eq!(up.fault_struct.fault_code, 0, "{up:?}");
        // The Inform that carried the TransferComplete: reboot into the new image.
        let seen: Vec<Vec<(String, String)>> = d
            .informs
            .iter()
            .map(|i| {
                i.event
                    .iter()
                    .map(|e| (e.event_code.clone(), e.command_key.clone()))
                    .collect()
            })
            .collect();
        let tc_inform = d
            .informs
            .iter()
            .find(|i| {
                i.event
                    .iter()
                    .any(|e| e.event_code == "M Download" && e.command_key == "fw-1")
            })
            .unwrap_or_else(|| panic!("no M Download in {seen:?}"));
        assert!(tc_inform.event.iter().any(|e| e.event_code == "1 BOOT"));
        assert!(tc_inform
            .event
            .iter()
            .any(|e| e.event_code == "7 TRANSFER COMPLETE"));
        assert_eq!(d.software_version, "9.9.9");
        assert_eq!(d.parameter_key, "boot-1");
    }
    let upload = acs.uploads.lock()[0].clone();
    assert!(String::from_utf8(upload)
        .unwrap()
        .contains("Device.ManagementServer.PeriodicInformInterval\">3600<"));

    // HTTP Connection Request with the credentials the ACS provisioned.
    let cr_url = acs.devices.lock()[serial].cr_url.clone();
    let wrong =
        acs::connreq::http_connection_request(&cr_url, "acs-cr", "nope", &Default::default()).await;
    assert_eq!(wrong, acs::connreq::CrOutcome::AuthFailed);
    let ok =
        acs::connreq::http_connection_request(&cr_url, "acs-cr", "cr-s3cret", &Default::default())
            .await;
    assert_eq!(ok, acs::connreq::CrOutcome::Accepted);
    // The CR session gets a Reboot; the device comes back with 1 BOOT + M Reboot.
    wait_for("reboot session", t, || stage(&acs, serial) >= 4).await;

    // UDP Connection Request (Annex G).
    {
        acs.devices.lock().get_mut(serial).unwrap().stage = 5;
    }
    let udp_addr = acs.devices.lock()[serial].udp_addr.clone();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    acs::connreq::udp_connection_request(&sock, &udp_addr, "acs-cr", "cr-s3cret")
        .await
        .unwrap();
    wait_for("UDP CR session", t, || stage(&acs, serial) >= 6).await;

    // One 401 in total: the challenge is cached and reused across sessions
    // (each on a new TCP connection), with nc incrementing.
    assert_eq!(*acs.unauthorized.lock(), 1);
    assert_eq!(*acs.missing_cookie.lock(), 0);
    runner.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_once_runs_one_bootstrap_session_per_device() {
    let acs = start_acs(Mode::Plain).await;
    let url = format!("http://127.0.0.1:{}/", acs.port);
    let args = sim_args(&[
        "--acs-url",
        &url,
        "--devices",
        "5",
        "--password",
        PASSWORD,
        "--once",
        "--cwmp-version",
        "1.0",
        "--boolean-digits",
        "--start-spread",
        "0.2",
    ]);
    tokio::time::timeout(Duration::from_secs(20), sim::run(args))
        .await
        .expect("--once finishes")
        .expect("all sessions succeed");
    {
        let devs = acs.devices.lock();
        assert_eq!(devs.len(), 5);
        for d in devs.values() {
            assert_eq!(d.informs.len(), 1);
            assert_eq!(d.informs[0].event[0].event_code, "0 BOOTSTRAP");
        }
    }
    assert_eq!(*acs.sessions_done.lock(), 5);

    // Wrong password: sessions fail and --once reports it.
    let args = sim_args(&[
        "--acs-url",
        &url,
        "--password",
        "wrong",
        "--once",
        "--serial-prefix",
        "BAD",
    ]);
    let r = tokio::time::timeout(Duration::from_secs(20), sim::run(args))
        .await
        .unwrap();
    assert!(r.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_load_reports_sessions_and_latency() {
    let acs = start_acs(Mode::Plain).await;
    let url = format!("http://127.0.0.1:{}/acs", acs.port);
    let args = sim_args(&[
        "load",
        "--acs-url",
        &url,
        "--devices",
        "6",
        "--concurrency",
        "3",
        "--sessions",
        "30",
        "--password",
        PASSWORD,
    ]);
    let Some(sim::SimCommand::Load(load)) = args.command else {
        panic!()
    };
    let report = sim::run_load(load).await.unwrap();
    assert_eq!(report.sessions_ok, 30, "{report:?}");
    assert_eq!(report.sessions_failed, 0);
    assert!(report.sessions_per_sec > 0.0);
    assert!(report.latency_ms.p50 > 0.0 && report.latency_ms.p50 <= report.latency_ms.max);
    assert_eq!(
        report.connections, 3,
        "keep-alive: one connection per worker"
    );
    let devs = acs.devices.lock();
    assert_eq!(devs.len(), 6);
    for d in devs.values() {
        assert_eq!(d.informs[0].event[0].event_code, "0 BOOTSTRAP");
        assert_eq!(d.informs[1].event[0].event_code, "2 PERIODIC");
    }
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["sessions_ok"], 30);
    assert!(report.table().contains("sessions/s"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_load_over_tls() {
    let (cfg, pem) = tls_server();
    let acs = start_acs_with(Mode::Plain, Some(cfg)).await;
    let url = format!("https://127.0.0.1:{}/acs", acs.port);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pem).unwrap();
    let ca = ca.to_str().unwrap();
    let load = |extra: &[&str]| {
        let mut a = vec![
            "load",
            "--acs-url",
            &url,
            "--devices",
            "4",
            "--concurrency",
            "2",
            "--sessions",
            "8",
            "--password",
            PASSWORD,
        ];
        a.extend_from_slice(extra);
        let Some(sim::SimCommand::Load(l)) = sim_args(&a).command else {
            panic!()
        };
        l
    };
    // Keep-alive: one TLS connection per worker, certificate checked against --ca-file.
    let r = sim::run_load(load(&["--ca-file", ca])).await.unwrap();
    assert_eq!((r.sessions_ok, r.connections), (8, 2), "{r:?}");
    // A full handshake per session.
    let r = sim::run_load(load(&["--tls-handshake-per-session"]))
        .await
        .unwrap();
    assert_eq!((r.sessions_ok, r.connections), (8, 8), "{r:?}");
    // A CA that did not issue the ACS certificate: every session fails.
    let (_, other_pem) = tls_server();
    let other = dir.path().join("other.pem");
    std::fs::write(&other, other_pem).unwrap();
    let r = sim::run_load(load(&["--ca-file", other.to_str().unwrap()]))
        .await
        .unwrap();
    assert_eq!(r.sessions_ok, 0);
    assert_eq!(r.sessions_failed, 8);
    assert!(
        r.failures.keys().any(|k| k.contains("TLS")),
        "{:?}",
        r.failures
    );
}
