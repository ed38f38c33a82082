//! Spreadsheet safety for CSV outputs: a cell that begins with `=`, `+`, `-`, `@`, TAB or CR could
//! run as a formula when a desk opens the file in Excel or WPS, so it gets a leading apostrophe
//! (`'+447700900123`). The apostrophe keeps phone numbers readable as text instead of turning them
//! into 4.4770E+11; machine readers should strip one leading `'` (findings.jsonl and the JSON
//! dossier carry the values untouched).

use polars::prelude::*;
use std::borrow::Cow;

pub fn cell(s: &str) -> Cow<'_, str> {
    match s.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => Cow::Owned(format!("'{s}")),
        _ => Cow::Borrowed(s),
    }
}

/// Apply [`cell`] to every text column of a frame.
pub fn frame(df: &DataFrame) -> PolarsResult<DataFrame> {
    let cols: Vec<Column> = df
        .columns()
        .iter()
        .map(|c| match c.dtype() {
            DataType::String => {
                let ca = c.str().expect("string");
                let out: StringChunked = ca.iter().map(|v| v.map(|v| cell(v).into_owned())).collect();
                out.with_name(c.name().clone()).into_column()
            }
            _ => c.clone(),
        })
        .collect();
    DataFrame::new(df.height(), cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_starters_are_neutralised() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("+447700900123"), "'+447700900123");
        assert_eq!(cell("-1"), "'-1");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("op00012"), "op00012");
        assert_eq!(cell(""), "");
    }
}
