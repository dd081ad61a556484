//! Filing on a SQLite file: a chunk's actions go to the database set by
//! set, in the same few kinds of statement however many deviations it
//! files, updates, reopens or withdraws; on SQLite a statement run per row
//! or per block of rows stays prepared, so only the set statements are
//! prepared per chunk.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, TimeZone, Utc};
use diesel::connection::{Connection, Instrumentation, InstrumentationEvent};

use super::*;
use crate::config::ScanConfig;
use crate::domain::handling::DeviationStatus;
use crate::domain::{CaseId, UnitId};
use crate::mail::templates::Templates;
use crate::mail::{MailConfig, SmtpUrl};
use crate::rules::{Profile, Status};
use crate::store::deviations::DeviationRow;

/// The statements a connection ran (their text, without the values) and
/// those it put in its statement cache.
#[derive(Default)]
struct Seen {
    run: Vec<String>,
    cached: HashSet<String>,
}

struct Recorder(Arc<Mutex<Seen>>);

impl Instrumentation for Recorder {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        let Ok(mut seen) = self.0.lock() else { return };
        match event {
            InstrumentationEvent::StartQuery { query, .. } => {
                let text = query.to_string();
                let sql = text.split(" -- binds:").next().unwrap_or_default().to_string();
                seen.run.push(sql);
            }
            InstrumentationEvent::CacheQuery { sql, .. } => {
                seen.cached.insert(sql.to_string());
            }
            _ => {}
        }
    }
}

fn due(case: usize) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 4, 8, 0, 0).single().unwrap_or_default() + Duration::minutes(case as i64)
}

/// An inskrivningsmeddelande of case `K<case>` late (done given) or missing.
fn finding(case: usize, done: Option<DateTime<Utc>>) -> Finding {
    let due = due(case);
    Finding {
        rule: RuleId::Inskrivningsmeddelande24h,
        case: Some(CaseId(format!("K{case}"))),
        unit: Some(UnitId("AVD1".into())),
        due: due.fixed_offset(),
        status: if done.is_some() { Status::Late } else { Status::Missing },
        done: done.map(|d| d.fixed_offset()),
        late_minutes: done.map(|d| (d - due).num_minutes()),
        affected: vec![UnitId(format!("AVD{}", case % 7))],
    }
}

fn auditor(pool: crate::store::Pool) -> Auditor {
    Auditor {
        pool,
        profile: Profile::by_name("nationell").unwrap(),
        scan: ScanConfig::parse("", 60, 14).unwrap(),
        mail: MailConfig {
            smtp_url: SmtpUrl(String::new()),
            from: "svu-vakt@example.se".into(),
            default_to: "avvikelser@example.se".into(),
            mode: MailMode::PerAvvikelse,
            base_url: "http://localhost".into(),
            templates_dir: None,
            deliver_every_seconds: 60,
            smtp_timeout_seconds: 10,
            webhook_timeout_seconds: 10,
            claim_seconds: 300,
            max_age_days: 0,
            routes: Vec::new(),
        },
        templates: Arc::new(Templates::load(None).unwrap()),
    }
}

/// Files `n` deviations of each kind of action on a fresh database: `n`
/// new, `n` whose facts changed, `n` withdrawn ones found again and `n`
/// mailed ones no finding supports.
fn file_each_kind(n: usize) -> Filed {
    let dir = tempfile::tempdir().unwrap();
    let pool = crate::store::pool(&crate::store::DbUrl::Sqlite(dir.path().join("f.db")), 1).unwrap();
    let mut conn = pool.get().unwrap();
    crate::store::migrate(&mut conn).unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    conn.set_instrumentation(Recorder(seen.clone()));
    let a = auditor(pool.clone());
    let units = Units::new(Vec::new());
    let active: HashSet<RuleId> = a.profile.enabled.iter().copied().collect();
    let filing = Filing {
        auditor: &a,
        units: &units,
        scan_id: 1,
        backfill: false,
        whole: false,
        mail_cutoff: DateTime::<Utc>::MIN_UTC,
        active: &active,
    };
    // Stored first, as a scan before this one left them.
    let missing: Vec<Finding> = (0..3 * n).map(|c| finding(c, None)).collect();
    let mut before = Counts::default();
    backend::write_tx(&mut conn, |c| filing.apply(c, &missing, Vec::new(), &mut before)).unwrap();
    let stored = deviations::all(&mut conn).unwrap();
    let (withdrawn, mailed): (Vec<&DeviationRow>, Vec<&DeviationRow>) =
        stored.iter().partition(|d| (n..2 * n).contains(&case_no(d)));
    deviations::set_status_many(&mut conn, &mailed, DeviationStatus::Skickad, "svu-vakt", None).unwrap();
    deviations::set_status_many(&mut conn, &withdrawn, DeviationStatus::Aterkallad, "svu-vakt", None).unwrap();

    // Now: cases 0..n turned late, n..2n found again, 2n..3n gone, 3n..4n new.
    let mut findings: Vec<Finding> = (0..n).map(|c| finding(c, Some(due(c) + Duration::hours(3)))).collect();
    findings.extend((n..2 * n).map(|c| finding(c, None)));
    findings.extend((3 * n..4 * n).map(|c| finding(c, None)));
    let existing = deviations::all(&mut conn).unwrap();
    let from = seen.lock().unwrap().run.len();
    let mut counts = Counts::default();
    backend::write_tx(&mut conn, |c| filing.apply(c, &findings, existing, &mut counts)).unwrap();
    // Taken out of the lock: the queries below report to it.
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let run = &seen.run[from..];
    let mut times: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for sql in run {
        *times.entry(sql.as_str()).or_default() += 1;
    }
    let all = deviations::all(&mut conn).unwrap();
    let ids: Vec<i64> = all.iter().map(|d| d.id).collect();
    Filed {
        kinds: times.len(),
        uncached_runs: times
            .into_iter()
            .filter(|(sql, _)| !seen.cached.contains(*sql))
            .map(|(_, n)| n)
            .sum(),
        counts,
        parties: deviations::parties_of(&mut conn, &ids).unwrap(),
        stepped: deviations::last_steps(&mut conn, &ids).unwrap().into_keys().collect(),
        deviations: all,
        mail: crate::store::outbox::all(&mut conn).unwrap(),
    }
}

/// What filing did, and what the database holds after it.
struct Filed {
    /// Different statements run (texts without the values).
    kinds: usize,
    /// Runs of statements not kept prepared (each prepared for its run).
    uncached_runs: usize,
    counts: Counts,
    deviations: Vec<DeviationRow>,
    /// Each deviation's berörda units.
    parties: std::collections::BTreeMap<i64, Vec<String>>,
    /// The deviations with a line of history.
    stepped: HashSet<i64>,
    mail: Vec<crate::store::outbox::MailRow>,
}

fn case_no(d: &DeviationRow) -> usize {
    d.case_id.as_deref().unwrap()[1..].parse().unwrap()
}

/// Each kind of action is done in the same few kinds of statement however
/// many deviations it holds, and on SQLite a statement run per row or per
/// block of rows is kept prepared: only the set statements (a bounded
/// number per chunk) are prepared for their one run (preparing was a sixth
/// of a first full scan). From a block's worth of rows on (`ROWS`, 32) the
/// blocks' statements join the one-row ones: none more after that.
#[test]
fn forty_or_a_hundred_deviations_of_each_kind_run_the_statements_three_do_each_prepared_once() {
    let few = file_each_kind(3);
    assert_eq!((few.counts.filed, few.counts.updated, few.counts.withdrawn), (6, 3, 3));
    let many = file_each_kind(40);
    assert_eq!(
        (many.counts.filed, many.counts.updated, many.counts.withdrawn),
        (80, 40, 40)
    );
    let more = file_each_kind(100);
    assert_eq!(more.counts.filed, 200);
    assert_eq!(
        many.kinds, more.kinds,
        "kinds of statement, 40 and 100 deviations of each kind"
    );
    assert!(
        few.kinds < many.kinds && many.kinds <= few.kinds + 4,
        "the blocks' statements (deviations, their ids, history, parties): {} and {}",
        few.kinds,
        many.kinds
    );
    assert_eq!(
        (few.uncached_runs, many.uncached_runs),
        (more.uncached_runs, more.uncached_runs),
        "statements prepared for one run, 3, 40 and 100 deviations of each kind"
    );
}

/// With 11 of each kind the first filing (33 deviations) goes through a
/// block of 32 rows and one alone, whose ids are read back: each
/// deviation's history and berörd part are its own.
#[test]
fn each_set_is_stored_as_its_action_says() {
    let n = 11;
    let filed = file_each_kind(n);
    let d = &filed.deviations;
    assert_eq!(d.len(), 4 * n);
    for d in d {
        let case = case_no(d);
        assert_eq!(
            filed.parties.get(&d.id),
            Some(&vec![format!("AVD{}", case % 7)]),
            "K{case}'s berörd part"
        );
        assert!(filed.stepped.contains(&d.id), "K{case} has its history line");
        let expected = match case / n {
            0 => ("skickad", "late", Some(180)),
            1 => ("ny", "missing", None),
            2 => ("aterkallad", "missing", None),
            _ => ("ny", "missing", None),
        };
        assert_eq!(
            (d.status.as_str(), d.finding_status.as_str(), d.late_minutes),
            expected,
            "K{case}"
        );
    }
    let kinds = |kind: outbox::MailKind| filed.mail.iter().filter(|m| m.kind == kind).count();
    // The first filing's reports (3n), the reopened and the new (2n); the
    // withdrawn were mailed, so each gets a notice.
    assert_eq!(kinds(outbox::MailKind::Avvikelse), 5 * n);
    assert_eq!(kinds(outbox::MailKind::Aterkallelse), n);
    let ids: HashSet<&str> = filed.mail.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids.len(), filed.mail.len(), "a Message-ID each");
    // In the order mail always queued: reopened reports, new reports, notices.
    let case_of = |m: &crate::store::outbox::MailRow| {
        let id = m.ids()[0];
        d.iter().find(|d| d.id == id).map(case_no).unwrap()
    };
    let order: Vec<usize> = filed.mail[3 * n..].iter().map(|m| case_of(m) / n).collect();
    let expected: Vec<usize> = [1, 3, 2].iter().flat_map(|k| std::iter::repeat_n(*k, n)).collect();
    assert_eq!(order, expected);
}
