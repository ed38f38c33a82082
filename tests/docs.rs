//! The documentation stays true: docs/rules.md is what `explain` prints for every rule, every flag
//! of every command is documented in the README or a docs/ page, and the README stays short.
//! `DA_WRITE_DOCS=1 cargo test --release --test docs` rewrites docs/rules.md from the rules.

use clap::CommandFactory;
use diversion_audit::rules;
use std::path::Path;

fn read(p: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(p)).unwrap()
}

/// docs/rules.md as the rules document themselves: each rule's `explain` text, its first line a
/// heading and its sections one level down, and the thresholds in force by default.
fn rules_md() -> String {
    let cfg = diversion_audit::config::Config::default();
    let mut out = String::from(
        "# Rules\n\nWhat each rule finds, why it matters and an example: the text `diversion-audit explain RULE`\n\
         prints (a test keeps this page equal to it). `diversion-audit rules` lists them with the\n\
         thresholds in force; the config keys are in `diversion-audit config init`.\n",
    );
    for r in rules::docs() {
        let text = r.explain();
        let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
        out.push_str(&format!("\n## {first}\n\nDefaults: `{}`.\n", r.defaults(&cfg.rules)));
        for line in rest.lines() {
            if let Some(h) = line.strip_prefix("## ") {
                out.push_str(&format!("### {h}\n"));
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

#[test]
fn rules_page_is_the_explain_text() {
    let want = rules_md();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/rules.md");
    if std::env::var_os("DA_WRITE_DOCS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(have == want, "docs/rules.md differs from the rules' explain text (DA_WRITE_DOCS=1 rewrites it)");
    for r in rules::docs() {
        assert!(have.contains(r.explain().lines().nth(2).unwrap_or("")), "{}", r.id());
    }
}

#[test]
fn every_flag_is_documented() {
    let docs: String = [
        "README.md",
        "docs/batch.md",
        "docs/formats.md",
        "docs/schema.md",
        "docs/performance.md",
        "docs/calls.md",
        "docs/cards.md",
    ]
    .iter()
    .map(|p| read(p))
    .collect();
    let cli = diversion_audit::cli::Cli::command();
    let mut missing = Vec::new();
    let mut n = 0;
    for sub in cli.get_subcommands() {
        let mut cmds = vec![sub];
        cmds.extend(sub.get_subcommands());
        for c in cmds {
            for a in c.get_arguments() {
                if let Some(long) = a.get_long() {
                    n += 1;
                    if !docs.contains(&format!("--{long}")) {
                        missing.push(format!("{} --{long}", c.get_name()));
                    }
                }
            }
        }
    }
    assert!(n > 30, "{n} flags");
    assert!(missing.is_empty(), "flags no page documents: {missing:?}");
}

#[test]
fn readme_is_short_and_links_its_pages() {
    let readme = read("README.md");
    let lines = readme.lines().count();
    assert!(lines <= 250, "README.md has {lines} lines");
    for page in [
        "docs/formats.md",
        "docs/calls.md",
        "docs/schema.md",
        "docs/rules.md",
        "docs/batch.md",
        "docs/performance.md",
        "docs/architecture.md",
        "docs/cards.md",
    ] {
        assert!(readme.contains(page), "README does not link {page}");
        assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join(page).is_file(), "{page}");
    }
    // the two set-up commands CI runs
    let ci = read(".ci/run");
    assert!(readme.contains("cargo test --release") && ci.contains("cargo test --release"));
    let audit = "scan sample_logs/cdr --joins sample_logs/joins --ip-country sample_logs/ip-country.csv";
    assert!(readme.contains(audit) && ci.contains(audit));
    // every exit code the binary documents is in the README's table
    for code in ["| 0 |", "| 1 |", "| 2 |", "| 75 |", "130"] {
        assert!(readme.contains(code), "{code}");
    }
}

/// docs/calls.md's `[calls]` block is the default the code has.
#[test]
fn calls_page_shows_the_default_call_model() {
    let page = read("docs/calls.md");
    let block = page.split("```toml\n").nth(1).and_then(|b| b.split("```").next()).expect("a toml block");
    let cfg = diversion_audit::config::Config::from_toml(block).unwrap();
    assert_eq!(cfg, diversion_audit::config::Config::default());
}
