//! Enrichment: E.164 numbers and countries for callers, callees and join members; IP → country.
//! Each distinct value is parsed or looked up once (in parallel with rayon) and joined back.

pub mod ip;
pub mod phone;

use anyhow::Result;
use ip::IpCountry;
use phone::ParsedNumber;
use phone::PhoneParser;
use polars::prelude::*;
use std::collections::HashMap;

/// Add `caller_e164`, `caller_country`, `caller_valid` and `callee_e164` to a CDR frame.
///
/// One pass per column with a cache of what each distinct text became (caller IDs repeat a lot);
/// plain home mobiles take an allocation-free fast path instead.
pub fn cdr_numbers(mut df: DataFrame, phones: &PhoneParser) -> Result<DataFrame> {
    let callers = df.column("caller_id")?.str()?.clone();
    // row slices in parallel, each with its own cache of the (few thousand) distinct caller IDs
    let parts: Vec<(StringChunked, StringChunked, BooleanChunked)> = crate::par::slices(callers.len(), |off, len| {
        let part = callers.slice(off as i64, len);
        let mut cache: HashMap<&str, ParsedNumber> = HashMap::new();
        let mut e164 = StringChunkedBuilder::new("caller_e164".into(), part.len());
        let mut country = StringChunkedBuilder::new("caller_country".into(), part.len());
        let mut valid: Vec<Option<bool>> = Vec::with_capacity(part.len());
        for v in part.iter() {
            match v {
                None => {
                    e164.append_null();
                    country.append_null();
                    valid.push(None);
                }
                Some(raw) => {
                    let p = cache.entry(raw).or_insert_with(|| phones.parse(raw, true));
                    e164.append_option(p.e164.as_deref());
                    country.append_option(p.country.as_deref());
                    valid.push(Some(p.valid));
                }
            }
        }
        (e164.finish(), country.finish(), BooleanChunked::from_iter_options("caller_valid".into(), valid.into_iter()))
    });
    let (mut e164, mut country, mut valid) = (vec![], vec![], vec![]);
    for (e, c, v) in parts {
        e164.push(e);
        country.push(c);
        valid.push(v);
    }
    let e164 = crate::par::concat("caller_e164", e164);
    let country = crate::par::concat("caller_country", country);
    let valid = crate::par::concat("caller_valid", valid);
    df.with_column(e164.into_column())?;
    df.with_column(country.into_column())?;
    df.with_column(valid.into_column())?;
    let callee = home_e164(df.column("callee")?.str()?, phones, "callee_e164");
    df.with_column(callee.into_column())?;
    Ok(df)
}

/// E.164 of a column of home-side numbers (callees, join members), rows split across threads.
fn home_e164(col: &StringChunked, phones: &PhoneParser, name: &str) -> StringChunked {
    let parts = crate::par::slices(col.len(), |off, len| {
        let part = col.slice(off as i64, len);
        let mut out = StringChunkedBuilder::new(name.into(), part.len());
        let mut cache: HashMap<&str, Option<String>> = HashMap::new();
        let mut buf = String::with_capacity(16);
        for v in part.iter() {
            match v {
                None => out.append_null(),
                Some(raw) => match phones.fast_national_mobile(raw) {
                    Some(d) => {
                        buf.clear();
                        buf.push_str("+86");
                        buf.push_str(d);
                        out.append_value(&buf);
                    }
                    None => {
                        let e = cache.entry(raw).or_insert_with(|| phones.parse(raw, false).e164);
                        out.append_option(e.as_deref());
                    }
                },
            }
        }
        out.finish()
    });
    crate::par::concat(name, parts)
}

/// Add `ip_country` (null without a table, an IP, or a match) and put the columns in canonical order.
pub fn cdr_ip_country(mut df: DataFrame, ips: Option<&IpCountry>) -> Result<DataFrame> {
    let out: StringChunked = match ips {
        Some(t) => {
            let col = df.column("src_ip")?.str()?.clone();
            let mut cache: HashMap<&str, Option<String>> = HashMap::new();
            let mut b = StringChunkedBuilder::new("ip_country".into(), col.len());
            for v in col.iter() {
                match v {
                    None => b.append_null(),
                    Some(ip) => b.append_option(cache.entry(ip).or_insert_with(|| t.lookup(ip)).as_deref()),
                }
            }
            b.finish()
        }
        None => StringChunked::full_null("ip_country".into(), df.height()),
    };
    df.with_column(out.into_column())?;
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
pub fn join_numbers(mut df: DataFrame, phones: &PhoneParser) -> Result<DataFrame> {
    let m = home_e164(df.column("member")?.str()?, phones, "member_e164");
    df.with_column(m.into_column())?;
    Ok(df)
}
