//! SIGINT / SIGTERM: remove this run's temporaries and locks, then exit 130 / 143.
//!
//! Whatever a run creates that must not outlive it (the staging directory, lock files) is registered
//! here. Moving finished outputs into place happens under [`publishing`], so a signal never cuts a
//! publish in half: it waits for the renames, then cleans up and exits.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

static CLEANUP: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static PUBLISH: Mutex<()> = Mutex::new(());

/// Remove `path` (file or directory) if the process is interrupted.
pub fn register(path: &Path) {
    CLEANUP.lock().unwrap_or_else(|e| e.into_inner()).push(path.to_path_buf());
}

/// `path` no longer needs removing on interrupt.
pub fn unregister(path: &Path) {
    CLEANUP.lock().unwrap_or_else(|e| e.into_inner()).retain(|p| p != path);
}

/// Run `f` (renaming outputs into place) without a signal cleaning up in the middle of it.
pub fn publishing<R>(f: impl FnOnce() -> R) -> R {
    let _g = PUBLISH.lock().unwrap_or_else(|e| e.into_inner());
    f()
}

fn remove(p: &Path) {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => drop(std::fs::remove_dir_all(p)),
        Ok(_) => drop(std::fs::remove_file(p)),
        Err(_) => {}
    }
}

/// Install the handlers (once, at start-up). Also ignores SIGXFSZ, so writing past a file-size
/// limit (`ulimit -f`) fails with an error naming the file instead of killing the process.
pub fn install() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    // SAFETY: setting a signal disposition to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return; // keep the default dispositions: the run is still killable, just without cleanup
    };
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let _g = PUBLISH.lock().unwrap_or_else(|e| e.into_inner());
            let paths = CLEANUP.lock().unwrap_or_else(|e| e.into_inner()).clone();
            for p in paths.iter().rev() {
                remove(p);
            }
            let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
            crate::log::error(&format!(
                "interrupted by {name}: temporary files and locks removed, earlier outputs left as they were"
            ));
            std::process::exit(128 + sig);
        }
    });
}
