//! `scan --sms`: the SMS send logs beside the calls. Each partition hands over the audited calls
//! to numbers that were also texted (callee = recipient); after the partitions, `sms-recruitment`
//! judges the texts with the join log and those calls: victims both texted and called.

use crate::load::{self, Loaded, ledger};
use crate::prepare::AuditInput;
use crate::rules::cards::{LedgerInput, LedgerRule};
use crate::rules::{RuleOutput, RulesConfig};
use crate::setup::ScanPlan;
use anyhow::Result;
use polars::prelude::*;
use std::collections::HashSet;

pub struct Texts {
    pub loaded: Loaded,
    frame: DataFrame,
    recipients: HashSet<u64>,
    called: Vec<DataFrame>,
}

impl Texts {
    /// The SMS logs of `--sms`, if any: an unreadable one stops the scan.
    pub fn load(plan: &ScanPlan) -> Result<Option<Self>> {
        if plan.sms.is_empty() {
            return Ok(None);
        }
        let paths = load::expand_inputs(&plan.sms)?;
        let loaded = load::load_table(&paths, &plan.setup.load, &ledger::SMS, &plan.setup.phones)?;
        super::fail_on_unreadable(&loaded.files)?;
        let frame = crate::redact::sms_for_rules(&loaded.frame, plan.redactor.as_ref())?;
        let recipients = frame.column("recipient_num")?.u64()?.iter().flatten().collect();
        Ok(Some(Self { loaded, frame, recipients, called: Vec::new() }))
    }

    /// One partition's calls to texted numbers: (recipient_num, operator_id, calls, first_call_us).
    pub fn add(&mut self, input: &AuditInput) -> Result<()> {
        let callee = input.cdr.column("callee_num")?.u64()?;
        let mask: BooleanChunked =
            callee.iter().map(|c| Some(c.is_some_and(|c| self.recipients.contains(&c)))).collect();
        if !mask.any() {
            return Ok(());
        }
        let hit = input.cdr.select(["operator_id", "callee_num", "start_us"])?.filter(&mask)?;
        let called = hit
            .lazy()
            .group_by([col("callee_num").alias("recipient_num"), col("operator_id")])
            .agg([len().cast(DataType::Int64).alias("calls"), col("start_us").min().alias("first_call_us")])
            .collect()?;
        self.called.push(called);
        Ok(())
    }

    /// `sms-recruitment` over the texts, the join log and the calls to texted numbers.
    pub fn judge(&mut self, joins: Option<&DataFrame>, cfg: &RulesConfig, tz: chrono_tz::Tz) -> Result<RuleOutput> {
        let called = match std::mem::take(&mut self.called) {
            v if v.is_empty() => None,
            v => Some(crate::frame::concat_sorted(v, &["recipient_num", "operator_id"])?),
        };
        let input =
            LedgerInput { cards: None, sales: None, sms: Some(self.frame.clone()), joins: joins.cloned(), called, tz };
        crate::rules::cards::sms_recruitment::SmsRecruitment.run(&input, cfg)
    }
}
