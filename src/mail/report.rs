//! What a deviation report says: the data the templates get (in Swedish
//! field names), built from the stored deviation and the unit register. No
//! patient identity is ever part of it: the case id and a link carry the rest.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{json, Value};

use super::templates::{Rendered, Templates};
use super::MailConfig;
use crate::calendar::in_stockholm;
use crate::rules::profile::Risk;
use crate::rules::{RuleId, Units};
use crate::store::deviations::DeviationRow;

/// The rule's title, from its declaration (`rules::registry`).
pub fn rule_title(rule: RuleId) -> &'static str {
    rule.rule().title
}

/// "2026-05-05 kl. 08:00", seconds only when there are any.
pub fn local_text(t: NaiveDateTime) -> String {
    let local = in_stockholm(t.and_utc());
    if chrono::Timelike::second(&local) == 0 {
        local.format("%Y-%m-%d kl. %H:%M").to_string()
    } else {
        local.format("%Y-%m-%d kl. %H:%M:%S").to_string()
    }
}

/// "2 dygn 3 tim 5 min", "mindre än en minut".
pub fn delay_text(minutes: i64) -> String {
    if minutes <= 0 {
        return "mindre än en minut".into();
    }
    let (d, h, m) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    let mut parts = Vec::new();
    if d > 0 {
        parts.push(format!("{d} dygn"));
    }
    if h > 0 {
        parts.push(format!("{h} tim"));
    }
    if m > 0 {
        parts.push(format!("{m} min"));
    }
    parts.join(" ")
}

/// The template data of one deviation, sections included.
pub fn data(
    d: &DeviationRow,
    parties: &[String],
    units: &Units,
    mail: &MailConfig,
    templates: &Templates,
    as_of: DateTime<Utc>,
) -> anyhow::Result<Value> {
    let rule = RuleId::parse(&d.rule)
        .ok_or_else(|| anyhow::anyhow!("den sparade avvikelsen {} har en okänd regel {}", d.id, d.rule))?;
    let unit = d.unit.as_ref().map(|id| unit_view(id, units));
    let berord: Vec<Value> = parties.iter().map(|id| unit_view(id, units)).collect();
    let risk = Risk {
        sannolikhet: d.sannolikhet as u8,
        konsekvens: d.konsekvens as u8,
    };
    let mut v = json!({
        "id": d.id,
        "regel": d.rule,
        "regel_namn": rule_title(rule),
        "arende": d.case_id,
        "enhet": unit.unwrap_or_else(|| json!({"id": "–", "namn": "ingen ansvarig enhet", "huvudman": "–"})),
        "senast": local_text(d.due),
        "dag": in_stockholm(d.due.and_utc()).format("%Y-%m-%d").to_string(),
        "status": if d.finding_status == "late" { "sen" } else { "saknas" },
        "utfort": d.done_at.map(local_text),
        "minuter_sent": d.late_minutes,
        "forsening": d.late_minutes.map(delay_text),
        "risk": {"sannolikhet": risk.sannolikhet, "konsekvens": risk.konsekvens, "varde": risk.value(), "klass": risk.class()},
        "lank": format!("{}/avvikelser/{}", mail.base_url, d.id),
        "registrerad": local_text(d.created_at),
        "granskad": local_text(as_of.naive_utc()),
        "rekommendation": rule.rule().recommendation,
        "berord": berord,
        "berord_text": parties_text(&berord),
        "rutin": templates.routine(),
    });
    let mut sections = templates.sections(rule, &v)?;
    // Seed 002: the händelse names the routine the unit did not follow.
    if !templates.routine().is_empty() {
        if let Some(Value::String(h)) = sections.get_mut("handelse") {
            h.push_str(&format!(
                " Avvikelse från följsamhet till rutinen \"{}\".",
                templates.routine()
            ));
        }
    }
    if let Some(o) = v.as_object_mut() {
        o.insert("avsnitt".into(), sections);
    }
    Ok(v)
}

/// A unit as the report names it: id, name and huvudman.
fn unit_view(id: &str, units: &Units) -> Value {
    match units.get(&crate::domain::UnitId(id.to_string())) {
        Some(u) => json!({"id": id, "namn": u.name, "huvudman": u.huvudman}),
        None => json!({"id": id, "namn": format!("{id} (okänd enhet)"), "huvudman": "okänd"}),
    }
}

/// "Hemtjänst Linköping (Linköpings kommun), …", or a dash for none.
fn parties_text(berord: &[Value]) -> String {
    if berord.is_empty() {
        return "–".into();
    }
    berord
        .iter()
        .map(|u| {
            format!(
                "{} ({})",
                u["namn"].as_str().unwrap_or(""),
                u["huvudman"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn render(kind: crate::store::outbox::MailKind, data: &Value, templates: &Templates) -> anyhow::Result<Rendered> {
    templates.render(kind, data)
}
