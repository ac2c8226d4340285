//! [`CacheWarmer`]: a background task that keeps the most popular symbols in the cache.
//!
//! - Every `interval` it loads the top `top_n` symbols of the [`SymbolTracker`] that are not fresh.
//! - Every `check_every` it refreshes popular entries whose remaining time to live has fallen below
//!   `1 − refresh_ahead` of the TTL, so a popular symbol never goes cold between refreshes. With a cache
//!   on the market calendar ([`crate::MemoryCache::with_market`]) an entry's time to live is the time
//!   until the next daily bar is due, so this refreshes popular symbols just after a new bar is published,
//!   once per session, and never on a blind cycle.
//! - Before the US market opens (on trading sessions, at `premarket` New York time, from the
//!   [`Market`] calendar) it warms the top `premarket_top_n`.
//! - Provider calls are spaced by `min_gap` (a rate limit), and warming pauses while the server is busy
//!   or the provider fails more than `max_error_rate` of a pass, resuming after `pause_for`.
//!
//! Every decision is visible in [`WarmerStatus`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::SymbolTracker;
use crate::cache::{BarsKey, Cache};
use crate::calendar::{Market, MarketCalendar};
use crate::error::{Category, Error};
use crate::model::Symbol;
use crate::progress::NoopSink;
use crate::provider::DataProvider;
use crate::scan::{Deps, ScanRequest, UniverseSelection, scan};
use crate::store::Store;

/// Warmer settings.
#[derive(Debug, Clone, PartialEq)]
pub struct WarmerConfig {
    /// Time between full warming passes.
    pub interval: Duration,
    /// Symbols kept warm.
    pub top_n: usize,
    /// Refresh an entry once this share of its TTL has passed (0.8: with 20 % left).
    pub refresh_ahead: f64,
    /// How often entries are checked for refresh-ahead.
    pub check_every: Duration,
    /// Pre-market warm-up time, New York local, on weekdays (`None` disables it).
    pub premarket: Option<NaiveTime>,
    /// Symbols warmed before the market opens.
    pub premarket_top_n: usize,
    /// Least time between two provider calls of the warmer.
    pub min_gap: Duration,
    /// Pause when a pass fails more than this share of its calls.
    pub max_error_rate: f64,
    /// How long a pause lasts.
    pub pause_for: Duration,
}

impl Default for WarmerConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(300),
            top_n: 5000,
            refresh_ahead: 0.8,
            check_every: Duration::from_secs(10),
            premarket: NaiveTime::from_hms_opt(8, 30, 0),
            premarket_top_n: 5000,
            min_gap: Duration::from_millis(20),
            max_error_rate: 0.5,
            pause_for: Duration::from_secs(60),
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WarmPass {
    /// Symbols considered.
    pub considered: usize,
    /// Symbols loaded into the cache.
    pub warmed: usize,
    /// Symbols already fresh enough.
    pub fresh: usize,
    /// Loads that failed because the provider did (network, 5xx, breaker open): these can pause warming.
    pub failures: usize,
    /// Symbols the provider does not know or served bad data for: skipped, never a reason to pause.
    pub skipped: usize,
}

/// What the warmer is doing, for status pages.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WarmerStatus {
    /// True while the background task runs.
    pub running: bool,
    /// True while paused (busy server or failing provider).
    pub paused: bool,
    /// Why it is paused.
    pub pause_reason: Option<String>,
    /// When the last pass ended.
    pub last_run: Option<DateTime<Utc>>,
    /// What the last pass did.
    pub last_pass: WarmPass,
    /// Symbols loaded since start.
    pub total_warmed: u64,
    /// Failed loads since start.
    pub total_failures: u64,
    /// When the next full pass is due.
    pub next_run: Option<DateTime<Utc>>,
    /// When the next pre-market warm-up is due.
    pub next_premarket: Option<DateTime<Utc>>,
}

/// Says whether the server is too busy for warming now (e.g. scans running).
pub type BusySignal = Arc<dyn Fn() -> bool + Send + Sync>;

/// The cache warmer. Share it with `Arc`; run it with [`CacheWarmer::run`].
pub struct CacheWarmer {
    provider: Arc<dyn DataProvider>,
    cache: Arc<dyn Cache>,
    tracker: Arc<SymbolTracker>,
    config: WarmerConfig,
    busy: BusySignal,
    status: Mutex<WarmerStatus>,
    market: Market,
    store: Option<Arc<dyn Store>>,
}

impl std::fmt::Debug for CacheWarmer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheWarmer")
            .field("config", &self.config)
            .field("status", &self.status())
            .finish()
    }
}

impl CacheWarmer {
    /// A warmer over these parts; `busy` pauses it while it returns true.
    pub fn new(
        provider: Arc<dyn DataProvider>,
        cache: Arc<dyn Cache>,
        tracker: Arc<SymbolTracker>,
        config: WarmerConfig,
        busy: BusySignal,
    ) -> Self {
        Self {
            provider,
            cache,
            tracker,
            config,
            busy,
            status: Mutex::new(WarmerStatus::default()),
            market: Market::default(),
            store: None,
        }
    }

    /// The same warmer refreshing through `store`: for a live source, a pass reads what the store holds
    /// and asks the provider only for the missing sessions, once for the whole market when many symbols
    /// miss the same ones (grouped daily bars), as a scan does. Keeping every popular symbol fresh after
    /// a new session then costs a few requests, not one per symbol.
    pub fn with_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The same warmer on another market clock (the range of a symbol's default key and the pre-market
    /// schedule follow it).
    pub fn with_market(mut self, market: Market) -> Self {
        self.market = market;
        self
    }

    /// The current status.
    pub fn status(&self) -> WarmerStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The configuration.
    pub fn config(&self) -> &WarmerConfig {
        &self.config
    }

    fn key(&self, symbol: &Symbol) -> BarsKey {
        let range = self.provider.default_range(self.market.expected_session());
        BarsKey::new(symbol.clone(), range)
    }

    /// True when `key` has less than `1 − refresh_ahead` of the TTL left (or is absent).
    fn needs_refresh(&self, key: &BarsKey) -> bool {
        let ttl = Duration::from_secs(self.cache.stats().ttl_seconds.max(1));
        let keep = ttl.mul_f64((1.0 - self.config.refresh_ahead).clamp(0.0, 1.0));
        self.cache.time_to_live(key).is_none_or(|left| left <= keep)
    }

    /// One pass over the `n` most popular symbols: loads those that are absent or due for refresh,
    /// spacing provider calls by `min_gap`. Cancelled passes stop between symbols.
    pub async fn warm_top(&self, n: usize, cancel: &CancellationToken) -> WarmPass {
        let top = self.tracker.top(n, self.market.now());
        let mut pass = WarmPass {
            considered: top.len(),
            ..WarmPass::default()
        };
        if let Some(store) = self
            .store
            .as_ref()
            .filter(|_| self.provider.live_source().is_some())
        {
            let due: Vec<Symbol> = top
                .into_iter()
                .map(|(s, _)| s)
                .filter(|s| self.needs_refresh(&self.key(s)))
                .collect();
            pass.fresh = pass.considered - due.len();
            if !due.is_empty() {
                let (warmed, failures, skipped) = self.refresh_through_store(store, due, cancel).await;
                pass.warmed = warmed;
                pass.failures = failures;
                pass.skipped = skipped;
            }
            self.finish_pass(pass);
            return pass;
        }
        for (symbol, _) in top {
            if cancel.is_cancelled() {
                break;
            }
            let key = self.key(&symbol);
            if !self.needs_refresh(&key) {
                pass.fresh += 1;
                continue;
            }
            match self.load(&key).await {
                Ok(()) => pass.warmed += 1,
                Err(e) if provider_failed(&e) => {
                    debug!(%symbol, error = %e, "warming failed");
                    pass.failures += 1;
                }
                Err(e) => {
                    debug!(%symbol, error = %e, "symbol not warmed");
                    pass.skipped += 1;
                }
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(self.config.min_gap) => {}
            }
        }
        self.finish_pass(pass);
        pass
    }

    /// Refreshes `due` with a background scan through the store (see [`CacheWarmer::with_store`]), which
    /// caches each symbol's bars under the same key a lookup uses. Returns (warmed, failed, skipped).
    async fn refresh_through_store(
        &self,
        store: &Arc<dyn Store>,
        due: Vec<Symbol>,
        cancel: &CancellationToken,
    ) -> (usize, usize, usize) {
        let n = due.len();
        let deps = Deps::new(self.provider.clone(), self.cache.clone())
            .with_store(store.clone())
            .with_market(self.market.clone());
        let request = ScanRequest {
            universe: UniverseSelection::Symbols(due),
            top: Some(1),
            fetch_concurrency: 8,
            background: true,
            ..ScanRequest::default()
        };
        match scan(&request, &deps, &NoopSink, cancel.child_token()).await {
            Ok(report) => {
                let failed = report
                    .skipped
                    .iter()
                    .filter(|s| matches!(s.category, Category::Network | Category::Provider))
                    .count();
                (report.scanned, failed, report.skipped.len() - failed)
            }
            Err(e) if provider_failed(&e) => {
                debug!(error = %e, "warming pass failed");
                (0, n, 0)
            }
            Err(e) => {
                debug!(error = %e, "warming pass skipped");
                (0, 0, n)
            }
        }
    }

    async fn load(&self, key: &BarsKey) -> Result<(), Error> {
        let bars = self.provider.daily_bars(&key.symbol, key.range).await?;
        bars.validate()
            .map_err(|bad| Error::invalid_data(key.symbol.as_str(), bad.reason))?;
        self.cache.insert(key.clone(), Arc::new(bars)).await
    }

    fn finish_pass(&self, pass: WarmPass) {
        let attempted = pass.warmed + pass.failures;
        let failing = attempted > 0 && pass.failures as f64 / attempted as f64 > self.config.max_error_rate;
        if let Ok(mut s) = self.status.lock() {
            s.last_run = Some(self.market.now());
            s.last_pass = pass;
            s.total_warmed += pass.warmed as u64;
            s.total_failures += pass.failures as u64;
            if failing {
                s.paused = true;
                s.pause_reason = Some(format!(
                    "provider failed {} of {attempted} loads; pausing",
                    pass.failures
                ));
            }
        }
        if failing {
            warn!(
                failures = pass.failures,
                attempted, "cache warming paused: the provider is failing"
            );
        }
    }

    /// Runs until `cancel`: full passes every `interval`, refresh-ahead checks every `check_every`, the
    /// pre-market warm-up, pauses while busy or failing.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        self.set(|s| s.running = true);
        info!(
            top_n = self.config.top_n,
            interval_s = self.config.interval.as_secs(),
            "cache warmer started"
        );
        let mut next_full = tokio::time::Instant::now();
        let premarket = |after| {
            let calendar = self.market.calendar;
            self.config
                .premarket
                .map(|t| next_premarket_after(&calendar, after, t))
        };
        let mut next_premarket = premarket(self.market.now());
        loop {
            let now_wall = self.market.now();
            let until_full = next_full.saturating_duration_since(tokio::time::Instant::now());
            self.set(|s| {
                s.next_run = Some(now_wall + chrono::Duration::from_std(until_full).unwrap_or_default());
                s.next_premarket = next_premarket;
            });
            if self.pause_if_needed(&cancel).await {
                break;
            }
            let now = tokio::time::Instant::now();
            if let Some(at) = next_premarket
                && self.market.now() >= at
            {
                info!(top_n = self.config.premarket_top_n, "pre-market warm-up");
                self.warm_top(self.config.premarket_top_n, &cancel).await;
                next_premarket = premarket(self.market.now());
            } else if now >= next_full {
                let pass = self.warm_top(self.config.top_n, &cancel).await;
                debug!(?pass, "warming pass");
                next_full = tokio::time::Instant::now() + self.config.interval;
                // Said at once: the pass just set `last_run`, and the next is an interval after it.
                let interval = chrono::Duration::from_std(self.config.interval).unwrap_or_default();
                self.set(|s| s.next_run = s.last_run.map(|last| last + interval));
            } else {
                // Refresh-ahead: the same pass, which only loads entries close to expiry.
                self.warm_top(self.config.top_n, &cancel).await;
            }
            let wait = self
                .config
                .check_every
                .min(next_full.saturating_duration_since(tokio::time::Instant::now()));
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(wait.max(Duration::from_millis(10))) => {}
            }
        }
        self.set(|s| s.running = false);
        info!("cache warmer stopped");
    }

    /// Waits out a pause (busy server or failing provider); true when cancelled meanwhile.
    async fn pause_if_needed(&self, cancel: &CancellationToken) -> bool {
        loop {
            let failing = self.status().paused
                && self
                    .status()
                    .pause_reason
                    .as_deref()
                    .is_some_and(|r| r.contains("failed"));
            let busy = (self.busy)();
            if !failing && !busy {
                self.set(|s| {
                    s.paused = false;
                    s.pause_reason = None;
                });
                return false;
            }
            let (reason, wait) = if failing {
                (
                    self.status().pause_reason.unwrap_or_default(),
                    self.config.pause_for,
                )
            } else {
                ("server busy".to_owned(), self.config.check_every)
            };
            self.set(|s| {
                s.paused = true;
                s.pause_reason = Some(reason.clone());
            });
            tokio::select! {
                () = cancel.cancelled() => return true,
                () = tokio::time::sleep(wait) => {}
            }
            if failing {
                // After the pause, try again; the next pass decides whether to pause anew.
                self.set(|s| {
                    s.paused = false;
                    s.pause_reason = None;
                });
            }
        }
    }

    fn set(&self, f: impl FnOnce(&mut WarmerStatus)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }
}

/// True when `e` says the provider is failing (as opposed to not knowing a symbol).
fn provider_failed(e: &Error) -> bool {
    e.is_transient() || matches!(e, Error::CircuitOpen { .. } | Error::Rejected { .. })
}

/// The next trading session's `time` in New York strictly after `after`, in UTC (no warm-up on
/// weekends and holidays).
pub fn next_premarket_after(
    calendar: &MarketCalendar,
    after: DateTime<Utc>,
    time: NaiveTime,
) -> DateTime<Utc> {
    let ny = chrono_tz::America::New_York;
    let mut day = after.with_timezone(&ny).date_naive();
    for _ in 0..16 {
        if calendar.is_session(day)
            && let Some(at) = ny.from_local_datetime(&day.and_time(time)).earliest()
        {
            let at = at.with_timezone(&Utc);
            if at > after {
                return at;
            }
        }
        day = day.succ_opt().unwrap_or(day);
    }
    after + chrono::Duration::days(1)
}
