//! Output files written all-or-nothing.
//!
//! A command opens every output through [`Outputs`] before it does its work, so an unwritable
//! destination is reported before a long run rather than after it. What happens to an output
//! depends on what its destination is (checked with `stat`, following symbolic links):
//!
//! - **A regular file, or nothing yet**: the output is written into a temporary file
//!   (`.NAME.XXXXXX.tmp`) in the destination's directory and renamed over it by
//!   [`Outputs::commit`], only once the command has succeeded (an atomic replace on one file
//!   system). A symbolic link to a regular file is resolved: its target is replaced, the link
//!   stays. A dangling link is refused.
//! - **A regular file in a directory this process cannot write** (a non-root user's writable file
//!   in `/etc`, say): staged in an unnamed temporary file of the system's temporary directory and
//!   copied into the file at commit (not atomic: the copy truncates the file first).
//! - **Not a regular file** (a character or block device such as `/dev/null`, a FIFO, a socket,
//!   `/dev/stdout`) or `-` (standard output): written straight into, as the command produces it,
//!   never replaced or renamed. Such a destination gets a partial stream if the command fails.
//!
//! If the command fails, panics or returns early, dropping the [`Outputs`] deletes the
//! temporaries and every previous regular file is left as it was.
//!
//! **Concurrency.** [`Outputs::commit`] takes an exclusive `flock` on every destination directory
//! (in path order, so two commits never deadlock) and holds it while it renames its files, in
//! the order they were opened. Two commands writing the same outputs therefore never leave a mix
//! of both: the outputs are all those of the one that committed last. A reader that wants a
//! consistent set takes the same lock, e.g. `flock runs/x cat runs/x/report.json runs/x/results.json`.
//!
//! **Interruption.** An interrupt (Ctrl-C, `SIGINT`, `SIGTERM`, `SIGHUP`) calls [`interrupted`]
//! from the CLI's signal handler, which then exits with 130. Renames hold the same process-wide
//! lock as [`interrupted`], so an interrupt during a commit waits for it to end (a few renames):
//! the message then says which files were written; before it, the temporaries are deleted and the
//! message says no output file was replaced. A process killed otherwise (`SIGKILL`, power loss)
//! leaves its `.NAME.XXXXXX.tmp` files behind (and the previous outputs intact). Files are not
//! synced to disk before the rename.

use crate::error::{CliError, Result, io_msg};
use std::fs::{File, Metadata, OpenOptions};
use std::io::{BufWriter, Seek, Write};
use std::path::{Path, PathBuf};
use tempfile::TempPath;

/// Buffer of every output writer.
const BUFFER: usize = 1 << 16;

/// Where an output's bytes go: a file (staged or straight) or standard output.
pub type Sink = BufWriter<Box<dyn Write + Send>>;

/// What this process has staged, streamed and committed, for the interrupt handler.
struct Global {
    /// Temporary files not yet renamed.
    staged: Vec<PathBuf>,
    /// Destinations written straight into (devices, FIFOs, standard output).
    streams: Vec<PathBuf>,
    /// Destinations replaced by a commit.
    written: Vec<PathBuf>,
}

static STATE: std::sync::Mutex<Global> = std::sync::Mutex::new(Global {
    staged: Vec::new(),
    streams: Vec::new(),
    written: Vec::new(),
});

fn state() -> std::sync::MutexGuard<'static, Global> {
    STATE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn unregister(p: &Path) {
    let mut g = state();
    if let Some(i) = g.staged.iter().position(|x| x == p) {
        g.staged.swap_remove(i);
    }
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| format!("`{}`", p.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// On an interrupt: delete every staged temporary file not yet committed and say truthfully what
/// happened to the outputs. Waits for a commit in progress to end first.
pub fn interrupted() -> String {
    let mut g = state();
    for p in g.staged.drain(..) {
        let _ = std::fs::remove_file(&p);
    }
    interrupt_message(&g.written, &g.streams)
}

fn interrupt_message(written: &[PathBuf], streams: &[PathBuf]) -> String {
    let mut msg = if written.is_empty() {
        "interrupted: no output file was replaced".to_string()
    } else {
        format!(
            "interrupted after the outputs were written: {}",
            list(written)
        )
    };
    if !streams.is_empty() {
        msg.push_str(&format!(
            "; {} (not a regular file) got what was written before the interrupt",
            list(streams)
        ));
    }
    msg
}

/// Device and inode of a file.
#[cfg(unix)]
fn ident(m: &Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn ident(_: &Metadata) -> Option<(u64, u64)> {
    None
}

/// Device and inode of this process's standard output.
#[cfg(unix)]
fn stdout_ident() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    let fd = std::io::stdout().as_fd().try_clone_to_owned().ok()?;
    ident(&File::from(fd).metadata().ok()?)
}

#[cfg(not(unix))]
fn stdout_ident() -> Option<(u64, u64)> {
    None
}

/// What a file is, for messages: "a character device", "a FIFO", ...
pub fn file_type_name(m: &Metadata) -> &'static str {
    perllm_dsl::files::kind_of(m)
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

enum How {
    /// A temporary file beside `target`, renamed over it at commit (`None` once renamed).
    Replace {
        temp: Option<TempPath>,
        target: PathBuf,
    },
    /// A regular file in a directory we cannot write: `stage` is copied into `file` at commit.
    InPlace { file: File, stage: File },
    /// Written straight into.
    Stream,
}

struct Staged {
    /// Where the file goes, as the user wrote it (for messages).
    dest: PathBuf,
    /// The same place with its directory (and links) resolved (to detect one file named twice).
    resolved: PathBuf,
    /// Device and inode of the destination, if it exists.
    ident: Option<(u64, u64)>,
    /// Whether the destination is this process's standard output.
    stdout: bool,
    how: How,
}

impl Drop for Staged {
    fn drop(&mut self) {
        // Dropping the `TempPath` deletes the file; unregister it first.
        if let How::Replace { temp: Some(t), .. } = &self.how {
            unregister(t);
        }
    }
}

/// One output: a buffered writer into its temporary file or its destination.
pub struct OutFile {
    dest: PathBuf,
    writer: Sink,
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
    pub fn into_writer(self) -> Sink {
        self.writer
    }
}

fn sink(w: impl Write + Send + 'static) -> Sink {
    BufWriter::with_capacity(BUFFER, Box::new(w))
}

impl Outputs {
    /// No outputs yet.
    pub fn new() -> Self {
        Outputs::default()
    }

    /// Whether an output goes to this process's standard output (`-`, `/dev/stdout`, or the file
    /// stdout is redirected to): the command then prints nothing else there.
    pub fn uses_stdout(&self) -> bool {
        self.staged.iter().any(|s| s.stdout)
    }

    fn check_twice(&self, dest: &Path, resolved: &Path, id: Option<(u64, u64)>) -> Result<()> {
        let same = |s: &&Staged| s.resolved == resolved || (id.is_some() && s.ident == id);
        if let Some(first) = self.staged.iter().find(same) {
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
        Ok(())
    }

    /// Stage `dest` (see the module documentation for what happens to each kind of destination):
    /// create its directory if needed and a temporary file in it, or open it if it is not a
    /// regular file. `-` is standard output.
    ///
    /// Fails, naming `dest`, if the directory cannot be created or written, if `dest` is a
    /// directory or a dangling symbolic link, or if `dest` is already an output of this command.
    pub fn open(&mut self, dest: &Path) -> Result<OutFile> {
        let cannot = |e: std::io::Error| {
            CliError::run(format!("cannot write `{}`: {}", dest.display(), io_msg(&e)))
        };
        if dest.as_os_str() == "-" {
            self.check_twice(dest, dest, None)?;
            self.push_stream(dest, dest.to_path_buf(), None, true);
            return Ok(OutFile {
                dest: PathBuf::from("standard output"),
                writer: sink(std::io::stdout()),
            });
        }
        let name = match dest.file_name() {
            Some(n) => n.to_os_string(),
            None => {
                return Err(CliError::input(format!(
                    "`{}` is not a file name",
                    dest.display()
                )));
            }
        };
        if let Some(d) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
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
        }
        let is_link = std::fs::symlink_metadata(dest).is_ok_and(|m| m.file_type().is_symlink());
        let meta = match std::fs::metadata(dest) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && is_link => {
                let to = std::fs::read_link(dest)
                    .map(|t| format!(" to `{}`", t.display()))
                    .unwrap_or_default();
                return Err(CliError::run(format!(
                    "cannot write `{}`: it is a symbolic link{to}, which does not exist \
                     (give the file's own path)",
                    dest.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(cannot(e)),
        };
        if meta.as_ref().is_some_and(Metadata::is_dir) {
            return Err(CliError::run(format!(
                "cannot write `{}`: it is a directory",
                dest.display()
            )));
        }
        let id = meta.as_ref().and_then(ident);
        let stdout = id.is_some() && id == stdout_ident();
        if let Some(m) = meta.as_ref().filter(|m| !m.is_file()) {
            // A device, FIFO or socket: written straight into (opening a FIFO waits for a reader,
            // as the shell's `>` does).
            let resolved = std::fs::canonicalize(dest).unwrap_or_else(|_| dest.to_path_buf());
            self.check_twice(dest, &resolved, id)?;
            let file = OpenOptions::new().write(true).open(dest).map_err(|e| {
                CliError::run(format!(
                    "cannot write `{}` ({}): {}",
                    dest.display(),
                    file_type_name(m),
                    io_msg(&e)
                ))
            })?;
            self.push_stream(dest, resolved, id, stdout);
            return Ok(OutFile {
                dest: dest.to_path_buf(),
                writer: sink(file),
            });
        }
        // A regular file (or none yet): replace the link's target, not the link.
        let target = if is_link {
            std::fs::canonicalize(dest).map_err(cannot)?
        } else {
            dest.to_path_buf()
        };
        let dir = match target.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(d) => d.to_path_buf(),
            None => PathBuf::from("."),
        };
        let resolved = std::fs::canonicalize(&dir)
            .map_err(|e| CliError::write(&dir, &e))?
            .join(target.file_name().unwrap_or(&name));
        self.check_twice(dest, &resolved, id)?;
        let mut prefix = std::ffi::OsString::from(".");
        prefix.push(target.file_name().unwrap_or(&name));
        prefix.push(".");
        let mut b = tempfile::Builder::new();
        b.prefix(&prefix).suffix(".tmp");
        // As `File::create`: a new file's mode follows the umask, an existing file's is kept.
        #[cfg(unix)]
        b.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let temp = match b.tempfile_in(&dir) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && meta.is_some() => {
                // The directory is not ours but the file may be: write it in place at commit.
                let file = OpenOptions::new()
                    .write(true)
                    .open(&target)
                    .map_err(cannot)?;
                let stage = tempfile::tempfile().map_err(cannot)?;
                let writer = sink(stage.try_clone().map_err(cannot)?);
                self.staged.push(Staged {
                    dest: dest.to_path_buf(),
                    resolved,
                    ident: id,
                    stdout,
                    how: How::InPlace { file, stage },
                });
                return Ok(OutFile {
                    dest: dest.to_path_buf(),
                    writer,
                });
            }
            Err(e) => return Err(cannot(e)),
        };
        #[cfg(unix)]
        if let Some(m) = &meta {
            temp.as_file()
                .set_permissions(m.permissions())
                .map_err(cannot)?;
        }
        let (file, temp) = temp.into_parts();
        state().staged.push(temp.to_path_buf());
        self.staged.push(Staged {
            dest: dest.to_path_buf(),
            resolved,
            ident: id,
            stdout,
            how: How::Replace {
                temp: Some(temp),
                target,
            },
        });
        Ok(OutFile {
            dest: dest.to_path_buf(),
            writer: sink(file),
        })
    }

    /// The directories [`Outputs::open`] had to create so far, each after its parent.
    pub fn created_dirs(&self) -> &[PathBuf] {
        &self.created
    }

    /// Tell the user which directories were created for the outputs (not with `--quiet`).
    pub fn report_created(&self, term: &crate::term::Term) {
        self.report_created_for(term, None);
    }

    /// [`Outputs::report_created`] for a command whose `--out` names a directory to write into
    /// (`run --out DIR`, `plot --out DIR`): creating that directory alone is what was asked, and
    /// not announced; creating folders above it is.
    pub fn report_created_for(&self, term: &crate::term::Term, named_dir: Option<&Path>) {
        let created = self.created_dirs();
        if let (Some(dir), [only]) = (named_dir, created)
            && only == dir
        {
            return;
        }
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

    fn push_stream(&mut self, dest: &Path, resolved: PathBuf, id: Option<(u64, u64)>, out: bool) {
        state().streams.push(dest.to_path_buf());
        self.staged.push(Staged {
            dest: dest.to_path_buf(),
            resolved,
            ident: id,
            stdout: out,
            how: How::Stream,
        });
    }

    /// Refuse to run if an output is one of `inputs` (`(what, path)`, e.g. `("the scenario",
    /// "s.perllm")`), compared by canonical path and by device and inode (hard links, `/proc`
    /// paths). Call it after opening the outputs, before the work.
    pub fn refuse_inputs(&self, inputs: &[(String, PathBuf)]) -> Result<()> {
        for (what, p) in inputs {
            let Ok(meta) = std::fs::metadata(p) else {
                continue;
            };
            let id = ident(&meta);
            let canon = std::fs::canonicalize(p).ok();
            let clash = self.staged.iter().find(|s| {
                let target = match &s.how {
                    How::Replace { target, .. } => std::fs::canonicalize(target).ok(),
                    _ => None,
                };
                (id.is_some() && s.ident == id)
                    || canon.as_ref().is_some_and(|c| *c == s.resolved)
                    || (target.is_some() && target == canon)
            });
            if let Some(s) = clash {
                return Err(CliError::input(format!(
                    "the output `{}` is {what} (`{}`): refusing to overwrite an input; \
                     choose another output path",
                    s.dest.display(),
                    p.display()
                )));
            }
        }
        Ok(())
    }

    /// Put every staged file in place, in the order opened, holding an exclusive lock on each
    /// destination directory (see the module documentation); the destinations written.
    ///
    /// If a rename fails, the error names its destination and the files already in place; the
    /// files not yet moved are deleted.
    pub fn commit(mut self) -> Result<Vec<PathBuf>> {
        self.committed = true;
        let staged = std::mem::take(&mut self.staged);
        // Lock the directories first, without the process-wide lock: waiting for another
        // process's commit must not hold up the interrupt handler.
        let mut dirs: Vec<PathBuf> = staged
            .iter()
            .filter_map(|s| match &s.how {
                How::Replace { .. } => s.resolved.parent().map(Path::to_path_buf),
                _ => None,
            })
            .collect();
        dirs.sort();
        dirs.dedup();
        let mut locks = Vec::with_capacity(dirs.len());
        for d in &dirs {
            let f = File::open(d).map_err(|e| CliError::write(d, &e))?;
            f.lock().map_err(|e| {
                CliError::run(format!("cannot lock `{}`: {}", d.display(), io_msg(&e)))
            })?;
            locks.push(f);
        }
        for s in &staged {
            if let How::InPlace { file, .. } = &s.how {
                file.lock().map_err(|e| CliError::write(&s.dest, &e))?;
            }
        }
        let mut g = state();
        let mut done: Vec<PathBuf> = Vec::with_capacity(staged.len());
        let mut failure = None;
        let mut items = staged.into_iter();
        for mut s in items.by_ref() {
            let res = match &mut s.how {
                How::Replace { temp, target } => match temp.take() {
                    Some(t) => {
                        if let Some(i) = g.staged.iter().position(|x| *x == *t) {
                            g.staged.swap_remove(i);
                        }
                        t.persist(&*target).map_err(|e| e.error)
                    }
                    None => continue,
                },
                How::InPlace { file, stage } => copy_into(stage, file),
                How::Stream => continue,
            };
            if let Err(e) = res {
                let mut msg = format!("cannot write `{}`: {}", s.dest.display(), io_msg(&e));
                if !done.is_empty() {
                    msg.push_str(&format!(" (already written: {})", list(&done)));
                }
                failure = Some(msg);
                break;
            }
            g.written.push(s.dest.clone());
            done.push(s.dest.clone());
        }
        // The files not moved unregister themselves when dropped: after the lock is released.
        drop(g);
        drop(items);
        drop(locks);
        match failure {
            Some(m) => Err(CliError::run(m)),
            None => Ok(done),
        }
    }
}

/// Replace `file`'s content by `stage`'s.
fn copy_into(stage: &mut File, file: &mut File) -> std::io::Result<()> {
    stage.rewind()?;
    file.set_len(0)?;
    file.rewind()?;
    std::io::copy(stage, file)?;
    file.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Write `text` to `path` all-or-nothing.
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

    /// `mknod path c major minor` (a device node in a temporary directory, never the machine's
    /// /dev); false, with a visible note, where that is not allowed.
    pub(crate) fn mknod(path: &Path, major: u32, minor: u32) -> bool {
        let ok = Command::new("mknod")
            .arg(path)
            .args(["c", &major.to_string(), &minor.to_string()])
            .status()
            .is_ok_and(|s| s.success())
            && OpenOptions::new().write(true).open(path).is_ok();
        if !ok {
            eprintln!(
                "SKIPPED: cannot make or open the device node {}",
                path.display()
            );
        }
        ok
    }

    fn file_type(p: &Path) -> std::fs::FileType {
        std::fs::symlink_metadata(p).unwrap().file_type()
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
        assert!(state().staged.iter().all(|p| !p.starts_with(t.path())));

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

    /// Devices are written straight into and stay devices (issue 21: `--decisions /dev/null`
    /// turned /dev/null into a regular file); a full device is a write error naming it.
    #[cfg(unix)]
    #[test]
    fn devices_are_written_into_never_replaced() {
        use std::os::unix::fs::FileTypeExt;
        let t = tempfile::tempdir().unwrap();
        let null = t.path().join("null");
        let full = t.path().join("full");
        if !mknod(&null, 1, 3) || !mknod(&full, 1, 7) {
            return;
        }
        let mut out = Outputs::new();
        out.open(&null)
            .unwrap()
            .write_text("x".repeat(100_000).as_str())
            .unwrap();
        assert!(out.commit().unwrap().is_empty(), "nothing to rename");
        assert!(file_type(&null).is_char_device());

        let mut out = Outputs::new();
        let e = out
            .open(&full)
            .unwrap()
            .write_text("x".repeat(100_000).as_str())
            .unwrap_err();
        assert_eq!(
            e.message,
            format!("cannot write `{}`: no space left on device", full.display())
        );
        drop(out);
        assert!(file_type(&full).is_char_device());
        assert_eq!(names(t.path()), ["full", "null"], "no temporary file");

        // The same device twice (by two names) is one output named twice.
        let alias = t.path().join("alias");
        std::os::unix::fs::symlink(&null, &alias).unwrap();
        let mut out = Outputs::new();
        out.open(&null).unwrap();
        let e = out.open(&alias).err().unwrap();
        assert!(e.message.contains("named for two outputs"), "{}", e.message);
    }

    /// A FIFO is written into (a reader gets the bytes) and stays a FIFO.
    #[cfg(unix)]
    #[test]
    fn a_fifo_is_written_into() {
        use std::os::unix::fs::FileTypeExt;
        let t = tempfile::tempdir().unwrap();
        let fifo = t.path().join("fifo");
        let made = Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success());
        if !made {
            eprintln!("SKIPPED: mkfifo failed");
            return;
        }
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read_to_string(&fifo).unwrap())
        };
        let mut out = Outputs::new();
        out.open(&fifo)
            .unwrap()
            .write_text("through the pipe")
            .unwrap();
        out.commit().unwrap();
        assert_eq!(reader.join().unwrap(), "through the pipe");
        assert!(file_type(&fifo).is_fifo());
    }

    /// A symbolic link to a regular file: the target is replaced, the link stays; a dangling link
    /// is refused.
    #[cfg(unix)]
    #[test]
    fn symlinks_write_their_target() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("real")).unwrap();
        let target = t.path().join("real/target.json");
        std::fs::write(&target, "old").unwrap();
        let link = t.path().join("link.json");
        std::os::unix::fs::symlink("real/target.json", &link).unwrap();
        write_file(&link, "new").unwrap();
        assert!(file_type(&link).is_symlink());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(names(t.path()), ["link.json", "real"]);
        assert_eq!(names(&t.path().join("real")), ["target.json"]);

        let dangling = t.path().join("dangling");
        std::os::unix::fs::symlink("nowhere/x", &dangling).unwrap();
        let e = Outputs::new().open(&dangling).err().unwrap();
        assert!(
            e.message
                .contains("symbolic link to `nowhere/x`, which does not exist"),
            "{}",
            e.message
        );
        assert!(file_type(&dangling).is_symlink());
    }

    /// Outputs that are inputs, by path, by another name for the path, or by a hard link.
    #[test]
    fn outputs_that_are_inputs_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let s = t.path().join("s.perllm");
        std::fs::write(&s, "scenario").unwrap();
        let hard = t.path().join("hard.json");
        std::fs::hard_link(&s, &hard).unwrap();
        for dest in [s.clone(), t.path().join("sub/../s.perllm"), hard.clone()] {
            std::fs::create_dir_all(t.path().join("sub")).unwrap();
            let mut out = Outputs::new();
            out.open(&t.path().join("other.json")).unwrap();
            out.open(&dest).unwrap();
            let e = out
                .refuse_inputs(&[("the scenario".into(), s.clone())])
                .unwrap_err();
            assert_eq!(e.kind, crate::error::Kind::Input);
            assert!(e.message.contains("is the scenario"), "{}", e.message);
            drop(out);
            assert_eq!(std::fs::read_to_string(&s).unwrap(), "scenario");
        }
        let mut out = Outputs::new();
        out.open(&t.path().join("fresh.json")).unwrap();
        out.refuse_inputs(&[("the scenario".into(), s.clone())])
            .unwrap();
    }

    /// A commit waits for the lock on its directory, held by another commit or by a reader that
    /// wants a consistent set, and then replaces all its files (issue 21: two runs writing the
    /// same outputs mixed their files).
    #[test]
    fn commits_wait_for_the_directory_lock() {
        let t = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> = (0..4).map(|i| t.path().join(format!("f{i}"))).collect();
        for f in &files {
            std::fs::write(f, "old").unwrap();
        }
        let reader = File::open(t.path()).unwrap();
        reader.lock_shared().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let writer = {
            let files = files.clone();
            std::thread::spawn(move || {
                let mut out = Outputs::new();
                for f in &files {
                    out.open(f).unwrap().write_text("new").unwrap();
                }
                tx.send(()).unwrap();
                out.commit().unwrap();
            })
        };
        rx.recv().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let read = |f: &PathBuf| std::fs::read_to_string(f).unwrap();
        assert!(
            files.iter().all(|f| read(f) == "old"),
            "committed under a lock"
        );
        reader.unlock().unwrap();
        writer.join().unwrap();
        assert!(files.iter().all(|f| read(f) == "new"));
        assert_eq!(names(t.path()), ["f0", "f1", "f2", "f3"]);
    }

    /// The interrupt message tells what was replaced and what was streamed.
    #[test]
    fn the_interrupt_message_is_truthful() {
        let (a, d) = (PathBuf::from("out/a.json"), PathBuf::from("/dev/x"));
        assert_eq!(
            interrupt_message(&[], &[]),
            "interrupted: no output file was replaced"
        );
        assert_eq!(
            interrupt_message(std::slice::from_ref(&a), std::slice::from_ref(&d)),
            "interrupted after the outputs were written: `out/a.json`; `/dev/x` (not a regular \
             file) got what was written before the interrupt"
        );
    }
}
