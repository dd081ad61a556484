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
mod tests {
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

    fn config(routes: Vec<Route>) -> MailConfig {
        MailConfig {
            smtp_url: Default::default(),
            from: "svu-vakt <svu@region.example.se>".into(),
            default_to: "default@example.se".into(),
            mode: MailMode::PerAvvikelse,
            base_url: "http://x".into(),
            templates_dir: None,
            deliver_every_seconds: 60,
            smtp_timeout_seconds: 10,
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
}
