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
use crate::domain::UnitId;
use crate::mail::outbox::{self, webhook};
use crate::mail::routing::{self, Channels};
use crate::mail::MailMode;
use crate::rules::{Finding, RuleId, Units};
use crate::store::deviations::{self, DeviationRow, FactsUpdate, NewDeviation, NewHistory, OPEN};
use crate::store::stamp::Stamp;
use crate::store::{backend, now, DbConn};

/// The berörd part of each new deviation (SPEC §6), by its id: each unit once.
fn parties(new: &[(&Finding, String)], ids: &HashMap<String, i64>) -> Vec<(i64, String)> {
    new.iter()
        .filter_map(|(f, fp)| Some((*ids.get(fp.as_str())?, &f.affected)))
        .flat_map(|(id, units)| {
            let mut units: Vec<&str> = units.iter().map(|u| u.as_str()).collect();
            units.sort_unstable();
            units.dedup();
            units.into_iter().map(move |u| (id, u.to_string()))
        })
        .collect()
}

fn naive(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc()
}

pub struct Filing<'a> {
    pub auditor: &'a Auditor,
    pub units: &'a Units,
    pub scan_id: i64,
    pub backfill: bool,
    /// A full scan: each chunk is every case from its first to its last
    /// (`CandidateWalk::whole`), its deviations read as a range of the key.
    pub whole: bool,
    /// Deviations due before this are filed without mail.
    pub mail_cutoff: DateTime<Utc>,
    pub active: &'a HashSet<RuleId>,
}

impl Filing<'_> {
    /// The range a chunk's deviations are read by (`deviations::by_cases`):
    /// in a full scan's walk, which holds every case between any two of its
    /// cases, from the first to the last of `ids`, the cases to file, in
    /// the walk's (the database's) order, as `to_file` follows the chunk —
    /// when they are at least half of its `cases` (a first scan files nearly
    /// all). `None` for a listed walk, or a re-scan that files a few cases
    /// of a chunk: their list is read by the key, and no other case's
    /// deviations are locked.
    pub fn run_of<'c>(&self, cases: usize, ids: &[&'c str]) -> Option<(&'c str, &'c str)> {
        let (first, last) = ids
            .first()
            .zip(ids.last())
            .filter(|_| self.whole && ids.len() * 2 >= cases)?;
        Some((*first, *last))
    }

    /// How a deviation of `unit` is delivered: by mail, to a webhook (SPEC §6.0).
    fn channels(&self, unit: Option<&str>) -> Channels<'_> {
        routing::channels(
            unit.map(|u| UnitId(u.to_string())).as_ref(),
            self.units,
            &self.auditor.mail,
        )
    }

    /// `findings` are those past due + grace; `existing` every deviation of
    /// the same scope. What to do is decided by [`plan`], with no database;
    /// here it is done set by set, each kind of action in a bounded number
    /// of statements per chunk however many deviations it touches. Returns
    /// the cases of the deviations reopened: a reopening changes only the
    /// status, so the next plan of such a case may still update its facts.
    pub fn apply(
        &self,
        conn: &mut DbConn,
        findings: &[Finding],
        existing: Vec<DeviationRow>,
        counts: &mut Counts,
    ) -> anyhow::Result<HashSet<String>> {
        // Every deviation this chunk may touch, locked once in id order (as
        // `outbox::mark_sent` locks them): no lock cycle with a sender.
        let mut ids: Vec<i64> = existing.iter().map(|d| d.id).collect();
        ids.sort_unstable();
        backend::lock_deviations(conn, &ids)?;
        self.apply_locked(conn, findings, existing, counts)
    }

    /// [`Filing::apply`] with `existing` read locked, in id order, by the
    /// statement that read them (`deviations::by_cases`): not locked again.
    pub fn apply_locked(
        &self,
        conn: &mut DbConn,
        findings: &[Finding],
        existing: Vec<DeviationRow>,
        counts: &mut Counts,
    ) -> anyhow::Result<HashSet<String>> {
        let terms = Terms {
            backfill: self.backfill,
            mail_cutoff: self.mail_cutoff,
            active: self.active,
        };
        let sets = Sets::of(plan(findings, existing, &terms));
        self.update_facts(conn, &sets.updated, counts)?;
        // Mail queues in the order it always had: reports of reopened
        // deviations, new reports, then withdrawal notices.
        self.reopen(conn, &sets.reopened, counts)?;
        self.file(conn, &sets.new, counts)?;
        self.withdraw(conn, &sets.gone, counts)?;
        Ok(sets.reopened.iter().filter_map(|(d, _)| d.case_id.clone()).collect())
    }

    /// Changed facts, updated quietly: no mail.
    fn update_facts(
        &self,
        conn: &mut DbConn,
        updated: &[(DeviationRow, &Finding)],
        counts: &mut Counts,
    ) -> anyhow::Result<()> {
        let rows: Vec<FactsUpdate> = updated
            .iter()
            .map(|(d, f)| {
                let (finding_status, done_at, late_minutes) = plan::facts(f);
                FactsUpdate {
                    id: d.id,
                    status: d.status,
                    finding_status,
                    done_at,
                    late_minutes,
                }
            })
            .collect();
        if !rows.is_empty() {
            deviations::update_facts(conn, &rows)?;
        }
        counts.updated += rows.len();
        Ok(())
    }

    /// The row of a new deviation for `f`, routed; queued for no digest when
    /// it is mailed alone, too old to mail, or its route mails nothing.
    fn new_row<'f>(&self, f: &'f Finding, fingerprint: &'f str, t: NaiveDateTime) -> NewDeviation<'f> {
        let a = self.auditor;
        let risk = a.profile.risk_of(f.rule);
        let unmailed = f.due_utc() < self.mail_cutoff;
        let mailed = self.channels(f.unit.as_ref().map(|u| u.as_str())).mail;
        NewDeviation {
            fingerprint,
            rule: f.rule.as_str(),
            case_id: f.case.as_ref().map(|c| c.as_str()),
            unit: f.unit.as_ref().map(|u| u.as_str()),
            due: Stamp(naive(f.due_utc())),
            finding_status: f.status.as_str(),
            done_at: f.done.map(|t| Stamp(naive(t.with_timezone(&Utc)))),
            late_minutes: f.late_minutes,
            status: DeviationStatus::Ny,
            sannolikhet: i32::from(risk.sannolikhet),
            konsekvens: i32::from(risk.konsekvens),
            recipients: routing::route(f.unit.as_ref(), self.units, &a.mail).to_json(),
            queued_at: (a.mail.mode == MailMode::PerAvvikelse || unmailed || !mailed).then_some(Stamp(t)),
            scan_id: self.scan_id,
            created_at: Stamp(t),
        }
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
        let rows: Vec<NewDeviation> = new.iter().map(|(f, fp)| self.new_row(f, fp, t)).collect();
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
            let unmailed = row.due.0.and_utc() < self.mail_cutoff;
            history.push(NewHistory {
                deviation_id: id,
                at: Stamp(t),
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
            } else {
                let channels = self.channels(row.unit);
                if per_deviation && channels.mail {
                    mail.push(outbox::report(&row.to_row(id), 0, &domain));
                }
                if let Some(url) = channels.webhook {
                    mail.push(webhook::row(&row.to_row(id), outbox::MailKind::Avvikelse, 1, url));
                }
            }
        }
        backend::insert_history(conn, &history)?;
        deviations::insert_parties(conn, &parties(new, &ids))?;
        outbox::enqueue(conn, &mail)?;
        counts.filed += rows.len();
        Ok(())
    }

    /// Withdrawn deviations whose findings came back are reported again.
    fn reopen(&self, conn: &mut DbConn, reopened: &[(DeviationRow, bool)], counts: &mut Counts) -> anyhow::Result<()> {
        if reopened.is_empty() {
            return Ok(());
        }
        counts.filed += reopened.len();
        let rows: Vec<&DeviationRow> = reopened.iter().map(|(d, _)| d).collect();
        deviations::set_status_many(
            conn,
            &rows,
            DeviationStatus::Ny,
            "svu-vakt",
            Some("återupptagen: nya uppgifter visar avvikelsen igen"),
        )?;
        // Too old to act on, and never told: stays unmailed. A recipient who
        // was told (report, then withdrawal) hears that it is back, whatever its age.
        let too_old: Vec<i64> = reopened.iter().filter(|(_, old)| *old).map(|(d, _)| d.id).collect();
        let mailed = deviations::mailed_among(conn, &too_old)?;
        let told: Vec<&DeviationRow> = reopened
            .iter()
            .filter(|(d, old)| !old || mailed.contains(&d.id))
            .map(|(d, _)| d)
            .collect();
        let ids: Vec<i64> = told.iter().map(|d| d.id).collect();
        let mailed: Vec<&DeviationRow> = told
            .iter()
            .copied()
            .filter(|d| self.channels(d.unit.as_deref()).mail)
            .collect();
        if self.auditor.mail.mode == MailMode::PerAvvikelse {
            let lines = deviations::history_counts(conn, &ids)?;
            let domain = self.auditor.mail.domain();
            let mail: Vec<_> = mailed
                .iter()
                .map(|d| Ok(outbox::report(d, lines_of(&lines, d.id)?, &domain)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            outbox::enqueue(conn, &mail)?;
            deviations::mark_queued(conn, &ids)?;
        } else {
            let ids: Vec<i64> = mailed.iter().map(|d| d.id).collect();
            deviations::mark_unqueued(conn, &ids)?;
        }
        self.report_again_to_webhooks(conn, reopened)
    }

    /// A reopened deviation's report goes to its route's webhook again,
    /// numbered after the reports before it, unless it is too old to act on
    /// and the receiver never had it.
    fn report_again_to_webhooks(&self, conn: &mut DbConn, reopened: &[(DeviationRow, bool)]) -> anyhow::Result<()> {
        let hooked: Vec<(&DeviationRow, bool, String)> = reopened
            .iter()
            .filter_map(|(d, old)| Some((d, *old, self.channels(d.unit.as_deref()).webhook?.to_string())))
            .collect();
        let old: Vec<i64> = hooked.iter().filter(|(_, old, _)| *old).map(|(d, _, _)| d.id).collect();
        let had_it = webhook::delivered_among(conn, &old)?;
        let to: Vec<(&DeviationRow, String)> = hooked
            .into_iter()
            .filter(|(d, old, _)| !old || had_it.contains(&d.id))
            .map(|(d, _, url)| (d, url))
            .collect();
        webhook::reports_again(conn, &to)?;
        Ok(())
    }

    /// Withdraws `gone`. Their status is read again under the row locks
    /// `apply` took, so a mail being marked sent at this moment is seen: a
    /// report already mailed gets a withdrawal notice; one still waiting is
    /// cancelled; one on its way is followed by a notice when it is marked
    /// sent (`outbox::mark_sent`).
    fn withdraw(&self, conn: &mut DbConn, gone: &[DeviationRow], counts: &mut Counts) -> anyhow::Result<()> {
        counts.withdrawn += gone.len();
        if gone.is_empty() {
            return Ok(());
        }
        let gone_ids: Vec<i64> = gone.iter().map(|d| d.id).collect();
        let open: Vec<DeviationRow> = deviations::get_many(conn, &gone_ids)?
            .into_iter()
            .filter(|c| OPEN.contains(&c.status))
            .collect();
        let rows: Vec<&DeviationRow> = open.iter().collect();
        deviations::set_status_many(
            conn,
            &rows,
            DeviationStatus::Aterkallad,
            "svu-vakt",
            Some("nya uppgifter visar att kravet uppfylldes i tid eller inte gällde"),
        )?;
        // A report tried before (a crash after the server took it, a
        // connection lost after its data) may have arrived: say the truth.
        let open_ids: Vec<i64> = open.iter().map(|c| c.id).collect();
        let possibly_sent = outbox::cancel_unclaimed_reports(conn, &open_ids)?;
        // A route without mail tells by mail only a recipient mailed before
        // (its routes edited since): a deviation worked without mail is not.
        let unmailing: HashSet<i64> = open
            .iter()
            .filter(|c| !self.channels(c.unit.as_deref()).mail)
            .map(|c| c.id)
            .collect();
        let mailed_before = deviations::mailed_among(conn, &unmailing.iter().copied().collect::<Vec<_>>())?;
        let told: Vec<&DeviationRow> = open
            .iter()
            .filter(|c| c.status != DeviationStatus::Ny || possibly_sent.contains(&c.id))
            .filter(|c| !unmailing.contains(&c.id) || mailed_before.contains(&c.id))
            .collect();
        let told_ids: Vec<i64> = told.iter().map(|c| c.id).collect();
        let lines = deviations::history_counts(conn, &told_ids)?;
        let domain = self.auditor.mail.domain();
        let notices = told
            .iter()
            .map(|c| {
                let original = outbox::message_id(outbox::MailKind::Avvikelse.as_str(), &c.fingerprint, &domain);
                Ok(outbox::withdrawal(c, lines_of(&lines, c.id)?, &domain, &original))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        outbox::enqueue(conn, &notices)?;
        // The webhooks' receivers, told by their own rows (SPEC §6.0).
        webhook::withdrawn(conn, &open)?;
        Ok(())
    }
}

/// How many history lines deviation `id` has: it numbers the deviation's
/// next mail, so a count missing (never, the line was just written) is an
/// error rather than a Message-ID used before.
fn lines_of(counts: &HashMap<i64, usize>, id: i64) -> anyhow::Result<usize> {
    counts
        .get(&id)
        .copied()
        .ok_or_else(|| anyhow::anyhow!("avvikelsen {id} saknar historik"))
}

/// A plan's actions by kind, each kind in the plan's order.
#[derive(Default)]
struct Sets<'f> {
    new: Vec<(&'f Finding, String)>,
    updated: Vec<(DeviationRow, &'f Finding)>,
    /// With whether it is too old to mail unless it was mailed before.
    reopened: Vec<(DeviationRow, bool)>,
    gone: Vec<DeviationRow>,
}

impl<'f> Sets<'f> {
    fn of(actions: Vec<Action<'f>>) -> Sets<'f> {
        let mut sets = Sets::default();
        for action in actions {
            match action {
                Action::File {
                    finding, fingerprint, ..
                } => sets.new.push((finding, fingerprint)),
                Action::UpdateFacts { deviation, finding } => sets.updated.push((deviation, finding)),
                Action::Reopen { deviation, too_old } => sets.reopened.push((deviation, too_old)),
                Action::Withdraw(deviation) => sets.gone.push(deviation),
            }
        }
        sets
    }
}

#[cfg(test)]
#[path = "filing_tests.rs"]
mod tests;
