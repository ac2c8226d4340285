//! The [`DataProvider`] trait: where universes and daily bars come from.
//!
//! Implementations beside it: [`SyntheticProvider`] (deterministic demo data, the embedded default) and
//! [`CsvDirProvider`] (one CSV file per symbol); [`HttpProvider`] reads a Polygon-style HTTP API and
//! [`Resilient`] wraps any provider with retries and a circuit breaker.

pub mod breaker;
mod csv_dir;
#[cfg(feature = "http-provider")]
pub mod http;
mod key;
pub mod layer;
mod rate;
mod resilient;
mod rng;
mod synthetic;

use std::fmt::Debug;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use breaker::{BreakerConfig, CircuitBreaker};
pub use csv_dir::{CsvDirProvider, MAX_FILE_BYTES, format_bars, parse_bars, parse_universe, read_bounded};
#[cfg(feature = "http-provider")]
pub use http::{HttpConfig, HttpProvider};
pub use key::{ApiKey, DEFAULT_BASE_URL};
pub use layer::{CallLayer, Layered, Op};
pub use rate::{RateLimit, RateWindow};
pub use resilient::{Resilient, RetryLayer};
pub use rng::SplitMix64;
pub use synthetic::{SECTORS, SyntheticConfig, SyntheticProvider};

use crate::error::Result;
use chrono::NaiveDate;

use crate::model::{Bar, Bars, DateRange, Symbol, Universe};

/// The largest demo universe: its tickers have 2–4 letters, and 100,000 keeps generation quick.
pub const MAX_DEMO_SYMBOLS: usize = 100_000;

/// Settings used when building a provider from a spec string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderOptions {
    /// Size of the synthetic demo universe.
    pub demo_symbols: usize,
    /// Base URL of the Polygon-style API.
    pub base_url: String,
    /// API key for `polygon` (the frontends read it from `POLYGON_API_KEY`).
    pub api_key: Option<ApiKey>,
    /// How fast requests may go to the API.
    pub rate_limit: RateLimit,
}

impl Default for ProviderOptions {
    fn default() -> Self {
        Self {
            demo_symbols: SyntheticConfig::default().n_symbols,
            base_url: DEFAULT_BASE_URL.to_owned(),
            api_key: None,
            rate_limit: RateLimit::per_second(50),
        }
    }
}

/// Builds the provider a spec names: `synthetic` (demo data), `csv:DIR` or `polygon` (the HTTP API,
/// wrapped in retries and a circuit breaker). Errors are [`crate::Error::Config`] saying what is accepted.
pub fn from_spec(spec: &str, options: &ProviderOptions) -> Result<std::sync::Arc<dyn DataProvider>> {
    use std::sync::Arc;
    match spec.split_once(':') {
        None if spec == "synthetic" => {
            if options.demo_symbols == 0 || options.demo_symbols > MAX_DEMO_SYMBOLS {
                return Err(crate::Error::config(format!(
                    "the demo universe holds 1 to {MAX_DEMO_SYMBOLS} symbols, not {}",
                    options.demo_symbols
                )));
            }
            let cfg = SyntheticConfig {
                n_symbols: options.demo_symbols,
                ..SyntheticConfig::default()
            };
            Ok(Arc::new(SyntheticProvider::new(cfg)))
        }
        #[cfg(feature = "http-provider")]
        None if spec == "polygon" => {
            let key = options.api_key.clone().ok_or_else(|| {
                crate::Error::config(
                    "POLYGON_API_KEY is not set: export your Polygon API key as POLYGON_API_KEY to use --provider polygon",
                )
            })?;
            let config = HttpConfig {
                rate_limit: options.rate_limit.clone(),
                ..HttpConfig::new(options.base_url.trim(), key)
            };
            let http = HttpProvider::new(config)?;
            Ok(Arc::new(Resilient::wrap(
                Arc::new(http),
                crate::retry::RetryPolicy::default(),
                BreakerConfig::default(),
            )))
        }
        #[cfg(not(feature = "http-provider"))]
        None if spec == "polygon" => Err(crate::Error::config(
            "this build has no HTTP provider: build technic-core with the `http-provider` feature",
        )),
        Some(("csv", dir)) if !dir.is_empty() => Ok(Arc::new(CsvDirProvider::new(dir)?)),
        _ => Err(crate::Error::config(format!(
            "unknown provider `{spec}`; use `synthetic` (built-in demo data), `csv:DIR` (a folder of SYMBOL.csv files) or `polygon` (the Polygon API)"
        ))),
    }
}

/// A source of universes and daily OHLCV bars.
///
/// Errors follow [`crate::Error`]'s conventions: transient failures are `Unavailable` (the caller may
/// retry), an unknown symbol is `NotFound`, bad data is `InvalidData` naming the symbol and what is wrong.
#[async_trait]
pub trait DataProvider: Send + Sync + Debug {
    /// Short name for logs and reports ("synthetic", "csv:/data").
    fn name(&self) -> &str;

    /// True when the data is generated demo data, which every output must say.
    fn is_demo(&self) -> bool {
        false
    }

    /// The range a scan asks for when the request names none, given the date of the newest bar that
    /// should exist now (`expected`, from [`crate::calendar::Market::expected_session`]): by default the
    /// 800 calendar days ending there, so a session still open is never asked for.
    fn default_range(&self, expected: NaiveDate) -> DateRange {
        DateRange::ending(expected, 800)
    }

    /// For a remote source whose data moves with the market (a market-data API), a name that tells it
    /// apart from any other source (kind and base URL, never a key): its bars are kept in the store under
    /// this name and checked against the trading calendar. `None` (the default) for local or generated
    /// data (CSV files, the demo data), which is read directly on every scan, so an edited file counts.
    fn live_source(&self) -> Option<String> {
        None
    }

    /// Call counters (zero for providers that do not count; [`Resilient`] does).
    fn stats(&self) -> ProviderStats {
        ProviderStats::default()
    }

    /// Every symbol this provider can serve, with names and sectors where known.
    async fn universe(&self) -> Result<Universe>;

    /// Daily bars of `symbol` within `range`, ascending by date.
    async fn daily_bars(&self, symbol: &Symbol, range: DateRange) -> Result<Bars>;

    /// Every symbol's bar of session `date` in one call (a whole-market "grouped daily" endpoint), or
    /// `Ok(None)` when the provider has no such endpoint (the default). An empty list means no bars for
    /// that date (a holiday, or not yet published).
    async fn grouped_daily(&self, date: NaiveDate) -> Result<Option<Vec<(Symbol, Bar)>>> {
        let _ = date;
        Ok(None)
    }

    /// Bars for several symbols. The default calls [`DataProvider::daily_bars`] for each in turn;
    /// providers with a batch endpoint override it. One result per symbol, in order.
    async fn daily_bars_batch(&self, symbols: &[Symbol], range: DateRange) -> Vec<Result<Bars>> {
        let mut out = Vec::with_capacity(symbols.len());
        for s in symbols {
            out.push(self.daily_bars(s, range).await);
        }
        out
    }
}

/// What a provider did: calls attempted, retried, failed and refused by its circuit breaker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderStats {
    /// Calls that reached the underlying provider (each retry counts).
    pub attempts: u64,
    /// Retries after transient failures.
    pub retries: u64,
    /// Calls that failed after all retries.
    pub failures: u64,
    /// Calls refused at once because the circuit breaker was open.
    pub short_circuited: u64,
}

impl ProviderStats {
    /// The change from `earlier` to `self`.
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            attempts: self.attempts.saturating_sub(earlier.attempts),
            retries: self.retries.saturating_sub(earlier.retries),
            failures: self.failures.saturating_sub(earlier.failures),
            short_circuited: self.short_circuited.saturating_sub(earlier.short_circuited),
        }
    }
}
