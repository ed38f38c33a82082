//! Detection rules: the contract every rule fulfils, the registry, and one file per rule.
//!
//! A rule owns its whole contract in its file: its documentation (`rules`, `explain`), its config
//! section (type, defaults, `config init` text), the optional fields it reads, the operators.csv
//! columns it adds, how it judges one partition of operators and merges the partitions' results
//! ([`DayRule::partials`]; per-operator rules take [`PerOperator`]), and the typed per-day facts it
//! hands the history ([`DayFact`]). The pipeline, the writers and the history iterate
//! [`REGISTRY`] and never name a rule.
//!
//! Adding a rule: write `src/rules/<name>.rs`, add one line to [`REGISTRY`] (and its config
//! section to [`RulesConfig`]), one fixture under `tests/data/rules/` and one line in
//! `tests/rules.rs`'s table. It then runs whole, with `--partitions` and with `--history`.

pub mod cards;
pub mod cli_rotation;
pub mod crew;
pub mod foreign_cli_fanout;
pub mod group_invite_conversion;
pub mod long_shift;
pub mod long_shift_streak;
pub mod repeat_spoofer;
pub mod shared_seat;
pub mod spoofed_foreign_cli;

pub use crate::prepare::AuditInput;
use anyhow::Result;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

/// Finding severity, ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
    /// Severity from a 0..1 score: ≥ 0.8 high, ≥ 0.6 medium, ≥ 0.4 low, else info.
    pub fn from_score(score: f64) -> Self {
        match score {
            s if s >= 0.8 => Severity::High,
            s if s >= 0.6 => Severity::Medium,
            s if s >= 0.4 => Severity::Low,
            _ => Severity::Info,
        }
    }
}

/// One finding; every rule emits this shape so reports never special-case a rule.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    /// The operator the finding is about (None for CLI-level findings such as fan-out).
    pub operator_id: Option<String>,
    /// What the finding is about besides the operator: a caller ID, a group.
    pub subject: Option<String>,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    /// 0..1; higher is stronger evidence.
    pub score: f64,
    /// One plain sentence an investigator can read aloud.
    pub summary: String,
    /// The metrics behind the finding and up to 20 call references.
    pub evidence: serde_json::Value,
    /// What the finding tells `--history` about its operator's day (typed; not written out).
    #[serde(skip)]
    pub fact: Option<DayFact>,
}

impl Finding {
    /// One findings.jsonl line: the finding as serde writes it, with `evidence` (its last field) spliced
    /// in as already rendered text.
    /// `triage`: its status and first day seen (a scan's findings; `cards` has none).
    pub fn write_jsonl(
        &self,
        out: &mut Vec<u8>,
        evidence: &str,
        triage: Option<(&str, chrono::NaiveDate)>,
    ) -> Result<()> {
        /// [`Finding`]'s fields before `evidence`, in its order
        #[derive(serde::Serialize)]
        struct Head<'a> {
            rule: &'a str,
            severity: Severity,
            operator_id: &'a Option<String>,
            subject: &'a Option<String>,
            window_start: &'a chrono::DateTime<chrono::Utc>,
            window_end: &'a chrono::DateTime<chrono::Utc>,
            score: f64,
            summary: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            status: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            first_seen: Option<chrono::NaiveDate>,
        }
        let head = Head {
            rule: self.rule,
            severity: self.severity,
            operator_id: &self.operator_id,
            subject: &self.subject,
            window_start: &self.window_start,
            window_end: &self.window_end,
            score: self.score,
            summary: &self.summary,
            status: triage.map(|t| t.0),
            first_seen: triage.map(|t| t.1),
        };
        serde_json::to_writer(&mut *out, &head)?;
        out.pop(); // the closing brace
        out.extend_from_slice(b",\"evidence\":");
        out.extend_from_slice(evidence.as_bytes());
        out.extend_from_slice(b"}\n");
        Ok(())
    }
}

/// What a rule hands the history about one operator's local day; summed into its
/// [`DayProfile`]. A finding carries one ([`Finding::fact`]: its day is the finding's, and the
/// rule counts as hit that day); other facts come in [`RuleOutput::facts`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DayFact {
    /// The local day the fact belongs to (a call after midnight belongs to the shift before it:
    /// the history moves it there).
    pub day: NaiveDate,
    /// A long shift started on this day.
    pub long_shift: bool,
    /// Calls showing spoofed foreign caller IDs.
    pub spoofed_calls: u32,
    /// Callees who joined a chat group after a call.
    pub conversions: u32,
}

impl DayFact {
    pub fn on(day: NaiveDate) -> Self {
        Self { day, long_shift: false, spoofed_calls: 0, conversions: 0 }
    }
}

/// What a rule returns besides findings.
#[derive(Default)]
pub struct RuleOutput {
    pub findings: Vec<Finding>,
    /// Per-operator metrics (`operator_id` + the columns of [`RuleDoc::metrics`]) for operators.csv.
    pub operator_metrics: Option<DataFrame>,
    /// Extra tables written as `<name>.csv` (e.g. `groups`); `_us` columns are written as local times.
    pub tables: Vec<(&'static str, DataFrame)>,
    /// Plain notes for run.json (e.g. why the rule could not judge).
    pub notes: Vec<String>,
    /// Per-day facts that are not findings: (operator, fact).
    pub facts: Vec<(String, DayFact)>,
    /// Files written as they are (`graph.graphml`): name and bytes.
    pub files: Vec<(&'static str, Vec<u8>)>,
}

/// One operators.csv column a rule adds: name, type, decimals (floats are rounded to them).
pub struct Metric {
    pub name: &'static str,
    pub dtype: DataType,
    pub places: u32,
}

/// What every rule tells users (`rules`, `explain`) and the pipeline (what it reads and adds).
pub trait RuleDoc: Send + Sync {
    /// Stable id, part of the interface (`long-shift`).
    fn id(&self) -> &'static str;
    /// One line for `rules`.
    fn summary(&self) -> &'static str;
    /// Full documentation for `explain`: what it finds, why it matters, an example.
    fn explain(&self) -> &'static str;
    /// The thresholds in force, as `key = value` text for `rules`.
    fn defaults(&self, cfg: &RulesConfig) -> String;
    /// Optional canonical fields (of [`OPTIONAL_FIELDS`]) it reads with this config; the others
    /// are not loaded.
    fn reads(&self, _cfg: &RulesConfig) -> Vec<&'static str> {
        Vec::new()
    }
    /// The operators.csv columns it adds, in order (its [`RuleOutput::operator_metrics`]).
    fn metrics(&self) -> &'static [Metric] {
        &[]
    }
    /// Its `[rules.*]` section as `config init` writes it: every key, its default, a comment.
    fn config_toml(&self) -> &'static str;
    /// Its section's own checks (a message naming the key).
    fn validate(&self, _cfg: &RulesConfig) -> Result<()> {
        Ok(())
    }
}

/// A rule over the audited calls. A scan hands it the operator partitions one after another
/// (every call of an operator lies in one partition; a scan without `--partitions` is one
/// partition of one) through the [`Partials`] it makes, then asks for the output.
pub trait DayRule: RuleDoc {
    /// What the rule keeps across the `parts` partitions of one scan.
    fn partials<'a>(&'a self, cfg: &'a RulesConfig, parts: u32) -> Box<dyn Partials + 'a>;
}

/// A rule's state over the partitions of one scan.
pub trait Partials: Send {
    /// Judge or summarise one partition; returns the operators whose dossier material this
    /// partition must keep (those a finding of the rule may name), sorted or not.
    fn add(&mut self, input: &AuditInput) -> Result<Vec<String>>;
    /// The rule's output over every partition.
    fn finish(self: Box<Self>) -> Result<RuleOutput>;
}

/// A rule that judges one operator at a time: each partition's output is its own, and the
/// outputs are appended ([`PerOperator`] does the rest).
pub trait OperatorRule: RuleDoc {
    fn run(&self, input: &AuditInput, cfg: &RulesConfig) -> Result<RuleOutput>;
}

/// [`Partials`] of an [`OperatorRule`]: findings appended, operator metrics and tables stacked; a
/// note is kept when every partition gave it (a note says the rule could judge nothing, which a
/// whole scan says only when no partition could judge).
pub struct PerOperator<'a, R: ?Sized> {
    rule: &'a R,
    cfg: &'a RulesConfig,
    parts: u32,
    out: RuleOutput,
    notes: Vec<(String, u32)>,
}

impl<'a, R: OperatorRule + ?Sized> PerOperator<'a, R> {
    pub fn boxed(rule: &'a R, cfg: &'a RulesConfig, parts: u32) -> Box<dyn Partials + 'a> {
        Box::new(Self { rule, cfg, parts, out: RuleOutput::default(), notes: Vec::new() })
    }
}

impl<R: OperatorRule + ?Sized> Partials for PerOperator<'_, R> {
    fn add(&mut self, input: &AuditInput) -> Result<Vec<String>> {
        let part = self.rule.run(input, self.cfg)?;
        let named = part.findings.iter().filter_map(|f| f.operator_id.clone()).collect();
        for n in &part.notes {
            match self.notes.iter_mut().find(|(have, _)| have == n) {
                Some(seen) => seen.1 += 1,
                None => self.notes.push((n.clone(), 1)),
            }
        }
        let into = &mut self.out;
        into.findings.extend(part.findings);
        into.facts.extend(part.facts);
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
        Ok(named)
    }

    fn finish(self: Box<Self>) -> Result<RuleOutput> {
        let mut out = self.out;
        out.notes = self.notes.into_iter().filter(|(_, k)| *k == self.parts).map(|(n, _)| n).collect();
        Ok(out)
    }
}

/// A rule over per-operator day profiles: the audited days plus earlier days from `--history`.
/// Runs after the [`DayRule`]s, whose findings and facts make the profiles.
pub trait CrossDayRule: RuleDoc {
    fn run(&self, days: &DayHistory, cfg: &RulesConfig) -> Result<RuleOutput>;
    /// How many local days, ending on the last day audited, it reads (from `--history`).
    fn window_days(&self, cfg: &RulesConfig) -> u32;
}

/// One operator's local day, as kept in `--history` (`date=YYYY-MM-DD/profiles.parquet`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DayProfile {
    pub date: chrono::NaiveDate,
    pub operator_id: String,
    /// Shifts that started on this day, their calls, answered calls and talk.
    pub shifts: u32,
    pub calls: u32,
    pub answered: u32,
    pub talk_h: f64,
    pub max_shift_talk_h: f64,
    /// A long-shift finding started on this day.
    pub long_shift: bool,
    /// Calls in this day's spoofed-foreign-cli finding (0: none).
    pub spoofed_calls: u32,
    /// Callees of this day's calls who joined a group in the window.
    pub conversions: u32,
    /// Day rules with a finding starting on this day, `;`-separated in report order.
    pub rules_hit: String,
}

impl DayProfile {
    /// A fact added to the day.
    pub fn add(&mut self, f: &DayFact) {
        self.long_shift |= f.long_shift;
        self.spoofed_calls += f.spoofed_calls;
        self.conversions += f.conversions;
    }
}

/// What cross-day rules read.
pub struct DayHistory {
    /// Sorted by operator, then date.
    pub profiles: Vec<DayProfile>,
    /// The last local day audited: windows end here.
    pub as_of: chrono::NaiveDate,
    /// Days that came from `--history` rather than this run's CDRs.
    pub history_days: std::collections::BTreeSet<chrono::NaiveDate>,
    pub tz: Tz,
}

/// A registered rule: judged per partition, across days after them, or over every operator
/// and the other rules' findings last (the crew analysis).
#[derive(Clone, Copy)]
pub enum Entry {
    Day(&'static dyn DayRule),
    CrossDay(&'static dyn CrossDayRule),
    Crew(&'static crew::Crew),
    /// Over the card ledger, the shops' sales and the SMS logs (`cards`; `sms-recruitment` also
    /// in `scan --sms`), not the calls.
    Ledger(&'static dyn cards::LedgerRule),
}

impl Entry {
    pub fn doc(self) -> &'static dyn RuleDoc {
        match self {
            Entry::Day(r) => r as &dyn RuleDoc,
            Entry::CrossDay(r) => r as &dyn RuleDoc,
            Entry::Crew(r) => r as &dyn RuleDoc,
            Entry::Ledger(r) => r as &dyn RuleDoc,
        }
    }
}

/// Every rule, in report order (day rules run first, in parallel; cross-day rules after them).
pub static REGISTRY: &[Entry] = &[
    Entry::Day(&long_shift::LongShift),
    Entry::Day(&shared_seat::SharedSeat),
    Entry::Day(&spoofed_foreign_cli::SpoofedForeignCli),
    Entry::Day(&foreign_cli_fanout::ForeignCliFanout),
    Entry::Day(&group_invite_conversion::GroupInviteConversion),
    Entry::Day(&cli_rotation::CliRotation),
    Entry::CrossDay(&long_shift_streak::LongShiftStreak),
    Entry::CrossDay(&repeat_spoofer::RepeatSpoofer),
    Entry::Crew(&crew::Crew),
    Entry::Ledger(&cards::buyback::CardBuyback),
    Entry::Ledger(&cards::fast_redemption::CardFastRedemption),
    Entry::Ledger(&cards::retail_above_face::CardRetailAboveFace),
    Entry::Ledger(&cards::sms_recruitment::SmsRecruitment),
];

/// Thresholds of the detection rules (`[rules.*]`); each section's type, defaults and `config init`
/// text live in its rule's file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    pub long_shift: long_shift::LongShiftConfig,
    pub shared_seat: shared_seat::SharedSeatConfig,
    pub spoofed_foreign_cli: spoofed_foreign_cli::SpoofConfig,
    pub foreign_cli_fanout: foreign_cli_fanout::FanoutConfig,
    pub group_invite_conversion: group_invite_conversion::ConversionConfig,
    pub cli_rotation: cli_rotation::RotationConfig,
    pub long_shift_streak: StreakConfig,
    pub repeat_spoofer: StreakConfig,
    pub crew: crew::CrewConfig,
    pub card_buyback_below_market: cards::buyback::BuybackConfig,
    pub card_fast_redemption: cards::fast_redemption::FastConfig,
    pub card_retail_above_face: cards::retail_above_face::RetailConfig,
    pub sms_recruitment: cards::sms_recruitment::SmsConfig,
}

impl Default for RulesConfig {
    fn default() -> Self {
        Self {
            long_shift: Default::default(),
            shared_seat: Default::default(),
            spoofed_foreign_cli: Default::default(),
            foreign_cli_fanout: Default::default(),
            group_invite_conversion: Default::default(),
            cli_rotation: Default::default(),
            long_shift_streak: long_shift_streak::DEFAULT,
            repeat_spoofer: repeat_spoofer::DEFAULT,
            crew: Default::default(),
            card_buyback_below_market: Default::default(),
            card_fast_redemption: Default::default(),
            card_retail_above_face: Default::default(),
            sms_recruitment: Default::default(),
        }
    }
}

impl RulesConfig {
    /// Every rule's checks of its section.
    pub fn validate(&self) -> Result<()> {
        docs().try_for_each(|r| r.validate(self))
    }

    /// The `config init` text of every rule's section, in report order.
    pub fn toml() -> String {
        docs().map(|r| r.config_toml()).collect()
    }
}

/// Cross-day rules (`long_shift_streak`, `repeat_spoofer`): a day counts when the day rule flagged
/// the operator on it; `min_days` such days within the last `window_days` local days (ending on the
/// last day audited) make a finding. Earlier days come from `--history`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StreakConfig {
    pub min_days: u32,
    pub window_days: u32,
}

impl StreakConfig {
    pub(crate) fn validate(&self, name: &str) -> Result<()> {
        anyhow::ensure!(
            self.min_days >= 1 && self.min_days <= self.window_days && self.window_days <= 366,
            "rules.{name}: need 1 <= min_days <= window_days <= 366 (got {} and {})",
            self.min_days,
            self.window_days
        );
        Ok(())
    }
}

/// Canonical CDR fields that only some rules read, with some configs; a field none reads is not
/// loaded (nor carried through preparation).
pub const OPTIONAL_FIELDS: [&str; 4] = ["cli_group", "campaign", "trunk", "monitored"];

/// The [`OPTIONAL_FIELDS`] no registered rule reads with this config.
pub fn unread_fields(cfg: &RulesConfig) -> Vec<&'static str> {
    let read: Vec<&str> = REGISTRY.iter().flat_map(|e| e.doc().reads(cfg)).collect();
    OPTIONAL_FIELDS.into_iter().filter(|f| !read.contains(f)).collect()
}

/// Every rule's documentation, in report order.
pub fn docs() -> impl Iterator<Item = &'static dyn RuleDoc> {
    REGISTRY.iter().map(|e| e.doc())
}

/// The day rules, in report order.
pub fn day_rules() -> impl Iterator<Item = &'static dyn DayRule> {
    REGISTRY.iter().filter_map(|e| match e {
        Entry::Day(r) => Some(*r),
        _ => None,
    })
}

/// The cross-day rules, in report order.
pub fn cross_day_rules() -> impl Iterator<Item = &'static dyn CrossDayRule> {
    REGISTRY.iter().filter_map(|e| match e {
        Entry::CrossDay(r) => Some(*r),
        _ => None,
    })
}

/// The ledger rules (`cards`), in report order.
pub fn ledger_rules() -> impl Iterator<Item = &'static dyn cards::LedgerRule> {
    REGISTRY.iter().filter_map(|e| match e {
        Entry::Ledger(r) => Some(*r),
        _ => None,
    })
}

/// The ids a scan reports: the rules over calls, and `sms-recruitment` when it had SMS logs.
pub fn scan_ids(with_sms: bool) -> Vec<&'static str> {
    REGISTRY
        .iter()
        .filter(|e| match e {
            Entry::Ledger(r) => with_sms && r.id() == "sms-recruitment",
            _ => true,
        })
        .map(|e| e.doc().id())
        .collect()
}

/// Every rule id, in report order.
pub fn all_ids() -> Vec<&'static str> {
    docs().map(|r| r.id()).collect()
}

/// The operators.csv columns the rules add, in registry order.
pub fn metrics() -> impl Iterator<Item = &'static Metric> {
    // the ledger rules' metrics key their parties' tables (suppliers.csv, …), not operators.csv
    REGISTRY.iter().filter(|e| !matches!(e, Entry::Ledger(_))).flat_map(|e| e.doc().metrics().iter())
}

pub fn find_doc(id: &str) -> Option<&'static dyn RuleDoc> {
    docs().find(|r| r.id() == id)
}

pub fn find_day(id: &str) -> Option<&'static dyn DayRule> {
    day_rules().find(|r| r.id() == id)
}

pub fn find_cross_day(id: &str) -> Option<&'static dyn CrossDayRule> {
    cross_day_rules().find(|r| r.id() == id)
}

/// A cross-day finding over `hits` (oldest first): score 0.7 at `min_days`, +0.1 per extra day (at
/// most 1.0); the window runs from the first hit day to the end of `days.as_of`.
pub fn streak_finding(
    rule: &'static str,
    op: &str,
    hits: &[&DayProfile],
    min_days: u32,
    days: &DayHistory,
    summary: String,
    evidence: serde_json::Value,
) -> Finding {
    let n = hits.len() as u32;
    let score = crate::frame::round((0.7 + 0.1 * f64::from(n.saturating_sub(min_days))).min(1.0), 2);
    Finding {
        rule,
        severity: Severity::from_score(score),
        operator_id: Some(op.to_string()),
        subject: None,
        window_start: crate::frame::day_start(hits[0].date, days.tz),
        window_end: crate::frame::day_start(days.as_of + chrono::Days::new(1), days.tz),
        score,
        summary,
        evidence,
        fact: None,
    }
}

/// Operators with at least `min_days` days satisfying `hit` among the `window_days` local days
/// ending on `days.as_of`; each with its hit days (oldest first) and how many days of the window
/// had any record of the operator.
pub fn streaks(
    days: &DayHistory,
    window_days: u32,
    min_days: u32,
    hit: impl Fn(&DayProfile) -> bool,
) -> Vec<(&str, Vec<&DayProfile>, usize)> {
    let first = days.as_of - chrono::Days::new(u64::from(window_days.saturating_sub(1)));
    let mut out = Vec::new();
    for chunk in days.profiles.chunk_by(|a, b| a.operator_id == b.operator_id) {
        let in_window: Vec<&DayProfile> = chunk.iter().filter(|p| p.date >= first && p.date <= days.as_of).collect();
        let hits: Vec<&DayProfile> = in_window.iter().copied().filter(|p| hit(p)).collect();
        if hits.len() >= min_days as usize {
            out.push((chunk[0].operator_id.as_str(), hits, in_window.len()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_line_is_the_finding_as_serde_writes_it() {
        let t = |s: i64| chrono::DateTime::from_timestamp(s, 0).unwrap();
        for (op, subject) in [(Some("op \"1\""), None), (None, Some("+447700900123"))] {
            let f = Finding {
                rule: "foreign-cli-fanout",
                severity: Severity::Medium,
                operator_id: op.map(str::to_string),
                subject: subject.map(str::to_string),
                window_start: t(1_767_225_600),
                window_end: t(1_767_229_201),
                score: 0.7,
                summary: "Caller \u{4e2d} reached 143 callees, \"quoted\".".into(),
                evidence: serde_json::json!({"day": "2026-03-02", "operators": ["a", "b"], "n": 143, "x": null}),
                fact: None,
            };
            let mut line = Vec::new();
            f.write_jsonl(&mut line, &f.evidence.to_string(), None).unwrap();
            let want = serde_json::to_string(&f).unwrap() + "\n";
            assert_eq!(String::from_utf8(line).unwrap(), want);
        }
    }

    #[test]
    fn unread_fields_follow_the_rules_that_read_them() {
        let mut cfg = RulesConfig::default();
        // the crew analysis reads campaigns and monitoring
        assert_eq!(unread_fields(&cfg), ["cli_group", "trunk"]);
        cfg.spoofed_foreign_cli.domestic_trunks = vec!["gw-sh".into()];
        assert_eq!(unread_fields(&cfg), ["cli_group"]);
    }

    #[test]
    fn registry_ids_are_unique_and_metrics_named_once() {
        let ids = all_ids();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len());
        let names: Vec<&str> = metrics().map(|m| m.name).collect();
        let mut uniq = names.clone();
        uniq.sort_unstable();
        uniq.dedup();
        assert_eq!(uniq.len(), names.len(), "{names:?}");
    }
}
