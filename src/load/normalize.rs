//! Raw text fields → the canonical typed schema, as Polars lazy expressions.
//!
//! Derivations (documented in docs/formats.md and docs/schema.md): talk from billsec, else end − answer, else the whole
//! duration when the disposition says ANSWERED, else 0; end from start + duration, else answer + talk;
//! duration from end − start; answered when talk > 0 or the disposition says so; answer time is null
//! for unanswered calls and derived as end − talk when missing. Durations of 65 000 s or more are the
//! overflow sentinels of VICIdial and some switches: treated as unknown, not as 18-hour calls.
//! Every row that cannot be used gets a `reject_code` (an index into [`CDR_REASONS`] or [`JOIN_REASONS`]) instead of being dropped silently.

use crate::time::{DateOrder, parse_timestamp};
use chrono_tz::Tz;
use polars::prelude::*;
use polars_arrow::array::{Array, PrimitiveArray};
use polars_arrow::bitmap::Bitmap;

/// Seconds above which a duration is an overflow sentinel.
pub const DURATION_SENTINEL: i64 = 65_000;

const US: i64 = 1_000_000;

/// A CDR column coded as it is typed, with its dictionary.
pub type Streamed = (&'static str, std::sync::Arc<crate::coded::StreamDict>);

/// A timestamp or duration that is present in a text input but cannot be read: the splitter parses
/// these fields itself (see `RawBuilder`) and marks such values, so the reject reason stays
/// "unparseable …" rather than "missing …".
pub const UNPARSED: i64 = i64::MIN;

/// An already typed column with [`UNPARSED`] marks turned into nulls.
fn unmark(ca: &Int64Chunked, name: &PlSmallStr) -> Int64Chunked {
    // a vectorised compare: iterating 10 M options per column to find no mark cost ~0.15 s each
    if ca.equal(UNPARSED).any() {
        ca.iter().map(|v| v.filter(|x| *x != UNPARSED)).collect::<Int64Chunked>().with_name(name.clone())
    } else {
        ca.clone().with_name(name.clone())
    }
}

fn i64_field(name: &str) -> impl Fn(&Schema, &Field) -> PolarsResult<Field> + Send + Sync + 'static {
    let name = PlSmallStr::from(name);
    move |_, _| Ok(Field::new(name.clone(), DataType::Int64))
}

/// Apply `f` to every value of a text column in parallel slices (the loader's UDFs are per-row
/// parsers; Polars runs a UDF on one thread).
pub fn par_map_i64(ca: &StringChunked, name: &str, f: impl Fn(&str) -> Option<i64> + Sync) -> Int64Chunked {
    let parts = crate::par::slices(ca.len(), |off, len| {
        ca.slice(off as i64, len).iter().map(|o| o.and_then(&f)).collect::<Int64Chunked>()
    });
    crate::par::concat(name, parts)
}

/// Parse a text column of timestamps into UTC microseconds (Int64, null when unparseable).
pub fn ts(name: &str, tz: Tz, order: DateOrder) -> Expr {
    let out = PlSmallStr::from(format!("{name}__ts"));
    col(name)
        .map(
            move |c: Column| {
                // text timestamps parsed by the splitter, and Parquet/NDJSON ones, arrive already typed
                // as UTC microseconds
                if c.dtype() == &DataType::Int64 {
                    return Ok(unmark(c.i64()?, &out).into_column());
                }
                let v = par_map_i64(c.str()?, &out, |s| parse_timestamp(s, tz, order));
                Ok(v.into_column())
            },
            i64_field(&format!("{name}__ts")),
        )
        .alias(format!("{name}__ts"))
}

/// `123`, `123.4`, `00:02:03`, `2:03` → whole seconds; anything else null.
pub fn parse_seconds(s: &str) -> Option<i64> {
    // the common shape first: a plain count of seconds
    if !s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.contains(':') {
        let mut total = 0i64;
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() > 3 {
            return None;
        }
        for p in parts {
            let v: f64 = p.parse().ok()?;
            if v < 0.0 {
                return None;
            }
            total = total * 60 + v.round() as i64;
        }
        return Some(total);
    }
    let v: f64 = s.parse().ok()?;
    v.is_finite().then(|| v.round() as i64)
}

fn secs(name: &str) -> Expr {
    let out = format!("{name}__n");
    let out2 = PlSmallStr::from(out.as_str());
    col(name)
        .map(
            move |c: Column| {
                // Parquet/NDJSON durations arrive as numbers
                if c.dtype().is_integer() {
                    return Ok(unmark(c.cast(&DataType::Int64)?.i64()?, &out2).into_column());
                }
                if c.dtype().is_float() {
                    return Ok(c
                        .cast(&DataType::Float64)?
                        .f64()?
                        .apply_values(f64::round)
                        .cast(&DataType::Int64)?
                        .into_column()
                        .with_name(out2.clone()));
                }
                Ok(par_map_i64(c.str()?, &out2, parse_seconds).into_column())
            },
            i64_field(&out),
        )
        .alias(out)
}

/// The canonical dispositions; the CDR frame holds a disposition as its index here (`u32`): ten
/// million short strings were 160 MB of views for six values.
pub const DISPOSITIONS: [&str; 6] = ["ANSWERED", "NO_ANSWER", "BUSY", "FAILED", "CONGESTION", "OTHER"];

/// The [`DISPOSITIONS`] code of a canonical disposition.
pub fn disposition_code(canonical: &str) -> u32 {
    DISPOSITIONS.iter().position(|d| *d == canonical).expect("a canonical disposition") as u32
}

/// Map a switch's disposition / hangup cause / dialer status to the canonical set.
/// `None` means "decide from talk time" (FreeSWITCH NORMAL_CLEARING is both answered and cancelled calls).
pub fn canonical_disposition(raw: &str) -> Option<&'static str> {
    let u: String = raw.trim().to_uppercase().replace([' ', '-'], "_");
    Some(match u.as_str() {
        "" | "NORMAL_CLEARING" => return None,
        "ANSWERED" | "ANSWER" | "CONNECTED" | "SUCCESS" | "OK" | "COMPLETED" | "SALE" | "接通" | "已接通" | "成功"
        | "已接听" => "ANSWERED",
        "NO_ANSWER" | "NOANSWER" | "NA" | "NO_USER_RESPONSE" | "ORIGINATOR_CANCEL" | "CANCEL" | "CANCELED"
        | "CANCELLED" | "RING_NO_ANSWER" | "NOT_ANSWERED" | "未接通" | "未接" | "无人接听" | "未应答" => {
            "NO_ANSWER"
        }
        "BUSY" | "USER_BUSY" | "B" | "忙" | "用户忙" | "占线" => "BUSY",
        "FAILED"
        | "FAIL"
        | "FAILURE"
        | "CALL_REJECTED"
        | "UNALLOCATED_NUMBER"
        | "NO_ROUTE_DESTINATION"
        | "INVALID_NUMBER_FORMAT"
        | "DESTINATION_OUT_OF_ORDER"
        | "NORMAL_TEMPORARY_FAILURE"
        | "RECOVERY_ON_TIMER_EXPIRE"
        | "失败"
        | "呼叫失败"
        | "空号"
        | "拒接" => "FAILED",
        "CONGESTION" | "NORMAL_CIRCUIT_CONGESTION" | "SWITCH_CONGESTION" | "CHANUNAVAIL" | "拥塞" => "CONGESTION",
        _ => "OTHER",
    })
}

/// Reject reasons by code: a reject code is computed with cheap boolean expressions and turned into
/// text only for the rows that have one.
pub const CDR_REASONS: &[&str] = &[
    "missing operator_id",
    "missing start_time",
    "unparseable start_time",
    "unparseable answer_time",
    "unparseable end_time",
    "unparseable duration",
    "unparseable talk time",
    "negative duration",
    "negative talk time",
    "end before start",
];

pub const JOIN_REASONS: &[&str] = &["missing group_id", "missing member", "missing joined_at", "unparseable joined_at"];

/// The code (index into the reasons) of the first condition that holds; null when none does.
pub(crate) fn first_code(conds: Vec<Expr>) -> Expr {
    conds.into_iter().enumerate().rev().fold(lit(NULL).cast(DataType::Int32), |acc, (i, c)| {
        when(c.fill_null(lit(false))).then(lit(i as i32).cast(DataType::Int32)).otherwise(acc)
    })
}

pub fn utc_datetime() -> DataType {
    DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
}

/// An `Int64` column slice as one array, read by index.
struct Ints(PrimitiveArray<i64>);

impl Ints {
    fn new(ca: &Int64Chunked) -> Self {
        let ca = ca.rechunk();
        Self(ca.downcast_iter().next().cloned().unwrap_or_else(|| PrimitiveArray::new_empty(ArrowDataType::Int64)))
    }

    #[inline]
    fn get(&self, i: usize) -> Option<i64> {
        self.0.is_valid(i).then(|| self.0.value(i))
    }
}

/// The derivations of the module documentation and the reject code, row by row in one parallel
/// pass: from start, answer and end (UTC µs), duration and talk (s; sentinels removed here), the
/// canonical disposition, and whether each raw field was present, returns a struct of
/// `end_us, duration_c, talk_c, disposition_c` (a [`DISPOSITIONS`] code)`, answer_us, reject_code`. (A chain of when/then columns
/// built ten intermediate 10 M-row columns for the reject code alone.)
fn derived(seatless_ok: bool) -> Expr {
    let fields = || {
        vec![
            Field::new("end_us".into(), DataType::Int64),
            Field::new("duration_c".into(), DataType::Int64),
            Field::new("talk_c".into(), DataType::Int64),
            Field::new("disposition_c".into(), DataType::UInt32),
            Field::new("answer_us".into(), DataType::Int64),
            Field::new("reject_code".into(), DataType::Int32),
        ]
    };
    col("start_time__ts").map_many(
        move |c: &mut [Column]| {
            let n = c[0].len();
            let ints: Vec<Int64Chunked> =
                c[..5].iter().map(|x| Ok(x.cast(&DataType::Int64)?.i64()?.clone())).collect::<PolarsResult<_>>()?;
            let disp = c[5].str()?.clone();
            // which raw fields are missing: operator, start, answer, end, duration, talk (None: none is)
            let missing: Vec<Option<BooleanChunked>> =
                c[6..12].iter().map(|x| (x.null_count() > 0).then(|| x.is_null())).collect();
            type Part = (Int64Chunked, Int64Chunked, Int64Chunked, UInt32Chunked, Int64Chunked, Int32Chunked);
            let parts: Vec<Part> = crate::par::slices(n, |off, len| {
                // each column as one array read by index: zipped option iterators per value cost
                // ~0.1 s of typing 10 M Parquet rows
                let sl = |k: usize| Ints::new(&ints[k].slice(off as i64, len));
                let (start, answer, end, dur_n, talk_n) = (sl(0), sl(1), sl(2), sl(3), sl(4));
                let d = disp.slice(off as i64, len);
                let d = d.rechunk();
                let d = d.downcast_iter().next();
                let miss: Vec<Option<Bitmap>> = missing
                    .iter()
                    .map(|m| {
                        m.as_ref().map(|m| {
                            let m = m.slice(off as i64, len);
                            let m = m.rechunk();
                            m.downcast_iter().next().map(|a| a.values().clone()).unwrap_or_default()
                        })
                    })
                    .collect();
                // the switch's disposition text → canonical, each distinct text once per slice; a
                // switch writes a handful of texts, so a short list searched in order beats hashing
                // ten million of them; texts of up to 12 bytes sit whole in their 16-byte view and
                // are compared as one integer
                let mut seen_short: Vec<(u128, Option<&'static str>)> = Vec::new();
                let mut seen: Vec<(&str, Option<&'static str>)> = Vec::new();
                // values plus a validity bitmap made at the first null, handed over without a copy;
                // arrow's mutable array pushes inline (Polars' chunked builder pushed each value
                // through an out-of-line call: ~5% of typing 10 M Parquet rows)
                let int = || polars_arrow::array::MutablePrimitiveArray::<i64>::with_capacity(len);
                let done = |a: polars_arrow::array::MutablePrimitiveArray<i64>, name: &str| {
                    Int64Chunked::with_chunk(name.into(), PrimitiveArray::from(a))
                };
                let (mut o_end, mut o_dur, mut o_talk) = (int(), int(), int());
                let mut o_disp: Vec<u32> = Vec::with_capacity(len);
                let mut o_ans = int();
                let mut o_code: Vec<Option<i32>> = Vec::with_capacity(len);
                let sentinel = |v: Option<i64>| v.filter(|x| *x < DURATION_SENTINEL);
                for i in 0..len {
                    let (s, a, e, dn, tn) = (start.get(i), answer.get(i), end.get(i), dur_n.get(i), talk_n.get(i));
                    let (du, ta) = (sentinel(dn), sentinel(tn));
                    let di = match d {
                        Some(arr) if arr.is_valid(i) => {
                            let view = arr.views()[i];
                            if view.length <= 12 {
                                let key = view.as_u128();
                                match seen_short.iter().find(|(k, _)| *k == key) {
                                    Some((_, c)) => *c,
                                    None => {
                                        let c = canonical_disposition(arr.value(i));
                                        if seen_short.len() < 64 {
                                            seen_short.push((key, c));
                                        }
                                        c
                                    }
                                }
                            } else {
                                let r = arr.value(i);
                                match seen.iter().find(|(k, _)| *k == r) {
                                    Some((_, c)) => *c,
                                    None => {
                                        let c = canonical_disposition(r);
                                        if seen.len() < 64 {
                                            seen.push((r, c));
                                        }
                                        c
                                    }
                                }
                            }
                        }
                        _ => None,
                    };
                    let end_us = e.or_else(|| Some(s? + du? * US)).or_else(|| Some(a? + ta? * US));
                    let duration = du.or_else(|| Some((end_us? - s?) / US));
                    let answered_disp = di == Some("ANSWERED");
                    let talk = ta.or_else(|| Some((e? - a?) / US)).or(if answered_disp { duration } else { Some(0) });
                    let positive = talk.is_some_and(|t| t > 0);
                    let disp_c = if (di.is_none() || di == Some("OTHER")) && positive {
                        "ANSWERED"
                    } else {
                        di.unwrap_or("NO_ANSWER")
                    };
                    let answer_us =
                        if disp_c == "ANSWERED" || positive { a.or_else(|| Some(end_us? - talk? * US)) } else { None };
                    // the first reason that holds, in the order of CDR_REASONS
                    let m = |k: usize| miss[k].as_ref().is_some_and(|b| b.get_bit(i));
                    // a leg whose seat the exporter's columns derive may have none (an IVR leg)
                    let code = if m(0) && !seatless_ok {
                        Some(0)
                    } else if m(1) {
                        Some(1)
                    } else if s.is_none() {
                        Some(2)
                    } else if !m(2) && a.is_none() {
                        Some(3)
                    } else if !m(3) && e.is_none() {
                        Some(4)
                    } else if !m(4) && dn.is_none() {
                        Some(5)
                    } else if !m(5) && tn.is_none() {
                        Some(6)
                    } else if du.is_some_and(|x| x < 0) {
                        Some(7)
                    } else if ta.is_some_and(|x| x < 0) {
                        Some(8)
                    } else if matches!((end_us, s), (Some(e), Some(s)) if e < s) {
                        Some(9)
                    } else {
                        None
                    };
                    o_end.push(end_us);
                    o_dur.push(duration);
                    o_talk.push(talk);
                    o_disp.push(disposition_code(disp_c));
                    o_ans.push(answer_us);
                    o_code.push(code);
                }
                (
                    done(o_end, "end_us"),
                    done(o_dur, "duration_c"),
                    done(o_talk, "talk_c"),
                    UInt32Chunked::from_vec("disposition_c".into(), o_disp),
                    done(o_ans, "answer_us"),
                    Int32Chunked::from_iter_options("reject_code".into(), o_code.into_iter()),
                )
            });
            let (mut e, mut du, mut t, mut di, mut an, mut rc) = (vec![], vec![], vec![], vec![], vec![], vec![]);
            for p in parts {
                e.push(p.0);
                du.push(p.1);
                t.push(p.2);
                di.push(p.3);
                an.push(p.4);
                rc.push(p.5);
            }
            use crate::par::concat;
            let cols = [
                concat("end_us", e).into_column(),
                concat("duration_c", du).into_column(),
                concat("talk_c", t).into_column(),
                concat("disposition_c", di).into_column(),
                concat("answer_us", an).into_column(),
                concat("reject_code", rc).into_column(),
            ];
            Ok(StructChunked::from_columns("__d".into(), n, &cols)?.into_column())
        },
        &[
            col("answer_time__ts"),
            col("end_time__ts"),
            col("duration_s__n"),
            col("talk_s__n"),
            col("disposition"),
            col("operator_id"),
            col("start_time"),
            col("answer_time"),
            col("end_time"),
            col("duration_s"),
            col("talk_s"),
        ],
        move |_, _| Ok(Field::new("__d".into(), DataType::Struct(fields()))),
    )
}

/// CDR raw text fields → canonical typed columns plus `reject_code`; the columns named in `coded`
/// come out as codes into their dictionary ([`crate::coded::StreamDict`]) instead of text.
/// `seatless_ok`: the operator is derived from the exporter's channels ([`super::legs`]), and a leg
/// without a seat is kept (counted later), not rejected.
///
/// `absent`: fields of [`PASS_THROUGH`] the file does not have; they are not carried through the
/// plan (the streaming engine wrote a null text column of 10 M views for each) and
/// [`fill_absent`] adds them after it as constants.
pub fn cdr(
    raw: LazyFrame,
    tz: Tz,
    order: DateOrder,
    coded: &[Streamed],
    seatless_ok: bool,
    absent: &[&'static str],
) -> LazyFrame {
    let text = |name: &'static str| match coded.iter().find(|(n, _)| *n == name) {
        Some((_, dict)) => dict.expr(name),
        None => col(name),
    };
    raw.with_columns([
        ts("start_time", tz, order),
        ts("answer_time", tz, order),
        ts("end_time", tz, order),
        secs("duration_s"),
        secs("talk_s"),
    ])
    .with_column(derived(seatless_ok).alias("__d"))
    .unnest(cols(["__d"]), None)
    .select(
        CDR_COLUMNS
            .iter()
            .chain(["reject_code"].iter())
            .filter(|c| !absent.contains(c))
            .map(|c| match *c {
                "start_time" => col("start_time__ts").cast(utc_datetime()).alias("start_time"),
                "answer_time" => col("answer_us").cast(utc_datetime()).alias("answer_time"),
                "end_time" => col("end_us").cast(utc_datetime()).alias("end_time"),
                "duration_s" => col("duration_c").alias("duration_s"),
                "talk_s" => col("talk_c").alias("talk_s"),
                "caller_id" | "src_ip" | "campaign" => text(c),
                "disposition" => col("disposition_c").alias("disposition"),
                "direction" => direction(),
                _ => col(*c),
            })
            .collect::<Vec<_>>(),
    )
}

/// Optional text fields carried through typing unchanged (and `direction`, typed from its words):
/// a file without one gets a constant instead ([`fill_absent`]).
pub const PASS_THROUGH: [&str; 7] =
    ["campaign", "cli_group", "trunk", "call_key", "sequence", "direction", "monitored"];

/// The typed CDR columns in order (what [`cdr`] selects but `reject_code`).
const CDR_COLUMNS: [&str; 19] = [
    "leg_id",
    "operator_id",
    "start_time",
    "answer_time",
    "end_time",
    "duration_s",
    "talk_s",
    "caller_id",
    "callee",
    "src_ip",
    "disposition",
    "campaign",
    "cli_group",
    "trunk",
    "call_key",
    "sequence",
    "direction",
    "monitored",
    "source_line",
];

/// The fields a file lacks, added as constants (null text; `direction` outbound) in their place;
/// the columns after the typed ones (`source_file`, `__file`) keep their place at the end.
pub fn fill_absent(df: DataFrame, absent: &[&'static str], coded: &[Streamed]) -> PolarsResult<DataFrame> {
    if absent.is_empty() {
        return Ok(df);
    }
    let h = df.height();
    let mut df = df;
    for a in absent {
        let c = if *a == "direction" {
            Column::new_scalar("direction".into(), Scalar::from(super::legs::OUTBOUND), h)
        } else if coded.iter().any(|(n, _)| n == a) {
            // a coded column (campaign) of a file without it: null codes, like the other files' codes
            Column::full_null((*a).into(), h, &DataType::UInt32)
        } else {
            Column::full_null((*a).into(), h, &DataType::String)
        };
        df.with_column(c)?;
    }
    let mut order: Vec<PlSmallStr> = CDR_COLUMNS.iter().map(|c| PlSmallStr::from(*c)).collect();
    for n in df.get_column_names_owned() {
        if !order.contains(&n) {
            order.push(n);
        }
    }
    df.select(order)
}

/// The `direction` words → [`super::legs::DIRECTIONS`] codes (`UInt32`); a file without the column
/// is outbound (one constant, not a column of words), a word that is no direction is unknown.
fn direction() -> Expr {
    use super::legs::{OUTBOUND, UNKNOWN, direction_code};
    col("direction")
        .map(
            |c: Column| {
                let n = c.len();
                if c.null_count() == n {
                    return Ok(Column::new_scalar("direction".into(), Scalar::from(OUTBOUND), n));
                }
                let s = c.cast(&DataType::String)?;
                let ca = s.str()?;
                // a handful of distinct words: each looked up once
                let mut seen: Vec<(String, u32)> = Vec::new();
                let v: Vec<u32> = ca
                    .iter()
                    .map(|w| match w {
                        None => OUTBOUND,
                        Some(w) => match seen.iter().find(|(k, _)| k == w) {
                            Some((_, c)) => *c,
                            None => {
                                let c = direction_code(w).unwrap_or(UNKNOWN);
                                seen.push((w.to_string(), c));
                                c
                            }
                        },
                    })
                    .collect();
                Ok(UInt32Chunked::from_vec("direction".into(), v).into_column())
            },
            |_, _| Ok(Field::new("direction".into(), DataType::UInt32)),
        )
        .alias("direction")
}

/// Join-log raw text fields → typed columns plus `reject_code`.
pub fn joins(raw: LazyFrame, tz: Tz, order: DateOrder) -> LazyFrame {
    raw.with_column(ts("joined_at", tz, order))
        .with_column(
            first_code(vec![
                col("group_id").is_null(),
                col("member").is_null(),
                col("joined_at").is_null(),
                col("joined_at__ts").is_null(),
            ])
            .alias("reject_code"),
        )
        .select([
            col("group_id"),
            col("member"),
            col("joined_at__ts").cast(utc_datetime()).alias("joined_at"),
            col("platform"),
            col("inviter"),
            col("source_line"),
            col("reject_code"),
        ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_shapes() {
        assert_eq!(parse_seconds("125"), Some(125));
        assert_eq!(parse_seconds("0"), Some(0));
        assert_eq!(parse_seconds(" 125 "), Some(125));
        assert_eq!(parse_seconds("0125"), Some(125));
        assert_eq!(parse_seconds("125.6"), Some(126));
        assert_eq!(parse_seconds("00:02:05"), Some(125));
        assert_eq!(parse_seconds("2:05"), Some(125));
        assert_eq!(parse_seconds("-3"), Some(-3));
        assert_eq!(parse_seconds("abc"), None);
        assert_eq!(parse_seconds(""), None);
    }

    #[test]
    fn dispositions() {
        assert_eq!(canonical_disposition("NO ANSWER"), Some("NO_ANSWER"));
        assert_eq!(canonical_disposition("USER_BUSY"), Some("BUSY"));
        assert_eq!(canonical_disposition("answered"), Some("ANSWERED"));
        assert_eq!(canonical_disposition("NORMAL_CLEARING"), None);
        assert_eq!(canonical_disposition("未接通"), Some("NO_ANSWER"));
        assert_eq!(canonical_disposition("XFER"), Some("OTHER"));
    }
}
