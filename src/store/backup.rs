//! Backup and restore of a SQLite installation (docs/OPERATIONS.md).
//!
//! `backup` writes a consistent copy while the service runs: `VACUUM INTO`
//! reads the database in one read transaction, so the copy is the database
//! as one instant saw it (in WAL mode writers go on meanwhile), never half a
//! batch. The copy is written beside its destination as `FILE.part`, checked
//! (`PRAGMA integrity_check`, rows per table) and only then renamed: a file
//! at the destination is always a whole backup. PostgreSQL is backed up
//! with `pg_dump` (docs/OPERATIONS.md), which gives the same guarantee.
//!
//! `restore` puts a backup in place of a database that does not exist (the
//! service stopped and the old file moved away): it checks the backup,
//! copies it through `FILE.part` and renames it; the caller then runs the
//! migrations, so a backup of an older version is brought up to date.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use diesel::prelude::*;
use diesel::sql_query;
use diesel::sql_types::{BigInt, Text};
use diesel::sqlite::SqliteConnection;

use super::DbConn;

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Check {
    #[diesel(sql_type = Text)]
    integrity_check: String,
}

/// Rows per table, by table name.
pub type TableCounts = Vec<(String, i64)>;

/// Every table of a SQLite database with its number of rows.
pub fn table_counts(conn: &mut SqliteConnection) -> QueryResult<TableCounts> {
    let names: Vec<Name> =
        sql_query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .load(conn)?;
    names
        .into_iter()
        .map(|t| {
            let q = format!("SELECT COUNT(*) AS n FROM \"{}\"", t.name.replace('"', "\"\""));
            Ok((t.name, sql_query(q).get_result::<Count>(conn)?.n))
        })
        .collect()
}

/// Opens a SQLite file that must exist, checks it and counts its rows.
pub fn verify(path: &Path) -> anyhow::Result<TableCounts> {
    anyhow::ensure!(path.is_file(), "{} finns inte", path.display());
    let url = format!("file:{}?mode=ro", uri_path(path));
    let mut conn = SqliteConnection::establish(&url)
        .with_context(|| format!("{} kan inte öppnas som en SQLite-databas", path.display()))?;
    let checks: Vec<Check> = sql_query("PRAGMA integrity_check")
        .load(&mut conn)
        .with_context(|| format!("{} är inte en läsbar SQLite-databas", path.display()))?;
    let ok = checks.len() == 1 && checks[0].integrity_check == "ok";
    anyhow::ensure!(
        ok,
        "{} är skadad: {}",
        path.display(),
        checks
            .iter()
            .map(|c| c.integrity_check.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    );
    let counts = table_counts(&mut conn)?;
    anyhow::ensure!(
        counts.iter().any(|(t, _)| t == "__diesel_schema_migrations"),
        "{} är ingen svu-vakt-databas (tabellen över migreringar saknas)",
        path.display()
    );
    Ok(counts)
}

/// A path as the path of a `file:` URI: `%`, `?` and `#` encoded, so a
/// file named `a?b.db` is that file and not `a` with options.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

/// `path` with `suffix` appended to its file name: `FILE.part`, `FILE-wal`.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Makes a finished `.part` file durable and gives it its name; a hard
/// link, which fails rather than replace a file that appeared meanwhile.
fn publish(part: &Path, to: &Path) -> anyhow::Result<()> {
    File::open(part)?.sync_all()?;
    fs::hard_link(part, to).with_context(|| format!("{} finns redan eller kan inte skapas", to.display()))?;
    fs::remove_file(part)?;
    if let Some(dir) = to.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Writes a consistent copy of the SQLite database behind `conn` to `to`,
/// which must not exist.
pub fn backup(conn: &mut DbConn, to: &Path) -> anyhow::Result<TableCounts> {
    let DbConn::Sqlite(c) = conn else {
        anyhow::bail!(
            "backup gäller SQLite; en PostgreSQL-databas säkerhetskopieras med pg_dump (se docs/OPERATIONS.md)"
        );
    };
    anyhow::ensure!(
        !to.exists(),
        "{} finns redan; välj ett nytt filnamn (en säkerhetskopia skrivs aldrig över)",
        to.display()
    );
    let part = with_suffix(to, ".part");
    if part.exists() {
        // Left by a backup that was interrupted: never a whole backup.
        fs::remove_file(&part)?;
    }
    let target = part
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("sökvägen {} är inte UTF-8", part.display()))?;
    sql_query("VACUUM INTO ?")
        .bind::<Text, _>(target)
        .execute(c)
        .with_context(|| format!("kunde inte skriva {}", part.display()))?;
    let counts = match verify(&part) {
        Ok(counts) => counts,
        Err(e) => {
            let _ = fs::remove_file(&part);
            return Err(e.context("säkerhetskopian blev inte hel och är borttagen"));
        }
    };
    publish(&part, to)?;
    Ok(counts)
}

/// Puts the backup `from` in place as the SQLite database `to`, which must
/// not exist. The caller runs the migrations afterwards.
pub fn restore(from: &Path, to: &Path) -> anyhow::Result<TableCounts> {
    for p in [to.to_path_buf(), with_suffix(to, "-wal"), with_suffix(to, "-journal")] {
        anyhow::ensure!(
            !p.exists(),
            "{} finns redan: stoppa tjänsten och flytta undan den gamla databasen (med -wal och -shm) innan den återställs",
            p.display()
        );
    }
    let counts = verify(from)?;
    if let Some(dir) = to.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let part = with_suffix(to, ".part");
    fs::copy(from, &part).with_context(|| format!("kunde inte kopiera till {}", part.display()))?;
    publish(&part, to)?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_with_uri_characters_is_that_file() {
        assert_eq!(uri_path(Path::new("/srv/a?b#c%d.db")), "/srv/a%3fb%23c%25d.db");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.db");
        fs::write(&junk, b"inte en databas").unwrap();
        let err = verify(&junk).unwrap_err().to_string();
        assert!(err.contains("junk.db"), "{err}");
        let missing = dir.path().join("saknas.db");
        assert!(verify(&missing).unwrap_err().to_string().contains("finns inte"));
        let target = dir.path().join("ny.db");
        assert!(restore(&junk, &target).is_err());
        assert!(!target.exists(), "nothing is put in place from a bad backup");
    }
}
