//! Hostile expressions over real HTTP on 127.0.0.1:0: a 1,500-term chain of each operator, sent to every
//! route that takes an expression, is a 422 naming the limit, and the server keeps answering.

use std::time::Duration;

use serde_json::{Value, json};

use crate::e2e::{http, start};

#[tokio::test]
async fn a_long_operator_chain_is_a_422_and_the_server_lives_on() {
    let (addr, _stop, _server) = start(20, Duration::ZERO).await;
    for op in ["+", "*", "-", "/"] {
        // 3 KB: under the 4,096-byte expression limit; once it overflowed a worker's stack.
        let chain = format!("close > 1{}", format!("{op}1").repeat(1500));
        assert!(chain.len() < 4096);
        let bodies = [
            ("/api/v1/scans", json!({ "where": chain })),
            ("/api/v1/screens", json!({ "name": "chain", "where": chain })),
            (
                "/api/v1/backtests",
                json!({ "where": chain, "from": "2025-01-02", "to": "2025-06-30" }),
            ),
        ];
        for (path, body) in bodies {
            let (status, text) = http(&addr, "POST", path, &body.to_string()).await;
            assert_eq!(status, 422, "{path} {op}: {text}");
            let v: Value = serde_json::from_str(&text).unwrap();
            let message = v.to_string();
            assert!(
                message.contains("64 levels deep"),
                "{path} {op}: the limit is named: {message}"
            );
        }
        let (status, _) = http(&addr, "GET", "/healthz", "").await;
        assert_eq!(status, 200, "the server still answers after {op}");
    }
}

/// Sends one request from `source` (a loopback address of its own) and returns the status line and
/// headers with the body.
async fn from(source: &str, addr: &str, method: &str, path: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(addr.parse().unwrap()).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .expect("an answer within 30 s")
        .unwrap();
    String::from_utf8_lossy(&raw).into_owned()
}

#[tokio::test]
async fn each_client_has_a_write_budget() {
    // 8 a minute: a burst of 2, then one every 7.5 s.
    let config = technic_http::ServerConfig {
        writes_per_minute_per_client: 8,
        ..technic_http::ServerConfig::default()
    };
    let (addr, _stop, _server) = crate::e2e::start_configured(20, Duration::ZERO, config).await;
    let save = |i: usize| json!({ "name": format!("s{i}"), "where": "rsi_14 < 30" }).to_string();
    for i in 0..2 {
        let answer = from("127.0.0.1", &addr, "POST", "/api/v1/screens", &save(i)).await;
        assert!(answer.starts_with("HTTP/1.1 20"), "{answer}");
    }
    let refused = from("127.0.0.1", &addr, "POST", "/api/v1/screens", &save(2)).await;
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    assert!(
        refused.to_ascii_lowercase().contains("retry-after: "),
        "{refused}"
    );
    assert!(refused.contains("at most 8 a minute per client"), "{refused}");
    // Reads are not counted; another client has its own budget.
    let read = from("127.0.0.1", &addr, "GET", "/api/v1/screens", "").await;
    assert!(read.starts_with("HTTP/1.1 200"), "{read}");
    let other = from("127.0.0.2", &addr, "POST", "/api/v1/screens", &save(3)).await;
    assert!(other.starts_with("HTTP/1.1 20"), "{other}");
}

/// A data provider on 127.0.0.1 that answers every request 500 with what it was sent (the request line
/// and every header) and the key in its URL- and form-encoded spellings, as a careless proxy might.
async fn echoing_provider(spellings: &'static [&'static str]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let body = format!("{} {}", String::from_utf8_lossy(&head), spellings.join(" "));
                let answer = format!(
                    "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_key_with_reserved_characters_never_reaches_an_api_answer() {
    const KEY: &str = "s3cr+t/K=y&x";
    static SPELLINGS: [&str; 4] = [
        "s3cr+t/K=y&x",
        "s3cr%2Bt%2FK%3Dy%26x",
        "s3cr%2bt%2fK%3dy%26x",
        "s3cr%252Bt%252FK%253Dy%2526x",
    ];
    let base = echoing_provider(&SPELLINGS).await;
    let http = technic_core::HttpProvider::new(technic_core::HttpConfig {
        rate_limit: technic_core::provider::RateLimit::none(),
        ..technic_core::HttpConfig::new(base, technic_core::provider::ApiKey::new(KEY))
    })
    .unwrap();
    let provider = technic_core::Resilient::wrap(
        std::sync::Arc::new(http),
        technic_core::RetryPolicy::none(),
        technic_core::BreakerConfig::default(),
    );
    let deps = technic_core::Deps::new(
        std::sync::Arc::new(provider),
        std::sync::Arc::new(technic_core::MemoryCache::default()),
    );
    let config = technic_http::ServerConfig {
        warm: None,
        ..technic_http::ServerConfig::default()
    };
    let app = technic_http::router(technic_http::AppState::new(deps, config));
    let mut answers = Vec::new();
    for path in [
        "/api/v1/symbols/AAA",
        "/api/v1/symbols/AAA/bars",
        "/api/v1/symbols/AAA/explain",
    ] {
        let (status, body) = crate::api::call(&app, "GET", path, None, None).await;
        assert!(
            status.is_client_error() || status.is_server_error(),
            "{path}: {status} {body}"
        );
        answers.push(body.to_string());
    }
    let (status, created) = crate::api::call(
        &app,
        "POST",
        "/api/v1/scans",
        Some(r#"{"symbols": ["AAA", "BBB"]}"#),
        None,
    )
    .await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let done = crate::api::wait_done(&app, &id).await;
    answers.push(done.to_string());
    let (_, results) =
        crate::api::call(&app, "GET", &format!("/api/v1/scans/{id}/results"), None, None).await;
    answers.push(results.to_string());
    let all = answers.join("\n");
    assert!(all.contains("500"), "the provider's failure is reported: {all}");
    // The echo reached the answers, scrubbed: the test would see a leak.
    assert!(all.contains("Bearer REDACTED"), "{all}");
    for spelled in SPELLINGS {
        assert!(!all.contains(spelled), "{spelled} in an answer:\n{all}");
    }
    assert!(
        !all.to_lowercase().contains("s3cr"),
        "a spelling in an answer:\n{all}"
    );
}
