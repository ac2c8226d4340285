//! Counts the server's calls to its data provider: calls in flight, the most at once, and the total, so
//! the dashboard's connection-pool panel shows measured figures.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::BoxFuture;
use technic_core::provider::{CallLayer, Layered, Op};
use technic_core::{DataProvider, Result};

use crate::dto::PoolDto;

/// Call counters shared by a [`CountingProvider`] and the metrics endpoint.
#[derive(Debug, Default)]
pub struct PoolCounters {
    active: AtomicU64,
    peak: AtomicU64,
    requests: AtomicU64,
}

impl PoolCounters {
    /// The figures as the API reports them (all measured here: calls in flight, their peak, the total).
    pub fn snapshot(&self) -> PoolDto {
        PoolDto {
            in_flight: self.active.load(Ordering::Relaxed),
            peak_in_flight: self.peak(),
            total: self.requests.load(Ordering::Relaxed),
        }
    }

    /// The most calls that were in flight at once.
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

/// Counts calls in flight around every provider call (a [`CallLayer`]).
#[derive(Debug)]
pub struct CallCounter(Arc<PoolCounters>);

/// A provider whose calls are counted; every other method is the inner provider's (see [`Layered`]).
pub type CountingProvider = Layered<CallCounter>;

/// Wraps `inner`, counting into `counters`.
pub fn counting(inner: Arc<dyn DataProvider>, counters: Arc<PoolCounters>) -> CountingProvider {
    Layered::new(inner, CallCounter(counters))
}

/// Settles the in-flight count when the call ends, however it ends (a dropped future included).
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

impl CallLayer for CallCounter {
    fn around<'a, T: Send + 'a>(&'a self, _what: &'a str, op: Op<'a, T>) -> BoxFuture<'a, Result<T>> {
        Box::pin(async move {
            let _call = InFlight::start(&self.0);
            op().await
        })
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
        let p = counting(inner.clone(), counters.clone());
        let u = p.universe().await.unwrap();
        let range = inner.data_range();
        futures::future::join_all(u.iter().map(|e| p.daily_bars(&e.symbol, range))).await;
        let s = counters.snapshot();
        assert_eq!((s.total, s.in_flight), (6, 0));
        assert!(s.peak_in_flight >= 1);
    }
}
