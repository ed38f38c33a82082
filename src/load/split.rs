//! A tolerant delimited-record splitter.
//!
//! Why not the `csv` crate: call-centre exports break RFC 4180 in ways that crate cannot undo.
//! FreeSWITCH's `mod_cdr_csv` quotes every field but writes inner quotes unescaped
//! (`"Bob "the" Agent","1001",…`), FreePBX and some Asterisk builds leave the clid's quotes unescaped
//! (`""Bob" <1001>"`, or bare `"Bob" <1001>`), and spreadsheet re-saves leave CR-only line ends.
//!
//! Rules:
//! - One record is one physical line (LF, CRLF or a lone CR ends it); blank lines are skipped but
//!   counted, so line numbers in error reports are the ones an editor shows. CDR fields do not hold
//!   line breaks, and refusing them means one stray quote damages one row, not the rest of the file.
//! - [`QuoteMode::Literal`] (the first try): a field that starts with `"` is quoted; inside it `""` is one
//!   `"`; a `"` followed by the delimiter or the end of the line closes the field; any other `"` is kept.
//! - [`QuoteMode::Lenient`] (the retry when the field count is wrong): a `"` that is not doubled closes
//!   the quoted part and the rest up to the delimiter is appended as is (what Python's csv module does).

use std::borrow::Cow;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuoteMode {
    Literal,
    Lenient,
}

/// Call `f(line_number, byte_start, line_text)` for every non-blank line of `text`.
pub fn for_each_line<'a, F>(text: &'a str, f: F) -> u64
where
    F: FnMut(u64, usize, &'a str),
{
    for_each_line_from(text, 1, f)
}

/// [`for_each_line`] for a chunk whose first line has number `first`.
pub fn for_each_line_from<'a, F>(text: &'a str, first: u64, mut f: F) -> u64
where
    F: FnMut(u64, usize, &'a str),
{
    let b = text.as_bytes();
    let n = b.len();
    let mut i = 0usize;
    let mut line: u64 = first - 1;
    while i < n {
        line += 1;
        let start = i;
        let end = memchr::memchr2(b'\n', b'\r', &b[i..]).map_or(n, |p| i + p);
        i = end;
        if i < n && b[i] == b'\r' {
            i += 1;
        }
        if i < n && b[i] == b'\n' && (i == end || b[end] == b'\r') {
            i += 1;
        }
        if end > start && !text[start..end].trim().is_empty() {
            f(line, start, &text[start..end]);
        }
    }
    line
}

/// Cut `text` into about `k` chunks that end just after a LF, as (start, end, first line number).
/// Line numbers count LF, CRLF and lone CR the way [`for_each_line`] does. A file without LF
/// (CR-only line ends) stays one chunk.
pub fn line_chunks(text: &str, k: usize) -> Vec<(usize, usize, u64)> {
    line_chunks_then(text, k, |_, _| {})
}

/// [`line_chunks`], calling `done(start, end)` once each chunk's lines are counted (the chunks are
/// counted in parallel): a big mapped file's pages can leave resident memory until they are split.
pub fn line_chunks_then(text: &str, k: usize, done: impl Fn(usize, usize) + Sync) -> Vec<(usize, usize, u64)> {
    use rayon::prelude::*;
    let b = text.as_bytes();
    let n = b.len();
    let k = k.max(1);
    let mut bounds = vec![0usize];
    for c in 1..k {
        let target = n * c / k;
        let last = *bounds.last().expect("non-empty");
        if target <= last {
            continue;
        }
        match memchr::memchr(b'\n', &b[target..]) {
            Some(p) if target + p + 1 < n => bounds.push(target + p + 1),
            _ => break,
        }
    }
    bounds.dedup();
    let ends: Vec<usize> = (0..bounds.len()).map(|i| bounds.get(i + 1).copied().unwrap_or(n)).collect();
    let counts: Vec<u64> = bounds
        .par_iter()
        .zip(ends.par_iter())
        .map(|(&a, &e)| {
            let seg = &b[a..e];
            let lf = memchr::memchr_iter(b'\n', seg).count() as u64;
            let lone_cr = memchr::memchr_iter(b'\r', seg).filter(|&p| seg.get(p + 1) != Some(&b'\n')).count() as u64;
            done(a, e);
            lf + lone_cr
        })
        .collect();
    let mut out = Vec::with_capacity(bounds.len());
    let mut line = 1u64;
    for ((&a, &e), c) in bounds.iter().zip(&ends).zip(counts) {
        out.push((a, e, line));
        line += c;
    }
    out
}

/// Split one line into `out` (cleared first).
pub fn split_fields<'a>(line: &'a str, delim: u8, mode: QuoteMode, out: &mut Vec<Cow<'a, str>>) {
    out.clear();
    let b = line.as_bytes();
    let n = b.len();
    if memchr::memchr(b'"', b).is_none() {
        // no quotes (nearly every CDR line): the fields lie between the delimiters, found with SIMD
        // search instead of a byte-by-byte walk (that walk was a tenth of a CSV scan's CPU)
        let mut s = 0;
        for p in memchr::memchr_iter(delim, b) {
            out.push(Cow::Borrowed(&line[s..p]));
            s = p + 1;
        }
        out.push(Cow::Borrowed(&line[s..]));
        return;
    }
    let mut i = 0usize;
    loop {
        if i < n && b[i] == b'"' {
            i += 1;
            let mut seg = i;
            let mut owned: Option<String> = None;
            loop {
                if i >= n {
                    break;
                }
                if b[i] != b'"' {
                    i += 1;
                    continue;
                }
                let next = b.get(i + 1).copied();
                if next == Some(b'"') {
                    let o = owned.get_or_insert_with(String::new);
                    o.push_str(&line[seg..i]);
                    o.push('"');
                    i += 2;
                    seg = i;
                } else if next.is_none() || next == Some(delim) || mode == QuoteMode::Lenient {
                    break;
                } else {
                    i += 1; // unescaped inner quote, kept
                }
            }
            let body_end = i.min(n);
            let mut value: Cow<'a, str> = match owned {
                Some(mut o) => {
                    o.push_str(&line[seg..body_end]);
                    Cow::Owned(o)
                }
                None => Cow::Borrowed(&line[seg..body_end]),
            };
            if i < n {
                i += 1; // the closing quote
            }
            if mode == QuoteMode::Lenient && i < n && b[i] != delim {
                let s = i;
                while i < n && b[i] != delim {
                    i += 1;
                }
                value.to_mut().push_str(&line[s..i]);
            }
            out.push(value);
        } else {
            let s = i;
            while i < n && b[i] != delim {
                i += 1;
            }
            out.push(Cow::Borrowed(&line[s..i]));
        }
        if i < n && b[i] == delim {
            i += 1;
            if i == n {
                out.push(Cow::Borrowed(""));
                return;
            }
            continue;
        }
        return;
    }
}

/// Pick the delimiter of a header or first line: the most frequent of `,` TAB `;` `|` outside quotes.
pub fn sniff_delimiter(line: &str) -> u8 {
    let mut counts = [0usize; 4];
    let cands = [b',', b'\t', b';', b'|'];
    let mut quoted = false;
    for &c in line.as_bytes() {
        if c == b'"' {
            quoted = !quoted;
        } else if !quoted && let Some(k) = cands.iter().position(|d| *d == c) {
            counts[k] += 1;
        }
    }
    let best = (0..4).max_by_key(|k| (counts[*k], usize::MAX - k)).unwrap_or(0);
    if counts[best] == 0 { b',' } else { cands[best] }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str, mode: QuoteMode) -> Vec<String> {
        let mut v = Vec::new();
        split_fields(line, b',', mode, &mut v);
        v.into_iter().map(Cow::into_owned).collect()
    }

    fn lines(text: &str) -> Vec<(u64, String)> {
        let mut v = Vec::new();
        for_each_line(text, |n, _, l| v.push((n, l.to_string())));
        v
    }

    #[test]
    fn rfc_quotes_and_escapes() {
        assert_eq!(split("a,\"b,c\",\"d \"\"e\"\"\",,\"\"", QuoteMode::Literal), ["a", "b,c", "d \"e\"", "", ""]);
        assert_eq!(split("a,b,", QuoteMode::Literal), ["a", "b", ""]);
        assert_eq!(split("", QuoteMode::Literal), [""]);
    }

    #[test]
    fn asterisk_clid_escaped_and_unescaped() {
        assert_eq!(split("\"\"\"Bob\"\" <1001>\",x", QuoteMode::Literal), ["\"Bob\" <1001>", "x"]);
        assert_eq!(split("\"\"Bob\" <1001>\",x", QuoteMode::Literal), ["\"Bob\" <1001>", "x"]);
        // bare, unquoted clid: the literal pass swallows the line, the lenient pass recovers it
        assert_eq!(split("\"Bob\" <1001>,1001,x", QuoteMode::Literal).len(), 1);
        assert_eq!(split("\"Bob\" <1001>,1001,x", QuoteMode::Lenient), ["Bob <1001>", "1001", "x"]);
    }

    #[test]
    fn freeswitch_inner_quotes_unescaped() {
        assert_eq!(split("\"Bob \"the\" Agent\",\"1001\",\"\"", QuoteMode::Literal), ["Bob \"the\" Agent", "1001", ""]);
    }

    #[test]
    fn line_ends_and_blank_lines() {
        assert_eq!(
            lines("a,b\r\n\r\nc,d\re,f\n\nh,i"),
            vec![(1, "a,b".into()), (3, "c,d".into()), (4, "e,f".into()), (6, "h,i".into())]
        );
        assert_eq!(lines("x\r\r\ny"), vec![(1, "x".into()), (3, "y".into())]);
    }

    #[test]
    fn chunks_keep_line_numbers() {
        let text = "h\r\na\n\nb\r\nc\rd\ne\nf";
        let whole = lines(text);
        for k in 1..8 {
            let mut got = Vec::new();
            for (a, b, first) in line_chunks(text, k) {
                for_each_line_from(&text[a..b], first, |n, _, l| got.push((n, l.to_string())));
            }
            assert_eq!(got, whole, "k={k}");
            // each chunk reported done once
            let done = std::sync::Mutex::new(Vec::new());
            let chunks = line_chunks_then(text, k, |a, b| done.lock().unwrap().push((a, b)));
            let mut done = done.into_inner().unwrap();
            done.sort_unstable();
            assert_eq!(done, chunks.iter().map(|c| (c.0, c.1)).collect::<Vec<_>>(), "k={k}");
        }
    }

    #[test]
    fn delimiter_sniffing() {
        assert_eq!(sniff_delimiter("a\tb\tc,d"), b'\t');
        assert_eq!(sniff_delimiter("\"a,b\";c;d"), b';');
        assert_eq!(sniff_delimiter("abc"), b',');
    }
}
