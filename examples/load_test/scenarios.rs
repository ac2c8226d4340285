//! The scenarios. Each returns a [`Report`]: runs (latency per request kind), facts, goals and resource
//! samples; `failures` are what makes `--smoke` fail (request errors and broken checks, never timings).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hyper::Method;
use serde_json::Value;
use technic_core::{BarsKey, Cache, DataProvider, Market, MemoryCache, MemoryCacheConfig};
use technic_core::{SyntheticConfig, SyntheticProvider};
use tokio_util::sync::CancellationToken;

use crate::engine::{API_MIX, Load, Mix, PAGE_ROWS, Prepared, ZIPF_S, closed_loop, fixed_rate};
use crate::http::{Client, Target, path_segment};
use crate::record::{
    Class, Proc, Recorder, ResSample, Rng, RunSummary, Sample, SampleCsv, Sampler, Zipf, reset_peak_rss,
    sample_now,
};

/// Settings from the command line; `None` takes the scenario's default (smaller under `--smoke`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub smoke: bool,
    pub duration: Option<Duration>,
    pub rate: Option<f64>,
    pub connections: Option<usize>,
    pub users: Option<usize>,
    pub scans: Option<usize>,
    pub keys: Option<usize>,
    pub seed: u64,
    pub soak_mix: SoakMix,
    pub sample_every: Option<Duration>,
}

impl Settings {
    fn duration(&self, normal: u64, smoke: f64) -> Duration {
        self.duration.unwrap_or(if self.smoke {
            Duration::from_secs_f64(smoke)
        } else {
            Duration::from_secs(normal)
        })
    }

    fn pick<T: Copy>(&self, given: Option<T>, normal: T, smoke: T) -> T {
        given.unwrap_or(if self.smoke { smoke } else { normal })
    }
}

/// What the soak sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SoakMix {
    /// The api-rate mix at a fixed rate.
    Api,
    /// Dashboard users only.
    Dashboard,
    /// Both at once.
    Both,
}

/// Where the load goes and what can be measured there.
#[derive(Debug, Clone)]
pub struct Env {
    pub target: Arc<Target>,
    /// Whose RSS and open files are sampled.
    pub proc_: Proc,
    /// The server's store file, when known (its size is sampled).
    pub store: Option<PathBuf>,
    /// True when the server runs in this process.
    pub in_process: bool,
    /// Where samples go (`--out`).
    pub csv: Option<SampleCsv>,
}

/// A goal of the issue and whether this run met it (`None`: not measured here).
#[derive(Debug, Clone)]
pub struct Goal {
    pub what: String,
    pub goal: String,
    pub measured: String,
    pub met: Option<bool>,
}

/// What a scenario found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub name: String,
    /// What ran, in one sentence.
    pub setup: String,
    pub runs: Vec<RunSummary>,
    pub facts: Vec<(String, String)>,
    pub goals: Vec<Goal>,
    pub resources: Vec<ResSample>,
    /// Errors and failed checks (any fails `--smoke`).
    pub failures: Vec<String>,
}

impl Report {
    pub fn fact(&mut self, name: &str, value: impl Into<String>) {
        self.facts.push((name.to_owned(), value.into()));
    }

    pub fn goal(&mut self, what: &str, goal: &str, measured: String, met: Option<bool>) {
        self.goals.push(Goal {
            what: what.to_owned(),
            goal: goal.to_owned(),
            measured,
            met,
        });
    }

    /// Adds a finished run; its errors become failures.
    pub fn run(&mut self, run: RunSummary) {
        if run.all.errors > 0 || run.error_notes > 0 {
            let n = run.all.errors.max(run.error_notes);
            let first = run.errors.first().cloned().unwrap_or_default();
            self.failures
                .push(format!("{}: {n} errors (first: {first})", run.label));
        }
        self.runs.push(run);
    }
}

pub fn ms(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0} ms")
    } else if x >= 10.0 {
        format!("{x:.1} ms")
    } else {
        format!("{x:.2} ms")
    }
}

fn mb(kb: u64) -> String {
    format!("{:.0} MB", kb as f64 / 1024.0)
}

pub fn rate_str(r: f64) -> String {
    format!("{:.0} req/s", r)
}

/// The JSON of `GET path`, which must answer 200.
pub async fn get_json(c: &mut Client, path: &str) -> anyhow::Result<Value> {
    let r = c.get(path).await.map_err(anyhow::Error::msg)?;
    if r.status != 200 {
        bail!(
            "GET {path} answered {}: {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }
    r.json().map_err(anyhow::Error::msg)
}

/// Starts a scan with `body`, waiting out 429s until `deadline`; returns its id.
async fn start_scan(c: &mut Client, body: &str, deadline: Instant) -> anyhow::Result<String> {
    loop {
        let r = c
            .call(Method::POST, "/api/v1/scans", Some(body))
            .await
            .map_err(anyhow::Error::msg)?;
        match r.status {
            202 => {
                let v = r.json().map_err(anyhow::Error::msg)?;
                return v["id"]
                    .as_str()
                    .map(str::to_owned)
                    .context("POST /api/v1/scans answered without an id");
            }
            429 if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_secs(r.retry_after.unwrap_or(1).clamp(1, 5))).await;
            }
            s => bail!(
                "POST /api/v1/scans answered {s}: {}",
                String::from_utf8_lossy(&r.body)
            ),
        }
    }
}

/// Polls a scan until it ends; returns its final status.
async fn wait_scan(c: &mut Client, id: &str, deadline: Instant) -> anyhow::Result<Value> {
    loop {
        let s = get_json(c, &format!("/api/v1/scans/{id}")).await?;
        if s["state"] != "running" {
            return Ok(s);
        }
        if Instant::now() > deadline {
            bail!("scan {id} still running at the deadline");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs one scan of everything, then reads every symbol and every result page once so they are cached:
/// what the api scenarios read.
pub async fn prepare(target: &Arc<Target>, seed: u64) -> anyhow::Result<Prepared> {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut c = Client::new(target.clone()).map_err(anyhow::Error::msg)?;
    get_json(&mut c, "/healthz")
        .await
        .with_context(|| format!("the server at {} does not answer /healthz", target.base))?;
    let id = start_scan(&mut c, r#"{"top": 0}"#, deadline).await?;
    let status = wait_scan(&mut c, &id, deadline).await?;
    if status["state"] != "complete" {
        bail!("the preparation scan ended {}: {status}", status["state"]);
    }
    let page = get_json(&mut c, &format!("/api/v1/scans/{id}/results?limit=10000")).await?;
    let total = page["total"].as_u64().unwrap_or(0) as usize;
    let mut symbols: Vec<String> = page["results"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r["symbol"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if symbols.is_empty() {
        bail!("the preparation scan returned no results");
    }
    Rng::new(seed).shuffle(&mut symbols);
    let pages: Vec<String> = (0..total)
        .step_by(PAGE_ROWS)
        .map(|o| format!("/api/v1/scans/{id}/results?limit={PAGE_ROWS}&offset={o}"))
        .collect();
    // Warm: every symbol and page once, on 8 connections.
    let paths: Vec<(&'static str, String)> = symbols
        .iter()
        .map(|s| ("symbol", format!("/api/v1/symbols/{}", path_segment(s))))
        .chain(pages.iter().map(|p| ("page", p.clone())))
        .collect();
    let rec = Recorder::new("prepare", None);
    read_all(target, &rec, paths, 8).await?;
    Ok(Prepared { symbols, pages })
}

/// GETs every path once on `connections` connections, recording each request; fails on the first
/// answer that is not 200.
pub async fn read_all(
    target: &Arc<Target>,
    rec: &Arc<Recorder>,
    paths: Vec<(&'static str, String)>,
    connections: usize,
) -> anyhow::Result<()> {
    let paths = Arc::new(paths);
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections.max(1) {
        let (paths, next, target, rec) = (paths.clone(), next.clone(), target.clone(), rec.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = Client::new(target).map_err(anyhow::Error::msg)?;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some((kind, path)) = paths.get(i) else { break };
                let sent = Instant::now();
                let r = c.get(path).await;
                if rec.outcome(kind, sent, sent, &r, path) != Class::Ok {
                    match r {
                        Ok(reply) => bail!(
                            "GET {path} answered {}: {}",
                            reply.status,
                            String::from_utf8_lossy(&reply.body)
                        ),
                        Err(e) => bail!("GET {path}: {e}"),
                    }
                }
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// The server's cache counters (`GET /api/v1/cache/stats`).
async fn cache_stats(target: &Arc<Target>) -> Option<Value> {
    let mut c = Client::new(target.clone()).ok()?;
    get_json(&mut c, "/api/v1/cache/stats").await.ok()
}

/// Hit rate of the server's cache between two readings of its stats.
fn hit_rate_between(before: Option<&Value>, after: Option<&Value>) -> Option<String> {
    let (b, a) = (before?, after?);
    let d = |k: &str| {
        a[k].as_u64()
            .unwrap_or(0)
            .saturating_sub(b[k].as_u64().unwrap_or(0))
    };
    let (hits, requests) = (d("hits"), d("requests"));
    (requests > 0).then(|| {
        format!(
            "{:.2} % ({hits} of {requests} lookups; {} entries held)",
            100.0 * hits as f64 / requests as f64,
            a["entries"]
        )
    })
}

fn sample_interval(s: &Settings, normal: Duration) -> Duration {
    s.sample_every.unwrap_or(normal)
}

/// `api-rate`: the api mix at a fixed rate (1,000 req/s for 60 s by default).
pub async fn api_rate(env: &Env, s: &Settings) -> anyhow::Result<Report> {
    let rate = s.pick(s.rate, 1000.0, 200.0);
    let duration = s.duration(60, 3.0);
    let connections = s.pick(s.connections, 32, 8);
    let p = prepare(&env.target, s.seed).await?;
    let mut report = Report {
        name: "api-rate".to_owned(),
        setup: format!(
            "fixed {rate:.0} req/s for {:.0} s over {connections} connections; Zipf (s = {ZIPF_S}) mix: 60 % \
             symbol reads ({} symbols, all cached), 30 % result pages ({} pages of {PAGE_ROWS}), 10 % /healthz; \
             latency from the intended send time",
            duration.as_secs_f64(),
            p.symbols.len(),
            p.pages.len()
        ),
        ..Report::default()
    };
    let mix = Arc::new(Mix::new(&p, &API_MIX));
    let before = cache_stats(&env.target).await;
    let sampler = Sampler::start(
        env.proc_.clone(),
        env.store.clone(),
        sample_interval(s, Duration::from_secs(1)),
    );
    let rec = Recorder::new("api-rate", env.csv.clone());
    let load = Load {
        target: &env.target,
        rec: &rec,
        mix: &mix,
        connections,
        seed: s.seed,
    };
    fixed_rate(load, rate, duration, &CancellationToken::new()).await?;
    report.resources = sampler.stop().await;
    rec.flush();
    let run = rec.finish();
    let after = cache_stats(&env.target).await;
    report.fact("offered rate", rate_str(rate));
    report.fact("achieved rate", rate_str(run.rate(&run.all)));
    report.fact(
        "service time (from the actual send) p99 / max",
        format!("{} / {}", ms(run.all.service.p99), ms(run.all.service.max)),
    );
    report.fact(
        "client send lag (sent − intended) p99 / max",
        format!("{} / {}", ms(run.all.lag.p99), ms(run.all.lag.max)),
    );
    if let Some(hr) = hit_rate_between(before.as_ref(), after.as_ref()) {
        report.fact("server cache hit rate during the run", hr);
    }
    if let Some(sym) = run.kind("symbol") {
        let p99 = sym.latency.p99;
        report.goal(
            "cached symbol reads at 1,000 req/s: p99",
            "< 2 ms",
            format!("{} at {rate:.0} req/s (p99.9 {})", ms(p99), ms(sym.latency.p999)),
            // Judged only at the goal's rate (a smoke run sends less).
            (rate >= 1000.0).then_some(p99 < 2.0),
        );
    }
    report.run(run);
    Ok(report)
}

/// `api-max`: closed loop, N connections, for cached symbol reads, result pages, /healthz and the mix.
pub async fn api_max(env: &Env, s: &Settings) -> anyhow::Result<Report> {
    let duration = s.duration(10, 1.0);
    let connections = s.pick(s.connections, 50, 8);
    let p = prepare(&env.target, s.seed).await?;
    let mut report = Report {
        name: "api-max".to_owned(),
        setup: format!(
            "closed loop, {connections} connections, {:.0} s per run: cached symbol reads (Zipf over {} \
             symbols), result pages (limit {PAGE_ROWS}, Zipf over {} pages), /healthz, and the api-rate mix",
            duration.as_secs_f64(),
            p.symbols.len(),
            p.pages.len()
        ),
        ..Report::default()
    };
    let sampler = Sampler::start(
        env.proc_.clone(),
        env.store.clone(),
        sample_interval(s, Duration::from_secs(1)),
    );
    let runs: [(&str, &[(&'static str, f64)]); 4] = [
        ("symbols", &[("symbol", 1.0)]),
        ("pages", &[("page", 1.0)]),
        ("health", &[("health", 1.0)]),
        ("mix", &API_MIX),
    ];
    for (name, weights) in runs {
        let mix = Arc::new(Mix::new(&p, weights));
        let rec = Recorder::new(&format!("api-max/{name}"), env.csv.clone());
        let load = Load {
            target: &env.target,
            rec: &rec,
            mix: &mix,
            connections,
            seed: s.seed,
        };
        closed_loop(load, duration).await?;
        rec.flush();
        let run = rec.finish();
        let r = run.rate(&run.all);
        report.fact(
            &format!("{name}: throughput, p99"),
            format!("{}, p99 {}", rate_str(r), ms(run.all.latency.p99)),
        );
        match name {
            "symbols" => report.goal(
                "cached symbol reads at max",
                "≥ 30,000 req/s",
                format!("{} (p99 {})", rate_str(r), ms(run.all.latency.p99)),
                Some(r >= 30_000.0),
            ),
            "pages" => report.goal(
                "result pages at max",
                "≥ 10,000 req/s",
                format!("{} (p99 {})", rate_str(r), ms(run.all.latency.p99)),
                Some(r >= 10_000.0),
            ),
            _ => {}
        }
        report.run(run);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    report.resources = sampler.stop().await;
    Ok(report)
}

/// One scan as the list or status shows it.
#[derive(Debug, Clone, Default)]
struct ScanSeen {
    state: String,
    finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Milliseconds per stage (universe, fetch, scoring, finalizing), once ended.
    timing: Option<[f64; 4]>,
}

fn seen(v: &Value) -> ScanSeen {
    ScanSeen {
        state: v["state"].as_str().unwrap_or("").to_owned(),
        finished_at: v["finished_at"]
            .as_str()
            .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok()),
        timing: v["timing"].is_object().then(|| {
            [
                "loading_universe_ms",
                "fetching_ms",
                "scanning_ms",
                "finalizing_ms",
            ]
            .map(|k| v["timing"][k].as_f64().unwrap_or(0.0))
        }),
    }
}

/// `scans`: 100 scans of everything (`top: 0`) submitted at once; health checks at a fixed rate meanwhile.
pub async fn scans(env: &Env, s: &Settings, symbols: Option<usize>) -> anyhow::Result<Report> {
    let n = s.pick(s.scans, 100, 100);
    let deadline_after = if s.smoke {
        Duration::from_secs(180)
    } else {
        Duration::from_secs(1800)
    };
    let mut report = Report {
        name: "scans".to_owned(),
        setup: format!(
            "{n} scans with {{\"top\": 0}} submitted at once{}; /healthz at a fixed 50 req/s meanwhile",
            symbols.map_or(String::new(), |n| format!(
                " over {n} demo symbols, with a SQLite store"
            ))
        ),
        ..Report::default()
    };
    let cache_before = cache_stats(&env.target).await;
    let peak_reset = env.in_process && reset_peak_rss();
    let sampler = Sampler::start(
        env.proc_.clone(),
        env.store.clone(),
        sample_interval(s, Duration::from_millis(250)),
    );
    // Health checks during the scans, until they end.
    let stop = CancellationToken::new();
    let health_rec = Recorder::new("scans/health", env.csv.clone());
    let prober = {
        let (target, rec, stop) = (env.target.clone(), health_rec.clone(), stop.clone());
        let p = Prepared {
            symbols: Vec::new(),
            pages: Vec::new(),
        };
        let mix = Arc::new(Mix::new(&p, &[("health", 1.0)]));
        tokio::spawn(async move {
            let load = Load {
                target: &target,
                rec: &rec,
                mix: &mix,
                connections: 4,
                seed: 7,
            };
            fixed_rate(load, 50.0, deadline_after, &stop).await
        })
    };
    let rec = Recorder::new("scans/submit", env.csv.clone());
    let submit_wall = chrono::Utc::now();
    let t0 = Instant::now();
    let mut submits = Vec::with_capacity(n);
    for _ in 0..n {
        let (target, rec) = (env.target.clone(), rec.clone());
        submits.push(tokio::spawn(async move {
            let mut c = Client::new(target).map_err(anyhow::Error::msg)?;
            let sent = Instant::now();
            let path = "/api/v1/scans";
            let r = c.call(Method::POST, path, Some(r#"{"top": 0}"#)).await;
            let class = rec.outcome("submit", sent, sent, &r, path);
            let id = match (&r, class) {
                (Ok(reply), Class::Ok) => reply
                    .json()
                    .ok()
                    .and_then(|v| v["id"].as_str().map(str::to_owned)),
                _ => None,
            };
            Ok::<_, anyhow::Error>((class, id))
        }));
    }
    let mut ids = Vec::new();
    let (mut busy, mut refused) = (0usize, 0usize);
    for t in submits {
        match t.await? {
            Ok((_, Some(id))) => ids.push(id),
            Ok((Class::Busy, None)) => busy += 1,
            _ => refused += 1,
        }
    }
    let submitted_in = t0.elapsed();
    // Poll the list (one request, like the dashboard) until every accepted scan has ended.
    let mut c = Client::new(env.target.clone()).map_err(anyhow::Error::msg)?;
    let mut state: HashMap<String, ScanSeen> = ids.iter().map(|i| (i.clone(), ScanSeen::default())).collect();
    let deadline = t0 + deadline_after;
    let done_at = loop {
        let sent = Instant::now();
        let path = "/api/v1/scans?limit=200";
        let r = c.get(path).await;
        rec.outcome("list", sent, sent, &r, path);
        if let Ok(Ok(Value::Array(list))) = r.as_ref().map(crate::http::Reply::json) {
            for v in &list {
                if let Some(entry) = v["id"].as_str().and_then(|id| state.get_mut(id)) {
                    *entry = seen(v);
                }
            }
        }
        // Scans missing from the list (more than 200 recent ones): ask each.
        let missing: Vec<String> = state
            .iter()
            .filter(|(_, s)| s.state.is_empty())
            .map(|(id, _)| id.clone())
            .collect();
        for id in missing {
            if let Ok(v) = get_json(&mut c, &format!("/api/v1/scans/{id}")).await {
                state.insert(id, seen(&v));
            }
        }
        if state
            .values()
            .all(|s| !s.state.is_empty() && s.state != "running")
        {
            break Some(Instant::now());
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    stop.cancel();
    prober.await??;
    report.resources = sampler.stop().await;
    let count = |st: &str| state.values().filter(|s| s.state == st).count();
    let (complete, cancelled, failed) = (count("complete"), count("cancelled"), count("failed"));
    let running = count("running") + count("");
    // Check one finished scan's results.
    if let Some(id) = ids.last() {
        match get_json(&mut c, &format!("/api/v1/scans/{id}/results?limit=1")).await {
            Ok(v) => report.fact("results per scan", v["total"].to_string()),
            Err(e) => report.failures.push(format!("results of scan {id}: {e}")),
        }
    }
    report.fact(
        "submitted",
        format!(
            "{n} in {:.0} ms: {} accepted, {busy} refused with 429, {refused} failed",
            submitted_in.as_secs_f64() * 1000.0,
            ids.len()
        ),
    );
    report.fact(
        "ended",
        format!("{complete} complete, {cancelled} cancelled, {failed} failed, {running} still running"),
    );
    let observed = done_at.map(|t| t.duration_since(t0));
    let server_last = state
        .values()
        .filter_map(|s| s.finished_at)
        .max()
        .filter(|_| env.target.is_loopback() && done_at.is_some())
        .map(|last| (last - submit_wall).num_milliseconds() as f64 / 1000.0);
    let time_to_last = match (server_last, observed) {
        (Some(server), Some(obs)) => format!(
            "{server:.1} s (by the server's finished_at; seen by polling every 200 ms after {:.1} s)",
            obs.as_secs_f64()
        ),
        (None, Some(obs)) => format!("{:.1} s (seen by polling every 200 ms)", obs.as_secs_f64()),
        _ => format!("not all ended within {} s", deadline_after.as_secs()),
    };
    report.fact("time to last", time_to_last);
    let timings: Vec<[f64; 4]> = state.values().filter_map(|s| s.timing).collect();
    if !timings.is_empty() {
        let mean = |i: usize| timings.iter().map(|t| t[i]).sum::<f64>() / timings.len() as f64;
        report.fact(
            "mean time per scan and stage (universe, fetch, scoring, finalizing)",
            format!(
                "{}, {}, {}, {}",
                ms(mean(0)),
                ms(mean(1)),
                ms(mean(2)),
                ms(mean(3))
            ),
        );
    }
    if let Some(hr) = hit_rate_between(cache_before.as_ref(), cache_stats(&env.target).await.as_ref()) {
        report.fact("server cache hit rate during the scans", hr);
    }
    let sampled_peak = report.resources.iter().filter_map(|r| r.rss_kb).max();
    let hwm = sample_now(&env.proc_, None, 0.0).hwm_kb;
    let peak = match (&env.proc_, hwm) {
        (Proc::This, Some(h)) if peak_reset => Some((
            h,
            "VmHWM of this process (server and load generator), reset when the scenario started",
        )),
        (Proc::This, Some(h)) => Some((h, "VmHWM of this process since it started (reset refused)")),
        (Proc::Pid(_), Some(h)) => Some((h, "VmHWM of the server process since it started")),
        _ => None,
    };
    if let Some(rss) = sampled_peak {
        report.fact("highest RSS sampled every 250 ms", mb(rss));
    }
    let all_complete = complete == n;
    report.goal(
        &format!("{n} concurrent scans all complete"),
        "all complete",
        format!("{complete} of {n} complete"),
        (n >= 100).then_some(all_complete),
    );
    match peak {
        Some((kb, how)) => {
            report.fact("peak RSS", format!("{} ({how})", mb(kb)));
            report.goal(
                "peak RSS during the scans",
                "< 300 MB",
                mb(kb),
                (n >= 100).then_some((kb as f64) < 300.0 * 1024.0),
            );
        }
        None => report.goal(
            "peak RSS during the scans",
            "< 300 MB",
            "not measured (give --pid for a --target server)".to_owned(),
            None,
        ),
    }
    if !all_complete {
        report.failures.push(format!(
            "{} of {n} scans did not complete ({busy} refused with 429, {refused} failed to submit, \
             {cancelled} cancelled, {failed} failed, {running} still running)",
            n - complete
        ));
    }
    rec.flush();
    health_rec.flush();
    let health = health_rec.finish();
    if let Some(h) = health.kind("health") {
        report.fact(
            "health-check latency during the scans",
            format!(
                "p50 {}, p99 {}, max {} ({} checks)",
                ms(h.latency.p50),
                ms(h.latency.p99),
                ms(h.latency.max),
                h.latency.count
            ),
        );
    }
    report.run(rec.finish());
    report.run(health);
    Ok(report)
}

/// `cache-stress`: distinct keys through `technic_core::MemoryCache` in process, at the default capacity
/// and at a quarter of what the keys need; with `redis` (a `redis://` URL) the same again through a
/// `TieredCache` (that memory cache in front of Redis, in a key namespace of this run's own, deleted at
/// the end), reporting the hit rate per tier.
pub async fn cache_stress(
    s: &Settings,
    csv: Option<SampleCsv>,
    redis: Option<&str>,
) -> anyhow::Result<Report> {
    let keys = s.pick(s.keys, 10_000, 1_000);
    let lookups = keys * 10;
    let provider = Arc::new(SyntheticProvider::new(SyntheticConfig {
        n_symbols: keys,
        ..SyntheticConfig::default()
    }));
    let range = provider.default_range(Market::default().expected_session());
    let universe = provider
        .universe()
        .await
        .map_err(|e| anyhow::anyhow!(e.user_message()))?;
    let mut symbols: Vec<BarsKey> = universe
        .into_iter()
        .map(|e| BarsKey::new(e.symbol, range))
        .collect();
    if symbols.len() < keys {
        bail!(
            "the demo universe has {} symbols, fewer than {keys}",
            symbols.len()
        );
    }
    Rng::new(s.seed).shuffle(&mut symbols);
    let symbols = Arc::new(symbols);
    let ns = redis.map(crate::fleet::Namespace::new);
    let mut report = Report {
        name: "cache-stress".to_owned(),
        setup: format!(
            "{keys} distinct keys (demo bars, {} to {}) through technic_core::MemoryCache in this process: each \
             key loaded once, then {lookups} lookups Zipf-distributed (s = {ZIPF_S}) over the keys, on 4 tasks \
             that yield after each lookup; at the default capacity, then at a quarter of the bytes the keys \
             need{}",
            range.from,
            range.to,
            ns.as_ref().map_or(String::new(), |ns| format!(
                "; then the same through a TieredCache (that memory cache in front of Redis {}, key namespace \
                 {}{}, a fresh key scope per pass, deleted at the end)",
                crate::fleet::redact(&ns.redis),
                technic_core::fleet::PREFIX,
                ns.namespace
            ))
        ),
        ..Report::default()
    };
    let sampler = Sampler::start(Proc::This, None, sample_interval(s, Duration::from_millis(250)));
    let result =
        cache_stress_passes(s, csv, &mut report, &provider, &symbols, keys, range, ns.as_ref()).await;
    report.resources = sampler.stop().await;
    if let Some(ns) = &ns {
        match ns.delete_keys().await {
            Ok(n) => report.fact(
                "Redis clean-up",
                format!(
                    "deleted {n} keys under {}{}",
                    technic_core::fleet::PREFIX,
                    ns.namespace
                ),
            ),
            Err(e) => report.failures.push(format!(
                "could not delete the keys under {}{}: {e}",
                technic_core::fleet::PREFIX,
                ns.namespace
            )),
        }
    }
    result?;
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
async fn cache_stress_passes(
    s: &Settings,
    csv: Option<SampleCsv>,
    report: &mut Report,
    provider: &Arc<SyntheticProvider>,
    symbols: &Arc<Vec<BarsKey>>,
    keys: usize,
    range: technic_core::DateRange,
    ns: Option<&crate::fleet::Namespace>,
) -> anyhow::Result<()> {
    let lookups = keys * 10;
    let link = match ns {
        Some(ns) => {
            let link = technic_core::fleet::RedisLink::open(&ns.redis, &ns.namespace)
                .await
                .map_err(|e| anyhow::anyhow!(e.user_message()))?;
            if let Some(why) = link.degraded() {
                bail!("{why}");
            }
            Some(link)
        }
        None => None,
    };
    let mut needed = 0u64;
    let mut passes = vec![("", "default"), ("", "quarter")];
    if link.is_some() {
        passes.extend([("redis-", "default"), ("redis-", "quarter")]);
    }
    for (tier, pass) in passes {
        let config = if pass == "default" {
            MemoryCacheConfig::default()
        } else {
            MemoryCacheConfig {
                capacity_bytes: (needed / 4).max(1 << 20),
                ..MemoryCacheConfig::default()
            }
        };
        let label = format!("{tier}{pass}");
        let rss_before = sample_now(&Proc::This, None, 0.0).rss_kb;
        let memory = MemoryCache::new(config);
        let cache: Arc<dyn Cache> = match (&link, tier) {
            (Some(link), "redis-") => Arc::new(technic_core::cache::TieredCache::new(
                memory,
                link.clone(),
                &format!("stress-{pass}"),
            )),
            _ => Arc::new(memory),
        };
        let loads = Arc::new(AtomicU64::new(0));
        let rec = Recorder::new(&format!("cache-stress/{label}"), csv.clone());
        let zipf = Arc::new(Zipf::new(keys, ZIPF_S));
        let zipf_hits = Arc::new(AtomicU64::new(0));
        let mut tiers_before_zipf = Vec::new();
        let mut loads_before_zipf = 0;
        for phase in ["cold", "zipf"] {
            if phase == "zipf" {
                tiers_before_zipf = cache.tiers();
                loads_before_zipf = loads.load(Ordering::Relaxed);
            }
            let mut tasks = Vec::new();
            for t in 0..4usize {
                let (cache, provider, symbols, loads, rec, zipf, zipf_hits) = (
                    cache.clone(),
                    provider.clone(),
                    symbols.clone(),
                    loads.clone(),
                    rec.clone(),
                    zipf.clone(),
                    zipf_hits.clone(),
                );
                let seed = s.seed ^ (t as u64 + 1).wrapping_mul(0x9E37_79B9);
                tasks.push(tokio::spawn(async move {
                    let mut rng = Rng::new(seed);
                    let count = if phase == "cold" { keys } else { lookups };
                    for i in (t..count).step_by(4) {
                        let key = if phase == "cold" {
                            &symbols[i]
                        } else {
                            &symbols[zipf.sample(&mut rng)]
                        };
                        let (provider, loads) = (provider.clone(), loads.clone());
                        let sym = key.symbol.clone();
                        let loader = Box::pin(async move {
                            loads.fetch_add(1, Ordering::Relaxed);
                            provider.daily_bars(&sym, range).await.map(Arc::new)
                        });
                        let sent = Instant::now();
                        let lookup = cache.get_or_load(key, loader).await;
                        let (kind, class) = match &lookup {
                            Ok(l) if l.is_hit() => ("hit", Class::Ok),
                            Ok(_) => ("load", Class::Ok),
                            Err(e) => {
                                rec.error(format!("lookup of {}: {}", key.symbol, e.user_message()));
                                ("error", Class::Error)
                            }
                        };
                        if phase == "zipf" && kind == "hit" {
                            zipf_hits.fetch_add(1, Ordering::Relaxed);
                        }
                        rec.record(Sample {
                            kind: if phase == "cold" { "cold" } else { kind },
                            intended: sent,
                            sent,
                            done: Instant::now(),
                            status: 0,
                            class,
                        });
                        // Give way after each lookup, as a request handler would at its next I/O: a
                        // loop of hits never yields otherwise, and a task waiting for a key another task
                        // is loading would wait for the whole loop.
                        tokio::task::yield_now().await;
                    }
                }));
            }
            for t in tasks {
                t.await?;
            }
        }
        let stats = cache.stats();
        let tiers_after = cache.tiers();
        let rss_after = sample_now(&Proc::This, None, 0.0).rss_kb;
        let loaded = loads.load(Ordering::Relaxed);
        // Entries expire only after the TTL (300 s), longer than a pass: an entry filled twice was
        // evicted in between. Without tiers every fill is a load; with tiers, every memory-tier miss.
        let fills = tiers_after
            .iter()
            .find(|t| t.name == "memory")
            .map_or(loaded, |t| t.misses);
        let evictions = fills.saturating_sub(stats.entries);
        if label == "default" {
            needed = stats.bytes;
        }
        let hit_rate = 100.0 * zipf_hits.load(Ordering::Relaxed) as f64 / lookups as f64;
        report.fact(
            &format!("{label}: memory capacity"),
            format!("{:.0} MiB", stats.capacity_bytes as f64 / f64::from(1u32 << 20)),
        );
        report.fact(
            &format!("{label}: hit rate of the Zipf lookups (memory tier)"),
            format!("{hit_rate:.2} % ({lookups} lookups)"),
        );
        if !tiers_after.is_empty() {
            let per_tier: Vec<String> = tiers_after
                .iter()
                .map(|t| {
                    let b = tiers_before_zipf.iter().find(|x| x.name == t.name);
                    let hits = t.hits.saturating_sub(b.map_or(0, |x| x.hits));
                    let misses = t.misses.saturating_sub(b.map_or(0, |x| x.misses));
                    let seen = hits + misses;
                    if seen == 0 {
                        format!("{}: no lookups reached it", t.name)
                    } else {
                        format!(
                            "{}: {:.2} % of the {seen} lookups that reached it",
                            t.name,
                            100.0 * hits as f64 / seen as f64
                        )
                    }
                })
                .collect();
            report.fact(
                &format!("{label}: hit rate per tier during the Zipf lookups"),
                format!(
                    "{}; provider loads {}",
                    per_tier.join("; "),
                    loaded - loads_before_zipf
                ),
            );
        }
        report.fact(
            &format!("{label}: provider loads, memory entries held, memory evictions"),
            format!("{loaded} loads, {} entries, {evictions} evicted", stats.entries),
        );
        let rss_growth = match (rss_before, rss_after) {
            (Some(b), Some(a)) => format!(", RSS +{}", mb(a.saturating_sub(b))),
            _ => String::new(),
        };
        report.fact(
            &format!("{label}: memory"),
            format!(
                "{:.1} MiB weighed ({:.1} KiB per entry){rss_growth}",
                stats.bytes as f64 / f64::from(1u32 << 20),
                stats.bytes as f64 / 1024.0 / stats.entries.max(1) as f64
            ),
        );
        if pass == "default" && (stats.entries as usize) != keys {
            report.failures.push(format!(
                "{label}: default capacity holds {} of {keys} keys",
                stats.entries
            ));
        }
        rec.flush();
        report.run(rec.finish());
        drop(cache);
    }
    Ok(())
}

/// Pause between a dashboard user's actions.
const THINK: Duration = Duration::from_millis(200);

fn kind_of(path: &str) -> &'static str {
    if path.contains("/results") {
        "results"
    } else if path.ends_with("/bars") {
        "bars"
    } else if path.starts_with("/api/v1/symbols/") {
        "symbol"
    } else if path.starts_with("/api/v1/metrics")
        || path.starts_with("/api/v1/cache")
        || path == "/api/v1/warmer"
    {
        "cache-page"
    } else if path.starts_with("/api/v1/scans") {
        "list"
    } else {
        "index"
    }
}

async fn timed_get(c: &mut Client, rec: &Recorder, kind: &'static str, path: &str) -> Option<Value> {
    let sent = Instant::now();
    let r = c.get(path).await;
    let class = rec.outcome(kind, sent, sent, &r, path);
    match (class, r) {
        (Class::Ok, Ok(reply)) => reply.json().ok().or(Some(Value::Null)),
        _ => None,
    }
}

/// One dashboard user until `deadline`: load the page, start a scan, follow its events, read and page
/// the results, open symbols; a second connection polls the cache page every 2 s. Returns the sessions
/// finished.
async fn dashboard_user(target: Arc<Target>, rec: Arc<Recorder>, deadline: Instant, seed: u64) -> u64 {
    let poller = {
        let (target, rec) = (target.clone(), rec.clone());
        tokio::spawn(async move {
            let Ok(mut c) = Client::new(target) else { return };
            while Instant::now() < deadline {
                for path in [
                    "/api/v1/metrics/current",
                    "/api/v1/metrics/history?minutes=60",
                    "/api/v1/warmer",
                    "/api/v1/cache/stats",
                ] {
                    timed_get(&mut c, &rec, kind_of(path), path).await;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
    };
    let mut rng = Rng::new(seed);
    let mut sessions = 0;
    let Ok(mut c) = Client::new(target) else {
        return 0;
    };
    while Instant::now() < deadline {
        timed_get(&mut c, &rec, "index", "/").await;
        timed_get(&mut c, &rec, "list", "/api/v1/scans?limit=1").await;
        tokio::time::sleep(THINK).await;
        let sent = Instant::now();
        let path = "/api/v1/scans";
        let r = c
            .call(Method::POST, path, Some(r#"{"filters": {}, "top": 50}"#))
            .await;
        let class = rec.outcome("start", sent, sent, &r, path);
        let Ok(reply) = r else { continue };
        if class == Class::Busy {
            tokio::time::sleep(Duration::from_secs(reply.retry_after.unwrap_or(1).clamp(1, 5))).await;
            continue;
        }
        let Some(id) = reply
            .json()
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_owned))
        else {
            continue;
        };
        let events_path = format!("/api/v1/scans/{id}/events");
        let followed = c
            .follow_events(&events_path, deadline + Duration::from_secs(120))
            .await;
        let done = Instant::now();
        match &followed {
            Ok(end) => {
                let class = if end.last == "complete" {
                    Class::Ok
                } else {
                    Class::Error
                };
                if class == Class::Error {
                    rec.error(format!("scan {id} ended {}", end.last));
                }
                rec.record(Sample {
                    kind: "scan",
                    intended: sent,
                    sent,
                    done,
                    status: 200,
                    class,
                });
                if let Some(first) = end.first_at {
                    rec.record(Sample {
                        kind: "first-event",
                        intended: sent,
                        sent,
                        done: first,
                        status: 200,
                        class: Class::Ok,
                    });
                }
            }
            Err(e) => {
                rec.error(format!("events of scan {id}: {e}"));
                rec.record(Sample {
                    kind: "scan",
                    intended: sent,
                    sent,
                    done,
                    status: 0,
                    class: Class::Error,
                });
                continue;
            }
        }
        let results = timed_get(
            &mut c,
            &rec,
            "results",
            &format!("/api/v1/scans/{id}/results?limit=500"),
        )
        .await;
        tokio::time::sleep(THINK).await;
        for page in 0..3 {
            let path = format!(
                "/api/v1/scans/{id}/results?limit=20&offset={}&sort=-tech_rating",
                page * 20
            );
            timed_get(&mut c, &rec, "page", &path).await;
        }
        let symbols: Vec<String> = results
            .as_ref()
            .and_then(|v| v["results"].as_array())
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| r["symbol"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        for _ in 0..3 {
            if symbols.is_empty() {
                break;
            }
            tokio::time::sleep(THINK).await;
            let sym = path_segment(&symbols[rng.below(symbols.len())]);
            timed_get(&mut c, &rec, "symbol", &format!("/api/v1/symbols/{sym}")).await;
            timed_get(&mut c, &rec, "bars", &format!("/api/v1/symbols/{sym}/bars")).await;
        }
        sessions += 1;
        tokio::time::sleep(THINK).await;
    }
    let _ = poller.await;
    sessions
}

/// Runs `users` dashboard users until `deadline`; returns the sessions they finished.
async fn dashboard_users(
    env: &Env,
    rec: &Arc<Recorder>,
    users: usize,
    deadline: Instant,
    seed: u64,
) -> anyhow::Result<u64> {
    let mut tasks = Vec::with_capacity(users);
    for u in 0..users {
        let user_seed = seed ^ (u as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407);
        tasks.push(tokio::spawn(dashboard_user(
            env.target.clone(),
            rec.clone(),
            deadline,
            user_seed,
        )));
    }
    let mut sessions = 0;
    for t in tasks {
        sessions += t.await?;
    }
    Ok(sessions)
}

/// `dashboard`: virtual users doing what the dashboard does.
pub async fn dashboard(env: &Env, s: &Settings) -> anyhow::Result<Report> {
    let users = s.pick(s.users, 8, 2);
    let duration = s.duration(60, 3.0);
    let mut report = Report {
        name: "dashboard".to_owned(),
        setup: format!(
            "{users} virtual users for {:.0} s, each in a loop: load the page, list scans, start a scan \
             (top 50), follow its events to the end, read the results (limit 500), page them (3 × 20), open 3 \
             symbols (snapshot and bars), {} ms between actions; a second connection per user polls the cache \
             page (metrics, history, warmer, cache stats) every 2 s",
            duration.as_secs_f64(),
            THINK.as_millis()
        ),
        ..Report::default()
    };
    let sampler = Sampler::start(
        env.proc_.clone(),
        env.store.clone(),
        sample_interval(s, Duration::from_secs(1)),
    );
    let rec = Recorder::new("dashboard", env.csv.clone());
    let sessions = dashboard_users(env, &rec, users, Instant::now() + duration, s.seed).await?;
    report.resources = sampler.stop().await;
    rec.flush();
    let run = rec.finish();
    report.fact(
        "sessions finished",
        format!(
            "{sessions} ({:.1} per user per minute)",
            sessions as f64 / users as f64 / (duration.as_secs_f64() / 60.0)
        ),
    );
    if let Some(scan) = run.kind("scan") {
        report.fact(
            "scan time seen by a user (start → final event)",
            format!("p50 {}, p99 {}", ms(scan.latency.p50), ms(scan.latency.p99)),
        );
    }
    report.fact(
        "starts refused with 429",
        run.kind("start").map_or(0, |k| k.busy).to_string(),
    );
    if sessions == 0 {
        report.failures.push("no dashboard session finished".to_owned());
    }
    report.run(run);
    Ok(report)
}

/// `soak`: the api mix at a fixed rate and dashboard users for a long time, sampling RSS, open files and
/// the store's size.
pub async fn soak(env: &Env, s: &Settings) -> anyhow::Result<Report> {
    let duration = s.duration(1800, 4.0);
    let rate = s.pick(s.rate, 200.0, 50.0);
    let users = s.pick(s.users, 2, 1);
    let every = sample_interval(
        s,
        if s.smoke {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(10)
        },
    );
    let api = s.soak_mix != SoakMix::Dashboard;
    let dash = s.soak_mix != SoakMix::Api;
    let p = if api {
        Some(prepare(&env.target, s.seed).await?)
    } else {
        None
    };
    let mut parts = Vec::new();
    if api {
        parts.push(format!(
            "the api-rate mix at a fixed {rate:.0} req/s over 16 connections"
        ));
    }
    if dash {
        parts.push(format!("{users} dashboard users (as in the dashboard scenario)"));
    }
    let mut report = Report {
        name: "soak".to_owned(),
        setup: format!(
            "{} for {:.0} s; RSS, open files and store size sampled every {:.0} s",
            parts.join(" and "),
            duration.as_secs_f64(),
            every.as_secs_f64()
        ),
        ..Report::default()
    };
    let sampler = Sampler::start(env.proc_.clone(), env.store.clone(), every);
    let deadline = Instant::now() + duration;
    let api_rec = Recorder::new("soak/api", env.csv.clone());
    let dash_rec = Recorder::new("soak/dashboard", env.csv.clone());
    let api_task = p.map(|p| {
        let (target, rec, seed) = (env.target.clone(), api_rec.clone(), s.seed);
        tokio::spawn(async move {
            let mix = Arc::new(Mix::new(&p, &API_MIX));
            let load = Load {
                target: &target,
                rec: &rec,
                mix: &mix,
                connections: 16,
                seed,
            };
            fixed_rate(load, rate, duration, &CancellationToken::new()).await
        })
    });
    let sessions = if dash {
        dashboard_users(env, &dash_rec, users, deadline, s.seed).await?
    } else {
        0
    };
    if let Some(t) = api_task {
        t.await??;
    }
    let resources = sampler.stop().await;
    api_rec.flush();
    dash_rec.flush();
    let res = &resources;
    let series = |f: fn(&ResSample) -> Option<u64>| -> Vec<u64> { res.iter().filter_map(f).collect() };
    let describe = |v: &[u64], fmt: &dyn Fn(u64) -> String| -> String {
        match (v.first(), v.last(), v.iter().max()) {
            (Some(a), Some(b), Some(m)) => format!("start {}, end {}, highest {}", fmt(*a), fmt(*b), fmt(*m)),
            _ => "not measured".to_owned(),
        }
    };
    let rss = series(|r| r.rss_kb);
    report.fact("RSS", describe(&rss, &|kb| mb(kb)));
    let with_rss: Vec<&ResSample> = res.iter().filter(|r| r.rss_kb.is_some()).collect();
    if with_rss.len() >= 6 {
        // Growth over the second half (after the caches have filled): a leak shows as steady growth.
        let (mid, last) = (with_rss[with_rss.len() / 2], with_rss[with_rss.len() - 1]);
        let kb = |r: &ResSample| r.rss_kb.unwrap_or(0) as f64;
        report.fact(
            "RSS change over the second half",
            format!(
                "{:+.1} MB over {:.0} s",
                (kb(last) - kb(mid)) / 1024.0,
                last.t - mid.t
            ),
        );
    }
    report.fact(
        "open files",
        describe(&series(|r| r.open_files), &|n| n.to_string()),
    );
    report.fact(
        "store size",
        describe(&series(|r| r.store_bytes), &|b| {
            format!("{:.1} MB", b as f64 / 1e6)
        }),
    );
    if dash {
        report.fact("dashboard sessions finished", sessions.to_string());
    }
    report.resources = resources;
    if api {
        report.run(api_rec.finish());
    }
    if dash {
        report.run(dash_rec.finish());
    }
    Ok(report)
}
