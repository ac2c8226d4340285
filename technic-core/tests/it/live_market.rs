//! Store-backed scans against a mock API whose data moves day by day (see `mock_market`), at chosen
//! instants: Thanksgiving week 2026 with a 4-for-1 split on the Friday, a partial intraday bar, data not
//! yet published, grouped daily bars with a symbol missing, two sources on one store, an edited CSV
//! file, and the provider requests a refresh costs.

use std::sync::Arc;

use chrono::NaiveDate;
use technic_core::scan::UniverseSelection;
use technic_core::{
    CsvDirProvider, DataProvider, DateRange, Deps, ManualClock, Market, NoopSink, ScanReport, ScanRequest,
    SqliteStore, Store, Symbol, scan,
};
use tokio_util::sync::CancellationToken;

use crate::mock_market::{self, MockMarket, Split, at};

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn request() -> ScanRequest {
    ScanRequest {
        top: None,
        fetch_concurrency: 8,
        ..ScanRequest::default()
    }
}

async fn run(deps: &Deps) -> ScanReport {
    scan(&request(), deps, &NoopSink, CancellationToken::new())
        .await
        .unwrap()
}

/// Deps for one scan as a new process builds them: a fresh cache on `clock`, with or without `store`.
fn deps(provider: Arc<dyn DataProvider>, clock: &ManualClock, store: Option<Arc<dyn Store>>) -> Deps {
    let deps = Deps::on_market(provider, Market::new(Arc::new(clock.clone())));
    match store {
        Some(s) => deps.with_store(s),
        None => deps,
    }
}

/// Asserts two scans' results are equal: same symbols and dates, every number within 1e-9 relative.
fn assert_same_results(a: &ScanReport, b: &ScanReport) {
    assert_eq!(a.results.len(), b.results.len());
    for (x, y) in a.results.iter().zip(&b.results) {
        assert_eq!((&x.symbol, x.date, x.rank), (&y.symbol, y.date, y.rank));
        let (vx, vy) = (serde_json::to_value(x).unwrap(), serde_json::to_value(y).unwrap());
        assert_close(&vx, &vy, x.symbol.as_str());
    }
}

fn assert_close(x: &serde_json::Value, y: &serde_json::Value, at: &str) {
    use serde_json::Value;
    match (x, y) {
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            assert!(
                (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
                "{at}: {a} vs {b}"
            );
        }
        (Value::Object(a), Value::Object(b)) => {
            assert_eq!(a.len(), b.len(), "{at}");
            for (k, va) in a {
                assert_close(va, &b[k], &format!("{at}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{at}");
            for (i, (va, vb)) in a.iter().zip(b).enumerate() {
                assert_close(va, vb, &format!("{at}[{i}]"));
            }
        }
        _ => assert_eq!(x, y, "{at}"),
    }
}

fn bar_requests(log: &[String]) -> usize {
    log.iter().filter(|p| p.starts_with("/v2/aggs/")).count()
}

#[tokio::test]
async fn thanksgiving_week_with_a_split_on_friday() {
    let clock = ManualClock::new(at("2026-11-25T20:00:00-05:00"));
    let mut market = MockMarket::new(40);
    market.split = Some(Split {
        symbol_idx: 3,
        effective: d(2026, 11, 27),
        ratio: 4.0,
    });
    market.missing_from_grouped = vec!["S0007".to_owned()];
    let (server, api) = mock_market::start(market, Arc::new(clock.clone())).await;
    let provider = mock_market::provider(&server);
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("s.db")).await.unwrap());

    // Wednesday evening: a fresh store fills; every symbol scans, none stale, as of Wednesday.
    let wed = run(&deps(provider.clone(), &clock, Some(store.clone()))).await;
    assert_eq!((wed.scanned, wed.skipped.len()), (40, 0), "{:?}", wed.skipped);
    assert_eq!(wed.expected_session, Some(d(2026, 11, 25)));
    assert!(
        wed.results
            .iter()
            .all(|r| r.as_of == Some(d(2026, 11, 25)) && !r.stale)
    );
    api.take_log();

    // Thanksgiving evening: nothing new exists; no bar request, every symbol scans, nothing changes.
    clock.set(at("2026-11-26T20:00:00-05:00"));
    let holiday = run(&deps(provider.clone(), &clock, Some(store.clone()))).await;
    assert_eq!(
        (holiday.scanned, holiday.skipped.len()),
        (40, 0),
        "{:?}",
        holiday.skipped
    );
    assert_eq!(
        bar_requests(&api.take_log()),
        0,
        "asked the provider on a holiday"
    );
    // A fresh process: the memory cache was empty, the store answered every symbol.
    assert_eq!((holiday.cache.hits, holiday.store_hits), (0, 40));
    assert_same_results(&wed, &holiday);
    assert_eq!(holiday.stale, 0);

    // Friday 13:10, after the early close but before publication: still Wednesday, nothing asked.
    clock.set(at("2026-11-27T13:10:00-05:00"));
    let early = run(&deps(provider.clone(), &clock, Some(store.clone()))).await;
    assert_eq!(early.expected_session, Some(d(2026, 11, 25)));
    assert_eq!(bar_requests(&api.take_log()), 0);

    // Friday evening: Friday's bar is due. Grouped daily for Wednesday (the overlap) and Friday, one
    // request for the symbol missing from them, and a full refetch for the symbol that split.
    clock.set(at("2026-11-27T18:00:00-05:00"));
    let fri = run(&deps(provider.clone(), &clock, Some(store.clone()))).await;
    let log = api.take_log();
    assert_eq!((fri.scanned, fri.skipped.len()), (40, 0), "{:?}", fri.skipped);
    assert_eq!(fri.expected_session, Some(d(2026, 11, 27)));
    assert!(
        fri.results
            .iter()
            .all(|r| r.as_of == Some(d(2026, 11, 27)) && !r.stale)
    );
    assert_eq!(fri.adjustments, 1, "{:?}", fri.warnings);
    assert!(
        fri.warnings.iter().any(|w| w.contains("S0003")),
        "{:?}",
        fri.warnings
    );
    let grouped: Vec<_> = log.iter().filter(|p| p.contains("/grouped/")).collect();
    assert_eq!(grouped.len(), 2, "{log:?}");
    assert!(
        log.iter().any(|p| p.starts_with("/v2/aggs/ticker/S0007/")),
        "{log:?}"
    );
    assert!(
        log.iter().any(|p| p.starts_with("/v2/aggs/ticker/S0003/")),
        "{log:?}"
    );
    // Four calls (the refetch reads its three pages of ≤ 250 bars through `next_url`).
    let distinct: std::collections::HashSet<_> = log.iter().collect();
    assert_eq!(distinct.len(), 4, "{log:?}");
    // Plus the universe listing, which the provider answers from its own day-long copy.
    assert_eq!(fri.provider_calls.attempts, 5);

    // Equal to a scan without a store, split symbol included.
    let plain = run(&deps(provider.clone(), &clock, None)).await;
    assert_same_results(&fri, &plain);
    let split = fri.results.iter().find(|r| r.symbol.as_str() == "S0003").unwrap();
    let expected_sma = plain
        .results
        .iter()
        .find(|r| r.symbol.as_str() == "S0003")
        .unwrap();
    assert_eq!(split.indicators.sma_50, expected_sma.indicators.sma_50);

    // The store now holds the adjusted history: a later scan asks for nothing and agrees.
    api.take_log();
    let again = run(&deps(provider.clone(), &clock, Some(store.clone()))).await;
    assert_eq!(bar_requests(&api.take_log()), 0);
    assert_same_results(&fri, &again);
}

#[tokio::test]
async fn a_partial_intraday_bar_is_never_stored_or_scored() {
    // Friday 11:00 New York: the session is open; the mock serves today's unfinished bar.
    let clock = ManualClock::new(at("2026-11-27T11:00:00-05:00"));
    let (server, api) = mock_market::start(MockMarket::new(5), Arc::new(clock.clone())).await;
    let provider = mock_market::provider(&server);
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("s.db")).await.unwrap());
    // Ask explicitly through today.
    let req = ScanRequest {
        range: Some(DateRange::new(d(2024, 6, 1), d(2026, 11, 27)).unwrap()),
        ..request()
    };
    let deps = deps(provider.clone(), &clock, Some(store.clone()));
    let report = scan(&req, &deps, &NoopSink, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.scanned, 5);
    assert!(!api.take_log().is_empty());
    assert!(
        report.results.iter().all(|r| r.date == d(2026, 11, 25)),
        "a partial bar was scored"
    );
    let symbols: Vec<Symbol> = (0..5).map(|i| Symbol::new(format!("S{i:04}"))).collect();
    let extents = store
        .bar_extents(&provider.live_source().unwrap(), &symbols)
        .await
        .unwrap();
    assert_eq!(extents.len(), 5);
    assert!(extents.values().all(|e| e.last == d(2026, 11, 25)), "{extents:?}");
    // Without a store the same.
    let plain = scan(
        &req,
        &self::deps(provider, &clock, None),
        &NoopSink,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(plain.results.iter().all(|r| r.date == d(2026, 11, 25)));
}

#[tokio::test]
async fn two_sources_on_one_store_stay_apart() {
    let clock = ManualClock::new(at("2026-11-25T20:00:00-05:00"));
    let (a_server, _a) = mock_market::start(MockMarket::new(6), Arc::new(clock.clone())).await;
    let mut other = MockMarket::new(6);
    other.price_offset = 100.0;
    let (b_server, _b) = mock_market::start(other, Arc::new(clock.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("s.db")).await.unwrap());
    let a = run(&deps(
        mock_market::provider(&a_server),
        &clock,
        Some(store.clone()),
    ))
    .await;
    let b = run(&deps(
        mock_market::provider(&b_server),
        &clock,
        Some(store.clone()),
    ))
    .await;
    let close = |r: &ScanReport, s: &str| r.results.iter().find(|x| x.symbol.as_str() == s).unwrap().close;
    assert!(
        close(&b, "S0001") > close(&a, "S0001") + 50.0,
        "the second source read the first's bars"
    );
    // Each again from the store, each its own.
    let a2 = run(&deps(
        mock_market::provider(&a_server),
        &clock,
        Some(store.clone()),
    ))
    .await;
    assert_same_results(&a, &a2);
}

#[tokio::test]
async fn an_edited_csv_file_is_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("csv");
    std::fs::create_dir(&data).unwrap();
    let rows: String = (0..60)
        .map(|i| {
            let day = d(2026, 6, 1) + chrono::Days::new(i);
            format!("{day},10,11,9,{},1000\n", 10.0 + i as f64 * 0.01)
        })
        .collect();
    std::fs::write(
        data.join("AAA.csv"),
        format!("date,open,high,low,close,volume\n{rows}"),
    )
    .unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("s.db")).await.unwrap());
    let clock = ManualClock::new(at("2026-11-25T20:00:00-05:00"));
    let csv = || Arc::new(CsvDirProvider::new(&data).unwrap()) as Arc<dyn DataProvider>;
    let first = run(&deps(csv(), &clock, Some(store.clone()))).await;
    assert_eq!(first.scanned, 1, "{:?}", first.skipped);
    assert_eq!(first.results[0].close, 10.59);
    let edited = rows.replace(",10.59,", ",10.75,");
    std::fs::write(
        data.join("AAA.csv"),
        format!("date,open,high,low,close,volume\n{edited}"),
    )
    .unwrap();
    let second = run(&deps(csv(), &clock, Some(store.clone()))).await;
    assert_eq!(
        second.results[0].close, 10.75,
        "the stored copy won over the edited file"
    );
}

/// Provider requests to bring stored symbols up to date. Run with `--nocapture` to see the figures
/// docs/BENCHMARKS.md quotes.
#[tokio::test]
async fn refresh_after_a_holiday_weekend_costs_a_few_requests() {
    for n in [500, 5000] {
        let clock = ManualClock::new(at("2026-11-25T20:00:00-05:00"));
        let mut market = MockMarket::new(n);
        market.page_size = 1000;
        let symbols: Vec<Symbol> = market.symbols.iter().map(Symbol::new).collect();
        let (server, api) = mock_market::start(market, Arc::new(clock.clone())).await;
        let provider = mock_market::provider(&server);
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("s.db")).await.unwrap());
        // Fill the store as of Wednesday with one request per symbol.
        let req = ScanRequest {
            universe: UniverseSelection::Symbols(symbols.clone()),
            top: Some(1),
            fetch_concurrency: 32,
            ..ScanRequest::default()
        };
        let fill = scan(
            &req,
            &deps(provider.clone(), &clock, Some(store.clone())),
            &NoopSink,
            CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(fill.scanned, n);
        api.take_log();
        // Monday evening after the long weekend: Friday and Monday are new (plus Wednesday's overlap).
        clock.set(at("2026-11-30T18:00:00-05:00"));
        let refresh = scan(
            &req,
            &deps(provider.clone(), &clock, Some(store.clone())),
            &NoopSink,
            CancellationToken::new(),
        )
        .await
        .unwrap();
        let requests = bar_requests(&api.take_log());
        println!(
            "refresh of {n} stored symbols after Thanksgiving weekend (2 new sessions): {requests} bar requests"
        );
        assert_eq!(refresh.scanned, n);
        assert_eq!(refresh.stale, 0);
        assert!(requests <= 3, "{requests} requests for {n} symbols");
    }
}

#[tokio::test]
async fn the_warmer_refreshes_popular_symbols_through_the_store_after_a_new_session() {
    use technic_core::cache::BarsKey;
    use technic_core::{Cache, CacheWarmer, MemoryCache, SymbolTracker, WarmerConfig};

    let clock = ManualClock::new(at("2026-11-25T20:00:00-05:00"));
    let (server, api) = mock_market::start(MockMarket::new(30), Arc::new(clock.clone())).await;
    let provider = mock_market::provider(&server);
    let store: Arc<dyn Store> = Arc::new(technic_core::MemoryStore::default());
    run(&deps(provider.clone(), &clock, Some(store.clone()))).await;
    api.take_log();

    let market = Market::new(Arc::new(clock.clone()));
    let cache = Arc::new(MemoryCache::default().with_market(market.clone()));
    let tracker = Arc::new(SymbolTracker::default());
    let symbols: Vec<Symbol> = (0..30).map(|i| Symbol::new(format!("S{i:04}"))).collect();
    for s in &symbols {
        tracker.record(s);
    }
    let warmer = CacheWarmer::new(
        provider.clone(),
        cache.clone(),
        tracker,
        WarmerConfig::default(),
        Arc::new(|| false),
    )
    .with_market(market.clone())
    .with_store(store.clone());
    let cancel = CancellationToken::new();

    // Thanksgiving: the first pass fills the cache from the store alone.
    clock.set(at("2026-11-26T12:00:00-05:00"));
    let pass = warmer.warm_top(100, &cancel).await;
    assert_eq!((pass.considered, pass.warmed, pass.failures), (30, 30, 0));
    assert_eq!(bar_requests(&api.take_log()), 0);
    let key = |s: &Symbol| BarsKey::new(s.clone(), provider.default_range(market.expected_session()));
    assert!(cache.time_to_live(&key(&symbols[0])).is_some());
    // Nothing is due before Friday's bar: a second pass does nothing.
    let pass = warmer.warm_top(100, &cancel).await;
    assert_eq!((pass.fresh, pass.warmed), (30, 0));

    // Friday after publication: every symbol is due; two grouped requests bring all 30 up to date.
    clock.set(at("2026-11-27T13:21:00-05:00"));
    let pass = warmer.warm_top(100, &cancel).await;
    assert_eq!((pass.warmed, pass.failures), (30, 0));
    let log = api.take_log();
    assert_eq!(bar_requests(&log), 2, "{log:?}");
    let bars = cache.get(&key(&symbols[5])).await.unwrap().expect("warmed");
    assert_eq!(bars.date.last(), Some(&d(2026, 11, 27)));
    // The warmer's passes are not scans: nothing saved, nothing counted as accessed.
    assert_eq!(store.recent_scans(10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn late_bars_are_stale_and_never_up_to_date() {
    // Wednesday 19:30, three hours after the 16:20 publication time: three symbols are still a session
    // behind at the provider.
    let clock = ManualClock::new(at("2026-11-25T19:30:00-05:00"));
    let mut market = MockMarket::new(12);
    market.late = vec!["S0001".to_owned(), "S0004".to_owned(), "S0009".to_owned()];
    let (server, _api) = mock_market::start(market, Arc::new(clock.clone())).await;
    let provider = mock_market::provider(&server);
    let report = run(&deps(provider, &clock, None)).await;
    assert_eq!(report.scanned, 12, "{:?}", report.skipped);
    assert_eq!(report.expected_session, Some(d(2026, 11, 25)));
    assert_eq!(report.stale, 3);
    let freshness = report.freshness.clone().unwrap_or_default();
    assert!(
        !freshness.contains("up to date") && freshness.contains("3 of 12 results are stale"),
        "{freshness}"
    );
    let warning = report
        .warnings
        .iter()
        .find(|w| w.contains("marked stale"))
        .expect("a stale warning");
    assert!(
        warning.contains("was due from 16:20") && !warning.contains("expected from"),
        "{warning}"
    );
}
