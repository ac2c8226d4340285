//! A Polygon-style API on 127.0.0.1 whose data moves with a clock, as the real one does: it serves bars
//! only for sessions published by "now" (plus today's unfinished bar while the market is open), honours
//! the requested dates, paginates, answers grouped daily bars per session, adjusts past prices for splits
//! that have happened by "now", and logs every request.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::America::New_York;
use serde_json::{Value, json};
use technic_core::provider::http::ApiKey;
use technic_core::{
    BreakerConfig, Clock, HttpConfig, HttpProvider, Market, MarketCalendar, Resilient, RetryPolicy,
};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const KEY: &str = "mock-market-key";

/// A symbol that splits 4-for-1 effective on a session, so before it its adjusted prices change.
#[derive(Debug, Clone, Copy)]
pub struct Split {
    pub symbol_idx: usize,
    pub effective: NaiveDate,
    pub ratio: f64,
}

/// The market the mock serves.
#[derive(Debug, Clone)]
pub struct MockMarket {
    pub symbols: Vec<String>,
    /// Symbols the grouped daily answer leaves out (they come per symbol only).
    pub missing_from_grouped: Vec<String>,
    pub split: Option<Split>,
    /// Symbols whose newest published session the provider has not published yet (one session late).
    pub late: Vec<String>,
    /// Shifts every price, so two servers serve different data.
    pub price_offset: f64,
    /// Bars per page of an aggregates answer.
    pub page_size: usize,
    pub first_day: NaiveDate,
}

impl MockMarket {
    pub fn new(n_symbols: usize) -> Self {
        Self {
            symbols: (0..n_symbols).map(|i| format!("S{i:04}")).collect(),
            missing_from_grouped: Vec::new(),
            split: None,
            late: Vec::new(),
            price_offset: 0.0,
            page_size: 250,
            first_day: NaiveDate::from_ymd_opt(2023, 6, 1).unwrap(),
        }
    }

    /// The traded (unadjusted) close of symbol `idx` on `date`.
    fn raw_close(&self, idx: usize, date: NaiveDate) -> f64 {
        let day = (date - self.first_day).num_days() as f64;
        let base = 20.0 + idx as f64 * 0.7 + self.price_offset;
        let c = base * (1.0 + 0.08 * (day / 9.0 + idx as f64).sin()) + day * 0.01;
        match self.split {
            Some(s) if s.symbol_idx == idx && date < s.effective => c * s.ratio,
            _ => c,
        }
    }

    /// The bar of symbol `idx` on `date` as the API shows it at `now`: adjusted for splits effective by
    /// then; `partial` for today's unfinished session (a smaller range, a fraction of the volume).
    fn bar(&self, idx: usize, date: NaiveDate, now_date: NaiveDate, partial: bool) -> Value {
        let mut c = self.raw_close(idx, date);
        if let Some(s) = self.split
            && s.symbol_idx == idx
            && date < s.effective
            && now_date >= s.effective
        {
            c /= s.ratio;
        }
        let c = (c * 10_000.0).round() / 10_000.0;
        let t = New_York
            .from_local_datetime(&date.and_time(NaiveTime::MIN))
            .earliest()
            .unwrap()
            .timestamp_millis();
        let v = if partial { 300.0 } else { 10_000.0 + idx as f64 };
        let spread = if partial { 0.1 } else { 0.5 };
        json!({"t": t, "o": c - 0.1, "h": c + spread, "l": c - spread, "c": c, "v": v})
    }
}

/// The responder: the market, the clock it runs on, and the request log.
#[derive(Debug, Clone)]
pub struct Api {
    pub market: Arc<Mutex<MockMarket>>,
    pub clock: Arc<dyn Clock>,
    pub log: Arc<Mutex<Vec<String>>>,
    base: String,
}

impl Api {
    /// Paths requested since the last call, emptied.
    pub fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }

    fn published(&self) -> (NaiveDate, NaiveDate, bool) {
        let m = Market::new(self.clock.clone());
        let now = m.now();
        let cal = m.calendar;
        let today = cal.market_date(now);
        let open = New_York
            .from_local_datetime(&today.and_hms_opt(9, 30, 0).unwrap())
            .earliest()
            .unwrap()
            .with_timezone(&Utc);
        let session_open =
            cal.is_session(today) && now >= open && cal.session_close(today).is_some_and(|close| now < close);
        (m.expected_session(), today, session_open)
    }

    fn aggs(&self, sym: &str, from: NaiveDate, to: NaiveDate, cursor: usize) -> ResponseTemplate {
        let market = self.market.lock().unwrap();
        let Some(idx) = market.symbols.iter().position(|s| s == sym) else {
            return ResponseTemplate::new(200)
                .set_body_json(json!({"ticker": sym, "status": "OK", "resultsCount": 0, "queryCount": 0}));
        };
        let (published, today, session_open) = self.published();
        let cal = MarketCalendar::nyse();
        let published = if market.late.iter().any(|s| s == sym) {
            cal.previous_session(published)
        } else {
            published
        };
        let mut dates = cal.sessions(from.max(market.first_day), to.min(published));
        if session_open && today >= from && today <= to {
            dates.push(today);
        }
        let page: Vec<Value> = dates
            .iter()
            .skip(cursor)
            .take(market.page_size)
            .map(|d| market.bar(idx, *d, today, *d == today && session_open))
            .collect();
        if page.is_empty() {
            return ResponseTemplate::new(200)
                .set_body_json(json!({"ticker": sym, "status": "OK", "resultsCount": 0, "queryCount": 0}));
        }
        let mut body = json!({"ticker": sym, "status": "OK", "adjusted": true, "resultsCount": page.len(), "results": page});
        let next = cursor + market.page_size;
        if next < dates.len() {
            body["next_url"] = json!(format!(
                "{}/v2/aggs/ticker/{sym}/range/1/day/{from}/{to}?cursor={next}",
                self.base
            ));
        }
        ResponseTemplate::new(200).set_body_json(body)
    }

    fn grouped(&self, date: NaiveDate) -> ResponseTemplate {
        let market = self.market.lock().unwrap();
        let (published, today, _) = self.published();
        let cal = MarketCalendar::nyse();
        if !cal.is_session(date) || date > published {
            return ResponseTemplate::new(200).set_body_json(
                json!({"status": "OK", "adjusted": true, "queryCount": 0, "resultsCount": 0}),
            );
        }
        let results: Vec<Value> = market
            .symbols
            .iter()
            .enumerate()
            .filter(|(_, s)| !market.missing_from_grouped.contains(s))
            .filter(|(_, s)| date < published || !market.late.contains(s))
            .map(|(i, s)| {
                let mut b = market.bar(i, date, today, false);
                b["T"] = json!(s);
                b
            })
            .collect();
        ResponseTemplate::new(200).set_body_json(
            json!({"status": "OK", "adjusted": true, "resultsCount": results.len(), "results": results}),
        )
    }
}

impl Respond for Api {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let path = request.url.path().to_owned();
        // Like Polygon, the key is taken from the Authorization header; one in the URL would be a leak.
        let bearer = format!("Bearer {KEY}");
        let has_key = request
            .headers
            .get("authorization")
            .is_some_and(|v| v.as_bytes() == bearer.as_bytes())
            && !request.url.query_pairs().any(|(k, _)| k == "apiKey");
        if !has_key {
            return ResponseTemplate::new(401).set_body_json(json!({"status": "ERROR", "error": "bad key"}));
        }
        self.log.lock().unwrap().push(path.clone());
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let date = |s: &str| s.parse::<NaiveDate>().ok();
        match parts.as_slice() {
            ["v3", "reference", "tickers"] => {
                let results: Vec<Value> = self
                    .market
                    .lock()
                    .unwrap()
                    .symbols
                    .iter()
                    .map(|s| json!({"ticker": s, "name": format!("{s} Inc")}))
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({"status": "OK", "results": results}))
            }
            ["v2", "aggs", "ticker", sym, "range", "1", "day", from, to] => match (date(from), date(to)) {
                (Some(from), Some(to)) => {
                    let cursor = request
                        .url
                        .query_pairs()
                        .find(|(k, _)| k == "cursor")
                        .and_then(|(_, v)| v.parse().ok())
                        .unwrap_or(0);
                    self.aggs(sym, from, to, cursor)
                }
                _ => {
                    ResponseTemplate::new(400).set_body_json(json!({"status": "ERROR", "error": "bad dates"}))
                }
            },
            ["v2", "aggs", "grouped", "locale", "us", "market", "stocks", d] => match date(d) {
                Some(d) => self.grouped(d),
                None => {
                    ResponseTemplate::new(400).set_body_json(json!({"status": "ERROR", "error": "bad date"}))
                }
            },
            _ => ResponseTemplate::new(404).set_body_json(json!({"status": "NOT_FOUND"})),
        }
    }
}

/// Starts the mock on 127.0.0.1 serving `market` on `clock`.
pub async fn start(market: MockMarket, clock: Arc<dyn Clock>) -> (MockServer, Api) {
    let server = MockServer::start().await;
    let api = Api {
        market: Arc::new(Mutex::new(market)),
        clock,
        log: Arc::new(Mutex::new(Vec::new())),
        base: server.uri(),
    };
    Mock::given(any()).respond_with(api.clone()).mount(&server).await;
    (server, api)
}

/// The HTTP provider for `server`, with retries and no rate limit.
pub fn provider(server: &MockServer) -> Arc<Resilient> {
    let config = HttpConfig {
        rate_limit: technic_core::provider::RateLimit::none(),
        ..HttpConfig::new(server.uri(), ApiKey::new(KEY))
    };
    Arc::new(Resilient::wrap(
        Arc::new(HttpProvider::new(config).unwrap()),
        RetryPolicy::default(),
        BreakerConfig::default(),
    ))
}

/// An RFC 3339 instant as UTC.
pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().with_timezone(&Utc)
}
