//! [`Layered`]: the one way to wrap a [`DataProvider`]. A [`CallLayer`] runs around every provider call
//! (retries, counting, timing); `Layered` forwards every method of the trait to the inner provider in this
//! one place, so a wrapper can never drop a method (a hand-written forwarder once lost `stats()`).

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use futures::future::BoxFuture;

use super::{DataProvider, ProviderStats};
use crate::error::Result;
use crate::model::{Bar, Bars, DateRange, Symbol, Universe};

/// A call that can be made again (a layer that retries runs it more than once).
pub type Op<'a, T> = &'a (dyn Fn() -> BoxFuture<'a, Result<T>> + Send + Sync);

/// What a layer does around each provider call.
pub trait CallLayer: Send + Sync + Debug {
    /// Runs `op` (a call named `what`: a symbol, `universe`, `grouped YYYY-MM-DD`) with this layer's
    /// behaviour around it.
    fn around<'a, T: Send + 'a>(&'a self, what: &'a str, op: Op<'a, T>) -> BoxFuture<'a, Result<T>>;

    /// The stats the wrapped provider reports, given the inner provider's. The default passes them on.
    fn stats(&self, inner: ProviderStats) -> ProviderStats {
        inner
    }
}

/// A provider with a [`CallLayer`] around every call; every other method is the inner provider's.
#[derive(Debug)]
pub struct Layered<L> {
    inner: Arc<dyn DataProvider>,
    layer: L,
}

impl<L: CallLayer> Layered<L> {
    /// Wraps `inner` in `layer`.
    pub fn new(inner: Arc<dyn DataProvider>, layer: L) -> Self {
        Self { inner, layer }
    }

    /// The layer.
    pub fn layer(&self) -> &L {
        &self.layer
    }

    /// The wrapped provider.
    pub fn inner(&self) -> &Arc<dyn DataProvider> {
        &self.inner
    }
}

#[async_trait]
impl<L: CallLayer + 'static> DataProvider for Layered<L> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn is_demo(&self) -> bool {
        self.inner.is_demo()
    }

    fn default_range(&self, expected: NaiveDate) -> DateRange {
        self.inner.default_range(expected)
    }

    fn live_source(&self) -> Option<String> {
        self.inner.live_source()
    }

    fn stats(&self) -> ProviderStats {
        self.layer.stats(self.inner.stats())
    }

    async fn universe(&self) -> Result<Universe> {
        let op = || self.inner.universe();
        self.layer.around("universe", &op).await
    }

    async fn daily_bars(&self, symbol: &Symbol, range: DateRange) -> Result<Bars> {
        let op = || self.inner.daily_bars(symbol, range);
        self.layer.around(symbol.as_str(), &op).await
    }

    async fn grouped_daily(&self, date: NaiveDate) -> Result<Option<Vec<(Symbol, Bar)>>> {
        let what = format!("grouped {date}");
        let op = || self.inner.grouped_daily(date);
        self.layer.around(&what, &op).await
    }

    /// Each symbol through the layer (the inner provider's batch method would bypass it per symbol).
    async fn daily_bars_batch(&self, symbols: &[Symbol], range: DateRange) -> Vec<Result<Bars>> {
        let mut out = Vec::with_capacity(symbols.len());
        for s in symbols {
            out.push(self.daily_bars(s, range).await);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::provider::{SyntheticConfig, SyntheticProvider};

    /// Counts calls and reports them as attempts.
    #[derive(Debug, Default)]
    struct Count(AtomicU64);

    impl CallLayer for Count {
        fn around<'a, T: Send + 'a>(&'a self, _what: &'a str, op: Op<'a, T>) -> BoxFuture<'a, Result<T>> {
            self.0.fetch_add(1, Ordering::Relaxed);
            op()
        }
        fn stats(&self, inner: ProviderStats) -> ProviderStats {
            ProviderStats {
                attempts: inner.attempts + self.0.load(Ordering::Relaxed),
                ..inner
            }
        }
    }

    /// A provider that answers every optional method differently from the defaults, so forwarding shows.
    #[derive(Debug)]
    struct Distinct(SyntheticProvider);

    #[async_trait]
    impl DataProvider for Distinct {
        fn name(&self) -> &str {
            "distinct"
        }
        fn is_demo(&self) -> bool {
            true
        }
        fn default_range(&self, expected: NaiveDate) -> DateRange {
            DateRange::ending(expected, 3)
        }
        fn live_source(&self) -> Option<String> {
            Some("distinct:here".to_owned())
        }
        fn stats(&self) -> ProviderStats {
            ProviderStats {
                retries: 7,
                ..ProviderStats::default()
            }
        }
        async fn universe(&self) -> Result<Universe> {
            self.0.universe().await
        }
        async fn daily_bars(&self, symbol: &Symbol, range: DateRange) -> Result<Bars> {
            self.0.daily_bars(symbol, range).await
        }
        async fn grouped_daily(&self, _date: NaiveDate) -> Result<Option<Vec<(Symbol, Bar)>>> {
            Ok(Some(Vec::new()))
        }
    }

    #[tokio::test]
    async fn every_method_reaches_the_inner_provider() {
        let inner = Distinct(SyntheticProvider::new(SyntheticConfig {
            n_symbols: 3,
            ..SyntheticConfig::default()
        }));
        let p = Layered::new(Arc::new(inner), Count::default());
        let day = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        assert_eq!(p.name(), "distinct");
        assert!(p.is_demo());
        assert_eq!(p.default_range(day), DateRange::ending(day, 3));
        assert_eq!(p.live_source().as_deref(), Some("distinct:here"));
        let u = p.universe().await.unwrap();
        let range = DateRange::new(NaiveDate::MIN, NaiveDate::MAX).unwrap();
        let _ = p.daily_bars(&u[0].symbol, range).await;
        let _ = p
            .daily_bars_batch(&[u[1].symbol.clone(), u[2].symbol.clone()], range)
            .await;
        assert_eq!(p.grouped_daily(day).await.unwrap(), Some(Vec::new()));
        // universe + 1 + 2 batch + grouped = 5 calls through the layer; inner stats kept.
        assert_eq!(p.stats().attempts, 5);
        assert_eq!(p.stats().retries, 7);
    }
}
