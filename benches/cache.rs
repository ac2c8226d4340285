//! Memory-cache benches: a fresh hit, a single-flight hit, an insert, and stats.
//! `cargo bench --bench cache`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use technic::testing::{sample_bars, sample_key};
use technic::{Cache, MemoryCache};

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let cache = MemoryCache::default();
    let bars = Arc::new(sample_bars(504, 100.0));
    let keys: Vec<_> = (0..5000).map(|i| sample_key(&format!("S{i}"))).collect();
    rt.block_on(async {
        for k in &keys {
            cache.insert(k.clone(), bars.clone()).await.unwrap();
        }
    });
    let mut g = c.benchmark_group("memory_cache");
    let mut i = 0;
    g.bench_function("get_hit", |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 1) % keys.len();
            let k = &keys[i];
            let cache = &cache;
            async move { black_box(cache.get(k).await.unwrap()) }
        })
    });
    g.bench_function("get_or_load_hit", |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 1) % keys.len();
            let (k, cache, bars) = (&keys[i], &cache, bars.clone());
            async move {
                black_box(
                    cache
                        .get_or_load(k, Box::pin(async move { Ok(bars) }))
                        .await
                        .unwrap(),
                )
            }
        })
    });
    g.bench_function("insert", |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 1) % keys.len();
            let (k, cache, bars) = (keys[i].clone(), &cache, bars.clone());
            async move { cache.insert(k, bars).await.unwrap() }
        })
    });
    g.bench_function("stats", |b| b.iter(|| black_box(cache.stats())));
    g.finish();
}

criterion_group!(cache_benches, benches);
criterion_main!(cache_benches);
