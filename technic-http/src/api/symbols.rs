//! Symbols: the latest indicators and score (from the cache when fresh), and daily bars.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Deserialize;
use technic_core::cache::BarsKey;
use technic_core::scan::score_symbol;
use technic_core::{Bars, DateRange, Error, Symbol};
use utoipa::IntoParams;

use crate::dto::{BarsResponse, SymbolSnapshot};
use crate::error::ApiError;
use crate::state::AppState;

/// A symbol as the API takes it (`contract::SYMBOL_PATTERN`): 1–16 letters, digits, `.` or `-`, nothing
/// around them; upper-cased. The error quotes at most a short prefix of `raw`.
pub fn parse_symbol(raw: &str) -> Result<Symbol, String> {
    let shown = crate::error::clip(raw, 20);
    if raw.is_empty() {
        return Err("empty symbol".to_owned());
    }
    if raw.len() > 16 {
        return Err(format!("symbol `{shown}` is longer than 16 characters"));
    }
    if let Some(c) = raw
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '-'))
    {
        return Err(format!(
            "symbol `{shown}` contains {c:?}; use letters, digits, `.` or `-`"
        ));
    }
    Symbol::parse(raw)
}

pub(crate) fn symbol_in_path(raw: &str) -> Result<Symbol, ApiError> {
    parse_symbol(raw)
        .map_err(|e| ApiError::request(StatusCode::BAD_REQUEST, format!("Invalid symbol: {e}"), e))
}

/// Bars of `symbol` over `range`, through the cache; validated before they are cached.
async fn load(state: &AppState, symbol: &Symbol, range: DateRange) -> Result<(Arc<Bars>, bool), ApiError> {
    let key = BarsKey::new(symbol.clone(), range);
    let provider = &state.deps.provider;
    let loader = Box::pin(async move {
        let bars = provider.daily_bars(symbol, range).await?;
        if bars.is_empty() {
            return Err(Error::not_found(format!(
                "bars for {symbol} between {} and {}",
                range.from, range.to
            )));
        }
        bars.validate()
            .map_err(|bad| Error::invalid_data(symbol.as_str(), bad.reason))?;
        Ok(Arc::new(bars))
    });
    let started = std::time::Instant::now();
    let lookup = state.deps.cache.get_or_load(&key, loader).await;
    // One lookup for the monitor, like a scan's: cached when the cache answered.
    let hit = lookup.as_ref().is_ok_and(|l| l.is_hit());
    state
        .monitor
        .record_lookup(started.elapsed(), hit, lookup.as_ref().err());
    let lookup = lookup?;
    Ok((lookup.into_bars(), hit))
}

/// 400 when both dates are given and `from` is after `to` (JSON Schema cannot relate two parameters).
fn inverted(from: Option<NaiveDate>, to: Option<NaiveDate>) -> Result<(), ApiError> {
    match (from, to) {
        (Some(f), Some(t)) if f > t => Err(ApiError::request(
            StatusCode::BAD_REQUEST,
            "Invalid date range",
            format!("range start {f} is after its end {t}"),
        )),
        _ => Ok(()),
    }
}

/// Latest indicators and score of a symbol.
#[utoipa::path(get, path = "/api/v1/symbols/{symbol}", operation_id = "get_symbol", params(("symbol" = String, Path, description = "Ticker, e.g. AAPL")),
    responses((status = 200, body = SymbolSnapshot), (status = 400, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody)))]
pub async fn snapshot(State(state): State<AppState>, Path(raw): Path<String>) -> Result<Response, ApiError> {
    let symbol = symbol_in_path(&raw)?;
    let range = state.deps.default_range();
    let (bars, hit) = load(&state, &symbol, range).await?;
    // Only symbols that loaded count as popular: unknown ones never reach the tracker or the warmer.
    state.tracker.record_at(&symbol, state.deps.market.now());
    let entry = state.entry(&symbol).await;
    let result =
        score_symbol(&entry, &bars).ok_or_else(|| ApiError::not_found(&format!("bars for {symbol}")))?;
    let body = SymbolSnapshot::new(&result, hit, state.deps.provider.is_demo());
    Ok(Json(body).into_response())
}

/// Query of `GET /api/v1/symbols/{symbol}/bars`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BarsQuery {
    /// First date (YYYY-MM-DD), inclusive.
    pub from: Option<NaiveDate>,
    /// Last date (YYYY-MM-DD), inclusive.
    pub to: Option<NaiveDate>,
}

/// Daily bars of a symbol.
#[utoipa::path(get, path = "/api/v1/symbols/{symbol}/bars", operation_id = "symbol_bars", params(("symbol" = String, Path, description = "Ticker, e.g. AAPL"), BarsQuery),
    responses((status = 200, body = BarsResponse), (status = 400, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody)))]
pub async fn bars(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    q: Result<Query<BarsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q?;
    let symbol = symbol_in_path(&raw)?;
    let default = state.deps.default_range();
    inverted(q.from, q.to)?;
    // Read the default range through the cache (what scans and lookups share), then cut. A range whose
    // given end falls before the default start (or given start after the default end) holds no bars.
    let (full, _) = load(&state, &symbol, default).await?;
    let bars = full.slice_range(DateRange {
        from: q.from.unwrap_or(default.from),
        to: q.to.unwrap_or(default.to),
    });
    Ok(Json(BarsResponse::new(symbol.as_str(), &bars)).into_response())
}

/// Query of `GET /api/v1/symbols/{symbol}/series`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SeriesQuery {
    /// Comma-separated indicator names (1 to 15, no spaces): `sma_20`, `sma_50`, `sma_200`, `ema_12`, `ema_26`, `bb_upper`,
    /// `bb_middle`, `bb_lower`, `rsi_14`, `macd`, `macd_signal`, `macd_hist`, `adx_14`, `atr_14`,
    /// `volume_sma_20`.
    pub names: String,
    /// First date (YYYY-MM-DD), inclusive (the series are computed over the whole history first).
    pub from: Option<NaiveDate>,
    /// Last date (YYYY-MM-DD), inclusive.
    pub to: Option<NaiveDate>,
}

/// Full indicator series of a symbol, computed by the core over its whole history (as a scan computes
/// them), one value per bar date (null before an indicator is defined).
#[utoipa::path(get, path = "/api/v1/symbols/{symbol}/series", operation_id = "symbol_series", params(("symbol" = String, Path, description = "Ticker, e.g. AAPL"), SeriesQuery),
    responses((status = 200, body = crate::dto::SeriesResponse), (status = 400, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody)))]
pub async fn series(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    q: Result<Query<SeriesQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q?;
    let symbol = symbol_in_path(&raw)?;
    let names: Vec<&str> = q.names.split(',').collect();
    let bad = |msg: String| ApiError::request(StatusCode::BAD_REQUEST, "Invalid series names", msg);
    if names.is_empty() || names.len() > technic_core::indicators::SERIES_NAMES.len() {
        return Err(bad(format!(
            "names: give 1 to {} of {}",
            technic_core::indicators::SERIES_NAMES.len(),
            technic_core::indicators::SERIES_NAMES.join(", ")
        )));
    }
    if let Some(unknown) = names
        .iter()
        .find(|n| !technic_core::indicators::SERIES_NAMES.contains(n))
    {
        return Err(bad(format!(
            "unknown series `{}`; known: {}",
            crate::error::clip(unknown, crate::error::ECHO_MAX),
            technic_core::indicators::SERIES_NAMES.join(", ")
        )));
    }
    let default = state.deps.default_range();
    inverted(q.from, q.to)?;
    let (full, _) = load(&state, &symbol, default).await?;
    let from = q.from.unwrap_or(default.from);
    let to = q.to.unwrap_or(default.to);
    // A range that ends before the default start (or starts after the default end) holds no bars.
    let start = full.date.partition_point(|d| *d < from);
    let end = if from > to {
        start
    } else {
        full.date.partition_point(|d| *d <= to).max(start)
    };
    let mut out = std::collections::BTreeMap::new();
    for name in names {
        let s = technic_core::indicators::series(&full, name).unwrap_or_default();
        out.insert(name.to_owned(), s[start..end].to_vec());
    }
    Ok(Json(crate::dto::SeriesResponse {
        symbol: symbol.to_string(),
        dates: full.date[start..end].to_vec(),
        series: out,
    })
    .into_response())
}
