//! Scoring one symbol and ranking many: the CPU part of a scan, free of I/O.

use std::cmp::Ordering;

use super::ScanResult;
use crate::indicators::Snapshot;
use crate::model::{Bars, UniverseEntry};
use crate::score::{Signal, TechRating, explain};
use crate::screen::fields::numeric;
use crate::screen::plan::{PlanInputs, Side};
use crate::screen::{Features, Needs, PlanSettings, SortKey, TradePlan};

/// A scored symbol with the values a screen reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The result (rank 0, no plan or explanation yet: those are added to the kept results only).
    pub result: ScanResult,
    /// Its fields over the last `depth` sessions.
    pub features: Features,
}

/// Computes the snapshot and rating of one symbol; `None` when it has no bars. The rank is left at 0.
pub fn score_symbol(entry: &UniverseEntry, bars: &Bars) -> Option<ScanResult> {
    let mut scored = score_with_features(entry, bars, &Needs::base())?;
    scored.result.explain = explain(&scored.result.indicators, scored.result.close);
    scored.result.trade_plan = plan_for(&scored, &PlanSettings::default());
    Some(scored.result)
}

/// Scores one symbol and computes the fields `needs` names (for as many sessions back as it reaches;
/// [`Needs::base`] plus a screen's [`crate::screen::Screen::needs`]).
pub fn score_with_features(entry: &UniverseEntry, bars: &Bars, needs: &Needs) -> Option<Scored> {
    let depth = needs.depth();
    let last = bars.last()?;
    let snaps = if depth <= 1 {
        vec![Snapshot::compute(bars)]
    } else {
        Snapshot::recent_masked(bars, depth, |k| needs.snapshot_mask(k))
    };
    let indicators = snaps[0];
    let rating = TechRating::compute(&indicators, last.close);
    let features = Features::compute_needed(bars, &snaps, Some(&rating), needs);
    let field = |name: &str| features.value(name);
    let result = ScanResult {
        rank: 0,
        symbol: entry.symbol.clone(),
        name: entry.name.clone(),
        sector: entry.sector.clone(),
        industry: entry.industry.clone(),
        date: last.date,
        as_of: Some(last.date),
        close: last.close,
        change_pct: field("change_pct"),
        volume: Some(last.volume),
        dollar_volume_20: field("dollar_volume_20"),
        atr_pct: field("atr_pct"),
        bb_width: field("bb_width"),
        rs_21: None,
        rs_63: None,
        rs_126: None,
        rs_252: None,
        tech_rating: rating.value,
        signal: rating.signal,
        sub_scores: rating.sub_scores,
        indicators,
        stale: false,
        trade_plan: None,
        explain: Vec::new(),
    };
    Some(Scored { result, features })
}

/// The trade plan of a scored symbol: long, or short for an Avoid result when shorts are allowed.
pub(crate) fn plan_for(s: &Scored, settings: &PlanSettings) -> Option<TradePlan> {
    let side = match s.result.signal {
        Signal::Avoid if settings.allow_shorts => Side::Short,
        Signal::Avoid => return None,
        _ => Side::Long,
    };
    let get = |name: &str| s.features.value(name).unwrap_or(f64::NAN);
    let inputs = PlanInputs {
        close: s.result.close,
        atr: s.result.indicators.atr_14.unwrap_or(f64::NAN),
        low_10: get("low_10"),
        high_10: get("high_10"),
        dollar_volume_20: get("dollar_volume_20"),
    };
    TradePlan::compute(side, &inputs, settings)
}

/// Rating (descending), then symbol (ascending).
fn by_rating(a: &ScanResult, b: &ScanResult) -> Ordering {
    b.tech_rating
        .partial_cmp(&a.tech_rating)
        .unwrap_or(Ordering::Equal)
        .then_with(|| a.symbol.cmp(&b.symbol))
}

/// Orders by rating (descending), then symbol (ascending); numbers ranks from 1; keeps the first `top`.
pub fn rank(results: Vec<ScanResult>, top: Option<usize>) -> Vec<ScanResult> {
    let mut results = select_top(results, top, by_rating);
    for (i, r) in results.iter_mut().enumerate() {
        r.rank = i + 1;
    }
    results
}

/// Orders scored symbols by `sort` (missing values last; ties by rating, then symbol) or by rating, keeps
/// the first `top` and numbers their ranks from 1.
pub(crate) fn rank_scored(scored: Vec<Scored>, top: Option<usize>, sort: Option<SortKey>) -> Vec<Scored> {
    let mut out = match sort {
        None => select_top(scored, top, |a, b| by_rating(&a.result, &b.result)),
        Some(key) => {
            let idx = key.field;
            debug_assert!(numeric(key.name()).is_some());
            select_top(scored, top, move |a, b| {
                let (x, y) = (a.features.get(idx, 0), b.features.get(idx, 0));
                let by_value = match (x.is_nan(), y.is_nan()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => Ordering::Greater,
                    (false, true) => Ordering::Less,
                    _ if key.descending => y.total_cmp(&x),
                    _ => x.total_cmp(&y),
                };
                by_value.then_with(|| by_rating(&a.result, &b.result))
            })
        }
    };
    for (i, s) in out.iter_mut().enumerate() {
        s.result.rank = i + 1;
    }
    out
}

fn select_top<T>(mut items: Vec<T>, top: Option<usize>, cmp: impl Fn(&T, &T) -> Ordering + Copy) -> Vec<T> {
    if let Some(k) = top
        && k < items.len()
    {
        // Partial selection first: sorting only the best k is much cheaper for a big universe.
        if k > 0 {
            items.select_nth_unstable_by(k - 1, cmp);
        }
        items.truncate(k);
    }
    items.sort_unstable_by(cmp);
    items
}
