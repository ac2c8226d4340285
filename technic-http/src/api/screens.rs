//! Presets, saved screens and the explanation of one symbol's rating.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use technic_core::screen::{PRESETS, SavedScreen, check_name, resolve};
use technic_core::{ScanRequest, ScanState, UniverseSelection};
use utoipa::IntoParams;

use crate::dto::{ExplainDto, PresetDto, ResultDto, ScreenCreate, ScreenDto};
use crate::error::ApiError;
use crate::state::AppState;

/// Most saved screens a server keeps (a screen is a line of text; this bounds a flood of saves).
pub const MAX_SCREENS: usize = 1000;

/// The preset screens.
#[utoipa::path(get, path = "/api/v1/presets", operation_id = "list_presets", responses((status = 200, body = [PresetDto])))]
pub async fn presets() -> Json<Vec<PresetDto>> {
    Json(
        PRESETS
            .iter()
            .map(|p| PresetDto {
                name: p.name.to_owned(),
                description: p.description.to_owned(),
                expression: p.expression.to_owned(),
                reference: p.reference.to_owned(),
            })
            .collect(),
    )
}

fn dto(s: SavedScreen) -> ScreenDto {
    ScreenDto {
        name: s.name,
        where_: s.spec.where_,
        sort: s.spec.sort,
        saved_at: s.saved_at,
    }
}

/// The saved screens, by name.
#[utoipa::path(get, path = "/api/v1/screens", operation_id = "list_screens", responses((status = 200, body = [ScreenDto])))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<ScreenDto>>, ApiError> {
    Ok(Json(
        state.screens.screens().await?.into_iter().map(dto).collect(),
    ))
}

/// Save (or replace) a screen.
#[utoipa::path(post, path = "/api/v1/screens", operation_id = "save_screen", request_body = ScreenCreate,
    responses((status = 201, body = ScreenDto), (status = 400, body = crate::dto::ErrorBody), (status = 415, body = crate::dto::ErrorBody), (status = 422, body = crate::dto::ErrorBody)))]
pub async fn save(
    State(state): State<AppState>,
    body: Result<Json<ScreenCreate>, JsonRejection>,
) -> Result<(StatusCode, Json<ScreenDto>), ApiError> {
    let Json(body) = body?;
    let bad = |msg: String| ApiError::request(StatusCode::UNPROCESSABLE_ENTITY, msg.clone(), msg);
    check_name(&body.name).map_err(bad)?;
    if body.where_.is_none() && body.preset.is_none() && body.sort.is_none() {
        return Err(bad("a screen needs `where`, `preset` or `sort`".to_owned()));
    }
    let spec = resolve(
        body.where_.as_deref(),
        body.preset.as_deref(),
        None,
        body.sort.as_deref(),
    )
    .map_err(|e| ApiError::expression(&e))?;
    let existing = state.screens.screens().await?;
    if existing.len() >= MAX_SCREENS && !existing.iter().any(|s| s.name == body.name) {
        return Err(bad(format!(
            "at most {MAX_SCREENS} saved screens; delete one first"
        )));
    }
    let saved = SavedScreen {
        name: body.name,
        spec,
        saved_at: state.deps.market.now(),
    };
    state.screens.save_screen(&saved).await?;
    Ok((StatusCode::CREATED, Json(dto(saved))))
}

/// Delete a saved screen.
#[utoipa::path(delete, path = "/api/v1/screens/{name}", operation_id = "delete_screen", params(("name" = String, Path, description = "The screen's name")),
    responses((status = 204, description = "Deleted"), (status = 404, body = crate::dto::ErrorBody)))]
pub async fn delete(State(state): State<AppState>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    if state.screens.delete_screen(&name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(&format!("saved screen \"{name}\"")))
    }
}

/// Query of `GET /api/v1/symbols/{symbol}/explain`: how the trade plan is sized.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExplainQuery {
    /// Account value (default 100000).
    pub account: Option<f64>,
    /// Risk per trade, percent of the account (default 1).
    pub risk_pct: Option<f64>,
    /// Target ÷ stop distance (default 2).
    pub reward_risk: Option<f64>,
    /// Plan a short for an Avoid rating.
    pub allow_shorts: Option<bool>,
}

/// A symbol's rating part by part, with its trade plan.
#[utoipa::path(get, path = "/api/v1/symbols/{symbol}/explain", operation_id = "explain_symbol", params(("symbol" = String, Path, description = "Ticker, e.g. AAPL"), ExplainQuery),
    responses((status = 200, body = ExplainDto), (status = 400, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody), (status = 422, body = crate::dto::ErrorBody)))]
pub async fn explain(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    q: Result<Query<ExplainQuery>, QueryRejection>,
) -> Result<Json<ExplainDto>, ApiError> {
    let Query(q) = q?;
    let symbol = crate::api::symbols::symbol_in_path(&raw)?;
    let d = technic_core::PlanSettings::default();
    let plan = technic_core::PlanSettings {
        account: q.account.unwrap_or(d.account),
        risk_pct: q.risk_pct.unwrap_or(d.risk_pct),
        reward_risk: q.reward_risk.unwrap_or(d.reward_risk),
        allow_shorts: q.allow_shorts.unwrap_or(false),
    };
    plan.validate()
        .map_err(|e| ApiError::request(StatusCode::UNPROCESSABLE_ENTITY, e.clone(), e))?;
    // One symbol through the scan pipeline (cache and store as usual), not saved as a scan.
    let request = ScanRequest {
        universe: UniverseSelection::Symbols(vec![symbol.clone()]),
        top: None,
        plan,
        background: true,
        ..ScanRequest::default()
    };
    let report = technic_core::scan(
        &request,
        &state.deps,
        &technic_core::NoopSink,
        technic_core::CancellationToken::new(),
    )
    .await?;
    let Some(result) = report
        .results
        .first()
        .filter(|_| report.state == ScanState::Complete)
    else {
        return Err(match report.skipped.first() {
            Some(s) if s.category == technic_core::Category::Data => {
                ApiError::not_found(&format!("{symbol}: {}", s.reason))
            }
            Some(s) => ApiError::from(technic_core::Error::Unavailable {
                service: "data provider".to_owned(),
                detail: s.reason.clone(),
                retry_after: None,
                network: false,
            }),
            None => ApiError::not_found(&format!("bars for {symbol}")),
        });
    };
    state.tracker.record_at(&symbol, state.deps.market.now());
    Ok(Json(ExplainDto {
        result: ResultDto::from(result).with_explain(result),
        demo: report.demo,
    }))
}

/// The fields and functions screen expressions can use (for completion and documentation).
#[utoipa::path(get, path = "/api/v1/fields", operation_id = "list_fields", responses((status = 200, body = crate::dto::FieldsDto)))]
pub async fn fields() -> Json<crate::dto::FieldsDto> {
    use technic_core::screen::{FUNCTIONS, NUMERIC_FIELDS, TEXT_FIELDS};
    let named = |list: &[(&str, &str)]| {
        list.iter()
            .map(|(name, description)| crate::dto::FieldDto {
                name: (*name).to_owned(),
                description: (*description).to_owned(),
            })
            .collect()
    };
    Json(crate::dto::FieldsDto {
        numeric: named(&NUMERIC_FIELDS),
        text: named(&TEXT_FIELDS),
        functions: FUNCTIONS
            .iter()
            .map(|(name, _, _, description)| crate::dto::FieldDto {
                name: (*name).to_owned(),
                description: (*description).to_owned(),
            })
            .collect(),
    })
}
