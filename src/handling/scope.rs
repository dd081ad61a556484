//! What a caller may see (SPEC §9): the subtrees of its units, or the
//! county. A scope that cannot be determined denies, and an id outside the
//! scope is answered exactly as one that does not exist.

use std::collections::HashSet;

use super::HandlingError;
use crate::store::tokens::{Caller, Role};
use crate::store::DbConn;

/// What a caller may see. A handläggare sees its units and every unit below
/// them; a handläggare without units has no determinable scope and is
/// denied (SPEC §9: a scope that cannot be determined denies). A ledning
/// caller with units sees those subtrees, without units the county.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Units(HashSet<String>),
}

impl Scope {
    pub fn of(caller: &Caller, conn: &mut DbConn) -> Result<Scope, HandlingError> {
        let roots = roots(caller);
        match caller.role {
            Role::Handlaggare | Role::Ledning if !roots.is_empty() => {
                Ok(Scope::Units(crate::store::units::subtrees(conn, &roots)?))
            }
            Role::Handlaggare => Err(HandlingError::NoScope),
            _ => Ok(Scope::All),
        }
    }

    pub fn contains(&self, unit: Option<&str>) -> bool {
        match self {
            Scope::All => true,
            Scope::Units(own) => unit.is_some_and(|u| own.contains(u)),
        }
    }

    /// The units, when the scope is not the whole county.
    pub fn units(&self) -> Option<&HashSet<String>> {
        match self {
            Scope::All => None,
            Scope::Units(u) => Some(u),
        }
    }

    /// Whether the caller may read the mail addresses of every unit's
    /// reports (not a handläggare, nor ledning bound to units).
    pub fn sees_addresses(&self) -> bool {
        matches!(self, Scope::All)
    }
}

/// The caller's units, blanks dropped.
fn roots(caller: &Caller) -> Vec<&str> {
    caller
        .units
        .iter()
        .map(|u| u.trim())
        .filter(|u| !u.is_empty())
        .collect()
}

/// A history note as the caller may read it: the mail addresses in "mejlad
/// till …" only for those who may see every unit's addresses.
pub fn note_for(note: Option<&str>, scope: &Scope) -> Option<String> {
    let note = note?;
    match scope {
        Scope::Units(_) if note.starts_with("mejlad till ") => Some("mejlad till mottagaren".into()),
        _ => Some(note.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_scope_holds_its_units_only_and_never_a_deviation_without_unit() {
        let scope = Scope::Units(HashSet::from(["U1".to_string(), "U2".to_string()]));
        assert!(scope.contains(Some("U2")));
        assert!(!scope.contains(Some("U3")));
        assert!(!scope.contains(None));
        assert!(Scope::All.contains(None));
        assert!(!scope.sees_addresses());
        assert!(Scope::All.sees_addresses());
    }

    #[test]
    fn mail_addresses_in_notes_are_hidden_from_a_unit_scope() {
        let units = Scope::Units(HashSet::new());
        let note = Some("mejlad till a@example.se");
        assert_eq!(note_for(note, &units).as_deref(), Some("mejlad till mottagaren"));
        assert_eq!(note_for(note, &Scope::All).as_deref(), note);
        assert_eq!(note_for(Some("Åtgärd: x"), &units).as_deref(), Some("Åtgärd: x"));
        assert_eq!(note_for(None, &Scope::All), None);
    }
}
