//! Loading: inputs (files, directories, globs) → one canonical Polars frame, with per-file reports and
//! every rejected row kept with its file, line and reason.
//!
//! Text files (CSV/TSV in any supported format, plain, `.gz` or `.zst`) are decoded, split by the
//! tolerant splitter into the canonical raw text fields and typed by [`normalize`] as a lazy plan;
//! Parquet and NDJSON are scanned by Polars and go through the same plan.

pub mod decode;
pub mod format;
pub mod ledger;
pub mod legs;
pub mod normalize;
pub mod records;
pub mod split;

use crate::diag::trace;
use crate::enrich::phone::PhoneParser;
use crate::time::DateOrder;
use anyhow::{Context, Result, bail};
use chrono_tz::Tz;
use decode::Encoding;
use format::{CDR, Format, JOINS, Kind, Layout, Target};
use polars::prelude::*;
use rayon::prelude::*;
use split::{QuoteMode, for_each_line, split_fields};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// How inputs are read (resolved from CLI flags and the config file).
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Zone of naive timestamps.
    pub tz: Tz,
    pub date_order: DateOrder,
    /// Force an encoding instead of detecting it.
    pub encoding: Option<Encoding>,
    /// Force a format instead of detecting it.
    pub format: Option<Format>,
    /// Extra header name → canonical field mappings (`[columns]` in the config).
    pub columns: BTreeMap<String, String>,
    /// An input with no data rows is a warning, not an error.
    pub allow_empty: bool,
    /// A file with more than this share of its rows rejected is an error ([`mostly_rejected`]);
    /// None: no limit (the library default; the commands take `input.max_reject_share`).
    pub max_reject_share: Option<f64>,
    /// Canonical fields read as missing even when the input has them: `scan` leaves out the ones
    /// no enabled rule or report reads (a 10 M-row campaign column is ~0.3 GB of text).
    pub skip: Vec<&'static str>,
    /// Hold caller IDs, caller countries (and, in `enrich::cdr_ip_country`, source IPs and IP
    /// countries) as codes ([`crate::coded`]); `scan` does, `inspect` keeps text.
    pub coded: bool,
    /// Read only one operator partition's rows (`scan --partitions`).
    pub partition: Option<Partition>,
    /// `scan --partitions`: each text file's line chunks and every line's part, learnt by the first
    /// part's pass and shared by the options of the later parts (see [`TextParts`]).
    pub text_parts: Arc<TextParts>,
    /// How seats, trunks and directions are told apart (`[calls]`).
    pub calls: Arc<legs::CallModel>,
    /// `scan --partitions`: the trunks of calls read in an earlier part ([`legs::CallTrunks`]).
    pub call_trunks: Arc<legs::CallTrunks>,
}

/// What the first `--partitions` pass over a text file learnt: its line chunks and the part of every
/// line it split. A later part's pass skips the lines of other parts without splitting their fields
/// or counting lines again (100 M CSV rows in 10 parts: each later pass split every line, 11 s of
/// its 13 s, to keep a tenth of them).
#[derive(Debug, Default)]
pub struct TextParts {
    maps: std::sync::Mutex<std::collections::HashMap<String, Arc<TextPartMap>>>,
    /// Files a pass found to be UTF-8, with the length and modification time they had: a later
    /// pass over the same unchanged file does not check them again (100 M rows: 0.8 s a pass).
    utf8: std::sync::Mutex<std::collections::HashSet<(PathBuf, u64, std::time::SystemTime)>>,
}

#[derive(Debug)]
struct TextPartMap {
    /// The file's text length and the number of parts the ids are for: a file that changed
    /// between passes, or another split, is split again.
    len: usize,
    of: u32,
    chunks: Vec<(usize, usize, u64)>,
    /// Per chunk, the part of each line that reached the split (one byte a line: up to 256 parts).
    ids: Vec<Vec<u8>>,
}

impl TextParts {
    fn get(&self, file: &str, len: usize, of: u32) -> Option<Arc<TextPartMap>> {
        let maps = self.maps.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        maps.get(file).filter(|m| m.len == len && m.of == of).cloned()
    }

    fn put(&self, file: &str, map: TextPartMap) {
        let mut maps = self.maps.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        maps.insert(file.to_string(), Arc::new(map));
    }

    /// `path`'s length and modification time, if it can be read.
    fn stamp(path: &Path) -> Option<(PathBuf, u64, std::time::SystemTime)> {
        let m = std::fs::metadata(path).ok()?;
        Some((path.to_path_buf(), m.len(), m.modified().ok()?))
    }
}

/// One of `of` parts of the CDRs, split by a hash of the operator id: every call of an operator is
/// in the same part, whichever file or format holds it. Rows whose fields cannot be told apart (too
/// few or too many columns) and rows without an operator id belong to part 0, so each row is read,
/// counted and rejected in exactly one part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    pub index: u32,
    pub of: u32,
}

impl Partition {
    /// The part an operator id belongs to (FNV-1a of its bytes: stable across runs and builds).
    pub fn of_operator(op: Option<&str>, of: u32) -> u32 {
        let Some(op) = op else { return 0 };
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in op.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        // the high bits mixed in: FNV's low bits alone follow the last byte closely
        ((h ^ (h >> 32)) % u64::from(of.max(1))) as u32
    }

    pub fn owns(&self, op: Option<&str>) -> bool {
        Self::of_operator(op, self.of) == self.index
    }

    /// The rows this part owns, by their operator id (`op`, text).
    fn owned(self, op: Expr) -> Expr {
        op.map(
            move |c: Column| {
                let ops = c.str()?;
                let mask: BooleanChunked = ops.iter().map(|o| Some(self.owns(o))).collect();
                Ok(mask.with_name(c.name().clone()).into_column())
            },
            |_, f| Ok(Field::new(f.name().clone(), DataType::Boolean)),
        )
    }
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            tz: chrono_tz::Asia::Shanghai,
            date_order: DateOrder::MonthFirst,
            encoding: None,
            format: None,
            columns: BTreeMap::new(),
            allow_empty: false,
            max_reject_share: None,
            skip: Vec::new(),
            coded: false,
            partition: None,
            text_parts: Arc::default(),
            calls: Arc::default(),
            call_trunks: Arc::default(),
        }
    }
}

/// What happened to one input file.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct FileReport {
    pub path: String,
    pub format: Option<&'static str>,
    pub encoding: Option<&'static str>,
    /// Data lines (records) in the file, header and blank lines excluded.
    pub lines_in: u64,
    /// Rows kept (after rejects and duplicates).
    pub rows_read: u64,
    pub rows_rejected: u64,
    pub duplicates: u64,
    pub reject_reasons: BTreeMap<String, u64>,
    /// Records that are no calls (a type or totals row, CMR records, REGISTER and MESSAGE rows),
    /// by why: neither read nor rejected.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub not_calls: BTreeMap<String, u64>,
    /// How well the file fit the format it was read as, 0 to 1 (detection; 1 when forced).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// Earliest and latest start (CDR) or join time, UTC, RFC 3339.
    pub first_time: Option<String>,
    pub last_time: Option<String>,
    pub warnings: Vec<String>,
    /// Set when the file could not be loaded at all; the run goes on and exits 2.
    pub error: Option<String>,
}

/// One rejected row.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Reject {
    pub file: String,
    pub line: u64,
    pub reason: String,
    pub raw: String,
}

/// The result of loading a set of inputs.
pub struct Loaded {
    /// Canonical rows (typed, deduplicated), in input order.
    pub frame: DataFrame,
    pub files: Vec<FileReport>,
    pub rejects: Vec<Reject>,
    /// The texts of the columns `frame` holds as codes (with [`LoadOptions::coded`]).
    pub dicts: crate::coded::Dicts,
    /// With [`LoadOptions::coded`]: the caller IDs still being parsed; until
    /// [`crate::enrich::finish_callers`] the frame has no `caller_country`, `caller_valid`, `caller_num`.
    pub callers: Option<crate::enrich::PendingCallers>,
    /// CDRs: legs, calls, directions, legs without a seat ([`legs::finish`]).
    pub calls: legs::CallStats,
    /// Files of subscriber records (a carrier's 话单): their rows are at the end of `frame`, with no
    /// operator; `scan` judges them apart ([`split_files`]).
    pub subscriber_files: Vec<u32>,
}

impl Loaded {
    /// Nothing loaded: no frame, files or rejects.
    pub fn empty() -> Self {
        Self {
            frame: DataFrame::empty(),
            files: Vec::new(),
            rejects: Vec::new(),
            dicts: Default::default(),
            callers: None,
            calls: Default::default(),
            subscriber_files: Vec::new(),
        }
    }

    pub fn rows_read(&self) -> u64 {
        self.files.iter().map(|f| f.rows_read).sum()
    }
    pub fn rows_rejected(&self) -> u64 {
        self.files.iter().map(|f| f.rows_rejected).sum()
    }
    pub fn duplicates(&self) -> u64 {
        self.files.iter().map(|f| f.duplicates).sum()
    }
    pub fn failed_files(&self) -> usize {
        self.files.iter().filter(|f| f.error.is_some()).count()
    }
}

/// The error for a file most of whose rows were rejected (more than `max_share`): the wrong format
/// or a broken export must not pass as a quiet day. Names the file, the format it was read as, the
/// most common reason and the first rejected line.
pub fn mostly_rejected(f: &FileReport, first: Option<&Reject>, max_share: Option<f64>) -> Option<String> {
    let share = max_share?;
    if f.lines_in == 0 || f.error.is_some() {
        return None;
    }
    let r = f.rows_rejected as f64 / f.lines_in as f64;
    if r <= share {
        return None;
    }
    let top = f.reject_reasons.iter().max_by_key(|(_, n)| **n).map_or("?", |(k, _)| k.as_str());
    let sample =
        first.map(|r| format!("; line {}: {}", r.line, r.raw.chars().take(80).collect::<String>())).unwrap_or_default();
    Some(format!(
        "{}: {} of {} rows rejected ({:.0} %) reading it as {}, mostly \"{top}\"{sample}; the wrong --format or a broken export (--allow-rejects reads it anyway)",
        f.path,
        f.rows_rejected,
        f.lines_in,
        r * 100.0,
        f.format.unwrap_or("?")
    ))
}

/// The `--strict` error line: how many rows were rejected and where the first one is.
pub fn strict_message(all: &[Reject], first: &Reject) -> String {
    format!("--strict: {} rejected row(s); first: {}:{}: {}", all.len(), first.file, first.line, first.reason)
}

const DATA_EXTENSIONS: &[&str] =
    &["csv", "tsv", "txt", "log", "cdr", "sql", "parquet", "ndjson", "jsonl", "json", "gz", "zst"];

/// Expand inputs: a file is itself, a directory is every data file below it (sorted, hidden files and
/// README skipped), anything else is a glob pattern that must match something.
pub fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        if input.is_file() {
            out.push(input.clone());
        } else if input.is_dir() {
            let mut found = Vec::new();
            walk(input, &mut found).with_context(|| format!("{}: cannot list directory", input.display()))?;
            found.sort();
            if found.is_empty() {
                bail!("{}: directory holds no data files ({})", input.display(), DATA_EXTENSIONS.join(", "));
            }
            out.extend(found);
        } else {
            let pattern = input.to_string_lossy();
            let mut matched: Vec<PathBuf> = glob::glob(&pattern)
                .with_context(|| format!("{pattern}: not a file, directory or valid glob"))?
                .filter_map(|r| r.ok())
                .filter(|p| p.is_file())
                .collect();
            if matched.is_empty() {
                bail!("{pattern}: no such file, directory or glob match");
            }
            matched.sort();
            out.extend(matched);
        }
    }
    let mut seen = HashSet::new();
    out.retain(|p| seen.insert(p.canonicalize().unwrap_or_else(|_| p.clone())));
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
        if name.starts_with('.') || name.starts_with("readme") {
            continue;
        }
        if path.is_dir() {
            walk(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| DATA_EXTENSIONS.contains(&e.to_string_lossy().to_lowercase().as_str()))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Load CDR files into the canonical call schema.
/// Caller and callee numbers are normalised here (each distinct value once), before duplicates are
/// found, so that `139 1234 5679` and `+8613912345679` are the same callee.
pub fn load_cdrs(paths: &[PathBuf], opts: &LoadOptions, phones: &PhoneParser) -> Result<Loaded> {
    load(paths, opts, &CDR, phones)
}

/// Load chat-group join logs (`group_id`, `member`, `joined_at`, `platform`, `inviter`).
pub fn load_joins(paths: &[PathBuf], opts: &LoadOptions, phones: &PhoneParser) -> Result<Loaded> {
    load(paths, opts, &JOINS, phones)
}

/// Load a card ledger, a card shop's sales log or an SMS send log (`cards`, `--sms`): header tables
/// (CSV/TSV, Parquet, NDJSON) matched by name, rows typed and rejected like CDRs.
pub fn load_table(
    paths: &[PathBuf],
    opts: &LoadOptions,
    target: &'static Target,
    phones: &PhoneParser,
) -> Result<Loaded> {
    load(paths, opts, target, phones)
}

/// Raw text columns of one file before typing.
struct RawFile {
    /// Text inputs: the split columns. Parquet and NDJSON: the reading plan itself, so the typing
    /// step runs in the same streaming query and the raw columns never exist whole.
    frame: LazyFrame,
    format: Format,
    encoding: Option<Encoding>,
    /// Records read; None for a plan, whose typed rows are the count.
    lines_in: Option<u64>,
    early_rejects: Vec<Reject>,
    /// Decoded text, kept to quote rejected lines.
    text: Option<decode::Text>,
    /// The seat is derived from the exporter's channels: a leg may have none ([`legs`]).
    seatless_ok: bool,
    /// [`normalize::PASS_THROUGH`] fields the file lacks: added after typing as constants.
    absent: Vec<&'static str>,
    /// Records that are no calls, by why (type and totals rows, CMR records, REGISTER, …).
    not_calls: BTreeMap<&'static str, u64>,
    /// How well the file fit its detected format ([`format::Sniffed::confidence`]).
    confidence: Option<f32>,
    /// What the reader says of the file (a dump: which tables it read).
    note: Option<String>,
}

/// The [`normalize::PASS_THROUGH`] fields a layout reads nothing into.
fn absent_of(layout: &Layout, target: &'static Target) -> Vec<&'static str> {
    if target.kind != Kind::Cdr {
        return Vec::new();
    }
    target
        .fields
        .iter()
        .zip(&layout.sources)
        .filter(|(f, s)| s.is_none() && normalize::PASS_THROUGH.contains(&f.name))
        .map(|(f, _)| f.name)
        .collect()
}

fn load(paths: &[PathBuf], opts: &LoadOptions, target: &'static Target, phones: &PhoneParser) -> Result<Loaded> {
    let mut files = Vec::with_capacity(paths.len());
    let mut frames = Vec::new();
    let mut rejects = Vec::new();
    // `scan`: caller IDs and source IPs are coded as they are typed (a few thousand distinct texts
    // over millions of rows), one dictionary each across all files
    let coded: Vec<normalize::Streamed> = if opts.coded && target.kind == Kind::Cdr {
        crate::coded::STREAMED.iter().map(|n| (*n, Default::default())).collect()
    } else {
        Vec::new()
    };
    for (idx, path) in paths.iter().enumerate() {
        let display = path.display().to_string();
        let mut report = FileReport { path: display.clone(), ..Default::default() };
        match load_one(path, idx as u32, opts, target, &coded, &mut report, &mut rejects) {
            Ok(Some(df)) => frames.push(df),
            Ok(None) => {}
            Err(e) => report.error = Some(format!("{e:#}")),
        }
        files.push(report);
    }
    let frame = if frames.is_empty() {
        empty_canonical(target, opts)?
    } else {
        let lfs: Vec<LazyFrame> = frames.into_iter().map(DataFrame::lazy).collect();
        concat(lfs, UnionArgs { rechunk: false, ..Default::default() })?.collect()?
    };
    let t0 = std::time::Instant::now();
    let mut dicts = crate::coded::Dicts::default();
    let mut frame = frame;
    for (name, dict) in &coded {
        // the codes in order of the sorted texts, as if coded after loading
        let (values, to) = dict.finish();
        if frame.column(name)?.dtype() == &DataType::UInt32 {
            let codes = crate::coded::renumber(frame.column(name)?.u32()?, &to);
            frame.with_column(codes.into_column())?;
            dicts.insert(name, values);
        }
    }
    trace("coded columns", t0);
    let (frame, callers) = if target.kind == Kind::Cdr {
        crate::enrich::cdr_numbers(
            frame,
            phones,
            !opts.skip.contains(&"caller_e164"),
            opts.coded.then_some(&mut dicts),
        )?
    } else if target.kind == Kind::Joins {
        (crate::enrich::join_numbers(frame, phones)?, None)
    } else if target.kind == Kind::Sms {
        (crate::enrich::home_numbers_of(frame, "recipient", phones)?, None)
    } else {
        (frame, None)
    };
    trace("numbers", t0);
    let t0 = std::time::Instant::now();
    let frame = dedupe(frame, target, &mut files)?;
    trace("dedupe", t0);
    // a carrier's 话单 has no seat: its records skip the call model and are kept whole, after the rest
    let subscriber_files: Vec<u32> =
        (0..files.len() as u32).filter(|&i| files[i as usize].format == Some(Format::Carrier.name())).collect();
    let (frame, calls) = if target.kind == Kind::Cdr {
        let (frame, subscribers) = split_files(frame, &subscriber_files)?;
        let (mut frame, mut calls) = legs::finish(frame, &opts.calls, &dicts, &opts.call_trunks)?;
        if let Some(sub) = subscribers {
            calls.add_subscriber_records(&sub)?;
            frame.vstack_mut(&sub.drop_many(["call_key", "sequence"]))?;
        }
        (frame, calls)
    } else {
        (frame, legs::CallStats::default())
    };
    trace("calls", t0);
    Ok(Loaded { frame, files, rejects, dicts, callers, calls, subscriber_files })
}

/// The rows of `files` (by `__file` index) apart from the others; None when there are none.
pub fn split_files(frame: DataFrame, files: &[u32]) -> Result<(DataFrame, Option<DataFrame>)> {
    if files.is_empty() || frame.height() == 0 {
        return Ok((frame, None));
    }
    let idx = frame.column("__file")?.u32()?;
    let mask: BooleanChunked = idx.iter().map(|i| Some(i.is_some_and(|i| files.contains(&i)))).collect();
    if !mask.any() {
        return Ok((frame, None));
    }
    Ok((frame.filter(&!&mask)?, Some(frame.filter(&mask)?)))
}

fn empty_canonical(target: &'static Target, opts: &LoadOptions) -> Result<DataFrame> {
    let mut columns: Vec<Column> =
        target.fields.iter().map(|f| Column::full_null(f.name.into(), 0, &DataType::String)).collect();
    columns.push(Column::full_null("source_line".into(), 0, &DataType::UInt64));
    let raw = DataFrame::new(0, columns)?.lazy();
    let mut typed = typed(raw, target, opts, &[], false, &[]).drop(cols(["reject_code"])).collect()?;
    typed.with_column(Column::full_null("source_file".into(), 0, &DataType::String))?;
    typed.with_column(Column::full_null("__file".into(), 0, &DataType::UInt32))?;
    Ok(typed)
}

fn typed(
    raw: LazyFrame,
    target: &'static Target,
    opts: &LoadOptions,
    coded: &[normalize::Streamed],
    seatless_ok: bool,
    absent: &[&'static str],
) -> LazyFrame {
    match target.kind {
        Kind::Cdr => normalize::cdr(raw, opts.tz, opts.date_order, coded, seatless_ok, absent),
        Kind::Joins => normalize::joins(raw, opts.tz, opts.date_order),
        Kind::Cards => ledger::cards(raw, opts.tz, opts.date_order),
        Kind::Sales => ledger::sales(raw, opts.tz, opts.date_order),
        Kind::Sms => ledger::sms(raw, opts.tz, opts.date_order),
    }
}

/// Load one file: returns its good rows (with `__file`), pushes its rejects, fills its report.
fn load_one(
    path: &Path,
    idx: u32,
    opts: &LoadOptions,
    target: &'static Target,
    coded: &[normalize::Streamed],
    report: &mut FileReport,
    rejects: &mut Vec<Reject>,
) -> Result<Option<DataFrame>> {
    let file = path.display().to_string();
    let t_read = std::time::Instant::now();
    let len_at_open = std::fs::metadata(path).map(|m| m.len()).ok();
    let mut raw = read_raw(path, opts, target, coded)?;
    trace("read and split", t_read);
    // The decoded text is needed again only to quote rows the typing step rejects, which is rare:
    // it is dropped now (it was the largest block of memory while typing) and read again if needed.
    let had_text = raw.text.take().is_some();
    report.format = Some(raw.format.name());
    report.encoding = raw.encoding.map(Encoding::name);
    report.confidence = raw.confidence.map(|c| (f64::from(c) * 100.0).round() / 100.0);
    report.not_calls = raw.not_calls.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    if let Some(n) = raw.note.take() {
        report.warnings.push(format!("{file}: {n}"));
    }
    let early = raw.early_rejects.len();
    let t0 = std::time::Instant::now();
    // The raw columns go into the plan by value and are freed as it replaces them; the rare rejected
    // row is quoted from the input read again.
    let input = std::mem::replace(&mut raw.frame, DataFrame::empty().lazy());
    let mut plan = typed(input, target, opts, coded, raw.seatless_ok, &raw.absent);
    if let (Some(_), None, true) = (opts.partition, raw.lines_in, target.kind == Kind::Cdr) {
        plan = own_texts(plan)?;
    }
    let all = if std::env::var_os("DA_PROFILE").is_some() {
        let (df, prof) = plan.profile()?;
        eprintln!("{prof}");
        df
    } else {
        // the streaming engine types morsels in parallel and allocates far less than the in-memory
        // one (10 M Parquet rows: 1.5 s -> 0.6 s, a third of the page faults)
        anyhow::Context::with_context(collect_streaming(plan), || format!("{file}: cannot read"))?
    };
    let all = normalize::fill_absent(all, &raw.absent, coded)?;
    trace("typed", t0);
    // a live file still being appended to (Master.csv mid-shift) is read up to the length it had
    if let (Some(a), Ok(m)) = (len_at_open, std::fs::metadata(path))
        && m.len() > a
    {
        report.warnings.push(format!(
            "{file}: grew by {} bytes while it was read (still being written?): read up to its length when opened ({a} bytes); the rest is for the next run",
            m.len() - a
        ));
    }
    // every row read is typed or rejected: a columnar file's row count is known here
    let lines_in = raw.lines_in.unwrap_or(all.height() as u64);
    report.lines_in = lines_in;
    // (a part of a file may hold no rows: `scan --partitions` judges the file by all its parts)
    if lines_in == 0 && opts.partition.is_none() && !report.not_calls.is_empty() {
        let n: u64 = report.not_calls.values().sum();
        report.warnings.push(format!("{file}: no calls, only {n} record(s) that are not calls"));
    } else if lines_in == 0 && opts.partition.is_none() {
        let what = if matches!(raw.format, Format::Parquet | Format::Ndjson) {
            "no rows"
        } else {
            "no data rows (empty, or a header only)"
        };
        anyhow::ensure!(opts.allow_empty, "{file}: {what}; --allow-empty accepts such files");
        report.warnings.push(format!("{file}: {what}"));
    }
    let t0 = std::time::Instant::now();
    let (good, bad) = if all.column("reject_code")?.null_count() == all.height() {
        // no rejects: no copy
        let empty = all.slice(0, 0);
        (all.drop("reject_code")?, empty)
    } else {
        let mask = all.column("reject_code")?.is_null();
        (all.filter(&mask)?.drop("reject_code")?, all.filter(&!&mask)?)
    };
    trace("split good/bad", t0);
    let mut file_rejects = raw.early_rejects;
    file_rejects.extend(quoted_rejects(&file, path, opts, target, &bad, had_text)?);
    file_rejects.sort_by_key(|r| r.line);
    for r in &file_rejects {
        *report.reject_reasons.entry(r.reason.clone()).or_default() += 1;
    }
    report.rows_rejected = file_rejects.len() as u64;
    // (a part of a file holds a share of its rows: `scan --partitions` judges the file by all its parts)
    if opts.partition.is_none()
        && let Some(e) = mostly_rejected(report, file_rejects.first(), opts.max_reject_share)
    {
        anyhow::bail!("{e}");
    }
    debug_assert_eq!(early + bad.height(), file_rejects.len());
    rejects.extend(file_rejects);
    let time_col = target.times[0];
    let t = good.column(time_col)?;
    let fmt = |v: Option<i64>| {
        v.and_then(chrono::DateTime::from_timestamp_micros)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    };
    let phys = t.to_physical_repr();
    let phys = phys.i64()?;
    report.first_time = fmt(phys.min());
    report.last_time = fmt(phys.max());
    let mut good = good;
    let h = good.height();
    // the file name joins only after typing: carried through the streaming plan, the constant was
    // written out as 10 M strings
    good.with_column(Column::new_scalar("source_file".into(), Scalar::from(PlSmallStr::from(file.as_str())), h))?;
    good.with_column(Column::new_scalar("__file".into(), Scalar::from(idx), h))?;
    Ok(Some(good))
}

/// The rows the typing step rejected (`bad`: their `source_line` and `reject_code`), each quoted as
/// its input line (`had_text`: a text file, read again and decoded the same way) or by its fields
/// (a columnar file); in line order. A file gone since is quoted as unavailable.
fn quoted_rejects(
    file: &str,
    path: &Path,
    opts: &LoadOptions,
    target: &'static Target,
    bad: &DataFrame,
    had_text: bool,
) -> Result<Vec<Reject>> {
    let reasons_of = target.reasons;
    // the raw text is only needed to quote rejected lines
    let (rawdf, raw_text) = if bad.height() == 0 {
        (DataFrame::empty(), None)
    } else if had_text {
        // the same bytes, decoded the same way; a file gone since is quoted as unavailable
        (DataFrame::empty(), Some(read_raw_text(path, opts).unwrap_or_default()))
    } else {
        (read_raw(path, opts, target, &[]).and_then(|r| Ok(r.frame.collect()?)).unwrap_or_default(), None)
    };
    // Quote the rejected lines as they were.
    let mut out = Vec::new();
    if bad.height() > 0 {
        let lines = bad.column("source_line")?.u64()?.clone();
        let codes = bad.column("reject_code")?.i32()?.clone();
        // (line, reason) of each rejected row: a dump's line holds many rows, so lines repeat
        let mut wanted: Vec<(u64, String)> = lines
            .iter()
            .zip(codes.iter())
            .filter_map(|(l, c)| Some((l?, reasons_of[c? as usize].to_string())))
            .collect();
        wanted.sort_by_key(|(l, _)| *l);
        let at: HashSet<u64> = wanted.iter().map(|(l, _)| *l).collect();
        let mut raws: HashMap<u64, String> = HashMap::new();
        match &raw_text {
            Some(text) => {
                for_each_line(text, |n, _, l| {
                    if at.contains(&n) {
                        raws.insert(n, quote(l));
                    }
                });
            }
            None => {
                for n in &at {
                    if let Ok(row) = rawdf.get_row((*n - 1) as usize) {
                        let names = rawdf.get_column_names();
                        let text = names
                            .iter()
                            .zip(row.0.iter())
                            .filter(|(_, v)| !v.is_null())
                            .map(|(k, v)| format!("{k}={}", v.str_value()))
                            .collect::<Vec<_>>()
                            .join("; ");
                        raws.insert(*n, text);
                    }
                }
            }
        }
        for (line, reason) in wanted {
            out.push(Reject {
                file: file.to_string(),
                line,
                reason,
                raw: raws.get(&line).cloned().unwrap_or_default(),
            });
        }
    }
    Ok(out)
}

/// A columnar file's part: its rows were chosen by a predicate on its reader (a text file's as its
/// lines were split), but a kept text column still points into the buffers decoded with the rows
/// other parts own: each kept value is copied out, so a part holds only its own rows' texts
/// (100 M Parquet rows in 10 parts: peak 6.4 GB without the copy, 5.3 with).
fn own_texts(mut plan: LazyFrame) -> Result<LazyFrame> {
    let schema = plan.collect_schema()?;
    let texts: Vec<Expr> = schema
        .iter()
        .filter(|(_, dt)| **dt == DataType::String)
        .map(|(name, _)| {
            col(name.clone()).map(
                |c: Column| {
                    let s: StringChunked = c.str()?.iter().collect();
                    Ok(s.with_name(c.name().clone()).into_column())
                },
                |_, f| Ok(f.clone()),
            )
        })
        .collect();
    Ok(plan.with_columns(texts))
}

/// Collect a plan with Polars' streaming engine (row order is kept: no plan here sorts or groups).
pub fn collect_streaming(lf: LazyFrame) -> PolarsResult<DataFrame> {
    // one plan gives one frame
    Ok(lf.collect_with_engine(Engine::Streaming)?.unwrap_single())
}

/// The decoded text of a text input, as [`read_raw`] decodes it (for quoting rejected lines).
fn read_raw_text(path: &Path, opts: &LoadOptions) -> Result<String> {
    Ok(to_text(decode::read_decompressed(path)?, opts).0)
}

/// Bytes → text in the forced or detected encoding.
fn to_text(bytes: Vec<u8>, opts: &LoadOptions) -> (String, Encoding) {
    match (opts.encoding, decode::detect(&bytes)) {
        // valid UTF-8 without BOM: take the buffer as it is, no copy
        (None | Some(Encoding::Utf8), Encoding::Utf8) => {
            (String::from_utf8(bytes).expect("checked by detect"), Encoding::Utf8)
        }
        _ => {
            let (t, e) = decode::decode(&bytes, opts.encoding);
            (t.into_owned(), e)
        }
    }
}

/// Read a file into raw text columns named after the target's fields plus `source_line`.
/// `coded`: the columns a text file's splitter codes as it goes ([`RawBuilder::Coded`]).
fn read_raw(
    path: &Path,
    opts: &LoadOptions,
    target: &'static Target,
    coded: &[normalize::Streamed],
) -> Result<RawFile> {
    let mut head = [0u8; 4];
    {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow::anyhow!("{}: no longer exists (removed after the inputs were listed?)", path.display())
            } else {
                anyhow::Error::new(e).context(format!("{}: cannot open", path.display()))
            }
        })?;
        let n = f.read(&mut head).with_context(|| format!("{}: cannot read", path.display()))?;
        if n >= 4 && &head == b"PAR1" {
            return read_columnar(path, None, Format::Parquet, opts, target);
        }
    }
    let t0 = std::time::Instant::now();
    let ndjson_name = {
        let name = path.to_string_lossy().to_lowercase();
        name.contains(".ndjson") || name.contains(".jsonl") || name.ends_with(".json")
    };
    let starts_json = |b: &[u8]| opts.format.is_none() && b.iter().find(|c| !c.is_ascii_whitespace()) == Some(&b'{');
    // plain UTF-8 text (the common export) is split straight from a memory map; a later
    // `--partitions` pass over a file unchanged since an earlier pass found it UTF-8 skips the check
    let stamp = opts.partition.and_then(|_| TextParts::stamp(path));
    let known_utf8 = stamp
        .as_ref()
        .is_some_and(|st| opts.text_parts.utf8.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(st));
    let mapped = (matches!(opts.encoding, None | Some(Encoding::Utf8)) && !ndjson_name)
        .then(|| decode::map_utf8(path, known_utf8))
        .flatten()
        .filter(|t| !starts_json(t.as_bytes()));
    if mapped.is_some() {
        crate::diag::test_pause("mapped");
    }
    if let (Some(st), Some(_), false) = (stamp, &mapped, known_utf8) {
        opts.text_parts.utf8.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(st);
    }
    let (text, enc) = match mapped {
        Some(text) => {
            trace("read (mapped)", t0);
            (text, Encoding::Utf8)
        }
        None => {
            let bytes = decode::read_decompressed(path)?;
            trace("read", t0);
            if ndjson_name || starts_json(&bytes) {
                return read_columnar(path, Some(bytes), Format::Ndjson, opts, target);
            }
            let (text, enc) = to_text(bytes, opts);
            (decode::Text::Owned(text), enc)
        }
    };
    // Decompressed binary (an image, an archive, a database file) is not a CDR export; UTF-16 text is
    // recognised by `decode::detect` before this matters.
    if let Some(at) = memchr::memchr(0, &text.as_bytes()[..text.len().min(1 << 16)]) {
        anyhow::bail!("{}: binary content (NUL byte at offset {at}): not a CDR export", path.display());
    }
    read_text(path, text, enc, opts, target, coded)
}

/// At most the first `n` bytes of `text`, cut at a character boundary.
fn head(text: &str, n: usize) -> &str {
    let mut e = text.len().min(n);
    while !text.is_char_boundary(e) {
        e -= 1;
    }
    &text[..e]
}

/// The first non-blank line and its number, without walking the whole text.
fn first_line(text: &str) -> Option<(u64, &str)> {
    let mut start = 0;
    let mut n = 0u64;
    for seg in text.split_inclusive(['\n', '\r']) {
        n += 1;
        let line = seg.trim_end_matches(['\n', '\r']);
        if seg.starts_with('\n') && start > 0 && text.as_bytes()[start - 1] == b'\r' {
            n -= 1; // the LF of a CRLF pair
            start += seg.len();
            continue;
        }
        start += seg.len();
        if !line.trim().is_empty() {
            return Some((n, line));
        }
    }
    None
}

fn read_text(
    path: &Path,
    text: decode::Text,
    enc: Encoding,
    opts: &LoadOptions,
    target: &'static Target,
    coded: &[normalize::Streamed],
) -> Result<RawFile> {
    let file = path.display().to_string();
    let first = first_line(&text);
    if let Some((n, l)) = first.filter(|(_, l)| l.len() > MAX_LINE_BYTES) {
        anyhow::bail!("{}", too_long_message(&file, n, l.len()));
    }
    let Some((first_line_no, first_line)) = first else {
        let frame = raw_frame(target, vec![None; target.fields.len()], vec![])?;
        return Ok(RawFile {
            frame: frame.lazy(),
            format: opts.format.unwrap_or(Format::Generic),
            encoding: Some(enc),
            lines_in: Some(0),
            early_rejects: vec![],
            text: None,
            seatless_ok: false,
            absent: Vec::new(),
            not_calls: BTreeMap::new(),
            confidence: None,
            note: None,
        });
    };
    let sniffed = match opts.format {
        Some(f @ (Format::Asterisk | Format::Freeswitch)) => {
            format::Sniffed { format: f, delim: b',', header: false, confidence: 1.0 }
        }
        Some(f) => {
            // a forced CUCM, 3CX or FreePBX file may still come without its header
            let own = format::sniff(first_line, target).ok().filter(|s| s.format == f);
            let header = own.as_ref().is_none_or(|s| s.header);
            format::Sniffed { format: f, delim: split::sniff_delimiter(first_line), header, confidence: 1.0 }
        }
        // a syslog whose first lines are other messages than the proxy's accounting
        None if target.kind == Kind::Cdr && records::is_acc_syslog(head(&text, 1 << 16)) => {
            format::Sniffed { format: Format::Kamailio, delim: b',', header: false, confidence: 1.0 }
        }
        None => format::sniff(first_line, target).with_context(|| file.clone())?,
    };
    let (format, delim, has_header) = (sniffed.format, sniffed.delim, sniffed.header);
    if target.kind == Kind::Cdr && (matches!(format, Format::Sql) || (format == Format::Kamailio)) {
        return read_records(path, text, enc, opts, target, sniffed, coded);
    }
    let mut layout: Layout = if has_header {
        let mut hdr = Vec::new();
        split_fields(first_line, delim, QuoteMode::Literal, &mut hdr);
        let hdr: Vec<String> = hdr.into_iter().map(|c| c.trim().to_string()).collect();
        format::header_layout(format, &hdr, target, &opts.columns, first_line_no, &opts.calls)
            .with_context(|| file.clone())?
    } else {
        format::positional_layout(format, &opts.calls)
    };
    // a seat derived from a switch's channels may be missing; a carrier's 话单 has none at all
    let seatless_ok =
        format == Format::Carrier || layout.sources.iter().any(|s| matches!(s, Some(format::Src::Seat(_))));
    let absent = absent_of(&layout, target);
    layout.skip(target, &opts.skip);
    // Records are lines, so the text splits at line ends into chunks parsed in parallel.
    let t_split = std::time::Instant::now();
    // A big mapped file (over 4 GiB) is cut into chunks of at most 256 MB whose pages leave resident
    // memory as soon as their lines are counted, and again once split: at most a few chunks of it
    // are resident at a time.
    let big = matches!(text, decode::Text::Mapped(_)) && text.len() > decode::BIG_FILE;
    // `--partitions`: a later part reuses the first pass's chunks and line parts; the first pass
    // records them (one byte a line, so up to 256 parts)
    let part = opts.partition.filter(|_| target.kind == Kind::Cdr);
    let known = part.and_then(|p| opts.text_parts.get(&file, text.len(), p.of));
    let record = part.is_some_and(|p| p.of <= 256) && known.is_none();
    let chunks = match &known {
        Some(m) => m.chunks.clone(),
        None => {
            let k =
                (rayon::current_num_threads() * 4).max(if big { text.len().div_ceil(decode::BIG_BLOCK) } else { 0 });
            split::line_chunks_then(&text, k, |a, b| {
                if big {
                    text.release(a, b)
                }
            })
        }
    };
    let lines = Lines { layout: &layout, delim, target, file: &file, opts, part, absent: &absent, coded };
    let parts: Vec<ChunkOut> = chunks
        .par_iter()
        .enumerate()
        .map(|(i, &(a, b, first))| {
            let ids = match &known {
                Some(m) => PartIds::Known(&m.ids[i]),
                None if record => PartIds::Record,
                None => PartIds::None,
            };
            let out = parse_chunk(&text[a..b], first, &lines, ids);
            // its columns are made: the chunk's mapped pages need not stay resident (10 M rows:
            // peak 3.17 -> 2.53 GB: the 1.3 GB file no longer sits beside the columns split from it)
            text.release(a, b);
            out
        })
        .collect::<Result<_>>()?;
    trace("split", t_split);
    let (mut raw, ids) = gather(parts, target, &absent)?;
    if let (Some(p), true) = (part, record) {
        opts.text_parts.put(&file, TextPartMap { len: text.len(), of: p.of, chunks, ids });
    }
    (raw.format, raw.encoding, raw.text, raw.seatless_ok, raw.confidence) =
        (format, Some(enc), Some(text), seatless_ok, Some(sniffed.confidence));
    Ok(raw)
}

/// The chunks' raw columns, counts and rejects as one file's, and the part of each line.
fn gather(parts: Vec<ChunkOut>, target: &'static Target, absent: &[&'static str]) -> Result<(RawFile, Vec<Vec<u8>>)> {
    let mut lines_in = 0;
    let mut early_rejects = Vec::new();
    let mut not_calls = BTreeMap::new();
    let mut frame: Option<DataFrame> = None;
    let mut ids = Vec::new();
    for p in parts {
        ids.extend(p.part_ids);
        lines_in += p.lines_in;
        early_rejects.extend(p.early_rejects);
        for (k, v) in p.not_calls {
            *not_calls.entry(k).or_default() += v;
        }
        match frame.as_mut() {
            None => frame = Some(p.frame),
            Some(f) => {
                let mut next = p.frame;
                align_nulls(f, &mut next)?;
                f.vstack_mut(&next)?;
            }
        }
    }
    let frame = match frame {
        Some(f) => f,
        None => raw_frame_without(target, vec![None; target.fields.len()], vec![], absent)?,
    };
    let raw = RawFile {
        frame: frame.lazy(),
        format: Format::Generic,
        encoding: None,
        lines_in: Some(lines_in),
        early_rejects,
        text: None,
        seatless_ok: false,
        absent: absent.to_vec(),
        not_calls,
        confidence: None,
        note: None,
    };
    Ok((raw, ids))
}

/// Two raw frames of one file made alike for stacking: a field one table of a dump lacks is a
/// null text column, where another table's has typed values (times and seconds parsed as split,
/// coded texts): the null column takes the other's type.
fn align_nulls(a: &mut DataFrame, b: &mut DataFrame) -> Result<()> {
    let names: Vec<PlSmallStr> = a.get_column_names().into_iter().cloned().collect();
    for name in names {
        let (Ok(x), Ok(y)) = (a.column(&name), b.column(&name)) else { continue };
        if x.dtype() == y.dtype() {
            continue;
        }
        if y.null_count() == y.len() {
            let c = y.cast(x.dtype())?;
            b.with_column(c)?;
        } else if x.null_count() == x.len() {
            let c = x.cast(y.dtype())?;
            a.with_column(c)?;
        }
    }
    Ok(())
}

/// SQL dumps and SIP accounting: the file's records are gathered whole first (a dump's rows, SIP
/// transactions paired into calls, [`records`]) and then go through the same columns.
fn read_records(
    path: &Path,
    text: decode::Text,
    enc: Encoding,
    opts: &LoadOptions,
    target: &'static Target,
    sniffed: format::Sniffed,
    coded: &[normalize::Streamed],
) -> Result<RawFile> {
    let file = path.display().to_string();
    let tables = records::read(&text, sniffed.format, sniffed.delim).with_context(|| file.clone())?;
    let mut outs = Vec::new();
    let mut seatless_ok = false;
    let mut used = Vec::new();
    let mut not_calls: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut skipped = Vec::new();
    for t in &tables {
        for (k, v) in &t.not_calls {
            *not_calls.entry(k).or_default() += v;
        }
        let layout = match t.format {
            None => Err("no CDR columns".to_string()),
            Some(f) => {
                format::header_layout(f, &t.header, target, &opts.columns, 0, &opts.calls).map_err(|e| match e {
                    // a table that looked like CDRs but lacks what a call needs: say what
                    format::LayoutError::MissingColumns { missing, .. } => format!("no {} column", missing.join(", ")),
                    other => other.to_string(),
                })
            }
        };
        let mut layout = match layout {
            Ok(mut l) => {
                l.header_line = None;
                l
            }
            Err(why) => {
                skipped.push(format!("{} ({why}, {} rows)", t.name, t.rows.len()));
                continue;
            }
        };
        used.push(format!("{} ({}, {} rows)", t.name, t.format.map_or("?", Format::name), t.rows.len()));
        seatless_ok |= layout.sources.iter().any(|s| matches!(s, Some(format::Src::Seat(_))));
        layout.skip(target, &opts.skip);
        let lines =
            Lines { layout: &layout, delim: b',', target, file: &file, opts, part: opts.partition, absent: &[], coded };
        // the rows in slices, typed in parallel like a text file's chunks
        let per = t.rows.len().div_ceil(rayon::current_num_threads() * 4).max(1024);
        let parts: Vec<ChunkOut> = t
            .rows
            .par_chunks(per)
            .map(|rows| {
                let mut sink = RowSink::new(&lines, rows.len(), false);
                for r in rows {
                    sink.push(r.line, &|| r.fields.join(","), &r.fields, false);
                }
                sink.finish()
            })
            .collect::<Result<_>>()?;
        for mut out in parts {
            for (k, v) in std::mem::take(&mut out.not_calls) {
                *not_calls.entry(k).or_default() += v;
            }
            outs.push(out);
        }
    }
    anyhow::ensure!(
        !used.is_empty() || tables.iter().all(|t| t.rows.is_empty() && t.not_calls.is_empty()),
        "{file}: read as {}: no table of CDRs in it (tables: {}); name the columns with [columns] or --format",
        sniffed.format.name(),
        if skipped.is_empty() { "none".to_string() } else { skipped.join(", ") }
    );
    let (mut raw, _) = gather(outs, target, &[])?;
    raw.not_calls = not_calls;
    raw.note = (sniffed.format == Format::Sql).then(|| {
        let mut n = format!("tables read: {}", if used.is_empty() { "none".into() } else { used.join("; ") });
        if !skipped.is_empty() {
            n += &format!("; not CDRs, left out: {}", skipped.join(", "));
        }
        n
    });
    (raw.format, raw.encoding, raw.text, raw.seatless_ok, raw.confidence) =
        (sniffed.format, Some(enc), Some(text), seatless_ok, Some(sniffed.confidence));
    Ok(raw)
}

struct ChunkOut {
    frame: DataFrame,
    lines_in: u64,
    early_rejects: Vec<Reject>,
    /// Records that are no calls, by why ([`format::Layout::not_a_call`]).
    not_calls: BTreeMap<&'static str, u64>,
    /// The part of each line split (when recording, see [`TextParts`]).
    part_ids: Option<Vec<u8>>,
}

/// How the lines of a text file are split (the same for each chunk).
struct Lines<'a> {
    layout: &'a Layout,
    delim: u8,
    target: &'static Target,
    file: &'a str,
    opts: &'a LoadOptions,
    /// `scan --partitions`: the part whose rows are kept (CDRs only).
    part: Option<Partition>,
    /// Fields left out of the raw columns ([`absent_of`]).
    absent: &'a [&'static str],
    /// Fields coded as they are split ([`RawBuilder::Coded`]).
    coded: &'a [normalize::Streamed],
}

/// `scan --partitions`: the part of each line a chunk will meet, known or to be recorded.
enum PartIds<'a> {
    None,
    Record,
    Known(&'a [u8]),
}

/// A CDR line is well under 1 KB; a line over this is not a CDR export (or has no line ends).
pub const MAX_LINE_BYTES: usize = 1 << 20;

fn too_long_message(file: &str, line: u64, len: usize) -> String {
    format!(
        "{file}:{line}: line of {:.1} MB is over the {} MiB limit: not a CDR export, or its records are not separated by line ends",
        len as f64 / 1e6,
        MAX_LINE_BYTES >> 20
    )
}

/// Where a text file's records go as they are split: raw columns, rejects, records that are no
/// calls, and (`scan --partitions`) each record's part. Lines of a chunk and rows of a dump or of
/// paired SIP transactions go through the same one.
struct RowSink<'a> {
    how: &'a Lines<'a>,
    builders: Vec<Option<RawBuilder>>,
    lines: Vec<u64>,
    early_rejects: Vec<Reject>,
    not_calls: BTreeMap<&'static str, u64>,
    lines_in: u64,
    op_src: Option<&'a format::Src>,
    recorded: Option<Vec<u8>>,
}

impl<'a> RowSink<'a> {
    fn new(how: &'a Lines<'a>, est: usize, record: bool) -> Self {
        let parts = how.part.map_or(1, |p| p.of.max(1) as usize);
        let builders = how
            .layout
            .sources
            .iter()
            .zip(how.target.fields)
            .map(|(s, f)| s.as_ref().map(|_| RawBuilder::new(f.name, est, how.coded)))
            .collect();
        let op_src =
            how.target.fields.iter().position(|f| f.name == "operator_id").and_then(|i| how.layout.sources[i].as_ref());
        RowSink {
            how,
            builders,
            lines: Vec::with_capacity(est),
            early_rejects: Vec::new(),
            not_calls: BTreeMap::new(),
            lines_in: 0,
            op_src,
            recorded: record.then(|| Vec::with_capacity(est * parts)),
        }
    }

    /// One record: line `n` (quoted as `line` if rejected), split into `fields`. `known`: its part
    /// was learnt by an earlier pass (and is this pass's).
    /// (`line` quotes the record, if it is rejected.)
    fn push(&mut self, n: u64, line: &dyn Fn() -> String, fields: &[Cow<str>], known: bool) {
        let Lines { layout, file, opts, part, .. } = *self.how;
        if let Some(why) = layout.not_a_call(n, fields) {
            // counted once, by the first part
            if let (Some(p), false) = (part, known) {
                if let Some(r) = self.recorded.as_mut() {
                    r.push(0);
                }
                if p.index != 0 {
                    return;
                }
            }
            *self.not_calls.entry(why).or_default() += 1;
            return;
        }
        let fit = fits(layout, fields);
        // the record's seat and direction, classified once for both fields (and the part)
        let mut leg: Option<format::LegOf> = None;
        if let (Some(part), false) = (part, known) {
            let op = if fit { self.op_src.and_then(|src| src.eval_leg(fields, &mut leg)) } else { None };
            let id = Partition::of_operator(op.as_deref(), part.of);
            if let Some(r) = self.recorded.as_mut() {
                r.push(id as u8);
            }
            if id != part.index {
                return;
            }
        }
        self.lines_in += 1;
        if !fit {
            let reason = if fields.len() < layout.min_fields {
                format!("too few columns ({} of {})", fields.len(), layout.min_fields)
            } else {
                format!("too many columns ({} of {})", fields.len(), layout.max_fields.unwrap_or(0))
            };
            self.early_rejects.push(Reject { file: file.to_string(), line: n, reason, raw: quote(&line()) });
            return;
        }
        for (b, src) in self.builders.iter_mut().zip(&layout.sources) {
            if let (Some(b), Some(src)) = (b.as_mut(), src) {
                b.push(src.eval_leg(fields, &mut leg).as_deref(), opts.tz, opts.date_order);
            }
        }
        self.lines.push(n);
    }

    fn finish(self) -> Result<ChunkOut> {
        let cols: Vec<Option<Column>> = self.builders.into_iter().map(|b| b.map(RawBuilder::finish)).collect();
        Ok(ChunkOut {
            frame: raw_frame_without(self.how.target, cols, self.lines, self.how.absent)?,
            lines_in: self.lines_in,
            early_rejects: self.early_rejects,
            not_calls: self.not_calls,
            part_ids: self.recorded,
        })
    }
}

/// A rejected record as quoted in `rejects.csv`: a dump's line of a thousand rows is cut short.
fn quote(line: &str) -> String {
    const MAX: usize = 2000;
    if line.len() <= MAX {
        return line.to_string();
    }
    format!("{}… ({} bytes)", head(line, MAX), line.len())
}

/// Split the lines of one chunk (whose first line is number `first_line`) into raw text columns.
fn parse_chunk(text: &str, first_line: u64, how: &Lines, ids: PartIds) -> Result<ChunkOut> {
    let Lines { layout, delim, file, part, .. } = *how;
    // rows estimated from the text (about 100 bytes a line); a part keeps about 1/N of them
    let parts = part.map_or(1, |p| p.of.max(1) as usize);
    let est = text.len() / 100 / parts + 16;
    let mut sink = RowSink::new(how, est, matches!(ids, PartIds::Record));
    let mut fields: Vec<Cow<str>> = Vec::with_capacity(32);
    let mut lenient: Vec<Cow<str>> = Vec::with_capacity(32);
    let mut too_long: Option<(u64, usize)> = None;
    let (known, mut next) = (if let PartIds::Known(k) = ids { Some(k) } else { None }, 0usize);
    split::for_each_line_from(text, first_line, |n, _, line| {
        if Some(n) == layout.header_line || too_long.is_some() {
            return;
        }
        if line.len() > MAX_LINE_BYTES {
            too_long = Some((n, line.len()));
            return;
        }
        if let (Some(k), Some(part)) = (known, part) {
            // a line of another part is skipped unsplit (the first pass split it)
            let id = k.get(next).copied();
            next += 1;
            if id.map(u32::from) != Some(part.index) {
                return;
            }
        }
        split_fields(line, delim, QuoteMode::Literal, &mut fields);
        // A kept inner quote that swallowed a delimiter is an unescaped clid, not FreeSWITCH's
        // quoted name: read the line again leniently and keep that reading if its width fits.
        if line.contains('"')
            && (!fits(layout, &fields) || fields.iter().any(|f| f.contains('"') && f.as_bytes().contains(&delim)))
        {
            split_fields(line, delim, QuoteMode::Lenient, &mut lenient);
            if fits(layout, &lenient) {
                std::mem::swap(&mut fields, &mut lenient);
            }
        }
        sink.push(n, &|| line.to_string(), &fields, known.is_some());
    });
    if let Some((n, len)) = too_long {
        anyhow::bail!("{}", too_long_message(file, n, len));
    }
    if known.is_some_and(|k| next != k.len()) {
        // the text changed under the same length between passes: its parts are not known
        anyhow::bail!("{file}: changed while it was read in parts (lines {first_line}..): read it again");
    }
    sink.finish()
}

/// One raw column of a text chunk. Timestamps and durations are parsed as the line is split
/// (UTC µs and whole seconds, [`normalize::UNPARSED`] for a value that is there but cannot be read)
/// instead of being copied into a text column and parsed again by the typing plan: that copy was
/// the largest part of loading a CSV.
///
/// Caller IDs, source IPs and campaigns (`scan`'s [`crate::coded::STREAMED`]) are coded as they are
/// split ([`crate::coded::ChunkCodes`]): as text, three 10 M-row columns of views and bytes were
/// built only for the typing plan to code them (CSV 10 M rows: ~0.6 GB written, 0.25–0.3 s).
enum RawBuilder {
    Text(StringChunkedBuilder),
    Time(PrimitiveChunkedBuilder<Int64Type>),
    Seconds(PrimitiveChunkedBuilder<Int64Type>),
    Coded(crate::coded::ChunkCodes),
}

impl RawBuilder {
    fn new(name: &'static str, est: usize, coded: &[normalize::Streamed]) -> Self {
        if let Some((_, dict)) = coded.iter().find(|(n, _)| *n == name) {
            return Self::Coded(crate::coded::ChunkCodes::new(name, dict, est));
        }
        // Polars' builder keeps values and a validity bitmap made at the first null, and hands them
        // over without a copy (a Vec<Option<i64>> wrote 16 B a row and was copied again)
        let numbers = || PrimitiveChunkedBuilder::new(name.into(), est);
        match name {
            "start_time" | "answer_time" | "end_time" | "joined_at" | "acquired_at" | "stocked_at" | "redeemed_at"
            | "sold_at" | "sent_at" => Self::Time(numbers()),
            "duration_s" | "talk_s" => Self::Seconds(numbers()),
            _ => Self::Text(StringChunkedBuilder::new(name.into(), est)),
        }
    }

    fn push(&mut self, v: Option<&str>, tz: chrono_tz::Tz, order: crate::time::DateOrder) {
        match self {
            Self::Text(b) => b.append_option(v),
            Self::Time(out) => {
                out.append_option(v.map(|v| crate::time::parse_timestamp(v, tz, order).unwrap_or(normalize::UNPARSED)))
            }
            Self::Seconds(out) => {
                out.append_option(v.map(|v| normalize::parse_seconds(v).unwrap_or(normalize::UNPARSED)))
            }
            Self::Coded(c) => c.push(v),
        }
    }

    fn finish(self) -> Column {
        match self {
            Self::Text(b) => b.finish().into_column(),
            Self::Time(b) | Self::Seconds(b) => b.finish().into_column(),
            Self::Coded(c) => c.finish().into_column(),
        }
    }
}

/// A header format accepts extra trailing fields only when they are empty (a trailing delimiter).
fn fits(layout: &Layout, fields: &[Cow<str>]) -> bool {
    if layout.expects(fields.len()) {
        return true;
    }
    match layout.max_fields {
        Some(m) if fields.len() > m && layout.header_line.is_some() => fields[m..].iter().all(|f| f.trim().is_empty()),
        _ => false,
    }
}

fn raw_frame(target: &'static Target, cols: Vec<Option<Column>>, lines: Vec<u64>) -> Result<DataFrame> {
    raw_frame_without(target, cols, lines, &[])
}

/// Raw columns of a chunk, a field the file lacks null, the `absent` ones left out.
fn raw_frame_without(
    target: &'static Target,
    cols: Vec<Option<Column>>,
    lines: Vec<u64>,
    absent: &[&'static str],
) -> Result<DataFrame> {
    let h = lines.len();
    let mut out: Vec<Column> = cols
        .into_iter()
        .zip(target.fields)
        .filter(|(_, f)| !absent.contains(&f.name))
        .map(|(c, f)| c.unwrap_or_else(|| Column::full_null(f.name.into(), h, &DataType::String)))
        .collect();
    out.push(UInt64Chunked::from_vec("source_line".into(), lines).into_column());
    Ok(DataFrame::new(h, out)?)
}

/// The row number column a columnar reader adds (renamed `source_line`).
const ROW: &str = "__da_row";

/// Parquet and NDJSON: Polars reads them; columns are matched by name like `generic` and cast to text
/// (timestamps keep their zone: zoned ones are written with `Z` after conversion to UTC).
fn read_columnar(
    path: &Path,
    bytes: Option<Vec<u8>>,
    format: Format,
    opts: &LoadOptions,
    target: &'static Target,
) -> Result<RawFile> {
    let file = path.display().to_string();
    // rows numbered from 1 as the reader reads them, so a part's rows keep their numbers in the file
    let row_index = Some(RowIndex { name: ROW.into(), offset: 1 });
    let mut lf = match bytes {
        None => LazyFrame::scan_parquet(
            PlRefPath::new(file.as_str()),
            ScanArgsParquet { row_index, ..ScanArgsParquet::default() },
        )?,
        Some(b) => {
            let src = ScanSources::Buffers(Arc::from(vec![polars_buffer::Buffer::from(b)]));
            LazyJsonLineReader::new_with_sources(src).with_row_index(row_index).finish()?
        }
    };
    let schema = anyhow::Context::with_context(lf.collect_schema(), || format!("{file}: cannot read schema"))?;
    let names: Vec<String> = schema.iter_names().filter(|n| n.as_str() != ROW).map(|n| n.to_string()).collect();
    let mut layout = format::header_layout(Format::Generic, &names, target, &opts.columns, 0, &opts.calls)
        .with_context(|| file.clone())?;
    layout.skip(target, &opts.skip);
    let absent = absent_of(&layout, target);
    let mut exprs = Vec::new();
    let mut op = lit(NULL).cast(DataType::String);
    let tz = opts.tz;
    for (src, f) in layout.sources.iter().zip(target.fields) {
        if absent.contains(&f.name) {
            continue;
        }
        let e = match src {
            Some(format::Src::Col(i)) => {
                let name = names[*i].as_str();
                let dt = schema.get(name).cloned().unwrap_or(DataType::String);
                let is_time = target.times.contains(&f.name);
                let is_secs = matches!(f.name, "duration_s" | "talk_s");
                match dt {
                    // typed timestamps stay typed: UTC microseconds, naive ones read in --tz
                    DataType::Datetime(_, Some(_)) if is_time => col(name).dt().timestamp(TimeUnit::Microseconds),
                    // naive: wall-clock µs in --tz, made UTC exactly as text timestamps are
                    DataType::Datetime(_, None) if is_time => col(name).dt().timestamp(TimeUnit::Microseconds).map(
                        move |c: Column| Ok(naive_to_utc(c.i64()?, tz).into_column()),
                        |_, f| Ok(Field::new(f.name().clone(), DataType::Int64)),
                    ),
                    d if is_secs && (d.is_integer() || d.is_float()) => col(name),
                    DataType::String => col(name),
                    _ => col(name).cast(DataType::String),
                }
            }
            _ => lit(NULL).cast(DataType::String),
        };
        if f.name == "operator_id" {
            op = e.clone();
        }
        exprs.push(e.alias(f.name));
    }
    // source_line last, as the text path has it.
    exprs.push(col(ROW).cast(DataType::UInt64).alias("source_line"));
    if let (Some(part), true) = (opts.partition, target.kind == Kind::Cdr) {
        // `scan --partitions`: a predicate on the scan, so the reader decodes the operator column
        // and then only this part's rows of the others, before anything is typed
        lf = lf.filter(part.owned(op));
    }
    // Not collected here: the typing step continues this plan in one streaming query, so Polars
    // decodes row groups in parallel into reused buffers and only typed columns are kept (10 M
    // rows: the raw durations, end/answer times and disposition texts never exist whole).
    let frame = lf.select(exprs);
    Ok(RawFile {
        lines_in: None,
        frame,
        format,
        encoding: None,
        early_rejects: vec![],
        text: None,
        seatless_ok: false,
        absent,
        not_calls: BTreeMap::new(),
        confidence: Some(1.0),
        note: None,
    })
}

/// Wall-clock microseconds in `tz` → UTC microseconds, in parallel slices, by the same rule as text
/// timestamps ([`crate::time::local_to_utc`]: earliest of an ambiguous hour, a spring-forward gap read
/// with the offset before it). Polars' `replace_time_zone` did this row by row, ~2 s per 10 M rows.
fn naive_to_utc(local: &Int64Chunked, tz: chrono_tz::Tz) -> Int64Chunked {
    let parts = crate::par::slices(local.len(), |off, len| {
        let mut to_utc = crate::time::LocalMicrosToUtc::new(tz);
        local.slice(off as i64, len).iter().map(|v| to_utc.convert(v?)).collect::<Int64Chunked>()
    });
    crate::par::concat(local.name(), parts)
}

/// Drop rows exported twice across all files, keeping the first; count duplicates against the file
/// they were in. A CDR duplicate is the same leg again: the same leg id and sequence with the same
/// content (seat, times, talk, numbers, disposition, direction), or the same content where the
/// export has no leg id. Rows that only share a leg id are legs of their own: a Dial to two
/// destinations, the `h` extension's row and Grandstream's forked legs share Asterisk's uniqueid.
/// A join is the same group + member + time again.
fn dedupe(frame: DataFrame, target: &'static Target, files: &mut [FileReport]) -> Result<DataFrame> {
    let before = count_by_file(&frame)?;
    // The common case: every row has a leg id and they are all distinct: no duplicates possible.
    // (a card is acquired once: distinct card ids are the ledger's common case too)
    let id = match target.kind {
        Kind::Cdr => Some("leg_id"),
        Kind::Cards => Some("card_id"),
        _ => None,
    };
    if let Some(id) = id
        && frame.column(id)?.null_count() == 0
        && all_distinct(frame.column(id)?.str()?)
    {
        let after = count_by_file(&frame)?;
        set_counts(files, &before, &after);
        return Ok(frame);
    }
    // Legs share ids (a forked Dial, the `h` row, ForkCDR rows): only the rows whose leg id and
    // sequence repeat can be a re-export, and only they are compared whole (4.5 M Asterisk legs:
    // the whole frame's 12-column unique took 6.7 s).
    let frame = if target.kind == Kind::Cdr {
        let cand = repeated_legs(&frame)?;
        if cand.is_empty() {
            frame
        } else {
            let mut sub = frame.take(&IdxCa::from_vec("idx".into(), cand.clone()))?;
            sub.with_column(IdxCa::from_vec("__row".into(), cand.clone()).into_column())?;
            let kept = exact_unique(sub, target)?;
            let kept: HashSet<IdxSize> = kept.column("__row")?.idx()?.into_no_null_iter().collect();
            let mut keep = vec![true; frame.height()];
            for r in cand {
                keep[r as usize] = kept.contains(&r);
            }
            let mask: BooleanChunked = keep.into_iter().collect();
            frame.filter(&mask)?
        }
    } else {
        exact_unique(frame, target)?
    };
    let after = count_by_file(&frame)?;
    set_counts(files, &before, &after);
    Ok(frame)
}

/// Rows whose (leg id, sequence) occurs more than once, by 64-bit hashes sorted in parallel; rows
/// without a leg id all hash alike, so they are all compared whole.
fn repeated_legs(frame: &DataFrame) -> Result<Vec<IdxSize>> {
    use std::hash::BuildHasher;
    let leg = frame.column("leg_id")?.str()?;
    let seq = frame.column("sequence")?.cast(&DataType::String)?;
    let seq = seq.str()?;
    let state = PlRandomState::default();
    let parts = crate::par::slices(frame.height(), |off, len| {
        let (l, q) = (leg.slice(off as i64, len), seq.slice(off as i64, len));
        l.iter()
            .zip(q.iter())
            .enumerate()
            .map(|(i, (l, q))| (state.hash_one((l, q)), (off + i) as IdxSize))
            .collect::<Vec<_>>()
    });
    let mut v: Vec<(u64, IdxSize)> = parts.concat();
    v.par_sort_unstable();
    let mut out = Vec::new();
    let mut a = 0;
    while a < v.len() {
        let mut b = a + 1;
        while b < v.len() && v[b].0 == v[a].0 {
            b += 1;
        }
        if b - a > 1 {
            out.extend(v[a..b].iter().map(|p| p.1));
        }
        a = b;
    }
    out.sort_unstable();
    Ok(out)
}

/// The first of each set of rows alike in every key column (CDR: leg id, sequence, seat, times,
/// talk, caller ID, callee as E.164, disposition, direction, trunk; join: group, member, time).
fn exact_unique(frame: DataFrame, target: &'static Target) -> Result<DataFrame> {
    let key: Vec<Expr> = if target.kind == Kind::Cdr {
        let mut k: Vec<Expr> = [
            "leg_id",
            "sequence",
            "operator_id",
            "start_time",
            "answer_time",
            "end_time",
            "talk_s",
            "caller_id",
            "disposition",
            "direction",
            "trunk",
        ]
        .iter()
        .map(|c| col(*c))
        .collect();
        // the E.164 form when the number parses (`139 1234 5679` is `+8613912345679`)
        k.push(
            coalesce(&[
                concat_str([lit("+"), col("callee_num").cast(DataType::String)], "", false),
                col("callee"),
                lit(""),
            ])
            .alias("__callee"),
        );
        k
    } else if target.kind == Kind::Joins {
        vec![col("group_id"), coalesce(&[col("member_e164"), col("member")]).alias("__member"), col("joined_at")]
    } else {
        // a card or SMS table: the same row twice, every typed field alike
        let names = frame.get_column_names_owned();
        target.fields.iter().filter(|f| names.iter().any(|n| n == f.name)).map(|f| col(f.name)).collect()
    };
    let names: Vec<PlSmallStr> = key.iter().enumerate().map(|(i, _)| PlSmallStr::from(format!("__k{i}"))).collect();
    Ok(frame
        .lazy()
        .with_columns(key.into_iter().zip(&names).map(|(e, n)| e.alias(n.clone())).collect::<Vec<_>>())
        .unique_stable(Some(cols(names.iter().cloned())), UniqueKeepStrategy::First)
        .drop(cols(names))
        .collect()?)
}

/// Whether every value is distinct: 64-bit hashes sorted in parallel; only equal hashes (a real
/// repeat, or a 1-in-10^19 collision) send the caller to the exact (slower) de-duplication.
fn all_distinct(ca: &StringChunked) -> bool {
    use std::hash::BuildHasher;
    if strictly_increasing(ca) {
        return true;
    }
    // foldhash (Polars' own) rather than SipHash: 10 M call ids hash in a third of the time.
    // Each slice files its hashes into 256 buckets by their top byte; each bucket (all slices' parts
    // together) is then sorted on its own, in cache, in parallel (one parallel sort of 10 M hashes
    // took 0.25 s of a time-ordered export's scan, whose call ids are not in order)
    let state = PlRandomState::default();
    let parts: Vec<Vec<Vec<u64>>> = crate::par::slices(ca.len(), |off, len| {
        let mut buckets: Vec<Vec<u64>> = (0..256).map(|_| Vec::with_capacity(len / 200)).collect();
        for v in ca.slice(off as i64, len).iter() {
            let h = state.hash_one(v.unwrap_or(""));
            buckets[(h >> 56) as usize].push(h);
        }
        buckets
    });
    !(0..256usize).into_par_iter().any(|b| {
        let mut bucket: Vec<u64> = parts.iter().flat_map(|p| p[b].iter().copied()).collect();
        bucket.sort_unstable();
        bucket.windows(2).any(|w| w[0] == w[1])
    })
}

/// Values in strictly increasing byte order are distinct: exports that number their calls in
/// order (sequential ids, Asterisk's `uniqueid` of one day) need no hashing. Neighbours are compared
/// in parallel slices, each from the row before it so that slice edges are compared too.
fn strictly_increasing(ca: &StringChunked) -> bool {
    crate::par::slices(ca.len(), |off, len| {
        let from = off.saturating_sub(1);
        let part = ca.slice(from as i64, len + (off - from));
        let mut prev: Option<&str> = None;
        part.iter().all(|v| {
            let ok = v.is_some() && prev.is_none_or(|p| Some(p) < v);
            prev = v;
            ok
        })
    })
    .into_iter()
    .all(|ok| ok)
}

fn set_counts(files: &mut [FileReport], before: &HashMap<u32, u64>, after: &HashMap<u32, u64>) {
    for (i, f) in files.iter_mut().enumerate() {
        let b = before.get(&(i as u32)).copied().unwrap_or(0);
        let a = after.get(&(i as u32)).copied().unwrap_or(0);
        f.duplicates = b - a;
        f.rows_read = a;
    }
}

fn count_by_file(df: &DataFrame) -> Result<HashMap<u32, u64>> {
    // file numbers are small and dense: count into a vector, row slices in parallel
    let files = df.column("__file")?.u32()?;
    let parts = crate::par::slices(files.len(), |off, len| {
        let mut counts: Vec<u64> = Vec::new();
        for arr in files.slice(off as i64, len).downcast_iter() {
            for v in arr.iter().flatten() {
                let v = *v as usize;
                if v >= counts.len() {
                    counts.resize(v + 1, 0);
                }
                counts[v] += 1;
            }
        }
        counts
    });
    let mut m = HashMap::new();
    for counts in parts {
        for (f, c) in counts.into_iter().enumerate().filter(|(_, c)| *c > 0) {
            *m.entry(f as u32).or_default() += c;
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--partitions`: a later part's pass skips other parts' lines by the parts the first pass
    /// recorded, and keeps exactly the rows, line numbers and rejects that splitting every line
    /// again keeps (text files of several formats, one with malformed rows; 3 parts).
    #[test]
    fn later_parts_reuse_the_first_pass_line_parts() {
        let paths: Vec<PathBuf> = [
            "sample_logs/cdr/generic_utf8.csv",
            "sample_logs/cdr/freeswitch_cdr.csv",
            "sample_logs/cdr/vicidial_log.tsv",
            "tests/data/bad_rows.csv",
        ]
        .iter()
        .map(|p| Path::new(env!("CARGO_MANIFEST_DIR")).join(p))
        .collect();
        let phones = PhoneParser::new("CN").unwrap();
        let shared = LoadOptions::default();
        let of = 3;
        let (mut rows, mut rejects) = (0, 0);
        for index in 0..of {
            let part = Some(Partition { index, of });
            let reused = load_cdrs(&paths, &LoadOptions { partition: part, ..shared.clone() }, &phones).unwrap();
            // the first pass recorded every text file's line parts for the later ones
            for p in &paths {
                let file = p.display().to_string();
                let len = std::fs::metadata(p).unwrap().len() as usize;
                assert!(shared.text_parts.get(&file, len, of).is_some(), "{file}: no line parts recorded");
            }
            let fresh = load_cdrs(&paths, &LoadOptions { partition: part, ..LoadOptions::default() }, &phones).unwrap();
            assert!(reused.frame.equals_missing(&fresh.frame), "part {index}: rows differ");
            let lines =
                |l: &Loaded| l.rejects.iter().map(|r| (r.file.clone(), r.line, r.reason.clone())).collect::<Vec<_>>();
            assert_eq!(lines(&reused), lines(&fresh), "part {index}: rejects differ");
            rows += reused.frame.height();
            rejects += reused.rejects.len();
        }
        // the mapped files' UTF-8 checks are remembered for the later passes
        assert_eq!(shared.text_parts.utf8.lock().unwrap().len(), paths.len());
        // every row in exactly one part
        let whole = load_cdrs(&paths, &LoadOptions::default(), &phones).unwrap();
        assert_eq!((rows, rejects), (whole.frame.height(), whole.rejects.len()));
        assert!(rejects > 0, "the malformed rows are rejected in some part");
        // another split, or a file of another length, is not served from these records
        let file = paths[0].display().to_string();
        let len = std::fs::metadata(&paths[0]).unwrap().len() as usize;
        assert!(shared.text_parts.get(&file, len, of + 1).is_none());
        assert!(shared.text_parts.get(&file, len + 1, of).is_none());
    }

    /// The range shortcut gives what the per-value conversion gives: every 13 minutes across both
    /// of New York's 2026 changes (a gap and a repeated hour), with nulls and a jump back in time.
    #[test]
    fn naive_to_utc_matches_the_per_value_conversion_across_dst() {
        let tz: chrono_tz::Tz = "America/New_York".parse().unwrap();
        let start = 1_772_323_200_000_000i64; // 2026-03-01 00:00 wall clock
        let mut v: Vec<Option<i64>> = (0..30_000).map(|k| Some(start + k * 13 * 60_000_000)).collect();
        v[5] = None;
        v[20_000] = Some(start);
        let ca = Int64Chunked::from_iter_options("t".into(), v.iter().copied());
        let got: Vec<Option<i64>> = naive_to_utc(&ca, tz).iter().collect();
        let want: Vec<Option<i64>> =
            v.iter().map(|x| x.and_then(|x| crate::time::local_micros_to_utc(x, tz))).collect();
        assert_eq!(got, want);
        assert_eq!(got[0], Some(start + 5 * 3_600_000_000));
    }

    #[test]
    fn increasing_ids_are_distinct_without_hashing_and_others_are_hashed() {
        let ca = |v: &[&str]| v.iter().copied().collect::<StringChunked>();
        let inc: Vec<String> = (0..1000).map(|i| format!("C{i:07}")).collect();
        let inc: Vec<&str> = inc.iter().map(String::as_str).collect();
        assert!(strictly_increasing(&ca(&inc)) && all_distinct(&ca(&inc)));
        // a repeat across a slice edge, and out-of-order but distinct ids
        let mut rep = inc.clone();
        rep[500] = rep[499];
        assert!(!strictly_increasing(&ca(&rep)) && !all_distinct(&ca(&rep)));
        let mut shuffled = inc.clone();
        shuffled.swap(10, 900);
        assert!(!strictly_increasing(&ca(&shuffled)) && all_distinct(&ca(&shuffled)));
    }

    #[test]
    fn fits_accepts_trailing_empty_fields_only_with_header() {
        let l = Layout {
            sources: vec![],
            min_fields: 2,
            max_fields: Some(2),
            header_line: Some(1),
            rows: Default::default(),
        };
        let f = |v: &[&'static str]| v.iter().map(|s| Cow::Borrowed(*s)).collect::<Vec<_>>();
        assert!(fits(&l, &f(&["a", "b"])));
        assert!(fits(&l, &f(&["a", "b", ""])));
        assert!(!fits(&l, &f(&["a", "b", "c"])));
        assert!(!fits(&l, &f(&["a"])));
    }
}
