//! Load and look-up benchmark (not a test; `harness = false`):
//!
//!     cargo bench -p datamodel --bench load            # BENCH_ITERS=20 by default
//!
//! Loads tr-181-2-19-1-cwmp-full.xml (from shared/datamodels, else the embedded copy) N times
//! and reports min/median load time, the memory the load peaks at and what the model retains
//! (a counting global allocator), then look-ups per second over a mix of concrete paths.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use datamodel::{Lookup, Registry};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(l.size(), Relaxed) + l.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        CURRENT.fetch_sub(l.size(), Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            if new > l.size() {
                let now = CURRENT.fetch_add(new - l.size(), Relaxed) + (new - l.size());
                PEAK.fetch_max(now, Relaxed);
            } else {
                CURRENT.fetch_sub(l.size() - new, Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const FILE: &str = "tr-181-2-19-1-cwmp-full.xml";

fn shared_file() -> Option<PathBuf> {
    if let Some(s) = std::env::var_os("KEELSON_SHARED") {
        let p = PathBuf::from(s).join("datamodels").join(FILE);
        return p.is_file().then_some(p);
    }
    let mut dir = Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    while let Some(d) = dir {
        let p = d.join("shared").join("datamodels").join(FILE);
        if p.is_file() {
            return Some(p);
        }
        dir = d.parent().map(PathBuf::from);
    }
    None
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mib(b: usize) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    (ms(v[0]), ms(v[v.len() / 2]))
}

/// Tiny deterministic generator (xorshift) for the path mix.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn main() {
    let iters: usize = std::env::var("BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
        .max(1);
    let (name, xml, path) = match shared_file() {
        Some(p) => (
            p.display().to_string(),
            std::fs::read(&p).expect("read"),
            Some(p),
        ),
        None => (
            format!("embedded {FILE}"),
            datamodel::builtin_xml(FILE).expect("embedded"),
            None,
        ),
    };
    println!(
        "datamodel load benchmark: {name} ({:.1} MB), {iters} iterations",
        xml.len() as f64 / 1e6
    );

    // Parse + build from memory.
    let mut times = Vec::with_capacity(iters);
    let mut peak = 0;
    let mut retained = 0;
    for _ in 0..iters {
        let base = CURRENT.load(Relaxed);
        PEAK.store(base, Relaxed);
        let t = Instant::now();
        let mut reg = Registry::new();
        reg.load_bytes(FILE, &xml).expect("loads");
        times.push(t.elapsed());
        peak = peak.max(PEAK.load(Relaxed) - base);
        retained = CURRENT.load(Relaxed) - base;
        black_box(&reg);
    }
    let (min, med) = stats(times);
    println!("  load (parse + build, from memory)  min {min:7.2} ms   median {med:7.2} ms");
    println!(
        "  memory during load: peak {:.1} MiB above baseline (the {:.1} MiB input buffer not counted)",
        mib(peak),
        mib(xml.len())
    );
    println!(
        "  memory retained by the model:      {:.1} MiB",
        mib(retained)
    );

    if let Some(p) = &path {
        let mut times = Vec::with_capacity(iters);
        for _ in 0..iters {
            let t = Instant::now();
            let mut reg = Registry::new();
            reg.load_file(p).expect("loads");
            times.push(t.elapsed());
            black_box(&reg);
        }
        let (min, med) = stats(times);
        println!("  load_file (read + parse + build)   min {min:7.2} ms   median {med:7.2} ms");
    }

    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        let reg = Registry::builtin().expect("builtin");
        times.push(t.elapsed());
        black_box(&reg);
    }
    let (min, med) = stats(times);
    println!("  Registry::builtin() (gunzip + TR-181 + TR-098, 2 threads) min {min:7.2} ms   median {med:7.2} ms");

    // Look-ups over concrete paths.
    let mut reg = Registry::new();
    reg.load_bytes(FILE, &xml).expect("loads");
    let m = reg.model_for_root("Device.").unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut paths: Vec<String> = Vec::new();
    for (o, p) in m.parameters() {
        let mut s = String::with_capacity(p.path.len() + 8);
        for (i, seg) in p.path.split("{i}").enumerate() {
            if i > 0 {
                if rng.next().is_multiple_of(10) {
                    s.push_str(&format!("[cpe-{}]", rng.next() % 50));
                } else {
                    s.push_str(&(1 + rng.next() % 12).to_string());
                }
            }
            s.push_str(seg);
        }
        paths.push(s);
        if rng.next().is_multiple_of(8) {
            // Object and table paths too.
            paths.push(o.path.replace("{i}", "3"));
            paths.push(o.table_path().replace("{i}", "2"));
        }
    }
    let n_std = paths.len();
    for i in 0..n_std / 50 {
        paths.push(format!("Device.DeviceInfo.X_ACME_Key{i}"));
        paths.push(format!("Device.IP.Interface.{i}.NoSuchParam"));
    }
    // Shuffle.
    for i in (1..paths.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        paths.swap(i, j);
    }
    let mut found = [0usize; 4];
    for p in &paths {
        let k = match m.lookup(p) {
            Lookup::Object(_) => 0,
            Lookup::Parameter { .. } => 1,
            Lookup::VendorExtension => 2,
            Lookup::Unknown => 3,
        };
        found[k] += 1;
    }
    let avg_len = paths.iter().map(|p| p.len()).sum::<usize>() as f64 / paths.len() as f64;
    let rounds = (2_000_000 / paths.len()).max(1);
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let mut hits = 0usize;
        for _ in 0..rounds {
            for p in &paths {
                if !matches!(m.lookup(black_box(p)), Lookup::Unknown) {
                    hits += 1;
                }
            }
        }
        black_box(hits);
        let ns = t.elapsed().as_nanos() as f64 / (rounds * paths.len()) as f64;
        best = best.min(ns);
    }
    println!(
        "  lookup: {} paths (avg {:.0} chars; {} objects, {} parameters, {} vendor, {} unknown; ~10% [alias] instances)",
        paths.len(),
        avg_len,
        found[0],
        found[1],
        found[2],
        found[3]
    );
    println!(
        "  lookup: {best:.0} ns per lookup, {:.2} M lookups/s (best of 5 x {} lookups)",
        1e3 / best,
        rounds * paths.len()
    );

    // validate() over parameter paths with a plausible value.
    let params: Vec<&String> = paths
        .iter()
        .filter(|p| matches!(m.lookup(p), Lookup::Parameter { .. }))
        .collect();
    // The first pass compiles the pattern facets (once per pattern); the second is timed.
    let mut okc = 0usize;
    for p in &params {
        if m.validate(p, "1").is_ok() {
            okc += 1;
        }
    }
    let t = Instant::now();
    for p in &params {
        black_box(m.validate(black_box(p), "1").is_ok());
    }
    let ns = t.elapsed().as_nanos() as f64 / params.len() as f64;
    println!(
        "  validate(path, \"1\"): {ns:.0} ns per call incl. lookup ({} of {} accepted)",
        okc,
        params.len()
    );
}
