//! The shared services of the fleet scenario (and of `cache-stress` through Redis): the `--cache` and
//! `--store` URLs checked (loopback only unless `--allow-remote`), probed, and a Redis key namespace and a
//! PostgreSQL schema of this run's own, removed at the end. Then the scenario itself: two in-process
//! servers over them, traffic round-robin.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hyper::Method;
use serde_json::Value;
use technic_core::fleet::{PREFIX, RedisLink};
use tokio_util::sync::CancellationToken;

use crate::engine::{API_MIX, Lane, Mix, PAGE_ROWS, RoundRobin, ZIPF_S, fixed_rate_round_robin};
use crate::http::{Client, Target, path_segment};
use crate::record::{Class, Proc, Recorder, Sample, Sampler};
use crate::scenarios::{Env, Report, Settings, get_json, ms, prepare, rate_str, read_all};

/// Redis of the smoke run when no `--cache` is given.
pub const DEFAULT_REDIS: &str = "redis://127.0.0.1:6379";

/// PostgreSQL of the smoke run when no `--store postgres://…` is given: the tests' server
/// (`TECHNIC_TEST_POSTGRES_URL`, else `postgres://postgres@127.0.0.1:5432/test`).
pub fn default_postgres() -> String {
    std::env::var("TECHNIC_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// True for a `postgres://` or `postgresql://` URL.
pub fn is_postgres_url(s: &str) -> bool {
    let s = s.trim();
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// True for a `redis://` or `rediss://` URL.
pub fn is_redis_url(s: &str) -> bool {
    let s = s.trim();
    s.starts_with("redis://") || s.starts_with("rediss://")
}

/// `scheme://user:secret@host:port/db?password=…` → `scheme://host:port/db`: for messages (no
/// credentials, no query).
pub fn redact(url: &str) -> String {
    let url = url.trim();
    let Some(s) = url.find("://") else {
        return "(not a URL)".to_owned();
    };
    let rest = &url[s + 3..];
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{}{host}{path}", &url[..s + 3])
}

fn loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Checks that `url` (given as `flag`) names this machine: a loopback address, `localhost`, or (for
/// PostgreSQL) a Unix socket. Anything else only with `allow_remote`.
pub fn check_local(flag: &str, url: &str, allow_remote: bool) -> Result<(), String> {
    if allow_remote {
        return Ok(());
    }
    let shown = redact(url);
    let refuse = |host: &str| {
        Err(format!(
            "{flag} {shown}: {host} is not a loopback address; the load test only uses services on 127.0.0.1, \
             ::1 or localhost unless --allow-remote is passed"
        ))
    };
    let Some(s) = url.find("://") else {
        return Err(format!("{flag} {shown}: not a URL"));
    };
    let rest = &url[s + 3..];
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = before_query.split('/').next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    // Several hosts (PostgreSQL accepts a comma-separated list): every one must be local.
    for one in hostport.split(',') {
        let host = if let Some(v6) = one.strip_prefix('[') {
            v6.split(']').next().unwrap_or("")
        } else {
            one.split(':').next().unwrap_or("")
        };
        // No host: PostgreSQL's default Unix socket.
        if !host.is_empty() && !loopback_host(host) {
            return refuse(host);
        }
    }
    for param in query.split('&') {
        if let Some(v) = param.strip_prefix("host=") {
            let v = v.replace("%2F", "/").replace("%2f", "/");
            if !v.starts_with('/') && !loopback_host(&v) {
                return refuse(&v);
            }
        }
    }
    Ok(())
}

/// Does Redis at `url` answer a `PING`? `Err` says why not.
pub async fn probe_redis(url: &str) -> Result<(), String> {
    let link = RedisLink::open(url, "load-probe:")
        .await
        .map_err(|e| e.user_message())?;
    if link.ping().await {
        Ok(())
    } else {
        Err(link
            .degraded()
            .unwrap_or_else(|| format!("Redis at {} does not answer PING", redact(url))))
    }
}

/// A PostgreSQL error with its cause (tokio-postgres shows only "db error" or "error connecting to
/// server" otherwise).
fn pg_error(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

async fn pg_client(url: &str) -> Result<tokio_postgres::Client, String> {
    let shown = redact(url);
    let (client, conn) = tokio::time::timeout(
        Duration::from_secs(3),
        tokio_postgres::connect(url, tokio_postgres::NoTls),
    )
    .await
    .map_err(|_| format!("PostgreSQL at {shown}: no answer within 3 s"))?
    .map_err(|e| format!("PostgreSQL at {shown}: {}", pg_error(&e)))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// Does PostgreSQL at `url` answer a query? `Err` says why not.
pub async fn probe_postgres(url: &str) -> Result<(), String> {
    let client = pg_client(url).await?;
    client
        .simple_query("SELECT 1")
        .await
        .map(|_| ())
        .map_err(|e| format!("PostgreSQL at {}: {}", redact(url), pg_error(&e)))
}

/// A key namespace in Redis (`technic:v1:load-<uuid>:`) of this run's own.
#[derive(Debug, Clone)]
pub struct Namespace {
    pub redis: String,
    /// What `RedisLink::open` takes (`load-<uuid>:`).
    pub namespace: String,
}

impl Namespace {
    pub fn new(redis: &str) -> Self {
        Self {
            redis: redis.to_owned(),
            namespace: format!("load-{}:", uuid::Uuid::now_v7().simple()),
        }
    }

    /// Deletes every key of the namespace (SCAN + DEL); returns how many.
    pub async fn delete_keys(&self) -> Result<u64, String> {
        let link = RedisLink::open(&self.redis, &self.namespace)
            .await
            .map_err(|e| e.user_message())?;
        let pattern = format!("{PREFIX}{}*", self.namespace);
        let mut cursor = 0u64;
        let mut deleted = 0u64;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(1000);
            let (next, keys): (u64, Vec<String>) = link.run(&scan).await.ok_or_else(|| {
                link.degraded()
                    .unwrap_or_else(|| "Redis did not answer SCAN".to_owned())
            })?;
            if !keys.is_empty() {
                let mut del = redis::cmd("DEL");
                for k in &keys {
                    del.arg(k);
                }
                deleted += link.run::<u64>(&del).await.ok_or_else(|| {
                    link.degraded()
                        .unwrap_or_else(|| "Redis did not answer DEL".to_owned())
                })?;
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        Ok(deleted)
    }
}

/// This run's Redis namespace and PostgreSQL schema.
#[derive(Debug)]
pub struct Shared {
    pub ns: Namespace,
    /// The store URL with `search_path` set to the schema.
    pub store_url: String,
    admin_url: String,
    pub schema: String,
}

impl Shared {
    /// Creates the schema (`load_<uuid>`) and picks the namespace.
    pub async fn create(redis: &str, postgres: &str) -> Result<Self, String> {
        let ns = Namespace::new(redis);
        let schema = format!("load_{}", uuid::Uuid::now_v7().simple());
        let admin = pg_client(postgres).await?;
        admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .map_err(|e| {
                format!(
                    "PostgreSQL at {}: cannot create a schema: {}",
                    redact(postgres),
                    pg_error(&e)
                )
            })?;
        let sep = if postgres.contains('?') { '&' } else { '?' };
        Ok(Self {
            ns,
            store_url: format!("{postgres}{sep}options=-c%20search_path%3D{schema}"),
            admin_url: postgres.to_owned(),
            schema,
        })
    }

    /// Drops the schema and deletes the namespace's keys; says what it did.
    pub async fn remove(&self) -> Result<String, String> {
        let mut done = Vec::new();
        let mut errors = Vec::new();
        match pg_client(&self.admin_url).await {
            Ok(admin) => match admin
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
                .await
            {
                Ok(()) => done.push(format!("dropped PostgreSQL schema {}", self.schema)),
                Err(e) => errors.push(format!("cannot drop schema {}: {}", self.schema, pg_error(&e))),
            },
            Err(e) => errors.push(e),
        }
        match self.ns.delete_keys().await {
            Ok(n) => done.push(format!(
                "deleted {n} Redis keys under {PREFIX}{}",
                self.ns.namespace
            )),
            Err(e) => errors.push(format!("Redis keys under {PREFIX}{}: {e}", self.ns.namespace)),
        }
        if errors.is_empty() {
            Ok(done.join("; "))
        } else {
            Err(errors.join("; "))
        }
    }
}

/// One server of the fleet as the scenario sees it.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: &'static str,
    pub target: Arc<Target>,
    /// Bar loads that reached this server's provider.
    pub provider_calls: Arc<AtomicU64>,
}

/// Per-tier counters of a server's cache (`/api/v1/cache/stats`): (memory hits, memory misses, redis
/// hits, redis misses).
async fn tiers(target: &Arc<Target>) -> Option<[u64; 4]> {
    let mut c = Client::new(target.clone()).ok()?;
    let v = get_json(&mut c, "/api/v1/cache/stats").await.ok()?;
    let mut out = [0u64; 4];
    for t in v["tiers"].as_array()? {
        let base = match t["name"].as_str() {
            Some("memory") => 0,
            Some("redis") => 2,
            _ => continue,
        };
        out[base] = t["hits"].as_u64().unwrap_or(0);
        out[base + 1] = t["misses"].as_u64().unwrap_or(0);
    }
    Some(out)
}

fn tier_line(before: Option<[u64; 4]>, after: Option<[u64; 4]>) -> String {
    let (Some(b), Some(a)) = (before, after) else {
        return "not readable".to_owned();
    };
    let d: Vec<u64> = (0..4).map(|i| a[i].saturating_sub(b[i])).collect();
    let pct = |h: u64, m: u64| {
        if h + m == 0 {
            "no lookups reached it".to_owned()
        } else {
            format!(
                "answered {:.2} % of the {} lookups that reached it",
                100.0 * h as f64 / (h + m) as f64,
                h + m
            )
        }
    };
    format!("memory tier {}; Redis tier {}", pct(d[0], d[1]), pct(d[2], d[3]))
}

/// A scan started on `from`, followed and read on `on`.
async fn cross_scan(
    from: &Member,
    on: &Member,
    top: usize,
    rec: &Recorder,
    deadline: Instant,
) -> anyhow::Result<()> {
    let mut c_from = Client::new(from.target.clone()).map_err(anyhow::Error::msg)?;
    let mut c_on = Client::new(on.target.clone()).map_err(anyhow::Error::msg)?;
    let body = format!(r#"{{"top": {top}}}"#);
    let sent = Instant::now();
    let path = "/api/v1/scans";
    let r = c_from.call(Method::POST, path, Some(&body)).await;
    let class = rec.outcome("start", sent, sent, &r, path);
    let Ok(reply) = r else { return Ok(()) };
    if class != Class::Ok {
        return Ok(());
    }
    let id = reply
        .json()
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .context("POST /api/v1/scans answered without an id")?;
    // The other server knows the scan once the first server relayed its status through Redis.
    let status_path = format!("/api/v1/scans/{id}");
    let seen = loop {
        let r = c_on.get(&status_path).await;
        if matches!(&r, Ok(reply) if reply.status == 200) {
            break Some(Instant::now());
        }
        if Instant::now() > sent + Duration::from_secs(10) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let Some(seen) = seen else {
        rec.error(format!(
            "scan {id} started on {} unknown to {} after 10 s",
            from.name, on.name
        ));
        rec.record(Sample {
            kind: "seen-on-other",
            intended: sent,
            sent,
            done: Instant::now(),
            status: 404,
            class: Class::Error,
        });
        return Ok(());
    };
    rec.record(Sample {
        kind: "seen-on-other",
        intended: sent,
        sent,
        done: seen,
        status: 200,
        class: Class::Ok,
    });
    let followed = c_on
        .follow_events(&format!("/api/v1/scans/{id}/events"), deadline)
        .await;
    let done = Instant::now();
    let class = match &followed {
        Ok(end) if end.last == "complete" => Class::Ok,
        Ok(end) => {
            rec.error(format!("scan {id} ended {} (followed on {})", end.last, on.name));
            Class::Error
        }
        Err(e) => {
            rec.error(format!("events of scan {id} on {}: {e}", on.name));
            Class::Error
        }
    };
    rec.record(Sample {
        kind: "scan",
        intended: sent,
        sent,
        done,
        status: if class == Class::Ok { 200 } else { 0 },
        class,
    });
    if class != Class::Ok {
        return Ok(());
    }
    // The results read on both servers must be the same rows.
    let results = format!("/api/v1/scans/{id}/results?limit={PAGE_ROWS}");
    let t = Instant::now();
    let r_on = c_on.get(&results).await;
    rec.outcome("results", t, t, &r_on, &results);
    let r_from = c_from.get(&results).await;
    let symbols = |r: &Result<crate::http::Reply, String>| -> Option<(u64, Vec<String>)> {
        let v: Value = r.as_ref().ok()?.json().ok()?;
        let rows = v["results"].as_array()?;
        Some((
            v["total"].as_u64()?,
            rows.iter()
                .filter_map(|x| x["symbol"].as_str().map(str::to_owned))
                .collect(),
        ))
    };
    match (symbols(&r_on), symbols(&r_from)) {
        (Some(a), Some(b)) if a == b && !a.1.is_empty() => {}
        (a, b) => rec.error(format!(
            "scan {id}: results on {} ({} rows) differ from {} ({} rows)",
            on.name,
            a.map_or(0, |x| x.1.len()),
            from.name,
            b.map_or(0, |x| x.1.len())
        )),
    }
    Ok(())
}

/// `fleet`: two servers sharing one Redis and one PostgreSQL; traffic round-robin.
pub async fn fleet(
    members: [Member; 2],
    env: &Env,
    s: &Settings,
    shared: &Shared,
    symbols: usize,
) -> anyhow::Result<Report> {
    let rate = s.rate.unwrap_or(if s.smoke { 200.0 } else { 1000.0 });
    let duration = s.duration.unwrap_or(if s.smoke {
        Duration::from_secs(3)
    } else {
        Duration::from_secs(60)
    });
    let connections = s.connections.unwrap_or(if s.smoke { 8 } else { 32 });
    let scan_every = if s.smoke {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(5)
    };
    let [a, b] = &members;
    let calls = |m: &Member| m.provider_calls.load(Ordering::Relaxed);
    let mut report = Report {
        name: "fleet".to_owned(),
        ..Report::default()
    };
    let sampler = Sampler::start(Proc::This, None, Duration::from_secs(1));

    // 1. A scans everything and reads every symbol and result page once (prepare): the provider loads
    //    each symbol once, on A, and the bars go to Redis.
    let p = prepare(&a.target, s.seed).await?;
    let (a_prep, b_prep) = (calls(a), calls(b));
    report.fact(
        "preparation on A (scan of everything, every symbol and result page read once)",
        format!(
            "{} symbols, {} result pages; provider bar loads: A {a_prep}, B {b_prep}",
            p.symbols.len(),
            p.pages.len()
        ),
    );

    // 2. B reads every symbol (its memory tier is empty: Redis answers) and every result page (the
    //    shared store): A's loads cost B no provider call.
    let b_tiers_before = tiers(&b.target).await;
    let first = Recorder::new("fleet/B first read", env.csv.clone());
    let sym_paths: Vec<(&'static str, String)> = p
        .symbols
        .iter()
        .map(|x| ("symbol", format!("/api/v1/symbols/{}", path_segment(x))))
        .chain(p.pages.iter().map(|x| ("page", x.clone())))
        .collect();
    read_all(&b.target, &first, sym_paths, 8).await?;
    let b_first_calls = calls(b) - b_prep;
    let b_tiers_after = tiers(&b.target).await;
    report.fact(
        "B's first read of every symbol and page A had loaded",
        format!(
            "provider bar loads on B: {b_first_calls}; {}",
            tier_line(b_tiers_before, b_tiers_after)
        ),
    );
    report.goal(
        "bars loaded by A cost B no provider call",
        "0 provider calls on B",
        format!(
            "{b_first_calls} on B for {} symbols A had loaded",
            p.symbols.len()
        ),
        Some(b_first_calls == 0),
    );
    if b_first_calls > 0 {
        report.failures.push(format!(
            "B called the provider {b_first_calls} times for bars A had loaded into Redis"
        ));
    }
    first.flush();
    report.run(first.finish());

    // 3. The mix at a fixed rate, round-robin over A and B, with scans started on one server and
    //    followed and read on the other meanwhile.
    let tiers_before = [tiers(&a.target).await, tiers(&b.target).await];
    let calls_before = [calls(a), calls(b)];
    let mix = Arc::new(Mix::new(&p, &API_MIX));
    let lanes = [
        Lane {
            target: a.target.clone(),
            rec: Recorder::new("fleet/A", env.csv.clone()),
        },
        Lane {
            target: b.target.clone(),
            rec: Recorder::new("fleet/B", env.csv.clone()),
        },
    ];
    let combined = Recorder::new("fleet/A+B", None);
    let scans_rec = Recorder::new("fleet/scans", env.csv.clone());
    let stop = CancellationToken::new();
    let scanner = {
        let (members, rec, stop) = (members.clone(), scans_rec.clone(), stop.clone());
        tokio::spawn(async move {
            let mut k = 0usize;
            let mut started = 0usize;
            let end = Instant::now() + duration;
            while Instant::now() < end && !stop.is_cancelled() {
                let (from, on) = if k.is_multiple_of(2) {
                    (&members[0], &members[1])
                } else {
                    (&members[1], &members[0])
                };
                // A distinct request each time (the fleet answers a repeated one with the finished scan).
                let top = 20 + k;
                if let Err(e) = cross_scan(from, on, top, &rec, end + Duration::from_secs(120)).await {
                    rec.error(format!("scan started on {}: {e:#}", from.name));
                }
                started += 1;
                k += 1;
                tokio::time::sleep(scan_every).await;
            }
            started
        })
    };
    let rr = RoundRobin {
        lanes: &lanes,
        combined: Some(&combined),
        mix: &mix,
        connections,
        seed: s.seed,
    };
    fixed_rate_round_robin(rr, rate, duration, &CancellationToken::new()).await?;
    stop.cancel();
    let scans_started = scanner.await.unwrap_or(0);
    let tiers_after = [tiers(&a.target).await, tiers(&b.target).await];
    let calls_after = [calls(a), calls(b)];
    report.resources = sampler.stop().await;
    report.setup = format!(
        "two in-process servers (A, B) over {symbols} demo symbols sharing Redis {} (key namespace \
         {PREFIX}{}) and PostgreSQL {} (schema {}), each built as `technic serve --cache redis://… --store \
         postgres://…` builds it; A scans everything first, then B reads every symbol and result page; then \
         a fixed {rate:.0} req/s for {:.0} s round-robin over A and B ({} connections each), Zipf (s = \
         {ZIPF_S}) mix: 60 % symbol reads, 30 % result pages, 10 % /healthz; meanwhile a scan every {:.0} s \
         started on one server, seen, followed (events) and read on the other",
        redact(&shared.ns.redis),
        shared.ns.namespace,
        redact(&shared.admin_url),
        shared.schema,
        duration.as_secs_f64(),
        (connections / 2).max(1),
        scan_every.as_secs_f64(),
    );
    for (i, m) in members.iter().enumerate() {
        report.fact(
            &format!("server {} during the mixed run", m.name),
            format!(
                "provider bar loads {}; {}",
                calls_after[i] - calls_before[i],
                tier_line(tiers_before[i], tiers_after[i])
            ),
        );
    }
    report.fact(
        "provider bar loads in all (A, B)",
        format!("{}, {} for {} symbols", calls_after[0], calls_after[1], symbols),
    );
    let mut runs = Vec::new();
    for lane in &lanes {
        lane.rec.flush();
        runs.push(lane.rec.finish());
    }
    let all = combined.finish();
    report.fact("offered rate (A+B)", rate_str(rate));
    report.fact("achieved rate (A+B)", rate_str(all.rate(&all.all)));
    for run in &runs {
        if let Some(sym) = run.kind("symbol") {
            report.fact(
                &format!("{}: symbol reads p50 / p99 / p99.9", run.label),
                format!(
                    "{} / {} / {}",
                    ms(sym.latency.p50),
                    ms(sym.latency.p99),
                    ms(sym.latency.p999)
                ),
            );
        }
    }
    scans_rec.flush();
    let scans = scans_rec.finish();
    let finished = scans.kind("scan").map_or(0, |k| k.ok as usize);
    report.fact(
        "scans started on one server and followed on the other",
        format!("{scans_started} started, {finished} followed to `complete` and read identically on both"),
    );
    if let Some(seen) = scans.kind("seen-on-other") {
        report.fact(
            "a scan visible on the other server after (POST → first 200 status there)",
            format!("p50 {}, max {}", ms(seen.latency.p50), ms(seen.latency.max)),
        );
    }
    if let Some(scan) = scans.kind("scan") {
        report.fact(
            "scan time seen on the other server (POST → final event)",
            format!("p50 {}, max {}", ms(scan.latency.p50), ms(scan.latency.max)),
        );
    }
    if scans_started == 0 || finished < scans_started {
        report.failures.push(format!(
            "{} of {scans_started} cross-server scans did not complete",
            scans_started - finished.min(scans_started)
        ));
    }
    for run in runs {
        report.run(run);
    }
    report.run(all);
    report.run(scans);
    Ok(report)
}
