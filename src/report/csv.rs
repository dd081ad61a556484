//! The one CSV writer: every export (the deviation list and the access log
//! on the pages, the quarterly report, `svu-vakt report adherence`) writes
//! its rows through a [`Table`] — the `csv` crate's quoting — and every cell
//! through one formula guard, [`guard`]. What differs between exports is
//! only the [`Dialect`].

use std::borrow::Cow;

use csv::{Terminator, WriterBuilder};

/// How an export lays its cells out.
#[derive(Debug, Clone, Copy)]
pub struct Dialect {
    delimiter: u8,
    crlf: bool,
    /// A byte-order mark first, so Excel reads the file as UTF-8.
    bom: bool,
    /// Quote a cell holding `;` even where `;` does not separate cells: in
    /// Swedish Excel it does.
    quote_semicolons: bool,
}

impl Dialect {
    /// For Excel with Swedish settings (the pages' downloads): `;` between
    /// cells, CRLF, a BOM.
    pub const EXCEL: Dialect = Dialect {
        delimiter: b';',
        crlf: true,
        bom: true,
        quote_semicolons: true,
    };
    /// The quarterly report: `,` between cells, LF, and a cell with `;` quoted.
    pub const REPORT: Dialect = Dialect {
        delimiter: b',',
        crlf: false,
        bom: false,
        quote_semicolons: true,
    };
    /// Plain CSV for programs (`svu-vakt report adherence`): `,` and LF.
    pub const PLAIN: Dialect = Dialect {
        delimiter: b',',
        crlf: false,
        bom: false,
        quote_semicolons: false,
    };
}

/// A cell a spreadsheet would run as a formula — one that starts with `=`,
/// `+`, `-`, `@`, a tab or a carriage return — gets a leading apostrophe,
/// unless it is a plain number (`-3`, `12.5`), so negative figures stay
/// figures. The one guard of every export (docs/decisions.md).
pub fn guard(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) && !plain_number(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// An optional sign, digits, and optionally a point and more digits: what
/// svu-vakt writes for a number, and nothing a spreadsheet would evaluate.
fn plain_number(s: &str) -> bool {
    let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, "1"));
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && digits(fraction)
}

/// Rows written one after another, each cell guarded; sections may be
/// separated by lines of plain text (the quarterly report's titles).
pub struct Table {
    builder: WriterBuilder,
    out: Vec<u8>,
}

impl Table {
    pub fn new(dialect: Dialect) -> Table {
        let mut builder = WriterBuilder::new();
        builder
            .delimiter(dialect.delimiter)
            .terminator(if dialect.crlf {
                Terminator::CRLF
            } else {
                Terminator::Any(b'\n')
            })
            // A writer per row: its buffer need not hold more.
            .buffer_capacity(512);
        if dialect.quote_semicolons {
            // The crate quotes every cell that holds its comment character.
            builder.comment(Some(b';'));
        }
        let out = if dialect.bom {
            "\u{feff}".as_bytes().to_vec()
        } else {
            Vec::new()
        };
        Table { builder, out }
    }

    /// One row, every cell through [`guard`].
    pub fn row<I, S>(&mut self, cells: I) -> anyhow::Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let guarded: Vec<String> = cells.into_iter().map(|c| guard(c.as_ref()).into_owned()).collect();
        let mut writer = self.builder.from_writer(&mut self.out);
        writer.write_record(&guarded)?;
        writer.flush()?;
        Ok(())
    }

    /// Text as it is, between rows (not a cell: no quoting, no guard).
    pub fn text(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
    }

    /// The file's text.
    pub fn finish(self) -> anyhow::Result<String> {
        Ok(String::from_utf8(self.out)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_guarded_and_plain_numbers_are_not() {
        for cell in [
            "=HYPERLINK(\"http://x\")",
            "-1+1",
            "+A1",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "-",
            "-inf",
            "-1e5",
            "-1.",
            "-.5",
        ] {
            assert_eq!(guard(cell), format!("'{cell}"), "{cell:?}");
        }
        for cell in ["-3", "12.5", "+4", "-0.25", "0", "SVU-1", "", "1-2"] {
            assert_eq!(guard(cell), cell, "{cell:?}");
        }
    }

    #[test]
    fn each_dialect_quotes_as_the_exports_always_have() {
        let write = |d: Dialect| {
            let mut t = Table::new(d);
            t.row(["a;b", "c,d", "e\"f", "g"]).unwrap();
            t.text("# x\n");
            t.row(["h"]).unwrap();
            t.finish().unwrap()
        };
        assert_eq!(write(Dialect::EXCEL), "\u{feff}\"a;b\";c,d;\"e\"\"f\";g\r\n# x\nh\r\n");
        assert_eq!(write(Dialect::REPORT), "\"a;b\",\"c,d\",\"e\"\"f\",g\n# x\nh\n");
        assert_eq!(write(Dialect::PLAIN), "a;b,\"c,d\",\"e\"\"f\",g\n# x\nh\n");
    }
}
