//! Reusable contract checks for implementations of the library's traits, so every implementation is held
//! to the same behaviour. Call them from each implementation's tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::NaiveDate;

use crate::cache::{BarsKey, Cache};
use crate::model::{Bar, Bars, DateRange, Symbol};

/// A small valid series of `n` bars starting 2024-01-01 whose closes start at `base`.
pub fn sample_bars(n: usize, base: f64) -> Bars {
    let start = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or(NaiveDate::MIN);
    let bars: Vec<Bar> = (0..n)
        .map(|i| {
            let close = base + (i as f64 * 0.37).sin() + i as f64 * 0.05;
            Bar {
                date: start + chrono::Days::new(i as u64),
                open: close - 0.2,
                high: close + 0.5,
                low: close - 0.6,
                close,
                volume: 1_000.0 + i as f64,
            }
        })
        .collect();
    Bars::from_bars(&bars)
}

/// A key for `symbol` over 2024.
pub fn sample_key(symbol: &str) -> BarsKey {
    let from = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or(NaiveDate::MIN);
    let to = NaiveDate::from_ymd_opt(2024, 12, 31).unwrap_or(NaiveDate::MAX);
    BarsKey::new(Symbol::new(symbol), DateRange { from, to })
}

/// Checks the [`Cache`] contract on an empty cache whose TTL is at least a second: round trips, counters,
/// removal, clearing and single-flight loading.
///
/// # Panics
/// On any violation, with a message saying which.
pub async fn cache_contract(cache: &dyn Cache) {
    let key = sample_key("CONTRACT");
    let bars = Arc::new(sample_bars(30, 50.0));
    let before = cache.stats();
    assert!(
        cache.get(&key).await.expect("get works").is_none(),
        "empty cache returned a value"
    );
    cache
        .insert(key.clone(), bars.clone())
        .await
        .expect("insert works");
    let got = cache
        .get(&key)
        .await
        .expect("get works")
        .expect("inserted value is returned");
    assert_eq!(*got, *bars, "cache returned different bars");
    let after = cache.stats().since(&before);
    assert_eq!(
        (after.hits, after.misses, after.requests),
        (1, 1, 2),
        "hit/miss counting"
    );
    assert!(
        cache.time_to_live(&key).is_some(),
        "fresh entry has a time to live"
    );
    // `get_held` answers from this process's memory or not at all; a hit counts, a `None` does not.
    let before_held = cache.stats();
    let held = cache.get_held(&key);
    if let Some(b) = &held {
        assert_eq!(**b, *bars, "get_held returned different bars");
    }
    let counted = cache.stats().since(&before_held);
    assert_eq!(
        (counted.hits, counted.misses),
        (u64::from(held.is_some()), 0),
        "get_held counts a hit when it answers and nothing otherwise"
    );
    assert!(
        cache.get_held(&sample_key("NOT-HELD")).is_none(),
        "get_held answered a key never inserted"
    );
    assert_eq!(
        cache.stats().since(&before_held).misses,
        0,
        "a get_held miss was counted"
    );
    assert!(
        cache.get_stale(&key).await.expect("get_stale works").is_some(),
        "get_stale sees fresh entries"
    );

    assert!(
        cache.remove(&key).await.expect("remove works"),
        "remove reports a present key"
    );
    assert!(
        !cache.remove(&key).await.expect("remove works"),
        "remove reports an absent key"
    );
    assert!(
        cache.get(&key).await.expect("get works").is_none(),
        "removed key still served"
    );
    assert!(cache.get_held(&key).is_none(), "removed key still held");

    // Single flight: eight concurrent loads of one missing key run the loader once.
    let loads = AtomicUsize::new(0);
    let key2 = sample_key("FLIGHT");
    let calls = (0..8).map(|_| {
        let (loads, bars, key2) = (&loads, bars.clone(), key2.clone());
        async move {
            cache
                .get_or_load(
                    &key2,
                    Box::pin(async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        Ok(bars)
                    }),
                )
                .await
                .expect("get_or_load works")
        }
    });
    let results = futures::future::join_all(calls).await;
    assert_eq!(
        loads.load(Ordering::SeqCst),
        1,
        "concurrent misses ran the loader more than once"
    );
    assert!(results.iter().all(|r| *r.clone().into_bars() == *bars));

    // A failed load caches nothing and the next caller loads again.
    let key3 = sample_key("FAILS");
    let err = cache
        .get_or_load(
            &key3,
            Box::pin(async { Err(crate::Error::internal("loader failed")) }),
        )
        .await;
    assert!(err.is_err(), "loader error is returned");
    assert!(
        cache.get_stale(&key3).await.expect("get_stale works").is_none(),
        "failed load cached a value"
    );

    cache.clear().await.expect("clear works");
    assert_eq!(cache.stats().entries, 0, "clear left entries");
}

/// `n` results as a standard scan of the synthetic demo universe ranks them (explanations left empty, as
/// a scan leaves them): realistic names, sectors and indicator values for sizing and round-trip tests.
pub async fn demo_results(n: usize) -> Vec<crate::scan::ScanResult> {
    use crate::provider::{DataProvider, SyntheticConfig, SyntheticProvider};
    let provider = SyntheticProvider::new(SyntheticConfig {
        n_symbols: n,
        n_bars: 300,
        ..SyntheticConfig::default()
    });
    let universe = provider.universe().await.unwrap_or_default();
    let mut results: Vec<_> = universe
        .iter()
        .filter_map(|entry| {
            let bars = provider.full_history(&entry.symbol).ok()?;
            let mut r = crate::scan::score_symbol(entry, &bars)?;
            r.explain.clear();
            Some(r)
        })
        .collect();
    results.sort_by(|a, b| b.tech_rating.total_cmp(&a.tech_rating));
    for (i, r) in results.iter_mut().enumerate() {
        r.rank = i + 1;
    }
    results
}

/// A complete scan `id` started at 2023-11-14 22:13:20.123 UTC with `results` and one skipped symbol.
pub fn sample_report(id: &str, results: Vec<crate::scan::ScanResult>) -> crate::scan::ScanReport {
    use crate::scan::{ScanReport, ScanState, Skipped};
    use chrono::DateTime;

    let day = results.first().map_or(NaiveDate::MIN, |r| r.date);
    ScanReport {
        id: id.into(),
        state: ScanState::Complete,
        error: None,
        provider: "test".into(),
        demo: true,
        started_at: DateTime::from_timestamp_millis(1_700_000_000_123).unwrap_or_default(),
        range: DateRange { from: day, to: day },
        universe_size: results.len() + 1,
        scanned: results.len(),
        matched: results.len(),
        stale: results.iter().filter(|r| r.stale).count(),
        results,
        skipped: vec![Skipped {
            symbol: Symbol::new("BAD"),
            reason: "invalid data in BAD.csv: line 3".into(),
            category: crate::error::Category::Data,
        }],
        filtered: Default::default(),
        timing: Default::default(),
        cache: Default::default(),
        retries: 0,
        provider_calls: Default::default(),
        warnings: Vec::new(),
        expected_session: None,
        adjustments: 0,
        freshness: None,
        store_hits: 0,
        regime: None,
    }
}

/// Checks the [`Store`](crate::store::Store) contract against an empty store: bars upsert by date and
/// load by range, extents follow what was stored and asked for, metric samples and alerts come back in
/// time order from `since`, access counts rank symbols. Panics on the first violation.
pub async fn store_contract(store: &dyn crate::store::Store) {
    use crate::monitor::{Alert, MetricSample, Severity};
    use crate::store::BarsUpdate;
    use chrono::{DateTime, Duration as ChronoDuration};

    let (a, b) = (Symbol::new("CONTRACT_A"), Symbol::new("CONTRACT_B"));
    let bars = sample_bars(40, 20.0);
    store
        .save_bars_batch(
            "test",
            vec![BarsUpdate {
                replace: false,
                symbol: a.clone(),
                bars: bars.tail(30),
                fetched_from: bars.date[0],
                fetched_to: bars.date[39],
            }],
        )
        .await
        .expect("save_bars_batch");
    store
        .save_bars(
            "test",
            &a,
            &bars.slice_range(DateRange {
                from: bars.date[0],
                to: bars.date[14],
            }),
        )
        .await
        .expect("save_bars");
    let all = DateRange {
        from: NaiveDate::MIN,
        to: NaiveDate::MAX,
    };
    let got = store
        .load_bars("test", &[a.clone(), b.clone()], all)
        .await
        .expect("load_bars");
    assert_eq!(got.len(), 1, "a symbol with no bars must be absent");
    assert_eq!(got[&a], bars, "overlapping saves must merge by date");
    let part = DateRange {
        from: bars.date[5],
        to: bars.date[9],
    };
    let got = store
        .load_bars("test", std::slice::from_ref(&a), part)
        .await
        .expect("load_bars");
    assert_eq!(got[&a], bars.slice_range(part), "load_bars must honour the range");

    let extents = store
        .bar_extents("test", &[a.clone(), b.clone()])
        .await
        .expect("bar_extents");
    assert_eq!(extents.len(), 1);
    let e = extents[&a];
    assert_eq!((e.first, e.last, e.n_bars), (bars.date[0], bars.date[39], 40));
    assert!(e.fetched_from <= e.first && e.fetched_to >= e.last, "{e:?}");

    // Sources are kept apart: another source sees nothing of "test", and its bars do not leak back.
    let other = sample_bars(10, 500.0);
    assert!(
        store
            .load_bars("other", std::slice::from_ref(&a), all)
            .await
            .expect("load_bars")
            .is_empty(),
        "bars of one source must not answer another"
    );
    assert!(
        store
            .bar_extents("other", std::slice::from_ref(&a))
            .await
            .expect("extents")
            .is_empty()
    );
    store.save_bars("other", &a, &other).await.expect("save_bars");
    let got = store
        .load_bars("test", std::slice::from_ref(&a), all)
        .await
        .expect("load_bars");
    assert_eq!(got[&a], bars, "saving another source's bars changed this one's");

    // A replacing update drops the symbol's whole history in that source (a split refetch).
    let adjusted = sample_bars(12, 5.0);
    store
        .save_bars_batch(
            "other",
            vec![BarsUpdate {
                replace: true,
                symbol: a.clone(),
                bars: adjusted.clone(),
                fetched_from: adjusted.date[0],
                fetched_to: adjusted.date[11],
            }],
        )
        .await
        .expect("replacing save");
    let got = store
        .load_bars("other", std::slice::from_ref(&a), all)
        .await
        .expect("load_bars");
    assert_eq!(
        got[&a], adjusted,
        "a replacing update must leave exactly its bars"
    );
    let e = store
        .bar_extents("other", std::slice::from_ref(&a))
        .await
        .expect("extents")[&a];
    assert_eq!(
        (e.n_bars, e.fetched_from, e.fetched_to),
        (12, adjusted.date[0], adjusted.date[11])
    );
    let got = store
        .load_bars("test", std::slice::from_ref(&a), all)
        .await
        .expect("load_bars");
    assert_eq!(got[&a], bars, "replacing in one source changed another");

    let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    for i in [2, 0, 1] {
        let sample = MetricSample {
            at: t0 + ChronoDuration::minutes(i),
            cache_hit_rate: i as f64 / 10.0,
            avg_response_ms: 1.0,
            active_connections: 0,
            error_rate: 0.0,
            requests: 1,
            p95_cached_ms: 0.0,
            p95_uncached_ms: 0.0,
            avg_cached_ms: (i > 0).then_some(0.5),
            avg_uncached_ms: Some(i as f64 * 3.0),
            http_requests: i as u64 * 7,
            http_avg_ms: 2.5,
            http_error_rate: 0.125,
        };
        store
            .save_metric_sample(&sample)
            .await
            .expect("save_metric_sample");
    }
    let samples = store
        .metric_samples(t0 + ChronoDuration::minutes(1))
        .await
        .expect("metric_samples");
    let rates: Vec<f64> = samples.iter().map(|s| s.cache_hit_rate).collect();
    assert_eq!(rates, [0.1, 0.2], "samples from `since`, oldest first");
    assert_eq!(
        (samples[0].avg_cached_ms, samples[0].avg_uncached_ms),
        (Some(0.5), Some(3.0))
    );
    assert_eq!(samples[0].http_requests, 7);
    assert_eq!(samples[0].http_avg_ms, 2.5);
    assert_eq!(samples[0].http_error_rate, 0.125);
    let alert = Alert {
        at: t0,
        rule: "high_error_rate".into(),
        severity: Severity::Error,
        value: 0.5,
        threshold: 0.05,
        message: "Error rate 50.0% is above 5%".into(),
    };
    store.save_alert(&alert).await.expect("save_alert");
    assert_eq!(store.alerts(t0).await.expect("alerts"), vec![alert]);
    let summary = store.metric_summary(t0).await.expect("metric_summary");
    assert_eq!(summary.n_samples, 3);
    assert_eq!(summary.alerts[0].count, 1);

    store
        .record_access(&[a.clone(), b.clone()])
        .await
        .expect("record_access");
    store
        .record_access(std::slice::from_ref(&b))
        .await
        .expect("record_access");
    let counts = store.access_counts(1).await.expect("access_counts");
    assert_eq!(counts, vec![(b, 2)], "most accessed first, at most `limit`");

    use crate::screen::{SavedScreen, ScreenSpec};
    let saved = |name: &str, expr: Option<&str>, sort: Option<&str>| SavedScreen {
        name: name.to_owned(),
        spec: ScreenSpec {
            where_: expr.map(str::to_owned),
            sort: sort.map(str::to_owned),
        },
        saved_at: t0,
    };
    let dips = saved("dips", Some("rsi_14 < 30 and sector in (\"Energy\")"), None);
    store.save_screen(&dips).await.expect("save_screen");
    store
        .save_screen(&saved("alpha", None, Some("change_pct:asc")))
        .await
        .expect("save_screen");
    let replaced = saved("dips", Some("rsi_14 < 25"), Some("rsi_14:asc"));
    store.save_screen(&replaced).await.expect("save_screen replaces");
    let names: Vec<String> = store
        .screens()
        .await
        .expect("screens")
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["alpha", "dips"], "by name");
    assert_eq!(store.screen("dips").await.expect("screen"), Some(replaced));
    assert!(store.delete_screen("dips").await.expect("delete_screen"));
    assert!(
        !store.delete_screen("dips").await.expect("delete_screen"),
        "already gone"
    );
    assert_eq!(store.screen("dips").await.expect("screen"), None);

    scan_round_trip(store).await;
}

/// Part of [`store_contract`]: a scan of 300 realistic results and one odd one comes back exactly as
/// saved, every field of every result (floats bit for bit); saving it again replaces it.
async fn scan_round_trip(store: &dyn crate::store::Store) {
    let mut results = demo_results(300).await;
    let mut odd = results[0].clone();
    odd.rank = results.len() + 1;
    odd.symbol = Symbol::new("ODD.B");
    odd.name = "Ünïcode «name» — ok".into();
    odd.industry.clear();
    odd.as_of = odd.date.pred_opt();
    odd.stale = true;
    odd.trade_plan = None;
    odd.close = -0.0;
    odd.change_pct = Some(f64::INFINITY);
    odd.indicators.adx_14 = None;
    odd.explain = odd.explained();
    results.push(odd);
    let report = sample_report("contract-scan", results);
    store.save_scan(&report).await.expect("save_scan");
    store.save_scan(&report).await.expect("save_scan again");
    let back = store.scan(&report.id).await.expect("scan").expect("saved scan");
    assert_eq!(back, report, "a scan must come back exactly as saved");
    assert_eq!(
        back.results[300].close.to_bits(),
        (-0.0f64).to_bits(),
        "floats bit for bit"
    );
}
