//! The fields a screen can read, and their values for one symbol over its last sessions.

use crate::indicators::{INDICATOR_NAMES, Snapshot, lanes};
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

/// Indexes of fields the code reads or fills directly (a test checks them against the registry).
pub(crate) mod idx {
    pub(crate) const DOLLAR_VOLUME_20: usize = 7;
    pub(crate) const HIGH_252: usize = 10;
    pub(crate) const LOW_252: usize = 11;
    pub(crate) const TECH_RATING: usize = 12;
    pub(crate) const BREAKOUT_SCORE: usize = 18;
    pub(crate) const RS_21: usize = 19;
    pub(crate) const LOW_10: usize = 23;
    pub(crate) const HIGH_10: usize = 24;
    pub(crate) const RETURN_21: usize = 43;
}

/// Which fields a computation needs, per session back: bit `i` of `self.0[k]` is field `i`, `k` sessions
/// before the last. The costly fields (52-week extremes, the rating of an earlier session, 20-session dollar
/// volume, 10-session extremes) are computed only when needed; the rest are copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs(pub [u64; MAX_BACK + 1]);

impl Needs {
    /// Nothing.
    pub const fn none() -> Self {
        Self([0; MAX_BACK + 1])
    }

    /// Everything, for the last `depth` sessions.
    pub fn all(depth: usize) -> Self {
        let mut n = Self::none();
        for k in 0..depth.clamp(1, MAX_BACK + 1) {
            n.0[k] = (1u64 << N_NUMERIC) - 1;
        }
        n
    }

    /// What every result reads at the last session: every field but the 52-week extremes.
    pub fn base() -> Self {
        let mut n = Self::all(1);
        n.0[0] &= !((1 << idx::HIGH_252) | (1 << idx::LOW_252));
        n
    }

    /// Adds field `i`, `back` sessions ago (ignored beyond [`MAX_BACK`]).
    pub fn add(&mut self, i: usize, back: usize) {
        if back <= MAX_BACK && i < N_NUMERIC {
            self.0[back] |= 1 << i;
        }
    }

    /// Both sets.
    pub fn union(mut self, other: &Needs) -> Self {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a |= b;
        }
        self
    }

    /// Whether field `i` is needed `back` sessions ago.
    #[inline]
    pub fn has(&self, i: usize, back: usize) -> bool {
        back <= MAX_BACK && self.0[back] & (1 << i) != 0
    }

    /// The window indicators a snapshot `back` sessions ago must compute (see
    /// [`Snapshot::recent_masked`]): the indicators needed there, the bands for `bb_width`, and all of them
    /// when the rating is needed.
    pub fn snapshot_mask(&self, back: usize) -> u32 {
        if back > MAX_BACK {
            return crate::indicators::ALL_WINDOW_INDICATORS;
        }
        let bits = self.0[back];
        if (idx::TECH_RATING..=idx::BREAKOUT_SCORE).any(|i| bits & (1 << i) != 0) {
            return crate::indicators::ALL_WINDOW_INDICATORS;
        }
        let first = idx::HIGH_10 + 1;
        let mut mask = ((bits >> first) as u32) & crate::indicators::ALL_WINDOW_INDICATORS;
        if bits & (1 << 9) != 0 {
            mask |= 0b1111 << 11;
        }
        mask
    }

    /// Sessions to hold: 1 + the deepest session with a field needed.
    pub fn depth(&self) -> usize {
        self.0.iter().rposition(|b| *b != 0).map_or(1, |k| k + 1)
    }
}

/// The numeric fields of one symbol for its last `depth` sessions: field `i`, `k` sessions before the last,
/// is [`Features::get`]`(i, k)`. A missing value (short history, or a field not computed) is NaN. Only the
/// fields computed are stored (a backtest holds a year of sessions for thousands of symbols).
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    /// Sessions held (1 + the deepest look back).
    pub depth: usize,
    /// Values stored per session.
    width: usize,
    /// Where field `i` is stored in a session's row ([`NOT_STORED`]: not computed).
    slot: [u8; N_NUMERIC],
    /// The values, session by session (`width` each).
    values: Vec<f64>,
}

/// [`Features`]' slot of a field that was not computed.
const NOT_STORED: u8 = u8::MAX;

fn opt(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::NAN)
}

impl Features {
    /// Every field missing, for `depth` sessions.
    pub fn empty(depth: usize) -> Self {
        Self::with_fields(depth, u64::MAX)
    }

    /// Storage for the fields in `mask` (bit `i`: field `i`), all missing.
    fn with_fields(depth: usize, mask: u64) -> Self {
        let mut slot = [NOT_STORED; N_NUMERIC];
        let mut width = 0;
        for (i, s) in slot.iter_mut().enumerate() {
            if mask & (1 << i) != 0 {
                *s = width as u8;
                width += 1;
            }
        }
        let depth = depth.max(1);
        Self {
            depth,
            width,
            slot,
            values: vec![f64::NAN; depth * width],
        }
    }

    /// Field `i`, `back` sessions ago (NaN when missing, not computed or deeper than held).
    #[inline]
    pub fn get(&self, i: usize, back: usize) -> f64 {
        match self.slot.get(i) {
            Some(&s) if s != NOT_STORED && back < self.depth => self.values[back * self.width + s as usize],
            _ => f64::NAN,
        }
    }

    /// Field `name` at the last session, `None` when unknown or missing.
    pub fn value(&self, name: &str) -> Option<f64> {
        numeric(name).map(|i| self.get(i, 0)).filter(|v| !v.is_nan())
    }

    /// Sets field `i`, `back` sessions ago (ignored when not stored or deeper than held).
    pub fn set(&mut self, i: usize, back: usize, v: f64) {
        if let Some(&s) = self.slot.get(i)
            && s != NOT_STORED
            && back < self.depth
        {
            self.values[back * self.width + s as usize] = v;
        }
    }

    /// Computes every field (except the `rs_*`, which need the benchmark: NaN until
    /// [`Features::set_relative_strength`]) for the last `snaps.len()` sessions of `bars`; `snaps[k]` is the
    /// snapshot `k` sessions back (see [`Snapshot::recent`]).
    pub fn compute(bars: &Bars, snaps: &[Snapshot]) -> Self {
        Self::compute_needed(bars, snaps, None, &Needs::all(snaps.len()))
    }

    /// [`Features::compute`] of the fields in `needs` only, reusing the last session's rating when the
    /// caller has it. Every field is stored; those not needed are NaN.
    pub fn compute_needed(bars: &Bars, snaps: &[Snapshot], last: Option<&TechRating>, needs: &Needs) -> Self {
        let mut out = Self::empty(snaps.len());
        out.fill(bars, snaps, last, |k| if k <= MAX_BACK { needs.0[k] } else { 0 });
        out
    }

    /// The fields in `mask` for every one of the last `snaps.len()` sessions (a backtest's layout: the
    /// same fields every session, only those stored).
    pub fn compute_uniform(bars: &Bars, snaps: &[Snapshot], mask: u64) -> Self {
        let mut out = Self::with_fields(snaps.len(), mask);
        out.fill(bars, snaps, None, |_| mask);
        out
    }

    fn fill(
        &mut self,
        bars: &Bars,
        snaps: &[Snapshot],
        last: Option<&TechRating>,
        mask: impl Fn(usize) -> u64,
    ) {
        let n = bars.len();
        let mut row = [f64::NAN; N_NUMERIC];
        for (k, snap) in snaps.iter().enumerate() {
            if k >= n || k >= self.depth {
                break;
            }
            let end = n - k;
            let bits = mask(k);
            let has = |i: usize| bits & (1 << i) != 0;
            let rated = (idx::TECH_RATING..=idx::BREAKOUT_SCORE).any(has);
            let rating = match (k, last) {
                (0, Some(r)) => Some(*r),
                _ if rated => Some(TechRating::compute(snap, bars.close[end - 1])),
                _ => None,
            };
            row.fill(f64::NAN);
            session(bars, end, snap, rating.as_ref(), &mut row, has);
            let base = k * self.width;
            for (i, &s) in self.slot.iter().enumerate() {
                if s != NOT_STORED {
                    self.values[base + s as usize] = row[i];
                }
            }
        }
    }

    /// Sets `rs_21 … rs_252` from the benchmark's returns per session back (`bench[k]` = its 21/63/126/252
    /// returns `k` sessions back; NaN where unknown).
    pub fn set_relative_strength(&mut self, bench: &[[f64; 4]]) {
        let (rs, ret) = (idx::RS_21, idx::RETURN_21);
        for k in 0..self.depth {
            for j in 0..4 {
                let b = bench.get(k).map_or(f64::NAN, |b| b[j]);
                let r = self.get(ret + j, k);
                self.set(rs + j, k, r - b);
            }
        }
    }
}

/// Fills one session's row: the bars up to `end` (exclusive) and that session's snapshot and rating (the
/// rating fields stay NaN without one). The costly fields are computed only when `need(field)`.
fn session(
    bars: &Bars,
    end: usize,
    s: &Snapshot,
    rating: Option<&TechRating>,
    row: &mut [f64],
    need: impl Fn(usize) -> bool,
) {
    let i = end - 1;
    let close = bars.close[i];
    let prev = (i > 0).then(|| bars.close[i - 1]);
    let from = |len: usize| end.checked_sub(len);
    let max_of = |v: &[f64], len: usize| from(len).map(|f| lanes(&v[f..end], f64::NEG_INFINITY, f64::max));
    let min_of = |v: &[f64], len: usize| from(len).map(|f| lanes(&v[f..end], f64::INFINITY, f64::min));
    row[0] = bars.open[i];
    row[1] = bars.high[i];
    row[2] = bars.low[i];
    row[3] = close;
    row[4] = bars.volume[i];
    row[5] = opt(prev.map(|p| (close / p - 1.0) * 100.0));
    row[6] = opt(prev.map(|p| (bars.open[i] / p - 1.0) * 100.0));
    if need(idx::DOLLAR_VOLUME_20) {
        row[idx::DOLLAR_VOLUME_20] = opt(from(20).map(|f| {
            bars.close[f..end]
                .iter()
                .zip(&bars.volume[f..end])
                .map(|(c, v)| c * v)
                .sum::<f64>()
                / 20.0
        }));
    }
    row[8] = opt(s.atr_14.map(|a| a / close * 100.0));
    row[9] = opt(s
        .bb_upper
        .zip(s.bb_lower)
        .zip(s.bb_middle)
        .filter(|(_, m)| *m != 0.0)
        .map(|((u, l), m)| (u - l) / m));
    if need(idx::HIGH_252) || need(idx::LOW_252) {
        row[idx::HIGH_252] = opt(max_of(&bars.high, 252));
        row[idx::LOW_252] = opt(min_of(&bars.low, 252));
    }
    if let Some(r) = rating {
        let sub = r.sub_scores;
        row[idx::TECH_RATING..=idx::BREAKOUT_SCORE].copy_from_slice(&[
            r.value,
            opt(sub.trend),
            opt(sub.momentum),
            opt(sub.volume),
            opt(sub.volatility),
            opt(sub.oscillator),
            opt(sub.breakout),
        ]);
    }
    if need(idx::LOW_10) || need(idx::HIGH_10) {
        row[idx::LOW_10] = opt(min_of(&bars.low, 10));
        row[idx::HIGH_10] = opt(max_of(&bars.high, 10));
    }
    let first = idx::HIGH_10 + 1;
    for (j, (_, v)) in s.fields().into_iter().enumerate() {
        row[first + j] = opt(v);
    }
    row[first + INDICATOR_NAMES.len()] = end as f64;
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
        for (i, name) in [
            (idx::DOLLAR_VOLUME_20, "dollar_volume_20"),
            (idx::HIGH_252, "high_252"),
            (idx::LOW_252, "low_252"),
            (idx::TECH_RATING, "tech_rating"),
            (idx::BREAKOUT_SCORE, "breakout_score"),
            (idx::RS_21, "rs_21"),
            (idx::LOW_10, "low_10"),
            (idx::HIGH_10, "high_10"),
            (idx::RETURN_21, "return_21"),
        ] {
            assert_eq!(numeric(name), Some(i), "{name}");
        }
        const { assert!(N_NUMERIC <= 64, "a session's needs fit in a u64") };
    }

    #[test]
    fn needed_fields_equal_the_full_computation() {
        let bars: Vec<crate::model::Bar> = (0..300)
            .map(|i| {
                let c = 100.0 + (f64::from(i) * 0.3).sin() * 5.0 + f64::from(i) * 0.1;
                crate::model::Bar {
                    date: chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::Days::new(i as u64),
                    open: c - 0.5,
                    high: c + 1.0,
                    low: c - 1.0,
                    close: c,
                    volume: 1e6 + f64::from(i),
                }
            })
            .collect();
        let bars = Bars::from_bars(&bars);
        let snaps = Snapshot::recent(&bars, 3);
        let full = Features::compute(&bars, &snaps);
        let mut needs = Needs::base();
        needs.add(idx::HIGH_252, 2);
        needs.add(idx::TECH_RATING, 1);
        let part = Features::compute_needed(&bars, &snaps, None, &needs);
        assert_eq!(needs.depth(), 3);
        for k in 0..3 {
            for (i, (name, _)) in NUMERIC_FIELDS.iter().enumerate() {
                let (a, b) = (full.get(i, k), part.get(i, k));
                let cheap = ![
                    idx::DOLLAR_VOLUME_20,
                    idx::HIGH_252,
                    idx::LOW_252,
                    idx::LOW_10,
                    idx::HIGH_10,
                ]
                .contains(&i)
                    && !(idx::TECH_RATING..=idx::BREAKOUT_SCORE).contains(&i);
                if needs.has(i, k) || cheap {
                    assert!(
                        a == b || (a.is_nan() && b.is_nan()),
                        "field {name} at {k}: {a} vs {b}"
                    );
                }
            }
        }
        assert!(part.get(idx::HIGH_252, 0).is_nan(), "not needed, not computed");
    }
}
