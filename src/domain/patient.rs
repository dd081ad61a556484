//! Patient identity: a personnummer or samordningsnummer is checked and turned
//! into a keyed hash (HMAC-SHA256 under the installation secret) at the edge.
//! The clear number never leaves this module: it is not stored, logged or
//! returned, and errors never quote it.

use std::fmt;

use chrono::{Datelike, NaiveDate, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The installation secret. Debug and Display never show it.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(bytes)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The hex HMAC of a patient's normalised 12-digit number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PatientHash(pub String);

/// The age band the follow-up reports readmissions by (SPEC §7), derived
/// from the number's date of birth at the day of the inskrivning. It is all
/// that is kept of the number besides its keyed hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AgeBand {
    Under65,
    From65To79,
    From80,
}

impl AgeBand {
    pub const ALL: [AgeBand; 3] = [AgeBand::Under65, AgeBand::From65To79, AgeBand::From80];

    pub fn as_str(self) -> &'static str {
        match self {
            AgeBand::Under65 => "under_65",
            AgeBand::From65To79 => "65_79",
            AgeBand::From80 => "80_plus",
        }
    }

    pub fn parse(s: &str) -> Option<AgeBand> {
        AgeBand::ALL.into_iter().find(|b| b.as_str() == s)
    }

    /// As the reports print it.
    pub fn label(self) -> &'static str {
        match self {
            AgeBand::Under65 => "under 65 år",
            AgeBand::From65To79 => "65–79 år",
            AgeBand::From80 => "80 år och äldre",
        }
    }

    /// The band of a person born on `born`, on `on`.
    pub fn at(born: NaiveDate, on: NaiveDate) -> AgeBand {
        let mut age = on.year() - born.year();
        if (on.month(), on.day()) < (born.month(), born.day()) {
            age -= 1;
        }
        match age {
            ..65 => AgeBand::Under65,
            65..=79 => AgeBand::From65To79,
            _ => AgeBand::From80,
        }
    }
}

/// The date of birth of a normalised 12-digit number; a samordningsnummer's
/// day has 60 added.
pub fn birth_date(twelve: &str) -> Option<NaiveDate> {
    let y: i32 = twelve.get(0..4)?.parse().ok()?;
    let m: u32 = twelve.get(4..6)?.parse().ok()?;
    let mut d: u32 = twelve.get(6..8)?.parse().ok()?;
    if d > 60 {
        d -= 60;
    }
    // A number may carry day 00 (an unknown day): the first of the month.
    NaiveDate::from_ymd_opt(y, m, d.max(1))
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PatientError {
    #[error("måste vara ett personnummer eller samordningsnummer (ÅÅÅÅMMDD-NNNN eller ÅÅMMDD-NNNN)")]
    Format,
    #[error("har inget giltigt födelsedatum")]
    Date,
    #[error("har fel kontrollsiffra")]
    Checksum,
}

/// The patient key, and the one switch on how ids are checked for a
/// personnummer (SPEC §3.2): what ingest needs to keep patient identity out
/// of what it stores.
#[derive(Clone, Debug)]
pub struct PatientHasher {
    key: Secret,
    refuse_ten_digit_ids: bool,
}

impl PatientHasher {
    pub fn new(key: Secret) -> PatientHasher {
        PatientHasher {
            key,
            refuse_ten_digit_ids: true,
        }
    }

    /// `ingest.refuse_ten_digit_ids = false`: a bare ten-digit id that
    /// happens to be a valid personnummer is let through (a source whose own
    /// ids are such numbers); every other written form stays refused.
    pub fn with_ten_digit_ids(mut self, refused: bool) -> PatientHasher {
        self.refuse_ten_digit_ids = refused;
        self
    }

    /// Whether an event or case id is, or holds, a valid personnummer or
    /// samordningsnummer (SPEC §3.2): the whole id as twelve digits, as ten
    /// digits (unless switched off), or anywhere in it with its separator
    /// (`YYMMDD-NNNN`, `YYMMDD+NNNN`, `YYYYMMDD-NNNN`).
    pub fn id_holds_personnummer(&self, id: &str) -> bool {
        // Every form holds ten digits at least: most ids are let go here.
        if id.bytes().filter(u8::is_ascii_digit).count() < 10 {
            return false;
        }
        // A typographic dash or minus written for the separator is one too.
        let id = id.trim();
        // Most ids are plain ASCII: only a typographic dash costs a copy.
        let id: std::borrow::Cow<str> = if id.is_ascii() {
            std::borrow::Cow::Borrowed(id)
        } else {
            std::borrow::Cow::Owned(
                id.chars()
                    .map(|c| {
                        if matches!(c, '\u{2010}'..='\u{2015}' | '\u{2212}') {
                            '-'
                        } else {
                            c
                        }
                    })
                    .collect(),
            )
        };
        let id = id.as_ref();
        if id.bytes().all(|b| b.is_ascii_digit()) {
            return match id.len() {
                12 => normalise(id).is_ok(),
                10 => self.refuse_ten_digit_ids && normalise(id).is_ok(),
                _ => false,
            };
        }
        let found = separated_numbers(id).any(|candidate| normalise(&candidate).is_ok());
        found
    }

    pub fn hash(&self, input: &str) -> Result<PatientHash, PatientError> {
        self.hash_normalised(&normalise(input)?)
    }

    /// The hash and the age band on `on` (the day of the inskrivning).
    pub fn identify(&self, input: &str, on: NaiveDate) -> Result<(PatientHash, AgeBand), PatientError> {
        let normalised = normalise(input)?;
        let born = birth_date(&normalised).ok_or(PatientError::Date)?;
        Ok((self.hash_normalised(&normalised)?, AgeBand::at(born, on)))
    }

    /// HMAC-SHA256 under the installation key of `text`, for `purpose`
    /// (another purpose, another hash): what is kept of a typed user name
    /// that may be a personnummer or a password typed in the wrong field.
    pub fn keyed(&self, purpose: &str, text: &str) -> String {
        // HMAC takes a key of any length: this cannot fail.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.key.expose()) else {
            return String::new();
        };
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(text.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn hash_normalised(&self, normalised: &str) -> Result<PatientHash, PatientError> {
        // The key length is never rejected by HMAC; a failure here is impossible.
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.expose()).map_err(|_| PatientError::Format)?;
        mac.update(normalised.as_bytes());
        Ok(PatientHash(hex::encode(mac.finalize().into_bytes())))
    }
}

/// Returns the 12-digit form `YYYYMMDDNNNC` of a valid number.
///
/// The check digit is computed over the ten digits as written, so the day of a
/// samordningsnummer counts with its +60 (Skatteverket SKV 707). The
/// `personnummer` crate checks the date; its own checksum uses the day without
/// the +60 and would reject real samordningsnummer, so it is not used for that.
pub fn normalise(input: &str) -> Result<String, PatientError> {
    let s = input.trim();
    let (digits, plus) = split_digits(s)?;
    let twelve = match digits.len() {
        12 => digits,
        10 => format!("{}{}", century(&digits[0..2], plus), digits),
        _ => return Err(PatientError::Format),
    };
    let dashed = format!("{}-{}", &twelve[0..8], &twelve[8..12]);
    personnummer::Personnummer::parse(&dashed).map_err(|_| PatientError::Date)?;
    if luhn(&twelve[2..11]) != twelve.as_bytes()[11] - b'0' {
        return Err(PatientError::Checksum);
    }
    Ok(twelve)
}

fn split_digits(s: &str) -> Result<(String, bool), PatientError> {
    let mut digits = String::with_capacity(12);
    let mut plus = false;
    for (i, c) in s.char_indices() {
        match c {
            '0'..='9' => digits.push(c),
            // The separator stands before the last four digits; `i + 5`, for a
            // string shorter than five bytes has no such place.
            '-' | '+' if i + 5 == s.len() => plus = c == '+',
            _ => return Err(PatientError::Format),
        }
    }
    if plus && digits.len() != 10 {
        return Err(PatientError::Format);
    }
    Ok((digits, plus))
}

/// Every `DDDDDD[DD]` + `-`/`+` + `DDDD` in `id` whose last four digits
/// end the id or stand before a non-digit; before the separator the last six
/// and the last eight digits of the run (privacy first: a number glued to
/// other digits is still a number).
fn separated_numbers(id: &str) -> impl Iterator<Item = String> + '_ {
    let b = id.as_bytes();
    (0..b.len())
        .filter(|&i| b[i] == b'-' || b[i] == b'+')
        .flat_map(move |i| {
            let after = &b[i + 1..];
            let four = after.len() >= 4
                && after[..4].iter().all(u8::is_ascii_digit)
                && after.get(4).is_none_or(|c| !c.is_ascii_digit());
            let run = b[..i].iter().rev().take_while(|c| c.is_ascii_digit()).count();
            [6usize, 8]
                .into_iter()
                .filter(move |&n| four && run >= n)
                .map(move |n| format!("{}{}{}", &id[i - n..i], b[i] as char, &id[i + 1..i + 5]))
        })
}

/// The century of a 10-digit number: the latest that is not in the future,
/// one century further back with the `+` of a person over 100.
fn century(yy: &str, plus: bool) -> String {
    let yy: i32 = yy.parse().unwrap_or(0);
    let now = Utc::now().year();
    let mut year = now - (now - yy).rem_euclid(100);
    if plus {
        year -= 100;
    }
    format!("{}", year / 100)
}

/// The check digit over nine digits (Luhn, weights 2-1-2-…).
pub fn luhn(nine: &str) -> u8 {
    let sum: u32 = nine
        .bytes()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0') * if i % 2 == 0 { 2 } else { 1 };
            d / 10 + d % 10
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> PatientHasher {
        PatientHasher::new(Secret::new(b"test-key".to_vec()))
    }

    #[test]
    fn accepts_the_forms_of_one_number_as_one_patient() {
        let h = hasher();
        let a = h.hash("199001010017").unwrap();
        assert_eq!(a, h.hash("19900101-0017").unwrap());
        assert_eq!(a, h.hash("900101-0017").unwrap());
        assert_eq!(a, h.hash("9001010017").unwrap());
        assert_ne!(a.0, "199001010017");
        assert_eq!(a.0.len(), 64);
    }

    #[test]
    fn accepts_samordningsnummer_with_check_digit_over_day_plus_60() {
        assert_eq!(normalise("701063-2391").unwrap(), "197010632391");
        assert_eq!(normalise("701063-2394"), Err(PatientError::Checksum));
    }

    #[test]
    fn rejects_bad_numbers() {
        assert_eq!(normalise("19900101-0018"), Err(PatientError::Checksum));
        assert_eq!(normalise("19901301-0017"), Err(PatientError::Date));
        assert_eq!(normalise("1990-01-01"), Err(PatientError::Format));
        assert_eq!(normalise("abc"), Err(PatientError::Format));
        assert_eq!(normalise(""), Err(PatientError::Format));
        // Shorter than a separator's place (found by fuzzing: a debug build
        // panicked on the subtraction).
        for short in ["+995", "-", "+", "1-2", "12+"] {
            assert_eq!(normalise(short), Err(PatientError::Format), "{short}");
        }
    }

    #[test]
    fn the_age_band_turns_on_the_birthday() {
        let on = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let h = hasher();
        // Born 1961-05-10: 64 the day before the 65th birthday, 65 on it.
        let n = format!("19610510{}", "001");
        let n = format!("{n}{}", luhn(&n[2..11]));
        assert_eq!(h.identify(&n, on("2026-05-09")).unwrap().1, AgeBand::Under65);
        assert_eq!(h.identify(&n, on("2026-05-10")).unwrap().1, AgeBand::From65To79);
        assert_eq!(h.identify(&n, on("2026-05-10")).unwrap().0, h.hash(&n).unwrap());
        // 1946-05-10 turns 80 on 2026-05-10.
        let n = format!("19460510{}", "002");
        let n = format!("{n}{}", luhn(&n[2..11]));
        assert_eq!(h.identify(&n, on("2026-05-09")).unwrap().1, AgeBand::From65To79);
        assert_eq!(h.identify(&n, on("2026-05-10")).unwrap().1, AgeBand::From80);
        // A samordningsnummer: day 63 is the 3rd.
        assert_eq!(birth_date("197010632391"), Some(on("1970-10-03")));
    }

    #[test]
    fn a_different_key_gives_a_different_hash() {
        let other = PatientHasher::new(Secret::new(b"other".to_vec()));
        assert_ne!(hasher().hash("199001010017"), other.hash("199001010017"));
    }

    #[test]
    fn the_secret_never_prints() {
        assert_eq!(format!("{:?}", Secret::new(b"abc".to_vec())), "Secret(***)");
    }

    #[test]
    fn an_id_that_is_or_holds_a_personnummer_is_found_in_every_written_form() {
        let h = hasher();
        for id in [
            "19121212-1212",
            "121212-1212",
            "121212+1212",
            "191212121212",
            "1212121212",
            "SVU-19121212-1212",
            "SVU-121212-1212/2",
            "ärende 19121212-1212",
            // A samordningsnummer (day + 60).
            "19701063-2391",
            "x0019121212-1212",
            "19121212\u{2013}1212",
            "121212\u{2212}1212",
        ] {
            assert!(h.id_holds_personnummer(id), "{id} should be refused");
        }
        for id in [
            "SVU-1-000068",
            "19121212-1213",
            "191212121213",
            "20261301-0000",
            "SVU191212121212",
            "12121212121",
            "19121212-12120",
            "e1",
            "",
        ] {
            assert!(!h.id_holds_personnummer(id), "{id} should pass");
        }
        let lenient = hasher().with_ten_digit_ids(false);
        assert!(!lenient.id_holds_personnummer("1212121212"));
        assert!(lenient.id_holds_personnummer("121212-1212"));
        assert!(lenient.id_holds_personnummer("191212121212"));
    }
}
