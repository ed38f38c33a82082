//! The Spark job (spark/) against the native scan, on the same generated inputs: `normalize` each
//! export on its own (as hosts would), the job in local mode, and the native scan over the files;
//! the same findings (rule, operator, subject, window, severity, score, sentence and evidence), the
//! same shifts, operators, conversions, groups, crews, links and monitoring, and the same dossier
//! and crew page through `report --from`.
//!
//! Needs Java 17 and the Python environment of spark/requirements.txt: `bash spark/venv.sh` makes it
//! and prints its python, which `DA_SPARK_PYTHON` names (default: `~/.cache/da-spark-venv`). `.ci/run`
//! does both.

mod common;

use common::{bin, generate, generated, scan_generated};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn python() -> PathBuf {
    let p = match std::env::var_os("DA_SPARK_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/da-spark-venv/bin/python"),
    };
    assert!(
        p.exists(),
        "no Python with pyspark at {}: run `bash spark/venv.sh` (it prints the python to set DA_SPARK_PYTHON to)",
        p.display()
    );
    p
}

/// `normalize` each file on its own into `out` (one part set per file).
fn normalize_each(data: &Path, files: &[&str], out: &Path) {
    for f in files {
        generated(&["normalize", "--quiet"], data, &[f], out).assert().success();
    }
}

/// `normalize` each file as a Spark task (spark/normalize.py, local mode) into `out`.
fn normalize_on_executors(data: &Path, files: &[&str], out: &Path) {
    let exe = env!("CARGO_BIN_EXE_diversion-audit");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("spark/normalize.py");
    let o = Command::new(python())
        .arg(script)
        .args(["--master", "local[2]", "--binary"])
        .arg(exe)
        .arg("--out")
        .arg(out)
        .arg("--joins")
        .arg(data.join("joins.csv"))
        .arg("--ip-country")
        .arg(data.join("ip-country.csv"))
        .args(files.iter().map(|f| data.join(f)))
        .output()
        .expect("python runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_dir(out.join("_manifests")).unwrap().count(), files.len());
}

/// The Spark job in local mode over `canonical` into `out`.
fn spark(canonical: &Path, out: &Path, extra: &[&str]) {
    let job = Path::new(env!("CARGO_MANIFEST_DIR")).join("spark/audit.py");
    let o = Command::new(python())
        .arg(job)
        .args(["--master", "local[2]", "--shuffle-partitions", "4", "--canonical"])
        .arg(canonical)
        .arg("--joins")
        .arg(canonical.join("_joins"))
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("python runs");
    let tail = |b: &[u8]| {
        let s = String::from_utf8_lossy(b);
        s.chars().rev().take(3000).collect::<String>().chars().rev().collect::<String>()
    };
    assert!(o.status.success(), "spark job failed:\n{}\n{}", tail(&o.stdout), tail(&o.stderr));
}

fn findings(dir: &Path) -> BTreeMap<(String, String, String, String, String), Value> {
    std::fs::read_to_string(dir.join("findings.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let f: Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| f[k].as_str().unwrap_or("").to_string();
            ((s("rule"), s("operator_id"), s("subject"), s("window_start"), s("window_end")), f)
        })
        .collect()
}

/// The findings agree: the same keys; severity, sentence and evidence equal; scores within 1e-6.
/// Returns the findings per rule.
fn same_findings(native: &Path, spark: &Path) -> BTreeMap<String, usize> {
    let (a, b) = (findings(native), findings(spark));
    let only_a: Vec<_> = a.keys().filter(|k| !b.contains_key(*k)).take(5).collect();
    let only_b: Vec<_> = b.keys().filter(|k| !a.contains_key(*k)).take(5).collect();
    assert!(only_a.is_empty() && only_b.is_empty(), "native only: {only_a:?}\nspark only: {only_b:?}");
    let mut per_rule = BTreeMap::new();
    for (k, x) in &a {
        let y = &b[k];
        assert_eq!(x["severity"], y["severity"], "{k:?}");
        let (sx, sy) = (x["score"].as_f64().unwrap(), y["score"].as_f64().unwrap());
        assert!((sx - sy).abs() <= 1e-6, "{k:?}: score {sx} vs {sy}");
        assert_eq!(x["summary"], y["summary"], "{k:?}");
        assert_eq!(x["evidence"], y["evidence"], "{k:?}");
        *per_rule.entry(k.0.clone()).or_insert(0) += 1;
    }
    per_rule
}

/// A CSV's rows by their key columns' values, each row as column → text.
type Rows = BTreeMap<Vec<String>, BTreeMap<String, String>>;

/// A CSV's header and rows.
fn csv_rows(path: &Path, key: &[&str]) -> (Vec<String>, Rows) {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let head: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    let mut rows = BTreeMap::new();
    for rec in r.records() {
        let rec = rec.unwrap();
        let m: BTreeMap<String, String> = head.iter().cloned().zip(rec.iter().map(str::to_string)).collect();
        let k: Vec<String> = key.iter().map(|c| m[*c].clone()).collect();
        assert!(rows.insert(k.clone(), m).is_none(), "{}: key {k:?} twice", path.display());
    }
    (head, rows)
}

/// A table agrees: the same columns in the same order, the same rows; numbers equal within 1e-9
/// (the writers format floats their own way), texts equal. Returns its rows.
fn same_table(native: &Path, spark: &Path, name: &str, key: &[&str]) -> usize {
    let (ha, a) = csv_rows(&native.join(name), key);
    let (hb, b) = csv_rows(&spark.join(name), key);
    assert_eq!(ha, hb, "{name}: columns");
    let ka: BTreeSet<_> = a.keys().collect();
    let kb: BTreeSet<_> = b.keys().collect();
    assert_eq!(ka, kb, "{name}: rows");
    for (k, x) in &a {
        for (c, v) in x {
            let w = &b[k][c];
            let same = match (v.parse::<f64>(), w.parse::<f64>()) {
                (Ok(p), Ok(q)) => (p - q).abs() <= 1e-9,
                _ => v == w,
            };
            assert!(same, "{name} {k:?} {c}: native {v:?}, spark {w:?}");
        }
    }
    a.len()
}

fn report(dir: &Path, what: &[&str]) -> String {
    let o = bin().arg("report").arg("--from").arg(dir).args(what).args(["--format", "json"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// Every output of the two engines agrees; returns the findings per rule.
fn parity(native: &Path, spark: &Path) -> BTreeMap<String, usize> {
    let per_rule = same_findings(native, spark);
    assert!(same_table(native, spark, "shifts.csv", &["operator_id", "shift_start"]) > 100);
    same_table(native, spark, "operators.csv", &["operator_id"]);
    same_table(native, spark, "conversions.csv", &["group_id", "member_e164", "joined"]);
    same_table(native, spark, "groups.csv", &["group_id"]);
    same_table(native, spark, "crews.csv", &["crew_id"]);
    same_table(native, spark, "links.csv", &["from", "to", "kind"]);
    same_table(native, spark, "monitoring.csv", &["listener", "target", "how"]);
    per_rule
}

/// Each of `rules` had findings to compare (a parity of nothing proves nothing).
fn compared(per_rule: &BTreeMap<String, usize>, rules: &[&str]) {
    for r in rules {
        assert!(per_rule.get(*r).is_some_and(|n| *n > 0), "no {r} finding to compare: {per_rule:?}");
    }
}

/// The highest-risk operator's dossier, and the first crew page, from both engines' outputs.
fn same_reports(native: &Path, spark: &Path) {
    let (_, ops) = csv_rows(&native.join("operators.csv"), &["operator_id"]);
    let top = ops
        .values()
        .max_by(|a, b| a["risk_score"].parse::<f64>().unwrap().total_cmp(&b["risk_score"].parse::<f64>().unwrap()))
        .unwrap()["operator_id"]
        .clone();
    let (a, b) = (report(native, &["--operator", &top]), report(spark, &["--operator", &top]));
    // the native dossier names the inputs its rows came from, with their SHA-256 (the Spark job reads
    // canonical parts and knows no input hashes): equal but for that
    let mut d: Value = serde_json::from_str(&a).unwrap();
    let sources = d.as_object_mut().unwrap().remove("sources").unwrap_or_default();
    assert!(
        sources
            .as_array()
            .is_some_and(|s| !s.is_empty() && s.iter().all(|x| x["sha256"].as_str().unwrap().len() == 64))
    );
    assert_eq!(d, serde_json::from_str::<Value>(&b).unwrap(), "dossier of {top}");
    assert!(!d["findings"].as_array().unwrap().is_empty() && !d["calls"].as_array().unwrap().is_empty());
    let (_, crews) = csv_rows(&native.join("crews.csv"), &["crew_id"]);
    if let Some(c) = crews.keys().next() {
        assert_eq!(report(native, &["--crew", &c[0]]), report(spark, &["--crew", &c[0]]), "crew page {}", c[0]);
    }
}

#[test]
fn spark_matches_the_native_scan_on_multi_leg_asterisk_exports() {
    let tmp = tempfile::tempdir().unwrap();
    // 21-column cdr_csv legs (Local channels, queues, `h` rows, inbound queue agents, shared seats,
    // ChanSpy leaders) and an overlapping second export of the last day
    let data = generate(tmp.path(), &["--shape", "asterisk", "--operators", "150", "--days", "4", "--seed", "5"]);
    let files = ["asterisk_Master.csv", "asterisk_overlap.csv"];
    let (canonical, native, out) = (tmp.path().join("canonical"), tmp.path().join("native"), tmp.path().join("spark"));
    normalize_each(&data, &files, &canonical);
    scan_generated(&data, &files, &native).arg("--quiet").assert().success();
    let run: Value = serde_json::from_str(&std::fs::read_to_string(native.join("run.json")).unwrap()).unwrap();
    assert!(run["calls"]["legs"].as_u64() > run["calls"]["calls"].as_u64(), "multi-leg calls");
    assert!(run["rows"]["duplicates"].as_u64().unwrap() > 0, "the overlap repeats rows");
    spark(&canonical, &out, &[]);
    let rules = ["long-shift", "shared-seat", "foreign-cli-fanout", "group-invite-conversion", "cli-rotation", "crew"];
    compared(&parity(&native, &out), &rules);
    same_reports(&native, &out);
}

#[test]
fn spark_matches_the_native_scan_on_spoofing_and_streaks() {
    let tmp = tempfile::tempdir().unwrap();
    let data = generate(tmp.path(), &["--operators", "150", "--days", "6", "--seed", "9", "--no-parquet"]);
    let files = ["cdr.csv", "cdr_overlap.csv"];
    let (canonical, native, out) = (tmp.path().join("canonical"), tmp.path().join("native"), tmp.path().join("spark"));
    // each export normalised by a task of its own, the binary run on the executors
    normalize_on_executors(&data, &files, &canonical);
    scan_generated(&data, &files, &native).arg("--quiet").assert().success();
    spark(&canonical, &out, &[]);
    let rules = ["long-shift", "spoofed-foreign-cli", "group-invite-conversion", "long-shift-streak", "repeat-spoofer"];
    compared(&parity(&native, &out), &rules);
    same_reports(&native, &out);
}

#[test]
fn spark_nightly_day_with_history_matches_the_native_nightly_run() {
    use polars::prelude::*;
    let tmp = tempfile::tempdir().unwrap();
    let data = generate(tmp.path(), &["--operators", "150", "--days", "7", "--seed", "9", "--no-parquet"]);
    let files = ["cdr.csv", "cdr_overlap.csv"];
    let t = |n: &str| tmp.path().join(n);
    // six nights already audited natively, kept in a history; then the seventh day on both engines
    scan_generated(&data, &files, &t("first"))
        .args(["--quiet", "--until", "2026-03-07", "--history"])
        .arg(t("h-native"))
        .assert()
        .success();
    copy_dir(&t("h-native"), &t("h-spark"));
    scan_generated(&data, &files, &t("native"))
        .args(["--quiet", "--date", "2026-03-08", "--history"])
        .arg(t("h-native"))
        .assert()
        .success();
    normalize_each(&data, &files, &t("canonical"));
    let h = t("h-spark");
    spark(&t("canonical"), &t("spark"), &["--date", "2026-03-08", "--history", h.to_str().unwrap()]);
    compared(&parity(&t("native"), &t("spark")), &["long-shift-streak", "repeat-spoofer", "crew"]);
    // the streaks rest on the history's days, not on CDRs of this run
    let f = findings(&t("spark"));
    let streak = f.values().find(|f| f["rule"] == "long-shift-streak").unwrap();
    assert!(streak["evidence"]["days"].as_array().unwrap().iter().any(|d| d["from_history"] == true));
    // the day's profiles as the native run wrote them, in the native types
    let read = |root: &Path| {
        let f = std::fs::File::open(root.join("date=2026-03-08/profiles.parquet")).unwrap();
        ParquetReader::new(f).finish().unwrap()
    };
    let (a, b) = (read(&t("h-native")), read(&h));
    assert!(a.height() > 100);
    assert_eq!(a.schema(), b.schema());
    assert!(a.equals_missing(&b), "history partitions differ:\n{a}\n{b}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The Spark job's defaults (spark/…/config.py, crew.py) are the native config's: a key the job reads
/// has the value `config init` gives it.
#[test]
fn spark_defaults_are_the_native_defaults() {
    let o = Command::new(python())
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("spark"))
        .args([
            "-c",
            "import json; from diversion_audit_spark import config, crew; \
             print(json.dumps({'config': config.DEFAULTS, 'crew': crew.DEFAULTS}))",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let py: Value = serde_json::from_slice(&o.stdout).unwrap();
    let native = serde_json::to_value(diversion_audit::config::Config::default()).unwrap();
    /// Every leaf of `py` equals the same path in `native`.
    fn within(py: &Value, native: &Value, path: &str, n: &mut usize) {
        match py {
            Value::Object(m) => {
                for (k, v) in m {
                    within(v, &native[k], &format!("{path}.{k}"), n);
                }
            }
            _ => {
                *n += 1;
                let same = match (py.as_f64(), native.as_f64()) {
                    (Some(a), Some(b)) => a == b,
                    _ => py == native,
                };
                assert!(same, "{path}: spark {py}, native {native}");
            }
        }
    }
    let mut n = 0;
    within(&py["config"], &native, "", &mut n);
    within(&py["crew"], &native["rules"]["crew"], "rules.crew", &mut n);
    assert!(n > 40, "{n} defaults compared");
}
