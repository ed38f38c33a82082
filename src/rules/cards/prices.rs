//! The price distributions `card-buyback-below-market` reads, from one pass over the ledger: the
//! cards counted per (supplier, carrier, price per 100), then every quantile, floor, count and
//! histogram from those counts. Prices are in cents, so a 10 M-row ledger has some tens of
//! thousands of such groups; five group-bys over the cards (three with quantiles, which sort each
//! group) took 7.5 of the run's 16 s on 2 cores.

use super::buyback::BuybackConfig;
use anyhow::Result;
use polars::prelude::*;
use std::collections::BTreeMap;

/// Cards by (supplier, carrier) and price per 100 by half point: `(supplier, carrier) → [(from, cards)]`.
pub type Bins = BTreeMap<(String, String), Vec<(f64, u64)>>;

/// What the rule reads: market.csv's rows, per (supplier, carrier) figures, per-supplier metrics
/// and the histograms.
pub struct Prices {
    /// `carrier, cards, p10, p50, p90, market, floor`.
    pub market: DataFrame,
    /// `supplier, carrier, cards, face_total, p10, p50, p90, below_floor_cards, floor, market,
    /// first, last` (µs).
    pub per: DataFrame,
    /// `supplier, cards, face_total, median_per_100, below_floor_cards`.
    pub metrics: DataFrame,
    pub bins: Bins,
}

/// Polars' linear quantile (`QuantileMethod::Linear`: index q·(n−1), interpolated between its
/// neighbours) over values given as sorted (value, count) pairs.
pub fn wquantile(v: &[(f64, u64)], q: f64) -> Option<f64> {
    let n: u64 = v.iter().map(|x| x.1).sum();
    if n == 0 {
        return None;
    }
    let float_idx = (n as f64 - 1.0) * q;
    let idx = (float_idx as u64).min(n - 1);
    let top = float_idx.ceil() as u64;
    let at = |k: u64| {
        let mut acc = 0;
        for (x, c) in v {
            acc += c;
            if k < acc {
                return *x;
            }
        }
        v[v.len() - 1].0
    };
    let lower = at(idx);
    if top == idx {
        return Some(lower);
    }
    let upper = at(idx + 1);
    Some(if lower == upper { lower } else { (float_idx - idx as f64) * (upper - lower) + lower })
}

/// One (supplier, carrier): its prices (sorted, counted), face total, first and last acquisition.
#[derive(Default)]
struct Group {
    prices: Vec<(f64, u64)>,
    face: f64,
    first: i64,
    last: i64,
}

fn sorted(mut v: Vec<(f64, u64)>) -> Vec<(f64, u64)> {
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v
}

fn below(v: &[(f64, u64)], floor: f64) -> i64 {
    v.iter().filter(|(p, _)| *p < floor).map(|(_, n)| *n as i64).sum()
}

/// The counts per (supplier, carrier, price per 100), read once.
fn groups(cards: &DataFrame) -> Result<BTreeMap<(String, String), Group>> {
    let hist = cards
        .clone()
        .lazy()
        .group_by([col("supplier"), col("carrier"), col("price_per_100")])
        .agg([
            len().cast(DataType::UInt64).alias("n"),
            col("face_value").sum().alias("face"),
            col("acquired_at").dt().timestamp(TimeUnit::Microseconds).min().alias("first"),
            col("acquired_at").dt().timestamp(TimeUnit::Microseconds).max().alias("last"),
        ])
        .sort(["supplier", "carrier", "price_per_100"], Default::default())
        .collect()?;
    let (s, c) = (hist.column("supplier")?.str()?, hist.column("carrier")?.str()?);
    let (p, n, face) = (hist.column("price_per_100")?.f64()?, hist.column("n")?.u64()?, hist.column("face")?.f64()?);
    let (first, last) = (hist.column("first")?.i64()?, hist.column("last")?.i64()?);
    let mut out: BTreeMap<(String, String), Group> = BTreeMap::new();
    for i in 0..hist.height() {
        let key = (s.get(i).unwrap_or_default().to_string(), c.get(i).unwrap_or_default().to_string());
        let g = out.entry(key).or_insert_with(|| Group { first: i64::MAX, last: i64::MIN, ..Default::default() });
        g.prices.push((p.get(i).unwrap_or(f64::NAN), n.get(i).unwrap_or(0)));
        g.face += face.get(i).unwrap_or(0.0);
        g.first = g.first.min(first.get(i).unwrap_or(i64::MAX));
        g.last = g.last.max(last.get(i).unwrap_or(i64::MIN));
    }
    Ok(out)
}

pub fn prices(cards: &DataFrame, c: &BuybackConfig) -> Result<Prices> {
    let groups = groups(cards)?;
    // the market: every supplier's prices of a carrier
    let mut by_carrier: BTreeMap<&str, Vec<(f64, u64)>> = BTreeMap::new();
    for ((_, carrier), g) in &groups {
        by_carrier.entry(carrier).or_default().extend(g.prices.iter().copied());
    }
    let by_carrier: BTreeMap<&str, Vec<(f64, u64)>> = by_carrier.into_iter().map(|(k, v)| (k, sorted(v))).collect();
    let mut floors: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    let mut m: (Vec<&str>, Vec<i64>, [Vec<f64>; 5]) = Default::default();
    for (carrier, v) in &by_carrier {
        let q = |x: f64| wquantile(v, x).unwrap_or(f64::NAN);
        let market = q(c.market_quantile);
        let floor = if c.floor_per_100 > 0.0 { c.floor_per_100 } else { market - c.max_below_market };
        floors.insert(carrier, (floor, market));
        m.0.push(carrier);
        m.1.push(v.iter().map(|x| x.1 as i64).sum());
        for (col, x) in m.2.iter_mut().zip([q(0.1), q(0.5), q(0.9), market, floor]) {
            col.push(x);
        }
    }
    let [m10, m50, m90, mm, mf] = m.2;
    let market = DataFrame::new(
        m.0.len(),
        vec![
            Column::new("carrier".into(), m.0),
            Column::new("cards".into(), m.1),
            Column::new("p10".into(), m10),
            Column::new("p50".into(), m50),
            Column::new("p90".into(), m90),
            Column::new("market".into(), mm),
            Column::new("floor".into(), mf),
        ],
    )?;
    let per = per_group(&groups, &floors)?;
    let metrics = per_supplier(&groups, &floors)?;
    let mut bins = Bins::new();
    for (key, g) in &groups {
        let mut b: BTreeMap<i64, u64> = BTreeMap::new();
        for (p, n) in &g.prices {
            *b.entry((p * 2.0).floor() as i64).or_default() += n;
        }
        bins.insert(key.clone(), b.into_iter().map(|(k, n)| (k as f64 / 2.0, n)).collect());
    }
    Ok(Prices { market, per, metrics, bins })
}

/// Per (supplier, carrier), sorted by both.
fn per_group(groups: &BTreeMap<(String, String), Group>, floors: &BTreeMap<&str, (f64, f64)>) -> Result<DataFrame> {
    let (mut sup, mut car, mut cards, mut face, mut below_n) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut q10, mut q50, mut q90, mut fl, mut mk, mut first, mut last) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for ((s, c), g) in groups {
        let (floor, market) = floors.get(c.as_str()).copied().unwrap_or((f64::NAN, f64::NAN));
        sup.push(s.as_str());
        car.push(c.as_str());
        cards.push(g.prices.iter().map(|x| x.1 as i64).sum::<i64>());
        face.push(g.face);
        q10.push(wquantile(&g.prices, 0.1));
        q50.push(wquantile(&g.prices, 0.5));
        q90.push(wquantile(&g.prices, 0.9));
        below_n.push(below(&g.prices, floor));
        fl.push(floor);
        mk.push(market);
        first.push(g.first);
        last.push(g.last);
    }
    Ok(DataFrame::new(
        sup.len(),
        vec![
            Column::new("supplier".into(), sup),
            Column::new("carrier".into(), car),
            Column::new("cards".into(), cards),
            Column::new("face_total".into(), face),
            Column::new("p10".into(), q10),
            Column::new("p50".into(), q50),
            Column::new("p90".into(), q90),
            Column::new("below_floor_cards".into(), below_n),
            Column::new("floor".into(), fl),
            Column::new("market".into(), mk),
            Column::new("first".into(), first),
            Column::new("last".into(), last),
        ],
    )?)
}

/// Per supplier over its carriers: suppliers.csv's price columns.
fn per_supplier(groups: &BTreeMap<(String, String), Group>, floors: &BTreeMap<&str, (f64, f64)>) -> Result<DataFrame> {
    // per supplier: its prices, face total, cards below their carrier's floor
    type Folded = (Vec<(f64, u64)>, f64, i64);
    let mut all: BTreeMap<&str, Folded> = BTreeMap::new();
    for ((s, c), g) in groups {
        let e = all.entry(s.as_str()).or_default();
        e.0.extend(g.prices.iter().copied());
        e.1 += g.face;
        e.2 += below(&g.prices, floors.get(c.as_str()).map_or(f64::NAN, |f| f.0));
    }
    let (mut sup, mut cards, mut face, mut median, mut below_n) = (vec![], vec![], vec![], vec![], vec![]);
    for (s, (v, f, b)) in all {
        let v = sorted(v);
        sup.push(s);
        cards.push(v.iter().map(|x| x.1 as i64).sum::<i64>());
        face.push(f);
        median.push(wquantile(&v, 0.5));
        below_n.push(b);
    }
    Ok(DataFrame::new(
        sup.len(),
        vec![
            Column::new("supplier".into(), sup),
            Column::new("cards".into(), cards),
            Column::new("face_total".into(), face),
            Column::new("median_per_100".into(), median),
            Column::new("below_floor_cards".into(), below_n),
        ],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_quantiles_are_polars_linear_quantiles() {
        let values = [97.5, 97.5, 98.0, 99.1, 99.5, 99.5, 99.5, 99.7, 99.8, 99.8, 99.9];
        let s = Float64Chunked::from_slice("x".into(), &values);
        let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
        for v in values {
            *counts.entry(v.to_bits()).or_default() += 1;
        }
        let pairs = sorted(counts.into_iter().map(|(b, n)| (f64::from_bits(b), n)).collect());
        for q in [0.0, 0.1, 0.25, 0.5, 0.9, 0.95, 1.0] {
            let want = s.quantile(q, QuantileMethod::Linear).unwrap().unwrap();
            assert!((wquantile(&pairs, q).unwrap() - want).abs() < 1e-12, "q {q}");
        }
        assert_eq!(wquantile(&[], 0.5), None);
    }
}
