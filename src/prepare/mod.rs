//! What every rule reads, prepared once per partition: the canonical legs sorted by operator and
//! start, each operator's row range, the shifts, the join log with UTC times.

pub mod shifts;
mod sort;

use anyhow::Result;
use chrono_tz::Tz;
use polars::prelude::*;
use std::time::Instant;

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

/// How a partition is prepared: resolved from the config and the rule registry
/// (`pipeline::prepare_options`), so this module knows neither.
#[derive(Clone, Debug)]
pub struct PrepareOptions {
    pub tz: Tz,
    /// A gap between calls longer than this (µs) starts a new shift.
    pub shift_break_us: i64,
    /// Optional fields that no rule reads: dropped before the sort.
    pub unread: Vec<&'static str>,
    /// ISO region of home numbers, upper case.
    pub home_region: String,
    /// `+86` for CN.
    pub home_prefix: String,
    /// Keep only the shifts that start on these local days (inclusive).
    pub days: Option<(chrono::NaiveDate, chrono::NaiveDate)>,
}

/// Fields of the loaded frame that preparation turns into others (`start_us`, `ref`, `answered`)
/// or that no rule reads after it: not carried through the sort.
const CONSUMED: [&str; 8] =
    ["start_time", "answer_time", "end_time", "duration_s", "source_line", "leg_id", "source_file", "disposition"];

impl AuditInput {
    pub fn prepare(cdr: DataFrame, joins: Option<DataFrame>, opts: &PrepareOptions) -> Result<Self> {
        Self::prepare_days(cdr, Default::default(), joins, opts)
    }

    /// A coded text column of `cdr` (`caller_id`, `caller_country`, `src_ip`, `ip_country`).
    pub fn coded(&self, name: &str) -> Result<crate::coded::CodedColumn<'_>> {
        Ok(self.dicts.column(&self.cdr, name)?)
    }

    /// As [`prepare`](Self::prepare), keeping only the shifts that start on a local day in
    /// `opts.days` (inclusive): a night shift stays whole, with its calls after midnight. `dicts` has the
    /// texts of the columns already coded by the loader; the others are coded here.
    pub fn prepare_days(
        cdr: DataFrame,
        mut dicts: crate::coded::Dicts,
        joins: Option<DataFrame>,
        opts: &PrepareOptions,
    ) -> Result<Self> {
        let mut cdr = cdr;
        for name in crate::coded::CODED {
            dicts.encode(&mut cdr, name)?;
        }
        let (tz, brk) = (opts.tz, opts.shift_break_us);
        let reference = reference(&cdr)?;
        let mut dropped: Vec<&str> = CONSUMED.to_vec();
        dropped.extend(opts.unread.iter().copied());
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
        crate::diag::trace("prepare columns", t0);
        let mut cdr = sort::sort_by_operator_start(cdr)?;
        let day = crate::frame::local_days(cdr.column("start_us")?.i64()?, tz).into_column().cast(&DataType::Date)?;
        cdr.with_column(day)?;
        crate::diag::trace("prepare days", t0);
        let mut shift_table = shifts::cut(&mut cdr, brk, tz)?;
        crate::diag::trace("prepare shifts", t0);
        if let Some((from, to)) = opts.days {
            // keep whole shifts that started on a selected day; an open end (MIN or MAX) is no
            // bound: its text (`+262142-12-31`) would compare below every day
            let text = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
            let mut keep = lit(true);
            if from != chrono::NaiveDate::MIN {
                keep = keep.and(col("day").gt_eq(lit(text(from))));
            }
            if to != chrono::NaiveDate::MAX {
                keep = keep.and(col("day").lt_eq(lit(text(to))));
            }
            let keep = shift_table.clone().lazy().filter(keep).collect()?;
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
            home_region: opts.home_region.clone(),
            home_prefix: opts.home_prefix.clone(),
            tz,
            has_ip_country,
            dicts,
        })
    }
}

/// `ref`: the call id; `file:line` only when some row has none (building 10 M strings is not free).
fn reference(cdr: &DataFrame) -> Result<Column> {
    if cdr.column("leg_id")?.null_count() == 0 {
        return Ok(cdr.column("leg_id")?.clone().with_name("ref".into()));
    }
    Ok(DataFrame::new(
        cdr.height(),
        vec![cdr.column("leg_id")?.clone(), cdr.column("source_file")?.clone(), cdr.column("source_line")?.clone()],
    )?
    .lazy()
    .select([coalesce(&[
        col("leg_id"),
        concat_str([col("source_file"), col("source_line").cast(DataType::String)], ":", false),
    ])
    .alias("ref")])
    .collect()?
    .column("ref")?
    .clone())
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

/// Each operator and its row range, in frame order (operator order).
pub(crate) fn ranges_in_order(input: &AuditInput) -> Vec<(&str, std::ops::Range<usize>)> {
    let mut v: Vec<(&str, std::ops::Range<usize>)> =
        input.op_rows.iter().map(|(o, r)| (o.as_str(), r.clone())).collect();
    v.sort_by_key(|(_, r)| r.start);
    v
}
