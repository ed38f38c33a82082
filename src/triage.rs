//! After the rules: what a desk does with their findings. The allowlist moves the findings it
//! covers aside ([`suppress`]); `--history` tells new findings from recurring ones and lists those
//! that were there on the previous audited day and are gone now ([`status`]).
//!
//! A finding is the same finding on another day when its rule, operator and subject are the same
//! (its window is the day's). The history keeps each audited day's keys ([`Seen`]) in
//! `DIR/date=YYYY-MM-DD/findings.parquet` beside the day profiles (`pipeline::history`).

use crate::allow::{Allowlist, Entities, Entry};
use crate::rules::Finding;
use chrono::NaiveDate;
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    New,
    Recurring,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Recurring => "recurring",
        }
    }
}

/// A finding's standing: new or recurring, since when, and the audited day it belongs to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Triage {
    pub status: Status,
    pub first_seen: NaiveDate,
    pub day: NaiveDate,
}

/// A finding the allowlist covers, and the entry that did.
pub struct Suppressed {
    pub finding: Finding,
    pub triage: Triage,
    pub entry: Entry,
}

/// A finding seen on an earlier day and not now.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    pub rule: String,
    pub operator_id: Option<String>,
    pub subject: Option<String>,
    pub severity: String,
    pub first_seen: NaiveDate,
    pub last_seen: NaiveDate,
}

/// What makes a finding the same finding on another day: rule, operator, subject.
pub type Key = (String, Option<String>, Option<String>);

pub fn key(f: &Finding) -> Key {
    (f.rule.to_string(), f.operator_id.clone(), f.subject.clone())
}

/// The audited day a finding belongs to: a cross-day finding's `as_of`, else the local day its
/// window starts on, kept within the run's days.
pub fn day_of(f: &Finding, tz: chrono_tz::Tz, run_days: &BTreeSet<NaiveDate>) -> NaiveDate {
    let d = f
        .evidence
        .get("as_of")
        .and_then(|v| v.as_str())
        .and_then(|s| s.get(..10)?.parse().ok())
        .unwrap_or_else(|| f.window_start.with_timezone(&tz).date_naive());
    match (run_days.first(), run_days.last()) {
        (Some(a), Some(b)) => d.clamp(*a, *b),
        _ => d,
    }
}

/// Split `findings` into those reported and those the allowlist covers (each with its day).
/// `ips`: operator → source IPs of its calls, when the list has IP entries.
pub fn suppress(
    findings: Vec<Finding>,
    allow: &Allowlist,
    ips: Option<&BTreeMap<String, BTreeSet<String>>>,
    tz: chrono_tz::Tz,
    run_days: &BTreeSet<NaiveDate>,
) -> (Vec<Finding>, Vec<(Finding, Entry)>) {
    if allow.is_empty() {
        return (findings, Vec::new());
    }
    let mut kept = Vec::with_capacity(findings.len());
    let mut aside = Vec::new();
    for f in findings {
        let day = day_of(&f, tz, run_days);
        match allow.suppressing(&Entities::of(&f, ips), day) {
            Some(e) => {
                let e = e.clone();
                aside.push((f, e));
            }
            None => kept.push(f),
        }
    }
    (kept, aside)
}

/// One row of a history day's findings.
pub struct Seen {
    pub date: NaiveDate,
    pub key: Key,
    pub severity: String,
    pub first_seen: NaiveDate,
}

/// The standing of each finding (in `all`'s order), what was resolved since the previous audited
/// day in `seen` (the history's earlier days; empty without one: every finding is new), and the
/// days `seen` covers.
pub fn status(
    all: &[&Finding],
    seen: &[Seen],
    tz: chrono_tz::Tz,
    run_days: &BTreeSet<NaiveDate>,
) -> (Vec<Triage>, Vec<Resolved>, BTreeSet<NaiveDate>) {
    let days: Vec<NaiveDate> = all.iter().map(|f| day_of(f, tz, run_days)).collect();
    let read_days: BTreeSet<NaiveDate> = seen.iter().map(|s| s.date).collect();
    // per key: the days it was seen (history and this run) and the earliest first_seen on record
    let mut on: HashMap<&Key, Vec<(NaiveDate, NaiveDate)>> = HashMap::new();
    for s in seen {
        on.entry(&s.key).or_default().push((s.date, s.first_seen));
    }
    let keys: Vec<Key> = all.iter().map(|f| key(f)).collect();
    for (k, d) in keys.iter().zip(&days) {
        on.entry(k).or_default().push((*d, *d));
    }
    let triage = keys
        .iter()
        .zip(&days)
        .map(|(k, d)| {
            let before: Vec<&(NaiveDate, NaiveDate)> = on[k].iter().filter(|(x, _)| x < d).collect();
            let first_seen = before.iter().map(|(_, f)| *f).min().unwrap_or(*d).min(*d);
            let status = if before.is_empty() { Status::New } else { Status::Recurring };
            Triage { status, first_seen, day: *d }
        })
        .collect();
    // resolved: on the last audited day before this run, and not in it
    let first_run = run_days.first().copied().unwrap_or(NaiveDate::MAX);
    let prev = read_days.iter().filter(|d| **d < first_run).max().copied();
    let now: BTreeSet<&Key> = keys.iter().collect();
    let mut resolved: Vec<Resolved> = seen
        .iter()
        .filter(|s| Some(s.date) == prev && !now.contains(&s.key))
        .map(|s| Resolved {
            rule: s.key.0.clone(),
            operator_id: s.key.1.clone(),
            subject: s.key.2.clone(),
            severity: s.severity.clone(),
            first_seen: s.first_seen,
            last_seen: s.date,
        })
        .collect();
    resolved.sort_by(|a, b| (&a.rule, &a.operator_id, &a.subject).cmp(&(&b.rule, &b.operator_id, &b.subject)));
    (triage, resolved, read_days)
}
