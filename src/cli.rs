//! What the subcommands do, callable from tests. Output for people on the
//! terminal is Swedish; a token is printed alone on its last line so scripts
//! can take it with `tail -n1`.

mod demo;
mod import;
mod people;

pub use demo::{demo_db, demo_files, load_demo};
pub use import::{batches, import, import_quiet, remove_batch};
pub use people::{token_create, user_create, user_disable, user_passwd, user_update};

use std::io::Write;
use std::path::Path;

use crate::config::Config;
use crate::rules::RuleId;
use crate::store::{self, units};
use crate::{app_state, Application};

pub fn serve(config: &Config, demo: bool, demo_cases: usize) -> anyhow::Result<()> {
    let config = if demo { &demo::demo_rules(config) } else { config };
    if demo {
        demo::prepare(config, demo_cases)?;
    }
    actix_web::rt::System::new().block_on(async {
        let app = Application::build(config)?;
        tracing::info!(port = app.port(), database = %store::redact_url(&config.database_url_text), "svu-vakt lyssnar");
        app.run().await?;
        Ok(())
    })
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
    // What a packing cut short left (the migration's own packing runs once).
    let packed = store::timelines::pack_missing(&mut *pool.get()?)?;
    if packed > 0 {
        println!("Ärenden utan packad tidslinje packade: {packed}");
    }
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
    let h = services.deliver_hooks(false)?;
    if h.sent + h.refused + h.failed + h.cancelled > 0 || h.pending > 0 {
        println!(
            "Avvikelsesystem (webhook): {} skickade, {} vägrade permanent (skickas inte igen), {} misslyckade (försöks igen), {} väntar",
            h.sent, h.refused, h.failed, h.pending
        );
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
    let channels = crate::mail::routing::channels(Some(&crate::domain::UnitId(unit.to_string())), &units, &config.mail);
    if let Some(url) = channels.webhook {
        println!("Avvikelsesystem (webhook): {}", crate::mail::webhook::shown(url));
    }
    if !channels.mail {
        println!("Ingen e-post: vägvalet har mail = false (rapporten går bara till avvikelsesystemet)");
    }
    Ok(())
}
