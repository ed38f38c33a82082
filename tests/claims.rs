//! What the README promises a user, one test each where nothing else held it: UTF-16 input,
//! multi-member gzip, glob and directory inputs, `--since`/`--until`, the `--format` override, an
//! `.mmdb` IP table through `scan`, `--redact-key`, `--fail-on high`, and the column values the
//! FreePBX, Grandstream and VICIdial readers take (not only "loads without rejects").

mod common;

use common::bin;
use diversion_audit::enrich::phone::PhoneParser;
use diversion_audit::load::{self, LoadOptions, Loaded};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn json(out: &[u8]) -> serde_json::Value {
    serde_json::from_slice(out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(out)))
}

fn inspect(args: &[&std::ffi::OsStr]) -> serde_json::Value {
    let out = bin().arg("inspect").arg("--json").args(args).assert().success().get_output().stdout.clone();
    json(&out)
}

const HEADER: &str =
    "call_id,operator_id,start_time,answer_time,end_time,duration,billsec,caller_id,callee,src_ip,disposition\n";

/// `n` answered 2-minute calls of `op`, one every 5 minutes from 08:00 on 2026-03-02.
fn rows(op: &str, n: usize, cli: &str, ip: &str) -> String {
    (0..n)
        .map(|i| {
            let (h, m) = (8 + i * 5 / 60, i * 5 % 60);
            format!(
                "{op}-{i},{op},2026-03-02 {h:02}:{m:02}:00,2026-03-02 {h:02}:{m:02}:05,2026-03-02 {h:02}:{:02}:05,125,120,{cli},139{:08},{ip},ANSWERED\n",
                m + 2,
                1_000_000 + i
            )
        })
        .collect()
}

#[test]
fn utf16_le_and_be_inputs_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{HEADER}{}", rows("坐席01", 4, "+447700900123", "36.112.0.1"));
    let units: Vec<u16> = text.encode_utf16().collect();
    let le: Vec<u8> = [0xFF, 0xFE].into_iter().chain(units.iter().flat_map(|u| u.to_le_bytes())).collect();
    let be: Vec<u8> = [0xFE, 0xFF].into_iter().chain(units.iter().flat_map(|u| u.to_be_bytes())).collect();
    for (name, bytes, enc) in [("le.csv", le, "utf-16le"), ("be.csv", be, "utf-16be")] {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let v = inspect(&[p.as_os_str()]);
        let f = &v["files"][0];
        assert_eq!((f["encoding"].as_str(), f["rows_read"].as_u64()), (Some(enc), Some(4)), "{name}: {v}");
        assert_eq!(f["rows_rejected"], 0, "{name}: {v}");
        // the Chinese operator id survives the decoding
        let l = load_one(&p);
        let ops = l.frame.column("operator_id").unwrap().str().unwrap().get(0).map(str::to_string);
        assert_eq!(ops.as_deref(), Some("坐席01"), "{name}");
    }
}

fn load_one(p: &Path) -> Loaded {
    load::load_cdrs(&[p.to_path_buf()], &LoadOptions::default(), &PhoneParser::new("CN").unwrap()).unwrap()
}

#[test]
fn a_multi_member_gzip_is_read_to_its_last_member() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let member = |text: &str| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text.as_bytes()).unwrap();
        gz.finish().unwrap()
    };
    // what `cat a.gz b.gz` or a log rotated with append gives: the header in the first member only
    let mut bytes = member(&format!("{HEADER}{}", rows("op1", 3, "+447700900123", "36.112.0.1")));
    bytes.extend(member(&rows("op2", 5, "+447700900124", "36.112.0.1")));
    let p = dir.path().join("two-members.csv.gz");
    std::fs::write(&p, bytes).unwrap();
    let v = inspect(&[p.as_os_str()]);
    assert_eq!(v["files"][0]["rows_read"], 8, "{v}");
    assert_eq!(v["operators"], 2, "{v}");
}

#[test]
fn glob_and_directory_inputs_take_what_they_match() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csv = |name: &str, op: &str| {
        let p = d.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, format!("{HEADER}{}", rows(op, 2, "+447700900123", "36.112.0.1"))).unwrap();
    };
    csv("exports/2026-03-02.csv", "a");
    csv("exports/2026-03-03.csv", "b");
    csv("exports/2026-04-01.csv", "c");
    csv("exports/.partial-2026-03-04.csv", "hidden");
    csv("exports/deep/2026-03-05.csv", "d");
    std::fs::write(d.join("exports/README.md"), "not a CDR\n").unwrap();
    std::fs::write(d.join("exports/README"), "not a CDR either\n").unwrap();
    let files = |v: &serde_json::Value| -> Vec<String> {
        let mut f: Vec<String> = v["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| Path::new(f["path"].as_str().unwrap()).file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        f.sort();
        f
    };
    // a glob: the two March files, not April's
    let pattern = d.join("exports/2026-03-*.csv");
    let v = inspect(&[pattern.as_os_str()]);
    assert_eq!(files(&v), ["2026-03-02.csv", "2026-03-03.csv"], "{v}");
    // a directory: every CDR file below it, without hidden files and READMEs
    let v = inspect(&[d.join("exports").as_os_str()]);
    assert_eq!(files(&v), ["2026-03-02.csv", "2026-03-03.csv", "2026-03-05.csv", "2026-04-01.csv"], "{v}");
    assert_eq!(v["rows_rejected"], 0, "{v}");
    // a glob that matches nothing is an error that names it
    let none = d.join("exports/1999-*.csv");
    let o = bin().arg("inspect").arg(&none).assert().code(2).get_output().stderr.clone();
    assert!(String::from_utf8_lossy(&o).contains("1999-"), "{}", String::from_utf8_lossy(&o));
}

#[test]
fn since_and_until_keep_the_shifts_that_start_in_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::generate(dir.path(), &["--operators", "20", "--days", "4", "--no-parquet", "--no-overlap"]);
    let out = dir.path().join("out");
    common::scan_generated(&data, &["cdr.csv"], &out)
        .args(["--since", "2026-03-03", "--until", "2026-03-04", "--quiet"])
        .assert()
        .success();
    let run: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["days_audited"], serde_json::json!(["2026-03-03", "2026-03-04"]), "{}", run["days_audited"]);
    assert_eq!(run["days"], serde_json::json!({"since": "2026-03-03", "until": "2026-03-04"}));
    let shifts = std::fs::read_to_string(out.join("shifts.csv")).unwrap();
    let days: std::collections::BTreeSet<&str> = shifts.lines().skip(1).map(|l| l.split(',').nth(1).unwrap()).collect();
    assert_eq!(days.into_iter().collect::<Vec<_>>(), ["2026-03-03", "2026-03-04"]);
    // an open end: --since alone runs to the last day
    let out2 = dir.path().join("out2");
    common::scan_generated(&data, &["cdr.csv"], &out2).args(["--since", "2026-03-04", "--quiet"]).assert().success();
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out2.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["days_audited"], serde_json::json!(["2026-03-04", "2026-03-05"]));
    // a range after the data is an error, and nothing is written
    let out3 = dir.path().join("out3");
    let o = common::scan_generated(&data, &["cdr.csv"], &out3).args(["--since", "2027-01-01"]).assert().code(2);
    assert!(String::from_utf8_lossy(&o.get_output().stderr).contains("no shift"));
    assert!(!out3.join("run.json").exists());
}

#[test]
fn the_format_flag_overrides_detection() {
    let p = root().join("tests/data/asterisk_16.csv");
    let v = inspect(&[p.as_os_str()]);
    assert_eq!(v["files"][0]["format"], "asterisk", "{v}");
    // the same file read as a Grandstream export: its columns are not there, and it says so
    let o = bin().args(["inspect", "--json", "--format", "grandstream"]).arg(&p).assert().code(2);
    let err = String::from_utf8_lossy(&o.get_output().stderr).into_owned();
    assert!(err.contains("asterisk_16.csv"), "{err}");
    // a generic file taken for what it says
    let g = root().join("sample_logs/cdr/generic_utf8.csv");
    let v = inspect(&[std::ffi::OsStr::new("--format"), std::ffi::OsStr::new("generic"), g.as_os_str()]);
    assert_eq!((v["files"][0]["format"].as_str(), v["rows_rejected"].as_u64()), (Some("generic"), Some(0)), "{v}");
}

#[test]
fn an_mmdb_ip_table_drives_the_spoofing_rule_through_scan() {
    let dir = tempfile::tempdir().unwrap();
    // +44 caller IDs: from a Chinese address (36.96.0.0/11 in the .mmdb) and from a Philippine one
    let text = format!(
        "{HEADER}{}{}",
        rows("hit-home", 6, "+447700900123", "36.112.0.1"),
        rows("ok-abroad", 6, "+447700900124", "112.198.33.7")
    );
    let p = dir.path().join("calls.csv");
    std::fs::write(&p, text).unwrap();
    let out = dir.path().join("out");
    bin()
        .arg("scan")
        .arg(&p)
        .arg("--ip-country")
        .arg(root().join("tests/data/ip-country.mmdb"))
        .arg("--out")
        .arg(&out)
        .arg("--quiet")
        .assert()
        .success();
    let findings = std::fs::read_to_string(out.join("findings.jsonl")).unwrap();
    let spoofed: Vec<String> = findings
        .lines()
        .map(|l| json(l.as_bytes()))
        .filter(|f| f["rule"] == "spoofed-foreign-cli")
        .map(|f| f["operator_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(spoofed, ["hit-home"], "{findings}");
    let run = std::fs::read_to_string(out.join("run.json")).unwrap();
    assert!(run.contains("ip-country.mmdb") && !run.contains("no IP-country data"), "{run}");
}

#[test]
fn the_redact_key_flag_pseudonymises_and_rejected_rows_show_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let bad = root().join("tests/data/bad_rows.csv");
    let scan = |out: &Path, key_flag: bool| {
        let mut c = bin();
        c.arg("scan").arg(&bad).arg("--out").arg(out).args(["--quiet", "--redact", "--allow-rejects"]);
        if key_flag {
            c.args(["--redact-key", "a desk's secret"]);
        } else {
            c.env("DIVERSION_AUDIT_REDACT_KEY", "a desk's secret");
        }
        c.assert().success();
    };
    let (a, b) = (dir.path().join("flag"), dir.path().join("env"));
    scan(&a, true);
    scan(&b, false);
    // the flag and the environment variable are one key: the same pseudonyms
    let shifts = |d: &Path| std::fs::read_to_string(d.join("dossiers.json")).unwrap();
    assert_eq!(shifts(&a), shifts(&b));
    let rejected = std::fs::read_to_string(a.join("rejected.csv")).unwrap();
    let mut lines = rejected.lines();
    let header = lines.next().unwrap();
    let raw_at = header.split(',').position(|h| h == "raw").expect(header);
    let body: Vec<&str> = lines.collect();
    assert!(!body.is_empty());
    for l in &body {
        assert_eq!(l.rsplit(',').next(), Some("[redacted]"), "raw is column {raw_at}: {l}");
        assert!(!l.contains("13912345678"), "{l}");
    }
    // no callee number in any output
    for f in ["findings.csv", "dossiers.json", "report.html", "rejected.csv", "shifts.csv", "operators.csv"] {
        let t = std::fs::read_to_string(a.join(f)).unwrap();
        assert!(!t.contains("13912345678"), "{f}");
    }
}

#[test]
fn fail_on_high_ignores_lower_findings() {
    let dir = tempfile::tempdir().unwrap();
    // one 8.4 h shift on one day: a long-shift finding inside the quota band, scored 0.7 (medium)
    let p = root().join("tests/data/rules/long_shift.csv");
    let run = |sev: &str, out: &str| {
        let o = bin()
            .arg("scan")
            .arg(&p)
            .arg("--out")
            .arg(dir.path().join(out))
            .args(["--quiet", "--fail-on", sev])
            .output()
            .unwrap();
        o.status.code()
    };
    let findings = {
        run("info", "probe");
        std::fs::read_to_string(dir.path().join("probe/findings.jsonl")).unwrap()
    };
    let sev: Vec<String> =
        findings.lines().map(|l| json(l.as_bytes())["severity"].as_str().unwrap().to_string()).collect();
    assert!(!sev.is_empty());
    let has_high = sev.iter().any(|s| s == "high");
    assert_eq!(run("high", "high"), Some(if has_high { 1 } else { 0 }), "{sev:?}");
    assert_eq!(run("medium", "medium"), Some(1), "{sev:?}");
    // the fixture's top severity must be below high for this test to mean something
    assert!(!has_high, "the fixture gained a high finding: {sev:?}");
}

/// First row of a sample log, as the loader reads it.
fn first_row(name: &str) -> (Loaded, usize) {
    let l = load_one(&root().join("sample_logs/cdr").join(name));
    assert!(l.frame.height() > 0);
    (l, 0)
}

fn text(l: &Loaded, col: &str, i: usize) -> Option<String> {
    l.frame.column(col).unwrap().str().unwrap().get(i).map(str::to_string)
}

fn int(l: &Loaded, col: &str, i: usize) -> Option<i64> {
    l.frame.column(col).unwrap().cast(&polars::prelude::DataType::Int64).unwrap().i64().unwrap().get(i)
}

fn utc(l: &Loaded, col: &str, i: usize) -> Option<String> {
    let c = l.frame.column(col).unwrap().to_physical_repr();
    c.i64().unwrap().get(i).and_then(chrono::DateTime::from_timestamp_micros).map(|d| d.to_rfc3339())
}

fn callee(l: &Loaded, i: usize) -> Option<String> {
    l.frame.column("callee_num").unwrap().u64().unwrap().get(i).map(|n| format!("+{n}"))
}

#[test]
fn freepbx_columns_map_to_the_canonical_fields() {
    // 2026-03-02 12:00:00,"Agent 2001" <2001>,2001,13957189676,from-internal,PJSIP/2001-…,…,209,200,
    // ANSWERED,3,(accountcode empty),1772420400.0,,,2001 (cnum),Agent 2001,+441112345678 (outbound_cnum)
    let (l, i) = first_row("freepbx_cdr.csv");
    assert_eq!(text(&l, "operator_id", i).as_deref(), Some("2001"), "accountcode empty: the calling channel's seat");
    assert_eq!(text(&l, "caller_id", i).as_deref(), Some("+441112345678"), "outbound_cnum is the caller ID shown");
    assert_eq!(callee(&l, i).as_deref(), Some("+8613957189676"));
    assert_eq!((int(&l, "duration_s", i), int(&l, "talk_s", i)), (Some(209), Some(200)));
    assert_eq!(utc(&l, "start_time", i).as_deref(), Some("2026-03-02T04:00:00+00:00"), "Asia/Shanghai wall time");
    assert_eq!(text(&l, "leg_id", i).as_deref(), Some("1772420400.0"));
}

#[test]
fn grandstream_columns_map_to_the_canonical_fields() {
    // 3001,3001,15897216050,from-internal,"Desk" <+63281234567>,…,2026-03-02 13:00:00,
    // 2026-03-02 13:00:08,2026-03-02 13:05:28,328,320,ANSWERED,…,1772424000.0,,,trunk1
    let (l, i) = first_row("grandstream_cdr.csv");
    assert_eq!(text(&l, "operator_id", i).as_deref(), Some("3001"));
    assert_eq!(text(&l, "caller_id", i).as_deref(), Some("+63281234567"), "the number inside \"Desk\" <…>");
    assert_eq!(callee(&l, i).as_deref(), Some("+8615897216050"));
    assert_eq!((int(&l, "duration_s", i), int(&l, "talk_s", i)), (Some(328), Some(320)));
    assert_eq!(utc(&l, "answer_time", i).as_deref(), Some("2026-03-02T05:00:08+00:00"));
    assert_eq!(utc(&l, "end_time", i).as_deref(), Some("2026-03-02T05:05:28+00:00"));
}

#[test]
fn vicidial_columns_map_to_the_canonical_fields() {
    // 1772427600.0 5000 101 GAMESUP 2026-03-02 13:00:00 1772427600 1772427860 260 SALE 86
    // 15896522856 vdagent4 … +16465550150 (outbound_cid)
    let (l, i) = first_row("vicidial_log.tsv");
    assert_eq!(text(&l, "operator_id", i).as_deref(), Some("vdagent4"));
    assert_eq!(callee(&l, i).as_deref(), Some("+8615896522856"), "+ phone_code + phone_number");
    assert_eq!(text(&l, "caller_id", i).as_deref(), Some("+16465550150"));
    assert_eq!(utc(&l, "start_time", i).as_deref(), Some("2026-03-02T05:00:00+00:00"), "start_epoch");
    assert_eq!(int(&l, "talk_s", i), Some(260));
    assert_eq!(text(&l, "campaign", i).as_deref(), Some("GAMESUP"));
    // the second row: status NA, no talk, not answered
    assert_eq!(int(&l, "talk_s", 1), Some(0));
}
