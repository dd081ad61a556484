//! Writing demo events as JSON Lines, fast: the timestamps are formatted by
//! hand with Stockholm's summer-time rule instead of a time-zone lookup per
//! event (a test compares every quarter hour of four years with the zone
//! database).

use super::{Ev, DAY, HOUR};

pub(crate) fn push_line(buf: &mut String, case: &str, e: &Ev) {
    buf.push_str("{\"id\":\"");
    buf.push_str(case);
    buf.push('-');
    push2(buf, u32::from(e.n));
    buf.push_str("\",\"case\":\"");
    buf.push_str(case);
    buf.push_str("\",\"type\":\"");
    buf.push_str(e.kind);
    buf.push_str("\",\"at\":\"");
    push_local_time(buf, e.at);
    buf.push_str("\",\"unit\":\"");
    buf.push_str(&e.unit);
    buf.push('"');
    if !e.to.is_empty() || matches!(e.kind, "inskrivningsmeddelande" | "utskrivningsklar" | "kallelse_sip") {
        buf.push_str(",\"to\":[");
        for (i, t) in e.to.iter().enumerate() {
            if i > 0 {
                buf.push(',');
            }
            buf.push('"');
            buf.push_str(t);
            buf.push('"');
        }
        buf.push(']');
    }
    if let Some(r) = e.reference {
        buf.push_str(",\"ref\":\"");
        buf.push_str(case);
        buf.push('-');
        push2(buf, u32::from(r));
        buf.push('"');
    }
    match e.value.as_deref() {
        Some(v @ ("true" | "false")) => {
            buf.push_str(",\"value\":");
            buf.push_str(v);
        }
        Some(v) => {
            buf.push_str(",\"value\":\"");
            buf.push_str(v);
            buf.push('"');
        }
        None => {}
    }
    if let Some(p) = &e.patient {
        buf.push_str(",\"patient\":\"");
        buf.push_str(p);
        buf.push('"');
    }
    if let Some(k) = &e.kommun {
        buf.push_str(",\"kommun\":\"");
        buf.push_str(k);
        buf.push('"');
    }
    buf.push_str("}\n");
}

fn push2(buf: &mut String, n: u32) {
    buf.push(char::from(b'0' + (n / 10 % 10) as u8));
    buf.push(char::from(b'0' + (n % 10) as u8));
}

/// Days since 1970-01-01 -> (year, month, day) (H. Hinnant's algorithm).
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// Stockholm's UTC offset in seconds: summer time from 01:00 UTC on the last
/// Sunday of March to 01:00 UTC on the last Sunday of October (the EU rule,
/// in force for every year the demo writes). Far faster than a zone lookup.
fn stockholm_offset(t: i64) -> i64 {
    let (year, _, _) = civil(t.div_euclid(DAY));
    let last_sunday = |month| {
        let d = days_from_civil(year, month, 31);
        d - (d + 4).rem_euclid(7)
    };
    let start = last_sunday(3) * DAY + HOUR;
    let end = last_sunday(10) * DAY + HOUR;
    if (start..end).contains(&t) {
        2 * HOUR
    } else {
        HOUR
    }
}

/// `YYYY-MM-DDTHH:MM:SS+0H:00` in Stockholm time.
fn push_local_time(buf: &mut String, t: i64) {
    let off = stockholm_offset(t);
    let local = t + off;
    let (y, m, d) = civil(local.div_euclid(DAY));
    let secs = local.rem_euclid(DAY) as u32;
    push2(buf, (y / 100) as u32);
    push2(buf, (y % 100) as u32);
    buf.push('-');
    push2(buf, m);
    buf.push('-');
    push2(buf, d);
    buf.push('T');
    push2(buf, secs / 3600);
    buf.push(':');
    push2(buf, secs / 60 % 60);
    buf.push(':');
    push2(buf, secs % 60);
    buf.push_str(if off == 2 * HOUR { "+02:00" } else { "+01:00" });
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, NaiveDate, SecondsFormat};
    use chrono_tz::Europe::Stockholm;

    #[test]
    fn the_fast_local_time_agrees_with_the_time_zone_database() {
        let start = NaiveDate::from_ymd_opt(2024, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp();
        for step in 0..(4 * 366 * 24 * 4) {
            let t = start + step * 900 + 7;
            let mut fast = String::new();
            push_local_time(&mut fast, t);
            let slow = DateTime::from_timestamp(t, 0).unwrap().with_timezone(&Stockholm);
            assert_eq!(fast, slow.to_rfc3339_opts(SecondsFormat::Secs, false));
        }
    }
}
