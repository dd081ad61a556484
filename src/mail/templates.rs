//! The mail texts: Swedish Handlebars templates, compiled into the binary
//! from `templates/` and overridable file by file from a directory with the
//! same layout. Strict mode: a template that names a missing field fails.
//! Each rule's template (`templates/rules/<rule>.hbs`, compiled in by the
//! rule's own file in `src/rules/`) holds the report's
//! sections after `--- handelse`, `--- konsekvens`, `--- atgard`,
//! `--- forbattring` and `--- grund` lines.

use std::path::{Path, PathBuf};

use handlebars::Handlebars;
use serde::Serialize;
use serde_json::{json, Value};

use crate::rules::RuleId;
use crate::store::outbox::MailKind;

pub const SECTIONS: [&str; 5] = ["handelse", "konsekvens", "atgard", "forbattring", "grund"];
const PARTS: [&str; 3] = ["subject", "txt", "html"];

macro_rules! embedded {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../templates/", $path)))),*]
    };
}

const EMBEDDED: &[(&str, &str)] = embedded!(
    "mail/avvikelse.subject.hbs",
    "mail/avvikelse.txt.hbs",
    "mail/avvikelse.html.hbs",
    "mail/aterkallelse.subject.hbs",
    "mail/aterkallelse.txt.hbs",
    "mail/aterkallelse.html.hbs",
    "mail/sammanstallning.subject.hbs",
    "mail/sammanstallning.txt.hbs",
    "mail/sammanstallning.html.hbs",
    "mail/misslyckad.subject.hbs",
    "mail/misslyckad.txt.hbs",
    "mail/misslyckad.html.hbs",
    "mail/ej_mejlade.subject.hbs",
    "mail/ej_mejlade.txt.hbs",
    "mail/ej_mejlade.html.hbs",
    "mail/paminnelse.subject.hbs",
    "mail/paminnelse.txt.hbs",
    "mail/paminnelse.html.hbs",
    "mail/eskalering.subject.hbs",
    "mail/eskalering.txt.hbs",
    "mail/eskalering.html.hbs",
    "mail/avslutad.subject.hbs",
    "mail/avslutad.txt.hbs",
    "mail/avslutad.html.hbs",
    "mail/bemanning_paminnelse.subject.hbs",
    "mail/bemanning_paminnelse.txt.hbs",
    "mail/bemanning_paminnelse.html.hbs",
    "mail/webhook_misslyckad.subject.hbs",
    "mail/webhook_misslyckad.txt.hbs",
    "mail/webhook_misslyckad.html.hbs",
);

/// A rendered mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub struct Templates {
    /// Text parts and rule sections: no HTML escaping.
    text: Handlebars<'static>,
    html: Handlebars<'static>,
    /// The routine every report's händelse cites (the profile's, SPEC §4.9).
    routine: String,
}

fn source(dir: Option<&Path>, rel: &str) -> anyhow::Result<String> {
    let embedded = EMBEDDED.iter().find(|(path, _)| *path == rel).map(|(_, text)| *text);
    source_or(dir, rel, embedded)
}

/// The file `rel` of the templates directory if there is one, else the
/// compiled-in text.
fn source_or(dir: Option<&Path>, rel: &str, embedded: Option<&str>) -> anyhow::Result<String> {
    if let Some(d) = dir {
        let p: PathBuf = d.join(rel);
        if p.exists() {
            return std::fs::read_to_string(&p).map_err(|e| anyhow::anyhow!("mallen {}: {e}", p.display()));
        }
    }
    embedded
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("mallen {rel} finns inte"))
}

/// Splits a rule file into its named sections.
fn sections(rule: &str, text: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("--- ") {
            out.push((name.trim().to_string(), String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            if !body.is_empty() {
                body.push('\n');
            }
            body.push_str(line);
        }
    }
    for s in SECTIONS {
        anyhow::ensure!(
            out.iter().any(|(n, _)| n == s),
            "mallen rules/{rule}.hbs saknar avsnittet `--- {s}`"
        );
    }
    Ok(out.into_iter().map(|(n, b)| (n, b.trim().to_string())).collect())
}

impl Templates {
    /// Compiles every template; a syntax error or a missing section stops the start.
    pub fn load(dir: Option<&Path>) -> anyhow::Result<Templates> {
        let mut text = Handlebars::new();
        text.set_strict_mode(true);
        text.register_escape_fn(handlebars::no_escape);
        let mut html = Handlebars::new();
        html.set_strict_mode(true);
        for kind in MailKind::ALL {
            for part in PARTS {
                let rel = format!("mail/{kind}.{part}.hbs");
                let src = source(dir, &rel)?;
                let name = format!("{kind}.{part}");
                let reg = if part == "html" { &mut html } else { &mut text };
                reg.register_template_string(&name, src)
                    .map_err(|e| anyhow::anyhow!("mallen {rel}: {e}"))?;
            }
        }
        for rule in RuleId::ALL {
            let src = source_or(dir, &format!("rules/{}.hbs", rule.as_str()), Some(rule.rule().template))?;
            for (name, body) in sections(rule.as_str(), &src)? {
                text.register_template_string(&format!("{}.{name}", rule.as_str()), body)
                    .map_err(|e| anyhow::anyhow!("mallen rules/{}.hbs, avsnittet {name}: {e}", rule.as_str()))?;
            }
        }
        Ok(Templates {
            text,
            html,
            routine: String::new(),
        })
    }

    /// The same templates citing `routine` (the profile's) in every report.
    pub fn citing(mut self, routine: &str) -> Templates {
        self.routine = routine.to_string();
        self
    }

    pub fn routine(&self) -> &str {
        &self.routine
    }

    /// The report's sections for one deviation, as plain text.
    pub fn sections(&self, rule: RuleId, data: &Value) -> anyhow::Result<Value> {
        let mut out = serde_json::Map::new();
        for s in SECTIONS {
            let rendered = self.text.render(&format!("{}.{s}", rule.as_str()), data)?;
            out.insert(s.to_string(), Value::String(rendered));
        }
        Ok(Value::Object(out))
    }

    /// Renders the mail `kind` with `data`.
    pub fn render(&self, kind: MailKind, data: &impl Serialize) -> anyhow::Result<Rendered> {
        let data = json!(data);
        Ok(Rendered {
            subject: self.text.render(&format!("{kind}.subject"), &data)?.trim().to_string(),
            text: self.text.render(&format!("{kind}.txt"), &data)?,
            html: self.html.render(&format!("{kind}.html"), &data)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Value {
        json!({"id": 7, "regel": "kallelse_sip", "regel_namn": "Kallelse till SIP för sent", "arende": "C1",
            "enhet": {"id": "VC1", "namn": "Vårdcentralen", "huvudman": "Region"}, "senast": "2026-05-14 kl. 23:59:59",
            "dag": "2026-05-14", "status": "sen", "utfort": "2026-05-15 kl. 08:00", "minuter_sent": 480, "forsening": "8 tim",
            "risk": {"sannolikhet": 3, "konsekvens": 3, "varde": 9, "klass": "hög"}, "lank": "https://x/avvikelser/7",
            "registrerad": "2026-05-16 kl. 00:00", "granskad": "2026-05-16 kl. 00:00", "rekommendation": false,
            "berord": [{"id": "K1", "namn": "Hemtjänst", "huvudman": "Kommunen"}],
            "berord_text": "Hemtjänst (Kommunen)", "rutin": "Lag (2017:612)"})
    }

    #[test]
    fn every_rule_renders_every_section_in_swedish() {
        let t = Templates::load(None).unwrap();
        for rule in RuleId::ALL {
            let s = t.sections(rule, &data()).unwrap();
            for name in SECTIONS {
                assert!(!s[name].as_str().unwrap().is_empty(), "{rule} {name}");
            }
        }
        let mut d = data();
        d["avsnitt"] = t.sections(RuleId::KallelseSip, &d).unwrap();
        let m = t.render(MailKind::Avvikelse, &d).unwrap();
        assert_eq!(m.subject, "Avvikelse 7: Kallelse till SIP för sent (ärende C1)");
        assert!(m.text.contains("Den skickades 2026-05-15 kl. 08:00, 8 tim för sent."));
        assert!(
            m.text.contains("Berörd part: Hemtjänst (Kommunen)"),
            "both sides: {}",
            m.text
        );
        assert!(m.html.contains("Hemtjänst (Kommunen)"));
        assert!(m.html.contains("<a href=\"https://x/avvikelser/7\">"));
    }

    #[test]
    fn a_directory_overrides_single_templates_and_strict_mode_catches_missing_fields() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("mail")).unwrap();
        std::fs::write(dir.path().join("mail/avvikelse.subject.hbs"), "[SVU] {{regel_namn}}").unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        let mut d = data();
        d["avsnitt"] = t.sections(RuleId::KallelseSip, &d).unwrap();
        assert_eq!(
            t.render(MailKind::Avvikelse, &d).unwrap().subject,
            "[SVU] Kallelse till SIP för sent"
        );
        assert!(
            t.render(MailKind::Avvikelse, &data()).is_err(),
            "avsnitt is missing: strict mode refuses"
        );
        std::fs::create_dir_all(dir.path().join("rules")).unwrap();
        std::fs::write(dir.path().join("rules/kallelse_sip.hbs"), "--- handelse\nx\n").unwrap();
        let err = Templates::load(Some(dir.path())).err().unwrap().to_string();
        assert!(err.contains("konsekvens"), "{err}");
    }
}
