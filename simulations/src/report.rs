//! Latency histograms, JSON result lines and progress output.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::Value;

/// A latency distribution in microseconds (1 µs to 1 h, 3 significant digits).
#[derive(Clone)]
pub struct Latency {
    histogram: Histogram<u64>,
}

impl std::fmt::Debug for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Latency({})", self.summary())
    }
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// An empty distribution.
    pub fn new() -> Self {
        let histogram =
            Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds");
        Self { histogram }
    }

    /// Records one latency (saturating at the upper bound).
    pub fn record(&mut self, latency: Duration) {
        let micros = (latency.as_micros() as u64).clamp(1, 3_600_000_000);
        self.histogram.saturating_record(micros);
    }

    /// Adds another distribution.
    pub fn merge(&mut self, other: &Latency) {
        let _ = self.histogram.add(&other.histogram);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The underlying histogram (for plots).
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.histogram
    }

    /// The quantile in milliseconds.
    pub fn quantile_ms(&self, quantile: f64) -> f64 {
        self.histogram.value_at_quantile(quantile) as f64 / 1000.0
    }

    /// p50/p99/p999/max in milliseconds, for reports.
    pub fn summary(&self) -> LatencySummary {
        LatencySummary {
            count: self.count(),
            p50_ms: round(self.quantile_ms(0.5)),
            p99_ms: round(self.quantile_ms(0.99)),
            p999_ms: round(self.quantile_ms(0.999)),
            max_ms: round(self.histogram.max() as f64 / 1000.0),
        }
    }
}

/// Latency figures as reported.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

impl std::fmt::Display for LatencySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms, max {:.2} ms (n={})",
            self.p50_ms, self.p99_ms, self.p999_ms, self.max_ms, self.count
        )
    }
}

fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// Prints the machine-readable result line of a run: one JSON object on its own line.
pub fn print_result(scenario: &str, target: &str, params: Value, results: Value) {
    let line = serde_json::json!({
        "scenario": scenario,
        "target": target,
        "at_unix_ms": crate::wire::unix_nanos() / 1_000_000,
        "params": params,
        "results": results,
    });
    println!("{line}");
}

/// Prints a progress line to stderr (people watch it; machines read stdout).
pub fn progress(message: std::fmt::Arguments<'_>) {
    eprintln!("{message}");
}
