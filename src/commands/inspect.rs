//! `inspect`: what the loader made of each input, before any rule runs.

use crate::cli::InspectArgs;
use crate::enrich::{self, ip::IpCountry};
use crate::exit_codes::Exit;
use crate::load::{self, FileReport, Loaded};
use crate::setup::resolve;
use anyhow::Result;
use polars::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;

/// The `--json` document.
#[derive(Serialize, Debug)]
pub struct InspectReport {
    pub files: Vec<FileReport>,
    pub lines_in: u64,
    pub rows_read: u64,
    pub rows_rejected: u64,
    pub duplicates: u64,
    pub reject_reasons: BTreeMap<String, u64>,
    /// Legs, calls, calls by direction, legs without an operator (docs/calls.md).
    pub calls: load::legs::CallStats,
    pub operators: u64,
    pub distinct_clis: u64,
    pub foreign_clis: u64,
    /// Share of distinct caller IDs that belong to another region than home.
    pub foreign_cli_share: f64,
    /// Share of calls that showed a foreign caller ID.
    pub foreign_call_share: f64,
    pub invalid_foreign_clis: u64,
    pub first_time: Option<String>,
    pub last_time: Option<String>,
    /// Calls per source-IP country (with --ip-country), `unknown` for no IP or no match.
    pub ip_countries: Option<BTreeMap<String, u64>>,
    pub joins: Option<JoinsSummary>,
}

#[derive(Serialize, Debug)]
pub struct JoinsSummary {
    pub files: Vec<FileReport>,
    pub rows_read: u64,
    pub rows_rejected: u64,
    pub duplicates: u64,
    pub groups: u64,
    pub members: u64,
}

pub fn run(args: &InspectArgs) -> Result<Exit> {
    let setup = resolve(&args.load)?;
    let paths = load::expand_inputs(&args.input.inputs)?;
    let ips = args.input.ip_country.as_deref().map(IpCountry::open).transpose()?;
    let loaded = load::load_cdrs(&paths, &setup.load, &setup.phones)?;
    let frame = enrich::cdr_ip_country(loaded.frame.clone(), ips.as_ref(), None)?;
    let joins = if args.input.joins.is_empty() {
        None
    } else {
        let jp = load::expand_inputs(&args.input.joins)?;
        Some(load::load_joins(&jp, &setup.load, &setup.phones)?)
    };
    let report = summarise(&loaded, &frame, setup.phones.home(), ips.is_some(), joins.as_ref())?;
    let mut all_rejects = loaded.rejects.clone();
    if let Some(j) = &joins {
        all_rejects.extend(j.rejects.iter().cloned());
    }
    if let Some(p) = &args.rejected {
        crate::outputs::write_rejects(p, &all_rejects, false)?;
    }
    let out = std::io::stdout();
    let mut out = out.lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        print_table(&mut out, &report)?;
    }
    out.flush()?;
    let mut failed = false;
    for f in report.files.iter().chain(report.joins.iter().flat_map(|j| j.files.iter())) {
        for w in &f.warnings {
            eprintln!("diversion-audit: warning: {w}");
        }
        if let Some(e) = &f.error {
            eprintln!("diversion-audit: error: {e}");
            failed = true;
        }
    }
    if setup.strict
        && let Some(r) = all_rejects.first()
    {
        eprintln!("diversion-audit: error: {}", crate::load::strict_message(&all_rejects, r));
        failed = true;
    }
    Ok(if failed { Exit::Error } else { Exit::Ok })
}

fn n_unique(df: &DataFrame, e: Expr) -> Result<u64> {
    let out = df.clone().lazy().select([e.drop_nulls().n_unique().cast(DataType::UInt64).alias("n")]).collect()?;
    Ok(out.column("n")?.u64()?.get(0).unwrap_or(0))
}

pub fn summarise(
    loaded: &Loaded,
    frame: &DataFrame,
    home: &str,
    with_ip: bool,
    joins: Option<&Loaded>,
) -> Result<InspectReport> {
    let foreign = col("caller_country").is_not_null().and(col("caller_country").neq(lit(home)));
    let cli = coalesce(&[col("caller_e164"), col("caller_id")]);
    let operators = n_unique(frame, col("operator_id"))?;
    let distinct_clis = n_unique(frame, cli.clone())?;
    let foreign_clis =
        n_unique(frame, when(foreign.clone()).then(col("caller_e164")).otherwise(lit(NULL).cast(DataType::String)))?;
    let invalid_foreign_clis = n_unique(
        frame,
        when(foreign.clone().and(col("caller_valid").not()))
            .then(col("caller_e164"))
            .otherwise(lit(NULL).cast(DataType::String)),
    )?;
    let calls = frame.height() as u64;
    let foreign_calls =
        frame.clone().lazy().filter(foreign).select([len().cast(DataType::UInt64).alias("n")]).collect()?;
    let foreign_calls = foreign_calls.column("n")?.u64()?.get(0).unwrap_or(0);
    let ip_countries = if with_ip {
        let g = frame
            .clone()
            .lazy()
            .group_by([col("ip_country").fill_null(lit("unknown"))])
            .agg([len().cast(DataType::UInt64).alias("n")])
            .collect()?;
        let mut m = BTreeMap::new();
        for (k, v) in g.column("ip_country")?.str()?.iter().zip(g.column("n")?.u64()?.iter()) {
            m.insert(k.unwrap_or("unknown").to_string(), v.unwrap_or(0));
        }
        Some(m)
    } else {
        None
    };
    let mut reasons = BTreeMap::new();
    for f in &loaded.files {
        for (k, v) in &f.reject_reasons {
            *reasons.entry(k.clone()).or_default() += v;
        }
    }
    let first_time = loaded.files.iter().filter_map(|f| f.first_time.clone()).min();
    let last_time = loaded.files.iter().filter_map(|f| f.last_time.clone()).max();
    let joins = match joins {
        Some(j) => Some(JoinsSummary {
            files: j.files.clone(),
            rows_read: j.rows_read(),
            rows_rejected: j.rows_rejected(),
            duplicates: j.duplicates(),
            groups: n_unique(&j.frame, col("group_id"))?,
            members: n_unique(&j.frame, col("member"))?,
        }),
        None => None,
    };
    let share = |a: u64, b: u64| if b == 0 { 0.0 } else { (a as f64 / b as f64 * 10_000.0).round() / 10_000.0 };
    Ok(InspectReport {
        files: loaded.files.clone(),
        lines_in: loaded.files.iter().map(|f| f.lines_in).sum(),
        rows_read: loaded.rows_read(),
        rows_rejected: loaded.rows_rejected(),
        duplicates: loaded.duplicates(),
        reject_reasons: reasons,
        calls: loaded.calls.clone(),
        operators,
        distinct_clis,
        foreign_clis,
        foreign_cli_share: share(foreign_clis, distinct_clis),
        foreign_call_share: share(foreign_calls, calls),
        invalid_foreign_clis,
        first_time,
        last_time,
        ip_countries,
        joins,
    })
}

fn print_table(out: &mut dyn Write, r: &InspectReport) -> Result<()> {
    let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    let file_rows = |out: &mut dyn Write, files: &[FileReport]| -> Result<()> {
        writeln!(
            out,
            "{:<44} {:<11} {:>4} {:<9} {:>10} {:>8} {:>6}  time range (UTC)",
            "file", "format", "fit", "encoding", "rows", "rejected", "dups"
        )?;
        for f in files {
            writeln!(
                out,
                "{:<44} {:<11} {:>4} {:<9} {:>10} {:>8} {:>6}  {} .. {}{}",
                f.path,
                f.format.unwrap_or("-"),
                f.confidence.map_or("-".to_string(), |c| format!("{:.0}%", c * 100.0)),
                f.encoding.unwrap_or("-"),
                f.rows_read,
                f.rows_rejected,
                f.duplicates,
                dash(&f.first_time),
                dash(&f.last_time),
                if f.error.is_some() { "  ERROR" } else { "" }
            )?;
        }
        Ok(())
    };
    file_rows(out, &r.files)?;
    writeln!(out)?;
    writeln!(
        out,
        "rows read {} · rejected {} · duplicates {} · data lines in {}",
        r.rows_read, r.rows_rejected, r.duplicates, r.lines_in
    )?;
    for (k, v) in &r.reject_reasons {
        writeln!(out, "  rejected: {v} × {k}")?;
    }
    let mut not_calls: BTreeMap<&str, u64> = BTreeMap::new();
    for f in &r.files {
        for (k, v) in &f.not_calls {
            *not_calls.entry(k.as_str()).or_default() += v;
        }
    }
    for (k, v) in not_calls {
        writeln!(out, "  not calls: {v} × {k}")?;
    }
    let c = &r.calls;
    if c.subscriber_records > 0 {
        writeln!(
            out,
            "subscriber records (carrier 话单, no operator) {}: the operator rules skip them",
            c.subscriber_records
        )?;
    }
    writeln!(
        out,
        "legs {} · calls {} (outbound {} · inbound {} · internal {} · unknown {}) · legs without an operator {} · legs folded into their seat's call {}",
        c.legs,
        c.calls,
        c.calls_outbound,
        c.calls_inbound,
        c.calls_internal,
        c.calls_unknown,
        c.legs_without_operator,
        c.legs_merged
    )?;
    writeln!(
        out,
        "operators {} · distinct caller IDs {} · foreign {} ({:.1} % of caller IDs, {:.1} % of calls) · invalid foreign {}",
        r.operators,
        r.distinct_clis,
        r.foreign_clis,
        r.foreign_cli_share * 100.0,
        r.foreign_call_share * 100.0,
        r.invalid_foreign_clis
    )?;
    writeln!(out, "time range {} .. {}", dash(&r.first_time), dash(&r.last_time))?;
    if let Some(m) = &r.ip_countries {
        let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k} {v}")).collect();
        writeln!(out, "calls by source-IP country: {}", parts.join(", "))?;
    }
    if let Some(j) = &r.joins {
        writeln!(out)?;
        file_rows(out, &j.files)?;
        writeln!(
            out,
            "joins read {} · rejected {} · duplicates {} · groups {} · members {}",
            j.rows_read, j.rows_rejected, j.duplicates, j.groups, j.members
        )?;
    }
    Ok(())
}
