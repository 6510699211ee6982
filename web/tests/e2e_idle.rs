//! Thousands of idle and trickling connections on the CWMP, northbound and IPDR/SP
//! listeners must not stop real sessions: 5,000 connections that send nothing and 60 that
//! send one byte a second are held open while simulated CPEs run their sessions to the end;
//! the server then closes the idle and trickling ones itself (header timeout, IPDR CONNECT
//! timeout).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

/// Whether the server has closed `s` (end of stream or reset), without waiting.
fn closed(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 64];
    let r = (&*s).read(&mut b);
    s.set_nonblocking(false).unwrap();
    match r {
        Ok(0) => true,
        Ok(_) => false, // an answer (e.g. 408) is followed by the close
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

#[test]
fn idle_and_slow_connections_do_not_stop_real_sessions() {
    rlimit::increase_nofile_limit(u64::MAX).unwrap();
    let s = Server::start(ServerOpts {
        // Long enough for the devices' sessions to run while the idle connections are held.
        cwmp_toml: "header_timeout_secs = 30\n".into(),
        nbi_toml: "header_timeout_secs = 30\n".into(),
        extra_toml: "sctp_listen = \"\"\nconnect_timeout_secs = 30\n".into(),
        ..Default::default()
    });
    // 5,000 idle connections, each address within its listener's per-address cap:
    // CWMP 2,100 (1,000 per address), NBI 900 (250 per address, leaving room under the NBI's
    // total of 1,024 for the trickling ones and this test's own requests), IPDR 2,000.
    let mut idle = Vec::new();
    for (port, per_address, n) in [
        (s.http_port, 1_000, 2_100),
        (s.nbi_port, 250, 900),
        (s.ipdr_port, 250, 2_000),
    ] {
        for i in 0..n {
            let ip = format!("127.0.0.{}", 2 + i / per_address);
            idle.push(connect_from(&ip, port));
        }
    }
    assert_eq!(idle.len(), 5_000);
    // 60 trickling connections: one byte of a request head per second.
    let mut slow: Vec<TcpStream> = (0..60)
        .map(|i| {
            let port = [s.http_port, s.nbi_port][i % 2];
            connect_from("127.0.0.30", port)
        })
        .collect();
    let trickle = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n";
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let trickler = {
        let stop = stop.clone();
        let mut socks: Vec<TcpStream> = slow.iter().map(|s| s.try_clone().unwrap()).collect();
        std::thread::spawn(move || {
            let mut k = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && k < trickle.len() {
                for s in &mut socks {
                    let _ = s.write_all(&trickle[k..k + 1]);
                }
                k += 1;
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };

    // Real devices run their sessions to the end meanwhile.
    let t0 = Instant::now();
    let out = keelson()
        .args([
            "sim",
            "--acs-url",
            &s.acs_url(false),
            "--devices",
            "50",
            "--once",
            "--retry-scale",
            "0.01",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "simulated devices failed their sessions:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, d) = s.get("/api/v1/devices?limit=100");
    assert_eq!(d["devices"].as_array().map(Vec::len), Some(50), "{d}");
    // The sessions ran while the idle connections were held: they are still open now.
    let (_, h) = s.get("/healthz");
    for (listener, n) in [("cwmp", 2_100), ("nbi", 900), ("ipdr", 2_000)] {
        assert!(
            h["connections"][listener]["open"].as_u64() >= Some(n),
            "{listener}: the idle connections were still open: {h}"
        );
    }
    println!(
        "50 devices completed their sessions in {:?} beside 5,060 idle or trickling connections",
        t0.elapsed()
    );

    // The server closes the idle and trickling connections itself.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let open = idle
            .iter()
            .chain(slow.iter())
            .filter(|c| !closed(c))
            .count();
        if open == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} idle or trickling connections still open after 60 s"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    trickler.join().unwrap();
    slow.clear();
    // And still serves.
    let (st, _) = s.get("/healthz");
    assert_eq!(st, 200);
}
