//! Phone numbers to E.164 with libphonenumber's rules (the `phonenumber` crate).
//!
//! Exports write one number many ways: `13812345678`, `+86 138-1234-5678`, `008613812345678`,
//! `8613812345678`, `0044 20 7946 0000`. [`PhoneParser::parse`] strips the decoration, turns an
//! international prefix (`00`, or `+`) into `+`, treats `86` + 11 digits as a home number when the home
//! region is CN, and hands the rest to `phonenumber` with the home region as default. A fast path
//! recognises the commonest shape (a Chinese mobile number) without the library; it is checked
//! against the library in the tests.

use phonenumber::Mode;
use phonenumber::country::Id;

/// What one raw number became.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ParsedNumber {
    /// `+` and digits; `None` when the text holds no usable number.
    pub e164: Option<String>,
    /// ISO 3166-1 alpha-2 region of the number (`CN`, `GB`, `US`); `None` when unknown.
    pub country: Option<String>,
    /// libphonenumber validity: the number belongs to an allocated range of its region.
    pub valid: bool,
}

/// Parses numbers relative to a home region.
#[derive(Clone, Debug)]
pub struct PhoneParser {
    home: Id,
}

impl PhoneParser {
    /// `home` is an ISO alpha-2 region such as `CN`.
    pub fn new(home: &str) -> Result<Self, String> {
        let id: Id = home
            .to_ascii_uppercase()
            .parse()
            .map_err(|_| format!("unknown home region {home:?} (expected ISO 3166 alpha-2, e.g. CN)"))?;
        // every region phonenumber knows has a numbering plan (`every_region_has_a_plan`); looking
        // it up here would wait for the metadata to load (~0.07 s), which `warm_up` does meanwhile
        Ok(Self { home: id })
    }

    /// Load phonenumber's metadata (postcard-decoded and its patterns compiled, ~0.07 s) on a thread
    /// of its own, so the first parse does not wait for it while the inputs are being read.
    pub fn warm_up() {
        let _ = std::thread::Builder::new().name("phone-metadata".into()).spawn(|| {
            let _ = phonenumber::metadata::DATABASE.by_id("CN");
        });
    }

    pub fn home(&self) -> &str {
        self.home.as_ref()
    }

    /// `+` and the home country calling code (`+86`).
    pub fn home_prefix(&self) -> String {
        let code = phonenumber::metadata::DATABASE.by_id(self.home.as_ref()).map(|m| m.country_code()).unwrap_or(0);
        format!("+{code}")
    }

    /// Normalise one raw number. `with_validity = false` skips the validity check on the fast path
    /// (callee numbers only need their E.164 form).
    pub fn parse(&self, raw: &str, with_validity: bool) -> ParsedNumber {
        let digits = clean(raw);
        // Fewer than 7 digits is an extension or a service code, not a number a callee sees.
        if digits.trim_start_matches('+').len() < 7 {
            return ParsedNumber::default();
        }
        // The home-mobile fast path (CN: 1[3-9] and 9 more digits).
        if self.home == Id::CN && !with_validity {
            let d = digits
                .strip_prefix("+86")
                .or_else(|| digits.strip_prefix("0086"))
                .or_else(|| (digits.len() == 13).then(|| digits.strip_prefix("86")).flatten())
                .unwrap_or(&digits);
            if is_cn_mobile(d) {
                return ParsedNumber { e164: Some(format!("+86{d}")), country: Some("CN".into()), valid: true };
            }
        }
        let candidate = if let Some(rest) = digits.strip_prefix("00") {
            format!("+{rest}")
        } else if !digits.starts_with('+') && self.home == Id::CN && digits.len() == 13 && digits.starts_with("861") {
            format!("+{digits}")
        } else if self.home == Id::CN && digits.len() == 11 && digits.starts_with('1') {
            // an 11-digit mobile-shaped number, allocated or not: written internationally so that
            // CN's IP-dialling prefix rule (below) cannot strip "12345" off its front
            format!("+86{digits}")
        } else {
            digits
        };
        // International forms are parsed without a default region: phonenumber 0.3.10 applies the
        // default region's national-prefix rule to them, and CN's (IP-dialling prefixes such as 12593,
        // 17951) then eats digits of +60 12…, +855 12…, +86 12… numbers.
        let region = if candidate.starts_with('+') { None } else { Some(self.home) };
        match phonenumber::parse(region, &candidate) {
            Ok(n) => {
                let valid = phonenumber::is_valid(&n);
                // The region whose ranges hold the number; for numbers in no range (unallocated,
                // fictional) the main region of the country code (+44 → GB, +1 → US).
                let country = n.country().id().map(|id| id.as_ref().to_string()).or_else(|| {
                    let code = n.code().value();
                    let regions = phonenumber::metadata::DATABASE.by_code(&code)?;
                    let main = regions.iter().find(|m| m.is_main_country_for_code()).or(regions.first())?;
                    Some(main.id().to_string())
                });
                let e164 = n.format().mode(Mode::E164).to_string();
                // phonenumber 0.3.10 also applies a region's national-prefix rule to the national
                // part of an international number (CN: "12345…" loses "12345"). A trunk "(0)" costs
                // one digit; more than that is the crate eating digits: keep them, call it invalid.
                if candidate.starts_with('+') && e164.len() + 1 < candidate.len() {
                    return ParsedNumber { e164: Some(candidate.clone()), country, valid: false };
                }
                ParsedNumber { e164: Some(e164), country, valid }
            }
            Err(_) => ParsedNumber::default(),
        }
    }
}

impl PhoneParser {
    /// The E.164 form of a home mobile written plainly (`13812345678`, `+8613812345678`,
    /// `008613812345678`, `8613812345678`), without allocating; `None` for every other shape.
    /// This is the per-row fast path; [`PhoneParser::parse`] handles the rest.
    pub fn fast_national_mobile<'a>(&self, raw: &'a str) -> Option<&'a str> {
        if self.home != Id::CN {
            return None;
        }
        let t = raw.trim();
        let d = t
            .strip_prefix("+86")
            .or_else(|| t.strip_prefix("0086"))
            .or_else(|| (t.len() == 13).then(|| t.strip_prefix("86")).flatten())
            .unwrap_or(t);
        is_cn_mobile(d).then_some(d)
    }
}

/// Keep digits and a leading `+`; drop spaces, dashes, dots, brackets and a `tel:` prefix.
fn clean(raw: &str) -> String {
    let s = raw.trim();
    let s = s.strip_prefix("tel:").unwrap_or(s);
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_digit() {
            out.push(c);
        } else if c == '+' && out.is_empty() && i < 2 {
            out.push('+');
        } else if matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{3000}' | '\t' | '+') {
            // separators, and a `+` that is not leading (dropped as before)
            continue;
        } else {
            // letters or SIP decoration: not a phone number we can trust
            return String::new();
        }
    }
    out
}

fn is_cn_mobile(d: &str) -> bool {
    let b = d.as_bytes();
    b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]) && b.iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (raw, expected E.164, expected country, expected validity)
    const CASES: &[(&str, Option<&str>, Option<&str>, bool)] = &[
        ("13812345678", Some("+8613812345678"), Some("CN"), true),
        ("+8613812345678", Some("+8613812345678"), Some("CN"), true),
        ("+86 138-1234-5678", Some("+8613812345678"), Some("CN"), true),
        ("008613812345678", Some("+8613812345678"), Some("CN"), true),
        ("0086 138 1234 5678", Some("+8613812345678"), Some("CN"), true),
        ("8613812345678", Some("+8613812345678"), Some("CN"), true),
        ("138 1234 5678", Some("+8613812345678"), Some("CN"), true),
        ("138-1234-5678", Some("+8613812345678"), Some("CN"), true),
        ("(138)12345678", Some("+8613812345678"), Some("CN"), true),
        ("tel:+86-138-1234-5678", Some("+8613812345678"), Some("CN"), true),
        ("010-62345678", Some("+861062345678"), Some("CN"), true),
        ("02161234567", Some("+862161234567"), Some("CN"), true),
        ("+86 21 6123 4567", Some("+862161234567"), Some("CN"), true),
        ("+44 20 7946 0000", Some("+442079460000"), Some("GB"), true),
        ("00442079460000", Some("+442079460000"), Some("GB"), true),
        // Ofcom's drama range: well-formed, unallocated, so not valid
        ("0044 7700 900123", Some("+447700900123"), Some("GB"), false),
        ("+1 646 555 0100", Some("+16465550100"), Some("US"), true),
        ("0016465550100", Some("+16465550100"), Some("US"), true),
        ("+63 917 123 4567", Some("+639171234567"), Some("PH"), true),
        ("00855 12 345 678", Some("+85512345678"), Some("KH"), true),
        ("+60 12-345 6789", Some("+60123456789"), Some("MY"), true),
        ("+852 5123 4567", Some("+85251234567"), Some("HK"), true),
        ("+81 90-1234-5678", Some("+819012345678"), Some("JP"), true),
        // Unallocated ranges parse but are not valid: the "virtual number" signal.
        ("+44 11 1111 1111", Some("+441111111111"), Some("GB"), false),
        ("+1 999 555 0100", Some("+19995550100"), Some("US"), false),
        ("12345678901", Some("+8612345678901"), Some("CN"), false),
        ("", None, None, false),
        ("   ", None, None, false),
        ("anonymous", None, None, false),
        ("+", None, None, false),
        ("abc123", None, None, false),
        ("1002", None, None, false),
        ("110", None, None, false),
    ];

    #[test]
    fn number_table() {
        let p = PhoneParser::new("CN").unwrap();
        let mut bad = Vec::new();
        for (raw, e164, country, valid) in CASES {
            let got = p.parse(raw, true);
            assert_eq!(got.e164.as_deref(), *e164, "e164 of {raw:?}");
            assert_eq!(got.country.as_deref(), *country, "country of {raw:?}");
            if got.valid != *valid {
                bad.push(format!("{raw}: valid={}", got.valid));
            }
        }
        assert!(bad.is_empty(), "validity differs: {bad:?}");
    }

    #[test]
    fn fast_path_agrees_with_library() {
        let p = PhoneParser::new("CN").unwrap();
        for raw in ["13812345678", "+86 138-1234-5678", "008613912345678", "8615012345678", "19912345678"] {
            let fast = p.parse(raw, false);
            let slow = p.parse(raw, true);
            assert_eq!(fast.e164, slow.e164, "{raw}");
            assert_eq!(fast.country, slow.country, "{raw}");
        }
    }

    #[test]
    fn allocation_free_fast_path_matches_parse() {
        let p = PhoneParser::new("CN").unwrap();
        for raw in ["13812345678", "+8613812345678", "008613812345678", "8613812345678", " 13812345678 "] {
            let d = p.fast_national_mobile(raw).unwrap();
            assert_eq!(Some(format!("+86{d}")), p.parse(raw, false).e164, "{raw}");
        }
        for raw in ["+86 138-1234-5678", "02161234567", "+447700900123", "1381234567"] {
            assert_eq!(p.fast_national_mobile(raw), None, "{raw}");
        }
    }

    #[test]
    fn other_home_region() {
        let p = PhoneParser::new("gb").unwrap();
        let n = p.parse("020 7946 0000", true);
        assert_eq!(n.e164.as_deref(), Some("+442079460000"));
        assert_eq!(n.country.as_deref(), Some("GB"));
        assert!(PhoneParser::new("XX").is_err());
    }

    /// `new` accepts any region phonenumber can name without looking its plan up: every one has a plan.
    #[test]
    fn every_region_has_a_plan() {
        let mut named = 0;
        for a in b'A'..=b'Z' {
            for b in b'A'..=b'Z' {
                let code = format!("{}{}", a as char, b as char);
                if let Ok(p) = PhoneParser::new(&code) {
                    named += 1;
                    assert!(phonenumber::metadata::DATABASE.by_id(p.home()).is_some(), "{code} has no plan");
                    assert_ne!(p.home_prefix(), "+0", "{code}");
                }
            }
        }
        assert!(named > 200, "only {named} regions");
    }
}
