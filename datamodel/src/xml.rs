//! A thin layer over quick-xml's slice reader: events with positions, line numbers computed
//! incrementally, DOCTYPE refused, errors carrying file and line.
//!
//! quick-xml never expands DTDs or custom entities; on top of that any `<!DOCTYPE` is refused,
//! so a document cannot even declare entities, and an undeclared `&name;` is an error.

// Outside input: no panicking arithmetic, indexing or unwrapping here (clippy enforces it).
#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::borrow::Cow;
use std::path::Path;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::error::DmError;

pub(crate) enum Ev<'a> {
    Start(BytesStart<'a>),
    Empty(BytesStart<'a>),
    End,
    Text(Cow<'a, str>),
    Eof,
}

pub(crate) struct Xml<'a> {
    r: Reader<&'a [u8]>,
    src: &'a [u8],
    pub file: &'a Path,
    /// Byte offset where the last event started.
    pos: usize,
    line_pos: usize,
    line: u32,
}

/// The attributes of one element, unescaped; keys are qualified names as written.
pub(crate) struct Attrs<'b>(Vec<(&'b [u8], Cow<'b, str>)>);

impl<'b> Attrs<'b> {
    pub fn get(&self, key: &[u8]) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_ref())
    }

    pub fn string(&self, key: &[u8]) -> Option<String> {
        self.get(key).map(str::to_owned)
    }
}

impl<'a> Xml<'a> {
    /// `src` must already be known to be UTF-8 (see [`check_utf8`]).
    pub fn new(src: &'a [u8], file: &'a Path) -> Xml<'a> {
        let src = src.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(src);
        let mut r = Reader::from_reader(src);
        let c = r.config_mut();
        c.trim_text(false);
        c.expand_empty_elements = false;
        c.check_end_names = true;
        Xml {
            r,
            src,
            file,
            pos: 0,
            line_pos: 0,
            line: 1,
        }
    }

    fn line_at(&mut self, pos: usize) -> u32 {
        let pos = pos.min(self.src.len());
        if pos < self.line_pos {
            self.line_pos = 0;
            self.line = 1;
        }
        let n = self
            .src
            .get(self.line_pos..pos)
            .unwrap_or_default()
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.line = self
            .line
            .saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
        self.line_pos = pos;
        self.line
    }

    /// The line of the last event's start.
    pub fn line(&mut self) -> u32 {
        self.line_at(self.pos)
    }

    pub fn err(&mut self, message: impl Into<String>) -> DmError {
        DmError::Xml {
            file: self.file.to_path_buf(),
            line: self.line(),
            message: message.into(),
        }
    }

    pub fn invalid(&mut self, message: impl Into<String>) -> DmError {
        DmError::Invalid {
            file: self.file.to_path_buf(),
            line: self.line(),
            message: message.into(),
        }
    }

    fn quick_err(&mut self, e: quick_xml::Error) -> DmError {
        let at = (self.r.error_position() as usize).max(self.pos);
        let line = self.line_at(at);
        DmError::Xml {
            file: self.file.to_path_buf(),
            line,
            message: e.to_string(),
        }
    }

    pub fn next(&mut self) -> Result<Ev<'a>, DmError> {
        loop {
            self.pos = self.r.buffer_position() as usize;
            let ev = match self.r.read_event() {
                Ok(ev) => ev,
                Err(e) => return Err(self.quick_err(e)),
            };
            return Ok(match ev {
                Event::Start(e) => Ev::Start(e),
                Event::Empty(e) => Ev::Empty(e),
                Event::End(_) => Ev::End,
                Event::Text(t) => match t.unescape() {
                    Ok(s) => Ev::Text(s),
                    Err(e) => return Err(self.quick_err(e)),
                },
                Event::CData(c) => match c.decode() {
                    Ok(s) => Ev::Text(s),
                    Err(e) => return Err(self.quick_err(e.into())),
                },
                Event::DocType(_) => {
                    return Err(DmError::DocType {
                        file: self.file.to_path_buf(),
                        line: self.line(),
                    })
                }
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) => continue,
                Event::Eof => Ev::Eof,
            });
        }
    }

    /// Skips the content of an element whose start was just read (nothing for an empty one).
    pub fn skip(&mut self, e: &BytesStart<'a>, empty: bool) -> Result<(), DmError> {
        if empty {
            return Ok(());
        }
        let end = e.to_end().into_owned();
        match self.r.read_to_end(end.name()) {
            Ok(_) => Ok(()),
            Err(err) => Err(self.quick_err(err)),
        }
    }

    pub fn attrs<'b>(&mut self, e: &'b BytesStart<'a>) -> Result<Attrs<'b>, DmError> {
        let mut v = Vec::with_capacity(8);
        for a in e.attributes() {
            let a = match a {
                Ok(a) => a,
                Err(err) => return Err(self.quick_err(err.into())),
            };
            let value = match a.decode_and_unescape_value(self.r.decoder()) {
                Ok(v) => v,
                Err(err) => return Err(self.quick_err(err)),
            };
            v.push((a.key.into_inner(), value));
        }
        Ok(Attrs(v))
    }

    /// Reads the text content of an element whose start was just read, up to its end. Child
    /// elements (not expected) are skipped.
    pub fn text(&mut self, empty: bool) -> Result<String, DmError> {
        let mut out = String::new();
        if empty {
            return Ok(out);
        }
        loop {
            match self.next()? {
                Ev::Text(t) => out.push_str(&t),
                Ev::Start(e) => self.skip(&e, false)?,
                Ev::Empty(_) => {}
                Ev::End => return Ok(out),
                Ev::Eof => return Err(self.err("unexpected end of file inside an element")),
            }
        }
    }
}

/// Refuses non-UTF-8 input, naming the line of the first bad byte.
pub(crate) fn check_utf8(src: &[u8], file: &Path) -> Result<(), DmError> {
    match std::str::from_utf8(src) {
        Ok(_) => Ok(()),
        Err(e) => {
            let at = e.valid_up_to();
            let lines = src
                .get(..at)
                .unwrap_or_default()
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            let line = u32::try_from(lines).unwrap_or(u32::MAX).saturating_add(1);
            Err(DmError::Xml {
                file: file.to_path_buf(),
                line,
                message: format!("invalid UTF-8 at byte {at}"),
            })
        }
    }
}

/// Description text as written, re-indented: surrounding blank lines dropped, the common
/// indentation of the lines removed, trailing spaces trimmed.
pub(crate) fn clean_text(raw: &str) -> String {
    let raw = raw.trim_matches(|c| c == '\n' || c == '\r');
    let raw = raw.trim_end();
    if raw.is_empty() {
        return String::new();
    }
    if !raw.contains('\n') {
        return raw.trim().to_string();
    }
    let indent = raw
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len().saturating_sub(l.trim_start_matches(' ').len()))
        .min()
        .unwrap_or(0);
    let mut out = String::with_capacity(raw.len());
    for (i, l) in raw.lines().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let l = l.trim_end();
        if l.len() >= indent && l.is_char_boundary(indent) {
            out.push_str(&l[indent..]);
        } else {
            out.push_str(l.trim_start());
        }
    }
    out
}
