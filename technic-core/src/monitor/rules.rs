//! Alert rules and their cooldowns.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::types::{Alert, MetricSample, Severity};

/// Thresholds of the three alert rules and the cooldown between two alerts of one rule.
///
/// Rules only look at intervals that had requests: an idle system is not a degraded one.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRules {
    /// `low_cache_hit_rate` (warning) fires below this hit rate.
    pub min_cache_hit_rate: f64,
    /// `slow_responses` (warning) fires above this average response time, in milliseconds.
    pub max_avg_response_ms: f64,
    /// `high_error_rate` (error) fires above this error rate.
    pub max_error_rate: f64,
    /// After a rule fires, it stays quiet this long.
    pub cooldown: Duration,
}

impl Default for AlertRules {
    fn default() -> Self {
        Self {
            min_cache_hit_rate: 0.5,
            max_avg_response_ms: 100.0,
            max_error_rate: 0.05,
            cooldown: Duration::from_secs(15 * 60),
        }
    }
}

impl AlertRules {
    /// The alerts `sample` triggers, ignoring cooldowns.
    pub fn check(&self, sample: &MetricSample) -> Vec<Alert> {
        if sample.requests == 0 {
            return Vec::new();
        }
        let alert = |rule: &str, severity, value: f64, threshold: f64, message: String| Alert {
            at: sample.at,
            rule: rule.to_owned(),
            severity,
            value,
            threshold,
            message,
        };
        let mut out = Vec::new();
        if sample.cache_hit_rate < self.min_cache_hit_rate {
            out.push(alert(
                "low_cache_hit_rate",
                Severity::Warning,
                sample.cache_hit_rate,
                self.min_cache_hit_rate,
                format!(
                    "Cache hit rate {:.1}% is below {:.0}%",
                    sample.cache_hit_rate * 100.0,
                    self.min_cache_hit_rate * 100.0
                ),
            ));
        }
        if sample.avg_response_ms > self.max_avg_response_ms {
            out.push(alert(
                "slow_responses",
                Severity::Warning,
                sample.avg_response_ms,
                self.max_avg_response_ms,
                format!(
                    "Average response time {:.1} ms is above {:.0} ms",
                    sample.avg_response_ms, self.max_avg_response_ms
                ),
            ));
        }
        if sample.error_rate > self.max_error_rate {
            out.push(alert(
                "high_error_rate",
                Severity::Error,
                sample.error_rate,
                self.max_error_rate,
                format!(
                    "Error rate {:.1}% is above {:.0}%",
                    sample.error_rate * 100.0,
                    self.max_error_rate * 100.0
                ),
            ));
        }
        out
    }
}

/// When each rule last fired, on tokio's clock (so tests can pause and advance it).
#[derive(Debug, Default)]
pub struct Cooldowns {
    last: HashMap<String, Instant>,
}

impl Cooldowns {
    /// Remembers that `rule` fired `age` ago (e.g. in an earlier process, as kept in the store).
    pub fn seed(&mut self, rule: &str, age: Duration) {
        let now = Instant::now();
        let at = now.checked_sub(age).unwrap_or(now);
        let last = self.last.entry(rule.to_owned()).or_insert(at);
        *last = (*last).max(at);
    }

    /// True (and remembers now) when `rule` has not fired within `cooldown`.
    pub fn admit(&mut self, rule: &str, cooldown: Duration) -> bool {
        let now = Instant::now();
        match self.last.get(rule) {
            Some(at) if now.duration_since(*at) < cooldown => false,
            _ => {
                self.last.insert(rule.to_owned(), now);
                true
            }
        }
    }
}
