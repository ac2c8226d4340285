//! Every preset on crafted bars: ones that must pass it and ones that must not. Crossing presets are
//! checked against crossings found with the full-series indicator functions (an independent computation),
//! on the exact session they happen.

use chrono::NaiveDate;

use super::*;
use crate::indicators::{Snapshot, macd, rsi, sma};
use crate::model::{Bar, Bars};
use crate::screen::{Features, Row};

/// Bars from closes: open at the previous close, a 1 % range around the close, volume 1M (the last
/// session's volume and open can be set).
fn bars_with(closes: &[f64], last_volume: f64, last_open: Option<f64>) -> Bars {
    let d0 = NaiveDate::from_ymd_opt(2023, 1, 2).unwrap();
    let n = closes.len();
    let bars: Vec<Bar> = closes
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let open = if i + 1 == n {
                last_open.unwrap_or(c)
            } else if i > 0 {
                closes[i - 1]
            } else {
                c
            };
            Bar {
                date: d0 + chrono::Days::new(i as u64),
                open,
                high: c.max(open) * 1.005,
                low: c.min(open) * 0.995,
                close: c,
                volume: if i + 1 == n { last_volume } else { 1e6 },
            }
        })
        .collect();
    Bars::from_bars(&bars)
}

fn bars(closes: &[f64]) -> Bars {
    bars_with(closes, 1e6, None)
}

/// `n` closes compounding by `daily` from `start`.
fn trend(start: f64, daily: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| start * (1.0 + daily).powi(i as i32)).collect()
}

fn then(mut a: Vec<f64>, daily: f64, n: usize) -> Vec<f64> {
    let last = *a.last().unwrap();
    a.extend((1..=n).map(|i| last * (1.0 + daily).powi(i as i32)));
    a
}

fn features(b: &Bars, depth: usize) -> Features {
    let mut f = Features::compute(b, &Snapshot::recent(b, depth));
    // A flat benchmark: relative strength equals the symbol's own return.
    f.set_relative_strength(&[[0.0; 4]; 6]);
    f
}

fn passes(name: &str, b: &Bars) -> bool {
    let screen = find(name).unwrap().screen().unwrap();
    let f = features(b, screen.depth());
    screen.matches(&Row {
        features: &f,
        text: ["X", "", "", "", ""],
    })
}

fn check(name: &str, pass: &Bars, fail: &Bars) {
    assert!(passes(name, pass), "{name} must pass its crafted bars");
    assert!(!passes(name, fail), "{name} must not pass the other bars");
}

/// The first prefix length at which `crossed(prefix)` holds, with the one before not holding.
fn first_crossing(closes: &[f64], crossed: impl Fn(&[f64]) -> bool) -> usize {
    (40..=closes.len())
        .find(|&len| crossed(&closes[..len]))
        .expect("the series crosses")
}

fn last_two(v: &[Option<f64>]) -> Option<(f64, f64)> {
    let n = v.len();
    Some((v[n - 2]?, v[n - 1]?))
}

#[test]
fn every_preset_compiles_and_names_are_unique() {
    for p in PRESETS {
        assert!(p.screen().is_ok(), "{}: {:?}", p.name, p.screen().err());
        assert!(!p.description.is_empty() && !p.reference.is_empty());
    }
    let mut names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), PRESETS.len());
    assert!(PRESETS.len() >= 15);
    assert_eq!(find("Golden-Cross").unwrap().name, "golden_cross");
    assert!(find("golden_cros").unwrap_err().contains("golden_cross"));
}

#[test]
fn oversold_bounce_overbought_and_strength() {
    let up = trend(100.0, 0.004, 300);
    let dip = then(up.clone(), -0.02, 10);
    check("oversold_bounce", &bars(&dip), &bars(&up));
    check("overbought", &bars(&up), &bars(&dip));
    check("strong_trend", &bars(&up), &bars(&dip));
    check("strong_long", &bars(&up), &bars(&trend(100.0, -0.004, 300)));
}

#[test]
fn pullback_in_an_uptrend() {
    // The first session of a 1.5 %-a-day pullback where RSI (full series, computed apart) is in 30–45.
    let up = trend(100.0, 0.004, 300);
    let pullback = (1..15)
        .map(|k| then(up.clone(), -0.015, k))
        .find(|c| {
            let r = rsi(c, 14);
            let s20 = sma(c, 20);
            let last = c[c.len() - 1];
            r[c.len() - 1].is_some_and(|r| (30.0..=45.0).contains(&r))
                && s20[c.len() - 1].is_some_and(|m| last < m)
        })
        .expect("a pullback reaches RSI 30–45");
    check("pullback_uptrend", &bars(&pullback), &bars(&up));
}

#[test]
fn fifty_two_week_extremes() {
    let up = trend(100.0, 0.003, 300);
    let down = trend(100.0, -0.003, 300);
    check("new_52w_high", &bars(&up), &bars(&down));
    check("near_52w_low", &bars(&down), &bars(&up));
}

#[test]
fn volume_and_gaps() {
    let flat: Vec<f64> = (0..60).map(|i| 100.0 + (i % 3) as f64 * 0.1).collect();
    check("unusual_volume", &bars_with(&flat, 3e6, None), &bars(&flat));
    let last = flat[flat.len() - 2];
    check(
        "gap_up",
        &bars_with(&flat, 1e6, Some(last * 1.03)),
        &bars_with(&flat, 1e6, Some(last * 1.01)),
    );
}

#[test]
fn moving_average_crosses_on_their_session() {
    let golden = then(trend(200.0, -0.002, 260), 0.006, 200);
    let crossed = |c: &[f64]| {
        let (s50, s200) = (sma(c, 50), sma(c, 200));
        matches!((last_two(&s50), last_two(&s200)), (Some((a1, a0)), Some((b1, b0))) if a1 <= b1 && a0 > b0)
    };
    let at = first_crossing(&golden, crossed);
    check("golden_cross", &bars(&golden[..at]), &bars(&golden[..at - 1]));
    assert!(
        !passes("golden_cross", &bars(&golden[..at + 3])),
        "crossed three sessions ago: not on the last"
    );

    let death = then(trend(100.0, 0.002, 260), -0.006, 200);
    let crossed = |c: &[f64]| {
        let (s50, s200) = (sma(c, 50), sma(c, 200));
        matches!((last_two(&s50), last_two(&s200)), (Some((a1, a0)), Some((b1, b0))) if a1 >= b1 && a0 < b0)
    };
    let at = first_crossing(&death, crossed);
    check("death_cross", &bars(&death[..at]), &bars(&death[..at - 1]));
}

#[test]
fn macd_crosses_on_their_session() {
    let crossed = |c: &[f64], above: bool| {
        let m = macd(c, 12, 26, 9);
        match (last_two(&m.macd), last_two(&m.signal)) {
            (Some((a1, a0)), Some((b1, b0))) if above => a1 <= b1 && a0 > b0,
            (Some((a1, a0)), Some((b1, b0))) => a1 >= b1 && a0 < b0,
            _ => false,
        }
    };
    // Up, then a sharp fall (MACD drops through its signal), then a sharp rise (back up through it).
    let series = then(then(trend(100.0, 0.003, 120), -0.01, 30), 0.01, 40);
    let at = first_crossing(&series[..150], |c| crossed(c, false));
    assert!(at > 120, "the bearish cross comes with the fall, at {at}");
    check(
        "macd_bearish_cross",
        &bars(&series[..at]),
        &bars(&series[..at - 1]),
    );
    let at = (150..=series.len())
        .find(|&len| crossed(&series[..len], true))
        .expect("bullish cross");
    check(
        "macd_bullish_cross",
        &bars(&series[..at]),
        &bars(&series[..at - 1]),
    );
}

#[test]
fn bollinger_squeeze_and_breakout() {
    // Closes barely move but each session ranges widely: bands far inside the ATR channel.
    let d0 = NaiveDate::from_ymd_opt(2023, 1, 2).unwrap();
    let calm: Vec<Bar> = (0..80)
        .map(|i| {
            let c = 100.0 + if i % 2 == 0 { 0.2 } else { -0.2 };
            Bar {
                date: d0 + chrono::Days::new(i),
                open: c,
                high: c + 3.0,
                low: c - 3.0,
                close: c,
                volume: 1e6,
            }
        })
        .collect();
    let trending = bars(&trend(100.0, 0.02, 80));
    check("bollinger_squeeze", &Bars::from_bars(&calm), &trending);

    let mut flat: Vec<f64> = (0..80)
        .map(|i| 100.0 + if i % 2 == 0 { 0.5 } else { -0.5 })
        .collect();
    let before = flat.clone();
    flat.push(106.0);
    check("bollinger_breakout", &bars(&flat), &bars(&before));
    let mut later = flat.clone();
    later.push(108.0);
    assert!(
        !passes("bollinger_breakout", &bars(&later)),
        "already above the band the session before"
    );
}

#[test]
fn leaders_rank_within_the_universe() {
    // Twenty symbols, 63-session returns rising with the index: the top two are the top decile.
    let universe: Vec<Bars> = (0..20)
        .map(|i| bars(&trend(100.0, 0.0005 * f64::from(i) - 0.004, 120)))
        .collect();
    for name in ["momentum_leaders", "rs_leaders"] {
        let screen = find(name).unwrap().screen().unwrap();
        let fs: Vec<Features> = universe.iter().map(|b| features(b, screen.depth())).collect();
        let rows: Vec<Row<'_>> = fs
            .iter()
            .map(|f| Row {
                features: f,
                text: ["X", "", "", "", ""],
            })
            .collect();
        let picked: Vec<usize> = screen
            .select(&rows)
            .iter()
            .enumerate()
            .filter(|(_, p)| **p)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(picked, [18, 19], "{name}");
    }
}

/// A scan computes only the fields a screen reads (and only the window indicators those need, sessions
/// back): every preset selects the same symbols from those as from every field computed in full.
#[test]
fn computing_only_what_a_screen_reads_selects_the_same() {
    use crate::provider::{DataProvider, SyntheticConfig, SyntheticProvider};
    use crate::scan::score_with_features;
    use crate::screen::Needs;
    let p = SyntheticProvider::new(SyntheticConfig {
        n_symbols: 80,
        n_bars: 300,
        ..SyntheticConfig::default()
    });
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let data: Vec<_> = rt.block_on(async {
        let mut out = Vec::new();
        for e in p.universe().await.unwrap() {
            let b = p.daily_bars(&e.symbol, p.data_range()).await.unwrap();
            out.push((e, b));
        }
        out
    });
    for preset in PRESETS {
        let screen = preset.screen().unwrap();
        let needs = Needs::base().union(&screen.needs());
        let lean: Vec<Features> = data
            .iter()
            .map(|(e, b)| {
                let mut f = score_with_features(e, b, &needs).unwrap().features;
                f.set_relative_strength(&[[0.0; 4]; 6]);
                f
            })
            .collect();
        let full: Vec<Features> = data.iter().map(|(_, b)| features(b, screen.depth())).collect();
        let rows = |fs: &[Features]| -> Vec<bool> {
            let rows: Vec<Row<'_>> = fs
                .iter()
                .map(|f| Row {
                    features: f,
                    text: ["X", "", "", "", ""],
                })
                .collect();
            screen.select(&rows)
        };
        assert_eq!(rows(&lean), rows(&full), "{}", preset.name);
    }
}
