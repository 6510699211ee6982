//! Sans-IO IPDR/SP version 2 codec: every message of the catalogue (spec §3.2), the
//! streaming [`Framer`], and UDP version discovery (spec §3.9).
//!
//! Encoding is "augmented XDR" (spec §2): big-endian, no padding, `u32` length prefixes.
//! Decoding never panics and never allocates more than the input can justify: element
//! counts are checked against the bytes left before any vector is sized.

mod discovery;
mod framer;
mod message;
pub(crate) mod wire;

pub use discovery::{ProtocolInfo, ProtocolTag, TransportType, VersionRequest, VersionResponse};
pub use framer::{FrameError, FrameErrorKind, Framer, DEFAULT_MAX_MESSAGE_LEN};
pub use message::{
    Body, Capabilities, Connect, ConnectResponse, Data, DataAck, DocumentId, ErrorCode,
    ErrorMessage, FieldDescriptor, FlowStop, FlowStopReason, GetSessions, GetSessionsResponse,
    GetTemplates, GetTemplatesResponse, Message, MessageId, ModifyTemplate, ModifyTemplateResponse,
    RequestResponse, SessionBlock, SessionStart, SessionStop, SessionStopReason, TemplateBlock,
    TemplateData, DEFAULT_PORT, HEADER_LEN, VERSION,
};
pub use wire::{DecodeError, EncodeError};
