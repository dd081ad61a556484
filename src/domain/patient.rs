//! Patient identity: a personnummer or samordningsnummer is checked and turned
//! into a keyed hash (HMAC-SHA256 under the installation secret) at the edge.
//! The clear number never leaves this module: it is not stored, logged or
//! returned, and errors never quote it.

use std::fmt;

use chrono::{Datelike, Utc};
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

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PatientError {
    #[error("must be a personnummer or samordningsnummer (YYYYMMDD-NNNN or YYMMDD-NNNN)")]
    Format,
    #[error("has no valid date of birth")]
    Date,
    #[error("has a wrong check digit")]
    Checksum,
}

#[derive(Clone, Debug)]
pub struct PatientHasher {
    key: Secret,
}

impl PatientHasher {
    pub fn new(key: Secret) -> PatientHasher {
        PatientHasher { key }
    }

    pub fn hash(&self, input: &str) -> Result<PatientHash, PatientError> {
        let normalised = normalise(input)?;
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
            '-' | '+' if i == s.len() - 5 => plus = c == '+',
            _ => return Err(PatientError::Format),
        }
    }
    if plus && digits.len() != 10 {
        return Err(PatientError::Format);
    }
    Ok((digits, plus))
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
}
