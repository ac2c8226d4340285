//! Two servers as one fleet: A and B share Redis (the machine's, in a key namespace of their own) and a
//! PostgreSQL store (a schema of their own), over one counting provider. A scan started on A is followed
//! and read identically from B; a symbol A loaded costs B no provider request; with Redis gone both keep
//! serving and say they are degraded. Without Redis or PostgreSQL the test prints SKIPPED, unless `CI` is
//! set: then it fails.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::Value;
use technic_core::cache::{MemoryCache, TieredCache};
use technic_core::fleet::RedisLink;
use technic_core::{
    Bars, DataProvider, DateRange, Deps, Symbol, SyntheticConfig, SyntheticProvider, Universe,
};
use technic_http::{AppState, ServerConfig, router};

use crate::api::call;

/// The synthetic provider as a live source, counting `daily_bars` calls per symbol.
#[derive(Debug)]
struct Counting {
    inner: SyntheticProvider,
    calls: Mutex<HashMap<String, usize>>,
}

#[async_trait::async_trait]
impl DataProvider for Counting {
    fn name(&self) -> &str {
        "fleet-mock"
    }
    fn default_range(&self, expected: chrono::NaiveDate) -> DateRange {
        self.inner.default_range(expected)
    }
    async fn universe(&self) -> technic_core::Result<Universe> {
        self.inner.universe().await
    }
    async fn daily_bars(&self, symbol: &Symbol, range: DateRange) -> technic_core::Result<Bars> {
        *self.calls.lock().unwrap().entry(symbol.to_string()).or_default() += 1;
        self.inner.daily_bars(symbol, range).await
    }
}

async fn server(
    provider: Arc<Counting>,
    link: Arc<RedisLink>,
    store: Option<Arc<dyn technic_core::Store>>,
) -> AppState {
    let cache = TieredCache::new(MemoryCache::default(), link.clone(), "fleet-mock");
    let mut deps = Deps::new(provider, Arc::new(cache));
    if let Some(store) = store {
        deps = deps.with_store(store);
    }
    AppState::new(
        deps,
        ServerConfig {
            warm: None,
            ..ServerConfig::default()
        },
    )
    .with_fleet(link)
}

fn skip_or_fail(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("CI is set but {why}");
    }
    println!("SKIPPED fleet test: {why}");
}

/// A `redis-server` of the test's own on a free port (so the test can stop it); killed on drop.
struct OwnRedis(std::process::Child, u16);

impl OwnRedis {
    fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
                "--bind",
                "127.0.0.1",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Self(child, port))
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_scans_bars_and_survive_redis_going_away() {
    let ns = format!("fleet-{}:", uuid::Uuid::now_v7());
    let Some(mut redis) = OwnRedis::start() else {
        return skip_or_fail("`redis-server` could not be started");
    };
    let url = format!("redis://127.0.0.1:{}", redis.1);
    let link_a = RedisLink::open(&url, &ns).await.unwrap();
    if let Some(why) = link_a.degraded() {
        return skip_or_fail(&why);
    }
    let link_b = RedisLink::open(&url, &ns).await.unwrap();
    let Some(pg) = crate::pg::fresh_store().await else {
        return skip_or_fail("PostgreSQL is not reachable at 127.0.0.1:5432");
    };
    let provider = Arc::new(Counting {
        inner: SyntheticProvider::new(SyntheticConfig {
            n_symbols: 40,
            n_bars: 300,
            ..SyntheticConfig::default()
        }),
        calls: Mutex::new(HashMap::new()),
    });
    let a = router(server(provider.clone(), link_a.clone(), Some(pg.store.clone())).await);
    let b = router(server(provider.clone(), link_b.clone(), Some(pg.store.clone())).await);

    // A scan started on A: its status is readable on B while it runs and once it ends.
    let (s, created) = call(&a, "POST", "/api/v1/scans", Some(r#"{"top": 0}"#), None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let mut on_b = Value::Null;
    for _ in 0..200 {
        let (s, v) = call(&b, "GET", &format!("/api/v1/scans/{id}"), None, None).await;
        if s == StatusCode::OK && v["state"] == "complete" {
            on_b = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(on_b["state"], "complete", "B sees A's scan end: {on_b}");
    let (_, from_a) = call(
        &a,
        "GET",
        &format!("/api/v1/scans/{id}/results?limit=100"),
        None,
        None,
    )
    .await;
    let (_, from_b) = call(
        &b,
        "GET",
        &format!("/api/v1/scans/{id}/results?limit=100"),
        None,
        None,
    )
    .await;
    assert_eq!(
        from_a["results"], from_b["results"],
        "identical results from either server"
    );
    assert_eq!(from_b["results"].as_array().unwrap().len(), 40);

    // Every symbol was loaded once, by A: B's lookups cost the provider nothing.
    let before: usize = provider.calls.lock().unwrap().values().sum();
    assert_eq!(before, 40, "one load per symbol");
    let symbol = from_a["results"][0]["symbol"].as_str().unwrap().to_owned();
    let (s, _) = call(&b, "GET", &format!("/api/v1/symbols/{symbol}"), None, None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(&b, "POST", "/api/v1/scans", Some(r#"{"top": 5}"#), None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after: usize = provider.calls.lock().unwrap().values().sum();
    assert_eq!(after, before, "B read A's bars from Redis, not from the provider");
    let (_, m) = call(&b, "GET", "/api/v1/metrics/current", None, None).await;
    let tiers = m["cache"]["tiers"].as_array().unwrap();
    assert!(
        tiers
            .iter()
            .any(|t| t["name"] == "redis" && t["hits"].as_u64().unwrap() > 0),
        "{m}"
    );

    // The same request on B is answered with A's finished scan: no second scan, no provider request.
    let (s, again) = call(&b, "POST", "/api/v1/scans", Some(r#"{"top": 0}"#), None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{again}");
    assert_eq!(
        again["id"], created["id"],
        "the cached response names the same scan"
    );

    // Redis goes away: both servers keep answering from memory, the store and the provider, and their
    // health says degraded.
    redis.kill();
    for (name, server) in [("A", &a), ("B", &b)] {
        let (s, v) = call(server, "GET", &format!("/api/v1/symbols/{symbol}"), None, None).await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        let (s, v) = call(
            server,
            "GET",
            &format!("/api/v1/scans/{id}/results?limit=5"),
            None,
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{name}: history from the shared store: {v}");
        let (s, h) = call(server, "GET", "/healthz", None, None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(h["status"], "degraded", "{name}: {h}");
        assert!(h["degraded"][0].as_str().unwrap().contains("Redis"), "{h}");
        let (s, v) = call(server, "POST", "/api/v1/scans", Some(r#"{"top": 3}"#), None).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{name}: scans still start: {v}");
    }
    pg.drop_schema().await;
}

/// PostgreSQL down: scans still run (nothing saved), history answers 503 with a clear message.
#[tokio::test]
async fn postgres_down_scans_run_and_history_is_503() {
    let store = technic_core::PostgresStore::connect_lazy(
        "postgres://postgres@127.0.0.1:1/test",
        technic_core::PostgresOptions::default(),
    )
    .unwrap();
    let deps = Deps::new(
        Arc::new(SyntheticProvider::new(SyntheticConfig {
            n_symbols: 10,
            n_bars: 300,
            ..SyntheticConfig::default()
        })),
        Arc::new(MemoryCache::default()),
    )
    .with_store(Arc::new(store));
    let app = router(AppState::new(
        deps,
        ServerConfig {
            warm: None,
            ..ServerConfig::default()
        },
    ));
    let (s, created) = call(&app, "POST", "/api/v1/scans", Some(r#"{"top": 3}"#), None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let id = created["id"].as_str().unwrap().to_owned();
    let mut state = Value::Null;
    for _ in 0..300 {
        let (_, v) = call(&app, "GET", &format!("/api/v1/scans/{id}"), None, None).await;
        if v["state"] != "running" {
            state = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        state["state"], "complete",
        "the scan ran without its store: {state}"
    );
    let (s, v) = call(
        &app,
        "GET",
        "/api/v1/scans/00000000-0000-0000-0000-000000000000",
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(
        v["message"].as_str().unwrap().to_lowercase().contains("store")
            || v["detail"].as_str().unwrap().contains("127.0.0.1:1"),
        "{v}"
    );
}
