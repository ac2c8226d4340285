//! The scan: load the universe, fetch daily bars (through the cache), compute indicators and scores, rank.
//!
//! [`scan()`] reports progress to a [`ProgressSink`](crate::ProgressSink) as work finishes, honours a
//! [`CancellationToken`](crate::CancellationToken) in every stage (within ~100 ms), runs I/O with bounded
//! concurrency and indicator maths on blocking threads, and records every symbol it could not score as
//! [`Skipped`] with the reason. When the provider fails it serves stale cached bars (marked `stale`), and
//! when the cache fails it goes on without it, saying so once.
//!
//! With a store in [`Deps`], bars are read from the store first and only missing dates are fetched
//! (see [`missing_ranges`]); each symbol's history is then its last [`HISTORY_BARS`] bars.

pub mod backtest;
mod fetch;
mod history;
mod pipeline;
mod rank;
mod reporter;
mod scoring;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use history::{
    HISTORY_BARS, HISTORY_CALENDAR_DAYS, MAX_GROUPED_SESSIONS, history_window, last_weekday, missing_ranges,
    same_bar,
};
pub use pipeline::{new_scan_id, scan};
pub use rank::{Scored, rank, score_symbol, score_with_features};

use crate::cache::{Cache, CacheStats};
use crate::calendar::Market;
use crate::error::Category;
use crate::indicators::Snapshot;
use crate::model::{DateRange, Symbol, UniverseEntry};
use crate::monitor::Monitor;
use crate::provider::{DataProvider, ProviderStats};
use crate::score::{ExplainPart, Signal, SubScores};
use crate::screen::{PlanSettings, Regime, ScreenSpec, TradePlan};
use crate::store::Store;

/// Which symbols a scan covers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UniverseSelection {
    /// Everything the provider lists.
    #[default]
    Provider,
    /// These symbols; names and sectors are taken from the provider's universe where it lists them.
    Symbols(Vec<Symbol>),
    /// These entries exactly (e.g. from a universe file).
    Entries(Vec<UniverseEntry>),
}

/// Filters applied during a scan; each reports how many symbols it removed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Filters {
    /// Keep only these sectors (case-insensitive); empty keeps all.
    pub sectors: Vec<String>,
    /// Minimum last close.
    pub min_price: Option<f64>,
    /// Minimum average dollar volume (close × volume) over the last 20 bars.
    pub min_dollar_volume: Option<f64>,
    /// Keep at most this many symbols (the first ones of the universe, after the sector filter).
    pub max_symbols: Option<usize>,
}

/// What to scan and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanRequest {
    /// An id for the scan; generated when `None`.
    pub id: Option<String>,
    /// The symbols to scan.
    pub universe: UniverseSelection,
    /// Filters.
    pub filters: Filters,
    /// Keep the best `top` results; `None` keeps all.
    pub top: Option<usize>,
    /// History to fetch; the provider's default range when `None`.
    pub range: Option<DateRange>,
    /// Fetches in flight at once.
    pub fetch_concurrency: usize,
    /// A background refresh (the cache warmer): bars are fetched, stored and cached as usual, but the
    /// run is not saved as a scan and its symbols are not counted as accessed.
    #[serde(default)]
    pub background: bool,
    /// A filter expression and an order (see [`crate::screen`]); empty keeps every symbol, by rating.
    #[serde(default)]
    pub screen: ScreenSpec,
    /// How trade plans are sized.
    #[serde(default)]
    pub plan: PlanSettings,
    /// The benchmark for `rs_*` and the regime. `None`: SPY for a live source, else the equal-weight
    /// index of the scanned universe.
    #[serde(default)]
    pub benchmark: Option<Symbol>,
    /// A point-in-time scan: only bars dated on or before this day are read (from the provider, the
    /// cache and the store), over the same span of history.
    #[serde(default)]
    pub as_of: Option<chrono::NaiveDate>,
}

impl Default for ScanRequest {
    fn default() -> Self {
        Self {
            id: None,
            universe: UniverseSelection::Provider,
            filters: Filters::default(),
            top: Some(20),
            range: None,
            fetch_concurrency: 32,
            background: false,
            screen: ScreenSpec::default(),
            plan: PlanSettings::default(),
            benchmark: None,
            as_of: None,
        }
    }
}

/// The parts a scan works with. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Deps {
    /// Where bars come from.
    pub provider: Arc<dyn DataProvider>,
    /// Bars are read through this cache.
    pub cache: Arc<dyn Cache>,
    /// With a store: bars are read from it first, only missing dates are fetched, new bars and finished
    /// scans are saved to it.
    pub store: Option<Arc<dyn Store>>,
    /// Records each symbol fetch (latency, cached or not, failed or not) when present.
    pub monitor: Option<Arc<Monitor>>,
    /// The trading calendar and the clock: which daily bar should exist now.
    pub market: Market,
    /// How the overall progress bar is divided among stages (measured from earlier scans when known).
    pub stage_weights: crate::progress::StageWeights,
}

impl Deps {
    /// Provider and cache, no store.
    pub fn new(provider: Arc<dyn DataProvider>, cache: Arc<dyn Cache>) -> Self {
        Self {
            provider,
            cache,
            store: None,
            monitor: None,
            market: Market::default(),
            stage_weights: crate::progress::StageWeights::default(),
        }
    }

    /// The same with the progress bar divided as `timing` (an earlier scan's stage durations) says.
    pub fn with_measured_stages(mut self, timing: &StageTimings) -> Self {
        if let Some(w) = crate::progress::StageWeights::measured(
            timing.loading_universe_ms,
            timing.fetching_ms,
            timing.scanning_ms,
            timing.finalizing_ms,
        ) {
            self.stage_weights = w;
        }
        self
    }

    /// `provider` with a memory cache suited to it, on `market`: for a live source, cached daily bars
    /// stay fresh until the next bar is due ([`crate::MemoryCache::with_market`]); for local or demo data,
    /// for the default TTL.
    pub fn on_market(provider: Arc<dyn DataProvider>, market: Market) -> Self {
        let cache = crate::cache::MemoryCache::default();
        let cache = if provider.live_source().is_some() {
            cache.with_market(market.clone())
        } else {
            cache
        };
        Self::new(provider, Arc::new(cache)).with_market(market)
    }

    /// The same with another market clock (tests pick the instant; `TECHNIC_NOW` replays a day).
    pub fn with_market(mut self, market: Market) -> Self {
        self.market = market;
        self
    }

    /// The range a scan asks for when the request names none: the provider's default ending at the
    /// newest bar that should exist now.
    pub fn default_range(&self) -> DateRange {
        self.provider.default_range(self.market.expected_session())
    }

    /// The same with a store.
    pub fn with_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The same with a performance monitor.
    pub fn with_monitor(mut self, monitor: Arc<Monitor>) -> Self {
        self.monitor = Some(monitor);
        self
    }
}

/// How a scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanState {
    /// Every stage finished.
    Complete,
    /// Stopped by the user; results cover what finished before.
    Cancelled,
    /// Stopped by an error (see `error`).
    Failed,
}

/// A symbol the scan could not score, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// The symbol.
    pub symbol: Symbol,
    /// What went wrong, for people (names file and line for bad CSV data).
    pub reason: String,
    /// The error category.
    pub category: Category,
}

/// How many symbols each filter removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterCounts {
    /// Removed by the sector filter.
    pub sector: usize,
    /// Removed by `max_symbols`.
    pub max_symbols: usize,
    /// Removed by `min_price`.
    pub min_price: usize,
    /// Removed by `min_dollar_volume`.
    pub min_dollar_volume: usize,
    /// Scored, but not selected by the screen expression. Not part of [`FilterCounts::total`]: these
    /// symbols were scanned.
    #[serde(default)]
    pub screen: usize,
}

impl FilterCounts {
    /// All symbols removed by filters before scoring.
    pub fn total(&self) -> usize {
        self.sector + self.max_symbols + self.min_price + self.min_dollar_volume
    }
}

/// Wall time per stage, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct StageTimings {
    /// Loading the universe.
    pub loading_universe_ms: f64,
    /// Fetching bars, including the scoring that runs while later bars are still arriving.
    pub fetching_ms: f64,
    /// Computing indicators and scores once the last bars are in (most of it overlaps the fetch).
    pub scanning_ms: f64,
    /// Ranking and saving.
    pub finalizing_ms: f64,
    /// The whole scan.
    pub total_ms: f64,
}

/// One ranked symbol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanResult {
    /// 1 for the best.
    pub rank: usize,
    /// The symbol.
    pub symbol: Symbol,
    /// Company name, if known.
    pub name: String,
    /// Sector, if known.
    pub sector: String,
    /// Industry, if known.
    #[serde(default)]
    pub industry: String,
    /// Date of the last bar.
    pub date: chrono::NaiveDate,
    /// The date the values are as of: the last bar's (the same as `date`, named for what it means).
    #[serde(default)]
    pub as_of: Option<chrono::NaiveDate>,
    /// Last close.
    pub close: f64,
    /// Close ÷ previous close − 1, in percent.
    #[serde(default)]
    pub change_pct: Option<f64>,
    /// Last session's volume.
    #[serde(default)]
    pub volume: Option<f64>,
    /// Mean close × volume over 20 sessions.
    #[serde(default)]
    pub dollar_volume_20: Option<f64>,
    /// ATR(14) ÷ close, in percent.
    #[serde(default)]
    pub atr_pct: Option<f64>,
    /// (Upper − lower Bollinger band) ÷ middle band.
    #[serde(default)]
    pub bb_width: Option<f64>,
    /// 21-session return minus the benchmark's.
    #[serde(default)]
    pub rs_21: Option<f64>,
    /// 63-session return minus the benchmark's.
    #[serde(default)]
    pub rs_63: Option<f64>,
    /// 126-session return minus the benchmark's.
    #[serde(default)]
    pub rs_126: Option<f64>,
    /// 252-session return minus the benchmark's.
    #[serde(default)]
    pub rs_252: Option<f64>,
    /// The composite rating, 0–100.
    pub tech_rating: f64,
    /// The signal for the rating.
    pub signal: Signal,
    /// The parts of the rating.
    pub sub_scores: SubScores,
    /// Indicator values at the last bar.
    pub indicators: Snapshot,
    /// True when the values are older than they should be: the last bar is older than the newest
    /// session a live source should have published, or the provider failed and these are cached bars
    /// past their time to live.
    #[serde(default)]
    pub stale: bool,
    /// Entry, stop, target and size (`None` without ATR; for an Avoid result only with shorts allowed).
    #[serde(default)]
    pub trade_plan: Option<TradePlan>,
    /// The rating's parts; their points sum exactly to `tech_rating`. A scan leaves it empty (5000
    /// results' parts made every report held in memory about 30 MB larger); [`ScanResult::explained`]
    /// computes them from `indicators` when they are shown, and frontends fill it then.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub explain: Vec<ExplainPart>,
}

impl ScanResult {
    /// The rating's parts: `explain` when filled, else computed from the indicator values (the same
    /// parts the rating was computed from).
    pub fn explained(&self) -> Vec<ExplainPart> {
        if self.explain.is_empty() {
            crate::score::explain(&self.indicators, self.close)
        } else {
            self.explain.clone()
        }
    }

    /// Fills `explain` (see [`ScanResult::explained`]).
    pub fn fill_explain(&mut self) {
        if self.explain.is_empty() {
            self.explain = self.explained();
        }
    }
}

/// Everything a scan produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanReport {
    /// The scan's id.
    pub id: String,
    /// How it ended.
    pub state: ScanState,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// Provider name.
    pub provider: String,
    /// True when the data is synthetic demo data.
    pub demo: bool,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// The history requested.
    pub range: DateRange,
    /// Symbols in the universe before filters.
    pub universe_size: usize,
    /// Symbols scored.
    pub scanned: usize,
    /// The best results, ranked (all scored symbols when `top` is `None`).
    pub results: Vec<ScanResult>,
    /// Symbols that could not be scored.
    pub skipped: Vec<Skipped>,
    /// Symbols removed by each filter.
    pub filtered: FilterCounts,
    /// Time per stage.
    pub timing: StageTimings,
    /// Cache activity during this scan (counters are this scan's; sizes are the cache's at the end).
    pub cache: CacheStats,
    /// Provider calls retried after transient failures during this scan.
    #[serde(default)]
    pub retries: u64,
    /// Results computed from stale cached bars because the provider failed.
    #[serde(default)]
    pub stale: usize,
    /// Provider call counters for this scan.
    #[serde(default)]
    pub provider_calls: ProviderStats,
    /// Things that went wrong without stopping the scan, once each (e.g. the cache failing).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// For a live source: the newest session whose bar should exist (results older than it are stale).
    #[serde(default)]
    pub expected_session: Option<chrono::NaiveDate>,
    /// Symbols whose stored history was replaced because the provider's differed (split, re-adjustment).
    #[serde(default)]
    pub adjustments: usize,
    /// For a live source, how fresh the data is, for people: "as of the 2026-11-25 session (market
    /// closed today (Thanksgiving Day))".
    #[serde(default)]
    pub freshness: Option<String>,
    /// Symbols the store answered without asking the provider, when the memory cache did not hold them
    /// (`cache` counts the memory cache only).
    #[serde(default)]
    pub store_hits: usize,
    /// Symbols the screen selected (before `top`); equals `scanned` without a screen.
    #[serde(default)]
    pub matched: usize,
    /// The market regime of the benchmark (`None` when it had no bars).
    #[serde(default)]
    pub regime: Option<Regime>,
}

#[cfg(all(test, feature = "sqlite"))]
mod store_tests;
#[cfg(test)]
mod tests;
