//! Draining the outbox's webhook rows (SPEC §6.0) as `delivery` drains its
//! mail: rows are claimed for `mail.claim_seconds` (on PostgreSQL with
//! `FOR UPDATE SKIP LOCKED`; a deviation's later notice waits for its
//! earlier one), the document is built from what the database says now,
//! POSTed signed under the route's secret with the row's Idempotency-Key,
//! and the row is marked by what the receiver did:
//! - 2xx: sent;
//! - no answer within `mail.webhook_timeout_seconds`, a dropped
//!   connection, 5xx or 429: retried with the mail's backoff (1, 2, 4 …
//!   minutes, at most an hour); the rest of that receiver's rows wait for
//!   the next round;
//! - any other answer (4xx, a redirect), or a URL no route has a secret
//!   for any more: failed, never claimed again, listed for admins, the
//!   default address told.
//!
//! A row is never lost: a sender that dies between the POST and the mark
//! leaves the row claimed, and the next sender after the claim lapses
//! POSTs it again with the same key, which the receiver drops.

use std::collections::HashSet;
use std::time::Duration as StdDuration;

use chrono::Duration;
use serde::Serialize;

use super::delivery::backoff;
use super::document::{self, Kind};
use super::templates::Templates;
use super::webhook::{self, Outcome};
use super::MailConfig;
use crate::domain::handling::DeviationStatus;
use crate::rules::Units;
use crate::store::outbox::{self, webhook as rows, MailRow};
use crate::store::{DbConn, Pool};

const BATCH: i64 = 20;

/// One round's outcome, as the scan's answer and the metrics count it.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct HookReport {
    pub sent: usize,
    /// Tries that are retried (no answer, 5xx, 429, the document not built).
    pub failed: usize,
    /// Refused for good: marked failed, not retried.
    pub refused: usize,
    /// Nothing left to say (the report's deviation withdrawn or voided first).
    pub cancelled: usize,
    pub pending: i64,
}

/// What became of one row.
enum Step {
    Sent,
    Cancelled,
    Refused,
    /// Not sent; the receiver asked us to wait (or did not answer).
    Retry,
    /// Not sent; our side failed (the database, a template).
    Failed,
}

/// Sends the webhook rows that are due. With `respect_backoff` false (an
/// operator's scan), rows waiting for their next attempt are tried at once;
/// each row is tried once a round.
pub fn deliver(
    pool: &Pool,
    mail: &MailConfig,
    templates: &Templates,
    respect_backoff: bool,
) -> anyhow::Result<HookReport> {
    let mut conn = pool.get()?;
    let mut report = HookReport {
        pending: rows::pending_count(&mut conn)?,
        ..HookReport::default()
    };
    if report.pending == 0 {
        return Ok(report);
    }
    let units = Units::new(crate::store::units::all(&mut conn)?);
    let lease = Duration::seconds(mail.claim_seconds as i64);
    let mut tried = HashSet::new();
    // Receivers that asked us to wait this round (or did not answer), and
    // their rows, held claimed until the round ends so that the claims
    // reach the other receivers' rows.
    let mut stalled: HashSet<String> = HashSet::new();
    let mut held: Vec<MailRow> = Vec::new();
    loop {
        let batch = rows::claim(&mut conn, BATCH, respect_backoff, lease)?;
        // A row retried this round is claimable again when backoff is
        // ignored: each row is tried once a round.
        let (again, fresh): (Vec<MailRow>, Vec<MailRow>) = batch.into_iter().partition(|m| tried.contains(&m.id));
        outbox::release(&mut conn, &again)?;
        if fresh.is_empty() {
            break;
        }
        for m in fresh {
            tried.insert(m.id);
            let url = m.webhook_url().unwrap_or_default();
            if stalled.contains(&url) {
                held.push(m);
                continue;
            }
            // Still ours? A claim that lapsed may have been taken by another sender.
            if !outbox::renew_claim(&mut conn, &m, lease)? {
                continue;
            }
            match send(&mut conn, mail, templates, &units, &m, &url)? {
                Step::Sent => report.sent += 1,
                Step::Cancelled => report.cancelled += 1,
                Step::Refused => report.refused += 1,
                Step::Failed => report.failed += 1,
                Step::Retry => {
                    report.failed += 1;
                    stalled.insert(url);
                }
            }
        }
    }
    outbox::release(&mut conn, &held)?;
    report.pending = rows::pending_count(&mut conn)?;
    Ok(report)
}

/// Builds, POSTs and marks one row.
fn send(
    conn: &mut DbConn,
    mail: &MailConfig,
    templates: &Templates,
    units: &Units,
    m: &MailRow,
    url: &str,
) -> anyhow::Result<Step> {
    let shown = webhook::shown(url);
    let body = match body(conn, mail, templates, units, m) {
        Ok(Some(body)) => body,
        Ok(None) => return Ok(Step::Cancelled),
        Err(e) => {
            let text = format!("kunde inte skapa rapporten: {e:#}");
            tracing::error!(key = %m.message_id, error = %text, "rapporten till avvikelsesystemet kunde inte skapas; försöker igen");
            outbox::mark_retry(conn, m, &text, backoff(m.attempts + 1))?;
            return Ok(Step::Failed);
        }
    };
    let outcome = match mail.webhook_secret(url) {
        Some(secret) => webhook::post(
            url,
            secret.expose(),
            &m.message_id,
            &body,
            StdDuration::from_secs(mail.webhook_timeout_seconds),
        ),
        None => {
            Outcome::Refused("ingen väg i konfigurationen har längre denna webhook_url (och dess hemlighet)".into())
        }
    };
    match outcome {
        Outcome::Accepted => {
            mark_sent(conn, m)?;
            Ok(Step::Sent)
        }
        Outcome::Retry(e) => {
            tracing::warn!(key = %m.message_id, to = %shown, attempts = m.attempts + 1, error = %e, "avvikelsesystemet tog inte emot rapporten; försöker igen");
            outbox::mark_retry(conn, m, &e, backoff(m.attempts + 1))?;
            Ok(Step::Retry)
        }
        Outcome::Refused(e) => {
            tracing::error!(key = %m.message_id, to = %shown, error = %e, "avvikelsesystemet vägrade rapporten; skickas inte igen");
            rows::mark_failed(conn, m, &shown, &e, &mail.default_to, &mail.domain())?;
            Ok(Step::Refused)
        }
    }
}

/// The document the row stands for, as JSON; None (the row cancelled) when
/// there is nothing to say any more: the report of a deviation withdrawn or
/// voided, the closing of one reopened since.
fn body(
    conn: &mut DbConn,
    mail: &MailConfig,
    templates: &Templates,
    units: &Units,
    m: &MailRow,
) -> anyhow::Result<Option<String>> {
    let kind = Kind::of(m.kind).ok_or_else(|| anyhow::anyhow!("en webhookrad av typen {}", m.kind))?;
    let Some(d) = outbox::deviations_of(conn, &m.ids())?.into_iter().next() else {
        rows::cancel(conn, m, None)?;
        return Ok(None);
    };
    let moot = match kind {
        Kind::Rapport => matches!(d.status, DeviationStatus::Aterkallad | DeviationStatus::Makulerad),
        Kind::Avslutad => d.status != DeviationStatus::Avslutad,
        Kind::Aterkallad => false,
    };
    if moot {
        let withdrawn = (d.status == DeviationStatus::Aterkallad).then_some(&d);
        rows::cancel(conn, m, withdrawn)?;
        return Ok(None);
    }
    let doc = document::of_deviation(conn, &d, units, mail, templates, kind)?;
    Ok(Some(serde_json::to_string(&doc)?))
}

/// Marks a row the receiver took, retrying a transaction PostgreSQL chose
/// as a deadlock victim: it went, so it must be marked.
fn mark_sent(conn: &mut DbConn, m: &MailRow) -> anyhow::Result<()> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match rows::mark_sent(conn, m) {
            Err(e) if attempt < 5 && crate::store::retryable(&e) => continue,
            other => return Ok(other?),
        }
    }
}
