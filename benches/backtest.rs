//! Screen backtest (goal ≤ 2 s on 2 cores): 5000 symbols, 252 sessions, one preset, bars in memory.
//! Each symbol has 540 bars: a year of warm-up, the 252 sessions, 21 sessions of future.
//!
//! `cargo bench --bench backtest`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use technic::backtest::{Evaluation, evaluate};
use technic::{Bars, CancellationToken, DataProvider, SyntheticConfig, SyntheticProvider, UniverseEntry};

fn data() -> Vec<(UniverseEntry, Arc<Bars>)> {
    let p = SyntheticProvider::new(SyntheticConfig {
        n_symbols: 5000,
        n_bars: 540,
        ..SyntheticConfig::default()
    });
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let mut out = Vec::new();
        for e in p.universe().await.unwrap() {
            let b = p.daily_bars(&e.symbol, p.data_range()).await.unwrap();
            out.push((e, Arc::new(b)));
        }
        out
    })
}

fn benches(c: &mut Criterion) {
    let data = data();
    let dates = data[0].1.date.clone();
    let n = dates.len();
    let days: Vec<_> = dates[n - 21 - 252..n - 21].to_vec();
    let mut g = c.benchmark_group("backtest");
    g.sample_size(10);
    for preset in ["golden_cross", "oversold_bounce", "momentum_leaders"] {
        let screen = technic::screen::presets::find(preset).unwrap().screen().unwrap();
        let e = Evaluation {
            screen: Some(&screen),
            sort: None,
            top: None,
            horizons: &[21],
            days: &days,
            benchmark: None,
        };
        g.bench_function(format!("5000x252_{preset}"), |b| {
            b.iter(|| evaluate(black_box(&data), &e, &CancellationToken::new(), &|_| {}).len())
        });
    }
    g.finish();
}

criterion_group!(backtest_benches, benches);
criterion_main!(backtest_benches);
