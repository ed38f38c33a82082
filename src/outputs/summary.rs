//! The summary a scan prints on stdout.

use crate::load::Loaded;
use crate::rules::{self, Finding, Severity};
use crate::triage::{Status, Triage};
use anyhow::Result;
use polars::prelude::*;
use std::io::Write;
use std::path::Path;

/// What the desk's triage left: each finding's standing (aligned with the findings), how many the
/// allowlist moved aside, how many were resolved (`--history`).
pub struct Triaged<'a> {
    pub triage: &'a [Triage],
    pub suppressed: usize,
    pub resolved: Option<usize>,
}

/// Rows read, per rule its findings (and how many are new), the new findings first, the
/// highest-risk operators, the notes, where the outputs are.
#[allow(clippy::too_many_arguments)]
pub fn summary(
    o: &mut dyn Write,
    loaded: &Loaded,
    findings: &[Finding],
    operators: &DataFrame,
    notes: &[String],
    out: &Path,
    with_sms: bool,
    t: &Triaged,
) -> Result<()> {
    writeln!(
        o,
        "diversion-audit scan: {} calls from {} file(s) ({} rejected, {} duplicates), {} operators",
        loaded.rows_read(),
        loaded.files.len(),
        loaded.rows_rejected(),
        loaded.duplicates(),
        operators.height()
    )?;
    writeln!(o)?;
    let is_new = |i: usize| t.triage.get(i).is_some_and(|t| t.status == Status::New);
    writeln!(
        o,
        "{:<26} {:>8} {:>5} {:>9} {:>6} {:>6} {:>6}",
        "rule", "findings", "new", "operators", "high", "medium", "low"
    )?;
    for r in rules::scan_ids(with_sms).into_iter().filter_map(rules::find_doc) {
        let new = (0..findings.len()).filter(|i| findings[*i].rule == r.id() && is_new(*i)).count();
        let fs: Vec<&Finding> = findings.iter().filter(|f| f.rule == r.id()).collect();
        let mut ops: Vec<&str> = fs.iter().filter_map(|f| f.operator_id.as_deref()).collect();
        ops.sort_unstable();
        ops.dedup();
        let n = |s: Severity| fs.iter().filter(|f| f.severity == s).count();
        writeln!(
            o,
            "{:<26} {:>8} {:>5} {:>9} {:>6} {:>6} {:>6}",
            r.id(),
            fs.len(),
            new,
            ops.len(),
            n(Severity::High),
            n(Severity::Medium),
            n(Severity::Low)
        )?;
    }
    let new: Vec<usize> = (0..findings.len()).filter(|i| is_new(*i)).collect();
    let recurring = findings.len() - new.len();
    writeln!(
        o,
        "{} new, {recurring} recurring{}{}",
        new.len(),
        t.resolved.map(|n| format!(", {n} resolved since the previous audited day")).unwrap_or_default(),
        if t.suppressed > 0 { format!(", {} suppressed by the allowlist", t.suppressed) } else { String::new() }
    )?;
    if !new.is_empty() && recurring > 0 {
        writeln!(o)?;
        writeln!(o, "new findings (first 10 of {}):", new.len())?;
        for i in new.iter().take(10) {
            let f = &findings[*i];
            writeln!(o, "  {:<6} {:<24} {}", f.severity.name(), f.rule, f.summary)?;
        }
    }
    let ids = operators.column("operator_id")?.str()?;
    let risk = operators.column("risk_score")?.f64()?;
    let hit = operators.column("rules_hit")?.str()?;
    let top: Vec<usize> = (0..operators.height()).filter(|i| risk.get(*i).unwrap_or(0.0) > 0.0).take(10).collect();
    if !top.is_empty() {
        writeln!(o)?;
        writeln!(o, "highest risk operators:")?;
        for i in top {
            writeln!(
                o,
                "  {:<16} risk {:.2}  {}",
                ids.get(i).unwrap_or(""),
                risk.get(i).unwrap_or(0.0),
                hit.get(i).unwrap_or("").replace(';', ", ")
            )?;
        }
    }
    for n in notes {
        writeln!(o, "note: {n}")?;
    }
    writeln!(o)?;
    writeln!(
        o,
        "outputs in {}: report.html findings.csv findings.jsonl alerts.jsonl suppressed.csv{} operators.csv shifts.csv crews.csv links.csv monitoring.csv graph.graphml groups.csv conversions.csv rejected.csv dossiers.json run.json timings.json manifest.json",
        out.display(),
        if t.resolved.is_some() { " resolved.csv" } else { "" }
    )?;
    Ok(())
}
