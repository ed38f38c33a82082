//! Ground truth from what was generated, not from the population a seat was drawn from: each
//! rule's label is whether the calls and joins written meet that rule's documented contract at its
//! default thresholds (docs/rules.md), with the measure behind it as the reason. A legitimate agent
//! who once talks 8 h in a shift is a true long shift; a split day past 8 h is not. The population
//! stays in truth.json beside the labels, so the rules can also be scored against it.

use std::collections::{BTreeSet, HashMap};

/// Default thresholds of the rules, as their config sections document them.
pub const SHIFT_BREAK_S: i64 = 120 * 60;
pub const LONG_SHIFT_S: i64 = 8 * 3600;
pub const SHARED_CONCURRENT_S: i64 = 15 * 60;
pub const SHARED_RATIO: f64 = 1.5;
pub const SPOOF_MIN_CALLS: u32 = 5;
pub const FANOUT_MIN_CALLEES: usize = 50;
pub const CONVERSION_WINDOW_S: i64 = 60 * 60;
pub const CONVERSION_MIN: usize = 3;
pub const CONVERSION_RATE: f64 = 0.02;
pub const ROTATION_MIN_CALLS: u32 = 20;
pub const ROTATION_MIN_DISTINCT: usize = 5;
pub const ROTATION_MIN_CHANGE: f64 = 0.5;
pub const PAY_QUOTA_S: i64 = 8 * 3600;

/// One call of a seat as written (local seconds).
#[derive(Clone, Copy, Debug)]
pub struct CallFact {
    pub start: i64,
    pub answer: Option<i64>,
    pub end: i64,
    pub talk: i64,
    /// The caller ID shown is foreign (outbound), and the call came from home soil (a home IP or a
    /// domestic trunk).
    pub spoofed: bool,
    pub day: i32,
    /// The caller ID shown, as a number (0: none).
    pub cli: u64,
    pub outbound: bool,
}

/// What one seat's calls say about the shift rules.
pub struct ShiftMeasures {
    pub longest_union_s: i64,
    pub most_concurrent_s: i64,
    pub shared: bool,
    pub spoofed_days: Vec<(i32, u32)>,
    /// Shifts rotating through caller IDs (`cli-rotation`'s contract).
    pub rotating_shifts: u32,
    /// Days (of a shift's start) whose shifts' wall-clock talk reached the pay quota.
    pub pay_days: u32,
}

/// Shifts cut as `long-shift` cuts them; talk as the union of the calls' talk intervals.
pub fn shifts(calls: &mut [CallFact]) -> ShiftMeasures {
    calls.sort_by_key(|c| c.start);
    let mut m = ShiftMeasures {
        longest_union_s: 0,
        most_concurrent_s: 0,
        shared: false,
        spoofed_days: Vec::new(),
        rotating_shifts: 0,
        pay_days: 0,
    };
    let mut day_talk: HashMap<i32, i64> = HashMap::new();
    let mut i = 0;
    while i < calls.len() {
        let mut j = i + 1;
        let mut max_end = calls[i].end;
        while j < calls.len() && calls[j].start - max_end <= SHIFT_BREAK_S {
            max_end = max_end.max(calls[j].end);
            j += 1;
        }
        let iv: Vec<(i64, i64)> = calls[i..j]
            .iter()
            .filter(|c| c.talk > 0)
            .map(|c| {
                let a = c.answer.unwrap_or(c.end - c.talk);
                (a, a + c.talk)
            })
            .collect();
        let (union, at2) = union_and_concurrency(iv.clone());
        let summed: i64 = iv.iter().map(|(a, b)| b - a).sum();
        m.longest_union_s = m.longest_union_s.max(union);
        m.most_concurrent_s = m.most_concurrent_s.max(at2);
        m.shared |=
            at2 >= SHARED_CONCURRENT_S || (union > 0 && at2 > 0 && summed as f64 >= SHARED_RATIO * union as f64);
        *day_talk.entry(calls[i].day).or_default() += union;
        m.rotating_shifts += u32::from(rotates(&calls[i..j]));
        i = j;
    }
    m.pay_days = day_talk.values().filter(|t| **t >= PAY_QUOTA_S).count() as u32;
    let mut per_day: HashMap<i32, u32> = HashMap::new();
    for c in calls.iter().filter(|c| c.spoofed) {
        *per_day.entry(c.day).or_default() += 1;
    }
    m.spoofed_days = per_day.into_iter().collect();
    m.spoofed_days.sort();
    m
}

/// Whether a shift's outbound calls rotate through caller IDs.
fn rotates(shift: &[CallFact]) -> bool {
    let clis: Vec<u64> = shift.iter().filter(|c| c.outbound && c.cli != 0).map(|c| c.cli).collect();
    if (clis.len() as u32) < ROTATION_MIN_CALLS {
        return false;
    }
    let distinct: BTreeSet<u64> = clis.iter().copied().collect();
    let changes = clis.windows(2).filter(|w| w[0] != w[1]).count();
    distinct.len() >= ROTATION_MIN_DISTINCT && changes as f64 / (clis.len() - 1) as f64 >= ROTATION_MIN_CHANGE
}

/// The union of intervals and the time spent at two or more at once. (Written here again on
/// purpose, not taken from `prepare::shifts`: the truth must not share the code it scores.)
fn union_and_concurrency(iv: Vec<(i64, i64)>) -> (i64, i64) {
    let mut ev: Vec<(i64, i32)> = iv.iter().flat_map(|&(a, b)| [(a, 1), (b, -1)]).collect();
    ev.sort_unstable();
    let (mut level, mut since, mut union, mut at2) = (0i32, 0i64, 0i64, 0i64);
    for (t, d) in ev {
        if level >= 1 {
            union += t - since;
        }
        if level >= 2 {
            at2 += t - since;
        }
        since = t;
        level += d;
    }
    (union, at2)
}

/// Cross-seat facts: the caller IDs' daily reach and the answered calls to callees who joined.
#[derive(Default)]
pub struct Shared {
    /// (foreign caller ID, local day) → home callees reached, seats that used it.
    pub fanout: HashMap<(String, i32), (std::collections::HashSet<u64>, BTreeSet<usize>)>,
    /// Per seat: (callee, answer, end) of its answered outbound calls.
    pub answered: HashMap<usize, Vec<(u64, i64, i64)>>,
    /// Every join written: member → join times (local seconds).
    pub joins: HashMap<u64, Vec<i64>>,
}

impl Shared {
    /// The seats with a foreign caller ID that reached the fan-out minimum on some day.
    pub fn fanout_seats(&self) -> HashMap<usize, usize> {
        let mut out: HashMap<usize, usize> = HashMap::new();
        for (callees, seats) in self.fanout.values() {
            if callees.len() >= FANOUT_MIN_CALLEES {
                for s in seats {
                    let e = out.entry(*s).or_default();
                    *e = (*e).max(callees.len());
                }
            }
        }
        out
    }

    /// Per seat: its answered distinct callees, and the callees credited to it. As
    /// `group-invite-conversion` credits them: each join goes to the qualifying call (answered,
    /// outbound, joined between its answer and the window after its end) that ended last, whoever
    /// made it.
    pub fn conversions(&self) -> HashMap<usize, (usize, usize)> {
        let mut by_callee: HashMap<u64, Vec<(i64, i64, usize)>> = HashMap::new();
        for (seat, calls) in &self.answered {
            for &(m, a, e) in calls {
                by_callee.entry(m).or_default().push((a, e, *seat));
            }
        }
        let mut credited: HashMap<usize, Vec<u64>> = HashMap::new();
        for (m, times) in &self.joins {
            let Some(calls) = by_callee.get(m) else { continue };
            for t in times {
                let best = calls
                    .iter()
                    .filter(|(a, e, _)| *t >= *a && *t <= *e + CONVERSION_WINDOW_S)
                    .max_by_key(|(_, e, _)| *e);
                if let Some((_, _, seat)) = best {
                    credited.entry(*seat).or_default().push(*m);
                }
            }
        }
        self.answered
            .iter()
            .map(|(seat, calls)| {
                let mut callees: Vec<u64> = calls.iter().map(|c| c.0).collect();
                callees.sort_unstable();
                callees.dedup();
                let mut conv = credited.remove(seat).unwrap_or_default();
                conv.sort_unstable();
                conv.dedup();
                (*seat, (callees.len(), conv.len()))
            })
            .collect()
    }
}

/// Whether conversions meet the contract.
pub fn converts(answered: usize, converted: usize) -> bool {
    converted >= CONVERSION_MIN && answered > 0 && converted as f64 / answered as f64 >= CONVERSION_RATE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(start: i64, talk: i64) -> CallFact {
        CallFact {
            start,
            answer: Some(start + 5),
            end: start + 5 + talk,
            talk,
            spoofed: false,
            day: 0,
            cli: 0,
            outbound: true,
        }
    }

    #[test]
    fn union_shifts_and_concurrency() {
        // two people on one seat, 1 h each, half overlapping; then a break over 2 h
        let mut v = vec![call(0, 3600), call(1800, 3600), call(20_000, 600)];
        let m = shifts(&mut v);
        assert_eq!(m.longest_union_s, 5400);
        assert_eq!(m.most_concurrent_s, 1800);
        assert!(m.shared);
        assert!(converts(100, 3) && !converts(200, 3) && !converts(10, 2));
    }
}
