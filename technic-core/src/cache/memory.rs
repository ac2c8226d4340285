//! [`MemoryCache`]: an in-process bars cache on `quick_cache` with a TTL, single-flight loads and our own
//! hit/miss counters (quick_cache's own statistics count internal lookups too).
//!
//! With a [`Market`] ([`MemoryCache::with_market`]), daily bars stay fresh until the next daily bar is
//! due (the next session close plus the publication delay) instead of for a blind TTL: data that changes
//! once a day is fetched once a day, and never served after a newer bar exists.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use quick_cache::Weighter;
use quick_cache::sync::{Cache as QuickCache, EntryAction, EntryResult};
use tokio::time::Instant;

use chrono::{DateTime, Utc};

use super::{BarsKey, Cache, CacheStats, Loader, Lookup};
use crate::calendar::Market;
use crate::error::Result;
use crate::model::Bars;

/// Settings of a [`MemoryCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryCacheConfig {
    /// How long an entry stays fresh.
    pub ttl: Duration,
    /// Maximum bytes held (approximate, by the weigher).
    pub capacity_bytes: u64,
    /// Expected number of entries (sizes internal tables).
    pub estimated_entries: usize,
}

impl Default for MemoryCacheConfig {
    fn default() -> Self {
        // 512 MiB holds ~10,000 symbols of two years of bars; five minutes matches intraday refreshes.
        Self {
            ttl: Duration::from_secs(300),
            capacity_bytes: 512 << 20,
            estimated_entries: 10_000,
        }
    }
}

#[derive(Clone)]
struct Entry {
    bars: Arc<Bars>,
    expires_at: Instant,
    /// With a market: fresh while the market clock is before this instant.
    fresh_until: Option<DateTime<Utc>>,
}

#[derive(Clone)]
struct BarsWeighter;

impl Weighter<BarsKey, Entry> for BarsWeighter {
    fn weight(&self, _key: &BarsKey, val: &Entry) -> u64 {
        // Never zero: zero-weight entries are never evicted.
        (val.bars.heap_bytes() + 128) as u64
    }
}

/// The in-memory bars cache. Cheap to share behind an `Arc`.
pub struct MemoryCache {
    inner: QuickCache<BarsKey, Entry, BarsWeighter>,
    config: MemoryCacheConfig,
    market: Option<Market>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCache")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Default for MemoryCache {
    fn default() -> Self {
        Self::new(MemoryCacheConfig::default())
    }
}

impl MemoryCache {
    /// A cache with `config`.
    pub fn new(config: MemoryCacheConfig) -> Self {
        Self {
            inner: QuickCache::with_weighter(
                config.estimated_entries.max(1),
                config.capacity_bytes.max(1),
                BarsWeighter,
            ),
            config,
            market: None,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> MemoryCacheConfig {
        self.config
    }

    fn count(&self, hit: bool) {
        let counter = if hit { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The same cache with entries fresh until the next daily bar is due (see the module docs).
    pub fn with_market(mut self, market: Market) -> Self {
        self.market = Some(market);
        self
    }

    /// How long a new entry stays fresh.
    fn lifetime(&self) -> Duration {
        self.market
            .as_ref()
            .map_or(self.config.ttl, Market::until_next_bar)
    }

    fn entry(&self, bars: Arc<Bars>) -> Entry {
        Entry {
            bars,
            expires_at: Instant::now() + self.lifetime(),
            fresh_until: self.market.as_ref().map(Market::next_bar_at),
        }
    }

    fn is_fresh(&self, e: &Entry, now: Instant) -> bool {
        e.expires_at > now
            && e.fresh_until
                .is_none_or(|t| self.market.as_ref().is_none_or(|m| m.now() < t))
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &BarsKey) -> Result<Option<Arc<Bars>>> {
        let fresh = self
            .inner
            .get(key)
            .filter(|e| self.is_fresh(e, Instant::now()))
            .map(|e| e.bars);
        self.count(fresh.is_some());
        Ok(fresh)
    }

    async fn get_stale(&self, key: &BarsKey) -> Result<Option<Arc<Bars>>> {
        Ok(self.inner.peek(key).map(|e| e.bars))
    }

    async fn insert(&self, key: BarsKey, bars: Arc<Bars>) -> Result<()> {
        self.inner.insert(key, self.entry(bars));
        Ok(())
    }

    async fn remove(&self, key: &BarsKey) -> Result<bool> {
        Ok(self.inner.remove(key).is_some())
    }

    async fn clear(&self) -> Result<()> {
        self.inner.clear();
        Ok(())
    }

    fn stats(&self) -> CacheStats {
        let mut s = CacheStats::from_counts(
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        );
        s.entries = self.inner.len() as u64;
        s.bytes = self.inner.weight();
        s.capacity_bytes = self.inner.capacity();
        s.ttl_seconds = self.lifetime().as_secs();
        s
    }

    fn get_held(&self, key: &BarsKey) -> Option<Arc<Bars>> {
        let fresh = self
            .inner
            .get(key)
            .filter(|e| self.is_fresh(e, Instant::now()))
            .map(|e| e.bars);
        if fresh.is_some() {
            self.count(true);
        }
        fresh
    }

    fn time_to_live(&self, key: &BarsKey) -> Option<Duration> {
        let now = Instant::now();
        let entry = self.inner.peek(key)?;
        let mut left = entry.expires_at.checked_duration_since(now)?;
        if let (Some(until), Some(m)) = (entry.fresh_until, &self.market) {
            left = left.min((until - m.now()).to_std().ok()?);
        }
        Some(left).filter(|d| !d.is_zero())
    }

    /// Single-flight: the first caller for a missing or expired key gets quick_cache's placeholder guard
    /// and runs the loader; the others wait for its value. If the loader fails, the guard is dropped and a
    /// waiting caller becomes the next loader.
    async fn get_or_load(&self, key: &BarsKey, load: Loader<'_>) -> Result<Lookup> {
        let now = Instant::now();
        let result = self
            .inner
            .entry_async(key, |_, e| {
                if self.is_fresh(e, now) {
                    EntryAction::Retain(e.bars.clone())
                } else {
                    EntryAction::ReplaceWithGuard
                }
            })
            .await;
        let (guard, old) = match result {
            EntryResult::Retained(bars) => {
                self.count(true);
                return Ok(Lookup::Hit(bars));
            }
            EntryResult::Vacant(g) => (g, None),
            EntryResult::Replaced(g, old) => (g, Some(old)),
            // Removed is never chosen above; Timeout only comes from the non-async `entry`.
            EntryResult::Removed(..) | EntryResult::Timeout => {
                self.count(false);
                let bars = load.await?;
                self.inner.insert(key.clone(), self.entry(bars.clone()));
                return Ok(Lookup::Loaded(bars));
            }
        };
        self.count(false);
        match load.await {
            Ok(bars) => {
                let _ = guard.insert(self.entry(bars.clone()));
                Ok(Lookup::Loaded(bars))
            }
            Err(e) => {
                // Keep the expired entry (still expired) so `get_stale` can serve it as a fallback.
                if let Some(old) = old {
                    let _ = guard.insert(old);
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cache_contract, sample_bars, sample_key};
    use proptest::prelude::*;

    fn cache(ttl_secs: u64) -> MemoryCache {
        MemoryCache::new(MemoryCacheConfig {
            ttl: Duration::from_secs(ttl_secs),
            ..MemoryCacheConfig::default()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn with_a_market_entries_stay_fresh_until_the_next_bar_is_due() {
        use crate::clock::ManualClock;
        let at = |t: &str| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
        // Wednesday before Thanksgiving, 20:00 New York: the next bar is Friday's (early close 13:00).
        let clock = ManualClock::new(at("2026-11-25T20:00:00-05:00"));
        let c = cache(300).with_market(Market::new(Arc::new(clock.clone())));
        let key = sample_key("CAL");
        c.insert(key.clone(), Arc::new(sample_bars(5, 10.0)))
            .await
            .unwrap();
        assert_eq!(
            c.time_to_live(&key),
            Some(Duration::from_secs(41 * 3600 + 20 * 60))
        );
        // Thanksgiving evening: still fresh (no bar that day), far past the 300 s TTL.
        clock.set(at("2026-11-26T20:00:00-05:00"));
        assert!(c.get(&key).await.unwrap().is_some(), "fresh through the holiday");
        // Friday 13:19: not yet; 13:20: Friday's bar is due, the entry is no longer served as fresh.
        clock.set(at("2026-11-27T13:19:00-05:00"));
        assert!(c.get(&key).await.unwrap().is_some());
        assert!(c.get_held(&key).is_some());
        clock.set(at("2026-11-27T13:20:00-05:00"));
        assert!(
            c.get(&key).await.unwrap().is_none(),
            "served after a newer bar was due"
        );
        assert!(c.get_held(&key).is_none(), "held after a newer bar was due");
        assert!(c.time_to_live(&key).is_none());
        assert!(c.get_stale(&key).await.unwrap().is_some(), "kept for fallbacks");
        // A new entry now lives until Monday 16:20.
        c.insert(key.clone(), Arc::new(sample_bars(6, 10.0)))
            .await
            .unwrap();
        assert_eq!(c.stats().ttl_seconds, (3 * 24 * 3600 + 3 * 3600) as u64);
    }

    #[tokio::test]
    async fn meets_the_cache_contract() {
        cache_contract(&cache(60)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire_but_stay_available_as_stale() {
        let c = cache(10);
        let key = sample_key("TTL");
        c.insert(key.clone(), Arc::new(sample_bars(5, 10.0)))
            .await
            .unwrap();
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(c.get(&key).await.unwrap().is_some());
        assert!(c.get_held(&key).is_some());
        assert_eq!(c.time_to_live(&key), Some(Duration::from_secs(1)));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(c.get(&key).await.unwrap().is_none(), "expired entry served");
        assert!(c.get_held(&key).is_none(), "expired entry held");
        assert!(c.time_to_live(&key).is_none());
        assert!(
            c.get_stale(&key).await.unwrap().is_some(),
            "stale entry kept for fallbacks"
        );
        // An expired entry is reloaded by get_or_load, and a failing reload keeps the stale copy.
        let failed = c
            .get_or_load(&key, Box::pin(async { Err(crate::Error::internal("down")) }))
            .await;
        assert!(failed.is_err());
        assert!(c.get_stale(&key).await.unwrap().is_some());
        let fresh = Arc::new(sample_bars(6, 10.0));
        let got = c
            .get_or_load(&key, Box::pin(async { Ok(fresh.clone()) }))
            .await
            .unwrap();
        assert!(!got.is_hit());
        assert_eq!(c.get(&key).await.unwrap().unwrap().len(), 6);
    }

    #[tokio::test]
    async fn stats_count_entries_and_bytes() {
        let c = cache(60);
        for i in 0..10 {
            c.insert(sample_key(&format!("S{i}")), Arc::new(sample_bars(100, 10.0)))
                .await
                .unwrap();
        }
        let s = c.stats();
        assert_eq!(s.entries, 10);
        assert!(s.bytes >= 10 * sample_bars(100, 10.0).heap_bytes() as u64);
        assert_eq!(s.ttl_seconds, 60);
        assert_eq!(s.hit_rate, 0.0);
    }

    #[tokio::test]
    async fn capacity_bounds_memory() {
        let one = (sample_bars(100, 1.0).heap_bytes() + 128) as u64;
        let c = MemoryCache::new(MemoryCacheConfig {
            ttl: Duration::from_secs(60),
            capacity_bytes: one * 20,
            estimated_entries: 20,
        });
        for i in 0..200 {
            c.insert(sample_key(&format!("S{i}")), Arc::new(sample_bars(100, 1.0)))
                .await
                .unwrap();
        }
        assert!(c.stats().bytes <= one * 20, "{:?}", c.stats());
    }

    proptest! {
        /// Whatever the sequence of inserts and clock steps, `get` never returns an entry older than the TTL,
        /// and `get_held` answers exactly when `get` does.
        #[test]
        fn never_returns_expired(ops in proptest::collection::vec((0u8..4, 0u64..8), 1..60)) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
            rt.block_on(async {
                let c = cache(5);
                let mut inserted_at = std::collections::HashMap::new();
                for (k, step) in ops {
                    let key = sample_key(&format!("K{k}"));
                    if step % 2 == 0 {
                        c.insert(key.clone(), Arc::new(sample_bars(3, 1.0))).await.unwrap();
                        inserted_at.insert(k, Instant::now());
                    }
                    tokio::time::advance(Duration::from_secs(step)).await;
                    let held = c.get_held(&key).is_some();
                    let got = c.get(&key).await.unwrap();
                    prop_assert_eq!(held, got.is_some());
                    match inserted_at.get(&k) {
                        Some(t) if t.elapsed() < Duration::from_secs(5) => prop_assert!(got.is_some()),
                        _ => prop_assert!(got.is_none()),
                    }
                }
                let s = c.stats();
                prop_assert_eq!(s.requests, s.hits + s.misses);
                Ok(())
            })?;
        }
    }
}
