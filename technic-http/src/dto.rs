//! Wire shapes of the JSON API. Only this module defines them; each is converted from core types, so the
//! dashboard, the tests and the OpenAPI document all read the same field names.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use technic_core::cache::CacheStats;
use technic_core::progress::{ProgressEvent, Stage};
use technic_core::{Bars, ScanReport, ScanResult, Skipped, Snapshot, SubScores};
use utoipa::ToSchema;

/// Counts in request bodies: whole numbers, also when written `20.0` (JSON Schema's `integer` admits a
/// number with a zero fraction, so the API does too).
mod whole {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer};

    fn count<E: Error>(n: &serde_json::Number) -> Result<usize, E> {
        if let Some(u) = n.as_u64() {
            return usize::try_from(u).map_err(|_| E::custom(format!("{n} is too large")));
        }
        match n.as_f64() {
            // 2^53: above it an f64 no longer holds every whole number.
            Some(f) if f.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(&f) => Ok(f as usize),
            _ => Err(E::custom(format!("{n} is not a whole number of at least 0"))),
        }
    }

    pub fn opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
        Option::<serde_json::Number>::deserialize(d)?
            .as_ref()
            .map(count)
            .transpose()
    }

    pub fn vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<usize>, D::Error> {
        Vec::<serde_json::Number>::deserialize(d)?
            .iter()
            .map(count)
            .collect()
    }
}

/// Body of `POST /api/v1/scans`. Every field is optional; unknown fields are rejected (422).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanCreate {
    /// Scan only these symbols.
    #[serde(default)]
    pub symbols: Vec<String>,
    /// Filters.
    #[serde(default)]
    pub filters: FiltersDto,
    /// Keep the best `top` results (default 20; 0 keeps all).
    #[serde(default, deserialize_with = "whole::opt")]
    pub top: Option<usize>,
    /// Keep symbols for which this expression holds, e.g. `rsi_14 < 30 and close > sma_200`. A bad one is
    /// a 422 whose `expression` field gives the position.
    #[serde(default, rename = "where")]
    pub where_: Option<String>,
    /// A preset's name (`GET /api/v1/presets`); combined with `where` by `and`.
    #[serde(default)]
    pub preset: Option<String>,
    /// A saved screen's name (`GET /api/v1/screens`); combined with `preset` and `where`.
    #[serde(default)]
    pub screen: Option<String>,
    /// Order: a numeric field, `FIELD[:asc|desc]` (default: by rating).
    #[serde(default)]
    pub sort: Option<String>,
    /// Account value for the trade plans (default 100000).
    #[serde(default)]
    pub account: Option<f64>,
    /// Risk per trade in percent of the account (default 1).
    #[serde(default)]
    pub risk_pct: Option<f64>,
    /// Target ÷ stop distance (default 2).
    #[serde(default)]
    pub reward_risk: Option<f64>,
    /// Plan shorts for Avoid results.
    #[serde(default)]
    pub allow_shorts: Option<bool>,
    /// Benchmark symbol for `rs_*` and the regime.
    #[serde(default)]
    pub benchmark: Option<String>,
    /// A point-in-time scan: only bars dated on or before this session.
    #[serde(default)]
    pub as_of: Option<NaiveDate>,
}

/// Scan filters.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FiltersDto {
    /// Keep only these sectors (case-insensitive).
    #[serde(default)]
    pub sectors: Vec<String>,
    /// Minimum last close.
    pub min_price: Option<f64>,
    /// Minimum average dollar volume over 20 bars.
    pub min_dollar_volume: Option<f64>,
    /// Scan at most this many symbols.
    #[serde(default, deserialize_with = "whole::opt")]
    pub max_symbols: Option<usize>,
}

/// Answer to `POST /api/v1/scans` (202 Accepted).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScanCreated {
    /// The scan's id.
    pub id: String,
    /// Where to poll its status.
    pub status_url: String,
    /// Server-Sent Events of its progress.
    pub events_url: String,
    /// Its results, once complete.
    pub results_url: String,
    /// Where to cancel it.
    pub cancel_url: String,
}

/// A scan's state and progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScanStatus {
    /// The scan's id.
    pub id: String,
    /// `running`, `complete`, `cancelled` or `failed`.
    pub state: String,
    /// Current stage (`loading_universe`, `fetching_data`, `scanning`, `finalizing`, `complete`, …).
    pub stage: String,
    /// The stage as shown to people ("Fetching data…").
    pub stage_label: String,
    /// Percent of the current stage finished.
    pub stage_percent: f64,
    /// Percent of the whole scan finished.
    pub overall_percent: f64,
    /// Items finished in this stage.
    pub processed: usize,
    /// Items in this stage.
    pub total: usize,
    /// Estimated seconds left.
    pub eta_seconds: Option<f64>,
    /// Latest progress message.
    pub message: String,
    /// When the scan started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Time per stage, once ended.
    pub timing: Option<TimingDto>,
    /// Counts, once ended.
    pub counts: Option<CountsDto>,
    /// Why it failed.
    pub error: Option<ErrorBody>,
}

impl ScanStatus {
    /// The status of a scan that has just been accepted.
    pub fn queued(id: &str, started_at: DateTime<Utc>) -> Self {
        Self {
            id: id.to_owned(),
            state: "running".to_owned(),
            stage: stage_name(Stage::Initializing).to_owned(),
            stage_label: Stage::Initializing.label().to_owned(),
            stage_percent: 0.0,
            overall_percent: 0.0,
            processed: 0,
            total: 0,
            eta_seconds: None,
            message: "Queued".to_owned(),
            started_at,
            finished_at: None,
            timing: None,
            counts: None,
            error: None,
        }
    }

    /// The status of a stored scan from its summary (a list of scans reads no results).
    pub fn from_summary(r: &technic_core::RunSummary) -> Self {
        let mut s = Self::queued(&r.id, r.started_at);
        let took = chrono::Duration::milliseconds(r.timing.total_ms as i64);
        s.end(r, Some(r.started_at + took));
        s
    }

    /// The status of a scan that ended with `report` (complete or cancelled), e.g. read back from the
    /// store after a restart.
    pub fn ended(report: &ScanReport) -> Self {
        Self::from_summary(&technic_core::RunSummary::of(report))
    }

    /// Marks the status ended with `report` at `finished_at`.
    pub fn finish(&mut self, report: &ScanReport, finished_at: Option<DateTime<Utc>>) {
        self.end(&technic_core::RunSummary::of(report), finished_at);
    }

    fn end(&mut self, r: &technic_core::RunSummary, finished_at: Option<DateTime<Utc>>) {
        let complete = r.state == technic_core::ScanState::Complete;
        self.state = if complete { "complete" } else { "cancelled" }.to_owned();
        self.stage = self.state.clone();
        self.stage_label = if complete { "Complete!" } else { "Cancelled" }.to_owned();
        if complete {
            self.stage_percent = 100.0;
            self.overall_percent = 100.0;
            self.processed = r.scanned;
            self.total = r.scanned;
            self.eta_seconds = Some(0.0);
        }
        self.message = format!("{} scanned, {} skipped", r.scanned, r.skipped);
        self.finished_at = finished_at;
        self.timing = Some(timing(&r.timing));
        self.counts = Some(CountsDto {
            universe_size: r.universe_size,
            scanned: r.scanned,
            skipped: r.skipped,
            filtered: r.filtered,
        });
    }

    /// Applies a progress event.
    pub fn apply(&mut self, e: &ProgressEvent) {
        self.stage = stage_name(e.stage).to_owned();
        self.stage_label = e.stage.label().to_owned();
        self.stage_percent = e.stage_percent;
        self.overall_percent = e.overall_percent;
        self.processed = e.processed;
        self.total = e.total;
        self.eta_seconds = e.eta.map(|d| d.as_secs_f64());
        self.message.clone_from(&e.message);
    }

    /// True once the scan has ended.
    pub fn is_terminal(&self) -> bool {
        self.state != "running"
    }
}

/// The snake_case name of a stage.
pub fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Initializing => "initializing",
        Stage::LoadingUniverse => "loading_universe",
        Stage::FetchingData => "fetching_data",
        Stage::Scanning => "scanning",
        Stage::Finalizing => "finalizing",
        Stage::Complete => "complete",
        Stage::Cancelled => "cancelled",
        Stage::Failed => "failed",
    }
}

/// Time per stage in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TimingDto {
    /// Loading the universe.
    pub loading_universe_ms: f64,
    /// Fetching bars.
    pub fetching_ms: f64,
    /// Computing and scoring.
    pub scanning_ms: f64,
    /// Ranking and saving.
    pub finalizing_ms: f64,
    /// Whole scan.
    pub total_ms: f64,
}

/// Counts of a finished scan.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CountsDto {
    /// Symbols before filters.
    pub universe_size: usize,
    /// Symbols scored.
    pub scanned: usize,
    /// Symbols skipped.
    pub skipped: usize,
    /// Symbols removed by filters.
    pub filtered: usize,
}

/// One ranked symbol: the same fields as `technic scan --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResultDto {
    /// 1 for the best.
    pub rank: usize,
    /// Ticker.
    pub symbol: String,
    /// Company name.
    pub name: String,
    /// Sector.
    pub sector: String,
    /// Date of the last bar.
    pub date: NaiveDate,
    /// Last close.
    pub close: f64,
    /// Rating 0–100.
    pub tech_rating: f64,
    /// "Strong Long", "Long", "Neutral" or "Avoid".
    pub signal: String,
    /// Sub-scores in [-1, 1] (null without enough history).
    pub sub_scores: BTreeMap<String, Option<f64>>,
    /// Indicator values at the last bar by name (null without enough history).
    pub indicators: BTreeMap<String, Option<f64>>,
    /// The date the values are as of (the last bar's).
    pub as_of: NaiveDate,
    /// True when the values are older than they should be: older than the newest session the provider
    /// should have published, or cached bars past their expiry used because the provider failed.
    pub stale: bool,
    /// Industry.
    pub industry: String,
    /// Close ÷ previous close − 1, in percent.
    pub change_pct: Option<f64>,
    /// Last session's volume.
    pub volume: Option<f64>,
    /// Mean close × volume of 20 sessions.
    pub dollar_volume_20: Option<f64>,
    /// ATR(14) ÷ close, in percent.
    pub atr_pct: Option<f64>,
    /// Bollinger band width ÷ middle band.
    pub bb_width: Option<f64>,
    /// Returns minus the benchmark's, by period (`rs_21`, `rs_63`, `rs_126`, `rs_252`).
    pub relative_strength: BTreeMap<String, Option<f64>>,
    /// Entry, stop, target and size (null without ATR, or for Avoid without shorts).
    #[schema(value_type = Option<Object>)]
    pub trade_plan: Option<technic_core::TradePlan>,
    /// The rating's parts (their points sum exactly to `tech_rating`); only with `?explain=true` on
    /// results pages, always on `GET /api/v1/symbols/{symbol}/explain`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub explain: Option<Vec<technic_core::score::ExplainPart>>,
}

fn indicators(s: &Snapshot) -> BTreeMap<String, Option<f64>> {
    s.fields().into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn sub_scores(s: &SubScores) -> BTreeMap<String, Option<f64>> {
    [
        ("trend", s.trend),
        ("momentum", s.momentum),
        ("volume", s.volume),
        ("volatility", s.volatility),
        ("oscillator", s.oscillator),
        ("breakout", s.breakout),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

impl From<&ScanResult> for ResultDto {
    fn from(r: &ScanResult) -> Self {
        Self {
            rank: r.rank,
            symbol: r.symbol.to_string(),
            name: r.name.clone(),
            sector: r.sector.clone(),
            date: r.date,
            close: r.close,
            tech_rating: r.tech_rating,
            signal: r.signal.to_string(),
            sub_scores: sub_scores(&r.sub_scores),
            indicators: indicators(&r.indicators),
            as_of: r.as_of.unwrap_or(r.date),
            stale: r.stale,
            industry: r.industry.clone(),
            change_pct: r.change_pct,
            volume: r.volume,
            dollar_volume_20: r.dollar_volume_20,
            atr_pct: r.atr_pct,
            bb_width: r.bb_width,
            relative_strength: [
                ("rs_21", r.rs_21),
                ("rs_63", r.rs_63),
                ("rs_126", r.rs_126),
                ("rs_252", r.rs_252),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            trade_plan: r.trade_plan,
            explain: None,
        }
    }
}

/// The numbers besides the indicators a result can be sorted by.
pub const SORT_NUMBERS: [&str; 16] = [
    "close",
    "tech_rating",
    "change_pct",
    "volume",
    "dollar_volume_20",
    "atr_pct",
    "bb_width",
    "rs_21",
    "rs_63",
    "rs_126",
    "rs_252",
    "entry",
    "stop",
    "target",
    "shares",
    "risk_amount",
];

impl ResultDto {
    /// The number called `key` (see [`SORT_NUMBERS`], or an indicator name), when the row has one.
    pub fn number(&self, key: &str) -> Option<f64> {
        let plan = self.trade_plan.as_ref();
        match key {
            "close" => Some(self.close),
            "tech_rating" => Some(self.tech_rating),
            "change_pct" => self.change_pct,
            "volume" => self.volume,
            "dollar_volume_20" => self.dollar_volume_20,
            "atr_pct" => self.atr_pct,
            "bb_width" => self.bb_width,
            "entry" => plan.map(|p| p.entry),
            "stop" => plan.map(|p| p.stop),
            "target" => plan.map(|p| p.target),
            "shares" => plan.map(|p| p.shares as f64),
            "risk_amount" => plan.map(|p| p.risk_amount),
            k if k.starts_with("rs_") => self.relative_strength.get(k).copied().flatten(),
            k => self.indicators.get(k).copied().flatten(),
        }
    }

    /// The same with the rating's parts.
    pub fn with_explain(mut self, r: &ScanResult) -> Self {
        self.explain = Some(r.explained());
        self
    }
}

/// A symbol the scan could not score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SkippedDto {
    /// Ticker.
    pub symbol: String,
    /// Why.
    pub reason: String,
    /// Error category.
    pub category: String,
}

impl From<&Skipped> for SkippedDto {
    fn from(s: &Skipped) -> Self {
        Self {
            symbol: s.symbol.to_string(),
            reason: s.reason.clone(),
            category: s.category.as_str().to_owned(),
        }
    }
}

/// How many symbols each filter removed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FilteredDto {
    /// By sector.
    pub sector: usize,
    /// By max_symbols.
    pub max_symbols: usize,
    /// By min_price.
    pub min_price: usize,
    /// By min_dollar_volume.
    pub min_dollar_volume: usize,
}

/// `GET /api/v1/scans/{id}/results`: a page of ranked results plus the scan's summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScanResults {
    /// The scan's id.
    pub id: String,
    /// `complete` or `cancelled` (partial).
    pub state: String,
    /// True for synthetic demo data.
    pub demo: bool,
    /// Results available in all.
    pub total: usize,
    /// Index of the first result returned.
    pub offset: usize,
    /// Most results returned.
    pub limit: usize,
    /// The page.
    pub results: Vec<ResultDto>,
    /// Skipped symbols with reasons.
    pub skipped: Vec<SkippedDto>,
    /// Filter counts.
    pub filtered: FilteredDto,
    /// Time per stage.
    pub timing: TimingDto,
    /// Cache activity during the scan.
    pub cache: CacheDto,
    /// The market regime of the scan's benchmark (null when it had no bars).
    #[schema(value_type = Option<Object>)]
    pub regime: Option<technic_core::Regime>,
    /// Symbols the screen selected (before `top`).
    pub matched: usize,
    /// Symbols scored.
    pub scanned: usize,
    /// Provider calls retried.
    pub retries: u64,
    /// Results marked stale (older than expected, or from cached bars because the provider failed).
    pub stale: usize,
    /// For a live source: the newest session whose bar should exist (null for local or demo data).
    pub expected_session: Option<NaiveDate>,
    /// Symbols whose stored history was replaced after a split or re-adjustment.
    pub adjustments: usize,
    /// Warnings for people ("Cache unavailable — running without caching").
    pub warnings: Vec<String>,
}

impl ScanResults {
    /// The summary parts of `report`, with `results` left for the caller to page.
    pub fn summary(r: &ScanReport) -> Self {
        let t = &r.timing;
        Self {
            id: r.id.clone(),
            state: match r.state {
                technic_core::ScanState::Complete => "complete",
                technic_core::ScanState::Cancelled => "cancelled",
                technic_core::ScanState::Failed => "failed",
            }
            .to_owned(),
            demo: r.demo,
            total: r.results.len(),
            offset: 0,
            limit: 0,
            results: Vec::new(),
            skipped: r.skipped.iter().map(SkippedDto::from).collect(),
            filtered: FilteredDto {
                sector: r.filtered.sector,
                max_symbols: r.filtered.max_symbols,
                min_price: r.filtered.min_price,
                min_dollar_volume: r.filtered.min_dollar_volume,
            },
            timing: timing(t),
            cache: CacheDto::from(&r.cache),
            regime: r.regime.clone(),
            matched: r.matched,
            scanned: r.scanned,
            retries: r.retries,
            stale: r.stale,
            expected_session: r.expected_session,
            adjustments: r.adjustments,
            warnings: r.warnings.clone(),
        }
    }
}

/// Stage timings of a report.
pub fn timing(t: &technic_core::StageTimings) -> TimingDto {
    TimingDto {
        loading_universe_ms: t.loading_universe_ms,
        fetching_ms: t.fetching_ms,
        scanning_ms: t.scanning_ms,
        finalizing_ms: t.finalizing_ms,
        total_ms: t.total_ms,
    }
}

/// Cache figures, with the names the dashboard reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CacheDto {
    /// hits ÷ requests (0–1).
    pub hit_rate: f64,
    /// Lookups.
    pub requests: u64,
    /// Lookups served from the cache.
    pub hits: u64,
    /// Lookups that loaded.
    pub misses: u64,
    /// Entries held.
    pub entries: u64,
    /// Bytes held.
    pub bytes: u64,
    /// Time to live of entries.
    pub ttl_seconds: u64,
    /// Per tier (`memory`, `redis`) for a two-tier cache; empty for one tier.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub tiers: Vec<technic_core::cache::TierStats>,
}

impl From<&CacheStats> for CacheDto {
    fn from(s: &CacheStats) -> Self {
        Self {
            hit_rate: s.hit_rate,
            requests: s.requests,
            hits: s.hits,
            misses: s.misses,
            entries: s.entries,
            bytes: s.bytes,
            ttl_seconds: s.ttl_seconds,
            tiers: Vec::new(),
        }
    }
}

impl CacheDto {
    /// The cache's figures with its tiers.
    pub fn of(cache: &dyn technic_core::Cache) -> Self {
        let mut dto = Self::from(&cache.stats());
        dto.tiers = cache.tiers();
        dto
    }
}

/// `GET /api/v1/symbols/{symbol}`: latest indicators and score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SymbolSnapshot {
    /// Ticker.
    pub symbol: String,
    /// Company name, if known.
    pub name: String,
    /// Sector, if known.
    pub sector: String,
    /// Date of the last bar.
    pub date: NaiveDate,
    /// Last close.
    pub close: f64,
    /// Rating 0–100.
    pub tech_rating: f64,
    /// Signal.
    pub signal: String,
    /// Sub-scores.
    pub sub_scores: BTreeMap<String, Option<f64>>,
    /// Indicators at the last bar.
    pub indicators: BTreeMap<String, Option<f64>>,
    /// True when the bars came from the cache.
    pub cached: bool,
    /// True for synthetic demo data.
    pub demo: bool,
}

impl SymbolSnapshot {
    /// From a scored result.
    pub fn new(r: &ScanResult, cached: bool, demo: bool) -> Self {
        let d = ResultDto::from(r);
        Self {
            symbol: d.symbol,
            name: d.name,
            sector: d.sector,
            date: d.date,
            close: d.close,
            tech_rating: d.tech_rating,
            signal: d.signal,
            sub_scores: d.sub_scores,
            indicators: d.indicators,
            cached,
            demo,
        }
    }
}

/// One daily bar.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BarDto {
    /// Trading date.
    pub date: NaiveDate,
    /// Open.
    pub open: f64,
    /// High.
    pub high: f64,
    /// Low.
    pub low: f64,
    /// Close.
    pub close: f64,
    /// Volume.
    pub volume: f64,
}

/// `GET /api/v1/symbols/{symbol}/bars`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BarsResponse {
    /// Ticker.
    pub symbol: String,
    /// Bars, ascending.
    pub bars: Vec<BarDto>,
}

impl BarsResponse {
    /// From column-wise bars.
    pub fn new(symbol: &str, bars: &Bars) -> Self {
        let rows = (0..bars.len())
            .filter_map(|i| bars.get(i))
            .map(|b| BarDto {
                date: b.date,
                open: b.open,
                high: b.high,
                low: b.low,
                close: b.close,
                volume: b.volume,
            })
            .collect();
        Self {
            symbol: symbol.to_owned(),
            bars: rows,
        }
    }
}

/// The JSON body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// HTTP status code.
    pub status: u16,
    /// `network`, `provider`, `cache`, `data`, `config`, `cancelled`, `internal` or `request`.
    pub category: String,
    /// For people.
    pub message: String,
    /// Technical detail (never secrets).
    pub detail: String,
    /// What to do: `retry`, `skip`, `cancel`, `fix_config`, `fix_request`, `report`.
    pub actions: Vec<String>,
    /// For a bad screen expression or sort: where the problem is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<ExpressionErrorDto>,
}

/// Where a screen expression (or sort) is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExpressionErrorDto {
    /// What is wrong.
    pub message: String,
    /// The text that was checked.
    pub source: String,
    /// 0-based byte offset of the problem in `source`.
    pub position: usize,
    /// Bytes the problem covers.
    pub length: usize,
    /// The source and a caret line under the problem.
    pub caret: String,
    /// Close names for an unknown one.
    pub suggestions: Vec<String>,
}

impl From<&technic_core::ScreenError> for ExpressionErrorDto {
    fn from(e: &technic_core::ScreenError) -> Self {
        Self {
            message: e.message.clone(),
            source: e.source.clone(),
            position: e.position,
            length: e.length,
            caret: e.caret(),
            suggestions: e.suggestions.clone(),
        }
    }
}

/// One preset of `GET /api/v1/presets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PresetDto {
    /// Its name.
    pub name: String,
    /// What it finds.
    pub description: String,
    /// The expression.
    pub expression: String,
    /// The rule's source.
    pub reference: String,
}

/// A saved screen (`GET /api/v1/screens`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScreenDto {
    /// Its name.
    pub name: String,
    /// The filter expression.
    #[serde(rename = "where")]
    pub where_: Option<String>,
    /// The order, `FIELD[:asc|desc]`.
    pub sort: Option<String>,
    /// When it was saved.
    pub saved_at: DateTime<Utc>,
}

/// Body of `POST /api/v1/screens`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScreenCreate {
    /// Its name: 1–64 letters, digits, `-` or `_`.
    pub name: String,
    /// The filter expression.
    #[serde(default, rename = "where")]
    pub where_: Option<String>,
    /// Start from a preset (combined with `where` by `and`).
    #[serde(default)]
    pub preset: Option<String>,
    /// The order, `FIELD[:asc|desc]`.
    #[serde(default)]
    pub sort: Option<String>,
}

/// `GET /api/v1/symbols/{symbol}/explain`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExplainDto {
    /// The symbol's result, with `explain` and `trade_plan`.
    pub result: ResultDto,
    /// True for synthetic demo data.
    pub demo: bool,
}

/// Calls to the data provider, as measured by the server (what the dashboard's provider panel shows).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PoolDto {
    /// Calls to the data provider in flight now.
    pub in_flight: u64,
    /// The most calls that were in flight at once since the server started.
    pub peak_in_flight: u64,
    /// Calls made since the server started.
    pub total: u64,
}

/// Response-time figures of the API.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResponseTimesDto {
    /// Mean time of symbol lookups answered from the cache.
    pub avg_cached_ms: f64,
    /// Mean time of symbol lookups that loaded data.
    pub avg_uncached_ms: f64,
    /// avg_uncached ÷ avg_cached (0 when either is unknown).
    pub speedup: f64,
    /// Median of all API requests.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
}

/// An alert that is firing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlertDto {
    /// Rule name (`low_hit_rate`, `slow_responses`, `high_error_rate`).
    pub rule: String,
    /// `warning` or `error`.
    pub severity: String,
    /// For people.
    pub message: String,
    /// Measured value.
    pub value: f64,
    /// Threshold crossed.
    pub threshold: f64,
    /// When it started firing.
    pub since: DateTime<Utc>,
}

/// `GET /api/v1/metrics/current`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MetricsCurrent {
    /// Cache figures.
    pub cache: CacheDto,
    /// Provider connection pool.
    pub provider_calls: PoolDto,
    /// Response times.
    pub response_times: ResponseTimesDto,
    /// API requests in the last minute.
    pub requests_per_minute: f64,
    /// Share of API requests that failed with a server error (0–1).
    pub error_rate: f64,
    /// Scans running now.
    pub scans_running: usize,
    /// Alerts firing now.
    pub alerts: Vec<AlertDto>,
}

/// One sample of `GET /api/v1/metrics/history`: the figures of one interval (5 s by default), from the
/// same monitor whose 5-minute samples feed the CSV log, `technic report` and the alerts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MetricsSample {
    /// When taken.
    pub timestamp: DateTime<Utc>,
    /// Cache hit rate of the lookups during the interval (0–1; null when there were none).
    pub hit_rate: Option<f64>,
    /// Mean lookup time over the interval (0 without lookups).
    pub avg_response_ms: f64,
    /// Mean cached lookup over the interval (null when none).
    pub avg_cached_ms: Option<f64>,
    /// Mean uncached lookup over the interval (null when none).
    pub avg_uncached_ms: Option<f64>,
    /// Symbol data lookups (scans and the API) in the interval.
    pub lookups: u64,
    /// Failed lookups ÷ lookups in the interval.
    pub error_rate: f64,
    /// API requests answered in the interval.
    pub api_requests: u64,
    /// Mean API response time over the interval (0 without requests).
    pub api_avg_ms: f64,
    /// Server-error share of the interval's API requests.
    pub api_error_rate: f64,
    /// API requests in flight when the sample was taken.
    pub active_connections: u64,
}

/// `GET /api/v1/metrics/history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MetricsHistory {
    /// Window asked for.
    pub minutes: u64,
    /// Samples, oldest first.
    pub samples: Vec<MetricsSample>,
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` when a shared part (Redis, the store) is unreachable: the server still answers.
    pub status: String,
    /// What is degraded, in words (empty when `ok`).
    #[serde(default)]
    pub degraded: Vec<String>,
    /// Provider name.
    pub provider: String,
    /// True for synthetic demo data.
    pub demo: bool,
    /// Seconds since start.
    pub uptime_seconds: f64,
    /// Server version.
    pub version: String,
}

/// What one warming pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WarmPassDto {
    /// Symbols considered.
    pub considered: usize,
    /// Symbols loaded into the cache.
    pub warmed: usize,
    /// Symbols already fresh.
    pub fresh: usize,
    /// Loads that failed.
    pub failures: usize,
}

impl From<technic_core::warm::WarmPass> for WarmPassDto {
    fn from(p: technic_core::warm::WarmPass) -> Self {
        Self {
            considered: p.considered,
            warmed: p.warmed,
            fresh: p.fresh,
            failures: p.failures,
        }
    }
}

/// A popular symbol and its decayed access score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PopularDto {
    /// Ticker.
    pub symbol: String,
    /// Accesses, decayed with the tracker's half-life.
    pub score: f64,
}

/// `GET /api/v1/warmer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WarmerDto {
    /// False when the server runs without a warmer.
    pub enabled: bool,
    /// True while the background task runs.
    pub running: bool,
    /// True while paused.
    pub paused: bool,
    /// Why it is paused.
    pub pause_reason: Option<String>,
    /// When the last pass ended.
    pub last_run: Option<DateTime<Utc>>,
    /// What the last pass did.
    pub last_pass: WarmPassDto,
    /// Symbols loaded since start.
    pub total_warmed: u64,
    /// Failed loads since start.
    pub total_failures: u64,
    /// When the next full pass is due.
    pub next_run: Option<DateTime<Utc>>,
    /// When the next pre-market warm-up is due.
    pub next_premarket: Option<DateTime<Utc>>,
    /// Symbols kept warm.
    pub top_n: usize,
    /// Seconds between full passes.
    pub interval_seconds: u64,
    /// The most popular symbols.
    pub popular: Vec<PopularDto>,
    /// Accesses per hour of the day (UTC).
    pub hourly: Vec<u64>,
}

impl WarmerDto {
    /// From the warmer (if any), the popular symbols and the hourly pattern.
    pub fn new(
        warmer: Option<&technic_core::CacheWarmer>,
        popular: Vec<PopularDto>,
        hourly: [u64; 24],
    ) -> Self {
        let status = warmer.map(technic_core::CacheWarmer::status).unwrap_or_default();
        Self {
            enabled: warmer.is_some(),
            running: status.running,
            paused: status.paused,
            pause_reason: status.pause_reason,
            last_run: status.last_run,
            last_pass: WarmPassDto::from(status.last_pass),
            total_warmed: status.total_warmed,
            total_failures: status.total_failures,
            next_run: status.next_run,
            next_premarket: status.next_premarket,
            top_n: warmer.map_or(0, |w| w.config().top_n),
            interval_seconds: warmer.map_or(0, |w| w.config().interval.as_secs()),
            popular,
            hourly: hourly.to_vec(),
        }
    }
}

/// Body of `POST /api/v1/backtests`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BacktestCreate {
    /// Backtest only these symbols (default: the provider's universe).
    #[serde(default)]
    pub symbols: Vec<String>,
    /// At most this many symbols.
    #[serde(default, deserialize_with = "whole::opt")]
    pub max_symbols: Option<usize>,
    /// The screen expression.
    #[serde(default, rename = "where")]
    pub where_: Option<String>,
    /// A preset's name.
    #[serde(default)]
    pub preset: Option<String>,
    /// A saved screen's name.
    #[serde(default)]
    pub screen: Option<String>,
    /// Order of picks, `FIELD[:asc|desc]`.
    #[serde(default)]
    pub sort: Option<String>,
    /// Keep the best `top` picks a session (0 or absent: all).
    #[serde(default, deserialize_with = "whole::opt")]
    pub top: Option<usize>,
    /// Forward horizons in sessions (default `[21]`; the first is the main one).
    #[serde(default, deserialize_with = "whole::vec")]
    pub horizons: Vec<usize>,
    /// First session (default: the first with a year of history before it).
    #[serde(default)]
    pub from: Option<NaiveDate>,
    /// Last session (default: the last with the longest horizon after it).
    #[serde(default)]
    pub to: Option<NaiveDate>,
    /// Benchmark symbol for `rs_*` (default: the equal-weight index of the symbols).
    #[serde(default)]
    pub benchmark: Option<String>,
}

/// Answer to `POST /api/v1/backtests` (202 Accepted).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BacktestCreated {
    /// The backtest's id.
    pub id: String,
    /// Where to poll its status and, once complete, its report.
    pub status_url: String,
    /// Where to cancel it.
    pub cancel_url: String,
}

/// A backtest's state, progress and (once complete) report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BacktestStatus {
    /// Its id.
    pub id: String,
    /// `running`, `complete`, `cancelled` or `failed`.
    pub state: String,
    /// Percent finished.
    pub percent: f64,
    /// What it is doing.
    pub message: String,
    /// Why it failed.
    pub error: Option<ErrorBody>,
    /// The report (`technic backtest --json`): `days[]`, `summary`, `summaries[]`, …
    #[schema(value_type = Option<Object>)]
    pub report: Option<serde_json::Value>,
}

/// `GET /api/v1/symbols/{symbol}/series`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SeriesResponse {
    /// Ticker.
    pub symbol: String,
    /// Bar dates, ascending.
    pub dates: Vec<NaiveDate>,
    /// One value per date for each name asked for (null before the indicator is defined).
    pub series: BTreeMap<String, Vec<Option<f64>>>,
}

/// Rows as CSV: fixed columns, every indicator, relative strength, the plan.
pub fn results_csv(rows: &[ResultDto]) -> String {
    use std::fmt::Write as _;
    let field = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_owned()
        }
    };
    let num = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    let indicators = technic_core::indicators::INDICATOR_NAMES;
    let mut out = String::from(
        "rank,symbol,name,sector,industry,date,close,change_pct,volume,dollar_volume_20,atr_pct,bb_width,tech_rating,signal,",
    );
    out.push_str(&indicators.join(","));
    out.push_str(",rs_21,rs_63,rs_126,rs_252,entry,stop,target,shares,stale\n");
    for r in rows {
        let _ = write!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.rank,
            field(&r.symbol),
            field(&r.name),
            field(&r.sector),
            field(&r.industry),
            r.date,
            r.close,
            num(r.change_pct),
            num(r.volume),
            num(r.dollar_volume_20),
            num(r.atr_pct),
            num(r.bb_width),
            r.tech_rating,
            field(&r.signal)
        );
        for k in indicators {
            let _ = write!(out, ",{}", num(r.indicators.get(k).copied().flatten()));
        }
        for k in [
            "rs_21", "rs_63", "rs_126", "rs_252", "entry", "stop", "target", "shares",
        ] {
            let _ = write!(out, ",{}", num(r.number(k)));
        }
        let _ = writeln!(out, ",{}", r.stale);
    }
    out
}

/// A field or function of the screen language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldDto {
    /// Its name.
    pub name: String,
    /// What it is.
    pub description: String,
}

/// `GET /api/v1/fields`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldsDto {
    /// Numeric fields (each also readable `k` sessions back as `name[k]`).
    pub numeric: Vec<FieldDto>,
    /// Text fields.
    pub text: Vec<FieldDto>,
    /// Functions.
    pub functions: Vec<FieldDto>,
}
