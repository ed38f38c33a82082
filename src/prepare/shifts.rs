//! Shifts, cut in one pass over the CDRs sorted by operator and start (no hash group-bys: the
//! operator runs are contiguous, so each is walked once, operators in parallel).
//!
//! A call that starts more than the break after every earlier call of that operator has ended starts
//! a new shift. Shifts may cross midnight; `day` is the local day the shift started.
//!
//! A shift's talk is the union of its calls' talk intervals (answer to answer + talk): calls that
//! overlap on one seat (a shared account, a transfer) never add up to more than the wall clock.
//! Their summed talk, the peak number of answered calls at once and the time spent at two or more
//! are kept for `shared-seat`. Unanswered attempts (a predictive dialer's overlapping ringing) are
//! no talk and no concurrency.

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
    /// Most answered calls at once, when that was first reached, seconds at two or more.
    peak: u32,
    peak_at: i64,
    concurrent: i64,
    /// Calls and summed talk (s) by direction code (outbound, inbound, internal, unknown).
    dir_calls: [u32; 4],
    dir_talk: [i64; 4],
}

/// One shift's talk intervals (µs): union, peak concurrency and when, time at two or more. The
/// common shift has no overlap and is summed as it is walked; only a shift where an interval
/// starts before the earlier ones ended is measured here.
fn overlap_of(iv: &[(i64, i64)]) -> (i64, u32, i64, i64) {
    let mut ev: Vec<(i64, i32)> = iv.iter().flat_map(|&(a, b)| [(a, 1), (b, -1)]).collect();
    // ends before starts at one instant: back-to-back calls are not concurrent
    ev.sort_unstable();
    let (mut level, mut peak, mut peak_at) = (0i32, 0i32, 0i64);
    let (mut union, mut at2, mut since) = (0i64, 0i64, 0i64);
    for (t, d) in ev {
        if level >= 1 {
            union += t - since;
        }
        if level >= 2 {
            at2 += t - since;
        }
        since = t;
        level += d;
        if level > peak {
            peak = level;
            peak_at = t;
        }
    }
    (union, peak.max(0) as u32, peak_at, at2)
}

/// Adds `shift_no` (UInt32, from 1 per operator) to `cdr` (sorted by `operator_id`, `start_us`) and
/// returns one row per shift: `operator_id, shift_no, first_row` (its first call's row in `cdr`; its
/// calls are the `calls` rows from there)`, shift_start_us, shift_end_us, talk_s (the union),
/// talk_sum_s, peak_concurrent, peak_at_us, concurrent_s, calls, answered, distinct_callees, span_s,
/// day (YYYY-MM-DD), talk_h, calls_/talk_{outbound,inbound,internal}(_s), occupancy`.
pub fn cut(cdr: &mut DataFrame, break_us: i64, tz: Tz) -> Result<DataFrame> {
    // the columns read row by row, each in one piece (not the whole frame: that copied every column)
    let n = cdr.height();
    let ops = cdr.column("operator_id")?.str()?.clone();
    let talk = cdr.column("talk_s")?.cast(&DataType::Int64)?;
    let (start, end, talk) = (cdr.column("start_us")?.i64()?, cdr.column("end_us")?.i64()?, talk.i64()?);
    let (answered, callee) = (cdr.column("answered")?.bool()?, cdr.column("callee_num")?.u64()?);
    let answer = cdr.column("answer_us")?.i64()?;
    let dir = cdr.column("direction")?.u32()?;
    // operator runs: where the id differs from the row before, found in parallel slices
    let mut bounds = crate::par::run_starts(&ops);
    bounds.push(n);
    let runs: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
    use crate::frame::Chunks;
    let (start, end, talk) = (Chunks::new(start), Chunks::new(end), Chunks::new(talk));
    let (answered, callee) = (Chunks::new(answered), Chunks::new(callee));
    let (answer, dir) = (Chunks::new(answer), Chunks::new(dir));
    let per_run: Vec<(Vec<u32>, Vec<Shift>)> = runs
        .par_iter()
        .map(|&(a, b)| {
            let (mut start, mut end, mut talk) = (start.rows(), end.rows(), talk.rows());
            let (mut answered, mut callee) = (answered.rows(), callee.rows());
            let (mut answer, mut dir) = (answer.rows(), dir.rows());
            // the shift's talk intervals, measured exactly when two of them overlap
            let mut iv: Vec<(i64, i64)> = Vec::new();
            let (mut covered, mut overlap) = (i64::MIN, false);
            let close = |sh: &mut Shift, iv: &mut Vec<(i64, i64)>, overlap: bool| {
                if overlap {
                    let (u, peak, at, at2) = overlap_of(iv);
                    sh.talk = u / 1_000_000;
                    (sh.peak, sh.peak_at, sh.concurrent) = (peak, at, at2 / 1_000_000);
                }
                iv.clear();
            };
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
                        close(last, &mut iv, overlap);
                    }
                    (covered, overlap) = (i64::MIN, false);
                    seen.clear();
                    let no = shifts.len() as u32 + 1;
                    shifts.push(Shift { op_row: a, first_row: i, no, start: s, end: e, ..Default::default() });
                    max_end = e;
                }
                max_end = max_end.max(e);
                let sh = shifts.last_mut().expect("a shift");
                sh.end = sh.end.max(e);
                let t = talk.get(i).unwrap_or(0);
                let d = (dir.get(i).unwrap_or(3) as usize).min(3);
                sh.dir_calls[d] += 1;
                sh.dir_talk[d] += t;
                if t > 0 {
                    let a = answer.get(i).unwrap_or(e - t * 1_000_000);
                    let b = a + t * 1_000_000;
                    overlap |= a < covered;
                    covered = covered.max(b);
                    iv.push((a, b));
                    sh.peak = sh.peak.max(1);
                    if sh.peak_at == 0 {
                        sh.peak_at = a;
                    }
                }
                sh.talk += t;
                sh.calls += 1;
                sh.answered += u32::from(answered.get(i).unwrap_or(false));
                if let Some(c) = callee.get(i) {
                    seen.push(c);
                }
                nos.push(sh.no);
            }
            if let Some(last) = shifts.last_mut() {
                last.callees = distinct(&mut seen);
                close(last, &mut iv, overlap);
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
    table(&all, &ops, tz)
}

/// The shift table's columns (see [`cut`]).
fn table(all: &[Shift], ops: &StringChunked, tz: Tz) -> Result<DataFrame> {
    let day = |us: i64| crate::frame::utc(us).with_timezone(&tz).format("%Y-%m-%d").to_string();
    let span: Vec<i64> = all.iter().map(|s| (s.end - s.start) / 1_000_000).collect();
    let df = DataFrame::new(
        all.len(),
        vec![
            Column::new("operator_id".into(), {
                // one reader in row order (ChunkedArray::get walks the chunk list each time)
                let table = crate::frame::Chunks::new(ops);
                let mut ops = table.rows();
                all.iter().map(|s| ops.get(s.op_row).unwrap_or("").to_string()).collect::<Vec<_>>()
            }),
            Column::new("shift_no".into(), all.iter().map(|s| s.no).collect::<Vec<_>>()),
            Column::new("first_row".into(), all.iter().map(|s| s.first_row as u64).collect::<Vec<_>>()),
            Column::new("shift_start_us".into(), all.iter().map(|s| s.start).collect::<Vec<_>>()),
            Column::new("shift_end_us".into(), all.iter().map(|s| s.end).collect::<Vec<_>>()),
            Column::new("talk_s".into(), all.iter().map(|s| s.talk).collect::<Vec<_>>()),
            Column::new("talk_sum_s".into(), all.iter().map(|s| s.dir_talk.iter().sum::<i64>()).collect::<Vec<_>>()),
            Column::new("peak_concurrent".into(), all.iter().map(|s| s.peak).collect::<Vec<_>>()),
            Column::new("peak_at_us".into(), all.iter().map(|s| s.peak_at).collect::<Vec<_>>()),
            Column::new("concurrent_s".into(), all.iter().map(|s| s.concurrent).collect::<Vec<_>>()),
            Column::new("calls".into(), all.iter().map(|s| s.calls).collect::<Vec<_>>()),
            Column::new("answered".into(), all.iter().map(|s| s.answered).collect::<Vec<_>>()),
            Column::new("distinct_callees".into(), all.iter().map(|s| s.callees).collect::<Vec<_>>()),
            Column::new("span_s".into(), span.clone()),
            Column::new("day".into(), all.iter().map(|s| day(s.start)).collect::<Vec<_>>()),
            Column::new("talk_h".into(), all.iter().map(|s| s.talk as f64 / 3600.0).collect::<Vec<_>>()),
            Column::new("calls_outbound".into(), all.iter().map(|s| s.dir_calls[0]).collect::<Vec<_>>()),
            Column::new("calls_inbound".into(), all.iter().map(|s| s.dir_calls[1]).collect::<Vec<_>>()),
            Column::new("calls_internal".into(), all.iter().map(|s| s.dir_calls[2]).collect::<Vec<_>>()),
            Column::new("talk_outbound_s".into(), all.iter().map(|s| s.dir_talk[0]).collect::<Vec<_>>()),
            Column::new("talk_inbound_s".into(), all.iter().map(|s| s.dir_talk[1]).collect::<Vec<_>>()),
            Column::new("talk_internal_s".into(), all.iter().map(|s| s.dir_talk[2]).collect::<Vec<_>>()),
            Column::new(
                "occupancy".into(),
                all.iter().zip(&span).map(|(s, sp)| s.talk as f64 / (*sp as f64).max(1.0)).collect::<Vec<_>>(),
            ),
        ],
    )?;
    Ok(df)
}
