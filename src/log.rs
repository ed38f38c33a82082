//! Messages for people and schedulers: errors and warnings go to stderr, and with `--log-file` are
//! also appended there, one timestamped line each (`2026-03-03T02:00:01+08:00 pid=42 warning: …`).

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

static LOG_FILE: Mutex<Option<std::fs::File>> = Mutex::new(None);

/// Append every later message to `path` as well (created if missing, never truncated).
pub fn open(path: &Path) -> anyhow::Result<()> {
    use anyhow::Context;
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create log directory", dir.display()))?;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("{}: cannot open log file", path.display()))?;
    *LOG_FILE.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
    Ok(())
}

fn emit(level: &str, msg: &str, to_stderr: bool) {
    // one line each: a message with line breaks would break line-oriented log readers
    let msg = msg.replace(['\n', '\r'], " ");
    if to_stderr {
        eprintln!("diversion-audit: {level}: {msg}");
    }
    if let Some(f) = LOG_FILE.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        let now = chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
        let _ = writeln!(f, "{now} pid={} {level}: {msg}", std::process::id());
    }
}

pub fn error(msg: &str) {
    emit("error", msg, true);
}

pub fn warn(msg: &str) {
    emit("warning", msg, true);
}

/// To the log file only (stderr stays quiet for cron): run start, end and exit code.
pub fn info(msg: &str) {
    emit("info", msg, false);
}
