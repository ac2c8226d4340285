//! The in-process server: `technic_http::serve` on 127.0.0.1:0, on its own Tokio runtime (so the load
//! generator's tasks never run on the server's threads), with the embedded defaults
//! (`ServerConfig::default()`, the memory cache `technic serve` uses) and a SQLite store in a temporary
//! folder that is removed when the server stops. The runtime is built like `technic serve`'s: one worker
//! per core and at most 4 blocking threads (scans score on the blocking pool; Tokio's default of 512
//! lets 4 running scans use many more threads and memory).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use technic_core::{Deps, Market, SqliteStore, SyntheticConfig, SyntheticProvider};
use technic_http::{AppState, ServerConfig};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

use crate::http::Target;

/// A server running in this process.
#[derive(Debug)]
pub struct InProcess {
    rt: Option<Runtime>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// Where it listens.
    pub target: Target,
    /// Its store file.
    pub store: PathBuf,
    /// Demo symbols it serves.
    pub symbols: usize,
    dir: Option<tempfile::TempDir>,
}

impl InProcess {
    /// Starts a server over `symbols` demo symbols on `threads` worker threads and at most `blocking`
    /// blocking threads. Call from outside any Tokio runtime.
    pub fn start(symbols: usize, threads: usize, blocking: usize) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("technic-load-").tempdir()?;
        let store_path = dir.path().join("technic.db");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .max_blocking_threads(blocking)
            .thread_name("technic-server")
            .enable_all()
            .build()?;
        let (state, listener) = rt.block_on(async {
            let provider = SyntheticProvider::new(SyntheticConfig {
                n_symbols: symbols,
                ..SyntheticConfig::default()
            });
            let store = SqliteStore::open(&store_path)
                .await
                .map_err(|e| anyhow::anyhow!("cannot open the store: {}", e.user_message()))?;
            // What `technic serve` builds: the provider's memory cache on the market clock, the store.
            let deps = Deps::on_market(Arc::new(provider), Market::default()).with_store(Arc::new(store));
            let state = AppState::new(deps, ServerConfig::default());
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
            dir: Some(dir),
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
