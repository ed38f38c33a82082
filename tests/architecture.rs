//! The shape of the source tree, checked (docs/architecture.md): no import circles between the
//! top-level modules, commands that never import each other, loaders and enrichment that know
//! nothing of rules or commands, and no function over ~120 lines outside the listed exceptions.
//!
//! Imports are read from the source text: every `crate::NAME` path and every name inside a
//! `use crate::{…}` group counts, in code and in doc links alike (a doc link to a module is a
//! reason to look at it, so it counts too).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources() -> Vec<(PathBuf, String)> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| (p.strip_prefix(&root).unwrap().to_path_buf(), std::fs::read_to_string(&p).unwrap()))
        .collect()
}

/// `commands/scan.rs` → ["commands", "scan"]; `lib.rs`/`main.rs` → [].
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_string());
    }
    parts
}

/// Every `crate::a::b` path named in `text`, as segments (the first two at most).
fn crate_paths(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let ident = |s: &str| -> String { s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + 7..];
        if let Some(group) = after.strip_prefix('{') {
            // use crate::{a, b::c, d::{e, f}}: the first segment of each top-level item
            let mut depth = 0;
            let mut item = String::new();
            for ch in group.chars() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(item.trim().split("::").map(ident).take(2).collect());
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(ch);
            }
            if !item.trim().is_empty() {
                out.push(item.trim().split("::").map(ident).take(2).collect());
            }
        } else {
            out.push(after.split("::").take(2).map(ident).collect());
        }
        rest = after;
    }
    out
}

/// top-level module → the top-level modules it names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in sources() {
        let m = module_path(&rel);
        let Some(top) = m.first() else { continue };
        let e = g.entry(top.clone()).or_default();
        for p in crate_paths(&text) {
            if let Some(t) = p.first().filter(|t| !t.is_empty() && *t != top) {
                e.insert(t.clone());
            }
        }
    }
    g
}

#[test]
fn no_import_circles_between_top_level_modules() {
    let g = graph();
    assert!(g.len() > 15, "{g:?}");
    // depth-first search for a back edge; report the circle it closes
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let at = stack.iter().position(|s| s == m).unwrap();
                    let mut c = stack[at..].to_vec();
                    c.push(m.clone());
                    return Some(c);
                }
                0 => {
                    if let Some(c) = visit(m, g, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            let circle = visit(n, &g, &mut state, &mut Vec::new());
            assert!(circle.is_none(), "import circle: {}", circle.unwrap().join(" -> "));
        }
    }
}

#[test]
fn the_checker_sees_a_circle_and_a_group_import() {
    // the parser the tests above rely on
    let paths = crate_paths("use crate::{rules::{self, Finding}, load, frame::round};\nlet x = crate::diag::trace;");
    let tops: Vec<&str> = paths.iter().map(|p| p[0].as_str()).collect();
    assert_eq!(tops, ["rules", "load", "frame", "diag"]);
    assert_eq!(module_path(Path::new("commands/scan.rs")), ["commands", "scan"]);
    assert_eq!(module_path(Path::new("rules/mod.rs")), ["rules"]);
}

#[test]
fn layers_point_one_way() {
    let g = graph();
    let uses = |m: &str| g.get(m).cloned().unwrap_or_default();
    // input readers and enrichment know nothing of what judges or runs them
    for low in ["load", "enrich", "coded", "par", "time", "frame", "diag", "prepare"] {
        for high in ["rules", "pipeline", "commands", "outputs", "report", "setup", "cli", "config"] {
            assert!(!uses(low).contains(high), "{low} imports {high}");
        }
    }
    // rules read prepared data and their own config, never the pipeline, writers or commands
    for high in ["pipeline", "commands", "outputs", "setup", "cli", "config"] {
        assert!(!uses("rules").contains(high), "rules import {high}");
    }
    // config: the rules' sections, the allowlist's entries and the loader's enum types, nothing
    // that runs
    let config: BTreeSet<String> = uses("config");
    let allowed: BTreeSet<String> = ["rules", "allow", "load", "time"].into_iter().map(String::from).collect();
    assert!(config.is_subset(&allowed), "config imports {:?}", config.difference(&allowed).collect::<Vec<_>>());
}

#[test]
fn commands_never_import_each_other() {
    for (rel, text) in sources() {
        let m = module_path(&rel);
        if m.first().map(String::as_str) != Some("commands") || m.len() < 2 {
            continue;
        }
        for p in crate_paths(&text) {
            if p.first().map(String::as_str) == Some("commands") {
                panic!("{} imports crate::commands::{}", rel.display(), p.get(1).map(String::as_str).unwrap_or(""));
            }
        }
        // (a test module's `use super::*` is its own file)
        let siblings = text.matches("super::").count() - text.matches("use super::*;").count();
        assert!(siblings == 0, "{} reaches its siblings through super::", rel.display());
    }
}

/// Functions longer than this many lines are listed below with the reason.
const MAX_LINES: usize = 120;

/// (file, function): data tables and the generator's population tables.
const LONG_ALLOWED: &[(&str, &str)] = &[
    // the typing kernel: one map over the raw columns whose closure derives end, durations, the
    // disposition and the reject code in a single parallel pass (measured: a chain of when/then
    // columns built ten 10 M-row intermediates); its arms are one match, split they would pass
    // twelve column readers around
    ("load/normalize.rs", "derived"),
];

#[test]
fn no_function_is_longer_than_about_120_lines() {
    let mut long = Vec::new();
    for (rel, text) in sources() {
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let l = lines[i].trim_start();
            let is_fn = (l.starts_with("fn ")
                || l.starts_with("pub fn ")
                || l.starts_with("pub(crate) fn ")
                || l.starts_with("pub(super) fn "))
                && !l.ends_with(';');
            if !is_fn {
                i += 1;
                continue;
            }
            let name: String =
                l.split("fn ").nth(1).unwrap().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            // the body ends where the braces opened from here balance again
            let (mut depth, mut opened, mut j) = (0i32, false, i);
            while j < lines.len() {
                // a brace in a char literal is not a block
                let line = lines[j].replace("'{'", "").replace("'}'", "");
                for ch in line.chars() {
                    match ch {
                        '{' => {
                            depth += 1;
                            opened = true;
                        }
                        '}' => depth -= 1,
                        _ => {}
                    }
                }
                if opened && depth <= 0 {
                    break;
                }
                j += 1;
            }
            let n = j - i + 1;
            let file = rel.display().to_string();
            if n > MAX_LINES && !LONG_ALLOWED.contains(&(file.as_str(), name.as_str())) {
                long.push(format!("{file}: fn {name}: {n} lines"));
            }
            i += 1;
        }
    }
    assert!(long.is_empty(), "functions over {MAX_LINES} lines:\n{}", long.join("\n"));
}
