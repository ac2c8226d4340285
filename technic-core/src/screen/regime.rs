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

/// 1.0 in the index's fixed-point sums: 2^52, so a return keeps the precision of an `f64` near 1
/// (2.2e-16) and each return of at most [`MAX_RETURN`] converts to an `i64`; sums are `i128`.
const FIXED_ONE: f64 = (1u64 << 52) as f64;

/// Daily returns beyond ±100,000 % are bad data, not moves; the index leaves them out.
const MAX_RETURN: f64 = 1000.0;

/// Sums of daily returns by date, to build the equal-weight index of many symbols. Chunks of a scan each
/// fill one and [`IndexAccumulator::merge`] them.
#[derive(Debug, Clone, Default)]
pub struct IndexAccumulator {
    /// Days since the common era of `sums[0]`; later dates are at higher indexes.
    base: Option<i32>,
    /// Per date: the sum of returns in fixed point ([`FIXED_ONE`] = 1.0) and their count. Integer sums are
    /// exact, so the index does not depend on the order symbols were added or merged in (scans score
    /// symbols as they arrive, in any order).
    sums: Vec<(i128, u32)>,
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
        // Dates ascend: make room for the first and the last, then index directly.
        self.slot(bars.date[from].num_days_from_ce());
        self.slot(bars.date[to - 1].num_days_from_ce());
        let base = self.base.unwrap_or(0);
        // Day numbers from the year's first day and the ordinal (bit fields of a date), not from
        // `num_days_from_ce` per bar, which costs a 400-year-cycle division each time.
        let (mut year, mut year_start) = (i32::MIN, 0);
        for i in from..to {
            let (prev, close) = (bars.close[i - 1], bars.close[i]);
            let r = close / prev - 1.0;
            if prev > 0.0 && r.is_finite() && r.abs() < MAX_RETURN {
                let date = bars.date[i];
                if date.year() != year {
                    year = date.year();
                    year_start = date.num_days_from_ce() - date.ordinal() as i32;
                }
                let day = year_start + date.ordinal() as i32;
                let Some(slot) = self.sums.get_mut((day - base) as usize) else {
                    continue; // dates out of order: not bars the model produces
                };
                // |r| < 2^11, so r × 2^52 fits an i64: one conversion instruction, exact from here on.
                slot.0 += i128::from((r * FIXED_ONE) as i64);
                slot.1 += 1;
            }
        }
    }

    /// Adds another accumulator's sums.
    pub fn merge(&mut self, other: &IndexAccumulator) {
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
        let base = self.base?;
        let most = self.sums.iter().map(|s| s.1).max().filter(|&m| m > 0)?;
        let floor = (most / 10).max(1);
        let mut level = 100.0;
        let mut out = Vec::new();
        for (i, &(sum, count)) in self.sums.iter().enumerate() {
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
}
