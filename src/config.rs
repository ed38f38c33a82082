//! The audit configuration: TOML file (`--config`) merged with command-line flags into one [`Config`].
//! Unknown keys are rejected with a message that names them.

use crate::load::decode::Encoding;
pub use crate::load::legs::CallModel;
pub use crate::rules::RulesConfig;
use crate::time::DateOrder;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Whole configuration. Every field has a documented default.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
#[derive(Default)]
pub struct Config {
    pub input: InputConfig,
    /// How seats, trunks and call directions are told apart (docs/calls.md).
    pub calls: CallModel,
    pub rules: RulesConfig,
    /// Header name → canonical field (`"坐席名称" = "operator_id"`), for exports with unusual headers.
    pub columns: BTreeMap<String, String>,
    /// Allowlist entries (`[[allow]]`): findings they cover go to suppressed.csv (`crate::allow`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<crate::allow::Entry>,
}

/// How inputs are read.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct InputConfig {
    /// IANA zone of timestamps written without an offset. Default `Asia/Shanghai`.
    pub tz: String,
    /// ISO region whose numbers are "home" (national numbers are read in it). Default `CN`.
    pub home_region: String,
    /// Year-last dates such as `01/02/2026`: `month-first` (default) or `day-first`.
    pub date_order: DateOrderName,
    /// Force an encoding (`utf-8`, `gb18030`, …) instead of detecting it. Default: detect.
    pub encoding: Option<Encoding>,
    /// An input with more than this share of its rows rejected is an error (the wrong format, or a
    /// broken export); `--allow-rejects` reads it anyway. Default 0.5.
    pub max_reject_share: f64,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DateOrderName {
    #[default]
    MonthFirst,
    DayFirst,
}

impl From<DateOrderName> for DateOrder {
    fn from(d: DateOrderName) -> Self {
        match d {
            DateOrderName::MonthFirst => DateOrder::MonthFirst,
            DateOrderName::DayFirst => DateOrder::DayFirst,
        }
    }
}

impl Default for InputConfig {
    fn default() -> Self {
        Self {
            tz: "Asia/Shanghai".into(),
            home_region: "CN".into(),
            date_order: DateOrderName::MonthFirst,
            encoding: None,
            max_reject_share: 0.5,
        }
    }
}

/// The `[input]` part of the commented default configuration.
const INPUT_TOML: &str = r#"# diversion-audit configuration. Every key is optional; these are the defaults.

[input]
tz = "Asia/Shanghai"        # IANA zone of timestamps written without an offset
home_region = "CN"          # ISO 3166 alpha-2: numbers of this region are "home"
date_order = "month-first"  # year-last dates like 01/02/2026: "month-first" or "day-first"
# encoding = "gb18030"      # force an encoding instead of detecting it
max_reject_share = 0.5      # an input with more of its rows rejected is an error (--allow-rejects reads it)

"#;

const COLUMNS_TOML: &str = r#"[columns]
# "坐席名称" = "operator_id"  # extra header names mapped to canonical fields

# Allowlist (also --allow FILE): findings an entry covers go to suppressed.csv, not away (docs/batch.md).
# [[allow]]
# kind = "cli"                    # operator, cli, cli_prefix, ip (address or network), group
# value = "+44 20 7946 0000"
# reason = "bank's overseas call centre"
# author = "desk-3"
# expires = "2026-12-31"          # last local day it holds; expired entries are warned about
"#;

/// The commented default configuration that `config init` writes: `[input]`, `[calls]`, each rule's section
/// from its own file, `[columns]`. A test checks that it parses to [`Config::default`], so the
/// comments cannot drift from the code.
pub fn default_toml() -> String {
    format!("{INPUT_TOML}{}{}{COLUMNS_TOML}", crate::load::legs::TOML, RulesConfig::toml())
}

impl Config {
    /// Read a TOML file; unknown keys are an error naming the key and the file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read config", path.display()))?;
        Self::from_toml(&text).with_context(|| format!("{}: invalid config", path.display()))
    }

    pub fn from_toml(text: &str) -> Result<Self> {
        let cfg: Config = toml::from_str(text)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// What the config knows alone: the zone, every rule section's own checks. (The home region
    /// and `[columns]` are checked where phone numbers and fields are known: `setup`.)
    pub fn validate(&self) -> Result<()> {
        self.tz()?;
        anyhow::ensure!(
            self.input.max_reject_share > 0.0 && self.input.max_reject_share <= 1.0,
            "input.max_reject_share must be in (0, 1]"
        );
        self.calls.validate()?;
        self.rules.validate()
    }

    pub fn tz(&self) -> Result<chrono_tz::Tz> {
        self.input.tz.parse().map_err(|_| {
            anyhow::anyhow!("unknown time zone {:?} (expected an IANA name such as Asia/Shanghai)", self.input.tz)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commented_default_is_the_default() {
        assert_eq!(Config::from_toml(&default_toml()).unwrap(), Config::default());
    }

    #[test]
    fn defaults_and_unknown_keys() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c, Config::default());
        let c = Config::from_toml(
            "[input]\ntz = \"UTC\"\nhome_region = \"GB\"\n[columns]\n\"Agent Name\" = \"operator_id\"\n",
        )
        .unwrap();
        assert_eq!(c.input.tz, "UTC");
        assert_eq!(c.columns["Agent Name"], "operator_id");
        let e = format!("{:#}", Config::from_toml("[input]\ntimezone = \"UTC\"\n").unwrap_err());
        assert!(e.contains("timezone"), "{e}");
        let e = format!("{:#}", Config::from_toml("[input]\ntz = \"Mars/Base\"\n").unwrap_err());
        assert!(e.contains("Mars/Base"), "{e}");
        let e = format!("{:#}", Config::from_toml("[rules.long_shift]\nmin_talk = 7\n").unwrap_err());
        assert!(e.contains("min_talk"), "{e}");
    }
}
