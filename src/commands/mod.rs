//! One file per command; a command never imports another. [`run`] dispatches parsed flags to them.

pub mod cards;
pub mod completions;
pub mod generate;
pub mod inspect;
pub mod man;
pub mod normalize;
pub mod report;
pub mod rules;
pub mod scan;
pub mod verify;

use crate::cli::{Cli, Command};
use crate::exit_codes::Exit;
use anyhow::Result;

pub fn run(cli: Cli) -> Result<Exit> {
    match cli.command {
        Command::Inspect(a) => inspect::run(&a),
        Command::Cards(a) => cards::run(&a),
        Command::Verify(a) => verify::run(&a),
        Command::Completions { shell } => completions::run(shell).map(|_| Exit::Ok),
        Command::Man { out } => man::run(out.as_deref()).map(|_| Exit::Ok),
        Command::Generate(a) => generate::run(&a).map(|_| Exit::Ok),
        Command::Scan(a) => scan::run(&a),
        Command::Normalize(a) => normalize::run(&a).map(|_| Exit::Ok),
        Command::Report(a) => report::run(&a).map(|_| Exit::Ok),
        Command::Rules(a) => rules::list(a.config.as_deref()).map(|_| Exit::Ok),
        Command::Explain { rule } => rules::explain(&rule).map(|_| Exit::Ok),
        Command::Config(c) => rules::config(&c).map(|_| Exit::Ok),
    }
}
