//! The whole loader (decompression, encodings, formats, Polars typing, numbers, dedupe) on an
//! arbitrary file: it returns rows, rejects or an error, never a panic.
#![no_main]

use diversion_audit::enrich::phone::PhoneParser;
use diversion_audit::load::{LoadOptions, load_cdrs, load_joins};
use libfuzzer_sys::fuzz_target;
use std::io::Write;
use std::sync::OnceLock;

static PHONES: OnceLock<PhoneParser> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let phones = PHONES.get_or_init(|| PhoneParser::new("CN").expect("CN"));
    let mut f = tempfile::Builder::new().suffix(".csv").tempfile().expect("temp file");
    f.write_all(data).expect("write");
    let opts = LoadOptions { allow_empty: true, ..Default::default() };
    let paths = [f.path().to_path_buf()];
    if let Ok(l) = load_cdrs(&paths, &opts, phones).map_err(drop).and_then(|l| if l.files[0].error.is_none() { Ok(l) } else { Err(()) }) {
        assert_eq!(
            l.rows_read() + l.rows_rejected() + l.duplicates(),
            l.files[0].lines_in,
            "rows read + rejected + duplicates must equal data lines in"
        );
    }
    let _ = load_joins(&paths, &opts, phones);
});
