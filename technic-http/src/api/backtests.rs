//! Backtests: start (async, like scans), status with the report once done, list, cancel.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use technic_core::Filters;
use technic_core::backtest::{BacktestRequest, MAX_HORIZON};
use technic_core::scan::UniverseSelection;

use crate::backtests::Job;
use crate::dto::{BacktestCreate, BacktestCreated, BacktestStatus};
use crate::error::ApiError;
use crate::state::AppState;

fn status(job: &Job) -> BacktestStatus {
    let p = job.progress();
    BacktestStatus {
        id: job.id.clone(),
        state: p.state,
        percent: p.percent,
        message: p.message,
        error: p.error,
        report: p.report.map(|r| serde_json::to_value(&*r).unwrap_or_default()),
    }
}

/// Start a backtest of a screen.
#[utoipa::path(post, path = "/api/v1/backtests", operation_id = "create_backtest", request_body = BacktestCreate,
    responses((status = 202, body = BacktestCreated), (status = 400, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody), (status = 415, body = crate::dto::ErrorBody), (status = 422, body = crate::dto::ErrorBody), (status = 429, body = crate::dto::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    body: Result<Json<BacktestCreate>, JsonRejection>,
) -> Result<(StatusCode, Json<BacktestCreated>), ApiError> {
    let Json(body) = body?;
    let bad = |msg: String| ApiError::request(StatusCode::UNPROCESSABLE_ENTITY, msg.clone(), msg);
    let symbols = body
        .symbols
        .iter()
        .map(|s| crate::api::symbols::parse_symbol(s).map_err(|e| bad(format!("symbols: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    if symbols.len() > crate::api::scans::MAX_SYMBOLS {
        return Err(bad(format!("at most {} symbols", crate::api::scans::MAX_SYMBOLS)));
    }
    let saved = match &body.screen {
        Some(name) => Some(state.screens.screen(name).await?.ok_or_else(|| {
            ApiError::not_found(&format!(
                "saved screen \"{name}\" (GET /api/v1/screens lists them)"
            ))
        })?),
        None => None,
    };
    let screen = technic_core::screen::resolve(
        body.where_.as_deref(),
        body.preset.as_deref(),
        saved.as_ref(),
        body.sort.as_deref(),
    )
    .map_err(|e| ApiError::expression(&e))?;
    let top = body.top.filter(|k| *k > 0);
    if screen.where_.is_none() && (screen.sort.is_none() || top.is_none()) {
        return Err(bad(
            "a backtest needs `where`, `preset` or `screen` (or `sort` with `top`)".to_owned(),
        ));
    }
    let horizons = if body.horizons.is_empty() {
        vec![21]
    } else {
        body.horizons.clone()
    };
    if horizons.len() > 8 || horizons.iter().any(|h| *h == 0 || *h > MAX_HORIZON) {
        return Err(bad(format!(
            "horizons: at most 8, each 1 to {MAX_HORIZON} sessions"
        )));
    }
    if let (Some(f), Some(t)) = (body.from, body.to)
        && f > t
    {
        return Err(bad(format!("from {f} is after to {t}")));
    }
    // `contract::BACKTEST_DATE_PATTERN` states the same bound.
    for (name, d) in [("from", body.from), ("to", body.to)] {
        if d.is_some_and(|d| !(1900..=2199).contains(&chrono::Datelike::year(&d))) {
            return Err(bad(format!("{name}: a date in the years 1900 to 2199")));
        }
    }
    let benchmark = body
        .benchmark
        .as_deref()
        .map(|s| crate::api::symbols::parse_symbol(s).map_err(|e| bad(format!("benchmark: {e}"))))
        .transpose()?;
    let req = BacktestRequest {
        universe: if symbols.is_empty() {
            UniverseSelection::Provider
        } else {
            UniverseSelection::Symbols(symbols)
        },
        filters: Filters {
            max_symbols: body.max_symbols,
            ..Filters::default()
        },
        screen,
        top,
        horizons,
        from: body.from,
        to: body.to,
        benchmark,
        ..BacktestRequest::default()
    };
    let job = state.backtests.start(req, state.deps.clone()).map_err(|_| {
        ApiError::busy(
            format!(
                "Too many backtests: {} are running; try again shortly",
                crate::backtests::MAX_RUNNING
            ),
            5,
        )
    })?;
    let base = format!("/api/v1/backtests/{}", job.id);
    Ok((
        StatusCode::ACCEPTED,
        Json(BacktestCreated {
            id: job.id.clone(),
            status_url: base.clone(),
            cancel_url: format!("{base}/cancel"),
        }),
    ))
}

/// Backtests of this server, newest first (without their reports).
#[utoipa::path(get, path = "/api/v1/backtests", operation_id = "list_backtests", responses((status = 200, body = [BacktestStatus])))]
pub async fn list(State(state): State<AppState>) -> Json<Vec<BacktestStatus>> {
    Json(
        state
            .backtests
            .list()
            .iter()
            .map(|j| BacktestStatus {
                report: None,
                ..status(j)
            })
            .collect(),
    )
}

/// A backtest's state and progress, with its report once complete.
#[utoipa::path(get, path = "/api/v1/backtests/{id}", operation_id = "get_backtest", params(("id" = String, Path, description = "The backtest's id")),
    responses((status = 200, body = BacktestStatus), (status = 404, body = crate::dto::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<BacktestStatus>, ApiError> {
    let job = state
        .backtests
        .get(&id)
        .ok_or_else(|| ApiError::not_found(&format!("backtest {id}")))?;
    Ok(Json(status(&job)))
}

/// Cancel a running backtest.
#[utoipa::path(post, path = "/api/v1/backtests/{id}/cancel", operation_id = "cancel_backtest", params(("id" = String, Path, description = "The backtest's id")),
    responses((status = 200, body = BacktestStatus), (status = 404, body = crate::dto::ErrorBody), (status = 409, body = crate::dto::ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<BacktestStatus>, ApiError> {
    let job = state
        .backtests
        .get(&id)
        .ok_or_else(|| ApiError::not_found(&format!("backtest {id}")))?;
    if !job.cancel() {
        let msg = format!("backtest {id} has already ended");
        return Err(ApiError::request(StatusCode::CONFLICT, msg.clone(), msg));
    }
    Ok(Json(status(&job)))
}
