use super::{CrossDayRule, DayHistory, RuleDoc, RuleOutput, RulesConfig, StreakConfig, streak_finding, streaks};
use anyhow::Result;
use serde_json::json;

pub struct RepeatSpoofer;

/// The section's defaults.
pub const DEFAULT: StreakConfig = StreakConfig { min_days: 3, window_days: 7 };

/// The section as `config init` writes it.
pub const TOML: &str = r#"[rules.repeat_spoofer]
min_days = 3                   # days with a spoofed-foreign-cli finding ...
window_days = 7                # ... within this many local days (earlier days from --history)

"#;

const DOC: &str = "\
repeat-spoofer: the same operator shows foreign caller IDs from home soil on many days.

## What it does
Counts the local days within the last `window_days` days (default 7, ending on the last day
audited) on which the operator had a spoofed-foreign-cli finding, and flags at least `min_days`
(default 3). Earlier days come from --history.
Score 0.7 at min_days, +0.1 per extra day (max 1.0). Evidence: each day with its spoofed call count
and which days came from history.

## Why it matters
A single day of spoofed-foreign-cli can be a misconfigured trunk; a seat that does it again and again
is working a caller-ID group on purpose.

## Example
Operator seat-044 spoofed +44/+60 caller IDs on 3 of the last 7 days (41, 57 and 38 calls): medium.";

impl RuleDoc for RepeatSpoofer {
    fn id(&self) -> &'static str {
        "repeat-spoofer"
    }
    fn summary(&self) -> &'static str {
        "Spoofed foreign caller IDs on many of the last N days, using --history"
    }
    fn config_toml(&self) -> &'static str {
        TOML
    }
    fn validate(&self, cfg: &RulesConfig) -> Result<()> {
        cfg.repeat_spoofer.validate("repeat_spoofer")
    }
    fn explain(&self) -> &'static str {
        DOC
    }
    fn defaults(&self, cfg: &RulesConfig) -> String {
        let c = &cfg.repeat_spoofer;
        format!("min_days = {}, window_days = {}", c.min_days, c.window_days)
    }
}

impl CrossDayRule for RepeatSpoofer {
    fn window_days(&self, cfg: &RulesConfig) -> u32 {
        cfg.repeat_spoofer.window_days
    }
    fn run(&self, days: &DayHistory, cfg: &RulesConfig) -> Result<RuleOutput> {
        let c = &cfg.repeat_spoofer;
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
