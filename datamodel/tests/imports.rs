//! Source files with imports, and the loader's errors, on the fixtures in tests/fixtures/.

mod common;

use std::path::PathBuf;

use common::fixtures;
use datamodel::{Access, DmError, Lookup, Registry, Status};

fn load(rel: &str) -> Result<(Registry, Vec<datamodel::ModelSummary>), DmError> {
    let mut reg = Registry::new();
    let s = reg.load_file(&fixtures().join(rel))?;
    Ok((reg, s))
}

#[test]
fn source_file_with_imports() {
    let (reg, summaries) = load("imports/tr-900-1-0-0-root.xml").expect("loads");
    assert_eq!(summaries.len(), 1);
    let s = &summaries[0];
    assert_eq!(s.name, "Acme:1.0");
    assert_eq!(s.root, "Acme.");
    // Acme., Acme.Widget.{i}., Acme.Engine., Acme.Engine.Stats.
    assert_eq!((s.objects, s.multi_instance, s.profiles), (4, 1, 1));

    let m = reg.model_for_root("Acme.").unwrap();
    // A data type imported from tr-900-types.xml.
    let load = m.parameter("Acme.Load").unwrap();
    assert_eq!(load.syntax.named_type.as_deref(), Some("Percent"));
    assert_eq!(load.syntax.facets.units.as_deref(), Some("percent"));
    assert!(m.validate("Acme.Load", "100").is_ok());
    assert_eq!(
        m.validate("Acme.Load", "101").unwrap_err().reason,
        "value 101 above maxInclusive 100"
    );
    assert_eq!(load.summary_line(), "Load in percent.");
    // Imported under another name (Name = Label), derived from a base type (size from
    // _LabelBase, patterns from Label).
    let label = m.parameter("Acme.Label").unwrap();
    assert_eq!(label.syntax.named_type.as_deref(), Some("Name"));
    assert!(m.validate("Acme.Label", "").is_ok());
    assert!(m.validate("Acme.Label", "eth-0").is_ok());
    assert!(m.validate("Acme.Label", "0eth").is_err());
    assert!(m
        .validate("Acme.Label", "a-very-long-label-indeed")
        .unwrap_err()
        .reason
        .contains("above maxLength 16"));
    // No access attribute: readOnly.
    assert_eq!(m.parameter("Acme.Mode").unwrap().access, Access::ReadOnly);

    // A component imported under another name (Counters = Stats) inside an object.
    assert!(matches!(
        m.lookup("Acme.Engine.Stats.BytesSent"),
        Lookup::Parameter { .. }
    ));
    assert_eq!(
        m.xsd_type("Acme.Engine.Stats.BytesSent"),
        Some("xsd:unsignedLong")
    );

    // The component from the unversioned "tr-900-1-common.xml": the newest versioned file,
    // tr-900-1-2-0-common.xml (Level exists, OnlyIn11 does not).
    let w = m.object("Acme.Widget.3.").unwrap();
    assert!(
        w.description.contains("tr-900-1-2-0-common.xml"),
        "{}",
        w.description
    );
    assert!(w.is_writable_table());
    assert!(m.parameter("Acme.Widget.1.Level").is_some());
    assert!(m.parameter("Acme.Widget.1.OnlyIn11").is_none());
    assert_eq!(
        m.parameter("Acme.Widget.1.Level")
            .unwrap()
            .version
            .as_deref(),
        Some("1.2")
    );
    // The component's top-level parameter lands in the object at its path.
    assert!(m.parameter("Acme.WidgetNumberOfEntries").is_some());
    assert_eq!(
        m.parameter("Acme.WidgetNumberOfEntries")
            .unwrap()
            .summary_line(),
        "The number of entries in the Widget table."
    );
    // The imported component's data type resolved in its own file's scope.
    assert_eq!(m.xsd_type("Acme.Widget.2.Level"), Some("xsd:unsignedInt"));
}

#[test]
fn model_inheritance_over_an_import() {
    let (reg, summaries) = load("imports/tr-900-1-1-0-root.xml").expect("loads");
    // Only the models the file defines are added (not the imported Acme:1.0).
    assert_eq!(
        summaries
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["Acme:1.1"]
    );
    let m = reg.model("Acme:1.1").unwrap();
    assert_eq!(m.base(), Some("Acme:1.0"));
    assert_eq!(m.summary().objects, 5);
    // Inherited as is.
    assert!(m.parameter("Acme.Widget.1.Level").is_some());
    // Modified: access, description appended, enumeration extended.
    let mode = m.parameter("Acme.Mode").unwrap();
    assert_eq!(mode.access, Access::ReadWrite);
    assert!(mode.description.starts_with("Mode of operation."));
    assert!(mode.description.ends_with("Writable since 1.1."));
    let values: Vec<&str> = mode
        .syntax
        .facets
        .enumerations
        .iter()
        .map(|e| e.value.as_str())
        .collect();
    assert_eq!(values, ["Fast", "Slow", "Eco"]);
    // Added.
    let serial = m.parameter("Acme.Serial").unwrap();
    assert_eq!(serial.status, Status::Deprecated);
    assert!(serial.is_live());
    assert!(matches!(
        m.lookup("Acme.Log.4.Text"),
        Lookup::Parameter { .. }
    ));
    // Newest version for the root.
    let mut reg = reg;
    reg.load_file(&fixtures().join("imports/tr-900-1-0-0-root.xml"))
        .unwrap();
    assert_eq!(reg.model_for_root("Acme.").unwrap().name(), "Acme:1.1");
}

#[test]
fn missing_import_names_both_files() {
    let err = load("missing/tr-901-1-0-0.xml").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DmError::MissingImport { .. }), "{err:?}");
    assert!(msg.contains("tr-901-1-0-0.xml:5:"), "{msg}");
    assert!(msg.contains("tr-901-nothere.xml"), "{msg}");
    assert_eq!(err.line(), 5);
}

#[test]
fn duplicate_definition() {
    let err = load("dup/tr-902-dup.xml").unwrap_err();
    match &err {
        DmError::Duplicate {
            kind,
            name,
            line,
            first_line,
            ..
        } => {
            assert_eq!(*kind, "object");
            assert_eq!(name, "Dup.Thing.");
            assert_eq!((*line, *first_line), (12, 9));
        }
        other => panic!("{other:?}"),
    }
    assert!(err
        .to_string()
        .contains("tr-902-dup.xml:12: object Dup.Thing. is defined twice"));
}

#[test]
fn undefined_data_type() {
    let err = load("undefined/tr-903-undef.xml").unwrap_err();
    match &err {
        DmError::UndefinedType {
            name, item, line, ..
        } => {
            assert_eq!(name, "NoSuchType");
            assert_eq!(item, "parameter Undef.Broken");
            assert_eq!(*line, 9);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn directory_with_a_bad_file() {
    let mut reg = Registry::new();
    let report = reg.load_dirs(&[fixtures().join("mixed")]);
    let mut names: Vec<&str> = report.models.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["MixedA:1.0", "MixedC:2.3"]);
    assert_eq!(report.errors.len(), 1);
    let e = &report.errors[0];
    assert!(matches!(e, DmError::Xml { .. }), "{e:?}");
    assert!(e.file().ends_with("b-bad.xml"));
    assert_eq!(e.line(), 6);
    // The good ones are usable; the service model is found by its root.
    assert!(reg.model("MixedA:1.0").is_some());
    let svc = reg.model_for_root("MixedC.").unwrap();
    assert!(svc.is_service());
    // A service model also answers for its mounted path.
    assert!(matches!(
        svc.lookup("Device.Services.MixedC.2.Name"),
        Lookup::Parameter { .. }
    ));
    assert!(matches!(
        svc.lookup("MixedC.2.Name"),
        Lookup::Parameter { .. }
    ));
}

#[test]
fn doctype_is_refused() {
    let err = load("doctype/tr-904-doctype.xml").unwrap_err();
    assert!(matches!(err, DmError::DocType { line: 2, .. }), "{err:?}");
    // Also from memory, and an entity reference without a DOCTYPE is an error, not expanded.
    let mut reg = Registry::new();
    let xml = br#"<dm:document xmlns:dm="urn:broadband-forum-org:cwmp:datamodel-1-15" spec="x">
      <model name="E:1.0"><object name="E." version="1.0"><description>&ext;</description></object></model>
    </dm:document>"#;
    let err = reg.load_bytes("entity.xml", xml).unwrap_err();
    assert!(matches!(err, DmError::Xml { line: 2, .. }), "{err:?}");
}

#[test]
fn unknown_namespace_is_refused() {
    let err = load("namespace/dt-instance.xml").unwrap_err();
    match &err {
        DmError::Namespace { namespace, .. } => {
            assert_eq!(namespace, "urn:broadband-forum-org:cwmp:devicetype-1-15")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn import_cycle_is_an_error() {
    let err = load("cycle/tr-905-a.xml").unwrap_err();
    assert!(err.to_string().contains("import cycle"), "{err}");
}

#[test]
fn load_dirs_of_the_import_fixtures() {
    let mut reg = Registry::new();
    let report = reg.load_dirs(&[fixtures().join("imports")]);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let mut names: Vec<&str> = report.models.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["Acme:1.0", "Acme:1.1"]);
    assert_eq!(reg.model_for_root("Acme").unwrap().name(), "Acme:1.1");
}

#[test]
fn malformed_input_is_an_error_not_a_panic() {
    let cases: &[&[u8]] = &[
        b"",
        b"<",
        b"not xml at all",
        b"\xff\xfe\x00<",
        br#"<dm:document xmlns:dm="urn:broadband-forum-org:cwmp:datamodel-1-15">"#,
        br#"<dm:document xmlns:dm="urn:broadband-forum-org:cwmp:datamodel-1-15"><model name="A:1.0"><object name="A." version="1.0"></model></dm:document>"#,
        br#"<dm:document xmlns:dm="urn:broadband-forum-org:cwmp:datamodel-1-15"><model name="A:1.0"><object name="A." access="sometimes" version="1.0"/></model></dm:document>"#,
        br#"<dm:document xmlns:dm="urn:broadband-forum-org:cwmp:datamodel-1-15"><model name="A:1.0"><object name="A" version="1.0"/></model></dm:document>"#,
        br#"<dm:document xmlns:dm="urn:broadband-forum-org:cwmp:datamodel-1-15"><model name="A:1.0"><object base="A." version="1.0"/></model></dm:document>"#,
        br#"<dm:document xmlns:dm="urn:broadband-forum-org:cwmp:datamodel-1-15"><model name="A:1.0"><component ref="Nope"/></model></dm:document>"#,
        br#"<dm:document xmlns:dm="urn:broadband-forum-org:cwmp:datamodel-1-15"><model name="A:1.0" base="Z:1.0"/></dm:document>"#,
        br#"<dm:document xmlns:dm="urn:broadband-forum-org:cwmp:datamodel-1-15"><component name="C"><component ref="C"/></component><model name="A:1.0"><component ref="C"/></model></dm:document>"#,
        br#"<dm:document xmlns:dm="urn:broadband-forum-org:cwmp:datamodel-1-15"><dataType name="T" base="T"/><model name="A:1.0"><object name="A." version="1.0"><parameter name="P"><syntax><dataType ref="T"/></syntax></parameter></object></model></dm:document>"#,
        br#"<dm:document xmlns:dm="urn:broadband-forum-org:cwmp:datamodel-1-15"></dm:document><extra/>"#,
    ];
    for (i, c) in cases.iter().enumerate() {
        let mut reg = Registry::new();
        let r = reg.load_bytes(&format!("case{i}.xml"), c);
        assert!(r.is_err(), "case {i} loaded: {r:?}");
        let msg = r.unwrap_err().to_string();
        assert!(msg.starts_with(&format!("case{i}.xml")), "case {i}: {msg}");
        eprintln!("case {i}: {msg}");
    }
}

#[test]
fn missing_file() {
    let mut reg = Registry::new();
    let err = reg
        .load_file(&PathBuf::from("/nonexistent/tr-000.xml"))
        .unwrap_err();
    assert!(matches!(err, DmError::Io { .. }));
    let report = reg.load_dirs(&[PathBuf::from("/nonexistent-dir")]);
    assert_eq!(report.errors.len(), 1);
}

#[test]
fn truncated_and_mangled_documents_never_panic() {
    let src = std::fs::read(fixtures().join("imports/tr-900-1-1-0-common.xml")).unwrap();
    let mut reg = Registry::new();
    reg.add_search_dir(fixtures().join("imports"));
    // The intact document loads (it defines no model).
    assert!(reg.load_bytes("intact.xml", &src).unwrap().is_empty());
    let mut errors = 0;
    for cut in (0..src.len()).step_by(3) {
        if reg.load_bytes("cut.xml", &src[..cut]).is_err() {
            errors += 1;
        }
    }
    assert!(errors > src.len() / 4);
    for (i, b) in src.iter().enumerate() {
        if matches!(b, b'<' | b'>' | b'"' | b'/' | b'=' | b'{' | b'.') {
            for rep in [b'x', b'<', b'&', 0xC3] {
                let mut m = src.clone();
                m[i] = rep;
                let _ = reg.load_bytes("mangled.xml", &m);
            }
        }
    }
}
