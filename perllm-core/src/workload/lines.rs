//! Line-by-line reading shared by the trace and bandwidth readers: every record is one physical
//! line, so the line number an error names is exactly the line the record is on.
//!
//! (The `csv` crate's reader, used before, stamps a record with the position where reading
//! started: after a blank line, or after the `\r` of a CRLF line whose `\n` it had not consumed
//! yet, that is the line before the record, so errors named the wrong row.)

use std::io::{BufRead, Read};

/// Longest line accepted in a trace or bandwidth file; a longer one is a fatal error (the file is
/// probably not text of the expected format). It bounds the memory one line can take.
pub const MAX_LINE_BYTES: u64 = 16 << 20;

/// Reads lines into a reused buffer, skipping blank ones.
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

/// One CSV line split into fields by `csv-core` (commas, double quotes, doubled quotes inside
/// quotes). The line's `\n` and `\r` are not terminators here: a `\r` stays at the end of the last
/// field, which every field parser trims.
pub(crate) struct CsvRecord {
    core: Box<csv_core::Reader>,
    fields: Vec<u8>,
    ends: Vec<usize>,
    len: usize,
}

impl CsvRecord {
    pub(crate) fn new() -> Self {
        CsvRecord {
            // `\n` never reaches the parser (it is cut off below), so a record is the whole line.
            core: Box::new(
                csv_core::ReaderBuilder::new()
                    .terminator(csv_core::Terminator::Any(b'\n'))
                    .build(),
            ),
            fields: vec![0; 256],
            ends: vec![0; 16],
            len: 0,
        }
    }

    /// Split `line` into fields.
    pub(crate) fn parse(&mut self, line: &[u8]) {
        use csv_core::ReadRecordResult as R;
        let mut input = line.strip_suffix(b"\n").unwrap_or(line);
        self.core.reset();
        let (mut nout, mut nend) = (0, 0);
        loop {
            // Once the input is used up, the empty slice tells the parser that the record ends.
            let (res, nin, o, e) =
                self.core
                    .read_record(input, &mut self.fields[nout..], &mut self.ends[nend..]);
            input = &input[nin..];
            nout += o;
            nend += e;
            match res {
                R::InputEmpty => {}
                R::OutputFull => self.fields.resize(self.fields.len() * 2, 0),
                R::OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                R::Record | R::End => break,
            }
        }
        self.len = nend;
    }

    /// Number of fields.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Field `i`, if the line has it.
    pub(crate) fn get(&self, i: usize) -> Option<&[u8]> {
        if i >= self.len {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.fields[start..self.ends[i]])
    }

    /// All fields.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len).map(|i| self.get(i).expect("in range"))
    }
}
