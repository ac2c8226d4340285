//! Standard-scan benches (DESIGN.md): 5000 symbols × 504 bars.
//! - `compute_5000x504`: indicators + score + rank with bars in memory, on every core (goal ≤ 25 ms).
//! - `warm_scan_5000x504`: the whole `scan()` with every symbol in the memory cache (goal ≤ 30 ms).
//! - `index_5000x504`: the equal-weight index of the 5000 symbols (part of every scan), on one thread.
//! - `cold_scan_synthetic_500`: the default `technic scan` work: 500 demo symbols, empty cache.
//! - `compute_5000x504_preset_*`: `compute_5000x504` plus a preset screen (its look back, the universe
//!   ranks it needs, the selection): the difference is what a preset costs (goal ≤ 2 ms).
//!
//! `cargo bench --bench scan`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use technic::scan::{Scored, rank, score_with_features};
use technic::screen::{Needs, Row, Screen};
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

/// Scores every symbol (with the fields `needs` names) on `threads` threads.
fn score_all(items: &[(UniverseEntry, Arc<Bars>)], threads: usize, needs: &Needs) -> Vec<Scored> {
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .filter_map(|(e, b)| score_with_features(e, b, needs))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    })
}

/// Scores every symbol on `threads` threads, then ranks: the CPU work of a scan, without I/O.
fn compute(items: &[(UniverseEntry, Arc<Bars>)], threads: usize) -> usize {
    let scored = score_all(items, threads, &Needs::base());
    rank(scored.into_iter().map(|s| s.result).collect(), Some(20)).len()
}

/// `compute` with a screen: fields as deep as it looks back, then its selection over the universe.
fn compute_screened(items: &[(UniverseEntry, Arc<Bars>)], threads: usize, screen: &Screen) -> usize {
    let scored = score_all(items, threads, &Needs::base().union(&screen.needs()));
    let signals: Vec<&str> = scored.iter().map(|s| s.result.signal.as_str()).collect();
    let rows: Vec<Row<'_>> = scored
        .iter()
        .zip(&signals)
        .map(|(s, sig)| Row {
            features: &s.features,
            text: [
                s.result.symbol.as_str(),
                &s.result.name,
                &s.result.sector,
                &s.result.industry,
                sig,
            ],
        })
        .collect();
    let keep = screen.select(&rows);
    drop(rows);
    let kept: Vec<_> = scored
        .into_iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(s, _)| s.result)
        .collect();
    rank(kept, Some(20)).len()
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
    g.bench_function("index_5000x504", |b| {
        b.iter(|| {
            let mut acc = technic::screen::regime::IndexAccumulator::default();
            for (_, bars) in black_box(&items) {
                acc.add(bars);
            }
            acc.finish().map(|i| i.len())
        })
    });
    g.bench_function("compute_5000x504_one_thread", |b| {
        b.iter(|| compute(black_box(&items), 1))
    });
    for preset in ["oversold_bounce", "golden_cross", "momentum_leaders"] {
        let screen = technic::screen::presets::find(preset).unwrap().screen().unwrap();
        g.bench_function(format!("compute_5000x504_preset_{preset}"), |b| {
            b.iter(|| compute_screened(black_box(&items), threads, &screen))
        });
    }

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
