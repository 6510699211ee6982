//! The simulated device's parameter tree.
//!
//! An ordered arena tree of objects and parameters: children keep insertion
//! order (so GetParameterNames answers in data-model order, instances in
//! creation order), nodes store only their own name segment (paths are built
//! while walking, which keeps a few hundred parameters × tens of thousands of
//! devices affordable), and multi-instance tables carry a [`Template`] that
//! AddObject instantiates with the instance's default children.
//!
//! The CWMP semantics of the parameter RPCs (GPV, GPN, SPV, SPA, GPA,
//! AddObject, DeleteObject) live here too, expressed with the codec's
//! structures and [`Fault`]s so the device layer is a thin dispatcher.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use chrono::{DateTime, Utc};

use acs::codec::{
    format_datetime, parse_datetime_lenient, Fault, ParameterAttributeStruct, ParameterInfoStruct,
    ParameterValueStruct, SetParameterAttributesStruct, SetParameterValuesFault,
};

/// Longest parameter name CWMP allows (checklist §0.2).
pub const MAX_NAME_LEN: usize = 256;

/// The TR-106 base types as they travel in `xsi:type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum XsdType {
    String,
    Int,
    UnsignedInt,
    Long,
    UnsignedLong,
    Boolean,
    DateTime,
    Base64,
    HexBinary,
}

impl XsdType {
    /// The `xsi:type` value we emit (`xsd:` prefix).
    pub fn xsi_type(self) -> &'static str {
        match self {
            XsdType::String => "xsd:string",
            XsdType::Int => "xsd:int",
            XsdType::UnsignedInt => "xsd:unsignedInt",
            XsdType::Long => "xsd:long",
            XsdType::UnsignedLong => "xsd:unsignedLong",
            XsdType::Boolean => "xsd:boolean",
            XsdType::DateTime => "xsd:dateTime",
            XsdType::Base64 => "xsd:base64Binary",
            XsdType::HexBinary => "xsd:hexBinary",
        }
    }

    /// Reads an `xsi:type` value, whatever its prefix (`xsd:int`, `int`,
    /// `soap-enc:base64`). `None` for a type we do not know.
    pub fn from_xsi_type(s: &str) -> Option<XsdType> {
        let local = s.rsplit(':').next().unwrap_or(s).trim();
        Some(match local {
            "string" => XsdType::String,
            "int" => XsdType::Int,
            "unsignedInt" => XsdType::UnsignedInt,
            "long" => XsdType::Long,
            "unsignedLong" => XsdType::UnsignedLong,
            "boolean" => XsdType::Boolean,
            "dateTime" => XsdType::DateTime,
            "base64Binary" | "base64" => XsdType::Base64,
            "hexBinary" => XsdType::HexBinary,
            _ => return None,
        })
    }

    /// Class used for the "clearly wrong type" test of SPV (9006): the
    /// integer types are interchangeable as long as the value fits.
    fn class(self) -> u8 {
        match self {
            XsdType::String => 0,
            XsdType::Int | XsdType::UnsignedInt | XsdType::Long | XsdType::UnsignedLong => 1,
            XsdType::Boolean => 2,
            XsdType::DateTime => 3,
            XsdType::Base64 => 4,
            XsdType::HexBinary => 5,
        }
    }

    /// Whether a value tagged `sent` may be stored in a parameter of type
    /// `self`. Like a strict-but-sane CPE: `xsd:string` is accepted for any
    /// parameter (the lexical check still applies, giving 9007), a string
    /// parameter accepts any tag, and otherwise the type classes must agree.
    pub fn accepts_tag(self, sent: XsdType) -> bool {
        sent == XsdType::String || self == XsdType::String || sent.class() == self.class()
    }

    /// Validates a lexical value and returns its canonical stored form
    /// (booleans become `true`/`false`, dateTimes `…Z` without fractions).
    pub fn canonical(self, v: &str) -> Option<String> {
        let t = v.trim();
        match self {
            XsdType::String => Some(v.to_string()),
            XsdType::Int => t.parse::<i32>().ok().map(|n| n.to_string()),
            XsdType::UnsignedInt => t.parse::<u32>().ok().map(|n| n.to_string()),
            XsdType::Long => t.parse::<i64>().ok().map(|n| n.to_string()),
            XsdType::UnsignedLong => t.parse::<u64>().ok().map(|n| n.to_string()),
            XsdType::Boolean => match t {
                "1" => Some("true".into()),
                "0" => Some("false".into()),
                _ if t.eq_ignore_ascii_case("true") => Some("true".into()),
                _ if t.eq_ignore_ascii_case("false") => Some("false".into()),
                _ => None,
            },
            XsdType::DateTime => {
                if t == acs::codec::UNKNOWN_TIME {
                    return Some(t.to_string());
                }
                // Strict enough: must look like a dateTime (date, 'T', time).
                if !t.contains('T') || t.len() < 19 {
                    return None;
                }
                parse_datetime_lenient(t).map(|d| format_datetime(&d))
            }
            XsdType::Base64 => base64::engine::general_purpose::STANDARD
                .decode(t)
                .ok()
                .map(|_| t.to_string()),
            XsdType::HexBinary => {
                if t.len() & 1 == 0 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Some(t.to_string())
                } else {
                    None
                }
            }
        }
    }

    fn is_integer(self) -> bool {
        self.class() == 1
    }
}

/// Data-model `activeNotify` attribute (checklist §7.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActiveNotify {
    /// Any notification value is accepted.
    Normal,
    /// Active notification (2, 5, 6) is refused with 9009 (counters, clocks).
    CanDeny,
    /// Always active; cannot be turned off (9009).
    ForceEnabled,
    /// Active by default; may be changed.
    ForceDefaultEnabled,
}

/// Value restrictions beyond the base type (bad value → 9007).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Facet {
    None,
    /// Allowed values (each item, for a list).
    Enum(&'static [&'static str]),
    /// Inclusive integer range.
    Range(i64, i64),
    /// Maximum length in characters.
    MaxLen(u16),
}

/// How a parameter's value is computed when it is not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dynamic {
    /// Seconds since the (simulated) boot.
    UpTime,
    /// The current time (`xsd:dateTime`).
    LocalTime,
    /// A counter growing with the uptime: `base + per_sec * uptime`.
    Counter { base: u64, per_sec: u32 },
}

/// Static description of a parameter: everything but its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParamMeta {
    pub ty: XsdType,
    pub writable: bool,
    /// Reads back as `""` (passwords, keys: `hidden`/`secured` in the DM).
    pub hidden: bool,
    /// Comma-separated list value.
    pub list: bool,
    pub active_notify: ActiveNotify,
    /// Always in the Inform ParameterList (checklist §3.4).
    pub forced_inform: bool,
    pub facet: Facet,
    pub dynamic: Option<Dynamic>,
}

impl ParamMeta {
    /// A read-only parameter of type `ty`.
    pub const fn ro(ty: XsdType) -> Self {
        ParamMeta {
            ty,
            writable: false,
            hidden: false,
            list: false,
            active_notify: ActiveNotify::Normal,
            forced_inform: false,
            facet: Facet::None,
            dynamic: None,
        }
    }
    /// A writable parameter of type `ty`.
    pub const fn rw(ty: XsdType) -> Self {
        let mut m = Self::ro(ty);
        m.writable = true;
        m
    }
    pub const fn hidden(mut self) -> Self {
        self.hidden = true;
        self
    }
    pub const fn list(mut self) -> Self {
        self.list = true;
        self
    }
    pub const fn can_deny(mut self) -> Self {
        self.active_notify = ActiveNotify::CanDeny;
        self
    }
    pub const fn force_enabled(mut self) -> Self {
        self.active_notify = ActiveNotify::ForceEnabled;
        self
    }
    pub const fn force_default(mut self) -> Self {
        self.active_notify = ActiveNotify::ForceDefaultEnabled;
        self
    }
    pub const fn forced_inform(mut self) -> Self {
        self.forced_inform = true;
        self
    }
    pub const fn enumeration(mut self, values: &'static [&'static str]) -> Self {
        self.facet = Facet::Enum(values);
        self
    }
    pub const fn range(mut self, min: i64, max: i64) -> Self {
        self.facet = Facet::Range(min, max);
        self
    }
    pub const fn max_len(mut self, n: u16) -> Self {
        self.facet = Facet::MaxLen(n);
        self
    }
    /// A counter (`StatsCounter32/64`): read-only, canDeny, grows with uptime.
    pub const fn counter(ty: XsdType, base: u64, per_sec: u32) -> Self {
        let mut m = Self::ro(ty).can_deny();
        m.dynamic = Some(Dynamic::Counter { base, per_sec });
        m
    }
    pub const fn dynamic(mut self, d: Dynamic) -> Self {
        self.dynamic = Some(d);
        self
    }

    /// Notification value a parameter starts with (factory default).
    pub fn default_notification(&self) -> u8 {
        match self.active_notify {
            ActiveNotify::ForceEnabled | ActiveNotify::ForceDefaultEnabled => 2,
            _ => 0,
        }
    }

    /// Checks a value (already type-canonical) against the facet.
    fn facet_ok(&self, v: &str) -> bool {
        match self.facet {
            Facet::None => true,
            Facet::MaxLen(n) => v.chars().count() <= n as usize,
            Facet::Enum(values) => {
                if self.list {
                    v.is_empty() || v.split(',').all(|i| values.contains(&i.trim()))
                } else {
                    values.contains(&v)
                }
            }
            Facet::Range(min, max) => {
                if !self.ty.is_integer() {
                    return true;
                }
                match v.parse::<i128>() {
                    Ok(n) => n >= min as i128 && n <= max as i128,
                    Err(_) => false,
                }
            }
        }
    }

    /// Full validation of a value for this parameter: type then facet.
    pub fn validate(&self, v: &str) -> Option<String> {
        let c = self.ty.canonical(v)?;
        if self.facet_ok(&c) {
            Some(c)
        } else {
            None
        }
    }
}

/// Returns a `'static` copy of `s`, shared by every tree in the process.
/// Only node names are interned (data-model names and instance numbers),
/// a small bounded set, so thousands of devices share one copy of each.
fn intern(s: &str) -> &'static str {
    static SET: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut set = SET
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(v) = set.get(s) {
        return v;
    }
    let v: &'static str = Box::leak(s.to_owned().into_boxed_str());
    set.insert(v);
    v
}

/// One shared copy of each distinct [`ParamMeta`].
fn intern_meta(m: ParamMeta) -> &'static ParamMeta {
    static MAP: OnceLock<Mutex<HashMap<ParamMeta, &'static ParamMeta>>> = OnceLock::new();
    let mut map = MAP
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    map.entry(m).or_insert_with(|| Box::leak(Box::new(m)))
}

/// A stored value: common literals are shared, others owned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Static(&'static str),
    Owned(Box<str>),
}

impl Value {
    fn new(s: String) -> Value {
        const COMMON: [&str; 12] = [
            "",
            "true",
            "false",
            "0",
            "1",
            "-1",
            "Up",
            "Down",
            "Enabled",
            "Disabled",
            "0001-01-01T00:00:00Z",
            "Static",
        ];
        match COMMON.iter().find(|c| **c == s) {
            Some(c) => Value::Static(c),
            None => Value::Owned(s.into_boxed_str()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Value::Static(s) => s,
            Value::Owned(s) => s,
        }
    }
}

/// A leaf: value plus attributes.
#[derive(Debug, Clone)]
pub struct Param {
    /// Type, access and notification metadata (shared between trees).
    pub meta: &'static ParamMeta,
    /// Canonical stored value (ignored for dynamic parameters).
    value: Value,
    /// Notification attribute 0–6.
    pub notification: u8,
    /// AccessList contains `Subscriber`.
    pub subscriber_access: bool,
}

impl Param {
    fn new(meta: ParamMeta, value: String) -> Param {
        let meta = intern_meta(meta);
        Param {
            meta,
            value: Value::new(value),
            notification: meta.default_notification(),
            subscriber_access: false,
        }
    }

    /// The stored value (the real one, even if hidden; dynamic parameters
    /// are computed by [`ParamTree::read_value`]).
    pub fn value(&self) -> &str {
        self.value.as_str()
    }
}

/// One entry of an instance template.
#[derive(Debug, Clone)]
pub enum TemplateItem {
    /// A parameter and its default value. An empty default `Alias` becomes
    /// `cpe-<n>` (checklist §7.4).
    Param(&'static str, ParamMeta, &'static str),
    /// A single-instance child object with its own items.
    Object(&'static str, Vec<TemplateItem>),
    /// A nested multi-instance table (created empty).
    Table(&'static str, TableSpec),
}

/// The default children of a new instance.
pub type Template = Vec<TemplateItem>;

/// What a multi-instance table allows, plus its instance template.
#[derive(Debug, Clone)]
pub struct TableSpec {
    /// AddObject/DeleteObject allowed (DM `access="readWrite"` on the table).
    pub writable: bool,
    pub template: Arc<Template>,
}

impl TableSpec {
    pub fn new(writable: bool, template: Template) -> Self {
        TableSpec {
            writable,
            template: Arc::new(template),
        }
    }
}

#[derive(Debug, Clone)]
enum Kind {
    Object,
    Table { spec: TableSpec, next: u32 },
    Instance,
    Param(Param),
}

/// Arena node. Children form a singly linked list (`first` → `next`, with
/// `last` for O(1) append) so leaves carry no allocation at all.
#[derive(Debug, Clone)]
struct Node {
    name: &'static str,
    parent: u32,
    first: u32,
    last: u32,
    next: u32,
    kind: Kind,
}

/// "No node" in the links.
const NIL: u32 = u32::MAX;

/// Iterator over a node's children.
struct Children<'a> {
    tree: &'a ParamTree,
    cur: u32,
}

impl Iterator for Children<'_> {
    type Item = NodeId;
    fn next(&mut self) -> Option<NodeId> {
        match self.cur {
            NIL => None,
            c => {
                self.cur = self.tree.node(c).next;
                Some(c)
            }
        }
    }
}

/// Index of a node in the arena.
pub type NodeId = u32;

const ROOT: NodeId = 0;

/// Context for computing dynamic values.
#[derive(Debug, Clone, Copy)]
pub struct ReadCtx {
    pub now: DateTime<Utc>,
    pub uptime_secs: u64,
    /// Emit booleans as `1`/`0` instead of `true`/`false`.
    pub boolean_digits: bool,
}

impl ReadCtx {
    pub fn new(now: DateTime<Utc>, uptime_secs: u64) -> Self {
        ReadCtx {
            now,
            uptime_secs,
            boolean_digits: false,
        }
    }
}

/// What an SPV/AddObject/DeleteObject changed, for value-change bookkeeping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Full names of parameters whose value changed.
    pub params: Vec<String>,
}

/// An ordered tree of CWMP objects and parameters.
#[derive(Debug, Clone)]
pub struct ParamTree {
    nodes: Vec<Option<Node>>,
    free: Vec<u32>,
    root_name: Box<str>,
}

impl ParamTree {
    /// An empty tree with the single root object (e.g. `Device`).
    pub fn new(root: &str) -> Self {
        let mut t = ParamTree {
            nodes: vec![Some(Node {
                name: "",
                parent: ROOT,
                first: NIL,
                last: NIL,
                next: NIL,
                kind: Kind::Object,
            })],
            free: Vec::new(),
            root_name: root.into(),
        };
        t.alloc(ROOT, root, Kind::Object);
        t
    }

    /// Releases spare arena capacity (call once a generated tree is complete).
    pub fn shrink_to_fit(&mut self) {
        self.nodes.shrink_to_fit();
        self.free.shrink_to_fit();
    }

    /// Name of the root object, e.g. `Device`.
    pub fn root_name(&self) -> &str {
        &self.root_name
    }

    fn node(&self, id: NodeId) -> &Node {
        self.nodes[id as usize].as_ref().expect("live node")
    }

    fn node_mut(&mut self, id: NodeId) -> &mut Node {
        self.nodes[id as usize].as_mut().expect("live node")
    }

    fn alloc(&mut self, parent: NodeId, name: &str, kind: Kind) -> NodeId {
        let node = Node {
            name: intern(name),
            parent,
            first: NIL,
            last: NIL,
            next: NIL,
            kind,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = Some(node);
                id
            }
            None => {
                self.nodes.push(Some(node));
                (self.nodes.len() - 1) as NodeId
            }
        };
        match self.node(parent).last {
            NIL => self.node_mut(parent).first = id,
            last => self.node_mut(last).next = id,
        }
        self.node_mut(parent).last = id;
        id
    }

    /// The children of a node, in order.
    fn children(&self, id: NodeId) -> Children<'_> {
        Children {
            tree: self,
            cur: self.node(id).first,
        }
    }

    fn child(&self, id: NodeId, name: &str) -> Option<NodeId> {
        self.children(id).find(|&c| self.node(c).name == name)
    }

    fn is_param(&self, id: NodeId) -> bool {
        matches!(self.node(id).kind, Kind::Param(_))
    }

    /// Looks up a node: `""` is the virtual root, a name ending in `.` an
    /// object, anything else a parameter.
    pub fn find(&self, path: &str) -> Option<NodeId> {
        if path.is_empty() {
            return Some(ROOT);
        }
        let (body, want_object) = match path.strip_suffix('.') {
            Some(b) => (b, true),
            None => (path, false),
        };
        let mut cur = ROOT;
        for seg in body.split('.') {
            if seg.is_empty() {
                return None;
            }
            cur = self.child(cur, seg)?;
        }
        if self.is_param(cur) == want_object {
            return None;
        }
        Some(cur)
    }

    /// Full name of a node (objects end in `.`; the virtual root is `""`).
    pub fn path_of(&self, id: NodeId) -> String {
        if id == ROOT {
            return String::new();
        }
        let mut segs = Vec::new();
        let mut cur = id;
        while cur != ROOT {
            let n = self.node(cur);
            segs.push(n.name);
            cur = n.parent;
        }
        segs.reverse();
        let mut s = segs.join(".");
        if !self.is_param(id) {
            s.push('.');
        }
        s
    }

    /// Creates an object path (and any missing intermediate objects).
    pub fn add_object(&mut self, path: &str) -> NodeId {
        let body = path.strip_suffix('.').unwrap_or(path);
        let mut cur = ROOT;
        for seg in body.split('.') {
            cur = match self.child(cur, seg) {
                Some(c) => c,
                None => self.alloc(cur, seg, Kind::Object),
            };
        }
        cur
    }

    /// Creates (or overwrites) a parameter at its full name.
    pub fn add_param(&mut self, path: &str, meta: ParamMeta, value: impl Into<String>) -> NodeId {
        let (obj, name) = path.rsplit_once('.').expect("parameter path has an object");
        let parent = self.add_object(obj);
        let param = Param::new(meta, value.into());
        match self.child(parent, name) {
            Some(id) => {
                self.node_mut(id).kind = Kind::Param(param);
                id
            }
            None => self.alloc(parent, name, Kind::Param(param)),
        }
    }

    /// Creates a multi-instance table (`Device.NAT.PortMapping.`), empty.
    pub fn add_table(&mut self, path: &str, spec: TableSpec) -> NodeId {
        let body = path.strip_suffix('.').unwrap_or(path);
        let (obj, name) = body.rsplit_once('.').expect("table path has a parent");
        let parent = self.add_object(obj);
        let kind = Kind::Table { spec, next: 1 };
        match self.child(parent, name) {
            Some(id) => {
                self.node_mut(id).kind = kind;
                id
            }
            None => self.alloc(parent, name, kind),
        }
    }

    /// Adds an instance to a table from its template, whatever the table's
    /// writability (the device itself creates rows in read-only tables).
    /// Returns the instance number. `None` if `table_path` is not a table.
    pub fn create_instance(&mut self, table_path: &str) -> Option<u32> {
        let id = self.find(table_path)?;
        self.create_instance_at(id)
    }

    fn create_instance_at(&mut self, table: NodeId) -> Option<u32> {
        let (template, number) = match &mut self.node_mut(table).kind {
            Kind::Table { spec, next } => {
                let n = *next;
                *next += 1;
                (spec.template.clone(), n)
            }
            _ => return None,
        };
        let inst = self.alloc(table, &number.to_string(), Kind::Instance);
        self.instantiate(inst, &template, number);
        self.update_count(table);
        Some(number)
    }

    fn instantiate(&mut self, at: NodeId, items: &[TemplateItem], number: u32) {
        for item in items {
            match item {
                TemplateItem::Param(name, meta, default) => {
                    let value = if *name == "Alias" && default.is_empty() {
                        format!("cpe-{number}")
                    } else {
                        (*default).to_string()
                    };
                    let p = Param::new(*meta, value);
                    self.alloc(at, name, Kind::Param(p));
                }
                TemplateItem::Object(name, sub) => {
                    let o = self.alloc(at, name, Kind::Object);
                    self.instantiate(o, sub, number);
                }
                TemplateItem::Table(name, spec) => {
                    self.alloc(
                        at,
                        name,
                        Kind::Table {
                            spec: spec.clone(),
                            next: 1,
                        },
                    );
                }
            }
        }
    }

    /// Keeps `<Table>NumberOfEntries` in the parent object in step.
    fn update_count(&mut self, table: NodeId) {
        let n = self.children(table).count();
        let parent = self.node(table).parent;
        let count_name = format!("{}NumberOfEntries", self.node(table).name);
        if let Some(c) = self.child(parent, &count_name) {
            if let Kind::Param(p) = &mut self.node_mut(c).kind {
                p.value = Value::new(n.to_string());
            }
        }
    }

    fn free_subtree(&mut self, id: NodeId) {
        let children: Vec<NodeId> = self.children(id).collect();
        for c in children {
            self.free_subtree(c);
        }
        self.nodes[id as usize] = None;
        self.free.push(id);
    }

    /// Removes an instance and its subtree (no writability check).
    pub fn remove_instance(&mut self, instance_path: &str) -> bool {
        let Some(id) = self.find(instance_path) else {
            return false;
        };
        if !matches!(self.node(id).kind, Kind::Instance) {
            return false;
        }
        self.remove_node(id);
        true
    }

    fn remove_node(&mut self, id: NodeId) {
        let parent = self.node(id).parent;
        let next = self.node(id).next;
        let mut prev = NIL;
        let mut cur = self.node(parent).first;
        while cur != id {
            prev = cur;
            cur = self.node(cur).next;
        }
        match prev {
            NIL => self.node_mut(parent).first = next,
            p => self.node_mut(p).next = next,
        }
        if self.node(parent).last == id {
            self.node_mut(parent).last = prev;
        }
        self.free_subtree(id);
        self.update_count(parent);
    }

    /// The parameter at a full name.
    pub fn param(&self, path: &str) -> Option<&Param> {
        let id = self.find(path)?;
        match &self.node(id).kind {
            Kind::Param(p) => Some(p),
            _ => None,
        }
    }

    fn param_mut(&mut self, path: &str) -> Option<&mut Param> {
        let id = self.find(path)?;
        match &mut self.node_mut(id).kind {
            Kind::Param(p) => Some(p),
            _ => None,
        }
    }

    /// Stored value of a parameter (the real one, even if hidden).
    pub fn get(&self, path: &str) -> Option<&str> {
        self.param(path).map(|p| p.value.as_str())
    }

    /// Sets a value from inside the device (not by the ACS). Returns the
    /// parameter's notification attribute if the value actually changed,
    /// so the caller can raise `4 VALUE CHANGE`. Unknown names are ignored.
    pub fn set_local(&mut self, path: &str, value: impl Into<String>) -> Option<u8> {
        let p = self.param_mut(path)?;
        let v = value.into();
        if p.value.as_str() == v {
            return None;
        }
        p.value = Value::new(v);
        Some(p.notification)
    }

    /// Instance numbers of a table, in order.
    pub fn instances(&self, table_path: &str) -> Vec<u32> {
        let Some(id) = self.find(table_path) else {
            return Vec::new();
        };
        self.children(id)
            .filter_map(|c| self.node(c).name.parse().ok())
            .collect()
    }

    /// Number of parameters in the tree.
    pub fn param_count(&self) -> usize {
        self.nodes
            .iter()
            .flatten()
            .filter(|n| matches!(n.kind, Kind::Param(_)))
            .count()
    }

    /// The value as it goes on the wire (dynamic values computed, hidden
    /// values blanked, booleans in the configured style).
    pub fn read_value(&self, p: &Param, ctx: &ReadCtx) -> String {
        if p.meta.hidden {
            return String::new();
        }
        let v = match p.meta.dynamic {
            Some(Dynamic::UpTime) => ctx.uptime_secs.min(u32::MAX as u64).to_string(),
            Some(Dynamic::LocalTime) => format_datetime(&ctx.now),
            Some(Dynamic::Counter { base, per_sec }) => {
                let n = base.wrapping_add(ctx.uptime_secs.wrapping_mul(per_sec as u64));
                match p.meta.ty {
                    XsdType::UnsignedInt => (n % (u32::MAX as u64 + 1)).to_string(),
                    _ => n.to_string(),
                }
            }
            None => p.value.as_str().to_string(),
        };
        if p.meta.ty == XsdType::Boolean && ctx.boolean_digits {
            return if v == "true" { "1".into() } else { "0".into() };
        }
        v
    }

    /// Depth-first visit of every parameter under `id` (inclusive).
    fn walk_params(&self, id: NodeId, prefix: &mut String, f: &mut dyn FnMut(&str, &Param)) {
        let n = self.node(id);
        match &n.kind {
            Kind::Param(p) => f(prefix, p),
            _ => {
                for c in self.children(id) {
                    let len = prefix.len();
                    prefix.push_str(self.node(c).name);
                    if !self.is_param(c) {
                        prefix.push('.');
                    }
                    self.walk_params(c, prefix, f);
                    prefix.truncate(len);
                }
            }
        }
    }

    /// Visits every node under `id` (exclusive), objects and parameters.
    fn walk_all(&self, id: NodeId, prefix: &mut String, f: &mut dyn FnMut(&str, NodeId)) {
        for c in self.children(id) {
            let len = prefix.len();
            prefix.push_str(self.node(c).name);
            if !self.is_param(c) {
                prefix.push('.');
            }
            f(prefix, c);
            if !self.is_param(c) {
                self.walk_all(c, prefix, f);
            }
            prefix.truncate(len);
        }
    }

    /// Every parameter as `(name, param)`, in tree order.
    pub fn params(&self) -> Vec<(String, &Param)> {
        let mut out = Vec::new();
        let mut prefix = String::new();
        self.walk_params_collect(ROOT, &mut prefix, &mut out);
        out
    }

    fn walk_params_collect<'a>(
        &'a self,
        id: NodeId,
        prefix: &mut String,
        out: &mut Vec<(String, &'a Param)>,
    ) {
        let n = self.node(id);
        match &n.kind {
            Kind::Param(p) => out.push((prefix.clone(), p)),
            _ => {
                for c in self.children(id) {
                    let len = prefix.len();
                    prefix.push_str(self.node(c).name);
                    if !self.is_param(c) {
                        prefix.push('.');
                    }
                    self.walk_params_collect(c, prefix, out);
                    prefix.truncate(len);
                }
            }
        }
    }

    /// Resolves a GPV/GPA/SPA name: a full parameter name, a partial path,
    /// or `""` (the whole tree).
    fn resolve(&self, name: &str) -> Option<NodeId> {
        if name.len() > MAX_NAME_LEN {
            return None;
        }
        self.find(name)
    }

    // -----------------------------------------------------------------
    // CWMP parameter RPCs
    // -----------------------------------------------------------------

    /// GetParameterValues: full names and partial paths; any unknown name
    /// fails the whole call with 9005; hidden values read back as `""`.
    pub fn get_parameter_values(
        &self,
        names: &[String],
        ctx: &ReadCtx,
    ) -> Result<Vec<ParameterValueStruct>, Fault> {
        let mut ids = Vec::with_capacity(names.len());
        for n in names {
            match self.resolve(n) {
                Some(id) => ids.push((n.as_str(), id)),
                None => return Err(Fault::cpe(9005, format!("Invalid parameter name: {n}"))),
            }
        }
        let mut out = Vec::new();
        for (name, id) in ids {
            let mut prefix = name.to_string();
            self.walk_params(id, &mut prefix, &mut |path, p| {
                out.push(ParameterValueStruct::new(
                    path,
                    self.read_value(p, ctx),
                    p.meta.ty.xsi_type(),
                ))
            });
        }
        Ok(out)
    }

    fn writable_flag(&self, id: NodeId) -> bool {
        match &self.node(id).kind {
            Kind::Param(p) => p.meta.writable,
            Kind::Table { spec, .. } => spec.writable,
            Kind::Instance => match &self.node(self.node(id).parent).kind {
                Kind::Table { spec, .. } => spec.writable,
                _ => false,
            },
            Kind::Object => false,
        }
    }

    /// GetParameterNames with the NextLevel rules of checklist §7.2.
    pub fn get_parameter_names(
        &self,
        path: &str,
        next_level: bool,
    ) -> Result<Vec<ParameterInfoStruct>, Fault> {
        let id = self
            .resolve(path)
            .ok_or_else(|| Fault::cpe(9005, format!("Invalid parameter name: {path}")))?;
        let mut out = Vec::new();
        if self.is_param(id) {
            if next_level {
                return Err(Fault::cpe(
                    9003,
                    "NextLevel must be false for a parameter name",
                ));
            }
            out.push(ParameterInfoStruct {
                name: path.to_string(),
                writable: self.writable_flag(id),
            });
            return Ok(out);
        }
        if next_level {
            for c in self.children(id) {
                let mut name = format!("{path}{}", self.node(c).name);
                if !self.is_param(c) {
                    name.push('.');
                }
                out.push(ParameterInfoStruct {
                    name,
                    writable: self.writable_flag(c),
                });
            }
        } else {
            if id != ROOT {
                out.push(ParameterInfoStruct {
                    name: path.to_string(),
                    writable: self.writable_flag(id),
                });
            }
            let mut prefix = path.to_string();
            self.walk_all(id, &mut prefix, &mut |name, c| {
                out.push(ParameterInfoStruct {
                    name: name.to_string(),
                    writable: self.writable_flag(c),
                })
            });
        }
        Ok(out)
    }

    /// SetParameterValues, atomically: every entry is checked first and
    /// nothing is applied if any fails. Faults are 9003 with one
    /// SetParameterValuesFault per bad entry (9005 unknown, 9006 type,
    /// 9007 value, 9008 read-only, 9003 duplicate).
    pub fn set_parameter_values(
        &mut self,
        list: &[ParameterValueStruct],
    ) -> Result<Changes, Fault> {
        let mut faults: Vec<SetParameterValuesFault> = Vec::new();
        let mut plan: Vec<(NodeId, String)> = Vec::with_capacity(list.len());
        let mut fault = |name: &str, code: u32, msg: &str| {
            faults.push(SetParameterValuesFault {
                parameter_name: name.to_string(),
                fault_code: code,
                fault_string: msg.to_string(),
            })
        };
        for (i, pv) in list.iter().enumerate() {
            if list[..i].iter().any(|o| o.name == pv.name) {
                fault(&pv.name, 9003, "Parameter appears more than once");
                continue;
            }
            let id = match self.resolve(&pv.name) {
                Some(id) if self.is_param(id) && !pv.name.is_empty() => id,
                _ => {
                    fault(&pv.name, 9005, "Invalid parameter name");
                    continue;
                }
            };
            let Kind::Param(p) = &self.node(id).kind else {
                unreachable!()
            };
            if !p.meta.writable {
                fault(&pv.name, 9008, "Attempt to set a non-writable parameter");
                continue;
            }
            if let Some(tag) = pv.xsi_type.as_deref() {
                match XsdType::from_xsi_type(tag) {
                    Some(sent) if p.meta.ty.accepts_tag(sent) => {}
                    _ => {
                        fault(&pv.name, 9006, "Invalid parameter type");
                        continue;
                    }
                }
            }
            match p.meta.validate(&pv.value) {
                Some(v) => plan.push((id, v)),
                None => fault(&pv.name, 9007, "Invalid parameter value"),
            }
        }
        if !faults.is_empty() {
            let mut f = Fault::cpe(9003, "Invalid arguments");
            f.detail.set_parameter_values_fault = faults;
            return Err(f);
        }
        let mut changes = Changes::default();
        for ((id, v), pv) in plan.into_iter().zip(list) {
            if let Kind::Param(p) = &mut self.node_mut(id).kind {
                if p.value.as_str() != v {
                    p.value = Value::new(v);
                    changes.params.push(pv.name.clone());
                }
            }
        }
        Ok(changes)
    }

    /// SetParameterAttributes, atomically. Notification 0–6 (else 9003),
    /// AccessList entries other than `Subscriber` → 9003, unknown name →
    /// 9005, active notification on a canDeny parameter or turning off a
    /// forceEnabled one → 9009.
    pub fn set_parameter_attributes(
        &mut self,
        list: &[SetParameterAttributesStruct],
    ) -> Result<(), Fault> {
        let mut plan: Vec<(NodeId, &SetParameterAttributesStruct)> = Vec::new();
        for s in list {
            let id = self
                .resolve(&s.name)
                .ok_or_else(|| Fault::cpe(9005, format!("Invalid parameter name: {}", s.name)))?;
            if s.notification_change && !(0..=6).contains(&s.notification) {
                return Err(Fault::cpe(
                    9003,
                    format!("Invalid Notification value {}", s.notification),
                ));
            }
            if s.access_list_change && s.access_list.iter().any(|a| a != "Subscriber") {
                return Err(Fault::cpe(9003, "Unsupported AccessList entry"));
            }
            if s.notification_change {
                let mut prefix = s.name.clone();
                let mut refused: Option<String> = None;
                let n = s.notification as u8;
                self.walk_params(id, &mut prefix, &mut |path, p| {
                    if refused.is_some() {
                        return;
                    }
                    let bad = match p.meta.active_notify {
                        ActiveNotify::CanDeny => matches!(n, 2 | 5 | 6),
                        ActiveNotify::ForceEnabled => n != 2,
                        _ => false,
                    };
                    if bad {
                        refused = Some(path.to_string());
                    }
                });
                if let Some(path) = refused {
                    return Err(Fault::cpe(
                        9009,
                        format!("Notification request rejected for {path}"),
                    ));
                }
            }
            plan.push((id, s));
        }
        for (id, s) in plan {
            let mut targets = Vec::new();
            self.collect_param_ids(id, &mut targets);
            for t in targets {
                if let Kind::Param(p) = &mut self.node_mut(t).kind {
                    if s.notification_change {
                        p.notification = s.notification as u8;
                    }
                    if s.access_list_change {
                        p.subscriber_access = !s.access_list.is_empty();
                    }
                }
            }
        }
        Ok(())
    }

    fn collect_param_ids(&self, id: NodeId, out: &mut Vec<NodeId>) {
        if self.is_param(id) {
            out.push(id);
            return;
        }
        for c in self.children(id) {
            self.collect_param_ids(c, out);
        }
    }

    /// GetParameterAttributes: full names and partial paths (9005 unknown).
    pub fn get_parameter_attributes(
        &self,
        names: &[String],
    ) -> Result<Vec<ParameterAttributeStruct>, Fault> {
        let mut ids = Vec::with_capacity(names.len());
        for n in names {
            match self.resolve(n) {
                Some(id) => ids.push((n.as_str(), id)),
                None => return Err(Fault::cpe(9005, format!("Invalid parameter name: {n}"))),
            }
        }
        let mut out = Vec::new();
        for (name, id) in ids {
            let mut prefix = name.to_string();
            self.walk_params(id, &mut prefix, &mut |path, p| {
                out.push(ParameterAttributeStruct {
                    name: path.to_string(),
                    notification: p.notification as i32,
                    access_list: if p.subscriber_access {
                        vec!["Subscriber".to_string()]
                    } else {
                        Vec::new()
                    },
                })
            });
        }
        Ok(out)
    }

    /// AddObject: `ObjectName` must be a writable table path ending in `.`
    /// (without an instance number), else 9005. Returns the new instance
    /// number; the instance gets its template's default children.
    pub fn add_object_rpc(&mut self, object_name: &str) -> Result<u32, Fault> {
        let bad = || Fault::cpe(9005, format!("Invalid object name: {object_name}"));
        if !object_name.ends_with('.') {
            return Err(bad());
        }
        let id = self.resolve(object_name).ok_or_else(bad)?;
        match &self.node(id).kind {
            Kind::Table { spec, .. } if spec.writable => {}
            _ => return Err(bad()),
        }
        self.create_instance_at(id).ok_or_else(bad)
    }

    /// DeleteObject: `ObjectName` must be an instance of a writable table
    /// (`…PortMapping.3.`), else 9005.
    pub fn delete_object_rpc(&mut self, object_name: &str) -> Result<(), Fault> {
        let bad = || Fault::cpe(9005, format!("Invalid object name: {object_name}"));
        if !object_name.ends_with('.') {
            return Err(bad());
        }
        let id = self.resolve(object_name).ok_or_else(bad)?;
        if !matches!(self.node(id).kind, Kind::Instance) || !self.writable_flag(id) {
            return Err(bad());
        }
        self.remove_node(id);
        Ok(())
    }
}
