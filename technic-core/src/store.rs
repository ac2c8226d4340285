//! The [`Store`] trait: durable bars and scan history. [`MemoryStore`] is the simplest real
//! implementation (process lifetime only); a SQLite store persists across runs.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::model::{Bars, DateRange, Symbol};
use crate::scan::ScanReport;

/// Durable storage for bars and scan runs.
#[async_trait]
pub trait Store: Send + Sync + Debug {
    /// Inserts or replaces `bars` of `symbol` (matched by date).
    async fn save_bars(&self, symbol: &Symbol, bars: &Bars) -> Result<()>;

    /// Bars of several symbols within `range`; symbols with no stored bars are absent from the map.
    async fn load_bars(&self, symbols: &[Symbol], range: DateRange) -> Result<HashMap<Symbol, Bars>>;

    /// Saves a finished (complete, cancelled or failed) scan with its results.
    async fn save_scan(&self, report: &ScanReport) -> Result<()>;

    /// A saved scan by id.
    async fn scan(&self, id: &str) -> Result<Option<ScanReport>>;

    /// The most recent scans, newest first, at most `limit`.
    async fn recent_scans(&self, limit: usize) -> Result<Vec<ScanReport>>;
}

/// A [`Store`] in memory: nothing survives the process. Useful for tests and one-off runs.
#[derive(Debug, Default)]
pub struct MemoryStore {
    bars: Mutex<HashMap<Symbol, Bars>>,
    scans: Mutex<Vec<ScanReport>>,
}

fn poisoned<T>(_: T) -> Error {
    Error::Store {
        detail: "memory store lock poisoned by an earlier panic".to_owned(),
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn save_bars(&self, symbol: &Symbol, bars: &Bars) -> Result<()> {
        let mut all = self.bars.lock().map_err(poisoned)?;
        let existing = all.entry(symbol.clone()).or_default();
        let mut merged: Vec<_> = (0..existing.len()).filter_map(|i| existing.get(i)).collect();
        merged.retain(|b| bars.date.binary_search(&b.date).is_err());
        merged.extend((0..bars.len()).filter_map(|i| bars.get(i)));
        merged.sort_by_key(|b| b.date);
        *existing = Bars::from_bars(&merged);
        Ok(())
    }

    async fn load_bars(&self, symbols: &[Symbol], range: DateRange) -> Result<HashMap<Symbol, Bars>> {
        let all = self.bars.lock().map_err(poisoned)?;
        Ok(symbols
            .iter()
            .filter_map(|s| all.get(s).map(|b| (s.clone(), b.slice_range(range))))
            .filter(|(_, b)| !b.is_empty())
            .collect())
    }

    async fn save_scan(&self, report: &ScanReport) -> Result<()> {
        let mut scans = self.scans.lock().map_err(poisoned)?;
        scans.retain(|s| s.id != report.id);
        scans.push(report.clone());
        Ok(())
    }

    async fn scan(&self, id: &str) -> Result<Option<ScanReport>> {
        Ok(self
            .scans
            .lock()
            .map_err(poisoned)?
            .iter()
            .find(|s| s.id == id)
            .cloned())
    }

    async fn recent_scans(&self, limit: usize) -> Result<Vec<ScanReport>> {
        let scans = self.scans.lock().map_err(poisoned)?;
        Ok(scans.iter().rev().take(limit).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Bar;
    use chrono::NaiveDate;

    fn bar(day: u32, close: f64) -> Bar {
        let date = NaiveDate::from_ymd_opt(2024, 1, day).unwrap();
        Bar {
            date,
            open: close,
            high: close,
            low: close,
            close,
            volume: 1.0,
        }
    }

    #[tokio::test]
    async fn bars_upsert_by_date() {
        let store = MemoryStore::default();
        let sym = Symbol::new("A");
        store
            .save_bars(&sym, &Bars::from_bars(&[bar(2, 1.0), bar(3, 2.0)]))
            .await
            .unwrap();
        store
            .save_bars(&sym, &Bars::from_bars(&[bar(3, 5.0), bar(4, 6.0)]))
            .await
            .unwrap();
        let range = DateRange::new(NaiveDate::MIN, NaiveDate::MAX).unwrap();
        let got = store
            .load_bars(&[sym.clone(), Symbol::new("B")], range)
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[&sym].close, vec![1.0, 5.0, 6.0]);
    }
}
