//! Process-level diagnostics and switches shared by every stage: `DA_TRACE` stage timings, the
//! test pause points, and leaving large values to the process exit.

/// Set by the binary: a command's large working values (the CDR frames) are left for the process
/// exit to reclaim instead of being freed one allocation at a time just before it (10 M rows: 0.07 s).
/// Library callers, tests among them, leave it unset and get ordinary drops.
pub static LEAVE_TO_EXIT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Drop `v`, or with [`LEAVE_TO_EXIT`] leave it to the process exit.
pub fn release<T>(v: T) {
    if LEAVE_TO_EXIT.load(std::sync::atomic::Ordering::Relaxed) {
        std::mem::forget(v);
    } else {
        drop(v);
    }
}

/// For the fault and batch tests only: with `DIVERSION_AUDIT_TEST_PAUSE=FILE`, at the point named by
/// `DIVERSION_AUDIT_TEST_PAUSE_AT` (`listed`: inputs listed, lock held; `mapped`: a text input
/// mapped into memory, not yet split; `staged`: every output written to the staging directory, not
/// yet published; default `listed`), create FILE and wait
/// (up to 60 s) until it is removed, so a test can delete an input or kill the run right there.
pub fn test_pause(point: &str) {
    let Some(marker) = std::env::var_os("DIVERSION_AUDIT_TEST_PAUSE") else { return };
    let at = std::env::var("DIVERSION_AUDIT_TEST_PAUSE_AT").unwrap_or_else(|_| "listed".into());
    if at != point {
        return;
    }
    let marker = std::path::PathBuf::from(marker);
    if std::fs::write(&marker, b"listed\n").is_err() {
        return;
    }
    let t = std::time::Instant::now();
    while marker.exists() && t.elapsed() < std::time::Duration::from_secs(60) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `DA_TRACE=1` prints stage timings to stderr (for profiling; run.json carries them for scans).
pub fn trace(what: &str, since: std::time::Instant) {
    if std::env::var_os("DA_TRACE").is_some() {
        // with the peak resident memory so far (VmHWM), to see which stage sets the peak
        // and the resident memory now (VmRSS)
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |k: &str| {
            status.lines().find(|l| l.starts_with(k)).map(|l| l[k.len()..].trim().to_string()).unwrap_or_default()
        };
        let hwm = format!(
            "{}, now {} anon {} file {}",
            field("VmHWM:"),
            field("VmRSS:"),
            field("RssAnon:"),
            field("RssFile:")
        );
        // and the process's user and system CPU seconds so far (system time is mostly page faults)
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        // and the wall time since the process started, to line stages up against CPU use
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        let start = START.get_or_init(|| since);
        eprintln!(
            "[trace] {what}: {:.3}s (at {:.2}s; peak {hwm}; cpu user {:.2}s sys {:.2}s)",
            since.elapsed().as_secs_f64(),
            start.elapsed().as_secs_f64(),
            secs(ru.ru_utime),
            secs(ru.ru_stime)
        );
    }
}
