//! Reading server-sent events: split a byte stream into the `data:` payloads of its events.

/// Accumulates bytes and yields each complete event's `data` (the lines joined with `\n`).
#[derive(Default, Debug)]
pub struct SseReader {
    buf: Vec<u8>,
}

impl SseReader {
    /// Feed bytes; push the data of every event they complete into `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<String>) {
        self.buf.extend_from_slice(bytes);
        loop {
            let Some(end) = find_event_end(&self.buf) else {
                return;
            };
            let (ev_len, sep) = end;
            let ev: Vec<u8> = self.buf.drain(..ev_len + sep).take(ev_len).collect();
            let text = String::from_utf8_lossy(&ev);
            let mut data: Option<String> = None;
            for line in text.split('\n') {
                let line = line.strip_suffix('\r').unwrap_or(line);
                if let Some(v) = line.strip_prefix("data:") {
                    let v = v.strip_prefix(' ').unwrap_or(v);
                    match &mut data {
                        Some(d) => {
                            d.push('\n');
                            d.push_str(v);
                        }
                        None => data = Some(v.to_string()),
                    }
                }
            }
            if let Some(d) = data {
                out.push(d);
            }
        }
    }
}

/// Length of the first event and of its blank-line separator.
fn find_event_end(b: &[u8]) -> Option<(usize, usize)> {
    for i in 0..b.len() {
        if b[i..].starts_with(b"\n\n") {
            return Some((i, 2));
        }
        if b[i..].starts_with(b"\r\n\r\n") {
            return Some((i, 4));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_across_chunks() {
        let mut r = SseReader::default();
        let mut out = Vec::new();
        r.feed(b"data: {\"a\":1}\n\nda", &mut out);
        assert_eq!(out, vec!["{\"a\":1}".to_string()]);
        r.feed(b"ta: [DONE]\r\n\r\n", &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1], "[DONE]");
    }
}
