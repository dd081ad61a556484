//! Mail: where a deviation goes (`routing`), what the mail says
//! (`templates`, Swedish Handlebars templates compiled in and overridable from
//! a directory), and getting it there (`delivery`: the outbox in the database
//! drained over SMTP with retries and backoff). A route may also deliver to
//! the huvudman's own deviation system (SPEC §6.0): the report as one JSON
//! document (`document`), POSTed signed (`webhook`) from the same outbox
//! (`webhook_delivery`).

pub mod delivery;
pub mod document;
pub mod outbox;
pub mod report;
pub mod routing;
pub mod templates;
pub mod webhook;
pub mod webhook_delivery;

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use crate::domain::{Secret, UnitKind};

/// One mail per deviation, or one digest per recipient per scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailMode {
    PerAvvikelse,
    Sammanstallning,
}

/// The SMTP URL may hold a password: it never prints.
#[derive(Clone, Default)]
pub struct SmtpUrl(pub String);

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::store::redact_url(&self.0))
    }
}

/// A routing rule of the config: the first whose criteria all match wins.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub huvudman: Option<String>,
    pub kind: Option<UnitKind>,
    /// Matches the unit and every unit below it.
    pub unit: Option<String>,
    /// Used when the responsible unit has no e-mail of its own (or always,
    /// with `intake_first`).
    pub to: Option<String>,
    /// Copies, added to every deviation the route matches.
    #[serde(default)]
    pub cc: Vec<String>,
    /// Where reminders escalate for a unit without a `chef_email`.
    pub escalate_to: Option<String>,
    /// The copies get a short closing notice, with the åtgärd, when a
    /// deviation is closed (`avslutad`).
    #[serde(default)]
    pub notify_on_close: bool,
    /// `to` (the huvudman's central intake) is the recipient even when the
    /// unit has an e-mail of its own; the unit's e-mail becomes a copy
    /// (SPEC §6.0).
    #[serde(default)]
    pub intake_first: bool,
    /// Each report (and its withdrawal and closing) also goes as one JSON
    /// document to this http(s) URL, the huvudman's own deviation system.
    pub webhook_url: Option<String>,
    /// A file holding the webhook's HMAC secret; the environment variable
    /// `SVU_VAKT_WEBHOOK_SECRET_<n>` (n: the route's place, from 1) wins.
    pub webhook_secret_file: Option<PathBuf>,
    /// The secret, read at start-up from the environment or the file.
    #[serde(skip)]
    pub webhook_secret: Option<Secret>,
    /// False: the route's deviations go to the webhook only, never by mail.
    #[serde(default = "yes")]
    pub mail: bool,
}

fn yes() -> bool {
    true
}

impl Default for Route {
    fn default() -> Route {
        Route {
            huvudman: None,
            kind: None,
            unit: None,
            to: None,
            cc: Vec::new(),
            escalate_to: None,
            notify_on_close: false,
            intake_first: false,
            webhook_url: None,
            webhook_secret_file: None,
            webhook_secret: None,
            mail: true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct MailConfig {
    pub smtp_url: SmtpUrl,
    pub from: String,
    pub default_to: String,
    pub mode: MailMode,
    pub base_url: String,
    pub templates_dir: Option<PathBuf>,
    pub deliver_every_seconds: u64,
    pub smtp_timeout_seconds: u64,
    /// How long a webhook's receiver may take to answer one POST.
    pub webhook_timeout_seconds: u64,
    /// How long a sender holds the mail it is sending; a mail claimed by a
    /// process that died waits this long before another sends it.
    pub claim_seconds: u64,
    /// Deviations due longer ago than this are filed but not mailed (SPEC §6).
    pub max_age_days: i64,
    pub routes: Vec<Route>,
}

impl MailConfig {
    /// Checks every configured address with the parser the mailer uses, so a
    /// typo stops the start instead of failing every mail.
    pub fn validated(self) -> anyhow::Result<MailConfig> {
        let check = |what: &str, a: &str| crate::domain::parse_mailbox(a).map_err(|e| anyhow::anyhow!("{what}: {e}"));
        check("mail.from", &self.from)?;
        check("mail.default_to", &self.default_to)?;
        anyhow::ensure!(
            self.claim_seconds <= 86_400,
            "mail.claim_seconds får vara högst 86400 (ett dygn)"
        );
        anyhow::ensure!(
            self.claim_seconds >= 3 * self.smtp_timeout_seconds,
            "mail.claim_seconds ({}) måste vara minst tre gånger mail.smtp_timeout_seconds ({}): ett meddelande som håller på att skickas får inte tas av en annan avsändare",
            self.claim_seconds,
            self.smtp_timeout_seconds
        );
        // Only with a webhook: a config written before webhooks keeps starting.
        let hooks = self.routes.iter().any(|r| r.webhook_url.is_some());
        anyhow::ensure!(
            !hooks || self.claim_seconds >= 3 * self.webhook_timeout_seconds,
            "mail.claim_seconds ({}) måste vara minst tre gånger mail.webhook_timeout_seconds ({}): en rapport som håller på att skickas får inte tas av en annan avsändare",
            self.claim_seconds,
            self.webhook_timeout_seconds
        );
        for (i, r) in self.routes.iter().enumerate() {
            let n = i + 1;
            if let Some(to) = &r.to {
                check(&format!("mail.routes[{n}].to"), to)?;
            }
            for cc in &r.cc {
                check(&format!("mail.routes[{n}].cc"), cc)?;
            }
            if let Some(e) = &r.escalate_to {
                check(&format!("mail.routes[{n}].escalate_to"), e)?;
            }
            r.check_channels(n)?;
        }
        anyhow::ensure!(self.max_age_days >= 0, "mail.max_age_days får inte vara negativt");
        Ok(self)
    }

    /// The secret of the route whose webhook is `url`, if one still has it.
    pub fn webhook_secret(&self, url: &str) -> Option<&Secret> {
        self.routes
            .iter()
            .find(|r| r.webhook_url.as_deref() == Some(url))
            .and_then(|r| r.webhook_secret.as_ref())
    }

    /// The domain of the from-address, for Message-IDs.
    pub fn domain(&self) -> String {
        let addr = self.from.rsplit('<').next().unwrap_or(&self.from).trim_end_matches('>');
        addr.rsplit('@')
            .next()
            .filter(|d| !d.is_empty() && *d != addr)
            .unwrap_or("svu-vakt.local")
            .to_string()
    }
}

/// The shortest webhook secret taken: HMAC under a guessable key proves nothing.
pub const MIN_SECRET_BYTES: usize = 16;

impl Route {
    /// `intake_first` needs a `to`; a webhook an http(s) URL and a secret;
    /// `mail = false` a webhook (else the deviations would reach nobody).
    fn check_channels(&self, n: usize) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.intake_first || self.to.is_some(),
            "mail.routes[{n}]: intake_first = true kräver en `to` (huvudmannens centrala mottagning)"
        );
        anyhow::ensure!(
            self.mail || self.webhook_url.is_some(),
            "mail.routes[{n}]: mail = false kräver en webhook_url, annars når avvikelserna ingen"
        );
        let Some(url) = &self.webhook_url else {
            anyhow::ensure!(
                self.webhook_secret_file.is_none(),
                "mail.routes[{n}]: webhook_secret_file utan webhook_url"
            );
            return Ok(());
        };
        webhook::check_url(url).map_err(|e| anyhow::anyhow!("mail.routes[{n}].webhook_url: {e}"))?;
        let secret = self.webhook_secret.as_ref().ok_or_else(|| {
            anyhow::anyhow!(
                "mail.routes[{n}] har en webhook_url men ingen hemlighet: ange webhook_secret_file eller miljövariabeln SVU_VAKT_WEBHOOK_SECRET_{n}"
            )
        })?;
        anyhow::ensure!(
            secret.expose().len() >= MIN_SECRET_BYTES,
            "mail.routes[{n}]: webhookens hemlighet ska vara minst {MIN_SECRET_BYTES} byte"
        );
        Ok(())
    }
}
