//! `crew`: operators tied by named evidence, crews as the groups of strongly tied operators, who
//! listened in on whom, and what each operator and crew earned under the ring's pay scheme.
//!
//! Runs after every other rule: [`Collector`] keeps each partition's [`facts`], and
//! [`Crew::finish`] builds the graph over all operators, reads the other rules' findings (a crew
//! with at least two members flagged for diversion is a finding) and the day profiles (earnings).

pub mod facts;
pub mod graphml;
pub mod links;

use super::{AuditInput, DayProfile, Finding, Metric, RuleDoc, RuleOutput, RulesConfig, Severity};
use crate::frame::round;
use anyhow::Result;
use facts::{Facts, day_of};
use links::{Monitor, Pair, unpack};
use petgraph::unionfind::UnionFind;
use polars::prelude::PlHashMap as HashMap;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

pub struct Crew;

/// The kinds of evidence, in the order of [`Pair::counts`] and of the crews.csv columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    SharedCli,
    SharedGroup,
    LeadList,
    SameIp,
    ShiftSync,
    Campaign,
    Monitoring,
}

pub const KINDS: usize = 7;

impl Kind {
    pub const ALL: [Kind; KINDS] = [
        Kind::SharedCli,
        Kind::SharedGroup,
        Kind::LeadList,
        Kind::SameIp,
        Kind::ShiftSync,
        Kind::Campaign,
        Kind::Monitoring,
    ];

    pub fn name(self) -> &'static str {
        ["shared-cli", "shared-group", "lead-list", "same-ip", "shift-sync", "campaign", "monitoring"][self as usize]
    }

    fn column(self) -> &'static str {
        [
            "links_shared_cli",
            "links_shared_group",
            "links_lead_list",
            "links_same_ip",
            "links_shift_sync",
            "links_campaign",
            "links_monitoring",
        ][self as usize]
    }
}

/// `[rules.crew]`: what ties two operators, how strong a tie makes them one crew, and when a crew
/// is a finding.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CrewConfig {
    /// A link whose kinds' weights add up to this is strong; crews are joined by strong links.
    pub min_strength: f64,
    /// A value (caller ID, network, campaign, group, callee) shared by more operators than this
    /// ties nobody in particular: it is not counted.
    pub max_group: u32,
    /// Distinct caller IDs both showed on a same day (a pool shared, not one number).
    pub shared_clis: u32,
    /// Chat groups both fed with conversions ...
    pub shared_groups: u32,
    /// ... at least this many each (one coincidental join into a group ties nobody).
    pub group_min_conversions: u32,
    /// Callees both dialled, at least this many ...
    pub lead_list_min_common: u32,
    /// ... and at most this chance of so many common callees among lists of their sizes.
    pub lead_list_max_chance: f64,
    /// (day, IPv4 /24 or IPv6 /48) pairs both called from.
    pub same_ip_days: u32,
    /// First shifts of a day starting within this many minutes of each other ...
    pub sync_minutes: u32,
    /// ... on at least this many days.
    pub sync_days: u32,
    /// (day, campaign or outbound task) pairs both worked.
    pub campaign_days: u32,
    /// Monitoring sessions of one by the other.
    pub monitoring_sessions: u32,
    /// Each kind's weight in a link's strength.
    pub weights: Weights,
    /// A crew is a finding when at least this many members have findings of `diversion_rules`.
    pub min_flagged_members: u32,
    pub diversion_rules: Vec<String>,
    /// A member counts as flagged when a finding of `diversion_rules` on it scores at least this
    /// (0.8: high severity; one medium finding, such as a few calls from a home IP once, does not).
    pub min_member_score: f64,
    /// Internal calls of at most this many seconds into at least `brief_call_targets` operators'
    /// seats on one day are monitoring (a team leader or checker listening in by calling).
    pub brief_call_seconds: u32,
    pub brief_call_targets: u32,
    /// The pay scheme the earnings estimate uses.
    pub pay: PayConfig,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Weights {
    pub shared_cli: f64,
    pub shared_group: f64,
    pub lead_list: f64,
    pub same_ip: f64,
    pub shift_sync: f64,
    pub campaign: f64,
    pub monitoring: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            shared_cli: 1.0,
            shared_group: 1.0,
            lead_list: 1.0,
            same_ip: 0.5,
            shift_sync: 0.5,
            campaign: 0.5,
            monitoring: 1.0,
        }
    }
}

/// `[rules.crew.pay]`: the ring's pay scheme (seed case: 200 yuan a day for 8-10 h of talk, 5-10
/// yuan per victim pulled into a group).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PayConfig {
    pub currency: String,
    /// Paid for a day whose talk reaches `quota_hours`.
    pub day_rate: f64,
    pub quota_hours: f64,
    /// Per conversion: low and high.
    pub commission: [f64; 2],
}

impl Default for PayConfig {
    fn default() -> Self {
        Self { currency: "CNY".into(), day_rate: 200.0, quota_hours: 8.0, commission: [5.0, 10.0] }
    }
}

impl Default for CrewConfig {
    fn default() -> Self {
        Self {
            min_strength: 1.0,
            max_group: 50,
            shared_clis: 2,
            shared_groups: 1,
            group_min_conversions: 2,
            lead_list_min_common: 10,
            lead_list_max_chance: 1e-6,
            same_ip_days: 2,
            sync_minutes: 10,
            sync_days: 3,
            campaign_days: 1,
            monitoring_sessions: 1,
            weights: Weights::default(),
            min_flagged_members: 2,
            diversion_rules: ["spoofed-foreign-cli", "group-invite-conversion", "cli-rotation", "repeat-spoofer"]
                .map(String::from)
                .to_vec(),
            min_member_score: 0.8,
            brief_call_seconds: 120,
            brief_call_targets: 3,
            pay: PayConfig::default(),
        }
    }
}

impl CrewConfig {
    /// A kind's threshold (the lead list has two: [`Pair::meets`]).
    pub fn threshold(&self, k: Kind) -> u32 {
        match k {
            Kind::SharedCli => self.shared_clis,
            Kind::SharedGroup => self.shared_groups,
            Kind::LeadList => self.lead_list_min_common,
            Kind::SameIp => self.same_ip_days,
            Kind::ShiftSync => self.sync_days,
            Kind::Campaign => self.campaign_days,
            Kind::Monitoring => self.monitoring_sessions,
        }
    }

    pub fn weight(&self, k: Kind) -> f64 {
        let w = &self.weights;
        match k {
            Kind::SharedCli => w.shared_cli,
            Kind::SharedGroup => w.shared_group,
            Kind::LeadList => w.lead_list,
            Kind::SameIp => w.same_ip,
            Kind::ShiftSync => w.shift_sync,
            Kind::Campaign => w.campaign,
            Kind::Monitoring => w.monitoring,
        }
    }
}

pub const TOML: &str = r#"[rules.crew]
min_strength = 1.0          # a link whose kinds' weights add up to this is strong; crews are joined by strong links
max_group = 50              # a value shared by more operators (a switchboard number, a NAT) ties nobody
shared_clis = 2             # distinct caller IDs both showed on a same day (a pool, not one number)
shared_groups = 1           # chat groups both fed with conversions ...
group_min_conversions = 2   # ... at least this many each (one coincidental join ties nobody)
lead_list_min_common = 10   # callees both dialled, at least this many ...
lead_list_max_chance = 1e-6 # ... and at most this chance of so many among lists of their sizes
same_ip_days = 2            # (day, IPv4 /24 or IPv6 /48) pairs both called from
sync_minutes = 10           # first shifts of a day starting this close ...
sync_days = 3               # ... on this many days
campaign_days = 1           # (day, campaign / outbound task) pairs both worked
monitoring_sessions = 1     # sessions of one listening in on the other
min_flagged_members = 2     # a crew with this many members flagged by diversion_rules is a finding
diversion_rules = ["spoofed-foreign-cli", "group-invite-conversion", "cli-rotation", "repeat-spoofer"]
min_member_score = 0.8      # ... with a finding scoring at least this (high severity)
brief_call_seconds = 120    # internal calls this short ...
brief_call_targets = 3      # ... into this many operators' seats on a day are monitoring

[rules.crew.weights]
shared_cli = 1.0
shared_group = 1.0
lead_list = 1.0
same_ip = 0.5
shift_sync = 0.5
campaign = 0.5
monitoring = 1.0

[rules.crew.pay]             # the earnings estimate (restitution): the ring's pay scheme
currency = "CNY"
day_rate = 200.0            # paid for a day whose talk reaches quota_hours
quota_hours = 8.0
commission = [5.0, 10.0]    # per conversion, low and high

"#;

const METRICS: &[Metric] = &[
    Metric { name: "crew_id", dtype: DataType::String, places: 0 },
    Metric { name: "pay_days", dtype: DataType::Int64, places: 0 },
    Metric { name: "est_earnings_low", dtype: DataType::Float64, places: 2 },
    Metric { name: "est_earnings_high", dtype: DataType::Float64, places: 2 },
];

pub const DOC: &str = "\
crew: operators tied by shared caller IDs, groups, callees, networks, shifts, campaigns or monitoring

## What it does
Builds a graph of operators whose links carry named evidence, each kind counted and held to its
own threshold ([rules.crew]):
  shared-cli    caller IDs both showed on the same day: shared_clis distinct ones (a pool;
                one number two teams happen to share is no tie)
  shared-group  chat groups both fed with conversions (shared_groups)
  lead-list     callees both dialled: at least lead_list_min_common, and at most a
                lead_list_max_chance chance of so many among random lists of their sizes
                (Poisson tail, expected = |A| x |B| / all callees): two callees in common out of
                a thousand is chance, forty is one list
  same-ip       the same IPv4 /24 or IPv6 /48 on the same day (same_ip_days)
  shift-sync    first shifts of a day starting within sync_minutes on sync_days days
  campaign      the same campaign / outbound task on the same day (campaign_days)
  monitoring    one listened in on the other (ChanSpy / ExtenSpy / eavesdrop legs, or brief
                internal calls into many operators' seats)
A value shared by more than max_group operators (a company's switchboard number, a carrier NAT,
a whole centre starting at nine) is not counted. A link's strength is the sum of the weights of
its kinds that meet their thresholds; it is strong at min_strength (default: any one of
shared-cli, shared-group, lead-list or monitoring; or two of same-ip, shift-sync, campaign).

Crews are the connected components of the strong links (petgraph's union-find): every member is
tied to the crew by a chain of strong links, each of which links.csv names with its evidence. A
crew is a finding when at least min_flagged_members members have findings of diversion_rules
scoring at least min_member_score;
a legitimate team (one company number, one office network) is a crew in crews.csv and no
finding.

Earnings (restitution) are estimated per operator from the pay scheme in [rules.crew.pay]:
day_rate for each local day whose talk reaches quota_hours, plus commission (low and high) per
conversion; totals per crew. An estimate from the scheme, not a payroll.

## Why it matters
The seed case is an organisation: leaders split victim lists among crews, crews share caller-ID
pools and chat groups, quality checkers listen in. Prosecutors need the crews, who monitored
whom, and what each person earned.

## Outputs
crews.csv, links.csv, monitoring.csv, graph.graphml (Gephi, yEd, i2), operators.csv crew_id,
pay_days, est_earnings_low and est_earnings_high; a crew page in report.html; report --crew ID.

## Example
crew-2003: 7 operators; 21 shared-cli links, 15 shared-group, 21 lead-list; 6 members flagged
(spoofed-foreign-cli, group-invite-conversion); seat 9001 listened to 6 of them; estimated pay
10 800-12 400 CNY.
";

impl RuleDoc for Crew {
    fn id(&self) -> &'static str {
        "crew"
    }
    fn summary(&self) -> &'static str {
        "crews of operators tied by named evidence, their monitoring seats and earnings"
    }
    fn explain(&self) -> &'static str {
        DOC
    }
    fn defaults(&self, cfg: &RulesConfig) -> String {
        let c = &cfg.crew;
        format!(
            "min_strength = {}, shared_clis = {}, lead_list_min_common = {}, sync_minutes = {}, sync_days = {}, min_flagged_members = {}",
            c.min_strength, c.shared_clis, c.lead_list_min_common, c.sync_minutes, c.sync_days, c.min_flagged_members
        )
    }
    fn reads(&self, _cfg: &RulesConfig) -> Vec<&'static str> {
        vec!["campaign", "monitored"]
    }
    fn metrics(&self) -> &'static [Metric] {
        METRICS
    }
    fn config_toml(&self) -> &'static str {
        TOML
    }
    fn validate(&self, cfg: &RulesConfig) -> Result<()> {
        let c = &cfg.crew;
        anyhow::ensure!(c.min_strength > 0.0, "rules.crew.min_strength must be > 0");
        anyhow::ensure!(c.max_group >= 2, "rules.crew.max_group must be at least 2");
        anyhow::ensure!(
            c.lead_list_max_chance > 0.0 && c.lead_list_max_chance <= 1.0,
            "rules.crew.lead_list_max_chance must be in (0, 1]"
        );
        anyhow::ensure!(c.pay.commission[0] <= c.pay.commission[1], "rules.crew.pay.commission must be [low, high]");
        anyhow::ensure!(c.pay.quota_hours > 0.0, "rules.crew.pay.quota_hours must be > 0");
        for r in &c.diversion_rules {
            anyhow::ensure!(super::all_ids().contains(&r.as_str()), "rules.crew.diversion_rules: unknown rule {r:?}");
        }
        Ok(())
    }
}

/// What the crew analysis keeps over the partitions of one scan.
#[derive(Default)]
pub struct Collector {
    facts: Facts,
}

impl Collector {
    pub fn add(&mut self, input: &AuditInput) -> Result<()> {
        self.facts.add(input)
    }

    /// The pairs' evidence from the facts alone, once every partition is in: the pipeline runs
    /// this beside the other rules' finish (it needs none of their output).
    pub fn link(self, cfg: &RulesConfig) -> Linked {
        let t0 = std::time::Instant::now();
        let mut facts = self.facts;
        // operators in id order: the same indices whatever the partitioning
        id_order(&mut facts);
        let pairs = links::pairs(&mut facts, &cfg.crew);
        crate::diag::trace("crew pairs", t0);
        Linked { facts, pairs }
    }
}

/// The facts and the pairs they tie ([`Collector::link`]).
pub struct Linked {
    facts: Facts,
    pairs: HashMap<u64, links::Pair>,
}

/// What the crew analysis reads of the other rules' output.
pub struct Judged<'a> {
    pub findings: &'a [Finding],
    /// conversions.csv's frame (`operator_id`, `group_id`, …), if joins were read.
    pub conversions: Option<&'a DataFrame>,
    /// This run's day profiles (talk and conversions per operator and day).
    pub profiles: &'a [DayProfile],
    pub tz: chrono_tz::Tz,
}

/// One crew.
struct CrewOf {
    id: String,
    members: Vec<u32>,
}

/// Per operator: pay days, conversions and the estimate.
#[derive(Clone, Copy, Default)]
struct Pay {
    days: u32,
    conversions: u32,
}

impl Crew {
    /// The graph over every operator, the crews, their findings and the earnings.
    pub fn finish(&self, l: Linked, judged: &Judged, cfg: &RulesConfig) -> Result<RuleOutput> {
        let cc = &cfg.crew;
        let Linked { facts, mut pairs } = l;
        let t0 = std::time::Instant::now();
        let (mut fed, group_text) = groups_fed(judged.conversions, &facts.ops, cc.group_min_conversions)?;
        links::add_groups(&mut pairs, &mut fed, &group_text, cc);
        let monitors = links::monitoring(&facts, cc, &mut pairs);
        let n = facts.ops.len();
        let mut uf = UnionFind::<u32>::new(n);
        let mut strong: Vec<(u64, f64)> = Vec::new();
        let mut keys: Vec<u64> = pairs.keys().copied().collect();
        keys.sort_unstable();
        for k in &keys {
            let s = pairs[k].strength(cc);
            if s >= cc.min_strength {
                let (a, b) = unpack(*k);
                uf.union(a, b);
                strong.push((*k, s));
            }
        }
        let crews = crews_of(&uf, &facts.ops, &strong);
        let mut crew_of: Vec<Option<usize>> = vec![None; n];
        for (i, c) in crews.iter().enumerate() {
            for m in &c.members {
                crew_of[*m as usize] = Some(i);
            }
        }
        let pay = pay_of(&facts.ops, judged.profiles, &cc.pay);
        let flagged = flagged_of(judged.findings, &cc.diversion_rules, cc.min_member_score);
        let evident = evident(&pairs, &keys, cc);
        let per = per_crew(crews.len(), &crew_of, &evident, &facts, &monitors);
        let ctx = Tables {
            evident,
            per,
            facts: &facts,
            crews: &crews,
            crew_of: &crew_of,
            pay: &pay,
            flagged: &flagged,
            monitors: &monitors,
            cfg: cc,
            tz: judged.tz,
        };
        crate::diag::trace("crew components", t0);
        let mut out = RuleOutput { findings: ctx.findings(), ..Default::default() };
        crate::diag::trace("crew findings", t0);
        out.tables.push(("crews", ctx.crews_table()?));
        out.tables.push(("links", ctx.links_table()?));
        out.tables.push(("monitoring", ctx.monitoring_table()?));
        out.operator_metrics = Some(ctx.metrics()?);
        crate::diag::trace("crew tables", t0);
        out.files.push(("graph.graphml", ctx.graphml()?));
        crate::diag::trace("crew graphml", t0);
        Ok(out)
    }
}

/// Renumber the facts' operators in id order (a partitioned scan meets them in another order).
fn id_order(f: &mut Facts) {
    let mut idx: Vec<u32> = (0..f.ops.len() as u32).collect();
    idx.sort_by(|a, b| f.ops[*a as usize].cmp(&f.ops[*b as usize]));
    let mut to = vec![0u32; idx.len()];
    for (new, old) in idx.iter().enumerate() {
        to[*old as usize] = new as u32;
    }
    f.ops = idx.iter().map(|o| std::mem::take(&mut f.ops[*o as usize])).collect();
    for v in [&mut f.clis, &mut f.networks, &mut f.campaigns] {
        v.iter_mut().for_each(|x| x.1 = to[x.1 as usize]);
    }
    f.callees.iter_mut().for_each(|x| x.0 = to[x.0 as usize]);
    f.starts.iter_mut().for_each(|x| x.2 = to[x.2 as usize]);
    f.listens.iter_mut().for_each(|l| l.listener = to[l.listener as usize]);
    // listens in a fixed order (examples and references are the first ones)
    f.listens.sort_by(|a, b| (a.listener, a.start_us, &a.reference).cmp(&(b.listener, b.start_us, &b.reference)));
}

/// (group key, operator) pairs, and the groups' names by value.
type GroupsFed = (Vec<(facts::Key, u32)>, HashMap<u64, String>);

/// (group, operator) of every attributed conversion, and the groups' names.
fn groups_fed(conv: Option<&DataFrame>, ops: &[String], min: u32) -> Result<GroupsFed> {
    let (mut fed, mut text) = (Vec::new(), HashMap::default());
    let Some(conv) = conv else { return Ok((fed, text)) };
    let index: HashMap<&str, u32> = ops.iter().enumerate().map(|(i, o)| (o.as_str(), i as u32)).collect();
    let (op, g) = (conv.column("operator_id")?.str()?, conv.column("group_id")?.str()?);
    for (o, g) in op.iter().zip(g.iter()) {
        if let (Some(o), Some(g)) = (o.and_then(|o| index.get(o)), g) {
            let v = facts::text_value(g);
            text.entry(v).or_insert_with(|| g.to_string());
            fed.push((facts::key(0, v), *o));
        }
    }
    // (group, operator) kept when the operator fed the group `min` conversions
    fed.sort_unstable();
    let fed = fed.chunk_by(|a, b| a == b).filter(|g| g.len() as u32 >= min).map(|g| g[0]).collect();
    Ok((fed, text))
}

/// The components of two or more operators, named after their first member.
fn crews_of(uf: &UnionFind<u32>, ops: &[String], strong: &[(u64, f64)]) -> Vec<CrewOf> {
    let mut by_root: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let linked: BTreeSet<u32> = strong
        .iter()
        .flat_map(|(k, _)| {
            let (a, b) = unpack(*k);
            [a, b]
        })
        .collect();
    for o in linked {
        by_root.entry(uf.find(o)).or_default().push(o);
    }
    let mut crews: Vec<CrewOf> = by_root
        .into_values()
        .map(|mut m| {
            m.sort_unstable();
            CrewOf { id: format!("crew-{}", ops[m[0] as usize]), members: m }
        })
        .collect();
    crews.sort_by(|a, b| b.members.len().cmp(&a.members.len()).then(a.id.cmp(&b.id)));
    crews
}

fn pay_of(ops: &[String], profiles: &[DayProfile], p: &PayConfig) -> Vec<Pay> {
    let index: HashMap<&str, usize> = ops.iter().enumerate().map(|(i, o)| (o.as_str(), i)).collect();
    let mut pay = vec![Pay::default(); ops.len()];
    for d in profiles {
        if let Some(&i) = index.get(d.operator_id.as_str()) {
            pay[i].days += u32::from(d.talk_h + 1e-9 >= p.quota_hours);
            pay[i].conversions += d.conversions;
        }
    }
    pay
}

impl Pay {
    fn low(self, p: &PayConfig) -> f64 {
        f64::from(self.days) * p.day_rate + f64::from(self.conversions) * p.commission[0]
    }
    fn high(self, p: &PayConfig) -> f64 {
        f64::from(self.days) * p.day_rate + f64::from(self.conversions) * p.commission[1]
    }
}

/// Operators with findings of the diversion rules, and which.
fn flagged_of(findings: &[Finding], rules: &[String], min_score: f64) -> BTreeMap<String, BTreeSet<&'static str>> {
    let mut m: BTreeMap<String, BTreeSet<&'static str>> = BTreeMap::new();
    for f in findings.iter().filter(|f| f.score >= min_score && rules.iter().any(|r| r == f.rule)) {
        if let Some(o) = &f.operator_id {
            m.entry(o.clone()).or_default().insert(f.rule);
        }
    }
    m
}

/// Everything the crew outputs are made from.
struct Tables<'a> {
    facts: &'a Facts,
    crews: &'a [CrewOf],
    crew_of: &'a [Option<usize>],
    pay: &'a [Pay],
    flagged: &'a BTreeMap<String, BTreeSet<&'static str>>,
    monitors: &'a [Monitor],
    cfg: &'a CrewConfig,
    tz: chrono_tz::Tz,
    /// Every pair with a kind over its threshold: (a, b, the pair, its kinds), by pair key.
    evident: Vec<(u32, u32, &'a Pair, Vec<Kind>)>,
    /// What each crew's columns read, gathered in one pass over the facts (per crew and fact,
    /// a 10 M-row scan's thousand crews took 11 s).
    per: Vec<PerCrew>,
}

/// One crew's aggregates.
#[derive(Default)]
struct PerCrew {
    by_kind: [u32; KINDS],
    /// Indices into [`Tables::evident`] of the links among its members.
    links: Vec<usize>,
    groups: BTreeSet<String>,
    /// Caller ID → members who showed it.
    clis: BTreeMap<u64, BTreeSet<u32>>,
    first: Option<i32>,
    last: Option<i32>,
    seats: BTreeSet<String>,
}

/// Every pair with a kind over its threshold, in key order.
fn evident<'a>(pairs: &'a HashMap<u64, Pair>, keys: &[u64], cfg: &CrewConfig) -> Vec<(u32, u32, &'a Pair, Vec<Kind>)> {
    keys.iter()
        .filter_map(|k| {
            let p = &pairs[k];
            let kinds = p.kinds(cfg);
            let (a, b) = unpack(*k);
            (!kinds.is_empty()).then_some((a, b, p, kinds))
        })
        .collect()
}

/// Each crew's aggregates, in one pass over the links, caller IDs, shift starts and monitoring.
fn per_crew(
    n: usize,
    crew_of: &[Option<usize>],
    evident: &[(u32, u32, &Pair, Vec<Kind>)],
    facts: &Facts,
    monitors: &[Monitor],
) -> Vec<PerCrew> {
    let mut per: Vec<PerCrew> = (0..n).map(|_| PerCrew::default()).collect();
    for (i, (a, b, p, kinds)) in evident.iter().enumerate() {
        if let (Some(x), Some(y)) = (crew_of[*a as usize], crew_of[*b as usize])
            && x == y
        {
            let c = &mut per[x];
            c.links.push(i);
            for k in kinds {
                c.by_kind[*k as usize] += 1;
                if *k == Kind::SharedGroup {
                    c.groups.extend(p.examples[Kind::SharedGroup as usize].iter().cloned());
                }
            }
        }
    }
    for (k, o) in &facts.clis {
        if let Some(c) = crew_of[*o as usize] {
            per[c].clis.entry(facts::unkey(*k).1).or_default().insert(*o);
        }
    }
    for (d, _, o) in &facts.starts {
        if let Some(c) = crew_of[*o as usize] {
            let pc = &mut per[c];
            pc.first = Some(pc.first.map_or(*d, |x| x.min(*d)));
            pc.last = Some(pc.last.map_or(*d, |x| x.max(*d)));
        }
    }
    let index: HashMap<&str, u32> = facts.ops.iter().enumerate().map(|(i, o)| (o.as_str(), i as u32)).collect();
    for m in monitors {
        if let Some(c) = index.get(m.listener.as_str()).and_then(|i| crew_of[*i as usize]) {
            per[c].seats.insert(m.listener.clone());
        }
    }
    per
}

impl Tables<'_> {
    fn per(&self, c: &CrewOf) -> &PerCrew {
        &self.per[self.crew_of[c.members[0] as usize].expect("a member is in its crew")]
    }

    fn op(&self, i: u32) -> &str {
        &self.facts.ops[i as usize]
    }

    fn crew_id(&self, i: u32) -> &str {
        self.crew_of[i as usize].map_or("", |c| self.crews[c].id.as_str())
    }

    /// Every pair with at least one kind over its threshold: (a, b, its kinds).
    fn evident(&self) -> impl Iterator<Item = (u32, u32, &Pair, &[Kind])> + '_ {
        self.evident.iter().map(|(a, b, p, k)| (*a, *b, *p, k.as_slice()))
    }

    /// Per crew: links by kind among its members (that meet their thresholds).
    fn links_by_kind(&self) -> Vec<[u32; KINDS]> {
        self.per.iter().map(|c| c.by_kind).collect()
    }

    /// The caller IDs at least two members showed, most shared first.
    fn shared_clis(&self, c: &CrewOf) -> Vec<String> {
        let mut v: Vec<(usize, u64)> =
            self.per(c).clis.iter().filter(|(_, s)| s.len() >= 2).map(|(c, s)| (s.len(), *c)).collect();
        v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        v.into_iter().map(|(_, c)| format!("+{c}")).collect()
    }

    fn days(&self, c: &CrewOf) -> (Option<i32>, Option<i32>) {
        let p = self.per(c);
        (p.first, p.last)
    }

    fn monitoring_seats(&self, c: &CrewOf) -> Vec<String> {
        self.per(c).seats.iter().cloned().collect()
    }

    fn groups(&self, c: &CrewOf) -> Vec<String> {
        self.per(c).groups.iter().cloned().collect()
    }

    fn flagged_members(&self, c: &CrewOf) -> Vec<String> {
        c.members
            .iter()
            .filter_map(|m| {
                let o = self.op(*m);
                self.flagged.get(o).map(|r| format!("{o} ({})", r.iter().copied().collect::<Vec<_>>().join(", ")))
            })
            .collect()
    }

    fn crew_pay(&self, c: &CrewOf) -> (u32, u32, f64, f64) {
        let p = &self.cfg.pay;
        c.members.iter().map(|m| self.pay[*m as usize]).fold((0, 0, 0.0, 0.0), |acc, x| {
            (acc.0 + x.days, acc.1 + x.conversions, acc.2 + x.low(p), acc.3 + x.high(p))
        })
    }

    fn crews_table(&self) -> Result<DataFrame> {
        let by_kind = self.links_by_kind();
        let mut cols: Vec<Column> = vec![
            Column::new("crew_id".into(), self.crews.iter().map(|c| c.id.clone()).collect::<Vec<_>>()),
            Column::new("size".into(), self.crews.iter().map(|c| c.members.len() as i64).collect::<Vec<_>>()),
            Column::new(
                "members".into(),
                self.crews
                    .iter()
                    .map(|c| c.members.iter().map(|m| self.op(*m)).collect::<Vec<_>>().join(";"))
                    .collect::<Vec<_>>(),
            ),
        ];
        for k in Kind::ALL {
            cols.push(Column::new(
                k.column().into(),
                by_kind.iter().map(|v| i64::from(v[k as usize])).collect::<Vec<_>>(),
            ));
        }
        let days: Vec<(Option<i32>, Option<i32>)> = self.crews.iter().map(|c| self.days(c)).collect();
        let day_text = |d: Option<i32>| d.map(|d| day_of(d).to_string());
        cols.push(Column::new("first_day".into(), days.iter().map(|d| day_text(d.0)).collect::<Vec<_>>()));
        cols.push(Column::new("last_day".into(), days.iter().map(|d| day_text(d.1)).collect::<Vec<_>>()));
        let list = |f: &dyn Fn(&CrewOf) -> Vec<String>| self.crews.iter().map(|c| f(c).join(";")).collect::<Vec<_>>();
        cols.push(Column::new("flagged_members".into(), list(&|c| self.flagged_members(c))));
        cols.push(Column::new("monitoring_seats".into(), list(&|c| self.monitoring_seats(c))));
        cols.push(Column::new("shared_clis".into(), list(&|c| self.shared_clis(c))));
        cols.push(Column::new("groups".into(), list(&|c| self.groups(c))));
        let pay: Vec<(u32, u32, f64, f64)> = self.crews.iter().map(|c| self.crew_pay(c)).collect();
        cols.push(Column::new("pay_days".into(), pay.iter().map(|p| i64::from(p.0)).collect::<Vec<_>>()));
        cols.push(Column::new("conversions".into(), pay.iter().map(|p| i64::from(p.1)).collect::<Vec<_>>()));
        cols.push(Column::new("est_earnings_low".into(), pay.iter().map(|p| round(p.2, 2)).collect::<Vec<_>>()));
        cols.push(Column::new("est_earnings_high".into(), pay.iter().map(|p| round(p.3, 2)).collect::<Vec<_>>()));
        cols.push(Column::new("currency".into(), vec![self.cfg.pay.currency.clone(); self.crews.len()]));
        Ok(DataFrame::new(self.crews.len(), cols)?)
    }

    fn links_table(&self) -> Result<DataFrame> {
        let (mut from, mut to, mut kind, mut weight, mut strength, mut strong, mut crew, mut evidence) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        for (a, b, p, kinds) in self.evident() {
            let s = p.strength(self.cfg);
            for &k in kinds {
                from.push(self.op(a).to_string());
                to.push(self.op(b).to_string());
                kind.push(k.name());
                weight.push(i64::from(p.counts[k as usize]));
                strength.push(round(s, 2));
                strong.push(s >= self.cfg.min_strength);
                let same = self.crew_of[a as usize].is_some() && self.crew_of[a as usize] == self.crew_of[b as usize];
                crew.push(if same { self.crew_id(a).to_string() } else { String::new() });
                evidence.push(p.examples[k as usize].join("; "));
            }
        }
        Ok(DataFrame::new(
            from.len(),
            vec![
                Column::new("from".into(), from),
                Column::new("to".into(), to),
                Column::new("kind".into(), kind),
                Column::new("weight".into(), weight),
                Column::new("strength".into(), strength),
                Column::new("strong".into(), strong),
                Column::new("crew_id".into(), crew),
                Column::new("evidence".into(), evidence),
            ],
        )?)
    }

    fn monitoring_table(&self) -> Result<DataFrame> {
        let m = self.monitors;
        let index: HashMap<&str, u32> =
            self.facts.ops.iter().enumerate().map(|(i, o)| (o.as_str(), i as u32)).collect();
        let crew = |o: &str| index.get(o).map_or(String::new(), |i| self.crew_id(*i).to_string());
        Ok(DataFrame::new(
            m.len(),
            vec![
                Column::new("listener".into(), m.iter().map(|x| x.listener.clone()).collect::<Vec<_>>()),
                Column::new("target".into(), m.iter().map(|x| x.target.clone()).collect::<Vec<_>>()),
                Column::new("how".into(), m.iter().map(|x| x.how).collect::<Vec<_>>()),
                Column::new("days".into(), m.iter().map(|x| x.days.len() as i64).collect::<Vec<_>>()),
                Column::new("sessions".into(), m.iter().map(|x| i64::from(x.sessions)).collect::<Vec<_>>()),
                Column::new(
                    "listen_min".into(),
                    m.iter().map(|x| round(x.listen_s as f64 / 60.0, 1)).collect::<Vec<_>>(),
                ),
                Column::new("first_us".into(), m.iter().map(|x| x.first_us).collect::<Vec<_>>()),
                Column::new("last_us".into(), m.iter().map(|x| x.last_us).collect::<Vec<_>>()),
                Column::new("crew_id".into(), m.iter().map(|x| crew(&x.listener)).collect::<Vec<_>>()),
                Column::new("refs".into(), m.iter().map(|x| x.refs.join(";")).collect::<Vec<_>>()),
            ],
        )?)
    }

    fn metrics(&self) -> Result<DataFrame> {
        let n = self.facts.ops.len();
        let p = &self.cfg.pay;
        Ok(DataFrame::new(
            n,
            vec![
                Column::new("operator_id".into(), self.facts.ops.clone()),
                Column::new("crew_id".into(), (0..n as u32).map(|i| self.crew_id(i).to_string()).collect::<Vec<_>>()),
                Column::new("pay_days".into(), self.pay.iter().map(|x| i64::from(x.days)).collect::<Vec<_>>()),
                Column::new("est_earnings_low".into(), self.pay.iter().map(|x| round(x.low(p), 2)).collect::<Vec<_>>()),
                Column::new(
                    "est_earnings_high".into(),
                    self.pay.iter().map(|x| round(x.high(p), 2)).collect::<Vec<_>>(),
                ),
            ],
        )?)
    }

    /// A crew finding for each crew with enough members flagged for diversion.
    fn findings(&self) -> Vec<Finding> {
        let by_kind = self.links_by_kind();
        let mut out = Vec::new();
        for (i, c) in self.crews.iter().enumerate() {
            let flagged = self.flagged_members(c);
            if (flagged.len() as u32) < self.cfg.min_flagged_members {
                continue;
            }
            let score = round((0.5 + 0.1 * flagged.len() as f64).min(1.0), 2);
            let (lo, hi) = self.days(c);
            let (lo, hi) = (lo.map(day_of).unwrap_or_default(), hi.map(day_of).unwrap_or_default());
            let kinds: Vec<String> = Kind::ALL
                .iter()
                .filter(|k| by_kind[i][**k as usize] > 0)
                .map(|k| format!("{} {}", by_kind[i][*k as usize], k.name()))
                .collect();
            let seats = self.monitoring_seats(c);
            let (days, conv, low, high) = self.crew_pay(c);
            let cur = &self.cfg.pay.currency;
            let members: Vec<&str> = c.members.iter().map(|m| self.op(*m)).collect();
            let summary = format!(
                "Crew {} of {} operators tied by {} links; {} of them flagged for diversion{}; estimated pay {:.0}-{:.0} {cur} over {days} paid day(s) and {conv} conversion(s).",
                c.id,
                members.len(),
                kinds.join(", "),
                flagged.len(),
                if seats.is_empty() { String::new() } else { format!("; monitored by {}", seats.join(", ")) },
                low,
                high
            );
            let links: Vec<serde_json::Value> = self
                .per(c)
                .links
                .iter()
                .take(20)
                .map(|i| &self.evident[*i])
                .map(|(a, b, p, kinds)| {
                    let (a, b) = (*a, *b);
                    json!({"from": self.op(a), "to": self.op(b), "kinds": kinds.iter().map(|k| k.name()).collect::<Vec<_>>(), "strength": round(p.strength(self.cfg), 2), "evidence": kinds.iter().map(|k| p.examples[*k as usize].join("; ")).collect::<Vec<_>>()})
                })
                .collect();
            out.push(Finding {
                rule: "crew",
                severity: Severity::from_score(score),
                operator_id: None,
                subject: Some(c.id.clone()),
                window_start: crate::frame::day_start(lo, self.tz),
                window_end: crate::frame::day_start(hi + chrono::Days::new(1), self.tz),
                score,
                summary,
                evidence: json!({
                    "crew_id": c.id,
                    "members": members,
                    "flagged_members": flagged,
                    "links_by_kind": Kind::ALL.iter().map(|k| (k.name(), by_kind[i][*k as usize])).collect::<BTreeMap<_, _>>(),
                    "monitoring_seats": seats,
                    "shared_clis": self.shared_clis(c).into_iter().take(20).collect::<Vec<_>>(),
                    "groups": self.groups(c),
                    "first_day": lo.to_string(),
                    "last_day": hi.to_string(),
                    "earnings": {"currency": cur, "pay_days": days, "conversions": conv, "low": round(low, 2), "high": round(high, 2), "basis": "estimate from [rules.crew.pay]"},
                    "links": links,
                }),
                fact: None,
            });
        }
        out
    }

    fn graphml(&self) -> Result<Vec<u8>> {
        use graphml::{Edge, Node};
        let mut seen: BTreeSet<u32> = BTreeSet::new();
        let mut edges = Vec::new();
        for (a, b, p, kinds) in self.evident() {
            seen.insert(a);
            seen.insert(b);
            let strong = p.strength(self.cfg) >= self.cfg.min_strength;
            for &k in kinds {
                edges.push(Edge {
                    source: format!("op:{}", self.op(a)),
                    target: format!("op:{}", self.op(b)),
                    kind: k.name(),
                    weight: f64::from(p.counts[k as usize]),
                    strong,
                    evidence: p.examples[k as usize].join("; "),
                });
            }
        }
        let mut nodes: Vec<Node> = seen
            .iter()
            .map(|o| {
                let id = self.op(*o);
                let rules =
                    self.flagged.get(id).map(|r| r.iter().copied().collect::<Vec<_>>().join(";")).unwrap_or_default();
                Node {
                    id: format!("op:{id}"),
                    kind: "operator",
                    label: id.to_string(),
                    crew: self.crew_id(*o).to_string(),
                    flagged: !rules.is_empty(),
                    rules,
                    size: 1,
                }
            })
            .collect();
        for c in self.crews {
            let flagged = self.flagged_members(c).len() as u32 >= self.cfg.min_flagged_members;
            nodes.push(Node {
                id: format!("crew:{}", c.id),
                kind: "crew",
                label: c.id.clone(),
                crew: c.id.clone(),
                rules: String::new(),
                flagged,
                size: c.members.len() as u32,
            });
            for m in &c.members {
                edges.push(Edge {
                    source: format!("op:{}", self.op(*m)),
                    target: format!("crew:{}", c.id),
                    kind: "member-of",
                    weight: 1.0,
                    strong: true,
                    evidence: String::new(),
                });
            }
        }
        graphml::write(&nodes, &edges)
    }
}
