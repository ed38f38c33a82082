//! Investigator reports: dossier snapshots, HTML escaping, redaction, spreadsheet safety.

mod common;

use assert_cmd::Command;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bin() -> Command {
    let mut c = Command::cargo_bin("diversion-audit").unwrap();
    c.current_dir(root());
    c
}

/// Scan the long-shift fixture (relative paths, so call references are stable) into `out`.
fn scan_fixture(out: &Path, extra: &[&str]) {
    bin()
        .args(["scan", "tests/data/rules/long_shift.csv", "tests/data/rules/conversion.csv"])
        .args([
            "--joins",
            "tests/data/rules/conversion_joins.csv",
            "--ip-country",
            "sample_logs/ip-country.csv",
            "--quiet",
            "--out",
        ])
        .arg(out)
        .args(extra)
        .assert()
        .success();
}

#[test]
fn dossier_markdown_and_json_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    scan_fixture(dir.path(), &[]);
    for (operator, format, name) in [
        ("hit-night-shift", "md", "dossier_hit_night_shift_md"),
        ("hit-night-shift", "json", "dossier_hit_night_shift_json"),
        ("hit-three-joins", "md", "dossier_hit_three_joins_md"),
    ] {
        let out = bin()
            .args(["report", "--operator", operator, "--format", format, "--from"])
            .arg(dir.path())
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        insta::assert_snapshot!(name, String::from_utf8(out).unwrap());
    }
    bin()
        .args(["report", "--operator", "nobody", "--from"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicates::str::contains("hit-night-shift"));
}

#[test]
fn html_escapes_input_derived_values() {
    let dir = tempfile::tempdir().unwrap();
    let evil = "<script>alert(1)</script>";
    let mut csv = String::from("operator_id,start_time,billsec,duration,caller_id,callee,src_ip\n");
    for h in 0..9 {
        csv.push_str(&format!("{evil},2026-03-02 {:02}:00:00,3500,3510,{evil},1391234567{h},36.112.0.1\n", 8 + h));
    }
    let input = dir.path().join("evil.csv");
    std::fs::write(&input, csv).unwrap();
    let out = dir.path().join("out");
    bin()
        .arg("scan")
        .arg(&input)
        .args(["--ip-country", "sample_logs/ip-country.csv", "--quiet", "--out"])
        .arg(&out)
        .assert()
        .success();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;")
            || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the operator is in the report, escaped"
    );
    assert!(!html.contains(evil), "raw markup must never reach report.html");
    assert!(!html.contains("<script"), "the report has no scripts at all");
    let single = bin()
        .args(["report", "--format", "html", "--operator", evil, "--from"])
        .arg(&out)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(!String::from_utf8(single).unwrap().contains(evil));
    // offline: no external fetches
    // the SVG namespace is the one http:// allowed: it names, it fetches nothing
    let without_ns = html.replace("http://www.w3.org/2000/svg", "");
    for needle in ["http://", "https://", "src=", "@import"] {
        assert!(!without_ns.contains(needle), "{needle}");
    }
}

#[test]
fn csv_outputs_cannot_run_formulas_and_excel_gets_a_bom() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("f.csv");
    let mut csv = String::from("operator_id,start_time,billsec,duration,caller_id,callee,src_ip\n");
    for h in 0..9 {
        csv.push_str(&format!(
            "=HYPERLINK(\"http://x\"),2026-03-02 {:02}:00:00,3500,3510,+447700900123,1391234567{h},36.112.0.1\n",
            8 + h
        ));
    }
    std::fs::write(&input, csv).unwrap();
    let out = dir.path().join("out");
    bin()
        .arg("scan")
        .arg(&input)
        .args(["--ip-country", "sample_logs/ip-country.csv", "--quiet", "--excel", "--out"])
        .arg(&out)
        .assert()
        .success();
    for f in ["findings.csv", "operators.csv", "shifts.csv"] {
        let bytes = std::fs::read(out.join(f)).unwrap();
        assert!(bytes.starts_with(&[0xEF, 0xBB, 0xBF]), "{f} has a BOM");
        let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
        let mut r = csv::ReaderBuilder::new().from_reader(text.as_bytes());
        for rec in r.records() {
            for cell in rec.unwrap().iter() {
                assert!(!cell.starts_with(['=', '+', '-', '@']), "{f}: {cell}");
            }
        }
    }
    let findings = std::fs::read_to_string(out.join("findings.csv")).unwrap();
    assert!(findings.contains("'=HYPERLINK"));
}

fn numbers_in(path: &Path, col: &str) -> Vec<String> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let i = r.headers().unwrap().iter().position(|h| h == col).unwrap();
    r.records().map(|x| x.unwrap()[i].to_string()).filter(|s| !s.is_empty()).collect()
}

#[test]
fn redaction_removes_every_callee_number_from_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::generate(dir.path(), &["--operators", "30", "--days", "2", "--seed", "9", "--no-parquet"]);
    let scan = |out: &Path| {
        common::scan_generated(&data, &["cdr.csv", "cdr_overlap.csv"], out)
            .args(["--redact", "--quiet"])
            .env("DIVERSION_AUDIT_REDACT_KEY", "case-2026-0311")
            .assert()
            .success();
    };
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    scan(&a);
    scan(&b);
    // the raw numbers, and their digits without decoration (the E.164 forms)
    let mut secrets: Vec<String> = numbers_in(&data.join("cdr.csv"), "callee");
    secrets.extend(numbers_in(&data.join("joins.csv"), "member"));
    let mut digits: Vec<String> = secrets.iter().map(|s| s.chars().filter(char::is_ascii_digit).collect()).collect();
    digits.retain(|d: &String| d.len() >= 11);
    let national: Vec<String> = digits.iter().map(|d| d[d.len() - 11..].to_string()).collect();
    secrets.extend(national);
    secrets.sort();
    secrets.dedup();
    assert!(secrets.len() > 1000);
    for entry in std::fs::read_dir(&a).unwrap() {
        let p = entry.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "{} leaks {s}", p.display());
        }
    }
    // redaction changes what is shown, never what is found: every rule finds as much as unredacted
    let plain = dir.path().join("plain");
    common::scan_generated(&data, &["cdr.csv", "cdr_overlap.csv"], &plain).arg("--quiet").assert().success();
    let per_rule = |out: &Path| {
        let mut n: std::collections::BTreeMap<String, usize> = Default::default();
        for l in std::fs::read_to_string(out.join("findings.jsonl")).unwrap().lines() {
            let f: serde_json::Value = serde_json::from_str(l).unwrap();
            *n.entry(f["rule"].as_str().unwrap().to_string()).or_default() += 1;
        }
        n
    };
    let found = per_rule(&plain);
    assert!(found.get("foreign-cli-fanout").is_some_and(|n| *n > 0), "{found:?}");
    assert_eq!(per_rule(&a), found);
    // same key, same pseudonyms: the two runs' dossiers are identical
    assert_eq!(std::fs::read(a.join("dossiers.json")).unwrap(), std::fs::read(b.join("dossiers.json")).unwrap());
    assert!(std::fs::read_to_string(a.join("conversions.csv")).unwrap().contains("R-"));
    // no key, no redaction
    bin()
        .arg("scan")
        .arg(data.join("cdr.csv"))
        .args(["--redact", "--quiet", "--out"])
        .arg(dir.path().join("c"))
        .env_remove("DIVERSION_AUDIT_REDACT_KEY")
        .assert()
        .code(2)
        .stderr(predicates::str::contains("DIVERSION_AUDIT_REDACT_KEY"));
}

#[test]
fn report_html_holds_the_top_dossiers_and_points_to_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let all = dir.path().join("all");
    scan_fixture(&all, &[]);
    let dossiers: serde_json::Value =
        serde_json::from_slice(&std::fs::read(all.join("dossiers.json")).unwrap()).unwrap();
    let total = dossiers["dossiers"].as_array().unwrap().len();
    assert!(total >= 2, "need two flagged operators, got {total}");
    let html = std::fs::read_to_string(all.join("report.html")).unwrap();
    assert_eq!(html.matches("<section class=\"dossier\"").count(), total);
    assert!(!html.contains("highest-risk operators of"));
    let one = dir.path().join("one");
    scan_fixture(&one, &["--report-dossiers", "1"]);
    let html = std::fs::read_to_string(one.join("report.html")).unwrap();
    assert_eq!(html.matches("<section class=\"dossier\"").count(), 1);
    assert!(html.contains(&format!("the 1 highest-risk operators of {total} flagged")), "no pointer to the rest");
    // the first dossier is the top of the ranking; the others are still in dossiers.json
    let top = dossiers["dossiers"][0]["operator_id"].as_str().unwrap();
    assert!(html.contains(&format!("Operator {top} — risk")), "{top}");
    assert_eq!(std::fs::read(one.join("dossiers.json")).unwrap(), std::fs::read(all.join("dossiers.json")).unwrap());
}
