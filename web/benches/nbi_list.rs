//! NBI device lists under an access scope, on a fleet of 100,000 devices: the real
//! `keelson serve` (SQLite by default, `NBI_BENCH_DATABASE_URL=postgres://…` for PostgreSQL)
//! on loopback, devices written through the store, then `GET /api/v1/devices` pages timed by
//! the server (`Server-Timing`) and by the client.
//!
//! `cargo bench -p keelson --bench nbi_list` (`NBI_BENCH_DEVICES`, `NBI_BENCH_REQUESTS`).
//! The target: p99 server time under 50 ms for a scoped list.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use store::{InformEvent, InformParam, InformRecord, Store, StoreOptions};

const PRODUCT_CLASSES: usize = 4;

fn inform(i: usize) -> InformRecord {
    let serial = format!("SN{i:07}");
    let pc = format!("PC{}", i % PRODUCT_CLASSES);
    InformRecord {
        device_id: format!("00D09E-{pc}-{serial}"),
        oui: "00D09E".into(),
        product_class: pc,
        serial_number: serial,
        manufacturer: "Acme".into(),
        root_object: "Device.".into(),
        software_version: Some(format!("1.{}", i % 7)),
        hardware_version: Some("hw1".into()),
        connection_request_url: Some(format!("http://10.0.{}.{}:7547/", (i / 250) % 250, i % 250)),
        udp_connection_request_address: None,
        parameter_key: Some(String::new()),
        cwmp_ns: "urn:dslforum-org:cwmp-1-4".into(),
        cwmp_version: "1.4".into(),
        remote_addr: Some("192.0.2.1:40000".into()),
        current_time: Some("2025-11-21T10:00:00Z".into()),
        retry_count: 0,
        received_at: Utc::now(),
        session_id: Some(format!("s{i}")),
        events: vec![InformEvent {
            code: "1 BOOT".into(),
            command_key: String::new(),
        }],
        params: (0..6)
            .map(|p| InformParam {
                path: format!("Device.DeviceInfo.X_Param{p}"),
                value: format!("value-{p}-{}", i % 100),
                xsd_type: Some("xsd:string".into()),
            })
            .collect(),
        bootstrap: false,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn main() {
    let devices: usize = std::env::var("NBI_BENCH_DEVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let requests: usize = std::env::var("NBI_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let dir = tempfile::tempdir().unwrap();
    let url = std::env::var("NBI_BENCH_DATABASE_URL").unwrap_or_else(|_| {
        dir.path()
            .join("data/keelson.db")
            .to_string_lossy()
            .into_owned()
    });
    std::fs::create_dir_all(dir.path().join("data")).unwrap();

    // The fleet, written through the store (group commits of concurrent Informs).
    let rt = tokio::runtime::Runtime::new().unwrap();
    let t0 = Instant::now();
    rt.block_on(async {
        let st = Store::open(&url, StoreOptions::default()).await.unwrap();
        let mut next = 0usize;
        while next < devices {
            let end = (next + 2048).min(devices);
            let jobs: Vec<_> = (next..end)
                .map(|i| {
                    let st = st.clone();
                    tokio::spawn(async move { st.record_inform(inform(i)).await.unwrap() })
                })
                .collect();
            for j in jobs {
                j.await.unwrap();
            }
            next = end;
        }
        // Every tenth device tagged "lab"; tenant "t1" = ProductClass PC1.
        let tags: Vec<_> = (0..devices)
            .step_by(10)
            .map(|i| {
                let st = st.clone();
                let id = inform(i).device_id;
                tokio::spawn(async move {
                    st.change_tags(&id, vec!["lab".into()], vec![])
                        .await
                        .unwrap()
                })
            })
            .collect();
        for t in tags {
            t.await.unwrap();
        }
        st.put_tenant(store::Tenant {
            name: "t1".into(),
            rules: vec![store::DeviceFilter {
                product_class: vec!["PC1".into()],
                ..Default::default()
            }],
        })
        .await
        .unwrap();
    });
    eprintln!(
        "{devices} devices written in {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    let bin = env!("CARGO_BIN_EXE_keelson");
    let cfg = dir.path().join("keelson.toml");
    let nbi = free_port();
    std::fs::write(
        &cfg,
        format!(
            "data_dir = {:?}\ndatabase_url = {url:?}\n[cwmp]\nhttp_listen = \"127.0.0.1:{}\"\nhttps_listen = \"\"\n[nbi]\nlisten = \"127.0.0.1:{nbi}\"\n[ipdr]\nlisten = \"\"\n[log]\nlevel = \"warn\"\n",
            dir.path().join("data").to_string_lossy(),
            free_port()
        ),
    )
    .unwrap();
    let token = |name: &str, role: &str, tenant: Option<&str>| -> String {
        let mut c = Command::new(bin);
        c.args([
            "token", "create", "--name", name, "--role", role, "--config",
        ])
        .arg(&cfg);
        if let Some(t) = tenant {
            c.args(["--tenant", t]);
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let admin = token("bench-admin", "admin", None);
    let tenant = token("bench-tenant", "viewer", Some("t1"));
    let mut server = Command::new(bin)
        .args(["serve", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let base = format!("http://127.0.0.1:{nbi}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while agent.get(&format!("{base}/healthz")).call().is_err() {
        assert!(Instant::now() < deadline, "keelson serve did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Roles scoped by ProductClass and by tag.
    for (name, scope) in [
        ("pc2", serde_json::json!({"product_class": ["PC2"]})),
        ("lab", serde_json::json!({"tags": ["lab"]})),
        (
            "sw",
            serde_json::json!({"product_class": ["PC3"], "software_version": ["1.3"]}),
        ),
    ] {
        let r = agent
            .post(&format!("{base}/api/v1/roles"))
            .header("Authorization", &format!("Bearer {admin}"))
            .send_json(
                serde_json::json!({"name": name, "permissions": ["devices:read"], "scope": scope}),
            )
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let pc2 = token("bench-pc2", "pc2", None);
    let lab = token("bench-lab", "lab", None);
    let sw = token("bench-sw", "sw", None);

    let cases: Vec<(&str, &str, String)> = vec![
        (
            "admin, first page",
            "/api/v1/devices?limit=100",
            admin.clone(),
        ),
        (
            "scope ProductClass (25%)",
            "/api/v1/devices?limit=100",
            pc2.clone(),
        ),
        (
            "scope ProductClass, sorted by last inform",
            "/api/v1/devices?limit=100&sort=-last_inform_at",
            pc2.clone(),
        ),
        (
            "scope ProductClass, page at offset 20,000",
            "/api/v1/devices?limit=100&offset=20000",
            pc2.clone(),
        ),
        (
            "scope ProductClass + version",
            "/api/v1/devices?limit=100",
            sw.clone(),
        ),
        ("scope tag (10%)", "/api/v1/devices?limit=100", lab.clone()),
        ("tenant (25%)", "/api/v1/devices?limit=100", tenant.clone()),
        (
            "tenant, text search",
            "/api/v1/devices?limit=100&q=sn00001",
            tenant.clone(),
        ),
    ];
    println!("{devices} devices, {requests} requests per case (ms)");
    println!(
        "{:<44} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "case", "total", "srv p50", "srv p99", "srv max", "cli p50", "cli p99"
    );
    for (name, path, tok) in &cases {
        let mut server_ms = Vec::with_capacity(requests);
        let mut client_ms = Vec::with_capacity(requests);
        let mut total = 0;
        for i in 0..requests + 20 {
            let t = Instant::now();
            let mut r = agent
                .get(&format!("{base}{path}"))
                .header("Authorization", &format!("Bearer {tok}"))
                .call()
                .unwrap();
            assert_eq!(r.status(), 200, "{name}");
            let timing = r
                .headers()
                .get("server-timing")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("app;dur="))
                .and_then(|v| v.parse::<f64>().ok())
                .expect("Server-Timing");
            let body: serde_json::Value = r.body_mut().read_json().unwrap();
            let cli = t.elapsed().as_secs_f64() * 1000.0;
            total = body["total"].as_i64().unwrap();
            if i >= 20 {
                server_ms.push(timing);
                client_ms.push(cli);
            }
        }
        server_ms.sort_by(f64::total_cmp);
        client_ms.sort_by(f64::total_cmp);
        println!(
            "{:<44} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            name,
            total,
            percentile(&server_ms, 0.5),
            percentile(&server_ms, 0.99),
            server_ms.last().copied().unwrap_or(0.0),
            percentile(&client_ms, 0.5),
            percentile(&client_ms, 0.99),
        );
    }
    let _ = server.kill();
    let _ = server.wait();
}
