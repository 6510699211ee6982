//! The typed schema: objects, parameters, syntax and facets, profiles.

use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::Serialize;

/// Access of an object or parameter. The schema default (attribute absent) is `ReadOnly`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
pub enum Access {
    #[default]
    ReadOnly,
    ReadWrite,
    /// A parameter the ACS may set once (e.g. some `Alias` definitions).
    WriteOnceReadOnly,
}

impl Access {
    pub(crate) fn parse(s: &str) -> Option<Access> {
        Some(match s {
            "readOnly" => Access::ReadOnly,
            "readWrite" => Access::ReadWrite,
            "writeOnceReadOnly" => Access::WriteOnceReadOnly,
            _ => return None,
        })
    }

    /// The name used in the XML (`readOnly`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Access::ReadOnly => "readOnly",
            Access::ReadWrite => "readWrite",
            Access::WriteOnceReadOnly => "writeOnceReadOnly",
        }
    }
}

/// Status of a definition. Deleted and obsoleted items stay in the model with their status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
pub enum Status {
    #[default]
    Current,
    Deprecated,
    Obsoleted,
    Deleted,
}

impl Status {
    pub(crate) fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "current" => Status::Current,
            "deprecated" => Status::Deprecated,
            "obsoleted" => Status::Obsoleted,
            "deleted" => Status::Deleted,
            _ => return None,
        })
    }

    /// Current or deprecated (not obsoleted, not deleted).
    pub fn is_live(self) -> bool {
        matches!(self, Status::Current | Status::Deprecated)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Current => "current",
            Status::Deprecated => "deprecated",
            Status::Obsoleted => "obsoleted",
            Status::Deleted => "deleted",
        }
    }
}

/// The `activeNotify` attribute of a parameter (default `normal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
pub enum ActiveNotify {
    #[default]
    Normal,
    ForceEnabled,
    ForceDefaultEnabled,
    CanDeny,
}

impl ActiveNotify {
    pub(crate) fn parse(s: &str) -> Option<ActiveNotify> {
        Some(match s {
            "normal" => ActiveNotify::Normal,
            "forceEnabled" => ActiveNotify::ForceEnabled,
            "forceDefaultEnabled" => ActiveNotify::ForceDefaultEnabled,
            "canDeny" => ActiveNotify::CanDeny,
            _ => return None,
        })
    }
}

/// The built-in data types of the DM schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum BaseType {
    String,
    UnsignedInt,
    Int,
    UnsignedLong,
    Long,
    Boolean,
    DateTime,
    Base64,
    HexBinary,
    Decimal,
}

impl BaseType {
    pub(crate) fn parse(s: &[u8]) -> Option<BaseType> {
        Some(match s {
            b"string" => BaseType::String,
            b"unsignedInt" => BaseType::UnsignedInt,
            b"int" => BaseType::Int,
            b"unsignedLong" => BaseType::UnsignedLong,
            b"long" => BaseType::Long,
            b"boolean" => BaseType::Boolean,
            b"dateTime" => BaseType::DateTime,
            b"base64" => BaseType::Base64,
            b"hexBinary" => BaseType::HexBinary,
            b"decimal" => BaseType::Decimal,
            _ => return None,
        })
    }

    /// The name used in the XML (`unsignedInt`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            BaseType::String => "string",
            BaseType::UnsignedInt => "unsignedInt",
            BaseType::Int => "int",
            BaseType::UnsignedLong => "unsignedLong",
            BaseType::Long => "long",
            BaseType::Boolean => "boolean",
            BaseType::DateTime => "dateTime",
            BaseType::Base64 => "base64",
            BaseType::HexBinary => "hexBinary",
            BaseType::Decimal => "decimal",
        }
    }

    /// The `xsi:type` for a scalar value of this type on the CWMP wire.
    pub fn xsd_type(self) -> &'static str {
        match self {
            BaseType::String => "xsd:string",
            BaseType::UnsignedInt => "xsd:unsignedInt",
            BaseType::Int => "xsd:int",
            BaseType::UnsignedLong => "xsd:unsignedLong",
            BaseType::Long => "xsd:long",
            BaseType::Boolean => "xsd:boolean",
            BaseType::DateTime => "xsd:dateTime",
            BaseType::Base64 => "xsd:base64Binary",
            BaseType::HexBinary => "xsd:hexBinary",
            BaseType::Decimal => "xsd:decimal",
        }
    }

    /// One of the four integer types.
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            BaseType::UnsignedInt | BaseType::Int | BaseType::UnsignedLong | BaseType::Long
        )
    }
}

/// A `<size minLength maxLength>` facet. For base64 and hexBinary the length is in bytes of
/// decoded data (XML Schema semantics), for strings in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct SizeFacet {
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
}

/// A bound of a range facet: integers for the integer types, decimals for `decimal`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Number {
    Int(i128),
    Decimal(f64),
}

impl Number {
    pub(crate) fn parse(s: &str) -> Option<Number> {
        let t = s.trim();
        if let Ok(i) = t.parse::<i128>() {
            return Some(Number::Int(i));
        }
        t.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Number::Decimal)
    }

    pub fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Decimal(d) => d,
        }
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Int(i) => write!(f, "{i}"),
            Number::Decimal(d) => write!(f, "{d}"),
        }
    }
}

/// A `<range minInclusive maxInclusive step>` facet. Several ranges on one parameter mean
/// "any of them".
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct RangeFacet {
    pub min: Option<Number>,
    pub max: Option<Number>,
    pub step: Option<Number>,
}

impl fmt::Display for RangeFacet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.min, self.max) {
            (Some(a), Some(b)) if a == b => write!(f, "[{a}]")?,
            (Some(a), Some(b)) => write!(f, "[{a}:{b}]")?,
            (Some(a), None) => write!(f, "[{a}:]")?,
            (None, Some(b)) => write!(f, "[:{b}]")?,
            (None, None) => write!(f, "[:]")?,
        }
        if let Some(s) = self.step {
            write!(f, " step {s}")?;
        }
        Ok(())
    }
}

/// One `<enumeration>` value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Enumeration {
    pub value: String,
    /// `readOnly`: only the CPE ever sets this value (e.g. DiagnosticsState `Complete`).
    pub access: Access,
    pub optional: bool,
    pub status: Status,
    pub code: Option<i64>,
}

/// A `<pattern>` facet (XML Schema regular expression, implicitly anchored). Compiled on first
/// use and shared by every parameter using the same named data type.
#[derive(Clone, Serialize)]
pub struct Pattern {
    pub value: String,
    pub access: Access,
    pub status: Status,
    #[serde(skip)]
    pub(crate) compiled: Arc<OnceLock<Option<regex_lite::Regex>>>,
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pattern")
            .field("value", &self.value)
            .field("access", &self.access)
            .field("status", &self.status)
            .finish()
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value && self.access == other.access && self.status == other.status
    }
}

impl Pattern {
    pub(crate) fn new(value: String, access: Access, status: Status) -> Pattern {
        Pattern {
            value,
            access,
            status,
            compiled: Arc::new(OnceLock::new()),
        }
    }

    /// Whether `s` matches (the whole of) the pattern. `None` when the pattern uses XML Schema
    /// regex features this crate does not translate (Unicode blocks, class subtraction).
    pub fn matches(&self, s: &str) -> Option<bool> {
        self.compiled
            .get_or_init(|| crate::validate::compile_xsd_pattern(&self.value))
            .as_ref()
            .map(|re| re.is_match(s))
    }
}

/// `<enumerationRef>`: the valid values are those of another (list) parameter at run time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnumerationRef {
    pub target_param: String,
    pub target_param_scope: PathScope,
    pub null_value: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum PathScope {
    #[default]
    Normal,
    Model,
    Object,
}

impl PathScope {
    pub(crate) fn parse(s: &str) -> Option<PathScope> {
        Some(match s {
            "normal" => PathScope::Normal,
            "model" => PathScope::Model,
            "object" => PathScope::Object,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum RefType {
    #[default]
    Weak,
    Strong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum TargetType {
    #[default]
    Any,
    Parameter,
    Object,
    Single,
    Table,
    Row,
}

impl TargetType {
    pub(crate) fn parse(s: &str) -> Option<TargetType> {
        Some(match s {
            "any" => TargetType::Any,
            "parameter" => TargetType::Parameter,
            "object" => TargetType::Object,
            "single" => TargetType::Single,
            "table" => TargetType::Table,
            "row" => TargetType::Row,
            _ => return None,
        })
    }
}

/// A reference facet: the parameter's value names another item of the model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Reference {
    /// `<pathRef>` (string parameters): a path name.
    Path {
        ref_type: RefType,
        /// `targetParent`, split on whitespace; empty = anywhere.
        target_parents: Vec<String>,
        target_parent_scope: PathScope,
        target_type: TargetType,
        target_data_type: Option<String>,
    },
    /// `<instanceRef>` (int/unsignedInt parameters): an instance number of a table.
    Instance {
        ref_type: RefType,
        target_parent: String,
        target_parent_scope: PathScope,
    },
}

/// The facets of a parameter's (or data type's) syntax, after merging those of its named data
/// type chain with its own.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Facets {
    pub sizes: Vec<SizeFacet>,
    pub ranges: Vec<RangeFacet>,
    pub patterns: Vec<Pattern>,
    pub enumerations: Vec<Enumeration>,
    pub enumeration_ref: Option<EnumerationRef>,
    pub units: Option<String>,
    pub reference: Option<Reference>,
}

impl Facets {
    /// Merges `own` (a derived level) over `self` (the base level): a kind of facet given at the
    /// derived level replaces the base's, except enumerations, which derived types may extend.
    pub(crate) fn merged(&self, own: &Facets) -> Facets {
        let mut out = self.clone();
        out.merge_from(own.clone());
        out
    }

    pub(crate) fn merge_from(&mut self, own: Facets) {
        if !own.sizes.is_empty() {
            self.sizes = own.sizes;
        }
        if !own.ranges.is_empty() {
            self.ranges = own.ranges;
        }
        if !own.patterns.is_empty() {
            self.patterns = own.patterns;
        }
        let restates_all = !own.enumerations.is_empty()
            && self
                .enumerations
                .iter()
                .all(|o| own.enumerations.iter().any(|e| e.value == o.value));
        if restates_all {
            // The derived level lists every value: its order wins.
            self.enumerations = own.enumerations;
        } else {
            for e in own.enumerations {
                if let Some(old) = self.enumerations.iter_mut().find(|o| o.value == e.value) {
                    *old = e;
                } else {
                    self.enumerations.push(e);
                }
            }
        }
        if own.enumeration_ref.is_some() {
            self.enumeration_ref = own.enumeration_ref;
        }
        if own.units.is_some() {
            self.units = own.units;
        }
        if own.reference.is_some() {
            self.reference = own.reference;
        }
    }
}

/// `<list>`: the value is a comma-separated list of items of the base type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct ListFacet {
    pub min_items: u64,
    /// `None` = unbounded.
    pub max_items: Option<u64>,
    /// Sizes of the whole list string.
    pub sizes: Vec<SizeFacet>,
    /// `nestedBrackets` (`legacy` when absent, `permitted`, `required`): whether items may be
    /// `[...]` groups, in which commas do not split.
    pub nested_brackets: Option<String>,
}

/// A parameter's syntax: the built-in base type (named data types resolved to it), the named
/// type if any, the merged facets, and the list facet for list-valued parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Syntax {
    pub base: BaseType,
    /// The data type named in `<dataType ref=…>` (or `base=…`), e.g. `MACAddress`.
    pub named_type: Option<String>,
    pub facets: Facets,
    pub list: Option<ListFacet>,
}

impl Default for Syntax {
    fn default() -> Self {
        Syntax {
            base: BaseType::String,
            named_type: None,
            facets: Facets::default(),
            list: None,
        }
    }
}

/// The `type` of a `<default>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DefaultKind {
    /// The value a new instance gets at AddObject.
    Object,
    /// The value after a factory reset (also applies on object creation).
    Factory,
    /// Informational: likely after a reset.
    Implementation,
}

/// A parameter's `<default type=… value=…>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DefaultValue {
    pub kind: DefaultKind,
    pub value: String,
}

/// One `<uniqueKey>` of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UniqueKey {
    /// `false` marks non-functional keys such as `Alias`.
    pub functional: bool,
    pub parameters: Vec<String>,
}

/// An object definition. `path` is the template path (`Device.NAT.PortMapping.{i}.`).
#[derive(Debug, Clone, Serialize)]
pub struct ObjectDef {
    pub path: String,
    pub access: Access,
    pub multi_instance: bool,
    pub min_entries: u32,
    /// `None` = unbounded.
    pub max_entries: Option<u32>,
    pub status: Status,
    pub description: String,
    pub unique_keys: Vec<UniqueKey>,
    pub num_entries_parameter: Option<String>,
    pub enable_parameter: Option<String>,
    pub discriminator_parameter: Option<String>,
    /// The model version that introduced the object (`2.0`).
    pub version: Option<String>,
    pub parameters: Vec<ParamDef>,
    #[serde(skip)]
    pub(crate) live: bool,
    #[serde(skip)]
    pub(crate) line: u32,
}

impl ObjectDef {
    /// A multi-instance object the ACS may AddObject/DeleteObject on.
    pub fn is_writable_table(&self) -> bool {
        self.multi_instance && self.access == Access::ReadWrite
    }

    /// Not deleted or obsoleted, and no enclosing object is.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// The last path segment: `PortMapping` for `Device.NAT.PortMapping.{i}.`.
    pub fn name(&self) -> &str {
        let p = self.path.strip_suffix(".{i}.").unwrap_or(&self.path);
        let p = p.strip_suffix('.').unwrap_or(p);
        p.rsplit('.').next().unwrap_or(p)
    }

    /// The table path, without the trailing `{i}.` (`Device.NAT.PortMapping.`), or the path
    /// itself for a single-instance object.
    pub fn table_path(&self) -> &str {
        self.path.strip_suffix("{i}.").unwrap_or(&self.path)
    }

    /// A parameter of this object by name.
    pub fn parameter(&self, name: &str) -> Option<&ParamDef> {
        self.parameters.iter().find(|p| p.name == name)
    }

    /// First sentence of the description, template markup reduced to plain text.
    pub fn summary_line(&self) -> String {
        crate::text::summary(&self.description, &crate::text::Ctx::object(self))
    }
}

/// A parameter definition. `path` is the template path (`Device.NAT.PortMapping.{i}.Enable`).
#[derive(Debug, Clone, Serialize)]
pub struct ParamDef {
    pub name: String,
    pub path: String,
    pub access: Access,
    pub syntax: Syntax,
    pub status: Status,
    pub description: String,
    pub default: Option<DefaultValue>,
    pub active_notify: ActiveNotify,
    pub forced_inform: bool,
    /// Reads back as the null value of its type (`syntax hidden="true"`).
    pub hidden: bool,
    /// Reads back empty when the protocol lets the ACS read it (passwords, keys).
    pub secured: bool,
    /// Setting it triggers an action; it is not configuration (`syntax command="true"`).
    pub command: bool,
    pub version: Option<String>,
    #[serde(skip)]
    pub(crate) live: bool,
    #[serde(skip)]
    pub(crate) line: u32,
    #[serde(skip)]
    pub(crate) summary: OnceLock<String>,
}

impl ParamDef {
    /// First sentence of the description, with `{{param}}`, `{{bibref}}`, `{{enum}}`,
    /// `{{numentries}}`… templates and wiki markup reduced to plain text. Computed on first use.
    pub fn summary_line(&self) -> &str {
        self.summary
            .get_or_init(|| crate::text::summary(&self.description, &crate::text::Ctx::param(self)))
    }

    /// Not deleted or obsoleted, and neither is its object or any enclosing object.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// Whether the value on the wire is a comma-separated list.
    pub fn is_list(&self) -> bool {
        self.syntax.list.is_some()
    }

    /// The `xsi:type` to send: the base type's, `xsd:string` for lists.
    pub fn xsd_type(&self) -> &'static str {
        if self.syntax.list.is_some() {
            "xsd:string"
        } else {
            self.syntax.base.xsd_type()
        }
    }
}

/// Requirement of a profile's object reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ObjectRequirement {
    NotSpecified,
    Present,
    Create,
    Delete,
    CreateDelete,
}

impl ObjectRequirement {
    pub(crate) fn parse(s: &str) -> Option<ObjectRequirement> {
        Some(match s {
            "notSpecified" => ObjectRequirement::NotSpecified,
            "present" => ObjectRequirement::Present,
            "create" => ObjectRequirement::Create,
            "delete" => ObjectRequirement::Delete,
            "createDelete" => ObjectRequirement::CreateDelete,
            _ => return None,
        })
    }
}

/// `<parameter ref requirement>` inside a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileParameter {
    pub name: String,
    pub requirement: Access,
    pub status: Status,
}

/// `<object ref requirement>` inside a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileObject {
    pub path: String,
    pub requirement: ObjectRequirement,
    pub status: Status,
    pub parameters: Vec<ProfileParameter>,
}

/// A `<profile>` of a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Profile {
    pub name: String,
    pub base: Option<String>,
    pub extends: Vec<String>,
    pub status: Status,
    pub version: Option<String>,
    pub description: String,
    pub objects: Vec<ProfileObject>,
    /// Parameter references directly in the profile (outside an object reference).
    pub parameters: Vec<ProfileParameter>,
}
