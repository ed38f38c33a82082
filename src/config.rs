//! The audit configuration: TOML file (`--config`) merged with command-line flags into one [`Config`].
//! Unknown keys are rejected with a message that names them.

use crate::load::decode::Encoding;
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
    pub rules: RulesConfig,
    /// Header name → canonical field (`"坐席名称" = "operator_id"`), for exports with unusual headers.
    pub columns: BTreeMap<String, String>,
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
        }
    }
}

/// Thresholds of the detection rules (`[rules.*]`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    pub long_shift: LongShiftConfig,
    pub spoofed_foreign_cli: SpoofConfig,
    pub foreign_cli_fanout: FanoutConfig,
    pub group_invite_conversion: ConversionConfig,
    pub long_shift_streak: StreakConfig,
    pub repeat_spoofer: StreakConfig,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LongShiftConfig {
    /// A gap between calls longer than this starts a new shift (minutes). Default 120.
    pub shift_break_minutes: i64,
    /// A shift with at least this much talk is a finding (hours). Default 8.
    pub min_talk_hours: f64,
    /// The paid-quota band of talk hours that scores highest. Default [8, 10].
    pub quota_band_hours: [f64; 2],
}

impl Default for LongShiftConfig {
    fn default() -> Self {
        Self { shift_break_minutes: 120, min_talk_hours: 8.0, quota_band_hours: [8.0, 10.0] }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SpoofConfig {
    /// Calls per operator and local day needed for a finding. Default 5.
    pub min_calls: u32,
    /// Campaigns / outbound tasks known to run from home soil (their calls count as domestic origin).
    pub domestic_campaigns: Vec<String>,
    /// Trunks / gateways known to be domestic.
    pub domestic_trunks: Vec<String>,
}

impl Default for SpoofConfig {
    fn default() -> Self {
        Self { min_calls: 5, domestic_campaigns: vec![], domestic_trunks: vec![] }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FanoutConfig {
    /// Distinct home callees one foreign caller ID must reach in a local day. Default 50.
    pub fanout_min_callees: u32,
}

impl Default for FanoutConfig {
    fn default() -> Self {
        Self { fanout_min_callees: 50 }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ConversionConfig {
    /// A join counts when it happens between the answer and this many minutes after the call ended.
    pub conversion_window_minutes: i64,
    /// Converted callees an operator needs for a finding. Default 3.
    pub min_conversions: u32,
    /// Converted ÷ answered distinct callees an operator needs for a finding. Default 0.02.
    pub min_conversion_rate: f64,
}

impl Default for ConversionConfig {
    fn default() -> Self {
        Self { conversion_window_minutes: 60, min_conversions: 3, min_conversion_rate: 0.02 }
    }
}

/// Cross-day rules (`long_shift_streak`, `repeat_spoofer`): a day counts when the day rule flagged
/// the operator on it; `min_days` such days within the last `window_days` local days (ending on the
/// last day audited) make a finding. Earlier days come from `--history`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StreakConfig {
    pub min_days: u32,
    pub window_days: u32,
}

impl Default for RulesConfig {
    fn default() -> Self {
        Self {
            long_shift: LongShiftConfig::default(),
            spoofed_foreign_cli: SpoofConfig::default(),
            foreign_cli_fanout: FanoutConfig::default(),
            group_invite_conversion: ConversionConfig::default(),
            long_shift_streak: StreakConfig { min_days: 5, window_days: 7 },
            repeat_spoofer: StreakConfig { min_days: 3, window_days: 7 },
        }
    }
}

/// The commented default configuration that `config init` writes. A test checks that it parses to
/// [`Config::default`], so the comments cannot drift from the code.
pub const DEFAULT_TOML: &str = r#"# diversion-audit configuration. Every key is optional; these are the defaults.

[input]
tz = "Asia/Shanghai"        # IANA zone of timestamps written without an offset
home_region = "CN"          # ISO 3166 alpha-2: numbers of this region are "home"
date_order = "month-first"  # year-last dates like 01/02/2026: "month-first" or "day-first"
# encoding = "gb18030"      # force an encoding instead of detecting it

[rules.long_shift]
shift_break_minutes = 120     # a longer gap between calls starts a new shift
min_talk_hours = 8.0          # a shift with at least this much talk is a finding
quota_band_hours = [8.0, 10.0] # the paid quota band (8-10 h of talk a day) scores highest

[rules.spoofed_foreign_cli]
min_calls = 5                 # foreign-CLI calls from home soil per operator and local day
domestic_campaigns = []       # campaigns known to run from home soil, e.g. ["edu-refund-01"]
domestic_trunks = []          # trunks / gateways known to be domestic

[rules.foreign_cli_fanout]
fanout_min_callees = 50       # distinct home callees one foreign CLI reaches in a local day

[rules.group_invite_conversion]
conversion_window_minutes = 60 # a join between the answer and this long after the call counts
min_conversions = 3            # converted callees needed for a finding
min_conversion_rate = 0.02     # converted / answered distinct callees needed for a finding

[rules.long_shift_streak]
min_days = 5                   # days with a long shift (above) ...
window_days = 7                # ... within this many local days ending on the last day audited

[rules.repeat_spoofer]
min_days = 3                   # days with a spoofed-foreign-cli finding ...
window_days = 7                # ... within this many local days (earlier days from --history)

[columns]
# "坐席名称" = "operator_id"  # extra header names mapped to canonical fields
"#;

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

    pub fn validate(&self) -> Result<()> {
        self.tz()?;
        crate::enrich::phone::PhoneParser::new(&self.input.home_region).map_err(anyhow::Error::msg)?;
        let known: Vec<&str> =
            crate::load::format::CDR.fields.iter().chain(crate::load::format::JOINS.fields).map(|f| f.name).collect();
        let r = &self.rules;
        anyhow::ensure!(r.long_shift.shift_break_minutes > 0, "rules.long_shift.shift_break_minutes must be > 0");
        anyhow::ensure!(r.long_shift.min_talk_hours > 0.0, "rules.long_shift.min_talk_hours must be > 0");
        anyhow::ensure!(
            r.long_shift.quota_band_hours[0] <= r.long_shift.quota_band_hours[1],
            "rules.long_shift.quota_band_hours must be [low, high]"
        );
        anyhow::ensure!(
            r.group_invite_conversion.conversion_window_minutes > 0,
            "rules.group_invite_conversion.conversion_window_minutes must be > 0"
        );
        for (name, s) in [("long_shift_streak", &r.long_shift_streak), ("repeat_spoofer", &r.repeat_spoofer)] {
            anyhow::ensure!(
                s.min_days >= 1 && s.min_days <= s.window_days && s.window_days <= 366,
                "rules.{name}: need 1 <= min_days <= window_days <= 366 (got {} and {})",
                s.min_days,
                s.window_days
            );
        }
        for (from, to) in &self.columns {
            anyhow::ensure!(
                known.contains(&to.as_str()),
                "[columns] {from:?} = {to:?}: unknown field {to:?}; fields are {}",
                known.join(", ")
            );
        }
        Ok(())
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
        assert_eq!(Config::from_toml(DEFAULT_TOML).unwrap(), Config::default());
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
        let e = format!("{:#}", Config::from_toml("[columns]\nx = \"nope\"\n").unwrap_err());
        assert!(e.contains("nope"), "{e}");
    }
}
