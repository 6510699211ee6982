//! IPDR/SP version 2 protocol core for Keelson's bulk-data collector.
//!
//! This crate never does I/O. It is three layers, each usable alone:
//!
//! * [`codec`]: every IPDR/SP message, encode and decode, plus the streaming [`Framer`]
//!   and UDP version discovery;
//! * [`xdr`]: template-driven decoding of DATA records ([`Template`], [`decode_record`]);
//! * [`collector`]: the collector side of the protocol as a state machine: messages, time
//!   and storage-durability notifications in; messages to send, records to persist, events
//!   and close out.
//!
//! The transport glue (TCP/SCTP sockets, timers, the store's batch writer) feeds these and
//! carries out what they return. Acknowledgements follow durability, never precede it.

pub mod codec;
pub mod collector;
pub mod xdr;

pub use codec::{Body, FrameError, Framer, Message, MessageId};
pub use collector::{Collector, CollectorConfig, Event, Output, Record};
pub use xdr::{decode_record, encode_record, FieldName, RecordError, Template, TypeId, Value};
