//! A small HTTP/1.1 client on hyper's connection API: one TCP connection per [`Client`], reopened when
//! the server closed it or it sat idle, every call bounded by a timeout. Also the `--target` check
//! (loopback only unless `--allow-remote`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Longest a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest one request may take, body included (the server's own limit is 30 s).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(35);
/// A connection idle longer than this is reopened before use (the server closes idle connections after
/// its header-read timeout, 10 s by default).
const MAX_IDLE: Duration = Duration::from_secs(4);

/// Where the load goes: the address connected to and the `Host` header sent.
#[derive(Debug, Clone)]
pub struct Target {
    /// The socket address.
    pub addr: SocketAddr,
    /// `Host` header value (the URL's authority).
    pub host: String,
    /// The base URL, for messages.
    pub base: String,
}

impl Target {
    /// An in-process server on a loopback address.
    pub fn local(addr: SocketAddr) -> Self {
        Self {
            addr,
            host: addr.to_string(),
            base: format!("http://{addr}"),
        }
    }

    /// Parses `--target`: `http://HOST[:PORT]` with no path. Loopback addresses (127.0.0.0/8, ::1,
    /// `localhost`) are accepted; anything else only with `allow_remote`.
    pub async fn parse(url: &str, allow_remote: bool) -> Result<Self, String> {
        let url = url.trim();
        let rest = match url.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("http://") => &url[7..],
            _ => {
                return Err(format!(
                    "--target {url:?}: give an http:// URL such as http://127.0.0.1:8003 (the load test speaks plain HTTP/1.1)"
                ));
            }
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if !path.is_empty() || authority.contains('@') || authority.contains('?') || authority.contains('#') {
            return Err(format!(
                "--target {url:?}: give the server's base URL only, such as http://127.0.0.1:8003 (no path, query or user)"
            ));
        }
        let (host, port) = split_host_port(authority)
            .ok_or_else(|| format!("--target {url:?}: cannot read a host and port in {authority:?}"))?;
        let remote_refused = |what: &str| {
            format!(
                "--target {url:?}: {what} is not a loopback address; the load test only loads 127.0.0.1, ::1 or \
                 localhost unless --allow-remote is passed (and then only a server you may load)"
            )
        };
        let addr = if let Ok(ip) = host.parse::<IpAddr>() {
            if !ip.is_loopback() && !allow_remote {
                return Err(remote_refused(host));
            }
            SocketAddr::new(ip, port)
        } else if host.eq_ignore_ascii_case("localhost") {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
        } else if !allow_remote {
            return Err(remote_refused(host));
        } else {
            tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| format!("--target {url:?}: cannot resolve {host}: {e}"))?
                .next()
                .ok_or_else(|| format!("--target {url:?}: {host} has no address"))?
        };
        Ok(Self {
            addr,
            host: authority.to_owned(),
            base: format!("http://{authority}"),
        })
    }

    /// True when the target is this machine (same clock, same `/proc`).
    pub fn is_loopback(&self) -> bool {
        self.addr.ip().is_loopback()
    }
}

/// `127.0.0.1:8003` → (`127.0.0.1`, 8003); `[::1]:80` → (`::1`, 80); no port → 80.
fn split_host_port(authority: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        None => 80,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0)?,
    };
    Some((host, port))
}

/// An HTTP response read whole.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// `Retry-After` in seconds, when sent.
    pub retry_after: Option<u64>,
    /// The body.
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("response is not JSON: {e}"))
    }
}

/// How a server-sent event stream ended.
#[derive(Debug)]
pub struct EventsEnd {
    /// The final event's name (`complete`, `cancelled`, `failed`).
    pub last: String,
    /// When the first event arrived.
    pub first_at: Option<Instant>,
}

struct Conn {
    sender: SendRequest<Full<Bytes>>,
    last_used: Instant,
}

/// One connection to the target, reopened as needed. Not shared: each worker owns one.
pub struct Client {
    target: std::sync::Arc<Target>,
    host: HeaderValue,
    conn: Option<Conn>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("target", &self.target.base)
            .field("open", &self.conn.is_some())
            .finish()
    }
}

impl Client {
    /// A client for `target`; connects on first use.
    pub fn new(target: std::sync::Arc<Target>) -> Result<Self, String> {
        let host = HeaderValue::from_str(&target.host).map_err(|e| format!("bad Host header: {e}"))?;
        Ok(Self {
            target,
            host,
            conn: None,
        })
    }

    async fn connection(&mut self) -> Result<&mut Conn, String> {
        let stale = self
            .conn
            .as_ref()
            .is_none_or(|c| c.sender.is_closed() || c.last_used.elapsed() > MAX_IDLE);
        if stale {
            self.conn = None;
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(self.target.addr))
                .await
                .map_err(|_| format!("connecting to {} timed out", self.target.addr))?
                .map_err(|e| format!("cannot connect to {}: {e}", self.target.addr))?;
            stream
                .set_nodelay(true)
                .map_err(|e| format!("cannot set TCP_NODELAY: {e}"))?;
            let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP handshake failed: {e}"))?;
            tokio::spawn(async move {
                let _ = driver.await;
            });
            self.conn = Some(Conn {
                sender,
                last_used: Instant::now(),
            });
        }
        self.conn.as_mut().ok_or_else(|| "no connection".to_owned())
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        json: Option<&str>,
        accept: Option<&'static str>,
    ) -> Result<Response<Incoming>, String> {
        let host = self.host.clone();
        let conn = self.connection().await?;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, host);
        if let Some(accept) = accept {
            req = req.header(header::ACCEPT, accept);
        }
        let body = match json {
            Some(text) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Full::new(Bytes::copy_from_slice(text.as_bytes()))
            }
            None => Full::new(Bytes::new()),
        };
        let req = req.body(body).map_err(|e| format!("bad request {path}: {e}"))?;
        conn.sender
            .ready()
            .await
            .map_err(|e| format!("connection lost: {e}"))?;
        let res = conn
            .sender
            .send_request(req)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        conn.last_used = Instant::now();
        Ok(res)
    }

    /// One request, its body read whole, within [`REQUEST_TIMEOUT`]. Any failure closes the connection.
    pub async fn call(&mut self, method: Method, path: &str, json: Option<&str>) -> Result<Reply, String> {
        let result = tokio::time::timeout(REQUEST_TIMEOUT, async {
            let res = self.send(method, path, json, None).await?;
            let status = res.status().as_u16();
            let retry_after = res
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let body = res
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("reading the body failed: {e}"))?
                .to_bytes();
            Ok::<_, String>(Reply {
                status,
                retry_after,
                body,
            })
        })
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())));
        match result {
            Ok(reply) => {
                if let Some(c) = &mut self.conn {
                    c.last_used = Instant::now();
                }
                Ok(reply)
            }
            Err(e) => {
                self.conn = None;
                Err(e)
            }
        }
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> Result<Reply, String> {
        self.call(Method::GET, path, None).await
    }

    /// Follows a scan's server-sent events until the final one (`complete`, `cancelled`, `failed`) or
    /// `deadline`. A non-200 answer is returned as `Err` with its status.
    pub async fn follow_events(&mut self, path: &str, deadline: Instant) -> Result<EventsEnd, String> {
        let result = self.follow_inner(path, deadline).await;
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    async fn follow_inner(&mut self, path: &str, deadline: Instant) -> Result<EventsEnd, String> {
        let left = |d: Instant| d.saturating_duration_since(Instant::now());
        let res = tokio::time::timeout(
            left(deadline).min(REQUEST_TIMEOUT),
            self.send(Method::GET, path, None, Some("text/event-stream")),
        )
        .await
        .map_err(|_| "no answer to the event stream request".to_owned())??;
        if res.status() != hyper::StatusCode::OK {
            return Err(format!("event stream answered {}", res.status().as_u16()));
        }
        let mut body = res.into_body();
        let mut buf = String::new();
        let mut events = 0;
        let mut first_at = None;
        loop {
            let frame = tokio::time::timeout(left(deadline), body.frame())
                .await
                .map_err(|_| format!("event stream still open after the deadline ({events} events)"))?;
            let Some(frame) = frame else {
                return Err(format!(
                    "event stream ended without a final event ({events} events)"
                ));
            };
            let frame = frame.map_err(|e| format!("event stream broke: {e}"))?;
            let Ok(data) = frame.into_data() else { continue };
            buf.push_str(&String::from_utf8_lossy(&data));
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                let name = block
                    .lines()
                    .find_map(|l| l.strip_prefix("event:"))
                    .map(str::trim);
                let Some(name) = name else { continue }; // keep-alive comment
                events += 1;
                first_at.get_or_insert_with(Instant::now);
                if matches!(name, "complete" | "cancelled" | "failed") {
                    // The server ends the stream after the final event; read to the end so the
                    // connection can be reused.
                    let _ = tokio::time::timeout(Duration::from_secs(1), async {
                        while let Some(Ok(_)) = body.frame().await {}
                    })
                    .await;
                    if let Some(c) = &mut self.conn {
                        c.last_used = Instant::now();
                    }
                    return Ok(EventsEnd {
                        last: name.to_owned(),
                        first_at,
                    });
                }
            }
        }
    }
}

/// `s` made safe for a URL path segment (tickers are letters, digits, `.` and `-`; anything else is
/// percent-encoded).
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
