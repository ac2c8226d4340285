//! Scoring while bars still arrive: fetched symbols are scored on blocking threads in chunks as soon as a
//! chunk is full, so a scan holds only the bars of the chunks in flight (a 5000-symbol scan of local files
//! holds a few MB of bars at a time, not all 111 MB) and the maths overlaps the fetch.

use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinSet;
use tracing::warn;

use super::{FilterCounts, Filters, Scored, Skipped};
use crate::model::{Bars, Symbol, UniverseEntry};
use crate::screen::Needs;
use crate::screen::regime::IndexAccumulator;

/// What a chunk's task returns: each symbol's outcome (a panic as its message) and the chunk's share of
/// the equal-weight index.
type ChunkOut = (
    Vec<(Symbol, std::result::Result<Option<Scored>, String>)>,
    IndexAccumulator,
);

/// Symbols waiting for a chunk, chunks being scored, and what has been scored.
pub(super) struct Scoring {
    needs: Needs,
    chunk: usize,
    threads: usize,
    pending: Vec<(UniverseEntry, Arc<Bars>)>,
    running: JoinSet<ChunkOut>,
    /// Symbols handed to scoring (after the bar filters).
    pub submitted: usize,
    /// Symbols whose outcome is known.
    pub done: usize,
    pub scored: Vec<Scored>,
    pub skipped: Vec<Skipped>,
    /// The equal-weight index of every scored symbol's recent returns.
    pub index: IndexAccumulator,
    /// When set, fetched symbols are kept here, unfiltered and unscored (for backtests, which read
    /// every session of the bars).
    pub kept: Option<Vec<(UniverseEntry, Arc<Bars>)>>,
}

impl Scoring {
    /// Scoring for a universe of `total` symbols, reading `needs`.
    pub fn new(needs: Needs, total: usize) -> Self {
        let threads = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Self {
            needs,
            // Chunks small enough that cancellation is seen within milliseconds and few bars are held,
            // large enough that task overhead stays negligible.
            chunk: (total / (threads * 8)).clamp(16, 128),
            threads,
            pending: Vec::new(),
            running: JoinSet::new(),
            submitted: 0,
            done: 0,
            scored: Vec::with_capacity(total),
            skipped: Vec::new(),
            index: IndexAccumulator::default(),
            kept: None,
        }
    }

    /// Keeps every fetched symbol with its bars instead of scoring it.
    pub fn keeping(total: usize) -> Self {
        Self {
            kept: Some(Vec::with_capacity(total)),
            ..Self::new(Needs::base(), 0)
        }
    }

    /// Takes a fetched symbol: counted and dropped when a bar filter excludes it, else queued and
    /// scored with its chunk. Waits while more chunks are queued than the cores can score, so bars do
    /// not pile up when fetching outpaces scoring.
    pub async fn push(
        &mut self,
        entry: UniverseEntry,
        bars: Arc<Bars>,
        filters: &Filters,
        counts: &mut FilterCounts,
    ) {
        if let Some(kept) = &mut self.kept {
            kept.push((entry, bars));
            return;
        }
        if !passes(&bars, filters, counts) {
            return;
        }
        self.submitted += 1;
        self.pending.push((entry, bars));
        if self.pending.len() >= self.chunk {
            self.spawn(None);
        }
        while let Some(joined) = self.running.try_join_next() {
            self.absorb(joined);
        }
        while self.running.len() > self.threads {
            match self.running.join_next().await {
                Some(joined) => self.absorb(joined),
                None => break,
            }
        }
    }

    /// Scores the queued symbols as one chunk (only those started before `deadline`, when given).
    fn spawn(&mut self, deadline: Option<Instant>) {
        if self.pending.is_empty() {
            return;
        }
        let work = std::mem::take(&mut self.pending);
        let needs = self.needs;
        self.running.spawn_blocking(move || {
            let mut index = IndexAccumulator::default();
            let results = work
                .iter()
                .take_while(|_| deadline.is_none_or(|d| Instant::now() < d))
                .map(|(e, b)| {
                    index.add(b);
                    (e.symbol.clone(), super::pipeline::score_caught(e, b, &needs))
                })
                .collect();
            (results, index)
        });
    }

    fn absorb(&mut self, joined: std::result::Result<ChunkOut, tokio::task::JoinError>) {
        match joined {
            Ok((results, index)) => {
                self.index.merge(&index);
                for (symbol, result) in results {
                    self.done += 1;
                    match result {
                        Ok(Some(r)) => self.scored.push(r),
                        Ok(None) => self.skipped.push(Skipped {
                            symbol,
                            reason: "no bars in the requested range".to_owned(),
                            category: crate::error::Category::Data,
                        }),
                        Err(why) => {
                            warn!(%symbol, %why, "scoring panicked; symbol skipped");
                            self.skipped.push(Skipped {
                                symbol,
                                reason: format!("internal error while scoring (please report it): {why}"),
                                category: crate::error::Category::Internal,
                            });
                        }
                    }
                }
            }
            // Each symbol's panic is caught in `score_caught`; a chunk can only fail by being aborted
            // (cancellation) or by a panic outside it, which would be a bug.
            Err(e) if e.is_cancelled() => {}
            Err(e) => warn!(error = %e, "scoring task failed"),
        }
    }

    /// Scores what is queued, then waits for every chunk, reporting each; stops early (true) when
    /// `cancel` fires.
    pub async fn finish(
        &mut self,
        cancel: &tokio_util::sync::CancellationToken,
        mut progress: impl FnMut(usize, usize),
    ) -> bool {
        self.spawn(None);
        loop {
            let joined = tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    self.running.abort_all();
                    return true;
                }
                joined = self.running.join_next() => joined,
            };
            let Some(joined) = joined else { return false };
            self.absorb(joined);
            progress(self.done, self.submitted);
        }
    }

    /// After a cancel: keeps what finishes by `deadline` (a cancel still ends the scan promptly) and
    /// abandons the rest.
    pub async fn finish_by(&mut self, deadline: Instant) {
        self.spawn(Some(deadline));
        let until = tokio::time::Instant::from_std(deadline);
        while let Ok(Some(joined)) = tokio::time::timeout_at(until, self.running.join_next()).await {
            self.absorb(joined);
        }
        self.running.abort_all();
    }
}

/// Whether `bars` pass the bar-based filters; a symbol excluded is counted under the first filter that
/// excludes it.
fn passes(bars: &Bars, filters: &Filters, counts: &mut FilterCounts) -> bool {
    if let Some(min) = filters.min_price
        && !bars.close.last().is_some_and(|c| *c >= min)
    {
        counts.min_price += 1;
        return false;
    }
    if let Some(min) = filters.min_dollar_volume
        && !super::pipeline::avg_dollar_volume(bars, 20).is_some_and(|v| v >= min)
    {
        counts.min_dollar_volume += 1;
        return false;
    }
    true
}
