//! Process metrics, written by `prometheus-client` in the OpenMetrics text
//! format (escaping and types by construction): ingest, scan, mail and
//! drop-folder counters, the outbox gauges, and HTTP request latency.
//! Every label value comes from a closed set — the method from the known
//! methods (else `other`), the route from the registered patterns (else
//! `unmatched`), the status code — so no request can add a series of its own.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

const BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The methods a request's label may name; anything else is `other`.
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

/// The counters' names (the prefix and `_total` are added) and Swedish help.
const COUNTERS: [(&str, &str); 20] = [
    ("events_ingested", "Händelser sparade vid inläsning."),
    (
        "events_duplicate",
        "Händelser som kom igen med samma innehåll (ingen ändring).",
    ),
    ("events_rejected", "Ogiltiga rader i avvisade batcher."),
    ("events_conflict", "Händelse-id som kom igen med annat innehåll."),
    ("batches_rejected", "Inläsningsbatcher som avvisades hela."),
    ("scans", "Granskningar som denna process slutförde."),
    ("scans_failed", "Granskningar som misslyckades (se scan_runs)."),
    (
        "deviations_filed",
        "Avvikelser registrerade av granskningar i denna process.",
    ),
    (
        "deviations_withdrawn",
        "Avvikelser återkallade av granskningar i denna process.",
    ),
    (
        "deviations_unmailed",
        "Avvikelser registrerade utan e-post (äldre än mail.max_age_days).",
    ),
    ("mail_sent", "Meddelanden som SMTP-servern tog emot."),
    (
        "mail_failed",
        "Leveransförsök som misslyckades och görs om (4xx, servern nås inte).",
    ),
    (
        "mail_refused",
        "Meddelanden som SMTP-servern vägrade permanent (skickas inte igen).",
    ),
    ("webhook_sent", "Rapporter som ett avvikelsesystem (webhook) tog emot."),
    (
        "webhook_failed",
        "Försök till avvikelsesystem som misslyckades och görs om (inget svar, 5xx, 429).",
    ),
    (
        "webhook_refused",
        "Rapporter som ett avvikelsesystem vägrade permanent (skickas inte igen).",
    ),
    (
        "feed_files_imported",
        "Filer i inkorgen som lästes in och flyttades till done/.",
    ),
    (
        "feed_files_failed",
        "Filer i inkorgen med felaktiga rader, flyttade till failed/ med en rapport.",
    ),
    (
        "feed_files_repeated",
        "Filer i inkorgen vars innehåll redan var inläst (ingen ändring).",
    ),
    (
        "feed_events_stored",
        "Händelser sparade från filer i inkorgen (räknas även i events_ingested).",
    ),
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

fn request_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

pub struct Metrics {
    pub events_ingested: Counter,
    pub events_duplicate: Counter,
    pub events_rejected: Counter,
    pub batches_rejected: Counter,
    pub events_conflict: Counter,
    pub scans: Counter,
    pub scans_failed: Counter,
    pub deviations_filed: Counter,
    pub deviations_withdrawn: Counter,
    pub deviations_unmailed: Counter,
    pub mail_sent: Counter,
    pub mail_failed: Counter,
    pub mail_refused: Counter,
    pub webhook_sent: Counter,
    pub webhook_failed: Counter,
    pub webhook_refused: Counter,
    pub feed_files_imported: Counter,
    pub feed_files_failed: Counter,
    pub feed_files_repeated: Counter,
    pub feed_events_stored: Counter,
    outbox_failed: Gauge,
    outbox_pending: Gauge,
    http: Family<RequestLabels, Histogram, fn() -> Histogram>,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut m = Metrics {
            events_ingested: Counter::default(),
            events_duplicate: Counter::default(),
            events_rejected: Counter::default(),
            batches_rejected: Counter::default(),
            events_conflict: Counter::default(),
            scans: Counter::default(),
            scans_failed: Counter::default(),
            deviations_filed: Counter::default(),
            deviations_withdrawn: Counter::default(),
            deviations_unmailed: Counter::default(),
            mail_sent: Counter::default(),
            mail_failed: Counter::default(),
            mail_refused: Counter::default(),
            webhook_sent: Counter::default(),
            webhook_failed: Counter::default(),
            webhook_refused: Counter::default(),
            feed_files_imported: Counter::default(),
            feed_files_failed: Counter::default(),
            feed_files_repeated: Counter::default(),
            feed_events_stored: Counter::default(),
            outbox_failed: Gauge::default(),
            outbox_pending: Gauge::default(),
            http: Family::new_with_constructor(request_histogram as fn() -> Histogram),
            registry: Registry::default(),
        };
        m.register();
        m
    }
}

impl Metrics {
    pub fn add(counter: &Counter, n: usize) {
        counter.inc_by(n as u64);
    }

    /// A request's method as the labels and the log name it: a known
    /// method, else `other`.
    pub fn method_label(method: &str) -> &'static str {
        METHODS.iter().copied().find(|m| *m == method).unwrap_or("other")
    }

    /// Counts a request under the closed set of labels (module doc).
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let method = Metrics::method_label(method);
        let labels = RequestLabels {
            method,
            route: route.to_string(),
            status,
        };
        self.http.get_or_create(&labels).observe(seconds);
    }

    /// The text a scrape gets, with the outbox as the database has it (every
    /// instance's work) when it could be read.
    pub fn render(&self, outbox: Option<(i64, i64)>) -> String {
        if let Some((failed, pending)) = outbox {
            self.outbox_failed.set(failed);
            self.outbox_pending.set(pending);
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The counters, in the order of [`COUNTERS`].
    fn counters(&self) -> [&Counter; 20] {
        [
            &self.events_ingested,
            &self.events_duplicate,
            &self.events_rejected,
            &self.events_conflict,
            &self.batches_rejected,
            &self.scans,
            &self.scans_failed,
            &self.deviations_filed,
            &self.deviations_withdrawn,
            &self.deviations_unmailed,
            &self.mail_sent,
            &self.mail_failed,
            &self.mail_refused,
            &self.webhook_sent,
            &self.webhook_failed,
            &self.webhook_refused,
            &self.feed_files_imported,
            &self.feed_files_failed,
            &self.feed_files_repeated,
            &self.feed_events_stored,
        ]
    }

    fn register(&mut self) {
        let mut registry = Registry::with_prefix("svu_vakt");
        for ((name, help), counter) in COUNTERS.into_iter().zip(self.counters()) {
            registry.register(name, help, counter.clone());
        }
        registry.register(
            "outbox_failed",
            "Meddelanden och webhookrapporter som vägrats permanent, i utkorgen.",
            self.outbox_failed.clone(),
        );
        registry.register(
            "outbox_pending",
            "Meddelanden och webhookrapporter som väntar på att skickas.",
            self.outbox_pending.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Svarstid för HTTP-anrop.",
            self.http.clone(),
        );
        self.registry = registry;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_methods_share_one_series_and_labels_are_escaped() {
        let m = Metrics::default();
        for i in 0..50 {
            m.observe_request(&format!("BREW{i}"), "unmatched", 405, 0.001);
        }
        m.observe_request(&"X".repeat(8000), "unmatched", 405, 0.001);
        m.observe_request("GET", "/a\"b", 200, 0.001);
        let text = m.render(Some((1, 2)));
        let series = text.lines().filter(|l| l.contains("_count{")).count();
        assert_eq!(series, 2, "{text}");
        assert!(
            text.contains("method=\"other\",route=\"unmatched\",status=\"405\""),
            "{text}"
        );
        assert!(!text.contains("XXXX") && !text.contains("BREW"), "{text}");
        assert!(text.contains("route=\"/a\\\"b\""), "{text}");
        assert!(text.contains("svu_vakt_outbox_pending 2"), "{text}");
        assert!(text.contains("svu_vakt_events_ingested_total 0"), "{text}");
    }
}
