//! The order-brushing chain of the second seed (shared/DOMAIN.md §3): rules over a recharge
//! provider's card ledger, a card shop's sales log and an SMS platform's send log, run by
//! `cards` (and `sms-recruitment` by `scan --sms` too).
//!
//! Their subject is a party, not a seat: a supplier (寄卖商, 渠道), a shop (销售商) or an SMS
//! sub-account. A finding names it in `subject` (and its kind in the evidence); `operator_id`
//! stays empty. The tables a rule adds are keyed by the party (`supplier`, `shop`,
//! `sub_account`).

pub mod buyback;
pub mod fast_redemption;
mod prices;
pub mod retail_above_face;
pub mod sms_links;
pub mod sms_recruitment;

use super::{Finding, RuleDoc, RuleOutput, RulesConfig, Severity};
use anyhow::Result;
use chrono_tz::Tz;
use polars::prelude::*;

/// What the ledger rules read; each reads the tables it needs and says so when one is missing.
pub struct LedgerInput {
    /// The card ledger, typed ([`crate::load::ledger::CARDS`]) with `card_ref` (the card id's
    /// pseudonym) in place of `card_id`, `card_tail` (its last four characters) and `dwell_s`
    /// (whole seconds from acquisition to redemption; null when not redeemed).
    pub cards: Option<DataFrame>,
    /// The shops' sales logs ([`crate::load::ledger::SALES`]), `card_ref` likewise.
    pub sales: Option<DataFrame>,
    /// SMS send logs ([`crate::load::ledger::SMS`]) with `recipient_e164`, `recipient_num`.
    pub sms: Option<DataFrame>,
    /// The chat-group join log (`group_id`, `member_num`, `joined_at`, `inviter`).
    pub joins: Option<DataFrame>,
    /// Callees of the audited calls that were also texted (`scan --sms`): `recipient_num`,
    /// `operator_id`, `calls`, `first_call_us`.
    pub called: Option<DataFrame>,
    pub tz: Tz,
}

/// A rule over the ledger tables.
pub trait LedgerRule: RuleDoc {
    fn run(&self, input: &LedgerInput, cfg: &RulesConfig) -> Result<RuleOutput>;
}

/// A party finding: score rounded to two places, severity from it.
pub fn party_finding(
    rule: &'static str,
    party: &str,
    window: (i64, i64),
    score: f64,
    summary: String,
    evidence: serde_json::Value,
) -> Finding {
    let score = crate::frame::round(score.clamp(0.0, 1.0), 2);
    Finding {
        rule,
        severity: Severity::from_score(score),
        operator_id: None,
        subject: Some(party.to_string()),
        window_start: crate::frame::utc(window.0),
        window_end: crate::frame::utc(window.1),
        score,
        summary,
        evidence,
        fact: None,
    }
}

/// The physical µs of a datetime column (nulls kept).
pub fn micros(df: &DataFrame, name: &str) -> Result<Int64Chunked> {
    Ok(df.column(name)?.to_physical_repr().i64()?.clone())
}

/// A one-row frame's value of `c` as f64 (0 when missing).
pub fn cell_f64(row: &DataFrame, c: &str) -> Result<f64> {
    Ok(row.column(c)?.cast(&DataType::Float64)?.f64()?.get(0).unwrap_or(0.0))
}

/// A one-row frame's text in `c` (empty when missing).
pub fn cell_str(row: &DataFrame, c: &str) -> Result<String> {
    Ok(row.column(c)?.str()?.get(0).unwrap_or_default().to_string())
}

/// A one-row party frame's window: its `first` and `last` (µs).
pub fn window(row: &DataFrame) -> Result<(i64, i64)> {
    Ok((micros(row, "first")?.get(0).unwrap_or(0), micros(row, "last")?.get(0).unwrap_or(0)))
}

/// Up to `n` rows of `df` as JSON objects, datetimes as local times.
pub fn rows_json(df: &DataFrame, n: usize, tz: Tz) -> Result<Vec<serde_json::Value>> {
    let head = df.head(Some(n));
    let mut out = Vec::with_capacity(head.height());
    for i in 0..head.height() {
        let mut m = serde_json::Map::new();
        for c in head.columns() {
            let v = c.get(i)?;
            let j = match v {
                AnyValue::Null => serde_json::Value::Null,
                AnyValue::Datetime(us, ..) => serde_json::Value::String(crate::frame::local(us, tz)),
                AnyValue::Float64(x) => serde_json::json!(crate::frame::round(x, 2)),
                AnyValue::Int64(x) => serde_json::json!(x),
                AnyValue::UInt32(x) => serde_json::json!(x),
                AnyValue::Boolean(b) => serde_json::json!(b),
                other => serde_json::Value::String(other.str_value().to_string()),
            };
            m.insert(c.name().to_string(), j);
        }
        out.push(serde_json::Value::Object(m));
    }
    Ok(out)
}

/// The rows of `df` (sorted by `key`) per value of `key`, as zero-copy slices: a rule's findings
/// each read their party's rows (40 filters of a 3.5 M-row table took 3 s at 10 M ledger rows).
pub fn by_party(df: &DataFrame, key: &str) -> Result<std::collections::HashMap<String, DataFrame>> {
    let ca = df.column(key)?.str()?;
    let starts = crate::par::run_starts(ca);
    let mut out = std::collections::HashMap::with_capacity(starts.len());
    for (i, &a) in starts.iter().enumerate() {
        let b = starts.get(i + 1).copied().unwrap_or(df.height());
        out.insert(ca.get(a).unwrap_or_default().to_string(), df.slice(a as i64, b - a));
    }
    Ok(out)
}

/// The note a rule gives when its table is not among the inputs.
pub fn missing(rule: &str, what: &str, flag: &str) -> RuleOutput {
    RuleOutput { notes: vec![format!("{rule}: no {what} given ({flag}); not judged")], ..Default::default() }
}
