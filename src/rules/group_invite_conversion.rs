use super::{AuditInput, Finding, Rule, RuleDoc, RuleOutput, Severity, col_f64, col_i64, col_str, round, utc, words};
use crate::config::Config;
use anyhow::Result;
use polars::prelude::*;
use serde_json::json;

pub struct GroupInviteConversion;

pub const DOC: &str = "\
group-invite-conversion: callees who join a chat group shortly after an operator's call

## What it does
Matches the chat-group join log (--joins) to answered calls by the callee's E.164 number (numbers
are normalised on both sides, so 13812345678, +86 138-1234-5678 and 008613812345678 meet) and UTC
time (so a join log kept in UTC meets CDRs kept in local time). A join counts for a call when it
happens between the answer and `conversion_window_minutes` (default 60) after the call ended; when
several calls qualify, the last call before the join gets it. Per operator over the audited period:
answered distinct callees, converted callees, rate, median minutes to join and the groups fed. A
finding needs at least `min_conversions` (default 3) converted callees and a rate of at least
`min_conversion_rate` (default 2 %), so one or two coincidences accuse nobody.

## Why it matters
Operators earn 5-10 yuan for each victim pulled into the designated group, where the actual fraud
happens. A telemarketer's callees do not join chat groups within the hour; a diversion operator's
do, several times a day.

## Example
Operator op00007 had 31 of 642 answered callees (4.8 %) join groups G00101, G00103 a median 14
minutes after the call: high. Not a finding: 2 callees of a telemarketer joining a group, or a join
61 minutes after the call.

## Output
One finding per operator; groups.csv lists per chat group the converted members and the operators
who fed it.";

impl RuleDoc for GroupInviteConversion {
    fn id(&self) -> &'static str {
        "group-invite-conversion"
    }
    fn summary(&self) -> &'static str {
        "answered callees who join a chat group within 60 min after the call: >= 3 and >= 2 % per operator"
    }
    fn explain(&self) -> &'static str {
        DOC
    }
    fn defaults(&self, cfg: &Config) -> String {
        let c = &cfg.rules.group_invite_conversion;
        format!(
            "conversion_window_minutes = {}, min_conversions = {}, min_conversion_rate = {}",
            c.conversion_window_minutes, c.min_conversions, c.min_conversion_rate
        )
    }
}

impl Rule for GroupInviteConversion {
    fn run(&self, input: &AuditInput, cfg: &Config) -> Result<RuleOutput> {
        let (base, answered) = self.part(input)?;
        self.of_parts(input.joins.as_ref(), base, answered, cfg)
    }
}

impl GroupInviteConversion {
    /// What one part of the CDRs gives (`scan --partitions`; a whole frame is one part): per
    /// operator its answered distinct callees, and the answered calls to numbers in the join log
    /// (`operator_id`, `callee_num`, `answer_us`, `end_us`, `ref`) in frame order.
    pub fn part(&self, input: &AuditInput) -> Result<(DataFrame, Option<DataFrame>)> {
        let members: Option<PlHashSet<u64>> = match &input.joins {
            Some(j) => Some(j.column("member_num")?.u64()?.iter().flatten().collect()),
            None => None,
        };
        // counted once: the findings and operators.csv both read it
        let (base, idx) = answered_callees(input, members.as_ref())?;
        if input.joins.is_none() {
            return Ok((base, None));
        }
        let answered = input
            .cdr
            .select(["operator_id", "callee_num", "answer_us", "start_us", "end_us", "ref"])?
            .take(&IdxCa::from_vec("idx".into(), idx))?
            .lazy()
            .select([
                col("operator_id"),
                col("callee_num"),
                coalesce(&[col("answer_us"), col("start_us")]).alias("answer_us"),
                col("end_us"),
                col("ref"),
            ])
            .collect()?;
        Ok((base, Some(answered)))
    }

    /// The rule's output from the parts' [`part`](Self::part)s, concatenated in frame order.
    pub fn of_parts(
        &self,
        joins: Option<&DataFrame>,
        base: DataFrame,
        answered: Option<DataFrame>,
        cfg: &Config,
    ) -> Result<RuleOutput> {
        let c = &cfg.rules.group_invite_conversion;
        let mut out = RuleOutput::default();
        let (Some(joins), Some(answered)) = (joins, answered) else {
            out.notes.push("group-invite-conversion: no join log (--joins): conversions not assessed".into());
            out.operator_metrics = Some(base);
            return Ok(out);
        };
        let answered = answered.lazy();
        let window = c.conversion_window_minutes * 60 * 1_000_000;
        // every (join, qualifying call) pair, then the last call before each join
        let conv = joins
            .clone()
            .lazy()
            .select([col("group_id"), col("member_e164"), col("member_num"), col("joined_us")])
            // numbers joined by their numeric E.164 (the text is the same key, slower to hash)
            .join(answered, [col("member_num")], [col("callee_num")], JoinArgs::new(JoinType::Inner))
            .filter(col("joined_us").gt_eq(col("answer_us")).and(col("joined_us").lt_eq(col("end_us") + lit(window))))
            .sort(["group_id", "member_e164", "joined_us", "end_us"], SortMultipleOptions::default())
            .group_by_stable([col("group_id"), col("member_e164"), col("joined_us")])
            .agg([
                col("operator_id").last().alias("operator_id"),
                col("end_us").last().alias("end_us"),
                col("ref").last().alias("ref"),
            ])
            .with_column(
                ((col("joined_us") - col("end_us")).cast(DataType::Float64) / lit(60e6)).alias("minutes_to_join"),
            )
            .collect()?;
        let per_op = conv
            .clone()
            .lazy()
            .sort(["operator_id", "joined_us"], SortMultipleOptions::default())
            .group_by_stable([col("operator_id")])
            .agg([
                col("member_e164").n_unique().cast(DataType::Int64).alias("converted"),
                col("minutes_to_join").median().alias("median_minutes"),
                col("group_id").unique_stable().str().join(" ", true).alias("groups"),
                col("joined_us").min().alias("first_us"),
                col("joined_us").max().alias("last_us"),
                col("ref").head(Some(20)).str().join(" ", true).alias("refs"),
            ])
            .join(base.clone().lazy(), [col("operator_id")], [col("operator_id")], JoinArgs::new(JoinType::Left))
            .with_column(
                (col("converted").cast(DataType::Float64) / col("answered_callees").cast(DataType::Float64))
                    .alias("rate"),
            )
            .collect()?;
        let (ops, groups, refs) =
            (col_str(&per_op, "operator_id")?, col_str(&per_op, "groups")?, col_str(&per_op, "refs")?);
        let (conv_n, answered_n, first, last) = (
            col_i64(&per_op, "converted")?,
            col_i64(&per_op, "answered_callees")?,
            col_i64(&per_op, "first_us")?,
            col_i64(&per_op, "last_us")?,
        );
        let (rate, median) = (col_f64(&per_op, "rate")?, col_f64(&per_op, "median_minutes")?);
        for i in 0..per_op.height() {
            let (k, n, r) = (conv_n.get(i).unwrap_or(0), answered_n.get(i).unwrap_or(0), rate.get(i).unwrap_or(0.0));
            if k < c.min_conversions as i64 || r < c.min_conversion_rate {
                continue;
            }
            let mut score: f64 = 0.6;
            if k >= 10 {
                score += 0.2;
            }
            if r >= 0.05 {
                score += 0.1;
            }
            let score = round(score.min(1.0), 2);
            let op = ops.get(i).unwrap_or("");
            let g = groups.get(i).unwrap_or("");
            out.findings.push(Finding {
                rule: self.id(),
                severity: Severity::from_score(score),
                operator_id: Some(op.to_string()),
                subject: None,
                window_start: utc(first.get(i).unwrap_or(0)),
                window_end: utc(last.get(i).unwrap_or(0)),
                score,
                summary: format!(
                    "Operator {op} had {k} of {n} answered callees ({:.1} %) join chat group(s) {} a median {:.0} minutes after the call.",
                    r * 100.0,
                    g.replace(' ', ", "),
                    median.get(i).unwrap_or(0.0)
                ),
                evidence: json!({
                    "answered_callees": n,
                    "converted_callees": k,
                    "rate": round(r, 4),
                    "median_minutes_to_join": round(median.get(i).unwrap_or(0.0), 1),
                    "groups": words(groups.get(i)),
                    "calls_ref": words(refs.get(i)),
                }),
            });
        }
        out.operator_metrics = Some(
            base.lazy()
                .join(
                    per_op.clone().lazy().select([col("operator_id"), col("converted").alias("conversions")]),
                    [col("operator_id")],
                    [col("operator_id")],
                    JoinArgs::new(JoinType::Left),
                )
                .with_columns([
                    col("conversions").fill_null(lit(0i64)),
                    (col("conversions").fill_null(lit(0i64)).cast(DataType::Float64)
                        / col("answered_callees").cast(DataType::Float64))
                    .alias("conversion_rate"),
                ])
                .collect()?,
        );
        let groups_tbl = conv
            .clone()
            .lazy()
            .sort(["group_id", "joined_us"], SortMultipleOptions::default())
            .group_by_stable([col("group_id")])
            .agg([
                col("member_e164").n_unique().cast(DataType::Int64).alias("converted_members"),
                col("operator_id").n_unique().cast(DataType::Int64).alias("feeding_operators_n"),
                col("operator_id").unique_stable().str().join(" ", true).alias("feeding_operators"),
                col("joined_us").min().alias("first_join_us"),
                col("joined_us").max().alias("last_join_us"),
            ])
            .sort(
                ["converted_members"],
                SortMultipleOptions::default().with_order_descending(true).with_maintain_order(true),
            )
            .collect()?;
        out.tables.push(("groups", groups_tbl));
        out.tables.push((
            "conversions",
            conv.lazy()
                .select([
                    col("operator_id"),
                    col("group_id"),
                    col("member_e164"),
                    col("end_us").alias("call_end_us"),
                    col("joined_us"),
                    col("minutes_to_join").round(1, RoundMode::HalfToEven),
                    col("ref").alias("call"),
                ])
                .sort(["operator_id", "joined_us"], SortMultipleOptions::default())
                .collect()?,
        ));
        Ok(out)
    }
}

/// Per operator with at least one answered call to a known number: how many distinct callees
/// answered (`operator_id`, `answered_callees`); and the rows of the answered calls to `members`
/// (numbers that joined some group), in row order: only those can pair with a join, so the join
/// reads them instead of a filter of the whole frame (which materialised millions of operator ids
/// and call references that the join then dropped). Each operator's row range walked in parallel.
fn answered_callees(input: &AuditInput, members: Option<&PlHashSet<u64>>) -> Result<(DataFrame, Vec<IdxSize>)> {
    use super::Chunks;
    use rayon::prelude::*;
    let cdr = &input.cdr;
    let (ans, num) = (cdr.column("answered")?.bool()?, cdr.column("callee_num")?.u64()?);
    let (ans, num) = (Chunks::new(ans), Chunks::new(num));
    let per_op: Vec<(&str, i64, Vec<IdxSize>)> = super::ranges_in_order(input)
        .into_par_iter()
        .filter_map(|(op, rows)| {
            let (mut a, mut c) = (ans.rows(), num.rows());
            // an operator's answered callees, counted distinct by sorting (a hash set per operator
            // cost more than the sort of its thousand numbers)
            let mut seen: Vec<u64> = Vec::new();
            let mut to_members = Vec::new();
            for i in rows {
                if a.get(i) == Some(true)
                    && let Some(n) = c.get(i)
                {
                    seen.push(n);
                    if members.is_some_and(|m| m.contains(&n)) {
                        to_members.push(i as IdxSize);
                    }
                }
            }
            seen.sort_unstable();
            seen.dedup();
            (!seen.is_empty()).then_some((op, seen.len() as i64, to_members))
        })
        .collect();
    let base = DataFrame::new(
        per_op.len(),
        vec![
            Column::new("operator_id".into(), per_op.iter().map(|p| p.0).collect::<Vec<_>>()),
            Column::new("answered_callees".into(), per_op.iter().map(|p| p.1).collect::<Vec<_>>()),
        ],
    )?;
    let idx = per_op.into_iter().flat_map(|p| p.2).collect();
    Ok((base, idx))
}
