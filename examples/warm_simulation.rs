//! Replays a trading day of symbol lookups against a cache with and without the cache warmer, and
//! reports hit rate, response times and provider calls for both.
//!
//! Users pick symbols from a Zipf distribution (s = 1.1 over 5,000 symbols); the provider answers after a
//! realistic delay; entries live 5 minutes. Time is simulated (a paused tokio clock), so a 6.5-hour day
//! replays in seconds and the numbers are the same on every run.
//!
//! `cargo run --release --example warm_simulation [-- REQUESTS_PER_SECOND TOP_N]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use technic::cache::{BarsKey, MemoryCacheConfig};
use technic::provider::SplitMix64;
use technic::warm::{CacheWarmer, WarmerConfig};
use technic::{
    Bars, Cache, CancellationToken, DataProvider, DateRange, MemoryCache, Symbol, SymbolTracker,
    SyntheticConfig, SyntheticProvider, Universe,
};
use tokio::time::Instant;

const N_SYMBOLS: usize = 5_000;
const ZIPF_S: f64 = 1.1;
const DAY: Duration = Duration::from_secs(6 * 3600 + 1800);
const TTL: Duration = Duration::from_secs(300);
const SEED: u64 = 7;

/// Synthetic bars behind a simulated network: 40 ms plus up to 80 ms of jitter per call.
#[derive(Debug)]
struct SlowProvider {
    inner: SyntheticProvider,
    calls: AtomicU64,
    jitter: std::sync::Mutex<SplitMix64>,
}

#[async_trait]
impl DataProvider for SlowProvider {
    fn name(&self) -> &str {
        "simulated"
    }
    fn is_demo(&self) -> bool {
        true
    }
    fn default_range(&self, expected: chrono::NaiveDate) -> DateRange {
        self.inner.default_range(expected)
    }
    async fn universe(&self) -> technic::Result<Universe> {
        self.inner.universe().await
    }
    async fn daily_bars(&self, symbol: &Symbol, range: DateRange) -> technic::Result<Bars> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let extra = self.jitter.lock().map(|mut r| r.next_f64()).unwrap_or(0.5);
        tokio::time::sleep(Duration::from_millis(40) + Duration::from_secs_f64(0.08 * extra)).await;
        self.inner.daily_bars(symbol, range).await
    }
}

/// Cumulative Zipf weights over ranks 1..=n.
fn zipf_cdf(n: usize, s: f64) -> Vec<f64> {
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = (1..=n)
        .map(|k| {
            acc += 1.0 / (k as f64).powf(s);
            acc
        })
        .collect();
    for c in &mut cdf {
        *c /= acc;
    }
    cdf
}

struct Outcome {
    requests: u64,
    hits: u64,
    provider_calls: u64,
    p50_ms: f64,
    p95_ms: f64,
    scan_ms: Vec<f64>,
}

async fn day(warm: Option<WarmerConfig>, rate: f64, symbols: &[Symbol]) -> Outcome {
    let provider = Arc::new(SlowProvider {
        inner: SyntheticProvider::new(SyntheticConfig {
            n_symbols: N_SYMBOLS,
            n_bars: 260,
            ..SyntheticConfig::default()
        }),
        calls: AtomicU64::new(0),
        jitter: std::sync::Mutex::new(SplitMix64::new(SEED)),
    });
    let cache = Arc::new(MemoryCache::new(MemoryCacheConfig {
        ttl: TTL,
        capacity_bytes: 4 << 30,
        estimated_entries: N_SYMBOLS,
    }));
    let tracker = Arc::new(SymbolTracker::default());
    let cancel = CancellationToken::new();
    let warmer = warm.map(|cfg| {
        let w = Arc::new(CacheWarmer::new(
            provider.clone(),
            cache.clone(),
            tracker.clone(),
            cfg,
            Arc::new(|| false),
        ));
        tokio::spawn(w.run(cancel.clone()))
    });
    let range = provider.inner.data_range();
    let cdf = zipf_cdf(symbols.len(), ZIPF_S);
    let mut rng = SplitMix64::new(SEED);
    let start = Instant::now();
    let mut latencies = Vec::new();
    let mut scan_ms = Vec::new();
    let (mut requests, mut hits) = (0u64, 0u64);
    let gap = Duration::from_secs_f64(1.0 / rate);
    let mut next_scan = start + Duration::from_secs(1800);
    while start.elapsed() < DAY {
        let u = rng.next_f64();
        let rank = cdf.partition_point(|c| *c < u).min(symbols.len() - 1);
        let symbol = &symbols[rank];
        tracker.record(symbol);
        let key = BarsKey::new(symbol.clone(), range);
        let t = Instant::now();
        let p = provider.clone();
        let s = symbol.clone();
        let lookup = cache
            .get_or_load(
                &key,
                Box::pin(async move { Ok(Arc::new(p.daily_bars(&s, range).await?)) }),
            )
            .await
            .expect("the simulated provider does not fail");
        requests += 1;
        hits += u64::from(lookup.is_hit());
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
        // Every 30 minutes a user scans the 200 most-watched symbols (32 fetches in flight).
        if Instant::now() >= next_scan {
            let t = Instant::now();
            let watch: Vec<Symbol> = symbols[..200].to_vec();
            futures::stream::iter(watch)
                .for_each_concurrent(32, |s| {
                    let (cache, p) = (cache.clone(), provider.clone());
                    async move {
                        let key = BarsKey::new(s.clone(), range);
                        let _ = cache
                            .get_or_load(
                                &key,
                                Box::pin(async move { Ok(Arc::new(p.daily_bars(&s, range).await?)) }),
                            )
                            .await;
                    }
                })
                .await;
            scan_ms.push(t.elapsed().as_secs_f64() * 1e3);
            next_scan += Duration::from_secs(1800);
        }
        tokio::time::sleep(gap).await;
    }
    cancel.cancel();
    if let Some(task) = warmer {
        let _ = task.await;
    }
    latencies.sort_by(f64::total_cmp);
    let q = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    Outcome {
        requests,
        hits,
        provider_calls: provider.calls.load(Ordering::Relaxed),
        p50_ms: q(0.5),
        p95_ms: q(0.95),
        scan_ms,
    }
}

use futures::StreamExt;

fn main() {
    let mut args = std::env::args().skip(1);
    let rate: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2.0);
    let top_n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1500);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    let symbols: Vec<Symbol> = rt.block_on(async {
        let p = SyntheticProvider::new(SyntheticConfig {
            n_symbols: N_SYMBOLS,
            n_bars: 260,
            ..SyntheticConfig::default()
        });
        p.universe()
            .await
            .expect("universe")
            .into_iter()
            .map(|e| e.symbol)
            .collect()
    });
    println!(
        "Warm simulation: {N_SYMBOLS} symbols, Zipf s = {ZIPF_S}, {rate} lookups/s for 6.5 h, TTL {} s,",
        TTL.as_secs()
    );
    println!("provider latency 40–120 ms, a 200-symbol scan every 30 min, seed {SEED}.");
    let config = WarmerConfig {
        interval: Duration::from_secs(300),
        top_n,
        refresh_ahead: 0.8,
        check_every: Duration::from_secs(10),
        premarket: None,
        min_gap: Duration::from_millis(5),
        ..WarmerConfig::default()
    };
    println!(
        "Warmer: top {top_n}, full pass every {} s, refresh after {:.0} % of the TTL, ≥ {} ms between calls.\n",
        config.interval.as_secs(),
        config.refresh_ahead * 100.0,
        config.min_gap.as_millis()
    );
    let without = rt.block_on(day(None, rate, &symbols));
    let with = rt.block_on(day(Some(config), rate, &symbols));
    println!(
        "{:<16} {:>9} {:>9} {:>9} {:>9} {:>15} {:>14}",
        "", "requests", "hit rate", "p50 ms", "p95 ms", "provider calls", "scan ms (avg)"
    );
    for (name, o) in [("without warmer", &without), ("with warmer", &with)] {
        let scans = o.scan_ms.iter().skip(1).copied().collect::<Vec<_>>();
        let avg_scan = scans.iter().sum::<f64>() / scans.len().max(1) as f64;
        println!(
            "{:<16} {:>9} {:>8.1}% {:>9.1} {:>9.1} {:>15} {:>14.0}",
            name,
            o.requests,
            100.0 * o.hits as f64 / o.requests as f64,
            o.p50_ms,
            o.p95_ms,
            o.provider_calls,
            avg_scan
        );
    }
    let speedup =
        |o: &Outcome| o.scan_ms.iter().skip(1).sum::<f64>() / o.scan_ms.len().saturating_sub(1).max(1) as f64;
    println!(
        "\nSubsequent scans: {:.1}× faster with the warmer.",
        speedup(&without) / speedup(&with).max(1e-9)
    );
}
