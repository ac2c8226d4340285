//! The admin token over HTTP: with one configured, every state-changing route (every non-GET operation of
//! the OpenAPI document) answers 401 without it and works with it; reads stay open; an empty token is
//! refused by `serve` and, in a router built over it anyway, refuses every state change.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::Value;
use technic_core::{Deps, MemoryCache, SyntheticProvider};
use technic_http::{AppState, ServerConfig, router};

use crate::api::{call, state};

const TOKEN: &str = "s3cret-t0ken";

/// Every (method, path) of the document that changes state, with `{…}` filled in.
fn state_changing(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("operations").keys() {
            if ["post", "put", "patch", "delete"].contains(&method.as_str()) {
                let concrete = path.replace("{id}", "nope").replace("{name}", "nope");
                out.push((method.to_uppercase(), concrete));
            }
        }
    }
    out
}

#[tokio::test]
async fn every_state_changing_route_needs_the_token_when_one_is_configured() {
    let app = router(state(20, Some(TOKEN)));
    let (_, doc) = call(&app, "GET", "/openapi.json", None, None).await;
    let routes = state_changing(&doc);
    assert!(routes.len() >= 8, "{routes:?}");
    for (method, path) in &routes {
        for auth in [None, Some("wrong"), Some("")] {
            let (s, v) = call(&app, method, path, Some("{}"), auth).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {path} with {auth:?}: {v}");
            assert_eq!(v["status"], 401, "{v}");
            assert!(v["message"].as_str().unwrap().contains("admin token"), "{v}");
        }
        // The document says so.
        let op = &doc["paths"][path.replace("nope", "{id}").as_str()];
        let op = if op.is_null() {
            &doc["paths"][path.replace("nope", "{name}").as_str()]
        } else {
            op
        };
        let op = &op[method.to_lowercase().as_str()];
        assert_eq!(
            op["security"][0]["bearer"],
            serde_json::json!([]),
            "{method} {path}"
        );
        assert!(
            op["responses"]["401"].is_object(),
            "{method} {path}: 401 undocumented"
        );
    }
    // Reads stay open.
    for path in [
        "/api/v1/scans",
        "/api/v1/screens",
        "/api/v1/cache/stats",
        "/healthz",
    ] {
        let (s, _) = call(&app, "GET", path, None, None).await;
        assert_eq!(s, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn with_the_token_every_state_change_works() {
    let app = router(state(20, Some(TOKEN)));
    let t = Some(TOKEN);
    let (s, scan) = call(&app, "POST", "/api/v1/scans", Some("{}"), t).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{scan}");
    let id = scan["id"].as_str().unwrap();
    let (s, v) = call(&app, "POST", &format!("/api/v1/scans/{id}/cancel"), None, t).await;
    assert!(
        matches!(s, StatusCode::ACCEPTED | StatusCode::CONFLICT),
        "{s} {v}"
    );

    let (s, bt) = call(
        &app,
        "POST",
        "/api/v1/backtests",
        Some(r#"{"where": "close > 0"}"#),
        t,
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{bt}");
    let id = bt["id"].as_str().unwrap();
    let (s, v) = call(&app, "POST", &format!("/api/v1/backtests/{id}/cancel"), None, t).await;
    assert!(matches!(s, StatusCode::OK | StatusCode::CONFLICT), "{s} {v}");

    let body = r#"{"name": "mine", "where": "rsi_14 < 30"}"#;
    let (s, v) = call(&app, "POST", "/api/v1/screens", Some(body), t).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = call(&app, "DELETE", "/api/v1/screens/mine", None, t).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");

    let (s, v) = call(&app, "POST", "/api/v1/cache/warm", None, t).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = call(&app, "DELETE", "/api/v1/cache", None, t).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn without_a_token_state_changes_stay_open_and_admin_routes_closed() {
    let app = router(state(20, None));
    let (s, v) = call(&app, "POST", "/api/v1/scans", Some("{}"), None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let (s, v) = call(&app, "DELETE", "/api/v1/cache", None, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
}

#[tokio::test]
async fn an_empty_token_is_refused_never_read_as_no_token() {
    for empty in ["", "  "] {
        let config = ServerConfig {
            admin_token: Some(empty.to_owned()),
            ..ServerConfig::default()
        };
        assert!(config.validate().is_err());
        let deps = Deps::new(
            std::sync::Arc::new(SyntheticProvider::default()),
            std::sync::Arc::new(MemoryCache::default()),
        );
        let state = AppState::new(deps, config);
        // A router built over it anyway fails closed.
        let app = router(state.clone());
        for auth in [None, Some(""), Some(empty)] {
            let (s, v) = call(&app, "DELETE", "/api/v1/cache", None, auth).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
            let (s, v) = call(&app, "POST", "/api/v1/scans", Some("{}"), auth).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        }
        // And `serve` does not start.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let served = tokio::time::timeout(
            Duration::from_secs(5),
            technic_http::serve(listener, state, std::future::pending()),
        )
        .await
        .expect("serve returns at once");
        let err = served.expect_err("an empty token is refused");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("admin token is empty"), "{err}");
    }
}

#[tokio::test]
async fn a_refusal_names_the_bearer_scheme() {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;
    let app = router(state(5, Some(TOKEN)));
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/scans")
        .body(Body::empty())
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let challenge = res.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
}
