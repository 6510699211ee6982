//! Reading request bodies under limits: a size limit that applies to the inflated bytes
//! (gzip and deflate are inflated incrementally, so a compression bomb stops at the limit
//! with a few tens of kilobytes in flight), and a deadline for the whole body, so a client
//! that sends headers and then trickles (or nothing) is cut off.

use std::io::Write;
use std::time::Duration;

use actix_web::http::header::{self, HeaderMap};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;

/// A `Content-Encoding` we inflate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    /// HTTP "deflate": zlib-wrapped (RFC 9110), or raw deflate as some stacks send it.
    Deflate,
}

/// The request's body encoding; `Err` names an encoding we do not take.
pub fn encoding(headers: &HeaderMap) -> Result<Encoding, String> {
    let Some(v) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    let enc = v.to_str().unwrap_or("?").trim().to_ascii_lowercase();
    match enc.as_str() {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        "deflate" => Ok(Encoding::Deflate),
        _ => Err(enc),
    }
}

/// The body length a request declares (`Content-Length`), if any.
pub fn declared_length(req: &HttpRequest) -> Option<usize> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
}

/// A sink that refuses to grow past its limit.
struct Bounded {
    buf: Vec<u8>,
    limit: usize,
}

impl Write for Bounded {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len().saturating_add(data.len()) > self.limit {
            return Err(std::io::Error::other(TooLarge));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Debug)]
struct TooLarge;

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("inflated body over the limit")
    }
}

impl std::error::Error for TooLarge {}

/// Inflates chunk by chunk into a bounded buffer.
enum Inflater {
    Identity(Bounded),
    Gzip(flate2::write::MultiGzDecoder<Bounded>),
    Zlib(flate2::write::ZlibDecoder<Bounded>),
    Raw(flate2::write::DeflateDecoder<Bounded>),
    /// "deflate" before its first two bytes arrived (which tell zlib from raw deflate).
    Undecided {
        head: Vec<u8>,
        limit: usize,
    },
}

/// Why a body was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    TooLarge { limit: usize },
    Corrupt(String),
    Timeout,
    Transport(String),
}

impl BodyError {
    /// The answer: 413, 400 or 408, always closing the connection.
    /// The NBI's answer: the same status and reason as a problem document.
    pub fn problem(&self) -> HttpResponse {
        let (status, msg) = self.status_and_reason();
        let mut r = crate::problem::problem(status, msg);
        r.head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
        r
    }

    /// The CWMP listeners' answer (plain text for CPEs).
    pub fn response(&self) -> HttpResponse {
        let (status, msg) = self.status_and_reason();
        HttpResponse::build(status)
            .force_close()
            .content_type("text/plain; charset=utf-8")
            .body(msg)
    }

    fn status_and_reason(&self) -> (StatusCode, String) {
        match self {
            BodyError::TooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body exceeds the {limit}-byte limit"),
            ),
            BodyError::Corrupt(e) => (StatusCode::BAD_REQUEST, format!("bad body encoding: {e}")),
            BodyError::Timeout => (
                StatusCode::REQUEST_TIMEOUT,
                "the body did not arrive in time".to_string(),
            ),
            BodyError::Transport(e) => (StatusCode::BAD_REQUEST, format!("bad body: {e}")),
        }
    }
}

fn io_to_body(e: std::io::Error, limit: usize) -> BodyError {
    if e.get_ref().is_some_and(|inner| inner.is::<TooLarge>()) {
        BodyError::TooLarge { limit }
    } else {
        BodyError::Corrupt(e.to_string())
    }
}

impl Inflater {
    fn new(enc: Encoding, limit: usize) -> Inflater {
        let sink = Bounded {
            buf: Vec::new(),
            limit,
        };
        match enc {
            Encoding::Identity => Inflater::Identity(sink),
            Encoding::Gzip => Inflater::Gzip(flate2::write::MultiGzDecoder::new(sink)),
            Encoding::Deflate => Inflater::Undecided {
                head: Vec::new(),
                limit,
            },
        }
    }

    fn push(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        if let Inflater::Undecided { head, limit } = self {
            head.extend_from_slice(chunk);
            // A zlib stream starts with CMF/FLG: deflate method, and a 16-bit value that is a
            // multiple of 31.
            let zlib = match head.as_slice() {
                [cmf, flg, ..] => {
                    cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0
                }
                _ => return Ok(()),
            };
            let head = std::mem::take(head);
            let sink = Bounded {
                buf: Vec::new(),
                limit: *limit,
            };
            *self = if zlib {
                Inflater::Zlib(flate2::write::ZlibDecoder::new(sink))
            } else {
                Inflater::Raw(flate2::write::DeflateDecoder::new(sink))
            };
            return self.push(&head);
        }
        match self {
            Inflater::Identity(b) => b.write_all(chunk),
            Inflater::Gzip(d) => d.write_all(chunk),
            Inflater::Zlib(d) => d.write_all(chunk),
            Inflater::Raw(d) => d.write_all(chunk),
            Inflater::Undecided { .. } => Ok(()),
        }
    }

    fn finish(self) -> std::io::Result<Vec<u8>> {
        Ok(match self {
            Inflater::Identity(b) => b.buf,
            // Fewer than two bytes: not a deflate stream.
            Inflater::Undecided { head, .. } if head.is_empty() => Vec::new(),
            Inflater::Undecided { .. } => {
                return Err(std::io::Error::other("truncated deflate stream"))
            }
            Inflater::Gzip(d) => d.finish()?.buf,
            Inflater::Zlib(d) => d.finish()?.buf,
            Inflater::Raw(d) => d.finish()?.buf,
        })
    }
}

/// Inflates `chunks` (as they arrived) with `enc` into at most `limit` bytes. The pure core
/// of [`read`].
pub fn inflate<'a>(
    enc: Encoding,
    chunks: impl IntoIterator<Item = &'a [u8]>,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    let mut inf = Inflater::new(enc, limit);
    for c in chunks {
        inf.push(c).map_err(|e| io_to_body(e, limit))?;
    }
    inf.finish().map_err(|e| io_to_body(e, limit))
}

/// Reads a whole body: at most `limit` bytes once inflated, all of it within `timeout`.
pub async fn read(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    timeout: Duration,
) -> Result<web::Bytes, BodyError> {
    let enc = encoding(req.headers())
        .map_err(|e| BodyError::Corrupt(format!("unsupported Content-Encoding {e}")))?;
    if let Some(len) = declared_length(req) {
        // For an encoded body the declared length is the compressed size; still, a body
        // that claims more than the limit compressed is over it inflated too.
        if len > limit {
            return Err(BodyError::TooLarge { limit });
        }
    }
    let work = async {
        let mut payload = payload;
        let mut inf = Inflater::new(enc, limit);
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| BodyError::Transport(e.to_string()))?;
            inf.push(&chunk).map_err(|e| io_to_body(e, limit))?;
        }
        inf.finish().map_err(|e| io_to_body(e, limit))
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r.map(web::Bytes::from),
        Err(_) => Err(BodyError::Timeout),
    }
}

#[cfg(test)]
#[allow(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used
)]
mod tests {
    use super::*;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use flate2::Compression;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn every_encoding_inflates_in_any_chunking() {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        let zlib = {
            let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
            e.write_all(&data).unwrap();
            e.finish().unwrap()
        };
        let raw = {
            let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
            e.write_all(&data).unwrap();
            e.finish().unwrap()
        };
        for (enc, bytes) in [
            (Encoding::Identity, data.clone()),
            (Encoding::Gzip, gzip(&data)),
            (Encoding::Deflate, zlib),
            (Encoding::Deflate, raw),
        ] {
            for size in [1usize, 7, 4096, bytes.len()] {
                let got = inflate(enc, bytes.chunks(size), 1 << 20).unwrap();
                assert_eq!(got, data, "{enc:?} in chunks of {size}");
            }
        }
    }

    #[test]
    fn a_compression_bomb_stops_at_the_limit() {
        // 256 MiB of zeros compress to about 250 KiB; inflating stops at 1 MiB.
        let mut e = GzEncoder::new(Vec::new(), Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..256 {
            e.write_all(&zeros).unwrap();
        }
        let bomb = e.finish().unwrap();
        assert!(bomb.len() < 1 << 20);
        assert_eq!(
            inflate(Encoding::Gzip, bomb.chunks(64 * 1024), 1 << 20),
            Err(BodyError::TooLarge { limit: 1 << 20 })
        );
    }

    #[test]
    fn corrupt_streams_are_refused() {
        let mut bad = gzip(b"hello world");
        let n = bad.len();
        bad[n - 6] ^= 0xff; // the CRC
        assert!(matches!(
            inflate(Encoding::Gzip, [bad.as_slice()], 1024),
            Err(BodyError::Corrupt(_))
        ));
        assert!(matches!(
            inflate(Encoding::Gzip, [&b"not gzip at all"[..]], 1024),
            Err(BodyError::Corrupt(_))
        ));
        assert_eq!(
            inflate(Encoding::Identity, [&[0u8; 10][..]], 9),
            Err(BodyError::TooLarge { limit: 9 })
        );
    }
}
