//! `normalize`'s half of a scan: the loader and enrichment of [`super::stage`] (formats, legs and
//! direction, E.164, countries, IP countries, duplicates, rejects, redaction) without the rules,
//! as one frame of the canonical schema with every text decoded, for `normalize` to write as
//! Parquet that another engine (spark/) judges without parsing a number or an address again.

use super::Context;
use crate::load::{self, LoadOptions, Loaded};
use crate::setup::ScanPlan;
use anyhow::Result;
use indicatif::ProgressBar;
use polars::prelude::*;
use std::cell::OnceCell;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The version of the canonical Parquet schema (docs/scale-out.md): a reader refuses another.
pub const SCHEMA_VERSION: u32 = 1;

/// The canonical columns `normalize` writes, in order, with their Parquet types (docs/scale-out.md).
pub const COLUMNS: [(&str, &str); 29] = [
    ("ref", "string"),
    ("leg_id", "string"),
    ("operator_id", "string"),
    ("direction", "string"),
    ("start_us", "int64"),
    ("answer_us", "int64"),
    ("end_us", "int64"),
    ("duration_s", "int64"),
    ("talk_s", "int64"),
    ("answered", "bool"),
    ("disposition", "string"),
    ("caller_id", "string"),
    ("caller_e164", "string"),
    ("caller_num", "int64"),
    ("caller_country", "string"),
    ("caller_valid", "bool"),
    ("callee", "string"),
    ("callee_num", "int64"),
    ("src_ip", "string"),
    ("ip_country", "string"),
    ("src_net", "int64"),
    ("src_network", "string"),
    ("campaign", "string"),
    ("trunk", "string"),
    ("cli_group", "string"),
    ("monitored", "string"),
    ("subscriber", "bool"),
    ("source_file", "string"),
    ("source_line", "int64"),
];

/// Every CDR of the inputs in the canonical schema (UTC µs times, texts decoded; `day` the local
/// day of the start), with the file reports, rejects and the join log.
pub struct Canonical {
    pub loaded: Loaded,
    pub joins: Option<Loaded>,
    pub cdr: DataFrame,
}

/// Load and enrich `paths` as a whole scan would, and stop before the rules.
pub fn canonical(plan: &ScanPlan, paths: &[PathBuf], pb: &ProgressBar) -> Result<Canonical> {
    let setup = &plan.setup;
    // every optional field is read: the engine downstream decides what it needs
    let cx = Context {
        plan,
        paths,
        load: LoadOptions { skip: vec![], coded: true, ..setup.load.clone() },
        prepare: OnceCell::new(),
        joins: OnceCell::new(),
        ips: OnceCell::new(),
        times: RefCell::new(BTreeMap::new()),
    };
    let (mut loaded, frame, dicts) = super::stage::enriched(&cx, None, pb)?;
    let joins = cx.joins.into_inner().flatten();
    let cdr = decoded(frame, &dicts, &loaded)?;
    loaded.frame = DataFrame::empty();
    Ok(Canonical { loaded, joins, cdr })
}

/// The enriched frame in the canonical schema: coded texts decoded, codes named, times as µs.
fn decoded(mut cdr: DataFrame, dicts: &crate::coded::Dicts, loaded: &Loaded) -> Result<DataFrame> {
    for name in crate::coded::CODED {
        if cdr.column(name).is_ok_and(|c| c.dtype() == &DataType::UInt32) {
            let texts: StringChunked = {
                let c = dicts.column(&cdr, name)?;
                (0..cdr.height()).map(|i| c.get(i)).collect()
            };
            cdr.with_column(texts.with_name(name.into()).into_column())?;
        }
    }
    let names = |list: &[&str], codes: &UInt32Chunked, name: &str| -> StringChunked {
        codes
            .iter()
            .map(|c| c.and_then(|c| list.get(c as usize).copied()))
            .collect::<StringChunked>()
            .with_name(name.into())
    };
    let dir = names(&load::legs::DIRECTIONS, cdr.column("direction")?.u32()?, "direction");
    let disp = names(&load::normalize::DISPOSITIONS, cdr.column("disposition")?.u32()?, "disposition");
    cdr.with_column(dir.into_column())?;
    cdr.with_column(disp.into_column())?;
    let subscriber: BooleanChunked = cdr
        .column("__file")?
        .u32()?
        .iter()
        .map(|f| Some(f.is_some_and(|f| loaded.subscriber_files.contains(&f))))
        .collect();
    cdr.with_column(subscriber.with_name("subscriber".into()).into_column())?;
    // the source network the crew analysis ties operators by (IPv4 /24, IPv6 /48), as a key and
    // as text, each distinct address parsed once
    let (net, net_text) = networks(cdr.column("src_ip")?.str()?);
    cdr.with_column(net.into_column())?;
    cdr.with_column(net_text.into_column())?;
    let us = |name: &str| col(name).dt().timestamp(TimeUnit::Microseconds);
    // an optional field the input had no column for is a null column of its own name
    let have: Vec<String> = cdr.get_column_names().iter().map(|s| s.to_string()).collect();
    let text = |name: &str| match have.iter().any(|h| h == name) {
        true => col(name).cast(DataType::String),
        false => lit(NULL).cast(DataType::String).alias(name),
    };
    let exprs = vec![
        coalesce(&[
            col("leg_id"),
            concat_str([col("source_file"), col("source_line").cast(DataType::String)], ":", false),
        ])
        .alias("ref"),
        col("leg_id"),
        col("operator_id"),
        col("direction"),
        us("start_time").alias("start_us"),
        us("answer_time").alias("answer_us"),
        us("end_time").alias("end_us"),
        col("duration_s").cast(DataType::Int64),
        col("talk_s").cast(DataType::Int64),
        // as `prepare` reads it: talk time, or a switch that says so
        (col("talk_s")
            .gt(lit(0i64))
            .fill_null(lit(false))
            .or(col("disposition").eq(lit("ANSWERED")).fill_null(lit(false))))
        .alias("answered"),
        col("disposition"),
        text("caller_id"),
        text("caller_e164"),
        col("caller_num").cast(DataType::Int64),
        col("caller_country"),
        col("caller_valid"),
        text("callee"),
        col("callee_num").cast(DataType::Int64),
        text("src_ip"),
        text("ip_country"),
        col("src_net"),
        col("src_network"),
        text("campaign"),
        text("trunk"),
        text("cli_group"),
        text("monitored"),
        col("subscriber"),
        col("source_file"),
        col("source_line").cast(DataType::Int64),
    ];
    Ok(cdr.lazy().select(exprs).collect()?)
}

/// Each row's source network ([`crate::rules::crew::facts::network_value`]) as `src_net` (int64)
/// and `src_network` (`36.96.1.0/24`).
fn networks(ips: &StringChunked) -> (Int64Chunked, StringChunked) {
    use crate::rules::crew::facts::{network_text, network_value};
    let mut seen: std::collections::HashMap<&str, Option<u64>> = Default::default();
    let nets: Vec<Option<u64>> =
        ips.iter().map(|ip| ip.and_then(|ip| *seen.entry(ip).or_insert_with(|| network_value(ip)))).collect();
    let key: Int64Chunked = nets.iter().map(|n| n.map(|n| n as i64)).collect();
    let text: StringChunked = nets.iter().map(|n| n.map(network_text)).collect();
    (key.with_name("src_net".into()), text.with_name("src_network".into()))
}
