//! Monitor tests on a paused tokio clock: sampling interval, CSV file, alerts and cooldowns, shutdown.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::store::{MemoryStore, Store};

fn monitor(dir: &Path, interval: Duration) -> Arc<Monitor> {
    Arc::new(Monitor::new(MonitorConfig {
        interval,
        csv_path: Some(dir.join("logs/performance_metrics.csv")),
        rules: AlertRules::default(),
    }))
}

/// Lets the background task run until it waits on the clock again.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

fn since_epoch() -> DateTime<Utc> {
    DateTime::UNIX_EPOCH
}

#[test]
fn samples_cover_the_interval_only() {
    let m = Monitor::new(MonitorConfig {
        csv_path: None,
        ..MonitorConfig::default()
    });
    for i in 0..8 {
        m.record(Duration::from_millis(2), true, false);
        m.record(Duration::from_millis(50), false, i == 0);
    }
    let guards = [m.request_started(), m.request_started(), m.request_started()];
    let s = m.sample();
    drop(guards);
    assert_eq!(s.requests, 16);
    assert!((s.cache_hit_rate - 0.5).abs() < 1e-12);
    assert!((s.error_rate - 1.0 / 16.0).abs() < 1e-12);
    assert!((s.avg_response_ms - 26.0).abs() < 0.1, "{s:?}");
    assert!((s.p95_uncached_ms - 50.0).abs() < 0.1, "{s:?}");
    assert_eq!(s.active_connections, 3);
    let next = m.sample();
    assert_eq!(
        (next.requests, next.cache_hit_rate, next.error_rate),
        (0, 0.0, 0.0)
    );
    assert_eq!(m.totals().requests, 16);
    assert_eq!(m.totals().errors, 1);
    assert_eq!(m.totals().active_connections, 0, "dropped guards leave");
}

/// The dashboard's fine samples and the persisted samples come from the same counters: each sees every
/// lookup and API request once, over its own interval.
#[test]
fn fine_and_persisted_samples_share_the_counters() {
    let m = Monitor::new(MonitorConfig {
        csv_path: None,
        ..MonitorConfig::default()
    });
    m.record(Duration::from_millis(2), true, false);
    m.record(Duration::from_millis(20), false, false);
    m.record_request(Duration::from_millis(4), false);
    let f1 = m.sample_fine();
    assert_eq!((f1.requests, f1.http_requests), (2, 1));
    assert_eq!(f1.avg_cached_ms, Some(2.0));
    assert_eq!(f1.avg_uncached_ms, Some(20.0));
    assert!((f1.http_avg_ms - 4.0).abs() < 1e-9);
    m.record(Duration::from_millis(2), true, false);
    m.record_request(Duration::from_millis(8), true);
    let f2 = m.sample_fine();
    assert_eq!((f2.requests, f2.http_requests), (1, 1));
    assert_eq!(f2.avg_uncached_ms, None, "no uncached lookup in this interval");
    assert_eq!(f2.http_error_rate, 1.0);
    // The persisted sample covers both fine intervals.
    let coarse = m.sample();
    assert_eq!((coarse.requests, coarse.http_requests), (3, 2));
    assert!((coarse.cache_hit_rate - 2.0 / 3.0).abs() < 1e-12);
    assert!((coarse.http_avg_ms - 6.0).abs() < 1e-9);
    assert!((coarse.http_error_rate - 0.5).abs() < 1e-12);
    let history = m.history(DateTime::UNIX_EPOCH);
    assert_eq!(history, vec![f1, f2]);
    let t = m.totals();
    assert_eq!((t.requests, t.http_requests, t.http_errors), (3, 2, 1));
    assert_eq!(t.http_requests_last_minute, 2);
    assert!((t.http_seconds - 0.012).abs() < 1e-9);
    assert!(t.http_p99_ms >= 7.9, "{t:?}");
}

#[test]
fn fine_history_is_bounded() {
    let m = Monitor::new(MonitorConfig {
        csv_path: None,
        ..MonitorConfig::default()
    });
    for _ in 0..FINE_HISTORY + 10 {
        m.sample_fine();
    }
    assert_eq!(m.history(DateTime::UNIX_EPOCH).len(), FINE_HISTORY);
}

#[test]
fn rules_fire_on_their_thresholds_only() {
    let rules = AlertRules::default();
    let mut s = MetricSample {
        at: Utc::now(),
        cache_hit_rate: 0.5,
        avg_response_ms: 100.0,
        active_connections: 0,
        error_rate: 0.05,
        requests: 10,
        p95_cached_ms: 0.0,
        p95_uncached_ms: 0.0,
        ..MetricSample::default()
    };
    assert!(rules.check(&s).is_empty(), "thresholds themselves do not fire");
    s.cache_hit_rate = 0.49;
    s.avg_response_ms = 100.5;
    s.error_rate = 0.051;
    let fired: Vec<_> = rules
        .check(&s)
        .into_iter()
        .map(|a| (a.rule, a.severity))
        .collect();
    assert_eq!(
        fired,
        [
            ("low_cache_hit_rate".to_owned(), Severity::Warning),
            ("slow_responses".to_owned(), Severity::Warning),
            ("high_error_rate".to_owned(), Severity::Error),
        ]
    );
    s.requests = 0;
    assert!(rules.check(&s).is_empty(), "an idle interval raises nothing");
}

#[tokio::test(start_paused = true)]
async fn samples_on_its_interval_with_cooldowns_and_stops_on_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::default());
    let m = monitor(dir.path(), Duration::from_secs(300));
    let cancel = CancellationToken::new();
    let task = tokio::spawn(
        m.clone()
            .run(Some(store.clone() as Arc<dyn Store>), cancel.clone()),
    );
    settle().await;

    // Poor figures: every request uncached, slow, one in four failing.
    let degrade = || {
        for i in 0..8 {
            m.record(Duration::from_millis(150), false, i % 4 == 0);
        }
    };
    degrade();
    tokio::time::advance(Duration::from_secs(299)).await;
    settle().await;
    assert!(
        store.metric_samples(since_epoch()).await.unwrap().is_empty(),
        "sampled early"
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    settle().await;
    let samples = store.metric_samples(since_epoch()).await.unwrap();
    assert_eq!(samples.len(), 1);
    assert_eq!(samples[0].requests, 8);
    let alerts = store.alerts(since_epoch()).await.unwrap();
    let rules: Vec<_> = alerts.iter().map(|a| a.rule.as_str()).collect();
    assert_eq!(rules, ["low_cache_hit_rate", "slow_responses", "high_error_rate"]);

    // Five minutes later, still degraded: sampled, but every rule is in its 15-minute cooldown.
    degrade();
    tokio::time::advance(Duration::from_secs(300)).await;
    settle().await;
    assert_eq!(store.metric_samples(since_epoch()).await.unwrap().len(), 2);
    assert_eq!(store.alerts(since_epoch()).await.unwrap().len(), 3);

    // Past the cooldown the rules fire again.
    for _ in 0..3 {
        degrade();
        tokio::time::advance(Duration::from_secs(300)).await;
        settle().await;
    }
    assert_eq!(store.metric_samples(since_epoch()).await.unwrap().len(), 5);
    assert_eq!(store.alerts(since_epoch()).await.unwrap().len(), 6);

    let csv = std::fs::read_to_string(dir.path().join("logs/performance_metrics.csv")).unwrap();
    let lines: Vec<_> = csv.lines().collect();
    assert_eq!(lines[0], CSV_HEADER);
    assert_eq!(lines.len(), 6);
    let fields: Vec<_> = lines[1].split(',').collect();
    assert_eq!(fields.len(), 5);
    assert_eq!(&fields[1..], ["0.0000", "150.000", "0", "0.2500"]);
    assert!(DateTime::parse_from_rfc3339(fields[0]).is_ok(), "{}", fields[0]);

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(1), task)
        .await
        .expect("the monitor stops when cancelled")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn idle_intervals_are_sampled_without_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::default());
    let m = monitor(dir.path(), Duration::from_secs(60));
    let cancel = CancellationToken::new();
    let task = tokio::spawn(
        m.clone()
            .run(Some(store.clone() as Arc<dyn Store>), cancel.clone()),
    );
    settle().await;
    for _ in 0..3 {
        tokio::time::advance(Duration::from_secs(60)).await;
        settle().await;
    }
    assert_eq!(store.metric_samples(since_epoch()).await.unwrap().len(), 3);
    assert!(store.alerts(since_epoch()).await.unwrap().is_empty());
    cancel.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_rule_that_fired_in_an_earlier_process_stays_in_cooldown() {
    let store = MemoryStore::default();
    let degraded = |m: &Monitor| {
        for _ in 0..4 {
            m.record(Duration::from_millis(1), false, false);
        }
    };
    let config = || MonitorConfig {
        csv_path: None,
        ..MonitorConfig::default()
    };
    let first = Monitor::new(config());
    degraded(&first);
    let (_, fired) = first.sample_and_record(Some(&store)).await.unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].rule, "low_cache_hit_rate");

    // A new process (a new monitor) on the same store: the rule is still in its cooldown.
    let second = Monitor::new(config());
    degraded(&second);
    let (_, fired) = second.sample_and_record(Some(&store)).await.unwrap();
    assert!(fired.is_empty(), "{fired:?}");
    assert_eq!(store.alerts(since_epoch()).await.unwrap().len(), 1);

    // Without the store's history a new monitor fires again.
    let third = Monitor::new(config());
    degraded(&third);
    let (_, fired) = third.sample_and_record(None).await.unwrap();
    assert_eq!(fired.len(), 1);
}

#[test]
fn samples_and_alerts_carry_the_injected_clock_time() {
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-26T12:00:00-05:00")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let m = Monitor::new(MonitorConfig {
        csv_path: None,
        ..MonitorConfig::default()
    })
    .with_clock(std::sync::Arc::new(crate::clock::ManualClock::new(at)));
    // Slow uncached lookups, all failing: every rule fires.
    for _ in 0..20 {
        m.record(std::time::Duration::from_millis(500), false, true);
    }
    let sample = m.sample();
    assert_eq!(sample.at, at);
    let alerts = m.evaluate(&sample);
    assert!(!alerts.is_empty());
    assert!(alerts.iter().all(|a| a.at == at), "{alerts:?}");
}

#[tokio::test]
async fn a_failing_csv_log_does_not_stop_the_store_write() {
    let store = MemoryStore::default();
    // A path below a regular file can never be created.
    let file = tempfile::NamedTempFile::new().unwrap();
    let m = Monitor::new(MonitorConfig {
        csv_path: Some(file.path().join("logs").join("performance_metrics.csv")),
        ..MonitorConfig::default()
    });
    m.record(Duration::from_millis(5), true, false);
    assert!(
        m.sample_and_record(Some(&store)).await.is_err(),
        "the CSV failure is reported"
    );
    let since = DateTime::<Utc>::MIN_UTC;
    assert_eq!(
        store.metric_samples(since).await.unwrap().len(),
        1,
        "the sample still reached the store"
    );
}
