//! The web dashboard: one page (screener, symbol chart, backtest, cache & performance), served from assets
//! embedded in the binary, with TradingView's Lightweight Charts (Apache-2.0) vendored beside it. The page
//! only talks to this server's API, through URLs relative to where the router is mounted: the page's
//! `<base href>` is the path the router is nested at, so `Router::new().nest("/technic", router(state))`
//! serves a working dashboard at `/technic/`.

use axum::Router;
use axum::extract::NestedPath;
use axum::extract::rejection::NestedPathRejection;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::state::AppState;

const INDEX: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/style.css");
/// TradingView Lightweight Charts 5.2.1 (`lightweight-charts` on npm, Apache-2.0; licence beside it).
const CHARTS_JS: &str = include_str!("../assets/vendor/lightweight-charts.standalone.production.js");

/// `/`, `/assets/app.js`, `/assets/style.css`, `/assets/lightweight-charts.js`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route(
            "/assets/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/assets/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route(
            "/assets/lightweight-charts.js",
            get(|| async { asset("text/javascript; charset=utf-8", CHARTS_JS) }),
        )
}

/// The page, with `<base href>` set to where the router is mounted.
async fn index(nested: Result<NestedPath, NestedPathRejection>) -> impl IntoResponse {
    let prefix = nested
        .map(|n| n.as_str().trim_end_matches('/').to_owned())
        .unwrap_or_default();
    // The prefix comes from the application's own routing table, not from the request; escaped anyway.
    let base = format!("{}/", html_attr(&prefix));
    asset_owned("text/html; charset=utf-8", INDEX.replace("{{BASE}}", &base))
}

fn html_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The page loads nothing from elsewhere; say so to the browser too.
const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; connect-src 'self'";

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
        ],
        body,
    )
}

fn asset_owned(content_type: &'static str, body: String) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
        ],
        body,
    )
}
