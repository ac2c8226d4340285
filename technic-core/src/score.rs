//! The `tech_rating` composite score and the trading [`Signal`] derived from it.
//!
//! Six sub-scores, each in `[-1, 1]` (positive is bullish), are combined with fixed weights into a rating
//! from 0 to 100 (50 is neutral):
//!
//! | sub-score   | weight | inputs |
//! |-------------|-------:|--------|
//! | trend       | 25 | close vs SMA 20/50/200, SMA 50 vs SMA 200, scaled by ADX strength |
//! | momentum    | 20 | 21/63/126-bar returns (tanh-scaled), MACD histogram sign |
//! | volume      | 10 | volume ratio, signed by the short-term direction |
//! | volatility  | 10 | ATR as a share of price: calm trends score higher |
//! | oscillator  | 15 | RSI zone (50–70 best, overbought and oversold penalised), Bollinger %B |
//! | breakout    | 20 | closeness to the 252-bar high, distance from the 252-bar low |
//!
//! A term whose inputs are undefined (short history) is left out and the weights of the remaining terms
//! are renormalised; with no terms at all the rating is 50. Signal thresholds: ≥ 70 Strong Long,
//! ≥ 55 Long, ≥ 40 Neutral, below 40 Avoid.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::indicators::Snapshot;

/// A sub-score in `[-1, 1]`, `None` when its inputs are undefined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SubScores {
    /// Direction and strength of the trend.
    pub trend: Option<f64>,
    /// Recent returns and MACD.
    pub momentum: Option<f64>,
    /// Volume confirmation.
    pub volume: Option<f64>,
    /// Calmness of price action.
    pub volatility: Option<f64>,
    /// RSI and %B zones.
    pub oscillator: Option<f64>,
    /// Position within the 52-week range.
    pub breakout: Option<f64>,
}

/// Weights of the sub-scores, in [`SubScores`] field order.
pub const WEIGHTS: [f64; 6] = [25.0, 20.0, 10.0, 10.0, 15.0, 20.0];

/// The composite rating and its parts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TechRating {
    /// 0–100, 50 neutral.
    pub value: f64,
    /// The parts it was built from.
    pub sub_scores: SubScores,
    /// The signal for `value`.
    pub signal: Signal,
}

/// What the rating suggests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Signal {
    /// Rating ≥ 70.
    #[serde(rename = "Strong Long")]
    StrongLong,
    /// Rating ≥ 55.
    #[serde(rename = "Long")]
    Long,
    /// Rating ≥ 40.
    #[serde(rename = "Neutral")]
    Neutral,
    /// Rating < 40.
    #[serde(rename = "Avoid")]
    Avoid,
}

impl Signal {
    /// The signal for a rating.
    pub fn from_rating(rating: f64) -> Self {
        if rating >= 70.0 {
            Self::StrongLong
        } else if rating >= 55.0 {
            Self::Long
        } else if rating >= 40.0 {
            Self::Neutral
        } else {
            Self::Avoid
        }
    }

    /// Display text ("Strong Long", …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StrongLong => "Strong Long",
            Self::Long => "Long",
            Self::Neutral => "Neutral",
            Self::Avoid => "Avoid",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TechRating {
    /// Scores a snapshot; `close` is the last close.
    pub fn compute(s: &Snapshot, close: f64) -> Self {
        let sub_scores = SubScores {
            trend: trend(s, close),
            momentum: momentum(s),
            volume: volume(s),
            volatility: volatility(s, close),
            oscillator: oscillator(s),
            breakout: breakout(s),
        };
        let parts = [
            sub_scores.trend,
            sub_scores.momentum,
            sub_scores.volume,
            sub_scores.volatility,
            sub_scores.oscillator,
            sub_scores.breakout,
        ];
        let (mut sum, mut weight) = (0.0, 0.0);
        for (p, w) in parts.iter().zip(WEIGHTS) {
            if let Some(p) = p {
                sum += p.clamp(-1.0, 1.0) * w;
                weight += w;
            }
        }
        let value = if weight > 0.0 {
            50.0 + 50.0 * sum / weight
        } else {
            50.0
        };
        Self {
            value,
            sub_scores,
            signal: Signal::from_rating(value),
        }
    }
}

fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

fn mean(values: &[Option<f64>]) -> Option<f64> {
    let defined: Vec<f64> = values.iter().flatten().copied().collect();
    (!defined.is_empty()).then(|| defined.iter().sum::<f64>() / defined.len() as f64)
}

/// Close above each average and SMA 50 above SMA 200 count +1, below −1; a strong ADX (≥ 25) keeps the
/// full score, a weak one (ADX 10) halves it.
fn trend(s: &Snapshot, close: f64) -> Option<f64> {
    let above = |ma: Option<f64>| ma.map(|m| sign(close - m));
    let cross = s.sma_50.zip(s.sma_200).map(|(a, b)| sign(a - b));
    let raw = mean(&[above(s.sma_20), above(s.sma_50), above(s.sma_200), cross])?;
    let strength = s
        .adx_14
        .map_or(1.0, |adx| (0.5 + (adx - 10.0) / 30.0).clamp(0.5, 1.0));
    Some(raw * strength)
}

/// Returns scaled with tanh (a 10 % month, 20 % quarter, 30 % half-year each saturate), plus MACD
/// histogram direction.
fn momentum(s: &Snapshot) -> Option<f64> {
    mean(&[
        s.return_21.map(|r| (r / 0.10).tanh()),
        s.return_63.map(|r| (r / 0.20).tanh()),
        s.return_126.map(|r| (r / 0.30).tanh()),
        s.macd_hist.map(sign),
    ])
}

/// Heavy volume confirms the short-term direction (21-bar return); light volume says little.
fn volume(s: &Snapshot) -> Option<f64> {
    let ratio = s.volume_ratio_20?;
    let direction = s.return_21.map_or(0.0, sign);
    Some(((ratio - 1.0).clamp(0.0, 2.0) / 2.0) * direction)
}

/// ATR below 1.5 % of price scores +1, above 6 % −1, linear between.
fn volatility(s: &Snapshot, close: f64) -> Option<f64> {
    let atr_pct = s.atr_14? / close;
    Some(1.0 - 2.0 * ((atr_pct - 0.015) / 0.045).clamp(0.0, 1.0))
}

/// RSI 50–70 is the bullish zone (+1); above 80 overbought (−1), below 30 oversold (−1), linear between.
/// %B above the upper band is stretched, inside the upper half constructive.
fn oscillator(s: &Snapshot) -> Option<f64> {
    let rsi = s.rsi_14.map(|r| {
        if r > 80.0 {
            -1.0
        } else if r > 70.0 {
            1.0 - (r - 70.0) / 5.0
        } else if r >= 50.0 {
            1.0
        } else if r >= 30.0 {
            (r - 40.0) / 10.0
        } else {
            -1.0
        }
    });
    let pb = s.bb_percent_b.map(|b| {
        if b > 1.0 {
            -0.5
        } else {
            (2.0 * b - 1.0).clamp(-1.0, 1.0)
        }
    });
    mean(&[rsi, pb])
}

/// Within 5 % of the 52-week high scores +1, 30 % or more below it −1; being far above the 52-week low
/// adds conviction.
fn breakout(s: &Snapshot) -> Option<f64> {
    let near_high = s
        .high_252_dist
        .map(|d| 1.0 - 2.0 * ((-d - 0.05) / 0.25).clamp(0.0, 1.0));
    let off_low = s.low_252_dist.map(|d| (d / 0.5).clamp(0.0, 1.0) * 2.0 - 1.0);
    mean(&[near_high, off_low])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bullish() -> Snapshot {
        Snapshot {
            sma_20: Some(95.0),
            sma_50: Some(90.0),
            sma_200: Some(80.0),
            adx_14: Some(35.0),
            return_21: Some(0.12),
            return_63: Some(0.25),
            return_126: Some(0.40),
            macd_hist: Some(0.5),
            volume_ratio_20: Some(2.5),
            atr_14: Some(1.0),
            rsi_14: Some(62.0),
            bb_percent_b: Some(0.9),
            high_252_dist: Some(-0.01),
            low_252_dist: Some(0.8),
            ..Snapshot::default()
        }
    }

    fn bearish() -> Snapshot {
        Snapshot {
            sma_20: Some(105.0),
            sma_50: Some(110.0),
            sma_200: Some(120.0),
            adx_14: Some(35.0),
            return_21: Some(-0.12),
            return_63: Some(-0.25),
            return_126: Some(-0.40),
            macd_hist: Some(-0.5),
            volume_ratio_20: Some(2.5),
            atr_14: Some(8.0),
            rsi_14: Some(20.0),
            bb_percent_b: Some(0.0),
            high_252_dist: Some(-0.5),
            low_252_dist: Some(0.0),
            ..Snapshot::default()
        }
    }

    #[test]
    fn every_sub_score_reaches_both_signs() {
        let up = TechRating::compute(&bullish(), 100.0);
        let down = TechRating::compute(&bearish(), 100.0);
        let u = up.sub_scores;
        let d = down.sub_scores;
        for (name, hi, lo) in [
            ("trend", u.trend, d.trend),
            ("momentum", u.momentum, d.momentum),
            ("volume", u.volume, d.volume),
            ("volatility", u.volatility, d.volatility),
            ("oscillator", u.oscillator, d.oscillator),
            ("breakout", u.breakout, d.breakout),
        ] {
            assert!(hi.unwrap() > 0.5, "{name} bullish {hi:?}");
            assert!(lo.unwrap() < -0.5, "{name} bearish {lo:?}");
        }
        assert_eq!(up.signal, Signal::StrongLong);
        assert_eq!(down.signal, Signal::Avoid);
        assert!(up.value <= 100.0 && down.value >= 0.0);
    }

    #[test]
    fn oscillator_zones() {
        let at = |r: f64| {
            oscillator(&Snapshot {
                rsi_14: Some(r),
                ..Snapshot::default()
            })
            .unwrap()
        };
        assert_eq!(at(85.0), -1.0);
        assert!((at(75.0) - 0.0).abs() < 1e-12);
        assert_eq!(at(60.0), 1.0);
        assert!((at(45.0) - 0.5).abs() < 1e-12);
        assert_eq!(at(25.0), -1.0);
        let over = oscillator(&Snapshot {
            bb_percent_b: Some(1.2),
            ..Snapshot::default()
        })
        .unwrap();
        assert_eq!(over, -0.5);
    }

    #[test]
    fn empty_snapshot_is_neutral() {
        let r = TechRating::compute(&Snapshot::default(), 10.0);
        assert_eq!(r.value, 50.0);
        assert_eq!(r.signal, Signal::Neutral);
        assert_eq!(Signal::from_rating(55.0), Signal::Long);
        assert_eq!(Signal::from_rating(39.9), Signal::Avoid);
        assert_eq!(Signal::StrongLong.to_string(), "Strong Long");
    }

    #[test]
    fn weak_adx_halves_trend() {
        let mut s = bullish();
        s.adx_14 = Some(5.0);
        assert!((trend(&s, 100.0).unwrap() - 0.5).abs() < 1e-12);
        s.adx_14 = None;
        assert_eq!(trend(&s, 100.0), Some(1.0));
    }
}
