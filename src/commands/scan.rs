//! `scan`: plan → locks and staging → [`pipeline::run`] → writers → publish → summary.

use crate::cli::ScanArgs;
use crate::exit_codes::Exit;
use crate::lock::DirLock;
use crate::outputs::{self, Staging, findings, tables, write_atomic, write_json};
use crate::pipeline::{self, Judged};
use crate::rules::{self, Finding, Severity};
use crate::setup::ScanPlan;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use polars::prelude::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What a scan produced, for the exit code and for tests.
pub struct ScanResult {
    pub findings: Vec<Finding>,
    pub operators: DataFrame,
    pub exit: Exit,
}

pub fn run(args: &ScanArgs) -> Result<Exit> {
    let t = Instant::now();
    // the log opens first, so that it records a scan whose flags fail to resolve too
    if let Some(p) = &args.log_file {
        crate::log::open(p)?;
    }
    let argv: Vec<String> = std::env::args().collect();
    crate::log::info(&format!("scan started: {}", argv.join(" ")));
    let r = ScanPlan::resolve(args).and_then(|plan| scan(&plan)).map_err(|e| {
        // whatever failed, the earlier outputs were not touched: say so, once
        let msg = format!("{e:#}");
        if msg.contains("nothing written") || e.downcast_ref::<crate::lock::Locked>().is_some() {
            e
        } else {
            anyhow::anyhow!("{msg}; nothing published, earlier outputs kept")
        }
    });
    match &r {
        Ok(r) => crate::log::info(&format!("scan finished: exit {}, {} findings", r.exit as u8, r.findings.len())),
        Err(e) => crate::log::info(&format!("scan failed: {e:#}")),
    }
    // the findings (with their JSON evidence) are many small allocations: left to the exit too
    let r = r.map(|r| {
        let exit = r.exit;
        crate::diag::release(r);
        exit
    });
    crate::diag::trace("returned", t);
    r
}

fn progress(enabled: bool) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(
        None,
        if enabled { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
    );
    pb.set_style(ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}").expect("template"));
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}

/// A resolved scan: one run per output (and history) directory at a time.
pub fn scan(plan: &ScanPlan) -> Result<ScanResult> {
    let t_all = Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    // One run per directory: a second run fails here, before reading anything.
    let (_out_lock, stale) = DirLock::acquire(&plan.out)?;
    stale.iter().for_each(|w| crate::log::warn(w));
    let _history_lock = lock_history(plan)?;
    let staging = Staging::new(&plan.out)?;
    let history_staging = plan.history.as_deref().map(Staging::new).transpose()?;
    let pb = progress(plan.progress);
    pb.set_message("loading CDRs");
    let paths = crate::load::expand_inputs(&plan.inputs)?;
    let memory_note = memory_check(plan, &paths)?;
    crate::diag::test_pause("listed");
    let mut judged = pipeline::run(plan, &paths, &pb, memory_note.into_iter().collect())?;

    pb.set_message("writing outputs");
    let t = Instant::now();
    let operators = write_outputs(plan, &mut judged, staging.dir())?;
    lap(&mut judged.stage_times, "write", t);
    let over = plan.fail_on.map(|s| judged.findings.iter().filter(|f| f.severity >= s).count()).unwrap_or(0);
    let exit = if over > 0 { Exit::Findings } else { Exit::Ok };
    write_json(&staging.dir().join("run.json"), &run_json(plan, &judged, &operators, exit))?;
    if let Some(hs) = &history_staging {
        pipeline::history::write(hs.dir(), &judged.run_profiles, &judged.run_days)?;
    }
    lap(&mut judged.stage_times, "total", t_all);
    let timings = json!({
        "started_at": started_at,
        "seconds": { "stages": judged.stage_times, "rules": judged.rule_times },
    });
    write_json(&staging.dir().join("timings.json"), &timings)?;
    crate::diag::test_pause("staged");
    // Everything is written: history first (later runs depend on it), then the outputs, run.json last.
    if let Some(hs) = history_staging {
        hs.publish()?;
    }
    staging.publish()?;
    pb.finish_and_clear();
    if !plan.quiet {
        let stdout = std::io::stdout();
        let mut o = stdout.lock();
        outputs::summary::summary(
            &mut o,
            &judged.loaded,
            &judged.findings,
            &operators,
            &judged.notes,
            &plan.out,
            judged.sms.is_some(),
        )?;
        o.flush()?;
    }
    crate::diag::trace("published", t_all);
    let findings = std::mem::take(&mut judged.findings);
    crate::diag::release(judged);
    Ok(ScanResult { findings, operators, exit })
}

fn lap(times: &mut BTreeMap<String, f64>, name: &str, t: Instant) {
    crate::diag::trace(name, t);
    times.insert(name.to_string(), crate::frame::round(t.elapsed().as_secs_f64(), 3));
}

/// `--history`: created if missing, never the output directory, locked for this run.
fn lock_history(plan: &ScanPlan) -> Result<Option<DirLock>> {
    let Some(h) = &plan.history else { return Ok(None) };
    std::fs::create_dir_all(h).with_context(|| format!("{}: cannot create history directory", h.display()))?;
    let same = std::fs::canonicalize(h).ok() == std::fs::canonicalize(&plan.out).ok();
    anyhow::ensure!(!same, "--history {} must not be the --out directory", h.display());
    let (l, stale) = DirLock::acquire(h)?;
    stale.iter().for_each(|w| crate::log::warn(w));
    Ok(Some(l))
}

/// An input too large for this machine stops here, with the figures, rather than being killed by
/// the kernel part way (an input that cannot be sized is left to the loader to report).
fn memory_check(plan: &ScanPlan, paths: &[PathBuf]) -> Result<Option<String>> {
    let Some(short) = crate::memory::Check::of(paths, plan.partitions).ok().and_then(|c| c.shortfall()) else {
        return Ok(None);
    };
    anyhow::ensure!(plan.ignore_memory_check, "{short}; nothing read (--ignore-memory-check runs anyway)");
    let note = format!("memory: {short}; run anyway (--ignore-memory-check)");
    crate::log::warn(&note);
    Ok(Some(note))
}

/// Every output but run.json and timings.json, into the staging directory `out`; returns the
/// operators table. findings.* and the tables are written on their own threads while the operators
/// table and the dossiers are made (tens of MB of JSON at 10 M calls).
fn write_outputs(plan: &ScanPlan, judged: &mut Judged, out: &Path) -> Result<DataFrame> {
    let cfg = &plan.setup.config.rules;
    let min_talk_s = (cfg.long_shift.min_talk_hours * 3600.0).round() as i64;
    let material = judged.take_material();
    let judged = &*judged;
    let tz = judged.tz;
    std::thread::scope(|sc| -> Result<DataFrame> {
        let written = sc.spawn(|| findings::write_findings(out, &judged.findings, plan.excel));
        let tables_written = sc.spawn(|| -> Result<()> {
            tables::write_shifts(out, &judged.shifts, tz, min_talk_s, plan.excel)?;
            for (name, df) in &judged.tables {
                tables::write_table(out, name, df, tz, plan.excel)?;
            }
            for (name, bytes) in &judged.files {
                write_atomic(&out.join(name), |w| Ok(w.write_all(bytes)?))?;
            }
            Ok(())
        });
        let t = Instant::now();
        let mut operators = pipeline::operators_table(judged.totals.clone(), judged.metrics.clone(), &judged.findings)?;
        crate::diag::trace("operators table", t);
        tables::write_frame(&out.join("operators.csv"), &mut operators, plan.excel)?;
        let t_d = Instant::now();
        let mut dossiers = judged.dossiers(material, &operators, cfg.long_shift.min_talk_hours)?;
        let crew_tables = crate::report::crews::Tables {
            crews: judged.table("crews"),
            links: judged.table("links"),
            monitoring: judged.table("monitoring"),
            shifts: &judged.shifts,
            operators: &operators,
            findings: &judged.findings,
            tz,
            currency: cfg.crew.pay.currency.clone(),
        };
        crew_tables.attach(&mut dossiers)?;
        let crews = crew_tables.pages(&dossiers)?;
        let report = report_of(plan, judged, &operators, dossiers, crews)?;
        crate::diag::trace("dossiers", t_d);
        // the two renderings of the report side by side (the rest of the writing is done by now)
        let (json, html) = rayon::join(
            || write_atomic(&out.join("dossiers.json"), |w| Ok(serde_json::to_writer(w, &report)?)),
            || -> Result<()> {
                let html = crate::report::render::report_html(&report, report.quota_band_hours, plan.report_dossiers)?;
                write_atomic(&out.join("report.html"), |w| Ok(w.write_all(html.as_bytes())?))
            },
        );
        json?;
        html?;
        crate::diag::trace("tables and report", t);
        outputs::write_rejects(&out.join("rejected.csv"), &judged.rejects(), plan.excel)?;
        written.join().map_err(|_| anyhow::anyhow!("writing findings failed (thread panicked)"))??;
        tables_written.join().map_err(|_| anyhow::anyhow!("writing tables failed (thread panicked)"))??;
        Ok(operators)
    })
}

/// dossiers.json and report.html's document.
fn report_of(
    plan: &ScanPlan,
    judged: &Judged,
    operators: &DataFrame,
    dossiers: Vec<crate::report::Dossier>,
    crews: Vec<crate::report::crews::CrewPage>,
) -> Result<crate::report::Report> {
    let loaded = &judged.loaded;
    let findings = &judged.findings;
    let (ids, risk, hit) = (
        operators.column("operator_id")?.str()?,
        operators.column("risk_score")?.f64()?,
        operators.column("rules_hit")?.str()?,
    );
    Ok(crate::report::Report {
        version: env!("CARGO_PKG_VERSION").to_string(),
        tz: judged.tz.name().to_string(),
        inputs: loaded
            .files
            .iter()
            .map(|f| crate::report::InputLine {
                path: f.path.clone(),
                format: f.format.unwrap_or("-").to_string(),
                encoding: f.encoding.unwrap_or("-").to_string(),
                rows_read: f.rows_read,
                rows_rejected: f.rows_rejected,
                duplicates: f.duplicates,
            })
            .collect(),
        rows_read: loaded.rows_read(),
        rows_rejected: loaded.rows_rejected(),
        duplicates: loaded.duplicates(),
        findings_per_rule: rules::scan_ids(judged.sms.is_some())
            .into_iter()
            .map(|r| (r.to_string(), findings.iter().filter(|f| f.rule == r).count()))
            .collect(),
        ranking: (0..operators.height())
            .filter(|i| risk.get(*i).unwrap_or(0.0) > 0.0)
            .map(|i| crate::report::RankLine {
                operator_id: ids.get(i).unwrap_or("").to_string(),
                risk_score: risk.get(i).unwrap_or(0.0),
                rules_hit: hit.get(i).unwrap_or("").to_string(),
            })
            .collect(),
        dossiers,
        redacted: plan.redactor.is_some(),
        quota_band_hours: plan.setup.config.rules.long_shift.quota_band_hours,
        crews,
    })
}

/// run.json: only what the inputs determine (re-running a day gives the same bytes); wall-clock
/// facts go to timings.json.
fn run_json(plan: &ScanPlan, judged: &Judged, operators: &DataFrame, exit: Exit) -> serde_json::Value {
    let mut per_rule: BTreeMap<&str, usize> =
        rules::scan_ids(judged.sms.is_some()).into_iter().map(|r| (r, 0)).collect();
    for f in &judged.findings {
        *per_rule.entry(f.rule).or_default() += 1;
    }
    let (loaded, joins) = (&judged.loaded, &judged.joins);
    let days = |d: &std::collections::BTreeSet<chrono::NaiveDate>| d.iter().map(|d| d.to_string()).collect::<Vec<_>>();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "days": plan.days.map(|(a, b)| json!({
            "since": (a != chrono::NaiveDate::MIN).then(|| a.to_string()),
            "until": (b != chrono::NaiveDate::MAX).then(|| b.to_string()),
        })),
        "days_audited": days(&judged.run_days),
        "history": plan.history.as_ref().map(|h| json!({
            "dir": h.display().to_string(),
            "days_read": days(&judged.history_days),
            "days_written": days(&judged.run_days),
        })),
        "inputs": loaded.files,
        "joins": joins.as_ref().map(|j| &j.files),
        "sms": judged.sms.as_ref().map(|s| &s.files),
        "ip_country": plan.ip_country.as_ref().map(|p| p.display().to_string()),
        "rows": {
            "read": loaded.rows_read(),
            "rejected": loaded.rows_rejected(),
            "duplicates": loaded.duplicates(),
            "join_rows_read": joins.as_ref().map(|j| j.rows_read()),
            "join_rows_rejected": joins.as_ref().map(|j| j.rows_rejected()),
        },
        "calls": loaded.calls,
        "operators": operators.height(),
        "shifts": judged.shifts.height(),
        "config": plan.setup.config,
        "findings_per_rule": per_rule,
        "fail_on": plan.fail_on.map(Severity::name),
        "exit_code": exit as u8,
        "notes": judged.notes,
    })
}
