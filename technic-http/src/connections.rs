//! The accept loop and its connection limits: a global cap on open connections and a smaller share per
//! client address, so one client (slowloris, idle keep-alive connections, a runaway script) cannot take
//! every connection and starve the others, `/healthz` included.
//!
//! A connection holds one global permit and one of its client's slots until it closes; a connection over
//! either limit is closed at once, before a byte of it is read. Clients are told apart by their address as
//! the socket reports it: an IPv4 address, or the /64 prefix of an IPv6 address (one host usually holds a
//! whole /64, so counting single IPv6 addresses would be no limit at all). Behind a reverse proxy every
//! client has the proxy's address: there the proxy must limit clients and the per-client share is turned
//! off (`max_connections_per_client = 0`).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use tokio::net::TcpListener;

use crate::ServerConfig;

/// Connection limits of the accept loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    max_connections: usize,
    /// 0: no per-client share (only the global cap).
    max_per_client: usize,
    header_read_timeout: Duration,
}

impl From<&ServerConfig> for Limits {
    fn from(c: &ServerConfig) -> Self {
        Self {
            max_connections: c.max_connections.max(1),
            max_per_client: c.max_connections_per_client,
            header_read_timeout: c.header_read_timeout,
        }
    }
}

/// The client a connection is counted against: its IPv4 address, or the /64 network of its IPv6 address
/// (IPv4-mapped IPv6 addresses count as the IPv4 address they carry).
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

/// Open connections per client. Entries exist only while a client has a connection open, so the map
/// holds at most as many entries as the global cap allows connections.
#[derive(Debug)]
pub(crate) struct ClientSlots {
    max_per_client: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl ClientSlots {
    pub(crate) fn new(max_per_client: usize) -> Arc<Self> {
        Arc::new(Self {
            max_per_client,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// One slot of `ip`'s client, or `None` when it already holds its share.
    pub(crate) fn try_take(self: &Arc<Self>, ip: IpAddr) -> Option<ClientSlot> {
        let key = client_key(ip);
        if self.max_per_client > 0 {
            let mut open = self
                .open
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let n = open.entry(key).or_insert(0);
            if *n >= self.max_per_client {
                return None;
            }
            *n += 1;
        }
        Some(ClientSlot {
            slots: self.clone(),
            key,
        })
    }

    /// Connections `ip`'s client holds now.
    pub(crate) fn open(&self, ip: IpAddr) -> usize {
        let open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        open.get(&client_key(ip)).copied().unwrap_or(0)
    }
}

/// A client's slot, given back when dropped (whether the connection ended or its task was cancelled).
#[derive(Debug)]
pub(crate) struct ClientSlot {
    slots: Arc<ClientSlots>,
    key: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        if self.slots.max_per_client == 0 {
            return;
        }
        let mut open = self
            .slots
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Counts refused connections and logs them at most every 10 s: under a flood of reconnecting
/// connections one line per refusal would be a flood of its own.
#[derive(Debug)]
struct Refusals {
    per_client: u64,
    global: u64,
    last_log: Option<Instant>,
}

impl Refusals {
    const EVERY: Duration = Duration::from_secs(10);

    fn record(&mut self, peer: std::net::SocketAddr, per_client: bool, limits: Limits) {
        if per_client {
            self.per_client += 1;
        } else {
            self.global += 1;
        }
        if self.last_log.is_some_and(|t| t.elapsed() < Self::EVERY) {
            return;
        }
        tracing::warn!(
            last = %peer,
            over_client_share = self.per_client,
            over_global_cap = self.global,
            max_connections = limits.max_connections,
            max_per_client = limits.max_per_client,
            "connections refused (counts since the last such line; more are logged at most every 10 s)"
        );
        self.per_client = 0;
        self.global = 0;
        self.last_log = Some(Instant::now());
    }
}

/// Accepts connections until `shutdown`, then lets open connections finish (at most 10 s). Each
/// connection must send a request's headers within the header-read timeout (also while idle between
/// keep-alive requests), or it is closed; connections over the global cap or over their client's share
/// are closed at once.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let clients = ClientSlots::new(limits.max_per_client);
    let mut refusals = Refusals {
        per_client: 0,
        global: 0,
        last_log: None,
    };
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    // One connection builder for all: its settings never change.
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    loop {
        let (stream, peer) = tokio::select! {
            // Shutdown first: its first poll installs the signal handlers (`shutdown_signal`), which
            // must happen before any connection is served.
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // The client's share first: a client over it never takes one of the global permits.
        let Some(slot) = clients.try_take(peer.ip()) else {
            refusals.record(peer, true, limits);
            drop(stream);
            continue;
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refusals.record(peer, false, limits);
            drop(stream);
            continue;
        };
        tracing::trace!(%peer, client_open = clients.open(peer.ip()), "connection accepted");
        let _ = stream.set_nodelay(true);
        // Each request carries its client (address, or IPv6 /64) for the per-client write budget.
        let client = crate::budget::ClientAddr(client_key(peer.ip()));
        let service = tower::ServiceExt::map_request(
            app.clone(),
            move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(client);
                req
            },
        );
        let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection closed");
            }
            drop((permit, slot));
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("open connections did not finish within 10 s; closing them");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn clients_are_ipv4_addresses_and_ipv6_networks() {
        assert_eq!(client_key(ip("127.0.0.2")), ip("127.0.0.2"));
        assert_eq!(client_key(ip("::ffff:10.1.2.3")), ip("10.1.2.3"));
        assert_eq!(client_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            client_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            client_key(ip("2001:db8:1:2::5"))
        );
        assert_ne!(
            client_key(ip("2001:db8:1:3::1")),
            client_key(ip("2001:db8:1:2::1"))
        );
    }

    #[test]
    fn a_client_holds_at_most_its_share_and_gets_slots_back() {
        let slots = ClientSlots::new(2);
        let a = ip("127.0.0.2");
        let first = slots.try_take(a).unwrap();
        let _second = slots.try_take(a).unwrap();
        assert!(slots.try_take(a).is_none(), "a third slot over a share of 2");
        assert!(
            slots.try_take(ip("127.0.0.1")).is_some(),
            "another client is served"
        );
        drop(first);
        assert_eq!(slots.open(a), 1);
        assert!(slots.try_take(a).is_some(), "a freed slot is reusable");
    }

    #[test]
    fn the_map_forgets_clients_without_connections() {
        let slots = ClientSlots::new(4);
        for i in 0..100u8 {
            drop(slots.try_take(IpAddr::from([10, 0, 0, i])).unwrap());
        }
        assert!(slots.open.lock().unwrap().is_empty());
    }

    #[test]
    fn zero_means_no_share() {
        let slots = ClientSlots::new(0);
        let held: Vec<_> = (0..500)
            .map(|_| slots.try_take(ip("127.0.0.2")).unwrap())
            .collect();
        assert_eq!(held.len(), 500);
        assert!(slots.open.lock().unwrap().is_empty());
    }
}
