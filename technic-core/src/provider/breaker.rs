//! [`CircuitBreaker`]: stops calling a provider that keeps failing, so a scan fails fast with a clear
//! message instead of hammering an API that is down.
//!
//! Closed → (N consecutive transient failures) → Open for a cool-down → HalfOpen: one trial call goes
//! through; its success closes the breaker, its failure opens it again. Time is `tokio::time`, so tests
//! pause the clock.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Result};

/// Settings of a [`CircuitBreaker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive transient failures that open the breaker.
    pub failure_threshold: u32,
    /// How long it stays open before letting a trial call through.
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        // Ten failures in a row is well past a blip; thirty seconds outlasts most rate-limit windows.
        Self {
            failure_threshold: 10,
            cool_down: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
        failures: u32,
    },
    /// The cool-down is over and one trial call is in flight; others still fail fast.
    HalfOpen {
        failures: u32,
    },
}

/// A circuit breaker for one service.
#[derive(Debug)]
pub struct CircuitBreaker {
    service: String,
    config: BreakerConfig,
    state: Mutex<State>,
}

impl CircuitBreaker {
    /// A closed breaker for `service` (named in its errors).
    pub fn new(service: impl Into<String>, config: BreakerConfig) -> Self {
        Self {
            service: service.into(),
            config,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    /// `Ok` when a call may go ahead, [`Error::CircuitOpen`] when it must fail fast.
    pub fn check(&self) -> Result<()> {
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => Ok(()),
            State::Open { until, failures } => {
                let now = Instant::now();
                if now >= until {
                    *state = State::HalfOpen { failures };
                    Ok(())
                } else {
                    Err(self.open_error(failures, until - now))
                }
            }
            State::HalfOpen { failures } => Err(self.open_error(failures, Duration::ZERO)),
        }
    }

    /// Records the outcome of a call allowed by [`CircuitBreaker::check`]. Only transient failures count:
    /// a bad symbol says nothing about the service's health.
    pub fn record<T>(&self, outcome: &Result<T>) {
        let mut state = self.lock();
        let transient = matches!(outcome, Err(e) if e.is_transient());
        *state = match (*state, transient) {
            (_, false) => State::Closed { failures: 0 },
            (State::Closed { failures }, true) if failures + 1 < self.config.failure_threshold => {
                State::Closed {
                    failures: failures + 1,
                }
            }
            (
                State::Closed { failures } | State::Open { failures, .. } | State::HalfOpen { failures },
                true,
            ) => {
                let failures = failures + 1;
                // Info, not warn: the scan reports the outcome to the user in its own words.
                tracing::info!(
                    service = %self.service,
                    failures,
                    cool_down_s = self.config.cool_down.as_secs_f64(),
                    "circuit breaker open"
                );
                State::Open {
                    until: Instant::now() + self.config.cool_down,
                    failures,
                }
            }
        };
    }

    /// True while calls fail fast.
    pub fn is_open(&self) -> bool {
        !matches!(*self.lock(), State::Closed { .. })
    }

    fn open_error(&self, failures: u32, retry_in: Duration) -> Error {
        Error::CircuitOpen {
            service: self.service.clone(),
            failures,
            retry_in,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a plain value updated in one assignment, so a poisoned lock still holds a
        // consistent one.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transient() -> Result<()> {
        Err(Error::Unavailable {
            service: "data provider".into(),
            detail: "HTTP 503".into(),
            retry_after: None,
            network: false,
        })
    }

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(
            "data provider",
            BreakerConfig {
                failure_threshold: 3,
                cool_down: Duration::from_secs(10),
            },
        )
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_threshold_then_half_opens_after_cool_down() {
        let b = breaker();
        for _ in 0..2 {
            b.check().unwrap();
            b.record(&transient());
        }
        assert!(!b.is_open());
        b.check().unwrap();
        b.record(&transient());
        assert!(b.is_open());
        let err = b.check().unwrap_err();
        assert!(matches!(err, Error::CircuitOpen { failures: 3, .. }), "{err:?}");
        assert!(err.user_message().starts_with("Data provider unavailable"));

        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(b.check().is_err(), "still cooling down");
        tokio::time::advance(Duration::from_secs(1)).await;
        b.check().expect("half-open lets one trial through");
        assert!(b.check().is_err(), "only one trial at a time");
        b.record::<()>(&Ok(()));
        assert!(!b.is_open());
        b.check().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn failed_trial_reopens_and_permanent_errors_reset() {
        let b = breaker();
        for _ in 0..3 {
            b.record(&transient());
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        b.check().unwrap();
        b.record(&transient());
        assert!(b.check().is_err(), "a failed trial opens it again");

        let b = breaker();
        b.record(&transient());
        b.record(&transient());
        b.record::<()>(&Err(Error::not_found("symbol ZZZZ")));
        b.record(&transient());
        b.record(&transient());
        assert!(
            !b.is_open(),
            "a permanent error is not a service failure and breaks the run"
        );
    }
}
