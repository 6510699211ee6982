//! Parses one cwmp-datamodel XML document into raw definitions: imports, data types,
//! components and models as written, before imports, components and data types are resolved
//! (see `build.rs`).

use std::path::{Path, PathBuf};

use quick_xml::events::BytesStart;

use crate::error::DmError;
use crate::types::*;
use crate::xml::{check_utf8, clean_text, Attrs, Ev, Xml};

pub(crate) const NS_PREFIX: &str = "urn:broadband-forum-org:cwmp:datamodel-1-";

#[derive(Debug)]
pub(crate) struct Doc {
    pub file: PathBuf,
    /// The document's `spec` URN (kept for diagnostics).
    #[allow(dead_code)]
    pub spec: String,
    pub imports: Vec<Import>,
    pub data_types: Vec<RawDataType>,
    pub components: Vec<RawComponent>,
    pub models: Vec<RawModel>,
    pub templates: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ImportKind {
    DataType,
    Component,
    Model,
}

impl ImportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportKind::DataType => "data type",
            ImportKind::Component => "component",
            ImportKind::Model => "model",
        }
    }
}

#[derive(Debug)]
pub(crate) struct ImportItem {
    pub kind: ImportKind,
    /// Name in the importing document.
    pub name: String,
    /// Name in the imported document.
    pub reference: String,
    pub line: u32,
}

#[derive(Debug)]
pub(crate) struct Import {
    pub line: u32,
    pub file: String,
    pub spec: Option<String>,
    pub items: Vec<ImportItem>,
}

#[derive(Debug)]
pub(crate) struct RawDataType {
    pub line: u32,
    pub name: String,
    /// `base=`: derived from another named type.
    pub base: Option<String>,
    /// The built-in type element, when not derived from a named type.
    pub builtin: Option<BaseType>,
    pub facets: Facets,
    pub list: Option<ListFacet>,
}

#[derive(Debug)]
pub(crate) struct RawComponent {
    pub line: u32,
    pub name: String,
    /// `virtual="true"`: a reference to it expands the first non-virtual component of the same
    /// name found in the documents of the call stack, outermost first.
    pub is_virtual: bool,
    pub items: Vec<Item>,
}

#[derive(Debug)]
pub(crate) struct RawModel {
    pub line: u32,
    pub name: String,
    pub base: Option<String>,
    pub is_service: bool,
    pub status: Status,
    pub version: Option<String>,
    pub description: String,
    pub items: Vec<Item>,
}

// Items are built once and moved into the model; boxing the large variants would only add an
// allocation per definition.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub(crate) enum Item {
    Object(RawObject),
    Param(RawParam),
    Component(CompRef),
    Profile(Box<(u32, Profile)>),
}

#[derive(Debug, Clone)]
pub(crate) struct CompRef {
    pub line: u32,
    pub name: String,
    pub path: Option<String>,
    /// Clamps the versions of the expanded items to at least this.
    pub version: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DescAction {
    Create,
    Replace,
    Append,
    Prefix,
}

#[derive(Debug, Clone)]
pub(crate) struct Desc {
    pub text: String,
    pub action: DescAction,
}

#[derive(Debug, Clone)]
pub(crate) struct RawObject {
    pub line: u32,
    pub name: String,
    /// `base=` (modifies an existing object) rather than `name=`.
    pub is_ref: bool,
    pub access: Option<Access>,
    pub min_entries: Option<u32>,
    pub max_entries: Option<Option<u32>>,
    pub num_entries_parameter: Option<String>,
    pub enable_parameter: Option<String>,
    pub discriminator_parameter: Option<String>,
    pub status: Option<Status>,
    pub version: Option<String>,
    pub description: Option<Desc>,
    pub unique_keys: Vec<UniqueKey>,
    pub items: Vec<Item>,
}

#[derive(Debug, Clone)]
pub(crate) struct RawParam {
    pub line: u32,
    pub name: String,
    pub is_ref: bool,
    pub access: Option<Access>,
    pub status: Option<Status>,
    pub active_notify: Option<ActiveNotify>,
    pub forced_inform: Option<bool>,
    pub version: Option<String>,
    pub description: Option<Desc>,
    pub syntax: Option<RawSyntax>,
}

#[derive(Debug, Clone)]
pub(crate) struct RawSyntax {
    pub line: u32,
    pub hidden: Option<bool>,
    pub secured: Option<bool>,
    pub command: Option<bool>,
    pub list: Option<ListFacet>,
    pub builtin: Option<BaseType>,
    /// `<dataType ref=…>` or `<dataType base=…>`.
    pub type_ref: Option<String>,
    pub facets: Facets,
    pub default: Option<DefaultValue>,
}

/// Parses a whole document.
pub(crate) fn parse_document(src: &[u8], file: &Path) -> Result<Doc, DmError> {
    check_utf8(src, file)?;
    xmlguard::check(src, &xmlguard::Bounds::default()).map_err(|e| DmError::Xml {
        file: file.to_path_buf(),
        line: src
            .get(..e.offset)
            .map_or(1, |b| b.iter().filter(|&&c| c == b'\n').count())
            .saturating_add(1)
            .try_into()
            .unwrap_or(u32::MAX),
        message: e.to_string(),
    })?;
    let mut p = Parser {
        x: Xml::new(src, file),
    };
    p.document()
}

struct Parser<'a> {
    x: Xml<'a>,
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

impl<'a> Parser<'a> {
    fn document(&mut self) -> Result<Doc, DmError> {
        // The root element.
        let (root, empty) = loop {
            match self.x.next()? {
                Ev::Start(e) => break (e, false),
                Ev::Empty(e) => break (e, true),
                Ev::Text(t) if t.trim().is_empty() => {}
                Ev::Text(_) => return Err(self.x.err("text before the root element")),
                Ev::End => return Err(self.x.err("unexpected end tag")),
                Ev::Eof => return Err(self.x.err("no root element")),
            }
        };
        let qname = String::from_utf8_lossy(root.name().as_ref()).into_owned();
        let (prefix, local) = match qname.split_once(':') {
            Some((p, l)) => (Some(p.to_string()), l.to_string()),
            None => (None, qname.clone()),
        };
        let at = self.x.attrs(&root)?;
        let ns_key = match &prefix {
            Some(p) => format!("xmlns:{p}"),
            None => "xmlns".to_string(),
        };
        let namespace = at.string(ns_key.as_bytes()).unwrap_or_default();
        let ns_ok = namespace
            .strip_prefix(NS_PREFIX)
            .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
        if local != "document" || !ns_ok {
            return Err(DmError::Namespace {
                file: self.x.file.to_path_buf(),
                line: self.x.line(),
                element: qname,
                namespace,
            });
        }
        let spec = at.string(b"spec").unwrap_or_default();
        drop(at);
        let mut doc = Doc {
            file: self.x.file.to_path_buf(),
            spec,
            imports: Vec::new(),
            data_types: Vec::new(),
            components: Vec::new(),
            models: Vec::new(),
            templates: Vec::new(),
        };
        self.children(empty, "document", |p, e, empty| {
            match e.local_name().as_ref() {
                b"import" => {
                    let i = p.import(&e, empty)?;
                    doc.imports.push(i);
                }
                b"dataType" => {
                    let d = p.data_type(&e, empty)?;
                    doc.data_types.push(d);
                }
                b"template" => {
                    let at = p.x.attrs(&e)?;
                    let id = at.string(b"id").unwrap_or_default();
                    drop(at);
                    let text = p.x.text(empty)?;
                    doc.templates.push((id, clean_text(&text)));
                }
                b"component" => {
                    let c = p.component(&e, empty)?;
                    doc.components.push(c);
                }
                b"model" => {
                    let m = p.model(&e, empty)?;
                    doc.models.push(m);
                }
                _ => p.x.skip(&e, empty)?,
            }
            Ok(())
        })?;
        // Nothing but comments and white space may follow the root element.
        loop {
            match self.x.next()? {
                Ev::Eof => break,
                Ev::Text(t) if t.trim().is_empty() => {}
                _ => return Err(self.x.err("content after the root element")),
            }
        }
        Ok(doc)
    }

    /// Calls `f` for each child element of the element just started, up to its end.
    fn children<F>(&mut self, empty: bool, what: &str, mut f: F) -> Result<(), DmError>
    where
        F: FnMut(&mut Self, BytesStart<'a>, bool) -> Result<(), DmError>,
    {
        if empty {
            return Ok(());
        }
        loop {
            match self.x.next()? {
                Ev::Start(e) => f(self, e, false)?,
                Ev::Empty(e) => f(self, e, true)?,
                Ev::End => return Ok(()),
                Ev::Text(_) => {}
                Ev::Eof => {
                    return Err(self
                        .x
                        .err(format!("unexpected end of file inside <{what}>")))
                }
            }
        }
    }

    fn required(&mut self, at: &Attrs, key: &str, elem: &str) -> Result<String, DmError> {
        match at.get(key.as_bytes()) {
            Some(v) => Ok(v.to_string()),
            None => Err(self
                .x
                .invalid(format!("<{elem}> without the required {key} attribute"))),
        }
    }

    fn enum_attr<T>(
        &mut self,
        at: &Attrs,
        key: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, DmError> {
        match at.get(key.as_bytes()) {
            None => Ok(None),
            Some(v) => match parse(v.trim()) {
                Some(t) => Ok(Some(t)),
                None => Err(self.x.invalid(format!("invalid {key}=\"{v}\""))),
            },
        }
    }

    fn bool_attr(&mut self, at: &Attrs, key: &str) -> Result<Option<bool>, DmError> {
        self.enum_attr(at, key, parse_bool)
    }

    fn u64_attr(&mut self, at: &Attrs, key: &str) -> Result<Option<u64>, DmError> {
        self.enum_attr(at, key, |s| s.parse::<u64>().ok())
    }

    /// maxEntries/maxItems: a number or "unbounded" (→ `Some(None)`).
    fn max_attr(&mut self, at: &Attrs, key: &str) -> Result<Option<Option<u64>>, DmError> {
        self.enum_attr(at, key, |s| {
            if s == "unbounded" {
                Some(None)
            } else {
                s.parse::<u64>().ok().map(Some)
            }
        })
    }

    fn import(&mut self, e: &BytesStart<'a>, empty: bool) -> Result<Import, DmError> {
        let line = self.x.line();
        let at = self.x.attrs(e)?;
        let file = self.required(&at, "file", "import")?;
        let spec = at.string(b"spec");
        drop(at);
        let mut items = Vec::new();
        self.children(empty, "import", |p, e, empty| {
            let kind = match e.local_name().as_ref() {
                b"dataType" => ImportKind::DataType,
                b"component" => ImportKind::Component,
                b"model" => ImportKind::Model,
                _ => return p.x.skip(&e, empty),
            };
            let line = p.x.line();
            let at = p.x.attrs(&e)?;
            let name = p.required(&at, "name", "import item")?;
            let reference = at.string(b"ref").unwrap_or_else(|| name.clone());
            drop(at);
            p.x.skip(&e, empty)?;
            items.push(ImportItem {
                kind,
                name,
                reference,
                line,
            });
            Ok(())
        })?;
        Ok(Import {
            line,
            file,
            spec,
            items,
        })
    }

    fn data_type(&mut self, e: &BytesStart<'a>, empty: bool) -> Result<RawDataType, DmError> {
        let line = self.x.line();
        let at = self.x.attrs(e)?;
        let name = self.required(&at, "name", "dataType")?;
        let base = at.string(b"base");
        drop(at);
        let mut dt = RawDataType {
            line,
            name,
            base,
            builtin: None,
            facets: Facets::default(),
            list: None,
        };
        self.children(empty, "dataType", |p, e, empty| {
            let local = e.local_name();
            let local = local.as_ref();
            if local == b"list" {
                dt.list = Some(p.list(&e, empty)?);
            } else if let Some(bt) = BaseType::parse(local) {
                dt.builtin = Some(bt);
                p.facets_in(&mut dt.facets, empty)?;
            } else if !p.facet(&mut dt.facets, &e, empty)? {
                p.x.skip(&e, empty)?;
            }
            Ok(())
        })?;
        Ok(dt)
    }

    fn list(&mut self, e: &BytesStart<'a>, empty: bool) -> Result<ListFacet, DmError> {
        let at = self.x.attrs(e)?;
        let min_items = self.u64_attr(&at, "minItems")?.unwrap_or(0);
        let max_items = self.max_attr(&at, "maxItems")?.unwrap_or(None);
        let nested_brackets = at.string(b"nestedBrackets");
        drop(at);
        let mut sizes = Vec::new();
        self.children(empty, "list", |p, e, empty| {
            if e.local_name().as_ref() == b"size" {
                let s = p.size(&e)?;
                sizes.push(s);
            }
            p.x.skip(&e, empty)
        })?;
        Ok(ListFacet {
            min_items,
            max_items,
            sizes,
            nested_brackets,
        })
    }

    fn size(&mut self, e: &BytesStart<'a>) -> Result<SizeFacet, DmError> {
        let at = self.x.attrs(e)?;
        let min_length = self.u64_attr(&at, "minLength")?;
        let max_length = self.u64_attr(&at, "maxLength")?;
        Ok(SizeFacet {
            min_length,
            max_length,
        })
    }

    /// Facet children of a built-in type element.
    fn facets_in(&mut self, facets: &mut Facets, empty: bool) -> Result<(), DmError> {
        self.children(empty, "syntax type", |p, e, empty| {
            if !p.facet(facets, &e, empty)? {
                p.x.skip(&e, empty)?;
            }
            Ok(())
        })
    }

    /// Parses one facet element into `facets`; false if `e` is not a facet.
    fn facet(
        &mut self,
        facets: &mut Facets,
        e: &BytesStart<'a>,
        empty: bool,
    ) -> Result<bool, DmError> {
        let local = e.local_name();
        match local.as_ref() {
            b"size" => {
                let s = self.size(e)?;
                facets.sizes.push(s);
            }
            b"range" | b"decimalRange" => {
                let at = self.x.attrs(e)?;
                let num = |s: &str| Number::parse(s);
                let min = self.enum_attr(&at, "minInclusive", num)?;
                let max = self.enum_attr(&at, "maxInclusive", num)?;
                let step = self.enum_attr(&at, "step", num)?;
                facets.ranges.push(RangeFacet { min, max, step });
            }
            b"enumeration" => {
                let at = self.x.attrs(e)?;
                let value = self.required(&at, "value", "enumeration")?;
                let access = self
                    .enum_attr(&at, "access", Access::parse)?
                    .unwrap_or(Access::ReadWrite);
                let optional = self.bool_attr(&at, "optional")?.unwrap_or(false);
                let status = self
                    .enum_attr(&at, "status", Status::parse)?
                    .unwrap_or_default();
                let code = self.enum_attr(&at, "code", |s| s.parse::<i64>().ok())?;
                facets.enumerations.push(Enumeration {
                    value,
                    access,
                    optional,
                    status,
                    code,
                });
            }
            b"pattern" => {
                let at = self.x.attrs(e)?;
                let value = self.required(&at, "value", "pattern")?;
                let access = self
                    .enum_attr(&at, "access", Access::parse)?
                    .unwrap_or(Access::ReadWrite);
                let status = self
                    .enum_attr(&at, "status", Status::parse)?
                    .unwrap_or_default();
                facets.patterns.push(Pattern::new(value, access, status));
            }
            b"units" => {
                let at = self.x.attrs(e)?;
                facets.units = at.string(b"value");
            }
            b"enumerationRef" => {
                let at = self.x.attrs(e)?;
                let target_param = self.required(&at, "targetParam", "enumerationRef")?;
                let target_param_scope = self
                    .enum_attr(&at, "targetParamScope", PathScope::parse)?
                    .unwrap_or_default();
                let null_value = at.string(b"nullValue");
                facets.enumeration_ref = Some(EnumerationRef {
                    target_param,
                    target_param_scope,
                    null_value,
                });
            }
            b"pathRef" => {
                let at = self.x.attrs(e)?;
                let ref_type = self
                    .enum_attr(&at, "refType", parse_ref_type)?
                    .unwrap_or_default();
                let target_parents = at
                    .get(b"targetParent")
                    .map(|s| s.split_whitespace().map(str::to_owned).collect())
                    .unwrap_or_default();
                let target_parent_scope = self
                    .enum_attr(&at, "targetParentScope", PathScope::parse)?
                    .unwrap_or_default();
                let target_type = self
                    .enum_attr(&at, "targetType", TargetType::parse)?
                    .unwrap_or_default();
                let target_data_type = at.string(b"targetDataType");
                facets.reference = Some(Reference::Path {
                    ref_type,
                    target_parents,
                    target_parent_scope,
                    target_type,
                    target_data_type,
                });
            }
            b"instanceRef" => {
                let at = self.x.attrs(e)?;
                let ref_type = self
                    .enum_attr(&at, "refType", parse_ref_type)?
                    .unwrap_or_default();
                let target_parent = at.string(b"targetParent").unwrap_or_default();
                let target_parent_scope = self
                    .enum_attr(&at, "targetParentScope", PathScope::parse)?
                    .unwrap_or_default();
                facets.reference = Some(Reference::Instance {
                    ref_type,
                    target_parent,
                    target_parent_scope,
                });
            }
            _ => return Ok(false),
        }
        // Facets may carry a <description>; nothing else of interest inside.
        self.x.skip(e, empty)?;
        Ok(true)
    }

    fn description(&mut self, e: &BytesStart<'a>, empty: bool) -> Result<Desc, DmError> {
        let at = self.x.attrs(e)?;
        let action = self
            .enum_attr(&at, "action", |s| {
                Some(match s {
                    "create" => DescAction::Create,
                    "replace" => DescAction::Replace,
                    "append" => DescAction::Append,
                    "prefix" => DescAction::Prefix,
                    _ => return None,
                })
            })?
            .unwrap_or(DescAction::Create);
        drop(at);
        let raw = self.x.text(empty)?;
        Ok(Desc {
            text: clean_text(&raw),
            action,
        })
    }

    fn component(&mut self, e: &BytesStart<'a>, empty: bool) -> Result<RawComponent, DmError> {
        let line = self.x.line();
        let at = self.x.attrs(e)?;
        let name = self.required(&at, "name", "component")?;
        let is_virtual = self.bool_attr(&at, "virtual")?.unwrap_or(false);
        drop(at);
        let items = self.items(empty, "component")?;
        Ok(RawComponent {
            line,
            name,
            is_virtual,
            items,
        })
    }

    fn model(&mut self, e: &BytesStart<'a>, empty: bool) -> Result<RawModel, DmError> {
        let line = self.x.line();
        let at = self.x.attrs(e)?;
        let name = self.required(&at, "name", "model")?;
        let base = at.string(b"base");
        let is_service = self.bool_attr(&at, "isService")?.unwrap_or(false);
        let status = self
            .enum_attr(&at, "status", Status::parse)?
            .unwrap_or_default();
        let version = at.string(b"version");
        drop(at);
        let mut description = String::new();
        let mut items = Vec::new();
        self.children(empty, "model", |p, e, empty| {
            if e.local_name().as_ref() == b"description" {
                description = p.description(&e, empty)?.text;
                Ok(())
            } else {
                p.item(&mut items, e, empty)
            }
        })?;
        Ok(RawModel {
            line,
            name,
            base,
            is_service,
            status,
            version,
            description,
            items,
        })
    }

    /// Model or component content: objects, parameters, component references, profiles.
    fn items(&mut self, empty: bool, what: &str) -> Result<Vec<Item>, DmError> {
        let mut items = Vec::new();
        self.children(empty, what, |p, e, empty| p.item(&mut items, e, empty))?;
        Ok(items)
    }

    fn item(
        &mut self,
        items: &mut Vec<Item>,
        e: BytesStart<'a>,
        empty: bool,
    ) -> Result<(), DmError> {
        match e.local_name().as_ref() {
            b"object" => {
                let o = self.object(&e, empty)?;
                items.push(Item::Object(o));
            }
            b"parameter" => {
                let p = self.parameter(&e, empty)?;
                items.push(Item::Param(p));
            }
            b"component" => {
                let c = self.comp_ref(&e)?;
                self.x.skip(&e, empty)?;
                items.push(Item::Component(c));
            }
            b"profile" => {
                let line = self.x.line();
                let pr = self.profile(&e, empty)?;
                items.push(Item::Profile(Box::new((line, pr))));
            }
            // description (of a component), command, event (USP), anything unknown
            _ => self.x.skip(&e, empty)?,
        }
        Ok(())
    }

    fn comp_ref(&mut self, e: &BytesStart<'a>) -> Result<CompRef, DmError> {
        let line = self.x.line();
        let at = self.x.attrs(e)?;
        let name = self.required(&at, "ref", "component")?;
        let path = at.string(b"path").filter(|p| !p.is_empty());
        let version = at.string(b"version");
        Ok(CompRef {
            line,
            name,
            path,
            version,
        })
    }

    fn name_or_base(&mut self, at: &Attrs, elem: &str) -> Result<(String, bool), DmError> {
        if let Some(n) = at.get(b"name") {
            Ok((n.to_string(), false))
        } else if let Some(b) = at.get(b"base") {
            Ok((b.to_string(), true))
        } else {
            Err(self
                .x
                .invalid(format!("<{elem}> has neither a name nor a base attribute")))
        }
    }

    fn object(&mut self, e: &BytesStart<'a>, empty: bool) -> Result<RawObject, DmError> {
        let line = self.x.line();
        let at = self.x.attrs(e)?;
        let (name, is_ref) = self.name_or_base(&at, "object")?;
        let to_u32 = |v: Option<u64>| v.map(|n| n.min(u32::MAX as u64) as u32);
        let mut o = RawObject {
            line,
            name,
            is_ref,
            access: self.enum_attr(&at, "access", Access::parse)?,
            min_entries: to_u32(self.u64_attr(&at, "minEntries")?),
            max_entries: self.max_attr(&at, "maxEntries")?.map(to_u32),
            num_entries_parameter: at.string(b"numEntriesParameter"),
            enable_parameter: at.string(b"enableParameter"),
            discriminator_parameter: at.string(b"discriminatorParameter"),
            status: self.enum_attr(&at, "status", Status::parse)?,
            version: at.string(b"version"),
            description: None,
            unique_keys: Vec::new(),
            items: Vec::new(),
        };
        drop(at);
        self.children(empty, "object", |p, e, empty| {
            match e.local_name().as_ref() {
                b"description" => o.description = Some(p.description(&e, empty)?),
                b"uniqueKey" => {
                    let at = p.x.attrs(&e)?;
                    let functional = p.bool_attr(&at, "functional")?.unwrap_or(true);
                    drop(at);
                    let mut parameters = Vec::new();
                    p.children(empty, "uniqueKey", |p, e, empty| {
                        if e.local_name().as_ref() == b"parameter" {
                            let at = p.x.attrs(&e)?;
                            if let Some(r) = at.string(b"ref") {
                                parameters.push(r);
                            }
                        }
                        p.x.skip(&e, empty)
                    })?;
                    o.unique_keys.push(UniqueKey {
                        functional,
                        parameters,
                    });
                }
                _ => p.item(&mut o.items, e, empty)?,
            }
            Ok(())
        })?;
        Ok(o)
    }

    fn parameter(&mut self, e: &BytesStart<'a>, empty: bool) -> Result<RawParam, DmError> {
        let line = self.x.line();
        let at = self.x.attrs(e)?;
        let (name, is_ref) = self.name_or_base(&at, "parameter")?;
        let mut p = RawParam {
            line,
            name,
            is_ref,
            access: self.enum_attr(&at, "access", Access::parse)?,
            status: self.enum_attr(&at, "status", Status::parse)?,
            active_notify: self.enum_attr(&at, "activeNotify", ActiveNotify::parse)?,
            forced_inform: self.bool_attr(&at, "forcedInform")?,
            version: at.string(b"version"),
            description: None,
            syntax: None,
        };
        drop(at);
        self.children(empty, "parameter", |pp, e, empty| {
            match e.local_name().as_ref() {
                b"description" => p.description = Some(pp.description(&e, empty)?),
                b"syntax" => p.syntax = Some(pp.syntax(&e, empty)?),
                _ => pp.x.skip(&e, empty)?,
            }
            Ok(())
        })?;
        Ok(p)
    }

    fn syntax(&mut self, e: &BytesStart<'a>, empty: bool) -> Result<RawSyntax, DmError> {
        let line = self.x.line();
        let at = self.x.attrs(e)?;
        let mut s = RawSyntax {
            line,
            hidden: self.bool_attr(&at, "hidden")?,
            secured: self.bool_attr(&at, "secured")?,
            command: self.bool_attr(&at, "command")?,
            list: None,
            builtin: None,
            type_ref: None,
            facets: Facets::default(),
            default: None,
        };
        drop(at);
        self.children(empty, "syntax", |p, e, empty| {
            let local = e.local_name();
            let local = local.as_ref();
            if local == b"list" {
                s.list = Some(p.list(&e, empty)?);
            } else if local == b"dataType" {
                let at = p.x.attrs(&e)?;
                let r = at.string(b"ref").or_else(|| at.string(b"base"));
                drop(at);
                match r {
                    Some(r) => s.type_ref = Some(r),
                    None => {
                        return Err(p
                            .x
                            .invalid("<dataType> in a syntax without a ref or base attribute"))
                    }
                }
                p.facets_in(&mut s.facets, empty)?;
            } else if local == b"default" {
                let at = p.x.attrs(&e)?;
                let kind = p.enum_attr(&at, "type", |t| {
                    Some(match t {
                        "object" => DefaultKind::Object,
                        "factory" => DefaultKind::Factory,
                        "implementation" => DefaultKind::Implementation,
                        _ => return None,
                    })
                })?;
                let value = p.required(&at, "value", "default")?;
                drop(at);
                s.default = Some(DefaultValue {
                    kind: kind.unwrap_or(DefaultKind::Object),
                    value,
                });
                p.x.skip(&e, empty)?;
            } else if let Some(bt) = BaseType::parse(local) {
                s.builtin = Some(bt);
                p.facets_in(&mut s.facets, empty)?;
            } else {
                p.x.skip(&e, empty)?;
            }
            Ok(())
        })?;
        Ok(s)
    }

    fn profile(&mut self, e: &BytesStart<'a>, empty: bool) -> Result<Profile, DmError> {
        let at = self.x.attrs(e)?;
        let name = at
            .string(b"name")
            .or_else(|| at.string(b"base"))
            .unwrap_or_default();
        let mut pr = Profile {
            name,
            base: at.string(b"base").filter(|_| at.get(b"name").is_some()),
            extends: at
                .get(b"extends")
                .map(|s| s.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default(),
            status: self
                .enum_attr(&at, "status", Status::parse)?
                .unwrap_or_default(),
            version: at.string(b"version"),
            description: String::new(),
            objects: Vec::new(),
            parameters: Vec::new(),
        };
        drop(at);
        self.children(empty, "profile", |p, e, empty| {
            match e.local_name().as_ref() {
                b"description" => pr.description = p.description(&e, empty)?.text,
                b"parameter" => {
                    let pp = p.profile_param(&e)?;
                    pr.parameters.push(pp);
                    p.x.skip(&e, empty)?;
                }
                b"object" => {
                    let at = p.x.attrs(&e)?;
                    let path = p.required(&at, "ref", "profile object")?;
                    let requirement = p
                        .enum_attr(&at, "requirement", ObjectRequirement::parse)?
                        .unwrap_or(ObjectRequirement::NotSpecified);
                    let status = p
                        .enum_attr(&at, "status", Status::parse)?
                        .unwrap_or_default();
                    drop(at);
                    let mut parameters = Vec::new();
                    p.children(empty, "profile object", |p, e, empty| {
                        if e.local_name().as_ref() == b"parameter" {
                            let pp = p.profile_param(&e)?;
                            if !parameters
                                .iter()
                                .any(|q: &ProfileParameter| q.name == pp.name)
                            {
                                parameters.push(pp);
                            }
                        }
                        p.x.skip(&e, empty)
                    })?;
                    pr.objects.push(ProfileObject {
                        path,
                        requirement,
                        status,
                        parameters,
                    });
                }
                _ => p.x.skip(&e, empty)?,
            }
            Ok(())
        })?;
        Ok(pr)
    }

    fn profile_param(&mut self, e: &BytesStart<'a>) -> Result<ProfileParameter, DmError> {
        let at = self.x.attrs(e)?;
        let name = self.required(&at, "ref", "profile parameter")?;
        let requirement = self
            .enum_attr(&at, "requirement", Access::parse)?
            .unwrap_or(Access::ReadOnly);
        let status = self
            .enum_attr(&at, "status", Status::parse)?
            .unwrap_or_default();
        Ok(ProfileParameter {
            name,
            requirement,
            status,
        })
    }
}

fn parse_ref_type(s: &str) -> Option<RefType> {
    match s {
        "weak" => Some(RefType::Weak),
        "strong" => Some(RefType::Strong),
        _ => None,
    }
}
