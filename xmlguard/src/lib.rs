//! A linear pre-scan of an XML document that bounds what makes XML parsing cost more than
//! linear time: attributes per element (quick-xml checks each new attribute's name against
//! the element's earlier ones) and namespace declarations (each name is resolved against
//! every binding in scope). The IPDR document and data-model readers run this first, so one
//! element with 100,000 attributes is refused after one pass over its bytes instead of
//! costing seconds of a worker. The CWMP codec, on the hot path of every session, applies
//! the same [`Bounds`] as it reads each start tag instead of in a pass of its own.
//!
//! The scan knows just enough XML to find tags: comments, CDATA sections, processing
//! instructions and declarations are skipped whole, quoted attribute values may contain `>`
//! and `=`. It does not check well-formedness; the parser does that afterwards.

// Outside input: no panicking arithmetic, indexing or unwrapping here (clippy enforces it).
#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used
)]

use thiserror::Error;

/// Bounds of one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Most attributes (namespace declarations included) on one element.
    pub max_attributes: usize,
    /// Most namespace declarations (`xmlns`, `xmlns:p`) in the whole document.
    pub max_namespace_declarations: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            max_attributes: 64,
            max_namespace_declarations: 256,
        }
    }
}

/// A bound the document exceeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("{what} over the limit of {limit} (at byte {offset})")]
pub struct Exceeded {
    /// "attributes on one element" or "namespace declarations".
    pub what: &'static str,
    pub limit: usize,
    /// Where the element that crossed the bound starts.
    pub offset: usize,
}

/// A document that starts with a UTF-16 byte-order mark (`FF FE` little-endian, `FE FF`
/// big-endian), decoded (unpaired surrogates and an odd last byte become U+FFFD); `None`
/// for any other document.
pub fn decode_utf16_bom(body: &[u8]) -> Option<String> {
    let le = match body.get(..2)? {
        [0xFF, 0xFE] => true,
        [0xFE, 0xFF] => false,
        _ => return None,
    };
    let rest = body.get(2..)?;
    let units = rest.chunks(2).map(|c| match (c.first(), c.get(1)) {
        (Some(&a), Some(&b)) if le => u16::from_le_bytes([a, b]),
        (Some(&a), Some(&b)) => u16::from_be_bytes([a, b]),
        _ => 0xFFFD,
    });
    Some(
        char::decode_utf16(units)
            .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect(),
    )
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let rest = hay.get(from..)?;
    rest.windows(needle.len())
        .position(|w| w == needle)
        .map(|i| from.saturating_add(i))
}

/// Checks `doc` against `bounds` in one pass.
pub fn check(doc: &[u8], bounds: &Bounds) -> Result<(), Exceeded> {
    let mut namespaces = 0usize;
    let mut i = 0usize;
    let n = doc.len();
    while i < n {
        let Some(lt) = doc.get(i..).and_then(|r| r.iter().position(|&b| b == b'<')) else {
            break;
        };
        let start = i.saturating_add(lt);
        let after = start.saturating_add(1);
        let rest = doc.get(after..).unwrap_or_default();
        // Skip what is not a start tag.
        let skip_to = if rest.starts_with(b"!--") {
            find(doc, after, b"-->").map(|e| e.saturating_add(3))
        } else if rest.starts_with(b"![CDATA[") {
            find(doc, after, b"]]>").map(|e| e.saturating_add(3))
        } else if rest.starts_with(b"?") {
            find(doc, after, b"?>").map(|e| e.saturating_add(2))
        } else if rest.starts_with(b"!") || rest.starts_with(b"/") {
            find(doc, after, b">").map(|e| e.saturating_add(1))
        } else {
            None
        };
        if let Some(to) = skip_to {
            i = to;
            continue;
        }
        if rest.starts_with(b"!") || rest.starts_with(b"?") || rest.starts_with(b"/") {
            // Unterminated: nothing more to bound; the parser reports the error.
            return Ok(());
        }
        // A start tag: count attributes (an `=` outside quotes) and namespace declarations
        // (an attribute whose name starts with `xmlns` followed by `=`, `:` or space).
        let mut attrs = 0usize;
        let mut quote: Option<u8> = None;
        let mut j = after;
        let mut prev_space = false;
        while let Some(&b) = doc.get(j) {
            match quote {
                Some(q) => {
                    if b == q {
                        quote = None;
                    }
                }
                None => match b {
                    b'"' | b'\'' => quote = Some(b),
                    b'>' => break,
                    b'=' => {
                        attrs = attrs.saturating_add(1);
                        if attrs > bounds.max_attributes {
                            return Err(Exceeded {
                                what: "attributes on one element",
                                limit: bounds.max_attributes,
                                offset: start,
                            });
                        }
                    }
                    b'x' if prev_space => {
                        let name = doc.get(j..).unwrap_or_default();
                        if name.starts_with(b"xmlns")
                            && matches!(
                                name.get(5),
                                Some(b'=' | b':' | b' ' | b'\t' | b'\r' | b'\n')
                            )
                        {
                            namespaces = namespaces.saturating_add(1);
                            if namespaces > bounds.max_namespace_declarations {
                                return Err(Exceeded {
                                    what: "namespace declarations",
                                    limit: bounds.max_namespace_declarations,
                                    offset: start,
                                });
                            }
                        }
                    }
                    _ => {}
                },
            }
            prev_space = quote.is_none() && matches!(b, b' ' | b'\t' | b'\r' | b'\n');
            j = j.saturating_add(1);
        }
        i = j.saturating_add(1);
    }
    Ok(())
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

    fn many_attributes(n: usize) -> Vec<u8> {
        let mut s = String::from("<a");
        for k in 0..n {
            s.push_str(&format!(" x{k}=\"1\""));
        }
        s.push_str("/>");
        s.into_bytes()
    }

    #[test]
    fn counts_attributes_per_element() {
        let b = Bounds::default();
        assert!(check(&many_attributes(64), &b).is_ok());
        let e = check(&many_attributes(65), &b).unwrap_err();
        assert_eq!(e.what, "attributes on one element");
        assert_eq!(e.offset, 0);
        // 100,000 attributes: refused at the 65th, after one pass at most.
        assert!(check(&many_attributes(100_000), &b).is_err());
    }

    #[test]
    fn quoted_values_comments_cdata_and_text_do_not_count() {
        let b = Bounds {
            max_attributes: 1,
            max_namespace_declarations: 1,
        };
        let doc = br#"<?xml version="1.0" a="1" b="2"?><!-- x=1 y=2 z=3 --><r k="a=b>c=d"><![CDATA[<q a=1 b=2>]]>text a=1 b=2 <s/></r>"#;
        assert_eq!(check(doc, &b), Ok(()));
    }

    #[test]
    fn counts_namespace_declarations_in_the_document() {
        let b = Bounds {
            max_attributes: 64,
            max_namespace_declarations: 2,
        };
        assert!(check(br#"<r xmlns="u1" xmlns:a="u2"><a:x/></r>"#, &b).is_ok());
        let e = check(
            br#"<r xmlns="u1"><x xmlns:a="u2"/><y xmlns:b="u3"/></r>"#,
            &b,
        )
        .unwrap_err();
        assert_eq!(e.what, "namespace declarations");
        // An attribute merely named like one is not a declaration.
        assert!(check(br#"<r xmlnsfoo="1" a:xmlns="2" b="xmlns:c"/>"#, &b).is_ok());
    }

    #[test]
    fn utf16_with_a_byte_order_mark() {
        assert_eq!(
            decode_utf16_bom(b"\xFF\xFE<\x00a\x00/\x00>\x00").as_deref(),
            Some("<a/>")
        );
        assert_eq!(
            decode_utf16_bom(b"\xFE\xFF\x00<\x00a").as_deref(),
            Some("<a")
        );
        assert_eq!(
            decode_utf16_bom(b"\xFF\xFE<\x00a").as_deref(),
            Some("<\u{FFFD}")
        );
        assert_eq!(decode_utf16_bom(b"<a/>"), None);
        assert_eq!(decode_utf16_bom(b"\xFF"), None);
    }

    #[test]
    fn unterminated_input_is_left_to_the_parser() {
        let b = Bounds::default();
        for doc in [
            &b"<!-- never closed"[..],
            b"<a b='unclosed",
            b"<",
            b"</",
            b"<?",
        ] {
            assert_eq!(check(doc, &b), Ok(()));
        }
    }
}
