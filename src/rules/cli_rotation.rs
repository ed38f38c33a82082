use super::{
    AuditInput, DayFact, DayRule, Finding, Metric, OperatorRule, Partials, PerOperator, RuleDoc, RuleOutput,
    RulesConfig, Severity,
};
use crate::frame::{Chunks, local, round, utc};
use crate::load::legs::OUTBOUND;
use anyhow::Result;
use polars::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub struct CliRotation;

/// `[rules.cli_rotation]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RotationConfig {
    /// Outbound calls with a caller ID a shift needs before it is judged. Default 20.
    pub min_calls: u32,
    /// Distinct caller IDs shown in the shift. Default 5.
    pub min_distinct: u32,
    /// Share of consecutive calls whose caller ID differs from the call before. Default 0.5.
    pub min_change_share: f64,
}

impl Default for RotationConfig {
    fn default() -> Self {
        Self { min_calls: 20, min_distinct: 5, min_change_share: 0.5 }
    }
}

pub const TOML: &str = r#"[rules.cli_rotation]
min_calls = 20              # outbound calls with a caller ID a shift needs to be judged
min_distinct = 5            # distinct caller IDs shown in the shift
min_change_share = 0.5      # share of consecutive calls whose caller ID changed

"#;

const METRICS: &[Metric] = &[
    Metric { name: "max_shift_clis", dtype: DataType::Int64, places: 0 },
    Metric { name: "cli_change_share", dtype: DataType::Float64, places: 3 },
    Metric { name: "rotating_shifts", dtype: DataType::Int64, places: 0 },
];

pub const DOC: &str = "\
cli-rotation: a seat cycling through a pool of caller IDs within a shift

## What it does
For each seat and shift, over its outbound calls that show a caller ID: how many distinct caller
IDs it showed, and how often the caller ID changed from one call to the next. A shift with at
least min_calls (20) such calls, min_distinct (5) caller IDs and a change share of at least
min_change_share (0.5) is a rotating shift; a seat with one is a finding (one per seat, every
rotating shift in its evidence with the pool shown).

## Why it matters
Call-farm software has caller-ID groups (主叫分组): a crew's seats draw a different number from
a shared pool for each call, so that no number is blocked or called back. A legitimate centre
shows its one company number (or one per team or region) and never changes it call by call.
crews.csv lists the pool a crew shares (shared_clis).

## Example
Seat 2003 showed 9 caller IDs over 212 outbound calls on 2026-03-02 08:02-17:40, changing on 88 %
of calls.
";

impl RuleDoc for CliRotation {
    fn id(&self) -> &'static str {
        "cli-rotation"
    }
    fn summary(&self) -> &'static str {
        "a seat cycling through a pool of caller IDs within a shift"
    }
    fn explain(&self) -> &'static str {
        DOC
    }
    fn defaults(&self, cfg: &RulesConfig) -> String {
        let c = &cfg.cli_rotation;
        format!(
            "min_calls = {}, min_distinct = {}, min_change_share = {}",
            c.min_calls, c.min_distinct, c.min_change_share
        )
    }
    fn metrics(&self) -> &'static [Metric] {
        METRICS
    }
    fn config_toml(&self) -> &'static str {
        TOML
    }
    fn validate(&self, cfg: &RulesConfig) -> Result<()> {
        let c = &cfg.cli_rotation;
        anyhow::ensure!(c.min_distinct >= 2, "rules.cli_rotation.min_distinct must be at least 2");
        anyhow::ensure!(
            c.min_change_share > 0.0 && c.min_change_share <= 1.0,
            "rules.cli_rotation.min_change_share must be in (0, 1]"
        );
        Ok(())
    }
}

impl DayRule for CliRotation {
    fn partials<'a>(&'a self, cfg: &'a RulesConfig, parts: u32) -> Box<dyn Partials + 'a> {
        PerOperator::boxed(self, cfg, parts)
    }
}

/// One shift's caller IDs.
struct ShiftClis {
    start_us: i64,
    end_us: i64,
    calls: u32,
    changes: u32,
    /// (caller ID number, calls), most used first.
    pool: Vec<(u64, u32)>,
    /// Rows of its first calls (their references are read only for a finding).
    rows: Vec<usize>,
}

impl ShiftClis {
    fn change_share(&self) -> f64 {
        f64::from(self.changes) / f64::from(self.calls.saturating_sub(1).max(1))
    }
}

impl OperatorRule for CliRotation {
    fn run(&self, input: &AuditInput, cfg: &RulesConfig) -> Result<RuleOutput> {
        let c = &cfg.cli_rotation;
        let cdr = &input.cdr;
        let (dir, cli, shift, start, reference) = (
            Chunks::new(cdr.column("direction")?.u32()?),
            Chunks::new(cdr.column("caller_num")?.u64()?),
            Chunks::new(cdr.column("shift_no")?.u32()?),
            Chunks::new(cdr.column("start_us")?.i64()?),
            Chunks::new(cdr.column("ref")?.str()?),
        );
        let ranges = crate::prepare::ranges_in_order(input);
        let per_op: Vec<(String, Vec<ShiftClis>)> = ranges
            .par_iter()
            .map(|(op, r)| {
                let (mut dir, mut cli, mut shift, mut start) = (dir.rows(), cli.rows(), shift.rows(), start.rows());
                let mut shifts: Vec<ShiftClis> = Vec::new();
                let (mut cur, mut last) = (None::<u32>, None::<u64>);
                // a shift shows a handful of caller IDs: a list searched from the last one used is
                // cheaper than a hash map
                let mut counts: Vec<(u64, u32)> = Vec::new();
                let close = |shifts: &mut Vec<ShiftClis>, counts: &mut Vec<(u64, u32)>| {
                    if let Some(s) = shifts.last_mut() {
                        let mut pool: Vec<(u64, u32)> = std::mem::take(counts);
                        pool.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                        s.pool = pool;
                    }
                };
                for i in r.clone() {
                    if dir.get(i) != Some(OUTBOUND) {
                        continue;
                    }
                    let Some(n) = cli.get(i) else { continue };
                    let (s, t) = (shift.get(i).unwrap_or(0), start.get(i).unwrap_or(0));
                    if cur != Some(s) {
                        close(&mut shifts, &mut counts);
                        shifts.push(ShiftClis {
                            start_us: t,
                            end_us: t,
                            calls: 0,
                            changes: 0,
                            pool: Vec::new(),
                            rows: Vec::new(),
                        });
                        cur = Some(s);
                        last = None;
                    }
                    let sh = shifts.last_mut().expect("pushed");
                    sh.calls += 1;
                    sh.end_us = t;
                    if last.is_some_and(|l| l != n) {
                        sh.changes += 1;
                    }
                    if sh.rows.len() < 5 {
                        sh.rows.push(i);
                    }
                    last = Some(n);
                    match counts.iter_mut().rev().find(|c| c.0 == n) {
                        Some(c) => c.1 += 1,
                        None => counts.push((n, 1)),
                    }
                }
                close(&mut shifts, &mut counts);
                (op.to_string(), shifts)
            })
            .collect();
        let judged = |s: &ShiftClis| s.calls >= c.min_calls;
        let rotating = |s: &ShiftClis| {
            judged(s) && s.pool.len() as u32 >= c.min_distinct && s.change_share() >= c.min_change_share
        };
        let mut findings = Vec::new();
        let (mut ops, mut max_clis, mut share, mut nrot) = (vec![], vec![], vec![], vec![]);
        for (op, shifts) in &per_op {
            ops.push(op.clone());
            max_clis.push(shifts.iter().filter(|s| judged(s)).map(|s| s.pool.len() as i64).max().unwrap_or(0));
            share.push(shifts.iter().filter(|s| judged(s)).map(ShiftClis::change_share).fold(0.0, f64::max));
            let hits: Vec<&ShiftClis> = shifts.iter().filter(|s| rotating(s)).collect();
            nrot.push(hits.len() as i64);
            if let Some(f) = self.finding(op, &hits, input.tz, &reference) {
                findings.push(f);
            }
        }
        let metrics = DataFrame::new(
            ops.len(),
            vec![
                Column::new("operator_id".into(), ops),
                Column::new("max_shift_clis".into(), max_clis),
                Column::new("cli_change_share".into(), share),
                Column::new("rotating_shifts".into(), nrot),
            ],
        )?;
        Ok(RuleOutput { findings, operator_metrics: Some(metrics), ..Default::default() })
    }
}

impl CliRotation {
    fn finding(
        &self,
        op: &str,
        hits: &[&ShiftClis],
        tz: chrono_tz::Tz,
        refs: &Chunks<'_, StringType>,
    ) -> Option<Finding> {
        let mut refs = refs.rows();
        let worst = hits
            .iter()
            .max_by(|a, b| a.pool.len().cmp(&b.pool.len()).then(a.change_share().total_cmp(&b.change_share())))?;
        let pool: std::collections::BTreeSet<u64> = hits.iter().flat_map(|s| s.pool.iter().map(|p| p.0)).collect();
        let score = round(
            (0.5 + 0.05 * worst.pool.len().min(10) as f64 + 0.05 * (hits.len() as f64 - 1.0).min(4.0)).min(1.0),
            2,
        );
        let summary = format!(
            "Seat {op} showed {} caller IDs over {} outbound calls from {} to {}, changing on {:.0} % of calls ({} rotating shift(s), {} caller IDs in all).",
            worst.pool.len(),
            worst.calls,
            local(worst.start_us, tz),
            local(worst.end_us, tz),
            worst.change_share() * 100.0,
            hits.len(),
            pool.len()
        );
        // the first five rotating shifts (a seat rotates every shift: the rest say nothing new)
        let shifts: Vec<serde_json::Value> = hits
            .iter()
            .take(5)
            .map(|s| {
                json!({
                    "start": local(s.start_us, tz),
                    "calls": s.calls,
                    "distinct_clis": s.pool.len(),
                    "change_share": round(s.change_share(), 3),
                    "pool": s.pool.iter().take(12).map(|(n, k)| json!({"cli": format!("+{n}"), "calls": k})).collect::<Vec<_>>(),
                    "calls_ref": s.rows.iter().map(|i| refs.get(*i).unwrap_or("")).collect::<Vec<_>>(),
                })
            })
            .collect();
        let first = hits.iter().map(|s| s.start_us).min().unwrap_or(0);
        let last = hits.iter().map(|s| s.end_us).max().unwrap_or(0);
        Some(Finding {
            rule: "cli-rotation",
            severity: Severity::from_score(score),
            operator_id: Some(op.to_string()),
            subject: None,
            window_start: utc(first),
            window_end: utc(last),
            score,
            summary,
            evidence: json!({
                "rotating_shifts": hits.len(),
                "distinct_clis": pool.len(),
                "pool": pool.iter().take(50).map(|n| format!("+{n}")).collect::<Vec<_>>(),
                "shifts": shifts,
            }),
            fact: Some(DayFact::on(utc(worst.start_us).with_timezone(&tz).date_naive())),
        })
    }
}
