//! [`Resilient`]: wraps any [`DataProvider`] with a [`RetryPolicy`] and a [`CircuitBreaker`], and counts
//! what happened so a scan's summary can say how many calls were retried or refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use tracing::{debug, info};

use super::breaker::{BreakerConfig, CircuitBreaker};
use super::{DataProvider, ProviderStats};
use crate::error::Result;
use crate::model::{Bars, DateRange, Symbol, Universe};
use crate::retry::{RetryPolicy, retry_notify};

/// A provider with retries and a circuit breaker around every call.
#[derive(Debug)]
pub struct Resilient {
    inner: Arc<dyn DataProvider>,
    policy: RetryPolicy,
    breaker: CircuitBreaker,
    counters: Counters,
}

#[derive(Debug, Default)]
struct Counters {
    attempts: AtomicU64,
    retries: AtomicU64,
    failures: AtomicU64,
    short_circuited: AtomicU64,
}

impl Resilient {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn DataProvider>, policy: RetryPolicy, breaker: BreakerConfig) -> Self {
        Self {
            inner,
            policy,
            breaker: CircuitBreaker::new("data provider", breaker),
            counters: Counters::default(),
        }
    }

    /// The breaker, e.g. to show its state.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// Runs one provider call under the breaker and the retry policy. The breaker is consulted before
    /// every attempt, so a breaker that opens during retries stops them.
    async fn call<T, Fut>(&self, what: &str, op: impl Fn() -> Fut) -> Result<T>
    where
        Fut: Future<Output = Result<T>>,
    {
        let result = retry_notify(
            &self.policy,
            |_| async {
                if let Err(open) = self.breaker.check() {
                    self.counters.short_circuited.fetch_add(1, Ordering::Relaxed);
                    return Err(open);
                }
                self.counters.attempts.fetch_add(1, Ordering::Relaxed);
                let outcome = op().await;
                self.breaker.record(&outcome);
                outcome
            },
            |attempt, error, wait| {
                self.counters.retries.fetch_add(1, Ordering::Relaxed);
                info!(what, attempt, wait_ms = wait.as_millis() as u64, error = %error, "retrying");
            },
        )
        .await;
        if let Err(e) = &result {
            self.counters.failures.fetch_add(1, Ordering::Relaxed);
            debug!(what, error = %e, "provider call failed");
        }
        result
    }
}

#[async_trait]
impl DataProvider for Resilient {
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
        self.call("universe", || self.inner.universe()).await
    }

    async fn daily_bars(&self, symbol: &Symbol, range: DateRange) -> Result<Bars> {
        self.call(symbol.as_str(), || self.inner.daily_bars(symbol, range))
            .await
    }

    fn stats(&self) -> ProviderStats {
        let c = &self.counters;
        ProviderStats {
            attempts: c.attempts.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
            short_circuited: c.short_circuited.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests;
