//! The mail a scan queues when it ends, beside the reports of its
//! deviations: the digests of sammanställning and the summary of what it
//! filed without mail (SPEC §6).

use std::collections::BTreeMap;

use sha2::Digest as _;

use super::{Auditor, Counts, Run};
use crate::domain::UnitId;
use crate::mail::outbox::{self, NewMail};
use crate::mail::routing::Recipients;
use crate::mail::MailMode;
use crate::rules::Units;
use crate::store::{backend, deviations, DbConn};

impl Auditor {
    /// The scan's last write transaction, only when it has something to
    /// queue (no digests, nothing filed unmailed: no transaction, and no
    /// lease to check for it).
    pub(super) fn queue_after_scan(
        &self,
        conn: &mut DbConn,
        units: &Units,
        run: &Run,
        counts: &Counts,
    ) -> anyhow::Result<()> {
        if self.mail.mode != MailMode::Sammanstallning && counts.unmailed == 0 {
            return Ok(());
        }
        backend::write_tx(conn, |conn| {
            self.keep_lease(conn, &run.holder)?;
            if self.mail.mode == MailMode::Sammanstallning {
                self.queue_digests(conn, run.id)?;
            }
            self.queue_unmailed_summary(conn, units, run, counts)
        })
    }

    /// Sammanställning: every deviation not yet in a mail, one digest per
    /// address per scan — an address gets the deviations it is the recipient
    /// of and those it has a copy of, in one mail — at most `DIGEST_MAX`
    /// deviations a mail: a backlog is split, never dropped.
    fn queue_digests(&self, conn: &mut DbConn, run_id: i64) -> anyhow::Result<()> {
        let mut by_address: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        let mut queued = Vec::new();
        for (id, recipients) in deviations::unqueued(conn)? {
            let r = Recipients::from_json(&recipients);
            let mut addresses: Vec<String> = std::iter::once(r.to).chain(r.cc).collect();
            addresses.sort();
            addresses.dedup();
            for a in addresses {
                by_address.entry(a).or_default().push(id);
            }
            queued.push(id);
        }
        let domain = self.mail.domain();
        for (address, ids) in by_address {
            let key = hex::encode(sha2::Sha256::digest(address.as_bytes()));
            let recipients = Recipients {
                to: address,
                cc: Vec::new(),
                via: String::new(),
            };
            for (n, part) in ids.chunks(outbox::DIGEST_MAX).enumerate() {
                let kind = outbox::MailKind::Sammanstallning;
                let mid = format!("<{kind}-{run_id}-{}-{n}@{domain}>", &key[..16]);
                outbox::enqueue(conn, &[NewMail::new(mid, kind, part, &recipients)])?;
            }
        }
        deviations::mark_queued(conn, &queued)?;
        Ok(())
    }

    /// One summary to the default address of what this scan filed without
    /// mail because it was too old to act on, per unit.
    fn queue_unmailed_summary(
        &self,
        conn: &mut DbConn,
        units: &Units,
        run: &Run,
        counts: &Counts,
    ) -> anyhow::Result<()> {
        if counts.unmailed == 0 {
            return Ok(());
        }
        let per_unit: Vec<serde_json::Value> = counts
            .unmailed_by_unit
            .iter()
            .map(|(id, n)| {
                let name = units
                    .get(&UnitId(id.clone()))
                    .map_or_else(|| "okänd eller ingen enhet".to_string(), |u| u.name.clone());
                serde_json::json!({"id": if id.is_empty() { "–" } else { id }, "namn": name, "antal": n})
            })
            .collect();
        let mut m = NewMail::new(
            format!("<{}-{}@{}>", outbox::MailKind::EjMejlade, run.id, self.mail.domain()),
            outbox::MailKind::EjMejlade,
            &[],
            &Recipients {
                to: self.mail.default_to.clone(),
                cc: Vec::new(),
                via: String::new(),
            },
        );
        m.payload = Some(
            serde_json::json!({
                "antal": counts.unmailed, "dagar": self.mail.max_age_days, "granskning": run.id, "enheter": per_unit,
            })
            .to_string(),
        );
        outbox::enqueue(conn, &[m])?;
        Ok(())
    }
}
