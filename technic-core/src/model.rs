//! The market-data model: symbols, daily bars stored column-wise, universe entries and date ranges.
//!
//! Bars are kept as one `Vec` per field so indicator code runs over contiguous `&[f64]` slices.

use std::fmt;
use std::sync::Arc;

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

/// A ticker symbol such as `AAPL`. Cheap to clone (shared string), compared case-sensitively.
///
/// Symbols are normalised to upper case by [`Symbol::parse`], which callers use for user input.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Symbol(Arc<str>);

impl Symbol {
    /// Wraps a symbol exactly as given (no validation); use for data that is already clean.
    pub fn new(s: impl AsRef<str>) -> Self {
        Self(Arc::from(s.as_ref()))
    }

    /// Parses user input: trims, upper-cases and checks the characters a ticker may hold
    /// (`A-Z`, `0-9`, `.`, `-`, at most 16 characters).
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_uppercase();
        if t.is_empty() {
            return Err("empty symbol".to_owned());
        }
        if t.len() > 16 {
            return Err(format!("symbol `{t}` is longer than 16 characters"));
        }
        if let Some(c) = t
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '-'))
        {
            return Err(format!(
                "symbol `{t}` contains `{c}`; use letters, digits, `.` or `-`"
            ));
        }
        Ok(Self(Arc::from(t)))
    }

    /// The symbol as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

impl From<&str> for Symbol {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

/// One daily OHLCV bar.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    /// Trading date (exchange local).
    pub date: NaiveDate,
    /// Opening price.
    pub open: f64,
    /// Highest price.
    pub high: f64,
    /// Lowest price.
    pub low: f64,
    /// Closing price.
    pub close: f64,
    /// Shares traded.
    pub volume: f64,
}

/// A series of daily bars in ascending date order, stored column-wise.
///
/// All columns have the same length. Construct with [`Bars::from_bars`], [`Bars::push`] or
/// [`Bars::with_capacity`]; check data from outside with [`Bars::validate`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bars {
    /// Dates, ascending.
    pub date: Vec<NaiveDate>,
    /// Opening prices.
    pub open: Vec<f64>,
    /// High prices.
    pub high: Vec<f64>,
    /// Low prices.
    pub low: Vec<f64>,
    /// Closing prices.
    pub close: Vec<f64>,
    /// Volumes.
    pub volume: Vec<f64>,
}

impl Bars {
    /// Empty series with room for `n` bars.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            date: Vec::with_capacity(n),
            open: Vec::with_capacity(n),
            high: Vec::with_capacity(n),
            low: Vec::with_capacity(n),
            close: Vec::with_capacity(n),
            volume: Vec::with_capacity(n),
        }
    }

    /// Column-wise copy of row-wise bars.
    pub fn from_bars(bars: &[Bar]) -> Self {
        let mut out = Self::with_capacity(bars.len());
        for b in bars {
            out.push(*b);
        }
        out
    }

    /// Appends one bar (no ordering check; see [`Bars::validate`]).
    pub fn push(&mut self, b: Bar) {
        self.date.push(b.date);
        self.open.push(b.open);
        self.high.push(b.high);
        self.low.push(b.low);
        self.close.push(b.close);
        self.volume.push(b.volume);
    }

    /// Appends bar `idx` of `other` (nothing when out of range).
    pub(crate) fn extend_one(&mut self, other: &Bars, idx: usize) {
        if let Some(b) = other.get(idx) {
            self.push(b);
        }
    }

    /// Number of bars.
    pub fn len(&self) -> usize {
        self.close.len()
    }

    /// True when there are no bars.
    pub fn is_empty(&self) -> bool {
        self.close.is_empty()
    }

    /// The bar at `idx`, if any.
    pub fn get(&self, idx: usize) -> Option<Bar> {
        (idx < self.len()).then(|| Bar {
            date: self.date[idx],
            open: self.open[idx],
            high: self.high[idx],
            low: self.low[idx],
            close: self.close[idx],
            volume: self.volume[idx],
        })
    }

    /// The last bar, if any.
    pub fn last(&self) -> Option<Bar> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
    }

    /// Approximate heap bytes held, used by the cache weigher.
    pub fn heap_bytes(&self) -> usize {
        self.len() * (5 * size_of::<f64>() + size_of::<NaiveDate>())
    }

    /// The bars whose dates fall inside `range` (inclusive), as a new series.
    pub fn slice_range(&self, range: DateRange) -> Self {
        let start = self.date.partition_point(|d| *d < range.from);
        let end = self.date.partition_point(|d| *d <= range.to);
        self.slice(start, end.max(start))
    }

    /// Like [`Bars::slice_range`] but consumes `self`, avoiding a copy when every bar is in range.
    pub fn into_range(self, range: DateRange) -> Self {
        let inside = |d: Option<&NaiveDate>| d.is_some_and(|d| range.contains(*d));
        if self.is_empty() || (inside(self.date.first()) && inside(self.date.last())) {
            self
        } else {
            self.slice_range(range)
        }
    }

    /// The last `n` bars (all of them when there are fewer).
    pub fn tail(&self, n: usize) -> Self {
        let len = self.len();
        self.slice(len.saturating_sub(n), len)
    }

    fn slice(&self, start: usize, end: usize) -> Self {
        Self {
            date: self.date[start..end].to_vec(),
            open: self.open[start..end].to_vec(),
            high: self.high[start..end].to_vec(),
            low: self.low[start..end].to_vec(),
            close: self.close[start..end].to_vec(),
            volume: self.volume[start..end].to_vec(),
        }
    }

    /// Checks what a scan relies on: equal column lengths, strictly ascending dates, finite positive
    /// prices, `low <= min(open, close)`, `high >= max(open, close)`, finite non-negative volume, and no
    /// price or volume of [`MAX_VALUE`] or more (no traded quote comes near it; a value that large is a
    /// corrupt file, and would turn every indicator built on it to infinity).
    /// The error names the first offending bar by index and date.
    pub fn validate(&self) -> Result<(), InvalidBar> {
        let n = self.len();
        let bad = |index: usize, reason: String| Err(InvalidBar { index, reason });
        if [&self.open, &self.high, &self.low, &self.volume]
            .iter()
            .any(|c| c.len() != n)
            || self.date.len() != n
        {
            return bad(0, "columns have different lengths".to_owned());
        }
        if n == 0 {
            return bad(0, "no bars".to_owned());
        }
        for i in 0..n {
            let (d, o, h, l, c, v) = (
                self.date[i],
                self.open[i],
                self.high[i],
                self.low[i],
                self.close[i],
                self.volume[i],
            );
            if i > 0 && d <= self.date[i - 1] {
                return bad(i, format!("dates not ascending ({d} after {})", self.date[i - 1]));
            }
            if ![o, h, l, c].iter().all(|p| p.is_finite() && *p > 0.0) {
                return bad(i, format!("non-positive or non-finite price on {d}"));
            }
            if [o, h, l, c, v].iter().any(|x| *x >= MAX_VALUE) {
                return bad(
                    i,
                    format!("a price or volume of 1e12 or more on {d}, not a real quote"),
                );
            }
            if h < l {
                return bad(i, format!("high {h} below low {l} on {d}"));
            }
            if h < o.max(c) || l > o.min(c) {
                return bad(i, format!("open/close outside the high-low range on {d}"));
            }
            if !(v.is_finite() && v >= 0.0) {
                return bad(i, format!("negative or non-finite volume on {d}"));
            }
        }
        Ok(())
    }
}

/// The smallest price or volume [`Bars::validate`] refuses: 10^12.
pub const MAX_VALUE: f64 = 1e12;

/// Why a series failed [`Bars::validate`]: the index of the first bad bar and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidBar {
    /// Index of the offending bar (0 for whole-series problems).
    pub index: usize,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for InvalidBar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// One member of a scan universe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UniverseEntry {
    /// Ticker.
    pub symbol: Symbol,
    /// Company name (may be empty when unknown).
    pub name: String,
    /// GICS sector (may be empty when unknown).
    pub sector: String,
    /// Industry (may be empty when unknown).
    pub industry: String,
}

impl UniverseEntry {
    /// An entry with only a symbol known.
    pub fn bare(symbol: Symbol) -> Self {
        Self {
            symbol,
            name: String::new(),
            sector: String::new(),
            industry: String::new(),
        }
    }
}

/// The list of symbols a scan runs over.
pub type Universe = Vec<UniverseEntry>;

/// An inclusive range of calendar dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DateRange {
    /// First date (inclusive).
    pub from: NaiveDate,
    /// Last date (inclusive).
    pub to: NaiveDate,
}

impl DateRange {
    /// A range; `from` after `to` is an error naming both dates.
    pub fn new(from: NaiveDate, to: NaiveDate) -> Result<Self, String> {
        if from > to {
            return Err(format!("range start {from} is after its end {to}"));
        }
        Ok(Self { from, to })
    }

    /// The `days` calendar days ending at `to` (inclusive).
    pub fn ending(to: NaiveDate, days: u64) -> Self {
        let from = to
            .checked_sub_days(Days::new(days.saturating_sub(1)))
            .unwrap_or(NaiveDate::MIN);
        Self { from, to }
    }

    /// True when `d` lies in the range.
    pub fn contains(&self, d: NaiveDate) -> bool {
        self.from <= d && d <= self.to
    }
}

impl fmt::Display for DateRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..={}", self.from, self.to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn bar(date: &str, close: f64) -> Bar {
        Bar {
            date: d(date),
            open: close,
            high: close + 1.0,
            low: close - 1.0,
            close,
            volume: 100.0,
        }
    }

    #[test]
    fn symbol_parse_normalises_and_rejects() {
        assert_eq!(Symbol::parse(" aapl ").unwrap().as_str(), "AAPL");
        assert_eq!(Symbol::parse("brk.b").unwrap().as_str(), "BRK.B");
        assert!(Symbol::parse("").is_err());
        assert!(Symbol::parse("A B").unwrap_err().contains('`'));
        assert!(Symbol::parse("../etc").is_err());
    }

    #[test]
    fn slice_range_and_tail() {
        let bars = Bars::from_bars(&[
            bar("2024-01-02", 10.0),
            bar("2024-01-03", 11.0),
            bar("2024-01-04", 12.0),
        ]);
        let r = DateRange::new(d("2024-01-03"), d("2024-01-10")).unwrap();
        assert_eq!(bars.slice_range(r).close, vec![11.0, 12.0]);
        assert_eq!(bars.tail(2).close, vec![11.0, 12.0]);
        assert_eq!(bars.tail(10).len(), 3);
        let empty = DateRange::new(d("2025-01-01"), d("2025-01-02")).unwrap();
        assert!(bars.slice_range(empty).is_empty());
    }

    #[test]
    fn validate_names_the_problem() {
        let mut bars = Bars::from_bars(&[bar("2024-01-02", 10.0), bar("2024-01-02", 11.0)]);
        assert!(bars.validate().unwrap_err().reason.contains("not ascending"));
        assert_eq!(bars.validate().unwrap_err().index, 1);
        bars.date[1] = d("2024-01-03");
        assert!(bars.validate().is_ok());
        bars.low[1] = 20.0;
        assert!(bars.validate().unwrap_err().reason.contains("below low"));
        bars.low[1] = 10.0;
        bars.close[1] = -1.0;
        assert!(bars.validate().unwrap_err().reason.contains("non-positive"));
        assert!(Bars::default().validate().unwrap_err().reason.contains("no bars"));
    }

    #[test]
    fn date_range_rejects_inverted() {
        assert!(DateRange::new(d("2024-02-01"), d("2024-01-01")).is_err());
        let r = DateRange::ending(d("2024-01-10"), 10);
        assert_eq!(r.from, d("2024-01-01"));
        assert!(r.contains(d("2024-01-05")));
    }
}
