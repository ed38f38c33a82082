//! `report`: one operator's dossier or one crew's page from a finished scan, as Markdown, JSON or HTML.

use crate::cli::{ReportArgs, ReportFormat};
use crate::outputs::write_atomic;
use anyhow::Result;
use std::io::Write;

/// `report`: one operator's dossier from a finished scan.
pub fn run(args: &ReportArgs) -> Result<()> {
    if let Some(id) = &args.supplier {
        return party(args, id);
    }
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
    let text = match (&args.crew, &args.operator) {
        (Some(id), _) => {
            let p = r.crews.iter().find(|c| &c.crew_id == id).ok_or_else(|| {
                let ids = r.crews.iter().map(|c| c.crew_id.as_str());
                not_found(&format!("crew page for {id:?}"), &args.from, "crews with pages", ids)
            })?;
            match args.format {
                ReportFormat::Md => crate::report::render::crew_md(&r, p)?,
                ReportFormat::Json => crate::report::render::crew_json(p)?,
                ReportFormat::Html => crate::report::render::crew_html(&r, p)?,
            }
        }
        (None, Some(op)) => {
            let d = r.dossiers.iter().find(|d| &d.operator_id == op).ok_or_else(|| {
                let ids = r.dossiers.iter().map(|d| d.operator_id.as_str());
                not_found(&format!("dossier for operator {op:?}"), &args.from, "operators with findings", ids)
            })?;
            let band = r.quota_band_hours;
            match args.format {
                ReportFormat::Md => crate::report::render::dossier_md(&r, d)?,
                ReportFormat::Json => crate::report::render::dossier_json(d)?,
                ReportFormat::Html => crate::report::render::dossier_html(&r, d, band)?,
            }
        }
        (None, None) => anyhow::bail!("report needs --operator ID, --crew ID or --supplier ID"),
    };
    emit(args, &text)
}

/// `report --supplier ID`: a dossier of a `cards` run.
fn party(args: &ReportArgs, id: &str) -> Result<()> {
    let r = crate::report::parties::load(&args.from)?.ok_or_else(|| {
        anyhow::anyhow!("{}: the dossiers of a scan, not of `cards`; --supplier reads a cards run", args.from.display())
    })?;
    let d = r.parties.iter().find(|d| d.id == id).ok_or_else(|| {
        let ids = r.parties.iter().map(|d| d.id.as_str());
        not_found(&format!("dossier for {id:?}"), &args.from, "suppliers, shops and sub-accounts with findings", ids)
    })?;
    let text = match args.format {
        ReportFormat::Md => crate::report::render::party(&r, d, false)?,
        ReportFormat::Html => crate::report::render::party(&r, d, true)?,
        ReportFormat::Json => serde_json::to_string_pretty(d)? + "\n",
    };
    emit(args, &text)
}

fn emit(args: &ReportArgs, text: &str) -> Result<()> {
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

/// `no WHAT in FROM (THOSE: the first 20 ids, or none)`.
fn not_found<'a>(what: &str, from: &std::path::Path, those: &str, ids: impl Iterator<Item = &'a str>) -> anyhow::Error {
    let ids: Vec<&str> = ids.take(20).collect();
    let listed = if ids.is_empty() { "none".to_string() } else { ids.join(", ") };
    anyhow::anyhow!("no {what} in {} ({those}: {listed})", from.display())
}
