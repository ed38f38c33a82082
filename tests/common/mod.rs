//! Helpers shared by the whole-program tests: run `generate` and `scan` on generated data.
#![allow(dead_code)]

use assert_cmd::Command;
use std::path::{Path, PathBuf};

pub fn bin() -> Command {
    let mut c = Command::cargo_bin("diversion-audit").unwrap();
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// `generate` into `dir/data` with these extra flags; returns the data directory.
pub fn generate(dir: &Path, flags: &[&str]) -> PathBuf {
    let data = dir.join("data");
    bin().arg("generate").args(flags).arg("--out").arg(&data).assert().success();
    data
}

/// `scan` the given generated CDR files with the generated joins and IP table into `out`.
pub fn scan_generated(data: &Path, cdr: &[&str], out: &Path) -> Command {
    generated(&["scan"], data, cdr, out)
}

/// A command (`scan`, `normalize`, …) over the given generated CDR files, the generated joins and
/// IP table, into `out`.
pub fn generated(cmd: &[&str], data: &Path, cdr: &[&str], out: &Path) -> Command {
    let mut c = bin();
    c.args(cmd);
    for f in cdr {
        c.arg(data.join(f));
    }
    c.arg("--joins")
        .arg(data.join("joins.csv"))
        .arg("--ip-country")
        .arg(data.join("ip-country.csv"))
        .arg("--out")
        .arg(out);
    c
}
