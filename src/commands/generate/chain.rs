//! `generate --cards` and `--sms`: the order-brushing chain of the second seed, with truth.
//!
//! `cards/`:
//! - `ledger.csv`: a recharge provider's card ledger as its export writes it: Chinese headers
//!   (卡号, 运营商, 面值, 供应商/渠道, 采购单位, 采购价, 采购时间, 入库时间, 使用时间) and the PIN
//!   (卡密), which `cards` must never read; `ledger.parquet`: the same rows, English names, no PIN.
//!   Suppliers: wholesale channels at 99.2–99.9 per 100 whose cards are stocked and wait 10–40 days,
//!   except a rush at the turn of each month (a share redeemed within two minutes, unstocked);
//!   near misses (a wholesaler at 99.1; a direct-recharge partner whose cards wait 3–6 minutes);
//!   a clearance seller below the market whose cards are stocked; an instant-recharge partner at the
//!   market whose cards go out within a minute; consignment firms (寄卖商) at 97.5 / 98.2 / 98.6
//!   for CMCC / CUCC / CTCC (or lower) whose PINs are redeemed within two minutes, never stocked.
//! - `sales.csv`: card shops' sales: honest shops at 97–100 per 100, one at 100.5–101 (a fee, a
//!   near miss), and scam shops selling at 110 to victims; the scam shops' cards reappear in the
//!   ledger, bought back by a consignment firm (the chain).
//! - `truth.json`: per supplier and shop, each rule's label with its reason.
//!
//! `sms/`:
//! - `sms_log.csv`: a "1069" platform's send log (平台, 子账号, 签名, 接入号, 手机号码, 发送时间,
//!   短信内容): recruiters' order-brushing offers with QQ / WeChat contacts, in Chinese and
//!   English, to many numbers (the crews' lead lists among them when CDRs are generated too);
//!   legitimate marketing, bank notices and a school's note that mention 兼职 in another sense;
//!   a small recruiter below the recipient threshold.
//! - `joins.csv`: recipients of a recruiter joining its QQ group (group id in the text, inviter its
//!   QQ) within a day; `truth.json`: per sub-account, its label and reason.

use anyhow::Result;
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};
use polars::prelude::*;
use rand::rngs::Xoshiro256PlusPlus as Rng;
use rand::{RngExt, SeedableRng};
use serde_json::json;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

const CARRIERS: [(&str, &str); 3] = [("中国移动", "CMCC"), ("中国联通", "CUCC"), ("中国电信", "CTCC")];
const FACES: [f64; 4] = [50.0, 100.0, 100.0, 200.0];

/// How a supplier behaves.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    /// At the market (99.2–99.9), stocked, 10–40 days; a month-turn rush.
    Wholesale,
    /// Wholesale at 99.1: below the usual range, above the floor.
    Wholesale991,
    /// At the market, unstocked, redeemed 3–6 minutes after acquisition.
    DirectPartner,
    /// Below the market (97.8–98.3) but stocked and slow.
    Clearance,
    /// At the market, redeemed within a minute (an instant-recharge partner).
    InstantPartner,
    /// A consignment firm: 97.5 / 98.2 / 98.6 per carrier (or `cut` lower), redeemed ≤ 2 min.
    Consignment { cut: f64 },
}

struct Supplier {
    name: String,
    kind: Kind,
    /// Its own mean price per 100 (market kinds).
    mean: f64,
    weight: f64,
}

fn suppliers(rows: u64, rng: &mut Rng) -> Vec<Supplier> {
    // more suppliers as the ledger grows, so each keeps a realistic volume
    let scale = ((rows as f64 / 20_000.0).sqrt().round() as usize).clamp(1, 20);
    let mut out = Vec::new();
    let mut add = |name: String, kind: Kind, mean: f64, weight: f64| out.push(Supplier { name, kind, mean, weight });
    for i in 0..8 * scale {
        add(format!("wholesale-{:02}", i + 1), Kind::Wholesale, rng.random_range(99.35..99.8), 3.0);
    }
    add("wholesale-991".into(), Kind::Wholesale991, 99.1, 2.0);
    add("direct-partner-01".into(), Kind::DirectPartner, 99.5, 1.5);
    add("clearance-01".into(), Kind::Clearance, 98.0, 1.0);
    add("instant-partner-01".into(), Kind::InstantPartner, 99.6, 1.0);
    for i in 0..4 * scale {
        let cut = if i % 4 == 3 { rng.random_range(1.0..2.0) } else { 0.0 };
        add(format!("寄卖-{:02}", i + 1), Kind::Consignment { cut }, 0.0, 1.6);
    }
    out
}

fn consignment_price(carrier: usize, cut: f64) -> f64 {
    [97.5, 98.2, 98.6][carrier] - cut
}

/// A card number: a carrier prefix and 15 digits.
fn card_no(carrier: usize, serial: u64) -> String {
    format!("{}{:015}", [17, 18, 19][carrier], serial)
}

fn pin(rng: &mut Rng) -> String {
    format!("{:09}{:09}", rng.random_range(0..1_000_000_000u64), rng.random_range(0..1_000_000_000u64))
}

fn month_turn(t: NaiveDateTime) -> bool {
    let d = t.date();
    let next = d.checked_add_months(chrono::Months::new(1)).unwrap_or(d).with_day(1).unwrap_or(d);
    d.day() <= 2 || (next - d).num_days() <= 2
}

fn fmt(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// One ledger row: (acquired, stocked, redeemed) for a supplier's card acquired at `t`.
fn life(kind: Kind, t: NaiveDateTime, rng: &mut Rng) -> (Option<NaiveDateTime>, Option<NaiveDateTime>) {
    let secs = |a: i64, b: i64, rng: &mut Rng| Duration::seconds(rng.random_range(a..b));
    match kind {
        Kind::Wholesale | Kind::Wholesale991 | Kind::Clearance => {
            if month_turn(t) && kind != Kind::Clearance && rng.random_bool(0.6) {
                (None, Some(t + secs(20, 115, rng)))
            } else {
                let stocked = t + secs(300, 3600, rng);
                let used = if rng.random_bool(0.85) { Some(t + secs(10 * 86_400, 40 * 86_400, rng)) } else { None };
                (Some(stocked), used)
            }
        }
        Kind::DirectPartner => (None, Some(t + secs(185, 360, rng))),
        Kind::InstantPartner => (None, Some(t + secs(5, 60, rng))),
        Kind::Consignment { .. } => (None, Some(t + secs(15, 118, rng))),
    }
}

struct Sale {
    shop: String,
    card: String,
    carrier: usize,
    face: f64,
    price: f64,
    at: NaiveDateTime,
    buyer: String,
}

/// Shops' sales; the scam shops' cards are returned for the consignment firms to buy back.
fn sales(start: NaiveDateTime, days: u32, rng: &mut Rng) -> Vec<Sale> {
    let span = 86_400 * i64::from(days.max(1));
    let mut out = Vec::new();
    let shops: [(&str, f64, f64, usize); 6] = [
        ("jd-cards", 97.0, 99.0, 600),
        ("tmall-recharge", 98.0, 100.0, 600),
        ("corner-store", 100.0, 100.0, 300),
        ("fee-shop", 100.5, 101.0, 200),
        ("任信数卡商城", 110.0, 110.0, 400),
        ("快充卡城", 108.0, 112.0, 250),
    ];
    let mut serial = 900_000_000_000u64;
    for (shop, lo, hi, n) in shops {
        let scam = lo > 105.0;
        let victims: Vec<String> = (0..(n / 8).max(3))
            .map(|_| format!("1{}{:09}", [3, 5, 8][rng.random_range(0..3)], rng.random_range(0..1_000_000_000u64)))
            .collect();
        for _ in 0..n {
            let carrier = rng.random_range(0..3);
            let face = if scam { 100.0 } else { FACES[rng.random_range(0..4)] };
            // a scam shop sells at face now and then too (its front)
            let per = if scam && rng.random_bool(0.15) { 100.0 } else { rng.random_range(lo..=hi) };
            serial += 1;
            out.push(Sale {
                shop: shop.into(),
                card: card_no(carrier, serial),
                carrier,
                face,
                price: (face * per / 100.0 * 100.0).round() / 100.0,
                at: start + Duration::seconds(rng.random_range(0..span)),
                buyer: if scam {
                    victims[rng.random_range(0..victims.len())].clone()
                } else {
                    format!("user{:06}", rng.random_range(0..1_000_000))
                },
            });
        }
    }
    out
}

const LEDGER_HEADER: &str = "卡号,卡密,运营商,面值,供应商/渠道,采购单位,采购价,采购时间,入库时间,使用时间\n";

/// The ledger's rows in Parquet batches (English names, no PIN).
#[derive(Default)]
struct Cols {
    card_id: Vec<String>,
    carrier: Vec<&'static str>,
    face_value: Vec<f64>,
    supplier: Vec<String>,
    unit: Vec<&'static str>,
    price: Vec<f64>,
    acquired_at: Vec<String>,
    stocked_at: Vec<Option<String>>,
    redeemed_at: Vec<Option<String>>,
}

impl Cols {
    fn frame(&mut self) -> PolarsResult<DataFrame> {
        let c = std::mem::take(self);
        DataFrame::new(
            c.card_id.len(),
            vec![
                Column::new("card_id".into(), c.card_id),
                Column::new("carrier".into(), c.carrier),
                Column::new("face_value".into(), c.face_value),
                Column::new("supplier".into(), c.supplier),
                Column::new("unit".into(), c.unit),
                Column::new("price".into(), c.price),
                Column::new("acquired_at".into(), c.acquired_at),
                Column::new("stocked_at".into(), c.stocked_at),
                Column::new("redeemed_at".into(), c.redeemed_at),
            ],
        )
    }
}

struct Ledger {
    csv: BufWriter<File>,
    parquet: Option<polars::io::parquet::write::BatchedWriter<File>>,
    cols: Cols,
    rows: u64,
}

impl Ledger {
    #[allow(clippy::too_many_arguments)]
    fn row(
        &mut self,
        card: &str,
        carrier: usize,
        face: f64,
        supplier: &str,
        per_100: f64,
        t: NaiveDateTime,
        life: (Option<NaiveDateTime>, Option<NaiveDateTime>),
        rng: &mut Rng,
    ) -> Result<()> {
        let price = (face * per_100).round() / 100.0;
        let unit = ["卡业务事业部", "批发部"][usize::from(per_100 < 99.0)];
        let (stocked, used) = (life.0.map(fmt), life.1.map(fmt));
        writeln!(
            self.csv,
            "{card},{},{},{face},{supplier},{unit},{price:.2},{},{},{}",
            pin(rng),
            CARRIERS[carrier].0,
            fmt(t),
            stocked.as_deref().unwrap_or(""),
            used.as_deref().unwrap_or("")
        )?;
        if self.parquet.is_some() {
            let c = &mut self.cols;
            c.card_id.push(card.to_string());
            c.carrier.push(CARRIERS[carrier].1);
            c.face_value.push(face);
            c.supplier.push(supplier.to_string());
            c.unit.push(unit);
            c.price.push(price);
            c.acquired_at.push(fmt(t));
            c.stocked_at.push(stocked);
            c.redeemed_at.push(used);
            if c.card_id.len() >= 500_000 {
                self.flush()?;
            }
        }
        self.rows += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if let Some(w) = self.parquet.as_mut()
            && !self.cols.card_id.is_empty()
        {
            w.write_batch(&self.cols.frame()?)?;
        }
        Ok(())
    }
}

/// `cards/`: ledger.csv, ledger.parquet, sales.csv, truth.json; `rows` ledger rows (about).
pub fn write_cards(out: &Path, seed: u64, rows: u64, start: NaiveDate, days: u32, parquet: bool) -> Result<u64> {
    let dir = out.join("cards");
    std::fs::create_dir_all(&dir)?;
    let mut rng = Rng::seed_from_u64(seed ^ 0xCA4D);
    let start = start.and_hms_opt(0, 0, 0).expect("midnight");
    // the ledger spans a month turn whatever --days says, so the rush is there to be excused
    let days = days.max(1);
    let span = 86_400 * i64::from(days);
    let sups = suppliers(rows, &mut rng);
    let sold = sales(start, days, &mut rng);
    let schema = Schema::from_iter([
        Field::new("card_id".into(), DataType::String),
        Field::new("carrier".into(), DataType::String),
        Field::new("face_value".into(), DataType::Float64),
        Field::new("supplier".into(), DataType::String),
        Field::new("unit".into(), DataType::String),
        Field::new("price".into(), DataType::Float64),
        Field::new("acquired_at".into(), DataType::String),
        Field::new("stocked_at".into(), DataType::String),
        Field::new("redeemed_at".into(), DataType::String),
    ]);
    let mut l = Ledger {
        csv: BufWriter::with_capacity(1 << 20, File::create(dir.join("ledger.csv"))?),
        parquet: if parquet {
            Some(ParquetWriter::new(File::create(dir.join("ledger.parquet"))?).batched(&schema)?)
        } else {
            None
        },
        cols: Cols::default(),
        rows: 0,
    };
    l.csv.write_all(LEDGER_HEADER.as_bytes())?;
    // the chain: the scam shops' cards bought back by consignment firms within the hour
    let firms: Vec<&Supplier> = sups.iter().filter(|s| matches!(s.kind, Kind::Consignment { .. })).collect();
    for s in sold.iter().filter(|s| s.price / s.face > 1.05) {
        if rng.random_bool(0.1) {
            continue; // not every PIN reaches this provider
        }
        let f = firms[rng.random_range(0..firms.len())];
        let Kind::Consignment { cut } = f.kind else { unreachable!() };
        let t = s.at + Duration::seconds(rng.random_range(120..3600));
        let life = life(f.kind, t, &mut rng);
        l.row(
            &s.card,
            s.carrier,
            s.face,
            &f.name,
            consignment_price(s.carrier, cut) + rng.random_range(-0.1..0.1),
            t,
            life,
            &mut rng,
        )?;
    }
    let total: f64 = sups.iter().map(|s| s.weight).sum();
    let mut serial = 0u64;
    while l.rows < rows.max(1000) {
        let mut pick = rng.random_range(0.0..total);
        let s = sups.iter().find(|s| {
            pick -= s.weight;
            pick < 0.0
        });
        let s = s.unwrap_or(&sups[0]);
        let carrier = rng.random_range(0..3);
        let face = FACES[rng.random_range(0..4)];
        let per = match s.kind {
            Kind::Consignment { cut } => consignment_price(carrier, cut) + rng.random_range(-0.12..0.12),
            Kind::Clearance => rng.random_range(97.8..98.3),
            Kind::Wholesale991 => 99.1,
            _ => (s.mean + rng.random_range(-0.15..0.15)).clamp(99.2, 99.9),
        };
        // a month turn inside the span: the last days of the start month when the span reaches it
        let t = start + Duration::seconds(rng.random_range(0..span));
        serial += 1;
        let life = life(s.kind, t, &mut rng);
        l.row(&card_no(carrier, serial), carrier, face, &s.name, per, t, life, &mut rng)?;
    }
    l.flush()?;
    if let Some(w) = l.parquet.take() {
        w.finish()?;
    }
    l.csv.flush()?;
    let mut sc = BufWriter::new(File::create(dir.join("sales.csv"))?);
    writeln!(sc, "shop,card_no,carrier,face_value,sale_price,sold_at,buyer,order_id")?;
    for (i, s) in sold.iter().enumerate() {
        writeln!(
            sc,
            "{},{},{},{},{:.2},{},{},O{:08}",
            s.shop,
            s.card,
            CARRIERS[s.carrier].1,
            s.face,
            s.price,
            fmt(s.at),
            s.buyer,
            i + 1
        )?;
    }
    sc.flush()?;
    let truth = cards_truth(seed, &sups);
    crate::outputs::write_atomic(&dir.join("truth.json"), |w| Ok(serde_json::to_writer_pretty(w, &truth)?))?;
    Ok(l.rows)
}

/// cards/truth.json: each supplier and shop labelled per rule, with the reason.
fn cards_truth(seed: u64, sups: &[Supplier]) -> serde_json::Value {
    let shops: Vec<serde_json::Value> =
        ["jd-cards", "tmall-recharge", "corner-store", "fee-shop", "任信数卡商城", "快充卡城"]
            .iter()
            .map(|s| {
                let above = matches!(*s, "任信数卡商城" | "快充卡城");
                let why = if above {
                    "sells at 108-112 per 100 to victims"
                } else if *s == "fee-shop" {
                    "100.5-101 per 100: a fee within the tolerance"
                } else {
                    "at or below face"
                };
                json!({"shop": s, "card-retail-above-face": above, "why": why})
            })
            .collect();
    let truth = json!({
        "seed": seed,
        "tz": "Asia/Shanghai",
        "suppliers": sups.iter().map(|s| {
            let (buyback, fast, why) = match s.kind {
                Kind::Wholesale => (false, false, "wholesale at the market, stocked; fast only at month turns"),
                Kind::Wholesale991 => (false, false, "99.1 per 100: below the usual range, above the floor"),
                Kind::DirectPartner => (false, false, "at the market; unstocked but waits 3-6 minutes"),
                Kind::Clearance => (true, false, "below the market (97.8-98.3) but stocked and slow"),
                Kind::InstantPartner => (false, true, "at the market but redeemed within a minute, unstocked"),
                Kind::Consignment { .. } => (true, true, "consignment firm: 97.5/98.2/98.6 or lower, redeemed within 2 minutes"),
            };
            json!({"supplier": s.name, "card-buyback-below-market": buyback, "card-fast-redemption": fast, "laundering": matches!(s.kind, Kind::Consignment { .. }), "why": why})
        }).collect::<Vec<_>>(),
        "shops": shops,
    });
    truth
}

/// Recruitment texts: `{qq}`, `{group}`, `{wx}` filled per sub-account.
const PITCHES: &[&str] = &[
    "【{sig}】新开旗舰商城，为提高销量急需兼职刷单人员，一任务一结，无需押金，详询QQ：{qq}",
    "【{sig}】招聘网络兼职，手机即可操作，日结200-500元，加Q群 {group} 领任务",
    "【{sig}】在家兼职刷信誉，佣金当天结算，动动手指日赚300，加微信 {wx}",
    "[{sig}] Part-time job from home: daily pay, commission per order, no deposit. Add QQ {qq}",
];

/// Legitimate texts: marketing, notices, and 兼职 in another sense.
const LEGIT: &[(&str, &[&str])] = &[
    (
        "jd_mkt",
        &["【京东】您关注的商品降价了，限时优惠，点击查看，回T退订", "【京东】双12大促开启，满299减50，回T退订"],
    ),
    (
        "icbc_ntc",
        &[
            "【工商银行】您尾号{n}的账户收到兼职劳务费800.00元，余额5230.12元。",
            "【工商银行】您尾号{n}的信用卡本期账单1280.00元，还款日12月20日。",
        ],
    ),
    (
        "univ_ntc",
        &["【XX大学】本周六上午召开兼职辅导员工作会议，请准时参加。", "【XX大学】兼职教师课酬已发放，请登录系统查询。"],
    ),
    (
        "hr_agency",
        &[
            "【安心人力】招聘仓库普工，月薪6000元，五险一金，详询400-800-1234",
            "【安心人力】招聘快递分拣员，包吃住，详询400-800-1234",
        ],
    ),
    ("telco_ntc", &["【中国移动】您的验证码为{n}，5分钟内有效。", "【中国移动】您本月话费余额不足10元，请及时充值。"]),
];

/// `sms/`: sms_log.csv, joins.csv, truth.json. `leads`: numbers also called in the CDRs.
pub fn write_sms(out: &Path, seed: u64, start: NaiveDate, days: u32, leads: &[String]) -> Result<u64> {
    let dir = out.join("sms");
    std::fs::create_dir_all(&dir)?;
    let mut rng = Rng::seed_from_u64(seed ^ 0x5A5);
    let start = start.and_hms_opt(8, 0, 0).expect("time");
    let span = 86_400 * i64::from(days.max(1)) - 14 * 3600;
    let mut log = BufWriter::new(File::create(dir.join("sms_log.csv"))?);
    let mut joins = BufWriter::new(File::create(dir.join("joins.csv"))?);
    writeln!(log, "平台,子账号,签名,接入号,手机号码,发送时间,短信内容")?;
    writeln!(joins, "group_id,member,joined_at,platform,inviter")?;
    let mut rows = 0u64;
    let mut truth = Vec::new();
    let mobile = |rng: &mut Rng| {
        format!("1{}{:09}", [3, 5, 7, 8, 9][rng.random_range(0..5)], rng.random_range(0..1_000_000_000u64))
    };
    // recruiters: (sub-account, signature, recipients)
    let recruiters: [(&str, &str, usize); 5] = [
        ("sh_tg_07", "优选商城", 400),
        ("gz_yx_12", "品质生活", 250),
        ("tg_0931", "乐购", 160),
        ("hz_tm_03", "Global Mall", 120),
        ("tiny_05", "小店", 30),
    ];
    for (k, (acct, sig, n)) in recruiters.iter().enumerate() {
        let qq = format!("{}", 2_850_000_000u64 + rng.random_range(0..9_999_999u64));
        let group = format!("{}", 700_000 + k * 1111);
        let wx = format!("shua_{}{:03}", ["dan", "xin", "hao"][k % 3], rng.random_range(0..999));
        let sender = format!("10690{:07}", rng.random_range(0..10_000_000));
        for i in 0..*n {
            // a third of the recruiters' numbers come from the crews' lead lists, when there are any
            let to = if !leads.is_empty() && i % 3 == 0 {
                leads[rng.random_range(0..leads.len())].clone()
            } else {
                mobile(&mut rng)
            };
            let text = PITCHES[(i + k) % PITCHES.len()]
                .replace("{sig}", sig)
                .replace("{qq}", &qq)
                .replace("{group}", &group)
                .replace("{wx}", &wx);
            let t = start + Duration::seconds(rng.random_range(0..span.max(3600)));
            writeln!(log, "xunda1069,{acct},【{sig}】,{sender},{to},{},\"{}\"", fmt(t), text.replace('"', "\"\""))?;
            rows += 1;
            if rng.random_bool(0.08) {
                let j = t + Duration::seconds(rng.random_range(300..86_400)) - Duration::hours(8);
                writeln!(joins, "{group},{to},{},qq,{qq}", j.format("%Y-%m-%dT%H:%M:%SZ"))?;
            }
        }
        let flagged = *n >= 50;
        truth.push(json!({"sub_account": acct, "sms-recruitment": flagged, "contacts": [format!("QQ:{qq}"), format!("QQ:{group}"), format!("WeChat:{wx}")], "why": if flagged { format!("recruitment texts to {n} numbers") } else { format!("recruitment texts to only {n} numbers (< 50)") }}));
    }
    for (acct, texts) in LEGIT {
        let sender = format!("10690{:07}", rng.random_range(0..10_000_000));
        for i in 0..300 {
            let text = texts[i % texts.len()].replace("{n}", &format!("{:04}", rng.random_range(0..10_000)));
            let t = start + Duration::seconds(rng.random_range(0..span.max(3600)));
            writeln!(log, "xunda1069,{acct},,{sender},{},{},\"{text}\"", mobile(&mut rng), fmt(t))?;
            rows += 1;
        }
        truth.push(json!({"sub_account": acct, "sms-recruitment": false, "why": "marketing or notices; 兼职 only in another sense"}));
    }
    log.flush()?;
    joins.flush()?;
    crate::outputs::write_atomic(&dir.join("truth.json"), |w| {
        Ok(serde_json::to_writer_pretty(w, &json!({"seed": seed, "sub_accounts": truth}))?)
    })?;
    Ok(rows)
}
