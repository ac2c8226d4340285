//! Bars through the store: the lazy history window, delta fetches and write-through.
//!
//! Before fetching, the scan reads in two batched queries what the store holds for every symbol (its
//! [`BarExtent`]) and the bars inside the history window. Per symbol it then asks the provider only for
//! what is missing:
//! - nothing stored: the window (not the whole requested range: indicators need no more);
//! - the window starts before the earliest date the provider was asked from: that earlier part;
//! - the store is behind: the dates after the last stored bar, up to the range's end.
//!
//! The store is **current** for a symbol when the provider has already been asked through the range's
//! end (`fetched_to ≥ to`; a holiday or a bar not yet published is not asked for twice), or its last
//! stored bar is on or after the last weekday on or before the range's end (Saturday and Sunday have no
//! bars). New bars are written back in one transaction once the fetch stage ends.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{Datelike, Days, NaiveDate, Weekday};

use crate::error::{Error, Result};
use crate::model::{Bars, DateRange, Symbol};
use crate::provider::DataProvider;
use crate::store::{BarExtent, BarsUpdate, Store, merge_bars};

/// Bars a scan loads per symbol: 252 for the longest look-backs (52-week high/low, `return_252`), plus
/// 252 of warm-up for the Wilder recurrences (RSI, ATR, ADX) and the EMAs, whose dependence on the
/// seed decays as (13/14)^252 ≈ 8e-9 — below the 1e-9-relative agreement the indicators keep with TA-Lib
/// on typical series — so more history would not change a reported value.
pub const HISTORY_BARS: usize = 504;

/// Calendar days that hold [`HISTORY_BARS`] trading days: 504 × 365.25 / 252 ≈ 731, plus a month for
/// holidays and gaps.
pub const HISTORY_CALENDAR_DAYS: u64 = 762;

/// The part of `range` a scan reads: its last [`HISTORY_CALENDAR_DAYS`].
pub fn history_window(range: DateRange) -> DateRange {
    let lazy = DateRange::ending(range.to, HISTORY_CALENDAR_DAYS);
    DateRange {
        from: lazy.from.max(range.from),
        to: range.to,
    }
}

/// The last weekday on or before `d`.
pub fn last_weekday(d: NaiveDate) -> NaiveDate {
    let back = match d.weekday() {
        Weekday::Sat => 1,
        Weekday::Sun => 2,
        _ => 0,
    };
    d.checked_sub_days(Days::new(back)).unwrap_or(d)
}

/// The ranges to ask the provider for, given what is stored (see the module docs).
pub fn missing_ranges(extent: Option<&BarExtent>, range: DateRange) -> Vec<DateRange> {
    let window = history_window(range);
    let Some(e) = extent else {
        return vec![window];
    };
    let mut out = Vec::new();
    if window.from < e.fetched_from {
        let to = e.fetched_from.pred_opt().unwrap_or(e.fetched_from);
        out.push(DateRange {
            from: window.from,
            to: to.min(window.to),
        });
    }
    let current = e.fetched_to >= window.to || e.last >= last_weekday(window.to);
    if !current {
        let from = e.last.succ_opt().unwrap_or(e.last).max(window.from);
        out.push(DateRange { from, to: window.to });
    }
    out
}

/// What the store held when the scan started, and the updates to write back.
#[derive(Debug)]
pub(super) struct StoredHistory {
    extents: HashMap<Symbol, BarExtent>,
    bars: HashMap<Symbol, Bars>,
    updates: Mutex<Vec<BarsUpdate>>,
}

impl StoredHistory {
    /// Reads extents and windowed bars of `symbols` (two batched queries).
    pub(super) async fn load(store: &dyn Store, symbols: &[Symbol], range: DateRange) -> Result<Self> {
        let extents = store.bar_extents(symbols).await?;
        let stored: Vec<Symbol> = symbols
            .iter()
            .filter(|s| extents.contains_key(*s))
            .cloned()
            .collect();
        let bars = if stored.is_empty() {
            HashMap::new()
        } else {
            store.load_bars(&stored, history_window(range)).await?
        };
        Ok(Self {
            extents,
            bars,
            updates: Mutex::new(Vec::new()),
        })
    }

    /// The last [`HISTORY_BARS`] of `symbol` within `range`: stored bars plus what the provider adds.
    /// Returns the bars and whether the provider was asked.
    pub(super) async fn bars(
        &self,
        provider: &dyn DataProvider,
        symbol: &Symbol,
        range: DateRange,
    ) -> Result<(Bars, bool)> {
        let asks = missing_ranges(self.extents.get(symbol), range);
        let mut bars = self.bars.get(symbol).cloned().unwrap_or_default();
        for ask in &asks {
            let new = provider.daily_bars(symbol, *ask).await?.into_range(*ask);
            new.validate()
                .map_err(|bad| Error::invalid_data(symbol.as_str(), bad.reason))?;
            bars = merge_bars(&bars, &new);
            self.updates
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(BarsUpdate {
                    symbol: symbol.clone(),
                    bars: new,
                    fetched_from: ask.from,
                    fetched_to: ask.to,
                });
        }
        let bars = bars.into_range(history_window(range));
        Ok((bars.tail(HISTORY_BARS), !asks.is_empty()))
    }

    /// The updates gathered so far, emptied.
    pub(super) fn take_updates(&self) -> Vec<BarsUpdate> {
        std::mem::take(&mut *self.updates.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn extent(first: NaiveDate, last: NaiveDate, fetched_to: NaiveDate) -> BarExtent {
        BarExtent {
            first,
            last,
            n_bars: 500,
            fetched_from: first,
            fetched_to,
        }
    }

    #[test]
    fn nothing_stored_asks_for_the_window_only() {
        let range = DateRange::new(d(2020, 1, 1), d(2024, 6, 28)).unwrap();
        let asks = missing_ranges(None, range);
        assert_eq!(asks, vec![history_window(range)]);
        assert!(asks[0].from > range.from);
        assert_eq!(asks[0].to, range.to);
    }

    #[test]
    fn current_behind_and_weekend() {
        let range = DateRange::new(d(2022, 6, 1), d(2024, 6, 30)).unwrap(); // a Sunday
        let first = history_window(range).from;
        // Last bar on Friday the 28th: current.
        assert!(missing_ranges(Some(&extent(first, d(2024, 6, 28), d(2024, 6, 28))), range).is_empty());
        // Behind: ask from the day after the last bar.
        let asks = missing_ranges(Some(&extent(first, d(2024, 6, 20), d(2024, 6, 20))), range);
        assert_eq!(
            asks,
            vec![DateRange::new(d(2024, 6, 21), d(2024, 6, 30)).unwrap()]
        );
        // Already asked through the end (holiday): nothing.
        assert!(missing_ranges(Some(&extent(first, d(2024, 6, 20), d(2024, 6, 30))), range).is_empty());
    }

    #[test]
    fn earlier_history_is_backfilled() {
        let range = DateRange::new(d(2022, 6, 1), d(2024, 6, 28)).unwrap();
        let window = history_window(range);
        let e = extent(d(2024, 1, 2), d(2024, 6, 28), d(2024, 6, 28));
        let asks = missing_ranges(Some(&e), range);
        assert_eq!(asks, vec![DateRange::new(window.from, d(2024, 1, 1)).unwrap()]);
    }
}
