//! Value validation against a parameter's syntax, with precise reasons.

use crate::types::*;

/// Checks `value` for parameter `p`. `write`: also refuse enumeration values and patterns the
/// ACS may not set (`access="readOnly"`).
pub(crate) fn check(p: &ParamDef, value: &str, write: bool) -> Result<(), String> {
    let s = &p.syntax;
    match &s.list {
        Some(list) => check_list(s, list, value, write),
        None => check_scalar(s.base, &s.facets, value, write),
    }
}

fn check_list(s: &Syntax, list: &ListFacet, value: &str, write: bool) -> Result<(), String> {
    check_sizes(&list.sizes, value.chars().count() as u64, "list length")?;
    let nested = matches!(
        list.nested_brackets.as_deref(),
        Some("permitted") | Some("required")
    );
    let items = split_list(value, nested)?;
    let n = items.len() as u64;
    if n < list.min_items {
        return Err(format!(
            "{n} list items, fewer than minItems {}",
            list.min_items
        ));
    }
    if let Some(max) = list.max_items {
        if n > max {
            return Err(format!("{n} list items, more than maxItems {max}"));
        }
    }
    for (i, item) in items.iter().enumerate() {
        check_scalar(s.base, &s.facets, item, write)
            .map_err(|r| format!("list item {} ({item:?}) invalid: {r}", i.saturating_add(1)))?;
    }
    Ok(())
}

/// Splits a comma-separated list (white space around items ignored; the empty string is the
/// empty list). With `nested`, commas inside `[...]` do not split.
fn split_list(value: &str, nested: bool) -> Result<Vec<&str>, String> {
    if value.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in value.char_indices() {
        match c {
            '[' if nested => depth = depth.saturating_add(1),
            ']' if nested => {
                let Some(d) = depth.checked_sub(1) else {
                    return Err("unbalanced ']' in list".into());
                };
                depth = d;
            }
            ',' if depth == 0 => {
                out.push(value.get(start..i).unwrap_or_default().trim());
                // A comma is one byte.
                start = i.saturating_add(1);
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced '[' in list".into());
    }
    out.push(value[start..].trim());
    Ok(out)
}

fn check_scalar(base: BaseType, f: &Facets, v: &str, write: bool) -> Result<(), String> {
    match base {
        BaseType::Boolean => match v {
            "true" | "false" | "1" | "0" => Ok(()),
            _ => Err(format!("{v:?} is not a boolean (true, false, 1 or 0)")),
        },
        BaseType::UnsignedInt | BaseType::Int | BaseType::UnsignedLong | BaseType::Long => {
            let n = parse_integer(v, base)?;
            check_int_ranges(n, &f.ranges)
        }
        BaseType::Decimal => {
            let d = parse_decimal(v)?;
            check_dec_ranges(d, v, &f.ranges)
        }
        BaseType::DateTime => check_datetime(v),
        BaseType::Base64 => {
            let len = base64_len(v)?;
            check_sizes(&f.sizes, len, "decoded length")?;
            check_values(f, v, write)
        }
        BaseType::HexBinary => {
            let len = hex_len(v)?;
            check_sizes(&f.sizes, len, "decoded length")?;
            check_values(f, v, write)
        }
        BaseType::String => {
            check_sizes(&f.sizes, v.chars().count() as u64, "length")?;
            check_values(f, v, write)
        }
    }
}

fn check_sizes(sizes: &[SizeFacet], len: u64, what: &str) -> Result<(), String> {
    if sizes.is_empty() {
        return Ok(());
    }
    let ok = |s: &SizeFacet| {
        s.min_length.is_none_or(|m| m <= len) && s.max_length.is_none_or(|m| len <= m)
    };
    if sizes.iter().any(ok) {
        return Ok(());
    }
    if let [s] = sizes {
        if let Some(min) = s.min_length.filter(|&m| len < m) {
            return Err(format!("{what} {len} below minLength {min}"));
        }
        if let Some(max) = s.max_length {
            return Err(format!("{what} {len} above maxLength {max}"));
        }
    }
    let allowed: Vec<String> = sizes
        .iter()
        .map(|s| match (s.min_length.unwrap_or(0), s.max_length) {
            (a, Some(b)) if a == b => format!("{a}"),
            (a, Some(b)) => format!("{a}..{b}"),
            (a, None) => format!("{a}.."),
        })
        .collect();
    Err(format!(
        "{what} {len} not one of the allowed sizes: {}",
        allowed.join(", ")
    ))
}

/// Enumerations and patterns: a value is valid if it is one of the (non-deleted) enumerated
/// values or matches one of the patterns.
fn check_values(f: &Facets, v: &str, write: bool) -> Result<(), String> {
    let enums: Vec<&Enumeration> = f
        .enumerations
        .iter()
        .filter(|e| e.status.is_live())
        .collect();
    let pats: Vec<&Pattern> = f.patterns.iter().filter(|p| p.status.is_live()).collect();
    if enums.is_empty() && pats.is_empty() {
        return Ok(());
    }
    if let Some(e) = enums.iter().find(|e| e.value == v) {
        if write && e.access == Access::ReadOnly {
            return Err(format!("{v:?} is a read-only value (only the CPE sets it)"));
        }
        return Ok(());
    }
    let mut untranslatable = false;
    for p in &pats {
        match p.matches(v) {
            Some(true) => {
                if write && p.access == Access::ReadOnly {
                    return Err(format!(
                        "{v:?} matches the read-only pattern {} (only the CPE sets such values)",
                        p.value
                    ));
                }
                return Ok(());
            }
            Some(false) => {}
            None => untranslatable = true,
        }
    }
    if untranslatable && enums.is_empty() {
        // A pattern we cannot evaluate: do not refuse on its account.
        return Ok(());
    }
    let enum_list = || {
        let shown: Vec<&str> = enums.iter().take(24).map(|e| e.value.as_str()).collect();
        let mut s = shown.join(", ");
        if enums.len() > shown.len() {
            s.push_str(&format!(", … ({} in all)", enums.len()));
        }
        s
    };
    let pat_list = || {
        pats.iter()
            .map(|p| format!("{:?}", p.value))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(match (enums.is_empty(), pats.len()) {
        (false, 0) => format!("{v:?} is not one of the enumerated values: {}", enum_list()),
        (true, 1) => format!(
            "{v:?} does not match pattern {:?}",
            pats.first().map(|p| p.value.as_str()).unwrap_or_default()
        ),
        (true, _) => format!("{v:?} does not match any of the patterns {}", pat_list()),
        (false, _) => format!(
            "{v:?} is not one of the enumerated values ({}) and does not match the patterns {}",
            enum_list(),
            pat_list()
        ),
    })
}

fn int_bounds(base: BaseType) -> (i128, i128) {
    match base {
        BaseType::UnsignedInt => (0, u32::MAX as i128),
        BaseType::Int => (i32::MIN as i128, i32::MAX as i128),
        BaseType::UnsignedLong => (0, u64::MAX as i128),
        _ => (i64::MIN as i128, i64::MAX as i128),
    }
}

fn parse_integer(v: &str, base: BaseType) -> Result<i128, String> {
    let name = base.as_str();
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{v:?} is not an integer ({name})"));
    }
    let (lo, hi) = int_bounds(base);
    let significant = digits.trim_start_matches('0');
    if significant.len() > 30 {
        return Err(format!("{v} overflows {name} (range {lo} to {hi})"));
    }
    let n: i128 = v
        .parse()
        .map_err(|_| format!("{v:?} is not an integer ({name})"))?;
    if n < lo || n > hi {
        if n < 0 && lo == 0 {
            return Err(format!("{v} is negative; {name} is unsigned"));
        }
        return Err(format!("{v} overflows {name} (range {lo} to {hi})"));
    }
    Ok(n)
}

fn step_ok(n: f64, min: Option<Number>, step: Option<Number>) -> bool {
    match step {
        Some(s) if s.as_f64() > 0.0 => {
            let from = min.map_or(0.0, |m| m.as_f64());
            let k = (n - from) / s.as_f64();
            (k - k.round()).abs() < 1e-9
        }
        _ => true,
    }
}

fn check_int_ranges(n: i128, ranges: &[RangeFacet]) -> Result<(), String> {
    if ranges.is_empty() {
        return Ok(());
    }
    let within = |r: &RangeFacet| {
        let ge = r.min.is_none_or(|m| match m {
            Number::Int(m) => n >= m,
            Number::Decimal(m) => n as f64 >= m,
        });
        let le = r.max.is_none_or(|m| match m {
            Number::Int(m) => n <= m,
            Number::Decimal(m) => n as f64 <= m,
        });
        ge && le
    };
    range_result(
        ranges,
        n.to_string(),
        |r| {
            within(r)
                && match (r.step, r.min) {
                    (Some(Number::Int(s)), min) if s > 0 => {
                        let from = match min {
                            Some(Number::Int(m)) => m,
                            _ => 0,
                        };
                        n.checked_sub(from).and_then(|d| d.checked_rem_euclid(s)) == Some(0)
                    }
                    (step, min) => step_ok(n as f64, min, step),
                }
        },
        within,
    )
}

fn check_dec_ranges(d: f64, v: &str, ranges: &[RangeFacet]) -> Result<(), String> {
    if ranges.is_empty() {
        return Ok(());
    }
    let within = |r: &RangeFacet| {
        r.min.is_none_or(|m| d >= m.as_f64()) && r.max.is_none_or(|m| d <= m.as_f64())
    };
    range_result(
        ranges,
        v.to_string(),
        |r| within(r) && step_ok(d, r.min, r.step),
        within,
    )
}

fn range_result(
    ranges: &[RangeFacet],
    shown: String,
    ok: impl Fn(&RangeFacet) -> bool,
    within: impl Fn(&RangeFacet) -> bool,
) -> Result<(), String> {
    if ranges.iter().any(&ok) {
        return Ok(());
    }
    if let [r] = ranges {
        if within(r) {
            let step = r.step.map(|s| s.to_string()).unwrap_or_default();
            let from = r.min.map(|m| m.to_string()).unwrap_or_else(|| "0".into());
            return Err(format!(
                "value {shown} is not a multiple of step {step} from {from}"
            ));
        }
        if let Some(min) = r.min {
            let below = RangeFacet {
                min: Some(min),
                max: None,
                step: None,
            };
            if !within(&below) {
                return Err(format!("value {shown} below minInclusive {min}"));
            }
        }
        if let Some(max) = r.max {
            return Err(format!("value {shown} above maxInclusive {max}"));
        }
    }
    let list: Vec<String> = ranges.iter().map(|r| r.to_string()).collect();
    Err(format!(
        "value {shown} not in any allowed range: {}",
        list.join(", ")
    ))
}

fn parse_decimal(v: &str) -> Result<f64, String> {
    let body = v.strip_prefix(['+', '-']).unwrap_or(v);
    let (int, frac) = match body.split_once('.') {
        Some((a, b)) => (a, b),
        None => (body, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return Err(format!("{v:?} is not a decimal number"));
    }
    v.parse::<f64>()
        .map_err(|_| format!("{v:?} is not a decimal number"))
}

fn base64_len(v: &str) -> Result<u64, String> {
    let chars: Vec<u8> = v.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !chars.len().is_multiple_of(4) {
        return Err(format!(
            "not valid base64: {} characters, not a multiple of 4",
            chars.len()
        ));
    }
    let pad = chars.iter().rev().take_while(|&&b| b == b'=').count();
    if pad > 2 {
        return Err("not valid base64: too much '=' padding".into());
    }
    let body = chars
        .get(..chars.len().saturating_sub(pad))
        .unwrap_or_default();
    if let Some(bad) = body
        .iter()
        .find(|&&b| !(b.is_ascii_alphanumeric() || b == b'+' || b == b'/'))
    {
        return Err(format!("not valid base64: character {:?}", *bad as char));
    }
    // Three bytes per four characters, less the padding (at most 2, and 4 characters at least
    // when there is any).
    Ok((chars.len() / 4).saturating_mul(3).saturating_sub(pad) as u64)
}

fn hex_len(v: &str) -> Result<u64, String> {
    if !v.len().is_multiple_of(2) {
        return Err(format!(
            "not valid hexBinary: odd number of digits ({})",
            v.len()
        ));
    }
    if let Some(c) = v.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!("not valid hexBinary: character {c:?}"));
    }
    Ok((v.len() / 2) as u64)
}

/// xsd:dateTime: `[-]YYYY-MM-DDThh:mm:ss[.fff][Z|(+|-)hh:mm]`.
fn check_datetime(v: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "dateTime malformed ({why}): {v:?}; expected YYYY-MM-DDThh:mm:ss[.fff][Z|±hh:mm]"
        ))
    };
    let s = v.strip_prefix('-').unwrap_or(v);
    let Some((date, rest)) = s.split_once('T') else {
        return bad("no 'T'");
    };
    let dp: Vec<&str> = date.split('-').collect();
    let num = |p: &str, len: usize| -> Option<u32> {
        (p.len() == len && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
    };
    let &[y, mo, d] = dp.as_slice() else {
        return bad("date");
    };
    if y.len() < 4 || !y.bytes().all(|b| b.is_ascii_digit()) {
        return bad("date");
    }
    let year: u64 = y.parse().unwrap_or(0);
    let (Some(month), Some(day)) = (num(mo, 2), num(d, 2)) else {
        return bad("date");
    };
    if !(1..=12).contains(&month) {
        return bad(&format!("month {month} out of range"));
    }
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    let dim = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if day < 1 || day > dim {
        return bad(&format!("day {day} out of range"));
    }
    // Time zone.
    let (time, tz) = if let Some(t) = rest.strip_suffix('Z') {
        (t, None)
    } else if let Some((time, tz)) = rest
        .len()
        .checked_sub(6)
        .filter(|&at| at > 0 && matches!(rest.as_bytes().get(at), Some(b'+' | b'-')))
        .and_then(|at| Some((rest.get(..at)?, rest.get(at.saturating_add(1)..)?)))
    {
        (time, Some(tz))
    } else {
        (rest, None)
    };
    if let Some(tz) = tz {
        let Some((h, m)) = tz.split_once(':') else {
            return bad("time zone");
        };
        match (num(h, 2), num(m, 2)) {
            (Some(h), Some(m)) if h <= 14 && m <= 59 => {}
            _ => return bad("time zone"),
        }
    }
    let (hms, frac) = match time.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (time, None),
    };
    if let Some(f) = frac {
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            return bad("fraction of a second");
        }
    }
    let tp: Vec<&str> = hms.split(':').collect();
    let &[h, m, sec] = tp.as_slice() else {
        return bad("time");
    };
    let (Some(h), Some(m), Some(sec)) = (num(h, 2), num(m, 2), num(sec, 2)) else {
        return bad("time");
    };
    let midnight24 =
        h == 24 && m == 0 && sec == 0 && frac.is_none_or(|f| f.bytes().all(|b| b == b'0'));
    if (h > 23 && !midnight24) || m > 59 || sec > 59 {
        return bad("time out of range");
    }
    Ok(())
}

/// Translates an XML Schema regular expression (implicitly anchored, `^`/`$` literal) into a
/// regex-lite one. `None` for constructs not translated (Unicode categories/blocks `\p{…}`,
/// character class subtraction) or if it does not compile.
pub(crate) fn compile_xsd_pattern(xsd: &str) -> Option<regex_lite::Regex> {
    let mut out = String::with_capacity(xsd.len().saturating_add(8));
    out.push_str("^(?:");
    let mut in_class = false;
    let mut chars = xsd.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let n = chars.next()?;
                match n {
                    'p' | 'P' => return None,
                    // XML name characters (ASCII approximation).
                    'i' => out.push_str(if in_class { "A-Za-z_:" } else { "[A-Za-z_:]" }),
                    'c' => out.push_str(if in_class {
                        "A-Za-z0-9._:\\-"
                    } else {
                        "[A-Za-z0-9._:\\-]"
                    }),
                    'I' if !in_class => out.push_str("[^A-Za-z_:]"),
                    'C' if !in_class => out.push_str("[^A-Za-z0-9._:\\-]"),
                    'I' | 'C' => return None,
                    _ => {
                        out.push('\\');
                        out.push(n);
                    }
                }
            }
            '[' if in_class => return None, // class subtraction [a-z-[aeiou]]
            '[' => {
                in_class = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    out.push(chars.next()?);
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '-' if in_class && chars.peek() == Some(&'[') => return None,
            '^' | '$' if !in_class => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    if in_class {
        return None;
    }
    out.push_str(")$");
    regex_lite::Regex::new(&out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let re =
            compile_xsd_pattern("([0-9A-Fa-f][0-9A-Fa-f]:){5}([0-9A-Fa-f][0-9A-Fa-f])").unwrap();
        assert!(re.is_match("00:11:22:aa:BB:cc"));
        assert!(!re.is_match("00:11:22:aa:BB:cc:dd"));
        assert!(!re.is_match("x00:11:22:aa:BB:cc"));
        let re = compile_xsd_pattern("").unwrap();
        assert!(re.is_match(""));
        assert!(!re.is_match("a"));
        let re = compile_xsd_pattern("a$b").unwrap();
        assert!(re.is_match("a$b"));
        assert!(compile_xsd_pattern("\\p{IsBasicLatin}+").is_none());
        assert!(compile_xsd_pattern("[a-z-[aeiou]]").is_none());
    }

    #[test]
    fn datetimes() {
        for ok in [
            "2024-02-29T12:00:00Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "2024-01-01T00:00:00.123+01:00",
            "2024-01-01T00:00:00",
        ] {
            assert!(check_datetime(ok).is_ok(), "{ok}");
        }
        for bad in [
            "2023-02-29T12:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01 00:00:00",
            "2024-01-01T25:00:00Z",
            "yesterday",
            "",
        ] {
            assert!(check_datetime(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn binaries() {
        assert_eq!(base64_len("AAEC"), Ok(3));
        assert_eq!(base64_len("AA=="), Ok(1));
        assert!(base64_len("AA=").is_err());
        assert!(base64_len("A*==").is_err());
        assert_eq!(hex_len("00ff"), Ok(2));
        assert!(hex_len("0g").is_err());
        assert!(hex_len("abc").is_err());
    }

    #[test]
    fn lists() {
        assert_eq!(split_list("", false).unwrap().len(), 0);
        assert_eq!(split_list("a, b,c", false).unwrap(), vec!["a", "b", "c"]);
        assert_eq!(split_list("[1,2],[3]", true).unwrap(), vec!["[1,2]", "[3]"]);
        assert!(split_list("[1,2", true).is_err());
    }
}
