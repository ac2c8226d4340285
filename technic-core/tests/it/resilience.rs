//! Whole scans against a local mock of the Polygon API (wiremock on 127.0.0.1): permanent and transient
//! failures mixed in a 200-symbol scan, a dead provider tripping the circuit breaker, a bad key, stale
//! cached bars served when the provider is down, a failing cache bypassed with one warning, and the API
//! key absent from every log line, error and JSON report.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use technic_core::cache::{BarsKey, Lookup};
use technic_core::model::Bars;
use technic_core::provider::http::ApiKey;
use technic_core::{
    BreakerConfig, Cache, CacheStats, CancellationToken, DataProvider, Deps, Error, HttpConfig, HttpProvider,
    Jitter, MemoryCache, MemoryCacheConfig, NoopSink, Resilient, RetryPolicy, ScanReport, ScanRequest,
    Symbol, SyntheticConfig, SyntheticProvider, UniverseEntry, UniverseSelection, scan,
};
use wiremock::matchers::path_regex;
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "pk-integration-93e1d7c2-secret";
const CACHE_DOWN: &str = "Cache unavailable — running without caching";

/// `n` valid daily bars from 2024-01-02, varying with `seed` (80 end on Thursday 2024-03-21, where
/// [`request`]'s range ends, so results are as fresh as the range allows).
fn bars_json(n: usize, seed: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let c = 50.0 + seed as f64 * 0.1 + (i as f64 * 0.3).sin() * 2.0 + i as f64 * 0.05;
            json!({"t": 1_704_171_600_000i64 + i as i64 * 86_400_000, "o": c, "h": c + 1.0, "l": c - 1.0, "c": c, "v": 10_000 + i})
        })
        .collect()
}

fn ok_body(seed: usize) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"status": "OK", "results": bars_json(80, seed)}))
}

fn sym_path(sym: &str) -> String {
    format!("^/v2/aggs/ticker/{sym}/range/1/day/")
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        multiplier: 2.0,
        max_delay: Duration::from_millis(5),
        max_retry_after: Duration::from_millis(50),
        jitter: Jitter::none(),
    }
}

fn http(server: &MockServer, breaker: BreakerConfig) -> Arc<Resilient> {
    let config = HttpConfig {
        request_timeout: Duration::from_secs(5),
        rate_limit: technic_core::provider::RateLimit::none(),
        ..HttpConfig::new(server.uri(), ApiKey::new(KEY))
    };
    Arc::new(Resilient::wrap(
        Arc::new(HttpProvider::new(config).unwrap()),
        policy(),
        breaker,
    ))
}

fn request(symbols: &[String]) -> ScanRequest {
    ScanRequest {
        universe: UniverseSelection::Entries(
            symbols
                .iter()
                .map(|s| UniverseEntry::bare(Symbol::new(s)))
                .collect(),
        ),
        top: None,
        range: Some(
            technic_core::DateRange::new("2024-01-01".parse().unwrap(), "2024-03-21".parse().unwrap())
                .unwrap(),
        ),
        fetch_concurrency: 8,
        ..ScanRequest::default()
    }
}

/// A `tracing` subscriber at trace level writing into a buffer, installed for the current thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let sink = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn assert_no_key(report: &ScanReport) {
    let json = serde_json::to_string(report).unwrap();
    assert!(!json.contains(KEY), "key in the JSON report");
}

#[tokio::test]
async fn two_hundred_symbols_with_permanent_and_transient_failures() {
    let logs = Captured::default();
    let _guard = logs.install();
    let server = MockServer::start().await;
    let symbols: Vec<String> = (0..200).map(|i| format!("S{i:03}")).collect();
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for (i, sym) in symbols.iter().enumerate() {
        let mock = Mock::given(path_regex(sym_path(sym)));
        match i % 10 {
            // 10 % fail permanently, four ways.
            0 => {
                let template = match (i / 10) % 4 {
                    0 => ResponseTemplate::new(404).set_body_json(json!({"status": "NOT_FOUND"})),
                    1 => ResponseTemplate::new(200)
                        .set_body_raw("{\"status\":\"OK\",\"results\":[{\"t\":17", "application/json"),
                    2 => ResponseTemplate::new(200).set_body_json(json!({"status": "OK", "results": []})),
                    _ => {
                        let mut rows = bars_json(80, i);
                        rows[10]["h"] = json!(1.0); // high < low
                        ResponseTemplate::new(200).set_body_json(json!({"status": "OK", "results": rows}))
                    }
                };
                mock.respond_with(template).mount(&server).await;
                bad.push(sym.clone());
            }
            // 20 % fail transiently once (503, 502 or 429), then succeed.
            1 | 2 => {
                let status = [503, 502, 429][i % 3];
                Mock::given(path_regex(sym_path(sym)))
                    .respond_with(ResponseTemplate::new(status))
                    .up_to_n_times(1)
                    .with_priority(1)
                    .mount(&server)
                    .await;
                mock.respond_with(ok_body(i)).mount(&server).await;
                good.push(sym.clone());
            }
            _ => {
                mock.respond_with(ok_body(i)).mount(&server).await;
                good.push(sym.clone());
            }
        }
    }
    // Successes interleave with the transient failures, but concurrency can line several up; a high
    // threshold keeps this test about retries, not the breaker.
    let breaker = BreakerConfig {
        min_calls: 1000,
        cool_down: Duration::from_secs(1),
        ..BreakerConfig::default()
    };
    let deps = Deps::new(http(&server, breaker), Arc::new(MemoryCache::default()));
    let report = scan(&request(&symbols), &deps, &NoopSink, CancellationToken::new())
        .await
        .unwrap();

    let mut scored: Vec<_> = report.results.iter().map(|r| r.symbol.to_string()).collect();
    scored.sort();
    assert_eq!(scored, good, "every good symbol is in the results");
    let mut skipped: Vec<_> = report.skipped.iter().map(|s| s.symbol.to_string()).collect();
    skipped.sort();
    assert_eq!(skipped, bad, "every bad symbol is skipped");
    for s in &report.skipped {
        let i: usize = s.symbol.as_str()[1..].parse().unwrap();
        let expected = match (i / 10) % 4 {
            0 => "Not found: symbol",
            1 => "malformed JSON",
            2 => "Not found: symbol",
            _ => "invalid data in",
        };
        assert!(s.reason.contains(expected), "{}: {}", s.symbol, s.reason);
        assert!(
            s.reason.contains(s.symbol.as_str()),
            "reason names the symbol: {}",
            s.reason
        );
        assert_eq!(
            s.reason.to_lowercase().matches("not found").count(),
            usize::from(expected.starts_with("Not found")),
            "each cause said once: {}",
            s.reason
        );
    }
    assert_eq!(report.retries, 40, "one retry per transient symbol");
    assert_eq!(report.provider_calls.attempts, 240);
    assert_eq!(report.stale, 0);
    assert!(report.results.iter().all(|r| !r.stale));

    // The key is nowhere: not in logs at trace level, not in skip reasons, not in the JSON.
    let log = logs.text();
    assert!(
        log.contains("GET http://127.0.0.1"),
        "the capture saw the requests:\n{log}"
    );
    assert!(log.contains("retrying"), "retries are logged");
    assert!(!log.contains(KEY), "key in the logs");
    assert_no_key(&report);
}

#[tokio::test]
async fn a_dead_provider_opens_the_breaker_and_the_scan_fails_in_one_line() {
    let logs = Captured::default();
    let _guard = logs.install();
    let server = MockServer::start().await;
    Mock::given(path_regex("^/v2/aggs/"))
        .respond_with(ResponseTemplate::new(503).set_body_string("maintenance"))
        .mount(&server)
        .await;
    let breaker = BreakerConfig {
        min_calls: 5,
        cool_down: Duration::from_secs(60),
        ..BreakerConfig::default()
    };
    let provider = http(&server, breaker);
    let deps = Deps::new(provider.clone(), Arc::new(MemoryCache::default()));
    let symbols: Vec<String> = (0..100).map(|i| format!("D{i:03}")).collect();
    let mut req = request(&symbols);
    req.fetch_concurrency = 4;
    let e = scan(&req, &deps, &NoopSink, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::CircuitOpen { .. }), "{e:?}");
    assert_eq!(
        e.user_message(),
        "Data provider unavailable — too many failures, pausing requests"
    );
    let sent = server.received_requests().await.unwrap().len();
    // Without the breaker: 300 requests. With it: the five logical calls (three attempts each) that open
    // it, plus what was already in flight.
    assert!(sent <= (5 + 4) * 3, "{sent} requests reached a dead provider");
    assert!(provider.stats().short_circuited >= 90);
    assert!(!logs.text().contains(KEY));
    assert!(!format!("{e} {e:?}").contains(KEY));
}

#[tokio::test]
async fn a_bad_key_stops_the_scan_with_one_clear_message() {
    let server = MockServer::start().await;
    Mock::given(path_regex("^/v2/aggs/"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"status": "ERROR", "error": "Unknown API Key"})),
        )
        .mount(&server)
        .await;
    let deps = Deps::new(
        http(&server, BreakerConfig::default()),
        Arc::new(MemoryCache::default()),
    );
    let symbols: Vec<String> = (0..50).map(|i| format!("K{i:02}")).collect();
    let mut req = request(&symbols);
    req.fetch_concurrency = 2;
    let e = scan(&req, &deps, &NoopSink, CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(e.user_message(), "Invalid API key: set POLYGON_API_KEY");
    let sent = server.received_requests().await.unwrap().len();
    assert!(
        sent <= 2,
        "no retries and no further symbols after a 401: {sent} requests"
    );
}

#[tokio::test]
async fn provider_down_serves_stale_cached_bars_marked_stale() {
    let server = MockServer::start().await;
    Mock::given(path_regex("^/v2/aggs/"))
        .respond_with(ok_body(1))
        .mount(&server)
        .await;
    let cache = Arc::new(MemoryCache::new(MemoryCacheConfig {
        ttl: Duration::from_millis(1),
        ..MemoryCacheConfig::default()
    }));
    // 27 transient failures would open the default breaker before C9's request and serve it stale too;
    // this test is about the stale fallback, so the breaker stays closed.
    let breaker = BreakerConfig {
        min_calls: 1000,
        cool_down: Duration::from_secs(1),
        ..BreakerConfig::default()
    };
    let deps = Deps::new(http(&server, breaker), cache);
    let symbols: Vec<String> = (0..10).map(|i| format!("C{i}")).collect();
    let fresh = scan(&request(&symbols), &deps, &NoopSink, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!((fresh.scanned, fresh.stale), (10, 0));

    tokio::time::sleep(Duration::from_millis(5)).await;
    server.reset().await;
    Mock::given(path_regex("^/v2/aggs/"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    Mock::given(path_regex("^/v2/aggs/ticker/C9/"))
        .respond_with(ResponseTemplate::new(404))
        .with_priority(1)
        .mount(&server)
        .await;
    let stale = scan(&request(&symbols), &deps, &NoopSink, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(stale.scanned, 9);
    assert_eq!(stale.stale, 9);
    assert!(stale.results.iter().all(|r| r.stale));
    // An unknown symbol is not a provider outage: it is skipped, not served stale.
    assert_eq!(stale.skipped.len(), 1);
    assert_eq!(stale.skipped[0].symbol.as_str(), "C9");
    let json = serde_json::to_value(&stale).unwrap();
    assert_eq!(json["results"][0]["stale"], true);
    assert_eq!(json["stale"], 9);
}

/// A cache whose every operation fails, counting the calls that reach it.
#[derive(Debug, Default)]
struct BrokenCache {
    calls: std::sync::atomic::AtomicUsize,
}

impl BrokenCache {
    fn fail<T>(&self) -> technic_core::Result<T> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Err(Error::Cache {
            detail: "connection refused by cache server".into(),
        })
    }
}

#[async_trait]
impl Cache for BrokenCache {
    async fn get(&self, _: &BarsKey) -> technic_core::Result<Option<Arc<Bars>>> {
        self.fail()
    }
    async fn get_stale(&self, _: &BarsKey) -> technic_core::Result<Option<Arc<Bars>>> {
        self.fail()
    }
    async fn insert(&self, _: BarsKey, _: Arc<Bars>) -> technic_core::Result<()> {
        self.fail()
    }
    async fn remove(&self, _: &BarsKey) -> technic_core::Result<bool> {
        self.fail()
    }
    async fn clear(&self) -> technic_core::Result<()> {
        self.fail()
    }
    fn stats(&self) -> CacheStats {
        CacheStats::default()
    }
    fn time_to_live(&self, _: &BarsKey) -> Option<Duration> {
        None
    }
    async fn get_or_load(
        &self,
        _: &BarsKey,
        _: technic_core::cache::Loader<'_>,
    ) -> technic_core::Result<Lookup> {
        self.fail()
    }
}

#[tokio::test]
async fn a_failing_cache_is_bypassed_with_one_warning() {
    let logs = Captured::default();
    let _guard = logs.install();
    let provider: Arc<dyn DataProvider> = Arc::new(SyntheticProvider::new(SyntheticConfig {
        n_symbols: 60,
        ..SyntheticConfig::default()
    }));
    let cache = Arc::new(BrokenCache::default());
    let deps = Deps::new(provider, cache.clone());
    let report = scan(
        &ScanRequest {
            top: None,
            fetch_concurrency: 1,
            ..ScanRequest::default()
        },
        &deps,
        &NoopSink,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(report.scanned, 60);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(report.warnings, [CACHE_DOWN]);
    assert_eq!(logs.text().matches(CACHE_DOWN).count(), 1, "{}", logs.text());
    assert_eq!(
        cache.calls.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the cache is not called again once it failed"
    );
}

#[tokio::test]
async fn a_scan_fails_for_an_unavailable_provider_only_when_every_symbol_failed_that_way() {
    let server = MockServer::start().await;
    Mock::given(path_regex("^/v2/aggs/"))
        .respond_with(ResponseTemplate::new(502))
        .mount(&server)
        .await;
    let breaker = BreakerConfig {
        min_calls: 1000,
        cool_down: Duration::from_secs(1),
        ..BreakerConfig::default()
    };
    let deps = Deps::new(http(&server, breaker), Arc::new(MemoryCache::default()));
    let symbols: Vec<String> = (0..6).map(|i| format!("U{i}")).collect();
    let e = scan(&request(&symbols), &deps, &NoopSink, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert_eq!(
        e.final_message(),
        "Data provider temporarily unavailable — try again later"
    );

    // One unknown symbol among them: the failures are not all the provider's, so the scan completes
    // and lists every symbol as skipped with its own reason.
    Mock::given(path_regex("^/v2/aggs/ticker/U0/"))
        .respond_with(ResponseTemplate::new(404))
        .with_priority(1)
        .mount(&server)
        .await;
    let report = scan(&request(&symbols), &deps, &NoopSink, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.scanned, 0);
    assert_eq!(report.skipped.len(), 6);
    let u0 = report.skipped.iter().find(|s| s.symbol.as_str() == "U0").unwrap();
    assert!(u0.reason.starts_with("Not found"), "{}", u0.reason);
    let u1 = report.skipped.iter().find(|s| s.symbol.as_str() == "U1").unwrap();
    assert!(u1.reason.contains("HTTP 502"), "{}", u1.reason);
    assert_eq!(
        report.retries, 10,
        "two retries for each of the five unavailable symbols"
    );
}

/// Fails the first `fail_times` requests for each symbol with `status` (and `Retry-After: 1` on 429),
/// for the symbols whose number is below `n_failing`; then serves bars.
#[derive(Debug)]
struct FailsFirst {
    status: u16,
    fail_times: u32,
    n_failing: usize,
    seen: Mutex<std::collections::HashMap<String, u32>>,
}

impl wiremock::Respond for FailsFirst {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let sym = request
            .url
            .path()
            .split('/')
            .nth(4)
            .unwrap_or_default()
            .to_owned();
        let idx: usize = sym[1..].parse().unwrap_or(usize::MAX);
        let mut seen = self.seen.lock().unwrap();
        let n = seen.entry(sym).or_default();
        *n += 1;
        if idx < self.n_failing && *n <= self.fail_times {
            return ResponseTemplate::new(self.status)
                .insert_header("Retry-After", "1")
                .set_body_json(json!({"status": "ERROR", "error": "slow down"}));
        }
        ok_body(idx)
    }
}

async fn scan_with_failures(
    status: u16,
    fail_times: u32,
    n_failing: usize,
) -> (technic_core::ScanReport, usize) {
    let server = MockServer::start().await;
    Mock::given(path_regex("^/v2/aggs/"))
        .respond_with(FailsFirst {
            status,
            fail_times,
            n_failing,
            seen: Mutex::new(std::collections::HashMap::new()),
        })
        .mount(&server)
        .await;
    let deps = Deps::new(
        http(&server, BreakerConfig::default()),
        Arc::new(MemoryCache::default()),
    );
    let symbols: Vec<String> = (0..500).map(|i| format!("B{i:03}")).collect();
    let report = scan(&request(&symbols), &deps, &NoopSink, CancellationToken::new())
        .await
        .expect("the scan completes");
    let sent = server.received_requests().await.unwrap().len();
    (report, sent)
}

#[tokio::test]
async fn every_symbol_answering_429_once_is_retried_not_failed() {
    let (report, sent) = scan_with_failures(429, 1, 500).await;
    assert_eq!(
        (report.scanned, report.skipped.len()),
        (500, 0),
        "{:?}",
        report.skipped.first()
    );
    assert_eq!(report.retries, 500);
    assert_eq!(report.provider_calls.short_circuited, 0);
    assert_eq!(sent, 1000);
}

#[tokio::test]
async fn the_first_30_symbols_failing_twice_do_not_open_the_breaker() {
    let (report, sent) = scan_with_failures(503, 2, 30).await;
    assert_eq!(
        (report.scanned, report.skipped.len()),
        (500, 0),
        "{:?}",
        report.skipped.first()
    );
    assert_eq!(report.retries, 60);
    assert_eq!(report.provider_calls.short_circuited, 0);
    assert_eq!(sent, 560);
}
