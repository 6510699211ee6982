//! The ACS's use of the Broadband Forum data models: checking tasks when they are queued,
//! typing values, and explaining parameters in API views.

use std::path::PathBuf;

use datamodel::{Lookup, Model, Registry};
use serde::Serialize;
use serde_json::{json, Value};

/// One refused item of a task, with the reason.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Problem {
    pub parameter: String,
    pub reason: String,
}

fn problem(parameter: &str, reason: impl Into<String>) -> Problem {
    Problem {
        parameter: parameter.to_string(),
        reason: reason.into(),
    }
}

/// The built-in models (TR-181 Device:2, TR-098 InternetGatewayDevice:1) plus the operator's
/// directories. A directory with a bad file still contributes its good files; the bad ones are
/// logged.
pub fn load_registry(dirs: &[PathBuf]) -> anyhow::Result<Registry> {
    let mut reg = Registry::builtin()?;
    if !dirs.is_empty() {
        let report = reg.load_dirs(dirs);
        for m in &report.models {
            tracing::info!(model = %m.name, file = %m.file.display(), objects = m.objects, parameters = m.parameters, "data model loaded");
        }
        for e in &report.errors {
            tracing::error!(error = %e, "data model file not loaded");
        }
    }
    Ok(reg)
}

/// Checks a task against the device's model before it is queued, and fills in value types the
/// device has not reported. `reported` gives the xsi:type the device last reported for a path.
pub fn check_task(
    model: &Model,
    kind: &str,
    args: &mut Value,
    reported: impl Fn(&str) -> Option<String>,
) -> Result<(), Vec<Problem>> {
    let mut problems = Vec::new();
    match kind {
        "SetParameterValues" => {
            let Some(Value::Array(list)) = args.get_mut("parameter_list") else {
                return Ok(());
            };
            for item in list.iter_mut() {
                let Some(p) = item.as_object_mut() else {
                    continue;
                };
                let name = p
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let value = p
                    .get("value")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if name.ends_with('.') {
                    problems.push(problem(&name, "an object cannot be set; name a parameter"));
                    continue;
                }
                let model_type = match model.lookup(&name) {
                    Lookup::VendorExtension => None,
                    Lookup::Unknown => {
                        problems.push(problem(
                            &name,
                            format!("unknown parameter in {}", model.name()),
                        ));
                        continue;
                    }
                    Lookup::Object(_) => {
                        problems.push(problem(&name, "an object cannot be set; name a parameter"));
                        continue;
                    }
                    Lookup::Parameter { param, .. } => {
                        if model.writable(&name) != Some(true) {
                            problems.push(problem(
                                &name,
                                format!("not writable ({:?} in {})", param.access, model.name()),
                            ));
                            continue;
                        }
                        if let Err(e) = model.validate(&name, &value) {
                            problems.push(problem(&name, e.reason));
                            continue;
                        }
                        model.xsd_type(&name)
                    }
                };
                let has_type = p
                    .get("xsi_type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| !t.is_empty());
                if !has_type {
                    // The device's own report wins, then the model, then xsd:string.
                    let ty = reported(&name)
                        .or_else(|| model_type.map(str::to_string))
                        .unwrap_or_else(|| "xsd:string".into());
                    p.insert("xsi_type".into(), json!(ty));
                }
            }
        }
        "AddObject" | "DeleteObject" => {
            let name = args
                .get("object_name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            match model.lookup(&name) {
                Lookup::VendorExtension => {}
                Lookup::Unknown => problems.push(problem(
                    &name,
                    format!("unknown object in {}", model.name()),
                )),
                Lookup::Parameter { .. } => {
                    problems.push(problem(&name, "a parameter, not an object"))
                }
                Lookup::Object(obj) => {
                    let is_instance =
                        name.trim_end_matches('.')
                            .rsplit('.')
                            .next()
                            .is_some_and(|last| {
                                last.chars().all(|c| c.is_ascii_digit()) || last.starts_with('[')
                            });
                    if !obj.is_writable_table() {
                        problems.push(problem(
                            &name,
                            format!("not a writable table in {} ({})", model.name(), obj.path),
                        ));
                    } else if kind == "AddObject" && is_instance {
                        problems.push(problem(
                            &name,
                            "AddObject takes the table path without an instance number",
                        ));
                    } else if kind == "DeleteObject" && !is_instance {
                        problems.push(problem(
                            &name,
                            "DeleteObject takes an instance path, e.g. Table.3.",
                        ));
                    }
                }
            }
        }
        "GetParameterValues"
        | "GetParameterAttributes"
        | "GetParameterNames"
        | "SetParameterAttributes" => {
            let names: Vec<String> = match kind {
                "GetParameterNames" => vec![args
                    .get("parameter_path")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()],
                "SetParameterAttributes" => args
                    .get("parameter_list")
                    .and_then(Value::as_array)
                    .map(|l| {
                        l.iter()
                            .filter_map(|p| p.get("name").and_then(Value::as_str))
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
                _ => args
                    .get("parameter_names")
                    .and_then(Value::as_array)
                    .map(|l| {
                        l.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            for name in names {
                // Empty: the whole tree.
                if name.is_empty() {
                    continue;
                }
                match model.lookup(&name) {
                    Lookup::VendorExtension => {}
                    Lookup::Unknown => problems.push(problem(
                        &name,
                        format!(
                            "not in {} (a partial path ends with '.'; pass \"force\": true for a name the model does not know)",
                            model.name()
                        ),
                    )),
                    Lookup::Object(_) if !name.ends_with('.') => problems.push(problem(
                        &name,
                        "an object: a partial path ends with '.'",
                    )),
                    Lookup::Parameter { .. } if name.ends_with('.') => {
                        problems.push(problem(&name, "a parameter, not an object"))
                    }
                    Lookup::Object(_) | Lookup::Parameter { .. } => {}
                }
            }
        }
        _ => {}
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Adds the model's type, access and one-line description to parameter rows shown by the API.
pub fn annotate(model: Option<&Model>, rows: Vec<Value>) -> Vec<Value> {
    let Some(model) = model else { return rows };
    rows.into_iter()
        .map(|mut row| {
            let path = row
                .get("path")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if let Some(obj) = row.as_object_mut() {
                match model.lookup(&path) {
                    Lookup::Parameter { param, .. } => {
                        obj.insert("model_type".into(), json!(model.xsd_type(&path)));
                        obj.insert("model_access".into(), json!(format!("{:?}", param.access)));
                        obj.insert("description".into(), json!(param.summary_line()));
                    }
                    Lookup::Object(o) => {
                        obj.insert("model_access".into(), json!(format!("{:?}", o.access)));
                        obj.insert("description".into(), json!(o.summary_line()));
                    }
                    Lookup::VendorExtension => {
                        obj.insert("vendor_extension".into(), json!(true));
                    }
                    Lookup::Unknown => {}
                }
            }
            row
        })
        .collect()
}

/// `keelson datamodel …`
pub enum CliCommand {
    Info(PathBuf),
    Show {
        path: String,
        dirs: Vec<PathBuf>,
    },
    Validate {
        path: String,
        value: String,
        dirs: Vec<PathBuf>,
    },
}

fn model_of<'a>(reg: &'a Registry, path: &str) -> anyhow::Result<&'a Model> {
    let root = match path.find('.') {
        Some(i) => &path[..=i],
        None => anyhow::bail!("{path:?} is not a data-model path (e.g. Device.DeviceInfo.)"),
    };
    reg.model_for_root(root)
        .ok_or_else(|| anyhow::anyhow!("no loaded model has the root {root}"))
}

pub fn cli(cmd: CliCommand) -> anyhow::Result<()> {
    match cmd {
        CliCommand::Info(path) => {
            let mut reg = Registry::new();
            let (models, errors) = if path.is_dir() {
                let r = reg.load_dirs(std::slice::from_ref(&path));
                (r.models, r.errors)
            } else {
                (reg.load_file(&path)?, Vec::new())
            };
            println!(
                "{:<28} {:>8} {:>10} {:>8} {:>8}  file",
                "model", "objects", "parameters", "tables", "profiles"
            );
            for m in &models {
                println!(
                    "{:<28} {:>8} {:>10} {:>8} {:>8}  {}",
                    m.name,
                    m.objects,
                    m.parameters,
                    m.multi_instance,
                    m.profiles,
                    m.file.display()
                );
            }
            for e in &errors {
                eprintln!("error: {e}");
            }
            if models.is_empty() && !errors.is_empty() {
                anyhow::bail!("no model loaded from {}", path.display());
            }
            Ok(())
        }
        CliCommand::Show { path, dirs } => {
            let reg = load_registry(&dirs)?;
            let model = model_of(&reg, &path)?;
            match model.lookup(&path) {
                Lookup::Parameter { param, .. } => {
                    println!("{} ({})", param.path, model.name());
                    println!("  type:        {}", model.xsd_type(&path).unwrap_or("?"));
                    println!("  syntax:      {}", syntax_text(&param.syntax));
                    println!("  access:      {:?}", param.access);
                    println!("  status:      {:?}", param.status);
                    if let Some(d) = &param.default {
                        println!("  default:     {d:?}");
                    }
                    println!();
                    println!("{}", param.description.trim());
                }
                Lookup::Object(o) => {
                    println!("{} ({})", o.path, model.name());
                    println!("  access:      {:?}", o.access);
                    println!("  status:      {:?}", o.status);
                    if o.multi_instance {
                        println!(
                            "  entries:     {}..{}",
                            o.min_entries,
                            o.max_entries
                                .map_or("unbounded".to_string(), |m| m.to_string())
                        );
                    }
                    if let Some(children) = model.children(&path) {
                        println!("  children:    {}", children.len());
                    }
                    println!();
                    println!("{}", o.description.trim());
                }
                Lookup::VendorExtension => {
                    println!("{path}: a vendor extension (not in {})", model.name())
                }
                Lookup::Unknown => anyhow::bail!("{path}: not defined in {}", model.name()),
            }
            Ok(())
        }
        CliCommand::Validate { path, value, dirs } => {
            let reg = load_registry(&dirs)?;
            let model = model_of(&reg, &path)?;
            match model.lookup(&path) {
                Lookup::Parameter { .. } => match model.validate(&path, &value) {
                    Ok(()) => {
                        println!(
                            "ok: {value:?} is a valid {}",
                            model.xsd_type(&path).unwrap_or("value")
                        );
                        Ok(())
                    }
                    Err(e) => anyhow::bail!("invalid: {}", e.reason),
                },
                Lookup::Object(_) => anyhow::bail!("{path} is an object, not a parameter"),
                Lookup::VendorExtension => {
                    println!("unknown vendor extension: not checked");
                    Ok(())
                }
                Lookup::Unknown => anyhow::bail!("{path}: not defined in {}", model.name()),
            }
        }
    }
}

/// A one-line summary of a parameter's syntax: base or named type, list, sizes, ranges, units,
/// enumerated values.
fn syntax_text(s: &datamodel::Syntax) -> String {
    let mut out = format!("{:?}", s.base);
    if let Some(named) = &s.named_type {
        out = format!("{named} ({out})");
    }
    if let Some(list) = &s.list {
        let max = list
            .max_items
            .map_or("unbounded".to_string(), |m| m.to_string());
        out = format!("list of {out} ({}..{max} items)", list.min_items);
    }
    let f = &s.facets;
    for size in &f.sizes {
        match (size.min_length, size.max_length) {
            (Some(a), Some(b)) => out.push_str(&format!(", length {a}..{b}")),
            (None, Some(b)) => out.push_str(&format!(", maxLength {b}")),
            (Some(a), None) => out.push_str(&format!(", minLength {a}")),
            (None, None) => {}
        }
    }
    for r in &f.ranges {
        out.push_str(&format!(", range {r}"));
    }
    if let Some(u) = &f.units {
        out.push_str(&format!(", units {u}"));
    }
    if !f.enumerations.is_empty() {
        let values: Vec<&str> = f.enumerations.iter().map(|e| e.value.as_str()).collect();
        out.push_str(&format!(", one of: {}", values.join(", ")));
    }
    if let Some(e) = &f.enumeration_ref {
        out.push_str(&format!(", values listed by {}", e.target_param));
    }
    if !f.patterns.is_empty() {
        out.push_str(&format!(", {} pattern(s)", f.patterns.len()));
    }
    out
}
