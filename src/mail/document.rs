//! The report as one JSON document (SPEC §6.0): what a webhook receives and
//! `GET /api/v1/deviations/{id}/report.json` answers, built in one place
//! from the mail's own data (`report::data`), so the huvudman's system, the
//! mail and the page say the same. Both sides (the responsible unit and the
//! berörd part) with their huvudman, the routine, the risk, the sections
//! and the link; never a patient identity: the case id carries the rest.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::templates::Templates;
use super::{report, MailConfig};
use crate::calendar::in_stockholm;
use crate::domain::handling::DeviationStatus;
use crate::rules::Units;
use crate::store::deviations::{self, DeviationRow};
use crate::store::outbox::{self, MailKind};
use crate::store::DbConn;

/// The version of the document's shape; a field removed or changed in
/// meaning raises it, a field added does not.
pub const VERSION: u32 = 1;

// The doc comments of the types below are the descriptions the OpenAPI
// document publishes (`GET /api/v1/openapi.json`), so they are Swedish.

/// Vad dokumentet säger mottagaren: rapport (ny eller återupptagen),
/// aterkallad (nya uppgifter visar att kravet uppfylldes i tid eller inte
/// gällde) eller avslutad (handläggaren har avslutat den, med åtgärd).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Rapport,
    Aterkallad,
    Avslutad,
}

impl Kind {
    /// The kind of the outbox row's notice.
    pub fn of(kind: MailKind) -> Option<Kind> {
        match kind {
            MailKind::Avvikelse => Some(Kind::Rapport),
            MailKind::Aterkallelse => Some(Kind::Aterkallad),
            MailKind::Avslutad => Some(Kind::Avslutad),
            _ => None,
        }
    }

    /// What a system that pulls the document is told: the deviation as it is now.
    pub fn of_status(status: DeviationStatus) -> Kind {
        match status {
            DeviationStatus::Aterkallad => Kind::Aterkallad,
            DeviationStatus::Avslutad => Kind::Avslutad,
            _ => Kind::Rapport,
        }
    }
}

/// En enhet som rapporten namnger den: id, namn och huvudman.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UnitRef {
    pub id: String,
    pub namn: String,
    pub huvudman: String,
}

/// Sannolikhet 1–4 × konsekvens 1–4 = riskvärde 1–16 och dess klass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RiskView {
    #[schema(minimum = 1, maximum = 4)]
    pub sannolikhet: u8,
    #[schema(minimum = 1, maximum = 4)]
    pub konsekvens: u8,
    #[schema(minimum = 1, maximum = 16)]
    pub varde: u8,
    /// låg, måttlig, hög eller mycket hög
    #[schema(pattern = "^(låg|måttlig|hög|mycket hög)$")]
    pub klass: String,
}

/// Rapportens avsnitt, svensk text ur regelns mall.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Sections {
    /// vad som hände: regeln, tiderna, hur sent, rutinen som inte följdes
    pub handelse: String,
    pub konsekvens: String,
    /// omedelbar åtgärd
    pub atgard: String,
    /// förbättringsförslag
    pub forbattring: String,
    /// lagrum eller riktlinje
    pub grund: String,
}

/// late: kravet uppfylldes för sent; missing: inte alls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FindingStatus {
    Late,
    Missing,
}

/// En avvikelserapport från svu-vakt, utan uppgifter om patienten:
/// ärendenumret och länken bär resten.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportDocument {
    /// dokumentets form: 1
    pub version: u32,
    pub kind: Kind,
    /// avvikelsens id i svu-vakt
    pub id: i64,
    /// avvikelsens identitet (regel, ärende, enhet, tidsgräns); samma i varje dokument om avvikelsen
    pub fingerprint: String,
    /// regelns id
    pub rule: String,
    /// regelns svenska namn
    pub rule_title: String,
    /// ärendets id i samordningssystemet; null för bemanning
    pub case: Option<String>,
    /// den ansvariga enheten (klinik/avd./enhet); null när ingen är ansvarig
    pub unit: Option<UnitRef>,
    /// berörd part: enheterna vars arbete avvikelsen drabbade
    pub berord: Vec<UnitRef>,
    /// rutinen som rapporten hänvisar till
    pub routine: String,
    /// tidsgränsen, RFC 3339 i svensk tid
    #[schema(format = DateTime)]
    pub due: String,
    /// när det gjordes, om för sent; null när det saknas
    #[schema(format = DateTime)]
    pub done: Option<String>,
    pub status: FindingStatus,
    /// hela minuter från tidsgränsen till utfört; null när det saknas
    pub late_minutes: Option<i64>,
    /// avvikelsens status i svu-vakt
    #[schema(value_type = String)]
    pub handling_status: DeviationStatus,
    /// åtgärden som handläggaren registrerade, när det finns en
    pub atgard_utford: Option<String>,
    pub risk: RiskView,
    pub sections: Sections,
    /// "Klinik/avd./enhet" som länets blankett frågar efter
    pub klinik_avd_enhet: String,
    /// "Datum och tid" för händelsen: tidsgränsen, på svenska
    pub datum_och_tid: String,
    /// avvikelsens sida i svu-vakt
    pub link: String,
    /// när svu-vakt registrerade avvikelsen, RFC 3339 i svensk tid
    #[schema(format = DateTime)]
    pub registered_at: String,
}

/// RFC 3339 in Swedish time, whole seconds: the same text on both backends
/// (SQLite keeps nanoseconds of `registered_at`, PostgreSQL microseconds).
fn stockholm(t: NaiveDateTime) -> String {
    in_stockholm(t.and_utc()).to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

fn field<T: serde::de::DeserializeOwned>(data: &Value, name: &str) -> anyhow::Result<T> {
    serde_json::from_value(data[name].clone()).map_err(|e| anyhow::anyhow!("rapportens fält {name}: {e}"))
}

/// The document of `d` as `kind`, from the mail's data of it.
#[allow(clippy::too_many_arguments)]
pub fn build(
    d: &DeviationRow,
    parties: &[String],
    units: &Units,
    mail: &MailConfig,
    templates: &Templates,
    as_of: DateTime<Utc>,
    kind: Kind,
    atgard: Option<String>,
) -> anyhow::Result<ReportDocument> {
    let data = report::data(d, parties, units, mail, templates, as_of)?;
    let unit: Option<UnitRef> = d.unit.as_ref().map(|_| field(&data, "enhet")).transpose()?;
    let klinik_avd_enhet = match &unit {
        Some(u) => format!("{} ({}), {}", u.namn, u.id, u.huvudman),
        None => "ingen ansvarig enhet".into(),
    };
    Ok(ReportDocument {
        version: VERSION,
        kind,
        id: d.id,
        fingerprint: d.fingerprint.clone(),
        rule: d.rule.clone(),
        rule_title: field(&data, "regel_namn")?,
        case: d.case_id.clone(),
        unit,
        berord: field(&data, "berord")?,
        routine: field(&data, "rutin")?,
        due: stockholm(d.due),
        done: d.done_at.map(stockholm),
        status: if d.finding_status == "late" {
            FindingStatus::Late
        } else {
            FindingStatus::Missing
        },
        late_minutes: d.late_minutes,
        handling_status: d.status,
        atgard_utford: atgard,
        risk: field(&data, "risk")?,
        sections: field(&data, "avsnitt")?,
        klinik_avd_enhet,
        datum_och_tid: field(&data, "senast")?,
        link: field(&data, "lank")?,
        registered_at: stockholm(d.created_at),
    })
}

/// The document of `d` as it is now in the database: its berörd part, the
/// instant its scan judged, the åtgärd recorded.
pub fn of_deviation(
    conn: &mut DbConn,
    d: &DeviationRow,
    units: &Units,
    mail: &MailConfig,
    templates: &Templates,
    kind: Kind,
) -> anyhow::Result<ReportDocument> {
    let as_of = outbox::scan_as_of(conn, d.scan_id)?.unwrap_or(d.created_at).and_utc();
    let parties = deviations::parties_of(conn, &[d.id])?.remove(&d.id).unwrap_or_default();
    let atgard = deviations::handling_of(conn, d.id)?.and_then(|h| h.atgard);
    build(d, &parties, units, mail, templates, as_of, kind, atgard)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Unit, UnitId, UnitKind};
    use crate::store::outbox::webhook;

    fn unit(id: &str, name: &str, huvudman: &str) -> Unit {
        Unit {
            id: UnitId(id.into()),
            name: name.into(),
            kind: UnitKind::Kommun,
            huvudman: huvudman.into(),
            parent: None,
            email: None,
            storhelg: true,
            email_given: true,
            chef_email: None,
            chef_email_given: true,
        }
    }

    fn deviation() -> DeviationRow {
        let t = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().naive_utc();
        DeviationRow {
            id: 7,
            fingerprint: "f".repeat(64),
            rule: "inskrivningsmeddelande_24h".into(),
            case_id: Some("C1".into()),
            unit: Some("AVD1".into()),
            due: t("2026-05-05T08:00:00+02:00"),
            finding_status: "late".into(),
            done_at: Some(t("2026-05-05T11:42:00+02:00")),
            late_minutes: Some(222),
            status: DeviationStatus::Skickad,
            sannolikhet: 3,
            konsekvens: 3,
            recipients: "{}".into(),
            queued_at: None,
            scan_id: 1,
            created_at: t("2026-05-06T00:00:00+02:00"),
        }
    }

    #[test]
    fn the_document_carries_every_field_of_the_report_and_both_sides() {
        let units = Units::new([
            unit("AVD1", "Avdelning 1", "Region Östergötland"),
            unit("K1-HT", "Hemtjänst Nord", "Linköpings kommun"),
        ]);
        let mail = crate::mail::routing::tests::config(Vec::new());
        let templates = Templates::load(None).unwrap().citing("Riktlinje för utskrivning");
        let doc = build(
            &deviation(),
            &["K1-HT".into()],
            &units,
            &mail,
            &templates,
            chrono::Utc::now(),
            Kind::Rapport,
            None,
        )
        .unwrap();
        let v = serde_json::to_value(&doc).unwrap();
        assert_eq!(v["kind"], "rapport");
        assert_eq!(v["due"], "2026-05-05T08:00:00+02:00");
        assert_eq!(v["done"], "2026-05-05T11:42:00+02:00");
        assert_eq!(v["status"], "late");
        assert_eq!(v["handling_status"], "skickad");
        assert_eq!(v["unit"]["huvudman"], "Region Östergötland");
        assert_eq!(v["berord"][0]["namn"], "Hemtjänst Nord");
        assert_eq!(v["risk"]["varde"], 9);
        assert_eq!(v["risk"]["klass"], "hög");
        assert_eq!(v["routine"], "Riktlinje för utskrivning");
        assert!(v["sections"]["handelse"]
            .as_str()
            .unwrap()
            .contains("Riktlinje för utskrivning"));
        assert_eq!(v["klinik_avd_enhet"], "Avdelning 1 (AVD1), Region Östergötland");
        assert_eq!(v["datum_och_tid"], "2026-05-05 kl. 08:00");
        assert_eq!(v["link"], "http://x/avvikelser/7");
        assert_eq!(v["registered_at"], "2026-05-06T00:00:00+02:00");
        for name in ["patient", "personnummer", "namn_patient"] {
            assert!(v.get(name).is_none(), "{name}");
        }
    }

    #[test]
    fn the_kinds_are_the_words_of_the_webhook_keys() {
        for kind in [MailKind::Avvikelse, MailKind::Aterkallelse, MailKind::Avslutad] {
            let k = Kind::of(kind).unwrap();
            assert_eq!(serde_json::to_value(k).unwrap(), webhook::word(kind));
        }
        assert_eq!(Kind::of(MailKind::Paminnelse), None);
        assert_eq!(Kind::of_status(DeviationStatus::Utreds), Kind::Rapport);
    }
}
