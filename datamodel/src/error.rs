//! Errors: loading (`DmError`) and value validation (`Invalid`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `file:line`, or just `file` when the line is not known (0).
pub(crate) struct Loc<'a>(pub &'a Path, pub u32);

impl fmt::Display for Loc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.1 == 0 {
            write!(f, "{}", self.0.display())
        } else {
            write!(f, "{}:{}", self.0.display(), self.1)
        }
    }
}

fn dirs_list(dirs: &[PathBuf]) -> String {
    if dirs.is_empty() {
        return "(no directories)".into();
    }
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a data model file (or one of its imports) could not be loaded. Every variant names the
/// file, and the line where it is known (`line` 0 = unknown).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DmError {
    #[error("{}: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: malformed XML: {message}", Loc(file, *line))]
    Xml {
        file: PathBuf,
        line: u32,
        message: String,
    },
    #[error("{}: DOCTYPE declarations are refused (DTDs and entities are never expanded)", Loc(file, *line))]
    DocType { file: PathBuf, line: u32 },
    #[error("{}: not a cwmp-datamodel document: root element <{element}> in namespace {namespace:?} (expected <document> in urn:broadband-forum-org:cwmp:datamodel-1-N)", Loc(file, *line))]
    Namespace {
        file: PathBuf,
        line: u32,
        element: String,
        namespace: String,
    },
    #[error("{}: import of {wanted:?} failed: no such file (searched {})", Loc(file, *line), dirs_list(searched))]
    MissingImport {
        /// The importing file.
        file: PathBuf,
        line: u32,
        /// The `file` attribute of the `<import>`.
        wanted: String,
        searched: Vec<PathBuf>,
    },
    #[error("{}: import of {wanted:?} ({}) failed: {source}", Loc(file, *line), resolved.display())]
    ImportFailed {
        file: PathBuf,
        line: u32,
        wanted: String,
        resolved: PathBuf,
        #[source]
        source: Arc<DmError>,
    },
    #[error("{}: {kind} {name} is defined twice (first definition at line {first_line})", Loc(file, *line))]
    Duplicate {
        file: PathBuf,
        line: u32,
        kind: &'static str,
        name: String,
        first_line: u32,
    },
    #[error("{}: {item} refers to undefined data type {name:?}", Loc(file, *line))]
    UndefinedType {
        file: PathBuf,
        line: u32,
        item: String,
        name: String,
    },
    /// An undefined component, base model, base object or parameter, or an imported item the
    /// imported file does not define.
    #[error("{}: {message}", Loc(file, *line))]
    Undefined {
        file: PathBuf,
        line: u32,
        message: String,
    },
    /// A well-formed document that breaks the schema: a bad attribute value, a missing required
    /// attribute, a spec mismatch, an import cycle, runaway component nesting.
    #[error("{}: {message}", Loc(file, *line))]
    Invalid {
        file: PathBuf,
        line: u32,
        message: String,
    },
}

impl DmError {
    /// The file the error is about (for an import failure: the importing file).
    pub fn file(&self) -> &Path {
        match self {
            DmError::Io { file, .. }
            | DmError::Xml { file, .. }
            | DmError::DocType { file, .. }
            | DmError::Namespace { file, .. }
            | DmError::MissingImport { file, .. }
            | DmError::ImportFailed { file, .. }
            | DmError::Duplicate { file, .. }
            | DmError::UndefinedType { file, .. }
            | DmError::Undefined { file, .. }
            | DmError::Invalid { file, .. } => file,
        }
    }

    /// The line the error is about, 0 when unknown.
    pub fn line(&self) -> u32 {
        match self {
            DmError::Io { .. } => 0,
            DmError::Xml { line, .. }
            | DmError::DocType { line, .. }
            | DmError::Namespace { line, .. }
            | DmError::MissingImport { line, .. }
            | DmError::ImportFailed { line, .. }
            | DmError::Duplicate { line, .. }
            | DmError::UndefinedType { line, .. }
            | DmError::Undefined { line, .. }
            | DmError::Invalid { line, .. } => *line,
        }
    }
}

/// A value refused by [`crate::Model::validate`]: the path as given and a precise reason, e.g.
/// `value 70000 above maxInclusive 65535`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Invalid {
    pub path: String,
    pub reason: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

impl std::error::Error for Invalid {}
