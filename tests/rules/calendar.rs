//! SPEC §5: holidays 1990–2200, storhelg blocks and staffing days.

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use std::collections::BTreeMap;
use svu_vakt::calendar::{easter, holidays, year_calendar, Calendar, FIRST_YEAR, LAST_YEAR};

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

#[test]
fn seed_000_staffing_table_for_2026() {
    // "Första maj: söndag 3/5; Kristi himmelfärd: fredag 15/5; Midsommar: söndag 21/6"
    let cal = year_calendar(2026, &BTreeMap::new());
    let days: Vec<NaiveDate> = cal.staffing_days.iter().map(|s| s.date).collect();
    for want in ["2026-05-03", "2026-05-15", "2026-06-21"] {
        assert!(days.contains(&d(want)), "{want} in {days:?}");
    }
    let kristi = cal.staffing_days.iter().find(|s| s.date == d("2026-05-15")).unwrap();
    assert_eq!(
        (kristi.block_start, kristi.block_end),
        (d("2026-05-14"), d("2026-05-17"))
    );
    assert!(Calendar::new().is_klamdag(d("2026-05-15")));
    // Nothing between those blocks and no weekend without a holiday.
    assert!(!days.iter().any(|x| *x > d("2026-05-03") && *x < d("2026-05-15")));
}

#[test]
fn easter_sunday_matches_published_dates() {
    let known = [
        (1990, "1990-04-15"),
        (1991, "1991-03-31"),
        (1995, "1995-04-16"),
        (2000, "2000-04-23"),
        (2008, "2008-03-23"),
        (2011, "2011-04-24"),
        (2019, "2019-04-21"),
        (2024, "2024-03-31"),
        (2025, "2025-04-20"),
        (2026, "2026-04-05"),
        (2027, "2027-03-28"),
        (2028, "2028-04-16"),
        (2038, "2038-04-25"),
        (2049, "2049-04-18"),
        (2100, "2100-03-28"),
    ];
    for (y, e) in known {
        assert_eq!(easter(y), d(e), "{y}");
    }
}

#[test]
fn the_json_contract_of_calendar() {
    let v = serde_json::to_value(year_calendar(2026, &BTreeMap::new())).unwrap();
    assert_eq!(
        v["holidays"][0],
        serde_json::json!({"date": "2026-01-01", "name": "Nyårsdagen", "legal": true})
    );
    let julafton = v["holidays"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["date"] == "2026-12-24")
        .unwrap();
    assert_eq!(julafton["legal"], false);
    assert_eq!(
        v["staffing_days"][2],
        serde_json::json!({"date": "2026-04-05", "block_start": "2026-04-03", "block_end": "2026-04-06"})
    );
    assert_eq!(v.as_object().unwrap().len(), 2);
}

#[test]
fn nationaldagen_from_2005_and_annandag_pingst_before() {
    let names = |y| holidays(y).into_iter().map(|h| h.name).collect::<Vec<_>>();
    assert!(names(2004).contains(&"Annandag pingst") && !names(2004).contains(&"Sveriges nationaldag"));
    assert!(names(2005).contains(&"Sveriges nationaldag") && !names(2005).contains(&"Annandag pingst"));
}

#[test]
fn a_block_across_new_year_gives_each_staffing_day_to_its_own_year() {
    // 31 Dec 2026 (Thu) – 3 Jan 2027 (Sun): dag 3 is Saturday 2 Jan 2027.
    let y2026 = year_calendar(2026, &BTreeMap::new());
    let y2027 = year_calendar(2027, &BTreeMap::new());
    assert!(y2026.staffing_days.iter().all(|s| s.date.year() == 2026));
    let ny = y2027.staffing_days.iter().find(|s| s.date == d("2027-01-02")).unwrap();
    assert_eq!(ny.block_start, d("2026-12-31"));
}

#[test]
fn properties_hold_for_every_year() {
    let cal = Calendar::new();
    for y in FIRST_YEAR..=LAST_YEAR {
        let hs = holidays(y);
        let by_name = |n: &str| {
            hs.iter()
                .find(|h| h.name == n)
                .unwrap_or_else(|| panic!("{n} {y}"))
                .date
        };
        let e = easter(y);
        assert_eq!(e.weekday(), Weekday::Sun, "{y}");
        assert!(e >= d(&format!("{y}-03-22")) && e <= d(&format!("{y}-04-25")), "{y}");
        let mid = by_name("Midsommardagen");
        assert_eq!(mid.weekday(), Weekday::Sat);
        assert!((20..=26).contains(&mid.day()) && mid.month() == 6);
        assert_eq!(by_name("Midsommarafton"), mid - Duration::days(1));
        let kristi = by_name("Kristi himmelsfärdsdag");
        assert_eq!(kristi.weekday(), Weekday::Thu);
        assert_eq!(kristi, e + Duration::days(39));
        assert_eq!(by_name("Pingstdagen"), e + Duration::days(49));
        let ah = by_name("Alla helgons dag");
        assert_eq!(ah.weekday(), Weekday::Sat);
        assert!(ah >= d(&format!("{y}-10-31")) && ah <= d(&format!("{y}-11-06")));
        assert_eq!(hs.iter().filter(|h| !h.legal).count(), 4);

        let cy = year_calendar(y, &BTreeMap::new());
        let blocks = cal.blocks(
            d(&format!("{y}-01-01")) - Duration::days(20),
            d(&format!("{y}-12-31")) + Duration::days(20),
        );
        for s in &cy.staffing_days {
            assert_eq!(s.date.year(), y);
            assert!(s.block_start <= s.date && s.date <= s.block_end, "{s:?}");
            assert!(blocks.contains(&(s.block_start, s.block_end)));
        }
        for (bs, be) in blocks {
            assert!((be - bs).num_days() >= 2, "a block is at least 3 days");
            let staffed = cal.block_staffing(bs, be);
            let mut run = 0;
            for day in bs.iter_days().take_while(|x| *x <= be) {
                run = if staffed.contains(&day) { 0 } else { run + 1 };
                assert!(run < 3, "three unstaffed days in a row in {bs}–{be}");
            }
        }
    }
}
