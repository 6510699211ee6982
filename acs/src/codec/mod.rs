//! Sans-IO CWMP (TR-069) SOAP 1.1 codec.
//!
//! [`parse`] turns an HTTP body into an [`Envelope`]; [`serialize`] does the
//! reverse. Both directions cover every RPC so the ACS and the CPE simulator
//! share one model. Input handling is lenient where real CPEs are sloppy
//! (checklist §8 "Negative checks", §9) and strict where safety matters
//! (size limits, no DTDs, SOAP 1.1 only). No I/O happens here.

mod error;
mod parse;
mod serialize;
mod types;

pub use error::CodecError;
pub use parse::{is_empty_body, parse, Limits};
pub use serialize::{serialize, BoolStyle, EnvPrefix, OutputStyle};
pub use types::*;
