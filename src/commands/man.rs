//! `man`: manual pages in roff from the clap definitions (clap_mangen): the top page on stdout, or
//! with `--out DIR` one page per command (`diversion-audit.1`, `diversion-audit-scan.1`, …).

use crate::cli::Cli;
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::path::Path;

pub fn run(out: Option<&Path>) -> Result<()> {
    let cmd = Cli::command();
    let Some(dir) = out else {
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut buf)?;
        return crate::outputs::stdout(&buf);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let mut pages = vec![(String::from("diversion-audit"), clap_mangen::Man::new(cmd.clone()))];
    for sub in cmd.get_subcommands() {
        let name = format!("diversion-audit-{}", sub.get_name());
        pages.push((name.clone(), clap_mangen::Man::new(sub.clone()).title(name)));
    }
    for (name, page) in pages {
        let mut buf = Vec::new();
        page.render(&mut buf)?;
        crate::outputs::write_atomic(&dir.join(format!("{name}.1")), |w| Ok(std::io::Write::write_all(w, &buf)?))?;
    }
    Ok(())
}
