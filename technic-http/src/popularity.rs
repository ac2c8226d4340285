//! Popularity survives restarts: symbol access counts are loaded from the store when the server starts
//! and the new accesses are written back periodically (never on the request path).

use std::collections::HashMap;

use technic_core::Symbol;
use technic_core::warm::AccessRecord;

use crate::state::AppState;

/// Most symbols restored at start.
const RESTORE: usize = 5_000;

/// Loads persisted access counts into the tracker (as if they had just happened). Returns how many
/// symbols were restored; 0 without a store.
pub async fn restore(state: &AppState) -> usize {
    let Some(store) = &state.deps.store else { return 0 };
    match store.access_counts(RESTORE).await {
        Ok(counts) => {
            let now = state.deps.market.now();
            let n = counts.len();
            state
                .tracker
                .import(counts.into_iter().map(|(symbol, count)| AccessRecord {
                    symbol,
                    score: count as f64,
                    updated_at: now,
                    total: 0,
                    by_hour: [0; 24],
                }));
            n
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not load symbol popularity from the store");
            0
        }
    }
}

/// Writes the accesses recorded since the previous flush to the store. `flushed` remembers each symbol's
/// total at the last flush.
pub async fn flush(state: &AppState, flushed: &mut HashMap<Symbol, u64>) -> usize {
    let Some(store) = &state.deps.store else { return 0 };
    let mut batch = Vec::new();
    for rec in state.tracker.export() {
        let before = flushed.get(&rec.symbol).copied().unwrap_or(0);
        for _ in before..rec.total {
            batch.push(rec.symbol.clone());
        }
    }
    if batch.is_empty() {
        return 0;
    }
    match store.record_access(&batch).await {
        Ok(()) => {
            for rec in state.tracker.export() {
                flushed.insert(rec.symbol.clone(), rec.total);
            }
            batch.len()
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not save symbol popularity");
            0
        }
    }
}
