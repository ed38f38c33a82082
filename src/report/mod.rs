//! Investigator reports: the facts of one dossier per flagged operator, collected once by `scan`
//! (`dossiers.json`), rendered as an offline HTML report (`report.html`) and, per operator, as
//! Markdown, JSON or HTML by `report`. A writer never computes a verdict: everything here is read
//! from the findings and the prepared data.

pub mod crews;
pub mod csv_safe;
pub mod parties;
pub mod render;

use crate::frame::{Chunks, col_f64, col_i64, col_str, local};
use crate::prepare::AuditInput;
use crate::rules::Finding;
use anyhow::{Context, Result};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Everything the reports show.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub version: String,
    pub tz: String,
    pub inputs: Vec<InputLine>,
    pub rows_read: u64,
    pub rows_rejected: u64,
    pub duplicates: u64,
    pub findings_per_rule: BTreeMap<String, usize>,
    /// Operators with a risk above 0, highest first.
    pub ranking: Vec<RankLine>,
    pub dossiers: Vec<Dossier>,
    pub redacted: bool,
    /// The scan's quota band (hours of talk), shaded in the daily charts.
    #[serde(default = "default_band")]
    pub quota_band_hours: [f64; 2],
    /// Crew pages: the crews that are findings or hold an operator with a dossier.
    #[serde(default)]
    pub crews: Vec<crews::CrewPage>,
    /// Every file the scan read, with its SHA-256 (manifest.json has the whole record).
    #[serde(default)]
    pub evidence: Vec<EvidenceLine>,
    /// SHA-256 of the config in force (as in manifest.json).
    #[serde(default)]
    pub config_sha256: String,
    /// The desk's view: new findings first (at most [`MAX_TRIAGE_LINES`]), counts of the rest.
    #[serde(default)]
    pub triage: Option<TriageView>,
}

/// At most this many new findings are listed in report.html (all are in findings.csv).
pub const MAX_TRIAGE_LINES: usize = 500;

#[derive(Clone, Debug, Serialize, Deserialize, Default)]
pub struct TriageView {
    pub new: Vec<TriageLine>,
    pub new_total: usize,
    pub recurring: usize,
    pub suppressed: usize,
    /// None without `--history`.
    pub resolved: Option<usize>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TriageLine {
    pub severity: String,
    pub rule: String,
    pub operator_id: String,
    pub subject: String,
    pub first_seen: String,
    pub summary: String,
}

/// One input as the report names it (the deterministic part of the manifest's record).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EvidenceLine {
    pub role: String,
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub rows: Option<u64>,
}

/// An input a dossier's rows came from.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SourceRef {
    pub path: String,
    pub sha256: String,
    /// The operator's calls read from it.
    pub rows: u64,
    /// The loader's file number (resolved to `path` by the scan).
    #[serde(skip)]
    pub file: u32,
}

fn default_band() -> [f64; 2] {
    [8.0, 10.0]
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InputLine {
    pub path: String,
    pub format: String,
    pub encoding: String,
    pub rows_read: u64,
    pub rows_rejected: u64,
    pub duplicates: u64,
    /// SHA-256 of the file (empty in reports written before it).
    #[serde(default)]
    pub sha256: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RankLine {
    pub operator_id: String,
    pub risk_score: f64,
    pub rules_hit: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Dossier {
    pub operator_id: String,
    pub risk_score: f64,
    pub rules_hit: Vec<String>,
    pub findings: Vec<FindingLine>,
    pub shifts: Vec<ShiftLine>,
    pub daily: Vec<DayLine>,
    pub clis: Vec<CliLine>,
    pub conversions: Option<Conversions>,
    /// Example calls: the first ones of each flagged shift, then others, at most 30.
    pub calls: Vec<CallLine>,
    /// The operator's crew and monitoring (who listened in on it, whom it listened in on).
    #[serde(default)]
    pub crew: Option<crews::CrewRef>,
    /// The earnings estimate and what it rests on.
    #[serde(default)]
    pub pay: Option<crews::PayLine>,
    /// The inputs its operator's calls were read from, with their SHA-256 (empty in dossiers
    /// written before it, and from the Spark engine).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceRef>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FindingLine {
    pub rule: String,
    pub severity: String,
    pub score: f64,
    pub summary: String,
    pub window_start: String,
    pub window_end: String,
}

impl FindingLine {
    /// A finding as a dossier lists it, its window in local time.
    pub fn of(f: &Finding, tz: chrono_tz::Tz) -> Self {
        Self {
            rule: f.rule.to_string(),
            severity: f.severity.name().to_string(),
            score: f.score,
            summary: f.summary.clone(),
            window_start: local(f.window_start.timestamp_micros(), tz),
            window_end: local(f.window_end.timestamp_micros(), tz),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ShiftLine {
    pub day: String,
    pub start: String,
    pub end: String,
    /// Hours after local midnight of `day` at which the shift started.
    pub start_hour: f64,
    pub span_h: f64,
    pub talk_h: f64,
    pub calls: i64,
    pub answered: i64,
    pub flagged: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DayLine {
    pub day: String,
    pub talk_h: f64,
    pub calls: i64,
    pub answered: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CliLine {
    pub cli: String,
    pub country: String,
    pub valid: bool,
    pub ip_countries: String,
    pub calls: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Conversions {
    pub answered_callees: i64,
    pub converted: i64,
    pub rate: f64,
    pub minutes_to_join: Vec<f64>,
    pub groups: Vec<(String, i64)>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CallLine {
    pub time: String,
    /// outbound, inbound, internal or unknown (docs/calls.md); empty in dossiers written before it.
    #[serde(default)]
    pub direction: String,
    pub callee: String,
    pub cli: String,
    pub ip: String,
    pub ip_country: String,
    pub talk_s: i64,
    pub call: String,
}

const MAX_CALLS: usize = 30;

fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Collect the dossiers of every operator with an operator-level finding.
pub fn collect(
    input: &AuditInput,
    findings: &[Finding],
    operators: &DataFrame,
    conversions: Option<&DataFrame>,
    min_talk_h: f64,
    callees_redacted: bool,
) -> Result<Vec<Dossier>> {
    let ops = operators_with_findings(findings);
    if ops.is_empty() {
        return Ok(vec![]);
    }
    let m = material(input, &ops, callees_redacted)?;
    assemble(m, &input.shifts, input.tz, findings, operators, conversions, min_talk_h)
}

/// The operators a finding names, sorted: the ones that get a dossier.
pub fn operators_with_findings(findings: &[Finding]) -> Vec<String> {
    let mut ops: Vec<String> = findings.iter().filter_map(|f| f.operator_id.clone()).collect();
    ops.sort();
    ops.dedup();
    ops
}

/// What the dossiers of some operators read from their calls: daily totals, caller IDs and the
/// first calls, per operator (`scan --partitions` gathers it part by part).
#[derive(Default)]
pub struct Material {
    per_op: BTreeMap<String, OperatorMaterial>,
    /// Per operator: (file number, calls) of the inputs its rows came from.
    files: BTreeMap<String, Vec<(u32, u64)>>,
}

/// One operator's daily totals and caller IDs.
type DailyAndClis = (Vec<DayLine>, Vec<CliLine>);

/// One operator's daily totals, caller IDs and first calls.
type OperatorMaterial = (Vec<DayLine>, Vec<CliLine>, Vec<CallLine>);

impl Material {
    pub fn merge(&mut self, other: Material) {
        self.per_op.extend(other.per_op);
        self.files.extend(other.files);
    }
}

/// [`Material`] for the operators `ops` (sorted) found in `input`.
pub fn material(input: &AuditInput, ops: &[String], callees_redacted: bool) -> Result<Material> {
    use rayon::prelude::*;
    // Daily totals and caller IDs: each operator's rows are one contiguous range of the prepared
    // frame (sorted by operator and start), walked in place; gathering every column of every
    // flagged operator's calls first cost more than the rest of the report.
    let cdr = &input.cdr;
    let day = cdr.column("day")?.cast(&DataType::Int32)?;
    let talk = col_i64(cdr, "talk_s")?;
    let (raw, country, ipc) = (input.coded("caller_id")?, input.coded("caller_country")?, input.coded("ip_country")?);
    // chunk tables built once (a slice of a many-chunk column per operator walked every chunk)
    let c = MaterialColumns {
        day: Chunks::new(day.i32()?),
        talk: Chunks::new(&talk),
        answered: Chunks::new(cdr.column("answered")?.bool()?),
        num: Chunks::new(cdr.column("caller_num")?.u64()?),
        raw_t: Chunks::new(raw.codes),
        country_t: Chunks::new(country.codes),
        ipc_t: Chunks::new(ipc.codes),
        valid: Chunks::new(cdr.column("caller_valid")?.bool()?),
        raw,
        country,
        ipc,
    };
    let per_op: Vec<(&str, DailyAndClis)> = ops
        .par_iter()
        .filter_map(|op| input.op_rows.get(op.as_str()).map(|r| (op.as_str(), r.clone())))
        .map(|(op, range)| (op, (c.daily(range.clone()), c.clis(range))))
        .collect();
    let mut per_op: BTreeMap<String, OperatorMaterial> =
        per_op.into_iter().map(|(op, (daily, clis))| (op.to_string(), (daily, clis, Vec::new()))).collect();
    first_calls(input, ops, callees_redacted, &mut per_op)?;
    Ok(Material { per_op, files: source_files(input, ops)? })
}

/// Per operator of `ops`: the file numbers its rows came from, with how many (none when the frame
/// has no `__file`).
fn source_files(input: &AuditInput, ops: &[String]) -> Result<BTreeMap<String, Vec<(u32, u64)>>> {
    let Ok(c) = input.cdr.column("__file") else { return Ok(BTreeMap::new()) };
    let files = c.u32()?;
    let t = Chunks::new(files);
    let mut out = BTreeMap::new();
    for op in ops {
        let Some(r) = input.op_rows.get(op.as_str()) else { continue };
        let mut m: BTreeMap<u32, u64> = BTreeMap::new();
        let mut rows = t.rows();
        for i in r.clone() {
            if let Some(f) = rows.get(i) {
                *m.entry(f).or_default() += 1;
            }
        }
        out.insert(op.clone(), m.into_iter().collect());
    }
    Ok(out)
}

/// The columns [`material`] walks, as chunk tables shared by every operator's readers.
struct MaterialColumns<'a> {
    day: Chunks<'a, Int32Type>,
    talk: Chunks<'a, Int64Type>,
    answered: Chunks<'a, BooleanType>,
    num: Chunks<'a, UInt64Type>,
    raw_t: Chunks<'a, UInt32Type>,
    country_t: Chunks<'a, UInt32Type>,
    ipc_t: Chunks<'a, UInt32Type>,
    valid: Chunks<'a, BooleanType>,
    raw: crate::coded::CodedColumn<'a>,
    country: crate::coded::CodedColumn<'a>,
    ipc: crate::coded::CodedColumn<'a>,
}

impl MaterialColumns<'_> {
    /// Talk, calls and answered calls per local day of one operator's rows.
    fn daily(&self, range: std::ops::Range<usize>) -> Vec<DayLine> {
        let c = self;
        let mut days: BTreeMap<i32, (i64, i64, i64)> = BTreeMap::new();
        let (mut dd, mut tt, mut aa) = (c.day.rows(), c.talk.rows(), c.answered.rows());
        // rows are in start order: a day's calls are one run, summed before its one map entry
        let mut run: Option<(i32, (i64, i64, i64))> = None;
        for i in range {
            let (d, t, a) = (dd.get(i), tt.get(i), aa.get(i));
            let Some(d) = d else { continue };
            if run.is_some_and(|(rd, _)| rd != d) {
                let (rd, (t, n, a)) = run.take().expect("checked");
                let e = days.entry(rd).or_default();
                (e.0, e.1, e.2) = (e.0 + t, e.1 + n, e.2 + a);
            }
            let e = &mut run.get_or_insert((d, (0, 0, 0))).1;
            e.0 += t.unwrap_or(0);
            e.1 += 1;
            e.2 += i64::from(a.unwrap_or(false));
        }
        if let Some((rd, (t, n, a))) = run {
            let e = days.entry(rd).or_default();
            (e.0, e.1, e.2) = (e.0 + t, e.1 + n, e.2 + a);
        }
        days.into_iter()
            .map(|(d, (t, n, a))| DayLine {
                day: crate::time::epoch_day(d).to_string(),
                talk_h: r2(t as f64 / 3600.0),
                calls: n,
                answered: a,
            })
            .collect()
    }

    /// One operator's caller IDs: calls, country, validity and IP countries, most used first.
    fn clis(&self, range: std::ops::Range<usize>) -> Vec<CliLine> {
        let c = self;
        // caller IDs in order of first use; the most used first
        // keyed by the E.164 number, else the text as written
        let mut index: PlHashMap<Result<u64, &str>, usize> = PlHashMap::new();
        // (line, IP-country codes in order of first use; NO_CODE: unknown)
        let mut lines: Vec<(CliLine, Vec<u32>)> = Vec::new();
        let (mut num, mut raw_c, mut country_c, mut ipc_c, mut valid) =
            (c.num.rows(), c.raw_t.rows(), c.country_t.rows(), c.ipc_t.rows(), c.valid.rows());
        let it = range.map(|i| {
            ((((num.get(i), raw_c.get(i)), country_c.get(i).map(|cc| c.country.text(cc))), ipc_c.get(i)), valid.get(i))
        });
        // an operator dials from one caller ID many times in a row: the last one's line is reused
        // ((caller number, caller code), line index) of the row before
        type Last = ((Option<u64>, Option<u32>), usize);
        let mut last: Option<Last> = None;
        for ((((n, r), ctry), ip), v) in it {
            let k = match last {
                Some((key, k)) if key == (n, r) => k,
                _ => {
                    let key = n.ok_or_else(|| r.map_or("(none)", |r| c.raw.text(r)));
                    let k = *index.entry(key).or_insert_with(|| {
                        lines.push((
                            CliLine {
                                cli: match key {
                                    Ok(n) => format!("+{n}"),
                                    Err(text) => text.to_string(),
                                },
                                country: ctry.unwrap_or("").to_string(),
                                valid: v.unwrap_or(false),
                                ip_countries: String::new(),
                                calls: 0,
                            },
                            vec![],
                        ));
                        lines.len() - 1
                    });
                    last = Some(((n, r), k));
                    k
                }
            };
            let (line, ips) = &mut lines[k];
            line.calls += 1;
            let ip = ip.unwrap_or(crate::par::NO_CODE);
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
        let mut clis: Vec<CliLine> = lines
            .into_iter()
            .map(|(mut l, ips)| {
                let text = |code: &u32| if *code == crate::par::NO_CODE { "unknown" } else { c.ipc.text(*code) };
                let mut texts: Vec<&str> = Vec::with_capacity(ips.len());
                for t in ips.iter().map(text) {
                    if !texts.contains(&t) {
                        texts.push(t);
                    }
                }
                l.ip_countries = texts.join(", ");
                l
            })
            .collect();
        clis.sort_by_key(|l| std::cmp::Reverse(l.calls)); // stable: ties keep first use order
        clis
    }
}

/// The first [`MAX_CALLS`] calls of each operator (the frame is sorted by operator and start).
fn first_calls(
    input: &AuditInput,
    ops: &[String],
    callees_redacted: bool,
    per_op: &mut BTreeMap<String, OperatorMaterial>,
) -> Result<()> {
    let tz = input.tz;
    // the first calls of each operator (the frame is sorted by operator and start)
    let calls = {
        let mut idx: Vec<IdxSize> = Vec::new();
        for op in ops {
            if let Some(r) = input.op_rows.get(op.as_str()) {
                idx.extend((r.start..r.end.min(r.start + MAX_CALLS)).map(|i| i as IdxSize));
            }
        }
        input
            .cdr
            .select([
                "operator_id",
                "start_us",
                "callee_num",
                "callee",
                "caller_id",
                "src_ip",
                "ip_country",
                "ref",
                "talk_s",
                "direction",
            ])?
            .take(&IdxCa::from_vec("idx".into(), idx))?
    };
    {
        let o = col_str(&calls, "operator_id")?;
        let (t, callee, rf) = (col_i64(&calls, "start_us")?, col_str(&calls, "callee")?, col_str(&calls, "ref")?);
        let (cli, ip, ipc) = (
            input.dicts.column(&calls, "caller_id")?,
            input.dicts.column(&calls, "src_ip")?,
            input.dicts.column(&calls, "ip_country")?,
        );
        let talk = col_i64(&calls, "talk_s")?;
        let dir = calls.column("direction")?.u32()?;
        let callee_num = calls.column("callee_num")?.u64()?;
        // E.164 from the number's key, else as written; under --redact the pseudonym in `callee`
        let callee_text = |i: usize| {
            if callees_redacted {
                callee.get(i).unwrap_or("").to_string()
            } else {
                crate::enrich::display_number(callee_num.get(i), callee.get(i))
            }
        };
        for i in 0..calls.height() {
            if let Some(d) = o.get(i).and_then(|o| per_op.get_mut(o)) {
                d.2.push(CallLine {
                    time: local(t.get(i).unwrap_or(0), tz),
                    direction: crate::load::legs::DIRECTIONS[dir.get(i).unwrap_or(3).min(3) as usize].to_string(),
                    callee: callee_text(i),
                    cli: cli.get(i).unwrap_or("").to_string(),
                    ip: ip.get(i).unwrap_or("").to_string(),
                    ip_country: ipc.get(i).unwrap_or("").to_string(),
                    talk_s: talk.get(i).unwrap_or(0),
                    call: rf.get(i).unwrap_or("").to_string(),
                });
            }
        }
    }
    Ok(())
}

/// The dossiers of the operators a finding names, from their [`Material`] and shifts.
pub fn assemble(
    material: Material,
    shifts: &DataFrame,
    tz: chrono_tz::Tz,
    findings: &[Finding],
    operators: &DataFrame,
    conversions: Option<&DataFrame>,
    min_talk_h: f64,
) -> Result<Vec<Dossier>> {
    let ops = operators_with_findings(findings);
    if ops.is_empty() {
        return Ok(vec![]);
    }
    let sel = DataFrame::new(ops.len(), vec![Column::new("operator_id".into(), ops.clone())])?;
    let semi = |lf: LazyFrame| {
        lf.join(sel.clone().lazy(), [col("operator_id")], [col("operator_id")], JoinArgs::new(JoinType::Semi))
    };
    let shifts = semi(shifts.clone().lazy())
        .sort(["operator_id", "shift_start_us"], SortMultipleOptions::default())
        .collect()?;

    let mut by_op: BTreeMap<String, Dossier> = BTreeMap::new();
    let ids = col_str(operators, "operator_id")?;
    let risk = col_f64(operators, "risk_score")?;
    let hit = col_str(operators, "rules_hit")?;
    for i in 0..operators.height() {
        let Some(op) = ids.get(i) else { continue };
        if ops.binary_search(&op.to_string()).is_err() {
            continue;
        }
        by_op.insert(
            op.to_string(),
            Dossier {
                operator_id: op.to_string(),
                risk_score: risk.get(i).unwrap_or(0.0),
                rules_hit: hit.get(i).unwrap_or("").split(';').filter(|s| !s.is_empty()).map(str::to_string).collect(),
                findings: vec![],
                shifts: vec![],
                daily: vec![],
                clis: vec![],
                conversions: None,
                calls: vec![],
                crew: None,
                pay: None,
                sources: material
                    .files
                    .get(op)
                    .map(|v| {
                        v.iter()
                            .map(|(file, rows)| SourceRef {
                                path: String::new(),
                                sha256: String::new(),
                                rows: *rows,
                                file: *file,
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            },
        );
    }
    for f in findings {
        if let Some(d) = f.operator_id.as_ref().and_then(|o| by_op.get_mut(o)) {
            d.findings.push(FindingLine::of(f, tz));
        }
    }
    for (op, (daily, clis, calls)) in material.per_op {
        if let Some(d) = by_op.get_mut(&op) {
            d.daily = daily;
            d.clis = clis;
            d.calls = calls;
        }
    }
    {
        let o = col_str(&shifts, "operator_id")?;
        let day = col_str(&shifts, "day")?;
        let (s, e, talk, n, ans) = (
            col_i64(&shifts, "shift_start_us")?,
            col_i64(&shifts, "shift_end_us")?,
            col_i64(&shifts, "talk_s")?,
            col_i64(&shifts, "calls")?,
            col_i64(&shifts, "answered")?,
        );
        for i in 0..shifts.height() {
            if let Some(d) = o.get(i).and_then(|o| by_op.get_mut(o)) {
                let (su, eu) = (s.get(i).unwrap_or(0), e.get(i).unwrap_or(0));
                let start_local = crate::frame::utc(su).with_timezone(&tz);
                let start_hour = f64::from(chrono::Timelike::hour(&start_local))
                    + f64::from(chrono::Timelike::minute(&start_local)) / 60.0;
                let talk_h = talk.get(i).unwrap_or(0) as f64 / 3600.0;
                d.shifts.push(ShiftLine {
                    day: day.get(i).unwrap_or("").to_string(),
                    start: local(su, tz),
                    end: local(eu, tz),
                    start_hour: r2(start_hour),
                    span_h: r2((eu - su) as f64 / 3.6e9),
                    talk_h: r2(talk_h),
                    calls: n.get(i).unwrap_or(0),
                    answered: ans.get(i).unwrap_or(0),
                    flagged: talk_h >= min_talk_h,
                });
            }
        }
    }
    if let Some(conv) = conversions {
        add_conversions(&mut by_op, semi(conv.clone().lazy()).collect()?, operators)?;
    }
    let mut out: Vec<Dossier> = by_op.into_values().collect();
    out.sort_by(|a, b| b.risk_score.total_cmp(&a.risk_score).then(a.operator_id.cmp(&b.operator_id)));
    Ok(out)
}

/// Each dossier's conversions (`conv`: the conversions table rows of the dossiers' operators).
fn add_conversions(by_op: &mut BTreeMap<String, Dossier>, conv: DataFrame, operators: &DataFrame) -> Result<()> {
    // answered distinct callees per operator, as the conversion rule counted them
    let mut answered_of = BTreeMap::new();
    for (o, n) in col_str(operators, "operator_id")?.iter().zip(col_i64(operators, "answered_callees")?.iter()) {
        if let (Some(o), Some(n)) = (o, n) {
            answered_of.insert(o.to_string(), n);
        }
    }
    let (o, g, m) = (col_str(&conv, "operator_id")?, col_str(&conv, "group_id")?, col_f64(&conv, "minutes_to_join")?);
    let member = col_str(&conv, "member_e164")?;
    // per operator: minutes to join, conversions per group, distinct members
    type Acc = (Vec<f64>, BTreeMap<String, i64>, std::collections::BTreeSet<String>);
    let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
    for i in 0..conv.height() {
        if let Some(op) = o.get(i) {
            let e = acc.entry(op.to_string()).or_default();
            e.0.push(r2(m.get(i).unwrap_or(0.0)));
            *e.1.entry(g.get(i).unwrap_or("").to_string()).or_default() += 1;
            e.2.insert(member.get(i).unwrap_or("").to_string());
        }
    }
    for (op, (mins, groups, members)) in acc {
        if let Some(d) = by_op.get_mut(&op) {
            let answered = answered_of.get(&op).copied().unwrap_or(0);
            let converted = members.len() as i64;
            d.conversions = Some(Conversions {
                answered_callees: answered,
                converted,
                rate: if answered > 0 {
                    (converted as f64 / answered as f64 * 10_000.0).round() / 10_000.0
                } else {
                    0.0
                },
                minutes_to_join: mins,
                groups: groups.into_iter().collect(),
            });
        }
    }
    Ok(())
}

/// Read `dossiers.json` from a finished scan.
pub fn load(dir: &Path) -> Result<Report> {
    let p = dir.join("dossiers.json");
    let text = std::fs::read_to_string(&p).with_context(|| format!("{}: cannot read (run scan first)", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a diversion-audit dossier file", p.display()))
}
