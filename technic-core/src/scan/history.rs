//! Bars through the store: delta fetches, write-through and lazy loading of the history window.
//!
//! Before fetching, the scan reads in batched queries what the store holds for every symbol (its
//! [`BarExtent`]) and the stored bars inside the history window. Per symbol it then asks the provider
//! only for what is missing ([`missing_ranges`]):
//! - nothing stored: the requested range;
//! - fewer than [`HISTORY_BARS`] stored and the range starts before the earliest date the provider was
//!   asked from: that earlier part (once: the ask is remembered even when it brings nothing);
//! - the store is behind: the dates after the last stored bar, up to the range's end.
//!
//! The store is **current** for a symbol when its last stored bar is on or after the last weekday on or
//! before the range's end (weekends have no bars), or the provider has already been asked through the
//! range's end (`fetched_to`, never later than today: a holiday, or a bar not yet published when an
//! earlier scan ran that day, is not asked for again until the next day). Each symbol is scored on its
//! last [`HISTORY_BARS`] bars; new bars are written back in one transaction when the fetch stage ends.

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

/// The part of `range` a scan reads from the store, given the earliest last-bar date among the symbols
/// (`anchor`): [`HISTORY_CALENDAR_DAYS`] ending there, so every symbol gets its full history window.
pub fn history_window(range: DateRange, anchor: NaiveDate) -> DateRange {
    let lazy = DateRange::ending(anchor.min(range.to), HISTORY_CALENDAR_DAYS);
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
    let Some(e) = extent else {
        return vec![range];
    };
    let mut out = Vec::new();
    if e.n_bars < HISTORY_BARS && range.from < e.fetched_from {
        let to = e.fetched_from.pred_opt().unwrap_or(e.fetched_from);
        out.push(DateRange {
            from: range.from,
            to: to.min(range.to),
        });
    }
    let current = e.fetched_to >= range.to || e.last >= last_weekday(range.to);
    if !current {
        let from = e.last.succ_opt().unwrap_or(e.last).max(range.from);
        out.push(DateRange { from, to: range.to });
    }
    out
}

/// What the store held when the scan started, and the updates to write back.
#[derive(Debug)]
pub(super) struct StoredHistory {
    extents: HashMap<Symbol, BarExtent>,
    /// Taken out symbol by symbol, so each symbol's bars are moved, not copied, and memory is freed as
    /// the fetch stage goes.
    bars: Mutex<HashMap<Symbol, Bars>>,
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
        let anchor = extents.values().map(|e| e.last).min();
        let bars = match anchor {
            Some(anchor) => store.load_bars(&stored, history_window(range, anchor)).await?,
            None => HashMap::new(),
        };
        Ok(Self {
            extents,
            bars: Mutex::new(bars),
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
        let today = chrono::Utc::now().date_naive();
        let stored = self.bars.lock().unwrap_or_else(|e| e.into_inner()).remove(symbol);
        let mut bars = stored.unwrap_or_default();
        for ask in &asks {
            let new = provider.daily_bars(symbol, *ask).await?.into_range(*ask);
            // Nothing new is a valid answer (a holiday, or no bar published yet).
            if !new.is_empty() {
                new.validate()
                    .map_err(|bad| Error::invalid_data(symbol.as_str(), bad.reason))?;
            }
            bars = merge_bars(&bars, &new);
            self.updates
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(BarsUpdate {
                    symbol: symbol.clone(),
                    bars: new,
                    fetched_from: ask.from,
                    fetched_to: ask.to.min(today).max(ask.from),
                });
        }
        let bars = bars.into_range(range);
        let bars = if bars.len() > HISTORY_BARS {
            bars.tail(HISTORY_BARS)
        } else {
            bars
        };
        Ok((bars, !asks.is_empty()))
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
    fn nothing_stored_asks_for_the_range() {
        let range = DateRange::new(d(2020, 1, 1), d(2024, 6, 28)).unwrap();
        assert_eq!(missing_ranges(None, range), vec![range]);
    }

    #[test]
    fn the_window_ends_at_the_earliest_last_bar() {
        let range = DateRange::new(d(2000, 1, 1), NaiveDate::MAX).unwrap();
        let w = history_window(range, d(2023, 12, 29));
        assert_eq!(w.to, NaiveDate::MAX);
        assert_eq!(w.from, d(2023, 12, 29) - Days::new(HISTORY_CALENDAR_DAYS - 1));
    }

    #[test]
    fn current_behind_and_weekend() {
        let range = DateRange::new(d(2022, 6, 1), d(2024, 6, 30)).unwrap(); // a Sunday
        let first = d(2022, 6, 1);
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
    fn short_history_is_backfilled_once() {
        let range = DateRange::new(d(2022, 6, 1), d(2024, 6, 28)).unwrap();
        let mut e = extent(d(2024, 1, 2), d(2024, 6, 28), d(2024, 6, 28));
        e.n_bars = 120;
        let asks = missing_ranges(Some(&e), range);
        assert_eq!(asks, vec![DateRange::new(range.from, d(2024, 1, 1)).unwrap()]);
        // Once asked from the range's start, not again, even if the provider had nothing.
        e.fetched_from = range.from;
        assert!(missing_ranges(Some(&e), range).is_empty());
    }
}
