//! Format sniffing, decoding and row parsing on arbitrary bytes: none of it may panic.
#![no_main]

use diversion_audit::enrich::phone::PhoneParser;
use diversion_audit::load::format::{self, CDR, JOINS};
use diversion_audit::load::split::{self, QuoteMode};
use diversion_audit::time::{DateOrder, parse_timestamp};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::sync::OnceLock;

static PHONES: OnceLock<PhoneParser> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let phones = PHONES.get_or_init(|| PhoneParser::new("CN").expect("CN"));
    let bytes = match diversion_audit::load::decode::decompress(data.to_vec()) {
        Ok(b) => b,
        Err(_) => return,
    };
    let (text, _) = diversion_audit::load::decode::decode(&bytes, None);
    let mut first = None;
    split::for_each_line(&text, |n, _, line| {
        if first.is_none() {
            first = Some((n, line.to_string()));
        }
    });
    let Some((n, first)) = first else { return };
    for target in [&CDR, &JOINS] {
        let Ok((fmt, delim, has_header)) = format::sniff(&first, target) else { continue };
        let mut hdr = Vec::new();
        split::split_fields(&first, delim, QuoteMode::Literal, &mut hdr);
        let hdr: Vec<String> = hdr.iter().map(|c| c.trim().to_string()).collect();
        let layout = if has_header {
            match format::header_layout(fmt, &hdr, target, &BTreeMap::new(), n) {
                Ok(l) => l,
                Err(_) => continue,
            }
        } else {
            format::positional_layout(fmt)
        };
        let mut fields = Vec::new();
        split::for_each_line(&text, |_, _, line| {
            for mode in [QuoteMode::Literal, QuoteMode::Lenient] {
                split::split_fields(line, delim, mode, &mut fields);
                for src in layout.sources.iter().flatten() {
                    if let Some(v) = src.eval(&fields) {
                        let _ = parse_timestamp(&v, chrono_tz::Asia::Shanghai, DateOrder::DayFirst);
                        let _ = parse_timestamp(&v, chrono_tz::UTC, DateOrder::MonthFirst);
                        let _ = phones.parse(&v, true);
                    }
                }
            }
        });
    }
});
