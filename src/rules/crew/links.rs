//! Pairs of operators and the evidence that ties them, kind by kind.
//!
//! Every kind but the lead list and shift synchrony counts shared (day, value) keys: two
//! operators who showed the same caller ID on the same day share one key. A value shared by more
//! than `max_group` operators (a whole centre's switchboard number, a carrier NAT) ties nobody in
//! particular and is skipped. The pairs are counted by sorting packed pair keys rather than in a
//! hash map: at 10 M calls the lead list alone gives millions of pair increments.

use super::facts::{Facts, Key, Listen, day_text, network_text, unkey};
use super::{CrewConfig, KINDS, Kind};
use polars::prelude::{PlHashMap as HashMap, PlHashSet as HashSet};
use rayon::prelude::*;
use std::collections::BTreeMap;

/// The evidence between two operators (`a < b` by index).
#[derive(Clone, Debug, Default)]
pub struct Pair {
    /// Units of evidence per kind: shared (day, caller ID)s, groups, common callees, (day,
    /// network)s, synchronised days, (day, campaign)s, monitoring sessions.
    pub counts: [u32; KINDS],
    /// Up to five examples per kind, as an investigator reads them.
    pub examples: [Vec<String>; KINDS],
    /// The lead list's chance of so many common callees (Poisson tail), when counted.
    pub chance: Option<f64>,
}

impl Pair {
    /// Whether the evidence of `kind` meets its threshold.
    pub fn meets(&self, kind: Kind, cfg: &CrewConfig) -> bool {
        let n = self.counts[kind as usize];
        match kind {
            Kind::LeadList => {
                n >= cfg.lead_list_min_common && self.chance.is_some_and(|p| p <= cfg.lead_list_max_chance)
            }
            _ => n > 0 && n >= cfg.threshold(kind),
        }
    }

    /// The kinds that meet their thresholds.
    pub fn kinds(&self, cfg: &CrewConfig) -> Vec<Kind> {
        Kind::ALL.into_iter().filter(|k| self.meets(*k, cfg)).collect()
    }

    /// The link's strength: the weights of the kinds that meet their thresholds, added.
    pub fn strength(&self, cfg: &CrewConfig) -> f64 {
        self.kinds(cfg).into_iter().map(|k| cfg.weight(k)).sum()
    }
}

fn pack(a: u32, b: u32) -> u64 {
    let (a, b) = if a < b { (a, b) } else { (b, a) };
    (u64::from(a) << 32) | u64::from(b)
}

pub fn unpack(p: u64) -> (u32, u32) {
    ((p >> 32) as u32, p as u32)
}

/// The operator groups of (key, operator) items: each key's operators, when 2..=max of them.
fn groups(items: &mut Vec<(Key, u32)>, max: usize) -> Vec<(Key, Vec<u32>)> {
    items.par_sort_unstable();
    items.dedup();
    items
        .chunk_by(|a, b| a.0 == b.0)
        .filter(|g| g.len() >= 2 && g.len() <= max)
        .map(|g| (g[0].0, g.iter().map(|x| x.1).collect()))
        .collect()
}

/// Each pair of operators of a value (at most `max` of them) gets one more of `kind`.
fn keyed(
    out: &mut HashMap<u64, Pair>,
    kind: Kind,
    items: &mut Vec<(Key, u32)>,
    max: usize,
    say: &dyn Fn(Key) -> String,
) {
    for (k, ops) in groups(items, max) {
        for (i, &a) in ops.iter().enumerate() {
            for &b in &ops[i + 1..] {
                let p = out.entry(pack(a, b)).or_default();
                p.counts[kind as usize] += 1;
                let ex = &mut p.examples[kind as usize];
                if ex.len() < 5 {
                    ex.push(say(k));
                }
            }
        }
    }
}

/// Every pair's evidence from the facts alone (all kinds but `shared-group`, which needs the
/// conversions: [`add_groups`]); this runs while the other rules finish.
pub fn pairs(facts: &mut Facts, cfg: &CrewConfig) -> HashMap<u64, Pair> {
    let max = cfg.max_group as usize;
    let mut out: HashMap<u64, Pair> = HashMap::default();
    let dated = |k: Key, v: String| format!("{} {v}", day_text(unkey(k).0));
    keyed(&mut out, Kind::SameIp, &mut facts.networks, max, &|k| dated(k, network_text(unkey(k).1)));
    let camp = std::mem::take(&mut facts.campaign_text);
    let say_camp = |k: Key| dated(k, camp.get(&unkey(k).1).cloned().unwrap_or_default());
    keyed(&mut out, Kind::Campaign, &mut facts.campaigns, max, &say_camp);
    let t = std::time::Instant::now();
    // the two heaviest kinds side by side, each into a map of its own
    let (clis, callees) = (&mut facts.clis, &facts.callees);
    let (a, b) = rayon::join(
        || {
            let mut m = HashMap::default();
            shared_clis(clis, max, &mut m);
            m
        },
        || {
            let mut m = HashMap::default();
            lead_lists(callees, max, cfg, &mut m);
            m
        },
    );
    merge(&mut out, a);
    merge(&mut out, b);
    crate::diag::trace("crew shared clis and lead lists", t);
    shift_sync(&mut facts.starts, max, cfg, &mut out);
    crate::diag::trace("crew shift sync", t);
    out
}

/// The groups both operators of a pair fed, added to the pairs' evidence.
pub fn add_groups(
    pairs: &mut HashMap<u64, Pair>,
    groups_fed: &mut Vec<(Key, u32)>,
    group_text: &HashMap<u64, String>,
    cfg: &CrewConfig,
) {
    let say = |k: Key| group_text.get(&unkey(k).1).cloned().unwrap_or_default();
    keyed(pairs, Kind::SharedGroup, groups_fed, cfg.max_group as usize, &say);
}

/// A map of some kinds' evidence added to the pairs' evidence.
fn merge(into: &mut HashMap<u64, Pair>, from: HashMap<u64, Pair>) {
    for (k, mut p) in from {
        let e = into.entry(k).or_default();
        for i in 0..KINDS {
            e.counts[i] += p.counts[i];
            if e.examples[i].is_empty() {
                e.examples[i] = std::mem::take(&mut p.examples[i]);
            }
        }
        e.chance = e.chance.or(p.chance);
    }
}

/// Caller IDs both showed on a same day: the count is of distinct caller IDs (one number two crews
/// happen to share, however many days, is one; a pool is many), the examples say which and when.
fn shared_clis(clis: &mut Vec<(Key, u32)>, max: usize, out: &mut HashMap<u64, Pair>) {
    let mut by_pair: HashMap<u64, BTreeMap<u64, Vec<i32>>> = HashMap::default();
    for (k, ops) in groups(clis, max) {
        let (day, cli) = unkey(k);
        for (i, &a) in ops.iter().enumerate() {
            for &b in &ops[i + 1..] {
                by_pair.entry(pack(a, b)).or_default().entry(cli).or_default().push(day);
            }
        }
    }
    for (p, clis) in by_pair {
        let e = out.entry(p).or_default();
        e.counts[Kind::SharedCli as usize] = clis.len() as u32;
        e.examples[Kind::SharedCli as usize] = clis
            .iter()
            .take(5)
            .map(|(c, days)| {
                let d: Vec<String> = days.iter().take(3).map(|d| day_text(*d)).collect();
                let more = if days.len() > 3 { format!(" and {} more day(s)", days.len() - 3) } else { String::new() };
                format!("+{c} on {}{more}", d.join(", "))
            })
            .collect();
    }
}

/// Callees kept for the lead lists above this many (operator, callee) facts: a 1-in-k sample by a
/// hash of the callee, the same sample of every list (sorting 10 M facts cost 0.8 s of a 10 M-row
/// scan; a sampled list's overlap is a random sample of the overlap, and the chance is computed on
/// the sample).
pub const LEAD_SAMPLE_ABOVE: usize = 1_000_000;

/// The 1-in-k sample the lead lists use for `n` (operator, callee) facts: 1 up to
/// [`LEAD_SAMPLE_ABOVE`].
pub fn lead_sample(n: usize) -> u64 {
    n.div_ceil(LEAD_SAMPLE_ABOVE).max(1) as u64
}

/// Common callees per pair, and the chance of so many among lists of those sizes.
fn lead_lists(lists: &[(u32, Vec<u64>)], max: usize, cfg: &CrewConfig, out: &mut HashMap<u64, Pair>) {
    let k = lead_sample(lists.iter().map(|l| l.1.len()).sum());
    // a multiplicative hash spreads the numbers' low digits
    let kept = |c: u64| k == 1 || c.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17).is_multiple_of(k);
    let mut callees: Vec<(u64, u32)> =
        lists.par_iter().flat_map_iter(|(o, l)| l.iter().filter(|c| kept(**c)).map(move |c| (*c, *o))).collect();
    callees.par_sort_unstable();
    callees.dedup();
    // distinct callees in all, and each operator's
    let mut universe = 0u64;
    let n = callees.iter().map(|x| x.1 as usize + 1).max().unwrap_or(0);
    let mut sizes: Vec<u64> = vec![0; n];
    let mut pair_keys: Vec<u64> = Vec::new();
    for g in callees.chunk_by(|a, b| a.0 == b.0) {
        universe += 1;
        for x in g {
            sizes[x.1 as usize] += 1;
        }
        if g.len() >= 2 && g.len() <= max {
            for (i, a) in g.iter().enumerate() {
                for b in &g[i + 1..] {
                    pair_keys.push(pack(a.1, b.1));
                }
            }
        }
    }
    pair_keys.par_sort_unstable();
    let min = cfg.lead_list_min_common as usize;
    for run in pair_keys.chunk_by(|a, b| a == b) {
        let (a, b) = unpack(run[0]);
        let common = run.len();
        // below the minimum the pair is no evidence: not kept (most pairs of a big centre)
        if common < min.max(2) {
            continue;
        }
        let expected = sizes[a as usize] as f64 * sizes[b as usize] as f64 / universe.max(1) as f64;
        let p = out.entry(run[0]).or_default();
        p.counts[Kind::LeadList as usize] = common as u32;
        p.chance = Some(poisson_tail(expected, common as u64));
        let sampled = if k > 1 {
            format!(" (in the 1-in-{k} sample of callees every list is read through)")
        } else {
            String::new()
        };
        p.examples[Kind::LeadList as usize] = vec![format!(
            "{common} common callees of {} and {} dialled ({expected:.2} expected by chance among {universe}){sampled}",
            sizes[a as usize], sizes[b as usize]
        )];
    }
}

/// P(X ≥ k) for X ~ Poisson(λ), summed in log space from k up (the terms fall once k > λ).
pub fn poisson_tail(lambda: f64, k: u64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if lambda <= 0.0 {
        return 0.0;
    }
    if (k as f64) <= lambda {
        // at or below the mean the tail is at least about a half: no evidence either way
        return 1.0_f64.min(0.5 + 0.5 * (1.0 - k as f64 / lambda));
    }
    let ln_term = |j: u64| -lambda + j as f64 * lambda.ln() - ln_factorial(j);
    let mut sum = 0.0;
    let mut j = k;
    loop {
        let t = ln_term(j).exp();
        sum += t;
        if t < sum * 1e-12 || j > k + 10_000 {
            break;
        }
        j += 1;
    }
    sum.min(1.0)
}

/// ln(n!): exact below 30, Stirling's series above.
fn ln_factorial(n: u64) -> f64 {
    if n < 30 {
        return (2..=n).map(|i| (i as f64).ln()).sum();
    }
    let x = n as f64;
    x * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI * x).ln() + 1.0 / (12.0 * x) - 1.0 / (360.0 * x.powi(3))
}

/// Days on which two operators' first shifts started within `sync_minutes` of each other. A
/// start with more than `max_group` others inside the window (a whole centre starting at nine)
/// ties nobody.
fn shift_sync(starts: &mut [(i32, i64, u32)], max: usize, cfg: &CrewConfig, out: &mut HashMap<u64, Pair>) {
    starts.sort_unstable();
    let w = i64::from(cfg.sync_minutes) * 60 * 1_000_000;
    let mut days: HashMap<u64, Vec<i32>> = HashMap::default();
    for day in starts.chunk_by(|a, b| a.0 == b.0) {
        for (i, a) in day.iter().enumerate() {
            let end = day[i..].partition_point(|b| b.1 - a.1 <= w) + i;
            let before = day[..i].partition_point(|b| a.1 - b.1 > w);
            if end - before - 1 > max {
                continue;
            }
            for b in &day[i + 1..end] {
                days.entry(pack(a.2, b.2)).or_default().push(a.0);
            }
        }
    }
    for (k, d) in days {
        let p = out.entry(k).or_default();
        p.counts[Kind::ShiftSync as usize] = d.len() as u32;
        p.examples[Kind::ShiftSync as usize] = d.iter().take(5).map(|d| day_text(*d)).collect();
    }
}

/// Monitoring, as the export shows it.
#[derive(Clone, Debug)]
pub struct Monitor {
    pub listener: String,
    pub target: String,
    /// `spy` (a spy application) or `brief-calls` (short internal calls into many operators).
    pub how: &'static str,
    pub days: Vec<i32>,
    pub sessions: u32,
    pub listen_s: i64,
    pub first_us: i64,
    pub last_us: i64,
    pub refs: Vec<String>,
}

/// Who listened in on whom: every spy application leg, and a seat's brief internal calls into at
/// least `brief_call_targets` operators' seats on one day. Adds a monitoring count to the pair of
/// listener and target when the target is an operator.
pub fn monitoring(facts: &Facts, cfg: &CrewConfig, out: &mut HashMap<u64, Pair>) -> Vec<Monitor> {
    let index: HashMap<&str, u32> = facts.ops.iter().enumerate().map(|(i, o)| (o.as_str(), i as u32)).collect();
    // brief internal calls into operators' seats: (listener, day) → distinct targets
    // an answered call (a ring nobody took listened to nothing), short, into another operator's seat
    let brief = |l: &Listen| {
        !l.spy
            && l.talk_s > 0
            && l.talk_s <= i64::from(cfg.brief_call_seconds)
            && index.contains_key(l.target.as_str())
            && l.target != facts.ops[l.listener as usize]
    };
    let mut reach: HashMap<(u32, i32), HashSet<&str>> = HashMap::default();
    for l in facts.listens.iter().filter(|l| brief(l)) {
        reach.entry((l.listener, l.day)).or_default().insert(l.target.as_str());
    }
    let mut m: BTreeMap<(String, String, &'static str), Monitor> = BTreeMap::new();
    for l in &facts.listens {
        let how = if l.spy {
            "spy"
        } else if brief(l) && reach[&(l.listener, l.day)].len() >= cfg.brief_call_targets as usize {
            "brief-calls"
        } else {
            continue;
        };
        let listener = facts.ops[l.listener as usize].clone();
        let e = m.entry((listener.clone(), l.target.clone(), how)).or_insert_with(|| Monitor {
            listener,
            target: l.target.clone(),
            how,
            days: Vec::new(),
            sessions: 0,
            listen_s: 0,
            first_us: l.start_us,
            last_us: l.start_us,
            refs: Vec::new(),
        });
        e.sessions += 1;
        e.listen_s += l.talk_s;
        e.first_us = e.first_us.min(l.start_us);
        e.last_us = e.last_us.max(l.start_us);
        if !e.days.contains(&l.day) {
            e.days.push(l.day);
        }
        if e.refs.len() < 5 {
            e.refs.push(l.reference.clone());
        }
    }
    let list: Vec<Monitor> = m.into_values().collect();
    for mo in &list {
        if let (Some(&a), Some(&b)) = (index.get(mo.listener.as_str()), index.get(mo.target.as_str()))
            && a != b
        {
            let p = out.entry(pack(a, b)).or_default();
            p.counts[Kind::Monitoring as usize] += mo.sessions;
            let ex = &mut p.examples[Kind::Monitoring as usize];
            if ex.len() < 5 {
                ex.push(format!("{} listened to {} ({} session(s), {})", mo.listener, mo.target, mo.sessions, mo.how));
            }
        }
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_tail_matches_known_values() {
        // P(X >= 2 | λ = 1) = 1 - e^-1 (1 + 1) = 0.2642
        assert!((poisson_tail(1.0, 2) - 0.264_241).abs() < 1e-5);
        // P(X >= 10 | λ = 0.5): about 1.7e-10
        let p = poisson_tail(0.5, 10);
        assert!(p > 1e-10 && p < 2e-10, "{p}");
        assert_eq!(poisson_tail(3.0, 0), 1.0);
        assert!(poisson_tail(10.0, 5) >= 0.5);
    }

    #[test]
    fn ln_factorial_is_continuous_at_the_switch() {
        let exact: f64 = (2..=30u64).map(|i| (i as f64).ln()).sum();
        assert!((ln_factorial(30) - exact).abs() < 1e-9);
    }
}
