//! Working a deviation besides its status: who it is assigned to, and
//! comments, which may be added in every state (SPEC §6.1).

use super::{reread, visible, Detail, HandlingError, Scope};
use crate::store::deviations;
use crate::store::tokens::{self, Caller, Role};
use crate::store::users::{self, User};
use crate::store::{backend, DbConn};

/// Longest comment accepted.
pub const MAX_COMMENT: usize = 4000;

/// Whether `user` may work a deviation of `unit`: an active person whose
/// scope holds the unit (a handläggare or ledning of the unit or above it,
/// a ledning user of the county, an admin).
pub fn may_work(conn: &mut DbConn, user: &User, unit: Option<&str>) -> Result<bool, HandlingError> {
    let Some(role) = Role::parse(&user.role) else {
        return Ok(false);
    };
    if user.disabled || role == Role::Inlasning {
        return Ok(false);
    }
    let as_caller = Caller {
        token_id: None,
        user_id: Some(user.id),
        name: user.username.clone(),
        role,
        units: user.units.clone(),
    };
    match Scope::of(&as_caller, conn) {
        Ok(scope) => Ok(scope.contains(unit)),
        Err(_) => Ok(false),
    }
}

/// Assigns a deviation in the caller's scope to a person who may work it
/// (or to nobody, with `None`); `Invalid` for anyone else.
pub fn assign(conn: &mut DbConn, caller: &Caller, id: i64, username: Option<&str>) -> Result<Detail, HandlingError> {
    let scope = Scope::of(caller, conn)?;
    backend::write_tx(conn, |conn| -> Result<(), HandlingError> {
        backend::lock_deviations(conn, &[id])?;
        let d = visible(conn, &scope, id)?;
        let target = match username.map(str::trim).filter(|u| !u.is_empty()) {
            None => None,
            Some(name) => {
                let user = users::list(conn)?
                    .into_iter()
                    .find(|u| u.username == name)
                    .filter(|u| may_work(conn, u, d.unit.as_deref()).unwrap_or(false))
                    .ok_or_else(|| {
                        HandlingError::Invalid(format!("{name} finns inte eller arbetar inte med avvikelsens enhet"))
                    })?;
                Some((user.id, user.username))
            }
        };
        deviations::assign(conn, &d, target.as_ref().map(|(i, n)| (*i, n.as_str())), &caller.name)?;
        Ok(())
    })?;
    reread(conn, caller, scope, id)
}

/// A comment's text as kept: blanks around it dropped; empty or longer than
/// [`MAX_COMMENT`] as sent is refused.
pub fn comment_text(text: &str) -> Result<&str, HandlingError> {
    // Counted as sent, blank as the document's pattern `[^\s\u0085]` says
    // (ECMAScript's blanks and Unicode's: the same set as here).
    let blank = |c: char| c.is_whitespace() || c == '\u{feff}';
    let long = text.chars().count() > MAX_COMMENT;
    let text = text.trim_matches(blank);
    if text.is_empty() {
        return Err(HandlingError::Invalid("kommentaren är tom".into()));
    }
    if long {
        return Err(HandlingError::Invalid(format!(
            "kommentaren är längre än {MAX_COMMENT} tecken"
        )));
    }
    Ok(text)
}

/// Adds a comment as `caller` to a deviation in scope.
pub fn comment(conn: &mut DbConn, caller: &Caller, id: i64, text: &str) -> Result<Detail, HandlingError> {
    let text = comment_text(text)?;
    let scope = Scope::of(caller, conn)?;
    // The berörd part's chefs may say how the breach hit them.
    let d = super::readable(conn, caller, &scope, id)?;
    deviations::add_comment(conn, d.id, &caller.name, text)?;
    tokens::log_access(conn, caller, "read_deviation", &id.to_string())?;
    super::detail(conn, caller, scope, d)
}
