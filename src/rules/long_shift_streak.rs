use super::{CrossDayRule, DayHistory, RuleDoc, RuleOutput, RulesConfig, StreakConfig, streak_finding, streaks};
use anyhow::Result;
use serde_json::json;

pub struct LongShiftStreak;

/// The section's defaults.
pub const DEFAULT: StreakConfig = StreakConfig { min_days: 5, window_days: 7 };

/// The section as `config init` writes it.
pub const TOML: &str = r#"[rules.long_shift_streak]
min_days = 5                   # days with a long shift (above) ...
window_days = 7                # ... within this many local days ending on the last day audited

"#;

const DOC: &str = "\
long-shift-streak: the same operator works long shifts day after day.

## What it does
Counts the local days on which the operator had a long-shift finding (rule long-shift) within the
last `window_days` days (default 7), ending on the last day audited, and flags at least `min_days`
(default 5) of them. Days before this run's CDRs come from --history (per-operator day profiles
written by earlier runs), so a nightly run over yesterday's CDRs still sees the week.
Score 0.7 at min_days, +0.1 per extra day (max 1.0). Evidence: each day with its talk hours, how many
days of the window had any record of the operator, and which days came from history.

## Why it matters
One 8-10 h day can be a busy call centre; the diversion operator is paid a day rate for 8-10 h of
talk and comes back the next day and the next.

## Example
Operator seat-017 with 8.6, 9.1, 8.2, 9.4, 8.8 h on 5 of the last 7 days: medium, score 0.7.";

impl RuleDoc for LongShiftStreak {
    fn id(&self) -> &'static str {
        "long-shift-streak"
    }
    fn summary(&self) -> &'static str {
        "Long shifts (8-10 h talk) on many of the last N days, using --history"
    }
    fn config_toml(&self) -> &'static str {
        TOML
    }
    fn validate(&self, cfg: &RulesConfig) -> Result<()> {
        cfg.long_shift_streak.validate("long_shift_streak")
    }
    fn explain(&self) -> &'static str {
        DOC
    }
    fn defaults(&self, cfg: &RulesConfig) -> String {
        let c = &cfg.long_shift_streak;
        format!("min_days = {}, window_days = {}", c.min_days, c.window_days)
    }
}

impl CrossDayRule for LongShiftStreak {
    fn window_days(&self, cfg: &RulesConfig) -> u32 {
        cfg.long_shift_streak.window_days
    }
    fn run(&self, days: &DayHistory, cfg: &RulesConfig) -> Result<RuleOutput> {
        let c = &cfg.long_shift_streak;
        let mut out = RuleOutput::default();
        for (op, hits, active) in streaks(days, c.window_days, c.min_days, |p| p.long_shift) {
            let n = hits.len();
            let list: Vec<String> = hits.iter().map(|p| format!("{} ({:.1} h)", p.date, p.max_shift_talk_h)).collect();
            let summary = format!(
                "Operator {op} had a long shift on {n} of the last {} days (to {}): {}.",
                c.window_days,
                days.as_of,
                list.join(", ")
            );
            let evidence = json!({
                "long_shift_days": n,
                "window_days": c.window_days,
                "as_of": days.as_of.to_string(),
                "days_with_records": active,
                "days": hits.iter().map(|p| json!({
                    "date": p.date.to_string(),
                    "max_shift_talk_h": p.max_shift_talk_h,
                    "talk_h": p.talk_h,
                    "from_history": days.history_days.contains(&p.date),
                })).collect::<Vec<_>>(),
            });
            out.findings.push(streak_finding(self.id(), op, &hits, c.min_days, days, summary, evidence));
        }
        Ok(out)
    }
}
