//! Wiring: turns parsed arguments into the core's provider, cache and scan request, in one place.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use technic_core::provider::{self, ApiKey, ProviderOptions, parse_universe};
use technic_core::{
    DataProvider, Deps, Filters, Market, Monitor, MonitorConfig, ScanRequest, SqliteStore, Symbol,
    UniverseSelection,
};

use crate::args::{KeepArgs, PlanArgs, ScanArgs, ServeArgs, SourceArgs, StoreArgs};

/// A command-line value that is wrong as written, such as a malformed screen expression (exit code 2, as
/// for clap's own usage errors).
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A usage error (exit 2) from a screen error: the message, the caret under the problem, close names.
pub fn usage(e: &technic_core::ScreenError, flag: &str) -> anyhow::Error {
    usage_error(format!("{flag}: {}\n{}", e.message, e.caret()))
}

/// The plan settings of `--account`, `--risk-pct`, `--reward-risk`, `--allow-shorts`.
pub fn plan(args: &PlanArgs) -> anyhow::Result<technic_core::PlanSettings> {
    let settings = technic_core::PlanSettings {
        account: args.account,
        risk_pct: args.risk_pct,
        reward_risk: args.reward_risk,
        allow_shorts: args.allow_shorts,
    };
    settings
        .validate()
        .map_err(|e| usage_error(format!("trade plan: {e}")))?;
    Ok(settings)
}

/// `--benchmark` as a symbol.
pub fn benchmark(args: &PlanArgs) -> anyhow::Result<Option<Symbol>> {
    args.benchmark
        .as_deref()
        .map(|s| Symbol::parse(s).map_err(|e| usage_error(format!("--benchmark: {e}"))))
        .transpose()
}

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

/// A bad value of a flag (exit 2).
pub(crate) fn usage_error(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

/// Everything `technic scan` needs.
pub struct WiredScan {
    pub deps: Deps,
    pub request: ScanRequest,
    /// The store, when one is used (also in `deps`).
    pub store: Option<Arc<dyn technic_core::Store>>,
    /// The monitor (also in `deps`).
    pub monitor: Arc<Monitor>,
}

/// Builds the provider, cache, store, monitor and request for `technic scan`.
pub async fn scan(args: &ScanArgs) -> anyhow::Result<WiredScan> {
    let market = market()?;
    // Everything typed is checked before anything is opened or created (the store among them).
    let universe = if let Some(path) = &args.universe {
        let bytes = technic_core::provider::read_bounded(path, technic_core::provider::MAX_FILE_BYTES)
            .map_err(|e| config(format!("cannot read universe file {}: {e}", path.display())))?;
        let text = String::from_utf8_lossy(&bytes);
        let name = path.display().to_string();
        let (entries, bad_rows) = parse_universe(&text, &name).map_err(|e| config(e.to_string()))?;
        for why in &bad_rows {
            eprintln!("warning: {why}");
        }
        if entries.is_empty() {
            return Err(config(format!("universe file {name} lists no symbols")));
        }
        UniverseSelection::Entries(entries)
    } else if !args.symbols.is_empty() {
        let symbols = args
            .symbols
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| Symbol::parse(s).map_err(|e| usage_error(format!("--symbols: {e}"))))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if symbols.is_empty() {
            return Err(usage_error(
                "--symbols names no symbol: give at least one (--symbols AAPL,MSFT), or leave the flag out to \
                 scan the whole universe"
                    .to_owned(),
            ));
        }
        UniverseSelection::Symbols(symbols)
    } else {
        UniverseSelection::Provider
    };
    check_filters(args)?;
    let plan_settings = plan(&args.plan)?;
    let (provider, cache, _link) = cache_for(
        &args.cache,
        provider(&args.source)?,
        &market,
        &args.source.rate_limit,
        ONE_SCAN_CACHE_BYTES,
    )
    .await?;
    let mut deps = Deps::new(provider, cache).with_market(market);
    let clock = deps.market.clock.clone();
    let (store, store_file) = if args.no_store {
        (None, None)
    } else {
        let (store, file) = open_store_keeping(&args.store, Some(&args.keep)).await?;
        (Some(store), file)
    };
    // Local files and demo data are read once per scan, never through a cache worth watching: a one-shot
    // scan of them would always report a low hit rate, so that rule is off for them.
    let mut rules = technic_core::monitor::AlertRules::default();
    if deps.provider.live_source().is_none() {
        rules.min_cache_hit_rate = 0.0;
    }
    let monitor = Arc::new(
        Monitor::new(MonitorConfig {
            csv_path: store_file.as_deref().map(metrics_csv),
            rules,
            ..MonitorConfig::default()
        })
        .with_clock(clock),
    );
    deps = deps.with_monitor(monitor.clone());
    if let Some(store) = &store {
        deps = deps.with_store(store.clone());
        // The progress bar is divided as the last scan's stages actually took.
        if let Ok(Some(last)) = store.recent_runs(1).await.map(|r| r.into_iter().next()) {
            deps = deps.with_measured_stages(&last.timing);
        }
    }
    let screen_spec = resolve_screen(args, store.as_deref()).await?;
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
        screen: screen_spec,
        plan: plan_settings,
        benchmark: benchmark(&args.plan)?,
        as_of: args.as_of,
        ..ScanRequest::default()
    };
    Ok(WiredScan {
        deps,
        request,
        store,
        monitor,
    })
}

/// `--screen`, `--preset`, `--where` and `--sort` combined; a bad one is a usage error naming the flag.
async fn resolve_screen(
    args: &ScanArgs,
    store: Option<&dyn technic_core::Store>,
) -> anyhow::Result<technic_core::ScreenSpec> {
    screen_spec(
        args.where_.as_deref(),
        args.preset.as_deref(),
        args.screen.as_deref(),
        args.sort.as_deref(),
        store,
    )
    .await
}

/// The screen of `--screen NAME` (read from `store`), `--preset`, `--where` and `--sort`, combined.
pub async fn screen_spec(
    where_: Option<&str>,
    preset: Option<&str>,
    screen: Option<&str>,
    sort: Option<&str>,
    store: Option<&dyn technic_core::Store>,
) -> anyhow::Result<technic_core::ScreenSpec> {
    let saved = match screen {
        None => None,
        Some(name) => {
            let Some(store) = store else {
                return Err(usage_error(
                    "--screen reads saved screens from the store: drop --no-store".to_owned(),
                ));
            };
            let found = store.screen(name).await.map_err(|e| config(e.detail()))?;
            Some(found.ok_or_else(|| {
                anyhow::Error::new(technic_core::Error::not_found(format!(
                    "no saved screen called \"{name}\"; `technic screen list` shows them"
                )))
            })?)
        }
    };
    technic_core::screen::resolve(where_, preset, saved.as_ref(), sort).map_err(|e| {
        let flag = if sort == Some(e.source.as_str()) {
            "--sort"
        } else if preset == Some(e.source.as_str()) {
            "--preset"
        } else if where_ == Some(e.source.as_str()) {
            "--where"
        } else {
            "--screen"
        };
        usage(&e, flag)
    })
}

/// The numeric filters: finite and non-negative.
pub fn check_filters(args: &ScanArgs) -> anyhow::Result<()> {
    for (flag, v) in [
        ("--min-price", args.min_price),
        ("--min-dollar-volume", args.min_dollar_volume),
    ] {
        if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
            return Err(usage_error(format!("{flag} must be a non-negative number")));
        }
    }
    Ok(())
}

/// `--retention-days` as a duration (`None` for 0: keep forever).
pub fn retention(args: &KeepArgs) -> Option<std::time::Duration> {
    (args.retention_days > 0).then(|| std::time::Duration::from_secs(u64::from(args.retention_days) * 86_400))
}

/// `--store`, or `technic/technic.db` in the user's data directory.
pub fn store_path(args: &StoreArgs) -> anyhow::Result<PathBuf> {
    if let Some(path) = &args.store {
        return Ok(path.clone());
    }
    dirs::data_dir()
        .map(|d| d.join("technic").join("technic.db"))
        .ok_or_else(|| config("no user data directory (HOME unset?); pass --store PATH or --no-store"))
}

/// The performance CSV beside the store: `<store folder>/logs/performance_metrics.csv`.
pub fn metrics_csv(store: &Path) -> PathBuf {
    store
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("logs")
        .join("performance_metrics.csv")
}

/// Opens a SQLite store file; a file that cannot be a store is a configuration problem (exit code 3).
/// Creating the file says so once on stderr (unless `--quiet`), naming it and the logs folder.
pub async fn open_store(path: &Path) -> anyhow::Result<Arc<SqliteStore>> {
    let created = !path.exists();
    let store = SqliteStore::open(path)
        .await
        .map(Arc::new)
        .map_err(|e| config(e.detail()))?;
    if created && !crate::quiet() {
        let line = format!("{}\n", created_notice(path));
        let line = match crate::columns::stderr_width() {
            Some(width) => crate::columns::wrap(&line, width),
            None => line,
        };
        eprint!("{line}");
    }
    Ok(store)
}

/// The line printed when a command creates a store file: where it is, what it keeps, where the logs go.
pub fn created_notice(path: &Path) -> String {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let logs = metrics_csv(&path);
    let logs = logs.parent().unwrap_or(&path);
    format!(
        "Created the store {} (bars, scans, metrics; performance logs in {}); --no-store keeps nothing",
        path.display(),
        logs.display()
    )
}

/// True when `--store` names a PostgreSQL server rather than a file.
pub fn is_postgres(args: &StoreArgs) -> bool {
    args.store
        .as_ref()
        .and_then(|p| p.to_str())
        .is_some_and(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"))
}

/// The store `--store` names: a SQLite file (the default one when none is given) or a PostgreSQL URL.
/// Returns it with the SQLite file's path (the CSV log goes beside it), or `None` for PostgreSQL.
/// Commands that do not save scans leave the store's run limit at its default.
pub async fn open_any_store(
    args: &StoreArgs,
) -> anyhow::Result<(Arc<dyn technic_core::Store>, Option<PathBuf>)> {
    open_store_keeping(args, None).await
}

/// [`open_any_store`] keeping at most `--keep-scans` runs (0: every run the retention keeps).
pub async fn open_store_keeping(
    args: &StoreArgs,
    keep: Option<&KeepArgs>,
) -> anyhow::Result<(Arc<dyn technic_core::Store>, Option<PathBuf>)> {
    let max_runs = keep.map(|k| (k.keep_scans > 0).then_some(k.keep_scans));
    if is_postgres(args) {
        let url = args.store.as_ref().and_then(|p| p.to_str()).unwrap_or_default();
        return open_postgres(url, max_runs).await.map(|s| (s, None));
    }
    let path = store_path(args)?;
    let store = open_store(&path).await?;
    if let Some(max_runs) = max_runs {
        store.set_max_runs(max_runs);
    }
    Ok((store as Arc<dyn technic_core::Store>, Some(path)))
}

#[cfg(feature = "postgres")]
async fn open_postgres(
    url: &str,
    max_runs: Option<Option<usize>>,
) -> anyhow::Result<Arc<dyn technic_core::Store>> {
    let store = technic_core::PostgresStore::connect(url)
        .await
        .map_err(|e| config(e.detail()))?;
    if let Some(max_runs) = max_runs {
        store.set_max_runs(max_runs);
    }
    Ok(Arc::new(store) as Arc<dyn technic_core::Store>)
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(
    _url: &str,
    _max_runs: Option<Option<usize>>,
) -> anyhow::Result<Arc<dyn technic_core::Store>> {
    Err(config(
        "this build has no PostgreSQL support: build technic-cli with the `postgres` feature",
    ))
}

/// The memory cache of a one-off `technic scan`: each symbol is read once per process, so holding every
/// symbol's bars until exit would only raise peak memory (111 MB of bars for 5000 × 504); 16 MB keeps
/// single-flight loads and the chunks being scored.
const ONE_SCAN_CACHE_BYTES: u64 = 16 << 20;

/// The cache `--cache` names (memory of at most `memory_bytes`, or that in front of Redis for
/// `redis://…`), for `provider`'s bars; with Redis also the link, so the server can coordinate through it
/// and the provider's rate limit is shared by the fleet.
pub async fn cache_for(
    args: &crate::args::CacheArgs,
    provider: Arc<dyn DataProvider>,
    market: &Market,
    rate_limit: &technic_core::provider::RateLimit,
    memory_bytes: u64,
) -> anyhow::Result<(Arc<dyn DataProvider>, Arc<dyn technic_core::Cache>, Option<Link>)> {
    let memory = technic_core::MemoryCache::new(technic_core::MemoryCacheConfig {
        capacity_bytes: memory_bytes,
        ..technic_core::MemoryCacheConfig::default()
    });
    let memory = if provider.live_source().is_some() {
        memory.with_market(market.clone())
    } else {
        memory
    };
    match args.cache.as_deref().map(str::trim) {
        None | Some("") | Some("memory") => Ok((provider, Arc::new(memory), None)),
        Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
            redis_cache(url, provider, memory, market, rate_limit).await
        }
        Some(other) => Err(config(format!(
            "--cache {other}: use `memory` (the default) or redis://HOST:PORT[/DB]"
        ))),
    }
}

/// The Redis link a server coordinates through (nothing without the `redis` feature).
#[cfg(feature = "redis")]
pub type Link = Arc<technic_core::fleet::RedisLink>;
/// The Redis link a server coordinates through (nothing without the `redis` feature).
#[cfg(not(feature = "redis"))]
pub type Link = ();

#[cfg(feature = "redis")]
async fn redis_cache(
    url: &str,
    provider: Arc<dyn DataProvider>,
    memory: technic_core::MemoryCache,
    market: &Market,
    rate_limit: &technic_core::provider::RateLimit,
) -> anyhow::Result<(Arc<dyn DataProvider>, Arc<dyn technic_core::Cache>, Option<Link>)> {
    use technic_core::fleet::{FleetRate, RedisLink, SharedRateLimit};
    let link = RedisLink::open(url, "").await.map_err(|e| config(e.detail()))?;
    if let Some(why) = link.degraded() {
        eprintln!("warning: {why}; serving from memory until it answers");
    }
    let scope = provider
        .live_source()
        .unwrap_or_else(|| provider.name().to_owned());
    let tiered = technic_core::cache::TieredCache::new(memory, link.clone(), &scope);
    let tiered = if provider.live_source().is_some() {
        tiered.with_market(market.clone())
    } else {
        tiered
    };
    // A live source's request rate is shared by every server of the fleet.
    let shared = provider
        .live_source()
        .and_then(|source| SharedRateLimit::with_limit(link.clone(), &source, rate_limit));
    let provider: Arc<dyn DataProvider> = match shared {
        Some(shared) => Arc::new(technic_core::provider::Layered::new(
            provider,
            FleetRate(Arc::new(shared)),
        )),
        None => provider,
    };
    Ok((provider, Arc::new(tiered), Some(link)))
}

#[cfg(not(feature = "redis"))]
async fn redis_cache(
    _url: &str,
    _provider: Arc<dyn DataProvider>,
    _memory: technic_core::MemoryCache,
    _market: &Market,
    _rate_limit: &technic_core::provider::RateLimit,
) -> anyhow::Result<(Arc<dyn DataProvider>, Arc<dyn technic_core::Cache>, Option<Link>)> {
    Err(config(
        "this build has no Redis support: build technic-cli with the `redis` feature",
    ))
}

/// Builds the server state and address for `technic serve` (with the store unless `--no-store`; with
/// Redis coordination when `--cache redis://…`).
pub async fn serve(args: &ServeArgs) -> anyhow::Result<(technic_http::AppState, std::net::SocketAddr)> {
    let admin_token = admin_token(args.admin_token.as_deref())?;
    let market = market()?;
    let (provider, cache, link) = cache_for(
        &args.cache,
        provider(&args.source)?,
        &market,
        &args.source.rate_limit,
        technic_core::MemoryCacheConfig::default().capacity_bytes,
    )
    .await?;
    let mut deps = Deps::new(provider, cache).with_market(market);
    let mut csv_path = None;
    if !args.no_store {
        let (store, file) = open_store_keeping(&args.store, Some(&args.keep)).await?;
        csv_path = file.as_deref().map(metrics_csv);
        deps = deps.with_store(store);
    }
    let defaults = technic_http::ServerConfig::default();
    let mut config = technic_http::ServerConfig {
        admin_token,
        warm: if args.no_warm { None } else { defaults.warm.clone() },
        retention: retention(&args.keep),
        max_connections: args.max_connections as usize,
        max_connections_per_client: args.max_connections_per_client as usize,
        writes_per_minute_per_client: args.writes_per_minute_per_client,
        // Samples (every 5 minutes) go to the store and, for a SQLite store, to logs/performance_metrics.csv
        // beside it.
        monitor: MonitorConfig {
            csv_path,
            ..MonitorConfig::default()
        },
        ..defaults
    };
    for host in &args.allowed_hosts {
        config.allow_host(host.trim());
    }
    let state = technic_http::AppState::new(deps, config);
    #[cfg(feature = "redis")]
    let state = match link {
        Some(link) => state.with_fleet(link),
        None => state,
    };
    #[cfg(not(feature = "redis"))]
    let _ = link;
    Ok((state, std::net::SocketAddr::new(args.bind, args.port)))
}

/// The variable `--admin-token` falls back to.
const ADMIN_TOKEN_VAR: &str = "TECHNIC_ADMIN_TOKEN";

/// The admin token of `--admin-token` (or `TECHNIC_ADMIN_TOKEN`), refusing an empty one: an empty token
/// would otherwise read as "no token", and leave every route open on a server meant to be locked.
fn admin_token(flag: Option<&str>) -> anyhow::Result<Option<String>> {
    // Checked by hand too: a variable set to nothing may reach clap as "not set".
    let token = flag
        .map(str::to_owned)
        .or_else(|| std::env::var_os(ADMIN_TOKEN_VAR).map(|v| v.to_string_lossy().into_owned()));
    if let Some(t) = &token {
        technic_http::auth::check_token(t)
            .map_err(|reason| usage_error(format!("--admin-token / {ADMIN_TOKEN_VAR}: {reason}")))?;
    }
    Ok(token)
}

/// The market calendar on the system clock, or on the instant `TECHNIC_NOW` names, with the publication
/// delay of `TECHNIC_PUBLICATION_DELAY_MIN` (see [`Market::from_env`]).
pub fn market() -> anyhow::Result<Market> {
    Market::from_env().map_err(|e| config(e.detail()))
}

/// The environment variable holding the Polygon API key. Read here, never from a flag, so the key does
/// not show in shell history or process listings.
const KEY_VAR: &str = "POLYGON_API_KEY";

/// Builds the provider `--provider` names (see [`technic_core::provider::from_spec`]).
pub fn provider(args: &SourceArgs) -> anyhow::Result<Arc<dyn DataProvider>> {
    if args.demo_symbols == 0 {
        return Err(usage_error("--demo-symbols must be at least 1"));
    }
    let api_key = std::env::var(KEY_VAR)
        .ok()
        .filter(|k| !k.trim().is_empty())
        .map(ApiKey::new);
    let options = ProviderOptions {
        demo_symbols: args.demo_symbols,
        base_url: args.base_url.clone(),
        api_key,
        rate_limit: args.rate_limit.clone(),
    };
    provider::from_spec(&args.provider, &options).map_err(|e| match e {
        technic_core::Error::Config { detail } => config(detail),
        other => config(other.user_message()),
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use proptest::prelude::*;

    use crate::args::{Cli, Command};

    fn number() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|x| x.to_string()),
            Just("1e400".to_owned()),
            Just("-0".to_owned()),
            Just("NaN".to_owned()),
            Just("inf".to_owned()),
            Just("99999999999999999999999999".to_owned()),
            "[0-9a-z.-]{0,12}",
        ]
    }

    proptest! {
        /// Extreme or malformed values of every numeric flag are parsed or refused, never a panic;
        /// what parses passes the filter checks or is refused with a message.
        #[test]
        fn numeric_flags_never_panic(
            top in number(), price in number(), volume in number(), max in number(),
            demo in number(), rate in number(), days in number(),
        ) {
            let argv = [
                "technic", "scan", "--top", &top, "--min-price", &price, "--min-dollar-volume", &volume,
                "--max-symbols", &max, "--demo-symbols", &demo, "--rate-limit", &rate,
                "--retention-days", &days,
            ];
            if let Ok(cli) = Cli::try_parse_from(argv)
                && let Command::Scan(args) = cli.command
            {
                prop_assert!((1..=technic_core::provider::MAX_DEMO_SYMBOLS).contains(&args.source.demo_symbols));
                prop_assert!(args.keep.retention_days <= 36_500);
                if super::check_filters(&args).is_ok() {
                    prop_assert!(args.min_price.is_none_or(|p| p.is_finite() && p >= 0.0));
                    prop_assert!(args.min_dollar_volume.is_none_or(|v| v.is_finite() && v >= 0.0));
                }
            }
        }
    }
}
