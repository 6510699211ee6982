//! CPE authentication (checklist §1.9, vectors of §8.13).

use std::cell::Cell;
use std::time::{Duration, SystemTime};

use acs::auth::{
    ha1, verify_digest_response, AuthConfig, AuthResult, Authenticator, DigestAlgorithm, Request,
    Secret,
};
use md5::{Digest as _, Md5};

const USER: &str = "001A2B-HGW%2D1000-SN0123456789";
const PASS: &str = "cpepass";

/// The authenticated POST of §8.13, verbatim.
const HDR_8_13: &str = r#"Digest username="001A2B-HGW%2D1000-SN0123456789", realm="ACS", nonce="6f1c2d3e4a5b6c7d", uri="/acs", qop=auth, nc=00000001, cnonce="9b8a7c6d", opaque="5ccc069c403ebaf9", algorithm=MD5, response="e4daaa62702a023da575871a508c73b4""#;

fn md5_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

fn authenticator(algorithms: Vec<DigestAlgorithm>) -> Authenticator {
    Authenticator::new(
        AuthConfig {
            realm: "ACS".into(),
            algorithms,
            ..AuthConfig::default()
        },
        [7u8; 32],
    )
}

fn lookup(name: &str) -> Option<String> {
    (name == USER).then(|| PASS.to_owned())
}

/// Answer a challenge the way a CPE would, with digest_auth as the client.
fn respond(challenge: &str, user: &str, pass: &str, uri: &str) -> String {
    let params = challenge.strip_prefix("Digest ").expect("Digest challenge");
    let mut prompt = digest_auth::WwwAuthenticateHeader::parse(params).unwrap();
    let ctx = digest_auth::AuthContext::new_post(user, pass, uri, Option::<&[u8]>::None);
    prompt.respond(&ctx).unwrap().to_header_string()
}

#[test]
fn section_8_13_vector_values() {
    let ha1 = md5_hex(&format!("{USER}:ACS:{PASS}"));
    assert_eq!(ha1, "0c8b77bb57642f9615e265abb4acadc9");
    let ha2 = md5_hex("POST:/acs");
    assert_eq!(ha2, "334060bd00980103fc749e9449189417");
    let response = md5_hex(&format!(
        "{ha1}:6f1c2d3e4a5b6c7d:00000001:9b8a7c6d:auth:{ha2}"
    ));
    assert_eq!(response, "e4daaa62702a023da575871a508c73b4");
}

#[test]
fn section_8_13_header_verifies() {
    assert!(verify_digest_response(HDR_8_13, "POST", PASS));
    // Also without the scheme token, and with upper-case hex in the response.
    let bare = HDR_8_13.strip_prefix("Digest ").unwrap();
    assert!(verify_digest_response(bare, "POST", PASS));
    let upper = HDR_8_13.replace(
        "e4daaa62702a023da575871a508c73b4",
        "E4DAAA62702A023DA575871A508C73B4",
    );
    assert!(verify_digest_response(&upper, "POST", PASS));
}

#[test]
fn section_8_13_header_rejects_wrong_inputs() {
    assert!(!verify_digest_response(HDR_8_13, "POST", "cpepasS"));
    assert!(!verify_digest_response(HDR_8_13, "GET", PASS));
    let other_nc = HDR_8_13.replace("nc=00000001", "nc=00000002");
    assert!(!verify_digest_response(&other_nc, "POST", PASS));
    assert!(!verify_digest_response("Digest garbage", "POST", PASS));
    assert!(!verify_digest_response("", "POST", PASS));
}

#[test]
fn section_8_13_nonce_is_not_ours() {
    // The transcript's nonce was not minted by this authenticator.
    let auth = authenticator(vec![DigestAlgorithm::Md5]);
    let called = Cell::new(false);
    let r = auth.verify(HDR_8_13, "POST", false, |_| {
        called.set(true);
        Some(PASS.to_string())
    });
    assert!(matches!(r, AuthResult::Invalid(_)), "{r:?}");
    assert!(!called.get(), "no credential lookup for a forged nonce");
}

#[test]
fn challenge_shape() {
    let auth = authenticator(vec![DigestAlgorithm::Md5]);
    let ch = auth.challenge(false);
    assert_eq!(ch.len(), 1);
    let c = &ch[0];
    assert!(
        c.starts_with(r#"Digest realm="ACS", qop="auth", nonce=""#),
        "{c}"
    );
    assert!(c.contains(&format!(r#"opaque="{}""#, auth.opaque())), "{c}");
    assert!(c.ends_with("algorithm=MD5"), "{c}");
    assert!(!c.contains("stale"));
    let parsed =
        digest_auth::WwwAuthenticateHeader::parse(c.strip_prefix("Digest ").unwrap()).unwrap();
    assert_eq!(parsed.realm, "ACS");
    assert_eq!(parsed.nonce.len(), 64);
    assert!(parsed.nonce.bytes().all(|b| b.is_ascii_hexdigit()));

    let stale = auth.challenge(true);
    assert!(stale[0].ends_with(", stale=true"), "{}", stale[0]);

    let two = authenticator(vec![DigestAlgorithm::Sha256, DigestAlgorithm::Md5]).challenge(false);
    assert_eq!(two.len(), 2);
    assert!(two[0].ends_with("algorithm=SHA-256"));
    assert!(two[1].ends_with("algorithm=MD5"));
    assert_eq!(
        authenticator(vec![]).challenge(false).len(),
        1,
        "empty algorithm list falls back to MD5"
    );
}

#[test]
fn md5_round_trip() {
    let auth = authenticator(vec![DigestAlgorithm::Md5]);
    let ch = auth.challenge(false);
    let hdr = respond(&ch[0], USER, PASS, "/acs");
    assert_eq!(
        auth.verify(&hdr, "POST", false, lookup),
        AuthResult::Ok {
            username: USER.into()
        }
    );
    assert_eq!(
        auth.verify_with_uri(&hdr, "POST", "/acs", false, lookup),
        AuthResult::Ok {
            username: USER.into()
        }
    );
    assert!(matches!(
        auth.verify_with_uri(&hdr, "POST", "/other", false, lookup),
        AuthResult::Invalid(_)
    ));
}

#[test]
fn sha256_round_trip() {
    let auth = authenticator(vec![DigestAlgorithm::Sha256, DigestAlgorithm::Md5]);
    let ch = auth.challenge(false);
    let hdr = respond(&ch[0], USER, PASS, "/acs?x=1");
    assert!(hdr.contains("algorithm=SHA-256"), "{hdr}");
    assert_eq!(
        auth.verify_with_uri(&hdr, "POST", "/acs?x=1", false, lookup),
        AuthResult::Ok {
            username: USER.into()
        }
    );
    // Either algorithm of the challenge works.
    let hdr = respond(&ch[1], USER, PASS, "/acs");
    assert_eq!(
        auth.verify(&hdr, "POST", false, lookup),
        AuthResult::Ok {
            username: USER.into()
        }
    );
}

#[test]
fn algorithm_not_offered_is_refused() {
    let md5_only = authenticator(vec![DigestAlgorithm::Md5]);
    let sha = authenticator(vec![DigestAlgorithm::Sha256]);
    // Same secret and realm, so the nonce is valid for md5_only too.
    let hdr = respond(&sha.challenge(false)[0], USER, PASS, "/acs");
    assert!(matches!(
        md5_only.verify(&hdr, "POST", false, lookup),
        AuthResult::Invalid(_)
    ));
}

#[test]
fn wrong_password_is_invalid() {
    let auth = authenticator(vec![DigestAlgorithm::Md5]);
    let hdr = respond(&auth.challenge(false)[0], USER, "nope", "/acs");
    assert!(matches!(
        auth.verify(&hdr, "POST", false, lookup),
        AuthResult::Invalid(_)
    ));
    // Unknown user.
    let hdr = respond(&auth.challenge(false)[0], "someone", PASS, "/acs");
    assert!(matches!(
        auth.verify(&hdr, "POST", false, lookup),
        AuthResult::Invalid(_)
    ));
}

#[test]
fn tampered_fields_are_invalid() {
    let auth = authenticator(vec![DigestAlgorithm::Md5]);
    let ch = &auth.challenge(false)[0];
    let hdr = respond(ch, USER, PASS, "/acs");
    let opaque = auth.opaque().to_owned();
    let bad_opaque = hdr.replace(&opaque, "0000000000000000");
    assert!(matches!(
        auth.verify(&bad_opaque, "POST", false, lookup),
        AuthResult::Invalid(_)
    ));
    let bad_realm = hdr.replace(r#"realm="ACS""#, r#"realm="XYZ""#);
    assert!(matches!(
        auth.verify(&bad_realm, "POST", false, lookup),
        AuthResult::Invalid(_)
    ));
    // A nonce from another deployment (different secret) is not accepted.
    let other = Authenticator::new(
        AuthConfig {
            realm: "ACS".into(),
            ..AuthConfig::default()
        },
        [9u8; 32],
    );
    let foreign =
        respond(&other.challenge(false)[0], USER, PASS, "/acs").replace(other.opaque(), &opaque);
    assert!(matches!(
        auth.verify(&foreign, "POST", false, lookup),
        AuthResult::Invalid(_)
    ));
}

#[test]
fn nonce_shared_between_nodes_with_same_secret() {
    let node_a = authenticator(vec![DigestAlgorithm::Md5]);
    let node_b = authenticator(vec![DigestAlgorithm::Md5]);
    let hdr = respond(&node_a.challenge(false)[0], USER, PASS, "/acs");
    assert_eq!(
        node_b.verify(&hdr, "POST", false, lookup),
        AuthResult::Ok {
            username: USER.into()
        }
    );
}

#[test]
fn expired_nonce_is_stale() {
    let auth = authenticator(vec![DigestAlgorithm::Md5]);
    let ttl = auth.config().nonce_ttl;
    let issued = SystemTime::now() - ttl - Duration::from_secs(5);
    let hdr = respond(&auth.challenge_at(false, issued)[0], USER, PASS, "/acs");
    assert_eq!(auth.verify(&hdr, "POST", false, lookup), AuthResult::Stale);
    // Inside the ttl it is fine.
    let within = issued + ttl;
    assert_eq!(
        auth.verify_at(&hdr, "POST", None, false, within, lookup),
        AuthResult::Ok {
            username: USER.into()
        }
    );
    // Stale is only reported for correct credentials.
    let wrong = respond(&auth.challenge_at(false, issued)[0], USER, "nope", "/acs");
    assert!(matches!(
        auth.verify(&wrong, "POST", false, lookup),
        AuthResult::Invalid(_)
    ));
}

#[test]
fn missing_header() {
    let auth = authenticator(vec![DigestAlgorithm::Md5]);
    assert_eq!(auth.verify("", "POST", false, lookup), AuthResult::Missing);
    assert_eq!(
        auth.verify("   ", "POST", true, lookup),
        AuthResult::Missing
    );
    assert!(matches!(
        auth.verify("Bearer abc", "POST", true, lookup),
        AuthResult::Invalid(_)
    ));
}

#[test]
fn basic_only_over_tls() {
    // §8.13: the same credentials as Basic.
    let basic = "Basic MDAxQTJCLUhHVyUyRDEwMDAtU04wMTIzNDU2Nzg5OmNwZXBhc3M=";
    let auth = authenticator(vec![DigestAlgorithm::Md5]);
    let called = Cell::new(false);
    let r = auth.verify(basic, "POST", false, |_| {
        called.set(true);
        Some(PASS.to_string())
    });
    assert!(matches!(r, AuthResult::Invalid(_)), "{r:?}");
    assert!(!called.get());

    assert_eq!(
        auth.verify(basic, "POST", true, lookup),
        AuthResult::Ok {
            username: USER.into()
        }
    );
    assert_eq!(
        auth.verify(
            "basic MDAxQTJCLUhHVyUyRDEwMDAtU04wMTIzNDU2Nzg5OmNwZXBhc3M=",
            "POST",
            true,
            lookup
        ),
        AuthResult::Ok {
            username: USER.into()
        }
    );
    let wrong = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{USER}:x")
        )
    );
    assert!(matches!(
        auth.verify(&wrong, "POST", true, lookup),
        AuthResult::Invalid(_)
    ));

    let no_basic = Authenticator::new(
        AuthConfig {
            realm: "ACS".into(),
            allow_basic_over_tls: false,
            ..AuthConfig::default()
        },
        [7u8; 32],
    );
    assert!(matches!(
        no_basic.verify(basic, "POST", true, lookup),
        AuthResult::Invalid(_)
    ));
    assert_eq!(auth.basic_challenge(), r#"Basic realm="ACS""#);
}

#[test]
fn usernames_raw_and_encoded() {
    assert_eq!(ids::encode_username("HGW-1000"), "HGW%2D1000");
    assert_eq!(
        ids::encode_username("001A2B-HGW-1000-SN0123456789"),
        "001A2B%2DHGW%2D1000%2DSN0123456789"
    );
    assert_eq!(ids::encode_username("a_b é"), "a_b%20%C3%A9");
    assert_eq!(
        ids::percent_decode("HGW%2d1000").as_deref(),
        Some("HGW-1000")
    );
    assert_eq!(ids::percent_decode("a%C3%A9").as_deref(), Some("aé"));
    // A malformed escape is kept as sent.
    assert_eq!(ids::percent_decode("bad%2").as_deref(), Some("bad%2"));
    assert_eq!(ids::percent_decode("bad%zz").as_deref(), Some("bad%zz"));
    assert_eq!(ids::percent_decode("%FF"), None);

    assert_eq!(
        ids::username_forms("HGW%2D1000"),
        vec!["HGW%2D1000".to_owned(), "HGW-1000".to_owned()]
    );
    assert_eq!(
        ids::username_forms("HGW-1000"),
        vec!["HGW-1000".to_owned(), "HGW%2D1000".to_owned()]
    );
    assert_eq!(ids::username_forms("plain_1"), vec!["plain_1".to_owned()]);

    // The CPE sends the raw form; a store keyed by the encoded form still
    // finds it, and the digest is computed over the name as sent.
    let auth = authenticator(vec![DigestAlgorithm::Md5]);
    let raw = "001A2B-HGW-1000-SN0123456789";
    let hdr = respond(&auth.challenge(false)[0], raw, PASS, "/acs");
    let seen = Cell::new(String::new());
    let r = auth.verify(&hdr, "POST", false, |name| {
        seen.set(name.to_owned());
        ids::username_forms(name)
            .iter()
            .any(|f| f == "001A2B%2DHGW%2D1000%2DSN0123456789")
            .then(|| PASS.to_owned())
    });
    assert_eq!(
        r,
        AuthResult::Ok {
            username: raw.into()
        }
    );
    assert_eq!(seen.take(), raw);
}

#[test]
fn garbage_never_panics() {
    // Deterministic pseudo-random headers built from Digest-ish fragments.
    let fragments = [
        "Digest ",
        "Basic ",
        "username=",
        "realm=",
        "nonce=",
        "uri=",
        "response=",
        "qop=",
        "nc=",
        "cnonce=",
        "opaque=",
        "algorithm=",
        "\"",
        "\\",
        ",",
        " ",
        "=",
        "auth",
        "auth-int",
        "MD5",
        "SHA-256",
        "zz",
        "é",
        "ü€",
        "%2D",
        "0000000g",
        "\t",
        "Digest",
    ];
    let auth = authenticator(vec![DigestAlgorithm::Md5, DigestAlgorithm::Sha256]);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..20_000 {
        let mut h = String::new();
        for _ in 0..(state % 12) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            h.push_str(fragments[(state % fragments.len() as u64) as usize]);
        }
        let _ = auth.verify(&h, "POST", true, |_| Some(PASS.to_string()));
        let _ = auth.verify(&h, "POST", false, |_| Some(PASS.to_string()));
        let _ = verify_digest_response(&h, "POST", PASS);
        let _ = ids::percent_decode(&h);
        let _ = ids::username_forms(&h);
    }
}

fn request<'a>(authorization: &'a str, identity: &'a str) -> Request<'a> {
    Request {
        authorization,
        method: "POST",
        uri: "/acs",
        tls: false,
        identity,
        now: SystemTime::now(),
    }
}

#[test]
fn a_captured_header_cannot_be_replayed_or_moved_to_another_device() {
    let auth = authenticator(vec![DigestAlgorithm::Md5]);
    let challenge = auth.challenge(false).remove(0);
    let params = challenge.strip_prefix("Digest ").unwrap();
    let mut prompt = digest_auth::WwwAuthenticateHeader::parse(params).unwrap();
    let ctx = digest_auth::AuthContext::new_post(USER, PASS, "/acs", Option::<&[u8]>::None);
    let first = prompt.respond(&ctx).unwrap().to_header_string();
    let ok = AuthResult::Ok {
        username: USER.into(),
    };
    assert_eq!(auth.verify_request(&request(&first, "dev-A"), lookup), ok);
    // The same header again (a capture replayed on a new connection): refused.
    assert!(matches!(
        auth.verify_request(&request(&first, "dev-A"), lookup),
        AuthResult::Invalid(why) if why.contains("replayed")
    ));
    // The CPE's next request with the cached challenge counts on: accepted.
    let second = prompt.respond(&ctx).unwrap().to_header_string();
    assert_eq!(auth.verify_request(&request(&second, "dev-A"), lookup), ok);
    // A later count of the same nonce presented for another device: refused.
    let third = prompt.respond(&ctx).unwrap().to_header_string();
    assert!(matches!(
        auth.verify_request(&request(&third, "dev-B"), lookup),
        AuthResult::Invalid(why) if why.contains("dev-A")
    ));
    // The stateless check alone does not know about replays (documented).
    assert_eq!(auth.verify(&first, "POST", false, lookup), ok);
    // The uri must name the request.
    let fourth = prompt.respond(&ctx).unwrap().to_header_string();
    let elsewhere = Request {
        uri: "/other",
        ..request(&fourth, "dev-A")
    };
    assert!(matches!(
        auth.verify_request(&elsewhere, lookup),
        AuthResult::Invalid(why) if why.contains("uri")
    ));
}

#[test]
fn responses_without_qop_are_refused() {
    let auth = authenticator(vec![DigestAlgorithm::Md5]);
    let challenge = auth.challenge(false).remove(0);
    let nonce = challenge
        .split("nonce=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    // RFC 2069: response = H(HA1:nonce:HA2), no qop, nc or cnonce.
    let ha1 = md5_hex(&format!("{USER}:ACS:{PASS}"));
    let ha2 = md5_hex("POST:/acs");
    let response = md5_hex(&format!("{ha1}:{nonce}:{ha2}"));
    let hdr = format!(
        "Digest username=\"{USER}\", realm=\"ACS\", nonce=\"{nonce}\", uri=\"/acs\", opaque=\"{}\", response=\"{response}\"",
        auth.opaque()
    );
    assert!(matches!(
        auth.verify_request(&request(&hdr, "dev-A"), lookup),
        AuthResult::Invalid(why) if why.contains("qop")
    ));
}

#[test]
fn ha1_secrets_verify_digest_and_basic() {
    let auth = authenticator(vec![DigestAlgorithm::Md5, DigestAlgorithm::Sha256]);
    let stored = || {
        Some(Secret::Ha1 {
            md5: Some(ha1(DigestAlgorithm::Md5, USER, "ACS", PASS)),
            sha256: Some(ha1(DigestAlgorithm::Sha256, USER, "ACS", PASS)),
        })
    };
    for i in 0..2 {
        // A fresh nonce each time: both challenges of one 401 share theirs.
        let challenge = auth.challenge(false).remove(i);
        let hdr = respond(&challenge, USER, PASS, "/acs");
        assert_eq!(
            auth.verify_request(&request(&hdr, "dev-A"), |_| stored()),
            AuthResult::Ok {
                username: USER.into()
            },
            "{challenge}"
        );
        let wrong = respond(&challenge, USER, "nope", "/acs");
        assert!(matches!(
            auth.verify_request(&request(&wrong, "dev-A"), |_| stored()),
            AuthResult::Invalid(_)
        ));
    }
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"))
    );
    assert_eq!(
        auth.verify(&basic, "POST", true, |_| stored()),
        AuthResult::Ok {
            username: USER.into()
        }
    );
    let bad = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:x"))
    );
    assert!(matches!(
        auth.verify(&bad, "POST", true, |_| stored()),
        AuthResult::Invalid(_)
    ));
    // Only an MD5 HA1 stored: a SHA-256 response cannot be checked.
    let md5_only = || {
        Some(Secret::Ha1 {
            md5: Some(ha1(DigestAlgorithm::Md5, USER, "ACS", PASS)),
            sha256: None,
        })
    };
    let sha = respond(&auth.challenge(false)[1], USER, PASS, "/acs");
    assert!(matches!(
        auth.verify_request(&request(&sha, "dev-A"), |_| md5_only()),
        AuthResult::Invalid(_)
    ));
}
