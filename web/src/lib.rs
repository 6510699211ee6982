//! Keelson's server: the `keelson` binary's library. `main.rs` parses the command line and
//! calls into it; the integration tests in `tests/` use it directly.
//!
//! One module per concern (see ARCHITECTURE.md for the code map): [`config`] is the typed
//! configuration, [`app`] builds the shared state and runs the listeners, [`cwmp`] is the
//! HTTP glue around the `acs` session machine, [`persist`] maps its effects to the store,
//! [`nbi`] is the northbound API, [`files`] the file server and upload receiver, [`bulk`]
//! the HTTP bulk-data receiver, [`collector`] and [`ipdrdoc`] the IPDR glue, [`connreq`]
//! connection requests, [`dm`] the data-model registry and CLI, [`tls`] certificates, [`guard`] the panic net
//! under every listener.

// The whole server reads outside input: no panicking arithmetic, indexing or unwrapping
// (clippy enforces it; tests may).
#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used
)]

pub mod access;
pub mod admin;
pub mod app;
pub mod body;
pub mod bulk;
pub mod collector;
pub mod config;
pub mod connreq;
pub mod conns;
pub mod cwmp;
pub mod dm;
pub mod events;
pub mod files;
pub mod guard;
pub mod ipdrdoc;
pub mod metrics;
pub mod nbi;
pub mod persist;
pub mod problem;
pub mod site;
pub mod tls;
pub mod usercli;
