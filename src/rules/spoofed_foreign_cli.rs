use super::{AuditInput, Finding, Rule, RuleDoc, RuleOutput, Severity, col_i64, col_str, local, round, utc, words};
use crate::config::Config;
use anyhow::Result;
use polars::prelude::*;
use serde_json::json;

pub struct SpoofedForeignCli;

pub const DOC: &str = "\
spoofed-foreign-cli: a foreign caller ID shown while the call came from home soil

## What it does
Looks at calls whose caller ID, parsed as E.164, belongs to another region than the home region
(whatever the written form: +44..., 0044...), and keeps those that demonstrably originated at home:
the source / login IP geolocates to the home country (IPv4 or IPv6, from --ip-country), or the
campaign or trunk is listed as domestic in the config (`domestic_campaigns`, `domestic_trunks`).
One finding per operator and local day with at least `min_calls` (default 5) such calls: how many,
which caller IDs, which countries they showed, where the calls came from, and which caller IDs fail
libphonenumber validation (unallocated or virtual ranges).

## Why it matters
Diversion operators sit at home and dial through overseas virtual-number software: the callee sees a
foreign number. The Shanghai case was cracked because a \"foreign\" number calling victims at high
frequency logged in from inside China. An overseas call centre showing foreign numbers from foreign
IPs is not spoofing and is not flagged. Without IP-country data and without domestic campaigns or
trunks in the config the rule cannot tell, says so in run.json, and does not guess.

## Example
Operator op00003 showed 6 foreign caller IDs (GB, US, KH; 2 invalid) on 212 calls on 2026-03-02,
all from home IPs (CN): high.
Not flagged: an overseas team in Manila showing +63 numbers from Philippine IPs.";

impl RuleDoc for SpoofedForeignCli {
    fn id(&self) -> &'static str {
        "spoofed-foreign-cli"
    }
    fn summary(&self) -> &'static str {
        "foreign caller IDs shown on calls that came from home soil (home IP country, domestic campaign or trunk)"
    }
    fn explain(&self) -> &'static str {
        DOC
    }
    fn defaults(&self, cfg: &Config) -> String {
        let c = &cfg.rules.spoofed_foreign_cli;
        format!(
            "min_calls = {}, domestic_campaigns = {:?}, domestic_trunks = {:?}",
            c.min_calls, c.domestic_campaigns, c.domestic_trunks
        )
    }
}

impl Rule for SpoofedForeignCli {
    fn run(&self, input: &AuditInput, cfg: &Config) -> Result<RuleOutput> {
        let c = &cfg.rules.spoofed_foreign_cli;
        let mut out = RuleOutput::default();
        if !input.has_ip_country && c.domestic_campaigns.is_empty() && c.domestic_trunks.is_empty() {
            out.notes.push(
                "spoofed-foreign-cli: no IP-country data (--ip-country) and no domestic campaigns or trunks \
                 configured: the origin of calls is unknown, so spoofing was not assessed"
                    .into(),
            );
            return Ok(out);
        }
        let spoofed = spoofed_calls(input, cfg)?;
        let g = spoofed
            .clone()
            .lazy()
            // already in operator and start order (a filter of the prepared frame)
            .group_by_stable([col("operator_id"), col("day")])
            .agg([
                len().cast(DataType::Int64).alias("calls"),
                col("caller_num").n_unique().cast(DataType::Int64).alias("distinct_clis"),
                col("caller_e164").unique_stable().str().join(" ", true).alias("clis"),
                col("caller_country").unique_stable().str().join(" ", true).alias("countries"),
                col("origin").unique_stable().str().join(" ", true).alias("origins"),
                col("caller_e164")
                    .filter(col("caller_valid").not())
                    .unique_stable()
                    .str()
                    .join(" ", true)
                    .alias("invalid_clis"),
                col("start_us").min().alias("first_us"),
                col("end_us").max().alias("last_us"),
                col("ref").head(Some(20)).str().join(" ", true).alias("refs"),
            ])
            .filter(col("calls").gt_eq(lit(c.min_calls as i64)))
            .with_column(col("day").cast(DataType::String))
            .collect()?;
        let ops = col_str(&g, "operator_id")?;
        let days = col_str(&g, "day")?;
        let calls = col_i64(&g, "calls")?;
        let ncli = col_i64(&g, "distinct_clis")?;
        let (clis, countries, origins, invalid, refs) = (
            col_str(&g, "clis")?,
            col_str(&g, "countries")?,
            col_str(&g, "origins")?,
            col_str(&g, "invalid_clis")?,
            col_str(&g, "refs")?,
        );
        let (first, last) = (col_i64(&g, "first_us")?, col_i64(&g, "last_us")?);
        for i in 0..g.height() {
            let op = ops.get(i).unwrap_or_default();
            let n = calls.get(i).unwrap_or(0);
            let invalid_list = words(invalid.get(i));
            let n_invalid = invalid_list.as_array().map_or(0, Vec::len);
            let k = ncli.get(i).unwrap_or(0);
            let mut score: f64 = 0.6;
            if n >= 20 {
                score += 0.2;
            }
            if n_invalid > 0 {
                score += 0.1;
            }
            if k >= 3 {
                score += 0.1; // rotating through a caller-ID pool
            }
            let score = round(score.min(1.0), 2);
            let shown = countries.get(i).unwrap_or("").replace(' ', ", ");
            let from = origins.get(i).unwrap_or("").replace(' ', ", ");
            let inv =
                if n_invalid > 0 { format!("; {n_invalid} of them fail number validation") } else { String::new() };
            out.findings.push(Finding {
                rule: self.id(),
                severity: Severity::from_score(score),
                operator_id: Some(op.to_string()),
                subject: (k == 1).then(|| clis.get(i).unwrap_or("").to_string()),
                window_start: utc(first.get(i).unwrap_or(0)),
                window_end: utc(last.get(i).unwrap_or(0)),
                score,
                summary: format!(
                    "Operator {op} showed {k} foreign caller ID(s) ({shown}) on {n} calls on {} while the calls came from home ({from}){inv}.",
                    days.get(i).unwrap_or("")
                ),
                evidence: json!({
                    "day": days.get(i),
                    "calls": n,
                    "distinct_clis": k,
                    "clis": words(clis.get(i)),
                    "countries_shown": words(countries.get(i)),
                    "origin": words(origins.get(i)),
                    "invalid_clis": invalid_list,
                    "first_call": local(first.get(i).unwrap_or(0), input.tz),
                    "last_call": local(last.get(i).unwrap_or(0), input.tz),
                    "calls_ref": words(refs.get(i)),
                }),
            });
        }
        out.operator_metrics = Some(
            spoofed
                .lazy()
                .group_by([col("operator_id")])
                .agg([
                    len().cast(DataType::UInt32).alias("spoofed_calls"),
                    col("caller_num").n_unique().cast(DataType::UInt32).alias("distinct_foreign_clis"),
                ])
                .collect()?,
        );
        Ok(out)
    }
}

/// Calls showing a foreign caller ID that came from home, with `origin` saying how we know
/// (`ip:CN`, `campaign:…`, `trunk:…`).
pub fn spoofed_calls(input: &AuditInput, cfg: &Config) -> Result<DataFrame> {
    let c = &cfg.rules.spoofed_foreign_cli;
    let home = input.home_region.as_str();
    // (campaign and trunk columns are kept by `prepare` only when a list names some)
    let list_expr = |v: &[String]| lit(Series::new("l".into(), v.to_vec())).implode(false);
    let null = || lit(NULL).cast(DataType::String);
    let ip_home = col("ip_country").eq(lit(home)).fill_null(lit(false));
    // the first that holds: home IP, a domestic campaign, a domestic trunk
    let mut origins =
        vec![when(ip_home).then(concat_str([lit("ip:"), col("ip_country")], "", false)).otherwise(null())];
    if !c.domestic_campaigns.is_empty() {
        let dom = col("campaign").is_in(list_expr(&c.domestic_campaigns), false).fill_null(lit(false));
        origins.push(when(dom).then(concat_str([lit("campaign:"), col("campaign")], "", false)).otherwise(null()));
    }
    if !c.domestic_trunks.is_empty() {
        let dom = col("trunk").is_in(list_expr(&c.domestic_trunks), false).fill_null(lit(false));
        origins.push(when(dom).then(concat_str([lit("trunk:"), col("trunk")], "", false)).otherwise(null()));
    }
    let mut keep = vec![
        col("operator_id"),
        col("day"),
        col("start_us"),
        col("end_us"),
        col("caller_e164"),
        col("caller_num"),
        col("caller_country"),
        col("caller_valid"),
        col("ip_country"),
        col("ref"),
    ];
    if !c.domestic_campaigns.is_empty() {
        keep.push(col("campaign"));
    }
    if !c.domestic_trunks.is_empty() {
        keep.push(col("trunk"));
    }
    // only the columns the rule reads are gathered for the (millions of) foreign-CLI rows
    Ok(input
        .cdr
        .clone()
        .lazy()
        .select(keep)
        .filter(col("caller_country").is_not_null().and(col("caller_country").neq(lit(home))))
        .with_column(coalesce(&origins).alias("origin"))
        .filter(col("origin").is_not_null())
        .collect()?)
}
