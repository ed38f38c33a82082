//! `--redact`: callee and join-member numbers become keyed pseudonyms (BLAKE3 keyed hash) in every
//! output. The same number and key always give the same pseudonym, within a run and across runs, so
//! cases can still be linked; without the key the number cannot be recovered or confirmed by
//! guessing. Operator ids and caller IDs stay: they are the subject of the case.

use polars::prelude::*;

/// Environment variable that holds the key when `--redact-key` is not given.
pub const KEY_ENV: &str = "DIVERSION_AUDIT_REDACT_KEY";

#[derive(Clone)]
pub struct Redactor {
    key: [u8; 32],
}

impl Redactor {
    pub fn new(secret: &str) -> anyhow::Result<Self> {
        anyhow::ensure!(secret.len() >= 8, "the redaction key must have at least 8 characters");
        Ok(Self { key: blake3::derive_key("diversion-audit 2026 redact callee numbers v1", secret.as_bytes()) })
    }

    /// `R-` and 16 hex digits of the keyed hash.
    pub fn pseudonym(&self, value: &str) -> String {
        let h = blake3::keyed_hash(&self.key, value.as_bytes());
        format!("R-{}", &h.to_hex()[..16])
    }

    /// Replace a text column's values by pseudonyms of `by` (the E.164 form when known, so that a
    /// number written two ways gets one pseudonym), keeping nulls.
    pub fn column(&self, df: &DataFrame, target: &str, by: &str) -> PolarsResult<Column> {
        let t = df.column(target)?.str()?;
        let b = df.column(by)?.str()?;
        let out: StringChunked = t.iter().zip(b.iter()).map(|(t, b)| b.or(t).map(|v| self.pseudonym(v))).collect();
        Ok(out.with_name(target.into()).into_column())
    }

    /// The same for a column whose E.164 form is kept only as its [`crate::enrich::e164_num`] key
    /// (`key`): the pseudonym of `+` and the digits, else of the text as written.
    pub fn column_by_num(&self, df: &DataFrame, target: &str, key: &str) -> PolarsResult<Column> {
        let t = df.column(target)?.str()?;
        let k = df.column(key)?.u64()?;
        let out: StringChunked = t
            .iter()
            .zip(k.iter())
            .map(|(t, k)| (t.is_some() || k.is_some()).then(|| self.pseudonym(&crate::enrich::display_number(k, t))))
            .collect();
        Ok(out.with_name(target.into()).into_column())
    }
}

/// An SMS log as the rules read it (`cards --sms`, `scan --sms`): the loader's bookkeeping columns
/// dropped and, with a redactor, the recipients (and their E.164 form) replaced by pseudonyms; the
/// `recipient_num` key stays for linking and is never written.
pub fn sms_for_rules(df: &DataFrame, red: Option<&Redactor>) -> PolarsResult<DataFrame> {
    let mut df = df.drop_many(["source_file", "__file", "source_line"]);
    if let Some(r) = red {
        let c = r.column(&df, "recipient", "recipient_e164")?;
        df.with_column(c.clone().with_name("recipient_e164".into()))?;
        df.with_column(c)?;
    }
    Ok(df)
}

/// Card ids (`cards`): `C-` and 16 hex digits of a keyed hash, and the id's last four characters,
/// the way a receipt shows a card. Keyed with the redaction key when one is given, else with a
/// built-in key: then anyone who holds a card id (the recharge provider) can find its pseudonym,
/// which is what lets a case file be matched back to the provider's records, and a reader of the
/// outputs alone cannot recover the id. PINs are never read.
#[derive(Clone)]
pub struct CardRefs {
    key: [u8; 32],
}

impl CardRefs {
    pub fn new(secret: Option<&str>) -> Self {
        let secret = secret.unwrap_or("diversion-audit card ids: no key given");
        Self { key: blake3::derive_key("diversion-audit 2026 card ids v1", secret.as_bytes()) }
    }

    pub fn pseudonym(&self, card_id: &str) -> String {
        let h = blake3::keyed_hash(&self.key, card_id.trim().as_bytes());
        format!("C-{}", &h.to_hex()[..16])
    }

    /// `card_id` of `df` replaced by `card_ref` and `card_tail` (in parallel slices: a keyed hash a
    /// row over a 10 M-row ledger).
    pub fn replace(&self, df: &mut DataFrame) -> PolarsResult<()> {
        let ids = df.column("card_id")?.str()?;
        let parts = crate::par::slices(ids.len(), |off, len| {
            let part = ids.slice(off as i64, len);
            let refs: StringChunked = part.iter().map(|v| v.map(|v| self.pseudonym(v))).collect();
            let tails: StringChunked = part
                .iter()
                .map(|v| {
                    v.map(|v| {
                        let v = v.trim();
                        let n = v.chars().count();
                        v.chars().skip(n.saturating_sub(4)).collect::<String>()
                    })
                })
                .collect();
            (refs, tails)
        });
        let (refs, tails): (Vec<StringChunked>, Vec<StringChunked>) = parts.into_iter().unzip();
        let at = df.get_column_index("card_id").expect("checked");
        df.replace_column(at, crate::par::concat("card_ref", refs).into_column())?;
        df.insert_column(at + 1, crate::par::concat("card_tail", tails).into_column())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_keyed_and_short_keys_refused() {
        let a = Redactor::new("correct horse").unwrap();
        let b = Redactor::new("battery staple").unwrap();
        // the same key in another run (a new Redactor) gives the same pseudonym
        let again = Redactor::new("correct horse").unwrap();
        assert_eq!(a.pseudonym("+8613912345678"), again.pseudonym("+8613912345678"));
        assert_ne!(a.pseudonym("+8613912345678"), b.pseudonym("+8613912345678"));
        assert_ne!(a.pseudonym("+8613912345678"), a.pseudonym("+8613912345679"));
        assert!(a.pseudonym("x").starts_with("R-") && a.pseudonym("x").len() == 18);
        assert!(Redactor::new("short").is_err());
    }
}
