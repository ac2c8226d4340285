//! Two tiers (cargo feature `redis`): this server's [`MemoryCache`] (L1) in front of Redis (L2), shared by
//! a fleet. A symbol one server loaded is in Redis for every other: no second provider request.
//!
//! Keys are versioned and scoped by source (`technic:v1:bars:<source>:<symbol>:<from>:<to>`); values are
//! the store's compact column-wise encoding; entries expire when the next daily bar is due (the market
//! calendar), like L1's. A load across the fleet is single-flight: the first server to miss takes a short
//! Redis lock and loads; the others wait (bounded) for its value. When Redis is down, L1 and the loader
//! answer alone and [`Cache::degraded`] says why.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::{BarsKey, Cache, CacheStats, Loader, Lookup, MemoryCache, TierStats};
use crate::calendar::Market;
use crate::error::Result;
use crate::fleet::RedisLink;
use crate::model::Bars;
use crate::store::codec;

/// How long a server waits for another server's load of the same key before loading itself.
pub const LOCK_WAIT: Duration = Duration::from_secs(5);
/// How long a load lock lives if its holder dies.
const LOCK_TTL: Duration = Duration::from_secs(10);

/// Memory in front of Redis.
#[derive(Debug)]
pub struct TieredCache {
    l1: MemoryCache,
    link: Arc<RedisLink>,
    /// The source the bars come from (keys are scoped by it).
    scope: String,
    market: Option<Market>,
    /// Fallback lifetime without a market.
    ttl: Duration,
    l2_hits: AtomicU64,
    l2_misses: AtomicU64,
}

impl TieredCache {
    /// `l1` in front of Redis on `link`, for bars of `scope` (the provider's source).
    pub fn new(l1: MemoryCache, link: Arc<RedisLink>, scope: &str) -> Self {
        let ttl = l1.config().ttl;
        Self {
            l1,
            link,
            scope: scope.replace(char::is_whitespace, "_"),
            market: None,
            ttl,
            l2_hits: AtomicU64::new(0),
            l2_misses: AtomicU64::new(0),
        }
    }

    /// Entries (in both tiers) fresh until the next daily bar is due.
    pub fn with_market(mut self, market: Market) -> Self {
        self.l1 = self.l1.with_market(market.clone());
        self.market = Some(market);
        self
    }

    fn lifetime(&self) -> Duration {
        self.market
            .as_ref()
            .map_or(self.ttl, Market::until_next_bar)
            .max(Duration::from_secs(1))
    }

    fn key(&self, key: &BarsKey) -> String {
        self.link.key(&format!(
            "bars:{}:{}:{}:{}",
            self.scope, key.symbol, key.range.from, key.range.to
        ))
    }

    async fn l2_get(&self, key: &BarsKey) -> Option<Arc<Bars>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.key(key));
        let bytes: Option<Vec<u8>> = self.link.run::<Option<Vec<u8>>>(&cmd).await.flatten();
        let found = bytes.and_then(|b| {
            let mut bars = Bars::default();
            codec::decode_into(&b, &mut bars).ok()?;
            Some(Arc::new(bars))
        });
        let counter = if found.is_some() {
            &self.l2_hits
        } else {
            &self.l2_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    async fn l2_put(&self, key: &BarsKey, bars: &Bars) {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key))
            .arg(codec::encode(bars, 0, bars.len()))
            .arg("PX")
            .arg(self.lifetime().as_millis() as u64);
        let _ = self.link.run::<()>(&cmd).await;
    }

    /// L2, then (under a fleet-wide lock) the loader; others wait for the value.
    async fn load_through(&self, key: &BarsKey, load: Loader<'_>) -> Result<Arc<Bars>> {
        if let Some(bars) = self.l2_get(key).await {
            return Ok(bars);
        }
        let lock = format!("{}:lock", self.key(key));
        let token = uuid::Uuid::now_v7().to_string();
        let mut take = redis::cmd("SET");
        take.arg(&lock)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(LOCK_TTL.as_millis() as u64);
        match self.link.run::<Option<String>>(&take).await {
            // Another server is loading it: wait for its value, bounded.
            Some(None) => {
                let deadline = tokio::time::Instant::now() + LOCK_WAIT;
                while tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if let Some(bars) = self.l2_get(key).await {
                        return Ok(bars);
                    }
                    let mut held = redis::cmd("EXISTS");
                    held.arg(&lock);
                    if self.link.run::<i64>(&held).await != Some(1) {
                        break;
                    }
                }
                let bars = load.await?;
                self.l2_put(key, &bars).await;
                Ok(bars)
            }
            // Ours (or Redis is down: load alone).
            _ => {
                let result = load.await;
                if let Ok(bars) = &result {
                    self.l2_put(key, bars).await;
                }
                let release = redis::Script::new(
                    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
                );
                let _ = self.link.script::<i64>(release.key(&lock).arg(&token)).await;
                result
            }
        }
    }
}

#[async_trait]
impl Cache for TieredCache {
    async fn get(&self, key: &BarsKey) -> Result<Option<Arc<Bars>>> {
        if let Some(bars) = self.l1.get(key).await? {
            return Ok(Some(bars));
        }
        match self.l2_get(key).await {
            Some(bars) => {
                self.l1.insert(key.clone(), bars.clone()).await?;
                Ok(Some(bars))
            }
            None => Ok(None),
        }
    }

    async fn get_stale(&self, key: &BarsKey) -> Result<Option<Arc<Bars>>> {
        self.l1.get_stale(key).await
    }

    async fn insert(&self, key: BarsKey, bars: Arc<Bars>) -> Result<()> {
        self.l2_put(&key, &bars).await;
        self.l1.insert(key, bars).await
    }

    async fn remove(&self, key: &BarsKey) -> Result<bool> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.key(key));
        let l2 = self.link.run::<i64>(&cmd).await.unwrap_or(0) > 0;
        Ok(self.l1.remove(key).await? || l2)
    }

    /// Empties this server's memory tier only: Redis is shared by the fleet (let it expire, or flush the
    /// keys under `technic:v1:` yourself).
    async fn clear(&self) -> Result<()> {
        self.l1.clear().await
    }

    /// Lookups of the whole cache: a hit is an answer from either tier.
    fn stats(&self) -> CacheStats {
        let l1 = self.l1.stats();
        let l2 = self.l2_hits.load(Ordering::Relaxed);
        let mut s = CacheStats::from_counts(l1.hits + l2, l1.misses.saturating_sub(l2));
        s.entries = l1.entries;
        s.bytes = l1.bytes;
        s.capacity_bytes = l1.capacity_bytes;
        s.ttl_seconds = l1.ttl_seconds;
        s
    }

    fn time_to_live(&self, key: &BarsKey) -> Option<Duration> {
        self.l1.time_to_live(key)
    }

    async fn get_or_load(&self, key: &BarsKey, load: Loader<'_>) -> Result<Lookup> {
        // L1's single flight within this server; L2 and the fleet lock across servers.
        let inner: Loader<'_> = Box::pin(self.load_through(key, load));
        self.l1.get_or_load(key, inner).await
    }

    fn get_held(&self, key: &BarsKey) -> Option<Arc<Bars>> {
        self.l1.get_held(key)
    }

    fn tiers(&self) -> Vec<TierStats> {
        let l1 = self.l1.stats();
        vec![
            TierStats {
                name: "memory".to_owned(),
                hits: l1.hits,
                misses: l1.misses,
                up: true,
            },
            TierStats {
                name: "redis".to_owned(),
                hits: self.l2_hits.load(Ordering::Relaxed),
                misses: self.l2_misses.load(Ordering::Relaxed),
                up: self.link.degraded().is_none(),
            },
        ]
    }

    fn degraded(&self) -> Option<String> {
        self.link.degraded()
    }
}
