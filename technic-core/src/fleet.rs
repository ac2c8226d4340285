//! Several servers as one, through Redis (cargo feature `redis`): a shared link with health and bounded
//! waits ([`RedisLink`]), the fleet-wide provider rate limit ([`SharedRateLimit`], GCRA), one warmer per
//! fleet ([`LeaderLease`]) and scan progress any server can follow ([`ScanBus`]). The two-tier cache is
//! [`crate::cache::TieredCache`].
//!
//! Redis is an accelerator, never a dependency for answering: every operation has a short timeout, and
//! when Redis is unreachable the link says so ([`RedisLink::degraded`]), skips Redis for a moment instead
//! of waiting on it for every request, and reconnects by itself.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::error::{Error, Result};

/// Longest a single Redis command may take before it counts as failed.
pub const OP_TIMEOUT: Duration = Duration::from_millis(250);
/// How long Redis is skipped after a failure before it is tried again.
pub const DOWN_BACKOFF: Duration = Duration::from_secs(2);
/// Key prefix of everything Technic keeps in Redis (the version changes when a value's format does).
pub const PREFIX: &str = "technic:v1:";

/// A Redis connection shared by the parts of one server, with its health.
pub struct RedisLink {
    client: redis::Client,
    /// The URL without credentials, for messages.
    display: String,
    /// Key prefix: [`PREFIX`] plus an optional namespace (tests use one each).
    prefix: String,
    conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    down_until: Mutex<Option<Instant>>,
    last_error: Mutex<Option<String>>,
    up: AtomicBool,
    /// Commands that failed or timed out.
    pub failures: AtomicU64,
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLink")
            .field("url", &self.display)
            .field("prefix", &self.prefix)
            .field("up", &self.up.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// `redis://user:secret@host:6379/0` → `redis://host:6379/0`.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}{}", &url[..s + 3], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

impl RedisLink {
    /// A link to `url` (`redis://host:port[/db]`) whose keys start with [`PREFIX`] and `namespace`.
    /// Connects now when it can; when Redis is not reachable yet, the link starts degraded and connects
    /// on first use after the back-off. Fails only for a URL that cannot be a Redis URL.
    pub async fn open(url: &str, namespace: &str) -> Result<Arc<Self>> {
        let display = redact(url);
        let client = redis::Client::open(url).map_err(|e| {
            Error::config(format!(
                "--cache {display} is not a Redis URL ({e}); use redis://HOST:PORT[/DB]"
            ))
        })?;
        let link = Arc::new(Self {
            client,
            display,
            prefix: format!("{PREFIX}{namespace}"),
            conn: tokio::sync::Mutex::new(None),
            down_until: Mutex::new(None),
            last_error: Mutex::new(None),
            up: AtomicBool::new(false),
            failures: AtomicU64::new(0),
        });
        let _ = link.connection().await;
        Ok(link)
    }

    /// The URL without credentials.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// `PREFIX` + namespace + `rest`.
    pub fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    /// Asks Redis whether it is there (a `PING` within [`OP_TIMEOUT`]); health checks call it so a
    /// server that serves everything from memory still notices Redis going away.
    pub async fn ping(&self) -> bool {
        self.run::<String>(&redis::cmd("PING")).await.is_some()
    }

    /// `None` when Redis answers; why not otherwise.
    pub fn degraded(&self) -> Option<String> {
        if self.up.load(Ordering::Relaxed) {
            return None;
        }
        let why = self
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| "not connected yet".to_owned());
        Some(format!("Redis at {} unavailable: {why}", self.display))
    }

    fn fail(&self, why: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if self.up.swap(false, Ordering::Relaxed) {
            warn!(redis = %self.display, error = %why, "Redis unavailable; serving without it and retrying");
        }
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
        *self.down_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + DOWN_BACKOFF);
    }

    fn succeeded(&self) {
        if !self.up.swap(true, Ordering::Relaxed) {
            info!(redis = %self.display, "Redis connected");
        }
    }

    /// A connection, unless Redis failed within the back-off.
    async fn connection(&self) -> Option<ConnectionManager> {
        if self
            .down_until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| Instant::now() < t)
        {
            return None;
        }
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Some(c.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(OP_TIMEOUT))
            .set_number_of_retries(1);
        match tokio::time::timeout(
            Duration::from_secs(1),
            self.client.get_connection_manager_with_config(config),
        )
        .await
        {
            Ok(Ok(c)) => {
                self.succeeded();
                *slot = Some(c.clone());
                Some(c)
            }
            Ok(Err(e)) => {
                self.fail(e.to_string());
                None
            }
            Err(_) => {
                self.fail("connect timed out".to_owned());
                None
            }
        }
    }

    /// Runs one command (or script) on Redis within [`OP_TIMEOUT`]; `None` when Redis is down, slow or
    /// failed (recorded, and Redis is skipped for [`DOWN_BACKOFF`]).
    pub async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Option<T> {
        let mut conn = self.connection().await?;
        match tokio::time::timeout(OP_TIMEOUT, cmd.query_async::<T>(&mut conn)).await {
            Ok(Ok(v)) => {
                self.succeeded();
                Some(v)
            }
            Ok(Err(e)) => {
                self.fail(e.to_string());
                None
            }
            Err(_) => {
                self.fail(format!("no answer within {} ms", OP_TIMEOUT.as_millis()));
                None
            }
        }
    }

    /// Runs a Lua script like [`RedisLink::run`].
    pub async fn script<T: redis::FromRedisValue>(&self, inv: &redis::ScriptInvocation<'_>) -> Option<T> {
        let mut conn = self.connection().await?;
        match tokio::time::timeout(OP_TIMEOUT, inv.invoke_async::<T>(&mut conn)).await {
            Ok(Ok(v)) => {
                self.succeeded();
                Some(v)
            }
            Ok(Err(e)) => {
                self.fail(e.to_string());
                None
            }
            Err(_) => {
                self.fail(format!("no answer within {} ms", OP_TIMEOUT.as_millis()));
                None
            }
        }
    }

    /// A fresh pub/sub connection subscribed to `channel` (not shared: each follower has its own).
    pub async fn subscribe(&self, channel: &str) -> Option<redis::aio::PubSub> {
        let open = async {
            let mut ps = self.client.get_async_pubsub().await?;
            ps.subscribe(channel).await?;
            Ok::<_, redis::RedisError>(ps)
        };
        match tokio::time::timeout(Duration::from_secs(1), open).await {
            Ok(Ok(ps)) => Some(ps),
            Ok(Err(e)) => {
                self.fail(e.to_string());
                None
            }
            Err(_) => {
                self.fail("subscribe timed out".to_owned());
                None
            }
        }
    }
}

// ---------------------------------------------------------------- rate limit

/// GCRA in one round trip: the key holds the theoretical arrival time (ms); answers 0 when a call may go
/// now, else the milliseconds to wait.
const GCRA: &str = r"
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
if tat < now then tat = now end
local allow_at = tat - burst * interval
if now < allow_at then return allow_at - now end
redis.call('SET', KEYS[1], tat + interval, 'PX', math.ceil((tat + interval - now) + 1000))
return 0
";

/// The provider's request rate shared by every server of a fleet (GCRA on one Redis key per source):
/// together they never exceed the plan. Without Redis each server falls back to its own limiter.
#[derive(Debug)]
pub struct SharedRateLimit {
    link: Arc<RedisLink>,
    key: String,
    interval_ms: u64,
    burst: u64,
    script: redis::Script,
}

impl SharedRateLimit {
    /// `per_second` calls a second across the fleet for `source` (a burst of up to one second's worth).
    pub fn new(link: Arc<RedisLink>, source: &str, per_second: u32) -> Self {
        let per_second = u64::from(per_second.max(1));
        Self {
            key: link.key(&format!("ratelimit:{source}")),
            link,
            interval_ms: (1000 / per_second).max(1),
            burst: per_second.saturating_sub(1),
            script: redis::Script::new(GCRA),
        }
    }

    /// The tightest window of `limit` across the fleet for `source` (`None` when nothing is limited).
    /// Wider windows (a daily quota beside a per-minute rate) are kept by each server's own limiter.
    pub fn with_limit(
        link: Arc<RedisLink>,
        source: &str,
        limit: &crate::provider::RateLimit,
    ) -> Option<Self> {
        let w = limit.windows().first()?;
        Some(Self {
            key: link.key(&format!("ratelimit:{source}")),
            link,
            interval_ms: (w.interval.as_millis() as u64).max(1),
            burst: u64::from(w.burst.get()).saturating_sub(1),
            script: redis::Script::new(GCRA),
        })
    }

    /// Waits until the fleet may make one more call; returns at once when Redis is unavailable (the
    /// server's own limiter still applies).
    pub async fn acquire(&self) {
        for _ in 0..1000 {
            let now = chrono::Utc::now().timestamp_millis();
            let mut inv = self.script.key(&self.key);
            inv.arg(now).arg(self.interval_ms).arg(self.burst);
            match self.link.script::<i64>(&inv).await {
                Some(0) | None => return,
                Some(wait) => tokio::time::sleep(Duration::from_millis(wait.clamp(1, 5000) as u64)).await,
            }
        }
    }
}

// ---------------------------------------------------------------- leader lease

/// Renews the lease only when this server still holds it.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// One holder per fleet for a role (the cache warmer): a Redis key with a time limit, renewed by its
/// holder; when the holder dies the key expires and another server takes over within one lease.
#[derive(Debug)]
pub struct LeaderLease {
    link: Arc<RedisLink>,
    key: String,
    token: String,
    lease: Duration,
    leader: AtomicBool,
}

impl LeaderLease {
    /// A lease on `role`, held `lease` at a time.
    pub fn new(link: Arc<RedisLink>, role: &str, lease: Duration) -> Arc<Self> {
        Arc::new(Self {
            key: link.key(&format!("leader:{role}")),
            link,
            token: uuid::Uuid::now_v7().to_string(),
            lease,
            leader: AtomicBool::new(false),
        })
    }

    /// Whether this server held the lease at its last attempt.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed)
    }

    /// One attempt: renew when held, else try to take it. Without Redis, nobody is leader through it
    /// (the caller decides what that means; the warmer keeps running on its own server).
    pub async fn tick(&self) -> bool {
        let ms = self.lease.as_millis() as u64;
        let held = if self.is_leader() {
            let renewed = self
                .link
                .script::<i64>(redis::Script::new(RENEW).key(&self.key).arg(&self.token).arg(ms))
                .await;
            renewed == Some(1)
        } else {
            let mut cmd = redis::cmd("SET");
            cmd.arg(&self.key).arg(&self.token).arg("NX").arg("PX").arg(ms);
            self.link.run::<Option<String>>(&cmd).await.flatten().is_some()
        };
        if held != self.leader.swap(held, Ordering::Relaxed) {
            info!(role = %self.key, leader = held, "fleet lease changed hands");
        }
        held
    }

    /// Keeps trying (a third of the lease apart) until `cancel`; gives the lease back on the way out.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(self.lease / 3);
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                _ = tick.tick() => { self.tick().await; }
            }
        }
        if self.is_leader() {
            let release = r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";
            let _ = self
                .link
                .script::<i64>(redis::Script::new(release).key(&self.key).arg(&self.token))
                .await;
        }
    }
}

// ---------------------------------------------------------------- scan bus

/// Scan progress across a fleet: every status a server publishes for a scan is also kept as the scan's
/// latest (for an hour), so another server answers `GET /scans/{id}` and streams its events.
#[derive(Debug, Clone)]
pub struct ScanBus {
    link: Arc<RedisLink>,
}

/// How long the latest status of a scan is kept in Redis.
pub const STATUS_TTL: Duration = Duration::from_secs(3600);

impl ScanBus {
    /// A bus on `link`.
    pub fn new(link: Arc<RedisLink>) -> Self {
        Self { link }
    }

    fn channel(&self, id: &str) -> String {
        self.link.key(&format!("scan:{id}:events"))
    }

    fn latest(&self, id: &str) -> String {
        self.link.key(&format!("scan:{id}:status"))
    }

    /// Publishes `status` (JSON) for scan `id` and keeps it as the latest.
    pub async fn publish(&self, id: &str, status: &str) {
        let mut set = redis::cmd("SET");
        set.arg(self.latest(id))
            .arg(status)
            .arg("PX")
            .arg(STATUS_TTL.as_millis() as u64);
        let _ = self.link.run::<()>(&set).await;
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(self.channel(id)).arg(status);
        let _ = self.link.run::<i64>(&publish).await;
    }

    /// The latest status of scan `id` published by any server.
    pub async fn status(&self, id: &str) -> Option<String> {
        let mut get = redis::cmd("GET");
        get.arg(self.latest(id));
        self.link.run::<Option<String>>(&get).await.flatten()
    }

    /// The statuses published for scan `id` from now on, as a stream (ends when Redis drops it).
    pub async fn follow(&self, id: &str) -> Option<impl futures::Stream<Item = String> + Send + use<>> {
        let ps = self.link.subscribe(&self.channel(id)).await?;
        Some(
            ps.into_on_message()
                .filter_map(|m| async move { m.get_payload::<String>().ok() }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_credentials() {
        assert_eq!(redact("redis://user:secret@h:6379/2"), "redis://h:6379/2");
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}

/// A [`crate::provider::CallLayer`] that waits for the fleet's [`SharedRateLimit`] before every provider
/// call: `Layered::new(provider, FleetRate(limit))`.
#[derive(Debug, Clone)]
pub struct FleetRate(pub Arc<SharedRateLimit>);

impl crate::provider::CallLayer for FleetRate {
    fn around<'a, T: Send + 'a>(
        &'a self,
        _what: &'a str,
        op: crate::provider::Op<'a, T>,
    ) -> futures::future::BoxFuture<'a, Result<T>> {
        Box::pin(async move {
            self.0.acquire().await;
            op().await
        })
    }
}
