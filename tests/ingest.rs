//! Loader tests on small fixtures in tests/data (and a few built here, where the point is invisible
//! bytes: BOM, CR-only line ends, GBK).

use diversion_audit::enrich::phone::PhoneParser;
use diversion_audit::load::{self, LoadOptions, Loaded};
use polars::prelude::*;
use std::path::{Path, PathBuf};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

fn load(paths: &[PathBuf]) -> Loaded {
    load::load_cdrs(paths, &LoadOptions::default(), &PhoneParser::new("CN").unwrap()).unwrap()
}

fn strs(l: &Loaded, col: &str) -> Vec<Option<String>> {
    l.frame.column(col).unwrap().str().unwrap().iter().map(|v| v.map(str::to_string)).collect()
}

/// The callees' E.164 numbers, from their integer keys.
fn callees(l: &Loaded) -> Vec<Option<String>> {
    l.frame.column("callee_num").unwrap().u64().unwrap().iter().map(|v| v.map(|n| format!("+{n}"))).collect()
}

/// The canonical dispositions by name (the frame holds their codes).
fn dispositions(l: &Loaded) -> Vec<Option<String>> {
    let codes = l.frame.column("disposition").unwrap().u32().unwrap().clone();
    codes.iter().map(|c| c.map(|c| diversion_audit::load::normalize::DISPOSITIONS[c as usize].to_string())).collect()
}

fn ints(l: &Loaded, col: &str) -> Vec<Option<i64>> {
    l.frame.column(col).unwrap().i64().unwrap().iter().collect()
}

fn times(l: &Loaded, col: &str) -> Vec<Option<String>> {
    let c = l.frame.column(col).unwrap().to_physical_repr();
    c.i64()
        .unwrap()
        .iter()
        .map(|v| {
            v.and_then(chrono::DateTime::from_timestamp_micros).map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        })
        .collect()
}

fn s(v: &[Option<&str>]) -> Vec<Option<String>> {
    v.iter().map(|x| x.map(str::to_string)).collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn asterisk_16_columns() {
    let l = load(&[data("asterisk_16.csv")]);
    assert_eq!(l.files[0].format, Some("asterisk"));
    assert_eq!(l.rows_rejected(), 0);
    // accountcode wins over the channel peer
    assert_eq!(strs(&l, "operator_id"), s(&[Some("1001"), Some("acct-7")]));
    assert_eq!(strs(&l, "caller_id"), s(&[Some("+447700900123"), Some("1002")]));
    assert_eq!(strs(&l, "caller_country"), s(&[Some("GB"), None]));
    assert_eq!(callees(&l), s(&[Some("+8613912345678"), Some("+8613912345679")]));
    assert_eq!(times(&l, "start_time"), s(&[Some("2026-03-02T00:01:00Z"), Some("2026-03-02T00:05:00Z")]));
    assert_eq!(times(&l, "answer_time"), s(&[Some("2026-03-02T00:01:05Z"), None]));
    assert_eq!(dispositions(&l), s(&[Some("ANSWERED"), Some("NO_ANSWER")]));
    assert_eq!(ints(&l, "talk_s"), [Some(120), Some(0)]);
    assert_eq!(strs(&l, "leg_id"), s(&[None, None]));
    assert_eq!(strs(&l, "trunk"), s(&[Some("gw"), None]));
}

#[test]
fn asterisk_18_and_21_columns_with_escapes() {
    let l = load(&[data("asterisk_18.csv")]);
    assert_eq!(l.rows_rejected(), 0, "{:?}", l.rejects);
    assert_eq!(strs(&l, "operator_id"), s(&[Some("1001"), Some("agent7")]));
    assert_eq!(strs(&l, "caller_id"), s(&[Some("+447700900123"), Some("+447700900124")]));
    assert_eq!(strs(&l, "leg_id"), s(&[Some("1772409660.1"), Some("1772409960.2")]));
    assert_eq!(strs(&l, "trunk"), s(&[Some("gw"), Some("trunk-cn-01")]));
    let l = load(&[data("asterisk_21.csv")]);
    assert_eq!((l.files[0].format, l.rows_read(), l.rows_rejected()), (Some("asterisk"), 1, 0));
}

#[test]
fn asterisk_unescaped_clid_is_recovered() {
    let l = load(&[data("asterisk_unescaped_clid.csv")]);
    assert_eq!(l.rows_rejected(), 0, "{:?}", l.rejects);
    assert_eq!(strs(&l, "caller_id"), s(&[Some("+447700900123"), Some("+447700900124")]));
    assert_eq!(strs(&l, "callee"), s(&[Some("13912345678"), Some("13912345679")]));
    assert_eq!(ints(&l, "talk_s"), [Some(120), Some(60)]);
}

#[test]
fn freeswitch_inner_quotes_and_template_widths() {
    let l = load(&[data("freeswitch_inner_quotes.csv")]);
    assert_eq!(l.files[0].format, Some("freeswitch"));
    assert_eq!(l.rows_rejected(), 0, "{:?}", l.rejects);
    // accountcode, else caller_id_name
    assert_eq!(strs(&l, "operator_id"), s(&[Some("agent7"), Some("Agent Seven"), Some("agent8")]));
    assert_eq!(dispositions(&l), s(&[Some("ANSWERED"), Some("NO_ANSWER"), Some("BUSY")]));
    assert_eq!(strs(&l, "caller_e164"), s(&[Some("+447700900888"), Some("+447700900888"), Some("+447700900889")]));
}

#[test]
fn gbk_crlf_bom_and_cr_only() {
    let dir = tempfile::tempdir().unwrap();
    let text = "坐席工号,开始时间,通话时长,主叫号码,被叫号码,呼叫结果\r\n工号07,2026-03-02 09:00:00,185,+85512345678,13912345678,已接通\r\n工号08,2026-03-02 09:10:00,0,+85512345678,13912345679,未接通\r\n";
    let gbk = encoding_rs::GBK.encode(text).0.into_owned();
    let p_gbk = write(dir.path(), "gbk.csv", &gbk);
    let bom = [&[0xEF, 0xBB, 0xBF][..], text.as_bytes()].concat();
    let p_bom = write(dir.path(), "bom.csv", &bom);
    let cr = text.replace("\r\n", "\r");
    let p_cr = write(dir.path(), "cr.csv", cr.as_bytes());
    for (p, enc) in [(p_gbk, "gb18030"), (p_bom, "utf-8-bom"), (p_cr, "utf-8")] {
        let l = load(std::slice::from_ref(&p));
        assert_eq!(l.files[0].encoding, Some(enc), "{}", p.display());
        assert_eq!(l.rows_rejected(), 0, "{:?}", l.rejects);
        assert_eq!(strs(&l, "operator_id"), s(&[Some("工号07"), Some("工号08")]), "{}", p.display());
        assert_eq!(dispositions(&l), s(&[Some("ANSWERED"), Some("NO_ANSWER")]));
        assert_eq!(strs(&l, "caller_country"), s(&[Some("KH"), Some("KH")]));
    }
}

#[test]
fn invalid_bytes_keep_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"operator_id,start_time,callee,campaign\nop1,2026-03-02 09:00:00,13912345678,caf".to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe, b'\n']);
    let p = write(dir.path(), "x.csv", &bytes);
    let opts = LoadOptions { encoding: Some(diversion_audit::load::decode::Encoding::Utf8), ..Default::default() };
    let l = load::load_cdrs(&[p], &opts, &PhoneParser::new("CN").unwrap()).unwrap();
    assert_eq!(l.rows_read(), 1);
    assert_eq!(strs(&l, "campaign"), s(&[Some("caf\u{fffd}\u{fffd}")]));
}

#[test]
fn bad_rows_are_rejected_with_reasons_and_counted() {
    let l = load(&[data("bad_rows.csv")]);
    let got: Vec<(u64, String)> = l.rejects.iter().map(|r| (r.line, r.reason.clone())).collect();
    assert_eq!(
        got,
        vec![
            (3, "missing operator_id".to_string()),
            (4, "unparseable start_time".to_string()),
            (5, "end before start".to_string()),
            (6, "negative duration".to_string()),
            (7, "too few columns (3 of 11)".to_string()),
            (10, "unparseable talk time".to_string()),
        ]
    );
    assert!(l.rejects[0].raw.starts_with("bad-missing-operator,"));
    assert!(l.rejects.iter().all(|r| r.raw.starts_with("bad-")));
    let f = &l.files[0];
    assert_eq!(f.rows_read + f.rows_rejected + f.duplicates, f.lines_in);
    assert_eq!((f.rows_read, f.rows_rejected, f.lines_in), (3, 6, 9));
    // derived values of the good rows
    assert_eq!(strs(&l, "leg_id"), s(&[Some("ok-1"), Some("ok-2"), Some("ok-3")]));
    assert_eq!(ints(&l, "talk_s"), [Some(120), Some(0), Some(60)]);
    assert_eq!(times(&l, "end_time"), s(&[Some("2026-03-02T00:02:05Z"), None, Some("2026-03-02T01:51:10Z")]));
    assert_eq!(callees(&l), s(&[Some("+8613912345678"), Some("+8613912345670"), Some("+8613912345678")]));
}

#[test]
fn duplicates_across_overlapping_exports_count_once() {
    let l = load(&[data("dup_day1.csv"), data("dup_day2.csv")]);
    assert_eq!(l.rows_read(), 4);
    assert_eq!((l.files[0].duplicates, l.files[1].duplicates), (0, 2));
    assert_eq!((l.files[0].rows_read, l.files[1].rows_read), (3, 1));
    for f in &l.files {
        assert_eq!(f.rows_read + f.rows_rejected + f.duplicates, f.lines_in);
    }
    // without call ids: operator + start + callee, the callee compared as E.164
    let l = load(&[data("noid_a.csv"), data("noid_b.csv")]);
    assert_eq!((l.rows_read(), l.duplicates()), (3, 1));
}

#[test]
fn parquet_ndjson_and_gzip_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let mut df = df!(
        "operator_id" => ["op1", "op2"],
        "start_time" => ["2026-03-02 08:00:00", "2026-03-02T00:10:00Z"],
        "billsec" => [60i64, 0],
        "caller_id" => ["+447700900123", "+447700900124"],
        "callee" => ["13912345678", "13912345679"],
    )
    .unwrap();
    let p = dir.path().join("x.parquet");
    ParquetWriter::new(std::fs::File::create(&p).unwrap()).finish(&mut df).unwrap();
    let nd = write(
        dir.path(),
        "x.ndjson",
        b"{\"agent\":\"op3\",\"start\":\"2026-03-02 08:20:00\",\"billsec\":30,\"dst\":\"13912345670\"}\n",
    );
    let csv = "operator_id,start_time,callee\nop4,2026-03-02 08:30:00,13912345671\n";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, csv.as_bytes()).unwrap();
    let pgz = write(dir.path(), "x.csv.gz", &gz.finish().unwrap());
    let zst = write(dir.path(), "x.csv.zst", &zstd::encode_all(csv.replace("op4", "op5").as_bytes(), 1).unwrap());
    let l = load(&[p, nd, pgz, zst]);
    assert_eq!(l.failed_files(), 0, "{:?}", l.files);
    let formats: Vec<_> = l.files.iter().map(|f| f.format.unwrap()).collect();
    assert_eq!(formats, ["parquet", "ndjson", "generic", "generic"]);
    assert_eq!(strs(&l, "operator_id"), s(&[Some("op1"), Some("op2"), Some("op3"), Some("op4"), Some("op5")]));
    assert_eq!(
        times(&l, "start_time")[..3],
        s(&[Some("2026-03-02T00:00:00Z"), Some("2026-03-02T00:10:00Z"), Some("2026-03-02T00:20:00Z")])[..]
    );
}

#[test]
fn time_zones_of_naive_and_offset_times() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "tz.csv",
        b"operator_id,start_time,callee\nop1,2026-03-02 08:00:00,1\nop1,2026-03-02 08:00:00+09:00,2\nop1,2026-03-02T00:00:00Z,3\n",
    );
    let phones = PhoneParser::new("CN").unwrap();
    let sh = load::load_cdrs(std::slice::from_ref(&p), &LoadOptions::default(), &phones).unwrap();
    assert_eq!(
        times(&sh, "start_time"),
        s(&[Some("2026-03-02T00:00:00Z"), Some("2026-03-01T23:00:00Z"), Some("2026-03-02T00:00:00Z")])
    );
    let opts = LoadOptions { tz: chrono_tz::Europe::London, ..Default::default() };
    let lon = load::load_cdrs(&[p], &opts, &phones).unwrap();
    assert_eq!(
        times(&lon, "start_time"),
        s(&[Some("2026-03-02T08:00:00Z"), Some("2026-03-01T23:00:00Z"), Some("2026-03-02T00:00:00Z")])
    );
}

#[test]
fn missing_required_column_and_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "nostart.csv", b"agent,callee\nop1,13912345678\n");
    let e = write(dir.path(), "empty.csv", b"");
    let h = write(dir.path(), "header_only.csv", b"operator_id,start_time\n");
    let l = load(&[p, e.clone(), h.clone()]);
    let err = l.files[0].error.as_deref().unwrap();
    assert!(err.contains("nostart.csv") && err.contains("start_time") && err.contains("agent"), "{err}");
    // no data rows is an error (a broken nightly export must not pass as a quiet day) ...
    for (f, name) in [(&l.files[1], "empty.csv"), (&l.files[2], "header_only.csv")] {
        let err = f.error.as_deref().unwrap_or_default();
        assert!(err.contains(name) && err.contains("no data rows") && err.contains("--allow-empty"), "{err}");
    }
    assert_eq!(l.rows_read(), 0);
    // ... unless allowed
    let opts = LoadOptions { allow_empty: true, ..Default::default() };
    let l = load::load_cdrs(&[e, h], &opts, &PhoneParser::new("CN").unwrap()).unwrap();
    assert!(l.files.iter().all(|f| f.error.is_none() && f.warnings[0].contains("no data rows")), "{:?}", l.files);
}

#[test]
fn every_sample_log_loads_with_its_format_and_no_rejects() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_logs/cdr");
    let expected = [
        ("asterisk_Master.csv", "asterisk", "utf-8"),
        ("callcentre_gbk.csv", "generic", "gb18030"),
        ("freepbx_cdr.csv", "freepbx", "utf-8"),
        ("freeswitch_cdr.csv", "freeswitch", "utf-8"),
        ("generic_utf8.csv", "generic", "utf-8"),
        ("grandstream_cdr.csv", "grandstream", "utf-8"),
        ("vicidial_log.tsv", "vicidial", "utf-8"),
        ("vicidial_rt_monitor_log.tsv", "vicidial-monitor", "utf-8"),
        ("cucm_cdr.csv", "cucm", "utf-8"),
        ("3cx_cdr.csv", "3cx", "utf-8-bom"),
        ("3cx_call_history.csv", "3cx", "utf-8-bom"),
        ("kamailio_acc.log", "kamailio", "utf-8"),
        ("asteriskcdrdb.sql", "sql", "utf-8"),
    ];
    for (name, format, enc) in expected {
        let l = load(&[dir.join(name)]);
        let f = &l.files[0];
        assert_eq!((f.format, f.encoding), (Some(format), Some(enc)), "{name}");
        assert!(f.error.is_none(), "{name}: {:?}", f.error);
        assert_eq!(f.rows_rejected, 0, "{name}: {:?}", l.rejects);
        assert!(f.rows_read >= 2, "{name}");
        assert!(strs(&l, "operator_id").iter().all(Option::is_some), "{name}");
        // (an inbound or internal call's callee is an extension, no E.164 number)
        let outbound_only = l.calls.calls_inbound + l.calls.calls_internal == 0;
        assert!(!outbound_only || callees(&l).iter().all(Option::is_some), "{name}");
    }
}

#[test]
fn the_carrier_sample_loads_without_operators() {
    let l = load(&[Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_logs/cdr/carrier_gbk.csv")]);
    let f = &l.files[0];
    assert_eq!((f.format, f.encoding, f.rows_rejected), (Some("carrier"), Some("gb18030"), 0));
    assert!(strs(&l, "operator_id").iter().all(Option::is_none), "a subscriber is no operator");
    assert_eq!(l.calls.subscriber_records, 4);
}

#[test]
fn a_rejected_ndjson_row_is_quoted_by_its_fields() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "calls.ndjson",
        b"{\"call_id\":\"a\",\"operator_id\":\"op1\",\"start_time\":\"2026-03-02 08:00:00\",\"callee\":\"13912345678\"}\n\
{\"call_id\":\"b\",\"operator_id\":null,\"start_time\":\"2026-03-02 08:05:00\",\"callee\":\"13912345679\"}\n\
{\"call_id\":\"c\",\"operator_id\":\"op1\",\"start_time\":\"not a time\",\"callee\":\"13912345670\"}\n",
    );
    let l = load(&[p]);
    assert_eq!(l.rows_read(), 1);
    let got: Vec<(u64, &str, &str)> = l.rejects.iter().map(|r| (r.line, r.reason.as_str(), r.raw.as_str())).collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[0].0, got[0].1), (2, "missing operator_id"));
    assert!(got[0].2.contains("leg_id=b") && got[0].2.contains("start_time=2026-03-02 08:05:00"), "{got:?}");
    assert_eq!((got[1].0, got[1].1), (3, "unparseable start_time"));
    assert!(got[1].2.contains("leg_id=c") && got[1].2.contains("start_time=not a time"), "{got:?}");
}
