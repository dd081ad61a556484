//! Parsing on every core, in order: `check` and import read a file a block
//! of lines at a time, and the JSON of a block is parsed on a worker thread
//! while the caller works through the blocks before it. Results come back
//! in the order the blocks were read, so line numbers, the first errors
//! listed and the grouping by case are what one thread would give.
//!
//! At most `IN_FLIGHT` blocks are read ahead, so memory holds a few blocks,
//! never the file.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// Blocks read ahead of the one the caller is working on.
const IN_FLIGHT: usize = 4;

/// Worker threads: every core but the caller's, at least one.
fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8)
}

/// Calls `sink` with `f` of every block `source` yields, in `source`'s
/// order, `f` running on worker threads. `source` returns `None` at the
/// end; `sink` returns `false` to stop early (the blocks read ahead are
/// then dropped). A panic in `f` is raised again on the caller's thread
/// when its block's turn comes (the other workers then find no more work
/// and end), so it fails the command as on one thread, never hangs it.
pub fn ordered_map<T, R, F>(source: impl FnMut() -> Option<T>, f: F, sink: impl FnMut(R) -> bool)
where
    T: Send,
    R: Send,
    F: Fn(T) -> R + Sync,
{
    ordered_map_ahead(IN_FLIGHT, source, f, sink)
}

/// [`ordered_map`] with at most `in_flight` blocks read and not yet sunk
/// (at least one): fewer where the blocks are large and the sink is the
/// slow part, as a scan's chunks are.
pub fn ordered_map_ahead<T, R, F>(
    in_flight: usize,
    mut source: impl FnMut() -> Option<T>,
    f: F,
    mut sink: impl FnMut(R) -> bool,
) where
    T: Send,
    R: Send,
    F: Fn(T) -> R + Sync,
{
    let in_flight = in_flight.max(1) as u64;
    std::thread::scope(|s| {
        let (job_tx, job_rx) = mpsc::channel::<(u64, T)>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (done_tx, done_rx) = mpsc::channel::<(u64, std::thread::Result<R>)>();
        for _ in 0..workers() {
            let (job_rx, done_tx, f) = (Arc::clone(&job_rx), done_tx.clone(), &f);
            s.spawn(move || loop {
                let job = match job_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                let Ok((seq, block)) = job else { return };
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(block)));
                if done_tx.send((seq, r)).is_err() {
                    return;
                }
            });
        }
        drop(done_tx);
        let mut ahead = BTreeMap::new();
        let (mut sent, mut next) = (0u64, 0u64);
        let mut reading = true;
        loop {
            while reading && sent - next < in_flight {
                match source().map(|block| job_tx.send((sent, block))) {
                    Some(Ok(())) => sent += 1,
                    _ => reading = false,
                }
            }
            if next == sent {
                return;
            }
            while !ahead.contains_key(&next) {
                match done_rx.recv() {
                    Ok((seq, r)) => {
                        ahead.insert(seq, r);
                    }
                    // Every worker gone: nothing more will come.
                    Err(_) => return,
                }
            }
            while let Some(r) = ahead.remove(&next) {
                next += 1;
                match r {
                    Ok(r) => {
                        if !sink(r) {
                            return;
                        }
                    }
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        }
    });
}

/// Numbered lines read into one buffer: a block allocates twice, not once
/// per line. Lines of ASCII whitespace are skipped as they are read; the
/// rest are trimmed where [`LineBlock::lines`] hands them out, which leaves
/// out a line of only Unicode whitespace too (it still counts towards the
/// block's size).
#[derive(Default)]
pub struct LineBlock {
    text: String,
    lines: Vec<(usize, usize, usize)>,
}

impl LineBlock {
    /// An empty block with room for `bytes` of text and `lines` lines.
    pub fn with_capacity(bytes: usize, lines: usize) -> LineBlock {
        LineBlock {
            text: String::with_capacity(bytes),
            lines: Vec::with_capacity(lines),
        }
    }

    pub fn push(&mut self, n: usize, line: &str) {
        let line = line.trim();
        if !line.is_empty() {
            let start = self.text.len();
            self.text.push_str(line);
            self.lines.push((n, start, self.text.len()));
        }
    }

    /// Reads lines until the block holds `max` or the input ends; `n` is
    /// the number of the last line read. The lines go straight from the
    /// reader's buffer into the block's (one copy), and the block's text is
    /// checked to be UTF-8 once, not line by line; text that is not fails
    /// with the number of its line.
    pub fn fill(&mut self, r: &mut impl std::io::BufRead, n: &mut usize, max: usize) -> std::io::Result<()> {
        let first = self.lines.len();
        let mut bytes = std::mem::take(&mut self.text).into_bytes();
        while self.lines.len() < max {
            let start = bytes.len();
            let read = r.read_until(b'\n', &mut bytes).inspect_err(|_| self.lines.clear())?;
            if read == 0 {
                break;
            }
            *n += 1;
            // Blank lines go; the rest is trimmed by `lines` (Unicode
            // whitespace too, as `str::trim`), so only ASCII is looked at here.
            if bytes[start..].iter().all(u8::is_ascii_whitespace) {
                bytes.truncate(start);
            } else {
                self.lines.push((*n, start, bytes.len()));
            }
        }
        match String::from_utf8(bytes) {
            Ok(text) => {
                self.text = text;
                Ok(())
            }
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let line = self.lines[first..]
                    .iter()
                    .find(|&&(_, _, end)| at < end)
                    .map_or(*n, |&(line, _, _)| line);
                // Nothing of a failed block is kept: empty, it stays whole.
                self.lines.clear();
                Err(not_utf8(line))
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Bytes of text the block holds.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    /// The lines with their numbers, trimmed; a line of only whitespace
    /// (Unicode whitespace that `fill` let through) is left out.
    pub fn lines(&self) -> impl Iterator<Item = (usize, &str)> {
        self.lines
            .iter()
            .map(|&(n, a, b)| (n, self.text[a..b].trim()))
            .filter(|(_, line)| !line.is_empty())
    }
}

/// The error of text that is not UTF-8, naming its line (1-based).
pub fn not_utf8(line: usize) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("rad {line} är inte giltig UTF-8"),
    )
}

#[cfg(test)]
mod tests {
    use super::LineBlock;

    /// `fill` reads lines as `read_line` and `push` did: numbered from the
    /// file's first line, trimmed (Unicode whitespace too), blank lines
    /// skipped, a line longer than the reader's buffer whole.
    #[test]
    fn a_filled_block_holds_the_lines_numbered_and_trimmed() {
        let long = format!("{{\"id\":\"{}\"}}", "x".repeat(20_000));
        let text = format!("a\r\n\n  \t \n b \n\u{a0}\n{long}\n\u{a0}c\u{2003}\nlast");
        let mut r = std::io::BufReader::with_capacity(64, text.as_bytes());
        let (mut block, mut n) = (LineBlock::default(), 0);
        block.fill(&mut r, &mut n, 100).unwrap();
        let lines: Vec<(usize, &str)> = block.lines().collect();
        assert_eq!(
            lines,
            vec![(1, "a"), (4, "b"), (6, long.as_str()), (7, "c"), (8, "last")]
        );
        assert_eq!(n, 8);
        // At most `max` lines a block; the next block goes on from there.
        let mut r = std::io::BufReader::new("1\n2\n\n3\n4\n".as_bytes());
        let (mut first, mut n) = (LineBlock::default(), 0);
        first.fill(&mut r, &mut n, 2).unwrap();
        let mut second = LineBlock::with_capacity(16, 2);
        second.fill(&mut r, &mut n, 2).unwrap();
        assert_eq!(first.lines().collect::<Vec<_>>(), vec![(1, "1"), (2, "2")]);
        assert_eq!(second.lines().collect::<Vec<_>>(), vec![(4, "3"), (5, "4")]);
    }

    #[test]
    fn text_that_is_not_utf8_fails_with_its_line_number() {
        let mut bytes = b"{}\n{}\n\n{\"id\":\"".to_vec();
        bytes.extend([0xff, 0xfe]);
        bytes.extend(b"\"}\n{}\n");
        let (mut block, mut n) = (LineBlock::default(), 0);
        let e = block.fill(&mut bytes.as_slice(), &mut n, 100).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(e.to_string(), "rad 4 är inte giltig UTF-8");
    }

    #[test]
    fn results_come_in_the_order_read_and_a_stop_stops() {
        let mut n = 0;
        let mut seen = Vec::new();
        super::ordered_map(
            || {
                n += 1;
                (n <= 100).then_some(n)
            },
            |x: u32| {
                // Uneven work, so workers finish out of order.
                std::thread::sleep(std::time::Duration::from_micros(u64::from(100 - x) * 20));
                x * 2
            },
            |r| {
                seen.push(r);
                true
            },
        );
        assert_eq!(seen, (1..=100).map(|x| x * 2).collect::<Vec<_>>());
        let mut got = 0;
        super::ordered_map(
            || Some(1),
            |x: u32| x,
            |_| {
                got += 1;
                got < 10
            },
        );
        assert_eq!(got, 10, "the sink's false stops an endless source");
    }

    /// A scan's chunks are large: at most `in_flight` are read and not yet
    /// handed on, so memory holds that many, in the order read.
    #[test]
    fn no_more_blocks_are_read_ahead_than_asked() {
        use std::cell::Cell;
        let (read, handed, most) = (Cell::new(0u32), Cell::new(0u32), Cell::new(0u32));
        let mut order = Vec::new();
        super::ordered_map_ahead(
            2,
            || {
                read.set(read.get() + 1);
                most.set(most.get().max(read.get() - handed.get()));
                (read.get() <= 50).then_some(read.get())
            },
            |x: u32| x,
            |x| {
                handed.set(handed.get() + 1);
                order.push(x);
                true
            },
        );
        assert_eq!(order, (1..=50).collect::<Vec<_>>());
        assert!(most.get() <= 2, "{} blocks read ahead", most.get());
    }

    /// A worker's panic fails the call on the caller's thread, after the
    /// blocks before it were handed on; the other workers do not wait on.
    #[test]
    fn a_panic_in_a_worker_fails_the_call_and_does_not_hang_it() {
        let mut handed = Vec::new();
        let mut n = 0;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            super::ordered_map(
                || {
                    n += 1;
                    (n <= 50).then_some(n)
                },
                |x: u32| {
                    assert_ne!(x, 7, "block 7 is bad");
                    x
                },
                |r| {
                    handed.push(r);
                    true
                },
            )
        }));
        assert!(outcome.is_err(), "the panic reaches the caller");
        assert_eq!(handed, (1..7).collect::<Vec<_>>());
    }
}
