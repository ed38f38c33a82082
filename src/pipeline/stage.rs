//! One partition of a scan: load → fail on unreadable inputs → redact → IP countries → caller IDs →
//! prepare. A scan without `--partitions` runs it once over every row.

use super::Context;
use crate::load::{self, Loaded, Partition};
use crate::prepare::AuditInput;
use anyhow::Result;
use indicatif::ProgressBar;
use polars::prelude::*;
use std::time::Instant;

/// Load and prepare the rows of `part` (None: every row).
pub(super) fn prepare(cx: &Context, part: Option<Partition>, pb: &ProgressBar) -> Result<(Loaded, AuditInput)> {
    let t = Instant::now();
    let opts = load::LoadOptions { partition: part, ..cx.load.clone() };
    let mut loaded = load::load_cdrs(cx.paths, &opts, &cx.plan.setup.phones)?;
    super::fail_on_unreadable(&loaded.files)?;
    cx.lap("load_cdr", t);
    let (joins, ips) = cx.side_inputs(pb)?;
    let join_rejects = joins.map_or(&[][..], |j| &j.rejects[..]);
    if cx.plan.setup.strict && !(loaded.rejects.is_empty() && join_rejects.is_empty()) {
        // --strict: rejected rows stop the run before anything is judged or written
        let all: Vec<load::Reject> = loaded.rejects.iter().chain(join_rejects).cloned().collect();
        anyhow::bail!("{}; nothing written", load::strict_message(&all, &all[0]));
    }
    if let Some(r) = &cx.plan.redactor {
        let callee = r.column_by_num(&loaded.frame, "callee", "callee_num")?;
        loaded.frame.with_column(callee)?;
        for rej in &mut loaded.rejects {
            rej.raw = "[redacted]".into();
        }
    }
    let t = Instant::now();
    // the frame moves on (the file reports stay): holding two copies of every CDR doubled peak memory
    let frame = std::mem::replace(&mut loaded.frame, DataFrame::empty());
    let mut dicts = std::mem::take(&mut loaded.dicts);
    let mut cdr = crate::enrich::cdr_ip_country(frame, ips, Some(&mut dicts))?;
    cx.lap("enrich_ip", t);
    // the caller IDs were parsed on their own thread meanwhile
    let t = Instant::now();
    if let Some(pending) = loaded.callers.take() {
        crate::enrich::finish_callers(&mut cdr, pending, &mut dicts)?;
    }
    cx.lap("callers", t);
    let t = Instant::now();
    let input = AuditInput::prepare_days(cdr, dicts, joins.map(|j| j.frame.clone()), cx.prepare_options()?)?;
    cx.lap("prepare", t);
    Ok((loaded, input))
}
