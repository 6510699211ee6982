//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use datamodel::Registry;

/// The built-in registry (TR-181 Device:2.19, TR-098 IGD:1.14), loaded once per test binary.
pub fn builtin() -> &'static Registry {
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(|| Registry::builtin().expect("built-in models load"))
}

/// `shared/datamodels`: `$KEELSON_SHARED/datamodels`, else the first `shared/datamodels` found
/// beside an ancestor of this crate (CI clones the repo with `shared/` next to it).
pub fn shared_datamodels() -> Option<PathBuf> {
    if let Some(s) = std::env::var_os("KEELSON_SHARED") {
        let p = PathBuf::from(s).join("datamodels");
        return p.is_dir().then_some(p);
    }
    let mut dir = Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    while let Some(d) = dir {
        let p = d.join("shared").join("datamodels");
        if p.is_dir() {
            return Some(p);
        }
        dir = d.parent().map(PathBuf::from);
    }
    None
}

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

/// Prints a visible SKIP line and returns None when shared/datamodels is absent.
pub fn shared_or_skip(test: &str) -> Option<PathBuf> {
    let d = shared_datamodels();
    if d.is_none() {
        eprintln!(
            "SKIP {test}: shared/datamodels not found (set KEELSON_SHARED or clone shared/ beside the repo)"
        );
    }
    d
}
