//! Load test of the Technic HTTP server.
//!
//! Targets a running server (`--target http://127.0.0.1:PORT`; loopback only unless `--allow-remote`)
//! or starts one in this process on 127.0.0.1:0 (the embedded defaults, demo data, a SQLite store in a
//! temporary folder). Scenarios:
//!
//! - `api-rate`: a fixed 1,000 req/s for 60 s over a Zipf mix of cached symbol reads, result pages and
//!   health checks; latency measured from the intended send time (corrected for coordinated omission).
//! - `api-max`: closed loop over N connections: requests per second and p99, per kind.
//! - `scans`: 100 scans submitted at once: all complete? time to the last, peak RSS, health-check
//!   latency meanwhile.
//! - `cache-stress`: 10,000 distinct keys through `technic_core::MemoryCache`: hit rate, evictions,
//!   memory.
//! - `dashboard`: virtual users doing what the dashboard does.
//! - `soak`: a mix for a long time, sampling RSS, open files and store size every 10 s.
//! - `fleet`: not available yet (needs Redis and PostgreSQL support); exits 2.
//!
//! Output: a table on the terminal; with `--out DIR`, `samples.csv` (every request), `resources.csv`,
//! `summary.txt` and SVG charts. `--smoke` runs every scenario for a few seconds in process and exits 1
//! on any error (never on timing).
//!
//! ```text
//! cargo run --release --example load_test -- --smoke
//! cargo run --release --example load_test -- api-rate api-max --out /tmp/load
//! cargo run --release --example load_test -- scans --target http://127.0.0.1:8003 --pid 12345
//! ```

#[path = "load_test/engine.rs"]
mod engine;
#[path = "load_test/http.rs"]
mod http;
#[path = "load_test/output.rs"]
mod output;
#[path = "load_test/record.rs"]
mod record;
#[path = "load_test/scenarios.rs"]
mod scenarios;
#[path = "load_test/server.rs"]
mod server;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};

use crate::record::Proc;
use crate::scenarios::{Env, Report, Settings, SoakMix};

/// A scenario name on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Fixed rate (1,000 req/s, 60 s) over the api mix; p50 to max, errors.
    ApiRate,
    /// Closed loop over N connections; req/s and p99.
    ApiMax,
    /// 100 scans at once; all complete, time to last, peak RSS, health latency.
    Scans,
    /// 10,000 keys through the memory cache; hit rate, evictions, memory.
    CacheStress,
    /// Virtual dashboard users.
    Dashboard,
    /// A long mixed run sampling RSS, open files and store size.
    Soak,
    /// Needs Redis and PostgreSQL support (not available yet).
    Fleet,
    /// api-rate, api-max, scans, cache-stress and dashboard.
    All,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Self::ApiRate => "api-rate",
            Self::ApiMax => "api-max",
            Self::Scans => "scans",
            Self::CacheStress => "cache-stress",
            Self::Dashboard => "dashboard",
            Self::Soak => "soak",
            Self::Fleet => "fleet",
            Self::All => "all",
        }
    }
}

/// Load test of the Technic HTTP server (in process on 127.0.0.1:0 unless --target is given).
#[derive(Debug, Parser)]
#[command(name = "load_test")]
struct Args {
    /// Scenarios to run, in order.
    #[arg(value_enum)]
    scenarios: Vec<Scenario>,

    /// A running server, e.g. http://127.0.0.1:8003 (loopback only unless --allow-remote).
    #[arg(long, value_name = "URL")]
    target: Option<String>,

    /// Accept a --target that is not a loopback address (only for a server you may load).
    #[arg(long)]
    allow_remote: bool,

    /// Process id of the --target server, to sample its RSS and open files.
    #[arg(long, value_name = "PID")]
    pid: Option<u32>,

    /// Store file of the --target server, to sample its size.
    #[arg(long, value_name = "FILE")]
    store: Option<PathBuf>,

    /// Write samples.csv, resources.csv, summary.txt and SVG charts into DIR (created if missing).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// Every scenario but fleet for a few seconds in process; exit 1 on any error.
    #[arg(long)]
    smoke: bool,

    /// Length of each timed run: 90, 90s, 10m, 1h (default per scenario).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,

    /// Requests per second of the fixed-rate runs (api-rate: 1000, soak: 200).
    #[arg(long, value_parser = parse_rate)]
    rate: Option<f64>,

    /// Connections of the api runs (api-rate: 32, api-max: 50).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    connections: Option<u32>,

    /// Virtual dashboard users (dashboard: 8, soak: 2).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=500))]
    users: Option<u32>,

    /// Scans submitted at once in the scans scenario (100).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    scans: Option<u32>,

    /// Distinct keys of cache-stress (10000).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    keys: Option<u32>,

    /// Demo symbols of the in-process server (scans: 5000, others: 500).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    symbols: Option<u32>,

    /// What the soak sends.
    #[arg(long, value_enum, default_value = "both")]
    mix: SoakMix,

    /// Interval of resource samples (default: 10 s in the soak, finer elsewhere).
    #[arg(long, value_parser = parse_duration)]
    sample_every: Option<Duration>,

    /// Worker threads of the load generator.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    client_threads: u32,

    /// Worker threads of the in-process server (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    server_threads: Option<u32>,

    /// Most blocking threads of the in-process server (4, as `technic serve`).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=512))]
    server_blocking_threads: u32,

    /// Seed of the request mixes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// `90`, `90s`, `1.5s`, `10m`, `1h`: 0.1 s to 24 h.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => t.split_at(i),
        None => (t, "s"),
    };
    let scale = match unit.trim() {
        "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("unknown unit {other:?}: use s, m or h, e.g. 90s or 10m")),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90s or 10m"))?;
    let secs = n * scale;
    if !secs.is_finite() || !(0.1..=86_400.0).contains(&secs) {
        return Err(format!("{text:?}: give 0.1 s to 24 h"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A request rate: 1 to 1,000,000 per second.
fn parse_rate(text: &str) -> Result<f64, String> {
    let r: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of requests per second"))?;
    if !r.is_finite() || !(1.0..=1_000_000.0).contains(&r) {
        return Err(format!("{text:?}: give 1 to 1000000 requests per second"));
    }
    Ok(r)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("load_test: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// A problem with the command line: exit 2.
fn usage(msg: &str) -> ExitCode {
    eprintln!("load_test: {msg}");
    ExitCode::from(2)
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned());
    format!("{cores} cores ({model}); load average {load}")
}

fn run(args: &Args) -> anyhow::Result<ExitCode> {
    if args.scenarios.contains(&Scenario::Fleet) {
        eprintln!(
            "load_test: the fleet scenario is not available yet: needs --cache redis and --store postgres support \
             in the load test (several servers sharing one Redis and one PostgreSQL)"
        );
        return Ok(ExitCode::from(2));
    }
    let mut list: Vec<Scenario> = Vec::new();
    let asked = if args.scenarios.is_empty() && args.smoke {
        vec![Scenario::All, Scenario::Soak]
    } else {
        args.scenarios.clone()
    };
    for s in asked {
        let expanded = match s {
            Scenario::All => vec![
                Scenario::ApiRate,
                Scenario::ApiMax,
                Scenario::Scans,
                Scenario::CacheStress,
                Scenario::Dashboard,
            ],
            other => vec![other],
        };
        for e in expanded {
            if !list.contains(&e) {
                list.push(e);
            }
        }
    }
    if list.is_empty() {
        return Ok(usage(
            "name one or more scenarios (api-rate, api-max, scans, cache-stress, dashboard, soak, all) or pass --smoke; see --help",
        ));
    }
    if args.smoke && args.target.is_some() {
        return Ok(usage("--smoke runs against an in-process server; drop --target"));
    }
    if args.target.is_none() && (args.pid.is_some() || args.store.is_some()) {
        return Ok(usage(
            "--pid and --store describe a --target server; the in-process server is measured without them",
        ));
    }
    if args.target.is_none() && args.allow_remote {
        return Ok(usage("--allow-remote only applies to --target"));
    }
    if let Some(pid) = args.pid
        && !std::path::Path::new(&format!("/proc/{pid}/status")).exists()
    {
        return Ok(usage(&format!("--pid {pid}: no such process on this machine")));
    }
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create --out {}: {e}", dir.display()))?;
    }
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads as usize)
        .thread_name("load-client")
        .enable_all()
        .build()?;
    let target = match &args.target {
        Some(url) => match client_rt.block_on(http::Target::parse(url, args.allow_remote)) {
            Ok(t) => Some(Arc::new(t)),
            Err(e) => return Ok(usage(&e)),
        },
        None => None,
    };
    let csv = match &args.out {
        Some(dir) => {
            output::start_resources(dir)?;
            Some(record::sample_csv(dir)?)
        }
        None => None,
    };
    let settings = Settings {
        smoke: args.smoke,
        duration: args.duration,
        rate: args.rate,
        connections: args.connections.map(|n| n as usize),
        users: args.users.map(|n| n as usize),
        scans: args.scans.map(|n| n as usize),
        keys: args.keys.map(|n| n as usize),
        seed: args.seed,
        soak_mix: args.mix,
        sample_every: args.sample_every,
    };
    let server_threads = args
        .server_threads
        .map(|n| n as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, std::num::NonZero::get));
    let header = format!(
        "load_test: {}; machine: {}",
        if args.smoke {
            "smoke run"
        } else {
            "measurement run"
        },
        machine()
    );
    println!("{header}");
    let mut summary = vec![header];
    let mut failures: Vec<String> = Vec::new();
    let started = Instant::now();
    for scenario in list {
        let name = scenario.name();
        eprintln!("load_test: running {name} …");
        let symbols = args
            .symbols
            .map(|n| n as usize)
            .unwrap_or(match (scenario, args.smoke) {
                (Scenario::Scans, false) => 5000,
                (Scenario::Scans, true) => 200,
                (_, false) => 500,
                (_, true) => 100,
            });
        let result = if scenario == Scenario::CacheStress {
            if target.is_some() {
                println!(
                    "note: cache-stress runs in this process on technic_core::MemoryCache; --target is not used"
                );
            }
            client_rt.block_on(scenarios::cache_stress(&settings, csv.clone()))
        } else {
            let (server, env) = match &target {
                Some(t) => (
                    None,
                    Env {
                        target: t.clone(),
                        proc_: args.pid.map_or(Proc::Unknown, Proc::Pid),
                        store: args.store.clone(),
                        in_process: false,
                        csv: csv.clone(),
                    },
                ),
                None => {
                    let server = server::InProcess::start(
                        symbols,
                        server_threads,
                        args.server_blocking_threads as usize,
                    )?;
                    let env = Env {
                        target: Arc::new(server.target.clone()),
                        proc_: Proc::This,
                        store: Some(server.store.clone()),
                        in_process: true,
                        csv: csv.clone(),
                    };
                    (Some(server), env)
                }
            };
            let shown = server.as_ref().map(|s| s.symbols);
            let result = client_rt.block_on(async {
                match scenario {
                    Scenario::ApiRate => scenarios::api_rate(&env, &settings).await,
                    Scenario::ApiMax => scenarios::api_max(&env, &settings).await,
                    Scenario::Scans => scenarios::scans(&env, &settings, shown).await,
                    Scenario::Dashboard => scenarios::dashboard(&env, &settings).await,
                    Scenario::Soak => scenarios::soak(&env, &settings).await,
                    Scenario::CacheStress | Scenario::Fleet | Scenario::All => {
                        anyhow::bail!("{name} is not run here")
                    }
                }
            });
            if let Some(server) = server
                && let Err(e) = server.stop()
            {
                failures.push(format!("{name}: {e:#}"));
            }
            result.map(|mut r| {
                if let Some(n) = shown {
                    r.setup = format!("{} [in-process server, {n} demo symbols, SQLite store]", r.setup);
                } else {
                    r.setup = format!("{} [target {}]", r.setup, env.target.base);
                }
                r
            })
        };
        match result {
            Ok(report) => {
                let text = output::render(&report);
                println!("{text}");
                summary.push(text);
                failures.extend(report.failures.iter().map(|f| format!("{name}: {f}")));
                if let Some(dir) = &args.out {
                    write_files(dir, &report)?;
                }
            }
            Err(e) => {
                let msg = format!("{name}: could not run: {e:#}");
                println!("== {msg}\n");
                summary.push(format!("== {msg}\n"));
                failures.push(msg);
            }
        }
    }
    if let Some(dir) = &args.out {
        std::fs::write(dir.join("summary.txt"), summary.join("\n"))?;
        if let Some(csv) = &csv {
            csv.lock()
                .map_err(|_| anyhow::anyhow!("samples.csv writer poisoned"))?
                .flush()?;
        }
        println!("files written to {}", dir.display());
    }
    client_rt.shutdown_timeout(Duration::from_secs(5));
    let took = started.elapsed().as_secs_f64();
    if failures.is_empty() {
        println!("load_test: done in {took:.0} s, no errors");
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "load_test: done in {took:.0} s with {} problem(s):",
            failures.len()
        );
        for f in &failures {
            println!("  - {f}");
        }
        Ok(ExitCode::from(1))
    }
}

fn write_files(dir: &std::path::Path, report: &Report) -> anyhow::Result<()> {
    output::write_resources(dir, report)?;
    output::write_charts(dir, report)?;
    Ok(())
}
