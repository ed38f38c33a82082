//! SIGINT / SIGTERM: remove this run's temporaries and locks, then exit 130 / 143.
//!
//! SIGBUS: an input read through a memory map was truncated or replaced under the reader (a live
//! `Master.csv` rotated with `copytruncate`). The faulting thread cannot go on, and a handler may do
//! almost nothing, so it writes one byte to a pipe and waits; a watcher thread then cleans up as
//! for SIGINT, says which file ([`reading`]) in one line and exits 2.
//!
//! Whatever a run creates that must not outlive it (the staging directory, lock files) is registered
//! here. Moving finished outputs into place happens under [`publishing`], so a signal never cuts a
//! publish in half: it waits for the renames, then cleans up and exits.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

static CLEANUP: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static PUBLISH: Mutex<()> = Mutex::new(());
/// The input last mapped into memory, named when a SIGBUS says it changed.
static READING: Mutex<Option<PathBuf>> = Mutex::new(None);
/// The write end of the SIGBUS pipe (-1 until installed).
static BUS_PIPE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// `path` is read through a memory map from now on: a SIGBUS names it.
pub fn reading(path: &Path) {
    *READING.lock().unwrap_or_else(|e| e.into_inner()) = Some(path.to_path_buf());
}

extern "C" fn on_sigbus(_: libc::c_int) {
    let fd = BUS_PIPE.load(std::sync::atomic::Ordering::SeqCst);
    // SAFETY: write(2), pause(2) and _exit(2) are async-signal-safe; the buffer is a local byte.
    unsafe {
        if fd < 0 {
            libc::_exit(2);
        }
        let b = 1u8;
        libc::write(fd, (&b as *const u8).cast(), 1);
        // this thread stays here; the watcher ends the process
        loop {
            libc::pause();
        }
    }
}

/// The SIGBUS handler and its watcher thread.
fn install_sigbus() {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe(2) into a two-element array; the handler is installed after the pipe exists.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return;
    }
    BUS_PIPE.store(fds[1], std::sync::atomic::Ordering::SeqCst);
    let read_fd = fds[0];
    std::thread::spawn(move || {
        let mut b = 0u8;
        // SAFETY: a blocking one-byte read from the pipe's read end, owned by this thread
        let n = unsafe { libc::read(read_fd, (&mut b as *mut u8).cast(), 1) };
        if n != 1 {
            return;
        }
        let paths = CLEANUP.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for p in paths.iter().rev() {
            remove(p);
        }
        let file = READING.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let file = file.map_or_else(|| "an input".to_string(), |f| f.display().to_string());
        crate::log::error(&format!(
            "{file}: truncated or replaced while it was read (rotated with copytruncate?); nothing published, earlier outputs left as they were"
        ));
        std::process::exit(2);
    });
    // SAFETY: installing a plain handler for SIGBUS; it only calls async-signal-safe functions.
    unsafe {
        libc::signal(libc::SIGBUS, on_sigbus as *const () as libc::sighandler_t);
    }
}

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
    install_sigbus();
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
