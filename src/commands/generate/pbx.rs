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
            "{acct},{src},{dst},{ctx},{clid},{ch},{dch},{app},,{s},{a},{e},{dur},{bill},{disp},DOCUMENTATION,{uid},,,{dst_ext},s,{session},{dst},{action},{src_trunk},{dst_trunk},{answered_by}\n"
        )
    }
}

/// The call as a Grandstream UCM writes it: outbound one row; inbound the IVR, the queue and each
/// agent it rang as ForkCDR rows under one Unique ID and one Session.
pub fn grandstream(c: &PbxCall) -> String {
    let uid = format!("{}.{}", 1_772_000_000 + c.id / 100, c.id);
    let session = format!("{uid}-{}", c.id % 97);
    let ch = |k: u64| format!("{:08x}", (c.id * 4 + k) & 0xffff_ffff);
    if !c.inbound {
        let clid = format!("\"Agent {}\" <{}>", c.seat, c.cli);
        let (me, trunk) = (format!("PJSIP/{}-{}", c.seat, ch(0)), format!("PJSIP/{}-{}", c.trunk, ch(1)));
        let row = Gs {
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
