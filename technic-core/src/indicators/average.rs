//! Moving averages and the indicators built from them: SMA, EMA, MACD and Bollinger bands.

/// Simple moving average over `n` values; first output at index `n - 1`.
///
/// Uses a running sum like TA-Lib (agrees with a fresh sum per window to ~1e-12 relative).
pub fn sma(values: &[f64], n: usize) -> Vec<Option<f64>> {
    let mut out = vec![None; values.len()];
    if n == 0 || values.len() < n {
        return out;
    }
    let mut sum: f64 = values[..n - 1].iter().sum();
    for i in n - 1..values.len() {
        sum += values[i];
        out[i] = Some(sum / n as f64);
        sum -= values[i + 1 - n];
    }
    out
}

/// Exponential moving average with `k = 2 / (n + 1)`, seeded with the SMA of the first `n` values
/// (first output at index `n - 1`), as TA-Lib does by default.
pub fn ema(values: &[f64], n: usize) -> Vec<Option<f64>> {
    ema_from(values, n, 0)
}

/// EMA whose seed window starts at `start`: the first output is at `start + n - 1`.
fn ema_from(values: &[f64], n: usize, start: usize) -> Vec<Option<f64>> {
    let mut out = vec![None; values.len()];
    if n == 0 || values.len() < start + n {
        return out;
    }
    let k = 2.0 / (n as f64 + 1.0);
    let first = start + n - 1;
    let mut prev = values[start..=first].iter().sum::<f64>() / n as f64;
    out[first] = Some(prev);
    for i in first + 1..values.len() {
        prev += (values[i] - prev) * k;
        out[i] = Some(prev);
    }
    out
}

/// MACD line, signal line and histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct Macd {
    /// Fast EMA minus slow EMA.
    pub macd: Vec<Option<f64>>,
    /// EMA of the MACD line.
    pub signal: Vec<Option<f64>>,
    /// MACD minus signal.
    pub hist: Vec<Option<f64>>,
}

/// TA-Lib's MACD(fast, slow, signal).
///
/// Not `EMA(fast) − EMA(slow)` from separately seeded EMAs: TA-Lib seeds the fast EMA with the SMA of the
/// `fast` closes that end where the slow EMA's first value is (closes[14..=25] for 12/26), and the signal
/// EMA with the SMA of the first `signal` MACD values. Every output therefore starts at index
/// `slow - 1 + signal - 1` (33 for 12/26/9). `fast` larger than `slow` is swapped, as TA-Lib does.
pub fn macd(close: &[f64], fast: usize, slow: usize, signal: usize) -> Macd {
    let (fast, slow) = if slow < fast { (slow, fast) } else { (fast, slow) };
    let len = close.len();
    let none = || vec![None; len];
    let mut out = Macd {
        macd: none(),
        signal: none(),
        hist: none(),
    };
    if fast == 0 || signal == 0 || len < slow + signal - 1 {
        return out;
    }
    let slow_first = slow - 1;
    let slow_ema = ema_from(close, slow, 0);
    let fast_ema = ema_from(close, fast, slow_first + 1 - fast);
    let line: Vec<f64> = (slow_first..len)
        .map(|i| fast_ema[i].unwrap_or(f64::NAN) - slow_ema[i].unwrap_or(f64::NAN))
        .collect();
    let sig = ema_from(&line, signal, 0);
    let first = slow_first + signal - 1;
    for i in first..len {
        let (m, s) = (line[i - slow_first], sig[i - slow_first].unwrap_or(f64::NAN));
        out.macd[i] = Some(m);
        out.signal[i] = Some(s);
        out.hist[i] = Some(m - s);
    }
    out
}

/// Bollinger bands: upper, middle and lower series.
#[derive(Debug, Clone, PartialEq)]
pub struct Bollinger {
    /// Middle + k × σ.
    pub upper: Vec<Option<f64>>,
    /// SMA(n).
    pub middle: Vec<Option<f64>>,
    /// Middle − k × σ.
    pub lower: Vec<Option<f64>>,
}

/// Bollinger(n, k): SMA(n) ± k × population standard deviation (divided by `n`).
pub fn bollinger(close: &[f64], n: usize, k: f64) -> Bollinger {
    let middle = sma(close, n);
    let mut upper = vec![None; close.len()];
    let mut lower = vec![None; close.len()];
    for (i, m) in middle.iter().enumerate() {
        if let Some(m) = *m {
            let sd = population_sd(&close[i + 1 - n..=i]);
            upper[i] = Some(m + k * sd);
            lower[i] = Some(m - k * sd);
        }
    }
    Bollinger { upper, middle, lower }
}

/// Population standard deviation of `window` (divided by its length).
///
/// Two-pass over the data shifted by the window's first value (`d = x − window[0]`), so there is no
/// cancellation error and a window of identical values has a deviation of exactly 0, as TA-Lib 0.8's has:
/// the bands then touch exactly and %B is 0.5. A two-pass around the SMA does not give that: the mean of 20
/// equal prices is often an ulp off the price (20 × 49.35 does not sum exactly), which leaves a ~1e-14
/// deviation, bands ~6e-14 apart and a %B of 0.25 or 0.75 on a flat window.
pub(crate) fn population_sd(window: &[f64]) -> f64 {
    let Some(&first) = window.first() else {
        return 0.0;
    };
    let n = window.len() as f64;
    let mean = window.iter().map(|x| x - first).sum::<f64>() / n;
    let var = window
        .iter()
        .map(|x| {
            let d = (x - first) - mean;
            d * d
        })
        .sum::<f64>()
        / n;
    var.max(0.0).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sma_by_hand() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(sma(&v, 3), vec![None, None, Some(2.0), Some(3.0), Some(4.0)]);
        assert_eq!(sma(&v, 6), vec![None; 5]);
        assert_eq!(sma(&v, 0), vec![None; 5]);
    }

    #[test]
    fn ema_seeded_with_sma() {
        let v = [2.0, 4.0, 6.0, 8.0];
        let e = ema(&v, 3);
        assert_eq!(e[..2], [None, None]);
        assert_eq!(e[2], Some(4.0));
        assert_eq!(e[3], Some(4.0 + (8.0 - 4.0) * 0.5));
    }

    #[test]
    fn macd_first_output_at_33() {
        let close: Vec<f64> = (0..60)
            .map(|i| 100.0 + (i as f64 * 0.7).sin() * 5.0 + i as f64 * 0.1)
            .collect();
        let m = macd(&close, 12, 26, 9);
        assert!(m.macd[32].is_none());
        assert!(m.macd[33].is_some() && m.signal[33].is_some() && m.hist[33].is_some());
        // By hand: fast EMA seeded over closes[14..=25], slow over closes[0..=25], signal over MACD[25..=33].
        let (kf, ks) = (2.0 / 13.0, 2.0 / 27.0);
        let mut fast = close[14..=25].iter().sum::<f64>() / 12.0;
        let mut slow = close[..=25].iter().sum::<f64>() / 26.0;
        let mut line = vec![fast - slow];
        for &c in &close[26..=33] {
            fast += (c - fast) * kf;
            slow += (c - slow) * ks;
            line.push(fast - slow);
        }
        let signal = line.iter().sum::<f64>() / 9.0;
        assert!((m.macd[33].unwrap() - line[8]).abs() < 1e-12);
        assert!((m.signal[33].unwrap() - signal).abs() < 1e-12);
    }

    #[test]
    fn bollinger_of_constant_is_flat() {
        let b = bollinger(&[5.0; 25], 20, 2.0);
        assert_eq!(b.upper[24], Some(5.0));
        assert_eq!(b.lower[24], Some(5.0));
        assert_eq!(b.middle[18], None);
    }
}
