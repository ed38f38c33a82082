use super::{AuditInput, DayFact, DayRule, Finding, Metric, Partials, RuleDoc, RuleOutput, RulesConfig, Severity};
use crate::frame::{col_f64, col_i64, col_str, round, utc, words};
use anyhow::Result;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub struct GroupInviteConversion;

/// `[rules.group_invite_conversion]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ConversionConfig {
    /// A join counts when it happens between the answer and this many minutes after the call ended.
    pub conversion_window_minutes: i64,
    /// Converted callees an operator needs for a finding. Default 3.
    pub min_conversions: u32,
    /// Converted ÷ answered distinct callees an operator needs for a finding. Default 0.02.
    pub min_conversion_rate: f64,
    /// Count answered inbound calls too (default: outbound calls only; an inbound caller who later
    /// joins a group was not pushed there by the operator's call).
    pub include_inbound: bool,
}

impl Default for ConversionConfig {
    fn default() -> Self {
        Self { conversion_window_minutes: 60, min_conversions: 3, min_conversion_rate: 0.02, include_inbound: false }
    }
}

impl ConversionConfig {
    fn validate(&self) -> Result<()> {
        anyhow::ensure!(
            self.conversion_window_minutes > 0,
            "rules.group_invite_conversion.conversion_window_minutes must be > 0"
        );
        Ok(())
    }
}

/// The section as `config init` writes it.
pub const TOML: &str = r#"[rules.group_invite_conversion]
conversion_window_minutes = 60 # a join between the answer and this long after the call counts
min_conversions = 3            # converted callees needed for a finding
min_conversion_rate = 0.02     # converted / answered distinct callees needed for a finding
include_inbound = false        # count answered inbound calls too (default: outbound only)

"#;

const METRICS: &[Metric] = &[
    Metric { name: "answered_callees", dtype: DataType::Int64, places: 0 },
    Metric { name: "conversions", dtype: DataType::Int64, places: 0 },
    Metric { name: "conversion_rate", dtype: DataType::Float64, places: 4 },
];

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
    fn config_toml(&self) -> &'static str {
        TOML
    }
    fn validate(&self, cfg: &RulesConfig) -> Result<()> {
        cfg.group_invite_conversion.validate()
    }
    fn explain(&self) -> &'static str {
        DOC
    }
    fn metrics(&self) -> &'static [Metric] {
        METRICS
    }
    fn defaults(&self, cfg: &RulesConfig) -> String {
        let c = &cfg.group_invite_conversion;
        format!(
            "conversion_window_minutes = {}, min_conversions = {}, min_conversion_rate = {}, include_inbound = {}",
            c.conversion_window_minutes, c.min_conversions, c.min_conversion_rate, c.include_inbound
        )
    }
}

impl DayRule for GroupInviteConversion {
    fn partials<'a>(&'a self, cfg: &'a RulesConfig, parts: u32) -> Box<dyn Partials + 'a> {
        Box::new(ConversionPartials {
            cfg,
            parts,
            base: Vec::new(),
            answered: Vec::new(),
            joins: None,
            tz: None,
            whole: None,
        })
    }
}

/// Callees called in one partition may join after calls of another operator, so each partition
/// keeps what it gives ([`GroupInviteConversion::part`]) and the rule judges them together, in
/// frame order.
struct ConversionPartials<'a> {
    cfg: &'a RulesConfig,
    parts: u32,
    base: Vec<DataFrame>,
    answered: Vec<DataFrame>,
    /// The join log as the rules read it (every partition holds the same one).
    joins: Option<DataFrame>,
    tz: Option<chrono_tz::Tz>,
    /// A whole scan's output, judged as its one part is added (beside the other rules, not after
    /// them: the join of calls and joins is 0.2 s of a 10 M-row scan).
    whole: Option<RuleOutput>,
}

impl Partials for ConversionPartials<'_> {
    fn add(&mut self, input: &AuditInput) -> Result<Vec<String>> {
        let t = std::time::Instant::now();
        let (base, answered) = GroupInviteConversion.part(input, self.cfg.group_invite_conversion.include_inbound)?;
        if self.tz.is_none() {
            self.tz = Some(input.tz);
            self.joins.clone_from(&input.joins);
        }
        // a partitioned scan keeps the dossier material of the operators who can reach
        // `min_conversions` (a whole scan reads it from its frame at the end)
        let named = match &answered {
            Some(a) if self.parts > 1 => candidates(a, self.cfg.group_invite_conversion.min_conversions as usize)?,
            _ => Vec::new(),
        };
        self.base.push(base);
        self.answered.extend(answered);
        crate::diag::trace("conversion part", t);
        // (every add of a whole scan judges again: after its one part, a carrier's subscriber records)
        if self.parts == 1 {
            self.whole = Some(self.judge()?);
            crate::diag::trace("conversion judged", t);
        }
        Ok(named)
    }

    fn finish(mut self: Box<Self>) -> Result<RuleOutput> {
        match self.whole.take() {
            Some(out) => Ok(out),
            None => self.judge(),
        }
    }
}

impl ConversionPartials<'_> {
    /// The rule's output over the parts added so far (they are kept: a carrier's subscriber
    /// records are added after a whole scan's one part, and judged with it).
    fn judge(&self) -> Result<RuleOutput> {
        // frame order: operators sorted, each operator's rows as its partition had them (the
        // frames are shared, not copied)
        let base = crate::frame::concat_sorted(self.base.clone(), &["operator_id"])?;
        let answered = match self.answered.is_empty() {
            true => None,
            false => Some(crate::frame::concat_sorted(self.answered.clone(), &["operator_id"])?),
        };
        let mut out = GroupInviteConversion.of_parts(self.joins.as_ref(), base, answered, self.cfg)?;
        if let (Some(tz), Some((_, conv))) = (self.tz, out.tables.iter().find(|(n, _)| *n == "conversions")) {
            // each conversion counts for the local day its call ended
            let ops = conv.column("operator_id")?.str()?;
            let end = conv.column("call_end_us")?.cast(&DataType::Int64)?;
            let end = end.i64()?;
            let facts: Vec<(String, DayFact)> = ops
                .iter()
                .zip(end.iter())
                .filter_map(|(op, us)| {
                    let day = utc(us?).with_timezone(&tz).date_naive();
                    Some((op?.to_string(), DayFact { conversions: 1, ..DayFact::on(day) }))
                })
                .collect();
            out.facts = facts;
        }
        Ok(out)
    }
}

/// Operators with answered calls to at least `min` distinct numbers in the join log: only they
/// can reach `min` conversions.
fn candidates(answered: &DataFrame, min: usize) -> Result<Vec<String>> {
    let per_op = answered
        .clone()
        .lazy()
        .group_by([col("operator_id")])
        .agg([col("callee_num").n_unique().alias("n")])
        .filter(col("n").gt_eq(lit(min as u32)))
        .collect()?;
    Ok(per_op.column("operator_id")?.str()?.iter().flatten().map(str::to_string).collect())
}

/// groups.csv and conversions.csv with their columns and no rows: the file set stays the same
/// for cron jobs when there is no join log.
fn empty_tables() -> Result<Vec<(&'static str, DataFrame)>> {
    let s = |n: &str| Column::new_empty(n.into(), &DataType::String);
    let i = |n: &str| Column::new_empty(n.into(), &DataType::Int64);
    let groups = DataFrame::new(
        0,
        vec![
            s("group_id"),
            i("converted_members"),
            i("feeding_operators_n"),
            s("feeding_operators"),
            i("first_join_us"),
            i("last_join_us"),
        ],
    )?;
    let conversions = DataFrame::new(
        0,
        vec![
            s("operator_id"),
            s("group_id"),
            s("member_e164"),
            i("call_end_us"),
            i("joined_us"),
            Column::new_empty("minutes_to_join".into(), &DataType::Float64),
            s("call"),
        ],
    )?;
    Ok(vec![("groups", groups), ("conversions", conversions)])
}

impl GroupInviteConversion {
    /// What one part of the CDRs gives (`scan --partitions`; a whole frame is one part): per
    /// operator its answered distinct callees, and the answered calls to numbers in the join log
    /// (`operator_id`, `callee_num`, `answer_us`, `end_us`, `ref`) in frame order.
    pub fn part(&self, input: &AuditInput, include_inbound: bool) -> Result<(DataFrame, Option<DataFrame>)> {
        let members: Option<PlHashSet<u64>> = match &input.joins {
            Some(j) => Some(j.column("member_num")?.u64()?.iter().flatten().collect()),
            None => None,
        };
        // counted once: the findings and operators.csv both read it
        let (base, idx) = answered_callees(input, members.as_ref(), include_inbound)?;
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
    fn of_parts(
        &self,
        joins: Option<&DataFrame>,
        base: DataFrame,
        answered: Option<DataFrame>,
        cfg: &RulesConfig,
    ) -> Result<RuleOutput> {
        let c = &cfg.group_invite_conversion;
        let mut out = RuleOutput::default();
        let (Some(joins), Some(answered)) = (joins, answered) else {
            out.notes.push("group-invite-conversion: no join log (--joins): conversions not assessed".into());
            out.operator_metrics = Some(base);
            out.tables = empty_tables()?;
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
            // joins at the same second in member then group order: a total order, so the
            // references and groups listed are the same on every run and engine (spark/)
            .sort(["operator_id", "joined_us", "member_e164", "group_id"], SortMultipleOptions::default())
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
        out.findings = self.findings(&per_op, c)?;
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
        out.tables = tables(conv)?;
        Ok(out)
    }

    /// One finding per operator with `min_conversions` converted callees at `min_conversion_rate`.
    fn findings(&self, per_op: &DataFrame, c: &ConversionConfig) -> Result<Vec<Finding>> {
        let mut findings = Vec::new();
        let (ops, groups, refs) =
            (col_str(per_op, "operator_id")?, col_str(per_op, "groups")?, col_str(per_op, "refs")?);
        let (conv_n, answered_n, first, last) = (
            col_i64(per_op, "converted")?,
            col_i64(per_op, "answered_callees")?,
            col_i64(per_op, "first_us")?,
            col_i64(per_op, "last_us")?,
        );
        let (rate, median) = (col_f64(per_op, "rate")?, col_f64(per_op, "median_minutes")?);
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
            findings.push(Finding {
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
                // over the whole audited period, not one day's
                fact: None,
            });
        }
        Ok(findings)
    }
}

/// groups.csv (per chat group: converted members and the operators who fed it) and
/// conversions.csv (every join with the call it counts for).
fn tables(conv: DataFrame) -> Result<Vec<(&'static str, DataFrame)>> {
    let groups_tbl = conv
        .clone()
        .lazy()
        .sort(["group_id", "joined_us", "member_e164"], SortMultipleOptions::default())
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
    let conversions = conv
        .lazy()
        .select([
            col("operator_id"),
            col("group_id"),
            col("member_e164"),
            col("end_us").alias("call_end_us"),
            col("joined_us"),
            col("minutes_to_join").round(1, RoundMode::HalfToEven),
            col("ref").alias("call"),
        ])
        .sort(["operator_id", "joined_us", "member_e164", "group_id"], SortMultipleOptions::default())
        .collect()?;
    Ok(vec![("groups", groups_tbl), ("conversions", conversions)])
}

/// Per operator with at least one answered call to a known number: how many distinct callees
/// answered (`operator_id`, `answered_callees`); and the rows of the answered calls to `members`
/// (numbers that joined some group), in row order: only those can pair with a join, so the join
/// reads them instead of a filter of the whole frame (which materialised millions of operator ids
/// and call references that the join then dropped). Each operator's row range walked in parallel.
fn answered_callees(
    input: &AuditInput,
    members: Option<&PlHashSet<u64>>,
    include_inbound: bool,
) -> Result<(DataFrame, Vec<IdxSize>)> {
    use crate::frame::Chunks;
    use crate::load::legs::{INBOUND, OUTBOUND};
    use rayon::prelude::*;
    let cdr = &input.cdr;
    let (ans, num) = (cdr.column("answered")?.bool()?, cdr.column("callee_num")?.u64()?);
    let (ans, num) = (Chunks::new(ans), Chunks::new(num));
    let dir = Chunks::new(cdr.column("direction")?.u32()?);
    let counted = |d: Option<u32>| d == Some(OUTBOUND) || (include_inbound && d == Some(INBOUND));
    let per_op: Vec<(&str, i64, Vec<IdxSize>)> = crate::prepare::ranges_in_order(input)
        .into_par_iter()
        .filter_map(|(op, rows)| {
            let (mut a, mut c, mut d) = (ans.rows(), num.rows(), dir.rows());
            // an operator's answered callees, counted distinct by sorting (a hash set per operator
            // cost more than the sort of its thousand numbers)
            let mut seen: Vec<u64> = Vec::new();
            let mut to_members = Vec::new();
            for i in rows {
                if a.get(i) == Some(true)
                    && counted(d.get(i))
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
