//! `cards`' dossiers: one per supplier, shop or SMS sub-account with a finding, kept in
//! `dossiers.json` and rendered by `report --supplier ID` as Markdown, JSON or HTML. Everything here
//! is read from the findings and the rules' tables; nothing is judged.

use crate::rules::Finding;
use anyhow::Result;
use chrono_tz::Tz;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

/// `dossiers.json` of a `cards` run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PartyReport {
    /// Always `cards` (a scan's dossiers.json has no `kind`).
    pub kind: String,
    pub tz: String,
    pub redacted: bool,
    pub parties: Vec<PartyDossier>,
}

/// One bar of a distribution: its label and count.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bin {
    pub label: String,
    pub n: u64,
    /// A text bar for Markdown, and its share (0–1) of the largest bin for HTML.
    pub bar: String,
    pub share: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CarrierPrices {
    pub carrier: String,
    pub cards: i64,
    pub floor: f64,
    pub market: f64,
    pub market_p10_p50_p90: Vec<f64>,
    pub supplier_p10_p50_p90: Vec<f64>,
    /// Price per 100 by half point: this supplier's cards and every supplier's.
    pub supplier_bins: Vec<Bin>,
    pub market_bins: Vec<Bin>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PartyFinding {
    /// As an operator's dossier lists a finding (its fields at the top level).
    #[serde(flatten)]
    pub line: super::FindingLine,
    pub evidence: serde_json::Value,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PartyDossier {
    /// `supplier`, `shop` or `sms sub-account`.
    pub kind: String,
    pub id: String,
    pub findings: Vec<PartyFinding>,
    /// Its row of suppliers.csv, shops.csv or sms_accounts.csv, as (column, value) in order.
    pub metrics: Vec<(String, String)>,
    /// card-buyback-below-market: the prices against the market, per carrier.
    pub prices: Vec<CarrierPrices>,
    /// card-fast-redemption: how long its cards waited.
    pub dwell: Vec<Bin>,
    /// The first flagged rows behind its findings (cards, sales or texts).
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub rows_total: usize,
}

const MAX_ROWS: usize = 50;

fn bins(pairs: impl Iterator<Item = (String, u64)>) -> Vec<Bin> {
    let v: Vec<(String, u64)> = pairs.collect();
    let max = v.iter().map(|p| p.1).max().unwrap_or(1).max(1);
    v.into_iter()
        .map(|(label, n)| {
            let share = n as f64 / max as f64;
            Bin { label, n, bar: "█".repeat((share * 30.0).ceil() as usize), share }
        })
        .collect()
}

/// Every half point from the lowest price to the highest, empty ones too (a gap is part of the picture).
fn price_bins(v: &serde_json::Value) -> Vec<Bin> {
    let got: std::collections::BTreeMap<i64, u64> = v
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| ((p[0].as_f64().unwrap_or(0.0) * 2.0).round() as i64, p[1].as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    let (Some(lo), Some(hi)) = (got.keys().next().copied(), got.keys().last().copied()) else { return Vec::new() };
    // a ledger with a stray price far off (a typo of 9.75 for 97.5) is shown as it is, not as 180 rows
    let span: Vec<i64> = if hi - lo <= 40 { (lo..=hi).collect() } else { got.keys().copied().collect() };
    bins(span.into_iter().map(|b| (format!("{:.1}", b as f64 / 2.0), got.get(&b).copied().unwrap_or(0))))
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn prices(e: &serde_json::Value) -> Vec<CarrierPrices> {
    let list = |v: &serde_json::Value| v.as_array().map(|a| a.iter().map(f).collect()).unwrap_or_default();
    e["carriers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| CarrierPrices {
                    carrier: c["carrier"].as_str().unwrap_or("?").to_string(),
                    cards: c["cards"].as_i64().unwrap_or(0),
                    floor: f(&c["floor"]),
                    market: f(&c["market"]),
                    market_p10_p50_p90: list(&c["market_p10_p50_p90"]),
                    supplier_p10_p50_p90: list(&c["supplier_p10_p50_p90"]),
                    supplier_bins: price_bins(&c["supplier_histogram"]),
                    market_bins: price_bins(&c["market_histogram"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn text(v: AnyValue, tz: Tz) -> String {
    match v {
        AnyValue::Null => String::new(),
        AnyValue::Datetime(us, ..) => crate::frame::local(us, tz),
        AnyValue::Float64(x) => format!("{}", crate::frame::round(x, 2)),
        other => other.str_value().to_string(),
    }
}

/// The dossiers of every party of `kind` (keyed by `key` in `metrics`) with a finding.
pub fn dossiers(
    kind: &str,
    key: &str,
    metrics: &DataFrame,
    findings: &[Finding],
    tables: &[(&'static str, DataFrame)],
    tz: Tz,
) -> Result<Vec<PartyDossier>> {
    let flagged = match kind {
        "supplier" => "cards_flagged",
        "shop" => "sales_flagged",
        _ => "sms_flagged",
    };
    let rows_of = tables.iter().find(|(n, _)| *n == flagged).map(|(_, df)| df);
    let ids = metrics.column(key)?.str()?;
    let mut out = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let Some(id) = id else { continue };
        let mine: Vec<&Finding> =
            findings.iter().filter(|f| f.subject.as_deref() == Some(id) && f.evidence["party"] == kind).collect();
        if mine.is_empty() {
            continue;
        }
        let row = metrics.get_row(i)?;
        let m = metrics.get_column_names().iter().zip(row.0).map(|(n, v)| (n.to_string(), text(v, tz))).collect();
        let (mut columns, mut rows, mut total) = (Vec::new(), Vec::new(), 0);
        if let Some(df) = rows_of {
            let sub = df.clone().lazy().filter(col(key).eq(lit(id))).drop(cols([key])).collect()?;
            total = sub.height();
            columns = sub.get_column_names().iter().map(|n| n.to_string()).collect();
            for r in 0..sub.height().min(MAX_ROWS) {
                rows.push(sub.get_row(r)?.0.into_iter().map(|v| text(v, tz)).collect());
            }
        }
        let buyback = mine.iter().find(|f| f.rule == "card-buyback-below-market");
        let fast = mine.iter().find(|f| f.rule == "card-fast-redemption");
        out.push(PartyDossier {
            kind: kind.to_string(),
            id: id.to_string(),
            findings: mine
                .iter()
                .map(|f| PartyFinding { line: super::FindingLine::of(f, tz), evidence: f.evidence.clone() })
                .collect(),
            metrics: m,
            prices: buyback.map(|f| prices(&f.evidence)).unwrap_or_default(),
            dwell: fast
                .and_then(|f| f.evidence["dwell"].as_array().cloned())
                .map(|a| bins(a.iter().map(|p| (p[0].as_str().unwrap_or("?").to_string(), p[1].as_u64().unwrap_or(0)))))
                .unwrap_or_default(),
            columns,
            rows,
            rows_total: total,
        });
    }
    Ok(out)
}

/// A `cards` run's dossiers.json; None when the directory holds a scan's.
pub fn load(dir: &std::path::Path) -> Result<Option<PartyReport>> {
    let p = dir.join("dossiers.json");
    let text = std::fs::read_to_string(&p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    if v.get("kind").and_then(|k| k.as_str()) != Some("cards") {
        return Ok(None);
    }
    Ok(Some(serde_json::from_value(v).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?))
}
