//! Scans: start, list, status, live events (SSE), cancel, results.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use technic_core::scan::UniverseSelection;
use technic_core::{Filters, ScanRequest};
use utoipa::IntoParams;

use crate::dto::{ResultDto, ScanCreate, ScanCreated, ScanResults, ScanStatus};
use crate::error::ApiError;
use crate::state::AppState;

/// Most symbols one scan request may name.
pub const MAX_SYMBOLS: usize = 20_000;

async fn to_request(state: &AppState, body: ScanCreate) -> Result<ScanRequest, ApiError> {
    let bad = |msg: String| ApiError::request(StatusCode::UNPROCESSABLE_ENTITY, msg.clone(), msg);
    if body.symbols.len() > MAX_SYMBOLS {
        return Err(bad(format!(
            "too many symbols ({}); at most {MAX_SYMBOLS} per scan",
            body.symbols.len()
        )));
    }
    let symbols = body
        .symbols
        .iter()
        .map(|s| crate::api::symbols::parse_symbol(s).map_err(|e| bad(format!("symbols: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let f = body.filters;
    for (name, v) in [
        ("min_price", f.min_price),
        ("min_dollar_volume", f.min_dollar_volume),
    ] {
        if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
            return Err(bad(format!("filters.{name} must be a non-negative number")));
        }
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
    let defaults = technic_core::PlanSettings::default();
    let plan = technic_core::PlanSettings {
        account: body.account.unwrap_or(defaults.account),
        risk_pct: body.risk_pct.unwrap_or(defaults.risk_pct),
        reward_risk: body.reward_risk.unwrap_or(defaults.reward_risk),
        allow_shorts: body.allow_shorts.unwrap_or(false),
    };
    plan.validate().map_err(bad)?;
    let benchmark = body
        .benchmark
        .as_deref()
        .map(|s| crate::api::symbols::parse_symbol(s).map_err(|e| bad(format!("benchmark: {e}"))))
        .transpose()?;
    Ok(ScanRequest {
        universe: if symbols.is_empty() {
            UniverseSelection::Provider
        } else {
            UniverseSelection::Symbols(symbols)
        },
        filters: Filters {
            sectors: f.sectors,
            min_price: f.min_price,
            min_dollar_volume: f.min_dollar_volume,
            max_symbols: f.max_symbols,
        },
        top: match body.top {
            Some(0) => None,
            Some(k) => Some(k),
            None => Some(20),
        },
        screen,
        plan,
        benchmark,
        as_of: body.as_of,
        ..ScanRequest::default()
    })
}

/// Start a scan.
#[utoipa::path(post, path = "/api/v1/scans", operation_id = "create_scan", request_body = ScanCreate,
    responses((status = 202, body = ScanCreated), (status = 400, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody, description = "The saved `screen` does not exist"), (status = 413, body = crate::dto::ErrorBody), (status = 415, body = crate::dto::ErrorBody), (status = 422, body = crate::dto::ErrorBody), (status = 429, body = crate::dto::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    body: Result<Json<ScanCreate>, JsonRejection>,
) -> Result<(StatusCode, Json<ScanCreated>), ApiError> {
    // An empty body means "scan everything with defaults".
    let body = match body {
        Ok(Json(b)) => b,
        Err(JsonRejection::MissingJsonContentType(_)) => ScanCreate::default(),
        Err(e) => return Err(e.into()),
    };
    let req = to_request(&state, body).await?;
    if let UniverseSelection::Symbols(symbols) = &req.universe {
        state.tracker.record_many(symbols, state.deps.market.now());
    }
    // In a fleet, the same request answered since the last new bar is answered with that scan (it is
    // readable from every server); new bars change the key, so a fresh scan runs then.
    #[cfg(feature = "redis")]
    let response = match &state.fleet {
        Some(fleet) => {
            let key = fleet.response_key(&req, &state.deps);
            if let Some(id) = fleet.cached_response(&key).await
                && let Ok(found) = find(&state, &id).await
                && found.status().state == "complete"
            {
                let base = format!("/api/v1/scans/{id}");
                return Ok((
                    StatusCode::ACCEPTED,
                    Json(ScanCreated {
                        id: id.clone(),
                        status_url: base.clone(),
                        events_url: format!("{base}/events"),
                        results_url: format!("{base}/results"),
                        cancel_url: format!("{base}/cancel"),
                    }),
                ));
            }
            let ttl = if state.deps.provider.live_source().is_some() {
                state.deps.market.until_next_bar()
            } else {
                Duration::from_secs(300)
            };
            Some((key, ttl))
        }
        None => None,
    };
    let entry = state.scans.start(req, state.deps.clone()).map_err(|full| {
        ApiError::busy(
            format!(
                "Too many scans: {} running or queued and {} waiting; try again shortly",
                full.running, full.waiting
            ),
            5,
        )
    })?;
    #[cfg(feature = "redis")]
    if let Some(fleet) = &state.fleet {
        fleet.relay(entry.clone(), response);
    }
    let base = format!("/api/v1/scans/{}", entry.id);
    Ok((
        StatusCode::ACCEPTED,
        Json(ScanCreated {
            id: entry.id.clone(),
            status_url: base.clone(),
            events_url: format!("{base}/events"),
            results_url: format!("{base}/results"),
            cancel_url: format!("{base}/cancel"),
        }),
    ))
}

/// Query of `GET /api/v1/scans`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Most scans returned (default 20, at most 200).
    #[param(maximum = 200)]
    pub limit: Option<usize>,
}

/// Recent scans, newest first: those this server runs or ran since it started, and the ones kept in the
/// store (earlier runs, other processes sharing it).
#[utoipa::path(get, path = "/api/v1/scans", operation_id = "list_scans", params(ListQuery), responses((status = 200, body = [ScanStatus]), (status = 400, body = crate::dto::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Vec<ScanStatus>>, ApiError> {
    let Query(q) = q?;
    let limit = q.limit.unwrap_or(20);
    crate::api::at_most("limit", limit as u64, 200)?;
    let mut all = state.scans.recent(limit);
    if let Some(store) = &state.deps.store {
        match store.recent_runs(limit).await {
            Ok(stored) => {
                let known: std::collections::HashSet<String> = all.iter().map(|s| s.id.clone()).collect();
                all.extend(
                    stored
                        .iter()
                        .filter(|r| !known.contains(&r.id))
                        .map(ScanStatus::from_summary),
                );
            }
            Err(e) => tracing::warn!(error = %e, "stored scans unreadable; listing this server's only"),
        }
    }
    all.sort_by(|a, b| b.started_at.cmp(&a.started_at).then_with(|| b.id.cmp(&a.id)));
    all.truncate(limit);
    Ok(Json(all))
}

/// A scan this server knows, running or ended, or one read back from the store.
enum Found {
    Live(std::sync::Arc<crate::scans::ScanEntry>),
    Stored(std::sync::Arc<technic_core::ScanReport>),
    /// Running (or just ended) on another server of the fleet: its latest status from Redis.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Remote(Box<ScanStatus>),
}

impl Found {
    fn status(&self) -> ScanStatus {
        match self {
            Self::Live(e) => e.status(),
            Self::Stored(r) => ScanStatus::ended(r),
            Self::Remote(s) => (**s).clone(),
        }
    }
}

/// The latest status of a scan another server of the fleet runs.
#[cfg(feature = "redis")]
async fn remote(state: &AppState, id: &str) -> Option<Found> {
    let fleet = state.fleet.as_ref()?;
    fleet.remote_status(id).await.map(|s| Found::Remote(Box::new(s)))
}

#[cfg(not(feature = "redis"))]
async fn remote(_state: &AppState, _id: &str) -> Option<Found> {
    None
}

async fn find(state: &AppState, id: &str) -> Result<Found, ApiError> {
    if let Some(e) = state.scans.get(id) {
        return Ok(Found::Live(e));
    }
    let not_found = || ApiError::not_found(&format!("scan {id}"));
    let Some(store) = &state.deps.store else {
        return remote(state, id).await.ok_or_else(not_found);
    };
    match store.scan(id).await {
        Ok(Some(report)) => Ok(Found::Stored(std::sync::Arc::new(report))),
        // Not finished (or not run) here: perhaps another server of the fleet runs it.
        Ok(None) => remote(state, id).await.ok_or_else(not_found),
        // The store is down: what the fleet knows, else a clear 503.
        Err(e) => match remote(state, id).await {
            Some(found) => Ok(found),
            None => Err(ApiError::from(e)),
        },
    }
}

/// A scan's state and progress.
#[utoipa::path(get, path = "/api/v1/scans/{id}", operation_id = "get_scan", params(("id" = String, Path, description = "The scan's id (from `POST /api/v1/scans` or `GET /api/v1/scans`)")), responses((status = 200, body = ScanStatus), (status = 404, body = crate::dto::ErrorBody)))]
pub async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ScanStatus>, ApiError> {
    Ok(Json(find(&state, &id).await?.status()))
}

/// Server-Sent Events: one `progress` event per change, then one event named after the final state
/// (`complete`, `cancelled`, `failed`), then the stream ends.
#[utoipa::path(get, path = "/api/v1/scans/{id}/events", operation_id = "scan_events", params(("id" = String, Path, description = "The scan's id (from `POST /api/v1/scans` or `GET /api/v1/scans`)")), responses((status = 200, description = "text/event-stream of ScanStatus"), (status = 404, body = crate::dto::ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let rx = match find(&state, &id).await? {
        Found::Live(e) => e.subscribe(),
        // An ended scan from the store: one final event.
        Found::Stored(r) => tokio::sync::watch::channel(ScanStatus::ended(&r)).1,
        // Another server's scan: its statuses as that server publishes them.
        #[cfg(feature = "redis")]
        Found::Remote(s) => match &state.fleet {
            Some(fleet) => fleet.follow(&id, *s).await,
            None => tokio::sync::watch::channel(*s).1,
        },
        #[cfg(not(feature = "redis"))]
        Found::Remote(s) => tokio::sync::watch::channel(*s).1,
    };
    // State: the receiver and whether to wait for a change before the next event (not before the first).
    let stream = futures::stream::unfold(Some((rx, false)), |next| async move {
        let (mut rx, wait) = next?;
        if wait && rx.changed().await.is_err() {
            return None;
        }
        let status = rx.borrow_and_update().clone();
        let terminal = status.is_terminal();
        let name = if terminal {
            status.state.clone()
        } else {
            "progress".to_owned()
        };
        let event = Event::default()
            .event(name)
            .data(serde_json::to_string(&status).unwrap_or_default());
        Some((Ok::<_, Infallible>(event), (!terminal).then_some((rx, true))))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Ask a running scan to stop; answers with its status.
#[utoipa::path(post, path = "/api/v1/scans/{id}/cancel", operation_id = "cancel_scan", params(("id" = String, Path, description = "The scan's id (from `POST /api/v1/scans` or `GET /api/v1/scans`)")), responses((status = 202, body = ScanStatus), (status = 404, body = crate::dto::ErrorBody), (status = 409, body = crate::dto::ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<ScanStatus>), ApiError> {
    let found = find(&state, &id).await?;
    #[cfg(feature = "redis")]
    if let (Found::Remote(s), Some(fleet)) = (&found, &state.fleet)
        && !s.is_terminal()
        && fleet.request_cancel(&id).await
    {
        // The server running it sees the request within a moment.
        return Ok((StatusCode::ACCEPTED, Json((**s).clone())));
    }
    let Found::Live(e) = found else {
        let msg = format!("scan {id} has already ended ({})", found.status().state);
        return Err(ApiError::request(StatusCode::CONFLICT, msg.clone(), msg));
    };
    if !e.cancel() {
        let msg = format!("scan {id} has already ended ({})", e.status().state);
        return Err(ApiError::request(StatusCode::CONFLICT, msg.clone(), msg));
    }
    Ok((StatusCode::ACCEPTED, Json(e.status())))
}

/// Query of `GET /api/v1/scans/{id}/results`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ResultsQuery {
    /// Most results (default 100, at most 10000).
    #[param(maximum = 10000)]
    pub limit: Option<usize>,
    /// First result (default 0).
    #[param(maximum = 4294967295_u64)]
    pub offset: Option<usize>,
    /// `rank` (default), `symbol`, `tech_rating`, `close`, `sector`; prefix `-` for descending.
    pub sort: Option<String>,
    /// Include each result's `explain` parts (default false: pages stay small).
    pub explain: Option<bool>,
}

/// Ranked results of a finished scan, paged and sorted.
#[utoipa::path(get, path = "/api/v1/scans/{id}/results", operation_id = "scan_results", params(("id" = String, Path, description = "The scan's id (from `POST /api/v1/scans` or `GET /api/v1/scans`)"), ResultsQuery),
    responses((status = 200, body = ScanResults), (status = 400, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody), (status = 409, body = crate::dto::ErrorBody)))]
pub async fn results(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Result<Query<ResultsQuery>, QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    let Query(q) = q?;
    crate::api::at_most("limit", q.limit.unwrap_or(0) as u64, 10_000)?;
    crate::api::at_most("offset", q.offset.unwrap_or(0) as u64, u64::from(u32::MAX))?;
    let key = PageKey {
        id: id.clone(),
        sort: q.sort.clone().unwrap_or_default(),
        offset: q.offset.unwrap_or(0),
        limit: q.limit.unwrap_or(100),
        explain: q.explain.unwrap_or(false),
    };
    if let Some(body) = state.pages.get(&key) {
        return Ok(json_bytes(body));
    }
    let report = finished(&state, &id).await?;
    cached_page(&state, key, &report, &q)
}

/// The report of a finished scan: live, kept in memory, or read back from the store; 409 while running.
async fn finished(state: &AppState, id: &str) -> Result<std::sync::Arc<technic_core::ScanReport>, ApiError> {
    let e = match find(state, id).await? {
        Found::Live(e) => e,
        Found::Stored(report) => return Ok(report),
        Found::Remote(s) => {
            let msg = format!(
                "scan {id} is {} on another server ({:.0} %); its results are readable here once it ends",
                s.state, s.overall_percent
            );
            return Err(ApiError::request(StatusCode::CONFLICT, msg.clone(), msg));
        }
    };
    let report = match e.report() {
        Some(r) => Some(r),
        // Finished, its report kept only in the store (see `KEEP_REPORTS`).
        None if e.status().state != "running" && e.status().state != "failed" => match &state.deps.store {
            Some(store) => store.scan(id).await?.map(std::sync::Arc::new),
            None => None,
        },
        None => None,
    };
    report.ok_or_else(|| {
        let status = e.status();
        let msg = match &status.error {
            Some(err) => format!("scan {id} failed: {}", err.message),
            None => format!("scan {id} is still running ({:.0} %)", status.overall_percent),
        };
        ApiError::request(StatusCode::CONFLICT, msg.clone(), msg)
    })
}

/// Query of `GET /api/v1/scans/{id}/results.csv`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CsvQuery {
    /// Order, as for the JSON pages (default `rank`).
    pub sort: Option<String>,
}

/// Every result of a finished scan as CSV (a download of the current screen).
#[utoipa::path(get, path = "/api/v1/scans/{id}/results.csv", operation_id = "scan_results_csv", params(("id" = String, Path, description = "The scan's id"), CsvQuery),
    responses((status = 200, description = "text/csv: one row per result", content_type = "text/csv"), (status = 400, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody), (status = 409, body = crate::dto::ErrorBody)))]
pub async fn results_csv(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Result<Query<CsvQuery>, QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let Query(q) = q?;
    let report = finished(&state, &id).await?;
    let rows = sorted_rows(&report, q.sort.as_deref().unwrap_or("rank"), false)?;
    let body = crate::dto::results_csv(&rows);
    let name = format!(
        "attachment; filename=\"technic-{}.csv\"",
        id.chars()
            .filter(char::is_ascii_alphanumeric)
            .take(40)
            .collect::<String>()
    );
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/csv; charset=utf-8".to_owned(),
            ),
            (axum::http::header::CONTENT_DISPOSITION, name),
        ],
        body,
    )
        .into_response())
}

/// What a page of results is cached under: a finished scan's results never change.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageKey {
    id: String,
    sort: String,
    offset: usize,
    limit: usize,
    explain: bool,
}

/// Serialised pages of finished scans' results, bounded by bytes (the ranking, sorting and JSON encoding
/// of a 5000-result scan is done once per page, not once per request).
pub type PageCache = quick_cache::sync::Cache<PageKey, bytes::Bytes, PageWeight>;

/// Weighs a cached page by its size.
#[derive(Debug, Clone)]
pub struct PageWeight;

impl quick_cache::Weighter<PageKey, bytes::Bytes> for PageWeight {
    fn weight(&self, key: &PageKey, val: &bytes::Bytes) -> u64 {
        (val.len() + key.id.len() + key.sort.len() + 64) as u64
    }
}

/// A page cache holding up to `bytes` of JSON.
pub fn page_cache(bytes: u64) -> PageCache {
    quick_cache::sync::Cache::with_weighter(1024, bytes, PageWeight)
}

fn json_bytes(body: bytes::Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    ([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Builds (or reuses) the page `key` of `report`.
fn cached_page(
    state: &AppState,
    key: PageKey,
    report: &technic_core::ScanReport,
    q: &ResultsQuery,
) -> Result<axum::response::Response, ApiError> {
    let Json(out) = page(report, q)?;
    let body = bytes::Bytes::from(serde_json::to_vec(&out).map_err(|e| {
        ApiError::from(technic_core::Error::internal(format!(
            "cannot encode results: {e}"
        )))
    })?);
    state.pages.insert(key, body.clone());
    Ok(json_bytes(body))
}

/// One page of `report`'s results, sorted as `q` asks.
fn page(report: &technic_core::ScanReport, q: &ResultsQuery) -> Result<Json<ScanResults>, ApiError> {
    let rows = sorted_rows(
        report,
        q.sort.as_deref().unwrap_or("rank"),
        q.explain.unwrap_or(false),
    )?;
    let limit = q.limit.unwrap_or(100);
    let offset = q.offset.unwrap_or(0);
    let mut out = ScanResults::summary(report);
    out.offset = offset;
    out.limit = limit;
    out.results = rows.into_iter().skip(offset).take(limit).collect();
    Ok(Json(out))
}

/// Every result as a row, sorted by `sort`: `rank`, a text column (`symbol`, `name`, `sector`, `signal`)
/// or any number a row holds (`close`, `change_pct`, an indicator, `rs_63`, `entry`…); `-` first for
/// descending. Missing values last; ties by rank.
fn sorted_rows(
    report: &technic_core::ScanReport,
    sort: &str,
    explain: bool,
) -> Result<Vec<ResultDto>, ApiError> {
    let mut rows: Vec<ResultDto> = report
        .results
        .iter()
        .map(|r| {
            let dto = ResultDto::from(r);
            if explain { dto.with_explain(r) } else { dto }
        })
        .collect();
    let (key, desc) = sort.strip_prefix('-').map_or((sort, false), |k| (k, true));
    let text = |r: &ResultDto| -> Option<String> {
        Some(match key {
            "symbol" => r.symbol.clone(),
            "name" => r.name.clone(),
            "sector" => r.sector.clone(),
            "industry" => r.industry.clone(),
            "signal" => r.signal.clone(),
            _ => return None,
        })
    };
    let is_text = rows.first().is_none_or(|r| text(r).is_some())
        && ["symbol", "name", "sector", "industry", "signal"].contains(&key);
    if !is_text
        && key != "rank"
        && !crate::dto::SORT_NUMBERS.contains(&key)
        && !technic_core::indicators::INDICATOR_NAMES.contains(&key)
    {
        let msg = format!(
            "unknown sort `{key}`; use rank, symbol, name, sector, industry, signal, {}, or an indicator name \
             (prefix - for descending)",
            crate::dto::SORT_NUMBERS.join(", ")
        );
        return Err(ApiError::request(
            StatusCode::BAD_REQUEST,
            "Invalid query string",
            msg,
        ));
    }
    rows.sort_by(|a, b| {
        use std::cmp::Ordering;
        let by = if key == "rank" {
            a.rank.cmp(&b.rank)
        } else if is_text {
            text(a).cmp(&text(b))
        } else {
            match (a.number(key), b.number(key)) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                (Some(_), None) => return Ordering::Less,
                (None, Some(_)) => return Ordering::Greater,
                (None, None) => Ordering::Equal,
            }
        };
        let by = if desc { by.reverse() } else { by };
        by.then(a.rank.cmp(&b.rank))
    });
    Ok(rows)
}
