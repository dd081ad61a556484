//! The outbox's webhook rows (SPEC §6.0): a report, withdrawal or closing
//! owed to a route's webhook (the huvudman's own deviation system), written
//! in the transaction of the change that made it owed, like mail.
//!
//! A row is an outbox row with `channel = webhook`, the kind of the notice
//! it stands for (`Avvikelse` for the report, `Aterkallelse`, `Avslutad`),
//! its one deviation as `[id]`, the URL as `{"webhook": url}` in
//! `recipients`, and its Idempotency-Key in `message_id`:
//! `<fingerprint>:<kind>` for the first notice of its kind about a
//! deviation, `<fingerprint>:<kind>-<n>` for the n-th (a deviation
//! withdrawn, reopened and withdrawn again). The key is fixed when the row
//! is queued, so a repeat after a crash carries the same key, and the
//! unique `message_id` keeps one row per notice.
//!
//! Withdrawal and sending are ordered through the deviation rows, as for
//! mail (`super`): a withdrawal cancels a report not yet on its way and
//! tells the receiver when the report went or may have gone; a report
//! marked sent after its deviation was withdrawn queues the withdrawal
//! itself.

use std::collections::{HashMap, HashSet};

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::{enqueue, Channel, MailKind, MailRow, NewMail};
use crate::domain::handling::DeviationStatus;
use crate::domain::recipients::Recipients;
use crate::store::deviations::DeviationRow;
use crate::store::schema::{deviation_history, deviations as dev, outbox};
use crate::store::{backend, now, DbConn};

/// The word a notice has in a webhook's Idempotency-Key and in the
/// document's `kind`.
pub fn word(kind: MailKind) -> &'static str {
    match kind {
        MailKind::Avvikelse => "rapport",
        MailKind::Aterkallelse => "aterkallad",
        MailKind::Avslutad => "avslutad",
        other => other.as_str(),
    }
}

/// The Idempotency-Key of the `n`-th notice of `kind` about a deviation (from 1).
pub fn key(fingerprint: &str, kind: MailKind, n: usize) -> String {
    if n <= 1 {
        format!("{fingerprint}:{}", word(kind))
    } else {
        format!("{fingerprint}:{}-{n}", word(kind))
    }
}

/// The row of the `n`-th notice of `kind` about `d` to the webhook `url`.
pub fn row(d: &DeviationRow, kind: MailKind, n: usize, url: &str) -> NewMail {
    let mut m = NewMail::new(
        key(&d.fingerprint, kind, n),
        kind,
        &[d.id],
        &Recipients {
            to: String::new(),
            cc: Vec::new(),
            via: String::new(),
        },
    );
    m.recipients = serde_json::json!({ "webhook": url }).to_string();
    m.channel = Channel::Webhook;
    m
}

/// How many history lines of each deviation moved it to `status`: the
/// number of the notice a change to it makes (its line already written).
fn ordinals(conn: &mut DbConn, ids: &[i64], status: DeviationStatus) -> QueryResult<HashMap<i64, usize>> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(backend::CHUNK) {
        let counts: Vec<(i64, i64)> = deviation_history::table
            .filter(deviation_history::deviation_id.eq_any(chunk))
            .filter(deviation_history::to_status.eq(status))
            .group_by(deviation_history::deviation_id)
            .select((deviation_history::deviation_id, diesel::dsl::count_star()))
            .load(conn)?;
        out.extend(counts.into_iter().map(|(id, n)| (id, usize::try_from(n).unwrap_or(1))));
    }
    Ok(out)
}

/// Queues the `kind` notice of each deviation to its URL, numbered by its
/// history lines to `status`.
fn queue(
    conn: &mut DbConn,
    kind: MailKind,
    status: DeviationStatus,
    to: &[(&DeviationRow, String)],
) -> QueryResult<()> {
    if to.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = to.iter().map(|(d, _)| d.id).collect();
    let n = ordinals(conn, &ids, status)?;
    let rows: Vec<NewMail> = to
        .iter()
        .map(|(d, url)| row(d, kind, n.get(&d.id).copied().unwrap_or(1), url))
        .collect();
    enqueue(conn, &rows)?;
    Ok(())
}

/// The reports of deviations reopened (`to_status = ny` again), each
/// numbered after the reports before it.
pub fn reports_again(conn: &mut DbConn, to: &[(&DeviationRow, String)]) -> QueryResult<()> {
    queue(conn, MailKind::Avvikelse, DeviationStatus::Ny, to)
}

/// The latest report row of each deviation among `ids`.
fn latest_reports(conn: &mut DbConn, ids: &[i64]) -> QueryResult<HashMap<i64, MailRow>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(backend::CHUNK) {
        let of: HashMap<String, i64> = chunk.iter().map(|id| (format!("[{id}]"), *id)).collect();
        let keys: Vec<&str> = of.keys().map(String::as_str).collect();
        let rows: Vec<MailRow> = outbox::table
            .filter(outbox::deviation_ids.eq_any(keys))
            .filter(outbox::channel.eq(Channel::Webhook))
            .filter(outbox::kind.eq(MailKind::Avvikelse))
            .order(outbox::id)
            .load(conn)?;
        for r in rows {
            if let Some(id) = of.get(&r.deviation_ids) {
                out.insert(*id, r);
            }
        }
    }
    Ok(out)
}

/// Deviations among `ids` whose report reached a webhook.
pub fn delivered_among(conn: &mut DbConn, ids: &[i64]) -> QueryResult<HashSet<i64>> {
    Ok(latest_reports(conn, ids)?
        .into_iter()
        .filter(|(_, r)| r.sent_at.is_some())
        .map(|(id, _)| id)
        .collect())
}

/// `gone` were just withdrawn (their history line written, rows locked):
/// a report still waiting is cancelled; the receiver hears of the
/// withdrawal when the report went, or was tried and may have arrived. A
/// report on its way right now is left to `mark_sent`.
pub fn withdrawn(conn: &mut DbConn, gone: &[DeviationRow]) -> QueryResult<()> {
    let ids: Vec<i64> = gone.iter().map(|d| d.id).collect();
    let latest = latest_reports(conn, &ids)?;
    let t = now();
    let mut cancel = Vec::new();
    let mut told = Vec::new();
    for d in gone {
        let Some(r) = latest.get(&d.id) else { continue };
        let Some(url) = r.webhook_url() else { continue };
        if r.sent_at.is_some() {
            told.push((d, url));
        } else if r.cancelled_at.is_some() || r.failed_at.is_some() || r.claimed_until.is_some_and(|c| c >= t) {
            continue;
        } else {
            cancel.push(r.id);
            if r.attempts > 0 || r.claimed_until.is_some() {
                told.push((d, url));
            }
        }
    }
    for chunk in cancel.chunks(backend::CHUNK) {
        diesel::update(outbox::table.filter(outbox::id.eq_any(chunk)))
            .set(outbox::cancelled_at.eq(t))
            .execute(conn)?;
    }
    queue(conn, MailKind::Aterkallelse, DeviationStatus::Aterkallad, &told)
}

/// `d` was just closed (its history line written, row locked): the
/// receiver that has its report, or will, hears of it.
pub fn closed(conn: &mut DbConn, d: &DeviationRow) -> QueryResult<()> {
    let Some(r) = latest_reports(conn, &[d.id])?.remove(&d.id) else {
        return Ok(());
    };
    if r.cancelled_at.is_some() || r.failed_at.is_some() {
        return Ok(());
    }
    let Some(url) = r.webhook_url() else { return Ok(()) };
    queue(conn, MailKind::Avslutad, DeviationStatus::Avslutad, &[(d, url)])
}

/// Claims up to `limit` webhook rows that are due, each only when no
/// earlier row of its deviation is still on its way (`backend::claim_mail`).
pub fn claim(conn: &mut DbConn, limit: i64, respect_backoff: bool, lease: Duration) -> QueryResult<Vec<MailRow>> {
    let t = now();
    let ids = backend::claim_mail(conn, Channel::Webhook, t, t + lease, limit, respect_backoff)?;
    outbox::table
        .filter(outbox::id.eq_any(&ids))
        .order(outbox::id)
        .load(conn)
}

/// The receiver took `m`: marked sent (never its deviation's status:
/// `skickad` means mailed, SPEC §6.1). A report whose deviation was
/// withdrawn while it was on its way is followed by the withdrawal.
pub fn mark_sent(conn: &mut DbConn, m: &MailRow) -> QueryResult<()> {
    let ids = m.ids();
    backend::write_tx(conn, |conn| {
        backend::lock_deviations(conn, &ids)?;
        diesel::update(outbox::table.find(m.id))
            .set((
                outbox::sent_at.eq(now()),
                outbox::claimed_until.eq(None::<NaiveDateTime>),
                outbox::cancelled_at.eq(None::<NaiveDateTime>),
                outbox::attempts.eq(m.attempts + 1),
            ))
            .execute(conn)?;
        if m.kind != MailKind::Avvikelse {
            return Ok(());
        }
        let Some(url) = m.webhook_url() else { return Ok(()) };
        let rows: Vec<DeviationRow> = dev::table.filter(dev::id.eq_any(&ids)).load(conn)?;
        let gone: Vec<(&DeviationRow, String)> = rows
            .iter()
            .filter(|d| d.status == DeviationStatus::Aterkallad)
            .map(|d| (d, url.clone()))
            .collect();
        queue(conn, MailKind::Aterkallelse, DeviationStatus::Aterkallad, &gone)
    })
}

/// Nothing to send in `m` any more (its report's deviation withdrawn or
/// voided, its closing undone by a reopening). A report whose deviation
/// was withdrawn while it was claimed — perhaps by a sender that died after
/// the receiver had it — is followed by the withdrawal all the same: a
/// receiver can drop a withdrawal of what it never registered, but cannot
/// learn of one it was never sent.
pub fn cancel(conn: &mut DbConn, m: &MailRow, withdrawn: Option<&DeviationRow>) -> QueryResult<()> {
    backend::write_tx(conn, |conn| {
        diesel::update(outbox::table.find(m.id))
            .set((
                outbox::cancelled_at.eq(now()),
                outbox::claimed_until.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?;
        match (withdrawn, m.webhook_url()) {
            (Some(d), Some(url)) if m.kind == MailKind::Avvikelse => {
                queue(conn, MailKind::Aterkallelse, DeviationStatus::Aterkallad, &[(d, url)])
            }
            _ => Ok(()),
        }
    })
}

/// The receiver refused `m` for good (a 4xx other than 429, a redirect, a
/// URL no route has a secret for any more): never claimed again, listed for
/// admins, and the default address is told, in one transaction.
pub fn mark_failed(
    conn: &mut DbConn,
    m: &MailRow,
    shown_url: &str,
    error: &str,
    default_to: &str,
    domain: &str,
) -> QueryResult<()> {
    let error: String = error.chars().take(500).collect();
    backend::write_tx(conn, |conn| {
        diesel::update(outbox::table.find(m.id))
            .set((
                outbox::attempts.eq(m.attempts + 1),
                outbox::last_error.eq(&error),
                outbox::failed_at.eq(now()),
                outbox::claimed_until.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?;
        let mut notice = NewMail::new(
            format!("<{}-{}@{domain}>", MailKind::WebhookMisslyckad, m.id),
            MailKind::WebhookMisslyckad,
            &m.ids(),
            &Recipients {
                to: default_to.to_string(),
                cc: Vec::new(),
                via: String::new(),
            },
        );
        notice.payload = Some(
            serde_json::json!({
                "mottagare": shown_url, "typ": word(m.kind), "nyckel": m.message_id,
                "fel": error, "avvikelser": m.ids(),
            })
            .to_string(),
        );
        enqueue(conn, &[notice])?;
        Ok(())
    })
}

/// Webhook rows neither sent, cancelled nor failed.
pub fn pending_count(conn: &mut DbConn) -> QueryResult<i64> {
    outbox::table
        .filter(outbox::channel.eq(Channel::Webhook))
        .filter(outbox::sent_at.is_null())
        .filter(outbox::cancelled_at.is_null())
        .filter(outbox::failed_at.is_null())
        .count()
        .get_result(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_notice_of_a_kind_has_the_plain_key_later_ones_are_numbered() {
        assert_eq!(key("ab12", MailKind::Avvikelse, 1), "ab12:rapport");
        assert_eq!(key("ab12", MailKind::Avvikelse, 2), "ab12:rapport-2");
        assert_eq!(key("ab12", MailKind::Aterkallelse, 1), "ab12:aterkallad");
        assert_eq!(key("ab12", MailKind::Avslutad, 3), "ab12:avslutad-3");
    }
}
