//! Reading an export line by line with a cap: a line longer than
//! [`MAX_LINE_BYTES`] is reported by its number and never held in memory,
//! and a CSV export's CRLF and lone CR line ends are read as LF.

pub(super) type NumberedLine = (usize, String);

/// A reader that knows how far into the file it has handed out.
pub(super) struct Tell<R> {
    pub inner: R,
    pub pos: u64,
}

impl<R: std::io::BufRead> std::io::Read for Tell<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: std::io::BufRead> std::io::BufRead for Tell<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, n: usize) {
        self.pos += n as u64;
        self.inner.consume(n);
    }
}

/// The longest line read: an event is well under a kilobyte; a longer line
/// is reported, never held in memory.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// One line into `buf` (without its line break), at most `cap` bytes kept:
/// `None` at the end of the input, `Some(false)` when the line was longer
/// (the rest is skipped).
pub(super) fn read_line_capped(
    r: &mut impl std::io::BufRead,
    buf: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut fits = true;
    let mut any = false;
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            return Ok(any.then_some(fits));
        }
        any = true;
        let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        if fits && buf.len() + part.len() <= cap {
            buf.extend_from_slice(part);
        } else {
            fits = false;
            buf.clear();
        }
        let used = done.unwrap_or(chunk.len());
        r.consume(used);
        if done.is_some() {
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(Some(fits));
        }
    }
}

/// A line of a CSV export longer than [`MAX_LINE_BYTES`], by number: the
/// error [`LineCap`] stops the CSV reader with.
#[derive(Debug)]
pub struct LongLine(pub usize);

impl std::fmt::Display for LongLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rad {} är längre än {MAX_LINE_BYTES} byte", self.0)
    }
}

impl std::error::Error for LongLine {}

/// Passes a CSV export through with CRLF and lone CR line ends made LF,
/// failing with [`LongLine`] once a line runs past [`MAX_LINE_BYTES`]: the
/// CSV reader holds a whole record in memory, and a gigabyte without a line
/// break must not become one. (The CSV reader numbers the lines of a CRLF
/// or CR file wrongly; with LF it names the line an editor shows.)
pub struct LineCap<R> {
    inner: R,
    line: usize,
    run: usize,
    /// A `\r` that ended the last read: dropped if a `\n` follows, a line
    /// end of its own otherwise.
    pending_cr: bool,
    /// The second byte of a read into a one-byte buffer.
    spill: Option<u8>,
}

impl<R> LineCap<R> {
    pub fn new(inner: R) -> LineCap<R> {
        LineCap {
            inner,
            line: 1,
            run: 0,
            pending_cr: false,
            spill: None,
        }
    }
}

impl<R: std::io::Read> std::io::Read for LineCap<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(b) = self.spill.take() {
            buf[0] = b;
            return Ok(1);
        }
        if buf.len() == 1 {
            // The line-end work below needs room for two bytes.
            let mut two = [0u8; 2];
            let n = self.read(&mut two)?;
            if n == 2 {
                self.spill = Some(two[1]);
            }
            buf[0] = two[0];
            return Ok(n.min(1));
        }
        loop {
            let held = usize::from(self.pending_cr);
            let n = self.inner.read(&mut buf[held..])?;
            if held == 1 {
                buf[0] = b'\r';
            }
            self.pending_cr = false;
            let total = held + n;
            if n == 0 {
                if held == 1 {
                    // A CR at the very end: a line end.
                    buf[0] = b'\n';
                    self.line += 1;
                    self.run = 0;
                }
                return Ok(total);
            }
            let mut kept = 0;
            for i in 0..total {
                let mut b = buf[i];
                if b == b'\r' {
                    if i + 1 == total {
                        self.pending_cr = true;
                        continue;
                    }
                    if buf[i + 1] == b'\n' {
                        continue;
                    }
                    b = b'\n';
                }
                if b == b'\n' {
                    self.line += 1;
                    self.run = 0;
                } else {
                    self.run += 1;
                    if self.run > MAX_LINE_BYTES {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            LongLine(self.line),
                        ));
                    }
                }
                buf[kept] = b;
                kept += 1;
            }
            if kept > 0 {
                return Ok(kept);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_line_is_skipped_and_the_next_read_whole() {
        let input = format!("kort\r\n{}\nnästa\nsista", "x".repeat(100));
        let mut r = std::io::BufReader::with_capacity(16, input.as_bytes());
        let mut buf = Vec::new();
        let mut got = Vec::new();
        while let Some(fits) = read_line_capped(&mut r, &mut buf, 50).unwrap() {
            got.push((fits, String::from_utf8(buf.clone()).unwrap()));
        }
        assert_eq!(
            got,
            vec![
                (true, "kort".to_string()),
                (false, String::new()),
                (true, "nästa".to_string()),
                (true, "sista".to_string())
            ]
        );
    }

    /// Reads through a reader that hands out one byte at a time, so that a
    /// `\r` and its `\n` fall in different reads.
    struct Trickle<'a>(&'a [u8]);

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let Some((&b, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            buf[0] = b;
            self.0 = rest;
            Ok(1)
        }
    }

    #[test]
    fn crlf_and_a_lone_cr_become_lf_whatever_the_reads() {
        let input = b"a;b\r\nc\rd;e\r\n\r\nf\r";
        let expected = b"a;b\nc\nd;e\n\nf\n";
        for whole in [true, false] {
            let mut out = Vec::new();
            if whole {
                std::io::Read::read_to_end(&mut LineCap::new(&input[..]), &mut out).unwrap();
            } else {
                std::io::Read::read_to_end(&mut LineCap::new(Trickle(input)), &mut out).unwrap();
            }
            assert_eq!(out, expected, "whole reads: {whole}");
        }
        // A reader asking one byte at a time gets the same.
        let mut cap = LineCap::new(&input[..]);
        let mut out = Vec::new();
        let mut one = [0u8; 1];
        while std::io::Read::read(&mut cap, &mut one).unwrap() == 1 {
            out.push(one[0]);
        }
        assert_eq!(out, expected);
    }

    #[test]
    fn an_old_mac_file_is_read_line_by_line_not_capped_as_one_line() {
        let rows = 2 * MAX_LINE_BYTES / 1000;
        let input = format!("{}\r", "x".repeat(1000)).repeat(rows);
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut LineCap::new(input.as_bytes()), &mut out).unwrap();
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), rows);
    }

    #[test]
    fn one_byte_reads_still_hit_the_cap() {
        let input = "x".repeat(MAX_LINE_BYTES + 1);
        let mut cap = LineCap::new(input.as_bytes());
        let mut one = [0u8; 1];
        let e = loop {
            match std::io::Read::read(&mut cap, &mut one) {
                Ok(1) => continue,
                Ok(_) => panic!("read to the end past the cap"),
                Err(e) => break e,
            }
        };
        assert!(e.get_ref().is_some_and(|i| i.is::<LongLine>()));
    }

    #[test]
    fn a_line_past_the_cap_is_named_by_its_number() {
        let input = format!("kort\r\nkort\n{}\n", "x".repeat(MAX_LINE_BYTES + 1));
        let mut out = Vec::new();
        let e = std::io::Read::read_to_end(&mut LineCap::new(input.as_bytes()), &mut out).unwrap_err();
        let long = e.get_ref().and_then(|i| i.downcast_ref::<LongLine>()).map(|l| l.0);
        assert_eq!(long, Some(3));
    }
}
