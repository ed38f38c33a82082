//! Input formats: detection from the first line, and how each format's columns become the
//! canonical raw fields (still text; [`super::normalize`] types them).

use super::legs::{CallModel, Exporter, LegCols};
use super::split::{QuoteMode, split_fields};
use crate::time::{DateOrder, parse_timestamp};
use std::borrow::Cow;
use std::collections::BTreeMap;

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
            Format::Parquet => "parquet",
            Format::Ndjson => "ndjson",
        }
    }
}

/// One canonical raw field: its name and the header aliases that mean it (normalised with [`norm`]).
pub struct FieldSpec {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub required: bool,
}

/// What a file is loaded into: CDR calls or chat-group joins.
pub struct Target {
    pub what: &'static str,
    pub fields: &'static [FieldSpec],
}

macro_rules! f {
    ($name:literal, req, [$($a:literal),*]) => { FieldSpec { name: $name, aliases: &[$($a),*], required: true } };
    ($name:literal, [$($a:literal),*]) => { FieldSpec { name: $name, aliases: &[$($a),*], required: false } };
}

/// Canonical raw CDR fields, in order. Aliases include Chinese headers of domestic call-centre exports.
pub static CDR: Target = Target {
    what: "CDR",
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
    ],
};

/// Canonical raw chat-group join fields.
pub static JOINS: Target = Target {
    what: "join log",
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
}

impl Src {
    pub fn eval<'a>(&self, f: &[Cow<'a, str>]) -> Option<Cow<'a, str>> {
        let get = |i: usize| f.get(i).map(|s| trim(s)).filter(|s| !s.is_empty());
        match self {
            Src::Col(i) => f.get(*i).and_then(|s| {
                let t = trim(s);
                if t.is_empty() {
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
}

impl Layout {
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
    #[error("cannot tell the format: the first line has {fields} fields and no recognised header (use --format)")]
    Unrecognised { fields: usize },
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
    if std::ptr::eq(target, &CDR) {
        exporter_sources(format, &hdr, &mut sources, model);
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
    let missing: Vec<&'static str> =
        target.fields.iter().zip(&sources).filter(|(f, s)| f.required && s.is_none()).map(|(f, _)| f.name).collect();
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
    Ok(Layout { sources, min_fields: header.len(), max_fields: Some(header.len()), header_line: Some(header_line) })
}

/// The columns an exporter documents, mapped to canonical CDR fields (the rest are matched by
/// their generic aliases).
fn exporter_sources(format: Format, hdr: &[String], sources: &mut [Option<Src>], model: &std::sync::Arc<CallModel>) {
    let idx = |name: &str| CDR.fields.iter().position(|f| f.name == name);
    let h = |names: &[&str]| find(hdr, names);
    let col = |names: &[&str]| h(names).map(Src::Col);
    let set = |sources: &mut [Option<Src>], field: &str, src: Vec<Option<Src>>| {
        let v: Vec<Src> = src.into_iter().flatten().collect();
        if let Some(i) = idx(field) {
            sources[i] = match v.len() {
                0 => None,
                1 => v.into_iter().next(),
                _ => Some(Src::FirstOf(v)),
            };
        }
    };
    match format {
        Format::Freepbx => {
            let legs = std::sync::Arc::new(LegCols {
                exporter: Exporter::Asterisk,
                account: h(&["accountcode"]),
                src: h(&["src"]),
                dst: h(&["dst"]),
                context: h(&["dcontext"]),
                channel: h(&["channel"]),
                dstchannel: h(&["dstchannel"]),
                lastapp: h(&["lastapp"]),
                peeraccount: h(&["peeraccount"]),
                model: model.clone(),
                ..Default::default()
            });
            set(sources, "leg_id", vec![col(&["uniqueid"])]);
            set(sources, "call_key", vec![col(&["linkedid"]), col(&["uniqueid"])]);
            set(sources, "sequence", vec![col(&["sequence"])]);
            set(sources, "operator_id", vec![Some(Src::Seat(legs.clone()))]);
            set(sources, "direction", vec![Some(Src::Direction(legs))]);
            set(sources, "start_time", vec![col(&["calldate"])]);
            set(sources, "duration_s", vec![col(&["duration"])]);
            set(sources, "talk_s", vec![col(&["billsec"])]);
            set(sources, "caller_id", vec![col(&["outboundcnum"]), h(&["clid"]).map(Src::ClidNumber), col(&["src"])]);
            set(sources, "callee", vec![col(&["dst"])]);
            set(sources, "disposition", vec![col(&["disposition"])]);
            set(sources, "trunk", vec![h(&["dstchannel"]).map(Src::Peer)]);
        }
        Format::Grandstream => {
            let legs = std::sync::Arc::new(LegCols {
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
                model: model.clone(),
                ..Default::default()
            });
            set(sources, "leg_id", vec![col(&["uniqueid"])]);
            set(sources, "call_key", vec![col(&["session"]), col(&["uniqueid"])]);
            set(sources, "operator_id", vec![Some(Src::Seat(legs.clone()))]);
            set(sources, "direction", vec![Some(Src::Direction(legs))]);
            set(sources, "start_time", vec![col(&["starttime"])]);
            set(sources, "answer_time", vec![col(&["answertime"])]);
            set(sources, "end_time", vec![col(&["endtime"])]);
            set(sources, "duration_s", vec![col(&["calltime"])]);
            set(sources, "talk_s", vec![col(&["talktime"])]);
            set(
                sources,
                "caller_id",
                vec![h(&["calleridnumber", "callerid"]).map(Src::ClidNumber), col(&["callernumber"])],
            );
            set(sources, "callee", vec![col(&["calleenumber"])]);
            set(sources, "disposition", vec![col(&["disposition"])]);
            set(sources, "trunk", vec![col(&["destinationtrunkname"]), col(&["sourcetrunkname"])]);
        }
        Format::Vicidial => {
            let legs = std::sync::Arc::new(LegCols {
                exporter: Exporter::Vicidial,
                account: h(&["user"]),
                model: model.clone(),
                ..Default::default()
            });
            set(sources, "leg_id", vec![col(&["uniqueid"])]);
            set(sources, "operator_id", vec![Some(Src::Seat(legs.clone()))]);
            set(sources, "direction", vec![Some(Src::Direction(legs))]);
            set(sources, "start_time", vec![col(&["startepoch"]), col(&["calldate"])]);
            set(sources, "end_time", vec![col(&["endepoch"])]);
            set(sources, "talk_s", vec![col(&["talksec"]), col(&["lengthinsec"])]);
            let code = h(&["phonecode"]);
            let num = h(&["phonenumber"]);
            let callee = match (code, num) {
                (Some(c), Some(n)) => Some(Src::Concat(c, n)),
                (None, Some(n)) => Some(Src::Col(n)),
                _ => None,
            };
            set(sources, "callee", vec![col(&["phonenumberdialed"]), callee]);
            set(sources, "caller_id", vec![col(&["outboundcid", "callerid"])]);
            set(sources, "src_ip", vec![col(&["computerip"])]);
            set(sources, "campaign", vec![col(&["campaignid"])]);
            set(sources, "cli_group", vec![col(&["cidgroup", "cidgroupid"])]);
            set(sources, "disposition", vec![col(&["status"])]);
        }
        _ => {}
    }
}

/// Headerless layouts by position.
pub fn positional_layout(format: Format, model: &std::sync::Arc<CallModel>) -> Layout {
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
            Layout { sources: s, min_fields: 16, max_fields: Some(21), header_line: None }
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
            Layout { sources: s, min_fields: 13, max_fields: Some(15), header_line: None }
        }
        _ => unreachable!("{format:?} has a header"),
    }
}

/// Which format a text file is, from its first non-blank line.
pub fn sniff(first_line: &str, target: &Target) -> Result<(Format, u8, bool), LayoutError> {
    let delim = super::split::sniff_delimiter(first_line);
    let mut fields = Vec::new();
    split_fields(first_line, delim, QuoteMode::Literal, &mut fields);
    let hdr: Vec<String> = fields.iter().map(|f| norm(f)).collect();
    let known = |names: &[&str]| names.iter().all(|n| hdr.iter().any(|h| h == n));
    let alias_hits = hdr
        .iter()
        .filter(|h| target.fields.iter().any(|f| norm(f.name) == **h || f.aliases.contains(&h.as_str())))
        .count();
    if !std::ptr::eq(target, &CDR) {
        return Ok((Format::Generic, delim, true));
    }
    if known(&["callernumber", "calleenumber"]) {
        return Ok((Format::Grandstream, delim, true));
    }
    if known(&["calldate", "clid", "dcontext"]) {
        return Ok((Format::Freepbx, delim, true));
    }
    if known(&["user"])
        && (known(&["phonenumber"]) || known(&["phonenumberdialed"]))
        && (known(&["lengthinsec"]) || known(&["startepoch"]) || known(&["calldate"]))
    {
        return Ok((Format::Vicidial, delim, true));
    }
    if alias_hits >= 2 {
        return Ok((Format::Generic, delim, true));
    }
    let looks_time =
        |i: usize| fields.get(i).is_some_and(|f| parse_timestamp(f, chrono_tz::UTC, DateOrder::MonthFirst).is_some());
    let n = fields.len();
    if (16..=21).contains(&n) && looks_time(9) {
        return Ok((Format::Asterisk, b',', false));
    }
    if (13..=15).contains(&n) && looks_time(4) {
        return Ok((Format::Freeswitch, b',', false));
    }
    Err(LayoutError::Unrecognised { fields: n })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn sniffs_formats() {
        let t = &CDR;
        assert_eq!(sniff("operator_id,start_time,callee", t).unwrap().0, Format::Generic);
        assert_eq!(sniff("坐席工号,开始时间,被叫号码,通话时长", t).unwrap().0, Format::Generic);
        assert_eq!(sniff("calldate,clid,src,dst,dcontext,channel", t).unwrap().0, Format::Freepbx);
        assert_eq!(sniff("Account Code,Caller Number,Callee Number,Context", t).unwrap().0, Format::Grandstream);
        let v = sniff("call_date\tphone_number\tstatus\tuser\tcampaign_id\tlength_in_sec", t).unwrap();
        assert_eq!((v.0, v.1), (Format::Vicidial, b'\t'));
        let ast = "\"\",\"1001\",\"8613812345678\",\"from-internal\",\"\"\"Bob\"\" <1001>\",\"SIP/1001-0000000a\",\"SIP/trunk-0000000b\",\"Dial\",\"SIP/trunk/8613812345678\",\"2026-03-02 08:01:00\",\"2026-03-02 08:01:05\",\"2026-03-02 08:03:05\",125,120,\"ANSWERED\",\"DOCUMENTATION\"";
        assert_eq!(sniff(ast, t).unwrap().0, Format::Asterisk);
        let fs = "\"Bob\",\"1001\",\"13812345678\",\"default\",\"2026-03-02 08:01:00\",\"2026-03-02 08:01:05\",\"2026-03-02 08:03:05\",\"125\",\"120\",\"NORMAL_CLEARING\",\"uuid-1\",\"\",\"1001\"";
        assert_eq!(sniff(fs, t).unwrap().0, Format::Freeswitch);
        assert!(matches!(sniff("a,b,c", t), Err(LayoutError::Unrecognised { fields: 3 })));
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
