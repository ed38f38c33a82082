//! How a PBX writes one generated call as CDR legs, from the exporters' documented behaviour
//! (docs/calls.md): Asterisk `cdr_csv` with 21 columns (uniqueid, userfield, peeraccount,
//! linkedid, sequence) and Grandstream UCM's CDR download (ForkCDR rows sharing a Unique ID and a
//! Session).

use chrono::{Duration, NaiveDateTime};

/// One call as the generator made it, before it is written as legs.
pub struct PbxCall<'a> {
    /// A number unique to the call (channel and unique ids are made from it).
    pub id: u64,
    /// The seat: an extension.
    pub seat: &'a str,
    pub inbound: bool,
    pub start: NaiveDateTime,
    /// Outbound: ringing before the answer. Inbound: the agent's ringing.
    pub ring: i64,
    pub talk: i64,
    /// Inbound: seconds the caller spent in the IVR and the queue before the agent's leg.
    pub wait: i64,
    /// The caller ID shown (outbound) or the caller's number (inbound).
    pub cli: &'a str,
    /// The dialled number (outbound) or the queue (inbound).
    pub callee: &'a str,
    pub trunk: &'a str,
    /// Inbound: another agent the queue rang first, without answer.
    pub other_agent: Option<&'a str>,
    /// Inbound: the caller went through IVR 6500 first.
    pub ivr: bool,
    /// Outbound: dialled through a `Local/` channel (two legs carrying the talk).
    pub via_local: bool,
    /// Outbound: the dialplan's `h` extension wrote a row of its own.
    pub h_row: bool,
    pub disposition: &'static str,
    /// The seat's address (the SIP shapes' origin).
    pub ip: Option<&'a str>,
}

pub const GRANDSTREAM_HEADER: &str = "Account Code,Caller Number,Callee Number,Context,Caller ID,Source Channel,Dest. Channel,Last app.,Last data,Start Time,Answer Time,End Time,Call Time,Talk Time,Disposition,AMA Flags,Unique ID,Log Userfield,Source Channel Extension,Dest Channel Extension,Service,Session,Action Owner,Action Type,Source Trunk Name,Destination Trunk Name,Answered by\n";

fn fmt(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn secs(t: NaiveDateTime, s: i64) -> NaiveDateTime {
    t + Duration::seconds(s)
}

/// A leg's times: start, answer (none when unanswered), end.
struct Times {
    start: NaiveDateTime,
    answer: Option<NaiveDateTime>,
    end: NaiveDateTime,
}

impl Times {
    fn new(start: NaiveDateTime, ring: i64, talk: i64) -> Self {
        let answer = (talk > 0).then(|| secs(start, ring));
        Self { start, answer, end: secs(start, ring + talk) }
    }
    fn cols(&self) -> (String, String, String, i64, i64) {
        let dur = (self.end - self.start).num_seconds();
        let bill = self.answer.map_or(0, |a| (self.end - a).num_seconds());
        (fmt(self.start), self.answer.map(fmt).unwrap_or_default(), fmt(self.end), dur, bill)
    }
}

/// A call's Asterisk unique ids and channel suffixes, made from its number.
struct AstIds(u64);

impl AstIds {
    fn uid(&self, k: u64) -> String {
        format!("{}.{}", 1_772_000_000 + self.0 / 100, self.0 * 4 + k)
    }
    fn ch(&self, k: u64) -> String {
        format!("{:08x}", (self.0 * 4 + k) & 0xffff_ffff)
    }
}

/// One Asterisk 21-column row.
#[allow(clippy::too_many_arguments)]
fn ast_row(
    src: &str,
    dst: &str,
    ctx: &str,
    clid: &str,
    ch: &str,
    dch: &str,
    app: &str,
    data: &str,
    t: &Times,
    disp: &str,
    uid: &str,
    linked: &str,
    seq: u64,
) -> String {
    let (s, a, e, dur, bill) = t.cols();
    let clid = clid.replace('"', "\"\"");
    format!(
        "\"\",\"{src}\",\"{dst}\",\"{ctx}\",\"{clid}\",\"{ch}\",\"{dch}\",\"{app}\",\"{data}\",\"{s}\",\"{a}\",\"{e}\",{dur},{bill},\"{disp}\",\"DOCUMENTATION\",\"{uid}\",\"\",\"\",\"{linked}\",{seq}\n"
    )
}

/// The call as Asterisk writes it: outbound directly or through a Local channel (and the `h`
/// row); inbound through the queue's Local channels, the trunk leg into `Queue` carrying the wait.
pub fn asterisk(c: &PbxCall) -> String {
    if c.inbound { asterisk_inbound(c) } else { asterisk_outbound(c) }
}

fn asterisk_outbound(c: &PbxCall) -> String {
    let ids = AstIds(c.id);
    let (uid, ch, seq, disp) = (|k| ids.uid(k), |k| ids.ch(k), c.id * 4, c.disposition);
    let clid = format!("\"Agent {}\" <{}>", c.seat, c.cli);
    let t = Times::new(c.start, c.ring, c.talk);
    let me = format!("SIP/{}-{}", c.seat, ch(0));
    let trunk = format!("SIP/{}-{}", c.trunk, ch(1));
    let mut out = if c.via_local {
        let local = format!("Local/{}@outbound-allroutes-{}", c.callee, ch(2));
        let data = format!("SIP/{}/{},300", c.trunk, c.callee);
        ast_row(
            c.seat,
            c.callee,
            "from-internal",
            &clid,
            &me,
            &format!("{local};1"),
            "Dial",
            "Local/out,300",
            &t,
            disp,
            &uid(0),
            &uid(0),
            seq,
        ) + &ast_row(
            c.seat,
            c.callee,
            "outbound-allroutes",
            &clid,
            &format!("{local};2"),
            &trunk,
            "Dial",
            &data,
            &t,
            disp,
            &uid(1),
            &uid(0),
            seq + 1,
        )
    } else {
        let data = format!("SIP/{}/{},60", c.trunk, c.callee);
        ast_row(c.seat, c.callee, "from-internal", &clid, &me, &trunk, "Dial", &data, &t, disp, &uid(0), &uid(0), seq)
    };
    if c.h_row {
        out +=
            &ast_row(c.seat, "h", "from-internal", &clid, &me, "", "Hangup", "", &t, disp, &uid(0), &uid(0), seq + 2);
    }
    out
}

/// A leader's ChanSpy session on `target`'s channel, as Asterisk writes it: the leader dialled a
/// feature code (`*222` + extension), the dialplan ran `ChanSpy(SIP/2003,qE)`; no destination
/// channel; billsec is the time listened.
pub fn chanspy(c: &PbxCall, target: &str) -> String {
    let ids = AstIds(c.id);
    let t = Times::new(c.start, c.ring, c.talk);
    let clid = format!("\"Leader {}\" <{}>", c.seat, c.seat);
    let me = format!("SIP/{}-{}", c.seat, ids.ch(0));
    let data = format!("SIP/{target},qE");
    ast_row(
        c.seat,
        c.callee,
        "from-internal",
        &clid,
        &me,
        "",
        "ChanSpy",
        &data,
        &t,
        "ANSWERED",
        &ids.uid(0),
        &ids.uid(0),
        c.id * 4,
    )
}

fn asterisk_inbound(c: &PbxCall) -> String {
    let ids = AstIds(c.id);
    let (uid, ch, seq, disp) = (|k| ids.uid(k), |k| ids.ch(k), c.id * 4, c.disposition);
    // the trunk leg is answered by the queue at once and lasts until the agent hangs up
    let clid = format!("\"{}\" <{}>", c.cli, c.cli);
    let trunk = format!("SIP/{}-{}", c.trunk, ch(0));
    let agent_start = secs(c.start, c.wait);
    let end = secs(agent_start, c.ring + c.talk);
    let queue_t = Times { start: c.start, answer: Some(secs(c.start, 1)), end };
    let q_local = format!("Local/{}@from-queue-{}", c.seat, ch(1));
    let mut out = ast_row(
        c.cli,
        c.callee,
        "ext-queues",
        &clid,
        &trunk,
        &format!("{q_local};1"),
        "Queue",
        &format!("{},t", c.callee),
        &queue_t,
        "ANSWERED",
        &uid(0),
        &uid(0),
        seq,
    );
    let mut t0 = agent_start;
    if let Some(o) = c.other_agent {
        let t = Times::new(t0, 15, 0);
        let l = format!("Local/{o}@from-queue-{};2", ch(2));
        out += &ast_row(
            c.cli,
            o,
            "from-queue",
            &clid,
            &l,
            &format!("SIP/{o}-{}", ch(3)),
            "Dial",
            &format!("SIP/{o},,tr"),
            &t,
            "NO ANSWER",
            &uid(2),
            &uid(0),
            seq + 1,
        );
        t0 = secs(t0, 15);
    }
    let t = Times::new(t0, c.ring, c.talk);
    out + &ast_row(
        c.cli,
        c.seat,
        "from-queue",
        &clid,
        &format!("{q_local};2"),
        &format!("SIP/{}-{}", c.seat, ch(4)),
        "Dial",
        &format!("SIP/{},,tr", c.seat),
        &t,
        disp,
        &uid(1),
        &uid(0),
        seq + 2,
    )
}

/// One Grandstream row's texts (every field a `&str`, so a call's rows are one base row changed).
#[derive(Clone, Copy, Default)]
struct Gs<'a> {
    acct: &'a str,
    src: &'a str,
    dst: &'a str,
    ctx: &'a str,
    clid: &'a str,
    ch: &'a str,
    dch: &'a str,
    app: &'a str,
    /// Last data (empty but for a spy application's target).
    data: &'a str,
    disp: &'a str,
    uid: &'a str,
    dst_ext: &'a str,
    session: &'a str,
    action: &'a str,
    src_trunk: &'a str,
    dst_trunk: &'a str,
    answered_by: &'a str,
}

impl Gs<'_> {
    fn row(&self, t: &Times) -> String {
        let (s, a, e, dur, bill) = t.cols();
        let clid = format!("\"{}\"", self.clid.replace('"', "\"\""));
        // a spy application's data holds a comma (`PJSIP/2003,qE`): quoted, as the UCM quotes it
        let data = if self.data.contains(',') { format!("\"{}\"", self.data) } else { self.data.to_string() };
        let Gs {
            acct,
            src,
            dst,
            ctx,
            ch,
            dch,
            app,
            disp,
            uid,
            dst_ext,
            session,
            action,
            src_trunk,
            dst_trunk,
            answered_by,
            ..
        } = *self;
        format!(
            "{acct},{src},{dst},{ctx},{clid},{ch},{dch},{app},{data},{s},{a},{e},{dur},{bill},{disp},DOCUMENTATION,{uid},,,{dst_ext},s,{session},{dst},{action},{src_trunk},{dst_trunk},{answered_by}\n"
        )
    }
}

/// The call as a Grandstream UCM writes it: outbound one row; inbound the IVR, the queue and each
/// agent it rang as ForkCDR rows under one Unique ID and one Session. `spy`: a team leader's
/// ChanSpy session on that seat (the UCM is Asterisk inside: `Last app.` ChanSpy, `Last data` the
/// channel listened to).
pub fn grandstream(c: &PbxCall, spy: Option<&str>) -> String {
    let uid = format!("{}.{}", 1_772_000_000 + c.id / 100, c.id);
    let session = format!("{uid}-{}", c.id % 97);
    let ch = |k: u64| format!("{:08x}", (c.id * 4 + k) & 0xffff_ffff);
    if !c.inbound || spy.is_some() {
        let clid = match spy {
            Some(_) => format!("\"Leader {}\" <{}>", c.seat, c.seat),
            None => format!("\"Agent {}\" <{}>", c.seat, c.cli),
        };
        let (me, trunk) = (format!("PJSIP/{}-{}", c.seat, ch(0)), format!("PJSIP/{}-{}", c.trunk, ch(1)));
        let data = spy.map(|t| format!("PJSIP/{t},qE")).unwrap_or_default();
        let mut row = Gs {
            acct: c.seat,
            src: c.seat,
            dst: c.callee,
            ctx: "from-internal",
            clid: &clid,
            ch: &me,
            dch: &trunk,
            app: "Dial",
            disp: c.disposition,
            uid: &uid,
            session: &session,
            action: "DIAL",
            dst_trunk: c.trunk,
            ..Default::default()
        };
        if spy.is_some() {
            row = Gs { dch: "", app: "ChanSpy", data: &data, disp: "ANSWERED", action: "", dst_trunk: "", ..row };
        }
        return row.row(&Times::new(c.start, c.ring, c.talk));
    }
    let clid = format!("\"{}\" <{}>", c.cli, c.cli);
    let src = format!("PJSIP/trunk_1-{}", ch(0));
    let queue = format!("QUEUE[{}]", c.callee);
    let base = Gs {
        src: c.cli,
        dst: c.callee,
        ctx: "ext-did-0001",
        clid: &clid,
        ch: &src,
        app: "Queue",
        disp: "ANSWERED",
        uid: &uid,
        dst_ext: c.callee,
        session: &session,
        action: &queue,
        src_trunk: c.trunk,
        answered_by: c.callee,
        ..Default::default()
    };
    let mut out = String::new();
    let (mut t0, mut wait) = (c.start, c.wait);
    if c.ivr {
        let ivr = wait.min(20);
        let t = Times { start: t0, answer: Some(secs(t0, 1)), end: secs(t0, ivr) };
        let r =
            Gs { dst: "6500", app: "BackGround", dst_ext: "6500", action: "IVR[6500]", answered_by: "6500", ..base };
        out += &r.row(&t);
        t0 = secs(t0, ivr);
        wait -= ivr;
    }
    // the queue answers the caller, then rings its agents
    out += &base.row(&Times { start: t0, answer: Some(t0), end: secs(t0, wait.max(1)) });
    t0 = secs(t0, wait.max(1));
    let other_ch;
    if let Some(o) = c.other_agent {
        other_ch = format!("PJSIP/{o}-{}", ch(1));
        let r = Gs { dch: &other_ch, disp: "NO ANSWER", dst_ext: o, answered_by: "", ..base };
        out += &r.row(&Times::new(t0, 15, 0));
        t0 = secs(t0, 15);
    }
    let me = format!("PJSIP/{}-{}", c.seat, ch(2));
    let answered = if c.talk > 0 { c.seat } else { "" };
    let r = Gs { dch: &me, disp: c.disposition, dst_ext: c.seat, answered_by: answered, ..base };
    out + &r.row(&Times::new(t0, c.ring, c.talk))
}

/// Shanghai wall time → epoch seconds (the generator's naive times are Asia/Shanghai, UTC+8, no DST).
fn epoch(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp() - 8 * 3600
}

/// Cisco's IPv4 integer: the address's bytes read least significant first, as a signed 32-bit
/// number (192.168.18.188 → -1139627840).
fn cisco_int(ip: &str) -> Option<i32> {
    let v4: std::net::Ipv4Addr = ip.parse().ok()?;
    Some(i32::from_le_bytes(v4.octets()))
}

/// A CUCM flat file's header and type rows (release 11.x: 129 columns).
pub fn cucm_header() -> String {
    let cols = &crate::load::format::CUCM_COLUMNS[..129];
    let names: Vec<String> = cols.iter().map(|c| format!("\"{c}\"")).collect();
    let types: Vec<&str> = cols
        .iter()
        .map(|c| match *c {
            "pkid" => "UNIQUEIDENTIFIER",
            c if c.contains("Number") || c.contains("DeviceName") || c.contains("v4v6") || c.contains("Partition") => {
                "VARCHAR(50)"
            }
            _ => "INTEGER",
        })
        .collect();
    format!("{}\r\n{}\r\n", names.join(","), types.join(","))
}

/// One CUCM CDR record: these columns set, the rest empty or 0; texts quoted as CUCM quotes them.
fn cucm_record(set: &[(&str, String)]) -> String {
    let cols = &crate::load::format::CUCM_COLUMNS[..129];
    let mut row: Vec<String> = cols
        .iter()
        .map(|c| match *c {
            "cdrRecordType" | "globalCallID_callManagerId" | "origNodeId" | "destNodeId" => "1".to_string(),
            c if c.contains("Number") || c.contains("DeviceName") || c.contains("v4v6") || c == "pkid" => {
                "\"\"".to_string()
            }
            _ => "0".to_string(),
        })
        .collect();
    for (k, v) in set {
        let i = cols.iter().position(|c| c == k).expect("a CUCM column");
        row[i] = if row[i].starts_with('"') { format!("\"{v}\"") } else { v.clone() };
    }
    row.join(",") + "\r\n"
}

/// The call as CUCM writes it: outbound, one record from the seat's phone (`SEP…`) to the trunk
/// with the outpulsed caller ID; inbound, the trunk's record into the queue's CTI route point
/// (the wait, no seat) and the record of the call redirected to the agent's phone.
pub fn cucm(c: &PbxCall) -> String {
    let phone = format!("SEP00AA{:0>8}", c.seat);
    let t = Times::new(c.start, c.ring, c.talk);
    let origin = c.ip.and_then(cisco_int).map_or("0".into(), |v| v.to_string());
    let v6 = c.ip.filter(|ip| ip.contains(':')).unwrap_or("").to_string();
    let connect = |t: &Times| t.answer.map_or("0".into(), |a| epoch(a).to_string());
    let common = |leg: u64, t: &Times| {
        vec![
            ("globalCallID_callId", (c.id % 1_000_000_000).to_string()),
            ("origLegCallIdentifier", (c.id * 4 + leg).to_string()),
            ("destLegCallIdentifier", (c.id * 4 + leg + 1).to_string()),
            ("dateTimeOrigination", epoch(t.start).to_string()),
            ("dateTimeConnect", connect(t)),
            ("dateTimeDisconnect", epoch(t.end).to_string()),
            ("duration", t.answer.map_or(0, |a| (t.end - a).num_seconds()).to_string()),
            ("pkid", format!("{:08x}-{:04x}-4000-8000-{:012x}", c.id & 0xffff_ffff, leg, c.id)),
            ("destCause_value", "16".into()),
        ]
    };
    if !c.inbound {
        let mut f = common(0, &t);
        f.extend([
            ("callingPartyNumber", c.seat.to_string()),
            ("originalCalledPartyNumber", c.callee.to_string()),
            ("finalCalledPartyNumber", c.callee.to_string()),
            ("outpulsedCallingPartyNumber", c.cli.to_string()),
            ("outpulsedCalledPartyNumber", c.callee.to_string()),
            ("origDeviceName", phone),
            ("destDeviceName", c.trunk.to_string()),
            ("origIpAddr", origin),
            ("origIpv4v6Addr", v6),
        ]);
        return cucm_record(&f);
    }
    let queued = Times { start: c.start, answer: Some(c.start), end: secs(c.start, c.wait) };
    let mut q = common(0, &queued);
    q.extend([
        ("callingPartyNumber", c.cli.to_string()),
        ("originalCalledPartyNumber", c.callee.to_string()),
        ("finalCalledPartyNumber", c.callee.to_string()),
        ("origDeviceName", c.trunk.to_string()),
        ("destDeviceName", format!("CTI_RP_{}", c.callee)),
    ]);
    let agent = Times::new(secs(c.start, c.wait), c.ring, c.talk);
    let mut a = common(2, &agent);
    a.extend([
        ("callingPartyNumber", c.cli.to_string()),
        ("originalCalledPartyNumber", c.callee.to_string()),
        ("finalCalledPartyNumber", c.seat.to_string()),
        ("lastRedirectDn", c.callee.to_string()),
        ("huntPilotDN", c.callee.to_string()),
        ("origDeviceName", c.trunk.to_string()),
        ("destDeviceName", phone),
    ]);
    cucm_record(&q) + &cucm_record(&a)
}

/// 3CX writes a file of its CDR service with a BOM and no header.
pub const THREECX_START: &str = "\u{feff}";

/// The call as the 3CX CDR service writes it (its default fields, one record a call): outbound from
/// the extension to the line; inbound from the line to the queue, taken by the agent (`final_dn`).
pub fn three_cx(c: &PbxCall) -> String {
    let f3 = |t: NaiveDateTime| t.format("%Y/%m/%d %H:%M:%S").to_string();
    let hms = |s: i64| format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    let (start, ring) = if c.inbound { (c.start, c.wait + c.ring) } else { (c.start, c.ring) };
    let t = Times::new(start, ring, c.talk);
    let answered = t.answer.map(f3).unwrap_or_default();
    let reason = if c.talk > 0 { "TerminatedBySrc" } else { "TerminatedByDst" };
    let id = c.id % 1_000_000_000;
    let (callid, dur) = (format!("00000190{:08X}_{}", c.id & 0xffff_ffff, c.id % 7), hms(c.talk));
    if !c.inbound {
        format!(
            "{id},{callid},{dur},{},{answered},{},{reason},Ext.{seat},{callee},{seat},10000,{callee},,{callee},10000,,,,,Ext.{seat};10000;{callee},Extension,Line,Line,Agent {seat},{trunk},{trunk},\r\n",
            f3(t.start),
            f3(t.end),
            seat = c.seat,
            callee = c.callee,
            trunk = c.trunk
        )
    } else {
        format!(
            "{id},{callid},{dur},{},{answered},{},{reason},{cli},{q},10001,{q},{q},ReplacedDst,Ext.{seat},{seat},,,,,10001;{q};Ext.{seat},Line,Queue,Extension,{cli},Queue {q},Agent {seat},\r\n",
            f3(t.start),
            f3(t.end),
            cli = c.cli,
            q = c.callee,
            seat = c.seat
        )
    }
}

/// The call as Kamailio's acc module logs it to syslog: the INVITE's final reply (200 at the
/// answer, else the failure) and the BYE; now and then the seat's REGISTER refresh, which is no
/// call. The seat's softphone address is the origin; the trunk is the request's domain.
pub fn kamailio(c: &PbxCall) -> String {
    let syslog = |t: NaiveDateTime, state: &str, kv: String| {
        format!(
            "{} sip01 /usr/sbin/kamailio[2114]: NOTICE: acc [acc.c:281]: ACC: {state}: {kv}\n",
            t.format("%b %e %H:%M:%S")
        )
    };
    let call_id = format!("{:016x}@10.0.0.5", c.id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let ip = c.ip.unwrap_or("198.51.100.20");
    // outbound: the softphone puts the caller ID to show in From and authenticates as the seat
    // (`auth_user`, the `$au` the proxy's acc_extra logs)
    let (src, auth, src_ip, to, ruri, domain) = if c.inbound {
        (c.cli, "", "198.51.100.7", c.callee, c.seat, "pbx.local")
    } else {
        (c.cli, c.seat, ip, c.callee, c.callee, c.trunk)
    };
    let ring = if c.inbound { c.wait + c.ring } else { c.ring };
    let t = Times::new(c.start, ring, c.talk);
    let line = |t: NaiveDateTime, method: &str, code: &str, reason: &str| {
        format!(
            "timestamp={};method={method};from_tag=ft{:x};to_tag=tt{:x};call_id={call_id};code={code};reason={reason};src_user={src};src_domain=pbx.local;src_ip={src_ip};dst_ouser={to};dst_user={ruri};dst_domain={domain};auth_user={auth}",
            epoch(t),
            c.id,
            c.id
        )
    };
    let mut out = String::new();
    if c.id.is_multiple_of(25) {
        let kv = format!(
            "timestamp={};method=REGISTER;from_tag=rg{:x};to_tag=;call_id=reg-{call_id};code=200;reason=OK;src_user={s};src_domain=pbx.local;src_ip={ip};dst_ouser={s};dst_user={s};dst_domain=pbx.local;auth_user={s}",
            epoch(c.start) - 30,
            c.id,
            s = c.seat
        );
        out += &syslog(secs(c.start, -30), "transaction answered", kv);
    }
    match t.answer {
        Some(a) => {
            out += &syslog(a, "transaction answered", line(a, "INVITE", "200", "OK"));
            out += &syslog(t.end, "transaction answered", line(t.end, "BYE", "200", "OK"));
        }
        None => {
            let (code, reason) = match c.disposition {
                "BUSY" => ("486", "Busy Here"),
                _ => ("487", "Request Terminated"),
            };
            out += &syslog(t.end, "transaction failed", line(t.end, "INVITE", code, reason));
        }
    }
    out
}
