//! Scans with a store: delta fetch, write-through, lazy history, and the monitor's cached/uncached split.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::MemoryCache;
use crate::calendar::Market;
use crate::error::Result;
use crate::model::{Bars, Universe};
use crate::monitor::{Monitor, MonitorConfig};
use crate::progress::NoopSink;
use crate::provider::{SyntheticConfig, SyntheticProvider};
use crate::store::{MemoryStore, SqliteStore, Store};

/// Synthetic data that logs every bar request.
#[derive(Debug)]
struct CountingProvider {
    inner: SyntheticProvider,
    requests: Mutex<Vec<(Symbol, DateRange)>>,
}

impl CountingProvider {
    fn new(n_symbols: usize, n_bars: usize) -> Self {
        Self {
            inner: SyntheticProvider::new(SyntheticConfig {
                n_symbols,
                n_bars,
                ..SyntheticConfig::default()
            }),
            requests: Mutex::new(Vec::new()),
        }
    }

    fn take(&self) -> Vec<(Symbol, DateRange)> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }
}

#[async_trait]
impl DataProvider for CountingProvider {
    fn name(&self) -> &str {
        "counting"
    }
    fn live_source(&self) -> Option<String> {
        Some("counting".to_owned())
    }
    fn default_range(&self, expected: chrono::NaiveDate) -> DateRange {
        self.inner.default_range(expected)
    }
    async fn universe(&self) -> Result<Universe> {
        self.inner.universe().await
    }
    async fn daily_bars(&self, symbol: &Symbol, range: DateRange) -> Result<Bars> {
        self.requests.lock().unwrap().push((symbol.clone(), range));
        self.inner.daily_bars(symbol, range).await
    }
}

/// Monday 30 November 2026, noon in New York: the newest bar due is Friday's, where the demo data ends.
fn monday_noon() -> Market {
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-30T12:00:00-05:00").unwrap();
    Market::new(Arc::new(crate::clock::ManualClock::new(
        at.with_timezone(&chrono::Utc),
    )))
}

/// Deps as a new process builds them: a fresh memory cache, the given store, Monday noon.
fn deps(p: Arc<dyn DataProvider>, store: Arc<dyn Store>) -> Deps {
    Deps::new(p, Arc::new(MemoryCache::default()))
        .with_store(store)
        .with_market(monday_noon())
}

/// One scan as a new process would run it: a fresh memory cache, the given store.
async fn scan_with(p: &Arc<CountingProvider>, store: Arc<dyn Store>, range: DateRange) -> ScanReport {
    let deps = deps(p.clone(), store);
    let req = ScanRequest {
        top: None,
        range: Some(range),
        ..ScanRequest::default()
    };
    let report = scan(&req, &deps, &NoopSink, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.state, ScanState::Complete);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    report
}

#[tokio::test]
async fn second_scan_asks_the_provider_for_no_stored_bar() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("s.db")).await.unwrap());
    // 700 bars: more than the history a scan needs.
    let p = Arc::new(CountingProvider::new(30, 700));
    let range = p.inner.data_range();

    let cold = scan_with(&p, store.clone(), range).await;
    let asked = p.take();
    assert_eq!(asked.len(), 30, "one request per symbol");
    assert!(asked.iter().all(|(_, r)| *r == range), "{asked:?}");

    let warm = scan_with(&p, store.clone(), range).await;
    assert_eq!(p.take(), Vec::new(), "the warm scan asked the provider");
    assert_eq!(warm.results, cold.results);
    assert_eq!(warm.scanned, 30);
    // Each symbol was scored on its last HISTORY_BARS bars.
    let full = p.inner.daily_bars(&cold.results[0].symbol, range).await.unwrap();
    assert!(full.len() > HISTORY_BARS);
    assert_eq!(cold.results[0].date, *full.date.last().unwrap());
    let access = store.access_counts(100).await.unwrap();
    assert_eq!(access.len(), 30);
    assert!(access.iter().all(|(_, n)| *n == 2));
}

#[tokio::test]
async fn a_store_behind_asks_only_for_the_missing_dates() {
    let dir = tempfile::tempdir().unwrap();
    for store in [
        Arc::new(MemoryStore::default()) as Arc<dyn Store>,
        Arc::new(SqliteStore::open(dir.path().join("s.db")).await.unwrap()),
    ] {
        let p = Arc::new(CountingProvider::new(12, 600));
        let range = p.inner.data_range();
        let symbol = p.inner.universe().await.unwrap()[0].symbol.clone();
        let dates = p.inner.daily_bars(&symbol, range).await.unwrap().date;
        // An earlier scan ended ten bars earlier.
        let earlier_end = dates[dates.len() - 11];
        let earlier = DateRange::new(range.from, earlier_end).unwrap();
        scan_with(&p, store.clone(), earlier).await;
        p.take();

        let today = scan_with(&p, store.clone(), range).await;
        let asked = p.take();
        assert_eq!(asked.len(), 12, "{asked:?}");
        // From the last stored bar (the overlap that detects splits) to the newest due.
        for (s, r) in &asked {
            assert_eq!(r.from, earlier_end, "{s}");
            assert_eq!(r.to, range.to, "{s}");
        }
        // The same results as a scan on a fresh store.
        let fresh = scan_with(&p, Arc::new(MemoryStore::default()), range).await;
        assert_eq!(today.results, fresh.results);
        p.take();
        // And now current: nothing more to ask.
        scan_with(&p, store.clone(), range).await;
        assert_eq!(p.take(), Vec::new());
    }
}

#[tokio::test]
async fn the_monitor_sees_store_answers_as_cached() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
    let p = Arc::new(CountingProvider::new(20, 300));
    let monitor = Arc::new(Monitor::new(MonitorConfig {
        csv_path: None,
        ..MonitorConfig::default()
    }));
    let req = ScanRequest::default();
    for _ in 0..2 {
        let deps = deps(p.clone(), store.clone()).with_monitor(monitor.clone());
        scan(&req, &deps, &NoopSink, CancellationToken::new())
            .await
            .unwrap();
    }
    let totals = monitor.totals();
    assert_eq!(totals.requests, 40);
    assert_eq!(totals.cached, 20);
    assert_eq!(totals.errors, 0);
    assert!((totals.cache_hit_rate - 0.5).abs() < 1e-12);
}

/// Serves bad data for one symbol until told otherwise.
#[derive(Debug)]
struct FlakyProvider {
    inner: CountingProvider,
    bad: Mutex<Option<Symbol>>,
}

#[async_trait]
impl DataProvider for FlakyProvider {
    fn name(&self) -> &str {
        "flaky"
    }
    fn live_source(&self) -> Option<String> {
        Some("flaky".to_owned())
    }
    fn default_range(&self, expected: chrono::NaiveDate) -> DateRange {
        self.inner.default_range(expected)
    }
    async fn universe(&self) -> Result<Universe> {
        self.inner.universe().await
    }
    async fn daily_bars(&self, symbol: &Symbol, range: DateRange) -> Result<Bars> {
        let mut bars = self.inner.daily_bars(symbol, range).await?;
        if self.bad.lock().unwrap().as_ref() == Some(symbol) {
            bars.high[3] = bars.low[3] - 1.0;
        }
        Ok(bars)
    }
}

#[tokio::test]
async fn bad_data_is_not_stored_and_is_asked_for_again() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("s.db")).await.unwrap());
    let inner = CountingProvider::new(8, 300);
    let bad = inner.inner.universe().await.unwrap()[2].symbol.clone();
    let p = Arc::new(FlakyProvider {
        inner,
        bad: Mutex::new(Some(bad.clone())),
    });
    let req = ScanRequest::default();
    let run = || async {
        let deps = deps(p.clone(), store.clone());
        scan(&req, &deps, &NoopSink, CancellationToken::new())
            .await
            .unwrap()
    };
    let first = run().await;
    assert_eq!(first.skipped.len(), 1);
    assert_eq!(first.skipped[0].symbol, bad);
    let extents = store
        .bar_extents("flaky", std::slice::from_ref(&bad))
        .await
        .unwrap();
    assert!(extents.is_empty(), "bad bars were stored");
    p.inner.take();

    *p.bad.lock().unwrap() = None;
    let second = run().await;
    assert!(second.skipped.is_empty());
    let asked: Vec<Symbol> = p.inner.take().into_iter().map(|(s, _)| s).collect();
    assert_eq!(asked, vec![bad]);
}

#[tokio::test]
async fn symbols_fresh_in_the_memory_cache_are_not_read_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("s.db")).await.unwrap());
    let p = Arc::new(CountingProvider::new(10, 300));
    let deps = deps(p.clone(), store.clone());
    let req = ScanRequest::default();
    scan(&req, &deps, &NoopSink, CancellationToken::new())
        .await
        .unwrap();
    let reads = store.profile().count("load_bar_blocks") + store.profile().count("bar_extents");
    p.take();
    let again = scan(&req, &deps, &NoopSink, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(again.cache.hits, 10);
    assert_eq!(p.take(), Vec::new());
    assert_eq!(
        store.profile().count("load_bar_blocks") + store.profile().count("bar_extents"),
        reads,
        "a scan answered by the memory cache read bars from the store"
    );
}

/// A store with a limit on runs keeps only the newest scans a pipeline saves, memory and SQLite alike.
#[tokio::test]
async fn a_store_with_a_run_limit_keeps_the_newest_scans() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path().join("s.db")).await.unwrap();
    sqlite.set_max_runs(Some(2));
    let memory = MemoryStore::default();
    memory.set_max_runs(Some(2));
    let p = Arc::new(CountingProvider::new(5, 300));
    let range = p.inner.data_range();
    for store in [Arc::new(sqlite) as Arc<dyn Store>, Arc::new(memory)] {
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(scan_with(&p, store.clone(), range).await.id);
            // Distinct start times, so "newest" is unambiguous.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let kept: Vec<String> = store
            .recent_runs(10)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(kept, [ids[2].clone(), ids[1].clone()]);
        assert!(
            store.scan(&ids[0]).await.unwrap().is_none(),
            "the oldest scan was kept"
        );
        assert_eq!(store.scan(&ids[2]).await.unwrap().unwrap().results.len(), 5);
    }
}
