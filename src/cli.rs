//! What the subcommands do, callable from tests. Output for people on the
//! terminal is Swedish; a token is printed alone on its last line so scripts
//! can take it with `tail -n1`.

use std::io::Write;
use std::path::Path;

use crate::config::Config;
use crate::demo::{self, DemoOptions};
use crate::ingest::{self, csv_mapping::CsvMapping, IngestError};
use crate::rules::RuleId;
use crate::store::events::BatchOutcome;
use crate::store::tokens::{self, Role};
use crate::store::{self, units, DbConn};
use crate::{app_state, Application};

pub fn serve(config: &Config, demo: bool, demo_cases: usize) -> anyhow::Result<()> {
    if demo {
        prepare_demo(config, demo_cases)?;
    }
    actix_web::rt::System::new().block_on(async {
        let app = Application::build(config)?;
        tracing::info!(port = app.port(), database = %store::redact_url(&config.database_url_text), "svu-vakt lyssnar");
        app.run().await?;
        Ok(())
    })
}

/// Fills an empty database with the demo county and prints an admin token.
fn prepare_demo(config: &Config, cases: usize) -> anyhow::Result<()> {
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

pub fn migrate(config: &Config) -> anyhow::Result<()> {
    let pool = store::pool(&config.database_url, 1)?;
    let applied = store::migrate(&mut *pool.get()?)?;
    println!(
        "Migreringar körda: {}",
        if applied.is_empty() {
            "inga nya".into()
        } else {
            applied.join(", ")
        }
    );
    Ok(())
}

/// `svu-vakt backup --to FILE`.
pub fn backup(config: &Config, to: &Path) -> anyhow::Result<()> {
    if let store::DbUrl::Sqlite(path) = &config.database_url {
        // Opening would create an empty database at a mistyped path.
        anyhow::ensure!(path.is_file(), "databasen {} finns inte", path.display());
    }
    let pool = store::pool(&config.database_url, 1)?;
    let counts = store::backup::backup(&mut *pool.get()?, to)?;
    println!("Säkerhetskopia skriven: {}", to.display());
    print_counts(&counts);
    Ok(())
}

/// `svu-vakt restore --from FILE`: into the configured SQLite database,
/// which must not exist; then its migrations.
pub fn restore(config: &Config, from: &Path) -> anyhow::Result<()> {
    let store::DbUrl::Sqlite(path) = &config.database_url else {
        anyhow::bail!("restore gäller SQLite; en PostgreSQL-databas återställs med pg_restore (se docs/OPERATIONS.md)");
    };
    let counts = store::backup::restore(from, path)?;
    let pool = store::pool(&config.database_url, 1)?;
    let applied = store::migrate(&mut *pool.get()?)?;
    println!("Återställd: {} från {}", path.display(), from.display());
    if !applied.is_empty() {
        println!("Migreringar körda: {}", applied.join(", "));
    }
    print_counts(&counts);
    Ok(())
}

/// `svu-vakt batches`: the ingest log, newest first.
pub fn batches(config: &Config, source: Option<&str>, limit: i64) -> anyhow::Result<()> {
    let state = app_state(config)?;
    let rows = store::events::recent_batches(&mut *state.pool.get()?, source, limit.clamp(1, 10_000))?;
    println!(
        "{:>8}  {:<22} {:>8} {:>8} {:>8}  källa",
        "batch", "mottagen", "rader", "nya", "fanns"
    );
    for b in rows {
        println!(
            "{:>8}  {:<22} {:>8} {:>8} {:>8}  {}",
            b.id,
            crate::audit::report::local_text(b.received_at),
            b.lines,
            b.stored,
            b.duplicates,
            b.source
        );
    }
    Ok(())
}

/// `svu-vakt remove-batch --batch N [--yes]`.
pub fn remove_batch(config: &Config, batch: i64, yes: bool) -> anyhow::Result<()> {
    let state = app_state(config)?;
    let mut conn = state.pool.get()?;
    let (events, cases) = store::events::batch_content(&mut conn, batch)?;
    anyhow::ensure!(
        events > 0,
        "batch {batch} har inga händelser (finns den? se `svu-vakt batches`)"
    );
    let shown: Vec<&str> = cases.iter().take(20).map(String::as_str).collect();
    println!(
        "Batch {batch}: {events} händelser i {} ärenden: {}{}",
        cases.len(),
        shown.join(", "),
        if cases.len() > 20 { ", …" } else { "" }
    );
    if !yes {
        println!("Inget borttaget. Kör igen med --yes för att ta bort dem; nästa granskning bedömer ärendena på nytt.");
        return Ok(());
    }
    let removed = store::events::remove_batches(&mut conn, &[batch])?;
    tracing::warn!(batch = batch, events = removed, "inläsningsbatch borttagen av driften");
    println!(
        "Borttaget: {removed} händelser. Nästa granskning bedömer {} ärenden på nytt; avvikelser som inte längre gäller återkallas.",
        cases.len()
    );
    Ok(())
}

/// `svu-vakt copy --from sqlite://… --to postgres://…`.
pub fn copy(from: &str, to: &str) -> anyhow::Result<()> {
    let store::DbUrl::Sqlite(path) = store::DbUrl::parse(from)? else {
        anyhow::bail!("--from ska vara en SQLite-databas (sqlite://…)");
    };
    let target = store::DbUrl::parse(to)?;
    let store::DbUrl::Postgres(url) = &target else {
        anyhow::bail!("--to ska vara en PostgreSQL-databas (postgres://…)");
    };
    let started = std::time::Instant::now();
    let tables = store::copy::copy(&path, url)?;
    println!(
        "Kopierad: {} till {:?} på {:.1} s; varje tabell kontrollerad",
        path.display(),
        target,
        started.elapsed().as_secs_f64()
    );
    println!("  {:<28} {:>10}       kontrollsumma (SHA-256)", "tabell", "rader");
    for t in &tables {
        println!("  {:<28} {:>10} rader {}", t.table, t.rows, t.checksum);
    }
    Ok(())
}

fn print_counts(counts: &[(String, i64)]) {
    for (table, n) in counts {
        println!("  {table:<28} {n:>10} rader");
    }
}

pub fn token_create(config: &Config, role: &str, unit: Option<&str>, label: Option<&str>) -> anyhow::Result<()> {
    let role = Role::parse(role)
        .ok_or_else(|| anyhow::anyhow!("okänd roll `{role}`: admin, ledning, handlaggare eller inlasning"))?;
    let state = app_state(config)?;
    let token = tokens::create(&mut *state.pool.get()?, role, unit, label)?;
    println!("Ny token för rollen {} (visas bara nu):\n{token}", role.as_str());
    Ok(())
}

/// The password from standard input (first line), or a generated one that is printed.
fn password_from_stdin() -> anyhow::Result<(String, bool)> {
    use std::io::{BufRead, IsTerminal};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        let pw = line.trim_end_matches(['\r', '\n']).to_string();
        if !pw.is_empty() {
            return Ok((pw, false));
        }
    }
    Ok((crate::store::users::generate_password()?, true))
}

pub fn user_create(
    config: &Config,
    username: &str,
    role: &str,
    units: &[String],
    email: Option<&str>,
    hsa_id: Option<&str>,
) -> anyhow::Result<()> {
    let role = person_role(role)?;
    if let Some(h) = hsa_id {
        anyhow::ensure!(
            crate::store::users::valid_hsa_id(h),
            "HSA-id {h} har fel form (t.ex. SE2321000016-1234)"
        );
    }
    let state = app_state(config)?;
    let (password, generated) = password_from_stdin()?;
    let mut conn = state.pool.get()?;
    crate::store::users::create(&mut conn, username, &password, role, units, email)?;
    if let Some(h) = hsa_id {
        let change = crate::store::users::Change {
            hsa_id: Some(Some(h.to_string())),
            ..Default::default()
        };
        if let Err(e) = crate::store::users::update(&mut conn, username, &change) {
            // Made but not linked: say so, and how to finish.
            anyhow::bail!(
                "användaren {username} skapades men fick inget HSA-id: {e:#} (rätta med `svu-vakt user update`)"
            );
        }
    }
    println!("Användaren {username} ({}) är skapad.", role.as_str());
    if generated {
        println!("Lösenord (visas bara nu):\n{password}");
    }
    Ok(())
}

fn person_role(role: &str) -> anyhow::Result<Role> {
    Role::parse(role)
        .filter(|r| *r != Role::Inlasning)
        .ok_or_else(|| anyhow::anyhow!("okänd roll `{role}` för en person: admin, ledning eller handlaggare"))
}

pub fn user_update(
    config: &Config,
    username: &str,
    role: Option<&str>,
    units: Vec<String>,
    hsa_id: Option<Option<String>>,
) -> anyhow::Result<()> {
    let change = crate::store::users::Change {
        role: role.map(person_role).transpose()?,
        units: (!units.is_empty()).then_some(units),
        hsa_id,
    };
    anyhow::ensure!(
        change.role.is_some() || change.units.is_some() || change.hsa_id.is_some(),
        "inget att ändra: ange --role, --unit, --hsa-id eller --no-hsa-id"
    );
    let state = app_state(config)?;
    let mut conn = state.pool.get()?;
    crate::store::users::update(&mut conn, username, &change)?;
    let u = crate::store::users::list(&mut conn)?
        .into_iter()
        .find(|u| u.username == username)
        .ok_or_else(|| anyhow::anyhow!("ingen användare heter {username}"))?;
    println!(
        "Användaren {username}: {}, enheter: {}, HSA-id: {}.",
        u.role,
        if u.units.is_empty() {
            "inga".to_string()
        } else {
            u.units.join(", ")
        },
        u.hsa_id.as_deref().unwrap_or("inget")
    );
    Ok(())
}

pub fn user_disable(config: &Config, username: &str) -> anyhow::Result<()> {
    let state = app_state(config)?;
    crate::store::users::disable(&mut *state.pool.get()?, username)?;
    println!("Användaren {username} är avstängd och utloggad.");
    Ok(())
}

pub fn user_passwd(config: &Config, username: &str) -> anyhow::Result<()> {
    let state = app_state(config)?;
    let (password, generated) = password_from_stdin()?;
    crate::store::users::set_password(&mut *state.pool.get()?, username, &password)?;
    println!("Nytt lösenord för {username}; tidigare inloggningar är avslutade.");
    if generated {
        println!("Lösenord (visas bara nu):\n{password}");
    }
    Ok(())
}

/// `import` without the lines for people: the events stored (for `bench`).
pub fn import_quiet(
    services: &crate::service::Services,
    units_file: Option<&Path>,
    events_file: Option<&Path>,
    mapping: Option<&Path>,
) -> anyhow::Result<usize> {
    let mut conn = services.pool.get()?;
    if let Some(path) = units_file {
        let text = read(path)?;
        let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let list = ingest::parse_units(&text, is_csv).map_err(|errors| field_errors(path, &errors))?;
        units::upsert(&mut conn, &list).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    let Some(path) = events_file else { return Ok(0) };
    let mapping = mapping.map(|m| CsvMapping::from_toml(&read(m)?)).transpose()?;
    Ok(
        ingest::file::import_events(&mut conn, &services.hasher, path, mapping.as_ref(), "import")
            .map_err(|e| file_error(path, e))?
            .stored,
    )
}

pub fn import(
    config: &Config,
    units_file: Option<&Path>,
    events_file: Option<&Path>,
    mapping: Option<&Path>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        units_file.is_some() || events_file.is_some(),
        "ange --units FIL och/eller --events FIL"
    );
    let state = app_state(config)?;
    let mut conn = state.pool.get()?;
    if let Some(path) = units_file {
        let text = read(path)?;
        let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let list = ingest::parse_units(&text, is_csv).map_err(|errors| field_errors(path, &errors))?;
        let (created, updated) =
            units::upsert(&mut conn, &list).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        println!("{}: {created} nya enheter, {updated} uppdaterade", path.display());
    }
    if let Some(path) = events_file {
        let mapping = mapping.map(|m| CsvMapping::from_toml(&read(m)?)).transpose()?;
        let total = ingest::file::import_events(&mut conn, &state.hasher, path, mapping.as_ref(), "import")
            .map_err(|e| file_error(path, e))?;
        println!(
            "{}: {} händelser lästa, {} nya sparade, {} fanns redan",
            path.display(),
            total.received,
            total.stored,
            total.duplicates
        );
    }
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("kan inte läsa {}: {e}", path.display()))
}

/// The first 50 errors and the count of all.
fn field_errors(path: &Path, errors: &crate::domain::FieldErrors) -> anyhow::Error {
    let total = errors.total();
    let mut msg = format!("{}: {total} fel, inget sparades", path.display());
    for e in errors.listed().iter().take(50) {
        msg.push_str(&format!("\n  rad {}, fält {}: {}", e.line, e.field, e.message));
    }
    if total > 50 {
        msg.push_str(&format!("\n  … och {} fel till", total - 50));
    }
    anyhow::anyhow!(msg)
}

fn file_error(path: &Path, e: ingest::file::FileError) -> anyhow::Error {
    use ingest::file::FileError;
    match e {
        FileError::Invalid(errors) => field_errors(path, &errors),
        FileError::Conflict(c, total) => conflicts(path, &c, total),
        FileError::Failed(e) => e.context(format!("{}: inget sparades", path.display())),
    }
}

fn ingest_error(path: &Path, e: IngestError) -> anyhow::Error {
    match e {
        IngestError::Invalid(errors) => field_errors(path, &errors),
        IngestError::Conflict(c) => conflicts(path, &c, c.len()),
        IngestError::Db(e) => e,
    }
}

/// The first 50 conflicting ids and the count of all.
fn conflicts(path: &Path, c: &[crate::domain::Conflict], total: usize) -> anyhow::Error {
    let mut msg = format!(
        "{}: {total} id:n finns redan med annat innehåll, inget sparades",
        path.display()
    );
    for c in c.iter().take(50) {
        msg.push_str(&format!("\n  rad {}, id {}: {}", c.line, c.id, c.message));
    }
    if total > 50 {
        msg.push_str(&format!("\n  … och {} till", total - 50));
    }
    anyhow::anyhow!(msg)
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Text,
}

/// The formats of `svu-vakt report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Html,
    Csv,
    Json,
}

/// `svu-vakt report quarterly YYYY-QN`: the whole county's report on standard output.
pub fn report_quarterly(
    config: &Config,
    quarter: &str,
    format: ReportFormat,
    model: Option<&str>,
) -> anyhow::Result<()> {
    use crate::followup::{quarterly, Quarter, Visible};
    let quarter = Quarter::parse(quarter).map_err(|_| anyhow::anyhow!("kvartalet skrivs ÅÅÅÅ-QN, t.ex. 2026-Q2"))?;
    let model = match model {
        Some(m) => crate::followup::leadtimes::Model::parse(m)
            .map_err(|_| anyhow::anyhow!("--model är vasterbotten eller rullande"))?,
        None => config.followup.model,
    };
    let services = app_state(config)?;
    let mut conn = services.pool.get()?;
    let report = quarterly::build(
        &mut conn,
        quarter,
        Visible::ALL,
        model,
        &config.followup.prices,
        chrono::Utc::now(),
    )?;
    let text = match format {
        ReportFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
        ReportFormat::Csv => crate::report::exports::quarterly(&report)?,
        ReportFormat::Html => {
            let units = crate::store::units::all(&mut conn)?;
            crate::report::quarterly::document(&report, &units)?
        }
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

/// `svu-vakt report adherence`: rows of `{rule, group, due, met, late, missing, share}`.
pub fn report_adherence(
    config: &Config,
    from: &str,
    to: &str,
    group: &str,
    rule: Option<&str>,
    format: ReportFormat,
) -> anyhow::Result<()> {
    use crate::followup::adherence::{self, Group};
    use crate::followup::{Period, Visible};
    let period = Period::parse(from, to).map_err(|e| anyhow::anyhow!("--from/--to: {e}"))?;
    let group = Group::parse(group).map_err(|_| anyhow::anyhow!("--group är unit, subtree, huvudman eller county"))?;
    let rule = rule
        .map(|r| crate::rules::RuleId::parse(r).ok_or_else(|| anyhow::anyhow!("okänd regel `{r}`")))
        .transpose()?;
    let services = app_state(config)?;
    let mut conn = services.pool.get()?;
    let rows = adherence::report(
        &mut conn,
        period,
        rule.map(crate::rules::RuleId::as_str),
        group,
        Visible::ALL,
    )?;
    let text = match format {
        ReportFormat::Json => serde_json::to_string_pretty(&rows)? + "\n",
        ReportFormat::Csv => crate::report::exports::adherence(&rows)?,
        ReportFormat::Html => anyhow::bail!("report adherence skrivs som json eller csv"),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

/// `svu-vakt check`: prints the findings; bad input fails naming line and field.
pub fn check(
    config: Option<&Path>,
    units: &Path,
    events: &Path,
    as_of: &str,
    format: Format,
    profile: Option<&str>,
    rules: Option<Vec<String>>,
) -> anyhow::Result<()> {
    let profile = crate::config::resolve_profile(profile, &crate::config::load_rules(config)?)?;
    let as_of = chrono::DateTime::parse_from_rfc3339(as_of)
        .map_err(|_| {
            anyhow::anyhow!("--as-of ska vara en tidpunkt enligt RFC 3339 med tidszon, t.ex. 2026-05-04T12:00:00+02:00")
        })?
        .with_timezone(&chrono::Utc);
    let rules = match rules {
        Some(names) => names
            .iter()
            .filter(|n| !n.trim().is_empty())
            .map(|n| RuleId::parse(n).ok_or_else(|| anyhow::anyhow!("--rules: okänd regel `{n}`")))
            .collect::<anyhow::Result<Vec<_>>>()?,
        None => profile.enabled.iter().copied().collect(),
    };
    let opts = crate::check::CheckOptions { profile, rules, as_of };
    let units = crate::check::load_units(units).map_err(check_error)?;
    let findings = crate::check::check_file(events, &units, &opts).map_err(check_error)?;
    let text = match format {
        Format::Json => crate::check::to_json(&findings),
        Format::Text => crate::check::to_text(&findings, as_of),
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

fn check_error(e: crate::check::CheckError) -> anyhow::Error {
    match e {
        crate::check::CheckError::Input { file, count, errors } => {
            let mut msg = format!("{file}: {count} fel, ingen granskning gjord");
            for e in &errors {
                msg.push_str(&format!("\n  rad {}, fält {}: {}", e.line, e.field, e.message));
            }
            if count > errors.len() {
                msg.push_str(&format!("\n  … och {} fel till", count - errors.len()));
            }
            anyhow::anyhow!(msg)
        }
        crate::check::CheckError::Io(m) => anyhow::anyhow!(m),
    }
}

/// `svu-vakt calendar YEAR`.
pub fn calendar(config: Option<&Path>, year: i32, format: Format, profile: Option<&str>) -> anyhow::Result<()> {
    anyhow::ensure!(
        (crate::calendar::FIRST_YEAR..=crate::calendar::LAST_YEAR).contains(&year),
        "året måste vara {}–{}",
        crate::calendar::FIRST_YEAR,
        crate::calendar::LAST_YEAR
    );
    let profile = crate::config::resolve_profile(profile, &crate::config::load_rules(config)?)?;
    let cal = crate::calendar::year_calendar(year, &profile.staffing_tables);
    let text = match format {
        Format::Json => serde_json::to_string_pretty(&cal)? + "\n",
        Format::Text => calendar_text(year, &cal),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

fn calendar_text(year: i32, cal: &crate::calendar::YearCalendar) -> String {
    use chrono::Datelike;
    const DAYS: [&str; 7] = ["måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag"];
    let day = |d: chrono::NaiveDate| DAYS[d.weekday().num_days_from_monday() as usize];
    let mut out = format!("Helgdagar {year}\n");
    for h in &cal.holidays {
        let note = if h.legal {
            ""
        } else {
            "  (ej lagstadgad, i praktiken ledig)"
        };
        out.push_str(&format!("  {}  {:<8} {}{note}\n", h.date, day(h.date), h.name));
    }
    out.push_str(&format!("\nBemanningsdagar vid storhelg {year} (kl. 08–15)\n"));
    for s in &cal.staffing_days {
        out.push_str(&format!(
            "  {}  {:<8} storhelg {} – {}\n",
            s.date,
            day(s.date),
            s.block_start,
            s.block_end
        ));
    }
    out
}

/// `svu-vakt scan`: one scan, then delivery of everything pending. With the
/// SMTP server unreachable the deviations are still filed and their mail
/// stays queued for the next run.
pub fn scan(config: &Config, as_of: Option<&str>, full: bool) -> anyhow::Result<()> {
    let as_of = as_of
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|_| {
                    anyhow::anyhow!("--as-of måste vara RFC 3339 med tidszon, t.ex. 2026-05-04T12:00:00+02:00")
                })
                .and_then(|t| {
                    crate::audit::requested_as_of(t).map_err(|_| {
                        anyhow::anyhow!("--as-of {t} ligger i framtiden: en granskning bedömer det som har hänt")
                    })
                })
        })
        .transpose()?;
    let services = app_state(config)?;
    let summary = match services.scan(as_of, full) {
        Ok(s) => s,
        Err(crate::audit::ScanError::Busy) => anyhow::bail!("en annan granskning pågår; försök igen senare"),
        Err(crate::audit::ScanError::Failed(e)) => return Err(e),
    };
    println!(
        "Granskning {} per {}: {} ärenden granskade, {} avvikelser, {} nya ({} utan e-post: äldre än {} dagar), {} uppdaterade, {} återkallade",
        summary.id,
        summary.as_of,
        summary.counts.cases_evaluated,
        summary.counts.findings,
        summary.counts.filed,
        summary.counts.unmailed,
        config.mail.max_age_days,
        summary.counts.updated,
        summary.counts.withdrawn
    );
    match services.deliver(false) {
        Some(r) => {
            let r = r?;
            println!(
                "E-post: {} skickade, {} vägrade permanent (skickas inte igen), {} misslyckade (försöks igen), {} väntar",
                r.sent, r.refused, r.failed, r.pending
            );
        }
        None => {
            let pending = crate::mail::outbox::pending_count(&mut *services.pool.get()?)?;
            println!("E-post: ingen SMTP-server konfigurerad (--smtp-url); {pending} väntar i utkorgen");
        }
    }
    Ok(())
}

/// `svu-vakt routes --unit ID`.
pub fn routes(config: &Config, unit: &str) -> anyhow::Result<()> {
    let state = app_state(config)?;
    let units = crate::rules::Units::new(units::all(&mut *state.pool.get()?)?);
    let r = crate::mail::routing::route(Some(&crate::domain::UnitId(unit.to_string())), &units, &config.mail);
    println!("Avvikelser för {unit} går till: {}", r.to);
    if !r.cc.is_empty() {
        println!("Kopia till: {}", r.cc.join(", "));
    }
    println!("Varför: {}", r.via);
    Ok(())
}
