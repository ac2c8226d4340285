//! The [`Cache`] trait for daily bars, and [`MemoryCache`], its in-process implementation on `quick_cache`.
//!
//! Entries carry their own expiry (quick_cache has no TTL). `get` never returns an expired entry;
//! `get_stale` does, so a caller can fall back to old data when the provider is down.

mod memory;

use std::fmt::{self, Debug};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

pub use memory::{MemoryCache, MemoryCacheConfig};
#[cfg(feature = "redis")]
pub use tiered::TieredCache;

#[cfg(feature = "redis")]
mod tiered;

use crate::error::Result;
use crate::model::{Bars, DateRange, Symbol};

/// What a cache entry holds bars for: one symbol over one date range.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BarsKey {
    /// The symbol.
    pub symbol: Symbol,
    /// The requested range.
    pub range: DateRange,
}

impl BarsKey {
    /// A key for `symbol` over `range`.
    pub fn new(symbol: Symbol, range: DateRange) -> Self {
        Self { symbol, range }
    }
}

impl fmt::Display for BarsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.symbol, self.range)
    }
}

/// Counters and sizes of a cache. `requests = hits + misses`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheStats {
    /// Lookups counted (fresh hits plus misses).
    pub requests: u64,
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that had to load.
    pub misses: u64,
    /// `hits / requests`, 0 when there were no requests.
    pub hit_rate: f64,
    /// Entries held now.
    pub entries: u64,
    /// Approximate bytes held now.
    pub bytes: u64,
    /// Capacity in bytes.
    pub capacity_bytes: u64,
    /// Time to live of new entries, in seconds.
    pub ttl_seconds: u64,
}

impl CacheStats {
    /// Stats from counters; computes `requests` and `hit_rate`.
    pub fn from_counts(hits: u64, misses: u64) -> Self {
        let requests = hits + misses;
        let hit_rate = if requests == 0 {
            0.0
        } else {
            hits as f64 / requests as f64
        };
        Self {
            requests,
            hits,
            misses,
            hit_rate,
            ..Self::default()
        }
    }

    /// The change from `earlier` to `self` in the counters (sizes stay those of `self`).
    pub fn since(&self, earlier: &Self) -> Self {
        let mut d = Self::from_counts(
            self.hits.saturating_sub(earlier.hits),
            self.misses.saturating_sub(earlier.misses),
        );
        d.entries = self.entries;
        d.bytes = self.bytes;
        d.capacity_bytes = self.capacity_bytes;
        d.ttl_seconds = self.ttl_seconds;
        d
    }
}

/// Counters of one tier of a tiered cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierStats {
    /// `memory`, `redis`.
    pub name: String,
    /// Lookups this tier answered.
    pub hits: u64,
    /// Lookups this tier could not answer.
    pub misses: u64,
    /// Whether the tier is reachable.
    pub up: bool,
}

/// How a [`Cache::get_or_load`] was answered.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// A fresh entry was in the cache.
    Hit(Arc<Bars>),
    /// The loader ran (here or in a concurrent caller for the same key) and its value was cached.
    Loaded(Arc<Bars>),
}

impl Lookup {
    /// The bars, however they were obtained.
    pub fn into_bars(self) -> Arc<Bars> {
        match self {
            Self::Hit(b) | Self::Loaded(b) => b,
        }
    }

    /// True for [`Lookup::Hit`].
    pub fn is_hit(&self) -> bool {
        matches!(self, Self::Hit(_))
    }
}

/// A loader for [`Cache::get_or_load`].
pub type Loader<'a> = BoxFuture<'a, Result<Arc<Bars>>>;

/// A cache of daily bars with a time to live.
///
/// Contract (checked for every implementation by [`crate::testing::cache_contract`]): `get` never returns
/// an expired entry; hits and misses are counted by `get` and `get_or_load` only; concurrent
/// `get_or_load` calls for one key run one loader.
#[async_trait]
pub trait Cache: Send + Sync + Debug {
    /// A fresh entry, counting a hit or a miss.
    async fn get(&self, key: &BarsKey) -> Result<Option<Arc<Bars>>>;

    /// An entry even if expired, without counting; for fallbacks when the provider fails.
    async fn get_stale(&self, key: &BarsKey) -> Result<Option<Arc<Bars>>>;

    /// Stores `bars` under `key` with the cache's TTL.
    async fn insert(&self, key: BarsKey, bars: Arc<Bars>) -> Result<()>;

    /// Removes `key`; true if it was present.
    async fn remove(&self, key: &BarsKey) -> Result<bool>;

    /// Removes every entry.
    async fn clear(&self) -> Result<()>;

    /// Counters and sizes.
    fn stats(&self) -> CacheStats;

    /// Time left before `key` expires (`None` when absent or expired); used to refresh ahead of expiry.
    fn time_to_live(&self, key: &BarsKey) -> Option<Duration>;

    /// A fresh entry this process holds in memory, answered at once (no loader, no waiting): a hit is
    /// counted as [`Cache::get`] counts one; `None` counts nothing, since the caller then asks
    /// [`Cache::get_or_load`], which counts. Scans take warm symbols through it without a future each.
    /// The default holds nothing; [`MemoryCache`] and a tiered cache's memory tier answer.
    fn get_held(&self, key: &BarsKey) -> Option<Arc<Bars>> {
        let _ = key;
        None
    }

    /// Per-tier counters, for a cache with tiers (empty for one tier).
    fn tiers(&self) -> Vec<TierStats> {
        Vec::new()
    }

    /// Why the cache runs degraded (a shared tier unreachable), or `None`.
    fn degraded(&self) -> Option<String> {
        None
    }

    /// A fresh entry, or the loader's value (cached before returning). Concurrent callers for the same
    /// missing key wait for one loader instead of each running their own. The default runs
    /// `get` then the loader, without that guarantee; [`MemoryCache`] provides it.
    async fn get_or_load(&self, key: &BarsKey, load: Loader<'_>) -> Result<Lookup> {
        if let Some(bars) = self.get(key).await? {
            return Ok(Lookup::Hit(bars));
        }
        let bars = load.await?;
        self.insert(key.clone(), bars.clone()).await?;
        Ok(Lookup::Loaded(bars))
    }
}
