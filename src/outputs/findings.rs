//! findings.jsonl and findings.csv: one schema for every rule; and the files beside them that a
//! desk works from: suppressed.csv (what the allowlist moved aside), alerts.jsonl (the new
//! findings at or above a severity) and resolved.csv (gone since the previous audited day).

use super::write_atomic;
use crate::rules::{Finding, Severity};
use crate::triage::{Resolved, Status, Suppressed, Triage};
use anyhow::Result;
use std::path::Path;

/// findings.csv's columns: `status` and `first_seen` (a scan's; empty for `cards`) come last so
/// readers by position keep working.
pub const COLUMNS: [&str; 11] = [
    "rule",
    "severity",
    "operator_id",
    "subject",
    "window_start",
    "window_end",
    "score",
    "summary",
    "evidence",
    "status",
    "first_seen",
];

/// suppressed.csv: findings.csv's columns, then the entry that matched.
const ALLOW_COLUMNS: [&str; 6] =
    ["allow_kind", "allow_value", "allow_reason", "allow_author", "allow_expires", "allow_source"];

fn rfc(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// One findings.csv record.
fn record(f: &Finding, ev: &str, t: Option<&Triage>) -> [String; 11] {
    use crate::report::csv_safe::cell;
    [
        f.rule.to_string(),
        f.severity.name().to_string(),
        cell(f.operator_id.as_deref().unwrap_or("")).to_string(),
        cell(f.subject.as_deref().unwrap_or("")).to_string(),
        rfc(&f.window_start),
        rfc(&f.window_end),
        format!("{:.2}", f.score),
        cell(&f.summary).to_string(),
        ev.to_string(),
        t.map(|t| t.status.name().to_string()).unwrap_or_default(),
        t.map(|t| t.first_seen.to_string()).unwrap_or_default(),
    ]
}

const BLOCK: usize = 512;

/// One block's findings.jsonl, findings.csv and alerts.jsonl bytes, and its alerts.
type Block = (Vec<u8>, Vec<u8>, Vec<u8>, usize);

/// A block of findings rendered (`triage` starts at the block's first finding).
fn render_block(block: &[Finding], triage: Option<&[Triage]>, alerts: Option<Severity>) -> Result<Block> {
    let tri = |i: usize| triage.and_then(|t| t.get(i));
    // each evidence object is rendered once, for both files (it is most of a finding's text)
    let evidence: Vec<String> = block.iter().map(|f| f.evidence.to_string()).collect();
    let mut jsonl = Vec::with_capacity(block.len() * 1024);
    let (mut alert, mut n) = (Vec::new(), 0);
    for (i, (f, ev)) in block.iter().zip(&evidence).enumerate() {
        let at = jsonl.len();
        f.write_jsonl(&mut jsonl, ev, tri(i).map(|t| (t.status.name(), t.first_seen)))?;
        if let (Some(min), Some(t)) = (alerts, tri(i))
            && t.status == Status::New
            && f.severity >= min
        {
            // the object opened anew (0x7b: no brace in the text, which tests/architecture.rs counts)
            alert.push(0x7b);
            alert.extend_from_slice(b"\"alert_id\":\"");
            alert.extend_from_slice(alert_id(f).as_bytes());
            alert.extend_from_slice(b"\",");
            alert.extend_from_slice(&jsonl[at + 1..]);
            n += 1;
        }
    }
    let mut c = csv::Writer::from_writer(Vec::with_capacity(block.len() * 1024));
    for (i, (f, ev)) in block.iter().zip(&evidence).enumerate() {
        c.write_record(record(f, ev, tri(i)))?;
    }
    let csv = c.into_inner().map_err(|e| anyhow::anyhow!("findings.csv: {}", e.error()))?;
    Ok((jsonl, csv, alert, n))
}

/// Both findings files, in the findings' order; `triage` is aligned with `findings` when given.
/// With `alerts` (a minimum severity; needs `triage`) also alerts.jsonl: the new findings at or
/// above it, findings.jsonl's object with an `alert_id` first (an empty file when there are none).
/// Returns how many alerts.
pub fn write_findings(
    out: &Path,
    findings: &[Finding],
    triage: Option<&[Triage]>,
    alerts: Option<Severity>,
    excel: bool,
) -> Result<usize> {
    use rayon::prelude::*;
    // Tens of thousands of findings are tens of MB of JSON: blocks of them are rendered to bytes in
    // parallel (a single writer thread was the longest part of writing a 10 M-row scan), then written
    // in order; an alert reuses its finding's rendered line.
    let blocks: Vec<Block> = findings
        .par_chunks(BLOCK)
        .enumerate()
        .map(|(b, block)| render_block(block, triage.map(|t| &t[(b * BLOCK).min(t.len())..]), alerts))
        .collect::<Result<_>>()?;
    write_atomic(&out.join("findings.jsonl"), |w| {
        for (jsonl, ..) in &blocks {
            w.write_all(jsonl)?;
        }
        Ok(())
    })?;
    write_atomic(&out.join("findings.csv"), |w| {
        if excel {
            w.write_all(b"\xEF\xBB\xBF")?;
        }
        let mut c = csv::Writer::from_writer(&mut *w);
        c.write_record(COLUMNS)?;
        c.flush()?;
        drop(c);
        for (_, csv, ..) in &blocks {
            w.write_all(csv)?;
        }
        Ok(())
    })?;
    if alerts.is_none() {
        return Ok(0);
    }
    write_atomic(&out.join("alerts.jsonl"), |w| {
        for (_, _, alert, _) in &blocks {
            w.write_all(alert)?;
        }
        Ok(())
    })?;
    Ok(blocks.iter().map(|b| b.3).sum())
}

/// suppressed.csv: every finding the allowlist covered, with the entry (header only when none).
pub fn write_suppressed(out: &Path, suppressed: &[Suppressed], excel: bool) -> Result<()> {
    use crate::report::csv_safe::cell;
    write_atomic(&out.join("suppressed.csv"), |w| {
        if excel {
            w.write_all(b"\xEF\xBB\xBF")?;
        }
        let mut c = csv::Writer::from_writer(w);
        c.write_record(COLUMNS.iter().chain(ALLOW_COLUMNS.iter()))?;
        for s in suppressed {
            let (f, e) = (&s.finding, &s.entry);
            let mut r = record(f, &f.evidence.to_string(), Some(&s.triage)).to_vec();
            r.extend([
                e.kind.name().to_string(),
                cell(&e.value).to_string(),
                cell(&e.reason).to_string(),
                cell(&e.author).to_string(),
                e.expires.to_string(),
                cell(&e.source).to_string(),
            ]);
            c.write_record(&r)?;
        }
        c.flush()?;
        Ok(())
    })
}

/// A stable id for a finding (rule, operator, subject, window start), for a ticketing system to
/// deduplicate on.
pub fn alert_id(f: &Finding) -> String {
    let k = format!(
        "{}\u{1f}{}\u{1f}{}\u{1f}{}",
        f.rule,
        f.operator_id.as_deref().unwrap_or(""),
        f.subject.as_deref().unwrap_or(""),
        rfc(&f.window_start)
    );
    super::manifest::sha256_bytes(k.as_bytes())[..16].to_string()
}

/// resolved.csv: findings of the previous audited day that this run did not find again.
pub fn write_resolved(out: &Path, resolved: &[Resolved], excel: bool) -> Result<()> {
    use crate::report::csv_safe::cell;
    write_atomic(&out.join("resolved.csv"), |w| {
        if excel {
            w.write_all(b"\xEF\xBB\xBF")?;
        }
        let mut c = csv::Writer::from_writer(w);
        c.write_record(["rule", "operator_id", "subject", "severity", "first_seen", "last_seen"])?;
        for r in resolved {
            c.write_record([
                r.rule.as_str(),
                &cell(r.operator_id.as_deref().unwrap_or("")),
                &cell(r.subject.as_deref().unwrap_or("")),
                r.severity.as_str(),
                &r.first_seen.to_string(),
                &r.last_seen.to_string(),
            ])?;
        }
        c.flush()?;
        Ok(())
    })
}
