//! Models from shared/datamodels (skipped, visibly, when that directory is absent): TR-104
//! VoiceService:2.0 (a service model), and the whole directory through load_dirs.

mod common;

use datamodel::{Lookup, Registry};

#[test]
fn tr104_voice_service_loads() {
    let Some(dir) = common::shared_or_skip("tr104_voice_service_loads") else {
        return;
    };
    let mut reg = Registry::new();
    let s = reg
        .load_file(&dir.join("tr-104-2-0-2-cwmp-full.xml"))
        .expect("TR-104 loads");
    assert_eq!(s.len(), 1);
    let s = &s[0];
    assert_eq!(s.name, "VoiceService:2.0");
    assert!(s.is_service);
    assert_eq!(s.root, "VoiceService.");
    // Figures from shared/spec/tr181-notes.md ("Other models").
    assert_eq!(
        (s.objects, s.parameters, s.multi_instance, s.profiles),
        (113, 848, 56, 21)
    );
    assert_eq!((s.live_objects, s.live_parameters), (113, 848));

    let m = reg.model_for_root("VoiceService.").unwrap();
    // The model-level parameter of the mount point is kept, outside the objects.
    assert_eq!(m.model_parameters().len(), 1);
    assert_eq!(m.model_parameters()[0].name, "VoiceServiceNumberOfEntries");
    // Paths as the CPE reports them (mounted under Device.Services.) and bare.
    for p in [
        "Device.Services.VoiceService.1.Capabilities.MaxLineCount",
        "VoiceService.1.Capabilities.MaxLineCount",
        "InternetGatewayDevice.Services.VoiceService.1.Capabilities.MaxLineCount",
    ] {
        assert!(matches!(m.lookup(p), Lookup::Parameter { .. }), "{p}");
        assert_eq!(m.xsd_type(p), Some("xsd:int"), "{p}"); // int, range -1..
        assert!(m.validate(p, "-2").is_err(), "{p}");
    }
    assert!(matches!(
        m.lookup("Device.Services.VoiceService.1.X_ACME_Thing"),
        Lookup::VendorExtension
    ));
}

#[test]
fn shared_tr181_file_matches_the_builtin_copy() {
    let Some(dir) = common::shared_or_skip("shared_tr181_file_matches_the_builtin_copy") else {
        return;
    };
    let mut reg = Registry::new();
    let s = reg
        .load_file(&dir.join("tr-181-2-19-1-cwmp-full.xml"))
        .expect("TR-181 loads");
    let builtin = common::builtin().model("Device:2.19").unwrap().summary();
    let mut expected = builtin.clone();
    expected.file = s[0].file.clone();
    assert_eq!(s[0], expected);
}

#[test]
fn load_dirs_over_shared_datamodels() {
    let Some(dir) = common::shared_or_skip("load_dirs_over_shared_datamodels") else {
        return;
    };
    let mut reg = Registry::builtin().unwrap();
    let report = reg.load_dirs(std::slice::from_ref(&dir));
    let mut names: Vec<&str> = report.models.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "Device:2.19",
            "InternetGatewayDevice:1.14",
            "VoiceService:2.0"
        ]
    );
    // tr-106-types.xml declares entities in a DOCTYPE, which we never process: our embedded
    // pre-expanded copy is read in its place, so the whole directory loads.
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    // The loaded copies replace the built-in ones of the same name.
    assert_eq!(reg.models().count(), 3);
    assert_eq!(
        reg.model("Device:2.19").unwrap().summary().file,
        dir.join("tr-181-2-19-1-cwmp-full.xml")
    );
}

/// A source model importing named types from BBF's own tr-106-types.xml (published with a
/// DOCTYPE) loads through the pre-expanded copy, and the imported patterns validate.
#[test]
fn source_model_importing_bbf_types() {
    let Some(shared) = common::shared_or_skip("source_model_importing_bbf_types") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for f in ["tr-106-types.xml", "tr-069-biblio.xml"] {
        std::fs::copy(shared.join(f), dir.path().join(f)).unwrap();
    }
    std::fs::write(
        dir.path().join("tr-999-1-0-0.xml"),
        r#"<?xml version="1.0" encoding="UTF-8"?>
<dm:document xmlns:dm="urn:broadband-forum-org:cwmp:datamodel-1-14"
    spec="urn:example-org:tr-999-1-0-0" file="tr-999-1-0-0.xml">
  <import file="tr-106-types.xml" spec="urn:broadband-forum-org:tr-106-types">
    <dataType name="IPv4Address"/>
    <dataType name="MACAddress"/>
  </import>
  <model name="Gadget:1.0">
    <object name="Gadget." access="readOnly" minEntries="1" maxEntries="1">
      <description>Root.</description>
      <parameter name="Address" access="readWrite">
        <description>An address.</description>
        <syntax><dataType ref="IPv4Address"/></syntax>
      </parameter>
      <parameter name="MAC" access="readWrite">
        <description>A MAC.</description>
        <syntax><dataType ref="MACAddress"/></syntax>
      </parameter>
    </object>
  </model>
</dm:document>
"#,
    )
    .unwrap();
    let mut reg = Registry::new();
    let report = reg.load_dirs(&[dir.path().to_path_buf()]);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let m = reg.model("Gadget:1.0").expect("model loaded");
    assert!(m.validate("Gadget.Address", "192.168.1.1").is_ok());
    assert!(
        m.validate("Gadget.Address", "192.168.1.300").is_err(),
        "octet pattern applies"
    );
    assert!(m.validate("Gadget.MAC", "00:1A:2B:3C:4D:5E").is_ok());
    assert!(m.validate("Gadget.MAC", "00:1A:2B").is_err());
}
