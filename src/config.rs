//! The one typed configuration: a TOML file (`--config`), then environment
//! variables, then command-line flags, each overriding the one before.
//! Every option and its default is documented once, in `ops/svu-vakt.toml`.
//! Secrets are wrapped in [`Secret`] and never print.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::Secret;
use crate::mail::{MailConfig, MailMode, Route, SmtpUrl};
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

/// `[ingest]`: how events are checked at the door.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Refuse an `id` or `case` that is a bare ten-digit valid personnummer
    /// (SPEC §3.2). About one random ten-digit number in 150 is one: a
    /// source whose own ids are such numbers sets this to false. The other
    /// written forms of a personnummer are refused whatever this says.
    pub refuse_ten_digit_ids: bool,
}

impl Default for IngestConfig {
    fn default() -> IngestConfig {
        IngestConfig {
            refuse_ten_digit_ids: true,
        }
    }
}

/// `[oidc]`: login through the region's identity provider (docs/OPERATIONS.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct OidcSection {
    issuer: String,
    client_id: String,
    /// Or the environment's `SVU_VAKT_OIDC_CLIENT_SECRET`, or a file.
    client_secret: Option<String>,
    client_secret_file: Option<PathBuf>,
    /// Default: `mail.base_url` + `/login/oidc/retur`.
    redirect_url: Option<String>,
    /// Required: the IdPs name the HSA-id claim differently.
    claim: String,
    /// `hsa_id` or `email`; required.
    match_by: String,
    /// With `claim = "email"`: only an e-mail the IdP marks
    /// `email_verified: true` is matched (default); false trusts any.
    #[serde(default = "default_true")]
    require_verified_email: bool,
    /// `refuse` or `create`.
    #[serde(default = "default_oidc_unknown")]
    unknown_users: String,
    #[serde(default = "default_oidc_scopes")]
    scopes: Vec<String>,
    #[serde(default = "default_oidc_button")]
    button: String,
    ca_file: Option<PathBuf>,
}

fn default_true() -> bool {
    true
}
fn default_oidc_unknown() -> String {
    "refuse".into()
}
fn default_oidc_scopes() -> Vec<String> {
    vec!["openid".into(), "email".into(), "profile".into()]
}
fn default_oidc_button() -> String {
    "Logga in via regionens inloggning".into()
}

impl OidcSection {
    fn resolve(self, base_url: &str) -> anyhow::Result<crate::oidc::OidcConfig> {
        let match_by = crate::oidc::MatchBy::parse(&self.match_by)
            .ok_or_else(|| anyhow::anyhow!("oidc.match_by ska vara hsa_id eller email, inte `{}`", self.match_by))?;
        let unknown = match self.unknown_users.as_str() {
            "refuse" => crate::oidc::Unknown::Refuse,
            "create" => crate::oidc::Unknown::Create,
            other => anyhow::bail!("oidc.unknown_users ska vara refuse eller create, inte `{other}`"),
        };
        let client_secret = match (
            env("SVU_VAKT_OIDC_CLIENT_SECRET"),
            self.client_secret,
            self.client_secret_file,
        ) {
            (Some(s), _, _) => Some(s),
            (None, Some(_), Some(_)) => anyhow::bail!("oidc: ange client_secret eller client_secret_file, inte båda"),
            (None, Some(s), None) => Some(s),
            (None, None, Some(path)) => Some(
                std::fs::read_to_string(&path)
                    .map_err(|e| anyhow::anyhow!("oidc.client_secret_file {}: {e}", path.display()))?
                    .trim()
                    .to_string(),
            ),
            (None, None, None) => None,
        };
        anyhow::ensure!(!self.claim.trim().is_empty(), "oidc.claim måste ange ett claim");
        anyhow::ensure!(!self.client_id.trim().is_empty(), "oidc.client_id får inte vara tomt");
        let redirect_url = match self.redirect_url {
            Some(u) => u,
            None => {
                anyhow::ensure!(
                    base_url.starts_with("http"),
                    "oidc.redirect_url behövs när mail.base_url inte är satt"
                );
                format!("{base_url}/login/oidc/retur")
            }
        };
        anyhow::ensure!(
            redirect_url.ends_with("/login/oidc/retur"),
            "oidc.redirect_url måste sluta på /login/oidc/retur (adressen som svu-vakt svarar på)"
        );
        Ok(crate::oidc::OidcConfig {
            // Exactly as written: discovery must give back the same issuer.
            issuer: self.issuer.trim().to_string(),
            client_id: self.client_id,
            client_secret,
            redirect_url,
            claim: self.claim.trim().to_string(),
            match_by,
            require_verified_email: self.require_verified_email,
            unknown,
            scopes: self.scopes,
            button: self.button,
            ca_file: self.ca_file,
        })
    }
}

/// `[feed]`: the drop folder (docs/OPERATIONS.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FeedSection {
    directory: Option<PathBuf>,
    settle_seconds: u64,
    poll_seconds: u64,
    csv: Vec<CsvSourceSection>,
}

impl Default for FeedSection {
    fn default() -> Self {
        FeedSection {
            directory: None,
            settle_seconds: 30,
            poll_seconds: 10,
            csv: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CsvSourceSection {
    pattern: String,
    mapping: PathBuf,
}

impl FeedSection {
    /// The checked drop folder: it exists, and every mapping loads.
    fn resolve(self) -> anyhow::Result<Option<crate::feed::FeedConfig>> {
        let Some(directory) = env("SVU_VAKT_FEED_DIRECTORY").map(PathBuf::from).or(self.directory) else {
            return Ok(None);
        };
        anyhow::ensure!(
            directory.is_dir(),
            "feed.directory: {} är ingen katalog",
            directory.display()
        );
        anyhow::ensure!(
            (1..=3600).contains(&self.poll_seconds),
            "feed.poll_seconds ska vara 1–3600"
        );
        anyhow::ensure!(
            self.settle_seconds <= 86_400,
            "feed.settle_seconds får vara högst 86400"
        );
        let csv = self
            .csv
            .into_iter()
            .map(|c| {
                anyhow::ensure!(!c.pattern.trim().is_empty(), "feed.csv: ett mönster (pattern) är tomt");
                let text = std::fs::read_to_string(&c.mapping).map_err(|e| {
                    anyhow::anyhow!("feed.csv `{}`: kan inte läsa {}: {e}", c.pattern, c.mapping.display())
                })?;
                let mapping = crate::ingest::csv_mapping::CsvMapping::from_toml(&text)
                    .map_err(|e| anyhow::anyhow!("feed.csv `{}`: {}: {e}", c.pattern, c.mapping.display()))?;
                Ok(crate::feed::CsvSource {
                    pattern: c.pattern,
                    mapping_path: c.mapping,
                    mapping,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Some(crate::feed::FeedConfig {
            directory,
            settle: std::time::Duration::from_secs(self.settle_seconds),
            poll: std::time::Duration::from_secs(self.poll_seconds),
            csv,
        }))
    }
}

/// `[followup]`: the follow-up of SPEC §7.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FollowupSection {
    /// `vasterbotten` or `rullande`; default: `vasterbotten` under that profile, else `rullande`.
    betalningsansvar_model: Option<String>,
    /// Year → the vårddygn price in kronor (Socialstyrelsen's yearly figure).
    vardygn_pris: BTreeMap<String, i64>,
    /// The förvarning page's default window.
    forvarning_hours: i64,
    /// Days before a storhelg staffing day to remind each covered unit that
    /// has not registered `bemanning` (0: off, the default).
    bemanning_paminnelse_dagar: i64,
}

impl Default for FollowupSection {
    fn default() -> Self {
        FollowupSection {
            betalningsansvar_model: None,
            vardygn_pris: BTreeMap::new(),
            forvarning_hours: 24,
            bemanning_paminnelse_dagar: 0,
        }
    }
}

/// The follow-up's settings, checked.
#[derive(Debug, Clone)]
pub struct FollowupConfig {
    pub model: crate::followup::leadtimes::Model,
    pub prices: crate::followup::leadtimes::Prices,
    pub forvarning_hours: i64,
    pub staffing_reminder_days: i64,
}

impl Default for FollowupConfig {
    fn default() -> Self {
        FollowupConfig {
            model: crate::followup::leadtimes::Model::Rullande,
            prices: crate::followup::leadtimes::Prices(default_prices()),
            forvarning_hours: 24,
            staffing_reminder_days: 0,
        }
    }
}

/// Socialstyrelsen's price of a vårddygn as quoted in SPEC §7 (2022); an
/// installation configures the years it settles.
fn default_prices() -> BTreeMap<i32, i64> {
    BTreeMap::from([(2022, 9300)])
}

/// `[handling]`: reminders and escalation of deviations left unhandled (SPEC §6.1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct HandlingSection {
    remind_after_days: i64,
    escalate_after_days: i64,
}

impl Default for HandlingSection {
    fn default() -> Self {
        HandlingSection {
            remind_after_days: 7,
            escalate_after_days: 14,
        }
    }
}

/// How long a deviation may wait for a handling step before its recipient
/// is reminded, and before its unit's chef is told; zero turns either off.
#[derive(Debug, Clone, Copy)]
pub struct HandlingConfig {
    pub remind_after: chrono::Duration,
    pub escalate_after: chrono::Duration,
}

impl Default for HandlingConfig {
    fn default() -> Self {
        HandlingConfig {
            remind_after: chrono::Duration::days(7),
            escalate_after: chrono::Duration::days(14),
        }
    }
}

/// `[session]`: how long a login lasts (SPEC §9).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SessionSection {
    idle_minutes: i64,
    absolute_hours: i64,
}

impl Default for SessionSection {
    fn default() -> Self {
        SessionSection {
            idle_minutes: 30,
            absolute_hours: 12,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ScanSection {
    schedule: String,
    grace_minutes: i64,
    staffing_lookback_days: i64,
    arrival_margin_seconds: i64,
    chunk_cases: i64,
}

impl Default for ScanSection {
    fn default() -> Self {
        ScanSection {
            schedule: "0 */15 * * * *".into(),
            grace_minutes: 60,
            staffing_lookback_days: 14,
            arrival_margin_seconds: 600,
            chunk_cases: 2000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct MailSection {
    smtp_url: String,
    from: String,
    default_to: String,
    mode: MailMode,
    base_url: String,
    templates_dir: Option<PathBuf>,
    deliver_every_seconds: u64,
    smtp_timeout_seconds: u64,
    claim_seconds: u64,
    max_age_days: i64,
    routes: Vec<Route>,
}

impl Default for MailSection {
    fn default() -> Self {
        MailSection {
            smtp_url: String::new(),
            from: "svu-vakt <svu-vakt@localhost>".into(),
            default_to: "svu-vakt@localhost".into(),
            mode: MailMode::PerAvvikelse,
            base_url: "http://127.0.0.1:8080".into(),
            templates_dir: None,
            deliver_every_seconds: 60,
            smtp_timeout_seconds: 10,
            claim_seconds: 300,
            max_age_days: 14,
            routes: Vec::new(),
        }
    }
}

/// The scheduled scan's settings.
#[derive(Debug, Clone)]
pub struct ScanConfig {
    /// Parsed at start-up: a typo stops the start, not the 3 a.m. scan.
    pub schedule: Option<cron::Schedule>,
    pub grace: chrono::Duration,
    pub staffing_lookback_days: i64,
    /// An incremental scan looks at cases changed since the last scan began,
    /// less this margin: an ingest transaction that began before that scan
    /// and committed during it is still caught.
    pub arrival_margin: chrono::Duration,
    /// Cases judged and stored per write transaction. Larger is faster (a
    /// commit and the follow-up's day counts per chunk); an ingest waits at
    /// most one chunk's transaction on SQLite (about 0.2 s at 2 000).
    pub chunk_cases: i64,
}

impl ScanConfig {
    pub fn parse(schedule: &str, grace_minutes: i64, lookback: i64) -> anyhow::Result<ScanConfig> {
        let schedule = if schedule.trim().is_empty() {
            None
        } else {
            Some(schedule.parse::<cron::Schedule>().map_err(|e| {
                anyhow::anyhow!(
                    "scan.schedule `{schedule}` är inget cron-uttryck (sex fält, sekunder först, t.ex. \"0 */15 * * * *\"): {e}"
                )
            })?)
        };
        anyhow::ensure!(grace_minutes >= 0, "scan.grace_minutes får inte vara negativt");
        anyhow::ensure!(lookback >= 1, "scan.staffing_lookback_days ska vara minst 1");
        Ok(ScanConfig {
            schedule,
            grace: chrono::Duration::minutes(grace_minutes),
            staffing_lookback_days: lookback,
            arrival_margin: chrono::Duration::minutes(10),
            chunk_cases: 2000,
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct DatabaseSection {
    url: String,
    pool_size: u32,
    /// SQLite: the largest the file may grow, in MiB; 0: no limit.
    sqlite_max_mb: u64,
}

impl Default for DatabaseSection {
    fn default() -> Self {
        DatabaseSection {
            url: DEFAULT_DATABASE_URL.into(),
            pool_size: 8,
            sqlite_max_mb: 0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ServerSection {
    listen: String,
    max_body_mb: usize,
    workers: usize,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: DEFAULT_LISTEN.into(),
            max_body_mb: 64,
            workers: 2,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct LogSection {
    format: LogFormat,
    level: String,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct PrivacySection {
    patient_key_file: Option<PathBuf>,
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
        let followup = {
            let f = &fc.followup;
            let model = match f.betalningsansvar_model.as_deref() {
                Some(m) => crate::followup::leadtimes::Model::parse(m)
                    .map_err(|e| anyhow::anyhow!("followup.betalningsansvar_model: {e}"))?,
                None if fc.rules.profile.as_deref() == Some("vasterbotten") => {
                    crate::followup::leadtimes::Model::Vasterbotten
                }
                None => crate::followup::leadtimes::Model::Rullande,
            };
            let mut prices = default_prices();
            for (year, price) in &f.vardygn_pris {
                let y: i32 = year
                    .parse()
                    .ok()
                    .filter(|y| (1990..=2200).contains(y))
                    .ok_or_else(|| anyhow::anyhow!("followup.vardygn_pris: `{year}` är inget årtal"))?;
                anyhow::ensure!(*price >= 0, "followup.vardygn_pris.{year} får inte vara negativt");
                prices.insert(y, *price);
            }
            anyhow::ensure!(
                (1..=crate::followup::forvarning::MAX_HOURS).contains(&f.forvarning_hours),
                "followup.forvarning_hours ska vara 1–{}",
                crate::followup::forvarning::MAX_HOURS
            );
            anyhow::ensure!(
                (0..=30).contains(&f.bemanning_paminnelse_dagar),
                "followup.bemanning_paminnelse_dagar ska vara 0–30"
            );
            FollowupConfig {
                model,
                prices: crate::followup::leadtimes::Prices(prices),
                forvarning_hours: f.forvarning_hours,
                staffing_reminder_days: f.bemanning_paminnelse_dagar,
            }
        };
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
            scan: ScanConfig {
                arrival_margin: chrono::Duration::seconds(fc.scan.arrival_margin_seconds.max(0)),
                chunk_cases: match env("SVU_VAKT_SCAN_CHUNK_CASES") {
                    Some(v) => v
                        .parse()
                        .ok()
                        .filter(|n| (1..=30_000).contains(n))
                        .ok_or_else(|| anyhow::anyhow!("SVU_VAKT_SCAN_CHUNK_CASES ska vara ett heltal 1–30000"))?,
                    None => {
                        anyhow::ensure!(
                            (1..=30_000).contains(&fc.scan.chunk_cases),
                            "scan.chunk_cases ska vara 1–30000 (en SQL-variabel per ärende)"
                        );
                        fc.scan.chunk_cases
                    }
                },
                ..ScanConfig::parse(&fc.scan.schedule, fc.scan.grace_minutes, fc.scan.staffing_lookback_days)?
            },
            mail: MailConfig {
                smtp_url: SmtpUrl(
                    overrides
                        .smtp_url
                        .clone()
                        .or_else(|| env("SVU_VAKT_SMTP_URL"))
                        .unwrap_or(fc.mail.smtp_url),
                ),
                from: fc.mail.from,
                default_to: fc.mail.default_to,
                mode: fc.mail.mode,
                base_url: fc.mail.base_url.trim_end_matches('/').to_string(),
                templates_dir: fc.mail.templates_dir,
                deliver_every_seconds: fc.mail.deliver_every_seconds.max(1),
                smtp_timeout_seconds: fc.mail.smtp_timeout_seconds.max(1),
                claim_seconds: match env("SVU_VAKT_MAIL_CLAIM_SECONDS") {
                    Some(v) => v
                        .parse()
                        .map_err(|_| anyhow::anyhow!("SVU_VAKT_MAIL_CLAIM_SECONDS ska vara ett heltal (sekunder)"))?,
                    None => fc.mail.claim_seconds,
                },
                max_age_days: match env("SVU_VAKT_MAIL_MAX_AGE_DAYS") {
                    Some(v) => v
                        .parse()
                        .map_err(|_| anyhow::anyhow!("SVU_VAKT_MAIL_MAX_AGE_DAYS ska vara ett heltal (dagar)"))?,
                    None => fc.mail.max_age_days,
                },
                routes: fc.mail.routes,
            }
            .validated()?,
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

/// The installation secret for patient hashes: `SVU_VAKT_PATIENT_KEY`, else
/// the key file (default beside a SQLite database, `data/patient.key` for
/// PostgreSQL), created with fresh random bytes on first start.
fn patient_key(file: Option<PathBuf>, db: &DbUrl) -> anyhow::Result<Secret> {
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

fn read_key_file(path: &Path) -> anyhow::Result<Secret> {
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
fn create_key_file(path: &Path) -> anyhow::Result<Secret> {
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
    fn the_shipped_example_config_loads() {
        let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        std::env::set_var("SVU_VAKT_PATIENT_KEY_FILE", dir.path().join("k").display().to_string());
        let c = Config::load(Some(Path::new("ops/svu-vakt.toml")), &Overrides::default()).unwrap();
        assert!(c.scan.schedule.is_some());
        assert_eq!(c.mail.routes.len(), 2);
        let secret = SmtpUrl("smtp://svu:hemligt@smtp.example.se:587?tls=required".into());
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
