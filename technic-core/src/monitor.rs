//! The performance monitor, the one source of performance figures: counts lookups (cached or not), their
//! latencies and errors, and the HTTP server's API requests; every interval (default 5 minutes) it takes a
//! [`MetricSample`], keeps it in the store and in a CSV file, and checks the alert rules (with cooldowns),
//! keeping and logging every alert that fires. The server also takes fine samples (every 5 s) for the
//! dashboard from the same counters.
//!
//! A "lookup" is one symbol's data asked for: the scan pipeline records one per symbol fetched (cached
//! when the memory cache or the store answered without the provider), the server one per symbol API call.
//! [`Monitor::run`] is the background task; it stops when its token is cancelled.

mod rules;
mod types;

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

pub use rules::{AlertRules, Cooldowns};
pub use types::{Alert, AlertCount, MetricSample, MetricSummary, Severity, Trend};

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::profile::latency_histogram;

/// The CSV header of `logs/performance_metrics.csv`.
pub const CSV_HEADER: &str = "Timestamp,CacheHitRate,AvgResponseTime,ActiveConnections,ErrorRate";

/// How the monitor samples and alerts.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// Time between samples.
    pub interval: Duration,
    /// Where samples are appended as CSV (`None`: no file).
    pub csv_path: Option<PathBuf>,
    /// Alert thresholds and cooldown.
    pub rules: AlertRules,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5 * 60),
            csv_path: Some(PathBuf::from("logs/performance_metrics.csv")),
            rules: AlertRules::default(),
        }
    }
}

/// Figures since the monitor started (not reset by sampling).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MonitorTotals {
    /// Lookups recorded.
    pub requests: u64,
    /// Lookups answered from a cache.
    pub cached: u64,
    /// Lookups that failed.
    pub errors: u64,
    /// `cached / requests`.
    pub cache_hit_rate: f64,
    /// `errors / requests`.
    pub error_rate: f64,
    /// Mean latency of cached lookups, in milliseconds.
    pub avg_cached_ms: f64,
    /// Mean latency of uncached lookups, in milliseconds.
    pub avg_uncached_ms: f64,
    /// 99th percentile of cached lookups, in milliseconds.
    pub p99_cached_ms: f64,
    /// 99th percentile of uncached lookups, in milliseconds.
    pub p99_uncached_ms: f64,
    /// API requests being answered now.
    pub active_connections: u64,
    /// API requests answered.
    pub http_requests: u64,
    /// API requests that ended in a server error.
    pub http_errors: u64,
    /// Sum of API response times, in seconds.
    pub http_seconds: f64,
    /// Median API response time, in milliseconds.
    pub http_p50_ms: f64,
    /// 95th percentile API response time, in milliseconds.
    pub http_p95_ms: f64,
    /// 99th percentile API response time, in milliseconds.
    pub http_p99_ms: f64,
    /// API requests answered in the last 60 seconds.
    pub http_requests_last_minute: u64,
}

/// What one window (the last fine sample, the last persisted sample, or the start) has seen.
#[derive(Debug)]
struct Window {
    cached: Histogram<u64>,
    uncached: Histogram<u64>,
    errors: u64,
    /// Exact sums (the histograms' means are rounded to their precision).
    sum_cached_us: u64,
    sum_uncached_us: u64,
    http: Histogram<u64>,
    http_errors: u64,
    http_sum_us: u64,
}

impl Window {
    fn new() -> Self {
        Self {
            cached: latency_histogram(),
            uncached: latency_histogram(),
            errors: 0,
            sum_cached_us: 0,
            sum_uncached_us: 0,
            http: latency_histogram(),
            http_errors: 0,
            http_sum_us: 0,
        }
    }

    fn record(&mut self, micros: u64, cached: bool, failed: bool) {
        let (h, sum) = if cached {
            (&mut self.cached, &mut self.sum_cached_us)
        } else {
            (&mut self.uncached, &mut self.sum_uncached_us)
        };
        h.saturating_record(micros);
        *sum = sum.saturating_add(micros);
        self.errors += u64::from(failed);
    }

    fn record_http(&mut self, micros: u64, server_error: bool) {
        self.http.saturating_record(micros);
        self.http_sum_us = self.http_sum_us.saturating_add(micros);
        self.http_errors += u64::from(server_error);
    }

    fn requests(&self) -> u64 {
        self.cached.len() + self.uncached.len()
    }

    /// The sample of what this window saw, stamped `at`.
    fn sample(&self, at: DateTime<Utc>, active_connections: u64) -> MetricSample {
        let requests = self.requests();
        let mean = |sum: u64, n: u64| (n > 0).then(|| mean_ms(sum, n));
        let http = self.http.len();
        MetricSample {
            at,
            cache_hit_rate: ratio(self.cached.len(), requests),
            avg_response_ms: mean_ms(self.sum_cached_us.saturating_add(self.sum_uncached_us), requests),
            active_connections,
            error_rate: ratio(self.errors, requests),
            requests,
            p95_cached_ms: self.cached.value_at_quantile(0.95) as f64 / 1e3,
            p95_uncached_ms: self.uncached.value_at_quantile(0.95) as f64 / 1e3,
            avg_cached_ms: mean(self.sum_cached_us, self.cached.len()),
            avg_uncached_ms: mean(self.sum_uncached_us, self.uncached.len()),
            http_requests: http,
            http_avg_ms: mean_ms(self.http_sum_us, http),
            http_error_rate: ratio(self.http_errors, http),
        }
    }
}

/// The monitor's windows, updated together under one lock.
#[derive(Debug)]
struct Windows {
    /// Since the last fine sample (the dashboard's history).
    fine: Window,
    /// Since the last persisted sample (CSV log, store, alerts).
    coarse: Window,
    /// Since start.
    total: Window,
}

impl Windows {
    fn each(&mut self, f: impl Fn(&mut Window)) {
        f(&mut self.fine);
        f(&mut self.coarse);
        f(&mut self.total);
    }
}

/// Fine samples kept in memory: an hour at the server's default 5 s.
pub const FINE_HISTORY: usize = 720;

/// The one source of performance figures. Scans and the API record lookups into it, the server records
/// every API request and its in-flight count; the dashboard, `/metrics`, the CSV log, the store's
/// samples (so `technic report`) and the alert rules all read it.
///
/// Two sample streams come from the same counters: [`Monitor::sample_fine`] (the server calls it every few
/// seconds; kept in memory for the dashboard's charts) and [`Monitor::sample`] (every
/// [`MonitorConfig::interval`]; written to the CSV log and the store and checked against the rules).
/// Share it as `Arc<Monitor>`.
#[derive(Debug)]
pub struct Monitor {
    config: MonitorConfig,
    windows: Mutex<Windows>,
    in_flight: AtomicU64,
    /// API requests per second over the last minute, as (second since start, count).
    per_second: Mutex<VecDeque<(u64, u64)>>,
    started: std::time::Instant,
    /// Fine samples, oldest first.
    history: Mutex<VecDeque<MetricSample>>,
    cooldowns: Mutex<Cooldowns>,
    /// Whether cooldowns were seeded from the store's recent alerts.
    seeded: AtomicBool,
    /// The most recent alerts fired by this monitor, newest last.
    recent: Mutex<VecDeque<Alert>>,
    /// Where sample and alert times come from.
    clock: Arc<dyn Clock>,
}

impl Default for Monitor {
    fn default() -> Self {
        Self::new(MonitorConfig::default())
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn mean_ms(sum_us: u64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        sum_us as f64 / n as f64 / 1e3
    }
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

/// An API request being answered: counted in [`MonitorTotals::active_connections`] until dropped.
#[derive(Debug)]
#[must_use = "the request counts as in flight only while this lives"]
pub struct InFlight<'a>(&'a Monitor);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Monitor {
    /// A monitor with `config`.
    pub fn new(config: MonitorConfig) -> Self {
        Self {
            config,
            windows: Mutex::new(Windows {
                fine: Window::new(),
                coarse: Window::new(),
                total: Window::new(),
            }),
            in_flight: AtomicU64::new(0),
            per_second: Mutex::new(VecDeque::with_capacity(64)),
            started: std::time::Instant::now(),
            history: Mutex::new(VecDeque::with_capacity(FINE_HISTORY)),
            cooldowns: Mutex::new(Cooldowns::default()),
            seeded: AtomicBool::new(false),
            recent: Mutex::new(VecDeque::new()),
            clock: Arc::new(SystemClock),
        }
    }

    /// The same monitor on another clock (samples and alerts are stamped with its time).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Alerts this monitor fired within the last `within` (newest first): the ones still "active".
    pub fn active_alerts(&self, within: Duration) -> Vec<Alert> {
        let since = self.clock.now() - chrono::Duration::from_std(within).unwrap_or(chrono::Duration::MAX);
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.iter().rev().filter(|a| a.at >= since).cloned().collect()
    }

    /// The configuration.
    pub fn config(&self) -> &MonitorConfig {
        &self.config
    }

    fn windows(&self) -> std::sync::MutexGuard<'_, Windows> {
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one lookup that took `latency`, answered from a cache or not, failed or not.
    pub fn record(&self, latency: Duration, cached: bool, failed: bool) {
        let us = micros(latency);
        self.windows().each(|w| w.record(us, cached, failed));
    }

    /// Records one lookup that ended with `error` (or not). An unknown symbol and a cancelled lookup are
    /// not failures of the system (the caller's input, the caller's choice), so they do not count as errors
    /// for the error rate and its alert.
    pub fn record_lookup(&self, latency: Duration, cached: bool, error: Option<&Error>) {
        let failed = error.is_some_and(|e| !matches!(e, Error::NotFound { .. } | Error::Cancelled));
        self.record(latency, cached, failed);
    }

    /// Marks an API request as being answered until the guard is dropped (also when its future is
    /// dropped): the `ActiveConnections` figure.
    pub fn request_started(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// Records one answered API request.
    pub fn record_request(&self, latency: Duration, server_error: bool) {
        let us = micros(latency);
        self.windows().each(|w| w.record_http(us, server_error));
        let second = self.started.elapsed().as_secs();
        let mut ps = self.per_second.lock().unwrap_or_else(|e| e.into_inner());
        match ps.back_mut() {
            Some((s, n)) if *s == second => *n += 1,
            _ => ps.push_back((second, 1)),
        }
        while ps.front().is_some_and(|(s, _)| *s + 60 < second) {
            ps.pop_front();
        }
    }

    /// Figures since the monitor started.
    pub fn totals(&self) -> MonitorTotals {
        let second = self.started.elapsed().as_secs();
        let last_minute = self
            .per_second
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(s, _)| *s + 60 >= second)
            .map(|(_, n)| *n)
            .sum();
        let w = self.windows();
        let t = &w.total;
        let requests = t.requests();
        let q = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1e3;
        MonitorTotals {
            requests,
            cached: t.cached.len(),
            errors: t.errors,
            cache_hit_rate: ratio(t.cached.len(), requests),
            error_rate: ratio(t.errors, requests),
            avg_cached_ms: mean_ms(t.sum_cached_us, t.cached.len()),
            avg_uncached_ms: mean_ms(t.sum_uncached_us, t.uncached.len()),
            p99_cached_ms: q(&t.cached, 0.99),
            p99_uncached_ms: q(&t.uncached, 0.99),
            active_connections: self.in_flight.load(Ordering::Relaxed),
            http_requests: t.http.len(),
            http_errors: t.http_errors,
            http_seconds: t.http_sum_us as f64 / 1e6,
            http_p50_ms: q(&t.http, 0.5),
            http_p95_ms: q(&t.http, 0.95),
            http_p99_ms: q(&t.http, 0.99),
            http_requests_last_minute: last_minute,
        }
    }

    /// Takes a sample of the interval since the last one and starts a new interval (the persisted stream).
    pub fn sample(&self) -> MetricSample {
        let w = std::mem::replace(&mut self.windows().coarse, Window::new());
        w.sample(self.clock.now(), self.in_flight.load(Ordering::Relaxed))
    }

    /// Takes a fine sample of the interval since the last one, keeps it in the in-memory history
    /// (at most [`FINE_HISTORY`]) and returns it.
    pub fn sample_fine(&self) -> MetricSample {
        let w = std::mem::replace(&mut self.windows().fine, Window::new());
        let sample = w.sample(self.clock.now(), self.in_flight.load(Ordering::Relaxed));
        let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        if h.len() == FINE_HISTORY {
            h.pop_front();
        }
        h.push_back(sample.clone());
        sample
    }

    /// Fine samples taken at or after `since`, oldest first.
    pub fn history(&self, since: DateTime<Utc>) -> Vec<MetricSample> {
        let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        h.iter().filter(|s| s.at >= since).cloned().collect()
    }

    /// What this monitor's clock says.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Checks `sample` against the rules; returns the alerts that fire (those in cooldown are held back).
    pub fn evaluate(&self, sample: &MetricSample) -> Vec<Alert> {
        let mut cooldowns = self.cooldowns.lock().unwrap_or_else(|e| e.into_inner());
        self.config
            .rules
            .check(sample)
            .into_iter()
            .filter(|a| cooldowns.admit(&a.rule, self.config.rules.cooldown))
            .collect()
    }

    /// Samples, checks the rules, and keeps the sample and any alerts in `store` and the CSV file;
    /// alerts are logged (warnings as `warn`, errors as `error`). Returns the sample and the alerts.
    ///
    /// The first call seeds the cooldowns from alerts the store kept within the last cooldown, so a rule
    /// that fired in an earlier process (each `technic scan` is one) stays quiet for the rest of it.
    pub async fn sample_and_record(&self, store: Option<&dyn Store>) -> Result<(MetricSample, Vec<Alert>)> {
        if let Some(store) = store
            && !self.seeded.swap(true, Ordering::Relaxed)
        {
            self.seed_cooldowns(store).await?;
        }
        let sample = self.sample();
        let alerts = self.evaluate(&sample);
        {
            let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            recent.extend(alerts.iter().cloned());
            while recent.len() > 100 {
                recent.pop_front();
            }
        }
        for a in &alerts {
            match a.severity {
                Severity::Warning => {
                    warn!(rule = %a.rule, value = a.value, threshold = a.threshold, "{}", a.message)
                }
                Severity::Error => {
                    error!(rule = %a.rule, value = a.value, threshold = a.threshold, "{}", a.message)
                }
            }
        }
        // Both destinations are tried whatever happens to the other; the first failure is returned.
        let csv = match &self.config.csv_path {
            // One short line every few minutes: cheaper inline than a trip to the blocking pool.
            Some(path) => append_csv(path, &sample),
            None => Ok(()),
        };
        let stored = match store {
            Some(store) => {
                let mut saved = store.save_metric_sample(&sample).await;
                for a in &alerts {
                    let r = store.save_alert(a).await;
                    saved = saved.and(r);
                }
                saved
            }
            None => Ok(()),
        };
        csv.and(stored)?;
        Ok((sample, alerts))
    }

    async fn seed_cooldowns(&self, store: &dyn Store) -> Result<()> {
        let cooldown = self.config.rules.cooldown;
        let now = self.clock.now();
        let since = now - chrono::Duration::from_std(cooldown).unwrap_or(chrono::Duration::MAX);
        let recent = store.alerts(since).await?;
        let mut cooldowns = self.cooldowns.lock().unwrap_or_else(|e| e.into_inner());
        for a in recent {
            let age = (now - a.at).to_std().unwrap_or(Duration::ZERO);
            cooldowns.seed(&a.rule, age);
        }
        Ok(())
    }

    /// Samples every interval until `cancel` fires. A failed write is logged and sampling goes on.
    pub async fn run(self: Arc<Self>, store: Option<Arc<dyn Store>>, cancel: CancellationToken) {
        let mut ticks = tokio::time::interval_at(
            tokio::time::Instant::now() + self.config.interval,
            self.config.interval,
        );
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                _ = ticks.tick() => {}
            }
            if let Err(e) = self.sample_and_record(store.as_deref()).await {
                warn!(error = %e, "could not record a performance sample");
            }
        }
    }
}

/// Appends one sample to the CSV file, writing the header first when the file is new or empty.
pub fn append_csv(path: &Path, s: &MetricSample) -> Result<()> {
    let fail = |e: std::io::Error| Error::Store {
        detail: format!("cannot write {}: {e}", path.display()),
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(fail)?;
    let mut line = String::new();
    if file.metadata().map_err(fail)?.len() == 0 {
        line.push_str(CSV_HEADER);
        line.push('\n');
    }
    line.push_str(&format!(
        "{},{:.4},{:.3},{},{:.4}\n",
        s.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        s.cache_hit_rate,
        s.avg_response_ms,
        s.active_connections,
        s.error_rate
    ));
    file.write_all(line.as_bytes()).map_err(fail)
}

#[cfg(test)]
mod tests;
