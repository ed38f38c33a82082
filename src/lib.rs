//! diversion-audit: an auditor for VoIP call-detail records that exposes traffic-diversion call farms.
//!
//! Data flows one way: [`load`] (formats, encodings, times, rejects) → [`enrich`] (E.164 numbers,
//! IP countries) → [`prepare`] (sorted legs, shifts) → [`rules`] → findings → [`outputs`] and
//! [`report`]. [`pipeline`] runs that flow over one or more operator partitions; [`setup`] turns
//! flags and the config into the plan the [`commands`] follow. See docs/architecture.md.

pub mod allow;
pub mod cli;
pub mod coded;
pub mod commands;
pub mod config;
pub mod diag;
pub mod enrich;
pub mod exit_codes;
pub mod frame;
pub mod load;
pub mod lock;
pub mod log;
pub mod memory;
pub mod outputs;
pub mod par;
pub mod pipeline;
pub mod prepare;
pub mod redact;
pub mod report;
pub mod rules;
pub mod setup;
pub mod signals;
pub mod time;
pub mod triage;
