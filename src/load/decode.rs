//! Bytes → UTF-8 text: decompression (`.gz`, `.zst`, by magic bytes), encoding detection and
//! transcoding (`encoding_rs`), line-ending tolerance (LF, CRLF, CR-only).
//!
//! Detection order: a BOM decides (UTF-8, UTF-16LE/BE); else valid UTF-8 is UTF-8; else GB18030,
//! the superset of GBK and GB2312 that Chinese call-centre software writes. Bytes that are invalid in
//! the chosen encoding become U+FFFD inside their field: the row is kept.

use anyhow::{Context, Result};
use std::borrow::Cow;
use std::io::Read;
use std::path::Path;

/// Text encodings the loader names in reports and accepts in `--encoding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    #[value(name = "utf-8")]
    #[serde(rename = "utf-8")]
    Utf8,
    /// UTF-8 with a byte-order mark.
    #[value(name = "utf-8-bom")]
    #[serde(rename = "utf-8-bom")]
    Utf8Bom,
    #[value(name = "gb18030", alias = "gbk", alias = "gb2312")]
    Gb18030,
    #[value(name = "utf-16le")]
    #[serde(rename = "utf-16le")]
    Utf16Le,
    #[value(name = "utf-16be")]
    #[serde(rename = "utf-16be")]
    Utf16Be,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Utf8Bom => "utf-8-bom",
            Encoding::Gb18030 => "gb18030",
            Encoding::Utf16Le => "utf-16le",
            Encoding::Utf16Be => "utf-16be",
        }
    }
}

/// Decoded input text: a read-only memory map of a plain UTF-8 file, or owned text (decompressed,
/// transcoded, or read from a file that cannot be mapped).
///
/// Mapping reads the page cache in place: reading a 1.4 GB export into a buffer first made the
/// kernel zero 1.4 GB of fresh pages (about a second of system time on the bench machine). A file
/// truncated by another process while it is mapped would fault; CDR exports are complete files.
pub enum Text {
    Owned(String),
    /// Checked to be UTF-8 when mapped.
    Mapped(memmap2::Mmap),
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            Text::Owned(s) => s,
            // SAFETY: `map_utf8` maps only files whose bytes it checked to be UTF-8
            Text::Mapped(m) => unsafe { std::str::from_utf8_unchecked(m) },
        }
    }
}

impl Text {
    /// Done with bytes `a..b`: a mapped file's pages there leave this process's resident memory (the
    /// page cache keeps them; a later read faults them back in). A 13 GB export split chunk by chunk
    /// then never sits whole in memory beside the columns made from it; owned text is left alone.
    pub fn release(&self, a: usize, b: usize) {
        if let Text::Mapped(m) = self {
            let page = 4096;
            let (a, b) = (a.div_ceil(page) * page, (b / page) * page);
            if a < b && b <= m.len() {
                // SAFETY: a read-only file map; MADV_DONTNEED only drops the mappings of these pages,
                // whose bytes are read again from the file if touched (see the note on truncation)
                let _ = unsafe { m.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, a, b - a) };
            }
        }
    }
}

/// A memory map of `path` when it is plain (uncompressed), non-empty UTF-8 without a BOM; None
/// otherwise (the caller reads and decodes it).
///
/// `known_utf8`: the caller found this file UTF-8 before, at the length and modification time it
/// has now (`scan --partitions` reads each file once a part): the check is not made again.
pub fn map_utf8(path: &Path, known_utf8: bool) -> Option<Text> {
    let file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    if len == 0 {
        return None;
    }
    // A file up to 4 GiB is mapped in one call (MAP_POPULATE) rather than faulted in 64 KB at a time as
    // the UTF-8 check and the splitter walk it; a bigger one is faulted on demand, so a 13 GB export
    // is not read whole before its first line is split.
    let mut opts = memmap2::MmapOptions::new();
    if len <= BIG_FILE as u64 {
        opts.populate();
    }
    // a SIGBUS from here on names this file (it was truncated under the map)
    crate::signals::reading(path);
    // SAFETY: read-only map of an input file; see the note on [`Text`] about files truncated meanwhile
    let map = unsafe { opts.map(&file) }.ok()?;
    if compression_of(&map) != Compression::None || map.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return None;
    }
    if known_utf8 {
        return Some(Text::Mapped(map));
    }
    if len <= BIG_FILE as u64 {
        return (detect(&map) == Encoding::Utf8).then_some(Text::Mapped(map));
    }
    // A bigger file is checked in blocks of at most 256 MB whose pages leave this process's resident
    // memory once checked: walked whole, a 13 GB export sat whole in the peak RSS before a line of it
    // was split.
    let text = Text::Mapped(map);
    let utf8 = !text.as_bytes().starts_with(&[0xFF, 0xFE])
        && !text.as_bytes().starts_with(&[0xFE, 0xFF])
        && is_utf8_in_blocks(text.as_bytes(), BIG_BLOCK, |a, b| text.release(a, b));
    utf8.then_some(text)
}

/// A mapped file larger than this is big: faulted in on demand and walked in blocks of at most
/// [`BIG_BLOCK`] whose pages are released behind the walk; a smaller one is mapped whole.
pub const BIG_FILE: usize = 4 << 30;

/// The largest block of a big mapped file walked at once before its pages are released.
pub const BIG_BLOCK: usize = 256 << 20;

/// Compression found by magic bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

pub fn compression_of(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Read a whole file, decompressing `.gz` (multi-member too) and `.zst` by their magic bytes.
pub fn read_decompressed(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    decompress(raw).with_context(|| format!("{}: cannot decompress", path.display()))
}

pub fn decompress(raw: Vec<u8>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    match compression_of(&raw) {
        Compression::None => return Ok(raw),
        Compression::Gzip => {
            flate2::read::MultiGzDecoder::new(&raw[..])
                .read_to_end(&mut out)
                .context("truncated or corrupt gzip stream")?;
        }
        Compression::Zstd => {
            zstd::stream::read::Decoder::new(&raw[..])?
                .read_to_end(&mut out)
                .context("truncated or corrupt zstd stream")?;
        }
    }
    Ok(out)
}

/// Decide the encoding of `bytes` (see the module docs).
pub fn detect(bytes: &[u8]) -> Encoding {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        Encoding::Utf8Bom
    } else if bytes.starts_with(&[0xFF, 0xFE]) {
        Encoding::Utf16Le
    } else if bytes.starts_with(&[0xFE, 0xFF]) {
        Encoding::Utf16Be
    } else if is_utf8(bytes) {
        Encoding::Utf8
    } else {
        Encoding::Gb18030
    }
}

/// Whether the bytes are UTF-8, checked in parallel blocks that start on character boundaries (a
/// 1.4 GB export took up to a second on one core).
fn is_utf8(bytes: &[u8]) -> bool {
    is_utf8_in_blocks(bytes, usize::MAX, |_, _| {})
}

/// [`is_utf8`] in blocks of at most `max_block` bytes, calling `done(a, b)` after each block checked.
fn is_utf8_in_blocks(bytes: &[u8], max_block: usize, done: impl Fn(usize, usize) + Sync) -> bool {
    use rayon::prelude::*;
    const MIN_BLOCK: usize = 1 << 20;
    let k = (rayon::current_num_threads() * 2).min(bytes.len() / MIN_BLOCK).max(bytes.len().div_ceil(max_block)).max(1);
    // a block starts at the first byte of its share that is not a continuation byte (UTF-8 has at
    // most three in a row; with more the block fails its check, as the whole would)
    let mut starts: Vec<usize> = (0..k)
        .map(|i| {
            let share = bytes.len() * i / k;
            (share..(share + 4).min(bytes.len())).find(|&p| bytes[p] & 0xC0 != 0x80).unwrap_or(share)
        })
        .collect();
    starts.push(bytes.len());
    starts.dedup();
    starts.par_windows(2).all(|w| {
        let ok = std::str::from_utf8(&bytes[w[0]..w[1]]).is_ok();
        done(w[0], w[1]);
        ok
    })
}

/// Decode with `forced` or the detected encoding; returns the text and the encoding used.
pub fn decode(bytes: &[u8], forced: Option<Encoding>) -> (Cow<'_, str>, Encoding) {
    let enc = forced.unwrap_or_else(|| detect(bytes));
    let text = match enc {
        Encoding::Utf8 | Encoding::Utf8Bom => {
            let b = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF][..]).unwrap_or(bytes);
            String::from_utf8_lossy(b)
        }
        Encoding::Gb18030 => encoding_rs::GB18030.decode_without_bom_handling(bytes).0,
        Encoding::Utf16Le => encoding_rs::UTF_16LE.decode_with_bom_removal(bytes).0,
        Encoding::Utf16Be => encoding_rs::UTF_16BE.decode_with_bom_removal(bytes).0,
    };
    (text, enc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_mapped_pages_read_back_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cdr.csv");
        let body: String = (0..20_000).map(|i| format!("C{i:09},op{},2026-03-02 08:00:00\n", i % 7)).collect();
        std::fs::write(&p, &body).unwrap();
        let text = map_utf8(&p, false).expect("plain UTF-8 is mapped");
        assert!(matches!(text, Text::Mapped(_)));
        // an unaligned range in the middle, then the whole file
        text.release(5_000, 300_000);
        assert_eq!(&*text, body.as_str());
        text.release(0, text.len());
        assert_eq!(&*text, body.as_str());
        // owned text is left alone
        let owned = Text::Owned(body.clone());
        owned.release(0, owned.len());
        assert_eq!(&*owned, body.as_str());
    }

    #[test]
    fn utf8_check_in_blocks_agrees_with_std() {
        // multi-byte characters across every block edge; a bad byte in the middle; a cut last character
        let text = "话务引流 ok ".repeat(400_000);
        assert!(text.len() > 4 << 20);
        assert!(is_utf8(text.as_bytes()));
        let mut bad = text.clone().into_bytes();
        let mid = bad.len() / 2;
        bad[mid] = 0xFF;
        assert!(!is_utf8(&bad));
        let mut cut = "话".repeat(2_000_000).into_bytes();
        assert!(is_utf8(&cut));
        cut.pop(); // the last character cut in half
        assert!(!is_utf8(&cut));
        assert!(is_utf8(b"") && is_utf8(b"abc"));
        // in small blocks, each block reported once, the blocks covering the text
        let seen = std::sync::Mutex::new(Vec::new());
        assert!(is_utf8_in_blocks(text.as_bytes(), 1 << 20, |a, b| seen.lock().unwrap().push((a, b))));
        let mut seen = seen.into_inner().unwrap();
        seen.sort_unstable();
        assert!(seen.len() >= text.len() / (1 << 20));
        assert_eq!((seen[0].0, seen.last().unwrap().1), (0, text.len()));
        assert!(seen.windows(2).all(|w| w[0].1 == w[1].0));
        assert!(!is_utf8_in_blocks(&bad, 1 << 20, |_, _| {}));
    }

    #[test]
    fn detects_and_decodes() {
        let gbk = encoding_rs::GBK.encode("座席,主叫号码\n1001,13812345678\n").0.into_owned();
        assert_eq!(detect(&gbk), Encoding::Gb18030);
        assert_eq!(decode(&gbk, None).0, "座席,主叫号码\n1001,13812345678\n");
        let bom = [&[0xEF, 0xBB, 0xBF][..], "a,b\n".as_bytes()].concat();
        assert_eq!(decode(&bom, None), (Cow::Borrowed("a,b\n"), Encoding::Utf8Bom));
        assert_eq!(detect("座席".as_bytes()), Encoding::Utf8);
        // an invalid byte in a UTF-8-forced file becomes U+FFFD, the rest survives
        let (t, _) = decode(b"a,\xff,c\n", Some(Encoding::Utf8));
        assert_eq!(t, "a,\u{fffd},c\n");
    }

    #[test]
    fn gzip_and_zstd_round_trip() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"hello\n").unwrap();
        assert_eq!(decompress(gz.finish().unwrap()).unwrap(), b"hello\n");
        let z = zstd::encode_all(&b"hello\n"[..], 1).unwrap();
        assert_eq!(decompress(z).unwrap(), b"hello\n");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&[b'x'; 10000]).unwrap();
        let mut bytes = gz.finish().unwrap();
        bytes.truncate(bytes.len() / 2);
        assert!(decompress(bytes).is_err());
    }
}
