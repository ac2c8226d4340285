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
//!   memory; with `--cache redis://…` the same again through a `TieredCache` (memory in front of Redis):
//!   hit rate per tier.
//! - `dashboard`: virtual users doing what the dashboard does.
//! - `soak`: a mix for a long time, sampling RSS, open files and store size every 10 s.
//! - `fleet` (needs `--cache redis://…` and `--store postgres://…`): two in-process servers sharing one
//!   Redis (a key namespace of the run's own) and one PostgreSQL (a schema of the run's own), both removed
//!   at the end; the api mix at a fixed rate round-robin over them, scans started on one and followed on
//!   the other; per-server and combined latency, provider calls per server. Exits 2 when Redis or
//!   PostgreSQL is not given or does not answer.
//!
//! Output: a table on the terminal; with `--out DIR`, `samples.csv` (every request), `resources.csv`,
//! `summary.txt` and SVG charts. `--smoke` runs every scenario for a few seconds in process and exits 1
//! on any error (never on timing); it runs `fleet` when Redis (`--cache`, else redis://127.0.0.1:6379)
//! and PostgreSQL (`--store`, else `TECHNIC_TEST_POSTGRES_URL`, else
//! postgres://postgres@127.0.0.1:5432/test) answer, prints SKIPPED otherwise, and fails when `CI` is set
//! and they do not answer.
//!
//! ```text
//! cargo run --release --example load_test -- --smoke
//! cargo run --release --example load_test -- api-rate api-max --out /tmp/load
//! cargo run --release --example load_test -- scans --target http://127.0.0.1:8003 --pid 12345
//! cargo run --release --example load_test -- fleet --cache redis://127.0.0.1:6379 \
//!     --store postgres://127.0.0.1:5432/test
//! ```

#[path = "load_test/engine.rs"]
mod engine;
#[path = "load_test/fleet.rs"]
mod fleet;
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
    /// Two servers sharing Redis (--cache) and PostgreSQL (--store), round-robin.
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

    /// Accept a --target, --cache or --store that is not a loopback address (only for servers you may
    /// load).
    #[arg(long)]
    allow_remote: bool,

    /// Process id of the --target server, to sample its RSS and open files.
    #[arg(long, value_name = "PID")]
    pid: Option<u32>,

    /// With --target: the server's store file, to sample its size. For fleet: the PostgreSQL server,
    /// postgres://127.0.0.1:5432/DB (loopback only unless --allow-remote; a schema of the run's own is
    /// created and dropped).
    #[arg(long, value_name = "FILE|URL")]
    store: Option<String>,

    /// Redis for fleet and cache-stress: redis://127.0.0.1:6379[/DB] (loopback only unless
    /// --allow-remote; keys go in a namespace of the run's own, deleted at the end).
    #[arg(long, value_name = "URL")]
    cache: Option<String>,

    /// Write samples.csv, resources.csv, summary.txt and SVG charts into DIR (created if missing).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// Every scenario for a few seconds in process (fleet when Redis and PostgreSQL answer, or CI is
    /// set); exit 1 on any error.
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

/// Redis and PostgreSQL of the fleet scenario.
struct Services {
    redis: String,
    postgres: String,
}

fn run(args: &Args) -> anyhow::Result<ExitCode> {
    // --store: a PostgreSQL URL (fleet) or the --target server's store file.
    let pg_store = args
        .store
        .as_deref()
        .map(str::trim)
        .filter(|s| fleet::is_postgres_url(s))
        .map(str::to_owned);
    let store_file = args
        .store
        .as_deref()
        .filter(|s| !fleet::is_postgres_url(s))
        .map(PathBuf::from);
    let redis = match args.cache.as_deref().map(str::trim) {
        None | Some("" | "memory") => None,
        Some(url) if fleet::is_redis_url(url) => Some(url.to_owned()),
        Some(other) => {
            return Ok(usage(&format!(
                "--cache {}: use memory (the default) or redis://HOST:PORT[/DB]",
                fleet::redact(other)
            )));
        }
    };
    if let Some(url) = &redis
        && let Err(e) = fleet::check_local("--cache", url, args.allow_remote)
    {
        return Ok(usage(&e));
    }
    if let Some(url) = &pg_store
        && let Err(e) = fleet::check_local("--store", url, args.allow_remote)
    {
        return Ok(usage(&e));
    }
    let mut list: Vec<Scenario> = Vec::new();
    let asked = if args.scenarios.is_empty() && args.smoke {
        vec![Scenario::All, Scenario::Soak, Scenario::Fleet]
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
            "name one or more scenarios (api-rate, api-max, scans, cache-stress, dashboard, soak, fleet, all) or \
             pass --smoke; see --help",
        ));
    }
    if args.smoke && args.target.is_some() {
        return Ok(usage("--smoke runs against an in-process server; drop --target"));
    }
    if args.target.is_some() && list.contains(&Scenario::Fleet) {
        return Ok(usage(
            "fleet starts its own two servers in this process; drop --target",
        ));
    }
    if args.target.is_none() && (args.pid.is_some() || store_file.is_some()) {
        return Ok(usage(
            "--pid and --store FILE describe a --target server; the in-process server is measured without them \
             (--store takes a postgres:// URL for the fleet scenario)",
        ));
    }
    if args.target.is_none() && args.allow_remote && redis.is_none() && pg_store.is_none() {
        return Ok(usage(
            "--allow-remote only applies to --target, --cache and --store",
        ));
    }
    if let Some(pid) = args.pid
        && !std::path::Path::new(&format!("/proc/{pid}/status")).exists()
    {
        return Ok(usage(&format!("--pid {pid}: no such process on this machine")));
    }
    if pg_store.is_some() && !list.contains(&Scenario::Fleet) {
        println!("note: --store postgres://… is used by the fleet scenario only");
    }
    if redis.is_some() && !list.contains(&Scenario::Fleet) && !list.contains(&Scenario::CacheStress) {
        println!("note: --cache redis://… is used by the fleet and cache-stress scenarios only");
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
    let mut failures: Vec<String> = Vec::new();
    // The fleet's services: given (a run that names fleet), or the defaults (a smoke run). Both must
    // answer; a smoke run skips the scenario otherwise (fails it when CI is set).
    let mut services = None;
    if list.contains(&Scenario::Fleet) {
        let smoke_default = args.smoke && args.scenarios.is_empty();
        let redis_url = redis
            .clone()
            .or_else(|| smoke_default.then(|| fleet::DEFAULT_REDIS.to_owned()));
        let pg_url = pg_store
            .clone()
            .or_else(|| smoke_default.then(fleet::default_postgres));
        let mut missing = Vec::new();
        if redis_url.is_none() {
            missing.push("no Redis given (pass --cache redis://127.0.0.1:6379)".to_owned());
        }
        if pg_url.is_none() {
            missing.push("no PostgreSQL given (pass --store postgres://127.0.0.1:5432/DB)".to_owned());
        }
        if missing.is_empty()
            && let (Some(r), Some(p)) = (&redis_url, &pg_url)
        {
            let (r_ok, p_ok) =
                client_rt.block_on(async { tokio::join!(fleet::probe_redis(r), fleet::probe_postgres(p)) });
            if let Err(e) = r_ok {
                missing.push(format!("Redis does not answer: {e}"));
            }
            if let Err(e) = p_ok {
                missing.push(format!("PostgreSQL does not answer: {e}"));
            }
        }
        match (missing.is_empty(), redis_url, pg_url) {
            (true, Some(redis), Some(postgres)) => services = Some(Services { redis, postgres }),
            _ => {
                let why = missing.join("; ");
                if !smoke_default {
                    return Ok(usage(&format!(
                        "the fleet scenario needs Redis and PostgreSQL: {why}"
                    )));
                }
                list.retain(|s| *s != Scenario::Fleet);
                if std::env::var_os("CI").is_some() {
                    failures.push(format!("fleet: CI is set but {why}"));
                } else {
                    println!("SKIPPED fleet scenario: {why} (set CI to make this a failure)");
                }
            }
        }
    }
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
            client_rt.block_on(scenarios::cache_stress(&settings, csv.clone(), redis.as_deref()))
        } else if scenario == Scenario::Fleet {
            match &services {
                Some(sv) => run_fleet(
                    &client_rt,
                    &settings,
                    sv,
                    symbols,
                    server_threads,
                    args.server_blocking_threads as usize,
                    csv.clone(),
                ),
                None => Err(anyhow::anyhow!("Redis and PostgreSQL were not checked")),
            }
        } else {
            let (server, env) = match &target {
                Some(t) => (
                    None,
                    Env {
                        target: t.clone(),
                        proc_: args.pid.map_or(Proc::Unknown, Proc::Pid),
                        store: store_file.clone(),
                        in_process: false,
                        csv: csv.clone(),
                    },
                ),
                None => {
                    let server = server::InProcess::start(
                        symbols,
                        server_threads,
                        args.server_blocking_threads as usize,
                        server::Backend::Sqlite,
                    )?;
                    let env = Env {
                        target: Arc::new(server.target.clone()),
                        proc_: Proc::This,
                        store: server.store.clone(),
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

/// The fleet scenario: a namespace and a schema of this run's own, two servers over them, the load, then
/// both removed (also when the run failed).
fn run_fleet(
    client_rt: &tokio::runtime::Runtime,
    settings: &Settings,
    services: &Services,
    symbols: usize,
    threads: usize,
    blocking: usize,
    csv: Option<record::SampleCsv>,
) -> anyhow::Result<Report> {
    let shared = client_rt
        .block_on(fleet::Shared::create(&services.redis, &services.postgres))
        .map_err(anyhow::Error::msg)?;
    let result = (|| -> anyhow::Result<Report> {
        let backend = server::Backend::Fleet {
            redis: &services.redis,
            namespace: &shared.ns.namespace,
            postgres: &shared.store_url,
        };
        let a = server::InProcess::start(symbols, threads, blocking, backend)
            .map_err(|e| anyhow::anyhow!("server A: {e:#}"))?;
        let b = match server::InProcess::start(symbols, threads, blocking, backend) {
            Ok(b) => b,
            Err(e) => {
                let _ = a.stop();
                anyhow::bail!("server B: {e:#}");
            }
        };
        let member = |name: &'static str, s: &server::InProcess| fleet::Member {
            name,
            target: Arc::new(s.target.clone()),
            provider_calls: s.provider_calls.clone(),
        };
        let members = [member("A", &a), member("B", &b)];
        let env = Env {
            target: members[0].target.clone(),
            proc_: Proc::This,
            store: None,
            in_process: true,
            csv,
        };
        let report = client_rt.block_on(fleet::fleet(members, &env, settings, &shared, symbols));
        let stopped = [("A", a.stop()), ("B", b.stop())];
        let mut report = report?;
        for (name, r) in stopped {
            if let Err(e) = r {
                report.failures.push(format!("server {name}: {e:#}"));
            }
        }
        Ok(report)
    })();
    let removed = client_rt.block_on(shared.remove());
    match (result, removed) {
        (Ok(mut report), Ok(done)) => {
            report.fact("clean-up", done);
            Ok(report)
        }
        (Ok(mut report), Err(e)) => {
            report.failures.push(format!("clean-up: {e}"));
            Ok(report)
        }
        (Err(e), Ok(_)) => Err(e),
        (Err(e), Err(c)) => Err(e.context(format!("and the clean-up failed: {c}"))),
    }
}

fn write_files(dir: &std::path::Path, report: &Report) -> anyhow::Result<()> {
    output::write_resources(dir, report)?;
    output::write_charts(dir, report)?;
    Ok(())
}
