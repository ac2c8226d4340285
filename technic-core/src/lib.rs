//! `technic-core`: the library behind Technic, a fast and dependable stock-market scanner.
//!
//! Everything that decides something lives here; the `technic` command and the HTTP server only parse
//! input, build the concrete parts and render what this crate returns.
//!
//! - [`calendar`] and [`clock`]: NYSE sessions in New York time, an injected clock, and [`Market`],
//!   which decides which daily bar should exist now.
//! - [`model`]: symbols, column-wise [`Bars`], universe entries.
//! - [`indicators`]: pure indicator maths (TA-Lib conventions) and the last-bar [`Snapshot`].
//! - [`score`]: the `tech_rating` composite and its [`Signal`].
//! - [`provider`]: the [`DataProvider`] trait with the synthetic, CSV-directory and HTTP providers, and
//!   [`Resilient`] (retries and a circuit breaker around any provider).
//! - [`mod@retry`]: [`RetryPolicy`] and the [`retry()`] function.
//! - [`cache`]: the [`Cache`] trait and the `quick_cache`-backed [`MemoryCache`].
//! - [`store`]: the [`Store`] trait, an in-memory store and [`SqliteStore`].
//! - [`monitor`]: the performance [`Monitor`]: samples, alert rules, CSV log.
//! - [`progress`]: [`ProgressSink`] and the events a scan emits.
//! - [`mod@scan`]: the scan pipeline (load universe → fetch bars → compute and score → rank), point-in-time
//!   scans and [`backtest`]s.
//! - [`screen`]: screen expressions (`rsi_14 < 30 and close > sma_200`), presets and trade plans.
//! - [`warm`]: the cache warmer; `fleet` (feature `redis`): coordination of several servers through Redis.
//!
//! Cargo features: `sqlite` (the [`SqliteStore`]) and `http-provider` (the Polygon-style HTTP provider over
//! rustls with `ring`) are on by default; `redis` (a two-tier cache and fleet coordination) and `postgres`
//! (a PostgreSQL store) are off. With `default-features = false` everything above but those builds, with no
//! C compiler.
//!
//! ```no_run
//! # async fn demo() -> technic_core::Result<()> {
//! use technic_core::prelude::*;
//!
//! let deps = Deps::new(Arc::new(SyntheticProvider::default()), Arc::new(MemoryCache::default()));
//! let report = scan(&ScanRequest::default(), &deps, &NoopSink, CancellationToken::new()).await?;
//! for r in &report.results {
//!     println!("{} {} {:.1} {}", r.rank, r.symbol, r.tech_rating, r.signal);
//! }
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub use scan::backtest;
pub mod cache;
pub mod calendar;
pub mod clock;
pub mod error;
#[cfg(feature = "redis")]
pub mod fleet;
pub mod indicators;
pub mod model;
pub mod monitor;
pub mod prelude;
pub mod progress;
pub mod provider;
pub mod retry;
pub mod scan;
pub mod score;
pub mod screen;
pub mod store;
pub mod testing;
pub mod warm;

pub use cache::{BarsKey, Cache, CacheStats, MemoryCache, MemoryCacheConfig};
pub use calendar::{Market, MarketCalendar};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Action, Category, Error, Result};
pub use indicators::Snapshot;
pub use model::{Bar, Bars, DateRange, Symbol, Universe, UniverseEntry};
pub use monitor::{Alert, MetricSample, MetricSummary, Monitor, MonitorConfig, Severity};
pub use progress::{NoopSink, ProgressEvent, ProgressSink, Stage, StageWeights};
pub use provider::{
    BreakerConfig, CallLayer, CsvDirProvider, DataProvider, Layered, ProviderStats, Resilient,
    SyntheticConfig, SyntheticProvider,
};
#[cfg(feature = "http-provider")]
pub use provider::{HttpConfig, HttpProvider};
pub use retry::{Jitter, RetryPolicy, retry};
pub use scan::{
    Deps, FilterCounts, Filters, ScanReport, ScanRequest, ScanResult, ScanState, Skipped, StageTimings,
    UniverseSelection, scan,
};
pub use score::{Signal, SubScores, TechRating};
pub use screen::{PlanSettings, Regime, Screen, ScreenError, ScreenSpec, SortKey, TradePlan};
#[cfg(feature = "sqlite")]
pub use store::SqliteStore;
pub use store::{BarExtent, BarsUpdate, MemoryStore, RunSummary, Store};
#[cfg(feature = "postgres")]
pub use store::{PostgresOptions, PostgresStore};
pub use tokio_util::sync::CancellationToken;
pub use warm::{CacheWarmer, SymbolTracker, WarmerConfig, WarmerStatus};

/// The crate README's examples, compiled as doc tests so they keep working as written.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The workspace README's library example, compiled as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct WorkspaceReadmeDoctests;
