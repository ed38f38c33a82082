//! The call model: every row is a leg of a call. Per exporter, which internal seat a leg belongs to
//! and which way the call went, from the columns each switch documents (docs/calls.md):
//!
//! - Asterisk `cdr_csv`, FreePBX and Grandstream UCM (Asterisk's columns): the channel and
//!   destination channel are classified as a seat (an extension or SIP account), a trunk, a `Local/`
//!   helper channel or a dialplan application; the destination context (`from-internal` vs
//!   `from-trunk`, `from-pstn`, `ext-did…`, `public`) and Grandstream's trunk-name columns tell
//!   inbound legs. Outbound and internal legs belong to the calling seat; inbound legs to the seat
//!   that answered (Grandstream `Answered by` / `Dest Channel Extension`, else the destination
//!   channel's peer). Application legs (queue, IVR, voicemail, conference, the `h` extension) have
//!   no seat.
//! - FreeSWITCH `mod_cdr_csv`: the context tells inbound (`public`); outbound legs belong to the
//!   account code (else the calling extension), inbound legs to an internal destination number.
//! - VICIdial: outbound legs of the agent `user`; the dialer's own users (`VDAD`, `VDCL`) are no seat.
//! - Generic files, Parquet, NDJSON: the operator column as given, a `direction` column when there
//!   is one, else outbound.
//!
//! After loading, [`finish`] counts legs, calls and directions, keeps the legs without a seat out of
//! the per-operator frame (counted, not rejected) and makes the legs one seat has on one call into
//! one call whose talk is the union of theirs.

use super::format::channel_peer;
use anyhow::Result;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Directions, in the order of their codes in the `direction` column (`UInt32`).
pub const DIRECTIONS: [&str; 4] = ["outbound", "inbound", "internal", "unknown"];
pub const OUTBOUND: u32 = 0;
pub const INBOUND: u32 = 1;
pub const INTERNAL: u32 = 2;
pub const UNKNOWN: u32 = 3;

/// A direction text as exports write it → its code (`None`: not a direction word).
pub fn direction_code(text: &str) -> Option<u32> {
    let t: String = text.trim().to_lowercase().chars().filter(|c| c.is_alphanumeric()).collect();
    Some(match t.as_str() {
        "outbound" | "out" | "outgoing" | "o" | "dialout" | "呼出" | "外呼" | "去电" | "主叫" => OUTBOUND,
        "inbound" | "in" | "incoming" | "i" | "呼入" | "来电" | "被叫" => INBOUND,
        "internal" | "local" | "intern" | "extension" | "内部" | "内线" | "分机互拨" => INTERNAL,
        "unknown" | "" => UNKNOWN,
        _ => return None,
    })
}

/// `[calls]`: how seats, trunks and inbound contexts are told apart.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CallModel {
    /// A channel peer or trunk name containing one of these (case-insensitive) is a trunk.
    pub trunk_patterns: Vec<String>,
    /// Internal numbers (extensions) have this many digits, inclusive. Default [2, 6].
    pub internal_digits: [usize; 2],
    /// A destination context starting with one of these (case-insensitive) marks an inbound leg.
    pub inbound_contexts: Vec<String>,
    /// Dialplan applications whose legs are not a seat's talk unless a seat answered them.
    pub applications: Vec<String>,
    /// Operator ids that are a dialer or a system user, never a seat (VICIdial's `VDAD`, `VDCL`).
    pub system_users: Vec<String>,
}

impl Default for CallModel {
    fn default() -> Self {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
        Self {
            trunk_patterns: s(&["trunk", "gw", "gateway", "provider", "carrier", "pstn", "sbc", "itsp", "outbound"]),
            internal_digits: [2, 6],
            inbound_contexts: s(&[
                "from-trunk",
                "from-pstn",
                "from-did",
                "ext-did",
                "from-external",
                "public",
                "incoming",
                "inbound",
            ]),
            applications: s(&[
                "queue",
                "background",
                "playback",
                "voicemail",
                "voicemailmain",
                "confbridge",
                "meetme",
                "read",
                "readexten",
                "waitexten",
                "ivr",
                "hangup",
                "echo",
                "musiconhold",
                "agi",
                "directory",
            ]),
            system_users: s(&["VDAD", "VDCL"]),
        }
    }
}

/// The section as `config init` writes it.
pub const TOML: &str = r#"[calls]
# a channel peer or trunk name containing one of these (case-insensitive) is a trunk
trunk_patterns = ["trunk", "gw", "gateway", "provider", "carrier", "pstn", "sbc", "itsp", "outbound"]
internal_digits = [2, 6]    # extensions have this many digits
# a destination context starting with one of these marks an inbound leg
inbound_contexts = ["from-trunk", "from-pstn", "from-did", "ext-did", "from-external", "public", "incoming", "inbound"]
# dialplan applications whose legs are no seat's talk unless a seat answered
applications = ["queue", "background", "playback", "voicemail", "voicemailmain", "confbridge", "meetme", "read", "readexten", "waitexten", "ivr", "hangup", "echo", "musiconhold", "agi", "directory"]
system_users = ["VDAD", "VDCL"]  # dialer users that are never a seat

"#;

impl CallModel {
    pub fn validate(&self) -> Result<()> {
        let [lo, hi] = self.internal_digits;
        anyhow::ensure!(lo >= 1 && lo <= hi && hi <= 15, "calls.internal_digits must be [low, high] within 1..15");
        Ok(())
    }

    /// An extension number: digits only (a leading `*` or `#` feature code aside), of the
    /// configured length.
    pub fn is_internal_number(&self, s: &str) -> bool {
        let d = s.trim();
        let [lo, hi] = self.internal_digits;
        !d.is_empty() && d.len() >= lo && d.len() <= hi && d.bytes().all(|b| b.is_ascii_digit())
    }

    fn is_trunk_name(&self, s: &str) -> bool {
        self.trunk_patterns.iter().any(|p| contains_ci(s, p))
    }

    fn is_inbound_context(&self, ctx: &str) -> bool {
        let l = ctx.trim().as_bytes();
        self.inbound_contexts
            .iter()
            .any(|p| !p.is_empty() && l.len() >= p.len() && l[..p.len()].eq_ignore_ascii_case(p.as_bytes()))
    }

    fn is_application(&self, app: &str) -> bool {
        let l = app.trim();
        self.applications.iter().any(|a| a.eq_ignore_ascii_case(l))
    }

    pub fn is_system_user(&self, user: &str) -> bool {
        self.system_users.iter().any(|u| u.eq_ignore_ascii_case(user.trim()))
    }

    /// What an Asterisk channel name is.
    fn channel<'a>(&self, ch: Option<&'a str>) -> Chan<'a> {
        let Some(ch) = ch.map(str::trim).filter(|c| !c.is_empty()) else { return Chan::None };
        let Some((tech, rest)) = ch.split_once('/') else { return Chan::App };
        if tech.eq_ignore_ascii_case("local") {
            // `Local/2001@from-queue-0000001;2`: the context it runs in
            let ctx = rest.split_once('@').map_or("", |(_, c)| c);
            return Chan::Local(ctx);
        }
        if ["dahdi", "zap", "dgv", "misdn"].iter().any(|t| tech.eq_ignore_ascii_case(t)) {
            return Chan::Trunk; // FXO / PRI lines (Grandstream: DAHDI FXO ports)
        }
        // `SIP/trunk_1/13800001111` dials through a trunk
        if rest.matches('/').count() >= 1 {
            return Chan::Trunk;
        }
        let Some(peer) = channel_peer(ch) else { return Chan::None };
        if self.is_trunk_name(peer) {
            return Chan::Trunk;
        }
        if peer.bytes().all(|b| b.is_ascii_digit()) && !self.is_internal_number(peer) {
            return Chan::Trunk; // a long number as the peer: a carrier account or an external party
        }
        if peer.parse::<std::net::IpAddr>().is_ok() {
            return Chan::Trunk; // a peer by address (`SIP/203.0.113.5-0000002b`): a provider
        }
        Chan::Seat(peer)
    }
}

/// Whether `hay` contains `needle`, ASCII case ignored, without allocating (this runs for every
/// channel of every leg).
fn contains_ci(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    !n.is_empty() && h.len() >= n.len() && h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// One side of an Asterisk leg.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Chan<'a> {
    None,
    Seat(&'a str),
    Trunk,
    /// A `Local/` helper channel and the context it runs in.
    Local(&'a str),
    /// An application name in the channel column (Grandstream writes `Playback`, `Hangup`, …).
    App,
}

/// Column positions of an Asterisk-like export (Asterisk, FreePBX, Grandstream) or of FreeSWITCH.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LegCols {
    pub exporter: Exporter,
    pub account: Option<usize>,
    pub src: Option<usize>,
    pub dst: Option<usize>,
    pub context: Option<usize>,
    pub channel: Option<usize>,
    pub dstchannel: Option<usize>,
    pub lastapp: Option<usize>,
    pub peeraccount: Option<usize>,
    /// Grandstream `Source Channel Extension`, `Dest Channel Extension`, `Answered by`,
    /// `Action Type`, `Source Trunk Name`, `Destination Trunk Name`.
    pub chan_ext: Option<usize>,
    pub dst_ext: Option<usize>,
    pub answered_by: Option<usize>,
    pub action_type: Option<usize>,
    pub src_trunk: Option<usize>,
    pub dst_trunk: Option<usize>,
    /// FreeSWITCH: caller_id_name (a last resort for the seat).
    pub caller_name: Option<usize>,
    /// 3CX `from_type`, `to_type`, `final_dn`, `final_type` (Extension, Line, Queue, IVR, …).
    pub src_kind: Option<usize>,
    pub dst_kind: Option<usize>,
    pub final_dst: Option<usize>,
    pub final_kind: Option<usize>,
    pub model: std::sync::Arc<CallModel>,
}

impl LegCols {
    /// Asterisk `cdr_csv` by position: accountcode, src, dst, dcontext, clid, channel, dstchannel,
    /// lastapp, …, peeraccount (field 19 of 21).
    pub fn asterisk_positional(model: std::sync::Arc<CallModel>) -> Self {
        LegCols {
            exporter: Exporter::Asterisk,
            account: Some(0),
            src: Some(1),
            dst: Some(2),
            context: Some(3),
            channel: Some(5),
            dstchannel: Some(6),
            lastapp: Some(7),
            peeraccount: Some(18),
            model,
            ..Default::default()
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Exporter {
    #[default]
    Asterisk,
    FreeSwitch,
    Vicidial,
    /// Cisco CUCM: calling / final called number and the originating / destination device names
    /// (`channel`, `dstchannel`).
    Cucm,
    /// 3CX CDR service: `from_dn`, `to_dn`, `final_dn` and their types.
    ThreeCx,
    /// 3CX Call History export: `Caller ID` and `Destination`, extensions written `Ext.2001`.
    ThreeCxHistory,
    /// A SIP proxy's accounting (Kamailio / OpenSIPS `acc`): From user, request user, and an
    /// authenticated user when the table has one (`account`).
    Sip,
}

/// The seat and direction of one leg, from its fields.
pub fn classify<'a>(c: &LegCols, f: &[Cow<'a, str>]) -> (u32, Option<Cow<'a, str>>) {
    let get = |i: Option<usize>| -> Option<&str> {
        i.and_then(|i| f.get(i)).map(|s| s.trim()).filter(|s| !s.is_empty() && !super::format::is_null_token(s))
    };
    let own = |s: &str| Some(Cow::Owned(s.to_string()));
    let m = &*c.model;
    match c.exporter {
        Exporter::Vicidial => {
            let user = get(c.account);
            (OUTBOUND, user.filter(|u| !m.is_system_user(u)).and_then(own))
        }
        Exporter::FreeSwitch => {
            let (ctx, dst) = (get(c.context).unwrap_or(""), get(c.dst));
            let (num, acct) = (get(c.src), get(c.account));
            if m.is_inbound_context(ctx) {
                // the internal extension the call reached, if any
                let seat = dst.filter(|d| m.is_internal_number(d));
                return (INBOUND, seat.and_then(own));
            }
            let dir = if dst.is_some_and(|d| m.is_internal_number(d)) { INTERNAL } else { OUTBOUND };
            let seat = acct
                .or(num.filter(|n| m.is_internal_number(n)))
                .or(get(c.caller_name))
                .filter(|s| !m.is_system_user(s));
            (dir, seat.and_then(own))
        }
        Exporter::Asterisk => asterisk(c, f),
        Exporter::Cucm => cucm(c, get),
        Exporter::ThreeCx => three_cx(c, get),
        Exporter::ThreeCxHistory => {
            let ext = |i: Option<usize>| {
                let v = get(i)?;
                let n = super::format::bare_number(v)?;
                (v.len() >= 4 && v[..4].eq_ignore_ascii_case("ext.") || m.is_internal_number(n)).then_some(n)
            };
            let (from, to) = (ext(c.src), ext(c.dst));
            match (from, to) {
                (Some(f), Some(_)) => (INTERNAL, own(f)),
                (Some(f), None) => (if get(c.dst).is_some() { OUTBOUND } else { UNKNOWN }, own(f)),
                (None, Some(t)) => (INBOUND, own(t)),
                (None, None) => (UNKNOWN, None),
            }
        }
        Exporter::Sip => {
            let external = |n: &str| {
                let d = n.trim_start_matches('+');
                // a withheld caller ID is an outside caller, not an account called `anonymous`
                let withheld = ["anonymous", "unknown", "restricted", "private", "unavailable"]
                    .iter()
                    .any(|w| n.eq_ignore_ascii_case(w));
                withheld || (!d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) && !m.is_internal_number(n))
            };
            let (src, dst) = (get(c.src), get(c.dst));
            let account = get(c.account).filter(|a| !m.is_system_user(a));
            // the caller is a local account when it authenticated, or its From user is no outside number
            let src_local = account.is_some() || src.is_some_and(|s| !external(s));
            let dst_local = dst.is_some_and(|d| !external(d));
            match (src_local, dst_local) {
                (true, false) => (OUTBOUND, account.or(src).and_then(own)),
                (true, true) => (INTERNAL, account.or(src).and_then(own)),
                (false, true) => (INBOUND, dst.and_then(own)),
                (false, false) => (UNKNOWN, None),
            }
        }
    }
}

/// A CUCM device: a phone (`SEP…` and the soft clients) is a seat, a gateway or trunk is the outside.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Phone,
    Outside,
    Other,
}

fn cucm_side(m: &CallModel, device: Option<&str>, number: Option<&str>) -> Side {
    let dev = device.unwrap_or("");
    let prefixed =
        |p: &str| dev.len() > p.len() && dev.is_char_boundary(p.len()) && dev[..p.len()].eq_ignore_ascii_case(p);
    // hardware is named by its MAC (`SEP001122334455`, `ATA…`, an analog port `AN…`); soft clients
    // by their user (`CSFjsmith`); an annunciator (`ANN_2`) or a media resource is no phone
    let by_mac =
        |p: &str| prefixed(p) && dev[p.len()..].len() >= 12 && dev[p.len()..].bytes().all(|b| b.is_ascii_hexdigit());
    if ["SEP", "ATA", "AN"].iter().any(|p| by_mac(p))
        || ["CSF", "BOT", "TCT", "TAB", "CIPC"].iter().any(|p| prefixed(p))
    {
        return Side::Phone;
    }
    if !dev.is_empty() && m.is_trunk_name(dev) {
        return Side::Outside;
    }
    match number {
        Some(n) if n.starts_with('+') || (n.len() >= 7 && n.bytes().all(|b| b.is_ascii_digit())) => Side::Outside,
        // a named device that is no phone (a CTI route point, voicemail or conference port) is
        // no seat, whatever its number; only a record without device names goes by the number
        Some(n) if dev.is_empty() && m.is_internal_number(n) => Side::Phone,
        _ => Side::Other,
    }
}

fn cucm<'f, 'a>(c: &LegCols, get: impl Fn(Option<usize>) -> Option<&'f str>) -> (u32, Option<Cow<'a, str>>) {
    let m = &*c.model;
    let (calling, called) = (get(c.src), get(c.dst));
    let from = cucm_side(m, get(c.channel), calling);
    let to = cucm_side(m, get(c.dstchannel), called);
    let b = |s: Option<&str>| s.map(|s| Cow::Owned(s.to_string()));
    match (from, to) {
        (Side::Phone, Side::Outside) => (OUTBOUND, b(calling)),
        (Side::Phone, Side::Phone) => (INTERNAL, b(calling)),
        (Side::Phone, Side::Other) => (UNKNOWN, b(calling)),
        (Side::Outside, Side::Phone) => (INBOUND, b(called)),
        (Side::Other, Side::Phone) => (INTERNAL, b(called)),
        _ => (UNKNOWN, None),
    }
}

fn three_cx<'f, 'a>(c: &LegCols, get: impl Fn(Option<usize>) -> Option<&'f str>) -> (u32, Option<Cow<'a, str>>) {
    let m = &*c.model;
    let is = |i: Option<usize>, what: &str| get(i).is_some_and(|k| k.eq_ignore_ascii_case(what));
    let b = |s: Option<&str>| s.and_then(super::format::bare_number).map(|s| Cow::Owned(s.to_string()));
    let from_ext = is(c.src_kind, "extension");
    let outside = |k: Option<usize>| is(k, "line") || is(k, "external") || is(k, "trunk");
    let final_ext = is(c.final_kind, "extension");
    let to_ext = is(c.dst_kind, "extension");
    if from_ext {
        let dir = if outside(c.dst_kind) || outside(c.final_kind) {
            OUTBOUND
        } else if to_ext || final_ext {
            INTERNAL
        } else {
            UNKNOWN
        };
        return (dir, b(get(c.src)).filter(|s| !m.is_system_user(s)));
    }
    if outside(c.src_kind) {
        // the extension that took the call: the final one when it was passed on
        let seat = if final_ext {
            b(get(c.final_dst))
        } else if to_ext {
            b(get(c.dst))
        } else {
            None
        };
        return (INBOUND, seat);
    }
    (UNKNOWN, None)
}

fn asterisk<'a>(c: &LegCols, f: &[Cow<'a, str>]) -> (u32, Option<Cow<'a, str>>) {
    let get =
        |i: Option<usize>| -> Option<&str> { i.and_then(|i| f.get(i)).map(|s| s.trim()).filter(|s| !s.is_empty()) };
    let own = |s: &str| Some(Cow::Owned(s.to_string()));
    let m = &*c.model;
    let (mut src, mut dst) = (m.channel(get(c.channel)), m.channel(get(c.dstchannel)));
    // Grandstream names the trunks in columns of their own
    if get(c.src_trunk).is_some() {
        src = Chan::Trunk;
    }
    if get(c.dst_trunk).is_some() && !matches!(dst, Chan::Seat(_)) {
        dst = Chan::Trunk;
    }
    let ctx = get(c.context).unwrap_or("");
    let dst_num = get(c.dst).unwrap_or("");
    // a named peer reached by dialling an outside number is a provider whose name matched no
    // pattern (`SIP/voipms-0000002b` for 13912345678), not a colleague
    let external = |n: &str| n.starts_with('+') || (n.len() >= 7 && n.bytes().all(|b| b.is_ascii_digit()));
    if let Chan::Seat(p) = dst
        && !m.is_internal_number(p)
        && external(dst_num)
        && get(c.answered_by).is_none()
        && get(c.dst_ext).is_none()
    {
        dst = Chan::Trunk;
    }
    let inbound_ctx = m.is_inbound_context(ctx);
    let local_inbound = |lctx: &str| contains_ci(lctx, "queue") || m.is_inbound_context(lctx);
    let dir = match src {
        _ if inbound_ctx && src != Chan::Trunk && matches!(dst, Chan::Trunk) => UNKNOWN,
        Chan::Trunk if dst == Chan::Trunk => UNKNOWN, // trunk to trunk
        Chan::Trunk => INBOUND,
        _ if inbound_ctx => INBOUND,
        Chan::Local(lctx) if local_inbound(lctx) => INBOUND,
        Chan::Seat(_) | Chan::Local(_) => match dst {
            Chan::Trunk => OUTBOUND,
            Chan::Seat(_) => INTERNAL,
            _ if m.is_internal_number(dst_num) || dst_num.starts_with('*') => INTERNAL,
            _ if external(dst_num) => OUTBOUND,
            _ => UNKNOWN,
        },
        Chan::None | Chan::App => UNKNOWN,
    };
    // the `h` extension's row and application legs are no seat's talk
    let app = get(c.lastapp).unwrap_or("");
    let application = m.is_application(app) || dst_num == "h";
    // Grandstream: IVR[6500] / QUEUE[6400] rows answered by the IVR or queue itself
    let action_app = get(c.action_type).and_then(|a| {
        let (kind, rest) = a.split_once('[')?;
        let k = kind.trim().to_ascii_uppercase();
        matches!(k.as_str(), "IVR" | "QUEUE" | "VM" | "VOICEMAIL" | "CONFERENCE" | "RINGGROUP" | "PAGE")
            .then(|| rest.trim_end_matches(']').trim())
    });
    let answered_seat = || {
        let named =
            get(c.answered_by).or(get(c.dst_ext)).filter(|s| m.is_internal_number(s) || matches!(dst, Chan::Seat(_)));
        let seat = match dst {
            Chan::Seat(p) => get(c.peeraccount).or(named).or(Some(p)),
            _ => named.filter(|_| !matches!(dst, Chan::Trunk)),
        };
        // the IVR or queue number answering is no seat
        seat.filter(|s| Some(*s) != action_app && !m.is_system_user(s))
    };
    let seat = match dir {
        INBOUND => answered_seat(),
        OUTBOUND | INTERNAL => match src {
            Chan::Seat(p) if !application || matches!(dst, Chan::Seat(_)) => {
                get(c.account).or(get(c.chan_ext)).or(Some(p))
            }
            _ => None,
        },
        _ => None,
    };
    let seat = if dst_num == "h" { None } else { seat };
    (dir, seat.filter(|s| !m.is_system_user(s)).and_then(own))
}

/// What the call model counted of the loaded legs (after duplicates).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct CallStats {
    pub legs: u64,
    pub calls: u64,
    pub calls_outbound: u64,
    pub calls_inbound: u64,
    pub calls_internal: u64,
    pub calls_unknown: u64,
    /// Legs with no internal seat (IVR-only inbound, trunk to trunk, helper channels): kept out of
    /// the per-operator rules, not rejected.
    pub legs_without_operator: u64,
    /// Legs one seat had on a call it already had a leg of, folded into that call.
    pub legs_merged: u64,
    /// Records of a subscriber's own calls (a carrier's 话单): calls with no operator, judged by
    /// the rules that need none (foreign-cli-fanout, group-invite-conversion). Not in `legs`.
    #[serde(skip_serializing_if = "is_zero")]
    pub subscriber_records: u64,
    /// (call key hash, direction) of each call seen, sorted: `--partitions` reads a call's seat legs
    /// and its seatless legs in different parts, and counts it once by merging these.
    #[serde(skip)]
    keyed: Vec<(u64, u32)>,
    /// Calls by direction of legs without a call key (each its own call).
    #[serde(skip)]
    loose: [u64; 4],
}

/// A call is inbound when any leg is, else outbound, else internal, else unknown.
fn rank(d: u32) -> u8 {
    match d {
        INBOUND => 0,
        OUTBOUND => 1,
        INTERNAL => 2,
        _ => 3,
    }
}

/// FNV-1a of a call key: stable across runs, parts and builds.
fn key_hash(k: &str) -> u64 {
    k.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl CallStats {
    /// A carrier's records: each a call of its own, in the subscriber's direction.
    pub fn add_subscriber_records(&mut self, sub: &DataFrame) -> Result<()> {
        self.subscriber_records += sub.height() as u64;
        let dir = sub.column("direction")?.u32()?;
        for d in dir.iter() {
            self.loose[d.unwrap_or(UNKNOWN).min(3) as usize] += 1;
        }
        self.settle();
        Ok(())
    }

    /// Another part's legs and calls added to these (a call seen in both counts once).
    pub fn add(&mut self, mut o: CallStats) {
        self.legs += o.legs;
        self.legs_without_operator += o.legs_without_operator;
        self.legs_merged += o.legs_merged;
        self.subscriber_records += o.subscriber_records;
        if self.keyed.is_empty() {
            self.keyed = std::mem::take(&mut o.keyed);
        } else {
            self.keyed.append(&mut o.keyed);
        }
        for (a, b) in self.loose.iter_mut().zip(o.loose) {
            *a += b;
        }
        self.settle();
    }

    /// `calls` and its directions from the keyed calls (one per key: inbound over outbound over
    /// internal over unknown) and the loose legs.
    fn settle(&mut self) {
        use rayon::prelude::*;
        self.keyed.par_sort_unstable_by_key(|&(k, d)| (k, rank(d)));
        self.keyed.dedup_by_key(|p| p.0);
        let mut by = self.loose;
        for (_, d) in &self.keyed {
            by[(*d as usize).min(3)] += 1;
        }
        self.calls = by.iter().sum();
        self.calls_outbound = by[0];
        self.calls_inbound = by[1];
        self.calls_internal = by[2];
        self.calls_unknown = by[3];
    }
}

/// Each leg's call as a 64-bit hash: its `call_key`, else its leg id; `None`: the row alone. Hashed
/// in parallel slices from the columns in place (4.5 M Asterisk legs: building a String per key
/// and grouping them in a hash map of vectors took 6 s).
fn call_hashes(frame: &DataFrame) -> Result<Vec<Option<u64>>> {
    let key = frame.column("call_key")?.str()?;
    let leg = frame.column("leg_id")?.str()?;
    let parts = crate::par::slices(frame.height(), |off, len| {
        let (k, l) = (key.slice(off as i64, len), leg.slice(off as i64, len));
        k.iter().zip(l.iter()).map(|(k, l)| k.or(l).map(key_hash)).collect::<Vec<_>>()
    });
    Ok(parts.concat())
}

/// Counts legs, calls and their directions; drops the legs without a seat; folds each seat's legs
/// of one call into one row (talk = the union of the legs' talk intervals, answer the earliest,
/// end the latest; the other fields from the leg that faces the callee, else the one with the most
/// talk). Drops `call_key` and `sequence`, which nothing after loading reads.
pub fn finish(
    frame: DataFrame,
    model: &CallModel,
    dicts: &crate::coded::Dicts,
    trunks: &CallTrunks,
) -> Result<(DataFrame, CallStats)> {
    let n = frame.height();
    let mut st = CallStats { legs: n as u64, ..Default::default() };
    let dir = frame.column("direction")?.u32()?.clone();
    let ops = frame.column("operator_id")?.str()?.clone();
    st.legs_without_operator = ops.null_count() as u64;
    let multi_leg = frame.column("call_key")?.null_count() < n;
    if !multi_leg {
        // every leg is a call: counts by direction, no hashing (the common generic export)
        for arr in dir.downcast_iter() {
            for v in arr.values_iter() {
                st.loose[(*v as usize).min(3)] += 1;
            }
        }
        st.settle();
        let frame = if st.legs_without_operator > 0 { frame.filter(&ops.is_not_null())? } else { frame };
        return Ok((frame.drop_many(["call_key", "sequence"]), st));
    }
    let t0 = std::time::Instant::now();
    let keys = call_hashes(&frame)?;
    crate::diag::trace("calls: keys", t0);
    for (k, d) in keys.iter().zip(dir.iter()) {
        let d = d.unwrap_or(UNKNOWN);
        match k {
            Some(k) => st.keyed.push((*k, d)),
            None => st.loose[d.min(3) as usize] += 1,
        }
    }
    st.settle();
    crate::diag::trace("calls: counted", t0);
    let mut frame = frame;
    call_trunks(&mut frame, &keys, trunks)?;
    crate::diag::trace("calls: trunks", t0);
    let frame = merge(frame, &keys, model, dicts, &mut st)?;
    crate::diag::trace("calls: merged", t0);
    Ok((frame.drop_many(["call_key", "sequence"]), st))
}

/// A seat's outbound leg that reached the trunk through a helper channel (`SIP/2001 → Local/…;1`)
/// names the helper as its trunk; the call's trunk is on its seatless leg (`Local/…;2 →
/// SIP/trunk`). The seat's outbound legs take that trunk, so a domestic trunk is seen whichever
/// way the dialplan routed the call.
fn call_trunks(frame: &mut DataFrame, keys: &[Option<u64>], shared: &CallTrunks) -> Result<()> {
    let Ok(t) = frame.column("trunk") else { return Ok(()) };
    if t.null_count() == t.len() {
        return Ok(());
    }
    // one piece each: `get` on a many-chunk column walks the chunk list for every row
    let trunk = t.str()?.rechunk().into_owned();
    let ops = frame.column("operator_id")?.str()?.rechunk().into_owned();
    let dir = frame.column("direction")?.u32()?.rechunk().into_owned();
    let outbound = |i: usize| dir.get(i) == Some(OUTBOUND);
    let mut guard = shared.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (of_call, names) = &mut *guard;
    // the trunk legs (seatless, outbound) of calls, first one per call, trunk names interned
    for (i, k) in keys.iter().enumerate() {
        if let (None, true, Some(k), Some(t)) = (ops.get(i), outbound(i), k, trunk.get(i)) {
            of_call.entry(*k).or_insert_with(|| match names.iter().position(|n| n == t) {
                Some(p) => p as u32,
                None => {
                    names.push(t.to_string());
                    (names.len() - 1) as u32
                }
            });
        }
    }
    let changes: Vec<(usize, u32)> = keys
        .iter()
        .enumerate()
        .filter(|(i, _)| ops.get(*i).is_some() && outbound(*i))
        .filter_map(|(i, k)| Some((i, *of_call.get(&(*k)?)?)))
        .collect();
    if changes.is_empty() {
        return Ok(());
    }
    let mut new: Vec<Option<&str>> = trunk.iter().collect();
    for (i, t) in changes {
        new[i] = Some(names[t as usize].as_str());
    }
    let new: StringChunked = new.into_iter().collect();
    frame.with_column(new.with_name("trunk".into()).into_column())?;
    Ok(())
}

/// The trunks of calls' trunk legs (seatless, outbound) by call hash. A `--partitions` scan reads
/// every seatless leg in its first part, so the later parts' seat legs find their call's trunk
/// here; the parts share one through [`super::LoadOptions`].
#[derive(Debug, Default)]
pub struct CallTrunks(std::sync::Mutex<(std::collections::HashMap<u64, u32>, Vec<String>)>);

/// A folded call: the row kept, and its talk (the union), answer, start and end.
type Fix = (usize, i64, Option<i64>, Option<i64>, Option<i64>);

/// Seat legs only, each seat's legs of one call folded into one row. The legs of one seat and call
/// are found by sorting (seat, call) hashes, not by a hash map of vectors.
fn merge(
    frame: DataFrame,
    keys: &[Option<u64>],
    model: &CallModel,
    dicts: &crate::coded::Dicts,
    st: &mut CallStats,
) -> Result<DataFrame> {
    use rayon::prelude::*;
    let n = frame.height();
    // one piece each: `get` on a many-chunk column walks the chunk list for every row
    let ops = frame.column("operator_id")?.str()?.rechunk().into_owned();
    // (seat and call hash, row) of every seat leg of a call
    let mut pairs: Vec<(u64, u32)> = (0..n)
        .filter_map(|i| {
            let o = ops.get(i)?;
            let k = keys[i]?;
            Some((k ^ key_hash(o).rotate_left(29).wrapping_mul(0x9E37_79B9_7F4A_7C15), i as u32))
        })
        .collect();
    pairs.par_sort_unstable();
    let mut keep: Vec<bool> = (0..n).map(|i| ops.get(i).is_some()).collect();
    let talk = frame.column("talk_s")?.i64()?.rechunk().into_owned();
    let us = |name: &str| -> Result<Int64Chunked> {
        Ok(frame.column(name)?.to_physical_repr().i64()?.rechunk().into_owned())
    };
    let (start, answer, end) = (us("start_time")?, us("answer_time")?, us("end_time")?);
    // a leg shows the callee a chosen caller ID when it is not the seat's own extension
    let coded = (frame.column("caller_id")?.dtype() == &DataType::UInt32).then(|| dicts.column(&frame, "caller_id"));
    let coded = coded.transpose()?;
    let plain = if coded.is_none() { Some(frame.column("caller_id")?.str()?.clone()) } else { None };
    let shown = |i: usize| {
        let c = match (&coded, &plain) {
            (Some(c), _) => c.get(i),
            (None, Some(p)) => p.get(i),
            _ => None,
        };
        c.is_some_and(|c| Some(c) != ops.get(i) && !model.is_internal_number(c))
    };
    let mut fixes: Vec<Fix> = Vec::new();
    let mut a = 0;
    while a < pairs.len() {
        let mut b = a + 1;
        while b < pairs.len() && pairs[b].0 == pairs[a].0 {
            b += 1;
        }
        if b - a > 1 {
            let g: Vec<usize> = pairs[a..b].iter().map(|p| p.1 as usize).collect();
            st.legs_merged += g.len() as u64 - 1;
            // the leg facing the callee (its caller ID is the one shown: a FreeSWITCH b-leg, not
            // the a-leg with the extension's own number), then the answered one with the most talk
            let best = *g
                .iter()
                .max_by_key(|&&i| {
                    let t = talk.get(i).unwrap_or(0);
                    (shown(i), t > 0, t, std::cmp::Reverse(i))
                })
                .expect("a leg");
            let mut iv: Vec<(i64, i64)> = g
                .iter()
                .filter_map(|&i| {
                    let t = talk.get(i).filter(|t| *t > 0)? * 1_000_000;
                    let a = answer.get(i).or_else(|| Some(end.get(i)? - t))?;
                    Some((a, a + t))
                })
                .collect();
            let union = union_us(&mut iv) / 1_000_000;
            let min = |c: &Int64Chunked| g.iter().filter_map(|&i| c.get(i)).min();
            let max_end = g.iter().filter_map(|&i| end.get(i)).max();
            for &i in &g {
                keep[i] = i == best;
            }
            fixes.push((best, union, min(&answer), min(&start), max_end));
        }
        a = b;
    }
    let mask: BooleanChunked = keep.iter().copied().collect();
    let mut out = if keep.iter().all(|k| *k) { frame.clone() } else { frame.filter(&mask)? };
    if fixes.is_empty() {
        return Ok(out);
    }
    // each kept row's place in the filtered frame
    let mut place = vec![0usize; n];
    let mut p = 0;
    for (i, k) in keep.iter().enumerate() {
        place[i] = p;
        p += usize::from(*k);
    }
    let fixes: Vec<Fix> = fixes.into_iter().map(|(row, t, a, st_, e)| (place[row], t, a, st_, e)).collect();
    let talk: Vec<(usize, Option<i64>)> = fixes.iter().map(|f| (f.0, Some(f.1))).collect();
    let answer: Vec<(usize, Option<i64>)> = fixes.iter().filter(|f| f.2.is_some()).map(|f| (f.0, f.2)).collect();
    let start: Vec<(usize, Option<i64>)> = fixes.iter().filter(|f| f.3.is_some()).map(|f| (f.0, f.3)).collect();
    let end: Vec<(usize, Option<i64>)> = fixes.iter().filter(|f| f.4.is_some()).map(|f| (f.0, f.4)).collect();
    let dt = super::normalize::utc_datetime();
    let c = patch(out.column("talk_s")?, &talk, &DataType::Int64)?;
    out.with_column(c)?;
    for (name, v) in [("answer_time", &answer), ("start_time", &start), ("end_time", &end)] {
        let c = patch(out.column(name)?, v, &dt)?;
        out.with_column(c)?;
    }
    // duration follows the folded start and end
    let (s0, e0) = (out.column("start_time")?.to_physical_repr(), out.column("end_time")?.to_physical_repr());
    let (s0, e0) = (s0.i64()?.rechunk(), e0.i64()?.rechunk());
    let dur: Vec<(usize, Option<i64>)> =
        fixes.iter().map(|f| (f.0, Some((e0.get(f.0).unwrap_or(0) - s0.get(f.0).unwrap_or(0)) / 1_000_000))).collect();
    let c = patch(out.column("duration_s")?, &dur, &DataType::Int64)?;
    out.with_column(c)?;
    Ok(out)
}

/// A copy of an integer (or datetime) column with some rows replaced; copied as one slice when it
/// has no nulls (the rows folded are few, the column millions long).
fn patch(c: &Column, rows: &[(usize, Option<i64>)], dtype: &DataType) -> Result<Column> {
    let phys = c.to_physical_repr();
    let ca = phys.i64()?.rechunk();
    let name = c.name().clone();
    let out = match ca.cont_slice() {
        Ok(sl) if rows.iter().all(|r| r.1.is_some()) => {
            let mut v = sl.to_vec();
            for (i, x) in rows {
                v[*i] = x.unwrap_or_default();
            }
            Int64Chunked::from_vec(name, v)
        }
        _ => {
            let mut v: Vec<Option<i64>> = ca.iter().collect();
            for (i, x) in rows {
                v[*i] = *x;
            }
            Int64Chunked::from_iter_options(name, v.into_iter())
        }
    };
    Ok(out.into_column().cast(dtype)?)
}

/// The length (µs) of the union of intervals (sorted here).
pub fn union_us(iv: &mut [(i64, i64)]) -> i64 {
    iv.sort_unstable();
    let (mut total, mut cur): (i64, Option<(i64, i64)>) = (0, None);
    for &(a, b) in iv.iter() {
        match cur {
            Some((ca, cb)) if a <= cb => cur = Some((ca, cb.max(b))),
            Some((ca, cb)) => {
                total += cb - ca;
                cur = Some((a, b));
            }
            None => cur = Some((a, b)),
        }
    }
    total + cur.map_or(0, |(a, b)| b - a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cucm_devices_and_withheld_sip_callers() {
        let m = CallModel::default();
        assert!(cucm_side(&m, Some("SEP001122334455"), Some("2001")) == Side::Phone);
        assert!(cucm_side(&m, Some("CSFjsmith"), Some("2001")) == Side::Phone);
        assert!(cucm_side(&m, Some("ANN_2"), Some("2001")) == Side::Other, "an annunciator is no phone");
        assert!(cucm_side(&m, Some("CTI_RP_6400"), Some("6400")) == Side::Other);
        assert!(cucm_side(&m, Some("SIPTrunk-PSTN"), Some("13912345678")) == Side::Outside);
        assert!(cucm_side(&m, None, Some("2001")) == Side::Phone, "no device names: by the number");
        let c =
            LegCols { exporter: Exporter::Sip, src: Some(0), dst: Some(1), model: Arc::new(m), ..Default::default() };
        let f = |a: &'static str, b: &'static str| classify(&c, &[Cow::Borrowed(a), Cow::Borrowed(b)]);
        assert_eq!(f("anonymous", "op1001"), (INBOUND, Some(Cow::Borrowed("op1001"))));
        assert_eq!(f("op1001", "13812345678"), (OUTBOUND, Some(Cow::Borrowed("op1001"))));
        assert_eq!(f("+442079460000", "13812345678"), (UNKNOWN, None), "no account and an outside From: no seat");
    }

    fn cols() -> LegCols {
        LegCols::asterisk_positional(Default::default())
    }

    fn leg(acct: &str, dst: &str, ctx: &str, ch: &str, dch: &str, app: &str) -> (u32, Option<String>) {
        let f: Vec<Cow<str>> =
            [acct, "", dst, ctx, "", ch, dch, app].iter().map(|s| Cow::Owned(s.to_string())).collect();
        let (d, s) = classify(&cols(), &f);
        (d, s.map(|s| s.into_owned()))
    }

    #[test]
    fn asterisk_legs() {
        let s = |x: &str| Some(x.to_string());
        // outbound from a seat to a trunk
        assert_eq!(leg("", "13912345678", "from-internal", "SIP/1001-0a", "SIP/gw-0b", "Dial"), (OUTBOUND, s("1001")));
        // through a Local channel: the seat's leg, and the helper's leg to the trunk (no seat)
        assert_eq!(
            leg("", "13912345678", "from-internal", "SIP/2001-01", "Local/13912345678@out-0001;1", "Dial"),
            (OUTBOUND, s("2001"))
        );
        assert_eq!(
            leg("", "13912345678", "out", "Local/13912345678@out-0001;2", "SIP/trunk1-02", "Dial"),
            (OUTBOUND, None)
        );
        // inbound through a queue: the queue leg has no seat, the agent's Local leg has
        assert_eq!(
            leg("", "6400", "ext-queues", "SIP/trunk1-03", "Local/2001@from-queue-0002;1", "Queue"),
            (INBOUND, None)
        );
        assert_eq!(
            leg("", "2001", "from-queue", "Local/2001@from-queue-0002;2", "SIP/2001-04", "Dial"),
            (INBOUND, s("2001"))
        );
        // an IVR-only inbound call; the `h` row; internal
        assert_eq!(leg("", "s", "from-pstn", "SIP/trunk1-05", "", "BackGround"), (INBOUND, None));
        assert_eq!(leg("", "h", "from-internal", "SIP/1001-06", "", "Hangup"), (UNKNOWN, None));
        assert_eq!(leg("", "1002", "from-internal", "SIP/1001-07", "SIP/1002-08", "Dial"), (INTERNAL, s("1001")));
        // trunk to trunk
        assert_eq!(leg("", "13912345678", "from-trunk", "SIP/trunk1-09", "SIP/trunk2-0a", "Dial"), (UNKNOWN, None));
        // an account code names the seat
        assert_eq!(
            leg("agent7", "13912345678", "from-internal", "PJSIP/agent7-0a", "PJSIP/gw-0b", "Dial"),
            (OUTBOUND, s("agent7"))
        );
        // providers named without a pattern, or by address, are trunks; a colleague is not
        assert_eq!(
            leg("", "13912345678", "from-internal", "SIP/2001-01", "SIP/voipms-02", "Dial"),
            (OUTBOUND, s("2001"))
        );
        assert_eq!(
            leg("", "13912345678", "from-internal", "SIP/2001-01", "SIP/203.0.113.5-02", "Dial"),
            (OUTBOUND, s("2001"))
        );
        assert_eq!(leg("", "2002", "from-internal", "SIP/2001-01", "SIP/2002-02", "Dial"), (INTERNAL, s("2001")));
        assert_eq!(leg("", "13912345678", "from-pstn", "SIP/voipms-03", "SIP/2001-04", "Dial"), (INBOUND, s("2001")));
    }

    #[test]
    fn unions() {
        assert_eq!(union_us(&mut [(0, 10), (5, 15), (20, 30)]), 25);
        assert_eq!(union_us(&mut [(20, 30), (0, 100)]), 100);
        assert_eq!(union_us(&mut []), 0);
    }

    #[test]
    fn direction_words() {
        assert_eq!(direction_code("Outbound"), Some(OUTBOUND));
        assert_eq!(direction_code("呼入"), Some(INBOUND));
        assert_eq!(direction_code("internal"), Some(INTERNAL));
        assert_eq!(direction_code("sideways"), None);
    }
}
