//! Row-parallel work on columns: Polars runs a UDF on one thread, so per-row parsers and lookups cut
//! the rows into contiguous slices, map them with rayon, and glue the results back in order.

use polars::prelude::*;
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
part!(Int64Chunked, Int32Chunked, UInt32Chunked, UInt64Chunked, StringChunked, BooleanChunked);

/// Concatenate per-slice results in order, named `name` (an empty column when there are none).
pub fn concat<C: Part>(name: &str, parts: Vec<C>) -> C {
    let mut it = parts.into_iter();
    let mut acc = it.next().unwrap_or_default();
    for p in it {
        acc.push(&p);
    }
    acc.named(name)
}

/// The distinct non-null values of a text column, sorted; each chunk's rows are hashed in parallel
/// slices. The values borrow from `ca`.
pub fn distinct_sorted(ca: &StringChunked) -> Vec<&str> {
    let mut distinct: PlHashSet<&str> = PlHashSet::new();
    for arr in ca.downcast_iter() {
        let sets: Vec<PlHashSet<&str>> =
            slices(arr.len(), |off, len| (off..off + len).filter_map(|i| arr.get(i)).collect());
        for s in sets {
            distinct.extend(s);
        }
    }
    let mut v: Vec<&str> = distinct.into_iter().collect();
    v.sort_unstable();
    v
}
