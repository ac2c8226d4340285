//! The API in process: status codes, JSON shapes and errors, through `Router::oneshot`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use technic_core::{Deps, MemoryCache, SyntheticConfig, SyntheticProvider};
use technic_http::{AppState, ServerConfig, router};
use tower::ServiceExt;

pub fn state(n_symbols: usize, admin_token: Option<&str>) -> AppState {
    let provider = SyntheticProvider::new(SyntheticConfig {
        n_symbols,
        n_bars: 300,
        ..SyntheticConfig::default()
    });
    let deps = Deps::new(Arc::new(provider), Arc::new(MemoryCache::default()));
    AppState::new(
        deps,
        ServerConfig {
            admin_token: admin_token.map(str::to_owned),
            ..ServerConfig::default()
        },
    )
}

pub async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    body: Option<&str>,
    auth: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    if let Some(token) = auth {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let req = req
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

pub(crate) async fn wait_done(app: &Router, id: &str) -> Value {
    for _ in 0..400 {
        let (_, s) = call(app, "GET", &format!("/api/v1/scans/{id}"), None, None).await;
        if s["state"] != "running" {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("scan {id} did not finish");
}

fn assert_error(v: &Value, status: u16, needle: &str) {
    assert_eq!(v["status"], status, "{v}");
    for key in ["category", "message", "detail", "actions"] {
        assert!(!v[key].is_null(), "{key} missing in {v}");
    }
    let text = format!("{} {}", v["message"], v["detail"]);
    assert!(text.contains(needle), "{needle:?} not in {v}");
}

#[tokio::test]
async fn scan_lifecycle_status_and_paged_sorted_results() {
    let app = router(state(60, None));
    let (status, created) = call(&app, "POST", "/api/v1/scans", Some(r#"{"top": 0}"#), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["events_url"], format!("/api/v1/scans/{id}/events"));
    let done = wait_done(&app, &id).await;
    assert_eq!(done["state"], "complete");
    assert_eq!(done["overall_percent"], 100.0);
    assert_eq!(done["counts"]["scanned"], 60);
    assert!(done["timing"]["total_ms"].as_f64().unwrap() > 0.0);

    let (status, page) = call(
        &app,
        "GET",
        &format!("/api/v1/scans/{id}/results?limit=10&offset=5"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 60);
    let rows = page["results"].as_array().unwrap();
    assert_eq!(rows.len(), 10);
    assert_eq!(rows[0]["rank"], 6);
    for field in ["symbol", "sector", "close", "tech_rating", "signal", "indicators"] {
        assert!(!rows[0][field].is_null(), "{field}");
    }
    assert!(rows[0]["indicators"]["rsi_14"].is_number());
    assert_eq!(page["demo"], true);

    let (_, by_symbol) = call(
        &app,
        "GET",
        &format!("/api/v1/scans/{id}/results?sort=-symbol&limit=60"),
        None,
        None,
    )
    .await;
    let symbols: Vec<&str> = by_symbol["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["symbol"].as_str().unwrap())
        .collect();
    assert!(symbols.windows(2).all(|w| w[0] >= w[1]), "descending by symbol");

    let (_, list) = call(&app, "GET", "/api/v1/scans", None, None).await;
    assert_eq!(list[0]["id"], id.as_str());
}

#[tokio::test]
async fn bad_requests_get_json_errors_with_the_right_status() {
    let app = router(state(20, None));
    let (s, v) = call(&app, "GET", "/api/v1/scans/nope", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_error(&v, 404, "scan nope");

    let (s, v) = call(&app, "POST", "/api/v1/scans", Some("{not json"), None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_error(&v, 400, "Malformed request body");

    let (s, v) = call(&app, "POST", "/api/v1/scans", Some(r#"{"topp": 3}"#), None).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&v, 422, "topp");

    let (s, v) = call(
        &app,
        "POST",
        "/api/v1/scans",
        Some(r#"{"symbols": ["OK", "B@D"]}"#),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&v, 422, "B@D");

    let big = format!(r#"{{"symbols": [{}]}}"#, vec!["\"AAAA\""; 20_000].join(","));
    let (s, v) = call(&app, "POST", "/api/v1/scans", Some(&big), None).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&v, 413, "too large");

    let (s, v) = call(&app, "GET", "/api/v1/symbols/ZZZZZZ", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_error(&v, 404, "ZZZZZZ");

    let (s, v) = call(&app, "GET", "/api/v1/symbols/%2E%2E%2Fetc", None, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_error(&v, 400, "Invalid symbol");

    let (s, v) = call(&app, "GET", "/api/v1/metrics/history?minutes=abc", None, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_error(&v, 400, "Invalid query string");

    let (created_status, created) = call(&app, "POST", "/api/v1/scans", None, None).await;
    assert_eq!(
        created_status,
        StatusCode::ACCEPTED,
        "an empty body scans with defaults"
    );
    let id = created["id"].as_str().unwrap();
    wait_done(&app, id).await;
    let (s, v) = call(
        &app,
        "GET",
        &format!("/api/v1/scans/{id}/results?sort=bogus"),
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_error(&v, 400, "unknown sort `bogus`");
    let (s, v) = call(&app, "POST", &format!("/api/v1/scans/{id}/cancel"), None, None).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_error(&v, 409, "already ended");
}

#[tokio::test]
async fn symbol_lookups_are_served_from_the_cache_the_second_time() {
    let st = state(20, None);
    let app = router(st.clone());
    let (_, list) = {
        let (s, v) = call(&app, "POST", "/api/v1/scans", Some(r#"{"top": 1}"#), None).await;
        (s, wait_done(&app, v["id"].as_str().unwrap()).await)
    };
    assert_eq!(list["state"], "complete");
    let sym = SyntheticProvider::new(SyntheticConfig {
        n_symbols: 20,
        n_bars: 300,
        ..SyntheticConfig::default()
    });
    let symbol = technic_core::DataProvider::universe(&sym).await.unwrap()[3]
        .symbol
        .to_string();

    let (s, first) = call(&app, "GET", &format!("/api/v1/symbols/{symbol}"), None, None).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    assert_eq!(first["cached"], true, "the scan already cached its bars");
    assert!(first["indicators"]["sma_200"].is_number());
    assert!(!first["sector"].as_str().unwrap().is_empty());

    call(&app, "DELETE", "/api/v1/cache", None, None).await;
    let (_, bars) = call(
        &app,
        "GET",
        &format!("/api/v1/symbols/{symbol}/bars?from=2026-11-02&to=2026-11-27"),
        None,
        None,
    )
    .await;
    let bars = bars["bars"].as_array().unwrap();
    // The sessions of the range: its 20 weekdays but Thanksgiving (26 November), a market holiday.
    assert_eq!(bars.len(), 19, "sessions in the range");
    assert!(bars.iter().all(|b| b["date"] != "2026-11-26"));
    assert_eq!(bars[0]["date"], "2026-11-02");
    let (s, v) = call(
        &app,
        "GET",
        &format!("/api/v1/symbols/{symbol}/bars?from=2026-12-01&to=2026-11-01"),
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_error(&v, 400, "after its end");

    let (_, m) = call(&app, "GET", "/api/v1/metrics/current", None, None).await;
    assert!(m["cache"]["hits"].as_u64().unwrap() >= 1);
    assert!(m["response_times"]["avg_cached_ms"].as_f64().unwrap() > 0.0);
    for key in [
        "hit_rate",
        "requests",
        "hits",
        "misses",
        "entries",
        "bytes",
        "ttl_seconds",
    ] {
        assert!(m["cache"][key].is_number(), "cache.{key}");
    }
    for key in ["in_flight", "peak_in_flight", "total"] {
        assert!(m["provider_calls"][key].is_number(), "provider_calls.{key}");
    }
    for key in [
        "avg_cached_ms",
        "avg_uncached_ms",
        "speedup",
        "p50_ms",
        "p95_ms",
        "p99_ms",
    ] {
        assert!(m["response_times"][key].is_number(), "response_times.{key}");
    }
    assert!(m["requests_per_minute"].as_f64().unwrap() >= 5.0);
    assert!(m["error_rate"].is_number() && m["alerts"].is_array());
}

#[tokio::test]
async fn cache_clear_needs_the_admin_token() {
    let app = router(state(5, None));
    let (s, v) = call(&app, "DELETE", "/api/v1/cache", None, Some("x")).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_error(&v, 403, "disabled");

    let app = router(state(5, Some("s3cret")));
    let (s, v) = call(&app, "DELETE", "/api/v1/cache", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_error(&v, 401, "admin token");
    let (s, _) = call(&app, "DELETE", "/api/v1/cache", None, Some("wrong!")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v) = call(&app, "DELETE", "/api/v1/cache", None, Some("s3cret")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["entries"], 0);
}

#[tokio::test]
async fn health_openapi_prometheus_and_dashboard() {
    let app = router(state(5, None));
    let (s, h) = call(&app, "GET", "/healthz", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (h["status"].as_str(), h["demo"].as_bool()),
        (Some("ok"), Some(true))
    );

    let (_, doc) = call(&app, "GET", "/openapi.json", None, None).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/scans",
        "/api/v1/scans/{id}/events",
        "/api/v1/symbols/{symbol}",
        "/api/v1/metrics/current",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["schemas"]["MetricsCurrent"].is_object());

    let (s, text) = call(&app, "GET", "/metrics", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let text = text.as_str().unwrap();
    assert!(
        text.contains("# TYPE technic_http_requests_total counter"),
        "{text}"
    );
    assert!(
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .all(|l| l.split(' ').count() == 2),
        "{text}"
    );

    let (s, page) = call(&app, "GET", "/", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let page = page.as_str().unwrap();
    assert!(page.contains(r#"<script src="assets/app.js">"#));
    // Scripts, styles and images come from this server (the only outside URL is the chart library's
    // attribution link, which loads nothing).
    for tag in ["src=\"http", "<link rel=\"stylesheet\" href=\"http", "url(http"] {
        assert!(
            !page.contains(tag),
            "the page loads nothing from elsewhere: {tag}"
        );
    }
}

#[tokio::test]
async fn provider_outages_are_503_with_a_friendly_message() {
    #[derive(Debug)]
    struct Down;
    #[async_trait::async_trait]
    impl technic_core::DataProvider for Down {
        fn name(&self) -> &str {
            "down"
        }
        async fn universe(&self) -> technic_core::Result<technic_core::Universe> {
            Ok(Vec::new())
        }
        async fn daily_bars(
            &self,
            _: &technic_core::Symbol,
            _: technic_core::DateRange,
        ) -> technic_core::Result<technic_core::Bars> {
            Err(technic_core::Error::Unavailable {
                service: "data provider".into(),
                detail: "HTTP 503 from the API".into(),
                retry_after: None,
                network: false,
            })
        }
    }
    let deps = Deps::new(Arc::new(Down), Arc::new(MemoryCache::default()));
    let st = AppState::new(deps, ServerConfig::default());
    let app = router(st.clone());
    let (s, v) = call(&app, "GET", "/api/v1/symbols/AAPL", None, None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_error(&v, 503, "Data provider temporarily unavailable");
    assert_eq!(v["category"], "provider");
    assert!(
        v["actions"].as_array().unwrap().iter().any(|a| a == "retry"),
        "{v}"
    );
    let (_, m) = call(&app, "GET", "/api/v1/metrics/current", None, None).await;
    assert!(
        m["error_rate"].as_f64().unwrap() > 0.0,
        "server errors count in the error rate: {m}"
    );
}

#[tokio::test]
async fn warmer_status_popular_symbols_and_manual_warm() {
    let st = state(30, Some("tok"));
    let app = router(st.clone());
    let sym = SyntheticProvider::new(SyntheticConfig {
        n_symbols: 30,
        n_bars: 300,
        ..SyntheticConfig::default()
    });
    let universe = technic_core::DataProvider::universe(&sym).await.unwrap();
    let (a, b) = (universe[5].symbol.to_string(), universe[9].symbol.to_string());
    for _ in 0..3 {
        call(&app, "GET", &format!("/api/v1/symbols/{a}"), None, None).await;
    }
    call(&app, "GET", &format!("/api/v1/symbols/{b}"), None, None).await;
    let (s, w) = call(&app, "GET", "/api/v1/warmer", None, None).await;
    assert_eq!(s, StatusCode::OK, "{w}");
    assert_eq!(w["enabled"], true);
    assert_eq!(w["popular"][0]["symbol"], a.as_str());
    assert_eq!(w["popular"][1]["symbol"], b.as_str());
    assert_eq!(
        w["hourly"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_u64().unwrap())
            .sum::<u64>(),
        4
    );

    let (s, _) = call(&app, "POST", "/api/v1/cache/warm", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    call(&app, "DELETE", "/api/v1/cache", None, Some("tok")).await;
    let (s, pass) = call(&app, "POST", "/api/v1/cache/warm", None, Some("tok")).await;
    assert_eq!(s, StatusCode::OK, "{pass}");
    assert_eq!(
        (pass["considered"].as_u64(), pass["warmed"].as_u64()),
        (Some(2), Some(2))
    );
    let (_, snap) = call(&app, "GET", &format!("/api/v1/symbols/{b}"), None, None).await;
    assert_eq!(snap["cached"], true, "warmed symbols are answered from the cache");
}

#[tokio::test]
async fn popularity_survives_a_restart_through_the_store() {
    let store: Arc<dyn technic_core::Store> = Arc::new(technic_core::MemoryStore::default());
    let with_store = |s: AppState| {
        let mut deps = s.deps.clone();
        deps.store = Some(store.clone());
        AppState::new(deps, ServerConfig::default())
    };
    let first = with_store(state(30, None));
    let app = router(first.clone());
    let sym = SyntheticProvider::new(SyntheticConfig {
        n_symbols: 30,
        n_bars: 300,
        ..SyntheticConfig::default()
    });
    let universe = technic_core::DataProvider::universe(&sym).await.unwrap();
    let (a, b) = (universe[2].symbol.to_string(), universe[7].symbol.to_string());
    for _ in 0..4 {
        call(&app, "GET", &format!("/api/v1/symbols/{b}"), None, None).await;
    }
    call(&app, "GET", &format!("/api/v1/symbols/{a}"), None, None).await;
    let mut flushed = std::collections::HashMap::new();
    assert_eq!(technic_http::popularity::flush(&first, &mut flushed).await, 5);
    assert_eq!(
        technic_http::popularity::flush(&first, &mut flushed).await,
        0,
        "nothing new to save"
    );

    let restarted = with_store(state(30, None));
    assert_eq!(technic_http::popularity::restore(&restarted).await, 2);
    let (_, w) = call(&router(restarted), "GET", "/api/v1/warmer", None, None).await;
    assert_eq!(w["popular"][0]["symbol"], b.as_str(), "{w}");
    assert_eq!(w["popular"][1]["symbol"], a.as_str(), "{w}");
}

/// A server restarted on the same store lists and serves the scans the previous one ran.
#[tokio::test]
async fn scan_history_outlives_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let server = |store: Arc<technic_core::SqliteStore>| {
        let provider = SyntheticProvider::new(SyntheticConfig {
            n_symbols: 30,
            n_bars: 300,
            ..SyntheticConfig::default()
        });
        let deps = Deps::new(Arc::new(provider), Arc::new(MemoryCache::default())).with_store(store);
        router(AppState::new(deps, ServerConfig::default()))
    };
    let first = server(Arc::new(technic_core::SqliteStore::open(&path).await.unwrap()));
    let (status, created) = call(&first, "POST", "/api/v1/scans", Some(r#"{"top": 0}"#), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(wait_done(&first, &id).await["state"], "complete");
    let (_, page) = call(
        &first,
        "GET",
        &format!("/api/v1/scans/{id}/results?limit=5"),
        None,
        None,
    )
    .await;
    drop(first);

    // "Restart": a new server process on the same file.
    let again = server(Arc::new(technic_core::SqliteStore::open(&path).await.unwrap()));
    let (status, list) = call(&again, "GET", "/api/v1/scans", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list[0]["id"], id.as_str(), "{list}");
    assert_eq!(list[0]["state"], "complete");
    let (status, s) = call(&again, "GET", &format!("/api/v1/scans/{id}"), None, None).await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["counts"]["scanned"], 30);
    let (status, restored) = call(
        &again,
        "GET",
        &format!("/api/v1/scans/{id}/results?limit=5"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{restored}");
    assert_eq!(restored["results"], page["results"]);
    let (status, _) = call(&again, "POST", &format!("/api/v1/scans/{id}/cancel"), None, None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, events) = call(&again, "GET", &format!("/api/v1/scans/{id}/events"), None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(events.as_str().unwrap().contains("event: complete"), "{events}");
    let (status, _) = call(
        &again,
        "GET",
        "/api/v1/scans/0190b9d2-0000-7000-8000-000000000000",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn raw(app: &Router, req: Request<Body>) -> axum::response::Response {
    app.clone().oneshot(req).await.unwrap()
}

#[tokio::test]
async fn browser_safety_hosts_origins_content_types_and_headers() {
    let app = router(state(10, None));
    let get = |host: &str| {
        Request::builder()
            .uri("/api/v1/cache/stats")
            .header(header::HOST, host)
            .body(Body::empty())
            .unwrap()
    };
    // Loopback names answer; a rebinding attacker's name does not.
    for host in ["127.0.0.1:8003", "localhost:8003", "[::1]:8003"] {
        assert_eq!(raw(&app, get(host)).await.status(), StatusCode::OK, "{host}");
    }
    let res = raw(&app, get("attacker.example:8003")).await;
    assert_eq!(res.status(), StatusCode::MISDIRECTED_REQUEST);
    // Every response, errors included, carries the protective headers.
    let h = res.headers().clone();
    // The message names an address that works, port included.
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("http://127.0.0.1:8003/"), "{body}");
    let h = &h;
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let page = raw(&app, Request::builder().uri("/").body(Body::empty()).unwrap()).await;
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );

    // A page on another site POSTing text/plain (a "simple request" that needs no preflight).
    let post = |origin: Option<&str>, content_type: Option<&str>, body: &str| {
        let mut b = Request::builder()
            .method("POST")
            .uri("/api/v1/scans")
            .header(header::HOST, "127.0.0.1:8003");
        if let Some(o) = origin {
            b = b.header(header::ORIGIN, o);
        }
        if let Some(t) = content_type {
            b = b.header(header::CONTENT_TYPE, t);
        }
        b.header(header::CONTENT_LENGTH, body.len())
            .body(Body::from(body.to_owned()))
            .unwrap()
    };
    let res = raw(&app, post(Some("http://evil.example"), Some("text/plain"), "{}")).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = raw(&app, post(None, Some("text/plain"), r#"{"top": 1}"#)).await;
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let res = raw(&app, post(None, None, r#"{"top": 1}"#)).await;
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // The dashboard's own request passes.
    let res = raw(
        &app,
        post(
            Some("http://127.0.0.1:8003"),
            Some("application/json"),
            r#"{"top": 1}"#,
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    // No scan was started by the refused requests.
    let (_, list) = call(&app, "GET", "/api/v1/scans", None, None).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

/// Synthetic data whose bar requests wait until the test opens the gate.
#[derive(Debug)]
struct Gated {
    inner: SyntheticProvider,
    gate: Arc<tokio::sync::Semaphore>,
}

#[async_trait::async_trait]
impl technic_core::DataProvider for Gated {
    fn name(&self) -> &str {
        "gated"
    }
    fn default_range(&self, expected: chrono::NaiveDate) -> technic_core::DateRange {
        self.inner.default_range(expected)
    }
    async fn universe(&self) -> technic_core::Result<technic_core::Universe> {
        self.inner.universe().await
    }
    async fn daily_bars(
        &self,
        symbol: &technic_core::Symbol,
        range: technic_core::DateRange,
    ) -> technic_core::Result<technic_core::Bars> {
        let _pass = self.gate.acquire().await;
        self.inner.daily_bars(symbol, range).await
    }
}

#[tokio::test]
async fn scans_beyond_the_running_limit_queue_and_a_full_queue_answers_429() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let provider = Gated {
        inner: SyntheticProvider::new(SyntheticConfig {
            n_symbols: 5,
            n_bars: 300,
            ..SyntheticConfig::default()
        }),
        gate: gate.clone(),
    };
    let deps = Deps::new(Arc::new(provider), Arc::new(MemoryCache::default()));
    let app = router(AppState::new(
        deps,
        ServerConfig {
            max_scans: 1,
            max_queued_scans: 2,
            ..ServerConfig::default()
        },
    ));
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (status, created) = call(&app, "POST", "/api/v1/scans", Some("{}"), None).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{created}");
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let (_, third) = call(&app, "GET", &format!("/api/v1/scans/{}", ids[2]), None, None).await;
    assert!(
        third["message"].as_str().unwrap().starts_with("Queued"),
        "{third}"
    );
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/scans")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()[header::RETRY_AFTER], "5");
    gate.add_permits(10_000);
    for id in &ids {
        assert_eq!(wait_done(&app, id).await["state"], "complete", "{id}");
    }
    // Room again.
    let (status, _) = call(&app, "POST", "/api/v1/scans", Some("{}"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

/// Every route the router serves, as (method, path template). Kept beside the router in `api.rs`; a
/// route added there and not here fails `the_openapi_document_describes_every_route` below only if it is
/// also missing from the document, so the check runs both ways through `/openapi.json`.
const ROUTES: [(&str, &str); 29] = [
    ("post", "/api/v1/scans"),
    ("get", "/api/v1/scans"),
    ("get", "/api/v1/scans/{id}"),
    ("get", "/api/v1/scans/{id}/events"),
    ("post", "/api/v1/scans/{id}/cancel"),
    ("get", "/api/v1/scans/{id}/results"),
    ("get", "/api/v1/symbols/{symbol}"),
    ("get", "/api/v1/symbols/{symbol}/bars"),
    ("get", "/api/v1/symbols/{symbol}/explain"),
    ("get", "/api/v1/presets"),
    ("get", "/api/v1/fields"),
    ("get", "/api/v1/symbols/{symbol}/series"),
    ("get", "/api/v1/scans/{id}/results.csv"),
    ("post", "/api/v1/backtests"),
    ("get", "/api/v1/backtests"),
    ("get", "/api/v1/backtests/{id}"),
    ("post", "/api/v1/backtests/{id}/cancel"),
    ("get", "/api/v1/screens"),
    ("post", "/api/v1/screens"),
    ("delete", "/api/v1/screens/{name}"),
    ("get", "/api/v1/metrics/current"),
    ("get", "/api/v1/metrics/history"),
    ("get", "/api/v1/cache/stats"),
    ("delete", "/api/v1/cache"),
    ("post", "/api/v1/cache/warm"),
    ("get", "/api/v1/warmer"),
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let app = router(state(5, None));
    let (status, doc) = call(&app, "GET", "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().expect("paths");
    let mut documented = 0;
    for (method, path) in ROUTES {
        let op = &paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not documented"))[method];
        assert!(op.is_object(), "{method} {path} is not documented");
        documented += 1;
        let params: Vec<(&str, &str)> = op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| (p["name"].as_str().unwrap(), p["in"].as_str().unwrap()))
                    .collect()
            })
            .unwrap_or_default();
        // Every `{name}` of the template is a path parameter, and nothing else is.
        let in_template: Vec<&str> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        let in_path: Vec<&str> = params
            .iter()
            .filter(|(_, at)| *at == "path")
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(in_path, in_template, "{method} {path}: path parameters");
        // The query parameters are the fields the handler's query struct accepts.
        for (name, at) in &params {
            assert!(matches!(*at, "path" | "query"), "{method} {path}: {name} in {at}");
        }
    }
    // And the document has no route the server does not serve.
    let total: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        total, documented,
        "the document lists routes the server does not have"
    );
    // Query parameters where they belong.
    let results = &paths["/api/v1/scans/{id}/results"]["get"]["parameters"];
    for q in ["limit", "offset", "sort"] {
        assert!(
            results
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == q && p["in"] == "query"),
            "{q} is not a query parameter: {results}"
        );
    }
    // Every route of the list answers something other than 404/405 (the list matches the router).
    for (method, path) in ROUTES {
        if path.contains("events") {
            continue; // a stream: checked in the end-to-end tests
        }
        let uri = path.replace("{id}", "none").replace("{symbol}", "AAPL");
        let (status, _) = call(&app, &method.to_uppercase(), &uri, None, None).await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        if !path.contains('{') {
            assert_ne!(status, StatusCode::NOT_FOUND, "{method} {uri}");
        }
    }
}

#[tokio::test]
async fn old_results_are_served_from_the_store_and_pages_repeat_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        technic_core::SqliteStore::open(dir.path().join("s.db"))
            .await
            .unwrap(),
    );
    let provider = SyntheticProvider::new(SyntheticConfig {
        n_symbols: 12,
        n_bars: 300,
        ..SyntheticConfig::default()
    });
    let deps = Deps::new(Arc::new(provider), Arc::new(MemoryCache::default())).with_store(store);
    let app = router(AppState::new(deps, ServerConfig::default()));
    let mut ids = Vec::new();
    // More scans than the server keeps reports of in memory.
    for _ in 0..(technic_http::scans::KEEP_REPORTS + 3) {
        let (_, created) = call(&app, "POST", "/api/v1/scans", Some(r#"{"top": 0}"#), None).await;
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(wait_done(&app, &id).await["state"], "complete");
        ids.push(id);
    }
    let uri = format!("/api/v1/scans/{}/results?limit=5&sort=-close", ids[0]);
    let (status, first) = call(&app, "GET", &uri, None, None).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["total"], 12);
    assert_eq!(first["results"].as_array().unwrap().len(), 5);
    let closes: Vec<f64> = first["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["close"].as_f64().unwrap())
        .collect();
    assert!(closes.windows(2).all(|w| w[0] >= w[1]), "{closes:?}");
    let (_, again) = call(&app, "GET", &uri, None, None).await;
    assert_eq!(again, first);
}

#[tokio::test]
async fn active_connections_are_the_requests_in_flight() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let provider = Gated {
        inner: SyntheticProvider::new(SyntheticConfig {
            n_symbols: 3,
            n_bars: 300,
            ..SyntheticConfig::default()
        }),
        gate: gate.clone(),
    };
    let symbol = technic_core::DataProvider::universe(&provider.inner)
        .await
        .unwrap()[0]
        .symbol
        .clone();
    let deps = Deps::new(Arc::new(provider), Arc::new(MemoryCache::default()));
    let state = AppState::new(deps, ServerConfig::default());
    let app = router(state.clone());
    assert_eq!(state.monitor.sample().active_connections, 0);
    let uri = format!("/api/v1/symbols/{symbol}");
    let pending = tokio::spawn({
        let app = app.clone();
        async move { call(&app, "GET", &uri, None, None).await }
    });
    for _ in 0..100 {
        if state.monitor.sample().active_connections == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        state.monitor.sample().active_connections,
        1,
        "the waiting lookup is in flight"
    );
    gate.add_permits(100);
    assert_eq!(pending.await.unwrap().0, StatusCode::OK);
    assert_eq!(state.monitor.sample().active_connections, 0);
}

/// The dashboard's history, `/metrics` and the persisted (CSV, store, alerts) samples are one monitor's
/// figures: the same lookups and requests, counted once each.
#[tokio::test]
async fn dashboard_prometheus_and_persisted_samples_agree() {
    let st = state(5, None);
    let app = router(st.clone());
    let sym = SyntheticProvider::new(SyntheticConfig {
        n_symbols: 5,
        n_bars: 300,
        ..SyntheticConfig::default()
    });
    let symbol = technic_core::DataProvider::universe(&sym).await.unwrap()[0]
        .symbol
        .to_string();
    for _ in 0..2 {
        let (s, v) = call(&app, "GET", &format!("/api/v1/symbols/{symbol}"), None, None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    // An unknown symbol is the caller's mistake: a lookup, but not an error of the system.
    let (s, _) = call(&app, "GET", "/api/v1/symbols/NOPE", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    st.monitor.sample_fine();

    let (_, h) = call(&app, "GET", "/api/v1/metrics/history?minutes=5", None, None).await;
    let fine = &h["samples"][0];
    assert_eq!(fine["lookups"], 3, "{h}");
    assert_eq!(fine["api_requests"], 3);
    assert!(
        (fine["hit_rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9,
        "{fine}"
    );
    assert_eq!(fine["error_rate"], 0.0);

    let (_, text) = call_text(&app, "/metrics").await;
    assert!(text.contains("technic_lookups_total 3\n"), "{text}");
    assert!(text.contains("technic_lookups_cached_total 1\n"), "{text}");
    // The history request and this one are answered too.
    assert!(text.contains("technic_http_requests_total 4\n"), "{text}");

    let persisted = st.monitor.sample();
    assert_eq!(persisted.requests, 3);
    assert_eq!(persisted.http_requests, 5);
    assert!((persisted.cache_hit_rate - 1.0 / 3.0).abs() < 1e-9);
}

async fn call_text(app: &Router, uri: &str) -> (StatusCode, String) {
    let res = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

/// Screens through the API: a scan with `where`, `preset` and `sort`, a saved screen, presets, a 422 with
/// the expression's position, and one symbol's explanation.
#[tokio::test]
async fn screens_presets_and_explanations() {
    let st = state(60, None);
    let app = router(st.clone());
    let (s, v) = call(
        &app,
        "POST",
        "/api/v1/scans",
        Some(r#"{"where": "rsi_14 > 50", "sort": "rsi_14:asc", "top": 0, "account": 20000}"#),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(wait_done(&app, &id).await["state"], "complete");
    let (_, page) = call(
        &app,
        "GET",
        &format!("/api/v1/scans/{id}/results?limit=500"),
        None,
        None,
    )
    .await;
    let rows = page["results"].as_array().unwrap();
    assert!(!rows.is_empty() && rows.len() < 60, "{} of 60 pass", rows.len());
    let rsi: Vec<f64> = rows
        .iter()
        .map(|r| r["indicators"]["rsi_14"].as_f64().unwrap())
        .collect();
    assert!(rsi.iter().all(|r| *r > 50.0));
    assert!(rsi.windows(2).all(|w| w[0] <= w[1]), "sorted by rsi_14 ascending");
    assert!(
        rows[0]["explain"].is_null(),
        "pages leave the parts out unless asked"
    );
    assert!(rows[0]["trade_plan"]["shares"].is_number() || rows[0]["signal"] == "Avoid");
    let (_, page) = call(
        &app,
        "GET",
        &format!("/api/v1/scans/{id}/results?limit=2&explain=true"),
        None,
        None,
    )
    .await;
    let parts = page["results"][0]["explain"].as_array().unwrap();
    let sum = parts.iter().fold(0.0, |a, p| a + p["points"].as_f64().unwrap());
    assert_eq!(sum, page["results"][0]["tech_rating"].as_f64().unwrap());

    // A bad expression: 422 with where and what.
    let (s, v) = call(
        &app,
        "POST",
        "/api/v1/scans",
        Some(r#"{"where": "close > sma_5O"}"#),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["expression"]["position"], 8, "{v}");
    assert!(
        v["expression"]["suggestions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == "sma_50"),
        "{v}"
    );
    assert!(v["message"].as_str().unwrap().contains("sma_5o"), "{v}");
    let (s, v) = call(&app, "POST", "/api/v1/scans", Some(r#"{"preset": "nope"}"#), None).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, _) = call(&app, "POST", "/api/v1/scans", Some(r#"{"risk_pct": -1}"#), None).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // Presets and saved screens.
    let (_, presets) = call(&app, "GET", "/api/v1/presets", None, None).await;
    assert!(presets.as_array().unwrap().len() >= 15);
    let (s, v) = call(
        &app,
        "POST",
        "/api/v1/screens",
        Some(r#"{"name": "hot", "where": "rsi_14 > 60", "sort": "change_pct"}"#),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = call(
        &app,
        "POST",
        "/api/v1/screens",
        Some(r#"{"name": "bad name!", "where": "rsi_14 > 60"}"#),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = call(
        &app,
        "POST",
        "/api/v1/screens",
        Some(r#"{"name": "bad", "where": "rsi_14 >"}"#),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["expression"]["position"], 8, "{v}");
    let (_, list) = call(&app, "GET", "/api/v1/screens", None, None).await;
    assert_eq!(list[0]["name"], "hot");
    assert_eq!(list[0]["where"], "rsi_14 > 60");
    let (s, v) = call(
        &app,
        "POST",
        "/api/v1/scans",
        Some(r#"{"screen": "hot", "top": 0}"#),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    wait_done(&app, &id).await;
    let (_, page) = call(
        &app,
        "GET",
        &format!("/api/v1/scans/{id}/results?limit=500"),
        None,
        None,
    )
    .await;
    assert!(
        page["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["indicators"]["rsi_14"].as_f64().unwrap() > 60.0)
    );
    let (s, _) = call(
        &app,
        "POST",
        "/api/v1/scans",
        Some(r#"{"screen": "missing"}"#),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(&app, "DELETE", "/api/v1/screens/hot", None, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(&app, "DELETE", "/api/v1/screens/hot", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // One symbol's explanation.
    let symbol = page["results"][0]["symbol"]
        .as_str()
        .unwrap_or("S0000")
        .to_owned();
    let (s, v) = call(
        &app,
        "GET",
        &format!("/api/v1/symbols/{symbol}/explain?account=10000"),
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let parts = v["result"]["explain"].as_array().unwrap();
    let sum = parts.iter().fold(0.0, |a, p| a + p["points"].as_f64().unwrap());
    assert_eq!(sum, v["result"]["tech_rating"].as_f64().unwrap());
    let (s, _) = call(&app, "GET", "/api/v1/symbols/NOPE/explain", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(
        &app,
        "GET",
        &format!("/api/v1/symbols/{symbol}/explain?risk_pct=500"),
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

/// Backtests through the API: started, polled to completion with their report; bad input refused; and a
/// point-in-time scan reads no bar after its day.
#[tokio::test]
async fn backtests_and_point_in_time_scans() {
    let app = router(state(30, None));
    let (s, v) = call(
        &app,
        "POST",
        "/api/v1/backtests",
        Some(r#"{"preset": "oversold_bounce", "horizons": [1, 5]}"#),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let url = v["status_url"].as_str().unwrap().to_owned();
    let mut done = Value::Null;
    for _ in 0..400 {
        let (_, st) = call(&app, "GET", &url, None, None).await;
        if st["state"] != "running" {
            done = st;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(done["state"], "complete", "{done}");
    assert_eq!(done["percent"], 100.0);
    let report = &done["report"];
    // 300 bars a symbol: a year of warm-up, then the sessions with five sessions of future.
    assert!(report["days"].as_array().unwrap().len() > 20, "{report}");
    assert_eq!(report["summaries"].as_array().unwrap().len(), 2);
    assert!(report["summary"]["portfolio"]["equity"].is_array());
    let (_, list) = call(&app, "GET", "/api/v1/backtests", None, None).await;
    assert_eq!(list[0]["id"], done["id"]);
    assert!(list[0]["report"].is_null(), "the list leaves reports out");
    let (s, _) = call(&app, "POST", &format!("{url}/cancel"), None, None).await;
    assert_eq!(s, StatusCode::CONFLICT, "already ended");
    let (s, _) = call(&app, "GET", "/api/v1/backtests/nope", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    for body in [
        r#"{}"#,
        r#"{"where": "rsi_14 <"}"#,
        r#"{"preset": "gap_up", "horizons": [0]}"#,
        r#"{"preset": "gap_up", "from": "2026-05-01", "to": "2026-01-01"}"#,
    ] {
        let (s, v) = call(&app, "POST", "/api/v1/backtests", Some(body), None).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
    }

    let (s, v) = call(
        &app,
        "POST",
        "/api/v1/scans",
        Some(r#"{"as_of": "2026-06-01", "top": 0}"#),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    wait_done(&app, &id).await;
    let (_, page) = call(
        &app,
        "GET",
        &format!("/api/v1/scans/{id}/results?limit=100"),
        None,
        None,
    )
    .await;
    let rows = page["results"].as_array().unwrap();
    assert_eq!(rows.len(), 30);
    assert!(
        rows.iter().all(|r| r["date"] == "2026-06-01"),
        "{}",
        rows[0]["date"]
    );
}

/// The router nested under a prefix serves the page with a `<base>` at the prefix, its assets and its API
/// there. (axum's `nest("/technic", …)` answers `/technic`, not `/technic/`: an application that wants both
/// adds a redirect, as the user guide's "Embedding" shows.)
#[tokio::test]
async fn the_dashboard_can_be_mounted_under_a_prefix() {
    let app = axum::Router::new()
        .nest("/technic", router(state(5, None)))
        .route(
            "/technic/",
            axum::routing::get(|| async { axum::response::Redirect::permanent("/technic") }),
        );
    let (s, _) = call_text(&app, "/technic/").await;
    assert_eq!(s, StatusCode::PERMANENT_REDIRECT);
    for path in ["/technic"] {
        let (s, page) = call_text(&app, path).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        assert!(
            page.contains(r#"<base href="/technic/">"#),
            "{path}: {}",
            &page[..300.min(page.len())]
        );
    }
    let (s, js) = call_text(&app, "/technic/assets/app.js").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        js.contains("api/v1/") && !js.contains("'/api/v1"),
        "the page's API paths are relative"
    );
    let (s, _) = call_text(&app, "/technic/assets/lightweight-charts.js").await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call_text(&app, "/technic/api/v1/presets").await;
    assert_eq!(s, StatusCode::OK);
    // Mounted at the root, the base is the root.
    let (_, page) = call_text(&router(state(5, None)), "/").await;
    assert!(page.contains(r#"<base href="/">"#));
}

/// Indicator series for charts come from the core: the last values equal the symbol's snapshot, dates
/// match the bars, and bad names are 400.
#[tokio::test]
async fn indicator_series_for_charts() {
    let app = router(state(5, None));
    let sym = SyntheticProvider::new(SyntheticConfig {
        n_symbols: 5,
        n_bars: 300,
        ..SyntheticConfig::default()
    });
    let symbol = technic_core::DataProvider::universe(&sym).await.unwrap()[1]
        .symbol
        .to_string();
    let (s, v) = call(
        &app,
        "GET",
        &format!("/api/v1/symbols/{symbol}/series?names=sma_20,rsi_14,macd_hist,bb_upper"),
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, snap) = call(&app, "GET", &format!("/api/v1/symbols/{symbol}"), None, None).await;
    let (_, bars) = call(&app, "GET", &format!("/api/v1/symbols/{symbol}/bars"), None, None).await;
    let dates = v["dates"].as_array().unwrap();
    assert_eq!(dates.len(), bars["bars"].as_array().unwrap().len());
    for name in ["sma_20", "rsi_14", "macd_hist", "bb_upper"] {
        let series = v["series"][name].as_array().unwrap();
        assert_eq!(series.len(), dates.len());
        let last = series.last().unwrap().as_f64().unwrap();
        let want = snap["indicators"][name].as_f64().unwrap();
        assert!(
            (last - want).abs() <= 1e-9 * want.abs().max(1.0),
            "{name}: {last} vs {want}"
        );
    }
    assert!(v["series"]["sma_20"][0].is_null(), "undefined before 20 bars");
    let (s, v) = call(
        &app,
        "GET",
        &format!("/api/v1/symbols/{symbol}/series?names=sma_21"),
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["detail"].as_str().unwrap().contains("sma_20"), "{v}");
    let (s, _) = call(
        &app,
        "GET",
        &format!("/api/v1/symbols/{symbol}/series?names=sma_20&from=2026-05-01&to=2026-01-01"),
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}
