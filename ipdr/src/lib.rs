//! IPDR/SP version 2 for Keelson's bulk-data collector: a sans-IO protocol core and thin
//! async transports around it.
//!
//! The core does no I/O. It is five layers, each usable alone:
//!
//! * [`codec`]: every IPDR/SP message, encode and decode, plus the streaming [`Framer`]
//!   and UDP version discovery;
//! * [`xdr`]: template-driven decoding of DATA records ([`Template`], [`decode_record`]);
//! * [`doc`]: whole IPDR documents (IPDR/XML `IPDRDoc` with TR-232 `BulkDataReport`, and
//!   IPDR/XDR files), parsed and written;
//! * [`collector`]: the collector side of the protocol as a state machine: messages, time
//!   and storage-durability notifications in; messages to send, records to persist, events
//!   and close out;
//! * [`exporter`]: the exporter side as a state machine (record queues, DSNs, windowing,
//!   resending after reconnection).
//!
//! The async glue (tokio) feeds these and carries out what they return:
//!
//! * [`tcp`]: the collector over TCP, accepting ([`tcp::serve`]) and dialling
//!   ([`tcp::dial`]), with UDP version discovery; records go to a [`RecordSink`] and are
//!   acknowledged only after its commit resolves. Acknowledgements follow durability,
//!   never precede it;
//! * [`sctp`]: the same connection loop over kernel SCTP (when the kernel has it);
//! * [`transport::Link`]: the byte-transport abstraction both run over, public so that
//!   an exporter (the `keelson-sim` crate's simulator) can drive [`Exporter`] on it.
//!
//! [`tr232`] holds the TR-232 `BulkDataReport` template and record shared by the document
//! parser, the collector's storage glue and the simulator.

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
pub mod codec;
pub mod collector;
pub mod doc;
pub mod exporter;
pub mod sctp;
pub mod tcp;
pub mod tr232;
pub mod transport;
pub mod xdr;

pub use codec::{Body, FrameError, Framer, Message, MessageId};
pub use collector::{Collector, CollectorConfig, Event, Output, Record};
pub use exporter::{Exporter, ExporterConfig, ExporterEvent, ExporterOutput, ExporterSession};
pub use transport::{
    RecordSink, Shutdown, ShutdownTrigger, SinkError, SinkFuture, TransportConfig,
};
pub use xdr::{decode_record, encode_record, FieldName, RecordError, Template, TypeId, Value};
pub mod bulkhttp;
