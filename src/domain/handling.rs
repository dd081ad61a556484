//! The handling lifecycle of a deviation (SPEC §6.1): its statuses, which
//! change of status which role may make, and what the change must carry.
//! Pure: the store applies an allowed change, the web turns a refusal into
//! 409 or 422.

use super::state::words;
use super::Role;

/// The status of a deviation (SPEC §6.1), in lifecycle order; `as_str` is
/// the word stored in `deviations.status` and shown in the API.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    diesel::expression::AsExpression,
    diesel::deserialize::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum DeviationStatus {
    Ny,
    Skickad,
    Mottagen,
    Utreds,
    Atgardad,
    Avslutad,
    Aterkallad,
    Makulerad,
}

use DeviationStatus::*;

impl DeviationStatus {
    pub const ALL: [DeviationStatus; 8] = [Ny, Skickad, Mottagen, Utreds, Atgardad, Avslutad, Aterkallad, Makulerad];

    pub fn as_str(self) -> &'static str {
        match self {
            Ny => "ny",
            Skickad => "skickad",
            Mottagen => "mottagen",
            Utreds => "utreds",
            Atgardad => "atgardad",
            Avslutad => "avslutad",
            Aterkallad => "aterkallad",
            Makulerad => "makulerad",
        }
    }

    /// In Swedish, for the pages and the report.
    pub fn label(self) -> &'static str {
        match self {
            Ny => "Ny",
            Skickad => "Skickad",
            Mottagen => "Mottagen",
            Utreds => "Utreds",
            Atgardad => "Åtgärdad",
            Avslutad => "Avslutad",
            Aterkallad => "Återkallad",
            Makulerad => "Makulerad",
        }
    }

    /// Still waiting for someone: a reminder can be due, and it can be
    /// voided (`makulerad`).
    pub fn is_open(self) -> bool {
        OPEN.contains(&self)
    }
}

words!(DeviationStatus, "status");

/// Every status a deviation can have, in lifecycle order.
pub const STATUSES: [DeviationStatus; 8] = DeviationStatus::ALL;

/// Statuses in which the deviation still waits for someone: a reminder can
/// be due, and it can be voided (`makulerad`).
pub const OPEN: [DeviationStatus; 5] = [Ny, Skickad, Mottagen, Utreds, Atgardad];

/// What a person asks for: the new status and the texts it may carry.
#[derive(Debug, Clone, Default)]
pub struct StatusChange {
    pub status: String,
    pub note: Option<String>,
    pub atgard: Option<String>,
    pub reason: Option<String>,
}

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Not a status at all (422).
    UnknownStatus(String),
    /// Not a change this role may make from this status (409).
    NotAllowed { from: DeviationStatus, to: DeviationStatus },
    /// Allowed, but a required text is missing (422).
    Missing(&'static str),
}

impl Refused {
    /// In Swedish, for the page and the API's `message`.
    pub fn message(&self) -> String {
        match self {
            Refused::UnknownStatus(s) => format!("{s} är ingen status; giltiga är {}", valid_words()),
            Refused::NotAllowed { from, to } => {
                format!("ändringen {from} → {to} är inte tillåten för din roll i det här läget")
            }
            Refused::Missing("atgard") => "åtgärd (atgard) krävs: beskriv vad som gjordes".into(),
            Refused::Missing("reason") => "skäl (reason) krävs för att makulera".into(),
            Refused::Missing(field) => format!("{field} krävs för den här ändringen"),
        }
    }
}

/// Every status's word, for a message: `ny, skickad, …, makulerad`.
pub fn valid_words() -> String {
    STATUSES.map(DeviationStatus::as_str).join(", ")
}

/// The text a change must carry, if any.
fn required(from: DeviationStatus, to: DeviationStatus) -> Option<&'static str> {
    match to {
        Atgardad => Some("atgard"),
        Makulerad => Some("reason"),
        Utreds if matches!(from, Atgardad | Avslutad) => Some("note"),
        _ => None,
    }
}

/// Whether `role` may change a deviation from `from` to `to`. Scope (the
/// unit) is checked before this: a deviation outside it is never found.
pub fn allowed(role: Role, from: DeviationStatus, to: DeviationStatus) -> bool {
    use Role::{Admin, Handlaggare, Ledning};
    let by = |roles: &[Role]| roles.contains(&role);
    match (from, to) {
        (Ny | Skickad, Mottagen) => by(&[Handlaggare, Admin]),
        (Mottagen, Utreds) => by(&[Handlaggare, Admin]),
        (Mottagen | Utreds, Atgardad) => by(&[Handlaggare, Admin]),
        (Atgardad, Avslutad) => by(&[Handlaggare, Ledning, Admin]),
        (Atgardad | Avslutad, Utreds) => by(&[Ledning, Admin]),
        (f, Makulerad) if f.is_open() => by(&[Handlaggare, Ledning, Admin]),
        _ => false,
    }
}

/// The statuses `role` may move a deviation in `from` to, in lifecycle order
/// (what the handling form offers).
pub fn choices(role: Role, from: DeviationStatus) -> Vec<DeviationStatus> {
    STATUSES.into_iter().filter(|&to| allowed(role, from, to)).collect()
}

/// The status a change asks for, if it is one.
pub fn target(change: &StatusChange) -> Result<DeviationStatus, Refused> {
    change
        .status
        .parse()
        .map_err(|_| Refused::UnknownStatus(change.status.clone()))
}

/// Checks a change; on success the note the history keeps for it.
pub fn check(role: Role, from: DeviationStatus, change: &StatusChange) -> Result<Option<String>, Refused> {
    let to = target(change)?;
    if !allowed(role, from, to) {
        return Err(Refused::NotAllowed { from, to });
    }
    let text = |t: &Option<String>| t.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(String::from);
    let (note, atgard, reason) = (text(&change.note), text(&change.atgard), text(&change.reason));
    match required(from, to) {
        Some("atgard") if atgard.is_none() => return Err(Refused::Missing("atgard")),
        Some("reason") if reason.is_none() => return Err(Refused::Missing("reason")),
        Some("note") if note.is_none() => return Err(Refused::Missing("note")),
        _ => {}
    }
    let kept = match (to, atgard, reason, note) {
        (Atgardad, Some(a), _, Some(n)) => Some(format!("Åtgärd: {a}\n{n}")),
        (Atgardad, Some(a), _, None) => Some(format!("Åtgärd: {a}")),
        (Makulerad, _, Some(r), Some(n)) => Some(format!("Skäl: {r}\n{n}")),
        (Makulerad, _, Some(r), None) => Some(format!("Skäl: {r}")),
        (_, _, _, n) => n,
    };
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_of_spec_6_1_and_nothing_else() {
        let mut allowed_changes = Vec::new();
        for role in [Role::Admin, Role::Ledning, Role::Handlaggare, Role::Inlasning] {
            for from in STATUSES {
                for to in STATUSES {
                    if allowed(role, from, to) {
                        allowed_changes.push(format!("{} {from}>{to}", role.as_str()));
                    }
                }
            }
        }
        let expected = [
            "admin ny>mottagen",
            "admin ny>makulerad",
            "admin skickad>mottagen",
            "admin skickad>makulerad",
            "admin mottagen>utreds",
            "admin mottagen>atgardad",
            "admin mottagen>makulerad",
            "admin utreds>atgardad",
            "admin utreds>makulerad",
            "admin atgardad>utreds",
            "admin atgardad>avslutad",
            "admin atgardad>makulerad",
            "admin avslutad>utreds",
            "ledning ny>makulerad",
            "ledning skickad>makulerad",
            "ledning mottagen>makulerad",
            "ledning utreds>makulerad",
            "ledning atgardad>utreds",
            "ledning atgardad>avslutad",
            "ledning atgardad>makulerad",
            "ledning avslutad>utreds",
            "handlaggare ny>mottagen",
            "handlaggare ny>makulerad",
            "handlaggare skickad>mottagen",
            "handlaggare skickad>makulerad",
            "handlaggare mottagen>utreds",
            "handlaggare mottagen>atgardad",
            "handlaggare mottagen>makulerad",
            "handlaggare utreds>atgardad",
            "handlaggare utreds>makulerad",
            "handlaggare atgardad>avslutad",
            "handlaggare atgardad>makulerad",
        ];
        assert_eq!(allowed_changes, expected);
    }

    #[test]
    fn required_texts_are_checked_after_the_change_itself() {
        let change = |status: &str| StatusChange {
            status: status.into(),
            ..Default::default()
        };
        assert_eq!(
            check(Role::Handlaggare, Utreds, &change("atgardad")),
            Err(Refused::Missing("atgard"))
        );
        let blank = StatusChange {
            atgard: Some("  ".into()),
            ..change("atgardad")
        };
        assert_eq!(
            check(Role::Handlaggare, Utreds, &blank),
            Err(Refused::Missing("atgard"))
        );
        assert_eq!(
            check(Role::Ledning, Avslutad, &change("utreds")),
            Err(Refused::Missing("note"))
        );
        assert_eq!(
            check(Role::Ledning, Utreds, &change("makulerad")),
            Err(Refused::Missing("reason"))
        );
        // A change not allowed is 409 whatever it carries.
        assert!(matches!(
            check(Role::Ledning, Utreds, &change("atgardad")),
            Err(Refused::NotAllowed { .. })
        ));
        assert!(matches!(
            check(Role::Admin, Ny, &change("klar")),
            Err(Refused::UnknownStatus(_))
        ));
        let done = StatusChange {
            atgard: Some("Rutinen för IM gicks igenom på APT".into()),
            ..change("atgardad")
        };
        assert_eq!(
            check(Role::Handlaggare, Utreds, &done),
            Ok(Some("Åtgärd: Rutinen för IM gicks igenom på APT".into()))
        );
    }
}
