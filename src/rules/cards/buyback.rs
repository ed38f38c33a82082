use super::prices::Bins;
use super::{LedgerInput, LedgerRule, micros, missing, party_finding, rows_json};
use crate::rules::{Metric, RuleDoc, RuleOutput, RulesConfig};
use anyhow::Result;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub struct CardBuyback;

/// `[rules.card_buyback_below_market]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BuybackConfig {
    /// A fixed floor per 100 of face value for every carrier; 0 = learn it from the ledger.
    pub floor_per_100: f64,
    /// The market price of a carrier's cards: this quantile of their prices per 100. Default 0.9.
    pub market_quantile: f64,
    /// The learned floor lies this far below the market price. Default 0.9.
    pub max_below_market: f64,
    /// Cards of one carrier a supplier needs before it is judged on it. Default 20.
    pub min_cards: u32,
    /// Share of those cards below the floor that makes a finding. Default 0.5 (its median is below);
    /// lower it to catch a channel that mixes laundered PINs into honest stock.
    pub min_share: f64,
}

impl Default for BuybackConfig {
    fn default() -> Self {
        Self { floor_per_100: 0.0, market_quantile: 0.9, max_below_market: 0.9, min_cards: 20, min_share: 0.5 }
    }
}

pub const TOML: &str = r#"[rules.card_buyback_below_market]
floor_per_100 = 0.0         # a fixed floor per 100 of face value for every carrier (0 = learn it)
market_quantile = 0.9       # a carrier's market price: this quantile of its cards' prices per 100
max_below_market = 0.9      # the learned floor: the market price less this
min_cards = 20              # cards of one carrier a supplier needs to be judged on it
min_share = 0.5             # share of them below the floor (0.5: its median; lower catches mixed stock)

"#;

const METRICS: &[Metric] = &[
    Metric { name: "cards", dtype: DataType::Int64, places: 0 },
    Metric { name: "face_total", dtype: DataType::Float64, places: 2 },
    Metric { name: "median_per_100", dtype: DataType::Float64, places: 2 },
    Metric { name: "below_floor_cards", dtype: DataType::Int64, places: 0 },
];

const DOC: &str = "\
card-buyback-below-market: a supplier selling cards to the recharge provider far below the market

## What it does
Prices every acquired card per 100 of face value (a price written as a rate, 0.975 or 97.5 %,
is taken as one). For each carrier the market price is the market_quantile (0.9) of its cards'
prices per 100, and the floor is that less max_below_market (0.9 points), unless floor_per_100
fixes it. A supplier (channel) with at least min_cards (20) of a carrier's cards, min_share (0.5,
its median) of them below the floor, is a finding; score 0.6 plus 0.2 per point its median (or,
when only a minority is below, its 10th percentile) lies below the floor (at most 1.0). The evidence has, per carrier, the market's and the supplier's
distribution (10th, 50th and 90th percentiles, a histogram by half point) and the first cards;
cards_flagged.csv has every card below the floor.

## Why it matters
The seed's \"3·13\" case: PINs bought by scam victims at 110 per 100 were sold on through
consignment firms at 97.5 / 98.2 / 98.6 for the three carriers, while the provider's legitimate
purchases never went below 99.2 and were mostly above 99.5. A seller who accepts 2–3 % less than
the market has a reason not to sell through the market.

## Example
Supplier 速通寄售 sold 4 210 CMCC cards at a median 97.5 per 100 (market 99.7, floor 98.8): high.
A supplier at 99.1 is above the floor: no finding.";

impl RuleDoc for CardBuyback {
    fn id(&self) -> &'static str {
        "card-buyback-below-market"
    }
    fn summary(&self) -> &'static str {
        "A card supplier whose price per 100 of face value sits below the carrier's market floor"
    }
    fn explain(&self) -> &'static str {
        DOC
    }
    fn defaults(&self, cfg: &RulesConfig) -> String {
        let c = &cfg.card_buyback_below_market;
        format!(
            "floor_per_100 = {}, market_quantile = {}, max_below_market = {}, min_cards = {}, min_share = {}",
            c.floor_per_100, c.market_quantile, c.max_below_market, c.min_cards, c.min_share
        )
    }
    fn metrics(&self) -> &'static [Metric] {
        METRICS
    }
    fn config_toml(&self) -> &'static str {
        TOML
    }
    fn validate(&self, cfg: &RulesConfig) -> Result<()> {
        let c = &cfg.card_buyback_below_market;
        anyhow::ensure!(
            (0.0..=1.0).contains(&c.market_quantile)
                && c.max_below_market >= 0.0
                && c.floor_per_100 >= 0.0
                && c.min_share > 0.0
                && c.min_share <= 1.0,
            "rules.card_buyback_below_market: need 0 <= market_quantile <= 1, max_below_market >= 0, floor_per_100 >= 0 and 0 < min_share <= 1"
        );
        Ok(())
    }
}

/// A carrier's histogram over every supplier.
fn market_bins(all: &Bins, carrier: &str) -> Vec<serde_json::Value> {
    let mut m = std::collections::BTreeMap::<i64, u64>::new();
    for ((_, c), v) in all {
        if c == carrier {
            for (b, n) in v {
                *m.entry((b * 2.0) as i64).or_default() += n;
            }
        }
    }
    m.into_iter().map(|(b, n)| json!([b as f64 / 2.0, n])).collect()
}

impl LedgerRule for CardBuyback {
    fn run(&self, input: &LedgerInput, cfg: &RulesConfig) -> Result<RuleOutput> {
        let Some(cards) = &input.cards else { return Ok(missing(self.id(), "card ledger", "cards LEDGER")) };
        let c = &cfg.card_buyback_below_market;
        let t = std::time::Instant::now();
        let super::prices::Prices { market, per, metrics, bins } = super::prices::prices(cards, c)?;
        crate::diag::trace("buy-back prices", t);
        // each carrier's floor as one expression over the few carriers, not a join of every card
        let (mc, mf) = (market.column("carrier")?.str()?, market.column("floor")?.f64()?);
        let floor_of = mc.iter().zip(mf.iter()).fold(lit(NULL).cast(DataType::Float64), |acc, (c, f)| {
            when(col("carrier").eq(lit(c.unwrap_or_default()))).then(lit(f.unwrap_or(f64::NAN))).otherwise(acc)
        });
        let joined = cards.clone().lazy().with_column(floor_of.alias("floor"));
        let hits = per
            .clone()
            .lazy()
            .filter(
                (col("below_floor_cards").cast(DataType::Float64) / col("cards").cast(DataType::Float64))
                    .gt_eq(lit(c.min_share))
                    .and(col("below_floor_cards").gt(lit(0)))
                    .and(col("cards").gt_eq(lit(c.min_cards as i64))),
            )
            .collect()?;
        let mut out = RuleOutput { operator_metrics: Some(metrics), ..Default::default() };
        if hits.height() == 0 {
            out.tables.push(("market", market));
            return Ok(out);
        }
        let behind = joined
            .filter(col("price_per_100").lt(col("floor")))
            .join(
                hits.clone().lazy().select([col("supplier"), col("carrier")]),
                [col("supplier"), col("carrier")],
                [col("supplier"), col("carrier")],
                JoinArgs::new(JoinType::Semi),
            )
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
        crate::diag::trace("buy-back cards behind", t);
        let sup = hits.column("supplier")?.str()?.clone();
        let behind_of = super::by_party(&behind, "supplier")?;
        let mut i = 0;
        while i < hits.height() {
            let name = sup.get(i).unwrap_or_default().to_string();
            let mut j = i;
            while j < hits.height() && sup.get(j) == sup.get(i) {
                j += 1;
            }
            let rows = hits.slice(i as i64, j - i);
            let mine = behind_of.get(&name).cloned().unwrap_or_default();
            out.findings.push(self.finding(&name, &rows, &bins, &market, &mine, input.tz)?);
            i = j;
        }
        out.tables.push(("market", market));
        out.tables.push(("cards_flagged", behind));
        Ok(out)
    }
}

impl CardBuyback {
    /// One supplier's finding over the carriers it is below the floor on (`rows` of its hits).
    fn finding(
        &self,
        name: &str,
        rows: &DataFrame,
        bins: &Bins,
        market: &DataFrame,
        mine: &DataFrame,
        tz: chrono_tz::Tz,
    ) -> Result<crate::rules::Finding> {
        let f = |c: &str| -> Result<Float64Chunked> { Ok(rows.column(c)?.cast(&DataType::Float64)?.f64()?.clone()) };
        let (p50, floor, n) = (f("p50")?, f("floor")?, f("cards")?);
        // how far below the floor: its median, or its 10th percentile when only a minority is below
        let p10 = f("p10")?;
        let gap = p50
            .iter()
            .zip(p10.iter())
            .zip(floor.iter())
            .map(|((m, lo), fl)| {
                let fl = fl.unwrap_or(0.0);
                let m = m.unwrap_or(0.0);
                if m < fl { fl - m } else { fl - lo.unwrap_or(fl) }
            })
            .fold(0.0, f64::max);
        let first = micros(rows, "first")?.min().unwrap_or(0);
        let last = micros(rows, "last")?.max().unwrap_or(0);
        let mut per_carrier = Vec::new();
        for k in 0..rows.height() {
            let carrier = rows.column("carrier")?.str()?.get(k).unwrap_or_default().to_string();
            let mine: Vec<serde_json::Value> = bins
                .get(&(name.to_string(), carrier.clone()))
                .map(|v| v.iter().map(|(b, n)| json!([b, n])).collect())
                .unwrap_or_default();
            let mkt = market.clone().lazy().filter(col("carrier").eq(lit(carrier.as_str()))).collect()?;
            let r = |df: &DataFrame, c: &str| {
                df.column(c)
                    .ok()
                    .and_then(|s| s.get(0).ok())
                    .and_then(|v| v.extract::<f64>())
                    .map(|x| crate::frame::round(x, 2))
            };
            per_carrier.push(json!({
                "carrier": carrier,
                "cards": n.get(k).unwrap_or(0.0) as i64,
                "floor": r(&mkt, "floor"),
                "market": r(&mkt, "market"),
                "market_p10_p50_p90": [r(&mkt, "p10"), r(&mkt, "p50"), r(&mkt, "p90")],
                "supplier_p10_p50_p90": [r(&rows.slice(k as i64, 1), "p10"), r(&rows.slice(k as i64, 1), "p50"), r(&rows.slice(k as i64, 1), "p90")],
                "below_floor_cards": rows.column("below_floor_cards")?.get(k)?.extract::<i64>(),
                "supplier_histogram": mine,
                "market_histogram": market_bins(bins, &carrier),
            }));
        }
        let mine = mine.drop_many(["rule", "supplier"]);
        let total: f64 = n.into_no_null_iter().sum();
        let carriers: Vec<String> = per_carrier
            .iter()
            .map(|c| {
                format!(
                    "{} at a median {} (floor {})",
                    c["carrier"].as_str().unwrap_or("?"),
                    c["supplier_p10_p50_p90"][1],
                    c["floor"]
                )
            })
            .collect();
        let summary = format!("Supplier {name} sold {total} cards below the market: {}.", carriers.join("; "));
        let evidence = json!({
            "party": "supplier",
            "cards": total as i64,
            "below_floor_cards": mine.height(),
            "max_points_below_floor": crate::frame::round(gap, 2),
            "carriers": per_carrier,
            "first_cards": rows_json(&mine, 20, tz)?,
        });
        Ok(party_finding(self.id(), name, (first, last), 0.6 + 0.2 * gap, summary, evidence))
    }
}
