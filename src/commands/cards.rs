//! `cards`: the order-brushing chain of the second seed. Card ledgers, shops' sales logs and SMS
//! send logs → load (rejects kept) → card ids pseudonymised → the ledger rules in parallel →
//! findings, party tables, flagged rows, dossiers → one atomic publish (docs/cards.md).

use crate::exit_codes::Exit;
use crate::load::{self, Loaded, Reject, ledger};
use crate::lock::DirLock;
use crate::outputs::{Staging, findings, tables, write_json, write_rejects};
use crate::redact::CardRefs;
use crate::rules::cards::LedgerInput;
use crate::rules::{self, Finding, RuleOutput};
use crate::setup::CardsPlan;
use anyhow::{Context, Result};
use polars::prelude::*;
use rayon::prelude::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The party tables: the key column a rule's metrics are keyed by, and the file they go to.
const PARTIES: [(&str, &str, &str); 3] = [
    ("supplier", "suppliers", "supplier"),
    ("shop", "shops", "shop"),
    ("sub_account", "sms_accounts", "sms sub-account"),
];

pub fn run(args: &crate::cli::CardsArgs) -> Result<Exit> {
    let plan = CardsPlan::resolve(args)?;
    cards(&plan).map_err(|e| {
        let msg = format!("{e:#}");
        if msg.contains("nothing written") || e.downcast_ref::<crate::lock::Locked>().is_some() {
            e
        } else {
            anyhow::anyhow!("{msg}; nothing published, earlier outputs kept")
        }
    })
}

/// What was read: each table, or None when not given.
struct Inputs {
    cards: Option<Loaded>,
    sales: Option<Loaded>,
    sms: Option<Loaded>,
    joins: Option<Loaded>,
}

impl Inputs {
    fn all(&self) -> impl Iterator<Item = (&'static str, &Loaded)> {
        [("ledger", &self.cards), ("sales", &self.sales), ("sms", &self.sms), ("joins", &self.joins)]
            .into_iter()
            .filter_map(|(k, l)| l.as_ref().map(|l| (k, l)))
    }
}

fn read(paths: &[PathBuf], plan: &CardsPlan, target: Option<&'static load::format::Target>) -> Result<Option<Loaded>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let p = load::expand_inputs(paths)?;
    let (opts, phones) = (&plan.setup.load, &plan.setup.phones);
    let l = match target {
        Some(t) => load::load_table(&p, opts, t, phones)?,
        None => load::load_joins(&p, opts, phones)?,
    };
    crate::pipeline::fail_on_unreadable(&l.files)?;
    Ok(Some(l))
}

fn load_inputs(plan: &CardsPlan) -> Result<Inputs> {
    let inputs = Inputs {
        cards: read(&plan.ledgers, plan, Some(&ledger::CARDS))?,
        sales: read(&plan.sales, plan, Some(&ledger::SALES))?,
        sms: read(&plan.sms, plan, Some(&ledger::SMS))?,
        joins: read(&plan.joins, plan, None)?,
    };
    let rejects: Vec<&Reject> = inputs.all().flat_map(|(_, l)| l.rejects.iter()).collect();
    if plan.setup.strict
        && let Some(first) = rejects.first()
    {
        let all: Vec<Reject> = rejects.iter().map(|r| (*r).clone()).collect();
        anyhow::bail!("{}; nothing written", load::strict_message(&all, first));
    }
    Ok(inputs)
}

/// A rejected card or sale row quoted without its card number or PIN: every run of 8 or more
/// letters and digits holding 6 or more digits is masked (a timestamp's parts are shorter).
pub fn mask_secrets(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().count() >= 8 && run.chars().filter(char::is_ascii_digit).count() >= 6 {
            out.push_str("[masked]");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for ch in raw.chars() {
        if ch.is_ascii_alphanumeric() {
            run.push(ch);
        } else {
            flush(&mut run, &mut out);
            out.push(ch);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// The tables the rules read: card ids pseudonymised, dwell computed, numbers redacted.
fn ledger_input(plan: &CardsPlan, inputs: &Inputs) -> Result<LedgerInput> {
    let refs = CardRefs::new(plan.card_key.as_deref());
    let red = plan.redactor.as_ref();
    let frame = |l: &Option<Loaded>| l.as_ref().map(|l| l.frame.drop_many(["source_file", "__file", "source_line"]));
    let mut cards = frame(&inputs.cards);
    if let Some(df) = cards.as_mut() {
        refs.replace(df)?;
        let dwell = ((col("redeemed_at").dt().timestamp(TimeUnit::Microseconds)
            - col("acquired_at").dt().timestamp(TimeUnit::Microseconds))
            / lit(1_000_000i64))
        .alias("dwell_s");
        *df = df.clone().lazy().with_column(dwell).collect()?;
    }
    let mut sales = frame(&inputs.sales);
    if let Some(df) = sales.as_mut() {
        refs.replace(df)?;
        if let Some(r) = red {
            let b = df.column("buyer")?.str()?.apply(|v| v.map(|v| r.pseudonym(v).into()));
            df.with_column(b.into_column())?;
        }
    }
    let sms = inputs.sms.as_ref().map(|l| crate::redact::sms_for_rules(&l.frame, red)).transpose()?;
    let mut joins = frame(&inputs.joins);
    if let (Some(df), Some(r)) = (joins.as_mut(), red) {
        let c = r.column(df, "member", "member_e164")?;
        df.with_column(c)?;
    }
    Ok(LedgerInput { cards, sales, sms, joins, called: None, tz: plan.setup.config.tz()? })
}

pub fn cards(plan: &CardsPlan) -> Result<Exit> {
    let t_all = Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (_lock, stale) = DirLock::acquire(&plan.out)?;
    stale.iter().for_each(|w| crate::log::warn(w));
    let staging = Staging::new(&plan.out)?;
    let hashing = crate::outputs::manifest::Hashing::start(crate::outputs::manifest::files_by_role(
        &[("ledger", &plan.ledgers), ("sales", &plan.sales), ("sms", &plan.sms), ("joins", &plan.joins)],
        &[("config", plan.setup.config_path.as_ref())],
    ));
    let inputs = load_inputs(plan)?;
    let t_load = t_all.elapsed().as_secs_f64();
    let input = ledger_input(plan, &inputs)?;
    let cfg = &plan.setup.config.rules;
    let t = Instant::now();
    let outs: Vec<(&'static str, f64, Result<RuleOutput>)> = rules::ledger_rules()
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|r| {
            let t = Instant::now();
            let o = r.run(&input, cfg).with_context(|| format!("rule {} failed", r.id()));
            (r.id(), t.elapsed().as_secs_f64(), o)
        })
        .collect();
    let t_rules = t.elapsed().as_secs_f64();
    let mut judged = Judged::default();
    for (id, secs, o) in outs {
        judged.add(id, secs, o?)?;
    }
    judged.findings.sort_by(|a, b| {
        (b.severity, b.score, a.rule, &a.subject)
            .partial_cmp(&(a.severity, a.score, b.rule, &b.subject))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let out = staging.dir();
    let t = Instant::now();
    let parties = judged.write(out, plan, &input)?;
    let rejects: Vec<Reject> = inputs
        .all()
        .flat_map(|(k, l)| l.rejects.iter().map(move |r| (k, r)))
        .map(|(k, r)| {
            let raw = match (plan.redactor.is_some(), k) {
                (true, _) => String::new(),
                (false, "ledger" | "sales") => mask_secrets(&r.raw),
                _ => r.raw.clone(),
            };
            Reject { raw, ..r.clone() }
        })
        .collect();
    write_rejects(&out.join("rejected.csv"), &rejects, plan.excel)?;
    let over = plan.fail_on.map(|s| judged.findings.iter().filter(|f| f.severity >= s).count()).unwrap_or(0);
    let exit = if over > 0 { Exit::Findings } else { Exit::Ok };
    let seconds = json!({"load": t_load, "rules": t_rules, "write": t.elapsed().as_secs_f64(), "total": t_all.elapsed().as_secs_f64(), "per_rule": judged.times});
    write_json(&out.join("run.json"), &run_json(plan, &inputs, &judged, &parties, exit, &started_at, seconds))?;
    let mut hashed = hashing.finish()?;
    let reports: Vec<&crate::load::FileReport> = inputs.all().flat_map(|(_, l)| l.files.iter()).collect();
    crate::outputs::manifest::fill_rows(&mut hashed, &reports);
    let head = crate::outputs::manifest::head("cards", &plan.setup.config, hashed)?;
    crate::outputs::manifest::write(out, head)?;
    staging.publish()?;
    if !plan.quiet {
        let stdout = std::io::stdout();
        let mut o = stdout.lock();
        summary(&mut o, &inputs, &judged, &plan.out)?;
        o.flush()?;
    }
    Ok(exit)
}

/// The rules' outputs gathered.
#[derive(Default)]
struct Judged {
    findings: Vec<Finding>,
    /// Per party kind (`supplier`, …): the metrics of each rule, joined on the key.
    metrics: BTreeMap<&'static str, DataFrame>,
    tables: Vec<(&'static str, DataFrame)>,
    notes: Vec<String>,
    times: BTreeMap<&'static str, f64>,
}

impl Judged {
    fn add(&mut self, id: &'static str, secs: f64, o: RuleOutput) -> Result<()> {
        self.times.insert(id, crate::frame::round(secs, 3));
        self.findings.extend(o.findings);
        self.notes.extend(o.notes);
        if let Some(m) = o.operator_metrics {
            let key = PARTIES
                .iter()
                .find(|(k, ..)| m.get_column_index(k).is_some())
                .map(|p| p.0)
                .context("metrics without a party key")?;
            let merged = match self.metrics.remove(key) {
                None => m,
                Some(have) => {
                    let extra: Vec<Expr> = m
                        .get_column_names()
                        .iter()
                        .filter(|n| have.column(n.as_str()).is_err())
                        .map(|n| col(n.as_str()))
                        .collect();
                    let right = m.lazy().select(std::iter::once(col(key)).chain(extra).collect::<Vec<_>>());
                    have.lazy()
                        .join(
                            right,
                            [col(key)],
                            [col(key)],
                            JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns),
                        )
                        .sort([key], Default::default())
                        .collect()?
                }
            };
            self.metrics.insert(key, merged);
        }
        for (name, df) in o.tables {
            match self.tables.iter_mut().find(|(n, _)| *n == name) {
                Some((_, have)) => {
                    have.vstack_mut(&df)?;
                }
                None => self.tables.push((name, df)),
            }
        }
        Ok(())
    }

    /// Every output but rejected.csv and run.json; returns the dossiers' party count by kind.
    fn write(&mut self, out: &Path, plan: &CardsPlan, input: &LedgerInput) -> Result<BTreeMap<&'static str, usize>> {
        let tz = input.tz;
        findings::write_findings(out, &self.findings, None, None, plan.excel)?;
        let mut parties = Vec::new();
        for (key, file, kind) in PARTIES {
            let Some(m) = self.metrics.get(key) else { continue };
            let rules_hit = self.rules_of(key, m)?;
            let mut m = m.hstack(&[rules_hit])?;
            tables::write_local_table(out, file, &mut m, tz, plan.excel)?;
            parties.extend(crate::report::parties::dossiers(kind, key, &m, &self.findings, &self.tables, tz)?);
        }
        for (name, df) in &mut self.tables {
            tables::write_local_table(out, name, df, tz, plan.excel)?;
        }
        let counts = parties.iter().fold(BTreeMap::new(), |mut m, p| {
            *m.entry(PARTIES.iter().find(|x| x.2 == p.kind).map_or("?", |x| x.1)).or_insert(0) += 1;
            m
        });
        let report = crate::report::parties::PartyReport {
            kind: "cards".into(),
            tz: tz.name().into(),
            redacted: plan.redactor.is_some(),
            parties,
        };
        crate::outputs::write_atomic(&out.join("dossiers.json"), |w| Ok(serde_json::to_writer(w, &report)?))?;
        Ok(counts)
    }

    /// `rules_hit`: each party's rules with a finding, `;`-separated in report order.
    fn rules_of(&self, key: &str, m: &DataFrame) -> Result<Column> {
        let kind = PARTIES.iter().find(|p| p.0 == key).map_or("", |p| p.2);
        let ids = m.column(key)?.str()?;
        let v: StringChunked = ids
            .iter()
            .map(|id| {
                let hit = |rule: &str| {
                    self.findings
                        .iter()
                        .any(|f| f.rule == rule && f.subject.as_deref() == id && f.evidence["party"] == kind)
                };
                Some(rules::ledger_rules().map(|r| r.id()).filter(|r| hit(r)).collect::<Vec<_>>().join(";"))
            })
            .collect();
        Ok(v.with_name("rules_hit".into()).into_column())
    }
}

fn run_json(
    plan: &CardsPlan,
    inputs: &Inputs,
    judged: &Judged,
    parties: &BTreeMap<&'static str, usize>,
    exit: Exit,
    started_at: &str,
    seconds: serde_json::Value,
) -> serde_json::Value {
    let mut by_rule: BTreeMap<&str, usize> = rules::ledger_rules().map(|r| (r.id(), 0)).collect();
    for f in &judged.findings {
        *by_rule.entry(f.rule).or_default() += 1;
    }
    let files: BTreeMap<&str, &Vec<load::FileReport>> = inputs.all().map(|(k, l)| (k, &l.files)).collect();
    json!({
        "command": "cards",
        "version": env!("CARGO_PKG_VERSION"),
        "started_at": started_at,
        "tz": plan.setup.config.input.tz,
        "redacted": plan.redactor.is_some(),
        "card_ids": if plan.card_key.is_some() { "pseudonyms keyed with the redaction key" } else { "pseudonyms with the built-in key" },
        "inputs": files,
        "rows": inputs.all().map(|(k, l)| (k, json!({"read": l.rows_read(), "rejected": l.rows_rejected(), "duplicates": l.duplicates()}))).collect::<BTreeMap<_, _>>(),
        "findings": judged.findings.len(),
        "findings_by_rule": by_rule,
        "dossiers": parties,
        "notes": judged.notes,
        "seconds": seconds,
        "exit_code": exit as u8,
        "config": plan.setup.config.rules,
    })
}

fn summary(o: &mut impl Write, inputs: &Inputs, judged: &Judged, out: &Path) -> Result<()> {
    for (k, l) in inputs.all() {
        writeln!(
            o,
            "{k}: {} file(s), {} rows read, {} rejected, {} duplicates",
            l.files.len(),
            l.rows_read(),
            l.rows_rejected(),
            l.duplicates()
        )?;
    }
    writeln!(o, "findings: {}", judged.findings.len())?;
    for r in rules::ledger_rules() {
        let n = judged.findings.iter().filter(|f| f.rule == r.id()).count();
        writeln!(o, "  {:<28} {n}", r.id())?;
    }
    for f in judged.findings.iter().take(10) {
        writeln!(o, "  [{}] {}", f.severity.name(), f.summary)?;
    }
    for n in &judged.notes {
        writeln!(o, "note: {n}")?;
    }
    writeln!(o, "outputs: {}", out.display())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_and_pins_are_masked_in_rejects() {
        let raw = "6226091234567890,38271940382716,中国移动,100,速通,abc,2026-03-02 10:00:00";
        let m = mask_secrets(raw);
        assert_eq!(m, "[masked],[masked],中国移动,100,速通,abc,2026-03-02 10:00:00");
        assert_eq!(mask_secrets("CM20260302A1"), "[masked]");
        assert_eq!(mask_secrets("order-12 x"), "order-12 x");
    }

    #[test]
    fn card_refs_are_stable_and_keyed() {
        let a = CardRefs::new(None);
        assert_eq!(a.pseudonym("6226091234567890"), CardRefs::new(None).pseudonym(" 6226091234567890 "));
        assert_ne!(a.pseudonym("6226091234567890"), CardRefs::new(Some("k3y-for-cases")).pseudonym("6226091234567890"));
    }
}
