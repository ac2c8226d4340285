//! The in-process server: `technic_http::serve` on 127.0.0.1:0, on its own Tokio runtime (so the load
//! generator's tasks never run on the server's threads), with the embedded defaults
//! (`ServerConfig::default()`) but for the per-client connection share and write budget, which are off:
//! every virtual user connects from 127.0.0.1 (against `--target`, start `technic serve
//! --max-connections-per-client 0 --writes-per-minute-per-client 0`). Its backend is either what `technic serve` builds by default (the memory
//! cache, a SQLite store in a temporary folder that is removed when the server stops) or, for the fleet
//! scenario, what `technic serve --cache redis://… --store postgres://…` builds (memory in front of Redis,
//! the PostgreSQL store, fleet coordination). The runtime is built like `technic serve`'s: one worker per
//! core and at most 4 blocking threads (scans score on the blocking pool; Tokio's default of 512 lets 4
//! running scans use many more threads and memory). The demo provider is wrapped to count its calls.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use technic_core::cache::TieredCache;
use technic_core::fleet::RedisLink;
use technic_core::{
    Bars, DataProvider, DateRange, Deps, Market, MemoryCache, PostgresStore, SqliteStore, Symbol,
    SyntheticConfig, SyntheticProvider, Universe,
};
use technic_http::{AppState, ServerConfig};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

use crate::http::Target;

/// The demo provider, counting the bar loads that reach it (`daily_bars`, one per symbol).
#[derive(Debug)]
struct Counting {
    inner: SyntheticProvider,
    calls: Arc<AtomicU64>,
}

#[async_trait::async_trait]
impl DataProvider for Counting {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn is_demo(&self) -> bool {
        self.inner.is_demo()
    }
    fn default_range(&self, expected: chrono::NaiveDate) -> DateRange {
        self.inner.default_range(expected)
    }
    fn live_source(&self) -> Option<String> {
        self.inner.live_source()
    }
    async fn universe(&self) -> technic_core::Result<Universe> {
        self.inner.universe().await
    }
    async fn daily_bars(&self, symbol: &Symbol, range: DateRange) -> technic_core::Result<Bars> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.daily_bars(symbol, range).await
    }
}

/// What the server keeps its data in.
#[derive(Debug, Clone, Copy)]
pub enum Backend<'a> {
    /// The memory cache and a SQLite store in a temporary folder (`technic serve`'s defaults).
    Sqlite,
    /// Memory in front of Redis (keys under `namespace`), the PostgreSQL store at `postgres`, and fleet
    /// coordination through Redis (`technic serve --cache redis://… --store postgres://…`).
    Fleet {
        redis: &'a str,
        namespace: &'a str,
        postgres: &'a str,
    },
}

/// A server running in this process.
#[derive(Debug)]
pub struct InProcess {
    rt: Option<Runtime>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// Where it listens.
    pub target: Target,
    /// Its store file (none for PostgreSQL).
    pub store: Option<PathBuf>,
    /// Demo symbols it serves.
    pub symbols: usize,
    /// Bar loads that reached its provider.
    pub provider_calls: Arc<AtomicU64>,
    dir: Option<tempfile::TempDir>,
}

impl InProcess {
    /// Starts a server over `symbols` demo symbols on `threads` worker threads and at most `blocking`
    /// blocking threads. Call from outside any Tokio runtime.
    pub fn start(
        symbols: usize,
        threads: usize,
        blocking: usize,
        backend: Backend<'_>,
    ) -> anyhow::Result<Self> {
        let dir = match backend {
            Backend::Sqlite => Some(tempfile::Builder::new().prefix("technic-load-").tempdir()?),
            Backend::Fleet { .. } => None,
        };
        let store_path = dir.as_ref().map(|d| d.path().join("technic.db"));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .max_blocking_threads(blocking)
            .thread_name("technic-server")
            .enable_all()
            .build()?;
        let calls = Arc::new(AtomicU64::new(0));
        let (state, listener) = rt.block_on(async {
            let provider: Arc<dyn DataProvider> = Arc::new(Counting {
                inner: SyntheticProvider::new(SyntheticConfig {
                    n_symbols: symbols,
                    ..SyntheticConfig::default()
                }),
                calls: calls.clone(),
            });
            let state = match (backend, &store_path) {
                (Backend::Sqlite, Some(path)) => {
                    let store = SqliteStore::open(path)
                        .await
                        .map_err(|e| anyhow::anyhow!("cannot open the store: {}", e.user_message()))?;
                    // What `technic serve` builds: the provider's memory cache on the market clock, the
                    // store.
                    let deps = Deps::on_market(provider, Market::default()).with_store(Arc::new(store));
                    AppState::new(deps, load_test_config())
                }
                (
                    Backend::Fleet {
                        redis,
                        namespace,
                        postgres,
                    },
                    _,
                ) => {
                    // What `technic serve --cache redis://… --store postgres://…` builds (technic-cli's
                    // `cache_for`, `redis_cache`, `open_any_store`, `serve`): the demo data is not a live
                    // source, so the memory tier keeps the default TTL and keys are scoped by the
                    // provider's name; the link is opened inside this server's runtime.
                    let link = RedisLink::open(redis, namespace)
                        .await
                        .map_err(|e| anyhow::anyhow!("{}", e.user_message()))?;
                    if let Some(why) = link.degraded() {
                        anyhow::bail!("{why}");
                    }
                    let scope = provider
                        .live_source()
                        .unwrap_or_else(|| provider.name().to_owned());
                    let cache = TieredCache::new(MemoryCache::default(), link.clone(), &scope);
                    let store = PostgresStore::connect(postgres)
                        .await
                        .map_err(|e| anyhow::anyhow!("PostgreSQL store: {}", e.user_message()))?;
                    let deps = Deps::new(provider, Arc::new(cache))
                        .with_market(Market::default())
                        .with_store(Arc::new(store));
                    AppState::new(deps, load_test_config()).with_fleet(link)
                }
                (Backend::Sqlite, None) => anyhow::bail!("no folder for the SQLite store"),
            };
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            Ok::<_, anyhow::Error>((state, listener))
        })?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = rt.spawn(technic_http::serve(listener, state, async {
            let _ = rx.await;
        }));
        Ok(Self {
            rt: Some(rt),
            shutdown: Some(tx),
            task: Some(task),
            target: Target::local(addr),
            store: store_path,
            symbols,
            provider_calls: calls,
            dir,
        })
    }

    /// Stops the server (running scans are cancelled), then removes its folder. Call from outside any
    /// Tokio runtime.
    pub fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let mut result = Ok(());
        if let (Some(rt), Some(task)) = (self.rt.take(), self.task.take()) {
            match rt.block_on(async { tokio::time::timeout(Duration::from_secs(20), task).await }) {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => result = Err(anyhow::anyhow!("the server failed: {e}")),
                Ok(Err(e)) => result = Err(anyhow::anyhow!("the server task failed: {e}")),
                Err(_) => result = Err(anyhow::anyhow!("the server did not stop within 20 s")),
            }
            rt.shutdown_timeout(Duration::from_secs(5));
        }
        if let Some(dir) = self.dir.take() {
            dir.close()
                .map_err(|e| anyhow::anyhow!("cannot remove the server's temporary folder: {e}"))?;
        }
        result
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        // Only reached when `stop` was not called (an early error): stop without blocking.
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// The server's defaults, but with the per-client connection share and write budget off: every virtual
/// user of the load test connects from 127.0.0.1, so one address stands for many clients here.
fn load_test_config() -> ServerConfig {
    ServerConfig {
        max_connections_per_client: 0,
        writes_per_minute_per_client: 0,
        ..ServerConfig::default()
    }
}
