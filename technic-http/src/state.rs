//! The state every handler shares: the core's parts, the scans, the metrics and the server's settings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::collections::HashMap;

use technic_core::warm::CacheWarmer;
use technic_core::{Deps, Monitor, MonitorConfig, Symbol, SymbolTracker, UniverseEntry, WarmerConfig};
use tokio::sync::OnceCell;

use crate::pool::{PoolCounters, counting};
use crate::scans::Scans;

/// The host names a server always answers for.
pub const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

impl ServerConfig {
    /// Why this configuration cannot serve, if it cannot: an admin token that is not a token (empty,
    /// blank or with spaces) is refused rather than read as "no token".
    pub fn validate(&self) -> Result<(), String> {
        if let Some(token) = &self.admin_token {
            crate::auth::check_token(token)?;
        }
        Ok(())
    }

    /// Adds `host` (a name or an IP address) to the allowed hosts, if they are restricted.
    pub fn allow_host(&mut self, host: &str) {
        let host = match host.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
            _ => host.to_owned(),
        };
        if let Some(hosts) = &mut self.allowed_hosts
            && !hosts.iter().any(|h| h.eq_ignore_ascii_case(&host))
        {
            hosts.push(host);
        }
    }
}

/// How long history is kept by default: 30 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Open connections one client may hold by default: far more than a browser opens to one server (six,
/// plus one event stream per scan it follows), and a sixteenth of the default global cap of 1024.
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 64;

/// State changes one client may make a minute by default: a trader clicking Run, saving screens and
/// cancelling makes a few; 60 (bursts of 15) still lets a script start a scan a second, while a client
/// posting scans in a loop fills a store 1000 runs deep no faster than in about 17 minutes.
pub const DEFAULT_WRITES_PER_MINUTE_PER_CLIENT: u32 = 60;

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Token every state-changing request (`POST`, `PUT`, `PATCH`, `DELETE`) must send as
    /// `Authorization: Bearer <token>`; without one, state changes are open and the admin routes
    /// (clearing and warming the cache) are refused. Must not be empty ([`Self::validate`]).
    pub admin_token: Option<String>,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Longest a request may take (SSE streams excepted).
    pub request_timeout: Duration,
    /// How often metrics are sampled for the history.
    pub sample_interval: Duration,
    /// The cache warmer's settings; `None` runs no warmer.
    pub warm: Option<WarmerConfig>,
    /// Performance sampling and alert rules (samples go to the store and the CSV file it names).
    pub monitor: MonitorConfig,
    /// Open connections at once; more are closed as they arrive.
    pub max_connections: usize,
    /// Open connections one client may hold at once (an IPv4 address, or an IPv6 /64 network); more from
    /// it are closed as they arrive while other clients are still served. Keep it well below
    /// `max_connections`, so one client cannot take them all; 0 turns the share off (for a server behind
    /// a proxy, where every connection comes from the proxy's address).
    pub max_connections_per_client: usize,
    /// State changes (`POST`, `PUT`, `PATCH`, `DELETE`) one client address may make a minute, with a
    /// burst of a quarter of that; more are refused with 429 and `Retry-After`, so one client cannot fill
    /// the store or the scan queue for everyone. 0 turns the budget off (behind a proxy, as for
    /// `max_connections_per_client`).
    pub writes_per_minute_per_client: u32,
    /// Time a connection has to send a request's headers (also while idle between requests).
    pub header_read_timeout: Duration,
    /// Scans running at once; more wait in the queue.
    pub max_scans: usize,
    /// Scans waiting for a turn; when full, new scans are refused with 429 and `Retry-After`.
    pub max_queued_scans: usize,
    /// Host names the server answers for (against DNS rebinding; see `guard`); `None` answers any
    /// (only for a server behind a proxy that checks hosts itself). [`crate::serve`] adds the address it
    /// is bound to.
    pub allowed_hosts: Option<Vec<String>>,
    /// How long scan runs, metric samples and alerts are kept in the store (`None` keeps them forever).
    /// Pruned at start and every six hours.
    pub retention: Option<Duration>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            admin_token: None,
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            sample_interval: Duration::from_secs(5),
            warm: Some(WarmerConfig::default()),
            monitor: MonitorConfig {
                csv_path: None,
                ..MonitorConfig::default()
            },
            retention: Some(DEFAULT_RETENTION),
            max_scans: 4,
            max_connections: 1024,
            max_connections_per_client: DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
            writes_per_minute_per_client: DEFAULT_WRITES_PER_MINUTE_PER_CLIENT,
            header_read_timeout: Duration::from_secs(10),
            max_queued_scans: 100,
            allowed_hosts: Some(LOOPBACK_HOSTS.iter().map(|h| (*h).to_owned()).collect()),
        }
    }
}

/// Shared state, cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Provider, cache and store.
    pub deps: Deps,
    /// Settings.
    pub config: Arc<ServerConfig>,
    /// Scans started through the API.
    pub scans: Arc<Scans>,
    /// When the server started.
    pub started: Instant,
    /// Calls to the data provider (the connection-pool figures).
    pub pool: Arc<PoolCounters>,
    /// Which symbols users ask for.
    pub tracker: Arc<SymbolTracker>,
    /// The one source of performance figures: scans, symbol lookups and every API request feed it; the
    /// dashboard, `/metrics`, the CSV log, the store's samples and the alerts read it.
    pub monitor: Arc<Monitor>,
    /// Keeps popular symbols in the cache (when configured).
    pub warmer: Option<Arc<CacheWarmer>>,
    /// Serialised pages of finished scans' results.
    pub pages: Arc<crate::api::scans::PageCache>,
    /// Backtests started through the API.
    pub backtests: Arc<crate::backtests::Backtests>,
    /// Coordination with the other servers of a fleet (through Redis), when configured.
    #[cfg(feature = "redis")]
    pub fleet: Option<crate::fleet::Fleet>,
    /// The warmer's fleet lease once a fleet is configured: the warmer runs only on the lease's holder.
    #[cfg(feature = "redis")]
    warm_lease: Arc<std::sync::OnceLock<Arc<technic_core::fleet::LeaderLease>>>,
    /// Where saved screens live: the store, or memory when the server runs without one.
    pub screens: Arc<dyn technic_core::Store>,
    /// Names and sectors by symbol, loaded from the provider on first use.
    pub names: Arc<OnceCell<HashMap<Symbol, UniverseEntry>>>,
    /// State changes left to each client this minute.
    pub writes: Arc<crate::budget::WriteBudget>,
}

impl AppState {
    /// The universe entry of `symbol` (bare when the provider does not list it or cannot list at all).
    pub async fn entry(&self, symbol: &Symbol) -> UniverseEntry {
        let names = self
            .names
            .get_or_init(|| async {
                match self.deps.provider.universe().await {
                    Ok(u) => u.into_iter().map(|e| (e.symbol.clone(), e)).collect(),
                    Err(e) => {
                        tracing::warn!(error = %e, "provider universe unavailable; symbols shown without names");
                        HashMap::new()
                    }
                }
            })
            .await;
        names
            .get(symbol)
            .cloned()
            .unwrap_or_else(|| UniverseEntry::bare(symbol.clone()))
    }

    /// State over `deps` with `config`. The provider is wrapped so its calls are counted.
    pub fn new(mut deps: Deps, config: ServerConfig) -> Self {
        let pool = Arc::new(PoolCounters::default());
        deps.provider = Arc::new(counting(deps.provider, pool.clone()));
        let tracker = Arc::new(SymbolTracker::default());
        let monitor = Arc::new(Monitor::new(config.monitor.clone()).with_clock(deps.market.clock.clone()));
        deps = deps.with_monitor(monitor.clone());
        let scans = Arc::new(Scans::new(config.max_scans, config.max_queued_scans));
        #[cfg(feature = "redis")]
        let warm_lease: Arc<std::sync::OnceLock<Arc<technic_core::fleet::LeaderLease>>> = Arc::default();
        let warmer = config.warm.clone().map(|warm| {
            // Warming waits while two or more scans run, so it never competes with users for the provider;
            // in a fleet it runs only on the server holding the warmer lease.
            let running = scans.clone();
            #[cfg(feature = "redis")]
            let lease = warm_lease.clone();
            #[cfg(feature = "redis")]
            let busy = move || running.running() >= 2 || lease.get().is_some_and(|l| !l.is_leader());
            #[cfg(not(feature = "redis"))]
            let busy = move || running.running() >= 2;
            let warmer = CacheWarmer::new(
                deps.provider.clone(),
                deps.cache.clone(),
                tracker.clone(),
                warm,
                Arc::new(busy),
            )
            .with_market(deps.market.clone());
            // With a store, a pass refreshes through it (grouped daily bars for a whole session at once).
            match &deps.store {
                Some(store) => Arc::new(warmer.with_store(store.clone())),
                None => Arc::new(warmer),
            }
        });
        let screens: Arc<dyn technic_core::Store> = match &deps.store {
            Some(store) => store.clone(),
            None => Arc::new(technic_core::MemoryStore::default()),
        };
        let writes = Arc::new(crate::budget::WriteBudget::new(
            config.writes_per_minute_per_client,
        ));
        Self {
            #[cfg(feature = "redis")]
            fleet: None,
            #[cfg(feature = "redis")]
            warm_lease,
            backtests: Arc::new(crate::backtests::Backtests::default()),
            screens,
            pool,
            tracker,
            monitor,
            warmer,
            deps,
            config: Arc::new(config),
            scans,
            started: Instant::now(),
            names: Arc::new(OnceCell::new()),
            writes,
            pages: Arc::new(crate::api::scans::page_cache(32 << 20)),
        }
    }

    /// The same state coordinating with a fleet through Redis on `link`: scan statuses relayed, the warmer
    /// on the lease holder only, `/healthz` reporting Redis. Call inside the runtime.
    #[cfg(feature = "redis")]
    pub fn with_fleet(mut self, link: Arc<technic_core::fleet::RedisLink>) -> Self {
        let fleet = crate::fleet::Fleet::start(link);
        let _ = self.warm_lease.set(fleet.lease.clone());
        self.fleet = Some(fleet);
        self
    }
}
