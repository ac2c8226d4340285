//! Scan progress on the terminal: an indicatif bar when stderr is a terminal, plain lines otherwise.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use technic_core::{ProgressEvent, ProgressSink, Stage};

/// Shows progress events on stderr.
pub enum TerminalSink {
    /// Nothing shown.
    Quiet,
    /// A live bar (overall percent) with stage, processed/total and ETA.
    Bar(ProgressBar),
    /// One line per stage and per quarter of a stage.
    Lines(Mutex<LineState>),
}

/// What the plain-line sink printed last.
#[derive(Default)]
pub struct LineState {
    stage: Option<Stage>,
    quarter: i64,
}

impl TerminalSink {
    /// A bar on a terminal, lines elsewhere, nothing when `quiet`.
    pub fn new(quiet: bool) -> Self {
        if quiet {
            return Self::Quiet;
        }
        if !std::io::stderr().is_terminal() {
            return Self::Lines(Mutex::new(LineState::default()));
        }
        let bar = ProgressBar::with_draw_target(Some(100), ProgressDrawTarget::stderr_with_hz(15));
        let style = ProgressStyle::with_template("{prefix:>20.cyan} [{bar:32.green/dim}] {pos:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        Self::Bar(bar)
    }

    /// Clears the bar before results are printed.
    pub fn finish(&self) {
        if let Self::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

fn eta_text(eta: Option<Duration>) -> String {
    match eta {
        Some(d) if d.as_secs_f64() >= 0.5 => format!(" · ETA {:.0}s", d.as_secs_f64()),
        Some(_) => " · ETA <1s".to_owned(),
        None => String::new(),
    }
}

impl ProgressSink for TerminalSink {
    fn on_progress(&self, e: &ProgressEvent) {
        match self {
            Self::Quiet => {}
            Self::Bar(bar) => {
                bar.set_prefix(e.stage.label());
                bar.set_position(e.overall_percent.floor() as u64);
                let counts = if e.total > 0 {
                    format!("{}/{}", e.processed, e.total)
                } else {
                    String::new()
                };
                bar.set_message(format!("{counts}{}", eta_text(e.eta)));
            }
            Self::Lines(state) => {
                let Ok(mut st) = state.lock() else { return };
                let quarter = (e.stage_percent / 25.0).floor() as i64;
                if st.stage == Some(e.stage) && quarter <= st.quarter && !e.stage.is_terminal() {
                    return;
                }
                st.stage = Some(e.stage);
                st.quarter = quarter;
                let mut err = std::io::stderr().lock();
                let _ = writeln!(
                    err,
                    "[{:>3.0}%] {} {}/{}{} — {}",
                    e.overall_percent,
                    e.stage.label(),
                    e.processed,
                    e.total,
                    eta_text(e.eta),
                    e.message
                );
            }
        }
    }
}
