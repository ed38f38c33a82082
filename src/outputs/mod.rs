//! Outputs: every file is written to a temporary name and renamed into place when complete, so a
//! reader (or a crash) never sees half a file; a run's files are staged and published together
//! ([`Staging`]). One writer per output: [`findings`], [`tables`], [`summary`], rejected rows and
//! JSON documents here. A writer never computes a verdict.

pub mod findings;
pub mod manifest;
pub mod summary;
pub mod tables;

use anyhow::{Context, Result};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Write `path` atomically through `f`.
pub fn write_atomic<F>(path: &Path, f: F) -> Result<()>
where
    F: FnOnce(&mut dyn Write) -> Result<()>,
{
    let shown = shown(path);
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create directory", dir.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()))
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("{}: cannot create temporary file", shown.display()))?;
    let hashed = {
        let mut w = BufWriter::new(manifest::HashingWriter::new(tmp.as_file()));
        f(&mut w).with_context(|| format!("{}: write failed", shown.display()))?;
        w.flush().with_context(|| format!("{}: write failed", shown.display()))?;
        w.into_parts().0.finish()
    };
    // tempfile creates 0600; outputs are ordinary files (umask still applies on creation elsewhere)
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).ok();
    }
    tmp.as_file().sync_all().with_context(|| format!("{}: sync failed", shown.display()))?;
    let stat = tmp.as_file().metadata();
    tmp.persist(path).map_err(|e| e.error).with_context(|| format!("{}: cannot rename into place", shown.display()))?;
    if let Ok(m) = stat {
        manifest::remember_written(path, &m, hashed);
    }
    Ok(())
}

/// Staging directories and the directories they publish to, for messages.
static STAGED: std::sync::Mutex<Vec<(PathBuf, PathBuf)>> = std::sync::Mutex::new(Vec::new());

/// The name a user knows a file by: a staged file is shown at the place it will be published.
fn shown(path: &Path) -> PathBuf {
    let staged = STAGED.lock().unwrap_or_else(|e| e.into_inner());
    for (dir, target) in staged.iter() {
        if let Ok(rel) = path.strip_prefix(dir) {
            return target.join(rel);
        }
    }
    path.to_path_buf()
}

/// A run's outputs are written into `DIR/.staging-<pid>/` and moved into `DIR` together at the end
/// ([`Staging::publish`]), `run.json` last. A run that fails or is killed before that leaves the
/// previous run's files as they were; its staging directory is removed on drop, on SIGINT/SIGTERM,
/// or (after `kill -9`) by the next run holding the directory's lock ([`Staging::new`]).
pub struct Staging {
    dir: PathBuf,
    target: PathBuf,
}

const STAGING_PREFIX: &str = ".staging-";

impl Staging {
    /// The caller must hold `target`'s lock: leftovers of dead runs are removed here.
    pub fn new(target: &Path) -> Result<Self> {
        std::fs::create_dir_all(target).with_context(|| format!("{}: cannot create directory", target.display()))?;
        for e in std::fs::read_dir(target).with_context(|| format!("{}: cannot list", target.display()))? {
            let e = e?;
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with(STAGING_PREFIX) {
                let _ = std::fs::remove_dir_all(e.path());
            } else if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
        exchange::clear_leftovers(target);
        let dir = target.join(format!("{STAGING_PREFIX}{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create staging directory", dir.display()))?;
        crate::signals::register(&dir);
        STAGED.lock().unwrap_or_else(|e| e.into_inner()).push((dir.clone(), target.to_path_buf()));
        Ok(Self { dir, target: target.to_path_buf() })
    }

    /// Where files are written until [`publish`](Self::publish).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Move every staged file (recursively, keeping relative paths) into the target, replacing
    /// files of the same name; `run.json` and `manifest.json` go last so their presence marks a
    /// complete set. Outputs the target's manifest lists that this run did not write (a table of an
    /// option not given this time) are not part of the new set: they are removed with the old one.
    pub fn publish(self) -> Result<()> {
        let mut files = Vec::new();
        collect_files(&self.dir, Path::new(""), &mut files)?;
        files.sort_by_key(|p| (p == Path::new(manifest::FILE), p == Path::new("run.json"), p.clone()));
        let mut stale: Vec<PathBuf> = manifest::listed_outputs(&self.target);
        stale.retain(|p| !files.contains(p) && p != Path::new(manifest::FILE));
        crate::signals::publishing(|| -> Result<()> {
            crate::diag::test_pause(&format!("publishing:{}", exchange::tag(&self.target)));
            // one atomic exchange of the whole directory where the file system allows it, so a
            // `kill -9` at any moment leaves the old set or the new one, never a mix
            if exchange::publish(&self.dir, &self.target, &files, &stale) {
                return Ok(());
            }
            for rel in &files {
                let to = self.target.join(rel);
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("{}: cannot create directory", parent.display()))?;
                }
                std::fs::rename(self.dir.join(rel), &to)
                    .with_context(|| format!("{}: cannot move into place", to.display()))?;
            }
            for rel in &stale {
                let _ = std::fs::remove_file(self.target.join(rel));
            }
            // make the renames durable before the caller reports success
            if let Ok(d) = std::fs::File::open(&self.target) {
                let _ = d.sync_all();
            }
            Ok(())
        })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        crate::signals::unregister(&self.dir);
        STAGED.lock().unwrap_or_else(|e| e.into_inner()).retain(|(d, _)| d != &self.dir);
    }
}

/// Publishing a run's files by exchanging directories (Linux `renameat2(RENAME_EXCHANGE)`): the
/// new set is built beside the target (`.NAME.next-<pid>`) from hard links of the target's entries
/// (the lock file keeps its inode, so its `flock` holds) and of the staged files, then swapped with
/// the target in one step; the old set, now beside it, is removed. Where that cannot be done (another
/// OS, a file system without the exchange, a target that is a mount point) nothing has changed
/// and the files are renamed one by one.
mod exchange {
    use super::STAGING_PREFIX;
    use std::path::{Path, PathBuf};

    /// The directory beside the target (a target given through a symlink: beside the directory it
    /// points to, which is what is exchanged) and the prefix of such names.
    pub(super) fn next_dir(target: &Path) -> Option<(PathBuf, String)> {
        let target = std::fs::canonicalize(target).ok()?;
        let name = target.file_name()?.to_string_lossy().to_string();
        let parent = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let prefix = format!(".{name}.next-");
        Some((parent.join(format!("{prefix}{}", std::process::id())), prefix))
    }

    /// The target's name, for the tests' pause points (`built:out`).
    pub fn tag(target: &Path) -> String {
        target.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()
    }

    /// The sets a killed run left beside the target (the caller holds the target's lock).
    pub fn clear_leftovers(target: &Path) {
        let Some((next, prefix)) = next_dir(target) else { return };
        let Some(parent) = next.parent() else { return };
        for e in std::fs::read_dir(parent).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }

    /// Whether the staged files were published by one exchange.
    pub fn publish(staged: &Path, target: &Path, files: &[PathBuf], stale: &[PathBuf]) -> bool {
        let (Some((next, _)), Ok(target)) = (next_dir(target), std::fs::canonicalize(target)) else { return false };
        let target = target.as_path();
        let _ = std::fs::remove_dir_all(&next);
        let built = std::fs::create_dir(&next).and_then(|_| {
            // the directory keeps its mode
            std::fs::set_permissions(&next, std::fs::metadata(target)?.permissions())?;
            link_tree(target, &next, Path::new(""), stale)?;
            for rel in files {
                let to = next.join(rel);
                if let Some(p) = to.parent() {
                    std::fs::create_dir_all(p)?;
                }
                let _ = std::fs::remove_file(&to);
                std::fs::hard_link(staged.join(rel), &to)?;
            }
            std::fs::File::open(&next)?.sync_all()
        });
        crate::diag::test_pause(&format!("built:{}", tag(target)));
        if built.is_err() || !swap(&next, target) {
            let _ = std::fs::remove_dir_all(&next);
            return false;
        }
        crate::diag::test_pause(&format!("exchanged:{}", tag(target)));
        if let Some(parent) = next.parent()
            && let Ok(d) = std::fs::File::open(parent)
        {
            let _ = d.sync_all();
        }
        // the old set (and the staging directory in it)
        let _ = std::fs::remove_dir_all(&next);
        true
    }

    /// `dst` gets hard links of `src`'s files, its directories made anew; staging directories,
    /// temporary files and the `stale` outputs (relative to the root; `rel` is `src`'s) are left out.
    fn link_tree(src: &Path, dst: &Path, rel: &Path, stale: &[PathBuf]) -> std::io::Result<()> {
        for e in std::fs::read_dir(src)? {
            let e = e?;
            let name = e.file_name();
            let n = name.to_string_lossy();
            if n.starts_with(STAGING_PREFIX) || (n.starts_with('.') && n.ends_with(".tmp")) {
                continue;
            }
            if stale.iter().any(|s| s == &rel.join(&name)) {
                continue;
            }
            let ty = e.file_type()?;
            if ty.is_dir() {
                std::fs::create_dir(dst.join(&name))?;
                std::fs::set_permissions(dst.join(&name), e.metadata()?.permissions())?;
                link_tree(&e.path(), &dst.join(&name), &rel.join(&name), stale)?;
            } else if ty.is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(e.path())?, dst.join(&name))?;
            } else {
                std::fs::hard_link(e.path(), dst.join(&name))?;
            }
        }
        Ok(())
    }

    #[cfg(target_os = "linux")]
    fn swap(a: &Path, b: &Path) -> bool {
        use std::os::unix::ffi::OsStrExt;
        let (Ok(a), Ok(b)) =
            (std::ffi::CString::new(a.as_os_str().as_bytes()), std::ffi::CString::new(b.as_os_str().as_bytes()))
        else {
            return false;
        };
        // SAFETY: two valid NUL-terminated paths relative to the working directory; the call
        // reads them and changes nothing else in this process.
        unsafe { libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), libc::RENAME_EXCHANGE) == 0 }
    }

    #[cfg(not(target_os = "linux"))]
    fn swap(_: &Path, _: &Path) -> bool {
        false
    }
}

/// Every file below `root/rel` (paths relative to `root`), temporary files left out.
pub fn collect_files(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(root.join(rel)).with_context(|| format!("{}: cannot list", root.display()))? {
        let e = e?;
        let r = rel.join(e.file_name());
        if e.file_type()?.is_dir() {
            collect_files(root, &r, out)?;
        } else if !e.file_name().to_string_lossy().ends_with(".tmp") {
            out.push(r);
        }
    }
    Ok(())
}

/// `rejected.csv`: file, line, reason, raw text.
pub fn write_rejects(path: &Path, rejects: &[crate::load::Reject], excel: bool) -> Result<()> {
    use crate::report::csv_safe::cell;
    write_atomic(path, |w| {
        if excel {
            w.write_all(b"\xEF\xBB\xBF")?;
        }
        let mut c = csv::Writer::from_writer(w);
        c.write_record(["file", "line", "reason", "raw"])?;
        for r in rejects {
            let line = r.line.to_string();
            c.write_record([cell(&r.file).as_ref(), line.as_str(), r.reason.as_str(), cell(&r.raw).as_ref()])?;
        }
        c.flush()?;
        Ok(())
    })
}

/// Bytes to stdout, flushed (a closed pipe is an `io::Error` that `main` treats as no error).
pub fn stdout(bytes: &[u8]) -> Result<()> {
    let out = std::io::stdout();
    let mut o = out.lock();
    o.write_all(bytes)?;
    o.flush()?;
    Ok(())
}

/// A JSON document, pretty-printed with a final newline (run.json, timings.json).
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    write_atomic(path, |w| {
        serde_json::to_writer_pretty(&mut *w, value)?;
        writeln!(w)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_leaves_no_temporary_and_keeps_old_file_on_error() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("out.csv");
        write_atomic(&p, |w| Ok(w.write_all(b"one\n")?)).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "one\n");
        let r = write_atomic(&p, |w| {
            w.write_all(b"half")?;
            anyhow::bail!("disk on fire")
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "one\n");
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn staging_publishes_all_or_nothing() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.csv"), "old\n").unwrap();
        {
            let s = Staging::new(d.path()).unwrap();
            write_atomic(&s.dir().join("a.csv"), |w| Ok(w.write_all(b"new\n")?)).unwrap();
            // dropped without publish: a failed run
        }
        assert_eq!(std::fs::read_to_string(d.path().join("a.csv")).unwrap(), "old\n");
        let s = Staging::new(d.path()).unwrap();
        write_atomic(&s.dir().join("a.csv"), |w| Ok(w.write_all(b"new\n")?)).unwrap();
        write_atomic(&s.dir().join("date=2026-03-02/p.parquet"), |w| Ok(w.write_all(b"x")?)).unwrap();
        s.publish().unwrap();
        assert_eq!(std::fs::read_to_string(d.path().join("a.csv")).unwrap(), "new\n");
        assert!(d.path().join("date=2026-03-02/p.parquet").exists());
        let left: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn publishing_exchanges_the_directory_keeping_what_the_run_did_not_write() {
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("out");
        std::fs::create_dir_all(target.join("history/date=2026-03-01")).unwrap();
        std::fs::write(target.join("old.csv"), "old").unwrap();
        std::fs::write(target.join("run.json"), "old run").unwrap();
        std::fs::write(target.join("history/date=2026-03-01/p.parquet"), "kept").unwrap();
        let lock = target.join(".diversion-audit.lock");
        std::fs::write(&lock, "pid").unwrap();
        let ino = std::fs::metadata(&lock).unwrap().ino();
        let s = Staging::new(&target).unwrap();
        std::fs::write(s.dir().join("run.json"), "new run").unwrap();
        std::fs::write(s.dir().join("new.csv"), "new").unwrap();
        let (next, _) = exchange::next_dir(&target).unwrap();
        let dir_ino = std::fs::metadata(&target).unwrap().ino();
        s.publish().unwrap();
        #[cfg(target_os = "linux")]
        assert_ne!(std::fs::metadata(&target).unwrap().ino(), dir_ino, "published by one exchange of directories");
        assert_eq!(std::fs::read_to_string(target.join("run.json")).unwrap(), "new run");
        assert_eq!(std::fs::read_to_string(target.join("new.csv")).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(target.join("old.csv")).unwrap(), "old", "what the run did not write stays");
        assert_eq!(std::fs::read_to_string(target.join("history/date=2026-03-01/p.parquet")).unwrap(), "kept");
        assert_eq!(std::fs::metadata(&lock).unwrap().ino(), ino, "the lock file keeps its inode (and its flock)");
        assert!(!next.exists(), "the old set beside it is removed");
        let left: Vec<_> = std::fs::read_dir(&target).unwrap().flatten().map(|e| e.file_name()).collect();
        assert!(left.iter().all(|n| !n.to_string_lossy().starts_with(STAGING_PREFIX)), "{left:?}");
    }
}
