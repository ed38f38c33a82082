//! Text columns held as codes. Caller IDs, caller countries, source IPs and IP countries take a few
//! thousand distinct values over millions of calls; as Polars text each row costs 16 bytes of view
//! before any text (10 M rows: 160 MB a column). The prepared CDR frame holds them as a `UInt32`
//! code per row (null where the text is null) and [`Dicts`] holds each distinct text once.

use polars::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

/// The CDR columns the prepared frame holds as codes.
pub const CODED: [&str; 4] = ["caller_id", "caller_country", "src_ip", "ip_country"];

/// Each coded column's texts, indexed by code.
#[derive(Clone, Debug, Default)]
pub struct Dicts(HashMap<&'static str, Arc<Vec<String>>>);

impl Dicts {
    /// Record the texts of a coded column.
    pub fn insert(&mut self, name: &'static str, values: Vec<String>) {
        self.0.insert(name, Arc::new(values));
    }

    /// Replace the text column `name` of `df` by codes and record its texts; a column already coded
    /// (its texts recorded) or absent is left alone.
    pub fn encode(&mut self, df: &mut DataFrame, name: &'static str) -> PolarsResult<()> {
        let Ok(c) = df.column(name) else { return Ok(()) };
        if c.dtype() == &DataType::UInt32 && self.0.contains_key(name) {
            return Ok(());
        }
        let text = c.cast(&DataType::String)?;
        let (values, codes) = crate::par::dictionary(text.str()?);
        let values: Vec<String> = values.into_iter().map(str::to_string).collect();
        let codes = codes_column(name, &codes);
        df.with_column(codes.into_column())?;
        self.insert(name, values);
        Ok(())
    }

    /// A coded column of `df` with its texts.
    pub fn column<'a>(&'a self, df: &'a DataFrame, name: &str) -> PolarsResult<CodedColumn<'a>> {
        let values = self
            .0
            .get(name)
            .ok_or_else(|| polars_err!(ColumnNotFound: "{name} has no dictionary (not a coded column)"))?;
        Ok(CodedColumn { codes: df.column(name)?.u32()?, values })
    }
}

/// Codes as a `UInt32` column, [`crate::par::NO_CODE`] as null; built in parallel slices.
pub fn codes_column(name: &str, codes: &[u32]) -> UInt32Chunked {
    let parts = crate::par::slices(codes.len(), |off, len| {
        let part = &codes[off..off + len];
        if part.contains(&crate::par::NO_CODE) {
            part.iter().map(|c| (*c != crate::par::NO_CODE).then_some(*c)).collect::<UInt32Chunked>()
        } else {
            UInt32Chunked::from_slice(name.into(), part)
        }
    });
    crate::par::concat(name, parts)
}

/// A column derived value by value from a coded one (each distinct caller's country, each distinct
/// IP's country): `derived[c]` is the text for code `c`. Returns the derived column's sorted texts
/// and every row's code into them ([`crate::par::NO_CODE`] where either is missing), so 10 M rows
/// take a code each without building their text.
pub fn derive(codes: &[u32], derived: &[Option<&str>]) -> (Vec<String>, Vec<u32>) {
    use rayon::prelude::*;
    let mut values: Vec<&str> = derived.iter().flatten().copied().collect();
    values.sort_unstable();
    values.dedup();
    let to: Vec<u32> = derived
        .iter()
        .map(|d| d.map_or(crate::par::NO_CODE, |d| values.binary_search(&d).expect("listed") as u32))
        .collect();
    let rows = codes.par_iter().map(|c| if *c == crate::par::NO_CODE { *c } else { to[*c as usize] }).collect();
    (values.into_iter().map(str::to_string).collect(), rows)
}

/// A coded column read as text.
pub struct CodedColumn<'a> {
    pub codes: &'a UInt32Chunked,
    pub values: &'a [String],
}

impl<'a> CodedColumn<'a> {
    /// The text of row `i` (None when null).
    pub fn get(&self, i: usize) -> Option<&'a str> {
        self.codes.get(i).map(|c| self.values[c as usize].as_str())
    }

    /// The text of a code.
    pub fn text(&self, code: u32) -> &'a str {
        &self.values[code as usize]
    }

    /// The code of a text, if any row has it.
    pub fn code_of(&self, text: &str) -> Option<u32> {
        // `par::dictionary` sorts the values; a dictionary recorded otherwise is searched in order
        match self.values.binary_search_by(|v| v.as_str().cmp(text)) {
            Ok(i) => Some(i as u32),
            Err(_) => self.values.iter().position(|v| v == text).map(|i| i as u32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_replaces_text_by_codes_that_read_back_as_the_same_text() {
        let mut df = df!("ip_country" => [Some("CN"), None, Some("KH"), Some("CN")], "n" => [1, 2, 3, 4]).unwrap();
        let mut d = Dicts::default();
        d.encode(&mut df, "ip_country").unwrap();
        assert_eq!(df.column("ip_country").unwrap().dtype(), &DataType::UInt32);
        let c = d.column(&df, "ip_country").unwrap();
        let back: Vec<Option<&str>> = (0..4).map(|i| c.get(i)).collect();
        assert_eq!(back, [Some("CN"), None, Some("KH"), Some("CN")]);
        assert_eq!(c.code_of("KH").map(|k| c.text(k)), Some("KH"));
        assert_eq!(c.code_of("US"), None);
        // encoding again leaves the codes alone
        let before = df.column("ip_country").unwrap().clone();
        d.encode(&mut df, "ip_country").unwrap();
        assert!(df.column("ip_country").unwrap().equals_missing(&before));
        // a column that is not coded has no dictionary
        assert!(d.column(&df, "n").is_err());
    }

    #[test]
    fn derive_codes_each_row_by_its_values_derived_text() {
        // three distinct callers: +44…, +855…, one without a country; rows use them and a null
        let derived = [Some("GB"), Some("KH"), None];
        let rows = [1, 0, crate::par::NO_CODE, 2, 1];
        let (values, codes) = derive(&rows, &derived);
        assert_eq!(values, ["GB", "KH"]);
        let back: Vec<Option<&str>> =
            codes.iter().map(|c| (*c != crate::par::NO_CODE).then(|| values[*c as usize].as_str())).collect();
        assert_eq!(back, [Some("KH"), Some("GB"), None, None, Some("KH")]);
    }
}
