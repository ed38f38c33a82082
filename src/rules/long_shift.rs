use super::{
    AuditInput, DayFact, DayRule, Finding, Metric, OperatorRule, Partials, PerOperator, RuleDoc, RuleOutput,
    RulesConfig, Severity,
};
use crate::frame::{col_f64, col_i64, col_str, local, round, utc};
use anyhow::Result;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub struct LongShift;

/// `[rules.long_shift]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LongShiftConfig {
    /// A gap between calls longer than this starts a new shift (minutes). Default 120.
    pub shift_break_minutes: i64,
    /// A shift with at least this much talk is a finding (hours). Default 8.
    pub min_talk_hours: f64,
    /// The paid-quota band of talk hours that scores highest. Default [8, 10].
    pub quota_band_hours: [f64; 2],
}

impl Default for LongShiftConfig {
    fn default() -> Self {
        Self { shift_break_minutes: 120, min_talk_hours: 8.0, quota_band_hours: [8.0, 10.0] }
    }
}

impl LongShiftConfig {
    fn validate(&self) -> Result<()> {
        anyhow::ensure!(self.shift_break_minutes > 0, "rules.long_shift.shift_break_minutes must be > 0");
        anyhow::ensure!(self.min_talk_hours > 0.0, "rules.long_shift.min_talk_hours must be > 0");
        anyhow::ensure!(
            self.quota_band_hours[0] <= self.quota_band_hours[1],
            "rules.long_shift.quota_band_hours must be [low, high]"
        );
        Ok(())
    }
}

/// The section as `config init` writes it.
pub const TOML: &str = r#"[rules.long_shift]
shift_break_minutes = 120     # a longer gap between calls starts a new shift
min_talk_hours = 8.0          # a shift with at least this much talk is a finding
quota_band_hours = [8.0, 10.0] # the paid quota band (8-10 h of talk a day) scores highest

"#;

const METRICS: &[Metric] = &[
    Metric { name: "shifts", dtype: DataType::Int64, places: 0 },
    Metric { name: "flagged_shifts", dtype: DataType::Int64, places: 0 },
    Metric { name: "longest_shift_talk_h", dtype: DataType::Float64, places: 2 },
];

pub const DOC: &str = "\
long-shift: operator shifts with 8-10 hours of talk time

## What it does
Splits each operator's calls into shifts: a gap longer than `shift_break_minutes` (default 120)
between the end of the calls so far and the next call starts a new shift, so a night shift from
20:00 to 08:00 is one shift, not two half-days. A shift whose summed talk time (billsec) reaches
`min_talk_hours` (default 8) is a finding. Talk inside the paid-quota band `quota_band_hours`
(default 8-10 h) scores highest; each further day with a flagged shift raises the score.

## Why it matters
Diversion operators are paid about 200 yuan a day once they reach 8-10 hours of talk time on the
overseas VoIP software, and they stop soon after. Legitimate agents rarely exceed about 6 hours of
pure talk in a shift; 8-10 hours, day after day, is the quota's fingerprint.

## Example
Operator op00012 talked 9.1 h in one shift from 2026-03-02 20:14 to 2026-03-03 08:02 (287 calls,
172 answered, 86 % occupancy) and on 3 more days: high, score 1.0.
Near misses: 7.9 h of talk is not a finding; two blocks of 4.5 h separated by 2 h 1 min are two
shifts, neither a finding.

## Output
One finding per flagged shift (`window_start`/`window_end` = the shift), with its metrics, the
per-day talk totals of the operator and up to 20 call references. Every shift is in shifts.csv.";

impl RuleDoc for LongShift {
    fn id(&self) -> &'static str {
        "long-shift"
    }
    fn summary(&self) -> &'static str {
        "shifts (gap-split, across midnight) with 8-10 h of talk time, scored up when repeated on several days"
    }
    fn config_toml(&self) -> &'static str {
        TOML
    }
    fn validate(&self, cfg: &RulesConfig) -> Result<()> {
        cfg.long_shift.validate()
    }
    fn explain(&self) -> &'static str {
        DOC
    }
    fn metrics(&self) -> &'static [Metric] {
        METRICS
    }
    fn defaults(&self, cfg: &RulesConfig) -> String {
        let c = &cfg.long_shift;
        format!(
            "shift_break_minutes = {}, min_talk_hours = {}, quota_band_hours = [{}, {}]",
            c.shift_break_minutes, c.min_talk_hours, c.quota_band_hours[0], c.quota_band_hours[1]
        )
    }
}

impl DayRule for LongShift {
    fn partials<'a>(&'a self, cfg: &'a RulesConfig, parts: u32) -> Box<dyn Partials + 'a> {
        PerOperator::boxed(self, cfg, parts)
    }
}

impl OperatorRule for LongShift {
    fn run(&self, input: &AuditInput, cfg: &RulesConfig) -> Result<RuleOutput> {
        let c = &cfg.long_shift;
        let min_s = (c.min_talk_hours * 3600.0).round() as i64;
        let [band_lo, band_hi] = c.quota_band_hours;
        let t0 = std::time::Instant::now();
        let flagged = input
            .shifts
            .clone()
            .lazy()
            .filter(col("talk_s").gt_eq(lit(min_s)))
            .with_column(col("day").n_unique().over([col("operator_id")])?.cast(DataType::Int64).alias("flagged_days"))
            .collect()?;
        crate::diag::trace("long-shift flagged", t0);
        // Per-day talk totals (by the local day each call started) of the flagged operators.
        // Each flagged operator's talk per local day (of the call start), walked over its row range.
        let day_col = input.cdr.column("day")?.cast(&DataType::Int32)?;
        let day_col = day_col.i32()?;
        let talk_col = col_i64(&input.cdr, "talk_s")?;
        let mut days_of: std::collections::HashMap<String, serde_json::Map<String, serde_json::Value>> =
            Default::default();
        // chunk tables built once (a slice of a many-chunk column per operator walked every chunk)
        let (days, talks) = (crate::frame::Chunks::new(day_col), crate::frame::Chunks::new(&talk_col));
        for op in col_str(&flagged, "operator_id")?.iter().flatten() {
            if days_of.contains_key(op) {
                continue;
            }
            let mut per_day: std::collections::BTreeMap<i32, i64> = Default::default();
            if let Some(r) = input.op_rows.get(op) {
                // the operator's rows are one contiguous range
                let (mut day, mut talk) = (days.rows(), talks.rows());
                for i in r.clone() {
                    if let Some(d) = day.get(i) {
                        *per_day.entry(d).or_default() += talk.get(i).unwrap_or(0);
                    }
                }
            }
            let m = per_day
                .into_iter()
                .map(|(d, t)| (crate::time::epoch_day(d).to_string(), json!(round(t as f64 / 3600.0, 2))))
                .collect();
            days_of.insert(op.to_string(), m);
        }
        crate::diag::trace("long-shift daily", t0);
        // Up to 20 call references per flagged shift.
        let refs = shift_refs(input, &flagged)?;
        crate::diag::trace("long-shift refs", t0);

        let ops = col_str(&flagged, "operator_id")?;
        let start = col_i64(&flagged, "shift_start_us")?;
        let end = col_i64(&flagged, "shift_end_us")?;
        let talk = col_i64(&flagged, "talk_s")?;
        let calls = col_i64(&flagged, "calls")?;
        let answered = col_i64(&flagged, "answered")?;
        let callees = col_i64(&flagged, "distinct_callees")?;
        let occ = col_f64(&flagged, "occupancy")?;
        let fdays = col_i64(&flagged, "flagged_days")?;
        let mut findings = Vec::with_capacity(flagged.height());
        for i in 0..flagged.height() {
            let op = ops.get(i).unwrap_or_default().to_string();
            let (s, e) = (start.get(i).unwrap_or(0), end.get(i).unwrap_or(0));
            let talk_h = talk.get(i).unwrap_or(0) as f64 / 3600.0;
            let days = fdays.get(i).unwrap_or(1);
            let in_band = talk_h >= band_lo && talk_h <= band_hi;
            let base = if in_band { 0.7 } else { 0.5 };
            let score = round((base + 0.1 * (days - 1) as f64).min(1.0), 2);
            let more = if days > 1 { format!("; {days} days with such shifts") } else { String::new() };
            let summary = format!(
                "Operator {op} talked {talk_h:.1} h in one shift from {} to {} ({} calls, {} answered, {:.0} % occupancy){more}.",
                local(s, input.tz),
                local(e, input.tz),
                calls.get(i).unwrap_or(0),
                answered.get(i).unwrap_or(0),
                occ.get(i).unwrap_or(0.0) * 100.0,
            );
            findings.push(Finding {
                rule: self.id(),
                severity: Severity::from_score(score),
                operator_id: Some(op.clone()),
                subject: None,
                window_start: utc(s),
                window_end: utc(e),
                score,
                summary,
                evidence: json!({
                    "talk_hours": round(talk_h, 2),
                    "span_hours": round((e - s) as f64 / 3.6e9, 2),
                    "calls": calls.get(i),
                    "answered": answered.get(i),
                    "distinct_callees": callees.get(i),
                    "occupancy": round(occ.get(i).unwrap_or(0.0), 3),
                    "in_quota_band": in_band,
                    "flagged_days": days,
                    "daily_talk_hours": days_of.get(&op).cloned().unwrap_or_default(),
                    "calls_ref": refs.get(&(op.clone(), s)).cloned().unwrap_or_default(),
                }),
                fact: Some(DayFact { long_shift: true, ..DayFact::on(utc(s).with_timezone(&input.tz).date_naive()) }),
            });
        }
        crate::diag::trace("long-shift findings", t0);
        let metrics = input
            .shifts
            .clone()
            .lazy()
            .group_by([col("operator_id")])
            .agg([
                len().cast(DataType::UInt32).alias("shifts"),
                col("talk_s").gt_eq(lit(min_s)).cast(DataType::UInt32).sum().alias("flagged_shifts"),
                (col("talk_h").max()).alias("longest_shift_talk_h"),
            ])
            .collect()?;
        Ok(RuleOutput { findings, operator_metrics: Some(metrics), ..Default::default() })
    }
}

/// (operator, shift start) → the first 20 call references of that shift (its first rows: the
/// frame is sorted by operator and start).
fn shift_refs(
    input: &AuditInput,
    flagged: &DataFrame,
) -> Result<std::collections::HashMap<(String, i64), Vec<String>>> {
    let refs = col_str(&input.cdr, "ref")?;
    let ops = col_str(flagged, "operator_id")?;
    let start = col_i64(flagged, "shift_start_us")?;
    let first = col_i64(flagged, "first_row")?;
    let calls = col_i64(flagged, "calls")?;
    let mut out = std::collections::HashMap::new();
    for i in 0..flagged.height() {
        let (Some(op), Some(s), Some(f), Some(c)) = (ops.get(i), start.get(i), first.get(i), calls.get(i)) else {
            continue;
        };
        let v: Vec<String> = (f..f + c.min(20)).filter_map(|r| refs.get(r as usize)).map(str::to_string).collect();
        out.insert((op.to_string(), s), v);
    }
    Ok(out)
}
