//! The unit register and the unit tree.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;

use super::schema::{events, units};
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

/// Registers or updates every unit, in one transaction. An update that
/// does not name `email` keeps the stored address.
pub fn upsert(conn: &mut DbConn, list: &[Unit]) -> QueryResult<(usize, usize)> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        // Two registrations of the same new unit at once: the second sees the first.
        match upsert_once(conn, list) {
            Err(e) if attempt < 5 && super::retryable(&e) => continue,
            other => return other,
        }
    }
}

fn upsert_once(conn: &mut DbConn, list: &[Unit]) -> QueryResult<(usize, usize)> {
    super::backend::write_tx(conn, |conn| {
        let (mut created, mut updated) = (0, 0);
        let mut reshaped = false;
        let t = now();
        for u in list {
            let before: Option<(String, String, Option<String>)> = units::table
                .find(u.id.as_str())
                .select((units::kind, units::huvudman, units::parent))
                .first(conn)
                .optional()?;
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
        // öppenvård recipient): every case is summarised again by the next scan.
        if reshaped {
            diesel::update(super::schema::cases::table.filter(super::schema::cases::summary_hash.is_not_null()))
                .set(super::schema::cases::summary_hash.eq(None::<String>))
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
    let named: Vec<String> = events::table
        .select(events::unit)
        .distinct()
        .order(events::unit)
        .load(conn)?;
    Ok(named.into_iter().filter(|u| !known.contains(u)).collect())
}

/// The unit and every unit below it.
pub fn subtree(conn: &mut DbConn, root: &str) -> QueryResult<HashSet<String>> {
    subtrees(conn, &[root])
}

/// The units and every unit below any of them.
pub fn subtrees(conn: &mut DbConn, roots: &[&str]) -> QueryResult<HashSet<String>> {
    let pairs: Vec<(String, Option<String>)> = units::table.select((units::id, units::parent)).load(conn)?;
    let mut children: HashMap<String, Vec<String>> = HashMap::new();
    for (id, parent) in pairs {
        if let Some(p) = parent {
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
