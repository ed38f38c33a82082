use super::{AuditInput, Finding, Rule, RuleDoc, RuleOutput, Severity, round, utc};
use crate::config::Config;
use anyhow::Result;
use polars::prelude::*;
use serde_json::json;

pub struct ForeignCliFanout;

pub const DOC: &str = "\
foreign-cli-fanout: one foreign caller ID reaching many home callees in a day

## What it does
Counts, per foreign caller ID (E.164, region other than home) and local day, the distinct home
callees it reached. At `fanout_min_callees` (default 50) or more it is a finding about the caller ID
(`subject`), naming every operator who used it that day and where the calls came from.

## Why it matters
The Shanghai investigation started from one foreign number contacting victims at high frequency.
Lead-words dialing through a caller-ID pool makes each foreign number fan out to dozens or hundreds of
domestic victims a day. Overseas contact centres also fan out, so the score is higher when the calls
came from home IPs (or a domestic campaign/trunk) and when the number fails validation; read the
origin in the evidence before acting.

## Example
+447700900123 reached 143 home callees on 2026-03-02 through 6 operators, all from CN IPs: high.";

impl RuleDoc for ForeignCliFanout {
    fn id(&self) -> &'static str {
        "foreign-cli-fanout"
    }
    fn summary(&self) -> &'static str {
        "one foreign caller ID reaching >= 50 distinct home callees in a local day (names every operator who used it)"
    }
    fn explain(&self) -> &'static str {
        DOC
    }
    fn defaults(&self, cfg: &Config) -> String {
        format!("fanout_min_callees = {}", cfg.rules.foreign_cli_fanout.fanout_min_callees)
    }
}

impl Rule for ForeignCliFanout {
    fn run(&self, input: &AuditInput, cfg: &Config) -> Result<RuleOutput> {
        let min = cfg.rules.foreign_cli_fanout.fanout_min_callees as i64;
        let home = input.home_region.as_str();
        use rayon::prelude::*;
        // tens of thousands of findings at 10 M calls: built in parallel, kept in group order
        let findings = fanout_groups(input, min)?.into_par_iter().map(|g| {
            let n = g.callees as i64;
            let from_home = g.ip_countries.iter().any(|c| c == home);
            let mut score: f64 = 0.4;
            if from_home {
                score += 0.3;
            }
            if !g.valid {
                score += 0.1;
            }
            if n >= 4 * min {
                score += 0.1;
            }
            let score = round(score.min(1.0), 2);
            let day = crate::time::epoch_day(g.day).to_string();
            let c = g.cli.as_str();
            Finding {
                rule: self.id(),
                severity: Severity::from_score(score),
                operator_id: None,
                subject: Some(c.to_string()),
                window_start: utc(g.first_us.unwrap_or(0)),
                window_end: utc(g.last_us.unwrap_or(0)),
                score,
                summary: format!(
                    "Foreign caller ID {c} ({}) reached {n} home callees on {day} through {} operator(s), calling from {}.",
                    g.country.as_deref().unwrap_or("?"),
                    g.operators.len(),
                    g.ip_countries.join(", ")
                ),
                evidence: json!({
                    "day": day,
                    "distinct_callees": n,
                    "calls": g.calls,
                    "operators": g.operators,
                    "ip_countries": g.ip_countries,
                    "cli_valid": g.valid,
                    "calls_ref": g.refs,
                }),
            }
        }).collect();
        Ok(RuleOutput { findings, ..Default::default() })
    }
}

/// One foreign caller ID on one local day that reached at least the minimum of distinct callees.
struct FanoutGroup {
    cli: String,
    country: Option<String>,
    valid: bool,
    day: i32,
    callees: usize,
    calls: usize,
    /// Sorted, distinct.
    operators: Vec<String>,
    /// Sorted, distinct; `unknown` for calls without an IP country.
    ip_countries: Vec<String>,
    first_us: Option<i64>,
    last_us: Option<i64>,
    /// The 20 earliest calls' references.
    refs: Vec<String>,
}

/// The (foreign caller ID, local day) groups with at least `min` distinct home callees, in order of
/// their first call in the frame. Keyed by the numeric E.164 (hashing millions of strings was most
/// of this rule's time): the foreign-CLI calls to home numbers become (caller, day, callee, row)
/// entries, sorted in parallel, so each group's distinct callees are runs; only the groups that
/// pass read their rows' operators, origins and references.
fn fanout_groups(input: &AuditInput, min: i64) -> Result<Vec<FanoutGroup>> {
    use super::Rows;
    use rayon::prelude::*;
    let t0 = std::time::Instant::now();
    let df = &input.cdr;
    let home = input.home_region.as_str();
    // home callees by their numeric key: the E.164 text is a pseudonym under --redact
    let home_num = crate::enrich::NumPrefix::new(&input.home_prefix);
    let s = |n: &str| -> Result<&StringChunked> { Ok(df.column(n)?.str()?) };
    let cdict = input.coded("caller_country")?;
    let (country, home_cc) = (cdict.codes, cdict.code_of(home));
    let (cli_num, callee_num) = (df.column("caller_num")?.u64()?, df.column("callee_num")?.u64()?);
    let day = df.column("day")?.cast(&DataType::Int32)?;
    let day = day.i32()?;
    // (caller, callee, day, row); a missing number is u64::MAX (E.164 keys stay below 10^15)
    let none = u64::MAX;
    let mut entries: Vec<(u64, i32, u64, u32)> = crate::par::slices(df.height(), |off, len| {
        let mut country = Rows::new(country);
        let (mut cli_num, mut callee_num, mut day) = (Rows::new(cli_num), Rows::new(callee_num), Rows::new(day));
        let mut v = Vec::with_capacity(len);
        for i in off..off + len {
            let foreign = country.get(i).is_some_and(|c| Some(c) != home_cc);
            if !foreign {
                continue;
            }
            let callee = callee_num.get(i);
            if !callee.is_some_and(|c| home_num.is_some_and(|h| h.matches(c))) {
                continue;
            }
            let Some(d) = day.get(i) else { continue };
            v.push((cli_num.get(i).unwrap_or(none), d, callee.unwrap_or(none), i as u32));
        }
        v
    })
    .concat();
    crate::load::trace(&format!("fanout entries {}", entries.len()), t0);
    entries.par_sort_unstable();
    crate::load::trace("fanout sorted", t0);
    // runs of one (caller, day): count calls and distinct callees; keep those reaching `min`
    let mut kept: Vec<(u32, std::ops::Range<usize>, usize)> = Vec::new(); // (first row, entries, callees)
    let mut a = 0;
    while a < entries.len() {
        let key = (entries[a].0, entries[a].1);
        let mut b = a;
        let mut callees = 0;
        let mut first = u32::MAX;
        while b < entries.len() && (entries[b].0, entries[b].1) == key {
            if b == a || entries[b].2 != entries[b - 1].2 {
                callees += 1;
            }
            first = first.min(entries[b].3);
            b += 1;
        }
        if callees as i64 >= min {
            kept.push((first, a..b, callees));
        }
        a = b;
    }
    // first-appearance order, as a stable group-by would give
    kept.sort_unstable_by_key(|k| k.0);
    crate::load::trace(&format!("fanout kept {}", kept.len()), t0);
    let ops = s("operator_id")?;
    let (idict, refs) = (input.coded("ip_country")?, s("ref")?);
    let ipc = idict.codes;
    let (start, end) = (df.column("start_us")?.i64()?, df.column("end_us")?.i64()?);
    let valid = df.column("caller_valid")?.bool()?;
    let groups = kept
        .par_iter()
        .map(|(first, range, callees)| {
            let mut rows: Vec<usize> = entries[range.clone()].iter().map(|e| e.3 as usize).collect();
            rows.sort_unstable();
            let (mut ops, mut ipc, mut refs) = (Rows::new(ops), Rows::new(ipc), Rows::new(refs));
            let (mut start, mut end) = (Rows::new(start), Rows::new(end));
            let mut operators = std::collections::BTreeSet::new();
            let mut origins = std::collections::BTreeSet::new();
            let (mut first_us, mut last_us) = (None::<i64>, None::<i64>);
            let mut timed: Vec<(Option<i64>, usize)> = Vec::with_capacity(rows.len());
            // rows are in frame order, which is operator order: a value like the one before is not
            // looked up in the sets again
            let (mut last_op, mut last_origin) = (None, None);
            for &i in &rows {
                let o = ops.get(i);
                if o.is_some() && o != last_op {
                    operators.insert(o.unwrap_or_default());
                    last_op = o;
                }
                let origin = ipc.get(i).map_or("unknown", |c| idict.text(c));
                if Some(origin) != last_origin {
                    origins.insert(origin);
                    last_origin = Some(origin);
                }
                let st = start.get(i);
                if let Some(t) = st {
                    first_us = Some(first_us.map_or(t, |f| f.min(t)));
                }
                if let Some(t) = end.get(i) {
                    last_us = Some(last_us.map_or(t, |l| l.max(t)));
                }
                timed.push((st, i));
            }
            // the earliest 20 by start (ties in frame order), chosen without sorting them all
            if timed.len() > 20 {
                timed.select_nth_unstable(19);
                timed.truncate(20);
            }
            timed.sort_unstable();
            let first = *first as usize;
            FanoutGroup {
                // E.164 text from its numeric key (the group's key; no E.164: no text)
                cli: cli_num.get(first).map(|n| format!("+{n}")).unwrap_or_default(),
                country: cdict.get(first).map(str::to_string),
                valid: valid.get(first).unwrap_or(false),
                day: entries[range.start].1,
                callees: *callees,
                calls: range.len(),
                operators: operators.into_iter().map(str::to_string).collect(),
                ip_countries: origins.into_iter().map(str::to_string).collect(),
                first_us,
                last_us,
                refs: timed.iter().filter_map(|t| refs.get(t.1).map(str::to_string)).collect(),
            }
        })
        .collect();
    Ok(groups)
}
