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

/// The fewest bars a symbol needs to be rated: MACD's first value needs 34 sessions, and with them
/// every term but the 52-week breakout is defined. A symbol with fewer is skipped with the reason, not
/// ranked on a rating built from one or two terms.
pub const MIN_BARS: usize = 34;

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
    /// Scores a snapshot; `close` is the last close. The value is exactly the sum of the
    /// [`explain`] parts, in their order.
    pub fn compute(s: &Snapshot, close: f64) -> Self {
        let sub_scores = SubScores {
            trend: trend(s, close),
            momentum: momentum(s),
            volume: volume(s),
            volatility: volatility(s, close),
            oscillator: oscillator(s),
            breakout: breakout(s),
        };
        let value = points(&sub_scores).iter().fold(BASE, |sum, p| sum + p);
        Self {
            value,
            sub_scores,
            signal: Signal::from_rating(value),
        }
    }
}

/// The neutral rating every explanation starts from.
pub const BASE: f64 = 50.0;

/// The sub-score names, in [`SubScores`] field order.
pub const COMPONENTS: [&str; 6] = [
    "trend",
    "momentum",
    "volume",
    "volatility",
    "oscillator",
    "breakout",
];

impl SubScores {
    /// The sub-scores in [`COMPONENTS`] order.
    pub fn as_array(&self) -> [Option<f64>; 6] {
        [
            self.trend,
            self.momentum,
            self.volume,
            self.volatility,
            self.oscillator,
            self.breakout,
        ]
    }
}

/// Points each sub-score adds to [`BASE`]: `50 × score × weight ÷ (sum of the defined weights)`; 0 for an
/// undefined one.
fn points(sub: &SubScores) -> [f64; 6] {
    let parts = sub.as_array();
    let total: f64 = parts
        .iter()
        .zip(WEIGHTS)
        .filter(|(p, _)| p.is_some())
        .map(|(_, w)| w)
        .sum();
    std::array::from_fn(|i| match parts[i] {
        Some(p) if total > 0.0 => 50.0 * p.clamp(-1.0, 1.0) * WEIGHTS[i] / total,
        _ => 0.0,
    })
}

/// One part of a rating: how many points a component added and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplainPart {
    /// `base`, or a sub-score's name.
    pub component: String,
    /// Points added to the rating (the parts sum exactly to `tech_rating`).
    pub points: f64,
    /// The component's weight (of 100; renormalised over the defined ones).
    pub weight: f64,
    /// The sub-score, −1 to 1 (`None`: not enough history, left out).
    pub score: Option<f64>,
    /// The values it read.
    pub inputs: Vec<ExplainInput>,
    /// The rule that fired, in words.
    pub rule: String,
}

/// A value an explanation part read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplainInput {
    /// Field name.
    pub name: String,
    /// Its value (`None`: missing).
    pub value: Option<f64>,
}

fn inputs(pairs: &[(&str, Option<f64>)]) -> Vec<ExplainInput> {
    pairs
        .iter()
        .map(|(n, v)| ExplainInput {
            name: (*n).to_owned(),
            value: *v,
        })
        .collect()
}

fn pct(v: f64) -> String {
    format!("{:+.1} %", v * 100.0)
}

/// The parts of the rating of `s` at `close`: the base, then one per sub-score. Their points, summed in
/// order from 0, equal [`TechRating::compute`]'s value exactly.
pub fn explain(s: &Snapshot, close: f64) -> Vec<ExplainPart> {
    let rating = TechRating::compute(s, close);
    let sub = rating.sub_scores;
    let pts = points(&sub);
    let mut out = vec![ExplainPart {
        component: "base".to_owned(),
        points: BASE,
        weight: 0.0,
        score: None,
        inputs: Vec::new(),
        rule: "every rating starts neutral at 50; each component adds or takes away up to its weight ÷ 2"
            .to_owned(),
    }];
    let above = |ma: Option<f64>, name: &str| {
        ma.map(|m| {
            format!(
                "{} {name}",
                if close > m {
                    "above"
                } else if close < m {
                    "below"
                } else {
                    "at"
                }
            )
        })
    };
    let rules: [(Vec<ExplainInput>, String); 6] = [
        {
            let mut parts: Vec<String> = [
                above(s.sma_20, "SMA 20"),
                above(s.sma_50, "SMA 50"),
                above(s.sma_200, "SMA 200"),
            ]
            .into_iter()
            .flatten()
            .collect();
            if let (Some(a), Some(b)) = (s.sma_50, s.sma_200) {
                parts.push(format!(
                    "SMA 50 {} SMA 200",
                    if a > b {
                        "above"
                    } else if a < b {
                        "below"
                    } else {
                        "at"
                    }
                ));
            }
            let adx = s.adx_14.map_or(String::new(), |adx| {
                format!(
                    "; ADX {adx:.0} keeps {:.0} % of it",
                    100.0 * (0.5 + (adx - 10.0) / 30.0).clamp(0.5, 1.0)
                )
            });
            (
                inputs(&[
                    ("close", Some(close)),
                    ("sma_20", s.sma_20),
                    ("sma_50", s.sma_50),
                    ("sma_200", s.sma_200),
                    ("adx_14", s.adx_14),
                ]),
                format!(
                    "close {}{adx} (each above +1, below −1, averaged)",
                    parts.join(", ")
                ),
            )
        },
        (
            inputs(&[
                ("return_21", s.return_21),
                ("return_63", s.return_63),
                ("return_126", s.return_126),
                ("macd_hist", s.macd_hist),
            ]),
            format!(
                "returns over 21/63/126 sessions {} (tanh of 10/20/30 % saturates), MACD histogram {}",
                [s.return_21, s.return_63, s.return_126]
                    .iter()
                    .map(|r| r.map_or("n/a".to_owned(), pct))
                    .collect::<Vec<_>>()
                    .join(" / "),
                s.macd_hist.map_or("n/a", |h| if h > 0.0 {
                    "positive"
                } else if h < 0.0 {
                    "negative"
                } else {
                    "zero"
                })
            ),
        ),
        (
            inputs(&[("volume_ratio_20", s.volume_ratio_20), ("return_21", s.return_21)]),
            match s.volume_ratio_20 {
                Some(r) if r > 1.0 => format!(
                    "volume {r:.2}× its 20-session average confirms the {} 21-session move",
                    if s.return_21.unwrap_or(0.0) >= 0.0 {
                        "rising"
                    } else {
                        "falling"
                    }
                ),
                Some(r) => format!("volume {r:.2}× its average: light volume confirms nothing"),
                None => "not enough history".to_owned(),
            },
        ),
        (
            inputs(&[("atr_14", s.atr_14), ("close", Some(close))]),
            s.atr_14.map_or("not enough history".to_owned(), |a| {
                format!(
                    "ATR is {:.2} % of price (1.5 % or less scores +1, 6 % or more −1)",
                    a / close * 100.0
                )
            }),
        ),
        (
            inputs(&[("rsi_14", s.rsi_14), ("bb_percent_b", s.bb_percent_b)]),
            {
                let rsi = s.rsi_14.map(|r| {
                    let zone = if r > 80.0 {
                        "overbought above 80"
                    } else if r > 70.0 {
                        "stretched 70–80"
                    } else if r >= 50.0 {
                        "in the bullish 50–70 zone"
                    } else if r >= 30.0 {
                        "weak 30–50"
                    } else {
                        "oversold below 30"
                    };
                    format!("RSI {r:.1} {zone}")
                });
                let pb = s.bb_percent_b.map(|b| {
                    if b > 1.0 {
                        format!("%B {b:.2} above the upper band (stretched)")
                    } else {
                        format!(
                            "%B {b:.2} ({} half of the bands)",
                            if b >= 0.5 { "upper" } else { "lower" }
                        )
                    }
                });
                [rsi, pb].into_iter().flatten().collect::<Vec<_>>().join("; ")
            },
        ),
        (
            inputs(&[
                ("high_252_dist", s.high_252_dist),
                ("low_252_dist", s.low_252_dist),
            ]),
            match (s.high_252_dist, s.low_252_dist) {
                (Some(h), Some(l)) => format!(
                    "{} from the 52-week high (within 5 % scores +1, 30 % below −1), {} above the 52-week low",
                    pct(h),
                    pct(l)
                ),
                _ => "not enough history (252 sessions)".to_owned(),
            },
        ),
    ];
    let defined: f64 = sub
        .as_array()
        .iter()
        .zip(WEIGHTS)
        .filter(|(p, _)| p.is_some())
        .map(|(_, w)| w)
        .sum();
    for (i, (inputs, rule)) in rules.into_iter().enumerate() {
        let score = sub.as_array()[i];
        out.push(ExplainPart {
            component: COMPONENTS[i].to_owned(),
            points: pts[i],
            weight: if score.is_some() && defined > 0.0 {
                WEIGHTS[i] * 100.0 / defined
            } else {
                0.0
            },
            score,
            inputs,
            rule: if score.is_some() {
                rule
            } else {
                "not enough history: left out, the other weights renormalised".to_owned()
            },
        });
    }
    out
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
    fn explanations_sum_exactly_to_the_rating() {
        for (snap, close) in [
            (bullish(), 100.0),
            (bearish(), 100.0),
            (Snapshot::default(), 10.0),
        ] {
            let parts = explain(&snap, close);
            let sum = parts.iter().fold(0.0, |a, p| a + p.points);
            assert_eq!(sum, TechRating::compute(&snap, close).value);
            assert_eq!(parts.len(), 7);
            assert_eq!(parts[0].component, "base");
        }
        let parts = explain(&bullish(), 100.0);
        assert!(parts[1].rule.contains("above SMA 200"), "{}", parts[1].rule);
        assert!(parts[5].rule.contains("bullish 50–70"), "{}", parts[5].rule);
        let weights: f64 = parts.iter().map(|p| p.weight).sum();
        assert!((weights - 100.0).abs() < 1e-9);
        let short = Snapshot {
            rsi_14: Some(25.0),
            ..Snapshot::default()
        };
        let parts = explain(&short, 10.0);
        assert!(parts[1].rule.contains("not enough history"));
        assert_eq!(
            parts[5].weight, 100.0,
            "the only defined component carries all the weight"
        );
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
