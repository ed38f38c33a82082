//! Flags + config file → one resolved plan. Nothing past this module sees a clap type: the commands
//! read [`Setup`] (how to load) and [`ScanPlan`] (what a scan does), the way ripgrep turns its
//! low-level arguments into high-level ones and fd builds one `Config`.

use crate::cli::{CardsArgs, LoadArgs, ScanArgs};
use crate::config::Config;
use crate::enrich::phone::PhoneParser;
use crate::load::LoadOptions;
use crate::load::format::Format;
use crate::redact::Redactor;
use crate::rules::Severity;
use anyhow::{Context, Result};
use chrono::NaiveDate;
use std::path::PathBuf;

/// Everything a loading command needs, resolved once from the config file and the flags.
pub struct Setup {
    pub config: Config,
    pub load: LoadOptions,
    pub phones: PhoneParser,
    /// `--strict`: any rejected row is an error.
    pub strict: bool,
    /// `--config FILE`, for the evidence manifest.
    pub config_path: Option<PathBuf>,
}

/// A config file read and checked as a whole: its own rules, and the parts that name the loader's
/// fields or a phone region.
pub fn config_file(path: Option<&std::path::Path>) -> Result<Config> {
    let config = match path {
        Some(p) => {
            let c = Config::from_file(p)?;
            validate(&c).with_context(|| format!("{}: invalid config", p.display()))?;
            c
        }
        None => Config::default(),
    };
    Ok(config)
}

/// What [`Config::validate`] cannot know alone: the home region parses and `[columns]` names
/// canonical fields.
fn validate(config: &Config) -> Result<()> {
    config.validate()?;
    PhoneParser::new(&config.input.home_region).map_err(anyhow::Error::msg)?;
    use crate::load::{format, ledger};
    let known: Vec<&str> = [&format::CDR, &format::JOINS, &ledger::CARDS, &ledger::SALES, &ledger::SMS]
        .iter()
        .flat_map(|t| t.fields.iter().map(|f| f.name))
        .collect();
    for (from, to) in &config.columns {
        anyhow::ensure!(
            known.contains(&to.as_str()),
            "[columns] {from:?} = {to:?}: unknown field {to:?}; fields are {}",
            known.join(", ")
        );
    }
    Ok(())
}

/// Config file first, flags over it; validated as a whole.
pub fn resolve(args: &LoadArgs) -> Result<Setup> {
    let mut config = config_file(args.config.as_deref())?;
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
    validate(&config)?;
    let load = LoadOptions {
        tz: config.tz()?,
        date_order: config.input.date_order.into(),
        encoding: config.input.encoding,
        format: args.format,
        columns: config.columns.clone(),
        allow_empty: args.allow_empty,
        max_reject_share: (!args.allow_rejects).then_some(config.input.max_reject_share),
        skip: Vec::new(),
        coded: false,
        calls: std::sync::Arc::new(config.calls.clone()),
        ..LoadOptions::default()
    };
    let phones = PhoneParser::new(&config.input.home_region).map_err(anyhow::Error::msg)?;
    Ok(Setup { config, load, phones, strict: args.strict, config_path: args.config.clone() })
}

/// A scan, resolved: what to read, how, what to judge and where to write.
pub struct ScanPlan {
    pub setup: Setup,
    /// CDR inputs as given (files, directories, globs); expanded once the output lock is held.
    pub inputs: Vec<PathBuf>,
    /// Join logs as given; none without `--joins`.
    pub joins: Vec<PathBuf>,
    /// SMS send logs as given (`--sms`).
    pub sms: Vec<PathBuf>,
    pub ip_country: Option<PathBuf>,
    pub out: PathBuf,
    /// `--history DIR`: day profiles kept across runs.
    pub history: Option<PathBuf>,
    /// The local days whose shifts are audited (inclusive); None = every day in the inputs.
    pub days: Option<(NaiveDate, NaiveDate)>,
    /// Operator partitions, one in memory at a time (1 = the whole input at once).
    pub partitions: u32,
    pub fail_on: Option<Severity>,
    /// `--redact`: callee and member numbers replaced by keyed pseudonyms.
    pub redactor: Option<Redactor>,
    /// CSVs start with a UTF-8 BOM.
    pub excel: bool,
    /// Dossiers in report.html (0 = all).
    pub report_dossiers: usize,
    /// Draw the progress spinner on stderr.
    pub progress: bool,
    /// No summary on stdout.
    pub quiet: bool,
    pub log_file: Option<PathBuf>,
    pub ignore_memory_check: bool,
    /// The config's `[[allow]]` entries and `--allow` files' (empty: nothing is suppressed).
    pub allow: crate::allow::Allowlist,
    /// `--allow FILE`s, for the evidence manifest.
    pub allow_files: Vec<PathBuf>,
}

impl ScanPlan {
    /// Resolve `scan`'s flags and config; every argument error is found here, before any lock.
    pub fn resolve(args: &ScanArgs) -> Result<Self> {
        use std::io::IsTerminal;
        let setup = resolve(&args.load)?;
        let days = day_range(args.date, args.since, args.until)?;
        anyhow::ensure!(
            args.partitions == 1 || args.history.is_none(),
            "--partitions does not combine with --history yet; nothing read"
        );
        Ok(Self {
            inputs: args.input.inputs.clone(),
            joins: args.input.joins.clone(),
            sms: args.sms.clone(),
            ip_country: args.input.ip_country.clone(),
            out: args.out.clone(),
            history: args.history.clone(),
            days,
            partitions: args.partitions,
            fail_on: args.fail_on,
            redactor: args.redact.redactor()?,
            excel: args.excel,
            report_dossiers: args.report_dossiers,
            progress: args.progress || (std::io::stderr().is_terminal() && !args.quiet),
            quiet: args.quiet,
            log_file: args.log_file.clone(),
            ignore_memory_check: args.ignore_memory_check,
            allow: crate::allow::Allowlist::load(&setup.config.allow, &args.allow)?,
            allow_files: args.allow.clone(),
            setup,
        })
    }
}

impl ScanPlan {
    /// `normalize`'s plan: a whole scan's loading and enrichment, no rules, no selection of days.
    pub fn normalize(args: &crate::cli::NormalizeArgs) -> Result<Self> {
        Ok(Self {
            setup: resolve(&args.load)?,
            inputs: args.input.inputs.clone(),
            joins: args.input.joins.clone(),
            sms: Vec::new(),
            ip_country: args.input.ip_country.clone(),
            out: args.out.clone(),
            history: None,
            days: None,
            partitions: 1,
            fail_on: None,
            redactor: args.redact.redactor()?,
            excel: false,
            report_dossiers: 0,
            progress: false,
            quiet: args.quiet,
            log_file: None,
            ignore_memory_check: true,
            allow: Default::default(),
            allow_files: Vec::new(),
        })
    }
}

/// The selected local days, if any: (first, last), inclusive.
fn day_range(
    date: Option<NaiveDate>,
    since: Option<NaiveDate>,
    until: Option<NaiveDate>,
) -> Result<Option<(NaiveDate, NaiveDate)>> {
    let (a, b) = match (date, since, until) {
        (Some(d), _, _) => (d, d),
        (None, None, None) => return Ok(None),
        (None, s, u) => (s.unwrap_or(NaiveDate::MIN), u.unwrap_or(NaiveDate::MAX)),
    };
    anyhow::ensure!(a <= b, "--since {a} is after --until {b}");
    Ok(Some((a, b)))
}

/// A `cards` run, resolved.
pub struct CardsPlan {
    pub setup: Setup,
    pub ledgers: Vec<PathBuf>,
    pub sales: Vec<PathBuf>,
    pub sms: Vec<PathBuf>,
    pub joins: Vec<PathBuf>,
    pub out: PathBuf,
    pub fail_on: Option<Severity>,
    /// `--redact`: SMS recipients, shop buyers and join members replaced by keyed pseudonyms.
    pub redactor: Option<Redactor>,
    /// The key of the card ids' pseudonyms: the redaction key when given (`--redact-key` or its
    /// environment variable, with or without `--redact`), else the built-in one.
    pub card_key: Option<String>,
    pub excel: bool,
    pub quiet: bool,
}

impl CardsPlan {
    pub fn resolve(args: &CardsArgs) -> Result<Self> {
        anyhow::ensure!(
            !(args.ledgers.is_empty() && args.sales.is_empty() && args.sms.is_empty()),
            "cards needs a card ledger, --sales FILE or --sms FILE; nothing read"
        );
        anyhow::ensure!(
            args.load.format.is_none_or(|f| matches!(f, Format::Generic | Format::Parquet | Format::Ndjson)),
            "cards reads header tables: --format generic, parquet or ndjson (or none); nothing read"
        );
        let setup = resolve(&args.load)?;
        Ok(Self {
            setup,
            ledgers: args.ledgers.clone(),
            sales: args.sales.clone(),
            sms: args.sms.clone(),
            joins: args.joins.clone(),
            out: args.out.clone(),
            fail_on: args.fail_on,
            redactor: args.redact.redactor()?,
            card_key: args.redact.redact_key.clone(),
            excel: args.excel,
            quiet: args.quiet,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_config() {
        let args = LoadArgs { tz: Some("UTC".into()), home_region: Some("gb".into()), ..Default::default() };
        let s = resolve(&args).unwrap();
        assert_eq!(s.load.tz, chrono_tz::UTC);
        assert_eq!(s.phones.home(), "GB");
        let bad = LoadArgs { tz: Some("Nowhere/City".into()), ..Default::default() };
        assert!(resolve(&bad).is_err());
        let bad = LoadArgs { home_region: Some("XX".into()), ..Default::default() };
        assert!(resolve(&bad).is_err());
        let e = format!("{:#}", validate(&Config::from_toml("[columns]\nx = \"nope\"\n").unwrap()).unwrap_err());
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn day_ranges() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(day_range(None, None, None).unwrap(), None);
        assert_eq!(day_range(Some(d("2026-03-02")), None, None).unwrap(), Some((d("2026-03-02"), d("2026-03-02"))));
        assert_eq!(day_range(None, Some(d("2026-03-02")), None).unwrap(), Some((d("2026-03-02"), NaiveDate::MAX)));
        assert!(day_range(None, Some(d("2026-03-03")), Some(d("2026-03-02"))).is_err());
    }
}
