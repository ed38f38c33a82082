//! `generate`: synthetic CDRs with known ground truth, for tests and benchmarks.
//!
//! Populations (labels in `truth.json`):
//!
//! | population | share | shifts | caller ID shown | source IP | joins |
//! |---|---|---|---|---|---|
//! | `diversion` | 16 % | 8–10 h talk a day, day or night crews (night shifts cross midnight) | crew pool of foreign numbers, some invalid | home (IPv4 and IPv6) | 3–10 % of answered callees join a group 1–45 min later |
//! | `diversion-parttime` | 6 % | 4–6.5 h talk | crew pool of foreign numbers | home | converts like `diversion` |
//! | `diversion-domestic` | 5 % | 8–10 h talk | home virtual numbers | home | converts |
//! | `telemarketer` | 28 % | 3–6.5 h, lunch gap sometimes over the shift break (split shifts); a few 7–7.8 h near misses | home | home | a third have 1–2 coincidental joins |
//! | `service-desk` | 15 % | 2–4 h, short calls | home | home | none |
//! | `overseas-bpo` | 15 % | 5–7.5 h | foreign (PH, MY, IN) | the same foreign country | none |
//! | `night-shift` | 15 % | 22:00–06:00, 4–6.5 h talk | home | home | a third have 1–2 coincidental joins |
//!
//! `--shape asterisk` or `grandstream` adds two populations that only a PBX export can show and
//! writes every call as that switch writes its legs ([`pbx`]): `inbound-agent` (4 %: service
//! agents answering a queue, 5–7 h, callers' own numbers, now and then a foreign one) and
//! `shared-seat` (3 %: a department extension used by three to five people at once). Seats are
//! extensions (2000…, shared 8000…); outbound calls go out through the domestic trunk
//! `trunk-cn-unicom` (overseas teams through `trunk-ph-globe`), so spoofing is judged by trunk.
//!
//! Populations straddle the thresholds the way real centres do: a telemarketer who once talks
//! 8 h in one shift, split days past 8 h with no 8 h shift, a service desk with three
//! coincidental joins in a big list, an overseas team with a few calls from a home IP. The labels
//! in `truth.json` are therefore not the population: each is whether what was written meets the
//! rule's contract at its default thresholds ([`labels`]), with the measure as its reason.
//!
//! Files: `cdr.csv` (generic CSV, naive local times in Asia/Shanghai), `cdr.parquet` (the same rows),
//! `cdr_overlap.csv` (the first six hours of the last day exported again, as overlapping daily exports
//! do), `joins.csv` (join times in UTC, member numbers written four ways), `ip-country.csv`,
//! `truth.json`. Rows are written as they are made: memory does not grow with `--rows`.
//! Phone numbers are random digits in real number shapes; no record of a real person is used.

mod chain;
mod labels;
mod pbx;

use crate::cli::{GenerateArgs, Shape};
use anyhow::{Context, Result};
use chrono::{Duration, NaiveDateTime};
use labels::{CallFact, Shared};
use polars::prelude::*;
use rand::rngs::Xoshiro256PlusPlus as ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;
use std::fs::File;
use std::io::{BufWriter, Write};

/// Average CDR rows per operator-day, measured on the default mix (used to size `--rows`).
const ROWS_PER_OPERATOR_DAY: f64 = 248.5;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Population {
    Diversion,
    DiversionParttime,
    DiversionDomestic,
    Telemarketer,
    ServiceDesk,
    OverseasBpo,
    NightShift,
    InboundAgent,
    SharedSeat,
    /// `--shape asterisk`: a crew's leader, who listens in on its operators (ChanSpy) and makes
    /// no calls of its own.
    CrewLeader,
}

impl Population {
    /// Every population, in the order of [`population_of`]'s shares.
    const ALL: [Population; 9] = [
        Population::Diversion,
        Population::DiversionParttime,
        Population::DiversionDomestic,
        Population::Telemarketer,
        Population::ServiceDesk,
        Population::OverseasBpo,
        Population::NightShift,
        Population::InboundAgent,
        Population::SharedSeat,
    ];
}

/// Ground truth for one operator.
#[derive(Clone, Debug, Serialize)]
pub struct Truth {
    pub operator_id: String,
    pub population: Population,
    pub crew: Option<String>,
    /// At least one shift with ≥ 8 h of wall-clock talk (the union of its calls' talk).
    pub long_shift: bool,
    /// At least 15 min of two or more answered calls at once in a shift.
    pub shared_seat: bool,
    /// ≥ 5 outbound calls in a local day showing a foreign caller ID from home soil (a home IP;
    /// in PBX shapes the domestic trunk).
    pub spoofed_foreign_cli: bool,
    /// Used a foreign caller ID that reached ≥ 50 distinct home callees in a local day.
    pub foreign_cli_fanout: bool,
    /// ≥ 3 answered outbound callees joined a group within 60 min, at a rate ≥ 2 %.
    pub group_invite_conversion: bool,
    /// Why each label is what it is: the measure behind it.
    pub reasons: std::collections::BTreeMap<&'static str, String>,
    pub coincidental_joins: u32,
    /// People working the seat (more than one: a shared seat).
    pub people: u32,
    /// A legitimate team sharing one company number and one office network.
    pub team: Option<String>,
    /// `operator`, or `leader` (a crew's monitoring seat).
    pub role: &'static str,
    /// Seats this seat listened in on.
    pub monitors: Vec<String>,
    /// A shift with >= 20 outbound calls, >= 5 caller IDs and the caller ID changing on >= half
    /// of consecutive calls.
    pub cli_rotation: bool,
    /// The earnings' basis: local days (by shift start) whose wall-clock talk reached 8 h, and
    /// callees credited as conversions.
    pub pay_days: u32,
    pub conversions: u32,
}

impl Truth {
    /// A seat before its calls are written: every label false, one person, no team; the labels
    /// are set from what is written.
    fn unlabelled(id: &str, population: Population, crew: Option<String>, role: &'static str) -> Self {
        Truth {
            operator_id: id.to_string(),
            population,
            crew,
            long_shift: false,
            shared_seat: false,
            spoofed_foreign_cli: false,
            foreign_cli_fanout: false,
            group_invite_conversion: false,
            reasons: Default::default(),
            coincidental_joins: 0,
            people: 1,
            team: None,
            role,
            monitors: Vec::new(),
            cli_rotation: false,
            pay_days: 0,
            conversions: 0,
        }
    }
}

/// A crew as generated.
#[derive(Serialize)]
struct CrewTruth {
    name: String,
    members: Vec<String>,
    leader: Option<String>,
    clis: Vec<String>,
    groups: Vec<String>,
    network: String,
}

#[derive(Serialize)]
struct TruthFile<'a> {
    seed: u64,
    days: u32,
    start_date: String,
    tz: &'static str,
    home_region: &'static str,
    crews: Vec<CrewTruth>,
    operators: &'a [Truth],
}

/// The synthetic IP plan written to `ip-country.csv`.
const IP_PLAN: &[(&str, &str)] = &[
    ("36.96.0.0/11", "CN"),
    ("58.16.0.0/13", "CN"),
    ("101.80.0.0/12", "CN"),
    ("240e::/20", "CN"),
    ("112.198.0.0/16", "PH"),
    ("2001:4450::/32", "PH"),
    ("175.136.0.0/13", "MY"),
    ("117.192.0.0/10", "IN"),
    ("86.128.0.0/10", "GB"),
    ("23.0.0.0/12", "US"),
    ("103.197.104.0/22", "KH"),
];

struct Crew {
    idx: usize,
    name: String,
    /// The venue: every member's address is in this IPv4 /24 or IPv6 /48 (a prefix to append to).
    network: String,
    clis: Vec<String>,
    night: bool,
    campaign: String,
    groups: Vec<String>,
    leads_base: u64,
}

struct Operator {
    idx: usize,
    id: String,
    pop: Population,
    people: u32,
    /// A home IP for the calls an overseas team makes from home soil.
    home_ip: String,
    crew: Option<usize>,
    ip: String,
    clis: Vec<String>,
    campaign: String,
    leads_base: u64,
    coincidental: u32,
}

/// CSV + Parquet sinks for CDR rows.
struct CdrSink {
    shape: Shape,
    csv: BufWriter<File>,
    overlap: Option<BufWriter<File>>,
    parquet: Option<(polars::io::parquet::write::BatchedWriter<File>, Batch)>,
    rows: u64,
    overlap_rows: u64,
    overlap_from: NaiveDateTime,
    overlap_to: NaiveDateTime,
}

#[derive(Default)]
struct Batch {
    call_id: Vec<String>,
    operator_id: Vec<String>,
    start: Vec<NaiveDateTime>,
    answer: Vec<Option<NaiveDateTime>>,
    end: Vec<NaiveDateTime>,
    duration: Vec<i64>,
    billsec: Vec<i64>,
    caller: Vec<String>,
    callee: Vec<String>,
    ip: Vec<Option<String>>,
    disposition: Vec<&'static str>,
    campaign: Vec<String>,
}

const CSV_HEADER: &str = "call_id,operator_id,start_time,answer_time,end_time,duration,billsec,caller_id,callee,src_ip,disposition,campaign\n";
const BATCH_ROWS: usize = 250_000;

fn cdr_schema() -> Schema {
    let ts = DataType::Datetime(TimeUnit::Microseconds, None);
    Schema::from_iter([
        Field::new("call_id".into(), DataType::String),
        Field::new("operator_id".into(), DataType::String),
        Field::new("start_time".into(), ts.clone()),
        Field::new("answer_time".into(), ts.clone()),
        Field::new("end_time".into(), ts),
        Field::new("duration".into(), DataType::Int64),
        Field::new("billsec".into(), DataType::Int64),
        Field::new("caller_id".into(), DataType::String),
        Field::new("callee".into(), DataType::String),
        Field::new("src_ip".into(), DataType::String),
        Field::new("disposition".into(), DataType::String),
        Field::new("campaign".into(), DataType::String),
    ])
}

impl Batch {
    fn len(&self) -> usize {
        self.call_id.len()
    }
    fn take_frame(&mut self) -> Result<DataFrame> {
        let b = std::mem::take(self);
        let ts = |v: Vec<Option<NaiveDateTime>>, name: &str| -> Result<Column> {
            let micros: Int64Chunked = v.into_iter().map(|t| t.map(|t| t.and_utc().timestamp_micros())).collect();
            Ok(micros
                .with_name(name.into())
                .into_series()
                .cast(&DataType::Datetime(TimeUnit::Microseconds, None))?
                .into_column())
        };
        let n = b.call_id.len();
        Ok(DataFrame::new(
            n,
            vec![
                Column::new("call_id".into(), b.call_id),
                Column::new("operator_id".into(), b.operator_id),
                ts(b.start.into_iter().map(Some).collect(), "start_time")?,
                ts(b.answer, "answer_time")?,
                ts(b.end.into_iter().map(Some).collect(), "end_time")?,
                Column::new("duration".into(), b.duration),
                Column::new("billsec".into(), b.billsec),
                Column::new("caller_id".into(), b.caller),
                Column::new("callee".into(), b.callee),
                Column::new("src_ip".into(), b.ip),
                Column::new("disposition".into(), b.disposition.into_iter().map(str::to_string).collect::<Vec<_>>()),
                Column::new("campaign".into(), b.campaign),
            ],
        )?)
    }
}

struct Call<'a> {
    id: u64,
    op: &'a Operator,
    start: NaiveDateTime,
    talk: i64,
    ring: i64,
    cli: std::borrow::Cow<'a, str>,
    callee: String,
    /// The callee's national number (outbound calls), as the lead list holds it.
    national: String,
    ip: Option<&'a str>,
    disposition: &'static str,
    /// PBX shapes: an inbound queue call (`callee` is the queue, `cli` the caller).
    inbound: bool,
    wait: i64,
    other_agent: Option<String>,
    ivr: bool,
    via_local: bool,
    h_row: bool,
    trunk: &'static str,
    /// A leader's ChanSpy session on this seat (`--shape asterisk`).
    spy: Option<String>,
}

/// A carrier's 话单 as the victims' carrier exports them (`--shape carrier`).
const CARRIER_HEADER: &str =
    "本机号码,对方号码,呼叫类型,开始时间,结束时间,通话时长,通话类型,通话地,归属地,LAC,CI,IMEI,IMSI,第三方号码\r\n";

/// One call as the callee's 话单 shows it: the subscriber (the callee) received a call from the
/// caller ID shown; the handset and cell are the subscriber's. Unanswered calls are 0-second records.
fn carrier_row(c: &Call<'_>) -> String {
    let fmt = |t: NaiveDateTime| t.format("%Y-%m-%d %H:%M:%S").to_string();
    let own = if c.national.is_empty() { c.callee.as_str() } else { c.national.as_str() };
    let h = own.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let (start, end) = (c.start, c.start + Duration::seconds(c.ring + c.talk));
    let kind = if c.cli.starts_with("+86") || !c.cli.starts_with('+') { "国内来话" } else { "国际来话" };
    format!(
        "{own},{cli},被叫,{},{},{},{kind},上海,上海,{},{},86{:013},460{:012},\r\n",
        fmt(start),
        fmt(end),
        c.talk,
        6000 + h % 400,
        30000 + h % 5000,
        h % 10_000_000_000_000,
        h % 1_000_000_000_000,
        cli = c.cli
    )
}

/// Trunks of the PBX shapes: home traffic, an overseas team's own, and the inbound carrier.
const DOMESTIC_TRUNK: &str = "trunk-cn-unicom";
const OVERSEAS_TRUNK: &str = "trunk-ph-globe";
const INBOUND_TRUNK: &str = "trunk-cn-telecom";

impl CdrSink {
    /// One call as the shape writes it: a generic row, or a PBX's legs.
    fn text(&self, c: &Call<'_>) -> String {
        let answer = (c.talk > 0).then(|| c.start + Duration::seconds(c.ring));
        let end = c.start + Duration::seconds(c.ring + c.talk);
        let fmt = |t: NaiveDateTime| t.format("%Y-%m-%d %H:%M:%S").to_string();
        let pc = || pbx::PbxCall {
            id: c.id,
            seat: &c.op.id,
            inbound: c.inbound,
            start: c.start,
            ring: c.ring,
            talk: c.talk,
            wait: c.wait,
            cli: &c.cli,
            callee: &c.callee,
            trunk: c.trunk,
            other_agent: c.other_agent.as_deref(),
            ivr: c.ivr,
            via_local: c.via_local,
            h_row: c.h_row,
            disposition: c.disposition,
            ip: c.ip,
        };
        match self.shape {
            Shape::Asterisk if c.spy.is_some() => pbx::chanspy(&pc(), c.spy.as_deref().unwrap_or("")),
            Shape::Asterisk => pbx::asterisk(&pc()),
            Shape::Grandstream => pbx::grandstream(&pc(), c.spy.as_deref()),
            Shape::Cucm => pbx::cucm(&pc()),
            Shape::ThreeCx => pbx::three_cx(&pc()),
            Shape::Kamailio => pbx::kamailio(&pc()),
            Shape::Carrier => carrier_row(c),
            Shape::Generic => format!(
                "C{:010},{},{},{},{},{},{},{},{},{},{},{}\n",
                c.id,
                c.op.id,
                fmt(c.start),
                answer.map(fmt).unwrap_or_default(),
                fmt(end),
                c.ring + c.talk,
                c.talk,
                c.cli,
                c.callee,
                c.ip.unwrap_or(""),
                c.disposition,
                c.op.campaign
            ),
        }
    }

    fn write(&mut self, c: &Call<'_>) -> Result<()> {
        let answer = (c.talk > 0).then(|| c.start + Duration::seconds(c.ring));
        let end = c.start + Duration::seconds(c.ring + c.talk);
        let duration = c.ring + c.talk;
        let text = self.text(c);
        self.csv.write_all(text.as_bytes())?;
        let legs = text.lines().count() as u64;
        if let Some(o) = self.overlap.as_mut()
            && c.start >= self.overlap_from
            && c.start < self.overlap_to
        {
            o.write_all(text.as_bytes())?;
            self.overlap_rows += legs;
        }
        if let Some((w, b)) = self.parquet.as_mut() {
            b.call_id.push(format!("C{:010}", c.id));
            b.operator_id.push(c.op.id.clone());
            b.start.push(c.start);
            b.answer.push(answer);
            b.end.push(end);
            b.duration.push(duration);
            b.billsec.push(c.talk);
            b.caller.push(c.cli.to_string());
            b.callee.push(c.callee.clone());
            b.ip.push(c.ip.map(str::to_string));
            b.disposition.push(c.disposition);
            b.campaign.push(c.op.campaign.clone());
            if b.len() >= BATCH_ROWS {
                let df = b.take_frame()?;
                w.write_batch(&df)?;
            }
        }
        self.rows += legs;
        Ok(())
    }

    fn finish(mut self) -> Result<(u64, u64)> {
        self.csv.flush()?;
        if let Some(o) = self.overlap.as_mut() {
            o.flush()?;
        }
        if let Some((mut w, mut b)) = self.parquet.take() {
            if b.len() > 0 {
                let df = b.take_frame()?;
                w.write_batch(&df)?;
            }
            w.finish()?;
        }
        Ok((self.rows, self.overlap_rows))
    }
}

fn cn_mobile(rng: &mut ChaCha8Rng) -> String {
    const PREFIXES: &[&str] = &[
        "130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "152", "157", "158", "159", "166", "177",
        "180", "181", "186", "187", "188", "189", "198", "199",
    ];
    format!("{}{:08}", PREFIXES[rng.random_range(0..PREFIXES.len())], rng.random_range(0..100_000_000u32))
}

/// A callee from a lead list: deterministic in (list base, index) so crews share victims.
fn lead(base: u64, idx: u64) -> String {
    let mut r = ChaCha8Rng::seed_from_u64(base.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ idx);
    cn_mobile(&mut r)
}

/// How the CDR writes a home number: mostly national, sometimes with the country code.
fn cdr_number_form(rng: &mut ChaCha8Rng, national: &str) -> String {
    match rng.random_range(0..10) {
        0 => format!("+86{national}"),
        1 => format!("86{national}"),
        _ => national.to_string(),
    }
}

/// How a join log writes the same number: four shapes.
fn join_number_form(rng: &mut ChaCha8Rng, national: &str) -> String {
    match rng.random_range(0..4) {
        0 => national.to_string(),
        1 => format!("+86 {}-{}-{}", &national[..3], &national[3..7], &national[7..]),
        2 => format!("0086{national}"),
        _ => format!("86 {} {} {}", &national[..3], &national[3..7], &national[7..]),
    }
}

fn ip_in(rng: &mut ChaCha8Rng, cc: &str, v6: bool) -> String {
    match (cc, v6) {
        ("CN", false) => {
            let blocks: [(u8, u8, u8); 3] = [(36, 96, 31), (58, 16, 7), (101, 80, 15)];
            let (a, b, span) = blocks[rng.random_range(0..3)];
            format!(
                "{a}.{}.{}.{}",
                b + rng.random_range(0..=span),
                rng.random_range(0..=255),
                rng.random_range(1..=254)
            )
        }
        ("CN", true) => format!(
            "240e:{:x}:{:x}:{:x}::{:x}",
            rng.random_range(0..0x0fffu16),
            rng.random::<u16>(),
            rng.random::<u16>(),
            rng.random_range(1..0xffffu16)
        ),
        ("PH", false) => format!("112.198.{}.{}", rng.random_range(0..=255), rng.random_range(1..=254)),
        ("PH", true) => format!("2001:4450:{:x}::{:x}", rng.random::<u16>(), rng.random_range(1..0xffffu16)),
        ("MY", _) => {
            format!("175.{}.{}.{}", rng.random_range(136..=143), rng.random_range(0..=255), rng.random_range(1..=254))
        }
        ("IN", _) => {
            format!("117.{}.{}.{}", rng.random_range(192..=255), rng.random_range(0..=255), rng.random_range(1..=254))
        }
        _ => unreachable!("no synthetic range for {cc}"),
    }
}

/// A foreign caller ID of a crew pool; `invalid` ones sit in unallocated ranges (the "virtual number").
fn foreign_cli(rng: &mut ChaCha8Rng, invalid: bool) -> String {
    if invalid {
        return match rng.random_range(0..3) {
            0 => format!("+4411{:08}", rng.random_range(0..100_000_000u32)),
            1 => format!("+1999555{:04}", rng.random_range(0..10_000u32)),
            _ => format!("+85510{:03}", rng.random_range(0..1000u32)),
        };
    }
    let n = match rng.random_range(0..5) {
        0 => format!("+447700900{:03}", rng.random_range(0..1000u32)),
        1 => format!("+1646555{:04}", rng.random_range(100..200u32)),
        2 => format!("+63917{:07}", rng.random_range(0..10_000_000u32)),
        3 => format!("+6012{:07}", rng.random_range(0..10_000_000u32)),
        _ => format!("+85512{:06}", rng.random_range(0..1_000_000u32)),
    };
    // desks see both forms
    if rng.random_bool(0.3) { format!("00{}", &n[1..]) } else { n }
}

fn domestic_cli(rng: &mut ChaCha8Rng) -> String {
    match rng.random_range(0..3) {
        0 => format!("0216{:07}", rng.random_range(0..10_000_000u32)),
        1 => format!("0105{:07}", rng.random_range(0..10_000_000u32)),
        _ => cn_mobile(rng),
    }
}

fn bpo_cli(rng: &mut ChaCha8Rng, cc: &str) -> String {
    match cc {
        "PH" => format!("+6328{:07}", rng.random_range(0..10_000_000u32)),
        "MY" => format!("+6037{:07}", rng.random_range(0..10_000_000u32)),
        _ => format!("+9122{:08}", rng.random_range(0..100_000_000u32)),
    }
}

fn population_of(i: usize, n: usize, pbx: bool) -> Population {
    let f = (i as f64 + 0.5) / n as f64;
    // the PBX shapes make room for inbound queue agents and shared seats
    let cuts: [f64; 8] = if pbx {
        [0.16, 0.22, 0.27, 0.50, 0.62, 0.74, 0.84, 0.96]
    } else {
        [0.16, 0.22, 0.27, 0.55, 0.70, 0.85, 1.1, 1.1]
    };
    Population::ALL.iter().zip(cuts).find(|(_, c)| f < *c).map_or(Population::SharedSeat, |(p, _)| *p)
}

/// The operators of every population, their crews (diversion operators only) and the truth labels.
fn population(operators: usize, rng: &mut ChaCha8Rng, shape: Shape) -> (Vec<Crew>, Vec<Operator>, Vec<Truth>) {
    let pbx = shape.is_pbx();
    // Crews of 5–8 diversion operators share caller-ID pools, groups and lead lists.
    let mut crews: Vec<Crew> = Vec::new();
    let mut ops: Vec<Operator> = Vec::with_capacity(operators);
    let mut truth: Vec<Truth> = Vec::with_capacity(operators);
    let mut crew_fill = 0usize;
    let mut teams: std::collections::HashMap<String, (String, String, String)> = Default::default();
    for i in 0..operators {
        let pop = population_of(i, operators, pbx);
        // a PBX names seats by extension
        let id = match (pbx, pop) {
            (false, _) => format!("op{:05}", i + 1),
            (true, Population::SharedSeat) => format!("{}", 8000 + i),
            (true, _) => format!("{}", 2000 + i),
        };
        let diversion =
            matches!(pop, Population::Diversion | Population::DiversionParttime | Population::DiversionDomestic);
        let crew = if diversion {
            if crews.is_empty()
                || crew_fill >= 6
                || crews.last().is_some_and(|c| !c.name.ends_with(&format!("{pop:?}")))
            {
                crews.push(new_crew(crews.len(), pop, rng));
                crew_fill = 0;
            }
            crew_fill += 1;
            Some(crews.len() - 1)
        } else {
            None
        };
        let (ip, clis, campaign, leads_base) = match pop {
            Population::OverseasBpo => {
                let cc = ["PH", "MY", "IN"][i % 3];
                let v6 = cc == "PH" && i % 2 == 0;
                (
                    ip_in(rng, cc, v6),
                    (0..3).map(|_| bpo_cli(rng, cc)).collect(),
                    format!("bpo-{}", cc.to_lowercase()),
                    500_000 + i as u64,
                )
            }
            _ if diversion => {
                let c = &crews[crew.unwrap()];
                // the crew's venue: one office network
                let ip = if c.network.ends_with("::") {
                    format!("{}{:x}", c.network, 0x10 + crew_fill)
                } else {
                    format!("{}{}", c.network, 10 + crew_fill)
                };
                (ip, c.clis.clone(), c.campaign.clone(), c.leads_base)
            }
            Population::Telemarketer | Population::ServiceDesk => {
                // legitimate teams of eight: one company number, one office /24, one campaign
                let t = team_of(&mut teams, pop, i, rng);
                (format!("{}{}", t.1, 10 + i % 8), vec![t.0.clone()], t.2.clone(), 500_000 + i as u64)
            }
            _ => (
                ip_in(rng, "CN", false),
                (0..2).map(|_| domestic_cli(rng)).collect(),
                match pop {
                    Population::NightShift => "night-care".to_string(),
                    _ => format!("tm-{:02}", i % 7),
                },
                500_000 + i as u64,
            ),
        };
        let team = matches!(pop, Population::Telemarketer | Population::ServiceDesk).then(|| team_name(pop, i));
        let coincidental = if matches!(pop, Population::Telemarketer | Population::NightShift) && i % 3 == 0 {
            1 + (i % 2) as u32
        } else if pop == Population::ServiceDesk && i % 10 == 5 {
            3 // a big list: three coincidental joins stay under the rate
        } else {
            0
        };
        let people = if pop == Population::SharedSeat { 3 + (i % 3) as u32 } else { 1 };
        truth.push(Truth {
            coincidental_joins: coincidental,
            people,
            team,
            ..Truth::unlabelled(&id, pop, crew.map(|c| crews[c].name.clone()), "operator")
        });
        let home_ip = ip_in(rng, "CN", false);
        ops.push(Operator { idx: i, id, pop, people, home_ip, crew, ip, clis, campaign, leads_base, coincidental });
    }
    // the exports that show a spy application (`lastapp` ChanSpy) have leaders who listen in
    if matches!(shape, Shape::Asterisk | Shape::Grandstream) {
        add_leaders(&crews, &mut ops, &mut truth);
    }
    (crews, ops, truth)
}

/// A crew of `pop` operators: its caller-ID pool, venue, campaign, groups and lead list.
fn new_crew(k: usize, pop: Population, rng: &mut ChaCha8Rng) -> Crew {
    let foreign = pop != Population::DiversionDomestic;
    let clis = (0..rng.random_range(6..12))
        .map(|j| {
            if foreign {
                foreign_cli(rng, j % 4 == 3)
            } else {
                format!("170{:08}", rng.random_range(0..100_000_000u32))
            }
        })
        .collect();
    let topic = ["edu-refund", "fin-service", "game-support", "platform-care"][k % 4];
    let v6 = k % 3 == 1;
    let base = ip_in(rng, "CN", v6);
    let network = if v6 {
        base.split(':').take(3).collect::<Vec<_>>().join(":") + "::"
    } else {
        base.rsplit_once('.').map(|(n, _)| format!("{n}.")).unwrap_or(base.clone())
    };
    Crew {
        idx: k,
        network,
        name: format!("crew{:03}-{pop:?}", k + 1),
        clis,
        night: k % 3 == 2,
        campaign: format!("{topic}-{:02}", k + 1),
        groups: (0..rng.random_range(2..5)).map(|g| format!("G{:03}{:02}", k + 1, g + 1)).collect(),
        leads_base: 1_000 + k as u64,
    }
}

/// Each crew's leader: a seat of its own (9000 + the crew's number) that listens in on its
/// operators (`--shape asterisk`).
fn add_leaders(crews: &[Crew], ops: &mut Vec<Operator>, truth: &mut Vec<Truth>) {
    for c in crews {
        let id = format!("{}", 9000 + c.idx);
        truth.push(Truth::unlabelled(&id, Population::CrewLeader, Some(c.name.clone()), "leader"));
        let idx = ops.len();
        ops.push(Operator {
            idx,
            id,
            pop: Population::CrewLeader,
            people: 1,
            home_ip: String::new(),
            crew: Some(c.idx),
            ip: String::new(),
            // it shows no caller ID: its legs are ChanSpy sessions (`generate_leader`)
            clis: Vec::new(),
            campaign: String::new(),
            leads_base: 0,
            coincidental: 0,
        });
    }
}

fn team_name(pop: Population, i: usize) -> String {
    format!("team-{}-{:03}", if pop == Population::ServiceDesk { "desk" } else { "tm" }, i / 8)
}

/// A legitimate team's company number, office network prefix and campaign, made on first use.
fn team_of<'t>(
    teams: &'t mut std::collections::HashMap<String, (String, String, String)>,
    pop: Population,
    i: usize,
    rng: &mut ChaCha8Rng,
) -> &'t (String, String, String) {
    let name = team_name(pop, i);
    teams.entry(name.clone()).or_insert_with(|| {
        let ip = ip_in(rng, "CN", false);
        let net = ip.rsplit_once('.').map(|(n, _)| format!("{n}.")).unwrap_or(ip.clone());
        let campaign = if pop == Population::ServiceDesk { "service-callback".to_string() } else { name.clone() };
        (domestic_cli(rng), net, campaign)
    })
}

pub fn run(args: &GenerateArgs) -> Result<()> {
    let out = &args.out;
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    let operators = if args.rows > 0 {
        ((args.rows as f64 / (ROWS_PER_OPERATOR_DAY * args.days.max(1) as f64)).ceil() as usize).max(10)
    } else {
        args.operators
    };
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let (crews, ops, mut truth) = population(operators, &mut rng, args.shape);
    let last_day = args.start_date + Duration::days(args.days.saturating_sub(1) as i64);
    let (name, overlap_name, header) = match args.shape {
        Shape::Generic => ("cdr.csv", "cdr_overlap.csv", CSV_HEADER.to_string()),
        Shape::Asterisk => ("asterisk_Master.csv", "asterisk_overlap.csv", String::new()),
        Shape::Grandstream => ("grandstream_cdr.csv", "grandstream_overlap.csv", pbx::GRANDSTREAM_HEADER.into()),
        Shape::Cucm => ("cucm_cdr.csv", "cucm_overlap.csv", pbx::cucm_header()),
        Shape::ThreeCx => ("3cx_cdr.csv", "3cx_overlap.csv", pbx::THREECX_START.into()),
        Shape::Kamailio => ("kamailio_acc.log", "kamailio_overlap.log", String::new()),
        Shape::Carrier => ("carrier_cdr.csv", "carrier_overlap.csv", CARRIER_HEADER.to_string()),
    };
    let mut sink = CdrSink {
        shape: args.shape,
        csv: BufWriter::with_capacity(1 << 20, File::create(out.join(name))?),
        overlap: if args.no_overlap { None } else { Some(BufWriter::new(File::create(out.join(overlap_name))?)) },
        // a PBX writes legs: the one-row-a-call Parquet copy is the generic shape's
        parquet: if args.no_parquet || args.shape != Shape::Generic {
            None
        } else {
            let w = ParquetWriter::new(File::create(out.join("cdr.parquet"))?).batched(&cdr_schema())?;
            Some((w, Batch::default()))
        },
        rows: 0,
        overlap_rows: 0,
        overlap_from: last_day.and_hms_opt(0, 0, 0).unwrap(),
        overlap_to: last_day.and_hms_opt(6, 0, 0).unwrap(),
    };
    sink.csv.write_all(header.as_bytes())?;
    if let Some(o) = sink.overlap.as_mut() {
        o.write_all(header.as_bytes())?;
    }
    let mut joins = BufWriter::new(File::create(out.join("joins.csv"))?);
    writeln!(joins, "group_id,member,joined_at,platform,inviter")?;
    let mut next_id: u64 = 1;
    let mut shared = Shared::default();
    let mut clis = Clis::new()?;
    let inbound: Vec<&str> = ops.iter().filter(|o| o.pop == Population::InboundAgent).map(|o| o.id.as_str()).collect();
    for (i, op) in ops.iter().enumerate() {
        let mut r = ChaCha8Rng::seed_from_u64(args.seed ^ ((i as u64 + 1) << 20));
        let mut w =
            Writer { sink: &mut sink, clis: &mut clis, joins: &mut joins, shared: &mut shared, next_id: &mut next_id };
        let mut facts = if op.pop == Population::CrewLeader {
            let members: Vec<&Operator> =
                ops.iter().filter(|o| o.crew == op.crew && o.pop != Population::CrewLeader).collect();
            let (facts, heard) = generate_leader(op, &crews, &members, args, &mut r, &mut w)?;
            truth[i].monitors = heard;
            facts
        } else {
            generate_operator(op, &crews, args, &inbound, &mut r, &mut w)?
        };
        label_shifts(&mut truth[i], &mut facts);
    }
    // Background group growth: members nobody in the CDRs called.
    let mut r = ChaCha8Rng::seed_from_u64(args.seed ^ 0xB0B);
    for c in &crews {
        for _ in 0..(20 * args.days) {
            let t = args.start_date.and_hms_opt(0, 0, 0).unwrap()
                + Duration::seconds(r.random_range(0..86_400 * args.days as i64));
            let m = cn_mobile(&mut r);
            let g = &c.groups[r.random_range(0..c.groups.len())];
            write_join(&mut joins, &mut shared, g, &m, t, &mut r)?;
        }
    }
    joins.flush()?;
    label_shared(&mut truth, &shared);
    let (rows, overlap_rows) = sink.finish()?;
    crate::outputs::write_atomic(&out.join("ip-country.csv"), |w| {
        writeln!(w, "network,country")?;
        for (n, c) in IP_PLAN {
            writeln!(w, "{n},{c}")?;
        }
        Ok(())
    })?;
    let crews_truth = crews
        .iter()
        .map(|c| CrewTruth {
            name: c.name.clone(),
            members: truth
                .iter()
                .filter(|t| t.crew.as_deref() == Some(&c.name) && t.role == "operator")
                .map(|t| t.operator_id.clone())
                .collect(),
            leader: truth
                .iter()
                .find(|t| t.crew.as_deref() == Some(&c.name) && t.role == "leader")
                .map(|t| t.operator_id.clone()),
            clis: c.clis.clone(),
            groups: c.groups.clone(),
            network: c.network.clone(),
        })
        .collect();
    let tf = TruthFile {
        crews: crews_truth,
        seed: args.seed,
        days: args.days,
        start_date: args.start_date.to_string(),
        tz: "Asia/Shanghai",
        home_region: "CN",
        operators: &truth,
    };
    crate::outputs::write_atomic(&out.join("truth.json"), |w| Ok(serde_json::to_writer_pretty(w, &tf)?))?;
    eprintln!(
        "generated {rows} CDR rows ({} operators × {} days), {overlap_rows} overlapping rows, in {}",
        operators,
        args.days,
        out.display()
    );
    chain_files(args, &crews)
}

/// `--cards`, `--sms`: the second seed's chain beside the CDRs.
fn chain_files(args: &GenerateArgs, crews: &[Crew]) -> Result<()> {
    let out = &args.out;
    if args.cards {
        let n = chain::write_cards(out, args.seed, args.card_rows, args.start_date, args.days, !args.no_parquet)?;
        eprintln!("generated {n} card ledger rows in {}", out.join("cards").display());
    }
    if args.sms {
        // numbers the crews' operators call: the recruiters text some of them
        let leads: Vec<String> =
            crews.iter().flat_map(|c| (1_000..1_400).map(move |i| lead(c.leads_base, i))).collect();
        let n = chain::write_sms(out, args.seed, args.start_date, args.days, &leads)?;
        eprintln!("generated {n} SMS rows in {}", out.join("sms").display());
    }
    Ok(())
}

/// The shift, shared-seat and spoofing labels of one seat, from its calls as written.
fn label_shifts(t: &mut Truth, facts: &mut [CallFact]) {
    let m = labels::shifts(facts);
    t.long_shift = m.longest_union_s >= labels::LONG_SHIFT_S;
    t.reasons.insert(
        "long-shift",
        format!(
            "longest shift {:.2} h of wall-clock talk (>= {} h)",
            m.longest_union_s as f64 / 3600.0,
            labels::LONG_SHIFT_S / 3600
        ),
    );
    t.shared_seat = m.shared;
    t.reasons.insert(
        "shared-seat",
        format!("{} person(s); most time at two or more calls in a shift {} min", t.people, m.most_concurrent_s / 60),
    );
    t.cli_rotation = m.rotating_shifts > 0;
    t.reasons.insert(
        "cli-rotation",
        format!(
            "{} shift(s) with >= {} outbound calls, >= {} caller IDs, changing on >= {:.0} % of calls",
            m.rotating_shifts,
            labels::ROTATION_MIN_CALLS,
            labels::ROTATION_MIN_DISTINCT,
            labels::ROTATION_MIN_CHANGE * 100.0
        ),
    );
    t.pay_days = m.pay_days;
    let best = m.spoofed_days.iter().map(|d| d.1).max().unwrap_or(0);
    t.spoofed_foreign_cli = best >= labels::SPOOF_MIN_CALLS;
    t.reasons.insert(
        "spoofed-foreign-cli",
        format!("most foreign-CLI calls from home soil in a day: {best} (>= {})", labels::SPOOF_MIN_CALLS),
    );
}

/// The labels that need every seat's calls and the whole join log.
fn label_shared(truth: &mut [Truth], shared: &Shared) {
    let fan = shared.fanout_seats();
    let conversions = shared.conversions();
    for (i, t) in truth.iter_mut().enumerate() {
        let reach = fan.get(&i).copied();
        t.foreign_cli_fanout = reach.is_some();
        t.reasons.insert(
            "foreign-cli-fanout",
            match reach {
                Some(n) => format!("used a foreign caller ID that reached {n} home callees in a day"),
                None => {
                    format!("no foreign caller ID of its reached {} home callees in a day", labels::FANOUT_MIN_CALLEES)
                }
            },
        );
        let (answered, converted) = conversions.get(&i).copied().unwrap_or((0, 0));
        t.conversions = converted as u32;
        t.group_invite_conversion = labels::converts(answered, converted);
        t.reasons.insert(
            "group-invite-conversion",
            format!("{converted} of {answered} answered outbound callees joined within 60 min"),
        );
    }
}

/// Where generated calls and joins go.
struct Writer<'a, W: Write> {
    sink: &'a mut CdrSink,
    clis: &'a mut Clis,
    joins: &'a mut W,
    shared: &'a mut Shared,
    next_id: &'a mut u64,
}

fn write_join(
    w: &mut impl Write,
    shared: &mut Shared,
    group: &str,
    national: &str,
    local: NaiveDateTime,
    rng: &mut ChaCha8Rng,
) -> Result<()> {
    // the join log is kept in UTC; the CDRs are local (UTC+8)
    let utc = local - Duration::hours(8);
    let platform = ["qq", "wechat", "telegram"][rng.random_range(0..3)];
    let member = join_number_form(rng, national);
    writeln!(w, "{group},{member},{},{platform},", utc.format("%Y-%m-%dT%H:%M:%SZ"))?;
    if let Ok(k) = national.parse::<u64>() {
        shared.joins.entry(k).or_default().push(local.and_utc().timestamp());
    }
    Ok(())
}

/// One day's plan of a person: (start hour, talk target hours, mean talk seconds, answer rate,
/// lunch (hour, minutes)).
type DayPlan = (f64, f64, f64, f64, Option<(f64, i64)>);

fn day_plan(op: &Operator, crew: Option<&Crew>, d: u32, person: u32, r: &mut ChaCha8Rng) -> DayPlan {
    match op.pop {
        // a crew starts together (within a few minutes), at a time of the crew's for the day
        Population::Diversion | Population::DiversionDomestic => {
            let night = crew.is_some_and(|c| c.night);
            let (lo, hi) = if night { (19.5, 21.5) } else { (7.5, 9.5) };
            let s = crew_start(crew, d, lo, hi) + r.random_range(-0.06..0.06);
            (s, r.random_range(8.15..9.9), r.random_range(150.0..200.0), 0.62, None)
        }
        Population::DiversionParttime => {
            (crew_start(crew, d, 9.0, 13.0) + r.random_range(-0.06..0.06), r.random_range(4.0..6.5), 170.0, 0.6, None)
        }
        // a telemarketer who once talks past 8 h in one shift (a true long shift, not diversion)
        Population::Telemarketer if op.idx % 10 == 7 && d == 1 => (8.0, r.random_range(8.1..8.6), 140.0, 0.45, None),
        // split days: a long lunch over the shift break, past 8 h a day but not a shift
        Population::Telemarketer if op.idx % 10 == 3 => {
            (7.5, r.random_range(8.2..8.8), 140.0, 0.45, Some((12.0, r.random_range(130..160))))
        }
        Population::Telemarketer => {
            let near_miss = op.idx % 10 == 6 && d.is_multiple_of(2);
            let target = if near_miss { r.random_range(7.0..7.6) } else { r.random_range(3.0..6.5) };
            let lunch =
                if r.random_bool(0.4) { (12.0, r.random_range(125..170)) } else { (12.0, r.random_range(50..100)) };
            (r.random_range(8.5..9.5), target, 140.0, 0.45, Some(lunch))
        }
        Population::ServiceDesk => (r.random_range(8.0..10.0), r.random_range(2.0..4.0), 90.0, 0.7, Some((12.5, 60))),
        Population::OverseasBpo => (r.random_range(6.0..10.0), r.random_range(5.0..7.5), 200.0, 0.55, Some((12.5, 45))),
        Population::NightShift => (r.random_range(21.5..22.5), r.random_range(4.0..6.5), 160.0, 0.5, None),
        Population::InboundAgent => (r.random_range(8.0..9.5), r.random_range(5.0..7.0), 240.0, 0.97, Some((12.5, 60))),
        // the people of a shared seat start a little apart and each talks 2.5–4.5 h
        Population::SharedSeat => (
            8.5 + 0.4 * person as f64 + r.random_range(0.0..0.3),
            r.random_range(2.5..4.5),
            150.0,
            0.5,
            Some((12.0, 60)),
        ),
        // a leader's sessions follow its crew's day (generate_leader)
        Population::CrewLeader => (crew_start(crew, d, 7.5, 9.5), 2.0, 240.0, 1.0, None),
    }
}

/// A crew's start hour on day `d`, between `lo` and `hi`: the same for every member.
fn crew_start(crew: Option<&Crew>, d: u32, lo: f64, hi: f64) -> f64 {
    let k = crew.map_or(0, |c| c.idx as u64);
    let mut r = ChaCha8Rng::seed_from_u64(0x5EED ^ (k << 16) ^ u64::from(d));
    r.random_range(lo..hi)
}

/// A crew leader's day: 12-20 ChanSpy sessions of 1-8 min on its crew's seats, through the crew's
/// hours; written as Asterisk writes a ChanSpy leg. Returns the calls as facts and the seats listened to.
fn generate_leader(
    op: &Operator,
    crews: &[Crew],
    members: &[&Operator],
    args: &GenerateArgs,
    r: &mut ChaCha8Rng,
    w: &mut Writer<'_, impl Write>,
) -> Result<(Vec<CallFact>, Vec<String>)> {
    let crew = op.crew.map(|c| &crews[c]);
    let mut facts = Vec::new();
    let mut heard = std::collections::BTreeSet::new();
    let (lo, hi) = if crew.is_some_and(|c| c.night) { (19.5, 21.5) } else { (7.5, 9.5) };
    for d in 0..args.days {
        let day = args.start_date + Duration::days(d as i64);
        let start_h = crew_start(crew, d, lo, hi) + 0.5;
        let mut t = day.and_hms_opt(0, 0, 0).unwrap() + Duration::seconds((start_h * 3600.0) as i64);
        for _ in 0..r.random_range(12..20) {
            t += Duration::seconds(r.random_range(900..2400));
            let target = members[r.random_range(0..members.len())];
            let c = Call {
                id: *w.next_id,
                op,
                start: t,
                talk: r.random_range(60..480),
                ring: 1,
                cli: std::borrow::Cow::Borrowed(op.id.as_str()),
                callee: format!("*222{}", target.id),
                national: String::new(),
                ip: None,
                disposition: "ANSWERED",
                inbound: false,
                wait: 0,
                other_agent: None,
                ivr: false,
                via_local: false,
                h_row: false,
                trunk: DOMESTIC_TRUNK,
                spy: Some(target.id.clone()),
            };
            *w.next_id += 1;
            w.sink.write(&c)?;
            heard.insert(target.id.clone());
            let s = c.start.and_utc().timestamp();
            facts.push(CallFact {
                start: s,
                answer: Some(s + 1),
                end: s + 1 + c.talk,
                talk: c.talk,
                spoofed: false,
                day: chrono::Datelike::num_days_from_ce(&c.start.date()),
                cli: 0,
                outbound: false,
            });
            t += Duration::seconds(c.talk);
        }
    }
    Ok((facts, heard.into_iter().collect()))
}

/// One operator's calls over all days, written in start order; returns them as facts.
fn generate_operator(
    op: &Operator,
    crews: &[Crew],
    args: &GenerateArgs,
    inbound_seats: &[&str],
    r: &mut ChaCha8Rng,
    w: &mut Writer<'_, impl Write>,
) -> Result<Vec<CallFact>> {
    let crew = op.crew.map(|c| &crews[c]);
    let mut lead_idx: u64 = r.random_range(0..5_000);
    let mut coincidental_left = op.coincidental;
    let conv_rate = if crew.is_some() { r.random_range(0.03..0.10) } else { 0.0 };
    let pbx = args.shape.is_pbx();
    let mut facts = Vec::new();
    for d in 0..args.days {
        let day = args.start_date + Duration::days(d as i64);
        if crew.is_some() && r.random_bool(0.08) {
            continue; // a day off
        }
        // an overseas team that made a few calls from a home IP: 6 on its first day (a finding), or 3
        let mut from_home = match (op.pop, d) {
            (Population::OverseasBpo, 0) if op.idx.is_multiple_of(6) => 6,
            (Population::OverseasBpo, 0) if op.idx % 6 == 3 => 3,
            _ => 0,
        };
        let mut calls: Vec<Call> = Vec::new();
        for person in 0..op.people {
            let (start_h, target_h, mean_talk, p_answer, lunch) = day_plan(op, crew, d, person, r);
            let mut t = day.and_hms_opt(0, 0, 0).unwrap() + Duration::seconds((start_h * 3600.0) as i64);
            let target = (target_h * 3600.0) as i64;
            let mut talk_total: i64 = 0;
            let mut lunch_done = lunch.is_none();
            let mut next_break = t + Duration::minutes(r.random_range(80..140));
            while talk_total < target {
                if !lunch_done {
                    let (h, mins) = lunch.unwrap();
                    if t >= day.and_hms_opt(0, 0, 0).unwrap() + Duration::seconds((h * 3600.0) as i64) {
                        t += Duration::minutes(mins);
                        lunch_done = true;
                    }
                }
                if t >= next_break {
                    t += Duration::minutes(r.random_range(8..35));
                    next_break = t + Duration::minutes(r.random_range(80..140));
                }
                let answered = r.random_bool(p_answer);
                let ring = if answered { r.random_range(4..20) } else { r.random_range(15..45) };
                let talk =
                    if answered { ((mean_talk * (-(1.0f64 - r.random::<f64>()).ln())).max(8.0)) as i64 } else { 0 };
                let talk = talk.min(1800);
                let disposition = if answered {
                    "ANSWERED"
                } else if r.random_bool(0.8) {
                    "NO ANSWER"
                } else {
                    "BUSY"
                };
                let mut call = Call {
                    id: 0,
                    op,
                    start: t,
                    talk,
                    ring,
                    cli: std::borrow::Cow::Borrowed(op.clis[r.random_range(0..op.clis.len())].as_str()),
                    callee: String::new(),
                    national: String::new(),
                    ip: (!r.random_bool(0.01)).then_some(op.ip.as_str()),
                    disposition,
                    inbound: false,
                    wait: 0,
                    other_agent: None,
                    ivr: false,
                    via_local: pbx && r.random_bool(0.4),
                    h_row: pbx && r.random_bool(0.1),
                    trunk: if op.pop == Population::OverseasBpo { OVERSEAS_TRUNK } else { DOMESTIC_TRUNK },
                    spy: None,
                };
                if op.pop == Population::InboundAgent {
                    // a caller from the queue, now and then a foreign one; another agent rang first
                    call.inbound = true;
                    call.callee = "6400".into();
                    call.trunk = INBOUND_TRUNK;
                    call.wait = r.random_range(5..90);
                    call.ivr = r.random_bool(0.5);
                    call.other_agent =
                        r.random_bool(0.3).then(|| inbound_seats[r.random_range(0..inbound_seats.len())].to_string());
                    (call.via_local, call.h_row) = (false, false);
                } else {
                    let national = lead(op.leads_base, lead_idx);
                    lead_idx += 1 + r.random_range(0..3);
                    call.callee = cdr_number_form(r, &national);
                    call.national = national;
                }
                if from_home > 0 && talk > 0 {
                    from_home -= 1;
                    call.ip = Some(op.home_ip.as_str());
                    call.trunk = DOMESTIC_TRUNK;
                }
                let end = t + Duration::seconds(ring + talk);
                talk_total += talk;
                calls.push(call);
                t = end + Duration::seconds(r.random_range(5..40));
            }
        }
        calls.sort_by_key(|c| c.start);
        for c in calls.iter_mut() {
            c.id = *w.next_id;
            *w.next_id += 1;
            if c.inbound {
                c.cli = std::borrow::Cow::Owned(inbound_caller(r, &mut lead_idx, op.leads_base));
            }
        }
        for c in &calls {
            w.sink.write(c)?;
            facts.push(record(op, c, pbx, w.shared, w.clis));
            conversions(crew, c, conv_rate, &mut coincidental_left, r, w)?;
        }
    }
    Ok(facts)
}

/// A caller of an inbound agent: a home mobile, one in fifty a foreign number (a customer abroad).
fn inbound_caller(r: &mut ChaCha8Rng, idx: &mut u64, base: u64) -> String {
    *idx += 1;
    if r.random_bool(0.02) { format!("+447700900{:03}", r.random_range(0..1000u32)) } else { lead(base, *idx) }
}

/// A written call as a fact for the labels; answered outbound calls and foreign caller IDs are
/// kept for the cross-seat labels.
fn record(op: &Operator, c: &Call<'_>, pbx: bool, shared: &mut Shared, clis: &mut Clis) -> CallFact {
    let s = c.start.and_utc().timestamp();
    let answer = (c.talk > 0).then_some(s + c.ring);
    let end = s + c.ring + c.talk;
    let outbound = !c.inbound;
    let foreign = if outbound { clis.foreign(&c.cli) } else { None };
    // home soil: a home IP (a home population's own, or the one an overseas team used), or in a
    // PBX export, which has no IPs, the domestic trunk
    let home = if pbx {
        c.trunk == DOMESTIC_TRUNK
    } else {
        c.ip.is_some_and(|ip| ip == op.home_ip || (op.pop != Population::OverseasBpo && ip == op.ip))
    };
    let day = chrono::Datelike::num_days_from_ce(&c.start.date());
    if outbound {
        let callee: u64 = c.national.parse().unwrap_or(0);
        if let Some(key) = foreign.clone() {
            let e = shared.fanout.entry((key, day)).or_default();
            e.0.insert(callee);
            e.1.insert(op.idx);
        }
        if c.talk > 0 {
            shared.answered.entry(op.idx).or_default().push((callee, answer.unwrap_or(end), end));
        }
    }
    // the caller ID as a number (its `00` and `+` forms are one)
    let digits = c.cli.trim_start_matches('+').trim_start_matches("00");
    let cli = digits.parse::<u64>().unwrap_or(0);
    CallFact { start: s, answer, end, talk: c.talk, spoofed: foreign.is_some() && home, day, cli, outbound }
}

/// Caller IDs read as the audit reads them (the project's phone parser), each text once: the
/// E.164 form of a foreign one (a region other than home), None for a home or unreadable one.
struct Clis {
    phones: crate::enrich::phone::PhoneParser,
    seen: std::collections::HashMap<String, Option<String>>,
}

impl Clis {
    fn new() -> Result<Self> {
        Ok(Self {
            phones: crate::enrich::phone::PhoneParser::new("CN").map_err(anyhow::Error::msg)?,
            seen: Default::default(),
        })
    }

    fn foreign(&mut self, cli: &str) -> Option<String> {
        if let Some(f) = self.seen.get(cli) {
            return f.clone();
        }
        let p = self.phones.parse(cli, false);
        let f = p.country.filter(|c| c != "CN").and(p.e164);
        self.seen.insert(cli.to_string(), f.clone());
        f
    }
}

/// The joins after one call: a crew's conversions, a legitimate list's coincidences.
fn conversions(
    crew: Option<&Crew>,
    c: &Call<'_>,
    conv_rate: f64,
    coincidental_left: &mut u32,
    r: &mut ChaCha8Rng,
    w: &mut Writer<'_, impl Write>,
) -> Result<()> {
    if c.talk == 0 || c.inbound {
        return Ok(());
    }
    let end = c.start + Duration::seconds(c.ring + c.talk);
    let national = c.national.clone();
    if let Some(cr) = crew {
        if r.random_bool(conv_rate) {
            let when = end + Duration::seconds(r.random_range(60..45 * 60));
            let g = &cr.groups[r.random_range(0..cr.groups.len())];
            write_join(w.joins, w.shared, g, &national, when, r)?;
        }
    } else if *coincidental_left > 0 && c.talk > 60 && r.random_bool(0.01) {
        *coincidental_left -= 1;
        let when = end + Duration::seconds(r.random_range(300..50 * 60));
        let g = format!("L{:03}", r.random_range(1..40));
        write_join(w.joins, w.shared, &g, &national, when, r)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn populations_cover_every_label() {
        let pops: Vec<Population> = (0..150).map(|i| population_of(i, 150, true)).collect();
        for p in Population::ALL {
            assert!(pops.contains(&p), "{p:?} missing");
        }
    }

    #[test]
    fn number_forms_parse_back_to_the_same_e164() {
        let p = crate::enrich::phone::PhoneParser::new("CN").unwrap();
        let mut r = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..50 {
            let n = cn_mobile(&mut r);
            let want = p.parse(&n, false).e164;
            assert!(want.is_some());
            assert_eq!(p.parse(&cdr_number_form(&mut r, &n), false).e164, want);
            assert_eq!(p.parse(&join_number_form(&mut r, &n), false).e164, want);
        }
    }

    #[test]
    fn ips_fall_in_their_planned_country() {
        let t = crate::enrich::ip::IpCountry::from_csv(
            &IP_PLAN.iter().map(|(n, c)| format!("{n},{c}\n")).collect::<String>(),
        )
        .unwrap();
        let mut r = ChaCha8Rng::seed_from_u64(3);
        for (cc, v6) in [("CN", false), ("CN", true), ("PH", false), ("PH", true), ("MY", false), ("IN", false)] {
            for _ in 0..20 {
                let ip = ip_in(&mut r, cc, v6);
                assert_eq!(t.lookup(&ip).as_deref(), Some(cc), "{ip}");
            }
        }
    }
}
