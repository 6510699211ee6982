//! IPDR/SP end to end against the real binaries: `keelson sim ipdr` streams TR-232 bulk-data
//! records to the collector inside `keelson serve` in both connection directions, on SQLite
//! and PostgreSQL, and across a SIGKILL of the server mid-stream. Every record must be stored
//! exactly once (none missing, none duplicated) and linked to its device.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// `--oui`/`--product-class` defaults of `keelson sim ipdr`.
const DEVICE_PREFIX: &str = "02CAFE-SimHGW-";
const UPTIME: &str = "Device.DeviceInfo.UpTime";
/// The simulator's reporting interval: a device's UpTime grows by this much per report.
const UPTIME_STEP: u64 = 300;

/// One simulator run.
struct Sim {
    records: u64,
    devices: u32,
    pairs: usize,
    prefix: &'static str,
    rate: Option<u32>,
}

impl Sim {
    fn args(&self, connection: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = ["sim", "ipdr"]
            .iter()
            .chain(connection)
            .map(|s| s.to_string())
            .collect();
        a.extend([
            "--records".into(),
            self.records.to_string(),
            "--devices".into(),
            self.devices.to_string(),
            "--pairs".into(),
            self.pairs.to_string(),
            "--serial-prefix".into(),
            self.prefix.into(),
            "--json".into(),
        ]);
        if let Some(r) = self.rate {
            a.extend(["--rate".into(), r.to_string()]);
        }
        a
    }

    fn spawn(&self, connection: &[&str], dir: &std::path::Path, name: &str) -> Proc {
        Proc::spawn(
            name,
            &self.args(connection),
            dir.join(format!("{name}.log")),
            &[],
        )
    }

    fn device_ids(&self) -> BTreeSet<String> {
        (0..self.devices)
            .map(|d| format!("{DEVICE_PREFIX}{}{d:08}", self.prefix))
            .collect()
    }
}

/// Waits for the simulator to exit and returns its JSON report (the last JSON line of its
/// output; its log lines go to the same file).
fn wait_sim(sim: &mut Proc, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = sim.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "the IPDR simulator did not finish in {timeout:?}:\n{}",
            sim.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = sim.log_text();
    assert!(
        status.success(),
        "the IPDR simulator failed ({status}):\n{out}"
    );
    out.lines()
        .rev()
        .find_map(|l| {
            serde_json::from_str::<Value>(l.trim())
                .ok()
                .filter(|v| v.get("records_acked").is_some())
        })
        .unwrap_or_else(|| panic!("no JSON report from the simulator:\n{out}"))
}

fn check_report(report: &Value, sim: &Sim) {
    assert_eq!(report["records_acked"], sim.records, "{report}");
    assert_eq!(report["records_generated"], sim.records, "{report}");
    assert_eq!(report["complete"], true, "{report}");
    assert!(report["connections"].as_u64().unwrap() >= 1, "{report}");
}

/// Sum of `records` (stored, duplicates not counted) over every IPDR session document.
fn stored_records(s: &Server) -> i64 {
    let (st, v) = s.get("/api/v1/ipdr/sessions");
    assert_eq!(st, 200, "{v}");
    v["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|r| r["records"].as_i64().unwrap())
        .sum()
}

/// Every bulk-data sample, page by page (the NBI returns at most 10,000 per request).
fn all_samples(s: &Server) -> Vec<Value> {
    let mut all = Vec::new();
    loop {
        let (st, v) = s.get(&format!(
            "/api/v1/bulkdata/samples?limit=10000&offset={}",
            all.len()
        ));
        assert_eq!(st, 200, "{v}");
        let page = v["samples"].as_array().unwrap_or_else(|| panic!("{v}"));
        let n = page.len();
        all.extend(page.iter().cloned());
        if n < 10_000 {
            return all;
        }
    }
}

fn assert_no_panic(s: &Server) {
    let logs = s.all_logs();
    assert!(
        !logs.contains("panicked"),
        "a keelson serve process panicked:\n{logs}"
    );
}

/// What the NBI shows after a complete run: exactly `sim.records` records stored, each with
/// its `sim.pairs` samples, linked to its device; every report of every device exactly once.
///
/// A report is identified by (device, UpTime value), not by (device, path, sampled_at): the
/// simulator stamps every record it generates in one burst with the same IPDRCreationTime
/// (`sim::ipdr::Sim::generate` reads the clock once per call), so a device's distinct reports
/// legitimately share `sampled_at`. Its UpTime, though, is `base + round * 300`: sorted, a
/// device's UpTime values must step by exactly 300, `records / devices` of them; a lost
/// report leaves a gap, a duplicated one a zero step.
fn check_stored(s: &Server, sim: &Sim, exporter: &str) {
    let n = sim.records;
    assert_eq!(
        stored_records(s),
        n as i64,
        "sum of `records` over /api/v1/ipdr/sessions"
    );
    let (_, e) = s.get("/api/v1/ipdr/exporters");
    let exporters = e["exporters"].as_array().unwrap_or_else(|| panic!("{e}"));
    let ids: Vec<&str> = exporters
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [exporter], "{e}");
    assert_eq!(exporters[0]["records_total"], n, "{e}");

    let samples = all_samples(s);
    assert_eq!(
        samples.len() as u64,
        n * sim.pairs as u64,
        "every record's {} pairs stored exactly once",
        sim.pairs
    );
    // Grouped by the record they came from: n records, `pairs` samples each, one device each.
    // (The store is moving from one row per sample with `record_id` to one row per report
    // with `report_id`; an IPDR record is one report either way.)
    let mut by_record: BTreeMap<i64, Vec<&Value>> = BTreeMap::new();
    for x in &samples {
        let id = x
            .get("report_id")
            .or_else(|| x.get("record_id"))
            .and_then(Value::as_i64)
            .unwrap_or_else(|| panic!("IPDR sample without report_id/record_id: {x}"));
        by_record.entry(id).or_default().push(x);
    }
    assert_eq!(
        by_record.len() as u64,
        n,
        "distinct records behind the samples"
    );
    for (id, xs) in &by_record {
        assert_eq!(xs.len(), sim.pairs, "samples of record {id}: {xs:?}");
        let paths: BTreeSet<&str> = xs.iter().map(|x| x["path"].as_str().unwrap()).collect();
        assert_eq!(paths.len(), sim.pairs, "record {id}: {xs:?}");
        let devs: BTreeSet<&str> = xs
            .iter()
            .map(|x| x["device_id"].as_str().unwrap_or("<none>"))
            .collect();
        assert_eq!(devs.len(), 1, "record {id} spans devices: {xs:?}");
        assert!(
            xs.iter()
                .all(|x| x["sampled_at"] == xs[0]["sampled_at"] && x["source"] == xs[0]["source"]),
            "record {id}: {xs:?}"
        );
    }

    // Per device: n/devices reports, i.e. UpTime values base + r*300 for every round r exactly
    // once (a missing report leaves a gap, a duplicated one a repeated value).
    let per_device = n / u64::from(sim.devices);
    let mut uptimes: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    let mut per_dev_count: BTreeMap<&str, u64> = BTreeMap::new();
    for x in &samples {
        let dev = x["device_id"]
            .as_str()
            .unwrap_or_else(|| panic!("sample not linked to a device: {x}"));
        *per_dev_count.entry(dev).or_default() += 1;
        if x["path"] == UPTIME {
            uptimes
                .entry(dev)
                .or_default()
                .push(x["value"].as_str().unwrap().parse().unwrap());
        }
    }
    let want: BTreeSet<String> = sim.device_ids();
    let got: BTreeSet<String> = per_dev_count.keys().map(|d| d.to_string()).collect();
    assert_eq!(got, want, "devices the samples are linked to");
    for (dev, count) in &per_dev_count {
        assert_eq!(
            *count,
            per_device * sim.pairs as u64,
            "samples of device {dev}"
        );
    }
    for (dev, mut v) in uptimes {
        v.sort_unstable();
        assert_eq!(v.len() as u64, per_device, "UpTime reports of {dev}");
        let gaps: Vec<(u64, u64)> = v
            .windows(2)
            .filter(|w| w[1] - w[0] != UPTIME_STEP)
            .map(|w| (w[0], w[1]))
            .collect();
        assert!(
            gaps.is_empty(),
            "{dev}: reports missing or repeated (UpTime pairs not {UPTIME_STEP} apart): {:?}",
            &gaps[..gaps.len().min(10)]
        );
    }
    // The device filter of the NBI agrees.
    for dev in &want {
        let (st, v) = s.get(&format!(
            "/api/v1/bulkdata/samples?device={dev}&path={UPTIME}&limit=10000"
        ));
        assert_eq!(st, 200, "{v}");
        assert_eq!(
            v["samples"].as_array().unwrap().len() as u64,
            per_device,
            "{dev}"
        );
    }
}

// ---------------------------------------------------------------------------
// 1. The exporter connects in.

fn exporter_connects_in(database_url: Option<String>, prefix: &'static str) {
    let s = Server::start(ServerOpts {
        database_url,
        ..Default::default()
    });
    let sim = Sim {
        records: 2_000,
        devices: 4,
        pairs: 5,
        prefix,
        rate: None,
    };
    let collector = format!("127.0.0.1:{}", s.ipdr_port);
    let mut p = sim.spawn(&["--collector", &collector], s.dir(), "sim-ipdr");
    let report = wait_sim(&mut p, Duration::from_secs(60));
    check_report(&report, &sim);
    // Acknowledged means committed: everything is queryable now.
    check_stored(&s, &sim, "127.0.0.1");
    assert_no_panic(&s);
}

#[test]
fn exporter_connects_in_sqlite() {
    exporter_connects_in(None, "INS");
}

#[test]
fn exporter_connects_in_postgres() {
    let Some(pg) = postgres() else { return };
    exporter_connects_in(Some(pg.url().to_string()), "INP");
}

// ---------------------------------------------------------------------------
// 2. The collector connects out to a listening exporter.

fn collector_connects_out(database_url: Option<String>, prefix: &'static str) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let sim = Sim {
        records: 2_000,
        devices: 4,
        pairs: 5,
        prefix,
        rate: None,
    };
    let listen = format!("127.0.0.1:{port}");
    let mut p = sim.spawn(&["--listen", &listen], dir.path(), "sim-ipdr-listen");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !p.log_text().contains("IPDR simulator listening") {
        assert!(
            p.child.try_wait().unwrap().is_none() && Instant::now() < deadline,
            "the listening simulator did not start:\n{}",
            p.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let s = Server::start(ServerOpts {
        database_url,
        extra_toml: format!("exporters = [\"{listen}\"]\n"),
        ..Default::default()
    });
    let report = wait_sim(&mut p, Duration::from_secs(60));
    check_report(&report, &sim);
    check_stored(&s, &sim, &listen);
    assert_no_panic(&s);
}

#[test]
fn collector_connects_out_sqlite() {
    collector_connects_out(None, "OUS");
}

#[test]
fn collector_connects_out_postgres() {
    let Some(pg) = postgres() else { return };
    collector_connects_out(Some(pg.url().to_string()), "OUP");
}

// ---------------------------------------------------------------------------
// 3. SIGKILL of the server mid-stream, restart on the same data: every record exactly once.

fn sigkill_mid_stream(database_url: Option<String>, prefix: &'static str) {
    let mut s = Server::start(ServerOpts {
        database_url,
        ..Default::default()
    });
    let sim = Sim {
        records: 16_000,
        devices: 4,
        pairs: 3,
        prefix,
        rate: Some(4_000),
    };
    let collector = format!("127.0.0.1:{}", s.ipdr_port);
    // The simulator sends a fifth of the records, then holds the rest until its connection
    // breaks: the kill lands mid-stream without racing the stream's end.
    let n = sim.records as i64;
    let pause = (n / 5).to_string();
    let mut p = sim.spawn(
        &["--collector", &collector, "--pause-at", &pause],
        s.dir(),
        "sim-ipdr",
    );
    let before = s.wait_for(
        "the first fifth of the records stored",
        Duration::from_secs(30),
        |s| {
            let k = stored_records(s);
            (k >= n / 5).then_some(k)
        },
    );
    assert!(before < n, "the rest is held until the kill");
    s.proc.kill(); // SIGKILL
    let at_kill = Instant::now();
    assert!(
        p.child.try_wait().unwrap().is_none(),
        "the simulator ended with the server:\n{}",
        p.log_text()
    );
    s.restart();
    let after_restart = stored_records(&s);
    assert!(
        after_restart >= before && after_restart < n,
        "stored before the kill {before}, after the restart {after_restart}"
    );
    let report = wait_sim(&mut p, Duration::from_secs(60));
    eprintln!(
        "killed at {before} of {n} records stored; simulator done {:.1} s after the kill: {report}",
        at_kill.elapsed().as_secs_f64()
    );
    check_report(&report, &sim);
    assert!(
        report["connections"].as_u64().unwrap() >= 2,
        "the simulator reconnected: {report}"
    );
    check_stored(&s, &sim, "127.0.0.1");
    assert_no_panic(&s);
    // Diagnostics: how many resent records the restarted server found already stored
    // (committed by the killed process but never acknowledged).
    let restarted = strip_ansi(&s.proc.log_text());
    eprintln!(
        "restarted server: {} commits, {} records inserted, {} duplicates refused",
        restarted.matches("IPDR records committed").count(),
        logged_sum(&restarted, "inserted="),
        logged_sum(&restarted, "duplicates=")
    );
}

/// The log without terminal colour sequences (`ESC [ ... m`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Sum of the numbers right after `key` in the log.
fn logged_sum(log: &str, key: &str) -> u64 {
    log.match_indices(key)
        .filter_map(|(i, _)| {
            let rest = &log[i + key.len()..];
            let end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            rest[..end].parse::<u64>().ok()
        })
        .sum()
}

#[test]
fn sigkill_mid_stream_sqlite() {
    sigkill_mid_stream(None, "KLS");
}

#[test]
fn sigkill_mid_stream_postgres() {
    let Some(pg) = postgres() else { return };
    sigkill_mid_stream(Some(pg.url().to_string()), "KLP");
}

// ---------------------------------------------------------------------------
// 4. Session and exporter state from the collector's events.

/// Two exporters on one host (so one exporter id) with the same sessionId, in parallel:
/// each document gets its own session row, started and stopped, with its own count, and the
/// exporter ends up `disconnected`, `inbound`.
#[test]
fn sessions_of_exporters_on_one_host_are_tracked() {
    let s = Server::start(ServerOpts::default());
    let collector = format!("127.0.0.1:{}", s.ipdr_port);
    let sims = [
        Sim {
            records: 700,
            devices: 2,
            pairs: 3,
            prefix: "SSA",
            rate: None,
        },
        Sim {
            records: 900,
            devices: 2,
            pairs: 3,
            prefix: "SSB",
            rate: None,
        },
    ];
    let mut procs: Vec<Proc> = sims
        .iter()
        .enumerate()
        .map(|(i, sim)| sim.spawn(&["--collector", &collector], s.dir(), &format!("sim-{i}")))
        .collect();
    for (p, sim) in procs.iter_mut().zip(&sims) {
        let report = wait_sim(p, Duration::from_secs(60));
        check_report(&report, sim);
    }
    let sessions = s.wait_for("both sessions stopped", Duration::from_secs(10), |s| {
        let (_, v) = s.get("/api/v1/ipdr/sessions");
        let rows = v["sessions"].as_array()?.clone();
        (rows.len() == 2 && rows.iter().all(|r| !r["stopped_at"].is_null())).then_some(rows)
    });
    let mut counts: Vec<i64> = sessions
        .iter()
        .map(|r| {
            assert_eq!(r["exporter_id"], "127.0.0.1", "{r}");
            assert_eq!(r["session_id"], i64::from(b'A'), "{r}");
            assert!(r["template"].is_array(), "templates in force recorded: {r}");
            r["records"].as_i64().unwrap()
        })
        .collect();
    counts.sort();
    assert_eq!(counts, [700, 900]);
    assert_ne!(sessions[0]["document_id"], sessions[1]["document_id"]);
    let e = s.wait_for("exporter disconnected", Duration::from_secs(10), |s| {
        let (_, v) = s.get("/api/v1/ipdr/exporters");
        let e = v["exporters"].as_array()?.first()?.clone();
        (e["state"] == "disconnected").then_some(e)
    });
    assert_eq!(e["direction"], "inbound", "{e}");
    assert_eq!(e["records_total"], 1600, "{e}");
    assert!(!e["last_connected_at"].is_null(), "{e}");
    assert_no_panic(&s);
}
