//! One scan's flow. Each operator partition is loaded, redacted, enriched and prepared
//! ([`stage`]) and handed to every day rule's [`Partials`]; the partitions' shifts, totals, file
//! reports and rejected rows are merged; the rules finish (cross-operator rules judge their merged
//! summaries); the cross-day rules read the day profiles and `--history`. A scan without
//! `--partitions` is one partition of one, through the same code: it keeps its prepared frame for
//! the dossiers instead of gathering their material partition by partition.

pub mod canonical;
pub mod history;
mod sms;
mod stage;
mod totals;

pub use totals::operators_table;

use crate::enrich::{ip::IpCountry, phone::PhoneParser};
use crate::load::{self, FileReport, LoadOptions, Loaded, Partition, Reject};
use crate::prepare::{AuditInput, PrepareOptions};
use crate::redact::Redactor;
use crate::report::{Dossier, Material};
use crate::rules::{self, DayFact, DayProfile, Finding, Partials, RuleOutput};
use crate::setup::ScanPlan;
use crate::triage;
use anyhow::{Context as _, Result};
use chrono::NaiveDate;
use chrono_tz::Tz;
use indicatif::ProgressBar;
use polars::prelude::*;
use rayon::prelude::*;
use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Instant;

/// How a partition is prepared, from the config and the rule registry.
pub fn prepare_options(cfg: &crate::config::Config, phones: &PhoneParser) -> Result<PrepareOptions> {
    Ok(PrepareOptions {
        tz: cfg.tz()?,
        shift_break_us: cfg.rules.long_shift.shift_break_minutes * 60 * 1_000_000,
        unread: rules::unread_fields(&cfg.rules),
        home_region: cfg.input.home_region.to_uppercase(),
        home_prefix: phones.home_prefix(),
        days: None,
    })
}

/// The fields the loader need not read: those no rule reads, and the E.164 text that rules and
/// reports write from the numeric key.
pub fn unread_fields(cfg: &crate::config::Config) -> Vec<&'static str> {
    let mut skip = rules::unread_fields(&cfg.rules);
    skip.push("caller_e164");
    skip
}

/// What every partition reads with.
pub(crate) struct Context<'a> {
    plan: &'a ScanPlan,
    paths: &'a [PathBuf],
    load: LoadOptions,
    /// Made on first use, after the first partition's CDRs are read: the home prefix waits for the
    /// phone metadata that `main` warms on another thread (1 M rows: 40 ms when asked for first).
    prepare: OnceCell<PrepareOptions>,
    /// The join logs (redacted) and the IP table, loaded once, after the first partition's CDRs:
    /// the loader parses caller IDs on a thread of its own meanwhile (10 M CSV rows: 0.1 s of the
    /// join log and the table's opening hidden behind it).
    joins: OnceCell<Option<Loaded>>,
    ips: OnceCell<Option<IpCountry>>,
    /// Seconds per stage, summed over the partitions (timings.json).
    times: RefCell<BTreeMap<String, f64>>,
}

impl Context<'_> {
    fn lap(&self, name: &str, t: Instant) {
        crate::diag::trace(name, t);
        let mut times = self.times.borrow_mut();
        let e = times.entry(name.to_string()).or_default();
        *e = crate::frame::round(*e + t.elapsed().as_secs_f64(), 3);
    }

    /// How partitions are prepared.
    fn prepare_options(&self) -> Result<&PrepareOptions> {
        if self.prepare.get().is_none() {
            let setup = &self.plan.setup;
            let opts = PrepareOptions { days: self.plan.days, ..prepare_options(&setup.config, &setup.phones)? };
            let _ = self.prepare.set(opts);
        }
        Ok(self.prepare.get().expect("set above"))
    }

    /// The join logs and the IP table, loaded on first use.
    fn side_inputs(&self, pb: &ProgressBar) -> Result<(Option<&Loaded>, Option<&IpCountry>)> {
        if self.joins.get().is_none() {
            let t = Instant::now();
            let mut joins = load_join_logs(self.plan, pb)?;
            if let (Some(r), Some(j)) = (&self.plan.redactor, joins.as_mut()) {
                redact_joins(r, j)?;
            }
            let _ = self.joins.set(joins);
            self.lap("load_joins", t);
        }
        if self.ips.get().is_none() {
            pb.set_message("IP countries");
            let _ = self.ips.set(self.plan.ip_country.as_deref().map(IpCountry::open).transpose()?);
        }
        Ok((self.joins.get().and_then(Option::as_ref), self.ips.get().and_then(Option::as_ref)))
    }
}

/// What a scan judged, ready for the writers.
pub struct Judged {
    /// File reports (summed over the partitions) and rejected CDR rows; no frame.
    pub loaded: Loaded,
    pub joins: Option<Loaded>,
    /// `--sms`: the SMS logs' file reports and rejected rows.
    pub sms: Option<Loaded>,
    /// Every shift, sorted by operator and start.
    pub shifts: DataFrame,
    /// Findings of every rule, in report order (severity, score, rule, operator, window, subject).
    pub findings: Vec<Finding>,
    /// Per-operator totals and the rules' metrics, for operators.csv.
    pub totals: DataFrame,
    pub metrics: Vec<DataFrame>,
    /// The rules' extra tables (`groups`, `conversions`, `crews`, …).
    pub tables: Vec<(&'static str, DataFrame)>,
    /// The rules' files written as they are (`graph.graphml`).
    pub files: Vec<(&'static str, Vec<u8>)>,
    pub notes: Vec<String>,
    /// This run's day profiles (written to `--history`), the days they cover, the days read back.
    pub run_profiles: Vec<DayProfile>,
    pub run_days: BTreeSet<NaiveDate>,
    pub history_days: BTreeSet<NaiveDate>,
    /// Seconds per stage and per rule.
    pub stage_times: BTreeMap<String, f64>,
    pub rule_times: BTreeMap<&'static str, f64>,
    pub tz: Tz,
    /// Dossier material: a one-partition scan keeps its prepared frame, a partitioned one the
    /// material of every operator a finding can name.
    kept: Option<AuditInput>,
    material: Material,
    redacted: bool,
    /// The findings' standing, aligned with `findings`.
    pub triage: Vec<triage::Triage>,
    /// What the allowlist moved out of `findings`.
    pub suppressed: Vec<triage::Suppressed>,
    /// `--history`: findings of the previous audited day not found again.
    pub resolved: Vec<triage::Resolved>,
    /// `--history`: the days whose findings were read.
    pub findings_days_read: BTreeSet<NaiveDate>,
    /// Operator → source IPs of its calls (only when the allowlist has IP entries).
    ips: Option<BTreeMap<String, BTreeSet<String>>>,
}

/// The day rules' state over the partitions: (rule, seconds so far, partials).
type RuleStates<'a> = Vec<(&'static str, f64, Box<dyn Partials + 'a>)>;

/// Load, prepare and judge every partition of the plan's inputs (`paths`, already expanded);
/// `notes` are the run's notes so far.
pub fn run(plan: &ScanPlan, paths: &[PathBuf], pb: &ProgressBar, notes: Vec<String>) -> Result<Judged> {
    let setup = &plan.setup;
    let cfg = &setup.config;
    let cx = Context {
        plan,
        paths,
        load: LoadOptions { skip: unread_fields(cfg), coded: true, ..setup.load.clone() },
        prepare: OnceCell::new(),
        joins: OnceCell::new(),
        ips: OnceCell::new(),
        times: RefCell::new(BTreeMap::new()),
    };
    let mut states: RuleStates =
        rules::day_rules().map(|r| (r.id(), 0.0, r.partials(&cfg.rules, plan.partitions))).collect();
    let mut crews = rules::crew::Collector::default();
    let mut linked: Option<rules::crew::Linked> = None;
    let mut crew_secs = 0.0;
    let mut parts = Parts::default();
    let mut texts = sms::Texts::load(plan)?;
    for index in 0..plan.partitions {
        let of = plan.partitions;
        let (say, part) = match of {
            1 => (String::new(), None),
            _ => (format!("part {} of {of}: ", index + 1), Some(Partition { index, of })),
        };
        pb.set_message(format!("{say}loading CDRs"));
        let stage::Prepared { loaded, input, subscribers } = stage::prepare(&cx, part, pb)?;
        pb.set_message(format!("{say}rules"));
        let t = Instant::now();
        // the crew facts are gathered beside the day rules
        let (named, crew) = rayon::join(
            || judge(&mut states, &input),
            || {
                let t = Instant::now();
                let r = crews.add(&input);
                crate::diag::trace("crew facts", t);
                // a whole scan's facts are all in: its pairs are found beside the rules too
                if of == 1 {
                    linked = Some(std::mem::take(&mut crews).link(&cfg.rules));
                }
                (r, t.elapsed().as_secs_f64())
            },
        );
        let named = named?;
        crew.0.context("crew analysis failed")?;
        crew_secs += crew.1;
        if let Some(sub) = &subscribers {
            judge_subscribers(&mut states, sub)?;
        }
        cx.lap("rules", t);
        if let Some(t) = texts.as_mut() {
            t.add(&input)?;
        }
        if plan.allow.has(crate::allow::Kind::Ip) {
            parts.ips.get_or_insert_default().extend(ip_sets(&input)?);
        }
        parts.add(loaded, input, named, plan.partitions, plan.redactor.is_some())?;
    }
    let stage_times = cx.times.into_inner();
    let joins = cx.joins.into_inner().flatten();
    // the crews' pairs need only the facts: a partitioned scan finds them while the other rules
    // finish
    let ((linked, link_secs), judged) = rayon::join(
        || {
            let t = Instant::now();
            (linked.unwrap_or_else(|| crews.link(&cfg.rules)), t.elapsed().as_secs_f64())
        },
        || -> Result<Judged> {
            let mut judged = parts.merged(plan, joins, stage_times)?;
            judged.notes = with_subscriber_note(notes, judged.loaded.calls.subscriber_records);
            judged.finish_rules(states)?;
            let t = Instant::now();
            judged.cross_day(plan)?;
            judged.stage_times.insert("cross_day".into(), crate::frame::round(t.elapsed().as_secs_f64(), 3));
            Ok(judged)
        },
    );
    let mut judged = judged?;
    let t = Instant::now();
    judged.crews(linked, &cfg.rules, crew_secs + link_secs)?;
    if let Some(t) = texts {
        judged.texts(t, &cfg.rules)?;
    }
    judged.sort_findings();
    judged.stage_times.insert("crews".into(), crate::frame::round(t.elapsed().as_secs_f64(), 3));
    judged.triage(plan)?;
    Ok(judged)
}

/// The run's notes, with one on a carrier's subscriber records (`subs` of them) if any.
fn with_subscriber_note(mut notes: Vec<String>, subs: u64) -> Vec<String> {
    if subs > 0 {
        notes.push(format!(
            "{subs} record(s) of subscribers' own calls (a carrier's 话单) have no operator: {} judge them with the calling number in the operator's place; the operator rules do not",
            SUBSCRIBER_RULES.join(" and ")
        ));
    }
    notes
}

/// One partition through every day rule, in parallel; the operators whose material it must keep.
/// `DA_SERIAL_RULES=1` (profiling) runs them one at a time, so each one's seconds are its own.
fn judge(states: &mut RuleStates, input: &AuditInput) -> Result<Vec<String>> {
    let one = |(id, secs, p): &mut (&'static str, f64, Box<dyn rules::Partials + '_>)| {
        let t = Instant::now();
        let named = p.add(input).with_context(|| format!("rule {id} failed"));
        crate::diag::trace(id, t);
        *secs += t.elapsed().as_secs_f64();
        named
    };
    let named: Vec<Vec<String>> = if std::env::var_os("DA_SERIAL_RULES").is_some() {
        states.iter_mut().map(one).collect::<Result<_>>()?
    } else {
        states.par_iter_mut().map(one).collect::<Result<_>>()?
    };
    let mut named: Vec<String> = named.into_iter().flatten().collect();
    named.sort_unstable();
    named.dedup();
    Ok(named)
}

/// The day rules that need no operator: they judge a carrier's subscriber records too.
pub const SUBSCRIBER_RULES: [&str; 2] = ["foreign-cli-fanout", "group-invite-conversion"];

/// A carrier's subscriber records through the rules that need no operator. Whom they name has no
/// dossier material: the calling number is no operator.
fn judge_subscribers(states: &mut RuleStates, input: &AuditInput) -> Result<()> {
    for (id, secs, p) in states.iter_mut().filter(|(id, ..)| SUBSCRIBER_RULES.contains(id)) {
        let t = Instant::now();
        p.add(input).with_context(|| format!("rule {id} failed on subscriber records"))?;
        *secs += t.elapsed().as_secs_f64();
    }
    Ok(())
}

/// What the partitions left, so far.
#[derive(Default)]
struct Parts {
    files: Vec<FileReport>,
    calls: crate::load::legs::CallStats,
    rejects: Vec<Reject>,
    shifts: Vec<DataFrame>,
    totals: Vec<DataFrame>,
    material: Material,
    kept: Option<AuditInput>,
    /// Calls audited (after `--date` and friends).
    rows: usize,
    tz: Option<Tz>,
    ips: Option<BTreeMap<String, BTreeSet<String>>>,
}

/// Each operator's source IPs (for the allowlist's IP entries).
fn ip_sets(input: &AuditInput) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let ip = input.coded("src_ip")?;
    let mut out = BTreeMap::new();
    for (op, r) in &input.op_rows {
        let set: BTreeSet<String> =
            r.clone().filter_map(|i| ip.get(i)).filter(|s| !s.is_empty()).map(str::to_string).collect();
        out.insert(op.clone(), set);
    }
    Ok(out)
}

impl Parts {
    fn add(&mut self, loaded: Loaded, input: AuditInput, named: Vec<String>, of: u32, redacted: bool) -> Result<()> {
        self.rows += input.cdr.height();
        self.tz = Some(input.tz);
        self.shifts.push(input.shifts.clone());
        let t = Instant::now();
        self.totals.push(totals::operator_totals(&input)?);
        crate::diag::trace("operator totals", t);
        merge_files(&mut self.files, loaded.files);
        self.calls.add(loaded.calls);
        self.rejects.extend(loaded.rejects);
        if of == 1 {
            // the frame is read again for the dossiers, once the findings are known
            self.kept = Some(input);
            return Ok(());
        }
        let t = Instant::now();
        self.material.merge(crate::report::material(&input, &named, redacted)?);
        crate::diag::trace("dossier material", t);
        // dropped for real (not left to the exit): the next partition reuses the memory, and what
        // the pool threads freed is handed back now, not whenever they next allocate
        drop(input);
        crate::memory::release_freed();
        Ok(())
    }

    fn merged(mut self, plan: &ScanPlan, joins: Option<Loaded>, stage_times: BTreeMap<String, f64>) -> Result<Judged> {
        if plan.partitions > 1 {
            self.files_without_rows(plan.setup.load.allow_empty);
            // a file's share of rejected rows, judged over all its parts
            for f in &mut self.files {
                let first = self.rejects.iter().filter(|r| r.file == f.path).min_by_key(|r| r.line);
                if let Some(e) = load::mostly_rejected(f, first, plan.setup.load.max_reject_share) {
                    f.error = Some(e);
                }
            }
            fail_on_unreadable(&self.files)?;
            // rejected rows in input order: by file, then line
            let order: BTreeMap<&str, usize> =
                self.files.iter().enumerate().map(|(i, f)| (f.path.as_str(), i)).collect();
            self.rejects.sort_by_key(|r| (order.get(r.file.as_str()).copied().unwrap_or(usize::MAX), r.line));
        }
        for f in self.files.iter().chain(joins.iter().flat_map(|j| j.files.iter())) {
            for w in &f.warnings {
                crate::log::warn(w);
            }
        }
        if let Some((a, b)) = plan.days {
            let shown = if a == b { a.to_string() } else { format!("{a} .. {b}") };
            anyhow::ensure!(self.rows > 0, "no shift in the inputs starts on {shown}; nothing written");
        }
        Ok(Judged {
            loaded: Loaded { rejects: self.rejects, files: self.files, calls: self.calls, ..Loaded::empty() },
            joins,
            sms: None,
            shifts: crate::frame::concat_sorted(self.shifts, &["operator_id", "shift_start_us"])?,
            findings: Vec::new(),
            totals: crate::frame::concat_sorted(self.totals, &["operator_id"])?,
            metrics: Vec::new(),
            tables: Vec::new(),
            files: Vec::new(),
            notes: Vec::new(),
            run_profiles: Vec::new(),
            run_days: BTreeSet::new(),
            history_days: BTreeSet::new(),
            stage_times,
            rule_times: BTreeMap::new(),
            tz: self.tz.unwrap_or(plan.setup.load.tz),
            kept: self.kept,
            material: self.material,
            redacted: plan.redactor.is_some(),
            triage: Vec::new(),
            suppressed: Vec::new(),
            resolved: Vec::new(),
            findings_days_read: BTreeSet::new(),
            ips: self.ips,
        })
    }

    /// A file none of whose partitions had a row is judged as a whole scan judges it.
    fn files_without_rows(&mut self, allow_empty: bool) {
        for f in &mut self.files {
            if f.lines_in == 0 && f.error.is_none() {
                let what = if matches!(f.format, Some("parquet" | "ndjson")) {
                    "no rows"
                } else {
                    "no data rows (empty, or a header only)"
                };
                if allow_empty {
                    f.warnings.push(format!("{}: {what}", f.path));
                } else {
                    f.error = Some(format!("{}: {what}; --allow-empty accepts such files", f.path));
                }
            }
        }
    }
}

impl Judged {
    /// The allowlist, then `--history`'s standing of each finding; expired entries are warned
    /// about and noted.
    fn triage(&mut self, plan: &ScanPlan) -> Result<()> {
        let (tz, days) = (self.tz, &self.run_days);
        if let Some(last) = days.last() {
            for e in plan.allow.expired_by(*last) {
                let w = format!(
                    "allowlist {}: {} expired on {}; findings after it are reported",
                    e.source,
                    e.describe(),
                    e.expires
                );
                crate::log::warn(&w);
                self.notes.push(w);
            }
        }
        let (kept, aside) =
            triage::suppress(std::mem::take(&mut self.findings), &plan.allow, self.ips.as_ref(), tz, days);
        let all: Vec<&Finding> = kept.iter().chain(aside.iter().map(|(f, _)| f)).collect();
        let seen = match &plan.history {
            Some(h) => history::read_findings(h, days)?,
            None => Vec::new(),
        };
        let (t, resolved, read) = triage::status(&all, &seen, tz, days);
        let (t_kept, t_aside) = t.split_at(kept.len());
        // the findings keep the report order (dossiers and findings.* read them so); the summary
        // and report.html list the new ones first
        self.findings = kept;
        self.triage = t_kept.to_vec();
        self.suppressed = aside
            .into_iter()
            .zip(t_aside.iter().copied())
            .map(|((finding, entry), triage)| triage::Suppressed { finding, triage, entry })
            .collect();
        self.resolved = resolved;
        self.findings_days_read = read;
        Ok(())
    }

    /// `--history`: this run's findings (the suppressed ones marked) by audited day.
    pub fn write_history_findings(&self, root: &std::path::Path) -> Result<()> {
        let all: Vec<(&Finding, &triage::Triage, bool)> = self
            .findings
            .iter()
            .zip(&self.triage)
            .map(|(f, t)| (f, t, false))
            .chain(self.suppressed.iter().map(|s| (&s.finding, &s.triage, true)))
            .collect();
        history::write_findings(root, &all, &self.run_days)
    }

    /// Every day rule's output over the partitions, in registry order.
    fn finish_rules(&mut self, states: RuleStates) -> Result<()> {
        let t = Instant::now();
        let outs: Vec<(&'static str, f64, Result<RuleOutput>)> = states
            .into_par_iter()
            .map(|(id, secs, p)| {
                let t = Instant::now();
                let out = p.finish();
                crate::diag::trace(&format!("{id} finish"), t);
                (id, secs + t.elapsed().as_secs_f64(), out)
            })
            .collect();
        let e = self.stage_times.entry("rules".into()).or_default();
        *e = crate::frame::round(*e + t.elapsed().as_secs_f64(), 3);
        let mut facts: Vec<(String, DayFact)> = Vec::new();
        for (id, secs, out) in outs {
            facts.extend(self.absorb(id, secs, out)?);
        }
        crate::diag::trace("rules absorbed", t);
        self.run_profiles = history::from_run(&self.shifts, &self.findings, &facts)?;
        crate::diag::trace("day profiles", t);
        self.run_days = self.run_profiles.iter().map(|p| p.date).collect();
        Ok(())
    }

    /// One rule's output into the scan's: its seconds, findings, notes, metrics and tables; returns
    /// its day facts.
    fn absorb(&mut self, id: &'static str, secs: f64, out: Result<RuleOutput>) -> Result<Vec<(String, DayFact)>> {
        self.rule_times.insert(id, crate::frame::round(secs, 3));
        let out = out.with_context(|| format!("rule {id} failed"))?;
        self.findings.extend(out.findings);
        self.notes.extend(out.notes);
        self.metrics.extend(out.operator_metrics);
        self.tables.extend(out.tables);
        self.files.extend(out.files);
        Ok(out.facts)
    }

    /// `scan --sms`: sms-recruitment over the texts, the join log and the calls to texted numbers;
    /// its per-sub-account table is `sms_accounts` (not operators.csv).
    fn texts(&mut self, mut t: sms::Texts, cfg: &rules::RulesConfig) -> Result<()> {
        let t0 = Instant::now();
        let out = t.judge(self.joins.as_ref().map(|j| &j.frame), cfg, self.tz);
        let out = out.map(|mut o| {
            if let Some(m) = o.operator_metrics.take() {
                o.tables.push(("sms_accounts", m));
            }
            o
        });
        self.absorb("sms-recruitment", t0.elapsed().as_secs_f64(), out)?;
        self.sms = Some(t.loaded);
        Ok(())
    }

    /// The crew analysis over every operator, after the other rules (it reads their findings).
    fn crews(&mut self, c: rules::crew::Linked, cfg: &rules::RulesConfig, secs: f64) -> Result<()> {
        let t = Instant::now();
        let input = rules::crew::Judged {
            findings: &self.findings,
            conversions: self.table("conversions"),
            profiles: &self.run_profiles,
            tz: self.tz,
        };
        let out = rules::crew::Crew.finish(c, &input, cfg);
        self.absorb("crew", secs + t.elapsed().as_secs_f64(), out)?;
        Ok(())
    }

    /// The cross-day rules over this run's day profiles and the history's; then every finding in
    /// report order.
    fn cross_day(&mut self, plan: &ScanPlan) -> Result<()> {
        let cfg = &plan.setup.config.rules;
        let as_of = self.run_days.iter().next_back().copied();
        let mut profiles = self.run_profiles.clone();
        if let (Some(h), Some(as_of)) = (&plan.history, as_of) {
            let w = rules::cross_day_rules().map(|r| r.window_days(cfg)).max().unwrap_or(1);
            let from = as_of - chrono::Days::new(u64::from(w.saturating_sub(1)));
            let old = history::read(h, from, as_of, &self.run_days)?;
            self.history_days.extend(old.iter().map(|p| p.date));
            profiles.extend(old);
        }
        profiles.sort_by(|a, b| a.operator_id.cmp(&b.operator_id).then(a.date.cmp(&b.date)));
        if let Some(as_of) = as_of {
            let days = rules::DayHistory { profiles, as_of, history_days: self.history_days.clone(), tz: self.tz };
            let rules: Vec<&dyn rules::CrossDayRule> = rules::cross_day_rules().collect();
            let outs: Vec<(&'static str, f64, Result<RuleOutput>)> = rules
                .par_iter()
                .map(|r| {
                    let t = Instant::now();
                    let out = r.run(&days, cfg);
                    (r.id(), t.elapsed().as_secs_f64(), out)
                })
                .collect();
            for (id, secs, out) in outs {
                self.absorb(id, secs, out)?;
            }
        }
        if plan.history.is_none() {
            let ids: Vec<&str> = rules::cross_day_rules().map(|r| r.id()).collect();
            let names = match ids.split_last() {
                Some((last, [])) => last.to_string(),
                Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
                None => String::new(),
            };
            if !names.is_empty() {
                self.notes.push(format!("no --history: {names} saw only the days in these inputs"));
            }
        }
        self.sort_findings();
        Ok(())
    }

    pub(crate) fn sort_findings(&mut self) {
        let order: HashMap<&str, usize> = rules::all_ids().into_iter().enumerate().map(|(i, r)| (r, i)).collect();
        // each finding's rule rank looked up once, not twice per comparison
        let mut ranked: Vec<(usize, Finding)> =
            std::mem::take(&mut self.findings).into_iter().map(|f| (order[f.rule], f)).collect();
        ranked.sort_by(|(ra, a), (rb, b)| {
            b.severity
                .cmp(&a.severity)
                .then(b.score.total_cmp(&a.score))
                .then(ra.cmp(rb))
                .then(a.operator_id.cmp(&b.operator_id))
                .then(a.window_start.cmp(&b.window_start))
                .then(a.subject.cmp(&b.subject))
        });
        self.findings = ranked.into_iter().map(|(_, f)| f).collect();
    }

    /// Rejected CDR rows, then rejected join-log rows (rejected.csv).
    pub fn rejects(&self) -> Vec<Reject> {
        let joins = self.joins.iter().flat_map(|j| j.rejects.iter());
        let sms = self.sms.iter().flat_map(|j| j.rejects.iter());
        self.loaded.rejects.iter().chain(joins).chain(sms).cloned().collect()
    }

    /// A rule's extra table by name (`conversions` feeds the dossiers).
    pub fn table(&self, name: &str) -> Option<&DataFrame> {
        self.tables.iter().find(|(n, _)| *n == name).map(|(_, df)| df)
    }

    /// The dossier material a partitioned scan gathered (a one-partition scan reads its kept frame
    /// in [`dossiers`](Self::dossiers)).
    pub fn take_material(&mut self) -> Material {
        std::mem::take(&mut self.material)
    }

    /// The dossiers of every operator a finding names.
    pub fn dossiers(&self, material: Material, operators: &DataFrame, min_talk_h: f64) -> Result<Vec<Dossier>> {
        let conversions = self.table("conversions");
        match &self.kept {
            Some(input) => {
                crate::report::collect(input, &self.findings, operators, conversions, min_talk_h, self.redacted)
            }
            None => crate::report::assemble(
                material,
                &self.shifts,
                self.tz,
                &self.findings,
                operators,
                conversions,
                min_talk_h,
            ),
        }
    }
}

/// An input that could not be read stops the scan before anything is written (a cron job must not
/// publish an audit of half its CDRs): one line per failed file, the last as the error.
pub fn fail_on_unreadable(files: &[FileReport]) -> Result<()> {
    let errors: Vec<&str> = files.iter().filter_map(|f| f.error.as_deref()).collect();
    if let Some((last, rest)) = errors.split_last() {
        for e in rest {
            crate::log::error(e);
        }
        let more = if rest.is_empty() { String::new() } else { format!(" ({} inputs failed)", errors.len()) };
        anyhow::bail!("{last}{more}; nothing written");
    }
    Ok(())
}

/// The chat-group join logs (`--joins`), if any: an unreadable one stops the scan.
fn load_join_logs(plan: &ScanPlan, pb: &ProgressBar) -> Result<Option<Loaded>> {
    if plan.joins.is_empty() {
        return Ok(None);
    }
    pb.set_message("loading join logs");
    let jp = load::expand_inputs(&plan.joins)?;
    let j = load::load_joins(&jp, &plan.setup.load, &plan.setup.phones)?;
    fail_on_unreadable(&j.files)?;
    Ok(Some(j))
}

/// `--redact`: the join log's members as pseudonyms, its rejected lines unquoted.
fn redact_joins(r: &Redactor, j: &mut Loaded) -> Result<()> {
    let member = r.column(&j.frame, "member", "member_e164")?;
    let member_e164 = r.column(&j.frame, "member_e164", "member_e164")?;
    j.frame.with_column(member)?;
    j.frame.with_column(member_e164)?;
    for rej in &mut j.rejects {
        rej.raw = "[redacted]".into();
    }
    Ok(())
}

/// One partition's file reports added to the totals so far (the same files, in the same order).
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
