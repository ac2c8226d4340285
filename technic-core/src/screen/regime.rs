//! The market regime of a benchmark and the equal-weight universe index used when there is no benchmark.
//!
//! Trend: up when SMA 50 > SMA 200 and close > SMA 50; down when both are below; else sideways.
//! Volatility: high when the 20-session realised volatility ÷ the 60-session one is above 1.25.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::indicators::Snapshot;
use crate::model::{Bar, Bars};

/// The name reported when the benchmark is the universe's own equal-weight index.
pub const EQUAL_WEIGHT: &str = "equal-weight universe index";

/// Direction of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    /// SMA 50 above SMA 200 and close above SMA 50.
    Up,
    /// SMA 50 below SMA 200 and close below SMA 50.
    Down,
    /// Anything else (or too little history).
    Sideways,
}

/// Volatility of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Volatility {
    /// 20-session realised volatility above 1.25 × the 60-session one.
    High,
    /// Otherwise.
    Normal,
}

/// The market regime, as the report shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Regime {
    /// The benchmark's symbol, or [`EQUAL_WEIGHT`].
    pub benchmark: String,
    /// Its last session.
    pub as_of: NaiveDate,
    /// Up, down or sideways.
    pub trend: Trend,
    /// High or normal.
    pub volatility: Volatility,
    /// Last close (the index level for the equal-weight index, 100 at its first session).
    pub close: f64,
    /// SMA 50 (`None`: too little history).
    pub sma_50: Option<f64>,
    /// SMA 200.
    pub sma_200: Option<f64>,
    /// 20-session ÷ 60-session realised volatility.
    pub volatility_ratio: Option<f64>,
    /// 21/63/126/252-session returns of the benchmark.
    pub return_21: Option<f64>,
    /// 63-session return.
    pub return_63: Option<f64>,
    /// 126-session return.
    pub return_126: Option<f64>,
    /// 252-session return.
    pub return_252: Option<f64>,
}

impl Regime {
    /// The regime of `bars` (closes are what count); `None` without bars.
    pub fn of(benchmark: &str, bars: &Bars) -> Option<Self> {
        let last = bars.last()?;
        let s = Snapshot::compute(bars);
        let close = last.close;
        let trend = match (s.sma_50, s.sma_200) {
            (Some(m50), Some(m200)) if m50 > m200 && close > m50 => Trend::Up,
            (Some(m50), Some(m200)) if m50 < m200 && close < m50 => Trend::Down,
            _ => Trend::Sideways,
        };
        let ratio = realised_vol(&bars.close, 20)
            .zip(realised_vol(&bars.close, 60))
            .filter(|(_, long)| *long > 0.0)
            .map(|(short, long)| short / long);
        Some(Self {
            benchmark: benchmark.to_owned(),
            as_of: last.date,
            trend,
            volatility: if ratio.is_some_and(|r| r > 1.25) {
                Volatility::High
            } else {
                Volatility::Normal
            },
            close,
            sma_50: s.sma_50,
            sma_200: s.sma_200,
            volatility_ratio: ratio,
            return_21: s.return_21,
            return_63: s.return_63,
            return_126: s.return_126,
            return_252: s.return_252,
        })
    }

    /// "up trend, normal volatility (SPY)".
    pub fn summary(&self) -> String {
        let trend = match self.trend {
            Trend::Up => "up trend",
            Trend::Down => "down trend",
            Trend::Sideways => "sideways",
        };
        let vol = match self.volatility {
            Volatility::High => "high volatility",
            Volatility::Normal => "normal volatility",
        };
        format!("{trend}, {vol} ({} as of {})", self.benchmark, self.as_of)
    }
}

/// Standard deviation of the last `n` daily log returns (`None` with fewer than `n + 1` closes).
pub fn realised_vol(close: &[f64], n: usize) -> Option<f64> {
    if close.len() < n + 1 || n < 2 {
        return None;
    }
    let r: Vec<f64> = close[close.len() - n - 1..]
        .windows(2)
        .map(|w| (w[1] / w[0]).ln())
        .collect();
    let mean = r.iter().sum::<f64>() / n as f64;
    let var = r.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1) as f64;
    Some(var.sqrt())
}

/// Sessions of each symbol the equal-weight index uses: enough for SMA 200, 60-session volatility and
/// `rs_252` five sessions back.
pub const INDEX_SESSIONS: usize = 260;

/// 1.0 in the index's fixed-point sums: 2^40, so a return keeps 9e-13 of absolute precision (a tenth of a
/// cent on a level of 1,000,000,000), and a return of at most [`MAX_RETURN`] is below 2^50 in fixed point,
/// which [`fixed`] converts without a conversion instruction. Integer sums are exact, so the index does not
/// depend on the order symbols were added or merged in (scans score symbols as they arrive, in any order).
const FIXED_ONE: f64 = (1u64 << 40) as f64;

/// Daily returns beyond ±100,000 % are bad data, not moves; the index leaves them out.
const MAX_RETURN: f64 = 1000.0;

/// 1.5 × 2^52: added to a value below 2^51 in magnitude, the sum is in [2^52, 2^53), where one unit is the
/// last bit, so its bits minus this number's bits are the value rounded to the nearest integer.
const ROUND: f64 = 6_755_399_441_055_744.0;

/// `r` in fixed point, rounded, for |r| < [`MAX_RETURN`]; plain arithmetic, so a loop of them vectorises.
#[inline]
fn fixed(r: f64) -> i64 {
    ((r * FIXED_ONE + ROUND).to_bits() as i64).wrapping_sub(ROUND.to_bits() as i64)
}

/// Symbols one [`Run`] adds up before it is flushed: each fixed-point return is below 2^50, so 8,192 of
/// them stay below 2^63.
const RUN_SYMBOLS: u32 = 8192;

/// The sums of consecutive symbols with the same dates, session by session (no day arithmetic, no
/// scatter: the loop over a symbol's returns is plain vector work); flushed into the per-day sums when a
/// symbol with other dates comes, when full, and when read.
#[derive(Debug, Clone, Default)]
struct Run {
    dates: Vec<NaiveDate>,
    sums: Vec<i64>,
    counts: Vec<i64>,
    symbols: u32,
}

/// Sums of daily returns by date, to build the equal-weight index of many symbols. Chunks of a scan each
/// fill one and [`IndexAccumulator::merge`] them.
#[derive(Debug, Clone, Default)]
pub struct IndexAccumulator {
    /// Days since the common era of `sums[0]`; later dates are at higher indexes.
    base: Option<i32>,
    /// Per date: the sum of returns in fixed point ([`FIXED_ONE`] = 1.0) and their count.
    sums: Vec<(i128, u32)>,
    /// Symbols sharing their dates, not yet in `sums`.
    run: Run,
}

impl IndexAccumulator {
    fn slot(&mut self, day: i32) -> &mut (i128, u32) {
        let base = *self.base.get_or_insert(day - 400);
        if day < base {
            let grow = (base - day) as usize;
            let mut front = vec![(0, 0); grow];
            front.append(&mut self.sums);
            self.sums = front;
            self.base = Some(day);
        }
        let base = self.base.unwrap_or(day);
        let i = (day - base) as usize;
        if i >= self.sums.len() {
            self.sums.resize(i + 1, (0, 0));
        }
        &mut self.sums[i]
    }

    /// Adds the daily returns of the last [`INDEX_SESSIONS`] sessions of `bars`.
    pub fn add(&mut self, bars: &Bars) {
        let n = bars.len();
        self.add_range(bars, n.saturating_sub(INDEX_SESSIONS), n);
    }

    /// Adds the daily returns of bars `from..to` (each against the bar before it).
    pub fn add_range(&mut self, bars: &Bars, from: usize, to: usize) {
        let (from, to) = (from.max(1), to.min(bars.len()));
        if from >= to {
            return;
        }
        let dates = &bars.date[from..to];
        if self.run.symbols >= RUN_SYMBOLS || self.run.dates != dates {
            self.flush();
            if self.run.dates != dates {
                self.run.dates.clear();
                self.run.dates.extend_from_slice(dates);
                self.run.sums.clear();
                self.run.sums.resize(dates.len(), 0);
                self.run.counts.clear();
                self.run.counts.resize(dates.len(), 0);
            }
        }
        let run = &mut self.run;
        run.symbols += 1;
        let closes = &bars.close[from - 1..to];
        for ((w, sum), count) in closes.windows(2).zip(&mut run.sums).zip(&mut run.counts) {
            let (prev, close) = (w[0], w[1]);
            let r = close / prev - 1.0;
            // False for NaN and infinities too; a left-out return adds 0 and counts 0, without a branch.
            let ok = prev > 0.0 && r.abs() < MAX_RETURN;
            *sum += if ok { fixed(r) } else { 0 };
            *count += i64::from(ok);
        }
    }

    /// Moves the run's sums into the per-day sums and empties it (keeping its dates).
    fn flush(&mut self) {
        if self.run.symbols == 0 {
            return;
        }
        let run = std::mem::take(&mut self.run);
        // Day numbers from the year's first day and the ordinal (bit fields of a date), not from
        // `num_days_from_ce` per date, which costs a 400-year-cycle division each time.
        let (mut year, mut year_start) = (i32::MIN, 0);
        for ((date, &sum), &count) in run.dates.iter().zip(&run.sums).zip(&run.counts) {
            if count == 0 {
                continue;
            }
            if date.year() != year {
                year = date.year();
                year_start = date.num_days_from_ce() - date.ordinal() as i32;
            }
            let slot = self.slot(year_start + date.ordinal() as i32);
            slot.0 += i128::from(sum);
            slot.1 += count as u32;
        }
        self.run = Run {
            symbols: 0,
            sums: vec![0; run.dates.len()],
            counts: vec![0; run.dates.len()],
            dates: run.dates,
        };
    }

    /// The per-day sums with the run's included.
    fn flushed(&self) -> std::borrow::Cow<'_, Self> {
        if self.run.symbols == 0 {
            std::borrow::Cow::Borrowed(self)
        } else {
            let mut all = self.clone();
            all.flush();
            std::borrow::Cow::Owned(all)
        }
    }

    /// Adds another accumulator's sums.
    pub fn merge(&mut self, other: &IndexAccumulator) {
        let other = other.flushed();
        let Some(base) = other.base else {
            return;
        };
        for (i, &(sum, count)) in other.sums.iter().enumerate() {
            if count > 0 {
                let slot = self.slot(base + i as i32);
                slot.0 += sum;
                slot.1 += count;
            }
        }
    }

    /// The index: 100 at the session before the first return, then compounded by each date's mean return
    /// (rebalanced daily). Dates where fewer than a tenth of the most-populated date's symbols traded are
    /// left out (a stray bar on a holiday is not a session). `None` without returns.
    pub fn finish(&self) -> Option<Bars> {
        let all = self.flushed();
        let base = all.base?;
        let most = all.sums.iter().map(|s| s.1).max().filter(|&m| m > 0)?;
        let floor = (most / 10).max(1);
        let mut level = 100.0;
        let mut out = Vec::new();
        for (i, &(sum, count)) in all.sums.iter().enumerate() {
            if count < floor {
                continue;
            }
            let date = NaiveDate::from_num_days_from_ce_opt(base + i as i32)?;
            if out.is_empty() {
                let start = date.pred_opt()?;
                out.push(flat(start, level));
            }
            level *= 1.0 + (sum as f64 / FIXED_ONE) / f64::from(count);
            out.push(flat(date, level));
        }
        Some(Bars::from_bars(&out))
    }
}

fn flat(date: NaiveDate, level: f64) -> Bar {
    Bar {
        date,
        open: level,
        high: level,
        low: level,
        close: level,
        volume: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn series(start: NaiveDate, closes: &[f64]) -> Bars {
        let bars: Vec<Bar> = closes
            .iter()
            .enumerate()
            .map(|(i, &c)| flat(start + chrono::Days::new(i as u64), c))
            .collect();
        Bars::from_bars(&bars)
    }

    #[test]
    fn equal_weight_index_compounds_the_mean_return() {
        let d0 = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        let a = series(d0, &[100.0, 110.0, 121.0]);
        let b = series(d0, &[50.0, 50.0, 45.0]);
        let (mut x, mut y) = (IndexAccumulator::default(), IndexAccumulator::default());
        x.add(&a);
        y.add(&b);
        x.merge(&y);
        let idx = x.finish().unwrap();
        // Day 1: mean(+10 %, 0 %) = +5 %; day 2: mean(+10 %, −10 %) = 0 %.
        assert_eq!(idx.len(), 3);
        assert!((idx.close[1] - 105.0).abs() < 1e-9);
        assert!((idx.close[2] - 105.0).abs() < 1e-9);
        assert_eq!(idx.date[2], d0 + chrono::Days::new(2));
    }

    #[test]
    fn regime_rules() {
        let d0 = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        let up: Vec<f64> = (0..260).map(|i| 100.0 * 1.002f64.powi(i)).collect();
        let r = Regime::of("X", &series(d0, &up)).unwrap();
        assert_eq!((r.trend, r.volatility), (Trend::Up, Volatility::Normal));
        let down: Vec<f64> = (0..260).map(|i| 100.0 * 0.998f64.powi(i)).collect();
        assert_eq!(Regime::of("X", &series(d0, &down)).unwrap().trend, Trend::Down);
        // Calm for 240 sessions, then wild swings: the short window's volatility jumps.
        let mut wild: Vec<f64> = (0..240)
            .map(|i| 100.0 + if i % 2 == 0 { 0.1 } else { -0.1 })
            .collect();
        wild.extend((0..20).map(|i| 100.0 + if i % 2 == 0 { 5.0 } else { -5.0 }));
        let r = Regime::of("X", &series(d0, &wild)).unwrap();
        assert_eq!(r.volatility, Volatility::High, "{r:?}");
        assert_eq!(r.trend, Trend::Sideways);
        assert!(Regime::of("X", &Bars::default()).is_none());
    }

    /// More symbols with the same dates than one run holds: the run is flushed and a new one started,
    /// and nothing is lost or counted twice.
    #[test]
    fn runs_longer_than_their_limit_flush_and_go_on() {
        let d0 = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        let up = series(d0, &[100.0, 110.0]);
        let down = series(d0, &[100.0, 90.0]);
        let mut acc = IndexAccumulator::default();
        let n = RUN_SYMBOLS as usize + 10;
        for i in 0..n {
            acc.add(if i % 2 == 0 { &up } else { &down });
        }
        let idx = acc.finish().unwrap();
        // As many +10 % as −10 % returns: the day's mean return is 0.
        assert_eq!(idx.len(), 2);
        assert!((idx.close[1] - 100.0).abs() < 1e-9, "{}", idx.close[1]);
        let mut one_more = acc.clone();
        one_more.add(&up);
        let expected = 100.0 * (1.0 + 0.1 / (n + 1) as f64);
        assert!((one_more.finish().unwrap().close[1] - expected).abs() < 1e-9);
    }

    /// The index the way it is defined: per date, 1 + the f64 mean of every symbol's valid return (the
    /// day's growth factor), after the session before the first, which has none.
    fn naive_index(all: &[Bars]) -> Vec<(NaiveDate, f64)> {
        let mut by_date = std::collections::BTreeMap::<NaiveDate, (f64, u32)>::new();
        for b in all {
            let n = b.len();
            for i in n.saturating_sub(INDEX_SESSIONS).max(1)..n {
                let (prev, close) = (b.close[i - 1], b.close[i]);
                let r = close / prev - 1.0;
                if prev > 0.0 && r.is_finite() && r.abs() < MAX_RETURN {
                    let e = by_date.entry(b.date[i]).or_default();
                    e.0 += r;
                    e.1 += 1;
                }
            }
        }
        let most = by_date.values().map(|e| e.1).max().unwrap_or(0);
        let floor = (most / 10).max(1);
        let mut out = Vec::new();
        for (date, (sum, count)) in by_date.into_iter().filter(|(_, e)| e.1 >= floor) {
            if out.is_empty() {
                out.push((date.pred_opt().unwrap(), f64::NAN));
            }
            out.push((date, 1.0 + sum / f64::from(count)));
        }
        out
    }

    /// Bars from a start day, gaps between dates (1–4 days) and closes, some of them bad (0, NaN, huge).
    fn symbol_bars() -> impl Strategy<Value = Bars> {
        let close = prop_oneof![
            20 => 1.0f64..200.0,
            1 => Just(0.0),
            1 => Just(f64::NAN),
            1 => Just(1e9),
        ];
        (0u64..900, proptest::collection::vec((1u64..5, close), 2..300)).prop_map(|(start, days)| {
            let mut date = NaiveDate::from_ymd_opt(2023, 12, 20).unwrap() + chrono::Days::new(start);
            let bars: Vec<Bar> = days
                .into_iter()
                .map(|(gap, c)| {
                    date = date + chrono::Days::new(gap);
                    flat(date, c)
                })
                .collect();
            Bars::from_bars(&bars)
        })
    }

    proptest! {
        /// Whatever the symbols, their dates and the accumulators they are split into, each day of the
        /// index moves by the naive per-date mean return (to 1e-12) and the index does not depend on the
        /// order symbols were added. (Growth factors, not levels: after a fall of 99.9999999 % a level
        /// keeps only the digits the subtraction left, in either sum.)
        #[test]
        fn index_matches_the_naive_mean_in_any_order(
            mut all in proptest::collection::vec(symbol_bars(), 1..8),
            split in 0usize..8,
            shared in any::<bool>(),
        ) {
            if shared {
                // Symbols of one market share their sessions: the cached mapping path.
                let dates = all[0].date.clone();
                for b in &mut all {
                    let n = b.len().min(dates.len());
                    *b = Bars::from_bars(&(0..n).map(|i| flat(dates[i], b.close[i])).collect::<Vec<_>>());
                }
            }
            let (mut x, mut y) = (IndexAccumulator::default(), IndexAccumulator::default());
            for (i, b) in all.iter().enumerate() {
                if i < split { x.add(b) } else { y.add(b) }
            }
            x.merge(&y);
            // The first symbol once more after the merge, which may have moved the first date.
            x.add(&all[0]);
            let mut reversed = IndexAccumulator::default();
            for b in all.iter().rev() {
                reversed.add(b);
            }
            reversed.add(&all[0]);
            all.push(all[0].clone());
            let got = x.finish();
            prop_assert_eq!(
                got.as_ref().map(|g| g.close.clone()),
                reversed.finish().map(|g| g.close.clone()),
                "the order symbols were added changed the index"
            );
            let want = naive_index(&all);
            match got {
                None => prop_assert!(want.is_empty()),
                Some(g) => {
                    prop_assert_eq!(g.len(), want.len());
                    prop_assert_eq!(g.close[0], 100.0);
                    for (i, (date, factor)) in want.iter().enumerate() {
                        prop_assert_eq!(g.date[i], *date);
                        if i > 0 && g.close[i - 1] == 0.0 {
                            // A fall of 100 % (a close of 0 in bad data) leaves the index at 0.
                            prop_assert_eq!(g.close[i], 0.0);
                        } else if i > 0 {
                            let got = g.close[i] / g.close[i - 1];
                            prop_assert!((got - factor).abs() <= 1e-12 * factor.abs().max(1.0),
                                "{}: {} vs {}", date, got, factor);
                        }
                    }
                }
            }
        }
    }
}
