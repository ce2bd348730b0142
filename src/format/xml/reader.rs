//! The pull reader: [`XmlReader`] takes a payload's bytes (through the
//! [`Guard`]) and the payload's [`Schema`] and yields
//! one validated [`Element`] at a time, each with its depth, refusing
//! everything the module documentation lists with its stable code.

use std::io::BufRead;
use std::sync::Arc;

use quick_xml::XmlVersion;
use quick_xml::errors::{Error as QxError, IllFormedError, SyntaxError};
use quick_xml::escape::EscapeError;
use quick_xml::events::{BytesStart, Event};

use super::attrs::{AttrScan, is_space};
use super::guard::Guard;
use super::schema::{Element, ElementSpec, Schema};
use crate::format::{FormatError, Limits, Position, READ_FAILED};
use crate::ident::shorten;

/// What handling one event leads to.
enum Step {
    /// Read the next event.
    Next,
    /// An element was read into the element given.
    Element,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing read yet: the declaration must come first.
    Start,
    /// After the declaration, before the root.
    Prolog,
    /// Inside the root element.
    Body,
    /// After the root element's end.
    Epilog,
    /// The document ended cleanly or an error was returned.
    Done,
}

/// One open element: its spec (`None` for the root) and the highest section
/// rank among the children seen so far.
#[derive(Debug, Clone, Copy)]
struct Open {
    spec: Option<&'static ElementSpec>,
    last_rank: Option<u8>,
}

/// A streaming, validating XML reader for one [`Schema`]: yields each element
/// (except the root) once validated; holds one tag at a time.
pub struct XmlReader<R: BufRead> {
    reader: quick_xml::Reader<Guard<R>>,
    schema: &'static Schema,
    file: Arc<str>,
    limits: Limits,
    buf: Vec<u8>,
    stack: Vec<Open>,
    phase: Phase,
    elements: u64,
    /// An element handed back by [`XmlReader::recycle`], read into next.
    spare: Option<Element>,
    /// The spec of the last element read: elements mostly follow their
    /// like (a seat after a seat), so it is tried first.
    last: Option<&'static ElementSpec>,
}

impl<R: BufRead> XmlReader<R> {
    /// The format version of the document: its root's, once read (the
    /// schema's first version before).
    pub fn version(&self) -> &'static str {
        self.schema.version
    }

    pub fn new(input: R, file: &str, limits: Limits, schema: &'static Schema) -> XmlReader<R> {
        let mut reader = quick_xml::Reader::from_reader(Guard::new(input, &limits));
        let config = reader.config_mut();
        config.check_end_names = true;
        config.allow_unmatched_ends = false;
        config.allow_dangling_amp = false;
        config.expand_empty_elements = false;
        config.trim_text(false);
        XmlReader {
            reader,
            schema,
            file: Arc::from(file),
            limits,
            buf: Vec::new(),
            stack: Vec::new(),
            phase: Phase::Start,
            elements: 0,
            spare: None,
            last: None,
        }
    }

    /// The file name used in errors.
    pub fn file(&self) -> &str {
        &self.file
    }

    fn position(&self, offset: u64) -> Position {
        Position::Byte {
            offset,
            line: Some(self.reader.get_ref().line_at(offset)),
        }
    }

    fn err(&mut self, offset: u64, code: &'static str, problem: impl Into<String>) -> FormatError {
        self.phase = Phase::Done;
        FormatError::new(&*self.file, self.position(offset), code, problem)
    }

    /// The next element of the document, `Ok(None)` once the root is closed
    /// and only whitespace or comments followed. After an error, `Ok(None)`.
    /// Read into the element last handed back by [`XmlReader::recycle`], if
    /// any, so that its buffers serve again.
    pub fn next_element(&mut self) -> Result<Option<Element>, FormatError> {
        let mut el = match self.spare.take() {
            Some(el) => el,
            None => Element::empty(Arc::clone(&self.file)),
        };
        let found = self.read_into(&mut el);
        match found {
            Ok(true) => Ok(Some(el)),
            other => {
                self.spare = Some(el);
                other.map(|_| None)
            }
        }
    }

    /// Hands an element back once its values are used: the next one is read
    /// into its buffers instead of new ones.
    pub fn recycle(&mut self, el: Element) {
        self.spare = Some(el);
    }

    /// The next record of a payload reader `state` built on an
    /// [`XmlReader`] (reached through `xml`): its next element made into a
    /// record by `record`, then handed back to be read into again.
    pub fn next_record<S, T>(
        state: &mut S,
        xml: fn(&mut S) -> &mut XmlReader<R>,
        record: fn(&mut S, &Element) -> Result<T, FormatError>,
    ) -> Result<Option<T>, FormatError> {
        let Some(el) = xml(state).next_element()? else {
            return Ok(None);
        };
        let made = record(state, &el);
        xml(state).recycle(el);
        made.map(Some)
    }

    /// Reads the next element into `el`: `Ok(false)` at the end.
    fn read_into(&mut self, el: &mut Element) -> Result<bool, FormatError> {
        loop {
            if self.phase == Phase::Done {
                return Ok(false);
            }
            self.reader.get_mut().begin_event();
            // The event borrows the buffer, taken out of `self` meanwhile
            // so that handling it needs no copy.
            let mut buf = std::mem::take(&mut self.buf);
            buf.clear();
            let read = self.reader.read_event_into(&mut buf);
            // Where the event starts: past the whitespace quick-xml skipped
            // before it.
            let start = self.reader.get_ref().event_start();
            let step = match read {
                Ok(event) => self.handle(event, start, el),
                Err(e) => Err(self.map_error(e, start)),
            };
            self.buf = buf;
            match step? {
                Step::Next => {}
                Step::Element => return Ok(true),
                Step::Done => return Ok(false),
            }
        }
    }

    /// What one event of the document does, by phase.
    fn handle(
        &mut self,
        event: Event<'_>,
        start: u64,
        el: &mut Element,
    ) -> Result<Step, FormatError> {
        match (self.phase, event) {
            (Phase::Start, Event::Decl(d)) => {
                self.check_declaration(&d, start)?;
                self.phase = Phase::Prolog;
                // From here on, whitespace between tags is skipped inside the
                // next event's read instead of being an event of its own
                // (before the declaration, it is refused).
                self.reader.config_mut().trim_text_start = true;
            }
            (Phase::Start, Event::Eof) => {
                return Err(self.err(start, "xml-empty", "the file is empty"));
            }
            (Phase::Start, _) => {
                return Err(self.err(
                    start,
                    "xml-declaration",
                    "expected the declaration <?xml version=\"1.0\" encoding=\"UTF-8\"?> \
                     at the start of the file",
                ));
            }
            (_, Event::Decl(_)) => {
                return Err(self.err(
                    start,
                    "xml-declaration",
                    "found an xml declaration that is not at the start of the file",
                ));
            }
            (_, Event::Comment(_)) => {}
            (Phase::Epilog, Event::Text(t)) if is_blank(t.as_bytes()) => {}
            (_, Event::Text(t)) => {
                if let Some(e) = self.text_error(&t, start) {
                    return Err(e);
                }
            }
            (_, Event::GeneralRef(r)) => return Err(self.reference_error(&r, start)),
            (_, Event::DocType(_)) => {
                return Err(self.err(
                    start,
                    "xml-doctype",
                    "found a DOCTYPE; DOCTYPE and entity declarations are refused",
                ));
            }
            (_, Event::PI(_)) => {
                return Err(self.err(
                    start,
                    "xml-pi",
                    "found a processing instruction; only the xml declaration is allowed",
                ));
            }
            (_, Event::CData(_)) => {
                return Err(self.err(
                    start,
                    "xml-cdata",
                    "found a CDATA section; the format has no text content",
                ));
            }
            (Phase::Prolog, Event::Start(s)) => self.open_root(&s, start, false)?,
            (Phase::Prolog, Event::Empty(s)) => self.open_root(&s, start, true)?,
            (Phase::Body, Event::Start(s)) => {
                self.open(&s, start, false, el)?;
                return Ok(Step::Element);
            }
            (Phase::Body, Event::Empty(s)) => {
                self.open(&s, start, true, el)?;
                return Ok(Step::Element);
            }
            (Phase::Epilog, Event::Start(s) | Event::Empty(s)) => {
                let name = s.name().as_ref().to_owned();
                return Err(self.err(
                    start,
                    "xml-trailing",
                    format!(
                        "expected nothing after the root element, found <{}>",
                        shorten(&name)
                    ),
                ));
            }
            (Phase::Body, Event::End(_)) => {
                self.stack.pop();
                if self.stack.is_empty() {
                    self.phase = Phase::Epilog;
                }
            }
            (Phase::Epilog, Event::Eof) => {
                self.phase = Phase::Done;
                return Ok(Step::Done);
            }
            (Phase::Prolog | Phase::Body, Event::Eof) => return Err(self.truncated(start)),
            (_, Event::End(e)) => {
                let name = e.name().as_ref().to_owned();
                return Err(self.err(
                    start,
                    "xml-end-tag",
                    format!("found end tag </{}> with no open element", shorten(&name)),
                ));
            }
            (_, Event::Start(_) | Event::Empty(_) | Event::Eof) => {
                // Phases Start and Done are handled above.
                return Err(self.err(start, "xml-syntax", "unexpected markup"));
            }
        }
        Ok(Step::Next)
    }

    /// Text where only elements may be: `None` when it is only whitespace
    /// (skipped), else the error (trailing text after the root, or text
    /// content).
    fn text_error(
        &mut self,
        t: &quick_xml::events::BytesText<'_>,
        start: u64,
    ) -> Option<FormatError> {
        let skip = t.bytes().take_while(|b| b.is_ascii_whitespace()).count();
        let at = start + skip as u64;
        if is_blank(t.as_bytes()) {
            return None;
        }
        let found = t.get(skip..).unwrap_or_default().to_owned();
        Some(match self.phase {
            Phase::Epilog => self.err(
                at,
                "xml-trailing",
                format!(
                    "expected nothing after the root element, found text {:?}",
                    shorten(&found)
                ),
            ),
            _ => self.err(
                at,
                "xml-text",
                format!(
                    "expected only elements and attributes, found text {:?}",
                    shorten(&found)
                ),
            ),
        })
    }

    /// A reference outside attribute values: a predefined entity or a
    /// character reference is text, anything else an undeclared entity.
    fn reference_error(&mut self, r: &quick_xml::events::BytesRef<'_>, start: u64) -> FormatError {
        let name = r.to_string();
        let known =
            r.is_char_ref() || matches!(name.as_str(), "lt" | "gt" | "amp" | "quot" | "apos");
        if known {
            self.err(
                start,
                "xml-text",
                format!("expected only elements and attributes, found text &{name};"),
            )
        } else {
            self.err(
                start,
                "xml-entity",
                format!(
                    "found a reference to undeclared entity &{};",
                    shorten(&name)
                ),
            )
        }
    }

    /// The file ended before the root element was opened or closed.
    fn truncated(&mut self, start: u64) -> FormatError {
        if self.phase == Phase::Prolog {
            let root = self.schema.root;
            self.err(
                start,
                "xml-truncated",
                format!("the file ends before the root element <{root}>"),
            )
        } else {
            let open = self
                .stack
                .last()
                .and_then(|o| o.spec)
                .map_or(self.schema.root, |s| s.name);
            self.err(
                start,
                "xml-truncated",
                format!("the file ends before </{open}> closes the element"),
            )
        }
    }

    fn check_declaration(
        &mut self,
        d: &quick_xml::events::BytesDecl<'_>,
        start: u64,
    ) -> Result<(), FormatError> {
        match d.version() {
            Ok(v) if v == "1.0" => {}
            Ok(v) => {
                let v = v.into_owned();
                return Err(self.err(
                    start,
                    "xml-declaration",
                    format!("expected xml version 1.0, found {:?}", shorten(&v)),
                ));
            }
            Err(_) => {
                return Err(self.err(
                    start,
                    "xml-declaration",
                    "expected <?xml version=\"1.0\" encoding=\"UTF-8\"?>, found a declaration \
                     without a readable version",
                ));
            }
        }
        match d.encoding() {
            None => Ok(()),
            Some(Ok(e)) if e.eq_ignore_ascii_case("UTF-8") => Ok(()),
            Some(Ok(e)) => {
                let e = e.into_owned();
                Err(self.err(
                    start,
                    "xml-encoding",
                    format!("expected encoding UTF-8, found {:?}", shorten(&e)),
                ))
            }
            Some(Err(_)) => Err(self.err(
                start,
                "xml-declaration",
                "the declaration's encoding cannot be read",
            )),
        }
    }

    fn open_root(
        &mut self,
        s: &BytesStart<'_>,
        start: u64,
        empty: bool,
    ) -> Result<(), FormatError> {
        let root = self.schema.root;
        let name = s.name().as_ref().to_owned();
        if name != root {
            return Err(self.err(
                start,
                "bad-root",
                format!("expected root element <{root}>, found <{}>", shorten(&name)),
            ));
        }
        let mut version: Option<String> = None;
        for attr in AttrScan::new(s.attributes_raw()) {
            let (key, value) = attr.map_err(|what| self.malformed_attribute(root, &what, start))?;
            if key != "version" {
                return Err(self.err(
                    start,
                    "xml-unknown-attribute",
                    format!(
                        "<{root}> has no attribute {:?} (only version)",
                        shorten(key)
                    ),
                ));
            }
            if version.is_some() {
                return Err(self.duplicate_attribute(root, start));
            }
            let mut v = String::new();
            self.attr_value(value, root, "version", start, &mut v)?;
            version = Some(v);
        }
        match version {
            None => {
                return Err(self.err(
                    start,
                    "xml-missing-attribute",
                    format!("<{root}> attribute version is missing"),
                ));
            }
            Some(v) => {
                // This version's schema, or a later one's.
                let mut schema = Some(self.schema);
                while let Some(s) = schema.filter(|s| s.version != v) {
                    schema = s.next;
                }
                let Some(schema) = schema else {
                    let mut known = vec![format!("\"{}\"", self.schema.version)];
                    let mut next = self.schema.next;
                    while let Some(s) = next {
                        known.push(format!("\"{}\"", s.version));
                        next = s.next;
                    }
                    return Err(self.err(
                        start,
                        "bad-version",
                        format!(
                            "<{root}> attribute version: expected {}, found {:?}",
                            known.join(" or "),
                            shorten(&v)
                        ),
                    ));
                };
                self.schema = schema;
            }
        }
        if empty {
            self.phase = Phase::Epilog;
        } else {
            self.stack.push(Open {
                spec: None,
                last_rank: None,
            });
            self.phase = Phase::Body;
        }
        Ok(())
    }

    fn open(
        &mut self,
        s: &BytesStart<'_>,
        start: u64,
        empty: bool,
        el: &mut Element,
    ) -> Result<(), FormatError> {
        let qname = s.name();
        let name = qname.as_ref();
        if self.stack.len() >= self.limits.max_depth {
            let max = self.limits.max_depth;
            return Err(self.err(
                start,
                "xml-depth",
                format!(
                    "<{}> is nested deeper than the limit of {max}",
                    shorten(name)
                ),
            ));
        }
        let last = self.last.filter(|spec| same(spec.name, name));
        let Some(spec) = last.or_else(|| self.schema.find(name)) else {
            let root = self.schema.root;
            return Err(self.err(
                start,
                "xml-unknown-element",
                format!("<{root}> defines no element <{}>", shorten(name)),
            ));
        };
        let parent_name = self
            .stack
            .last()
            .and_then(|o| o.spec)
            .map_or(self.schema.root, |p| p.name);
        let expected_parent = spec.parent.unwrap_or(self.schema.root);
        if !same(parent_name, expected_parent) {
            return Err(self.err(
                start,
                "xml-nesting",
                format!(
                    "<{}> must be inside <{expected_parent}>, found it inside <{parent_name}>",
                    spec.name
                ),
            ));
        }
        let last_rank = self.stack.last().and_then(|o| o.last_rank);
        if let Some(last) = last_rank
            && last > spec.rank
        {
            let after: Vec<&str> = self
                .schema
                .elements
                .iter()
                .filter(|e| e.parent == spec.parent && e.rank > spec.rank && e.rank <= last)
                .map(|e| e.name)
                .collect();
            return Err(self.err(
                start,
                "xml-order",
                format!(
                    "<{}> must come before every <{}> in <{parent_name}>",
                    spec.name,
                    after.join(">, <")
                ),
            ));
        }
        if self.elements >= self.limits.max_records {
            let max = self.limits.max_records;
            return Err(self.err(
                start,
                "xml-too-many-records",
                format!("the file has more than the limit of {max} elements"),
            ));
        }
        el.reset(spec, self.position(start));
        self.attributes(s, spec, start, el)?;
        self.last = Some(spec);
        if let Some(top) = self.stack.last_mut() {
            top.last_rank = Some(spec.rank);
        }
        if !empty {
            self.stack.push(Open {
                spec: Some(spec),
                last_rank: None,
            });
        }
        self.elements += 1;
        Ok(())
    }

    /// The element's attribute values, unescaped, into `el`: each known,
    /// each once, none missing.
    fn attributes(
        &mut self,
        s: &BytesStart<'_>,
        spec: &'static ElementSpec,
        start: u64,
        el: &mut Element,
    ) -> Result<(), FormatError> {
        let mut text = std::mem::take(&mut el.text);
        for (n, attr) in AttrScan::new(s.attributes_raw()).enumerate() {
            let (key, value) =
                attr.map_err(|what| self.malformed_attribute(spec.name, &what, start))?;
            // Attributes are mostly written in the spec's order.
            let at = spec.attributes.get(n).filter(|a| same(a, key)).map(|_| n);
            let Some(i) = at.or_else(|| spec.attributes.iter().position(|a| *a == key)) else {
                return Err(self.err(
                    start,
                    "xml-unknown-attribute",
                    format!(
                        "<{}> has no attribute {:?} (expected {})",
                        spec.name,
                        shorten(key),
                        spec.attributes.join(", ")
                    ),
                ));
            };
            if el.spans.get(i).is_some_and(Option::is_some) {
                return Err(self.duplicate_attribute(spec.name, start));
            }
            let from = text.len();
            self.attr_value(value, spec.name, spec.attributes[i], start, &mut text)?;
            if let Some(slot) = el.spans.get_mut(i) {
                *slot = Some(from..text.len());
            }
        }
        el.text = text;
        if let Some(i) = el.spans.iter().position(Option::is_none) {
            let attr = spec.attributes.get(i).copied().unwrap_or("?");
            return Err(self.err(
                start,
                "xml-missing-attribute",
                format!("<{}> attribute {attr} is missing", spec.name),
            ));
        }
        Ok(())
    }

    /// Appends the attribute's value, unescaped and normalised, to `out`.
    fn attr_value(
        &mut self,
        value: &str,
        element: &str,
        key: &str,
        start: u64,
        out: &mut String,
    ) -> Result<(), FormatError> {
        let raw: &[u8] = value.as_bytes();
        if raw.len() > self.limits.max_field_bytes {
            let max = self.limits.max_field_bytes;
            return Err(self.err(
                start,
                "xml-attribute-too-large",
                format!(
                    "<{element}> attribute {key}: the value is longer than the limit of {max} bytes"
                ),
            ));
        }
        // Most values hold no reference, no whitespace to normalise and no
        // '<': they are their own text (the guard let only UTF-8 through).
        if !raw
            .iter()
            .any(|b| matches!(b, b'<' | b'&' | b'\t' | b'\n' | b'\r'))
        {
            out.push_str(value);
            return Ok(());
        }
        if raw.contains(&b'<') {
            return Err(self.err(
                start,
                "xml-syntax",
                format!("<{element}> attribute {key}: a raw '<' must be written &lt;"),
            ));
        }
        // Held as written (`Attribute::from` a pair would escape it).
        let attr = quick_xml::events::attributes::Attribute {
            key: quick_xml::name::QName(key),
            value: std::borrow::Cow::Borrowed(value),
        };
        match attr.normalized_value(XmlVersion::Explicit1_0) {
            Ok(v) => {
                out.push_str(&v);
                Ok(())
            }
            Err(QxError::Escape(e)) => {
                let what = match &e {
                    EscapeError::UnrecognizedEntity(_, name) => {
                        format!("found a reference to undeclared entity &{};", shorten(name))
                    }
                    other => format!("bad reference: {other}"),
                };
                Err(self.err(
                    start,
                    "xml-entity",
                    format!("<{element}> attribute {key}: {what}"),
                ))
            }
            Err(other) => Err(self.err(
                start,
                "xml-syntax",
                format!("<{element}> attribute {key}: {other}"),
            )),
        }
    }

    fn duplicate_attribute(&mut self, element: &str, start: u64) -> FormatError {
        self.err(
            start,
            "xml-duplicate-attribute",
            format!("<{element}> has the same attribute twice"),
        )
    }

    fn malformed_attribute(&mut self, element: &str, what: &str, start: u64) -> FormatError {
        self.err(
            start,
            "xml-syntax",
            format!("<{element}> has a malformed attribute: {what}"),
        )
    }

    fn map_error(&mut self, e: QxError, start: u64) -> FormatError {
        if let Some(g) = self.reader.get_mut().take_error() {
            return self.err(g.offset, g.code, g.problem);
        }
        let bom = self.bom_len();
        let at = (self.reader.error_position() + bom).max(start);
        match e {
            QxError::Io(io) => self.err(start, READ_FAILED, format!("read failed: {io}")),
            QxError::Syntax(SyntaxError::InvalidBangMarkup) => self.err(
                at,
                "xml-syntax",
                "expected a comment, CDATA or DOCTYPE after '<!'",
            ),
            QxError::Syntax(s) => {
                self.err(at, "xml-truncated", format!("the file ends early: {s}"))
            }
            QxError::IllFormed(IllFormedError::MismatchedEndTag { expected, found }) => self.err(
                at,
                "xml-end-tag",
                format!(
                    "expected </{}>, found </{}>",
                    shorten(&expected),
                    shorten(&found)
                ),
            ),
            QxError::IllFormed(IllFormedError::UnmatchedEndTag(name)) => self.err(
                at,
                "xml-end-tag",
                format!("found end tag </{}> with no open element", shorten(&name)),
            ),
            QxError::IllFormed(IllFormedError::MissingEndTag(name)) => self.err(
                at,
                "xml-truncated",
                format!("the file ends before </{}>", shorten(&name)),
            ),
            QxError::IllFormed(
                IllFormedError::MissingDeclVersion(_) | IllFormedError::UnknownVersion,
            ) => self.err(
                at,
                "xml-declaration",
                "expected <?xml version=\"1.0\" encoding=\"UTF-8\"?>",
            ),
            QxError::IllFormed(IllFormedError::MissingDoctypeName) => self.err(
                at,
                "xml-doctype",
                "found a DOCTYPE; DOCTYPE and entity declarations are refused",
            ),
            QxError::IllFormed(IllFormedError::UnclosedReference) => self.err(
                at,
                "xml-entity",
                "found '&' not starting a reference (write &amp;)",
            ),
            QxError::Encoding(e) => self.err(at, "xml-utf8", format!("invalid utf-8: {e}")),
            QxError::Escape(e) => self.err(at, "xml-entity", format!("bad reference: {e}")),
            other => self.err(at, "xml-syntax", format!("malformed xml: {other}")),
        }
    }

    fn bom_len(&self) -> u64 {
        // quick-xml counts offsets after the byte order mark the guard skipped.
        let g = self.reader.get_ref();
        g.consumed.saturating_sub(self.reader.buffer_position())
    }

    /// Capacity of the event buffer (tests: it must not grow with the input).
    #[cfg(test)]
    pub(crate) fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }
}

fn is_blank(t: &[u8]) -> bool {
    t.iter().all(|b| is_space(*b))
}

/// `a == b` for the short names of tags and attributes, compared in place
/// (a call to `memcmp` costs more than the comparison).
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}
