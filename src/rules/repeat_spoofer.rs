use super::{CrossDayRule, DayHistory, RuleDoc, RuleOutput, streak_finding, streaks};
use crate::config::Config;
use anyhow::Result;
use serde_json::json;

pub struct RepeatSpoofer;

const DOC: &str = "\
repeat-spoofer: the same operator shows foreign caller IDs from home soil on many days.

A single day of spoofed-foreign-cli can be a misconfigured trunk; a seat that does it again and again
is working a caller-ID group on purpose. This rule counts the local days within the last
`window_days` days (ending on the last day audited) on which the operator had a spoofed-foreign-cli
finding, and flags at least `min_days`. Earlier days come from --history.

Score 0.7 at min_days, +0.1 per extra day (max 1.0). Evidence: each day with its spoofed call count
and which days came from history.
Example: operator seat-044 spoofed +44/+60 caller IDs on 3 of the last 7 days (41, 57 and 38 calls).";

impl RuleDoc for RepeatSpoofer {
    fn id(&self) -> &'static str {
        "repeat-spoofer"
    }
    fn summary(&self) -> &'static str {
        "Spoofed foreign caller IDs on many of the last N days, using --history"
    }
    fn explain(&self) -> &'static str {
        DOC
    }
    fn defaults(&self, cfg: &Config) -> String {
        let c = &cfg.rules.repeat_spoofer;
        format!("min_days = {}, window_days = {}", c.min_days, c.window_days)
    }
}

impl CrossDayRule for RepeatSpoofer {
    fn run(&self, days: &DayHistory, cfg: &Config) -> Result<RuleOutput> {
        let c = &cfg.rules.repeat_spoofer;
        let mut out = RuleOutput::default();
        for (op, hits, active) in streaks(days, c.window_days, c.min_days, |p| p.spoofed_calls > 0) {
            let n = hits.len();
            let total: u32 = hits.iter().map(|p| p.spoofed_calls).sum();
            let summary = format!(
                "Operator {op} showed spoofed foreign caller IDs on {n} of the last {} days (to {}), {total} calls in all.",
                c.window_days, days.as_of
            );
            let evidence = json!({
                "spoofing_days": n,
                "window_days": c.window_days,
                "as_of": days.as_of.to_string(),
                "spoofed_calls": total,
                "days_with_records": active,
                "days": hits.iter().map(|p| json!({
                    "date": p.date.to_string(),
                    "spoofed_calls": p.spoofed_calls,
                    "from_history": days.history_days.contains(&p.date),
                })).collect::<Vec<_>>(),
            });
            out.findings.push(streak_finding(self.id(), op, &hits, c.min_days, days, summary, evidence));
        }
        Ok(out)
    }
}
