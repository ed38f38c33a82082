//! Broken input and a full disk: each gives one clear line naming the file and the cause, exit 2,
//! no panic, and the previous outputs stay exactly as they were (nothing partial is published).

mod common;

use common::bin;
use predicates::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command as Std;

const GOOD: &str = "sample_logs/cdr/generic_utf8.csv";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn outputs(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "timings.json")
        .map(|e| (e.file_name().to_string_lossy().to_string(), std::fs::read(e.path()).unwrap_or_default()))
        .collect()
}

/// A directory holding a complete earlier audit.
fn previous_audit(dir: &Path) -> (PathBuf, BTreeMap<String, Vec<u8>>) {
    let out = dir.join("out");
    bin().args(["scan", GOOD, "--quiet", "--out"]).arg(&out).assert().success();
    let o = outputs(&out);
    assert!(o.contains_key("run.json") && o.contains_key("report.html"), "{:?}", o.keys());
    (out, o)
}

/// Exit 2, exactly one stderr line containing every `needles`, no panic, outputs untouched.
fn check(o: &std::process::Output, out: &Path, before: &BTreeMap<String, Vec<u8>>, needles: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} missing from: {err}");
    }
    let now = outputs(out);
    let changed: Vec<&String> = now.keys().chain(before.keys()).filter(|k| now.get(*k) != before.get(*k)).collect();
    assert!(changed.is_empty(), "outputs changed or left behind: {changed:?}");
}

fn scan_out(inputs: &[&Path], out: &Path) -> std::process::Output {
    bin().arg("scan").args(inputs).arg("--quiet").arg("--out").arg(out).output().unwrap()
}

/// A scan of `inputs` into `out`, paused at the test hook `at` (its marker file exists on return).
fn paused_scan(out: &Path, inputs: &[&Path], marker: &Path, at: &str) -> std::process::Child {
    let child = Std::new(assert_cmd::cargo::cargo_bin("diversion-audit"))
        .args(["scan", "--quiet", "--out"])
        .arg(out)
        .args(inputs)
        .env("DIVERSION_AUDIT_TEST_PAUSE", marker)
        .env("DIVERSION_AUDIT_TEST_PAUSE_AT", at)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while !marker.exists() {
        assert!(t.elapsed().as_secs() < 60, "the run never reached {at}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child
}

#[test]
fn truncated_gzip() {
    let d = tempfile::tempdir().unwrap();
    let (out, before) = previous_audit(d.path());
    let whole = std::fs::read(root().join("sample_logs/cdr/generated_crews_2days.csv.gz")).unwrap();
    let p = d.path().join("trunc.csv.gz");
    std::fs::write(&p, &whole[..whole.len() / 2]).unwrap();
    let o = scan_out(&[&root().join(GOOD), &p], &out);
    check(&o, &out, &before, &["trunc.csv.gz", "truncated or corrupt gzip", "nothing written"]);
}

#[test]
fn file_vanishes_between_listing_and_reading() {
    let d = tempfile::tempdir().unwrap();
    let (out, before) = previous_audit(d.path());
    let p = d.path().join("gone.csv");
    std::fs::copy(root().join(GOOD), &p).unwrap();
    let marker = d.path().join("pause");
    let child = paused_scan(&out, &[&root().join(GOOD), &p], &marker, "listed");
    std::fs::remove_file(&p).unwrap();
    std::fs::remove_file(&marker).unwrap();
    let o = child.wait_with_output().unwrap();
    check(&o, &out, &before, &["gone.csv", "no longer exists"]);
}

/// A live export truncated under the reader (logrotate's `copytruncate`) while it is mapped: one
/// line naming the file, exit 2, earlier outputs untouched; never a SIGBUS (exit 135).
#[test]
fn file_truncated_while_it_is_read() {
    let d = tempfile::tempdir().unwrap();
    let (out, before) = previous_audit(d.path());
    let p = d.path().join("Master-live.csv");
    std::fs::copy(root().join(GOOD), &p).unwrap();
    let marker = d.path().join("pause");
    let child = paused_scan(&out, &[&p], &marker, "mapped");
    std::fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(0).unwrap();
    std::fs::remove_file(&marker).unwrap();
    let o = child.wait_with_output().unwrap();
    check(&o, &out, &before, &["Master-live.csv", "truncated or replaced while it was read"]);
}

#[test]
fn file_appended_to_while_it_is_read_is_read_to_its_length_and_the_run_says_so() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("Master-live.csv");
    std::fs::copy(root().join(GOOD), &p).unwrap();
    let lines = std::fs::read_to_string(&p).unwrap().lines().filter(|l| !l.trim().is_empty()).count() - 1;
    let out = d.path().join("out");
    let marker = d.path().join("pause");
    let child = paused_scan(&out, &[&p], &marker, "mapped");
    let last = std::fs::read_to_string(&p).unwrap().lines().last().unwrap().to_string();
    let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
    std::io::Write::write_all(&mut f, format!("{last}\n{last}\n").as_bytes()).unwrap();
    std::fs::remove_file(&marker).unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("Master-live.csv: grew by") && err.contains("read up to its length when opened"), "{err}");
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["inputs"][0]["lines_in"], lines as u64, "the rows appended are for the next run");
}

#[test]
fn unreadable_file() {
    let d = tempfile::tempdir().unwrap();
    let (out, before) = previous_audit(d.path());
    let p = d.path().join("secret.csv");
    std::fs::copy(root().join(GOOD), &p).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
    // root reads anything: run as nobody then, with a copy of the binary and inputs it may read
    // SAFETY: geteuid has no preconditions.
    let o = if unsafe { libc::geteuid() } == 0 {
        let exe = d.path().join("diversion-audit");
        std::fs::copy(assert_cmd::cargo::cargo_bin("diversion-audit"), &exe).unwrap();
        let good = d.path().join("good.csv");
        std::fs::copy(root().join(GOOD), &good).unwrap();
        for x in [d.path(), out.as_path()] {
            std::fs::set_permissions(x, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        for x in [&exe, &good] {
            std::fs::set_permissions(x, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Std::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&exe)
            .args(["scan", "--quiet", "--out"])
            .arg(&out)
            .arg(&good)
            .arg(&p)
            .output()
            .expect("setpriv (util-linux) is needed to drop root for this test")
    } else {
        scan_out(&[&root().join(GOOD), &p], &out)
    };
    check(&o, &out, &before, &["secret.csv", "Permission denied"]);
}

#[test]
fn a_10_mb_line() {
    let d = tempfile::tempdir().unwrap();
    let (out, before) = previous_audit(d.path());
    let p = d.path().join("long.csv");
    let header = std::fs::read_to_string(root().join(GOOD)).unwrap().lines().next().unwrap().to_string();
    std::fs::write(&p, format!("{header}\n{}\n", "7".repeat(10_000_000))).unwrap();
    let o = scan_out(&[&p], &out);
    check(&o, &out, &before, &["long.csv:2", "10.0 MB", "1 MiB limit"]);
}

#[test]
fn binary_garbage() {
    let d = tempfile::tempdir().unwrap();
    let (out, before) = previous_audit(d.path());
    let p = d.path().join("garbage.bin");
    // deterministic noise with NUL bytes, as an image or a database file has
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&p, bytes).unwrap();
    let o = scan_out(&[&p], &out);
    check(&o, &out, &before, &["garbage.bin", "binary content"]);
}

#[test]
fn header_only_csv() {
    let d = tempfile::tempdir().unwrap();
    let (out, before) = previous_audit(d.path());
    let p = d.path().join("header.csv");
    let header = std::fs::read_to_string(root().join(GOOD)).unwrap().lines().next().unwrap().to_string();
    std::fs::write(&p, format!("{header}\n")).unwrap();
    let o = scan_out(&[&root().join(GOOD), &p], &out);
    check(&o, &out, &before, &["header.csv", "no data rows", "--allow-empty"]);
    // --allow-empty: a warning, and the audit of the other file is published
    bin()
        .args(["scan", GOOD, "--quiet", "--allow-empty", "--out"])
        .arg(&out)
        .arg(&p)
        .assert()
        .success()
        .stderr(predicates::str::contains("warning").and(predicates::str::contains("header.csv")));
}

#[test]
fn disk_full_while_writing() {
    let d = tempfile::tempdir().unwrap();
    let (out, before) = previous_audit(d.path());
    // RLIMIT_FSIZE of 16 KiB: the first bigger output fails with EFBIG, as a full disk fails with ENOSPC
    let o = Std::new("sh")
        .arg("-c")
        .arg("ulimit -f 32 && exec \"$0\" \"$@\"")
        .arg(assert_cmd::cargo::cargo_bin("diversion-audit"))
        .args(["scan", "--quiet", GOOD, "sample_logs/cdr/generated_crews_2days.csv.gz", "--out"])
        .arg(&out)
        .current_dir(root())
        .output()
        .unwrap();
    check(&o, &out, &before, &["write failed", "File too large", out.to_str().unwrap()]);
    assert!(!std::fs::read_dir(&out).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().starts_with('.')));
}
