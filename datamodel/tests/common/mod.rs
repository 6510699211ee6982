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

/// `shared/datamodels`, if present.
pub fn shared_datamodels() -> Option<PathBuf> {
    testkit::shared()
        .map(|s| s.join("datamodels"))
        .filter(|p| p.is_dir())
}

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

/// `shared/datamodels`, or a visible SKIP (a failure under `CI=true`) and None.
pub fn shared_or_skip(test: &str) -> Option<PathBuf> {
    testkit::shared_or_skip("datamodels", test)
}
