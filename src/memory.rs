//! Before a scan loads anything: its peak memory estimated from the inputs' row counts, against the
//! memory the machine has free. A scan holds every call of a partition in memory (`--partitions`
//! splits the operators), so an input too large for the machine would otherwise be killed
//! by the kernel part way through (exit 137, nothing written, no reason given); here it fails at
//! once with the figures, or with `--ignore-memory-check` runs on with a warning.

use anyhow::{Context, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Peak resident bytes per CDR row of a scan, from bench/results.md: 215–245 at 10–50 M rows in
/// operator order (CSV and Parquet), ~305 for a 10 M-row CSV in time order (the sort's gather).
pub const BYTES_PER_ROW: u64 = 320;

/// Assumed expansion of a compressed text input (CSV CDRs compress 5–8× with gzip or zstd).
const COMPRESSED_RATIO: u64 = 6;

/// Bytes read from the start of a file (decompressed, if compressed) for its mean line length.
const SAMPLE: u64 = 64 * 1024;

/// The rows of the inputs, estimated without reading them: Parquet from its footer; text from its
/// size (times [`COMPRESSED_RATIO`] when compressed) over the mean length of its first lines.
pub fn estimated_rows(paths: &[PathBuf]) -> Result<u64> {
    let mut rows = 0;
    for p in paths {
        rows += rows_of(p).with_context(|| format!("{}: cannot estimate its rows", p.display()))?;
    }
    Ok(rows)
}

fn rows_of(path: &Path) -> Result<u64> {
    let f = std::fs::File::open(path)?;
    let size = f.metadata()?.len();
    let mut head = Vec::new();
    f.take(SAMPLE).read_to_end(&mut head)?;
    if head.starts_with(b"PAR1") {
        use polars::prelude::{ParquetReader, SerReader};
        let mut reader = ParquetReader::new(std::fs::File::open(path)?);
        return Ok(reader.num_rows()? as u64);
    }
    use crate::load::decode::{Compression, compression_of};
    let (text, bytes) = match compression_of(&head) {
        Compression::None => (head, size),
        c => {
            // the first lines, decompressed, for their length (a truncated stream is fine here)
            let file = std::fs::File::open(path)?;
            let d: Box<dyn Read> = if c == Compression::Gzip {
                Box::new(flate2::read::MultiGzDecoder::new(file))
            } else {
                Box::new(zstd::stream::read::Decoder::new(file)?)
            };
            let mut sample = Vec::new();
            // what decompressed before an error is still a sample
            let _ = d.take(SAMPLE).read_to_end(&mut sample);
            (sample, size.saturating_mul(COMPRESSED_RATIO))
        }
    };
    let lines = text.iter().filter(|b| **b == b'\n').count() as u64;
    if lines == 0 {
        // one line or none in the first 64 KB: at most a handful of rows per 64 KB
        return Ok(bytes / SAMPLE + 1);
    }
    Ok(bytes / (text.len() as u64 / lines).max(1))
}

/// Bytes the machine can give a new process: `MemAvailable` plus free swap from /proc/meminfo
/// (`DIVERSION_AUDIT_MEMORY_AVAILABLE`, in bytes, overrides it); None where neither is known.
pub fn available() -> Option<u64> {
    if let Some(v) = std::env::var_os("DIVERSION_AUDIT_MEMORY_AVAILABLE") {
        return v.to_str().and_then(|s| s.trim().parse().ok());
    }
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb = |key: &str| -> Option<u64> {
        info.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse::<u64>().ok().map(|k| k * 1024)
    };
    Some(kb("MemAvailable:")? + kb("SwapFree:").unwrap_or(0))
}

/// What the check found: the estimate, and when it exceeds what is available, the message.
pub struct Check {
    pub rows: u64,
    pub need: u64,
    pub available: Option<u64>,
}

impl Check {
    /// The estimate for a scan in `parts` operator partitions (1: the whole input at once): each
    /// part is held alone, so the peak is that of the largest, about the rows over `parts`.
    pub fn of(paths: &[PathBuf], parts: u32) -> Result<Self> {
        let rows = estimated_rows(paths)?;
        Ok(Self::with(rows, parts, available()))
    }

    fn with(rows: u64, parts: u32, available: Option<u64>) -> Self {
        let per_part = rows.div_ceil(u64::from(parts.max(1)));
        Self { rows, need: per_part.saturating_mul(BYTES_PER_ROW), available }
    }

    /// The reason the scan would not fit, if it would not, with the `--partitions` that would.
    pub fn shortfall(&self) -> Option<String> {
        let avail = self.available?;
        (self.need > avail).then(|| {
            // parts sized to three quarters of what is available: the merged results and the
            // estimate's error need room too
            let budget = (avail / 4 * 3).max(1);
            let fits = self.rows.saturating_mul(BYTES_PER_ROW).div_ceil(budget).max(2);
            format!(
                "the CDR inputs hold about {:.1} M rows, which need about {:.1} GB of memory at peak ({} bytes a \
                 row in each part held); {:.1} GB is available. Scan them in operator partitions, e.g. \
                 --partitions {fits}",
                self.rows as f64 / 1e6,
                self.need as f64 / 1e9,
                BYTES_PER_ROW,
                avail as f64 / 1e9
            )
        })
    }
}

/// Hand the memory freed so far back to the kernel, on every thread that allocates: this thread,
/// rayon's pool and Polars' pool. mimalloc purges a thread's freed pages only as that thread goes
/// on allocating, so pages a pool thread freed at the end of one part of a partitioned scan stayed
/// resident while it idled through the next (100 M Parquet rows in 10 parts: resident after the
/// first part 2.4 -> 0.9 GB, after the last 4.7 -> 3.3 GB).
pub fn release_freed() {
    let collect = || {
        // SAFETY: mi_collect takes no pointers; it purges the calling thread's free pages
        unsafe { libmimalloc_sys::mi_collect(true) }
    };
    rayon::broadcast(|_| collect());
    polars_core::runtime::THREAD_POOL.broadcast(|_| collect());
    collect();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn text_rows_are_estimated_from_size_and_line_length_plain_and_gzipped() {
        let dir = tempfile::tempdir().unwrap();
        let line = "C0000000001,op00001,2026-03-02 07:34:26,,2026-03-02 07:38:17,231,222,+8613912345678\n";
        let body: String = std::iter::repeat_n(line, 20_000).collect();
        let plain = dir.path().join("a.csv");
        std::fs::write(&plain, &body).unwrap();
        let rows = estimated_rows(std::slice::from_ref(&plain)).unwrap();
        assert!((19_500..=20_500).contains(&rows), "{rows}");
        let gz = dir.path().join("a.csv.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(body.as_bytes()).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        // compressed: the size times the assumed ratio over the decompressed lines' length
        let size = std::fs::metadata(&gz).unwrap().len();
        let want = size * COMPRESSED_RATIO / line.len() as u64;
        assert_eq!(estimated_rows(std::slice::from_ref(&gz)).unwrap(), want);
        assert_eq!(estimated_rows(&[plain, gz]).unwrap(), rows + want);
    }

    #[test]
    fn parquet_rows_come_from_the_footer() {
        use polars::prelude::*;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.parquet");
        let mut df = df!("call_id" => (0..1234).map(|i| format!("C{i}")).collect::<Vec<_>>()).unwrap();
        ParquetWriter::new(std::fs::File::create(&p).unwrap()).finish(&mut df).unwrap();
        assert_eq!(estimated_rows(&[p]).unwrap(), 1234);
    }

    #[test]
    fn a_shortfall_names_the_figures_and_none_when_it_fits() {
        let c = Check::with(100_000_000, 1, Some(21_000_000_000));
        let msg = c.shortfall().unwrap();
        assert!(msg.contains("100.0 M rows") && msg.contains("32.0 GB") && msg.contains("21.0 GB"), "{msg}");
        // 32 GB over three quarters of 21 GB: 3 parts
        assert!(msg.contains("--partitions 3"), "{msg}");
        assert!(Check::with(100_000_000, 3, Some(21_000_000_000)).shortfall().is_none());
        assert!(Check { available: Some(c.need), ..c }.shortfall().is_none());
        assert!(Check { rows: 1, need: 1, available: None }.shortfall().is_none());
    }
}
