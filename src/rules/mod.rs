//! Detection rules: a small trait, a static registry, one file per rule, all run in parallel (rayon)
//! on data prepared once ([`AuditInput`]).
//!
//! Adding a rule: write `src/rules/<name>.rs` with a `Rule` impl and its `DOC`, add one line to
//! [`REGISTRY`], one fixture under `tests/data/rules/` and one line in `tests/rules.rs`.

pub mod foreign_cli_fanout;
pub mod group_invite_conversion;
pub mod long_shift;
pub mod long_shift_streak;
pub mod repeat_spoofer;
pub mod shifts;
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

impl Finding {
    /// One findings.jsonl line: the finding as serde writes it, with `evidence` (its last field) spliced
    /// in as already rendered text.
    pub fn write_jsonl(&self, out: &mut Vec<u8>, evidence: &str) -> Result<()> {
        /// [`Finding`]'s fields before `evidence`, in its order
        #[derive(serde::Serialize)]
        struct Head<'a> {
            rule: &'a str,
            severity: Severity,
            operator_id: &'a Option<String>,
            subject: &'a Option<String>,
            window_start: &'a chrono::DateTime<chrono::Utc>,
            window_end: &'a chrono::DateTime<chrono::Utc>,
            score: f64,
            summary: &'a str,
        }
        let head = Head {
            rule: self.rule,
            severity: self.severity,
            operator_id: &self.operator_id,
            subject: &self.subject,
            window_start: &self.window_start,
            window_end: &self.window_end,
            score: self.score,
            summary: &self.summary,
        };
        serde_json::to_writer(&mut *out, &head)?;
        out.pop(); // the closing brace
        out.extend_from_slice(b",\"evidence\":");
        out.extend_from_slice(evidence.as_bytes());
        out.extend_from_slice(b"}\n");
        Ok(())
    }
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

/// What every rule tells users (`rules`, `explain`).
pub trait RuleDoc: Send + Sync {
    /// Stable id, part of the interface (`long-shift`).
    fn id(&self) -> &'static str;
    /// One line for `rules`.
    fn summary(&self) -> &'static str;
    /// Full documentation for `explain`: what it finds, why it matters, an example.
    fn explain(&self) -> &'static str;
    /// The thresholds in force, as `key = value` text for `rules`.
    fn defaults(&self, cfg: &Config) -> String;
}

/// A detection rule over the audited CDRs.
pub trait Rule: RuleDoc {
    fn run(&self, input: &AuditInput, cfg: &Config) -> Result<RuleOutput>;
}

/// A rule over per-operator day profiles: the audited days plus earlier days from `--history`.
/// Runs after the [`Rule`]s, whose findings make the profiles.
pub trait CrossDayRule: RuleDoc {
    fn run(&self, days: &DayHistory, cfg: &Config) -> Result<RuleOutput>;
}

/// One operator's local day, as kept in `--history` (`date=YYYY-MM-DD/profiles.parquet`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DayProfile {
    pub date: chrono::NaiveDate,
    pub operator_id: String,
    /// Shifts that started on this day, their calls, answered calls and talk.
    pub shifts: u32,
    pub calls: u32,
    pub answered: u32,
    pub talk_h: f64,
    pub max_shift_talk_h: f64,
    /// A long-shift finding started on this day.
    pub long_shift: bool,
    /// Calls in this day's spoofed-foreign-cli finding (0: none).
    pub spoofed_calls: u32,
    /// Callees of this day's calls who joined a group in the window.
    pub conversions: u32,
    /// Day rules with a finding starting on this day, `;`-separated in report order.
    pub rules_hit: String,
}

/// What cross-day rules read.
pub struct DayHistory {
    /// Sorted by operator, then date.
    pub profiles: Vec<DayProfile>,
    /// The last local day audited: windows end here.
    pub as_of: chrono::NaiveDate,
    /// Days that came from `--history` rather than this run's CDRs.
    pub history_days: std::collections::BTreeSet<chrono::NaiveDate>,
    pub tz: Tz,
}

/// Cross-day rules, in report order after [`REGISTRY`].
pub static CROSS_DAY: &[&dyn CrossDayRule] = &[&long_shift_streak::LongShiftStreak, &repeat_spoofer::RepeatSpoofer];

/// Every rule's documentation, in report order.
pub fn docs() -> impl Iterator<Item = &'static dyn RuleDoc> {
    REGISTRY.iter().map(|r| *r as &dyn RuleDoc).chain(CROSS_DAY.iter().map(|r| *r as &dyn RuleDoc))
}

/// Every rule id, in report order.
pub fn all_ids() -> Vec<&'static str> {
    docs().map(|r| r.id()).collect()
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

pub fn find_doc(id: &str) -> Option<&'static dyn RuleDoc> {
    docs().find(|r| r.id() == id)
}

pub fn find_cross_day(id: &str) -> Option<&'static dyn CrossDayRule> {
    CROSS_DAY.iter().copied().find(|r| r.id() == id)
}

/// The data every rule reads, prepared once.
pub struct AuditInput {
    /// Canonical CDRs sorted by operator and start, plus `start_us`, `end_us`, `answer_us` (i64 UTC
    /// µs), `answered` (bool), `day` (local calendar day of the start, a Date), `ref` (call id, else
    /// `file:line`) and `shift_no` (the operator's shift, numbered from 1).
    pub cdr: DataFrame,
    /// Each operator's rows in `cdr` (contiguous: the frame is sorted by operator).
    pub op_rows: std::collections::HashMap<String, std::ops::Range<usize>>,
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
    /// The texts of `caller_id`, `caller_country`, `src_ip` and `ip_country`, which `cdr` holds as
    /// codes (see [`crate::coded`]; read them with [`AuditInput::coded`]).
    pub dicts: crate::coded::Dicts,
}

impl AuditInput {
    pub fn prepare(cdr: DataFrame, joins: Option<DataFrame>, cfg: &Config, home_prefix: &str) -> Result<Self> {
        Self::prepare_days(cdr, Default::default(), joins, cfg, home_prefix, None)
    }

    /// A coded text column of `cdr` (`caller_id`, `caller_country`, `src_ip`, `ip_country`).
    pub fn coded(&self, name: &str) -> Result<crate::coded::CodedColumn<'_>> {
        Ok(self.dicts.column(&self.cdr, name)?)
    }

    /// As [`prepare`](Self::prepare), keeping only the shifts that start on a local day in
    /// `days` (inclusive): a night shift stays whole, with its calls after midnight. `dicts` has the
    /// texts of the columns already coded by the loader; the others are coded here.
    pub fn prepare_days(
        cdr: DataFrame,
        mut dicts: crate::coded::Dicts,
        joins: Option<DataFrame>,
        cfg: &Config,
        home_prefix: &str,
        days: Option<(chrono::NaiveDate, chrono::NaiveDate)>,
    ) -> Result<Self> {
        let mut cdr = cdr;
        for name in crate::coded::CODED {
            dicts.encode(&mut cdr, name)?;
        }
        let tz: Tz = cfg.tz()?;
        let brk = cfg.rules.long_shift.shift_break_minutes * 60 * 1_000_000;
        // `ref`: the call id; `file:line` only when some row has none (building 10 M strings is not free)
        let reference = if cdr.column("call_id")?.null_count() == 0 {
            cdr.column("call_id")?.clone().with_name("ref".into())
        } else {
            DataFrame::new(
                cdr.height(),
                vec![
                    cdr.column("call_id")?.clone(),
                    cdr.column("source_file")?.clone(),
                    cdr.column("source_line")?.clone(),
                ],
            )?
            .lazy()
            .select([coalesce(&[
                col("call_id"),
                concat_str([col("source_file"), col("source_line").cast(DataType::String)], ":", false),
            ])
            .alias("ref")])
            .collect()?
            .column("ref")?
            .clone()
        };
        let spoof = &cfg.rules.spoofed_foreign_cli;
        let mut dropped = vec![
            "start_time",
            "answer_time",
            "end_time",
            "duration_s",
            "cli_group",
            "source_line",
            "__file",
            "call_id",
            "source_file",
            "disposition",
        ];
        if spoof.domestic_campaigns.is_empty() {
            dropped.push("campaign");
        }
        if spoof.domestic_trunks.is_empty() {
            dropped.push("trunk");
        }
        // Sorted once by operator and start: shifts, and every rule's per-operator work, read it so.
        // The µs columns are the datetimes' own buffers (no copy); only `answered` (and `ref` when
        // some call has no id) is computed, from the two or three columns it reads.
        let t0 = Instant::now();
        // answered: talk time, or a switch that says so (a missing value counts as no), in row slices
        let (talk, disp) = (cdr.column("talk_s")?.i64()?.clone(), cdr.column("disposition")?.u32()?.clone());
        let answered_code = crate::load::normalize::disposition_code("ANSWERED");
        let parts = crate::par::slices(cdr.height(), |off, len| {
            let (t, d) = (talk.slice(off as i64, len), disp.slice(off as i64, len));
            t.iter()
                .zip(d.iter())
                .map(|(t, d)| t.is_some_and(|t| t > 0) || d == Some(answered_code))
                .collect::<BooleanChunked>()
        });
        let answered = crate::par::concat("answered", parts);
        for (from, to) in [("start_time", "start_us"), ("end_time", "end_us"), ("answer_time", "answer_us")] {
            let us = cdr.column(from)?.to_physical_repr().with_name(to.into());
            cdr.with_column(us)?;
        }
        cdr.with_column(answered.into_column())?;
        cdr.with_column(reference)?;
        // what no rule or report reads is not carried through the sort (`ref` has the call id;
        // campaign and trunk matter only when some are declared domestic)
        // assigned, not shadowed: a shadowed frame would stay alive and keep every column it shares
        // with the new one, so the sort's gather could free nothing (+2.3 GB on time-ordered input)
        cdr = cdr.drop_many(dropped);
        crate::load::trace("prepare columns", t0);
        let mut cdr = sort_by_operator_start(cdr)?;
        let day = local_days(cdr.column("start_us")?.i64()?, tz).into_column().cast(&DataType::Date)?;
        cdr.with_column(day)?;
        crate::load::trace("prepare days", t0);
        let mut shift_table = shifts::cut(&mut cdr, brk, tz)?;
        crate::load::trace("prepare shifts", t0);
        if let Some((from, to)) = days {
            // keep whole shifts that started on a selected day
            let (from, to) = (from.format("%Y-%m-%d").to_string(), to.format("%Y-%m-%d").to_string());
            let keep = shift_table
                .clone()
                .lazy()
                .filter(col("day").gt_eq(lit(from.as_str())).and(col("day").lt_eq(lit(to.as_str()))))
                .collect()?;
            cdr = cdr.take(&rows_of_shifts(&keep)?)?;
            // cut again so row numbers point into the kept rows (the same shifts: the dropped ones
            // lie before or after the kept days, never between two kept shifts)
            shift_table = shifts::cut(&mut cdr, brk, tz)?;
        }
        let op_rows = operator_rows(&shift_table)?;
        let has_ip_country = cdr.column("ip_country")?.null_count() < cdr.height();
        let shifts = shift_table;
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
            op_rows,
            joins,
            shifts,
            home_region: cfg.input.home_region.to_uppercase(),
            home_prefix: home_prefix.to_string(),
            tz,
            has_ip_country,
            dicts,
        })
    }
}

/// Sort the calls by operator, then start, then input order (so ties are deterministic), with
/// integer keys (each operator's rank among the sorted distinct ids) instead of comparing strings,
/// and gather one column at a time, freeing each source column as its sorted copy is made: sorting
/// the whole frame at once held two copies of every column (the peak memory of a run).
fn sort_by_operator_start(mut df: DataFrame) -> Result<DataFrame> {
    let t0 = Instant::now();
    let n = df.height();
    if already_sorted(&df)? {
        // input already in operator and start order (some exports are): nothing to gather
        crate::load::trace("sort keys (already sorted)", t0);
        return Ok(df);
    }
    let idx: Vec<IdxSize> = {
        // each row's rank among the sorted distinct operators
        let (_, rank) = crate::par::dictionary(df.column("operator_id")?.str()?);
        crate::load::trace("sort ranks", t0);
        operator_start_order(&rank, df.column("start_us")?.i64()?)
    };
    crate::load::trace("sort keys", t0);
    let idx = IdxCa::from_vec("idx".into(), idx);
    let names: Vec<PlSmallStr> = df.get_column_names_owned();
    let columns: Vec<Column> = names.iter().map(|n| df.drop_in_place(n)).collect::<PolarsResult<_>>()?;
    // One column at a time, its source dropped once gathered, gathered in pieces of 64 k rows on
    // both cores: the loaded columns are many small chunks, and the pieces fit the memory those free
    // (one whole-column gather needed fresh memory for every column: time-ordered 10 M-row export,
    // peak 3.5-3.8 -> 3.2 GB, gather 1.3 -> 1.07 s). Each column is made one piece first: a gather
    // from a many-chunk column locates every index's chunk (reading integer columns in place
    // through a chunk cursor was slower still, 2.5 s, as every next row lies in another chunk).
    const PIECE: usize = 1 << 16;
    let pieces: Vec<IdxCa> = (0..n).step_by(PIECE).map(|o| idx.slice(o as i64, PIECE.min(n - o))).collect();
    let mut out: Vec<Column> = Vec::with_capacity(columns.len());
    for c in columns {
        let c = c.rechunk();
        let parts: Vec<Column> = pieces.par_iter().map(|p| c.take(p)).collect::<PolarsResult<_>>()?;
        let mut it = parts.into_iter();
        let mut a = it.next().unwrap_or_else(|| c.clear());
        for p in it {
            a.append_owned(p)?;
        }
        out.push(a);
    }
    crate::load::trace("sort gather", t0);
    Ok(DataFrame::new(n, out)?)
}

/// The row order (operator, start, input order), nulls first, from each row's operator rank
/// (`NO_CODE` for none) and start: a stable counting sort by operator (each operator's rows keep
/// their input order), then each operator's rows sorted by start on their own, in parallel, where
/// they are not in order already (an export written in time order has every operator's calls in
/// start order). One comparison sort of 10 M (operator, start, row) keys took 0.9 s of a
/// time-ordered export's scan.
fn operator_start_order(rank: &[u32], start: &Int64Chunked) -> Vec<IdxSize> {
    let n = rank.len();
    // rank + 1, so that rows without an operator (NO_CODE wraps to 0) come first
    let key = |i: usize| rank[i].wrapping_add(1) as usize;
    let buckets = rank.iter().map(|r| r.wrapping_add(1)).max().map_or(0, |m| m as usize + 1);
    let mut at = vec![0usize; buckets + 1];
    for i in 0..n {
        at[key(i) + 1] += 1;
    }
    for b in 1..at.len() {
        at[b] += at[b - 1];
    }
    let mut next = at.clone();
    let mut rows: Vec<(i64, IdxSize)> = vec![(0, 0); n];
    let mut start_of = Rows::new(start);
    for i in 0..n {
        let b = key(i);
        rows[next[b]] = (start_of.get(i).unwrap_or(i64::MIN), i as IdxSize);
        next[b] += 1;
    }
    // split into each operator's rows, then sort those not already in (start, row) order
    let mut parts: Vec<&mut [(i64, IdxSize)]> = Vec::with_capacity(buckets);
    let mut rest: &mut [(i64, IdxSize)] = &mut rows;
    for b in 0..buckets {
        let (this, tail) = rest.split_at_mut(at[b + 1] - at[b]);
        rest = tail;
        parts.push(this);
    }
    parts.into_par_iter().for_each(|p| {
        if !p.is_sorted() {
            p.sort_unstable();
        }
    });
    rows.into_iter().map(|(_, i)| i).collect()
}

/// Whether rows are already in (operator, start, input) order, nulls first, by comparing
/// neighbours in parallel slices (no ranks, no keys: the common case of exports written per seat).
fn already_sorted(df: &DataFrame) -> Result<bool> {
    let ops = df.column("operator_id")?.str()?;
    let start = df.column("start_us")?.i64()?;
    let n = df.height();
    if n < 2 {
        return Ok(true);
    }
    // each slice also checks its first row against the row before it
    let ok = crate::par::slices(n, |off, len| {
        let from = off.saturating_sub(1);
        let o = ops.slice(from as i64, len + off - from);
        let s = start.slice(from as i64, len + off - from);
        let mut prev: Option<(Option<&str>, Option<i64>)> = None;
        for (a, b) in o.iter().zip(s.iter()) {
            if let Some((pa, pb)) = prev {
                // None sorts first, as in the keyed sort (null operator rank 0, null start i64::MIN)
                if (pa, pb) > (a, b) {
                    return false;
                }
            }
            prev = Some((a, b));
        }
        true
    });
    Ok(ok.into_iter().all(|x| x))
}

/// The local calendar day (days since 1970-01-01) of each UTC-µs instant, in parallel slices with a
/// cache of the zone's offset ([`crate::time::UtcOffsets`]; a chrono-tz lookup per row is the slow
/// part otherwise).
pub(crate) fn local_days(us: &Int64Chunked, tz: Tz) -> Int32Chunked {
    let parts = crate::par::slices(us.len(), |off, len| {
        let mut offsets = crate::time::UtcOffsets::new(tz);
        let mut day = |v: i64| {
            let secs = v.div_euclid(1_000_000);
            (secs + offsets.offset(secs)).div_euclid(86_400) as i32
        };
        let part = us.slice(off as i64, len);
        if part.null_count() == 0 {
            // the values read straight from each chunk's buffer (an option iterator over the
            // column's many chunks cost as much as the lookups)
            let mut out = Vec::with_capacity(len);
            for arr in part.downcast_iter() {
                out.extend(arr.values().iter().map(|v| day(*v)));
            }
            return Int32Chunked::from_vec("day".into(), out);
        }
        part.iter().map(|v| v.map(&mut day)).collect::<Int32Chunked>()
    });
    crate::par::concat("day", parts)
}

/// Row indices of the calls of these shifts (`first_row`, `calls` columns of a shift table).
fn rows_of_shifts(shifts: &DataFrame) -> Result<IdxCa> {
    let first = shifts.column("first_row")?.u64()?;
    let calls = shifts.column("calls")?.u32()?;
    let idx: Vec<IdxSize> = first
        .iter()
        .zip(calls.iter())
        .flat_map(|(f, c)| {
            let f = f.unwrap_or(0) as usize;
            (f..f + c.unwrap_or(0) as usize).map(|i| i as IdxSize)
        })
        .collect();
    Ok(IdxCa::from_vec("idx".into(), idx))
}

/// operator → its row range, from a shift table.
fn operator_rows(shifts: &DataFrame) -> Result<std::collections::HashMap<String, std::ops::Range<usize>>> {
    let ops = shifts.column("operator_id")?.str()?;
    let first = shifts.column("first_row")?.u64()?;
    let calls = shifts.column("calls")?.u32()?;
    let mut m: std::collections::HashMap<String, std::ops::Range<usize>> = Default::default();
    for ((o, f), c) in ops.iter().zip(first.iter()).zip(calls.iter()) {
        let (Some(o), Some(f), Some(c)) = (o, f, c) else { continue };
        let (a, b) = (f as usize, f as usize + c as usize);
        m.entry(o.to_string()).and_modify(|r| r.end = r.end.max(b)).or_insert(a..b);
    }
    Ok(m)
}

/// Run the cross-day rules; returns (rule id, seconds, output) in registry order.
pub fn run_cross_day(days: &DayHistory, cfg: &Config) -> Vec<(&'static str, f64, Result<RuleOutput>)> {
    CROSS_DAY
        .par_iter()
        .map(|r| {
            let t = Instant::now();
            let out = r.run(days, cfg);
            (r.id(), t.elapsed().as_secs_f64(), out)
        })
        .collect()
}

/// Local midnight starting `day` in `tz`, as UTC.
pub(crate) fn day_start(day: chrono::NaiveDate, tz: Tz) -> DateTime<Utc> {
    use chrono::TimeZone as _;
    let naive = day.and_hms_opt(0, 0, 0).expect("midnight");
    tz.from_local_datetime(&naive).earliest().map(|d| d.with_timezone(&Utc)).unwrap_or_else(|| naive.and_utc())
}

/// Run every rule in parallel; returns (rule id, seconds, output) in registry order.
pub fn run_all(input: &AuditInput, cfg: &Config) -> Vec<(&'static str, f64, Result<RuleOutput>)> {
    let one = |r: &&'static dyn Rule| {
        let t = Instant::now();
        let out = r.run(input, cfg);
        crate::load::trace(r.id(), t);
        (r.id(), t.elapsed().as_secs_f64(), out)
    };
    // DA_SERIAL_RULES: one rule at a time, so per-rule times are not shared CPU (profiling only)
    if std::env::var_os("DA_SERIAL_RULES").is_some() {
        return REGISTRY.iter().map(one).collect();
    }
    REGISTRY.par_iter().map(one).collect()
}

// ---- small helpers shared by the rules ----

pub(crate) fn utc(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// `2026-03-02 20:14` in the audit's zone.
pub(crate) fn local(us: i64, tz: Tz) -> String {
    use chrono::{Datelike, Timelike};
    let t = utc(us).with_timezone(&tz).naive_local();
    if !(0..=9999).contains(&t.year()) {
        return t.format("%Y-%m-%d %H:%M").to_string();
    }
    // the digits written directly: chrono's format string is parsed again on every call, and the
    // reports format a few hundred thousand times
    format!("{:04}-{:02}-{:02} {:02}:{:02}", t.year(), t.month(), t.day(), t.hour(), t.minute())
}

/// Each UTC-µs instant as local `YYYY-MM-DD HH:MM:SS` text (null stays null), in parallel slices:
/// the zone's offset comes from [`crate::time::UtcOffsets`] and the digits are written directly (Polars' `to_string` with a format parsed the format on every value,
/// a tenth of writing the outputs).
pub(crate) fn local_seconds_texts(us: &Int64Chunked, tz: Tz) -> StringChunked {
    use chrono::{Datelike, Timelike};
    let parts = crate::par::slices(us.len(), |off, len| {
        let mut offsets = crate::time::UtcOffsets::new(tz);
        let mut b = StringChunkedBuilder::new(us.name().clone(), len);
        let mut buf = String::with_capacity(19);
        for v in us.slice(off as i64, len).iter() {
            let Some(v) = v else {
                b.append_null();
                continue;
            };
            let secs = v.div_euclid(1_000_000);
            let t = DateTime::from_timestamp(secs + offsets.offset(secs), 0).map(|d| d.naive_utc());
            buf.clear();
            match t {
                Some(t) if (0..=9999).contains(&t.year()) => {
                    use std::fmt::Write;
                    let _ = write!(
                        buf,
                        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                        t.year(),
                        t.month(),
                        t.day(),
                        t.hour(),
                        t.minute(),
                        t.second()
                    );
                }
                _ => buf.push_str(&utc(v).with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string()),
            }
            b.append_value(&buf);
        }
        b.finish()
    });
    crate::par::concat(us.name(), parts)
}

/// Row reads in ascending order over a column of many chunks, without copying it into one piece
/// (string columns are the bulk of a frame's memory): remembers the chunk of the last row read.
/// Work done per operator makes its readers from a [`Chunks`] table built once per column:
/// building the table is linear in the chunks, and a 50 M-row frame has ~1 600 chunks per column
/// and ~50 000 operators (tables built per operator and column were most of the rules' time there).
pub(crate) struct Rows<'t, 'a, T: PolarsDataType> {
    /// (first row, end row, array) of each chunk, owned or borrowed from a [`Chunks`] table (`'t`)
    chunks: std::borrow::Cow<'t, [(usize, usize, &'a T::Array)]>,
    cur: usize,
}

/// The chunk table of a column, built once and shared by [`Rows`] readers (`rows()`).
pub(crate) struct Chunks<'a, T: PolarsDataType>(Vec<(usize, usize, &'a T::Array)>);

impl<'a, T: PolarsDataType> Chunks<'a, T> {
    pub(crate) fn new(ca: &'a ChunkedArray<T>) -> Self {
        let mut off = 0;
        Self(
            ca.downcast_iter()
                .zip(ca.chunk_lengths())
                .map(|(a, len)| {
                    let start = off;
                    off += len;
                    (start, off, a)
                })
                .collect(),
        )
    }

    /// A reader over the column (cheap: borrows the table).
    pub(crate) fn rows(&self) -> Rows<'_, 'a, T> {
        Rows { chunks: std::borrow::Cow::Borrowed(&self.0[..]), cur: 0 }
    }
}

impl<'t, 'a, T: PolarsDataType> Rows<'t, 'a, T> {
    pub(crate) fn new(ca: &'a ChunkedArray<T>) -> Self {
        Self { chunks: std::borrow::Cow::Owned(Chunks::new(ca).0), cur: 0 }
    }

    /// The value at row `i` (which must be in the column).
    #[inline]
    pub(crate) fn get(&mut self, i: usize) -> Option<T::Physical<'a>> {
        let (start, end, _) = self.chunks[self.cur];
        if i < start || i >= end {
            self.cur = self.chunks.partition_point(|c| c.1 <= i);
        }
        let (start, _, arr) = self.chunks[self.cur];
        arr.get(i - start)
    }
}

/// Each operator and its row range, in frame order (operator order).
pub(crate) fn ranges_in_order(input: &AuditInput) -> Vec<(&str, std::ops::Range<usize>)> {
    let mut v: Vec<(&str, std::ops::Range<usize>)> =
        input.op_rows.iter().map(|(o, r)| (o.as_str(), r.clone())).collect();
    v.sort_by_key(|(_, r)| r.start);
    v
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

/// A cross-day finding over `hits` (oldest first): score 0.7 at `min_days`, +0.1 per extra day (at
/// most 1.0); the window runs from the first hit day to the end of `days.as_of`.
pub(crate) fn streak_finding(
    rule: &'static str,
    op: &str,
    hits: &[&DayProfile],
    min_days: u32,
    days: &DayHistory,
    summary: String,
    evidence: serde_json::Value,
) -> Finding {
    let n = hits.len() as u32;
    let score = round((0.7 + 0.1 * f64::from(n.saturating_sub(min_days))).min(1.0), 2);
    Finding {
        rule,
        severity: Severity::from_score(score),
        operator_id: Some(op.to_string()),
        subject: None,
        window_start: day_start(hits[0].date, days.tz),
        window_end: day_start(days.as_of + chrono::Days::new(1), days.tz),
        score,
        summary,
        evidence,
    }
}

/// Operators with at least `min_days` days satisfying `hit` among the `window_days` local days
/// ending on `days.as_of`; each with its hit days (oldest first) and how many days of the window
/// had any record of the operator.
pub(crate) fn streaks(
    days: &DayHistory,
    window_days: u32,
    min_days: u32,
    hit: impl Fn(&DayProfile) -> bool,
) -> Vec<(&str, Vec<&DayProfile>, usize)> {
    let first = days.as_of - chrono::Days::new(u64::from(window_days.saturating_sub(1)));
    let mut out = Vec::new();
    for chunk in days.profiles.chunk_by(|a, b| a.operator_id == b.operator_id) {
        let in_window: Vec<&DayProfile> = chunk.iter().filter(|p| p.date >= first && p.date <= days.as_of).collect();
        let hits: Vec<&DayProfile> = in_window.iter().copied().filter(|p| hit(p)).collect();
        if hits.len() >= min_days as usize {
            out.push((chunk[0].operator_id.as_str(), hits, in_window.len()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_line_is_the_finding_as_serde_writes_it() {
        let t = |s: i64| chrono::DateTime::from_timestamp(s, 0).unwrap();
        for (op, subject) in [(Some("op \"1\""), None), (None, Some("+447700900123"))] {
            let f = Finding {
                rule: "foreign-cli-fanout",
                severity: Severity::Medium,
                operator_id: op.map(str::to_string),
                subject: subject.map(str::to_string),
                window_start: t(1_767_225_600),
                window_end: t(1_767_229_201),
                score: 0.7,
                summary: "Caller \u{4e2d} reached 143 callees, \"quoted\".".into(),
                evidence: serde_json::json!({"day": "2026-03-02", "operators": ["a", "b"], "n": 143, "x": null}),
            };
            let mut line = Vec::new();
            f.write_jsonl(&mut line, &f.evidence.to_string()).unwrap();
            let want = serde_json::to_string(&f).unwrap() + "\n";
            assert_eq!(String::from_utf8(line).unwrap(), want);
        }
    }

    #[test]
    fn local_text_matches_chrono_format() {
        for tz in [chrono_tz::Asia::Shanghai, chrono_tz::America::New_York, chrono_tz::Asia::Kathmandu] {
            // every 37 minutes over two years, and the far ends chrono prints with a sign
            let mut us: Vec<i64> = (0i64..30_000).map(|k| 1_767_225_600_000_000 + k * 37 * 60 * 1_000_000).collect();
            us.extend([0, -1, 253_402_300_799_000_000, 253_402_300_800_000_000, -62_167_219_200_000_001]);
            for u in us {
                assert_eq!(local(u, tz), utc(u).with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string(), "{u} {tz}");
            }
        }
    }

    #[test]
    fn local_seconds_texts_match_chrono_format_across_dst() {
        // every 7 min 13 s over two years in zones with DST at whole and half hours, a null, the ends
        let zones = [chrono_tz::Europe::London, chrono_tz::Australia::Lord_Howe, chrono_tz::Asia::Kathmandu];
        for tz in zones {
            let mut us: Vec<Option<i64>> =
                (0i64..150_000).map(|k| Some(1_735_689_600_000_000 + k * 433 * 1_000_000 + 123)).collect();
            us.extend([None, Some(0), Some(-1), Some(253_402_300_800_000_000)]);
            let ca: Int64Chunked = us.iter().copied().collect();
            let got = local_seconds_texts(&ca, tz);
            for (i, u) in us.iter().enumerate() {
                let want = u.map(|u| utc(u).with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string());
                assert_eq!(got.get(i), want.as_deref(), "{u:?} {tz}");
            }
        }
    }

    #[test]
    fn local_days_match_chrono_across_dst_and_midnight() {
        // every 17 minutes from late 2025 through 2026: DST changes in London and São Paulo
        // (and Lord Howe's half-hour change), in time order, backwards, and with a null
        let zones = [
            chrono_tz::Europe::London,
            chrono_tz::Asia::Shanghai,
            chrono_tz::America::Sao_Paulo,
            chrono_tz::Australia::Lord_Howe,
        ];
        for tz in zones {
            let us: Vec<i64> = (-2000i64..32000).map(|k| 1_767_225_600_000_000 + k * 17 * 60 * 1_000_000).collect();
            let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
            let want = |v: i64| (utc(v).with_timezone(&tz).date_naive() - epoch).num_days() as i32;
            let mut back = us.clone();
            back.reverse();
            for order in [us, back] {
                let got = local_days(&Int64Chunked::from_vec("t".into(), order.clone()), tz);
                for (i, v) in order.iter().enumerate() {
                    assert_eq!(got.get(i), Some(want(*v)), "{tz} at {}", utc(*v));
                }
            }
            let with_null: Int64Chunked = [Some(1_774_746_000_000_000i64), None].into_iter().collect();
            let got = local_days(&with_null, tz);
            assert_eq!((got.get(0), got.get(1)), (Some(want(1_774_746_000_000_000)), None), "{tz}");
        }
    }

    #[test]
    fn sort_by_operator_then_start_keeps_input_order_of_ties() {
        let df = df!(
            "operator_id" => [Some("b"), Some("a"), Some("b"), None, Some("a")],
            "start_us" => [5i64, 9, 5, 1, 2],
            "row" => [0u32, 1, 2, 3, 4],
        )
        .unwrap();
        let sorted = sort_by_operator_start(df).unwrap();
        let rows: Vec<u32> = sorted.column("row").unwrap().u32().unwrap().into_no_null_iter().collect();
        // the null operator first, then a by start, then b's two equal starts in input order
        assert_eq!(rows, vec![3, 4, 1, 0, 2]);
        // already sorted: returned as it is
        let again = sort_by_operator_start(sorted.clone()).unwrap();
        assert!(again.equals_missing(&sorted));
    }

    #[test]
    fn operator_start_order_is_the_keyed_sort_with_nulls_first_and_ties_in_input_order() {
        // time-ordered rows of 7 operators, some without an operator or a start, repeated starts,
        // and one operator whose rows are out of start order
        let n = 5_000usize;
        let rank: Vec<u32> =
            (0..n).map(|i| if i % 97 == 0 { crate::par::NO_CODE } else { ((i * 5) % 7) as u32 }).collect();
        let start: Vec<Option<i64>> = (0..n)
            .map(|i| match i {
                _ if i % 89 == 0 => None,
                _ if rank[i] == 3 => Some(((n - i) / 3) as i64),
                _ => Some((i / 4) as i64),
            })
            .collect();
        let ca = Int64Chunked::from_iter_options("start_us".into(), start.iter().copied());
        let got = operator_start_order(&rank, &ca);
        let mut want: Vec<(u32, i64, IdxSize)> =
            (0..n).map(|i| (rank[i].wrapping_add(1), start[i].unwrap_or(i64::MIN), i as IdxSize)).collect();
        want.sort_unstable();
        assert_eq!(got, want.iter().map(|k| k.2).collect::<Vec<_>>());
        assert!(got.len() == n && rank[got[0] as usize] == crate::par::NO_CODE);
        assert!(operator_start_order(&[], &Int64Chunked::from_vec("s".into(), vec![])).is_empty());
    }

    #[test]
    fn already_sorted_checks_every_neighbour_including_slice_edges() {
        let ops: Vec<Option<&str>> = (0..10_000).map(|i| Some(if i < 5_000 { "a" } else { "b" })).collect();
        let start: Vec<i64> = (0..10_000).map(|i| i % 5_000).collect();
        let df = |ops: &[Option<&str>], start: &[i64]| {
            DataFrame::new(
                ops.len(),
                vec![Column::new("operator_id".into(), ops.to_vec()), Column::new("start_us".into(), start.to_vec())],
            )
            .unwrap()
        };
        assert!(already_sorted(&df(&ops, &start)).unwrap());
        // one late call anywhere breaks it, at a slice edge too
        for at in [1usize, 2_500, 4_999, 5_000, 7_777, 9_999] {
            let mut s = start.clone();
            s.swap(at - 1, at);
            let want = (1..s.len()).all(|i| (ops[i - 1], s[i - 1]) <= (ops[i], s[i]));
            assert!(!want, "the swap at {at} unsorts");
            assert!(!already_sorted(&df(&ops, &s)).unwrap(), "{at}");
        }
        // a null operator sorts first, so it may only lead
        let mut o = ops.clone();
        o[0] = None;
        assert!(already_sorted(&df(&o, &start)).unwrap());
        o[0] = Some("a");
        o[6_000] = None;
        assert!(!already_sorted(&df(&o, &start)).unwrap());
    }

    #[test]
    fn rows_reads_across_chunks() {
        let mut ca = Int64Chunked::from_vec("x".into(), vec![0, 1, 2]);
        ca.append(&Int64Chunked::from_slice_options("x".into(), &[None, Some(4)])).unwrap();
        ca.append(&Int64Chunked::from_vec("x".into(), vec![5, 6, 7, 8])).unwrap();
        assert!(ca.chunks().len() > 1);
        let mut rows = Rows::new(&ca);
        let got: Vec<Option<i64>> = (0..9).map(|i| rows.get(i)).collect();
        assert_eq!(got, vec![Some(0), Some(1), Some(2), None, Some(4), Some(5), Some(6), Some(7), Some(8)]);
        // backwards and jumping still find the right chunk
        assert_eq!((rows.get(1), rows.get(8), rows.get(4)), (Some(1), Some(8), Some(4)));
        // readers borrowing one shared table read the same, each with its own cursor
        let table = Chunks::new(&ca);
        let (mut a, mut b) = (table.rows(), table.rows());
        assert_eq!((a.get(7), b.get(0), a.get(3), b.get(6)), (Some(7), Some(0), None, Some(6)));
        let got: Vec<Option<i64>> = (0..9).rev().map(|i| a.get(i)).collect();
        assert_eq!(got, vec![Some(8), Some(7), Some(6), Some(5), Some(4), None, Some(2), Some(1), Some(0)]);
    }
}
