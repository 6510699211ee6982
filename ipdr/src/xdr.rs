//! Template-driven decoding of XDR data records (spec §4).
//!
//! A [`Template`] is compiled from a [`TemplateBlock`] (TEMPLATE_DATA, MODIFY_TEMPLATE_RESPONSE
//! or GET_TEMPLATES_RESPONSE). Disabled fields are absent from records, so the compiled plan
//! keeps the enabled fields only, in template order. [`decode_record`] walks that plan.

// Outside input: no panicking arithmetic, indexing or unwrapping here (clippy enforces it).
#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use thiserror::Error;

use crate::codec::wire::{len_u32, put_u16, put_u32, put_u64, Reader};
use crate::codec::{DecodeError, EncodeError, FieldDescriptor, TemplateBlock};

/// Field names are shared between the template and every decoded record.
pub type FieldName = Arc<str>;

/// Deepest nesting of structures accepted in templates.
pub const MAX_NESTING: usize = 8;

/// Default bound on the element count of one array value.
pub const DEFAULT_MAX_ARRAY_LEN: u32 = 65_536;

/// A template `typeId` (spec §4): low byte = primitive base type (the wire encoding),
/// second byte = derived type, high bits = array / structure flags.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeId(pub u32);

impl TypeId {
    pub const INT: TypeId = TypeId(0x21);
    pub const UNSIGNED_INT: TypeId = TypeId(0x22);
    pub const LONG: TypeId = TypeId(0x23);
    pub const UNSIGNED_LONG: TypeId = TypeId(0x24);
    pub const FLOAT: TypeId = TypeId(0x25);
    pub const DOUBLE: TypeId = TypeId(0x26);
    /// hexBinary / base64Binary.
    pub const HEX_BINARY: TypeId = TypeId(0x27);
    pub const STRING: TypeId = TypeId(0x28);
    pub const BOOLEAN: TypeId = TypeId(0x29);
    pub const BYTE: TypeId = TypeId(0x2a);
    pub const UNSIGNED_BYTE: TypeId = TypeId(0x2b);
    pub const SHORT: TypeId = TypeId(0x2c);
    pub const UNSIGNED_SHORT: TypeId = TypeId(0x2d);
    pub const DATE_TIME: TypeId = TypeId(0x122);
    pub const DATE_TIME_MSEC: TypeId = TypeId(0x224);
    pub const IPV4_ADDR: TypeId = TypeId(0x322);
    pub const IPV6_ADDR: TypeId = TypeId(0x427);
    pub const UUID: TypeId = TypeId(0x527);
    pub const DATE_TIME_USEC: TypeId = TypeId(0x623);
    pub const MAC_ADDRESS: TypeId = TypeId(0x723);
    pub const IP_ADDR: TypeId = TypeId(0x827);
    /// Flag: the value is an array (u32 count + elements).
    pub const ARRAY_FLAG: u32 = 0x4000_0000;
    /// Flag: the field is a structure (its members follow in order).
    pub const STRUCTURE_FLAG: u32 = 0x8000_0000;
    /// A structure field (its members are the descriptor's children).
    pub const STRUCTURE: TypeId = TypeId(Self::STRUCTURE_FLAG);

    pub fn is_array(self) -> bool {
        self.0 & Self::ARRAY_FLAG != 0
    }

    pub fn is_structure(self) -> bool {
        self.0 & Self::STRUCTURE_FLAG != 0
    }

    /// This type as an array of itself.
    pub fn array_of(self) -> TypeId {
        TypeId(self.0 | Self::ARRAY_FLAG)
    }

    /// The primitive base type (low byte).
    pub fn base(self) -> u8 {
        self.0 as u8
    }

    /// The derived-type number (second byte).
    pub fn derived(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// The standard name of the type, if known (flags ignored).
    pub fn name(self) -> Option<&'static str> {
        if self.is_structure() {
            return Some("structure");
        }
        Some(match self.0 & 0xffff {
            0x21 => "int",
            0x22 => "unsignedInt",
            0x23 => "long",
            0x24 => "unsignedLong",
            0x25 => "float",
            0x26 => "double",
            0x27 => "hexBinary",
            0x28 => "string",
            0x29 => "boolean",
            0x2a => "byte",
            0x2b => "unsignedByte",
            0x2c => "short",
            0x2d => "unsignedShort",
            0x122 => "dateTime",
            0x224 => "ipdr:dateTimeMsec",
            0x322 => "ipdr:ipV4Addr",
            0x427 => "ipdr:ipV6Addr",
            0x527 => "ipdr:uuid",
            0x623 => "ipdr:dateTimeUsec",
            0x723 => "ipdr:macAddress",
            0x827 => "ipdr:ipAddr",
            _ => return None,
        })
    }
}

impl fmt::Debug for TypeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TypeId(0x{:08x}", self.0)?;
        if let Some(n) = self.name() {
            write!(f, " {n}")?;
            if self.is_array() {
                f.write_str("[]")?;
            }
        }
        f.write_str(")")
    }
}

impl fmt::Display for TypeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08x}", self.0)
    }
}

/// A MAC address as carried on the wire: the low 48 bits of a u64 (the two high bytes are
/// normally zero; the reference exporter sends non-zero ones, kept here so re-encoding is
/// exact).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddress(pub u64);

impl MacAddress {
    pub fn octets(self) -> [u8; 6] {
        let b = self.0.to_be_bytes();
        [b[2], b[3], b[4], b[5], b[6], b[7]]
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = self.octets();
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            o[0], o[1], o[2], o[3], o[4], o[5]
        )
    }
}

impl fmt::Debug for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MacAddress({self}, raw 0x{:016x})", self.0)
    }
}

/// A decoded field value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i32),
    UnsignedInt(u32),
    Long(i64),
    UnsignedLong(u64),
    Float(f32),
    Double(f64),
    /// hexBinary / base64Binary, and length-prefixed values of unexpected length.
    HexBinary(Vec<u8>),
    /// UTF-8 string (invalid sequences replaced by U+FFFD).
    String(String),
    Boolean(bool),
    Byte(i8),
    UnsignedByte(u8),
    Short(i16),
    UnsignedShort(u16),
    /// Seconds since the epoch.
    DateTime(u32),
    /// Milliseconds since the epoch.
    DateTimeMsec(u64),
    /// Microseconds since the epoch.
    DateTimeUsec(i64),
    Ipv4Addr(Ipv4Addr),
    Ipv6Addr(Ipv6Addr),
    /// `ipdr:ipAddr` (length 4 or 16).
    IpAddr(IpAddr),
    Uuid([u8; 16]),
    MacAddress(MacAddress),
    /// A length-prefixed address or UUID sent with length 0 ("absent").
    Absent,
    Array(Vec<Value>),
    /// Members of a structure (enabled members only, in template order).
    Structure(Vec<(FieldName, Value)>),
}

/// How `ipdr:ipV6Addr` is laid out on the wire (a per-peer quirk, spec §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ipv6Encoding {
    /// `u32` length (16, or 0 for absent) + bytes, as the type's hexBinary base says
    /// (DOCSIS SAMIS).
    Prefixed,
    /// 16 raw bytes, no length (the 2005 Amdocs reference exporter).
    Raw16,
    /// Prefixed if the next `u32` is 16 or 0, otherwise raw. Ambiguous for raw addresses
    /// whose first 4 bytes are 0 or 16 (e.g. `::ffff:a.b.c.d` sent raw): configure the
    /// peer explicitly when that matters.
    #[default]
    Auto,
}

/// Per-peer decoding options carried by a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordOptions {
    pub ipv6: Ipv6Encoding,
    /// Accept bytes after the last field (otherwise [`RecordError::TrailingBytes`]).
    pub allow_trailing_bytes: bool,
    /// Largest element count of one array value.
    pub max_array_len: u32,
}

impl Default for RecordOptions {
    fn default() -> Self {
        RecordOptions {
            ipv6: Ipv6Encoding::Auto,
            allow_trailing_bytes: false,
            max_array_len: DEFAULT_MAX_ARRAY_LEN,
        }
    }
}

/// Why a template cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TemplateError {
    #[error("template {template_id}: field `{field}` has unsupported type id {type_id}")]
    UnsupportedType {
        template_id: u16,
        field: String,
        type_id: TypeId,
    },
    #[error("template {template_id}: field `{field}` nests structures deeper than {max} levels")]
    TooDeep {
        template_id: u16,
        field: String,
        max: usize,
    },
}

/// Why a record could not be decoded (or encoded).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordError {
    /// The record is shorter than its template.
    #[error("record ends inside field `{field}` (needs {needed} bytes, {available} left)")]
    Truncated {
        field: FieldName,
        needed: usize,
        available: usize,
    },
    #[error("{count} bytes left after the last field of template {template_id}")]
    TrailingBytes { template_id: u16, count: usize },
    #[error("field `{field}`: array of {count} elements exceeds the limit of {max}")]
    ArrayTooLong {
        field: FieldName,
        count: u32,
        max: u32,
    },
    /// Encoding: a value does not fit the field's type.
    #[error("field `{field}`: value does not match type {type_id}")]
    TypeMismatch { field: FieldName, type_id: TypeId },
    /// Encoding: wrong number of values for the enabled fields.
    #[error("template {template_id} has {expected} enabled fields, {got} values given")]
    ValueCount {
        template_id: u16,
        expected: usize,
        got: usize,
    },
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

#[derive(Debug, Clone)]
enum Kind {
    Int,
    UnsignedInt,
    Long,
    UnsignedLong,
    Float,
    Double,
    HexBinary,
    String,
    Boolean,
    Byte,
    UnsignedByte,
    Short,
    UnsignedShort,
    DateTime,
    DateTimeMsec,
    DateTimeUsec,
    Ipv4Addr,
    Ipv6Addr,
    IpAddr,
    Uuid,
    MacAddress,
    Structure(Box<[Field]>),
    Array(Box<Kind>),
}

impl Kind {
    fn primitive(t: TypeId) -> Option<Kind> {
        // Exact type first, then the low byte for unknown derived types (spec §4).
        Some(match t.0 & 0xffff {
            0x122 => Kind::DateTime,
            0x224 => Kind::DateTimeMsec,
            0x322 => Kind::Ipv4Addr,
            0x427 => Kind::Ipv6Addr,
            0x527 => Kind::Uuid,
            0x623 => Kind::DateTimeUsec,
            0x723 => Kind::MacAddress,
            0x827 => Kind::IpAddr,
            _ => match t.base() {
                0x21 => Kind::Int,
                0x22 => Kind::UnsignedInt,
                0x23 => Kind::Long,
                0x24 => Kind::UnsignedLong,
                0x25 => Kind::Float,
                0x26 => Kind::Double,
                0x27 => Kind::HexBinary,
                0x28 => Kind::String,
                0x29 => Kind::Boolean,
                0x2a => Kind::Byte,
                0x2b => Kind::UnsignedByte,
                0x2c => Kind::Short,
                0x2d => Kind::UnsignedShort,
                _ => return None,
            },
        })
    }

    /// Fewest bytes one value of this kind takes on the wire.
    fn min_len(&self) -> usize {
        match self {
            Kind::Boolean | Kind::Byte | Kind::UnsignedByte => 1,
            Kind::Short | Kind::UnsignedShort => 2,
            Kind::Int
            | Kind::UnsignedInt
            | Kind::Float
            | Kind::DateTime
            | Kind::Ipv4Addr
            | Kind::HexBinary
            | Kind::String
            | Kind::IpAddr
            | Kind::Uuid
            | Kind::Ipv6Addr
            | Kind::Array(_) => 4,
            Kind::Long
            | Kind::UnsignedLong
            | Kind::Double
            | Kind::DateTimeMsec
            | Kind::DateTimeUsec
            | Kind::MacAddress => 8,
            Kind::Structure(fs) => fs.iter().map(|f| f.kind.min_len()).sum(),
        }
    }
}

#[derive(Debug, Clone)]
struct Field {
    name: FieldName,
    type_id: TypeId,
    kind: Kind,
    /// Decoded but left out of the output (narrowed by the collector when the exporter
    /// could not be asked to disable it).
    emit: bool,
}

/// A compiled template: the enabled fields of a [`TemplateBlock`] with their decoders.
#[derive(Debug, Clone)]
pub struct Template {
    block: TemplateBlock,
    fields: Box<[Field]>,
    options: RecordOptions,
    emitted: usize,
}

fn compile_fields(
    template_id: u16,
    fs: &[FieldDescriptor],
    depth: usize,
) -> Result<Box<[Field]>, TemplateError> {
    let mut out = Vec::with_capacity(fs.len());
    for f in fs.iter().filter(|f| f.enabled) {
        if depth >= MAX_NESTING {
            return Err(TemplateError::TooDeep {
                template_id,
                field: f.name.clone(),
                max: MAX_NESTING,
            });
        }
        let element = if f.type_id.is_structure() {
            Kind::Structure(compile_fields(
                template_id,
                &f.children,
                depth.saturating_add(1),
            )?)
        } else {
            Kind::primitive(f.type_id).ok_or_else(|| TemplateError::UnsupportedType {
                template_id,
                field: f.name.clone(),
                type_id: f.type_id,
            })?
        };
        let kind = if f.type_id.is_array() {
            Kind::Array(Box::new(element))
        } else {
            element
        };
        out.push(Field {
            name: Arc::from(f.name.as_str()),
            type_id: f.type_id,
            kind,
            emit: true,
        });
    }
    Ok(out.into_boxed_slice())
}

impl Template {
    /// Compiles a template with default [`RecordOptions`].
    pub fn new(block: TemplateBlock) -> Result<Template, TemplateError> {
        Template::with_options(block, RecordOptions::default())
    }

    /// Compiles a template. Fails if an *enabled* field has a type whose base byte is not a
    /// known primitive, or structures nest deeper than [`MAX_NESTING`].
    pub fn with_options(
        block: TemplateBlock,
        options: RecordOptions,
    ) -> Result<Template, TemplateError> {
        let fields = compile_fields(block.template_id, &block.fields, 0)?;
        let emitted = fields.len();
        Ok(Template {
            block,
            fields,
            options,
            emitted,
        })
    }

    pub fn id(&self) -> u16 {
        self.block.template_id
    }

    /// The template as received.
    pub fn block(&self) -> &TemplateBlock {
        &self.block
    }

    pub fn options(&self) -> &RecordOptions {
        &self.options
    }

    /// Names of the fields present in records, in wire order.
    pub fn enabled_fields(&self) -> impl Iterator<Item = &FieldName> + '_ {
        self.fields.iter().map(|f| &f.name)
    }

    /// Names of the fields [`decode_record`] returns.
    pub fn emitted_fields(&self) -> impl Iterator<Item = &FieldName> + '_ {
        self.fields.iter().filter(|f| f.emit).map(|f| &f.name)
    }

    /// Keeps only the top-level fields for which `keep(name)` is true in decoded output.
    /// The other enabled fields are still read (they are on the wire) but dropped.
    pub fn restrict_output(&mut self, keep: impl Fn(&str) -> bool) {
        for f in self.fields.iter_mut() {
            f.emit = keep(&f.name);
        }
        self.emitted = self.fields.iter().filter(|f| f.emit).count();
    }
}

fn truncated(field: &FieldName, e: DecodeError) -> RecordError {
    let (needed, available) = match e {
        DecodeError::Truncated {
            needed, available, ..
        } => (needed, available),
        DecodeError::CountTooLarge { available, .. } => (available.saturating_add(1), available),
        _ => (1, 0),
    };
    RecordError::Truncated {
        field: field.clone(),
        needed,
        available,
    }
}

struct Decoder<'a, 'o> {
    r: Reader<'a>,
    options: &'o RecordOptions,
}

impl Decoder<'_, '_> {
    #[inline(always)]
    fn value(&mut self, name: &FieldName, kind: &Kind) -> Result<Value, RecordError> {
        let r = &mut self.r;
        let e = |e| truncated(name, e);
        Ok(match kind {
            Kind::Int => Value::Int(r.u32("").map_err(e)? as i32),
            Kind::UnsignedInt => Value::UnsignedInt(r.u32("").map_err(e)?),
            Kind::Long => Value::Long(r.u64("").map_err(e)? as i64),
            Kind::UnsignedLong => Value::UnsignedLong(r.u64("").map_err(e)?),
            Kind::Float => Value::Float(f32::from_bits(r.u32("").map_err(e)?)),
            Kind::Double => Value::Double(f64::from_bits(r.u64("").map_err(e)?)),
            Kind::HexBinary => Value::HexBinary(r.opaque("").map_err(e)?.to_vec()),
            Kind::String => {
                let b = r.opaque("").map_err(e)?;
                Value::String(match std::str::from_utf8(b) {
                    Ok(s) => s.to_owned(),
                    Err(_) => String::from_utf8_lossy(b).into_owned(),
                })
            }
            Kind::Boolean => Value::Boolean(r.u8("").map_err(e)? != 0),
            Kind::Byte => Value::Byte(r.u8("").map_err(e)? as i8),
            Kind::UnsignedByte => Value::UnsignedByte(r.u8("").map_err(e)?),
            Kind::Short => Value::Short(r.u16("").map_err(e)? as i16),
            Kind::UnsignedShort => Value::UnsignedShort(r.u16("").map_err(e)?),
            Kind::DateTime => Value::DateTime(r.u32("").map_err(e)?),
            Kind::DateTimeMsec => Value::DateTimeMsec(r.u64("").map_err(e)?),
            Kind::DateTimeUsec => Value::DateTimeUsec(r.u64("").map_err(e)? as i64),
            Kind::Ipv4Addr => Value::Ipv4Addr(Ipv4Addr::from(r.u32("").map_err(e)?)),
            Kind::MacAddress => Value::MacAddress(MacAddress(r.u64("").map_err(e)?)),
            Kind::Ipv6Addr => {
                let prefixed = match self.options.ipv6 {
                    Ipv6Encoding::Prefixed => true,
                    Ipv6Encoding::Raw16 => false,
                    Ipv6Encoding::Auto => {
                        let mut peek = r.clone();
                        match peek.u32("") {
                            Ok(0) => true,
                            // A prefix of 16 must be followed by 16 bytes; else it is raw data.
                            Ok(16) => peek.remaining() >= 16,
                            _ => false,
                        }
                    }
                };
                if prefixed {
                    length_prefixed(r.opaque("").map_err(e)?, |b| {
                        Value::Ipv6Addr(Ipv6Addr::from(b))
                    })
                } else {
                    Value::Ipv6Addr(Ipv6Addr::from(r.bytes16("").map_err(e)?))
                }
            }
            Kind::Uuid => length_prefixed(r.opaque("").map_err(e)?, Value::Uuid),
            Kind::IpAddr => {
                let b = r.opaque("").map_err(e)?;
                if b.is_empty() {
                    Value::Absent
                } else if let Ok(a) = <[u8; 4]>::try_from(b) {
                    Value::IpAddr(IpAddr::V4(Ipv4Addr::from(a)))
                } else if let Ok(a) = <[u8; 16]>::try_from(b) {
                    Value::IpAddr(IpAddr::V6(Ipv6Addr::from(a)))
                } else {
                    Value::HexBinary(b.to_vec())
                }
            }
            Kind::Structure(fs) => self.structure(fs)?,
            Kind::Array(elem) => self.array(name, elem)?,
        })
    }

    #[inline(never)]
    fn structure(&mut self, fs: &[Field]) -> Result<Value, RecordError> {
        let mut v = Vec::with_capacity(fs.len());
        for f in fs.iter() {
            let x = self.value(&f.name, &f.kind)?;
            v.push((f.name.clone(), x));
        }
        Ok(Value::Structure(v))
    }

    #[inline(never)]
    fn array(&mut self, name: &FieldName, elem: &Kind) -> Result<Value, RecordError> {
        let r = &mut self.r;
        let count = r.u32("").map_err(|e| truncated(name, e))?;
        if count > self.options.max_array_len {
            return Err(RecordError::ArrayTooLong {
                field: name.clone(),
                count,
                max: self.options.max_array_len,
            });
        }
        let min = elem.min_len();
        if min > 0 && u64::from(count).saturating_mul(min as u64) > r.remaining() as u64 {
            return Err(RecordError::Truncated {
                field: name.clone(),
                needed: (count as usize).saturating_mul(min),
                available: r.remaining(),
            });
        }
        // Elements that take no bytes (empty structures) cannot justify a large allocation.
        let cap = if min == 0 { count.min(1024) } else { count };
        let mut v = Vec::with_capacity(cap as usize);
        for _ in 0..count {
            v.push(self.value(name, elem)?);
        }
        Ok(Value::Array(v))
    }
}

/// Decodes one value of the primitive type `type_id` (array and structure flags clear) at
/// the reader's position, exactly as [`decode_record`] decodes a field of that type.
/// `None` if the type is not a known primitive. Used by the IPDR/XDR file reader
/// ([`crate::doc`]), which walks arrays and structures itself.
pub(crate) fn decode_primitive(
    type_id: TypeId,
    r: &mut Reader<'_>,
    options: &RecordOptions,
    name: &FieldName,
) -> Option<Result<Value, RecordError>> {
    let kind = Kind::primitive(type_id)?;
    let mut d = Decoder {
        r: r.clone(),
        options,
    };
    let v = d.value(name, &kind);
    *r = d.r;
    Some(v)
}

/// Fewest bytes one value of the primitive type `type_id` takes on the wire; `None` if the
/// type is not a known primitive.
pub(crate) fn primitive_min_len(type_id: TypeId) -> Option<usize> {
    Kind::primitive(type_id).map(|k| k.min_len())
}

fn length_prefixed(b: &[u8], f: impl FnOnce([u8; 16]) -> Value) -> Value {
    match b.len() {
        0 => Value::Absent,
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            f(a)
        }
        _ => Value::HexBinary(b.to_vec()),
    }
}

/// Decodes one DATA record against its template: the enabled fields, in template order.
///
/// A record shorter than the template is [`RecordError::Truncated`]; bytes after the last
/// field are [`RecordError::TrailingBytes`] unless the template's options allow them.
pub fn decode_record(
    template: &Template,
    record: &[u8],
) -> Result<Vec<(FieldName, Value)>, RecordError> {
    let mut d = Decoder {
        r: Reader::new(record),
        options: &template.options,
    };
    let mut out = Vec::with_capacity(template.emitted);
    for f in template.fields.iter() {
        let v = d.value(&f.name, &f.kind)?;
        if f.emit {
            out.push((f.name.clone(), v));
        }
    }
    let left = d.r.remaining();
    if left > 0 && !template.options.allow_trailing_bytes {
        return Err(RecordError::TrailingBytes {
            template_id: template.id(),
            count: left,
        });
    }
    Ok(out)
}

/// Encodes one record: `values` are the values of the template's enabled fields in
/// template order (structures as [`Value::Structure`] with their enabled members in order;
/// member names are not checked). IPv6 addresses follow the template's [`Ipv6Encoding`]
/// (`Auto` encodes prefixed).
pub fn encode_record(
    template: &Template,
    values: &[Value],
    out: &mut Vec<u8>,
) -> Result<(), RecordError> {
    if values.len() != template.fields.len() {
        return Err(RecordError::ValueCount {
            template_id: template.id(),
            expected: template.fields.len(),
            got: values.len(),
        });
    }
    let start = out.len();
    let r = template
        .fields
        .iter()
        .zip(values)
        .try_for_each(|(f, v)| encode_value(f, &f.kind, v, template.options.ipv6, out));
    if r.is_err() {
        out.truncate(start);
    }
    r
}

fn encode_value(
    f: &Field,
    kind: &Kind,
    v: &Value,
    ipv6: Ipv6Encoding,
    out: &mut Vec<u8>,
) -> Result<(), RecordError> {
    let mismatch = || RecordError::TypeMismatch {
        field: f.name.clone(),
        type_id: f.type_id,
    };
    let opaque = |out: &mut Vec<u8>, b: &[u8]| -> Result<(), RecordError> {
        put_u32(out, len_u32(b.len(), "value")?);
        out.extend_from_slice(b);
        Ok(())
    };
    match (kind, v) {
        (Kind::Int, Value::Int(x)) => put_u32(out, *x as u32),
        (Kind::UnsignedInt, Value::UnsignedInt(x)) => put_u32(out, *x),
        (Kind::Long, Value::Long(x)) => put_u64(out, *x as u64),
        (Kind::UnsignedLong, Value::UnsignedLong(x)) => put_u64(out, *x),
        (Kind::Float, Value::Float(x)) => put_u32(out, x.to_bits()),
        (Kind::Double, Value::Double(x)) => put_u64(out, x.to_bits()),
        (Kind::HexBinary, Value::HexBinary(b)) => opaque(out, b)?,
        (Kind::String, Value::String(s)) => opaque(out, s.as_bytes())?,
        (Kind::Boolean, Value::Boolean(b)) => out.push(*b as u8),
        (Kind::Byte, Value::Byte(x)) => out.push(*x as u8),
        (Kind::UnsignedByte, Value::UnsignedByte(x)) => out.push(*x),
        (Kind::Short, Value::Short(x)) => put_u16(out, *x as u16),
        (Kind::UnsignedShort, Value::UnsignedShort(x)) => put_u16(out, *x),
        (Kind::DateTime, Value::DateTime(x)) => put_u32(out, *x),
        (Kind::DateTimeMsec, Value::DateTimeMsec(x)) => put_u64(out, *x),
        (Kind::DateTimeUsec, Value::DateTimeUsec(x)) => put_u64(out, *x as u64),
        (Kind::Ipv4Addr, Value::Ipv4Addr(a)) => put_u32(out, u32::from(*a)),
        (Kind::MacAddress, Value::MacAddress(m)) => put_u64(out, m.0),
        (Kind::Ipv6Addr, Value::Ipv6Addr(a)) => {
            if ipv6 != Ipv6Encoding::Raw16 {
                put_u32(out, 16);
            }
            out.extend_from_slice(&a.octets());
        }
        (Kind::Ipv6Addr | Kind::Uuid | Kind::IpAddr, Value::Absent) => put_u32(out, 0),
        (Kind::Uuid, Value::Uuid(u)) => opaque(out, u)?,
        (Kind::IpAddr, Value::IpAddr(IpAddr::V4(a))) => opaque(out, &a.octets())?,
        (Kind::IpAddr, Value::IpAddr(IpAddr::V6(a))) => opaque(out, &a.octets())?,
        (Kind::Uuid | Kind::IpAddr, Value::HexBinary(b)) => opaque(out, b)?,
        (Kind::Structure(fs), Value::Structure(members)) => {
            if members.len() != fs.len() {
                return Err(mismatch());
            }
            for (mf, (_, mv)) in fs.iter().zip(members) {
                encode_value(mf, &mf.kind, mv, ipv6, out)?;
            }
        }
        (Kind::Array(elem), Value::Array(items)) => {
            put_u32(out, len_u32(items.len(), "array")?);
            for it in items {
                encode_value(f, elem, it, ipv6, out)?;
            }
        }
        _ => return Err(mismatch()),
    }
    Ok(())
}
