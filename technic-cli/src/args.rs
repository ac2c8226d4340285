//! Command-line arguments (clap derive). Parsing only: values are turned into core types in `wire.rs`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Technic: a fast, dependable stock-market scanner.
#[derive(Debug, Parser)]
#[command(name = "technic", version, about, long_about = None)]
pub struct Cli {
    /// More detail: -v shows technical detail and info logs, -vv debug logs.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

/// Technic's HTTP server: JSON API, live scan progress, metrics and the web dashboard (the same server and
/// flags as `technic serve`).
#[derive(Debug, Parser)]
#[command(name = "technic-http", version, long_about = None)]
pub struct ServerCli {
    /// More detail: -v shows info logs, -vv debug logs.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan a universe of stocks and print the best setups.
    Scan(ScanArgs),
    /// Serve the JSON API and the web dashboard.
    Serve(ServeArgs),
    /// Summarise performance samples and alerts kept in the store.
    Report(ReportArgs),
    /// Fetch the most popular symbols into the store now, so the next scan reads them locally.
    Warm(WarmArgs),
    /// List the preset screens: name, then description and expression.
    Presets,
    /// Save, list and delete named screens (kept in the store).
    #[command(subcommand)]
    Screen(ScreenCommand),
    /// Explain a symbol's rating part by part, with its trade plan.
    Explain(ExplainArgs),
    /// What a screen picked every session of a period, and what happened next.
    Backtest(BacktestArgs),
    /// The built-in demo data: `technic demo export DIR` writes it as CSV files.
    #[command(subcommand)]
    Demo(DemoCommand),
}

/// `technic demo …`.
#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Write the demo universe as one SYMBOL.csv per symbol plus universe.csv, for `--provider csv:DIR`.
    Export(DemoExportArgs),
}

/// `technic demo export` arguments.
#[derive(Debug, Args)]
pub struct DemoExportArgs {
    /// The folder to write (created if missing).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Symbols in the demo universe (1 to 100000), as for `--provider synthetic`.
    #[arg(long, default_value_t = 500, value_name = "N", value_parser = demo_symbols)]
    pub demo_symbols: usize,

    /// Replace files already in DIR (by default a file that would be overwritten stops the export,
    /// exit code 3, before anything is written).
    #[arg(long)]
    pub force: bool,
}

/// `technic backtest` arguments.
#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// Where the data comes from.
    #[command(flatten)]
    pub source: SourceArgs,

    /// The screen: an expression (see `technic scan --where`).
    #[arg(long = "where", value_name = "EXPR")]
    pub where_: Option<String>,

    /// A preset screen (`technic presets`).
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,

    /// A saved screen (`technic screen list`).
    #[arg(long, value_name = "NAME")]
    pub screen: Option<String>,

    /// Order of the picks, FIELD[:asc|desc] (with --top: which picks are kept; default by rating).
    #[arg(long, value_name = "FIELD[:asc|desc]")]
    pub sort: Option<String>,

    /// Keep the best K picks a session (0 keeps all).
    #[arg(long, default_value_t = 0, value_name = "K")]
    pub top: usize,

    /// Sessions ahead to measure; a list (1,5,10,21) gives one column per horizon.
    #[arg(long, value_delimiter = ',', default_value = "21", value_name = "N[,N…]")]
    pub horizon: Vec<usize>,

    /// First session [default: the first with a year of history before it].
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub from: Option<chrono::NaiveDate>,

    /// Last session [default: the last with the longest horizon of data after it].
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub to: Option<chrono::NaiveDate>,

    /// Backtest only these symbols (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "A,B,C")]
    pub symbols: Vec<String>,

    /// Backtest at most this many symbols.
    #[arg(long, value_name = "N")]
    pub max_symbols: Option<usize>,

    /// Benchmark of `rs_*` [default: the equal-weight index of the symbols].
    #[arg(long, value_name = "SYMBOL")]
    pub benchmark: Option<String>,

    /// Print the whole report as JSON.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,

    /// Print one row a session as CSV.
    #[arg(long)]
    pub csv: bool,

    /// Write the equity curve (first horizon) as an SVG chart to this file.
    #[arg(long, value_name = "FILE.svg")]
    pub chart: Option<PathBuf>,

    /// No progress output.
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub store: StoreArgs,

    /// Run without a store.
    #[arg(long, conflicts_with = "store")]
    pub no_store: bool,
}

/// `technic screen …`.
#[derive(Debug, Subcommand)]
pub enum ScreenCommand {
    /// Save (or replace) a screen: `technic screen save dips --where "rsi_14 < 30" --sort rsi_14:asc`.
    Save {
        /// Its name: letters, digits, '-' or '_'.
        name: String,
        /// The filter expression.
        #[arg(long = "where", value_name = "EXPR")]
        where_: Option<String>,
        /// Start from a preset (combined with --where by `and`).
        #[arg(long, value_name = "NAME")]
        preset: Option<String>,
        /// Order of results: FIELD[:asc|desc].
        #[arg(long, value_name = "FIELD[:asc|desc]")]
        sort: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the saved screens.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Delete a saved screen.
    Rm {
        /// Its name.
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// How trade plans are sized: shared by `scan` and `explain`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Account value the plans' sizes are computed for.
    #[arg(long, default_value_t = 100_000.0, value_name = "AMOUNT")]
    pub account: f64,

    /// Risk per trade, in percent of the account.
    #[arg(long, default_value_t = 1.0, value_name = "PCT")]
    pub risk_pct: f64,

    /// Target distance ÷ stop distance.
    #[arg(long, default_value_t = 2.0, value_name = "R")]
    pub reward_risk: f64,

    /// Plan short trades for Avoid results (by default they get no plan).
    #[arg(long)]
    pub allow_shorts: bool,

    /// Benchmark for relative strength (`rs_*`) and the market regime [default: SPY for polygon when it
    /// lists it; otherwise the equal-weight index of the scanned symbols].
    #[arg(long, value_name = "SYMBOL")]
    pub benchmark: Option<String>,
}

/// `technic explain` arguments.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The symbol.
    pub symbol: String,

    /// Where the data comes from.
    #[command(flatten)]
    pub source: SourceArgs,

    #[command(flatten)]
    pub plan: PlanArgs,

    /// Print the explanation as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub store: StoreArgs,

    /// Run without a store.
    #[arg(long, conflicts_with = "store")]
    pub no_store: bool,
}

/// `technic warm` arguments.
#[derive(Debug, Args)]
pub struct WarmArgs {
    /// Where the data comes from.
    #[command(flatten)]
    pub source: SourceArgs,

    #[command(flatten)]
    pub store: StoreArgs,

    #[command(flatten)]
    pub cache: CacheArgs,

    /// How many of the most popular symbols to warm.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub top: usize,

    /// No progress output.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Where bars come from: shared by `scan` and `serve`.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Data source: `synthetic` (built-in demo data), `csv:DIR` (one SYMBOL.csv per symbol) or `polygon`
    /// (the Polygon HTTP API; the key is read from the POLYGON_API_KEY environment variable).
    #[arg(long, default_value = "synthetic", value_name = "synthetic|csv:DIR|polygon")]
    pub provider: String,

    /// Base URL of the Polygon-style API (for `--provider polygon`).
    #[arg(
        long,
        env = "POLYGON_BASE_URL",
        default_value = technic_core::provider::DEFAULT_BASE_URL,
        value_name = "URL"
    )]
    pub base_url: String,

    /// How fast requests go to the API (for `--provider polygon`): per second (50, 0.5), per period
    /// (5/min, 100/h), a daily quota (25/day), several joined with commas (5/min,500/day); 0 for no
    /// limit. Every request counts: follow-up pages and retries too.
    #[arg(long, default_value = "50", value_name = "RATE", value_parser = technic_core::provider::RateLimit::parse)]
    pub rate_limit: technic_core::provider::RateLimit,

    /// Symbols in the synthetic demo universe (1 to 100000).
    #[arg(long, default_value_t = 500, value_name = "N", value_parser = demo_symbols)]
    pub demo_symbols: usize,
}

/// `technic serve` arguments.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where the data comes from.
    #[command(flatten)]
    pub source: SourceArgs,

    /// Address to listen on (loopback by default: expose the server deliberately).
    #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
    pub bind: std::net::IpAddr,

    /// Port to listen on.
    #[arg(long, default_value_t = 8003)]
    pub port: u16,

    /// Token every state-changing request (starting or cancelling scans and backtests, saving screens,
    /// clearing the cache, ...) must send as `Authorization: Bearer <token>`; reads stay open. Without
    /// one, state changes are open to anyone who can reach the server and the admin routes are refused.
    /// An empty token is refused at start-up.
    #[arg(
        long,
        env = "TECHNIC_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub admin_token: Option<String>,

    /// Do not run the cache warmer (by default the most popular symbols are kept in the cache).
    #[arg(long)]
    pub no_warm: bool,

    /// Another host name the server answers for (besides `localhost`, `127.0.0.1`, `[::1]` and the bind
    /// address), e.g. the name a proxy forwards; repeatable. Requests for other names get 421.
    #[arg(long = "allowed-host", value_name = "NAME")]
    pub allowed_hosts: Vec<String>,

    /// Open connections the server holds at once; more are closed as they arrive.
    #[arg(
        long,
        env = "TECHNIC_MAX_CONNECTIONS",
        default_value_t = 1024,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    pub max_connections: u32,

    /// Open connections one client address (an IPv4 address or an IPv6 /64) may hold; more from it are
    /// closed as they arrive while other clients are still served. 0 turns the share off: do that behind
    /// a reverse proxy, where every connection comes from the proxy, and let the proxy limit clients.
    #[arg(
        long,
        env = "TECHNIC_MAX_CONNECTIONS_PER_CLIENT",
        default_value_t = 64,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(0..=1_000_000)
    )]
    pub max_connections_per_client: u32,

    /// State changes (starting scans and backtests, saving screens, cancelling) one client address may
    /// make a minute, in bursts of a quarter of that; more get 429 with Retry-After, so one client cannot
    /// fill the store or the scan queue. 0 turns the budget off (behind a reverse proxy, as above).
    #[arg(
        long,
        env = "TECHNIC_WRITES_PER_MINUTE_PER_CLIENT",
        default_value_t = technic_http::state::DEFAULT_WRITES_PER_MINUTE_PER_CLIENT,
        value_name = "N"
    )]
    pub writes_per_minute_per_client: u32,

    #[command(flatten)]
    pub store: StoreArgs,

    #[command(flatten)]
    pub keep: KeepArgs,

    #[command(flatten)]
    pub cache: CacheArgs,

    /// Run without a store (nothing is read from or written to disk).
    #[arg(long, conflicts_with = "store")]
    pub no_store: bool,
}

/// Which cache bars go through, shared by `scan`, `warm` and `serve`.
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// `memory` (the default), or `redis://HOST:PORT[/DB]`: memory in front of a Redis shared by a fleet
    /// of servers (one provider load per symbol for the fleet, a shared rate limit, one warmer).
    #[arg(long, env = "TECHNIC_CACHE", value_name = "memory|redis://HOST:PORT[/DB]")]
    pub cache: Option<String>,
}

/// Where the store is, shared by the commands that use one.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The store for bars, scans and metrics: a SQLite file, or `postgres://USER@HOST:PORT/DB` for a store
    /// shared by a fleet [default: technic/technic.db in the user's data directory, e.g. ~/.local/share].
    #[arg(long, value_name = "PATH|postgres://…", env = "TECHNIC_STORE")]
    pub store: Option<PathBuf>,
}

/// How much history the store keeps: only for the commands that save scans (`scan`, `serve`).
#[derive(Debug, Args)]
pub struct KeepArgs {
    /// Days of scan runs, metric samples and alerts the store keeps (0 keeps them forever); older ones are
    /// deleted after a scan and while a server runs. Stored bars are always kept.
    #[arg(long, default_value_t = 30, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(0..=36500))]
    pub retention_days: u32,

    /// Scan runs the store keeps at most (0 keeps every run the retention keeps): saving a scan deletes
    /// the oldest beyond it with their results, so the store's size has a bound however often scans run.
    /// A stored result takes about 415 bytes: 1000 runs of 5000 symbols are about 2.1 GB.
    #[arg(long, default_value_t = technic_core::store::DEFAULT_MAX_RUNS, value_name = "N", env = "TECHNIC_KEEP_SCANS")]
    pub keep_scans: usize,
}

/// `technic report` arguments.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// The period to summarise, ending now: e.g. 30m, 24h, 7d, 2w.
    #[arg(long, default_value = "24h", value_name = "DURATION")]
    pub since: String,

    /// Also write the summary as Markdown to this file.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
}

/// `technic scan` arguments.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Where the data comes from.
    #[command(flatten)]
    pub source: SourceArgs,

    /// Show the best N results; 0 shows all.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub top: usize,

    /// Print the full report as JSON on stdout.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,

    /// Print the ranked results as CSV on stdout.
    #[arg(long)]
    pub csv: bool,

    /// Show every column of the table, however wide (on a terminal the table otherwise keeps the columns
    /// that fit its width).
    #[arg(long, conflicts_with_all = ["json", "csv", "columns"])]
    pub wide: bool,

    /// The table's columns, shown in the order given, from: rank, symbol, sector, close, tech_rating,
    /// signal, rsi_14, adx_14, macd_hist, return_21, volume_ratio_20, change_pct, entry, stop, target,
    /// shares.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "A,B,C",
        conflicts_with_all = ["json", "csv"]
    )]
    pub columns: Vec<String>,

    /// Scan only these symbols (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "A,B,C",
        conflicts_with = "universe"
    )]
    pub symbols: Vec<String>,

    /// Scan the symbols listed in this CSV file (`symbol,name,sector,industry`).
    #[arg(long, value_name = "FILE")]
    pub universe: Option<PathBuf>,

    /// Keep only this sector (repeat or comma-separate for several).
    #[arg(long, value_delimiter = ',', value_name = "SECTOR")]
    pub sector: Vec<String>,

    /// Minimum last close.
    #[arg(long, value_name = "PRICE", allow_negative_numbers = true)]
    pub min_price: Option<f64>,

    /// Minimum average dollar volume over the last 20 bars.
    #[arg(long, value_name = "DOLLARS", allow_negative_numbers = true)]
    pub min_dollar_volume: Option<f64>,

    /// Scan at most this many symbols.
    #[arg(long, value_name = "N")]
    pub max_symbols: Option<usize>,

    /// Keep symbols for which this expression holds, e.g. "rsi_14 < 30 and close > sma_200" (see
    /// `technic presets` and the user guide's Screens section).
    #[arg(long = "where", value_name = "EXPR")]
    pub where_: Option<String>,

    /// Screen with a preset (`technic presets` lists them); combined with --where by `and`.
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,

    /// Screen with a saved screen (`technic screen list`); combined with --preset and --where.
    #[arg(long, value_name = "NAME")]
    pub screen: Option<String>,

    /// Order results by a numeric field: FIELD[:asc|desc] (default: by rating).
    #[arg(long, value_name = "FIELD[:asc|desc]")]
    pub sort: Option<String>,

    /// Scan as of this session: only bars dated on or before it are read.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub as_of: Option<chrono::NaiveDate>,

    #[command(flatten)]
    pub plan: PlanArgs,

    /// No progress output.
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub store: StoreArgs,

    #[command(flatten)]
    pub keep: KeepArgs,

    #[command(flatten)]
    pub cache: CacheArgs,

    /// Run without a store: fetch everything, keep nothing.
    #[arg(long, conflicts_with = "store")]
    pub no_store: bool,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// A table and a summary.
    Table,
    /// The whole report as JSON.
    Json,
    /// Ranked results as CSV.
    Csv,
}

impl ScanArgs {
    /// The output format chosen by the flags.
    pub fn output_format(&self) -> OutputFormat {
        if self.json {
            OutputFormat::Json
        } else if self.csv {
            OutputFormat::Csv
        } else {
            OutputFormat::Table
        }
    }
}

/// `--demo-symbols`: 1 to [`technic_core::provider::MAX_DEMO_SYMBOLS`].
fn demo_symbols(text: &str) -> Result<usize, String> {
    let max = technic_core::provider::MAX_DEMO_SYMBOLS;
    text.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| format!("`{text}` is not a number of symbols from 1 to {max}"))
}
