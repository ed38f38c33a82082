//! The desk's workflow (issue 27): the evidence manifest and `verify`, the allowlist and
//! suppressed.csv, new / recurring / resolved findings over seven daily runs, alerts.jsonl, and a
//! published set that drops the outputs a run no longer writes.

mod common;

use common::{bin, generate, scan_generated};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A CSV's rows as column → text.
fn rows(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let head: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    r.records().map(|rec| head.iter().cloned().zip(rec.unwrap().iter().map(str::to_string)).collect()).collect()
}

/// A finding's identity across days: rule, operator, subject.
fn key(r: &BTreeMap<String, String>) -> (String, String, String) {
    (r["rule"].clone(), r["operator_id"].clone(), r["subject"].clone())
}

fn verify(dir: &Path, extra: &[&str]) -> (i32, String) {
    let o = bin().arg("verify").arg(dir).args(extra).output().unwrap();
    (o.status.code().unwrap(), String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr))
}

/// Change one byte of a file in place (same size), returning the old bytes.
fn flip_byte(path: &Path, at: usize) -> Vec<u8> {
    let old = std::fs::read(path).unwrap();
    let mut b = old.clone();
    b[at] = if b[at] == b'7' { b'8' } else { b'7' };
    std::fs::write(path, &b).unwrap();
    old
}

#[test]
fn verify_detects_a_changed_input_byte_and_a_changed_output_byte() {
    let dir = tempfile::tempdir().unwrap();
    let data = generate(dir.path(), &["--operators", "20", "--days", "2", "--no-parquet", "--no-overlap"]);
    let out = dir.path().join("out");
    scan_generated(&data, &["cdr.csv"], &out).arg("--quiet").assert().success();
    let m: Value = serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    // what the manifest records: every input with its hash and rows, every output but itself
    let inputs = m["inputs"].as_array().unwrap();
    let roles: BTreeSet<&str> = inputs.iter().map(|i| i["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["cdr", "ip-country", "joins"].into());
    let cdr = inputs.iter().find(|i| i["role"] == "cdr").unwrap();
    let bytes = std::fs::read(data.join("cdr.csv")).unwrap();
    assert_eq!(cdr["size"], bytes.len() as u64);
    assert_eq!(cdr["sha256"].as_str().unwrap().len(), 64);
    let run: Value = serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(cdr["rows"], run["rows"]["read"]);
    assert!(
        m["argv"].as_array().unwrap().iter().any(|a| a == "scan") && m["config_sha256"].as_str().unwrap().len() == 64
    );
    let listed: BTreeSet<String> =
        m["outputs"].as_array().unwrap().iter().map(|o| o["path"].as_str().unwrap().into()).collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| !n.starts_with('.') && n != "manifest.json")
        .collect();
    assert_eq!(listed, on_disk);
    // report.html shows the inputs' hashes; each dossier names the inputs its rows came from
    let sha = cdr["sha256"].as_str().unwrap();
    assert!(std::fs::read_to_string(out.join("report.html")).unwrap().contains(sha));
    let d: Value = serde_json::from_slice(&std::fs::read(out.join("dossiers.json")).unwrap()).unwrap();
    let first = &d["dossiers"][0];
    assert_eq!(first["sources"][0]["sha256"], sha, "{}", first["sources"]);
    assert!(first["sources"][0]["rows"].as_u64().unwrap() > 0);

    let (code, text) = verify(&out, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("all match"), "{text}");
    // one byte of the input changed (same size): exit 1, the input named
    let old = flip_byte(&data.join("cdr.csv"), bytes.len() / 2);
    let (code, text) = verify(&out, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("CHANGED") && text.contains("input") && text.contains("cdr.csv") && text.contains("same size"),
        "{text}"
    );
    assert!(!text.contains("output "), "{text}");
    // the outputs alone still match
    assert_eq!(verify(&out, &["--skip-inputs"]).0, 0);
    std::fs::write(data.join("cdr.csv"), &old).unwrap();
    // one byte of an output changed: exit 1, the output named
    let f = out.join("findings.csv");
    let len = std::fs::metadata(&f).unwrap().len() as usize;
    flip_byte(&f, len - 5);
    let (code, text) = verify(&out, &["--format", "json"]);
    assert_eq!(code, 1, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let bad: Vec<(&str, &str, &str)> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] != "ok")
        .map(|c| (c["side"].as_str().unwrap(), c["path"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(bad, [("output", "findings.csv", "changed")]);
    // a missing output is a change too; no manifest is exit 2
    std::fs::remove_file(out.join("groups.csv")).unwrap();
    let (code, text) = verify(&out, &[]);
    assert!(code == 1 && text.contains("MISSING") && text.contains("groups.csv"), "{text}");
    std::fs::remove_file(out.join("manifest.json")).unwrap();
    let (code, text) = verify(&out, &[]);
    assert!(code == 2 && text.contains("manifest.json"), "{text}");
}

#[test]
fn an_allowlisted_caller_id_moves_its_findings_to_suppressed_and_an_expired_entry_warns() {
    let dir = tempfile::tempdir().unwrap();
    let data = generate(dir.path(), &["--operators", "80", "--days", "2", "--no-parquet", "--no-overlap"]);
    let plain = dir.path().join("plain");
    scan_generated(&data, &["cdr.csv"], &plain).arg("--quiet").assert().success();
    let before = rows(&plain.join("findings.csv"));
    // a caller ID that a fan-out finding is about; the cell is written '+… (spreadsheet-safe)
    let fan = before.iter().find(|r| r["rule"] == "foreign-cli-fanout").expect("a fan-out finding");
    let cli = fan["subject"].trim_start_matches('\'').to_string();
    let shown_with_others = |r: &BTreeMap<String, String>| {
        let ev: Value = serde_json::from_str(&r["evidence"]).unwrap();
        ["clis", "pool", "shared_clis"].iter().any(|k| {
            ev[*k].as_array().is_some_and(|a| a.len() > 1 && a.iter().any(|c| c.as_str() == Some(cli.as_str())))
        })
    };
    let near_misses = before.iter().filter(|r| shown_with_others(r)).count();
    let allow = dir.path().join("allow.csv");
    // written as a desk would: spaces, and a second entry long expired
    let spaced = format!("{} {} {}", &cli[..3], &cli[3..6], &cli[6..]);
    std::fs::write(
        &allow,
        format!(
            "kind,value,reason,author,expires\ncli,{spaced},bank's overseas call centre,desk-3,2026-12-31\n\
             operator,op09999,BPO seat returned,desk-1,2026-01-31\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = scan_generated(&data, &["cdr.csv"], &out).arg("--allow").arg(&allow).arg("--quiet").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("allow.csv:3") && err.contains("expired on 2026-01-31") && err.contains("op09999"), "{err}");
    let after = rows(&out.join("findings.csv"));
    let sup = rows(&out.join("suppressed.csv"));
    let about = |r: &&BTreeMap<String, String>| r["subject"].trim_start_matches('\'') == cli;
    let moved: Vec<_> = before.iter().filter(about).collect();
    assert!(!moved.is_empty());
    assert_eq!(after.iter().filter(about).count(), 0, "the caller ID's findings left findings.csv");
    assert_eq!(sup.len(), moved.len(), "and only they went to suppressed.csv");
    for s in &sup {
        assert!(about(&s));
        // (a cell starting with + is written '+…, as every CSV here, so a spreadsheet shows it as text)
        assert_eq!((s["allow_kind"].as_str(), s["allow_value"].trim_start_matches('\'')), ("cli", spaced.as_str()));
        assert_eq!((s["allow_reason"].as_str(), s["allow_author"].as_str()), ("bank's overseas call centre", "desk-3"));
        assert!(s["allow_source"].ends_with("allow.csv:2"), "{}", s["allow_source"]);
    }
    // a finding that names the caller ID among others is still reported
    assert!(near_misses > 0);
    assert_eq!(after.iter().filter(|r| shown_with_others(r)).count(), near_misses);
    assert_eq!(after.len() + sup.len(), before.len());
    let run: Value = serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["triage"]["suppressed"], sup.len() as u64);
    assert_eq!(run["triage"]["allowlist_entries"], 2);
    assert!(run["triage"]["allowlist_expired"][0].as_str().unwrap().contains("op09999"));
    assert!(run["notes"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().contains("expired on 2026-01-31")));

    // the same entry in the config's [[allow]] and a whole operator by `operator`
    let op = after.iter().find(|r| r["rule"] == "long-shift").unwrap()["operator_id"].clone();
    let cfg = dir.path().join("desk.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[allow]]\nkind = \"operator\"\nvalue = \"{op}\"\nreason = \"night-shift helpdesk\"\nauthor = \"desk-2\"\nexpires = \"2027-01-01\"\n"
        ),
    )
    .unwrap();
    let out2 = dir.path().join("out2");
    scan_generated(&data, &["cdr.csv"], &out2).arg("--config").arg(&cfg).arg("--quiet").assert().success();
    let sup2 = rows(&out2.join("suppressed.csv"));
    assert!(!sup2.is_empty() && sup2.iter().all(|r| r["operator_id"] == op && r["allow_kind"] == "operator"));
    assert!(rows(&out2.join("findings.csv")).iter().all(|r| r["operator_id"] != op));
    let ops = rows(&out2.join("operators.csv"));
    let risk = ops.iter().find(|r| r["operator_id"] == op).map(|r| r["risk_score"].parse::<f64>().unwrap());
    assert_eq!(risk, Some(0.0), "suppressed findings do not count towards the operator's risk");
    // a bad entry names its line
    std::fs::write(&allow, "kind,value,reason,author,expires\nseat,x,r,a,2026-01-01\n").unwrap();
    let o = scan_generated(&data, &["cdr.csv"], &dir.path().join("out3")).arg("--allow").arg(&allow).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("allow.csv:2"));
}

#[test]
fn seven_daily_runs_mark_new_recurring_and_resolved_and_alert_on_the_new() {
    let dir = tempfile::tempdir().unwrap();
    let data =
        generate(dir.path(), &["--operators", "80", "--days", "7", "--no-parquet", "--no-overlap", "--seed", "4"]);
    let hist = dir.path().join("history");
    // what each day found, by key: the expectation is built from the findings alone
    let mut seen: BTreeMap<(String, String, String), String> = BTreeMap::new(); // key -> first day
    let mut yesterday: BTreeSet<(String, String, String)> = BTreeSet::new();
    let (mut n_new, mut n_rec, mut n_res) = (0, 0, 0);
    for day in 2..=8 {
        let date = format!("2026-03-{day:02}");
        let out = dir.path().join(format!("day-{day}"));
        let o = scan_generated(&data, &["cdr.csv"], &out)
            .args(["--history", hist.to_str().unwrap(), "--date", &date, "--fail-on", "medium"])
            .output()
            .unwrap();
        assert!(o.status.code().is_some_and(|c| c <= 1), "{}", String::from_utf8_lossy(&o.stderr));
        let stdout = String::from_utf8_lossy(&o.stdout).to_string();
        let found = rows(&out.join("findings.csv"));
        let today: BTreeSet<_> = found.iter().map(key).collect();
        for r in &found {
            let k = key(r);
            let (status, first) = match seen.get(&k) {
                Some(first) => ("recurring", first.clone()),
                None => ("new", date.clone()),
            };
            assert_eq!((r["status"].as_str(), r["first_seen"].as_str()), (status, first.as_str()), "{date}: {k:?}");
        }
        n_new += found.iter().filter(|r| r["status"] == "new").count();
        n_rec += found.iter().filter(|r| r["status"] == "recurring").count();
        // resolved: yesterday's and not today's
        let resolved: BTreeSet<_> = rows(&out.join("resolved.csv")).iter().map(key).collect();
        let want: BTreeSet<_> = yesterday.difference(&today).cloned().collect();
        assert_eq!(resolved, want, "{date}");
        n_res += resolved.len();
        // alerts.jsonl: exactly the new findings at or above medium
        let alerts: BTreeSet<(String, String, String, String)> = std::fs::read_to_string(out.join("alerts.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                assert_eq!(v["status"], "new");
                assert_eq!(v["alert_id"].as_str().unwrap().len(), 16);
                let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
                (s("rule"), s("operator_id"), s("subject").trim_start_matches('\'').to_string(), s("window_start"))
            })
            .collect();
        let want: BTreeSet<_> = found
            .iter()
            .filter(|r| r["status"] == "new" && ["medium", "high"].contains(&r["severity"].as_str()))
            .map(|r| {
                let (a, b, c) = key(r);
                (a, b, c.trim_start_matches('\'').to_string(), r["window_start"].clone())
            })
            .collect();
        assert_eq!(alerts, want, "{date}");
        // the summary says how many are new and resolved, and lists the new ones before the rest
        let new_here = found.iter().filter(|r| r["status"] == "new").count();
        assert!(stdout.contains(&format!("{new_here} new, ")), "{stdout}");
        let listed: Vec<&str> = stdout
            .split("new findings (first 10 of ")
            .nth(1)
            .map(|t| t.lines().skip(1).take_while(|l| l.starts_with("  ")).collect())
            .unwrap_or_default();
        let recurring_here = found.len() - new_here;
        assert_eq!(listed.len(), if recurring_here > 0 { new_here.min(10) } else { 0 }, "{stdout}");
        for l in &listed {
            assert!(found.iter().any(|r| r["status"] == "new" && l.ends_with(r["summary"].as_str())), "{l}");
        }
        let html = std::fs::read_to_string(out.join("report.html")).unwrap();
        let at = html.find("New findings first").expect("report.html lists the new findings first");
        assert!(at < html.find("Findings per rule").unwrap());
        assert!(stdout.contains(&format!("{} resolved since the previous audited day", resolved.len())), "{stdout}");
        let run: Value = serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
        assert_eq!(run["triage"]["new"], new_here as u64);
        for k in &today {
            seen.entry(k.clone()).or_insert_with(|| date.clone());
        }
        yesterday = today;
    }
    // the week held all three kinds
    assert!(n_new > 0 && n_rec > 0 && n_res > 0, "new {n_new}, recurring {n_rec}, resolved {n_res}");
}

#[test]
fn a_published_set_drops_outputs_the_run_no_longer_writes() {
    let dir = tempfile::tempdir().unwrap();
    let data = generate(dir.path(), &["--operators", "20", "--days", "2", "--no-parquet", "--no-overlap"]);
    let out = dir.path().join("out");
    let hist = dir.path().join("history");
    scan_generated(&data, &["cdr.csv"], &out).args(["--quiet", "--history", hist.to_str().unwrap()]).assert().success();
    assert!(out.join("resolved.csv").exists());
    // a file of the desk's own beside the outputs is kept
    std::fs::write(out.join("NOTES.txt"), "case 2026-118").unwrap();
    scan_generated(&data, &["cdr.csv"], &out).arg("--quiet").assert().success();
    assert!(
        !out.join("resolved.csv").exists(),
        "an output of the earlier run's options is not left beside the new set"
    );
    assert_eq!(std::fs::read_to_string(out.join("NOTES.txt")).unwrap(), "case 2026-118");
    let (code, text) = verify(&out, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("not listed NOTES.txt"), "{text}");
}

#[test]
fn cards_writes_a_manifest_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cards");
    let c = "sample_logs/cards";
    bin()
        .args(["cards", &format!("{c}/card_ledger.csv.gz"), "--sales", &format!("{c}/shop_sales.csv.gz")])
        .args(["--sms", &format!("{c}/sms_log.csv.gz"), "--joins", &format!("{c}/sms_joins.csv"), "--quiet", "--out"])
        .arg(&out)
        .assert()
        .success();
    let m: Value = serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["command"], "cards");
    let roles: BTreeSet<&str> = m["inputs"].as_array().unwrap().iter().map(|i| i["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["joins", "ledger", "sales", "sms"].into());
    let ledger = m["inputs"].as_array().unwrap().iter().find(|i| i["role"] == "ledger").unwrap();
    assert!(ledger["rows"].as_u64().unwrap() > 0);
    let (code, text) = verify(&out, &[]);
    assert_eq!(code, 0, "{text}");
    flip_byte(&out.join("suppliers.csv"), 20);
    let (code, text) = verify(&out, &[]);
    assert!(code == 1 && text.contains("suppliers.csv"), "{text}");
}
