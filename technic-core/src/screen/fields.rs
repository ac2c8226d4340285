//! The fields a screen can read, and their values for one symbol over its last sessions.

use crate::indicators::{INDICATOR_NAMES, Snapshot};
use crate::model::Bars;
use crate::score::TechRating;

/// The deepest look back a screen may use: `x[5]` is five sessions before the last.
pub const MAX_BACK: usize = 5;

/// Numeric fields, in storage order, with what they mean. Percent fields (`_pct`) are in percent
/// (2.5 = +2.5 %); returns, distances and `rs_*` are fractions (0.10 = +10 %), as in the JSON results.
pub const NUMERIC_FIELDS: [(&str, &str); 48] = [
    ("open", "session open"),
    ("high", "session high"),
    ("low", "session low"),
    ("close", "session close"),
    ("volume", "session volume (shares)"),
    ("change_pct", "close ÷ previous close − 1, in percent"),
    ("gap_pct", "open ÷ previous close − 1, in percent"),
    ("dollar_volume_20", "mean of close × volume over 20 sessions"),
    ("atr_pct", "ATR(14) ÷ close, in percent"),
    (
        "bb_width",
        "(upper − lower Bollinger band) ÷ middle band, a fraction",
    ),
    ("high_252", "highest high of 252 sessions (the 52-week high)"),
    ("low_252", "lowest low of 252 sessions (the 52-week low)"),
    ("tech_rating", "the composite rating, 0–100"),
    ("trend_score", "trend sub-score, −1 to 1"),
    ("momentum_score", "momentum sub-score, −1 to 1"),
    ("volume_score", "volume sub-score, −1 to 1"),
    ("volatility_score", "volatility sub-score, −1 to 1"),
    ("oscillator_score", "oscillator sub-score, −1 to 1"),
    ("breakout_score", "breakout sub-score, −1 to 1"),
    ("rs_21", "return_21 minus the benchmark's"),
    ("rs_63", "return_63 minus the benchmark's"),
    ("rs_126", "return_126 minus the benchmark's"),
    ("rs_252", "return_252 minus the benchmark's"),
    (
        "low_10",
        "lowest low of 10 sessions (the trade plan's stop reference)",
    ),
    ("high_10", "highest high of 10 sessions"),
    ("sma_20", "simple moving average of 20 closes"),
    ("sma_50", "simple moving average of 50 closes"),
    ("sma_200", "simple moving average of 200 closes"),
    ("ema_12", "exponential moving average of 12 closes"),
    ("ema_26", "exponential moving average of 26 closes"),
    ("macd", "MACD(12, 26) line"),
    ("macd_signal", "MACD signal line (9)"),
    ("macd_hist", "MACD histogram"),
    ("rsi_14", "RSI(14), Wilder, 0–100"),
    ("atr_14", "ATR(14), Wilder, in price units"),
    ("adx_14", "ADX(14), Wilder, 0–100"),
    ("bb_upper", "upper Bollinger band (20, 2)"),
    ("bb_middle", "middle Bollinger band (SMA 20)"),
    ("bb_lower", "lower Bollinger band (20, 2)"),
    (
        "bb_percent_b",
        "Bollinger %B: 0 at the lower band, 1 at the upper",
    ),
    ("high_252_dist", "close ÷ 252-session high − 1"),
    ("low_252_dist", "close ÷ 252-session low − 1"),
    ("volume_ratio_20", "volume ÷ mean volume of 20 sessions"),
    ("return_21", "21-session return"),
    ("return_63", "63-session return"),
    ("return_126", "126-session return"),
    ("return_252", "252-session return"),
    ("sessions", "bars of history available"),
];

/// Numeric fields per session.
pub const N_NUMERIC: usize = NUMERIC_FIELDS.len();

/// Text fields, in storage order.
pub const TEXT_FIELDS: [(&str, &str); 5] = [
    ("symbol", "the ticker"),
    ("name", "company name"),
    ("sector", "GICS sector"),
    ("industry", "industry"),
    ("signal", "Strong Long, Long, Neutral or Avoid"),
];

/// Index of a numeric field by name.
pub fn numeric(name: &str) -> Option<usize> {
    NUMERIC_FIELDS.iter().position(|(n, _)| *n == name)
}

/// Index of a text field by name.
pub fn text(name: &str) -> Option<usize> {
    TEXT_FIELDS.iter().position(|(n, _)| *n == name)
}

/// Indexes of fields the code fills by name.
pub(crate) mod idx {
    use super::numeric;
    macro_rules! field {
        ($name:ident, $s:literal) => {
            pub(crate) fn $name() -> usize {
                numeric($s).expect(concat!("field ", $s, " is registered"))
            }
        };
    }
    field!(rs_21, "rs_21");
    field!(return_21, "return_21");
}

/// The numeric fields of one symbol for its last `depth` sessions: `values[k * N_NUMERIC + i]` is field
/// `i`, `k` sessions before the last. A missing value (short history) is NaN.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    /// Sessions held (1 + the deepest look back).
    pub depth: usize,
    /// The values, session by session.
    pub values: Vec<f64>,
}

fn opt(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::NAN)
}

impl Features {
    /// Field `i`, `back` sessions ago (NaN when missing or deeper than held).
    #[inline]
    pub fn get(&self, i: usize, back: usize) -> f64 {
        if back < self.depth {
            self.values[back * N_NUMERIC + i]
        } else {
            f64::NAN
        }
    }

    /// Field `name` at the last session, `None` when unknown or missing.
    pub fn value(&self, name: &str) -> Option<f64> {
        numeric(name).map(|i| self.get(i, 0)).filter(|v| !v.is_nan())
    }

    pub(crate) fn set(&mut self, i: usize, back: usize, v: f64) {
        if back < self.depth {
            self.values[back * N_NUMERIC + i] = v;
        }
    }

    /// Computes every field (except the `rs_*`, which need the benchmark: NaN until
    /// [`Features::set_relative_strength`]) for the last `snaps.len()` sessions of `bars`; `snaps[k]` is the
    /// snapshot `k` sessions back (see [`Snapshot::recent`]).
    pub fn compute(bars: &Bars, snaps: &[Snapshot]) -> Self {
        let depth = snaps.len().max(1);
        let mut values = vec![f64::NAN; depth * N_NUMERIC];
        let n = bars.len();
        for (k, snap) in snaps.iter().enumerate() {
            if k >= n {
                break;
            }
            let end = n - k;
            let row = &mut values[k * N_NUMERIC..(k + 1) * N_NUMERIC];
            session(bars, end, snap, row);
        }
        Self { depth, values }
    }

    /// Sets `rs_21 … rs_252` from the benchmark's returns per session back (`bench[k]` = its 21/63/126/252
    /// returns `k` sessions back; NaN where unknown).
    pub fn set_relative_strength(&mut self, bench: &[[f64; 4]]) {
        let (rs, ret) = (idx::rs_21(), idx::return_21());
        for k in 0..self.depth {
            for j in 0..4 {
                let b = bench.get(k).map_or(f64::NAN, |b| b[j]);
                let r = self.get(ret + j, k);
                self.set(rs + j, k, r - b);
            }
        }
    }
}

/// Fills one session's row: the bars up to `end` (exclusive) and that session's snapshot.
fn session(bars: &Bars, end: usize, s: &Snapshot, row: &mut [f64]) {
    let i = end - 1;
    let close = bars.close[i];
    let prev = (i > 0).then(|| bars.close[i - 1]);
    let rating = TechRating::compute(s, close);
    let window = |from_back: usize| end.saturating_sub(from_back);
    let dollar_volume_20 = (end >= 20).then(|| {
        let from = window(20);
        bars.close[from..end]
            .iter()
            .zip(&bars.volume[from..end])
            .map(|(c, v)| c * v)
            .sum::<f64>()
            / 20.0
    });
    let max_of = |v: &[f64], len: usize| {
        (end >= len).then(|| {
            v[window(len)..end]
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, f64::max)
        })
    };
    let min_of = |v: &[f64], len: usize| {
        (end >= len).then(|| v[window(len)..end].iter().copied().fold(f64::INFINITY, f64::min))
    };
    let sub = rating.sub_scores;
    let head = [
        bars.open[i],
        bars.high[i],
        bars.low[i],
        close,
        bars.volume[i],
        opt(prev.map(|p| (close / p - 1.0) * 100.0)),
        opt(prev.map(|p| (bars.open[i] / p - 1.0) * 100.0)),
        opt(dollar_volume_20),
        opt(s.atr_14.map(|a| a / close * 100.0)),
        opt(s
            .bb_upper
            .zip(s.bb_lower)
            .zip(s.bb_middle)
            .filter(|(_, m)| *m != 0.0)
            .map(|((u, l), m)| (u - l) / m)),
        opt(max_of(&bars.high, 252)),
        opt(min_of(&bars.low, 252)),
        rating.value,
        opt(sub.trend),
        opt(sub.momentum),
        opt(sub.volume),
        opt(sub.volatility),
        opt(sub.oscillator),
        opt(sub.breakout),
        f64::NAN,
        f64::NAN,
        f64::NAN,
        f64::NAN,
        opt(min_of(&bars.low, 10)),
        opt(max_of(&bars.high, 10)),
    ];
    row[..head.len()].copy_from_slice(&head);
    for (j, (_, v)) in s.fields().into_iter().enumerate() {
        row[head.len() + j] = opt(v);
    }
    row[head.len() + INDICATOR_NAMES.len()] = end as f64;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_holds_every_indicator_in_order() {
        let start = numeric("sma_20").unwrap();
        for (j, name) in INDICATOR_NAMES.iter().enumerate() {
            assert_eq!(numeric(name), Some(start + j), "{name}");
        }
        assert_eq!(numeric("sessions"), Some(N_NUMERIC - 1));
        assert_eq!(numeric("low_10"), Some(start - 2));
        let mut names: Vec<&str> = NUMERIC_FIELDS.iter().map(|(n, _)| *n).collect();
        names.extend(TEXT_FIELDS.iter().map(|(n, _)| *n));
        let before = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), before, "field names are unique");
    }
}
