use super::{AuditInput, Finding, Rule, RuleDoc, RuleOutput, Severity, col_i64, col_str, round, utc, words};
use crate::config::Config;
use anyhow::Result;
use polars::prelude::*;
use serde_json::json;

pub struct ForeignCliFanout;

pub const DOC: &str = "\
foreign-cli-fanout: one foreign caller ID reaching many home callees in a day

## What it does
Counts, per foreign caller ID (E.164, region other than home) and local day, the distinct home
callees it reached. At `fanout_min_callees` (default 50) or more it is a finding about the caller ID
(`subject`), naming every operator who used it that day and where the calls came from.

## Why it matters
The Shanghai investigation started from one foreign number contacting victims at high frequency.
Lead-words dialing through a caller-ID pool makes each foreign number fan out to dozens or hundreds of
domestic victims a day. Overseas contact centres also fan out, so the score is higher when the calls
came from home IPs (or a domestic campaign/trunk) and when the number fails validation; read the
origin in the evidence before acting.

## Example
+447700900123 reached 143 home callees on 2026-03-02 through 6 operators, all from CN IPs: high.";

impl RuleDoc for ForeignCliFanout {
    fn id(&self) -> &'static str {
        "foreign-cli-fanout"
    }
    fn summary(&self) -> &'static str {
        "one foreign caller ID reaching >= 50 distinct home callees in a local day (names every operator who used it)"
    }
    fn explain(&self) -> &'static str {
        DOC
    }
    fn defaults(&self, cfg: &Config) -> String {
        format!("fanout_min_callees = {}", cfg.rules.foreign_cli_fanout.fanout_min_callees)
    }
}

impl Rule for ForeignCliFanout {
    fn run(&self, input: &AuditInput, cfg: &Config) -> Result<RuleOutput> {
        let min = cfg.rules.foreign_cli_fanout.fanout_min_callees as i64;
        let home = input.home_region.as_str();
        let g = input
            .cdr
            .clone()
            .lazy()
            .filter(
                col("caller_country")
                    .is_not_null()
                    .and(col("caller_country").neq(lit(home)))
                    .and(col("callee_e164").str().starts_with(lit(input.home_prefix.clone()))),
            )
            // no global sort by time of every column: the earliest 20 references are picked per group
            // keyed by the numeric E.164 (hashing millions of strings was most of this rule's time)
            .group_by_stable([col("caller_num"), col("day")])
            .agg([
                col("caller_e164").first().alias("caller_e164"),
                col("callee_num").n_unique().cast(DataType::Int64).alias("callees"),
                len().cast(DataType::Int64).alias("calls"),
                col("operator_id").unique().sort(SortOptions::default()).str().join(" ", true).alias("operators"),
                col("ip_country")
                    .fill_null(lit("unknown"))
                    .unique()
                    .sort(SortOptions::default())
                    .str()
                    .join(" ", true)
                    .alias("ip_countries"),
                col("caller_valid").first().alias("valid"),
                col("caller_country").first().alias("country"),
                col("start_us").min().alias("first_us"),
                col("end_us").max().alias("last_us"),
                col("ref")
                    .sort_by([col("start_us")], SortMultipleOptions::default().with_maintain_order(true))
                    .head(Some(20))
                    .str()
                    .join(" ", true)
                    .alias("refs"),
            ])
            .filter(col("callees").gt_eq(lit(min)))
            .with_column(col("day").cast(DataType::String))
            .collect()?;
        let mut out = RuleOutput::default();
        let (cli, day, ops, ipc, country, refs) = (
            col_str(&g, "caller_e164")?,
            col_str(&g, "day")?,
            col_str(&g, "operators")?,
            col_str(&g, "ip_countries")?,
            col_str(&g, "country")?,
            col_str(&g, "refs")?,
        );
        let (callees, calls, first, last) =
            (col_i64(&g, "callees")?, col_i64(&g, "calls")?, col_i64(&g, "first_us")?, col_i64(&g, "last_us")?);
        let valid = g.column("valid")?.bool()?.clone();
        for i in 0..g.height() {
            let n = callees.get(i).unwrap_or(0);
            let origins: Vec<&str> = ipc.get(i).unwrap_or("").split(' ').collect();
            let from_home = origins.contains(&home);
            let is_valid = valid.get(i).unwrap_or(false);
            let mut score: f64 = 0.4;
            if from_home {
                score += 0.3;
            }
            if !is_valid {
                score += 0.1;
            }
            if n >= 4 * min {
                score += 0.1;
            }
            let score = round(score.min(1.0), 2);
            let operators = words(ops.get(i));
            let n_ops = operators.as_array().map_or(0, Vec::len);
            let c = cli.get(i).unwrap_or("");
            out.findings.push(Finding {
                rule: self.id(),
                severity: Severity::from_score(score),
                operator_id: None,
                subject: Some(c.to_string()),
                window_start: utc(first.get(i).unwrap_or(0)),
                window_end: utc(last.get(i).unwrap_or(0)),
                score,
                summary: format!(
                    "Foreign caller ID {c} ({}) reached {n} home callees on {} through {n_ops} operator(s), calling from {}.",
                    country.get(i).unwrap_or("?"),
                    day.get(i).unwrap_or(""),
                    ipc.get(i).unwrap_or("").replace(' ', ", ")
                ),
                evidence: json!({
                    "day": day.get(i),
                    "distinct_callees": n,
                    "calls": calls.get(i),
                    "operators": operators,
                    "ip_countries": words(ipc.get(i)),
                    "cli_valid": is_valid,
                    "calls_ref": words(refs.get(i)),
                }),
            });
        }
        Ok(out)
    }
}
