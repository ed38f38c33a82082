//! Detection rules: a small trait, a static registry, one file per rule, all run in parallel (rayon)
//! on data prepared once ([`AuditInput`]).
//!
//! Adding a rule: write `src/rules/<name>.rs` with a `Rule` impl and its `DOC`, add one line to
//! [`REGISTRY`], one fixture under `tests/data/rules/` and one line in `tests/rules.rs`.

pub mod foreign_cli_fanout;
pub mod group_invite_conversion;
pub mod long_shift;
pub mod spoofed_foreign_cli;

use crate::config::Config;
use anyhow::Result;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use polars::prelude::*;
use rayon::prelude::*;
use serde::Serialize;
use std::time::Instant;

/// Finding severity, ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
    /// Severity from a 0..1 score: ≥ 0.8 high, ≥ 0.6 medium, ≥ 0.4 low, else info.
    pub fn from_score(score: f64) -> Self {
        match score {
            s if s >= 0.8 => Severity::High,
            s if s >= 0.6 => Severity::Medium,
            s if s >= 0.4 => Severity::Low,
            _ => Severity::Info,
        }
    }
}

/// One finding; every rule emits this shape so reports never special-case a rule.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    /// The operator the finding is about (None for CLI-level findings such as fan-out).
    pub operator_id: Option<String>,
    /// What the finding is about besides the operator: a caller ID, a group.
    pub subject: Option<String>,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    /// 0..1; higher is stronger evidence.
    pub score: f64,
    /// One plain sentence an investigator can read aloud.
    pub summary: String,
    /// The metrics behind the finding and up to 20 call references.
    pub evidence: serde_json::Value,
}

/// What a rule returns besides findings.
#[derive(Default)]
pub struct RuleOutput {
    pub findings: Vec<Finding>,
    /// Per-operator metrics (`operator_id` + columns) merged into operators.csv.
    pub operator_metrics: Option<DataFrame>,
    /// Extra tables written as `<name>.csv` (e.g. `groups`).
    pub tables: Vec<(&'static str, DataFrame)>,
    /// Plain notes for run.json (e.g. why the rule could not judge).
    pub notes: Vec<String>,
}

/// A detection rule.
pub trait Rule: Send + Sync {
    /// Stable id, part of the interface (`long-shift`).
    fn id(&self) -> &'static str;
    /// One line for `rules`.
    fn summary(&self) -> &'static str;
    /// Full documentation for `explain`: what it finds, why it matters, an example.
    fn explain(&self) -> &'static str;
    /// The thresholds in force, as `key = value` text for `rules`.
    fn defaults(&self, cfg: &Config) -> String;
    fn run(&self, input: &AuditInput, cfg: &Config) -> Result<RuleOutput>;
}

/// Every rule, in report order.
pub static REGISTRY: &[&dyn Rule] = &[
    &long_shift::LongShift,
    &spoofed_foreign_cli::SpoofedForeignCli,
    &foreign_cli_fanout::ForeignCliFanout,
    &group_invite_conversion::GroupInviteConversion,
];

pub fn find(id: &str) -> Option<&'static dyn Rule> {
    REGISTRY.iter().copied().find(|r| r.id() == id)
}

/// The data every rule reads, prepared once.
pub struct AuditInput {
    /// Canonical CDRs sorted by operator and start, plus `start_us`, `end_us`, `answer_us` (i64 UTC
    /// µs), `answered` (bool), `day` (local calendar day of the start, a Date), `ref` (call id, else
    /// `file:line`) and `shift_no` (the operator's shift, numbered from 1).
    pub cdr: DataFrame,
    /// Join log with `member_e164`, `joined_us`; None without `--joins`.
    pub joins: Option<DataFrame>,
    /// One row per operator shift (see [`shifts`]).
    pub shifts: DataFrame,
    pub home_region: String,
    /// `+86` for CN.
    pub home_prefix: String,
    pub tz: Tz,
    /// Whether any call has an IP country.
    pub has_ip_country: bool,
}

impl AuditInput {
    pub fn prepare(cdr: DataFrame, joins: Option<DataFrame>, cfg: &Config, home_prefix: &str) -> Result<Self> {
        let tz: Tz = cfg.tz()?;
        let ptz = TimeZone::opt_try_new(Some(tz.name()))?.expect("zone");
        let brk = cfg.rules.long_shift.shift_break_minutes * 60 * 1_000_000;
        // `ref`: the call id; `file:line` only when some row has none (building 10 M strings is not free)
        let reference = if cdr.column("call_id")?.null_count() == 0 {
            col("call_id")
        } else {
            coalesce(&[
                col("call_id"),
                concat_str([col("source_file"), col("source_line").cast(DataType::String)], ":", false),
            ])
        };
        // Sorted once by operator and start: shifts, and every rule's per-operator work, read it so.
        let cdr = cdr
            .lazy()
            .with_columns([
                col("start_time").dt().timestamp(TimeUnit::Microseconds).alias("start_us"),
                col("end_time").dt().timestamp(TimeUnit::Microseconds).alias("end_us"),
                col("answer_time").dt().timestamp(TimeUnit::Microseconds).alias("answer_us"),
                col("talk_s").gt(lit(0i64)).or(col("disposition").eq(lit("ANSWERED"))).alias("answered"),
                col("start_time").dt().convert_time_zone(ptz).dt().date().alias("day"),
                reference.alias("ref"),
            ])
            // what no rule or report reads is not carried through the sort
            .drop(cols(["start_time", "answer_time", "end_time", "duration_s", "cli_group", "source_line", "__file"]))
            .sort(["operator_id", "start_us"], SortMultipleOptions::default())
            .with_column(col("end_us").cum_max(false).shift(lit(1i64)).over([col("operator_id")])?.alias("prev_end"))
            .with_column(
                col("prev_end")
                    .is_null()
                    .or((col("start_us") - col("prev_end")).gt(lit(brk)))
                    .cast(DataType::UInt32)
                    .cum_sum(false)
                    .over([col("operator_id")])?
                    .alias("shift_no"),
            )
            .drop(cols(["prev_end"]))
            .collect()?;
        let has_ip_country = cdr.column("ip_country")?.null_count() < cdr.height();
        let shifts = shifts(&cdr, tz)?;
        let joins = match joins {
            Some(j) => Some(
                j.lazy()
                    .with_column(col("joined_at").dt().timestamp(TimeUnit::Microseconds).alias("joined_us"))
                    .filter(col("member_e164").is_not_null())
                    .collect()?,
            ),
            None => None,
        };
        Ok(Self {
            cdr,
            joins,
            shifts,
            home_region: cfg.input.home_region.to_uppercase(),
            home_prefix: home_prefix.to_string(),
            tz,
            has_ip_country,
        })
    }
}

/// One row per shift. Shifts were cut in [`AuditInput::prepare`]: sorted by start, a call that starts
/// more than `shift_break_minutes` after every earlier call of that operator has ended starts a new
/// shift (`shift_no`). Shifts may cross midnight; `day` is the local day the shift started.
pub fn shifts(cdr: &DataFrame, tz: Tz) -> Result<DataFrame> {
    let ptz = TimeZone::opt_try_new(Some(tz.name()))?.expect("zone");
    let df = cdr
        .clone()
        .lazy()
        .group_by_stable([col("operator_id"), col("shift_no")])
        .agg([
            col("start_us").min().alias("shift_start_us"),
            col("end_us").max().alias("shift_end_us"),
            col("talk_s").sum().alias("talk_s"),
            len().cast(DataType::UInt32).alias("calls"),
            col("answered").cast(DataType::UInt32).sum().alias("answered"),
            col("callee_e164").drop_nulls().n_unique().cast(DataType::UInt32).alias("distinct_callees"),
        ])
        .with_columns([
            ((col("shift_end_us") - col("shift_start_us")) / lit(1_000_000i64)).alias("span_s"),
            col("shift_start_us")
                .cast(DataType::Datetime(TimeUnit::Microseconds, Some(polars::prelude::TimeZone::UTC)))
                .dt()
                .convert_time_zone(ptz)
                .dt()
                .to_string("%Y-%m-%d")
                .alias("day"),
        ])
        .with_columns([
            (col("talk_s").cast(DataType::Float64) / lit(3600.0)).alias("talk_h"),
            (col("talk_s").cast(DataType::Float64) / col("span_s").cast(DataType::Float64).clip_min(lit(1.0)))
                .alias("occupancy"),
        ])
        .collect()?;
    Ok(df)
}

/// Run every rule in parallel; returns (rule id, seconds, output) in registry order.
pub fn run_all(input: &AuditInput, cfg: &Config) -> Vec<(&'static str, f64, Result<RuleOutput>)> {
    REGISTRY
        .par_iter()
        .map(|r| {
            let t = Instant::now();
            let out = r.run(input, cfg);
            (r.id(), t.elapsed().as_secs_f64(), out)
        })
        .collect()
}

// ---- small helpers shared by the rules ----

pub(crate) fn utc(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// `2026-03-02 20:14` in the audit's zone.
pub(crate) fn local(us: i64, tz: Tz) -> String {
    utc(us).with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

pub(crate) fn col_str<'a>(df: &'a DataFrame, name: &str) -> Result<&'a StringChunked> {
    Ok(df.column(name)?.str()?)
}

pub(crate) fn col_i64(df: &DataFrame, name: &str) -> Result<Int64Chunked> {
    Ok(df.column(name)?.cast(&DataType::Int64)?.i64()?.clone())
}

pub(crate) fn col_f64(df: &DataFrame, name: &str) -> Result<Float64Chunked> {
    Ok(df.column(name)?.cast(&DataType::Float64)?.f64()?.clone())
}

/// Space-separated words cell → JSON array of strings.
pub(crate) fn words(cell: Option<&str>) -> serde_json::Value {
    serde_json::Value::from(
        cell.unwrap_or("").split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect::<Vec<_>>(),
    )
}

pub(crate) fn round(x: f64, places: i32) -> f64 {
    let p = 10f64.powi(places);
    (x * p).round() / p
}
