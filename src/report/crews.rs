//! Crew pages and each dossier's crew section, read from the crew analysis' tables (crews.csv,
//! links.csv, monitoring.csv), the shift table and operators.csv: nothing is judged here.

use super::Dossier;
use crate::frame::{col_f64, col_i64, col_str, local};
use crate::rules::Finding;
use anyhow::Result;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One crew as report.html, dossiers.json and `report --crew` show it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CrewPage {
    pub crew_id: String,
    /// The crew finding's sentence, if the crew is one.
    pub finding: Option<String>,
    pub severity: Option<String>,
    pub members: Vec<MemberLine>,
    pub links: Vec<LinkLine>,
    pub shared_clis: Vec<String>,
    pub groups: Vec<String>,
    pub monitoring: Vec<MonitorLine>,
    pub first_day: String,
    pub last_day: String,
    pub pay: PayLine,
    /// Every member's shifts: (member, day, start, end, talk h).
    pub shifts: Vec<CrewShift>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MemberLine {
    pub operator_id: String,
    /// Rules with findings on the member (`;`-separated), empty if none.
    pub rules_hit: String,
    pub flagged: bool,
    pub pay: PayLine,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PayLine {
    pub pay_days: i64,
    pub conversions: i64,
    pub low: f64,
    pub high: f64,
    pub currency: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LinkLine {
    pub from: String,
    pub to: String,
    /// kind (weight), …
    pub kinds: String,
    pub strength: f64,
    pub evidence: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MonitorLine {
    pub listener: String,
    pub target: String,
    pub how: String,
    pub sessions: i64,
    pub listen_min: f64,
    pub first: String,
    pub last: String,
    pub refs: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CrewShift {
    pub operator_id: String,
    pub start_us: i64,
    pub end_us: i64,
    pub talk_h: f64,
}

/// A dossier's crew section.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CrewRef {
    pub crew_id: String,
    pub members: Vec<String>,
    /// Seats that listened in on this operator, and whom this operator listened in on.
    pub monitored_by: Vec<MonitorLine>,
    pub monitors: Vec<MonitorLine>,
}

/// The tables the pages are read from.
pub struct Tables<'a> {
    pub crews: Option<&'a DataFrame>,
    pub links: Option<&'a DataFrame>,
    pub monitoring: Option<&'a DataFrame>,
    pub shifts: &'a DataFrame,
    pub operators: &'a DataFrame,
    pub findings: &'a [Finding],
    pub tz: chrono_tz::Tz,
    /// The pay scheme's currency.
    pub currency: String,
}

fn split(s: Option<&str>) -> Vec<String> {
    s.unwrap_or("").split(';').filter(|x| !x.is_empty()).map(str::to_string).collect()
}

impl Tables<'_> {
    fn monitors(&self) -> Result<Vec<MonitorLine>> {
        let Some(m) = self.monitoring else { return Ok(vec![]) };
        let (l, t, h, s) =
            (col_str(m, "listener")?, col_str(m, "target")?, col_str(m, "how")?, col_i64(m, "sessions")?);
        let (min, first, last, refs) =
            (col_f64(m, "listen_min")?, col_i64(m, "first_us")?, col_i64(m, "last_us")?, col_str(m, "refs")?);
        Ok((0..m.height())
            .map(|i| MonitorLine {
                listener: l.get(i).unwrap_or("").to_string(),
                target: t.get(i).unwrap_or("").to_string(),
                how: h.get(i).unwrap_or("").to_string(),
                sessions: s.get(i).unwrap_or(0),
                listen_min: min.get(i).unwrap_or(0.0),
                first: local(first.get(i).unwrap_or(0), self.tz),
                last: local(last.get(i).unwrap_or(0), self.tz),
                refs: refs.get(i).unwrap_or("").replace(';', " "),
            })
            .collect())
    }

    /// operator → (rules hit, pay).
    fn members(&self) -> Result<BTreeMap<String, (String, PayLine)>> {
        let o = self.operators;
        let (id, hit) = (col_str(o, "operator_id")?, col_str(o, "rules_hit")?);
        let (days, conv) = (col_i64(o, "pay_days")?, col_i64(o, "conversions")?);
        let (lo, hi) = (col_f64(o, "est_earnings_low")?, col_f64(o, "est_earnings_high")?);
        Ok((0..o.height())
            .filter_map(|i| {
                let pay = PayLine {
                    pay_days: days.get(i).unwrap_or(0),
                    conversions: conv.get(i).unwrap_or(0),
                    low: lo.get(i).unwrap_or(0.0),
                    high: hi.get(i).unwrap_or(0.0),
                    currency: self.currency.clone(),
                };
                Some((id.get(i)?.to_string(), (hit.get(i).unwrap_or("").to_string(), pay)))
            })
            .collect())
    }

    /// The pages of the crews that are findings or hold an operator with a dossier.
    pub fn pages(&self, dossiers: &[Dossier]) -> Result<Vec<CrewPage>> {
        let Some(c) = self.crews else { return Ok(vec![]) };
        let with_dossier: BTreeSet<&str> = dossiers.iter().map(|d| d.operator_id.as_str()).collect();
        let crew_findings: BTreeMap<&str, &Finding> = self
            .findings
            .iter()
            .filter(|f| f.rule == "crew")
            .filter_map(|f| Some((f.subject.as_deref()?, f)))
            .collect();
        let members = self.members()?;
        let monitors = self.monitors()?;
        let (id, mem) = (col_str(c, "crew_id")?, col_str(c, "members")?);
        let (clis, groups, cur) = (col_str(c, "shared_clis")?, col_str(c, "groups")?, col_str(c, "currency")?);
        let (first, last) = (col_str(c, "first_day")?, col_str(c, "last_day")?);
        let (days, conv) = (col_i64(c, "pay_days")?, col_i64(c, "conversions")?);
        let (lo, hi) = (col_f64(c, "est_earnings_low")?, col_f64(c, "est_earnings_high")?);
        // links and shifts by operator, once (per page over whole tables: 0.5 s at 10 M calls)
        let rows_of = |df: Option<&DataFrame>, col: &str| -> Result<BTreeMap<String, Vec<usize>>> {
            let mut m: BTreeMap<String, Vec<usize>> = BTreeMap::new();
            if let Some(df) = df {
                for (i, o) in col_str(df, col)?.iter().enumerate() {
                    if let Some(o) = o {
                        m.entry(o.to_string()).or_default().push(i);
                    }
                }
            }
            Ok(m)
        };
        let (link_rows, shift_rows) = (rows_of(self.links, "from")?, rows_of(Some(self.shifts), "operator_id")?);
        let mut pages = Vec::new();
        for i in 0..c.height() {
            let crew_id = id.get(i).unwrap_or("");
            let ms = split(mem.get(i));
            let finding = crew_findings.get(crew_id);
            if finding.is_none() && !ms.iter().any(|m| with_dossier.contains(m.as_str())) {
                continue;
            }
            let currency = cur.get(i).unwrap_or("").to_string();
            let set: BTreeSet<&str> = ms.iter().map(String::as_str).collect();
            pages.push(CrewPage {
                crew_id: crew_id.to_string(),
                finding: finding.map(|f| f.summary.clone()),
                severity: finding.map(|f| f.severity.name().to_string()),
                members: ms
                    .iter()
                    .map(|m| {
                        let (hit, pay) = members.get(m).cloned().unwrap_or_default();
                        MemberLine {
                            operator_id: m.clone(),
                            flagged: !hit.is_empty(),
                            rules_hit: hit.replace(';', ", "),
                            pay: PayLine { currency: currency.clone(), ..pay },
                        }
                    })
                    .collect(),
                links: self.links_of(&set, &link_rows)?,
                shared_clis: split(clis.get(i)),
                groups: split(groups.get(i)),
                monitoring: monitors.iter().filter(|m| set.contains(m.listener.as_str())).cloned().collect(),
                first_day: first.get(i).unwrap_or("").to_string(),
                last_day: last.get(i).unwrap_or("").to_string(),
                pay: PayLine {
                    pay_days: days.get(i).unwrap_or(0),
                    conversions: conv.get(i).unwrap_or(0),
                    low: lo.get(i).unwrap_or(0.0),
                    high: hi.get(i).unwrap_or(0.0),
                    currency,
                },
                shifts: self.shifts_of(&set, &shift_rows)?,
            });
        }
        // crews that are findings first, by severity, then by size
        pages.sort_by(|a, b| {
            b.finding
                .is_some()
                .cmp(&a.finding.is_some())
                .then(b.members.len().cmp(&a.members.len()))
                .then(a.crew_id.cmp(&b.crew_id))
        });
        Ok(pages)
    }

    /// The members' links, one line a pair with its kinds.
    fn links_of(&self, set: &BTreeSet<&str>, rows: &BTreeMap<String, Vec<usize>>) -> Result<Vec<LinkLine>> {
        let Some(l) = self.links else { return Ok(vec![]) };
        let (f, t, k, w) = (col_str(l, "from")?, col_str(l, "to")?, col_str(l, "kind")?, col_i64(l, "weight")?);
        let (s, e) = (col_f64(l, "strength")?, col_str(l, "evidence")?);
        let mut by: BTreeMap<(String, String), LinkLine> = BTreeMap::new();
        let mut idx: Vec<usize> = set.iter().filter_map(|o| rows.get(*o)).flatten().copied().collect();
        idx.sort_unstable();
        for i in idx {
            let (Some(a), Some(b)) = (f.get(i), t.get(i)) else { continue };
            if !(set.contains(a) && set.contains(b)) {
                continue;
            }
            let line = by.entry((a.to_string(), b.to_string())).or_insert_with(|| LinkLine {
                from: a.to_string(),
                to: b.to_string(),
                kinds: String::new(),
                strength: s.get(i).unwrap_or(0.0),
                evidence: String::new(),
            });
            let kind = format!("{} ({})", k.get(i).unwrap_or(""), w.get(i).unwrap_or(0));
            line.kinds = if line.kinds.is_empty() { kind } else { format!("{}, {kind}", line.kinds) };
            let ev = e.get(i).unwrap_or("");
            if line.evidence.is_empty() {
                line.evidence = ev.to_string();
            }
        }
        Ok(by.into_values().collect())
    }

    fn shifts_of(&self, set: &BTreeSet<&str>, rows: &BTreeMap<String, Vec<usize>>) -> Result<Vec<CrewShift>> {
        let s = self.shifts;
        let (op, a, b, t) = (
            col_str(s, "operator_id")?,
            col_i64(s, "shift_start_us")?,
            col_i64(s, "shift_end_us")?,
            col_f64(s, "talk_h")?,
        );
        let mut idx: Vec<usize> = set.iter().filter_map(|o| rows.get(*o)).flatten().copied().collect();
        idx.sort_unstable();
        Ok(idx
            .into_iter()
            .map(|i| CrewShift {
                operator_id: op.get(i).unwrap_or("").to_string(),
                start_us: a.get(i).unwrap_or(0),
                end_us: b.get(i).unwrap_or(0),
                talk_h: crate::frame::round(t.get(i).unwrap_or(0.0), 2),
            })
            .collect())
    }

    /// Each dossier's crew section (its pay is in operators.csv and its findings).
    pub fn attach(&self, dossiers: &mut [Dossier]) -> Result<()> {
        let Some(c) = self.crews else { return Ok(()) };
        let (id, mem) = (col_str(c, "crew_id")?, col_str(c, "members")?);
        let mut crew_of: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
        for i in 0..c.height() {
            let ms = split(mem.get(i));
            for m in &ms {
                crew_of.insert(m.clone(), (id.get(i).unwrap_or("").to_string(), ms.clone()));
            }
        }
        let monitors = self.monitors()?;
        let pay = self.members()?;
        for d in dossiers {
            let by: Vec<MonitorLine> = monitors.iter().filter(|m| m.target == d.operator_id).cloned().collect();
            let of: Vec<MonitorLine> = monitors.iter().filter(|m| m.listener == d.operator_id).cloned().collect();
            d.pay = pay.get(&d.operator_id).map(|p| p.1.clone());
            d.crew = match crew_of.get(&d.operator_id) {
                Some((cid, ms)) => {
                    Some(CrewRef { crew_id: cid.clone(), members: ms.clone(), monitored_by: by, monitors: of })
                }
                None if !by.is_empty() || !of.is_empty() => {
                    Some(CrewRef { crew_id: String::new(), members: vec![], monitored_by: by, monitors: of })
                }
                None => None,
            };
        }
        Ok(())
    }
}
