//! Query profiling: every store query is timed under a name; slow ones are logged; counts and latency
//! percentiles (HdrHistogram) are available to the monitor.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tracing::warn;

/// Queries slower than this are logged as warnings with their name.
pub const SLOW_QUERY: Duration = Duration::from_millis(100);

/// Counts and latency percentiles of one named query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryStats {
    /// The query's name (e.g. `load_bar_blocks`).
    pub name: String,
    /// Times it ran.
    pub count: u64,
    /// Times it failed.
    pub errors: u64,
    /// Median latency, in milliseconds.
    pub p50_ms: f64,
    /// 95th percentile latency, in milliseconds.
    pub p95_ms: f64,
    /// 99th percentile latency, in milliseconds.
    pub p99_ms: f64,
    /// Slowest run, in milliseconds.
    pub max_ms: f64,
    /// Runs slower than [`SLOW_QUERY`].
    pub slow: u64,
}

#[derive(Debug)]
struct Entry {
    latency_us: Histogram<u64>,
    errors: u64,
    slow: u64,
}

/// Latency histograms per query name.
#[derive(Debug, Default)]
pub struct QueryProfile {
    entries: Mutex<BTreeMap<&'static str, Entry>>,
}

impl QueryProfile {
    /// Runs `f` as the query `name`, recording its latency and whether it failed.
    pub fn time<T, E>(&self, name: &'static str, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        let started = Instant::now();
        let result = f();
        self.record(name, started.elapsed(), result.is_err());
        result
    }

    /// Records one run of `name` that took `elapsed`.
    pub fn record(&self, name: &'static str, elapsed: Duration, failed: bool) {
        let slow = elapsed > SLOW_QUERY;
        if slow {
            warn!(
                query = name,
                elapsed_ms = elapsed.as_secs_f64() * 1e3,
                "slow store query"
            );
        }
        // A poisoned lock only means another thread panicked mid-record; the counts are still usable.
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.entry(name).or_insert_with(|| Entry {
            latency_us: latency_histogram(),
            errors: 0,
            slow: 0,
        });
        entry
            .latency_us
            .saturating_record(elapsed.as_micros().min(u64::MAX as u128) as u64);
        entry.errors += u64::from(failed);
        entry.slow += u64::from(slow);
    }

    /// A snapshot of every query's figures, by name.
    pub fn stats(&self) -> Vec<QueryStats> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .map(|(name, e)| {
                let q = |p: f64| e.latency_us.value_at_quantile(p) as f64 / 1e3;
                QueryStats {
                    name: (*name).to_owned(),
                    count: e.latency_us.len(),
                    errors: e.errors,
                    p50_ms: q(0.50),
                    p95_ms: q(0.95),
                    p99_ms: q(0.99),
                    max_ms: e.latency_us.max() as f64 / 1e3,
                    slow: e.slow,
                }
            })
            .collect()
    }

    /// How many times `name` ran.
    pub fn count(&self, name: &str) -> u64 {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(name).map_or(0, |e| e.latency_us.len())
    }
}

/// A histogram of microseconds from 1 µs to one hour with three significant figures; longer values
/// saturate at one hour.
pub(crate) fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("bounds 1..1h with precision 3 are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_errors_slow_runs_and_percentiles() {
        let p = QueryProfile::default();
        for ms in 1..=100u64 {
            p.record("q", Duration::from_millis(ms), false);
        }
        p.record("q", Duration::from_millis(250), true);
        let _ = p.time("other", || Err::<(), _>("boom"));
        let stats = p.stats();
        let q = stats.iter().find(|s| s.name == "q").unwrap();
        assert_eq!(q.count, 101);
        assert_eq!(q.errors, 1);
        assert_eq!(q.slow, 1);
        assert!((q.p50_ms - 51.0).abs() < 0.5, "{q:?}");
        assert!(q.max_ms >= 249.0, "{q:?}");
        assert_eq!(p.count("other"), 1);
        assert_eq!(stats.iter().find(|s| s.name == "other").unwrap().errors, 1);
    }
}
