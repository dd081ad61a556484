//! Doing, in the chunk's transaction, what `plan` decided for a chunk's
//! findings: file what is new (fingerprint rule + case + unit + due, unique
//! in the database), update facts that changed, reopen, withdraw what the
//! data no longer supports, and queue each mail (as a reference) in the same
//! transaction as its deviation.
//!
//! Only evidence withdraws (SPEC §6). A backfill scan, as of an earlier
//! instant than a scan before it, sees fewer events than that scan did: it
//! files only obligations no deviation covers yet, and never updates,
//! withdraws or re-files one.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDateTime, Utc};

use super::plan::{self, plan, Action, Terms};
use super::{Auditor, Counts};
use crate::domain::handling::DeviationStatus;
use crate::mail::outbox;
use crate::mail::routing;
use crate::mail::MailMode;
use crate::rules::{Finding, RuleId, Units};
use crate::store::deviations::{self, DeviationRow, NewDeviation, NewHistory, OPEN};
use crate::store::{backend, now, DbConn};

fn naive(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc()
}

pub struct Filing<'a> {
    pub auditor: &'a Auditor,
    pub units: &'a Units,
    pub scan_id: i64,
    pub backfill: bool,
    /// Deviations due before this are filed without mail.
    pub mail_cutoff: DateTime<Utc>,
    pub active: &'a HashSet<RuleId>,
}

impl Filing<'_> {
    /// `findings` are those past due + grace; `existing` every deviation of
    /// the same scope. What to do is decided by [`plan`], with no database;
    /// here it is done, new deviations in a few multi-row statements.
    pub fn apply(
        &self,
        conn: &mut DbConn,
        findings: &[Finding],
        existing: Vec<DeviationRow>,
        counts: &mut Counts,
    ) -> anyhow::Result<()> {
        // Every deviation this chunk may touch, locked once in id order (as
        // `outbox::mark_sent` locks them): no lock cycle with a sender.
        let mut ids: Vec<i64> = existing.iter().map(|d| d.id).collect();
        ids.sort_unstable();
        backend::lock_deviations(conn, &ids)?;
        let terms = Terms {
            backfill: self.backfill,
            mail_cutoff: self.mail_cutoff,
            active: self.active,
        };
        let (mut new, mut gone) = (Vec::new(), Vec::new());
        for action in plan(findings, existing, &terms) {
            match action {
                Action::File {
                    finding, fingerprint, ..
                } => new.push((finding, fingerprint)),
                Action::UpdateFacts { deviation, finding } => {
                    let (status, done, late) = plan::facts(finding);
                    deviations::update_facts(conn, &deviation, status, done, late)?;
                    counts.updated += 1;
                }
                Action::Reopen { deviation, too_old } => {
                    self.reopen(conn, &deviation, too_old)?;
                    counts.filed += 1;
                }
                Action::Withdraw(deviation) => gone.push(deviation),
            }
        }
        // New reports queue before the withdrawals, as they always have.
        self.file(conn, &new, counts)?;
        for deviation in gone {
            self.withdraw(conn, &deviation)?;
            counts.withdrawn += 1;
        }
        Ok(())
    }

    /// New deviations, their history lines and (one mail per deviation)
    /// their mail, in a few multi-row statements; a deviation too old to act
    /// on is filed without mail.
    fn file(&self, conn: &mut DbConn, new: &[(&Finding, String)], counts: &mut Counts) -> anyhow::Result<()> {
        if new.is_empty() {
            return Ok(());
        }
        let a = self.auditor;
        let per_deviation = a.mail.mode == MailMode::PerAvvikelse;
        let t = now();
        let rows: Vec<NewDeviation> = new
            .iter()
            .map(|(f, fp)| {
                let risk = a.profile.risk_of(f.rule);
                let unmailed = f.due_utc() < self.mail_cutoff;
                NewDeviation {
                    fingerprint: fp,
                    rule: f.rule.as_str(),
                    case_id: f.case.as_ref().map(|c| c.as_str()),
                    unit: f.unit.as_ref().map(|u| u.as_str()),
                    due: naive(f.due_utc()),
                    finding_status: f.status.as_str(),
                    done_at: f.done.map(|t| naive(t.with_timezone(&Utc))),
                    late_minutes: f.late_minutes,
                    status: DeviationStatus::Ny,
                    sannolikhet: i32::from(risk.sannolikhet),
                    konsekvens: i32::from(risk.konsekvens),
                    recipients: routing::route(f.unit.as_ref(), self.units, &a.mail).to_json(),
                    queued_at: (per_deviation || unmailed).then_some(t),
                    scan_id: self.scan_id,
                    created_at: t,
                }
            })
            .collect();
        let ids: HashMap<String, i64> = deviations::insert_many(conn, &rows)?
            .into_iter()
            .map(|(id, fp)| (fp, id))
            .collect();
        let mut history = Vec::with_capacity(rows.len());
        let mut mail = Vec::new();
        let domain = a.mail.domain();
        for row in &rows {
            let id = *ids
                .get(row.fingerprint)
                .ok_or_else(|| anyhow::anyhow!("avvikelsen {} sparades inte", row.fingerprint))?;
            let unmailed = row.due.and_utc() < self.mail_cutoff;
            history.push(NewHistory {
                deviation_id: id,
                at: t,
                actor: "svu-vakt",
                from_status: None,
                to_status: DeviationStatus::Ny,
                note: Some(if unmailed {
                    "registrerad vid granskning; inte mejlad: tidsgränsen låg för långt tillbaka"
                } else {
                    "registrerad vid granskning"
                }),
            });
            if unmailed {
                counts.unmailed += 1;
                *counts
                    .unmailed_by_unit
                    .entry(row.unit.unwrap_or_default().to_string())
                    .or_default() += 1;
            } else if per_deviation {
                mail.push(outbox::report(&row.to_row(id), 0, &domain));
            }
        }
        backend::insert_history(conn, &history)?;
        let parties: Vec<(i64, String)> = new
            .iter()
            .filter_map(|(f, fp)| Some((*ids.get(fp.as_str())?, &f.affected)))
            .flat_map(|(id, units)| {
                let mut units: Vec<&str> = units.iter().map(|u| u.as_str()).collect();
                units.sort_unstable();
                units.dedup();
                units.into_iter().map(move |u| (id, u.to_string()))
            })
            .collect();
        deviations::insert_parties(conn, &parties)?;
        outbox::enqueue(conn, &mail)?;
        counts.filed += rows.len();
        Ok(())
    }

    /// A withdrawn deviation whose finding came back is reported again.
    fn reopen(&self, conn: &mut DbConn, d: &DeviationRow, too_old: bool) -> anyhow::Result<()> {
        deviations::set_status(
            conn,
            d,
            DeviationStatus::Ny,
            "svu-vakt",
            Some("återupptagen: nya uppgifter visar avvikelsen igen"),
        )?;
        // Too old to act on, and never told: stays unmailed. A recipient who
        // was told (report, then withdrawal) hears that it is back, whatever its age.
        if too_old && !deviations::was_mailed(conn, d.id)? {
            return Ok(());
        }
        if self.auditor.mail.mode == MailMode::PerAvvikelse {
            let n = deviations::history_count(conn, d.id)?;
            outbox::enqueue(conn, &[outbox::report(d, n, &self.auditor.mail.domain())])?;
            deviations::mark_queued(conn, &[d.id])?;
        } else {
            deviations::mark_unqueued(conn, d.id)?;
        }
        Ok(())
    }

    /// Withdraws `d`. Its status is read under a row lock, so a mail being
    /// marked sent at this moment is seen: a report already mailed gets a
    /// withdrawal notice; one still waiting is cancelled; one on its way is
    /// followed by a notice when it is marked sent (`outbox::mark_sent`).
    fn withdraw(&self, conn: &mut DbConn, d: &DeviationRow) -> anyhow::Result<()> {
        backend::lock_deviations(conn, &[d.id])?;
        let Some(current) = deviations::get(conn, d.id)?.filter(|c| OPEN.contains(&c.status)) else {
            return Ok(());
        };
        deviations::set_status(
            conn,
            &current,
            DeviationStatus::Aterkallad,
            "svu-vakt",
            Some("nya uppgifter visar att kravet uppfylldes i tid eller inte gällde"),
        )?;
        // A report tried before (a crash after the server took it, a
        // connection lost after its data) may have arrived: say the truth.
        let possibly_sent = outbox::cancel_unclaimed_report(conn, d.id)?;
        if current.status != DeviationStatus::Ny || possibly_sent {
            let domain = self.auditor.mail.domain();
            let original = outbox::message_id(outbox::MailKind::Avvikelse.as_str(), &d.fingerprint, &domain);
            outbox::queue_withdrawal(conn, &current, &domain, &original)?;
        }
        Ok(())
    }
}
