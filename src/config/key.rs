//! The installation secret under which personnummer are hashed: from the
//! environment, or a key file created whole on first start.

use std::path::{Path, PathBuf};

use super::env;
use crate::domain::Secret;
use crate::store::DbUrl;

/// The installation secret for patient hashes: `SVU_VAKT_PATIENT_KEY`, else
/// the key file (default beside a SQLite database, `data/patient.key` for
/// PostgreSQL), created with fresh random bytes on first start.
pub(super) fn patient_key(file: Option<PathBuf>, db: &DbUrl) -> anyhow::Result<Secret> {
    if let Some(k) = env("SVU_VAKT_PATIENT_KEY") {
        anyhow::ensure!(k.len() >= 32, "SVU_VAKT_PATIENT_KEY måste ha minst 32 tecken");
        return Ok(Secret::new(k.into_bytes()));
    }
    let path = file
        .or_else(|| env("SVU_VAKT_PATIENT_KEY_FILE").map(PathBuf::from))
        .unwrap_or_else(|| match db {
            DbUrl::Sqlite(p) => p.with_extension("patient.key"),
            DbUrl::Postgres(_) => PathBuf::from("data/patient.key"),
        });
    if path.exists() {
        return read_key_file(&path);
    }
    create_key_file(&path)
}

pub(super) fn read_key_file(path: &Path) -> anyhow::Result<Secret> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("kan inte läsa patientnyckeln {}: {e}", path.display()))?;
    let key = text.trim();
    anyhow::ensure!(
        key.len() >= 32,
        "patientnyckeln {} är kortare än 32 tecken",
        path.display()
    );
    Ok(Secret::new(key.as_bytes().to_vec()))
}

/// Creates the key whole and only then gives it its name (a hard link, which
/// fails if the name exists): two processes starting at once on a new
/// installation agree on one key, and none ever reads half a key.
pub(super) fn create_key_file(path: &Path) -> anyhow::Result<Secret> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| anyhow::anyhow!("systemet gav inga slumptal: {e}"))?;
    let key = hex::encode(bytes);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}-{}.tmp", std::process::id(), hex::encode(&bytes[..4])));
    let tmp = PathBuf::from(tmp);
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(key.as_bytes())?;
        f.sync_all()?;
        std::fs::hard_link(&tmp, path)
    })();
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => {
            tracing::warn!(path = %path.display(), "en ny patientnyckel skapades; säkerhetskopiera den: utan den kan hashvärdena inte matchas igen");
            Ok(Secret::new(key.into_bytes()))
        }
        // Another process created it meanwhile: that key is the key.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key_file(path),
        Err(e) => Err(anyhow::anyhow!("kan inte skapa patientnyckeln {}: {e}", path.display())),
    }
}
