//! End to end on 127.0.0.1:0: a scan followed over Server-Sent Events to completion, a cancelled scan,
//! and a graceful shutdown that cancels running scans. The client is a minimal HTTP/1.1 reader so the
//! test sees exactly the bytes the server sends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;
use technic_core::{
    Bars, DataProvider, DateRange, Deps, MemoryCache, Symbol, SyntheticConfig, SyntheticProvider, Universe,
};
use technic_http::{AppState, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Synthetic data that takes `delay` per symbol, so progress can be watched.
#[derive(Debug)]
pub struct SlowProvider {
    inner: SyntheticProvider,
    delay: Duration,
}

#[async_trait]
impl DataProvider for SlowProvider {
    fn name(&self) -> &str {
        "slow-synthetic"
    }
    fn is_demo(&self) -> bool {
        true
    }
    fn default_range(&self, expected: chrono::NaiveDate) -> DateRange {
        self.inner.default_range(expected)
    }
    async fn universe(&self) -> technic_core::Result<Universe> {
        self.inner.universe().await
    }
    async fn daily_bars(&self, symbol: &Symbol, range: DateRange) -> technic_core::Result<Bars> {
        tokio::time::sleep(self.delay).await;
        self.inner.daily_bars(symbol, range).await
    }
}

pub(crate) async fn start(
    n_symbols: usize,
    delay: Duration,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    start_configured(n_symbols, delay, ServerConfig::default()).await
}

/// [`start`] with `config`.
pub(crate) async fn start_configured(
    n_symbols: usize,
    delay: Duration,
    config: ServerConfig,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let inner = SyntheticProvider::new(SyntheticConfig {
        n_symbols,
        n_bars: 260,
        ..SyntheticConfig::default()
    });
    let deps = Deps::new(
        Arc::new(SlowProvider { inner, delay }),
        Arc::new(MemoryCache::default()),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        technic_http::serve(listener, AppState::new(deps, config), async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (addr, tx, server)
}

/// Sends one request and returns (status, body) with chunked encoding undone.
pub(crate) async fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut raw))
        .await
        .expect("response within 60 s")
        .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Parses an SSE body into (event name, JSON data) pairs.
fn sse_events(body: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for block in body.split("\n\n") {
        let mut name = "message".to_owned();
        let mut data = String::new();
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                name = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            }
        }
        if !data.is_empty() {
            out.push((name, serde_json::from_str(&data).unwrap()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_follows_a_scan_to_completion() {
    let (addr, stop, server) = start(300, Duration::from_millis(2)).await;
    let (status, created) = http(&addr, "POST", "/api/v1/scans", r#"{"top": 10}"#).await;
    assert_eq!(status, 202, "{created}");
    let created: Value = serde_json::from_str(&created).unwrap();
    let (status, body) = http(&addr, "GET", created["events_url"].as_str().unwrap(), "").await;
    assert_eq!(status, 200);
    let events = sse_events(&body);
    assert!(events.len() >= 5, "too few events: {}", events.len());
    let percents: Vec<f64> = events
        .iter()
        .map(|(_, e)| e["overall_percent"].as_f64().unwrap())
        .collect();
    assert!(
        percents.windows(2).all(|w| w[1] >= w[0]),
        "progress went backwards: {percents:?}"
    );
    assert!(events[..events.len() - 1].iter().all(|(n, _)| n == "progress"));
    let (name, last) = events.last().unwrap();
    assert_eq!(name, "complete");
    assert_eq!(last["overall_percent"], 100.0);
    assert_eq!(last["processed"], last["total"]);
    assert_eq!(last["counts"]["scanned"], 300);
    let stages: Vec<&str> = events.iter().map(|(_, e)| e["stage"].as_str().unwrap()).collect();
    // Stages only move forward. Symbols are scored while bars arrive, so the scanning stage (what is
    // left to score once the last bars are in) can be too short for a follower to see.
    let order = [
        "initializing",
        "loading_universe",
        "fetching_data",
        "scanning",
        "finalizing",
        "complete",
    ];
    let positions: Vec<usize> = stages
        .iter()
        .map(|s| order.iter().position(|o| o == s).unwrap_or(usize::MAX))
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] <= w[1]) && !positions.contains(&usize::MAX),
        "{stages:?}"
    );
    assert!(stages.contains(&"fetching_data"), "{stages:?}");

    let (status, results) = http(&addr, "GET", created["results_url"].as_str().unwrap(), "").await;
    assert_eq!(status, 200);
    let results: Value = serde_json::from_str(&results).unwrap();
    assert_eq!(results["results"].as_array().unwrap().len(), 10);
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_scan_ends_its_event_stream_promptly() {
    let (addr, stop, server) = start(2000, Duration::from_millis(20)).await;
    let (_, created) = http(&addr, "POST", "/api/v1/scans", "{}").await;
    let created: Value = serde_json::from_str(&created).unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let events_url = created["events_url"].as_str().unwrap().to_owned();
    let addr2 = addr.clone();
    let follower = tokio::spawn(async move { http(&addr2, "GET", &events_url, "").await });
    // Wait until fetching has made progress, then cancel.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, s) = http(&addr, "GET", &format!("/api/v1/scans/{id}"), "").await;
        let s: Value = serde_json::from_str(&s).unwrap();
        if s["stage"] == "fetching_data" && s["processed"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "scan never started fetching: {s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent = Instant::now();
    let (status, _) = http(&addr, "POST", &format!("/api/v1/scans/{id}/cancel"), "").await;
    assert_eq!(status, 202);
    let (_, body) = follower.await.unwrap();
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "stream did not end after cancel"
    );
    let events = sse_events(&body);
    let (name, last) = events.last().unwrap();
    assert_eq!(name, "cancelled");
    assert!(last["overall_percent"].as_f64().unwrap() < 100.0);
    let (status, _) = http(&addr, "GET", &format!("/api/v1/scans/{id}/results"), "").await;
    assert_eq!(status, 200, "a cancelled scan still has its partial results");
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cancels_running_scans_and_returns() {
    let (addr, stop, server) = start(2000, Duration::from_millis(50)).await;
    let (_, created) = http(&addr, "POST", "/api/v1/scans", "{}").await;
    assert!(created.contains("\"id\""));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = Instant::now();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server stops")
        .unwrap();
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(
        TcpStream::connect(&addr).await.is_err(),
        "still listening after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_scans_all_complete() {
    // A hundred clients, all on 127.0.0.1 here: the per-client connection share is off so that one
    // address may stand for them all (the fairness tests cover the share).
    let config = ServerConfig {
        max_connections_per_client: 0,
        writes_per_minute_per_client: 0,
        ..ServerConfig::default()
    };
    let (addr, stop, server) = start_configured(40, Duration::ZERO, config).await;
    let ids: Vec<String> = futures::future::join_all((0..100).map(|_| {
        let addr = addr.clone();
        async move {
            let (status, body) = http(&addr, "POST", "/api/v1/scans", r#"{"top": 5}"#).await;
            assert_eq!(status, 202, "{body}");
            serde_json::from_str::<Value>(&body).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    }))
    .await;
    for id in &ids {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, s) = http(&addr, "GET", &format!("/api/v1/scans/{id}"), "").await;
            let s: Value = serde_json::from_str(&s).unwrap();
            if s["state"] != "running" {
                assert_eq!(s["state"], "complete", "{s}");
                break;
            }
            assert!(Instant::now() < deadline, "scan {id} stuck: {s}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    stop.send(()).unwrap();
    server.await.unwrap();
}

/// A server on 127.0.0.1:0 with `config`; returns its address and a stop handle.
async fn start_with(config: ServerConfig) -> (String, tokio::sync::oneshot::Sender<()>) {
    let deps = Deps::new(
        Arc::new(SyntheticProvider::new(SyntheticConfig {
            n_symbols: 5,
            n_bars: 260,
            ..SyntheticConfig::default()
        })),
        Arc::new(MemoryCache::default()),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        technic_http::serve(listener, AppState::new(deps, config), async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (addr, tx)
}

/// Reads until the server closes the connection (or `limit` passes); returns what came and how long.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let started = std::time::Instant::now();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(limit, stream.read_to_end(&mut got)).await;
    (String::from_utf8_lossy(&got).into_owned(), started.elapsed())
}

#[tokio::test]
async fn half_sent_headers_are_cut_off_and_connections_are_capped() {
    let (addr, stop) = start_with(ServerConfig {
        header_read_timeout: Duration::from_millis(300),
        max_connections: 2,
        ..ServerConfig::default()
    })
    .await;
    // A client that starts a request and never finishes its headers.
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let (_, took) = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(
        took < Duration::from_secs(3),
        "a half-sent request held its connection for {took:?}"
    );

    // Two idle connections fill the cap; a third is closed at once; when they go, there is room again.
    let a = TcpStream::connect(&addr).await.unwrap();
    let b = TcpStream::connect(&addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut third = TcpStream::connect(&addr).await.unwrap();
    let _ = third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await;
    let (answer, _) = read_until_closed(&mut third, Duration::from_secs(2)).await;
    assert!(
        !answer.contains("200 OK"),
        "a connection over the cap was served: {answer}"
    );
    drop((a, b));
    // The idle ones are closed by the header timeout too; then a new one is served.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _) = http(&addr, "GET", "/healthz", "").await;
    assert_eq!(status, 200);
    let _ = stop.send(());
}
