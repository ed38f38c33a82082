//! findings.jsonl and findings.csv: one schema for every rule.

use super::write_atomic;
use crate::rules::Finding;
use anyhow::Result;
use std::path::Path;

/// Both findings files, in the findings' order.
pub fn write_findings(out: &Path, findings: &[Finding], excel: bool) -> Result<()> {
    use crate::report::csv_safe::cell;
    use rayon::prelude::*;
    // Tens of thousands of findings are tens of MB of JSON: blocks of them are rendered to bytes in
    // parallel (a single writer thread was the longest part of writing a 10 M-row scan), then written
    // in order.
    let blocks: Vec<(Vec<u8>, Vec<u8>)> = findings
        .par_chunks(512)
        .map(|block| -> Result<(Vec<u8>, Vec<u8>)> {
            // each evidence object is rendered once, for both files (it is most of a finding's text)
            let evidence: Vec<String> = block.iter().map(|f| f.evidence.to_string()).collect();
            let mut jsonl = Vec::with_capacity(block.len() * 1024);
            for (f, ev) in block.iter().zip(&evidence) {
                f.write_jsonl(&mut jsonl, ev)?;
            }
            let mut c = csv::Writer::from_writer(Vec::with_capacity(block.len() * 1024));
            for (f, ev) in block.iter().zip(&evidence) {
                c.write_record([
                    f.rule,
                    f.severity.name(),
                    &cell(f.operator_id.as_deref().unwrap_or("")),
                    &cell(f.subject.as_deref().unwrap_or("")),
                    &f.window_start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    &f.window_end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    &format!("{:.2}", f.score),
                    &cell(&f.summary),
                    ev,
                ])?;
            }
            let csv = c.into_inner().map_err(|e| anyhow::anyhow!("findings.csv: {}", e.error()))?;
            Ok((jsonl, csv))
        })
        .collect::<Result<_>>()?;
    write_atomic(&out.join("findings.jsonl"), |w| {
        for (jsonl, _) in &blocks {
            w.write_all(jsonl)?;
        }
        Ok(())
    })?;
    write_atomic(&out.join("findings.csv"), |w| {
        if excel {
            w.write_all(b"\xEF\xBB\xBF")?;
        }
        let mut c = csv::Writer::from_writer(&mut *w);
        c.write_record([
            "rule",
            "severity",
            "operator_id",
            "subject",
            "window_start",
            "window_end",
            "score",
            "summary",
            "evidence",
        ])?;
        c.flush()?;
        drop(c);
        for (_, csv) in &blocks {
            w.write_all(csv)?;
        }
        Ok(())
    })
}
