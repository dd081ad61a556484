//! The deviation list (SPEC §8): its filters, a page of it under a scope
//! (the scope applied in the query), what is waiting per status, and the
//! one spelling of a filter in the access log.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::domain::handling::DeviationStatus;

use super::DeviationRow;
use crate::store::schema::{deviation_parties, deviations};
use crate::store::DbConn;

/// The filters of the deviation list (SPEC §8); `from`/`to` bound the due.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub status: Option<DeviationStatus>,
    pub rule: Option<String>,
    pub unit: Option<String>,
    /// A unit among the berörd part (SPEC §6): what was reported on its behalf.
    pub berord: Option<String>,
    pub case: Option<String>,
    pub from: Option<NaiveDateTime>,
    pub to: Option<NaiveDateTime>,
    /// Oldest due first (the pages' "äldsta först"); else newest first.
    pub oldest_first: bool,
}

impl ListFilter {
    /// The filter as the server understood it, for the access log: every
    /// parameter decoded, then written in one order with one encoding
    /// (`?status=ny&case=SVU-1`, then `&page=2&per_page=50` when the read was
    /// not the first page of `usual_per_page`), so a search for a case finds
    /// every read of it however the request spelled the query.
    pub fn logged(&self, page: i64, per_page: i64, usual_per_page: i64) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        let status = self.status.map(|s| s.to_string());
        let text = [
            ("status", &status),
            ("rule", &self.rule),
            ("unit", &self.unit),
            ("berord", &self.berord),
            ("case", &self.case),
        ];
        for (key, value) in text {
            if let Some(v) = value {
                pairs.push((key, log_encode(v)));
            }
        }
        for (key, value) in [("from", self.from), ("to", self.to)] {
            if let Some(t) = value {
                pairs.push((key, log_encode(&t.and_utc().to_rfc3339())));
            }
        }
        if self.oldest_first {
            pairs.push(("sort", "aldst".into()));
        }
        if page != 1 || per_page != usual_per_page {
            pairs.push(("page", page.to_string()));
            pairs.push(("per_page", per_page.to_string()));
        }
        let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("?{}", joined.join("&"))
    }
}

/// Percent-encodes all but the unreserved characters: the one spelling of a
/// value in the access log (`store::tokens::search_log` encodes the same way).
pub fn log_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One page of the list, newest due first (ties by id, newest first), and
/// how many match in all. `scope` limits to those units when given (and
/// with `on_behalf` to what was reported on their behalf too).
pub fn page(
    conn: &mut DbConn,
    filter: &ListFilter,
    scope: Option<&std::collections::HashSet<String>>,
    on_behalf: bool,
    page: i64,
    per_page: i64,
) -> QueryResult<(Vec<DeviationRow>, i64)> {
    let scope: Option<Vec<&str>> = scope.map(|s| s.iter().map(String::as_str).collect());
    let query = || {
        let mut q = deviations::table.into_boxed();
        if let Some(s) = &filter.status {
            q = q.filter(deviations::status.eq(*s));
        }
        if let Some(r) = &filter.rule {
            q = q.filter(deviations::rule.eq(r.clone()));
        }
        if let Some(u) = &filter.unit {
            q = q.filter(deviations::unit.eq(u.clone()));
        }
        if let Some(c) = &filter.case {
            q = q.filter(deviations::case_id.eq(c.clone()));
        }
        if let Some(f) = filter.from {
            q = q.filter(deviations::due.ge(f));
        }
        if let Some(t) = filter.to {
            q = q.filter(deviations::due.lt(t));
        }
        if let Some(b) = &filter.berord {
            let on_behalf = deviation_parties::table
                .filter(deviation_parties::unit.eq(b.clone()))
                .select(deviation_parties::deviation_id);
            q = q.filter(deviations::id.eq_any(on_behalf));
        }
        // In scope: responsible for it, or (`on_behalf`) its berörd part.
        match &scope {
            Some(units) if on_behalf => {
                let theirs = deviation_parties::table
                    .filter(deviation_parties::unit.eq_any(units.clone()))
                    .select(deviation_parties::deviation_id);
                q = q.filter(deviations::unit.eq_any(units.clone()).or(deviations::id.eq_any(theirs)));
            }
            Some(units) => q = q.filter(deviations::unit.eq_any(units.clone())),
            None => {}
        }
        q
    };
    let total: i64 = query().count().get_result(conn)?;
    let ordered = if filter.oldest_first {
        query().order((deviations::due.asc(), deviations::id.asc()))
    } else {
        query().order((deviations::due.desc(), deviations::id.desc()))
    };
    let rows = ordered
        .offset((page - 1).max(0) * per_page)
        .limit(per_page)
        .load(conn)?;
    Ok((rows, total))
}

/// For each status still waiting for someone: how many, and the oldest due.
pub fn open_counts(
    conn: &mut DbConn,
    scope: Option<&std::collections::HashSet<String>>,
) -> QueryResult<Vec<(DeviationStatus, i64, Option<NaiveDateTime>)>> {
    let scope: Option<Vec<&str>> = scope.map(|s| s.iter().map(String::as_str).collect());
    let mut out = Vec::new();
    for status in crate::domain::handling::OPEN {
        let mut q = deviations::table
            .filter(deviations::status.eq(status))
            .select((diesel::dsl::count_star(), diesel::dsl::min(deviations::due)))
            .into_boxed();
        if let Some(units) = &scope {
            q = q.filter(deviations::unit.eq_any(units.clone()));
        }
        let (n, oldest): (i64, Option<NaiveDateTime>) = q.first(conn)?;
        out.push((status, n, oldest));
    }
    Ok(out)
}
