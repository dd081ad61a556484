//! Adherence (följsamhet, SPEC §7): obligations met in time / obligations
//! whose due fell in the period, with the late and missing, per unit, unit
//! subtree, huvudman or county; its monthly trend; and whether a recorded
//! åtgärd was followed by better adherence.

use std::collections::{BTreeMap, HashMap};

use chrono::{Duration, NaiveDateTime};
use diesel::QueryResult;
use serde::Serialize;

use super::{share, Month, Period, Visible};
use crate::domain::Unit;
use crate::store::{reports, DbConn};

/// How rows are grouped (`group=` of the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Unit,
    Subtree,
    Huvudman,
    County,
}

impl Group {
    pub fn parse(s: &str) -> Result<Group, String> {
        match s {
            "unit" => Ok(Group::Unit),
            "subtree" => Ok(Group::Subtree),
            "huvudman" => Ok(Group::Huvudman),
            "county" => Ok(Group::County),
            _ => Err(format!(
                "`group` ska vara unit, subtree, huvudman eller county (fick `{s}`)"
            )),
        }
    }
}

/// The group of obligations no unit is responsible for (SPEC §4.2: then routing falls back).
pub const NO_UNIT: &str = "(ingen ansvarig enhet)";
pub const UNKNOWN_HUVUDMAN: &str = "(okänd huvudman)";
pub const COUNTY: &str = "länet";
/// `group=county` for a caller with units: their units, not the county.
pub const OWN_UNITS: &str = "egna enheter";

/// One row of `GET /api/v1/reports/adherence` (SPEC §8).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = AdherenceRow)]
pub struct Row {
    pub rule: String,
    pub group: String,
    /// Obligations whose due fell in the period (met + late + missing).
    pub due: i64,
    pub met: i64,
    pub late: i64,
    pub missing: i64,
    /// met / due, four decimals; null when nothing fell due.
    pub share: Option<f64>,
}

/// Judged obligations with dues on the period's local days: (rule, unit) →
/// [met, late, missing].
#[derive(Debug, Default, Clone)]
pub struct Tally(pub BTreeMap<(String, Option<String>), [i64; 3]>);

impl Tally {
    pub fn load(conn: &mut DbConn, period: Period, rule: Option<&str>, visible: Visible) -> QueryResult<Tally> {
        let mut t = Tally::default();
        for ((rule, unit), c) in counts(conn, period, rule, None)?.0 {
            if visible.unit(unit.as_deref()) {
                t.0.insert((rule, unit), c);
            }
        }
        Ok(t)
    }

    /// Sums per rule over every unit.
    pub fn per_rule(&self) -> BTreeMap<String, [i64; 3]> {
        let mut out: BTreeMap<String, [i64; 3]> = BTreeMap::new();
        for ((rule, _), c) in &self.0 {
            add(out.entry(rule.clone()).or_default(), c);
        }
        out
    }
}

fn add(into: &mut [i64; 3], c: &[i64; 3]) {
    for i in 0..3 {
        into[i] += c[i];
    }
}

/// The judged obligations due on the period's days, optionally of one rule
/// and one unit: the cases' from the day counts the scan keeps, the storhelg
/// staffing obligations from their rows.
fn counts(conn: &mut DbConn, period: Period, rule: Option<&str>, unit: Option<&str>) -> QueryResult<Tally> {
    let days = reports::obligation_days(conn, period.from, period.to, rule, unit)?;
    let mut out: BTreeMap<(String, Option<String>), [i64; 3]> = BTreeMap::new();
    for (rule, unit, met, late, missing) in days {
        let unit = (!unit.is_empty()).then_some(unit);
        add(out.entry((rule, unit)).or_default(), &[met, late, missing]);
    }
    let staffing = reports::staffing_counts(conn, period.start(), period.end(), rule, unit)?;
    for (rule, unit, outcome, n) in staffing {
        let slot = match outcome.as_str() {
            "met" => 0,
            "late" => 1,
            _ => 2,
        };
        out.entry((rule, unit)).or_default()[slot] += n;
    }
    out.retain(|_, c| c.iter().any(|n| *n != 0));
    Ok(Tally(out))
}

fn row(rule: &str, group: &str, c: &[i64; 3]) -> Row {
    let due = c[0] + c[1] + c[2];
    Row {
        rule: rule.to_string(),
        group: group.to_string(),
        due,
        met: c[0],
        late: c[1],
        missing: c[2],
        share: share(c[0], due),
    }
}

/// Rolls a tally up into rows, sorted by rule and group.
pub fn rows(tally: &Tally, units: &[Unit], group: Group, visible: Visible) -> Vec<Row> {
    let by_id: HashMap<&str, &Unit> = units.iter().map(|u| (u.id.as_str(), u)).collect();
    let mut acc: BTreeMap<(String, String), [i64; 3]> = BTreeMap::new();
    for ((rule, unit), c) in &tally.0 {
        let groups: Vec<String> = match group {
            Group::County => vec![if visible.is_county() { COUNTY } else { OWN_UNITS }.to_string()],
            Group::Unit => vec![unit.clone().unwrap_or_else(|| NO_UNIT.to_string())],
            Group::Huvudman => vec![match unit.as_deref() {
                None => NO_UNIT.to_string(),
                Some(u) => by_id
                    .get(u)
                    .map_or_else(|| UNKNOWN_HUVUDMAN.to_string(), |u| u.huvudman.clone()),
            }],
            Group::Subtree => {
                let mut chain = Vec::new();
                let mut walked: Vec<&str> = Vec::new();
                let mut cur = unit.as_deref();
                // Bounded by every unit walked, seen by the caller or not: a
                // loop stored in the tree must never hang a report.
                while let Some(u) = cur {
                    if walked.len() > 64 || walked.contains(&u) {
                        break;
                    }
                    walked.push(u);
                    if visible.unit(Some(u)) {
                        chain.push(u.to_string());
                    }
                    cur = by_id.get(u).and_then(|x| x.parent.as_ref()).map(|p| p.as_str());
                }
                if unit.is_none() {
                    chain.push(NO_UNIT.to_string());
                }
                chain
            }
        };
        for g in groups {
            add(acc.entry((rule.clone(), g)).or_default(), c);
        }
    }
    acc.iter().map(|((rule, g), c)| row(rule, g, c)).collect()
}

/// The adherence of a period.
pub fn report(
    conn: &mut DbConn,
    period: Period,
    rule: Option<&str>,
    group: Group,
    visible: Visible,
) -> QueryResult<Vec<Row>> {
    let units = crate::store::units::all(conn)?;
    let tally = Tally::load(conn, period, rule, visible)?;
    Ok(rows(&tally, &units, group, visible))
}

/// One month of a rule's trend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendPoint {
    pub month: Month,
    pub due: i64,
    pub met: i64,
    pub share: Option<f64>,
}

/// Monthly adherence per rule over `months`, for what `keep` admits of the
/// visible units (a unit's own chart keeps one unit).
pub fn trend(
    conn: &mut DbConn,
    months: &[Month],
    rule: Option<&str>,
    visible: Visible,
    keep: &dyn Fn(Option<&str>) -> bool,
) -> QueryResult<BTreeMap<String, Vec<TrendPoint>>> {
    let mut out: BTreeMap<String, Vec<TrendPoint>> = BTreeMap::new();
    for m in months {
        let tally = Tally::load(conn, m.period(), rule, visible)?;
        let mut per_rule: BTreeMap<String, [i64; 3]> = BTreeMap::new();
        for ((r, unit), c) in &tally.0 {
            if keep(unit.as_deref()) {
                add(per_rule.entry(r.clone()).or_default(), c);
            }
        }
        for (r, c) in per_rule {
            let due = c[0] + c[1] + c[2];
            out.entry(r).or_default().push(TrendPoint {
                month: *m,
                due,
                met: c[0],
                share: share(c[0], due),
            });
        }
    }
    Ok(out)
}

/// An åtgärd recorded on a deviation, and the adherence of its unit and rule
/// in the three months before and after the day it was recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Effect {
    pub deviation: i64,
    pub rule: String,
    pub unit: String,
    /// When the deviation became `atgardad` (RFC 3339).
    pub at: String,
    pub before: Counts,
    pub after: Counts,
    /// `true`: adherence rose; `false`: it did not; `null`: three months have not passed yet.
    pub improved: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Counts {
    pub due: i64,
    pub met: i64,
    pub share: Option<f64>,
}

/// The window compared on each side of an åtgärd.
pub const EFFECT_DAYS: i64 = 91;

/// Every åtgärd recorded in the period on a visible unit (optionally one
/// unit and rule), with its effect as of `now`.
pub fn effects(
    conn: &mut DbConn,
    period: Period,
    unit: Option<&str>,
    rule: Option<&str>,
    visible: Visible,
    now: NaiveDateTime,
) -> QueryResult<Vec<Effect>> {
    // Every åtgärd up to the period's end: a deviation counts at its
    // first, which must fall in the period.
    let found = reports::atgarder_before(conn, period.end(), unit, rule)?;
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (id, rule, unit, at) in found {
        let Some(unit) = unit.filter(|u| visible.unit(Some(u))) else {
            continue;
        };
        // A deviation reopened and recorded again counts once, at its first åtgärd.
        if !seen.insert(id) || at < period.start() {
            continue;
        }
        // By local days: the 91 before the åtgärd's day, and the 91 from it.
        let window = Duration::days(EFFECT_DAYS);
        let day = crate::calendar::local_date(at.and_utc());
        let before = unit_counts(
            conn,
            &rule,
            &unit,
            Period {
                from: day - window,
                to: day - Duration::days(1),
            },
        )?;
        let after = unit_counts(
            conn,
            &rule,
            &unit,
            Period {
                from: day,
                to: day + window - Duration::days(1),
            },
        )?;
        // Nothing due before: nothing to improve on; nothing due after: no evidence.
        let rose = matches!((before.share, after.share), (Some(b), Some(a)) if a > b);
        let improved = (at + window <= now).then_some(rose);
        out.push(Effect {
            deviation: id,
            rule,
            unit,
            at: crate::calendar::in_stockholm(at.and_utc()).to_rfc3339(),
            before,
            after,
            improved,
        });
    }
    Ok(out)
}

fn unit_counts(conn: &mut DbConn, rule: &str, unit: &str, days: Period) -> QueryResult<Counts> {
    let c = counts(conn, days, Some(rule), Some(unit))?
        .0
        .into_values()
        .fold([0; 3], |mut acc, c| {
            add(&mut acc, &c);
            acc
        });
    let due = c[0] + c[1] + c[2];
    Ok(Counts {
        due,
        met: c[0],
        share: share(c[0], due),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{UnitId, UnitKind};

    fn unit(id: &str, parent: Option<&str>, huvudman: &str) -> Unit {
        Unit {
            id: UnitId(id.into()),
            name: id.into(),
            kind: UnitKind::Slutenvard,
            huvudman: huvudman.into(),
            parent: parent.map(|p| UnitId(p.into())),
            email: None,
            chef_email: None,
            storhelg: true,
            email_given: false,
            chef_email_given: false,
        }
    }

    #[test]
    fn a_tally_rolls_up_to_subtrees_huvudman_and_county() {
        let units = vec![
            unit("KLIN", None, "Region"),
            unit("AVD1", Some("KLIN"), "Region"),
            unit("AVD2", Some("KLIN"), "Region"),
            unit("HT", None, "Kommun"),
        ];
        let mut t = Tally::default();
        t.0.insert(("r".into(), Some("AVD1".into())), [3, 1, 0]);
        t.0.insert(("r".into(), Some("AVD2".into())), [1, 0, 1]);
        t.0.insert(("r".into(), Some("HT".into())), [2, 0, 0]);
        t.0.insert(("r".into(), None), [0, 0, 1]);
        let sub = rows(&t, &units, Group::Subtree, Visible::ALL);
        let klin = sub.iter().find(|r| r.group == "KLIN").unwrap();
        assert_eq!((klin.due, klin.met, klin.late, klin.missing), (6, 4, 1, 1));
        assert_eq!(klin.share, Some(0.6667));
        let hm = rows(&t, &units, Group::Huvudman, Visible::ALL);
        assert_eq!(
            hm.iter().map(|r| (r.group.as_str(), r.due)).collect::<Vec<_>>(),
            [(NO_UNIT, 1), ("Kommun", 2), ("Region", 6)]
        );
        let county = rows(&t, &units, Group::County, Visible::ALL);
        assert_eq!((county[0].due, county[0].met), (9, 6));
        // A caller who sees AVD1 only: its subtree row, nothing above it.
        let own: std::collections::HashSet<String> = ["AVD1".to_string()].into();
        let mut seen = t.clone();
        seen.0.retain(|(_, u), _| Visible(Some(&own)).unit(u.as_deref()));
        let sub = rows(&seen, &units, Group::Subtree, Visible(Some(&own)));
        assert_eq!(sub.len(), 1);
        assert_eq!((sub[0].group.as_str(), sub[0].due), ("AVD1", 4));
    }
}
