//! Enrichment: E.164 numbers and countries for callers, callees and join members; IP → country.
//! Each distinct value is parsed or looked up once (in parallel with rayon) and joined back.

pub mod ip;
pub mod phone;

use anyhow::Result;
use ip::IpCountry;
use phone::ParsedNumber;
use phone::PhoneParser;
use polars::prelude::*;

/// Add `caller_e164` (unless `e164_text` is false), `caller_country`, `caller_valid`, `caller_num` and
/// `callee_num` to a CDR frame.
///
/// One pass per column with a cache of what each distinct text became (caller IDs repeat a lot);
/// plain home mobiles take an allocation-free fast path instead. `scan` asks for no `caller_e164`:
/// it is `+` and the digits of `caller_num`, and 10 M rows of it were 160 MB of string views.
///
/// With `dicts` (`scan`), `caller_id` and `caller_country` come out as codes ([`crate::coded`]): the
/// loader coded the caller IDs as it typed them (a frame of no file is coded here), so only their
/// distinct texts are parsed and no text is gathered; the caller columns follow in [`finish_callers`].
pub fn cdr_numbers(
    mut df: DataFrame,
    phones: &PhoneParser,
    e164_text: bool,
    dicts: Option<&mut crate::coded::Dicts>,
) -> Result<(DataFrame, Option<PendingCallers>)> {
    if let Some(dicts) = dicts {
        // `scan`: the loader coded the caller IDs as it typed them (a frame of no file is coded
        // here); their distinct texts are parsed on a thread of their own while loading goes on
        // (dedupe, the join logs, IP countries keep both cores busy); [`finish_callers`] adds
        // their columns
        dicts.encode(&mut df, "caller_id")?;
        let (to_parse, parser) = (dicts.values("caller_id").unwrap_or_default().to_vec(), phones.clone());
        let handle = std::thread::Builder::new()
            .name("callers".into())
            .spawn(move || to_parse.iter().map(|raw| parser.parse(raw, true)).collect())?;
        let t0 = std::time::Instant::now();
        let (_, callee_num) = home_numbers(df.column("callee")?.str()?, phones, None, "callee_num");
        df.with_column(callee_num.into_column())?;
        crate::diag::trace("callee numbers", t0);
        return Ok((df, Some(PendingCallers { handle })));
    }
    let callers = df.column("caller_id")?.str()?.clone();
    // Each distinct caller ID is parsed once (phonenumber's validity check costs tens of µs; a cache
    // per row slice parsed the same 20 000 IDs once per slice): distinct values first, parsed in
    // parallel, then every row looks its value up.
    let t0 = std::time::Instant::now();
    // sorted, so numbers of one country follow each other: phonenumber keeps a small cache of
    // compiled regexes per region, and hash order made it recompile them for almost every number
    let (distinct, codes) = crate::par::dictionary(&callers);
    crate::diag::trace("distinct callers", t0);
    // phonenumber's compiled regexes sit behind one global lock, so parsing on two threads ran no
    // faster than on one: the callers are parsed on one thread while the callees' E.164 keys
    // (mostly the allocation-free mobile fast path) are computed on the others
    let callees = df.column("callee")?.str()?.clone();
    let (parsed, (_, callee_num)) = rayon::join(
        || distinct.iter().map(|raw| phones.parse(raw, true)).collect::<Vec<ParsedNumber>>(),
        || home_numbers(&callees, phones, None, "callee_num"),
    );
    crate::diag::trace("parsed callers", t0);
    // Each row has the index of its distinct value; the text columns are gathers from the distinct
    // values (views into their small buffers) instead of 10 M strings copied one by one.
    let d_e164: StringChunked = parsed.iter().map(|p| p.e164.as_deref()).collect();
    let d_country: StringChunked = parsed.iter().map(|p| p.country.as_deref()).collect();
    let d_num: Vec<Option<u64>> = parsed.iter().map(|p| p.e164.as_deref().and_then(e164_num)).collect();
    let code = |c: u32| (c != crate::par::NO_CODE).then_some(c as usize);
    type Part = (IdxCa, BooleanChunked, UInt64Chunked);
    let parts: Vec<Part> = crate::par::slices(codes.len(), |off, len| {
        let part = &codes[off..off + len];
        let idx = part.iter().map(|c| code(*c).map(|i| i as IdxSize));
        let valid = part.iter().map(|c| code(*c).map(|i| parsed[i].valid));
        let num = part.iter().map(|c| code(*c).and_then(|i| d_num[i]));
        (
            IdxCa::from_iter_options("idx".into(), idx),
            BooleanChunked::from_iter_options("caller_valid".into(), valid),
            UInt64Chunked::from_iter_options("caller_num".into(), num),
        )
    });
    drop(codes);
    let (mut idx, mut valid, mut nums) = (vec![], vec![], vec![]);
    for (i, v, n) in parts {
        idx.push(i);
        valid.push(v);
        nums.push(n);
    }
    let idx = crate::par::concat("idx", idx);
    // two gathers of 10 M views, one per core
    let (e164, country) = rayon::join(|| e164_text.then(|| d_e164.take(&idx)).transpose(), || d_country.take(&idx));
    let e164 = e164?.map(|c| c.with_name("caller_e164".into()));
    let country = country?.with_name("caller_country".into());
    let valid = crate::par::concat("caller_valid", valid);
    let nums = crate::par::concat("caller_num", nums);
    crate::diag::trace("caller columns", t0);
    if let Some(e164) = e164 {
        df.with_column(e164.into_column())?;
    }
    df.with_column(country.into_column())?;
    df.with_column(valid.into_column())?;
    df.with_column(nums.into_column())?;
    df.with_column(callee_num.into_column())?;
    Ok((df, None))
}

/// The distinct caller IDs of a coded CDR frame, being parsed on their own thread.
pub struct PendingCallers {
    handle: std::thread::JoinHandle<Vec<ParsedNumber>>,
}

/// Add `caller_country` (coded), `caller_valid` and `caller_num` to a frame whose `caller_id` is
/// coded, from the parse [`cdr_numbers`] started: each row's values are its caller's, by code.
pub fn finish_callers(df: &mut DataFrame, pending: PendingCallers, dicts: &mut crate::coded::Dicts) -> Result<()> {
    let t0 = std::time::Instant::now();
    let parsed = pending.handle.join().map_err(|_| anyhow::anyhow!("parsing caller IDs failed (thread panicked)"))?;
    crate::diag::trace("parsed callers", t0);
    let codes = df.column("caller_id")?.u32()?.clone();
    let per_caller: Vec<Option<&str>> = parsed.iter().map(|p| p.country.as_deref()).collect();
    let (countries, country_codes) = crate::coded::derive(&codes, &per_caller, "caller_country");
    let d_num: Vec<Option<u64>> = parsed.iter().map(|p| p.e164.as_deref().and_then(e164_num)).collect();
    let valid = crate::par::slices(codes.len(), |off, len| {
        codes.slice(off as i64, len).iter().map(|c| c.map(|c| parsed[c as usize].valid)).collect::<BooleanChunked>()
    });
    let nums: UInt64Chunked = crate::coded::map_codes(&codes, "caller_num", |c| d_num[c as usize]);
    df.with_column(country_codes.into_column())?;
    df.with_column(crate::par::concat("caller_valid", valid).into_column())?;
    df.with_column(nums.into_column())?;
    dicts.insert("caller_country", countries);
    // back in canonical order
    let names: Vec<&str> = CANONICAL_CDR.into_iter().filter(|c| df.column(c).is_ok()).collect();
    *df = df.select(names)?;
    crate::diag::trace("caller columns", t0);
    Ok(())
}

/// The digits of an E.164 number as an integer (`+8613912345678` → 8613912345678): rules compare,
/// join and count numbers by this key instead of hashing millions of strings. E.164 has at most
/// 15 digits, so it always fits.
pub fn e164_num(e164: &str) -> Option<u64> {
    let d = e164.strip_prefix('+').unwrap_or(e164);
    if d.is_empty() || d.len() > 19 || !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    d.parse().ok()
}

/// A country calling code (`+86`) tested against [`e164_num`] keys, so rules can tell home numbers
/// apart on the numeric column, which redaction leaves alone (the E.164 text becomes a pseudonym).
#[derive(Clone, Copy, Debug)]
pub struct NumPrefix {
    value: u64,
    digits: u32,
}

impl NumPrefix {
    /// None for a prefix that is not `+` and digits.
    pub fn new(prefix: &str) -> Option<Self> {
        let value = e164_num(prefix)?;
        Some(Self { value, digits: prefix.trim_start_matches('+').len() as u32 })
    }

    /// Whether the number's digits start with the prefix's (a range test: no division, which made
    /// this test a third of the fan-out rule's pass over the calls).
    #[inline]
    pub fn matches(&self, num: u64) -> bool {
        let digits = num.checked_ilog10().map_or(1, |l| l + 1);
        if digits < self.digits {
            return false;
        }
        // in u128: the bounds of a 20-digit number pass u64::MAX
        let scale = 10u128.pow(digits - self.digits);
        let n = num as u128;
        n >= self.value as u128 * scale && n < (self.value as u128 + 1) * scale
    }
}

/// [`e164_num`] keys of a column of home-side numbers (callees, join members), and their E.164 text
/// when `text` names it (the 10 M callees need only the keys: their text is made for the few calls a
/// report shows), rows split across threads.
fn home_numbers(
    col: &StringChunked,
    phones: &PhoneParser,
    text: Option<&str>,
    num_name: &str,
) -> (Option<StringChunked>, UInt64Chunked) {
    let parts = crate::par::slices(col.len(), |off, len| {
        let part = col.slice(off as i64, len);
        let mut out = text.map(|name| StringChunkedBuilder::new(name.into(), part.len()));
        let mut nums: Vec<Option<u64>> = Vec::with_capacity(part.len());
        let mut cache: PlHashMap<&str, Option<String>> = PlHashMap::new();
        let mut buf = String::with_capacity(16);
        for v in part.iter() {
            let (e164, num) = match v {
                None => (None, None),
                Some(raw) => match phones.fast_national_mobile(raw) {
                    // eleven digits: the key is 86 and the digits, with no text built unless asked
                    Some(d) => {
                        let num = d.bytes().fold(86u64, |acc, b| acc * 10 + u64::from(b - b'0'));
                        if out.is_some() {
                            buf.clear();
                            buf.push_str("+86");
                            buf.push_str(d);
                        }
                        (out.is_some().then_some(buf.as_str()), Some(num))
                    }
                    None => {
                        let e = cache.entry(raw).or_insert_with(|| phones.parse(raw, false).e164).as_deref();
                        (e, e.and_then(e164_num))
                    }
                },
            };
            if let Some(o) = out.as_mut() {
                o.append_option(e164);
            }
            nums.push(num);
        }
        (out.map(|o| o.finish()), UInt64Chunked::from_iter_options(num_name.into(), nums.into_iter()))
    });
    let (mut texts, mut nums) = (vec![], vec![]);
    for (t, n) in parts {
        texts.extend(t);
        nums.push(n);
    }
    (text.map(|name| crate::par::concat(name, texts)), crate::par::concat(num_name, nums))
}

/// A home-side number as shown to a reader: E.164 (from its key) when it has one, else as written.
pub fn display_number(num: Option<u64>, raw: Option<&str>) -> String {
    match num {
        Some(n) => format!("+{n}"),
        None => raw.unwrap_or("").to_string(),
    }
}

/// Add `ip_country` (null without a table, an IP, or a match) and put the columns in canonical order.
///
/// With `dicts` (`scan`), `src_ip` and `ip_country` come out as codes ([`crate::coded`]): each
/// distinct source IP is looked up once and every row takes its country's code.
pub fn cdr_ip_country(
    mut df: DataFrame,
    ips: Option<&IpCountry>,
    dicts: Option<&mut crate::coded::Dicts>,
) -> Result<DataFrame> {
    if let Some(dicts) = dicts {
        // the loader coded the source IPs as it typed them (a frame of no file is coded here)
        dicts.encode(&mut df, "src_ip")?;
        let distinct = dicts.values("src_ip").unwrap_or_default();
        let codes = df.column("src_ip")?.u32()?.clone();
        let found: Vec<Option<String>> = match ips {
            Some(t) => {
                use rayon::prelude::*;
                distinct.par_iter().map(|ip| t.lookup(ip)).collect()
            }
            None => vec![None; distinct.len()],
        };
        let per_ip: Vec<Option<&str>> = found.iter().map(Option::as_deref).collect();
        let (countries, country_codes) = crate::coded::derive(&codes, &per_ip, "ip_country");
        dicts.insert("ip_country", countries);
        df.with_column(country_codes.into_column())?;
        let names: Vec<&str> = CANONICAL_CDR.into_iter().filter(|c| df.column(c).is_ok()).collect();
        return Ok(df.select(names)?);
    }
    let out: StringChunked = match ips {
        Some(t) => {
            let col = df.column("src_ip")?.str()?.clone();
            // row slices in parallel, each with a cache of the (few) distinct source IPs
            let parts = crate::par::slices(col.len(), |off, len| {
                let part = col.slice(off as i64, len);
                let mut cache: PlHashMap<&str, Option<String>> = PlHashMap::new();
                let mut b = StringChunkedBuilder::new("ip_country".into(), part.len());
                for v in part.iter() {
                    match v {
                        None => b.append_null(),
                        Some(ip) => b.append_option(cache.entry(ip).or_insert_with(|| t.lookup(ip)).as_deref()),
                    }
                }
                b.finish()
            });
            crate::par::concat("ip_country", parts)
        }
        None => StringChunked::full_null("ip_country".into(), df.height()),
    };
    df.with_column(out.into_column())?;
    // the canonical order, of the columns this load made (`scan` makes no `caller_e164`)
    let names: Vec<&str> = CANONICAL_CDR.into_iter().filter(|c| df.column(c).is_ok()).collect();
    Ok(df.select(names)?)
}

/// The canonical CDR schema, in order (docs/schema.md).
pub const CANONICAL_CDR: [&str; 27] = [
    "leg_id",
    "operator_id",
    "start_time",
    "answer_time",
    "end_time",
    "duration_s",
    "talk_s",
    "caller_id",
    "caller_e164",
    "caller_country",
    "caller_valid",
    "caller_num",
    "callee",
    "callee_num",
    "src_ip",
    "ip_country",
    "disposition",
    "campaign",
    "cli_group",
    "trunk",
    "call_key",
    "sequence",
    "direction",
    "monitored",
    "source_file",
    "source_line",
    "__file",
];

/// Add `member_e164` to a join log frame.
pub fn join_numbers(mut df: DataFrame, phones: &PhoneParser) -> Result<DataFrame> {
    let (m, num) = home_numbers(df.column("member")?.str()?, phones, Some("member_e164"), "member_num");
    df.with_column(m.expect("text was asked for").into_column())?;
    df.with_column(num.into_column())?;
    Ok(df)
}

/// `FIELD_e164` and `FIELD_num` of a column of home-side numbers (an SMS log's recipients).
pub fn home_numbers_of(mut df: DataFrame, field: &str, phones: &PhoneParser) -> Result<DataFrame> {
    let (text, num) =
        home_numbers(df.column(field)?.str()?, phones, Some(&format!("{field}_e164")), &format!("{field}_num"));
    df.with_column(text.expect("text was asked for").into_column())?;
    df.with_column(num.into_column())?;
    Ok(df)
}

#[cfg(test)]
mod tests {
    use super::{NumPrefix, cdr_numbers, e164_num};
    use polars::prelude::*;

    #[test]
    fn caller_e164_is_plus_and_the_digits_of_caller_num() {
        // what `scan` relies on when it asks for no E.164 text and writes `+{caller_num}` instead
        let p = super::PhoneParser::new("CN").unwrap();
        let callers = ["+44 7700 900123", "0060125880984", "13912345678", "not a number", "+1 646 555 0142"];
        let df = || {
            DataFrame::new(
                callers.len(),
                vec![Column::new("caller_id".into(), callers), Column::new("callee".into(), ["13900000000"; 5])],
            )
            .unwrap()
        };
        let with = cdr_numbers(df(), &p, true, None).unwrap().0;
        let without = cdr_numbers(df(), &p, false, None).unwrap().0;
        assert!(without.column("caller_e164").is_err());
        let e164 = with.column("caller_e164").unwrap().str().unwrap().clone();
        let num = without.column("caller_num").unwrap().u64().unwrap().clone();
        assert_eq!(e164.null_count(), 1);
        for (e, n) in e164.iter().zip(num.iter()) {
            assert_eq!(e.map(str::to_string), n.map(|n| format!("+{n}")));
        }
        for c in ["caller_country", "caller_valid", "caller_num", "callee_num"] {
            assert!(with.column(c).unwrap().equals_missing(without.column(c).unwrap()), "{c}");
        }
    }

    #[test]
    fn num_prefix_compares_leading_digits() {
        let cn = NumPrefix::new("+86").unwrap();
        assert!(cn.matches(8613912345678));
        assert!(!cn.matches(447700900123));
        assert!(!cn.matches(8)); // shorter than the prefix
        assert!(cn.matches(86) && !cn.matches(87) && !cn.matches(85));
        assert!(!cn.matches(u64::MAX) && !NumPrefix::new("+9").unwrap().matches(u64::MAX));
        assert!(NumPrefix::new("+1").unwrap().matches(u64::MAX)); // 18446744073709551615
        assert!(!cn.matches(186));
        let us = NumPrefix::new("+1").unwrap();
        assert!(us.matches(16465550142) && !us.matches(8613912345678));
        assert!(NumPrefix::new("86x").is_none());
    }

    #[test]
    fn numeric_e164_keys() {
        assert_eq!(e164_num("+8613912345678"), Some(8_613_912_345_678));
        assert_eq!(e164_num("+447700900123"), Some(447_700_900_123));
        assert_eq!(e164_num("+"), None);
        assert_eq!(e164_num(""), None);
        assert_eq!(e164_num("+86 139"), None);
        // distinct numbers keep distinct keys; the same number written twice has one
        assert_ne!(e164_num("+8613912345678"), e164_num("+8613912345679"));
        assert_eq!(e164_num("8613912345678"), e164_num("+8613912345678"));
    }
}
