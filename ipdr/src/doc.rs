//! Whole IPDR documents, sans IO (spec §5–§7): IPDR/XML `IPDRDoc` (including TR-232
//! `BulkDataReport`) and IPDR/XDR files (compact encoding, version 4), parsed into one
//! [`Document`] model, plus writers for tests, the simulator and round trips.
//!
//! * [`parse`] sniffs the encoding (XML when the first non-blank byte is `<`);
//!   [`parse_xml`] and [`parse_xdr`] take one each.
//! * Every record becomes a [`DocRecord`]. TR-232 reports also become a
//!   [`BulkDataReport`] ([`DocRecord::bulk_data`]), with values made printable as TR-232
//!   requires ([`tr232_printable`]).
//! * XML never gets a DTD: a document with `<!DOCTYPE` is refused and entities are never
//!   expanded. The five predefined entities and character references are unescaped; any
//!   other `&…` is kept literally (some CPEs do not escape values at all).
//! * [`DocLimits`] bounds everything a hostile document could inflate. Errors never panic
//!   and carry a position (byte offset, or XML line and column).
//! * [`encode_xdr`] writes a [`Document`] as an IPDR/XDR file, deriving the record
//!   descriptors from each record's type name and field values;
//!   [`encode_xml_tr232`] writes TR-232 reports as a CPE does.

// Outside input: no panicking arithmetic, indexing or unwrapping here (clippy enforces it).
#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::net::Ipv6Addr;
use std::sync::Arc;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{PrefixDeclaration, ResolveResult};
use quick_xml::NsReader;
use thiserror::Error;

use crate::codec::wire::{len_u32, put_u32, put_u64, Reader};
use crate::codec::{DecodeError, FieldDescriptor, TemplateBlock};
use crate::tr232::{tr232_printable, BulkDataLayout, BulkDataReport, TR232_SCHEMA, TR232_TYPE};
use crate::xdr::{
    self, FieldName, Ipv6Encoding, RecordError, RecordOptions, Template, TypeId, Value,
};

/// Namespace of `IPDRDoc` (what instance documents and TR-232 use).
pub const IPDR_NAMESPACE: &str = "http://www.ipdr.org/namespaces/ipdr";
/// The upper-case variant one IPDR 3.5 XSD declares; accepted too.
pub const IPDR_NAMESPACE_UPPER: &str = "http://www.ipdr.org/namespaces/IPDR";
/// XML Schema instance namespace (`xsi:type`).
pub const XSI_NAMESPACE: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// The IPDR/XDR file encoding version this module reads and writes.
pub const XDR_FILE_VERSION: i32 = 4;

/// Structures nest at most this deep in IPDR/XDR descriptors, whatever
/// [`DocLimits::max_depth`] says (descriptors and records are read recursively).
pub const MAX_XDR_NESTING: usize = 64;

const INDEFINITE: u32 = 0xFFFF_FFFF;
const RECORDDESC: u32 = 1;
const IPDRREC: u32 = 2;
const DOCEND: u32 = 3;

// ---------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------

/// Which encoding a document came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocEncoding {
    Xml,
    Xdr,
}

/// One record of an IPDR document (XML or XDR).
#[derive(Debug, Clone, PartialEq)]
pub struct DocRecord {
    /// XML: `xsi:type` without its prefix. XDR: the descriptor's typeName.
    pub type_name: String,
    /// XML: the record's `seqNum` element. XDR: a top-level integer field `seqNum`.
    pub seq_num: Option<u64>,
    /// Milliseconds since the epoch. XML: the record's `IPDRCreationTime` element. XDR: a
    /// top-level `IPDRCreationTime` field (dateTimeMsec, dateTime or dateTimeUsec).
    pub creation_time_ms: Option<u64>,
    /// XDR: typed values, in descriptor order (arrays and structures as in [`xdr`]).
    /// XML: every leaf element in document order as a [`Value::String`] (the raw text,
    /// unescaped); nested elements are named by their local-name path joined with `.`
    /// (`BulkData.Name`), repeated elements give repeated entries. `IPDRCreationTime` and
    /// `seqNum` are kept here too.
    pub fields: Vec<(FieldName, Value)>,
    /// Some for TR-232 `BulkDataReport` records (XML or XDR) that carry OUI, ProductClass
    /// and SerialNumber. Values are printable ASCII ([`tr232_printable`]). Its
    /// `creation_time_ms` is the record's, else the document's, else 0.
    pub bulk_data: Option<BulkDataReport>,
}

/// A parsed IPDR document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub encoding: DocEncoding,
    /// XML: the `docId` attribute (trimmed). XDR: the 16-byte docId as a lower-case
    /// hyphenated UUID (other lengths as lower-case hex).
    pub doc_id: String,
    /// XML: the `version` attribute ("3.5.1"; empty when absent). XDR: the encoding
    /// version ("4").
    pub version: String,
    /// XML: `IPDRRecorderInfo`. XDR: the header's ipdrRecorderInfo.
    pub recorder_info: String,
    /// XML: `creationTime`. XDR: the header's startTime, taken as milliseconds (spec §5
    /// quirk); 0 or negative gives `None`.
    pub creation_time_ms: Option<u64>,
    /// XML: the default namespace declared on the root (`xmlns="…"`; TR-232 CPEs declare
    /// the TR-232 URN). XDR: the header's defaultNameSpaceURI (`None` when empty).
    pub default_namespace: Option<String>,
    pub records: Vec<DocRecord>,
    /// XML: `IPDRDoc.End/@count`. XDR: the DOCEND count (`None` for -1, "unknown").
    /// A mismatch with `records.len()` is not an error: see [`Document::count_mismatch`].
    pub declared_count: Option<i64>,
    /// XML: `IPDRDoc.End/@endTime`. XDR: the DOCEND endTime (0 or negative gives `None`).
    pub end_time_ms: Option<u64>,
}

impl Document {
    /// `(declared, actual)` when the document declares a record count that differs from
    /// the records it holds.
    pub fn count_mismatch(&self) -> Option<(i64, usize)> {
        match self.declared_count {
            Some(c) if c != self.records.len() as i64 => Some((c, self.records.len())),
            _ => None,
        }
    }

    /// The TR-232 reports of the document, in record order.
    pub fn reports(&self) -> impl Iterator<Item = &BulkDataReport> + '_ {
        self.records.iter().filter_map(|r| r.bulk_data.as_ref())
    }
}

/// Bounds on what one document may contain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocLimits {
    /// Size of the whole document.
    pub max_bytes: usize,
    pub max_records: usize,
    /// XML: leaf elements per record. XDR: attributes per descriptor (nested ones
    /// included) and values per record (every primitive value; each element of an array
    /// of empty structures counts as one).
    pub max_fields_per_record: usize,
    /// Bytes of one string: an XML attribute value or element text; an XDR string or
    /// hexBinary value, name or header string.
    pub max_string_len: usize,
    /// XML: element nesting depth (the root is 1). XDR: structure nesting depth (at most
    /// [`MAX_XDR_NESTING`]).
    pub max_depth: usize,
}

impl Default for DocLimits {
    /// 64 MiB, 1,000,000 records, 100,000 fields per record, 1 MiB strings, depth 32.
    fn default() -> Self {
        DocLimits {
            max_bytes: 64 << 20,
            max_records: 1_000_000,
            max_fields_per_record: 100_000,
            max_string_len: 1 << 20,
            max_depth: 32,
        }
    }
}

/// Whether IPDRREC elements carry `FF FF FF FF` after the descriptorId (spec §5
/// discrepancy: the spec example has it, the Amdocs writer and `example.xdr` do not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordMarker {
    /// Per record: the marker is taken as present when the 4 bytes after descriptorId are
    /// `FF FF FF FF` and decoding the record with it ends at a valid next stream element;
    /// otherwise absent. Ambiguous only when the first field is an int equal to -1 and
    /// both readings happen to line up: configure the source explicitly when that matters.
    #[default]
    Auto,
    Present,
    Absent,
}

/// Per-source options of the IPDR/XDR file reader.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct XdrFileOptions {
    pub record_marker: RecordMarker,
    /// Layout of `ipdr:ipV6Addr` values. With [`Ipv6Encoding::Auto`] a zero length word is
    /// read as "absent", unless only the `example.xdr` quirk (zero length word followed by
    /// 16 address bytes) makes the record end at a valid next stream element.
    pub ipv6: Ipv6Encoding,
}

/// Options of [`encode_xdr`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdrEncodeOptions {
    /// Write `FF FF FF FF` after each record's descriptorId (as the spec example does).
    pub record_marker: bool,
}

impl Default for XdrEncodeOptions {
    fn default() -> Self {
        XdrEncodeOptions {
            record_marker: true,
        }
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Where in a document something went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Byte offset (XDR documents, and limits checked before parsing).
    Byte(usize),
    /// XML: line and column (from 1; the column counts bytes) and the byte offset in the
    /// decoded text (after a byte-order mark).
    Xml {
        line: usize,
        column: usize,
        offset: usize,
    },
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Byte(o) => write!(f, "byte {o}"),
            Position::Xml { line, column, .. } => write!(f, "line {line}, column {column}"),
        }
    }
}

fn version_hint(v: i32) -> &'static str {
    if v == 3 {
        " (version 3 is IPDR 3.0/3.1: 4-byte padded, with different type ids; only version 4 is read)"
    } else {
        " (only version 4 is read)"
    }
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DocError {
    #[error("the document is empty")]
    Empty,
    #[error("document of {size} bytes exceeds the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    /// A DOCTYPE or entity declaration: never expanded (entity bombs, XXE).
    #[error("{at}: DOCTYPE/DTD or entity declarations are not allowed")]
    Dtd { at: Position },
    #[error("{at}: malformed XML: {message}")]
    Malformed { at: Position, message: String },
    #[error("{at}: the root element is {found}, not IPDRDoc in namespace {IPDR_NAMESPACE}")]
    NotIpdrDoc { at: Position, found: String },
    #[error("{at}: <{element}> lacks the required attribute `{attribute}`")]
    MissingAttribute {
        at: Position,
        element: &'static str,
        attribute: &'static str,
    },
    #[error("{at}: invalid {what}: {value:?}")]
    InvalidValue {
        at: Position,
        what: &'static str,
        value: String,
    },
    #[error("{at}: {what} exceeds the limit of {limit}")]
    LimitExceeded {
        at: Position,
        what: &'static str,
        limit: usize,
    },
    #[error("{at}: IPDR/XDR version {version} is not supported{}", version_hint(*.version))]
    UnsupportedVersion { at: Position, version: i32 },
    #[error("{at}: the document ends inside `{what}` (needs {needed} bytes, {available} left)")]
    Truncated {
        at: Position,
        what: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("{at}: {message}")]
    InvalidXdr { at: Position, message: String },
    #[error("{at}: IPDRREC uses descriptor {descriptor_id}, which no earlier RECORDDESC defines")]
    UnknownDescriptor { at: Position, descriptor_id: i32 },
    #[error("{at}: attribute `{attribute}` has unsupported type id {type_id}")]
    UnsupportedType {
        at: Position,
        attribute: String,
        type_id: TypeId,
    },
    /// A record that does not decode against its descriptor (`at` is the IPDRREC start).
    #[error("{at}: record {index} (descriptor {descriptor_id}): {source}")]
    Record {
        at: Position,
        index: usize,
        descriptor_id: i32,
        source: RecordError,
    },
    #[error("{at}: {count} bytes after DOCEND")]
    TrailingBytes { at: Position, count: usize },
    #[error("{at}: the document ends without DOCEND")]
    MissingDocEnd { at: Position },
}

/// Why [`encode_xdr`] could not write a document.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DocEncodeError {
    #[error("docId {0:?} is not a UUID")]
    DocId(String),
    #[error("header: {0}")]
    Header(String),
    #[error("record {index}: {reason}")]
    Record { index: usize, reason: String },
}

// ---------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------

/// True when `bytes` look like XML: a UTF-16 byte-order mark, or `<` as the first byte
/// that is not blank (after an optional UTF-8 byte-order mark).
pub fn looks_like_xml(bytes: &[u8]) -> bool {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return true;
    }
    let b = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    b.iter().find(|c| !c.is_ascii_whitespace()) == Some(&b'<')
}

/// Parses an IPDR document of either encoding ([`looks_like_xml`] decides); XDR with
/// default [`XdrFileOptions`].
pub fn parse(bytes: &[u8], limits: &DocLimits) -> Result<Document, DocError> {
    if looks_like_xml(bytes) {
        parse_xml(bytes, limits)
    } else {
        parse_xdr(bytes, &XdrFileOptions::default(), limits)
    }
}

fn check_size(bytes: &[u8], limits: &DocLimits) -> Result<(), DocError> {
    if bytes.len() > limits.max_bytes {
        return Err(DocError::TooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    Ok(())
}

fn local_name(n: &str) -> &str {
    n.rsplit(':').next().unwrap_or(n)
}

// ---------------------------------------------------------------------------
// IPDR/XML
// ---------------------------------------------------------------------------

/// Parses an IPDR/XML `IPDRDoc` (spec §6, §7).
///
/// UTF-8 (an optional byte-order mark; invalid sequences become U+FFFD) or UTF-16 with a
/// byte-order mark. Refused: a DOCTYPE, XML that is not well-formed (including a truncated
/// document), a root other than `IPDRDoc` in the IPDR namespace, a missing `docId`, an
/// unparsable time, count or `seqNum`, and anything over `limits`. Unknown children of the
/// root and attributes are ignored.
pub fn parse_xml(bytes: &[u8], limits: &DocLimits) -> Result<Document, DocError> {
    check_size(bytes, limits)?;
    let text = decode_text(bytes);
    if text.trim().is_empty() {
        return Err(DocError::Empty);
    }
    xmlguard::check(text.as_bytes(), &xmlguard::Bounds::default()).map_err(|e| {
        DocError::LimitExceeded {
            at: Position::Byte(e.offset),
            what: e.what,
            limit: e.limit,
        }
    })?;
    XmlParser::new(&text, limits).run()
}

fn decode_text(body: &[u8]) -> Cow<'_, str> {
    if let Some(rest) = body.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return String::from_utf8_lossy(rest);
    }
    if let Some(text) = xmlguard::decode_utf16_bom(body) {
        return Cow::Owned(text);
    }
    String::from_utf8_lossy(body)
}

fn xml_pos(text: &str, offset: usize) -> Position {
    let b = text.as_bytes();
    let offset = offset.min(b.len());
    let before = b.get(..offset).unwrap_or_default();
    let line = before
        .iter()
        .filter(|&&c| c == b'\n')
        .count()
        .saturating_add(1);
    let line_start = before
        .iter()
        .rposition(|&c| c == b'\n')
        .map_or(0, |i| i.saturating_add(1));
    Position::Xml {
        line,
        column: offset.saturating_sub(line_start).saturating_add(1),
        offset,
    }
}

fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Unescapes the five predefined entities and character references; anything else that
/// starts with `&` is kept as it is (never expanded).
fn unescape(raw: &str) -> Cow<'_, str> {
    if !raw.contains('&') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some((before, after)) = rest.split_once('&') {
        out.push_str(before);
        let resolved = after
            .split_once(';')
            .filter(|(name, _)| name.len() <= 12)
            .and_then(|(name, tail)| {
                let c = match name {
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "amp" => Some('&'),
                    "apos" => Some('\''),
                    "quot" => Some('"'),
                    _ => {
                        let code = if let Some(h) =
                            name.strip_prefix("#x").or_else(|| name.strip_prefix("#X"))
                        {
                            u32::from_str_radix(h, 16).ok()
                        } else if let Some(d) = name.strip_prefix('#') {
                            d.parse::<u32>().ok()
                        } else {
                            None
                        };
                        code.filter(|&c| c != 0).and_then(char::from_u32)
                    }
                };
                c.map(|c| (c, tail))
            });
        match resolved {
            Some((c, tail)) => {
                out.push(c);
                rest = tail;
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Parses an `ipdr:dateTimeMsec` (`2012-05-01T10:00:00.123Z`): RFC 3339 with any offset
/// and any number of fraction digits (truncated to milliseconds); no offset means UTC.
fn parse_time_ms(s: &str) -> Option<u64> {
    let s = s.trim();
    let ms = match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) => t.timestamp_millis(),
        Err(_) => chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()?
            .and_utc()
            .timestamp_millis(),
    };
    u64::try_from(ms).ok()
}

fn format_time_ms(ms: u64) -> String {
    let t = i64::try_from(ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .unwrap_or_default();
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

enum Frame {
    Root,
    Record,
    /// An element inside a record: `text` collects a leaf's content until a child shows
    /// up (then it is not a leaf, and its own text is dropped).
    Field {
        text: String,
        has_child: bool,
    },
    /// `IPDRDoc.End` or an unknown child of the root, and everything inside.
    Ignored,
}

#[derive(Default)]
struct XmlRecord {
    type_name: String,
    fields: Vec<(FieldName, Value)>,
    /// Local names of the open elements inside the record.
    path: Vec<String>,
    seq_num: Option<u64>,
    creation_time_ms: Option<u64>,
    oui: Option<String>,
    product_class: Option<String>,
    serial_number: Option<String>,
    suspect: Option<bool>,
    pairs: Vec<(String, String)>,
    /// The `BulkData` element being read: (Name, Value).
    pair: Option<(Option<String>, Option<String>)>,
    has_bulk: bool,
}

impl XmlRecord {
    fn close_pair(&mut self) {
        if let Some((Some(name), value)) = self.pair.take() {
            self.pairs.push((
                name.trim().to_string(),
                tr232_printable(value.as_deref().unwrap_or("")),
            ));
        }
    }

    fn finish(mut self, doc_time: Option<u64>) -> DocRecord {
        self.close_pair();
        let is_tr232 = local_name(&self.type_name) == TR232_TYPE || self.has_bulk;
        let bulk_data = match (self.oui, self.product_class, self.serial_number) {
            (Some(oui), Some(product_class), Some(serial_number)) if is_tr232 => {
                Some(BulkDataReport {
                    creation_time_ms: self.creation_time_ms.or(doc_time).unwrap_or(0),
                    oui,
                    product_class,
                    serial_number,
                    suspect: self.suspect.unwrap_or(false),
                    bulk_data: self.pairs,
                })
            }
            _ => None,
        };
        DocRecord {
            type_name: self.type_name,
            seq_num: self.seq_num,
            creation_time_ms: self.creation_time_ms,
            fields: self.fields,
            bulk_data,
        }
    }
}

struct XmlParser<'t, 'l> {
    text: &'t str,
    limits: &'l DocLimits,
    stack: Vec<Frame>,
    doc: Option<Document>,
    record: Option<XmlRecord>,
    root_done: bool,
    /// Field names are interned: a report repeats `BulkData.Name` many times.
    names: HashMap<String, FieldName>,
}

type Xml<'t> = NsReader<&'t [u8]>;

/// The root element's namespace, owned.
enum RootNs {
    Bound(String),
    Unbound,
    Unknown(String),
}

impl RootNs {
    fn of(res: &ResolveResult<'_>) -> RootNs {
        match res {
            ResolveResult::Bound(ns) => {
                RootNs::Bound(String::from_utf8_lossy(ns.as_ref()).into_owned())
            }
            ResolveResult::Unbound => RootNs::Unbound,
            ResolveResult::Unknown(p) => RootNs::Unknown(String::from_utf8_lossy(p).into_owned()),
        }
    }
}

impl<'t, 'l> XmlParser<'t, 'l> {
    fn new(text: &'t str, limits: &'l DocLimits) -> Self {
        XmlParser {
            text,
            limits,
            stack: Vec::new(),
            doc: None,
            record: None,
            root_done: false,
            names: HashMap::new(),
        }
    }

    fn at(&self, offset: usize) -> Position {
        xml_pos(self.text, offset)
    }

    fn run(mut self) -> Result<Document, DocError> {
        let mut reader = NsReader::from_str(self.text);
        {
            let cfg = reader.config_mut();
            cfg.check_end_names = true;
            cfg.allow_unmatched_ends = false;
            cfg.expand_empty_elements = false;
            cfg.check_comments = true;
            cfg.trim_text(false);
        }
        loop {
            let pos = reader.buffer_position() as usize;
            let (res, ev) = match reader.read_resolved_event() {
                Ok(x) => x,
                Err(e) => {
                    let at = self.at(reader.error_position() as usize);
                    // quick-xml only knows DOCTYPE; a stray entity declaration is a syntax
                    // error to it but is reported as the DTD attempt it is.
                    let b = self.text.as_bytes();
                    if contains_ignore_case(b, b"<!DOCTYPE") || contains_ignore_case(b, b"<!ENTITY")
                    {
                        return Err(DocError::Dtd { at });
                    }
                    return Err(DocError::Malformed {
                        at,
                        message: e.to_string(),
                    });
                }
            };
            match ev {
                Event::DocType(_) => return Err(DocError::Dtd { at: self.at(pos) }),
                Event::Start(ref e) | Event::Empty(ref e) => {
                    // Only the root's namespace matters; resolve it before the reader is
                    // needed again.
                    let ns = self.stack.is_empty().then(|| RootNs::of(&res));
                    self.start(&reader, ns, e, pos)?;
                    if matches!(ev, Event::Empty(_)) {
                        self.end(pos)?;
                    }
                }
                Event::End(_) => self.end(pos)?,
                Event::Text(ref t) => {
                    let raw = String::from_utf8_lossy(t);
                    self.text_content(&unescape(&raw), pos)?;
                }
                Event::CData(ref c) => {
                    let raw = String::from_utf8_lossy(c);
                    if self.stack.is_empty() {
                        return Err(DocError::Malformed {
                            at: self.at(pos),
                            message: "CDATA outside the root element".into(),
                        });
                    }
                    self.text_content(&raw, pos)?;
                }
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
                Event::Eof => break,
            }
        }
        let end = self.text.len();
        if !self.stack.is_empty() {
            return Err(DocError::Malformed {
                at: self.at(end),
                message: format!(
                    "unexpected end of document ({} elements left open)",
                    self.stack.len()
                ),
            });
        }
        self.doc.ok_or_else(|| DocError::Malformed {
            at: xml_pos(self.text, end),
            message: "no root element".into(),
        })
    }

    fn attr_value(
        &self,
        a: &quick_xml::events::attributes::Attribute<'_>,
        pos: usize,
    ) -> Result<String, DocError> {
        let raw = String::from_utf8_lossy(&a.value);
        let v = unescape(&raw).into_owned();
        if v.len() > self.limits.max_string_len {
            return Err(DocError::LimitExceeded {
                at: self.at(pos),
                what: "attribute value length",
                limit: self.limits.max_string_len,
            });
        }
        Ok(v)
    }

    fn start(
        &mut self,
        reader: &Xml<'t>,
        root_ns: Option<RootNs>,
        e: &BytesStart<'_>,
        pos: usize,
    ) -> Result<(), DocError> {
        if self.stack.len() >= self.limits.max_depth {
            return Err(DocError::LimitExceeded {
                at: self.at(pos),
                what: "element nesting depth",
                limit: self.limits.max_depth,
            });
        }
        let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
        match self.stack.last_mut() {
            None => {
                if self.root_done {
                    return Err(DocError::Malformed {
                        at: self.at(pos),
                        message: "a second root element".into(),
                    });
                }
                self.root(root_ns.unwrap_or(RootNs::Unbound), e, &local, pos)?;
                self.stack.push(Frame::Root);
            }
            Some(Frame::Root) => match local.as_str() {
                "IPDR" => {
                    let count = self.doc.as_ref().map_or(0, |d| d.records.len());
                    if count >= self.limits.max_records {
                        return Err(DocError::LimitExceeded {
                            at: self.at(pos),
                            what: "record count",
                            limit: self.limits.max_records,
                        });
                    }
                    let mut type_name = String::new();
                    for a in e.attributes() {
                        let a = a.map_err(|err| self.malformed(pos, err))?;
                        let (ns, attr_local) = reader.resolve_attribute(a.key);
                        let is_xsi_type = attr_local.as_ref() == b"type"
                            && match ns {
                                ResolveResult::Bound(ns) => ns.as_ref() == XSI_NAMESPACE.as_bytes(),
                                _ => a.key.as_ref() == b"xsi:type",
                            };
                        if is_xsi_type {
                            let v = self.attr_value(&a, pos)?;
                            type_name = local_name(v.trim()).to_string();
                        }
                    }
                    self.record = Some(XmlRecord {
                        type_name,
                        ..XmlRecord::default()
                    });
                    self.stack.push(Frame::Record);
                }
                "IPDRDoc.End" => {
                    self.doc_end(e, pos)?;
                    self.stack.push(Frame::Ignored);
                }
                _ => self.stack.push(Frame::Ignored),
            },
            Some(Frame::Record) | Some(Frame::Field { .. }) => {
                if let Some(Frame::Field { text, has_child }) = self.stack.last_mut() {
                    *has_child = true;
                    *text = String::new();
                }
                if let Some(rec) = self.record.as_mut() {
                    if rec.path.is_empty() && local == "BulkData" {
                        rec.close_pair();
                        rec.pair = Some((None, None));
                        rec.has_bulk = true;
                    }
                    rec.path.push(local);
                }
                self.stack.push(Frame::Field {
                    text: String::new(),
                    has_child: false,
                });
            }
            Some(Frame::Ignored) => self.stack.push(Frame::Ignored),
        }
        Ok(())
    }

    fn malformed(&self, pos: usize, e: impl fmt::Display) -> DocError {
        DocError::Malformed {
            at: self.at(pos),
            message: e.to_string(),
        }
    }

    fn root(
        &mut self,
        ns: RootNs,
        e: &BytesStart<'_>,
        local: &str,
        pos: usize,
    ) -> Result<(), DocError> {
        let ns_ok = matches!(&ns, RootNs::Bound(ns)
            if ns == IPDR_NAMESPACE || ns == IPDR_NAMESPACE_UPPER);
        if local != "IPDRDoc" || !ns_ok {
            let ns = match ns {
                RootNs::Bound(ns) => format!("in namespace {ns}"),
                RootNs::Unbound => "without a namespace".to_string(),
                RootNs::Unknown(p) => format!("with the undeclared prefix {p}"),
            };
            return Err(DocError::NotIpdrDoc {
                at: self.at(pos),
                found: format!("<{local}> {ns}"),
            });
        }
        let mut doc = Document {
            encoding: DocEncoding::Xml,
            doc_id: String::new(),
            version: String::new(),
            recorder_info: String::new(),
            creation_time_ms: None,
            default_namespace: None,
            records: Vec::new(),
            declared_count: None,
            end_time_ms: None,
        };
        let mut doc_id = None;
        for a in e.attributes() {
            let a = a.map_err(|err| self.malformed(pos, err))?;
            if let Some(binding) = a.key.as_namespace_binding() {
                if binding == PrefixDeclaration::Default {
                    doc.default_namespace = Some(self.attr_value(&a, pos)?);
                }
                continue;
            }
            match a.key.local_name().as_ref() {
                b"docId" => doc_id = Some(self.attr_value(&a, pos)?.trim().to_string()),
                b"version" => doc.version = self.attr_value(&a, pos)?.trim().to_string(),
                b"IPDRRecorderInfo" => doc.recorder_info = self.attr_value(&a, pos)?,
                b"creationTime" => {
                    let v = self.attr_value(&a, pos)?;
                    doc.creation_time_ms =
                        Some(parse_time_ms(&v).ok_or_else(|| DocError::InvalidValue {
                            at: self.at(pos),
                            what: "IPDRDoc creationTime",
                            value: v,
                        })?);
                }
                _ => {}
            }
        }
        doc.doc_id =
            doc_id
                .filter(|d| !d.is_empty())
                .ok_or_else(|| DocError::MissingAttribute {
                    at: self.at(pos),
                    element: "IPDRDoc",
                    attribute: "docId",
                })?;
        self.doc = Some(doc);
        Ok(())
    }

    fn doc_end(&mut self, e: &BytesStart<'_>, pos: usize) -> Result<(), DocError> {
        let (mut count, mut end) = (None, None);
        for a in e.attributes() {
            let a = a.map_err(|err| self.malformed(pos, err))?;
            match a.key.local_name().as_ref() {
                b"count" => {
                    let v = self.attr_value(&a, pos)?;
                    count = Some(
                        v.trim()
                            .parse::<i64>()
                            .map_err(|_| DocError::InvalidValue {
                                at: self.at(pos),
                                what: "IPDRDoc.End count",
                                value: v.clone(),
                            })?,
                    );
                }
                b"endTime" => {
                    let v = self.attr_value(&a, pos)?;
                    end = Some(parse_time_ms(&v).ok_or_else(|| DocError::InvalidValue {
                        at: self.at(pos),
                        what: "IPDRDoc.End endTime",
                        value: v.clone(),
                    })?);
                }
                _ => {}
            }
        }
        if let Some(doc) = self.doc.as_mut() {
            doc.declared_count = count;
            doc.end_time_ms = end;
        }
        Ok(())
    }

    fn text_content(&mut self, s: &str, pos: usize) -> Result<(), DocError> {
        match self.stack.last_mut() {
            None => {
                if !s.trim().is_empty() {
                    return Err(DocError::Malformed {
                        at: xml_pos(self.text, pos),
                        message: "text outside the root element".into(),
                    });
                }
            }
            Some(Frame::Field {
                text,
                has_child: false,
            }) => {
                if text.len().saturating_add(s.len()) > self.limits.max_string_len {
                    return Err(DocError::LimitExceeded {
                        at: xml_pos(self.text, pos),
                        what: "element text length",
                        limit: self.limits.max_string_len,
                    });
                }
                text.push_str(s);
            }
            Some(_) => {}
        }
        Ok(())
    }

    fn end(&mut self, pos: usize) -> Result<(), DocError> {
        let frame = self
            .stack
            .pop()
            .ok_or_else(|| self.malformed(pos, "unexpected end tag"))?;
        match frame {
            Frame::Root => self.root_done = true,
            Frame::Ignored => {}
            Frame::Record => {
                if let (Some(rec), Some(doc)) = (self.record.take(), self.doc.as_mut()) {
                    let r = rec.finish(doc.creation_time_ms);
                    doc.records.push(r);
                }
            }
            Frame::Field { text, has_child } => {
                // Only an error needs the line and column (counting them is linear).
                let source = self.text;
                let at = || xml_pos(source, pos);
                let limits = self.limits;
                let Some(rec) = self.record.as_mut() else {
                    return Ok(());
                };
                let Some(name) = rec.path.pop() else {
                    return Ok(());
                };
                let depth = rec.path.len().saturating_add(1);
                if !has_child {
                    if rec.fields.len() >= limits.max_fields_per_record {
                        return Err(DocError::LimitExceeded {
                            at: at(),
                            what: "fields per record",
                            limit: limits.max_fields_per_record,
                        });
                    }
                    if depth == 1 {
                        let v = text.trim();
                        match name.as_str() {
                            "IPDRCreationTime" => {
                                rec.creation_time_ms = Some(parse_time_ms(v).ok_or_else(|| {
                                    DocError::InvalidValue {
                                        at: at(),
                                        what: "IPDRCreationTime",
                                        value: text.clone(),
                                    }
                                })?);
                            }
                            "seqNum" => {
                                rec.seq_num =
                                    Some(v.parse::<u64>().map_err(|_| DocError::InvalidValue {
                                        at: at(),
                                        what: "seqNum",
                                        value: text.clone(),
                                    })?);
                            }
                            "OUI" => rec.oui = Some(v.to_string()),
                            "ProductClass" => rec.product_class = Some(v.to_string()),
                            "SerialNumber" => rec.serial_number = Some(v.to_string()),
                            // Anything but false is taken as suspect: an unreadable flag
                            // does not vouch for the data.
                            "Suspect" => {
                                rec.suspect = Some(!(v.eq_ignore_ascii_case("false") || v == "0"));
                            }
                            _ => {}
                        }
                    } else if depth == 2 && rec.path.first().is_some_and(|p| p == "BulkData") {
                        if let Some(pair) = rec.pair.as_mut() {
                            match name.as_str() {
                                "Name" => pair.0 = Some(text.clone()),
                                "Value" => pair.1 = Some(text.clone()),
                                _ => {}
                            }
                        }
                    }
                    let mut full = String::new();
                    for p in &rec.path {
                        full.push_str(p);
                        full.push('.');
                    }
                    full.push_str(&name);
                    let field = match self.names.get(&full) {
                        Some(f) => f.clone(),
                        None => {
                            let f: FieldName = Arc::from(full.as_str());
                            self.names.insert(full, f.clone());
                            f
                        }
                    };
                    rec.fields.push((field, Value::String(text)));
                }
                if depth == 1 && name == "BulkData" {
                    rec.close_pair();
                }
            }
        }
        Ok(())
    }
}

fn escape_xml(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Not allowed in XML 1.0 at all.
            c if (c < ' ' && !matches!(c, '\t' | '\n' | '\r'))
                || c == '\u{FFFE}'
                || c == '\u{FFFF}' =>
            {
                out.push('.')
            }
            c => out.push(c),
        }
    }
}

/// Writes TR-232 reports as an IPDR/XML document the way a CPE does (spec §7): root
/// `ipdr:IPDRDoc` (default namespace = TR-232 URN, `version="3.5.1"`), one
/// `ipdr:IPDR xsi:type="BulkDataReport"` per report (with `ipdr:IPDRCreationTime` when
/// the report's time is not 0; values made printable), and `ipdr:IPDRDoc.End` with the
/// count and `creation_time_ms` as endTime.
pub fn encode_xml_tr232(
    doc_id: &str,
    recorder_info: &str,
    creation_time_ms: u64,
    reports: &[BulkDataReport],
) -> String {
    let mut s = String::with_capacity(reports.len().saturating_mul(1024).saturating_add(512));
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    s.push_str("<ipdr:IPDRDoc xmlns:ipdr=\"");
    s.push_str(IPDR_NAMESPACE);
    s.push_str("\" xmlns=\"");
    s.push_str(TR232_SCHEMA);
    s.push_str("\" xmlns:xsi=\"");
    s.push_str(XSI_NAMESPACE);
    s.push_str("\" xsi:schemaLocation=\"");
    s.push_str(TR232_SCHEMA);
    s.push_str(" tr-232-1-0-0-serviceSpec.xsd ");
    s.push_str(IPDR_NAMESPACE);
    s.push_str(" http://www.ipdr.org/public/IPDRDoc3.5.1.xsd\" docId=\"");
    escape_xml(doc_id, &mut s);
    s.push_str("\" creationTime=\"");
    s.push_str(&format_time_ms(creation_time_ms));
    s.push_str("\" IPDRRecorderInfo=\"");
    escape_xml(recorder_info, &mut s);
    s.push_str("\" version=\"3.5.1\">\n");
    let element = |s: &mut String, name: &str, value: &str| {
        s.push('<');
        s.push_str(name);
        s.push('>');
        escape_xml(value, s);
        s.push_str("</");
        s.push_str(name);
        s.push_str(">\n");
    };
    for r in reports {
        s.push_str("<ipdr:IPDR xsi:type=\"");
        s.push_str(TR232_TYPE);
        s.push_str("\">\n");
        if r.creation_time_ms != 0 {
            element(
                &mut s,
                "ipdr:IPDRCreationTime",
                &format_time_ms(r.creation_time_ms),
            );
        }
        element(&mut s, "OUI", &r.oui);
        element(&mut s, "ProductClass", &r.product_class);
        element(&mut s, "SerialNumber", &r.serial_number);
        element(&mut s, "Suspect", if r.suspect { "true" } else { "false" });
        for (n, v) in &r.bulk_data {
            s.push_str("<BulkData>\n\t");
            s.push_str("<Name>");
            escape_xml(n, &mut s);
            s.push_str("</Name>\n\t<Value>");
            escape_xml(&tr232_printable(v), &mut s);
            s.push_str("</Value>\n</BulkData>\n");
        }
        s.push_str("</ipdr:IPDR>\n");
    }
    s.push_str("<ipdr:IPDRDoc.End count=\"");
    s.push_str(&reports.len().to_string());
    s.push_str("\" endTime=\"");
    s.push_str(&format_time_ms(creation_time_ms));
    s.push_str("\"/>\n</ipdr:IPDRDoc>\n");
    s
}

// ---------------------------------------------------------------------------
// IPDR/XDR files
// ---------------------------------------------------------------------------

/// One attribute of a record descriptor.
#[derive(Debug)]
struct XdrAttr {
    name: FieldName,
    type_id: TypeId,
    /// Structure members (empty for primitives).
    members: Vec<XdrAttr>,
    /// Fewest bytes one element takes (the whole value when not an array).
    elem_min: usize,
}

impl XdrAttr {
    fn min_len(&self) -> usize {
        if self.type_id.is_array() {
            4
        } else {
            self.elem_min
        }
    }
}

#[derive(Debug)]
struct XdrDescriptor {
    id: i32,
    type_name: String,
    attrs: Vec<XdrAttr>,
}

fn xdr_err(at: usize, e: DecodeError) -> DocError {
    let at = Position::Byte(at);
    match e {
        DecodeError::Truncated {
            field,
            needed,
            available,
        } => DocError::Truncated {
            at,
            what: field,
            needed,
            available,
        },
        other => DocError::InvalidXdr {
            at,
            message: other.to_string(),
        },
    }
}

fn rd_u32(r: &mut Reader<'_>, what: &'static str) -> Result<u32, DocError> {
    let at = r.position();
    r.u32(what).map_err(|e| xdr_err(at, e))
}

fn rd_u64(r: &mut Reader<'_>, what: &'static str) -> Result<u64, DocError> {
    let at = r.position();
    r.u64(what).map_err(|e| xdr_err(at, e))
}

fn rd_opaque<'a>(
    r: &mut Reader<'a>,
    what: &'static str,
    limits: &DocLimits,
) -> Result<&'a [u8], DocError> {
    let at = r.position();
    let b = r.opaque(what).map_err(|e| xdr_err(at, e))?;
    if b.len() > limits.max_string_len {
        return Err(DocError::LimitExceeded {
            at: Position::Byte(at),
            what: "string length",
            limit: limits.max_string_len,
        });
    }
    Ok(b)
}

fn rd_string(
    r: &mut Reader<'_>,
    what: &'static str,
    limits: &DocLimits,
) -> Result<String, DocError> {
    Ok(String::from_utf8_lossy(rd_opaque(r, what, limits)?).into_owned())
}

/// A count of items that each take at least `min` bytes, checked against what is left.
fn rd_count(
    r: &mut Reader<'_>,
    what: &'static str,
    min: usize,
    limit: usize,
    limit_what: &'static str,
) -> Result<usize, DocError> {
    let at = r.position();
    let n = rd_u32(r, what)? as usize;
    if n > limit {
        return Err(DocError::LimitExceeded {
            at: Position::Byte(at),
            what: limit_what,
            limit,
        });
    }
    if n.saturating_mul(min) > r.remaining() {
        return Err(DocError::Truncated {
            at: Position::Byte(at),
            what,
            needed: n.saturating_mul(min),
            available: r.remaining(),
        });
    }
    Ok(n)
}

fn format_doc_id(b: &[u8]) -> String {
    let mut s = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if b.len() == 16 && matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{x:02x}"));
    }
    s
}

fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let hex: Vec<u8> = s.trim().bytes().filter(|&c| c != b'-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let p = std::str::from_utf8(pair).ok()?;
        *o = u8::from_str_radix(p, 16).ok()?;
    }
    Some(out)
}

/// RECORDDESC body: descriptorId, typeName, attributes. An array attribute is followed by
/// its bound (i32, ignored), a structure by its member count (then the bound when it is
/// an array of structures) and the member descriptors (the reference library's layout,
/// spec §4).
fn read_descriptor(r: &mut Reader<'_>, limits: &DocLimits) -> Result<XdrDescriptor, DocError> {
    let id = rd_u32(r, "descriptorId")? as i32;
    let type_name = rd_string(r, "typeName", limits)?;
    let mut budget = limits.max_fields_per_record;
    let attrs = read_attrs(r, limits, 0, &mut budget)?;
    Ok(XdrDescriptor {
        id,
        type_name,
        attrs,
    })
}

fn read_attrs(
    r: &mut Reader<'_>,
    limits: &DocLimits,
    depth: usize,
    budget: &mut usize,
) -> Result<Vec<XdrAttr>, DocError> {
    // Each attribute takes at least a name length and a typeId.
    let n = rd_count(
        r,
        "attribute count",
        8,
        *budget,
        "attributes per descriptor",
    )?;
    *budget = budget.saturating_sub(n);
    let mut attrs = Vec::with_capacity(n);
    for _ in 0..n {
        attrs.push(read_attr(r, limits, depth, budget)?);
    }
    Ok(attrs)
}

fn read_attr(
    r: &mut Reader<'_>,
    limits: &DocLimits,
    depth: usize,
    budget: &mut usize,
) -> Result<XdrAttr, DocError> {
    let at = r.position();
    let name: FieldName = Arc::from(rd_string(r, "attributeName", limits)?);
    let type_id = TypeId(rd_u32(r, "typeId")?);
    if type_id.is_structure() {
        if depth.saturating_add(1) >= limits.max_depth.min(MAX_XDR_NESTING) {
            return Err(DocError::LimitExceeded {
                at: Position::Byte(at),
                what: "structure nesting depth",
                limit: limits.max_depth.min(MAX_XDR_NESTING),
            });
        }
        let n = rd_count(
            r,
            "structure member count",
            8,
            *budget,
            "attributes per descriptor",
        )?;
        *budget = budget.saturating_sub(n);
        if type_id.is_array() {
            rd_u32(r, "array bound")?;
        }
        let mut members = Vec::with_capacity(n);
        for _ in 0..n {
            members.push(read_attr(r, limits, depth.saturating_add(1), budget)?);
        }
        let elem_min = members
            .iter()
            .fold(0usize, |a, m| a.saturating_add(m.min_len()));
        Ok(XdrAttr {
            name,
            type_id,
            members,
            elem_min,
        })
    } else {
        if type_id.is_array() {
            rd_u32(r, "array bound")?;
        }
        let base = TypeId(type_id.0 & !TypeId::ARRAY_FLAG);
        let elem_min = xdr::primitive_min_len(base).ok_or_else(|| DocError::UnsupportedType {
            at: Position::Byte(at),
            attribute: name.to_string(),
            type_id,
        })?;
        Ok(XdrAttr {
            name,
            type_id,
            members: Vec::new(),
            elem_min,
        })
    }
}

/// Decodes one record's values against its descriptor.
struct Walk<'a, 'o> {
    r: Reader<'a>,
    options: &'o RecordOptions,
    /// Read a zero IPv6 length word as the `example.xdr` quirk (16 address bytes follow).
    quirk: bool,
    saw_zero_ipv6: bool,
    values_left: usize,
    limits: &'o DocLimits,
    index: usize,
    descriptor_id: i32,
    start: usize,
}

impl Walk<'_, '_> {
    fn record_error(&self, source: RecordError) -> DocError {
        DocError::Record {
            at: Position::Byte(self.start),
            index: self.index,
            descriptor_id: self.descriptor_id,
            source,
        }
    }

    fn too_many_values(&self, at: usize) -> DocError {
        DocError::LimitExceeded {
            at: Position::Byte(at),
            what: "values per record",
            limit: self.limits.max_fields_per_record,
        }
    }

    fn field(&mut self, a: &XdrAttr) -> Result<Value, DocError> {
        if !a.type_id.is_array() {
            return self.element(a);
        }
        let at = self.r.position();
        let count = match self.r.u32("") {
            Ok(c) => c as usize,
            Err(_) => {
                return Err(self.record_error(RecordError::Truncated {
                    field: a.name.clone(),
                    needed: 4,
                    available: self.r.remaining(),
                }))
            }
        };
        // Every element holds at least one value, except empty structures: those count
        // themselves.
        if count > self.values_left {
            return Err(self.too_many_values(at));
        }
        if a.elem_min == 0 {
            self.values_left = self.values_left.saturating_sub(count);
        }
        let needed = count.saturating_mul(a.elem_min);
        if needed > self.r.remaining() {
            return Err(self.record_error(RecordError::Truncated {
                field: a.name.clone(),
                needed,
                available: self.r.remaining(),
            }));
        }
        // Elements that take no bytes (empty structures) cannot justify a large allocation.
        let mut items = Vec::with_capacity(if a.elem_min == 0 {
            count.min(1024)
        } else {
            count
        });
        for _ in 0..count {
            items.push(self.element(a)?);
        }
        Ok(Value::Array(items))
    }

    fn element(&mut self, a: &XdrAttr) -> Result<Value, DocError> {
        if a.type_id.is_structure() {
            let mut members = Vec::with_capacity(a.members.len());
            for m in &a.members {
                let v = self.field(m)?;
                members.push((m.name.clone(), v));
            }
            return Ok(Value::Structure(members));
        }
        let at = self.r.position();
        if self.values_left == 0 {
            return Err(self.too_many_values(at));
        }
        self.values_left = self.values_left.saturating_sub(1);
        let base = TypeId(a.type_id.0 & !TypeId::ARRAY_FLAG);
        if base.0 & 0xffff == TypeId::IPV6_ADDR.0 && self.options.ipv6 == Ipv6Encoding::Auto {
            let mut peek = self.r.clone();
            if let Ok(0) = peek.u32("") {
                self.saw_zero_ipv6 = true;
                if self.quirk {
                    if let Ok(b) = peek.bytes16("") {
                        self.r = peek;
                        return Ok(Value::Ipv6Addr(Ipv6Addr::from(b)));
                    }
                }
            }
        }
        let v = match xdr::decode_primitive(base, &mut self.r, self.options, &a.name) {
            Some(Ok(v)) => v,
            Some(Err(e)) => return Err(self.record_error(e)),
            None => {
                return Err(DocError::UnsupportedType {
                    at: Position::Byte(at),
                    attribute: a.name.to_string(),
                    type_id: a.type_id,
                })
            }
        };
        let len = match &v {
            Value::String(s) => s.len(),
            Value::HexBinary(b) => b.len(),
            _ => 0,
        };
        if len > self.limits.max_string_len {
            return Err(DocError::LimitExceeded {
                at: Position::Byte(at),
                what: "string length",
                limit: self.limits.max_string_len,
            });
        }
        Ok(v)
    }
}

type Fields = Vec<(FieldName, Value)>;

/// One way of reading a record that worked: its values and where it ended.
struct Attempt<'a> {
    fields: Fields,
    r: Reader<'a>,
    marker: bool,
    /// A zero IPv6 length word was read as "absent" (a quirk reading may exist).
    saw_zero_ipv6: bool,
}

struct XdrParser<'a, 'l> {
    r: Reader<'a>,
    limits: &'l DocLimits,
    options: RecordOptions,
    marker: RecordMarker,
    descriptors: HashMap<i32, Arc<XdrDescriptor>>,
}

impl<'a> XdrParser<'a, '_> {
    /// Reads a record from `r` (just after its descriptorId) one way.
    fn attempt(
        &self,
        desc: &XdrDescriptor,
        mut r: Reader<'a>,
        marker: bool,
        quirk: bool,
        index: usize,
        start: usize,
    ) -> Result<Attempt<'a>, (DocError, usize, bool)> {
        if marker {
            let at = r.position();
            match r.u32("record marker") {
                Ok(INDEFINITE) => {}
                Ok(v) => {
                    return Err((
                        DocError::InvalidXdr {
                            at: Position::Byte(at),
                            message: format!(
                                "expected the record marker 0xFFFFFFFF after descriptorId, found 0x{v:08X}"
                            ),
                        },
                        at,
                        false,
                    ))
                }
                Err(e) => return Err((xdr_err(at, e), at, false)),
            }
        }
        let mut w = Walk {
            r,
            options: &self.options,
            quirk,
            saw_zero_ipv6: false,
            values_left: self.limits.max_fields_per_record,
            limits: self.limits,
            index,
            descriptor_id: desc.id,
            start,
        };
        let mut fields = Vec::with_capacity(desc.attrs.len());
        for a in &desc.attrs {
            match w.field(a) {
                Ok(v) => fields.push((a.name.clone(), v)),
                Err(e) => return Err((e, w.r.position(), w.saw_zero_ipv6)),
            }
        }
        Ok(Attempt {
            fields,
            r: w.r,
            marker,
            saw_zero_ipv6: w.saw_zero_ipv6,
        })
    }

    /// Reads one IPDRREC (after its discriminator): descriptorId, the marker if any, the
    /// values. Ambiguous readings (marker `Auto`, IPv6 zero length) are settled by which
    /// one ends at a valid next stream element.
    fn read_record(
        &mut self,
        index: usize,
        start: usize,
    ) -> Result<(Arc<XdrDescriptor>, Fields), DocError> {
        let id_at = self.r.position();
        let id = rd_u32(&mut self.r, "descriptorId")? as i32;
        let desc = self
            .descriptors
            .get(&id)
            .cloned()
            .ok_or(DocError::UnknownDescriptor {
                at: Position::Byte(id_at),
                descriptor_id: id,
            })?;
        let after_id = self.r.clone();
        let ff = matches!(after_id.clone().u32(""), Ok(INDEFINITE));
        let markers: &[bool] = match self.marker {
            RecordMarker::Present => &[true],
            RecordMarker::Absent => &[false],
            RecordMarker::Auto if ff => &[true, false],
            RecordMarker::Auto => &[false],
        };
        let quirk_possible = self.options.ipv6 == Ipv6Encoding::Auto;
        let mut fallback: Option<Attempt<'a>> = None;
        let mut best: Option<(DocError, usize)> = None;
        for &marker in markers {
            let mut quirk = false;
            loop {
                let saw_zero =
                    match self.attempt(&desc, after_id.clone(), marker, quirk, index, start) {
                        Ok(a) => {
                            let saw = a.saw_zero_ipv6;
                            let unambiguous =
                                markers.len() == 1 && !quirk && !(quirk_possible && saw);
                            if unambiguous || plausible_next(&a.r, &self.descriptors, self.limits) {
                                self.r = a.r;
                                return Ok((desc, a.fields));
                            }
                            // Neither reading may line up in a broken document: prefer the
                            // plain one without marker, as the spec's heuristic says.
                            if !quirk
                                && match &fallback {
                                    None => true,
                                    Some(f) => f.marker && !marker,
                                }
                            {
                                fallback = Some(a);
                            }
                            saw
                        }
                        Err((e, reached, saw)) => {
                            if match &best {
                                None => true,
                                Some((_, b)) => reached > *b,
                            } {
                                best = Some((e, reached));
                            }
                            saw
                        }
                    };
                if quirk_possible && saw_zero && !quirk {
                    quirk = true;
                    continue;
                }
                break;
            }
        }
        if let Some(a) = fallback {
            self.r = a.r;
            return Ok((desc, a.fields));
        }
        Err(best.map(|(e, _)| e).unwrap_or(DocError::InvalidXdr {
            at: Position::Byte(start),
            message: "record could not be read".into(),
        }))
    }

    fn run(mut self, mut doc: Document) -> Result<Document, DocError> {
        loop {
            let at = self.r.position();
            if self.r.remaining() == 0 {
                return Err(DocError::MissingDocEnd {
                    at: Position::Byte(at),
                });
            }
            match rd_u32(&mut self.r, "stream element kind")? {
                RECORDDESC => {
                    let d = read_descriptor(&mut self.r, self.limits)?;
                    self.descriptors.insert(d.id, Arc::new(d));
                }
                IPDRREC => {
                    if doc.records.len() >= self.limits.max_records {
                        return Err(DocError::LimitExceeded {
                            at: Position::Byte(at),
                            what: "record count",
                            limit: self.limits.max_records,
                        });
                    }
                    let (desc, fields) = self.read_record(doc.records.len(), at)?;
                    doc.records
                        .push(xdr_record(&desc, fields, doc.creation_time_ms));
                }
                DOCEND => {
                    let count = rd_u32(&mut self.r, "DOCEND count")? as i32;
                    let end = rd_u64(&mut self.r, "DOCEND endTime")? as i64;
                    doc.declared_count = (count != -1).then_some(i64::from(count));
                    doc.end_time_ms = u64::try_from(end).ok().filter(|&t| t > 0);
                    break;
                }
                kind => {
                    return Err(DocError::InvalidXdr {
                        at: Position::Byte(at),
                        message: format!(
                            "unknown stream element kind {kind} (1 RECORDDESC, 2 IPDRREC, 3 DOCEND)"
                        ),
                    })
                }
            }
        }
        if self.r.remaining() > 0 {
            return Err(DocError::TrailingBytes {
                at: Position::Byte(self.r.position()),
                count: self.r.remaining(),
            });
        }
        Ok(doc)
    }
}

/// Whether `r` is at something that can be the next stream element.
fn plausible_next(
    r: &Reader<'_>,
    descriptors: &HashMap<i32, Arc<XdrDescriptor>>,
    limits: &DocLimits,
) -> bool {
    let mut p = r.clone();
    match p.u32("") {
        Ok(RECORDDESC) => read_descriptor(&mut p, limits).is_ok(),
        Ok(IPDRREC) => matches!(p.u32(""), Ok(id) if descriptors.contains_key(&(id as i32))),
        Ok(DOCEND) => p.remaining() == 12,
        _ => false,
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    match *v {
        Value::Int(x) => u64::try_from(x).ok(),
        Value::UnsignedInt(x) => Some(x.into()),
        Value::Long(x) => u64::try_from(x).ok(),
        Value::UnsignedLong(x) => Some(x),
        Value::Short(x) => u64::try_from(x).ok(),
        Value::UnsignedShort(x) => Some(x.into()),
        Value::Byte(x) => u64::try_from(x).ok(),
        Value::UnsignedByte(x) => Some(x.into()),
        _ => None,
    }
}

fn as_time_ms(v: &Value) -> Option<u64> {
    match *v {
        Value::DateTimeMsec(t) => Some(t),
        Value::DateTime(s) => Some(u64::from(s) * 1000),
        Value::DateTimeUsec(us) => u64::try_from(us).ok().map(|us| us / 1000),
        _ => None,
    }
}

fn xdr_record(desc: &XdrDescriptor, fields: Fields, doc_time: Option<u64>) -> DocRecord {
    let mut seq_num = None;
    let mut creation_time_ms = None;
    for (n, v) in &fields {
        match local_name(n) {
            "seqNum" => seq_num = as_u64(v),
            // 0 is "no time": fall back to the header's startTime.
            "IPDRCreationTime" => creation_time_ms = as_time_ms(v).filter(|&t| t > 0),
            _ => {}
        }
    }
    let is_type = local_name(&desc.type_name) == TR232_TYPE;
    let bulk_data = BulkDataReport::from_fields(&fields)
        .filter(|r| is_type || !r.bulk_data.is_empty())
        .map(|mut r| {
            r.creation_time_ms = creation_time_ms.or(doc_time).unwrap_or(0);
            for (_, v) in r.bulk_data.iter_mut() {
                if !v.bytes().all(|b| (b' '..=b'~').contains(&b)) {
                    *v = tr232_printable(v);
                }
            }
            r
        });
    DocRecord {
        type_name: desc.type_name.clone(),
        seq_num,
        creation_time_ms,
        fields,
        bulk_data,
    }
}

/// Parses an IPDR/XDR file (spec §5): header, `FF FF FF FF`, then RECORDDESC / IPDRREC
/// elements and a final DOCEND.
///
/// Version 4 only (version 3 is refused with [`DocError::UnsupportedVersion`]). A
/// descriptor must precede its records; descriptors may be redefined between records.
/// Refused: truncation anywhere (including a missing DOCEND), bytes after DOCEND, an
/// unknown element kind or descriptor, an attribute type that is not a known primitive,
/// a record that does not decode, and anything over `limits`.
pub fn parse_xdr(
    bytes: &[u8],
    opts: &XdrFileOptions,
    limits: &DocLimits,
) -> Result<Document, DocError> {
    if bytes.is_empty() {
        return Err(DocError::Empty);
    }
    check_size(bytes, limits)?;
    let mut r = Reader::new(bytes);
    let version = rd_u32(&mut r, "version")? as i32;
    if version != XDR_FILE_VERSION {
        return Err(DocError::UnsupportedVersion {
            at: Position::Byte(0),
            version,
        });
    }
    let recorder_info = rd_string(&mut r, "ipdrRecorderInfo", limits)?;
    let start_time = rd_u64(&mut r, "startTime")? as i64;
    let default_namespace = rd_string(&mut r, "defaultNameSpaceURI", limits)?;
    let n = rd_count(&mut r, "otherNameSpaces", 8, usize::MAX, "namespaces")?;
    for _ in 0..n {
        rd_string(&mut r, "nameSpaceURI", limits)?;
        rd_string(&mut r, "nameSpaceID", limits)?;
    }
    let n = rd_count(&mut r, "serviceDefinitionURIs", 4, usize::MAX, "URIs")?;
    for _ in 0..n {
        rd_string(&mut r, "serviceDefinitionURI", limits)?;
    }
    let doc_id = format_doc_id(rd_opaque(&mut r, "docId", limits)?);
    let at = r.position();
    let count = rd_u32(&mut r, "element count")?;
    if count != INDEFINITE {
        return Err(DocError::InvalidXdr {
            at: Position::Byte(at),
            message: format!(
                "expected 0xFFFFFFFF (indefinite element count) after the header, found 0x{count:08X}"
            ),
        });
    }
    let doc = Document {
        encoding: DocEncoding::Xdr,
        doc_id,
        version: version.to_string(),
        recorder_info,
        creation_time_ms: u64::try_from(start_time).ok().filter(|&t| t > 0),
        default_namespace: Some(default_namespace).filter(|s| !s.is_empty()),
        records: Vec::new(),
        declared_count: None,
        end_time_ms: None,
    };
    XdrParser {
        r,
        limits,
        options: RecordOptions {
            ipv6: opts.ipv6,
            allow_trailing_bytes: true,
            max_array_len: u32::MAX,
        },
        marker: opts.record_marker,
        descriptors: HashMap::new(),
    }
    .run(doc)
}

// ---------------------------------------------------------------------------
// IPDR/XDR writer
// ---------------------------------------------------------------------------

/// An attribute descriptor derived from a value.
#[derive(Debug, Clone, PartialEq)]
struct EncAttr {
    name: String,
    type_id: TypeId,
    members: Vec<EncAttr>,
    /// An empty array: its element type is a guess (string) that any other shape wins.
    guessed: bool,
}

fn primitive_type(v: &Value) -> Option<TypeId> {
    Some(match v {
        Value::Int(_) => TypeId::INT,
        Value::UnsignedInt(_) => TypeId::UNSIGNED_INT,
        Value::Long(_) => TypeId::LONG,
        Value::UnsignedLong(_) => TypeId::UNSIGNED_LONG,
        Value::Float(_) => TypeId::FLOAT,
        Value::Double(_) => TypeId::DOUBLE,
        Value::HexBinary(_) => TypeId::HEX_BINARY,
        Value::String(_) => TypeId::STRING,
        Value::Boolean(_) => TypeId::BOOLEAN,
        Value::Byte(_) => TypeId::BYTE,
        Value::UnsignedByte(_) => TypeId::UNSIGNED_BYTE,
        Value::Short(_) => TypeId::SHORT,
        Value::UnsignedShort(_) => TypeId::UNSIGNED_SHORT,
        Value::DateTime(_) => TypeId::DATE_TIME,
        Value::DateTimeMsec(_) => TypeId::DATE_TIME_MSEC,
        Value::DateTimeUsec(_) => TypeId::DATE_TIME_USEC,
        Value::Ipv4Addr(_) => TypeId::IPV4_ADDR,
        Value::Ipv6Addr(_) => TypeId::IPV6_ADDR,
        Value::IpAddr(_) => TypeId::IP_ADDR,
        Value::Uuid(_) => TypeId::UUID,
        Value::MacAddress(_) => TypeId::MAC_ADDRESS,
        // Length 0 decodes back to Absent as an ipAddr in every IPv6 mode.
        Value::Absent => TypeId::IP_ADDR,
        Value::Array(_) | Value::Structure(_) => return None,
    })
}

/// The descriptor of one element (not an array) holding `v`.
fn derive_element(name: &str, v: &Value) -> Result<EncAttr, String> {
    match v {
        Value::Structure(ms) => Ok(EncAttr {
            name: name.to_string(),
            type_id: TypeId::STRUCTURE,
            members: ms
                .iter()
                .map(|(n, v)| derive_attr(n, v))
                .collect::<Result<_, _>>()?,
            guessed: false,
        }),
        Value::Array(_) => Err(format!(
            "`{name}`: arrays of arrays cannot be described in IPDR/XDR"
        )),
        v => Ok(EncAttr {
            name: name.to_string(),
            type_id: primitive_type(v).unwrap_or(TypeId::STRING),
            members: Vec::new(),
            guessed: false,
        }),
    }
}

/// One descriptor for two element shapes, where guessed (empty) arrays give way.
fn unify(a: EncAttr, b: EncAttr) -> Option<EncAttr> {
    if a.name != b.name {
        return None;
    }
    if a.guessed {
        return Some(b);
    }
    if b.guessed {
        return Some(a);
    }
    if a.type_id != b.type_id || a.members.len() != b.members.len() {
        return None;
    }
    let members = a
        .members
        .into_iter()
        .zip(b.members)
        .map(|(x, y)| unify(x, y))
        .collect::<Option<Vec<_>>>()?;
    Some(EncAttr { members, ..a })
}

fn derive_attr(name: &str, v: &Value) -> Result<EncAttr, String> {
    let Value::Array(items) = v else {
        return derive_element(name, v);
    };
    let mut shape: Option<EncAttr> = None;
    for it in items {
        let e = derive_element(name, it)?;
        shape = Some(match shape {
            None => e,
            Some(s) => {
                unify(s, e).ok_or_else(|| format!("`{name}`: array elements of different types"))?
            }
        });
    }
    Ok(match shape {
        Some(mut a) => {
            a.type_id = a.type_id.array_of();
            a
        }
        // No element to tell: a string array (an earlier descriptor of the record type
        // that fits is preferred by the writer).
        None => EncAttr {
            name: name.to_string(),
            type_id: TypeId::STRING.array_of(),
            members: Vec::new(),
            guessed: true,
        },
    })
}

fn fits_element(a: &EncAttr, v: &Value) -> bool {
    let base = TypeId(a.type_id.0 & !TypeId::ARRAY_FLAG);
    match v {
        Value::Structure(ms) => {
            base.is_structure()
                && ms.len() == a.members.len()
                && a.members
                    .iter()
                    .zip(ms)
                    .all(|(m, (n, v))| m.name == **n && fits(m, v))
        }
        Value::Array(_) => false,
        Value::Absent => matches!(base, TypeId::IP_ADDR | TypeId::IPV6_ADDR | TypeId::UUID),
        v => primitive_type(v) == Some(base),
    }
}

fn fits(a: &EncAttr, v: &Value) -> bool {
    if a.type_id.is_array() {
        matches!(v, Value::Array(items) if items.iter().all(|it| fits_element(a, it)))
    } else {
        fits_element(a, v)
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Result<(), String> {
    put_u32(out, len_u32(s.len(), "string").map_err(|e| e.to_string())?);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn write_attr(a: &EncAttr, out: &mut Vec<u8>) -> Result<(), String> {
    put_str(out, &a.name)?;
    put_u32(out, a.type_id.0);
    if a.type_id.is_structure() {
        put_u32(out, a.members.len() as u32);
    }
    if a.type_id.is_array() {
        put_u32(out, INDEFINITE); // bound: -1, unbounded
    }
    for m in &a.members {
        write_attr(m, out)?;
    }
    Ok(())
}

fn field_descriptor(a: &EncAttr, id: &mut u32) -> FieldDescriptor {
    *id = id.saturating_add(1);
    let mut f = FieldDescriptor::new(a.type_id, *id, a.name.clone());
    f.children = a.members.iter().map(|m| field_descriptor(m, id)).collect();
    f
}

struct EncDescriptor {
    id: i32,
    type_name: String,
    attrs: Vec<EncAttr>,
    template: Template,
}

impl EncDescriptor {
    fn fits(&self, type_name: &str, fields: &[(FieldName, Value)]) -> bool {
        self.type_name == type_name
            && self.attrs.len() == fields.len()
            && self
                .attrs
                .iter()
                .zip(fields)
                .all(|(a, (n, v))| a.name == **n && fits(a, v))
    }
}

/// Writes `doc` as an IPDR/XDR file, version 4.
///
/// Record descriptors are derived from each record's `type_name` and fields (names, and
/// types from the values: [`Value::Absent`] is written as an `ipdr:ipAddr` of length 0,
/// an empty array as a string array unless an earlier descriptor of the type fits). A
/// descriptor is written just before the first record that needs it and reused by later
/// records it fits. The header carries `recorder_info`, `creation_time_ms` (0 when
/// `None`), `default_namespace`, no other namespaces and `doc_id` (a UUID, hyphens
/// optional); DOCEND carries `declared_count` (-1 when `None`) and `end_time_ms`.
/// Only `fields` are written: use [`DocRecord::from_report`] for TR-232 reports.
pub fn encode_xdr(doc: &Document, opts: &XdrEncodeOptions) -> Result<Vec<u8>, DocEncodeError> {
    let doc_id =
        parse_uuid(&doc.doc_id).ok_or_else(|| DocEncodeError::DocId(doc.doc_id.clone()))?;
    let mut out = Vec::with_capacity(doc.records.len().saturating_mul(128).saturating_add(256));
    put_u32(&mut out, XDR_FILE_VERSION as u32);
    put_str(&mut out, &doc.recorder_info).map_err(DocEncodeError::Header)?;
    put_u64(&mut out, doc.creation_time_ms.unwrap_or(0));
    put_str(&mut out, doc.default_namespace.as_deref().unwrap_or(""))
        .map_err(DocEncodeError::Header)?;
    put_u32(&mut out, 0); // otherNameSpaces
    put_u32(&mut out, 0); // serviceDefinitionURIs
    put_u32(&mut out, 16);
    out.extend_from_slice(&doc_id);
    put_u32(&mut out, INDEFINITE);
    let mut descs: Vec<EncDescriptor> = Vec::new();
    for (index, rec) in doc.records.iter().enumerate() {
        let err = |reason: String| DocEncodeError::Record { index, reason };
        let di = match descs
            .iter()
            .rposition(|d| d.fits(&rec.type_name, &rec.fields))
        {
            Some(i) => i,
            None => {
                let attrs = rec
                    .fields
                    .iter()
                    .map(|(n, v)| derive_attr(n, v))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(err)?;
                let id = i32::try_from(descs.len()).map_or(i32::MAX, |n| n.saturating_add(1));
                let mut fid = 0;
                let block = TemplateBlock {
                    template_id: id as u16,
                    schema_name: doc.default_namespace.clone().unwrap_or_default(),
                    type_name: rec.type_name.clone(),
                    fields: attrs
                        .iter()
                        .map(|a| field_descriptor(a, &mut fid))
                        .collect(),
                };
                let template = Template::with_options(
                    block,
                    RecordOptions {
                        ipv6: Ipv6Encoding::Prefixed,
                        ..RecordOptions::default()
                    },
                )
                .map_err(|e| err(e.to_string()))?;
                put_u32(&mut out, RECORDDESC);
                put_u32(&mut out, id as u32);
                put_str(&mut out, &rec.type_name).map_err(err)?;
                put_u32(&mut out, attrs.len() as u32);
                for a in &attrs {
                    write_attr(a, &mut out).map_err(err)?;
                }
                descs.push(EncDescriptor {
                    id,
                    type_name: rec.type_name.clone(),
                    attrs,
                    template,
                });
                descs.len().saturating_sub(1)
            }
        };
        let Some(d) = descs.get(di) else {
            return Err(err("no record descriptor".into()));
        };
        put_u32(&mut out, IPDRREC);
        put_u32(&mut out, d.id as u32);
        if opts.record_marker {
            put_u32(&mut out, INDEFINITE);
        }
        let values: Vec<Value> = rec.fields.iter().map(|(_, v)| v.clone()).collect();
        xdr::encode_record(&d.template, &values, &mut out).map_err(|e| err(e.to_string()))?;
    }
    put_u32(&mut out, DOCEND);
    let count = doc
        .declared_count
        .map_or(-1, |c| i32::try_from(c).unwrap_or(-1));
    put_u32(&mut out, count as u32);
    put_u64(&mut out, doc.end_time_ms.unwrap_or(0));
    Ok(out)
}

impl DocRecord {
    /// A TR-232 report as an XDR-typed record that [`BulkDataReport::from_fields`] reads
    /// back: `IPDRCreationTime` (dateTimeMsec), `OUI`, `ProductClass`, `SerialNumber`
    /// (strings), `Suspect` (boolean), then the pairs as `layout` says (the same shape as
    /// [`crate::tr232::tr232_template`]).
    pub fn from_report(report: &BulkDataReport, layout: BulkDataLayout) -> DocRecord {
        let name = |s: &str| -> FieldName { Arc::from(s) };
        let mut fields = vec![
            (
                name("IPDRCreationTime"),
                Value::DateTimeMsec(report.creation_time_ms),
            ),
            (name("OUI"), Value::String(report.oui.clone())),
            (
                name("ProductClass"),
                Value::String(report.product_class.clone()),
            ),
            (
                name("SerialNumber"),
                Value::String(report.serial_number.clone()),
            ),
            (name("Suspect"), Value::Boolean(report.suspect)),
        ];
        match layout {
            BulkDataLayout::Structured => {
                let (n, v) = (name("Name"), name("Value"));
                let items = report
                    .bulk_data
                    .iter()
                    .map(|(pn, pv)| {
                        Value::Structure(vec![
                            (n.clone(), Value::String(pn.clone())),
                            (v.clone(), Value::String(pv.clone())),
                        ])
                    })
                    .collect();
                fields.push((name("BulkData"), Value::Array(items)));
            }
            BulkDataLayout::Flattened => {
                for (i, (pn, pv)) in report.bulk_data.iter().enumerate() {
                    fields.push((
                        name(&format!("Name{}", i.saturating_add(1))),
                        Value::String(pn.clone()),
                    ));
                    fields.push((
                        name(&format!("Value{}", i.saturating_add(1))),
                        Value::String(pv.clone()),
                    ));
                }
            }
        }
        DocRecord {
            type_name: TR232_TYPE.to_string(),
            seq_num: None,
            creation_time_ms: Some(report.creation_time_ms),
            fields,
            bulk_data: Some(report.clone()),
        }
    }
}

/// An IPDR/XDR [`Document`] of TR-232 reports (one record each, [`DocRecord::from_report`]),
/// ready for [`encode_xdr`]: default namespace the TR-232 URN, declared count the number
/// of reports, end time the creation time.
pub fn tr232_document(
    doc_id: &str,
    recorder_info: &str,
    creation_time_ms: u64,
    reports: &[BulkDataReport],
    layout: BulkDataLayout,
) -> Document {
    let t = Some(creation_time_ms).filter(|&t| t > 0);
    Document {
        encoding: DocEncoding::Xdr,
        doc_id: doc_id.to_string(),
        version: XDR_FILE_VERSION.to_string(),
        recorder_info: recorder_info.to_string(),
        creation_time_ms: t,
        default_namespace: Some(TR232_SCHEMA.to_string()),
        records: reports
            .iter()
            .map(|r| DocRecord::from_report(r, layout))
            .collect(),
        declared_count: Some(reports.len() as i64),
        end_time_ms: t,
    }
}
