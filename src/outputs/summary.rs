//! The summary a scan prints on stdout.

use crate::load::Loaded;
use crate::rules::{self, Finding, Severity};
use anyhow::Result;
use polars::prelude::*;
use std::io::Write;
use std::path::Path;

/// Rows read, per rule its findings, the highest-risk operators, the notes, where the outputs are.
pub fn summary(
    o: &mut dyn Write,
    loaded: &Loaded,
    findings: &[Finding],
    operators: &DataFrame,
    notes: &[String],
    out: &Path,
    with_sms: bool,
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
    writeln!(o, "{:<26} {:>8} {:>9} {:>6} {:>6} {:>6}", "rule", "findings", "operators", "high", "medium", "low")?;
    for r in rules::scan_ids(with_sms).into_iter().filter_map(rules::find_doc) {
        let fs: Vec<&Finding> = findings.iter().filter(|f| f.rule == r.id()).collect();
        let mut ops: Vec<&str> = fs.iter().filter_map(|f| f.operator_id.as_deref()).collect();
        ops.sort_unstable();
        ops.dedup();
        let n = |s: Severity| fs.iter().filter(|f| f.severity == s).count();
        writeln!(
            o,
            "{:<26} {:>8} {:>9} {:>6} {:>6} {:>6}",
            r.id(),
            fs.len(),
            ops.len(),
            n(Severity::High),
            n(Severity::Medium),
            n(Severity::Low)
        )?;
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
        "outputs in {}: report.html findings.csv findings.jsonl operators.csv shifts.csv crews.csv links.csv monitoring.csv graph.graphml groups.csv conversions.csv rejected.csv dossiers.json run.json timings.json",
        out.display()
    )?;
    Ok(())
}
