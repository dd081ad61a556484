//! Process metrics in the Prometheus text format: ingest counters and HTTP
//! request latency per route pattern (never per path, so no ids in labels).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

const BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
pub struct Metrics {
    pub events_ingested: AtomicU64,
    pub events_duplicate: AtomicU64,
    pub events_rejected: AtomicU64,
    pub batches_rejected: AtomicU64,
    pub events_conflict: AtomicU64,
    pub scans: AtomicU64,
    pub scans_failed: AtomicU64,
    pub deviations_filed: AtomicU64,
    pub deviations_withdrawn: AtomicU64,
    pub deviations_unmailed: AtomicU64,
    pub mail_sent: AtomicU64,
    pub mail_failed: AtomicU64,
    pub mail_refused: AtomicU64,
    pub feed_files_imported: AtomicU64,
    pub feed_files_failed: AtomicU64,
    pub feed_files_repeated: AtomicU64,
    pub feed_events_stored: AtomicU64,
    http: Mutex<BTreeMap<(String, String, u16), Histogram>>,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let Ok(mut map) = self.http.lock() else { return };
        let h = map.entry((method.to_string(), route.to_string(), status)).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters = [
            (
                "svu_vakt_events_ingested_total",
                "Events stored by ingest.",
                &self.events_ingested,
            ),
            (
                "svu_vakt_events_duplicate_total",
                "Events received again with the same content (no-ops).",
                &self.events_duplicate,
            ),
            (
                "svu_vakt_events_rejected_total",
                "Invalid input lines in rejected batches.",
                &self.events_rejected,
            ),
            (
                "svu_vakt_events_conflict_total",
                "Event ids received again with other content.",
                &self.events_conflict,
            ),
            (
                "svu_vakt_batches_rejected_total",
                "Ingest batches rejected whole.",
                &self.batches_rejected,
            ),
            ("svu_vakt_scans_total", "Scans completed by this process.", &self.scans),
            (
                "svu_vakt_scans_failed_total",
                "Scans that failed (see scan_runs).",
                &self.scans_failed,
            ),
            (
                "svu_vakt_deviations_filed_total",
                "Deviations filed by this process's scans.",
                &self.deviations_filed,
            ),
            (
                "svu_vakt_deviations_withdrawn_total",
                "Deviations withdrawn by this process's scans.",
                &self.deviations_withdrawn,
            ),
            (
                "svu_vakt_deviations_unmailed_total",
                "Deviations filed without mail (older than mail.max_age_days).",
                &self.deviations_unmailed,
            ),
            (
                "svu_vakt_mail_sent_total",
                "Mails accepted by the SMTP server.",
                &self.mail_sent,
            ),
            (
                "svu_vakt_mail_failed_total",
                "Mail delivery attempts that failed and are retried (4xx, server unreachable).",
                &self.mail_failed,
            ),
            (
                "svu_vakt_mail_refused_total",
                "Mails refused permanently by the SMTP server (not retried).",
                &self.mail_refused,
            ),
            (
                "svu_vakt_feed_files_imported_total",
                "Drop-folder files imported and moved to done/.",
                &self.feed_files_imported,
            ),
            (
                "svu_vakt_feed_files_failed_total",
                "Drop-folder files with bad lines, moved to failed/ with a report.",
                &self.feed_files_failed,
            ),
            (
                "svu_vakt_feed_files_repeated_total",
                "Drop-folder files whose content was imported before (no-ops).",
                &self.feed_files_repeated,
            ),
            (
                "svu_vakt_feed_events_stored_total",
                "Events stored from drop-folder files (also counted in events_ingested).",
                &self.feed_events_stored,
            ),
        ];
        for (name, help, c) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let name = "svu_vakt_http_request_duration_seconds";
        let _ = writeln!(out, "# HELP {name} HTTP request latency.\n# TYPE {name} histogram");
        if let Ok(map) = self.http.lock() {
            for ((method, route, status), h) in map.iter() {
                let labels = format!(
                    "method=\"{method}\",route=\"{}\",status=\"{status}\"",
                    route.replace('"', "")
                );
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {}", h.counts[i]);
                }
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
                let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
            }
        }
        out
    }
}
