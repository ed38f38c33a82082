//! What the crew analysis keeps of each partition: per operator, the (day, value) pairs that can
//! tie it to another operator — caller IDs shown, source networks, campaigns, callees dialled —
//! its first shift start of each day, and the rows that show monitoring. Small next to the
//! partition (distinct values per operator and day), so a partitioned scan keeps them all and
//! the graph is built once over every operator.

use crate::frame::Chunks;
use crate::load::legs::{INTERNAL, OUTBOUND};
use crate::prepare::AuditInput;
use anyhow::Result;
use rayon::prelude::*;
use std::collections::HashMap;

/// A (day, value) key, ordered by day then value: the day (days since 1970) above the value.
pub type Key = u128;

pub fn key(day: i32, value: u64) -> Key {
    ((u128::from(day as u32 ^ 0x8000_0000)) << 64) | u128::from(value)
}

/// The day and value of a [`key`].
pub fn unkey(k: Key) -> (i32, u64) {
    (((k >> 64) as u32 ^ 0x8000_0000) as i32, k as u64)
}

/// A text as a value (campaigns, groups): 64 bits of its hash; the text is kept beside it.
pub fn text_value(s: &str) -> u64 {
    u64::from_le_bytes(blake3::hash(s.as_bytes()).as_bytes()[..8].try_into().expect("8 bytes"))
}

/// An IP's network as a value: IPv4 /24 (bit 49 set), IPv6 /48.
pub fn network_value(ip: &str) -> Option<u64> {
    match ip.trim().parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(v4) => Some((1 << 49) | u64::from(u32::from(v4) >> 8)),
        std::net::IpAddr::V6(v6) => Some((u128::from(v6) >> 80) as u64),
    }
}

/// A network value as text: `36.96.1.0/24`, `240e:1:2::/48`.
pub fn network_text(v: u64) -> String {
    if v & (1 << 49) != 0 {
        let n = ((v & 0xFF_FFFF) as u32) << 8;
        format!("{}/24", std::net::Ipv4Addr::from(n))
    } else {
        format!("{}/48", std::net::Ipv6Addr::from((u128::from(v) & 0xFFFF_FFFF_FFFF) << 80))
    }
}

/// A row that shows monitoring: a spy application's leg, or an internal call to another seat.
#[derive(Clone, Debug)]
pub struct Listen {
    pub listener: u32,
    /// The seat listened to as the export names it (`*`: any channel); for an internal call, the
    /// number dialled.
    pub target: String,
    pub day: i32,
    pub start_us: i64,
    pub talk_s: i64,
    pub reference: String,
    /// A spy application (true) or an internal call (false: monitoring only if brief and to many
    /// operators).
    pub spy: bool,
}

/// Everything kept, over the partitions so far.
#[derive(Default)]
pub struct Facts {
    /// Operator ids; the index is the operator in every other field.
    pub ops: Vec<String>,
    /// (day, caller ID number) shown on outbound calls.
    pub clis: Vec<(Key, u32)>,
    /// (day, network) calls came from.
    pub networks: Vec<(Key, u32)>,
    /// (day, campaign) worked.
    pub campaigns: Vec<(Key, u32)>,
    pub campaign_text: HashMap<u64, String>,
    /// Each operator's callees dialled (outbound), as its calls met them: moved, not copied, out
    /// of the partition's pass (10 M of them at 10 M calls), and sampled before they are sorted
    /// ([`super::links`]).
    pub callees: Vec<(u32, Vec<u64>)>,
    /// (day, first shift start µs, operator).
    pub starts: Vec<(i32, i64, u32)>,
    pub listens: Vec<Listen>,
}

/// One operator's share of a partition.
#[derive(Default)]
struct OpFacts {
    clis: Vec<Key>,
    networks: Vec<Key>,
    campaigns: Vec<Key>,
    callees: Vec<u64>,
    listens: Vec<(String, i32, i64, i64, String, bool)>,
}

impl Facts {
    /// One partition's facts added.
    pub fn add(&mut self, input: &AuditInput) -> Result<()> {
        let t0 = std::time::Instant::now();
        let cdr = &input.cdr;
        let day = cdr.column("day")?.to_physical_repr();
        let day = day.i32()?;
        let dir = cdr.column("direction")?.u32()?;
        let cli = cdr.column("caller_num")?.u64()?;
        let callee = cdr.column("callee_num")?.u64()?;
        let ip = cdr.column("src_ip")?.u32()?;
        // campaigns are codes (`coded`): each distinct text hashed once
        let campaign = input.coded("campaign").ok().filter(|c| c.codes.null_count() < c.codes.len());
        let campaign_values: Vec<u64> =
            campaign.as_ref().map_or(Vec::new(), |c| c.values.iter().map(|t| text_value(t)).collect());
        if let Some(c) = &campaign {
            for (t, v) in c.values.iter().zip(&campaign_values) {
                self.campaign_text.entry(*v).or_insert_with(|| t.clone());
            }
        }
        let monitored = cdr.column("monitored").ok().and_then(|c| c.str().ok()).filter(|c| c.null_count() < c.len());
        let callee_text = cdr.column("callee")?.str()?;
        let (start, talk, reference) =
            (cdr.column("start_us")?.i64()?, cdr.column("talk_s")?.i64()?, cdr.column("ref")?.str()?);
        // each distinct source IP's network once
        let nets: Vec<Option<u64>> =
            input.dicts.values("src_ip").unwrap_or(&[]).iter().map(|t| network_value(t)).collect();
        // chunk tables built once; each operator's readers borrow them (a copy of the columns into
        // one chunk each cost 0.13 s of a 10 M-row scan)
        let (t_day, t_dir, t_cli, t_callee, t_ip) =
            (Chunks::new(day), Chunks::new(dir), Chunks::new(cli), Chunks::new(callee), Chunks::new(ip));
        let t_camp = campaign.as_ref().map(|c| Chunks::new(c.codes));
        let t_mon = monitored.map(Chunks::new);
        let (t_ctext, t_start, t_talk, t_ref) =
            (Chunks::new(callee_text), Chunks::new(start), Chunks::new(talk), Chunks::new(reference));
        let ranges = crate::prepare::ranges_in_order(input);
        crate::diag::trace("crew facts: columns", t0);
        let per_op: Vec<OpFacts> = ranges
            .par_iter()
            .map(|(_, r)| {
                let mut mon = t_mon.as_ref().map(|c| c.rows());
                let (mut day, mut dir, mut cli, mut callee, mut ip) =
                    (t_day.rows(), t_dir.rows(), t_cli.rows(), t_callee.rows(), t_ip.rows());
                let mut camp = t_camp.as_ref().map(|c| c.rows());
                let mut f = OpFacts::default();
                // a seat shows a few caller IDs, one network and one campaign a day: a value seen
                // among the last few is not pushed again (10 M pushes and sorts otherwise)
                let push = |v: &mut Vec<Key>, k: Key| {
                    if v.last() != Some(&k) && !v.iter().rev().take(16).any(|x| *x == k) {
                        v.push(k);
                    }
                };
                f.callees.reserve(r.len());
                for i in r.clone() {
                    let d = day.get(i).unwrap_or(0);
                    let dr = dir.get(i).unwrap_or(3);
                    if dr == OUTBOUND {
                        if let Some(c) = cli.get(i) {
                            push(&mut f.clis, key(d, c));
                        }
                        if let Some(c) = callee.get(i) {
                            f.callees.push(c);
                        }
                    }
                    if let Some(n) = ip.get(i).and_then(|c| nets.get(c as usize).copied().flatten()) {
                        push(&mut f.networks, key(d, n));
                    }
                    if let Some(c) = camp.as_mut().and_then(|c| c.get(i)) {
                        push(&mut f.campaigns, key(d, campaign_values[c as usize]));
                    }
                    let spied = mon.as_mut().and_then(|m| m.get(i));
                    if spied.is_some() || dr == INTERNAL {
                        let target = match spied {
                            Some(t) => Some(t.to_string()),
                            None => t_ctext.rows().get(i).map(str::to_string),
                        };
                        if let Some(t) = target {
                            let s = t_start.rows().get(i).unwrap_or(0);
                            let k = t_talk.rows().get(i).unwrap_or(0);
                            let rf = t_ref.rows().get(i).unwrap_or("").to_string();
                            f.listens.push((t, d, s, k, rf, spied.is_some()));
                        }
                    }
                }
                for v in [&mut f.clis, &mut f.networks, &mut f.campaigns] {
                    v.sort_unstable();
                    v.dedup();
                }
                f
            })
            .collect();
        crate::diag::trace("crew facts: rows", t0);
        for ((op, _), f) in ranges.iter().zip(per_op) {
            let o = self.ops.len() as u32;
            self.ops.push(op.to_string());
            self.clis.extend(f.clis.into_iter().map(|k| (k, o)));
            self.networks.extend(f.networks.into_iter().map(|k| (k, o)));
            self.campaigns.extend(f.campaigns.into_iter().map(|k| (k, o)));
            self.callees.push((o, f.callees));
            self.listens.extend(f.listens.into_iter().map(|(target, day, start_us, talk_s, reference, spy)| Listen {
                listener: o,
                target,
                day,
                start_us,
                talk_s,
                reference,
                spy,
            }));
        }
        crate::diag::trace("crew facts: kept", t0);
        self.add_starts(input)
    }

    /// Each operator's first shift start of each day.
    fn add_starts(&mut self, input: &AuditInput) -> Result<()> {
        let index: HashMap<&str, u32> = self.ops.iter().enumerate().map(|(i, o)| (o.as_str(), i as u32)).collect();
        let s = &input.shifts;
        let (op, day, start) =
            (s.column("operator_id")?.str()?, s.column("day")?.str()?, s.column("shift_start_us")?.i64()?);
        let mut seen: std::collections::HashSet<(u32, i32)> = Default::default();
        for ((o, d), t) in op.iter().zip(day.iter()).zip(start.iter()) {
            let (Some(o), Some(d), Some(t)) = (o, d, t) else { continue };
            let (Some(&o), Ok(d)) = (index.get(o), d.parse::<chrono::NaiveDate>()) else { continue };
            let d = day_number(d);
            // shifts are sorted by operator and start: the first of a day is its first start
            if seen.insert((o, d)) {
                self.starts.push((d, t, o));
            }
        }
        Ok(())
    }
}

/// Days since 1970-01-01 (Polars' `Date`).
pub fn day_number(d: chrono::NaiveDate) -> i32 {
    (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

/// A [`day_number`] as a date.
pub fn day_of(n: i32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + chrono::Duration::days(i64::from(n))
}

/// A [`day_number`] as `YYYY-MM-DD` text (the links' examples write hundreds of thousands of them:
/// written by hand, not through chrono's formatter).
pub fn day_text(n: i32) -> String {
    use chrono::Datelike;
    let d = day_of(n);
    format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_networks_round_trip() {
        for (d, v) in [(20_500, 8_613_912_345_678u64), (-3, 1), (0, u64::MAX)] {
            assert_eq!(unkey(key(d, v)), (d, v));
        }
        assert!(key(-3, 5) < key(0, 1) && key(0, 1) < key(20_500, 0));
        assert_eq!(network_text(network_value("36.96.1.77").unwrap()), "36.96.1.0/24");
        assert_eq!(network_value("36.96.1.7"), network_value("36.96.1.200"));
        assert_ne!(network_value("36.96.1.7"), network_value("36.96.2.7"));
        assert_eq!(network_text(network_value("240e:1:2:3::9").unwrap()), "240e:1:2::/48");
        assert_eq!(network_value("240e:1:2:3::9"), network_value("240e:1:2:ffff::1"));
    }
}
