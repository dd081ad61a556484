//! Where a deviation goes (SPEC §6): the responsible unit's e-mail; else the
//! first matching route of the config; else the default address. Routes may
//! add copies. An unknown unit, or no unit at all, goes to the default.

use super::{MailConfig, Route};
use crate::domain::{Unit, UnitId};
use crate::rules::Units;

/// The value routing decides, kept in `domain` so `store` can hold it too.
pub use crate::domain::recipients::Recipients;

fn ancestors_and_self<'a>(unit: &'a Unit, units: &'a Units) -> Vec<&'a UnitId> {
    let mut out = vec![&unit.id];
    let mut cur = unit;
    while let Some(p) = cur.parent.as_ref().and_then(|p| units.get(p)) {
        if out.contains(&&p.id) {
            break;
        }
        out.push(&p.id);
        cur = p;
    }
    out
}

fn matches(route: &Route, unit: &Unit, units: &Units) -> bool {
    route.huvudman.as_ref().is_none_or(|h| *h == unit.huvudman)
        && route.kind.is_none_or(|k| k == unit.kind)
        && route
            .unit
            .as_ref()
            .is_none_or(|id| ancestors_and_self(unit, units).iter().any(|a| a.as_str() == id))
}

pub fn route(unit: Option<&UnitId>, units: &Units, mail: &MailConfig) -> Recipients {
    let default = |via: String| Recipients {
        to: mail.default_to.clone(),
        cc: Vec::new(),
        via,
    };
    let Some(id) = unit else {
        return default("standardmottagaren: ingen enhet är ansvarig".into());
    };
    let Some(u) = units.get(id) else {
        return default(format!("standardmottagaren: enheten {id} är inte registrerad"));
    };
    let found = mail.routes.iter().enumerate().find(|(_, r)| matches(r, u, units));
    if let Some((i, r)) = found.filter(|(_, r)| r.intake_first) {
        if let Some(intake) = &r.to {
            return intake_first(intake, u.email.as_deref(), &r.cc, i + 1);
        }
    }
    let cc = found.map(|(_, r)| r.cc.clone()).unwrap_or_default();
    if let Some(email) = &u.email {
        let via = match found {
            Some((i, _)) => format!("enhetens e-post; kopior enligt regel {} i konfigurationen", i + 1),
            None => "enhetens e-post".into(),
        };
        return Recipients {
            to: email.clone(),
            cc,
            via,
        };
    }
    match found {
        Some((i, r)) if r.to.is_some() => Recipients {
            to: r.to.clone().unwrap_or_default(),
            cc,
            via: format!("regel {} i konfigurationen (enheten har ingen e-post)", i + 1),
        },
        _ => Recipients {
            cc,
            ..default("standardmottagaren: enheten har ingen e-post och ingen regel ger en mottagare".into())
        },
    }
}

/// SPEC §6.0: the huvudman's central intake is the recipient; the unit's
/// own e-mail, then the route's copies, are copies (each address once).
fn intake_first(intake: &str, unit_email: Option<&str>, route_cc: &[String], n: usize) -> Recipients {
    let mut cc: Vec<String> = Vec::new();
    for a in unit_email.into_iter().chain(route_cc.iter().map(String::as_str)) {
        if !a.eq_ignore_ascii_case(intake) && !cc.iter().any(|c| c.eq_ignore_ascii_case(a)) {
            cc.push(a.to_string());
        }
    }
    let via = match unit_email {
        Some(_) => format!(
            "huvudmannens mottagning enligt regel {n} i konfigurationen (intake_first); enhetens e-post som kopia"
        ),
        None => format!(
            "huvudmannens mottagning enligt regel {n} i konfigurationen (intake_first; enheten har ingen e-post)"
        ),
    };
    Recipients {
        to: intake.to_string(),
        cc,
        via,
    }
}

/// How a deviation of a unit is delivered besides where its mail goes: by
/// mail or not (`mail = false` on its route), and to which webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channels<'a> {
    pub mail: bool,
    pub webhook: Option<&'a str>,
}

pub fn channels<'a>(unit: Option<&UnitId>, units: &Units, mail: &'a MailConfig) -> Channels<'a> {
    match matching_route(unit, units, mail) {
        Some(r) => Channels {
            mail: r.mail,
            webhook: r.webhook_url.as_deref(),
        },
        None => Channels {
            mail: true,
            webhook: None,
        },
    }
}

/// The first route that matches the unit, if any.
pub fn matching_route<'a>(unit: Option<&UnitId>, units: &Units, mail: &'a MailConfig) -> Option<&'a Route> {
    let u = units.get(unit?)?;
    mail.routes.iter().find(|r| matches(r, u, units))
}

/// Where reminders escalate (SPEC §6.1): the unit's `chef_email`, else the
/// matching route's `escalate_to`, else the default address; and why.
pub fn escalation(unit: Option<&UnitId>, units: &Units, mail: &MailConfig) -> (String, String) {
    if let Some(chef) = unit.and_then(|id| units.get(id)).and_then(|u| u.chef_email.clone()) {
        return (chef, "enhetens chef".into());
    }
    match matching_route(unit, units, mail).and_then(|r| r.escalate_to.clone()) {
        Some(to) => (to, "eskaleringsadressen i konfigurationen".into()),
        None => (mail.default_to.clone(), "standardmottagaren".into()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::UnitKind;
    use crate::mail::MailMode;

    fn unit(id: &str, kind: UnitKind, huvudman: &str, parent: Option<&str>, email: Option<&str>) -> Unit {
        Unit {
            id: UnitId(id.into()),
            name: id.into(),
            kind,
            huvudman: huvudman.into(),
            parent: parent.map(|p| UnitId(p.into())),
            email: email.map(String::from),
            storhelg: true,
            email_given: true,
            chef_email: None,
            chef_email_given: true,
        }
    }

    pub(crate) fn config(routes: Vec<Route>) -> MailConfig {
        MailConfig {
            smtp_url: Default::default(),
            from: "svu-vakt <svu@region.example.se>".into(),
            default_to: "default@example.se".into(),
            mode: MailMode::PerAvvikelse,
            base_url: "http://x".into(),
            templates_dir: None,
            deliver_every_seconds: 60,
            smtp_timeout_seconds: 10,
            webhook_timeout_seconds: 10,
            claim_seconds: 300,
            max_age_days: 14,
            routes,
        }
    }

    fn route_to(to: Option<&str>, cc: &[&str]) -> Route {
        Route {
            huvudman: None,
            kind: None,
            unit: None,
            to: to.map(String::from),
            cc: cc.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn unit_email_then_first_matching_route_then_default() {
        let units = Units::new([
            unit("K", UnitKind::Kommun, "Motala kommun", None, Some("k@motala.se")),
            unit("K-HT", UnitKind::Kommun, "Motala kommun", Some("K"), None),
            unit("VC", UnitKind::Oppenvard, "Region", None, None),
        ]);
        let by_unit = Route {
            unit: Some("K".into()),
            ..route_to(Some("tree@motala.se"), &["svu@region.se"])
        };
        let by_kind = Route {
            kind: Some(UnitKind::Kommun),
            ..route_to(Some("kommun@x.se"), &[])
        };
        let cfg = config(vec![by_unit, by_kind]);
        let r = route(Some(&UnitId("K".into())), &units, &cfg);
        assert_eq!(
            (r.to.as_str(), r.cc.clone()),
            ("k@motala.se", vec!["svu@region.se".to_string()])
        );
        let r = route(Some(&UnitId("K-HT".into())), &units, &cfg);
        assert_eq!(r.to, "tree@motala.se", "a unit route covers the units below");
        assert_eq!(route(Some(&UnitId("VC".into())), &units, &cfg).to, "default@example.se");
        assert_eq!(
            route(Some(&UnitId("OKAND".into())), &units, &cfg).to,
            "default@example.se"
        );
        assert_eq!(route(None, &units, &cfg).to, "default@example.se");
        assert_eq!(cfg.domain(), "region.example.se");
    }

    #[test]
    fn intake_first_makes_the_huvudmans_intake_the_recipient_and_the_units_email_a_copy() {
        let units = Units::new([
            unit("K", UnitKind::Kommun, "Motala kommun", None, Some("k@motala.se")),
            unit(
                "K-HT",
                UnitKind::Kommun,
                "Motala kommun",
                Some("K"),
                Some("ht@motala.se"),
            ),
            unit("K-HS", UnitKind::Kommun, "Motala kommun", Some("K"), None),
            unit("AVD", UnitKind::Slutenvard, "Region", None, Some("avd@region.se")),
        ]);
        let intake = Route {
            huvudman: Some("Motala kommun".into()),
            intake_first: true,
            ..route_to(Some("avvikelser@motala.se"), &["svu@region.se", "ht@motala.se"])
        };
        let cfg = config(vec![intake, route_to(Some("annan@x.se"), &[])]);
        let r = route(Some(&UnitId("K-HT".into())), &units, &cfg);
        assert_eq!(r.to, "avvikelser@motala.se");
        assert_eq!(
            r.cc,
            vec!["ht@motala.se".to_string(), "svu@region.se".to_string()],
            "the unit's e-mail first, each address once"
        );
        assert!(r.via.contains("intake_first"), "{}", r.via);
        let r = route(Some(&UnitId("K-HS".into())), &units, &cfg);
        assert_eq!(
            (r.to.as_str(), r.cc.len()),
            ("avvikelser@motala.se", 2),
            "no e-mail of its own: the intake all the same"
        );
        let r = route(Some(&UnitId("AVD".into())), &units, &cfg);
        assert_eq!(
            (r.to.as_str(), r.cc.len()),
            ("avd@region.se", 0),
            "without intake_first the unit's e-mail wins, as before"
        );
        let mut plain = cfg.clone();
        plain.routes[0].intake_first = false;
        let r = route(Some(&UnitId("K-HT".into())), &units, &plain);
        assert_eq!(r.to, "ht@motala.se", "intake_first off: the unit's own e-mail");
    }

    #[test]
    fn channels_follow_the_matching_route() {
        let units = Units::new([
            unit("K", UnitKind::Kommun, "Motala kommun", None, Some("k@motala.se")),
            unit("VC", UnitKind::Oppenvard, "Region", None, None),
        ]);
        let hook = Route {
            huvudman: Some("Motala kommun".into()),
            webhook_url: Some("https://avvikelser.motala.se/in".into()),
            mail: false,
            ..route_to(None, &[])
        };
        let cfg = config(vec![hook]);
        let k = channels(Some(&UnitId("K".into())), &units, &cfg);
        assert_eq!(
            k,
            Channels {
                mail: false,
                webhook: Some("https://avvikelser.motala.se/in")
            }
        );
        let vc = channels(Some(&UnitId("VC".into())), &units, &cfg);
        assert_eq!(
            vc,
            Channels {
                mail: true,
                webhook: None
            }
        );
        assert_eq!(
            channels(None, &units, &cfg),
            Channels {
                mail: true,
                webhook: None
            }
        );
    }
}
