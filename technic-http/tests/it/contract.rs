//! The API's contract at its edges: the OpenAPI document names each operation once and states the rules
//! the handlers enforce; unknown paths and methods answer in the same JSON error shape as the rest; no
//! error quotes more than a short prefix of what the request sent.

use std::collections::HashSet;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use technic_http::router;
use tower::ServiceExt;

use crate::api::{call, state};

fn assert_error_shape(v: &Value, status: u16) {
    assert_eq!(v["status"], status, "{v}");
    for key in ["category", "message", "detail", "actions"] {
        assert!(!v[key].is_null(), "{key} missing in {v}");
    }
}

#[tokio::test]
async fn operation_ids_are_unique_and_rules_are_stated() {
    let app = router(state(5, Some("t0k")));
    let (_, doc) = call(&app, "GET", "/openapi.json", None, None).await;
    let mut ids = HashSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}: no id"));
            assert!(ids.insert(id.to_owned()), "operation id {id} twice");
        }
    }
    let param = |path: &str, name: &str| -> Value {
        let ps = doc["paths"][path]["get"]["parameters"].as_array().unwrap();
        ps.iter().find(|p| p["name"] == name).unwrap()["schema"].clone()
    };
    assert_eq!(
        param("/api/v1/symbols/{symbol}", "symbol")["pattern"],
        "^[A-Za-z0-9.-]{1,16}$"
    );
    assert_eq!(param("/api/v1/scans", "limit")["maximum"], 200);
    assert_eq!(param("/api/v1/scans", "limit")["minimum"], 0);
    assert_eq!(param("/api/v1/metrics/history", "minutes")["maximum"], 1440);
    assert!(
        param("/api/v1/scans/{id}/results", "sort")["enum"]
            .as_array()
            .unwrap()
            .contains(&Value::from("-tech_rating"))
    );
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["ScreenCreate"]["properties"]["name"]["pattern"],
        "^[A-Za-z0-9_-]{1,64}$"
    );
    for body in ["ScanCreate", "ScreenCreate", "BacktestCreate"] {
        assert_eq!(schemas[body]["properties"]["where"]["minLength"], 1, "{body}");
    }
    assert_eq!(
        schemas["BacktestCreate"]["properties"]["horizons"]["items"]["minimum"],
        1
    );
    // Bodies: optional for a scan (defaults), required for a screen and a backtest.
    let body = |path: &str| doc["paths"][path]["post"]["requestBody"]["required"].clone();
    assert_eq!(body("/api/v1/scans"), false);
    assert_eq!(body("/api/v1/screens"), true);
    assert_eq!(body("/api/v1/backtests"), true);
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
}

#[tokio::test]
async fn bounds_in_the_document_are_enforced_not_clamped() {
    let app = router(state(5, None));
    for uri in [
        "/api/v1/scans?limit=201",
        "/api/v1/metrics/history?minutes=1441",
        "/api/v1/scans/x/results?limit=10001",
        "/api/v1/symbols/%20AAPL",
        "/api/v1/symbols/AAPL%24/bars",
    ] {
        let (s, v) = call(&app, "GET", uri, None, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {v}");
        assert_error_shape(&v, 400);
    }
    let (s, _) = call(&app, "GET", "/api/v1/scans?limit=200", None, None).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn a_missing_required_body_is_refused() {
    let app = router(state(5, None));
    for path in ["/api/v1/screens", "/api/v1/backtests"] {
        let (s, v) = call(&app, "POST", path, None, None).await;
        assert!(s.is_client_error(), "{path}: {s} {v}");
        assert_error_shape(&v, s.as_u16());
    }
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_json_errors() {
    let app = router(state(5, None));
    let (s, v) = call(&app, "GET", "/api/v1/nope", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_error_shape(&v, 404);
    let req = Request::builder()
        .method("PUT")
        .uri("/api/v1/scans")
        .body(Body::empty())
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    let allow = res.headers()[header::ALLOW].to_str().unwrap().to_owned();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    assert!(
        res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_error_shape(&v, 405);
}

#[tokio::test]
async fn errors_quote_only_a_short_prefix_of_the_input() {
    let app = router(state(5, None));
    let key = "k".repeat(65_000);
    for uri in [
        format!("/api/v1/scans?{key}=1"),
        format!("/api/v1/scans/x/results?sort={key}"),
        format!("/api/v1/symbols/{key}"),
        format!("/api/v1/symbols/AAPL/series?names={key}"),
        format!("/api/v1/{key}"),
    ] {
        let req = Request::builder().uri(&uri).body(Body::empty()).unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert!(res.status().is_client_error(), "{}", res.status());
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        assert!(bytes.len() < 1024, "{} bytes answer {}", bytes.len(), &uri[..40]);
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(v["message"].is_string(), "{v}");
    }
    let body = format!(r#"{{"name": "a", "where": "close > 1", "{key}": 1}}"#);
    let (s, v) = call(&app, "POST", "/api/v1/screens", Some(&body), None).await;
    assert!(s.is_client_error(), "{s}");
    assert!(v.to_string().len() < 1024, "{} bytes", v.to_string().len());
}

#[tokio::test]
async fn whole_numbers_may_be_written_with_a_zero_fraction() {
    let app = router(state(5, None));
    let (s, v) = call(
        &app,
        "POST",
        "/api/v1/scans",
        Some(r#"{"top": 5.0, "filters": {"max_symbols": 3.0}}"#),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    for bad in [r#"{"top": 5.5}"#, r#"{"top": -1}"#, r#"{"top": 1e300}"#] {
        let (s, v) = call(&app, "POST", "/api/v1/scans", Some(bad), None).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
    }
}
