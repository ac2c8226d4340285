//! The server's figures as the API shows them: the Prometheus text format for `/metrics`, the response
//! times and the history samples of the dashboard. Every figure is read from the core [`Monitor`] (lookups,
//! API requests, in-flight requests, samples) or from the cache's own counters: one source, so the
//! dashboard, `/metrics`, the CSV log, `technic report` and the alerts agree.

use std::fmt::Write as _;

use technic_core::Monitor;
use technic_core::cache::CacheStats;
use technic_core::monitor::MonitorTotals;

use crate::dto::{MetricsSample, ResponseTimesDto};

/// Response-time figures: lookup means (cached and not) and API request percentiles.
pub fn response_times(t: &MonitorTotals) -> ResponseTimesDto {
    let (cached, uncached) = (t.avg_cached_ms, t.avg_uncached_ms);
    ResponseTimesDto {
        avg_cached_ms: cached,
        avg_uncached_ms: uncached,
        speedup: if cached > 0.0 && uncached > 0.0 {
            uncached / cached
        } else {
            0.0
        },
        p50_ms: t.http_p50_ms,
        p95_ms: t.http_p95_ms,
        p99_ms: t.http_p99_ms,
    }
}

/// The dashboard's samples of the last `minutes`, oldest first.
pub fn history(monitor: &Monitor, minutes: u64) -> Vec<MetricsSample> {
    let minutes = i64::try_from(minutes).unwrap_or(i64::MAX).min(100_000);
    let since = monitor.now() - chrono::Duration::minutes(minutes);
    monitor
        .history(since)
        .into_iter()
        .map(|s| MetricsSample {
            timestamp: s.at,
            // The interval's own hit rate; none when it had no lookups (nothing to show).
            hit_rate: (s.requests > 0).then_some(s.cache_hit_rate),
            avg_response_ms: s.avg_response_ms,
            avg_cached_ms: s.avg_cached_ms,
            avg_uncached_ms: s.avg_uncached_ms,
            lookups: s.requests,
            error_rate: s.error_rate,
            api_requests: s.http_requests,
            api_avg_ms: s.http_avg_ms,
            api_error_rate: s.http_error_rate,
            active_connections: s.active_connections,
        })
        .collect()
}

/// The Prometheus text exposition of the monitor's figures and the cache's.
pub fn prometheus(t: &MonitorTotals, cache: &CacheStats, scans_running: usize) -> String {
    let rt = response_times(t);

    let mut out = String::with_capacity(2048);
    let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
    };
    metric(
        "technic_http_requests_total",
        "counter",
        "API requests answered.",
        t.http_requests as f64,
    );
    metric(
        "technic_http_server_errors_total",
        "counter",
        "API requests that ended in a 5xx.",
        t.http_errors as f64,
    );
    metric(
        "technic_http_requests_in_flight",
        "gauge",
        "API requests being answered now.",
        t.active_connections as f64,
    );
    metric(
        "technic_lookups_total",
        "counter",
        "Symbol data lookups (scans and the API).",
        t.requests as f64,
    );
    metric(
        "technic_lookups_cached_total",
        "counter",
        "Lookups answered from the memory cache or the store without the provider.",
        t.cached as f64,
    );
    metric(
        "technic_lookups_failed_total",
        "counter",
        "Lookups that failed.",
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
        t.http_seconds,
        t.http_requests
    );
    out
}

/// Appends the per-tier counters of a two-tier cache (nothing for one tier).
pub fn tiers(out: &mut String, tiers: &[technic_core::cache::TierStats]) {
    if tiers.is_empty() {
        return;
    }
    for (name, help, get) in [
        (
            "technic_cache_tier_hits_total",
            "Lookups a cache tier answered.",
            (|t: &technic_core::cache::TierStats| t.hits as f64)
                as fn(&technic_core::cache::TierStats) -> f64,
        ),
        (
            "technic_cache_tier_misses_total",
            "Lookups a cache tier could not answer.",
            |t| t.misses as f64,
        ),
        ("technic_cache_tier_up", "1 when the tier is reachable.", |t| {
            f64::from(u8::from(t.up))
        }),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}");
        let kind = if name.ends_with("_up") { "gauge" } else { "counter" };
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for t in tiers {
            let _ = writeln!(out, "{name}{{tier=\"{}\"}} {}", t.name, get(t));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use technic_core::MonitorConfig;

    use super::*;

    #[test]
    fn figures_come_from_the_monitor() {
        let m = Monitor::new(MonitorConfig {
            csv_path: None,
            ..MonitorConfig::default()
        });
        m.record(Duration::from_millis(2), true, false);
        m.record(Duration::from_millis(20), false, false);
        m.record(Duration::from_millis(20), false, true);
        m.record_request(Duration::from_millis(4), false);
        m.record_request(Duration::from_millis(6), true);
        let t = m.totals();
        let rt = response_times(&t);
        assert!((rt.avg_cached_ms - 2.0).abs() < 1e-9);
        assert!((rt.avg_uncached_ms - 20.0).abs() < 1e-9);
        assert!((rt.speedup - 10.0).abs() < 1e-9);
        assert!(rt.p50_ms >= 3.9 && rt.p50_ms <= 4.1, "{rt:?}");
        m.sample_fine();
        m.record_request(Duration::from_millis(1), false);
        m.sample_fine();
        let h = history(&m, 10);
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].hit_rate, Some(1.0 / 3.0));
        assert_eq!((h[0].lookups, h[0].api_requests), (3, 2));
        assert_eq!(h[0].api_error_rate, 0.5);
        assert_eq!(h[1].hit_rate, None, "no lookups in the second interval");
        assert_eq!(h[1].avg_cached_ms, None);
        let cache = CacheStats::from_counts(3, 1);
        let text = prometheus(&m.totals(), &cache, 1);
        assert!(text.contains("technic_http_requests_total 3\n"), "{text}");
        assert!(text.contains("technic_http_server_errors_total 1\n"));
        assert!(text.contains("technic_lookups_total 3\n"));
        assert!(text.contains("technic_lookups_failed_total 1\n"));
        assert!(text.contains("technic_cache_hit_ratio 0.75\n"));
        assert!(text.contains("technic_http_request_duration_seconds_count 3"));
    }
}
