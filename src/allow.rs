//! The allowlist: numbers, seats, networks and groups a desk knows to be legitimate (a bank's
//! overseas call centre, an international BPO). A finding an entry covers is not dropped: the scan
//! moves it from findings.* to suppressed.csv with the entry that matched, so the record stays.
//!
//! Entries come from `--allow FILE` (CSV with the header `kind,value,reason,author,expires`, or a
//! TOML file of `[[allow]]` tables) and from the config's `[[allow]]` tables. Each has a kind
//! (`operator`, `cli`, `cli_prefix`, `ip`, `group`), a value, a reason, an author and an expiry
//! date (inclusive, local day).
//!
//! A finding names entities of each kind: its operator (and the operators or members its evidence
//! lists), the caller IDs its evidence lists (`clis`, `pool`, `shared_clis`; a fan-out finding's
//! subject), the groups (`groups`), and the source IPs of its operators' calls. A finding is
//! suppressed when, for some kind, it names at least one entity of that kind and **every** one of
//! them is covered by an entry valid on the finding's day: an operator who showed the bank's number
//! and five others is still reported.

use anyhow::{Context, Result};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Operator,
    Cli,
    CliPrefix,
    Ip,
    Group,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Operator => "operator",
            Kind::Cli => "cli",
            Kind::CliPrefix => "cli_prefix",
            Kind::Ip => "ip",
            Kind::Group => "group",
        }
    }
}

/// One allowlist entry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub kind: Kind,
    /// An operator id; a caller ID (`+44 20 7946 0000`: spaces and dashes ignored); a prefix of
    /// one; an IP address or network (`203.0.113.0/24`); a group id.
    pub value: String,
    pub reason: String,
    pub author: String,
    /// The last local day the entry holds.
    pub expires: NaiveDate,
    /// Where the entry was written (`FILE:LINE`, or `config [[allow]] #N`).
    #[serde(skip)]
    pub source: String,
}

impl Entry {
    fn check(&self) -> Result<()> {
        anyhow::ensure!(!self.value.trim().is_empty(), "{}: empty value", self.source);
        anyhow::ensure!(!self.reason.trim().is_empty(), "{}: a reason is required", self.source);
        anyhow::ensure!(!self.author.trim().is_empty(), "{}: an author is required", self.source);
        match self.kind {
            Kind::Ip => {
                net(&self.value)
                    .with_context(|| format!("{}: {:?} is no IP address or network", self.source, self.value))?;
            }
            Kind::Cli | Kind::CliPrefix => anyhow::ensure!(
                digits(&self.value).len() >= 3,
                "{}: caller ID {:?} has fewer than 3 digits",
                self.source,
                self.value
            ),
            _ => {}
        }
        Ok(())
    }

    /// One line for messages and suppressed.csv.
    pub fn describe(&self) -> String {
        format!("{} {} ({}; {}, until {})", self.kind.name(), self.value, self.reason, self.author, self.expires)
    }
}

/// A caller ID as compared: its digits, an international `00` prefix dropped (`+44 20…`,
/// `0044 20…`, `'+4420…` as a spreadsheet shows it, are one number).
fn digits(s: &str) -> String {
    let d: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
    match d.strip_prefix("00") {
        Some(rest) => rest.to_string(),
        None => d,
    }
}

fn net(s: &str) -> Result<ipnet::IpNet> {
    let s = s.trim();
    if let Ok(n) = s.parse::<ipnet::IpNet>() {
        return Ok(n);
    }
    Ok(ipnet::IpNet::from(s.parse::<std::net::IpAddr>()?))
}

/// Every entry, checked.
#[derive(Clone, Debug, Default)]
pub struct Allowlist {
    pub entries: Vec<Entry>,
    nets: Vec<Option<ipnet::IpNet>>,
}

/// A file of `[[allow]]` tables.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlFile {
    allow: Vec<Entry>,
}

impl Allowlist {
    /// The config's entries, then each file's.
    pub fn load(config: &[Entry], files: &[std::path::PathBuf]) -> Result<Self> {
        let mut entries: Vec<Entry> = config
            .iter()
            .enumerate()
            .map(|(i, e)| Entry { source: format!("config [[allow]] #{}", i + 1), ..e.clone() })
            .collect();
        for f in files {
            entries.extend(read_file(f)?);
        }
        for e in &entries {
            e.check()?;
        }
        let nets = entries.iter().map(|e| (e.kind == Kind::Ip).then(|| net(&e.value).ok()).flatten()).collect();
        Ok(Self { entries, nets })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn has(&self, kind: Kind) -> bool {
        self.entries.iter().any(|e| e.kind == kind)
    }

    /// Entries that expired before `day` (the last audited day), for the warnings.
    pub fn expired_by(&self, day: NaiveDate) -> Vec<&Entry> {
        self.entries.iter().filter(|e| e.expires < day).collect()
    }

    /// The first entry valid on `day` that covers `value` of `kind`.
    fn covering(&self, kind: Kind, value: &str, day: NaiveDate) -> Option<usize> {
        let d = matches!(kind, Kind::Cli).then(|| digits(value));
        let ip = matches!(kind, Kind::Ip).then(|| value.parse::<std::net::IpAddr>().ok()).flatten();
        self.entries.iter().enumerate().position(|(i, e)| {
            if e.expires < day {
                return false;
            }
            match (kind, e.kind) {
                (Kind::Operator, Kind::Operator) | (Kind::Group, Kind::Group) => e.value.trim() == value,
                (Kind::Cli, Kind::Cli) => d.as_deref() == Some(digits(&e.value).as_str()),
                (Kind::Cli, Kind::CliPrefix) => d.as_deref().is_some_and(|d| d.starts_with(&digits(&e.value))),
                (Kind::Ip, Kind::Ip) => match (ip, &self.nets[i]) {
                    (Some(ip), Some(n)) => n.contains(&ip),
                    _ => false,
                },
                _ => false,
            }
        })
    }

    /// The entry that suppresses a finding naming `entities` on `day`, if one does: for some kind,
    /// every entity of that kind is covered (the entry returned covers the first of them).
    pub fn suppressing(&self, entities: &Entities, day: NaiveDate) -> Option<&Entry> {
        for (kind, values) in &entities.0 {
            let matches: Option<Vec<usize>> = values.iter().map(|v| self.covering(*kind, v, day)).collect();
            if let Some(m) = matches.filter(|m| !m.is_empty()) {
                return Some(&self.entries[m[0]]);
            }
        }
        None
    }
}

/// What a finding names, by kind (caller IDs under [`Kind::Cli`]).
#[derive(Debug, Default)]
pub struct Entities(pub BTreeMap<Kind, BTreeSet<String>>);

impl Entities {
    /// A finding's operators, caller IDs and groups (from its fields and evidence); the IPs of its
    /// operators' calls from `ips` (operator → addresses) when given.
    pub fn of(f: &crate::rules::Finding, ips: Option<&BTreeMap<String, BTreeSet<String>>>) -> Self {
        let mut m: BTreeMap<Kind, BTreeSet<String>> = BTreeMap::new();
        let ev = &f.evidence;
        let list = |k: &str| -> Vec<String> {
            ev.get(k)
                .and_then(|v| v.as_array())
                .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                .unwrap_or_default()
        };
        let mut ops: BTreeSet<String> = f.operator_id.iter().cloned().collect();
        ops.extend(list("operators"));
        ops.extend(list("members"));
        let mut clis: BTreeSet<String> = ["clis", "pool", "shared_clis"].iter().flat_map(|k| list(k)).collect();
        if f.rule == "foreign-cli-fanout"
            && let Some(s) = &f.subject
        {
            clis.insert(s.clone());
        }
        let groups: BTreeSet<String> = list("groups").into_iter().collect();
        if let Some(ips) = ips {
            let addrs: BTreeSet<String> = ops.iter().filter_map(|o| ips.get(o)).flatten().cloned().collect();
            if !addrs.is_empty() {
                m.insert(Kind::Ip, addrs);
            }
        }
        for (k, v) in [(Kind::Operator, ops), (Kind::Cli, clis), (Kind::Group, groups)] {
            if !v.is_empty() {
                m.insert(k, v);
            }
        }
        Self(m)
    }
}

/// Entries of a CSV (`kind,value,reason,author,expires`) or TOML (`[[allow]]`) file.
fn read_file(path: &Path) -> Result<Vec<Entry>> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).with_context(|| format!("{shown}: cannot read allowlist"))?;
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml")) {
        let f: TomlFile = toml::from_str(&text).with_context(|| format!("{shown}: invalid allowlist"))?;
        return Ok(f
            .allow
            .into_iter()
            .enumerate()
            .map(|(i, e)| Entry { source: format!("{shown} [[allow]] #{}", i + 1), ..e })
            .collect());
    }
    let mut r = csv::ReaderBuilder::new().trim(csv::Trim::All).comment(Some(b'#')).from_reader(text.as_bytes());
    let head = r.headers().with_context(|| format!("{shown}: cannot read allowlist"))?.clone();
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec.with_context(|| format!("{shown}: cannot read allowlist"))?;
        let at = rec.position().map(|p| p.line()).unwrap_or(0);
        let e: Entry = rec.deserialize(Some(&head)).map_err(|e| {
            anyhow::anyhow!("{shown}:{at}: {e} (columns: kind,value,reason,author,expires; kinds: operator, cli, cli_prefix, ip, group; expires YYYY-MM-DD)")
        })?;
        out.push(Entry { source: format!("{shown}:{at}"), ..e });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(csv: &str) -> Allowlist {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("allow.csv");
        std::fs::write(&p, csv).unwrap();
        Allowlist::load(&[], &[p]).unwrap()
    }

    fn ents(kind: Kind, v: &[&str]) -> Entities {
        Entities([(kind, v.iter().map(|s| s.to_string()).collect())].into())
    }

    const D: &str = "2026-03-02";

    #[test]
    fn every_entity_of_a_kind_must_be_covered() {
        let a = list(
            "kind,value,reason,author,expires\ncli,+44 20 7946 0000,bank call centre,desk-1,2026-12-31\n\
             cli_prefix,+6328,BPO block,desk-2,2026-03-01\nip,203.0.113.0/24,BPO office,desk-1,2026-12-31\n",
        );
        let day: NaiveDate = D.parse().unwrap();
        assert!(a.suppressing(&ents(Kind::Cli, &["+442079460000"]), day).is_some());
        assert!(a.suppressing(&ents(Kind::Cli, &["+442079460000", "+447700900001"]), day).is_none());
        // the prefix entry expired the day before
        assert!(a.suppressing(&ents(Kind::Cli, &["+63280237390"]), day).is_none());
        assert!(a.suppressing(&ents(Kind::Cli, &["+63280237390"]), "2026-03-01".parse().unwrap()).is_some());
        assert!(a.suppressing(&ents(Kind::Ip, &["203.0.113.9", "203.0.113.200"]), day).is_some());
        assert!(a.suppressing(&ents(Kind::Ip, &["203.0.113.9", "198.51.100.1"]), day).is_none());
        assert_eq!(a.expired_by(day).len(), 1);
        assert!(a.entries[0].source.ends_with("allow.csv:2"), "{}", a.entries[0].source);
    }

    #[test]
    fn bad_entries_name_their_line() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("allow.csv");
        std::fs::write(&p, "kind,value,reason,author,expires\nseat,x,r,a,2026-01-01\n").unwrap();
        let e = format!("{:#}", Allowlist::load(&[], std::slice::from_ref(&p)).unwrap_err());
        assert!(e.contains("allow.csv:2") && e.contains("kinds:"), "{e}");
        std::fs::write(&p, "kind,value,reason,author,expires\nip,not-an-ip,r,a,2026-01-01\n").unwrap();
        let e = format!("{:#}", Allowlist::load(&[], std::slice::from_ref(&p)).unwrap_err());
        assert!(e.contains("allow.csv:2") && e.contains("not-an-ip"), "{e}");
        std::fs::write(&p, "kind,value,reason,author,expires\noperator,op1,,a,2026-01-01\n").unwrap();
        assert!(format!("{:#}", Allowlist::load(&[], &[p]).unwrap_err()).contains("reason is required"));
    }
}
