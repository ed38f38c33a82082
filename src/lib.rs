//! diversion-audit: an auditor for VoIP call-detail records that exposes traffic-diversion call farms.
//!
//! Data flows one way: [`load`] (formats, encodings, times, rejects) → [`enrich`] (E.164 numbers,
//! IP countries) → rules → findings → reports.

pub mod cli;
pub mod coded;
pub mod config;
pub mod enrich;
pub mod generate;
pub mod history;
pub mod inspect;
pub mod load;
pub mod lock;
pub mod log;
pub mod memory;
pub mod output;
pub mod par;
pub mod parts;
pub mod redact;
pub mod report;
pub mod rules;
pub mod run;
pub mod scan;
pub mod signals;
pub mod time;
