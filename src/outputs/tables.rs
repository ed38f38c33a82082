//! shifts.csv, operators.csv and the rules' extra tables, as spreadsheet-safe CSV with local times.

use super::write_atomic;
use anyhow::Result;
use chrono_tz::Tz;
use polars::prelude::*;
use std::path::Path;

/// shifts.csv: every shift, local times, hours rounded, `flagged` at `min_talk_s` of talk or more.
pub fn write_shifts(out: &Path, shifts: &DataFrame, tz: Tz, min_talk_s: i64, excel: bool) -> Result<()> {
    let mut shifts = shifts
        .clone()
        .lazy()
        .sort(["operator_id", "shift_start_us"], SortMultipleOptions::default())
        .select([
            col("operator_id"),
            col("day"),
            local_expr("shift_start_us", tz).alias("shift_start"),
            local_expr("shift_end_us", tz).alias("shift_end"),
            (col("span_s").cast(DataType::Float64) / lit(3600.0)).round(2, RoundMode::HalfToEven).alias("span_h"),
            col("talk_h").round(2, RoundMode::HalfToEven),
            col("calls"),
            col("answered"),
            col("distinct_callees"),
            col("occupancy").round(3, RoundMode::HalfToEven),
            col("calls_outbound"),
            col("calls_inbound"),
            col("calls_internal"),
            hours("talk_outbound_s").alias("talk_outbound_h"),
            hours("talk_inbound_s").alias("talk_inbound_h"),
            hours("talk_internal_s").alias("talk_internal_h"),
            hours("talk_sum_s").alias("talk_summed_h"),
            col("peak_concurrent"),
            col("talk_s").gt_eq(lit(min_talk_s)).alias("flagged"),
        ])
        .collect()?;
    write_frame(&out.join("shifts.csv"), &mut shifts, excel)
}

/// Seconds as hours, 2 places.
fn hours(name: &str) -> Expr {
    (col(name).cast(DataType::Float64) / lit(3600.0)).round(2, RoundMode::HalfToEven)
}

/// A rule's table as `<name>.csv`, its `_us` columns as local times (`first_join_us` → `first_join`).
pub fn write_table(out: &Path, name: &str, df: &DataFrame, tz: Tz, excel: bool) -> Result<()> {
    let us: Vec<String> = df.get_column_names().iter().filter(|n| n.ends_with("_us")).map(|n| n.to_string()).collect();
    let mut lf = df.clone().lazy();
    for n in &us {
        lf = lf.with_column(local_expr(n, tz).alias(n.trim_end_matches("_us")));
    }
    let mut table = lf.drop(cols(us.iter().map(String::as_str).collect::<Vec<_>>())).collect()?;
    // a table of `--sms` (sms_flagged) has datetime columns: local times too
    if table.columns().iter().any(|c| matches!(c.dtype(), DataType::Datetime(..))) {
        return write_local_table(out, name, &mut table, tz, excel);
    }
    write_frame(&out.join(format!("{name}.csv")), &mut table, excel)
}

/// A `cards` table as `<name>.csv`: its datetime columns as local times, its floats to 3 places.
pub fn write_local_table(out: &Path, name: &str, df: &mut DataFrame, tz: Tz, excel: bool) -> Result<()> {
    let times: Vec<Expr> = df
        .columns()
        .iter()
        .filter_map(|c| match c.dtype() {
            DataType::Datetime(..) => Some(local_expr(c.name(), tz).alias(c.name().clone())),
            DataType::Float64 => Some(col(c.name().clone()).round(3, RoundMode::HalfToEven)),
            _ => None,
        })
        .collect();
    let mut table = df.clone().lazy().with_columns(times).collect()?;
    write_frame(&out.join(format!("{name}.csv")), &mut table, excel)
}

/// A UTC-µs column as local `YYYY-MM-DD HH:MM:SS` text.
fn local_expr(name: &str, tz: Tz) -> Expr {
    col(name).map(
        move |c: Column| {
            let us = c.to_physical_repr().cast(&DataType::Int64)?;
            Ok(crate::frame::local_seconds_texts(us.i64()?, tz).into_column())
        },
        |_, f| Ok(Field::new(f.name().clone(), DataType::String)),
    )
}

/// A frame as CSV, spreadsheet-safe, optionally with a BOM.
pub fn write_frame(path: &Path, df: &mut DataFrame, excel: bool) -> Result<()> {
    let mut safe = crate::report::csv_safe::frame(df)?;
    write_atomic(path, |w| {
        if excel {
            w.write_all(b"\xEF\xBB\xBF")?;
        }
        CsvWriter::new(w).include_header(true).finish(&mut safe)?;
        Ok(())
    })
}
