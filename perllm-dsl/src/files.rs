//! Reading input files safely: only regular files are read, and every read is bounded.
//!
//! A path is checked with `stat` (following links) before it is opened, so a FIFO is refused
//! instead of blocking for ever on `open`, and a device (`/dev/zero`, `/dev/urandom`) instead of
//! being read until memory runs out. A file larger than the limit of its kind fails at once, from
//! its size (a 2 GB sparse file is not read), and the read itself stops one byte past the limit
//! in case the file grows meanwhile.

use std::fs::{File, Metadata};
use std::io::Read;
use std::path::Path;

/// Largest scenario file (`.perllm`, `.toml`, `.json`).
pub const MAX_SCENARIO_BYTES: u64 = 256 << 20;
/// Largest series file (bandwidth factors over time).
pub const MAX_SERIES_BYTES: u64 = 64 << 20;
/// Largest cost-model profile table.
pub const MAX_PROFILE_BYTES: u64 = 64 << 20;
/// Largest results file read by `merge` and `plot`.
pub const MAX_RESULTS_BYTES: u64 = 512 << 20;

/// What a file is, for messages: "a character device", "a FIFO (named pipe)", ...
pub fn kind_of(m: &Metadata) -> &'static str {
    let t = m.file_type();
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a directory"
    } else if t.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

/// A byte count for messages: `2.0 GiB`, `256 MiB`, `512 bytes`.
pub fn size_text(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (u, name) in UNITS {
        if n >= u {
            return if n.is_multiple_of(u) {
                format!("{} {name}", n / u)
            } else {
                format!("{:.1} {name}", n as f64 / u as f64)
            };
        }
    }
    format!("{n} bytes")
}

/// An io error's message without the "(os error N)" suffix.
fn io_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_lowercase(),
        None => s,
    }
}

/// The metadata of `path` (a `what`, e.g. "scenario file") if it is a regular file of at most
/// `limit` bytes, else why not, as a sentence naming it. Does not open the file.
pub fn check(path: &Path, what: &str, limit: u64) -> Result<Metadata, String> {
    let m = std::fs::metadata(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("the {what} `{}` does not exist", path.display())
        } else {
            cannot_read(path, what, &e)
        }
    })?;
    if !m.is_file() {
        return Err(not_regular(path, what, &m));
    }
    if m.len() > limit {
        return Err(format!(
            "the {what} `{}` is {}, more than the {} a {what} may have",
            path.display(),
            size_text(m.len()),
            size_text(limit)
        ));
    }
    Ok(m)
}

/// Open `path` for reading after [`check`]; the file, re-checked on the open handle (the path may
/// have been replaced meanwhile). Reads of it should go through `take(limit)`.
pub fn open(path: &Path, what: &str, limit: u64) -> Result<File, String> {
    check(path, what, limit)?;
    let f = File::open(path).map_err(|e| cannot_read(path, what, &e))?;
    let m = f.metadata().map_err(|e| cannot_read(path, what, &e))?;
    if !m.is_file() {
        return Err(not_regular(path, what, &m));
    }
    Ok(f)
}

/// "cannot read the WHAT `PATH`: why".
fn cannot_read(path: &Path, what: &str, e: &std::io::Error) -> String {
    format!(
        "cannot read the {what} `{}`: {}",
        path.display(),
        io_text(e)
    )
}

/// "the WHAT `PATH` is a directory (...), not a regular file".
fn not_regular(path: &Path, what: &str, m: &Metadata) -> String {
    format!(
        "the {what} `{}` is {}, not a regular file",
        path.display(),
        kind_of(m)
    )
}

/// The whole content of `path`, a regular file of at most `limit` bytes.
pub fn read(path: &Path, what: &str, limit: u64) -> Result<Vec<u8>, String> {
    let f = open(path, what, limit)?;
    let mut buf = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| cannot_read(path, what, &e))?;
    if buf.len() as u64 > limit {
        return Err(format!(
            "the {what} `{}` grew past the {} a {what} may have while it was read",
            path.display(),
            size_text(limit)
        ));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(size_text(256 << 20), "256 MiB");
        assert_eq!(size_text(3 << 29), "1.5 GiB");
        assert_eq!(size_text(512), "512 bytes");
    }

    #[test]
    fn regular_files_within_the_limit_are_read() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("a.csv");
        std::fs::write(&p, "0123456789").unwrap();
        assert_eq!(read(&p, "series file", 10).unwrap(), b"0123456789");
        let e = read(&p, "series file", 9).unwrap_err();
        assert!(
            e.ends_with("is 10 bytes, more than the 9 bytes a series file may have"),
            "{e}"
        );
        let e = read(t.path(), "series file", 9).unwrap_err();
        assert!(e.ends_with("is a directory, not a regular file"), "{e}");
        let e = read(&t.path().join("none"), "series file", 9).unwrap_err();
        assert!(e.ends_with("does not exist"), "{e}");
    }

    /// A sparse file far over the limit fails from its size, without being read.
    #[test]
    fn huge_sparse_files_fail_at_once() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("huge.perllm");
        let f = File::create(&p).unwrap();
        f.set_len(2 << 30).unwrap();
        let start = std::time::Instant::now();
        let e = read(&p, "scenario file", MAX_SCENARIO_BYTES).unwrap_err();
        assert!(e.contains("is 2 GiB, more than the 256 MiB"), "{e}");
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }
}
