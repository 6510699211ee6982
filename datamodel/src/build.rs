//! Loads documents and their imports, resolves data types and components, and builds models
//! (including `base=` model inheritance).
//!
//! Import resolution: the importing file's directory, then the search directories. A file name
//! that exists is used as is; otherwise an unversioned name (`tr-181-2-common.xml`) resolves to
//! the newest versioned file of the same document and label (`tr-181-2-19-0-common.xml`),
//! restricted to the version the import's `spec` names when it names one
//! (`urn:broadband-forum-org:tr-181-2-19-common` → 2.19.x).

// Indexing here is into the builder's own tables (documents, their imports, the objects and
// parameters of a model being built) by positions it found in them itself, never by a number
// read from a file; so is the one `expect`. Arithmetic is checked as everywhere in the crate.
#![allow(clippy::indexing_slicing, clippy::expect_used)]
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::DmError;
use crate::model::{Model, ModelParts};
use crate::parse::{
    parse_document, CompRef, Desc, DescAction, Doc, ImportKind, Item, RawModel, RawObject,
    RawParam, RawSyntax,
};
use crate::types::*;

pub(crate) type DocId = usize;

/// A named data type resolved to its built-in base with the facets of its whole chain.
#[derive(Debug)]
pub(crate) struct ResolvedType {
    pub base: BaseType,
    pub facets: Facets,
    pub list: Option<ListFacet>,
}

/// A model under construction.
#[derive(Debug, Clone)]
pub(crate) struct ModelBuild {
    pub name: String,
    pub base: Option<String>,
    pub is_service: bool,
    pub status: Status,
    pub version: Option<String>,
    pub description: String,
    pub objects: Vec<ObjectDef>,
    obj_index: HashMap<String, usize>,
    /// objects[..inherited_objects] come from the base model.
    inherited_objects: usize,
    /// Per object: how many of its parameters come from the base model.
    inherited_params: Vec<usize>,
    pub model_params: Vec<ParamDef>,
    inherited_model_params: usize,
    pub profiles: Vec<Profile>,
    profile_lines: Vec<u32>,
    inherited_profiles: usize,
    pub templates: Vec<(String, String)>,
    pub file: PathBuf,
}

enum Slot {
    Loading,
    Loaded(DocId),
}

pub(crate) struct Loader {
    search_dirs: Vec<PathBuf>,
    docs: Vec<Doc>,
    raw_models: Vec<Vec<Option<RawModel>>>,
    /// Per document, per `<import>`: the imported document.
    import_ids: Vec<Vec<DocId>>,
    by_path: HashMap<PathBuf, Slot>,
    types: HashMap<(DocId, String), Arc<ResolvedType>>,
    resolving: Vec<(DocId, String)>,
    built: HashMap<(DocId, String), ModelBuild>,
    building: Vec<(DocId, String)>,
    dir_listing: HashMap<PathBuf, Vec<String>>,
}

const MAX_COMPONENT_DEPTH: u32 = 32;

impl Loader {
    pub fn new(search_dirs: Vec<PathBuf>) -> Loader {
        Loader {
            search_dirs,
            docs: Vec::new(),
            raw_models: Vec::new(),
            import_ids: Vec::new(),
            by_path: HashMap::new(),
            types: HashMap::new(),
            resolving: Vec::new(),
            built: HashMap::new(),
            building: Vec::new(),
            dir_listing: HashMap::new(),
        }
    }

    fn key(path: &Path) -> PathBuf {
        std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
    }

    /// Reads, parses and registers a file and (recursively) its imports.
    pub fn load_path(&mut self, path: &Path) -> Result<DocId, DmError> {
        let key = Self::key(path);
        if let Some(Slot::Loaded(id)) = self.by_path.get(&key) {
            return Ok(*id);
        }
        let bytes = std::fs::read(path).map_err(|source| DmError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        match self.load_bytes_keyed(path, key.clone(), &bytes) {
            // A BBF support file whose DOCTYPE we refuse: read our pre-expanded copy instead.
            Err(e @ DmError::DocType { .. }) => {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                match crate::expanded_copy(name) {
                    Some(expanded) => self.load_bytes_keyed(path, key, &expanded),
                    None => Err(e),
                }
            }
            other => other,
        }
    }

    /// Parses and registers an in-memory document under the name `file`.
    pub fn load_bytes(&mut self, file: &Path, bytes: &[u8]) -> Result<DocId, DmError> {
        self.load_bytes_keyed(file, file.to_path_buf(), bytes)
    }

    fn load_bytes_keyed(
        &mut self,
        file: &Path,
        key: PathBuf,
        bytes: &[u8],
    ) -> Result<DocId, DmError> {
        let mut doc = parse_document(bytes, file)?;
        self.by_path.insert(key.clone(), Slot::Loading);
        let r = self.resolve_imports(&mut doc);
        let ids = match r {
            Ok(ids) => ids,
            Err(e) => {
                self.by_path.remove(&key);
                return Err(e);
            }
        };
        let id = self.docs.len();
        let models = std::mem::take(&mut doc.models);
        self.raw_models.push(models.into_iter().map(Some).collect());
        self.docs.push(doc);
        self.import_ids.push(ids);
        self.by_path.insert(key, Slot::Loaded(id));
        self.check_import_items(id)?;
        Ok(id)
    }

    fn resolve_imports(&mut self, doc: &mut Doc) -> Result<Vec<DocId>, DmError> {
        let mut ids = Vec::with_capacity(doc.imports.len());
        let own_dir = doc.file.parent().map(Path::to_path_buf).unwrap_or_default();
        for imp in &doc.imports {
            let mut dirs = vec![own_dir.clone()];
            for d in &self.search_dirs {
                if !dirs.contains(d) {
                    dirs.push(d.clone());
                }
            }
            let Some(found) = self.find_import(&dirs, &imp.file, imp.spec.as_deref()) else {
                return Err(DmError::MissingImport {
                    file: doc.file.clone(),
                    line: imp.line,
                    wanted: imp.file.clone(),
                    searched: dirs,
                });
            };
            let key = Self::key(&found);
            if let Some(Slot::Loading) = self.by_path.get(&key) {
                return Err(DmError::Invalid {
                    file: doc.file.clone(),
                    line: imp.line,
                    message: format!(
                        "import cycle: {} ({}) is already being loaded",
                        imp.file,
                        found.display()
                    ),
                });
            }
            let id = self.load_path(&found).map_err(|e| DmError::ImportFailed {
                file: doc.file.clone(),
                line: imp.line,
                wanted: imp.file.clone(),
                resolved: found.clone(),
                source: Arc::new(e),
            })?;
            // A mismatch between the import's spec and the imported document's is tolerated:
            // published BBF files have them (tr-069-biblio imported as
            // "urn:broadband-forum-org:tr-069-biblio", specs written with ".xml"). The spec
            // still selects the version when resolving an unversioned file name.
            ids.push(id);
        }
        Ok(ids)
    }

    /// Every item an `<import>` lists must exist in the imported document.
    fn check_import_items(&self, id: DocId) -> Result<(), DmError> {
        let doc = &self.docs[id];
        for (i, imp) in doc.imports.iter().enumerate() {
            let target = self.import_ids[id][i];
            for item in &imp.items {
                let found = match item.kind {
                    ImportKind::DataType => self.find_type(target, &item.reference, 0).is_some(),
                    ImportKind::Component => {
                        self.find_component(target, &item.reference, 0).is_some()
                    }
                    ImportKind::Model => self.find_model(target, &item.reference, 0).is_some(),
                };
                if !found {
                    return Err(DmError::Undefined {
                        file: doc.file.clone(),
                        line: item.line,
                        message: format!(
                            "imports {} {} from {}, which does not define it",
                            item.kind.as_str(),
                            item.reference,
                            self.docs[target].file.display()
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    fn listing(&mut self, dir: &Path) -> &[String] {
        self.dir_listing
            .entry(dir.to_path_buf())
            .or_insert_with(|| {
                let mut v: Vec<String> = std::fs::read_dir(dir)
                    .map(|rd| {
                        rd.filter_map(|e| e.ok())
                            .filter_map(|e| e.file_name().into_string().ok())
                            .collect()
                    })
                    .unwrap_or_default();
                v.sort();
                v
            })
            .as_slice()
    }

    fn find_import(
        &mut self,
        dirs: &[PathBuf],
        wanted: &str,
        spec: Option<&str>,
    ) -> Option<PathBuf> {
        // Only a file name (or a relative path) inside the search directories; no URLs.
        if wanted.contains("://") {
            return None;
        }
        for d in dirs {
            let p = d.join(wanted);
            if p.is_file() {
                return Some(p);
            }
        }
        let wanted_name = Path::new(wanted).file_name()?.to_str()?;
        let want = FileName::parse(wanted_name)?;
        let spec_nums = spec
            .and_then(|s| s.rsplit(':').next())
            .and_then(FileName::parse_stem)
            .filter(|s| s.doc == want.doc && s.label == want.label)
            .map(|s| s.nums);
        let mut best: Option<(Vec<u32>, PathBuf)> = None;
        for d in dirs {
            let names: Vec<String> = self.listing(d).to_vec();
            for n in names {
                let Some(f) = FileName::parse(&n) else {
                    continue;
                };
                if f.doc != want.doc || f.label != want.label || !f.nums.starts_with(&want.nums) {
                    continue;
                }
                if let Some(sn) = &spec_nums {
                    if !f.nums.starts_with(sn) {
                        continue;
                    }
                }
                if best.as_ref().is_none_or(|(b, _)| f.nums > *b) {
                    best = Some((f.nums, d.join(&n)));
                }
            }
        }
        best.map(|(_, p)| p)
    }

    // ---- scope look-ups: local definitions, then explicit imports, then (leniently) anything
    // the imported documents define under that name.

    fn find_type(&self, doc: DocId, name: &str, depth: u32) -> Option<(DocId, usize)> {
        if depth > 64 {
            return None;
        }
        let d = &self.docs[doc];
        if let Some(i) = d.data_types.iter().position(|t| t.name == name) {
            return Some((doc, i));
        }
        for (i, imp) in d.imports.iter().enumerate() {
            for it in &imp.items {
                if it.kind == ImportKind::DataType && it.name == name {
                    return self.find_type(
                        self.import_ids[doc][i],
                        &it.reference,
                        depth.saturating_add(1),
                    );
                }
            }
        }
        for &t in &self.import_ids[doc] {
            if let Some(r) = self.find_type(t, name, depth.saturating_add(1)) {
                return Some(r);
            }
        }
        None
    }

    fn find_component(&self, doc: DocId, name: &str, depth: u32) -> Option<(DocId, usize)> {
        if depth > 64 {
            return None;
        }
        let d = &self.docs[doc];
        if let Some(i) = d.components.iter().position(|c| c.name == name) {
            return Some((doc, i));
        }
        for (i, imp) in d.imports.iter().enumerate() {
            for it in &imp.items {
                if it.kind == ImportKind::Component && it.name == name {
                    return self.find_component(
                        self.import_ids[doc][i],
                        &it.reference,
                        depth.saturating_add(1),
                    );
                }
            }
        }
        for &t in &self.import_ids[doc] {
            if let Some(r) = self.find_component(t, name, depth.saturating_add(1)) {
                return Some(r);
            }
        }
        None
    }

    /// (document, model name in that document)
    fn find_model(&self, doc: DocId, name: &str, depth: u32) -> Option<(DocId, String)> {
        if depth > 64 {
            return None;
        }
        let defined_here = self.raw_models[doc]
            .iter()
            .flatten()
            .any(|m| m.name == name)
            || self.built.contains_key(&(doc, name.to_string()))
            || self.building.contains(&(doc, name.to_string()));
        if defined_here {
            return Some((doc, name.to_string()));
        }
        let d = &self.docs[doc];
        for (i, imp) in d.imports.iter().enumerate() {
            for it in &imp.items {
                if it.kind == ImportKind::Model && it.name == name {
                    return self.find_model(
                        self.import_ids[doc][i],
                        &it.reference,
                        depth.saturating_add(1),
                    );
                }
            }
        }
        for &t in &self.import_ids[doc] {
            if let Some(r) = self.find_model(t, name, depth.saturating_add(1)) {
                return Some(r);
            }
        }
        None
    }

    fn file(&self, doc: DocId) -> PathBuf {
        self.docs[doc].file.clone()
    }

    /// Checks that the document does not define a data type, component or model twice.
    fn check_duplicates(&self, doc: DocId) -> Result<(), DmError> {
        let d = &self.docs[doc];
        let mut seen: HashMap<&str, u32> = HashMap::new();
        for t in &d.data_types {
            if let Some(first) = seen.insert(&t.name, t.line) {
                return Err(DmError::Duplicate {
                    file: d.file.clone(),
                    line: t.line,
                    kind: "data type",
                    name: t.name.clone(),
                    first_line: first,
                });
            }
        }
        seen.clear();
        for c in &d.components {
            if let Some(first) = seen.insert(&c.name, c.line) {
                return Err(DmError::Duplicate {
                    file: d.file.clone(),
                    line: c.line,
                    kind: "component",
                    name: c.name.clone(),
                    first_line: first,
                });
            }
        }
        seen.clear();
        for m in self.raw_models[doc].iter().flatten() {
            if let Some(first) = seen.insert(&m.name, m.line) {
                return Err(DmError::Duplicate {
                    file: d.file.clone(),
                    line: m.line,
                    kind: "model",
                    name: m.name.clone(),
                    first_line: first,
                });
            }
        }
        Ok(())
    }

    fn resolve_type(
        &mut self,
        doc: DocId,
        name: &str,
        item: &str,
        line: u32,
    ) -> Result<Arc<ResolvedType>, DmError> {
        let Some((d, i)) = self.find_type(doc, name, 0) else {
            return Err(DmError::UndefinedType {
                file: self.file(doc),
                line,
                item: item.to_string(),
                name: name.to_string(),
            });
        };
        let tname = self.docs[d].data_types[i].name.clone();
        let key = (d, tname);
        if let Some(t) = self.types.get(&key) {
            return Ok(t.clone());
        }
        if self.resolving.contains(&key) {
            return Err(DmError::Invalid {
                file: self.file(d),
                line: self.docs[d].data_types[i].line,
                message: format!("data type {} is derived from itself", key.1),
            });
        }
        self.resolving.push(key.clone());
        let r = self.resolve_type_def(d, i);
        self.resolving.pop();
        let t = Arc::new(r?);
        self.types.insert(key, t.clone());
        Ok(t)
    }

    fn resolve_type_def(&mut self, d: DocId, i: usize) -> Result<ResolvedType, DmError> {
        let raw = &self.docs[d].data_types[i];
        let (line, tname) = (raw.line, raw.name.clone());
        if let Some(base) = raw.base.clone() {
            let b = self.resolve_type(d, &base, &format!("data type {tname}"), line)?;
            let raw = &self.docs[d].data_types[i];
            Ok(ResolvedType {
                base: b.base,
                facets: b.facets.merged(&raw.facets),
                list: raw.list.clone().or_else(|| b.list.clone()),
            })
        } else if let Some(bt) = raw.builtin {
            Ok(ResolvedType {
                base: bt,
                facets: raw.facets.clone(),
                list: raw.list.clone(),
            })
        } else {
            Err(DmError::Invalid {
                file: self.file(d),
                line,
                message: format!("data type {tname} has neither a base nor a built-in type"),
            })
        }
    }

    /// Builds every model the document defines. With `keep`, built models stay cached for
    /// later documents of the same loader (which may use them as `base=`); without, they are
    /// moved out.
    pub fn build_models(&mut self, doc: DocId, keep: bool) -> Result<Vec<Model>, DmError> {
        self.check_duplicates(doc)?;
        let names: Vec<String> = self.raw_models[doc]
            .iter()
            .flatten()
            .map(|m| m.name.clone())
            .collect();
        // Models built earlier (as a base of another document) are still in `built`.
        let mut all: Vec<String> = names;
        for (d, n) in self.built.keys() {
            if *d == doc && !all.contains(n) {
                all.push(n.clone());
            }
        }
        for n in &all {
            self.build_model(doc, n)?;
        }
        let mut out = Vec::with_capacity(all.len());
        for n in all {
            let key = (doc, n);
            let mb = if keep {
                self.built.get(&key).cloned()
            } else {
                self.built.remove(&key)
            };
            if let Some(mb) = mb {
                out.push(Model::from_parts(ModelParts::from(mb)));
            }
        }
        Ok(out)
    }

    fn build_model(&mut self, doc: DocId, name: &str) -> Result<(), DmError> {
        let key = (doc, name.to_string());
        if self.built.contains_key(&key) {
            return Ok(());
        }
        if self.building.contains(&key) {
            return Err(DmError::Invalid {
                file: self.file(doc),
                line: 0,
                message: format!("model {name} is based on itself"),
            });
        }
        let Some(slot) = self.raw_models[doc]
            .iter_mut()
            .find(|m| m.as_ref().is_some_and(|m| m.name == name))
        else {
            return Err(DmError::Undefined {
                file: self.file(doc),
                line: 0,
                message: format!("model {name} is not defined"),
            });
        };
        let raw = slot.take().expect("checked above");
        self.building.push(key.clone());
        let r = self.build_raw_model(doc, raw);
        self.building.retain(|k| *k != key);
        let mb = r?;
        self.built.insert(key, mb);
        Ok(())
    }

    fn build_raw_model(&mut self, doc: DocId, raw: RawModel) -> Result<ModelBuild, DmError> {
        let mut mb = match &raw.base {
            Some(base) => {
                let Some((bd, bname)) = self.find_model(doc, base, 0) else {
                    return Err(DmError::Undefined {
                        file: self.file(doc),
                        line: raw.line,
                        message: format!(
                            "model {}: base model {base} is neither defined nor imported",
                            raw.name
                        ),
                    });
                };
                self.build_model(bd, &bname)?;
                let mut mb = self.built[&(bd, bname)].clone();
                mb.inherited_objects = mb.objects.len();
                mb.inherited_params = mb.objects.iter().map(|o| o.parameters.len()).collect();
                mb.inherited_model_params = mb.model_params.len();
                mb.inherited_profiles = mb.profiles.len();
                mb.base = Some(base.clone());
                if !raw.description.is_empty() {
                    mb.description = raw.description.clone();
                }
                mb
            }
            None => ModelBuild {
                name: String::new(),
                base: None,
                is_service: false,
                status: Status::Current,
                version: None,
                description: raw.description.clone(),
                objects: Vec::new(),
                obj_index: HashMap::new(),
                inherited_objects: 0,
                inherited_params: Vec::new(),
                model_params: Vec::new(),
                inherited_model_params: 0,
                profiles: Vec::new(),
                profile_lines: Vec::new(),
                inherited_profiles: 0,
                templates: Vec::new(),
                file: PathBuf::new(),
            },
        };
        mb.name = raw.name.clone();
        mb.is_service = raw.is_service || mb.is_service;
        mb.status = raw.status;
        mb.version = raw.version.clone();
        mb.file = self.file(doc);
        for t in &self.docs[doc].templates {
            if !mb.templates.iter().any(|(id, _)| *id == t.0) {
                mb.templates.push(t.clone());
            }
        }
        // The call stack starts with the documents of the models being built (the model that
        // asked for this one as its base first), so that a virtual component resolves to what
        // the outermost document imports under its name.
        let mut stack: Vec<DocId> = Vec::new();
        for (d, _) in &self.building {
            if !stack.contains(d) {
                stack.push(*d);
            }
        }
        if !stack.contains(&doc) {
            stack.push(doc);
        }
        let scope = Scope {
            prefix: String::new(),
            clamp: None,
            default_version: None,
            stack,
            depth: 0,
        };
        self.expand(&mut mb, doc, raw.items, &scope)?;
        Ok(mb)
    }

    fn expand(
        &mut self,
        mb: &mut ModelBuild,
        doc: DocId,
        items: Vec<Item>,
        scope: &Scope,
    ) -> Result<(), DmError> {
        let prefix = scope.prefix.as_str();
        for item in items {
            match item {
                Item::Object(o) => self.add_object(mb, doc, o, scope)?,
                Item::Param(p) => {
                    let obj = if prefix.is_empty() {
                        None
                    } else {
                        match mb.obj_index.get(prefix) {
                            Some(&i) => Some(i),
                            None => {
                                return Err(DmError::Undefined {
                                    file: self.file(doc),
                                    line: p.line,
                                    message: format!(
                                        "parameter {}: its object {prefix} is not defined",
                                        p.name
                                    ),
                                })
                            }
                        }
                    };
                    self.add_param(mb, doc, obj, scope, p)?;
                }
                Item::Component(c) => self.expand_component(mb, doc, &c, scope)?,
                Item::Profile(b) => {
                    let (line, mut pr) = *b;
                    if !prefix.is_empty() {
                        for o in &mut pr.objects {
                            o.path = format!("{prefix}{}", o.path);
                        }
                    }
                    if let Some(i) = mb.profiles.iter().position(|p| p.name == pr.name) {
                        if i >= mb.inherited_profiles {
                            return Err(DmError::Duplicate {
                                file: self.file(doc),
                                line,
                                kind: "profile",
                                name: pr.name,
                                first_line: mb.profile_lines.get(i).copied().unwrap_or(0),
                            });
                        }
                        mb.profiles[i] = pr;
                        if let Some(l) = mb.profile_lines.get_mut(i) {
                            *l = line;
                        }
                    } else {
                        mb.profiles.push(pr);
                        mb.profile_lines.push(line);
                    }
                }
            }
        }
        Ok(())
    }

    fn expand_component(
        &mut self,
        mb: &mut ModelBuild,
        doc: DocId,
        c: &CompRef,
        scope: &Scope,
    ) -> Result<(), DmError> {
        if scope.depth >= MAX_COMPONENT_DEPTH {
            return Err(DmError::Invalid {
                file: self.file(doc),
                line: c.line,
                message: format!(
                    "component {} nested more than {MAX_COMPONENT_DEPTH} deep (a component that includes itself?)",
                    c.name
                ),
            });
        }
        let Some((mut cd, mut ci)) = self.find_component(doc, &c.name, 0) else {
            return Err(DmError::Undefined {
                file: self.file(doc),
                line: c.line,
                message: format!("component {} is neither defined nor imported", c.name),
            });
        };
        if self.docs[cd].components[ci].is_virtual {
            // The first non-virtual component of that name in the call stack, outermost first.
            for &sd in &scope.stack {
                if let Some((d2, i2)) = self.find_component(sd, &c.name, 0) {
                    if !self.docs[d2].components[i2].is_virtual {
                        (cd, ci) = (d2, i2);
                        break;
                    }
                }
            }
        }
        let items = self.docs[cd].components[ci].items.clone();
        let mut stack = scope.stack.clone();
        if !stack.contains(&cd) {
            stack.push(cd);
        }
        let inner = Scope {
            prefix: match &c.path {
                Some(p) => format!("{}{p}", scope.prefix),
                None => scope.prefix.clone(),
            },
            clamp: clamp_version(
                c.version.clone().or_else(|| scope.default_version.clone()),
                &scope.clamp,
            ),
            default_version: scope.default_version.clone(),
            stack,
            depth: scope.depth.saturating_add(1),
        };
        self.expand(mb, cd, items, &inner)
    }

    fn add_object(
        &mut self,
        mb: &mut ModelBuild,
        doc: DocId,
        o: RawObject,
        scope: &Scope,
    ) -> Result<(), DmError> {
        let path = format!("{}{}", scope.prefix, o.name);
        if !path.ends_with('.') {
            return Err(DmError::Invalid {
                file: self.file(doc),
                line: o.line,
                message: format!("object name {path} does not end with '.'"),
            });
        }
        let existing = mb.obj_index.get(&path).copied();
        let idx = match existing {
            None if o.is_ref => {
                return Err(DmError::Undefined {
                    file: self.file(doc),
                    line: o.line,
                    message: format!(
                        "object base=\"{path}\" modifies an object that is not defined"
                    ),
                })
            }
            Some(i) if !o.is_ref && i >= mb.inherited_objects => {
                return Err(DmError::Duplicate {
                    file: self.file(doc),
                    line: o.line,
                    kind: "object",
                    name: path,
                    first_line: mb.objects[i].line,
                })
            }
            Some(i) => {
                // base= modification, or a redefinition of an inherited object.
                let def = &mut mb.objects[i];
                if let Some(a) = o.access {
                    def.access = a;
                }
                if let Some(n) = o.min_entries {
                    def.min_entries = n;
                }
                if let Some(n) = o.max_entries {
                    def.max_entries = n;
                }
                def.multi_instance = def.path.ends_with("{i}.") || def.max_entries != Some(1);
                if o.num_entries_parameter.is_some() {
                    def.num_entries_parameter = o.num_entries_parameter;
                }
                if o.enable_parameter.is_some() {
                    def.enable_parameter = o.enable_parameter;
                }
                if o.discriminator_parameter.is_some() {
                    def.discriminator_parameter = o.discriminator_parameter;
                }
                if let Some(s) = o.status {
                    def.status = s;
                }
                if o.version.is_some() && !o.is_ref {
                    def.version = o.version;
                }
                if let Some(d) = o.description {
                    apply_desc(&mut def.description, d);
                }
                for k in o.unique_keys {
                    if !def.unique_keys.contains(&k) {
                        def.unique_keys.push(k);
                    }
                }
                i
            }
            None => {
                let max_entries = o.max_entries.unwrap_or(Some(1));
                let multi_instance = path.ends_with("{i}.") || max_entries != Some(1);
                let def = ObjectDef {
                    path: path.clone(),
                    access: o.access.unwrap_or(Access::ReadOnly),
                    multi_instance,
                    min_entries: o.min_entries.unwrap_or(1),
                    max_entries,
                    status: o.status.unwrap_or_default(),
                    description: o.description.map(|d| d.text).unwrap_or_default(),
                    unique_keys: o.unique_keys,
                    num_entries_parameter: o.num_entries_parameter,
                    enable_parameter: o.enable_parameter,
                    discriminator_parameter: o.discriminator_parameter,
                    version: clamp_version(
                        o.version.or_else(|| scope.default_version.clone()),
                        &scope.clamp,
                    ),
                    parameters: Vec::new(),
                    live: true,
                    line: o.line,
                };
                let i = mb.objects.len();
                mb.objects.push(def);
                mb.inherited_params.push(0);
                mb.obj_index.insert(path.clone(), i);
                i
            }
        };
        // Items without a version inside an object have the object's.
        let default_version = mb.objects[idx].version.clone();
        let inner = Scope {
            prefix: path,
            clamp: scope.clamp.clone(),
            default_version,
            stack: scope.stack.clone(),
            depth: scope.depth,
        };
        self.expand(mb, doc, o.items, &inner)
    }

    fn add_param(
        &mut self,
        mb: &mut ModelBuild,
        doc: DocId,
        obj: Option<usize>,
        scope: &Scope,
        p: RawParam,
    ) -> Result<(), DmError> {
        let path = format!("{}{}", scope.prefix, p.name);
        let (list, inherited) = match obj {
            Some(i) => (&mut mb.objects[i].parameters, mb.inherited_params[i]),
            None => (&mut mb.model_params, mb.inherited_model_params),
        };
        let existing = list.iter().position(|q| q.name == p.name);
        match existing {
            None if p.is_ref => Err(DmError::Undefined {
                file: self.file(doc),
                line: p.line,
                message: format!(
                    "parameter base=\"{path}\" modifies a parameter that is not defined"
                ),
            }),
            Some(i) if !p.is_ref && i >= inherited => Err(DmError::Duplicate {
                file: self.file(doc),
                line: p.line,
                kind: "parameter",
                name: path,
                first_line: list[i].line,
            }),
            Some(i) if p.is_ref => {
                // Take the definition out so that data type resolution can borrow self.
                let mut def = std::mem::replace(&mut list[i], placeholder_param());
                let r = self.modify_param(doc, &mut def, p, &path);
                let list = match obj {
                    Some(o) => &mut mb.objects[o].parameters,
                    None => &mut mb.model_params,
                };
                list[i] = def;
                r
            }
            other => {
                // A redefinition of an inherited parameter keeps its version unless it says one.
                let old_version = match (other, p.version.is_some()) {
                    (Some(i), false) => Some(list[i].version.clone()),
                    _ => None,
                };
                let mut def = self.new_param(doc, p, path)?;
                def.version = match old_version {
                    Some(v) => v,
                    None => clamp_version(
                        def.version.or_else(|| scope.default_version.clone()),
                        &scope.clamp,
                    ),
                };
                let list = match obj {
                    Some(o) => &mut mb.objects[o].parameters,
                    None => &mut mb.model_params,
                };
                match other {
                    Some(i) => list[i] = def,
                    None => list.push(def),
                }
                Ok(())
            }
        }
    }

    fn syntax(
        &mut self,
        doc: DocId,
        raw: RawSyntax,
        path: &str,
    ) -> Result<(Syntax, RawSyntaxFlags), DmError> {
        let flags = RawSyntaxFlags {
            hidden: raw.hidden,
            secured: raw.secured,
            command: raw.command,
            default: raw.default,
        };
        let syntax = match raw.type_ref {
            Some(t) => {
                let rt = self.resolve_type(doc, &t, &format!("parameter {path}"), raw.line)?;
                let mut facets = rt.facets.clone();
                facets.merge_from(raw.facets);
                Syntax {
                    base: rt.base,
                    named_type: Some(t),
                    facets,
                    list: raw.list.or_else(|| rt.list.clone()),
                }
            }
            None => Syntax {
                base: raw.builtin.unwrap_or(BaseType::String),
                named_type: None,
                facets: raw.facets,
                list: raw.list,
            },
        };
        Ok((syntax, flags))
    }

    fn new_param(&mut self, doc: DocId, p: RawParam, path: String) -> Result<ParamDef, DmError> {
        let (syntax, flags) = match p.syntax {
            Some(s) => self.syntax(doc, s, &path)?,
            None => (Syntax::default(), RawSyntaxFlags::default()),
        };
        Ok(ParamDef {
            name: p.name,
            path,
            access: p.access.unwrap_or(Access::ReadOnly),
            syntax,
            status: p.status.unwrap_or_default(),
            description: p.description.map(|d| d.text).unwrap_or_default(),
            default: flags.default,
            active_notify: p.active_notify.unwrap_or_default(),
            forced_inform: p.forced_inform.unwrap_or(false),
            hidden: flags.hidden.unwrap_or(false),
            secured: flags.secured.unwrap_or(false),
            command: flags.command.unwrap_or(false),
            version: p.version,
            live: true,
            line: p.line,
            summary: Default::default(),
        })
    }

    fn modify_param(
        &mut self,
        doc: DocId,
        def: &mut ParamDef,
        p: RawParam,
        path: &str,
    ) -> Result<(), DmError> {
        if let Some(a) = p.access {
            def.access = a;
        }
        if let Some(s) = p.status {
            def.status = s;
        }
        if let Some(a) = p.active_notify {
            def.active_notify = a;
        }
        if let Some(f) = p.forced_inform {
            def.forced_inform = f;
        }
        if let Some(d) = p.description {
            apply_desc(&mut def.description, d);
            def.summary = Default::default();
        }
        if let Some(raw) = p.syntax {
            let (syntax, flags) = self.syntax(doc, raw, path)?;
            // A modification states what changes: its type replaces the old one, facets it
            // gives replace (enumerations: extend) the old ones, the others stay.
            def.syntax.base = syntax.base;
            if syntax.named_type.is_some() {
                def.syntax.named_type = syntax.named_type;
            }
            def.syntax.facets.merge_from(syntax.facets);
            if let Some(new) = syntax.list {
                match &mut def.syntax.list {
                    Some(old) => {
                        if !new.sizes.is_empty() {
                            old.sizes = new.sizes;
                        }
                        if new.min_items != 0 {
                            old.min_items = new.min_items;
                        }
                        if new.max_items.is_some() {
                            old.max_items = new.max_items;
                        }
                        if new.nested_brackets.is_some() {
                            old.nested_brackets = new.nested_brackets;
                        }
                    }
                    None => def.syntax.list = Some(new),
                }
            }
            if let Some(h) = flags.hidden {
                def.hidden = h;
            }
            if let Some(s) = flags.secured {
                def.secured = s;
            }
            if let Some(c) = flags.command {
                def.command = c;
            }
            if flags.default.is_some() {
                def.default = flags.default;
            }
        }
        Ok(())
    }
}

/// Where items being expanded go: path prefix, version clamp of the enclosing component
/// references, documents of the component call stack (outermost first), nesting depth.
struct Scope {
    prefix: String,
    clamp: Option<String>,
    /// The version of items that do not say theirs.
    default_version: Option<String>,
    stack: Vec<DocId>,
    depth: u32,
}

fn version_key(v: &str) -> Vec<u32> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// `v` raised to at least `clamp`.
fn clamp_version(v: Option<String>, clamp: &Option<String>) -> Option<String> {
    match (v, clamp) {
        (Some(v), Some(c)) if version_key(&v) < version_key(c) => Some(c.clone()),
        (None, Some(c)) => Some(c.clone()),
        (v, _) => v,
    }
}

#[derive(Default)]
struct RawSyntaxFlags {
    hidden: Option<bool>,
    secured: Option<bool>,
    command: Option<bool>,
    default: Option<DefaultValue>,
}

fn placeholder_param() -> ParamDef {
    ParamDef {
        name: String::new(),
        path: String::new(),
        access: Access::ReadOnly,
        syntax: Syntax::default(),
        status: Status::Current,
        description: String::new(),
        default: None,
        active_notify: ActiveNotify::Normal,
        forced_inform: false,
        hidden: false,
        secured: false,
        command: false,
        version: None,
        live: true,
        line: 0,
        summary: Default::default(),
    }
}

fn apply_desc(old: &mut String, d: Desc) {
    match d.action {
        DescAction::Create | DescAction::Replace => *old = d.text,
        DescAction::Append => {
            if !old.is_empty() {
                old.push_str("\n\n");
            }
            old.push_str(&d.text);
        }
        DescAction::Prefix => {
            let mut s = d.text;
            if !old.is_empty() {
                s.push_str("\n\n");
                s.push_str(old);
            }
            *old = s;
        }
    }
}

impl From<ModelBuild> for ModelParts {
    fn from(mb: ModelBuild) -> ModelParts {
        ModelParts {
            name: mb.name,
            base: mb.base,
            is_service: mb.is_service,
            status: mb.status,
            version: mb.version,
            description: mb.description,
            objects: mb.objects,
            model_params: mb.model_params,
            profiles: mb.profiles,
            templates: mb.templates,
            file: mb.file,
        }
    }
}

/// A BBF file name: `tr-181-2-19-1-cwmp-full.xml` → doc `tr-181`, version numbers
/// `[2, 19, 1]`, label `cwmp-full`.
#[derive(Debug, PartialEq)]
pub(crate) struct FileName {
    pub doc: String,
    pub nums: Vec<u32>,
    pub label: String,
}

impl FileName {
    pub fn parse(name: &str) -> Option<FileName> {
        let stem = name.strip_suffix(".xml")?;
        FileName::parse_stem(stem)
    }

    /// `tr-181-2-19-common` (the last part of a spec URN, or a file stem).
    pub fn parse_stem(stem: &str) -> Option<FileName> {
        let mut parts = stem.split('-');
        let kind = parts.next()?;
        let number = parts.next()?;
        if kind.is_empty()
            || !kind.bytes().all(|b| b.is_ascii_alphabetic())
            || number.is_empty()
            || !number.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let mut nums = Vec::new();
        let mut label = Vec::new();
        for p in parts {
            if label.is_empty() && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
                nums.push(p.parse().ok()?);
            } else {
                label.push(p);
            }
        }
        Some(FileName {
            doc: format!("{kind}-{number}"),
            nums,
            label: label.join("-"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        let f = FileName::parse("tr-181-2-19-1-cwmp-full.xml").unwrap();
        assert_eq!(f.doc, "tr-181");
        assert_eq!(f.nums, vec![2, 19, 1]);
        assert_eq!(f.label, "cwmp-full");
        let f = FileName::parse("tr-106-types.xml").unwrap();
        assert_eq!(
            (f.doc.as_str(), f.nums.len(), f.label.as_str()),
            ("tr-106", 0, "types")
        );
        assert!(FileName::parse("acme.xml").is_none());
    }
}
