//! Small frame and time helpers shared by preparation, rules, reports and writers: UTC/local time
//! texts, local days, chunk-aware row readers, typed column access, rounding.

use anyhow::Result;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use polars::prelude::*;

/// The local calendar day (days since 1970-01-01) of each UTC-µs instant, in parallel slices with a
/// cache of the zone's offset ([`crate::time::UtcOffsets`]; a chrono-tz lookup per row is the slow
/// part otherwise).
pub fn local_days(us: &Int64Chunked, tz: Tz) -> Int32Chunked {
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

/// Local midnight starting `day` in `tz`, as UTC.
pub fn day_start(day: chrono::NaiveDate, tz: Tz) -> DateTime<Utc> {
    use chrono::TimeZone as _;
    let naive = day.and_hms_opt(0, 0, 0).expect("midnight");
    tz.from_local_datetime(&naive).earliest().map(|d| d.with_timezone(&Utc)).unwrap_or_else(|| naive.and_utc())
}

pub fn utc(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// `2026-03-02 20:14` in the audit's zone.
pub fn local(us: i64, tz: Tz) -> String {
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
pub fn local_seconds_texts(us: &Int64Chunked, tz: Tz) -> StringChunked {
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
pub struct Rows<'t, 'a, T: PolarsDataType> {
    /// (first row, end row, array) of each chunk, owned or borrowed from a [`Chunks`] table (`'t`)
    chunks: std::borrow::Cow<'t, [(usize, usize, &'a T::Array)]>,
    cur: usize,
}

/// The chunk table of a column, built once and shared by [`Rows`] readers (`rows()`).
pub struct Chunks<'a, T: PolarsDataType>(Vec<(usize, usize, &'a T::Array)>);

impl<'a, T: PolarsDataType> Chunks<'a, T> {
    pub fn new(ca: &'a ChunkedArray<T>) -> Self {
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
    pub fn rows(&self) -> Rows<'_, 'a, T> {
        Rows { chunks: std::borrow::Cow::Borrowed(&self.0[..]), cur: 0 }
    }
}

impl<'t, 'a, T: PolarsDataType> Rows<'t, 'a, T> {
    pub fn new(ca: &'a ChunkedArray<T>) -> Self {
        Self { chunks: std::borrow::Cow::Owned(Chunks::new(ca).0), cur: 0 }
    }

    /// The value at row `i` (which must be in the column).
    #[inline]
    pub fn get(&mut self, i: usize) -> Option<T::Physical<'a>> {
        let (start, end, _) = self.chunks[self.cur];
        if i < start || i >= end {
            self.cur = self.chunks.partition_point(|c| c.1 <= i);
        }
        let (start, _, arr) = self.chunks[self.cur];
        arr.get(i - start)
    }
}

pub fn col_str<'a>(df: &'a DataFrame, name: &str) -> Result<&'a StringChunked> {
    Ok(df.column(name)?.str()?)
}

pub fn col_i64(df: &DataFrame, name: &str) -> Result<Int64Chunked> {
    Ok(df.column(name)?.cast(&DataType::Int64)?.i64()?.clone())
}

pub fn col_f64(df: &DataFrame, name: &str) -> Result<Float64Chunked> {
    Ok(df.column(name)?.cast(&DataType::Float64)?.f64()?.clone())
}

/// Space-separated words cell → JSON array of strings.
pub fn words(cell: Option<&str>) -> serde_json::Value {
    serde_json::Value::from(
        cell.unwrap_or("").split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect::<Vec<_>>(),
    )
}

pub fn round(x: f64, places: i32) -> f64 {
    let p = 10f64.powi(places);
    (x * p).round() / p
}

/// Frames of operator partitions as one, sorted by `cols` and keeping each frame's own order
/// within equal keys (one frame is returned as it is: it is in that order already).
pub fn concat_sorted(mut frames: Vec<DataFrame>, cols: &[&str]) -> Result<DataFrame> {
    if frames.len() == 1 {
        return Ok(frames.remove(0));
    }
    let lfs: Vec<LazyFrame> = frames.into_iter().map(DataFrame::lazy).collect();
    Ok(concat(lfs, UnionArgs::default())?
        .sort(cols.iter().copied(), SortMultipleOptions::default().with_maintain_order(true))
        .collect()?)
}

#[cfg(test)]
mod tests {
    use super::*;

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
