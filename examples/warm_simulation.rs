//! Replays a trading day of symbol lookups against the server's cache with and without the cache warmer,
//! and reports hit rate, response times and provider calls for both.
//!
//! The day is Friday 27 November 2026 (the early close after Thanksgiving), 09:30–16:00 New York time,
//! on a simulated clock (a paused tokio clock driving the market clock), so 6.5 hours replay in seconds
//! and the numbers are the same on every run. The provider behaves like a market-data API: it serves
//! bars only for sessions published by "now" (Friday's bar appears at 13:20, the close plus the 20-minute
//! publication delay), answers after 40–120 ms, and has a grouped-daily endpoint (every symbol's bar of
//! one session in one call). The store holds every symbol's history up to Wednesday, as it would after
//! the previous sessions; the popularity tracker remembers the previous day's lookups, as the server
//! restores it from the store at start.
//!
//! Users look symbols up at `RATE` per second, picked from a Zipf distribution (s = 1.1 over 5,000
//! symbols); a lookup is what `GET /api/v1/symbols/{symbol}` does: the memory cache, else the provider.
//! Every 30 minutes a user scans the 200 most-watched symbols through the same cache. Cache entries are
//! fresh until the next daily bar is due (`MemoryCache::with_market`). The warmer runs with its default
//! settings and the store.
//!
//! `cargo run --release --example warm_simulation [-- RATE]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use technic::cache::BarsKey;
use technic::provider::SplitMix64;
use technic::store::BarsUpdate;
use technic::warm::{CacheWarmer, WarmerConfig};
use technic::{
    Bar, Bars, Cache, CancellationToken, Clock, DataProvider, DateRange, Market, MemoryCache, MemoryStore,
    Store, Symbol, SymbolTracker, SyntheticConfig, SyntheticProvider, Universe,
};
use tokio::time::Instant;

const N_SYMBOLS: usize = 5_000;
const ZIPF_S: f64 = 1.1;
const DAY: Duration = Duration::from_secs(6 * 3600 + 1800);
const SEED: u64 = 7;
const SOURCE: &str = "simulated";

/// The market clock follows the (paused) tokio clock from a chosen instant.
#[derive(Debug)]
struct SimClock {
    start_wall: DateTime<Utc>,
    start: Instant,
}

impl Clock for SimClock {
    fn now(&self) -> DateTime<Utc> {
        self.start_wall + chrono::Duration::from_std(self.start.elapsed()).unwrap_or_default()
    }
}

/// Synthetic bars behind a simulated network, published session by session as the clock moves.
#[derive(Debug)]
struct SimProvider {
    inner: SyntheticProvider,
    market: Market,
    calls: AtomicU64,
    grouped_calls: AtomicU64,
    jitter: std::sync::Mutex<SplitMix64>,
}

impl SimProvider {
    async fn latency(&self) {
        let extra = self.jitter.lock().map(|mut r| r.next_f64()).unwrap_or(0.5);
        tokio::time::sleep(Duration::from_millis(40) + Duration::from_secs_f64(0.08 * extra)).await;
    }

    /// What the API shows now: nothing after the newest published session.
    fn published(&self, range: DateRange) -> DateRange {
        DateRange {
            from: range.from,
            to: range.to.min(self.market.expected_session()),
        }
    }
}

#[async_trait]
impl DataProvider for SimProvider {
    fn name(&self) -> &str {
        "simulated"
    }
    fn live_source(&self) -> Option<String> {
        Some(SOURCE.to_owned())
    }
    async fn universe(&self) -> technic::Result<Universe> {
        self.inner.universe().await
    }
    async fn daily_bars(&self, symbol: &Symbol, range: DateRange) -> technic::Result<Bars> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.latency().await;
        let bars = self.inner.full_history(symbol)?;
        Ok(bars.slice_range(self.published(range)))
    }
    async fn grouped_daily(&self, date: NaiveDate) -> technic::Result<Option<Vec<(Symbol, Bar)>>> {
        self.grouped_calls.fetch_add(1, Ordering::Relaxed);
        self.latency().await;
        if date > self.market.expected_session() {
            return Ok(Some(Vec::new()));
        }
        let mut out = Vec::new();
        for e in self.inner.universe().await? {
            let bars = self.inner.full_history(&e.symbol)?;
            if let Ok(i) = bars.date.binary_search(&date)
                && let Some(bar) = bars.get(i)
            {
                out.push((e.symbol, bar));
            }
        }
        Ok(Some(out))
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

fn pick<'a>(symbols: &'a [Symbol], cdf: &[f64], rng: &mut SplitMix64) -> &'a Symbol {
    let u = rng.next_f64();
    &symbols[cdf.partition_point(|c| *c < u).min(symbols.len() - 1)]
}

struct Outcome {
    requests: u64,
    hits: u64,
    provider_calls: u64,
    grouped_calls: u64,
    p50_ms: f64,
    p95_ms: f64,
    scan_ms: Vec<f64>,
}

fn demo() -> SyntheticProvider {
    SyntheticProvider::new(SyntheticConfig {
        n_symbols: N_SYMBOLS,
        n_bars: 560,
        ..SyntheticConfig::default()
    })
}

/// The store as the previous sessions left it: every symbol's bars up to Wednesday 25 November.
async fn store_until_wednesday(p: &SyntheticProvider) -> Arc<dyn Store> {
    let store = MemoryStore::default();
    let wednesday = NaiveDate::from_ymd_opt(2026, 11, 25).expect("date");
    let mut updates = Vec::new();
    for e in p.universe().await.expect("universe") {
        let bars = p.full_history(&e.symbol).expect("bars");
        let upto = DateRange {
            from: NaiveDate::MIN,
            to: wednesday,
        };
        updates.push(BarsUpdate {
            symbol: e.symbol,
            replace: false,
            bars: bars.slice_range(upto),
            fetched_from: bars.date[0],
            fetched_to: wednesday,
        });
    }
    store.save_bars_batch(SOURCE, updates).await.expect("store");
    Arc::new(store)
}

async fn day(warm: Option<WarmerConfig>, rate: f64, symbols: &[Symbol]) -> Outcome {
    let start = Instant::now();
    let open = DateTime::parse_from_rfc3339("2026-11-27T09:30:00-05:00").expect("instant");
    let clock = Arc::new(SimClock {
        start_wall: open.with_timezone(&Utc),
        start,
    });
    let market = Market::new(clock);
    let inner = demo();
    let store = store_until_wednesday(&inner).await;
    let provider = Arc::new(SimProvider {
        inner,
        market: market.clone(),
        calls: AtomicU64::new(0),
        grouped_calls: AtomicU64::new(0),
        jitter: std::sync::Mutex::new(SplitMix64::new(SEED)),
    });
    let cache = Arc::new(MemoryCache::default().with_market(market.clone()));
    let cdf = zipf_cdf(symbols.len(), ZIPF_S);
    let mut rng = SplitMix64::new(SEED);
    // Yesterday's popularity, as restored from the store at start.
    let tracker = Arc::new(SymbolTracker::default());
    for _ in 0..(rate * DAY.as_secs_f64()) as usize {
        tracker.record_at(
            pick(symbols, &cdf, &mut rng),
            market.now() - chrono::Duration::days(1),
        );
    }
    let cancel = CancellationToken::new();
    let warmer = warm.map(|cfg| {
        let w = CacheWarmer::new(
            provider.clone(),
            cache.clone(),
            tracker.clone(),
            cfg,
            Arc::new(|| false),
        )
        .with_market(market.clone())
        .with_store(store.clone());
        tokio::spawn(Arc::new(w).run(cancel.clone()))
    });
    let mut latencies = Vec::new();
    let mut scan_ms = Vec::new();
    let (mut requests, mut hits) = (0u64, 0u64);
    let gap = Duration::from_secs_f64(1.0 / rate);
    let mut next_scan = start + Duration::from_secs(1800);
    while start.elapsed() < DAY {
        let symbol = pick(symbols, &cdf, &mut rng).clone();
        tracker.record_at(&symbol, market.now());
        let range = provider.default_range(market.expected_session());
        let key = BarsKey::new(symbol.clone(), range);
        let t = Instant::now();
        let p = provider.clone();
        let lookup = cache
            .get_or_load(
                &key,
                Box::pin(async move { Ok(Arc::new(p.daily_bars(&symbol, range).await?)) }),
            )
            .await
            .expect("the simulated provider does not fail");
        requests += 1;
        hits += u64::from(lookup.is_hit());
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
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
        grouped_calls: provider.grouped_calls.load(Ordering::Relaxed),
        p50_ms: q(0.5),
        p95_ms: q(0.95),
        scan_ms,
    }
}

fn main() {
    let rate: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2.0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    let symbols: Vec<Symbol> = rt.block_on(async {
        demo()
            .universe()
            .await
            .expect("universe")
            .into_iter()
            .map(|e| e.symbol)
            .collect()
    });
    let config = WarmerConfig::default();
    println!(
        "Warm simulation: {N_SYMBOLS} symbols, Zipf s = {ZIPF_S}, {rate} lookups/s, Friday 2026-11-27 09:30–16:00 \
         New York (Friday's bar published at 13:20), cache fresh until the next bar is due,"
    );
    println!(
        "provider latency 40–120 ms, a 200-symbol scan every 30 min, store current to Wednesday, seed {SEED}."
    );
    println!(
        "Warmer: default settings (top {}, passes every {} s, checks every {} s), refreshing through the store.\n",
        config.top_n,
        config.interval.as_secs(),
        config.check_every.as_secs()
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
            format!("{} (+{} grouped)", o.provider_calls, o.grouped_calls),
            avg_scan
        );
    }
}
