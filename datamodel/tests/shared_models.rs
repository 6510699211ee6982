//! Models from shared/datamodels (skipped, visibly, when that directory is absent): TR-104
//! VoiceService:2.0 (a service model), and the whole directory through load_dirs.

mod common;

use datamodel::{DmError, Lookup, Registry};

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
    // tr-106-types.xml declares entities in a DOCTYPE: refused (never expanded), reported,
    // and the other files still load.
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    let e = &report.errors[0];
    assert!(matches!(e, DmError::DocType { .. }), "{e:?}");
    assert!(e.file().ends_with("tr-106-types.xml"));
    // The loaded copies replace the built-in ones of the same name.
    assert_eq!(reg.models().count(), 3);
    assert_eq!(
        reg.model("Device:2.19").unwrap().summary().file,
        dir.join("tr-181-2-19-1-cwmp-full.xml")
    );
}
