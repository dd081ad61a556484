//! The outbox: every mail svu-vakt owes somebody, as a row in the database
//! written in the same transaction as the change that made it owed. A row
//! keeps references only (the deviation ids, the recipients, a Message-ID
//! fixed per mail, a small payload for notices); the text is rendered when
//! the mail is sent, so a report always says what is true at that moment.
//!
//! A row ends in one of three ways: `sent_at` (the server accepted it),
//! `cancelled_at` (nothing left to say: every deviation in it was withdrawn
//! before it went), or `failed_at` (the server refused it permanently; never
//! claimed again, listed for admins, and a notice goes to the default
//! address).
//!
//! Withdrawal and sending are ordered through the deviation rows: both lock
//! them before they read their status (`backend::lock_deviations`). A
//! withdrawal cancels a report that is not being sent, and queues a notice
//! when the report already went; a report that was being sent when its
//! deviation was withdrawn queues the notice itself when it is marked sent.
//! Either way the recipient ends up knowing the truth.
//!
//! This module owns the rows and every query on them; `mail` renders and
//! sends (`mail::delivery`) and re-exports these names as `mail::outbox`.

use std::collections::{HashMap, HashSet};

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;

use super::deviations::{self, DeviationRow};
use super::schema::{deviations as dev, outbox, scan_runs};
use super::{backend, now, DbConn};
use crate::domain::handling::DeviationStatus;
use crate::domain::recipients::Recipients;
use crate::domain::state::words;

pub mod webhook;

/// What a mail is (`outbox.kind`): it picks the templates
/// `templates/mail/<kind>.*.hbs` and what sending it does.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, diesel::expression::AsExpression, diesel::deserialize::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum MailKind {
    /// The report of one deviation (one mail per deviation).
    Avvikelse,
    /// A deviation already reported was withdrawn.
    Aterkallelse,
    /// A digest: the deviations of one scan for one address.
    Sammanstallning,
    /// To the default address: a mail was refused permanently.
    Misslyckad,
    /// To the default address: deviations filed without mail (older than `mail.max_age_days`).
    EjMejlade,
    /// To a deviation's recipient: it has waited `handling.remind_after_days`.
    Paminnelse,
    /// To the unit's chef: it has waited `handling.escalate_after_days`.
    Eskalering,
    /// To the report's copies: the deviation is closed, with the åtgärd.
    Avslutad,
    /// A förvarning before a storhelg staffing day to a unit without `bemanning` (SPEC §7).
    BemanningPaminnelse,
    /// To the default address: a webhook's receiver refused a report for good.
    WebhookMisslyckad,
}

impl MailKind {
    pub const ALL: [MailKind; 10] = [
        MailKind::Avvikelse,
        MailKind::Aterkallelse,
        MailKind::Sammanstallning,
        MailKind::Misslyckad,
        MailKind::EjMejlade,
        MailKind::Paminnelse,
        MailKind::Eskalering,
        MailKind::Avslutad,
        MailKind::BemanningPaminnelse,
        MailKind::WebhookMisslyckad,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Avvikelse => "avvikelse",
            MailKind::Aterkallelse => "aterkallelse",
            MailKind::Sammanstallning => "sammanstallning",
            MailKind::Misslyckad => "misslyckad",
            MailKind::EjMejlade => "ej_mejlade",
            MailKind::Paminnelse => "paminnelse",
            MailKind::Eskalering => "eskalering",
            MailKind::Avslutad => "avslutad",
            MailKind::BemanningPaminnelse => "bemanning_paminnelse",
            MailKind::WebhookMisslyckad => "webhook_misslyckad",
        }
    }
}

words!(MailKind, "meddelandetyp");

/// How a row goes (`outbox.channel`): by mail, or to a route's webhook
/// (SPEC §6.0; its rows in `webhook`). A webhook row reuses the kinds of
/// the notices it stands for: `Avvikelse` (the report), `Aterkallelse`,
/// `Avslutad`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, diesel::expression::AsExpression, diesel::deserialize::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum Channel {
    Mail,
    Webhook,
}

impl Channel {
    pub const ALL: [Channel; 2] = [Channel::Mail, Channel::Webhook];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Mail => "mail",
            Channel::Webhook => "webhook",
        }
    }
}

words!(Channel, "kanal");

/// Deviations per digest: a backlog is split over several mails, never dropped.
pub const DIGEST_MAX: usize = 100;

#[derive(Debug, Clone, Queryable, Serialize)]
pub struct MailRow {
    pub id: i64,
    pub message_id: String,
    pub kind: MailKind,
    pub deviation_ids: String,
    pub recipients: String,
    pub payload: Option<String>,
    pub in_reply_to: Option<String>,
    pub created_at: NaiveDateTime,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub claimed_until: Option<NaiveDateTime>,
    pub sent_at: Option<NaiveDateTime>,
    pub cancelled_at: Option<NaiveDateTime>,
    pub failed_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub channel: Channel,
}

impl MailRow {
    pub fn ids(&self) -> Vec<i64> {
        serde_json::from_str(&self.deviation_ids).unwrap_or_default()
    }

    pub fn recipients(&self) -> Recipients {
        Recipients::from_json(&self.recipients)
    }

    /// A webhook row's URL (`{"webhook": url}`); None for mail.
    pub fn webhook_url(&self) -> Option<String> {
        if self.channel != Channel::Webhook {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&self.recipients).ok()?;
        v.get("webhook")?.as_str().map(String::from)
    }
}

#[derive(Insertable)]
#[diesel(table_name = outbox, treat_none_as_default_value = false)]
pub struct NewMail {
    pub message_id: String,
    pub kind: MailKind,
    pub deviation_ids: String,
    pub recipients: String,
    pub payload: Option<String>,
    pub in_reply_to: Option<String>,
    pub created_at: NaiveDateTime,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub channel: Channel,
}

impl NewMail {
    pub fn new(message_id: String, kind: MailKind, ids: &[i64], to: &Recipients) -> NewMail {
        let t = now();
        NewMail {
            message_id,
            kind,
            deviation_ids: serde_json::to_string(ids).unwrap_or_else(|_| "[]".into()),
            // The routing explanation stays on the deviation; the mail needs the addresses.
            recipients: Recipients {
                to: to.to.clone(),
                cc: to.cc.clone(),
                via: String::new(),
            }
            .to_json(),
            payload: None,
            in_reply_to: None,
            created_at: t,
            attempts: 0,
            next_attempt_at: t,
            channel: Channel::Mail,
        }
    }
}

/// `<kind-fingerprint@domain>`: the same mail always has the same id.
pub fn message_id(kind: &str, fingerprint: &str, domain: &str) -> String {
    format!("<{kind}-{}@{domain}>", &fingerprint[..32.min(fingerprint.len())])
}

/// Queues rows; a Message-ID already queued is left as it is.
pub fn enqueue(conn: &mut DbConn, rows: &[NewMail]) -> QueryResult<usize> {
    backend::insert_mail(conn, rows)
}

/// The report of one deviation (one mail per deviation).
pub fn report(d: &DeviationRow, n: usize, domain: &str) -> NewMail {
    let kind = if n == 0 {
        MailKind::Avvikelse.to_string()
    } else {
        format!("{}-{n}", MailKind::Avvikelse)
    };
    NewMail::new(
        message_id(&kind, &d.fingerprint, domain),
        MailKind::Avvikelse,
        &[d.id],
        &Recipients::from_json(&d.recipients),
    )
}

/// The withdrawal notice of `d`, whose history already holds the withdrawal.
pub fn queue_withdrawal(conn: &mut DbConn, d: &DeviationRow, domain: &str, in_reply_to: &str) -> QueryResult<()> {
    let n = deviations::history_count(conn, d.id)?;
    enqueue(conn, &[withdrawal(d, n, domain, in_reply_to)])?;
    Ok(())
}

/// The withdrawal notice of `d`, whose `n` history lines end with the
/// withdrawal, in reply to the report `in_reply_to`.
pub fn withdrawal(d: &DeviationRow, n: usize, domain: &str, in_reply_to: &str) -> NewMail {
    let mut m = NewMail::new(
        message_id(&format!("{}-{n}", MailKind::Aterkallelse), &d.fingerprint, domain),
        MailKind::Aterkallelse,
        &[d.id],
        &Recipients::from_json(&d.recipients),
    );
    m.in_reply_to = Some(in_reply_to.to_string());
    m
}

/// A notice about one deviation (`Paminnelse`, `Eskalering`, `Avslutad`) to
/// `to`, with what the template needs beyond the deviation in `payload`.
/// `stamp` makes the Message-ID (one per deviation, kind and occasion).
pub fn notice(
    kind: MailKind,
    d: &DeviationRow,
    to: Recipients,
    payload: serde_json::Value,
    stamp: &str,
    domain: &str,
) -> NewMail {
    let mut m = NewMail::new(
        message_id(&format!("{kind}-{stamp}"), &d.fingerprint, domain),
        kind,
        &[d.id],
        &to,
    );
    m.payload = Some(payload.to_string());
    m
}

/// Claims up to `limit` mails that are due; see `backend::claim_mail`.
pub fn claim(conn: &mut DbConn, limit: i64, respect_backoff: bool, lease: Duration) -> QueryResult<Vec<MailRow>> {
    let t = now();
    let ids = backend::claim_mail(conn, Channel::Mail, t, t + lease, limit, respect_backoff)?;
    outbox::table
        .filter(outbox::id.eq_any(&ids))
        .order(outbox::id)
        .load(conn)
}

/// Extends this sender's claim on `m` just before it is sent; false when the
/// claim is no longer ours (it lapsed and another sender took the row).
pub fn renew_claim(conn: &mut DbConn, m: &MailRow, lease: Duration) -> QueryResult<bool> {
    let n = diesel::update(
        outbox::table
            .filter(outbox::id.eq(m.id))
            .filter(outbox::claimed_until.eq(m.claimed_until))
            .filter(outbox::sent_at.is_null())
            .filter(outbox::cancelled_at.is_null())
            .filter(outbox::failed_at.is_null()),
    )
    .set(outbox::claimed_until.eq(now() + lease))
    .execute(conn)?;
    Ok(n == 1)
}

/// The server took `m`, holding the deviations `included`: marks it sent,
/// each included `ny` deviation `skickad`, and queues the withdrawal notice
/// of any that was withdrawn while the mail was on its way.
pub fn mark_sent(conn: &mut DbConn, m: &MailRow, included: &[i64], domain: &str) -> QueryResult<()> {
    let to = m.recipients().to;
    backend::write_tx(conn, |conn| {
        backend::lock_deviations(conn, included)?;
        diesel::update(outbox::table.find(m.id))
            .set((
                outbox::sent_at.eq(now()),
                outbox::claimed_until.eq(None::<NaiveDateTime>),
                outbox::cancelled_at.eq(None::<NaiveDateTime>),
                outbox::attempts.eq(m.attempts + 1),
            ))
            .execute(conn)?;
        // Notices change nothing on the deviation; only reports make it `skickad`.
        if !matches!(m.kind, MailKind::Avvikelse | MailKind::Sammanstallning) {
            return Ok(());
        }
        let rows: Vec<DeviationRow> = dev::table.filter(dev::id.eq_any(included)).load(conn)?;
        for d in rows {
            // A digest to a copy address does not make the deviation sent:
            // its recipient's does.
            let to_recipient = Recipients::from_json(&d.recipients).to == to;
            match d.status {
                DeviationStatus::Ny if to_recipient => deviations::set_status(
                    conn,
                    &d,
                    DeviationStatus::Skickad,
                    "svu-vakt",
                    Some(&format!("mejlad till {to}")),
                )?,
                DeviationStatus::Aterkallad => queue_withdrawal(conn, &d, domain, &m.message_id)?,
                _ => {}
            }
        }
        Ok(())
    })
}

/// Nothing is left to say in `m`: every deviation in it was withdrawn.
pub fn mark_cancelled(conn: &mut DbConn, m: &MailRow) -> QueryResult<()> {
    diesel::update(outbox::table.find(m.id))
        .set((
            outbox::cancelled_at.eq(now()),
            outbox::claimed_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
    Ok(())
}

/// A failure that may pass (4xx, no connection): try again after `wait`.
pub fn mark_retry(conn: &mut DbConn, m: &MailRow, error: &str, wait: Duration) -> QueryResult<()> {
    diesel::update(outbox::table.find(m.id))
        .set((
            outbox::attempts.eq(m.attempts + 1),
            outbox::last_error.eq(short(error)),
            outbox::next_attempt_at.eq(now() + wait),
            outbox::claimed_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
    Ok(())
}

/// A permanent refusal: the row is never claimed again, and (unless it was
/// itself such a notice) the default address is told, in one transaction.
pub fn mark_failed(conn: &mut DbConn, m: &MailRow, error: &str, default_to: &str, domain: &str) -> QueryResult<()> {
    backend::write_tx(conn, |conn| {
        diesel::update(outbox::table.find(m.id))
            .set((
                outbox::attempts.eq(m.attempts + 1),
                outbox::last_error.eq(short(error)),
                outbox::failed_at.eq(now()),
                outbox::claimed_until.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?;
        if matches!(m.kind, MailKind::Misslyckad | MailKind::WebhookMisslyckad) {
            return Ok(());
        }
        let r = m.recipients();
        let notice = refusal_notice(
            m,
            format!("<{}-{}@{domain}>", MailKind::Misslyckad, m.id),
            &r.to,
            &r.cc,
            error,
            default_to,
        );
        enqueue(conn, &[notice])?;
        Ok(())
    })
}

/// The mail reached its recipient, but the server refused some copies for
/// good: the default address is told which, the mail counts as sent.
pub fn notice_refused_copies(
    conn: &mut DbConn,
    m: &MailRow,
    refused: &[(String, String)],
    default_to: &str,
    domain: &str,
) -> QueryResult<()> {
    let copies: Vec<String> = refused.iter().map(|(a, _)| a.clone()).collect();
    let errors: Vec<String> = refused.iter().map(|(a, e)| format!("{a}: {e}")).collect();
    let notice = refusal_notice(
        m,
        format!("<{}-{}-kopior@{domain}>", MailKind::Misslyckad, m.id),
        "(mottagaren fick meddelandet; kopiorna nedan vägrades)",
        &copies,
        &errors.join("; "),
        default_to,
    );
    enqueue(conn, &[notice])?;
    Ok(())
}

fn refusal_notice(m: &MailRow, message_id: String, to: &str, cc: &[String], error: &str, default_to: &str) -> NewMail {
    let mut notice = NewMail::new(
        message_id,
        MailKind::Misslyckad,
        &m.ids(),
        &Recipients {
            to: default_to.to_string(),
            cc: Vec::new(),
            via: String::new(),
        },
    );
    notice.payload = Some(
        serde_json::json!({
            "meddelande": m.message_id, "typ": m.kind, "till": to, "kopia": cc,
            "fel": short(error), "avvikelser": m.ids(),
        })
        .to_string(),
    );
    notice
}

fn short(error: &str) -> String {
    error.chars().take(500).collect()
}

/// Hands claimed rows back untouched (the server is unreachable).
pub fn release(conn: &mut DbConn, rest: &[MailRow]) -> QueryResult<()> {
    let ids: Vec<i64> = rest.iter().map(|m| m.id).collect();
    diesel::update(outbox::table.filter(outbox::id.eq_any(ids)))
        .set(outbox::claimed_until.eq(None::<NaiveDateTime>))
        .execute(conn)?;
    Ok(())
}

/// Cancels the unsent reports of withdrawn deviations, unless one is being
/// sent right now (claimed): then `mark_sent` queues the notice. Returns
/// the deviations whose cancelled report may have arrived all the same: it
/// was tried before, or claimed by a sender that never marked it (a crash
/// after the server took it). One SELECT and one UPDATE per 500 deviations.
pub fn cancel_unclaimed_reports(conn: &mut DbConn, deviation_ids: &[i64]) -> QueryResult<HashSet<i64>> {
    let t = now();
    let mut maybe_arrived = HashSet::new();
    for chunk in deviation_ids.chunks(backend::CHUNK) {
        // A report names its one deviation as `[id]`.
        let of: HashMap<String, i64> = chunk.iter().map(|id| (format!("[{id}]"), *id)).collect();
        let keys: Vec<&str> = of.keys().map(String::as_str).collect();
        let waiting = outbox::table
            .filter(outbox::deviation_ids.eq_any(keys))
            .filter(outbox::kind.eq(MailKind::Avvikelse))
            .filter(outbox::channel.eq(Channel::Mail))
            .filter(outbox::sent_at.is_null())
            .filter(outbox::cancelled_at.is_null())
            .filter(outbox::failed_at.is_null())
            .filter(outbox::claimed_until.is_null().or(outbox::claimed_until.lt(t)));
        let tried: Vec<(String, i32, Option<NaiveDateTime>)> = waiting
            .clone()
            .select((outbox::deviation_ids, outbox::attempts, outbox::claimed_until))
            .load(conn)?;
        diesel::update(waiting).set(outbox::cancelled_at.eq(t)).execute(conn)?;
        maybe_arrived.extend(
            tried
                .iter()
                .filter(|(_, attempts, claimed)| *attempts > 0 || claimed.is_some())
                .filter_map(|(key, _, _)| of.get(key).copied()),
        );
    }
    Ok(maybe_arrived)
}

pub fn all(conn: &mut DbConn) -> QueryResult<Vec<MailRow>> {
    outbox::table.order(outbox::id).load(conn)
}

/// Mail the server refused permanently, newest first.
pub fn failed(conn: &mut DbConn, limit: i64) -> QueryResult<Vec<MailRow>> {
    outbox::table
        .filter(outbox::failed_at.is_not_null())
        .order(outbox::id.desc())
        .limit(limit)
        .load(conn)
}

pub fn failed_count(conn: &mut DbConn) -> QueryResult<i64> {
    outbox::table
        .filter(outbox::failed_at.is_not_null())
        .count()
        .get_result(conn)
}

/// Mail neither sent, cancelled nor failed (the webhooks' rows: `webhook::pending_count`).
pub fn pending_count(conn: &mut DbConn) -> QueryResult<i64> {
    outbox::table
        .filter(outbox::channel.eq(Channel::Mail))
        .filter(outbox::sent_at.is_null())
        .filter(outbox::cancelled_at.is_null())
        .filter(outbox::failed_at.is_null())
        .count()
        .get_result(conn)
}

/// The deviations `ids` as they are now, in id order, for rendering a mail.
pub fn deviations_of(conn: &mut DbConn, ids: &[i64]) -> QueryResult<Vec<DeviationRow>> {
    dev::table.filter(dev::id.eq_any(ids)).order(dev::id).load(conn)
}

/// The `as_of` of the scan that filed a deviation; None when the run is gone.
pub fn scan_as_of(conn: &mut DbConn, scan_id: i64) -> QueryResult<Option<NaiveDateTime>> {
    scan_runs::table
        .find(scan_id)
        .select(scan_runs::as_of)
        .first(conn)
        .optional()
}
