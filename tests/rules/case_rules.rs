//! Per-case rules, table-driven, each edge to the second.

use serde_json::json;
use svu_vakt::rules::profile::SipSource;
use svu_vakt::rules::{Profile, RuleId};

use crate::fixtures::{brief, ev, nat, run};

const IM: RuleId = RuleId::Inskrivningsmeddelande24h;
const KV_UK: RuleId = RuleId::KvittensUtskrivningsklar;
const KALL: RuleId = RuleId::KallelseSip;

fn none() -> serde_json::Value {
    json!({})
}

// ---- 4.1 inskrivningsmeddelande_24h: "senast inom 24 timmar" (länsrutin, seed 002)

#[test]
fn im_exactly_24_hours_after_admission_is_met_across_each_daylight_saving_switch() {
    // (admission, the instant 24 h later as the wall clock shows it)
    let cases = [
        (
            "2026-03-28T10:00:00+01:00",
            "2026-03-29T11:00:00+02:00",
            "2026-03-29T11:00:01+02:00",
        ),
        (
            "2026-10-24T10:00:00+02:00",
            "2026-10-25T09:00:00+01:00",
            "2026-10-25T09:00:01+01:00",
        ),
        (
            "2026-03-29T01:30:00+01:00",
            "2026-03-30T02:30:00+02:00",
            "2026-03-30T02:30:01+02:00",
        ),
        (
            "2026-10-25T02:30:00+02:00",
            "2026-10-26T01:30:00+01:00",
            "2026-10-26T01:30:01+01:00",
        ),
    ];
    for (admit, due, one_second_late) in cases {
        let ins = ev("i", "inskrivning", admit, "AVD1", none());
        let on_time = [
            ins.clone(),
            ev("m", "inskrivningsmeddelande", due, "AVD1", json!({"to": ["K1"]})),
        ];
        assert!(
            nat(&on_time, IM, "2026-12-01T00:00:00Z").is_empty(),
            "IM at {due} is in time after {admit}"
        );
        let late = [
            ins,
            ev(
                "m",
                "inskrivningsmeddelande",
                one_second_late,
                "AVD1",
                json!({"to": ["K1"]}),
            ),
        ];
        let f = nat(&late, IM, "2026-12-01T00:00:00Z");
        assert_eq!(
            brief(&f),
            [("AVD1".into(), due.into(), "late", one_second_late.into(), Some(0))],
            "after {admit}"
        );
    }
}

#[test]
fn im_missing_late_and_not_yet_due() {
    let ins = ev("i", "inskrivning", "2026-05-04T08:00:00+02:00", "AVD1", none());
    // Not yet due at T = due: a finding needs due < T.
    assert!(nat(std::slice::from_ref(&ins), IM, "2026-05-05T08:00:00+02:00").is_empty());
    let f = nat(std::slice::from_ref(&ins), IM, "2026-05-05T08:00:01+02:00");
    assert_eq!(
        brief(&f),
        [(
            "AVD1".into(),
            "2026-05-05T08:00:00+02:00".into(),
            "missing",
            "-".into(),
            None
        )]
    );
    // An IM after T has not happened yet: still missing as of T.
    let im = ev(
        "m",
        "inskrivningsmeddelande",
        "2026-05-06T10:30:00+02:00",
        "AVD1",
        json!({"to": ["K1"]}),
    );
    let f = nat(&[ins.clone(), im.clone()], IM, "2026-05-06T10:00:00+02:00");
    assert_eq!(f[0].status, svu_vakt::rules::Status::Missing);
    let f = nat(&[ins, im], IM, "2026-05-07T00:00:00+02:00");
    assert_eq!(f[0].late_minutes, Some(26 * 60 + 30));
}

#[test]
fn a_case_without_inskrivning_has_no_im_finding() {
    let f = nat(
        &[ev(
            "u",
            "utskrivningsklar",
            "2026-05-04T08:00:00+02:00",
            "AVD1",
            json!({"to": ["K1"]}),
        )],
        IM,
        "2026-06-01T00:00:00Z",
    );
    assert!(f.is_empty());
}

#[test]
fn bedomning_moves_the_im_clock_to_the_later_assessment() {
    // "Om den behandlande läkaren först senare under vårdförloppet bedömer ... snarast efter bedömningen"
    let ins = ev("i", "inskrivning", "2026-05-04T08:00:00+02:00", "AVD1", none());
    let bed = ev("b", "bedomning", "2026-05-06T10:00:00+02:00", "AVD1", none());
    let im = |at| ev("m", "inskrivningsmeddelande", at, "AVD1", json!({"to": ["K1"]}));
    assert!(nat(
        &[ins.clone(), bed.clone(), im("2026-05-07T10:00:00+02:00")],
        IM,
        "2026-06-01T00:00:00Z"
    )
    .is_empty());
    let f = nat(
        &[ins.clone(), bed.clone(), im("2026-05-07T10:00:01+02:00")],
        IM,
        "2026-06-01T00:00:00Z",
    );
    assert_eq!(f[0].due.to_rfc3339(), "2026-05-07T10:00:00+02:00");
    // A bedömning before the admission does not move the clock back.
    let early = ev("b", "bedomning", "2026-05-03T10:00:00+02:00", "AVD1", none());
    let f = nat(&[ins, early], IM, "2026-06-01T00:00:00Z");
    assert_eq!(f[0].due.to_rfc3339(), "2026-05-05T08:00:00+02:00");
}

#[test]
fn an_overflyttning_never_starts_a_new_24_hours() {
    // "Patient överflyttad": the IM follows the patient.
    let events = [
        ev("i", "inskrivning", "2026-05-04T08:00:00+02:00", "AVD1", none()),
        ev("o", "overflyttning", "2026-05-05T04:00:00+02:00", "AVD2", none()),
        ev(
            "m",
            "inskrivningsmeddelande",
            "2026-05-05T14:00:00+02:00",
            "AVD2",
            json!({"to": ["K1"]}),
        ),
    ];
    let f = nat(&events, IM, "2026-06-01T00:00:00Z");
    assert_eq!(
        brief(&f),
        [(
            "AVD1".into(),
            "2026-05-05T08:00:00+02:00".into(),
            "late",
            "2026-05-05T14:00:00+02:00".into(),
            Some(360)
        )]
    );
}

// ---- 4.3 kvittens_utskrivningsklar: brytpunkt 12:00, "oavsett vardag eller helgdag"

fn uk(id: &str, at: &str, to: &[&str]) -> svu_vakt::domain::Event {
    ev(id, "utskrivningsklar", at, "AVD1", json!({"to": to}))
}

fn kv(id: &str, at: &str, unit: &str, r: &str) -> svu_vakt::domain::Event {
    ev(id, "kvittens", at, unit, json!({"ref": r}))
}

#[test]
fn a_uk_at_11_59_59_is_due_the_same_day_and_at_12_00_00_the_next() {
    let table = [
        ("2026-05-08T11:59:59+02:00", "2026-05-08T23:59:59+02:00"),
        ("2026-05-08T12:00:00+02:00", "2026-05-09T23:59:59+02:00"),
        // A Saturday and a holiday count like any day.
        ("2026-06-20T09:00:00+02:00", "2026-06-20T23:59:59+02:00"),
        // The evening of the autumn switch: dag 0 is the next day.
        ("2026-10-25T13:00:00+01:00", "2026-10-26T23:59:59+01:00"),
        // 11:30 UTC is 12:30 in Stockholm in winter: after the brytpunkt.
        ("2026-01-15T11:30:00Z", "2026-01-16T23:59:59+01:00"),
    ];
    for (sent, due) in table {
        let f = nat(&[uk("u", sent, &["K1"])], KV_UK, "2026-12-31T00:00:00Z");
        assert_eq!(
            brief(&f),
            [("K1".into(), due.into(), "missing", "-".into(), None)],
            "UK sent {sent}"
        );
    }
}

#[test]
fn a_kvittens_at_23_59_59_is_in_time_and_at_00_00_00_late() {
    let u = uk("u", "2026-05-08T10:00:00+02:00", &["K1"]);
    assert!(nat(
        &[u.clone(), kv("k", "2026-05-08T23:59:59+02:00", "K1", "u")],
        KV_UK,
        "2026-06-01T00:00:00Z"
    )
    .is_empty());
    let f = nat(
        &[u, kv("k", "2026-05-09T00:00:00+02:00", "K1", "u")],
        KV_UK,
        "2026-06-01T00:00:00Z",
    );
    assert_eq!(
        brief(&f),
        [(
            "K1".into(),
            "2026-05-08T23:59:59+02:00".into(),
            "late",
            "2026-05-09T00:00:00+02:00".into(),
            Some(0)
        )]
    );
}

#[test]
fn a_kvittens_with_the_wrong_ref_or_by_another_unit_does_not_count() {
    let u = uk("u", "2026-05-08T10:00:00+02:00", &["K1", "VC1"]);
    let events = [
        u,
        kv("k1", "2026-05-08T11:00:00+02:00", "K1", "other-message"),
        // VC2 is not a recipient: its kvittens neither helps nor is owed.
        kv("k2", "2026-05-08T11:00:00+02:00", "VC2", "u"),
        kv("k3", "2026-05-08T11:00:00+02:00", "VC1", "u"),
    ];
    let f = nat(&events, KV_UK, "2026-06-01T00:00:00Z");
    assert_eq!(
        brief(&f),
        [(
            "K1".into(),
            "2026-05-08T23:59:59+02:00".into(),
            "missing",
            "-".into(),
            None
        )]
    );
}

#[test]
fn a_uk_without_recipients_is_owed_by_everyone_the_ims_went_to() {
    let events = [
        ev(
            "m1",
            "inskrivningsmeddelande",
            "2026-05-04T10:00:00+02:00",
            "AVD1",
            json!({"to": ["K1", "VC1"]}),
        ),
        ev(
            "m2",
            "inskrivningsmeddelande",
            "2026-05-05T10:00:00+02:00",
            "AVD1",
            json!({"to": ["K2", "K1"]}),
        ),
        uk("u", "2026-05-08T10:00:00+02:00", &[]),
        kv("k", "2026-05-08T11:00:00+02:00", "VC1", "u"),
    ];
    let units: Vec<String> = nat(&events, KV_UK, "2026-06-01T00:00:00Z")
        .iter()
        .map(|f| f.unit.clone().unwrap().0)
        .collect();
    assert_eq!(units, ["K1", "K2"]);
}

// ---- 4.5 withdrawn UK

#[test]
fn a_uk_withdrawn_before_its_due_yields_nothing_and_after_its_due_stays() {
    let u = uk("u", "2026-05-08T10:00:00+02:00", &["K1"]);
    let back = |at| ev("w", "atertag_utskrivningsklar", at, "AVD1", json!({"ref": "u"}));
    assert!(nat(
        &[u.clone(), back("2026-05-08T23:59:58+02:00")],
        KV_UK,
        "2026-06-01T00:00:00Z"
    )
    .is_empty());
    // Withdrawn exactly at the due is not before it.
    assert_eq!(
        nat(
            &[u.clone(), back("2026-05-08T23:59:59+02:00")],
            KV_UK,
            "2026-06-01T00:00:00Z"
        )
        .len(),
        1
    );
    assert_eq!(
        nat(
            &[u.clone(), back("2026-05-09T08:00:00+02:00")],
            KV_UK,
            "2026-06-01T00:00:00Z"
        )
        .len(),
        1
    );
    // A withdrawal after T has not happened yet.
    assert_eq!(
        nat(
            &[u, back("2026-05-08T20:00:00+02:00")],
            KV_UK,
            "2026-05-08T19:00:00+02:00"
        )
        .len(),
        0,
        "not yet due"
    );
}

#[test]
fn a_second_uk_after_a_withdrawal_starts_its_own_clocks() {
    let events = [
        uk("u1", "2026-05-08T10:00:00+02:00", &["K1"]),
        ev(
            "w",
            "atertag_utskrivningsklar",
            "2026-05-08T15:00:00+02:00",
            "AVD1",
            json!({"ref": "u1"}),
        ),
        uk("u2", "2026-05-11T13:00:00+02:00", &["K1"]),
        ev(
            "b",
            "behov_av_sip",
            "2026-05-05T10:00:00+02:00",
            "VC1",
            json!({"value": true}),
        ),
    ];
    let f = nat(&events, KV_UK, "2026-06-01T00:00:00Z");
    assert_eq!(
        brief(&f),
        [(
            "K1".into(),
            "2026-05-12T23:59:59+02:00".into(),
            "missing",
            "-".into(),
            None
        )]
    );
    // The kallelse of the withdrawn UK is cancelled too; the new UK's is owed.
    let f = nat(&events, KALL, "2026-06-01T00:00:00Z");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].due.to_rfc3339(), "2026-05-14T23:59:59+02:00");
}

// ---- 4.2 kallelse_sip: "senast tre dagar efter det att en underrättelse om att patienten är utskrivningsklar har lämnats"

fn sip_case(extra: Vec<svu_vakt::domain::Event>) -> Vec<svu_vakt::domain::Event> {
    let mut v = vec![
        ev(
            "m",
            "inskrivningsmeddelande",
            "2026-05-04T10:00:00+02:00",
            "AVD1",
            json!({"to": ["K1", "VC1"]}),
        ),
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

fn kallelse(at: &str) -> svu_vakt::domain::Event {
    ev("s", "kallelse_sip", at, "VC1", json!({"to": ["K1"]}))
}

#[test]
fn kallelse_is_due_at_the_end_of_the_third_day_after_the_uk() {
    let t = "2026-06-01T00:00:00Z";
    assert!(nat(&sip_case(vec![kallelse("2026-05-14T23:59:59+02:00")]), KALL, t).is_empty());
    let f = nat(&sip_case(vec![kallelse("2026-05-15T00:00:00+02:00")]), KALL, t);
    assert_eq!(
        brief(&f),
        [(
            "VC1".into(),
            "2026-05-14T23:59:59+02:00".into(),
            "late",
            "2026-05-15T00:00:00+02:00".into(),
            Some(0)
        )]
    );
    // A kallelse before the UK counts: SIP may be held in hospital first.
    assert!(nat(&sip_case(vec![kallelse("2026-05-06T10:00:00+02:00")]), KALL, t).is_empty());
}

#[test]
fn kallelse_is_owed_only_when_sip_is_needed_and_not_refused() {
    let t = "2026-06-01T00:00:00Z";
    let samtycke = |id, at, v: bool| ev(id, "samtycke_sip", at, "AVD1", json!({"value": v}));
    assert_eq!(nat(&sip_case(vec![]), KALL, t).len(), 1);
    assert!(nat(
        &sip_case(vec![samtycke("n", "2026-05-04T12:00:00+02:00", false)]),
        KALL,
        t
    )
    .is_empty());
    // The latest samtycke decides.
    let changed = vec![
        samtycke("n", "2026-05-04T12:00:00+02:00", false),
        samtycke("y", "2026-05-06T12:00:00+02:00", true),
    ];
    assert_eq!(nat(&sip_case(changed), KALL, t).len(), 1);
    // The latest behov decides: a later Nej means no kallelse is owed.
    let nej = ev(
        "b2",
        "behov_av_sip",
        "2026-05-07T09:00:00+02:00",
        "VC1",
        json!({"value": false}),
    );
    assert!(nat(&sip_case(vec![nej]), KALL, t).is_empty());
    // Spårfärg gul or röd makes SIP needed; grön or blå does not.
    let base = |c: &str| {
        vec![
            ev(
                "m",
                "inskrivningsmeddelande",
                "2026-05-04T10:00:00+02:00",
                "AVD1",
                json!({"to": ["VC1"]}),
            ),
            ev(
                "f",
                "sparfarg",
                "2026-05-05T09:00:00+02:00",
                "AVD1",
                json!({"value": c}),
            ),
            uk("u", "2026-05-11T16:00:00+02:00", &["VC1"]),
        ]
    };
    assert_eq!(nat(&base("gul"), KALL, t).len(), 1);
    assert_eq!(nat(&base("rod"), KALL, t).len(), 1);
    assert!(nat(&base("gron"), KALL, t).is_empty());
    assert!(nat(&base("bla"), KALL, t).is_empty());
    // A profile may count behov av SIP only.
    let mut p = Profile::nationell();
    p.sip_sources = [SipSource::BehovAvSip].into();
    assert!(run(&base("rod"), &p, KALL, t).is_empty());
}

#[test]
fn kallelse_responsibility_follows_the_fast_vardkontakt() {
    let t = "2026-06-01T00:00:00Z";
    let fvk = |id, at, unit| ev(id, "fast_vardkontakt", at, unit, json!({}));
    let unit_of = |extra| nat(&sip_case(extra), KALL, t)[0].unit.clone().map(|u| u.0);
    // None recorded: the first öppenvård unit among the first IM's recipients.
    assert_eq!(unit_of(vec![]), Some("VC1".into()));
    // The latest at or before the due.
    assert_eq!(
        unit_of(vec![
            fvk("f1", "2026-05-05T10:00:00+02:00", "VC2"),
            fvk("f2", "2026-05-20T10:00:00+02:00", "VC1")
        ]),
        Some("VC2".into())
    );
    // Only after the due: the latest at all.
    assert_eq!(
        unit_of(vec![fvk("f1", "2026-05-20T10:00:00+02:00", "VC2")]),
        Some("VC2".into())
    );
    // No fast vårdkontakt and no öppenvård recipient: nobody (routing falls back).
    let events = vec![
        ev(
            "m",
            "inskrivningsmeddelande",
            "2026-05-04T10:00:00+02:00",
            "AVD1",
            json!({"to": ["K1", "VC-OKAND"]}),
        ),
        ev(
            "b",
            "behov_av_sip",
            "2026-05-05T09:00:00+02:00",
            "K1",
            json!({"value": true}),
        ),
        uk("u", "2026-05-11T16:00:00+02:00", &["K1"]),
    ];
    assert_eq!(nat(&events, KALL, t)[0].unit, None);
}

#[test]
fn fast_vardkontakt_saknas_is_due_with_the_kallelse() {
    let t = "2026-06-01T00:00:00Z";
    let f = nat(&sip_case(vec![]), RuleId::FastVardkontaktSaknas, t);
    assert_eq!(
        brief(&f),
        [(
            "VC1".into(),
            "2026-05-14T23:59:59+02:00".into(),
            "missing",
            "-".into(),
            None
        )]
    );
    let fvk = ev("f", "fast_vardkontakt", "2026-05-14T23:59:59+02:00", "VC2", json!({}));
    assert!(nat(&sip_case(vec![fvk]), RuleId::FastVardkontaktSaknas, t).is_empty());
    let late = ev("f", "fast_vardkontakt", "2026-05-16T08:00:00+02:00", "VC2", json!({}));
    assert_eq!(
        nat(&sip_case(vec![late]), RuleId::FastVardkontaktSaknas, t)[0].late_minutes,
        Some(32 * 60)
    );
}

// ---- 4.6 utskrivningsklar_saknas and avslut

#[test]
fn utskrivning_without_a_uk_before_it() {
    let t = "2026-06-01T00:00:00Z";
    let ut = ev("x", "utskrivning", "2026-05-10T14:00:00+02:00", "AVD2", json!({}));
    let f = nat(std::slice::from_ref(&ut), RuleId::UtskrivningsklarSaknas, t);
    assert_eq!(
        brief(&f),
        [(
            "AVD2".into(),
            "2026-05-10T14:00:00+02:00".into(),
            "missing",
            "-".into(),
            None
        )]
    );
    assert!(nat(
        &[ut.clone(), uk("u", "2026-05-10T14:00:00+02:00", &["K1"])],
        RuleId::UtskrivningsklarSaknas,
        t
    )
    .is_empty());
    let f = nat(
        &[ut, uk("u", "2026-05-10T15:30:00+02:00", &["K1"])],
        RuleId::UtskrivningsklarSaknas,
        t,
    );
    assert_eq!(f[0].late_minutes, Some(90));
}

#[test]
fn avslut_cancels_every_obligation_due_after_it() {
    let t = "2026-06-01T00:00:00Z";
    let events = |avslut_at| {
        vec![
            ev("i", "inskrivning", "2026-05-04T08:00:00+02:00", "AVD1", json!({})),
            uk("u", "2026-05-05T10:00:00+02:00", &["K1"]),
            ev("a", "avslut", avslut_at, "AVD1", json!({"value": "avliden"})),
        ]
    };
    // Dead at 20:00 the UK's day: the kvittens (due 23:59:59) is cancelled, the IM (due 08:00 the 5th) is not.
    let e = events("2026-05-05T20:00:00+02:00");
    assert!(nat(&e, KV_UK, t).is_empty());
    assert_eq!(nat(&e, IM, t).len(), 1);
    // An avslut exactly at the due does not cancel it.
    let e = events("2026-05-05T08:00:00+02:00");
    assert_eq!(nat(&e, IM, t).len(), 1);
    let e = events("2026-05-05T07:59:59+02:00");
    assert!(nat(&e, IM, t).is_empty());
}

// ---- profiles

#[test]
fn vasterbotten_wants_the_kallelse_on_dag_0() {
    // "kallelse ... senast vid utskrivningsklardatum", with the 12:00 brytpunkt.
    let t = "2026-06-01T00:00:00Z";
    let vb = Profile::vasterbotten();
    let f = run(&sip_case(vec![]), &vb, KALL, t);
    assert_eq!(
        f[0].due.to_rfc3339(),
        "2026-05-12T23:59:59+02:00",
        "UK at 16:00: dag 0 is the next day"
    );
    let mut morning = sip_case(vec![]);
    morning[2] = uk("u", "2026-05-11T09:00:00+02:00", &["K1", "VC1"]);
    assert_eq!(
        run(&morning, &vb, KALL, t)[0].due.to_rfc3339(),
        "2026-05-11T23:59:59+02:00"
    );
    assert_eq!(
        run(&morning, &Profile::nationell(), KALL, t)[0].due.to_rfc3339(),
        "2026-05-14T23:59:59+02:00"
    );
}

#[test]
fn kvittens_of_the_im_is_a_vasterbotten_rule() {
    // "Inskrivningsmeddelande kvitteras och besvaras av adresserade enheter ... alla dagar."
    assert!(Profile::vasterbotten()
        .enabled
        .contains(&RuleId::KvittensInskrivningsmeddelande));
    assert!(!Profile::nationell()
        .enabled
        .contains(&RuleId::KvittensInskrivningsmeddelande));
    assert!(!Profile::ostergotland()
        .enabled
        .contains(&RuleId::KvittensInskrivningsmeddelande));
    let events = [
        ev(
            "m",
            "inskrivningsmeddelande",
            "2026-05-04T12:00:00+02:00",
            "AVD1",
            json!({"to": ["K1", "VC1"]}),
        ),
        kv("k", "2026-05-05T23:59:59+02:00", "K1", "m"),
        kv("k2", "2026-05-06T00:00:30+02:00", "VC1", "m"),
    ];
    let f = run(
        &events,
        &Profile::vasterbotten(),
        RuleId::KvittensInskrivningsmeddelande,
        "2026-06-01T00:00:00Z",
    );
    assert_eq!(
        brief(&f),
        [(
            "VC1".into(),
            "2026-05-05T23:59:59+02:00".into(),
            "late",
            "2026-05-06T00:00:30+02:00".into(),
            Some(0)
        )]
    );
}

#[test]
fn offsets_do_not_matter_only_instants_do() {
    let t = "2026-06-01T00:00:00Z";
    let local = [
        ev("i", "inskrivning", "2026-05-04T08:00:00+02:00", "AVD1", json!({})),
        ev(
            "m",
            "inskrivningsmeddelande",
            "2026-05-05T09:30:00+02:00",
            "AVD1",
            json!({"to": ["K1"]}),
        ),
    ];
    let mixed = [
        ev("i", "inskrivning", "2026-05-04T06:00:00Z", "AVD1", json!({})),
        ev(
            "m",
            "inskrivningsmeddelande",
            "2026-05-05T07:30:00+00:00",
            "AVD1",
            json!({"to": ["K1"]}),
        ),
    ];
    let (a, b) = (nat(&local, IM, t), nat(&mixed, IM, t));
    assert_eq!(a[0].due, b[0].due);
    assert_eq!(a[0].late_minutes, Some(90));
    assert_eq!(b[0].late_minutes, Some(90));
    assert_eq!(
        b[0].due.to_rfc3339(),
        "2026-05-05T08:00:00+02:00",
        "due is shown in Stockholm time"
    );
    assert_eq!(
        b[0].done.unwrap().to_rfc3339(),
        "2026-05-05T07:30:00+00:00",
        "done keeps the event's own offset"
    );
}

// ---- Order: `check` reads a file in its order, the scan the database in (at, id) order.

#[test]
fn events_at_the_same_instant_are_judged_the_same_in_any_input_order() {
    // Two UKs at the same second, to different units; one kvittens only.
    let a = ev(
        "uk-a",
        "utskrivningsklar",
        "2026-05-08T10:00:00+02:00",
        "AVD1",
        json!({"to": ["K1"]}),
    );
    let b = ev(
        "uk-b",
        "utskrivningsklar",
        "2026-05-08T10:00:00+02:00",
        "AVD1",
        json!({"to": ["K1-HT"]}),
    );
    let k = ev(
        "k",
        "kvittens",
        "2026-05-08T11:00:00+02:00",
        "K1",
        json!({"ref": "uk-a"}),
    );
    let forward = nat(&[a.clone(), b.clone(), k.clone()], KV_UK, "2026-05-10T00:00:00+02:00");
    let backward = nat(&[k, b, a], KV_UK, "2026-05-10T00:00:00+02:00");
    assert_eq!(brief(&forward), brief(&backward));
    assert_eq!(forward.len(), 1, "K1-HT never acknowledged uk-b");
}
