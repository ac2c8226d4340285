//! The performance monitor: counts requests (cached or not), their latencies and errors; every interval
//! (default 5 minutes) it takes a [`MetricSample`], keeps it in the store and in a CSV file, and checks
//! the alert rules (with cooldowns), keeping and logging every alert that fires.
//!
//! A "request" is whatever the frontend measures: the scan pipeline records one per symbol fetched
//! (cached when the memory cache or the store answered without the provider); the HTTP server will record
//! one per API call. [`Monitor::run`] is the background task; it stops when its token is cancelled.

mod rules;
mod types;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

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
    /// Requests recorded.
    pub requests: u64,
    /// Requests answered from a cache.
    pub cached: u64,
    /// Requests that failed.
    pub errors: u64,
    /// `cached / requests`.
    pub cache_hit_rate: f64,
    /// `errors / requests`.
    pub error_rate: f64,
    /// Mean latency of cached requests, in milliseconds.
    pub avg_cached_ms: f64,
    /// Mean latency of uncached requests, in milliseconds.
    pub avg_uncached_ms: f64,
    /// 99th percentile of cached requests, in milliseconds.
    pub p99_cached_ms: f64,
    /// 99th percentile of uncached requests, in milliseconds.
    pub p99_uncached_ms: f64,
    /// Connections open now.
    pub active_connections: u64,
}

#[derive(Debug)]
struct Latencies {
    cached: Histogram<u64>,
    uncached: Histogram<u64>,
    errors: u64,
    /// Exact sums (the histograms' means are rounded to their precision).
    sum_cached_us: u64,
    sum_uncached_us: u64,
}

impl Latencies {
    fn new() -> Self {
        Self {
            cached: latency_histogram(),
            uncached: latency_histogram(),
            errors: 0,
            sum_cached_us: 0,
            sum_uncached_us: 0,
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

    fn requests(&self) -> u64 {
        self.cached.len() + self.uncached.len()
    }
}

/// Counters and latency histograms, sampled on an interval. Share it as `Arc<Monitor>`.
#[derive(Debug)]
pub struct Monitor {
    config: MonitorConfig,
    /// Since the last sample.
    window: Mutex<Latencies>,
    /// Since start.
    total: Mutex<Latencies>,
    active_connections: AtomicU64,
    cooldowns: Mutex<Cooldowns>,
    /// Whether cooldowns were seeded from the store's recent alerts.
    seeded: AtomicBool,
    /// The most recent alerts fired by this monitor, newest last.
    recent: Mutex<std::collections::VecDeque<Alert>>,
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

impl Monitor {
    /// A monitor with `config`.
    pub fn new(config: MonitorConfig) -> Self {
        Self {
            config,
            window: Mutex::new(Latencies::new()),
            total: Mutex::new(Latencies::new()),
            active_connections: AtomicU64::new(0),
            cooldowns: Mutex::new(Cooldowns::default()),
            seeded: AtomicBool::new(false),
            recent: Mutex::new(std::collections::VecDeque::new()),
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

    /// Records one request that took `latency`, answered from a cache or not, failed or not.
    pub fn record(&self, latency: Duration, cached: bool, failed: bool) {
        let micros = latency.as_micros().min(u128::from(u64::MAX)) as u64;
        for l in [&self.window, &self.total] {
            l.lock()
                .unwrap_or_else(|e| e.into_inner())
                .record(micros, cached, failed);
        }
    }

    /// Sets the number of open connections (reported in samples).
    pub fn set_active_connections(&self, n: u64) {
        self.active_connections.store(n, Ordering::Relaxed);
    }

    /// Figures since the monitor started.
    pub fn totals(&self) -> MonitorTotals {
        let t = self.total.lock().unwrap_or_else(|e| e.into_inner());
        let requests = t.requests();
        MonitorTotals {
            requests,
            cached: t.cached.len(),
            errors: t.errors,
            cache_hit_rate: ratio(t.cached.len(), requests),
            error_rate: ratio(t.errors, requests),
            avg_cached_ms: mean_ms(t.sum_cached_us, t.cached.len()),
            avg_uncached_ms: mean_ms(t.sum_uncached_us, t.uncached.len()),
            p99_cached_ms: t.cached.value_at_quantile(0.99) as f64 / 1e3,
            p99_uncached_ms: t.uncached.value_at_quantile(0.99) as f64 / 1e3,
            active_connections: self.active_connections.load(Ordering::Relaxed),
        }
    }

    /// Takes a sample of the interval since the last one and starts a new interval.
    pub fn sample(&self) -> MetricSample {
        let w = std::mem::replace(
            &mut *self.window.lock().unwrap_or_else(|e| e.into_inner()),
            Latencies::new(),
        );
        let requests = w.requests();
        MetricSample {
            at: self.clock.now(),
            cache_hit_rate: ratio(w.cached.len(), requests),
            avg_response_ms: mean_ms(w.sum_cached_us.saturating_add(w.sum_uncached_us), requests),
            active_connections: self.active_connections.load(Ordering::Relaxed),
            error_rate: ratio(w.errors, requests),
            requests,
            p95_cached_ms: w.cached.value_at_quantile(0.95) as f64 / 1e3,
            p95_uncached_ms: w.uncached.value_at_quantile(0.95) as f64 / 1e3,
        }
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
