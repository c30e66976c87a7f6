//! Byte-level mutations of a text, for the property tests that feed readers broken input: the
//! trace readers' (`trace_fuzz.rs`) and the scenario language's (`perllm-dsl/tests/it/fuzz.rs`,
//! which includes this file with `#[path]`). Each test draws its own mix of mutations.

/// One mutation; positions are taken modulo the text's length (lines: modulo the line count).
#[derive(Clone, Debug)]
#[allow(dead_code)] // each test draws its own mix: not every one builds every kind
pub enum Mutation {
    /// Overwrite the byte at a position.
    ByteFlip(usize, u8),
    /// Cut the text at a position.
    Truncate(usize),
    /// Delete up to `len` bytes from a position.
    Delete(usize, usize),
    /// Insert token `t` (modulo the token count) at a position.
    Insert(usize, usize),
    /// Replace the digit run at or after a position by number `k` (modulo the number count;
    /// nothing without numbers).
    Number(usize, usize),
    DuplicateLine(usize),
    DeleteLine(usize),
    SwapLines(usize, usize),
}

/// Split into lines, each keeping its `\n`.
fn split_lines(b: &[u8]) -> Vec<Vec<u8>> {
    b.split_inclusive(|&c| c == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// Apply `muts` to `src` in order; `Insert` takes its bytes from `tokens`, `Number` its text
/// from `numbers`.
pub fn apply<T: AsRef<[u8]>>(
    src: &[u8],
    muts: &[Mutation],
    tokens: &[T],
    numbers: &[&str],
) -> Vec<u8> {
    let mut b = src.to_vec();
    for m in muts {
        let n = b.len().max(1);
        match *m {
            Mutation::ByteFlip(a, v) => {
                if let Some(x) = b.get_mut(a % n) {
                    *x = v;
                }
            }
            Mutation::Truncate(a) => b.truncate(a % n),
            Mutation::Delete(a, len) => {
                let a = a % n;
                let e = (a + len).min(b.len());
                if a < e {
                    b.drain(a..e);
                }
            }
            Mutation::Insert(a, t) => {
                let a = a % (b.len() + 1);
                b.splice(a..a, tokens[t % tokens.len()].as_ref().iter().copied());
            }
            Mutation::Number(a, k) => {
                let a = a % n;
                let number = numbers.get(k % numbers.len().max(1));
                if let (Some(number), Some(s)) =
                    (number, (a..b.len()).find(|&i| b[i].is_ascii_digit()))
                {
                    let e = (s..b.len())
                        .find(|&i| !b[i].is_ascii_digit())
                        .unwrap_or(b.len());
                    b.splice(s..e, number.bytes());
                }
            }
            Mutation::DuplicateLine(a) | Mutation::DeleteLine(a) | Mutation::SwapLines(a, _) => {
                let mut lines = split_lines(&b);
                if lines.is_empty() {
                    continue;
                }
                let i = a % lines.len();
                match *m {
                    Mutation::DuplicateLine(_) => {
                        let l = lines[i].clone();
                        lines.insert(i, l);
                    }
                    Mutation::DeleteLine(_) => {
                        lines.remove(i);
                    }
                    Mutation::SwapLines(_, y) => {
                        let j = y % lines.len();
                        lines.swap(i, j);
                    }
                    _ => unreachable!(),
                }
                b = lines.concat();
            }
        }
    }
    b
}
