//! Backtests: no look-ahead, picks equal point-in-time scans, forward returns from the bars.

use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::cache::MemoryCache;
use crate::progress::NoopSink;
use crate::provider::{DataProvider, SyntheticConfig, SyntheticProvider};
use crate::scan::scan;
use crate::screen::Screen;

fn provider(n: usize) -> SyntheticProvider {
    SyntheticProvider::new(SyntheticConfig {
        n_symbols: n,
        n_bars: 420,
        ..SyntheticConfig::default()
    })
}

fn data(p: &SyntheticProvider) -> Vec<(UniverseEntry, Arc<Bars>)> {
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

fn run(
    data: &[(UniverseEntry, Arc<Bars>)],
    expr: &str,
    days: &[NaiveDate],
    horizons: &[usize],
) -> Vec<BacktestDay> {
    let screen = Screen::compile(expr).unwrap();
    let e = Evaluation {
        screen: Some(&screen),
        sort: None,
        top: None,
        horizons,
        days,
        benchmark: None,
    };
    evaluate(data, &e, &CancellationToken::new(), &|_| {})
}

const EXPR: &str = "rsi_14 < 50 and close > sma_50 or crosses_above(close, sma_20)";

#[test]
fn forward_returns_are_the_closes_ahead() {
    let p = provider(30);
    let d = data(&p);
    let dates = &d[0].1.date;
    let days: Vec<NaiveDate> = dates[300..330].to_vec();
    let out = run(&d, EXPR, &days, &[1, 5, 21]);
    assert_eq!(out.len(), days.len());
    let mut picked = 0;
    for day in &out {
        for h in [1usize, 5, 21] {
            let rets: Vec<f64> = day
                .symbols
                .iter()
                .map(|s| {
                    let b = &d.iter().find(|(e, _)| &e.symbol == s).unwrap().1;
                    let i = b.date.binary_search(&day.date).unwrap();
                    b.close[i + h] / b.close[i] - 1.0
                })
                .collect();
            let want = (!rets.is_empty()).then(|| rets.iter().sum::<f64>() / rets.len() as f64);
            let got = day.forward_returns[&h.to_string()];
            match (want, got) {
                (Some(w), Some(g)) => assert!((w - g).abs() < 1e-9, "{} h={h}: {w} vs {g}", day.date),
                (None, None) => {}
                other => panic!("{} h={h}: {other:?}", day.date),
            }
        }
        picked += day.symbols.len();
        let all: Vec<f64> = d
            .iter()
            .map(|(_, b)| {
                let i = b.date.binary_search(&day.date).unwrap();
                b.close[i + 21] / b.close[i] - 1.0
            })
            .collect();
        let u = all.iter().sum::<f64>() / all.len() as f64;
        assert!((day.universe_forward_returns["21"].unwrap() - u).abs() < 1e-9);
        assert_eq!(
            day.forward_return_mean, day.forward_returns["1"],
            "the first horizon is the main one"
        );
    }
    assert!(
        picked > 0 && picked < 30 * days.len(),
        "the screen must both pick and leave: {picked}"
    );
}

#[test]
fn days_without_a_future_are_left_out_and_counted() {
    let p = provider(10);
    let d = data(&p);
    let dates = &d[0].1.date;
    let n = dates.len();
    let days: Vec<NaiveDate> = dates[n - 10..].to_vec();
    let out = run(&d, "close > 0", &days, &[5]);
    let by_symbol: HashMap<Symbol, Arc<Bars>> =
        d.iter().map(|(e, b)| (e.symbol.clone(), b.clone())).collect();
    let s = summarise(&out, 5, &by_symbol, &crate::calendar::MarketCalendar::nyse());
    assert_eq!((s.sessions, s.sessions_without_future), (5, 5));
    assert_eq!(s.picks, 5 * 10);
    assert_eq!(s.picks_per_session, 10.0);
    // Everything picked: no excess over the universe.
    assert!(s.excess_return.unwrap().abs() < 1e-12);
    assert!((s.mean_return.unwrap() - s.universe_mean_return.unwrap()).abs() < 1e-12);
    assert_eq!(s.portfolio.rebalances, 1);
    assert_eq!(s.portfolio.trades, 10);
    assert!((s.portfolio.total_return - s.portfolio.universe_total_return).abs() < 1e-12);
}

#[tokio::test]
async fn picks_equal_the_point_in_time_scan() {
    let p = Arc::new(provider(40));
    let p2 = p.clone();
    let d = tokio::task::spawn_blocking(move || data(&p2)).await.unwrap();
    let dates = d[0].1.date.clone();
    let deps = Deps::new(p.clone(), Arc::new(MemoryCache::default()));
    for i in [280usize, 301, 333, 390] {
        let day = dates[i];
        let out = run(&d, EXPR, &[day], &[1]);
        let req = ScanRequest {
            as_of: Some(day),
            top: None,
            screen: ScreenSpec {
                where_: Some(EXPR.to_owned()),
                sort: None,
            },
            ..ScanRequest::default()
        };
        let report = scan(&req, &deps, &NoopSink, CancellationToken::new())
            .await
            .unwrap();
        assert!(
            report.results.iter().all(|r| r.date == day),
            "as of {day}: no later bar"
        );
        let mut scanned: Vec<Symbol> = report.results.iter().map(|r| r.symbol.clone()).collect();
        let mut picked = out[0].symbols.clone();
        scanned.sort();
        picked.sort();
        assert_eq!(picked, scanned, "as of {day}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Replacing every bar after day D (any prices) never changes day D's picks.
    #[test]
    fn bars_after_a_day_never_change_its_picks(cut in 270usize..400, seed in 1u64..1000, expr in prop::sample::select(vec![
        EXPR,
        "rank_pct(return_63) >= 80",
        "close[1] < close and volume_ratio_20 > 1",
        "crosses_above(macd, macd_signal) or tech_rating > 60",
    ])) {
        let p = provider(12);
        let d = data(&p);
        let day = d[0].1.date[cut];
        let before = run(&d, expr, &[day], &[1]);
        let mut rng = seed;
        let changed: Vec<(UniverseEntry, Arc<Bars>)> = d
            .iter()
            .map(|(e, b)| {
                let mut b = (**b).clone();
                for i in cut + 1..b.len() {
                    rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let f = 0.5 + (rng >> 33) as f64 / (1u64 << 31) as f64;
                    b.close[i] *= f;
                    b.high[i] = b.high[i].max(b.close[i]) * f.max(1.0);
                    b.low[i] = b.low[i].min(b.close[i]) / f.max(1.0);
                    b.volume[i] *= f * 3.0;
                }
                (e.clone(), Arc::new(b))
            })
            .collect();
        let after = run(&changed, expr, &[day], &[1]);
        prop_assert_eq!(&before[0].symbols, &after[0].symbols, "{} on {}", expr, day);
    }
}
