//! Shared helpers: golden vectors, a tiny pcapng reader, a seeded generator.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Instant;

use ipdr::codec::Capabilities;
use ipdr::collector::{Collector, CollectorConfig, ConnectionInfo, Direction, Output};
use ipdr::Message;

pub const GOLDEN_JSON: &str = include_str!("../data/amdocs-exporter-session.json");
pub const GOLDEN_PCAP: &[u8] = include_bytes!("../data/amdocs-exporter-session.pcap");

pub fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2));
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// One message of the golden session.
#[derive(Debug, Clone)]
pub struct Golden {
    pub from_exporter: bool,
    pub name: String,
    pub bytes: Vec<u8>,
}

pub fn golden() -> Vec<Golden> {
    let v: serde_json::Value = serde_json::from_str(GOLDEN_JSON).unwrap();
    v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| Golden {
            from_exporter: m["dir"].as_str().unwrap() == "E->C",
            name: m["msg"].as_str().unwrap().to_string(),
            bytes: unhex(m["hex"].as_str().unwrap()),
        })
        .collect()
}

/// The golden message named `name` (n-th occurrence, from 0).
pub fn golden_msg(name: &str, n: usize) -> Vec<u8> {
    golden()
        .into_iter()
        .filter(|g| g.name == name)
        .nth(n)
        .unwrap()
        .bytes
}

/// TCP payload segments of the capture, in capture order: (from_exporter, bytes).
/// The exporter listened on port 14738.
pub fn pcap_segments() -> Vec<(bool, Vec<u8>)> {
    let f = GOLDEN_PCAP;
    let le = |o: usize| u32::from_le_bytes([f[o], f[o + 1], f[o + 2], f[o + 3]]);
    let mut off = 0;
    let mut out = Vec::new();
    while off + 12 <= f.len() {
        let (bt, bl) = (le(off), le(off + 4) as usize);
        if bt == 6 {
            let cap = le(off + 20) as usize;
            let pkt = &f[off + 28..off + 28 + cap];
            let ip = &pkt[14..]; // Ethernet
            let ihl = (ip[0] & 15) as usize * 4;
            let tcp = &ip[ihl..];
            let sport = u16::from_be_bytes([tcp[0], tcp[1]]);
            let doff = (tcp[12] >> 4) as usize * 4;
            let payload = &tcp[doff..];
            if !payload.is_empty() {
                out.push((sport == 14738, payload.to_vec()));
            }
        }
        off += bl;
    }
    out
}

/// The configuration that reproduces the golden collector's bytes.
pub fn golden_config() -> CollectorConfig {
    CollectorConfig {
        vendor_id: "mini-collector".into(),
        capabilities: Capabilities::MULTISESSION,
        keep_alive_interval: 30,
        ..CollectorConfig::default()
    }
}

pub fn golden_collector(now: Instant) -> Collector {
    Collector::new(
        Arc::new(golden_config()),
        ConnectionInfo {
            exporter: Arc::from("amdocs-sim"),
            direction: Direction::Outbound {
                local: SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 59708),
            },
            unix_time: 1_795_239_057,
            nonce: 0x0102_0304_0506_0708,
        },
        now,
    )
}

pub fn drain(c: &mut Collector) -> Vec<Output> {
    std::iter::from_fn(|| c.poll_output()).collect()
}

pub fn sent(outs: &[Output]) -> Vec<Message> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

pub fn sent_bytes(outs: &[Output]) -> Vec<Vec<u8>> {
    sent(outs).iter().map(|m| m.to_bytes().unwrap()).collect()
}

pub fn persisted(outs: &[Output]) -> Vec<ipdr::Record> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Persist(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

pub fn closed(outs: &[Output]) -> bool {
    outs.iter().any(|o| matches!(o, Output::Close))
}

/// xorshift64*: deterministic, dependency-free.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}
