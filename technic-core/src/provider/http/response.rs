//! The HTTP provider's answers: JSON page shapes, `t` (epoch milliseconds, UTC) to dates, HTTP statuses
//! and `Retry-After` to [`Error`]s. Pure functions, so every mapping is tested without a server.

use std::time::{Duration, SystemTime};

use chrono::DateTime;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::Deserialize;

use super::SERVICE;
use crate::error::{Error, Result};
use crate::model::{Bar, Symbol, UniverseEntry};

/// The longest `Retry-After` we record; the retry policy applies its own, usually shorter, cap.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// What an API key problem tells the user.
pub(super) const BAD_KEY: &str = "Invalid API key: set POLYGON_API_KEY";

/// One page of aggregates.
#[derive(Debug)]
pub(super) struct AggsPage {
    pub bars: Vec<Bar>,
    pub next_url: Option<String>,
}

/// One page of reference tickers.
#[derive(Debug)]
pub(super) struct TickersPage {
    pub entries: Vec<UniverseEntry>,
    pub next_url: Option<String>,
}

/// One page of an aggregates answer (per symbol, or grouped for a whole market's session).
#[derive(Deserialize)]
struct RawPage<T> {
    status: Option<String>,
    #[serde(default = "none")]
    results: Option<Vec<T>>,
    next_url: Option<String>,
    error: Option<String>,
}

fn none<T>() -> Option<T> {
    None
}

#[derive(Deserialize)]
struct RawBar {
    t: i64,
    o: f64,
    h: f64,
    l: f64,
    c: f64,
    #[serde(default)]
    v: f64,
}

/// One page of a grouped-daily (whole market, one date) answer.
#[derive(Debug)]
pub(super) struct GroupedPage {
    pub bars: Vec<(Symbol, Bar)>,
    pub next_url: Option<String>,
}

/// A grouped-daily result: a ticker and the same bar fields as an aggregates result.
#[derive(Deserialize)]
struct RawGroupedBar {
    #[serde(rename = "T")]
    ticker: String,
    #[serde(flatten)]
    bar: RawBar,
}

impl RawBar {
    /// The bar, dated by `t` (epoch milliseconds, UTC date); an out-of-range `t` is invalid data for
    /// `subject`.
    fn into_bar(self, subject: &str) -> Result<Bar> {
        let date = DateTime::from_timestamp_millis(self.t)
            .ok_or_else(|| Error::invalid_data(subject, format!("timestamp {} is out of range", self.t)))?
            .date_naive();
        Ok(Bar {
            date,
            open: self.o,
            high: self.h,
            low: self.l,
            close: self.c,
            volume: self.v,
        })
    }
}

#[derive(Deserialize)]
struct RawTickers {
    #[serde(default)]
    results: Vec<RawTicker>,
    next_url: Option<String>,
}

#[derive(Deserialize)]
struct RawTicker {
    ticker: String,
    #[serde(default)]
    name: String,
}

/// An `"ERROR"` status in an answer's body, with its message, as [`Error::InvalidData`] for `subject`.
fn reported_error(status: Option<&str>, error: Option<String>, subject: &str) -> Result<()> {
    if status == Some("ERROR") {
        let why = error.unwrap_or_else(|| "no detail".to_owned());
        return Err(Error::invalid_data(
            subject,
            format!("the data provider reported an error: {why}"),
        ));
    }
    Ok(())
}

/// Parses an aggregates page for `symbol`. Malformed or truncated JSON is [`Error::InvalidData`] naming
/// the symbol; an `"ERROR"` status with a message is too.
pub(super) fn aggs_page(body: &[u8], symbol: &str) -> Result<AggsPage> {
    let raw: RawPage<RawBar> = serde_json::from_slice(body)
        .map_err(|e| Error::invalid_data(symbol, format!("malformed JSON from the data provider: {e}")))?;
    reported_error(raw.status.as_deref(), raw.error, symbol)?;
    let bars = raw
        .results
        .unwrap_or_default()
        .into_iter()
        .map(|b| b.into_bar(symbol))
        .collect::<Result<Vec<_>>>()?;
    Ok(AggsPage {
        bars,
        next_url: raw.next_url.filter(|u| !u.is_empty()),
    })
}

/// Parses a grouped-daily page for `subject` ("grouped 2026-11-27"). Tickers that are not valid symbols
/// are left out; a malformed body is [`Error::InvalidData`].
pub(super) fn grouped_page(body: &[u8], subject: &str) -> Result<GroupedPage> {
    let raw: RawPage<RawGroupedBar> = serde_json::from_slice(body)
        .map_err(|e| Error::invalid_data(subject, format!("malformed JSON from the data provider: {e}")))?;
    reported_error(raw.status.as_deref(), raw.error, subject)?;
    let mut bars = Vec::new();
    for b in raw.results.unwrap_or_default() {
        let Ok(symbol) = Symbol::parse(&b.ticker) else {
            continue;
        };
        bars.push((symbol, b.bar.into_bar(subject)?));
    }
    Ok(GroupedPage {
        bars,
        next_url: raw.next_url.filter(|u| !u.is_empty()),
    })
}

/// Parses a reference-tickers page. Tickers that are not valid symbols (rare share classes with odd
/// characters) are left out rather than failing the whole universe.
pub(super) fn tickers_page(body: &[u8]) -> Result<TickersPage> {
    let raw: RawTickers = serde_json::from_slice(body).map_err(|e| {
        Error::invalid_data("universe", format!("malformed JSON from the data provider: {e}"))
    })?;
    let entries = raw
        .results
        .into_iter()
        .filter_map(|t| match Symbol::parse(&t.ticker) {
            Ok(symbol) => Some(UniverseEntry {
                name: t.name,
                ..UniverseEntry::bare(symbol)
            }),
            Err(why) => {
                tracing::debug!(ticker = %t.ticker, %why, "ticker left out of the universe");
                None
            }
        })
        .collect();
    Ok(TickersPage {
        entries,
        next_url: raw.next_url.filter(|u| !u.is_empty()),
    })
}

/// `Retry-After` as seconds or an HTTP date (relative to `now`), capped at an hour.
pub(super) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(now)
            .unwrap_or(Duration::ZERO),
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// The error for a non-2xx answer. `body` must already be scrubbed of the key; `shown` is the redacted
/// URL.
pub(super) fn status_error(
    status: u16,
    retry_after: Option<Duration>,
    body: &str,
    subject: &str,
    shown: &str,
) -> Error {
    let snippet: String = body.chars().take(200).collect();
    let detail = format!("HTTP {status} from GET {shown}: {}", snippet.trim());
    match status {
        401 | 403 => Error::Rejected {
            service: SERVICE.to_owned(),
            detail,
            advice: Some(BAD_KEY.to_owned()),
        },
        404 => Error::not_found(format!("symbol {subject} ({detail})")),
        429 => Error::Throttled {
            service: SERVICE.to_owned(),
            detail,
            retry_after,
        },
        408 | 500..=599 => Error::Unavailable {
            service: SERVICE.to_owned(),
            detail,
            retry_after,
            network: false,
        },
        _ => Error::Rejected {
            service: SERVICE.to_owned(),
            detail,
            advice: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn epoch_milliseconds_become_utc_dates() {
        // 2024-01-02 05:00 UTC is midnight in New York, as Polygon stamps daily bars.
        let body = br#"{"status":"OK","results":[{"t":1704171600000,"o":1,"h":2,"l":0.5,"c":1.5,"v":10}]}"#;
        let page = aggs_page(body, "AAA").unwrap();
        assert_eq!(page.bars[0].date.to_string(), "2024-01-02");
        assert_eq!(page.bars[0].close, 1.5);
        assert!(page.next_url.is_none());
    }

    #[test]
    fn malformed_and_truncated_bodies_name_the_symbol() {
        for body in [
            &b"<html>oops</html>"[..],
            br#"{"status":"OK","results":[{"t":17041"#,
        ] {
            let e = aggs_page(body, "XYZ").unwrap_err();
            assert!(
                matches!(&e, Error::InvalidData { subject, .. } if subject == "XYZ"),
                "{e:?}"
            );
            assert_eq!(e.user_message(), "Invalid data for XYZ — skipped");
        }
    }

    #[test]
    fn retry_after_in_seconds_or_http_date_is_capped() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(90)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(90));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&past).unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("999999"));
        assert_eq!(retry_after(&h, now), Some(MAX_RETRY_AFTER));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn statuses_map_to_what_the_caller_does_next() {
        let err = |s| status_error(s, None, "", "XYZ", "http://x/");
        assert_eq!(err(401).user_message(), BAD_KEY);
        assert_eq!(err(403).user_message(), BAD_KEY);
        assert!(matches!(err(404), Error::NotFound { .. }));
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(err(s).is_transient(), "{s}");
        }
        assert!(!err(400).is_transient());
        let busy = status_error(429, Some(Duration::from_secs(3)), "", "XYZ", "http://x/");
        assert!(matches!(busy, Error::Throttled { retry_after: Some(d), .. } if d == Duration::from_secs(3)));
    }
}
