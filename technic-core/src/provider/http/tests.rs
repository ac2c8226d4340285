//! HttpProvider against a local wiremock server (127.0.0.1 only): pagination, status mapping, timeouts,
//! malformed bodies, the universe cache, limits, and the key kept out of every error.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::provider::{BreakerConfig, Resilient};
use crate::retry::{Jitter, RetryPolicy};

pub(crate) const KEY: &str = "sk-test-6b1f0c9e-secret";
/// The header every request carries the key in.
const BEARER: &str = "Bearer sk-test-6b1f0c9e-secret";

fn range() -> DateRange {
    let d = |s: &str| s.parse().unwrap();
    DateRange::new(d("2024-01-01"), d("2024-03-01")).unwrap()
}

/// `n` consecutive daily bars from 2024-01-02 (05:00 UTC, midnight in New York).
pub(crate) fn bars_json(n: usize, first_day: usize) -> Vec<Value> {
    (first_day..first_day + n)
        .map(|i| {
            let c = 100.0 + i as f64;
            json!({"t": 1_704_171_600_000i64 + i as i64 * 86_400_000, "o": c, "h": c + 1.0, "l": c - 1.0, "c": c, "v": 1000})
        })
        .collect()
}

fn config(server: &MockServer) -> HttpConfig {
    HttpConfig {
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(400),
        rate_limit: crate::provider::RateLimit::none(),
        ..HttpConfig::new(server.uri(), ApiKey::new(KEY))
    }
}

fn provider(server: &MockServer) -> HttpProvider {
    HttpProvider::new(config(server)).unwrap()
}

pub(crate) fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        multiplier: 2.0,
        max_delay: Duration::from_millis(10),
        max_retry_after: Duration::from_secs(2),
        jitter: Jitter::none(),
    }
}

fn resilient(server: &MockServer) -> Resilient {
    Resilient::wrap(
        Arc::new(provider(server)),
        fast_policy(),
        BreakerConfig::default(),
    )
}

fn aggs_path() -> &'static str {
    "/v2/aggs/ticker/AAA/range/1/day/2024-01-01/2024-03-01"
}

fn assert_no_key(e: &Error) {
    let text = format!("{e} {e:?} {}", e.user_message());
    assert!(!text.contains(KEY), "key leaked: {text}");
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn follows_next_url_sending_the_key_with_every_page() {
    let server = MockServer::start().await;
    let next = format!("{}/v2/aggs/cursor/abc?cursor=abc", server.uri());
    Mock::given(method("GET"))
        .and(path(aggs_path()))
        .and(header("authorization", BEARER))
        .and(query_param("adjusted", "true"))
        .and(query_param("sort", "asc"))
        .and(query_param("limit", "50000"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "OK", "results": bars_json(2, 0), "next_url": next})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/aggs/cursor/abc"))
        .and(query_param("cursor", "abc"))
        .and(header("authorization", BEARER))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"status": "OK", "results": bars_json(3, 2)})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let bars = provider(&server)
        .daily_bars(&Symbol::new("AAA"), range())
        .await
        .unwrap();
    assert_eq!(bars.len(), 5);
    assert_eq!(bars.date[0].to_string(), "2024-01-02");
    assert_eq!(bars.date[4].to_string(), "2024-01-06");
    assert_eq!(bars.close[4], 104.0);
    bars.validate().unwrap();
}

#[tokio::test]
async fn next_url_to_another_host_is_refused_without_sending_the_key() {
    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    let next = format!("{}/steal?cursor=1", elsewhere.uri());
    Mock::given(path(aggs_path()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "OK", "results": bars_json(1, 0), "next_url": next})),
        )
        .mount(&server)
        .await;
    let e = provider(&server)
        .daily_bars(&Symbol::new("AAA"), range())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidData { subject, .. } if subject == "AAA"),
        "{e:?}"
    );
    assert_eq!(requests(&elsewhere).await, 0);
}

#[tokio::test]
async fn rate_limited_429_with_retry_after_is_waited_out_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(path(aggs_path()))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path(aggs_path()))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"status": "OK", "results": bars_json(4, 0)})),
        )
        .mount(&server)
        .await;

    // The provider alone reports the 429 as back-pressure (transient) with the delay asked for.
    let e = provider(&server)
        .daily_bars(&Symbol::new("AAA"), range())
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Throttled { retry_after: Some(d), .. } if d == Duration::from_secs(1)),
        "{e:?}"
    );
    assert!(e.is_transient());
    assert_eq!(
        e.user_message(),
        "Data provider is limiting requests — waiting before retrying"
    );
    assert_no_key(&e);

    // Through the retry wrapper: waits the second asked for (more than the 1 ms backoff), then succeeds.
    Mock::given(path(aggs_path()))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let p = resilient(&server);
    let started = std::time::Instant::now();
    let bars = p.daily_bars(&Symbol::new("AAA"), range()).await.unwrap();
    assert_eq!(bars.len(), 4);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(p.stats().retries, 1);
    assert_eq!(p.stats().attempts, 2);
}

#[tokio::test]
async fn server_errors_twice_then_success_are_retried() {
    for status in [500, 502, 503] {
        let server = MockServer::start().await;
        Mock::given(path(aggs_path()))
            .respond_with(ResponseTemplate::new(status).set_body_string("upstream hiccup"))
            .up_to_n_times(2)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(path(aggs_path()))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"status": "OK", "results": bars_json(3, 0)})),
            )
            .mount(&server)
            .await;
        let p = resilient(&server);
        let bars = p.daily_bars(&Symbol::new("AAA"), range()).await.unwrap();
        assert_eq!(bars.len(), 3, "HTTP {status}");
        assert_eq!(p.stats().retries, 2, "HTTP {status}");
        assert_eq!(requests(&server).await, 3, "HTTP {status}");
    }
}

#[tokio::test]
async fn a_hung_response_hits_the_request_timeout() {
    let server = MockServer::start().await;
    Mock::given(path(aggs_path()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "OK", "results": bars_json(3, 0)}))
                .set_delay(Duration::from_secs(30)),
        )
        .mount(&server)
        .await;
    let started = std::time::Instant::now();
    let e = provider(&server)
        .daily_bars(&Symbol::new("AAA"), range())
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(e, Error::Unavailable { network: true, .. }), "{e:?}");
    assert!(e.detail().contains("timed out"), "{e}");
    assert!(
        e.detail().contains(aggs_path()) && !e.detail().contains("apiKey"),
        "the URL is shown, and it holds no key: {e}"
    );
    assert_eq!(e.user_message(), "Connection issue — retrying…");
    assert_no_key(&e);
}

#[tokio::test]
async fn a_refused_connection_is_a_transient_network_error() {
    // Bind then drop a listener: nothing listens on that port now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = HttpConfig {
        rate_limit: crate::provider::RateLimit::none(),
        ..HttpConfig::new(format!("http://127.0.0.1:{port}"), ApiKey::new(KEY))
    };
    let e = HttpProvider::new(cfg)
        .unwrap()
        .daily_bars(&Symbol::new("AAA"), range())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unavailable { network: true, .. }), "{e:?}");
    assert!(e.detail().contains("could not connect"), "{e}");
    assert_no_key(&e);
}

#[tokio::test]
async fn malformed_and_truncated_bodies_are_invalid_data_and_not_retried() {
    let bodies = [
        "this is not json".to_owned(),
        r#"{"status":"OK","results":[{"t":1704171600000,"o":1,"h":2,"l"#.to_owned(),
    ];
    for body in bodies {
        let server = MockServer::start().await;
        Mock::given(path(aggs_path()))
            .respond_with(ResponseTemplate::new(200).set_body_raw(body.clone(), "application/json"))
            .mount(&server)
            .await;
        let p = resilient(&server);
        let e = p.daily_bars(&Symbol::new("AAA"), range()).await.unwrap_err();
        assert!(
            matches!(&e, Error::InvalidData { subject, .. } if subject == "AAA"),
            "{e:?}"
        );
        assert_eq!(e.user_message(), "Invalid data for AAA — skipped");
        assert_eq!(requests(&server).await, 1, "permanent: no retry for {body}");
        assert_eq!(p.stats().retries, 0);
    }
}

#[tokio::test]
async fn empty_results_and_404_are_not_found_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(path(aggs_path()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "OK", "results": []})))
        .mount(&server)
        .await;
    Mock::given(path("/v2/aggs/ticker/ZZZZ/range/1/day/2024-01-01/2024-03-01"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"status": "NOT_FOUND"})))
        .mount(&server)
        .await;
    Mock::given(path("/v2/aggs/ticker/NORES/range/1/day/2024-01-01/2024-03-01"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "OK", "resultsCount": 0})))
        .mount(&server)
        .await;
    let p = resilient(&server);
    for sym in ["AAA", "ZZZZ", "NORES"] {
        let e = p.daily_bars(&Symbol::new(sym), range()).await.unwrap_err();
        assert!(
            matches!(&e, Error::NotFound { what } if what.contains(sym)),
            "{e:?}"
        );
        assert_no_key(&e);
    }
    assert_eq!(requests(&server).await, 3);
    assert_eq!(p.stats().retries, 0);
}

#[tokio::test]
async fn a_bad_key_is_rejected_once_with_a_clear_message() {
    let server = MockServer::start().await;
    Mock::given(path(aggs_path()))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"status": "ERROR", "error": format!("Unknown API Key {KEY}")})),
        )
        .mount(&server)
        .await;
    let p = resilient(&server);
    let e = p.daily_bars(&Symbol::new("AAA"), range()).await.unwrap_err();
    assert_eq!(e.user_message(), "Invalid API key: set POLYGON_API_KEY");
    assert!(e.detail().contains("HTTP 401"), "{e}");
    assert_no_key(&e);
    assert_eq!(requests(&server).await, 1, "no retry on 401");
}

#[tokio::test]
async fn universe_is_paginated_and_cached() {
    let server = MockServer::start().await;
    let next = format!("{}/v3/reference/tickers?cursor=p2", server.uri());
    Mock::given(path("/v3/reference/tickers"))
        .and(query_param("market", "stocks"))
        .and(query_param("active", "true"))
        .and(query_param("limit", "1000"))
        .and(header("authorization", BEARER))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "OK",
            "results": [{"ticker": "AAA", "name": "Alpha Inc"}, {"ticker": "bad ticker!", "name": "?"}],
            "next_url": next
        })))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(path("/v3/reference/tickers"))
        .and(query_param("cursor", "p2"))
        .and(header("authorization", BEARER))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "OK", "results": [{"ticker": "BBB", "name": "Beta Corp"}]
        })))
        .with_priority(1)
        .mount(&server)
        .await;
    let p = provider(&server);
    let u = p.universe().await.unwrap();
    let names: Vec<_> = u
        .iter()
        .map(|e| (e.symbol.as_str().to_owned(), e.name.clone()))
        .collect();
    assert_eq!(
        names,
        [
            ("AAA".to_owned(), "Alpha Inc".to_owned()),
            ("BBB".to_owned(), "Beta Corp".to_owned())
        ]
    );
    assert_eq!(p.universe().await.unwrap(), u);
    assert_eq!(
        requests(&server).await,
        2,
        "second call served from the day-long cache"
    );
}

#[tokio::test]
async fn outbound_rate_limit_spaces_requests() {
    let server = MockServer::start().await;
    Mock::given(path_regex("^/v2/aggs/"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"status": "OK", "results": bars_json(1, 0)})),
        )
        .mount(&server)
        .await;
    let p = HttpProvider::new(HttpConfig {
        rate_limit: crate::provider::RateLimit::per_second(20),
        ..config(&server)
    })
    .unwrap();
    let started = std::time::Instant::now();
    for _ in 0..30 {
        p.daily_bars(&Symbol::new("AAA"), range()).await.unwrap();
    }
    // A burst of 20, then 10 more at 20 per second: at least ~0.5 s.
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn connection_limit_bounds_requests_in_flight() {
    let server = MockServer::start().await;
    Mock::given(path_regex("^/v2/aggs/"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "OK", "results": bars_json(1, 0)}))
                .set_delay(Duration::from_millis(150)),
        )
        .mount(&server)
        .await;
    let p = HttpProvider::new(HttpConfig {
        max_connections: 2,
        ..config(&server)
    })
    .unwrap();
    let started = std::time::Instant::now();
    let sym = Symbol::new("AAA");
    let calls = (0..6).map(|_| p.daily_bars(&sym, range()));
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
    // Six 150 ms requests two at a time take three rounds.
    assert!(
        started.elapsed() >= Duration::from_millis(440),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn config_errors_and_redaction() {
    let e = HttpProvider::new(HttpConfig::new("http://127.0.0.1:1", ApiKey::new("  "))).unwrap_err();
    assert!(e.user_message().contains("POLYGON_API_KEY"), "{e}");
    let e = HttpProvider::new(HttpConfig::new("ftp://example", ApiKey::new(KEY))).unwrap_err();
    assert!(matches!(e, Error::Config { .. }));
    let url = Url::parse(&format!("http://h/x?a=1&apiKey={KEY}")).unwrap();
    assert_eq!(redact(&url), "http://h/x?a=1&apiKey=REDACTED");
    assert!(!format!("{:?}", HttpConfig::new("http://h", ApiKey::new(KEY))).contains(KEY));
}

/// A key with URL-reserved characters, and the spellings a server or library may echo it in.
const RESERVED_KEY: &str = "s3cr+t/K=y&x";
const RESERVED_SPELLINGS: [&str; 4] = [
    "s3cr+t/K=y&x",
    "s3cr%2Bt%2FK%3Dy%26x",
    "s3cr%2bt%2fK%3dy%26x",
    "s3cr%252Bt%252FK%253Dy%2526x",
];

/// A server that fails every request with 500 and echoes what it was sent: the path, the query and
/// every header, plus the key in each of its spellings, as a careless proxy's error page might.
struct Echo;

impl wiremock::Respond for Echo {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let headers: Vec<String> = request
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(v.as_bytes())))
            .collect();
        ResponseTemplate::new(500).set_body_string(format!(
            "{} {} {} {}",
            RESERVED_SPELLINGS.join(" "),
            request.url,
            headers.join("; "),
            RESERVED_SPELLINGS.join(" ")
        ))
    }
}

#[tokio::test]
async fn a_key_with_reserved_characters_travels_in_a_header_and_is_never_echoed() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(Echo).mount(&server).await;
    let config = HttpConfig {
        api_key: ApiKey::new(RESERVED_KEY),
        ..config(&server)
    };
    let p = HttpProvider::new(config).unwrap();
    let e = p.daily_bars(&Symbol::new("AAA"), range()).await.unwrap_err();
    let e2 = p.universe().await.unwrap_err();
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert!(
            !r.url.as_str().contains("apiKey") && !r.url.as_str().contains("s3cr"),
            "the key is not in the URL: {}",
            r.url
        );
        let auth = r.headers.get("authorization").expect("an Authorization header");
        assert_eq!(auth.as_bytes(), b"Bearer s3cr+t/K=y&x");
    }
    for e in [e, e2] {
        let text = format!("{e} | {e:?} | {} | {}", e.detail(), e.user_message());
        assert!(
            text.contains("HTTP 500"),
            "the error still says what happened: {text}"
        );
        for spelled in RESERVED_SPELLINGS {
            assert!(!text.contains(spelled), "{spelled} leaked: {text}");
        }
        assert!(!text.to_lowercase().contains("s3cr"), "a spelling leaked: {text}");
    }
}

#[test]
fn a_key_no_header_can_carry_is_a_configuration_error() {
    let e = HttpProvider::new(HttpConfig::new("http://127.0.0.1:1", ApiKey::new("ab\ncd"))).unwrap_err();
    assert!(matches!(e, Error::Config { .. }), "{e:?}");
    assert!(e.to_string().contains("POLYGON_API_KEY"), "{e}");
    assert!(!e.to_string().contains("ab\ncd"));
}

#[tokio::test]
async fn a_per_minute_rate_spaces_requests_evenly() {
    let server = MockServer::start().await;
    Mock::given(path_regex("^/v2/aggs/"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"status": "OK", "results": bars_json(1, 0)})),
        )
        .mount(&server)
        .await;
    // 300 a minute is one every 200 ms, with no burst: no minute ever holds more than 300.
    let p = HttpProvider::new(HttpConfig {
        rate_limit: crate::provider::RateLimit::parse("300/min").unwrap(),
        ..config(&server)
    })
    .unwrap();
    let started = std::time::Instant::now();
    for _ in 0..4 {
        p.daily_bars(&Symbol::new("AAA"), range()).await.unwrap();
    }
    assert!(
        started.elapsed() >= Duration::from_millis(580),
        "4 requests at one per 200 ms: {:?}",
        started.elapsed()
    );
}
