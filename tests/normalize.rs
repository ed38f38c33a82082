//! `normalize`: the canonical Parquet parts, their manifest and rejects, re-runs, and broken input.

mod common;

use common::bin as da;
use common::{generate, generated};
use polars::prelude::*;
use serde_json::Value;
use std::path::Path;

/// `normalize` of `inputs` (absolute paths: `data.join` leaves them as they are) with the
/// generated join log and IP table.
fn normalize(inputs: &[&Path], data: &Path, out: &Path) -> assert_cmd::assert::Assert {
    let files: Vec<&str> = inputs.iter().map(|p| p.to_str().unwrap()).collect();
    generated(&["normalize", "--quiet"], data, &files, out).assert()
}

fn manifest(out: &Path) -> Value {
    let dir = out.join("_manifests");
    let mut m: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(m.len(), 1, "{m:?}");
    serde_json::from_str(&std::fs::read_to_string(m.pop().unwrap()).unwrap()).unwrap()
}

fn read(p: &Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(p).unwrap()).finish().unwrap()
}

#[test]
fn parts_by_local_day_hold_every_row_the_manifest_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let data = generate(tmp.path(), &["--operators", "20", "--days", "3", "--seed", "4", "--no-parquet"]);
    let out = tmp.path().join("canonical");
    normalize(&[&data.join("cdr.csv")], &data, &out).success();
    let m = manifest(&out);
    assert_eq!(m["schema_version"], 1);
    assert_eq!(m["home_prefix"], "+86");
    let parts = m["parts"].as_array().unwrap();
    assert!(parts.len() >= 3, "{parts:?}");
    let mut rows = 0;
    for p in parts {
        let rel = p["path"].as_str().unwrap();
        let df = read(&out.join(rel));
        assert_eq!(df.height() as u64, p["rows"].as_u64().unwrap());
        rows += df.height() as u64;
        // every column of schema v1, in order, and the part's rows all started on its local day
        let cols: Vec<String> = df.get_column_names().iter().map(|c| c.to_string()).collect();
        let want: Vec<String> =
            m["columns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_string()).collect();
        assert_eq!(cols, want);
        let day = rel.trim_start_matches("day=").split('/').next().unwrap();
        let first = df.column("start_us").unwrap().i64().unwrap().get(0).unwrap();
        let local = chrono::DateTime::from_timestamp_micros(first).unwrap().with_timezone(&chrono_tz::Asia::Shanghai);
        assert_eq!(local.format("%Y-%m-%d").to_string(), day);
        assert_eq!(
            blake3::hash(&std::fs::read(out.join(rel)).unwrap()).to_hex().as_str(),
            p["blake3"].as_str().unwrap()
        );
    }
    assert_eq!(rows, m["rows"]["written"].as_u64().unwrap());
    assert_eq!(rows, m["rows"]["read"].as_u64().unwrap());
    assert!(out.join("_joins").read_dir().unwrap().count() == 1);
    // the same inputs again: the same parts, byte for byte, and no second set
    let before: Vec<Vec<u8>> =
        parts.iter().map(|p| std::fs::read(out.join(p["path"].as_str().unwrap())).unwrap()).collect();
    normalize(&[&data.join("cdr.csv")], &data, &out).success();
    assert_eq!(manifest(&out)["parts"], m["parts"]);
    for (p, b) in parts.iter().zip(before) {
        assert_eq!(std::fs::read(out.join(p["path"].as_str().unwrap())).unwrap(), b);
    }
    // the run's evidence record (one per id, beside other runs' parts): its inputs with SHA-256 and
    // rows, its files; `verify` takes the file and finds a changed byte of a part
    let ev: Vec<_> = std::fs::read_dir(out.join("_evidence")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(ev.len(), 1, "{ev:?}");
    let e: Value = serde_json::from_slice(&std::fs::read(&ev[0]).unwrap()).unwrap();
    assert_eq!((e["command"].as_str(), e["root"].as_str()), (Some("normalize"), Some("..")));
    let cdr = e["inputs"].as_array().unwrap().iter().find(|i| i["role"] == "cdr").unwrap();
    assert_eq!(cdr["rows"], m["rows"]["read"]);
    let listed: Vec<&str> = e["outputs"].as_array().unwrap().iter().map(|o| o["path"].as_str().unwrap()).collect();
    assert!(parts.iter().all(|p| listed.contains(&p["path"].as_str().unwrap())), "{listed:?}");
    let o = da().arg("verify").arg(&ev[0]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let part = out.join(parts[0]["path"].as_str().unwrap());
    let mut b = std::fs::read(&part).unwrap();
    b[100] ^= 1;
    std::fs::write(&part, b).unwrap();
    let o = da().arg("verify").arg(&ev[0]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains(parts[0]["path"].as_str().unwrap()));
}

#[test]
fn rejects_are_kept_and_a_broken_input_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = generate(tmp.path(), &["--operators", "5", "--days", "1", "--seed", "2", "--no-parquet"]);
    // two rows with no start time: rejected, kept with file, line and reason
    let text = std::fs::read_to_string(data.join("cdr.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let start = header.iter().position(|h| *h == "start_time").unwrap();
    for l in lines.iter_mut().skip(1).take(2) {
        let mut f: Vec<String> = l.split(',').map(str::to_string).collect();
        f[start] = String::new();
        *l = f.join(",");
    }
    let bad = tmp.path().join("bad.csv");
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let out = tmp.path().join("canonical");
    normalize(&[&bad], &data, &out).success();
    let m = manifest(&out);
    assert_eq!(m["rows"]["rejected"], 2);
    let rej =
        std::fs::read_to_string(out.join("_rejected").join(format!("{}.csv", m["id"].as_str().unwrap()))).unwrap();
    assert_eq!(rej.lines().filter(|l| l.contains("bad.csv")).count(), 2, "{rej}");
    // a truncated gzip: exit 2, the file named, nothing written
    let gz = tmp.path().join("cut.csv.gz");
    std::fs::write(&gz, [0x1f, 0x8b, 0x08, 0x00, 0x00]).unwrap();
    let out2 = tmp.path().join("canonical2");
    let a = normalize(&[&gz], &data, &out2).code(2);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("cut.csv.gz"), "{err}");
    assert!(!out2.join("_manifests").exists());
}
