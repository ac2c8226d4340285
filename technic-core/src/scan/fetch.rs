//! Fetching one symbol's bars with the scan's fallbacks: through the cache when it works, around it (with
//! one warning) when it fails, and from stale cached bars when the provider is unavailable.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::NaiveDate;
use tracing::warn;

use super::Deps;
use super::history::{HISTORY_BARS, StoredHistory};
use crate::cache::BarsKey;
use crate::error::{Error, Result};
use crate::model::{Bars, DateRange, Symbol};

/// What a scan says once when its cache fails.
pub(super) const CACHE_DOWN: &str = "Cache unavailable — running without caching";

/// Bars for one symbol, and whether they are stale cached bars served because the provider failed.
#[derive(Debug)]
pub(super) struct Fetch {
    pub bars: Arc<Bars>,
    pub stale: bool,
    /// True when the provider was asked (not answered by the cache or the store alone).
    pub asked_provider: bool,
    /// True when the memory cache held the bars.
    pub memory_hit: bool,
}

/// Whether the cache still works during this scan. The first cache error flips it, logs one warning and
/// makes every later fetch go straight to the provider.
#[derive(Debug, Default)]
pub(super) struct CacheHealth {
    failed: AtomicBool,
}

impl CacheHealth {
    pub fn ok(&self) -> bool {
        !self.failed.load(Ordering::Relaxed)
    }

    fn fail(&self, e: &Error) {
        if !self.failed.swap(true, Ordering::Relaxed) {
            warn!(error = %e, "{CACHE_DOWN}");
        }
    }
}

/// Provider errors after which cached bars, even expired ones, are better than nothing.
fn provider_unavailable(e: &Error) -> bool {
    e.is_transient() || matches!(e, Error::CircuitOpen { .. })
}

/// Loads `symbol`'s bars; see the module docs for the fallbacks.
pub(super) async fn fetch_symbol(
    deps: &Deps,
    health: &CacheHealth,
    history: Option<&StoredHistory>,
    symbol: &Symbol,
    range: DateRange,
    target: Option<NaiveDate>,
) -> Result<Fetch> {
    let key = BarsKey::new(symbol.clone(), range);
    let asked = AtomicBool::new(false);
    let load = || load_valid(deps, history, symbol, range, target, &asked);
    let loaded = if health.ok() {
        match deps.cache.get_or_load(&key, Box::pin(load())).await {
            Ok(lookup) => {
                let memory_hit = lookup.is_hit();
                return Ok(Fetch {
                    bars: lookup.into_bars(),
                    stale: false,
                    asked_provider: asked.load(Ordering::Relaxed),
                    memory_hit,
                });
            }
            // Providers never return cache errors, so this one is the cache's own. Loading again may
            // repeat a provider call when the cache failed only on insert; that is rare and harmless.
            Err(e @ Error::Cache { .. }) => {
                health.fail(&e);
                load().await
            }
            Err(e) => Err(e),
        }
    } else {
        load().await
    };
    match loaded {
        Ok(bars) => Ok(Fetch {
            bars,
            stale: false,
            asked_provider: asked.load(Ordering::Relaxed),
            memory_hit: false,
        }),
        Err(e) if provider_unavailable(&e) && health.ok() => match deps.cache.get_stale(&key).await {
            Ok(Some(bars)) => {
                tracing::info!(%symbol, error = %e, "provider unavailable; using stale cached bars");
                Ok(Fetch {
                    bars,
                    stale: true,
                    asked_provider: true,
                    memory_hit: false,
                })
            }
            Ok(None) => Err(e),
            Err(cache_err) => {
                health.fail(&cache_err);
                Err(e)
            }
        },
        Err(e) => Err(e),
    }
}

/// The bars from the store and the provider (only the missing dates when a store history is given),
/// checked: an empty or inconsistent series is [`Error::InvalidData`]. With a `target` (a live source),
/// bars after it (a session still open, or not yet published) are left out, as the store leaves them out.
/// Sets `asked` when the provider was called.
async fn load_valid(
    deps: &Deps,
    history: Option<&StoredHistory>,
    symbol: &Symbol,
    range: DateRange,
    target: Option<NaiveDate>,
    asked: &AtomicBool,
) -> Result<Arc<Bars>> {
    let bars = match history {
        Some(h) => {
            let (bars, asked_provider) = h.bars(deps.provider.as_ref(), symbol, range).await?;
            asked.store(asked_provider, Ordering::Relaxed);
            bars
        }
        None => {
            asked.store(true, Ordering::Relaxed);
            let bars = deps.provider.daily_bars(symbol, range).await?;
            let bars = match target {
                Some(to) => bars.into_range(DateRange {
                    from: NaiveDate::MIN,
                    to,
                }),
                None => bars,
            };
            // Scored on the same window as with a store, so a scan gives the same values either way.
            if bars.len() > HISTORY_BARS {
                bars.tail(HISTORY_BARS)
            } else {
                bars
            }
        }
    };
    if bars.is_empty() {
        let detail = format!("no bars between {} and {}", range.from, range.to);
        return Err(Error::invalid_data(symbol.as_str(), detail));
    }
    bars.validate()
        .map_err(|bad| Error::invalid_data(symbol.as_str(), bad.reason))?;
    Ok(Arc::new(bars))
}
