//! Stream framing by `messageLen` (spec §3.1) and the errors a collector must answer.

// Outside input: no panicking arithmetic, indexing or unwrapping here (clippy enforces it).
#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used
)]

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use super::message::{
    decode_body, Body, ErrorCode, ErrorMessage, Message, MessageId, HEADER_LEN, VERSION,
};
use super::wire::DecodeError;

/// Default upper bound for `messageLen` (1 MiB): far above any real template or record,
/// small enough that a hostile length cannot make the framer buffer much.
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 1 << 20;

/// What was wrong with a frame.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameErrorKind {
    /// `messageLen` below the 8-byte header: the stream cannot be re-synchronised.
    #[error("messageLen {0} is shorter than the 8-byte header")]
    LengthTooSmall(u32),
    /// `messageLen` above the configured maximum.
    #[error("messageLen {len} exceeds the maximum of {max} bytes")]
    LengthTooLarge { len: u32, max: usize },
    /// Version byte other than 2 (1 is CRANE, RFC 3423).
    #[error("unsupported protocol version {0} (IPDR/SP is version 2)")]
    UnsupportedVersion(u8),
    /// Message ID not in the catalogue; the frame itself was well delimited and skipped.
    #[error("unknown message id 0x{0:02x}")]
    UnknownMessageId(u8),
    /// A frame handed to [`Message::decode`] whose length differs from its `messageLen`.
    #[error("frame of {actual} bytes but messageLen says {declared}")]
    LengthMismatch { declared: u32, actual: usize },
    /// The body of a known message could not be decoded.
    #[error("cannot decode {message}: {source}")]
    Body {
        message: MessageId,
        #[source]
        source: DecodeError,
    },
}

/// A frame the collector cannot use, with what it must answer.
///
/// | kind | ERROR code | session flag | close |
/// |---|---|---|---|
/// | length < 8, length > max, version ≠ 2, length mismatch | 3 decode error | no | yes (the byte stream cannot be re-synchronised) |
/// | unknown message ID | 3 decode error | yes (header sessionId) | no (the frame is skipped) |
/// | undecodable body of a session-scoped message | 3 decode error | yes | no |
/// | undecodable body of a connection-level message | 3 decode error | no | yes |
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{kind}")]
pub struct FrameError {
    pub kind: FrameErrorKind,
    /// Header messageId (0 when the header was not read).
    pub message_id: u8,
    /// Header sessionId (0 when the header was not read).
    pub session_id: u8,
}

impl FrameError {
    fn new(kind: FrameErrorKind, header: &[u8]) -> FrameError {
        FrameError {
            kind,
            message_id: header.get(1).copied().unwrap_or(0),
            session_id: header.get(2).copied().unwrap_or(0),
        }
    }

    /// The ERROR code to answer with (spec §3.5).
    pub fn error_code(&self) -> ErrorCode {
        ErrorCode::MESSAGE_DECODE_ERROR
    }

    /// Whether the ERROR concerns only the header's session (MSB of errorCode set).
    pub fn session_specific(&self) -> bool {
        !self.must_close()
    }

    /// Whether the collector must close the connection after answering.
    pub fn must_close(&self) -> bool {
        match &self.kind {
            FrameErrorKind::UnknownMessageId(_) => false,
            FrameErrorKind::Body { message, .. } => !message.is_session_scoped(),
            _ => true,
        }
    }

    /// The ERROR message to send (the caller supplies the epoch-seconds timestamp).
    pub fn to_error_message(&self, timestamp: u32) -> Message {
        let session_specific = self.session_specific();
        Message::new(
            if session_specific { self.session_id } else { 0 },
            Body::Error(ErrorMessage {
                timestamp,
                session_specific,
                code: self.error_code(),
                description: self.to_string(),
            }),
        )
    }
}

/// The 8-byte message header at the start of `bytes`, if it is all there.
fn header(bytes: &[u8]) -> Option<[u8; HEADER_LEN]> {
    bytes.get(..HEADER_LEN)?.try_into().ok()
}

impl Message {
    /// Decodes one complete message (header included). `frame.len()` must equal the
    /// header's `messageLen`. DATA records are zero-copy slices of `frame`.
    pub fn decode(frame: Bytes) -> Result<Message, FrameError> {
        let Some(&version) = frame.first() else {
            return Err(FrameError::new(FrameErrorKind::LengthTooSmall(0), &frame));
        };
        if version != VERSION {
            return Err(FrameError::new(
                FrameErrorKind::UnsupportedVersion(version),
                &frame,
            ));
        }
        let Some(h) = header(&frame) else {
            return Err(FrameError::new(
                FrameErrorKind::LengthTooSmall(u32::try_from(frame.len()).unwrap_or(u32::MAX)),
                &frame,
            ));
        };
        let declared = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        if declared < HEADER_LEN as u32 {
            return Err(FrameError::new(
                FrameErrorKind::LengthTooSmall(declared),
                &frame,
            ));
        }
        if declared as usize != frame.len() {
            return Err(FrameError::new(
                FrameErrorKind::LengthMismatch {
                    declared,
                    actual: frame.len(),
                },
                &frame,
            ));
        }
        let Some(id) = MessageId::from_u8(h[1]) else {
            return Err(FrameError::new(
                FrameErrorKind::UnknownMessageId(h[1]),
                &frame,
            ));
        };
        match decode_body(id, &frame) {
            Ok((body, used)) => Ok(Message {
                session_id: h[2],
                message_flags: h[3],
                body,
                trailing: frame.slice(used..),
            }),
            Err(source) => Err(FrameError::new(
                FrameErrorKind::Body {
                    message: id,
                    source,
                },
                &frame,
            )),
        }
    }

    /// [`Message::decode`] from a borrowed slice (copies it).
    pub fn decode_slice(frame: &[u8]) -> Result<Message, FrameError> {
        Message::decode(Bytes::copy_from_slice(frame))
    }
}

/// Streaming framer: push bytes as they arrive, pull whole messages.
///
/// Handles several messages in one segment and one message split over many. After a fatal
/// error ([`FrameError::must_close`]) the framer stops: it drops its buffer, ignores further
/// input and returns `None`.
#[derive(Debug)]
pub struct Framer {
    buf: BytesMut,
    max_message_len: usize,
    failed: bool,
}

impl Default for Framer {
    fn default() -> Self {
        Framer::new(DEFAULT_MAX_MESSAGE_LEN)
    }
}

impl Framer {
    /// A framer refusing messages longer than `max_message_len` bytes (at least 8).
    pub fn new(max_message_len: usize) -> Framer {
        Framer {
            buf: BytesMut::new(),
            max_message_len: max_message_len.max(HEADER_LEN),
            failed: false,
        }
    }

    pub fn max_message_len(&self) -> usize {
        self.max_message_len
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if !self.failed {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes received but not yet returned as messages.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// True after a fatal framing error.
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    fn fail(&mut self, kind: FrameErrorKind) -> Option<Result<Message, FrameError>> {
        let e = FrameError::new(
            kind,
            self.buf
                .get(..self.buf.len().min(HEADER_LEN))
                .unwrap_or_default(),
        );
        self.failed = true;
        self.buf = BytesMut::new();
        Some(Err(e))
    }

    /// The next complete message, `None` when more bytes are needed.
    pub fn next_message(&mut self) -> Option<Result<Message, FrameError>> {
        if self.failed || self.buf.is_empty() {
            return None;
        }
        // Check the version as soon as its byte is here: a CRANE or garbage peer is refused
        // without waiting for a header that may never come.
        match self.buf.first() {
            Some(&v) if v != VERSION => return self.fail(FrameErrorKind::UnsupportedVersion(v)),
            _ => {}
        }
        let h = header(&self.buf)?;
        let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        if len < HEADER_LEN as u32 {
            return self.fail(FrameErrorKind::LengthTooSmall(len));
        }
        if len as usize > self.max_message_len {
            let max = self.max_message_len;
            return self.fail(FrameErrorKind::LengthTooLarge { len, max });
        }
        let len = len as usize;
        if let Some(missing) = len.checked_sub(self.buf.len()).filter(|m| *m > 0) {
            self.buf.reserve(missing);
            return None;
        }
        let frame = self.buf.split_to(len).freeze();
        Some(Message::decode(frame))
    }
}
