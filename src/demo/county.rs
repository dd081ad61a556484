//! The synthetic county's units: Region Östergötland's hospitals (three
//! kliniker of two wards each) and vårdcentraler, and its 13 kommuner with
//! hemtjänst and hemsjukvård; the same for every seed.

use crate::domain::{Unit, UnitId, UnitKind};

pub const KOMMUNER: [(&str, &str); 13] = [
    ("BOXHOLM", "Boxholm"),
    ("FINSPANG", "Finspång"),
    ("KINDA", "Kinda"),
    ("LINKOPING", "Linköping"),
    ("MJOLBY", "Mjölby"),
    ("MOTALA", "Motala"),
    ("NORRKOPING", "Norrköping"),
    ("SODERKOPING", "Söderköping"),
    ("VADSTENA", "Vadstena"),
    ("VALDEMARSVIK", "Valdemarsvik"),
    ("YDRE", "Ydre"),
    ("ATVIDABERG", "Åtvidaberg"),
    ("ODESHOG", "Ödeshög"),
];

const REGION: &str = "Region Östergötland";
const SJUKHUS: [(&str, &str); 3] = [
    ("US", "Universitetssjukhuset i Linköping"),
    ("VIN", "Vrinnevisjukhuset i Norrköping"),
    ("LIM", "Lasarettet i Motala"),
];
const KLINIKER: [(&str, &str); 3] = [
    ("MED", "Medicinkliniken"),
    ("GER", "Geriatriska kliniken"),
    ("ORT", "Ortopedkliniken"),
];

/// The synthetic county's units; the same for every seed.
pub fn units() -> Vec<Unit> {
    let mut out = vec![
        unit(
            "RO-SJUKVARD".into(),
            "Centrum för sjukhusvård".into(),
            UnitKind::Slutenvard,
            REGION,
            None,
            Some("avvikelse.sjukhusvard@example.se".into()),
        ),
        unit(
            "RO-PRIMARVARD".into(),
            "Primärvårdscentrum".into(),
            UnitKind::Oppenvard,
            REGION,
            None,
            Some("avvikelse.primarvard@example.se".into()),
        ),
    ];
    for (s, sname) in SJUKHUS {
        hospital(&mut out, s, sname);
    }
    for (code, name) in KOMMUNER {
        kommun(&mut out, code, name);
    }
    out
}

/// A hospital, its kliniker and their two wards each.
fn hospital(out: &mut Vec<Unit>, s: &str, sname: &str) {
    out.push(unit(
        format!("RO-{s}"),
        sname.into(),
        UnitKind::Slutenvard,
        REGION,
        Some("RO-SJUKVARD"),
        None,
    ));
    for (k, kname) in KLINIKER {
        let klinik = format!("RO-{s}-{k}");
        out.push(unit(
            klinik.clone(),
            format!("{kname}, {sname}"),
            UnitKind::Slutenvard,
            REGION,
            Some(&format!("RO-{s}")),
            Some(format!("{}@example.se", klinik.to_lowercase())),
        ));
        for a in 1..=2 {
            out.push(unit(
                format!("{klinik}-AVD{a}"),
                format!("Avdelning {a}, {kname}, {sname}"),
                UnitKind::Slutenvard,
                REGION,
                Some(&klinik),
                None,
            ));
        }
    }
}

/// A kommun's vårdcentral (the region's) and its socialförvaltning with
/// hemtjänst and hemsjukvård.
fn kommun(out: &mut Vec<Unit>, code: &str, name: &str) {
    out.push(unit(
        format!("VC-{code}"),
        format!("Vårdcentralen {name}"),
        UnitKind::Oppenvard,
        REGION,
        Some("RO-PRIMARVARD"),
        Some(format!("vc.{}@example.se", code.to_lowercase())),
    ));
    let root = format!("K-{code}");
    let huvudman = huvudman_of(name);
    out.push(unit(
        root.clone(),
        format!("{huvudman}, socialförvaltningen"),
        UnitKind::Kommun,
        &huvudman,
        None,
        Some(format!("avvikelse@{}.example.se", code.to_lowercase())),
    ));
    out.push(unit(
        format!("{root}-HT"),
        format!("Hemtjänst {name}"),
        UnitKind::Kommun,
        &huvudman,
        Some(&root),
        None,
    ));
    out.push(unit(
        format!("{root}-HSV"),
        format!("Hemsjukvård {name}"),
        UnitKind::Kommun,
        &huvudman,
        Some(&root),
        None,
    ));
}

fn unit(id: String, name: String, kind: UnitKind, huvudman: &str, parent: Option<&str>, email: Option<String>) -> Unit {
    Unit {
        id: UnitId(id),
        name,
        kind,
        huvudman: huvudman.into(),
        parent: parent.map(|p| UnitId(p.into())),
        email,
        storhelg: true,
        email_given: true,
        chef_email: None,
        chef_email_given: true,
    }
}

/// "Linköpings kommun", but "Motala kommun": a name ending in a vowel takes no s.
pub fn huvudman_of(kommun: &str) -> String {
    if kommun.ends_with(['a', 'e', 'y', 'o']) {
        format!("{kommun} kommun")
    } else {
        format!("{kommun}s kommun")
    }
}

pub(super) fn wards() -> Vec<String> {
    let mut w = Vec::new();
    for (s, _) in SJUKHUS {
        for (k, _) in KLINIKER {
            for a in 1..=2 {
                w.push(format!("RO-{s}-{k}-AVD{a}"));
            }
        }
    }
    w
}

/// The units as a JSON array, as `import --units` and `check --units` read them.
pub fn units_json() -> String {
    serde_json::to_string_pretty(&units()).unwrap_or_else(|_| "[]".into())
}
