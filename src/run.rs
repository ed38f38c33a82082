//! Command dispatch: flags + config → one resolved setup → the command → an exit code.

use crate::cli::{Cli, Command, LoadArgs};
use crate::config::Config;
use crate::enrich::phone::PhoneParser;
use crate::load::LoadOptions;
use anyhow::Result;
use std::process::ExitCode;

/// Process exit codes (also in `--help` and the README).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: success.
    Ok = 0,
    /// 1: `scan --fail-on` found something at or above the severity.
    Findings = 1,
    /// 2: an error (arguments, config, unreadable input, rejects under `--strict`).
    Error = 2,
    /// 75 (EX_TEMPFAIL): another run holds the output or history directory; try again later.
    Locked = 75,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// Set by the binary: a command's large working values (the CDR frames) are left for the process
/// exit to reclaim instead of being freed one allocation at a time just before it (10 M rows: 0.07 s).
/// Library callers, tests among them, leave it unset and get ordinary drops.
pub static LEAVE_TO_EXIT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Drop `v`, or with [`LEAVE_TO_EXIT`] leave it to the process exit.
pub fn release<T>(v: T) {
    if LEAVE_TO_EXIT.load(std::sync::atomic::Ordering::Relaxed) {
        std::mem::forget(v);
    } else {
        drop(v);
    }
}

/// Everything a loading command needs, resolved once from the config file and the flags.
pub struct Setup {
    pub config: Config,
    pub load: LoadOptions,
    pub phones: PhoneParser,
    pub strict: bool,
}

/// Config file first, flags over it; validated as a whole.
pub fn resolve(args: &LoadArgs) -> Result<Setup> {
    let mut config = match &args.config {
        Some(p) => Config::from_file(p)?,
        None => Config::default(),
    };
    if let Some(tz) = &args.tz {
        config.input.tz = tz.clone();
    }
    if let Some(r) = &args.home_region {
        config.input.home_region = r.clone();
    }
    if let Some(d) = args.date_order {
        config.input.date_order = d;
    }
    if let Some(e) = args.encoding {
        config.input.encoding = Some(e);
    }
    config.validate()?;
    let load = LoadOptions {
        tz: config.tz()?,
        date_order: config.input.date_order.into(),
        encoding: config.input.encoding,
        format: args.format,
        columns: config.columns.clone(),
        allow_empty: args.allow_empty,
        skip: Vec::new(),
        coded: false,
        ..LoadOptions::default()
    };
    let phones = PhoneParser::new(&config.input.home_region).map_err(anyhow::Error::msg)?;
    Ok(Setup { config, load, phones, strict: args.strict })
}

pub fn run(cli: Cli) -> Result<Exit> {
    match cli.command {
        Command::Inspect(a) => crate::inspect::run(&a),
        Command::Generate(a) => crate::generate::run(&a).map(|_| Exit::Ok),
        Command::Scan(a) => crate::scan::run(&a),
        Command::Report(a) => crate::scan::report_command(&a).map(|_| Exit::Ok),
        Command::Rules(a) => {
            let cfg = match &a.config {
                Some(p) => Config::from_file(p)?,
                None => Config::default(),
            };
            for r in crate::rules::docs() {
                println!("{:<26} {}", r.id(), r.summary());
                println!("{:<26} {}", "", r.defaults(&cfg));
            }
            Ok(Exit::Ok)
        }
        Command::Explain { rule } => match crate::rules::find_doc(&rule) {
            Some(r) => {
                println!("{}", r.explain());
                Ok(Exit::Ok)
            }
            None => {
                let ids = crate::rules::all_ids();
                anyhow::bail!("unknown rule {rule:?}; rules are {}", ids.join(", "))
            }
        },
        Command::Config(crate::cli::ConfigCommand::Init { out }) => {
            match out {
                Some(p) => {
                    anyhow::ensure!(!p.exists(), "{}: already exists, not overwritten", p.display());
                    crate::output::write_atomic(&p, |w| Ok(w.write_all(crate::config::DEFAULT_TOML.as_bytes())?))?;
                }
                None => print!("{}", crate::config::DEFAULT_TOML),
            }
            Ok(Exit::Ok)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_stable() {
        assert_eq!(Exit::Ok as u8, 0);
        assert_eq!(Exit::Findings as u8, 1);
        assert_eq!(Exit::Error as u8, 2);
        assert_eq!(Exit::Locked as u8, 75);
    }

    #[test]
    fn flags_override_config() {
        let args = LoadArgs { tz: Some("UTC".into()), home_region: Some("gb".into()), ..Default::default() };
        let s = resolve(&args).unwrap();
        assert_eq!(s.load.tz, chrono_tz::UTC);
        assert_eq!(s.phones.home(), "GB");
        let bad = LoadArgs { tz: Some("Nowhere/City".into()), ..Default::default() };
        assert!(resolve(&bad).is_err());
    }
}
