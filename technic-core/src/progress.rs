//! Scan progress: the [`ProgressSink`] trait, the events a scan emits and the stages they belong to.
//!
//! Progress counts work *finished*, never work started or simulated; the ETA comes from measured
//! throughput in the current stage.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the overall progress bar is divided among the stages: each stage's share of the time a scan is
/// expected to take. The default is the fixed split of [`Stage::overall_range`], where fetching holds
/// most of the bar because symbols are scored while their bars arrive (the scanning stage is only the
/// last chunks' tail), so a slow or rate-limited fetch moves the bar steadily; a frontend that has
/// measured earlier scans passes [`StageWeights::measured`], so the bar moves in proportion to time (a
/// remote fetch can be 97 % of a scan, a local one 10 %).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StageWeights {
    /// Percent of the bar for loading the universe.
    pub loading: f64,
    /// Percent for fetching bars.
    pub fetching: f64,
    /// Percent for computing and scoring.
    pub scanning: f64,
    /// Percent for ranking and saving.
    pub finalizing: f64,
}

impl Default for StageWeights {
    fn default() -> Self {
        Self {
            loading: 2.0,
            fetching: 88.0,
            scanning: 7.0,
            finalizing: 3.0,
        }
    }
}

impl StageWeights {
    /// Weights from measured stage durations (milliseconds) of an earlier scan; every stage keeps at
    /// least about 1 % so none is invisible. `None` when nothing was measured.
    pub fn measured(loading_ms: f64, fetching_ms: f64, scanning_ms: f64, finalizing_ms: f64) -> Option<Self> {
        let parts = [loading_ms, fetching_ms, scanning_ms, finalizing_ms].map(|x| x.max(0.0));
        let total: f64 = parts.iter().sum();
        if !(total > 0.0 && total.is_finite()) {
            return None;
        }
        let shares = parts.map(|p| (100.0 * p / total).max(1.0));
        let norm: f64 = shares.iter().sum::<f64>() / 100.0;
        Some(Self {
            loading: shares[0] / norm,
            fetching: shares[1] / norm,
            scanning: shares[2] / norm,
            finalizing: shares[3] / norm,
        })
    }

    /// The overall-percent range `stage` spans under these weights.
    pub fn range(&self, stage: Stage) -> (f64, f64) {
        let a = self.loading;
        let b = a + self.fetching;
        let c = b + self.scanning;
        match stage {
            Stage::Initializing => (0.0, 0.0),
            Stage::LoadingUniverse => (0.0, a),
            Stage::FetchingData => (a, b),
            Stage::Scanning => (b, c),
            Stage::Finalizing => (c, 100.0),
            Stage::Complete => (100.0, 100.0),
            Stage::Cancelled | Stage::Failed => (0.0, 100.0),
        }
    }
}

/// A stage of a scan, with its share of overall progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Setting up (0 %).
    Initializing,
    /// Loading the universe (0–5 %).
    LoadingUniverse,
    /// Fetching daily bars (5–25 %).
    FetchingData,
    /// Computing indicators and scores (25–95 %).
    Scanning,
    /// Ranking and saving (95–100 %).
    Finalizing,
    /// Finished successfully (100 %).
    Complete,
    /// Stopped by the user.
    Cancelled,
    /// Stopped by an error.
    Failed,
}

impl Stage {
    /// The overall-percent range this stage spans.
    pub fn overall_range(self) -> (f64, f64) {
        match self {
            Self::Initializing => (0.0, 0.0),
            Self::LoadingUniverse => (0.0, 2.0),
            Self::FetchingData => (2.0, 90.0),
            Self::Scanning => (90.0, 97.0),
            Self::Finalizing => (97.0, 100.0),
            Self::Complete => (100.0, 100.0),
            Self::Cancelled | Self::Failed => (0.0, 100.0),
        }
    }

    /// Overall percent for `stage_percent` (0–100) of this stage.
    pub fn overall_percent(self, stage_percent: f64) -> f64 {
        let (lo, hi) = self.overall_range();
        lo + (hi - lo) * stage_percent.clamp(0.0, 100.0) / 100.0
    }

    /// Overall percent for `stage_percent` of this stage when the bar is divided by `weights`.
    pub fn overall_percent_with(self, weights: &StageWeights, stage_percent: f64) -> f64 {
        let (lo, hi) = weights.range(self);
        lo + (hi - lo) * stage_percent.clamp(0.0, 100.0) / 100.0
    }

    /// A user-facing label ("Fetching data…").
    pub fn label(self) -> &'static str {
        match self {
            Self::Initializing => "Initializing…",
            Self::LoadingUniverse => "Loading universe…",
            Self::FetchingData => "Fetching data…",
            Self::Scanning => "Scanning symbols…",
            Self::Finalizing => "Finalizing results…",
            Self::Complete => "Complete!",
            Self::Cancelled => "Cancelled",
            Self::Failed => "Failed",
        }
    }

    /// True for Complete, Cancelled and Failed.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Complete | Self::Cancelled | Self::Failed)
    }
}

/// One progress update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressEvent {
    /// The scan this event belongs to.
    pub scan_id: String,
    /// Current stage.
    pub stage: Stage,
    /// Percent of the current stage finished.
    pub stage_percent: f64,
    /// Percent of the whole scan finished (never decreases within a scan).
    pub overall_percent: f64,
    /// Items finished in this stage.
    pub processed: usize,
    /// Items in this stage.
    pub total: usize,
    /// Estimated time left for the whole scan, from measured throughput.
    pub eta: Option<Duration>,
    /// Human-readable message.
    pub message: String,
}

/// Receives progress events. Called from the scan's task: implementations must return quickly
/// (send to a channel, update an atomic), never block on I/O.
pub trait ProgressSink: Send + Sync {
    /// Called for every progress change.
    fn on_progress(&self, event: &ProgressEvent);
}

/// A sink that ignores every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopSink;

impl ProgressSink for NoopSink {
    fn on_progress(&self, _event: &ProgressEvent) {}
}

/// A sink that keeps every event, for tests and for callers that want the whole history.
#[derive(Debug, Default)]
pub struct RecordingSink {
    events: Mutex<Vec<ProgressEvent>>,
}

impl RecordingSink {
    /// A copy of the events so far.
    pub fn events(&self) -> Vec<ProgressEvent> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl ProgressSink for RecordingSink {
    fn on_progress(&self, event: &ProgressEvent) {
        if let Ok(mut events) = self.events.lock() {
            events.push(event.clone());
        }
    }
}

impl<F: Fn(&ProgressEvent) + Send + Sync> ProgressSink for F {
    fn on_progress(&self, event: &ProgressEvent) {
        self(event);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn measured_weights_follow_time_and_keep_every_stage_visible() {
        let w = StageWeights::measured(10.0, 9_700.0, 280.0, 10.0).unwrap();
        let total = w.loading + w.fetching + w.scanning + w.finalizing;
        assert!((total - 100.0).abs() < 1e-9);
        assert!(w.fetching > 90.0, "{w:?}");
        assert!(w.loading > 0.9 && w.finalizing > 0.9, "{w:?}");
        assert_eq!(w.range(Stage::Finalizing).1, 100.0);
        let (lo, hi) = w.range(Stage::FetchingData);
        assert!((Stage::FetchingData.overall_percent_with(&w, 50.0) - (lo + hi) / 2.0).abs() < 1e-9);
        assert!(StageWeights::measured(0.0, 0.0, 0.0, 0.0).is_none());
        assert_eq!(
            StageWeights::default().range(Stage::Scanning),
            Stage::Scanning.overall_range()
        );
    }

    use super::*;

    #[test]
    fn stage_ranges_chain() {
        assert_eq!(Stage::FetchingData.overall_percent(50.0), 46.0);
        assert_eq!(Stage::Scanning.overall_percent(100.0), 97.0);
        assert_eq!(Stage::Scanning.overall_percent(150.0), 97.0);
        assert_eq!(
            Stage::LoadingUniverse.overall_range().1,
            Stage::FetchingData.overall_range().0
        );
        assert!(Stage::Cancelled.is_terminal() && !Stage::Scanning.is_terminal());
    }
}
