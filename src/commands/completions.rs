//! `completions SHELL`: the shell completion script, from the clap definitions (clap_complete).

use crate::cli::Cli;
use anyhow::Result;
use clap::CommandFactory;

/// The completion script for `shell` on stdout.
pub fn run(shell: clap_complete::Shell) -> Result<()> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "diversion-audit", &mut out);
    crate::outputs::stdout(&out)
}
