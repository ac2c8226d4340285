//! The two ways of sending load, and the request mixes.
//!
//! - [`fixed_rate`]: an open loop. A pacer thread hands out request slots at exact intended times
//!   (`start + i / rate`, with `std::thread::sleep`, finer than Tokio's 1 ms timer); a pool of
//!   connections takes them in order. Latency is measured from the intended time, so a stalled server
//!   (or a busy client) is charged for every request that should have been sent meanwhile: the
//!   correction for coordinated omission. The client's own lag (sent − intended) is recorded too.
//! - [`closed_loop`]: N connections, each sending its next request as soon as the previous answer is
//!   read; gives the maximum throughput. Latency is the service time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::http::{Client, REQUEST_TIMEOUT, Target, path_segment};
use crate::record::{Class, Recorder, Rng, Sample, Zipf};

/// Zipf exponent of symbol and page popularity.
pub const ZIPF_S: f64 = 1.0;

/// A weighted mix of GET requests.
#[derive(Debug)]
pub struct Mix {
    /// Every request: kind and path.
    pub reqs: Vec<(&'static str, String)>,
    groups: Vec<Group>,
}

#[derive(Debug)]
struct Group {
    /// Cumulative weight up to and including this group.
    upto: f64,
    first: usize,
    zipf: Zipf,
}

/// What the mixes draw from: a finished scan's symbols (shuffled: popularity is not rank) and
/// the paths of its result pages.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub symbols: Vec<String>,
    pub pages: Vec<String>,
}

/// Rows per result page in the mixes.
pub const PAGE_ROWS: usize = 50;

impl Mix {
    /// `weights` over the kinds `symbol` (Zipf over the symbols), `page` (Zipf over result pages, first
    /// pages most popular) and `health` (`/healthz`).
    pub fn new(p: &Prepared, weights: &[(&'static str, f64)]) -> Self {
        let mut reqs = Vec::new();
        let mut groups = Vec::new();
        let total: f64 = weights.iter().map(|(_, w)| w).sum();
        let mut upto = 0.0;
        for &(kind, w) in weights {
            let paths: Vec<String> = match kind {
                "symbol" => p
                    .symbols
                    .iter()
                    .map(|s| format!("/api/v1/symbols/{}", path_segment(s)))
                    .collect(),
                "page" => p.pages.clone(),
                _ => vec!["/healthz".to_owned()],
            };
            if paths.is_empty() || w <= 0.0 {
                continue;
            }
            upto += w / total;
            groups.push(Group {
                upto,
                first: reqs.len(),
                zipf: Zipf::new(paths.len(), ZIPF_S),
            });
            reqs.extend(paths.into_iter().map(|path| (kind, path)));
        }
        Self { reqs, groups }
    }

    /// Draws a request (an index into `reqs`).
    pub fn pick(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        let g = self.groups.iter().find(|g| u < g.upto).or(self.groups.last());
        g.map_or(0, |g| g.first + g.zipf.sample(rng))
    }
}

/// The api-rate mix: 60 % symbol reads, 30 % result pages, 10 % health checks.
pub const API_MIX: [(&str, f64); 3] = [("symbol", 0.6), ("page", 0.3), ("health", 0.1)];

#[derive(Debug, Clone, Copy)]
struct Job {
    intended: Instant,
    req: usize,
}

/// Who sends what: the target, where samples go, the mix, how many connections, the mix's seed.
#[derive(Debug, Clone, Copy)]
pub struct Load<'a> {
    pub target: &'a Arc<Target>,
    pub rec: &'a Arc<Recorder>,
    pub mix: &'a Arc<Mix>,
    pub connections: usize,
    pub seed: u64,
}

/// Sends the load at `rate` requests per second for `duration` (or until `stop`), recording into its
/// recorder. Returns once every request is answered or has failed (requests still unanswered 35 s after
/// the end count as errors).
pub async fn fixed_rate(
    load: Load<'_>,
    rate: f64,
    duration: Duration,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let lanes = [Lane {
        target: load.target.clone(),
        rec: load.rec.clone(),
    }];
    let rr = RoundRobin {
        lanes: &lanes,
        combined: None,
        mix: load.mix,
        connections: load.connections,
        seed: load.seed,
    };
    fixed_rate_round_robin(rr, rate, duration, stop).await
}

/// One server of a round-robin load and where its samples go.
#[derive(Debug, Clone)]
pub struct Lane {
    pub target: Arc<Target>,
    pub rec: Arc<Recorder>,
}

/// A fixed-rate load spread over several servers: request `i` goes to lane `i % lanes`, on that lane's
/// share of the connections; each sample is recorded in its lane's recorder and in `combined`.
#[derive(Debug, Clone, Copy)]
pub struct RoundRobin<'a> {
    pub lanes: &'a [Lane],
    pub combined: Option<&'a Arc<Recorder>>,
    pub mix: &'a Arc<Mix>,
    /// Connections in all (at least one per lane).
    pub connections: usize,
    pub seed: u64,
}

/// [`fixed_rate`] over the lanes of `rr`, round-robin.
pub async fn fixed_rate_round_robin(
    rr: RoundRobin<'_>,
    rate: f64,
    duration: Duration,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let RoundRobin {
        lanes,
        combined,
        mix,
        connections,
        seed,
    } = rr;
    if lanes.is_empty() {
        anyhow::bail!("no server to send the load to");
    }
    let n = (rate * duration.as_secs_f64()).ceil().max(1.0) as u64;
    let per_lane = (connections / lanes.len()).max(1);
    let mut senders = Vec::with_capacity(lanes.len());
    let mut queues = Vec::with_capacity(lanes.len());
    let mut workers = Vec::with_capacity(per_lane * lanes.len());
    for lane in lanes {
        let (tx, rx) = mpsc::unbounded_channel::<Job>();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        senders.push(tx);
        queues.push(rx.clone());
        for _ in 0..per_lane {
            let (rx, rec, mix, target) = (rx.clone(), lane.rec.clone(), mix.clone(), lane.target.clone());
            let also = combined.cloned();
            workers.push(tokio::spawn(async move {
                let Ok(mut client) = Client::new(target) else {
                    return;
                };
                loop {
                    let job = { rx.lock().await.recv().await };
                    let Some(job) = job else { break };
                    let (kind, path) = &mix.reqs[job.req];
                    let sent = Instant::now();
                    let result = client.get(path).await;
                    rec.outcome_also(also.as_deref(), kind, job.intended, sent, &result, path);
                }
            }));
        }
    }
    let t0 = Instant::now();
    let pacer = {
        let (mix, stop) = (mix.clone(), stop.clone());
        let nanos_per = 1e9 / rate;
        std::thread::Builder::new()
            .name("load-pacer".to_owned())
            .spawn(move || {
                let mut rng = Rng::new(seed);
                for i in 0..n {
                    let intended = t0 + Duration::from_nanos((i as f64 * nanos_per) as u64);
                    let now = Instant::now();
                    if intended > now {
                        std::thread::sleep(intended - now);
                    }
                    if stop.is_cancelled() {
                        break;
                    }
                    let job = Job {
                        intended,
                        req: mix.pick(&mut rng),
                    };
                    let lane = (i % senders.len() as u64) as usize;
                    if senders[lane].send(job).is_err() {
                        break;
                    }
                }
            })?
    };
    let paced = tokio::task::spawn_blocking(move || pacer.join().is_ok()).await;
    if !matches!(paced, Ok(true)) {
        anyhow::bail!("the pacer thread failed");
    }
    // The pacer dropped its senders: workers drain the queues and stop. Bound the wait.
    let drained = tokio::time::timeout(REQUEST_TIMEOUT, futures::future::join_all(&mut workers)).await;
    if drained.is_err() {
        for w in &workers {
            w.abort();
        }
        let now = Instant::now();
        for (lane, queue) in lanes.iter().zip(&queues) {
            let mut left = queue.lock().await;
            let mut unanswered = 0u64;
            while let Ok(job) = left.try_recv() {
                let (kind, _) = &mix.reqs[job.req];
                let sample = Sample {
                    kind,
                    intended: job.intended,
                    sent: now,
                    done: now,
                    status: 0,
                    class: Class::Error,
                };
                lane.rec.record(sample);
                if let Some(c) = combined {
                    c.record(sample);
                }
                unanswered += 1;
            }
            lane.rec.error(format!(
                "{unanswered} requests never sent and some unanswered {} s after the end",
                REQUEST_TIMEOUT.as_secs()
            ));
        }
    }
    Ok(())
}

/// Sends the load as fast as answers come, each connection one request at a time, for `duration`.
pub async fn closed_loop(load: Load<'_>, duration: Duration) -> anyhow::Result<()> {
    let Load {
        target,
        rec,
        mix,
        connections,
        seed,
    } = load;
    let deadline = Instant::now() + duration;
    let mut workers = Vec::with_capacity(connections);
    for w in 0..connections {
        let (rec, mix, target) = (rec.clone(), mix.clone(), target.clone());
        workers.push(tokio::spawn(async move {
            let Ok(mut client) = Client::new(target) else {
                return;
            };
            let mut rng = Rng::new(seed ^ (w as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
            while Instant::now() < deadline {
                let (kind, path) = &mix.reqs[mix.pick(&mut rng)];
                let sent = Instant::now();
                let result = client.get(path).await;
                if rec.outcome(kind, sent, sent, &result, path) == Class::Error {
                    // Do not spin on a refused connection.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }));
    }
    let all = futures::future::join_all(&mut workers);
    if tokio::time::timeout(duration + REQUEST_TIMEOUT, all)
        .await
        .is_err()
    {
        for w in &workers {
            w.abort();
        }
        rec.error("closed-loop workers still busy after the deadline");
    }
    Ok(())
}
