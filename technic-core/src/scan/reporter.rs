//! Turns "n of m finished in this stage" into [`ProgressEvent`]s with overall percent and an ETA from
//! measured throughput, sending at most one event per percent of a stage.

use std::time::{Duration, Instant};

use crate::progress::{ProgressEvent, ProgressSink, Stage, StageWeights};

pub(crate) struct Reporter<'a> {
    scan_id: String,
    sink: &'a dyn ProgressSink,
    started: Instant,
    stage: Stage,
    stage_started: Instant,
    last_overall: f64,
    last_sent_percent: i64,
    weights: StageWeights,
}

impl<'a> Reporter<'a> {
    pub fn new(scan_id: String, sink: &'a dyn ProgressSink, weights: StageWeights) -> Self {
        let now = Instant::now();
        Self {
            scan_id,
            sink,
            started: now,
            stage: Stage::Initializing,
            stage_started: now,
            last_overall: 0.0,
            last_sent_percent: -1,
            weights,
        }
    }

    /// Enters `stage` and reports 0 of `total`.
    pub fn begin(&mut self, stage: Stage, total: usize, message: impl Into<String>) {
        self.stage = stage;
        self.stage_started = Instant::now();
        self.last_sent_percent = -1;
        self.send(0, total, message.into());
    }

    /// Reports `processed` of `total` finished in the current stage (throttled to one event per percent).
    pub fn advance(&mut self, processed: usize, total: usize, message: impl FnOnce() -> String) {
        let pct = stage_percent(processed, total);
        if pct.floor() as i64 > self.last_sent_percent || processed >= total {
            self.send(processed, total, message());
        }
    }

    /// Reports where the stage stands now, whether or not anything finished since the last event (a
    /// periodic update while work is waiting).
    pub fn tick(&mut self, processed: usize, total: usize, message: String) {
        self.send(processed, total, message);
    }

    /// Reports a terminal stage (Complete, Cancelled, Failed).
    pub fn finish(&mut self, stage: Stage, processed: usize, total: usize, message: impl Into<String>) {
        self.stage = stage;
        self.last_sent_percent = -1;
        self.send(processed, total, message.into());
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn send(&mut self, processed: usize, total: usize, message: String) {
        let stage_pct = match self.stage {
            Stage::Complete => 100.0,
            _ => stage_percent(processed, total),
        };
        // Overall progress never goes backwards: a cancelled or failed scan keeps the percent it reached.
        let overall = match self.stage {
            Stage::Cancelled | Stage::Failed => self.last_overall,
            s => s
                .overall_percent_with(&self.weights, stage_pct)
                .max(self.last_overall),
        };
        self.last_overall = overall;
        self.last_sent_percent = stage_pct.floor() as i64;
        let eta = self.eta(processed, total, overall);
        self.sink.on_progress(&ProgressEvent {
            scan_id: self.scan_id.clone(),
            stage: self.stage,
            stage_percent: stage_pct,
            overall_percent: overall,
            processed,
            total,
            eta,
            message,
        });
    }

    /// Time left in this stage from its measured throughput, plus the later stages extrapolated from the
    /// time the scan has taken per overall percent so far.
    fn eta(&self, processed: usize, total: usize, overall: f64) -> Option<Duration> {
        if self.stage.is_terminal() {
            return (self.stage == Stage::Complete).then_some(Duration::ZERO);
        }
        if processed == 0 || overall <= 0.0 {
            return None;
        }
        let stage_elapsed = self.stage_started.elapsed().as_secs_f64();
        let per_item = stage_elapsed / processed as f64;
        let stage_left = per_item * total.saturating_sub(processed) as f64;
        let (_, stage_end) = self.weights.range(self.stage);
        let per_percent = self.started.elapsed().as_secs_f64() / overall;
        let later = per_percent * (100.0 - stage_end).max(0.0);
        Some(Duration::from_secs_f64(stage_left + later))
    }
}

fn stage_percent(processed: usize, total: usize) -> f64 {
    if total == 0 {
        100.0
    } else {
        100.0 * processed.min(total) as f64 / total as f64
    }
}
