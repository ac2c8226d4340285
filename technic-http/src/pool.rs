//! Counts the server's calls to its data provider: calls in flight, the most at once, and the total, so
//! the dashboard's connection-pool panel shows measured figures.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use technic_core::{Bars, DataProvider, DateRange, Result, Symbol, Universe};

use crate::dto::PoolDto;

/// Call counters shared by a [`CountingProvider`] and the metrics endpoint.
#[derive(Debug, Default)]
pub struct PoolCounters {
    active: AtomicU64,
    peak: AtomicU64,
    requests: AtomicU64,
}

impl PoolCounters {
    /// The figures as the API reports them; `max` is the configured limit of concurrent calls.
    pub fn snapshot(&self, max: u64) -> PoolDto {
        let active = self.active.load(Ordering::Relaxed);
        PoolDto {
            active,
            idle: max.saturating_sub(active),
            max,
            reuse_rate: None,
            requests: self.requests.load(Ordering::Relaxed),
        }
    }

    /// The most calls that were in flight at once.
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

/// Wraps a provider and counts its calls.
#[derive(Debug)]
pub struct CountingProvider {
    inner: Arc<dyn DataProvider>,
    counters: Arc<PoolCounters>,
}

impl CountingProvider {
    /// Wraps `inner`, counting into `counters`.
    pub fn new(inner: Arc<dyn DataProvider>, counters: Arc<PoolCounters>) -> Self {
        Self { inner, counters }
    }
}

struct InFlight<'a>(&'a PoolCounters);

impl<'a> InFlight<'a> {
    fn start(c: &'a PoolCounters) -> Self {
        c.requests.fetch_add(1, Ordering::Relaxed);
        let now = c.active.fetch_add(1, Ordering::Relaxed) + 1;
        c.peak.fetch_max(now, Ordering::Relaxed);
        Self(c)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

#[async_trait]
impl DataProvider for CountingProvider {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn is_demo(&self) -> bool {
        self.inner.is_demo()
    }
    fn default_range(&self) -> DateRange {
        self.inner.default_range()
    }
    async fn universe(&self) -> Result<Universe> {
        let _call = InFlight::start(&self.counters);
        self.inner.universe().await
    }
    async fn daily_bars(&self, symbol: &Symbol, range: DateRange) -> Result<Bars> {
        let _call = InFlight::start(&self.counters);
        self.inner.daily_bars(symbol, range).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use technic_core::{SyntheticConfig, SyntheticProvider};

    #[tokio::test]
    async fn counts_calls_in_flight() {
        let counters = Arc::new(PoolCounters::default());
        let inner = Arc::new(SyntheticProvider::new(SyntheticConfig {
            n_symbols: 5,
            ..Default::default()
        }));
        let p = CountingProvider::new(inner.clone(), counters.clone());
        let u = p.universe().await.unwrap();
        let range = p.default_range();
        futures::future::join_all(u.iter().map(|e| p.daily_bars(&e.symbol, range))).await;
        let s = counters.snapshot(32);
        assert_eq!((s.requests, s.active, s.idle, s.max), (6, 0, 32, 32));
        assert!(counters.peak() >= 1);
    }
}
