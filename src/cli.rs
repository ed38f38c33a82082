//! Command-line interface (clap derive). Each field's doc comment is its `--help` text.

use crate::config::DateOrderName;
use crate::load::decode::Encoding;
use crate::load::format::Format;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

const EXIT_CODES: &str = "\
Exit codes:
  0    success
  1    (scan, cards) a finding at or above --fail-on exists
  2    error: bad arguments or config, an input that could not be read (nothing written),
       rejected rows under --strict, or (scan) inputs too large for the memory available
  75   (scan, cards) another run holds the --out or --history directory; nothing done, try later
  130  interrupted by SIGINT; 143 by SIGTERM (temporaries removed, earlier outputs kept)";

/// Audit VoIP call-detail records for traffic-diversion call farms (话务引流): operators with 8–10 h
/// of talk per shift, foreign caller IDs shown from home soil, and callees pulled into chat groups.
#[derive(Parser, Debug)]
#[command(name = "diversion-audit", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run every detection rule in parallel and write findings.csv, findings.jsonl, operators.csv,
    /// shifts.csv, groups.csv, rejected.csv and run.json to --out; print a summary.
    #[command(after_help = EXIT_CODES)]
    Scan(ScanArgs),
    /// One operator's dossier from a finished scan, as Markdown, JSON or HTML, for a case file.
    Report(ReportArgs),
    /// List the rules: id, what each finds, and the thresholds in force.
    Rules(RulesArgs),
    /// Print one rule's documentation.
    Explain {
        /// Rule id (see `diversion-audit rules`).
        rule: String,
    },
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Read inputs and report, per file, the detected format, encoding, rows read, rejected and
    /// duplicated, and the time range; overall operators, distinct caller IDs and the foreign share.
    #[command(after_help = EXIT_CODES)]
    Inspect(InspectArgs),
    /// Write synthetic CDRs (CSV and Parquet), a chat-group join log, an IP-country table and
    /// truth.json with per-operator labels, streaming (10^8 rows without holding them in memory).
    #[command(after_help = EXIT_CODES)]
    Generate(GenerateArgs),
    /// Load and enrich CDRs (formats, legs and direction, E.164, countries, IP countries,
    /// duplicates, rejects) without judging them, and write the canonical Parquet that `spark/`
    /// audits: `DIR/day=YYYY-MM-DD/part-ID.parquet`, the join log in `DIR/_joins/`, rejected rows
    /// in `DIR/_rejected/ID.csv`, `DIR/_manifests/ID.json` and the evidence record
    /// `DIR/_evidence/ID.json` (docs/scale-out.md).
    #[command(after_help = EXIT_CODES)]
    Normalize(NormalizeArgs),
    /// Audit a recharge provider's card ledger, card shops' sales logs and SMS send logs for the
    /// order-brushing chain (prepaid-card laundering, "1069" recruitment texts): findings.csv,
    /// findings.jsonl, suppliers.csv, shops.csv, sms_accounts.csv, contacts.csv, the flagged rows,
    /// dossiers.json, rejected.csv and run.json to --out (docs/cards.md).
    #[command(after_help = EXIT_CODES)]
    Cards(CardsArgs),
    /// Check an output directory against its manifest.json: re-hash (SHA-256) every input it lists
    /// and every output, and name each file that changed or is missing. Exit 0 when all match, 1
    /// when one changed or is missing, 2 when it cannot tell (no or unreadable manifest, a file it
    /// may not read).
    #[command(after_help = VERIFY_EXIT_CODES)]
    Verify(VerifyArgs),
    /// Print the shell completion script (install: `diversion-audit completions bash >
    /// /etc/bash_completion.d/diversion-audit`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff; `diversion-audit man | man -l -`), or write one page per command.
    Man {
        /// Write `diversion-audit.1` and `diversion-audit-COMMAND.1` into this directory instead.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

const VERIFY_EXIT_CODES: &str = "Exit codes:
  0    every input and output matches the manifest
  1    a file changed or is missing
  2    cannot verify: no or unreadable manifest.json, or a file that cannot be read";

/// `verify`'s flags.
#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    /// An output directory of `scan` or `cards` (holding manifest.json), or a manifest file
    /// (`normalize`'s `DIR/_evidence/ID.json`, one per run).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Check the outputs only (the inputs were moved, or are on another machine).
    #[arg(long)]
    pub skip_inputs: bool,
    /// `text`: one line per file that differs and a total; `json`: every file's check.
    #[arg(long, value_enum, default_value = "text")]
    pub format: VerifyFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum VerifyFormat {
    Text,
    Json,
}

/// `cards`' flags.
#[derive(Args, Debug, Clone)]
pub struct CardsArgs {
    /// Card ledgers: one row per card acquired (card id, carrier, face value, supplier, price,
    /// acquired, stocked and redeemed times; English or Chinese headers; CSV/TSV, Parquet, NDJSON;
    /// files, directories or globs). A PIN column is never read.
    #[arg(value_name = "LEDGER")]
    pub ledgers: Vec<PathBuf>,
    /// Card shops' sales logs (shop, card id, face value, sale price, sold at, buyer).
    #[arg(long, value_name = "FILE")]
    pub sales: Vec<PathBuf>,
    /// SMS send logs (platform, sub-account, signature, sender, recipient, sent at, text).
    #[arg(long, value_name = "FILE")]
    pub sms: Vec<PathBuf>,
    /// Chat-group join logs, to link the texts' contacts and recipients to groups.
    #[arg(long, value_name = "FILE")]
    pub joins: Vec<PathBuf>,
    /// Output directory (created if missing); every file in it is replaced atomically.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Exit 1 when a finding at or above this severity exists.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<crate::rules::Severity>,
    /// Print no summary (errors and warnings still go to stderr).
    #[arg(long)]
    pub quiet: bool,
    /// Start every CSV with a UTF-8 byte-order mark so Chinese Excel opens it in the right encoding.
    #[arg(long)]
    pub excel: bool,
    #[command(flatten)]
    pub redact: RedactArgs,
    #[command(flatten)]
    pub load: LoadArgs,
}

/// `normalize`'s flags: what to read, where to write.
#[derive(Args, Debug, Clone)]
pub struct NormalizeArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Output directory (created if missing). Parts are named by a hash of the inputs (ID), so runs
    /// over other inputs, on this host or others, add theirs beside them; re-running the same
    /// inputs replaces its own parts.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Print no summary (errors and warnings still go to stderr).
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub redact: RedactArgs,
    #[command(flatten)]
    pub load: LoadArgs,
}

/// How inputs are read; shared by every command that loads CDRs.
#[derive(Args, Debug, Clone, Default)]
pub struct LoadArgs {
    /// TOML configuration file (`config init` prints every key); flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// IANA time zone of timestamps written without an offset [config: input.tz; default Asia/Shanghai].
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// ISO region of home numbers; national numbers are read in it [config: input.home_region; default CN].
    #[arg(long, value_name = "REGION")]
    pub home_region: Option<String>,
    /// Input format instead of detecting it from the header / column count.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Text encoding instead of detecting it (BOM → UTF-8/16, valid UTF-8, else GB18030).
    #[arg(long, value_enum)]
    pub encoding: Option<Encoding>,
    /// Year-last dates such as 01/02/2026 [config: input.date_order; default month-first].
    #[arg(long, value_enum)]
    pub date_order: Option<DateOrderName>,
    /// Any rejected row is an error (exit 2) instead of a count in the report.
    #[arg(long)]
    pub strict: bool,
    /// An input with no data rows (empty, or a header only) is a warning instead of an error.
    #[arg(long)]
    pub allow_empty: bool,
    /// Read an input most of whose rows are rejected instead of stopping on it
    /// [config: input.max_reject_share; default 0.5].
    #[arg(long)]
    pub allow_rejects: bool,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Write the commented default configuration (to stdout, or to --out FILE).
    Init {
        /// Write here instead of stdout (refuses to overwrite).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub struct RulesArgs {
    /// Show the thresholds of this configuration instead of the defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// What to read: CDRs, join logs, the IP-country table (shared by scan and inspect).
#[derive(Args, Debug, Clone)]
pub struct InputArgs {
    /// CDR files, directories or glob patterns (CSV/TSV, Parquet, NDJSON; plain, .gz or .zst).
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Chat-group join logs (group_id, member, joined_at; files, directories or globs).
    #[arg(long, value_name = "FILE")]
    pub joins: Vec<PathBuf>,
    /// IP → country table (MaxMind .mmdb or `network,country` CSV).
    #[arg(long, value_name = "FILE")]
    pub ip_country: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct ScanArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// SMS send logs: judged by sms-recruitment, their recipients linked to the callees and the
    /// join log (sms_accounts.csv, contacts.csv, sms_flagged.csv; docs/cards.md).
    #[arg(long, value_name = "FILE")]
    pub sms: Vec<PathBuf>,
    /// Output directory (created if missing); every file in it is replaced atomically.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Exit 1 when a finding at or above this severity exists; alerts.jsonl holds the new findings
    /// at or above it (without it, every new finding).
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<crate::rules::Severity>,
    /// Allowlist (CSV `kind,value,reason,author,expires`, or TOML `[[allow]]`; repeatable): findings
    /// an entry covers go to suppressed.csv with the entry, not to findings.* (docs/batch.md).
    #[arg(long, value_name = "FILE")]
    pub allow: Vec<PathBuf>,
    /// Show progress on stderr even when it is not a terminal.
    #[arg(long)]
    pub progress: bool,
    /// Print no summary (errors and warnings still go to stderr).
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub redact: RedactArgs,
    /// Start every CSV with a UTF-8 byte-order mark so Chinese Excel opens it in the right encoding.
    #[arg(long)]
    pub excel: bool,
    /// report.html holds the dossiers of this many highest-risk operators (0 = all); every dossier
    /// is in dossiers.json and `report --operator`.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub report_dossiers: usize,
    /// Audit only the shifts that start on this local day (calls after midnight stay with their
    /// shift); the inputs may hold more. Same as --since D --until D.
    #[arg(long, value_name = "YYYY-MM-DD", conflicts_with_all = ["since", "until"])]
    pub date: Option<chrono::NaiveDate>,
    /// Audit only shifts starting on or after this local day.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub since: Option<chrono::NaiveDate>,
    /// Audit only shifts starting on or before this local day.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub until: Option<chrono::NaiveDate>,
    /// Keep per-operator day profiles here (Parquet, `date=YYYY-MM-DD/profiles.parquet`) and read
    /// earlier days from it for the cross-day rules (long-shift-streak, repeat-spoofer). The audited
    /// days' partitions are replaced; other days are kept.
    #[arg(long, value_name = "DIR")]
    pub history: Option<PathBuf>,
    /// Also append errors, warnings and a start/end line per run to this file (stderr still gets
    /// errors and warnings).
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// Run even when the CDR inputs' estimated peak memory (~320 bytes a row) exceeds the memory
    /// available (MemAvailable plus free swap); without it such a scan stops before reading (exit 2)
    /// rather than being killed by the kernel part way through.
    #[arg(long)]
    pub ignore_memory_check: bool,
    /// Scan the CDRs in N parts split by a hash of the operator id, one part in memory at a time,
    /// for inputs larger than memory: each input is read N times (slower), peak memory is about a
    /// N-th. Results are the same as a whole scan. Not with --history (yet).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub partitions: u32,
    #[command(flatten)]
    pub load: LoadArgs,
}

/// Pseudonymisation of callee and join-member numbers.
#[derive(Args, Debug, Clone, Default)]
pub struct RedactArgs {
    /// Replace callee and join-member numbers (`cards`: SMS recipients and shop buyers) by keyed
    /// pseudonyms (R-…) in every output; operator ids and caller IDs stay. Rejected rows keep
    /// file, line and reason but not their raw text.
    #[arg(long)]
    pub redact: bool,
    /// The pseudonymisation key (at least 8 characters); same key, same pseudonyms across runs.
    #[arg(long, env = "DIVERSION_AUDIT_REDACT_KEY", value_name = "KEY", hide_env_values = true)]
    pub redact_key: Option<String>,
}

impl RedactArgs {
    pub fn redactor(&self) -> anyhow::Result<Option<crate::redact::Redactor>> {
        if !self.redact {
            return Ok(None);
        }
        let key = self.redact_key.as_deref().ok_or_else(|| {
            anyhow::anyhow!(
                "--redact needs a key: --redact-key KEY or the environment variable DIVERSION_AUDIT_REDACT_KEY"
            )
        })?;
        Ok(Some(crate::redact::Redactor::new(key)?))
    }
}

/// Output format of `report`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Html,
    Md,
    Json,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The output directory of a finished scan (it holds dossiers.json).
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,
    /// Operator whose dossier to print.
    #[arg(long, value_name = "ID", required_unless_present_any = ["crew", "supplier"], conflicts_with = "crew")]
    pub operator: Option<String>,
    /// Crew whose page to print (a `crew_id` of crews.csv: a crew that is a finding or holds an
    /// operator with a dossier).
    #[arg(long, value_name = "ID")]
    pub crew: Option<String>,
    /// From a `cards` run: the dossier of a supplier, shop or SMS sub-account with a finding.
    #[arg(long, value_name = "ID", conflicts_with_all = ["operator", "crew"])]
    pub supplier: Option<String>,
    #[arg(long, value_enum, default_value = "md")]
    pub format: ReportFormat,
    /// Write to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub redact: RedactArgs,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Write rejected rows (file, line, reason, raw) to this CSV.
    #[arg(long, value_name = "FILE")]
    pub rejected: Option<PathBuf>,
    #[command(flatten)]
    pub load: LoadArgs,
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Number of operators (all populations together).
    #[arg(long, default_value_t = 150)]
    pub operators: usize,
    /// Number of days.
    #[arg(long, default_value_t = 4)]
    pub days: u32,
    /// Random seed: the same seed gives the same files.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// First local day (YYYY-MM-DD).
    #[arg(long, default_value = "2026-03-02")]
    pub start_date: chrono::NaiveDate,
    /// Stop after about this many CDR rows in total: calls per operator-day are scaled to reach it
    /// (0 = the natural rate of ~100–300 calls per operator-day).
    #[arg(long, default_value_t = 0)]
    pub rows: u64,
    /// Skip the Parquet copy of the CDRs.
    #[arg(long)]
    pub no_parquet: bool,
    /// Skip the overlapping second export (a repeat of part of the last day, as desks receive it).
    #[arg(long)]
    pub no_overlap: bool,
    /// How the CDRs are written: `generic` (one row a call, CSV and Parquet), `asterisk` (21-column
    /// `cdr_csv` legs: Local channels, queues, `h` rows), `grandstream` (UCM download, ForkCDR
    /// legs with a Session), `cucm` (CDR flat file: phone to trunk, queue CTI route point),
    /// `3cx` (CDR service records), `kamailio` (acc syslog lines: INVITE, BYE, REGISTER) or
    /// `carrier` (the callees' 话单: the same calls seen from the victims' side, no operator). The
    /// PBX shapes add inbound queue agents and shared seats.
    #[arg(long, value_enum, default_value_t = Shape::Generic)]
    pub shape: Shape,
    /// Also write `cards/`: a recharge provider's card ledger (ledger.csv with Chinese headers and
    /// PINs, ledger.parquet), card shops' sales (sales.csv) and truth.json, for `cards`.
    #[arg(long)]
    pub cards: bool,
    /// Ledger rows with --cards.
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    pub card_rows: u64,
    /// Also write `sms/`: a "1069" platform's send log (sms_log.csv), the recruiters' group joins
    /// (joins.csv) and truth.json; recruiters text numbers of the crews' lead lists too.
    #[arg(long)]
    pub sms: bool,
}

/// `generate --shape`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    Generic,
    Asterisk,
    Grandstream,
    /// Cisco CUCM CDR flat file (129 columns, header and type row).
    Cucm,
    /// 3CX CDR service output (no header, a BOM).
    #[value(name = "3cx")]
    ThreeCx,
    /// Kamailio acc syslog lines (INVITE / BYE / REGISTER).
    Kamailio,
    /// The victims' side: each call as the callee's carrier 话单 shows it (no operator).
    Carrier,
}

impl Shape {
    /// A switch's export: the population gains inbound queue agents and shared seats.
    pub fn is_pbx(self) -> bool {
        !matches!(self, Shape::Generic | Shape::Carrier)
    }
}
