//! The last-bar values of the standard scan, computed in one fused pass per symbol.
//!
//! A scan needs only the last value of each indicator, so window indicators read only their window and the
//! recursive ones (EMA, MACD, RSI, ATR, ADX) run together in a single loop over the history, without
//! allocating output series. Tests check every field against the last value of the full-series functions.

use serde::{Deserialize, Serialize};

use super::average::population_sd;
use super::wilder::{DmState, rsi_value, tr};
use super::window::percent_b;
use crate::model::Bars;

/// The standard scan's indicator values at the last bar. `None` means not enough history.
///
/// Field names are the names used in JSON output (see [`INDICATOR_NAMES`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// SMA(close, 20).
    pub sma_20: Option<f64>,
    /// SMA(close, 50).
    pub sma_50: Option<f64>,
    /// SMA(close, 200).
    pub sma_200: Option<f64>,
    /// EMA(close, 12), SMA-seeded.
    pub ema_12: Option<f64>,
    /// EMA(close, 26), SMA-seeded.
    pub ema_26: Option<f64>,
    /// TA-Lib MACD(12, 26, 9) line.
    pub macd: Option<f64>,
    /// MACD signal line.
    pub macd_signal: Option<f64>,
    /// MACD histogram.
    pub macd_hist: Option<f64>,
    /// RSI(14), Wilder.
    pub rsi_14: Option<f64>,
    /// ATR(14), Wilder.
    pub atr_14: Option<f64>,
    /// ADX(14), Wilder.
    pub adx_14: Option<f64>,
    /// Upper Bollinger band (20, 2).
    pub bb_upper: Option<f64>,
    /// Middle Bollinger band (SMA 20).
    pub bb_middle: Option<f64>,
    /// Lower Bollinger band (20, 2).
    pub bb_lower: Option<f64>,
    /// Bollinger %B.
    pub bb_percent_b: Option<f64>,
    /// close ÷ 252-bar high − 1.
    pub high_252_dist: Option<f64>,
    /// close ÷ 252-bar low − 1.
    pub low_252_dist: Option<f64>,
    /// volume ÷ SMA(volume, 20).
    pub volume_ratio_20: Option<f64>,
    /// 21-bar return.
    pub return_21: Option<f64>,
    /// 63-bar return.
    pub return_63: Option<f64>,
    /// 126-bar return.
    pub return_126: Option<f64>,
    /// 252-bar return.
    pub return_252: Option<f64>,
}

/// Every window indicator (see [`Snapshot::recent_masked`]).
pub const ALL: u32 = (1 << 22) - 1;

/// The indicator names of the standard scan, in output order.
pub const INDICATOR_NAMES: [&str; 22] = [
    "sma_20",
    "sma_50",
    "sma_200",
    "ema_12",
    "ema_26",
    "macd",
    "macd_signal",
    "macd_hist",
    "rsi_14",
    "atr_14",
    "adx_14",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "bb_percent_b",
    "high_252_dist",
    "low_252_dist",
    "volume_ratio_20",
    "return_21",
    "return_63",
    "return_126",
    "return_252",
];

impl Snapshot {
    /// Computes every standard-scan indicator at the last bar of `bars`.
    pub fn compute(bars: &Bars) -> Self {
        let (high, low, close, volume) = (&bars.high[..], &bars.low[..], &bars.close[..], &bars.volume[..]);
        Self::from_parts(high, low, close, volume, &short_or_fused(high, low, close))
    }

    /// The snapshots of the last `depth` sessions: `[0]` at the last bar, `[k]` at the bar `k` sessions
    /// before it (as [`Snapshot::compute`] on the bars up to it would give, bit for bit). Sessions before
    /// the first bar are all-`None`. The recursive indicators run once over the history; only the window
    /// ones are recomputed per session, so a depth of 6 costs little more than one snapshot.
    pub fn recent(bars: &Bars, depth: usize) -> Vec<Self> {
        Self::recent_masked(bars, depth, |_| ALL)
    }

    /// [`Snapshot::recent`] computing, `k` sessions back, only the window indicators whose bit is set in
    /// `mask(k)` (bit `j` is [`INDICATOR_NAMES`]`[j]`; the recursive indicators and returns are always
    /// set, they cost nothing extra). Unset ones are `None`. A screen that reads `sma_50[1]` does not pay
    /// for the 252-session extremes one session back.
    pub fn recent_masked(bars: &Bars, depth: usize, mask: impl Fn(usize) -> u32) -> Vec<Self> {
        let (high, low, close, volume) = (&bars.high[..], &bars.low[..], &bars.close[..], &bars.volume[..]);
        let n = close.len();
        let depth = depth.max(1);
        let prefix = |m: usize| (&high[..m], &low[..m], &close[..m], &volume[..m]);
        if n < FUSED_FROM + depth {
            return (0..depth)
                .map(|k| {
                    if k >= n {
                        return Self::default();
                    }
                    let (h, l, c, v) = prefix(n - k);
                    Self::from_parts_masked(h, l, c, v, &short_or_fused(h, l, c), mask(k))
                })
                .collect();
        }
        let mut out = vec![Self::default(); depth];
        let first = n + 1 - depth;
        let mut state = Recursive::seed(high, low, close);
        state.run(FUSED_FROM, &high[..first], &low[..first], &close[..first]);
        for m in first..=n {
            if m > first {
                state.run(m - 1, &high[..m], &low[..m], &close[..m]);
            }
            let (h, l, c, v) = prefix(m);
            out[n - m] = Self::from_parts_masked(h, l, c, v, &RecursiveValues::from(&state), mask(n - m));
        }
        out
    }

    /// The window indicators of the bars given plus the recursive values computed for them.
    fn from_parts(high: &[f64], low: &[f64], close: &[f64], volume: &[f64], rec: &RecursiveValues) -> Self {
        Self::from_parts_masked(high, low, close, volume, rec, ALL)
    }

    /// [`Snapshot::from_parts`] with only the window indicators `mask` names.
    fn from_parts_masked(
        high: &[f64],
        low: &[f64],
        close: &[f64],
        volume: &[f64],
        rec: &RecursiveValues,
        mask: u32,
    ) -> Self {
        let want = |j: usize| mask & (1 << j) != 0;
        let n = close.len();
        let mut s = Self::default();
        if n == 0 {
            return s;
        }
        let last = close[n - 1];

        let bands = (11..=14).any(want);
        if want(0) || bands {
            s.sma_20 = window_mean(close, 20);
        }
        if want(1) {
            s.sma_50 = window_mean(close, 50);
        }
        if want(2) {
            s.sma_200 = window_mean(close, 200);
        }
        if let Some(mid) = s.sma_20.filter(|_| bands) {
            let sd = population_sd(&close[n - 20..]);
            let (upper, lower) = (mid + 2.0 * sd, mid - 2.0 * sd);
            s.bb_upper = Some(upper);
            s.bb_middle = Some(mid);
            s.bb_lower = Some(lower);
            s.bb_percent_b = Some(percent_b(last, upper, lower));
        }
        if n >= 252 && (want(15) || want(16)) {
            let hi = lanes(&high[n - 252..], f64::NEG_INFINITY, f64::max);
            let lo = lanes(&low[n - 252..], f64::INFINITY, f64::min);
            s.high_252_dist = Some(last / hi - 1.0);
            s.low_252_dist = Some(last / lo - 1.0);
        }
        if want(17) {
            s.volume_ratio_20 = window_mean(volume, 20)
                .filter(|a| *a > 0.0)
                .map(|a| volume[n - 1] / a);
        }
        let ret = |k: usize| (n > k).then(|| last / close[n - 1 - k] - 1.0);
        s.return_21 = ret(21);
        s.return_63 = ret(63);
        s.return_126 = ret(126);
        s.return_252 = ret(252);

        s.ema_12 = rec.ema_12;
        s.ema_26 = rec.ema_26;
        s.macd = rec.macd;
        s.macd_signal = rec.macd_signal;
        s.macd_hist = rec.macd_signal.and_then(|sig| rec.macd.map(|m| m - sig));
        s.rsi_14 = rec.rsi_14;
        s.atr_14 = rec.atr_14;
        s.adx_14 = rec.adx_14;
        s
    }

    /// The values as `(name, value)` pairs in [`INDICATOR_NAMES`] order.
    pub fn fields(&self) -> [(&'static str, Option<f64>); 22] {
        let v = [
            self.sma_20,
            self.sma_50,
            self.sma_200,
            self.ema_12,
            self.ema_26,
            self.macd,
            self.macd_signal,
            self.macd_hist,
            self.rsi_14,
            self.atr_14,
            self.adx_14,
            self.bb_upper,
            self.bb_middle,
            self.bb_lower,
            self.bb_percent_b,
            self.high_252_dist,
            self.low_252_dist,
            self.volume_ratio_20,
            self.return_21,
            self.return_63,
            self.return_126,
            self.return_252,
        ];
        std::array::from_fn(|i| (INDICATOR_NAMES[i], v[i]))
    }

    /// The value of the indicator called `name`, if the name is known and the value defined.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.fields()
            .into_iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v)
    }
}

fn window_mean(values: &[f64], n: usize) -> Option<f64> {
    (values.len() >= n).then(|| lanes(&values[values.len() - n..], 0.0, |a, b| a + b) / n as f64)
}

/// Folds `values` with `op` over four independent lanes, then combines them. A plain fold is one long
/// dependency chain (the compiler may not reorder floating-point adds); four lanes let the CPU overlap
/// them. For sums this reorders the additions: a rounding difference near 1e-16 relative.
#[inline]
pub(crate) fn lanes(values: &[f64], init: f64, op: impl Fn(f64, f64) -> f64) -> f64 {
    let mut acc = [init; 4];
    let chunks = values.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..4 {
            acc[k] = op(acc[k], c[k]);
        }
    }
    let mut total = op(op(acc[0], acc[1]), op(acc[2], acc[3]));
    for &v in rest {
        total = op(total, v);
    }
    total
}

/// Every recursive indicator is defined once this many bars exist (MACD's signal starts at index 33).
const FUSED_FROM: usize = 34;

/// Last-bar values of the recursive indicators.
#[derive(Default)]
struct RecursiveValues {
    ema_12: Option<f64>,
    ema_26: Option<f64>,
    macd: Option<f64>,
    macd_signal: Option<f64>,
    rsi_14: Option<f64>,
    atr_14: Option<f64>,
    adx_14: Option<f64>,
}

/// The running state of EMA 12/26, MACD(12, 26, 9), RSI 14, ATR 14 and ADX 14 after some bar.
#[derive(Debug, Clone, Copy)]
struct Recursive {
    ema12: f64,
    slow: f64,
    fast: f64,
    signal: f64,
    gain: f64,
    loss: f64,
    atr: f64,
    dm: DmState,
    adx: f64,
}

const K12: f64 = 2.0 / 13.0;
const K26: f64 = 2.0 / 27.0;
const K9: f64 = 2.0 / 10.0;
const R14: f64 = 1.0 / 14.0;
const W14: f64 = 13.0 / 14.0;

impl Recursive {
    /// The state after bar 33, seeded exactly as TA-Lib seeds each indicator (see the full-series
    /// functions): EMA 12 from closes[0..12]; EMA 26, which is also MACD's slow EMA, from closes[0..26];
    /// MACD's fast EMA from closes[14..26]; the signal from MACD[25..=33]; RSI and ATR from bars 1..=14;
    /// ADX from the DM sums of bars 1..14 and the mean DX of bars 14..=27. Needs at least 34 bars.
    fn seed(high: &[f64], low: &[f64], close: &[f64]) -> Self {
        let mut ema12 = close[..12].iter().sum::<f64>() / 12.0;
        for &c in &close[12..FUSED_FROM] {
            ema12 += (c - ema12) * K12;
        }
        let (mut gain, mut loss) = rsi_seed(close);
        for i in 15..FUSED_FROM {
            let d = close[i] - close[i - 1];
            gain = (gain * 13.0 + d.max(0.0)) / 14.0;
            loss = (loss * 13.0 + (-d).max(0.0)) / 14.0;
        }
        let mut slow = close[..26].iter().sum::<f64>() / 26.0;
        let mut fast = close[14..26].iter().sum::<f64>() / 12.0;
        let mut signal_sum = fast - slow;
        for &c in &close[26..FUSED_FROM] {
            slow += (c - slow) * K26;
            fast += (c - fast) * K12;
            signal_sum += fast - slow;
        }
        let mut atr = (1..=14).map(|i| tr(high[i], low[i], close[i - 1])).sum::<f64>() / 14.0;
        for i in 15..FUSED_FROM {
            atr = (atr * 13.0 + tr(high[i], low[i], close[i - 1])) / 14.0;
        }
        let mut dm = DmState::default();
        for i in 1..14 {
            dm.step(high, low, close, i, None);
        }
        let mut sum_dx = 0.0;
        for i in 14..28 {
            dm.step(high, low, close, i, Some(14.0));
            sum_dx += dm.dx().unwrap_or(0.0);
        }
        let mut adx = sum_dx / 14.0;
        for i in 28..FUSED_FROM {
            dm.step(high, low, close, i, Some(14.0));
            if let Some(dx) = dm.dx() {
                adx = (adx * 13.0 + dx) / 14.0;
            }
        }
        Self {
            ema12,
            slow,
            fast,
            signal: signal_sum / 9.0,
            gain,
            loss,
            atr,
            dm,
            adx,
        }
    }

    /// Advances every indicator over bars `34..` in one loop.
    ///
    /// Each update is written `state × w + input × (1 − w)` (Wilder: `w = 13/14`; EMA: `w = 1 − k`) so the
    /// loop-carried chain is one multiply and one add, and the DI ratio is taken once
    /// (`|−DM − +DM| ÷ (−DM + +DM)`: the TR and the factors of 100 cancel). That changes rounding by about
    /// 1e-16 per step, which the smoothing does not amplify: far inside the 1e-9 agreement with TA-Lib that
    /// the golden tests check. The exact-zero rules are unchanged.
    ///
    /// Two loops rather than one: all eleven running values plus constants do not fit in the 16 SSE
    /// registers, and spilling puts a store and a load on every loop-carried chain (profiled: about twice
    /// as slow). Each loop below keeps its state in registers.
    ///
    /// `from` is the first bar to advance over (`FUSED_FROM` after [`Recursive::seed`], or where an
    /// earlier call stopped).
    fn run(&mut self, from: usize, high: &[f64], low: &[f64], close: &[f64]) {
        let n = close.len().min(high.len()).min(low.len());
        let (high, low, close) = (&high[..n], &low[..n], &close[..n]);

        let (mut ema12, mut slow, mut fast, mut signal) = (self.ema12, self.slow, self.fast, self.signal);
        let (mut gain, mut loss) = (self.gain, self.loss);
        for i in from..n {
            let c = close[i];
            ema12 = ema12 * (1.0 - K12) + c * K12;
            slow = slow * (1.0 - K26) + c * K26;
            fast = fast * (1.0 - K12) + c * K12;
            signal = signal * (1.0 - K9) + (fast - slow) * K9;
            let d = c - close[i - 1];
            // Without a branch: whether a close rose is a coin toss a branch predictor loses half the time.
            let (up, down) = (d.max(0.0), (-d).max(0.0));
            gain = gain * W14 + up * R14;
            loss = loss * W14 + down * R14;
        }
        (
            self.ema12,
            self.slow,
            self.fast,
            self.signal,
            self.gain,
            self.loss,
        ) = (ema12, slow, fast, signal, gain, loss);

        let (mut atr, mut adx) = (self.atr, self.adx);
        let (mut minus_dm, mut plus_dm, mut tr_sum) = (self.dm.minus_dm, self.dm.plus_dm, self.dm.tr);
        for i in from..n {
            let (h, l, pc) = (high[i], low[i], close[i - 1]);
            let range = tr(h, l, pc);
            atr = atr * W14 + range * R14;
            let (up, down) = (h - high[i - 1], low[i - 1] - l);
            let minus = if down > 0.0 && up < down { down } else { 0.0 };
            let plus = if up > 0.0 && up > down { up } else { 0.0 };
            minus_dm = minus_dm * W14 + minus;
            plus_dm = plus_dm * W14 + plus;
            tr_sum = tr_sum * W14 + range;
            let di_sum = minus_dm + plus_dm;
            if tr_sum != 0.0 && di_sum != 0.0 {
                let dx = 100.0 * (minus_dm - plus_dm).abs() / di_sum;
                adx = adx * W14 + dx * R14;
            }
        }
        (self.atr, self.adx) = (atr, adx);
        self.dm = DmState {
            plus_dm,
            minus_dm,
            tr: tr_sum,
        };
    }
}

impl From<&Recursive> for RecursiveValues {
    fn from(st: &Recursive) -> Self {
        Self {
            ema_12: Some(st.ema12),
            ema_26: Some(st.slow),
            macd: Some(st.fast - st.slow),
            macd_signal: Some(st.signal),
            rsi_14: Some(rsi_value(st.gain, st.loss)),
            atr_14: Some(st.atr),
            adx_14: Some(st.adx),
        }
    }
}

/// The recursive values of a history of any length. The common case seeds every recursive indicator over
/// the first 34 bars, then advances all of them together in one tight loop.
fn short_or_fused(high: &[f64], low: &[f64], close: &[f64]) -> RecursiveValues {
    if close.len() > FUSED_FROM {
        let mut state = Recursive::seed(high, low, close);
        state.run(FUSED_FROM, high, low, close);
        RecursiveValues::from(&state)
    } else {
        short_history(high, low, close)
    }
}

/// RSI 14's seed: the mean gain and mean loss of the first 14 changes (needs at least 15 closes).
fn rsi_seed(close: &[f64]) -> (f64, f64) {
    let (mut gain, mut loss) = (0.0, 0.0);
    for w in close[..15].windows(2) {
        let d = w[1] - w[0];
        if d < 0.0 {
            loss -= d;
        } else {
            gain += d;
        }
    }
    (gain / 14.0, loss / 14.0)
}

/// The recursive indicators for a history of at most 34 bars, where some are still undefined.
fn short_history(high: &[f64], low: &[f64], close: &[f64]) -> RecursiveValues {
    let c = close_recursive(close);
    let (atr_14, adx_14) = range_recursive(high, low, close);
    RecursiveValues {
        ema_12: c.ema_12,
        ema_26: c.ema_26,
        macd: c.macd,
        macd_signal: c.macd_signal,
        rsi_14: c.rsi_14,
        atr_14,
        adx_14,
    }
}

#[derive(Default)]
struct CloseRecursive {
    ema_12: Option<f64>,
    ema_26: Option<f64>,
    macd: Option<f64>,
    macd_signal: Option<f64>,
    rsi_14: Option<f64>,
}

/// EMA 12/26, MACD(12, 26, 9) and RSI 14 in one pass over the closes.
///
/// Seeding follows TA-Lib: EMA 12 from closes[0..12], EMA 26 (= MACD's slow EMA) from closes[0..26],
/// MACD's fast EMA from closes[14..26], the signal from MACD[25..=33], RSI from the first 14 changes.
fn close_recursive(close: &[f64]) -> CloseRecursive {
    let n = close.len();
    let mut out = CloseRecursive::default();
    if n < 12 {
        return out;
    }
    let mut ema12 = close[..12].iter().sum::<f64>() / 12.0;
    for &c in &close[12..] {
        ema12 += (c - ema12) * K12;
    }
    out.ema_12 = Some(ema12);
    if n < 15 {
        return out;
    }
    let (mut gain, mut loss) = rsi_seed(close);
    for i in 15..n {
        let d = close[i] - close[i - 1];
        // Same operation order as TA-Lib so the values agree to the last bits.
        gain *= 13.0;
        loss *= 13.0;
        if d < 0.0 {
            loss -= d;
        } else {
            gain += d;
        }
        gain /= 14.0;
        loss /= 14.0;
    }
    out.rsi_14 = Some(rsi_value(gain, loss));
    if n < 26 {
        return out;
    }
    let mut slow = close[..26].iter().sum::<f64>() / 26.0;
    let mut fast = close[14..26].iter().sum::<f64>() / 12.0;
    let mut seed = fast - slow;
    for &c in &close[26..n.min(34)] {
        slow += (c - slow) * K26;
        fast += (c - fast) * K12;
        seed += fast - slow;
    }
    if n >= 34 {
        let mut signal = seed / 9.0;
        for &c in &close[34..] {
            slow += (c - slow) * K26;
            fast += (c - fast) * K12;
            signal += ((fast - slow) - signal) * K9;
        }
        out.macd = Some(fast - slow);
        out.macd_signal = Some(signal);
    }
    out.ema_26 = Some(slow);
    out
}

/// ATR 14 and ADX 14 in one pass over high, low and close (TA-Lib seeding; see [`super::adx`]).
fn range_recursive(high: &[f64], low: &[f64], close: &[f64]) -> (Option<f64>, Option<f64>) {
    const N: f64 = 14.0;
    let len = high.len().min(low.len()).min(close.len());
    if len <= 14 {
        return (None, None);
    }
    let mut st = DmState::default();
    let mut atr = 0.0;
    for i in 1..14 {
        st.step(high, low, close, i, None);
        atr += tr(high[i], low[i], close[i - 1]);
    }
    atr = (atr + tr(high[14], low[14], close[13])) / N;
    let mut sum_dx = 0.0;
    for i in 14..len.min(28) {
        if i > 14 {
            atr = (atr * (N - 1.0) + tr(high[i], low[i], close[i - 1])) / N;
        }
        st.step(high, low, close, i, Some(N));
        sum_dx += st.dx().unwrap_or(0.0);
    }
    if len < 28 {
        return (Some(atr), None);
    }
    let mut adx = sum_dx / N;
    for i in 28..len {
        atr = (atr * (N - 1.0) + tr(high[i], low[i], close[i - 1])) / N;
        st.step(high, low, close, i, Some(N));
        if let Some(dx) = st.dx() {
            adx = (adx * (N - 1.0) + dx) / N;
        }
    }
    (Some(atr), Some(adx))
}
