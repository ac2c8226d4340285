//! The [`DataProvider`] trait: where universes and daily bars come from.
//!
//! Implementations beside it: [`SyntheticProvider`] (deterministic demo data, the embedded default) and
//! [`CsvDirProvider`] (one CSV file per symbol).

mod csv_dir;
mod rng;
mod synthetic;

use std::fmt::Debug;

use async_trait::async_trait;

pub use csv_dir::{CsvDirProvider, format_bars, parse_bars, parse_universe};
pub use rng::SplitMix64;
pub use synthetic::{SECTORS, SyntheticConfig, SyntheticProvider};

use crate::error::Result;
use crate::model::{Bars, DateRange, Symbol, Universe};

/// Settings used when building a provider from a spec string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderOptions {
    /// Size of the synthetic demo universe.
    pub demo_symbols: usize,
}

impl Default for ProviderOptions {
    fn default() -> Self {
        Self {
            demo_symbols: SyntheticConfig::default().n_symbols,
        }
    }
}

/// Builds the provider a spec names: `synthetic` (demo data) or `csv:DIR`. Errors are
/// [`crate::Error::Config`] saying what is accepted.
pub fn from_spec(spec: &str, options: &ProviderOptions) -> Result<std::sync::Arc<dyn DataProvider>> {
    match spec.split_once(':') {
        None if spec == "synthetic" => {
            if options.demo_symbols == 0 {
                return Err(crate::Error::config("the demo universe needs at least 1 symbol"));
            }
            let cfg = SyntheticConfig {
                n_symbols: options.demo_symbols,
                ..SyntheticConfig::default()
            };
            Ok(std::sync::Arc::new(SyntheticProvider::new(cfg)))
        }
        Some(("csv", dir)) if !dir.is_empty() => Ok(std::sync::Arc::new(CsvDirProvider::new(dir)?)),
        _ => Err(crate::Error::config(format!(
            "unknown provider `{spec}`; use `synthetic` (built-in demo data) or `csv:DIR` (a folder of SYMBOL.csv files)"
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

    /// The range a scan asks for when the request names none: about two years ending today.
    fn default_range(&self) -> DateRange {
        DateRange::ending(chrono::Local::now().date_naive(), 800)
    }

    /// Every symbol this provider can serve, with names and sectors where known.
    async fn universe(&self) -> Result<Universe>;

    /// Daily bars of `symbol` within `range`, ascending by date.
    async fn daily_bars(&self, symbol: &Symbol, range: DateRange) -> Result<Bars>;

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
