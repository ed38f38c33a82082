//! Per-operator totals (each partition's own) and operators.csv.

use crate::prepare::AuditInput;
use crate::rules::{self, Finding, Metric};
use anyhow::Result;
use polars::prelude::*;
use std::collections::{BTreeMap, HashMap};

/// operators.csv's own columns, in order, before the rules' metrics ([`rules::metrics`]).
const BASE_COLUMNS: &[Metric] = &[
    Metric { name: "operator_id", dtype: DataType::String, places: 0 },
    Metric { name: "risk_score", dtype: DataType::Float64, places: 3 },
    Metric { name: "rules_hit", dtype: DataType::String, places: 0 },
    Metric { name: "days_active", dtype: DataType::Int64, places: 0 },
    Metric { name: "calls", dtype: DataType::Int64, places: 0 },
    Metric { name: "answered_calls", dtype: DataType::Int64, places: 0 },
    Metric { name: "talk_h_total", dtype: DataType::Float64, places: 2 },
    Metric { name: "mean_daily_talk_h", dtype: DataType::Float64, places: 2 },
    Metric { name: "calls_outbound", dtype: DataType::Int64, places: 0 },
    Metric { name: "calls_inbound", dtype: DataType::Int64, places: 0 },
    Metric { name: "calls_internal", dtype: DataType::Int64, places: 0 },
    Metric { name: "talk_h_outbound", dtype: DataType::Float64, places: 2 },
    Metric { name: "talk_h_inbound", dtype: DataType::Float64, places: 2 },
    Metric { name: "talk_h_internal", dtype: DataType::Float64, places: 2 },
];

/// One row per operator: activity, shift, spoofing and conversion metrics, risk and rules hit.
/// Days active, calls, answered calls and talk hours per operator, each operator's contiguous row
/// range walked in place (a group-by over every call hashed 10 M operator ids). Talk is the sum of
/// the shifts' talk (each the union of its calls' talk); calls and talk by direction are summed
/// per call.
pub(super) fn operator_totals(input: &AuditInput) -> Result<DataFrame> {
    use rayon::prelude::*;
    let cdr = &input.cdr;
    let day = cdr.column("day")?.cast(&DataType::Int32)?;
    let day = day.i32()?;
    let talk = crate::frame::col_i64(cdr, "talk_s")?;
    let answered = cdr.column("answered")?.bool()?;
    let dir = cdr.column("direction")?.u32()?;
    // the union talk of each operator's shifts
    let mut union: HashMap<&str, i64> = HashMap::new();
    let (sops, stalk) = (input.shifts.column("operator_id")?.str()?, input.shifts.column("talk_s")?.i64()?);
    for (o, t) in sops.iter().zip(stalk.iter()) {
        *union.entry(o.unwrap_or("")).or_default() += t.unwrap_or(0);
    }
    // chunk tables built once (a slice of a many-chunk column per operator walked every chunk)
    use crate::frame::Chunks;
    let (day, talk, answered, dir) = (Chunks::new(day), Chunks::new(&talk), Chunks::new(answered), Chunks::new(dir));
    type Row<'a> = (&'a str, i64, i64, i64, f64, [i64; 3], [f64; 3]);
    let rows: Vec<Row> = input
        .op_rows
        .par_iter()
        .map(|(op, r)| {
            let (mut day, mut talk, mut answered, mut dir) = (day.rows(), talk.rows(), answered.rows(), dir.rows());
            // the rows are in start order, so a day like the one before is not looked up again
            let mut days = std::collections::BTreeSet::new();
            let mut last = None;
            let mut answered_n = 0i64;
            let (mut dc, mut dt) = ([0i64; 3], [0i64; 3]);
            for i in r.clone() {
                if let Some(d) = day.get(i)
                    && last != Some(d)
                {
                    days.insert(d);
                    last = Some(d);
                }
                answered_n += i64::from(answered.get(i) == Some(true));
                let d = dir.get(i).unwrap_or(3) as usize;
                if d < 3 {
                    dc[d] += 1;
                    dt[d] += talk.get(i).unwrap_or(0);
                }
            }
            let talk_h = union.get(op.as_str()).copied().unwrap_or(0) as f64 / 3600.0;
            let th = dt.map(|t| t as f64 / 3600.0);
            (op.as_str(), days.len() as i64, r.len() as i64, answered_n, talk_h, dc, th)
        })
        .collect();
    let dir_col = |name: &str, k: usize| Column::new(name.into(), rows.iter().map(|r| r.5[k]).collect::<Vec<_>>());
    let dir_talk = |name: &str, k: usize| Column::new(name.into(), rows.iter().map(|r| r.6[k]).collect::<Vec<_>>());
    Ok(DataFrame::new(
        rows.len(),
        vec![
            Column::new("operator_id".into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
            Column::new("days_active".into(), rows.iter().map(|r| r.1).collect::<Vec<_>>()),
            Column::new("calls".into(), rows.iter().map(|r| r.2).collect::<Vec<_>>()),
            Column::new("answered_calls".into(), rows.iter().map(|r| r.3).collect::<Vec<_>>()),
            Column::new("talk_h_total".into(), rows.iter().map(|r| r.4).collect::<Vec<_>>()),
            dir_col("calls_outbound", 0),
            dir_col("calls_inbound", 1),
            dir_col("calls_internal", 2),
            dir_talk("talk_h_outbound", 0),
            dir_talk("talk_h_inbound", 1),
            dir_talk("talk_h_internal", 2),
        ],
    )?)
}

/// operators.csv: totals, the rules' metrics, risk (noisy-OR of the best score per rule) and the
/// rules hit; highest risk first.
pub fn operators_table(totals: DataFrame, metrics: Vec<DataFrame>, findings: &[Finding]) -> Result<DataFrame> {
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
        ops.iter().map(|o| crate::frame::round(1.0 - best[o].values().map(|s| 1.0 - s).product::<f64>(), 3)).collect();
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
    let exprs: Vec<Expr> = BASE_COLUMNS
        .iter()
        .chain(rules::metrics())
        .map(|m| {
            let e = if have.iter().any(|h| h == m.name) { col(m.name) } else { lit(NULL) };
            let e = e.cast(m.dtype.clone());
            let e = match m.dtype {
                DataType::String => e.fill_null(lit("")),
                DataType::Float64 => e.fill_null(lit(0.0)).round(m.places, RoundMode::HalfToEven),
                _ => e.fill_null(lit(0)),
            };
            e.alias(m.name)
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
