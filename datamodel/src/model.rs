//! A built model: definitions plus the lookup index (normalised template path → definition).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::PathBuf;

use serde::Serialize;

use crate::error::Invalid;
use crate::types::*;

/// Counts and identity of a loaded model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelSummary {
    /// `Device:2.19`
    pub name: String,
    /// `Device.` (for a service model: `VoiceService.`)
    pub root: String,
    /// All object definitions, whatever their status.
    pub objects: usize,
    /// All parameter definitions (in objects), whatever their status.
    pub parameters: usize,
    /// Objects neither deleted nor obsoleted, nor inside one that is.
    pub live_objects: usize,
    /// Parameters neither deleted nor obsoleted, nor in an object that is.
    pub live_parameters: usize,
    /// Objects that are tables (`…{i}.`), whatever their status.
    pub multi_instance: usize,
    pub profiles: usize,
    pub is_service: bool,
    /// The file the model was defined in (`builtin:…` for the embedded ones).
    pub file: PathBuf,
}

/// What a path names in a model.
#[derive(Debug, Clone, Copy)]
pub enum Lookup<'a> {
    /// An object: a single-instance object, a table (`Device.NAT.PortMapping.`), or an instance
    /// or template of a table (`….PortMapping.3.`, `….PortMapping.[web].`, `….PortMapping.{i}.`).
    Object(&'a ObjectDef),
    Parameter {
        object: &'a ObjectDef,
        param: &'a ParamDef,
    },
    /// Not in the model, but a path segment starts with `X_`: a vendor extension.
    VendorExtension,
    Unknown,
}

/// An immediate child in [`Model::children`].
#[derive(Debug, Clone, Copy)]
pub enum Child<'a> {
    /// `name` is the child's own segment with its trailing dot: `PortMapping.` (the table)
    /// under `Device.NAT.`, `{i}.` (the instance template) under `Device.NAT.PortMapping.`.
    Object {
        name: &'a str,
        def: &'a ObjectDef,
    },
    Parameter(&'a ParamDef),
}

impl<'a> Child<'a> {
    pub fn name(&self) -> &'a str {
        match self {
            Child::Object { name, .. } => name,
            Child::Parameter(p) => &p.name,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Entry {
    Object(u32),
    /// The table path of a multi-instance object (no `{i}`).
    Table(u32),
    Param(u32, u32),
}

/// FxHash-style multiplicative hash: the index is built from trusted model data and looked up
/// with short paths, where SipHash's DoS resistance buys nothing and costs half the lookup.
#[derive(Default, Clone, Copy)]
struct FastHasher(u64);

const K: u64 = 0x517c_c1b7_2722_0a95;

impl FastHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            // Always 8 bytes.
            self.add(u64::from_le_bytes(
                <[u8; 8]>::try_from(c).unwrap_or_default(),
            ));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            for (d, s) in b.iter_mut().zip(rest) {
                *d = *s;
            }
            self.add(u64::from_le_bytes(b));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type Index = HashMap<Box<str>, Entry, BuildHasherDefault<FastHasher>>;

pub(crate) struct ModelParts {
    pub name: String,
    pub base: Option<String>,
    pub is_service: bool,
    pub status: Status,
    pub version: Option<String>,
    pub description: String,
    pub objects: Vec<ObjectDef>,
    pub model_params: Vec<ParamDef>,
    pub profiles: Vec<Profile>,
    pub templates: Vec<(String, String)>,
    pub file: PathBuf,
}

/// One data model (`Device:2.19`, `InternetGatewayDevice:1.14`, `VoiceService:2.0`, ...).
#[derive(Debug)]
pub struct Model {
    name: String,
    root: String,
    major: u32,
    minor: u32,
    base: Option<String>,
    is_service: bool,
    status: Status,
    version: Option<String>,
    description: String,
    objects: Vec<ObjectDef>,
    model_params: Vec<ParamDef>,
    profiles: Vec<Profile>,
    templates: Vec<(String, String)>,
    index: Index,
    /// Per object: child objects (indices).
    child_objects: Vec<Vec<u32>>,
    roots: Vec<u32>,
    summary: ModelSummary,
}

/// The object path that contains `path`'s object: `Device.NAT.` for both
/// `Device.NAT.PortMapping.{i}.` and `Device.NAT.Foo.`; "" for a root object.
fn container_path(path: &str) -> &str {
    let s = path.strip_suffix('.').unwrap_or(path);
    let s = s.strip_suffix(".{i}").unwrap_or(s);
    match s.rfind('.') {
        Some(i) => &path[..=i],
        None => "",
    }
}

impl Model {
    pub(crate) fn from_parts(p: ModelParts) -> Model {
        let (major, minor) = parse_model_version(&p.name);
        let root = format!("{}.", p.name.split(':').next().unwrap_or(&p.name));
        let mut objects = p.objects;

        // Liveness: own status, and no enclosing object deleted/obsoleted.
        let dead: Vec<String> = objects
            .iter()
            .filter(|o| !o.status.is_live())
            .map(|o| o.path.clone())
            .collect();
        for o in objects.iter_mut() {
            o.live = o.status.is_live() && !dead.iter().any(|d| o.path.starts_with(d.as_str()));
            let olive = o.live;
            for prm in o.parameters.iter_mut() {
                prm.live = olive && prm.status.is_live();
            }
        }
        let mut model_params = p.model_params;
        for prm in model_params.iter_mut() {
            prm.live = prm.status.is_live();
        }

        let nparams: usize = objects.iter().map(|o| o.parameters.len()).sum();
        let mut index = Index::with_capacity_and_hasher(
            objects.len().saturating_mul(2).saturating_add(nparams),
            BuildHasherDefault::default(),
        );
        for (i, o) in objects.iter().enumerate() {
            index.insert(o.path.as_str().into(), Entry::Object(i as u32));
            for (j, prm) in o.parameters.iter().enumerate() {
                index.insert(prm.path.as_str().into(), Entry::Param(i as u32, j as u32));
            }
        }
        for (i, o) in objects.iter().enumerate() {
            if let Some(t) = o.path.strip_suffix("{i}.") {
                if !t.is_empty() {
                    index.entry(t.into()).or_insert(Entry::Table(i as u32));
                }
            }
        }

        let mut child_objects = vec![Vec::new(); objects.len()];
        let mut roots = Vec::new();
        for (i, o) in objects.iter().enumerate() {
            let c = container_path(&o.path);
            if c.is_empty() {
                roots.push(i as u32);
            } else if let Some(Entry::Object(pi)) = index.get(c) {
                if let Some(children) = child_objects.get_mut(*pi as usize) {
                    children.push(i as u32);
                }
            }
        }

        let summary = ModelSummary {
            name: p.name.clone(),
            root: root.clone(),
            objects: objects.len(),
            parameters: nparams,
            live_objects: objects.iter().filter(|o| o.live).count(),
            live_parameters: objects
                .iter()
                .flat_map(|o| o.parameters.iter())
                .filter(|p| p.live)
                .count(),
            multi_instance: objects.iter().filter(|o| o.multi_instance).count(),
            profiles: p.profiles.len(),
            is_service: p.is_service,
            file: p.file,
        };
        Model {
            name: p.name,
            root,
            major,
            minor,
            base: p.base,
            is_service: p.is_service,
            status: p.status,
            version: p.version,
            description: p.description,
            objects,
            model_params,
            profiles: p.profiles,
            templates: p.templates,
            index,
            child_objects,
            roots,
            summary,
        }
    }

    /// `Device:2.19`
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `Device.`, `InternetGatewayDevice.`, or for a service model its object (`VoiceService.`).
    pub fn root(&self) -> &str {
        &self.root
    }

    /// (major, minor) from the name: `Device:2.19` → (2, 19).
    pub fn version(&self) -> (u32, u32) {
        (self.major, self.minor)
    }

    /// The `version` attribute (corrigendum, e.g. `2.19.1`) when the model has one.
    pub fn version_attr(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// The model this one extends (`base=`), if any.
    pub fn base(&self) -> Option<&str> {
        self.base.as_deref()
    }

    /// A service model (`isService="true"`), mounted at `Device.Services.<Svc>.{i}.`.
    pub fn is_service(&self) -> bool {
        self.is_service
    }

    pub fn status(&self) -> Status {
        self.status
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    pub fn summary(&self) -> &ModelSummary {
        &self.summary
    }

    /// All object definitions, in definition order.
    pub fn objects(&self) -> impl Iterator<Item = &ObjectDef> {
        self.objects.iter()
    }

    /// All parameter definitions in objects, with their object.
    pub fn parameters(&self) -> impl Iterator<Item = (&ObjectDef, &ParamDef)> {
        self.objects
            .iter()
            .flat_map(|o| o.parameters.iter().map(move |p| (o, p)))
    }

    /// Parameters declared at model level, outside any object (a service model's
    /// `VoiceServiceNumberOfEntries`, which lives in the parent `Device.Services.`). They are not
    /// in the lookup index nor in the summary counts.
    pub fn model_parameters(&self) -> &[ParamDef] {
        &self.model_params
    }

    pub fn profiles(&self) -> &[Profile] {
        &self.profiles
    }

    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.name == name)
    }

    /// Document-level description templates (`<template id=…>`) as (id, text).
    pub fn templates(&self) -> &[(String, String)] {
        &self.templates
    }

    /// The object a path names (see [`Model::lookup`] for the accepted forms).
    pub fn object(&self, path: &str) -> Option<&ObjectDef> {
        match self.lookup(path) {
            Lookup::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The parameter a path names.
    pub fn parameter(&self, path: &str) -> Option<&ParamDef> {
        match self.lookup(path) {
            Lookup::Parameter { param, .. } => Some(param),
            _ => None,
        }
    }

    /// For a service model, accepts the mounted form `Device.Services.VoiceService.1.…`
    /// (or `InternetGatewayDevice.Services.…`) as well as `VoiceService.1.…`.
    #[inline]
    fn unmount<'p>(&self, path: &'p str) -> &'p str {
        if self.is_service {
            for pre in ["Device.Services.", "InternetGatewayDevice.Services."] {
                if let Some(rest) = path.strip_prefix(pre) {
                    return rest;
                }
            }
        }
        path
    }

    fn entry(&self, path: &str) -> (Option<Entry>, bool) {
        let path = self.unmount(path);
        let mut buf = [0u8; 320];
        match normalize(path, &mut buf) {
            Norm::Key(k, vendor) => (self.index.get(k).copied(), vendor),
            Norm::Long(k, vendor) => (self.index.get(k.as_str()).copied(), vendor),
            Norm::Bad => (None, false),
        }
    }

    /// What a path names. Accepted forms: concrete instance numbers
    /// (`Device.IP.Interface.2.IPv4Address.1.IPAddress`), `[alias]` instances, the template
    /// form `{i}`, `*` wildcards, and partial paths ending in `.` (objects: a table path such as
    /// `Device.NAT.PortMapping.` names the table, `Device.NAT.PortMapping.3.` an instance).
    /// A path not in the model with a segment starting with `X_` under this model's root is a
    /// [`Lookup::VendorExtension`]. Deleted and obsoleted definitions are found too: check
    /// `status` / `is_live()`.
    pub fn lookup(&self, path: &str) -> Lookup<'_> {
        let (e, vendor) = self.entry(path);
        match e {
            // The index holds positions in `objects`, so these lookups find their entries.
            Some(Entry::Object(i)) | Some(Entry::Table(i)) => self
                .objects
                .get(i as usize)
                .map_or(Lookup::Unknown, Lookup::Object),
            Some(Entry::Param(i, j)) => self
                .objects
                .get(i as usize)
                .and_then(|o| {
                    Some(Lookup::Parameter {
                        object: o,
                        param: o.parameters.get(j as usize)?,
                    })
                })
                .unwrap_or(Lookup::Unknown),
            None if vendor && self.under_root(path) => Lookup::VendorExtension,
            None => Lookup::Unknown,
        }
    }

    fn under_root(&self, path: &str) -> bool {
        let p = self.unmount(path);
        p.starts_with(self.root.as_str())
    }

    /// Immediate children of an object path (GetParameterNames NextLevel=true, at the schema
    /// level): for a table path the `{i}.` instance template, for an object or instance its
    /// parameters and child objects. `""` gives the root object. `None` if the path is not an
    /// object of this model.
    pub fn children(&self, object_path: &str) -> Option<Vec<Child<'_>>> {
        if object_path.is_empty() {
            return Some(
                self.roots
                    .iter()
                    .filter_map(|&i| self.objects.get(i as usize))
                    .map(|def| Child::Object {
                        name: child_name(def),
                        def,
                    })
                    .collect(),
            );
        }
        match self.entry(object_path).0? {
            Entry::Table(i) => {
                let def = self.objects.get(i as usize)?;
                Some(vec![Child::Object { name: "{i}.", def }])
            }
            Entry::Object(i) => {
                let o = self.objects.get(i as usize)?;
                let mut v: Vec<Child<'_>> = o.parameters.iter().map(Child::Parameter).collect();
                let children = self.child_objects.get(i as usize).into_iter().flatten();
                for def in children.filter_map(|&c| self.objects.get(c as usize)) {
                    v.push(Child::Object {
                        name: child_name(def),
                        def,
                    });
                }
                Some(v)
            }
            Entry::Param(..) => None,
        }
    }

    /// Whether the ACS may write what the path names: for a parameter, SetParameterValues
    /// (readWrite or writeOnceReadOnly); for a table or one of its instances, AddObject /
    /// DeleteObject (a readWrite table); for a single-instance object, whether it is readWrite.
    /// `None` for vendor extensions and unknown paths.
    pub fn writable(&self, path: &str) -> Option<bool> {
        match self.lookup(path) {
            Lookup::Parameter { param, .. } => Some(param.access != Access::ReadOnly),
            Lookup::Object(o) => Some(o.access == Access::ReadWrite),
            _ => None,
        }
    }

    /// The `xsi:type` for a parameter's value: named types resolved to their base
    /// (`MACAddress` → `xsd:string`, `StatsCounter64` → `xsd:unsignedLong`), lists
    /// `xsd:string`, path references (`pathRef`) `xsd:string` as strings; instance-number
    /// references (`instanceRef`) keep their integer type. `None` for objects, vendor
    /// extensions and unknown paths.
    pub fn xsd_type(&self, path: &str) -> Option<&'static str> {
        match self.lookup(path) {
            Lookup::Parameter { param, .. } => Some(param.xsd_type()),
            _ => None,
        }
    }

    /// Checks a value against the parameter's syntax (type, sizes, ranges, enumerations,
    /// patterns, list facets). Enumeration values marked `access="readOnly"` are valid values;
    /// see [`Model::validate_for_write`] to refuse them. An object path or unknown path is
    /// `Err`; a vendor extension is `Ok` (the model says nothing about it): use
    /// [`Model::lookup`] to tell them apart.
    pub fn validate(&self, path: &str, value: &str) -> Result<(), Invalid> {
        self.validate_inner(path, value, false)
    }

    /// As [`Model::validate`], and also refuses values the ACS may not set: enumeration values
    /// and patterns marked `access="readOnly"` (e.g. DiagnosticsState `Complete`).
    pub fn validate_for_write(&self, path: &str, value: &str) -> Result<(), Invalid> {
        self.validate_inner(path, value, true)
    }

    fn validate_inner(&self, path: &str, value: &str, write: bool) -> Result<(), Invalid> {
        let invalid = |reason: String| Invalid {
            path: path.to_string(),
            reason,
        };
        match self.lookup(path) {
            Lookup::Parameter { param, .. } => {
                crate::validate::check(param, value, write).map_err(invalid)
            }
            Lookup::Object(_) => Err(invalid("an object, not a parameter".into())),
            Lookup::VendorExtension => Ok(()),
            Lookup::Unknown => Err(invalid(format!("not a parameter of {}", self.name))),
        }
    }

    /// Number of entries in the lookup index (template paths of objects and parameters, plus
    /// table paths).
    pub fn index_len(&self) -> usize {
        self.index.len()
    }
}

fn child_name(def: &ObjectDef) -> &str {
    let t = def.table_path();
    let c = container_path(&def.path);
    &t[c.len()..]
}

/// `Device:2.19` → (2, 19)
pub(crate) fn parse_model_version(name: &str) -> (u32, u32) {
    let v = name.rsplit(':').next().unwrap_or("");
    let mut it = v.split('.');
    let major = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let minor = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (major, minor)
}

enum Norm<'p> {
    Key(&'p str, bool),
    Long(String, bool),
    Bad,
}

/// Where [`normalize`] writes: the caller's buffer, spilling to the heap past its end.
struct Out<'b> {
    buf: &'b mut [u8; 320],
    w: usize,
    spill: Option<Vec<u8>>,
    capacity: usize,
}

impl Out<'_> {
    fn put(&mut self, bytes: &[u8]) {
        if let Some(v) = &mut self.spill {
            v.extend_from_slice(bytes);
            return;
        }
        let end = self.w.saturating_add(bytes.len());
        if let Some(dst) = self.buf.get_mut(self.w..end) {
            dst.copy_from_slice(bytes);
            self.w = end;
        } else {
            let mut v = Vec::with_capacity(self.capacity);
            v.extend_from_slice(self.buf.get(..self.w).unwrap_or_default());
            v.extend_from_slice(bytes);
            self.spill = Some(v);
        }
    }
}

/// Normalises a path to its template form: instance numbers, `[alias]` and `*` segments become
/// `{i}`. Returns the path itself when nothing changes (no copy), else writes into `buf`
/// (paths of any length are handled; > buf.len() allocates). The flag tells whether a segment
/// starts with `X_`.
fn normalize<'p>(path: &'p str, buf: &'p mut [u8; 320]) -> Norm<'p> {
    let mut out = Out {
        buf,
        w: 0,
        spill: None,
        capacity: path.len().saturating_add(16),
    };
    let mut changed = false;
    let mut vendor = false;
    let mut rest = path.as_bytes();
    while !rest.is_empty() {
        let (seg, placeholder, after) = if rest.first() == Some(&b'[') {
            // `[alias]`: up to and with the closing bracket.
            let Some((seg, after)) = rest
                .iter()
                .position(|&c| c == b']')
                .and_then(|j| rest.split_at_checked(j.saturating_add(1)))
            else {
                return Norm::Bad;
            };
            (seg, true, after)
        } else {
            let j = rest.iter().position(|&c| c == b'.').unwrap_or(rest.len());
            let (seg, after) = rest.split_at_checked(j).unwrap_or((rest, &[]));
            let ph = !seg.is_empty() && (seg == b"*" || seg.iter().all(u8::is_ascii_digit));
            if seg.starts_with(b"X_") {
                vendor = true;
            }
            (seg, ph, after)
        };
        if placeholder {
            changed = true;
            out.put(b"{i}");
        } else {
            out.put(seg);
        }
        match after.split_first() {
            None => rest = after,
            Some((b'.', tail)) => {
                out.put(b".");
                rest = tail;
            }
            Some(_) => return Norm::Bad,
        }
    }
    let Out { buf, w, spill, .. } = out;
    let buf: &'p [u8; 320] = buf;
    if !changed {
        return Norm::Key(path, vendor);
    }
    match spill {
        Some(v) => match String::from_utf8(v) {
            Ok(s) => Norm::Long(s, vendor),
            Err(_) => Norm::Bad,
        },
        None => match std::str::from_utf8(buf.get(..w).unwrap_or_default()) {
            Ok(s) => Norm::Key(s, vendor),
            Err(_) => Norm::Bad,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(p: &str) -> String {
        let mut buf = [0u8; 320];
        match normalize(p, &mut buf) {
            Norm::Key(k, _) => k.to_string(),
            Norm::Long(k, _) => k,
            Norm::Bad => "BAD".into(),
        }
    }

    #[test]
    fn normalises() {
        assert_eq!(
            norm("Device.IP.Interface.2.IPv4Address.1.IPAddress"),
            "Device.IP.Interface.{i}.IPv4Address.{i}.IPAddress"
        );
        assert_eq!(
            norm("Device.IP.Interface.[wan.1].IPv4Address.[cpe-1].IPAddress"),
            "Device.IP.Interface.{i}.IPv4Address.{i}.IPAddress"
        );
        assert_eq!(
            norm("Device.NAT.PortMapping.3."),
            "Device.NAT.PortMapping.{i}."
        );
        assert_eq!(
            norm("Device.IP.Interface.*.Status"),
            "Device.IP.Interface.{i}.Status"
        );
        assert_eq!(norm("Device.DeviceInfo."), "Device.DeviceInfo.");
        assert_eq!(norm("Device.IP.Interface.[x"), "BAD");
        assert_eq!(norm("Device.IP.Interface.[x]y"), "BAD");
        let long = format!("Device.{}", "A.1.".repeat(100));
        assert_eq!(norm(&long), format!("Device.{}", "A.{i}.".repeat(100)));
    }

    #[test]
    fn containers() {
        assert_eq!(container_path("Device.NAT.PortMapping.{i}."), "Device.NAT.");
        assert_eq!(container_path("Device.NAT."), "Device.");
        assert_eq!(container_path("Device."), "");
        assert_eq!(container_path("A.{i}.B.{i}."), "A.{i}.");
    }
}
