//! The one typed configuration: a TOML file (`--config`), then environment
//! variables, then command-line flags, each overriding the one before.
//! Every option and its default is documented once, in `ops/svu-vakt.toml`.
//! Secrets are wrapped in [`Secret`] and never print.

use std::path::Path;

use serde::Deserialize;

mod key;
mod sections;

#[cfg(test)]
use key::create_key_file;
use key::patient_key;
use sections::*;
pub use sections::{FollowupConfig, HandlingConfig, IngestConfig, ScanConfig};

use crate::domain::Secret;
use crate::mail::MailConfig;
use crate::rules::profile::{Profile, ProfileOverrides};
use crate::store::DbUrl;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/svu-vakt.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct FileConfig {
    database: DatabaseSection,
    server: ServerSection,
    log: LogSection,
    privacy: PrivacySection,
    rules: ProfileOverrides,
    scan: ScanSection,
    mail: MailSection,
    session: SessionSection,
    handling: HandlingSection,
    followup: FollowupSection,
    feed: FeedSection,
    ingest: IngestConfig,
    oidc: Option<OidcSection>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The resolved configuration the application is built from. Its `Debug`
/// never shows a secret (patient key, database or SMTP password).
#[derive(Clone)]
pub struct Config {
    pub database_url: DbUrl,
    pub database_url_text: String,
    pub pool_size: u32,
    /// SQLite: the largest the file may grow, in MiB; 0: no limit.
    pub sqlite_max_mb: u64,
    pub listen: String,
    pub max_body_bytes: usize,
    pub workers: usize,
    pub log_format: LogFormat,
    pub log_level: String,
    pub patient_key: Secret,
    pub rules: ProfileOverrides,
    pub scan: ScanConfig,
    pub mail: MailConfig,
    pub session: crate::store::users::SessionLimits,
    pub handling: HandlingConfig,
    pub followup: FollowupConfig,
    /// The drop folder, when configured.
    pub feed: Option<crate::feed::FeedConfig>,
    pub ingest: IngestConfig,
    /// Login through the region's identity provider, when configured.
    pub oidc: Option<crate::oidc::OidcConfig>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &self.database_url)
            .field("pool_size", &self.pool_size)
            .field("listen", &self.listen)
            .field("log_format", &self.log_format)
            .field("patient_key", &self.patient_key)
            .field("scan", &self.scan)
            .field("mail", &self.mail)
            .finish_non_exhaustive()
    }
}

/// Overrides from the environment and the command line.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub database_url: Option<String>,
    pub listen: Option<String>,
    pub smtp_url: Option<String>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Config {
    /// The rule profile this installation runs (config `[rules]`).
    pub fn profile(&self) -> anyhow::Result<Profile> {
        resolve_profile(None, &self.rules)
    }

    /// Loads the file (if any), applies `SVU_VAKT_*` variables and the flags,
    /// and resolves the patient key. Errors name the option at fault.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Config> {
        match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("kan inte läsa konfigurationen {}: {e}", path.display()))?;
                Config::from_toml(&text, &path.display().to_string(), overrides)
            }
            None => Config::from_file_config(FileConfig::default(), overrides),
        }
    }

    /// [`Config::load`] of a file's text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str, overrides: &Overrides) -> anyhow::Result<Config> {
        let fc: FileConfig = toml::from_str(text).map_err(|e| anyhow::anyhow!("konfigurationen {origin}: {e}"))?;
        Config::from_file_config(fc, overrides)
    }

    fn from_file_config(fc: FileConfig, overrides: &Overrides) -> anyhow::Result<Config> {
        let database_url_text = overrides
            .database_url
            .clone()
            .or_else(|| env("SVU_VAKT_DATABASE_URL"))
            .unwrap_or(fc.database.url);
        let listen = overrides
            .listen
            .clone()
            .or_else(|| env("SVU_VAKT_LISTEN"))
            .unwrap_or(fc.server.listen);
        let log_format = match env("SVU_VAKT_LOG_FORMAT").as_deref() {
            Some("json") => LogFormat::Json,
            Some("text") => LogFormat::Text,
            Some(other) => anyhow::bail!("SVU_VAKT_LOG_FORMAT ska vara text eller json, inte `{other}`"),
            None => fc.log.format,
        };
        let database_url = DbUrl::parse(&database_url_text)?;
        let patient_key = patient_key(fc.privacy.patient_key_file, &database_url)?;
        anyhow::ensure!(fc.database.pool_size > 0, "database.pool_size ska vara minst 1");
        anyhow::ensure!(
            fc.session.idle_minutes >= 1 && fc.session.absolute_hours >= 1,
            "session.idle_minutes och session.absolute_hours ska vara minst 1"
        );
        anyhow::ensure!(
            fc.handling.remind_after_days >= 0 && fc.handling.escalate_after_days >= 0,
            "handling.remind_after_days och handling.escalate_after_days får inte vara negativa"
        );
        let followup = fc.followup.resolve(fc.rules.profile.as_deref())?;
        let handling = HandlingConfig {
            remind_after: chrono::Duration::days(fc.handling.remind_after_days),
            escalate_after: chrono::Duration::days(fc.handling.escalate_after_days),
        };
        let session = crate::store::users::SessionLimits {
            idle: chrono::Duration::minutes(fc.session.idle_minutes),
            absolute: chrono::Duration::hours(fc.session.absolute_hours),
        };
        let oidc = fc
            .oidc
            .map(|o| o.resolve(fc.mail.base_url.trim_end_matches('/')))
            .transpose()?;
        Ok(Config {
            database_url,
            database_url_text,
            pool_size: fc.database.pool_size,
            sqlite_max_mb: match env("SVU_VAKT_SQLITE_MAX_MB") {
                Some(v) => v
                    .parse()
                    .map_err(|_| anyhow::anyhow!("SVU_VAKT_SQLITE_MAX_MB ska vara ett heltal (MiB)"))?,
                None => fc.database.sqlite_max_mb,
            },
            listen,
            max_body_bytes: fc.server.max_body_mb * 1024 * 1024,
            workers: fc.server.workers.max(1),
            log_format,
            log_level: env("SVU_VAKT_LOG_LEVEL").unwrap_or(fc.log.level),
            patient_key,
            rules: fc.rules,
            scan: fc.scan.resolve()?,
            mail: fc.mail.resolve(overrides.smtp_url.clone())?,
            session,
            handling,
            followup,
            feed: fc.feed.resolve()?,
            ingest: fc.ingest,
            oidc,
        })
    }
}

/// The `[rules]` section alone, for the commands that need no database.
pub fn load_rules(file: Option<&Path>) -> anyhow::Result<ProfileOverrides> {
    let Some(path) = file else {
        return Ok(ProfileOverrides::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("kan inte läsa konfigurationen {}: {e}", path.display()))?;
    let fc: FileConfig =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("konfigurationen {}: {e}", path.display()))?;
    Ok(fc.rules)
}

/// The profile: `name` (from the command line) or the config's
/// `rules.profile` or `nationell`, with the config's overrides applied.
pub fn resolve_profile(name: Option<&str>, overrides: &ProfileOverrides) -> anyhow::Result<Profile> {
    let name = name.or(overrides.profile.as_deref()).unwrap_or("nationell");
    let mut profile = Profile::by_name(name)?;
    profile.apply(overrides)?;
    Ok(profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tests that set `SVU_VAKT_*` variables run one at a time: the
    /// environment is the process's.
    static ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn two_processes_creating_the_key_at_once_agree_on_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("patient.key");
        let keys: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8).map(|_| s.spawn(|| create_key_file(&path).unwrap())).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap().expose().to_vec())
                .collect()
        });
        assert!(keys.iter().all(|k| k == &keys[0] && k.len() == 64));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    #[test]
    fn a_bad_cron_expression_stops_the_start_with_a_clear_message() {
        let err = ScanConfig::parse("*/15 * * * *", 60, 14).unwrap_err().to_string();
        assert!(err.contains("scan.schedule") && err.contains("sex fält"), "{err}");
        assert!(ScanConfig::parse("0 */15 * * * *", 60, 14).unwrap().schedule.is_some());
        assert!(ScanConfig::parse("", 60, 14).unwrap().schedule.is_none());
    }

    #[test]
    fn an_address_the_mailer_cannot_use_stops_the_start_naming_the_option() {
        let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        std::env::set_var("SVU_VAKT_PATIENT_KEY_FILE", dir.path().join("k").display().to_string());
        for (toml, option) in [
            ("[mail]\nfrom = \"svu-vakt <svu@@region.se>\"\n", "mail.from"),
            ("[mail]\ndefault_to = \"processägare\"\n", "mail.default_to"),
            (
                "[[mail.routes]]\nkind = \"kommun\"\nto = \"a@b.se\"\ncc = [\"c@d.se\", \"not an address\"]\n",
                "mail.routes[1].cc",
            ),
        ] {
            let file = dir.path().join("c.toml");
            std::fs::write(&file, toml).unwrap();
            let err = Config::load(Some(&file), &Overrides::default()).unwrap_err();
            assert!(format!("{err:#}").contains(option), "{option}: {err:#}");
        }
    }

    #[test]
    fn a_webhook_needs_a_url_and_a_secret_from_the_environment_or_a_file_and_never_prints_it() {
        let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        std::env::set_var("SVU_VAKT_PATIENT_KEY_FILE", dir.path().join("k").display().to_string());
        std::env::remove_var("SVU_VAKT_WEBHOOK_SECRET_1");
        std::env::remove_var("SVU_VAKT_WEBHOOK_SECRET_2");
        let load = |text: &str| {
            let file = dir.path().join("c.toml");
            std::fs::write(&file, text).unwrap();
            Config::load(Some(&file), &Overrides::default()).map(|c| c.mail)
        };
        let route = "[[mail.routes]]\nhuvudman = \"Motala kommun\"\nwebhook_url = \"https://avvikelser.motala.example.se/svu\"\n";
        let e = format!("{:#}", load(route).unwrap_err());
        assert!(
            e.contains("mail.routes[1]") && e.contains("SVU_VAKT_WEBHOOK_SECRET_1"),
            "{e}"
        );
        let secret_file = dir.path().join("hemlighet");
        std::fs::write(&secret_file, "fran-filen-0123456789abcdef\n").unwrap();
        let with_file = format!("{route}webhook_secret_file = \"{}\"\n", secret_file.display());
        let m = load(&with_file).unwrap();
        let r = &m.routes[0];
        assert_eq!(
            r.webhook_secret.as_ref().unwrap().expose(),
            b"fran-filen-0123456789abcdef"
        );
        assert!(r.mail && !r.intake_first, "the defaults: mail, no intake_first");
        assert!(
            !format!("{m:?}").contains("fran-filen"),
            "the secret is not in the debug text"
        );
        std::env::set_var("SVU_VAKT_WEBHOOK_SECRET_1", "fran-miljon-0123456789abcdef");
        let m = load(&with_file).unwrap();
        assert_eq!(
            m.routes[0].webhook_secret.as_ref().unwrap().expose(),
            b"fran-miljon-0123456789abcdef",
            "the environment wins"
        );
        std::env::set_var("SVU_VAKT_WEBHOOK_SECRET_1", "kort");
        let e = format!("{:#}", load(route).unwrap_err());
        assert!(e.contains("minst 16 byte"), "{e}");
        std::env::remove_var("SVU_VAKT_WEBHOOK_SECRET_1");
        let short_claim = "[mail]\nsmtp_timeout_seconds = 5\nclaim_seconds = 15\n";
        assert!(load(short_claim).is_ok(), "no webhook: its timeout is no concern");
        let e = format!("{:#}", load(&format!("{short_claim}{with_file}")).unwrap_err());
        assert!(e.contains("webhook_timeout_seconds"), "{e}");
        for (bad, names) in [
            (
                "[[mail.routes]]\nkind = \"kommun\"\nwebhook_url = \"ftp://x.example.se/\"\n",
                "mail.routes[1].webhook_url",
            ),
            ("[[mail.routes]]\nkind = \"kommun\"\nmail = false\n", "mail = false"),
            (
                "[[mail.routes]]\nkind = \"kommun\"\nintake_first = true\n",
                "intake_first",
            ),
            (
                "[[mail.routes]]\nkind = \"kommun\"\nwebhook_secret_file = \"/x\"\n",
                "webhook_secret_file",
            ),
            ("[[mail.routes]]\nkind = \"kommun\"\nwebhook = \"x\"\n", "webhook"),
        ] {
            let e = format!("{:#}", load(bad).unwrap_err());
            assert!(e.contains(names), "{bad}: {e}");
        }
        std::env::set_var("SVU_VAKT_WEBHOOK_SECRET_2", "andra-vagen-0123456789abcdef");
        let two = format!("[[mail.routes]]\nkind = \"oppenvard\"\nto = \"a@b.se\"\n{route}mail = false\n");
        let m = load(&two).unwrap();
        std::env::remove_var("SVU_VAKT_WEBHOOK_SECRET_2");
        assert!(m.routes[0].webhook_secret.is_none());
        assert!(!m.routes[1].mail);
        assert!(m.webhook_secret("https://avvikelser.motala.example.se/svu").is_some());
    }

    #[test]
    fn the_shipped_example_config_loads() {
        let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        std::env::set_var("SVU_VAKT_PATIENT_KEY_FILE", dir.path().join("k").display().to_string());
        let c = Config::load(Some(Path::new("ops/svu-vakt.toml")), &Overrides::default()).unwrap();
        assert!(c.scan.schedule.is_some());
        assert_eq!(c.mail.routes.len(), 2);
        let secret = crate::mail::SmtpUrl("smtp://svu:hemligt@smtp.example.se:587?tls=required".into());
        assert!(!format!("{secret:?}").contains("hemligt"));
        let mut c = c;
        c.database_url = DbUrl::parse("postgres://svu:hemligt@db/svu").unwrap();
        c.database_url_text = "postgres://svu:hemligt@db/svu".into();
        c.mail.smtp_url = secret;
        let shown = format!("{c:?}");
        assert!(!shown.contains("hemligt") && shown.contains("svu:***@db"), "{shown}");
    }

    #[test]
    fn a_drop_folder_that_is_missing_or_has_a_bad_mapping_stops_the_start() {
        let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        std::env::set_var("SVU_VAKT_PATIENT_KEY_FILE", dir.path().join("k").display().to_string());
        let load = |feed: &str| {
            let file = dir.path().join("c.toml");
            std::fs::write(&file, feed).unwrap();
            Config::load(Some(&file), &Overrides::default()).map(|c| c.feed.map(|f| f.csv.len()))
        };
        let missing = load("[feed]\ndirectory = \"/finns/inte\"\n").unwrap_err().to_string();
        assert!(missing.contains("feed.directory"), "{missing}");
        let inbox = dir.path().display().to_string();
        let mapping = dir.path().join("m.toml");
        std::fs::write(&mapping, "delimiter = \";\"\n").unwrap();
        let bad = load(&format!(
            "[feed]\ndirectory = \"{inbox}\"\n[[feed.csv]]\npattern = \"x-*.csv\"\nmapping = \"{}\"\n",
            mapping.display()
        ))
        .unwrap_err()
        .to_string();
        assert!(bad.contains("feed.csv `x-*.csv`") && bad.contains("m.toml"), "{bad}");
        assert_eq!(load(&format!("[feed]\ndirectory = \"{inbox}\"\n")).unwrap(), Some(0));
    }

    #[test]
    fn oidc_takes_its_redirect_from_the_base_url_and_refuses_what_it_cannot_use() {
        let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        std::env::set_var("SVU_VAKT_PATIENT_KEY_FILE", dir.path().join("k").display().to_string());
        let load = |text: &str| {
            let file = dir.path().join("c.toml");
            std::fs::write(&file, text).unwrap();
            Config::load(Some(&file), &Overrides::default()).map(|c| c.oidc)
        };
        let base = "[mail]\nbase_url = \"https://svu-vakt.region.se/\"\n";
        let ok = load(&format!(
            "{base}[oidc]\nissuer = \"https://idp.region.se/\"\nclient_id = \"svu\"\nclient_secret = \"s\"\nclaim = \"hsa_id\"\nmatch_by = \"hsa_id\"\n"
        ))
        .unwrap()
        .unwrap();
        assert_eq!(ok.redirect_url, "https://svu-vakt.region.se/login/oidc/retur");
        assert_eq!(
            ok.issuer, "https://idp.region.se/",
            "the issuer as written: discovery compares it exactly"
        );
        assert_eq!(
            (ok.match_by, ok.unknown),
            (crate::oidc::MatchBy::HsaId, crate::oidc::Unknown::Refuse)
        );
        assert!(
            !format!("{ok:?}").contains("\"s\""),
            "the secret is not in the debug text"
        );
        let secret_file = dir.path().join("secret");
        std::fs::write(&secret_file, "fran-fil\n").unwrap();
        let from_file = load(&format!(
            "{base}[oidc]\nissuer = \"https://idp.region.se\"\nclient_id = \"svu\"\nclaim = \"email\"\nmatch_by = \"email\"\nclient_secret_file = \"{}\"\n",
            secret_file.display()
        ))
        .unwrap()
        .unwrap();
        assert_eq!(from_file.client_secret.as_deref(), Some("fran-fil"));
        let head = format!("{base}[oidc]\nissuer = \"https://idp.region.se\"\nclient_id = \"svu\"\n");
        for (bad, names) in [
            ("claim = \"email\"\nmatch_by = \"namn\"\n", "oidc.match_by"),
            (
                "claim = \"email\"\nmatch_by = \"email\"\nunknown_users = \"kanske\"\n",
                "oidc.unknown_users",
            ),
            (
                "claim = \"email\"\nmatch_by = \"email\"\nredirect_url = \"https://svu-vakt.region.se/annat\"\n",
                "oidc.redirect_url",
            ),
            ("claim = \" \"\nmatch_by = \"email\"\n", "oidc.claim"),
            ("match_by = \"email\"\n", "claim"),
        ] {
            let e = load(&format!("{head}{bad}")).unwrap_err().to_string();
            assert!(e.contains(names), "{bad}: {e}");
        }
        let default_base = load("[oidc]\nissuer = \"https://idp.region.se\"\nclient_id = \"svu\"\nclaim = \"email\"\nmatch_by = \"email\"\n")
            .unwrap()
            .unwrap();
        assert!(
            default_base.redirect_url.ends_with("/login/oidc/retur"),
            "{default_base:?}"
        );
        assert!(load("").unwrap().is_none());
    }
}
