//! The follow-up laid out for people, outside HTTP: `format` (Swedish
//! numbers, percentages, kronor, month names, rule titles, the charts and
//! the betalningsansvar rows) and `quarterly` (the quarterly report's view
//! and its standalone HTML document for `svu-vakt report quarterly --format
//! html`). The pages (`web::followup_pages`) lay out the same views in the
//! site's layout; `followup` computes every figure.

pub mod csv;
pub mod exports;
pub mod format;
pub mod quarterly;
