//! Line-aware reading shared by the trace and bandwidth readers: the line number an error names is
//! exactly the line the record starts on.
//!
//! (The `csv` crate's reader, used before, stamps a record with the position where reading
//! started: after a blank line, or after the `\r` of a CRLF line whose `\n` it had not consumed
//! yet, that is the line before the record, so errors named the wrong row.)

use std::io::{BufRead, Read};

/// Longest line accepted in a trace or bandwidth file; a longer one is a fatal error (the file is
/// probably not text of the expected format). It bounds the memory one line can take.
pub const MAX_LINE_BYTES: u64 = 16 << 20;

/// Most fields a CSV record may have (no trace format has more than a dozen columns); bounds the
/// memory of a line of commas.
const MAX_FIELDS: usize = 1 << 16;

/// Reads lines into a reused buffer, skipping blank ones (for JSONL).
pub(crate) struct Lines<R> {
    rdr: R,
    buf: Vec<u8>,
    line: u64,
}

impl<R: BufRead> Lines<R> {
    pub(crate) fn new(rdr: R) -> Self {
        Lines {
            rdr,
            buf: Vec::with_capacity(256),
            line: 0,
        }
    }

    /// Advance to the next line that is not blank (empty or ASCII whitespace only) and return its
    /// 1-based number; `None` at the end. `Err((line, message))` for a read error or a line longer
    /// than [`MAX_LINE_BYTES`].
    pub(crate) fn advance(&mut self) -> Result<Option<u64>, (u64, String)> {
        loop {
            self.buf.clear();
            let n = (&mut self.rdr)
                .take(MAX_LINE_BYTES)
                .read_until(b'\n', &mut self.buf)
                .map_err(|e| (self.line + 1, format!("cannot read: {e}")))?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            if n as u64 == MAX_LINE_BYTES && self.buf.last() != Some(&b'\n') {
                return Err((
                    self.line,
                    format!("line is longer than {MAX_LINE_BYTES} bytes"),
                ));
            }
            if !self.buf.iter().all(u8::is_ascii_whitespace) {
                return Ok(Some(self.line));
            }
        }
    }

    /// The current line, with its `\n` (if it had one).
    pub(crate) fn text(&self) -> &[u8] {
        &self.buf
    }
}

/// A CSV reader (`csv-core` for quoting, fields parsed straight from the `BufRead`'s buffer) that
/// knows the line each record starts on: it skips empty lines itself, so the parser never does,
/// and the parser's own `\n` count is then the line. Records end at `\n` only (a CRLF line keeps
/// its `\r` at the end of its last field, which every field parser trims); a quoted field may span
/// lines. A record of one whitespace-only field is a blank line and skipped. With
/// [`CsvReader::with_comments`], a line starting with `#` between records is skipped too.
/// UTF-8 byte-order marks at the start of lines before the first record are dropped.
pub(crate) struct CsvReader<R> {
    rdr: R,
    core: Box<csv_core::Reader>,
    fields: Vec<u8>,
    ends: Vec<usize>,
    len: usize,
    comments: bool,
    /// Whether a record has been returned. Until then byte-order marks at the start of a line are
    /// dropped here: `csv-core` would drop one at its first read and then skip the empty rest of
    /// that line itself, uncounted, so the next record would be named by the wrong line.
    started: bool,
}

impl<R: BufRead> CsvReader<R> {
    pub(crate) fn new(rdr: R) -> Self {
        CsvReader {
            rdr,
            core: Box::new(
                csv_core::ReaderBuilder::new()
                    .terminator(csv_core::Terminator::Any(b'\n'))
                    .build(),
            ),
            fields: vec![0; 256],
            ends: vec![0; 16],
            len: 0,
            comments: false,
            started: false,
        }
    }

    /// Also skip comment lines: lines whose first byte is `#` (counted like any other line).
    pub(crate) fn with_comments(mut self) -> Self {
        self.comments = true;
        self
    }

    /// Read the next record that is not blank and return the 1-based line it starts on; `None` at
    /// the end. `Err((line, message))` for a read error or a record longer than
    /// [`MAX_LINE_BYTES`].
    pub(crate) fn advance(&mut self) -> Result<Option<u64>, (u64, String)> {
        use csv_core::ReadRecordResult as R;
        loop {
            // Skip empty lines here, counting them, so that the parser starts on the record.
            loop {
                let line = self.core.line();
                let buf = self
                    .rdr
                    .fill_buf()
                    .map_err(|e| (line, format!("cannot read: {e}")))?;
                let n = buf.iter().take_while(|&&b| b == b'\n').count();
                if n > 0 {
                    self.rdr.consume(n);
                    self.core.set_line(line + n as u64);
                } else if self.comments && buf.first() == Some(&b'#') {
                    self.skip_line(line)?;
                } else if !self.started && buf.starts_with(b"\xEF\xBB\xBF") {
                    self.rdr.consume(3);
                } else {
                    break;
                }
            }
            let start = self.core.line();
            let (mut nout, mut nend) = (0, 0);
            loop {
                let buf = self
                    .rdr
                    .fill_buf()
                    .map_err(|e| (start, format!("cannot read: {e}")))?;
                let (res, nin, o, e) =
                    self.core
                        .read_record(buf, &mut self.fields[nout..], &mut self.ends[nend..]);
                self.rdr.consume(nin);
                nout += o;
                nend += e;
                match res {
                    R::InputEmpty => {}
                    R::OutputFull => {
                        if self.fields.len() as u64 >= MAX_LINE_BYTES {
                            return Err((
                                start,
                                format!("line is longer than {MAX_LINE_BYTES} bytes"),
                            ));
                        }
                        self.fields.resize(self.fields.len() * 2, 0);
                    }
                    R::OutputEndsFull => {
                        if self.ends.len() >= MAX_FIELDS {
                            return Err((
                                start,
                                format!("a line has more than {MAX_FIELDS} fields"),
                            ));
                        }
                        self.ends.resize(self.ends.len() * 2, 0);
                    }
                    R::Record => break,
                    R::End => return Ok(None),
                }
            }
            self.len = nend;
            let blank = nend == 1
                && self.fields[..self.ends[0]]
                    .iter()
                    .all(u8::is_ascii_whitespace);
            if !blank {
                self.started = true;
                return Ok(Some(start));
            }
        }
    }

    /// Consume the rest of the current line, `line`, with its `\n`, and count it.
    fn skip_line(&mut self, line: u64) -> Result<(), (u64, String)> {
        let mut len = 0u64;
        loop {
            let buf = self
                .rdr
                .fill_buf()
                .map_err(|e| (line, format!("cannot read: {e}")))?;
            if buf.is_empty() {
                return Ok(()); // the last line, without a `\n`
            }
            match buf.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.rdr.consume(i + 1);
                    self.core.set_line(line + 1);
                    return Ok(());
                }
                None => {
                    let k = buf.len();
                    self.rdr.consume(k);
                    len += k as u64;
                    if len >= MAX_LINE_BYTES {
                        return Err((line, format!("line is longer than {MAX_LINE_BYTES} bytes")));
                    }
                }
            }
        }
    }

    /// Number of fields of the current record.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Field `i` of the current record, if it has one.
    pub(crate) fn get(&self, i: usize) -> Option<&[u8]> {
        if i >= self.len {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.fields[start..self.ends[i]])
    }

    /// All fields of the current record.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len).map(|i| self.get(i).expect("in range"))
    }
}
