use super::{LedgerInput, LedgerRule, missing, party_finding, rows_json};
use crate::rules::{Metric, RuleDoc, RuleOutput, RulesConfig};
use anyhow::Result;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::LazyLock;

pub struct SmsRecruitment;

/// Terms of one category and what the category adds to a text's score (once, however many of
/// its terms the text has).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Vocab {
    pub weight: f64,
    pub terms: Vec<String>,
}

fn vocab(weight: f64, terms: &[&str]) -> Vocab {
    Vocab { weight, terms: terms.iter().map(|t| t.to_string()).collect() }
}

/// `[rules.sms_recruitment]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    /// A text scoring at least this is a recruitment text. Default 3.5.
    pub min_score: f64,
    /// Distinct recipients of a sub-account's recruitment texts. Default 50.
    pub min_recipients: u32,
    /// Share of its texts that are recruitment texts. Default 0.3.
    pub min_share: f64,
    /// A QQ or WeChat contact in the text adds this. Default 1.5.
    pub contact_weight: f64,
    /// Days after a text within which a recipient's joining a chat group counts. Default 7.
    pub join_window_days: u32,
    pub job: Vocab,
    pub pay: Vocab,
    pub easy: Vocab,
    /// Words of notices (codes, balances, bills): they take away.
    pub notice: Vocab,
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self {
            min_score: 3.5,
            min_recipients: 50,
            min_share: 0.3,
            contact_weight: 1.5,
            join_window_days: 7,
            job: vocab(
                2.0,
                &[
                    "兼职",
                    "刷单",
                    "刷信誉",
                    "刷销量",
                    "招聘",
                    "招募",
                    "急招",
                    "part-time",
                    "part time",
                    "hiring",
                    "order brushing",
                ],
            ),
            pay: vocab(
                1.5,
                &[
                    "日结",
                    "日薪",
                    "佣金",
                    "返现",
                    "提成",
                    "一单一结",
                    "一任务一结",
                    "当天结算",
                    "日赚",
                    "daily pay",
                    "commission",
                    "cash back",
                    "per order",
                ],
            ),
            easy: vocab(
                1.0,
                &[
                    "无需押金",
                    "无需经验",
                    "在家",
                    "手机即可",
                    "动动手指",
                    "时间自由",
                    "轻松",
                    "no deposit",
                    "from home",
                    "no experience",
                ],
            ),
            notice: vocab(
                -2.0,
                &["验证码", "余额", "账单", "尾号", "还款", "verification code", "balance", "statement"],
            ),
        }
    }
}

pub const TOML: &str = r#"[rules.sms_recruitment]
min_score = 3.5             # a text scoring this much is a recruitment text (each category once)
min_recipients = 50         # distinct recipients of a sub-account's recruitment texts
min_share = 0.3             # share of its texts that are recruitment texts
contact_weight = 1.5        # a QQ or WeChat contact in the text adds this
join_window_days = 7        # a recipient who joins a chat group within N days of a text counts

[rules.sms_recruitment.job]
weight = 2.0
terms = ["兼职", "刷单", "刷信誉", "刷销量", "招聘", "招募", "急招", "part-time", "part time", "hiring", "order brushing"]

[rules.sms_recruitment.pay]
weight = 1.5
terms = ["日结", "日薪", "佣金", "返现", "提成", "一单一结", "一任务一结", "当天结算", "日赚", "daily pay", "commission", "cash back", "per order"]

[rules.sms_recruitment.easy]
weight = 1.0
terms = ["无需押金", "无需经验", "在家", "手机即可", "动动手指", "时间自由", "轻松", "no deposit", "from home", "no experience"]

[rules.sms_recruitment.notice]
weight = -2.0
terms = ["验证码", "余额", "账单", "尾号", "还款", "verification code", "balance", "statement"]

"#;

const METRICS: &[Metric] = &[
    Metric { name: "messages", dtype: DataType::Int64, places: 0 },
    Metric { name: "recipients", dtype: DataType::Int64, places: 0 },
    Metric { name: "recruit_messages", dtype: DataType::Int64, places: 0 },
    Metric { name: "recruit_recipients", dtype: DataType::Int64, places: 0 },
    Metric { name: "recruit_share", dtype: DataType::Float64, places: 3 },
    Metric { name: "contacts", dtype: DataType::String, places: 0 },
];

const DOC: &str = "\
sms-recruitment: an SMS sub-account sending part-time \"order brushing\" job offers in bulk

## What it does
Scores every text of an SMS send log (cards --sms, scan --sms) on the whole text, by category:
a job (兼职, 刷单, 招聘, part-time: 2.0), pay (日结, 佣金, 返现, commission: 1.5), no effort
(无需押金, 在家, from home: 1.0), a QQ or WeChat contact (1.5), and the words of a notice (验证码,
余额, 账单: -2.0); each category counts once. A text scoring min_score (3.5) is a recruitment
text: one word (\"兼职\" in a payroll notice) is not enough. A sub-account whose recruitment texts
reach min_recipients (50) distinct recipients, min_share (0.3) of its texts, is a finding; score
0.5 plus half its recruitment share, plus 0.1 when its recipients also joined chat groups or
were called. Every vocabulary is in the config, in Chinese and English.

The QQ and WeChat contacts are taken out of the texts (QQ 12345678, 加微信 abc_123, VX: …) into
contacts.csv, each linked to the chat groups of the join log (--joins) whose id or inviter is
that contact, to the recipients who joined a group within join_window_days (7) of a text, and
(scan --sms) to the recipients the audited operators called: victims both texted and called.

## Why it matters
The seed's \"3·13\" case began with \"1069\" platform texts: \"新开旗舰商城，为提高销量急需兼职刷单
人员，一任务一结，无需押金\" and a QQ number. Forty-five SMS promotion firms were closed. A bank's
notice or a school's part-time tutoring note uses one of these words, not the whole pitch.

## Example
Sub-account sh_tg_07 (signature 【优选商城】, sender 10690123…) sent 2 400 recruitment texts to
2 400 numbers with QQ 2850012345; 37 of them joined group 1093 within a day: high.";

impl RuleDoc for SmsRecruitment {
    fn id(&self) -> &'static str {
        "sms-recruitment"
    }
    fn summary(&self) -> &'static str {
        "An SMS sub-account sending part-time job offers with a QQ/WeChat contact to many numbers"
    }
    fn explain(&self) -> &'static str {
        DOC
    }
    fn defaults(&self, cfg: &RulesConfig) -> String {
        let c = &cfg.sms_recruitment;
        format!(
            "min_score = {}, min_recipients = {}, min_share = {}, contact_weight = {}, join_window_days = {}, vocabulary: {} job, {} pay, {} easy, {} notice terms",
            c.min_score,
            c.min_recipients,
            c.min_share,
            c.contact_weight,
            c.join_window_days,
            c.job.terms.len(),
            c.pay.terms.len(),
            c.easy.terms.len(),
            c.notice.terms.len()
        )
    }
    fn metrics(&self) -> &'static [Metric] {
        METRICS
    }
    fn config_toml(&self) -> &'static str {
        TOML
    }
    fn validate(&self, cfg: &RulesConfig) -> Result<()> {
        let c = &cfg.sms_recruitment;
        anyhow::ensure!((0.0..=1.0).contains(&c.min_share), "rules.sms_recruitment: need 0 <= min_share <= 1");
        Ok(())
    }
}

static QQ: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"(?i)(?:qq群|q群|群号|qq|扣扣|企鹅|q)\s*(?:号码|号)?\s*[:：]?\s*([1-9]\d{4,10})").expect("regex")
});
static WECHAT: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(
        r"(?i)(?:微信|weixin|wechat|v信|薇信|威信|加v|vx|wx)\s*(?:号)?\s*[:：]?\s*(1[3-9]\d{9}|[a-z][-_a-z0-9]{5,19})",
    )
    .expect("regex")
});

/// The QQ and WeChat contacts in a text: `QQ:2850012345`, `WeChat:abc_123`, in order, once each.
pub fn contacts(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (re, kind) in [(&*QQ, "QQ"), (&*WECHAT, "WeChat")] {
        for c in re.captures_iter(text) {
            let v = format!("{kind}:{}", &c[1]);
            if !out.contains(&v) {
                out.push(v);
            }
        }
    }
    out
}

/// A text's score: each category whose terms it has adds its weight once; a contact adds
/// `contact_weight`.
pub fn score(text: &str, c: &SmsConfig) -> f64 {
    let lower = text.to_lowercase();
    let has = |v: &Vocab| v.terms.iter().any(|t| lower.contains(&t.to_lowercase()));
    let mut s = 0.0;
    for v in [&c.job, &c.pay, &c.easy, &c.notice] {
        if has(v) {
            s += v.weight;
        }
    }
    if !contacts(text).is_empty() {
        s += c.contact_weight;
    }
    s
}

/// Each distinct text once: its score and contacts (`;`-joined).
fn scored_texts(sms: &DataFrame, c: &SmsConfig) -> Result<DataFrame> {
    let texts = sms.column("text")?.unique()?;
    let t = texts.str()?;
    let (mut scores, mut cs) = (Vec::with_capacity(t.len()), Vec::with_capacity(t.len()));
    for v in t.iter() {
        let v = v.unwrap_or("");
        scores.push(score(v, c));
        cs.push(contacts(v).join(";"));
    }
    Ok(DataFrame::new(
        t.len(),
        vec![texts.clone(), Column::new("score".into(), scores), Column::new("contacts".into(), cs)],
    )?)
}

impl LedgerRule for SmsRecruitment {
    fn run(&self, input: &LedgerInput, cfg: &RulesConfig) -> Result<RuleOutput> {
        let Some(sms) = &input.sms else { return Ok(missing(self.id(), "SMS send log", "--sms FILE")) };
        let c = &cfg.sms_recruitment;
        let texts = scored_texts(sms, c)?;
        let lf = sms
            .clone()
            .lazy()
            .join(texts.lazy(), [col("text")], [col("text")], JoinArgs::new(JoinType::Left))
            .with_column(col("score").gt_eq(lit(c.min_score)).alias("recruit"));
        let recipient = coalesce(&[col("recipient_e164"), col("recipient")]);
        let per = lf
            .clone()
            .group_by([col("sub_account")])
            .agg([
                len().cast(DataType::Int64).alias("messages"),
                recipient.clone().n_unique().cast(DataType::Int64).alias("recipients"),
                col("recruit").sum().cast(DataType::Int64).alias("recruit_messages"),
                recipient.clone().filter(col("recruit")).n_unique().cast(DataType::Int64).alias("recruit_recipients"),
                col("contacts")
                    .filter(col("recruit").and(col("contacts").neq(lit(""))))
                    .unique()
                    .sort(Default::default())
                    .str()
                    .join(";", true)
                    .alias("contacts"),
                col("platform").drop_nulls().unique().sort(Default::default()).str().join(";", true).alias("platforms"),
                col("signature")
                    .drop_nulls()
                    .unique()
                    .sort(Default::default())
                    .str()
                    .join(";", true)
                    .alias("signatures"),
                col("sender").drop_nulls().unique().sort(Default::default()).str().join(";", true).alias("senders"),
                col("sent_at").filter(col("recruit")).min().alias("first"),
                col("sent_at").filter(col("recruit")).max().alias("last"),
            ])
            .with_column(
                (col("recruit_messages").cast(DataType::Float64) / col("messages").cast(DataType::Float64))
                    .alias("recruit_share"),
            )
            .sort(["sub_account"], Default::default())
            .collect()?;
        let metrics = per.select([
            "sub_account",
            "messages",
            "recipients",
            "recruit_messages",
            "recruit_recipients",
            "recruit_share",
            "contacts",
        ])?;
        let mut out = RuleOutput { operator_metrics: Some(metrics), ..Default::default() };
        let recruit = lf.filter(col("recruit")).collect()?;
        let links = crate::rules::cards::sms_links::links(&recruit, input, c)?;
        let hits = per
            .lazy()
            .filter(
                col("recruit_recipients")
                    .gt_eq(lit(c.min_recipients as i64))
                    .and(col("recruit_share").gt_eq(lit(c.min_share))),
            )
            .collect()?;
        out.tables.push(("contacts", links.contacts.clone()));
        if hits.height() == 0 {
            return Ok(out);
        }
        let flagged = recruit
            .clone()
            .lazy()
            .join(
                hits.clone().lazy().select([col("sub_account")]),
                [col("sub_account")],
                [col("sub_account")],
                JoinArgs::new(JoinType::Semi),
            )
            .select([
                col("sub_account"),
                col("sent_at"),
                col("platform"),
                col("signature"),
                col("sender"),
                col("recipient"),
                col("score"),
                col("contacts"),
                col("text"),
            ])
            .sort(["sub_account", "sent_at"], Default::default())
            .collect()?;
        for i in 0..hits.height() {
            out.findings.push(self.finding(&hits.slice(i as i64, 1), &flagged, &links, input)?);
        }
        out.tables.push(("sms_flagged", flagged));
        Ok(out)
    }
}

impl SmsRecruitment {
    /// One flagged sub-account's finding (`row`: its line of the per-account table).
    fn finding(
        &self,
        row: &DataFrame,
        flagged: &DataFrame,
        links: &crate::rules::cards::sms_links::Links,
        input: &LedgerInput,
    ) -> Result<crate::rules::Finding> {
        let name = row.column("sub_account")?.str()?.get(0).unwrap_or_default().to_string();
        let g = |c: &str| super::cell_f64(row, c);
        let s = |c: &str| super::cell_str(row, c);
        let share = g("recruit_share")?;
        let mine = flagged.clone().lazy().filter(col("sub_account").eq(lit(name.as_str()))).collect()?;
        let samples = mine.column("text")?.unique_stable()?.head(Some(5));
        let acc = links.by_account.get(&name).cloned().unwrap_or_default();
        let linked = acc.joined > 0 || acc.called > 0;
        let summary = format!(
            "SMS sub-account {name} sent {} recruitment texts to {} numbers ({:.0} % of its texts){}{}.",
            g("recruit_messages")? as i64,
            g("recruit_recipients")? as i64,
            share * 100.0,
            if s("contacts")?.is_empty() { String::new() } else { format!(" with contacts {}", s("contacts")?) },
            match (acc.joined, input.called.is_some()) {
                (j, true) => format!(
                    "; {j} recipients then joined chat groups, {} were called by the audited operators",
                    acc.called
                ),
                (0, false) => String::new(),
                (j, false) => format!("; {j} recipients then joined chat groups"),
            }
        );
        let evidence = json!({
            "party": "sms sub-account",
            "platforms": crate::frame::words(Some(&s("platforms")?)),
            "signatures": crate::frame::words(Some(&s("signatures")?)),
            "senders": crate::frame::words(Some(&s("senders")?)),
            "messages": g("messages")? as i64,
            "recruit_messages": g("recruit_messages")? as i64,
            "recruit_recipients": g("recruit_recipients")? as i64,
            "recruit_share": crate::frame::round(share, 3),
            "contacts": crate::frame::words(Some(&s("contacts")?)),
            "groups": acc.groups,
            "recipients_joined_groups": acc.joined,
            "recipients_called": acc.called,
            "calling_operators": acc.operators,
            "sample_texts": samples.str()?.iter().flatten().collect::<Vec<_>>(),
            "first_messages": rows_json(&mine.drop_many(["sub_account", "text"]), 20, input.tz)?,
        });
        let window = super::window(row)?;
        let bonus = if linked { 0.1 } else { 0.0 };
        Ok(party_finding(self.id(), &name, window, 0.5 + 0.5 * share + bonus, summary, evidence))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_taken_out_of_texts() {
        assert_eq!(contacts("急需兼职刷单人员，一任务一结，联系QQ：2850012345"), ["QQ:2850012345"]);
        assert_eq!(
            contacts("加微信 abc_1234 或 VX:shuadan88，Q群 778899"),
            ["QQ:778899", "WeChat:abc_1234", "WeChat:shuadan88"]
        );
        assert_eq!(contacts("Add WeChat: 13912345678 now"), ["WeChat:13912345678"]);
        assert!(contacts("您的验证码为 283911，5分钟内有效").is_empty());
    }

    #[test]
    fn the_whole_text_is_scored_not_one_word() {
        let c = SmsConfig::default();
        let pitch = "【优选商城】新开旗舰商城，为提高销量急需兼职刷单人员，一任务一结，无需押金，QQ 2850012345";
        assert!(score(pitch, &c) >= c.min_score);
        assert!(score("Part-time job: daily pay, commission per order, add WeChat brush_2026", &c) >= c.min_score);
        // 兼职 in another sense: a payroll notice, a school's note
        assert!(score("【工商银行】您尾号1234的账户收到兼职劳务费800元，余额5230元。", &c) < c.min_score);
        assert!(score("【XX大学】本周六召开兼职辅导员工作会议，请准时参加。", &c) < c.min_score);
        assert!(score("【京东】您的订单已发货，回T退订", &c) < c.min_score);
    }
}
