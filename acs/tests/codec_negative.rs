//! Hostile, broken and sloppy input: what must be rejected (and with which
//! error, since the ACS maps errors to 400/413/8003), and what the lenient
//! parser must accept (checklist §1.11, §8 "Negative checks", §9).

use acs::codec::*;
use std::path::Path;

const ENV_OPEN: &str = r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:cwmp="urn:dslforum-org:cwmp-1-2">"#;

fn wrap(body: &str) -> String {
    format!(
        "{ENV_OPEN}<SOAP-ENV:Header><cwmp:ID SOAP-ENV:mustUnderstand=\"1\">1</cwmp:ID></SOAP-ENV:Header><SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>"
    )
}

fn p(s: &str) -> Result<Envelope, CodecError> {
    parse(s.as_bytes(), &Limits::default())
}

fn ok_rpc(s: &str) -> Rpc {
    match p(s) {
        Ok(Envelope {
            body: Body::Rpc(r), ..
        }) => r,
        other => panic!("expected an RPC, got {other:?}\n{s}"),
    }
}

fn inform_fixture() -> String {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checklist/8.1-inform.xml");
    std::fs::read_to_string(path).unwrap()
}

fn inform_of(s: &str) -> Inform {
    match ok_rpc(s) {
        Rpc::Inform(i) => i,
        other => panic!("not an Inform: {other:?}"),
    }
}

/// Applies a textual mutation that must be present exactly once.
fn mutate(src: &str, from: &str, to: &str) -> String {
    assert_eq!(src.matches(from).count(), 1, "mutation anchor {from:?}");
    src.replacen(from, to, 1)
}

// ---------------------------------------------------------------------------
// Hard rejections
// ---------------------------------------------------------------------------

#[test]
fn doctype_and_entity_bomb_rejected() {
    let bomb = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body><cwmp:Reboot xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><CommandKey>&lol3;</CommandKey></cwmp:Reboot></SOAP-ENV:Body></SOAP-ENV:Envelope>"#;
    assert_eq!(p(bomb), Err(CodecError::Dtd));

    let xxe = r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><x>&xxe;</x>"#;
    assert_eq!(p(xxe), Err(CodecError::Dtd));

    // An entity declaration outside any DOCTYPE is still a DTD attempt.
    let stray = format!("<!ENTITY x \"y\">{}", wrap("<cwmp:GetRPCMethods/>"));
    assert_eq!(p(&stray), Err(CodecError::Dtd));

    let plain_doctype = format!("<!DOCTYPE Envelope>{}", wrap("<cwmp:GetRPCMethods/>"));
    assert_eq!(p(&plain_doctype), Err(CodecError::Dtd));
}

#[test]
fn undeclared_entity_is_malformed_not_expanded() {
    let s = wrap("<cwmp:Reboot><CommandKey>&foo;</CommandKey></cwmp:Reboot>");
    assert!(
        matches!(p(&s), Err(CodecError::Malformed { .. })),
        "{:?}",
        p(&s)
    );
}

#[test]
fn entities_and_char_refs_are_decoded() {
    let s = wrap(
        "<cwmp:Reboot><CommandKey>&amp;&lt;&gt;&quot;&apos;&#x41;&#66;&#xE9;&#x1F600;<![CDATA[<raw&>]]></CommandKey></cwmp:Reboot>",
    );
    assert_eq!(
        ok_rpc(&s),
        Rpc::Reboot(Reboot {
            command_key: "&<>\"'ABé😀<raw&>".into()
        })
    );
}

#[test]
fn malformed_xml_rejected() {
    let cases = [
        wrap("<cwmp:Reboot><CommandKey>x</CommandKey>"), // unclosed
        wrap("<cwmp:Reboot><CommandKey>x</Command></cwmp:Reboot>"), // mismatched
        wrap("<cwmp:Reboot><CommandKey>x</CommandKey></cwmp:Reboot>")[..120].to_string(), // truncated
        "not xml at all".to_string(),
        format!("{}<extra/>", wrap("<cwmp:GetRPCMethods/>")),
        wrap("<cwmp:Reboot a=\"1\" a=\"2\"/>"),
        wrap("<cwmp:Reboot><CommandKey>a & b</CommandKey></cwmp:Reboot>"),
        String::new(),
    ];
    for c in &cases {
        match p(c) {
            Err(CodecError::Malformed { .. }) => {}
            other => panic!("expected Malformed for {c:?}, got {other:?}"),
        }
    }
    // The position points into the document.
    let Err(CodecError::Malformed { position, .. }) =
        p(&wrap("<cwmp:Reboot><CommandKey>x</Command></cwmp:Reboot>"))
    else {
        panic!()
    };
    assert!(position > 0);
}

#[test]
fn soap12_and_non_soap_rejected() {
    let soap12 = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><env:Body><cwmp:GetRPCMethods/></env:Body></env:Envelope>"#;
    assert!(matches!(p(soap12), Err(CodecError::NotSoap(_))));

    let no_ns = r#"<Envelope><Body><cwmp:GetRPCMethods xmlns:cwmp="urn:dslforum-org:cwmp-1-0"/></Body></Envelope>"#;
    assert!(matches!(p(no_ns), Err(CodecError::NotSoap(_))));

    let not_envelope = r#"<html><body>hi</body></html>"#;
    assert!(matches!(p(not_envelope), Err(CodecError::NotSoap(_))));

    let no_body = format!(
        "{ENV_OPEN}<SOAP-ENV:Header><cwmp:ID SOAP-ENV:mustUnderstand=\"1\">1</cwmp:ID></SOAP-ENV:Header></SOAP-ENV:Envelope>"
    );
    assert!(matches!(p(&no_body), Err(CodecError::NotSoap(_))));

    let empty_body = wrap("");
    assert!(matches!(p(&empty_body), Err(CodecError::NotSoap(_))));
}

#[test]
fn wrong_namespace_rejected() {
    let other = wrap(r#"<x:Inform xmlns:x="urn:example:not-cwmp"/>"#);
    assert!(matches!(p(&other), Err(CodecError::BadNamespace(_))));
    let none = wrap("<GetRPCMethods/>");
    assert!(matches!(p(&none), Err(CodecError::BadNamespace(_))));
    let cwmp2 = wrap(r#"<x:GetRPCMethods xmlns:x="urn:dslforum-org:cwmp-2-0"/>"#);
    assert!(matches!(p(&cwmp2), Err(CodecError::BadNamespace(_))));
}

#[test]
fn limits_enforced() {
    let body = wrap("<cwmp:GetRPCMethods/>");
    let small = Limits {
        max_body_bytes: body.len() - 1,
        ..Limits::default()
    };
    assert_eq!(
        parse(body.as_bytes(), &small),
        Err(CodecError::TooLarge {
            size: body.len(),
            limit: body.len() - 1
        })
    );
    // Exactly at the limit is fine.
    let exact = Limits {
        max_body_bytes: body.len(),
        ..Limits::default()
    };
    assert!(parse(body.as_bytes(), &exact).is_ok());
    // Default limit is 8 MiB.
    assert_eq!(Limits::default().max_body_bytes, 8 * 1024 * 1024);
    let huge = vec![b' '; 8 * 1024 * 1024 + 1];
    assert!(matches!(
        parse(&huge, &Limits::default()),
        Err(CodecError::TooLarge { .. })
    ));

    let deep = wrap(&format!(
        "<cwmp:Reboot>{}{}</cwmp:Reboot>",
        "<a>".repeat(200),
        "</a>".repeat(200)
    ));
    assert!(matches!(
        p(&deep),
        Err(CodecError::LimitExceeded {
            what: "nesting depth",
            ..
        })
    ));

    let many = wrap(&format!(
        "<cwmp:GetParameterValues><ParameterNames>{}</ParameterNames></cwmp:GetParameterValues>",
        "<string>x</string>".repeat(100)
    ));
    let few = Limits {
        max_elements: 50,
        ..Limits::default()
    };
    assert!(matches!(
        parse(many.as_bytes(), &few),
        Err(CodecError::LimitExceeded {
            what: "element count",
            ..
        })
    ));
    assert!(p(&many).is_ok());
}

/// One element with 100,000 attributes, or with 100,000 namespace declarations, and more
/// declarations across a document than the bound: refused while the tag is read.
#[test]
fn attribute_and_namespace_floods_are_refused() {
    let attrs: String = (0..100_000).map(|i| format!(" a{i}=\"\"")).collect();
    let flood = wrap(&format!("<cwmp:Reboot{attrs}><CommandKey/></cwmp:Reboot>"));
    assert!(matches!(
        p(&flood),
        Err(CodecError::LimitExceeded {
            what: "attributes on one element",
            limit: 64
        })
    ));
    let decls: String = (0..100_000)
        .map(|i| format!(" xmlns:n{i}=\"u{i}\""))
        .collect();
    let flood = wrap(&format!("<cwmp:Reboot{decls}><CommandKey/></cwmp:Reboot>"));
    assert!(matches!(
        p(&flood),
        Err(CodecError::LimitExceeded {
            what: "attributes on one element",
            ..
        })
    ));
    // 64 attributes pass; so do 256 declarations in the document, not 257.
    let at_limit: String = (0..64).map(|i| format!(" a{i}=\"\"")).collect();
    let ok = wrap(&format!(
        "<cwmp:Reboot{at_limit}><CommandKey/></cwmp:Reboot>"
    ));
    assert!(p(&ok).is_ok(), "{:?}", p(&ok));
    let spread = |n: usize| {
        let per: String = (0..n).map(|i| format!("<x xmlns:q{i}=\"u\"/>")).collect();
        wrap(&format!("<cwmp:Reboot><CommandKey/>{per}</cwmp:Reboot>"))
    };
    // `wrap`'s envelope declares some namespaces itself.
    let own = wrap("<cwmp:Reboot><CommandKey/></cwmp:Reboot>")
        .matches(" xmlns")
        .count();
    assert!(p(&spread(256 - own)).is_ok());
    assert!(matches!(
        p(&spread(257 - own)),
        Err(CodecError::LimitExceeded {
            what: "namespace declarations",
            limit: 256
        })
    ));
}

#[test]
fn unusable_inform_is_invalid_arguments() {
    let src = inform_fixture();
    let start = src.find("<DeviceId>").unwrap();
    let end = src.find("</DeviceId>").unwrap() + "</DeviceId>".len();
    let no_device = format!("{}{}", &src[..start], &src[end..]);
    match p(&no_device) {
        Err(CodecError::InvalidArguments { method, .. }) => assert_eq!(method, "Inform"),
        other => panic!("{other:?}"),
    }
    let empty_serial = mutate(
        &src,
        "<SerialNumber>SN0123456789</SerialNumber>",
        "<SerialNumber></SerialNumber>",
    );
    assert!(matches!(
        p(&empty_serial),
        Err(CodecError::InvalidArguments { .. })
    ));
    let no_oui = mutate(&src, "<OUI>001A2B</OUI>", "");
    assert!(matches!(
        p(&no_oui),
        Err(CodecError::InvalidArguments { .. })
    ));
}

#[test]
fn invalid_arguments_of_other_methods() {
    let cases = [
        ("GetParameterNames", "<cwmp:GetParameterNames><ParameterPath>Device.</ParameterPath><NextLevel>maybe</NextLevel></cwmp:GetParameterNames>"),
        ("GetParameterNames", "<cwmp:GetParameterNames><ParameterPath>Device.</ParameterPath></cwmp:GetParameterNames>"),
        ("GetParameterValues", "<cwmp:GetParameterValues/>"),
        ("SetParameterValues", "<cwmp:SetParameterValues><ParameterKey/></cwmp:SetParameterValues>"),
        ("SetParameterValues", "<cwmp:SetParameterValues><ParameterList><ParameterValueStruct><Value>1</Value></ParameterValueStruct></ParameterList><ParameterKey/></cwmp:SetParameterValues>"),
        ("AddObject", "<cwmp:AddObject><ParameterKey/></cwmp:AddObject>"),
        ("AddObjectResponse", "<cwmp:AddObjectResponse><InstanceNumber>-3</InstanceNumber><Status>0</Status></cwmp:AddObjectResponse>"),
        ("Download", "<cwmp:Download><CommandKey>k</CommandKey><FileType>1 Firmware Upgrade Image</FileType></cwmp:Download>"),
        ("Download", "<cwmp:Download><FileType>1 Firmware Upgrade Image</FileType><URL>http://x/</URL><FileSize>big</FileSize></cwmp:Download>"),
        ("ScheduleInform", "<cwmp:ScheduleInform><CommandKey>k</CommandKey></cwmp:ScheduleInform>"),
        ("TransferComplete", "<cwmp:TransferComplete><CommandKey>k</CommandKey><StartTime/><CompleteTime/></cwmp:TransferComplete>"),
        ("ChangeDUState", "<cwmp:ChangeDUState><CommandKey>k</CommandKey></cwmp:ChangeDUState>"),
        ("ChangeDUState", "<cwmp:ChangeDUState><Operations><URL>x</URL></Operations></cwmp:ChangeDUState>"),
        ("ChangeDUState", "<cwmp:ChangeDUState><Operations xsi:type=\"cwmp:UninstallOpStruct\"><Version>1</Version></Operations></cwmp:ChangeDUState>"),
        ("ChangeDUState", "<cwmp:ChangeDUState><Operations xsi:type=\"cwmp:FrobOpStruct\"><UUID>1</UUID></Operations></cwmp:ChangeDUState>"),
        ("SetParameterValuesResponse", "<cwmp:SetParameterValuesResponse/>"),
    ];
    for (method, body) in cases {
        match p(&wrap(body)) {
            Err(CodecError::InvalidArguments { method: m, reason }) => {
                assert_eq!(m, method, "{body}");
                assert!(!reason.is_empty());
            }
            other => panic!("expected InvalidArguments for {body}, got {other:?}"),
        }
    }
}

#[test]
fn names_are_trimmed_values_are_not() {
    let s = wrap(
        "<cwmp:GetParameterValues><ParameterNames>\n  <string>\n    Device.DeviceInfo.\n  </string>\n</ParameterNames></cwmp:GetParameterValues>",
    );
    assert_eq!(
        ok_rpc(&s),
        Rpc::GetParameterValues(GetParameterValues {
            parameter_names: vec!["Device.DeviceInfo.".into()]
        })
    );
    let s = wrap(
        "<cwmp:SetParameterValues><ParameterList><ParameterValueStruct><Name> Device.X </Name><Value> v </Value></ParameterValueStruct></ParameterList><ParameterKey>k</ParameterKey></cwmp:SetParameterValues>",
    );
    let Rpc::SetParameterValues(r) = ok_rpc(&s) else {
        panic!()
    };
    assert_eq!(r.parameter_list[0].name, "Device.X");
    assert_eq!(r.parameter_list[0].value, " v ");
}

#[test]
fn unknown_method_is_ok_unknown() {
    let r = ok_rpc(&wrap(
        "<cwmp:X_ACME_Frobnicate><Foo>1</Foo></cwmp:X_ACME_Frobnicate>",
    ));
    assert_eq!(
        r,
        Rpc::Unknown {
            name: "X_ACME_Frobnicate".into()
        }
    );
    assert!(!r.is_response());
}

// ---------------------------------------------------------------------------
// Lenient acceptance: checklist §8 "Negative checks" on the 8.1 Inform
// ---------------------------------------------------------------------------

#[test]
fn lenient_lower_case_oui() {
    let i = inform_of(&mutate(
        &inform_fixture(),
        "<OUI>001A2B</OUI>",
        "<OUI>001a2b</OUI>",
    ));
    assert_eq!(i.device_id.oui, "001a2b", "raw value kept");
    assert_eq!(i.device_id.canonical_id(), "001A2B-HGW%2D1000-SN0123456789");
}

#[test]
fn lenient_missing_or_wrong_array_type() {
    let src = inform_fixture();
    let i = inform_of(&mutate(
        &src,
        r#"<Event SOAP-ENC:arrayType="cwmp:EventStruct[2]">"#,
        "<Event>",
    ));
    assert_eq!(i.event.len(), 2);
    let i = inform_of(&mutate(
        &src,
        "cwmp:EventStruct[2]",
        "cwmp:EventStruct[0008]",
    ));
    assert_eq!(i.event.len(), 2);
    let i = inform_of(&mutate(
        &src,
        "cwmp:ParameterValueStruct[7]",
        "cwmp:ParameterValueStruct[1]",
    ));
    assert_eq!(i.parameter_list.len(), 7);
    // xsi:type="SOAP-ENC:Array" added (GH#82 style).
    let i = inform_of(&mutate(
        &src,
        r#"<ParameterList SOAP-ENC:arrayType="cwmp:ParameterValueStruct[7]">"#,
        r#"<ParameterList xsi:type="SOAP-ENC:Array" SOAP-ENC:arrayType="cwmp:ParameterValueStruct[0007]">"#,
    ));
    assert_eq!(i.parameter_list.len(), 7);
}

#[test]
fn lenient_qualified_child() {
    let i = inform_of(&mutate(
        &inform_fixture(),
        "<MaxEnvelopes>1</MaxEnvelopes>",
        "<cwmp:MaxEnvelopes>1</cwmp:MaxEnvelopes>",
    ));
    assert_eq!(i.max_envelopes, 1);
}

#[test]
fn lenient_negative_or_missing_retry_count() {
    let src = inform_fixture();
    let i = inform_of(&mutate(
        &src,
        "<RetryCount>0</RetryCount>",
        "<RetryCount>-1</RetryCount>",
    ));
    assert_eq!(i.retry_count, 0);
    let i = inform_of(&mutate(&src, "<RetryCount>0</RetryCount>", ""));
    assert_eq!(i.retry_count, 0);
    let i = inform_of(&mutate(
        &src,
        "<RetryCount>0</RetryCount>",
        "<RetryCount> 4 </RetryCount>",
    ));
    assert_eq!(i.retry_count, 4);
}

#[test]
fn lenient_swapped_order() {
    let src = inform_fixture();
    let swapped = mutate(
        &src,
        "<MaxEnvelopes>1</MaxEnvelopes>\n      <CurrentTime>2024-05-01T14:00:00+02:00</CurrentTime>",
        "<CurrentTime>2024-05-01T14:00:00+02:00</CurrentTime>\n      <MaxEnvelopes>1</MaxEnvelopes>",
    );
    assert_eq!(inform_of(&swapped), inform_of(&src));
    // Whole argument list reversed, too.
    let env = r#"<cwmp:Inform><ParameterList/><RetryCount>2</RetryCount><CurrentTime>x</CurrentTime><MaxEnvelopes>1</MaxEnvelopes><Event/><DeviceId><SerialNumber>S</SerialNumber><OUI>00A859</OUI></DeviceId></cwmp:Inform>"#;
    let i = inform_of(&wrap(env));
    assert_eq!(i.retry_count, 2);
    assert_eq!(i.device_id.serial_number, "S");
    assert_eq!(i.device_id.product_class, "");
}

#[test]
fn lenient_booleans() {
    // `False` as a boolean value inside a ParameterValueStruct stays raw.
    let i = inform_of(&mutate(
        &inform_fixture(),
        r#"<Value xsi:type="xsd:boolean">false</Value>"#,
        r#"<Value xsi:type="xsd:boolean">False</Value>"#,
    ));
    assert_eq!(i.parameter_list[6].value, "False");
    // Boolean arguments: true/false/1/0/True/FALSE all accepted.
    for (lit, expect) in [
        ("true", true),
        ("false", false),
        ("1", true),
        ("0", false),
        ("True", true),
        ("FALSE", false),
        (" true ", true),
    ] {
        let s = wrap(&format!(
            "<cwmp:GetParameterNames><ParameterPath>Device.</ParameterPath><NextLevel>{lit}</NextLevel></cwmp:GetParameterNames>"
        ));
        assert_eq!(
            ok_rpc(&s),
            Rpc::GetParameterNames(GetParameterNames {
                parameter_path: "Device.".into(),
                next_level: expect
            }),
            "{lit}"
        );
    }
}

#[test]
fn lenient_must_understand_true() {
    let env = p(&mutate(
        &inform_fixture(),
        r#"<cwmp:ID SOAP-ENV:mustUnderstand="1">"#,
        r#"<cwmp:ID SOAP-ENV:mustUnderstand="true">"#,
    ))
    .unwrap();
    assert_eq!(env.header.id.as_deref(), Some("cpe-1001"));
}

#[test]
fn lenient_cwmp_1_3_and_1_4_namespaces() {
    for ns in ["urn:dslforum-org:cwmp-1-3", "urn:dslforum-org:cwmp-1-4"] {
        let env = p(&mutate(&inform_fixture(), "urn:dslforum-org:cwmp-1-2", ns)).unwrap();
        assert_eq!(env.ns, ns, "exact URI kept for echoing");
    }
}

#[test]
fn lenient_event_codes_and_times() {
    let src = inform_fixture();
    let i = inform_of(&mutate(
        &src,
        "<EventCode>1 BOOT</EventCode>",
        "<EventCode>BOOT</EventCode>",
    ));
    assert_eq!(i.event[1].event_code, "BOOT");
    let i = inform_of(&mutate(
        &src,
        "<EventCode>1 BOOT</EventCode>",
        "<EventCode>1 boot</EventCode>",
    ));
    assert_eq!(i.event[1].event_code, "1 boot");
    let i = inform_of(&mutate(
        &src,
        "2024-05-01T14:00:00+02:00",
        "2024-05-01T14:00:00",
    ));
    assert_eq!(i.current_time, "2024-05-01T14:00:00");
    assert!(parse_datetime_lenient(&i.current_time).is_some());
    let i = inform_of(&mutate(
        &src,
        "2024-05-01T14:00:00+02:00",
        "2019-03-05T11:54::14",
    ));
    assert_eq!(i.current_time, "2019-03-05T11:54::14");
    let i = inform_of(&mutate(&src, "2024-05-01T14:00:00+02:00", "garbage"));
    assert_eq!(i.current_time, "garbage");
    assert_eq!(parse_datetime_lenient(&i.current_time), None);
}

// ---------------------------------------------------------------------------
// Other lenient behaviour
// ---------------------------------------------------------------------------

#[test]
fn values_empty_and_untyped() {
    let s = wrap(
        r#"<cwmp:GetParameterValuesResponse><ParameterList SOAP-ENC:arrayType="cwmp:ParameterValueStruct[4]">
<ParameterValueStruct><Name>A</Name><Value/></ParameterValueStruct>
<ParameterValueStruct><Name>B</Name><Value xsi:type="xsd:string"/></ParameterValueStruct>
<ParameterValueStruct><Name>C</Name><Value>plain</Value></ParameterValueStruct>
<ParameterValueStruct><Value xmlns:xs="http://www.w3.org/2001/XMLSchema" xsi:type="xs:int"> 7 </Value><Name>D</Name></ParameterValueStruct>
</ParameterList></cwmp:GetParameterValuesResponse>"#,
    );
    let Rpc::GetParameterValuesResponse(r) = ok_rpc(&s) else {
        panic!()
    };
    let v = |n: &str, val: &str, t: Option<&str>| ParameterValueStruct {
        name: n.into(),
        value: val.into(),
        xsi_type: t.map(str::to_string),
    };
    assert_eq!(
        r.parameter_list,
        vec![
            v("A", "", None),
            v("B", "", Some("xsd:string")),
            v("C", "plain", None),
            // Other prefix bound to XSD is normalised; value kept verbatim.
            v("D", " 7 ", Some("xsd:int")),
        ]
    );
}

#[test]
fn headers_lenient() {
    let s = format!(
        "{ENV_OPEN}<SOAP-ENV:Header>\
<cwmp:id SOAP-ENV:mustUnderstand=\"1\">inform</cwmp:id>\
<cwmp:NoMoreRequests SOAP-ENV:mustUnderstand=\"1\">1</cwmp:NoMoreRequests>\
<cwmp:sessionTimeout>45</cwmp:sessionTimeout>\
<cwmp:HOLDREQUESTS SOAP-ENV:mustUnderstand=\"1\">0</cwmp:HOLDREQUESTS>\
<x:Vendor xmlns:x=\"urn:x\" SOAP-ENV:mustUnderstand=\"1\">v</x:Vendor>\
<x:Optional xmlns:x=\"urn:x\" SOAP-ENV:mustUnderstand=\"0\">v</x:Optional>\
</SOAP-ENV:Header><SOAP-ENV:Body><cwmp:GetRPCMethods/></SOAP-ENV:Body></SOAP-ENV:Envelope>"
    );
    let env = p(&s).unwrap();
    assert_eq!(
        env.header,
        Header {
            id: Some("inform".into()),
            hold_requests: Some(false),
            session_timeout: Some(45),
            supported_cwmp_versions: None,
            use_cwmp_version: None,
            no_more_requests: Some(true),
            unknown_must_understand: vec!["Vendor".into()],
        }
    );
}

#[test]
fn prefix_agnostic() {
    // Arbitrary prefixes, and default namespaces for both envelope and RPC.
    let a = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:c="urn:dslforum-org:cwmp-1-1"><s:Header><c:ID s:mustUnderstand="1">9</c:ID></s:Header><s:Body><c:Reboot><CommandKey>k</CommandKey></c:Reboot></s:Body></s:Envelope>"#;
    let b = r#"<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Header><ID xmlns="urn:dslforum-org:cwmp-1-1">9</ID></Header><Body><Reboot xmlns="urn:dslforum-org:cwmp-1-1"><CommandKey xmlns="">k</CommandKey></Reboot></Body></Envelope>"#;
    for s in [a, b] {
        let env = p(s).unwrap();
        assert_eq!(env.ns, "urn:dslforum-org:cwmp-1-1");
        assert_eq!(env.header.id.as_deref(), Some("9"));
        assert_eq!(
            env.body,
            Body::Rpc(Rpc::Reboot(Reboot {
                command_key: "k".into()
            }))
        );
    }
    // Same prefix "cwmp" bound to the SOAP namespace elsewhere must not fool us.
    let tricky = r#"<cwmp:Envelope xmlns:cwmp="http://schemas.xmlsoap.org/soap/envelope/"><cwmp:Body><r:GetRPCMethods xmlns:r="urn:dslforum-org:cwmp-1-0"/></cwmp:Body></cwmp:Envelope>"#;
    assert_eq!(p(tricky).unwrap().ns, "urn:dslforum-org:cwmp-1-0");
}

#[test]
fn cpe_fault_variants() {
    for fc in [
        "Client",
        "Server",
        "SOAP-ENV:Client",
        "soap:Server",
        " Server ",
    ] {
        let s = wrap(&format!(
            "<SOAP-ENV:Fault><faultcode>{fc}</faultcode><faultstring>CWMP fault</faultstring><detail><x:Fault xmlns:x=\"urn:dslforum-org:cwmp-1-0\"><FaultCode>9005</FaultCode><FaultString>Invalid parameter name</FaultString></x:Fault></detail></SOAP-ENV:Fault>"
        ));
        let env = p(&s).unwrap();
        let Body::Fault(f) = env.body else { panic!() };
        assert!(f.faultcode == "Client" || f.faultcode == "Server", "{fc}");
        assert_eq!(f.detail.fault_code, 9005);
        assert_eq!(f.detail.fault_string, "Invalid parameter name");
        assert_eq!(
            env.ns, "urn:dslforum-org:cwmp-1-0",
            "ns from the cwmp:Fault element"
        );
    }
    // A bare cwmp:Fault directly in Body (no SOAP Fault wrapper).
    let s = wrap("<cwmp:Fault><FaultCode>9002</FaultCode><FaultString>Internal error</FaultString></cwmp:Fault>");
    let env = p(&s).unwrap();
    assert_eq!(env.body, Body::Fault(Fault::cpe(9002, "Internal error")));
    let again = parse(
        &serialize(&env, &OutputStyle::default()),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(again, env);
    // SOAP fault without CWMP detail (e.g. a MustUnderstand fault).
    let s = wrap("<SOAP-ENV:Fault><faultcode>SOAP-ENV:MustUnderstand</faultcode><faultstring>Header not understood</faultstring></SOAP-ENV:Fault>");
    let env = p(&s).unwrap();
    assert_eq!(env.ns, "urn:dslforum-org:cwmp-1-2");
    let Body::Fault(f) = env.body else { panic!() };
    assert_eq!(f.faultcode, "MustUnderstand");
    assert_eq!(f.detail.fault_code, 0);
    assert_eq!(f.detail.fault_string, "Header not understood");
}

#[test]
fn character_decoding() {
    // ISO-8859-1 declared: byte 0xE9 is 'é'.
    let mut latin1 = br#"<?xml version="1.0" encoding="ISO-8859-1"?>"#.to_vec();
    latin1.extend_from_slice(
        wrap("<cwmp:Reboot><CommandKey>caf\u{0}</CommandKey></cwmp:Reboot>")
            .replace('\u{0}', "#")
            .as_bytes(),
    );
    let pos = latin1.iter().position(|&b| b == b'#').unwrap();
    latin1[pos] = 0xE9;
    let env = parse(&latin1, &Limits::default()).unwrap();
    assert_eq!(
        env.body,
        Body::Rpc(Rpc::Reboot(Reboot {
            command_key: "café".into()
        }))
    );
    // Declared UTF-8 but invalid: falls back to Latin-1 instead of failing.
    let mut bad = br#"<?xml version="1.0" encoding="UTF-8"?>"#.to_vec();
    bad.extend_from_slice(&latin1[latin1.iter().position(|&b| b == b'>').unwrap() + 1..]);
    let env = parse(&bad, &Limits::default()).unwrap();
    assert_eq!(
        env.body,
        Body::Rpc(Rpc::Reboot(Reboot {
            command_key: "café".into()
        }))
    );
    // Proper UTF-8 with a BOM.
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice(
        wrap("<cwmp:Reboot><CommandKey>日本</CommandKey></cwmp:Reboot>").as_bytes(),
    );
    let env = parse(&bom, &Limits::default()).unwrap();
    assert_eq!(
        env.body,
        Body::Rpc(Rpc::Reboot(Reboot {
            command_key: "日本".into()
        }))
    );
}

#[test]
fn wrapped_du_forms_accepted() {
    // Non-XSD forms seen from generators (checklist §9 P27).
    let s = wrap(
        "<cwmp:ChangeDUState><Operations><InstallOpStruct><URL>http://x/a.ipk</URL></InstallOpStruct></Operations><CommandKey>k</CommandKey></cwmp:ChangeDUState>",
    );
    assert_eq!(
        ok_rpc(&s),
        Rpc::ChangeDUState(ChangeDUState {
            operations: vec![OperationStruct::Install(InstallOpStruct {
                url: "http://x/a.ipk".into(),
                ..Default::default()
            })],
            command_key: Some("k".into()),
        })
    );
    let s = wrap(
        "<cwmp:DUStateChangeComplete><Results SOAP-ENC:arrayType=\"cwmp:OpResultStruct[2]\"><OpResultStruct><UUID>u1</UUID><CurrentState>Installed</CurrentState><Resolved>1</Resolved><Fault><FaultCode>0</FaultCode></Fault></OpResultStruct><OpResultStruct><UUID>u2</UUID><CurrentState>Failed</CurrentState><Resolved>0</Resolved><Fault><FaultCode>9028</FaultCode><FaultString>Unknown DU</FaultString></Fault></OpResultStruct></Results></cwmp:DUStateChangeComplete>",
    );
    let Rpc::DUStateChangeComplete(r) = ok_rpc(&s) else {
        panic!()
    };
    assert_eq!(r.results.len(), 2);
    assert_eq!(r.results[0].uuid, "u1");
    assert!(r.results[0].resolved);
    assert_eq!(r.results[1].fault.fault_code, 9028);
    assert_eq!(r.command_key, None);
}

#[test]
fn empty_body_classification() {
    for b in [&b""[..], b"   ", b"\r\n", b"\r\n\r\n \t"] {
        assert!(is_empty_body(b), "{b:?}");
    }
    for b in [&b"<"[..], b" x ", b"\r\n<a/>"] {
        assert!(!is_empty_body(b), "{b:?}");
    }
}

#[test]
fn set_parameter_attributes_lenient_notification() {
    // G's bug: empty <Notification/> when unchanged (checklist §9 P25).
    let s = wrap(
        r#"<cwmp:SetParameterAttributes><ParameterList><SetParameterAttributesStruct><Name>Device.</Name><NotificationChange>0</NotificationChange><Notification/><AccessListChange>1</AccessListChange><AccessList><string>Subscriber</string></AccessList></SetParameterAttributesStruct></ParameterList></cwmp:SetParameterAttributes>"#,
    );
    assert_eq!(
        ok_rpc(&s),
        Rpc::SetParameterAttributes(SetParameterAttributes {
            parameter_list: vec![SetParameterAttributesStruct {
                name: "Device.".into(),
                notification_change: false,
                notification: 0,
                access_list_change: true,
                access_list: vec!["Subscriber".into()],
            }]
        })
    );
}

#[test]
fn error_display_is_informative() {
    let e = p(&wrap("<cwmp:AddObject/>")).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("AddObject") && msg.contains("ObjectName"),
        "{msg}"
    );
    assert!(CodecError::Dtd.to_string().contains("DOCTYPE"));
}
