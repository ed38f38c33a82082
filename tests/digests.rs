//! Output digests: the bytes of every output (all but the wall-clock timings.json and manifest.json) of a fixed set
//! of scans, held against `tests/data/digests.txt`, which was recorded from the code before the
//! round-2 restructuring (issue 21, commit 91330bb). A change that is meant to keep behaviour must
//! keep every digest; a change that means to alter an output re-records the file with
//! `DA_BLESS_DIGESTS=1 cargo test --release --test digests` and says why in its commit.
//!
//! Scans: the README's audit of sample_logs/; generated data (150 operators x 7 days) as CSV and as
//! Parquet, whole and in 3 partitions; and seven daily `--date` runs with `--history`.
//! The temporary directory's path is replaced by `$TMP` before hashing (run.json and report.html
//! name the inputs).

mod common;

use common::bin;
use std::collections::BTreeMap;
use std::path::Path;

const GOLDEN: &str = "tests/data/digests.txt";

/// Every output under `dir` (relative path -> BLAKE3 of its bytes, the temp path replaced).
fn digests(dir: &Path, tmp: &str, into: &mut BTreeMap<String, String>, scenario: &str) {
    fn walk(d: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), out);
            } else if e.file_name() != "timings.json" && e.file_name() != "manifest.json" {
                out.push(e.path());
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    assert!(!files.is_empty(), "{scenario}: no outputs in {}", dir.display());
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        // report.html escapes the slashes of the paths it shows
        let bytes = replace(&bytes, tmp.as_bytes(), b"$TMP");
        let bytes = replace(&bytes, tmp.replace('/', "&#x2f;").as_bytes(), b"$TMP");
        let rel = f.strip_prefix(dir).unwrap().display().to_string();
        into.insert(format!("{scenario}/{rel}"), blake3::hash(&bytes).to_hex().to_string());
    }
}

fn replace(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

fn scan(args: &[&str], inputs: &[&Path], out: &Path) {
    let mut c = bin();
    c.arg("scan").args(inputs).arg("--out").arg(out).arg("--quiet").args(args);
    c.assert().success();
}

#[test]
fn outputs_keep_their_recorded_digests() {
    let dir = tempfile::tempdir().unwrap();
    // canonical, so a symlinked TMPDIR is replaced too
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let tmp = root.display().to_string();
    let mut got = BTreeMap::new();

    // the README's quick start
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_logs");
    let out = root.join("sample");
    let mut c = bin();
    c.arg("scan")
        .arg("sample_logs/cdr")
        .args(["--joins", "sample_logs/joins", "--ip-country", "sample_logs/ip-country.csv", "--quiet", "--out"])
        .arg(&out);
    c.assert().success();
    assert!(samples.is_dir());
    digests(&out, &tmp, &mut got, "sample");

    // generated: 150 operators x 7 days, CSV and Parquet, whole and in 3 partitions
    let data = root.join("data");
    bin()
        .arg("generate")
        .args(["--operators", "150", "--days", "7", "--seed", "21", "--no-overlap", "--out"])
        .arg(&data)
        .assert()
        .success();
    let joins = data.join("joins.csv").display().to_string();
    let ips = data.join("ip-country.csv").display().to_string();
    let common = ["--joins", joins.as_str(), "--ip-country", ips.as_str()];
    for (input, name) in [("cdr.csv", "csv"), ("cdr.parquet", "parquet")] {
        for parts in ["1", "3"] {
            let scenario = format!("{name}-parts{parts}");
            let out = root.join(&scenario);
            let mut args = common.to_vec();
            args.extend(["--partitions", parts]);
            scan(&args, &[&data.join(input)], &out);
            digests(&out, &tmp, &mut got, &scenario);
        }
    }

    // seven daily runs with --history: each day's outputs, and the history after the last
    let hist = root.join("history");
    let h = hist.display().to_string();
    for day in 2..=8 {
        let date = format!("2026-03-{day:02}");
        let out = root.join(format!("daily-{date}"));
        let mut args = common.to_vec();
        args.extend(["--history", h.as_str(), "--date", date.as_str()]);
        scan(&args, &[&data.join("cdr.csv")], &out);
        digests(&out, &tmp, &mut got, &format!("daily-{date}"));
    }
    digests(&hist, &tmp, &mut got, "history");

    let text: String = got.iter().map(|(k, v)| format!("{v}  {k}\n")).collect();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    if std::env::var_os("DA_BLESS_DIGESTS").is_some() {
        std::fs::write(&golden, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&golden).unwrap();
    let want: BTreeMap<&str, &str> = want.lines().filter_map(|l| l.split_once("  ")).map(|(h, k)| (k, h)).collect();
    let differ: Vec<String> = want
        .keys()
        .copied()
        .chain(got.keys().map(String::as_str))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|k| want.get(k).copied() != got.get(*k).map(String::as_str))
        .map(str::to_string)
        .collect();
    assert!(
        differ.is_empty(),
        "{} of {} outputs differ from {GOLDEN} (DA_BLESS_DIGESTS=1 re-records it when a change is meant):\n{}",
        differ.len(),
        want.len().max(got.len()),
        differ.join("\n")
    );
    // the scenarios hold real findings, not empty runs
    assert!(got.len() > 100, "{} outputs", got.len());
}
