//! Broadband Forum `cwmp-datamodel` XML (TR-181, TR-098, TR-104, …): loader, typed schema,
//! path lookup and value validation.
//!
//! - [`Registry`] holds loaded models: [`Registry::builtin`] has TR-181 `Device:2.19` (2.19.1)
//!   and TR-098 `InternetGatewayDevice:1.14` (TR-098 Amendment 8, file `tr-098-1-8-0`) embedded;
//!   [`Registry::load_file`] and [`Registry::load_dirs`] add others. Flattened `-full.xml` files
//!   and source files whose `<import>`s resolve over the search directories both load.
//! - [`Model::lookup`] maps a concrete path (`Device.IP.Interface.2.IPv4Address.1.IPAddress`,
//!   `[alias]` instances, `{i}`, partial paths ending in `.`) to its [`ObjectDef`] or
//!   [`ParamDef`] through one hash look-up of the normalised template path.
//! - [`Model::validate`] checks a value against the parameter's syntax and says precisely why
//!   it is refused.
//!
//! No I/O beyond reading the files asked for. XML is parsed without DTD processing: a document
//! with a `<!DOCTYPE` is refused (so no entity is ever declared or expanded). Errors are
//! [`DmError`] values naming file, line and item; bad input never panics.

// Outside input reaches this crate: no panicking arithmetic, indexing or unwrapping anywhere
// in it (clippy enforces it; tests may).
#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used
)]
#![cfg_attr(
    test,
    allow(
        clippy::arithmetic_side_effects,
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used
    )
)]
mod build;
mod error;
mod model;
mod parse;
mod text;
mod types;
mod validate;
mod xml;

use std::io::Read;
use std::path::{Path, PathBuf};

pub use error::{DmError, Invalid};
pub use model::{Child, Lookup, Model, ModelSummary};
pub use types::{
    Access, ActiveNotify, BaseType, DefaultKind, DefaultValue, Enumeration, EnumerationRef, Facets,
    ListFacet, Number, ObjectDef, ObjectRequirement, ParamDef, PathScope, Pattern, Profile,
    ProfileObject, ProfileParameter, RangeFacet, RefType, Reference, SizeFacet, Status, Syntax,
    TargetType, UniqueKey,
};

use build::Loader;

const BUILTIN: [(&str, &[u8]); 2] = [
    (
        "tr-181-2-19-1-cwmp-full.xml",
        include_bytes!("../models/tr-181-2-19-1-cwmp-full.xml.gz"),
    ),
    (
        "tr-098-1-8-0-full.xml",
        include_bytes!("../models/tr-098-1-8-0-full.xml.gz"),
    ),
];

/// BBF support files published with a DOCTYPE internal subset (literal entities used in
/// patterns). We never process DTDs, so a copy with those entities expanded offline is embedded
/// and read in place of an on-disk file of the same name that is refused for its DOCTYPE.
const EXPANDED: [(&str, &[u8]); 1] = [(
    "tr-106-types.xml",
    include_bytes!("../models/tr-106-types.xml.gz"),
)];

/// The pre-expanded embedded copy of a BBF support file, if there is one for this file name.
pub(crate) fn expanded_copy(file_name: &str) -> Option<Vec<u8>> {
    let (_, gz) = EXPANDED.iter().find(|(n, _)| *n == file_name)?;
    let mut xml = Vec::with_capacity(gz.len().saturating_mul(5));
    flate2::read::GzDecoder::new(*gz)
        .read_to_end(&mut xml)
        .ok()?;
    Some(xml)
}

/// The file names of the embedded models (BBF-published `-full.xml` files, gzip-compressed in
/// the library).
pub const BUILTIN_FILES: [&str; 2] = [BUILTIN[0].0, BUILTIN[1].0];

/// The XML of an embedded model file (one of [`BUILTIN_FILES`]), decompressed.
pub fn builtin_xml(name: &str) -> Option<Vec<u8>> {
    let (_, gz) = BUILTIN.iter().find(|(n, _)| *n == name)?;
    let mut xml = Vec::with_capacity(gz.len().saturating_mul(9));
    flate2::read::GzDecoder::new(*gz)
        .read_to_end(&mut xml)
        .ok()?;
    Some(xml)
}

/// The result of [`Registry::load_dirs`]: what loaded and what did not.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub models: Vec<ModelSummary>,
    pub errors: Vec<DmError>,
}

/// The loaded data models.
#[derive(Debug, Default)]
pub struct Registry {
    models: Vec<Model>,
    search_dirs: Vec<PathBuf>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// A registry with the embedded TR-181 `Device:2.19` and TR-098
    /// `InternetGatewayDevice:1.14` models (parsed on two threads).
    pub fn builtin() -> Result<Registry, DmError> {
        let results: Vec<Result<Vec<Model>, DmError>> = std::thread::scope(|s| {
            let handles: Vec<_> = BUILTIN
                .iter()
                .map(|(name, gz)| s.spawn(move || load_builtin(name, gz)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(builtin_panic())))
                .collect()
        });
        let mut reg = Registry::new();
        for r in results {
            for m in r? {
                reg.insert(m);
            }
        }
        Ok(reg)
    }

    /// Adds a directory searched for imported files (after the importing file's own directory).
    pub fn add_search_dir(&mut self, dir: impl Into<PathBuf>) {
        let d = dir.into();
        if !self.search_dirs.contains(&d) {
            self.search_dirs.push(d);
        }
    }

    pub fn search_dirs(&self) -> &[PathBuf] {
        &self.search_dirs
    }

    /// Loads one file (its imports resolved from its own directory, then the search
    /// directories) and adds the models it defines. A model with the name of one already
    /// loaded replaces it.
    pub fn load_file(&mut self, path: &Path) -> Result<Vec<ModelSummary>, DmError> {
        let mut loader = Loader::new(self.search_dirs.clone());
        let id = loader.load_path(path)?;
        let models = loader.build_models(id, false)?;
        Ok(self.insert_all(models))
    }

    /// Loads a document held in memory; `name` stands for its file name in errors and
    /// summaries. Imports resolve over the search directories.
    pub fn load_bytes(&mut self, name: &str, bytes: &[u8]) -> Result<Vec<ModelSummary>, DmError> {
        let mut loader = Loader::new(self.search_dirs.clone());
        let id = loader.load_bytes(Path::new(name), bytes)?;
        let models = loader.build_models(id, false)?;
        Ok(self.insert_all(models))
    }

    /// Loads every `*.xml` file of the directories (in name order; the directories become
    /// search directories for imports). A file that fails is reported in `errors` and the
    /// others still load. Files that only define data types or components load with no model.
    pub fn load_dirs(&mut self, dirs: &[PathBuf]) -> LoadReport {
        for d in dirs {
            self.add_search_dir(d.clone());
        }
        let mut report = LoadReport::default();
        let mut loader = Loader::new(self.search_dirs.clone());
        for dir in dirs {
            let entries = match std::fs::read_dir(dir) {
                Ok(rd) => rd,
                Err(source) => {
                    report.errors.push(DmError::Io {
                        file: dir.clone(),
                        source,
                    });
                    continue;
                }
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.is_file() && p.extension().is_some_and(|x| x.eq_ignore_ascii_case("xml"))
                })
                .collect();
            files.sort();
            for f in files {
                let r = loader
                    .load_path(&f)
                    .and_then(|id| loader.build_models(id, true));
                match r {
                    Ok(models) => report.models.extend(self.insert_all(models)),
                    Err(e) => report.errors.push(e),
                }
            }
        }
        report
    }

    fn insert_all(&mut self, models: Vec<Model>) -> Vec<ModelSummary> {
        let mut out = Vec::with_capacity(models.len());
        for m in models {
            out.push(m.summary().clone());
            self.insert(m);
        }
        out
    }

    fn insert(&mut self, m: Model) {
        if let Some(old) = self.models.iter_mut().find(|o| o.name() == m.name()) {
            *old = m;
        } else {
            self.models.push(m);
        }
    }

    /// All loaded models.
    pub fn models(&self) -> impl Iterator<Item = &Model> {
        self.models.iter()
    }

    /// A model by name (`Device:2.19`).
    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.iter().find(|m| m.name() == name)
    }

    /// The model for a root object (`Device.` or `InternetGatewayDevice.`, the trailing dot
    /// optional; also a service object such as `VoiceService.`). With several models for the
    /// root, the newest version wins (then the one loaded last).
    pub fn model_for_root(&self, root: &str) -> Option<&Model> {
        let root = root.strip_suffix('.').unwrap_or(root);
        self.models
            .iter()
            .enumerate()
            .filter(|(_, m)| m.root().strip_suffix('.') == Some(root))
            .max_by_key(|(i, m)| {
                let patch = m
                    .version_attr()
                    .and_then(|v| v.rsplit('.').next())
                    .and_then(|p| p.parse::<u32>().ok())
                    .unwrap_or(0);
                (m.version(), patch, *i)
            })
            .map(|(_, m)| m)
    }
}

fn builtin_panic() -> DmError {
    DmError::Invalid {
        file: PathBuf::from("builtin"),
        line: 0,
        message: "loading a built-in model panicked".into(),
    }
}

fn load_builtin(name: &str, gz: &[u8]) -> Result<Vec<Model>, DmError> {
    let file = PathBuf::from(format!("builtin:{name}"));
    let mut xml = Vec::with_capacity(gz.len().saturating_mul(9));
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut xml)
        .map_err(|source| DmError::Io {
            file: file.clone(),
            source,
        })?;
    let mut loader = Loader::new(Vec::new());
    let id = loader.load_bytes(&file, &xml)?;
    loader.build_models(id, false)
}
