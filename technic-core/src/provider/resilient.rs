//! [`Resilient`]: a [`Layered`] provider that wraps any [`DataProvider`] with a [`RetryPolicy`] and a [`CircuitBreaker`], and counts
//! what happened so a scan's summary can say how many calls were retried or refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::BoxFuture;
use tracing::{debug, info};

use super::breaker::{BreakerConfig, CircuitBreaker};
use super::layer::{CallLayer, Layered, Op};
use super::{DataProvider, ProviderStats};
use crate::error::Result;
use crate::retry::{RetryPolicy, retry_notify};

/// A provider with retries and a circuit breaker around every call.
pub type Resilient = Layered<RetryLayer>;

/// Retries and a circuit breaker, counting what happened: the [`CallLayer`] behind [`Resilient`].
#[derive(Debug)]
pub struct RetryLayer {
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

impl Layered<RetryLayer> {
    /// Wraps `inner`.
    pub fn wrap(inner: Arc<dyn DataProvider>, policy: RetryPolicy, breaker: BreakerConfig) -> Self {
        let layer = RetryLayer {
            policy,
            breaker: CircuitBreaker::new("data provider", breaker),
            counters: Counters::default(),
        };
        Layered::new(inner, layer)
    }

    /// The breaker, e.g. to show its state.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.layer().breaker
    }
}

impl RetryLayer {
    /// Runs one logical provider call: the breaker is asked once, the retry policy runs the attempts, and
    /// the breaker hears the outcome after the retries (see [`CircuitBreaker`]). If this future is dropped
    /// (a cancelled scan), the breaker's permit settles on drop.
    async fn call<T>(&self, what: &str, op: Op<'_, T>) -> Result<T> {
        let permit = match self.breaker.check() {
            Ok(p) => p,
            Err(open) => {
                self.counters.short_circuited.fetch_add(1, Ordering::Relaxed);
                return Err(open);
            }
        };
        let result = retry_notify(
            &self.policy,
            |_| async {
                self.counters.attempts.fetch_add(1, Ordering::Relaxed);
                op().await
            },
            |attempt, error, wait| {
                self.counters.retries.fetch_add(1, Ordering::Relaxed);
                info!(what, attempt, wait_ms = wait.as_millis() as u64, error = %error, "retrying");
            },
        )
        .await;
        permit.record(&result);
        if let Err(e) = &result {
            self.counters.failures.fetch_add(1, Ordering::Relaxed);
            debug!(what, error = %e, "provider call failed");
        }
        result
    }
}

impl CallLayer for RetryLayer {
    fn around<'a, T: Send + 'a>(&'a self, what: &'a str, op: Op<'a, T>) -> BoxFuture<'a, Result<T>> {
        Box::pin(self.call(what, op))
    }

    /// This layer's counters (the inner provider does not count).
    fn stats(&self, _inner: ProviderStats) -> ProviderStats {
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
