//! Request metrics of the server: counts, server errors, latency histograms (all requests, and symbol
//! lookups answered from the cache vs. loaded), requests per minute, and a history of periodic samples
//! for the dashboard's charts. Also renders the Prometheus text format for `/metrics`.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use hdrhistogram::Histogram;
use technic_core::cache::CacheStats;

use crate::dto::{MetricsSample, ResponseTimesDto};

/// How a symbol lookup was answered, attached to the response so the middleware can time it apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// From the cache.
    Hit,
    /// Loaded from the provider.
    Miss,
}

/// Samples kept: one per interval, an hour at the default 5 s.
const HISTORY: usize = 720;

#[derive(Debug, Default)]
struct Totals {
    requests: u64,
    errors: u64,
    latency_us: u64,
    cached: (u64, u64),
    uncached: (u64, u64),
    /// The cache's hit and miss counters at the sample (set by `sample`).
    cache_hits: u64,
    cache_misses: u64,
}

/// The server's request metrics. Cheap to update from every request.
#[derive(Debug)]
pub struct ApiMetrics {
    /// Requests being answered now (the monitor's `ActiveConnections`).
    pub in_flight: AtomicU64,
    started: Instant,
    requests: AtomicU64,
    errors: AtomicU64,
    latency_us: AtomicU64,
    cached: (AtomicU64, AtomicU64),
    uncached: (AtomicU64, AtomicU64),
    histogram: Mutex<Histogram<u64>>,
    /// Requests per second over the last minute, as (second since start, count).
    per_second: Mutex<VecDeque<(u64, u64)>>,
    history: Mutex<VecDeque<MetricsSample>>,
    last_sample: Mutex<Totals>,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            in_flight: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency_us: AtomicU64::new(0),
            cached: (AtomicU64::new(0), AtomicU64::new(0)),
            uncached: (AtomicU64::new(0), AtomicU64::new(0)),
            // 1 µs to 1 h at 3 significant digits: constant, valid bounds.
            histogram: Mutex::new(
                Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds"),
            ),
            per_second: Mutex::new(VecDeque::with_capacity(64)),
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
            last_sample: Mutex::new(Totals::default()),
        }
    }
}

impl ApiMetrics {
    /// Records one finished request.
    pub fn record(&self, elapsed: Duration, server_error: bool, outcome: Option<CacheOutcome>) {
        let us = elapsed.as_micros().min(u128::from(u64::MAX)) as u64;
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.latency_us.fetch_add(us, Ordering::Relaxed);
        if server_error {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        match outcome {
            Some(CacheOutcome::Hit) => add_pair(&self.cached, us),
            Some(CacheOutcome::Miss) => add_pair(&self.uncached, us),
            None => {}
        }
        if let Ok(mut h) = self.histogram.lock() {
            let _ = h.record(us.max(1));
        }
        let second = self.started.elapsed().as_secs();
        if let Ok(mut ps) = self.per_second.lock() {
            match ps.back_mut() {
                Some((s, n)) if *s == second => *n += 1,
                _ => ps.push_back((second, 1)),
            }
            while ps.front().is_some_and(|(s, _)| *s + 60 < second) {
                ps.pop_front();
            }
        }
    }

    /// Requests finished in the last 60 seconds.
    pub fn requests_per_minute(&self) -> f64 {
        let second = self.started.elapsed().as_secs();
        self.per_second
            .lock()
            .map(|ps| {
                ps.iter()
                    .filter(|(s, _)| *s + 60 >= second)
                    .map(|(_, n)| *n)
                    .sum::<u64>() as f64
            })
            .unwrap_or(0.0)
    }

    /// Share of requests that ended in a server error (0 without requests).
    pub fn error_rate(&self) -> f64 {
        ratio(
            self.errors.load(Ordering::Relaxed),
            self.requests.load(Ordering::Relaxed),
        )
    }

    /// Response-time figures.
    pub fn response_times(&self) -> ResponseTimesDto {
        let avg = |p: &(AtomicU64, AtomicU64)| {
            let n = p.0.load(Ordering::Relaxed);
            if n == 0 {
                0.0
            } else {
                p.1.load(Ordering::Relaxed) as f64 / n as f64 / 1e3
            }
        };
        let (cached, uncached) = (avg(&self.cached), avg(&self.uncached));
        let q = |h: &Histogram<u64>, q: f64| {
            if h.is_empty() {
                0.0
            } else {
                h.value_at_quantile(q) as f64 / 1e3
            }
        };
        let (p50, p95, p99) = self
            .histogram
            .lock()
            .map(|h| (q(&h, 0.5), q(&h, 0.95), q(&h, 0.99)))
            .unwrap_or((0.0, 0.0, 0.0));
        ResponseTimesDto {
            avg_cached_ms: cached,
            avg_uncached_ms: uncached,
            speedup: if cached > 0.0 && uncached > 0.0 {
                uncached / cached
            } else {
                0.0
            },
            p50_ms: p50,
            p95_ms: p95,
            p99_ms: p99,
        }
    }

    /// Takes a sample of the interval since the previous one and adds it to the history.
    pub fn sample(&self, cache: &CacheStats, interval: Duration) {
        let now = self.totals();
        let Ok(mut last) = self.last_sample.lock() else {
            return;
        };
        let requests = now.requests - last.requests;
        let mean_ms = |d: (u64, u64), l: (u64, u64)| {
            let n = d.0 - l.0;
            (n > 0).then(|| (d.1 - l.1) as f64 / n as f64 / 1e3)
        };
        // The hit rate of this interval's lookups (none when there were none: nothing to show).
        let (hits, misses) = (
            cache.hits.saturating_sub(last.cache_hits),
            cache.misses.saturating_sub(last.cache_misses),
        );
        let sample = MetricsSample {
            timestamp: Utc::now(),
            hit_rate: (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64),
            avg_response_ms: if requests == 0 {
                0.0
            } else {
                (now.latency_us - last.latency_us) as f64 / requests as f64 / 1e3
            },
            avg_cached_ms: mean_ms(now.cached, last.cached),
            avg_uncached_ms: mean_ms(now.uncached, last.uncached),
            requests_per_minute: requests as f64 * 60.0 / interval.as_secs_f64().max(1e-3),
            error_rate: ratio(now.errors - last.errors, requests),
            cache_hits: cache.hits,
            cache_misses: cache.misses,
        };
        *last = Totals {
            cache_hits: cache.hits,
            cache_misses: cache.misses,
            ..now
        };
        if let Ok(mut h) = self.history.lock() {
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(sample);
        }
    }

    /// Samples from the last `minutes`, oldest first.
    pub fn history(&self, minutes: u64) -> Vec<MetricsSample> {
        let since =
            Utc::now() - chrono::Duration::minutes(i64::try_from(minutes).unwrap_or(i64::MAX / 60_000));
        self.history
            .lock()
            .map(|h| h.iter().filter(|s| s.timestamp >= since).copied().collect())
            .unwrap_or_default()
    }

    fn totals(&self) -> Totals {
        let pair = |p: &(AtomicU64, AtomicU64)| (p.0.load(Ordering::Relaxed), p.1.load(Ordering::Relaxed));
        Totals {
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            latency_us: self.latency_us.load(Ordering::Relaxed),
            cached: pair(&self.cached),
            uncached: pair(&self.uncached),
            cache_hits: 0,
            cache_misses: 0,
        }
    }

    /// The Prometheus text exposition of these metrics and the cache's.
    pub fn prometheus(&self, cache: &CacheStats, scans_running: usize) -> String {
        let t = self.totals();
        let rt = self.response_times();
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        metric(
            "technic_http_requests_total",
            "counter",
            "API requests answered.",
            t.requests as f64,
        );
        metric(
            "technic_http_server_errors_total",
            "counter",
            "API requests that ended in a 5xx.",
            t.errors as f64,
        );
        metric(
            "technic_cache_requests_total",
            "counter",
            "Cache lookups.",
            cache.requests as f64,
        );
        metric(
            "technic_cache_hits_total",
            "counter",
            "Cache lookups answered from memory.",
            cache.hits as f64,
        );
        metric(
            "technic_cache_misses_total",
            "counter",
            "Cache lookups that loaded.",
            cache.misses as f64,
        );
        metric(
            "technic_cache_hit_ratio",
            "gauge",
            "Cache hits per lookup.",
            cache.hit_rate,
        );
        metric(
            "technic_cache_entries",
            "gauge",
            "Entries in the cache.",
            cache.entries as f64,
        );
        metric(
            "technic_cache_bytes",
            "gauge",
            "Bytes held by the cache.",
            cache.bytes as f64,
        );
        metric(
            "technic_scans_running",
            "gauge",
            "Scans running now.",
            scans_running as f64,
        );
        metric(
            "technic_symbol_lookup_cached_seconds_avg",
            "gauge",
            "Mean cached symbol lookup.",
            rt.avg_cached_ms / 1e3,
        );
        metric(
            "technic_symbol_lookup_uncached_seconds_avg",
            "gauge",
            "Mean uncached symbol lookup.",
            rt.avg_uncached_ms / 1e3,
        );
        let _ = writeln!(
            out,
            "# HELP technic_http_request_duration_seconds API response time.\n\
             # TYPE technic_http_request_duration_seconds summary\n\
             technic_http_request_duration_seconds{{quantile=\"0.5\"}} {}\n\
             technic_http_request_duration_seconds{{quantile=\"0.95\"}} {}\n\
             technic_http_request_duration_seconds{{quantile=\"0.99\"}} {}\n\
             technic_http_request_duration_seconds_sum {}\n\
             technic_http_request_duration_seconds_count {}",
            rt.p50_ms / 1e3,
            rt.p95_ms / 1e3,
            rt.p99_ms / 1e3,
            t.latency_us as f64 / 1e6,
            t.requests
        );
        out
    }
}

fn add_pair(p: &(AtomicU64, AtomicU64), us: u64) {
    p.0.fetch_add(1, Ordering::Relaxed);
    p.1.fetch_add(us, Ordering::Relaxed);
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_samples() {
        let m = ApiMetrics::default();
        m.record(Duration::from_millis(2), false, Some(CacheOutcome::Hit));
        m.record(Duration::from_millis(20), false, Some(CacheOutcome::Miss));
        m.record(Duration::from_millis(4), true, None);
        let rt = m.response_times();
        assert!((rt.avg_cached_ms - 2.0).abs() < 1e-9);
        assert!((rt.avg_uncached_ms - 20.0).abs() < 1e-9);
        assert!((rt.speedup - 10.0).abs() < 1e-9);
        assert!(rt.p50_ms >= 3.9 && rt.p50_ms <= 4.1, "{rt:?}");
        assert!((m.error_rate() - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(m.requests_per_minute(), 3.0);
        let cache = CacheStats::from_counts(3, 1);
        m.sample(&cache, Duration::from_secs(5));
        m.record(Duration::from_millis(1), false, None);
        m.sample(&cache, Duration::from_secs(5));
        let h = m.history(10);
        assert_eq!(h.len(), 2);
        assert!((h[0].avg_response_ms - 26.0 / 3.0).abs() < 1e-9);
        assert_eq!(h[0].avg_cached_ms, Some(2.0));
        assert_eq!(h[1].avg_cached_ms, None);
        assert!((h[1].requests_per_minute - 12.0).abs() < 1e-9);
        // Per interval: 3 of 4 lookups hit in the first, none happened in the second.
        assert_eq!(h[0].hit_rate, Some(0.75));
        assert_eq!(h[1].hit_rate, None);
        let later = CacheStats::from_counts(5, 4);
        m.sample(&later, Duration::from_secs(5));
        assert_eq!(m.history(10)[2].hit_rate, Some(0.4));
        let text = m.prometheus(&cache, 1);
        assert!(text.contains("technic_http_requests_total 4\n"));
        assert!(text.contains("technic_cache_hit_ratio 0.75\n"));
        assert!(text.contains("# TYPE technic_http_request_duration_seconds summary"));
    }
}
