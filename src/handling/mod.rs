//! The deviation lifecycle below the web (SPEC §6.1): the scope of a
//! caller, list reads under it, reading one deviation as the caller may see it, a change of
//! status in its transaction with the closing notice it may queue, the
//! assignment and comments. The API, the pages and the CLI call these;
//! `domain::handling` decides which change is allowed, `store` holds the SQL.
//!
//! Error policy: every refusal and failure is a [`HandlingError`] with its
//! Swedish message as `Display`; the results are plain data. Nothing here
//! knows HTTP: `web::error` maps the enum to answers in one `From` impl
//! (not found 404, no scope 403, not allowed 409, missing or invalid 422,
//! the database's errors as the database's).

mod scope;
mod status;
mod work;

pub use scope::{note_for, Scope};
pub use status::change_status;
pub use work::{assign, comment, comment_text, may_work, MAX_COMMENT};

use crate::domain::handling::{self as rules, DeviationStatus, Refused};
use crate::store::deviations::{self, CommentRow, DeviationRow, HistoryRow, ListFilter};
use crate::store::tokens::{self, Caller};
use crate::store::DbConn;

/// Why an operation on a deviation was refused or failed; nothing was
/// changed. The message is Swedish, for the page and the API's `message`.
#[derive(Debug, thiserror::Error)]
pub enum HandlingError {
    /// Not there, or outside the caller's scope: answered alike (SPEC §9).
    #[error("avvikelsen finns inte, eller hör inte till dina enheter")]
    NotFound,
    /// A handläggare without units: the scope cannot be determined.
    #[error("du har ingen enhet ännu, så det går inte att avgöra vad du får se; be en administratör lägga till dina enheter")]
    NoScope,
    /// A change SPEC §6.1 does not allow this role from this status.
    #[error("ändringen {from} → {to} är inte tillåten för din roll i det här läget")]
    NotAllowed { from: DeviationStatus, to: DeviationStatus },
    /// An allowed change without the text it must carry.
    #[error("{}", missing(.field))]
    Missing { field: &'static str },
    /// Input the operation does not take (an unknown status, an empty
    /// comment, an assignee who does not work the unit).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    /// The report document could not be built (the database, a template).
    #[error(transparent)]
    Report(anyhow::Error),
}

impl From<Refused> for HandlingError {
    fn from(r: Refused) -> HandlingError {
        match r {
            Refused::NotAllowed { from, to } => HandlingError::NotAllowed { from, to },
            Refused::Missing(field) => HandlingError::Missing { field },
            Refused::UnknownStatus(_) => HandlingError::Invalid(r.message()),
        }
    }
}

fn missing(field: &&'static str) -> String {
    Refused::Missing(field).message()
}

/// One deviation as a caller may read it, with its history (notes as the
/// caller may read them), comments, handling and the changes the caller
/// may make now.
#[derive(Debug)]
pub struct Detail {
    pub scope: Scope,
    pub deviation: DeviationRow,
    pub history: Vec<HistoryRow>,
    pub comments: Vec<CommentRow>,
    pub assignee: Option<String>,
    pub atgard: Option<String>,
    pub reason: Option<String>,
    pub allowed: Vec<DeviationStatus>,
    /// The berörd part (SPEC §6), unit ids.
    pub parties: Vec<String>,
}

/// The deviation if the caller may see it: out of scope is not found.
pub fn visible(conn: &mut DbConn, scope: &Scope, id: i64) -> Result<DeviationRow, HandlingError> {
    deviations::get(conn, id)?
        .filter(|d| scope.contains(d.unit.as_deref()))
        .ok_or(HandlingError::NotFound)
}

/// Whether `caller` reads, besides what its units are responsible for,
/// what was reported on their behalf (SPEC §6: the berörd part): ledning
/// does — a kommun's chefs see the reports about the care of their
/// patients; a handläggare reads only its own units' (SPEC §9).
pub fn reads_on_behalf(caller: &Caller) -> bool {
    caller.role == crate::store::tokens::Role::Ledning
}

/// The deviation if the caller may read it: responsible for it, or (for
/// ledning) its berörd part. Only the responsible side handles it ([`visible`]).
pub fn readable(conn: &mut DbConn, caller: &Caller, scope: &Scope, id: i64) -> Result<DeviationRow, HandlingError> {
    let d = deviations::get(conn, id)?.ok_or(HandlingError::NotFound)?;
    if scope.contains(d.unit.as_deref()) {
        return Ok(d);
    }
    if !reads_on_behalf(caller) {
        return Err(HandlingError::NotFound);
    }
    let parties = deviations::parties_of(conn, &[id])?.remove(&id).unwrap_or_default();
    if parties.iter().any(|u| scope.contains(Some(u))) {
        Ok(d)
    } else {
        Err(HandlingError::NotFound)
    }
}

/// A list read: one page of the deviations `caller` may see that match
/// `filter` (the scope applied in the query), newest due first, with how
/// many match and the scope. A list read is a read of every deviation in
/// it: logged first as `action` with `logged` (the filter as decoded).
pub fn list(
    conn: &mut DbConn,
    caller: &Caller,
    filter: &ListFilter,
    (page, per_page): (i64, i64),
    action: &str,
    logged: &str,
) -> Result<(Scope, Vec<DeviationRow>, i64), HandlingError> {
    let scope = Scope::of(caller, conn)?;
    tokens::log_access(conn, caller, action, logged)?;
    let (rows, total) = deviations::page(conn, filter, scope.units(), reads_on_behalf(caller), page, per_page)?;
    Ok((scope, rows, total))
}

/// The caller's scope and the deviation `id` in it, the read logged.
pub fn open(conn: &mut DbConn, caller: &Caller, id: i64) -> Result<(Scope, DeviationRow), HandlingError> {
    let scope = Scope::of(caller, conn)?;
    let d = readable(conn, caller, &scope, id)?;
    tokens::log_access(conn, caller, "read_deviation", &id.to_string())?;
    Ok((scope, d))
}

/// The deviation `id` as the one JSON document a huvudman's system gets
/// (SPEC §6.0), read and logged exactly as `read` reads it; its kind from
/// its status now (`aterkallad`, `avslutad`, else `rapport`).
pub fn report_document(
    conn: &mut DbConn,
    caller: &Caller,
    id: i64,
    mail: &crate::mail::MailConfig,
    templates: &crate::mail::templates::Templates,
) -> Result<crate::mail::document::ReportDocument, HandlingError> {
    use crate::mail::document::{self, Kind};
    let (_, d) = open(conn, caller, id)?;
    let units = crate::rules::Units::new(crate::store::units::all(conn)?);
    document::of_deviation(conn, &d, &units, mail, templates, Kind::of_status(d.status)).map_err(HandlingError::Report)
}

/// The deviation `id` with everything the caller may read of it, the read logged.
pub fn read(conn: &mut DbConn, caller: &Caller, id: i64) -> Result<Detail, HandlingError> {
    let (scope, d) = open(conn, caller, id)?;
    detail(conn, caller, scope, d)
}

/// After a change: the deviation read again in `scope`, a read like any other.
fn reread(conn: &mut DbConn, caller: &Caller, scope: Scope, id: i64) -> Result<Detail, HandlingError> {
    let d = readable(conn, caller, &scope, id)?;
    tokens::log_access(conn, caller, "read_deviation", &id.to_string())?;
    detail(conn, caller, scope, d)
}

/// The history, comments and handling of `d`, as `caller` in `scope` may read them.
pub fn detail(conn: &mut DbConn, caller: &Caller, scope: Scope, d: DeviationRow) -> Result<Detail, HandlingError> {
    let history = deviations::history_of(conn, d.id)?
        .into_iter()
        .map(|h| HistoryRow {
            note: note_for(h.note.as_deref(), &scope),
            ..h
        })
        .collect();
    let comments = deviations::comments_of(conn, d.id)?;
    let handled = deviations::handling_of(conn, d.id)?.unwrap_or_default();
    let assignee = match handled.assigned_to {
        Some(uid) => crate::store::users::get(conn, uid)?.map(|u| u.username),
        None => None,
    };
    // The berörd part reads; only the responsible side changes the status.
    let d_id = d.id;
    let allowed = if scope.contains(d.unit.as_deref()) {
        rules::choices(caller.role, d.status)
    } else {
        Vec::new()
    };
    Ok(Detail {
        scope,
        deviation: d,
        history,
        comments,
        assignee,
        atgard: handled.atgard,
        reason: handled.reason,
        allowed,
        parties: deviations::parties_of(conn, &[d_id])?.remove(&d_id).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests;
