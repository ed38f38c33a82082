use super::{LedgerInput, LedgerRule, micros, missing, party_finding, rows_json};
use crate::rules::{Metric, RuleDoc, RuleOutput, RulesConfig};
use anyhow::Result;
use chrono::Datelike;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub struct CardFastRedemption;

/// `[rules.card_fast_redemption]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FastConfig {
    /// A card redeemed within this many minutes of its acquisition, never stocked, is fast. Default 2.
    pub max_dwell_minutes: f64,
    /// Cards acquired on the last this many local days of a month are not judged. Default 2.
    pub month_end_days: u32,
    /// … nor on the first this many. Default 2.
    pub month_start_days: u32,
    /// Fast cards (outside those days) a supplier needs. Default 10.
    pub min_cards: u32,
    /// Share of its cards (outside those days) that are fast. Default 0.5.
    pub min_share: f64,
}

impl Default for FastConfig {
    fn default() -> Self {
        Self { max_dwell_minutes: 2.0, month_end_days: 2, month_start_days: 2, min_cards: 10, min_share: 0.5 }
    }
}

pub const TOML: &str = r#"[rules.card_fast_redemption]
max_dwell_minutes = 2.0     # redeemed within this many minutes of acquisition, never stocked: fast
month_end_days = 2          # cards acquired on the last N local days of a month are not judged ...
month_start_days = 2        # ... nor on the first N (the carriers' direct-recharge APIs are slow then)
min_cards = 10              # fast cards (outside those days) a supplier needs
min_share = 0.5             # share of its cards (outside those days) that are fast

"#;

const METRICS: &[Metric] = &[
    Metric { name: "redeemed_cards", dtype: DataType::Int64, places: 0 },
    Metric { name: "stocked_share", dtype: DataType::Float64, places: 3 },
    Metric { name: "fast_cards", dtype: DataType::Int64, places: 0 },
    Metric { name: "fast_share", dtype: DataType::Float64, places: 3 },
    Metric { name: "month_edge_fast_cards", dtype: DataType::Int64, places: 0 },
    Metric { name: "median_dwell_s", dtype: DataType::Float64, places: 0 },
];

const DOC: &str = "\
card-fast-redemption: cards redeemed within minutes of their purchase, never stocked

## What it does
For each card: the dwell from acquisition (acquired_at) to redemption (redeemed_at). A card that
was never stocked (no stocked_at) and was redeemed within max_dwell_minutes (2) is fast. Cards
acquired on the last month_end_days (2) or the first month_start_days (2) local days of a month
are not judged (they are counted apart). A supplier with at least min_cards (10) fast cards,
min_share (0.5) of its judged cards, is a finding; score 0.5 plus half its fast share. The
evidence has the dwell distribution and the first fast cards; cards_flagged.csv has every one.

## Why it matters
The seed's \"3·13\" case: the recharge provider's card unit redeemed bought-back PINs through an
API within two minutes, before a victim could report the PIN; cards bought through normal
channels went into inventory and waited ten days or more. Only at the turn of a month, when the
carriers' direct-recharge APIs are slow, does legitimate stock go out this fast.

## Example
Supplier 速通寄售: 3 980 of 4 210 cards redeemed a median 64 s after purchase, none stocked:
high. A supplier whose cards wait 3 minutes, or go fast only on the last two days of the month,
is not a finding.";

impl RuleDoc for CardFastRedemption {
    fn id(&self) -> &'static str {
        "card-fast-redemption"
    }
    fn summary(&self) -> &'static str {
        "A card supplier whose cards are redeemed within minutes of acquisition, never stocked"
    }
    fn explain(&self) -> &'static str {
        DOC
    }
    fn defaults(&self, cfg: &RulesConfig) -> String {
        let c = &cfg.card_fast_redemption;
        format!(
            "max_dwell_minutes = {}, month_end_days = {}, month_start_days = {}, min_cards = {}, min_share = {}",
            c.max_dwell_minutes, c.month_end_days, c.month_start_days, c.min_cards, c.min_share
        )
    }
    fn metrics(&self) -> &'static [Metric] {
        METRICS
    }
    fn config_toml(&self) -> &'static str {
        TOML
    }
    fn validate(&self, cfg: &RulesConfig) -> Result<()> {
        let c = &cfg.card_fast_redemption;
        anyhow::ensure!(
            c.max_dwell_minutes > 0.0
                && (0.0..=1.0).contains(&c.min_share)
                && c.month_end_days <= 15
                && c.month_start_days <= 15,
            "rules.card_fast_redemption: need max_dwell_minutes > 0, 0 <= min_share <= 1, month_end_days and month_start_days <= 15"
        );
        Ok(())
    }
}

/// Whether each card was acquired on a month's first or last days (local), by its local day.
fn month_edge(acquired: &Int64Chunked, c: &FastConfig, tz: chrono_tz::Tz) -> BooleanChunked {
    let days = crate::frame::local_days(acquired, tz);
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    let mut memo = std::collections::HashMap::<i32, bool>::new();
    let mut edge = |d: i32| {
        *memo.entry(d).or_insert_with(|| {
            let date = epoch + chrono::Days::new(d.max(0) as u64);
            let next_month =
                date.checked_add_months(chrono::Months::new(1)).unwrap_or(date).with_day(1).unwrap_or(date);
            let left = (next_month - date).num_days(); // 1 on the month's last day
            date.day() <= c.month_start_days || left <= i64::from(c.month_end_days)
        })
    };
    days.iter().map(|d| Some(d.is_some_and(&mut edge))).collect::<BooleanChunked>().with_name("month_edge".into())
}

/// How long the cards waited, in buckets an analyst reads at a glance.
const DWELL_BUCKETS: [(i64, &str); 7] = [
    (30, "≤30 s"),
    (60, "≤1 min"),
    (120, "≤2 min"),
    (600, "≤10 min"),
    (3600, "≤1 h"),
    (86_400, "≤1 day"),
    (864_000, "≤10 days"),
];

/// Each card's dwell bucket: the index of the first bucket it fits, then `>10 days`, then `not redeemed`.
fn bucket() -> Expr {
    let b = DWELL_BUCKETS.iter().enumerate().rev().fold(lit(DWELL_BUCKETS.len() as i64), |acc, (i, (lim, _))| {
        when(col("dwell_s").lt_eq(lit(*lim))).then(lit(i as i64)).otherwise(acc)
    });
    when(col("dwell_s").is_null()).then(lit(DWELL_BUCKETS.len() as i64 + 1)).otherwise(b).cast(DataType::Int64)
}

/// Per supplier: cards, redeemed, stocked share, fast cards (judged days), judged cards, fast cards
/// on the month's edge days, median dwell, first and last acquisition, fast share.
fn per_supplier(lf: &LazyFrame) -> Result<DataFrame> {
    Ok(lf
        .clone()
        .group_by([col("supplier")])
        .agg([
            len().cast(DataType::Int64).alias("cards"),
            col("redeemed_at").is_not_null().sum().cast(DataType::Int64).alias("redeemed_cards"),
            (col("stocked_at").is_not_null().sum().cast(DataType::Float64) / len().cast(DataType::Float64))
                .alias("stocked_share"),
            col("fast").and(col("month_edge").not()).sum().cast(DataType::Int64).alias("fast_cards"),
            col("month_edge").not().sum().cast(DataType::Int64).alias("judged"),
            col("fast").and(col("month_edge")).sum().cast(DataType::Int64).alias("month_edge_fast_cards"),
            col("dwell_s").cast(DataType::Float64).median().alias("median_dwell_s"),
            col("acquired_at").min().alias("first"),
            col("acquired_at").max().alias("last"),
        ])
        .with_column(
            when(col("judged").gt(lit(0)))
                .then(col("fast_cards").cast(DataType::Float64) / col("judged").cast(DataType::Float64))
                .otherwise(lit(0.0))
                .alias("fast_share"),
        )
        .sort(["supplier"], Default::default())
        .collect()?)
}

/// `[[bucket, cards], …]` in bucket order from a supplier's (bucket, n) counts.
fn dwell_histogram(d: &DataFrame) -> Result<serde_json::Value> {
    let mut n = [0i64; DWELL_BUCKETS.len() + 2];
    if d.height() > 0 {
        for (b, k) in d.column("bucket")?.i64()?.iter().zip(d.column("n")?.i64()?.iter()) {
            n[b.unwrap_or(0) as usize] += k.unwrap_or(0);
        }
    }
    let mut out: Vec<serde_json::Value> =
        DWELL_BUCKETS.iter().enumerate().map(|(i, (_, name))| json!([name, n[i]])).collect();
    out.push(json!([">10 days", n[DWELL_BUCKETS.len()]]));
    out.push(json!(["not redeemed", n[DWELL_BUCKETS.len() + 1]]));
    Ok(serde_json::Value::Array(out))
}

impl LedgerRule for CardFastRedemption {
    fn run(&self, input: &LedgerInput, cfg: &RulesConfig) -> Result<RuleOutput> {
        let Some(cards) = &input.cards else { return Ok(missing(self.id(), "card ledger", "cards LEDGER")) };
        let c = &cfg.card_fast_redemption;
        if cards.height() > 0 && cards.column("redeemed_at")?.null_count() == cards.height() {
            return Ok(RuleOutput {
                notes: vec![format!("{}: the ledger has no redemption times (redeemed_at); not judged", self.id())],
                ..Default::default()
            });
        }
        let edge = month_edge(&micros(cards, "acquired_at")?, c, input.tz);
        let max_s = (c.max_dwell_minutes * 60.0).round() as i64;
        let lf = cards.clone().lazy().with_column(lit(Series::from(edge))).with_column(
            col("stocked_at").is_null().and(col("dwell_s").lt_eq(lit(max_s))).fill_null(lit(false)).alias("fast"),
        );
        let per = per_supplier(&lf)?;
        let metrics = per.select([
            "supplier",
            "redeemed_cards",
            "stocked_share",
            "fast_cards",
            "fast_share",
            "month_edge_fast_cards",
            "median_dwell_s",
        ])?;
        let mut out = RuleOutput { operator_metrics: Some(metrics), ..Default::default() };
        let hits = per
            .lazy()
            .filter(col("fast_cards").gt_eq(lit(c.min_cards as i64)).and(col("fast_share").gt_eq(lit(c.min_share))))
            .collect()?;
        if hits.height() == 0 {
            return Ok(out);
        }
        let flagged = lf.clone().join(
            hits.clone().lazy().select([col("supplier")]),
            [col("supplier")],
            [col("supplier")],
            JoinArgs::new(JoinType::Semi),
        );
        let dwell = flagged
            .clone()
            .group_by([col("supplier"), bucket().alias("bucket")])
            .agg([len().cast(DataType::Int64).alias("n")])
            .sort(["supplier", "bucket"], Default::default())
            .collect()?;
        let dwell_of = super::by_party(&dwell, "supplier")?;
        let behind = flagged
            .filter(col("fast").and(col("month_edge").not()))
            .select([
                lit(self.id()).alias("rule"),
                col("supplier"),
                col("card_ref"),
                col("card_tail"),
                col("carrier"),
                col("face_value"),
                col("price"),
                col("price_per_100"),
                col("acquired_at"),
                col("stocked_at"),
                col("redeemed_at"),
                col("dwell_s"),
            ])
            .sort(["supplier", "acquired_at"], Default::default())
            .collect()?;
        let behind_of = super::by_party(&behind, "supplier")?;
        for i in 0..hits.height() {
            let row = hits.slice(i as i64, 1);
            let name = row.column("supplier")?.str()?.get(0).unwrap_or_default().to_string();
            let g = |c: &str| super::cell_f64(&row, c);
            let (fast, share, judged, cards_n, med, edge_fast) = (
                g("fast_cards")?,
                g("fast_share")?,
                g("judged")?,
                g("cards")?,
                g("median_dwell_s")?,
                g("month_edge_fast_cards")?,
            );
            let d = dwell_of.get(&name).cloned().unwrap_or_default();
            let mine = behind_of.get(&name).map(|m| m.drop_many(["rule", "supplier"])).unwrap_or_default();
            let summary = format!(
                "Supplier {name}: {fast} of {judged} cards redeemed within {} min of purchase without being stocked (median dwell {med:.0} s).",
                c.max_dwell_minutes
            );
            let evidence = json!({
                "party": "supplier",
                "cards": cards_n as i64,
                "judged_cards": judged as i64,
                "fast_cards": fast as i64,
                "fast_share": crate::frame::round(share, 3),
                "month_edge_fast_cards": edge_fast as i64,
                "median_dwell_s": med.round(),
                "stocked_share": crate::frame::round(g("stocked_share")?, 3),
                "dwell": dwell_histogram(&d)?,
                "first_cards": rows_json(&mine, 20, input.tz)?,
            });
            let window = super::window(&row)?;
            out.findings.push(party_finding(self.id(), &name, window, 0.5 + 0.5 * share, summary, evidence));
        }
        out.tables.push(("cards_flagged", behind));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_edges_by_local_day() {
        let tz: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
        let c = FastConfig::default();
        // local 2026-03-30 (last two days), 03-31, 04-01, 04-02 (first two), 04-03, 03-15; 2026-02-27 is
        // the second-to-last day of February
        let at = |s: &str| {
            let t = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
            (t - chrono::Duration::hours(8)).and_utc().timestamp_micros()
        };
        let days = [
            "2026-03-30 10:00",
            "2026-03-31 23:59",
            "2026-04-01 00:01",
            "2026-04-02 12:00",
            "2026-04-03 00:00",
            "2026-03-15 12:00",
            "2026-02-27 09:00",
            "2026-03-29 23:59",
        ];
        let us: Int64Chunked = days.iter().map(|d| Some(at(d))).collect();
        let got: Vec<bool> = month_edge(&us, &c, tz).iter().map(|b| b.unwrap()).collect();
        assert_eq!(got, [true, true, true, true, false, false, true, false]);
    }
}
