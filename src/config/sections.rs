//! The sections of the config file as they are read (`[database]`,
//! `[server]`, `[scan]`, `[mail]`, `[oidc]`, `[feed]`, `[followup]` …), each
//! with its documented defaults, and the resolved settings some of them
//! become. `config` (the parent) puts them together into one `Config`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::{env, LogFormat, DEFAULT_DATABASE_URL, DEFAULT_LISTEN};
use crate::mail::{MailConfig, MailMode, Route, SmtpUrl};

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
pub(super) struct OidcSection {
    pub(super) issuer: String,
    pub(super) client_id: String,
    /// Or the environment's `SVU_VAKT_OIDC_CLIENT_SECRET`, or a file.
    pub(super) client_secret: Option<String>,
    pub(super) client_secret_file: Option<PathBuf>,
    /// Default: `mail.base_url` + `/login/oidc/retur`.
    pub(super) redirect_url: Option<String>,
    /// Required: the IdPs name the HSA-id claim differently.
    pub(super) claim: String,
    /// `hsa_id` or `email`; required.
    pub(super) match_by: String,
    /// With `claim = "email"`: only an e-mail the IdP marks
    /// `email_verified: true` is matched (default); false trusts any.
    #[serde(default = "default_true")]
    pub(super) require_verified_email: bool,
    /// `refuse` or `create`.
    #[serde(default = "default_oidc_unknown")]
    pub(super) unknown_users: String,
    #[serde(default = "default_oidc_scopes")]
    pub(super) scopes: Vec<String>,
    #[serde(default = "default_oidc_button")]
    pub(super) button: String,
    pub(super) ca_file: Option<PathBuf>,
}

pub(super) fn default_true() -> bool {
    true
}
pub(super) fn default_oidc_unknown() -> String {
    "refuse".into()
}
pub(super) fn default_oidc_scopes() -> Vec<String> {
    vec!["openid".into(), "email".into(), "profile".into()]
}
pub(super) fn default_oidc_button() -> String {
    "Logga in via regionens inloggning".into()
}

impl OidcSection {
    pub(super) fn resolve(self, base_url: &str) -> anyhow::Result<crate::oidc::OidcConfig> {
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
pub(super) struct FeedSection {
    pub(super) directory: Option<PathBuf>,
    pub(super) settle_seconds: u64,
    pub(super) poll_seconds: u64,
    pub(super) csv: Vec<CsvSourceSection>,
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
pub(super) struct CsvSourceSection {
    pub(super) pattern: String,
    pub(super) mapping: PathBuf,
}

impl FeedSection {
    /// The checked drop folder: it exists, and every mapping loads.
    pub(super) fn resolve(self) -> anyhow::Result<Option<crate::feed::FeedConfig>> {
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
pub(super) struct FollowupSection {
    /// `vasterbotten` or `rullande`; default: `vasterbotten` under that profile, else `rullande`.
    pub(super) betalningsansvar_model: Option<String>,
    /// Year → the vårddygn price in kronor (Socialstyrelsen's yearly figure).
    pub(super) vardygn_pris: BTreeMap<String, i64>,
    /// The förvarning page's default window.
    pub(super) forvarning_hours: i64,
    /// Days before a storhelg staffing day to remind each covered unit that
    /// has not registered `bemanning` (0: off, the default).
    pub(super) bemanning_paminnelse_dagar: i64,
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
pub(super) fn default_prices() -> BTreeMap<i32, i64> {
    BTreeMap::from([(2022, 9300)])
}

/// `[handling]`: reminders and escalation of deviations left unhandled (SPEC §6.1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct HandlingSection {
    pub(super) remind_after_days: i64,
    pub(super) escalate_after_days: i64,
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
pub(super) struct SessionSection {
    pub(super) idle_minutes: i64,
    pub(super) absolute_hours: i64,
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
pub(super) struct ScanSection {
    pub(super) schedule: String,
    pub(super) grace_minutes: i64,
    pub(super) staffing_lookback_days: i64,
    pub(super) arrival_margin_seconds: i64,
    pub(super) chunk_cases: i64,
}

impl Default for ScanSection {
    fn default() -> Self {
        ScanSection {
            schedule: "0 */15 * * * *".into(),
            grace_minutes: 60,
            staffing_lookback_days: 14,
            arrival_margin_seconds: 600,
            chunk_cases: 5000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct MailSection {
    pub(super) smtp_url: String,
    pub(super) from: String,
    pub(super) default_to: String,
    pub(super) mode: MailMode,
    pub(super) base_url: String,
    pub(super) templates_dir: Option<PathBuf>,
    pub(super) deliver_every_seconds: u64,
    pub(super) smtp_timeout_seconds: u64,
    pub(super) webhook_timeout_seconds: u64,
    pub(super) claim_seconds: u64,
    pub(super) max_age_days: i64,
    pub(super) routes: Vec<Route>,
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
            webhook_timeout_seconds: 10,
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
    /// commit per chunk, and pages the chunks share written once); an
    /// ingest waits at most one chunk's transaction on SQLite (about 0.2 s
    /// at 5 000).
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
            chunk_cases: 5000,
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct DatabaseSection {
    pub(super) url: String,
    pub(super) pool_size: u32,
    /// SQLite: the largest the file may grow, in MiB; 0: no limit.
    pub(super) sqlite_max_mb: u64,
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
pub(super) struct ServerSection {
    pub(super) listen: String,
    pub(super) max_body_mb: usize,
    pub(super) workers: usize,
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
pub(super) struct LogSection {
    pub(super) format: LogFormat,
    pub(super) level: String,
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
pub(super) struct PrivacySection {
    pub(super) patient_key_file: Option<PathBuf>,
}

impl FollowupSection {
    /// The settings `[followup]` resolves to; the model's default follows the profile.
    pub(super) fn resolve(&self, profile: Option<&str>) -> anyhow::Result<FollowupConfig> {
        let f = self;
        let model = match f.betalningsansvar_model.as_deref() {
            Some(m) => crate::followup::leadtimes::Model::parse(m)
                .map_err(|e| anyhow::anyhow!("followup.betalningsansvar_model: {e}"))?,
            None if profile == Some("vasterbotten") => crate::followup::leadtimes::Model::Vasterbotten,
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
        Ok(FollowupConfig {
            model,
            prices: crate::followup::leadtimes::Prices(prices),
            forvarning_hours: f.forvarning_hours,
            staffing_reminder_days: f.bemanning_paminnelse_dagar,
        })
    }
}

impl ScanSection {
    /// The settings `[scan]` resolves to (`SVU_VAKT_SCAN_CHUNK_CASES` wins).
    pub(super) fn resolve(&self) -> anyhow::Result<ScanConfig> {
        Ok(ScanConfig {
            arrival_margin: chrono::Duration::seconds(self.arrival_margin_seconds.max(0)),
            chunk_cases: match env("SVU_VAKT_SCAN_CHUNK_CASES") {
                Some(v) => v
                    .parse()
                    .ok()
                    .filter(|n| (1..=30_000).contains(n))
                    .ok_or_else(|| anyhow::anyhow!("SVU_VAKT_SCAN_CHUNK_CASES ska vara ett heltal 1–30000"))?,
                None => {
                    anyhow::ensure!(
                        (1..=30_000).contains(&self.chunk_cases),
                        "scan.chunk_cases ska vara 1–30000 (en SQL-variabel per ärende)"
                    );
                    self.chunk_cases
                }
            },
            ..ScanConfig::parse(&self.schedule, self.grace_minutes, self.staffing_lookback_days)?
        })
    }
}

impl MailSection {
    /// The settings `[mail]` resolves to (`smtp_url` from the flag wins, then
    /// the environment), every address checked.
    pub(super) fn resolve(self, smtp_url: Option<String>) -> anyhow::Result<MailConfig> {
        MailConfig {
            smtp_url: SmtpUrl(smtp_url.or_else(|| env("SVU_VAKT_SMTP_URL")).unwrap_or(self.smtp_url)),
            from: self.from,
            default_to: self.default_to,
            mode: self.mode,
            base_url: self.base_url.trim_end_matches('/').to_string(),
            templates_dir: self.templates_dir,
            deliver_every_seconds: self.deliver_every_seconds.max(1),
            smtp_timeout_seconds: self.smtp_timeout_seconds.max(1),
            webhook_timeout_seconds: self.webhook_timeout_seconds.max(1),
            claim_seconds: match env("SVU_VAKT_MAIL_CLAIM_SECONDS") {
                Some(v) => v
                    .parse()
                    .map_err(|_| anyhow::anyhow!("SVU_VAKT_MAIL_CLAIM_SECONDS ska vara ett heltal (sekunder)"))?,
                None => self.claim_seconds,
            },
            max_age_days: match env("SVU_VAKT_MAIL_MAX_AGE_DAYS") {
                Some(v) => v
                    .parse()
                    .map_err(|_| anyhow::anyhow!("SVU_VAKT_MAIL_MAX_AGE_DAYS ska vara ett heltal (dagar)"))?,
                None => self.max_age_days,
            },
            routes: with_webhook_secrets(self.routes)?,
        }
        .validated()
    }
}

/// Each route's webhook secret: `SVU_VAKT_WEBHOOK_SECRET_<n>` (n: the
/// route's place in the file, from 1), else the content of its
/// `webhook_secret_file` with the line end trimmed. Whether a webhook has
/// one is checked by `MailConfig::validated`, which refuses the start.
fn with_webhook_secrets(mut routes: Vec<Route>) -> anyhow::Result<Vec<Route>> {
    for (i, r) in routes.iter_mut().enumerate() {
        let n = i + 1;
        let secret = match (env(&format!("SVU_VAKT_WEBHOOK_SECRET_{n}")), &r.webhook_secret_file) {
            (Some(s), _) => Some(s),
            (None, Some(file)) => Some(
                std::fs::read_to_string(file)
                    .map_err(|e| anyhow::anyhow!("mail.routes[{n}].webhook_secret_file {}: {e}", file.display()))?,
            ),
            (None, None) => None,
        };
        r.webhook_secret = secret
            .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
            .filter(|s| !s.is_empty())
            .map(|s| crate::domain::Secret::new(s.into_bytes()));
    }
    Ok(routes)
}
