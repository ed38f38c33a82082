//! Shifts, cut in one pass over the CDRs sorted by operator and start (no hash group-bys: the
//! operator runs are contiguous, so each is walked once, operators in parallel).
//!
//! A call that starts more than the break after every earlier call of that operator has ended starts
//! a new shift. Shifts may cross midnight; `day` is the local day the shift started.

use anyhow::Result;
use chrono_tz::Tz;
use polars::prelude::*;
use rayon::prelude::*;

/// One shift's aggregates.
#[derive(Default)]
struct Shift {
    op_row: usize,
    first_row: usize,
    no: u32,
    start: i64,
    end: i64,
    talk: i64,
    calls: u32,
    answered: u32,
    callees: u32,
}

/// Adds `shift_no` (UInt32, from 1 per operator) to `cdr` (sorted by `operator_id`, `start_us`) and
/// returns one row per shift: `operator_id, shift_no, first_row` (its first call's row in `cdr`; its
/// calls are the `calls` rows from there)`, shift_start_us, shift_end_us, talk_s, calls,
/// answered, distinct_callees, span_s, day (YYYY-MM-DD), talk_h, occupancy`.
pub fn cut(cdr: &mut DataFrame, break_us: i64, tz: Tz) -> Result<DataFrame> {
    // the columns read row by row, each in one piece (not the whole frame: that copied every column)
    let n = cdr.height();
    let ops = cdr.column("operator_id")?.str()?.clone();
    let talk = cdr.column("talk_s")?.cast(&DataType::Int64)?;
    let (start, end, talk) = (cdr.column("start_us")?.i64()?, cdr.column("end_us")?.i64()?, talk.i64()?);
    let (answered, callee) = (cdr.column("answered")?.bool()?, cdr.column("callee_num")?.u64()?);
    // operator runs: where the id differs from the row before, found in parallel slices
    let mut bounds = crate::par::run_starts(&ops);
    bounds.push(n);
    let runs: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
    use crate::frame::Chunks;
    let (start, end, talk) = (Chunks::new(start), Chunks::new(end), Chunks::new(talk));
    let (answered, callee) = (Chunks::new(answered), Chunks::new(callee));
    let per_run: Vec<(Vec<u32>, Vec<Shift>)> = runs
        .par_iter()
        .map(|&(a, b)| {
            let (mut start, mut end, mut talk) = (start.rows(), end.rows(), talk.rows());
            let (mut answered, mut callee) = (answered.rows(), callee.rows());
            let mut nos = Vec::with_capacity(b - a);
            let mut shifts: Vec<Shift> = Vec::new();
            // the shift's callees, counted distinct by sorting when it closes (cheaper than a hash
            // set for a few hundred numbers)
            let mut seen: Vec<u64> = Vec::new();
            let distinct = |seen: &mut Vec<u64>| {
                seen.sort_unstable();
                seen.dedup();
                seen.len() as u32
            };
            let mut max_end = i64::MIN;
            for i in a..b {
                let s = start.get(i).unwrap_or(0);
                let e = end.get(i).unwrap_or(s);
                if shifts.is_empty() || s - max_end > break_us {
                    if let Some(last) = shifts.last_mut() {
                        last.callees = distinct(&mut seen);
                    }
                    seen.clear();
                    let no = shifts.len() as u32 + 1;
                    shifts.push(Shift { op_row: a, first_row: i, no, start: s, end: e, ..Default::default() });
                    max_end = e;
                }
                max_end = max_end.max(e);
                let sh = shifts.last_mut().expect("a shift");
                sh.end = sh.end.max(e);
                sh.talk += talk.get(i).unwrap_or(0);
                sh.calls += 1;
                sh.answered += u32::from(answered.get(i).unwrap_or(false));
                if let Some(c) = callee.get(i) {
                    seen.push(c);
                }
                nos.push(sh.no);
            }
            if let Some(last) = shifts.last_mut() {
                last.callees = distinct(&mut seen);
            }
            (nos, shifts)
        })
        .collect();
    let mut shift_no: Vec<u32> = Vec::with_capacity(n);
    let mut all: Vec<Shift> = Vec::new();
    for (nos, shifts) in per_run {
        shift_no.extend(nos);
        all.extend(shifts);
    }
    cdr.with_column(Column::new("shift_no".into(), shift_no))?;
    let day = |us: i64| crate::frame::utc(us).with_timezone(&tz).format("%Y-%m-%d").to_string();
    let span: Vec<i64> = all.iter().map(|s| (s.end - s.start) / 1_000_000).collect();
    let df = DataFrame::new(
        all.len(),
        vec![
            Column::new("operator_id".into(), {
                // one reader in row order (ChunkedArray::get walks the chunk list each time)
                let table = crate::frame::Chunks::new(&ops);
                let mut ops = table.rows();
                all.iter().map(|s| ops.get(s.op_row).unwrap_or("").to_string()).collect::<Vec<_>>()
            }),
            Column::new("shift_no".into(), all.iter().map(|s| s.no).collect::<Vec<_>>()),
            Column::new("first_row".into(), all.iter().map(|s| s.first_row as u64).collect::<Vec<_>>()),
            Column::new("shift_start_us".into(), all.iter().map(|s| s.start).collect::<Vec<_>>()),
            Column::new("shift_end_us".into(), all.iter().map(|s| s.end).collect::<Vec<_>>()),
            Column::new("talk_s".into(), all.iter().map(|s| s.talk).collect::<Vec<_>>()),
            Column::new("calls".into(), all.iter().map(|s| s.calls).collect::<Vec<_>>()),
            Column::new("answered".into(), all.iter().map(|s| s.answered).collect::<Vec<_>>()),
            Column::new("distinct_callees".into(), all.iter().map(|s| s.callees).collect::<Vec<_>>()),
            Column::new("span_s".into(), span.clone()),
            Column::new("day".into(), all.iter().map(|s| day(s.start)).collect::<Vec<_>>()),
            Column::new("talk_h".into(), all.iter().map(|s| s.talk as f64 / 3600.0).collect::<Vec<_>>()),
            Column::new(
                "occupancy".into(),
                all.iter().zip(&span).map(|(s, sp)| s.talk as f64 / (*sp as f64).max(1.0)).collect::<Vec<_>>(),
            ),
        ],
    )?;
    Ok(df)
}
