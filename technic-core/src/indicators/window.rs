//! Window indicators that are not TA-Lib functions: distance from the 252-bar high and low, volume ratio,
//! Bollinger %B and simple returns.

use super::average::sma;

/// `close ÷ max(high over the last n bars, current included) − 1`; first output at index `n − 1`.
pub fn high_dist(high: &[f64], close: &[f64], n: usize) -> Vec<Option<f64>> {
    window_dist(high, close, n, f64::max, f64::NEG_INFINITY)
}

/// `close ÷ min(low over the last n bars, current included) − 1`; first output at index `n − 1`.
pub fn low_dist(low: &[f64], close: &[f64], n: usize) -> Vec<Option<f64>> {
    window_dist(low, close, n, f64::min, f64::INFINITY)
}

fn window_dist(
    extreme: &[f64],
    close: &[f64],
    n: usize,
    pick: fn(f64, f64) -> f64,
    init: f64,
) -> Vec<Option<f64>> {
    let len = extreme.len().min(close.len());
    let mut out = vec![None; len];
    if n == 0 {
        return out;
    }
    for i in n.saturating_sub(1)..len {
        let e = extreme[i + 1 - n..=i].iter().copied().fold(init, pick);
        out[i] = Some(close[i] / e - 1.0);
    }
    out
}

/// `volume ÷ SMA(volume, n)`, current bar included; `None` when the average volume is 0.
pub fn volume_ratio(volume: &[f64], n: usize) -> Vec<Option<f64>> {
    sma(volume, n)
        .into_iter()
        .zip(volume)
        .map(|(avg, v)| avg.filter(|a| *a > 0.0).map(|a| v / a))
        .collect()
}

/// Bollinger %B: `(close − lower) ÷ (upper − lower)`, 0.5 when the bands touch.
pub fn percent_b(close: f64, upper: f64, lower: f64) -> f64 {
    let width = upper - lower;
    if width == 0.0 {
        0.5
    } else {
        (close - lower) / width
    }
}

/// `close[t] ÷ close[t − k] − 1`; first output at index `k`.
pub fn returns(close: &[f64], k: usize) -> Vec<Option<f64>> {
    (0..close.len())
        .map(|i| (i >= k && k > 0).then(|| close[i] / close[i - k] - 1.0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_values_by_hand() {
        let high = [10.0, 12.0, 11.0];
        let low = [8.0, 9.0, 7.0];
        let close = [9.0, 11.0, 10.5];
        assert_eq!(
            high_dist(&high, &close, 2),
            vec![None, Some(11.0 / 12.0 - 1.0), Some(10.5 / 12.0 - 1.0)]
        );
        assert_eq!(low_dist(&low, &close, 3)[2], Some(10.5 / 7.0 - 1.0));
        assert_eq!(returns(&close, 1)[2], Some(10.5 / 11.0 - 1.0));
        assert_eq!(volume_ratio(&[1.0, 3.0], 2), vec![None, Some(1.5)]);
        assert_eq!(volume_ratio(&[0.0, 0.0], 2), vec![None, None]);
        assert_eq!(percent_b(5.0, 5.0, 5.0), 0.5);
        assert_eq!(percent_b(7.5, 10.0, 5.0), 0.5);
    }
}
