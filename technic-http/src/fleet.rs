//! The server's part of a fleet (cargo feature `redis`): every scan's status is relayed to Redis so any
//! server answers its status, streams its events and cancels it; the cache warmer runs on one server of
//! the fleet at a time (a leader lease); `/healthz` says when Redis is down.

use std::sync::Arc;
use std::time::Duration;

use technic_core::CancellationToken;
use technic_core::fleet::{LeaderLease, RedisLink, ScanBus};
use tokio::sync::watch;

use crate::dto::ScanStatus;
use crate::scans::ScanEntry;

/// How long the warmer's lease lasts; another server takes over within this after its holder dies.
pub const WARMER_LEASE: Duration = Duration::from_secs(15);

/// Redis-backed coordination of one server with the rest of its fleet.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// The shared link.
    pub link: Arc<RedisLink>,
    /// Scan statuses across servers.
    pub bus: ScanBus,
    /// The warmer's lease.
    pub lease: Arc<LeaderLease>,
}

impl Fleet {
    /// Coordination over `link`; starts renewing the warmer lease.
    pub fn start(link: Arc<RedisLink>) -> Self {
        let lease = LeaderLease::new(link.clone(), "warmer", WARMER_LEASE);
        tokio::spawn(lease.clone().run(CancellationToken::new()));
        Self {
            bus: ScanBus::new(link.clone()),
            link,
            lease,
        }
    }

    fn cancel_key(&self, id: &str) -> String {
        self.link.key(&format!("scan:{id}:cancel"))
    }

    /// The key a scan request's response is kept under: the request without its id, the provider, and
    /// the newest session whose bar should exist (so new bars make a new key: the old answer is dropped).
    pub fn response_key(&self, req: &technic_core::ScanRequest, deps: &technic_core::Deps) -> String {
        use std::hash::{Hash, Hasher};
        let mut normal = req.clone();
        normal.id = None;
        let json = serde_json::to_string(&normal).unwrap_or_default();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        json.hash(&mut h);
        deps.provider.name().hash(&mut h);
        self.link.key(&format!(
            "response:{}:{:016x}",
            deps.market.expected_session(),
            h.finish()
        ))
    }

    /// The id of a finished scan that answered the same request since the last new bar, if any.
    pub async fn cached_response(&self, key: &str) -> Option<String> {
        let mut get = redis::cmd("GET");
        get.arg(key);
        self.link.run::<Option<String>>(&get).await.flatten()
    }

    /// Relays a scan this server runs: each status to the bus, and a cancel asked on another server to
    /// the scan. A complete scan is remembered under `response` (until the next bar is due) so the same
    /// request on any server is answered with it.
    pub fn relay(&self, entry: Arc<ScanEntry>, response: Option<(String, Duration)>) {
        let fleet = self.clone();
        tokio::spawn(async move {
            let mut rx = entry.subscribe();
            let mut check = tokio::time::interval(Duration::from_millis(300));
            loop {
                let status = rx.borrow_and_update().clone();
                if let Ok(json) = serde_json::to_string(&status) {
                    fleet.bus.publish(&entry.id, &json).await;
                }
                if status.is_terminal() {
                    if let (Some((key, ttl)), "complete") = (&response, status.state.as_str()) {
                        let mut set = redis::cmd("SET");
                        set.arg(key)
                            .arg(&entry.id)
                            .arg("PX")
                            .arg(ttl.as_millis().max(1000) as u64);
                        let _ = fleet.link.run::<()>(&set).await;
                    }
                    break;
                }
                loop {
                    tokio::select! {
                        changed = rx.changed() => {
                            if changed.is_err() {
                                return;
                            }
                            break;
                        }
                        _ = check.tick() => {
                            let mut get = redis::cmd("GET");
                            get.arg(fleet.cancel_key(&entry.id));
                            if fleet.link.run::<Option<String>>(&get).await.flatten().is_some() {
                                entry.cancel();
                            }
                        }
                    }
                }
            }
        });
    }

    /// The latest status of a scan another server runs.
    pub async fn remote_status(&self, id: &str) -> Option<ScanStatus> {
        serde_json::from_str(&self.bus.status(id).await?).ok()
    }

    /// A receiver of a remote scan's statuses, starting at `first`, fed from the bus until it ends.
    pub async fn follow(&self, id: &str, first: ScanStatus) -> watch::Receiver<ScanStatus> {
        let (tx, rx) = watch::channel(first.clone());
        if first.is_terminal() {
            return rx;
        }
        let Some(stream) = self.bus.follow(id).await else {
            return rx;
        };
        let (bus, id) = (self.bus.clone(), id.to_owned());
        tokio::spawn(async move {
            use futures::StreamExt;
            let mut stream = Box::pin(stream);
            // A status published between reading the latest and subscribing is read again here.
            if let Some(latest) = bus
                .status(&id)
                .await
                .and_then(|s| serde_json::from_str::<ScanStatus>(&s).ok())
            {
                let terminal = latest.is_terminal();
                let _ = tx.send(latest);
                if terminal {
                    return;
                }
            }
            while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(600), stream.next()).await {
                let Ok(status) = serde_json::from_str::<ScanStatus>(&msg) else {
                    continue;
                };
                let terminal = status.is_terminal();
                if tx.send(status).is_err() || terminal {
                    break;
                }
            }
        });
        rx
    }

    /// Asks the server running scan `id` to cancel it.
    pub async fn request_cancel(&self, id: &str) -> bool {
        let mut set = redis::cmd("SET");
        set.arg(self.cancel_key(id)).arg("1").arg("PX").arg(600_000u64);
        self.link.run::<()>(&set).await.is_some()
    }
}
