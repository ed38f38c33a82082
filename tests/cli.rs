//! Whole-program runs of the binary.

use assert_cmd::Command;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bin() -> Command {
    Command::cargo_bin("diversion-audit").unwrap()
}

fn json(out: &[u8]) -> serde_json::Value {
    serde_json::from_slice(out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(out)))
}

#[test]
fn inspect_json_on_each_sample_log() {
    for entry in std::fs::read_dir(root().join("sample_logs/cdr")).unwrap() {
        let p = entry.unwrap().path();
        let out = bin().arg("inspect").arg(&p).arg("--json").assert().success().get_output().stdout.clone();
        let v = json(&out);
        let f = &v["files"][0];
        assert!(f["format"].is_string(), "{}: {v}", p.display());
        assert_eq!(f["rows_rejected"], 0, "{}: {v}", p.display());
        assert_eq!(v["rows_rejected"], 0);
        // (the SIP sample pairs its seven transactions into two calls)
        assert!(v["rows_read"].as_u64().unwrap() >= 2, "{}: {v}", p.display());
    }
}

#[test]
fn inspect_whole_sample_directory_with_joins_and_ip_table() {
    let s = root().join("sample_logs");
    let out = bin()
        .args(["inspect", "--json", "--joins"])
        .arg(s.join("joins"))
        .arg("--ip-country")
        .arg(s.join("ip-country.csv"))
        .arg(s.join("cdr"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert_eq!(v["files"].as_array().unwrap().len(), 17);
    assert!(v["operators"].as_u64().unwrap() >= 8);
    // the multi-leg samples: legs that are no seat's talk are counted, and calls are fewer than legs
    let c = &v["calls"];
    assert_eq!(c["legs_without_operator"], 4, "{c}");
    // Asterisk and Grandstream queue calls 2, CUCM 1, 3CX 2, the dump 1, the carrier 话单 3
    assert_eq!(c["calls_inbound"], 9, "{c}");
    assert_eq!(c["subscriber_records"], 4, "{c}");
    assert!(c["calls"].as_u64().unwrap() < c["legs"].as_u64().unwrap(), "{c}");
    assert!(v["foreign_clis"].as_u64().unwrap() >= 5);
    assert!(v["invalid_foreign_clis"].as_u64().unwrap() >= 1);
    let ipc = &v["ip_countries"];
    assert!(ipc["CN"].as_u64().unwrap() > 0 && ipc["PH"].as_u64().unwrap() > 0, "{ipc}");
    assert!(v["joins"]["rows_read"].as_u64().unwrap() > 7);
    assert_eq!(v["joins"]["files"].as_array().unwrap().len(), 2);
    assert_eq!(v["joins"]["rows_rejected"], 0);
}

#[test]
fn rejected_csv_holds_exactly_the_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let rej = dir.path().join("rejected.csv");
    // 6 of its 9 rows rejected: an error naming the file, the format, the top reason and a line
    bin()
        .arg("inspect")
        .arg(root().join("tests/data/bad_rows.csv"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("bad_rows.csv: 6 of 9 rows rejected (67 %) reading it as generic"))
        .stderr(predicates::str::contains("--allow-rejects"));
    bin()
        .arg("inspect")
        .arg(root().join("tests/data/bad_rows.csv"))
        .arg("--allow-rejects")
        .arg("--rejected")
        .arg(&rej)
        .assert()
        .success()
        .stdout(predicates::str::contains("rejected 6"));
    let mut r = csv::Reader::from_path(&rej).unwrap();
    assert_eq!(r.headers().unwrap(), vec!["file", "line", "reason", "raw"]);
    let rows: Vec<(String, String)> =
        r.records().map(|x| x.unwrap()).map(|x| (x[1].to_string(), x[2].to_string())).collect();
    let lines: Vec<&str> = rows.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(lines, ["3", "4", "5", "6", "7", "10"]);
    // --strict turns them into an error naming the first one
    bin()
        .arg("inspect")
        .arg(root().join("tests/data/bad_rows.csv"))
        .args(["--strict", "--allow-rejects"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("bad_rows.csv:3: missing operator_id"));
}

/// A file read in the wrong format (forced here; misdetection ends the same way) is not a quiet
/// day: the scan stops, exit 2, naming the file, the format and the reason.
#[test]
fn a_file_read_in_the_wrong_format_stops_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    bin()
        .args(["scan", "sample_logs/cdr/generic_utf8.csv", "--format", "asterisk", "--quiet", "--out"])
        .arg(dir.path().join("out"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("generic_utf8.csv: 8 of 8 rows rejected (100 %) reading it as asterisk"))
        .stderr(predicates::str::contains("too few columns"));
    assert!(!dir.path().join("out/run.json").exists(), "nothing published");
}

#[test]
fn errors_name_the_file_and_exit_2() {
    bin()
        .args(["inspect", "/nonexistent/cdr-*.csv"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("/nonexistent/cdr-*.csv"));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("garbage.csv");
    std::fs::write(&p, b"\x00\x01\x02garbage\nmore,garbage\n").unwrap();
    bin().arg("inspect").arg(&p).assert().code(2).stderr(predicates::str::contains("garbage.csv"));
    let help = bin().arg("--help").assert().success().get_output().stdout.clone();
    assert!(String::from_utf8_lossy(&help).contains("Exit codes"));
}

#[test]
fn generate_writes_every_file_and_inspect_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    bin().args(["generate", "--operators", "20", "--days", "2", "--seed", "5", "--out"]).arg(out).assert().success();
    for f in ["cdr.csv", "cdr.parquet", "cdr_overlap.csv", "joins.csv", "ip-country.csv", "truth.json"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("truth.json")).unwrap()).unwrap();
    assert_eq!(truth["operators"].as_array().unwrap().len(), 20);
    let v = json(
        &bin()
            .args(["inspect", "--json"])
            .arg(out.join("cdr.csv"))
            .arg(out.join("cdr_overlap.csv"))
            .assert()
            .success()
            .get_output()
            .stdout,
    );
    let overlap_lines = v["files"][1]["lines_in"].as_u64().unwrap();
    assert!(overlap_lines > 0);
    assert_eq!(v["files"][1]["duplicates"].as_u64().unwrap(), overlap_lines, "every overlapping row is a duplicate");
    assert_eq!(v["rows_rejected"], 0);
    assert_eq!(v["operators"], 20);
    // the Parquet copy holds the same calls
    let p =
        json(&bin().args(["inspect", "--json"]).arg(out.join("cdr.parquet")).assert().success().get_output().stdout);
    assert_eq!(p["rows_read"], v["files"][0]["rows_read"]);
    // same seed, same bytes
    let again = tempfile::tempdir().unwrap();
    bin()
        .args(["generate", "--operators", "20", "--days", "2", "--seed", "5", "--out"])
        .arg(again.path())
        .assert()
        .success();
    assert_eq!(std::fs::read(out.join("cdr.csv")).unwrap(), std::fs::read(again.path().join("cdr.csv")).unwrap());
}

#[test]
fn completions_and_man_pages_come_from_the_clap_definitions() {
    for (shell, marker) in
        [("bash", "_diversion__audit()"), ("zsh", "#compdef diversion-audit"), ("fish", "complete -c diversion-audit")]
    {
        let a = bin().args(["completions", shell]).assert().success();
        let text = String::from_utf8_lossy(&a.get_output().stdout).to_string();
        assert!(text.contains(marker), "{shell}");
        // every command and a flag of a recent one are completed
        for word in ["scan", "cards", "normalize", "supplier", "card-rows"] {
            assert!(text.contains(word), "{shell}: {word}");
        }
    }
    bin().args(["completions", "cmd.exe"]).assert().code(2);
    let a = bin().arg("man").assert().success();
    let page = String::from_utf8_lossy(&a.get_output().stdout).to_string();
    assert!(page.contains(".TH diversion-audit 1") && page.contains("cards"), "{}", &page[..200.min(page.len())]);
    let dir = tempfile::tempdir().unwrap();
    bin().args(["man", "--out"]).arg(dir.path()).assert().success();
    let scan = std::fs::read_to_string(dir.path().join("diversion-audit-scan.1")).unwrap();
    assert!(scan.contains(".TH diversion-audit-scan 1") && scan.contains("partitions"), "{scan}");
    let n = std::fs::read_dir(dir.path()).unwrap().count();
    assert!(n >= 12, "{n} pages");
}
