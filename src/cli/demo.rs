//! `svu-vakt demo` and `serve --demo`: the synthetic county (`crate::demo`)
//! written to files or loaded into the database through the same
//! validation as any import, and the demo people with their passwords.

use std::io::Write;
use std::path::Path;

use super::import::ingest_error;
use crate::app_state;
use crate::config::Config;
use crate::demo::{self, DemoOptions};
use crate::ingest;
use crate::rules::{Profile, RuleId};
use crate::store::events::BatchOutcome;
use crate::store::tokens::{self, Role};
use crate::store::{self, units, DbConn};

/// The rules `serve --demo` runs when the config file names none: the
/// demo county is Östergötland's, so its profile, with the rules of the
/// rest of the guideline that other counties have switched on as well, so
/// that every rule's deviations and adherence can be seen.
pub(super) fn demo_rules(config: &Config) -> Config {
    let mut config = config.clone();
    if config.rules.profile.is_none() && config.rules.enabled.is_none() {
        let mut enabled: Vec<RuleId> = Profile::ostergotland().enabled.into_iter().collect();
        enabled.extend(DEMO_EXTRA_RULES);
        config.rules.profile = Some("ostergotland".into());
        config.rules.enabled = Some(enabled);
    }
    config
}

/// Switched on in the demo besides the `ostergotland` profile's rules.
const DEMO_EXTRA_RULES: [RuleId; 5] = [
    RuleId::KvittensInskrivningsmeddelande,
    RuleId::SipMote,
    RuleId::ImEfterAtertag,
    RuleId::BeraknatDatumPasserat,
    RuleId::HemgangDagenEfter,
];

/// Fills an empty database with the demo county and prints an admin token.
pub(super) fn prepare(config: &Config, cases: usize) -> anyhow::Result<()> {
    let state = app_state(config)?;
    let mut conn = state.pool.get()?;
    if store::events::count(&mut conn)? == 0 {
        let opts = DemoOptions {
            seed: 1,
            cases,
            from: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default(),
            to: chrono::NaiveDate::from_ymd_opt(2026, 12, 31).unwrap_or_default(),
        };
        load_demo(&mut conn, &state.hasher, &opts)?;
    }
    // The first scan now, not a quarter of an hour later: the pages show deviations at once.
    match state.scan(None, false) {
        Ok(s) => println!(
            "Första granskningen är klar: {} ärenden granskade, {} nya avvikelser.",
            s.counts.cases_evaluated, s.counts.filed
        ),
        Err(e) => println!("Första granskningen kunde inte köras nu ({e}); den schemalagda tar vid."),
    }
    let profile = config.profile()?;
    println!(
        "Regelprofil: {} ({} regler på: {}).",
        profile.name,
        profile.enabled.len(),
        profile
            .enabled
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "Demoanvändare (lösenorden visas bara nu; logga in på http://{}/login):",
        config.listen
    );
    let existing = crate::store::users::list(&mut conn)?;
    for (name, role, units) in DEMO_USERS {
        let password = crate::store::users::generate_password()?;
        let units: Vec<String> = units.iter().map(|u| u.to_string()).collect();
        match existing.iter().find(|u| u.username == *name) {
            None => {
                crate::store::users::create(&mut conn, name, &password, *role, &units, Some(DEMO_MARK))?;
            }
            // An earlier demo start made the user: a new password, printed again.
            Some(u) if u.email.as_deref() == Some(DEMO_MARK) => {
                crate::store::users::set_password(&mut conn, name, &password)?
            }
            // A real account by that name is never touched.
            Some(_) => {
                println!("  {name:<24} finns redan och är ingen demoanvändare: lämnas orörd");
                continue;
            }
        }
        println!("  {name:<24} {password}   ({})", demo_role_text(*role, &units));
    }
    let token = tokens::create(&mut conn, Role::Admin, None, Some("demo"))?;
    println!("Demodata finns i databasen. Admin-token för API:t:\n{token}");
    Ok(())
}

/// The e-mail that marks a user as made by `serve --demo`: only such users
/// get a new password on a later demo start.
const DEMO_MARK: &str = "demo@svu-vakt.invalid";

/// One demo person per role: a ward's handläggare, a kommun's hemtjänst
/// handläggare, the county's ledning and an admin.
const DEMO_USERS: &[(&str, Role, &[&str])] = &[
    ("handlaggare.avdelning", Role::Handlaggare, &["RO-VIN-MED-AVD1"]),
    ("handlaggare.hemtjanst", Role::Handlaggare, &["K-NORRKOPING-HT"]),
    ("ledning", Role::Ledning, &[]),
    ("admin", Role::Admin, &[]),
];

fn demo_role_text(role: Role, units: &[String]) -> String {
    match (role, units.first()) {
        (Role::Handlaggare, Some(u)) => format!("handläggare för {u}"),
        (Role::Ledning, _) => "ledning, hela länet".into(),
        (Role::Admin, _) => "administratör".into(),
        _ => role.as_str().into(),
    }
}

/// Writes DIR/units.json and DIR/events.jsonl.
pub fn demo_files(opts: &DemoOptions, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("units.json"), demo::units_json())?;
    let started = std::time::Instant::now();
    let file = std::fs::File::create(dir.join("events.jsonl"))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let n = demo::write_events(opts, &mut out)?;
    out.flush()?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{} ärenden, {n} händelser skrivna till {} på {secs:.2} s ({:.0} ärenden/s)",
        opts.cases,
        dir.display(),
        opts.cases as f64 / secs.max(1e-9)
    );
    Ok(())
}

pub fn demo_db(config: &Config, opts: &DemoOptions) -> anyhow::Result<()> {
    let state = app_state(config)?;
    let mut conn = state.pool.get()?;
    let total = load_demo(&mut conn, &state.hasher, opts)?;
    println!(
        "Demodata: {} ärenden, {} nya händelser, {} fanns redan",
        opts.cases, total.stored, total.duplicates
    );
    Ok(())
}

/// Units and events of the demo county, through the same validation as any import.
pub fn load_demo(
    conn: &mut DbConn,
    hasher: &crate::domain::PatientHasher,
    opts: &DemoOptions,
) -> anyhow::Result<BatchOutcome> {
    units::upsert(conn, &demo::units())?;
    let mut total = BatchOutcome::default();
    let per_chunk = 1000;
    let mut start = 0;
    while start < opts.cases {
        let n = per_chunk.min(opts.cases - start);
        let mut buf = Vec::new();
        demo::write_case_range(opts, start, n, &mut buf)?;
        let text = String::from_utf8(buf)?;
        let outcome = crate::store::events::store_parsed(conn, ingest::parse_events(&text, hasher), "demo")
            .map_err(|e| ingest_error(Path::new("demo"), e))?;
        total.add(outcome);
        start += n;
    }
    let mut buf = Vec::new();
    demo::write_staffing(opts, &mut buf)?;
    let outcome =
        crate::store::events::store_parsed(conn, ingest::parse_events(&String::from_utf8(buf)?, hasher), "demo")
            .map_err(|e| ingest_error(Path::new("demo"), e))?;
    total.add(outcome);
    Ok(total)
}
