//! Property tests: invariants every indicator must keep on any valid OHLCV input.
//!
//! Generated bars are valid market data: positive prices, `high >= max(open, close)`,
//! `low <= min(open, close)`, positive volume. Closes move by either exactly 0 (a repeated close, which
//! exercises the zero rules of RSI and ADX) or by at least 0.1 %; wicks and opening gaps are either exactly 0
//! or at least 0.01 %. Keeping every non-zero difference well above the rounding error of the prices is what
//! makes "shifting all prices leaves RSI/ATR/ADX unchanged" a fair property: a difference that is exactly 0
//! stays exactly 0 after the shift (equal prices plus the same constant stay equal), and one that is not
//! cannot round to 0 or change sign. So RSI's "0 when gain and loss are both 0" and ADX's "no DX when the
//! true-range sum or the DI sum is 0" take the same branch before and after the shift. (With an absolute
//! zero threshold such as TA-Lib's historical 1e-8 the same reasoning holds, because those thresholds are
//! applied to differences, which the shift does not change beyond rounding.)

use chrono::{Days, NaiveDate};
use proptest::prelude::*;
use technic_core::indicators::{
    Snapshot, adx, atr, bollinger, ema, high_dist, low_dist, macd, percent_b, returns, rsi, sma, volume_ratio,
};
use technic_core::model::{Bar, Bars};

use crate::{full_series, snapshot_vs_last};

#[derive(Debug, Clone, Copy)]
struct Step {
    /// Close-to-close relative change: 0 or 0.1 %..5 % either way.
    ret: f64,
    /// Opening gap relative to the previous close.
    gap: f64,
    /// Upper and lower wick, relative.
    up: f64,
    down: f64,
    volume: f64,
}

fn signed(range: std::ops::Range<f64>) -> impl Strategy<Value = f64> {
    (range, any::<bool>()).prop_map(|(m, neg)| if neg { -m } else { m })
}

fn step() -> impl Strategy<Value = Step> {
    let ret = prop_oneof![1 => Just(0.0), 4 => signed(1e-3..0.05)];
    let gap = prop_oneof![2 => Just(0.0), 1 => signed(1e-4..0.03)];
    let wick = || prop_oneof![1 => Just(0.0), 2 => 1e-4..0.02];
    (ret, gap, wick(), wick(), 1.0f64..5e6).prop_map(|(ret, gap, up, down, volume)| Step {
        ret,
        gap,
        up,
        down,
        volume: volume.round(),
    })
}

fn build(start: f64, steps: &[Step]) -> Bars {
    let d0 = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
    let mut prev = start;
    let bars: Vec<Bar> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let close = prev * (1.0 + s.ret);
            let open = prev * (1.0 + s.gap);
            let high = open.max(close) * (1.0 + s.up);
            let low = open.min(close) * (1.0 - s.down);
            prev = close;
            Bar {
                date: d0 + Days::new(i as u64),
                open,
                high,
                low,
                close,
                volume: s.volume,
            }
        })
        .collect();
    Bars::from_bars(&bars)
}

/// Valid OHLCV series of `len` bars starting near a price between 1 and 500.
fn arb_bars(len: std::ops::Range<usize>) -> impl Strategy<Value = Bars> {
    (1.0f64..500.0, prop::collection::vec(step(), len)).prop_map(|(start, steps)| build(start, &steps))
}

fn shifted(b: &Bars, c: f64) -> Bars {
    let add = |v: &[f64]| v.iter().map(|x| x + c).collect();
    Bars {
        date: b.date.clone(),
        open: add(&b.open),
        high: add(&b.high),
        low: add(&b.low),
        close: add(&b.close),
        volume: b.volume.clone(),
    }
}

fn assert_all_close(
    what: &str,
    a: &[Option<f64>],
    b: &[Option<f64>],
    tol: impl Fn(f64) -> f64,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.len(), b.len(), "{}: lengths", what);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        match (x, y) {
            (None, None) => {}
            (Some(x), Some(y)) => {
                prop_assert!(
                    (x - y).abs() <= tol(*x),
                    "{}[{}]: {} vs {} (tolerance {:e})",
                    what,
                    i,
                    x,
                    y,
                    tol(*x)
                )
            }
            _ => prop_assert!(false, "{}[{}]: {:?} vs {:?}", what, i, x, y),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn rsi_is_between_0_and_100(bars in arb_bars(0..400)) {
        let r = rsi(&bars.close, 14);
        for (i, v) in r.iter().enumerate() {
            prop_assert_eq!(v.is_some(), i >= 14, "RSI defined from index 14, at {}", i);
            if let Some(v) = v {
                prop_assert!((0.0..=100.0).contains(v), "RSI[{}] = {}", i, v);
            }
        }
        if let Some(v) = Snapshot::compute(&bars).rsi_14 {
            prop_assert!((0.0..=100.0).contains(&v), "snapshot RSI = {}", v);
        }
    }

    #[test]
    fn percent_b_is_finite_where_bands_are_defined(bars in arb_bars(0..300)) {
        let bb = bollinger(&bars.close, 20, 2.0);
        for i in 0..bars.len() {
            prop_assert_eq!(bb.upper[i].is_some(), i >= 19);
            prop_assert_eq!(bb.lower[i].is_some(), i >= 19);
            if let (Some(u), Some(l)) = (bb.upper[i], bb.lower[i]) {
                prop_assert!(u >= l, "upper {} < lower {} at {}", u, l, i);
                let pb = percent_b(bars.close[i], u, l);
                prop_assert!(pb.is_finite(), "%B[{}] = {} (upper {}, lower {})", i, pb, u, l);
            }
        }
        let s = Snapshot::compute(&bars);
        prop_assert_eq!(s.bb_percent_b.is_some(), s.bb_upper.is_some());
        if let Some(pb) = s.bb_percent_b {
            prop_assert!(pb.is_finite(), "snapshot %B = {}", pb);
        }
    }

    /// Twenty identical closes give bands that touch exactly and %B = 0.5, at any price and after any
    /// history, as TA-Lib 0.8 does (checked against it on 20,000 random levels with 2 to 6 decimals). A
    /// naive two-pass deviation around the SMA fails this: the SMA of 20 × 49.35 is an ulp off 49.35.
    #[test]
    fn bands_touch_on_a_flat_window(
        bars in arb_bars(0..60),
        level in 0.01f64..5000.0,
        decimals in 0i32..7,
        flat in 20usize..45,
    ) {
        let scale = 10f64.powi(decimals);
        let level = ((level * scale).round() / scale).max(0.01);
        let mut bars = bars;
        let d0 = NaiveDate::from_ymd_opt(2030, 1, 1).unwrap();
        for i in 0..flat {
            let date = d0 + Days::new(i as u64);
            bars.push(Bar { date, open: level, high: level, low: level, close: level, volume: 1000.0 });
        }
        let bb = bollinger(&bars.close, 20, 2.0);
        for i in bars.len() - flat + 19..bars.len() {
            let (u, m, l) = (bb.upper[i].unwrap(), bb.middle[i].unwrap(), bb.lower[i].unwrap());
            prop_assert!(u == m && m == l, "bands at {}: {} {} {} (level {})", i, u, m, l, level);
            prop_assert_eq!(percent_b(level, u, l), 0.5);
        }
        let s = Snapshot::compute(&bars);
        prop_assert_eq!(s.bb_upper, s.bb_lower, "snapshot bands (level {})", level);
        prop_assert_eq!(s.bb_percent_b, Some(0.5));
    }

    #[test]
    fn sma_and_ema_of_a_constant_are_the_constant(c in 1e-3f64..1e4, n in 1usize..60, len in 0usize..300) {
        let v = vec![c; len];
        let tol = |_: f64| 1e-12 * c;
        let want: Vec<Option<f64>> = (0..len).map(|i| (i + 1 >= n).then_some(c)).collect();
        assert_all_close("sma", &sma(&v, n), &want, tol)?;
        assert_all_close("ema", &ema(&v, n), &want, tol)?;
    }

    #[test]
    fn ema_lies_between_min_and_max_of_its_inputs(
        v in prop::collection::vec(-1e3f64..1e3, 0..300),
        n in 1usize..60,
    ) {
        let e = ema(&v, n);
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for (i, (x, y)) in v.iter().zip(&e).enumerate() {
            lo = lo.min(*x);
            hi = hi.max(*x);
            prop_assert_eq!(y.is_some(), i + 1 >= n);
            if let Some(y) = *y {
                // A convex combination in exact arithmetic; allow a few ulps of the magnitude for rounding.
                let tol = 1e-12 * lo.abs().max(hi.abs());
                prop_assert!(lo - tol <= y && y <= hi + tol, "EMA[{}] = {} outside [{}, {}]", i, y, lo, hi);
            }
        }
    }

    #[test]
    fn series_are_undefined_exactly_until_their_lookback(bars in arb_bars(0..400)) {
        let (h, l, c, v) = (&bars.high[..], &bars.low[..], &bars.close[..], &bars.volume[..]);
        let m = macd(c, 12, 26, 9);
        let bb = bollinger(c, 20, 2.0);
        let cases: Vec<(&str, Vec<Option<f64>>, usize)> = vec![
            ("sma_20", sma(c, 20), 19),
            ("sma_200", sma(c, 200), 199),
            ("ema_12", ema(c, 12), 11),
            ("ema_26", ema(c, 26), 25),
            ("macd", m.macd, 33),
            ("macd_signal", m.signal, 33),
            ("macd_hist", m.hist, 33),
            ("rsi_14", rsi(c, 14), 14),
            ("atr_14", atr(h, l, c, 14), 14),
            ("adx_14", adx(h, l, c, 14), 27),
            ("bb_middle", bb.middle, 19),
            ("high_252_dist", high_dist(h, c, 252), 251),
            ("low_252_dist", low_dist(l, c, 252), 251),
            ("volume_ratio_20", volume_ratio(v, 20), 19),
            ("return_21", returns(c, 21), 21),
            ("return_252", returns(c, 252), 252),
        ];
        for (name, s, first) in cases {
            prop_assert_eq!(s.len(), bars.len(), "{} length", name);
            for (i, x) in s.iter().enumerate() {
                prop_assert_eq!(x.is_some(), i >= first, "{}[{}] = {:?}", name, i, x);
                if let Some(x) = x {
                    prop_assert!(x.is_finite(), "{}[{}] = {}", name, i, x);
                }
            }
        }
    }

    /// Adding c > 0 to every price moves the averages and bands by c and leaves the range-based oscillators
    /// alone (see the module docs for why the zero rules cannot flip).
    #[test]
    fn shifting_prices_shifts_averages_and_keeps_oscillators(bars in arb_bars(0..400), c in 0.01f64..100.0) {
        let s = shifted(&bars, c);
        let plus_c = |v: Vec<Option<f64>>| v.into_iter().map(|x| x.map(|x| x + c)).collect::<Vec<_>>();
        let level = |x: f64| 1e-9 * x.abs(); // x is the shifted value, i.e. at the shifted price level
        for n in [20, 50, 200] {
            assert_all_close(&format!("sma_{n}"), &sma(&s.close, n), &plus_c(sma(&bars.close, n)), level)?;
        }
        for n in [12, 26] {
            assert_all_close(&format!("ema_{n}"), &ema(&s.close, n), &plus_c(ema(&bars.close, n)), level)?;
        }
        let (b0, b1) = (bollinger(&bars.close, 20, 2.0), bollinger(&s.close, 20, 2.0));
        assert_all_close("bb_upper", &b1.upper, &plus_c(b0.upper), level)?;
        assert_all_close("bb_middle", &b1.middle, &plus_c(b0.middle), level)?;
        assert_all_close("bb_lower", &b1.lower, &plus_c(b0.lower), level)?;

        let unit = |x: f64| 1e-6 * x.abs().max(1.0);
        assert_all_close("rsi_14", &rsi(&s.close, 14), &rsi(&bars.close, 14), unit)?;
        assert_all_close("adx_14", &adx(&s.high, &s.low, &s.close, 14), &adx(&bars.high, &bars.low, &bars.close, 14), unit)?;
        // ATR is in price units but a mean of differences: relative tolerance (exact 0 stays exact 0).
        assert_all_close("atr_14", &atr(&s.high, &s.low, &s.close, 14), &atr(&bars.high, &bars.low, &bars.close, 14), |x| 1e-6 * x.abs())?;
    }

    /// The fused fast path equals the last value of every full series, for any valid input.
    #[test]
    fn snapshot_equals_last_of_full_series(bars in arb_bars(0..400)) {
        let close = bars.close.last().copied().unwrap_or(0.0);
        let diffs = snapshot_vs_last(&Snapshot::compute(&bars), &full_series(&bars), close);
        prop_assert!(diffs.is_empty(), "{} bars:\n{}", bars.len(), diffs.join("\n"));
    }

    /// `Snapshot::recent` equals `Snapshot::compute` on the bars up to each of the last sessions, bit for bit,
    /// across the short-history boundary too.
    #[test]
    fn recent_snapshots_equal_snapshots_of_prefixes(bars in arb_bars(0..300), depth in 1usize..=6) {
        let recent = Snapshot::recent(&bars, depth);
        prop_assert_eq!(recent.len(), depth);
        let n = bars.len();
        for (k, got) in recent.iter().enumerate() {
            let want = if k < n { Snapshot::compute(&prefix(&bars, n - k)) } else { Snapshot::default() };
            prop_assert_eq!(got, &want, "{} bars, {} back", n, k);
        }
    }
}

proptest! {
    /// The explanation's parts add up to the rating exactly, for any valid input.
    #[test]
    fn explanations_add_up_to_the_rating(bars in arb_bars(0..300)) {
        let s = Snapshot::compute(&bars);
        let close = bars.close.last().copied().unwrap_or(1.0);
        let parts = technic_core::score::explain(&s, close);
        let sum = parts.iter().fold(0.0, |a, p| a + p.points);
        prop_assert_eq!(sum, technic_core::TechRating::compute(&s, close).value);
    }
}

fn prefix(bars: &Bars, len: usize) -> Bars {
    Bars {
        date: bars.date[..len].to_vec(),
        open: bars.open[..len].to_vec(),
        high: bars.high[..len].to_vec(),
        low: bars.low[..len].to_vec(),
        close: bars.close[..len].to_vec(),
        volume: bars.volume[..len].to_vec(),
    }
}
