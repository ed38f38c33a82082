//! One run at a time per output or history directory.
//!
//! The lock is `DIR/.diversion-audit.lock`, held with an advisory `flock` for the life of the run
//! and holding `pid=… started=… host=…`. The kernel drops a `flock` when its process dies, however it
//! dies, so a lock file whose lock can be taken was left by a dead run: it is taken over (with a
//! warning naming the dead holder). A live holder makes the second run fail at once with
//! [`Locked`], which the binary turns into exit code 75 (EX_TEMPFAIL: try again later).
//! `flock` is not reliable on some network file systems; keep these directories on local disk.

use anyhow::{Context, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

pub const LOCK_NAME: &str = ".diversion-audit.lock";

/// Another live run holds the directory.
#[derive(Debug, thiserror::Error)]
#[error("{dir} is in use by another diversion-audit run ({holder}); not started")]
pub struct Locked {
    pub dir: String,
    pub holder: String,
}

/// A held lock; released (and its file removed) on drop.
#[derive(Debug)]
pub struct DirLock {
    path: PathBuf,
    _file: File,
}

impl DirLock {
    /// Lock `dir` (created if missing). Returns the lock and, when a dead run's lock was taken
    /// over, a warning naming it.
    pub fn acquire(dir: &Path) -> Result<(Self, Option<String>)> {
        std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create directory", dir.display()))?;
        let path = dir.join(LOCK_NAME);
        for _ in 0..5 {
            let mut f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .with_context(|| format!("{}: cannot open lock file", path.display()))?;
            match f.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    f.read_to_string(&mut holder).ok();
                    let holder = holder.trim();
                    let holder = if holder.is_empty() { "holder still starting" } else { holder };
                    return Err(Locked { dir: dir.display().to_string(), holder: holder.to_string() }.into());
                }
                Err(TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("{}: cannot lock", path.display()));
                }
            }
            // The previous holder may have removed the file between our open and our lock: then we
            // locked an orphan and must start again on the file now at `path`.
            if !same_file(&f, &path) {
                continue;
            }
            let mut previous = String::new();
            f.read_to_string(&mut previous).ok();
            let previous = previous.trim().to_string();
            let stale = (!previous.is_empty()).then(|| {
                format!("{}: took over a stale lock left by a run that is no longer alive ({previous})", dir.display())
            });
            let me = format!(
                "pid={} started={} host={}",
                std::process::id(),
                chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
                hostname()
            );
            f.set_len(0)?;
            f.rewind()?;
            f.write_all(format!("{me}\n").as_bytes())?;
            f.sync_all().ok();
            crate::signals::register(&path);
            return Ok((Self { path, _file: f }, stale));
        }
        anyhow::bail!("{}: lock file keeps changing under us; is another run starting?", path.display())
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // remove while still holding the lock: a waiter that opened this file sees it is gone
        let _ = std::fs::remove_file(&self.path);
        crate::signals::unregister(&self.path);
    }
}

fn same_file(f: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (f.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_then_released() {
        let d = tempfile::tempdir().unwrap();
        let (a, stale) = DirLock::acquire(d.path()).unwrap();
        assert!(stale.is_none());
        let e = DirLock::acquire(d.path()).unwrap_err();
        let locked = e.downcast_ref::<Locked>().expect("Locked");
        assert!(locked.holder.contains(&format!("pid={}", std::process::id())), "{}", locked.holder);
        drop(a);
        assert!(!d.path().join(LOCK_NAME).exists());
        let (_b, stale) = DirLock::acquire(d.path()).unwrap();
        assert!(stale.is_none());
    }

    #[test]
    fn a_dead_runs_lock_file_is_taken_over() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(LOCK_NAME), "pid=999999 started=2026-01-01T00:00:00+08:00 host=x\n").unwrap();
        let (_l, stale) = DirLock::acquire(d.path()).unwrap();
        let w = stale.expect("warning");
        assert!(w.contains("pid=999999"), "{w}");
        let now = std::fs::read_to_string(d.path().join(LOCK_NAME)).unwrap();
        assert!(now.starts_with(&format!("pid={} ", std::process::id())), "{now}");
    }
}
