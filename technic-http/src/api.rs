//! The JSON API under `/api/v1`, plus `/healthz`, `/metrics` and `/openapi.json`.

pub mod backtests;
pub mod contract;
pub mod ops;
pub mod scans;
pub mod screens;
pub mod symbols;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

/// 400 unless `value` (of query parameter `name`) is at most `max`: a bound the document states is
/// enforced, never silently clamped.
pub fn at_most(name: &str, value: u64, max: u64) -> Result<(), crate::error::ApiError> {
    if value > max {
        let msg = format!("{name} must be at most {max}");
        return Err(crate::error::ApiError::request(
            axum::http::StatusCode::BAD_REQUEST,
            "Invalid query string",
            msg,
        ));
    }
    Ok(())
}

/// Routes answered within the request timeout.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/scans", post(scans::create).get(scans::list))
        .route("/api/v1/scans/{id}", get(scans::status))
        .route("/api/v1/scans/{id}/cancel", post(scans::cancel))
        .route("/api/v1/scans/{id}/results", get(scans::results))
        .route("/api/v1/symbols/{symbol}", get(symbols::snapshot))
        .route("/api/v1/symbols/{symbol}/bars", get(symbols::bars))
        .route("/api/v1/symbols/{symbol}/explain", get(screens::explain))
        .route("/api/v1/symbols/{symbol}/series", get(symbols::series))
        .route("/api/v1/scans/{id}/results.csv", get(scans::results_csv))
        .route("/api/v1/presets", get(screens::presets))
        .route("/api/v1/fields", get(screens::fields))
        .route("/api/v1/backtests", post(backtests::create).get(backtests::list))
        .route("/api/v1/backtests/{id}", get(backtests::get))
        .route("/api/v1/backtests/{id}/cancel", post(backtests::cancel))
        .route("/api/v1/screens", get(screens::list).post(screens::save))
        .route("/api/v1/screens/{name}", axum::routing::delete(screens::delete))
        .route("/api/v1/metrics/current", get(ops::metrics_current))
        .route("/api/v1/metrics/history", get(ops::metrics_history))
        .route("/api/v1/cache/stats", get(ops::cache_stats))
        .route("/api/v1/cache", axum::routing::delete(ops::cache_clear))
        .route("/api/v1/cache/warm", post(ops::cache_warm))
        .route("/api/v1/warmer", get(ops::warmer))
        .route("/healthz", get(ops::health))
        .route("/metrics", get(ops::prometheus))
        .route("/openapi.json", get(ops::openapi))
}

/// Streaming routes, which must outlive the request timeout.
pub fn streaming_routes() -> Router<AppState> {
    Router::new().route("/api/v1/scans/{id}/events", get(scans::events))
}
