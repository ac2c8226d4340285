//! Scoring one symbol and ranking many: the CPU part of a scan, free of I/O.

use std::cmp::Ordering;

use super::ScanResult;
use crate::indicators::Snapshot;
use crate::model::{Bars, UniverseEntry};
use crate::score::TechRating;

/// Computes the snapshot and rating of one symbol; `None` when it has no bars. The rank is left at 0.
pub fn score_symbol(entry: &UniverseEntry, bars: &Bars) -> Option<ScanResult> {
    let last = bars.last()?;
    let indicators = Snapshot::compute(bars);
    let rating = TechRating::compute(&indicators, last.close);
    Some(ScanResult {
        rank: 0,
        symbol: entry.symbol.clone(),
        name: entry.name.clone(),
        sector: entry.sector.clone(),
        date: last.date,
        as_of: Some(last.date),
        close: last.close,
        tech_rating: rating.value,
        signal: rating.signal,
        sub_scores: rating.sub_scores,
        indicators,
        stale: false,
    })
}

/// Orders by rating (descending), then symbol (ascending); numbers ranks from 1; keeps the first `top`.
pub fn rank(mut results: Vec<ScanResult>, top: Option<usize>) -> Vec<ScanResult> {
    let by_rank = |a: &ScanResult, b: &ScanResult| {
        b.tech_rating
            .partial_cmp(&a.tech_rating)
            .unwrap_or(Ordering::Equal)
            .then_with(|| a.symbol.cmp(&b.symbol))
    };
    match top {
        Some(k) if k < results.len() => {
            // Partial selection first: sorting only the best k is much cheaper for a big universe.
            if k > 0 {
                results.select_nth_unstable_by(k - 1, by_rank);
            }
            results.truncate(k);
        }
        _ => {}
    }
    results.sort_unstable_by(by_rank);
    for (i, r) in results.iter_mut().enumerate() {
        r.rank = i + 1;
    }
    results
}
