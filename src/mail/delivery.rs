//! Draining the outbox over SMTP. Rows are claimed for a few minutes (on
//! PostgreSQL with `FOR UPDATE SKIP LOCKED`), sent, and marked sent together
//! with their deviations (`skickad`). A failure records the error and retries
//! later with backoff (1, 2, 4 … minutes, at most an hour); while the server
//! is unreachable the rest of the batch is released untouched. Each mail has
//! a deterministic Message-ID, so a mail re-sent after a crash between
//! sending and marking is recognisable as the same message.

use std::time::Duration as StdDuration;

use chrono::Duration;
use diesel::prelude::*;
use lettre::message::{Mailbox, MultiPart};
use lettre::{Message, SmtpTransport, Transport};
use serde::Serialize;

use super::routing::Recipients;
use super::MailConfig;
use crate::store::deviations::{self, MailRow};
use crate::store::schema::{deviations as dev, outbox};
use crate::store::{backend, now, DbConn, Pool};

const BATCH: i64 = 20;
const LEASE_MINUTES: i64 = 5;

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct DeliveryReport {
    pub sent: usize,
    pub failed: usize,
    pub pending: i64,
}

pub struct Mailer {
    transport: SmtpTransport,
    from: Mailbox,
}

impl Mailer {
    /// None when no SMTP URL is configured: deviations are filed and their
    /// mail waits in the outbox.
    pub fn from_config(cfg: &MailConfig) -> anyhow::Result<Option<Mailer>> {
        if cfg.smtp_url.0.trim().is_empty() {
            return Ok(None);
        }
        let transport = SmtpTransport::from_url(&cfg.smtp_url.0)
            .map_err(|e| anyhow::anyhow!("mail.smtp_url {:?} is not usable: {e}", cfg.smtp_url))?
            .timeout(Some(StdDuration::from_secs(cfg.smtp_timeout_seconds)))
            .build();
        let from: Mailbox = cfg
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("mail.from `{}` is not an address: {e}", cfg.from))?;
        Ok(Some(Mailer { transport, from }))
    }

    fn build(&self, m: &MailRow) -> anyhow::Result<Message> {
        let r = Recipients::from_json(&m.recipients);
        let mut b = Message::builder()
            .from(self.from.clone())
            .to(r.to.parse()?)
            .subject(m.subject.clone())
            .message_id(Some(m.message_id.clone()));
        for cc in &r.cc {
            b = b.cc(cc.parse()?);
        }
        if let Some(parent) = &m.in_reply_to {
            b = b.in_reply_to(parent.clone()).references(parent.clone());
        }
        Ok(b.multipart(MultiPart::alternative_plain_html(
            m.body_text.clone(),
            m.body_html.clone(),
        ))?)
    }
}

/// Backoff after the n-th failed attempt.
pub fn backoff(attempts: i32) -> Duration {
    Duration::minutes(1i64 << attempts.clamp(1, 7).saturating_sub(1)).min(Duration::hours(1))
}

/// Sends what is due. With `respect_backoff` false (an operator's `scan`),
/// mail waiting for its next attempt is tried at once.
pub fn deliver(pool: &Pool, mailer: &Mailer, respect_backoff: bool) -> anyhow::Result<DeliveryReport> {
    let mut conn = pool.get()?;
    let mut report = DeliveryReport::default();
    'outer: loop {
        let t = now();
        let batch = backend::claim_mail(
            &mut conn,
            t,
            t + Duration::minutes(LEASE_MINUTES),
            BATCH,
            respect_backoff,
        )?;
        if batch.is_empty() {
            break;
        }
        for (i, m) in batch.iter().enumerate() {
            let result = mailer
                .build(m)
                .and_then(|msg| mailer.transport.send(&msg).map_err(anyhow::Error::from));
            match result {
                Ok(_) => {
                    mark_sent(&mut conn, m)?;
                    report.sent += 1;
                }
                Err(e) => {
                    report.failed += 1;
                    mark_failed(&mut conn, m, &e)?;
                    tracing::warn!(message = %m.message_id, attempts = m.attempts + 1, error = %e, "mail not delivered; will retry");
                    if !permanent(&e) {
                        release(&mut conn, &batch[i + 1..])?;
                        break 'outer;
                    }
                }
            }
        }
    }
    report.pending = deviations::pending_count(&mut conn)?;
    Ok(report)
}

fn permanent(e: &anyhow::Error) -> bool {
    e.downcast_ref::<lettre::transport::smtp::Error>()
        .is_some_and(|e| e.is_permanent())
        || e.downcast_ref::<lettre::address::AddressError>().is_some()
}

fn mark_sent(conn: &mut DbConn, m: &MailRow) -> anyhow::Result<()> {
    let ids: Vec<i64> = serde_json::from_str(&m.deviation_ids)?;
    let to = Recipients::from_json(&m.recipients).to;
    conn.transaction(|conn| {
        diesel::update(outbox::table.find(m.id))
            .set((
                outbox::sent_at.eq(now()),
                outbox::claimed_until.eq(None::<chrono::NaiveDateTime>),
                outbox::attempts.eq(m.attempts + 1),
            ))
            .execute(conn)?;
        if m.kind != "aterkallelse" {
            let fresh: Vec<deviations::DeviationRow> = dev::table
                .filter(dev::id.eq_any(&ids))
                .filter(dev::status.eq("ny"))
                .load(conn)?;
            for d in fresh {
                deviations::set_status(conn, &d, "skickad", "svu-vakt", Some(&format!("mejlad till {to}")))?;
            }
        }
        Ok::<_, diesel::result::Error>(())
    })?;
    Ok(())
}

fn mark_failed(conn: &mut DbConn, m: &MailRow, e: &anyhow::Error) -> anyhow::Result<()> {
    let attempts = m.attempts + 1;
    let text: String = format!("{e:#}").chars().take(500).collect();
    diesel::update(outbox::table.find(m.id))
        .set((
            outbox::attempts.eq(attempts),
            outbox::last_error.eq(text),
            outbox::next_attempt_at.eq(now() + backoff(attempts)),
            outbox::claimed_until.eq(None::<chrono::NaiveDateTime>),
        ))
        .execute(conn)?;
    Ok(())
}

fn release(conn: &mut DbConn, rest: &[MailRow]) -> anyhow::Result<()> {
    let ids: Vec<i64> = rest.iter().map(|m| m.id).collect();
    diesel::update(outbox::table.filter(outbox::id.eq_any(ids)))
        .set(outbox::claimed_until.eq(None::<chrono::NaiveDateTime>))
        .execute(conn)?;
    Ok(())
}
