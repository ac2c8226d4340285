//! [`WriteBudget`]: how many state changes (`POST`, `PUT`, `PATCH`, `DELETE`) one client may make a minute,
//! so one client cannot fill the store or the scan queue for everyone (each scan of 5,000 symbols stores
//! about 2 MB). A token bucket per client address: `per_minute` a minute, a burst of a quarter of that
//! (at least 1). Over budget is `429` with `Retry-After`; reads are never counted.
//!
//! The client address comes from the connection ([`ClientAddr`], set by [`crate::serve`]); a router
//! mounted in another server without it has no per-client budget (that server's own limits apply).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The client that sent a request, as [`crate::serve`] accepted its connection: its IPv4 address, or its
/// IPv6 /64 network (one host usually owns a whole /64), as for the connection share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Most clients tracked at once; idle ones (bucket full again) are forgotten first.
const MAX_CLIENTS: usize = 16_384;

/// State changes per minute per client; see the module documentation.
#[derive(Debug)]
pub struct WriteBudget {
    per_minute: u32,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl WriteBudget {
    /// `per_minute` state changes a minute per client; 0 for no budget.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            burst: f64::from((per_minute / 4).max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one state change for `client`: `Ok` when it may go, else how long until it may.
    pub fn take(&self, client: IpAddr) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let rate = f64::from(self.per_minute) / 60.0;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_CLIENTS && !buckets.contains_key(&client) {
            let burst = self.burst;
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry(client).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_the_rate_per_client() {
        let budget = WriteBudget::new(60);
        let a = ip("127.0.0.2");
        for _ in 0..15 {
            budget.take(a).unwrap();
        }
        let wait = budget.take(a).unwrap_err();
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::ZERO,
            "{wait:?}"
        );
        // Another client is not affected.
        budget.take(ip("127.0.0.3")).unwrap();
        // One a second comes back.
        tokio::time::advance(Duration::from_millis(1001)).await;
        budget.take(a).unwrap();
        assert!(budget.take(a).is_err());
        // Idle for long, the burst is back, never more.
        tokio::time::advance(Duration::from_secs(3600)).await;
        for _ in 0..15 {
            budget.take(a).unwrap();
        }
        assert!(budget.take(a).is_err());
        // 0 is no budget.
        let open = WriteBudget::new(0);
        for _ in 0..10_000 {
            open.take(a).unwrap();
        }
    }
}
