//! Augmented XDR primitives (spec §2): big-endian, no 4-byte padding, `u32` length prefixes.
//!
//! [`Reader`] never panics: every read checks the remaining length first and reports a
//! [`DecodeError`] naming the field it was reading.

// Outside input: no panicking arithmetic, indexing or unwrapping here (clippy enforces it).
#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used
)]

use thiserror::Error;

/// Why the bytes of one message (or one structure inside it) could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The message ended inside a field.
    #[error("message ends inside `{field}` (needs {needed} bytes, {available} left)")]
    Truncated {
        field: &'static str,
        needed: usize,
        available: usize,
    },
    /// A count of elements cannot fit in the bytes that are left.
    #[error("`{field}` announces {count} elements, more than the {available} bytes left can hold")]
    CountTooLarge {
        field: &'static str,
        count: u32,
        available: usize,
    },
    /// Structures nested deeper than [`crate::xdr::MAX_NESTING`].
    #[error("field descriptors nested deeper than {max} levels")]
    TooDeep { max: usize },
    /// A fixed-size message carried a different length (only for messages with no body).
    #[error("{0}")]
    Invalid(&'static str),
}

/// Why a value could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// A string, byte array or list is longer than a `u32` length can say, or the whole
    /// message is longer than `messageLen` can say.
    #[error("`{field}` is too long to encode ({len} bytes or elements)")]
    TooLong { field: &'static str, len: usize },
}

/// A bounds-checked cursor over a byte slice.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.saturating_add(n);
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| DecodeError::Truncated {
                field,
                needed: n,
                available: self.remaining(),
            })?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let s = self.take(N, field)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn bytes16(&mut self, field: &'static str) -> Result<[u8; 16], DecodeError> {
        self.array(field)
    }

    /// `opaque x<>`: u32 length, then the bytes.
    pub(crate) fn opaque(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(field)? as usize;
        self.take(len, field)
    }

    /// `UTF8String`: u32 length, then UTF-8 bytes. Invalid UTF-8 is replaced (U+FFFD) rather
    /// than refused: these strings are names and descriptions, never keys.
    pub(crate) fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let b = self.opaque(field)?;
        Ok(String::from_utf8_lossy(b).into_owned())
    }

    /// A `u32` element count, checked against the bytes left (each element needs at least
    /// `min_elem` bytes), so that a hostile count can never drive a large allocation.
    pub(crate) fn count(
        &mut self,
        field: &'static str,
        min_elem: usize,
    ) -> Result<usize, DecodeError> {
        let count = self.u32(field)?;
        let available = self.remaining();
        if u64::from(count).saturating_mul(min_elem.max(1) as u64) > available as u64 {
            return Err(DecodeError::CountTooLarge {
                field,
                count,
                available,
            });
        }
        Ok(count as usize)
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let s = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        s
    }
}

pub(crate) fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

pub(crate) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn len_u32(len: usize, field: &'static str) -> Result<u32, EncodeError> {
    u32::try_from(len).map_err(|_| EncodeError::TooLong { field, len })
}

pub(crate) fn put_opaque(
    out: &mut Vec<u8>,
    b: &[u8],
    field: &'static str,
) -> Result<(), EncodeError> {
    put_u32(out, len_u32(b.len(), field)?);
    out.extend_from_slice(b);
    Ok(())
}

pub(crate) fn put_string(
    out: &mut Vec<u8>,
    s: &str,
    field: &'static str,
) -> Result<(), EncodeError> {
    put_opaque(out, s.as_bytes(), field)
}
