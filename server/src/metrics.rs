//! Prometheus metrics, hand-written in the text exposition format.
//!
//! A handful of counters do not justify a metrics framework: atomics for the hot counters, a
//! small locked map for requests by route and status, and gauges read from the database at
//! scrape time. Labels are route templates, status codes and device ids: no personal data.

use crate::backend::Gauges;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    /// Operations applied by pushes.
    pub ops_applied: AtomicU64,
    /// Operations of pushes the server already held.
    pub ops_duplicate: AtomicU64,
    /// Operations refused by pushes.
    pub ops_rejected: AtomicU64,
    /// Operations sent by pulls.
    pub ops_pulled: AtomicU64,
    /// Request body bytes after decompression.
    pub bytes_in: AtomicU64,
    /// Response body bytes before compression.
    pub bytes_out: AtomicU64,
}

impl Metrics {
    /// Count one answered request.
    pub fn request(&self, route: &str, status: u16) {
        if let Ok(mut map) = self.requests.lock() {
            *map.entry((route.to_owned(), status)).or_insert(0) += 1;
        }
    }

    /// Add to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The exposition text.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter(
            "doorstep_ops_applied_total",
            "Pushed operations applied.",
            self.ops_applied.load(Ordering::Relaxed),
        );
        counter(
            "doorstep_ops_duplicate_total",
            "Pushed operations the server already held.",
            self.ops_duplicate.load(Ordering::Relaxed),
        );
        counter(
            "doorstep_ops_rejected_total",
            "Pushed operations refused (scope, role, clock).",
            self.ops_rejected.load(Ordering::Relaxed),
        );
        counter(
            "doorstep_ops_pulled_total",
            "Operations sent in pull pages.",
            self.ops_pulled.load(Ordering::Relaxed),
        );
        counter(
            "doorstep_body_bytes_in_total",
            "Request body bytes after decompression.",
            self.bytes_in.load(Ordering::Relaxed),
        );
        counter(
            "doorstep_body_bytes_out_total",
            "Response body bytes before compression.",
            self.bytes_out.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP doorstep_http_requests_total Requests answered, by route and status.\n\
             # TYPE doorstep_http_requests_total counter"
        );
        if let Ok(map) = self.requests.lock() {
            for ((route, status), n) in map.iter() {
                let _ = writeln!(
                    out,
                    "doorstep_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                    route.replace(['\\', '"', '\n'], "_")
                );
            }
        }
        let mut gauge = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        gauge(
            "doorstep_devices_active",
            "Enrolled devices not revoked.",
            gauges.devices_active,
        );
        gauge(
            "doorstep_devices_revoked",
            "Revoked devices.",
            gauges.devices_revoked,
        );
        gauge(
            "doorstep_quarantined_ops",
            "Operations in quarantine.",
            gauges.quarantined,
        );
        gauge(
            "doorstep_feed_rows",
            "Operations in the feed.",
            gauges.feed_rows,
        );
        if let Some((taken, waited)) = gauges.feed_lock {
            let _ = writeln!(
                out,
                "# HELP doorstep_feed_lock_acquisitions_total Feed lock taken by this instance (PostgreSQL).\n\
                 # TYPE doorstep_feed_lock_acquisitions_total counter\n\
                 doorstep_feed_lock_acquisitions_total {taken}\n\
                 # HELP doorstep_feed_lock_wait_seconds_total Time this instance waited for the feed lock (PostgreSQL).\n\
                 # TYPE doorstep_feed_lock_wait_seconds_total counter\n\
                 doorstep_feed_lock_wait_seconds_total {:.6}",
                waited as f64 / 1e9
            );
        }
        let _ = writeln!(
            out,
            "# HELP doorstep_device_clock_offset_ms Server time minus device time at the last request.\n\
             # TYPE doorstep_device_clock_offset_ms gauge"
        );
        for (device, offset) in &gauges.clock_offsets {
            let _ = writeln!(
                out,
                "doorstep_device_clock_offset_ms{{device=\"{device}\"}} {offset}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_labels() {
        let m = Metrics::default();
        m.request("/v1/sync/push", 200);
        m.request("/v1/sync/push", 200);
        Metrics::add(&m.ops_applied, 3);
        let text = m.render(&Gauges::default());
        assert!(
            text.contains("doorstep_http_requests_total{route=\"/v1/sync/push\",status=\"200\"} 2")
        );
        assert!(text.contains("doorstep_ops_applied_total 3"));
        assert!(text.contains("# TYPE doorstep_devices_active gauge"));
    }
}
