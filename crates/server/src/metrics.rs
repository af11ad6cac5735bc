//! `/metrics` in the Prometheus text format: requests by route and status, request durations
//! by route, and by ledger the events appended and the head seq.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// What `/metrics` says of one ledger.
pub struct LedgerFigures {
    pub name: String,
    /// Events appended through this server since it started.
    pub appended: u64,
    /// The head's seq (0: empty).
    pub head_seq: u64,
}

/// Upper bounds of the duration histogram, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    /// Microseconds, summed exactly.
    sum_micros: u128,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    durations: Mutex<BTreeMap<String, Histogram>>,
}

impl Metrics {
    /// One answered request: its route (the path template, never the path itself), method,
    /// status and how long it took.
    pub fn record(&self, route: &str, method: &str, status: u16, took: Duration) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((route.to_string(), method.to_string(), status))
            .or_default() += 1;
        let mut durations = self.durations.lock().unwrap_or_else(|p| p.into_inner());
        let h = durations.entry(route.to_string()).or_default();
        let secs = took.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum_micros += took.as_micros();
    }

    /// The text of `/metrics`.
    pub fn render(&self, ledgers: &[LedgerFigures]) -> String {
        let mut out = String::new();
        out.push_str("# HELP accord_http_requests_total HTTP requests answered, by route, method and status.\n");
        out.push_str("# TYPE accord_http_requests_total counter\n");
        for ((route, method, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "accord_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                label(route),
                label(method)
            );
        }
        out.push_str(
            "# HELP accord_http_request_duration_seconds Time to answer a request, by route.\n",
        );
        out.push_str("# TYPE accord_http_request_duration_seconds histogram\n");
        for (route, h) in self
            .durations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let route = label(route);
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "accord_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "accord_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "accord_http_request_duration_seconds_sum{{route=\"{route}\"}} {}.{:06}",
                h.sum_micros / 1_000_000,
                h.sum_micros % 1_000_000
            );
            let _ = writeln!(
                out,
                "accord_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP accord_events_appended_total Events appended through this server since it started, by ledger.\n");
        out.push_str("# TYPE accord_events_appended_total counter\n");
        for l in ledgers {
            let _ = writeln!(
                out,
                "accord_events_appended_total{{ledger=\"{}\"}} {}",
                l.name, l.appended
            );
        }
        out.push_str("# HELP accord_head_seq The seq of the last event, by ledger (0: empty).\n");
        out.push_str("# TYPE accord_head_seq gauge\n");
        for l in ledgers {
            let _ = writeln!(
                out,
                "accord_head_seq{{ledger=\"{}\"}} {}",
                l.name, l.head_seq
            );
        }
        out
    }
}

/// A label value, escaped as the text format says.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
