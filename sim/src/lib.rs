//! Keelson's simulators, for tests, load runs and the `keelson sim` commands. They play the
//! other side of Keelson's protocols with Keelson's own codecs, so every message they send
//! is one our parsers must accept.
//!
//! * [`cpe`]: the sans-IO CPE device model (TR-181 gateway tree, every CPE method, the CPE
//!   side of a CWMP session); no sockets, no clock.
//! * [`run`]: its I/O runner: an HTTP(S) client per device with Digest/Basic and cookies,
//!   HTTP and UDP connection-request listeners, real downloads and uploads, periodic
//!   informs, and the `sim load` closed-loop benchmark.
//! * [`ipdr`]: an IPDR/SP exporter streaming TR-232 `BulkDataReport` records from a fleet of
//!   simulated devices, in either connection direction, over the `ipdr` crate's sans-IO
//!   exporter; [`ipdr_run`] is its `keelson sim ipdr` command line.

pub mod cpe;
pub mod ipdr;
pub mod ipdr_run;
pub mod run;

pub use run::{run, run_load, LoadArgs, LoadReport, SimArgs, SimCommand};
