//! Body → [`Envelope`] decoding.
//!
//! The XML is first read into a small element tree (local name, resolved
//! namespace, the two attributes CWMP cares about, text) under hard limits,
//! then mapped onto the typed model by *local name in any order*. Reading into
//! a tree keeps the mapping code order-independent, which real CPEs need
//! (checklist §0.2, §9).

// Outside input: no panicking arithmetic, indexing or unwrapping here (clippy enforces it).
#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{QName, ResolveResult};
use quick_xml::NsReader;

use super::error::CodecError;
use super::types::*;

/// Resource limits applied before and during parsing, so a hostile or broken
/// CPE cannot exhaust memory (checklist §1.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted body; whole-tree GPV responses can be several MiB.
    pub max_body_bytes: usize,
    /// Deepest element nesting accepted (CWMP needs fewer than 10).
    pub max_depth: usize,
    /// Most elements accepted in one document.
    pub max_elements: usize,
    /// Attributes per element and namespace declarations per document, checked as each
    /// start tag is read, before its attributes are examined or resolved (their cost grows
    /// with the square of both).
    pub xml: xmlguard::Bounds,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 8 * 1024 * 1024,
            max_depth: 64,
            max_elements: 1_000_000,
            xml: xmlguard::Bounds::default(),
        }
    }
}

/// True when a POST body carries no SOAP message at all (empty or only
/// whitespace/CRLF), i.e. the CPE's "empty POST" (checklist §8.16).
pub fn is_empty_body(body: &[u8]) -> bool {
    body.iter().all(|b| b.is_ascii_whitespace())
}

/// Parses one CWMP SOAP 1.1 message.
///
/// Hard errors: size/complexity limits, any DOCTYPE, XML that is not
/// well-formed, a non-SOAP-1.1 envelope or missing Body, and an RPC element
/// outside the cwmp namespaces. A known method with unusable arguments gives
/// [`CodecError::InvalidArguments`] (answer 8003); an unknown method in a
/// cwmp namespace gives `Ok` with [`Rpc::Unknown`] (answer 8000/9000).
/// Everything else is accepted leniently.
pub fn parse(body: &[u8], limits: &Limits) -> Result<Envelope, CodecError> {
    if body.len() > limits.max_body_bytes {
        return Err(CodecError::TooLarge {
            size: body.len(),
            limit: limits.max_body_bytes,
        });
    }
    let text = decode_text(body);
    let doc = build_tree(&text, limits)?;
    interpret(doc)
}

// ---------------------------------------------------------------------------
// Character decoding
// ---------------------------------------------------------------------------

/// UTF-8 by default; ISO-8859-1 when the declaration says so; invalid UTF-8
/// falls back to Latin-1 (checklist §9 P32); UTF-16 only with a BOM.
fn decode_text(body: &[u8]) -> Cow<'_, str> {
    if let Some(rest) = body.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return utf8_or_latin1(rest);
    }
    if let Some(text) = xmlguard::decode_utf16_bom(body) {
        return Cow::Owned(text);
    }
    if let Some(enc) = declared_encoding(body) {
        let enc = enc.to_ascii_lowercase();
        let latin1 = matches!(
            enc.as_str(),
            "iso-8859-1"
                | "iso8859-1"
                | "iso_8859-1"
                | "latin1"
                | "latin-1"
                | "l1"
                | "windows-1252"
                | "cp1252"
        );
        if latin1 {
            return Cow::Owned(latin1_to_string(body));
        }
    }
    utf8_or_latin1(body)
}

fn utf8_or_latin1(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(latin1_to_string(b)),
    }
}

fn latin1_to_string(b: &[u8]) -> String {
    b.iter().map(|&c| c as char).collect()
}

/// Value of `encoding="…"` in a leading XML declaration, if any.
fn declared_encoding(body: &[u8]) -> Option<&str> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = body.get(start..)?;
    let head = rest.get(..rest.len().min(512))?;
    if !head.starts_with(b"<?xml") {
        return None;
    }
    let end = head.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(head.get(..end)?).ok()?;
    let (_, after) = decl.split_once("encoding")?;
    let rest = after.trim_start();
    let rest = rest.strip_prefix('=')?.trim_start();
    let quote = rest.chars().next()?;
    if quote != '"' && quote != '\'' {
        return None;
    }
    let (value, _) = rest.get(1..)?.split_once(quote)?;
    Some(value)
}

// ---------------------------------------------------------------------------
// Element tree
// ---------------------------------------------------------------------------

/// One element: just what the CWMP mapping needs.
#[derive(Debug, Default)]
struct Node {
    local: String,
    /// Resolved namespace URI, `None` when unbound or the prefix is undeclared.
    ns: Option<u32>,
    xsi_type: Option<String>,
    must_understand: Option<String>,
    text: String,
    children: Vec<Node>,
}

struct Doc {
    root: Node,
    namespaces: Vec<String>,
    /// cwmp namespace URIs declared on the root, for faults without a
    /// namespaced element to take it from.
    declared_cwmp: Option<String>,
}

impl Doc {
    fn ns(&self, n: &Node) -> Option<&str> {
        n.ns.and_then(|i| self.namespaces.get(i as usize))
            .map(String::as_str)
    }
}

fn malformed(reader: &NsReader<&[u8]>, message: impl Into<String>) -> CodecError {
    CodecError::Malformed {
        position: reader.buffer_position(),
        message: message.into(),
    }
}

fn build_tree(text: &str, limits: &Limits) -> Result<Doc, CodecError> {
    let mut reader = NsReader::from_str(text);
    {
        let cfg = reader.config_mut();
        cfg.check_end_names = true;
        cfg.allow_unmatched_ends = false;
        cfg.expand_empty_elements = false;
        cfg.check_comments = true;
    }
    let mut namespaces: Vec<String> = Vec::new();
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let mut declared_cwmp: Option<String> = None;
    let mut elements = 0usize;
    let mut declarations = 0usize;

    loop {
        let (res, ev) = match reader.read_resolved_event() {
            Ok(x) => x,
            Err(e) => {
                // quick-xml only knows DOCTYPE; a stray entity declaration is
                // a syntax error to it but must be reported as a DTD attempt.
                if text.contains("<!ENTITY") {
                    return Err(CodecError::Dtd);
                }
                return Err(CodecError::Malformed {
                    position: reader.error_position(),
                    message: e.to_string(),
                });
            }
        };
        match ev {
            Event::DocType(_) => return Err(CodecError::Dtd),
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_empty = matches!(ev, Event::Empty(_));
                if root.is_some() {
                    return Err(malformed(&reader, "content after the root element"));
                }
                elements = elements.saturating_add(1);
                if elements > limits.max_elements {
                    return Err(CodecError::LimitExceeded {
                        what: "element count",
                        limit: limits.max_elements,
                    });
                }
                if stack.len() >= limits.max_depth {
                    return Err(CodecError::LimitExceeded {
                        what: "nesting depth",
                        limit: limits.max_depth,
                    });
                }
                let ns = match res {
                    ResolveResult::Bound(ns) => Some(intern(&mut namespaces, ns.as_ref())),
                    _ => None,
                };
                let mut node = Node {
                    local: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    ns,
                    ..Node::default()
                };
                bound_attributes(e, &limits.xml, &mut declarations)?;
                read_attributes(&reader, e, &mut node, stack.is_empty(), &mut declared_cwmp)?;
                if is_empty {
                    attach(&mut stack, &mut root, node);
                } else {
                    stack.push(node);
                }
            }
            Event::End(_) => {
                let node = stack
                    .pop()
                    .ok_or_else(|| malformed(&reader, "unexpected end tag"))?;
                attach(&mut stack, &mut root, node);
            }
            Event::Text(t) => {
                let s = t
                    .unescape()
                    .map_err(|e| malformed(&reader, e.to_string()))?;
                match stack.last_mut() {
                    Some(top) => top.text.push_str(&s),
                    None => {
                        if !s.trim().is_empty() {
                            return Err(malformed(&reader, "text outside the root element"));
                        }
                    }
                }
            }
            Event::CData(c) => {
                let s = c.decode().map_err(|e| malformed(&reader, e.to_string()))?;
                match stack.last_mut() {
                    Some(top) => top.text.push_str(&s),
                    None => return Err(malformed(&reader, "CDATA outside the root element")),
                }
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(malformed(&reader, "unexpected end of document"));
    }
    let root = root.ok_or_else(|| malformed(&reader, "no root element"))?;
    Ok(Doc {
        root,
        namespaces,
        declared_cwmp,
    })
}

fn intern(table: &mut Vec<String>, ns: &[u8]) -> u32 {
    if let Some(i) = table.iter().position(|s| s.as_bytes() == ns) {
        return i as u32;
    }
    table.push(String::from_utf8_lossy(ns).into_owned());
    u32::try_from(table.len().saturating_sub(1)).unwrap_or(u32::MAX)
}

fn attach(stack: &mut [Node], root: &mut Option<Node>, node: Node) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(node),
        None => *root = Some(node),
    }
}

/// Counts a start tag's attributes (up to one over the bound, unchecked and unresolved, so
/// this costs at most that many steps) and adds its namespace declarations to the
/// document's. Checked attribute reading compares each attribute with the earlier ones and
/// resolving compares a name with every binding in scope; with both bounded here, parsing
/// stays linear in the document. The reader itself only finds the end of the tag and
/// pushes its declarations, both linear.
fn bound_attributes(
    e: &BytesStart<'_>,
    bounds: &xmlguard::Bounds,
    declarations: &mut usize,
) -> Result<(), CodecError> {
    // Most tags have no attributes or a few without declarations: every attribute needs an
    // `=`, every declaration an `xmlns`, so a look at the raw bytes settles those.
    let raw = e.attributes_raw();
    let (mut equals, mut xmlns) = (0usize, false);
    for (i, &b) in raw.iter().enumerate() {
        match b {
            b'=' => equals = equals.saturating_add(1),
            b'x' if !xmlns => xmlns = raw.get(i..).is_some_and(|r| r.starts_with(b"xmlns")),
            _ => {}
        }
    }
    if equals <= bounds.max_attributes && !xmlns {
        return Ok(());
    }
    let mut attributes = 0usize;
    for attr in e.attributes().with_checks(false) {
        // A malformed attribute is reported by `read_attributes`.
        let Ok(attr) = attr else { break };
        attributes = attributes.saturating_add(1);
        if attributes > bounds.max_attributes {
            return Err(CodecError::LimitExceeded {
                what: "attributes on one element",
                limit: bounds.max_attributes,
            });
        }
        if attr.key.as_namespace_binding().is_some() {
            *declarations = declarations.saturating_add(1);
            if *declarations > bounds.max_namespace_declarations {
                return Err(CodecError::LimitExceeded {
                    what: "namespace declarations",
                    limit: bounds.max_namespace_declarations,
                });
            }
        }
    }
    Ok(())
}

fn read_attributes(
    reader: &NsReader<&[u8]>,
    e: &BytesStart<'_>,
    node: &mut Node,
    is_root: bool,
    declared_cwmp: &mut Option<String>,
) -> Result<(), CodecError> {
    for attr in e.attributes() {
        let attr = attr.map_err(|err| malformed(reader, err.to_string()))?;
        let key = attr.key;
        if is_root && declared_cwmp.is_none() && key.as_namespace_binding().is_some() {
            let v = attr
                .unescape_value()
                .map_err(|err| malformed(reader, err.to_string()))?;
            if is_cwmp_namespace(&v) {
                *declared_cwmp = Some(v.into_owned());
            }
            continue;
        }
        let (res, local) = reader.resolve_attribute(key);
        let local = local.as_ref();
        if local == b"type" {
            let is_xsi = match res {
                ResolveResult::Bound(ns) => ns.as_ref() == XSI_NS.as_bytes(),
                _ => key.as_ref() == b"xsi:type",
            };
            if is_xsi {
                let v = attr
                    .unescape_value()
                    .map_err(|err| malformed(reader, err.to_string()))?;
                node.xsi_type = Some(normalise_qname_value(reader, v.trim()));
            }
        } else if local.eq_ignore_ascii_case(b"mustUnderstand") {
            let v = attr
                .unescape_value()
                .map_err(|err| malformed(reader, err.to_string()))?;
            node.must_understand = Some(v.trim().to_string());
        }
    }
    Ok(())
}

/// Rewrites a QName-valued attribute whose prefix is bound to the XSD
/// namespace to the canonical `xsd:` prefix, so learned types can be sent
/// back under our own prefix declarations. Anything else is kept raw.
fn normalise_qname_value(reader: &NsReader<&[u8]>, v: &str) -> String {
    if !v.contains(':') {
        return v.to_string();
    }
    let (res, local) = reader.resolve(QName(v.as_bytes()), true);
    match res {
        ResolveResult::Bound(ns) if ns.as_ref() == XSD_NS.as_bytes() => {
            format!("xsd:{}", String::from_utf8_lossy(local.as_ref()))
        }
        _ => v.to_string(),
    }
}

// ---------------------------------------------------------------------------
// Tree → model
// ---------------------------------------------------------------------------

impl Node {
    /// First child with this local name (ASCII case-insensitive).
    fn child(&self, name: &str) -> Option<&Node> {
        self.children
            .iter()
            .find(|c| c.local.eq_ignore_ascii_case(name))
    }

    fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children
            .iter()
            .filter(move |c| c.local.eq_ignore_ascii_case(name))
    }
}

fn interpret(doc: Doc) -> Result<Envelope, CodecError> {
    let root = &doc.root;
    if root.local != "Envelope" {
        return Err(CodecError::NotSoap(format!(
            "root element is <{}>, not <Envelope>",
            root.local
        )));
    }
    match doc.ns(root) {
        Some(SOAP_ENV_NS) => {}
        Some(SOAP12_ENV_NS) => {
            return Err(CodecError::NotSoap(
                "SOAP 1.2 envelope; CWMP requires SOAP 1.1".into(),
            ))
        }
        Some(other) => {
            return Err(CodecError::NotSoap(format!(
                "Envelope in namespace {other:?}"
            )))
        }
        None => return Err(CodecError::NotSoap("Envelope has no namespace".into())),
    }
    let header_node = root.children.iter().find(|c| c.local == "Header");
    let body_node = root
        .children
        .iter()
        .find(|c| c.local == "Body")
        .ok_or_else(|| CodecError::NotSoap("missing Body".into()))?;
    let header = header_node.map(parse_header).unwrap_or_default();
    let first = body_node
        .children
        .first()
        .ok_or_else(|| CodecError::NotSoap("empty Body".into()))?;

    // Namespace to echo when the body itself doesn't carry one.
    let fallback_ns = || -> String {
        if let Some(h) = header_node {
            for c in &h.children {
                if let Some(ns) = doc.ns(c) {
                    if is_cwmp_namespace(ns) {
                        return ns.to_string();
                    }
                }
            }
        }
        doc.declared_cwmp
            .clone()
            .unwrap_or_else(|| CWMP_NS_1_0.to_string())
    };

    let first_ns = doc.ns(first);
    if first.local == "Fault" && !first_ns.map(is_cwmp_namespace).unwrap_or(false) {
        let (fault, ns) = parse_soap_fault(&doc, first);
        return Ok(Envelope {
            ns: ns.unwrap_or_else(fallback_ns),
            header,
            body: Body::Fault(fault),
        });
    }
    let ns = match first_ns {
        Some(ns) if is_cwmp_namespace(ns) => ns.to_string(),
        Some(ns) => {
            return Err(CodecError::BadNamespace(format!(
                "<{}> is in namespace {ns:?}",
                first.local
            )))
        }
        None => {
            return Err(CodecError::BadNamespace(format!(
                "<{}> has no namespace",
                first.local
            )))
        }
    };
    if first.local == "Fault" {
        // A bare cwmp:Fault directly in Body: accept it as a fault, filling
        // the SOAP fields as our own constructors would.
        let detail = parse_cwmp_fault(first);
        let mut fault = if (8000..9000).contains(&detail.fault_code) {
            Fault::acs(detail.fault_code, "")
        } else {
            Fault::cpe(detail.fault_code, "")
        };
        fault.detail = detail;
        return Ok(Envelope {
            ns,
            header,
            body: Body::Fault(fault),
        });
    }
    let rpc = parse_rpc(first)?;
    Ok(Envelope {
        ns,
        header,
        body: Body::Rpc(rpc),
    })
}

fn parse_header(h: &Node) -> Header {
    let mut out = Header::default();
    for c in &h.children {
        let name = c.local.to_ascii_lowercase();
        match name.as_str() {
            "id" => out.id = Some(c.text.clone()),
            "holdrequests" => out.hold_requests = parse_bool(&c.text),
            "sessiontimeout" => out.session_timeout = c.text.trim().parse().ok(),
            "supportedcwmpversions" => {
                out.supported_cwmp_versions = Some(c.text.trim().to_string())
            }
            "usecwmpversion" => out.use_cwmp_version = Some(c.text.trim().to_string()),
            "nomorerequests" => out.no_more_requests = parse_bool(&c.text),
            _ => {
                let mu = c.must_understand.as_deref().unwrap_or("0");
                if mu == "1" || mu.eq_ignore_ascii_case("true") {
                    out.unknown_must_understand.push(c.local.clone());
                }
            }
        }
    }
    out
}

fn parse_soap_fault(doc: &Doc, f: &Node) -> (Fault, Option<String>) {
    let faultcode = f
        .child("faultcode")
        .map(|n| {
            let t = n.text.trim();
            t.rsplit(':').next().unwrap_or(t).to_string()
        })
        .unwrap_or_default();
    let faultstring = f
        .child("faultstring")
        .map(|n| n.text.trim().to_string())
        .unwrap_or_default();
    let cwmp = f.child("detail").and_then(|d| d.child("Fault"));
    let ns = cwmp
        .and_then(|n| doc.ns(n))
        .filter(|ns| is_cwmp_namespace(ns))
        .map(str::to_string);
    let detail = match cwmp {
        Some(n) => parse_cwmp_fault(n),
        None => CwmpFault {
            fault_code: 0,
            fault_string: faultstring.clone(),
            set_parameter_values_fault: Vec::new(),
        },
    };
    (
        Fault {
            faultcode,
            faultstring,
            detail,
        },
        ns,
    )
}

fn parse_cwmp_fault(n: &Node) -> CwmpFault {
    CwmpFault {
        fault_code: n
            .child("FaultCode")
            .and_then(|c| c.text.trim().parse().ok())
            .unwrap_or(0),
        fault_string: n
            .child("FaultString")
            .map(|c| c.text.clone())
            .unwrap_or_default(),
        set_parameter_values_fault: n
            .children_named("SetParameterValuesFault")
            .map(|s| SetParameterValuesFault {
                parameter_name: s
                    .child("ParameterName")
                    .map(|c| c.text.trim().to_string())
                    .unwrap_or_default(),
                fault_code: s
                    .child("FaultCode")
                    .and_then(|c| c.text.trim().parse().ok())
                    .unwrap_or(0),
                fault_string: s
                    .child("FaultString")
                    .map(|c| c.text.clone())
                    .unwrap_or_default(),
            })
            .collect(),
    }
}

/// Accepts `true`/`false`/`1`/`0` in any case (checklist §9 P6).
fn parse_bool(s: &str) -> Option<bool> {
    let t = s.trim();
    if t == "1" || t.eq_ignore_ascii_case("true") {
        Some(true)
    } else if t == "0" || t.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Argument accessor bound to one element, carrying the method name for
/// error reports.
#[derive(Clone, Copy)]
struct Args<'a> {
    node: &'a Node,
    method: &'a str,
}

type R<T> = Result<T, CodecError>;

impl<'a> Args<'a> {
    fn new(node: &'a Node, method: &'a str) -> Self {
        Args { node, method }
    }

    fn err(&self, reason: String) -> CodecError {
        CodecError::InvalidArguments {
            method: self.method.to_string(),
            reason,
        }
    }

    fn sub(&self, node: &'a Node) -> Args<'a> {
        Args {
            node,
            method: self.method,
        }
    }

    fn node(&self, name: &str) -> Option<&'a Node> {
        self.node.child(name)
    }

    fn node_req(&self, name: &str) -> R<&'a Node> {
        self.node(name)
            .ok_or_else(|| self.err(format!("missing <{name}> in <{}>", self.node.local)))
    }

    /// String argument, raw (not trimmed); `""` when absent.
    fn string(&self, name: &str) -> String {
        self.node(name).map(|n| n.text.clone()).unwrap_or_default()
    }

    fn opt_string(&self, name: &str) -> Option<String> {
        self.node(name).map(|n| n.text.clone())
    }

    /// Trimmed, non-empty string that must be present.
    fn string_req(&self, name: &str) -> R<String> {
        let n = self.node_req(name)?;
        let t = n.text.trim();
        if t.is_empty() {
            return Err(self.err(format!("empty <{name}>")));
        }
        Ok(t.to_string())
    }

    fn num<T: std::str::FromStr>(&self, name: &str, default: Option<T>) -> R<T> {
        match self.node(name) {
            Some(n) if !n.text.trim().is_empty() => n
                .text
                .trim()
                .parse()
                .map_err(|_| self.err(format!("<{name}> is not a valid number: {:?}", n.text))),
            _ => default.ok_or_else(|| self.err(format!("missing <{name}>"))),
        }
    }

    fn u32_or(&self, name: &str, default: u32) -> R<u32> {
        self.num(name, Some(default))
    }

    fn u32_req(&self, name: &str) -> R<u32> {
        self.num(name, None)
    }

    fn i32_or(&self, name: &str, default: i32) -> R<i32> {
        self.num(name, Some(default))
    }

    fn i32_req(&self, name: &str) -> R<i32> {
        self.num(name, None)
    }

    fn bool_val(&self, name: &str, default: Option<bool>) -> R<bool> {
        match self.node(name) {
            Some(n) if !n.text.trim().is_empty() => parse_bool(&n.text)
                .ok_or_else(|| self.err(format!("<{name}> is not a boolean: {:?}", n.text))),
            _ => default.ok_or_else(|| self.err(format!("missing <{name}>"))),
        }
    }

    fn bool_or(&self, name: &str, default: bool) -> R<bool> {
        self.bool_val(name, Some(default))
    }

    fn bool_req(&self, name: &str) -> R<bool> {
        self.bool_val(name, None)
    }

    /// Array members: every element child, whatever its name or the
    /// `arrayType` count says (checklist §9 P5).
    fn items(&self, name: &str) -> impl Iterator<Item = Args<'a>> + 'a {
        let me = *self;
        self.node(name)
            .into_iter()
            .flat_map(|n| n.children.iter())
            .map(move |c| me.sub(c))
    }

    fn items_req(&self, name: &str) -> R<Vec<Args<'a>>> {
        self.node_req(name)?;
        Ok(self.items(name).collect())
    }

    /// String array members, raw.
    fn strings(&self, name: &str) -> Vec<String> {
        self.items(name).map(|a| a.node.text.clone()).collect()
    }

    /// Name-like array members (parameter names, AccessList, MethodList),
    /// which never carry meaningful surrounding whitespace.
    fn names(&self, name: &str) -> Vec<String> {
        self.items(name)
            .map(|a| a.node.text.trim().to_string())
            .collect()
    }

    fn names_req(&self, name: &str) -> R<Vec<String>> {
        self.node_req(name)?;
        Ok(self.names(name))
    }
}

fn pvs_list(a: &Args<'_>, name: &str, required: bool) -> R<Vec<ParameterValueStruct>> {
    let items = if required {
        a.items_req(name)?
    } else {
        a.items(name).collect()
    };
    items
        .into_iter()
        .map(|it| {
            let value = it.node("Value");
            Ok(ParameterValueStruct {
                name: it.string_req("Name")?,
                value: value.map(|v| v.text.clone()).unwrap_or_default(),
                xsi_type: value.and_then(|v| v.xsi_type.clone()),
            })
        })
        .collect()
}

fn fault_struct(a: &Args<'_>, name: &str, required: bool) -> R<FaultStruct> {
    match a.node(name) {
        Some(n) => {
            let f = a.sub(n);
            Ok(FaultStruct {
                fault_code: if required {
                    f.u32_req("FaultCode")?
                } else {
                    f.u32_or("FaultCode", 0)?
                },
                fault_string: f.string("FaultString"),
            })
        }
        None if required => Err(a.err(format!("missing <{name}>"))),
        None => Ok(FaultStruct::default()),
    }
}

/// `Results` entries, also accepting the non-XSD form that wraps them in an
/// extra array element (checklist §9 P27).
fn result_nodes<'a>(a: &Args<'a>) -> Vec<Args<'a>> {
    let mut out = Vec::new();
    for r in a.node.children_named("Results") {
        let looks_wrapped = r.child("UUID").is_none()
            && !r.children.is_empty()
            && r.children.iter().all(|c| !c.children.is_empty());
        if looks_wrapped {
            out.extend(r.children.iter().map(|c| a.sub(c)));
        } else {
            out.push(a.sub(r));
        }
    }
    out
}

fn op_result(a: &Args<'_>) -> R<OpResultStruct> {
    Ok(OpResultStruct {
        uuid: a.string("UUID"),
        deployment_unit_ref: a.string("DeploymentUnitRef"),
        version: a.string("Version"),
        current_state: a.string("CurrentState").trim().to_string(),
        resolved: a.bool_or("Resolved", false)?,
        execution_unit_ref_list: a.string("ExecutionUnitRefList"),
        start_time: a.string("StartTime").trim().to_string(),
        complete_time: a.string("CompleteTime").trim().to_string(),
        fault: fault_struct(a, "Fault", false)?,
    })
}

fn operation(a: &Args<'_>, type_name: &str) -> R<OperationStruct> {
    let local = type_name.rsplit(':').next().unwrap_or(type_name);
    if local.eq_ignore_ascii_case("InstallOpStruct") {
        Ok(OperationStruct::Install(InstallOpStruct {
            url: a.string_req("URL")?,
            uuid: a.opt_string("UUID"),
            username: a.opt_string("Username"),
            password: a.opt_string("Password"),
            execution_env_ref: a.opt_string("ExecutionEnvRef"),
        }))
    } else if local.eq_ignore_ascii_case("UpdateOpStruct") {
        Ok(OperationStruct::Update(UpdateOpStruct {
            uuid: a.opt_string("UUID"),
            version: a.opt_string("Version"),
            url: a.opt_string("URL"),
            username: a.opt_string("Username"),
            password: a.opt_string("Password"),
        }))
    } else if local.eq_ignore_ascii_case("UninstallOpStruct") {
        Ok(OperationStruct::Uninstall(UninstallOpStruct {
            uuid: a.string_req("UUID")?,
            version: a.opt_string("Version"),
            execution_env_ref: a.opt_string("ExecutionEnvRef"),
        }))
    } else {
        Err(a.err(format!("unknown operation type {type_name:?}")))
    }
}

fn operations(a: &Args<'_>) -> R<Vec<OperationStruct>> {
    let mut out = Vec::new();
    for op in a.node.children_named("Operations") {
        match &op.xsi_type {
            Some(t) => out.push(operation(&a.sub(op), t)?),
            None => {
                // Non-XSD wrapped form: <Operations><InstallOpStruct>…
                let wrapped: Vec<&Node> = op
                    .children
                    .iter()
                    .filter(|c| c.local.ends_with("OpStruct"))
                    .collect();
                if wrapped.is_empty() {
                    return Err(a.err("<Operations> without xsi:type".into()));
                }
                for w in wrapped {
                    out.push(operation(&a.sub(w), &w.local)?);
                }
            }
        }
    }
    if out.is_empty() {
        return Err(a.err("no <Operations>".into()));
    }
    Ok(out)
}

fn parse_rpc(n: &Node) -> R<Rpc> {
    let name = n.local.as_str();
    let a = Args::new(n, name);
    let rpc = match name {
        // ----- CPE methods -----
        "GetRPCMethods" => Rpc::GetRPCMethods(GetRPCMethods {}),
        "GetRPCMethodsResponse" => Rpc::GetRPCMethodsResponse(GetRPCMethodsResponse {
            method_list: a.names("MethodList"),
        }),
        "SetParameterValues" => Rpc::SetParameterValues(SetParameterValues {
            parameter_list: pvs_list(&a, "ParameterList", true)?,
            parameter_key: a.string("ParameterKey"),
        }),
        "SetParameterValuesResponse" => {
            Rpc::SetParameterValuesResponse(SetParameterValuesResponse {
                status: a.i32_req("Status")?,
            })
        }
        "GetParameterValues" => Rpc::GetParameterValues(GetParameterValues {
            parameter_names: a.names_req("ParameterNames")?,
        }),
        "GetParameterValuesResponse" => {
            Rpc::GetParameterValuesResponse(GetParameterValuesResponse {
                parameter_list: pvs_list(&a, "ParameterList", false)?,
            })
        }
        "GetParameterNames" => Rpc::GetParameterNames(GetParameterNames {
            parameter_path: a.string("ParameterPath").trim().to_string(),
            next_level: a.bool_req("NextLevel")?,
        }),
        "GetParameterNamesResponse" => Rpc::GetParameterNamesResponse(GetParameterNamesResponse {
            parameter_list: a
                .items("ParameterList")
                .map(|it| {
                    Ok(ParameterInfoStruct {
                        name: it.string_req("Name")?,
                        writable: it.bool_or("Writable", false)?,
                    })
                })
                .collect::<R<_>>()?,
        }),
        "SetParameterAttributes" => Rpc::SetParameterAttributes(SetParameterAttributes {
            parameter_list: a
                .items_req("ParameterList")?
                .into_iter()
                .map(|it| {
                    Ok(SetParameterAttributesStruct {
                        name: it.string_req("Name")?,
                        notification_change: it.bool_or("NotificationChange", false)?,
                        notification: it.i32_or("Notification", 0)?,
                        access_list_change: it.bool_or("AccessListChange", false)?,
                        access_list: it.names("AccessList"),
                    })
                })
                .collect::<R<_>>()?,
        }),
        "SetParameterAttributesResponse" => {
            Rpc::SetParameterAttributesResponse(SetParameterAttributesResponse {})
        }
        "GetParameterAttributes" => Rpc::GetParameterAttributes(GetParameterAttributes {
            parameter_names: a.names_req("ParameterNames")?,
        }),
        "GetParameterAttributesResponse" => {
            Rpc::GetParameterAttributesResponse(GetParameterAttributesResponse {
                parameter_list: a
                    .items("ParameterList")
                    .map(|it| {
                        Ok(ParameterAttributeStruct {
                            name: it.string_req("Name")?,
                            notification: it.i32_or("Notification", 0)?,
                            access_list: it.names("AccessList"),
                        })
                    })
                    .collect::<R<_>>()?,
            })
        }
        "AddObject" => Rpc::AddObject(AddObject {
            object_name: a.string_req("ObjectName")?,
            parameter_key: a.string("ParameterKey"),
        }),
        "AddObjectResponse" => Rpc::AddObjectResponse(AddObjectResponse {
            instance_number: a.u32_req("InstanceNumber")?,
            status: a.i32_or("Status", 0)?,
        }),
        "DeleteObject" => Rpc::DeleteObject(DeleteObject {
            object_name: a.string_req("ObjectName")?,
            parameter_key: a.string("ParameterKey"),
        }),
        "DeleteObjectResponse" => Rpc::DeleteObjectResponse(DeleteObjectResponse {
            status: a.i32_req("Status")?,
        }),
        "Reboot" => Rpc::Reboot(Reboot {
            command_key: a.string("CommandKey"),
        }),
        "RebootResponse" => Rpc::RebootResponse(RebootResponse {}),
        "Download" => Rpc::Download(Download {
            command_key: a.string("CommandKey"),
            file_type: a.string_req("FileType")?,
            url: a.string_req("URL")?,
            username: a.string("Username"),
            password: a.string("Password"),
            file_size: a.u32_or("FileSize", 0)?,
            target_file_name: a.string("TargetFileName"),
            delay_seconds: a.u32_or("DelaySeconds", 0)?,
            success_url: a.string("SuccessURL"),
            failure_url: a.string("FailureURL"),
        }),
        "DownloadResponse" => Rpc::DownloadResponse(DownloadResponse {
            status: a.i32_req("Status")?,
            start_time: a.string("StartTime").trim().to_string(),
            complete_time: a.string("CompleteTime").trim().to_string(),
        }),
        "Upload" => Rpc::Upload(Upload {
            command_key: a.string("CommandKey"),
            file_type: a.string_req("FileType")?,
            url: a.string_req("URL")?,
            username: a.string("Username"),
            password: a.string("Password"),
            delay_seconds: a.u32_or("DelaySeconds", 0)?,
        }),
        "UploadResponse" => Rpc::UploadResponse(UploadResponse {
            status: a.i32_req("Status")?,
            start_time: a.string("StartTime").trim().to_string(),
            complete_time: a.string("CompleteTime").trim().to_string(),
        }),
        "FactoryReset" => Rpc::FactoryReset(FactoryReset {}),
        "FactoryResetResponse" => Rpc::FactoryResetResponse(FactoryResetResponse {}),
        "GetQueuedTransfers" => Rpc::GetQueuedTransfers(GetQueuedTransfers {}),
        "GetQueuedTransfersResponse" => {
            Rpc::GetQueuedTransfersResponse(GetQueuedTransfersResponse {
                transfer_list: a
                    .items("TransferList")
                    .map(|it| {
                        Ok(QueuedTransferStruct {
                            command_key: it.string("CommandKey"),
                            state: it.i32_or("State", 0)?,
                        })
                    })
                    .collect::<R<_>>()?,
            })
        }
        "GetAllQueuedTransfers" => Rpc::GetAllQueuedTransfers(GetAllQueuedTransfers {}),
        "GetAllQueuedTransfersResponse" => {
            Rpc::GetAllQueuedTransfersResponse(GetAllQueuedTransfersResponse {
                transfer_list: a
                    .items("TransferList")
                    .map(|it| {
                        Ok(AllQueuedTransferStruct {
                            command_key: it.string("CommandKey"),
                            state: it.i32_or("State", 0)?,
                            is_download: it.bool_or("IsDownload", false)?,
                            file_type: it.string("FileType"),
                            file_size: it.u32_or("FileSize", 0)?,
                            target_file_name: it.string("TargetFileName"),
                        })
                    })
                    .collect::<R<_>>()?,
            })
        }
        "ScheduleInform" => Rpc::ScheduleInform(ScheduleInform {
            delay_seconds: a.u32_req("DelaySeconds")?,
            command_key: a.string("CommandKey"),
        }),
        "ScheduleInformResponse" => Rpc::ScheduleInformResponse(ScheduleInformResponse {}),
        "SetVouchers" => Rpc::SetVouchers(SetVouchers {
            voucher_list: a.strings("VoucherList"),
        }),
        "SetVouchersResponse" => Rpc::SetVouchersResponse(SetVouchersResponse {}),
        "GetOptions" => Rpc::GetOptions(GetOptions {
            option_name: a.string("OptionName"),
        }),
        "GetOptionsResponse" => Rpc::GetOptionsResponse(GetOptionsResponse {
            option_list: a
                .items("OptionList")
                .map(|it| {
                    Ok(OptionStruct {
                        option_name: it.string("OptionName"),
                        voucher_sn: it.u32_or("VoucherSN", 0)?,
                        state: it.u32_or("State", 0)?,
                        mode: it.i32_or("Mode", 0)?,
                        start_date: it.string("StartDate").trim().to_string(),
                        expiration_date: it
                            .opt_string("ExpirationDate")
                            .map(|s| s.trim().to_string()),
                        is_transferable: it.i32_or("IsTransferable", 0)?,
                    })
                })
                .collect::<R<_>>()?,
        }),
        "ScheduleDownload" => Rpc::ScheduleDownload(ScheduleDownload {
            command_key: a.string("CommandKey"),
            file_type: a.string_req("FileType")?,
            url: a.string_req("URL")?,
            username: a.string("Username"),
            password: a.string("Password"),
            file_size: a.u32_or("FileSize", 0)?,
            target_file_name: a.string("TargetFileName"),
            time_window_list: a
                .items("TimeWindowList")
                .map(|it| {
                    Ok(TimeWindowStruct {
                        window_start: it.u32_or("WindowStart", 0)?,
                        window_end: it.u32_or("WindowEnd", 0)?,
                        window_mode: it.string("WindowMode"),
                        user_message: it.string("UserMessage"),
                        max_retries: it.i32_or("MaxRetries", 0)?,
                    })
                })
                .collect::<R<_>>()?,
        }),
        "ScheduleDownloadResponse" => Rpc::ScheduleDownloadResponse(ScheduleDownloadResponse {}),
        "CancelTransfer" => Rpc::CancelTransfer(CancelTransfer {
            command_key: a.string("CommandKey"),
        }),
        "CancelTransferResponse" => Rpc::CancelTransferResponse(CancelTransferResponse {}),
        "ChangeDUState" => Rpc::ChangeDUState(ChangeDUState {
            operations: operations(&a)?,
            command_key: a.opt_string("CommandKey"),
        }),
        "ChangeDUStateResponse" => Rpc::ChangeDUStateResponse(ChangeDUStateResponse {}),

        // ----- ACS methods -----
        "Inform" => Rpc::Inform(parse_inform(&a)?),
        "InformResponse" => Rpc::InformResponse(InformResponse {
            max_envelopes: a.u32_or("MaxEnvelopes", 1).unwrap_or(1),
        }),
        "TransferComplete" => Rpc::TransferComplete(TransferComplete {
            command_key: a.string("CommandKey"),
            fault_struct: fault_struct(&a, "FaultStruct", true)?,
            start_time: a.string("StartTime").trim().to_string(),
            complete_time: a.string("CompleteTime").trim().to_string(),
        }),
        "TransferCompleteResponse" => Rpc::TransferCompleteResponse(TransferCompleteResponse {}),
        "AutonomousTransferComplete" => {
            Rpc::AutonomousTransferComplete(AutonomousTransferComplete {
                announce_url: a.string("AnnounceURL"),
                transfer_url: a.string("TransferURL"),
                is_download: a.bool_or("IsDownload", false)?,
                file_type: a.string("FileType"),
                file_size: a.u32_or("FileSize", 0)?,
                target_file_name: a.string("TargetFileName"),
                fault_struct: fault_struct(&a, "FaultStruct", true)?,
                start_time: a.string("StartTime").trim().to_string(),
                complete_time: a.string("CompleteTime").trim().to_string(),
            })
        }
        "AutonomousTransferCompleteResponse" => {
            Rpc::AutonomousTransferCompleteResponse(AutonomousTransferCompleteResponse {})
        }
        "DUStateChangeComplete" => Rpc::DUStateChangeComplete(DUStateChangeComplete {
            results: result_nodes(&a).iter().map(op_result).collect::<R<_>>()?,
            command_key: a.opt_string("CommandKey"),
        }),
        "DUStateChangeCompleteResponse" => {
            Rpc::DUStateChangeCompleteResponse(DUStateChangeCompleteResponse {})
        }
        "AutonomousDUStateChangeComplete" => {
            Rpc::AutonomousDUStateChangeComplete(AutonomousDUStateChangeComplete {
                results: result_nodes(&a)
                    .iter()
                    .map(|r| {
                        let b = op_result(r)?;
                        Ok(AutonOpResultStruct {
                            uuid: b.uuid,
                            deployment_unit_ref: b.deployment_unit_ref,
                            version: b.version,
                            current_state: b.current_state,
                            resolved: b.resolved,
                            execution_unit_ref_list: b.execution_unit_ref_list,
                            start_time: b.start_time,
                            complete_time: b.complete_time,
                            fault: b.fault,
                            operation_performed: r.string("OperationPerformed").trim().to_string(),
                        })
                    })
                    .collect::<R<_>>()?,
            })
        }
        "AutonomousDUStateChangeCompleteResponse" => {
            Rpc::AutonomousDUStateChangeCompleteResponse(AutonomousDUStateChangeCompleteResponse {})
        }
        "RequestDownload" => Rpc::RequestDownload(RequestDownload {
            file_type: a.string_req("FileType")?,
            file_type_arg: a
                .items("FileTypeArg")
                .map(|it| ArgStruct {
                    name: it.string("Name"),
                    value: it.string("Value"),
                })
                .collect(),
        }),
        "RequestDownloadResponse" => Rpc::RequestDownloadResponse(RequestDownloadResponse {}),
        "Kicked" => Rpc::Kicked(Kicked {
            command: a.string("Command"),
            referer: a.string("Referer"),
            arg: a.string("Arg"),
            next: a.string("Next"),
        }),
        "KickedResponse" => Rpc::KickedResponse(KickedResponse {
            next_url: a.string("NextURL"),
        }),
        other => Rpc::Unknown {
            name: other.to_string(),
        },
    };
    Ok(rpc)
}

/// Inform is parsed as leniently as possible (checklist §1.11, §3.1): only
/// an unusable identity is an error.
fn parse_inform(a: &Args<'_>) -> R<Inform> {
    let dev = a.sub(a.node_req("DeviceId")?);
    let device_id = DeviceIdStruct {
        manufacturer: dev.string("Manufacturer"),
        oui: dev.string_req("OUI")?,
        product_class: dev.string("ProductClass"),
        serial_number: dev.string_req("SerialNumber")?,
    };
    let event = a
        .items("Event")
        .map(|it| EventStruct {
            event_code: it.string("EventCode").trim().to_string(),
            command_key: it.string("CommandKey"),
        })
        .collect();
    Ok(Inform {
        device_id,
        event,
        max_envelopes: a.u32_or("MaxEnvelopes", 1).unwrap_or(1),
        current_time: a.string("CurrentTime").trim().to_string(),
        retry_count: a.u32_or("RetryCount", 0).unwrap_or(0),
        parameter_list: pvs_list(a, "ParameterList", false)?,
    })
}
