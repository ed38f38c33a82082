//! Text columns held as codes. Caller IDs, caller countries, source IPs and IP countries take a few
//! thousand distinct values over millions of calls; as Polars text each row costs 16 bytes of view
//! before any text (10 M rows: 160 MB a column). The prepared CDR frame holds them as a `UInt32`
//! code per row (null where the text is null) and [`Dicts`] holds each distinct text once.

use polars::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

/// The CDR columns the prepared frame holds as codes.
pub const CODED: [&str; 5] = ["caller_id", "caller_country", "src_ip", "ip_country", "campaign"];

/// The ones `scan` codes while typing the CDRs ([`StreamDict`]); the countries are derived from them.
pub const STREAMED: [&str; 3] = ["caller_id", "src_ip", "campaign"];

/// Each coded column's texts, indexed by code.
#[derive(Clone, Debug, Default)]
pub struct Dicts(HashMap<&'static str, Arc<Vec<String>>>);

impl Dicts {
    /// Record the texts of a coded column.
    pub fn insert(&mut self, name: &'static str, values: Vec<String>) {
        self.0.insert(name, Arc::new(values));
    }

    /// The texts of a coded column, if it is one.
    pub fn values(&self, name: &str) -> Option<&[String]> {
        self.0.get(name).map(|v| v.as_slice())
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

/// A text column coded while it is read: the typing plan hands each morsel (a slice of rows, in
/// parallel) to [`StreamDict::expr`], which codes the morsel's distinct texts into one shared list in
/// the order first met, so the column never exists as text. Arrival order differs run to run;
/// [`StreamDict::finish`] sorts the list and renumbers the codes, so a run's codes and dictionary
/// are what [`crate::par::dictionary`] gives for the same rows (plus, when a file fails part way,
/// the texts its morsels had already coded: listed, on no row).
#[derive(Default)]
pub struct StreamDict {
    inner: std::sync::Mutex<(PlHashMap<String, u32>, Vec<String>)>,
}

impl StreamDict {
    /// The column `name` as `UInt32` codes (null where the text is null); a column a text file's
    /// splitter coded already ([`ChunkCodes`]) is passed on.
    pub fn expr(self: &Arc<Self>, name: &str) -> Expr {
        let dict = Arc::clone(self);
        col(name).map(
            move |c: Column| {
                if c.dtype() == &DataType::UInt32 {
                    return Ok(c);
                }
                let text = c.cast(&DataType::String)?;
                Ok(dict.code(text.str()?).into_column())
            },
            |_, f| Ok(Field::new(f.name().clone(), DataType::UInt32)),
        )
    }

    fn code(&self, ca: &StringChunked) -> UInt32Chunked {
        let mut parts = Vec::with_capacity(ca.chunks().len());
        for arr in ca.downcast_iter() {
            // the morsel's distinct texts (a few hundred of a morsel's rows), then one lock to
            // turn them into shared codes
            let (values, local) = crate::par::first_seen(arr, 0, arr.len());
            let to = self.codes_of(&values);
            // on the morsel's own thread (the streaming engine runs morsels in parallel already)
            let part = if !local.contains(&crate::par::NO_CODE) {
                UInt32Chunked::from_vec(ca.name().clone(), local.iter().map(|c| to[*c as usize]).collect())
            } else {
                local.iter().map(|c| (*c != crate::par::NO_CODE).then(|| to[*c as usize])).collect()
            };
            parts.push(part);
        }
        crate::par::concat(ca.name(), parts)
    }

    /// The shared codes of `values` (new texts get the next ones), under one lock.
    fn codes_of<S: AsRef<str>>(&self, values: &[S]) -> Vec<u32> {
        let mut guard = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (pos, list) = &mut *guard;
        values
            .iter()
            .map(|v| match pos.get(v.as_ref()) {
                Some(c) => *c,
                None => {
                    let c = list.len() as u32;
                    pos.insert(v.as_ref().to_string(), c);
                    list.push(v.as_ref().to_string());
                    c
                }
            })
            .collect()
    }

    /// The texts, sorted, and each code handed out so far → its index among them.
    pub fn finish(&self) -> (Vec<String>, Vec<u32>) {
        let mut guard = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let list = std::mem::take(&mut guard.1);
        guard.0.clear();
        let mut order: Vec<u32> = (0..list.len() as u32).collect();
        order.sort_unstable_by(|a, b| list[*a as usize].cmp(&list[*b as usize]));
        let mut renumber = vec![0u32; list.len()];
        for (new, old) in order.iter().enumerate() {
            renumber[*old as usize] = new as u32;
        }
        let mut list: Vec<Option<String>> = list.into_iter().map(Some).collect();
        let sorted = order.iter().map(|o| list[*o as usize].take().expect("each code once")).collect();
        (sorted, renumber)
    }
}

/// A column of a text file's chunk coded as the chunk is split, into a [`StreamDict`]'s codes: each
/// distinct text of the chunk is kept once here (a row equal to the row before is not even
/// hashed), and at the chunk's end one lock of the shared dictionary gives their codes. The text
/// column is never built (with the typing plan coding it, three such columns cost a 10 M-row CSV
/// scan ~0.6 GB of views and bytes).
pub struct ChunkCodes {
    name: &'static str,
    dict: Arc<StreamDict>,
    seen: PlHashMap<String, u32>,
    /// The chunk's own code → its text.
    values: Vec<String>,
    /// Each row's code of the chunk's own ([`crate::par::NO_CODE`]: null).
    codes: Vec<u32>,
}

impl ChunkCodes {
    pub fn new(name: &'static str, dict: &Arc<StreamDict>, est: usize) -> Self {
        Self {
            name,
            dict: Arc::clone(dict),
            seen: PlHashMap::new(),
            values: Vec::new(),
            codes: Vec::with_capacity(est),
        }
    }

    /// One row's text (None: null; an empty text is a text, as in a text column).
    pub fn push(&mut self, v: Option<&str>) {
        let code = match v {
            None => crate::par::NO_CODE,
            Some(v) => match self.codes.last() {
                Some(&c) if c != crate::par::NO_CODE && self.values[c as usize] == v => c,
                _ => match self.seen.get(v) {
                    Some(&c) => c,
                    None => {
                        let c = self.values.len() as u32;
                        self.seen.insert(v.to_string(), c);
                        self.values.push(v.to_string());
                        c
                    }
                },
            },
        };
        self.codes.push(code);
    }

    /// The rows as the shared dictionary's codes (null where the text was null).
    pub fn finish(self) -> UInt32Chunked {
        let to = self.dict.codes_of(&self.values);
        if !self.codes.contains(&crate::par::NO_CODE) {
            return UInt32Chunked::from_vec(self.name.into(), self.codes.iter().map(|c| to[*c as usize]).collect());
        }
        let mut out: UInt32Chunked =
            self.codes.iter().map(|c| (*c != crate::par::NO_CODE).then(|| to[*c as usize])).collect();
        out.rename(self.name.into());
        out
    }
}

/// Codes handed out by a [`StreamDict`] → the sorted ones of its [`StreamDict::finish`], in parallel.
pub fn renumber(codes: &UInt32Chunked, to: &[u32]) -> UInt32Chunked {
    let parts = crate::par::slices(codes.len(), |off, len| {
        let part = codes.slice(off as i64, len);
        if part.null_count() == 0 {
            let v: Vec<u32> = part.into_no_null_iter().map(|c| to[c as usize]).collect();
            UInt32Chunked::from_vec(codes.name().clone(), v)
        } else {
            part.iter().map(|c| c.map(|c| to[c as usize])).collect()
        }
    });
    crate::par::concat(codes.name(), parts)
}

/// A column derived value by value from a coded one (each distinct caller's country, each distinct
/// IP's country): `derived[c]` is the text for code `c`. Returns the derived column's sorted texts
/// and every row's code into them (null where either is missing), in parallel slices, so 10 M rows
/// take a code each without building their text.
pub fn derive(codes: &UInt32Chunked, derived: &[Option<&str>], name: &str) -> (Vec<String>, UInt32Chunked) {
    let mut values: Vec<&str> = derived.iter().flatten().copied().collect();
    values.sort_unstable();
    values.dedup();
    let to: Vec<Option<u32>> =
        derived.iter().map(|d| d.map(|d| values.binary_search(&d).expect("listed") as u32)).collect();
    let rows = map_codes(codes, name, |c| to[c as usize]);
    (values.into_iter().map(str::to_string).collect(), rows)
}

/// Each row's `f(code)` (null for a null code), in parallel slices.
pub fn map_codes<T>(codes: &UInt32Chunked, name: &str, f: impl Fn(u32) -> Option<T::Native> + Sync) -> ChunkedArray<T>
where
    T: PolarsNumericType,
    ChunkedArray<T>: crate::par::Part,
{
    let parts = crate::par::slices(codes.len(), |off, len| {
        codes.slice(off as i64, len).iter().map(|c| c.and_then(&f)).collect::<ChunkedArray<T>>()
    });
    crate::par::concat(name, parts)
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

    /// The code of a text, if the dictionary lists it (codes made while loading may list a text that
    /// only a file which then failed held: such a code is on no row).
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
    fn stream_dict_codes_morsels_in_any_order_as_the_dictionary_of_all_rows_does() {
        // three morsels, with nulls and texts long enough to sit outside their views
        let texts = |k: usize| -> Vec<Option<String>> {
            (0..700).map(|i| (i % 11 != 4).then(|| format!("+8551234{:04}-caller", (i * 13 + k * 5) % 90))).collect()
        };
        let morsels: Vec<StringChunked> = (0..3).map(|k| texts(k).iter().map(|o| o.as_deref()).collect()).collect();
        let mut all = morsels[0].clone();
        all.append(&morsels[1]).unwrap();
        all.append(&morsels[2]).unwrap();
        let (want_values, want_codes) = crate::par::dictionary(&all);
        // the morsels arrive out of order, as parallel morsels may
        let dict = Arc::new(StreamDict::default());
        let mut coded: Vec<Option<UInt32Chunked>> = vec![None, None, None];
        for k in [2, 0, 1] {
            coded[k] = Some(dict.code(&morsels[k]));
        }
        let (values, to) = dict.finish();
        assert_eq!(values, want_values);
        let mut codes = coded[0].take().unwrap();
        codes.append(&coded[1].take().unwrap()).unwrap();
        codes.append(&coded[2].take().unwrap()).unwrap();
        let got: Vec<u32> = renumber(&codes, &to).iter().map(|c| c.unwrap_or(crate::par::NO_CODE)).collect();
        assert_eq!(got, want_codes);
    }

    #[test]
    fn chunk_codes_give_the_codes_the_typing_plan_gives_to_the_same_text() {
        // runs of equal rows, nulls, an empty text, and one dictionary shared with a morsel the
        // typing plan codes (a Parquet file beside a CSV in one scan)
        let rows: Vec<Option<&str>> = vec![
            Some("+85512345678"),
            Some("+85512345678"),
            None,
            Some(""),
            Some("240e:159:445d:333a::4776"),
            Some("+85512345678"),
            None,
            Some("36.96.1.7"),
            Some("36.96.1.7"),
        ];
        let text: StringChunked = rows.iter().copied().collect();
        let want = crate::par::dictionary(&text);
        let dict = Arc::new(StreamDict::default());
        let other: StringChunked = [Some("36.96.1.7"), Some("+60123")].into_iter().collect();
        let other = dict.code(&other);
        let (mut a, mut b) = (ChunkCodes::new("caller_id", &dict, 4), ChunkCodes::new("caller_id", &dict, 4));
        rows[..4].iter().for_each(|r| a.push(*r));
        rows[4..].iter().for_each(|r| b.push(*r));
        let mut codes = a.finish();
        assert_eq!(codes.name().as_str(), "caller_id");
        codes.append(&b.finish()).unwrap();
        let (values, to) = dict.finish();
        let texts = |c: &UInt32Chunked| -> Vec<Option<String>> {
            renumber(c, &to).iter().map(|c| c.map(|c| values[c as usize].clone())).collect()
        };
        let got = texts(&codes);
        assert_eq!(got, rows.iter().map(|r| r.map(str::to_string)).collect::<Vec<_>>());
        assert_eq!(texts(&other), [Some("36.96.1.7".to_string()), Some("+60123".to_string())]);
        // the dictionary holds each text once, sorted, as the whole column's would
        let mut all: Vec<&str> = want.0.clone();
        all.push("+60123");
        all.sort_unstable();
        assert_eq!(values, all);
        // the typing plan passes a coded column on untouched
        let df = DataFrame::new(codes.len(), vec![codes.clone().into_column()]).unwrap();
        let out = df.lazy().select([dict.expr("caller_id")]).collect().unwrap();
        assert!(out.column("caller_id").unwrap().equals_missing(&codes.into_column()));
    }

    #[test]
    fn derive_codes_each_row_by_its_values_derived_text() {
        // three distinct callers: +44…, +855…, one without a country; rows use them and a null
        let derived = [Some("GB"), Some("KH"), None];
        let rows: UInt32Chunked = [Some(1), Some(0), None, Some(2), Some(1)].into_iter().collect();
        let (values, codes) = derive(&rows, &derived, "caller_country");
        assert_eq!(values, ["GB", "KH"]);
        assert_eq!(codes.name().as_str(), "caller_country");
        let back: Vec<Option<&str>> = codes.iter().map(|c| c.map(|c| values[c as usize].as_str())).collect();
        assert_eq!(back, [Some("KH"), Some("GB"), None, None, Some("KH")]);
    }
}
