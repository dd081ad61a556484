//! Draining the outbox over SMTP. Rows are claimed for a few minutes (on
//! PostgreSQL with `FOR UPDATE SKIP LOCKED`), rendered from what the
//! database says now, sent, and marked (see `outbox`). What the server does
//! decides what happens next:
//! - accepted: sent, its deviations `skickad`;
//! - refused permanently (5xx, an address it rejects, an address that does
//!   not parse): failed, never claimed again, the default address told;
//! - refused for now (4xx): retried with backoff (1, 2, 4 … minutes, at
//!   most an hour), and the round goes on with the next mail;
//! - unreachable, or refusing our login: nothing is marked (a connection test
//!   opens each round), or the round ends and the rest waits.
//!
//! Each mail has a Message-ID fixed per mail, so a mail re-sent after a
//! crash between sending and marking is recognisable as the same message.

use crate::domain::handling::DeviationStatus;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use lettre::message::{Mailbox, MultiPart};
use lettre::{Message, SmtpTransport, Transport};
use serde::Serialize;
use serde_json::json;

use super::report;
use super::templates::{Rendered, Templates};
use super::MailConfig;
use crate::rules::Units;
use crate::store::deviations::DeviationRow;
use crate::store::outbox::{self, MailKind, MailRow};
use crate::store::{DbConn, Pool};

const BATCH: i64 = 20;

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct DeliveryReport {
    pub sent: usize,
    /// Failures that are retried (4xx, server unreachable).
    pub failed: usize,
    /// Permanent refusals: marked failed, not retried.
    pub refused: usize,
    /// Mails with nothing left to say (every deviation withdrawn first).
    pub cancelled: usize,
    pub pending: i64,
}

pub struct Mailer {
    transport: SmtpTransport,
    from: Mailbox,
    config: MailConfig,
    templates: Arc<Templates>,
}

impl Mailer {
    /// None when no SMTP URL is configured: deviations are filed and their
    /// mail waits in the outbox.
    pub fn from_config(cfg: &MailConfig, templates: Arc<Templates>) -> anyhow::Result<Option<Mailer>> {
        if cfg.smtp_url.0.trim().is_empty() {
            return Ok(None);
        }
        let transport = SmtpTransport::from_url(&cfg.smtp_url.0)
            .map_err(|e| anyhow::anyhow!("mail.smtp_url {:?} går inte att använda: {e}", cfg.smtp_url))?
            .timeout(Some(StdDuration::from_secs(cfg.smtp_timeout_seconds)))
            .build();
        let from = crate::domain::parse_mailbox(&cfg.from).map_err(|e| anyhow::anyhow!("mail.from: {e}"))?;
        Ok(Some(Mailer {
            transport,
            from,
            config: cfg.clone(),
            templates,
        }))
    }

    fn message(&self, m: &MailRow, content: &Rendered) -> anyhow::Result<Message> {
        let r = m.recipients();
        let mut b = Message::builder()
            .from(self.from.clone())
            .to(crate::domain::parse_mailbox(&r.to).map_err(Refusal)?)
            .subject(content.subject.clone())
            .message_id(Some(m.message_id.clone()));
        for cc in &r.cc {
            b = b.cc(crate::domain::parse_mailbox(cc).map_err(Refusal)?);
        }
        if let Some(parent) = &m.in_reply_to {
            b = b.in_reply_to(parent.clone()).references(parent.clone());
        }
        Ok(b.multipart(MultiPart::alternative_plain_html(
            content.text.clone(),
            content.html.clone(),
        ))?)
    }
}

/// An address that cannot be mailed: as permanent as a 550.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refusal(String);

/// Backoff after the n-th failed attempt.
pub fn backoff(attempts: i32) -> Duration {
    Duration::minutes(1i64 << attempts.clamp(1, 7).saturating_sub(1)).min(Duration::hours(1))
}

/// What the renderer needs besides a mail row, loaded once per round.
struct Context {
    units: Units,
    scan_as_of: HashMap<i64, DateTime<Utc>>,
}

/// Sends what is due. With `respect_backoff` false (an operator's `scan`),
/// mail waiting for its next attempt is tried at once; it still ends: a
/// refused mail is never claimed again, and a failure that may pass ends
/// the round.
pub fn deliver(pool: &Pool, mailer: &Mailer, respect_backoff: bool) -> anyhow::Result<DeliveryReport> {
    let mut conn = pool.get()?;
    let mut report = DeliveryReport {
        pending: outbox::pending_count(&mut conn)?,
        ..DeliveryReport::default()
    };
    if report.pending == 0 {
        return Ok(report);
    }
    // A server that cannot be reached, or that refuses our login or TLS, is
    // no reason to fail any one mail: nothing is claimed, the next round tries.
    if let Err(e) = mailer.transport.test_connection() {
        tracing::warn!(error = %e, "SMTP-servern går inte att använda nu; e-posten väntar");
        report.failed = 1;
        return Ok(report);
    }
    let mut round = Round {
        mailer,
        ctx: Context {
            units: Units::new(crate::store::units::all(&mut conn)?),
            scan_as_of: HashMap::new(),
        },
        domain: mailer.config.domain(),
        report,
        tried: HashSet::new(),
    };
    round.run(&mut conn, respect_backoff)?;
    let mut report = round.report;
    report.pending = outbox::pending_count(&mut conn)?;
    Ok(report)
}

/// One round of delivery: what it has tried and what came of it.
struct Round<'a> {
    mailer: &'a Mailer,
    ctx: Context,
    domain: String,
    report: DeliveryReport,
    /// Each mail is tried once a round: one put back for a retry (which an
    /// operator's round may claim again at once) ends the round when it comes back.
    tried: HashSet<i64>,
}

/// After one mail: on with the next, or the server is lost for this round.
enum Next {
    Mail,
    EndRound,
}

impl Round<'_> {
    fn claim_for(&self) -> Duration {
        Duration::seconds(self.mailer.config.claim_seconds as i64)
    }

    /// Claims and sends batch after batch, until none is left, a mail this
    /// round tried comes back, or the server is lost (the rest handed back).
    fn run(&mut self, conn: &mut DbConn, respect_backoff: bool) -> anyhow::Result<()> {
        loop {
            let batch = outbox::claim(conn, BATCH, respect_backoff, self.claim_for())?;
            if batch.is_empty() {
                return Ok(());
            }
            let fresh = batch
                .iter()
                .position(|m| self.tried.contains(&m.id))
                .unwrap_or(batch.len());
            outbox::release(conn, &batch[fresh..])?;
            if fresh == 0 {
                return Ok(());
            }
            let batch = &batch[..fresh];
            for (i, m) in batch.iter().enumerate() {
                if let Next::EndRound = self.one(conn, m)? {
                    outbox::release(conn, &batch[i + 1..])?;
                    return Ok(());
                }
            }
        }
    }

    /// Renders, sends and marks one claimed mail.
    fn one(&mut self, conn: &mut DbConn, m: &MailRow) -> anyhow::Result<Next> {
        self.tried.insert(m.id);
        // Still ours? A claim that lapsed may have been taken by another sender.
        if !outbox::renew_claim(conn, m, self.claim_for())? {
            return Ok(Next::Mail);
        }
        let Some((content, included)) = self.content(conn, m)? else {
            return Ok(Next::Mail);
        };
        let result = self
            .mailer
            .message(m, &content)
            .and_then(|msg| send(self.mailer, &msg, &m.recipients()));
        match result {
            Ok(refused_copies) => {
                mark_sent(conn, m, &included, &self.domain)?;
                self.report.sent += 1;
                if !refused_copies.is_empty() {
                    self.report.refused += refused_copies.len();
                    tracing::error!(message = %m.message_id, copies = ?refused_copies, "kopiorna vägrades permanent; mottagaren fick meddelandet");
                    outbox::notice_refused_copies(
                        conn,
                        m,
                        &refused_copies,
                        &self.mailer.config.default_to,
                        &self.domain,
                    )?;
                }
                Ok(Next::Mail)
            }
            Err(e) if permanent(&e) => {
                refuse(conn, self.mailer, m, &format!("{e:#}"), &self.domain)?;
                self.report.refused += 1;
                Ok(Next::Mail)
            }
            Err(e) => {
                self.report.failed += 1;
                let text = format!("{e:#}");
                outbox::mark_retry(conn, m, &text, backoff(m.attempts + 1))?;
                tracing::warn!(message = %m.message_id, attempts = m.attempts + 1, error = %text, "meddelandet levererades inte; försöker igen");
                // A 4xx is about this message: go on with the next. A
                // connection lost is about the server: end the round.
                Ok(if transient(&e) { Next::Mail } else { Next::EndRound })
            }
        }
    }

    /// What `m` says now and the deviations it holds; None when nothing is
    /// left to say (cancelled) or it could not be made (tried again later).
    fn content(&mut self, conn: &mut DbConn, m: &MailRow) -> anyhow::Result<Option<(Rendered, Vec<i64>)>> {
        match compose(conn, self.mailer, &mut self.ctx, m) {
            Ok(Some(c)) => Ok(Some(c)),
            Ok(None) => {
                outbox::mark_cancelled(conn, m)?;
                self.report.cancelled += 1;
                Ok(None)
            }
            Err(e) => {
                // The database or a template, not the message: try again later.
                self.report.failed += 1;
                let text = format!("kunde inte skapa meddelandet: {e:#}");
                tracing::error!(message = %m.message_id, error = %text, "meddelandet kunde inte skapas; försöker igen");
                outbox::mark_retry(conn, m, &text, backoff(m.attempts + 1))?;
                Ok(None)
            }
        }
    }
}

/// Marks a sent mail, retrying a transaction PostgreSQL chose as a
/// deadlock victim: the mail went out, so it must be marked.
fn mark_sent(conn: &mut DbConn, m: &MailRow, included: &[i64], domain: &str) -> anyhow::Result<()> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match outbox::mark_sent(conn, m, included, domain) {
            Err(e) if attempt < 5 && crate::store::retryable(&e) => continue,
            other => return Ok(other?),
        }
    }
}

/// Sends `msg`. When the server refuses it for good and it has copies, each
/// address is tried alone (the same message, an envelope each), so a refused
/// copy — a full mailbox at the process owner's — does not keep the report
/// from its recipient. Ok with the copies refused, with the server's answer.
fn send(mailer: &Mailer, msg: &Message, r: &super::routing::Recipients) -> anyhow::Result<Vec<(String, String)>> {
    let whole = match mailer.transport.send(msg) {
        Ok(_) => return Ok(Vec::new()),
        Err(e) if e.is_permanent() && !r.cc.is_empty() => e,
        Err(e) => return Err(e.into()),
    };
    tracing::warn!(error = %whole, "meddelandet vägrades; mottagare och kopior prövas en och en");
    let raw = msg.formatted();
    let alone = |addr: &str| -> anyhow::Result<()> {
        let to = crate::domain::parse_mailbox(addr).map_err(Refusal)?.email;
        let envelope = lettre::address::Envelope::new(Some(mailer.from.email.clone()), vec![to])?;
        mailer.transport.send_raw(&envelope, &raw)?;
        Ok(())
    };
    // The recipient first: if it refuses, the mail is refused (or retried).
    alone(&r.to)?;
    let mut refused = Vec::new();
    for cc in &r.cc {
        if let Err(e) = alone(cc) {
            refused.push((cc.clone(), format!("{e:#}")));
        }
    }
    Ok(refused)
}

fn refuse(conn: &mut DbConn, mailer: &Mailer, m: &MailRow, error: &str, domain: &str) -> anyhow::Result<()> {
    tracing::error!(message = %m.message_id, kind = %m.kind, error = %error, "meddelandet vägrades permanent; skickas inte igen");
    outbox::mark_failed(conn, m, error, &mailer.config.default_to, domain)?;
    Ok(())
}

fn transient(e: &anyhow::Error) -> bool {
    e.downcast_ref::<lettre::transport::smtp::Error>()
        .is_some_and(|e| e.is_transient())
}

fn permanent(e: &anyhow::Error) -> bool {
    e.downcast_ref::<lettre::transport::smtp::Error>()
        .is_some_and(|e| e.is_permanent())
        || e.downcast_ref::<lettre::address::AddressError>().is_some()
        || e.downcast_ref::<Refusal>().is_some()
}

/// The mail as it should read now, with the deviations it reports; None
/// when every deviation it was queued for has been withdrawn or voided.
fn compose(
    conn: &mut DbConn,
    mailer: &Mailer,
    ctx: &mut Context,
    m: &MailRow,
) -> anyhow::Result<Option<(Rendered, Vec<i64>)>> {
    let t = &mailer.templates;
    let ids = m.ids();
    match m.kind {
        MailKind::Avvikelse | MailKind::Sammanstallning => {
            let live: Vec<DeviationRow> = outbox::deviations_of(conn, &ids)?
                .into_iter()
                .filter(|d| !matches!(d.status, DeviationStatus::Aterkallad | DeviationStatus::Makulerad))
                .collect();
            if live.is_empty() {
                return Ok(None);
            }
            let data = live
                .iter()
                .map(|d| data(conn, mailer, ctx, d))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let included = live.iter().map(|d| d.id).collect();
            let content = if m.kind == MailKind::Avvikelse {
                t.render(MailKind::Avvikelse, &data[0])?
            } else {
                t.render(
                    MailKind::Sammanstallning,
                    &json!({"antal": data.len(), "avvikelser": data}),
                )?
            };
            Ok(Some((content, included)))
        }
        MailKind::Aterkallelse => {
            let Some(d) = outbox::deviations_of(conn, &ids)?.into_iter().next() else {
                return Ok(None);
            };
            let data = data(conn, mailer, ctx, &d)?;
            Ok(Some((t.render(MailKind::Aterkallelse, &data)?, vec![d.id])))
        }
        // A reminder is moot once the deviation is closed or withdrawn; a
        // closing notice once it was reopened.
        MailKind::Paminnelse | MailKind::Eskalering | MailKind::Avslutad => {
            let Some(d) = outbox::deviations_of(conn, &ids)?.into_iter().next() else {
                return Ok(None);
            };
            let still = if m.kind == MailKind::Avslutad {
                d.status == DeviationStatus::Avslutad
            } else {
                d.status.is_open() && d.status != DeviationStatus::Ny
            };
            if !still {
                return Ok(None);
            }
            let mut data = data(conn, mailer, ctx, &d)?;
            let payload: serde_json::Value = serde_json::from_str(m.payload.as_deref().unwrap_or("{}"))?;
            if let (Some(o), serde_json::Value::Object(more)) = (data.as_object_mut(), payload) {
                o.extend(more);
            }
            Ok(Some((t.render(m.kind, &data)?, vec![d.id])))
        }
        MailKind::Misslyckad | MailKind::EjMejlade | MailKind::BemanningPaminnelse | MailKind::WebhookMisslyckad => {
            let payload: serde_json::Value = serde_json::from_str(m.payload.as_deref().unwrap_or("{}"))?;
            Ok(Some((t.render(m.kind, &payload)?, Vec::new())))
        }
    }
}

fn data(conn: &mut DbConn, mailer: &Mailer, ctx: &mut Context, d: &DeviationRow) -> anyhow::Result<serde_json::Value> {
    let as_of = match ctx.scan_as_of.get(&d.scan_id) {
        Some(t) => *t,
        None => {
            let t = outbox::scan_as_of(conn, d.scan_id)?;
            let t = t.map_or(d.created_at.and_utc(), |t| t.and_utc());
            ctx.scan_as_of.insert(d.scan_id, t);
            t
        }
    };
    let parties = crate::store::deviations::parties_of(conn, &[d.id])?
        .remove(&d.id)
        .unwrap_or_default();
    report::data(d, &parties, &ctx.units, &mailer.config, &mailer.templates, as_of)
}
