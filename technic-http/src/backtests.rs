//! Backtests started through the API: run in the background (at most [`MAX_RUNNING`] at once), with
//! progress, cancel and the finished report kept for a while (the last [`KEEP`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use technic_core::backtest::{BacktestReport, BacktestRequest, backtest};
use technic_core::progress::{ProgressEvent, ProgressSink};
use technic_core::{CancellationToken, Deps};

/// Backtests running at once; more are refused with 429 (each uses every core for a moment).
pub const MAX_RUNNING: usize = 2;
/// Finished backtests kept for `GET /api/v1/backtests/{id}`.
pub const KEEP: usize = 20;

/// Where a backtest is.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// `running`, `complete`, `cancelled` or `failed`.
    pub state: String,
    /// Percent finished.
    pub percent: f64,
    /// What it is doing.
    pub message: String,
    /// Why it failed.
    pub error: Option<crate::dto::ErrorBody>,
    /// The report, once complete (or cancelled with what finished).
    pub report: Option<Arc<BacktestReport>>,
}

/// One backtest.
#[derive(Debug)]
pub struct Job {
    /// Its id.
    pub id: String,
    progress: Mutex<Progress>,
    cancel: CancellationToken,
}

impl Job {
    /// Where it is now.
    pub fn progress(&self) -> Progress {
        self.progress.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Asks it to stop; false when it has already ended.
    pub fn cancel(&self) -> bool {
        let running = self.progress().state == "running";
        if running {
            self.cancel.cancel();
        }
        running
    }
}

struct Sink(Arc<Job>);

impl ProgressSink for Sink {
    fn on_progress(&self, e: &ProgressEvent) {
        let mut p = self.0.progress.lock().unwrap_or_else(|e| e.into_inner());
        p.percent = p.percent.max(e.overall_percent);
        p.message.clone_from(&e.message);
    }
}

/// The backtests of this server.
#[derive(Debug, Default)]
pub struct Backtests {
    jobs: Mutex<VecDeque<Arc<Job>>>,
}

/// Refused: too many running.
#[derive(Debug, Clone, Copy)]
pub struct Busy;

impl Backtests {
    /// The backtest `id`.
    pub fn get(&self, id: &str) -> Option<Arc<Job>> {
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.iter().find(|j| j.id == id).cloned()
    }

    /// Every backtest kept, newest first.
    pub fn list(&self) -> Vec<Arc<Job>> {
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.iter().rev().cloned().collect()
    }

    /// Starts `req` in the background.
    pub fn start(&self, req: BacktestRequest, deps: Deps) -> Result<Arc<Job>, Busy> {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        if jobs.iter().filter(|j| j.progress().state == "running").count() >= MAX_RUNNING {
            return Err(Busy);
        }
        let job = Arc::new(Job {
            id: technic_core::scan::new_scan_id(),
            progress: Mutex::new(Progress {
                state: "running".to_owned(),
                message: "Starting…".to_owned(),
                ..Progress::default()
            }),
            cancel: CancellationToken::new(),
        });
        // Forget the oldest finished ones beyond the limit.
        while jobs.len() >= KEEP + MAX_RUNNING {
            let Some(pos) = jobs.iter().position(|j| j.progress().state != "running") else {
                break;
            };
            jobs.remove(pos);
        }
        jobs.push_back(job.clone());
        drop(jobs);
        let running = job.clone();
        tokio::spawn(async move {
            let sink = Sink(running.clone());
            let result = backtest(&req, &deps, &sink, running.cancel.clone()).await;
            let mut p = running.progress.lock().unwrap_or_else(|e| e.into_inner());
            match result {
                Ok(report) => {
                    p.state = match report.state {
                        technic_core::ScanState::Complete => "complete",
                        _ => "cancelled",
                    }
                    .to_owned();
                    p.percent = 100.0;
                    p.report = Some(Arc::new(report));
                }
                Err(technic_core::Error::Cancelled) => p.state = "cancelled".to_owned(),
                Err(e) => {
                    p.state = "failed".to_owned();
                    p.error = Some(crate::error::error_body(&e));
                }
            }
        });
        Ok(job)
    }
}
