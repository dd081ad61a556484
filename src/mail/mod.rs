//! Mail: where a deviation goes (`routing`), what the mail says
//! (`templates`, Swedish Handlebars templates compiled in and overridable from
//! a directory), and getting it there (`delivery`: the outbox in the database
//! drained over SMTP with retries and backoff).

pub mod delivery;
pub mod outbox;
pub mod report;
pub mod routing;
pub mod templates;
pub mod webhook;

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use crate::domain::UnitKind;

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
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub huvudman: Option<String>,
    pub kind: Option<UnitKind>,
    /// Matches the unit and every unit below it.
    pub unit: Option<String>,
    /// Used when the responsible unit has no e-mail of its own.
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
        for (i, r) in self.routes.iter().enumerate() {
            if let Some(to) = &r.to {
                check(&format!("mail.routes[{}].to", i + 1), to)?;
            }
            for cc in &r.cc {
                check(&format!("mail.routes[{}].cc", i + 1), cc)?;
            }
            if let Some(e) = &r.escalate_to {
                check(&format!("mail.routes[{}].escalate_to", i + 1), e)?;
            }
        }
        anyhow::ensure!(self.max_age_days >= 0, "mail.max_age_days får inte vara negativt");
        Ok(self)
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
