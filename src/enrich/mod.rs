//! Enrichment: E.164 numbers and countries for callers, callees and join members; IP → country.
//! Each distinct value is parsed or looked up once (in parallel with rayon) and joined back.

pub mod ip;
pub mod phone;

use anyhow::Result;
use ip::IpCountry;
use phone::PhoneParser;
use polars::prelude::*;
use rayon::prelude::*;

fn distinct(df: &DataFrame, name: &str) -> Result<Vec<String>> {
    let u = df.column(name)?.unique()?;
    Ok(u.str()?.iter().flatten().map(str::to_string).collect())
}

fn left_join_on(df: DataFrame, map: DataFrame, key: &str) -> Result<DataFrame> {
    let mut args = JoinArgs::new(JoinType::Left);
    args.maintain_order = MaintainOrderJoin::Left;
    Ok(df.lazy().join(map.lazy(), [col(key)], [col(key)], args).collect()?)
}

/// Add `caller_e164`, `caller_country`, `caller_valid` and `callee_e164` to a CDR frame.
pub fn cdr_numbers(df: DataFrame, phones: &PhoneParser) -> Result<DataFrame> {
    let callers = distinct(&df, "caller_id")?;
    let parsed: Vec<_> = callers.par_iter().map(|c| phones.parse(c, true)).collect();
    let map = DataFrame::new(
        callers.len(),
        vec![
            StringChunked::from_iter_values("caller_id".into(), callers.iter().map(String::as_str)).into_column(),
            StringChunked::from_iter_options("caller_e164".into(), parsed.iter().map(|p| p.e164.as_deref()))
                .into_column(),
            StringChunked::from_iter_options("caller_country".into(), parsed.iter().map(|p| p.country.as_deref()))
                .into_column(),
            BooleanChunked::from_iter_values("caller_valid".into(), parsed.iter().map(|p| p.valid)).into_column(),
        ],
    )?;
    let df = left_join_on(df, map, "caller_id")?;

    let callees = distinct(&df, "callee")?;
    let parsed: Vec<Option<String>> = callees.par_iter().map(|c| phones.parse(c, false).e164).collect();
    let map = DataFrame::new(
        callees.len(),
        vec![
            StringChunked::from_iter_values("callee".into(), callees.iter().map(String::as_str)).into_column(),
            StringChunked::from_iter_options("callee_e164".into(), parsed.iter().map(|p| p.as_deref())).into_column(),
        ],
    )?;
    left_join_on(df, map, "callee")
}

/// Add `ip_country` (null without a table, an IP, or a match) and put the columns in canonical order.
pub fn cdr_ip_country(df: DataFrame, ips: Option<&IpCountry>) -> Result<DataFrame> {
    let addrs = distinct(&df, "src_ip")?;
    let countries: Vec<Option<String>> = match ips {
        Some(t) => addrs.par_iter().map(|a| t.lookup(a)).collect(),
        None => vec![None; addrs.len()],
    };
    let map = DataFrame::new(
        addrs.len(),
        vec![
            StringChunked::from_iter_values("src_ip".into(), addrs.iter().map(String::as_str)).into_column(),
            StringChunked::from_iter_options("ip_country".into(), countries.iter().map(|c| c.as_deref())).into_column(),
        ],
    )?;
    let df = left_join_on(df, map, "src_ip")?;
    Ok(df.select(CANONICAL_CDR)?)
}

/// The canonical CDR schema, in order (see the README).
pub const CANONICAL_CDR: [&str; 22] = [
    "call_id",
    "operator_id",
    "start_time",
    "answer_time",
    "end_time",
    "duration_s",
    "talk_s",
    "caller_id",
    "caller_e164",
    "caller_country",
    "caller_valid",
    "callee",
    "callee_e164",
    "src_ip",
    "ip_country",
    "disposition",
    "campaign",
    "cli_group",
    "trunk",
    "source_file",
    "source_line",
    "__file",
];

/// Add `member_e164` to a join log frame.
pub fn join_numbers(df: DataFrame, phones: &PhoneParser) -> Result<DataFrame> {
    let members = distinct(&df, "member")?;
    let parsed: Vec<Option<String>> = members.par_iter().map(|c| phones.parse(c, false).e164).collect();
    let map = DataFrame::new(
        members.len(),
        vec![
            StringChunked::from_iter_values("member".into(), members.iter().map(String::as_str)).into_column(),
            StringChunked::from_iter_options("member_e164".into(), parsed.iter().map(|p| p.as_deref())).into_column(),
        ],
    )?;
    left_join_on(df, map, "member")
}
