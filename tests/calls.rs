//! The call model on fixtures written the way each exporter writes its rows (tests/data/calls,
//! README there): legs, calls, duplicates, direction, the seat of each leg and talk per seat.

use diversion_audit::enrich::phone::PhoneParser;
use diversion_audit::load::{self, LoadOptions, Loaded, legs::DIRECTIONS};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn path(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/calls").join(p)
}

fn load(files: &[&str]) -> Loaded {
    let phones = PhoneParser::new("CN").unwrap();
    let paths: Vec<PathBuf> = files.iter().map(|f| path(f)).collect();
    let l = load::load_cdrs(&paths, &LoadOptions::default(), &phones).unwrap();
    assert_eq!(l.rows_rejected(), 0, "{:?}", l.rejects);
    l
}

/// seat → (calls, talk seconds, directions of its calls)
fn seats(l: &Loaded) -> BTreeMap<String, (usize, i64, Vec<&'static str>)> {
    let f = &l.frame;
    let ops = f.column("operator_id").unwrap().str().unwrap().clone();
    let talk = f.column("talk_s").unwrap().i64().unwrap().clone();
    let dir = f.column("direction").unwrap().u32().unwrap().clone();
    let mut m: BTreeMap<String, (usize, i64, Vec<&'static str>)> = BTreeMap::new();
    for i in 0..f.height() {
        let e = m.entry(ops.get(i).expect("legs without a seat are not in the frame").to_string()).or_default();
        e.0 += 1;
        e.1 += talk.get(i).unwrap_or(0);
        e.2.push(DIRECTIONS[dir.get(i).unwrap() as usize]);
    }
    m
}

fn seat(calls: usize, talk: i64, dirs: &[&'static str]) -> (usize, i64, Vec<&'static str>) {
    (calls, talk, dirs.to_vec())
}

#[test]
fn asterisk_dial_to_two_destinations_and_the_h_row_are_legs_not_duplicates() {
    let l = load(&["asterisk_dial_two.csv"]);
    assert_eq!(l.duplicates(), 0, "three legs share a uniqueid; none is a re-export");
    let c = &l.calls;
    assert_eq!((c.legs, c.calls, c.calls_inbound), (3, 1, 1));
    assert_eq!(c.legs_without_operator, 1, "the h extension's row is no seat's talk");
    let s = seats(&l);
    assert_eq!(s["2001"], seat(1, 300, &["inbound"]));
    assert_eq!(s["2002"], seat(1, 0, &["inbound"]));
    assert_eq!(s.len(), 2, "the caller 13912345678 is never an operator: {s:?}");
}

#[test]
fn a_queue_call_through_local_channels_counts_the_agent_once() {
    let l = load(&["asterisk_queue_local.csv"]);
    let c = &l.calls;
    assert_eq!(l.duplicates(), 0);
    assert_eq!((c.legs, c.calls, c.calls_inbound, c.calls_outbound), (5, 2, 1, 1));
    // the trunk leg into Queue (its billsec includes the wait) and the Local;2 leg to the trunk
    assert_eq!(c.legs_without_operator, 2);
    let s = seats(&l);
    assert_eq!(s["2001"], seat(2, 325 + 300, &["inbound", "outbound"]));
    assert_eq!(s["2002"], seat(1, 0, &["inbound"]));
    assert_eq!(s.len(), 2, "{s:?}");
    // the agent's outbound leg went out through the Local channel: its trunk is the call's
    let f = &l.frame;
    let dir = f.column("direction").unwrap().u32().unwrap().clone();
    let out = (0..f.height()).find(|&i| dir.get(i) == Some(0)).unwrap();
    assert_eq!(f.column("trunk").unwrap().str().unwrap().get(out), Some("carrier"));
}

#[test]
fn one_leg_exported_twice_is_the_only_duplicate() {
    let l = load(&["asterisk_queue_local.csv", "asterisk_queue_local_again.csv"]);
    assert_eq!(l.duplicates(), 1);
    assert_eq!(l.files[1].duplicates, 1, "counted against the file it was in again");
    assert_eq!(l.rows_read() + l.duplicates(), 6, "rows in = read + rejected + duplicates");
    assert_eq!(seats(&l)["2001"], seat(2, 625, &["inbound", "outbound"]));
}

#[test]
fn grandstream_ivr_queue_agent_belongs_to_the_agent_who_answered() {
    let l = load(&["grandstream_ivr_queue.csv"]);
    assert_eq!(l.files[0].format, Some("grandstream"));
    assert_eq!(l.duplicates(), 0, "four ForkCDR rows under one Unique ID are four legs");
    let c = &l.calls;
    assert_eq!((c.legs, c.calls, c.calls_inbound), (4, 1, 1));
    assert_eq!(c.legs_without_operator, 2, "the IVR and the queue answering are no seat");
    let s = seats(&l);
    assert_eq!(s["1000"], seat(1, 240, &["inbound"]));
    assert_eq!(s["1001"], seat(1, 0, &["inbound"]));
    assert_eq!(s.len(), 2, "the caller, the IVR and the queue are no operator: {s:?}");
}

#[test]
fn freeswitch_a_and_b_legs_are_one_call_with_the_shown_caller_id() {
    let l = load(&["freeswitch_ab.csv"]);
    let c = &l.calls;
    assert_eq!((c.legs, c.calls, c.calls_outbound, c.legs_merged), (2, 1, 1, 1));
    assert_eq!(seats(&l)["1001"], seat(1, 300, &["outbound"]), "talk once, not 600 s");
    // the b-leg's caller ID is the one the callee saw
    let cli = l.frame.column("caller_id").unwrap().str().unwrap().get(0).map(str::to_string);
    assert_eq!(cli.as_deref(), Some("+447700900456"));
}

/// A generic export's `direction` column: a foreign caller calling in is not spoofing, the same
/// calls placed outbound are; without the column every row is outbound.
#[test]
fn generic_direction_column_keeps_inbound_callers_out_of_the_outbound_rules() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("call_id,operator_id,start_time,billsec,caller_id,callee,src_ip,direction\n");
    for i in 0..6 {
        let t = format!("2026-03-02 09:{:02}:00", i * 5);
        csv += &format!("in{i},agent-in,{t},120,+447700900{i:03},4001,36.112.0.1,呼入\n");
        csv += &format!("out{i},agent-out,{t},120,+447700900{i:03},1391234{i:04},36.112.0.1,outbound\n");
    }
    let p = dir.path().join("cdr.csv");
    std::fs::write(&p, csv).unwrap();
    let out = dir.path().join("out");
    assert_cmd::Command::cargo_bin("diversion-audit")
        .unwrap()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("scan")
        .arg(&p)
        .args(["--ip-country", "sample_logs/ip-country.csv", "--quiet", "--out"])
        .arg(&out)
        .assert()
        .success();
    let findings = std::fs::read_to_string(out.join("findings.jsonl")).unwrap();
    let spoofed: Vec<String> = findings
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|f| f["rule"] == "spoofed-foreign-cli")
        .map(|f| f["operator_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(spoofed, ["agent-out"]);
    let run: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!((run["calls"]["calls_inbound"].as_u64(), run["calls"]["calls_outbound"].as_u64()), (Some(6), Some(6)));
    let ops = std::fs::read_to_string(out.join("operators.csv")).unwrap();
    let header: Vec<&str> = ops.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "calls_inbound").unwrap();
    let row = ops.lines().find(|l| l.starts_with("agent-in,")).unwrap();
    assert_eq!(row.split(',').nth(col), Some("6"));
}

#[test]
fn freepbx_inbound_outbound_and_internal_belong_to_the_extension() {
    let l = load(&["freepbx_directions.csv"]);
    assert_eq!(l.files[0].format, Some("freepbx"));
    let c = &l.calls;
    assert_eq!((c.calls_inbound, c.calls_outbound, c.calls_internal, c.legs_without_operator), (1, 1, 1, 0));
    let s = seats(&l);
    assert_eq!(s["2001"], seat(3, 190 + 120 + 60, &["inbound", "outbound", "internal"]));
    assert_eq!(s.len(), 1, "the caller in cnum is no operator, nor the called colleague: {s:?}");
}

#[test]
fn vicidial_dialer_rows_have_no_seat() {
    let l = load(&["vicidial_dialer.tsv"]);
    assert_eq!(l.files[0].format, Some("vicidial"));
    assert_eq!(l.calls.legs_without_operator, 1, "VDAD is the dialer, not an agent");
    assert_eq!(seats(&l)["vdagent4"], seat(1, 180, &["outbound"]));
}
