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
        failure_threshold: 5,
        cool_down: Duration::from_secs(30),
    };
    let p = Resilient::wrap(inner.clone(), policy(), breaker);
    let sym = Symbol::new("AAA");

    // Two calls of three attempts each: 6 failures, the breaker opens on the fifth attempt and the
    // sixth is refused without reaching the provider.
    for _ in 0..2 {
        assert!(p.daily_bars(&sym, range()).await.is_err());
    }
    assert_eq!(inner.calls.load(Ordering::SeqCst), 5);
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
        5,
        "no call reached the dead provider"
    );
    let s = p.stats();
    assert_eq!(s.attempts, 5);
    assert_eq!(s.short_circuited, 101);
    assert_eq!(s.failures, 102);

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
