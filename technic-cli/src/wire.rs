//! Wiring: turns parsed arguments into the core's provider, cache and scan request, in one place.

use std::fmt;
use std::sync::Arc;

use technic_core::provider::{self, ApiKey, ProviderOptions, parse_universe};
use technic_core::{DataProvider, Deps, Filters, MemoryCache, ScanRequest, Symbol, UniverseSelection};

use crate::args::{ScanArgs, ServeArgs, SourceArgs};

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
    let provider = provider(&args.source)?;
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

/// Builds the server state and address for `technic serve`.
pub fn serve(args: &ServeArgs) -> anyhow::Result<(technic_http::AppState, std::net::SocketAddr)> {
    let provider = provider(&args.source)?;
    let deps = Deps::new(provider, Arc::new(MemoryCache::default()));
    let defaults = technic_http::ServerConfig::default();
    let config = technic_http::ServerConfig {
        admin_token: args.admin_token.clone(),
        warm: if args.no_warm { None } else { defaults.warm.clone() },
        ..defaults
    };
    Ok((
        technic_http::AppState::new(deps, config),
        std::net::SocketAddr::new(args.bind, args.port),
    ))
}

/// The environment variable holding the Polygon API key. Read here, never from a flag, so the key does
/// not show in shell history or process listings.
const KEY_VAR: &str = "POLYGON_API_KEY";

/// Builds the provider `--provider` names (see [`technic_core::provider::from_spec`]).
pub fn provider(args: &SourceArgs) -> anyhow::Result<Arc<dyn DataProvider>> {
    if args.demo_symbols == 0 {
        return Err(config("--demo-symbols must be at least 1"));
    }
    let api_key = std::env::var(KEY_VAR)
        .ok()
        .filter(|k| !k.trim().is_empty())
        .map(ApiKey::new);
    let options = ProviderOptions {
        demo_symbols: args.demo_symbols,
        base_url: args.base_url.clone(),
        api_key,
        rate_limit: args.rate_limit,
    };
    provider::from_spec(&args.provider, &options).map_err(|e| match e {
        technic_core::Error::Config { detail } => config(detail),
        other => config(other.user_message()),
    })
}
