//! Bars through the store: delta fetches on the trading calendar, corporate-action checks, whole-market
//! (grouped daily) updates, write-through and lazy loading of the history window.
//!
//! Only a live source's bars are stored ([`DataProvider::live_source`]); they are kept under that source's
//! name. Before fetching, the scan reads in batched queries what the store holds for every symbol (its
//! [`BarExtent`]) and the stored bars inside the history window. Per symbol it then asks the provider only
//! for what is missing ([`missing_ranges`]), given the **target**: the newest session that should have a
//! published bar within the requested range (see [`crate::calendar::Market::expected_session`]):
//! - nothing stored: the requested range;
//! - fewer than [`HISTORY_BARS`] stored and the range starts before the earliest date the provider was
//!   asked from: that earlier part (once: the ask is remembered even when it brings nothing);
//! - the store is behind the target: from the last stored bar (an overlap of one bar) to the target.
//!
//! The store is **current** for a symbol when its last stored bar is the target or later, or the provider
//! has already been asked through the target and had nothing (a halted symbol). An empty delta is normal:
//! the symbol scans with its stored bars. Bars after the target (a session still open, or not yet
//! published) are never stored.
//!
//! **Corporate actions**: the overlapping bar must equal the stored one (within rounding). When it does
//! not (a split or a re-adjustment changed past prices), the symbol's whole history is fetched again and
//! replaces the stored one, and the scan counts it in `adjustments`.
//!
//! **Whole-market updates**: when many symbols miss the same few sessions, each of those sessions is
//! fetched once for the whole market ([`DataProvider::grouped_daily`]); a symbol missing from a grouped
//! answer falls back to its own request.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use chrono::{Datelike, Days, NaiveDate, Weekday};
use tracing::{info, warn};

use crate::calendar::MarketCalendar;
use crate::error::{Error, Result};
use crate::model::{Bar, Bars, DateRange, Symbol};
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

/// Delta asks spanning more sessions than this are fetched per symbol, not with grouped daily bars.
pub const MAX_GROUPED_SESSIONS: usize = 10;

/// Two prices are the same bar's when they differ by at most this share (or half a hundredth of a cent,
/// the rounding of a 4-decimal price feed, for small prices).
const PRICE_TOLERANCE: f64 = 1e-6;

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

/// The ranges to ask the provider for, given what is stored and the `target` session (see the module
/// docs). A delta ask starts at the last stored bar, which the provider returns again for comparison.
pub fn missing_ranges(extent: Option<&BarExtent>, range: DateRange, target: NaiveDate) -> Vec<DateRange> {
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
    let current = e.last >= target || e.fetched_to >= target;
    if !current {
        out.push(DateRange {
            from: e.last.max(range.from),
            to: target,
        });
    }
    out
}

/// True when `a` and `b` are the same bar within rounding (prices only: volumes are revised by feeds).
pub fn same_bar(a: &Bar, b: &Bar) -> bool {
    let close = |x: f64, y: f64| (x - y).abs() <= (PRICE_TOLERANCE * y.abs()).max(5e-5);
    a.date == b.date
        && close(a.open, b.open)
        && close(a.high, b.high)
        && close(a.low, b.low)
        && close(a.close, b.close)
}

/// What the store held when the scan started, and the updates to write back.
#[derive(Debug)]
pub(super) struct StoredHistory {
    source: String,
    target: NaiveDate,
    calendar: MarketCalendar,
    extents: HashMap<Symbol, BarExtent>,
    /// Taken out symbol by symbol, so each symbol's bars are moved, not copied, and memory is freed as
    /// the fetch stage goes.
    bars: Mutex<HashMap<Symbol, Bars>>,
    updates: Mutex<Vec<BarsUpdate>>,
    /// Sessions fetched for the whole market, and the bars they brought per symbol.
    grouped_dates: Vec<NaiveDate>,
    grouped: Mutex<HashMap<Symbol, Bars>>,
    /// Symbols whose history was replaced after a mismatch (split, re-adjustment).
    adjusted: Mutex<Vec<Symbol>>,
}

impl StoredHistory {
    /// Reads extents and windowed bars of `symbols` stored for `source` (two batched queries).
    pub(super) async fn load(
        store: &dyn Store,
        source: &str,
        symbols: &[Symbol],
        range: DateRange,
        target: NaiveDate,
        calendar: MarketCalendar,
    ) -> Result<Self> {
        let extents = store.bar_extents(source, symbols).await?;
        let stored: Vec<Symbol> = symbols
            .iter()
            .filter(|s| extents.contains_key(*s))
            .cloned()
            .collect();
        let anchor = extents.values().map(|e| e.last).min();
        let bars = match anchor {
            Some(anchor) => {
                store
                    .load_bars(source, &stored, history_window(range, anchor))
                    .await?
            }
            None => HashMap::new(),
        };
        Ok(Self {
            source: source.to_owned(),
            target,
            calendar,
            extents,
            bars: Mutex::new(bars),
            updates: Mutex::new(Vec::new()),
            grouped_dates: Vec::new(),
            grouped: Mutex::new(HashMap::new()),
            adjusted: Mutex::new(Vec::new()),
        })
    }

    /// The source the bars belong to.
    pub(super) fn source(&self) -> &str {
        &self.source
    }

    /// The sessions worth fetching for the whole market: those needed by delta asks of at most
    /// [`MAX_GROUPED_SESSIONS`] sessions, when there are fewer of them than half the symbols asking.
    pub(super) fn grouped_sessions(&self, symbols: &[Symbol], range: DateRange) -> Vec<NaiveDate> {
        let mut need: BTreeMap<NaiveDate, usize> = BTreeMap::new();
        let mut n_delta = 0;
        for s in symbols {
            let Some(e) = self.extents.get(s) else { continue };
            for ask in missing_ranges(Some(e), range, self.target) {
                if ask.from != e.last.max(range.from) {
                    continue;
                }
                let sessions = self.calendar.sessions(ask.from, ask.to);
                if sessions.len() <= MAX_GROUPED_SESSIONS {
                    n_delta += 1;
                    for d in sessions {
                        *need.entry(d).or_default() += 1;
                    }
                }
            }
        }
        if need.is_empty() || need.len() * 2 > n_delta {
            return Vec::new();
        }
        need.into_keys().collect()
    }

    /// Fetches `dates` for the whole market, keeping the bars of `symbols`. Stops at the first failure
    /// (those symbols then fall back to their own requests); returns the sessions fetched.
    pub(super) async fn prefetch_grouped(
        &mut self,
        provider: &dyn DataProvider,
        symbols: &[Symbol],
        dates: &[NaiveDate],
    ) -> usize {
        let wanted: HashSet<&Symbol> = symbols.iter().collect();
        let mut per_symbol: HashMap<Symbol, Vec<Bar>> = HashMap::new();
        for &date in dates {
            match provider.grouped_daily(date).await {
                Ok(Some(list)) => {
                    for (symbol, bar) in list {
                        if bar.date == date && wanted.contains(&symbol) {
                            per_symbol.entry(symbol).or_default().push(bar);
                        }
                    }
                    self.grouped_dates.push(date);
                }
                Ok(None) => break,
                Err(e) => {
                    warn!(%date, error = %e, "whole-market bars unavailable; asking per symbol");
                    break;
                }
            }
        }
        let grouped = per_symbol
            .into_iter()
            .map(|(s, bars)| (s, Bars::from_bars(&bars)))
            .collect();
        *self.grouped.get_mut().unwrap_or_else(|e| e.into_inner()) = grouped;
        self.grouped_dates.len()
    }

    /// The bars of `ask` from the grouped answers, when they cover every session of it for `symbol`.
    fn grouped_bars(&self, symbol: &Symbol, ask: DateRange) -> Option<Bars> {
        let sessions = self.calendar.sessions(ask.from, ask.to);
        if sessions.is_empty() || !sessions.iter().all(|d| self.grouped_dates.contains(d)) {
            return None;
        }
        let grouped = self.grouped.lock().unwrap_or_else(|e| e.into_inner());
        let bars = grouped.get(symbol)?.slice_range(ask);
        (bars.date == sessions).then_some(bars)
    }

    /// The last [`HISTORY_BARS`] of `symbol` within `range`: stored bars plus what the provider adds.
    /// Returns the bars and whether the provider was asked (grouped answers count as asked).
    pub(super) async fn bars(
        &self,
        provider: &dyn DataProvider,
        symbol: &Symbol,
        range: DateRange,
    ) -> Result<(Bars, bool)> {
        let extent = self.extents.get(symbol);
        let asks = missing_ranges(extent, range, self.target);
        let stored = self.bars.lock().unwrap_or_else(|e| e.into_inner()).remove(symbol);
        let mut bars = stored.unwrap_or_default();
        let upto = DateRange {
            from: NaiveDate::MIN,
            to: self.target,
        };
        for ask in &asks {
            let delta = extent.filter(|e| ask.from == e.last.max(range.from));
            let answer = match delta.and_then(|_| self.grouped_bars(symbol, *ask)) {
                Some(grouped) => Ok(grouped),
                None => provider.daily_bars(symbol, *ask).await,
            };
            let new = match answer {
                Ok(b) => b.into_range(*ask).into_range(upto),
                // Nothing new for a stored symbol is a valid answer (no session since, or a data gap).
                Err(Error::NotFound { .. }) if delta.is_some() => Bars::default(),
                Err(e) => return Err(e),
            };
            if !new.is_empty() {
                new.validate()
                    .map_err(|bad| Error::invalid_data(symbol.as_str(), bad.reason))?;
            }
            if let Some(e) = delta
                && !new.is_empty()
                && !overlap_matches(&bars, &new, e.last)
            {
                return self.refetch(provider, symbol, range).await.map(|b| (b, true));
            }
            bars = merge_bars(&bars, &new);
            self.push(BarsUpdate {
                symbol: symbol.clone(),
                replace: false,
                bars: new,
                fetched_from: ask.from,
                fetched_to: ask.to.min(self.target).max(ask.from),
            });
        }
        Ok((clip(bars, range), !asks.is_empty()))
    }

    /// Replaces `symbol`'s history with a fresh full fetch (the stored one no longer matches the
    /// provider's, e.g. after a split).
    async fn refetch(&self, provider: &dyn DataProvider, symbol: &Symbol, range: DateRange) -> Result<Bars> {
        let upto = DateRange {
            from: range.from,
            to: range.to.min(self.target),
        };
        let fresh = provider.daily_bars(symbol, upto).await?.into_range(upto);
        fresh
            .validate()
            .map_err(|bad| Error::invalid_data(symbol.as_str(), bad.reason))?;
        info!(%symbol, "stored history differs from the provider's (split or re-adjustment); replaced");
        self.adjusted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(symbol.clone());
        self.push(BarsUpdate {
            symbol: symbol.clone(),
            replace: true,
            bars: fresh.clone(),
            fetched_from: upto.from,
            fetched_to: upto.to.max(upto.from),
        });
        Ok(clip(fresh, range))
    }

    fn push(&self, update: BarsUpdate) {
        self.updates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(update);
    }

    /// The updates gathered so far, emptied.
    pub(super) fn take_updates(&self) -> Vec<BarsUpdate> {
        std::mem::take(&mut *self.updates.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Symbols whose history was replaced, in the order it happened.
    pub(super) fn adjusted(&self) -> Vec<Symbol> {
        self.adjusted.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// True when the bar of `date` in `new` equals the stored one, or there is no stored one to compare with.
fn overlap_matches(stored: &Bars, new: &Bars, date: NaiveDate) -> bool {
    let Ok(i) = stored.date.binary_search(&date) else {
        return true;
    };
    let Some(old) = stored.get(i) else { return true };
    new.date
        .binary_search(&date)
        .ok()
        .and_then(|j| new.get(j))
        .is_some_and(|fresh| same_bar(&old, &fresh))
}

/// `bars` within `range`, at most the last [`HISTORY_BARS`].
fn clip(bars: Bars, range: DateRange) -> Bars {
    let bars = bars.into_range(range);
    if bars.len() > HISTORY_BARS {
        bars.tail(HISTORY_BARS)
    } else {
        bars
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
        assert_eq!(missing_ranges(None, range, d(2024, 6, 28)), vec![range]);
    }

    #[test]
    fn the_window_ends_at_the_earliest_last_bar() {
        let range = DateRange::new(d(2000, 1, 1), NaiveDate::MAX).unwrap();
        let w = history_window(range, d(2023, 12, 29));
        assert_eq!(w.to, NaiveDate::MAX);
        assert_eq!(w.from, d(2023, 12, 29) - Days::new(HISTORY_CALENDAR_DAYS - 1));
    }

    #[test]
    fn current_behind_and_already_asked() {
        let range = DateRange::new(d(2022, 6, 1), d(2024, 6, 30)).unwrap(); // a Sunday
        let (first, target) = (d(2022, 6, 1), d(2024, 6, 28)); // the Friday before
        // Last bar on the target: current.
        assert!(missing_ranges(Some(&extent(first, target, target)), range, target).is_empty());
        // Behind: ask from the last stored bar (the overlap) to the target, never past it.
        let asks = missing_ranges(
            Some(&extent(first, d(2024, 6, 20), d(2024, 6, 20))),
            range,
            target,
        );
        assert_eq!(asks, vec![DateRange::new(d(2024, 6, 20), target).unwrap()]);
        // Already asked through the target and nothing came (a halted symbol): not again.
        assert!(missing_ranges(Some(&extent(first, d(2024, 6, 20), target)), range, target).is_empty());
    }

    #[test]
    fn overlap_comparison_tolerates_rounding_only() {
        let bar = |c: f64| Bar {
            date: d(2024, 6, 20),
            open: c,
            high: c,
            low: c,
            close: c,
            volume: 10.0,
        };
        assert!(same_bar(&bar(123.4567), &bar(123.45674)));
        assert!(same_bar(&bar(0.01), &bar(0.01004)));
        assert!(!same_bar(&bar(400.0), &bar(100.0)), "a 4-for-1 split");
        assert!(!same_bar(&bar(100.0), &bar(100.01)));
        let mut other_volume = bar(50.0);
        other_volume.volume = 99.0;
        assert!(
            same_bar(&bar(50.0), &other_volume),
            "volume revisions are not adjustments"
        );
    }

    #[test]
    fn short_history_is_backfilled_once() {
        let range = DateRange::new(d(2022, 6, 1), d(2024, 6, 28)).unwrap();
        let mut e = extent(d(2024, 1, 2), d(2024, 6, 28), d(2024, 6, 28));
        e.n_bars = 120;
        let asks = missing_ranges(Some(&e), range, d(2024, 6, 28));
        assert_eq!(asks, vec![DateRange::new(range.from, d(2024, 1, 1)).unwrap()]);
        // Once asked from the range's start, not again, even if the provider had nothing.
        e.fetched_from = range.from;
        assert!(missing_ranges(Some(&e), range, d(2024, 6, 28)).is_empty());
    }
}
