//! Input formats: detection from the first line, and how each format's columns become the
//! canonical raw fields (still text; [`super::normalize`] types them).

use super::legs::{CallModel, Exporter, LegCols};
use super::split::{QuoteMode, split_fields};
use crate::time::{DateOrder, parse_timestamp};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Not;

/// Input formats (`--format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Any CSV/TSV with a header row; columns matched by name and common aliases.
    Generic,
    /// Asterisk `cdr_csv` `Master.csv`: no header, 16 to 21 columns.
    Asterisk,
    /// FreeSWITCH `mod_cdr_csv` default/example templates: no header, 13 to 15 columns.
    Freeswitch,
    /// FreePBX CDR report CSV / `cdr` table dump, with header.
    Freepbx,
    /// Grandstream UCM CDR download, with header.
    Grandstream,
    /// VICIdial Export Calls Report or `vicidial_log` dump, with header (usually tab-separated).
    Vicidial,
    /// VICIdial's real-time monitoring log (`vicidial_rt_monitor_log`): a manager's LISTEN, BARGE,
    /// WHISPER or HIJACK session on an agent, one row a session.
    #[value(name = "vicidial-monitor")]
    #[serde(rename = "vicidial-monitor")]
    VicidialMonitor,
    /// Cisco CUCM CDR flat files (CDR and CMR records), 123 to 133 columns, header optional.
    Cucm,
    /// 3CX: the CDR service's CSV (header optional) or the Call History export.
    #[value(name = "3cx")]
    #[serde(rename = "3cx")]
    ThreeCx,
    /// Kamailio / OpenSIPS `acc`: the table (CSV/TSV) or syslog `ACC:` lines; INVITE and BYE paired.
    Kamailio,
    /// MySQL/MariaDB or PostgreSQL dump of a CDR table (`INSERT`, `COPY … FROM stdin`).
    Sql,
    /// Carrier 话单: a subscriber's calls (本机号码, 对方号码, 呼叫类型, …); no operator.
    Carrier,
    /// Apache Parquet, columns matched like `generic`.
    Parquet,
    /// Newline-delimited JSON, keys matched like `generic`.
    Ndjson,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Generic => "generic",
            Format::Asterisk => "asterisk",
            Format::Freeswitch => "freeswitch",
            Format::Freepbx => "freepbx",
            Format::Grandstream => "grandstream",
            Format::Vicidial => "vicidial",
            Format::VicidialMonitor => "vicidial-monitor",
            Format::Cucm => "cucm",
            Format::ThreeCx => "3cx",
            Format::Kamailio => "kamailio",
            Format::Sql => "sql",
            Format::Carrier => "carrier",
            Format::Parquet => "parquet",
            Format::Ndjson => "ndjson",
        }
    }
}

/// The `--format` values, as a list for messages.
pub fn format_names() -> String {
    use clap::ValueEnum;
    Format::value_variants().iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
}

/// One canonical raw field: its name and the header aliases that mean it (normalised with [`norm`]).
pub struct FieldSpec {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub required: bool,
}

/// What a file is loaded into: CDR calls, chat-group joins, or a card or SMS table of `cards`.
pub struct Target {
    pub what: &'static str,
    pub kind: Kind,
    pub fields: &'static [FieldSpec],
    /// Fields read as timestamps (UTC µs; naive ones in `--tz`); the first is the file's time range.
    pub times: &'static [&'static str],
    /// Why a row is rejected: the typing step's `reject_code` indexes this.
    pub reasons: &'static [&'static str],
}

/// Which table a [`Target`] is: the CDR call model and its formats apply to [`Kind::Cdr`] only;
/// the others are header tables matched by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Cdr,
    Joins,
    /// A recharge provider's card ledger (`cards`).
    Cards,
    /// A card shop's sales log (`cards --sales`).
    Sales,
    /// An SMS platform's send log (`--sms`).
    Sms,
}

macro_rules! f {
    ($name:literal, req, [$($a:literal),*]) => { FieldSpec { name: $name, aliases: &[$($a),*], required: true } };
    ($name:literal, [$($a:literal),*]) => { FieldSpec { name: $name, aliases: &[$($a),*], required: false } };
}

/// Canonical raw CDR fields, in order. Aliases include Chinese headers of domestic call-centre exports.
pub static CDR: Target = Target {
    what: "CDR",
    kind: Kind::Cdr,
    times: &["start_time", "answer_time", "end_time"],
    reasons: super::normalize::CDR_REASONS,
    fields: &[
        f!("leg_id", ["legid", "callid", "id", "uniqueid", "uuid", "calluuid", "通话id", "呼叫id", "话单id", "流水号"]),
        f!(
            "operator_id",
            req,
            [
                "operatorid",
                "operator",
                "agent",
                "agentid",
                "agentname",
                "user",
                "userid",
                "username",
                "seat",
                "seatid",
                "extension",
                "ext",
                "accountcode",
                "account",
                "sipaccount",
                "sipuser",
                "坐席",
                "座席",
                "坐席工号",
                "座席工号",
                "坐席号",
                "座席号",
                "工号",
                "话务员",
                "分机",
                "分机号"
            ]
        ),
        f!(
            "start_time",
            req,
            [
                "starttime",
                "start",
                "calldate",
                "startstamp",
                "begin",
                "begintime",
                "calldatetime",
                "calltimestamp",
                "开始时间",
                "呼叫时间",
                "拨打时间",
                "通话开始时间",
                "发起时间"
            ]
        ),
        f!(
            "answer_time",
            ["answertime", "answer", "answerstamp", "answeredat", "connecttime", "connectedat", "应答时间", "接通时间"]
        ),
        f!("end_time", ["endtime", "end", "endstamp", "hanguptime", "endedat", "结束时间", "挂机时间", "通话结束时间"]),
        f!(
            "duration_s",
            ["duration", "durationsec", "durations", "durationseconds", "totalsec", "calltime", "总时长", "呼叫时长"]
        ),
        f!(
            "talk_s",
            [
                "talks",
                "billsec",
                "talktime",
                "talksec",
                "talkduration",
                "talkseconds",
                "conversationtime",
                "通话时长",
                "计费时长",
                "通话秒数"
            ]
        ),
        f!(
            "caller_id",
            [
                "callerid",
                "cli",
                "caller",
                "src",
                "from",
                "callernumber",
                "calleridnumber",
                "ani",
                "displaynumber",
                "outboundcid",
                "outboundcnum",
                "主叫",
                "主叫号码",
                "外显号码",
                "显示号码",
                "来电显示"
            ]
        ),
        f!(
            "callee",
            [
                "callee",
                "dst",
                "destination",
                "to",
                "phonenumber",
                "called",
                "callednumber",
                "calleenumber",
                "dialednumber",
                "phonenumberdialed",
                "被叫",
                "被叫号码",
                "客户号码",
                "客户电话"
            ]
        ),
        f!(
            "src_ip",
            ["srcip", "ip", "sourceip", "loginip", "clientip", "computerip", "sipip", "登录ip", "ip地址", "源ip"]
        ),
        f!(
            "disposition",
            [
                "disposition",
                "status",
                "result",
                "hangupcause",
                "callresult",
                "dialstatus",
                "呼叫结果",
                "状态",
                "通话状态",
                "挂机原因"
            ]
        ),
        f!("campaign", ["campaign", "campaignid", "task", "outboundtask", "外呼任务", "任务", "任务名称"]),
        f!("cli_group", ["cligroup", "cidgroup", "calleridgroup", "主叫分组", "号码组"]),
        f!("trunk", ["trunk", "trunkname", "gateway", "destinationtrunkname", "中继", "线路", "网关"]),
        f!(
            "call_key",
            [
                "callkey",
                "linkedid",
                "session",
                "sessionid",
                "globalcallid",
                "globalcallidcallid",
                "callsessionid",
                "会话id"
            ]
        ),
        f!("sequence", ["sequence", "seq", "legsequence"]),
        f!("direction", ["direction", "calldirection", "calltype", "呼叫方向", "呼叫类型", "通话类型"]),
        f!(
            "monitored",
            ["monitored", "monitoredseat", "spiedon", "spyon", "listenedto", "被监听坐席", "监听对象", "监听坐席"]
        ),
    ],
};

/// Canonical raw chat-group join fields.
pub static JOINS: Target = Target {
    what: "join log",
    kind: Kind::Joins,
    times: &["joined_at"],
    reasons: super::normalize::JOIN_REASONS,
    fields: &[
        f!(
            "group_id",
            req,
            ["groupid", "group", "chatgroup", "groupname", "qqgroup", "群号", "群id", "群组", "群名称"]
        ),
        f!(
            "member",
            req,
            [
                "member",
                "phone",
                "phonenumber",
                "memberphone",
                "mobile",
                "msisdn",
                "number",
                "手机号",
                "手机号码",
                "成员",
                "号码",
                "成员手机"
            ]
        ),
        f!(
            "joined_at",
            req,
            ["joinedat", "jointime", "joined", "time", "timestamp", "入群时间", "加入时间", "加群时间"]
        ),
        f!("platform", ["platform", "app", "平台"]),
        f!("inviter", ["inviter", "invitedby", "邀请人"]),
    ],
};

/// Lower-case and drop everything but letters and digits (CJK kept): `Caller Number` → `callernumber`.
pub fn norm(h: &str) -> String {
    h.trim_start_matches('\u{feff}').chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// A record's leg: its direction code and seat ([`super::legs::classify`]).
pub type LegOf<'a> = (u32, Option<Cow<'a, str>>);

/// How one canonical field is read from a record.
#[derive(Clone, Debug, PartialEq)]
pub enum Src {
    Col(usize),
    /// The peer of a channel name: `SIP/1001-0000000a` → `1001`, `PJSIP/agent7-0000002a` → `agent7`.
    Peer(usize),
    /// The number inside a clid: `"Bob" <1001>` → `1001`; a bare number is itself.
    ClidNumber(usize),
    /// Two columns glued: VICIdial `phone_code` + `phone_number`.
    Concat(usize, usize),
    /// The first of these that is not empty.
    FirstOf(Vec<Src>),
    /// The internal seat of the leg ([`super::legs::classify`]).
    Seat(std::sync::Arc<LegCols>),
    /// The direction of the leg ([`super::legs::classify`]), as its word.
    Direction(std::sync::Arc<LegCols>),
    /// Epoch seconds where `0` means never (CUCM `dateTimeConnect`).
    Epoch(usize),
    /// CUCM's IPv4: a signed 32-bit integer in reversed byte order (`-1139627840` →
    /// `192.168.18.188`); a dotted or IPv6 text is itself.
    CiscoIp(usize),
    /// A date column and a time column; a time value that has its own date is itself.
    DateTime(usize, usize),
    /// A number without 3CX's `Ext.` prefix or a trailing name: `Ext.2001 Li Na` → `2001`.
    Number(usize),
    /// The sum of `HH:MM:SS` (or seconds) columns, in seconds (3CX Ringing + Talking).
    Seconds(Vec<usize>),
    /// A carrier record's direction from the subscriber's call type: placed is `outbound`.
    CarrierDirection(usize),
    /// A carrier record's calling (`calling`) or called party, from the subscriber's own number,
    /// the other party and the call type (主叫 / 被叫 / 呼转, 1 / 2 / 3, MOC / MTC).
    Party {
        own: usize,
        other: usize,
        kind: usize,
        calling: bool,
    },
    /// A value every row has (a VICIdial monitoring session is an internal, answered leg).
    Const(&'static str),
    /// The seat a monitoring leg listened to: the application column (`lastapp`, `last_app`) names
    /// a spy application and the data column (`lastdata`, `last_arg`) its target ([`spied_seat`]).
    Spy {
        app: usize,
        data: usize,
    },
}

/// Dialplan applications that listen in on another channel: Asterisk `ChanSpy`, `ExtenSpy`,
/// FreeSWITCH `eavesdrop`, and the barge applications of PBX distributions.
const SPY_APPS: [&str; 6] = ["chanspy", "extenspy", "eavesdrop", "barge", "chanbarge", "bargein"];

/// The seat a spy application's data names: `PJSIP/2005,qE` → `2005`, `SIP/2005` → `2005`,
/// `2005@from-internal,q` (ExtenSpy) → `2005`; a FreeSWITCH eavesdrop's channel uuid stays as it
/// is (resolved against the legs later); no target (spy on any channel, `all`) → `*`.
pub fn spied_seat(app: &str, data: &str) -> Option<String> {
    let a = app.trim();
    if !SPY_APPS.iter().any(|s| a.eq_ignore_ascii_case(s)) {
        return None;
    }
    let first = data.trim().split([',', '|']).next().unwrap_or("").trim();
    let no_tech = first.rsplit_once('/').map_or(first, |(_, r)| r);
    let seat = no_tech.split('@').next().unwrap_or("").trim();
    let seat = seat
        .split_once('-')
        .filter(|(s, r)| !s.is_empty() && r.len() == 8 && r.bytes().all(|b| b.is_ascii_hexdigit()))
        .map_or(seat, |(s, _)| s);
    Some(if seat.is_empty() || seat.eq_ignore_ascii_case("all") { "*".to_string() } else { seat.to_string() })
}

/// Values that mean "empty": CUCM's `\ `, SQL's `NULL` and PostgreSQL's `\N`.
pub fn is_null_token(t: &str) -> bool {
    match t.len() {
        1 => t == "\\",
        2 => t == "\\N",
        4 => t.eq_ignore_ascii_case("null"),
        _ => false,
    }
}

/// Whether a carrier call type says the subscriber placed the call (主叫, 1, MOC, 呼出).
pub fn subscriber_called(kind: &str) -> Option<bool> {
    let k = kind.trim();
    Some(match k {
        "主叫" | "1" | "01" | "呼出" | "拨出" | "去电" => true,
        "被叫" | "2" | "02" | "呼入" | "来电" | "呼转" | "3" | "03" | "前转" | "转接" => false,
        _ if k.eq_ignore_ascii_case("moc") || k.eq_ignore_ascii_case("outgoing") || k.eq_ignore_ascii_case("mo") => {
            true
        }
        _ if k.eq_ignore_ascii_case("mtc")
            || k.eq_ignore_ascii_case("incoming")
            || k.eq_ignore_ascii_case("mt")
            || k.eq_ignore_ascii_case("forwarded")
            || k.eq_ignore_ascii_case("cfw") =>
        {
            false
        }
        _ => return None,
    })
}

/// `-1139627840` → `192.168.18.188` (Cisco: the integer's bytes, least significant first).
pub fn cisco_ipv4(v: &str) -> Option<String> {
    let t = v.trim();
    if t.is_empty() || t == "0" {
        return None;
    }
    if t.contains(['.', ':']) {
        return Some(t.to_string());
    }
    let n: i64 = t.parse().ok()?;
    if !(i64::from(i32::MIN)..=i64::from(u32::MAX)).contains(&n) {
        return None;
    }
    let b = (n as u32).to_le_bytes();
    Some(format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3]))
}

/// `Ext.2001 Li Na` → `2001`; `+63 917 123 4567 (Maria)` → `+63 917 123 4567`; `2001` → `2001`.
pub fn bare_number(v: &str) -> Option<&str> {
    let t = v.trim();
    let t = t
        .strip_prefix("Ext.")
        .or_else(|| t.strip_prefix("ext."))
        .or_else(|| t.strip_prefix("EXT."))
        .map_or(t, str::trim_start);
    let end = t
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '*' | '#')))
        .map_or(t.len(), |(i, _)| i);
    let n = t[..end].trim();
    if n.bytes().any(|b| b.is_ascii_digit()) { Some(n) } else { (!t.is_empty()).then_some(t) }
}

impl Src {
    pub fn eval<'a>(&self, f: &[Cow<'a, str>]) -> Option<Cow<'a, str>> {
        let get = |i: usize| f.get(i).map(|s| trim(s)).filter(|s| !s.is_empty() && !is_null_token(s));
        match self {
            Src::Col(i) => f.get(*i).and_then(|s| {
                let t = trim(s);
                if t.is_empty() || is_null_token(t) {
                    None
                } else if t.len() == s.len() {
                    Some(s.clone())
                } else {
                    Some(Cow::Owned(t.to_string()))
                }
            }),
            Src::Peer(i) => get(*i).and_then(channel_peer).map(|s| Cow::Owned(s.to_string())),
            Src::ClidNumber(i) => get(*i).and_then(clid_number).map(|s| Cow::Owned(s.to_string())),
            Src::Concat(a, b) => match (get(*a), get(*b)) {
                (Some(x), Some(y)) => {
                    // VICIdial phone_code "86" + "138…": skip the code when the number already has it
                    if y.starts_with('+') || y.starts_with("00") || (y.starts_with(x) && y.len() > 11) {
                        Some(Cow::Owned(y.to_string()))
                    } else {
                        Some(Cow::Owned(format!("+{x}{y}")))
                    }
                }
                (None, Some(y)) => Some(Cow::Owned(y.to_string())),
                _ => None,
            },
            Src::FirstOf(v) => v.iter().find_map(|s| s.eval(f)),
            Src::Seat(_) | Src::Direction(_) => self.eval_leg(f, &mut None),
            Src::Epoch(i) => {
                get(*i).filter(|v| v.trim_start_matches('0').is_empty().not()).map(|v| Cow::Owned(v.to_string()))
            }
            Src::CiscoIp(i) => get(*i).and_then(cisco_ipv4).map(Cow::Owned),
            Src::DateTime(d, t) => match (get(*d), get(*t)) {
                (_, Some(t)) if t.contains(['-', '/', '.']) && t.len() > 10 => Some(Cow::Owned(t.to_string())),
                (Some(d), Some(t)) => Some(Cow::Owned(format!("{d} {t}"))),
                _ => None,
            },
            Src::Number(i) => get(*i).and_then(bare_number).map(|s| Cow::Owned(s.to_string())),
            Src::Const(v) => Some(Cow::Borrowed(*v)),
            Src::Seconds(cols) => {
                let v: Vec<i64> =
                    cols.iter().filter_map(|c| get(*c)).filter_map(super::normalize::parse_seconds).collect();
                (!v.is_empty()).then(|| Cow::Owned(v.iter().sum::<i64>().to_string()))
            }
            Src::CarrierDirection(k) => {
                let placed = subscriber_called(get(*k)?)?;
                Some(Cow::Borrowed(if placed { "outbound" } else { "inbound" }))
            }
            Src::Party { own, other, kind, calling } => {
                let placed = subscriber_called(get(*kind)?)?;
                let col = if placed == *calling { *own } else { *other };
                get(col).map(|s| Cow::Owned(s.to_string()))
            }
            Src::Spy { app, data } => spied_seat(get(*app)?, get(*data).unwrap_or("")).map(Cow::Owned),
        }
    }

    /// As [`eval`](Self::eval), with the record's leg classification kept in `leg`: a record's
    /// seat and direction come from one [`super::legs::classify`] (it was run for each of them,
    /// a third of splitting a 4.5 M-leg Asterisk export). `leg` must be cleared between records.
    pub fn eval_leg<'a>(&self, f: &[Cow<'a, str>], leg: &mut Option<LegOf<'a>>) -> Option<Cow<'a, str>> {
        match self {
            Src::Seat(c) => leg.get_or_insert_with(|| super::legs::classify(c, f)).1.clone(),
            Src::Direction(c) => {
                let d = leg.get_or_insert_with(|| super::legs::classify(c, f)).0;
                Some(Cow::Borrowed(super::legs::DIRECTIONS[d as usize]))
            }
            _ => self.eval(f),
        }
    }
}

/// `str::trim`, with a fast answer for the common field that starts and ends with a printable ASCII
/// byte (no whitespace to remove; the Unicode-aware trim was 2 % of a CSV scan).
fn trim(s: &str) -> &str {
    let b = s.as_bytes();
    let plain = |c: u8| c > b' ' && c < 0x7f;
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) if plain(f) && plain(l) => s,
        _ => s.trim(),
    }
}

/// `SIP/1001-0000000a` → `1001`; `Local/1001@from-internal-00000001;1` → `1001`; `PJSIP/agent7` → `agent7`.
pub fn channel_peer(ch: &str) -> Option<&str> {
    let rest = ch.split_once('/').map_or(ch, |(_, r)| r);
    let rest = rest.split(['@', ';']).next()?;
    let peer = match rest.rfind('-') {
        Some(p) if p > 0 && rest[p + 1..].chars().all(|c| c.is_ascii_hexdigit()) && rest.len() - p > 1 => &rest[..p],
        _ => rest,
    };
    (!peer.is_empty()).then_some(peer)
}

/// `"Bob" <1001>` → `1001`; `Bob <+44 20 7946 0000>` → `+44 20 7946 0000`; `1001` → `1001`.
pub fn clid_number(clid: &str) -> Option<&str> {
    if let (Some(a), Some(b)) = (clid.rfind('<'), clid.rfind('>'))
        && a < b
    {
        let n = clid[a + 1..b].trim();
        return (!n.is_empty()).then_some(n);
    }
    let t = clid.trim().trim_matches('"').trim();
    (!t.is_empty()).then_some(t)
}

/// The field layout of a file: per canonical field, its source (None = absent).
#[derive(Clone, Debug)]
pub struct Layout {
    pub sources: Vec<Option<Src>>,
    /// A record needs at least this many fields.
    pub min_fields: usize,
    /// A record has at most this many fields (None = no limit).
    pub max_fields: Option<usize>,
    /// The header line (1-based) when there is one.
    pub header_line: Option<u64>,
    /// Records of the file that are not calls, counted apart ([`Layout::not_a_call`]).
    pub rows: RowKinds,
}

/// Which records of a file are calls.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum RowKinds {
    #[default]
    All,
    /// CUCM `cdrRecordType` at this column: 1 is a call's record, 2 a CMR (call quality), 0 a start.
    Cucm(usize),
    /// A SIP method or record-type column: INVITE / CALL rows are calls; REGISTER, MESSAGE,
    /// OPTIONS and the like are not.
    Method(usize),
}

/// Why a record is not a call: counted under this reason, neither read nor rejected.
pub type NotACall = &'static str;

pub const TYPE_ROW: NotACall = "type row (column types under the header)";
pub const TOTALS_ROW: NotACall = "totals row";
pub const CMR_ROW: NotACall = "CMR record (call quality, not a call)";
pub const START_ROW: NotACall = "CUCM start record (the end record has the call)";
pub const NON_CALL_SIP: NotACall = "non-call SIP rows (REGISTER, MESSAGE, OPTIONS, …)";

/// SQL column types as CUCM writes them in the row under its header (`INTEGER,VARCHAR(50),…`).
fn is_type_word(f: &str) -> bool {
    let u = f.trim().trim_matches('"').to_ascii_uppercase();
    let base = u.split('(').next().unwrap_or("");
    [
        "INTEGER",
        "INT",
        "BIGINT",
        "SMALLINT",
        "TINYINT",
        "VARCHAR",
        "NVARCHAR",
        "CHAR",
        "TEXT",
        "UNIQUEIDENTIFIER",
        "DATETIME",
        "TIMESTAMP",
        "DATE",
        "TIME",
        "BOOLEAN",
        "DECIMAL",
        "NUMERIC",
        "FLOAT",
        "DOUBLE",
        "STRING",
    ]
    .contains(&base)
}

impl Layout {
    /// Why record `n` (1-based line) with these fields is not a call, if it is not.
    pub fn not_a_call(&self, n: u64, fields: &[Cow<str>]) -> Option<NotACall> {
        if let Some(h) = self.header_line
            && n <= h + 2
            && fields.len() > 1
            && fields.iter().all(|f| is_type_word(f))
        {
            return Some(TYPE_ROW);
        }
        if let Some(first) = fields.iter().map(|f| f.trim()).find(|f| !f.is_empty())
            && matches!(first.as_bytes().first(), Some(b'T' | b't' | 0xe5 | 0xe6))
            && ["totals", "total", "合计", "总计"].iter().any(|t| first.eq_ignore_ascii_case(t))
            && self.header_line.is_some()
        {
            return Some(TOTALS_ROW);
        }
        match self.rows {
            RowKinds::All => None,
            RowKinds::Cucm(i) => match fields.get(i).map(|f| f.trim()) {
                Some("2") => Some(CMR_ROW),
                Some("0") => Some(START_ROW),
                _ => None,
            },
            RowKinds::Method(i) => {
                let m = fields.get(i).map_or("", |f| f.trim());
                let call = m.is_empty()
                    || ["invite", "call", "bye", "ack", "cancel", "呼叫", "通话"]
                        .iter()
                        .any(|c| m.eq_ignore_ascii_case(c));
                (!call).then_some(NON_CALL_SIP)
            }
        }
    }

    /// Read the named canonical fields as missing (the record width checks are unchanged).
    pub fn skip(&mut self, target: &Target, fields: &[&str]) {
        for (src, f) in self.sources.iter_mut().zip(target.fields) {
            if fields.contains(&f.name) {
                *src = None;
            }
        }
    }

    pub fn expects(&self, n: usize) -> bool {
        n >= self.min_fields && self.max_fields.is_none_or(|m| n <= m)
    }
}

/// Problems that stop a file from loading at all.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error(
        "missing required {what} column(s) {missing:?}; columns found: {found:?}; accepted names for them: {expected}"
    )]
    MissingColumns { what: &'static str, missing: Vec<&'static str>, found: Vec<String>, expected: String },
    #[error(
        "cannot tell the format: the first line has {fields} fields and no recognised header; nearest: {near} (name one with --format: {})",
        format_names()
    )]
    Unrecognised { fields: usize, near: String },
    #[error(
        "cannot tell the format: the header fits {candidates} as well; name it with --format {pick} (or the other)"
    )]
    Ambiguous { candidates: String, pick: &'static str },
}

fn find(hdr: &[String], names: &[&str]) -> Option<usize> {
    names.iter().find_map(|n| hdr.iter().position(|h| h == n))
}

/// Map a header to sources: `[columns]` overrides first, then the format's own columns, then aliases.
pub fn header_layout(
    format: Format,
    header: &[String],
    target: &Target,
    overrides: &BTreeMap<String, String>,
    header_line: u64,
    model: &std::sync::Arc<CallModel>,
) -> Result<Layout, LayoutError> {
    let hdr: Vec<String> = header.iter().map(|h| norm(h)).collect();
    let mut sources: Vec<Option<Src>> = vec![None; target.fields.len()];
    let idx = |name: &str| target.fields.iter().position(|f| f.name == name);
    let mut rows = RowKinds::All;
    if target.kind == Kind::Cdr {
        exporter_sources(format, &hdr, &mut sources, model);
        rows = switch_sources(format, &hdr, &mut sources, model);
        layout_quirks(format, &hdr, &mut sources, &mut rows);
    }
    // Generic aliases fill whatever the format did not set.
    for (i, f) in target.fields.iter().enumerate() {
        if sources[i].is_none() {
            let own = norm(f.name);
            if let Some(p) = hdr.iter().position(|h| *h == own) {
                sources[i] = Some(Src::Col(p));
            } else if let Some(p) = find(&hdr, f.aliases) {
                sources[i] = Some(Src::Col(p));
            }
        }
    }
    // Explicit `[columns]` mappings win.
    for (from, to) in overrides {
        if let (Some(p), Some(i)) = (hdr.iter().position(|h| *h == norm(from)), idx(to)) {
            sources[i] = Some(Src::Col(p));
        }
    }
    let missing: Vec<&'static str> = target
        .fields
        .iter()
        .zip(&sources)
        .filter(|(f, s)| f.required && s.is_none())
        .filter(|(f, _)| !(format == Format::Carrier && f.name == "operator_id"))
        .map(|(f, _)| f.name)
        .collect();
    if !missing.is_empty() {
        let expected = target
            .fields
            .iter()
            .filter(|f| f.required)
            .map(|f| format!("{} ({})", f.name, f.aliases.join("|")))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(LayoutError::MissingColumns { what: target.what, missing, found: header.to_vec(), expected });
    }
    Ok(Layout {
        sources,
        min_fields: header.len(),
        max_fields: Some(header.len()),
        header_line: Some(header_line),
        rows,
    })
}

/// The columns an exporter documents, mapped to canonical CDR fields (the rest are matched by
/// their generic aliases).
fn exporter_sources(format: Format, hdr: &[String], sources: &mut [Option<Src>], model: &std::sync::Arc<CallModel>) {
    let h = |names: &[&str]| find(hdr, names);
    let col = |names: &[&str]| h(names).map(Src::Col);
    match format {
        Format::Freepbx => {
            set_legs(
                sources,
                model,
                LegCols {
                    exporter: Exporter::Asterisk,
                    account: h(&["accountcode"]),
                    src: h(&["src"]),
                    dst: h(&["dst"]),
                    context: h(&["dcontext"]),
                    channel: h(&["channel"]),
                    dstchannel: h(&["dstchannel"]),
                    lastapp: h(&["lastapp"]),
                    peeraccount: h(&["peeraccount"]),
                    ..Default::default()
                },
            );
            set_field(sources, "leg_id", vec![col(&["uniqueid"])]);
            set_field(sources, "call_key", vec![col(&["linkedid"]), col(&["uniqueid"])]);
            set_field(sources, "sequence", vec![col(&["sequence"])]);
            set_field(sources, "start_time", vec![col(&["calldate"])]);
            set_field(sources, "duration_s", vec![col(&["duration"])]);
            set_field(sources, "talk_s", vec![col(&["billsec"])]);
            set_field(
                sources,
                "caller_id",
                vec![col(&["outboundcnum"]), h(&["clid"]).map(Src::ClidNumber), col(&["src"])],
            );
            set_field(sources, "callee", vec![col(&["dst"])]);
            set_field(sources, "disposition", vec![col(&["disposition"])]);
            set_field(sources, "trunk", vec![h(&["dstchannel"]).map(Src::Peer)]);
            set_spy(sources, hdr);
        }
        Format::Grandstream => {
            set_legs(
                sources,
                model,
                LegCols {
                    exporter: Exporter::Asterisk,
                    account: h(&["accountcode"]),
                    src: h(&["callernumber", "src"]),
                    dst: h(&["calleenumber", "dst"]),
                    context: h(&["context", "dcontext"]),
                    channel: h(&["sourcechannel", "channel"]),
                    dstchannel: h(&["destchannel", "dstchannel"]),
                    lastapp: h(&["lastapp"]),
                    chan_ext: h(&["sourcechannelextension", "channelext", "chanext"]),
                    dst_ext: h(&["destchannelextension", "dstchannelext", "dstchanext"]),
                    answered_by: h(&["answeredby", "dstanswer"]),
                    action_type: h(&["actiontype"]),
                    src_trunk: h(&["sourcetrunkname", "srctrunkname"]),
                    dst_trunk: h(&["destinationtrunkname", "desttrunkname", "dsttrunkname"]),
                    ..Default::default()
                },
            );
            set_field(sources, "leg_id", vec![col(&["uniqueid"])]);
            set_field(sources, "call_key", vec![col(&["session"]), col(&["uniqueid"])]);
            set_field(sources, "start_time", vec![col(&["starttime"])]);
            set_field(sources, "answer_time", vec![col(&["answertime"])]);
            set_field(sources, "end_time", vec![col(&["endtime"])]);
            set_field(sources, "duration_s", vec![col(&["calltime"])]);
            set_field(sources, "talk_s", vec![col(&["talktime"])]);
            set_field(
                sources,
                "caller_id",
                vec![h(&["calleridnumber", "callerid"]).map(Src::ClidNumber), col(&["callernumber"])],
            );
            set_field(sources, "callee", vec![col(&["calleenumber"])]);
            set_field(sources, "disposition", vec![col(&["disposition"])]);
            set_field(sources, "trunk", vec![col(&["destinationtrunkname"]), col(&["sourcetrunkname"])]);
        }
        Format::Vicidial => {
            set_legs(
                sources,
                model,
                LegCols { exporter: Exporter::Vicidial, account: h(&["user"]), ..Default::default() },
            );
            set_field(sources, "leg_id", vec![col(&["uniqueid"])]);
            set_field(sources, "start_time", vec![col(&["startepoch"]), col(&["calldate"])]);
            set_field(sources, "end_time", vec![col(&["endepoch"])]);
            set_field(sources, "talk_s", vec![col(&["talksec"]), col(&["lengthinsec"])]);
            let code = h(&["phonecode"]);
            let num = h(&["phonenumber"]);
            let callee = match (code, num) {
                (Some(c), Some(n)) => Some(Src::Concat(c, n)),
                (None, Some(n)) => Some(Src::Col(n)),
                _ => None,
            };
            set_field(sources, "callee", vec![col(&["phonenumberdialed"]), callee]);
            set_field(sources, "caller_id", vec![col(&["outboundcid", "callerid"])]);
            set_field(sources, "src_ip", vec![col(&["computerip"])]);
            set_field(sources, "campaign", vec![col(&["campaignid"])]);
        }
        Format::VicidialMonitor => {
            // the manager listened (its seat is the session's operator) to the agent (`monitored`);
            // VICIdial rings the manager's phone into the agent's conference: that is the number
            // dialled, and the leg is internal and answered
            set_field(sources, "operator_id", vec![col(&["manageruser"])]);
            set_field(sources, "monitored", vec![col(&["agentuser"])]);
            set_field(sources, "leg_id", vec![col(&["callercode"])]);
            set_field(sources, "start_time", vec![col(&["monitorstarttime"])]);
            set_field(sources, "end_time", vec![col(&["monitorendtime"])]);
            set_field(sources, "talk_s", vec![col(&["monitorsec"])]);
            set_field(sources, "duration_s", vec![col(&["monitorsec"])]);
            set_field(sources, "callee", vec![col(&["managerphone"])]);
            set_field(sources, "src_ip", vec![col(&["managerip"])]);
            set_field(sources, "campaign", vec![col(&["campaignid"])]);
            set_field(sources, "direction", vec![Some(Src::Const("internal"))]);
            set_field(sources, "disposition", vec![Some(Src::Const("ANSWERED"))]);
            set_field(sources, "cli_group", vec![col(&["cidgroup", "cidgroupid"])]);
            set_field(sources, "disposition", vec![col(&["status"])]);
        }
        _ => {}
    }
}

/// The seat and direction of each leg from an exporter's columns ([`super::legs::classify`]).
/// `monitored` from an application column and its data, when the header has both.
fn set_spy(sources: &mut [Option<Src>], hdr: &[String]) {
    let app = find(hdr, &["lastapp", "lastapplication", "application"]);
    let data = find(hdr, &["lastdata", "lastarg", "lastapplicationdata", "applicationdata"]);
    if let (Some(app), Some(data)) = (app, data) {
        set_field(sources, "monitored", vec![Some(Src::Spy { app, data })]);
    }
}

fn set_legs(sources: &mut [Option<Src>], model: &std::sync::Arc<CallModel>, cols: LegCols) {
    let c = std::sync::Arc::new(LegCols { model: model.clone(), ..cols });
    set_field(sources, "operator_id", vec![Some(Src::Seat(c.clone()))]);
    set_field(sources, "direction", vec![Some(Src::Direction(c))]);
}

/// Set `field` to the first of `src` that the header has (several: the first non-empty per row).
fn set_field(sources: &mut [Option<Src>], field: &str, src: Vec<Option<Src>>) {
    let v: Vec<Src> = src.into_iter().flatten().collect();
    if let Some(i) = CDR.fields.iter().position(|f| f.name == field) {
        sources[i] = match v.len() {
            0 => None,
            1 => v.into_iter().next(),
            _ => Some(Src::FirstOf(v)),
        };
    }
}

/// The columns of the switches added with issue 23 (CUCM, 3CX, SIP accounting, carrier 话单),
/// and which of their records are calls.
fn switch_sources(
    format: Format,
    hdr: &[String],
    sources: &mut [Option<Src>],
    model: &std::sync::Arc<CallModel>,
) -> RowKinds {
    let h = |names: &[&str]| find(hdr, names);
    let col = |names: &[&str]| h(names).map(Src::Col);
    match format {
        Format::Cucm => {
            set_legs(
                sources,
                model,
                LegCols {
                    exporter: Exporter::Cucm,
                    src: h(&["callingpartynumber"]),
                    dst: h(&["finalcalledpartynumber"]),
                    channel: h(&["origdevicename"]),
                    dstchannel: h(&["destdevicename"]),
                    ..Default::default()
                },
            );
            set_field(sources, "leg_id", vec![col(&["pkid"])]);
            set_field(sources, "call_key", vec![col(&["globalcallidcallid"])]);
            set_field(sources, "start_time", vec![h(&["datetimeorigination"]).map(Src::Epoch)]);
            set_field(sources, "answer_time", vec![h(&["datetimeconnect"]).map(Src::Epoch)]);
            set_field(sources, "end_time", vec![h(&["datetimedisconnect"]).map(Src::Epoch)]);
            set_field(sources, "talk_s", vec![col(&["duration"])]);
            set_field(sources, "caller_id", vec![col(&["outpulsedcallingpartynumber"]), col(&["callingpartynumber"])]);
            set_field(sources, "callee", vec![col(&["outpulsedcalledpartynumber"]), col(&["finalcalledpartynumber"])]);
            set_field(
                sources,
                "src_ip",
                vec![h(&["origipv4v6addr"]).map(Src::CiscoIp), h(&["origipaddr"]).map(Src::CiscoIp)],
            );
            set_field(sources, "disposition", vec![]);
            // an outbound call's destination device is the gateway or trunk it left by
            set_field(sources, "trunk", vec![col(&["destdevicename"])]);
            h(&["cdrrecordtype"]).map_or(RowKinds::All, RowKinds::Cucm)
        }
        Format::ThreeCx if h(&["historyid", "fromtype"]).is_some() => {
            set_legs(
                sources,
                model,
                LegCols {
                    exporter: Exporter::ThreeCx,
                    src: h(&["fromdn"]),
                    dst: h(&["todn"]),
                    src_kind: h(&["fromtype"]),
                    dst_kind: h(&["totype"]),
                    final_dst: h(&["finaldn"]),
                    final_kind: h(&["finaltype"]),
                    ..Default::default()
                },
            );
            set_field(sources, "leg_id", vec![col(&["historyid"])]);
            set_field(sources, "call_key", vec![col(&["callid"])]);
            set_field(sources, "start_time", vec![col(&["timestart"])]);
            set_field(sources, "answer_time", vec![col(&["timeanswered"])]);
            set_field(sources, "end_time", vec![col(&["timeend"])]);
            set_field(sources, "duration_s", vec![]);
            set_field(sources, "caller_id", vec![h(&["fromno"]).map(Src::Number)]);
            set_field(sources, "callee", vec![h(&["tono"]).map(Src::Number), col(&["dialno"])]);
            set_field(sources, "disposition", vec![col(&["reasonterminated"])]);
            // the line's display name is the trunk an outbound call left by
            set_field(sources, "trunk", vec![col(&["todispname"])]);
            RowKinds::All
        }
        Format::ThreeCx => {
            set_legs(
                sources,
                model,
                LegCols {
                    exporter: Exporter::ThreeCxHistory,
                    src: h(&["callerid", "from"]),
                    dst: h(&["destination", "to"]),
                    ..Default::default()
                },
            );
            set_field(sources, "start_time", vec![col(&["calltime", "starttime", "date"])]);
            set_field(sources, "talk_s", vec![col(&["talking"])]);
            let parts: Vec<usize> = [h(&["ringing"]), h(&["talking"])].into_iter().flatten().collect();
            set_field(sources, "duration_s", vec![(!parts.is_empty()).then_some(Src::Seconds(parts))]);
            set_field(sources, "caller_id", vec![h(&["callerid", "from"]).map(Src::Number)]);
            set_field(sources, "callee", vec![h(&["destination", "to"]).map(Src::Number)]);
            set_field(sources, "disposition", vec![col(&["status"])]);
            RowKinds::All
        }
        Format::Kamailio => sip_sources(hdr, sources, model),
        Format::Carrier => carrier_sources(hdr, sources),
        _ => RowKinds::All,
    }
}

/// Kamailio / OpenSIPS accounting: paired transactions ([`super::records::PAIRED`]), OpenSIPS' CDR
/// mode or the acc module's dialog CDRs (`cdrs`).
fn sip_sources(hdr: &[String], sources: &mut [Option<Src>], model: &std::sync::Arc<CallModel>) -> RowKinds {
    let h = |names: &[&str]| find(hdr, names);
    let col = |names: &[&str]| h(names).map(Src::Col);
    set_legs(
        sources,
        model,
        LegCols {
            exporter: Exporter::Sip,
            account: h(&["authuser", "acctuser", "username"]),
            src: h(&["srcuser", "fromuser", "srcusername"]),
            // the request user is whom the call reached (a queue's agent); the To user is
            // the number dialled (the callee)
            dst: h(&["dstuser", "ruser", "dstouser", "touser", "dstusername", "dstousername"]),
            ..Default::default()
        },
    );
    set_field(sources, "leg_id", vec![col(&["callid", "sipcallid"])]);
    set_field(sources, "call_key", vec![col(&["callid", "sipcallid"])]);
    set_field(sources, "caller_id", vec![col(&["srcuser", "fromuser", "srcusername"])]);
    set_field(sources, "callee", vec![col(&["dstouser", "dstuser", "touser", "ruser", "dstousername", "dstusername"])]);
    // a dialog CDR starts at the answer (the dialog's confirmation) and lasts `duration`
    if let Some(t) = h(&["callstarttime"]) {
        set_field(sources, "start_time", vec![Some(Src::Col(t))]);
        set_field(sources, "answer_time", vec![Some(Src::Col(t))]);
        set_field(sources, "talk_s", vec![col(&["duration"])]);
        set_field(sources, "duration_s", vec![]);
    }
    set_field(sources, "src_ip", vec![col(&["srcip"])]);
    // an outbound request's domain is the gateway it was routed to
    set_field(sources, "trunk", vec![col(&["dstdomain"])]);
    RowKinds::All
}

/// Carrier 话单: the subscriber's own number, the other party and who called whom. No operator.
fn carrier_sources(hdr: &[String], sources: &mut [Option<Src>]) -> RowKinds {
    let h = |names: &[&str]| find(hdr, names);
    let col = |names: &[&str]| h(names).map(Src::Col);
    let own = h(&[
        "本机号码",
        "本端号码",
        "用户号码",
        "计费号码",
        "机主号码",
        "查询号码",
        "msisdn",
        "ownnumber",
        "servednumber",
        "subscriber",
    ]);
    let other = h(&["对方号码", "对端号码", "对方号", "othernumber", "otherparty", "partynumber", "peernumber"]);
    let kind = h(&["呼叫类型", "主被叫", "主被叫标识", "主被叫类型", "话单类型", "calltype", "callkind", "direction"]);
    set_field(sources, "operator_id", vec![]);
    if let (Some(own), Some(other), Some(kind)) = (own, other, kind) {
        set_field(sources, "caller_id", vec![Some(Src::Party { own, other, kind, calling: true })]);
        set_field(sources, "callee", vec![Some(Src::Party { own, other, kind, calling: false })]);
        set_field(sources, "direction", vec![Some(Src::CarrierDirection(kind))]);
    }
    set_field(
        sources,
        "start_time",
        vec![col(&["开始时间", "通话开始时间", "起始时间", "通话起始时间", "呼叫时间", "starttime", "begintime"])],
    );
    set_field(sources, "end_time", vec![col(&["结束时间", "通话结束时间", "endtime"])]);
    // `通话时长(秒)` is `通话时长秒` once punctuation is dropped
    set_field(
        sources,
        "talk_s",
        vec![col(&["通话时长", "通话时长秒", "时长", "时长秒", "通话秒数", "duration", "talktime"])],
    );
    set_field(sources, "leg_id", vec![col(&["话单id", "流水号", "recordid", "id"])]);
    RowKinds::All
}

/// Quirks of any header layout: a date and a time in columns of their own, a record-type or SIP
/// method column whose non-call rows are counted apart.
fn layout_quirks(format: Format, hdr: &[String], sources: &mut [Option<Src>], rows: &mut RowKinds) {
    let idx = |name: &str| CDR.fields.iter().position(|f| f.name == name).expect("a CDR field");
    let date = find(hdr, &["date", "日期", "通话日期", "呼叫日期", "calldateonly"]);
    if let Some(d) = date {
        let time = find(hdr, &["time", "时间", "starttime", "开始时间", "calltime", "起始时间"]);
        let (s, e) = (idx("start_time"), idx("end_time"));
        match (&sources[s], time) {
            (None, Some(t)) => sources[s] = Some(Src::DateTime(d, t)),
            (Some(Src::Col(t)), _) if *t != d => sources[s] = Some(Src::DateTime(d, *t)),
            _ => {}
        }
        if let Some(Src::Col(t)) = sources[e] {
            sources[e] = Some(Src::DateTime(d, t));
        }
    }
    if sources[idx("monitored")].is_none() {
        set_spy(sources, hdr);
    }
    if matches!(format, Format::Generic | Format::Grandstream | Format::Freepbx)
        && let Some(m) = find(hdr, &["method", "sipmethod", "recordtype", "eventtype", "requestmethod", "记录类型"])
    {
        *rows = RowKinds::Method(m);
    }
}

/// CUCM CDR columns in file order: release 11.x writes the first 129, 12.5 and later 133; older
/// releases fewer. Every column this tool reads is among the first 82, so a header-less file of
/// any of these widths is read by position.
pub const CUCM_COLUMNS: [&str; 133] = [
    "cdrRecordType",
    "globalCallID_callManagerId",
    "globalCallID_callId",
    "origLegCallIdentifier",
    "dateTimeOrigination",
    "origNodeId",
    "origSpan",
    "origIpAddr",
    "callingPartyNumber",
    "callingPartyUnicodeLoginUserID",
    "origCause_location",
    "origCause_value",
    "origPrecedenceLevel",
    "origMediaTransportAddress_IP",
    "origMediaTransportAddress_Port",
    "origMediaCap_payloadCapability",
    "origMediaCap_maxFramesPerPacket",
    "origMediaCap_g723BitRate",
    "origVideoCap_Codec",
    "origVideoCap_Bandwidth",
    "origVideoCap_Resolution",
    "origVideoTransportAddress_IP",
    "origVideoTransportAddress_Port",
    "origRSVPAudioStat",
    "origRSVPVideoStat",
    "destLegCallIdentifier",
    "destNodeId",
    "destSpan",
    "destIpAddr",
    "originalCalledPartyNumber",
    "finalCalledPartyNumber",
    "finalCalledPartyUnicodeLoginUserID",
    "destCause_location",
    "destCause_value",
    "destPrecedenceLevel",
    "destMediaTransportAddress_IP",
    "destMediaTransportAddress_Port",
    "destMediaCap_payloadCapability",
    "destMediaCap_maxFramesPerPacket",
    "destMediaCap_g723BitRate",
    "destVideoCap_Codec",
    "destVideoCap_Bandwidth",
    "destVideoCap_Resolution",
    "destVideoTransportAddress_IP",
    "destVideoTransportAddress_Port",
    "destRSVPAudioStat",
    "destRSVPVideoStat",
    "dateTimeConnect",
    "dateTimeDisconnect",
    "lastRedirectDn",
    "pkid",
    "originalCalledPartyNumberPartition",
    "callingPartyNumberPartition",
    "finalCalledPartyNumberPartition",
    "lastRedirectDnPartition",
    "duration",
    "origDeviceName",
    "destDeviceName",
    "origCallTerminationOnBehalfOf",
    "destCallTerminationOnBehalfOf",
    "origCalledPartyRedirectOnBehalfOf",
    "lastRedirectRedirectOnBehalfOf",
    "origCalledPartyRedirectReason",
    "lastRedirectRedirectReason",
    "destConversationID",
    "globalCallId_ClusterId",
    "joinOnBehalfOf",
    "Comment",
    "authCodeDescription",
    "authorizationLevel",
    "clientMatterCode",
    "origDTMFMethod",
    "destDTMFMethod",
    "callSecuredStatus",
    "origConversationID",
    "origMediaCap_Bandwidth",
    "destMediaCap_Bandwidth",
    "authorizationCodeValue",
    "outpulsedCallingPartyNumber",
    "outpulsedCalledPartyNumber",
    "origIpv4v6Addr",
    "destIpv4v6Addr",
    "origVideoCap_Codec_Channel2",
    "origVideoCap_Bandwidth_Channel2",
    "origVideoCap_Resolution_Channel2",
    "origVideoTransportAddress_IP_Channel2",
    "origVideoTransportAddress_Port_Channel2",
    "origVideoChannel_Role_Channel2",
    "destVideoCap_Codec_Channel2",
    "destVideoCap_Bandwidth_Channel2",
    "destVideoCap_Resolution_Channel2",
    "destVideoTransportAddress_IP_Channel2",
    "destVideoTransportAddress_Port_Channel2",
    "destVideoChannel_Role_Channel2",
    "IncomingProtocolID",
    "IncomingProtocolCallRef",
    "OutgoingProtocolID",
    "OutgoingProtocolCallRef",
    "currentRoutingReason",
    "origRoutingReason",
    "lastRedirectingRoutingReason",
    "huntPilotDN",
    "huntPilotPartition",
    "calledPartyPatternUsage",
    "wasCallQueued",
    "totalWaitTimeInQueue",
    "callingPartyNumber_uri",
    "originalCalledPartyNumber_uri",
    "finalCalledPartyNumber_uri",
    "lastRedirectDn_uri",
    "incomingICID",
    "incomingOrigIOI",
    "incomingTermIOI",
    "outgoingICID",
    "outgoingOrigIOI",
    "outgoingTermIOI",
    "outpulsedOriginalCalledPartyNumber",
    "outpulsedLastRedirectingNumber",
    "mobileCallingPartyNumber",
    "finalMobileCalledPartyNumber",
    "origMobileDeviceName",
    "destMobileDeviceName",
    "origMobileCallDuration",
    "destMobileCallDuration",
    "mobileCallType",
    "originalCalledPartyPattern",
    "finalCalledPartyPattern",
    "lastRedirectingPartyPattern",
    "huntPilotPattern",
    "origDeviceType",
    "destDeviceType",
    "origDeviceSessionID",
    "destDeviceSessionID",
];

/// FreePBX's `asteriskcdrdb.cdr` table columns in order (a table saved without its header).
pub const FREEPBX_COLUMNS: [&str; 26] = [
    "calldate",
    "clid",
    "src",
    "dst",
    "dcontext",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "accountcode",
    "uniqueid",
    "userfield",
    "did",
    "recordingfile",
    "cnum",
    "cnam",
    "outbound_cnum",
    "outbound_cnam",
    "dst_cnam",
    "linkedid",
    "peeraccount",
    "sequence",
];

/// The 3CX CDR service's default output fields, in order (a header-less file is read by these).
pub const THREECX_COLUMNS: [&str; 27] = [
    "historyid",
    "callid",
    "duration",
    "time-start",
    "time-answered",
    "time-end",
    "reason-terminated",
    "from-no",
    "to-no",
    "from-dn",
    "to-dn",
    "dial-no",
    "reason-changed",
    "final-number",
    "final-dn",
    "bill-code",
    "bill-rate",
    "bill-cost",
    "bill-name",
    "chain",
    "from-type",
    "to-type",
    "final-type",
    "from-dispname",
    "to-dispname",
    "final-dispname",
    "missed-queue-calls",
];

/// Headerless layouts by position.
pub fn positional_layout(format: Format, model: &std::sync::Arc<CallModel>) -> Layout {
    let by_names = |names: &[&str], min: usize, max: usize| {
        let header: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut l = header_layout(format, &header, &CDR, &BTreeMap::new(), 0, model)
            .expect("a switch's documented columns have the required fields");
        (l.header_line, l.min_fields, l.max_fields) = (None, min, Some(max));
        l
    };
    match format {
        // every column read is among the first 82; CMR records are 19 to 30 columns wide
        Format::Cucm => return by_names(&CUCM_COLUMNS, 82, 140),
        Format::ThreeCx => return by_names(&THREECX_COLUMNS, 23, 30),
        Format::Freepbx => return by_names(&FREEPBX_COLUMNS, 16, 26),
        _ => {}
    }
    let mut s: Vec<Option<Src>> = vec![None; CDR.fields.len()];
    let set = |s: &mut Vec<Option<Src>>, name: &str, src: Src| {
        let i = CDR.fields.iter().position(|f| f.name == name).expect("known field");
        s[i] = Some(src);
    };
    match format {
        Format::Asterisk => {
            // accountcode, src, dst, dcontext, clid, channel, dstchannel, lastapp, lastdata, start, answer,
            // end, duration, billsec, disposition, amaflags, [uniqueid, userfield, peeraccount, linkedid, sequence]
            let legs = std::sync::Arc::new(LegCols::asterisk_positional(model.clone()));
            set(&mut s, "leg_id", Src::Col(16));
            // 21 columns: linkedid and sequence; fewer: the uniqueid is the call
            set(&mut s, "call_key", Src::FirstOf(vec![Src::Col(19), Src::Col(16)]));
            set(&mut s, "sequence", Src::Col(20));
            set(&mut s, "operator_id", Src::Seat(legs.clone()));
            set(&mut s, "direction", Src::Direction(legs));
            set(&mut s, "caller_id", Src::FirstOf(vec![Src::ClidNumber(4), Src::Col(1)]));
            set(&mut s, "callee", Src::Col(2));
            set(&mut s, "start_time", Src::Col(9));
            set(&mut s, "answer_time", Src::Col(10));
            set(&mut s, "end_time", Src::Col(11));
            set(&mut s, "duration_s", Src::Col(12));
            set(&mut s, "talk_s", Src::Col(13));
            set(&mut s, "disposition", Src::Col(14));
            set(&mut s, "trunk", Src::Peer(6));
            set(&mut s, "monitored", Src::Spy { app: 7, data: 8 });
            Layout { sources: s, min_fields: 16, max_fields: Some(21), header_line: None, rows: RowKinds::All }
        }
        Format::Freeswitch => {
            // caller_id_name, caller_id_number, destination_number, context, start_stamp, answer_stamp,
            // end_stamp, duration, billsec, hangup_cause, uuid, bleg_uuid, accountcode, [read_codec, write_codec]
            let legs = std::sync::Arc::new(LegCols {
                exporter: Exporter::FreeSwitch,
                account: Some(12),
                src: Some(1),
                dst: Some(2),
                context: Some(3),
                caller_name: Some(0),
                model: model.clone(),
                ..Default::default()
            });
            set(&mut s, "operator_id", Src::Seat(legs.clone()));
            set(&mut s, "direction", Src::Direction(legs));
            // an a-leg names its b-leg: both are the b-leg's call
            set(&mut s, "call_key", Src::FirstOf(vec![Src::Col(11), Src::Col(10)]));
            set(&mut s, "caller_id", Src::Col(1));
            set(&mut s, "callee", Src::Col(2));
            set(&mut s, "start_time", Src::Col(4));
            set(&mut s, "answer_time", Src::Col(5));
            set(&mut s, "end_time", Src::Col(6));
            set(&mut s, "duration_s", Src::Col(7));
            set(&mut s, "talk_s", Src::Col(8));
            set(&mut s, "disposition", Src::Col(9));
            set(&mut s, "leg_id", Src::Col(10));
            Layout { sources: s, min_fields: 13, max_fields: Some(15), header_line: None, rows: RowKinds::All }
        }
        _ => unreachable!("{format:?} has a header"),
    }
}

/// What detection made of a text file's first line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sniffed {
    pub format: Format,
    pub delim: u8,
    pub header: bool,
    /// How well the line fits the format, 0 to 1: the share of its signature columns the header
    /// has, or of the positions checked in a header-less record.
    pub confidence: f32,
}

/// The columns that mark each switch's header (normalised with [`norm`]).
const SIGNATURES: &[(Format, &[&str])] = &[
    (
        Format::Grandstream,
        &[
            "callernumber",
            "calleenumber",
            "sourcechannel",
            "destchannel",
            "starttime",
            "answertime",
            "endtime",
            "calltime",
            "talktime",
            "actiontype",
            "session",
        ],
    ),
    (
        Format::Freepbx,
        &[
            "calldate",
            "clid",
            "src",
            "dst",
            "dcontext",
            "channel",
            "dstchannel",
            "lastapp",
            "lastdata",
            "billsec",
            "disposition",
            "uniqueid",
        ],
    ),
    (
        Format::VicidialMonitor,
        &[
            "manageruser",
            "managerserverip",
            "managerphone",
            "agentuser",
            "agentsession",
            "callercode",
            "monitorstarttime",
            "monitorendtime",
            "monitorsec",
            "monitortype",
        ],
    ),
    (
        Format::Vicidial,
        &[
            "user",
            "phonenumber",
            "lengthinsec",
            "campaignid",
            "status",
            "calldate",
            "uniqueid",
            "leadid",
            "listid",
            "phonecode",
        ],
    ),
    (
        Format::Cucm,
        &[
            "cdrrecordtype",
            "globalcallidcallmanagerid",
            "globalcallidcallid",
            "datetimeorigination",
            "callingpartynumber",
            "finalcalledpartynumber",
            "origdevicename",
            "destdevicename",
            "datetimeconnect",
            "datetimedisconnect",
        ],
    ),
    (
        Format::ThreeCx,
        &[
            "historyid",
            "callid",
            "timestart",
            "timeanswered",
            "timeend",
            "fromno",
            "tono",
            "fromdn",
            "todn",
            "fromtype",
            "totype",
            "finaltype",
        ],
    ),
    (Format::ThreeCx, &["calltime", "callerid", "destination", "status", "ringing", "talking"]),
    (Format::Kamailio, &["method", "fromtag", "totag", "callid", "sipcode", "sipreason", "time"]),
    // the acc module's dialog CDRs (`cdrs` table): one row a call
    (
        Format::Kamailio,
        &["sipcallid", "callstarttime", "duration", "srcusername", "dstusername", "sipfromtag", "siptotag"],
    ),
    (
        Format::Carrier,
        &["本机号码", "对方号码", "呼叫类型", "通话时长", "开始时间", "imei", "imsi", "lac", "第三方号码", "漫游地"],
    ),
    (Format::Carrier, &["msisdn", "otherparty", "calltype", "duration", "starttime", "imei", "imsi", "lac", "cellid"]),
];

/// A header-less line's format by its width and where its timestamps sit.
fn sniff_positional(fields: &[Cow<str>]) -> Option<Sniffed> {
    let looks_time =
        |i: usize| fields.get(i).is_some_and(|f| parse_timestamp(f, chrono_tz::UTC, DateOrder::MonthFirst).is_some());
    let is_int = |i: usize| {
        fields.get(i).is_some_and(|f| !f.is_empty() && f.trim_start_matches('-').bytes().all(|b| b.is_ascii_digit()))
    };
    let n = fields.len();
    let at = |format, confidence| Some(Sniffed { format, delim: b',', header: false, confidence });
    if (16..=21).contains(&n) && looks_time(9) {
        return at(Format::Asterisk, 0.9);
    }
    if (16..=26).contains(&n) && looks_time(0) && fields.get(5).is_some_and(|c| c.contains('/') || c.is_empty()) {
        return at(Format::Freepbx, 0.8);
    }
    if (13..=15).contains(&n) && looks_time(4) {
        return at(Format::Freeswitch, 0.9);
    }
    let record_type = fields.first().map(|f| f.trim());
    if n >= 82 && matches!(record_type, Some("0" | "1")) && is_int(2) && is_int(4) {
        return at(Format::Cucm, 0.9);
    }
    if (19..=30).contains(&n) && record_type == Some("2") && is_int(2) && is_int(3) {
        return at(Format::Cucm, 0.6); // a CMR file
    }
    if (23..=30).contains(&n) && is_int(0) && looks_time(3) {
        return at(Format::ThreeCx, 0.8);
    }
    None
}

/// Which format a text file is, from its first non-blank line: each switch's signature columns
/// are scored; a header matching none well is `generic` when its columns are known by alias.
pub fn sniff(first_line: &str, target: &Target) -> Result<Sniffed, LayoutError> {
    let delim = super::split::sniff_delimiter(first_line);
    let mut fields = Vec::new();
    split_fields(first_line, delim, QuoteMode::Literal, &mut fields);
    let hdr: Vec<String> = fields.iter().map(|f| norm(f)).collect();
    let alias_hits = hdr
        .iter()
        .filter(|h| target.fields.iter().any(|f| norm(f.name) == **h || f.aliases.contains(&h.as_str())))
        .count();
    let generic = |confidence| Sniffed { format: Format::Generic, delim, header: true, confidence };
    if target.kind != Kind::Cdr {
        return Ok(generic(1.0));
    }
    if first_line.contains("ACC: ") || is_sql_start(first_line) {
        let format = if is_sql_start(first_line) { Format::Sql } else { Format::Kamailio };
        return Ok(Sniffed { format, delim, header: false, confidence: 1.0 });
    }
    let mut scores: Vec<(Format, f32, usize)> = Vec::new();
    for (format, sig) in SIGNATURES {
        let hits = sig.iter().filter(|c| hdr.iter().any(|h| h == *c)).count();
        let score = hits as f32 / sig.len() as f32;
        match scores.iter_mut().find(|(f, ..)| f == format) {
            Some(s) if s.1 >= score => {}
            Some(s) => *s = (*format, score, hits),
            None => scores.push((*format, score, hits)),
        }
    }
    scores.sort_by(|a, b| b.1.total_cmp(&a.1));
    let strong: Vec<&(Format, f32, usize)> = scores.iter().filter(|(_, s, h)| *s >= 0.5 && *h >= 3).collect();
    match strong.as_slice() {
        [a, b, ..] if a.1 - b.1 < 0.15 => {
            return Err(LayoutError::Ambiguous {
                candidates: format!("{} ({:.0} %) or {} ({:.0} %)", a.0.name(), a.1 * 100.0, b.0.name(), b.1 * 100.0),
                pick: a.0.name(),
            });
        }
        [a, ..] => return Ok(Sniffed { format: a.0, delim, header: true, confidence: a.1 }),
        [] => {}
    }
    // a carrier's 话单 by what only it has: the handset and the cell (IMEI, IMSI, LAC, CI) or the
    // places of the call, beside the two parties
    let has = |names: &[&str]| names.iter().filter(|n| hdr.iter().any(|h| h == *n)).count();
    let radio = has(&[
        "imei",
        "imsi",
        "lac",
        "ci",
        "cellid",
        "基站号",
        "小区号",
        "基站",
        "通话地",
        "漫游地",
        "归属地",
        "基站位置",
    ]);
    let parties = has(&["本机号码", "本端号码", "机主号码", "msisdn", "对方号码", "对端号码", "主叫号码", "被叫号码"]);
    if radio >= 2 && parties >= 2 {
        return Ok(Sniffed {
            format: Format::Carrier,
            delim,
            header: true,
            confidence: (radio + parties) as f32 / hdr.len().max(1) as f32,
        });
    }
    if alias_hits >= 2 {
        return Ok(generic(alias_hits as f32 / hdr.len().max(1) as f32));
    }
    if let Some(s) = sniff_positional(&fields) {
        return Ok(s);
    }
    let near: Vec<String> = scores
        .iter()
        .filter(|(_, s, h)| *s > 0.0 && *h >= 2)
        .take(2)
        .map(|(f, s, _)| format!("{} ({:.0} % of its columns)", f.name(), s * 100.0))
        .collect();
    Err(LayoutError::Unrecognised {
        fields: fields.len(),
        near: if near.is_empty() { "none".into() } else { near.join(", ") },
    })
}

/// The first line of a MySQL/MariaDB or PostgreSQL dump.
pub fn is_sql_start(line: &str) -> bool {
    let t = line.trim_start().to_ascii_uppercase();
    [
        "-- MYSQL DUMP",
        "-- MARIADB DUMP",
        "-- POSTGRESQL DATABASE DUMP",
        "/*!",
        "INSERT INTO",
        "CREATE TABLE",
        "COPY ",
        "SET ",
        "DROP TABLE",
        "LOCK TABLES",
        "USE `",
    ]
    .iter()
    .any(|p| t.starts_with(p))
        || t == "--"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spy_applications_name_the_seat_listened_to() {
        for (app, data, want) in [
            ("ChanSpy", "SIP/2003,qE", Some("2003")),
            ("ChanSpy", "PJSIP/2003", Some("2003")),
            ("chanspy", "SIP/2003-0000001a,q", Some("2003")),
            ("ExtenSpy", "2003@from-internal,q", Some("2003")),
            ("ChanSpy", ",q", Some("*")),
            ("eavesdrop", "all", Some("*")),
            ("eavesdrop", "6f3c1e2a-0d4b-4c55-9a3e-1b2c3d4e5f60", Some("6f3c1e2a-0d4b-4c55-9a3e-1b2c3d4e5f60")),
            ("Dial", "SIP/2003,20", None),
            ("Queue", "6400", None),
        ] {
            assert_eq!(spied_seat(app, data).as_deref(), want, "{app}({data})");
        }
    }

    #[test]
    fn peers_and_clids() {
        assert_eq!(channel_peer("SIP/1001-0000000a"), Some("1001"));
        assert_eq!(channel_peer("PJSIP/agent7-0000002a"), Some("agent7"));
        assert_eq!(channel_peer("PJSIP/trunk-cn-01-0000002a"), Some("trunk-cn-01"));
        assert_eq!(channel_peer("Local/1001@from-internal-00000001;1"), Some("1001"));
        assert_eq!(channel_peer("SIP/voip-gw"), Some("voip-gw"));
        assert_eq!(clid_number("\"Bob\" <1001>"), Some("1001"));
        assert_eq!(clid_number("Support <+44 20 7946 0000>"), Some("+44 20 7946 0000"));
        assert_eq!(clid_number("\"\" <>"), None);
        assert_eq!(clid_number("13812345678"), Some("13812345678"));
    }

    #[test]
    fn cisco_ip_integers_are_their_bytes_reversed() {
        // Cisco's documented example: -1139627840 is 0xBC12A8C0, read C0 A8 12 BC
        assert_eq!(cisco_ipv4("-1139627840").as_deref(), Some("192.168.18.188"));
        assert_eq!(cisco_ipv4("352430272").as_deref(), Some("192.168.1.21"));
        assert_eq!(cisco_ipv4("2001:db8::10").as_deref(), Some("2001:db8::10"));
        assert_eq!(cisco_ipv4("0"), None);
        assert_eq!(bare_number("Ext.2001 Li Na"), Some("2001"));
        assert_eq!(bare_number("+63 917 123 4567 (Maria)"), Some("+63 917 123 4567"));
        assert!(is_null_token("NULL") && is_null_token("\\N") && is_null_token("\\") && !is_null_token("N"));
    }

    #[test]
    fn sniffs_formats() {
        let t = &CDR;
        let f = |l: &str| sniff(l, t).unwrap().format;
        assert_eq!(f("operator_id,start_time,callee"), Format::Generic);
        assert_eq!(f("坐席工号,开始时间,被叫号码,通话时长"), Format::Generic);
        assert_eq!(f("calldate,clid,src,dst,dcontext,channel"), Format::Freepbx);
        assert_eq!(
            f("Account Code,Caller Number,Callee Number,Context,Source Channel,Dest Channel,Start Time,Answer Time"),
            Format::Grandstream
        );
        // a SIP proxy's transaction CSV with caller and callee number columns is no Grandstream export
        assert_eq!(f("Date,Time,Method,Caller Number,Callee Number,Agent,Status"), Format::Generic);
        let v = sniff("call_date\tphone_number\tstatus\tuser\tcampaign_id\tlength_in_sec", t).unwrap();
        assert_eq!((v.format, v.delim), (Format::Vicidial, b'\t'));
        assert!(v.confidence >= 0.5 && v.confidence <= 1.0, "{v:?}");
        // the monitoring log shares lead_id and campaign_id with vicidial_log, and is not it
        let m = "manager_user\tmanager_server_ip\tmanager_phone\tmanager_ip\tagent_user\tagent_server_ip\tagent_status\tagent_session\tlead_id\tcampaign_id\tcaller_code\tmonitor_start_time\tmonitor_end_time\tmonitor_sec\tmonitor_type";
        assert_eq!(f(m), Format::VicidialMonitor);
        let ast = "\"\",\"1001\",\"8613812345678\",\"from-internal\",\"\"\"Bob\"\" <1001>\",\"SIP/1001-0000000a\",\"SIP/trunk-0000000b\",\"Dial\",\"SIP/trunk/8613812345678\",\"2026-03-02 08:01:00\",\"2026-03-02 08:01:05\",\"2026-03-02 08:03:05\",125,120,\"ANSWERED\",\"DOCUMENTATION\"";
        assert_eq!(f(ast), Format::Asterisk);
        let fs = "\"Bob\",\"1001\",\"13812345678\",\"default\",\"2026-03-02 08:01:00\",\"2026-03-02 08:01:05\",\"2026-03-02 08:03:05\",\"125\",\"120\",\"NORMAL_CLEARING\",\"uuid-1\",\"\",\"1001\"";
        assert_eq!(f(fs), Format::Freeswitch);
        assert!(matches!(sniff("a,b,c", t), Err(LayoutError::Unrecognised { fields: 3, .. })));
        let e = sniff("foo,method,from_tag,to_tag,bar", t).unwrap_err().to_string();
        assert!(e.contains("nearest") && e.contains("--format"), "{e}");
        // a header with two switches' columns is said to be both, not read as either
        let two = "Caller Number,Callee Number,Source Channel,Dest Channel,Start Time,Answer Time,calldate,clid,src,dst,dcontext,channel,dstchannel";
        let e = sniff(two, t).unwrap_err().to_string();
        assert!(e.contains("freepbx") && e.contains("grandstream") && e.contains("--format"), "{e}");
    }

    #[test]
    fn missing_required_column_names_what_was_found() {
        let hdr: Vec<String> = ["agent", "callee"].iter().map(|s| s.to_string()).collect();
        let e = header_layout(Format::Generic, &hdr, &CDR, &BTreeMap::new(), 1, &Default::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("start_time") && e.contains("agent") && e.contains("calldate"), "{e}");
        let mut over = BTreeMap::new();
        over.insert("When".to_string(), "start_time".to_string());
        let hdr: Vec<String> = ["agent", "When"].iter().map(|s| s.to_string()).collect();
        let l = header_layout(Format::Generic, &hdr, &CDR, &over, 1, &Default::default()).unwrap();
        assert_eq!(l.sources[2], Some(Src::Col(1)));
    }
}
