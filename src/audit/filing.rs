//! Turning a chunk's findings into deviations, in the chunk's transaction:
//! file what is new (fingerprint rule + case + unit + due, unique in the
//! database), update facts that changed, withdraw what the data no longer
//! supports, and queue each mail in the same transaction as its deviation.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDateTime, Utc};
use sha2::{Digest, Sha256};

use super::{report, Auditor, Counts};
use crate::mail::routing::{self, Recipients};
use crate::mail::MailMode;
use crate::rules::{Finding, RuleId, Status, Units};
use crate::store::deviations::{self, DeviationRow, NewDeviation, NewMail, OPEN};
use crate::store::{now, DbConn};

pub fn fingerprint(f: &Finding) -> String {
    let key = format!(
        "{}|{}|{}|{}",
        f.rule.as_str(),
        f.case.as_ref().map_or("", |c| c.as_str()),
        f.unit.as_ref().map_or("", |u| u.as_str()),
        f.due.timestamp()
    );
    hex::encode(Sha256::digest(key.as_bytes()))
}

pub fn message_id(kind: &str, fingerprint: &str, domain: &str) -> String {
    format!("<{kind}-{}@{domain}>", &fingerprint[..32])
}

fn naive(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc()
}

fn status_text(s: Status) -> &'static str {
    s.as_str()
}

pub struct Filing<'a> {
    pub auditor: &'a Auditor,
    pub units: &'a Units,
    pub scan_id: i64,
    pub as_of: DateTime<Utc>,
    pub active: &'a HashSet<RuleId>,
}

impl Filing<'_> {
    /// `findings` are those past due + grace; `existing` every deviation of the same scope.
    pub fn apply(
        &self,
        conn: &mut DbConn,
        findings: &[Finding],
        existing: Vec<DeviationRow>,
        counts: &mut Counts,
    ) -> anyhow::Result<()> {
        let mut by_fp: HashMap<String, DeviationRow> =
            existing.into_iter().map(|d| (d.fingerprint.clone(), d)).collect();
        let mut seen = HashSet::new();
        for f in findings {
            let fp = fingerprint(f);
            if !seen.insert(fp.clone()) {
                continue;
            }
            match by_fp.remove(&fp) {
                None => {
                    self.file(conn, f, &fp)?;
                    counts.filed += 1;
                }
                Some(d) if d.status == "aterkallad" => {
                    self.reopen(conn, &d)?;
                    counts.filed += 1;
                }
                Some(d) => {
                    let done = f.done.map(|t| naive(t.with_timezone(&Utc)));
                    if d.finding_status != status_text(f.status)
                        || d.done_at != done
                        || d.late_minutes != f.late_minutes
                    {
                        deviations::update_facts(conn, &d, status_text(f.status), done, f.late_minutes)?;
                        counts.updated += 1;
                    }
                }
            }
        }
        for d in by_fp.into_values() {
            let active = RuleId::parse(&d.rule).is_some_and(|r| self.active.contains(&r));
            if active && OPEN.contains(&d.status.as_str()) {
                self.withdraw(conn, &d)?;
                counts.withdrawn += 1;
            }
        }
        Ok(())
    }

    /// A new deviation, its history line and (one mail per deviation) its
    /// mail, already marked queued, in as few statements as the backends allow.
    fn file(&self, conn: &mut DbConn, f: &Finding, fp: &str) -> anyhow::Result<()> {
        let a = self.auditor;
        let risk = a.profile.risk_of(f.rule);
        let recipients = routing::route(f.unit.as_ref(), self.units, &a.mail);
        let per_deviation = a.mail.mode == MailMode::PerAvvikelse;
        let t = now();
        let row = NewDeviation {
            fingerprint: fp,
            rule: f.rule.as_str(),
            case_id: f.case.as_ref().map(|c| c.as_str()),
            unit: f.unit.as_ref().map(|u| u.as_str()),
            due: naive(f.due_utc()),
            finding_status: status_text(f.status),
            done_at: f.done.map(|t| naive(t.with_timezone(&Utc))),
            late_minutes: f.late_minutes,
            status: "ny",
            sannolikhet: i32::from(risk.sannolikhet),
            konsekvens: i32::from(risk.konsekvens),
            recipients: recipients.to_json(),
            queued_at: per_deviation.then_some(t),
            scan_id: self.scan_id,
            created_at: t,
        };
        let id = deviations::insert(conn, &row)?;
        deviations::history(conn, id, "svu-vakt", None, "ny", Some("registrerad vid granskning"))?;
        if per_deviation {
            self.queue_report(conn, &row.to_row(id), &message_id("avvikelse", fp, &a.mail.domain()))?;
        }
        Ok(())
    }

    /// Renders the report of `d` and puts it in the outbox.
    fn queue_report(&self, conn: &mut DbConn, d: &DeviationRow, mid: &str) -> anyhow::Result<()> {
        let a = self.auditor;
        let data = report::data(d, self.units, &a.mail, &a.templates, self.as_of)?;
        let mail = report::render("avvikelse", &data, &a.templates)?;
        let recipients = Recipients::from_json(&d.recipients);
        enqueue(conn, mid, "avvikelse", &[d.id], &recipients, &mail, None)?;
        Ok(())
    }

    /// A withdrawn deviation whose finding came back is reported again.
    fn reopen(&self, conn: &mut DbConn, d: &DeviationRow) -> anyhow::Result<()> {
        deviations::set_status(
            conn,
            d,
            "ny",
            "svu-vakt",
            Some("återupptagen: nya uppgifter visar avvikelsen igen"),
        )?;
        let n = deviations::history_of(conn, d.id)?.len();
        let mid = message_id(&format!("avvikelse-{n}"), &d.fingerprint, &self.auditor.mail.domain());
        let d = DeviationRow {
            status: "ny".into(),
            ..d.clone()
        };
        self.queue_report(conn, &d, &mid)?;
        deviations::mark_queued(conn, &[d.id])?;
        Ok(())
    }

    fn withdraw(&self, conn: &mut DbConn, d: &DeviationRow) -> anyhow::Result<()> {
        deviations::set_status(
            conn,
            d,
            "aterkallad",
            "svu-vakt",
            Some("nya uppgifter visar att kravet uppfylldes i tid eller inte gällde"),
        )?;
        let unsent = d.status == "ny" && deviations::cancel_mail_of(conn, d.id)? > 0;
        if unsent || (d.status == "ny" && d.queued_at.is_none()) {
            return Ok(());
        }
        let a = self.auditor;
        let data = report::data(d, self.units, &a.mail, &a.templates, self.as_of)?;
        let mail = report::render("aterkallelse", &data, &a.templates)?;
        let domain = a.mail.domain();
        let original = message_id("avvikelse", &d.fingerprint, &domain);
        let recipients = Recipients::from_json(&d.recipients);
        let mid = message_id(
            &format!("aterkallelse-{}", deviations::history_of(conn, d.id)?.len()),
            &d.fingerprint,
            &domain,
        );
        enqueue(conn, &mid, "aterkallelse", &[d.id], &recipients, &mail, Some(&original))?;
        Ok(())
    }
}

pub fn enqueue(
    conn: &mut DbConn,
    message_id: &str,
    kind: &str,
    ids: &[i64],
    recipients: &Recipients,
    mail: &crate::mail::templates::Rendered,
    in_reply_to: Option<&str>,
) -> anyhow::Result<bool> {
    let t = now();
    Ok(deviations::enqueue(
        conn,
        &NewMail {
            message_id,
            kind,
            deviation_ids: serde_json::to_string(ids)?,
            recipients: recipients.to_json(),
            subject: &mail.subject,
            body_text: &mail.text,
            body_html: &mail.html,
            in_reply_to,
            created_at: t,
            attempts: 0,
            next_attempt_at: t,
        },
    )?)
}
