//! `scan --partitions N`: the CDRs read in N parts split by a hash of the operator id
//! ([`crate::load::Partition`]), one part in memory at a time, for inputs larger than memory.
//!
//! Every call of an operator falls in one part, so the per-operator rules (long-shift,
//! spoofed-foreign-cli), the shifts, operator totals and the dossiers' call material are each
//! part's own. The two rules that cross operators keep a small summary per part and judge the
//! merged summaries: foreign-cli-fanout its (caller number, day) keys
//! ([`crate::rules::foreign_cli_fanout::FanoutParts`], spilled to a temporary file between parts
//! by [`crate::rules::foreign_cli_fanout::FanoutSpill`]), group-invite-conversion its answered
//! callees and the answered calls to numbers in the join log. The results are those of a whole
//! scan (a test holds them byte for byte), except that duplicate call ids are found within a part
//! (the same call exported twice has one operator, so one part).

use crate::config::Config;
use crate::enrich::{self, ip::IpCountry, phone::PhoneParser};
use crate::load::{self, FileReport, LoadOptions, Loaded, Partition};
use crate::report::Material;
use crate::rules::foreign_cli_fanout::{FanoutParts, FanoutSpill, ForeignCliFanout};
use crate::rules::group_invite_conversion::GroupInviteConversion;
use crate::rules::{self, AuditInput, RuleDoc, RuleOutput};
use anyhow::{Context, Result};
use indicatif::ProgressBar;
use polars::prelude::*;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

/// The rules that read one operator at a time and so run on each part alone.
const PER_OPERATOR: [&str; 2] = ["long-shift", "spoofed-foreign-cli"];

/// What a partitioned scan reads with.
pub struct Setup<'a> {
    pub paths: &'a [PathBuf],
    pub load: &'a LoadOptions,
    pub phones: &'a PhoneParser,
    pub cfg: &'a Config,
    /// The join log as loaded (each part prepares it as a whole scan does).
    pub joins: Option<&'a DataFrame>,
    pub ips: Option<&'a IpCountry>,
    pub redactor: Option<&'a crate::redact::Redactor>,
    pub range: Option<(chrono::NaiveDate, chrono::NaiveDate)>,
    pub parts: u32,
}

/// What the parts left, merged.
pub struct Parts {
    /// File reports summed over the parts, every rejected row; no frame.
    pub loaded: Loaded,
    /// Every shift, sorted by operator and start.
    pub shifts: DataFrame,
    /// Per-operator totals for operators.csv.
    pub totals: DataFrame,
    /// Dossier material of every operator a finding can name.
    pub material: Material,
    /// Calls audited (after `--date` and friends).
    pub rows: usize,
    pub tz: chrono_tz::Tz,
    home_region: String,
    /// The per-operator rules' outputs, merged, with their summed seconds.
    per_operator: BTreeMap<&'static str, (f64, RuleOutput)>,
    /// group-invite-conversion's parts, merged in frame order (see [`GroupInviteConversion::part`]).
    base: DataFrame,
    answered: Option<DataFrame>,
    /// The join log as the rules read it (prepared with the first part).
    joins: Option<DataFrame>,
    fanout: FanoutParts,
    /// Seconds the cross-operator rules spent in the parts.
    fanout_secs: f64,
    conversion_secs: f64,
}

/// Read, prepare and judge each part in turn.
pub fn scan(s: &Setup, pb: &ProgressBar) -> Result<Parts> {
    let cfg = s.cfg;
    let home_prefix = s.phones.home_prefix();
    let min_conv = cfg.rules.group_invite_conversion.min_conversions as usize;
    let mut files: Vec<FileReport> = Vec::new();
    let mut rejects = Vec::new();
    let (mut shifts, mut totals) = (Vec::new(), Vec::new());
    let mut material = Material::default();
    let mut per_operator: BTreeMap<&'static str, (f64, RuleOutput)> = BTreeMap::new();
    let (mut base, mut answered) = (Vec::new(), Vec::new());
    let mut fanout = FanoutSpill::new()?;
    let (mut fanout_secs, mut conversion_secs) = (0.0, 0.0);
    let mut rows = 0;
    let mut joins = None;
    // (rule, note, parts that gave it)
    let mut notes: Vec<(&'static str, String, u32)> = Vec::new();
    for index in 0..s.parts {
        let t = Instant::now();
        pb.set_message(format!("part {} of {}: loading CDRs", index + 1, s.parts));
        let opts = LoadOptions { partition: Some(Partition { index, of: s.parts }), ..s.load.clone() };
        let mut loaded = load::load_cdrs(s.paths, &opts, s.phones)?;
        super::scan::fail_on_unreadable(&loaded.files)?;
        if let Some(r) = s.redactor {
            let callee = r.column_by_num(&loaded.frame, "callee", "callee_num")?;
            loaded.frame.with_column(callee)?;
            for rej in &mut loaded.rejects {
                rej.raw = "[redacted]".into();
            }
        }
        let frame = std::mem::replace(&mut loaded.frame, DataFrame::empty());
        let mut dicts = std::mem::take(&mut loaded.dicts);
        let mut cdr = enrich::cdr_ip_country(frame, s.ips, Some(&mut dicts))?;
        if let Some(pending) = loaded.callers.take() {
            enrich::finish_callers(&mut cdr, pending, &mut dicts)?;
        }
        pb.set_message(format!("part {} of {}: rules", index + 1, s.parts));
        let input = AuditInput::prepare_days(cdr, dicts, s.joins.cloned(), cfg, &home_prefix, s.range)?;
        load::trace(&format!("part {index} prepared"), t);
        rows += input.cdr.height();
        if index == 0 {
            joins = input.joins.clone();
        }
        let outs: Vec<(&'static str, f64, Result<RuleOutput>)> = rules::REGISTRY
            .par_iter()
            .filter(|r| PER_OPERATOR.contains(&r.id()))
            .map(|r| {
                let t = Instant::now();
                let out = r.run(&input, cfg);
                (r.id(), t.elapsed().as_secs_f64(), out)
            })
            .collect();
        let t_x = Instant::now();
        let (b, a) = GroupInviteConversion.part(&input)?;
        conversion_secs += t_x.elapsed().as_secs_f64();
        load::trace("conversion part", t_x);
        let t_x = Instant::now();
        let keys = FanoutParts::of(&input)?;
        load::trace("fan-out part", t_x);
        fanout.push(keys)?;
        load::trace("fan-out part spilled", t_x);
        fanout_secs += t_x.elapsed().as_secs_f64();
        // the operators a finding can name: this part's per-operator findings, and those who
        // called at least `min_conversions` distinct numbers that joined a group
        let mut named: Vec<String> = Vec::new();
        for (id, secs, out) in outs {
            let out = out.with_context(|| format!("rule {id} failed"))?;
            named.extend(out.findings.iter().filter_map(|f| f.operator_id.clone()));
            let e = per_operator.entry(id).or_insert_with(|| (0.0, RuleOutput::default()));
            e.0 += secs;
            for n in &out.notes {
                match notes.iter_mut().find(|(r, have, _)| *r == id && have == n) {
                    Some(seen) => seen.2 += 1,
                    None => notes.push((id, n.clone(), 1)),
                }
            }
            merge_output(&mut e.1, out)?;
        }
        if let Some(a) = &a {
            named.extend(conversion_candidates(a, min_conv)?);
        }
        named.sort();
        named.dedup();
        let t_x = Instant::now();
        material.merge(crate::report::material(&input, &named, s.redactor.is_some())?);
        load::trace("dossier material", t_x);
        base.push(b);
        answered.extend(a);
        shifts.push(input.shifts.clone());
        let t_x = Instant::now();
        totals.push(super::scan::operator_totals(&input)?);
        load::trace("operator totals", t_x);
        merge_files(&mut files, loaded.files);
        rejects.extend(loaded.rejects);
        // dropped for real (not left to the exit as a whole scan leaves its frame): the next part
        // reuses the memory
        drop(input);
        // and what the pool threads freed handed back now, not whenever they next allocate
        let t_x = Instant::now();
        crate::memory::release_freed();
        load::trace("freed memory released", t_x);
        load::trace(&format!("part {index} done"), t);
    }
    // a file none of whose parts had a row is judged as a whole scan judges it
    for f in &mut files {
        if f.lines_in == 0 && f.error.is_none() {
            let what = if matches!(f.format, Some("parquet" | "ndjson")) {
                "no rows"
            } else {
                "no data rows (empty, or a header only)"
            };
            if s.load.allow_empty {
                f.warnings.push(format!("{}: {what}", f.path));
            } else {
                f.error = Some(format!("{}: {what}; --allow-empty accepts such files", f.path));
            }
        }
    }
    super::scan::fail_on_unreadable(&files)?;
    // A per-operator rule's note says it could judge nothing (spoofed-foreign-cli without any IP
    // country): a whole scan gives it only when no part could judge, i.e. every part gave it.
    for (id, out) in per_operator.iter_mut() {
        out.1.notes = notes.iter().filter(|(r, _, k)| r == id && *k == s.parts).map(|(_, n, _)| n.clone()).collect();
    }
    // rejected rows in input order: by file, then line
    let order: BTreeMap<&str, usize> = files.iter().enumerate().map(|(i, f)| (f.path.as_str(), i)).collect();
    rejects.sort_by_key(|r: &load::Reject| (order.get(r.file.as_str()).copied().unwrap_or(usize::MAX), r.line));
    let by_operator = |frames: Vec<DataFrame>, cols: &[&str]| -> Result<DataFrame> {
        let lfs: Vec<LazyFrame> = frames.into_iter().map(DataFrame::lazy).collect();
        Ok(concat(lfs, UnionArgs::default())?
            .sort(cols.iter().copied(), SortMultipleOptions::default().with_maintain_order(true))
            .collect()?)
    };
    let t_x = Instant::now();
    let fanout = fanout.merged()?;
    fanout_secs += t_x.elapsed().as_secs_f64();
    Ok(Parts {
        loaded: Loaded { rejects, files, ..Loaded::empty() },
        shifts: by_operator(shifts, &["operator_id", "shift_start_us"])?,
        totals: by_operator(totals, &["operator_id"])?,
        material,
        rows,
        tz: cfg.tz()?,
        home_region: cfg.input.home_region.clone(),
        per_operator,
        // frame order: operators sorted, each operator's rows as its part had them
        base: by_operator(base, &["operator_id"])?,
        answered: if answered.is_empty() { None } else { Some(by_operator(answered, &["operator_id"])?) },
        joins,
        fanout,
        fanout_secs,
        conversion_secs,
    })
}

impl Parts {
    /// Every rule's output in registry order, as [`rules::run_all`] gives for a whole frame.
    pub fn rules(&mut self, cfg: &Config) -> Result<Vec<(&'static str, f64, Result<RuleOutput>)>> {
        let mut out = Vec::new();
        for r in rules::REGISTRY {
            let id = r.id();
            if let Some((secs, o)) = self.per_operator.remove(id) {
                out.push((id, secs, Ok(o)));
            } else if id == ForeignCliFanout.id() {
                let t = Instant::now();
                let findings =
                    ForeignCliFanout.findings_of_parts(std::mem::take(&mut self.fanout), cfg, &self.home_region);
                let secs = self.fanout_secs + t.elapsed().as_secs_f64();
                out.push((id, secs, Ok(RuleOutput { findings, ..Default::default() })));
            } else if id == GroupInviteConversion.id() {
                let t = Instant::now();
                let base = std::mem::take(&mut self.base);
                let o = GroupInviteConversion.of_parts(self.joins.as_ref(), base, self.answered.take(), cfg);
                out.push((id, self.conversion_secs + t.elapsed().as_secs_f64(), o));
            } else {
                anyhow::bail!("rule {id} has no partitioned form (scan without --partitions)");
            }
        }
        Ok(out)
    }
}

/// Operators with answered calls to at least `min` distinct numbers in the join log: only they
/// can reach `min` conversions.
fn conversion_candidates(answered: &DataFrame, min: usize) -> Result<Vec<String>> {
    let per_op = answered
        .clone()
        .lazy()
        .group_by([col("operator_id")])
        .agg([col("callee_num").n_unique().alias("n")])
        .filter(col("n").gt_eq(lit(min as u32)))
        .collect()?;
    Ok(per_op.column("operator_id")?.str()?.iter().flatten().map(str::to_string).collect())
}

/// One part's rule output into the merged one: findings appended, operator metrics and tables
/// stacked (notes are counted by the caller).
fn merge_output(into: &mut RuleOutput, part: RuleOutput) -> Result<()> {
    into.findings.extend(part.findings);
    into.operator_metrics = match (into.operator_metrics.take(), part.operator_metrics) {
        (Some(mut a), Some(b)) => {
            a.vstack_mut(&b)?;
            Some(a)
        }
        (a, b) => a.or(b),
    };
    for (name, df) in part.tables {
        match into.tables.iter_mut().find(|(n, _)| *n == name) {
            Some((_, have)) => {
                have.vstack_mut(&df)?;
            }
            None => into.tables.push((name, df)),
        }
    }
    Ok(())
}

/// One part's file reports added to the totals so far (the same files, in the same order).
fn merge_files(into: &mut Vec<FileReport>, part: Vec<FileReport>) {
    if into.is_empty() {
        *into = part;
        return;
    }
    for (a, b) in into.iter_mut().zip(part) {
        a.format = a.format.or(b.format);
        a.encoding = a.encoding.or(b.encoding);
        a.lines_in += b.lines_in;
        a.rows_read += b.rows_read;
        a.rows_rejected += b.rows_rejected;
        a.duplicates += b.duplicates;
        for (k, v) in b.reject_reasons {
            *a.reject_reasons.entry(k).or_default() += v;
        }
        // RFC 3339 UTC texts of one form compare as the times do
        a.first_time = match (a.first_time.take(), b.first_time) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        a.last_time = a.last_time.take().max(b.last_time);
        for w in b.warnings {
            if !a.warnings.contains(&w) {
                a.warnings.push(w);
            }
        }
        a.error = a.error.take().or(b.error);
    }
}
