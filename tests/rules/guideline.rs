//! The rest of the guideline (SPEC §4.2, §4.6, §4.8, §4.9, §6's berörd
//! part, §7's kommun), each rule at its edges, to the second.

use serde_json::{json, Value};
use svu_vakt::domain::{Event, PatientHasher, Secret};
use svu_vakt::rules::case::evaluate_recorded;
use svu_vakt::rules::{Finding, Profile, RuleId};

use crate::fixtures::{brief, ev, run, t, units};

const T: &str = "2026-07-01T00:00:00Z";

fn nat() -> Profile {
    Profile::nationell()
}

fn uk(id: &str, at: &str, to: &[&str]) -> Event {
    ev(id, "utskrivningsklar", at, "AVD1", json!({"to": to}))
}

fn im(id: &str, at: &str, extra: Value) -> Event {
    let mut obj = json!({"to": ["K1", "VC1"]});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        obj.as_object_mut().unwrap().insert(k, v);
    }
    ev(id, "inskrivningsmeddelande", at, "AVD1", obj)
}

/// A case that needs SIP: IM to K1 and VC1, Ja on Behov av SIP by VC1, UK
/// on Monday 11 May at 16:00 to K1 and VC1 (nationell: kallelse due
/// Thursday 14 May 23:59:59).
fn sip_case(extra: Vec<Event>) -> Vec<Event> {
    let mut v = vec![
        ev("i", "inskrivning", "2026-05-04T09:00:00+02:00", "AVD1", json!({})),
        im("m", "2026-05-04T10:00:00+02:00", json!({})),
        ev(
            "b",
            "behov_av_sip",
            "2026-05-05T09:00:00+02:00",
            "VC1",
            json!({"value": true}),
        ),
        uk("u", "2026-05-11T16:00:00+02:00", &["K1", "VC1"]),
    ];
    v.extend(extra);
    v
}

fn units_of(f: &[Finding]) -> Vec<String> {
    f.iter()
        .map(|f| f.unit.as_ref().map_or("-".into(), |u| u.to_string()))
        .collect()
}

fn affected(f: &Finding) -> Vec<String> {
    f.affected.iter().map(|u| u.to_string()).collect()
}

// ---- §4.6: an avslut by the fast vårdkontakt does not end the SIP chain

#[test]
fn closing_the_case_after_the_uk_does_not_hide_the_missing_kallelse() {
    let closed_by = |unit: &str, at: &str, value: Value| sip_case(vec![ev("a", "avslut", at, unit, value)]);
    // The vårdcentral closes the case one hour after utskrivning.
    let vc = closed_by("VC1", "2026-05-12T10:00:00+02:00", json!({"value": "utskriven"}));
    assert_eq!(run(&vc, &nat(), RuleId::KallelseSip, T).len(), 1);
    assert_eq!(run(&vc, &nat(), RuleId::FastVardkontaktSaknas, T).len(), 1);
    let closed = run(&vc, &nat(), RuleId::SamordningStangd, T);
    assert_eq!(
        brief(&closed),
        [(
            "VC1".into(),
            "2026-05-12T10:00:00+02:00".into(),
            "missing",
            "-".into(),
            None
        )]
    );
    assert_eq!(affected(&closed[0]), ["K1"], "the kommun is the berörd part");
    // A ward's avslut after the UK still cancels (and is no samordning_stangd).
    let ward = closed_by("AVD1", "2026-05-12T10:00:00+02:00", json!({}));
    assert!(run(&ward, &nat(), RuleId::KallelseSip, T).is_empty());
    assert!(run(&ward, &nat(), RuleId::SamordningStangd, T).is_empty());
    // The patient died: the chain ends, whoever recorded it.
    let died = closed_by("VC1", "2026-05-12T10:00:00+02:00", json!({"value": "avliden"}));
    assert!(run(&died, &nat(), RuleId::KallelseSip, T).is_empty());
    assert!(run(&died, &nat(), RuleId::SamordningStangd, T).is_empty());
    // At the very second of the first UK it is not "strictly after": it cancels.
    let same = closed_by("VC1", "2026-05-11T16:00:00+02:00", json!({}));
    assert!(run(&same, &nat(), RuleId::KallelseSip, T).is_empty());
    let after = closed_by("VC1", "2026-05-11T16:00:01+02:00", json!({}));
    assert_eq!(run(&after, &nat(), RuleId::KallelseSip, T).len(), 1);
    // An unregistered unit is not slutenvård: its avslut does not cancel either.
    let unknown = closed_by("VC-NY", "2026-05-12T10:00:00+02:00", json!({}));
    assert_eq!(run(&unknown, &nat(), RuleId::KallelseSip, T).len(), 1);
    // Other rules are still cancelled by any avslut: the UK's kvittens is due
    // at the end of the next day (UK after 12:00), after the avslut.
    assert!(run(&vc, &nat(), RuleId::KvittensUtskrivningsklar, T).is_empty());
}

#[test]
fn samordning_stangd_needs_an_open_uk_sip_needed_and_no_kallelse_yet() {
    let act = |at: &str| ev("a", "avslut", at, "VC1", json!({}));
    let rule = RuleId::SamordningStangd;
    // Before the UK: no finding (and the avslut cancels the chain).
    assert!(run(&sip_case(vec![act("2026-05-11T15:59:59+02:00")]), &nat(), rule, T).is_empty());
    // A kallelse by the vårdcentral before closing: nothing to report.
    let called = sip_case(vec![
        ev(
            "k",
            "kallelse_sip",
            "2026-05-12T09:00:00+02:00",
            "VC1",
            json!({"to": ["K1"]}),
        ),
        act("2026-05-12T09:00:00+02:00"),
    ]);
    assert!(run(&called, &nat(), rule, T).is_empty());
    // A ward's kallelse does not count for it.
    let ward_called = sip_case(vec![
        ev(
            "k",
            "kallelse_sip",
            "2026-05-12T09:00:00+02:00",
            "AVD1",
            json!({"to": ["K1"]}),
        ),
        act("2026-05-12T10:00:00+02:00"),
    ]);
    assert_eq!(run(&ward_called, &nat(), rule, T).len(), 1);
    // A UK withdrawn at or before the act is not open.
    let withdrawn = sip_case(vec![
        ev(
            "w",
            "atertag_utskrivningsklar",
            "2026-05-12T10:00:00+02:00",
            "AVD1",
            json!({"ref": "u"}),
        ),
        act("2026-05-12T10:00:00+02:00"),
    ]);
    assert!(run(&withdrawn, &nat(), rule, T).is_empty());
    // SIP not needed as of the act (Nej documented before it): nothing.
    let nej = sip_case(vec![
        ev(
            "b2",
            "behov_av_sip",
            "2026-05-12T09:00:00+02:00",
            "VC1",
            json!({"value": false}),
        ),
        act("2026-05-12T10:00:00+02:00"),
    ]);
    assert!(run(&nej, &nat(), rule, T).is_empty());
    // A removal as fast vårdkontakt is the same breach, by its unit.
    let removal = sip_case(vec![
        ev("f", "fast_vardkontakt", "2026-05-11T17:00:00+02:00", "VC1", json!({})),
        ev(
            "f2",
            "fast_vardkontakt",
            "2026-05-12T08:00:00+02:00",
            "VC1",
            json!({"value": false}),
        ),
    ]);
    let found = run(&removal, &nat(), rule, T);
    assert_eq!(units_of(&found), ["VC1"]);
    assert_eq!(found[0].due.to_rfc3339(), "2026-05-12T08:00:00+02:00");
    // Not yet: the act at T itself is not past.
    assert!(run(&removal, &nat(), rule, "2026-05-12T08:00:00+02:00").is_empty());
    assert_eq!(run(&removal, &nat(), rule, "2026-05-12T08:00:01+02:00").len(), 1);
}

#[test]
fn a_removal_is_no_fast_vardkontakt_but_still_names_the_responsible_unit() {
    let removal = sip_case(vec![ev(
        "f",
        "fast_vardkontakt",
        "2026-05-12T08:00:00+02:00",
        "VC2",
        json!({"value": false}),
    )]);
    let missing = run(&removal, &nat(), RuleId::FastVardkontaktSaknas, T);
    assert_eq!(missing.len(), 1, "a removal never meets fast_vardkontakt_saknas");
    let kallelse = run(&removal, &nat(), RuleId::KallelseSip, T);
    assert_eq!(units_of(&kallelse), ["VC2"], "the unit that should have called");
}

// ---- §4.2: only the fast vårdkontakt's kallelse meets it

#[test]
fn a_wards_kallelse_does_not_meet_kallelse_sip() {
    let by = |unit: &str| {
        sip_case(vec![ev(
            "k",
            "kallelse_sip",
            "2026-05-14T23:59:59+02:00",
            unit,
            json!({"to": ["K1"]}),
        )])
    };
    assert_eq!(run(&by("AVD1"), &nat(), RuleId::KallelseSip, T).len(), 1);
    assert!(run(&by("VC1"), &nat(), RuleId::KallelseSip, T).is_empty());
    // An unknown unit may be the vårdcentral, not yet registered: it counts.
    assert!(run(&by("VC-NY"), &nat(), RuleId::KallelseSip, T).is_empty());
    // The betalningsansvar prerequisite reads the same kallelse.
    let facts = |ev: &[Event]| evaluate_recorded(ev, &units(), &nat(), &nat().case_rules(), t(T)).facts;
    assert_eq!(facts(&by("AVD1")).kallelse_in_time, Some(false));
    assert_eq!(facts(&by("VC1")).kallelse_in_time, Some(true));
}

#[test]
fn ostergotland_has_no_planning_tracks() {
    // Gul spår alone, no Behov av SIP: SIP needed in nationell, not in Östergötland.
    let events = vec![
        im("m", "2026-05-04T10:00:00+02:00", json!({})),
        ev(
            "s",
            "sparfarg",
            "2026-05-05T09:00:00+02:00",
            "AVD1",
            json!({"value": "gul"}),
        ),
        uk("u", "2026-05-11T16:00:00+02:00", &["K1", "VC1"]),
    ];
    assert_eq!(run(&events, &nat(), RuleId::KallelseSip, T).len(), 1);
    assert!(run(&events, &Profile::ostergotland(), RuleId::KallelseSip, T).is_empty());
}

// ---- §4.8 behov_av_sip_dokumenterat

#[test]
fn behov_av_sip_is_documented_by_the_oppenvard_by_the_utskrivning() {
    let rule = RuleId::BehovAvSipDokumenterat;
    let og = Profile::ostergotland();
    let case = |extra: Vec<Event>| {
        let mut v = vec![
            ev("i", "inskrivning", "2026-05-04T09:00:00+02:00", "AVD1", json!({})),
            im("m", "2026-05-04T10:00:00+02:00", json!({})),
            ev("x", "utskrivning", "2026-05-12T11:00:00+02:00", "AVD1", json!({})),
        ];
        v.extend(extra);
        v
    };
    let behov = |at: &str, unit: &str, value: bool| ev("b", "behov_av_sip", at, unit, json!({"value": value}));
    let f = run(&case(vec![]), &og, rule, T);
    assert_eq!(
        brief(&f),
        [(
            "VC1".into(),
            "2026-05-12T11:00:00+02:00".into(),
            "missing",
            "-".into(),
            None
        )],
        "responsible: the first öppenvård recipient of the first IM"
    );
    assert_eq!(affected(&f[0]), ["K1"]);
    // Nej counts as documented, at the very second of the utskrivning.
    assert!(run(
        &case(vec![behov("2026-05-12T11:00:00+02:00", "VC1", false)]),
        &og,
        rule,
        T
    )
    .is_empty());
    let late = run(
        &case(vec![behov("2026-05-12T11:00:01+02:00", "VC1", true)]),
        &og,
        rule,
        T,
    );
    assert_eq!(late[0].late_minutes, Some(0));
    // The ward's Ja is not the fast vårdkontakt's.
    assert_eq!(
        run(
            &case(vec![behov("2026-05-10T11:00:00+02:00", "AVD1", true)]),
            &og,
            rule,
            T
        )
        .len(),
        1
    );
    // No fast vårdkontakt and no öppenvård recipient: no obligation.
    let only_kommun = vec![
        ev(
            "m",
            "inskrivningsmeddelande",
            "2026-05-04T10:00:00+02:00",
            "AVD1",
            json!({"to": ["K1"]}),
        ),
        ev("x", "utskrivning", "2026-05-12T11:00:00+02:00", "AVD1", json!({})),
    ];
    assert!(run(&only_kommun, &og, rule, T).is_empty());
    let with_fvk = [
        only_kommun.clone(),
        vec![ev(
            "f",
            "fast_vardkontakt",
            "2026-05-06T10:00:00+02:00",
            "VC2",
            json!({}),
        )],
    ]
    .concat();
    assert_eq!(units_of(&run(&with_fvk, &og, rule, T)), ["VC2"]);
    // On in Östergötland only.
    assert!(og.enabled.contains(&rule));
    assert!(!nat().enabled.contains(&rule));
    assert!(!Profile::vasterbotten().enabled.contains(&rule));
}

// ---- §4.8 samtycke_sip_inskrivning

#[test]
fn samtycke_is_asked_by_the_ward_within_24_hours_of_inskrivning() {
    let rule = RuleId::SamtyckeSipInskrivning;
    let og = Profile::ostergotland();
    // Across the spring switch: 24 h elapsed from 10:00+01:00 is 11:00+02:00.
    let case = |extra: Vec<Event>| {
        let mut v = vec![
            ev("i", "inskrivning", "2026-03-28T10:00:00+01:00", "AVD1", json!({})),
            im("m", "2026-03-28T12:00:00+01:00", json!({})),
        ];
        v.extend(extra);
        v
    };
    let samtycke = |at: &str, unit: &str| ev("s", "samtycke_sip", at, unit, json!({"value": false}));
    let f = run(&case(vec![]), &og, rule, T);
    assert_eq!(
        brief(&f),
        [(
            "AVD1".into(),
            "2026-03-29T11:00:00+02:00".into(),
            "missing",
            "-".into(),
            None
        )]
    );
    assert_eq!(affected(&f[0]), ["K1", "VC1"]);
    assert!(run(&case(vec![samtycke("2026-03-29T11:00:00+02:00", "AVD1")]), &og, rule, T).is_empty());
    assert_eq!(
        run(&case(vec![samtycke("2026-03-29T11:00:01+02:00", "AVD1")]), &og, rule, T)[0].status,
        svu_vakt::rules::Status::Late
    );
    // Asked by the vårdcentral: not the ward's answer at inskrivning.
    assert_eq!(
        run(&case(vec![samtycke("2026-03-28T13:00:00+01:00", "VC1")]), &og, rule, T).len(),
        1
    );
    // No IM yet: no obligation.
    let no_im = [ev("i", "inskrivning", "2026-03-28T10:00:00+01:00", "AVD1", json!({}))];
    assert!(run(&no_im, &og, rule, T).is_empty());
}

// ---- §4.8 sip_mote

#[test]
fn the_sip_meeting_is_held_within_28_days_of_the_utskrivning() {
    let rule = RuleId::SipMote;
    let vb = Profile::vasterbotten();
    // Utskrivning 2 October; day + 28 is 30 October, after the autumn switch.
    let case = |extra: Vec<Event>| {
        let mut v = vec![
            im("m", "2026-09-20T10:00:00+02:00", json!({})),
            ev(
                "b",
                "behov_av_sip",
                "2026-09-21T09:00:00+02:00",
                "VC1",
                json!({"value": true}),
            ),
            uk("u", "2026-09-30T09:00:00+02:00", &["K1", "VC1"]),
            ev("f", "fast_vardkontakt", "2026-09-22T09:00:00+02:00", "VC2", json!({})),
            ev("x", "utskrivning", "2026-10-02T11:00:00+02:00", "AVD1", json!({})),
        ];
        v.extend(extra);
        v
    };
    let mote = |at: &str| ev("s", "sip_mote", at, "VC2", json!({}));
    let f = run(&case(vec![]), &vb, rule, "2026-12-01T00:00:00Z");
    assert_eq!(
        brief(&f),
        [(
            "VC2".into(),
            "2026-10-30T23:59:59+01:00".into(),
            "missing",
            "-".into(),
            None
        )]
    );
    assert_eq!(affected(&f[0]), ["K1"]);
    let as_of = "2026-12-01T00:00:00Z";
    assert!(run(&case(vec![mote("2026-10-30T23:59:59+01:00")]), &vb, rule, as_of).is_empty());
    assert_eq!(
        run(&case(vec![mote("2026-10-31T00:00:00+01:00")]), &vb, rule, as_of)[0].late_minutes,
        Some(0)
    );
    // A meeting held in hospital before the utskrivning counts.
    assert!(run(&case(vec![mote("2026-10-01T10:00:00+02:00")]), &vb, rule, as_of).is_empty());
    // A UK withdrawn before the due leaves no UK: no obligation.
    let withdrawn = case(vec![ev(
        "w",
        "atertag_utskrivningsklar",
        "2026-10-01T09:00:00+02:00",
        "AVD1",
        json!({"ref": "u"}),
    )]);
    assert!(run(&withdrawn, &vb, rule, as_of).is_empty());
    // SIP judged as of the utskrivning: a Nej before it ends the obligation.
    let nej = case(vec![ev(
        "b2",
        "behov_av_sip",
        "2026-10-01T09:00:00+02:00",
        "VC1",
        json!({"value": false}),
    )]);
    assert!(run(&nej, &vb, rule, as_of).is_empty());
    // The vårdcentral closing the case does not end it either (SIP chain).
    let closed = case(vec![ev("a", "avslut", "2026-10-03T09:00:00+02:00", "VC2", json!({}))]);
    assert_eq!(run(&closed, &vb, rule, as_of).len(), 1);
    // Not due yet on the 30th.
    assert!(run(&case(vec![]), &vb, rule, "2026-10-30T23:59:59+01:00").is_empty());
}

// ---- §4.8 im_efter_atertag

#[test]
fn a_withdrawn_uk_is_followed_by_a_new_im_the_same_day() {
    let rule = RuleId::ImEfterAtertag;
    let vb = Profile::vasterbotten();
    let case = |extra: Vec<Event>| {
        let mut v = vec![
            im("m", "2026-05-04T10:00:00+02:00", json!({})),
            uk("u", "2026-05-11T09:00:00+02:00", &["K1"]),
            ev(
                "w",
                "atertag_utskrivningsklar",
                "2026-05-11T15:00:00+02:00",
                "AVD2",
                json!({"ref": "u"}),
            ),
        ];
        v.extend(extra);
        v
    };
    let f = run(&case(vec![]), &vb, rule, T);
    assert_eq!(
        brief(&f),
        [(
            "AVD2".into(),
            "2026-05-11T23:59:59+02:00".into(),
            "missing",
            "-".into(),
            None
        )]
    );
    assert_eq!(affected(&f[0]), ["K1", "VC1"]);
    // An IM at the återtag's very second meets it; one the next second of the day too.
    assert!(run(
        &case(vec![im("m2", "2026-05-11T15:00:00+02:00", json!({}))]),
        &vb,
        rule,
        T
    )
    .is_empty());
    assert!(run(
        &case(vec![im("m2", "2026-05-11T23:59:59+02:00", json!({}))]),
        &vb,
        rule,
        T
    )
    .is_empty());
    assert_eq!(
        run(
            &case(vec![im("m2", "2026-05-12T00:00:00+02:00", json!({}))]),
            &vb,
            rule,
            T
        )[0]
        .late_minutes,
        Some(0)
    );
    // An IM before the återtag is not a new one.
    let before = case(vec![im("m2", "2026-05-11T14:59:59+02:00", json!({}))]);
    assert_eq!(run(&before, &vb, rule, T).len(), 1);
}

// ---- §4.8 beraknat_datum_passerat

#[test]
fn the_beraknat_datum_passes_without_a_new_im() {
    let rule = RuleId::BeraknatDatumPasserat;
    let vb = Profile::vasterbotten();
    let case = |extra: Vec<Event>| {
        let mut v = vec![
            ev("i", "inskrivning", "2026-05-04T09:00:00+02:00", "AVD1", json!({})),
            im("m", "2026-05-04T10:00:00+02:00", json!({"value": "2026-05-08"})),
        ];
        v.extend(extra);
        v
    };
    let f = run(&case(vec![]), &vb, rule, T);
    assert_eq!(
        brief(&f),
        [(
            "AVD1".into(),
            "2026-05-08T23:59:59+02:00".into(),
            "missing",
            "-".into(),
            None
        )]
    );
    assert_eq!(affected(&f[0]), ["K1", "VC1"]);
    let new_im = |at: &str| im("m2", at, json!({"value": "2026-05-12"}));
    let in_time = run(&case(vec![new_im("2026-05-08T23:59:59+02:00")]), &vb, rule, T);
    assert_eq!(
        in_time.iter().map(|f| f.due.to_rfc3339()).collect::<Vec<_>>(),
        ["2026-05-12T23:59:59+02:00"],
        "the 8th is met; the new date is due on its own"
    );
    // The new IM (dated 12 May) is late for the 8th and then due itself.
    let late = run(&case(vec![new_im("2026-05-09T00:00:00+02:00")]), &vb, rule, T);
    assert_eq!(
        brief(&late),
        [
            (
                "AVD1".into(),
                "2026-05-08T23:59:59+02:00".into(),
                "late",
                "2026-05-09T00:00:00+02:00".into(),
                Some(0)
            ),
            (
                "AVD1".into(),
                "2026-05-12T23:59:59+02:00".into(),
                "missing",
                "-".into(),
                None
            )
        ]
    );
    // A UK meets it, unless withdrawn before the due; so does the utskrivning.
    let by_uk = case(vec![uk("u", "2026-05-08T10:00:00+02:00", &["K1"])]);
    assert!(run(&by_uk, &vb, rule, T).is_empty());
    let withdrawn = case(vec![
        uk("u", "2026-05-08T10:00:00+02:00", &["K1"]),
        ev(
            "w",
            "atertag_utskrivningsklar",
            "2026-05-08T12:00:00+02:00",
            "AVD1",
            json!({"ref": "u"}),
        ),
    ]);
    assert_eq!(run(&withdrawn, &vb, rule, T).len(), 1);
    let out = case(vec![ev(
        "x",
        "utskrivning",
        "2026-05-08T18:00:00+02:00",
        "AVD1",
        json!({}),
    )]);
    assert!(run(&out, &vb, rule, T).is_empty());
    // The ward that holds the patient at the due answers for it.
    let moved = case(vec![ev(
        "o",
        "overflyttning",
        "2026-05-06T10:00:00+02:00",
        "AVD2",
        json!({}),
    )]);
    assert_eq!(units_of(&run(&moved, &vb, rule, T)), ["AVD2"]);
    let moved_after = case(vec![ev(
        "o",
        "overflyttning",
        "2026-05-09T00:00:00+02:00",
        "AVD2",
        json!({}),
    )]);
    assert_eq!(units_of(&run(&moved_after, &vb, rule, T)), ["AVD1"]);
}

#[test]
fn an_im_value_that_is_not_a_date_is_refused_naming_line_and_field() {
    let hasher = PatientHasher::new(Secret::new(b"k".to_vec()));
    for bad in [json!("8 maj"), json!("2026-02-30"), json!("2026-5-8"), json!(true)] {
        let obj = json!({"id": "m", "case": "C1", "type": "inskrivningsmeddelande",
            "at": "2026-05-04T10:00:00+02:00", "unit": "AVD1", "to": ["K1"], "value": bad});
        let err = Event::from_json(obj.as_object().unwrap(), 7, &hasher).unwrap_err();
        assert_eq!(err.len(), 1, "{bad}");
        let text = format!("{:?}", err[0]);
        assert!(
            text.contains("value") && text.contains('7') && text.contains("ÅÅÅÅ-MM-DD"),
            "{text}"
        );
    }
    // Without a value an IM is as before.
    assert!(im("m", "2026-05-04T10:00:00+02:00", json!({})).value.is_none());
}

// ---- §4.8 hemgang_dagen_efter

#[test]
fn blue_and_green_tracks_go_home_by_the_day_after_the_uk() {
    let rule = RuleId::HemgangDagenEfter;
    let vb = Profile::vasterbotten();
    let case = |track: &str, extra: Vec<Event>| {
        let mut v = vec![
            im("m", "2026-05-04T10:00:00+02:00", json!({})),
            ev(
                "s",
                "sparfarg",
                "2026-05-05T09:00:00+02:00",
                "AVD1",
                json!({"value": track}),
            ),
            uk("u", "2026-05-11T16:00:00+02:00", &["VC1", "K1", "K2"]),
        ];
        v.extend(extra);
        v
    };
    let home = |at: &str| ev("x", "utskrivning", at, "AVD1", json!({}));
    // The UK came Monday at 16:00: after the brytpunkt it counts from
    // Tuesday (dag 0, seed 002), so hemgång is due by Wednesday.
    let f = run(&case("bla", vec![]), &vb, rule, T);
    assert_eq!(
        brief(&f),
        [(
            "K1".into(),
            "2026-05-13T23:59:59+02:00".into(),
            "missing",
            "-".into(),
            None
        )],
        "responsible: the first kommun unit in the UK's to"
    );
    assert_eq!(affected(&f[0]), ["VC1", "K1", "K2"]);
    assert!(run(&case("gron", vec![home("2026-05-13T23:59:59+02:00")]), &vb, rule, T).is_empty());
    assert_eq!(
        run(&case("gron", vec![home("2026-05-14T00:00:00+02:00")]), &vb, rule, T)[0].late_minutes,
        Some(0)
    );
    // A UK before 12:00 counts from its own day.
    let mut morning = case("bla", vec![]);
    morning[2] = uk("u", "2026-05-11T11:59:59+02:00", &["K1"]);
    assert_eq!(
        run(&morning, &vb, rule, T)[0].due.to_rfc3339(),
        "2026-05-12T23:59:59+02:00"
    );
    // Gul and röd spår have no such limit.
    assert!(run(&case("gul", vec![]), &vb, rule, T).is_empty());
    // The track that counts is the latest at or before the UK.
    let changed = case(
        "gul",
        vec![ev(
            "s2",
            "sparfarg",
            "2026-05-11T17:00:00+02:00",
            "AVD1",
            json!({"value": "bla"}),
        )],
    );
    assert!(run(&changed, &vb, rule, T).is_empty());
    // A withdrawn UK starts nothing.
    let withdrawn = case(
        "bla",
        vec![ev(
            "w",
            "atertag_utskrivningsklar",
            "2026-05-12T10:00:00+02:00",
            "AVD1",
            json!({"ref": "u"}),
        )],
    );
    assert!(run(&withdrawn, &vb, rule, T).is_empty());
}

// ---- §4.9 profiles, §6 berörd part, §7 which kommun

#[test]
fn each_profile_switches_on_its_rules_and_names_its_routine() {
    let on = |p: &Profile| -> Vec<&str> { p.enabled.iter().map(|r| r.as_str()).collect() };
    let n = nat();
    assert!(n.enabled.contains(&RuleId::SamordningStangd));
    for r in [
        RuleId::BehovAvSipDokumenterat,
        RuleId::SamtyckeSipInskrivning,
        RuleId::SipMote,
        RuleId::ImEfterAtertag,
        RuleId::BeraknatDatumPasserat,
        RuleId::HemgangDagenEfter,
    ] {
        assert!(!n.enabled.contains(&r), "{} is off in nationell", r.as_str());
    }
    let og = Profile::ostergotland();
    assert!(on(&og).contains(&"behov_av_sip_dokumenterat") && on(&og).contains(&"samtycke_sip_inskrivning"));
    assert!(!on(&og).contains(&"sip_mote"));
    let vb = Profile::vasterbotten();
    for r in [
        "kvittens_inskrivningsmeddelande",
        "sip_mote",
        "im_efter_atertag",
        "beraknat_datum_passerat",
        "hemgang_dagen_efter",
        "samordning_stangd",
    ] {
        assert!(on(&vb).contains(&r), "{r} is on in vasterbotten");
    }
    assert!(n.routine.starts_with("Lag (2017:612)"));
    assert!(og.routine.starts_with("Länsgemensam riktlinje"));
    assert!(vb.routine.contains("Västerbottens län"));
    assert_eq!(vb.sip_mote_days, 28);
}

#[test]
fn the_kvittens_hurts_the_sender_and_the_im_its_recipients() {
    let events = sip_case(vec![]);
    let kv = run(&events, &nat(), RuleId::KvittensUtskrivningsklar, T);
    assert!(kv.iter().all(|f| affected(f) == ["AVD1"]), "the ward that sent the UK");
    let late_im = [
        ev("i", "inskrivning", "2026-05-01T09:00:00+02:00", "AVD1", json!({})),
        im("m", "2026-05-04T10:00:00+02:00", json!({})),
    ];
    let f = run(&late_im, &nat(), RuleId::Inskrivningsmeddelande24h, T);
    assert_eq!(affected(&f[0]), ["K1", "VC1"]);
}

#[test]
fn the_inskrivnings_kommun_wins_over_the_recipients() {
    let facts = |ins_extra: Value| {
        let events = vec![
            ev("i", "inskrivning", "2026-05-04T09:00:00+02:00", "AVD1", ins_extra),
            im("m", "2026-05-04T10:00:00+02:00", json!({})),
            uk("u", "2026-05-11T09:00:00+02:00", &["K2", "K1"]),
            ev("x", "utskrivning", "2026-05-12T11:00:00+02:00", "AVD1", json!({})),
        ];
        evaluate_recorded(&events, &units(), &nat(), &nat().case_rules(), t(T)).facts
    };
    assert_eq!(
        facts(json!({"kommun": "Norrköpings kommun"})).kommun.as_deref(),
        Some("Norrköpings kommun")
    );
    // Without it, the first kommun recipient's huvudman.
    assert_eq!(facts(json!({})).kommun.as_deref(), Some("Kommunen"));
    // `kommun` belongs on the inskrivning only.
    let hasher = PatientHasher::new(Secret::new(b"k".to_vec()));
    let obj = json!({"id": "x", "case": "C1", "type": "utskrivning", "at": "2026-05-04T10:00:00+02:00",
        "unit": "AVD1", "kommun": "Linköpings kommun"});
    let err = Event::from_json(obj.as_object().unwrap(), 3, &hasher).unwrap_err();
    assert!(format!("{err:?}").contains("kommun"), "{err:?}");
}

#[test]
fn every_rule_names_its_berord_part() {
    // fast_vardkontakt_saknas: the kommun units among the UK's and IMs' recipients.
    let f = run(&sip_case(vec![]), &nat(), RuleId::FastVardkontaktSaknas, T);
    assert_eq!(affected(&f[0]), ["K1"]);
    // utskrivningsklar_saknas: the IMs' recipients when no UK came.
    let no_uk = [
        im("m", "2026-05-04T10:00:00+02:00", json!({})),
        ev("x", "utskrivning", "2026-05-10T14:00:00+02:00", "AVD1", json!({})),
    ];
    let f = run(&no_uk, &nat(), RuleId::UtskrivningsklarSaknas, T);
    assert_eq!(affected(&f[0]), ["K1", "VC1"]);
    // bemanning_storhelg: none (staffing is the unit's own).
    let units = units();
    let mut tracker = svu_vakt::rules::bemanning::StaffingTracker::default();
    tracker.observe(
        &ev("i", "inskrivning", "2026-04-30T10:00:00+02:00", "AVD1", json!({})),
        &units,
        t(T),
    );
    let staffing = tracker.findings(&units, &svu_vakt::calendar::Calendar::new(), &nat(), t(T));
    assert!(!staffing.is_empty() && staffing.iter().all(|f| f.affected.is_empty()));
}
