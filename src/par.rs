//! Row-parallel work on columns: Polars runs a UDF on one thread, so per-row parsers and lookups cut
//! the rows into contiguous slices, map them with rayon, and glue the results back in order.

use polars::prelude::*;
use polars_arrow::array::{Array, Utf8ViewArray};
use rayon::prelude::*;

/// Map the rows `0..n`, cut into about two slices per thread, as `f(offset, len)`; results in order.
pub fn slices<T: Send>(n: usize, f: impl Fn(usize, usize) -> T + Sync) -> Vec<T> {
    let step = n.div_ceil(rayon::current_num_threads().max(1) * 2).max(1);
    (0..n).step_by(step).collect::<Vec<_>>().into_par_iter().map(|off| f(off, step.min(n - off))).collect()
}

/// Column types whose per-slice parts [`concat`] glues back together.
pub trait Part: Default {
    fn push(&mut self, other: &Self);
    fn named(self, name: &str) -> Self;
}

macro_rules! part {
    ($($t:ty),*) => {$(
        impl Part for $t {
            fn push(&mut self, other: &Self) {
                self.append(other).expect("parts of one column have one type");
            }
            fn named(self, name: &str) -> Self {
                self.with_name(name.into())
            }
        }
    )*};
}
part!(Int64Chunked, Int32Chunked, UInt32Chunked, UInt64Chunked, StringChunked, BooleanChunked, Float64Chunked);

/// Concatenate per-slice results in order, named `name` (an empty column when there are none).
pub fn concat<C: Part>(name: &str, parts: Vec<C>) -> C {
    let mut it = parts.into_iter();
    let mut acc = it.next().unwrap_or_default();
    for p in it {
        acc.push(&p);
    }
    acc.named(name)
}

/// The rows of a text column where a run of equal values (nulls equal to each other) begins, in
/// order, row 0 included when there are rows. Neighbours are compared by their 16-byte views first:
/// equal views are equal texts, and texts of up to 12 bytes sit whole in the view, so only unequal
/// longer ones compare their bytes (a byte compare per row was most of finding operator runs).
pub fn run_starts(ca: &StringChunked) -> Vec<usize> {
    let mut out = Vec::new();
    let mut base = 0;
    let mut last: Option<Option<&str>> = None;
    for arr in ca.downcast_iter() {
        if arr.is_empty() {
            continue;
        }
        let views = arr.views();
        let first = arr.get(0);
        if last.is_none_or(|l| l != first) {
            out.push(base);
        }
        let starts = slices(arr.len(), |off, len| {
            let mut v = Vec::new();
            for i in off.max(1)..off + len {
                let (a, b) = (arr.is_valid(i - 1), arr.is_valid(i));
                let differs = if a != b {
                    true
                } else if !b {
                    false
                } else {
                    let (x, y) = (views[i - 1], views[i]);
                    if x.as_u128() == y.as_u128() {
                        false
                    } else if x.length <= 12 && y.length <= 12 {
                        true
                    } else {
                        arr.value(i - 1) != arr.value(i)
                    }
                };
                if differs {
                    v.push(base + i);
                }
            }
            v
        });
        out.extend(starts.into_iter().flatten());
        last = Some(arr.get(arr.len() - 1));
        base += arr.len();
    }
    out
}

/// The code of a null row in [`dictionary`].
pub const NO_CODE: u32 = u32::MAX;

/// The distinct non-null values of rows `off..off + len` of one text array in the order first seen,
/// and each row's index into them ([`NO_CODE`] for a null). Equal views mean equal text within one
/// array (a short text is held whole in its view, a long one by buffer and offset), and Parquet
/// dictionary pages and repeated values give repeated views: a small cache by view answers most rows
/// without hashing their text. (u128::MAX would be a 4 GB text: never a real view.)
pub fn first_seen(arr: &Utf8ViewArray, off: usize, len: usize) -> (Vec<&str>, Vec<u32>) {
    let views = arr.views();
    let mut seen: PlHashMap<&str, u32> = PlHashMap::new();
    let mut values: Vec<&str> = Vec::new();
    let mut cache = [(u128::MAX, 0u32); 256];
    let codes = (off..off + len)
        .map(|i| {
            if !arr.is_valid(i) {
                return NO_CODE;
            }
            let view = views[i].as_u128();
            let slot = (view.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835) >> 120) as usize;
            if cache[slot].0 == view {
                return cache[slot].1;
            }
            let v = arr.value(i);
            let code = *seen.entry(v).or_insert_with(|| {
                values.push(v);
                (values.len() - 1) as u32
            });
            cache[slot] = (view, code);
            code
        })
        .collect();
    (values, codes)
}

/// The distinct non-null values of a text column, sorted, and each row's index into them
/// ([`NO_CODE`] for a null), hashing every row once: slices in parallel each keep their values in
/// the order first seen, then the small per-slice lists are merged and renumbered. (A distinct pass
/// followed by a lookup per row hashed every value twice.) The values borrow from `ca`.
pub fn dictionary(ca: &StringChunked) -> (Vec<&str>, Vec<u32>) {
    let mut parts: Vec<(Vec<&str>, Vec<u32>)> = Vec::new();
    for arr in ca.downcast_iter() {
        parts.extend(slices(arr.len(), |off, len| first_seen(arr, off, len)));
    }
    // the slices' lists repeat the same values (a time-ordered export has every operator in every
    // slice): made distinct by hashing first, so only the distinct values are sorted (sorting the
    // concatenated lists, 2 M texts for 10 k operators over 200 slices, was most of the time)
    let mut pos: PlHashMap<&str, u32> = PlHashMap::new();
    for (values, _) in &parts {
        for v in values {
            let n = pos.len() as u32;
            pos.entry(v).or_insert(n);
        }
    }
    let mut all: Vec<&str> = pos.keys().copied().collect();
    all.par_sort_unstable();
    for (i, v) in all.iter().enumerate() {
        pos.insert(v, i as u32);
    }
    let codes: Vec<Vec<u32>> = parts
        .into_par_iter()
        .map(|(values, codes)| {
            let to: Vec<u32> = values.iter().map(|v| pos[v]).collect();
            codes.into_iter().map(|c| if c == NO_CODE { c } else { to[c as usize] }).collect()
        })
        .collect();
    (all, codes.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_starts_match_a_plain_comparison_across_chunks_nulls_and_long_texts() {
        let long = "an-operator-id-longer-than-twelve-bytes";
        let vals: Vec<Option<String>> = (0..3000)
            .map(|i| match (i / 7) % 5 {
                0 => None,
                1 => Some(format!("op{:05}", i / 50)),
                2 => Some(format!("{long}-{}", i / 40)),
                3 => Some(long.to_string()),
                _ => Some(format!("{long}-{}", i / 40)),
            })
            .collect();
        let mut ca: StringChunked = vals[..1000].iter().map(|o| o.as_deref()).collect();
        for part in [&vals[1000..1001], &vals[1001..2500], &vals[2500..]] {
            ca.append(&part.iter().map(|o| o.as_deref()).collect::<StringChunked>()).unwrap();
        }
        assert_eq!(ca.chunks().len(), 4);
        let want: Vec<usize> = (0..vals.len()).filter(|&i| i == 0 || vals[i] != vals[i - 1]).collect();
        assert_eq!(run_starts(&ca), want);
        assert!(
            run_starts(&StringChunked::from_iter_options("e".into(), std::iter::empty::<Option<&str>>())).is_empty()
        );
    }

    #[test]
    fn dictionary_codes_every_row_into_sorted_distinct_values_across_chunks() {
        let mut ca: StringChunked = [Some("b"), None, Some("a"), Some("b")].into_iter().collect();
        let more: StringChunked = [Some("c"), Some("a"), None].into_iter().collect();
        ca.append(&more).unwrap();
        assert_eq!(ca.chunks().len(), 2);
        let (values, codes) = dictionary(&ca);
        assert_eq!(values, ["a", "b", "c"]);
        // long texts (held by buffer and offset, not inline) and repeats that fill the view cache
        let long: Vec<Option<String>> = (0..5000)
            .map(|i| (i % 7 != 3).then(|| format!("+85512345{:05}-a-long-caller-id", (i * 37) % 300)))
            .collect();
        let lc: StringChunked = long.iter().map(|o| o.as_deref()).collect();
        let (lv, lcodes) = dictionary(&lc);
        assert_eq!(lv.len(), 300);
        assert!(lv.windows(2).all(|w| w[0] < w[1]), "sorted, distinct");
        let back: Vec<Option<&str>> = lcodes.iter().map(|c| (*c != NO_CODE).then(|| lv[*c as usize])).collect();
        assert_eq!(back, lc.iter().collect::<Vec<_>>());
        let back: Vec<Option<&str>> = codes.iter().map(|c| (*c != NO_CODE).then(|| values[*c as usize])).collect();
        assert_eq!(back, ca.iter().collect::<Vec<_>>());
    }
}
