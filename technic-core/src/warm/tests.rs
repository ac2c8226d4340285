//! Warmer tests on a paused tokio clock: refresh-ahead, rate limit, pauses, shutdown, pre-market time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{NaiveTime, Utc};
use tokio_util::sync::CancellationToken;

use super::warmer::next_premarket_after;
use super::*;
use crate::cache::{BarsKey, Cache, MemoryCache, MemoryCacheConfig};
use crate::calendar::Market;
use crate::error::{Error, Result};
use crate::model::{Bars, DateRange, Symbol, Universe};
use crate::provider::{DataProvider, SyntheticConfig, SyntheticProvider};

/// Synthetic data that logs when each symbol was fetched and can be switched to failing.
#[derive(Debug)]
struct LoggingProvider {
    inner: SyntheticProvider,
    calls: Mutex<Vec<(Symbol, tokio::time::Instant)>>,
    failing: AtomicBool,
}

impl LoggingProvider {
    fn new() -> Arc<Self> {
        let inner = SyntheticProvider::new(SyntheticConfig {
            n_symbols: 20,
            n_bars: 60,
            ..SyntheticConfig::default()
        });
        Arc::new(Self {
            inner,
            calls: Mutex::new(Vec::new()),
            failing: AtomicBool::new(false),
        })
    }
    fn calls_for(&self, s: &Symbol) -> usize {
        self.calls.lock().unwrap().iter().filter(|(c, _)| c == s).count()
    }
    fn total(&self) -> usize {
        self.calls.lock().unwrap().len()
    }
}

#[async_trait]
impl DataProvider for LoggingProvider {
    fn name(&self) -> &str {
        "logging"
    }
    fn default_range(&self, expected: chrono::NaiveDate) -> DateRange {
        self.inner.default_range(expected)
    }
    async fn universe(&self) -> Result<Universe> {
        self.inner.universe().await
    }
    async fn daily_bars(&self, symbol: &Symbol, range: DateRange) -> Result<Bars> {
        self.calls
            .lock()
            .unwrap()
            .push((symbol.clone(), tokio::time::Instant::now()));
        if self.failing.load(Ordering::SeqCst) {
            return Err(Error::Unavailable {
                service: "data provider".into(),
                detail: "HTTP 503".into(),
                retry_after: None,
                network: false,
            });
        }
        self.inner.daily_bars(symbol, range).await
    }
}

struct Rig {
    provider: Arc<LoggingProvider>,
    cache: Arc<MemoryCache>,
    symbols: Vec<Symbol>,
    warmer: Arc<CacheWarmer>,
    tracker: Arc<SymbolTracker>,
    busy: Arc<AtomicBool>,
}

async fn rig(n_popular: usize, config: WarmerConfig) -> Rig {
    let provider = LoggingProvider::new();
    let cache = Arc::new(MemoryCache::new(MemoryCacheConfig {
        ttl: Duration::from_secs(100),
        ..MemoryCacheConfig::default()
    }));
    let tracker = Arc::new(SymbolTracker::default());
    let symbols: Vec<Symbol> = provider
        .inner
        .universe()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.symbol)
        .take(n_popular)
        .collect();
    for (i, s) in symbols.iter().enumerate() {
        for _ in 0..(n_popular - i) {
            tracker.record(s);
        }
    }
    let busy = Arc::new(AtomicBool::new(false));
    let b = busy.clone();
    let warmer = Arc::new(CacheWarmer::new(
        provider.clone(),
        cache.clone(),
        tracker.clone(),
        config,
        Arc::new(move || b.load(Ordering::SeqCst)),
    ));
    Rig {
        provider,
        cache,
        symbols,
        warmer,
        busy,
        tracker,
    }
}

fn quick() -> WarmerConfig {
    WarmerConfig {
        interval: Duration::from_secs(300),
        top_n: 3,
        refresh_ahead: 0.8,
        check_every: Duration::from_secs(5),
        premarket: None,
        premarket_top_n: 5,
        min_gap: Duration::ZERO,
        max_error_rate: 0.5,
        pause_for: Duration::from_secs(30),
    }
}

async fn step(secs: u64) {
    for _ in 0..secs {
        tokio::time::advance(Duration::from_secs(1)).await;
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn refresh_ahead_keeps_popular_entries_fresh() {
    let r = rig(3, quick()).await;
    let cancel = CancellationToken::new();
    let task = tokio::spawn(r.warmer.clone().run(cancel.clone()));
    let key = |s: &Symbol| {
        BarsKey::new(
            s.clone(),
            r.provider.default_range(Market::default().expected_session()),
        )
    };
    let mut fresh_checks = 0;
    for _ in 0..350 {
        step(1).await;
        for s in &r.symbols {
            // `get` never returns expired entries: every second, every popular symbol is warm.
            assert!(r.cache.get(&key(s)).await.unwrap().is_some(), "{s} went cold");
            fresh_checks += 1;
        }
    }
    assert_eq!(fresh_checks, 1050);
    // TTL 100 s, refresh when 20 s are left, checked every 5 s: loads at 0, 80, 160, 240 and 320 s.
    for s in &r.symbols {
        assert_eq!(r.provider.calls_for(s), 5, "{s}");
    }
    cancel.cancel();
    task.await.unwrap();
    assert!(!r.warmer.status().running);
}

#[tokio::test(start_paused = true)]
async fn provider_calls_respect_the_rate_limit() {
    let r = rig(
        10,
        WarmerConfig {
            top_n: 10,
            min_gap: Duration::from_millis(100),
            ..quick()
        },
    )
    .await;
    let start = tokio::time::Instant::now();
    let pass = r.warmer.warm_top(10, &CancellationToken::new()).await;
    assert_eq!((pass.considered, pass.warmed, pass.failures), (10, 10, 0));
    let calls = r.provider.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 10);
    for w in calls.windows(2) {
        assert!(
            w[1].1 - w[0].1 >= Duration::from_millis(100),
            "calls closer than the limit"
        );
    }
    assert!(start.elapsed() >= Duration::from_millis(900));
    // Popularity order: the most requested symbol is warmed first.
    assert_eq!(calls[0].0, r.symbols[0]);
    // A second pass finds everything fresh.
    let again = r.warmer.warm_top(10, &CancellationToken::new()).await;
    assert_eq!((again.fresh, again.warmed), (10, 0));
}

#[tokio::test(start_paused = true)]
async fn pauses_while_the_provider_fails_and_resumes() {
    let r = rig(4, WarmerConfig { top_n: 4, ..quick() }).await;
    r.provider.failing.store(true, Ordering::SeqCst);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(r.warmer.clone().run(cancel.clone()));
    step(2).await;
    let s = r.warmer.status();
    assert!(s.paused, "{s:?}");
    assert!(
        s.pause_reason.as_deref().unwrap_or("").contains("failed 4 of 4"),
        "{s:?}"
    );
    let during = r.provider.total();
    step(20).await;
    assert_eq!(r.provider.total(), during, "no calls while paused");
    r.provider.failing.store(false, Ordering::SeqCst);
    step(15).await;
    let s = r.warmer.status();
    assert!(!s.paused, "{s:?}");
    assert!(s.total_warmed >= 4, "{s:?}");
    cancel.cancel();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn waits_while_the_server_is_busy() {
    let r = rig(3, quick()).await;
    r.busy.store(true, Ordering::SeqCst);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(r.warmer.clone().run(cancel.clone()));
    step(30).await;
    assert_eq!(r.provider.total(), 0);
    assert_eq!(r.warmer.status().pause_reason.as_deref(), Some("server busy"));
    r.busy.store(false, Ordering::SeqCst);
    step(6).await;
    assert_eq!(r.provider.total(), 3);
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(1), task)
        .await
        .expect("stops promptly")
        .unwrap();
}

#[test]
fn premarket_is_8_30_new_york_on_sessions() {
    let cal = crate::calendar::MarketCalendar::nyse();
    let t = NaiveTime::from_hms_opt(8, 30, 0).unwrap();
    // Wednesday evening before Thanksgiving → Friday (Thursday is a holiday).
    let wed = "2026-11-25T22:00:00Z".parse().unwrap();
    assert_eq!(
        next_premarket_after(&cal, wed, t).to_rfc3339(),
        "2026-11-27T13:30:00+00:00"
    );
    // Friday evening (EST, UTC−5) → Monday 13:30 UTC.
    let fri = "2026-11-27T20:00:00Z".parse().unwrap();
    assert_eq!(
        next_premarket_after(&cal, fri, t).to_rfc3339(),
        "2026-11-30T13:30:00+00:00"
    );
    // Summer (EDT, UTC−4), before the time on a weekday → the same day 12:30 UTC.
    let summer = "2026-07-01T10:00:00Z".parse().unwrap();
    assert_eq!(
        next_premarket_after(&cal, summer, t).to_rfc3339(),
        "2026-07-01T12:30:00+00:00"
    );
    let now = Utc::now();
    assert!(next_premarket_after(&cal, now, t) > now);
}

#[tokio::test(start_paused = true)]
async fn unknown_symbols_are_skipped_and_never_pause_the_warmer() {
    let r = rig(2, quick()).await;
    // Many lookups of symbols the provider does not have (what a flood of bad requests would leave if
    // they were tracked), more popular than the real ones.
    let t = Utc::now();
    for i in 0..5 {
        for _ in 0..20 {
            r.tracker.record_at(&Symbol::new(format!("NOPE{i}")), t);
        }
    }
    let pass = r.warmer.warm_top(7, &CancellationToken::new()).await;
    assert_eq!((pass.warmed, pass.failures, pass.skipped), (2, 0, 5), "{pass:?}");
    assert!(!r.warmer.status().paused, "{:?}", r.warmer.status());
}
