//! Storhelg staffing in the scan (SPEC §4.4), judged by the very tracker
//! `check` uses. A full scan judges every staffing day from the data's
//! first, every covered unit. An incremental scan judges whole the staffing
//! days of the lookback window (their dues come as the clock moves), any
//! older day the last scan judged before it was over (acts of it still to
//! come by T, its due's grace still running: `over_after`), and any older
//! day no scan has judged yet (history loaded late, or a judgement
//! forgotten: `store::staffing::forget` when a batch is removed or
//! a unit's storhelg flag changes); of the older days already judged, only
//! the (unit, day) pairs whose entry in the unit-day register changed since
//! the last scan (`unit_days::changed_since`): a unit's judged staffing day
//! depends on nothing but that entry (`StaffingTracker::observe_day`), so
//! the cost follows what changed, not the county's year nor the events
//! that arrived.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};

use super::summary::obligation_row;
use super::{filing, Auditor, Counts, Run};
use crate::calendar::{local_date, Calendar};
use crate::domain::UnitId;
use crate::rules::bemanning::{staffing_dues, StaffingTracker};
use crate::rules::{Finding, Units};
use crate::store::followup::NewObligation;
use crate::store::{backend, deviations, staffing, unit_days, DbConn};

/// More entries of the unit-day register changed than this since the last
/// scan and every staffing day is judged whole (a reload of history).
const CHANGED_MAX: i64 = 200_000;

/// A staffing day and its due (15:00:00 local).
type Day = (NaiveDate, DateTime<Utc>);

/// Older staffing days judged again pair by pair: each day's due and the
/// covered units whose register entries changed.
type Touched = BTreeMap<NaiveDate, (DateTime<Utc>, BTreeSet<String>)>;

impl Auditor {
    /// The staffing judgement of a scan, in write transactions that hold
    /// the scan's lock.
    pub(super) fn judge_staffing(
        &self,
        conn: &mut DbConn,
        run: &Run,
        since: Option<NaiveDateTime>,
        units: &Units,
        filing: &filing::Filing,
        counts: &mut Counts,
    ) -> anyhow::Result<()> {
        let as_of = run.as_of;
        let Some(earliest) = unit_days::earliest(conn, as_of.naive_utc())?.map(|t| local_date(t.and_utc())) else {
            return Ok(());
        };
        let dues_from = |from: NaiveDate| staffing_dues(from, &Calendar::new(), &self.profile, as_of);
        let (Some(p), Some(since)) = (&run.previous, since) else {
            return self.whole_days(conn, run, units, filing, (&dues_from(earliest), true), counts);
        };
        let window = earliest.max(local_date(p.as_of.and_utc()) - Duration::days(self.scan.staffing_lookback_days));
        let Some(changed) = unit_days::changed_since(conn, since, CHANGED_MAX)? else {
            // A reload of history: every staffing day, as a full scan.
            return self.whole_days(conn, run, units, filing, (&dues_from(earliest), true), counts);
        };
        // The lookback window's days, and any older day the last scan
        // judged before it was over (a grace longer than the lookback), are
        // judged whole as one span (they are the last days), every scan:
        // what a backfill filed, a scan without the rule or a unit changed
        // during a scan left of them is set right within the window. Older
        // days: their changed pairs, or whole when no scan has judged them.
        let p_as_of = p.as_of.and_utc();
        let (recent, older): (Vec<Day>, Vec<Day>) = dues_from(earliest)
            .into_iter()
            .partition(|&(day, due)| day >= window || self.over_after(day, due) > p_as_of);
        self.whole_days(conn, run, units, filing, (&recent, true), counts)?;
        let dues: Vec<NaiveDateTime> = older.iter().map(|(_, due)| due.naive_utc()).collect();
        let judged = staffing::judged(conn, &dues)?;
        let (judged_before, unjudged): (Vec<Day>, Vec<Day>) = older
            .into_iter()
            .partition(|(_, due)| judged.contains(&due.naive_utc()));
        let judged_before: BTreeMap<NaiveDate, DateTime<Utc>> = judged_before.into_iter().collect();
        self.whole_days(conn, run, units, filing, (&unjudged, false), counts)?;
        let touched = touched(&changed, units, &judged_before);
        if touched.is_empty() {
            return Ok(());
        }
        backend::write_tx(conn, |conn| {
            self.keep_lease(conn, &run.holder)?;
            self.touched_pairs(conn, units, filing, &touched, as_of, counts)
        })
    }

    /// When a staffing day's judgement can no longer change but by its
    /// units' register entries: the day over (no act of it still to come
    /// by T) and its due's grace passed (its findings filed, its
    /// obligations no longer pending).
    fn over_after(&self, day: NaiveDate, due: DateTime<Utc>) -> DateTime<Utc> {
        let next_day = crate::calendar::local_instant(day + Duration::days(1), chrono::NaiveTime::MIN);
        next_day.max(due + self.scan.grace)
    }

    /// Every covered unit on each of `days`, in one write transaction.
    /// `span`: the days are every staffing day from the first to T, and what
    /// lies between their first and last due is theirs (a deviation or an
    /// obligation of a day that is no longer a staffing day goes too).
    fn whole_days(
        &self,
        conn: &mut DbConn,
        run: &Run,
        units: &Units,
        filing: &filing::Filing,
        (days, span): (&[Day], bool),
        counts: &mut Counts,
    ) -> anyhow::Result<()> {
        if days.is_empty() {
            return Ok(());
        }
        backend::write_tx(conn, |conn| {
            self.keep_lease(conn, &run.holder)?;
            self.scan_days(conn, units, filing, (days, span), run.as_of, counts)
        })
    }

    /// The events of each day go through a [`StaffingTracker`]; each day's
    /// obligations are replaced and its deviations reconciled.
    fn scan_days(
        &self,
        conn: &mut DbConn,
        units: &Units,
        filing: &filing::Filing,
        (days, span): (&[Day], bool),
        as_of: DateTime<Utc>,
        counts: &mut Counts,
    ) -> anyhow::Result<()> {
        let mut tracker = StaffingTracker::default();
        if let (Some((first, _)), Some((last, _))) = (days.first(), days.last()) {
            let wanted: BTreeSet<NaiveDate> = days.iter().map(|(day, _)| *day).collect();
            for d in unit_days::between(conn, *first, *last)? {
                if wanted.contains(&d.day) {
                    tracker.observe_day(&d, units, as_of);
                }
            }
        }
        let covered = units.storhelg_units();
        let mut findings = Vec::new();
        let mut rows: Vec<NewObligation> = Vec::new();
        for (day, due) in days {
            for unit in &covered {
                let (obligation, missing) = tracker.judge(&unit.id, *day, *due);
                rows.push(obligation_row("", &obligation, as_of, self.scan.grace));
                findings.extend(missing);
            }
        }
        let dues: Vec<NaiveDateTime> = days.iter().map(|(_, due)| due.naive_utc()).collect();
        let spans: Vec<(NaiveDateTime, NaiveDateTime)> = match (span, dues.first(), dues.last()) {
            (true, Some(lo), Some(hi)) => vec![(*lo, *hi)],
            _ => dues.iter().map(|d| (*d, *d)).collect(),
        };
        let mut existing = Vec::new();
        // One span's deviations come locked in id order; several spans'
        // are locked again, all at once in that order.
        let locked = spans.len() == 1;
        for (lo, hi) in spans {
            if !filing.backfill {
                let of_span: Vec<NewObligation> = rows.iter().filter(|r| r.due >= lo && r.due <= hi).cloned().collect();
                staffing::replace(conn, lo, hi, &of_span)?;
            }
            existing.extend(staffing::deviations_due(conn, (lo, hi), locked)?);
        }
        self.file_staffing(conn, filing, findings, (existing, locked), as_of, counts)
    }

    /// Judges the touched (unit, day) pairs from the units' own acts that
    /// day, replaces their obligations and reconciles their deviations.
    fn touched_pairs(
        &self,
        conn: &mut DbConn,
        units: &Units,
        filing: &filing::Filing,
        touched: &Touched,
        as_of: DateTime<Utc>,
        counts: &mut Counts,
    ) -> anyhow::Result<()> {
        let mut findings = Vec::new();
        let mut existing = Vec::new();
        for (day, (due, unit_ids)) in touched {
            let mut tracker = StaffingTracker::default();
            let names: Vec<&str> = unit_ids.iter().map(String::as_str).collect();
            for d in unit_days::of_units(conn, *day, &names)? {
                tracker.observe_day(&d, units, as_of);
            }
            let mut rows: Vec<NewObligation> = Vec::new();
            for unit in unit_ids {
                let id = UnitId(unit.clone());
                let (obligation, missing) = tracker.judge(&id, *day, *due);
                rows.push(obligation_row("", &obligation, as_of, self.scan.grace));
                findings.extend(missing);
            }
            let due = due.naive_utc();
            if !filing.backfill {
                staffing::replace_of(conn, due, &names, &rows)?;
            }
            let of_day = staffing::deviations_due(conn, (due, due), false)?;
            existing.extend(
                of_day
                    .into_iter()
                    .filter(|d| d.unit.as_ref().is_some_and(|u| unit_ids.contains(u))),
            );
        }
        self.file_staffing(conn, filing, findings, (existing, false), as_of, counts)
    }

    /// `existing`: the deviations of the days judged, and whether they
    /// were read locked in id order.
    fn file_staffing(
        &self,
        conn: &mut DbConn,
        filing: &filing::Filing,
        findings: Vec<Finding>,
        (existing, locked): (Vec<deviations::DeviationRow>, bool),
        as_of: DateTime<Utc>,
        counts: &mut Counts,
    ) -> anyhow::Result<()> {
        let (ready, _) = self.split_by_grace(findings, None, as_of);
        counts.findings += ready.len();
        if locked {
            filing.apply_locked(conn, &ready, existing, counts).map(drop)
        } else {
            filing.apply(conn, &ready, existing, counts).map(drop)
        }
    }
}

/// The judged older days whose entries changed, with the covered units
/// whose entries they are.
fn touched(changed: &[(String, NaiveDate)], units: &Units, days: &BTreeMap<NaiveDate, DateTime<Utc>>) -> Touched {
    let mut out = Touched::new();
    if days.is_empty() {
        return out;
    }
    for (unit, day) in changed {
        let Some(due) = days.get(day) else { continue };
        if units.get(&UnitId(unit.clone())).is_some_and(|u| u.storhelg) {
            out.entry(*day)
                .or_insert_with(|| (*due, BTreeSet::new()))
                .1
                .insert(unit.clone());
        }
    }
    out
}
