//! Operations: metrics (JSON and Prometheus), cache stats and clearing, health, the OpenAPI document.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

use crate::dto::{
    AlertDto, CacheDto, Health, MetricsCurrent, MetricsHistory, PopularDto, WarmPassDto, WarmerDto,
};
use crate::error::ApiError;
use crate::state::AppState;

/// Current cache, pool, response-time and error figures.
#[utoipa::path(get, path = "/api/v1/metrics/current", responses((status = 200, body = MetricsCurrent)))]
pub async fn metrics_current(State(state): State<AppState>) -> Json<MetricsCurrent> {
    let cache = state.deps.cache.stats();
    let totals = state.monitor.totals();
    Json(MetricsCurrent {
        cache: {
            let mut dto = CacheDto::from(&cache);
            dto.tiers = state.deps.cache.tiers();
            dto
        },
        provider_calls: state.pool.snapshot(),
        response_times: crate::metrics::response_times(&totals),
        requests_per_minute: totals.http_requests_last_minute as f64,
        error_rate: if totals.http_requests == 0 {
            0.0
        } else {
            totals.http_errors as f64 / totals.http_requests as f64
        },
        scans_running: state.scans.running(),
        alerts: state
            .monitor
            .active_alerts(state.monitor.config().rules.cooldown)
            .into_iter()
            .map(|a| AlertDto {
                rule: a.rule,
                severity: a.severity.as_str().to_owned(),
                message: a.message,
                value: a.value,
                threshold: a.threshold,
                since: a.at,
            })
            .collect(),
    })
}

/// Query of `GET /api/v1/metrics/history`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Window in minutes (default 60, at most 1440).
    #[param(maximum = 1440)]
    pub minutes: Option<u64>,
}

/// Samples for the charts, oldest first.
#[utoipa::path(get, path = "/api/v1/metrics/history", params(HistoryQuery), responses((status = 200, body = MetricsHistory), (status = 400, body = crate::dto::ErrorBody)))]
pub async fn metrics_history(
    State(state): State<AppState>,
    q: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<MetricsHistory>, ApiError> {
    let Query(q) = q?;
    let minutes = q.minutes.unwrap_or(60);
    crate::api::at_most("minutes", minutes, 1440)?;
    Ok(Json(MetricsHistory {
        minutes,
        samples: crate::metrics::history(&state.monitor, minutes),
    }))
}

/// Cache figures.
#[utoipa::path(get, path = "/api/v1/cache/stats", responses((status = 200, body = CacheDto)))]
pub async fn cache_stats(State(state): State<AppState>) -> Json<CacheDto> {
    Json(CacheDto::of(state.deps.cache.as_ref()))
}

/// Empty the cache. Needs `Authorization: Bearer <admin token>`; refused when no token is configured.
#[utoipa::path(delete, path = "/api/v1/cache", responses((status = 200, body = CacheDto), (status = 401, body = crate::dto::ErrorBody), (status = 403, body = crate::dto::ErrorBody)))]
pub async fn cache_clear(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<CacheDto>, ApiError> {
    require_admin(&state, &headers)?;
    state.deps.cache.clear().await?;
    tracing::info!("cache cleared through the API");
    Ok(Json(CacheDto::from(&state.deps.cache.stats())))
}

/// Warm the most popular symbols now (one pass of `top_n`). Needs the admin token.
#[utoipa::path(post, path = "/api/v1/cache/warm", responses((status = 200, body = WarmPassDto), (status = 401, body = crate::dto::ErrorBody), (status = 403, body = crate::dto::ErrorBody), (status = 409, body = crate::dto::ErrorBody)))]
pub async fn cache_warm(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<WarmPassDto>, ApiError> {
    require_admin(&state, &headers)?;
    let Some(warmer) = &state.warmer else {
        let msg = "Cache warming is disabled on this server (started with --no-warm)";
        return Err(ApiError::request(StatusCode::CONFLICT, msg, msg));
    };
    let pass = warmer
        .warm_top(warmer.config().top_n, &technic_core::CancellationToken::new())
        .await;
    Ok(Json(WarmPassDto::from(pass)))
}

/// The warmer's status, settings and the most popular symbols.
#[utoipa::path(get, path = "/api/v1/warmer", responses((status = 200, body = WarmerDto)))]
pub async fn warmer(State(state): State<AppState>) -> Json<WarmerDto> {
    let popular = state
        .tracker
        .top(20, state.deps.market.now())
        .into_iter()
        .map(|(symbol, score)| PopularDto {
            symbol: symbol.to_string(),
            score,
        })
        .collect();
    Json(WarmerDto::new(
        state.warmer.as_deref(),
        popular,
        state.tracker.hourly_pattern(),
    ))
}

/// The admin routes' check: 403 when the server has no admin token, 401 when the request lacks it.
pub fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = &state.config.admin_token else {
        let msg = "Admin endpoints are disabled: start the server with an admin token (--admin-token or TECHNIC_ADMIN_TOKEN)";
        return Err(ApiError::request(StatusCode::FORBIDDEN, msg, msg));
    };
    Ok(crate::auth::verify(expected, headers)?)
}

/// Liveness and what the server serves.
#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Health)))]
pub async fn health(State(state): State<AppState>) -> Json<Health> {
    // A server serving everything from memory would not notice Redis going away: ask it.
    #[cfg(feature = "redis")]
    if let Some(fleet) = &state.fleet {
        fleet.link.ping().await;
    }
    let degraded: Vec<String> = state.deps.cache.degraded().into_iter().collect();
    Json(Health {
        status: if degraded.is_empty() { "ok" } else { "degraded" }.to_owned(),
        degraded,
        provider: state.deps.provider.name().to_owned(),
        demo: state.deps.provider.is_demo(),
        uptime_seconds: state.started.elapsed().as_secs_f64(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    })
}

/// Prometheus text format.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text exposition format")))]
pub async fn prometheus(State(state): State<AppState>) -> impl IntoResponse {
    let mut body = crate::metrics::prometheus(
        &state.monitor.totals(),
        &state.deps.cache.stats(),
        state.scans.running(),
    );
    crate::metrics::tiers(&mut body, &state.deps.cache.tiers());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

/// The OpenAPI document, generated from the handlers and wire types.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Technic API",
        description = "Stock-market scanner: scans, live progress, symbols, metrics."
    ),
    paths(
        crate::api::scans::create,
        crate::api::scans::list,
        crate::api::scans::status,
        crate::api::scans::events,
        crate::api::scans::cancel,
        crate::api::scans::results,
        crate::api::symbols::snapshot,
        crate::api::symbols::bars,
        crate::api::screens::explain,
        crate::api::symbols::series,
        crate::api::scans::results_csv,
        crate::api::screens::presets,
        crate::api::screens::fields,
        crate::api::screens::list,
        crate::api::screens::save,
        crate::api::screens::delete,
        crate::api::backtests::create,
        crate::api::backtests::list,
        crate::api::backtests::get,
        crate::api::backtests::cancel,
        metrics_current,
        metrics_history,
        cache_stats,
        cache_clear,
        cache_warm,
        warmer,
        health,
        prometheus,
        openapi
    )
)]
pub struct ApiDoc;

/// This document.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "The OpenAPI 3.1 document of this API")))]
pub async fn openapi(State(state): State<AppState>) -> impl IntoResponse {
    Json(crate::api::contract::document(&state.config))
}
