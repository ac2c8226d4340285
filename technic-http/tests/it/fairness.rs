//! Fair connections: one client that opens more connections than its share — a slowloris that trickles
//! header lines and reconnects when cut off, or a crowd of idle keep-alive connections — keeps at most its
//! share, and `/healthz` probes from another address are all answered promptly meanwhile.
//!
//! Every test client is on loopback, so the attacker binds its sockets to 127.0.0.2 (all of 127.0.0.0/8 is
//! loopback on Linux) while the prober connects from 127.0.0.1: two client addresses, one machine. The
//! global cap is lowered to 128 so that 300 attacking connections would fill it without the per-client
//! share (then the probes are refused: the test fails on a server without the share).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use technic_core::{Deps, MemoryCache, SyntheticConfig, SyntheticProvider};
use technic_http::{AppState, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// The attacker's own loopback address.
const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// Connections the attacker keeps trying to hold: over the global cap of the test server.
const ATTACKERS: usize = 300;
const MAX_CONNECTIONS: usize = 128;
const PER_CLIENT: usize = 16;
/// How long the attack lasts; probes run through it after a short ramp-up.
const ATTACK: Duration = Duration::from_secs(6);
const RAMP_UP: Duration = Duration::from_millis(700);
/// Every probe must be answered 200 within this: long enough for one retransmitted SYN (Linux waits 1 s
/// before resending one the full accept queue dropped, which a reconnect flood can cause on a loaded
/// machine), far shorter than starvation (without the share, no probe is answered at all).
const PROBE_BOUND: Duration = Duration::from_millis(2500);

#[derive(Debug, Clone, Copy)]
enum Attack {
    /// Sends a request line and a header, then one more header line every 200 ms, never finishing.
    Slowloris,
    /// Sends one whole keep-alive request, reads the answer, then stays idle.
    IdleKeepAlive,
}

async fn start(config: ServerConfig) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let deps = Deps::new(
        Arc::new(SyntheticProvider::new(SyntheticConfig {
            n_symbols: 5,
            n_bars: 260,
            ..SyntheticConfig::default()
        })),
        Arc::new(MemoryCache::default()),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        technic_http::serve(listener, AppState::new(deps, config), async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (addr, tx)
}

async fn connect_from(from: IpAddr, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(server).await
}

/// One attacking connection, reopened whenever the server closes it, until `until`. Returns whether it
/// held a connection the server had kept open for at least a second when the attack ended.
async fn attack(kind: Attack, server: SocketAddr, until: Instant) -> bool {
    let mut buf = [0u8; 1024];
    while Instant::now() < until {
        let Ok(mut stream) = connect_from(ATTACKER, server).await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let opened = Instant::now();
        let first: &[u8] = match kind {
            Attack::Slowloris => b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n",
            Attack::IdleKeepAlive => b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        };
        if stream.write_all(first).await.is_ok() {
            loop {
                let now = Instant::now();
                if now >= until {
                    return now - opened >= Duration::from_secs(1);
                }
                let tick = (until - now).min(Duration::from_millis(200));
                tokio::select! {
                    read = stream.read(&mut buf) => match read {
                        // The answer to the keep-alive request: stay idle on the open connection.
                        Ok(n) if n > 0 => {}
                        // Closed by the server (over the share, or timed out).
                        _ => break,
                    },
                    () = tokio::time::sleep(tick) => {
                        if matches!(kind, Attack::Slowloris) && stream.write_all(b"X-Pad: 1\r\n").await.is_err() {
                            break;
                        }
                    }
                }
            }
        }
        // Reconnect at once, as an attacker would (a short pause keeps the test's own CPU use bounded).
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// One `/healthz` request on a new connection from 127.0.0.1: its latency when answered 200.
async fn probe(server: SocketAddr) -> Result<Duration, String> {
    let started = Instant::now();
    let request = async {
        let mut stream = TcpStream::connect(server).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await?;
        let mut got = Vec::new();
        stream.read_to_end(&mut got).await?;
        std::io::Result::Ok(got)
    };
    match tokio::time::timeout(PROBE_BOUND, request).await {
        Err(_) => Err(format!("no answer within {PROBE_BOUND:?}")),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(got)) if got.starts_with(b"HTTP/1.1 200") => Ok(started.elapsed()),
        Ok(Ok(got)) => Err(format!(
            "answered {:?}",
            String::from_utf8_lossy(&got[..got.len().min(40)])
        )),
    }
}

/// Runs `kind` from 127.0.0.2 against a server with the test limits while probing from 127.0.0.1; checks
/// that every probe was answered within the bound and that the attacker held at most its share.
async fn attack_and_probe(kind: Attack) {
    let (server, stop) = start(ServerConfig {
        max_connections: MAX_CONNECTIONS,
        max_connections_per_client: PER_CLIENT,
        ..ServerConfig::default()
    })
    .await;
    let until = Instant::now() + ATTACK;
    let attackers: Vec<_> = (0..ATTACKERS)
        .map(|_| tokio::spawn(attack(kind, server, until)))
        .collect();
    tokio::time::sleep(RAMP_UP).await;
    let mut answered = Vec::new();
    let mut failed = Vec::new();
    while Instant::now() + PROBE_BOUND < until {
        match probe(server).await {
            Ok(took) => answered.push(took),
            Err(e) => failed.push(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut held = 0;
    for a in attackers {
        held += usize::from(a.await.unwrap());
    }
    let _ = stop.send(());
    answered.sort();
    let slowest = answered.last().copied().unwrap_or_default();
    println!(
        "{kind:?}: {} of {} probes answered (slowest {slowest:?}, median {:?}); the attacker held {held} \
         connections (share {PER_CLIENT})",
        answered.len(),
        answered.len() + failed.len(),
        answered.get(answered.len() / 2).copied().unwrap_or_default(),
    );
    assert!(
        answered.len() + failed.len() >= 10,
        "too few probes ran: {}",
        answered.len() + failed.len()
    );
    assert!(
        failed.is_empty(),
        "{kind:?}: {} of {} probes failed while another client attacked: {failed:?}",
        failed.len(),
        answered.len() + failed.len()
    );
    assert!(
        held <= PER_CLIENT,
        "{kind:?}: the attacker held {held} connections, over its share of {PER_CLIENT}"
    );
    assert!(held >= 1, "{kind:?}: the attacker got no connection at all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_slowloris_client_cannot_starve_healthz() {
    attack_and_probe(Attack::Slowloris).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_of_one_client_cannot_starve_healthz() {
    attack_and_probe(Attack::IdleKeepAlive).await;
}
