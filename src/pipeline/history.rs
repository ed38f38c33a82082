//! `--history DIR`: per-operator day profiles kept across runs, one Parquet partition per local day
//! (`DIR/date=YYYY-MM-DD/profiles.parquet`). Cross-day rules read them instead of old CDRs.
//!
//! A run writes the partitions of the days it audited (with `--date/--since/--until`, the days
//! selected; otherwise every day in its CDRs), replacing earlier versions of those days; other days
//! are left alone. Rows are sorted, so the same inputs give byte-identical partitions.

use crate::rules::{DayFact, DayProfile, Finding, Severity};
use crate::triage::{Key, Seen, Triage, key};
use anyhow::{Context, Result};
use chrono::NaiveDate;
use polars::prelude::*;
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::path::Path;

pub const FILE_NAME: &str = "profiles.parquet";
/// Each audited day's findings (`date, rule, operator_id, subject, severity, first_seen,
/// suppressed`): what `crate::triage` tells new findings from recurring ones by.
pub const FINDINGS_FILE: &str = "findings.parquet";

/// This run's profiles, one per operator and local day a shift started on, sorted by operator then
/// date: the shifts' totals, then the rules' typed day facts (a finding's [`DayFact`] marks its
/// rule as hit that day; a fact after midnight counts for the shift day before it).
pub fn from_run(shifts: &DataFrame, findings: &[Finding], facts: &[(String, DayFact)]) -> Result<Vec<DayProfile>> {
    // keyed by borrowed operator ids (a String per lookup was most of the time at 10 M calls)
    type Key<'a> = (&'a str, NaiveDate);
    let mut m: PlHashMap<Key, DayProfile> = PlHashMap::new();
    fn entry<'m, 'a>(m: &'m mut PlHashMap<Key<'a>, DayProfile>, op: &'a str, date: NaiveDate) -> &'m mut DayProfile {
        m.entry((op, date)).or_insert_with(|| DayProfile {
            date,
            operator_id: op.to_string(),
            shifts: 0,
            calls: 0,
            answered: 0,
            talk_h: 0.0,
            max_shift_talk_h: 0.0,
            long_shift: false,
            spoofed_calls: 0,
            conversions: 0,
            rules_hit: String::new(),
        })
    }
    shift_totals(shifts, |op, date, p| {
        let e = entry(&mut m, op, date);
        e.shifts += 1;
        e.calls += p.calls;
        e.answered += p.answered;
        e.talk_h += p.talk_h;
        e.max_shift_talk_h = e.max_shift_talk_h.max(p.talk_h);
    })?;
    // Calls after midnight belong to the shift (and day) that started before it.
    let mut shift_days: PlHashMap<&str, Vec<NaiveDate>> = PlHashMap::new();
    for (op, d) in m.keys() {
        shift_days.entry(op).or_default().push(*d);
    }
    shift_days.values_mut().for_each(|v| v.sort_unstable());
    let shift_day = |op: &str, date: NaiveDate| -> NaiveDate {
        match shift_days.get(op) {
            Some(v) => match v.partition_point(|d| *d <= date) {
                0 => date,
                k => v[k - 1],
            },
            None => date,
        }
    };
    let mut hit: PlHashMap<Key, BTreeSet<&str>> = PlHashMap::new();
    for f in findings {
        let (Some(op), Some(fact)) = (f.operator_id.as_deref(), &f.fact) else { continue };
        let date = shift_day(op, fact.day);
        entry(&mut m, op, date).add(fact);
        hit.entry((op, date)).or_default().insert(f.rule);
    }
    for (op, fact) in facts {
        let date = shift_day(op, fact.day);
        entry(&mut m, op, date).add(fact);
    }
    let order = crate::rules::all_ids();
    for (key, p) in m.iter_mut() {
        p.talk_h = crate::frame::round(p.talk_h, 3);
        p.max_shift_talk_h = crate::frame::round(p.max_shift_talk_h, 3);
        if let Some(rs) = hit.get(key) {
            p.rules_hit = order.iter().filter(|r| rs.contains(*r)).copied().collect::<Vec<_>>().join(";");
        }
    }
    let mut out: Vec<DayProfile> = m.into_values().collect();
    out.sort_unstable_by(|a, b| a.operator_id.cmp(&b.operator_id).then(a.date.cmp(&b.date)));
    Ok(out)
}

/// One shift's totals, as the profiles sum them.
struct ShiftTotals {
    calls: u32,
    answered: u32,
    talk_h: f64,
}

/// Each shift's operator, local start day and totals, in table order.
fn shift_totals<'a>(s: &'a DataFrame, mut each: impl FnMut(&'a str, NaiveDate, ShiftTotals)) -> Result<()> {
    let ops = s.column("operator_id")?.str()?;
    let days = s.column("day")?.str()?;
    let talk = s.column("talk_s")?.cast(&DataType::Int64)?;
    let talk = talk.i64()?;
    let calls = s.column("calls")?.cast(&DataType::UInt32)?;
    let calls = calls.u32()?;
    let answered = s.column("answered")?.cast(&DataType::UInt32)?;
    let answered = answered.u32()?;
    // an operator's shifts follow each other, mostly a day apart: the last day's text is parsed once
    let mut last_day: Option<(&str, NaiveDate)> = None;
    for i in 0..s.height() {
        let (Some(op), Some(day)) = (ops.get(i), days.get(i)) else { continue };
        let date = match last_day {
            Some((text, d)) if text == day => d,
            _ => {
                let d = NaiveDate::parse_from_str(day, "%Y-%m-%d").with_context(|| format!("shift day {day:?}"))?;
                last_day = Some((day, d));
                d
            }
        };
        let t = ShiftTotals {
            calls: calls.get(i).unwrap_or(0),
            answered: answered.get(i).unwrap_or(0),
            talk_h: talk.get(i).unwrap_or(0) as f64 / 3600.0,
        };
        each(op, date, t);
    }
    Ok(())
}

fn to_frame(rows: &[&DayProfile]) -> Result<DataFrame> {
    let days: Vec<i32> = rows.iter().map(|p| (p.date - crate::time::EPOCH).num_days() as i32).collect();
    let n = rows.len();
    let df = DataFrame::new(
        n,
        vec![
            Column::new("date".into(), days).cast(&DataType::Date)?,
            Column::new("operator_id".into(), rows.iter().map(|p| p.operator_id.as_str()).collect::<Vec<_>>()),
            Column::new("shifts".into(), rows.iter().map(|p| p.shifts).collect::<Vec<_>>()),
            Column::new("calls".into(), rows.iter().map(|p| p.calls).collect::<Vec<_>>()),
            Column::new("answered".into(), rows.iter().map(|p| p.answered).collect::<Vec<_>>()),
            Column::new("talk_h".into(), rows.iter().map(|p| p.talk_h).collect::<Vec<_>>()),
            Column::new("max_shift_talk_h".into(), rows.iter().map(|p| p.max_shift_talk_h).collect::<Vec<_>>()),
            Column::new("long_shift".into(), rows.iter().map(|p| p.long_shift).collect::<Vec<_>>()),
            Column::new("spoofed_calls".into(), rows.iter().map(|p| p.spoofed_calls).collect::<Vec<_>>()),
            Column::new("conversions".into(), rows.iter().map(|p| p.conversions).collect::<Vec<_>>()),
            Column::new("rules_hit".into(), rows.iter().map(|p| p.rules_hit.as_str()).collect::<Vec<_>>()),
        ],
    )?;
    Ok(df)
}

fn from_frame(df: &DataFrame, file: &str) -> Result<Vec<DayProfile>> {
    let get = |name: &str, dt: DataType| -> Result<Series> {
        Ok(df
            .column(name)
            .map_err(|e| anyhow::anyhow!("{file}: no column {name}: {e}"))?
            .as_materialized_series()
            .cast(&dt)?)
    };
    let date = get("date", DataType::Int32)?;
    let op = get("operator_id", DataType::String)?;
    let u = |n: &str| get(n, DataType::UInt32);
    let (shifts, calls, answered, spoofed, conv) =
        (u("shifts")?, u("calls")?, u("answered")?, u("spoofed_calls")?, u("conversions")?);
    let (talk, max_talk) = (get("talk_h", DataType::Float64)?, get("max_shift_talk_h", DataType::Float64)?);
    let long = get("long_shift", DataType::Boolean)?;
    let hit = get("rules_hit", DataType::String)?;
    let (date, op, hit, long) = (date.i32()?, op.str()?, hit.str()?, long.bool()?);
    let (shifts, calls, answered, spoofed, conv) =
        (shifts.u32()?, calls.u32()?, answered.u32()?, spoofed.u32()?, conv.u32()?);
    let (talk, max_talk) = (talk.f64()?, max_talk.f64()?);
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let (Some(d), Some(o)) = (date.get(i), op.get(i)) else { continue };
        out.push(DayProfile {
            date: crate::time::epoch_day(d),
            operator_id: o.to_string(),
            shifts: shifts.get(i).unwrap_or(0),
            calls: calls.get(i).unwrap_or(0),
            answered: answered.get(i).unwrap_or(0),
            talk_h: talk.get(i).unwrap_or(0.0),
            max_shift_talk_h: max_talk.get(i).unwrap_or(0.0),
            long_shift: long.get(i).unwrap_or(false),
            spoofed_calls: spoofed.get(i).unwrap_or(0),
            conversions: conv.get(i).unwrap_or(0),
            rules_hit: hit.get(i).unwrap_or("").to_string(),
        });
    }
    Ok(out)
}

/// The date of a `date=YYYY-MM-DD` partition directory name.
fn partition_date(name: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(name.strip_prefix("date=")?, "%Y-%m-%d").ok()
}

/// Every partition of `dir` whose day passes `keep`, in day order, with its `file` read: the day,
/// the file's path (for messages) and its frame. A missing directory is an empty history and a
/// partition without the file is left out; an unreadable one is an error naming it.
fn read_partitions(
    dir: &Path,
    file: &str,
    keep: impl Fn(NaiveDate) -> bool,
) -> Result<Vec<(NaiveDate, String, DataFrame)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("{}: cannot list history", dir.display())),
    };
    let mut parts: Vec<(NaiveDate, std::path::PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| partition_date(&e.file_name().to_string_lossy()).map(|d| (d, e.path().join(file))))
        .filter(|(d, _)| keep(*d))
        .collect();
    parts.sort();
    let mut out = Vec::with_capacity(parts.len());
    for (day, f) in parts {
        let shown = f.display().to_string();
        let file = match std::fs::File::open(&f) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // an empty partition directory
            Err(e) => return Err(e).with_context(|| format!("{shown}: cannot open history partition")),
        };
        let df = ParquetReader::new(file)
            .finish()
            .map_err(|e| anyhow::anyhow!("{shown}: cannot read history partition: {e}"))?;
        out.push((day, shown, df));
    }
    Ok(out)
}

/// `df` as `root/date=DAY/file` (root: a staging directory).
fn write_partition(root: &Path, day: NaiveDate, file: &str, df: &mut DataFrame) -> Result<()> {
    crate::outputs::write_atomic(&root.join(format!("date={day}")).join(file), |w| {
        ParquetWriter::new(w).finish(df)?;
        Ok(())
    })
}

/// Profiles of the history days in `[from, to]` except `skip` (the days this run audits itself).
pub fn read(dir: &Path, from: NaiveDate, to: NaiveDate, skip: &BTreeSet<NaiveDate>) -> Result<Vec<DayProfile>> {
    let mut out = Vec::new();
    for (_, shown, df) in read_partitions(dir, FILE_NAME, |d| d >= from && d <= to && !skip.contains(&d))? {
        out.extend(from_frame(&df, &shown)?);
    }
    Ok(out)
}

/// Write one partition per day in `days` under `root` (a staging directory), rows sorted by operator.
pub fn write(root: &Path, profiles: &[DayProfile], days: &BTreeSet<NaiveDate>) -> Result<()> {
    for day in days {
        let rows: Vec<&DayProfile> = profiles.iter().filter(|p| p.date == *day).collect();
        write_partition(root, *day, FILE_NAME, &mut to_frame(&rows)?)?;
    }
    Ok(())
}

/// History days' findings, earlier than the run's last day and not re-audited by it.
pub fn read_findings(dir: &Path, run_days: &BTreeSet<NaiveDate>) -> Result<Vec<Seen>> {
    let last = run_days.last().copied().unwrap_or(NaiveDate::MAX);
    let mut out = Vec::new();
    for (date, shown, df) in read_partitions(dir, FINDINGS_FILE, |d| d < last && !run_days.contains(&d))? {
        let s = |n: &str| -> Result<StringChunked> {
            Ok(df
                .column(n)
                .map_err(|e| anyhow::anyhow!("{shown}: {e}"))?
                .as_materialized_series()
                .cast(&DataType::String)?
                .str()?
                .clone())
        };
        let (rule, op, subject, sev) = (s("rule")?, s("operator_id")?, s("subject")?, s("severity")?);
        let first = df.column("first_seen").map_err(|e| anyhow::anyhow!("{shown}: {e}"))?.cast(&DataType::Int32)?;
        let first = first.i32()?;
        for i in 0..df.height() {
            out.push(Seen {
                date,
                key: (
                    rule.get(i).unwrap_or("").to_string(),
                    op.get(i).map(str::to_string),
                    subject.get(i).map(str::to_string),
                ),
                severity: sev.get(i).unwrap_or("").to_string(),
                first_seen: first.get(i).map(crate::time::epoch_day).unwrap_or(date),
            });
        }
    }
    Ok(out)
}

/// Each audited day's findings (`all` with their standing; `suppressed` marks those the allowlist
/// covered) into `root/date=D/findings.parquet`, one row per key, sorted.
pub fn write_findings(root: &Path, all: &[(&Finding, &Triage, bool)], run_days: &BTreeSet<NaiveDate>) -> Result<()> {
    for day in run_days {
        let mut rows: BTreeMap<Key, (Severity, NaiveDate, bool)> = BTreeMap::new();
        for (f, t, sup) in all.iter().filter(|(_, t, _)| t.day == *day) {
            let e = rows.entry(key(f)).or_insert((f.severity, t.first_seen, *sup));
            e.0 = e.0.max(f.severity);
            e.1 = e.1.min(t.first_seen);
            e.2 &= *sup;
        }
        let n = rows.len();
        let epoch = |d: NaiveDate| (d - crate::time::EPOCH).num_days() as i32;
        let mut df = DataFrame::new(
            n,
            vec![
                Column::new("date".into(), vec![epoch(*day); n]).cast(&DataType::Date)?,
                Column::new("rule".into(), rows.keys().map(|k| k.0.as_str()).collect::<Vec<_>>()),
                Column::new("operator_id".into(), rows.keys().map(|k| k.1.as_deref()).collect::<Vec<_>>()),
                Column::new("subject".into(), rows.keys().map(|k| k.2.as_deref()).collect::<Vec<_>>()),
                Column::new("severity".into(), rows.values().map(|v| v.0.name()).collect::<Vec<_>>()),
                Column::new("first_seen".into(), rows.values().map(|v| epoch(v.1)).collect::<Vec<_>>())
                    .cast(&DataType::Date)?,
                Column::new("suppressed".into(), rows.values().map(|v| v.2).collect::<Vec<_>>()),
            ],
        )?;
        write_partition(root, *day, FINDINGS_FILE, &mut df)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(op: &str, d: &str, long: bool) -> DayProfile {
        DayProfile {
            date: d.parse().unwrap(),
            operator_id: op.into(),
            shifts: 1,
            calls: 100,
            answered: 60,
            talk_h: 8.5,
            max_shift_talk_h: 8.5,
            long_shift: long,
            spoofed_calls: 7,
            conversions: 2,
            rules_hit: "long-shift".into(),
        }
    }

    #[test]
    fn partitions_round_trip_and_are_byte_stable() {
        let d = tempfile::tempdir().unwrap();
        let rows = vec![p("a", "2026-03-01", true), p("b", "2026-03-01", false), p("a", "2026-03-02", true)];
        let days: BTreeSet<NaiveDate> = ["2026-03-01", "2026-03-02"].iter().map(|s| s.parse().unwrap()).collect();
        write(d.path(), &rows, &days).unwrap();
        let f = d.path().join("date=2026-03-01").join(FILE_NAME);
        let first = std::fs::read(&f).unwrap();
        write(d.path(), &rows, &days).unwrap();
        assert_eq!(first, std::fs::read(&f).unwrap());
        let skip: BTreeSet<NaiveDate> = ["2026-03-02".parse().unwrap()].into();
        let back = read(d.path(), "2026-02-01".parse().unwrap(), "2026-03-31".parse().unwrap(), &skip).unwrap();
        assert_eq!(back, vec![rows[0].clone(), rows[1].clone()]);
        // outside the window: nothing
        let none = read(d.path(), "2026-03-03".parse().unwrap(), "2026-03-31".parse().unwrap(), &skip).unwrap();
        assert!(none.is_empty());
    }

    fn f(rule: &'static str, op: &str, day: &str) -> Finding {
        let t: chrono::DateTime<chrono::Utc> = format!("{day}T04:00:00Z").parse().unwrap();
        Finding {
            rule,
            severity: Severity::High,
            operator_id: Some(op.into()),
            subject: None,
            window_start: t,
            window_end: t,
            score: 0.9,
            summary: String::new(),
            evidence: serde_json::json!({}),
            fact: None,
        }
    }

    fn days(d: &[&str]) -> BTreeSet<NaiveDate> {
        d.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn new_recurring_and_resolved_over_three_days() {
        let dir = tempfile::tempdir().unwrap();
        let tz = chrono_tz::Asia::Shanghai;
        let run = |d: &str, fs: Vec<Finding>| {
            let rd = days(&[d]);
            let refs: Vec<&Finding> = fs.iter().collect();
            let seen = read_findings(dir.path(), &rd).unwrap();
            let (t, r, _) = crate::triage::status(&refs, &seen, tz, &rd);
            let all: Vec<(&Finding, &Triage, bool)> = fs.iter().zip(&t).map(|(f, t)| (f, t, false)).collect();
            write_findings(dir.path(), &all, &rd).unwrap();
            (t.iter().map(|t| (t.status, t.first_seen.to_string())).collect::<Vec<_>>(), r)
        };
        let (t, r) = run("2026-03-02", vec![f("long-shift", "a", "2026-03-02"), f("long-shift", "b", "2026-03-02")]);
        assert!(t.iter().all(|(s, d)| *s == crate::triage::Status::New && d == "2026-03-02") && r.is_empty());
        let (t, r) = run("2026-03-03", vec![f("long-shift", "a", "2026-03-03"), f("long-shift", "c", "2026-03-03")]);
        assert_eq!(
            t,
            [
                (crate::triage::Status::Recurring, "2026-03-02".into()),
                (crate::triage::Status::New, "2026-03-03".into())
            ]
        );
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].operator_id.as_deref(), r[0].last_seen.to_string()), (Some("b"), "2026-03-02".to_string()));
        // b comes back after a day away: recurring, first seen on the 2nd
        let (t, r) = run("2026-03-04", vec![f("long-shift", "b", "2026-03-04")]);
        assert_eq!(t, [(crate::triage::Status::Recurring, "2026-03-02".into())]);
        assert_eq!(r.iter().map(|r| r.operator_id.clone().unwrap()).collect::<Vec<_>>(), ["a", "c"]);
        // re-running the 3rd reads the 2nd only, not itself or the 4th
        let (t, _) = run("2026-03-03", vec![f("long-shift", "c", "2026-03-03")]);
        assert_eq!(t, [(crate::triage::Status::New, "2026-03-03".into())]);
    }
}
