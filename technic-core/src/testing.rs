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
