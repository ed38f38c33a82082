use super::{AuditInput, DayRule, Finding, Partials, RuleDoc, RuleOutput, RulesConfig, Severity};
use crate::frame::{round, utc};
use crate::load::legs::OUTBOUND;
use anyhow::{Context, Result};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub struct ForeignCliFanout;

/// `[rules.foreign_cli_fanout]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FanoutConfig {
    /// Distinct home callees one foreign caller ID must reach in a local day. Default 50.
    pub fanout_min_callees: u32,
}

impl Default for FanoutConfig {
    fn default() -> Self {
        Self { fanout_min_callees: 50 }
    }
}

/// The section as `config init` writes it.
pub const TOML: &str = r#"[rules.foreign_cli_fanout]
fanout_min_callees = 50       # distinct home callees one foreign CLI reaches in a local day

"#;

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
    fn config_toml(&self) -> &'static str {
        TOML
    }
    fn explain(&self) -> &'static str {
        DOC
    }
    fn defaults(&self, cfg: &RulesConfig) -> String {
        format!("fanout_min_callees = {}", cfg.foreign_cli_fanout.fanout_min_callees)
    }
}

impl DayRule for ForeignCliFanout {
    fn partials<'a>(&'a self, cfg: &'a RulesConfig, parts: u32) -> Box<dyn Partials + 'a> {
        Box::new(FanoutPartials { rule: self, cfg, parts, whole: None, spill: None, home: String::new() })
    }
}

/// One caller ID serves many operators, so partitions cannot judge it alone. A scan of one
/// partition judges its frame in place; a partitioned scan keeps each partition's per (number,
/// day) summaries ([`FanoutParts`]) in a spill and judges the merged summaries: the same findings
/// (a test holds them byte for byte).
struct FanoutPartials<'a> {
    rule: &'a ForeignCliFanout,
    cfg: &'a RulesConfig,
    parts: u32,
    /// The findings of a one-partition scan.
    whole: Option<Vec<Finding>>,
    spill: Option<FanoutSpill>,
    home: String,
}

impl Partials for FanoutPartials<'_> {
    fn add(&mut self, input: &AuditInput) -> Result<Vec<String>> {
        let min = self.cfg.foreign_cli_fanout.fanout_min_callees as i64;
        self.home.clone_from(&input.home_region);
        if self.parts == 1 {
            // (a carrier's subscriber records come as a second input, judged on their own)
            let found = self.rule.findings(fanout_groups(input, min)?, &input.home_region, min);
            self.whole.get_or_insert_with(Vec::new).extend(found);
        } else {
            let spill = match &mut self.spill {
                Some(s) => s,
                None => self.spill.insert(FanoutSpill::new()?),
            };
            let t = std::time::Instant::now();
            let keys = FanoutParts::of(input)?;
            crate::diag::trace("fan-out part", t);
            spill.push(keys)?;
            crate::diag::trace("fan-out part spilled", t);
        }
        // its findings name a caller ID, not an operator
        Ok(Vec::new())
    }

    fn finish(self: Box<Self>) -> Result<RuleOutput> {
        let findings = match (self.whole, self.spill) {
            (Some(f), _) => f,
            (None, Some(spill)) => self.rule.findings_of_parts(spill.merged()?, self.cfg, &self.home),
            (None, None) => Vec::new(),
        };
        Ok(RuleOutput { findings, ..Default::default() })
    }
}

impl ForeignCliFanout {
    fn findings(&self, groups: Vec<FanoutGroup>, home: &str, min: i64) -> Vec<Finding> {
        use rayon::prelude::*;
        // tens of thousands of findings at 10 M calls: built in parallel, kept in group order
        groups.into_par_iter().map(|g| {
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
                fact: None,
            }
        }).collect()
    }

    /// The findings of parts merged with [`FanoutParts::merge`]: the same as [`Rule::run`] over
    /// the whole frame.
    fn findings_of_parts(&self, parts: FanoutParts, cfg: &RulesConfig, home: &str) -> Vec<Finding> {
        let min = cfg.foreign_cli_fanout.fanout_min_callees as i64;
        self.findings(parts.groups(min), home, min)
    }
}

/// One (caller number, local day) key's foreign-CLI calls to home callees in one part of the CDRs
/// (`scan --partitions`: each part holds whole operators, but one caller ID serves many operators).
/// Everything the rule reports merges across parts: distinct callees as a set, operators and
/// origins as sets, first and last call, the 20 earliest references, and the caller read at the
/// key's first row in frame order (operator, then row).
#[derive(serde::Serialize, serde::Deserialize)]
struct Partial {
    callees: Vec<u64>,
    calls: usize,
    operators: std::collections::BTreeSet<String>,
    ip_countries: std::collections::BTreeSet<String>,
    first_us: Option<i64>,
    last_us: Option<i64>,
    /// (start, operator, row in the part, reference): the earliest 20 by start, then frame order.
    refs: Vec<(Option<i64>, String, u32, String)>,
    /// (operator, row) of the first row in frame order, and the caller read there.
    first: (String, u32),
    cli: String,
    country: Option<String>,
    valid: bool,
}

/// [`Partial`]s keyed by (caller number, local day), over the parts seen so far.
#[derive(Default)]
pub struct FanoutParts {
    keys: std::collections::HashMap<(u64, i32), Partial>,
}

/// The parts' [`FanoutParts`] written to an anonymous temporary file as they come and merged once
/// after the last part: held in memory they were the largest thing a partitioned scan kept between
/// parts (100 M rows: ~285 k keys, 35 M callees and 5.7 M references, about 1.4 GB resident beside
/// every later part's load).
pub struct FanoutSpill {
    file: std::io::BufWriter<std::fs::File>,
    parts: usize,
}

impl FanoutSpill {
    /// A spill in the system temporary directory (`TMPDIR`); the file has no name and is gone when
    /// the spill is dropped or the process ends.
    pub fn new() -> Result<Self> {
        let file = tempfile::tempfile()
            .with_context(|| format!("cannot create a temporary file in {}", std::env::temp_dir().display()))?;
        Ok(Self { file: std::io::BufWriter::with_capacity(1 << 20, file), parts: 0 })
    }

    /// Write one part's keys (one JSON line).
    pub fn push(&mut self, part: FanoutParts) -> Result<()> {
        use std::io::Write;
        let keys: Vec<((u64, i32), Partial)> = part.keys.into_iter().collect();
        serde_json::to_writer(&mut self.file, &keys).context("cannot write the fan-out spill")?;
        self.file.write_all(b"\n").context("cannot write the fan-out spill")?;
        self.parts += 1;
        Ok(())
    }

    /// Every part's keys, merged.
    pub fn merged(self) -> Result<FanoutParts> {
        use std::io::{BufRead, Seek};
        let mut file = self.file.into_inner().map_err(|e| e.into_error()).context("cannot write the fan-out spill")?;
        file.rewind().context("cannot read the fan-out spill")?;
        let mut all = FanoutParts::default();
        let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
        let parts = self.parts;
        // the next part is read and parsed while this one is merged (100 M rows: 8 s one after the
        // other), one part ahead at most
        std::thread::scope(|scope| -> Result<()> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<((u64, i32), Partial)>>>(1);
            scope.spawn(move || {
                let mut line = String::new();
                for _ in 0..parts {
                    line.clear();
                    let keys = reader
                        .read_line(&mut line)
                        .context("cannot read the fan-out spill")
                        .and_then(|_| serde_json::from_str(&line).context("cannot read the fan-out spill"));
                    let failed = keys.is_err();
                    if tx.send(keys).is_err() || failed {
                        return;
                    }
                }
            });
            for keys in rx {
                all.merge(FanoutParts { keys: keys?.into_iter().collect() });
            }
            Ok(())
        })?;
        Ok(all)
    }
}

impl FanoutParts {
    /// The keys of one part (a prepared frame holding whole operators).
    pub fn of(input: &AuditInput) -> Result<Self> {
        use crate::frame::Chunks;
        use rayon::prelude::*;
        // every foreign-CLI call to a home callee as its entry, grouped by (number, day) by sorting
        let mut entries = fanout_entries(input)?;
        entries.par_sort_unstable();
        let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
        let mut a = 0;
        while a < entries.len() {
            let mut b = a + 1;
            while b < entries.len() && entries[b].0 == entries[a].0 && entries[b].1 == entries[a].1 {
                b += 1;
            }
            runs.push(a..b);
            a = b;
        }
        let df = &input.cdr;
        let cdict = input.coded("caller_country")?;
        let cols = GroupColumns::new(input)?;
        let (country_t, valid_t) = (Chunks::new(cdict.codes), Chunks::new(df.column("caller_valid")?.bool()?));
        let keys = runs
            .into_par_iter()
            .map(|r| {
                let run = &entries[r];
                let mut callees: Vec<u64> = run.iter().map(|e| e.2).collect();
                callees.dedup();
                callees.shrink_to_fit();
                let mut rows: Vec<usize> = run.iter().map(|e| e.3 as usize).collect();
                rows.sort_unstable();
                let d = cols.describe(&rows);
                let first = rows[0];
                let op_of = |i: usize| cols.ops.rows().get(i).unwrap_or_default().to_string();
                let num = run[0].0;
                let part = Partial {
                    callees,
                    calls: run.len(),
                    operators: d.operators.into_iter().map(str::to_string).collect(),
                    ip_countries: d.origins.into_iter().map(str::to_string).collect(),
                    first_us: d.first_us,
                    last_us: d.last_us,
                    refs: d.earliest.iter().map(|(t, i, r)| (*t, op_of(*i), *i as u32, r.to_string())).collect(),
                    first: (op_of(first), first as u32),
                    cli: if num == NONE { String::new() } else { format!("+{num}") },
                    country: country_t.rows().get(first).map(|c| cdict.text(c).to_string()),
                    valid: valid_t.rows().get(first).unwrap_or(false),
                };
                ((num, run[0].1), part)
            })
            .collect();
        Ok(Self { keys })
    }

    /// Fold another part's keys into these.
    pub fn merge(&mut self, other: FanoutParts) {
        for (k, p) in other.keys {
            match self.keys.entry(k) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(p);
                }
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    let q = o.get_mut();
                    q.callees.extend(p.callees);
                    q.callees.sort_unstable();
                    q.callees.dedup();
                    q.callees.shrink_to_fit();
                    q.calls += p.calls;
                    q.operators.extend(p.operators);
                    q.ip_countries.extend(p.ip_countries);
                    q.first_us = match (q.first_us, p.first_us) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    q.last_us = q.last_us.max(p.last_us);
                    q.refs.extend(p.refs);
                    q.refs.sort_unstable();
                    q.refs.truncate(20);
                    if p.first < q.first {
                        (q.first, q.cli, q.country, q.valid) = (p.first, p.cli, p.country, p.valid);
                    }
                }
            }
        }
    }

    /// The keys with at least `min` distinct callees, in frame order of their first row.
    fn groups(self, min: i64) -> Vec<FanoutGroup> {
        let mut kept: Vec<((u64, i32), Partial)> =
            self.keys.into_iter().filter(|(_, p)| p.callees.len() as i64 >= min).collect();
        kept.sort_by(|a, b| a.1.first.cmp(&b.1.first));
        kept.into_iter()
            .map(|((_, day), p)| FanoutGroup {
                cli: p.cli,
                country: p.country,
                valid: p.valid,
                day,
                callees: p.callees.len(),
                calls: p.calls,
                operators: p.operators.into_iter().collect(),
                ip_countries: p.ip_countries.into_iter().collect(),
                first_us: p.first_us,
                last_us: p.last_us,
                refs: p.refs.into_iter().map(|r| r.3).collect(),
            })
            .collect()
    }
}

/// A missing caller number (E.164 keys stay below 10^15).
const NONE: u64 = u64::MAX;

/// (caller number, local day, callee number, row) of every foreign-CLI call to a home callee.
fn fanout_entries(input: &AuditInput) -> Result<Vec<(u64, i32, u64, u32)>> {
    use crate::frame::Rows;
    let df = &input.cdr;
    let home_num = crate::enrich::NumPrefix::new(&input.home_prefix);
    let cdict = input.coded("caller_country")?;
    let (country, home_cc) = (cdict.codes, cdict.code_of(&input.home_region));
    let (cli_num, callee_num) = (df.column("caller_num")?.u64()?, df.column("callee_num")?.u64()?);
    let day = df.column("day")?.cast(&DataType::Int32)?;
    let day = day.i32()?;
    let dir = df.column("direction")?.u32()?;
    let parts = crate::par::slices(df.height(), |off, len| {
        let (mut country, mut cli_num) = (Rows::new(country), Rows::new(cli_num));
        let (mut callee_num, mut day) = (Rows::new(callee_num), Rows::new(day));
        let mut dir = Rows::new(dir);
        let mut v = Vec::new();
        for i in off..off + len {
            if country.get(i).is_none_or(|c| Some(c) == home_cc) || dir.get(i) != Some(OUTBOUND) {
                continue;
            }
            let Some(callee) = callee_num.get(i).filter(|c| home_num.is_some_and(|h| h.matches(*c))) else {
                continue;
            };
            let Some(d) = day.get(i) else { continue };
            v.push((cli_num.get(i).unwrap_or(NONE), d, callee, i as u32));
        }
        v
    });
    Ok(parts.concat())
}

/// The columns a fan-out group's description reads, their chunk tables built once and shared by
/// every group's readers.
struct GroupColumns<'a> {
    ops: crate::frame::Chunks<'a, StringType>,
    refs: crate::frame::Chunks<'a, StringType>,
    ipc: crate::frame::Chunks<'a, UInt32Type>,
    idict: crate::coded::CodedColumn<'a>,
    start: crate::frame::Chunks<'a, Int64Type>,
    end: crate::frame::Chunks<'a, Int64Type>,
}

/// What a group's rows say: the operators and call origins (sorted, distinct; `unknown` for a call
/// without an IP country), the first start and last end, and the 20 earliest rows by start (ties
/// in frame order) with their references.
struct Described<'a> {
    operators: std::collections::BTreeSet<&'a str>,
    origins: std::collections::BTreeSet<&'a str>,
    first_us: Option<i64>,
    last_us: Option<i64>,
    earliest: Vec<(Option<i64>, usize, &'a str)>,
}

impl<'a> GroupColumns<'a> {
    fn new(input: &'a AuditInput) -> Result<Self> {
        use crate::frame::Chunks;
        let df = &input.cdr;
        let idict = input.coded("ip_country")?;
        Ok(Self {
            ops: Chunks::new(df.column("operator_id")?.str()?),
            refs: Chunks::new(df.column("ref")?.str()?),
            ipc: Chunks::new(idict.codes),
            idict,
            start: Chunks::new(df.column("start_us")?.i64()?),
            end: Chunks::new(df.column("end_us")?.i64()?),
        })
    }

    /// `rows` in ascending (frame) order.
    fn describe(&self, rows: &[usize]) -> Described<'a> {
        let (mut ops, mut ipc, mut refs) = (self.ops.rows(), self.ipc.rows(), self.refs.rows());
        let (mut start, mut end) = (self.start.rows(), self.end.rows());
        let mut operators = std::collections::BTreeSet::new();
        let mut origins = std::collections::BTreeSet::new();
        let (mut first_us, mut last_us) = (None::<i64>, None::<i64>);
        let mut timed: Vec<(Option<i64>, usize)> = Vec::with_capacity(rows.len());
        // rows are in frame order, which is operator order: a value like the one before is not
        // looked up in the sets again
        let (mut last_op, mut last_origin) = (None, None);
        for &i in rows {
            let o = ops.get(i);
            if o.is_some() && o != last_op {
                operators.insert(o.unwrap_or_default());
                last_op = o;
            }
            let origin = ipc.get(i).map_or("unknown", |c| self.idict.text(c));
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
        let earliest = timed.into_iter().filter_map(|(t, i)| refs.get(i).map(|r| (t, i, r))).collect();
        Described { operators, origins, first_us, last_us, earliest }
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
/// of this rule's time): the foreign-CLI calls to home numbers become (day, callee, row) entries
/// bucketed by caller number (a counting scatter over the caller dictionary's codes, so the
/// buckets are few and bounded by it), and each bucket is sorted on its own, in parallel, so each
/// day's distinct callees are runs. Buckets with fewer calls than `min` cannot pass and are not
/// sorted. (One parallel sort of all 3.6 M entries of 10 M calls took 0.14 s.) Only the groups
/// that pass read their rows' operators, origins and references.
fn fanout_groups(input: &AuditInput, min: i64) -> Result<Vec<FanoutGroup>> {
    use crate::frame::{Chunks, Rows};
    use rayon::prelude::*;
    let t0 = std::time::Instant::now();
    let df = &input.cdr;
    let home = input.home_region.as_str();
    // home callees by their numeric key: the E.164 text is a pseudonym under --redact
    let home_num = crate::enrich::NumPrefix::new(&input.home_prefix);
    let cdict = input.coded("caller_country")?;
    let (country, home_cc) = (cdict.codes, cdict.code_of(home));
    let callers = input.coded("caller_id")?;
    // one slot per caller text, and one for calls without a caller ID
    let slots = callers.values.len() + 1;
    let (cli_num, callee_num) = (df.column("caller_num")?.u64()?, df.column("callee_num")?.u64()?);
    let day = df.column("day")?.cast(&DataType::Int32)?;
    let day = day.i32()?;
    let dir = df.column("direction")?.u32()?;
    // a missing number is NONE (E.164 keys stay below 10^15); UNSEEN: a caller slot on no entry
    // (slot, day, callee, row) per entry, and each slot's caller number (a function of its text)
    let parts: Vec<SlotEntries> = crate::par::slices(df.height(), |off, len| {
        let mut country = Rows::new(country);
        let (mut cli_num, mut callee_num, mut day) = (Rows::new(cli_num), Rows::new(callee_num), Rows::new(day));
        let mut caller = Rows::new(callers.codes);
        let mut dir = Rows::new(dir);
        let mut nums = vec![UNSEEN; slots];
        let mut v = Vec::with_capacity(len / 2);
        for i in off..off + len {
            // an inbound call's caller ID is the caller's own number
            let foreign = country.get(i).is_some_and(|c| Some(c) != home_cc) && dir.get(i) == Some(OUTBOUND);
            if !foreign {
                continue;
            }
            let callee = callee_num.get(i);
            if !callee.is_some_and(|c| home_num.is_some_and(|h| h.matches(c))) {
                continue;
            }
            let Some(d) = day.get(i) else { continue };
            let slot = caller.get(i).map_or(slots - 1, |c| c as usize);
            if nums[slot] == UNSEEN {
                nums[slot] = cli_num.get(i).unwrap_or(NONE);
            }
            v.push((slot as u32, d, callee.unwrap_or(NONE), i as u32));
        }
        (v, nums)
    });
    let (mut entries, starts) = by_caller_number(parts, slots);
    crate::diag::trace(&format!("fanout entries {}", entries.len()), t0);
    let mut kept = day_runs(&mut entries, &starts, min);
    crate::diag::trace("fanout sorted", t0);
    // first-appearance order, as a stable group-by would give
    kept.sort_unstable_by_key(|k| k.0);
    crate::diag::trace(&format!("fanout kept {}", kept.len()), t0);
    let valid = df.column("caller_valid")?.bool()?;
    let cols = GroupColumns::new(input)?;
    // a group's caller, read at its first row (ChunkedArray::get walks the chunk list each time)
    let (cli_num_t, country_t, valid_t) = (Chunks::new(cli_num), Chunks::new(cdict.codes), Chunks::new(valid));
    let groups = kept
        .par_iter()
        .map(|(first, range, callees)| {
            let mut rows: Vec<usize> = entries[range.clone()].iter().map(|e| e.2 as usize).collect();
            rows.sort_unstable();
            let d = cols.describe(&rows);
            let first = *first as usize;
            FanoutGroup {
                // E.164 text from its numeric key (the group's key; no E.164: no text)
                cli: cli_num_t.rows().get(first).map(|n| format!("+{n}")).unwrap_or_default(),
                country: country_t.rows().get(first).map(|c| cdict.text(c).to_string()),
                valid: valid_t.rows().get(first).unwrap_or(false),
                day: entries[range.start].0,
                callees: *callees,
                calls: range.len(),
                operators: d.operators.into_iter().map(str::to_string).collect(),
                ip_countries: d.origins.into_iter().map(str::to_string).collect(),
                first_us: d.first_us,
                last_us: d.last_us,
                refs: d.earliest.iter().map(|e| e.2.to_string()).collect(),
            }
        })
        .collect();
    Ok(groups)
}

/// A missing number, and a caller slot no entry used.
const UNSEEN: u64 = u64::MAX - 1;

/// One slice's (caller slot, day, callee, row) entries and each slot's caller number.
type SlotEntries = (Vec<(u32, i32, u64, u32)>, Vec<u64>);

/// One fan-out entry: (day, callee, row).
type Entry = (i32, u64, u32);

/// The slices' (slot, day, callee, row) entries scattered by caller number (two texts of one
/// number share it), each number's entries in frame order; with each number's start in them.
fn by_caller_number(parts: Vec<SlotEntries>, slots: usize) -> (Vec<Entry>, Vec<usize>) {
    // caller slots → buckets: one per distinct caller number (two texts of one number share it)
    let mut num_of_slot = vec![UNSEEN; slots];
    for (_, nums) in &parts {
        for (k, n) in nums.iter().enumerate() {
            if *n != UNSEEN {
                num_of_slot[k] = *n;
            }
        }
    }
    let mut distinct: Vec<u64> = num_of_slot.iter().copied().filter(|n| *n != UNSEEN).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let bucket_of_slot: Vec<u32> =
        num_of_slot.iter().map(|n| distinct.binary_search(n).map_or(u32::MAX, |b| b as u32)).collect();
    let n_entries: usize = parts.iter().map(|(v, _)| v.len()).sum();
    // counting scatter by bucket: (day, callee, row), each bucket's entries in frame order
    let mut starts = vec![0usize; distinct.len() + 1];
    for (v, _) in &parts {
        for e in v {
            starts[bucket_of_slot[e.0 as usize] as usize + 1] += 1;
        }
    }
    for b in 1..starts.len() {
        starts[b] += starts[b - 1];
    }
    // (day, callee, row)
    let mut entries: Vec<Entry> = vec![(0, 0, 0); n_entries];
    let mut next = starts.clone();
    for (v, _) in parts {
        for (slot, d, callee, row) in v {
            let b = bucket_of_slot[slot as usize] as usize;
            entries[next[b]] = (d, callee, row);
            next[b] += 1;
        }
    }
    (entries, starts)
}

/// Each caller number's entries sorted by (day, callee, row); the runs of one day reaching `min`
/// distinct callees, as (first row, entries, callees). A number with fewer calls than `min`
/// cannot reach `min` distinct callees on any day.
fn day_runs(entries: &mut [Entry], starts: &[usize], min: i64) -> Vec<(u32, std::ops::Range<usize>, usize)> {
    use rayon::prelude::*;
    let distinct = starts.len() - 1;
    // each bucket sorted by (day, callee, row) on its own; a bucket with fewer calls than `min`
    // cannot reach `min` distinct callees on any day
    let mut buckets: Vec<(usize, &mut [Entry])> = Vec::with_capacity(distinct);
    let mut rest: &mut [Entry] = entries;
    for b in 0..distinct {
        let (this, tail) = rest.split_at_mut(starts[b + 1] - starts[b]);
        rest = tail;
        if this.len() as i64 >= min {
            buckets.push((starts[b], this));
        }
    }
    // runs of one day: count calls and distinct callees; keep those reaching `min`
    // (first row, entries, callees)
    buckets
        .into_par_iter()
        .flat_map_iter(|(at, bucket)| {
            bucket.sort_unstable();
            let mut kept = Vec::new();
            let mut a = 0;
            while a < bucket.len() {
                let mut b = a;
                let mut callees = 0;
                let mut first = u32::MAX;
                while b < bucket.len() && bucket[b].0 == bucket[a].0 {
                    if b == a || bucket[b].1 != bucket[b - 1].1 {
                        callees += 1;
                    }
                    first = first.min(bucket[b].2);
                    b += 1;
                }
                if callees as i64 >= min {
                    kept.push((first, at + a..at + b, callees));
                }
                a = b;
            }
            kept
        })
        .collect()
}
