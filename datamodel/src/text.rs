//! Description markup (BBF `{{template|args}}` and mediawiki-like emphasis) reduced to plain
//! text, and the first sentence of a description.

use crate::types::{ObjectDef, ParamDef};

/// What templates without arguments refer to.
pub(crate) struct Ctx<'a> {
    /// The parameter's name (`{{param}}`), empty for an object.
    param: &'a str,
    /// The object path (`{{object}}`).
    object: &'a str,
    units: Option<&'a str>,
    named_type: Option<&'a str>,
}

impl<'a> Ctx<'a> {
    pub fn param(p: &'a ParamDef) -> Ctx<'a> {
        let object = p.path.strip_suffix(p.name.as_str()).unwrap_or("");
        Ctx {
            param: &p.name,
            object,
            units: p.syntax.facets.units.as_deref(),
            named_type: p.syntax.named_type.as_deref(),
        }
    }

    pub fn object(o: &'a ObjectDef) -> Ctx<'a> {
        Ctx {
            param: "",
            object: &o.path,
            units: None,
            named_type: None,
        }
    }
}

/// First sentence of the first paragraph, as plain text.
pub(crate) fn summary(desc: &str, ctx: &Ctx) -> String {
    let para = first_paragraph(desc);
    let plain = plain_text(para, ctx);
    let mut s = first_sentence(&plain).to_string();
    // "{{list}} Each entry is…": the list boilerplate alone says little.
    if s == LIST_TEXT && plain.len() > s.len() {
        let rest = plain[s.len()..].trim_start();
        let next = first_sentence(rest);
        if !next.is_empty() {
            s.push(' ');
            s.push_str(next);
        }
    }
    s
}

const LIST_TEXT: &str = "Comma-separated list.";

fn first_paragraph(desc: &str) -> &str {
    let d = desc.trim_start();
    let mut end = d.len();
    let mut pos = 0;
    for line in d.split_inclusive('\n') {
        if line.trim().is_empty() && pos > 0 {
            end = pos;
            break;
        }
        pos = pos.saturating_add(line.len());
    }
    d.get(..end).unwrap_or(d)
}

/// Expands templates and strips emphasis; whitespace collapsed to single spaces.
pub(crate) fn plain_text(s: &str, ctx: &Ctx) -> String {
    let expanded = expand(s, ctx, 0);
    let no_emph = expanded.replace("'''", "").replace("''", "");
    let mut out = String::with_capacity(no_emph.len());
    for w in no_emph.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

fn expand(s: &str, ctx: &Ctx, depth: u32) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let (before, from) = rest.split_at_checked(start).unwrap_or((rest, ""));
        out.push_str(before);
        let after = from.get(2..).unwrap_or_default();
        let closed = matching_close(after)
            .and_then(|end| Some((after.get(..end)?, after.get(end.saturating_add(2)..)?)));
        match closed {
            Some((inner, tail)) => {
                if depth < 8 {
                    out.push_str(&template(inner, ctx, depth));
                }
                rest = tail;
            }
            None => {
                out.push_str(from);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Offset of the `}}` closing a template whose `{{` was just consumed (nesting respected).
fn matching_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut depth = 0usize;
    let mut i = 0usize;
    while let (Some(&x), Some(&y)) = (b.get(i), b.get(i.saturating_add(1))) {
        match (x, y) {
            (b'{', b'{') => {
                depth = depth.saturating_add(1);
                i = i.saturating_add(2);
            }
            (b'}', b'}') => {
                let Some(d) = depth.checked_sub(1) else {
                    return Some(i);
                };
                depth = d;
                i = i.saturating_add(2);
            }
            _ => i = i.saturating_add(1),
        }
    }
    None
}

/// Splits template arguments on `|` outside nested templates.
fn split_args(s: &str) -> Vec<&str> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0usize;
    let mut i = 0usize;
    while let Some(&x) = b.get(i) {
        let y = b.get(i.saturating_add(1)).copied();
        if x == b'{' && y == Some(b'{') {
            depth = depth.saturating_add(1);
            i = i.saturating_add(2);
            continue;
        }
        if x == b'}' && y == Some(b'}') {
            depth = depth.saturating_sub(1);
            i = i.saturating_add(2);
            continue;
        }
        if x == b'|' && depth == 0 {
            // `|` is one byte: both ends are character boundaries.
            out.push(s.get(start..i).unwrap_or_default());
            start = i.saturating_add(1);
        }
        i = i.saturating_add(1);
    }
    out.push(s.get(start..).unwrap_or_default());
    out
}

fn template(inner: &str, ctx: &Ctx, depth: u32) -> String {
    let args = split_args(inner);
    let name = args.first().map_or("", |a| a.trim());
    let arg = |i: usize| {
        args.get(i)
            .map(|a| expand(a.trim(), ctx, depth.saturating_add(1)))
    };
    match name {
        "param" => arg(1).unwrap_or_else(|| ctx.param.to_string()),
        "object" => arg(1).unwrap_or_else(|| ctx.object.to_string()),
        "enum" | "pattern" if args.len() > 1 => arg(1).unwrap_or_default(),
        "bibref" => match (arg(1), arg(2)) {
            (Some(id), Some(sec)) if !sec.is_empty() => format!("[{sec}/{id}]"),
            (Some(id), _) => format!("[{id}]"),
            _ => String::new(),
        },
        "datatype" => arg(1)
            .filter(|a| a != "expand")
            .or_else(|| ctx.named_type.map(str::to_owned))
            .unwrap_or_default(),
        "units" => ctx.units.unwrap_or("").to_string(),
        "true" => "true".into(),
        "false" => "false".into(),
        "null" => "null".into(),
        "empty" => "an empty string".into(),
        "numentries" => {
            let table = ctx
                .param
                .strip_suffix("NumberOfEntries")
                .unwrap_or(ctx.param);
            format!("The number of entries in the {table} table.")
        }
        "list" => {
            if args.len() > 1 {
                format!("Comma-separated list of {}.", arg(1).unwrap_or_default())
            } else {
                LIST_TEXT.into()
            }
        }
        "abbref" | "gloref" | "xmlref" | "trname" | "docname" | "mark" | "span" | "div" => {
            arg(1).unwrap_or_default()
        }
        // Text appended by tools (reference, hidden, secured, command, deprecated, obsoleted,
        // deleted, keys, showid, issue, section, template, minval, maxval, range…): nothing
        // useful for a one-line summary.
        _ => String::new(),
    }
}

/// The first sentence: up to the first `.`, `!` or `?` followed by white space (or the end),
/// not counting abbreviations such as `e.g.` and `i.e.` or paths such as `Device.NAT.`.
fn first_sentence(s: &str) -> &str {
    let b = s.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        let next = b.get(i.saturating_add(1));
        if matches!(c, b'.' | b'!' | b'?') && matches!(next, None | Some(b' ')) {
            // `c` is ASCII: `..i` and `..=i` end on character boundaries.
            let head = s.get(..i).unwrap_or_default();
            let word_start = head.rfind(' ').map_or(0, |p| p.saturating_add(1));
            let word = head
                .get(word_start..)
                .unwrap_or_default()
                .to_ascii_lowercase();
            // A word with an inner dot is a path (`Device.NAT.`) or an abbreviation (`e.g.`).
            let abbrev = word.contains('.')
                || matches!(
                    word.trim_start_matches('('),
                    "e.g"
                        | "i.e"
                        | "etc"
                        | "vs"
                        | "cf"
                        | "approx"
                        | "incl"
                        | "no"
                        | "sec"
                        | "fig"
                        | "resp"
                );
            if c != b'.' || !abbrev {
                return s.get(..=i).unwrap_or(s);
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx<'static> {
        Ctx {
            param: "PortMappingNumberOfEntries",
            object: "Device.NAT.",
            units: Some("seconds"),
            named_type: None,
        }
    }

    #[test]
    fn summaries() {
        let c = ctx();
        assert_eq!(
            summary("{{numentries}}", &c),
            "The number of entries in the PortMapping table."
        );
        assert_eq!(
            summary(
                "The duration in {{units}} of the interval, e.g. 5 min. Second sentence.",
                &c
            ),
            "The duration in seconds of the interval, e.g. 5 min."
        );
        assert_eq!(
            summary(
                "Uses {{bibref|RFC3986|Section 3}} and {{param|Enable}} is {{true}}.\n\nMore.",
                &c
            ),
            "Uses [Section 3/RFC3986] and Enable is true."
        );
        assert_eq!(
            summary("{{list}} Each entry is a version. Other.", &c),
            "Comma-separated list. Each entry is a version."
        );
        assert_eq!(
            summary(
                "'''Status''' of {{object}} is {{enum|Up|Status}} {{reference|x}}",
                &c
            ),
            "Status of Device.NAT. is Up"
        );
    }
}
