//! An instant read from a `Timestamp` column the quick way. SQLite keeps a
//! timestamp as text, which diesel parses by trying chrono format strings
//! in turn: a tenth of a full scan's time went to it. The text svu-vakt
//! writes (`YYYY-MM-DD HH:MM:SS`, seconds with a fraction where there is
//! one) is read here digit by digit; any other form is handed to diesel's
//! own reading, so a value it reads is read the same. PostgreSQL sends an
//! integer and is read as before. Written, the same text is made digit by
//! digit too (chrono's formatter cost a fifth of an import's event inserts).

use chrono::{NaiveDate, NaiveDateTime};
use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::Pg;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Timestamp;
use diesel::sqlite::Sqlite;

use super::MultiBackend;

/// A `Timestamp` column's value (UTC, naive, as every instant is stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromSqlRow, AsExpression)]
#[diesel(sql_type = Timestamp)]
pub struct Stamp(pub NaiveDateTime);

impl ToSql<Timestamp, Sqlite> for Stamp {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        match format(&self.0) {
            Some(text) => {
                out.set_value(text);
                Ok(IsNull::No)
            }
            None => <NaiveDateTime as ToSql<Timestamp, Sqlite>>::to_sql(&self.0, out),
        }
    }
}

impl ToSql<Timestamp, Pg> for Stamp {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <NaiveDateTime as ToSql<Timestamp, Pg>>::to_sql(&self.0, out)
    }
}

impl ToSql<Timestamp, MultiBackend> for Stamp {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, MultiBackend>) -> serialize::Result {
        out.set_value((Timestamp, self));
        Ok(IsNull::No)
    }
}

/// The text diesel writes for a timestamp (`%F %T%.f`): the fraction in
/// three, six or nine digits, the fewest that hold it, none when whole.
/// `None` outside years 0–9999 and for a leap second, left to chrono.
fn format(t: &NaiveDateTime) -> Option<String> {
    use chrono::{Datelike, Timelike};
    let nano = t.nanosecond();
    if !(0..=9999).contains(&t.year()) || nano >= 1_000_000_000 {
        return None;
    }
    let (frac, width) = match nano {
        0 => (0, 0),
        n if n % 1_000_000 == 0 => (n / 1_000_000, 3),
        n if n % 1_000 == 0 => (n / 1_000, 6),
        n => (n, 9),
    };
    let mut out = String::with_capacity(29);
    let mut put = |sep: Option<char>, n: u32, width: u32| {
        out.extend(sep);
        out.extend(
            (0..width)
                .rev()
                .map(|i| char::from(b'0' + (n / 10u32.pow(i) % 10) as u8)),
        );
    };
    put(None, t.year() as u32, 4);
    put(Some('-'), t.month(), 2);
    put(Some('-'), t.day(), 2);
    put(Some(' '), t.hour(), 2);
    put(Some(':'), t.minute(), 2);
    put(Some(':'), t.second(), 2);
    if width > 0 {
        put(Some('.'), frac, width);
    }
    Some(out)
}

impl FromSql<Timestamp, Sqlite> for Stamp {
    fn from_sql(mut value: <Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        if let Some(t) = parse(value.read_text()) {
            return Ok(Stamp(t));
        }
        <NaiveDateTime as FromSql<Timestamp, Sqlite>>::from_sql(value).map(Stamp)
    }
}

impl FromSql<Timestamp, Pg> for Stamp {
    fn from_sql(value: <Pg as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        <NaiveDateTime as FromSql<Timestamp, Pg>>::from_sql(value).map(Stamp)
    }
}

impl FromSql<Timestamp, MultiBackend> for Stamp {
    fn from_sql(bytes: <MultiBackend as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        bytes.from_sql::<Self, Timestamp>()
    }
}

/// `YYYY-MM-DD HH:MM:SS` with an optional fraction of up to nine digits;
/// `None` for anything else (a valid date and time of another form too).
fn parse(text: &str) -> Option<NaiveDateTime> {
    let b = text.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range]
            .iter()
            .try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
    };
    let nanos = match &b[19..] {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            let n = num(20..b.len())?;
            n * 10u32.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    NaiveDate::from_ymd_opt(year, num(5..7)?, num(8..10)?)?.and_hms_nano_opt(
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
        nanos,
    )
}

#[cfg(test)]
mod tests {
    use super::parse;
    use chrono::{Datelike, NaiveDateTime};

    fn chrono(text: &str) -> Option<NaiveDateTime> {
        NaiveDateTime::parse_from_str(text, "%F %T%.f").ok()
    }

    #[test]
    fn the_written_forms_are_read_as_chrono_reads_them() {
        for text in [
            "2026-01-02 10:00:00",
            "2026-12-31 23:59:59",
            "2024-02-29 00:00:00",
            "2026-03-29 01:59:59.5",
            "2026-03-29 01:59:59.123456",
            "2026-03-29 01:59:59.123456789",
            "0001-01-01 00:00:00",
        ] {
            assert_eq!(parse(text), chrono(text), "{text}");
            assert!(parse(text).is_some(), "{text}");
        }
    }

    #[test]
    fn written_as_chrono_writes_them() {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 3, 9).unwrap();
        for nano in [
            0,
            5,
            120,
            500_000_000,
            123_000_000,
            123_456_000,
            123_456_789,
            1_000,
            999_999_999,
        ] {
            for (y, h, m, s) in [(2026, 0, 0, 0), (1, 23, 59, 59), (9999, 9, 5, 7)] {
                let t = day.with_year(y).unwrap().and_hms_nano_opt(h, m, s, nano).unwrap();
                assert_eq!(
                    super::format(&t).as_deref(),
                    Some(t.format("%F %T%.f").to_string().as_str())
                );
                assert_eq!(parse(&super::format(&t).unwrap()), Some(t));
            }
        }
        let leap = day.and_hms_nano_opt(23, 59, 59, 1_500_000_000).unwrap();
        assert_eq!(super::format(&leap), None);
    }

    #[test]
    fn other_forms_and_impossible_dates_are_left_to_diesel() {
        for text in [
            "2026-02-30 10:00:00",
            "2026-01-02 24:00:00",
            "2026-01-02T10:00:00",
            "2026-01-02 10:00",
            "2026-01-02 10:00:00.",
            "2026-01-02 10:00:00.1234567890",
            "2026-01-02 10:00:00Z",
            "2026-01-02 1a:00:00",
            "2461041.5",
            "",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }
}
