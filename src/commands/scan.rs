//! `scan`: plan → locks and staging → [`pipeline::run`] → writers → publish → summary.

use crate::cli::ScanArgs;
use crate::exit_codes::Exit;
use crate::lock::DirLock;
use crate::outputs::manifest::{self, InputFile};
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
    // the inputs are hashed for the manifest while they are read
    let mut files: Vec<(&'static str, PathBuf)> = paths.iter().map(|p| ("cdr", p.clone())).collect();
    files.extend(manifest::files_by_role(
        &[("joins", &plan.joins), ("sms", &plan.sms)],
        &[("ip-country", plan.ip_country.as_ref()), ("config", plan.setup.config_path.as_ref())],
    ));
    files.extend(plan.allow_files.iter().map(|p| ("allowlist", p.clone())));
    let hashing = manifest::Hashing::start(files);
    let memory_note = memory_check(plan, &paths)?;
    crate::diag::test_pause("listed");
    let mut judged = pipeline::run(plan, &paths, &pb, memory_note.into_iter().collect())?;

    pb.set_message("writing outputs");
    let t = Instant::now();
    let (operators, alerts, inputs) = write_outputs(plan, &mut judged, staging.dir(), hashing)?;
    let out = staging.dir();
    findings::write_suppressed(out, &judged.suppressed, plan.excel)?;
    if plan.history.is_some() {
        findings::write_resolved(out, &judged.resolved, plan.excel)?;
    }
    lap(&mut judged.stage_times, "write", t);
    let over = plan.fail_on.map(|s| judged.findings.iter().filter(|f| f.severity >= s).count()).unwrap_or(0);
    let exit = if over > 0 { Exit::Findings } else { Exit::Ok };
    write_json(&out.join("run.json"), &run_json(plan, &judged, &operators, exit, alerts))?;
    if let Some(hs) = &history_staging {
        pipeline::history::write(hs.dir(), &judged.run_profiles, &judged.run_days)?;
        judged.write_history_findings(hs.dir())?;
    }
    lap(&mut judged.stage_times, "total", t_all);
    let timings = json!({
        "started_at": started_at,
        "seconds": { "stages": judged.stage_times, "rules": judged.rule_times },
    });
    write_json(&staging.dir().join("timings.json"), &timings)?;
    let t = Instant::now();
    let sha = manifest::write(staging.dir(), manifest::head("scan", &plan.setup.config, inputs)?)?;
    crate::diag::trace("manifest (outputs hashed)", t);
    crate::log::info(&format!("scan manifest: {} sha256 {sha}", plan.out.join(manifest::FILE).display()));
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
            &outputs::summary::Triaged {
                triage: &judged.triage,
                suppressed: judged.suppressed.len(),
                resolved: plan.history.as_ref().map(|_| judged.resolved.len()),
            },
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
/// Also alerts.jsonl (with findings.*; returns how many) and the inputs' records for the manifest:
/// their hashes are waited for only when report.html and the dossiers need them.
fn write_outputs(
    plan: &ScanPlan,
    judged: &mut Judged,
    out: &Path,
    hashing: manifest::Hashing,
) -> Result<(DataFrame, usize, Vec<InputFile>)> {
    let cfg = &plan.setup.config.rules;
    let min_talk_s = (cfg.long_shift.min_talk_hours * 3600.0).round() as i64;
    let material = judged.take_material();
    let judged = &*judged;
    let tz = judged.tz;
    let alerts_at = plan.fail_on.unwrap_or(crate::rules::Severity::Info);
    std::thread::scope(|sc| -> Result<(DataFrame, usize, Vec<InputFile>)> {
        let written = sc.spawn(|| {
            findings::write_findings(out, &judged.findings, Some(&judged.triage), Some(alerts_at), plan.excel)
        });
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
        // the inputs' hashes: as late as possible (their thread runs when a core is idle)
        let t_h = Instant::now();
        let inputs = evidence_inputs(plan, judged, hashing)?;
        crate::diag::trace("hash wait", t_h);
        name_sources(&mut dossiers, judged, &inputs);
        let report = report_of(plan, judged, &operators, dossiers, crews, &inputs)?;
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
        let alerts = written.join().map_err(|_| anyhow::anyhow!("writing findings failed (thread panicked)"))??;
        tables_written.join().map_err(|_| anyhow::anyhow!("writing tables failed (thread panicked)"))??;
        Ok((operators, alerts, inputs))
    })
}

/// dossiers.json and report.html's document.
fn report_of(
    plan: &ScanPlan,
    judged: &Judged,
    operators: &DataFrame,
    dossiers: Vec<crate::report::Dossier>,
    crews: Vec<crate::report::crews::CrewPage>,
    inputs: &[InputFile],
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
                sha256: sha_of(inputs, &f.path),
            })
            .collect(),
        evidence: inputs
            .iter()
            .map(|i| crate::report::EvidenceLine {
                role: i.role.clone(),
                path: i.path.clone(),
                size: i.size,
                sha256: i.sha256.clone(),
                rows: i.rows,
            })
            .collect(),
        triage: Some(triage_view(plan, judged)),
        config_sha256: manifest::config_sha256(&plan.setup.config)?,
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
fn run_json(plan: &ScanPlan, judged: &Judged, operators: &DataFrame, exit: Exit, alerts: usize) -> serde_json::Value {
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
        "triage": triage_json(plan, judged, alerts),
        "fail_on": plan.fail_on.map(Severity::name),
        "exit_code": exit as u8,
        "notes": judged.notes,
    })
}

/// run.json's `triage`: the allowlist's suppressions (per entry), new and recurring findings,
/// resolved ones, and the alerts written.
fn triage_json(plan: &ScanPlan, judged: &Judged, alerts: usize) -> serde_json::Value {
    let mut per_entry: BTreeMap<String, usize> = BTreeMap::new();
    for s in &judged.suppressed {
        *per_entry.entry(format!("{}: {}", s.entry.source, s.entry.describe())).or_default() += 1;
    }
    let expired: Vec<String> = judged
        .run_days
        .last()
        .map(|d| plan.allow.expired_by(*d).iter().map(|e| format!("{}: {}", e.source, e.describe())).collect())
        .unwrap_or_default();
    let new = judged.triage.iter().filter(|t| t.status == crate::triage::Status::New).count();
    json!({
        "allowlist_entries": plan.allow.entries.len(),
        "allowlist_expired": expired,
        "suppressed": judged.suppressed.len(),
        "suppressed_per_entry": per_entry,
        "new": new,
        "recurring": judged.triage.len() - new,
        "resolved": plan.history.as_ref().map(|_| judged.resolved.len()),
        "history_finding_days_read": judged.findings_days_read.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        "alerts": alerts,
        "alerts_min_severity": plan.fail_on.unwrap_or(Severity::Info).name(),
    })
}

/// The hashed inputs, with the history partitions the run read and the rows the loaders counted.
fn evidence_inputs(plan: &ScanPlan, judged: &Judged, hashing: manifest::Hashing) -> Result<Vec<InputFile>> {
    let mut inputs = hashing.finish()?;
    if let Some(h) = &plan.history {
        let mut files: Vec<PathBuf> = judged
            .history_days
            .iter()
            .map(|d| h.join(format!("date={d}")).join(pipeline::history::FILE_NAME))
            .chain(
                judged
                    .findings_days_read
                    .iter()
                    .map(|d| h.join(format!("date={d}")).join(pipeline::history::FINDINGS_FILE)),
            )
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for f in files {
            inputs.push(manifest::input_file("history", &f)?);
        }
    }
    let reports: Vec<&crate::load::FileReport> = judged
        .loaded
        .files
        .iter()
        .chain(judged.joins.iter().flat_map(|j| j.files.iter()))
        .chain(judged.sms.iter().flat_map(|j| j.files.iter()))
        .collect();
    manifest::fill_rows(&mut inputs, &reports);
    Ok(inputs)
}

/// The SHA-256 of the input read as `path` (empty for a file the manifest does not record).
fn sha_of(inputs: &[InputFile], path: &str) -> String {
    inputs.iter().find(|i| i.path == path).map(|i| i.sha256.clone()).unwrap_or_default()
}

/// Each dossier's sources: the inputs its operator's rows were read from, with their SHA-256.
fn name_sources(dossiers: &mut [crate::report::Dossier], judged: &Judged, inputs: &[InputFile]) {
    for d in dossiers {
        for s in &mut d.sources {
            if let Some(f) = judged.loaded.files.get(s.file as usize) {
                s.path = f.path.clone();
                s.sha256 = sha_of(inputs, &f.path);
            }
        }
    }
}

/// report.html's list of new findings and the counts of the others.
fn triage_view(plan: &ScanPlan, judged: &Judged) -> crate::report::TriageView {
    use crate::triage::Status;
    let new: Vec<(&crate::rules::Finding, &crate::triage::Triage)> =
        judged.findings.iter().zip(&judged.triage).filter(|(_, t)| t.status == Status::New).collect();
    crate::report::TriageView {
        new: new
            .iter()
            .take(crate::report::MAX_TRIAGE_LINES)
            .map(|(f, t)| crate::report::TriageLine {
                severity: f.severity.name().to_string(),
                rule: f.rule.to_string(),
                operator_id: f.operator_id.clone().unwrap_or_default(),
                subject: f.subject.clone().unwrap_or_default(),
                first_seen: t.first_seen.to_string(),
                summary: f.summary.clone(),
            })
            .collect(),
        new_total: new.len(),
        recurring: judged.findings.len() - new.len(),
        suppressed: judged.suppressed.len(),
        resolved: plan.history.as_ref().map(|_| judged.resolved.len()),
    }
}
