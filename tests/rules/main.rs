//! The rules and the calendar, pure, at their edges (SPEC §4, §5).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod calendar;
mod case_rules;
mod check_cli;
mod fixtures;
mod guideline;
mod staffing;
