//! The exports of issue 23 on fixtures written the way each system writes its rows
//! (tests/data/formats, README there): CUCM, 3CX, Kamailio/OpenSIPS accounting, SQL dumps, a SIP
//! transaction CSV and a carrier's 话单. Each asserts legs, calls, direction, operator, UTC times,
//! origins and talk, and the records that are no calls.

mod common;

use diversion_audit::enrich::phone::PhoneParser;
use diversion_audit::load::{self, LoadOptions, Loaded, legs::DIRECTIONS};
use std::path::{Path, PathBuf};

fn path(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/formats").join(p)
}

fn load(file: &str) -> Loaded {
    let phones = PhoneParser::new("CN").unwrap();
    let l = load::load_cdrs(&[path(file)], &LoadOptions::default(), &phones).unwrap();
    assert_eq!(l.rows_rejected(), 0, "{file}: {:?}", l.rejects);
    assert!(l.files[0].error.is_none(), "{:?}", l.files[0]);
    l
}

/// One call as the tests read it.
#[derive(Debug, PartialEq)]
struct Call {
    operator: Option<String>,
    direction: &'static str,
    start: String,
    answered_at: Option<String>,
    talk: i64,
    caller: Option<String>,
    callee: Option<String>,
    src_ip: Option<String>,
}

fn utc(us: Option<i64>) -> Option<String> {
    us.and_then(chrono::DateTime::from_timestamp_micros).map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// The loaded calls in start order.
fn calls(l: &Loaded) -> Vec<Call> {
    let f = l.frame.sort(["start_time"], Default::default()).unwrap();
    let s = |n: &str| f.column(n).unwrap().str().unwrap().clone();
    let us = |n: &str| f.column(n).unwrap().to_physical_repr().i64().unwrap().clone();
    let (ops, caller, callee, ip) = (s("operator_id"), s("caller_id"), s("callee"), s("src_ip"));
    let (start, answer) = (us("start_time"), us("answer_time"));
    let talk = f.column("talk_s").unwrap().i64().unwrap().clone();
    let dir = f.column("direction").unwrap().u32().unwrap().clone();
    (0..f.height())
        .map(|i| Call {
            operator: ops.get(i).map(str::to_string),
            direction: DIRECTIONS[dir.get(i).unwrap() as usize],
            start: utc(start.get(i)).unwrap(),
            answered_at: utc(answer.get(i)),
            talk: talk.get(i).unwrap_or(0),
            caller: caller.get(i).map(str::to_string),
            callee: callee.get(i).map(str::to_string),
            src_ip: ip.get(i).map(str::to_string),
        })
        .collect()
}

fn not_calls(l: &Loaded, why: &str) -> u64 {
    l.files[0].not_calls.iter().filter(|(k, _)| k.contains(why)).map(|(_, v)| *v).sum()
}

/// The three CUCM calls: 3101 out to the PSTN through the trunk showing a UK caller ID, a missed
/// inbound call to 3102 (`dateTimeConnect` 0: never answered), 3101 calling 3102.
fn assert_cucm(l: &Loaded, origin: &str) {
    let c = calls(l);
    assert_eq!((l.calls.legs, l.calls.calls), (3, 3));
    assert_eq!((l.calls.calls_outbound, l.calls.calls_inbound, l.calls.calls_internal), (1, 1, 1));
    assert_eq!(l.files[0].format, Some("cucm"));
    let out = &c[0];
    assert_eq!((out.operator.as_deref(), out.direction), (Some("3101"), "outbound"));
    assert_eq!(out.start, "2026-03-02T08:01:00Z", "epoch seconds are UTC whatever --tz says");
    assert_eq!(out.answered_at.as_deref(), Some("2026-03-02T08:01:05Z"));
    assert_eq!(out.talk, 120);
    assert_eq!(out.caller.as_deref(), Some("+442079460000"), "the outpulsed calling number is the CLI shown");
    assert_eq!(out.callee.as_deref(), Some("+8613812345678"));
    assert_eq!(out.src_ip.as_deref(), Some(origin));
    let inb = &c[1];
    assert_eq!((inb.operator.as_deref(), inb.direction), (Some("3102"), "inbound"));
    assert_eq!((inb.answered_at.as_deref(), inb.talk), (None, 0), "0 is never");
    assert_eq!(inb.src_ip.as_deref(), Some("192.168.1.21"), "352430272 is 0x1501A8C0, bytes reversed");
    let int = &c[2];
    assert_eq!((int.operator.as_deref(), int.direction, int.talk), (Some("3101"), "internal", 60));
}

#[test]
fn cucm_129_columns_with_header_and_type_row() {
    let l = load("cucm_129_header_types.csv");
    assert_cucm(&l, "192.168.18.188");
    assert_eq!(not_calls(&l, "type row"), 1, "{:?}", l.files[0].not_calls);
    assert_eq!(l.files[0].lines_in, 3);
}

#[test]
fn cucm_123_columns_with_header_only() {
    let l = load("cucm_123_header.csv");
    assert_cucm(&l, "192.168.18.188");
    assert!(l.files[0].not_calls.is_empty());
}

#[test]
fn cucm_133_columns_without_header_ipv6_origin_and_a_cmr_record() {
    let l = load("cucm_133_noheader_v6.csv");
    assert_cucm(&l, "2001:db8::10");
    assert_eq!(not_calls(&l, "CMR"), 1, "the call-quality record is no call");
}

/// 3CX: 4101 calls a Philippine number through the line; a call from the line reaches queue 800
/// and is answered by 4102; 4101 rings 4102, unanswered.
fn assert_3cx_cdr(l: &Loaded) {
    let c = calls(l);
    assert_eq!(l.files[0].format, Some("3cx"));
    assert_eq!((l.calls.calls_outbound, l.calls.calls_inbound, l.calls.calls_internal), (1, 1, 1));
    // naive times are read in --tz (Asia/Shanghai by default)
    assert_eq!(c[0].start, "2026-03-02T00:01:00Z");
    assert_eq!((c[0].operator.as_deref(), c[0].direction, c[0].talk), (Some("4101"), "outbound", 120));
    assert_eq!(c[0].callee.as_deref(), Some("+639171234567"));
    assert_eq!((c[1].operator.as_deref(), c[1].direction, c[1].talk), (Some("4102"), "inbound", 60));
    assert_eq!(c[1].caller.as_deref(), Some("+639170000001"));
    assert_eq!((c[2].operator.as_deref(), c[2].direction, c[2].talk), (Some("4101"), "internal", 0));
}

#[test]
fn three_cx_cdr_service_without_header_and_a_bom_on_the_first_field() {
    let l = load("3cx_cdr_noheader.csv");
    assert_3cx_cdr(&l);
    assert_eq!(calls(&l)[0].operator.as_deref(), Some("4101"));
}

#[test]
fn three_cx_cdr_service_with_header() {
    assert_3cx_cdr(&load("3cx_cdr_header.csv"));
}

#[test]
fn three_cx_call_history_export_with_its_totals_row() {
    let l = load("3cx_call_history.csv");
    assert_eq!(l.files[0].format, Some("3cx"));
    assert_eq!(not_calls(&l, "totals"), 1);
    let c = calls(&l);
    assert_eq!(c.len(), 3);
    assert_eq!((c[0].operator.as_deref(), c[0].direction, c[0].talk), (Some("4201"), "outbound", 120));
    assert_eq!(c[0].callee.as_deref(), Some("+639171234567"));
    assert_eq!((c[1].operator.as_deref(), c[1].direction, c[1].talk), (Some("4202"), "inbound", 60));
    assert_eq!(c[1].caller.as_deref(), Some("+639170000001"));
    assert_eq!((c[2].operator.as_deref(), c[2].talk), (Some("4201"), 0));
    let dur = l.frame.sort(["start_time"], Default::default()).unwrap();
    let dur = dur.column("duration_s").unwrap().i64().unwrap().get(0);
    assert_eq!(dur, Some(125), "ringing and talking");
}

/// Kamailio: op1001 registers, is challenged, calls 13812345678 (answered 08:01:05, BYE at
/// 08:03:05), sends a MESSAGE, calls 13912345678 (486 Busy Here); an OPTIONS ping.
fn assert_kamailio(l: &Loaded, start: &str) {
    let c = calls(l);
    assert_eq!(l.files[0].format, Some("kamailio"));
    assert_eq!(c.len(), 2);
    assert_eq!((c[0].operator.as_deref(), c[0].direction, c[0].talk), (Some("op1001"), "outbound", 120));
    assert_eq!((c[0].start.as_str(), c[0].answered_at.as_deref()), (start, Some(start)));
    assert_eq!(c[0].src_ip.as_deref(), Some("203.0.113.9"), "the origin the spoofing rule needs");
    assert_eq!(c[0].callee.as_deref(), Some("13812345678"));
    assert_eq!((c[1].talk, c[1].answered_at.as_deref()), (0, None), "486 Busy Here: a failed call");
    assert_eq!(not_calls(l, "non-call SIP"), 3, "REGISTER, MESSAGE, OPTIONS: {:?}", l.files[0].not_calls);
    assert_eq!(not_calls(l, "already counted"), 2, "the 407 challenge and the BYE");
    assert_eq!(l.files[0].lines_in, 2);
    let disp = l.frame.sort(["start_time"], Default::default()).unwrap();
    let code = diversion_audit::load::normalize::disposition_code("BUSY");
    assert_eq!(disp.column("disposition").unwrap().u32().unwrap().get(1), Some(code));
}

#[test]
fn kamailio_acc_table() {
    assert_kamailio(&load("kamailio_acc.tsv"), "2026-03-02T00:01:05Z");
}

#[test]
fn kamailio_acc_syslog_lines() {
    // `timestamp=` is epoch seconds: UTC
    let l = load("kamailio_syslog.log");
    assert_kamailio(&l, "2026-03-02T08:01:05Z");
    assert_eq!(not_calls(&l, "no ACC record"), 2, "the proxy's and rtpengine's other messages, counted");
}

#[test]
fn opensips_acc_in_cdr_mode_one_row_a_call_with_its_duration() {
    let l = load("opensips_acc_cdr.csv");
    assert_eq!(l.files[0].format, Some("kamailio"));
    let c = calls(&l);
    assert_eq!(c.len(), 2);
    assert_eq!((c[0].operator.as_deref(), c[0].direction, c[0].talk), (Some("op2001"), "outbound", 120));
    // created is when the INVITE came (naive times in --tz), time the answer
    assert_eq!(
        (c[0].start.as_str(), c[0].answered_at.as_deref()),
        ("2026-03-02T00:01:00Z", Some("2026-03-02T00:01:05Z"))
    );
    assert_eq!(c[0].callee.as_deref(), Some("13812345678"), "the user of dst_uri");
    assert_eq!((c[1].talk, c[1].answered_at.as_deref()), (0, None));
}

#[test]
fn kamailio_dialog_cdrs_table() {
    let l = load("kamailio_cdrs.csv");
    assert_eq!(l.files[0].format, Some("kamailio"));
    let c = calls(&l);
    assert_eq!(c.len(), 2);
    assert_eq!((c[0].operator.as_deref(), c[0].direction, c[0].talk), (Some("op3001"), "outbound", 120));
    assert_eq!(c[0].answered_at.as_deref(), Some(c[0].start.as_str()), "a dialog starts at the answer");
    assert_eq!((c[1].talk, c[1].src_ip.as_deref()), (45, Some("203.0.113.9")));
}

/// FreePBX `cdr` rows: 5101 out through the trunk with outbound CID +442079460000 (answered,
/// 120 s; then unanswered), a call from the trunk answered by 5102.
fn assert_freepbx_rows(l: &Loaded, format: &str) {
    assert_eq!(l.files[0].format, Some(format));
    let c = calls(l);
    assert_eq!(c.len(), 3);
    assert_eq!((c[0].operator.as_deref(), c[0].direction, c[0].talk), (Some("5101"), "outbound", 120));
    assert_eq!(c[0].caller.as_deref(), Some("+442079460000"));
    assert_eq!(c[0].start, "2026-03-02T00:01:00Z");
    assert_eq!((c[1].operator.as_deref(), c[1].direction, c[1].talk), (Some("5102"), "inbound", 60));
    assert_eq!(c[1].caller.as_deref(), Some("+639170000001"), "a name with a quote (O'Brien) did not break the row");
    assert_eq!((c[2].operator.as_deref(), c[2].talk), (Some("5101"), 0));
}

#[test]
fn mysql_dump_of_asteriskcdrdb_reads_the_cdr_table_and_says_so() {
    let l = load("asteriskcdrdb_mysql.sql");
    assert_freepbx_rows(&l, "sql");
    let w = l.files[0].warnings.join(" ");
    assert!(w.contains("cdr (freepbx, 3 rows)") && w.contains("left out: users (no CDR columns, 2 rows)"), "{w}");
}

#[test]
fn postgres_dump_with_copy_and_insert() {
    assert_freepbx_rows(&load("cdr_postgres.sql"), "sql");
}

#[test]
fn freepbx_table_saved_without_its_header() {
    assert_freepbx_rows(&load("freepbx_table_noheader.csv"), "freepbx");
}

#[test]
fn sip_transaction_csv_with_date_and_time_apart_counts_register_and_message_apart() {
    let l = load("sip_transactions.csv");
    assert_eq!(l.files[0].format, Some("generic"), "not Grandstream");
    assert_eq!(not_calls(&l, "non-call SIP"), 2);
    let c = calls(&l);
    assert_eq!(c.len(), 2);
    assert_eq!(
        (c[0].operator.as_deref(), c[0].start.as_str(), c[0].talk),
        (Some("op1001"), "2026-03-02T00:01:00Z", 120)
    );
    assert_eq!(c[0].caller.as_deref(), Some("+442079460000"));
}

#[test]
fn carrier_gbk_records_have_no_operator_and_read_who_called_whom() {
    let l = load("carrier_gbk.csv");
    assert_eq!((l.files[0].format, l.files[0].encoding), (Some("carrier"), Some("gb18030")));
    assert_eq!(l.calls.subscriber_records, 4);
    assert_eq!((l.calls.calls_inbound, l.calls.calls_outbound), (3, 1));
    let c = calls(&l);
    assert!(c.iter().all(|c| c.operator.is_none()), "subscribers are no operators");
    // received (被叫): the other party called the subscriber; `+` and `00` both international
    assert_eq!((c[0].caller.as_deref(), c[0].callee.as_deref()), (Some("+442079460000"), Some("13800000001")));
    assert_eq!((c[0].direction, c[0].talk, c[0].start.as_str()), ("inbound", 120, "2026-03-02T08:01:00Z"));
    assert_eq!(c[1].caller.as_deref(), Some("00442079460001"));
    let e164 = l.frame.sort(["start_time"], Default::default()).unwrap();
    let num = e164.column("caller_num").unwrap().u64().unwrap().get(1);
    assert_eq!(num, Some(442079460001), "00 is the international prefix");
    // placed (主叫): the subscriber called
    assert_eq!(
        (c[2].caller.as_deref(), c[2].callee.as_deref(), c[2].direction),
        (Some("13800000001"), Some("13912345678"), "outbound")
    );
    // forwarded (呼转): received, then passed on
    assert_eq!((c[3].caller.as_deref(), c[3].direction), (Some("+639171234567"), "inbound"));
}

/// Sixty subscribers' 话单 in which one UK number, written `+44…` and `0044…`, called each of them;
/// twelve joined a chat group within minutes.
fn carrier_case(dir: &Path) -> (PathBuf, PathBuf) {
    let mut cdr = String::from("本机号码,对方号码,呼叫类型,开始时间,结束时间,通话时长,通话类型,IMEI\r\n");
    let mut joins = String::from("group_id,member,joined_at\n");
    for i in 0..60 {
        let other = if i % 2 == 0 { "+447700900123" } else { "00447700900123" };
        let (h, m) = (9 + i / 10, (i % 10) * 5);
        cdr += &format!(
            "1380000{i:04},{other},被叫,2026-03-02 {h:02}:{m:02}:00,2026-03-02 {h:02}:{:02}:00,120,国际来话,86753001234{i:04}\r\n",
            m + 2
        );
        if i < 12 {
            joins += &format!("QQ-778899,1380000{i:04},2026-03-02 {h:02}:{:02}:00\n", m + 4);
        }
    }
    let (c, j) = (dir.join("carrier.csv"), dir.join("joins.csv"));
    let (gbk, _, _) = encoding_rs::GBK.encode(&cdr);
    std::fs::write(&c, gbk).unwrap();
    std::fs::write(&j, joins).unwrap();
    (c, j)
}

#[test]
fn scan_judges_carrier_records_by_the_calling_number() {
    let tmp = tempfile::tempdir().unwrap();
    let (c, j) = carrier_case(tmp.path());
    let out = tmp.path().join("out");
    common::bin().args(["scan", "--out"]).arg(&out).arg(&c).arg("--joins").arg(&j).assert().success();
    let findings = std::fs::read_to_string(out.join("findings.csv")).unwrap();
    let fanout: Vec<&str> = findings.lines().filter(|l| l.starts_with("foreign-cli-fanout")).collect();
    assert_eq!(fanout.len(), 1, "one number, however written: {findings}");
    assert!(fanout[0].contains("+447700900123") && fanout[0].contains("reached 60 home callees"), "{}", fanout[0]);
    let conv: Vec<&str> = findings.lines().filter(|l| l.starts_with("group-invite-conversion")).collect();
    assert_eq!(conv.len(), 1, "{findings}");
    assert!(conv[0].contains("+447700900123") && conv[0].contains("12 of 60"), "{}", conv[0]);
    assert!(!findings.contains("long-shift,") && !findings.contains("spoofed-foreign-cli,"));
    let ops = std::fs::read_to_string(out.join("operators.csv")).unwrap();
    assert_eq!(ops.lines().count(), 1, "subscribers and calling numbers are no operators: {ops}");
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["calls"]["subscriber_records"], 60);
    assert!(run["notes"].to_string().contains("the operator rules do not"), "{}", run["notes"]);
}

#[test]
fn a_header_no_format_fits_names_the_nearest_and_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("odd.csv");
    std::fs::write(&f, "foo,method,from_tag,to_tag,bar\n1,INVITE,a,b,2\n").unwrap();
    let out = common::bin().args(["inspect"]).arg(&f).assert().code(2).get_output().stderr.clone();
    let e = String::from_utf8_lossy(&out);
    assert!(e.contains("odd.csv") && e.contains("nearest: kamailio") && e.contains("--format"), "{e}");
}

#[test]
fn inspect_reports_the_detection_confidence_and_the_records_that_are_no_calls() {
    let out = common::bin()
        .args(["inspect", "--json"])
        .arg(path("cucm_133_noheader_v6.csv"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let f = &v["files"][0];
    assert_eq!(f["format"], "cucm");
    assert!(f["confidence"].as_f64().unwrap() > 0.5, "{f}");
    assert_eq!(f["not_calls"]["CMR record (call quality, not a call)"], 1, "{f}");
}

#[test]
fn a_file_detected_as_one_switch_but_written_by_another_stops_the_scan() {
    // FreePBX's header, but the rows of another export (cut to five fields): detected, then refused
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("misread.csv");
    let mut text = String::from("calldate,clid,src,dst,dcontext,channel,dstchannel,lastapp,billsec,disposition\n");
    for i in 0..10 {
        text += &format!("2026-03-02 08:0{i}:00,2001,138123456{i:02},ANSWERED,60\n");
    }
    std::fs::write(&f, text).unwrap();
    let out = tmp.path().join("out");
    let o = common::bin().args(["scan", "--quiet", "--out"]).arg(&out).arg(&f).assert().code(2).get_output().clone();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("misread.csv: 10 of 10 rows rejected (100 %) reading it as freepbx"), "{e}");
    assert!(e.contains("too few columns") && e.contains("line 2:"), "{e}");
    assert!(!out.join("run.json").exists(), "nothing published");
}

#[test]
fn rejected_rows_of_one_insert_line_are_each_counted_and_quoted() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("dump.sql");
    // three rows on one line, two of them without a usable start time
    std::fs::write(
        &f,
        "-- MySQL dump 10.13\nCREATE TABLE `calls` (\n  `agent` varchar(20),\n  `start_time` varchar(20),\n  `callee` varchar(20)\n);\nINSERT INTO `calls` VALUES ('op1','2026-03-02 08:00:00','13812345678'),('op1','not a time','13812345679'),('op2',NULL,'13812345670');\n",
    )
    .unwrap();
    let phones = PhoneParser::new("CN").unwrap();
    let l = load::load_cdrs(&[f], &LoadOptions::default(), &phones).unwrap();
    assert_eq!((l.rows_read(), l.rows_rejected()), (1, 2), "{:?}", l.rejects);
    assert!(l.rejects.iter().all(|r| r.line == 7 && r.raw.starts_with("INSERT INTO `calls`")), "{:?}", l.rejects);
    assert_eq!(l.files[0].lines_in, 3);
}

#[test]
fn carrier_records_with_calling_and_called_columns_and_units_in_the_header() {
    // another common 话单 layout: 主叫号码 / 被叫号码 instead of the own and other numbers,
    // `通话时长(秒)`, `通话起始时间`; recognised by its handset and cell columns
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("话单.csv");
    let text = "主叫号码,被叫号码,呼叫类型,通话起始时间,通话时长(秒),IMEI,LAC,CI\r\n\
+442079460000,13800000001,被叫,2026-03-02 16:01:00,120,867530012345678,6201,31522\r\n\
13800000001,13912345678,主叫,2026-03-02 17:00:00,300,867530012345678,6201,31522\r\n";
    let (gbk, _, _) = encoding_rs::GBK.encode(text);
    std::fs::write(&f, gbk).unwrap();
    let phones = PhoneParser::new("CN").unwrap();
    let l = load::load_cdrs(&[f], &LoadOptions::default(), &phones).unwrap();
    assert_eq!((l.files[0].format, l.rows_rejected()), (Some("carrier"), 0), "{:?}", l.rejects);
    let c = calls(&l);
    assert_eq!(
        (c[0].caller.as_deref(), c[0].callee.as_deref(), c[0].talk),
        (Some("+442079460000"), Some("13800000001"), 120)
    );
    assert_eq!((c[0].direction, c[1].direction), ("inbound", "outbound"));
    assert_eq!(l.calls.subscriber_records, 2);
}
