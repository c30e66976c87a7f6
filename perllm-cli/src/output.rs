//! Output files written all-or-nothing.
//!
//! A command opens every output file through [`Outputs`] before it does its work: each is a
//! temporary file (`.NAME.XXXXXX.tmp`) in the directory of its destination, so an unwritable
//! destination is reported before a long run rather than after it. Streams (the decision log,
//! the per-request CSV) are written into their temporary file as the run goes. Only when the
//! command has succeeded does [`Outputs::commit`] rename the temporaries over their destinations
//! (an atomic replace on one file system); if the command fails, panics or returns early,
//! dropping the [`Outputs`] deletes the temporaries and any previous file at a destination is
//! left as it was. An interrupt (Ctrl-C, `SIGINT`, `SIGTERM`, `SIGHUP`) deletes the temporaries
//! too: [`remove_staged`] is called by the CLI's signal handler, which then exits with 130. A
//! process killed otherwise (`SIGKILL`, power loss) leaves its `.NAME.XXXXXX.tmp` files behind
//! (and the previous outputs intact). Files are not synced to disk before the rename.

use crate::error::{CliError, Result, io_msg};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use tempfile::TempPath;

/// Buffer of every output writer (as before staging: 64 KiB).
const BUFFER: usize = 1 << 16;

/// The temporary files of every live [`Outputs`], for the interrupt handler.
static STAGED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

fn staged_list() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    STAGED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn unregister(p: &Path) {
    let mut v = staged_list();
    if let Some(i) = v.iter().position(|x| x == p) {
        v.swap_remove(i);
    }
}

/// Delete every staged temporary file not yet committed (called on an interrupt); the number
/// deleted. Destinations are untouched.
pub fn remove_staged() -> usize {
    let mut v = staged_list();
    let n = v.iter().filter(|p| std::fs::remove_file(p).is_ok()).count();
    v.clear();
    n
}

/// The output files of one command, staged until [`Outputs::commit`].
///
/// Missing parent directories of a destination are created when it is staged, and listed by
/// [`Outputs::created_dirs`] so that the command can say so; if the command fails, the ones still
/// empty are removed again.
#[derive(Default)]
pub struct Outputs {
    staged: Vec<Staged>,
    /// Directories created by [`Outputs::open`], each after its parent.
    created: Vec<PathBuf>,
    committed: bool,
}

impl Drop for Outputs {
    fn drop(&mut self) {
        // Temporaries first (dropping them deletes them), then the directories made for them,
        // deepest first, if nothing else was put there meanwhile.
        self.staged.clear();
        if !self.committed {
            for d in self.created.iter().rev() {
                let _ = std::fs::remove_dir(d);
            }
        }
    }
}

struct Staged {
    /// Where the file goes, as the user wrote it (for messages).
    dest: PathBuf,
    /// The same place with its directory resolved (to detect one file named twice).
    resolved: PathBuf,
    /// `None` once committed.
    temp: Option<TempPath>,
}

impl Drop for Staged {
    fn drop(&mut self) {
        // Dropping the `TempPath` deletes the file; unregister it first.
        if let Some(t) = &self.temp {
            unregister(t);
        }
    }
}

/// One staged output file: a buffered writer into its temporary file.
pub struct OutFile {
    dest: PathBuf,
    writer: BufWriter<File>,
}

impl OutFile {
    /// Write `text` and flush: the whole content of the file.
    pub fn write_text(mut self, text: &str) -> Result<()> {
        self.writer
            .write_all(text.as_bytes())
            .and_then(|()| self.writer.flush())
            .map_err(|e| CliError::write(&self.dest, &e))
    }

    /// The writer, for streams; flush it before [`Outputs::commit`] (its errors are the caller's).
    pub fn into_writer(self) -> BufWriter<File> {
        self.writer
    }
}

impl Outputs {
    /// No outputs yet.
    pub fn new() -> Self {
        Outputs::default()
    }

    /// Stage `dest`: create its directory if needed and a temporary file in it.
    ///
    /// Fails, naming `dest`, if the directory cannot be created or written, if `dest` is a
    /// directory, or if `dest` is already an output of this command.
    pub fn open(&mut self, dest: &Path) -> Result<OutFile> {
        let name = match dest.file_name() {
            Some(n) => n.to_string_lossy().into_owned(),
            None => {
                return Err(CliError::input(format!(
                    "`{}` is not a file name",
                    dest.display()
                )));
            }
        };
        let dir = match dest.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(d) => {
                let missing: Vec<PathBuf> = d
                    .ancestors()
                    .filter(|a| !a.as_os_str().is_empty())
                    .take_while(|a| std::fs::symlink_metadata(a).is_err())
                    .map(Path::to_path_buf)
                    .collect();
                std::fs::create_dir_all(d).map_err(|e| {
                    let why = if d.exists() && !d.is_dir() {
                        format!("`{}` is not a directory", d.display())
                    } else {
                        format!(
                            "cannot create the directory `{}`: {}",
                            d.display(),
                            io_msg(&e)
                        )
                    };
                    CliError::run(format!("cannot write `{}`: {why}", dest.display()))
                })?;
                self.created.extend(missing.into_iter().rev());
                d
            }
            None => Path::new("."),
        };
        let meta = std::fs::metadata(dest).ok();
        if meta.as_ref().is_some_and(|m| m.is_dir()) {
            return Err(CliError::run(format!(
                "cannot write `{}`: it is a directory",
                dest.display()
            )));
        }
        let resolved = std::fs::canonicalize(dir)
            .map_err(|e| CliError::write(dir, &e))?
            .join(&name);
        if let Some(first) = self.staged.iter().find(|s| s.resolved == resolved) {
            let also = if first.dest == dest {
                String::new()
            } else {
                format!(" (also as `{}`)", first.dest.display())
            };
            return Err(CliError::input(format!(
                "`{}` is named for two outputs{also}",
                dest.display()
            )));
        }
        let prefix = format!(".{name}.");
        let mut b = tempfile::Builder::new();
        b.prefix(&prefix).suffix(".tmp");
        // As `File::create`: a new file's mode follows the umask, an existing file's is kept.
        #[cfg(unix)]
        b.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let cannot = |e: std::io::Error| {
            CliError::run(format!("cannot write `{}`: {}", dest.display(), io_msg(&e)))
        };
        let temp = b.tempfile_in(dir).map_err(cannot)?;
        #[cfg(unix)]
        if let Some(m) = &meta {
            temp.as_file()
                .set_permissions(m.permissions())
                .map_err(cannot)?;
        }
        let (file, temp) = temp.into_parts();
        staged_list().push(temp.to_path_buf());
        self.staged.push(Staged {
            dest: dest.to_path_buf(),
            resolved,
            temp: Some(temp),
        });
        Ok(OutFile {
            dest: dest.to_path_buf(),
            writer: BufWriter::with_capacity(BUFFER, file),
        })
    }

    /// The directories [`Outputs::open`] had to create so far, each after its parent.
    pub fn created_dirs(&self) -> &[PathBuf] {
        &self.created
    }

    /// Tell the user which directories were created for the outputs (not with `--quiet`).
    pub fn report_created(&self, term: &crate::term::Term) {
        let created = self.created_dirs();
        if let Some(top) = created.first() {
            let deepest = created.last().unwrap_or(top);
            term.info(&format!(
                "note: created the directory `{}` for the outputs{}",
                deepest.display(),
                if created.len() > 1 {
                    format!(" (`{}` did not exist)", top.display())
                } else {
                    String::new()
                }
            ));
        }
    }

    /// Move every staged file to its destination, in the order opened; the destinations.
    ///
    /// If a rename fails, the error names its destination and the files not yet moved are
    /// deleted (the ones before it are in place).
    pub fn commit(mut self) -> Result<Vec<PathBuf>> {
        self.committed = true;
        let mut done = Vec::with_capacity(self.staged.len());
        for mut s in std::mem::take(&mut self.staged) {
            let Some(temp) = s.temp.take() else { continue };
            unregister(&temp);
            temp.persist(&s.dest)
                .map_err(|e| CliError::write(&s.dest, &e.error))?;
            done.push(s.dest.clone());
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Write `text` to `path` all-or-nothing (a temporary file renamed into place).
    fn write_file(path: &Path, text: &str) -> Result<()> {
        let mut out = Outputs::new();
        out.open(path)?.write_text(text)?;
        out.commit().map(drop)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn commit_replaces_and_drop_keeps_the_old_files() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a.txt");
        let b = t.path().join("sub/b.txt");
        std::fs::write(&a, "old").unwrap();

        let mut out = Outputs::new();
        out.open(&a).unwrap().write_text("new").unwrap();
        let mut w = out.open(&b).unwrap().into_writer();
        w.write_all(b"stream").unwrap();
        w.flush().unwrap();
        assert_eq!(names(t.path()).len(), 3, "{:?}", names(t.path()));
        drop(w);
        drop(out);
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "old");
        // `sub` was made for the failed command: it is gone with its temporary.
        assert_eq!(names(t.path()), ["a.txt"]);

        let mut out = Outputs::new();
        out.open(&a).unwrap().write_text("new").unwrap();
        out.open(&b).unwrap().write_text("b").unwrap();
        assert_eq!(out.commit().unwrap(), [a.clone(), b.clone()]);
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "b");
        assert_eq!(names(t.path()), ["a.txt", "sub"]);
    }

    #[test]
    fn created_directories_are_listed_and_removed_on_failure() {
        let t = tempfile::tempdir().unwrap();
        let deep = t.path().join("a/b/c.json");
        let mut out = Outputs::new();
        out.open(&deep).unwrap().write_text("x").unwrap();
        assert_eq!(
            out.created_dirs(),
            [t.path().join("a"), t.path().join("a/b")]
        );
        drop(out);
        assert!(names(t.path()).is_empty(), "{:?}", names(t.path()));
        let mut out = Outputs::new();
        out.open(&deep).unwrap().write_text("x").unwrap();
        out.open(&t.path().join("a/b/d.json")).unwrap();
        assert_eq!(out.created_dirs().len(), 2, "created once");
        out.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&deep).unwrap(), "x");
        let mut out = Outputs::new();
        out.open(&deep).unwrap();
        assert!(out.created_dirs().is_empty(), "it exists now");
    }

    #[test]
    fn bad_destinations_are_named() {
        let t = tempfile::tempdir().unwrap();
        let mut out = Outputs::new();
        let e = out.open(t.path()).err().unwrap();
        assert!(e.message.contains("is a directory"), "{}", e.message);
        let a = t.path().join("a");
        out.open(&a).unwrap();
        let e = out.open(&t.path().join(".").join("a")).err().unwrap();
        assert!(e.message.contains("named for two outputs"), "{}", e.message);
        std::fs::write(t.path().join("f"), "").unwrap();
        let under_file = t.path().join("f/x.json");
        let e = out.open(&under_file).err().unwrap();
        assert!(e.message.contains("cannot write"), "{}", e.message);
        assert!(
            e.message
                .contains(&t.path().join("f").display().to_string())
        );
    }

    #[cfg(unix)]
    #[test]
    fn modes_follow_the_umask_or_the_previous_file() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a");
        let plain = t.path().join("plain");
        std::fs::write(&plain, "").unwrap();
        write_file(&a, "x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&a), mode(&plain), "same as File::create");
        std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_file(&a, "y").unwrap();
        assert_eq!(mode(&a), 0o640);
    }
}
