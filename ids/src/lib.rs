//! Keelson's identities, written once.
//!
//! * The **canonical device id** (checklist §3.1): `OUI-ProductClass-SerialNumber`, the OUI
//!   upper-cased, every part percent-escaped except `A-Z a-z 0-9 _` (`%XX`, upper-case hex,
//!   over the UTF-8 bytes), the ProductClass part left out when it is empty. Since `-` is
//!   escaped inside a part, the id splits back into its parts unambiguously
//!   ([`DeviceIdParts::parse`]). Every route that names a device (CWMP Inform, HTTP bulk
//!   data, IPDR/SP records, IPDR documents, client certificates) derives it here.
//! * **CPE usernames**: TR-069 Amendment 6 recommends `OUI-ProductClass-SerialNumber`
//!   percent-encoded the same way; a CPE may send either spelling ([`username_forms`]).
//! * **URL segments**: file names in the URLs we hand to CPEs (RFC 3986 unreserved kept).
//!
//! All escaping goes through the `percent-encoding` crate.

// Outside input: no panicking arithmetic, indexing or unwrapping here (clippy enforces it).
#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::borrow::Cow;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Bytes left as they are in a device-id part or an encoded username: `A-Z a-z 0-9 _`.
const ID_PART: &AsciiSet = &NON_ALPHANUMERIC.remove(b'_');

/// Bytes left as they are in a URL path segment or query value: RFC 3986 unreserved.
const URL_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One part of a device id (or a username), escaped.
pub fn escape_part(s: &str) -> Cow<'_, str> {
    utf8_percent_encode(s, ID_PART).into()
}

/// The canonical device id of a TR-069 / TR-232 identity.
///
/// ```
/// assert_eq!(ids::canonical_device_id("00d09e", "IGD", "S/N 1"), "00D09E-IGD-S%2FN%201");
/// assert_eq!(ids::canonical_device_id("00D09E", "", "123"), "00D09E-123");
/// assert_eq!(ids::canonical_device_id("001A2B", "HGW-1000", "SN1"), "001A2B-HGW%2D1000-SN1");
/// ```
pub fn canonical_device_id(oui: &str, product_class: &str, serial_number: &str) -> String {
    let oui = oui.to_ascii_uppercase();
    let mut out = String::with_capacity(
        oui.len()
            .saturating_add(product_class.len())
            .saturating_add(serial_number.len())
            .saturating_add(2),
    );
    out.push_str(&escape_part(&oui));
    if !product_class.is_empty() {
        out.push('-');
        out.push_str(&escape_part(product_class));
    }
    out.push('-');
    out.push_str(&escape_part(serial_number));
    out
}

/// A canonical device id split back into its (unescaped) parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdParts {
    pub oui: String,
    /// Empty when the id has no ProductClass part.
    pub product_class: String,
    pub serial_number: String,
}

impl DeviceIdParts {
    /// Splits a canonical id (`OUI-Serial` or `OUI-ProductClass-Serial`); `None` for anything
    /// else. Escapes that do not decode to UTF-8 are replaced lossily.
    pub fn parse(id: &str) -> Option<DeviceIdParts> {
        let parts: Vec<&str> = id.split('-').collect();
        let (oui, pc, sn) = match parts.as_slice() {
            [oui, sn] => (*oui, "", *sn),
            [oui, pc, sn] => (*oui, *pc, *sn),
            _ => return None,
        };
        if oui.is_empty() || sn.is_empty() {
            return None;
        }
        Some(DeviceIdParts {
            oui: decode_lossy(oui).into_owned(),
            product_class: decode_lossy(pc).into_owned(),
            serial_number: decode_lossy(sn).into_owned(),
        })
    }

    /// The canonical id again.
    pub fn canonical_id(&self) -> String {
        canonical_device_id(&self.oui, &self.product_class, &self.serial_number)
    }
}

/// Decodes `%XX` escapes (either hex case); a malformed escape is kept as it is. `None` if
/// the result is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(Cow::into_owned)
}

/// [`percent_decode`], replacing bytes that are not UTF-8 with U+FFFD.
pub fn decode_lossy(s: &str) -> Cow<'_, str> {
    percent_decode_str(s).decode_utf8_lossy()
}

/// A username in the encoded form TR-069 Amendment 6 recommends (and GenieACS uses):
/// UTF-8 bytes other than `A-Z a-z 0-9 _` become `%XX`. `HGW-1000` → `HGW%2D1000`.
pub fn encode_username(raw: &str) -> String {
    escape_part(raw).into_owned()
}

/// The spellings under which a username sent by a CPE may be stored: as sent first, then
/// decoded (raw), then in the canonical encoded form, without duplicates.
pub fn username_forms(sent: &str) -> Vec<String> {
    let mut forms = vec![sent.to_owned()];
    let raw = percent_decode(sent).unwrap_or_else(|| sent.to_owned());
    let encoded = encode_username(&raw);
    for f in [raw, encoded] {
        if !forms.contains(&f) {
            forms.push(f);
        }
    }
    forms
}

/// True if a username sent by a CPE names `stored` in any of its spellings.
pub fn username_matches(sent: &str, stored: &str) -> bool {
    username_forms(sent).iter().any(|f| f == stored)
        || username_forms(stored).iter().any(|f| f == sent)
}

/// A path segment or query value for the URLs we hand out (RFC 3986 unreserved kept).
pub fn url_segment(s: &str) -> String {
    utf8_percent_encode(s, URL_SEGMENT).to_string()
}

#[cfg(test)]
#[allow(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used
)]
mod tests {
    use super::*;

    /// Identities that break naive escaping: spaces, `%`, `-`, `/`, non-ASCII, an empty
    /// ProductClass, a lower-case OUI.
    pub const TRICKY: [(&str, &str, &str); 7] = [
        ("00d09e", "Home Gateway", "SN 1"),
        ("00D09E", "", "100%"),
        ("00D09E", "HGW-1000", "a-b-c"),
        ("00D09E", "FAP/pBS3101/CA", "é_ü"),
        ("00D09E", "X_1", "Y_2"),
        ("00D09E", "%2D", "%41"),
        ("00D09E", "", "-"),
    ];

    #[test]
    fn ids_split_back_into_their_parts() {
        for (oui, pc, sn) in TRICKY {
            let id = canonical_device_id(oui, pc, sn);
            let parts = DeviceIdParts::parse(&id).unwrap_or_else(|| panic!("{id}"));
            assert_eq!(parts.oui, oui.to_ascii_uppercase(), "{id}");
            assert_eq!(parts.product_class, pc, "{id}");
            assert_eq!(parts.serial_number, sn, "{id}");
            assert_eq!(parts.canonical_id(), id);
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-%".contains(&b)),
                "{id}"
            );
        }
        assert_eq!(
            canonical_device_id("00D09E", "Home Gateway", "a-b.c/é"),
            "00D09E-Home%20Gateway-a%2Db%2Ec%2F%C3%A9"
        );
        assert_eq!(DeviceIdParts::parse("nodash"), None);
        assert_eq!(DeviceIdParts::parse("a-b-c-d"), None);
        assert_eq!(DeviceIdParts::parse("-x"), None);
    }

    #[test]
    fn usernames() {
        assert_eq!(
            encode_username("001A2B-HGW-1000-SN1"),
            "001A2B%2DHGW%2D1000%2DSN1"
        );
        assert_eq!(percent_decode("HGW%2D1000").as_deref(), Some("HGW-1000"));
        assert_eq!(percent_decode("bad%2").as_deref(), Some("bad%2"));
        assert_eq!(percent_decode("%FF"), None);
        assert_eq!(decode_lossy("%FF"), "\u{fffd}");
        // The string that once panicked a hand-written decoder on a char boundary.
        assert_eq!(percent_decode("%aé").as_deref(), Some("%aé"));
        assert_eq!(
            username_forms("a%2Db"),
            vec!["a%2Db".to_string(), "a-b".to_string()]
        );
        assert!(username_matches("001A2B%2DSN1", "001A2B-SN1"));
        assert!(username_matches("001A2B-SN1", "001A2B%2DSN1"));
        assert!(!username_matches("001A2B-SN2", "001A2B-SN1"));
        assert_eq!(url_segment("fw 1.0~x/y.bin"), "fw%201.0~x%2Fy.bin");
    }
}
