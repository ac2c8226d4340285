//! The [`Store`] trait: durable bars, scan history, metric samples, alerts and symbol access counts.
//!
//! [`MemoryStore`] is the simplest real implementation (process lifetime only); [`SqliteStore`] persists
//! across runs in one SQLite file (see its module for the schema); with the `postgres` feature,
//! `PostgresStore` keeps the same on a PostgreSQL server shared by a fleet (see the `postgres` module).

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "redis"))]
pub(crate) mod codec;
#[cfg(feature = "postgres")]
pub mod postgres;
pub(crate) mod profile;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod result_block;
#[cfg(feature = "sqlite")]
mod schema;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

#[cfg(feature = "postgres")]
pub use postgres::{PostgresOptions, PostgresStore};
pub use profile::{QueryProfile, QueryStats, SLOW_QUERY};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

use crate::error::{Error, Result};
use crate::model::{Bars, DateRange, Symbol};
use crate::monitor::{Alert, MetricSample, MetricSummary};
use crate::scan::{ScanReport, ScanRequest};
use crate::screen::SavedScreen;

/// What the store holds for one symbol's bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BarExtent {
    /// Date of the first stored bar.
    pub first: NaiveDate,
    /// Date of the last stored bar.
    pub last: NaiveDate,
    /// Bars stored.
    pub n_bars: usize,
    /// The earliest date the provider has been asked from (at most `first`).
    pub fetched_from: NaiveDate,
    /// The latest date the provider has been asked through (at least `last`). A provider may have no bar
    /// for a date (holiday, not yet published); remembering how far it was asked avoids asking again.
    pub fetched_to: NaiveDate,
}

/// A saved scan without its results and skipped symbols: what a list of scans shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The scan's id.
    pub id: String,
    /// How it ended.
    pub state: crate::scan::ScanState,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Time per stage.
    pub timing: crate::scan::StageTimings,
    /// Symbols in the universe before filters.
    pub universe_size: usize,
    /// Symbols scored.
    pub scanned: usize,
    /// Symbols skipped.
    pub skipped: usize,
    /// Symbols removed by filters.
    pub filtered: usize,
}

impl RunSummary {
    /// The summary of `r`.
    pub fn of(r: &ScanReport) -> Self {
        Self {
            id: r.id.clone(),
            state: r.state,
            started_at: r.started_at,
            timing: r.timing,
            universe_size: r.universe_size,
            scanned: r.scanned,
            skipped: r.skipped.len(),
            filtered: r.filtered.total(),
        }
    }
}

/// What [`Store::prune`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pruned {
    /// Scan runs (their results and skipped symbols went with them).
    pub runs: usize,
    /// Metric samples.
    pub samples: usize,
    /// Alerts.
    pub alerts: usize,
}

/// New bars of one symbol to store, and how far the provider was asked.
#[derive(Debug, Clone, PartialEq)]
pub struct BarsUpdate {
    /// The symbol.
    pub symbol: Symbol,
    /// True when `bars` replace the symbol's whole stored history (a split or a re-adjustment changed
    /// past prices); false when they are inserted or replaced date by date.
    pub replace: bool,
    /// Bars to insert or replace (matched by date); may be empty when the provider had nothing new.
    pub bars: Bars,
    /// The start of the range the provider was asked for.
    pub fetched_from: NaiveDate,
    /// The end of the range the provider was asked for.
    pub fetched_to: NaiveDate,
}

/// Durable storage for bars, scan runs, metric samples, alerts and symbol access counts.
///
/// Bars belong to a **source** (see [`crate::DataProvider::live_source`]): every bar method takes one, and
/// bars stored for one source are never returned for another.
///
/// Batch methods exist so that implementations can use one query or one transaction for many symbols;
/// callers should prefer them to loops over the single-symbol methods.
#[async_trait]
pub trait Store: Send + Sync + Debug {
    /// Inserts or replaces `bars` of `symbol` from `source` (matched by date).
    async fn save_bars(&self, source: &str, symbol: &Symbol, bars: &Bars) -> Result<()>;

    /// Bars from `source` of several symbols within `range`; symbols with no stored bars are absent.
    async fn load_bars(
        &self,
        source: &str,
        symbols: &[Symbol],
        range: DateRange,
    ) -> Result<HashMap<Symbol, Bars>>;

    /// Saves bars of many symbols from `source` at once (taking them, so a large batch is not copied),
    /// in one transaction.
    async fn save_bars_batch(&self, source: &str, updates: Vec<BarsUpdate>) -> Result<()>;

    /// What is stored from `source` for each of `symbols`; symbols with nothing stored are absent. The
    /// default loads every stored bar; stores override it with a query on their per-symbol summary.
    async fn bar_extents(&self, source: &str, symbols: &[Symbol]) -> Result<HashMap<Symbol, BarExtent>> {
        let all = DateRange {
            from: NaiveDate::MIN,
            to: NaiveDate::MAX,
        };
        Ok(self
            .load_bars(source, symbols, all)
            .await?
            .into_iter()
            .filter_map(|(s, b)| {
                let (first, last) = (*b.date.first()?, *b.date.last()?);
                let extent = BarExtent {
                    first,
                    last,
                    n_bars: b.len(),
                    fetched_from: first,
                    fetched_to: last,
                };
                Some((s, extent))
            })
            .collect())
    }

    /// Saves a finished (complete, cancelled or failed) scan with its results.
    async fn save_scan(&self, report: &ScanReport) -> Result<()>;

    /// Saves a finished scan together with the request that started it. The default drops the request.
    async fn save_scan_run(&self, request: &ScanRequest, report: &ScanReport) -> Result<()> {
        let _ = request;
        self.save_scan(report).await
    }

    /// A saved scan by id.
    async fn scan(&self, id: &str) -> Result<Option<ScanReport>>;

    /// The most recent scans, newest first, at most `limit`.
    async fn recent_scans(&self, limit: usize) -> Result<Vec<ScanReport>>;

    /// Summaries of the most recent scans, newest first, at most `limit`: no results are read. The
    /// default loads whole scans; stores override it with a query on their run table.
    async fn recent_runs(&self, limit: usize) -> Result<Vec<RunSummary>> {
        Ok(self
            .recent_scans(limit)
            .await?
            .iter()
            .map(RunSummary::of)
            .collect())
    }

    /// Keeps a metric sample.
    async fn save_metric_sample(&self, sample: &MetricSample) -> Result<()>;

    /// Samples taken at or after `since`, oldest first.
    async fn metric_samples(&self, since: DateTime<Utc>) -> Result<Vec<MetricSample>>;

    /// Keeps an alert that fired.
    async fn save_alert(&self, alert: &Alert) -> Result<()>;

    /// Alerts fired at or after `since`, oldest first.
    async fn alerts(&self, since: DateTime<Utc>) -> Result<Vec<Alert>>;

    /// Min/avg/max per metric and alert counts since `since`. The default computes it from
    /// [`Store::metric_samples`] and [`Store::alerts`]; stores may compute it in a query and cache it.
    async fn metric_summary(&self, since: DateTime<Utc>) -> Result<MetricSummary> {
        let samples = self.metric_samples(since).await?;
        let alerts = self.alerts(since).await?;
        Ok(MetricSummary::compute(since, &samples, &alerts))
    }

    /// Counts one access to each of `symbols` (the cache warmer ranks symbols by these counts).
    async fn record_access(&self, symbols: &[Symbol]) -> Result<()>;

    /// The most accessed symbols with their counts, most first, at most `limit`.
    async fn access_counts(&self, limit: usize) -> Result<Vec<(Symbol, u64)>>;

    /// Retention: deletes scan runs (with their results), metric samples and alerts older than `before`,
    /// and compacts what the store can (SQLite: a WAL checkpoint). Bars are kept: they are the history
    /// scans need.
    async fn prune(&self, before: DateTime<Utc>) -> Result<Pruned>;

    /// Saves a screen under its name, replacing one saved before with that name.
    async fn save_screen(&self, screen: &SavedScreen) -> Result<()>;

    /// Every saved screen, by name.
    async fn screens(&self) -> Result<Vec<SavedScreen>>;

    /// Deletes the screen called `name`; false when there was none.
    async fn delete_screen(&self, name: &str) -> Result<bool>;

    /// The saved screen called `name`.
    async fn screen(&self, name: &str) -> Result<Option<SavedScreen>> {
        Ok(self.screens().await?.into_iter().find(|s| s.name == name))
    }

    /// Per-query counts and latency percentiles. Empty for stores that run no queries.
    fn query_stats(&self) -> Vec<QueryStats> {
        Vec::new()
    }
}

/// Merges `new` into `old` (both ascending by date); on equal dates the new bar wins.
pub(crate) fn merge_bars(old: &Bars, new: &Bars) -> Bars {
    if old.is_empty() {
        return new.clone();
    }
    if new.date.first().zip(old.date.last()).is_some_and(|(n, o)| n > o) {
        let mut out = old.clone();
        for i in 0..new.len() {
            out.extend_one(new, i);
        }
        return out;
    }
    let mut out = Bars::with_capacity(old.len() + new.len());
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        let take_new = match (old.date.get(i), new.date.get(j)) {
            (Some(a), Some(b)) => {
                if a == b {
                    i += 1;
                }
                b <= a
            }
            (None, Some(_)) => true,
            _ => false,
        };
        if take_new {
            out.extend_one(new, j);
            j += 1;
        } else {
            out.extend_one(old, i);
            i += 1;
        }
    }
    out
}

/// Bars of one symbol from one source.
type BarsKey = (String, Symbol);

/// A [`Store`] in memory: nothing survives the process. Useful for tests and one-off runs.
#[derive(Debug, Default)]
pub struct MemoryStore {
    bars: Mutex<HashMap<BarsKey, Bars>>,
    scans: Mutex<Vec<ScanReport>>,
    samples: Mutex<Vec<MetricSample>>,
    alerts: Mutex<Vec<Alert>>,
    access: Mutex<HashMap<Symbol, u64>>,
    screens: Mutex<std::collections::BTreeMap<String, SavedScreen>>,
    /// The dates the provider was asked for, per source and symbol (see [`BarExtent`]).
    fetched: Mutex<HashMap<BarsKey, (NaiveDate, NaiveDate)>>,
    max_runs: RunLimit,
}

impl MemoryStore {
    /// Keeps at most `max` scan runs (the latest saved), as the SQLite and PostgreSQL stores'
    /// `set_max_runs` do; `None` keeps every run. The default is [`DEFAULT_MAX_RUNS`].
    pub fn set_max_runs(&self, max: Option<usize>) {
        self.max_runs.set(max);
    }
}

/// The most scan runs a store keeps unless told otherwise (`set_max_runs`): a bound on the store's size
/// however often scans run. At about 415 bytes per stored result (a 5000-symbol scan measured in SQLite and
/// PostgreSQL; see docs/DEPLOYMENT.md), 1000 runs of 5000 symbols take about 2.1 GB.
pub const DEFAULT_MAX_RUNS: usize = 1000;

/// The most scan runs a store keeps (`set_max_runs`), changeable while the store is shared;
/// [`DEFAULT_MAX_RUNS`] at first.
#[derive(Debug)]
pub(crate) struct RunLimit(std::sync::atomic::AtomicUsize);

impl Default for RunLimit {
    fn default() -> Self {
        Self(std::sync::atomic::AtomicUsize::new(DEFAULT_MAX_RUNS))
    }
}

impl RunLimit {
    /// `None` keeps every run; a limit of 0 is taken as 1.
    pub(crate) fn set(&self, max: Option<usize>) {
        let max = max.map_or(0, |m| m.max(1));
        self.0.store(max, std::sync::atomic::Ordering::Relaxed);
    }

    /// The limit, if any.
    pub(crate) fn get(&self) -> Option<usize> {
        Some(self.0.load(std::sync::atomic::Ordering::Relaxed)).filter(|&m| m > 0)
    }
}

fn poisoned<T>(_: T) -> Error {
    Error::Store {
        detail: "memory store lock poisoned by an earlier panic".to_owned(),
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn save_bars(&self, source: &str, symbol: &Symbol, bars: &Bars) -> Result<()> {
        let mut all = self.bars.lock().map_err(poisoned)?;
        let existing = all.entry((source.to_owned(), symbol.clone())).or_default();
        let mut merged: Vec<_> = (0..existing.len()).filter_map(|i| existing.get(i)).collect();
        merged.retain(|b| bars.date.binary_search(&b.date).is_err());
        merged.extend((0..bars.len()).filter_map(|i| bars.get(i)));
        merged.sort_by_key(|b| b.date);
        *existing = Bars::from_bars(&merged);
        Ok(())
    }

    async fn save_bars_batch(&self, source: &str, updates: Vec<BarsUpdate>) -> Result<()> {
        for u in &updates {
            let key = (source.to_owned(), u.symbol.clone());
            if u.replace {
                self.bars.lock().map_err(poisoned)?.remove(&key);
                self.fetched.lock().map_err(poisoned)?.remove(&key);
            }
            if !u.bars.is_empty() {
                self.save_bars(source, &u.symbol, &u.bars).await?;
            }
            let mut fetched = self.fetched.lock().map_err(poisoned)?;
            let span = fetched.entry(key).or_insert((u.fetched_from, u.fetched_to));
            *span = (span.0.min(u.fetched_from), span.1.max(u.fetched_to));
        }
        Ok(())
    }

    async fn bar_extents(&self, source: &str, symbols: &[Symbol]) -> Result<HashMap<Symbol, BarExtent>> {
        let all = self.bars.lock().map_err(poisoned)?;
        let fetched = self.fetched.lock().map_err(poisoned)?;
        Ok(symbols
            .iter()
            .filter_map(|s| {
                let key = (source.to_owned(), s.clone());
                let bars = all.get(&key)?;
                let (first, last) = (*bars.date.first()?, *bars.date.last()?);
                let (from, to) = fetched.get(&key).copied().unwrap_or((first, last));
                let extent = BarExtent {
                    first,
                    last,
                    n_bars: bars.len(),
                    fetched_from: from.min(first),
                    fetched_to: to.max(last),
                };
                Some((s.clone(), extent))
            })
            .collect())
    }

    async fn load_bars(
        &self,
        source: &str,
        symbols: &[Symbol],
        range: DateRange,
    ) -> Result<HashMap<Symbol, Bars>> {
        let all = self.bars.lock().map_err(poisoned)?;
        Ok(symbols
            .iter()
            .filter_map(|s| {
                let bars = all.get(&(source.to_owned(), s.clone()))?;
                Some((s.clone(), bars.slice_range(range)))
            })
            .filter(|(_, b)| !b.is_empty())
            .collect())
    }

    async fn save_scan(&self, report: &ScanReport) -> Result<()> {
        let mut scans = self.scans.lock().map_err(poisoned)?;
        scans.retain(|s| s.id != report.id);
        scans.push(report.clone());
        if let Some(max) = self.max_runs.get().filter(|&max| scans.len() > max) {
            // Oldest saved first, as `recent_scans` reads them.
            let excess = scans.len() - max;
            scans.drain(..excess);
        }
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

    async fn save_metric_sample(&self, sample: &MetricSample) -> Result<()> {
        let mut samples = self.samples.lock().map_err(poisoned)?;
        let at = samples.partition_point(|s| s.at <= sample.at);
        samples.insert(at, sample.clone());
        Ok(())
    }

    async fn metric_samples(&self, since: DateTime<Utc>) -> Result<Vec<MetricSample>> {
        let samples = self.samples.lock().map_err(poisoned)?;
        Ok(samples.iter().filter(|s| s.at >= since).cloned().collect())
    }

    async fn save_alert(&self, alert: &Alert) -> Result<()> {
        let mut alerts = self.alerts.lock().map_err(poisoned)?;
        let at = alerts.partition_point(|a| a.at <= alert.at);
        alerts.insert(at, alert.clone());
        Ok(())
    }

    async fn alerts(&self, since: DateTime<Utc>) -> Result<Vec<Alert>> {
        let alerts = self.alerts.lock().map_err(poisoned)?;
        Ok(alerts.iter().filter(|a| a.at >= since).cloned().collect())
    }

    async fn record_access(&self, symbols: &[Symbol]) -> Result<()> {
        let mut access = self.access.lock().map_err(poisoned)?;
        for s in symbols {
            *access.entry(s.clone()).or_default() += 1;
        }
        Ok(())
    }

    async fn prune(&self, before: DateTime<Utc>) -> Result<Pruned> {
        let mut scans = self.scans.lock().map_err(poisoned)?;
        let mut samples = self.samples.lock().map_err(poisoned)?;
        let mut alerts = self.alerts.lock().map_err(poisoned)?;
        let (r, s, a) = (scans.len(), samples.len(), alerts.len());
        scans.retain(|x| x.started_at >= before);
        samples.retain(|x| x.at >= before);
        alerts.retain(|x| x.at >= before);
        Ok(Pruned {
            runs: r - scans.len(),
            samples: s - samples.len(),
            alerts: a - alerts.len(),
        })
    }

    async fn access_counts(&self, limit: usize) -> Result<Vec<(Symbol, u64)>> {
        let access = self.access.lock().map_err(poisoned)?;
        let mut counts: Vec<_> = access.iter().map(|(s, n)| (s.clone(), *n)).collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        counts.truncate(limit);
        Ok(counts)
    }

    async fn save_screen(&self, screen: &SavedScreen) -> Result<()> {
        let mut screens = self.screens.lock().map_err(poisoned)?;
        screens.insert(screen.name.clone(), screen.clone());
        Ok(())
    }

    async fn screens(&self) -> Result<Vec<SavedScreen>> {
        Ok(self.screens.lock().map_err(poisoned)?.values().cloned().collect())
    }

    async fn delete_screen(&self, name: &str) -> Result<bool> {
        Ok(self.screens.lock().map_err(poisoned)?.remove(name).is_some())
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
    async fn memory_store_keeps_the_contract() {
        crate::testing::store_contract(&MemoryStore::default()).await;
    }

    /// Every store keeps at most [`DEFAULT_MAX_RUNS`] runs unless told otherwise.
    #[tokio::test]
    async fn stores_keep_a_bounded_number_of_runs_by_default() {
        assert_eq!(RunLimit::default().get(), Some(DEFAULT_MAX_RUNS));
        let store = MemoryStore::default();
        for i in 0..DEFAULT_MAX_RUNS + 2 {
            let report = crate::testing::sample_report(&format!("run-{i}"), Vec::new());
            store.save_scan(&report).await.unwrap();
        }
        let kept = store.recent_runs(usize::MAX).await.unwrap();
        assert_eq!(kept.len(), DEFAULT_MAX_RUNS);
        assert!(store.scan("run-1").await.unwrap().is_none(), "the oldest went");
        assert!(store.scan("run-1001").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn bars_upsert_by_date() {
        let store = MemoryStore::default();
        let sym = Symbol::new("A");
        store
            .save_bars("test", &sym, &Bars::from_bars(&[bar(2, 1.0), bar(3, 2.0)]))
            .await
            .unwrap();
        store
            .save_bars("test", &sym, &Bars::from_bars(&[bar(3, 5.0), bar(4, 6.0)]))
            .await
            .unwrap();
        let range = DateRange::new(NaiveDate::MIN, NaiveDate::MAX).unwrap();
        let got = store
            .load_bars("test", &[sym.clone(), Symbol::new("B")], range)
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[&sym].close, vec![1.0, 5.0, 6.0]);
    }
}
