//! Each rule on a tiny hand-written fixture (tests/data/rules, rebuilt by make_fixtures.py):
//! operators named `hit-*` must be flagged, `ok-*` must not.

use diversion_audit::config::Config;
use diversion_audit::enrich::{self, ip::IpCountry, phone::PhoneParser};
use diversion_audit::load::{self, LoadOptions, Partition};
use diversion_audit::pipeline::{history, prepare_options};
use diversion_audit::rules::{self, AuditInput, DayFact, Finding, RuleOutput};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn path(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn input(cdr: &str, joins: Option<&str>, cfg: &Config) -> AuditInput {
    part(&[path(cdr)], joins, cfg, None)
}

/// The rows of `part` (None: all) of these CDR files, prepared as a scan prepares them.
fn part(cdr: &[PathBuf], joins: Option<&str>, cfg: &Config, part: Option<Partition>) -> AuditInput {
    let phones = PhoneParser::new("CN").unwrap();
    let opts = LoadOptions { partition: part, ..LoadOptions::default() };
    let loaded = load::load_cdrs(cdr, &opts, &phones).unwrap();
    assert_eq!(loaded.rows_rejected(), 0, "{:?}", loaded.rejects);
    let ips = IpCountry::open(&path("sample_logs/ip-country.csv")).unwrap();
    let frame = enrich::cdr_ip_country(loaded.frame, Some(&ips), None).unwrap();
    let joins = joins.map(|j| load::load_joins(&[path(j)], &LoadOptions::default(), &phones).unwrap().frame);
    AuditInput::prepare(frame, joins, &prepare_options(cfg, &phones).unwrap()).unwrap()
}

/// A day rule over one whole input (a scan of one partition).
fn run(rule: &str, input: &AuditInput, cfg: &Config) -> RuleOutput {
    let mut p = rules::find_day(rule).unwrap().partials(&cfg.rules, 1);
    p.add(input).unwrap();
    p.finish().unwrap()
}

fn flagged(rule: &str, input: &AuditInput, cfg: &Config) -> BTreeSet<String> {
    let out = run(rule, input, cfg);
    out.findings.iter().filter_map(|f| f.operator_id.clone()).collect()
}

fn operators(input: &AuditInput, prefix: &str) -> BTreeSet<String> {
    let c = input.cdr.column("operator_id").unwrap().str().unwrap().clone();
    c.iter().flatten().filter(|o| o.starts_with(prefix)).map(str::to_string).collect()
}

#[test]
fn long_shift_hits_and_near_misses() {
    let cfg = Config::default();
    let inp = input("tests/data/rules/long_shift.csv", None, &cfg);
    assert_eq!(flagged("long-shift", &inp, &cfg), operators(&inp, "hit-"));
    // the night shift is one shift across midnight; the 2 h 1 min break makes two shifts
    let shifts = &inp.shifts;
    let ops = shifts.column("operator_id").unwrap().str().unwrap().clone();
    let count = |name: &str| ops.iter().filter(|o| *o == Some(name)).count();
    assert_eq!(count("hit-night-shift"), 1);
    assert_eq!(count("ok-split-2h01m"), 2);
    assert_eq!(count("hit-gap-2h00m"), 1);
    // a lower threshold catches the 7.9 h operator: the fixture really is a near miss
    let mut low = Config::default();
    low.rules.long_shift.min_talk_hours = 7.8;
    assert!(flagged("long-shift", &inp, &low).contains("ok-7h54m-talk"));
}

#[test]
fn cli_rotation_hits_and_near_misses() {
    let cfg = Config::default();
    let inp = input("tests/data/rules/cli_rotation.csv", None, &cfg);
    assert_eq!(flagged("cli-rotation", &inp, &cfg), operators(&inp, "hit-"));
    let out = run("cli-rotation", &inp, &cfg);
    let f = &out.findings[0];
    assert_eq!(f.evidence["distinct_clis"], 8, "{}", f.evidence);
    assert!(f.summary.contains("8 caller IDs over 30 outbound calls"), "{}", f.summary);
    // the near misses are near: looser thresholds catch them
    let mut low = Config::default();
    low.rules.cli_rotation.min_distinct = 4;
    assert!(flagged("cli-rotation", &inp, &low).contains("ok-four-numbers"));
    low.rules.cli_rotation.min_change_share = 0.1;
    assert!(flagged("cli-rotation", &inp, &low).contains("ok-six-in-blocks"));
    low.rules.cli_rotation.min_calls = 19;
    assert!(flagged("cli-rotation", &inp, &low).contains("ok-19-calls"));
    assert!(!flagged("cli-rotation", &inp, &low).contains("ok-company-number"));
}

#[test]
fn long_shift_finding_reads_aloud_and_cites_calls() {
    let cfg = Config::default();
    let inp = input("tests/data/rules/long_shift.csv", None, &cfg);
    let out = run("long-shift", &inp, &cfg);
    let f = out.findings.iter().find(|f| f.operator_id.as_deref() == Some("hit-night-shift")).unwrap();
    assert!(f.summary.contains("9.0 h") && f.summary.contains("2026-03-02 20:00"), "{}", f.summary);
    assert_eq!(f.evidence["calls"], 9);
    assert_eq!(f.evidence["calls_ref"].as_array().unwrap().len(), 9);
    assert_eq!(f.evidence["in_quota_band"], true);
}

#[test]
fn shared_seat_hits_and_near_misses() {
    let cfg = Config::default();
    let inp = input("tests/data/rules/shared_seat.csv", None, &cfg);
    assert_eq!(flagged("shared-seat", &inp, &cfg), operators(&inp, "hit-"));
    let out = run("shared-seat", &inp, &cfg);
    let f = out.findings.iter().find(|f| f.operator_id.as_deref() == Some("hit-shared-8001")).unwrap();
    assert_eq!(f.evidence["peak_concurrent"], 4, "{}", f.evidence);
    assert!(f.summary.contains("up to 4 answered calls at once"), "{}", f.summary);
    assert!(!f.evidence["overlapping_calls_ref"].as_array().unwrap().is_empty());
    // the seat's 10 h of summed talk is about 3 h of wall clock: long-shift judges the union
    let sh = &inp.shifts;
    let ops = sh.column("operator_id").unwrap().str().unwrap().clone();
    let i = ops.iter().position(|o| o == Some("hit-shared-8001")).unwrap();
    let get =
        |c: &str| sh.column(c).unwrap().cast(&polars::prelude::DataType::Int64).unwrap().i64().unwrap().get(i).unwrap();
    assert_eq!(get("talk_sum_s"), 4 * 15 * 600);
    assert!(get("talk_s") < 4 * 3600 && get("talk_s") > 2 * 3600, "union {}", get("talk_s"));
    assert!(!flagged("long-shift", &inp, &cfg).contains("hit-shared-8001"));
    // the near misses measured what they should: a little overlap, and none while ringing
    let j = ops.iter().position(|o| o == Some("ok-transfer-blips")).unwrap();
    let conc = sh.column("concurrent_s").unwrap().i64().unwrap().get(j).unwrap();
    assert!(conc > 0 && conc < 15 * 60, "transfer overlap {conc} s");
    let k = ops.iter().position(|o| o == Some("ok-dialer-ringing")).unwrap();
    assert_eq!(sh.column("peak_concurrent").unwrap().u32().unwrap().get(k), Some(1));
    // a lower threshold catches the transfers: the fixture really is a near miss
    let mut low = Config::default();
    low.rules.shared_seat.min_concurrent_minutes = 1.0;
    assert!(flagged("shared-seat", &inp, &low).contains("ok-transfer-blips"));
}

#[test]
fn spoofed_foreign_cli_needs_home_origin() {
    let cfg = Config::default();
    let inp = input("tests/data/rules/spoofed.csv", None, &cfg);
    let got = flagged("spoofed-foreign-cli", &inp, &cfg);
    assert_eq!(got, BTreeSet::from(["hit-0044-cli-ipv6-home".to_string()]));
    // declaring the campaign domestic adds the operator that had no IP (prepared with that config:
    // `prepare` keeps the campaign column only when some campaign is declared)
    let mut dom = Config::default();
    dom.rules.spoofed_foreign_cli.domestic_campaigns = vec!["edu-refund-01".into()];
    let inp_dom = input("tests/data/rules/spoofed.csv", None, &dom);
    assert_eq!(flagged("spoofed-foreign-cli", &inp_dom, &dom), operators(&inp, "hit-"));
}

#[test]
fn spoofed_foreign_cli_without_ip_data_says_so() {
    let cfg = Config::default();
    let phones = PhoneParser::new("CN").unwrap();
    let loaded = load::load_cdrs(&[path("tests/data/rules/spoofed.csv")], &LoadOptions::default(), &phones).unwrap();
    let frame = enrich::cdr_ip_country(loaded.frame, None, None).unwrap();
    let inp = AuditInput::prepare(frame, None, &prepare_options(&cfg, &phones).unwrap()).unwrap();
    let out = run("spoofed-foreign-cli", &inp, &cfg);
    assert!(out.findings.is_empty());
    assert!(out.notes[0].contains("no IP-country data"), "{:?}", out.notes);
}

#[test]
fn fanout_names_every_operator_of_the_cli() {
    let mut cfg = Config::default();
    cfg.rules.foreign_cli_fanout.fanout_min_callees = 3;
    let inp = input("tests/data/rules/fanout.csv", None, &cfg);
    let out = run("foreign-cli-fanout", &inp, &cfg);
    assert_eq!(out.findings.len(), 1);
    let f = &out.findings[0];
    assert_eq!(f.subject.as_deref(), Some("+447700900999"));
    assert_eq!(f.evidence["operators"], serde_json::json!(["fan-a", "fan-b"]));
    assert_eq!(f.evidence["distinct_callees"], 3);
    // the call references are the earliest calls, whoever made them (operators are sorted first)
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("fan_order.csv");
    std::fs::write(
        &p,
        "call_id,operator_id,start_time,end_time,duration,billsec,caller_id,callee,src_ip\n\
         late,a-op,2026-03-02 11:00:00,2026-03-02 11:01:00,60,50,+447700900999,13900000001,36.112.0.1\n\
         early,z-op,2026-03-02 09:00:00,2026-03-02 09:01:00,60,50,+447700900999,13900000002,36.112.0.1\n\
         middle,m-op,2026-03-02 10:00:00,2026-03-02 10:01:00,60,50,+447700900999,13900000003,36.112.0.1\n",
    )
    .unwrap();
    let inp = input(p.to_str().unwrap(), None, &cfg);
    let out = run("foreign-cli-fanout", &inp, &cfg);
    assert_eq!(out.findings[0].evidence["calls_ref"], serde_json::json!(["early", "middle", "late"]));
    assert_eq!(out.findings[0].evidence["operators"], serde_json::json!(["a-op", "m-op", "z-op"]));
}

/// One number written three ways is one caller ID; its calls are counted per local day; many calls to
/// one callee are one callee.
#[test]
fn fanout_groups_a_number_however_written_and_per_day() {
    let mut cfg = Config::default();
    cfg.rules.foreign_cli_fanout.fanout_min_callees = 3;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("fan_days.csv");
    let row = |id: &str, op: &str, t: &str, cli: &str, callee: &str| {
        format!("{id},{op},2026-03-{t},2026-03-{t},60,50,{cli},{callee},36.112.0.1\n")
    };
    let mut csv = String::from("call_id,operator_id,start_time,end_time,duration,billsec,caller_id,callee,src_ip\n");
    // day 1: three callees through three spellings of +447700900777, by two operators
    csv += &row("d1a", "x-op", "02 09:00:00", "+447700900777", "13900000001");
    csv += &row("d1b", "y-op", "02 09:10:00", "0044 7700 900777", "13900000002");
    csv += &row("d1c", "x-op", "02 09:20:00", "+44 7700 900777", "13900000003");
    // day 2: the same number reaches two callees only
    csv += &row("d2a", "x-op", "03 09:00:00", "+447700900777", "13900000001");
    csv += &row("d2b", "x-op", "03 09:10:00", "+447700900777", "13900000004");
    // another number: three calls, one callee
    for (k, t) in ["02 10:00:00", "02 10:10:00", "02 10:20:00"].iter().enumerate() {
        csv += &row(&format!("o{k}"), "z-op", t, "+447700900666", "13900000009");
    }
    std::fs::write(&p, csv).unwrap();
    let inp = input(p.to_str().unwrap(), None, &cfg);
    let out = run("foreign-cli-fanout", &inp, &cfg);
    assert_eq!(out.findings.len(), 1, "{:?}", out.findings.iter().map(|f| &f.summary).collect::<Vec<_>>());
    let f = &out.findings[0];
    assert_eq!(f.subject.as_deref(), Some("+447700900777"));
    assert_eq!(f.evidence["day"], "2026-03-02");
    assert_eq!(f.evidence["distinct_callees"], 3);
    assert_eq!(f.evidence["calls"], 3);
    assert_eq!(f.evidence["operators"], serde_json::json!(["x-op", "y-op"]));
    assert_eq!(f.evidence["calls_ref"], serde_json::json!(["d1a", "d1b", "d1c"]));
    // at two callees a day the second day passes too, and the one-callee number still does not
    cfg.rules.foreign_cli_fanout.fanout_min_callees = 2;
    let out = run("foreign-cli-fanout", &inp, &cfg);
    let days: Vec<_> = out.findings.iter().map(|f| (f.evidence["day"].clone(), f.evidence["calls"].clone())).collect();
    assert_eq!(
        days,
        vec![
            (serde_json::json!("2026-03-02"), serde_json::json!(3)),
            (serde_json::json!("2026-03-03"), serde_json::json!(2))
        ]
    );
}

#[test]
fn conversions_window_threshold_and_answered_only() {
    let cfg = Config::default();
    let inp = input("tests/data/rules/conversion.csv", Some("tests/data/rules/conversion_joins.csv"), &cfg);
    assert_eq!(flagged("group-invite-conversion", &inp, &cfg), operators(&inp, "hit-"));
    // a 61-minute window would count the late joins: the fixture sits just outside the default
    let mut wide = Config::default();
    wide.rules.group_invite_conversion.conversion_window_minutes = 62;
    assert!(flagged("group-invite-conversion", &inp, &wide).contains("ok-joins-61min-later"));
    let out = run("group-invite-conversion", &inp, &cfg);
    let f = &out.findings[0];
    assert_eq!(f.evidence["converted_callees"], 3);
    assert_eq!(f.evidence["answered_callees"], 10);
    assert!((f.evidence["median_minutes_to_join"].as_f64().unwrap() - 10.0).abs() < 0.01);
}

#[test]
fn every_rule_is_documented_and_listed_once() {
    let ids: BTreeSet<&str> = rules::docs().map(|r| r.id()).collect();
    assert_eq!(ids.len(), rules::REGISTRY.len());
    for r in rules::docs() {
        let doc = r.explain();
        assert!(doc.starts_with(r.id()), "{}", r.id());
        for section in ["## What it does", "## Why it matters", "## Example"] {
            assert!(doc.contains(section), "{} lacks {section}", r.id());
        }
    }
}

/// Findings as comparable text, in one order.
fn texts(findings: &[Finding]) -> Vec<String> {
    let mut v: Vec<String> = findings.iter().map(|f| serde_json::to_string(f).unwrap()).collect();
    v.sort();
    v
}

/// Every registered rule over every rule fixture, whole and in 3 operator partitions: the same
/// findings, and each rule finds something (so the comparison means something). The cross-day
/// rules read the day profiles the day rules' findings and facts make, whole and partitioned.
#[test]
fn every_rule_gives_the_same_findings_whole_and_in_three_partitions() {
    let mut cfg = Config::default();
    cfg.rules.foreign_cli_fanout.fanout_min_callees = 3;
    cfg.rules.long_shift_streak.min_days = 1;
    cfg.rules.repeat_spoofer.min_days = 1;
    let files: Vec<PathBuf> = ["long_shift", "spoofed", "fanout", "conversion", "shared_seat", "cli_rotation"]
        .iter()
        .map(|f| path(&format!("tests/data/rules/{f}.csv")))
        .collect();
    let joins = Some("tests/data/rules/conversion_joins.csv");
    let whole = part(&files, joins, &cfg, None);
    let parts: Vec<AuditInput> =
        (0..3).map(|index| part(&files, joins, &cfg, Some(Partition { index, of: 3 }))).collect();
    assert!(parts.iter().all(|p| p.cdr.height() > 0), "every partition holds some operators");
    assert_eq!(parts.iter().map(|p| p.cdr.height()).sum::<usize>(), whole.cdr.height());
    let (mut all_whole, mut all_parts) = (Vec::new(), Vec::new());
    let mut facts_whole: Vec<(String, DayFact)> = Vec::new();
    let mut facts_parts: Vec<(String, DayFact)> = Vec::new();
    for r in rules::day_rules() {
        let mut one = r.partials(&cfg.rules, 1);
        one.add(&whole).unwrap();
        let a = one.finish().unwrap();
        let mut three = r.partials(&cfg.rules, 3);
        for p in &parts {
            three.add(p).unwrap();
        }
        let b = three.finish().unwrap();
        assert!(!a.findings.is_empty(), "{}: the fixtures must hold a finding", r.id());
        assert_eq!(texts(&a.findings), texts(&b.findings), "{}", r.id());
        let mut fa = a.facts.clone();
        let mut fb = b.facts.clone();
        fa.sort_by(|x, y| format!("{x:?}").cmp(&format!("{y:?}")));
        fb.sort_by(|x, y| format!("{x:?}").cmp(&format!("{y:?}")));
        assert_eq!(fa, fb, "{}: day facts", r.id());
        all_whole.extend(a.findings);
        all_parts.extend(b.findings);
        facts_whole.extend(a.facts);
        facts_parts.extend(b.facts);
    }
    // the day profiles, and the cross-day rules over them
    let shifts = |inputs: &[&AuditInput]| {
        let lfs: Vec<_> = inputs.iter().map(|i| polars::prelude::IntoLazy::lazy(i.shifts.clone())).collect();
        polars::prelude::concat(lfs, Default::default()).unwrap().collect().unwrap()
    };
    let pw = history::from_run(&shifts(&[&whole]), &all_whole, &facts_whole).unwrap();
    let pp = history::from_run(&shifts(&parts.iter().collect::<Vec<_>>()), &all_parts, &facts_parts).unwrap();
    assert_eq!(pw, pp);
    assert!(
        pw.iter().any(|p| p.long_shift)
            && pw.iter().any(|p| p.spoofed_calls > 0)
            && pw.iter().any(|p| p.conversions > 0)
    );
    let as_of = pw.iter().map(|p| p.date).max().unwrap();
    let days = |profiles| rules::DayHistory { profiles, as_of, history_days: Default::default(), tz: whole.tz };
    let (dw, dp) = (days(pw.clone()), days(pp));
    for r in rules::cross_day_rules() {
        let (a, b) = (r.run(&dw, &cfg.rules).unwrap(), r.run(&dp, &cfg.rules).unwrap());
        assert!(!a.findings.is_empty(), "{}: the fixtures must hold a finding", r.id());
        assert_eq!(texts(&a.findings), texts(&b.findings), "{}", r.id());
    }
}
