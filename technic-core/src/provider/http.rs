//! [`HttpProvider`]: daily bars and the universe from a Polygon-style HTTP API, over reqwest with rustls.
//!
//! Bars come from `GET {base}/v2/aggs/ticker/{SYM}/range/1/day/{from}/{to}?adjusted=true&sort=asc&limit=50000`,
//! a whole market's bars of one session from `GET {base}/v2/aggs/grouped/locale/us/market/stocks/{date}?adjusted=true`
//! and the universe from `GET {base}/v3/reference/tickers?market=stocks&active=true&limit=1000`, both
//! following `next_url` pages. The API key travels in the `Authorization: Bearer` header of every request
//! (marked sensitive, so no HTTP library logs it), never in a URL: an `apiKey` a `next_url` carries is
//! dropped. Every URL that reaches a log line or an error is still redacted, and error bodies and library
//! messages are scrubbed of the key in each of its spellings (raw, URL- and form-encoded), so the key never
//! leaves this module.
//!
//! Failures map onto [`Error`]: 429, 5xx, timeouts and connect errors are [`Error::Unavailable`] (with
//! `Retry-After`), 401/403 [`Error::Rejected`], 404 or no results [`Error::NotFound`], a malformed body
//! [`Error::InvalidData`] naming the symbol. Retrying is [`super::Resilient`]'s job, not this one's.

mod response;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::Url;
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;
use tracing::{debug, trace};

use super::DataProvider;
use crate::error::{Error, Result};
use chrono::NaiveDate;

use crate::model::{Bar, Bars, DateRange, Symbol, Universe};

pub use super::key::{ApiKey, DEFAULT_BASE_URL};

/// The name of the query parameter an API may also take the key in; never sent, removed from `next_url`s.
const KEY_PARAM: &str = "apiKey";

/// What redacted URLs show in place of the key.
const REDACTED: &str = "REDACTED";

/// Errors name this service; its user message reads "Data provider temporarily unavailable".
const SERVICE: &str = "data provider";

/// Settings of an [`HttpProvider`].
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Scheme, host and optional path prefix, e.g. `https://api.polygon.io` or a local mock server.
    pub base_url: String,
    /// The API key.
    pub api_key: ApiKey,
    /// Time allowed to open a connection (reqwest has no default).
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, body included (reqwest has no default).
    pub request_timeout: Duration,
    /// Requests in flight at once; also the idle connections kept per host.
    pub max_connections: usize,
    /// Outbound rate limit: every window must allow a request, retries and follow-up pages included.
    pub rate_limit: super::RateLimit,
    /// How long the listed universe is reused before it is fetched again.
    pub universe_ttl: Duration,
    /// Most `next_url` pages followed for one request, a guard against a server that loops.
    pub max_pages: usize,
}

impl HttpConfig {
    /// Defaults for `base_url` and `api_key`: 5 s to connect, 30 s per request, 16 connections,
    /// 50 requests per second, the universe kept for a day.
    pub fn new(base_url: impl Into<String>, api_key: ApiKey) -> Self {
        Self {
            base_url: base_url.into(),
            api_key,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_connections: 16,
            rate_limit: super::RateLimit::per_second(50),
            universe_ttl: Duration::from_secs(24 * 3600),
            max_pages: 1000,
        }
    }
}

/// The HTTP data provider.
pub struct HttpProvider {
    client: reqwest::Client,
    base: Url,
    config: HttpConfig,
    connections: Semaphore,
    limiters: Vec<DefaultDirectRateLimiter>,
    universe: Mutex<Option<(Instant, Universe)>>,
}

impl fmt::Debug for HttpProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpProvider")
            .field("base", &self.base.as_str())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl HttpProvider {
    /// A provider for `config`. Fails with [`Error::Config`] on a bad base URL or a missing key.
    pub fn new(config: HttpConfig) -> Result<Self> {
        if config.api_key.is_empty() {
            return Err(Error::config(
                "no API key: set POLYGON_API_KEY to your Polygon API key",
            ));
        }
        if reqwest::header::HeaderValue::from_str(config.api_key.expose()).is_err() {
            return Err(Error::config(
                "the API key holds a character no HTTP header can carry (a line break or other control \
                 character): check POLYGON_API_KEY",
            ));
        }
        let base = Url::parse(config.base_url.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| Error::config(format!("base URL `{}` is not an http(s) URL", config.base_url)))?;
        // TLS uses rustls with the `ring` provider; a provider the program installed first is kept.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_max_idle_per_host(config.max_connections)
            .user_agent(concat!("technic/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::config(format!("cannot build the HTTP client: {e}")))?;
        let limiters = config
            .rate_limit
            .windows()
            .iter()
            .filter_map(|w| {
                Quota::with_period(w.interval).map(|q| RateLimiter::direct(q.allow_burst(w.burst)))
            })
            .collect();
        Ok(Self {
            client,
            base,
            connections: Semaphore::new(config.max_connections.max(1)),
            limiters,
            universe: Mutex::new(None),
            config,
        })
    }

    /// `{base}{path}` with `query` appended.
    fn endpoint(&self, path: &str, query: &[(&str, &str)]) -> Result<Url> {
        let joined = format!("{}{path}", self.base.as_str().trim_end_matches('/'));
        let mut url = Url::parse(&joined).map_err(|e| Error::internal(format!("bad URL {path}: {e}")))?;
        url.query_pairs_mut().extend_pairs(query);
        Ok(without_key(url))
    }

    /// A `next_url` from the API, without any key it carries. It must point at the configured server:
    /// following a link elsewhere would hand the key to another host.
    fn next_page(&self, next: &str, subject: &str) -> Result<Url> {
        let url = Url::parse(next)
            .ok()
            .filter(|u| u.origin() == self.base.origin())
            .ok_or_else(|| {
                let shown = Url::parse(next).map_or_else(|_| "an unparsable URL".to_owned(), |u| redact(&u));
                Error::invalid_data(
                    subject,
                    format!("next_url points at {shown}, not the configured server"),
                )
            })?;
        Ok(without_key(url))
    }

    /// Removes the key, in every spelling, from text that came from outside (error bodies, library error
    /// messages).
    fn scrub(&self, text: &str) -> String {
        self.config.api_key.scrub(text)
    }

    /// GETs `url` under the rate limit and the connection limit; returns the body of a 2xx answer and
    /// maps everything else onto [`Error`].
    async fn get(&self, url: Url, subject: &str) -> Result<impl std::ops::Deref<Target = [u8]> + use<>> {
        for limiter in &self.limiters {
            limiter.until_ready().await;
        }
        let _permit = self
            .connections
            .acquire()
            .await
            .map_err(|_| Error::internal("connection limiter closed"))?;
        let shown = redact(&url);
        trace!(url = %shown, "GET");
        let started = Instant::now();
        let resp = self
            .client
            .get(url)
            .bearer_auth(self.config.api_key.expose())
            .send()
            .await
            .map_err(|e| self.transport_error(&e, &shown))?;
        let status = resp.status();
        debug!(url = %shown, status = status.as_u16(), ms = started.elapsed().as_millis() as u64, "response");
        if !status.is_success() {
            let retry_after = response::retry_after(resp.headers(), std::time::SystemTime::now());
            let body = resp.text().await.unwrap_or_default();
            return Err(response::status_error(
                status.as_u16(),
                retry_after,
                &self.scrub(&body),
                subject,
                &shown,
            ));
        }
        resp.bytes().await.map_err(|e| self.transport_error(&e, &shown))
    }

    /// A transport failure (connect, timeout, broken body): transient. The URL is dropped from reqwest's
    /// message and our redacted one used instead.
    fn transport_error(&self, e: &reqwest::Error, shown: &str) -> Error {
        let kind = if e.is_timeout() && e.is_connect() {
            format!(
                "could not connect within {:.1} s",
                self.config.connect_timeout.as_secs_f64()
            )
        } else if e.is_timeout() {
            format!(
                "timed out after {:.1} s",
                self.config.request_timeout.as_secs_f64()
            )
        } else if e.is_connect() {
            "could not connect".to_owned()
        } else {
            "connection failed".to_owned()
        };
        let cause = std::error::Error::source(e).map_or_else(String::new, |s| format!(" ({s})"));
        Error::Unavailable {
            service: SERVICE.to_owned(),
            detail: self.scrub(&format!("{kind}: GET {shown}{cause}")),
            retry_after: None,
            network: true,
        }
    }

    async fn fetch_universe(&self) -> Result<Universe> {
        let mut url = self.endpoint(
            "/v3/reference/tickers",
            &[("market", "stocks"), ("active", "true"), ("limit", "1000")],
        )?;
        let mut universe = Universe::new();
        for _ in 0..self.config.max_pages {
            let body = self.get(url, "universe").await?;
            let page = response::tickers_page(&body)?;
            universe.extend(page.entries);
            match page.next_url {
                Some(next) => url = self.next_page(&next, "universe")?,
                None => return Ok(universe),
            }
        }
        Err(Error::invalid_data(
            "universe",
            format!("more than {} pages", self.config.max_pages),
        ))
    }
}

/// `url` without an `apiKey` query parameter: the key is sent in a header, never in a URL.
fn without_key(mut url: Url) -> Url {
    if url.query_pairs().any(|(k, _)| k == KEY_PARAM) {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != KEY_PARAM)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    url
}

/// `url` with the key replaced by `REDACTED`, for logs and errors.
pub fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.query_pairs().any(|(k, _)| k == KEY_PARAM) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == KEY_PARAM {
                    REDACTED.to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    let _ = shown.set_password(None);
    shown.to_string()
}

#[async_trait]
impl DataProvider for HttpProvider {
    fn name(&self) -> &str {
        "polygon"
    }

    /// `polygon:` and the base URL (never the key): bars from two servers are stored apart.
    fn live_source(&self) -> Option<String> {
        Some(format!("polygon:{}", self.base.as_str().trim_end_matches('/')))
    }

    /// One request for every symbol's bar of `date`; an empty answer (a holiday, a date not yet
    /// published) is an empty list, never "not found".
    async fn grouped_daily(&self, date: NaiveDate) -> Result<Option<Vec<(Symbol, Bar)>>> {
        let subject = format!("grouped {date}");
        let path = format!("/v2/aggs/grouped/locale/us/market/stocks/{date}");
        let mut url = self.endpoint(&path, &[("adjusted", "true")])?;
        let mut bars = Vec::new();
        for _ in 0..self.config.max_pages {
            let body = match self.get(url, &subject).await {
                Ok(body) => body,
                Err(Error::NotFound { .. }) => return Ok(Some(bars)),
                Err(e) => return Err(e),
            };
            let page = response::grouped_page(&body, &subject)?;
            bars.extend(page.bars.into_iter().filter(|(_, b)| b.date == date));
            match page.next_url {
                Some(next) => url = self.next_page(&next, &subject)?,
                None => return Ok(Some(bars)),
            }
        }
        Err(Error::invalid_data(
            &subject,
            format!("more than {} pages of bars", self.config.max_pages),
        ))
    }

    /// The listed universe, fetched once and reused for [`HttpConfig::universe_ttl`]. The lock is held
    /// while fetching so concurrent callers wait for one fetch.
    async fn universe(&self) -> Result<Universe> {
        let mut cached = self.universe.lock().await;
        if let Some((at, u)) = cached.as_ref()
            && at.elapsed() < self.config.universe_ttl
        {
            return Ok(u.clone());
        }
        let u = self.fetch_universe().await?;
        *cached = Some((Instant::now(), u.clone()));
        Ok(u)
    }

    async fn daily_bars(&self, symbol: &Symbol, range: DateRange) -> Result<Bars> {
        let sym = symbol.as_str();
        let (from, to) = (range.from.to_string(), range.to.to_string());
        let path = format!("/v2/aggs/ticker/{sym}/range/1/day/{from}/{to}");
        let mut url = self.endpoint(
            &path,
            &[("adjusted", "true"), ("sort", "asc"), ("limit", "50000")],
        )?;
        let mut bars = Bars::default();
        for page_idx in 0..self.config.max_pages {
            let body = self.get(url, sym).await?;
            let page = response::aggs_page(&body, sym)?;
            if page_idx == 0 && page.bars.is_empty() {
                return Err(Error::not_found(format!(
                    "symbol {sym} (no bars between {from} and {to})"
                )));
            }
            for bar in page.bars {
                bars.push(bar);
            }
            match page.next_url {
                Some(next) => url = self.next_page(&next, sym)?,
                None => return Ok(bars),
            }
        }
        Err(Error::invalid_data(
            sym,
            format!("more than {} pages of bars", self.config.max_pages),
        ))
    }
}

#[cfg(test)]
mod tests;
