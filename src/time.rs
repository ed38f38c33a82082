//! Timestamp parsing for the shapes fraud desks actually receive.
//!
//! One function, [`parse_timestamp`], turns a text cell into microseconds since the Unix epoch (UTC).
//! Accepted shapes (all year-first or year-last dates, `-` or `/` or `.` separators, one- or two-digit
//! month/day/hour, optional seconds and fractions):
//!
//! | shape | example | zone |
//! |---|---|---|
//! | ISO / SQL | `2026-03-02 08:01:00`, `2026-03-02T08:01:00.250` | `--tz` |
//! | with offset | `2026-03-02T00:01:00Z`, `2026-03-02 08:01:00+08:00`, `… +0800`, `… UTC` | as written |
//! | spreadsheet | `2026/3/2 8:01`, `2026/3/2 8:01:00` | `--tz` |
//! | year last | `1/9/2017 16:33:01` (month first unless `day_first` or the first field > 12) | `--tz` |
//! | compact | `20260302080100` | `--tz` |
//! | epoch | `1772409660` (s), `1772409660000` (ms), `1772409660000000` (µs) | UTC |
//!
//! Naive local times in a daylight-saving gap are moved forward by the gap; ambiguous ones take the
//! earlier instant. chrono does the calendar and chrono-tz the zone rules; this module only reads the
//! digits, because chrono's `parse_from_str` needs one fixed format per call and exports mix several.

use chrono::{FixedOffset, LocalResult, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use std::cell::Cell;

/// How to read an ambiguous year-last date such as `01/02/2026`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DateOrder {
    /// `MM/DD/YYYY` (Excel en-US re-saves; the default).
    #[default]
    MonthFirst,
    /// `DD/MM/YYYY`.
    DayFirst,
}

/// Day 0 of a Polars `Date`.
pub const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");

/// The calendar day `days` after [`EPOCH`] (a Polars `Date`'s physical value); days before 1970
/// (never in a CDR export) read as 1970-01-01.
pub fn epoch_day(days: i32) -> NaiveDate {
    EPOCH + chrono::Days::new(days.max(0) as u64)
}

/// Parse a timestamp cell into UTC microseconds. `None` when the text is not a timestamp.
pub fn parse_timestamp(s: &str, tz: Tz, order: DateOrder) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let b = s.as_bytes();
    if let Some(v) = fast_sql_local(b, tz) {
        return Some(v);
    }
    if b.iter().all(|c| c.is_ascii_digit() || *c == b'.') {
        return parse_digits(s, tz);
    }
    let mut p = Cursor { b, i: 0 };
    let (y, mo, d) = p.date(order)?;
    // date only
    if p.eof() {
        let naive = NaiveDate::from_ymd_opt(y, mo, d)?.and_hms_opt(0, 0, 0)?;
        return local_to_utc(naive, tz);
    }
    match p.peek()? {
        b' ' | b'T' | b't' => p.i += 1,
        _ => return None,
    }
    while p.peek() == Some(b' ') {
        p.i += 1;
    }
    let h = p.num(1, 2)?;
    p.expect(b':')?;
    let mi = p.num(2, 2)?;
    let mut sec = 0;
    let mut micros = 0u32;
    if p.peek() == Some(b':') {
        p.i += 1;
        sec = p.num(2, 2)?;
        if matches!(p.peek(), Some(b'.') | Some(b',')) {
            p.i += 1;
            let start = p.i;
            let mut frac = 0u64;
            while let Some(c) = p.peek().filter(u8::is_ascii_digit) {
                if p.i - start < 6 {
                    frac = frac * 10 + u64::from(c - b'0');
                }
                p.i += 1;
            }
            let n = (p.i - start).min(6);
            if p.i == start {
                return None;
            }
            micros = (frac * 10u64.pow(6 - n as u32)) as u32;
        }
    }
    let naive = NaiveDate::from_ymd_opt(y, mo, d)?.and_hms_micro_opt(h, mi, sec, micros)?;
    while p.peek() == Some(b' ') {
        p.i += 1;
    }
    if p.eof() {
        return local_to_utc(naive, tz);
    }
    let offset = p.offset()?;
    if !p.eof() {
        return None;
    }
    let dt = FixedOffset::east_opt(offset)?.from_local_datetime(&naive).single()?;
    Some(dt.timestamp_micros())
}

/// The commonest shape, `YYYY-MM-DD HH:MM:SS` (or with `T`), read by fixed positions without
/// building chrono values; the zone offset comes from the per-hour cache. `None` hands the text to
/// the general parser (which also reports what is invalid).
#[inline]
fn fast_sql_local(b: &[u8], tz: Tz) -> Option<i64> {
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b' ' || b[10] == b'T')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let d = |i: usize| -> Option<i64> {
        let (x, y) = (b[i].wrapping_sub(b'0'), b[i + 1].wrapping_sub(b'0'));
        (x < 10 && y < 10).then(|| (x * 10 + y) as i64)
    };
    let year = d(0)? * 100 + d(2)?;
    let (mo, day, h, mi, sec) = (d(5)?, d(8)?, d(11)?, d(14)?, d(17)?);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let dim = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&mo) || day < 1 || day > dim[(mo - 1) as usize] || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    // days from civil (Howard Hinnant's algorithm)
    let y = if mo <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let local_s = days * 86_400 + h * 3600 + mi * 60 + sec;
    day_offset(tz, local_s).map(|off| (local_s - off) * 1_000_000)
}

fn parse_digits(s: &str, _tz: Tz) -> Option<i64> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    if int.is_empty() || frac.is_some_and(|f| f.contains('.')) {
        return None;
    }
    let v: i64 = int.parse().ok()?;
    match int.len() {
        // epoch seconds (2001-09-09 .. 2286) and a few years before
        9 | 10 => {
            let f = frac.map(|f| format!("{f:0<6}")[..6].parse::<i64>().ok()).unwrap_or(Some(0))?;
            Some(v * 1_000_000 + f)
        }
        13 if frac.is_none() => Some(v * 1_000),
        16 if frac.is_none() => Some(v),
        14 if frac.is_none() => {
            // compact local time YYYYMMDDHHMMSS
            let n = |a: usize, b: usize| int[a..b].parse::<u32>().ok();
            let naive = NaiveDate::from_ymd_opt(int[0..4].parse().ok()?, n(4, 6)?, n(6, 8)?)?.and_hms_opt(
                n(8, 10)?,
                n(10, 12)?,
                n(12, 14)?,
            )?;
            local_to_utc(naive, _tz)
        }
        _ => None,
    }
}

/// An entry of [`DAY_OFFSETS`] for a local day whose offset changes within it.
const CHANGES: i64 = i64::MIN;

thread_local! {
    /// (zone, local day since epoch, offset seconds or [`CHANGES`]) by day modulo 64: a CDR export
    /// spans a few days, so nearly every conversion is a lookup here instead of chrono-tz's
    /// transition search (30 M Parquet timestamps: ~0.3 s of CPU with a per-hour cache).
    static DAY_OFFSETS: [Cell<Option<(Tz, i64, i64)>>; 64] = const { [const { Cell::new(None) }; 64] };
}

/// The UTC offset (seconds) of the local day holding local second `local_s` since 1970, when one
/// offset holds all day: every hour's start and the day's last second read as the same single
/// instant offset (zones change offset at most a few times a year, never twice within an hour).
/// None on a day with a change (a daylight-saving day): such times take the full conversion.
fn day_offset(tz: Tz, local_s: i64) -> Option<i64> {
    let day = local_s.div_euclid(86_400);
    let slot = day.rem_euclid(64) as usize;
    let cached = DAY_OFFSETS.with(|d| d[slot].get());
    if let Some((z, d, off)) = cached
        && z == tz
        && d == day
    {
        return (off != CHANGES).then_some(off);
    }
    let offset_at = |t: i64| match tz.from_local_datetime(&chrono::DateTime::from_timestamp(t, 0)?.naive_utc()) {
        LocalResult::Single(dt) => Some(t - dt.timestamp()),
        _ => None,
    };
    let start = day * 86_400;
    let first = offset_at(start);
    let uniform = first.is_some() && (1..=24).all(|h| offset_at(start + (h * 3600).min(86_399)) == first);
    let off = if uniform { first } else { None };
    DAY_OFFSETS.with(|d| d[slot].set(Some((tz, day, off.unwrap_or(CHANGES)))));
    off
}

/// [`local_to_utc`] for wall-clock microseconds since 1970 (typed naive Parquet timestamps).
pub fn local_micros_to_utc(local_micros: i64, tz: Tz) -> Option<i64> {
    if let Some(off) = day_offset(tz, local_micros.div_euclid(1_000_000)) {
        return Some(local_micros - off * 1_000_000);
    }
    local_to_utc(chrono::DateTime::from_timestamp_micros(local_micros)?.naive_utc(), tz)
}

/// UTC seconds → the zone's offset there. A UTC day with one offset throughout (every day but a
/// zone's few change days a year) is kept as a range, so most values cost two compares; each day's
/// answer is remembered (sorted calls return to earlier days when the next operator's calls begin).
/// On a change day the offset is looked up once per quarter hour (changes fall on quarter hours; an
/// hour's cache let one offset answer Lord Howe's half-hour change).
pub struct UtcOffsets {
    tz: Tz,
    /// [lo, hi): UTC seconds of the last uniform day; `shift` its offset
    lo: i64,
    hi: i64,
    shift: i64,
    days: polars::prelude::PlHashMap<i64, Option<i64>>,
    last: (i64, i64),
    seen: polars::prelude::PlHashMap<i64, i64>,
}

impl UtcOffsets {
    pub fn new(tz: Tz) -> Self {
        Self { tz, lo: 0, hi: 0, shift: 0, days: Default::default(), last: (i64::MIN, 0), seen: Default::default() }
    }

    /// The offset east of UTC, in seconds, at `utc_secs`.
    #[inline]
    pub fn offset(&mut self, utc_secs: i64) -> i64 {
        if utc_secs >= self.lo && utc_secs < self.hi {
            return self.shift;
        }
        self.offset_slow(utc_secs)
    }

    fn offset_slow(&mut self, utc_secs: i64) -> i64 {
        use chrono::Offset;
        let tz = self.tz;
        let at = |t: i64| {
            let t = chrono::DateTime::from_timestamp(t, 0).unwrap_or_default().naive_utc();
            i64::from(tz.offset_from_utc_datetime(&t).fix().local_minus_utc())
        };
        let day = utc_secs.div_euclid(86_400);
        // one offset at every hour's start and the day's last second: one offset all day (zones
        // never change twice within an hour)
        let uniform = *self.days.entry(day).or_insert_with(|| {
            let first = at(day * 86_400);
            (1..=24).all(|h| at(day * 86_400 + (h * 3600).min(86_399)) == first).then_some(first)
        });
        if let Some(off) = uniform {
            (self.lo, self.hi, self.shift) = (day * 86_400, day * 86_400 + 86_400, off);
            return off;
        }
        let quarter = utc_secs.div_euclid(900);
        if quarter != self.last.0 {
            let o = *self.seen.entry(quarter).or_insert_with(|| at(quarter * 900));
            self.last = (quarter, o);
        }
        self.last.1
    }
}

/// [`local_micros_to_utc`] for a run of values (a column slice): the last day with one offset all
/// day is kept as a range of local µs, so most values cost two compares instead of a zone lookup
/// (~5% of reading a Parquet file went to that lookup per value).
pub struct LocalMicrosToUtc {
    tz: Tz,
    /// [lo, hi): local µs of the last uniform day; `shift` its offset in µs
    lo: i64,
    hi: i64,
    shift: i64,
}

impl LocalMicrosToUtc {
    pub fn new(tz: Tz) -> Self {
        Self { tz, lo: 0, hi: 0, shift: 0 }
    }

    #[inline]
    pub fn convert(&mut self, local_micros: i64) -> Option<i64> {
        const DAY: i64 = 86_400_000_000;
        if local_micros >= self.lo && local_micros < self.hi {
            return Some(local_micros - self.shift);
        }
        let day = local_micros.div_euclid(DAY);
        match day_offset(self.tz, day * 86_400) {
            Some(off) => {
                (self.lo, self.hi, self.shift) = (day * DAY, day * DAY + DAY, off * 1_000_000);
                Some(local_micros - self.shift)
            }
            None => local_micros_to_utc(local_micros, self.tz),
        }
    }
}

/// Convert a naive local time in `tz` to UTC microseconds.
pub fn local_to_utc(naive: NaiveDateTime, tz: Tz) -> Option<i64> {
    let local_micros = naive.and_utc().timestamp_micros();
    if let Some(off) = day_offset(tz, local_micros.div_euclid(1_000_000)) {
        return Some(local_micros - off * 1_000_000);
    }
    let dt = match tz.from_local_datetime(&naive) {
        LocalResult::Single(dt) => dt,
        LocalResult::Ambiguous(earliest, _) => earliest,
        // In a spring-forward gap: read the wall clock with the offset in force just before it.
        LocalResult::None => {
            let before = naive - chrono::Duration::hours(3);
            let off = match tz.from_local_datetime(&before) {
                LocalResult::Single(dt) | LocalResult::Ambiguous(dt, _) => {
                    before.and_utc().timestamp() - dt.timestamp()
                }
                LocalResult::None => return None,
            };
            return Some(local_micros - off * 1_000_000);
        }
    };
    Some(dt.timestamp_micros())
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn eof(&self) -> bool {
        self.i >= self.b.len()
    }
    fn expect(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }
    /// A number of `min..=max` digits.
    fn num(&mut self, min: usize, max: usize) -> Option<u32> {
        let start = self.i;
        let mut v = 0u32;
        while self.i - start < max {
            match self.peek() {
                Some(c) if c.is_ascii_digit() => {
                    v = v * 10 + u32::from(c - b'0');
                    self.i += 1;
                }
                _ => break,
            }
        }
        (self.i - start >= min).then_some(v)
    }
    fn sep(&mut self) -> Option<u8> {
        let c = self.peek()?;
        matches!(c, b'-' | b'/' | b'.').then(|| {
            self.i += 1;
            c
        })
    }
    fn date(&mut self, order: DateOrder) -> Option<(i32, u32, u32)> {
        let start = self.i;
        let first = self.num(1, 4)?;
        let first_len = self.i - start;
        let s1 = self.sep()?;
        let second = self.num(1, 2)?;
        let s2 = self.sep()?;
        if s1 != s2 {
            return None;
        }
        if first_len == 4 {
            let d = self.num(1, 2)?;
            return Some((first as i32, second, d));
        }
        if first_len > 2 {
            return None;
        }
        let y = self.num(4, 4)?;
        let (m, d) = if first > 12 {
            (second, first)
        } else if second > 12 {
            (first, second)
        } else {
            match order {
                DateOrder::MonthFirst => (first, second),
                DateOrder::DayFirst => (second, first),
            }
        };
        Some((y as i32, m, d))
    }
    /// `Z`, `UTC`, `GMT`, `+08:00`, `+0800`, `+08`; returns seconds east of UTC.
    fn offset(&mut self) -> Option<i32> {
        let rest = &self.b[self.i..];
        for name in [&b"Z"[..], b"z", b"UTC", b"GMT"] {
            if rest.starts_with(name) {
                self.i += name.len();
                if self.eof() {
                    return Some(0);
                }
                if !matches!(self.peek(), Some(b'+') | Some(b'-')) {
                    return None;
                }
            }
        }
        let sign = match self.peek()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        self.i += 1;
        let h = self.num(2, 2)? as i32;
        if self.peek() == Some(b':') {
            self.i += 1;
        }
        let m = self.num(2, 2).unwrap_or(0) as i32;
        (h <= 18 && m < 60).then_some(sign * (h * 3600 + m * 60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Tz;

    fn utc(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros()
    }

    #[test]
    fn shapes_table() {
        let sh: Tz = "Asia/Shanghai".parse().unwrap();
        let cases: &[(&str, Option<&str>)] = &[
            ("2026-03-02 08:01:00", Some("2026-03-02T00:01:00Z")),
            ("2026-03-02T08:01:00", Some("2026-03-02T00:01:00Z")),
            ("2026-03-02 08:01:00.250", Some("2026-03-02T00:01:00.25Z")),
            ("2026-03-02T00:01:00Z", Some("2026-03-02T00:01:00Z")),
            ("2026-03-02 08:01:00+08:00", Some("2026-03-02T00:01:00Z")),
            ("2026-03-02 09:01:00 +0900", Some("2026-03-02T00:01:00Z")),
            ("2026-03-02 00:01:00 UTC", Some("2026-03-02T00:01:00Z")),
            ("2026-03-01T19:01:00-05:00", Some("2026-03-02T00:01:00Z")),
            ("2026/3/2 8:01", Some("2026-03-02T00:01:00Z")),
            ("2026/3/2 8:01:00", Some("2026-03-02T00:01:00Z")),
            ("3/2/2026 8:01:00", Some("2026-03-02T00:01:00Z")),
            ("1/9/2017 16:33:01", Some("2017-01-09T08:33:01Z")),
            ("25/12/2025 10:00", Some("2025-12-25T02:00:00Z")),
            ("20260302080100", Some("2026-03-02T00:01:00Z")),
            ("1772409660", Some("2026-03-02T00:01:00Z")),
            ("1772409660000", Some("2026-03-02T00:01:00Z")),
            ("1772409660.5", Some("2026-03-02T00:01:00.5Z")),
            ("2026-03-02", Some("2026-03-01T16:00:00Z")),
            ("", None),
            ("N/A", None),
            ("2026-13-02 08:01:00", None),
            ("2026-02-30 08:01:00", None),
            ("2026-03-02 25:01:00", None),
            ("2026-03-02 08:01:00 junk", None),
            ("2026-03/02 08:01", None),
            ("12345", None),
        ];
        for (input, want) in cases {
            let got = parse_timestamp(input, sh, DateOrder::MonthFirst);
            assert_eq!(got, want.map(utc), "input {input:?}");
        }
    }

    #[test]
    fn fast_path_agrees_with_the_general_parser() {
        let sh: Tz = "Asia/Shanghai".parse().unwrap();
        let ny: Tz = "America/New_York".parse().unwrap();
        for tz in [sh, ny] {
            for s in [
                "2026-03-02 08:01:00",
                "2024-02-29 23:59:59",
                "2026-03-08 03:30:00",
                "1999-12-31T00:00:00",
                "2026-11-01 00:30:00",
            ] {
                // prime the cache with the same hour, then compare with chrono's answer
                let naive = chrono::NaiveDateTime::parse_from_str(&s.replace('T', " "), "%Y-%m-%d %H:%M:%S").unwrap();
                let want = local_to_utc(naive, tz);
                assert_eq!(parse_timestamp(s, tz, DateOrder::MonthFirst), want, "{s} {tz}");
            }
        }
        assert_eq!(parse_timestamp("2025-02-29 10:00:00", sh, DateOrder::MonthFirst), None);
    }

    #[test]
    fn day_first_order_and_dst() {
        let sh: Tz = "Asia/Shanghai".parse().unwrap();
        assert_eq!(parse_timestamp("01/02/2026 00:00", sh, DateOrder::DayFirst), Some(utc("2026-01-31T16:00:00Z")));
        let ny: Tz = "America/New_York".parse().unwrap();
        // 2026-03-08 02:30 does not exist in New York: read with the pre-gap offset (-5h).
        assert_eq!(
            parse_timestamp("2026-03-08 02:30:00", ny, DateOrder::MonthFirst),
            Some(utc("2026-03-08T07:30:00Z"))
        );
        // 2026-11-01 01:30 happens twice: the earlier (EDT, -4h) wins.
        assert_eq!(
            parse_timestamp("2026-11-01 01:30:00", ny, DateOrder::MonthFirst),
            Some(utc("2026-11-01T05:30:00Z"))
        );
        // the per-day cache must not leak one zone's offset into another
        let a = parse_timestamp("2026-06-01 12:00:00", sh, DateOrder::MonthFirst);
        let b = parse_timestamp("2026-06-01 12:00:00", ny, DateOrder::MonthFirst);
        assert_eq!(b.unwrap() - a.unwrap(), 12 * 3_600_000_000);
    }

    /// The cached conversion against chrono-tz itself, every 7 minutes through a year (days visited
    /// out of order, so cache slots are refilled and overwritten), in zones with an hour's and a
    /// half hour's daylight saving: equal except in the gaps, which move forward as documented.
    #[test]
    fn cached_offsets_match_chrono_tz_all_year() {
        for zone in ["America/New_York", "Australia/Lord_Howe", "Asia/Shanghai", "Europe/London"] {
            let tz: Tz = zone.parse().unwrap();
            let year_start = utc("2026-01-01T00:00:00Z") / 1_000_000;
            // days 0, 200, 35, 235, ...: a stride coprime with 365 visits each once, out of order
            for k in 0..365 {
                let day = (k * 200) % 365;
                for m in (0..1440).step_by(7) {
                    let local_s = year_start + day * 86_400 + m * 60;
                    let naive = chrono::DateTime::from_timestamp(local_s, 0).unwrap().naive_utc();
                    let want = match tz.from_local_datetime(&naive) {
                        LocalResult::Single(dt) | LocalResult::Ambiguous(dt, _) => Some(dt.timestamp_micros()),
                        LocalResult::None => None,
                    };
                    let got = local_micros_to_utc(local_s * 1_000_000, tz);
                    match want {
                        Some(w) => assert_eq!(got, Some(w), "{zone} {naive}"),
                        // a gap: the pre-gap offset, so the result is later than any instant before the gap
                        None => assert!(got.is_some(), "{zone} {naive} in a gap has a reading"),
                    }
                }
            }
        }
    }
}
