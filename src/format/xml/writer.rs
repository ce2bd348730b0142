//! The canonical writer: [`XmlWriter`] takes a payload's elements in
//! document order (start, attributes in the schema's order, end) and writes
//! the canonical form of the [`Schema`], refusing what the reader would
//! refuse (an element out of place or order, a bad value).

use std::io::Write;

use super::schema::{ElementSpec, Schema};
use crate::format::WriteError;
use crate::ident::TechId;

/// One open element on the writer's stack.
#[derive(Debug)]
struct WOpen {
    spec: Option<&'static ElementSpec>,
    id: Option<TechId>,
    last_rank: Option<u8>,
}

/// Writes the canonical document of a [`Schema`]: the declaration, 2-space
/// indentation, one element per line, attributes in spec order, self-closing
/// when childless, `& < > "` escaped, LF line ends, a final newline.
///
/// Writes one line at a time to `out`; give it a buffered writer.
pub struct XmlWriter<W: Write> {
    out: W,
    schema: &'static Schema,
    stack: Vec<WOpen>,
    /// The last start tag, not yet terminated (`>` or `/>` depends on
    /// whether a child follows).
    pending: Option<String>,
    records: u64,
}

impl<W: Write> XmlWriter<W> {
    pub fn new(mut out: W, schema: &'static Schema) -> Result<XmlWriter<W>, WriteError> {
        out.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")?;
        Ok(XmlWriter {
            out,
            schema,
            stack: vec![WOpen {
                spec: None,
                id: None,
                last_rank: None,
            }],
            pending: Some(format!("<{} version=\"{}\"", schema.root, schema.version)),
            records: 0,
        })
    }

    /// Writes element `name` under the open element of its parent kind whose
    /// id is `parent` (`None` for children of the root). `id` identifies the
    /// element for its own children; `values` follow the spec's attribute
    /// order.
    pub fn element(
        &mut self,
        name: &str,
        parent: Option<TechId>,
        id: Option<TechId>,
        values: &[&str],
    ) -> Result<(), WriteError> {
        let Some(spec) = self.schema.find(name) else {
            return Err(WriteError::Invalid(format!(
                "<{}> defines no element <{name}>",
                self.schema.root
            )));
        };
        if values.len() != spec.attributes.len() {
            return Err(WriteError::Invalid(format!(
                "<{name}> takes {} attributes, given {}",
                spec.attributes.len(),
                values.len()
            )));
        }
        // Find the parent on the stack before changing anything.
        let Some(level) = self
            .stack
            .iter()
            .rposition(|o| o.spec.map(|s| s.name) == spec.parent)
        else {
            return Err(WriteError::Invalid(format!(
                "<{name}> needs an open <{}>, none is open",
                spec.parent.unwrap_or(self.schema.root)
            )));
        };
        if let Some(open) = self.stack.get(level) {
            if spec.parent.is_some() && open.id != parent {
                return Err(WriteError::Invalid(format!(
                    "<{name}> belongs to <{}> {}, but the open one is {}",
                    spec.parent.unwrap_or(self.schema.root),
                    parent.map_or("(none)".to_owned(), |p| p.to_string()),
                    open.id.map_or("(none)".to_owned(), |p| p.to_string()),
                )));
            }
            if let Some(last) = open.last_rank
                && last > spec.rank
            {
                return Err(WriteError::Invalid(format!(
                    "<{name}> comes after a later section of <{}>; write items in section order",
                    spec.parent.unwrap_or(self.schema.root)
                )));
            }
        }
        while self.stack.len() > level + 1 {
            self.close_top()?;
        }
        if let Some(p) = self.pending.take() {
            self.out.write_all(p.as_bytes())?;
            self.out.write_all(b">\n")?;
        }
        if let Some(open) = self.stack.last_mut() {
            open.last_rank = Some(spec.rank);
        }
        let mut line = "  ".repeat(self.stack.len());
        line.push('<');
        line.push_str(name);
        for (key, value) in spec.attributes.iter().zip(values) {
            line.push(' ');
            line.push_str(key);
            line.push_str("=\"");
            escape_into(&mut line, value);
            line.push('"');
        }
        self.pending = Some(line);
        self.stack.push(WOpen {
            spec: Some(spec),
            id,
            last_rank: None,
        });
        self.records += 1;
        Ok(())
    }

    fn close_top(&mut self) -> Result<(), WriteError> {
        let Some(top) = self.stack.pop() else {
            return Ok(());
        };
        if let Some(p) = self.pending.take() {
            self.out.write_all(p.as_bytes())?;
            self.out.write_all(b"/>\n")?;
        } else {
            let name = top.spec.map_or(self.schema.root, |s| s.name);
            let line = format!("{}</{name}>\n", "  ".repeat(self.stack.len()));
            self.out.write_all(line.as_bytes())?;
        }
        Ok(())
    }

    /// Closes every open element, flushes, and returns the output with the
    /// number of elements written (the root excluded).
    pub fn finish(mut self) -> Result<(W, u64), WriteError> {
        while !self.stack.is_empty() {
            self.close_top()?;
        }
        self.out.flush()?;
        Ok((self.out, self.records))
    }
}

/// Escapes an attribute value for double quotes.
pub(super) fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}
