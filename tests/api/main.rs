//! API tests on the real application, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod admin_pages;
mod audit;
mod bad_input;
mod browser;
mod core;
mod day_counts;
mod deviation_keys;
mod deviation_links;
mod event_batch_links;
mod feed;
mod followup;
mod guideline;
mod handling;
mod helpers;
mod holes;
mod import;
mod import_order;
mod ingest;
mod oidc;
mod openapi;
mod operations;
mod pg_restart;
mod processes;
mod reliability;
mod reminders;
mod report_document;
mod settled;
mod smtp;
mod timelines;
mod unit_days;
mod webdriver;
mod webhook;
mod webhook_receiver;
