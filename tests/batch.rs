//! Cron-grade behaviour of `scan`: locks, kill -9, identical re-runs, --date, history streaks.

mod common;

use common::{bin, generate};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Std, Stdio};
use std::time::{Duration, Instant};

fn exe() -> PathBuf {
    assert_cmd::cargo::cargo_bin("diversion-audit")
}

/// Every output file under `dir` (relative path → bytes): not the volatile timings.json and
/// manifest.json (its time of creation and the inputs' modification times; `verify` checks it), and
/// not the dot-files of a run in progress or killed (lock, staging directory; checked separately).
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                walk(root, &e.path(), out);
            } else if e.file_name() != "timings.json" && e.file_name() != "manifest.json" {
                let rel = e.path().strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, std::fs::read(e.path()).unwrap());
            }
        }
    }
    let mut m = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut m);
    }
    m
}

/// Names of the files that differ (or exist on one side only); empty when the sets are equal.
fn differ(a: &BTreeMap<String, Vec<u8>>, b: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    a.keys().chain(b.keys()).filter(|k| a.get(*k) != b.get(*k)).cloned().collect::<BTreeSet<_>>().into_iter().collect()
}

fn scan_args(data: &Path, out: &Path) -> Vec<String> {
    let mut v: Vec<String> = vec!["scan".into(), data.join("cdr.csv").display().to_string()];
    for (flag, f) in [("--joins", "joins.csv"), ("--ip-country", "ip-country.csv")] {
        v.push(flag.into());
        v.push(data.join(f).display().to_string());
    }
    v.push("--out".into());
    v.push(out.display().to_string());
    v.push("--quiet".into());
    v
}

/// Small generated data (20 operators, 2 days) under `dir`, scanned once: the scan's arguments,
/// its output directory and that first run's outputs.
fn scanned_once(dir: &Path) -> (Vec<String>, PathBuf, BTreeMap<String, Vec<u8>>) {
    let data = generate(dir, &["--operators", "20", "--days", "2", "--no-parquet", "--no-overlap"]);
    let out = dir.join("out");
    let args = scan_args(&data, &out);
    bin().args(&args).assert().success();
    let before = snapshot(&out);
    (args, out, before)
}

/// Start a scan that stops at `at` (`listed` or `staged`) until the marker file is removed.
fn paused(args: &[String], marker: &Path, at: &str) -> Child {
    let child = Std::new(exe())
        .args(args)
        .env("DIVERSION_AUDIT_TEST_PAUSE", marker)
        .env("DIVERSION_AUDIT_TEST_PAUSE_AT", at)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !marker.exists() {
        assert!(t.elapsed() < Duration::from_secs(120), "the paused run never reached {at}");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn a_second_concurrent_run_is_refused_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let data = generate(dir.path(), &["--operators", "20", "--days", "2", "--no-parquet", "--no-overlap"]);
    let out = dir.path().join("out");
    let marker = dir.path().join("pause");
    let args = scan_args(&data, &out);
    let first = paused(&args, &marker, "listed");
    let pid = first.id();
    let t = Instant::now();
    let second = bin().args(&args).assert().code(75);
    assert!(t.elapsed() < Duration::from_secs(10), "the second run must fail at once");
    let err = String::from_utf8_lossy(&second.get_output().stderr).to_string();
    assert!(err.contains(&format!("pid={pid}")) && err.contains("started="), "{err}");
    assert!(err.contains(out.to_str().unwrap()), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    std::fs::remove_file(&marker).unwrap();
    let o = first.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("run.json").exists());
    assert!(!out.join(".diversion-audit.lock").exists(), "lock released");
}

#[test]
fn kill_9_mid_run_leaves_the_previous_outputs_whole() {
    let dir = tempfile::tempdir().unwrap();
    let data = generate(dir.path(), &["--operators", "60", "--days", "3", "--no-parquet", "--no-overlap"]);
    let out = dir.path().join("out");
    let hist = dir.path().join("history");
    let mut first = scan_args(&data, &out);
    first.extend(["--history".into(), hist.display().to_string(), "--date".into(), "2026-03-02".into()]);
    bin().args(&first).assert().success();
    let before = snapshot(&out);
    let hist_before = snapshot(&hist);
    assert!(before.len() >= 10 && before.contains_key("run.json"), "{:?}", before.keys());
    // a different day, so its outputs differ from the first run's
    let mut second = scan_args(&data, &out);
    second.extend(["--history".into(), hist.display().to_string(), "--date".into(), "2026-03-03".into()]);
    for at in ["listed", "staged"] {
        let marker = dir.path().join(format!("pause-{at}"));
        let mut child = paused(&second, &marker, at);
        child.kill().unwrap(); // SIGKILL: no handler runs
        child.wait().unwrap();
        assert_eq!(differ(&snapshot(&out), &before), Vec::<String>::new(), "outputs changed after kill -9 at {at}");
        assert_eq!(
            differ(&snapshot(&hist), &hist_before),
            Vec::<String>::new(),
            "history changed after kill -9 at {at}"
        );
        let _ = std::fs::remove_file(&marker);
    }
    // 20 kills spread over a run: the seven steps of staging and publishing (the history's set,
    // then the outputs', each built beside its directory and exchanged with it), and 13 moments
    // spread over the run's time. After each, each directory holds its old set or its new one, and
    // the outputs verify against the manifest published with them (never a mix).
    let t = Instant::now();
    bin().args(&second).assert().success();
    let run_s = t.elapsed();
    let (after, hist_after) = (snapshot(&out), snapshot(&hist));
    assert!(after != before, "the second day must give other outputs");
    let restore = || {
        bin().args(&first).assert().success();
        assert_eq!(
            differ(&snapshot(&out), &before),
            Vec::<String>::new(),
            "re-running the first day restores its outputs"
        );
    };
    restore();
    let steps =
        ["listed", "staged", "publishing:history", "exchanged:history", "publishing:out", "built:out", "exchanged:out"];
    let mut kills = 0;
    let mut outcomes = BTreeMap::new();
    for k in 0..20u32 {
        let mut child = match steps.get(k as usize) {
            Some(at) => paused(&second, &dir.path().join(format!("pause-{k}")), at),
            None => {
                let c = Std::new(exe()).args(&second).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
                std::thread::sleep(run_s * (k - steps.len() as u32 + 1) / 14);
                c
            }
        };
        child.kill().ok(); // SIGKILL: no handler runs
        child.wait().unwrap();
        kills += 1;
        let (now, hist_now) = (snapshot(&out), snapshot(&hist));
        let which = if now == before {
            "old"
        } else if now == after {
            "new"
        } else {
            "mixed"
        };
        assert!(
            which != "mixed",
            "a mixed output set after kill -9 #{k}: differ from the old set {:?}, from the new {:?}",
            differ(&now, &before),
            differ(&now, &after)
        );
        assert!(hist_now == hist_before || hist_now == hist_after, "a mixed history after kill -9 #{k}");
        let o = bin().arg("verify").arg(&out).output().unwrap();
        assert!(o.status.success(), "kill -9 #{k}: {}", String::from_utf8_lossy(&o.stdout));
        *outcomes.entry(which).or_insert(0) += 1;
        if which == "new" {
            restore();
        }
        let _ = std::fs::remove_file(dir.path().join(format!("pause-{k}")));
    }
    assert_eq!(kills, 20);
    // the steps before the outputs' exchange leave the old set, the exchange the new one
    assert!(
        outcomes.get("old").is_some_and(|n| *n >= 6) && outcomes.get("new").is_some_and(|n| *n >= 1),
        "{outcomes:?}"
    );
    // the next run takes over the dead run's lock, clears its staging, and completes
    let marker = dir.path().join("pause-last");
    let mut child = paused(&second, &marker, "staged");
    child.kill().unwrap();
    child.wait().unwrap();
    let leftovers: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.iter().any(|n| n.starts_with(".staging-")), "{leftovers:?}");
    let a = bin().args(&second).assert().success();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("stale lock") && err.contains(&format!("pid={}", child.id())), "{err}");
    assert_eq!(differ(&snapshot(&out), &after), Vec::<String>::new());
    let leftovers = std::fs::read_dir(&out)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with('.'))
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn sigterm_and_sigint_remove_temporaries_and_exit_143_130() {
    let dir = tempfile::tempdir().unwrap();
    let (args, out, before) = scanned_once(dir.path());
    for (sig, code) in [(libc::SIGTERM, 143), (libc::SIGINT, 130)] {
        let marker = dir.path().join(format!("pause-{sig}"));
        let child = paused(&args, &marker, "staged");
        // SAFETY: sending a signal to our own child.
        unsafe {
            libc::kill(child.id() as i32, sig);
        }
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(code), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stderr).contains("interrupted"));
        assert_eq!(differ(&snapshot(&out), &before), Vec::<String>::new());
        let dots: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(dots.is_empty(), "temporaries or lock left: {dots:?}");
        let _ = std::fs::remove_file(&marker);
    }
}

#[test]
fn rerunning_a_day_gives_identical_bytes_and_date_keeps_night_shifts_whole() {
    let dir = tempfile::tempdir().unwrap();
    let data = generate(dir.path(), &["--operators", "40", "--days", "3", "--no-parquet"]);
    let (out, hist) = (dir.path().join("out"), dir.path().join("history"));
    let mut args = scan_args(&data, &out);
    args.extend(["--history".into(), hist.display().to_string(), "--date".into(), "2026-03-03".into()]);
    bin().args(&args).assert().success();
    let (o1, h1) = (snapshot(&out), snapshot(&hist));
    assert_eq!(
        h1.keys().cloned().collect::<Vec<_>>(),
        ["date=2026-03-03/findings.parquet", "date=2026-03-03/profiles.parquet"]
    );
    bin().args(&args).assert().success();
    assert_eq!(differ(&snapshot(&out), &o1), Vec::<String>::new(), "outputs differ between two runs of one day");
    assert_eq!(differ(&snapshot(&hist), &h1), Vec::<String>::new(), "history differs between two runs of one day");
    // every shift in shifts.csv starts on the selected day; some end after midnight
    let mut r = csv::Reader::from_path(out.join("shifts.csv")).unwrap();
    let h = r.headers().unwrap().clone();
    let (si, ei) =
        (h.iter().position(|c| c == "shift_start").unwrap(), h.iter().position(|c| c == "shift_end").unwrap());
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert!(rows.len() > 10);
    assert!(rows.iter().all(|x| x[si].starts_with("2026-03-03")), "a shift from another day");
    assert!(rows.iter().any(|x| x[ei].starts_with("2026-03-04")), "no night shift kept whole");
    // a day with no calls is an error, not an empty audit
    let mut none = scan_args(&data, &dir.path().join("out2"));
    none.extend(["--date".into(), "2027-01-01".into()]);
    bin().args(&none).assert().code(2).stderr(predicates::str::contains("2027-01-01"));
}

/// (operator, rule) pairs of findings.csv.
fn flagged(out: &Path, rule: &str) -> BTreeSet<String> {
    let mut r = csv::Reader::from_path(out.join("findings.csv")).unwrap();
    let h = r.headers().unwrap().clone();
    let (ri, oi) = (h.iter().position(|c| c == "rule").unwrap(), h.iter().position(|c| c == "operator_id").unwrap());
    r.records().map(|x| x.unwrap()).filter(|x| &x[ri] == rule).map(|x| x[oi].to_string()).collect()
}

#[test]
fn streaks_come_from_history_across_seven_daily_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data =
        generate(dir.path(), &["--operators", "60", "--days", "8", "--seed", "11", "--no-parquet", "--no-overlap"]);
    let hist = dir.path().join("history");
    let start: chrono::NaiveDate = "2026-03-02".parse().unwrap();
    let mut long_days: Vec<BTreeSet<String>> = Vec::new();
    let mut spoof_days: Vec<BTreeSet<String>> = Vec::new();
    for k in 0..7u64 {
        let day = start + chrono::Days::new(k);
        let out = dir.path().join(format!("out-{day}"));
        let mut args = scan_args(&data, &out);
        args.extend(["--history".into(), hist.display().to_string(), "--date".into(), day.to_string()]);
        bin().args(&args).assert().success();
        long_days.push(flagged(&out, "long-shift"));
        spoof_days.push(flagged(&out, "spoofed-foreign-cli"));
        // expected from the per-day findings of this and earlier runs (each run saw one day of CDRs)
        let at_least = |days: &[BTreeSet<String>], n: usize| -> BTreeSet<String> {
            let mut count: BTreeMap<&String, usize> = BTreeMap::new();
            for d in days {
                for o in d {
                    *count.entry(o).or_default() += 1;
                }
            }
            count.into_iter().filter(|(_, c)| *c >= n).map(|(o, _)| o.clone()).collect()
        };
        let want_long = at_least(&long_days, 5);
        let want_spoof = at_least(&spoof_days, 3);
        assert_eq!(flagged(&out, "long-shift-streak"), want_long, "long-shift-streak after {day}");
        assert_eq!(flagged(&out, "repeat-spoofer"), want_spoof, "repeat-spoofer after {day}");
        if k < 4 {
            assert!(want_long.is_empty());
        }
        if k == 6 {
            assert!(want_long.len() >= 3 && want_spoof.len() >= 3, "{want_long:?} {want_spoof:?}");
            // the streak operators are the generator's long-shift operators, not decoys
            let truth: serde_json::Value =
                serde_json::from_slice(&std::fs::read(data.join("truth.json")).unwrap()).unwrap();
            let labels = truth["operators"].as_array().expect("operators in truth.json");
            let label = |o: &str, key: &str| {
                labels.iter().find(|l| l["operator_id"] == o).map(|l| l[key] == true).unwrap_or(false)
            };
            for o in &want_long {
                assert!(label(o, "long_shift"), "{o} is not a long-shift operator in truth.json");
            }
            for o in &want_spoof {
                assert!(label(o, "spoofed_foreign_cli"), "{o} is not a spoofing operator in truth.json");
            }
            let run: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
            assert_eq!(run["history"]["days_read"].as_array().unwrap().len(), 6, "{}", run["history"]);
        }
    }
    assert_eq!(
        std::fs::read_dir(&hist)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("date="))
            .count(),
        7
    );
}

#[test]
fn log_file_gets_one_line_per_start_finish_and_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let log = dir.path().join("logs/audit.log");
    let run = |input: &str| {
        bin().args(["scan", input, "--quiet", "--out"]).arg(&out).arg("--log-file").arg(&log).output().unwrap()
    };
    let ok = run("sample_logs/cdr/generic_utf8.csv");
    assert!(ok.status.success());
    assert!(ok.stdout.is_empty(), "--quiet prints no summary");
    let bad = run("/nonexistent/cdr.csv");
    assert_eq!(bad.status.code(), Some(2));
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert!(lines[0].contains(" info: scan started: ") && lines[0].contains("pid="), "{text}");
    // the manifest's own SHA-256 is logged: a later edit of manifest.json shows against the log
    let sha = diversion_audit::outputs::manifest::sha256_bytes(&std::fs::read(out.join("manifest.json")).unwrap());
    assert!(lines[1].contains("scan manifest: ") && lines[1].contains(&sha), "{text}");
    assert!(lines[2].contains("scan finished: exit 0"), "{text}");
    assert!(
        lines[4].contains("scan failed") && lines[5].contains(" error: ") && lines[5].contains("/nonexistent/cdr.csv"),
        "{text}"
    );
    // appended, never truncated: a timestamp starts every line
    assert!(lines.iter().all(|l| l.starts_with("20") && l.contains(" pid=")), "{text}");
}

/// A scan whose inputs need more memory than the machine has stops before reading, with the
/// figures and exit 2, leaving earlier outputs alone; `--ignore-memory-check` runs it with a note.
#[test]
fn inputs_too_large_for_memory_stop_before_reading_unless_told_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let (args, out, before) = scanned_once(dir.path());
    // 1 MB "available": the generated rows need more
    let refused = bin().args(&args).env("DIVERSION_AUDIT_MEMORY_AVAILABLE", "1000000").assert().code(2);
    let err = String::from_utf8_lossy(&refused.get_output().stderr).to_string();
    assert!(err.contains("M rows") && err.contains("0.0 GB is available") && err.contains("nothing read"), "{err}");
    assert!(differ(&before, &snapshot(&out)).is_empty(), "outputs untouched");
    // enough memory: no note; told to run anyway: the same findings, and run.json says so
    bin().args(&args).env("DIVERSION_AUDIT_MEMORY_AVAILABLE", "100000000000").assert().success();
    let plain = std::fs::read_to_string(out.join("run.json")).unwrap();
    assert!(!plain.contains("ignore-memory-check"), "{plain}");
    let forced = bin()
        .args(&args)
        .arg("--ignore-memory-check")
        .env("DIVERSION_AUDIT_MEMORY_AVAILABLE", "1000000")
        .assert()
        .success();
    let err = String::from_utf8_lossy(&forced.get_output().stderr).to_string();
    assert!(err.contains("run anyway"), "{err}");
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert!(run["notes"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().contains("--ignore-memory-check")));
    assert_eq!(std::fs::read(out.join("findings.csv")).unwrap(), before["findings.csv"]);
}

/// `--partitions N` reads the CDRs in N operator parts, one at a time, and publishes the same bytes
/// as a whole scan: generated data (every rule firing) as CSV and Parquet, and the sample logs
/// (eight formats and encodings, rejected rows). With `--history` it is refused before reading.
#[test]
fn partitioned_scans_publish_the_same_bytes_as_a_whole_scan() {
    let dir = tempfile::tempdir().unwrap();
    let data = generate(dir.path(), &["--operators", "60", "--days", "2", "--no-overlap"]);
    let whole_out = dir.path().join("whole");
    let args = scan_args(&data, &whole_out);
    bin().args(&args).assert().success();
    let whole = snapshot(&whole_out);
    let run: serde_json::Value = serde_json::from_slice(&whole["run.json"]).unwrap();
    for rule in ["long-shift", "spoofed-foreign-cli", "foreign-cli-fanout", "group-invite-conversion"] {
        assert!(run["findings_per_rule"][rule].as_u64().unwrap() > 0, "{rule} has findings to compare");
    }
    for n in ["2", "7"] {
        let out = dir.path().join(format!("parts{n}"));
        let mut a = scan_args(&data, &out);
        a.extend(["--partitions".into(), n.into()]);
        bin().args(&a).assert().success();
        assert_eq!(differ(&whole, &snapshot(&out)), Vec::<String>::new(), "--partitions {n}");
    }
    // Parquet: the rows chosen after typing rather than as lines are split
    let pq = |out: &Path, parts: &str| {
        let mut c = common::scan_generated(&data, &["cdr.parquet"], out);
        c.args(["--quiet", "--partitions", parts]).assert().success();
        snapshot(out)
    };
    assert_eq!(differ(&pq(&dir.path().join("pq1"), "1"), &pq(&dir.path().join("pq3"), "3")), Vec::<String>::new());
    // the sample logs (GBK, gzip, every vendor format) and a file of bad rows
    let sample = |out: &Path, parts: &str| {
        bin()
            .args([
                "scan",
                "sample_logs/cdr",
                "tests/data/bad_rows.csv",
                "--allow-rejects",
                "--joins",
                "sample_logs/joins",
                "--ip-country",
                "sample_logs/ip-country.csv",
            ])
            .arg("--out")
            .arg(out)
            .args(["--quiet", "--partitions", parts])
            .assert()
            .success();
        snapshot(out)
    };
    let (s1, s4) = (sample(&dir.path().join("s1"), "1"), sample(&dir.path().join("s4"), "4"));
    let rejected = String::from_utf8_lossy(&s1["rejected.csv"]).to_string();
    assert!(rejected.lines().count() > 5, "rejected rows to compare: {rejected}");
    assert_eq!(differ(&s1, &s4), Vec::<String>::new());
    // more parts than operators: empty parts, and parts none of whose calls has an IP country
    assert_eq!(differ(&s1, &sample(&dir.path().join("s50"), "50")), Vec::<String>::new());
    // no IP table at all: spoofed-foreign-cli's note, once, as a whole scan gives it
    let no_ip = |out: &Path, parts: &str| {
        bin()
            .args(["scan", "sample_logs/cdr", "--quiet", "--partitions", parts])
            .arg("--out")
            .arg(out)
            .assert()
            .success();
        snapshot(out)
    };
    let (n1, n3) = (no_ip(&dir.path().join("n1"), "1"), no_ip(&dir.path().join("n3"), "3"));
    assert_eq!(String::from_utf8_lossy(&n3["run.json"]).matches("spoofing was not assessed").count(), 1);
    assert_eq!(differ(&n1, &n3), Vec::<String>::new());
    let mut h = scan_args(&data, &dir.path().join("h"));
    h.extend(["--partitions".into(), "2".into(), "--history".into(), dir.path().join("hist").display().to_string()]);
    let refused = bin().args(&h).assert().code(2);
    assert!(
        String::from_utf8_lossy(&refused.get_output().stderr).contains("--partitions does not combine with --history")
    );
}

/// The memory check names the `--partitions` that would fit, and a scan given it runs.
#[test]
fn a_memory_shortfall_names_partitions_that_fit() {
    let dir = tempfile::tempdir().unwrap();
    let (args, out, before) = scanned_once(dir.path());
    let rows: u64 = std::fs::read_to_string(dir.path().join("data/cdr.csv")).unwrap().lines().count() as u64;
    // room for about a third of the rows at once
    let avail = rows * 320 / 3;
    let refused = bin().args(&args).env("DIVERSION_AUDIT_MEMORY_AVAILABLE", avail.to_string()).assert().code(2);
    let err = String::from_utf8_lossy(&refused.get_output().stderr).to_string();
    let n: u32 = err
        .split("--partitions ")
        .nth(1)
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!((4..=6).contains(&n), "{err}");
    let mut a = args.clone();
    a.extend(["--partitions".into(), n.to_string()]);
    bin().args(&a).env("DIVERSION_AUDIT_MEMORY_AVAILABLE", avail.to_string()).assert().success();
    assert_eq!(differ(&before, &snapshot(&out)), Vec::<String>::new());
}
