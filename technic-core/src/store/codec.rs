//! The binary layout of a block of bars: one symbol's bars of one calendar year, column-wise.
//!
//! `n` little-endian `i32` day numbers (days since 0001-01-01, chrono's `num_days_from_ce`), then `n`
//! `f64` values for each of open, high, low, close and volume. Decoding a block is a few `memcpy`-like
//! loops, which is why a warm scan reads 5000 × 504 bars in tens of milliseconds instead of the seconds a
//! row per bar costs (see docs/BENCHMARKS.md, "Store").

use chrono::{Datelike, NaiveDate};

use crate::model::Bars;

/// Bytes per bar in a block.
const BAR_BYTES: usize = 4 + 5 * 8;

/// Encodes `bars[start..end]`.
pub(crate) fn encode(bars: &Bars, start: usize, end: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity((end - start) * BAR_BYTES);
    for d in &bars.date[start..end] {
        out.extend_from_slice(&d.num_days_from_ce().to_le_bytes());
    }
    for col in [&bars.open, &bars.high, &bars.low, &bars.close, &bars.volume] {
        for v in &col[start..end] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// Appends a block's bars to `out`. Returns an error message when the block is malformed.
pub(crate) fn decode_into(block: &[u8], out: &mut Bars) -> Result<(), String> {
    if !block.len().is_multiple_of(BAR_BYTES) {
        return Err(format!(
            "bar block of {} bytes is not a whole number of bars",
            block.len()
        ));
    }
    let n = block.len() / BAR_BYTES;
    let (days, values) = block.split_at(4 * n);
    for chunk in days.chunks_exact(4) {
        let day = i32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let date = NaiveDate::from_num_days_from_ce_opt(day)
            .ok_or_else(|| format!("bar block holds an invalid day number {day}"))?;
        out.date.push(date);
    }
    let cols = [
        &mut out.open,
        &mut out.high,
        &mut out.low,
        &mut out.close,
        &mut out.volume,
    ];
    for (col, bytes) in cols.into_iter().zip(values.chunks_exact(8 * n.max(1))) {
        col.extend(
            bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])),
        );
    }
    Ok(())
}

/// A date's day number as stored (days since 0001-01-01).
pub(super) fn day(d: NaiveDate) -> i64 {
    i64::from(d.num_days_from_ce())
}

/// The date of a stored day number.
pub(super) fn date(day: i64) -> Option<NaiveDate> {
    i32::try_from(day)
        .ok()
        .and_then(NaiveDate::from_num_days_from_ce_opt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_bars;

    #[test]
    fn round_trips_a_slice() {
        let bars = sample_bars(40, 10.0);
        let mut out = Bars::default();
        decode_into(&encode(&bars, 5, 30), &mut out).unwrap();
        decode_into(&encode(&bars, 30, 40), &mut out).unwrap();
        assert_eq!(out, bars.tail(35));
        assert!(decode_into(&[1, 2, 3], &mut out).is_err());
    }
}
