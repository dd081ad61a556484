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
                "Händelser sparade vid inläsning.",
                &self.events_ingested,
            ),
            (
                "svu_vakt_events_duplicate_total",
                "Händelser som kom igen med samma innehåll (ingen ändring).",
                &self.events_duplicate,
            ),
            (
                "svu_vakt_events_rejected_total",
                "Ogiltiga rader i avvisade batcher.",
                &self.events_rejected,
            ),
            (
                "svu_vakt_events_conflict_total",
                "Händelse-id som kom igen med annat innehåll.",
                &self.events_conflict,
            ),
            (
                "svu_vakt_batches_rejected_total",
                "Inläsningsbatcher som avvisades hela.",
                &self.batches_rejected,
            ),
            (
                "svu_vakt_scans_total",
                "Granskningar som denna process slutförde.",
                &self.scans,
            ),
            (
                "svu_vakt_scans_failed_total",
                "Granskningar som misslyckades (se scan_runs).",
                &self.scans_failed,
            ),
            (
                "svu_vakt_deviations_filed_total",
                "Avvikelser registrerade av granskningar i denna process.",
                &self.deviations_filed,
            ),
            (
                "svu_vakt_deviations_withdrawn_total",
                "Avvikelser återkallade av granskningar i denna process.",
                &self.deviations_withdrawn,
            ),
            (
                "svu_vakt_deviations_unmailed_total",
                "Avvikelser registrerade utan e-post (äldre än mail.max_age_days).",
                &self.deviations_unmailed,
            ),
            (
                "svu_vakt_mail_sent_total",
                "Meddelanden som SMTP-servern tog emot.",
                &self.mail_sent,
            ),
            (
                "svu_vakt_mail_failed_total",
                "Leveransförsök som misslyckades och görs om (4xx, servern nås inte).",
                &self.mail_failed,
            ),
            (
                "svu_vakt_mail_refused_total",
                "Meddelanden som SMTP-servern vägrade permanent (skickas inte igen).",
                &self.mail_refused,
            ),
            (
                "svu_vakt_feed_files_imported_total",
                "Filer i inkorgen som lästes in och flyttades till done/.",
                &self.feed_files_imported,
            ),
            (
                "svu_vakt_feed_files_failed_total",
                "Filer i inkorgen med felaktiga rader, flyttade till failed/ med en rapport.",
                &self.feed_files_failed,
            ),
            (
                "svu_vakt_feed_files_repeated_total",
                "Filer i inkorgen vars innehåll redan var inläst (ingen ändring).",
                &self.feed_files_repeated,
            ),
            (
                "svu_vakt_feed_events_stored_total",
                "Händelser sparade från filer i inkorgen (räknas även i events_ingested).",
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
        let _ = writeln!(out, "# HELP {name} Svarstid för HTTP-anrop.\n# TYPE {name} histogram");
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
