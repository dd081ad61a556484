//! One demo case made up step by step, as a ward and its partners would
//! leave it in the records: admission, inskrivningsmeddelande and its
//! kvittenser, fast vårdkontakt, the SIP's prerequisites, a transfer,
//! utskrivningsklar (sometimes withdrawn and sent again) and its
//! kvittenser, a kallelse to SIP, the discharge and sometimes a
//! readmission. The random draws come in one fixed order, so a seed gives
//! the same bytes.

use chrono::DateTime;
use chrono_tz::Europe::Stockholm;

use super::{huvudman_of, Ev, Rng, DAY, HOUR, KOMMUNER};

/// The events of one case, with a readmission's numbered from 201.
pub(super) fn plan_case(r: &mut Rng, from: i64, to: i64, wards: &[String]) -> Vec<Ev> {
    let mut c = Case::admit(r, from, to, wards);
    let start = c.assessment();
    let im_at = c.inskrivningsmeddelande(start);
    c.fast_vardkontakt(im_at.unwrap_or(start));
    let sip = c.sip_prerequisites();
    c.transfer(wards);
    if c.died() {
        return c.evs;
    }
    let (uk_at, uk) = c.utskrivningsklar();
    // A few vårdcentraler close the case at discharge before calling to SIP
    // (seed 001 forbids it): the kallelse never comes.
    let closes_early = sip && c.r.chance(0.05);
    if let Some(n) = uk {
        c.after_utskrivningsklar(uk_at, n, sip && !closes_early);
    }
    let ut = c.discharge(uk_at);
    if sip && uk.is_some() {
        c.sip_meeting(ut, closes_early);
    }
    c.evs
}

/// A case being made up: its events so far and who takes part.
struct Case<'r> {
    r: &'r mut Rng,
    evs: Vec<Ev>,
    kommun: &'static str,
    ward: String,
    vc: String,
    /// Hemtjänst, hemsjukvård and the vårdcentral of the kommun.
    recipients: Vec<String>,
    admit: i64,
}

impl<'r> Case<'r> {
    /// Admitted to a ward at a random instant of the period, with the patient.
    fn admit(r: &'r mut Rng, from: i64, to: i64, wards: &[String]) -> Case<'r> {
        let kommun = KOMMUNER[r.below(13) as usize].0;
        let ward = wards[r.below(wards.len() as u64) as usize].clone();
        let vc = format!("VC-{kommun}");
        let recipients = vec![format!("K-{kommun}-HT"), format!("K-{kommun}-HSV"), vc.clone()];
        let admit = r.range(from, to);
        let mut c = Case {
            r,
            evs: Vec::with_capacity(16),
            kommun,
            ward,
            vc,
            recipients,
            admit,
        };
        c.push("inskrivning", admit, c.ward.clone(), vec![], None, None);
        c.evs[0].patient = Some(personnummer(c.r));
        // The folkbokföringskommun is mostly where the patient goes home to;
        // some are placed in another kommun's boende (SPEC §7).
        let home = if c.r.chance(0.04) {
            KOMMUNER[c.r.below(13) as usize].1
        } else {
            KOMMUNER.iter().find(|k| k.0 == kommun).map_or("Linköping", |k| k.1)
        };
        c.evs[0].kommun = Some(huvudman_of(home));
        c
    }

    /// Adds an event; its number, for a kvittens to refer to.
    fn push(
        &mut self,
        kind: &'static str,
        at: i64,
        unit: String,
        to: Vec<String>,
        reference: Option<u8>,
        value: Option<String>,
    ) -> u8 {
        let n = self.evs.len() as u8 + 1;
        self.evs.push(Ev {
            n,
            kind,
            at,
            unit,
            to,
            reference,
            value,
            patient: None,
            kommun: None,
        });
        n
    }

    /// A tenth are assessed first: the inskrivningsmeddelande's clock starts then.
    fn assessment(&mut self) -> i64 {
        if !self.r.chance(0.10) {
            return self.admit;
        }
        let start = self.admit + self.r.range(4 * HOUR, 48 * HOUR);
        self.push("bedomning", start, self.ward.clone(), vec![], None, None);
        start
    }

    /// Mostly in time, a tenth late, some never; each recipient acknowledges
    /// it mostly in time.
    fn inskrivningsmeddelande(&mut self, start: i64) -> Option<i64> {
        let at = pick(
            self.r,
            &[
                (0.86, start + 600, start + 20 * HOUR),
                (0.10, start + 24 * HOUR + 1, start + 60 * HOUR),
            ],
        )?;
        let recipients = self.recipients.clone();
        // The beräknat utskrivningsdatum: a guess, often too early (seed 003).
        let planned = self.admit + self.r.range(2 * DAY, 7 * DAY);
        let im = self.push(
            "inskrivningsmeddelande",
            at,
            self.ward.clone(),
            recipients.clone(),
            None,
            Some(local_date(planned)),
        );
        if self.r.chance(0.35) {
            // The ward moves the date, mostly before the old one passes.
            let moved = planned + self.r.range(-20 * HOUR, 10 * HOUR);
            let new_date = moved + self.r.range(2 * DAY, 5 * DAY);
            let moved_at = moved.max(at + HOUR);
            let update = self.push(
                "inskrivningsmeddelande",
                moved_at,
                self.ward.clone(),
                recipients.clone(),
                None,
                Some(local_date(new_date)),
            );
            self.acknowledge(update, moved_at);
        }
        self.acknowledge(im, at);
        Some(at)
    }

    /// Each recipient acknowledges IM `im`, sent at `at`, mostly in time.
    fn acknowledge(&mut self, im: u8, at: i64) {
        for rc in self.recipients.clone() {
            if let Some(k_at) = pick(
                self.r,
                &[(0.90, at + 300, at + 18 * HOUR), (0.06, at + 24 * HOUR, at + 72 * HOUR)],
            ) {
                self.push("kvittens", k_at, rc, vec![], Some(im), None);
            }
        }
    }

    fn fast_vardkontakt(&mut self, after: i64) {
        if self.r.chance(0.85) {
            let at = after + self.r.range(HOUR, 48 * HOUR);
            self.push("fast_vardkontakt", at, self.vc.clone(), vec![], None, None);
        }
    }

    /// Behov av SIP, samtycke and spårfärg; whether a SIP is needed, by
    /// the documented need or by a yellow or red track.
    fn sip_prerequisites(&mut self) -> bool {
        let behov = self.r.below(100);
        let sip_needed = behov < 45;
        if behov < 88 {
            let at = self.admit + self.r.range(HOUR, 72 * HOUR);
            self.push(
                "behov_av_sip",
                at,
                self.vc.clone(),
                vec![],
                None,
                Some(sip_needed.to_string()),
            );
        }
        let samtycke = self.r.below(100);
        if samtycke < 97 {
            let at = self.admit + self.r.range(HOUR, 12 * HOUR);
            let given = Some((samtycke < 93).to_string());
            self.push("samtycke_sip", at, self.ward.clone(), vec![], None, given);
        }
        let mut sip_by_track = false;
        if self.r.chance(0.5) {
            let c = ["bla", "gron", "gron", "gul", "gul", "rod"][self.r.below(6) as usize];
            sip_by_track = matches!(c, "gul" | "rod");
            let at = self.admit + self.r.range(2 * HOUR, 48 * HOUR);
            self.push("sparfarg", at, self.ward.clone(), vec![], None, Some(c.into()));
        }
        sip_needed || sip_by_track
    }

    /// A few move to another ward, which then has the case.
    fn transfer(&mut self, wards: &[String]) {
        if self.r.chance(0.08) {
            self.ward = wards[self.r.below(wards.len() as u64) as usize].clone();
            let at = self.admit + self.r.range(6 * HOUR, 72 * HOUR);
            self.push("overflyttning", at, self.ward.clone(), vec![], None, None);
        }
    }

    /// Two in a hundred die in hospital: the case ends there.
    fn died(&mut self) -> bool {
        if !self.r.chance(0.02) {
            return false;
        }
        let at = self.admit + self.r.range(DAY, 8 * DAY);
        self.push("avslut", at, self.ward.clone(), vec![], None, Some("avliden".into()));
        true
    }

    /// Utskrivningsklar mostly, now and then withdrawn and sent again: its
    /// time and, when sent, the number of the one that stands.
    fn utskrivningsklar(&mut self) -> (i64, Option<u8>) {
        let mut uk_at = self.admit + self.r.range(20 * HOUR, 10 * DAY);
        if !self.r.chance(0.95) {
            return (uk_at, None);
        }
        let recipients = self.recipients.clone();
        let mut n = self.push(
            "utskrivningsklar",
            uk_at,
            self.ward.clone(),
            recipients.clone(),
            None,
            None,
        );
        if self.r.chance(0.05) {
            let back = uk_at + self.r.range(HOUR, 20 * HOUR);
            self.push(
                "atertag_utskrivningsklar",
                back,
                self.ward.clone(),
                vec![],
                Some(n),
                None,
            );
            // Seed 002: a new IM with a new date; most wards remember the same day.
            if self.r.chance(0.6) {
                let im_at = back + self.r.range(10 * 60, 3 * HOUR);
                let date = local_date(back + self.r.range(2 * DAY, 4 * DAY));
                self.push(
                    "inskrivningsmeddelande",
                    im_at.min(end_of_day_local(back)),
                    self.ward.clone(),
                    recipients.clone(),
                    None,
                    Some(date),
                );
            }
            uk_at = back + self.r.range(DAY, 3 * DAY);
            n = self.push("utskrivningsklar", uk_at, self.ward.clone(), recipients, None, None);
        }
        (uk_at, Some(n))
    }

    /// The recipients acknowledge utskrivningsklar `n`, mostly on dag 0; the
    /// fast vårdkontakt calls to SIP whenever the rules would need one.
    fn after_utskrivningsklar(&mut self, uk_at: i64, n: u8, sip: bool) {
        let dag0_end = end_of_dag0(uk_at);
        for rc in self.recipients.clone() {
            if let Some(at) = pick(
                self.r,
                &[
                    (0.88, uk_at + 60, dag0_end),
                    (0.07, dag0_end + 60, dag0_end + 30 * HOUR),
                ],
            ) {
                self.push("kvittens", at, rc, vec![], Some(n), None);
            }
        }
        if !sip {
            return;
        }
        if let Some(at) = pick(
            self.r,
            &[
                (0.80, uk_at - 2 * DAY, uk_at + 3 * DAY),
                (0.12, uk_at + 4 * DAY, uk_at + 7 * DAY),
            ],
        ) {
            let to = self.recipients[..2].to_vec();
            self.push("kallelse_sip", at, self.vc.clone(), to, None, None);
        }
    }

    /// Home; a share of patients comes back within 30 days (SKR: about
    /// 10–13 % of those 65 and older): a new case of the same patient.
    fn discharge(&mut self, uk_at: i64) -> i64 {
        let ut = discharge(self.r, uk_at, self.kommun);
        self.push("utskrivning", ut, self.ward.clone(), vec![], None, None);
        if let Some(p) = self.evs[0].patient.clone() {
            let age = 2026 - p[..4].parse::<i64>().unwrap_or(1950);
            if self.r.chance(if age >= 65 { 0.13 } else { 0.06 }) {
                let back = ut + self.r.range(DAY, 30 * DAY);
                let again = readmission(self.r, back, &self.ward, &self.recipients, p);
                self.evs.extend(again);
            }
        }
        ut
    }

    /// The SIP meeting after discharge, mostly within the four weeks of
    /// seed 002; a case closed too early is closed by the vårdcentral
    /// within hours of the discharge, and has no meeting.
    fn sip_meeting(&mut self, ut: i64, closes_early: bool) {
        if closes_early {
            let at = ut + self.r.range(HOUR, 6 * HOUR);
            self.push("avslut", at, self.vc.clone(), vec![], None, Some("utskriven".into()));
            return;
        }
        if let Some(at) = pick(
            self.r,
            &[(0.82, ut + DAY, ut + 26 * DAY), (0.10, ut + 30 * DAY, ut + 45 * DAY)],
        ) {
            self.push("sip_mote", at, self.vc.clone(), vec![], None, None);
        }
    }
}

/// When the patient goes home: about two thirds on dag 0, the others after
/// two to eight days; two kommuner have months when home care lags
/// (Norrköping March–June, Motala September–November) and cross the 3-day
/// line for several months in a row.
fn discharge(r: &mut Rng, uk_at: i64, kommun: &str) -> i64 {
    let month = DateTime::from_timestamp(uk_at, 0)
        .map(|t| chrono::Datelike::month(&t.with_timezone(&Stockholm)))
        .unwrap_or(1);
    let slow =
        (kommun == "NORRKOPING" && (3..=6).contains(&month)) || (kommun == "MOTALA" && (9..=11).contains(&month));
    let days = if slow {
        if r.chance(0.35) {
            0
        } else {
            r.range(3, 14)
        }
    } else if r.chance(0.61) {
        0
    } else {
        r.range(2, 9)
    };
    let start_of_dag0 = end_of_dag0(uk_at) + 1 - DAY;
    (start_of_dag0 + days * DAY + r.range(10 * HOUR, 16 * HOUR)).max(uk_at + 2 * HOUR)
}

/// A short second stay of the same patient, as its own case: admitted,
/// announced, utskrivningsklar, acknowledged, home. Its events carry case
/// marker 200+ so `push_line` files them under the readmission's case id.
fn readmission(r: &mut Rng, admit: i64, ward: &str, recipients: &[String], patient: String) -> Vec<Ev> {
    let mut evs = Vec::with_capacity(8);
    let mut n = 200u8;
    let mut push = |kind: &'static str, at: i64, unit: &str, to: Vec<String>, reference: Option<u8>| {
        n += 1;
        evs.push(Ev {
            n,
            kind,
            at,
            unit: unit.to_string(),
            to,
            reference,
            value: None,
            patient: None,
            kommun: None,
        });
        n
    };
    push("inskrivning", admit, ward, vec![], None);
    let im = push(
        "inskrivningsmeddelande",
        admit + r.range(HOUR, 20 * HOUR),
        ward,
        recipients.to_vec(),
        None,
    );
    for rc in recipients {
        push("kvittens", admit + r.range(21 * HOUR, 30 * HOUR), rc, vec![], Some(im));
    }
    let uk_at = admit + r.range(DAY, 4 * DAY);
    let uk = push("utskrivningsklar", uk_at, ward, recipients.to_vec(), None);
    for rc in recipients {
        push("kvittens", uk_at + r.range(60, 6 * HOUR), rc, vec![], Some(uk));
    }
    push("utskrivning", uk_at + r.range(3 * HOUR, 20 * HOUR), ward, vec![], None);
    evs[0].patient = Some(patient);
    evs
}

/// One of the weighted windows, or none (the step never happened).
fn pick(r: &mut Rng, windows: &[(f64, i64, i64)]) -> Option<i64> {
    let mut x = (r.next() >> 11) as f64 / (1u64 << 53) as f64;
    for (p, lo, hi) in windows {
        if x < *p {
            return Some(r.range(*lo, *hi));
        }
        x -= p;
    }
    None
}

/// End of dag 0 in local time for a UK sent at `t` (brytpunkt 12:00).
fn end_of_dag0(t: i64) -> i64 {
    let local = DateTime::from_timestamp(t, 0)
        .unwrap_or_default()
        .with_timezone(&Stockholm);
    let hour = chrono::Timelike::hour(&local);
    let extra = if hour < 12 { 0 } else { DAY };
    let secs_into_day = i64::from(chrono::Timelike::num_seconds_from_midnight(&local));
    t - secs_into_day + extra + DAY - 1
}

/// The local date of `t` as `YYYY-MM-DD` (an IM's beräknat utskrivningsdatum).
fn local_date(t: i64) -> String {
    DateTime::from_timestamp(t, 0)
        .unwrap_or_default()
        .with_timezone(&Stockholm)
        .format("%Y-%m-%d")
        .to_string()
}

/// 23:59:59 local time on the day of `t`.
fn end_of_day_local(t: i64) -> i64 {
    let local = DateTime::from_timestamp(t, 0)
        .unwrap_or_default()
        .with_timezone(&Stockholm);
    t - i64::from(chrono::Timelike::num_seconds_from_midnight(&local)) + DAY - 1
}

fn personnummer(r: &mut Rng) -> String {
    let y = 1925 + r.below(40);
    let m = 1 + r.below(12);
    let d = 1 + r.below(28);
    let serial = 980 + r.below(20);
    let nine = format!("{:02}{m:02}{d:02}{serial:03}", y % 100);
    format!("{y}{m:02}{d:02}-{serial:03}{}", crate::domain::patient::luhn(&nine))
}
