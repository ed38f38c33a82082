//! The prepared frame's one sort: by operator, then start, then input order.

use crate::frame::Rows;
use anyhow::Result;
use polars::prelude::*;
use rayon::prelude::*;
use std::time::Instant;

/// Sort the calls by operator, then start, then input order (so ties are deterministic), with
/// integer keys (each operator's rank among the sorted distinct ids) instead of comparing strings,
/// and gather one column at a time, freeing each source column as its sorted copy is made: sorting
/// the whole frame at once held two copies of every column (the peak memory of a run).
pub(crate) fn sort_by_operator_start(mut df: DataFrame) -> Result<DataFrame> {
    let t0 = Instant::now();
    let n = df.height();
    if already_sorted(&df)? {
        // input already in operator and start order (some exports are): nothing to gather
        crate::diag::trace("sort keys (already sorted)", t0);
        return Ok(df);
    }
    let idx: Vec<IdxSize> = {
        // each row's rank among the sorted distinct operators
        let (_, rank) = crate::par::dictionary(df.column("operator_id")?.str()?);
        crate::diag::trace("sort ranks", t0);
        operator_start_order(&rank, df.column("start_us")?.i64()?)
    };
    crate::diag::trace("sort keys", t0);
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
    crate::diag::trace("sort gather", t0);
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
