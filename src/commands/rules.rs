//! `rules`, `explain` and `config init`: what the rules are and how they are configured.

use crate::cli::ConfigCommand;
use anyhow::Result;
use std::path::Path;

/// `rules [--config FILE]`: each rule's id, summary and the thresholds in force.
pub fn list(config: Option<&Path>) -> Result<()> {
    let cfg = crate::setup::config_file(config)?;
    for r in crate::rules::docs() {
        println!("{:<26} {}", r.id(), r.summary());
        println!("{:<26} {}", "", r.defaults(&cfg.rules));
    }
    Ok(())
}

/// `explain RULE`: the rule's documentation.
pub fn explain(rule: &str) -> Result<()> {
    match crate::rules::find_doc(rule) {
        Some(r) => {
            println!("{}", r.explain());
            Ok(())
        }
        None => {
            let ids = crate::rules::all_ids();
            anyhow::bail!("unknown rule {rule:?}; rules are {}", ids.join(", "))
        }
    }
}

/// `config init [--out FILE]`: the commented default configuration.
pub fn config(cmd: &ConfigCommand) -> Result<()> {
    let ConfigCommand::Init { out } = cmd;
    let text = crate::config::default_toml();
    match out {
        Some(p) => {
            anyhow::ensure!(!p.exists(), "{}: already exists, not overwritten", p.display());
            crate::outputs::write_atomic(p, |w| Ok(w.write_all(text.as_bytes())?))
        }
        None => {
            print!("{text}");
            Ok(())
        }
    }
}
