//! The scans the server runs: each in its own task, with a cancellation token, a live status that SSE
//! clients watch, and the report once it ends. Keeps the most recent [`KEEP`] scans.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use std::sync::atomic::{AtomicUsize, Ordering};
use technic_core::{CancellationToken, Deps, ProgressEvent, ProgressSink, ScanReport, ScanRequest, scan};

use tokio::sync::{Semaphore, watch};

use crate::dto::ScanStatus;
use crate::error::error_body;

/// How many scans are remembered (finished ones are dropped oldest first).
pub const KEEP: usize = 200;

/// With a store, how many finished scans keep their full report in memory (older ones are read back from
/// the store when asked for).
pub const KEEP_REPORTS: usize = 8;

/// One scan the server knows.
#[derive(Debug)]
pub struct ScanEntry {
    /// The scan's id.
    pub id: String,
    cancel: CancellationToken,
    status: watch::Sender<ScanStatus>,
    report: Mutex<Option<Arc<ScanReport>>>,
}

impl ScanEntry {
    /// The current status.
    pub fn status(&self) -> ScanStatus {
        self.status.borrow().clone()
    }

    /// A receiver that sees every status change (latest value first).
    pub fn subscribe(&self) -> watch::Receiver<ScanStatus> {
        self.status.subscribe()
    }

    /// The report, once the scan has ended without failing.
    pub fn report(&self) -> Option<Arc<ScanReport>> {
        self.report.lock().ok().and_then(|r| r.clone())
    }

    /// Asks the scan to stop; true when it was still running.
    pub fn cancel(&self) -> bool {
        let running = !self.status.borrow().is_terminal();
        self.cancel.cancel();
        running
    }
}

/// Progress events of one scan, written into its watch channel.
struct StatusSink(watch::Sender<ScanStatus>);

impl ProgressSink for StatusSink {
    fn on_progress(&self, e: &ProgressEvent) {
        // Terminal states are set with the report (below), so every watcher's last value carries it.
        if !e.stage.is_terminal() {
            self.0.send_modify(|s| s.apply(e));
        }
    }
}

/// The registry of scans: at most `max_running` run at once, at most `max_queued` wait for a turn.
#[derive(Debug)]
pub struct Scans {
    entries: Mutex<VecDeque<Arc<ScanEntry>>>,
    /// Cancelled on shutdown: every scan's token is a child of it.
    root: CancellationToken,
    running: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_queued: usize,
    /// The stage durations of the last complete scan: they divide the next scans' progress bars.
    last_timing: Mutex<Option<technic_core::StageTimings>>,
}

impl Default for Scans {
    fn default() -> Self {
        Self::new(4, 100)
    }
}

/// The queue of scans waiting for a turn is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull {
    /// Scans running.
    pub running: usize,
    /// Scans waiting.
    pub waiting: usize,
}

/// Counts a scan as waiting until it starts or ends, however its task ends.
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Scans {
    /// A registry running at most `max_running` scans at once with at most `max_queued` waiting.
    pub fn new(max_running: usize, max_queued: usize) -> Self {
        Self {
            entries: Mutex::default(),
            root: CancellationToken::new(),
            running: Arc::new(Semaphore::new(max_running.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_queued,
            last_timing: Mutex::new(None),
        }
    }

    /// Starts `req` in a new task (it waits for a turn when `max_running` scans run) and returns its
    /// entry; [`QueueFull`] when `max_queued` scans already wait.
    pub fn start(self: &Arc<Self>, mut req: ScanRequest, deps: Deps) -> Result<Arc<ScanEntry>, QueueFull> {
        let waiting_before = self.waiting.fetch_add(1, Ordering::SeqCst);
        let waiting = Waiting(self.waiting.clone());
        // Scans not yet started that a free slot will take at once are not queued.
        let ahead = waiting_before.saturating_sub(self.running.available_permits());
        if ahead >= self.max_queued {
            return Err(QueueFull {
                running: self.running(),
                waiting: ahead,
            });
        }
        let id = technic_core::scan::new_scan_id();
        let last = self.last_timing.lock().ok().and_then(|t| *t);
        let deps = match last {
            Some(t) => deps.with_measured_stages(&t),
            None => deps,
        };
        req.id = Some(id.clone());
        let (tx, _) = watch::channel(ScanStatus::queued(&id, Utc::now()));
        let entry = Arc::new(ScanEntry {
            id,
            cancel: self.root.child_token(),
            status: tx,
            report: Mutex::new(None),
        });
        self.remember(entry.clone());
        let task_entry = entry.clone();
        let registry = self.clone();
        let running = self.running.clone();
        if running.available_permits() == 0 {
            entry
                .status
                .send_modify(|s| s.message = format!("Queued: {} scans ahead", ahead + 1));
        }
        tokio::spawn(async move {
            let e = task_entry;
            // Wait for a turn; a scan cancelled while queued ends as cancelled without running.
            let permit = tokio::select! {
                biased;
                () = e.cancel.cancelled() => None,
                p = running.acquire_owned() => p.ok(),
            };
            drop(waiting);
            let sink = StatusSink(e.status.clone());
            let result = scan(&req, &deps, &sink, e.cancel.clone()).await;
            drop(permit);
            let finished_at = Some(Utc::now());
            match result {
                Ok(report) => {
                    let report = Arc::new(report);
                    if let Ok(mut slot) = e.report.lock() {
                        *slot = Some(report.clone());
                    }
                    e.status.send_modify(|s| s.finish(&report, finished_at));
                    if report.state == technic_core::ScanState::Complete
                        && let Ok(mut t) = registry.last_timing.lock()
                    {
                        *t = Some(report.timing);
                    }
                    // With a store the results are kept there: only the latest reports stay in memory.
                    if deps.store.is_some() {
                        registry.forget_old_reports(KEEP_REPORTS);
                    }
                }
                Err(err) => e.status.send_modify(|s| {
                    s.state = "failed".to_owned();
                    s.stage = "failed".to_owned();
                    s.stage_label = "Failed".to_owned();
                    s.message = format!("Scan failed: {}", err.user_message());
                    s.finished_at = finished_at;
                    s.error = Some(error_body(&err));
                }),
            }
        });
        Ok(entry)
    }

    /// Drops the in-memory reports of all but the `keep` most recent finished scans (they are served
    /// from the store), so a server's memory does not grow with every scan's full result set.
    fn forget_old_reports(&self, keep: usize) {
        let Ok(entries) = self.entries.lock() else {
            return;
        };
        let finished = entries.iter().rev().filter(|e| e.status.borrow().is_terminal());
        for e in finished.skip(keep) {
            if let Ok(mut slot) = e.report.lock() {
                *slot = None;
            }
        }
    }

    fn remember(&self, entry: Arc<ScanEntry>) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        entries.push_back(entry);
        while entries.len() > KEEP {
            // Drop the oldest finished scan; running ones are kept however many there are.
            match entries.iter().position(|e| e.status.borrow().is_terminal()) {
                Some(i) => {
                    entries.remove(i);
                }
                None => break,
            }
        }
    }

    /// A scan by id.
    pub fn get(&self, id: &str) -> Option<Arc<ScanEntry>> {
        self.entries.lock().ok()?.iter().find(|e| e.id == id).cloned()
    }

    /// Statuses of the most recent scans, newest first.
    pub fn recent(&self, limit: usize) -> Vec<ScanStatus> {
        let Ok(entries) = self.entries.lock() else {
            return Vec::new();
        };
        entries.iter().rev().take(limit).map(|e| e.status()).collect()
    }

    /// Scans still running.
    pub fn running(&self) -> usize {
        self.entries
            .lock()
            .map(|e| e.iter().filter(|e| !e.status.borrow().is_terminal()).count())
            .unwrap_or(0)
    }

    /// Cancels every running scan (server shutdown).
    pub fn cancel_all(&self) {
        self.root.cancel();
    }
}
