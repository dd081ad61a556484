//! The unit register and the unit tree.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;

use super::schema::units;
use super::{now, DbConn};
use crate::domain::{Unit, UnitId, UnitKind};

#[derive(Debug, Clone, Queryable)]
struct UnitRow {
    id: String,
    name: String,
    kind: String,
    huvudman: String,
    parent: Option<String>,
    email: Option<String>,
    storhelg: bool,
    chef_email: Option<String>,
}

const COLUMNS: (
    units::id,
    units::name,
    units::kind,
    units::huvudman,
    units::parent,
    units::email,
    units::storhelg,
    units::chef_email,
) = (
    units::id,
    units::name,
    units::kind,
    units::huvudman,
    units::parent,
    units::email,
    units::storhelg,
    units::chef_email,
);

impl UnitRow {
    fn into_unit(self) -> Unit {
        Unit {
            id: UnitId(self.id),
            // Only validated kinds are ever written (see `Unit::from_json`).
            kind: UnitKind::parse(&self.kind).unwrap_or(UnitKind::Kommun),
            name: self.name,
            huvudman: self.huvudman,
            parent: self.parent.map(UnitId),
            email: self.email,
            chef_email: self.chef_email,
            storhelg: self.storhelg,
            email_given: true,
            chef_email_given: true,
        }
    }
}

/// Why units were not stored.
#[derive(Debug, thiserror::Error)]
pub enum UnitsError {
    /// The parents would go round: the units of the loop, in parent order.
    #[error("enheternas överordnade skulle bilda en slinga: {}; inget sparades", .0.join(" → "))]
    Cycle(Vec<String>),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

/// Registers or updates every unit, in one transaction. An update that
/// does not name `email` keeps the stored address. A batch after which a
/// unit would be its own ancestor is refused whole (a loop would widen a
/// handläggare's scope to the units above).
pub fn upsert(conn: &mut DbConn, list: &[Unit]) -> Result<(usize, usize), UnitsError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        // Two registrations of the same new unit at once: the second sees the first.
        match upsert_once(conn, list) {
            Err(UnitsError::Db(e)) if attempt < 5 && super::retryable(&e) => continue,
            other => return other,
        }
    }
}

fn upsert_once(conn: &mut DbConn, list: &[Unit]) -> Result<(usize, usize), UnitsError> {
    super::backend::write_tx(conn, |conn| {
        super::backend::lock_units(conn)?;
        let (mut created, mut updated) = (0, 0);
        let mut reshaped = false;
        let mut restaffed = false;
        let t = now();
        for u in list {
            let before: Option<(String, String, Option<String>, bool)> = units::table
                .find(u.id.as_str())
                .select((units::kind, units::huvudman, units::parent, units::storhelg))
                .first(conn)
                .optional()?;
            // A unit that comes under the storhelg recommendation or leaves
            // it changes every staffing day judged: the next scan judges
            // them all again.
            restaffed |= before.as_ref().map_or(u.storhelg, |b| b.3 != u.storhelg);
            let before = before.map(|(kind, huvudman, parent, _)| (kind, huvudman, parent));
            let shape = (
                u.kind.as_str().to_string(),
                u.huvudman.clone(),
                u.parent.as_ref().map(|p| p.0.clone()),
            );
            reshaped |= before.as_ref() != Some(&shape);
            let values = (
                units::name.eq(&u.name),
                units::kind.eq(u.kind.as_str()),
                units::huvudman.eq(&u.huvudman),
                units::parent.eq(u.parent.as_ref().map(|p| p.as_str())),
                units::storhelg.eq(u.storhelg),
                units::updated_at.eq(t),
            );
            let target = units::table.find(u.id.as_str());
            let n = diesel::update(target).set(values).execute(conn)?;
            if n > 0 && u.email_given {
                diesel::update(target)
                    .set(units::email.eq(u.email.as_deref()))
                    .execute(conn)?;
            }
            if n > 0 && u.chef_email_given {
                diesel::update(target)
                    .set(units::chef_email.eq(u.chef_email.as_deref()))
                    .execute(conn)?;
            }
            if n == 0 {
                diesel::insert_into(units::table)
                    .values((
                        units::id.eq(u.id.as_str()),
                        values,
                        units::email.eq(u.email.as_deref()),
                        units::chef_email.eq(u.chef_email.as_deref()),
                    ))
                    .execute(conn)?;
                created += 1;
            } else {
                updated += 1;
            }
        }
        // A unit that is new or has another kind, huvudman or parent changes
        // what the follow-up kept of cases that name it (kommuner, the
        // öppenvård recipient): every case is summarised again by the next
        // scan, which finds them changed (`store::candidates`).
        if restaffed {
            super::staffing::forget(conn, None)?;
        }
        if reshaped {
            let pairs: Vec<(String, Option<String>)> = units::table.select((units::id, units::parent)).load(conn)?;
            if let Some(cycle) = find_cycle(&pairs) {
                return Err(UnitsError::Cycle(cycle));
            }
            diesel::update(super::schema::cases::table.filter(super::schema::cases::summary_hash.is_not_null()))
                .set((
                    super::schema::cases::summary_hash.eq(None::<String>),
                    super::schema::cases::changed_at.eq(super::now()),
                ))
                .execute(conn)?;
        }
        Ok((created, updated))
    })
}

pub fn all(conn: &mut DbConn) -> QueryResult<Vec<Unit>> {
    let rows: Vec<UnitRow> = units::table.select(COLUMNS).order(units::id).load(conn)?;
    Ok(rows.into_iter().map(UnitRow::into_unit).collect())
}

pub fn get(conn: &mut DbConn, id: &str) -> QueryResult<Option<Unit>> {
    let row: Option<UnitRow> = units::table.find(id).select(COLUMNS).first(conn).optional()?;
    Ok(row.map(UnitRow::into_unit))
}

/// Units that events name (as performer) but that are not registered.
pub fn unknown(conn: &mut DbConn) -> QueryResult<Vec<String>> {
    let known: HashSet<String> = units::table.select(units::id).load(conn)?.into_iter().collect();
    let named = super::unit_days::units(conn)?;
    Ok(named.into_iter().filter(|u| !known.contains(u)).collect())
}

/// The unit and every unit below it.
pub fn subtree(conn: &mut DbConn, root: &str) -> QueryResult<HashSet<String>> {
    subtrees(conn, &[root])
}

/// The units and every unit below any of them. A loop in the stored
/// parents (written before loops were refused, or by hand) is not followed:
/// a unit on a loop has no parent here, so a loop never widens a scope.
pub fn subtrees(conn: &mut DbConn, roots: &[&str]) -> QueryResult<HashSet<String>> {
    let pairs: Vec<(String, Option<String>)> = units::table.select((units::id, units::parent)).load(conn)?;
    let looped = on_cycles(&pairs);
    let mut children: HashMap<String, Vec<String>> = HashMap::new();
    for (id, parent) in pairs {
        if let Some(p) = parent.filter(|_| !looped.contains(&id)) {
            children.entry(p).or_default().push(id);
        }
    }
    let mut out = HashSet::new();
    let mut stack: Vec<String> = roots.iter().map(|r| r.to_string()).collect();
    while let Some(id) = stack.pop() {
        if out.insert(id.clone()) {
            stack.extend(children.get(&id).cloned().unwrap_or_default());
        }
    }
    Ok(out)
}

/// The first loop of parents found, as the units in parent order starting
/// from the smallest id, or none.
fn find_cycle(pairs: &[(String, Option<String>)]) -> Option<Vec<String>> {
    let looped = on_cycles(pairs);
    let start = looped.iter().min()?;
    let parent: HashMap<&str, &str> = pairs
        .iter()
        .filter_map(|(id, p)| p.as_deref().map(|p| (id.as_str(), p)))
        .collect();
    let mut cycle = vec![start.clone()];
    let mut at = parent.get(start.as_str()).copied();
    while let Some(p) = at.filter(|p| *p != start) {
        cycle.push(p.to_string());
        at = parent.get(p).copied();
    }
    cycle.push(start.clone());
    Some(cycle)
}

/// Every unit that is its own ancestor.
fn on_cycles(pairs: &[(String, Option<String>)]) -> HashSet<String> {
    let parent: HashMap<&str, &str> = pairs
        .iter()
        .filter_map(|(id, p)| p.as_deref().map(|p| (id.as_str(), p)))
        .collect();
    let mut done: HashSet<&str> = HashSet::new();
    let mut looped = HashSet::new();
    for (id, _) in pairs {
        let mut path: Vec<&str> = Vec::new();
        let mut at = Some(id.as_str());
        while let Some(u) = at.filter(|u| !done.contains(u)) {
            if let Some(i) = path.iter().position(|p| *p == u) {
                looped.extend(path[i..].iter().map(|s| s.to_string()));
                break;
            }
            path.push(u);
            at = parent.get(u).copied();
        }
        done.extend(path);
    }
    looped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.map(str::to_string)))
            .collect()
    }

    #[test]
    fn loops_are_found_and_named_and_a_tree_has_none() {
        let tree = pairs(&[("A", None), ("B", Some("A")), ("C", Some("B")), ("D", Some("X"))]);
        assert_eq!(find_cycle(&tree), None);
        let two = pairs(&[("U4", Some("U5")), ("U5", Some("U4")), ("W", Some("U5"))]);
        assert_eq!(find_cycle(&two), Some(vec!["U4".into(), "U5".into(), "U4".into()]));
        assert_eq!(on_cycles(&two), HashSet::from(["U4".to_string(), "U5".to_string()]));
        let own = pairs(&[("A", Some("A"))]);
        assert_eq!(find_cycle(&own), Some(vec!["A".into(), "A".into()]));
        let long = pairs(&[("K", Some("W")), ("W", Some("F")), ("F", Some("K")), ("X", Some("K"))]);
        assert_eq!(
            find_cycle(&long),
            Some(vec!["F".into(), "K".into(), "W".into(), "F".into()])
        );
    }
}
