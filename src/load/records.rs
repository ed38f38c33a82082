//! Inputs whose records are gathered whole before they become rows: database dumps (MySQL /
//! MariaDB `INSERT`, PostgreSQL `COPY … FROM stdin` and `INSERT`) and SIP accounting (Kamailio /
//! OpenSIPS `acc`, as a table or as syslog `ACC:` lines), whose INVITE and BYE transactions are
//! paired into one call each.
//!
//! The statements of a dump are lexed with `sqlparser`'s tokenizer (its MySQL dialect reads
//! backslash escapes, its PostgreSQL one doubled quotes); `COPY` data is tab-separated text with
//! `\N` for NULL, read here.

use super::format::{self, Format, NON_CALL_SIP, NotACall, norm};
use super::split::{QuoteMode, for_each_line, split_fields};
use anyhow::{Context, Result, bail};
use sqlparser::tokenizer::{Token, Tokenizer};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

/// One record: the line it was read from and its fields (a NULL is empty), borrowed from the
/// text where they are written as they are (a syslog's or a table's values), owned where they
/// were unescaped (a dump's strings): owning every value cost a million-call Kamailio log
/// seconds and a gigabyte.
#[derive(Clone, Debug, PartialEq)]
pub struct Record<'a> {
    pub line: u64,
    pub fields: Vec<Cow<'a, str>>,
}

/// A table of records with named columns: a dump's table, an `acc` CSV, or the calls paired from
/// SIP transactions.
#[derive(Clone, Debug, Default)]
pub struct Table<'a> {
    pub name: String,
    pub header: Vec<String>,
    pub rows: Vec<Record<'a>>,
    /// The format its columns are read as (None: not a CDR table).
    pub format: Option<Format>,
    pub not_calls: BTreeMap<NotACall, u64>,
}

pub const AUTH_CHALLENGE: NotACall = "SIP authentication challenges (401/407) with no call after them";
pub const ORPHAN_BYE: NotACall = "BYE without its INVITE (the call began before this file)";
pub const SYSLOG_OTHER: NotACall = "syslog lines that are no ACC record";
pub const IN_DIALOG: NotACall = "SIP rows of a call already counted (BYE, ACK, CANCEL, re-INVITE)";

/// The tables of a dump or the paired calls of SIP accounting.
pub fn read(text: &str, format: Format, delim: u8) -> Result<Vec<Table<'_>>> {
    match format {
        Format::Sql => {
            let mut tables = read_dump(text)?;
            for t in &mut tables {
                let line = t.header.join(",");
                t.format = format::sniff(&line, &format::CDR).ok().map(|s| s.format);
                if t.format == Some(Format::Kamailio) && has_method(&t.header) {
                    *t = pair(std::mem::take(t));
                }
            }
            Ok(tables)
        }
        Format::Kamailio => {
            let table = if is_acc_syslog(text) { read_syslog(text) } else { read_csv(text, delim) };
            // transactions are paired into calls; a dialog CDR table (`cdrs`) has one row a call
            if has_method(&table.header) {
                Ok(vec![pair(table)])
            } else {
                Ok(vec![Table { format: Some(Format::Kamailio), ..table }])
            }
        }
        _ => bail!("{} is not read as records", format.name()),
    }
}

/// Whether a table's columns include the SIP method (transactions to pair, not one row a call).
fn has_method(header: &[String]) -> bool {
    header.iter().any(|h| matches!(norm(h).as_str(), "method" | "sipmethod"))
}

/// Whether a text is a syslog with Kamailio/OpenSIPS `ACC:` records among its first 200 lines
/// (other messages of the proxy, or of other daemons, may come first).
pub fn is_acc_syslog(text: &str) -> bool {
    text.lines().take(200).any(|l| l.contains("ACC: ") && (l.contains("method=") || l.contains("call_id=")))
}

/// A field without surrounding white space, still borrowed when it was.
fn trim_cow(f: Cow<'_, str>) -> Cow<'_, str> {
    match f {
        Cow::Borrowed(b) => Cow::Borrowed(b.trim()),
        Cow::Owned(o) if o.trim().len() == o.len() => Cow::Owned(o),
        Cow::Owned(o) => Cow::Owned(o.trim().to_string()),
    }
}

/// A delimited file with a header line.
fn read_csv(text: &str, delim: u8) -> Table<'_> {
    let mut t = Table { name: "acc".into(), ..Default::default() };
    let mut fields: Vec<Cow<str>> = Vec::new();
    for_each_line(text, |n, _, line| {
        if line.trim().is_empty() {
            return;
        }
        split_fields(line, delim, QuoteMode::Literal, &mut fields);
        if t.header.is_empty() {
            t.header = fields.iter().map(|f| f.trim().to_string()).collect();
        } else {
            let v = fields.drain(..).map(trim_cow).collect();
            t.rows.push(Record { line: n, fields: v });
        }
    });
    t
}

/// Kamailio's syslog lines: `… ACC: transaction answered: timestamp=…;method=INVITE;…;call_id=…`.
/// Read in line chunks in parallel (a million calls' log: 2.9 s alone); the keys each chunk met
/// are then made one list.
fn read_syslog(text: &str) -> Table<'_> {
    use rayon::prelude::*;
    struct Part<'a> {
        names: Vec<String>,
        rows: Vec<Record<'a>>,
        other: u64,
    }
    let chunks = super::split::line_chunks_then(text, rayon::current_num_threads() * 4, |_, _| {});
    let parts: Vec<Part> = chunks
        .par_iter()
        .map(|&(a, b, first)| {
            let mut p = Part { names: Vec::new(), rows: Vec::new(), other: 0 };
            super::split::for_each_line_from(&text[a..b], first, |n, _, line| {
                syslog_line(n, line, &mut p.names, &mut p.rows, &mut p.other)
            });
            p
        })
        .collect();
    let mut names: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    let mut other = 0;
    for p in parts {
        other += p.other;
        let map: Vec<usize> = p
            .names
            .iter()
            .map(|k| {
                names.iter().position(|x| x == k).unwrap_or_else(|| {
                    names.push(k.clone());
                    names.len() - 1
                })
            })
            .collect();
        let same = map.iter().enumerate().all(|(i, m)| i == *m);
        for mut r in p.rows {
            if !same {
                let mut f = vec![Cow::Borrowed(""); names.len()];
                for (i, v) in r.fields.into_iter().enumerate() {
                    f[map[i]] = v;
                }
                r.fields = f;
            }
            rows.push(r);
        }
    }
    // a key first seen on a later line: the earlier rows lack it
    let width = names.len();
    for r in &mut rows {
        r.fields.resize(width, Cow::Borrowed(""));
    }
    let mut t = Table { name: "acc (syslog)".into(), header: names, rows, ..Default::default() };
    if other > 0 {
        t.not_calls.insert(SYSLOG_OTHER, other);
    }
    t
}

/// One syslog line: an `ACC:` record's `key=value;…` pairs as a row (keys by their place in
/// `names`, renamed as the acc table names them), else counted in `other`.
fn syslog_line<'a>(n: u64, line: &'a str, names: &mut Vec<String>, rows: &mut Vec<Record<'a>>, other: &mut u64) {
    fn rename(k: &str) -> &str {
        match k {
            "call_id" => "callid",
            "code" => "sip_code",
            "reason" => "sip_reason",
            "timestamp" => "time",
            other => other,
        }
    }
    let Some(at) = line.find("ACC: ") else {
        // the proxy's (and other daemons') other messages in the same log
        *other += u64::from(!line.trim().is_empty());
        return;
    };
    let rest = &line[at + 5..];
    let kv = rest.split_once(": ").map_or(rest, |(_, kv)| kv);
    let mut row: Vec<Cow<str>> = vec![Cow::Borrowed(""); names.len()];
    let mut any = false;
    // `key=value;…` (Kamailio, OpenSIPS); OpenSER 1.x wrote `key=value, …`
    let sep = if kv.contains(';') || !kv.contains(", ") { ";" } else { ", " };
    for pair in kv.split(sep) {
        let Some((k, v)) = pair.split_once('=') else { continue };
        let k = rename(k.trim());
        let i = names.iter().position(|x| x == k).unwrap_or_else(|| {
            names.push(k.to_string());
            names.len() - 1
        });
        if i >= row.len() {
            row.resize(i + 1, Cow::Borrowed(""));
        }
        row[i] = Cow::Borrowed(v.trim());
        any = true;
    }
    if any {
        rows.push(Record { line: n, fields: row });
    }
}

/// The columns of the calls [`pair`] makes (read with the `kamailio` layout).
pub const PAIRED: [&str; 15] = [
    "callid",
    "src_user",
    "src_domain",
    "src_ip",
    "dst_ouser",
    "dst_user",
    "dst_domain",
    "auth_user",
    "start_time",
    "answer_time",
    "end_time",
    "sip_code",
    "sip_reason",
    "disposition",
    "talk_s",
];

/// SIP transactions → calls: per Call-ID, the answered INVITE (else the last failed one) gives the
/// start, answer and parties; the BYE gives the end. REGISTER, MESSAGE, OPTIONS and the like are no
/// calls and are counted apart; so are BYEs whose INVITE is not in the file.
pub fn pair<'a>(t: Table<'a>) -> Table<'a> {
    let hdr: Vec<String> = t.header.iter().map(|h| norm(h)).collect();
    let at = |names: &[&str]| names.iter().find_map(|n| hdr.iter().position(|h| h == n));
    let (method, callid, code, time) =
        (at(&["method", "sipmethod"]), at(&["callid"]), at(&["sipcode", "code"]), at(&["time", "timestamp"]));
    let reason = at(&["sipreason", "reason"]);
    let cols: Vec<Option<usize>> = [
        at(&["srcuser", "fromuser"]),
        at(&["srcdomain", "fromdomain"]),
        at(&["srcip"]),
        at(&["dstouser", "touser"]),
        at(&["dstuser", "ruser"]),
        at(&["dstdomain"]),
        at(&["authuser", "acctuser", "username"]),
    ]
    .into();
    let (src_uri, dst_uri) = (at(&["srcuri", "fromuri"]), at(&["dsturi", "ruri", "touri"]));
    let (duration, created) = (at(&["duration"]), at(&["created"]));
    let mut out = Table { name: t.name.clone(), header: PAIRED.iter().map(|s| s.to_string()).collect(), ..t };
    out.format = Some(Format::Kamailio);
    let get = |r: &Record<'a>, i: Option<usize>| -> Cow<'a, str> {
        i.and_then(|i| r.fields.get(i)).cloned().unwrap_or_default()
    };
    #[derive(Default)]
    struct Call {
        ok: Option<usize>,
        failed: Option<usize>,
        challenges: u64,
        bye: Option<usize>,
        extra: u64,
    }
    let mut calls: Vec<Call> = Vec::new();
    // Call-IDs as their text in the rows (borrowed from the log, or owned by a row of the dump)
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    let rows = std::mem::take(&mut out.rows);
    let mut paired: Vec<Record<'a>> = Vec::with_capacity(rows.len() / 2);
    for (i, r) in rows.iter().enumerate() {
        let m = get(r, method).to_ascii_uppercase();
        if !matches!(m.as_str(), "INVITE" | "BYE" | "ACK" | "CANCEL" | "PRACK" | "UPDATE" | "CALL" | "") {
            *out.not_calls.entry(NON_CALL_SIP).or_default() += 1;
            continue;
        }
        let id: &str = callid.and_then(|i| r.fields.get(i)).map_or("", |f| f.as_ref());
        let k = *by_id.entry(id).or_insert_with(|| {
            calls.push(Call::default());
            calls.len() - 1
        });
        let c = &mut calls[k];
        let code: u32 = get(r, code).parse().unwrap_or(0);
        match m.as_str() {
            "INVITE" | "CALL" | "" if (200..300).contains(&code) && c.ok.is_none() => c.ok = Some(i),
            "INVITE" | "CALL" | "" if code == 401 || code == 407 => c.challenges += 1,
            "INVITE" | "CALL" | "" if c.ok.is_none() && code >= 300 => {
                // a retried INVITE that failed again: the last failure stands for the call
                c.extra += u64::from(c.failed.is_some());
                c.failed = Some(i);
            }
            "BYE" if c.bye.is_none() => c.bye = Some(i),
            _ => c.extra += 1,
        }
    }
    for c in calls {
        let Some(inv) = c.ok.or(c.failed) else {
            let why = if c.challenges > 0 { AUTH_CHALLENGE } else { ORPHAN_BYE };
            *out.not_calls.entry(why).or_default() += c.challenges + c.extra + u64::from(c.bye.is_some());
            continue;
        };
        let r = &rows[inv];
        let answered = c.ok.is_some();
        let code: u32 = get(r, code).parse().unwrap_or(0);
        let disposition = match code {
            200..=299 => "ANSWERED",
            486 | 600 => "BUSY",
            408 | 480 | 487 => "NO ANSWER",
            _ => "FAILED",
        };
        // acc logs at the final reply: the answer; OpenSIPS' CDR mode adds when the INVITE came
        // (`created`) and the call's `duration` on the one row it writes a call
        let t0 = get(r, time);
        let mut fields: Vec<Cow<'a, str>> = vec![get(r, callid)];
        fields.extend(cols.iter().map(|i| get(r, *i)));
        // users logged only inside URIs (`src_uri`, `dst_uri`: `sip:1001@host`)
        for (f, uri) in [(1, src_uri), (5, dst_uri)] {
            if fields[f].is_empty() {
                fields[f] = Cow::Owned(uri_user(&get(r, uri)).to_string());
            }
        }
        if fields[4].is_empty() {
            fields[4] = fields[5].clone(); // no To user logged: the request user
        }
        let talk = get(r, duration);
        let end = match (answered, c.bye) {
            (true, Some(b)) => get(&rows[b], time),
            (true, None) => Cow::Borrowed(""),
            (false, _) => t0.clone(),
        };
        let created = get(r, created);
        let start = if created.is_empty() || created.starts_with("0000") { t0.clone() } else { created };
        fields.extend([
            start,
            if answered { t0 } else { Cow::Borrowed("") },
            end,
            Cow::Owned(code.to_string()),
            get(r, reason),
            Cow::Borrowed(disposition),
            if answered && c.bye.is_none() { talk } else { Cow::Borrowed("") },
        ]);
        let folded =
            c.extra + c.challenges + u64::from(c.bye.is_some()) + u64::from(c.ok.is_some() && c.failed.is_some());
        if folded > 0 {
            *out.not_calls.entry(IN_DIALOG).or_default() += folded;
        }
        paired.push(Record { line: r.line, fields });
    }
    paired.sort_by_key(|r| r.line);
    out.rows = paired;
    out
}

/// `sip:1001@pbx.local;transport=udp` → `1001`; a bare user is itself.
fn uri_user(uri: &str) -> &str {
    let u = uri.trim().trim_start_matches('<');
    let u = ["sip:", "sips:", "tel:"].iter().find_map(|p| u.strip_prefix(p)).unwrap_or(u);
    u.split(['@', ';', '>']).next().unwrap_or("")
}

/// Which SQL a dump is written in.
#[derive(Clone, Copy, PartialEq)]
enum Dialect {
    MySql,
    Postgres,
}

/// The tables of a MySQL/MariaDB or PostgreSQL dump with their rows.
fn read_dump(text: &str) -> Result<Vec<Table<'_>>> {
    use rayon::prelude::*;
    let pg = text.contains("PostgreSQL database dump") || text.lines().any(|l| l.starts_with("COPY "));
    let dialect = if pg { Dialect::Postgres } else { Dialect::MySql };
    let mut tables: Vec<Table> = Vec::new();
    let mut stmt = String::new();
    let mut stmt_line = 0u64;
    let mut copy: Option<usize> = None;
    let mut err: Option<anyhow::Error> = None;
    // INSERTs are lexed afterwards, in parallel (mysqldump writes each on one line of ~1 MB)
    let mut inserts: Vec<(u64, Cow<str>)> = Vec::new();
    let is_insert = |s: &str| {
        let h = s.trim_start().as_bytes();
        h.len() > 7 && (h[..6].eq_ignore_ascii_case(b"INSERT") || h[..7].eq_ignore_ascii_case(b"REPLACE"))
    };
    for_each_line(text, |n, _, line| {
        if err.is_some() {
            return;
        }
        if let Some(t) = copy {
            if line == "\\." {
                copy = None;
            } else {
                let fields = line.split('\t').map(unescape_copy).collect();
                tables[t].rows.push(Record { line: n, fields });
            }
            return;
        }
        let l = line.trim();
        if stmt.is_empty() && (l.is_empty() || l.starts_with("--") || l.starts_with('#')) {
            return;
        }
        let ends = l.ends_with(';');
        if stmt.is_empty() && ends {
            // a statement on a line of its own: borrowed, not copied
            if is_insert(line) {
                inserts.push((n, Cow::Borrowed(line)));
            } else if let Err(e) = statement(line, n, dialect, &mut tables).map(|c| copy = c) {
                err = Some(e.context(format!("line {n}")));
            }
            return;
        }
        if stmt.is_empty() {
            stmt_line = n;
        } else {
            stmt.push('\n');
        }
        stmt.push_str(line);
        if !ends {
            return;
        }
        let s = std::mem::take(&mut stmt);
        if is_insert(&s) {
            inserts.push((stmt_line, Cow::Owned(s)));
        } else {
            match statement(&s, stmt_line, dialect, &mut tables) {
                Ok(c) => copy = c,
                Err(e) => err = Some(e.context(format!("line {stmt_line}"))),
            }
        }
    });
    if let Some(e) = err {
        return Err(e);
    }
    if !stmt.trim().is_empty() && !stmt.trim_start().starts_with("/*") {
        bail!("line {stmt_line}: a statement without its closing `;` (a dump cut short?)");
    }
    let lexed: Vec<Vec<Table>> = inserts
        .par_iter()
        .map(|(line, s)| {
            let mut one = Vec::new();
            statement(s, *line, dialect, &mut one).with_context(|| format!("line {line}"))?;
            Ok(one)
        })
        .collect::<Result<_>>()?;
    for one in lexed {
        for t in one {
            let i = table_index(&mut tables, &t.name);
            if !t.header.is_empty() {
                tables[i].header = t.header;
            }
            tables[i].rows.extend(t.rows);
        }
    }
    Ok(tables)
}

/// PostgreSQL `COPY` text: `\N` is NULL, backslash escapes.
fn unescape_copy(f: &str) -> Cow<'_, str> {
    if f == "\\N" {
        return Cow::Borrowed("");
    }
    if !f.contains('\\') {
        return Cow::Borrowed(f);
    }
    let mut out = String::with_capacity(f.len());
    let mut it = f.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(o) => out.push(o),
            None => {}
        }
    }
    Cow::Owned(out)
}

fn table_index(tables: &mut Vec<Table<'_>>, name: &str) -> usize {
    let bare = name.rsplit('.').next().unwrap_or(name).to_string();
    tables.iter().position(|t| t.name == bare).unwrap_or_else(|| {
        tables.push(Table { name: bare, ..Default::default() });
        tables.len() - 1
    })
}

/// One statement of a dump: `CREATE TABLE` names a table's columns, `INSERT` adds rows, `COPY`
/// starts a block of rows (returned: the table they go to). Anything else is passed over.
fn statement(s: &str, line: u64, dialect: Dialect, tables: &mut Vec<Table<'_>>) -> Result<Option<usize>> {
    let head: String = s.trim_start().chars().take(12).collect::<String>().to_ascii_uppercase();
    let wanted = ["CREATE TABLE", "INSERT INTO ", "INSERT IGNOR", "REPLACE INTO", "COPY "];
    if !wanted.iter().any(|w| head.starts_with(w)) {
        return Ok(None);
    }
    let tokens = match dialect {
        Dialect::MySql => Tokenizer::new(&sqlparser::dialect::MySqlDialect {}, s).tokenize(),
        Dialect::Postgres => Tokenizer::new(&sqlparser::dialect::PostgreSqlDialect {}, s).tokenize(),
    }
    .map_err(|e| anyhow::anyhow!("cannot read the statement: {e}"))?;
    let toks: Vec<&Token> = tokens.iter().filter(|t| !matches!(t, Token::Whitespace(_))).collect();
    let word = |t: &Token| if let Token::Word(w) = t { Some(w.value.clone()) } else { None };
    let upper = |i: usize| toks.get(i).and_then(|t| word(t)).map(|w| w.to_ascii_uppercase()).unwrap_or_default();
    // the (possibly schema-qualified) name starting at token i, and the token after it
    let name_at = |mut i: usize| {
        let mut name = String::new();
        while let Some(w) = toks.get(i).and_then(|t| word(t)) {
            name.push_str(&w);
            if toks.get(i + 1) == Some(&&Token::Period) {
                name.push('.');
                i += 2;
            } else {
                return (name, i + 1);
            }
        }
        (name, i)
    };
    match upper(0).as_str() {
        "CREATE" => {
            let mut i = 2;
            if upper(2) == "IF" {
                i = 5;
            }
            let (name, mut i) = name_at(i);
            let t = table_index(tables, &name);
            let mut cols = Vec::new();
            let mut depth = 0;
            let mut expect_name = false;
            while let Some(tok) = toks.get(i) {
                match tok {
                    Token::LParen => {
                        depth += 1;
                        expect_name = depth == 1;
                    }
                    Token::RParen => depth -= 1,
                    Token::Comma if depth == 1 => expect_name = true,
                    Token::Word(w) if expect_name => {
                        let u = w.value.to_ascii_uppercase();
                        let constraint = w.quote_style.is_none()
                            && [
                                "PRIMARY",
                                "KEY",
                                "UNIQUE",
                                "INDEX",
                                "CONSTRAINT",
                                "FOREIGN",
                                "FULLTEXT",
                                "CHECK",
                                "SPATIAL",
                            ]
                            .contains(&u.as_str());
                        if !constraint {
                            cols.push(w.value.clone());
                        }
                        expect_name = false;
                    }
                    _ => expect_name = false,
                }
                i += 1;
            }
            tables[t].header = cols;
            Ok(None)
        }
        "COPY" => {
            let (name, i) = name_at(1);
            let t = table_index(tables, &name);
            let cols = column_list(&toks, i);
            if !cols.is_empty() {
                tables[t].header = cols;
            }
            let from_stdin = s.to_ascii_uppercase().contains("FROM STDIN");
            Ok(from_stdin.then_some(t))
        }
        _ => {
            // INSERT [IGNORE] INTO name [(cols)] VALUES (…), (…);
            let mut i = 1;
            while !matches!(upper(i).as_str(), "INTO" | "") {
                i += 1;
            }
            let (name, i) = name_at(i + 1);
            let t = table_index(tables, &name);
            let cols = column_list(&toks, i);
            if !cols.is_empty() {
                tables[t].header = cols;
            }
            let Some(v) = (i..toks.len()).find(|&k| upper(k) == "VALUES") else {
                bail!("INSERT into {name} without VALUES");
            };
            for fields in tuples(&toks[v + 1..]).with_context(|| format!("INSERT into {name}"))? {
                tables[t].rows.push(Record { line, fields: fields.into_iter().map(Cow::Owned).collect() });
            }
            Ok(None)
        }
    }
}

/// `(a, b, c)` at token `i`: the names; else none.
fn column_list(toks: &[&Token], i: usize) -> Vec<String> {
    let mut cols = Vec::new();
    if toks.get(i) != Some(&&Token::LParen) {
        return cols;
    }
    for t in &toks[i + 1..] {
        match t {
            Token::Word(w) => cols.push(w.value.clone()),
            Token::DoubleQuotedString(s) => cols.push(s.clone()),
            Token::RParen => break,
            _ => {}
        }
    }
    cols
}

/// The value tuples of an INSERT: text as written (escapes resolved), NULL as empty.
fn tuples(toks: &[&Token]) -> Result<Vec<Vec<String>>> {
    let mut out = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut depth = 0;
    let mut neg = false;
    for t in toks {
        match t {
            Token::LParen => {
                depth += 1;
                if depth == 1 {
                    row = Vec::new();
                }
            }
            Token::RParen => {
                depth -= 1;
                if depth == 0 {
                    out.push(std::mem::take(&mut row));
                }
            }
            Token::Minus => neg = true,
            Token::Comma | Token::SemiColon | Token::EOF => {}
            _ if depth == 0 => {}
            Token::Number(n, _) => row.push(if std::mem::take(&mut neg) { format!("-{n}") } else { n.clone() }),
            Token::SingleQuotedString(s)
            | Token::DoubleQuotedString(s)
            | Token::EscapedStringLiteral(s)
            | Token::NationalStringLiteral(s) => row.push(s.clone()),
            Token::Word(w) if w.value.eq_ignore_ascii_case("null") => row.push(String::new()),
            // a character-set introducer before a string (`_binary '…'`, `_utf8mb4 '…'`)
            Token::Word(w) if w.value.starts_with('_') && w.quote_style.is_none() => {}
            Token::Word(w) => row.push(w.value.clone()),
            Token::HexStringLiteral(h) => row.push(h.clone()),
            other => bail!("unexpected {other} in VALUES"),
        }
    }
    anyhow::ensure!(depth == 0, "VALUES with an unclosed tuple");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_insert_with_escapes_and_nulls() {
        let dump = "-- MySQL dump 10.13\nCREATE TABLE `cdr` (\n  `calldate` datetime NOT NULL,\n  `clid` varchar(80) NOT NULL DEFAULT '',\n  `src` varchar(80),\n  PRIMARY KEY (`calldate`)\n) ENGINE=InnoDB;\nINSERT INTO `cdr` VALUES ('2026-03-02 08:01:00','\\\"Li\\\" <2001>',NULL),('2026-03-02 08:02:00','O\\'Brien <2002>','2002');\n";
        let t = read(dump, Format::Sql, b',').unwrap();
        assert_eq!(t[0].header, ["calldate", "clid", "src"]);
        assert_eq!(t[0].rows.len(), 2);
        assert_eq!(t[0].rows[0].fields, ["2026-03-02 08:01:00", "\"Li\" <2001>", ""]);
        assert_eq!(t[0].rows[1].fields[1], "O'Brien <2002>");
        assert_eq!(t[0].rows[1].line, 8);
    }

    #[test]
    fn charset_introducers_and_old_comma_separated_acc_lines() {
        let dump =
            "INSERT INTO `cdr` (`calldate`,`src`,`userfield`) VALUES ('2026-03-02 08:01:00',_binary '2001',X'4142');\n";
        let t = read(dump, Format::Sql, b',').unwrap();
        assert_eq!(t[0].rows[0].fields, ["2026-03-02 08:01:00", "2001", "4142"]);
        let log = "Mar  2 08:01:05 sip openser[1]: ACC: transaction answered: timestamp=1772438465, method=INVITE, call_id=c1, code=200, src_user=op1\n";
        let t = read(log, Format::Kamailio, b',').unwrap().remove(0);
        assert_eq!(t.rows.len(), 1);
        assert_eq!((t.rows[0].fields[0].as_ref(), t.rows[0].fields[1].as_ref()), ("c1", "op1"));
    }

    #[test]
    fn postgres_copy_and_doubled_quotes() {
        let dump = "--\n-- PostgreSQL database dump\n--\nCOPY public.cdr (calldate, src, dst) FROM stdin;\n2026-03-02 08:01:00\t2001\t\\N\n\\.\nINSERT INTO public.cdr (calldate, src, dst) VALUES ('2026-03-02 09:00:00', 'O''Neil', '139');\n";
        let t = read(dump, Format::Sql, b',').unwrap();
        assert_eq!(t[0].header, ["calldate", "src", "dst"]);
        assert_eq!(t[0].rows[0].fields, ["2026-03-02 08:01:00", "2001", ""]);
        assert_eq!(t[0].rows[1].fields[1], "O'Neil");
    }

    #[test]
    fn opensips_cdr_mode_rows_carry_their_own_duration_and_uris() {
        // OpenSIPS `do_accounting("db", "cdr")`: one INVITE row a call with duration, setuptime,
        // created, and the parties only as URIs
        let csv = "method,from_tag,to_tag,callid,sip_code,sip_reason,time,duration,setuptime,created,src_uri,dst_uri\n\
INVITE,a,b,c1,200,OK,2026-03-02 08:01:05,120,5,2026-03-02 08:01:00,sip:op1001@farm.example,sip:13812345678@gw.example\n";
        let t = read(csv, Format::Kamailio, b',').unwrap().remove(0);
        let f = &t.rows[0].fields;
        assert_eq!((f[1].as_ref(), f[5].as_ref()), ("op1001", "13812345678"));
        assert_eq!((f[8].as_ref(), f[9].as_ref(), f[10].as_ref()), ("2026-03-02 08:01:00", "2026-03-02 08:01:05", ""));
        assert_eq!(f[14], "120", "no BYE row: the call's own duration is its talk");
    }

    #[test]
    fn sip_transactions_pair_into_calls() {
        let csv = "method,from_tag,to_tag,callid,sip_code,sip_reason,time,src_user,src_domain,src_ip,dst_ouser,dst_user,dst_domain\n\
REGISTER,a,,r1,200,OK,2026-03-02 08:00:00,op1,farm.example,203.0.113.9,,op1,farm.example\n\
INVITE,a,b,c1,200,OK,2026-03-02 08:01:05,op1,farm.example,203.0.113.9,13812345678,13812345678,farm.example\n\
BYE,a,b,c1,200,OK,2026-03-02 08:03:05,op1,farm.example,203.0.113.9,13812345678,13812345678,farm.example\n\
INVITE,c,,c2,486,Busy Here,2026-03-02 08:04:00,op1,farm.example,203.0.113.9,13912345678,13912345678,farm.example\n";
        let t = read(csv, Format::Kamailio, b',').unwrap().remove(0);
        assert_eq!(t.rows.len(), 2);
        let f = &t.rows[0].fields;
        assert_eq!(
            (f[8].as_ref(), f[9].as_ref(), f[10].as_ref()),
            ("2026-03-02 08:01:05", "2026-03-02 08:01:05", "2026-03-02 08:03:05")
        );
        assert_eq!(t.rows[1].fields[13], "BUSY");
        assert_eq!(t.not_calls[NON_CALL_SIP], 1);
        assert_eq!(t.not_calls[IN_DIALOG], 1);
    }
}
