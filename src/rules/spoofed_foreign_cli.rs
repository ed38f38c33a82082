use super::{
    AuditInput, DayFact, DayRule, Finding, Metric, OperatorRule, Partials, PerOperator, RuleDoc, RuleOutput,
    RulesConfig, Severity,
};
use crate::frame::{local, round, utc, words};
use anyhow::Result;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub struct SpoofedForeignCli;

/// `[rules.spoofed_foreign_cli]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SpoofConfig {
    /// Calls per operator and local day needed for a finding. Default 5.
    pub min_calls: u32,
    /// Campaigns / outbound tasks known to run from home soil (their calls count as domestic origin).
    pub domestic_campaigns: Vec<String>,
    /// Trunks / gateways known to be domestic.
    pub domestic_trunks: Vec<String>,
}

impl Default for SpoofConfig {
    fn default() -> Self {
        Self { min_calls: 5, domestic_campaigns: vec![], domestic_trunks: vec![] }
    }
}

/// The section as `config init` writes it.
pub const TOML: &str = r#"[rules.spoofed_foreign_cli]
min_calls = 5                 # foreign-CLI calls from home soil per operator and local day
domestic_campaigns = []       # campaigns known to run from home soil, e.g. ["edu-refund-01"]
domestic_trunks = []          # trunks / gateways known to be domestic

"#;

const METRICS: &[Metric] = &[
    Metric { name: "spoofed_calls", dtype: DataType::Int64, places: 0 },
    Metric { name: "distinct_foreign_clis", dtype: DataType::Int64, places: 0 },
];

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
    fn config_toml(&self) -> &'static str {
        TOML
    }
    fn explain(&self) -> &'static str {
        DOC
    }
    fn reads(&self, cfg: &RulesConfig) -> Vec<&'static str> {
        let c = &cfg.spoofed_foreign_cli;
        let mut v = Vec::new();
        if !c.domestic_campaigns.is_empty() {
            v.push("campaign");
        }
        if !c.domestic_trunks.is_empty() {
            v.push("trunk");
        }
        v
    }
    fn metrics(&self) -> &'static [Metric] {
        METRICS
    }
    fn defaults(&self, cfg: &RulesConfig) -> String {
        let c = &cfg.spoofed_foreign_cli;
        format!(
            "min_calls = {}, domestic_campaigns = {:?}, domestic_trunks = {:?}",
            c.min_calls, c.domestic_campaigns, c.domestic_trunks
        )
    }
}

impl DayRule for SpoofedForeignCli {
    fn partials<'a>(&'a self, cfg: &'a RulesConfig, parts: u32) -> Box<dyn Partials + 'a> {
        PerOperator::boxed(self, cfg, parts)
    }
}

impl OperatorRule for SpoofedForeignCli {
    fn run(&self, input: &AuditInput, cfg: &RulesConfig) -> Result<RuleOutput> {
        let c = &cfg.spoofed_foreign_cli;
        let mut out = RuleOutput::default();
        if !input.has_ip_country && c.domestic_campaigns.is_empty() && c.domestic_trunks.is_empty() {
            out.notes.push(
                "spoofed-foreign-cli: no IP-country data (--ip-country) and no domestic campaigns or trunks \
                 configured: the origin of calls is unknown, so spoofing was not assessed"
                    .into(),
            );
            return Ok(out);
        }
        let groups = spoofed_groups(input, cfg)?;
        // lists as the evidence has always shown them: the values joined by spaces, then split
        let text = |set: &PlIndexSet<String>| set.iter().map(String::as_str).collect::<Vec<_>>().join(" ");
        let e164s = |set: &PlIndexSet<u64>| set.iter().map(|n| format!("+{n}")).collect::<Vec<_>>().join(" ");
        for g in groups.iter().filter(|g| g.calls >= c.min_calls as i64) {
            let op = g.operator_id;
            let n = g.calls;
            let (clis, countries, origins, refs) =
                (e164s(&g.clis), text(&g.countries), text(&g.origins), g.refs.join(" "));
            let invalid_list = words(Some(&e164s(&g.invalid)));
            let n_invalid = invalid_list.as_array().map_or(0, Vec::len);
            let k = g.nums.len() as i64;
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
            let day = crate::time::epoch_day(g.day).to_string();
            let shown = countries.replace(' ', ", ");
            let from = origins.replace(' ', ", ");
            let inv =
                if n_invalid > 0 { format!("; {n_invalid} of them fail number validation") } else { String::new() };
            let (first, last) = (g.first_us.unwrap_or(0), g.last_us.unwrap_or(0));
            out.findings.push(Finding {
                rule: self.id(),
                severity: Severity::from_score(score),
                operator_id: Some(op.to_string()),
                subject: (k == 1).then(|| clis.clone()),
                window_start: utc(first),
                window_end: utc(last),
                score,
                summary: format!(
                    "Operator {op} showed {k} foreign caller ID(s) ({shown}) on {n} calls on {day} while the calls came from home ({from}){inv}."
                ),
                evidence: json!({
                    "day": day,
                    "calls": n,
                    "distinct_clis": k,
                    "clis": words(Some(&clis)),
                    "countries_shown": words(Some(&countries)),
                    "origin": words(Some(&origins)),
                    "invalid_clis": invalid_list,
                    "first_call": local(first, input.tz),
                    "last_call": local(last, input.tz),
                    "calls_ref": words(Some(&refs)),
                }),
                fact: Some(DayFact { spoofed_calls: n as u32, ..DayFact::on(crate::time::epoch_day(g.day)) }),
            });
        }
        out.operator_metrics = Some(operator_metrics(&groups)?);
        Ok(out)
    }
}

/// The spoofed calls of one operator on one local day (calls showing a foreign caller ID that came
/// from home), summarised; lists keep first-seen order.
#[derive(Debug, Default)]
pub struct DayGroup<'a> {
    pub operator_id: &'a str,
    /// Local day, days since 1970-01-01.
    pub day: i32,
    pub calls: i64,
    /// Distinct numeric caller IDs (a missing one counts once).
    pub nums: PlHashSet<Option<u64>>,
    /// The E.164 caller IDs by numeric key, in order of first use.
    pub clis: PlIndexSet<u64>,
    pub countries: PlIndexSet<String>,
    /// How we know the call came from home: `ip:CN`, `campaign:…`, `trunk:…`.
    pub origins: PlIndexSet<String>,
    /// The caller IDs among `clis` that fail validation.
    pub invalid: PlIndexSet<u64>,
    pub first_us: Option<i64>,
    pub last_us: Option<i64>,
    /// The first 20 call references.
    pub refs: Vec<String>,
}

/// Every (operator, local day) group of spoofed calls, in operator then first-call order: each
/// operator's row range walked in parallel (the frame is sorted by operator and start).
pub fn spoofed_groups<'a>(input: &'a AuditInput, cfg: &RulesConfig) -> Result<Vec<DayGroup<'a>>> {
    use crate::frame::Chunks;
    use rayon::prelude::*;
    let c = &cfg.spoofed_foreign_cli;
    let df = &input.cdr;
    let home = input.home_region.as_str();
    let s = |n: &str| -> Result<&StringChunked> { Ok(df.column(n)?.str()?) };
    let refs = s("ref")?;
    // countries are codes: the home country is compared as its code, texts looked up when kept
    let (cdict, idict) = (input.coded("caller_country")?, input.coded("ip_country")?);
    let (country, ipc) = (cdict.codes, idict.codes);
    let (home_cc, home_ip) = (cdict.code_of(home), idict.code_of(home));
    // campaign and trunk are kept by `prepare` only when a list names some
    let campaign = if c.domestic_campaigns.is_empty() { None } else { Some(input.coded("campaign")?) };
    let campaign_texts: &[String] = campaign.as_ref().map_or(&[], |c| c.values);
    let trunk = if c.domestic_trunks.is_empty() { None } else { Some(s("trunk")?) };
    let day = df.column("day")?.cast(&DataType::Int32)?;
    let day = day.i32()?;
    let (start, end) = (df.column("start_us")?.i64()?, df.column("end_us")?.i64()?);
    let (num, valid) = (df.column("caller_num")?.u64()?, df.column("caller_valid")?.bool()?);
    // the caller ID of an inbound call is the caller's own: only outbound legs show a chosen one
    let dir = Chunks::new(df.column("direction")?.u32()?);
    // a set of a few values: the text is copied only when it is new
    let add = |set: &mut PlIndexSet<String>, v: &str| {
        if !set.contains(v) {
            set.insert(v.to_string());
        }
    };
    let in_list = |list: &[String], v: Option<&str>| v.is_some_and(|v| list.iter().any(|x| x == v));
    // chunk tables built once; each operator's readers borrow them
    let (country, ipc, refs) = (Chunks::new(country), Chunks::new(ipc), Chunks::new(refs));
    let (campaign, trunk) = (campaign.map(|c| Chunks::new(c.codes)), trunk.map(Chunks::new));
    let (day, start, end) = (Chunks::new(day), Chunks::new(start), Chunks::new(end));
    let (num, valid) = (Chunks::new(num), Chunks::new(valid));
    let per_op: Vec<Vec<DayGroup<'a>>> = crate::prepare::ranges_in_order(input)
        .into_par_iter()
        .map(|(op, rows)| {
            let (mut country, mut ipc, mut refs) = (country.rows(), ipc.rows(), refs.rows());
            let mut campaign = campaign.as_ref().map(Chunks::rows);
            let mut trunk = trunk.as_ref().map(Chunks::rows);
            let (mut day, mut start, mut end) = (day.rows(), start.rows(), end.rows());
            let (mut num, mut valid) = (num.rows(), valid.rows());
            let mut dir = dir.rows();
            let mut by_day: PlIndexMap<i32, DayGroup<'a>> = PlIndexMap::default();
            for i in rows {
                let Some(cc) = country.get(i) else { continue };
                if Some(cc) == home_cc || dir.get(i) != Some(crate::load::legs::OUTBOUND) {
                    continue;
                }
                // the first that holds: home IP, a domestic campaign, a domestic trunk
                let origin = match ipc.get(i) {
                    Some(ip) if Some(ip) == home_ip => ("ip:", home),
                    _ => {
                        let cm = campaign.as_mut().and_then(|r| r.get(i)).map(|k| campaign_texts[k as usize].as_str());
                        let tr = trunk.as_mut().and_then(|r| r.get(i));
                        if in_list(&c.domestic_campaigns, cm) {
                            ("campaign:", cm.unwrap_or_default())
                        } else if in_list(&c.domestic_trunks, tr) {
                            ("trunk:", tr.unwrap_or_default())
                        } else {
                            continue;
                        }
                    }
                };
                let Some(d) = day.get(i) else { continue };
                let g = by_day.entry(d).or_insert_with(|| DayGroup { operator_id: op, day: d, ..Default::default() });
                g.calls += 1;
                let n = num.get(i);
                g.nums.insert(n);
                // a caller with a country parsed to E.164, so it has its numeric key
                if let Some(n) = n {
                    g.clis.insert(n);
                    if valid.get(i) == Some(false) {
                        g.invalid.insert(n);
                    }
                }
                add(&mut g.countries, cdict.text(cc));
                if !g.origins.iter().any(|o| o.strip_prefix(origin.0) == Some(origin.1)) {
                    g.origins.insert(format!("{}{}", origin.0, origin.1));
                }
                if let Some(t) = start.get(i) {
                    g.first_us = Some(g.first_us.map_or(t, |f| f.min(t)));
                }
                if let Some(t) = end.get(i) {
                    g.last_us = Some(g.last_us.map_or(t, |l| l.max(t)));
                }
                if g.refs.len() < 20
                    && let Some(r) = refs.get(i)
                {
                    g.refs.push(r.to_string());
                }
            }
            by_day.into_values().collect()
        })
        .collect();
    Ok(per_op.into_iter().flatten().collect())
}

/// Per operator: spoofed calls and distinct foreign caller IDs over all its days.
fn operator_metrics(groups: &[DayGroup]) -> Result<DataFrame> {
    let mut ops: Vec<&str> = Vec::new();
    let mut calls: Vec<u32> = Vec::new();
    let mut clis: Vec<u32> = Vec::new();
    let mut i = 0;
    while i < groups.len() {
        let op = groups[i].operator_id;
        let mut n = 0i64;
        let mut nums: PlHashSet<Option<u64>> = PlHashSet::default();
        while i < groups.len() && groups[i].operator_id == op {
            n += groups[i].calls;
            nums.extend(groups[i].nums.iter().copied());
            i += 1;
        }
        ops.push(op);
        calls.push(n as u32);
        clis.push(nums.len() as u32);
    }
    Ok(DataFrame::new(
        ops.len(),
        vec![
            Column::new("operator_id".into(), ops),
            Column::new("spoofed_calls".into(), calls),
            Column::new("distinct_foreign_clis".into(), clis),
        ],
    )?)
}
