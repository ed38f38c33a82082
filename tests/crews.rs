//! The crew analysis end to end: each kind of evidence on hand-written fixtures (tests/data/crews,
//! hits and near misses), monitoring as Asterisk writes it, graph.graphml read back as GraphML,
//! the same outputs whole and in partitions, and crews, roles, caller-ID rotation and earnings
//! against the generator's truth.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A CSV output as rows of header → value.
fn rows(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let h: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    r.records().map(|rec| h.iter().cloned().zip(rec.unwrap().iter().map(str::to_string)).collect()).collect()
}

/// (from, to, kind) of links.csv, and whether the link is strong.
fn links(out: &Path) -> BTreeMap<(String, String, String), bool> {
    rows(&out.join("links.csv"))
        .into_iter()
        .map(|r| ((r["from"].clone(), r["to"].clone(), r["kind"].clone()), r["strong"] == "true"))
        .collect()
}

/// Operator → crew id.
fn crews(out: &Path) -> BTreeMap<String, String> {
    rows(&out.join("crews.csv"))
        .into_iter()
        .flat_map(|r| r["members"].split(';').map(|m| (m.to_string(), r["crew_id"].clone())).collect::<Vec<_>>())
        .collect()
}

fn scan(inputs: &[&str], joins: Option<&str>, out: &Path, extra: &[&str]) {
    let mut c = common::bin();
    c.arg("scan").args(inputs).arg("--out").arg(out).arg("--quiet").args(extra);
    if let Some(j) = joins {
        c.arg("--joins").arg(j);
    }
    c.assert().success();
}

#[test]
fn each_kind_of_evidence_links_and_its_near_miss_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    scan(&["tests/data/crews/crews.csv"], Some("tests/data/crews/crews_joins.csv"), &out, &[]);
    let l = links(&out);
    let has = |a: &str, b: &str, k: &str| l.get(&(a.to_string(), b.to_string(), k.to_string())).copied();
    // each kind over its threshold
    assert_eq!(has("hit-cli-a", "hit-cli-b", "shared-cli"), Some(true), "{l:?}");
    assert_eq!(has("hit-list-a", "hit-list-b", "lead-list"), Some(true));
    assert_eq!(has("hit-group-a", "hit-group-b", "shared-group"), Some(true));
    assert_eq!(has("hit-office-a", "hit-office-b", "same-ip"), Some(true));
    assert_eq!(has("hit-office-a", "hit-office-b", "shift-sync"), Some(true));
    assert_eq!(has("hit-camp-a", "hit-camp-b", "campaign"), Some(true));
    assert_eq!(has("hit-camp-a", "hit-camp-b", "shift-sync"), Some(true));
    // near misses: one caller ID on one day; two callees of a thousand; one join each; shifts
    // 20 min apart (the office /24 alone is a weak link: listed, no crew)
    assert_eq!(has("ok-cli-c", "ok-cli-d", "shared-cli"), None);
    assert_eq!(has("ok-list-c", "ok-list-d", "lead-list"), None);
    assert_eq!(has("ok-group-c", "ok-group-d", "shared-group"), None);
    assert_eq!(has("ok-sync20-a", "ok-sync20-b", "shift-sync"), None);
    assert_eq!(has("ok-sync20-a", "ok-sync20-b", "same-ip"), Some(false));
    // crews: every hit pair, no near miss
    let c = crews(&out);
    for k in ["cli", "list", "group", "office", "camp"] {
        let (a, b) = (format!("hit-{k}-a"), format!("hit-{k}-b"));
        assert!(c.contains_key(&a) && c.get(&a) == c.get(&b), "{k}: {c:?}");
    }
    assert!(c.keys().all(|o| o.starts_with("hit-")), "{c:?}");
    // nobody here has diversion findings: crews, no crew finding
    let findings = std::fs::read_to_string(out.join("findings.jsonl")).unwrap();
    assert!(!findings.contains("\"rule\":\"crew\""));
    // the lead-list link says what chance it beat
    let ev = rows(&out.join("links.csv"))
        .into_iter()
        .find(|r| r["from"] == "hit-list-a" && r["kind"] == "lead-list")
        .unwrap()["evidence"]
        .clone();
    assert!(ev.starts_with("40 common callees of 100 and 100 dialled"), "{ev}");
}

#[test]
fn monitoring_seats_are_named_with_whom_they_listened_to() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    scan(&["tests/data/crews/monitoring_asterisk.csv"], None, &out, &[]);
    let m: BTreeSet<(String, String, String)> = rows(&out.join("monitoring.csv"))
        .into_iter()
        .map(|r| (r["listener"].clone(), r["target"].clone(), r["how"].clone()))
        .collect();
    let want: BTreeSet<(String, String, String)> = [
        ("9001", "2001", "spy"),
        ("9001", "2002", "spy"),
        ("9001", "2003", "spy"), // ExtenSpy 2003@from-internal
        ("9001", "*", "spy"),    // ChanSpy with no channel: any
        ("9002", "2002", "brief-calls"),
        ("9002", "2003", "brief-calls"),
        ("9002", "2004", "brief-calls"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    // 2001's ten-minute call to 2004 is a colleague's call, not monitoring
    assert_eq!(m, want);
    // the listener joins its targets' crew through monitoring links
    let c = crews(&out);
    assert_eq!(c.get("9001"), c.get("2001"));
    assert!(c.contains_key("9001"));
}

/// VICIdial's real-time monitoring log (`vicidial_rt_monitor_log`) beside its outbound log, as
/// `mysql -B` exports them and in one mysqldump: the manager is named with each agent it listened
/// to, barged in on or whispered to, and joins their crew.
#[test]
fn vicidial_monitoring_sessions_name_the_manager() {
    let dir = tempfile::tempdir().unwrap();
    let (tsv, sql) = (dir.path().join("tsv"), dir.path().join("sql"));
    scan(&["tests/data/crews/vicidial_log.tsv", "tests/data/crews/vicidial_rt_monitor_log.tsv"], None, &tsv, &[]);
    // a dump with both tables (one has no durations, the other no caller IDs: stacked alike)
    scan(&["tests/data/crews/vicidial_dump.sql"], None, &sql, &[]);
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(tsv.join("run.json")).unwrap()).unwrap();
    let formats: Vec<(String, u64)> = run["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["format"].as_str().unwrap().to_string(), f["rows_rejected"].as_u64().unwrap()))
        .collect();
    assert_eq!(formats, [("vicidial".to_string(), 0), ("vicidial-monitor".to_string(), 0)]);
    for out in [&tsv, &sql] {
        let m: Vec<(String, String, String, String)> = rows(&out.join("monitoring.csv"))
            .into_iter()
            .map(|r| (r["listener"].clone(), r["target"].clone(), r["how"].clone(), r["sessions"].clone()))
            .collect();
        let want: Vec<(String, String, String, String)> =
            [("6666", "vdagent1", "spy", "2"), ("6666", "vdagent2", "spy", "1"), ("6666", "vdagent3", "spy", "1")]
                .iter()
                .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
                .collect();
        // the session that never connected is still an attempt on vdagent1; vdagent4 was never
        // listened to (its campaign alone is a weak link: no crew)
        assert_eq!(m, want, "{}", out.display());
        let c = crews(out);
        assert!(
            c.contains_key("6666") && ["vdagent1", "vdagent2", "vdagent3"].iter().all(|a| c.get(*a) == c.get("6666"))
        );
        assert!(!c.contains_key("vdagent4"), "{c:?}");
    }
}

/// graph.graphml: a GraphML document with typed keys, operator and crew nodes, typed edges.
#[test]
fn graphml_reads_back_as_graphml() {
    use quick_xml::Reader;
    use quick_xml::events::Event;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    scan(&["tests/data/crews/crews.csv"], Some("tests/data/crews/crews_joins.csv"), &out, &[]);
    let text = std::fs::read_to_string(out.join("graph.graphml")).unwrap();
    let mut r = Reader::from_str(&text);
    let (mut keys, mut nodes, mut edges) = (BTreeMap::new(), BTreeSet::new(), Vec::new());
    let mut stack: Vec<String> = Vec::new();
    let mut cur_key = String::new();
    let mut edge: BTreeMap<String, String> = BTreeMap::new();
    loop {
        match r.read_event().unwrap() {
            ev @ (Event::Start(_) | Event::Empty(_)) => {
                let (e, open) = match &ev {
                    Event::Start(e) => (e, true),
                    Event::Empty(e) => (e, false),
                    _ => unreachable!(),
                };
                let name = e.name().as_ref().to_string();
                let attrs: BTreeMap<String, String> = e
                    .attributes()
                    .map(|a| {
                        let a = a.unwrap();
                        (a.key.as_ref().to_string(), a.value.to_string())
                    })
                    .collect();
                match name.as_str() {
                    "key" => {
                        keys.insert(attrs["id"].clone(), (attrs["attr.name"].clone(), attrs["attr.type"].clone()));
                    }
                    "node" => {
                        nodes.insert(attrs["id"].clone());
                    }
                    "edge" => {
                        edge = attrs.clone();
                    }
                    "data" => cur_key = attrs["key"].clone(),
                    _ => {}
                }
                if open {
                    stack.push(name);
                }
            }
            Event::Text(t) if stack.last().map(String::as_str) == Some("data") => {
                let (name, _) = &keys[&cur_key];
                edge.insert(format!("data:{name}"), t.xml10_content().to_string());
            }
            Event::End(e) => {
                let name = e.name().as_ref().to_string();
                if name == "edge" {
                    edges.push(std::mem::take(&mut edge));
                }
                stack.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(text.contains("<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\""));
    assert_eq!(keys.get("d7"), Some(&("weight".to_string(), "double".to_string())));
    assert!(nodes.contains("op:hit-cli-a") && nodes.contains("crew:crew-hit-cli-a"), "{nodes:?}");
    let kinds: BTreeSet<&str> = edges.iter().filter_map(|e| e.get("data:kind").map(String::as_str)).collect();
    for k in ["shared-cli", "lead-list", "shared-group", "same-ip", "shift-sync", "campaign", "member-of"] {
        assert!(kinds.contains(k), "{k} missing: {kinds:?}");
    }
    // every edge joins two declared nodes
    for e in &edges {
        assert!(nodes.contains(&e["source"]) && nodes.contains(&e["target"]), "{e:?}");
    }
}

/// Crews are cross-operator: a partitioned scan merges every part's facts and gives the same files.
#[test]
fn crews_are_the_same_whole_and_partitioned() {
    let dir = tempfile::tempdir().unwrap();
    let data =
        common::generate(dir.path(), &["--shape", "asterisk", "--operators", "120", "--days", "3", "--seed", "5"]);
    let (whole, parts) = (dir.path().join("whole"), dir.path().join("parts"));
    common::scan_generated(&data, &["asterisk_Master.csv"], &whole).arg("--quiet").assert().success();
    common::scan_generated(&data, &["asterisk_Master.csv"], &parts)
        .args(["--quiet", "--partitions", "3"])
        .assert()
        .success();
    for f in ["crews.csv", "links.csv", "monitoring.csv", "graph.graphml", "operators.csv", "findings.jsonl"] {
        let (a, b) = (std::fs::read(whole.join(f)).unwrap(), std::fs::read(parts.join(f)).unwrap());
        assert!(a == b, "{f} differs between the whole and the partitioned scan");
    }
    assert!(rows(&whole.join("crews.csv")).len() >= 3);
    // a crew's page from the finished scan, in each format
    let finding = std::fs::read_to_string(whole.join("findings.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|f| f["rule"] == "crew")
        .expect("a crew finding");
    let id = finding["subject"].as_str().unwrap();
    let page = |format: &str| {
        let o = common::bin()
            .args(["report", "--from"])
            .arg(&whole)
            .args(["--crew", id, "--format", format])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let md = page("md");
    assert!(
        md.starts_with(&format!("# Crew {id}")) && md.contains("## Members") && md.contains("## Monitoring"),
        "{md}"
    );
    let json: serde_json::Value = serde_json::from_str(&page("json")).unwrap();
    assert_eq!(json["members"].as_array().unwrap().len(), finding["evidence"]["members"].as_array().unwrap().len());
    assert!(json["pay"]["high"].as_f64().unwrap() >= json["pay"]["low"].as_f64().unwrap());
    let html = page("html");
    assert!(html.contains("<svg") && html.contains("<line class=\"link") && !html.contains("<script"));
    // report.html holds the page and links each member's dossier to it
    let report = std::fs::read_to_string(whole.join("report.html")).unwrap();
    assert!(report.contains(&format!("id=\"crew-{id}\"")) && report.contains(&format!("href=\"#crew-{id}\"")));
    let o = common::bin().args(["report", "--from"]).arg(&whole).args(["--crew", "crew-none"]).output().unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("no crew page for \"crew-none\""));
}

fn truth(data: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(data.join("truth.json")).unwrap()).unwrap()
}

/// Every leader of truth.json named in monitoring.csv with exactly the seats it listened to, and in
/// its crew; no other seat named.
fn leaders_named(out: &Path, t: &serde_json::Value) {
    let mut heard: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in rows(&out.join("monitoring.csv")) {
        heard.entry(m["listener"].clone()).or_default().insert(m["target"].clone());
    }
    let found = crews(out);
    let leaders: Vec<&serde_json::Value> =
        t["operators"].as_array().unwrap().iter().filter(|o| o["role"] == "leader").collect();
    assert!(!leaders.is_empty());
    for o in &leaders {
        let id = o["operator_id"].as_str().unwrap();
        let want: BTreeSet<String> =
            o["monitors"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_string()).collect();
        assert_eq!(heard.get(id), Some(&want), "monitoring seat {id}");
        let member = t["crews"].as_array().unwrap().iter().find(|c| c["leader"] == id).unwrap()["members"][0]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(found.get(id), found.get(&member), "leader {id} in its crew");
    }
    assert_eq!(heard.len(), leaders.len(), "no other seat named: {:?}", heard.keys());
}

/// `generate --shape SHAPE` with `flags` into `dir`, scanned with its joins and IP table: (data, out).
fn generated_scan(dir: &Path, shape: &str, flags: &[&str]) -> (std::path::PathBuf, std::path::PathBuf) {
    let data = common::generate(dir, &[&["--shape", shape], flags].concat());
    let file = match shape {
        "asterisk" => "asterisk_Master.csv",
        _ => "grandstream_cdr.csv",
    };
    let out = dir.join("out");
    common::scan_generated(&data, &[file], &out).arg("--quiet").assert().success();
    (data, out)
}

/// A Grandstream UCM's export shows its leaders' ChanSpy sessions too (`Last app.`, `Last data`).
#[test]
fn grandstream_leaders_are_named_from_their_spy_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (data, out) = generated_scan(dir.path(), "grandstream", &["--operators", "120", "--days", "2", "--seed", "5"]);
    leaders_named(&out, &truth(&data));
}

/// The acceptance figures on generated Asterisk legs (leaders who ChanSpy, legitimate teams sharing
/// one company number and one office /24): pairwise same-crew precision and recall of diversion
/// operators, no crew finding over a legitimate team, cli-rotation, monitoring seats, earnings.
#[test]
fn crews_roles_rotation_and_earnings_against_truth() {
    let dir = tempfile::tempdir().unwrap();
    let (data, out) = generated_scan(dir.path(), "asterisk", &["--operators", "240", "--days", "4", "--seed", "31"]);
    let t = truth(&data);
    let ops: BTreeMap<String, &serde_json::Value> = t["operators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["operator_id"].as_str().unwrap().to_string(), o))
        .collect();
    let diversion: Vec<&String> = ops
        .iter()
        .filter(|(_, o)| o["population"].as_str().unwrap().starts_with("diversion"))
        .map(|(k, _)| k)
        .collect();
    let found = crews(&out);
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    for (i, a) in diversion.iter().enumerate() {
        for b in &diversion[i + 1..] {
            let same_t = ops[*a]["crew"] == ops[*b]["crew"];
            let same_f = found.contains_key(*a) && found.get(*a) == found.get(*b);
            match (same_t, same_f) {
                (true, true) => tp += 1,
                (false, true) => fp += 1,
                (true, false) => fn_ += 1,
                _ => {}
            }
        }
    }
    let (p, r) = (tp as f64 / (tp + fp).max(1) as f64, tp as f64 / (tp + fn_).max(1) as f64);
    eprintln!("same-crew pairs: precision {p:.3} recall {r:.3} ({tp} true, {fp} false, {fn_} missed)");
    assert!(tp > 50 && p >= 0.95 && r >= 0.95, "precision {p:.3} recall {r:.3}");
    // crew findings: over diversion crews only; legitimate teams are crews, not findings
    let findings: Vec<serde_json::Value> = std::fs::read_to_string(out.join("findings.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let crew_findings: Vec<&serde_json::Value> = findings.iter().filter(|f| f["rule"] == "crew").collect();
    assert!(!crew_findings.is_empty());
    for f in &crew_findings {
        let members = f["evidence"]["members"].as_array().unwrap();
        let legit = members.iter().all(|m| ops[m.as_str().unwrap()]["crew"].is_null());
        assert!(!legit, "a crew finding over a legitimate team: {}", f["summary"]);
    }
    // cli-rotation against truth
    let got: BTreeSet<&str> =
        findings.iter().filter(|f| f["rule"] == "cli-rotation").filter_map(|f| f["operator_id"].as_str()).collect();
    let want: BTreeSet<&str> =
        ops.iter().filter(|(_, o)| o["cli_rotation"].as_bool().unwrap()).map(|(k, _)| k.as_str()).collect();
    let hit = got.intersection(&want).count() as f64;
    let (p, r) = (hit / got.len().max(1) as f64, hit / want.len().max(1) as f64);
    eprintln!("cli-rotation: precision {p:.3} recall {r:.3} ({} flagged, {} true)", got.len(), want.len());
    assert!(want.len() >= 20 && p >= 0.95 && r >= 0.95);
    // every monitoring seat named, with every seat it listened to
    leaders_named(&out, &t);
    // the earnings estimate rests on the same pay days and conversions as truth
    let table: BTreeMap<String, BTreeMap<String, String>> =
        rows(&out.join("operators.csv")).into_iter().map(|r| (r["operator_id"].clone(), r)).collect();
    let same = diversion
        .iter()
        .filter(|op| {
            let (r, o) = (&table[op.as_str()], ops[op.as_str()]);
            r["pay_days"].parse::<u64>().ok() == o["pay_days"].as_u64()
                && r["conversions"].parse::<u64>().ok() == o["conversions"].as_u64()
        })
        .count();
    let share = same as f64 / diversion.len() as f64;
    eprintln!("earnings basis equal to truth for {same} of {} diversion operators", diversion.len());
    assert!(share >= 0.98);
    let r = &table[diversion[0].as_str()];
    let (days, conv): (f64, f64) = (r["pay_days"].parse().unwrap(), r["conversions"].parse().unwrap());
    assert_eq!(r["est_earnings_low"].parse::<f64>().unwrap(), days * 200.0 + conv * 5.0);
    assert_eq!(r["est_earnings_high"].parse::<f64>().unwrap(), days * 200.0 + conv * 10.0);
}

/// Legitimate teams (one company number, one office /24, one campaign) in a generic export with
/// IPs: crews in crews.csv, never a crew finding.
#[test]
fn legitimate_teams_are_crews_and_no_finding() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::generate(dir.path(), &["--operators", "200", "--days", "3", "--seed", "8", "--no-parquet"]);
    let out = dir.path().join("out");
    common::scan_generated(&data, &["cdr.csv"], &out).arg("--quiet").assert().success();
    let t = truth(&data);
    let team: BTreeMap<&str, &str> = t["operators"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| Some((o["operator_id"].as_str()?, o["team"].as_str()?)))
        .collect();
    let teams: BTreeSet<&str> = team.values().copied().collect();
    let crew_of: BTreeMap<String, String> = rows(&out.join("crews.csv"))
        .into_iter()
        .flat_map(|r| r["members"].split(';').map(|m| (m.to_string(), r["crew_id"].clone())).collect::<Vec<_>>())
        .collect();
    // a team found: all its members in one crew (a department of teams sharing a campaign may be
    // one crew), and no crew holds a team member and a diversion operator
    let found: BTreeSet<&str> = teams
        .iter()
        .copied()
        .filter(|t| {
            let of: BTreeSet<Option<&String>> =
                team.iter().filter(|(_, tt)| *tt == t).map(|(m, _)| crew_of.get(*m)).collect();
            of.len() == 1 && of.iter().all(Option::is_some)
        })
        .collect();
    eprintln!("legitimate teams found whole in a crew: {} of {}", found.len(), teams.len());
    assert!(found.len() as f64 >= 0.9 * teams.len() as f64, "{found:?} of {teams:?}");
    let diversion: BTreeSet<&str> = t["operators"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["crew"].is_string())
        .map(|o| o["operator_id"].as_str().unwrap())
        .collect();
    let legit_crews: BTreeSet<&String> = team.keys().filter_map(|m| crew_of.get(*m)).collect();
    let mixed = diversion.iter().filter(|d| crew_of.get(**d).is_some_and(|c| legit_crews.contains(c))).count();
    assert_eq!(mixed, 0, "diversion operators in legitimate teams' crews");
    let findings = std::fs::read_to_string(out.join("findings.jsonl")).unwrap();
    for f in
        findings.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).filter(|f| f["rule"] == "crew")
    {
        let members = f["evidence"]["members"].as_array().unwrap();
        assert!(members.iter().all(|m| !team.contains_key(m.as_str().unwrap())), "{}", f["summary"]);
    }
}
