//! `technic-http`: Technic's embeddable HTTP server.
//!
//! [`router`] builds an axum [`Router`] another program can mount; [`serve`] runs it on a listener the
//! caller bound, until the caller's shutdown future completes, then cancels running scans. The JSON API
//! lives under `/api/v1`, with `/healthz`, `/metrics` (Prometheus), `/openapi.json` and the dashboard at
//! `/` (assets embedded in the binary; the page makes no request to another host).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::sync::Arc;
//! use technic_core::{Deps, MemoryCache, SyntheticProvider};
//! use technic_http::{AppState, ServerConfig};
//!
//! let deps = Deps::new(Arc::new(SyntheticProvider::default()), Arc::new(MemoryCache::default()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8003").await?;
//! technic_http::serve(listener, AppState::new(deps, ServerConfig::default()), async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await
//! # }
//! ```
#![deny(missing_docs)]

pub mod api;
pub mod auth;
pub mod backtests;
pub mod budget;
mod connections;
pub mod dashboard;
pub mod dto;
pub mod error;
#[cfg(feature = "redis")]
pub mod fleet;
pub mod guard;
pub mod metrics;
pub mod pool;
pub mod popularity;
pub mod scans;
pub mod state;

use std::future::Future;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;

pub use state::{AppState, ServerConfig};

/// The address `technic serve` binds by default: loopback only.
pub const DEFAULT_BIND: &str = "127.0.0.1:8003";

/// The whole application as a router over `state`.
pub fn router(state: AppState) -> Router {
    let timed = api::routes()
        .merge(dashboard::routes())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            state.config.request_timeout,
        ));
    timed
        .merge(api::streaming_routes())
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), record_metrics))
        .layer(middleware::from_fn_with_state(state.clone(), guard::guard))
        .with_state(state)
}

/// 404 in the API's JSON error shape for a path no route serves.
async fn no_route(method: axum::http::Method, uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::no_route(method.as_str(), uri.path())
}

/// 405 in the API's JSON error shape for a method the route does not answer.
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::method_not_allowed(method.as_str(), uri.path())
}

/// Times every request into the monitor, counts server errors, and counts the request in flight until it
/// ends (or its future is dropped): the monitor's `ActiveConnections`.
async fn record_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let _in_flight = state.monitor.request_started();
    let response = next.run(req).await;
    state
        .monitor
        .record_request(start.elapsed(), response.status().is_server_error());
    response
}

/// Serves `state` on `listener` until `shutdown` completes, then cancels running scans and waits for
/// open requests to finish. Also samples metrics for `/api/v1/metrics/history` while it runs. Refuses
/// (`InvalidInput`) a configuration that [`ServerConfig::validate`] refuses, such as an empty admin token.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Err(reason) = state.config.validate() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, reason));
    }
    let mut state = state;
    if let Ok(addr) = listener.local_addr()
        && !addr.ip().is_unspecified()
    {
        std::sync::Arc::make_mut(&mut state.config).allow_host(&addr.ip().to_string());
    }
    let restored = popularity::restore(&state).await;
    if restored > 0 {
        tracing::info!(restored, "symbol popularity restored from the store");
    }
    let sampler = tokio::spawn(sample_metrics(state.clone()));
    let retention = tokio::spawn(retain(state.clone()));
    let warming = technic_core::CancellationToken::new();
    let warmer = state.warmer.clone().map(|w| tokio::spawn(w.run(warming.clone())));
    let monitor = tokio::spawn(
        state
            .monitor
            .clone()
            .run(state.deps.store.clone(), warming.clone()),
    );
    let scans = state.scans.clone();
    let limits = connections::Limits::from(&*state.config);
    let app = router(state);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "technic-http listening");
    }
    let result = connections::accept_loop(listener, app, limits, async move {
        shutdown.await;
        tracing::info!("shutting down: cancelling running scans");
        scans.cancel_all();
    })
    .await;
    sampler.abort();
    retention.abort();
    warming.cancel();
    if let Some(task) = warmer {
        let _ = task.await;
    }
    let _ = monitor.await;
    result
}

/// Completes on Ctrl-C or (on Unix) SIGTERM: the usual shutdown future for [`serve`].
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Applies the retention period to the store at start and every six hours.
async fn retain(state: AppState) {
    let (Some(store), Some(keep)) = (state.deps.store.clone(), state.config.retention) else {
        return;
    };
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(6 * 3600));
    loop {
        tick.tick().await;
        let before =
            state.deps.market.now() - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
        match store.prune(before).await {
            Ok(p) => tracing::info!(
                runs = p.runs,
                samples = p.samples,
                alerts = p.alerts,
                "history pruned"
            ),
            Err(e) => tracing::warn!(error = %e, "could not prune the store's history"),
        }
    }
}

/// Samples metrics every interval and saves new symbol accesses to the store every minute.
async fn sample_metrics(state: AppState) {
    let interval = state.config.sample_interval;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut flushed = std::collections::HashMap::new();
    let mut last_flush = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        state.monitor.sample_fine();
        if last_flush.elapsed() >= std::time::Duration::from_secs(60) {
            popularity::flush(&state, &mut flushed).await;
            last_flush = tokio::time::Instant::now();
        }
    }
}
