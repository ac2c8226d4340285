//! [`RetryPolicy`], a plain value describing exponential backoff with full jitter, and [`retry`], which runs
//! an operation under it.
//!
//! Only transient failures ([`Error::is_transient`]: connect errors, timeouts, HTTP 429 and 5xx) are
//! retried. A `Retry-After` the service sent is honoured up to [`RetryPolicy::max_retry_after`]. Sleeping
//! goes through `tokio::time`, so tests pause the clock and assert exact delays.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::provider::SplitMix64;

/// Where jitter comes from: `None` for none, or a source of numbers in `[0, 1)` that scales each delay
/// ("full jitter": the delay is uniform between zero and the backoff). Injected so tests are exact.
#[derive(Clone, Default)]
pub struct Jitter(Option<Arc<dyn Fn() -> f64 + Send + Sync>>);

impl Jitter {
    /// No jitter: every delay is the plain backoff.
    pub fn none() -> Self {
        Self(None)
    }

    /// Full jitter from `source`, which must return values in `[0, 1)` (others are clamped).
    pub fn from_fn(source: impl Fn() -> f64 + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(source)))
    }

    /// Full jitter from a seeded pseudo-random sequence.
    pub fn seeded(seed: u64) -> Self {
        let rng = Mutex::new(SplitMix64::new(seed));
        Self::from_fn(move || rng.lock().map_or(1.0, |mut r| r.next_f64()))
    }

    fn scale(&self, d: Duration) -> Duration {
        match &self.0 {
            None => d,
            Some(source) => d.mul_f64(source().clamp(0.0, 1.0)),
        }
    }
}

impl fmt::Debug for Jitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Jitter(full)"
        } else {
            "Jitter(none)"
        })
    }
}

/// How often and how long to wait between attempts.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 means no retries.
    pub max_attempts: u32,
    /// Backoff before the first retry.
    pub base_delay: Duration,
    /// Growth of the backoff per retry.
    pub multiplier: f64,
    /// Upper bound of any backoff.
    pub max_delay: Duration,
    /// Longest `Retry-After` honoured; a longer request is cut to this.
    pub max_retry_after: Duration,
    /// Jitter applied to the backoff (not to `Retry-After`, which is the service's explicit wish).
    pub jitter: Jitter,
}

impl Default for RetryPolicy {
    /// 3 attempts, 0.5 s then 1 s (×2), at most 10 s per wait, `Retry-After` up to 30 s, full jitter
    /// seeded from the clock so that many clients do not retry in lockstep.
    fn default() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(500),
            multiplier: 2.0,
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(30),
            jitter: Jitter::seeded(seed),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The wait after failed attempt number `attempt` (1 for the first attempt), or `None` when no
    /// attempt is left. Backoff is `base × multiplier^(attempt−1)`, capped at `max_delay`, then jittered.
    pub fn delay(&self, attempt: u32) -> Option<Duration> {
        if attempt == 0 || attempt >= self.max_attempts {
            return None;
        }
        let factor = self.multiplier.max(1.0).powi(attempt.saturating_sub(1) as i32);
        let backoff = self.base_delay.as_secs_f64() * factor;
        let capped = if backoff.is_finite() {
            Duration::from_secs_f64(backoff.min(self.max_delay.as_secs_f64()))
        } else {
            self.max_delay
        };
        Some(self.jitter.scale(capped))
    }

    /// The wait after attempt `attempt` failed with `error`: the backoff, or the service's `Retry-After`
    /// (capped) when that is longer. `None` when the error is permanent or no attempt is left.
    pub fn delay_for(&self, attempt: u32, error: &Error) -> Option<Duration> {
        if !error.is_transient() {
            return None;
        }
        let backoff = self.delay(attempt)?;
        let asked = match error {
            Error::Unavailable {
                retry_after: Some(d), ..
            }
            | Error::Throttled {
                retry_after: Some(d), ..
            } => (*d).min(self.max_retry_after),
            _ => Duration::ZERO,
        };
        Some(backoff.max(asked))
    }
}

/// Runs `op` (given the attempt number, from 1) until it succeeds, fails permanently or runs out of
/// attempts; returns the last result.
pub async fn retry<T, F, Fut>(policy: &RetryPolicy, op: F) -> Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    retry_notify(policy, op, |_, _, _| {}).await
}

/// [`retry`], calling `on_retry(attempt, error, wait)` before each wait, e.g. to count retries or tell
/// the user "Connection issue — retrying…".
pub async fn retry_notify<T, F, Fut>(
    policy: &RetryPolicy,
    mut op: F,
    mut on_retry: impl FnMut(u32, &Error, Duration),
) -> Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut attempt = 1;
    loop {
        match op(attempt).await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let Some(wait) = policy.delay_for(attempt, &e) else {
                    return Err(e);
                };
                on_retry(attempt, &e, wait);
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests;
