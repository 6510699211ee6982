//! Codec error type.

use thiserror::Error;

/// Why a body could not be turned into an [`Envelope`](super::Envelope).
///
/// The variants map onto distinct ACS reactions (checklist §1.11):
/// `TooLarge`/`LimitExceeded` → 413, `Dtd`/`Malformed`/`NotSoap`/
/// `BadNamespace` → 400 and close, `InvalidArguments` → SOAP fault 8003.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    /// Body exceeds [`Limits::max_body_bytes`](super::Limits::max_body_bytes).
    #[error("body of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    /// Nesting depth or element count exceeds the configured limit.
    #[error("{what} exceeds the limit of {limit}")]
    LimitExceeded { what: &'static str, limit: usize },
    /// A DOCTYPE/DTD or entity declaration; never expanded (entity bombs, XXE).
    #[error("DOCTYPE/DTD or entity declarations are not allowed")]
    Dtd,
    /// Not well-formed XML.
    #[error("malformed XML at byte {position}: {message}")]
    Malformed { position: u64, message: String },
    /// Well-formed XML but not a SOAP 1.1 envelope with a Body.
    #[error("not a SOAP 1.1 envelope: {0}")]
    NotSoap(String),
    /// The RPC element is not in a `urn:dslforum-org:cwmp-1-N` namespace.
    #[error("RPC element is not in a cwmp namespace: {0}")]
    BadNamespace(String),
    /// A known method whose required arguments are missing or invalid.
    #[error("invalid arguments for {method}: {reason}")]
    InvalidArguments { method: String, reason: String },
}
