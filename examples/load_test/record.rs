//! What a run records: latency histograms per request kind (hdrhistogram, microseconds), one summary per
//! second for the charts, every sample to the CSV file when `--out` is given, and resource samples (RSS,
//! open files, store size) read from `/proc`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Highest latency recorded exactly (10 minutes, in µs); longer ones count as this.
const MAX_US: u64 = 600_000_000;

fn histogram(sigfig: u8) -> Histogram<u64> {
    // Constant bounds that hdrhistogram always accepts (1 µs to 10 min, 2 or 3 significant figures).
    Histogram::new_with_bounds(1, MAX_US, sigfig).expect("valid histogram bounds")
}

/// Kinds that time a whole scan (start to final event) or its first event rather than one request:
/// kept out of the per-second windows and out of the latency of the `all` row.
pub const NOT_REQUESTS: [&str; 2] = ["scan", "first-event"];

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Answered as expected.
    Ok,
    /// 429 Too Many Requests: back-pressure, counted apart from errors.
    Busy,
    /// A transport failure, a timeout, a 5xx or an unexpected status.
    Error,
}

impl Class {
    /// The class of an HTTP status: 2xx and 3xx are fine, 429 is back-pressure, the rest are errors.
    pub fn of(status: u16) -> Self {
        match status {
            200..=399 => Self::Ok,
            429 => Self::Busy,
            _ => Self::Error,
        }
    }
}

/// One request as measured.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// The request's kind (`symbol`, `page`, `health`, …).
    pub kind: &'static str,
    /// When it should have been sent (fixed rate), or when it was sent (closed loop).
    pub intended: Instant,
    /// When it was sent.
    pub sent: Instant,
    /// When the answer was read whole.
    pub done: Instant,
    /// HTTP status; 0 when there is none (transport error, or a cache lookup).
    pub status: u16,
    /// How it ended.
    pub class: Class,
}

/// Percentiles of one histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// Figures of one kind of request (or of all kinds).
#[derive(Debug, Clone)]
pub struct KindSummary {
    pub kind: String,
    /// Latency from the intended send time (corrected for coordinated omission at fixed rates).
    pub latency: Percentiles,
    /// Latency from the actual send time (the service time the client saw).
    pub service: Percentiles,
    /// How late the client sent requests (sent − intended): the client's own lag.
    pub lag: Percentiles,
    pub ok: u64,
    pub busy: u64,
    pub errors: u64,
}

/// One second of a run, for the charts.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Seconds since the run started.
    pub second: u64,
    pub count: u64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

struct KindStats {
    kind: &'static str,
    latency: Histogram<u64>,
    service: Histogram<u64>,
    lag: Histogram<u64>,
    ok: u64,
    busy: u64,
    errors: u64,
}

impl KindStats {
    fn new(kind: &'static str) -> Self {
        Self {
            kind,
            latency: histogram(3),
            service: histogram(3),
            lag: histogram(3),
            ok: 0,
            busy: 0,
            errors: 0,
        }
    }

    fn summary(&self, kind: &str) -> KindSummary {
        KindSummary {
            kind: kind.to_owned(),
            latency: Percentiles::of(&self.latency),
            service: Percentiles::of(&self.service),
            lag: Percentiles::of(&self.lag),
            ok: self.ok,
            busy: self.busy,
            errors: self.errors,
        }
    }
}

struct Current {
    second: u64,
    hist: Histogram<u64>,
}

impl Current {
    fn close(&self) -> Window {
        let ms = |q: f64| self.hist.value_at_quantile(q) as f64 / 1000.0;
        Window {
            second: self.second,
            count: self.hist.len(),
            p50: ms(0.5),
            p99: ms(0.99),
            max: self.hist.max() as f64 / 1000.0,
        }
    }
}

struct Inner {
    kinds: Vec<KindStats>,
    current: Option<Current>,
    windows: Vec<Window>,
    errors: Vec<String>,
    error_count: u64,
    last_done: Option<Instant>,
}

/// The CSV file of every sample (`samples.csv`), shared by all runs.
pub type SampleCsv = Arc<Mutex<BufWriter<File>>>;

/// Opens `samples.csv` in `dir` and writes its header.
pub fn sample_csv(dir: &Path) -> std::io::Result<SampleCsv> {
    let mut w = BufWriter::new(File::create(dir.join("samples.csv"))?);
    writeln!(w, "run,kind,t_s,latency_us,service_us,status,class")?;
    Ok(Arc::new(Mutex::new(w)))
}

/// Records the samples of one run. Shared by the run's workers.
pub struct Recorder {
    /// The run's name (`api-rate`, `api-max/symbols`, …).
    pub label: String,
    /// When the run started (sample times are relative to it).
    pub start: Instant,
    inner: Mutex<Inner>,
    csv: Option<SampleCsv>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("label", &self.label).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).clamp(1, MAX_US)
}

impl Recorder {
    /// A recorder for the run `label` starting now.
    pub fn new(label: &str, csv: Option<SampleCsv>) -> Arc<Self> {
        Arc::new(Self {
            label: label.to_owned(),
            start: Instant::now(),
            inner: Mutex::new(Inner {
                kinds: Vec::new(),
                current: None,
                windows: Vec::new(),
                errors: Vec::new(),
                error_count: 0,
                last_done: None,
            }),
            csv,
        })
    }

    /// Records one request.
    pub fn record(&self, s: Sample) {
        let latency = us(s.done.saturating_duration_since(s.intended));
        let service = us(s.done.saturating_duration_since(s.sent));
        let lag = us(s.sent.saturating_duration_since(s.intended));
        let second = s.done.saturating_duration_since(self.start).as_secs();
        {
            let mut inner = lock(&self.inner);
            let idx = match inner.kinds.iter().position(|k| k.kind == s.kind) {
                Some(i) => i,
                None => {
                    inner.kinds.push(KindStats::new(s.kind));
                    inner.kinds.len() - 1
                }
            };
            let k = &mut inner.kinds[idx];
            k.latency.saturating_record(latency);
            k.service.saturating_record(service);
            k.lag.saturating_record(lag);
            match s.class {
                Class::Ok => k.ok += 1,
                Class::Busy => k.busy += 1,
                Class::Error => k.errors += 1,
            }
            // Per-second windows of requests by completion time; a late sample of an earlier second
            // joins the current one.
            let request = !NOT_REQUESTS.contains(&s.kind);
            let roll = request && inner.current.as_ref().is_none_or(|c| second > c.second);
            if roll {
                if let Some(c) = inner.current.take() {
                    let w = c.close();
                    inner.windows.push(w);
                }
                inner.current = Some(Current {
                    second,
                    hist: histogram(2),
                });
            }
            if request && let Some(c) = &mut inner.current {
                c.hist.saturating_record(latency);
            }
            if inner.last_done.is_none_or(|t| s.done > t) {
                inner.last_done = Some(s.done);
            }
        }
        if let Some(csv) = &self.csv {
            let t = s.intended.saturating_duration_since(self.start).as_secs_f64();
            let class = match s.class {
                Class::Ok => "ok",
                Class::Busy => "busy",
                Class::Error => "error",
            };
            let _ = writeln!(
                lock(csv),
                "{},{},{t:.6},{latency},{service},{},{class}",
                self.label,
                s.kind,
                s.status
            );
        }
    }

    /// Notes an error message (the first few distinct ones are kept for the report).
    pub fn error(&self, msg: impl Into<String>) {
        let msg = msg.into();
        let mut inner = lock(&self.inner);
        inner.error_count += 1;
        if inner.errors.len() < 8 && !inner.errors.contains(&msg) {
            inner.errors.push(msg);
        }
    }

    /// Records a request's outcome: a reply's status, or a failure with its message.
    pub fn outcome(
        &self,
        kind: &'static str,
        intended: Instant,
        sent: Instant,
        result: &Result<super::http::Reply, String>,
        path: &str,
    ) -> Class {
        self.outcome_also(None, kind, intended, sent, result, path)
    }

    /// [`Recorder::outcome`], the sample also recorded in `also` (a combined run; error messages are
    /// noted here only).
    pub fn outcome_also(
        &self,
        also: Option<&Recorder>,
        kind: &'static str,
        intended: Instant,
        sent: Instant,
        result: &Result<super::http::Reply, String>,
        path: &str,
    ) -> Class {
        let done = Instant::now();
        let (status, class) = match result {
            Ok(r) => (r.status, Class::of(r.status)),
            Err(_) => (0, Class::Error),
        };
        if class == Class::Error {
            match result {
                Ok(r) => {
                    let body = String::from_utf8_lossy(&r.body);
                    let body: String = body.chars().take(160).collect();
                    self.error(format!("{kind} {path}: HTTP {status} {body}"));
                }
                Err(e) => self.error(format!("{kind} {path}: {e}")),
            }
        }
        let sample = Sample {
            kind,
            intended,
            sent,
            done,
            status,
            class,
        };
        self.record(sample);
        if let Some(also) = also {
            also.record(sample);
        }
        class
    }

    /// Everything recorded so far: per kind (in first-seen order) and all kinds together.
    pub fn finish(&self) -> RunSummary {
        let mut inner = lock(&self.inner);
        if let Some(c) = inner.current.take() {
            let w = c.close();
            inner.windows.push(w);
        }
        let mut all = KindStats::new("all");
        for k in &inner.kinds {
            // Errors of every kind count; latency and answers only of requests.
            all.errors += k.errors;
            if NOT_REQUESTS.contains(&k.kind) {
                continue;
            }
            let _ = all.latency.add(&k.latency);
            let _ = all.service.add(&k.service);
            let _ = all.lag.add(&k.lag);
            all.ok += k.ok;
            all.busy += k.busy;
        }
        let elapsed = inner
            .last_done
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(self.start));
        RunSummary {
            label: self.label.clone(),
            kinds: inner.kinds.iter().map(|k| k.summary(k.kind)).collect(),
            all: all.summary("all"),
            windows: std::mem::take(&mut inner.windows),
            elapsed,
            errors: inner.errors.clone(),
            error_notes: inner.error_count,
        }
    }

    /// Flushes the CSV file.
    pub fn flush(&self) {
        if let Some(csv) = &self.csv {
            let _ = lock(csv).flush();
        }
    }
}

/// The figures of one run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub label: String,
    pub kinds: Vec<KindSummary>,
    pub all: KindSummary,
    pub windows: Vec<Window>,
    /// From the start to the last answer.
    pub elapsed: Duration,
    /// The first distinct error messages.
    pub errors: Vec<String>,
    /// Error messages noted (requests and checks).
    pub error_notes: u64,
}

impl RunSummary {
    /// The figures of `kind`, if any request of it was made.
    pub fn kind(&self, kind: &str) -> Option<&KindSummary> {
        self.kinds.iter().find(|k| k.kind == kind)
    }

    /// Answers per second over the run.
    pub fn rate(&self, s: &KindSummary) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs <= 0.0 {
            0.0
        } else {
            (s.ok + s.busy + s.errors) as f64 / secs
        }
    }
}

/// Whose resources are sampled.
#[derive(Debug, Clone)]
pub enum Proc {
    /// This process (the server runs in it).
    This,
    /// Another process on this machine (`--pid`).
    Pid(u32),
    /// Not measurable (a remote target without `--pid`).
    Unknown,
}

impl Proc {
    fn dir(&self) -> Option<PathBuf> {
        match self {
            Self::This => Some(PathBuf::from("/proc/self")),
            Self::Pid(p) => Some(PathBuf::from(format!("/proc/{p}"))),
            Self::Unknown => None,
        }
    }
}

/// One resource sample.
#[derive(Debug, Clone, Copy)]
pub struct ResSample {
    /// Seconds since sampling started.
    pub t: f64,
    pub rss_kb: Option<u64>,
    pub hwm_kb: Option<u64>,
    pub open_files: Option<u64>,
    pub store_bytes: Option<u64>,
}

fn status_kb(dir: &Path, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The store's size on disk: the database and its `-wal` and `-shm` files.
pub fn store_bytes(path: &Path) -> Option<u64> {
    let main = std::fs::metadata(path).ok()?.len();
    let side = ["-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            std::fs::metadata(PathBuf::from(p)).ok().map(|m| m.len())
        })
        .sum::<u64>();
    Some(main + side)
}

/// Reads one sample of `proc` (and of the store file, when known) now.
pub fn sample_now(proc_: &Proc, store: Option<&Path>, t: f64) -> ResSample {
    let dir = proc_.dir();
    ResSample {
        t,
        rss_kb: dir.as_deref().and_then(|d| status_kb(d, "VmRSS:")),
        hwm_kb: dir.as_deref().and_then(|d| status_kb(d, "VmHWM:")),
        open_files: dir
            .as_deref()
            .and_then(|d| std::fs::read_dir(d.join("fd")).ok())
            .map(|entries| entries.count() as u64),
        store_bytes: store.and_then(store_bytes),
    }
}

/// Resets this process's peak RSS (`VmHWM`) so a scenario's peak is its own (Linux 4.0+). False when
/// the kernel refused.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Samples resources every `every` until stopped.
#[derive(Debug)]
pub struct Sampler {
    samples: Arc<Mutex<Vec<ResSample>>>,
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    /// Starts sampling `proc_` (and `store`) now and every `every`.
    pub fn start(proc_: Proc, store: Option<PathBuf>, every: Duration) -> Self {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = tokio_util::sync::CancellationToken::new();
        let task = {
            let (samples, stop) = (samples.clone(), stop.clone());
            tokio::spawn(async move {
                let start = Instant::now();
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tick.tick() => {
                            let s = sample_now(&proc_, store.as_deref(), start.elapsed().as_secs_f64());
                            lock(&samples).push(s);
                        }
                    }
                }
                let s = sample_now(&proc_, store.as_deref(), start.elapsed().as_secs_f64());
                lock(&samples).push(s);
            })
        };
        Self { samples, stop, task }
    }

    /// Stops and returns the samples (a last one taken now).
    pub async fn stop(self) -> Vec<ResSample> {
        self.stop.cancel();
        let _ = self.task.await;
        std::mem::take(&mut *lock(&self.samples))
    }
}

/// A small deterministic generator (SplitMix64): the same seed gives the same request mix.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform index below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.unit() * n as f64) as usize).min(n.saturating_sub(1))
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// A Zipf distribution over `n` ranks: rank `k` (from 0) is drawn with probability ∝ 1 / (k + 1)^s.
#[derive(Debug, Clone)]
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// Zipf over `n` ranks (at least one) with exponent `s`.
    pub fn new(n: usize, s: f64) -> Self {
        let mut cdf = Vec::with_capacity(n.max(1));
        let mut sum = 0.0;
        for k in 0..n.max(1) {
            sum += 1.0 / ((k + 1) as f64).powf(s);
            cdf.push(sum);
        }
        for c in &mut cdf {
            *c /= sum;
        }
        Self { cdf }
    }

    /// Draws a rank.
    pub fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cdf.partition_point(|c| *c < u).min(self.cdf.len() - 1)
    }
}
