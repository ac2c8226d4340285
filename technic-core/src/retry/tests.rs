//! Retry tests: exact delays on a paused clock, permanent errors not retried, `Retry-After` capped, and
//! proptests that jittered delays stay within their bounds.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use tokio::time::Instant;

use super::*;

fn unavailable(retry_after: Option<Duration>) -> Error {
    Error::Unavailable {
        service: "data provider".into(),
        detail: "HTTP 503".into(),
        retry_after,
        network: false,
    }
}

fn exact() -> RetryPolicy {
    RetryPolicy {
        jitter: Jitter::none(),
        ..RetryPolicy::default()
    }
}

#[test]
fn defaults_are_three_attempts_half_a_second_doubling() {
    let p = exact();
    assert_eq!(p.max_attempts, 3);
    assert_eq!(p.delay(1), Some(Duration::from_millis(500)));
    assert_eq!(p.delay(2), Some(Duration::from_millis(1000)));
    assert_eq!(p.delay(3), None);
    assert_eq!(p.delay(0), None);
}

#[test]
fn backoff_is_capped() {
    let p = RetryPolicy {
        max_attempts: 10,
        max_delay: Duration::from_secs(3),
        ..exact()
    };
    assert_eq!(p.delay(3), Some(Duration::from_secs(2)));
    assert_eq!(p.delay(4), Some(Duration::from_secs(3)));
    assert_eq!(p.delay(9), Some(Duration::from_secs(3)));
}

#[test]
fn injected_jitter_scales_the_backoff() {
    let p = RetryPolicy {
        jitter: Jitter::from_fn(|| 0.25),
        ..RetryPolicy::default()
    };
    assert_eq!(p.delay(2), Some(Duration::from_millis(250)));
}

/// Runs `retry` over a scripted sequence of outcomes, returning the result, the instants at which each
/// attempt started (relative to the start) and the number of attempts.
async fn run_script(policy: &RetryPolicy, script: Vec<Result<u32>>) -> (Result<u32>, Vec<Duration>) {
    let start = Instant::now();
    let calls = AtomicU32::new(0);
    let times = std::sync::Mutex::new(Vec::new());
    let script = std::sync::Mutex::new(script.into_iter());
    let result = retry(policy, |_| {
        calls.fetch_add(1, Ordering::SeqCst);
        times.lock().unwrap().push(start.elapsed());
        let next = script.lock().unwrap().next().expect("script long enough");
        async move { next }
    })
    .await;
    (result, times.into_inner().unwrap())
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_after_exact_delays() {
    let (r, times) = run_script(
        &exact(),
        vec![Err(unavailable(None)), Err(unavailable(None)), Ok(7)],
    )
    .await;
    assert_eq!(r.unwrap(), 7);
    assert_eq!(
        times,
        [
            Duration::ZERO,
            Duration::from_millis(500),
            Duration::from_millis(1500)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_max_attempts_with_the_last_error() {
    let (r, times) = run_script(
        &exact(),
        vec![
            Err(unavailable(None)),
            Err(unavailable(None)),
            Err(unavailable(None)),
        ],
    )
    .await;
    assert!(r.unwrap_err().is_transient());
    assert_eq!(times.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_are_not_retried() {
    for permanent in [
        Error::not_found("symbol ZZZZ"),
        Error::invalid_data("XYZ", "truncated JSON"),
        Error::Rejected {
            service: "data provider".into(),
            detail: "HTTP 401".into(),
            advice: None,
        },
    ] {
        let (r, times) = run_script(&exact(), vec![Err(permanent.clone())]).await;
        assert_eq!(r.unwrap_err().to_string(), permanent.to_string());
        assert_eq!(times, [Duration::ZERO]);
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_when_longer_and_capped() {
    let p = RetryPolicy {
        max_retry_after: Duration::from_secs(5),
        ..exact()
    };
    let (r, times) = run_script(
        &p,
        vec![
            Err(unavailable(Some(Duration::from_secs(2)))),
            Err(unavailable(Some(Duration::from_secs(60)))),
            Ok(1),
        ],
    )
    .await;
    assert_eq!(r.unwrap(), 1);
    // 2 s asked > 0.5 s backoff; then 60 s asked, capped at 5 s.
    assert_eq!(
        times,
        [Duration::ZERO, Duration::from_secs(2), Duration::from_secs(7)]
    );
    // A Retry-After shorter than the backoff does not shorten it.
    assert_eq!(
        p.delay_for(2, &unavailable(Some(Duration::from_millis(10)))),
        Some(Duration::from_secs(1))
    );
}

#[tokio::test(start_paused = true)]
async fn notify_sees_each_retry_and_its_wait() {
    let mut seen = Vec::new();
    let r: Result<()> = retry_notify(
        &exact(),
        |_| async { Err(unavailable(None)) },
        |attempt, _, wait| seen.push((attempt, wait)),
    )
    .await;
    assert!(r.is_err());
    assert_eq!(
        seen,
        [(1, Duration::from_millis(500)), (2, Duration::from_secs(1))]
    );
}

proptest! {
    #[test]
    fn jittered_delays_stay_within_bounds(
        base_ms in 1u64..5_000,
        multiplier in 1.0f64..4.0,
        max_ms in 1u64..60_000,
        attempts in 1u32..12,
        seed in any::<u64>(),
    ) {
        let p = RetryPolicy {
            max_attempts: attempts,
            base_delay: Duration::from_millis(base_ms),
            multiplier,
            max_delay: Duration::from_millis(max_ms),
            max_retry_after: Duration::from_secs(30),
            jitter: Jitter::seeded(seed),
        };
        let plain = RetryPolicy { jitter: Jitter::none(), ..p.clone() };
        for attempt in 1..attempts {
            let d = p.delay(attempt).unwrap();
            let cap = plain.delay(attempt).unwrap();
            prop_assert!(d <= cap, "{d:?} > {cap:?}");
            prop_assert!(cap <= Duration::from_millis(max_ms));
            // Without jitter the backoff never shrinks from one attempt to the next.
            if attempt > 1 {
                prop_assert!(plain.delay(attempt - 1).unwrap() <= cap);
            }
        }
        prop_assert_eq!(p.delay(attempts), None);
    }

    #[test]
    fn waits_never_exceed_the_caps(retry_after_ms in 0u64..1_000_000, attempt in 1u32..3) {
        let p = exact();
        let e = unavailable(Some(Duration::from_millis(retry_after_ms)));
        let d = p.delay_for(attempt, &e).unwrap();
        prop_assert!(d <= p.max_retry_after.max(p.max_delay));
        prop_assert!(d >= p.delay(attempt).unwrap());
    }
}
