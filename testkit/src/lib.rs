//! Test support shared by Keelson's crates (a dev-dependency only).
//!
//! Tests that need a tool (PostgreSQL, tshark) or the project's `../shared` data call
//! [`skip`] when it is missing: locally that prints a visible `SKIP:` line and the test
//! returns; with `CI=true` it fails the test, so CI cannot pass by skipping. (SCTP, which no
//! kernel here has, skips on its own terms.)

use std::io::Write;
use std::path::{Path, PathBuf};

/// Whether this run must not skip (`CI=true`, as `.ci/run` sets it).
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Reports a missing tool or data set: panics under `CI=true`, else prints `SKIP: {what}` on
/// stderr (written to the stream itself, so libtest's capture does not hide it).
pub fn skip(what: &str) {
    if ci() {
        panic!("CI=true and {what}: install it (.ci/run does) instead of skipping");
    }
    let _ = writeln!(std::io::stderr(), "SKIP: {what}");
}

/// The project's shared directory (`golden/`, `datamodels/`, `spec/`, …):
/// `$KEELSON_SHARED`, else the first `shared` directory found beside an ancestor of this
/// crate (CI clones the repository with `shared/` next to it).
pub fn shared() -> Option<PathBuf> {
    if let Some(s) = std::env::var_os("KEELSON_SHARED") {
        let p = PathBuf::from(s);
        return p.is_dir().then_some(p);
    }
    let mut dir = Some(Path::new(env!("CARGO_MANIFEST_DIR")));
    while let Some(d) = dir {
        let cand = d.join("shared");
        if cand.join("golden").is_dir() || cand.join("datamodels").is_dir() {
            return Some(cand);
        }
        dir = d.parent();
    }
    None
}

/// `shared/<sub>`, or [`skip`] (naming `test`) and `None` when it is missing.
pub fn shared_or_skip(sub: &str, test: &str) -> Option<PathBuf> {
    let p = shared().map(|s| s.join(sub)).filter(|p| p.exists());
    if p.is_none() {
        skip(&format!(
            "{test}: shared/{sub} not found (set KEELSON_SHARED or clone shared/ beside the repository)"
        ));
    }
    p
}
