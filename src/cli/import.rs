//! Data into the event log by hand: `svu-vakt import` (units and events
//! from files, through `ingest::file`), `batches` (the ingest log) and
//! `remove-batch` (a bad export taken out again); the errors of a file as a
//! person reads them, the first 50 and the count of all.

use std::path::Path;

use crate::app_state;
use crate::config::Config;
use crate::ingest::{self, csv_mapping::CsvMapping, IngestError};
use crate::store::{self, units};

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
    Ok(ingest::file::import_events(
        &mut conn,
        Some(&services.pool),
        &services.hasher,
        path,
        mapping.as_ref(),
        "import",
    )
    .map_err(|e| file_error(path, e))?
    .stored)
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
        let total = ingest::file::import_events(
            &mut conn,
            Some(&state.pool),
            &state.hasher,
            path,
            mapping.as_ref(),
            "import",
        )
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

pub(super) fn ingest_error(path: &Path, e: IngestError) -> anyhow::Error {
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
