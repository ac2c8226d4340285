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
