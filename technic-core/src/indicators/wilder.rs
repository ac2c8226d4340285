//! Wilder-smoothed indicators (α = 1/n): RSI, ATR and ADX, replayed from the first bar as TA-Lib does,
//! so each value depends on all the history before it.
//!
//! Zero tests are exact, as in TA-Lib 0.8 (C 0.8.1): RSI is 0 only when the average gain and loss are both
//! exactly 0, and a DX is undefined only when the smoothed true range or the DI sum is exactly 0. (TA-Lib
//! 0.4 used a fixed 1e-8 band, `TA_IS_ZERO`; 0.8 does not: after a long flat run Wilder's averages decay
//! far below 1e-8 and TA-Lib keeps computing RSI and DX from them. The golden fixture `flat_stretches`
//! covers this.)

/// True range per bar: `max(high − low, |high − prev close|, |low − prev close|)`; `None` at bar 0
/// (TA-Lib's TRANGE starts at index 1).
pub fn true_range(high: &[f64], low: &[f64], close: &[f64]) -> Vec<Option<f64>> {
    let n = high.len().min(low.len()).min(close.len());
    let mut out = vec![None; n];
    for i in 1..n {
        out[i] = Some(tr(high[i], low[i], close[i - 1]));
    }
    out
}

#[inline]
pub(crate) fn tr(high: f64, low: f64, prev_close: f64) -> f64 {
    // Comparisons as TA-Lib writes them; unlike `f64::max` they compile to one `maxsd` each (prices are
    // validated finite, so NaN handling is not needed).
    let mut greatest = high - low;
    let to_high = (prev_close - high).abs();
    if to_high > greatest {
        greatest = to_high;
    }
    let to_low = (prev_close - low).abs();
    if to_low > greatest {
        greatest = to_low;
    }
    greatest
}

/// RSI(n), first output at index `n`. The seed averages the first `n` gains and losses; after that
/// `avg = (avg × (n − 1) + x) / n`. RSI is 0 when average gain and loss are both 0 (TA-Lib's rule).
pub fn rsi(close: &[f64], n: usize) -> Vec<Option<f64>> {
    let mut out = vec![None; close.len()];
    if n < 2 || close.len() <= n {
        return out;
    }
    let nf = n as f64;
    let (mut gain, mut loss) = (0.0, 0.0);
    for i in 1..=n {
        let d = close[i] - close[i - 1];
        if d < 0.0 {
            loss -= d;
        } else {
            gain += d;
        }
    }
    gain /= nf;
    loss /= nf;
    out[n] = Some(rsi_value(gain, loss));
    for i in n + 1..close.len() {
        let d = close[i] - close[i - 1];
        gain *= nf - 1.0;
        loss *= nf - 1.0;
        if d < 0.0 {
            loss -= d;
        } else {
            gain += d;
        }
        gain /= nf;
        loss /= nf;
        out[i] = Some(rsi_value(gain, loss));
    }
    out
}

#[inline]
pub(crate) fn rsi_value(gain: f64, loss: f64) -> f64 {
    let total = gain + loss;
    if total == 0.0 { 0.0 } else { 100.0 * (gain / total) }
}

/// ATR(n), first output at index `n`: the mean true range of bars `1..=n`, then Wilder smoothing.
pub fn atr(high: &[f64], low: &[f64], close: &[f64], n: usize) -> Vec<Option<f64>> {
    let len = high.len().min(low.len()).min(close.len());
    let mut out = vec![None; len];
    if n < 1 || len <= n {
        return out;
    }
    let nf = n as f64;
    let mut avg = (1..=n).map(|i| tr(high[i], low[i], close[i - 1])).sum::<f64>() / nf;
    out[n] = Some(avg);
    for i in n + 1..len {
        avg = (avg * (nf - 1.0) + tr(high[i], low[i], close[i - 1])) / nf;
        out[i] = Some(avg);
    }
    out
}

/// Running state of TA-Lib's ADX: Wilder sums of +DM, −DM and TR.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DmState {
    pub plus_dm: f64,
    pub minus_dm: f64,
    pub tr: f64,
}

impl DmState {
    /// Adds bar `i`'s directional movement and true range; `decay` applies Wilder's `x -= x / n` first.
    #[inline]
    pub fn step(&mut self, high: &[f64], low: &[f64], close: &[f64], i: usize, decay: Option<f64>) {
        if let Some(nf) = decay {
            self.plus_dm -= self.plus_dm / nf;
            self.minus_dm -= self.minus_dm / nf;
            self.tr -= self.tr / nf;
        }
        let up = high[i] - high[i - 1];
        let down = low[i - 1] - low[i];
        if down > 0.0 && up < down {
            self.minus_dm += down;
        } else if up > 0.0 && up > down {
            self.plus_dm += up;
        }
        self.tr += tr(high[i], low[i], close[i - 1]);
    }

    /// The directional index for the current sums, when TA-Lib defines one.
    #[inline]
    pub fn dx(&self) -> Option<f64> {
        if self.tr == 0.0 {
            return None;
        }
        let minus_di = 100.0 * (self.minus_dm / self.tr);
        let plus_di = 100.0 * (self.plus_dm / self.tr);
        let sum = minus_di + plus_di;
        (sum != 0.0).then(|| 100.0 * ((minus_di - plus_di).abs() / sum))
    }
}

/// ADX(n), first output at index `2n − 1` (27 for n = 14), following TA-Lib exactly: +DM/−DM/TR are
/// summed over bars `1..n`, then Wilder-smoothed; the first ADX is the mean DX of bars `n..=2n−1`; after
/// that `adx = (adx × (n − 1) + dx) / n`, keeping the previous value when DX is undefined.
pub fn adx(high: &[f64], low: &[f64], close: &[f64], n: usize) -> Vec<Option<f64>> {
    let len = high.len().min(low.len()).min(close.len());
    let mut out = vec![None; len];
    if n < 2 || len < 2 * n {
        return out;
    }
    let nf = n as f64;
    let mut st = DmState::default();
    for i in 1..n {
        st.step(high, low, close, i, None);
    }
    let mut sum_dx = 0.0;
    for i in n..2 * n {
        st.step(high, low, close, i, Some(nf));
        sum_dx += st.dx().unwrap_or(0.0);
    }
    let mut value = sum_dx / nf;
    out[2 * n - 1] = Some(value);
    for (i, slot) in out.iter_mut().enumerate().skip(2 * n) {
        st.step(high, low, close, i, Some(nf));
        if let Some(dx) = st.dx() {
            value = (value * (nf - 1.0) + dx) / nf;
        }
        *slot = Some(value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsi_extremes() {
        let up: Vec<f64> = (0..30).map(f64::from).collect();
        assert_eq!(rsi(&up, 14)[29], Some(100.0));
        let down: Vec<f64> = (0..30).map(|i| 100.0 - f64::from(i)).collect();
        assert_eq!(rsi(&down, 14)[29], Some(0.0));
        assert_eq!(rsi(&[5.0; 30], 14)[29], Some(0.0));
        assert_eq!(rsi(&up, 14)[13], None);
    }

    #[test]
    fn atr_of_fixed_range() {
        let h = [11.0; 20];
        let l = [9.0; 20];
        let c = [10.0; 20];
        let a = atr(&h, &l, &c, 14);
        assert_eq!(a[13], None);
        assert_eq!(a[14], Some(2.0));
        assert_eq!(a[19], Some(2.0));
    }

    #[test]
    fn adx_of_steady_uptrend_is_100() {
        let h: Vec<f64> = (0..40).map(|i| 11.0 + f64::from(i)).collect();
        let l: Vec<f64> = (0..40).map(|i| 9.0 + f64::from(i)).collect();
        let c: Vec<f64> = (0..40).map(|i| 10.0 + f64::from(i)).collect();
        let a = adx(&h, &l, &c, 14);
        assert_eq!(a[26], None);
        assert!((a[27].unwrap() - 100.0).abs() < 1e-9);
        assert!((a[39].unwrap() - 100.0).abs() < 1e-9);
    }
}
