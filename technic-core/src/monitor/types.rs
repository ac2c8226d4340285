//! Values the monitor produces and the store keeps: metric samples, alerts and their summary.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One periodic sample of the system's performance.
///
/// Two kinds of work are measured. *Lookups* are requests for one symbol's data, from a scan or the API,
/// answered from a cache (memory or store) or loaded from the provider: the hit rate, response times,
/// error rate and the alert rules are about them. *API requests* are the HTTP server's answers (the
/// `http_*` fields, zero outside the server).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricSample {
    /// When the sample was taken.
    pub at: DateTime<Utc>,
    /// Lookups answered from a cache ÷ all lookups in the interval (0 when there were none).
    pub cache_hit_rate: f64,
    /// Mean lookup response time over the interval, in milliseconds.
    pub avg_response_ms: f64,
    /// API requests being answered when the sample was taken (the server's in-flight requests).
    pub active_connections: u64,
    /// Failed lookups ÷ all lookups in the interval (0 when there were none).
    pub error_rate: f64,
    /// Lookups in the interval.
    pub requests: u64,
    /// 95th percentile of cached responses in the interval, in milliseconds.
    pub p95_cached_ms: f64,
    /// 95th percentile of uncached responses in the interval, in milliseconds.
    pub p95_uncached_ms: f64,
    /// Mean of the interval's lookups answered from a cache, in milliseconds (`None` without any).
    #[serde(default)]
    pub avg_cached_ms: Option<f64>,
    /// Mean of the interval's lookups that loaded data, in milliseconds (`None` without any).
    #[serde(default)]
    pub avg_uncached_ms: Option<f64>,
    /// API requests answered in the interval.
    #[serde(default)]
    pub http_requests: u64,
    /// Mean API response time in the interval, in milliseconds (0 without requests).
    #[serde(default)]
    pub http_avg_ms: f64,
    /// API requests that ended in a server error ÷ API requests in the interval (0 without requests).
    #[serde(default)]
    pub http_error_rate: f64,
}

/// How serious an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Degraded but working.
    Warning,
    /// Failing.
    Error,
}

impl Severity {
    /// Lower-case name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }

    /// Parses [`Severity::as_str`]'s output.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "warning" => Some(Self::Warning),
            "error" => Some(Self::Error),
            _ => None,
        }
    }
}

/// An alert rule fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// When it fired.
    pub at: DateTime<Utc>,
    /// The rule's name (`low_cache_hit_rate`, `slow_responses`, `high_error_rate`).
    pub rule: String,
    /// How serious it is.
    pub severity: Severity,
    /// The measured value.
    pub value: f64,
    /// The threshold it crossed.
    pub threshold: f64,
    /// A sentence for people.
    pub message: String,
}

/// Minimum, mean, maximum, first and last of one metric over a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    /// Smallest value.
    pub min: f64,
    /// Mean value.
    pub avg: f64,
    /// Largest value.
    pub max: f64,
    /// Oldest value.
    pub first: f64,
    /// Newest value.
    pub last: f64,
}

impl Trend {
    /// The trend of `values` in time order; `None` when empty.
    pub fn of(values: &[f64]) -> Option<Self> {
        let (first, last) = (*values.first()?, *values.last()?);
        Some(Self {
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            avg: values.iter().sum::<f64>() / values.len() as f64,
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            first,
            last,
        })
    }
}

/// How often one rule fired in a period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertCount {
    /// The rule.
    pub rule: String,
    /// Its severity.
    pub severity: Severity,
    /// Times fired.
    pub count: u64,
    /// The last time it fired.
    pub last_at: DateTime<Utc>,
}

/// Metrics and alerts over a period, for `technic report` and the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// Start of the period.
    pub since: DateTime<Utc>,
    /// Samples in the period.
    pub n_samples: u64,
    /// Cache hit rate trend (`None` without samples).
    pub cache_hit_rate: Option<Trend>,
    /// Average response time trend, in milliseconds.
    pub avg_response_ms: Option<Trend>,
    /// Active connections trend.
    pub active_connections: Option<Trend>,
    /// Error rate trend.
    pub error_rate: Option<Trend>,
    /// Alerts fired, per rule, most frequent first.
    pub alerts: Vec<AlertCount>,
}

impl MetricSummary {
    /// Computes the summary from samples and alerts (both in time order).
    pub fn compute(since: DateTime<Utc>, samples: &[MetricSample], alerts: &[Alert]) -> Self {
        let trend = |f: fn(&MetricSample) -> f64| Trend::of(&samples.iter().map(f).collect::<Vec<_>>());
        let mut counts: Vec<AlertCount> = Vec::new();
        for a in alerts {
            match counts.iter_mut().find(|c| c.rule == a.rule) {
                Some(c) => {
                    c.count += 1;
                    c.last_at = c.last_at.max(a.at);
                }
                None => counts.push(AlertCount {
                    rule: a.rule.clone(),
                    severity: a.severity,
                    count: 1,
                    last_at: a.at,
                }),
            }
        }
        counts.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.rule.cmp(&b.rule)));
        Self {
            since,
            n_samples: samples.len() as u64,
            cache_hit_rate: trend(|s| s.cache_hit_rate),
            avg_response_ms: trend(|s| s.avg_response_ms),
            active_connections: trend(|s| s.active_connections as f64),
            error_rate: trend(|s| s.error_rate),
            alerts: counts,
        }
    }
}
