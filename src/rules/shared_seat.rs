use super::{
    AuditInput, DayRule, Finding, Metric, OperatorRule, Partials, PerOperator, RuleDoc, RuleOutput, RulesConfig,
    Severity,
};
use crate::frame::{col_i64, col_str, local, round, utc};
use anyhow::Result;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub struct SharedSeat;

/// `[rules.shared_seat]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SharedSeatConfig {
    /// Minutes in one shift with two or more answered calls at once that make a finding. Default 15.
    pub min_concurrent_minutes: f64,
    /// Or: summed talk at least this many times the shift's wall-clock (union) talk. Default 1.5.
    pub min_summed_ratio: f64,
}

impl Default for SharedSeatConfig {
    fn default() -> Self {
        Self { min_concurrent_minutes: 15.0, min_summed_ratio: 1.5 }
    }
}

impl SharedSeatConfig {
    fn validate(&self) -> Result<()> {
        anyhow::ensure!(self.min_concurrent_minutes > 0.0, "rules.shared_seat.min_concurrent_minutes must be > 0");
        anyhow::ensure!(self.min_summed_ratio > 1.0, "rules.shared_seat.min_summed_ratio must be > 1");
        Ok(())
    }
}

/// The section as `config init` writes it.
pub const TOML: &str = r#"[rules.shared_seat]
min_concurrent_minutes = 15.0 # minutes in a shift with two or more answered calls at once
min_summed_ratio = 1.5        # or summed talk at least this many times the wall-clock talk

"#;

const METRICS: &[Metric] = &[
    Metric { name: "peak_concurrent_calls", dtype: DataType::Int64, places: 0 },
    Metric { name: "shared_seat_shifts", dtype: DataType::Int64, places: 0 },
];

pub const DOC: &str = "\
shared-seat: one seat carrying several answered calls at once

## What it does
Within each shift of a seat (extension, agent or SIP account), measures how many answered calls
were in talk at the same moment. A shift with at least `min_concurrent_minutes` (default 15) at two
or more calls at once, or whose summed talk is at least `min_summed_ratio` (default 1.5) times its
wall-clock talk (the union of the calls' talk intervals), is a finding: peak concurrency, when it
was first reached, minutes at two or more, summed and wall-clock talk, and the overlapping calls.
Unanswered attempts (a predictive dialer ringing many numbers at once) are not talk and never
count. Every shift, this one included, is judged by long-shift on its wall-clock talk, so a seat
shared by twelve people is never reported as one person talking 45 h.

## Why it matters
A department account or a SIP login handed around a call farm is used by several operators at
once. Its totals describe nobody: investigators must find out who sat there (login IPs, the
software's seat configuration, recordings) before any per-operator claim is made about it.

## Example
Seat 8001 carried up to 4 answered calls at once (first at 10:12), 3 h 10 min at two or more,
between 09:00 and 18:05: 14.2 h of summed talk in 6.1 h of wall-clock talk. high, score 0.8.
Near misses: an agent whose attended transfers overlap for 20 s a few times a day (4 min at two
calls) is not a finding; a dialer's overlapping unanswered attempts are not concurrency.

## Output
One finding per flagged shift (`window_start`/`window_end` = the shift) with its metrics and up to
20 references of the overlapping calls. shifts.csv has `peak_concurrent` and `talk_summed_h` for
every shift.";

impl RuleDoc for SharedSeat {
    fn id(&self) -> &'static str {
        "shared-seat"
    }
    fn summary(&self) -> &'static str {
        "one seat in several answered calls at once (>= 15 min at two or more in a shift): more than one person used it"
    }
    fn config_toml(&self) -> &'static str {
        TOML
    }
    fn validate(&self, cfg: &RulesConfig) -> Result<()> {
        cfg.shared_seat.validate()
    }
    fn explain(&self) -> &'static str {
        DOC
    }
    fn metrics(&self) -> &'static [Metric] {
        METRICS
    }
    fn defaults(&self, cfg: &RulesConfig) -> String {
        let c = &cfg.shared_seat;
        format!("min_concurrent_minutes = {}, min_summed_ratio = {}", c.min_concurrent_minutes, c.min_summed_ratio)
    }
}

impl DayRule for SharedSeat {
    fn partials<'a>(&'a self, cfg: &'a RulesConfig, parts: u32) -> Box<dyn Partials + 'a> {
        PerOperator::boxed(self, cfg, parts)
    }
}

impl SharedSeat {
    /// Whether a shift's measures make a finding.
    fn flags(c: &SharedSeatConfig, concurrent_s: i64, summed_s: i64, union_s: i64) -> bool {
        concurrent_s as f64 >= c.min_concurrent_minutes * 60.0
            || (union_s > 0 && summed_s as f64 >= c.min_summed_ratio * union_s as f64 && concurrent_s > 0)
    }
}

impl OperatorRule for SharedSeat {
    fn run(&self, input: &AuditInput, cfg: &RulesConfig) -> Result<RuleOutput> {
        let c = &cfg.shared_seat;
        let sh = &input.shifts;
        let (ops, start, end) =
            (col_str(sh, "operator_id")?, col_i64(sh, "shift_start_us")?, col_i64(sh, "shift_end_us")?);
        let (union, summed) = (col_i64(sh, "talk_s")?, col_i64(sh, "talk_sum_s")?);
        let (conc, peak_at) = (col_i64(sh, "concurrent_s")?, col_i64(sh, "peak_at_us")?);
        let peak = col_i64(sh, "peak_concurrent")?;
        let (first, calls) = (col_i64(sh, "first_row")?, col_i64(sh, "calls")?);
        let mut findings = Vec::new();
        let mut flagged_of: std::collections::HashMap<&str, i64> = Default::default();
        for i in 0..sh.height() {
            let (u, s_, cs) = (union.get(i).unwrap_or(0), summed.get(i).unwrap_or(0), conc.get(i).unwrap_or(0));
            if !Self::flags(c, cs, s_, u) {
                continue;
            }
            let op = ops.get(i).unwrap_or_default();
            *flagged_of.entry(op).or_default() += 1;
            let (s, e) = (start.get(i).unwrap_or(0), end.get(i).unwrap_or(0));
            let p = peak.get(i).unwrap_or(0);
            let at = peak_at.get(i).unwrap_or(s);
            let score = round((0.6 + 0.1 * (p - 2) as f64).clamp(0.6, 1.0), 2);
            let rows =
                first.get(i).unwrap_or(0) as usize..(first.get(i).unwrap_or(0) + calls.get(i).unwrap_or(0)) as usize;
            let refs = overlapping_refs(input, rows)?;
            let summary = format!(
                "Seat {op} carried up to {p} answered calls at once (first at {}), {} min at two or more, between {} and {}: {:.1} h of summed talk in {:.1} h of wall-clock talk. More than one person used this seat.",
                local(at, input.tz),
                cs / 60,
                local(s, input.tz),
                local(e, input.tz),
                s_ as f64 / 3600.0,
                u as f64 / 3600.0,
            );
            findings.push(Finding {
                rule: self.id(),
                severity: Severity::from_score(score),
                operator_id: Some(op.to_string()),
                subject: None,
                window_start: utc(s),
                window_end: utc(e),
                score,
                summary,
                evidence: json!({
                    "peak_concurrent": p,
                    "peak_at": crate::frame::utc(at).to_rfc3339(),
                    "concurrent_minutes": round(cs as f64 / 60.0, 1),
                    "talk_summed_hours": round(s_ as f64 / 3600.0, 2),
                    "talk_wall_clock_hours": round(u as f64 / 3600.0, 2),
                    "calls": calls.get(i),
                    "overlapping_calls_ref": refs,
                }),
                fact: None,
            });
        }
        let metrics = sh
            .clone()
            .lazy()
            .group_by([col("operator_id")])
            .agg([col("peak_concurrent").max().cast(DataType::Int64).alias("peak_concurrent_calls")])
            .collect()?;
        let flagged: Vec<i64> = col_str(&metrics, "operator_id")?
            .iter()
            .map(|o| flagged_of.get(o.unwrap_or("")).copied().unwrap_or(0))
            .collect();
        let mut metrics = metrics;
        metrics.with_column(Column::new("shared_seat_shifts".into(), flagged))?;
        Ok(RuleOutput { findings, operator_metrics: Some(metrics), ..Default::default() })
    }
}

/// The references of a shift's answered calls whose talk overlaps another's, in start order (up
/// to 20).
fn overlapping_refs(input: &AuditInput, rows: std::ops::Range<usize>) -> Result<Vec<String>> {
    let cdr = &input.cdr;
    let refs = col_str(cdr, "ref")?;
    let (ans, talk, end) = (col_i64(cdr, "answer_us")?, col_i64(cdr, "talk_s")?, col_i64(cdr, "end_us")?);
    let mut iv: Vec<(i64, i64, usize)> = rows
        .filter_map(|i| {
            let t = talk.get(i).filter(|t| *t > 0)? * 1_000_000;
            let a = ans.get(i).or_else(|| Some(end.get(i)? - t))?;
            Some((a, a + t, i))
        })
        .collect();
    iv.sort_unstable();
    let mut hit = vec![false; iv.len()];
    let (mut max_end, mut max_k) = (i64::MIN, 0usize);
    for (k, &(a, b, _)) in iv.iter().enumerate() {
        if a < max_end {
            hit[k] = true;
            hit[max_k] = true;
        }
        if b > max_end {
            (max_end, max_k) = (b, k);
        }
    }
    Ok(iv
        .iter()
        .zip(hit)
        .filter(|(_, h)| *h)
        .filter_map(|((_, _, i), _)| refs.get(*i).map(str::to_string))
        .take(20)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_concurrency_not_brief_overlap() {
        let c = SharedSeatConfig::default();
        assert!(SharedSeat::flags(&c, 16 * 60, 7 * 3600, 6 * 3600));
        assert!(!SharedSeat::flags(&c, 4 * 60, 6 * 3600, 6 * 3600 - 240));
        // summed talk far above the wall clock
        assert!(SharedSeat::flags(&c, 10 * 60, 3 * 3600, 3600));
        assert!(!SharedSeat::flags(&c, 0, 0, 0));
    }
}
