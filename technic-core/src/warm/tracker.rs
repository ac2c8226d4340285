//! [`SymbolTracker`]: access counts with exponential time decay and hour-of-day patterns.
//!
//! Each symbol keeps a score that decays with a configurable half-life: an access adds 1, and after one
//! half-life it counts ½. Scores are stored with the time they were last brought up to date and decayed
//! lazily, so recording is one map lookup and a few float operations under a short lock (no I/O, no
//! allocation except the first time a symbol is seen).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::model::Symbol;

/// Tracker settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerConfig {
    /// Time after which an access counts half.
    pub half_life: Duration,
    /// Most symbols tracked; when full, the least popular tenth is forgotten to make room.
    pub max_symbols: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            half_life: Duration::from_secs(6 * 3600),
            max_symbols: 20_000,
        }
    }
}

/// What the tracker knows of one symbol; also the form it is persisted in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessRecord {
    /// The symbol.
    pub symbol: Symbol,
    /// Decayed access score as of `updated_at`.
    pub score: f64,
    /// When `score` was last brought up to date.
    pub updated_at: DateTime<Utc>,
    /// Accesses ever recorded.
    pub total: u64,
    /// Accesses per hour of the day (UTC).
    pub by_hour: [u32; 24],
}

impl AccessRecord {
    fn decayed(&self, at: DateTime<Utc>, lambda: f64) -> f64 {
        let dt = (at - self.updated_at).num_milliseconds().max(0) as f64 / 1e3;
        self.score * (-lambda * dt).exp()
    }
}

/// Drops the least popular tenth (at least one) of `records`, so a full tracker makes room in batches
/// (one sort per `max / 10` new symbols, not one scan per symbol).
fn forget_least_popular(
    records: &mut HashMap<Symbol, AccessRecord>,
    at: DateTime<Utc>,
    lambda: f64,
    max: usize,
) {
    let mut scores: Vec<(f64, Symbol)> = records
        .values()
        .map(|r| (r.decayed(at, lambda), r.symbol.clone()))
        .collect();
    scores.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(&a.1)));
    for (_, s) in scores.into_iter().take((max / 10).max(1)) {
        records.remove(&s);
    }
}

/// Popularity of symbols. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct SymbolTracker {
    /// Decay rate per second: ln 2 / half-life.
    lambda: f64,
    max_symbols: usize,
    records: Mutex<HashMap<Symbol, AccessRecord>>,
}

impl Default for SymbolTracker {
    fn default() -> Self {
        Self::new(TrackerConfig::default())
    }
}

impl SymbolTracker {
    /// A tracker with `config`.
    pub fn new(config: TrackerConfig) -> Self {
        let half_life = config.half_life.as_secs_f64().max(1e-3);
        Self {
            lambda: std::f64::consts::LN_2 / half_life,
            max_symbols: config.max_symbols.max(1),
            records: Mutex::new(HashMap::new()),
        }
    }

    /// Records one access now.
    pub fn record(&self, symbol: &Symbol) {
        self.record_at(symbol, Utc::now());
    }

    /// Records one access at `at`.
    pub fn record_at(&self, symbol: &Symbol, at: DateTime<Utc>) {
        let Ok(mut records) = self.records.lock() else {
            return;
        };
        let lambda = self.lambda;
        let hour = at.hour() as usize;
        match records.get_mut(symbol) {
            Some(r) => {
                if at >= r.updated_at {
                    r.score = r.decayed(at, lambda) + 1.0;
                    r.updated_at = at;
                } else {
                    // An access reported late counts as already decayed to the record's time.
                    let dt = (r.updated_at - at).num_milliseconds() as f64 / 1e3;
                    r.score += (-lambda * dt).exp();
                }
                r.total += 1;
                r.by_hour[hour] += 1;
            }
            None => {
                if records.len() >= self.max_symbols {
                    forget_least_popular(&mut records, at, lambda, self.max_symbols);
                }
                let mut by_hour = [0; 24];
                by_hour[hour] = 1;
                records.insert(
                    symbol.clone(),
                    AccessRecord {
                        symbol: symbol.clone(),
                        score: 1.0,
                        updated_at: at,
                        total: 1,
                        by_hour,
                    },
                );
            }
        }
    }

    /// Records one access for each symbol of a scan.
    pub fn record_many<'a>(&self, symbols: impl IntoIterator<Item = &'a Symbol>, at: DateTime<Utc>) {
        for s in symbols {
            self.record_at(s, at);
        }
    }

    /// The `n` most popular symbols at `at` with their decayed scores: score descending, symbol ascending.
    pub fn top(&self, n: usize, at: DateTime<Utc>) -> Vec<(Symbol, f64)> {
        let Ok(records) = self.records.lock() else {
            return Vec::new();
        };
        let mut all: Vec<(Symbol, f64)> = records
            .values()
            .map(|r| (r.symbol.clone(), r.decayed(at, self.lambda)))
            .collect();
        drop(records);
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }

    /// The decayed score of `symbol` at `at` (0 when never seen).
    pub fn score(&self, symbol: &Symbol, at: DateTime<Utc>) -> f64 {
        self.records
            .lock()
            .ok()
            .and_then(|r| r.get(symbol).map(|r| r.decayed(at, self.lambda)))
            .unwrap_or(0.0)
    }

    /// Accesses per hour of the day (UTC) over all symbols: when users are active.
    pub fn hourly_pattern(&self) -> [u64; 24] {
        let mut out = [0u64; 24];
        if let Ok(records) = self.records.lock() {
            for r in records.values() {
                for (o, h) in out.iter_mut().zip(r.by_hour) {
                    *o += u64::from(h);
                }
            }
        }
        out
    }

    /// Every record, for persisting.
    pub fn export(&self) -> Vec<AccessRecord> {
        self.records
            .lock()
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Loads persisted records (merging with what is already tracked: scores add up at the later time).
    pub fn import(&self, loaded: impl IntoIterator<Item = AccessRecord>) {
        let Ok(mut records) = self.records.lock() else {
            return;
        };
        for rec in loaded {
            match records.get_mut(&rec.symbol) {
                Some(r) => {
                    let at = r.updated_at.max(rec.updated_at);
                    r.score = r.decayed(at, self.lambda) + rec.decayed(at, self.lambda);
                    r.updated_at = at;
                    r.total += rec.total;
                    for (a, b) in r.by_hour.iter_mut().zip(rec.by_hour) {
                        *a += b;
                    }
                }
                None => {
                    records.insert(rec.symbol.clone(), rec);
                }
            }
        }
    }

    /// Symbols tracked.
    pub fn len(&self) -> usize {
        self.records.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// True when nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        "2026-11-02T14:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_flood_of_new_symbols_stays_within_the_cap_and_keeps_the_popular() {
        let tr = SymbolTracker::new(TrackerConfig {
            max_symbols: 1000,
            ..TrackerConfig::default()
        });
        let popular = Symbol::new("AAPL");
        for _ in 0..50 {
            tr.record_at(&popular, t0());
        }
        for i in 0..100_000 {
            tr.record_at(&Symbol::new(format!("JUNK{i}")), t0());
        }
        assert!(tr.len() <= 1000, "{}", tr.len());
        assert_eq!(tr.top(1, t0())[0].0, popular);
    }

    #[test]
    fn decays_by_half_per_half_life() {
        let tr = SymbolTracker::new(TrackerConfig {
            half_life: Duration::from_secs(3600),
            ..TrackerConfig::default()
        });
        let a = Symbol::new("A");
        tr.record_at(&a, t0());
        tr.record_at(&a, t0());
        assert!((tr.score(&a, t0()) - 2.0).abs() < 1e-12);
        assert!((tr.score(&a, t0() + chrono::Duration::hours(1)) - 1.0).abs() < 1e-9);
        assert!((tr.score(&a, t0() + chrono::Duration::hours(2)) - 0.5).abs() < 1e-9);
        assert_eq!(tr.score(&Symbol::new("B"), t0()), 0.0);
        assert_eq!(tr.hourly_pattern()[14], 2);
    }

    #[test]
    fn recent_interest_beats_old_interest() {
        let tr = SymbolTracker::new(TrackerConfig {
            half_life: Duration::from_secs(3600),
            ..TrackerConfig::default()
        });
        let (old, new) = (Symbol::new("OLD"), Symbol::new("NEW"));
        for _ in 0..10 {
            tr.record_at(&old, t0());
        }
        for _ in 0..3 {
            tr.record_at(&new, t0() + chrono::Duration::hours(4));
        }
        let top = tr.top(2, t0() + chrono::Duration::hours(4));
        assert_eq!(top[0].0, new, "10 accesses 4 half-lives ago count 0.625 < 3");
        assert_eq!(tr.top(1, t0()).len(), 1);
    }

    #[test]
    fn export_import_round_trip() {
        let tr = SymbolTracker::default();
        tr.record_at(&Symbol::new("A"), t0());
        tr.record_at(&Symbol::new("B"), t0());
        tr.record_at(&Symbol::new("B"), t0());
        let restored = SymbolTracker::default();
        restored.import(tr.export());
        assert_eq!(restored.top(5, t0()), tr.top(5, t0()));
        restored.import(tr.export());
        assert!(
            (restored.score(&Symbol::new("B"), t0()) - 4.0).abs() < 1e-12,
            "imports add up"
        );
    }

    proptest! {
        /// With accesses at the same times, a symbol with more of them never ranks lower.
        #[test]
        fn more_accesses_never_rank_lower(times in proptest::collection::vec(0i64..100_000, 1..40), extra in 0usize..5, at in 100_000i64..400_000) {
            let tr = SymbolTracker::new(TrackerConfig { half_life: Duration::from_secs(7200), ..TrackerConfig::default() });
            let (more, fewer) = (Symbol::new("MORE"), Symbol::new("ZFEW"));
            for &t in &times {
                let when = t0() + chrono::Duration::seconds(t);
                tr.record_at(&more, when);
                tr.record_at(&fewer, when);
            }
            for k in 0..extra {
                tr.record_at(&more, t0() + chrono::Duration::seconds(times[k % times.len()]));
            }
            let now = t0() + chrono::Duration::seconds(at);
            prop_assert!(tr.score(&more, now) >= tr.score(&fewer, now));
            let top = tr.top(2, now);
            prop_assert_eq!(&top[0].0, &more);
        }
    }
}
