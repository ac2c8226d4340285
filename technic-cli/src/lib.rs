//! The `technic` command and the `technic-http` server command: parse arguments, wire the core's parts
//! together (see `wire.rs`), run the command and render the result. Every decision lives in
//! `technic-core`; serving lives in `technic-http`. The two binaries (`src/main.rs`,
//! `src/bin/technic-http.rs`) call [`main`] and [`server_main`].

mod args;
mod backtest;
mod columns;
mod demo;
mod progress;
mod render;
mod report;
mod screens;
mod warm;
mod wire;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use technic_core::{ScanState, scan};
use tokio_util::sync::CancellationToken;

use crate::args::{Cli, Command, OutputFormat};

/// Exit codes, one per kind of fault, documented in one table in the user guide.
mod exit {
    /// Done.
    pub const OK: u8 = 0;
    /// The work could not be done: the provider failed, data was unusable, an internal error.
    pub const FAILED: u8 = 1;
    /// A bad argument as typed: a flag, a value, an expression, a symbol's spelling.
    pub const USAGE: u8 = 2;
    /// Bad configuration or input files: environment, the store, a universe file, dates outside the data.
    pub const CONFIG: u8 = 3;
    /// What was asked for does not exist: a symbol, a saved screen.
    pub const NOT_FOUND: u8 = 4;
    /// Cancelled with Ctrl-C.
    pub const CANCELLED: u8 = 130;
}

/// Set by `--quiet`: stderr keeps to the summary and errors, without one-time notices.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the command runs with `--quiet`.
pub(crate) fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// The `technic` command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = match &cli.command {
        Command::Scan(a) => a.quiet,
        Command::Warm(a) => a.quiet,
        Command::Backtest(a) => a.quiet,
        _ => false,
    };
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
    init_tracing(cli.verbose, quiet);
    on_runtime(run(cli))
}

/// The `technic-http` command: `technic serve` under its own name, with the same flags.
pub fn server_main() -> ExitCode {
    let cli = args::ServerCli::parse();
    init_tracing(cli.verbose, false);
    on_runtime(async move {
        let result = run_serve(cli.serve).await;
        finish(result, cli.verbose)
    })
}

/// Runs `work` on the runtime both commands use: one worker per core and at most 4 blocking threads
/// (scans score on the blocking pool).
fn on_runtime(work: impl std::future::Future<Output = u8>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(4)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILED);
        }
    };
    ExitCode::from(runtime.block_on(work))
}

async fn run(cli: Cli) -> u8 {
    let verbose = cli.verbose;
    // The serving command has its own graceful shutdown; every other command listens for Ctrl-C from
    // here on, before any wiring, so an interrupt in the first milliseconds is never lost.
    if !matches!(cli.command, Command::Serve(_)) {
        listen_for_ctrl_c();
    }
    let result = match cli.command {
        Command::Scan(args) => run_scan(args).await,
        Command::Serve(args) => run_serve(args).await,
        Command::Report(args) => report::run(&args).await,
        Command::Warm(args) => warm::run(&args).await,
        Command::Presets => screens::presets(),
        Command::Screen(cmd) => screens::screen(cmd).await,
        Command::Explain(args) => screens::explain(&args).await,
        Command::Backtest(args) => backtest::run(&args).await,
        Command::Demo(args::DemoCommand::Export(args)) => demo::export(&args).await,
    };
    finish(result, verbose)
}

/// The exit code of a command's result, after printing its error.
fn finish(result: anyhow::Result<u8>, verbose: u8) -> u8 {
    match result {
        Ok(code) => code,
        // A reader that stopped reading (`technic scan --csv | head -1`) is a normal end, not a fault.
        Err(e) if closed_pipe(&e) => exit::OK,
        Err(e) => {
            let core: Vec<&technic_core::Error> = e.chain().filter_map(|c| c.downcast_ref()).collect();
            let fix_config = core
                .iter()
                .any(|c| c.actions().contains(&technic_core::Action::FixConfig));
            let not_found = core
                .iter()
                .any(|c| matches!(c, technic_core::Error::NotFound { .. }));
            let code = if e.downcast_ref::<wire::UsageError>().is_some() {
                exit::USAGE
            } else if e.downcast_ref::<wire::ConfigError>().is_some() || fix_config {
                exit::CONFIG
            } else if not_found {
                exit::NOT_FOUND
            } else {
                exit::FAILED
            };
            render::error(&e, verbose);
            code
        }
    }
}

/// Whether `e` is a write to a pipe whose reader has gone.
fn closed_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        || e.chain()
            .filter_map(|c| c.downcast_ref::<serde_json::Error>())
            .any(|j| j.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
}

/// Standard output with a large buffer: a 5,000-row JSON or CSV report is a few hundred writes, not
/// hundreds of thousands.
pub(crate) fn stdout() -> std::io::BufWriter<std::io::StdoutLock<'static>> {
    buffered(std::io::stdout().lock())
}

/// `out` behind the 64 KiB buffer reports are written through.
fn buffered<W: Write>(out: W) -> std::io::BufWriter<W> {
    std::io::BufWriter::with_capacity(1 << 16, out)
}

/// The process's Ctrl-C token, cancelled by the first interrupt.
static CTRL_C: std::sync::OnceLock<CancellationToken> = std::sync::OnceLock::new();

/// Starts listening for Ctrl-C. On Unix the handler is registered before this returns (a signal that
/// arrives before the listening task first runs is kept, not lost); elsewhere when the task starts.
fn listen_for_ctrl_c() {
    let cancel = CTRL_C.get_or_init(CancellationToken::new).clone();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::interrupt()) {
            Ok(mut interrupt) => {
                tokio::spawn(async move {
                    if interrupt.recv().await.is_some() {
                        cancel.cancel();
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for Ctrl-C"),
        }
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel();
        }
    });
}

/// A token cancelled by the first Ctrl-C (since the command started), so a running scan stops cleanly
/// with a partial summary.
pub(crate) fn cancel_on_ctrl_c() -> CancellationToken {
    if CTRL_C.get().is_none() {
        listen_for_ctrl_c();
    }
    CTRL_C.get_or_init(CancellationToken::new).clone()
}

async fn run_scan(args: args::ScanArgs) -> anyhow::Result<u8> {
    let layout = columns::Layout::for_stdout(if args.wide {
        Some(columns::Column::ALL.to_vec())
    } else if args.columns.is_empty() {
        None
    } else {
        Some(columns::parse_list(&args.columns).map_err(wire::usage_error)?)
    });
    let wired = wire::scan(&args).await?;
    let cancel = cancel_on_ctrl_c();
    let sink = progress::TerminalSink::new(args.quiet);
    // Long scans (a cold fetch from a remote provider) are sampled on the monitor's interval too.
    let stop_monitor = CancellationToken::new();
    let store_dyn = wired.store.clone();
    let monitor_task = tokio::spawn(wired.monitor.clone().run(store_dyn, stop_monitor.clone()));
    let report = scan(&wired.request, &wired.deps, &sink, cancel).await;
    sink.finish();
    stop_monitor.cancel();
    let _ = monitor_task.await;
    // One performance sample per scan, so `technic report` has figures for command-line use too.
    let store = wired.store.as_deref();
    if let Err(e) = wired.monitor.sample_and_record(store).await {
        tracing::warn!(error = %e, "could not record the performance sample");
    }
    if let (Some(store), Some(keep)) = (store, wire::retention(&args.keep)) {
        let before =
            wired.deps.market.now() - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
        if let Err(e) = store.prune(before).await {
            tracing::warn!(error = %e, "could not prune the store's history");
        }
    }
    let report = report.map_err(|e| anyhow::Error::new(e).context("the scan could not run"))?;

    let mut out = stdout();
    match args.output_format() {
        OutputFormat::Json => render::json(&mut out, &report)?,
        OutputFormat::Csv => render::csv(&mut out, &report)?,
        OutputFormat::Table => render::table(&mut out, &report, &layout)?,
    }
    out.flush()?;
    if args.output_format() != OutputFormat::Table {
        render::summary(&mut std::io::stderr().lock(), &report)?;
    }
    Ok(match report.state {
        ScanState::Complete => exit::OK,
        ScanState::Cancelled => exit::CANCELLED,
        ScanState::Failed => exit::FAILED,
    })
}

async fn run_serve(args: args::ServeArgs) -> anyhow::Result<u8> {
    let (state, addr) = wire::serve(&args).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::Error::new(wire::ConfigError(format!("cannot listen on {addr}: {e}"))))?;
    eprintln!(
        "Technic dashboard: http://{}/  (Ctrl-C to stop)",
        listener.local_addr()?
    );
    technic_http::serve(listener, state, technic_http::shutdown_signal()).await?;
    eprintln!("Stopped.");
    Ok(exit::OK)
}

fn init_tracing(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    // Logs are for operators; a CLI user sees the summary. `-v` shows info, `-vv` debug; RUST_LOG wins.
    // Without -v, performance alerts and slow-query warnings stay out of a scan's output: they are kept
    // in the store and shown by `technic report` (a first scan on a cold store always has a low hit rate).
    // `--quiet` keeps stderr to the summary and real errors: no monitor alerts or slow-query notes.
    let default = match verbose {
        0 if quiet => "error,technic_core::monitor=off,technic_core::store::profile=off",
        0 => "warn,technic_core::monitor=error,technic_core::store::profile=error",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    /// A writer that counts the writes it is asked for, as `strace -c` counts `write()` calls.
    #[derive(Default)]
    struct Counting {
        writes: usize,
        bytes: usize,
    }

    impl Write for Counting {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.writes += 1;
            self.bytes += buf.len();
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn reports_reach_the_terminal_in_a_few_large_writes() {
        let report =
            technic_core::testing::sample_report("buffered", technic_core::testing::demo_results(1000).await);
        type Render = fn(&mut dyn Write, &technic_core::ScanReport) -> std::io::Result<()>;
        let formats: [(&str, Render); 3] = [
            ("json", |mut w, r| {
                crate::render::json(&mut w, r).map_err(std::io::Error::other)
            }),
            ("csv", |mut w, r| crate::render::csv(&mut w, r)),
            ("table", |mut w, r| {
                crate::render::table(&mut w, r, &crate::columns::Layout::default())
            }),
        ];
        for (name, render) in formats {
            let mut raw = Counting::default();
            render(&mut raw, &report).unwrap();
            let mut counted = Counting::default();
            {
                let mut out = super::buffered(&mut counted);
                render(&mut out, &report).unwrap();
                out.flush().unwrap();
            }
            assert_eq!(counted.bytes, raw.bytes, "{name}: the same output");
            assert!(
                counted.writes <= counted.bytes / (1 << 16) + 2,
                "{name}: {} writes for {} bytes (unbuffered: {})",
                counted.writes,
                counted.bytes,
                raw.writes
            );
            if name != "table" {
                // The table is built whole before it is written; JSON and CSV are written piece by piece.
                assert!(
                    raw.writes > 100 * counted.writes,
                    "{name}: {} unbuffered",
                    raw.writes
                );
            }
        }
    }
}
