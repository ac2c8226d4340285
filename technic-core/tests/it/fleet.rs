//! Fleet parts against a real Redis: the machine's on 127.0.0.1:6379 (each test in its own key namespace),
//! or a `redis-server` a test starts on a free port to stop it. Without Redis these tests print a visible
//! SKIPPED line, unless `CI` is set: then they fail.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use technic_core::cache::{BarsKey, Cache, MemoryCache, TieredCache};
use technic_core::fleet::{LeaderLease, RedisLink, ScanBus, SharedRateLimit};
use technic_core::model::{Bar, Bars, DateRange, Symbol};

const REDIS: &str = "redis://127.0.0.1:6379";

fn namespace() -> String {
    format!("test-{}:", uuid::Uuid::now_v7())
}

/// The shared Redis, or `None` (skip) — failing under CI.
async fn shared(ns: &str) -> Option<Arc<RedisLink>> {
    let link = RedisLink::open(REDIS, ns).await.expect("a Redis URL");
    if link.degraded().is_none() {
        return Some(link);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "CI is set but Redis is not reachable at {REDIS}: {:?}",
            link.degraded()
        );
    }
    println!("SKIPPED: Redis not reachable at {REDIS} ({:?})", link.degraded());
    None
}

/// A `redis-server` of the test's own, on a free port; killed on drop.
struct OwnRedis {
    child: Child,
    port: u16,
}

impl OwnRedis {
    fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = Command::new("redis-server")
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
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Self { child, port })
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn bars(n: usize) -> Arc<Bars> {
    let d0 = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    let v: Vec<Bar> = (0..n)
        .map(|i| Bar {
            date: d0 + chrono::Days::new(i as u64),
            open: 10.0 + i as f64,
            high: 11.0 + i as f64,
            low: 9.0 + i as f64,
            close: 10.5 + i as f64,
            volume: 1000.0 * i as f64,
        })
        .collect();
    Arc::new(Bars::from_bars(&v))
}

fn key(sym: &str) -> BarsKey {
    let d0 = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    BarsKey::new(
        Symbol::new(sym),
        DateRange::new(d0, d0 + chrono::Days::new(30)).unwrap(),
    )
}

fn tiered(link: &Arc<RedisLink>) -> TieredCache {
    TieredCache::new(MemoryCache::default(), link.clone(), "polygon:test")
}

/// Counts how often it was asked to load.
fn loader(calls: &Arc<AtomicUsize>, delay: Duration) -> technic_core::cache::Loader<'static> {
    let calls = calls.clone();
    Box::pin(async move {
        calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(delay).await;
        Ok(bars(20))
    })
}

#[tokio::test]
async fn a_symbol_loaded_by_one_server_costs_the_others_nothing() {
    let ns = namespace();
    let Some(link_a) = shared(&ns).await else { return };
    let link_b = RedisLink::open(REDIS, &ns).await.unwrap();
    let (a, b) = (tiered(&link_a), tiered(&link_b));
    let calls = Arc::new(AtomicUsize::new(0));
    let got = a
        .get_or_load(&key("AAA"), loader(&calls, Duration::ZERO))
        .await
        .unwrap();
    assert!(!got.is_hit());
    let from_b = b
        .get_or_load(&key("AAA"), loader(&calls, Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1, "B read A's value from Redis");
    assert_eq!(
        *from_b.into_bars(),
        *bars(20),
        "the value survives the round trip exactly"
    );
    let tiers = b.tiers();
    assert_eq!((tiers[1].name.as_str(), tiers[1].hits), ("redis", 1));
    assert!(b.degraded().is_none());
}

#[tokio::test]
async fn concurrent_misses_across_servers_load_once() {
    let ns = namespace();
    let Some(link) = shared(&ns).await else { return };
    let servers: Vec<TieredCache> = (0..3).map(|_| tiered(&link)).collect();
    let calls = Arc::new(AtomicUsize::new(0));
    let k = key("BBB");
    let loads = servers
        .iter()
        .map(|c| c.get_or_load(&k, loader(&calls, Duration::from_millis(300))));
    let results = futures::future::join_all(loads).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one provider load for three servers"
    );
}

#[tokio::test]
async fn without_redis_the_cache_answers_alone_and_says_so() {
    // Nothing listens on port 1: the link starts degraded, and every lookup still answers quickly.
    let link = RedisLink::open("redis://127.0.0.1:1", &namespace())
        .await
        .unwrap();
    assert!(link.degraded().unwrap().contains("127.0.0.1:1"));
    let cache = tiered(&link);
    let calls = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    for sym in ["A", "B", "C", "D"] {
        cache
            .get_or_load(&key(sym), loader(&calls, Duration::ZERO))
            .await
            .unwrap();
    }
    let again = cache
        .get_or_load(&key("A"), loader(&calls, Duration::ZERO))
        .await
        .unwrap();
    assert!(again.is_hit(), "memory still serves");
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a down Redis is skipped, not waited on: {:?}",
        started.elapsed()
    );
    assert!(!cache.tiers()[1].up);
}

#[tokio::test]
async fn redis_killed_mid_run_then_back() {
    let Some(mut redis) = OwnRedis::start() else {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but `redis-server` could not be started");
        }
        println!("SKIPPED: `redis-server` not available");
        return;
    };
    let url = redis.url();
    let link = RedisLink::open(&url, &namespace()).await.unwrap();
    assert!(link.degraded().is_none());
    let cache = tiered(&link);
    let calls = Arc::new(AtomicUsize::new(0));
    cache
        .get_or_load(&key("K1"), loader(&calls, Duration::ZERO))
        .await
        .unwrap();
    redis.kill();
    // Lookups keep answering (memory for what it holds, the loader for the rest), within bounds.
    let started = Instant::now();
    assert!(
        cache
            .get_or_load(&key("K1"), loader(&calls, Duration::ZERO))
            .await
            .unwrap()
            .is_hit()
    );
    cache
        .get_or_load(&key("K2"), loader(&calls, Duration::ZERO))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(link.degraded().is_some(), "the link says Redis is down");
    // Back on the same port: the link reconnects by itself after its back-off.
    let child = Command::new("redis-server")
        .args([
            "--port",
            &redis.port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
            "--bind",
            "127.0.0.1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    redis.child = child;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        cache.insert(key("K3"), bars(5)).await.unwrap();
        if link.degraded().is_none() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "did not reconnect: {:?}",
            link.degraded()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_fleet_shares_one_rate_limit() {
    let ns = namespace();
    let Some(link) = shared(&ns).await else { return };
    // Two servers, 20 calls a second for the fleet: 60 calls need at least (60 - burst 19) / 20 ≈ 2 s.
    let (a, b) = (
        Arc::new(SharedRateLimit::new(link.clone(), "polygon:test", 20)),
        Arc::new(SharedRateLimit::new(link.clone(), "polygon:test", 20)),
    );
    let started = Instant::now();
    let run = |l: Arc<SharedRateLimit>| async move {
        for _ in 0..30 {
            l.acquire().await;
        }
    };
    futures::future::join(run(a), run(b)).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1900),
        "60 calls at 20/s across the fleet took only {took:?}"
    );
}

#[tokio::test]
async fn one_leader_at_a_time_and_a_takeover_when_it_goes() {
    let ns = namespace();
    let Some(link) = shared(&ns).await else { return };
    let lease = Duration::from_millis(600);
    let a = LeaderLease::new(link.clone(), "warmer", lease);
    let b = LeaderLease::new(link.clone(), "warmer", lease);
    assert!(a.tick().await);
    assert!(!b.tick().await, "the lease is held");
    assert!(a.tick().await, "its holder renews it");
    // A stops renewing (its server died): B takes over once the lease runs out.
    let deadline = Instant::now() + Duration::from_secs(3);
    while !b.tick().await {
        assert!(Instant::now() < deadline, "no takeover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!a.tick().await, "the old holder no longer holds it");
}

#[tokio::test]
async fn scan_progress_is_visible_from_another_server() {
    use futures::StreamExt;
    let ns = namespace();
    let Some(link) = shared(&ns).await else { return };
    let other = RedisLink::open(REDIS, &ns).await.unwrap();
    let (a, b) = (ScanBus::new(link), ScanBus::new(other));
    let mut follow = Box::pin(b.follow("scan-1").await.expect("subscribe"));
    a.publish("scan-1", r#"{"state":"running"}"#).await;
    a.publish("scan-1", r#"{"state":"complete"}"#).await;
    let first = tokio::time::timeout(Duration::from_secs(2), follow.next())
        .await
        .unwrap()
        .unwrap();
    let second = tokio::time::timeout(Duration::from_secs(2), follow.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (first.as_str(), second.as_str()),
        (r#"{"state":"running"}"#, r#"{"state":"complete"}"#)
    );
    assert_eq!(
        b.status("scan-1").await.as_deref(),
        Some(r#"{"state":"complete"}"#)
    );
}

#[tokio::test]
async fn a_slow_redis_never_stalls_a_lookup_past_its_timeout() {
    let Some(redis) = OwnRedis::start() else {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but `redis-server` could not be started");
        }
        println!("SKIPPED: `redis-server` not available");
        return;
    };
    let link = RedisLink::open(&redis.url(), &namespace()).await.unwrap();
    let cache = tiered(&link);
    // Every client is paused for 3 s: Redis accepts commands and answers none.
    let pauser = RedisLink::open(&redis.url(), "").await.unwrap();
    let mut pause = redis::cmd("CLIENT");
    pause.arg("PAUSE").arg(3000).arg("ALL");
    assert_eq!(pauser.run::<String>(&pause).await.as_deref(), Some("OK"));
    let calls = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    cache
        .get_or_load(&key("SLOW"), loader(&calls, Duration::ZERO))
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the loader answered");
    assert!(
        took < Duration::from_millis(1500),
        "a paused Redis held the lookup for {took:?}"
    );
    assert!(link.degraded().is_some());
}
