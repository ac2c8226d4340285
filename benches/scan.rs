//! Standard-scan benches (DESIGN.md): 5000 symbols × 504 bars.
//! - `compute_5000x504`: indicators + score + rank with bars in memory, on every core (goal ≤ 30 ms).
//! - `warm_scan_5000x504`: the whole `scan()` with every symbol in the memory cache (goal ≤ 50 ms).
//! - `cold_scan_synthetic_500`: the default `technic scan` work: 500 demo symbols, empty cache.
//!
//! `cargo bench --bench scan`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use technic::scan::{rank, score_symbol};
use technic::{
    Bars, CancellationToken, DataProvider, Deps, MemoryCache, NoopSink, ScanRequest, SyntheticConfig,
    SyntheticProvider, UniverseEntry, scan,
};

const N_SYMBOLS: usize = 5000;
const N_BARS: usize = 504;

fn standard_provider() -> SyntheticProvider {
    SyntheticProvider::new(SyntheticConfig {
        n_symbols: N_SYMBOLS,
        n_bars: N_BARS,
        ..SyntheticConfig::default()
    })
}

fn load_all(rt: &tokio::runtime::Runtime, p: &SyntheticProvider) -> Vec<(UniverseEntry, Arc<Bars>)> {
    rt.block_on(async {
        let mut out = Vec::new();
        for e in p.universe().await.unwrap() {
            let bars = p.daily_bars(&e.symbol, p.data_range()).await.unwrap();
            out.push((e, Arc::new(bars)));
        }
        out
    })
}

/// Scores every symbol on `threads` threads, then ranks: the CPU work of a scan, without I/O.
fn compute(items: &[(UniverseEntry, Arc<Bars>)], threads: usize) -> usize {
    let chunk = items.len().div_ceil(threads);
    let scored: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .filter_map(|(e, b)| score_symbol(e, b))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    rank(scored, Some(20)).len()
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let provider = Arc::new(standard_provider());
    let items = load_all(&rt, &provider);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());

    let mut g = c.benchmark_group("standard_scan");
    g.sample_size(20);
    g.bench_function("compute_5000x504", |b| {
        b.iter(|| compute(black_box(&items), threads))
    });
    g.bench_function("compute_5000x504_one_thread", |b| {
        b.iter(|| compute(black_box(&items), 1))
    });

    let deps = Deps::new(provider.clone(), Arc::new(MemoryCache::default()));
    let req = ScanRequest::default();
    rt.block_on(scan(&req, &deps, &NoopSink, CancellationToken::new()))
        .unwrap();
    g.bench_function("warm_scan_5000x504", |b| {
        b.to_async(&rt).iter(|| async {
            scan(&req, &deps, &NoopSink, CancellationToken::new())
                .await
                .unwrap()
        })
    });

    let demo = Arc::new(SyntheticProvider::default());
    g.bench_function("cold_scan_synthetic_500", |b| {
        b.to_async(&rt).iter(|| async {
            let deps = Deps::new(demo.clone(), Arc::new(MemoryCache::default()));
            scan(&req, &deps, &NoopSink, CancellationToken::new())
                .await
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(scan_benches, benches);
criterion_main!(scan_benches);
