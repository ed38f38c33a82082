//! One partition of a scan: load → fail on unreadable inputs → redact → IP countries → caller IDs →
//! prepare. A scan without `--partitions` runs it once over every row.

use super::Context;
use crate::load::{self, Loaded, Partition};
use crate::prepare::AuditInput;
use anyhow::Result;
use indicatif::ProgressBar;
use polars::prelude::*;
use std::time::Instant;

/// What one partition gives the rules: the operators' calls, and a carrier's subscriber records
/// when the inputs have some ([`subscribers`]).
pub(super) struct Prepared {
    pub loaded: Loaded,
    pub input: AuditInput,
    pub subscribers: Option<AuditInput>,
}

/// Load and prepare the rows of `part` (None: every row).
pub(super) fn prepare(cx: &Context, part: Option<Partition>, pb: &ProgressBar) -> Result<Prepared> {
    let (loaded, cdr, dicts) = enriched(cx, part, pb)?;
    let (joins, _) = cx.side_inputs(pb)?;
    let t = Instant::now();
    let (cdr, sub) = load::split_files(cdr, &loaded.subscriber_files)?;
    let join_frame = || joins.map(|j| j.frame.clone());
    let subscribers = match sub {
        Some(sub) => Some(subscribers(sub, &dicts, join_frame(), cx.prepare_options()?)?),
        None => None,
    };
    let input = AuditInput::prepare_days(cdr, dicts, join_frame(), cx.prepare_options()?)?;
    cx.lap("prepare", t);
    Ok(Prepared { loaded, input, subscribers })
}

/// The rows of `part` loaded, redacted and enriched (IP countries, caller IDs): the loader's
/// reports (its frame moved out), the frame, and the texts of its coded columns.
pub(super) fn enriched(
    cx: &Context,
    part: Option<Partition>,
    pb: &ProgressBar,
) -> Result<(Loaded, DataFrame, crate::coded::Dicts)> {
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
    Ok((loaded, cdr, dicts))
}

/// A carrier's records as an audit input of their own: the calling number stands where an
/// operator would, and every call is outbound from it (the victim's 话单 shows who called; the
/// subscriber's own calls out are the subscriber's). Only the rules that need no operator read it.
fn subscribers(
    mut sub: DataFrame,
    dicts: &crate::coded::Dicts,
    joins: Option<DataFrame>,
    opts: &crate::prepare::PrepareOptions,
) -> Result<AuditInput> {
    // the number in E.164 (`+44…` and `0044…` are one caller), else as written
    let raw: Vec<Option<String>> = if sub.column("caller_id")?.dtype() == &DataType::UInt32 {
        let c = dicts.column(&sub, "caller_id")?;
        (0..sub.height()).map(|i| c.get(i).map(str::to_string)).collect()
    } else {
        sub.column("caller_id")?.str()?.iter().map(|s| s.map(str::to_string)).collect()
    };
    let nums = sub.column("caller_num")?.u64()?;
    let callers: StringChunked =
        raw.into_iter().zip(nums.iter()).map(|(r, n)| n.map(|n| format!("+{n}")).or(r)).collect();
    let h = sub.height();
    sub.with_column(callers.with_name("operator_id".into()).into_column())?;
    sub.with_column(UInt32Chunked::full("direction".into(), crate::load::legs::OUTBOUND, h).into_column())?;
    let known = sub.column("operator_id")?.is_not_null();
    let sub = sub.filter(&known)?;
    AuditInput::prepare_days(sub, dicts.clone(), joins, opts)
}
