//! The rules of SPEC §4, pure: `(case events, units, profile, as_of) ->
//! findings`. Every instant compares at whole seconds; every calendar notion
//! is in Europe/Stockholm. Events with `at > as_of` have not happened yet.
//! `svu-vakt check` and the scheduled scan run these very functions.

pub mod bemanning;
pub mod case;
pub mod profile;
pub mod registry;

// The rules, one file each, listed in `registry::REGISTRY`.
pub mod behov_av_sip_dokumenterat;
pub mod bemanning_storhelg;
pub mod beraknat_datum_passerat;
pub mod fast_vardkontakt_saknas;
pub mod hemgang_dagen_efter;
pub mod im_efter_atertag;
pub mod inskrivningsmeddelande_24h;
pub mod kallelse_sip;
pub mod kvittens_inskrivningsmeddelande;
pub mod kvittens_utskrivningsklar;
pub mod samordning_stangd;
pub mod samtycke_sip_inskrivning;
pub mod sip_mote;
pub mod utskrivningsklar_saknas;

use std::collections::HashMap;

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use serde::Serialize;

use crate::calendar::in_stockholm;
use crate::domain::{CaseId, Event, Unit, UnitId, UnitKind};

pub use profile::Profile;
pub use registry::{Rule, RuleId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Late,
    Missing,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Late => "late",
            Status::Missing => "missing",
        }
    }
}

/// One breach, in the shape of the `check` contract (SPEC §8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: RuleId,
    pub case: Option<CaseId>,
    pub unit: Option<UnitId>,
    /// The due instant, shown with the Stockholm offset.
    #[serde(serialize_with = "rfc3339")]
    pub due: DateTime<FixedOffset>,
    pub status: Status,
    /// The first fulfilling event's `at` after due (with its own offset), or null.
    #[serde(serialize_with = "rfc3339_opt")]
    pub done: Option<DateTime<FixedOffset>>,
    pub late_minutes: Option<i64>,
    /// The berörd part (SPEC §6): the units whose work the breach hurt. Not
    /// part of `check`'s JSON, whose fields are a contract.
    #[serde(skip)]
    pub affected: Vec<UnitId>,
}

fn rfc3339<S: serde::Serializer>(t: &DateTime<FixedOffset>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&t.to_rfc3339_opts(SecondsFormat::Secs, false))
}

fn rfc3339_opt<S: serde::Serializer>(t: &Option<DateTime<FixedOffset>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339(t, s),
        None => s.serialize_none(),
    }
}

impl Finding {
    pub fn due_utc(&self) -> DateTime<Utc> {
        self.due.with_timezone(&Utc)
    }
}

/// What became of an obligation as of T (SPEC §7: adherence needs the met
/// ones too). `Pending`: its due has not passed yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Met,
    Late,
    Missing,
    Pending,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Met => "met",
            Outcome::Late => "late",
            Outcome::Missing => "missing",
            Outcome::Pending => "pending",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        [Outcome::Met, Outcome::Late, Outcome::Missing, Outcome::Pending]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
}

/// One obligation a rule judged, met or not.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Obligation {
    pub rule: RuleId,
    pub unit: Option<UnitId>,
    pub due: DateTime<Utc>,
    pub outcome: Outcome,
    /// The fulfilling event: in time (met, or met early while pending), or the first after due (late).
    pub done: Option<DateTime<Utc>>,
}

/// The outcome of an obligation as of T, by the same comparisons as [`judge`].
pub(crate) fn outcome(
    due: DateTime<Utc>,
    as_of: DateTime<Utc>,
    fulfilling: impl IntoIterator<Item = DateTime<Utc>>,
) -> (Outcome, Option<DateTime<Utc>>) {
    let (mut in_time, mut after): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) = (None, None);
    for at in fulfilling {
        if at > as_of {
            continue;
        }
        let slot = if at <= due { &mut in_time } else { &mut after };
        *slot = Some(slot.map_or(at, |s| s.min(at)));
    }
    if due >= as_of {
        return (Outcome::Pending, in_time);
    }
    match (in_time, after) {
        (Some(t), _) => (Outcome::Met, Some(t)),
        (None, Some(t)) => (Outcome::Late, Some(t)),
        (None, None) => (Outcome::Missing, None),
    }
}

/// The registered units, as the rules need them.
#[derive(Debug, Clone, Default)]
pub struct Units {
    /// Looked up for every event: a fast hash, not SipHash (the ids are
    /// the county's own, not an attacker's).
    by_id: HashMap<UnitId, Unit, foldhash::fast::RandomState>,
}

impl Units {
    pub fn new(list: impl IntoIterator<Item = Unit>) -> Units {
        Units {
            by_id: list.into_iter().map(|u| (u.id.clone(), u)).collect(),
        }
    }

    pub fn get(&self, id: &UnitId) -> Option<&Unit> {
        self.by_id.get(id)
    }

    /// The huvudman of a registered kommun unit.
    pub fn kommun_of(&self, id: &UnitId) -> Option<&str> {
        self.get(id)
            .filter(|u| u.kind == UnitKind::Kommun)
            .map(|u| u.huvudman.as_str())
    }

    /// Every registered unit, in id order.
    pub fn all(&self) -> Vec<&Unit> {
        let mut v: Vec<&Unit> = self.by_id.values().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Unknown units are not `slutenvard` (a kallelse or an avslut by one
    /// counts as the öppenvård's, SPEC §4.2, §4.6).
    pub fn is_slutenvard(&self, id: &UnitId) -> bool {
        self.get(id).is_some_and(|u| u.kind == UnitKind::Slutenvard)
    }

    /// Unknown units are not `oppenvard` (SPEC §4.6).
    pub fn is_oppenvard(&self, id: &UnitId) -> bool {
        self.get(id).is_some_and(|u| u.kind == UnitKind::Oppenvard)
    }

    /// Registered units covered by the storhelg recommendation, in id order.
    pub fn storhelg_units(&self) -> Vec<&Unit> {
        let mut v: Vec<&Unit> = self.by_id.values().filter(|u| u.storhelg).collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// An obligation's outcome as of T, given its due and the instants of the
/// events that would fulfil it (any order). `None` when met or not yet due.
pub(crate) fn judge(
    due: DateTime<Utc>,
    as_of: DateTime<Utc>,
    fulfilling: impl IntoIterator<Item = DateTime<FixedOffset>>,
) -> Option<(Status, Option<DateTime<FixedOffset>>, Option<i64>)> {
    if due >= as_of {
        return None;
    }
    let mut first_after: Option<DateTime<FixedOffset>> = None;
    for at in fulfilling {
        if at.timestamp() <= due.timestamp() {
            return None;
        }
        if at.timestamp() <= as_of.timestamp() && first_after.is_none_or(|f| at.timestamp() < f.timestamp()) {
            first_after = Some(at);
        }
    }
    Some(match first_after {
        Some(done) => (
            Status::Late,
            Some(done),
            Some((done.timestamp() - due.timestamp()).div_euclid(60)),
        ),
        None => (Status::Missing, None, None),
    })
}

pub(crate) fn finding(
    rule: RuleId,
    case: Option<&CaseId>,
    unit: Option<&UnitId>,
    due: DateTime<Utc>,
    verdict: (Status, Option<DateTime<FixedOffset>>, Option<i64>),
) -> Finding {
    Finding {
        rule,
        case: case.cloned(),
        unit: unit.cloned(),
        due: in_stockholm(due),
        status: verdict.0,
        done: verdict.1,
        late_minutes: verdict.2,
        affected: Vec::new(),
    }
}

/// All per-case findings of the profile's (or the given) rules for one case.
pub fn evaluate_case(
    events: &[Event],
    units: &Units,
    profile: &Profile,
    rules: &[RuleId],
    as_of: DateTime<Utc>,
) -> Vec<Finding> {
    case::evaluate(events, units, profile, rules, as_of).0
}
