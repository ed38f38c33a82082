use super::{LedgerInput, LedgerRule, missing, party_finding, rows_json};
use crate::rules::{Metric, RuleDoc, RuleOutput, RulesConfig};
use anyhow::Result;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub struct CardRetailAboveFace;

/// `[rules.card_retail_above_face]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetailConfig {
    /// A sale above 100 + this per 100 of face value is above face. Default 1.0.
    pub tolerance_per_100: f64,
    /// Sales above face a shop needs. Default 5.
    pub min_sales: u32,
    /// Share of its sales that are above face. Default 0.2.
    pub min_share: f64,
}

impl Default for RetailConfig {
    fn default() -> Self {
        Self { tolerance_per_100: 1.0, min_sales: 5, min_share: 0.2 }
    }
}

pub const TOML: &str = r#"[rules.card_retail_above_face]
tolerance_per_100 = 1.0     # a sale above 100 + this per 100 of face value is above face
min_sales = 5               # sales above face a shop needs
min_share = 0.2             # share of its sales that are above face

"#;

const METRICS: &[Metric] = &[
    Metric { name: "sales", dtype: DataType::Int64, places: 0 },
    Metric { name: "above_face_sales", dtype: DataType::Int64, places: 0 },
    Metric { name: "above_face_share", dtype: DataType::Float64, places: 3 },
    Metric { name: "median_sale_per_100", dtype: DataType::Float64, places: 2 },
    Metric { name: "above_face_buyers", dtype: DataType::Int64, places: 0 },
    Metric { name: "premium_paid", dtype: DataType::Float64, places: 2 },
];

const DOC: &str = "\
card-retail-above-face: a card shop selling prepaid cards above their face value

## What it does
Over a card shop's sales log (cards --sales): a sale priced above 100 + tolerance_per_100 (1.0)
per 100 of face value is above face. A shop with at least min_sales (5) such sales, min_share
(0.2) of its sales, is a finding; score 0.5 plus 0.05 per point of its median premium (at most
1.0). The evidence lists the sales, the buyers, the premium they paid and, when the ledger is
given too, which of the cards the recharge provider bought back, from which supplier, and how fast
they were redeemed: the chain from victim to launderer.

## Why it matters
Nobody buys a 100-yuan card for 110 in a market where every shop sells at face or below, except
a victim told to by a \"customer service\" keyboard operator (the seed's 任信数卡商城).

## Example
Shop 任信数卡商城 sold 312 cards of 100 at 110 to 41 buyers (3 120 yuan of premium); 290 of them
were bought back by 速通寄售 at 97.5 and redeemed within 2 minutes: high.";

impl RuleDoc for CardRetailAboveFace {
    fn id(&self) -> &'static str {
        "card-retail-above-face"
    }
    fn summary(&self) -> &'static str {
        "A card shop selling prepaid cards above face value (what only a scam's victims pay)"
    }
    fn explain(&self) -> &'static str {
        DOC
    }
    fn defaults(&self, cfg: &RulesConfig) -> String {
        let c = &cfg.card_retail_above_face;
        format!("tolerance_per_100 = {}, min_sales = {}, min_share = {}", c.tolerance_per_100, c.min_sales, c.min_share)
    }
    fn metrics(&self) -> &'static [Metric] {
        METRICS
    }
    fn config_toml(&self) -> &'static str {
        TOML
    }
    fn validate(&self, cfg: &RulesConfig) -> Result<()> {
        let c = &cfg.card_retail_above_face;
        anyhow::ensure!(
            c.tolerance_per_100 >= 0.0 && (0.0..=1.0).contains(&c.min_share),
            "rules.card_retail_above_face: need tolerance_per_100 >= 0 and 0 <= min_share <= 1"
        );
        Ok(())
    }
}

impl LedgerRule for CardRetailAboveFace {
    fn run(&self, input: &LedgerInput, cfg: &RulesConfig) -> Result<RuleOutput> {
        let Some(sales) = &input.sales else { return Ok(missing(self.id(), "card sales log", "--sales FILE")) };
        let c = &cfg.card_retail_above_face;
        let lf =
            sales.clone().lazy().with_column(col("price_per_100").gt(lit(100.0 + c.tolerance_per_100)).alias("above"));
        let per = lf
            .clone()
            .group_by([col("shop")])
            .agg([
                len().cast(DataType::Int64).alias("sales"),
                col("above").sum().cast(DataType::Int64).alias("above_face_sales"),
                col("price_per_100").median().alias("median_sale_per_100"),
                col("buyer").filter(col("above")).n_unique().cast(DataType::Int64).alias("above_face_buyers"),
                (col("sale_price") - col("face_value")).filter(col("above")).sum().alias("premium_paid"),
                col("price_per_100").filter(col("above")).median().alias("median_above"),
                col("sold_at").filter(col("above")).min().alias("first"),
                col("sold_at").filter(col("above")).max().alias("last"),
            ])
            .with_column(
                (col("above_face_sales").cast(DataType::Float64) / col("sales").cast(DataType::Float64))
                    .alias("above_face_share"),
            )
            .sort(["shop"], Default::default())
            .collect()?;
        let metrics = per.select([
            "shop",
            "sales",
            "above_face_sales",
            "above_face_share",
            "median_sale_per_100",
            "above_face_buyers",
            "premium_paid",
        ])?;
        let mut out = RuleOutput { operator_metrics: Some(metrics), ..Default::default() };
        let hits = per
            .lazy()
            .filter(
                col("above_face_sales")
                    .gt_eq(lit(c.min_sales as i64))
                    .and(col("above_face_share").gt_eq(lit(c.min_share))),
            )
            .collect()?;
        if hits.height() == 0 {
            return Ok(out);
        }
        let mut above = lf
            .filter(col("above"))
            .join(
                hits.clone().lazy().select([col("shop")]),
                [col("shop")],
                [col("shop")],
                JoinArgs::new(JoinType::Semi),
            )
            .select([
                col("shop"),
                col("card_ref"),
                col("card_tail"),
                col("carrier"),
                col("face_value"),
                col("sale_price"),
                col("price_per_100"),
                col("sold_at"),
                col("buyer"),
                col("order_id"),
            ]);
        // the chain: which of these cards the provider bought back, from whom, how fast it used them
        if let Some(cards) = &input.cards {
            // only the ledger rows of these cards: a left join on all 10 M rows hashed them all
            let sold = above.clone().select([col("card_ref")]).drop_nulls(None).collect()?;
            let sold = sold.column("card_ref")?.as_materialized_series().clone();
            let ledger = cards.clone().lazy().filter(col("card_ref").is_in(lit(sold).implode(false), false)).select([
                col("card_ref"),
                col("supplier").alias("bought_back_from"),
                col("price_per_100").alias("buyback_per_100"),
                col("dwell_s").alias("buyback_dwell_s"),
            ]);
            above = above.join(ledger, [col("card_ref")], [col("card_ref")], JoinArgs::new(JoinType::Left));
        }
        let above = above.sort(["shop", "sold_at"], Default::default()).collect()?;
        for i in 0..hits.height() {
            out.findings.push(self.finding(&hits.slice(i as i64, 1), &above, input.tz)?);
        }
        out.tables.push(("sales_flagged", above));
        Ok(out)
    }
}

impl CardRetailAboveFace {
    /// One flagged shop's finding (`row`: its line of the per-shop table).
    fn finding(&self, row: &DataFrame, above: &DataFrame, tz: chrono_tz::Tz) -> Result<crate::rules::Finding> {
        let name = row.column("shop")?.str()?.get(0).unwrap_or_default().to_string();
        let g = |c: &str| super::cell_f64(row, c);
        let mine = above.clone().lazy().filter(col("shop").eq(lit(name.as_str()))).drop(cols(["shop"])).collect()?;
        let chain = if mine.get_column_names().iter().any(|n| n.as_str() == "bought_back_from") {
            let t = mine
                .clone()
                .lazy()
                .filter(col("bought_back_from").is_not_null())
                .group_by([col("bought_back_from")])
                .agg([
                    len().cast(DataType::Int64).alias("cards"),
                    col("buyback_per_100").median().alias("median_per_100"),
                    col("buyback_dwell_s").cast(DataType::Float64).median().alias("median_dwell_s"),
                ])
                .sort(["bought_back_from"], Default::default())
                .collect()?;
            rows_json(&t, 50, tz)?
        } else {
            Vec::new()
        };
        let (n, share, med, premium, buyers) = (
            g("above_face_sales")?,
            g("above_face_share")?,
            g("median_above")?,
            g("premium_paid")?,
            g("above_face_buyers")?,
        );
        let summary = format!(
            "Shop {name} sold {n} cards above face value (median {med:.1} per 100, {:.0} % of its sales) to {buyers} buyers, {premium:.0} of premium.",
            share * 100.0
        );
        let evidence = json!({
            "party": "shop",
            "sales": g("sales")? as i64,
            "above_face_sales": n as i64,
            "above_face_share": crate::frame::round(share, 3),
            "median_above_per_100": crate::frame::round(med, 2),
            "buyers": buyers as i64,
            "premium_paid": crate::frame::round(premium, 2),
            "bought_back": chain,
            "first_sales": rows_json(&mine, 20, tz)?,
        });
        let window = super::window(row)?;
        Ok(party_finding(self.id(), &name, window, 0.5 + 0.05 * (med - 100.0), summary, evidence))
    }
}
