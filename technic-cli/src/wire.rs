//! Wiring: turns parsed arguments into the core's provider, cache and scan request, in one place.

use std::fmt;
use std::sync::Arc;

use technic_core::provider::http::ApiKey;
use technic_core::provider::parse_universe;
use technic_core::{
    BreakerConfig, CsvDirProvider, DataProvider, Deps, Filters, HttpConfig, HttpProvider, MemoryCache,
    Resilient, RetryPolicy, ScanRequest, Symbol, SyntheticConfig, SyntheticProvider, UniverseSelection,
};

use crate::args::ScanArgs;

/// A problem with the command line or configuration (exit code 3).
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn config(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(ConfigError(msg.into()))
}

/// Everything `technic scan` needs.
pub struct WiredScan {
    pub deps: Deps,
    pub request: ScanRequest,
}

/// Builds the provider, cache and request for `technic scan`.
pub fn scan(args: &ScanArgs) -> anyhow::Result<WiredScan> {
    let provider = provider(args)?;
    let deps = Deps::new(provider, Arc::new(MemoryCache::default()));
    let universe = if let Some(path) = &args.universe {
        let text = std::fs::read_to_string(path)
            .map_err(|e| config(format!("cannot read universe file {}: {e}", path.display())))?;
        let name = path.display().to_string();
        let entries = parse_universe(&text, &name).map_err(|e| config(e.to_string()))?;
        if entries.is_empty() {
            return Err(config(format!("universe file {name} lists no symbols")));
        }
        UniverseSelection::Entries(entries)
    } else if !args.symbols.is_empty() {
        let symbols = args
            .symbols
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| Symbol::parse(s).map_err(|e| config(format!("--symbols: {e}"))))
            .collect::<anyhow::Result<Vec<_>>>()?;
        UniverseSelection::Symbols(symbols)
    } else {
        UniverseSelection::Provider
    };
    for (flag, v) in [
        ("--min-price", args.min_price),
        ("--min-dollar-volume", args.min_dollar_volume),
    ] {
        if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
            return Err(config(format!("{flag} must be a non-negative number")));
        }
    }
    let request = ScanRequest {
        universe,
        filters: Filters {
            sectors: args
                .sector
                .iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            min_price: args.min_price,
            min_dollar_volume: args.min_dollar_volume,
            max_symbols: args.max_symbols,
        },
        top: (args.top > 0).then_some(args.top),
        ..ScanRequest::default()
    };
    Ok(WiredScan { deps, request })
}

/// The environment variable holding the Polygon API key. Read here, never from a flag, so the key does
/// not show in shell history or process listings.
const KEY_VAR: &str = "POLYGON_API_KEY";

/// Parses `--provider`.
pub fn provider(args: &ScanArgs) -> anyhow::Result<Arc<dyn DataProvider>> {
    let (spec, demo_symbols) = (args.provider.as_str(), args.demo_symbols);
    match spec.split_once(':') {
        None if spec == "polygon" => polygon(args),
        None if spec == "synthetic" => {
            if demo_symbols == 0 {
                return Err(config("--demo-symbols must be at least 1"));
            }
            let cfg = SyntheticConfig {
                n_symbols: demo_symbols,
                ..SyntheticConfig::default()
            };
            Ok(Arc::new(SyntheticProvider::new(cfg)))
        }
        Some(("csv", dir)) if !dir.is_empty() => Ok(Arc::new(
            CsvDirProvider::new(dir).map_err(|e| config(e.user_message()))?,
        )),
        _ => Err(config(format!(
            "unknown provider `{spec}`; use `synthetic` (built-in demo data), `csv:DIR` (a folder of SYMBOL.csv files) or `polygon` (the Polygon API)"
        ))),
    }
}

/// The Polygon HTTP provider, with retries and a circuit breaker around it.
fn polygon(args: &ScanArgs) -> anyhow::Result<Arc<dyn DataProvider>> {
    let key = std::env::var(KEY_VAR).unwrap_or_default();
    if key.trim().is_empty() {
        return Err(config(format!(
            "{KEY_VAR} is not set: export your Polygon API key as {KEY_VAR} to use --provider polygon"
        )));
    }
    let config_ = HttpConfig {
        requests_per_second: std::num::NonZeroU32::new(args.rate_limit),
        ..HttpConfig::new(args.base_url.trim(), ApiKey::new(key))
    };
    let http = HttpProvider::new(config_).map_err(|e| config(e.user_message()))?;
    Ok(Arc::new(Resilient::new(
        Arc::new(http),
        RetryPolicy::default(),
        BreakerConfig::default(),
    )))
}
