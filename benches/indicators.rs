//! Indicator benches: the fused last-bar snapshot of one symbol against the full-series functions.
//! `cargo bench --bench indicators`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use technic::indicators::{adx, atr, bollinger, ema, macd, rsi, sma};
use technic::{DataProvider, Snapshot, SyntheticConfig, SyntheticProvider, TechRating};

fn bars_504() -> technic::Bars {
    let p = SyntheticProvider::new(SyntheticConfig {
        n_symbols: 1,
        n_bars: 504,
        ..SyntheticConfig::default()
    });
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let sym = p.universe().await.unwrap()[0].symbol.clone();
        p.daily_bars(&sym, p.data_range()).await.unwrap()
    })
}

fn benches(c: &mut Criterion) {
    let bars = bars_504();
    let mut g = c.benchmark_group("indicators_504_bars");
    g.bench_function("snapshot_fused", |b| {
        b.iter(|| Snapshot::compute(black_box(&bars)))
    });
    g.bench_function("snapshot_and_score", |b| {
        b.iter(|| {
            let s = Snapshot::compute(black_box(&bars));
            TechRating::compute(&s, bars.close[503])
        })
    });
    g.bench_function("full_series_all", |b| {
        b.iter(|| {
            let c = black_box(&bars.close[..]);
            let (h, l) = (&bars.high[..], &bars.low[..]);
            (
                sma(c, 20),
                sma(c, 50),
                sma(c, 200),
                ema(c, 12),
                ema(c, 26),
                macd(c, 12, 26, 9),
                rsi(c, 14),
                atr(h, l, c, 14),
                adx(h, l, c, 14),
                bollinger(c, 20, 2.0),
            )
        })
    });
    g.bench_function("rsi_full_series", |b| b.iter(|| rsi(black_box(&bars.close), 14)));
    g.bench_function("adx_full_series", |b| {
        b.iter(|| adx(black_box(&bars.high), &bars.low, &bars.close, 14))
    });
    g.finish();
}

criterion_group!(indicator_benches, benches);
criterion_main!(indicator_benches);
