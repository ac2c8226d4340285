//! Resilient on a paused clock: retries counted, permanent errors passed through at once, and the breaker
//! opening under a dead provider, failing fast, then letting a trial call through after the cool-down.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::error::Error;
use crate::model::{Bars, DateRange, Symbol, Universe};
use crate::retry::Jitter;
use async_trait::async_trait;

/// A provider whose `daily_bars` fails transiently while `down` is set, counting calls.
#[derive(Debug, Default)]
struct Flaky {
    calls: AtomicU32,
    down: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl DataProvider for Flaky {
    fn name(&self) -> &str {
        "flaky"
    }
    async fn universe(&self) -> Result<Universe> {
        Ok(Vec::new())
    }
    async fn daily_bars(&self, _: &Symbol, _: DateRange) -> Result<Bars> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            Err(Error::Unavailable {
                service: "data provider".into(),
                detail: "HTTP 503".into(),
                retry_after: None,
                network: false,
            })
        } else {
            Ok(crate::testing::sample_bars(5, 10.0))
        }
    }
}

fn range() -> DateRange {
    let d = |s: &str| s.parse().unwrap();
    DateRange::new(d("2024-01-01"), d("2024-02-01")).unwrap()
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        jitter: Jitter::none(),
        ..RetryPolicy::default()
    }
}

#[tokio::test(start_paused = true)]
async fn breaker_opens_under_a_dead_provider_and_fails_fast() {
    let inner = Arc::new(Flaky::default());
    inner.down.store(true, Ordering::SeqCst);
    let breaker = BreakerConfig {
        min_calls: 2,
        failure_rate: 0.5,
        window: Duration::from_secs(60),
        cool_down: Duration::from_secs(30),
    };
    let p = Resilient::wrap(inner.clone(), policy(), breaker);
    let sym = Symbol::new("AAA");

    // Two logical calls of three attempts each fail: the breaker judges them after their retries and
    // opens; 6 attempts reached the provider.
    for _ in 0..2 {
        assert!(p.daily_bars(&sym, range()).await.is_err());
    }
    assert_eq!(inner.calls.load(Ordering::SeqCst), 6);
    assert!(p.breaker().is_open());

    // While open, calls fail at once with a clear message and no waiting.
    let before = Instant::now();
    for _ in 0..100 {
        let e = p.daily_bars(&sym, range()).await.unwrap_err();
        assert!(matches!(e, Error::CircuitOpen { .. }), "{e:?}");
        assert_eq!(
            e.user_message(),
            "Data provider unavailable — too many failures, pausing requests"
        );
    }
    assert_eq!(before.elapsed(), Duration::ZERO);
    assert_eq!(
        inner.calls.load(Ordering::SeqCst),
        6,
        "no call reached the dead provider"
    );
    let s = p.stats();
    assert_eq!(s.attempts, 6);
    assert_eq!(s.short_circuited, 100);
    assert_eq!(s.failures, 2, "calls refused by the breaker are counted apart");

    // After the cool-down a trial call goes through; the provider is back, so the breaker closes.
    inner.down.store(false, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(p.daily_bars(&sym, range()).await.unwrap().len(), 5);
    assert!(!p.breaker().is_open());
}

#[tokio::test(start_paused = true)]
async fn retries_are_counted_and_waits_follow_the_policy() {
    let inner = Arc::new(Flaky::default());
    inner.down.store(true, Ordering::SeqCst);
    let p = Arc::new(Resilient::wrap(inner.clone(), policy(), BreakerConfig::default()));
    let started = Instant::now();
    let task = tokio::spawn({
        let p = p.clone();
        async move { p.daily_bars(&Symbol::new("AAA"), range()).await }
    });
    // Let the first attempt fail, then bring the provider back during the 0.5 s wait.
    tokio::time::sleep(Duration::from_millis(100)).await;
    inner.down.store(false, Ordering::SeqCst);
    assert!(task.await.unwrap().is_ok());
    assert_eq!(started.elapsed(), Duration::from_millis(500));
    assert_eq!(p.stats().retries, 1);
    assert_eq!(p.stats().attempts, 2);
    assert_eq!(p.stats().failures, 0);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_half_open_trial_does_not_leave_the_breaker_open() {
    let inner = Arc::new(Flaky::default());
    inner.down.store(true, Ordering::SeqCst);
    let breaker = BreakerConfig {
        min_calls: 1,
        failure_rate: 0.5,
        window: Duration::from_secs(60),
        cool_down: Duration::from_millis(50),
    };
    let p = Arc::new(Resilient::wrap(inner.clone(), policy(), breaker));
    let sym = Symbol::new("AAA");
    assert!(p.daily_bars(&sym, range()).await.is_err());
    assert!(p.breaker().is_open());
    tokio::time::advance(Duration::from_millis(50)).await;
    // The trial starts, fails its first attempt, and is cancelled while waiting to retry.
    let trial = tokio::spawn({
        let (p, sym) = (p.clone(), sym.clone());
        async move { p.daily_bars(&sym, range()).await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    trial.abort();
    assert!(trial.await.unwrap_err().is_cancelled());
    // The provider is healthy again: the very next call is the new trial and closes the breaker.
    inner.down.store(false, Ordering::SeqCst);
    assert_eq!(p.daily_bars(&sym, range()).await.unwrap().len(), 5);
    assert!(!p.breaker().is_open());
}

/// Answers 429 once per symbol, then bars.
#[derive(Debug, Default)]
struct ThrottledOnce {
    seen: std::sync::Mutex<std::collections::HashSet<Symbol>>,
}

#[async_trait]
impl DataProvider for ThrottledOnce {
    fn name(&self) -> &str {
        "throttled"
    }
    async fn universe(&self) -> Result<Universe> {
        Ok(Vec::new())
    }
    async fn daily_bars(&self, symbol: &Symbol, _: DateRange) -> Result<Bars> {
        if self.seen.lock().unwrap().insert(symbol.clone()) {
            return Err(Error::Throttled {
                service: "data provider".into(),
                detail: "HTTP 429".into(),
                retry_after: Some(Duration::from_secs(1)),
            });
        }
        Ok(crate::testing::sample_bars(5, 10.0))
    }
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_429s_is_waited_out_not_failed() {
    let p = Arc::new(Resilient::wrap(
        Arc::new(ThrottledOnce::default()),
        policy(),
        BreakerConfig::default(),
    ));
    let calls = (0..500).map(|i| {
        let p = p.clone();
        async move { p.daily_bars(&Symbol::new(format!("S{i}")), range()).await }
    });
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(Result::is_ok));
    assert!(!p.breaker().is_open());
    let s = p.stats();
    assert_eq!(
        (s.attempts, s.retries, s.failures, s.short_circuited),
        (1000, 500, 0, 0)
    );
}
