//! [`CircuitBreaker`]: stops calling a provider that keeps failing, so a scan fails fast with a clear
//! message instead of hammering an API that is down.
//!
//! The breaker judges **logical calls** (a call after all its retries), never single attempts, and opens on
//! a **failure rate**: when at least `min_calls` calls ended within the last `window` and at least
//! `failure_rate` of them failed transiently. A burst of retried-then-successful calls, or a provider asking
//! callers to slow down (HTTP 429, [`Error::Throttled`]: back-pressure, not failure), never opens it; a bad
//! symbol says nothing about the service's health and is not counted either.
//!
//! Closed → (failure rate reached) → Open for `cool_down` → HalfOpen: one trial call goes through; its
//! success closes the breaker, its failure opens it again. The trial is a [`Permit`] guard: a trial that
//! is dropped without an outcome (its scan was cancelled, its client went away) settles the breaker on
//! drop, so the next call becomes the trial; a trial that never ends frees the slot after `cool_down`.
//! Time is `tokio::time`, so tests pause the clock.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Result};

/// Settings of a [`CircuitBreaker`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// Least calls ended within `window` before the breaker may open.
    pub min_calls: u32,
    /// Share of those calls that must have failed transiently (0–1).
    pub failure_rate: f64,
    /// How far back calls are counted.
    pub window: Duration,
    /// How long it stays open before letting a trial call through (also the longest a trial may take).
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        // Twenty calls in a minute, half of them failing after their retries, is an outage, not a blip;
        // thirty seconds outlasts most rate-limit windows.
        Self {
            min_calls: 20,
            failure_rate: 0.5,
            window: Duration::from_secs(60),
            cool_down: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Open {
        until: Instant,
        failures: u32,
    },
    /// The cool-down is over and one trial call is in flight since `since`; others still fail fast.
    HalfOpen {
        since: Instant,
        failures: u32,
    },
}

#[derive(Debug)]
struct Inner {
    state: State,
    /// Ends of recent logical calls: when, and whether they failed transiently.
    recent: VecDeque<(Instant, bool)>,
}

/// A circuit breaker for one service.
#[derive(Debug)]
pub struct CircuitBreaker {
    service: String,
    config: BreakerConfig,
    inner: Mutex<Inner>,
}

/// Leave to make one call, from [`CircuitBreaker::check`]. Record the call's outcome with
/// [`Permit::record`]; dropping a trial permit without an outcome lets the next call try.
#[derive(Debug)]
#[must_use = "record the call's outcome on the permit"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    trial: bool,
}

impl Permit<'_> {
    /// Records the outcome of the call this permit allowed.
    pub fn record<T>(self, outcome: &Result<T>) {
        self.breaker.record(outcome, self.trial);
        std::mem::forget(self);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.trial {
            self.breaker.trial_dropped();
        }
    }
}

impl CircuitBreaker {
    /// A closed breaker for `service` (named in its errors).
    pub fn new(service: impl Into<String>, config: BreakerConfig) -> Self {
        Self {
            service: service.into(),
            config,
            inner: Mutex::new(Inner {
                state: State::Closed,
                recent: VecDeque::new(),
            }),
        }
    }

    /// A [`Permit`] when a call may go ahead, [`Error::CircuitOpen`] when it must fail fast.
    pub fn check(&self) -> Result<Permit<'_>> {
        let mut inner = self.lock();
        let now = Instant::now();
        match inner.state {
            State::Closed => Ok(Permit {
                breaker: self,
                trial: false,
            }),
            State::Open { until, failures } if now < until => Err(self.open_error(failures, until - now)),
            State::HalfOpen { since, failures } if now < since + self.config.cool_down => {
                Err(self.open_error(failures, Duration::ZERO))
            }
            // The cool-down is over, or the last trial has taken longer than a cool-down: try (again).
            State::Open { failures, .. } | State::HalfOpen { failures, .. } => {
                inner.state = State::HalfOpen { since: now, failures };
                Ok(Permit {
                    breaker: self,
                    trial: true,
                })
            }
        }
    }

    /// True while calls fail fast.
    pub fn is_open(&self) -> bool {
        !matches!(self.lock().state, State::Closed)
    }

    fn record<T>(&self, outcome: &Result<T>, trial: bool) {
        let failed = match outcome {
            // Back-pressure and bad input say nothing about the service's health.
            Err(Error::Throttled { .. }) => return self.settle_trial(trial),
            Err(e) => e.is_transient(),
            Ok(_) => false,
        };
        let mut inner = self.lock();
        let now = Instant::now();
        // The trial decides only while it is the trial (a stuck one that ends after another took over
        // counts as an ordinary call).
        if trial && matches!(inner.state, State::HalfOpen { .. }) {
            inner.recent.clear();
            inner.state = if failed { self.open(now, 1) } else { State::Closed };
            return;
        }
        inner.recent.push_back((now, failed));
        while inner
            .recent
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > self.config.window)
        {
            inner.recent.pop_front();
        }
        let calls = inner.recent.len();
        let failures = inner.recent.iter().filter(|(_, f)| *f).count();
        if matches!(inner.state, State::Closed)
            && calls >= self.config.min_calls as usize
            && failures as f64 >= self.config.failure_rate * calls as f64
        {
            inner.recent.clear();
            inner.state = self.open(now, failures as u32);
        }
    }

    fn open(&self, now: Instant, failures: u32) -> State {
        // Info, not warn: the scan reports the outcome to the user in its own words.
        tracing::info!(
            service = %self.service,
            failures,
            cool_down_s = self.config.cool_down.as_secs_f64(),
            "circuit breaker open"
        );
        State::Open {
            until: now + self.config.cool_down,
            failures,
        }
    }

    /// A trial that told nothing (throttled): the next call may try at once.
    fn settle_trial(&self, trial: bool) {
        if trial {
            self.trial_dropped();
        }
    }

    /// A trial ended without an outcome: back to open with the cool-down over, so the next call tries.
    fn trial_dropped(&self) {
        let mut inner = self.lock();
        if let State::HalfOpen { failures, .. } = inner.state {
            inner.state = State::Open {
                until: Instant::now(),
                failures,
            };
        }
    }

    fn open_error(&self, failures: u32, retry_in: Duration) -> Error {
        Error::CircuitOpen {
            service: self.service.clone(),
            failures,
            retry_in,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The state is updated in whole assignments, so a poisoned lock still holds a consistent one.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
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

    fn throttled() -> Result<()> {
        Err(Error::Throttled {
            service: "data provider".into(),
            detail: "HTTP 429".into(),
            retry_after: Some(Duration::from_secs(1)),
        })
    }

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(
            "data provider",
            BreakerConfig {
                min_calls: 4,
                failure_rate: 0.5,
                window: Duration::from_secs(60),
                cool_down: Duration::from_secs(10),
            },
        )
    }

    fn call(b: &CircuitBreaker, outcome: Result<()>) {
        b.check().expect("closed").record(&outcome);
    }

    #[tokio::test(start_paused = true)]
    async fn opens_on_the_failure_rate_then_half_opens_after_cool_down() {
        let b = breaker();
        call(&b, transient());
        call(&b, Ok(()));
        call(&b, transient());
        assert!(!b.is_open(), "3 calls: under the minimum");
        call(&b, transient());
        assert!(b.is_open(), "3 of 4 failed");
        let err = b.check().unwrap_err();
        assert!(matches!(err, Error::CircuitOpen { failures: 3, .. }), "{err:?}");
        assert!(err.user_message().starts_with("Data provider unavailable"));

        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(b.check().is_err(), "still cooling down");
        tokio::time::advance(Duration::from_secs(1)).await;
        let trial = b.check().expect("half-open lets one trial through");
        assert!(b.check().is_err(), "only one trial at a time");
        trial.record::<()>(&Ok(()));
        assert!(!b.is_open());
        call(&b, Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn healthy_calls_keep_it_closed_and_old_failures_age_out() {
        let b = breaker();
        for _ in 0..100 {
            call(&b, Ok(()));
            call(&b, throttled());
        }
        call(&b, transient());
        assert!(!b.is_open(), "429s are back-pressure, successes dominate");
        let b = breaker();
        for _ in 0..3 {
            call(&b, transient());
        }
        tokio::time::advance(Duration::from_secs(61)).await;
        call(&b, transient());
        assert!(!b.is_open(), "failures older than the window do not count");
        let b = breaker();
        for _ in 0..10 {
            call(&b, Err(Error::not_found("symbol ZZZZ")));
        }
        call(&b, transient());
        assert!(!b.is_open(), "unknown symbols are not service failures");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_trial_reopens() {
        let b = breaker();
        for _ in 0..4 {
            call(&b, transient());
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        b.check().unwrap().record(&transient());
        assert!(b.check().is_err(), "a failed trial opens it again");
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_trial_lets_the_next_call_try() {
        let b = breaker();
        for _ in 0..4 {
            call(&b, transient());
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        // The trial's scan is cancelled: its future, permit included, is dropped.
        let trial = b.check().unwrap();
        drop(trial);
        let next = b.check().expect("a dropped trial settles the breaker");
        next.record::<()>(&Ok(()));
        assert!(!b.is_open());
    }

    #[tokio::test(start_paused = true)]
    async fn a_trial_that_never_ends_frees_the_slot_after_a_cool_down() {
        let b = breaker();
        for _ in 0..4 {
            call(&b, transient());
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        let stuck = b.check().unwrap();
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(b.check().is_err());
        tokio::time::advance(Duration::from_secs(1)).await;
        let second = b.check().expect("the stuck trial timed out");
        second.record::<()>(&Ok(()));
        assert!(!b.is_open());
        // The stuck trial ending later changes nothing.
        stuck.record::<()>(&Ok(()));
        assert!(!b.is_open());
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_trial_lets_the_next_call_try() {
        let b = breaker();
        for _ in 0..4 {
            call(&b, transient());
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        b.check().unwrap().record(&throttled());
        b.check().expect("next trial").record::<()>(&Ok(()));
        assert!(!b.is_open());
    }
}
