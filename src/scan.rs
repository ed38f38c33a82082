//! `scan`: load → enrich → prepare → rules (in parallel) → findings and tables, written atomically.

use crate::cli::ScanArgs;
use crate::enrich::{self, ip::IpCountry};
use crate::load;
use crate::output::{write_atomic, write_rejects};
use crate::rules::{self, AuditInput, Finding, Severity};
use crate::run::{Exit, resolve};
use anyhow::{Context, Result};
use chrono_tz::Tz;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use polars::prelude::*;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Instant;

/// What a scan produced, for the summary and for tests.
pub struct ScanResult {
    pub findings: Vec<Finding>,
    pub operators: DataFrame,
    pub exit: Exit,
}

pub fn run(args: &ScanArgs) -> Result<Exit> {
    let t = std::time::Instant::now();
    // the findings (with their JSON evidence) are many small allocations: left to the exit too
    let r = scan(args).map(|r| {
        let exit = r.exit;
        crate::run::release(r);
        exit
    });
    crate::load::trace("returned", t);
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

pub fn scan(args: &ScanArgs) -> Result<ScanResult> {
    if let Some(p) = &args.log_file {
        crate::log::open(p)?;
    }
    let argv: Vec<String> = std::env::args().collect();
    crate::log::info(&format!("scan started: {}", argv.join(" ")));
    let r = scan_locked(args).map_err(|e| {
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
    r
}

/// CDR fields that neither the rules as configured nor the outputs read: `cli_group` never, the
/// campaign and trunk only when spoofed-foreign-cli lists domestic campaigns or trunks; and the
/// derived `caller_e164` text, which rules and reports write from `caller_num`.
fn unread_fields(cfg: &crate::config::Config) -> Vec<&'static str> {
    let spoof = &cfg.rules.spoofed_foreign_cli;
    let mut skip = vec!["cli_group", "caller_e164"];
    if spoof.domestic_campaigns.is_empty() {
        skip.push("campaign");
    }
    if spoof.domestic_trunks.is_empty() {
        skip.push("trunk");
    }
    skip
}

fn scan_locked(args: &ScanArgs) -> Result<ScanResult> {
    let t_all = Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let setup = resolve(&args.load)?;
    let cfg = &setup.config;
    let range = args.day_range()?;
    // One run per directory: a second run fails here, before reading anything.
    let (_out_lock, stale) = crate::lock::DirLock::acquire(&args.out)?;
    stale.iter().for_each(|w| crate::log::warn(w));
    let history_dir = match &args.history {
        Some(h) => {
            std::fs::create_dir_all(h).with_context(|| format!("{}: cannot create history directory", h.display()))?;
            let same = std::fs::canonicalize(h).ok() == std::fs::canonicalize(&args.out).ok();
            anyhow::ensure!(!same, "--history {} must not be the --out directory", h.display());
            Some(h.as_path())
        }
        None => None,
    };
    let _history_lock = match history_dir {
        Some(h) => {
            let (l, stale) = crate::lock::DirLock::acquire(h)?;
            stale.iter().for_each(|w| crate::log::warn(w));
            Some(l)
        }
        None => None,
    };
    let staging = crate::output::Staging::new(&args.out)?;
    let history_staging = history_dir.map(crate::output::Staging::new).transpose()?;
    let tz: Tz = cfg.tz()?;
    let pb = progress(args.progress || (std::io::stderr().is_terminal() && !args.quiet));
    let mut timings: BTreeMap<String, f64> = BTreeMap::new();
    let mut lap = |name: &str, t: Instant| {
        crate::load::trace(name, t);
        timings.insert(name.to_string(), crate::rules::round(t.elapsed().as_secs_f64(), 3));
    };

    pb.set_message("loading CDRs");
    let t = Instant::now();
    let paths = load::expand_inputs(&args.input.inputs)?;
    // an input too large for this machine stops here, with the figures, rather than being killed
    // by the kernel part way (an input that cannot be sized is left to the loader to report)
    let mut memory_note = None;
    if let Some(short) = crate::memory::Check::of(&paths, args.partitions).ok().and_then(|c| c.shortfall()) {
        anyhow::ensure!(args.ignore_memory_check, "{short}; nothing read (--ignore-memory-check runs anyway)");
        let note = format!("memory: {short}; run anyway (--ignore-memory-check)");
        crate::log::warn(&note);
        memory_note = Some(note);
    }
    crate::load::test_pause("listed");
    let load_opts = load::LoadOptions { skip: unread_fields(cfg), coded: true, ..setup.load.clone() };
    anyhow::ensure!(
        args.partitions == 1 || history_dir.is_none(),
        "--partitions does not combine with --history yet; nothing read"
    );
    let (loaded, joins, redactor, mut audited, outputs, all_rejects) = if args.partitions > 1 {
        let t = Instant::now();
        let joins = load_join_logs(args, &setup, &pb)?;
        lap("load_joins", t);
        let redactor = args.redact.redactor()?;
        let mut joins = joins;
        if let (Some(r), Some(j)) = (&redactor, joins.as_mut()) {
            redact_joins(r, j)?;
        }
        let ips = args.input.ip_country.as_deref().map(IpCountry::open).transpose()?;
        let t = Instant::now();
        let mut parts = crate::parts::scan(
            &crate::parts::Setup {
                paths: &paths,
                load: &load_opts,
                phones: &setup.phones,
                cfg,
                joins: joins.as_ref().map(|j| &j.frame),
                ips: ips.as_ref(),
                redactor: redactor.as_ref(),
                range,
                parts: args.partitions,
            },
            &pb,
        )?;
        lap("parts", t);
        for f in parts.loaded.files.iter().chain(joins.iter().flat_map(|j| j.files.iter())) {
            for w in &f.warnings {
                crate::log::warn(w);
            }
        }
        let mut all_rejects = parts.loaded.rejects.clone();
        if let Some(j) = &joins {
            all_rejects.extend(j.rejects.iter().cloned());
        }
        if setup.strict && !all_rejects.is_empty() {
            anyhow::bail!("{}; nothing written", crate::load::strict_message(&all_rejects, &all_rejects[0]));
        }
        if let Some((a, b)) = range {
            let shown = if a == b { a.to_string() } else { format!("{a} .. {b}") };
            anyhow::ensure!(parts.rows > 0, "no shift in the inputs starts on {shown}; nothing written");
        }
        let t = Instant::now();
        let outputs = parts.rules(cfg)?;
        lap("rules", t);
        let loaded = std::mem::replace(&mut parts.loaded, load::Loaded::empty());
        (loaded, joins, redactor, Audited::Parts(Box::new(parts)), outputs, all_rejects)
    } else {
        let loaded = load::load_cdrs(&paths, &load_opts, &setup.phones)?;
        fail_on_unreadable(&loaded.files)?;
        lap("load_cdr", t);
        let t = Instant::now();
        let joins = load_join_logs(args, &setup, &pb)?;
        lap("load_joins", t);
        for f in loaded.files.iter().chain(joins.iter().flat_map(|j| j.files.iter())) {
            for w in &f.warnings {
                crate::log::warn(w);
            }
        }
        // --strict: rejected rows stop the run before anything is written
        let mut all_rejects = loaded.rejects.clone();
        if let Some(j) = &joins {
            all_rejects.extend(j.rejects.iter().cloned());
        }
        if setup.strict && !all_rejects.is_empty() {
            anyhow::bail!("{}; nothing written", crate::load::strict_message(&all_rejects, &all_rejects[0]));
        }
        let redactor = args.redact.redactor()?;
        let mut loaded = loaded;
        let mut joins = joins;
        if let Some(r) = &redactor {
            let f = &loaded.frame;
            let callee = r.column_by_num(f, "callee", "callee_num")?;
            loaded.frame.with_column(callee)?;
            for rej in &mut loaded.rejects {
                rej.raw = "[redacted]".into();
            }
            if let Some(j) = joins.as_mut() {
                redact_joins(r, j)?;
            }
        }
        pb.set_message("IP countries");
        let t = Instant::now();
        let ips = args.input.ip_country.as_deref().map(IpCountry::open).transpose()?;
        // the frame moves on (the file reports stay): holding two copies of every CDR doubled peak memory
        let frame = std::mem::replace(&mut loaded.frame, DataFrame::empty());
        let mut dicts = std::mem::take(&mut loaded.dicts);
        let mut cdr = enrich::cdr_ip_country(frame, ips.as_ref(), Some(&mut dicts))?;
        lap("enrich_ip", t);
        // the caller IDs were parsed on their own thread meanwhile
        let t = Instant::now();
        if let Some(pending) = loaded.callers.take() {
            enrich::finish_callers(&mut cdr, pending, &mut dicts)?;
        }
        lap("callers", t);
        pb.set_message("shifts");
        let t = Instant::now();
        let home_prefix = setup.phones.home_prefix();
        let input =
            AuditInput::prepare_days(cdr, dicts, joins.as_ref().map(|j| j.frame.clone()), cfg, &home_prefix, range)?;
        if let Some((a, b)) = range {
            let shown = if a == b { a.to_string() } else { format!("{a} .. {b}") };
            anyhow::ensure!(input.cdr.height() > 0, "no shift in the inputs starts on {shown}; nothing written");
        }
        lap("prepare", t);
        pb.set_message("rules");
        let t = Instant::now();
        let outputs = rules::run_all(&input, cfg);
        lap("rules", t);
        (loaded, joins, redactor, Audited::Whole(Box::new(input)), outputs, all_rejects)
    };
    let mut rule_times = BTreeMap::new();
    let mut findings = Vec::new();
    let mut notes: Vec<String> = memory_note.into_iter().collect();
    let mut metrics = Vec::new();
    let mut tables = Vec::new();
    for (id, secs, out) in outputs {
        rule_times.insert(id, crate::rules::round(secs, 3));
        let out = out.with_context(|| format!("rule {id} failed"))?;
        findings.extend(out.findings);
        notes.extend(out.notes);
        metrics.extend(out.operator_metrics);
        tables.extend(out.tables);
    }
    // Cross-day rules: this run's day profiles plus earlier days from --history.
    let t = Instant::now();
    let conv_table = tables.iter().find(|(n, _)| *n == "conversions").map(|(_, df)| df);
    let run_profiles = crate::history::from_run(audited.shifts(), tz, &findings, conv_table)?;
    let run_days: std::collections::BTreeSet<chrono::NaiveDate> = run_profiles.iter().map(|p| p.date).collect();
    let as_of = run_days.iter().next_back().copied();
    let mut history_days = std::collections::BTreeSet::new();
    let mut profiles = run_profiles.clone();
    if let (Some(h), Some(as_of)) = (history_dir, as_of) {
        let w = cfg.rules.long_shift_streak.window_days.max(cfg.rules.repeat_spoofer.window_days);
        let from = as_of - chrono::Days::new(u64::from(w.saturating_sub(1)));
        let old = crate::history::read(h, from, as_of, &run_days)?;
        history_days.extend(old.iter().map(|p| p.date));
        profiles.extend(old);
    }
    profiles.sort_by(|a, b| a.operator_id.cmp(&b.operator_id).then(a.date.cmp(&b.date)));
    if let Some(as_of) = as_of {
        let days = crate::rules::DayHistory { profiles, as_of, history_days: history_days.clone(), tz };
        for (id, secs, out) in rules::run_cross_day(&days, cfg) {
            rule_times.insert(id, crate::rules::round(secs, 3));
            let out = out.with_context(|| format!("rule {id} failed"))?;
            findings.extend(out.findings);
            notes.extend(out.notes);
            metrics.extend(out.operator_metrics);
        }
    }
    if history_dir.is_none() {
        notes.push("no --history: long-shift-streak and repeat-spoofer saw only the days in these inputs".into());
    }
    lap("cross_day", t);
    let order: HashMap<&str, usize> = rules::all_ids().into_iter().enumerate().map(|(i, r)| (r, i)).collect();
    // each finding's rule rank looked up once, not twice per comparison
    let mut ranked: Vec<(usize, Finding)> = findings.into_iter().map(|f| (order[f.rule], f)).collect();
    ranked.sort_by(|(ra, a), (rb, b)| {
        b.severity
            .cmp(&a.severity)
            .then(b.score.total_cmp(&a.score))
            .then(ra.cmp(rb))
            .then(a.operator_id.cmp(&b.operator_id))
            .then(a.window_start.cmp(&b.window_start))
            .then(a.subject.cmp(&b.subject))
    });
    let findings: Vec<Finding> = ranked.into_iter().map(|(_, f)| f).collect();

    pb.set_message("writing outputs");
    let t = Instant::now();
    let out = staging.dir();
    let t_ops = Instant::now();
    let material = audited.take_material();
    let operators = std::thread::scope(|sc| -> Result<DataFrame> {
        // findings.jsonl and findings.csv (tens of MB of JSON text at 10 M calls) on their own thread
        let written = sc.spawn(|| write_findings(out, &findings, args.excel));
        // shifts.csv and the conversion tables on their own thread too, beside the dossiers
        let tables_written = sc.spawn(|| -> Result<()> {
            let min_s = (cfg.rules.long_shift.min_talk_hours * 3600.0).round() as i64;
            let mut shifts = audited
                .shifts()
                .clone()
                .lazy()
                .sort(["operator_id", "shift_start_us"], SortMultipleOptions::default())
                .select([
                    col("operator_id"),
                    col("day"),
                    local_expr("shift_start_us", tz).alias("shift_start"),
                    local_expr("shift_end_us", tz).alias("shift_end"),
                    (col("span_s").cast(DataType::Float64) / lit(3600.0))
                        .round(2, RoundMode::HalfToEven)
                        .alias("span_h"),
                    col("talk_h").round(2, RoundMode::HalfToEven),
                    col("calls"),
                    col("answered"),
                    col("distinct_callees"),
                    col("occupancy").round(3, RoundMode::HalfToEven),
                    col("talk_s").gt_eq(lit(min_s)).alias("flagged"),
                ])
                .collect()?;
            write_frame(&out.join("shifts.csv"), &mut shifts, args.excel)?;
            for (name, df) in &tables {
                // times as local text: `first_join_us` → `first_join`
                let us: Vec<String> =
                    df.get_column_names().iter().filter(|n| n.ends_with("_us")).map(|n| n.to_string()).collect();
                let mut lf = df.clone().lazy();
                for n in &us {
                    lf = lf.with_column(local_expr(n, tz).alias(n.trim_end_matches("_us")));
                }
                let mut table = lf.drop(cols(us.iter().map(String::as_str).collect::<Vec<_>>())).collect()?;
                write_frame(&out.join(format!("{name}.csv")), &mut table, args.excel)?;
            }
            if !tables.iter().any(|(n, _)| *n == "conversions") {
                // keep the file set stable for cron jobs: empty tables with their headers
                write_atomic(&out.join("groups.csv"), |w| {
                    writeln!(
                        w,
                        "group_id,converted_members,feeding_operators_n,feeding_operators,first_join,last_join"
                    )?;
                    Ok(())
                })?;
                write_atomic(&out.join("conversions.csv"), |w| {
                    writeln!(w, "operator_id,group_id,member_e164,minutes_to_join,call,call_end,joined")?;
                    Ok(())
                })?;
            }
            Ok(())
        });
        let mut operators = operators_table(audited.totals()?, metrics, &findings)?;
        crate::load::trace("operators table", t_ops);
        write_frame(&out.join("operators.csv"), &mut operators, args.excel)?;
        let conversions = tables.iter().find(|(n, _)| *n == "conversions").map(|(_, df)| df.clone());
        let t_d = Instant::now();
        let dossiers = audited.dossiers(
            material,
            &findings,
            &operators,
            conversions.as_ref(),
            cfg.rules.long_shift.min_talk_hours,
            redactor.is_some(),
        )?;
        let report = crate::report::Report {
            version: env!("CARGO_PKG_VERSION").to_string(),
            tz: tz.name().to_string(),
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
            findings_per_rule: rules::all_ids()
                .into_iter()
                .map(|r| (r.to_string(), findings.iter().filter(|f| f.rule == r).count()))
                .collect(),
            ranking: {
                let (ids, risk, hit) = (
                    operators.column("operator_id")?.str()?,
                    operators.column("risk_score")?.f64()?,
                    operators.column("rules_hit")?.str()?,
                );
                (0..operators.height())
                    .filter(|i| risk.get(*i).unwrap_or(0.0) > 0.0)
                    .map(|i| crate::report::RankLine {
                        operator_id: ids.get(i).unwrap_or("").to_string(),
                        risk_score: risk.get(i).unwrap_or(0.0),
                        rules_hit: hit.get(i).unwrap_or("").to_string(),
                    })
                    .collect()
            },
            dossiers,
            redacted: redactor.is_some(),
            quota_band_hours: cfg.rules.long_shift.quota_band_hours,
        };
        crate::load::trace("dossiers", t_d);
        // the two renderings of the report side by side (the rest of the writing is done by now)
        let (json, html) = rayon::join(
            || write_atomic(&out.join("dossiers.json"), |w| Ok(serde_json::to_writer(w, &report)?)),
            || -> Result<()> {
                let html = crate::report::render::report_html(&report, report.quota_band_hours, args.report_dossiers)?;
                write_atomic(&out.join("report.html"), |w| Ok(w.write_all(html.as_bytes())?))
            },
        );
        json?;
        html?;
        crate::load::trace("tables and report", t);
        write_rejects(&out.join("rejected.csv"), &all_rejects, args.excel)?;
        written.join().map_err(|_| anyhow::anyhow!("writing findings failed (thread panicked)"))??;
        tables_written.join().map_err(|_| anyhow::anyhow!("writing tables failed (thread panicked)"))??;
        Ok(operators)
    })?;
    lap("write", t);

    // exit code
    let over = args.fail_on.map(|s| findings.iter().filter(|f| f.severity >= s).count()).unwrap_or(0);
    let exit = if args.fail_on.is_some() && over > 0 { Exit::Findings } else { Exit::Ok };
    let mut per_rule: BTreeMap<&str, usize> = rules::all_ids().into_iter().map(|r| (r, 0)).collect();
    for f in &findings {
        *per_rule.entry(f.rule).or_default() += 1;
    }
    // run.json holds only what the inputs determine (re-running a day gives the same bytes);
    // wall-clock facts go to timings.json.
    let run_json = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "days": range.map(|(a, b)| json!({
            "since": (a != chrono::NaiveDate::MIN).then(|| a.to_string()),
            "until": (b != chrono::NaiveDate::MAX).then(|| b.to_string()),
        })),
        "days_audited": run_days.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        "history": history_dir.map(|h| json!({
            "dir": h.display().to_string(),
            "days_read": history_days.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            "days_written": run_days.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        })),
        "inputs": loaded.files,
        "joins": joins.as_ref().map(|j| &j.files),
        "ip_country": args.input.ip_country.as_ref().map(|p| p.display().to_string()),
        "rows": {
            "read": loaded.rows_read(),
            "rejected": loaded.rows_rejected(),
            "duplicates": loaded.duplicates(),
            "join_rows_read": joins.as_ref().map(|j| j.rows_read()),
            "join_rows_rejected": joins.as_ref().map(|j| j.rows_rejected()),
        },
        "operators": operators.height(),
        "shifts": audited.shifts().height(),
        "config": cfg,
        "findings_per_rule": per_rule,
        "fail_on": args.fail_on.map(Severity::name),
        "exit_code": exit as u8,
        "notes": notes,
    });
    write_atomic(&out.join("run.json"), |w| {
        serde_json::to_writer_pretty(&mut *w, &run_json)?;
        writeln!(w)?;
        Ok(())
    })?;
    if let Some(hs) = &history_staging {
        crate::history::write(hs.dir(), &run_profiles, &run_days)?;
    }
    timings.insert("total".into(), crate::rules::round(t_all.elapsed().as_secs_f64(), 3));
    let timings_json = json!({
        "started_at": started_at,
        "seconds": { "stages": timings, "rules": rule_times },
    });
    write_atomic(&out.join("timings.json"), |w| {
        serde_json::to_writer_pretty(&mut *w, &timings_json)?;
        writeln!(w)?;
        Ok(())
    })?;
    crate::load::test_pause("staged");
    // Everything is written: history first (later runs depend on it), then the outputs, run.json last.
    if let Some(hs) = history_staging {
        hs.publish()?;
    }
    staging.publish()?;
    pb.finish_and_clear();
    let out = &args.out;
    if !args.quiet {
        let stdout = std::io::stdout();
        let mut o = stdout.lock();
        summary(&mut o, &loaded, &findings, &operators, &notes, out)?;
        o.flush()?;
    }
    crate::load::trace("published", t_all);
    crate::run::release((audited, tables, loaded, joins));
    Ok(ScanResult { findings, operators, exit })
}

/// The chat-group join logs (`--joins`), if any: an unreadable one stops the scan.
fn load_join_logs(args: &ScanArgs, setup: &crate::run::Setup, pb: &ProgressBar) -> Result<Option<load::Loaded>> {
    if args.input.joins.is_empty() {
        return Ok(None);
    }
    pb.set_message("loading join logs");
    let jp = load::expand_inputs(&args.input.joins)?;
    let j = load::load_joins(&jp, &setup.load, &setup.phones)?;
    fail_on_unreadable(&j.files)?;
    Ok(Some(j))
}

/// `--redact`: the join log's members as pseudonyms, its rejected lines unquoted.
fn redact_joins(r: &crate::redact::Redactor, j: &mut load::Loaded) -> Result<()> {
    let member = r.column(&j.frame, "member", "member_e164")?;
    let member_e164 = r.column(&j.frame, "member_e164", "member_e164")?;
    j.frame.with_column(member)?;
    j.frame.with_column(member_e164)?;
    for rej in &mut j.rejects {
        rej.raw = "[redacted]".into();
    }
    Ok(())
}

/// What the rules ran over: the whole prepared frame, or what the operator partitions left.
enum Audited {
    Whole(Box<AuditInput>),
    Parts(Box<crate::parts::Parts>),
}

impl Audited {
    fn shifts(&self) -> &DataFrame {
        match self {
            Audited::Whole(i) => &i.shifts,
            Audited::Parts(p) => &p.shifts,
        }
    }

    /// The dossier material the parts gathered (a whole frame's is read when the dossiers are made).
    fn take_material(&mut self) -> Option<crate::report::Material> {
        match self {
            Audited::Whole(_) => None,
            Audited::Parts(p) => Some(std::mem::take(&mut p.material)),
        }
    }

    /// Per-operator totals for operators.csv.
    fn totals(&self) -> Result<DataFrame> {
        match self {
            Audited::Whole(i) => operator_totals(i),
            Audited::Parts(p) => Ok(p.totals.clone()),
        }
    }

    fn dossiers(
        &self,
        material: Option<crate::report::Material>,
        findings: &[Finding],
        operators: &DataFrame,
        conversions: Option<&DataFrame>,
        min_talk_h: f64,
        redacted: bool,
    ) -> Result<Vec<crate::report::Dossier>> {
        match self {
            Audited::Whole(i) => crate::report::collect(i, findings, operators, conversions, min_talk_h, redacted),
            Audited::Parts(p) => crate::report::assemble(
                material.unwrap_or_default(),
                &p.shifts,
                p.tz,
                findings,
                operators,
                conversions,
                min_talk_h,
            ),
        }
    }
}

/// An input that could not be read stops the scan before anything is written (a cron job must not
/// publish an audit of half its CDRs): one line per failed file, the last as the error.
pub(crate) fn fail_on_unreadable(files: &[load::FileReport]) -> Result<()> {
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

/// A UTC-µs column as local `YYYY-MM-DD HH:MM:SS` text.
fn local_expr(name: &str, tz: Tz) -> Expr {
    col(name).map(
        move |c: Column| {
            let us = c.to_physical_repr().cast(&DataType::Int64)?;
            Ok(crate::rules::local_seconds_texts(us.i64()?, tz).into_column())
        },
        |_, f| Ok(Field::new(f.name().clone(), DataType::String)),
    )
}

/// A frame as CSV, spreadsheet-safe, optionally with a BOM.
fn write_frame(path: &Path, df: &mut DataFrame, excel: bool) -> Result<()> {
    let mut safe = crate::report::csv_safe::frame(df)?;
    write_atomic(path, |w| {
        if excel {
            w.write_all(b"\xEF\xBB\xBF")?;
        }
        CsvWriter::new(w).include_header(true).finish(&mut safe)?;
        Ok(())
    })
}

fn write_findings(out: &Path, findings: &[Finding], excel: bool) -> Result<()> {
    use crate::report::csv_safe::cell;
    use rayon::prelude::*;
    // Tens of thousands of findings are tens of MB of JSON: blocks of them are rendered to bytes in
    // parallel (a single writer thread was the longest part of writing a 10 M-row scan), then written
    // in order.
    let blocks: Vec<(Vec<u8>, Vec<u8>)> = findings
        .par_chunks(512)
        .map(|block| -> Result<(Vec<u8>, Vec<u8>)> {
            // each evidence object is rendered once, for both files (it is most of a finding's text)
            let evidence: Vec<String> = block.iter().map(|f| f.evidence.to_string()).collect();
            let mut jsonl = Vec::with_capacity(block.len() * 1024);
            for (f, ev) in block.iter().zip(&evidence) {
                f.write_jsonl(&mut jsonl, ev)?;
            }
            let mut c = csv::Writer::from_writer(Vec::with_capacity(block.len() * 1024));
            for (f, ev) in block.iter().zip(&evidence) {
                c.write_record([
                    f.rule,
                    f.severity.name(),
                    &cell(f.operator_id.as_deref().unwrap_or("")),
                    &cell(f.subject.as_deref().unwrap_or("")),
                    &f.window_start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    &f.window_end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    &format!("{:.2}", f.score),
                    &cell(&f.summary),
                    ev,
                ])?;
            }
            let csv = c.into_inner().map_err(|e| anyhow::anyhow!("findings.csv: {}", e.error()))?;
            Ok((jsonl, csv))
        })
        .collect::<Result<_>>()?;
    write_atomic(&out.join("findings.jsonl"), |w| {
        for (jsonl, _) in &blocks {
            w.write_all(jsonl)?;
        }
        Ok(())
    })?;
    write_atomic(&out.join("findings.csv"), |w| {
        if excel {
            w.write_all(b"\xEF\xBB\xBF")?;
        }
        let mut c = csv::Writer::from_writer(&mut *w);
        c.write_record([
            "rule",
            "severity",
            "operator_id",
            "subject",
            "window_start",
            "window_end",
            "score",
            "summary",
            "evidence",
        ])?;
        c.flush()?;
        drop(c);
        for (_, csv) in &blocks {
            w.write_all(csv)?;
        }
        Ok(())
    })
}

/// operators.csv columns, in order: (name, type, decimals).
const OPERATOR_COLUMNS: &[(&str, DataType, u32)] = &[
    ("operator_id", DataType::String, 0),
    ("risk_score", DataType::Float64, 3),
    ("rules_hit", DataType::String, 0),
    ("days_active", DataType::Int64, 0),
    ("calls", DataType::Int64, 0),
    ("answered_calls", DataType::Int64, 0),
    ("talk_h_total", DataType::Float64, 2),
    ("mean_daily_talk_h", DataType::Float64, 2),
    ("shifts", DataType::Int64, 0),
    ("flagged_shifts", DataType::Int64, 0),
    ("longest_shift_talk_h", DataType::Float64, 2),
    ("spoofed_calls", DataType::Int64, 0),
    ("distinct_foreign_clis", DataType::Int64, 0),
    ("answered_callees", DataType::Int64, 0),
    ("conversions", DataType::Int64, 0),
    ("conversion_rate", DataType::Float64, 4),
];

/// One row per operator: activity, shift, spoofing and conversion metrics, risk and rules hit.
/// Days active, calls, answered calls and talk hours per operator, each operator's contiguous row
/// range walked in place (a group-by over every call hashed 10 M operator ids).
pub(crate) fn operator_totals(input: &AuditInput) -> Result<DataFrame> {
    use rayon::prelude::*;
    let cdr = &input.cdr;
    let day = cdr.column("day")?.cast(&DataType::Int32)?;
    let day = day.i32()?;
    let talk = crate::rules::col_i64(cdr, "talk_s")?;
    let answered = cdr.column("answered")?.bool()?;
    // chunk tables built once (a slice of a many-chunk column per operator walked every chunk)
    use crate::rules::Chunks;
    let (day, talk, answered) = (Chunks::new(day), Chunks::new(&talk), Chunks::new(answered));
    let rows: Vec<(&str, i64, i64, i64, f64)> = input
        .op_rows
        .par_iter()
        .map(|(op, r)| {
            let (mut day, mut talk, mut answered) = (day.rows(), talk.rows(), answered.rows());
            // the rows are in start order, so a day like the one before is not looked up again
            let mut days = std::collections::BTreeSet::new();
            let mut last = None;
            let (mut answered_n, mut talk_s) = (0i64, 0i64);
            for i in r.clone() {
                if let Some(d) = day.get(i)
                    && last != Some(d)
                {
                    days.insert(d);
                    last = Some(d);
                }
                answered_n += i64::from(answered.get(i) == Some(true));
                talk_s += talk.get(i).unwrap_or(0);
            }
            (op.as_str(), days.len() as i64, r.len() as i64, answered_n, talk_s as f64 / 3600.0)
        })
        .collect();
    Ok(DataFrame::new(
        rows.len(),
        vec![
            Column::new("operator_id".into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
            Column::new("days_active".into(), rows.iter().map(|r| r.1).collect::<Vec<_>>()),
            Column::new("calls".into(), rows.iter().map(|r| r.2).collect::<Vec<_>>()),
            Column::new("answered_calls".into(), rows.iter().map(|r| r.3).collect::<Vec<_>>()),
            Column::new("talk_h_total".into(), rows.iter().map(|r| r.4).collect::<Vec<_>>()),
        ],
    )?)
}

fn operators_table(totals: DataFrame, metrics: Vec<DataFrame>, findings: &[Finding]) -> Result<DataFrame> {
    let mut lf = totals
        .lazy()
        .with_column((col("talk_h_total") / col("days_active").cast(DataType::Float64)).alias("mean_daily_talk_h"));
    for m in metrics {
        lf = lf.join(m.lazy(), [col("operator_id")], [col("operator_id")], JoinArgs::new(JoinType::Left));
    }
    // risk: noisy-OR of the best score per rule; rules hit in registry order
    let mut best: HashMap<&str, BTreeMap<&str, f64>> = HashMap::new();
    for f in findings {
        if let Some(op) = f.operator_id.as_deref() {
            let e = best.entry(op).or_default().entry(f.rule).or_insert(0.0);
            *e = e.max(f.score);
        }
    }
    let ops: Vec<&str> = best.keys().copied().collect();
    let risk: Vec<f64> =
        ops.iter().map(|o| crate::rules::round(1.0 - best[o].values().map(|s| 1.0 - s).product::<f64>(), 3)).collect();
    let hit: Vec<String> = ops
        .iter()
        .map(|o| rules::all_ids().into_iter().filter(|r| best[o].contains_key(r)).collect::<Vec<_>>().join(";"))
        .collect();
    let r = DataFrame::new(
        ops.len(),
        vec![
            Column::new("operator_id".into(), ops.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
            Column::new("risk_score".into(), risk),
            Column::new("rules_hit".into(), hit),
        ],
    )?;
    let df = lf.join(r.lazy(), [col("operator_id")], [col("operator_id")], JoinArgs::new(JoinType::Left)).collect()?;
    // A stable column set for cron jobs, whatever rules could run: a metric no rule produced is 0,
    // as is a metric for an operator a rule had nothing on.
    let have: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
    let exprs: Vec<Expr> = OPERATOR_COLUMNS
        .iter()
        .map(|(name, dt, places)| {
            let e = if have.iter().any(|h| h == name) { col(*name) } else { lit(NULL) };
            let e = e.cast(dt.clone());
            let e = match dt {
                DataType::String => e.fill_null(lit("")),
                DataType::Float64 => e.fill_null(lit(0.0)).round(*places, RoundMode::HalfToEven),
                _ => e.fill_null(lit(0)),
            };
            e.alias(*name)
        })
        .collect();
    let df = df.lazy().select(exprs).collect()?;
    Ok(df
        .lazy()
        .sort(
            ["risk_score", "operator_id"],
            SortMultipleOptions::default().with_order_descending_multi([true, false]).with_maintain_order(true),
        )
        .collect()?)
}

fn summary(
    o: &mut dyn Write,
    loaded: &load::Loaded,
    findings: &[Finding],
    operators: &DataFrame,
    notes: &[String],
    out: &Path,
) -> Result<()> {
    writeln!(
        o,
        "diversion-audit scan: {} calls from {} file(s) ({} rejected, {} duplicates), {} operators",
        loaded.rows_read(),
        loaded.files.len(),
        loaded.rows_rejected(),
        loaded.duplicates(),
        operators.height()
    )?;
    writeln!(o)?;
    writeln!(o, "{:<26} {:>8} {:>9} {:>6} {:>6} {:>6}", "rule", "findings", "operators", "high", "medium", "low")?;
    for r in rules::docs() {
        let fs: Vec<&Finding> = findings.iter().filter(|f| f.rule == r.id()).collect();
        let mut ops: Vec<&str> = fs.iter().filter_map(|f| f.operator_id.as_deref()).collect();
        ops.sort_unstable();
        ops.dedup();
        let n = |s: Severity| fs.iter().filter(|f| f.severity == s).count();
        writeln!(
            o,
            "{:<26} {:>8} {:>9} {:>6} {:>6} {:>6}",
            r.id(),
            fs.len(),
            ops.len(),
            n(Severity::High),
            n(Severity::Medium),
            n(Severity::Low)
        )?;
    }
    let ids = operators.column("operator_id")?.str()?;
    let risk = operators.column("risk_score")?.f64()?;
    let hit = operators.column("rules_hit")?.str()?;
    let top: Vec<usize> = (0..operators.height()).filter(|i| risk.get(*i).unwrap_or(0.0) > 0.0).take(10).collect();
    if !top.is_empty() {
        writeln!(o)?;
        writeln!(o, "highest risk operators:")?;
        for i in top {
            writeln!(
                o,
                "  {:<16} risk {:.2}  {}",
                ids.get(i).unwrap_or(""),
                risk.get(i).unwrap_or(0.0),
                hit.get(i).unwrap_or("").replace(';', ", ")
            )?;
        }
    }
    for n in notes {
        writeln!(o, "note: {n}")?;
    }
    writeln!(o)?;
    writeln!(
        o,
        "outputs in {}: report.html findings.csv findings.jsonl operators.csv shifts.csv groups.csv conversions.csv rejected.csv dossiers.json run.json timings.json",
        out.display()
    )?;
    Ok(())
}

/// `report`: one operator's dossier from a finished scan.
pub fn report_command(args: &crate::cli::ReportArgs) -> Result<()> {
    use crate::cli::ReportFormat;
    let mut r = crate::report::load(&args.from)?;
    if let Some(red) = args.redact.redactor()?
        && !r.redacted
    {
        for d in &mut r.dossiers {
            for c in &mut d.calls {
                c.callee = red.pseudonym(&c.callee);
            }
        }
        r.redacted = true;
    }
    let d = r.dossiers.iter().find(|d| d.operator_id == args.operator).ok_or_else(|| {
        let ids: Vec<&str> = r.dossiers.iter().map(|d| d.operator_id.as_str()).take(20).collect();
        anyhow::anyhow!(
            "no dossier for operator {:?} in {} (operators with findings: {})",
            args.operator,
            args.from.display(),
            if ids.is_empty() { "none".to_string() } else { ids.join(", ") }
        )
    })?;
    let band = r.quota_band_hours;
    let text = match args.format {
        ReportFormat::Md => crate::report::render::dossier_md(&r, d)?,
        ReportFormat::Json => crate::report::render::dossier_json(d)?,
        ReportFormat::Html => crate::report::render::dossier_html(&r, d, band)?,
    };
    match &args.out {
        Some(p) => write_atomic(p, |w| Ok(w.write_all(text.as_bytes())?)),
        None => {
            let stdout = std::io::stdout();
            let mut o = stdout.lock();
            o.write_all(text.as_bytes())?;
            o.flush()?;
            Ok(())
        }
    }
}
