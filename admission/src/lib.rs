//! Connection admission for every listener (CWMP, northbound, IPDR/SP): an optional
//! allow-list of peer networks and caps on open connections per peer address and in total,
//! checked the moment a connection is accepted. A connection that is not allowed or over a
//! cap is closed at once, so thousands of idle or trickling connections from one address cost
//! the others nothing; every refusal is logged (at most one line per 10 s per listener, so a
//! flood does not flood the log) and counted.
//!
//! An admitted connection holds a [`Slot`]; dropping it (when the connection ends, also when
//! its task panics and unwinds) gives the place back and runs the listener's close hook.

// Outside input: no panicking arithmetic, indexing or unwrapping here (clippy enforces it).
#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use ipnet::IpNet;

/// Caps of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub per_address: usize,
    pub total: usize,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The peer is outside the allow-list.
    NotAllowed,
    /// The peer address has `per_address` connections open.
    PerAddress,
    /// The listener has `total` connections open.
    Total,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::NotAllowed => "not in the allow-list",
            Refusal::PerAddress => "too many connections from this address",
            Refusal::Total => "too many connections",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counts of one listener's refusals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refused {
    pub not_allowed: u64,
    pub per_address: u64,
    pub total: u64,
}

impl Refused {
    pub fn sum(&self) -> u64 {
        self.not_allowed
            .saturating_add(self.per_address)
            .saturating_add(self.total)
    }
}

/// What a close hook is told: the connection id given to [`Registry::admit`].
pub type CloseHook = Arc<dyn Fn(u64) + Send + Sync>;

/// The open connections of one listener.
pub struct Registry {
    name: &'static str,
    caps: Caps,
    /// Empty: any peer.
    allow: Vec<IpNet>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    total: AtomicUsize,
    refused_not_allowed: AtomicU64,
    refused_per_address: AtomicU64,
    refused_total: AtomicU64,
    last_warning: Mutex<Option<Instant>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("name", &self.name)
            .field("caps", &self.caps)
            .field("allow", &self.allow)
            .field("open", &self.open())
            .field("refused", &self.refused())
            .finish()
    }
}

/// An admitted connection's place; given back on drop.
pub struct Slot {
    registry: Arc<Registry>,
    ip: IpAddr,
    conn_id: u64,
    on_close: Option<CloseHook>,
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot")
            .field("listener", &self.registry.name)
            .field("ip", &self.ip)
            .field("conn_id", &self.conn_id)
            .finish()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.registry.release(self.ip);
        if let Some(hook) = &self.on_close {
            hook(self.conn_id);
        }
    }
}

/// IPv4-mapped IPv6 peers (`::ffff:a.b.c.d`, seen on dual-stack sockets) count and match as
/// the IPv4 address they are.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl Registry {
    /// A registry that admits any peer, within `caps`.
    pub fn new(name: &'static str, caps: Caps) -> Arc<Registry> {
        Self::with_allow(name, caps, Vec::new())
    }

    /// A registry that admits peers in `allow` (empty: any peer), within `caps`.
    pub fn with_allow(name: &'static str, caps: Caps, allow: Vec<IpNet>) -> Arc<Registry> {
        Arc::new(Registry {
            name,
            caps: Caps {
                per_address: caps.per_address.max(1),
                total: caps.total.max(1),
            },
            allow,
            per_ip: Mutex::new(HashMap::new()),
            total: AtomicUsize::new(0),
            refused_not_allowed: AtomicU64::new(0),
            refused_per_address: AtomicU64::new(0),
            refused_total: AtomicU64::new(0),
            last_warning: Mutex::new(None),
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn caps(&self) -> Caps {
        self.caps
    }

    /// Whether `ip` is in the allow-list (any address when the list is empty).
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&ip))
    }

    /// Connections refused so far, by reason.
    pub fn refused(&self) -> Refused {
        Refused {
            not_allowed: self.refused_not_allowed.load(Ordering::Relaxed),
            per_address: self.refused_per_address.load(Ordering::Relaxed),
            total: self.refused_total.load(Ordering::Relaxed),
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Takes a place for a connection from `ip`, or says why not (the refusal is counted and
    /// logged).
    pub fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        conn_id: u64,
        on_close: Option<CloseHook>,
    ) -> Result<Slot, Refusal> {
        let ip = canonical(ip);
        if !self.allows(ip) {
            return Err(self.refuse(ip, Refusal::NotAllowed));
        }
        if self.total.fetch_add(1, Ordering::AcqRel) >= self.caps.total {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(self.refuse(ip, Refusal::Total));
        }
        {
            let mut map = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
            let n = map.entry(ip).or_insert(0);
            if *n >= self.caps.per_address {
                drop(map);
                self.total.fetch_sub(1, Ordering::AcqRel);
                return Err(self.refuse(ip, Refusal::PerAddress));
            }
            *n = n.saturating_add(1);
        }
        Ok(Slot {
            registry: self.clone(),
            ip,
            conn_id,
            on_close,
        })
    }

    fn release(&self, ip: IpAddr) {
        self.total.fetch_sub(1, Ordering::AcqRel);
        let mut map = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&ip);
            }
        }
    }

    fn refuse(&self, ip: IpAddr, why: Refusal) -> Refusal {
        let counter = match why {
            Refusal::NotAllowed => &self.refused_not_allowed,
            Refusal::PerAddress => &self.refused_per_address,
            Refusal::Total => &self.refused_total,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let mut last = self.last_warning.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            *last = Some(Instant::now());
            tracing::warn!(
                listener = self.name,
                peer = %ip,
                reason = why.as_str(),
                per_address = self.caps.per_address,
                total = self.caps.total,
                refused_so_far = self.refused().sum(),
                "connection refused"
            );
        }
        why
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
    use super::*;

    #[test]
    fn caps_per_address_and_in_total() {
        let r = Registry::new(
            "test",
            Caps {
                per_address: 2,
                total: 3,
            },
        );
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let closed = Arc::new(AtomicUsize::new(0));
        let hook: CloseHook = {
            let closed = closed.clone();
            Arc::new(move |_| {
                closed.fetch_add(1, Ordering::Relaxed);
            })
        };
        let a1 = r.admit(a, 1, Some(hook.clone())).unwrap();
        let _a2 = r.admit(a, 2, None).unwrap();
        assert_eq!(r.admit(a, 3, None).unwrap_err(), Refusal::PerAddress);
        let _b1 = r.admit(b, 4, None).unwrap();
        assert_eq!(r.admit(b, 5, None).unwrap_err(), Refusal::Total);
        assert_eq!(r.refused().sum(), 2);
        drop(a1);
        assert_eq!(closed.load(Ordering::Relaxed), 1, "close hook ran");
        assert_eq!(r.open(), 2);
        assert!(r.admit(b, 6, None).is_ok(), "a place was given back");
    }

    #[test]
    fn allow_list_and_mapped_addresses() {
        let r = Registry::with_allow(
            "test",
            Caps {
                per_address: 1,
                total: 10,
            },
            vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
        );
        let outside: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(r.admit(outside, 1, None).unwrap_err(), Refusal::NotAllowed);
        assert_eq!(r.refused().not_allowed, 1);
        let mapped: IpAddr = "::ffff:127.0.0.9".parse().unwrap();
        let plain: IpAddr = "127.0.0.9".parse().unwrap();
        let _held = r.admit(mapped, 2, None).unwrap();
        assert_eq!(
            r.admit(plain, 3, None).unwrap_err(),
            Refusal::PerAddress,
            "a mapped address counts as its IPv4 address"
        );
        let _v6 = r.admit("::1".parse().unwrap(), 4, None).unwrap();
        assert_eq!(r.open(), 2);
    }
}
