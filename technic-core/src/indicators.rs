//! Indicator maths: pure functions over slices, no I/O, no errors.
//!
//! Full-series functions return one `Option<f64>` per input bar: `None` where there is not enough history
//! (never 0 or NaN). They follow TA-Lib 0.8 conventions, which the golden tests check to 1e-9 relative.
//! [`Snapshot::compute`] is the fused fast path a scan uses: it returns the same last-bar values in one pass
//! without allocating full output series.
//!
//! Architecture invariant: this module does no I/O and cannot fail.

mod average;
mod snapshot;
mod wilder;
mod window;

pub use average::{Bollinger, Macd, bollinger, ema, macd, sma};
pub(crate) use snapshot::{ALL as ALL_WINDOW_INDICATORS, lanes};
pub use snapshot::{INDICATOR_NAMES, Snapshot};
pub use wilder::{adx, atr, rsi, true_range};
pub use window::{high_dist, low_dist, percent_b, returns, volume_ratio};

/// The full-series indicators a chart can ask for by name (see [`series`]).
pub const SERIES_NAMES: [&str; 15] = [
    "sma_20",
    "sma_50",
    "sma_200",
    "ema_12",
    "ema_26",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "adx_14",
    "atr_14",
    "volume_sma_20",
];

/// The full series of the indicator called `name` (one of [`SERIES_NAMES`]) over `bars`, one value per
/// bar (`None` before the indicator is defined); `None` for an unknown name. The same functions the golden
/// tests check against TA-Lib, so a chart shows exactly what a scan computes.
pub fn series(bars: &crate::model::Bars, name: &str) -> Option<Vec<Option<f64>>> {
    let (h, l, c) = (&bars.high[..], &bars.low[..], &bars.close[..]);
    Some(match name {
        "sma_20" => sma(c, 20),
        "sma_50" => sma(c, 50),
        "sma_200" => sma(c, 200),
        "ema_12" => ema(c, 12),
        "ema_26" => ema(c, 26),
        "bb_upper" => bollinger(c, 20, 2.0).upper,
        "bb_middle" => bollinger(c, 20, 2.0).middle,
        "bb_lower" => bollinger(c, 20, 2.0).lower,
        "rsi_14" => rsi(c, 14),
        "macd" => macd(c, 12, 26, 9).macd,
        "macd_signal" => macd(c, 12, 26, 9).signal,
        "macd_hist" => macd(c, 12, 26, 9).hist,
        "adx_14" => adx(h, l, c, 14),
        "atr_14" => atr(h, l, c, 14),
        "volume_sma_20" => sma(&bars.volume, 20),
        _ => return None,
    })
}
