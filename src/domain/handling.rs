//! The handling lifecycle of a deviation (SPEC §6.1): which change of status
//! which role may make, and what the change must carry. Pure: the store
//! applies an allowed change, the web turns a refusal into 409 or 422.

use super::Role;

/// Every status a deviation can have.
pub const STATUSES: [&str; 8] = [
    "ny",
    "skickad",
    "mottagen",
    "utreds",
    "atgardad",
    "avslutad",
    "aterkallad",
    "makulerad",
];

/// Statuses in which the deviation still waits for someone: a reminder can
/// be due, and it can be voided (`makulerad`).
pub const OPEN: [&str; 5] = ["ny", "skickad", "mottagen", "utreds", "atgardad"];

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
    NotAllowed { from: String, to: String },
    /// Allowed, but a required text is missing (422).
    Missing(&'static str),
}

impl Refused {
    /// In Swedish, for the page and the API's `message`.
    pub fn message(&self) -> String {
        match self {
            Refused::UnknownStatus(s) => format!("{s} är ingen status; giltiga är {}", STATUSES.join(", ")),
            Refused::NotAllowed { from, to } => {
                format!("ändringen {from} → {to} är inte tillåten för din roll i det här läget")
            }
            Refused::Missing("atgard") => "åtgärd (atgard) krävs: beskriv vad som gjordes".into(),
            Refused::Missing("reason") => "skäl (reason) krävs för att makulera".into(),
            Refused::Missing(field) => format!("{field} krävs för den här ändringen"),
        }
    }
}

/// The text a change must carry, if any.
fn required(from: &str, to: &str) -> Option<&'static str> {
    match to {
        "atgardad" => Some("atgard"),
        "makulerad" => Some("reason"),
        "utreds" if matches!(from, "atgardad" | "avslutad") => Some("note"),
        _ => None,
    }
}

/// Whether `role` may change a deviation from `from` to `to`. Scope (the
/// unit) is checked before this: a deviation outside it is never found.
pub fn allowed(role: Role, from: &str, to: &str) -> bool {
    use Role::*;
    let by = |roles: &[Role]| roles.contains(&role);
    match (from, to) {
        ("ny" | "skickad", "mottagen") => by(&[Handlaggare, Admin]),
        ("mottagen", "utreds") => by(&[Handlaggare, Admin]),
        ("mottagen" | "utreds", "atgardad") => by(&[Handlaggare, Admin]),
        ("atgardad", "avslutad") => by(&[Handlaggare, Ledning, Admin]),
        ("atgardad" | "avslutad", "utreds") => by(&[Ledning, Admin]),
        (f, "makulerad") if OPEN.contains(&f) => by(&[Handlaggare, Ledning, Admin]),
        _ => false,
    }
}

/// The statuses `role` may move a deviation in `from` to, in lifecycle order
/// (what the handling form offers).
pub fn choices(role: Role, from: &str) -> Vec<&'static str> {
    STATUSES.iter().copied().filter(|to| allowed(role, from, to)).collect()
}

/// Checks a change; on success the note the history keeps for it.
pub fn check(role: Role, from: &str, change: &StatusChange) -> Result<Option<String>, Refused> {
    let to = change.status.as_str();
    if !STATUSES.contains(&to) {
        return Err(Refused::UnknownStatus(to.to_string()));
    }
    if !allowed(role, from, to) {
        return Err(Refused::NotAllowed {
            from: from.to_string(),
            to: to.to_string(),
        });
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
        ("atgardad", Some(a), _, Some(n)) => Some(format!("Åtgärd: {a}\n{n}")),
        ("atgardad", Some(a), _, None) => Some(format!("Åtgärd: {a}")),
        ("makulerad", _, Some(r), Some(n)) => Some(format!("Skäl: {r}\n{n}")),
        ("makulerad", _, Some(r), None) => Some(format!("Skäl: {r}")),
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
            check(Role::Handlaggare, "utreds", &change("atgardad")),
            Err(Refused::Missing("atgard"))
        );
        let blank = StatusChange {
            atgard: Some("  ".into()),
            ..change("atgardad")
        };
        assert_eq!(
            check(Role::Handlaggare, "utreds", &blank),
            Err(Refused::Missing("atgard"))
        );
        assert_eq!(
            check(Role::Ledning, "avslutad", &change("utreds")),
            Err(Refused::Missing("note"))
        );
        assert_eq!(
            check(Role::Ledning, "utreds", &change("makulerad")),
            Err(Refused::Missing("reason"))
        );
        // A change not allowed is 409 whatever it carries.
        assert!(matches!(
            check(Role::Ledning, "utreds", &change("atgardad")),
            Err(Refused::NotAllowed { .. })
        ));
        assert!(matches!(
            check(Role::Admin, "ny", &change("klar")),
            Err(Refused::UnknownStatus(_))
        ));
        let done = StatusChange {
            atgard: Some("Rutinen för IM gicks igenom på APT".into()),
            ..change("atgardad")
        };
        assert_eq!(
            check(Role::Handlaggare, "utreds", &done),
            Ok(Some("Åtgärd: Rutinen för IM gicks igenom på APT".into()))
        );
    }
}
