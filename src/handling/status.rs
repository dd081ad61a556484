//! A person's change of status (SPEC §6.1): checked against
//! `domain::handling` with the row locked, so a scan's withdrawal or a mail
//! being marked sent is ordered with it; kept with its history line and
//! åtgärd or reason; `avslutad` queues the closing notice to the report's
//! copies, and to the webhook that has its report, in the same transaction.

use serde_json::json;

use super::{reread, visible, Detail, HandlingError, Scope};
use crate::domain::handling::{self as rules, DeviationStatus, StatusChange};
use crate::mail::MailConfig;
use crate::store::deviations::{self, DeviationRow};
use crate::store::tokens::Caller;
use crate::store::{backend, DbConn};

/// Applies a change of status as `caller`; the deviation as it is after.
/// Nothing changes when the change is refused.
pub fn change_status(
    conn: &mut DbConn,
    mail: &MailConfig,
    caller: &Caller,
    id: i64,
    change: &StatusChange,
) -> Result<Detail, HandlingError> {
    let scope = Scope::of(caller, conn)?;
    backend::write_tx(conn, |conn| -> Result<(), HandlingError> {
        // Ordered with a scan or a mail on its way that touches the same row.
        backend::lock_deviations(conn, &[id])?;
        let d = visible(conn, &scope, id)?;
        let note = rules::check(caller.role, d.status, change)?;
        let to = rules::target(change)?;
        let text = |t: &Option<String>| t.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(String::from);
        deviations::apply_change(
            conn,
            &d,
            to,
            &caller.name,
            note.as_deref(),
            text(&change.atgard)
                .as_deref()
                .filter(|_| to == DeviationStatus::Atgardad),
            text(&change.reason)
                .as_deref()
                .filter(|_| to == DeviationStatus::Makulerad),
        )?;
        if to == DeviationStatus::Avslutad {
            queue_closing_notice(conn, mail, &d)?;
            // The receiver that has its report hears it is closed (SPEC §6.0).
            crate::mail::outbox::webhook::closed(conn, &d)?;
        }
        Ok(())
    })?;
    // The answer shows the deviation again: a read like any other.
    reread(conn, caller, scope, id)
}

/// The report's copies hear that it is closed, with the åtgärd, when the
/// route of its unit asks for it (`notify_on_close`).
fn queue_closing_notice(conn: &mut DbConn, mail: &MailConfig, d: &DeviationRow) -> Result<(), HandlingError> {
    use crate::mail::routing::{matching_route, Recipients};
    let units = crate::rules::Units::new(crate::store::units::all(conn)?);
    let unit = d.unit.clone().map(crate::domain::UnitId);
    // A route without mail (SPEC §6.0) tells its webhook instead.
    if !matching_route(unit.as_ref(), &units, mail).is_some_and(|r| r.notify_on_close && r.mail) {
        return Ok(());
    }
    let copies = Recipients::from_json(&d.recipients).cc;
    let Some((first, rest)) = copies.split_first() else {
        return Ok(());
    };
    let atgard = deviations::handling_of(conn, d.id)?
        .and_then(|h| h.atgard)
        .unwrap_or_else(|| "–".into());
    let n = deviations::history_count(conn, d.id)?;
    let m = crate::mail::outbox::notice(
        crate::mail::outbox::MailKind::Avslutad,
        d,
        Recipients {
            to: first.clone(),
            cc: rest.to_vec(),
            via: String::new(),
        },
        json!({"atgard": atgard}),
        &n.to_string(),
        &mail.domain(),
    );
    crate::mail::outbox::enqueue(conn, &[m])?;
    Ok(())
}
