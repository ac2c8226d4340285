//! The one error type of the library, with a category, a user-facing message, the technical detail and
//! the actions a caller can suggest.
//!
//! Variants are named after what the caller does next: retry what is [`Error::Unavailable`], skip a symbol
//! whose data is [`Error::InvalidData`] or [`Error::NotFound`], fix configuration on [`Error::Config`] or
//! [`Error::Rejected`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Broad kind of failure, for grouping in logs, metrics and user interfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Could not reach a remote service (connect error, timeout).
    Network,
    /// The data provider or its API answered with an error.
    Provider,
    /// The cache failed.
    Cache,
    /// Data was missing, malformed or inconsistent.
    Data,
    /// Configuration or input was wrong.
    Config,
    /// The user cancelled.
    Cancelled,
    /// A bug or an unexpected condition.
    Internal,
}

impl Category {
    /// Lower-case name, as used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Network => "network",
            Self::Provider => "provider",
            Self::Cache => "cache",
            Self::Data => "data",
            Self::Config => "config",
            Self::Cancelled => "cancelled",
            Self::Internal => "internal",
        }
    }
}

/// Something a user or program can do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Try the same thing again (later).
    Retry,
    /// Skip the item and go on.
    Skip,
    /// Stop the operation.
    Cancel,
    /// Fix the configuration or input named in the message.
    FixConfig,
    /// Report it: it should not happen.
    Report,
}

/// Every failure the library reports.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A transient failure of a remote service: connect error, timeout, HTTP 429 or 5xx. Worth retrying.
    #[error("{service} unavailable: {detail}")]
    Unavailable {
        /// What was being called (e.g. "data provider").
        service: String,
        /// Technical detail (never contains secrets).
        detail: String,
        /// Delay the service asked for (`Retry-After`), if any.
        retry_after: Option<Duration>,
        /// True for connect errors and timeouts, false when the service answered.
        network: bool,
    },
    /// The service asked callers to slow down (HTTP 429): back-pressure, not a failure. Retried after
    /// `retry_after`; never opens a circuit breaker.
    #[error("{service} is limiting requests: {detail}")]
    Throttled {
        /// What was being called.
        service: String,
        /// Technical detail (never contains secrets).
        detail: String,
        /// Delay the service asked for (`Retry-After`), if any.
        retry_after: Option<Duration>,
    },
    /// The provider refused the request permanently (bad API key, forbidden). Retrying will not help.
    #[error("request rejected by {service}: {detail}")]
    Rejected {
        /// What was being called.
        service: String,
        /// Technical detail.
        detail: String,
        /// What the user should do, when the caller knows (e.g. "Invalid API key: set POLYGON_API_KEY").
        advice: Option<String>,
    },
    /// A circuit breaker stopped calling a service after repeated failures; calls fail fast until the
    /// cool-down ends. Not retried: retrying is exactly what the breaker prevents.
    #[error("{service} unavailable: {failures} consecutive failures; not calling it for {}s", retry_in.as_secs_f64().ceil())]
    CircuitOpen {
        /// What was being called.
        service: String,
        /// Consecutive transient failures that opened the breaker.
        failures: u32,
        /// Time until the breaker lets a trial call through.
        retry_in: Duration,
    },
    /// The thing asked for does not exist (unknown symbol, unknown scan id).
    #[error("not found: {what}")]
    NotFound {
        /// What was looked up, e.g. "symbol ZZZZ".
        what: String,
    },
    /// Data for one item is malformed or inconsistent; skip that item.
    #[error("invalid data for {subject}: {detail}")]
    InvalidData {
        /// Symbol or file the data belongs to.
        subject: String,
        /// What is wrong, with file and line where known.
        detail: String,
    },
    /// The cache failed; callers continue without it.
    #[error("cache error: {detail}")]
    Cache {
        /// Technical detail.
        detail: String,
    },
    /// The persistent store failed.
    #[error("store error: {detail}")]
    Store {
        /// Technical detail.
        detail: String,
    },
    /// Configuration or input is wrong.
    #[error("invalid configuration: {detail}")]
    Config {
        /// What is wrong and how to fix it.
        detail: String,
    },
    /// The operation was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// An unexpected condition (a bug).
    #[error("internal error: {detail}")]
    Internal {
        /// Technical detail.
        detail: String,
    },
}

impl Error {
    /// Shorthand for [`Error::InvalidData`].
    pub fn invalid_data(subject: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::InvalidData {
            subject: subject.into(),
            detail: detail.into(),
        }
    }

    /// Shorthand for [`Error::Config`].
    pub fn config(detail: impl Into<String>) -> Self {
        Self::Config {
            detail: detail.into(),
        }
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    /// Shorthand for [`Error::Internal`].
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::Internal {
            detail: detail.into(),
        }
    }

    /// The broad category of this error.
    pub fn category(&self) -> Category {
        match self {
            Self::Unavailable { network: true, .. } => Category::Network,
            Self::Unavailable { .. }
            | Self::Throttled { .. }
            | Self::Rejected { .. }
            | Self::CircuitOpen { .. } => Category::Provider,
            Self::NotFound { .. } | Self::InvalidData { .. } => Category::Data,
            Self::Cache { .. } => Category::Cache,
            Self::Store { .. } | Self::Internal { .. } => Category::Internal,
            Self::Config { .. } => Category::Config,
            Self::Cancelled => Category::Cancelled,
        }
    }

    /// A short message for people, free of technical detail.
    pub fn user_message(&self) -> String {
        match self {
            Self::Unavailable { network: true, .. } => "Connection issue — retrying…".to_owned(),
            Self::Unavailable { service, .. } => {
                format!("{} temporarily unavailable", capitalise(service))
            }
            Self::Throttled { service, .. } => {
                format!(
                    "{} is limiting requests — waiting before retrying",
                    capitalise(service)
                )
            }
            Self::Rejected {
                advice: Some(advice), ..
            } => advice.clone(),
            Self::Rejected { service, .. } => format!("Request rejected by {service}: check credentials"),
            Self::CircuitOpen { service, .. } => {
                format!(
                    "{} unavailable — too many failures, pausing requests",
                    capitalise(service)
                )
            }
            Self::NotFound { what } => format!("Not found: {what}"),
            Self::InvalidData { subject, .. } => format!("Invalid data for {subject} — skipped"),
            Self::Cache { .. } => "Cache unavailable — running without caching".to_owned(),
            Self::Store { .. } => "Storage problem — results may not be saved".to_owned(),
            Self::Config { detail } => format!("Configuration problem: {detail}"),
            Self::Cancelled => "Cancelled".to_owned(),
            Self::Internal { .. } => "Unexpected internal error — please report it".to_owned(),
        }
    }

    /// The message once retrying is over: "Connection issue — retrying…" is right while a retry is
    /// pending, not when a scan has given up. Other errors read as [`Error::user_message`].
    pub fn final_message(&self) -> String {
        match self {
            Self::Unavailable { network: true, .. } => {
                "Cannot reach the data provider — check the connection and try again".to_owned()
            }
            Self::Unavailable { service, .. } => {
                format!(
                    "{} temporarily unavailable — try again later",
                    capitalise(service)
                )
            }
            Self::Throttled { service, .. } => format!(
                "{} is still limiting requests — try again later or lower --rate-limit",
                capitalise(service)
            ),
            other => other.user_message(),
        }
    }

    /// The technical detail (the `Display` text).
    pub fn detail(&self) -> String {
        self.to_string()
    }

    /// What a user or program can do next.
    pub fn actions(&self) -> &'static [Action] {
        match self {
            Self::Unavailable { .. } | Self::Throttled { .. } | Self::CircuitOpen { .. } => {
                &[Action::Retry, Action::Cancel]
            }
            Self::Rejected { .. } | Self::Config { .. } => &[Action::FixConfig],
            Self::NotFound { .. } | Self::InvalidData { .. } => &[Action::Skip],
            Self::Cache { .. } | Self::Store { .. } => &[Action::Retry, Action::Skip],
            Self::Cancelled => &[],
            Self::Internal { .. } => &[Action::Report],
        }
    }

    /// True when the same request may succeed if retried.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Throttled { .. })
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_messages_and_actions() {
        let net = Error::Unavailable {
            service: "data provider".into(),
            detail: "connect refused".into(),
            retry_after: None,
            network: true,
        };
        assert_eq!(net.category(), Category::Network);
        assert_eq!(net.user_message(), "Connection issue — retrying…");
        assert!(net.is_transient());
        assert!(net.detail().contains("connect refused"));

        let busy = Error::Unavailable {
            service: "data provider".into(),
            detail: "HTTP 503".into(),
            retry_after: None,
            network: false,
        };
        assert_eq!(busy.category(), Category::Provider);
        assert_eq!(busy.user_message(), "Data provider temporarily unavailable");
        assert_eq!(
            busy.final_message(),
            "Data provider temporarily unavailable — try again later"
        );
        assert!(net.final_message().starts_with("Cannot reach the data provider"));

        let bad = Error::invalid_data("XYZ", "high < low on 2024-01-02");
        assert_eq!(bad.user_message(), "Invalid data for XYZ — skipped");
        assert_eq!(bad.actions(), &[Action::Skip]);
        assert!(!bad.is_transient());
        assert_eq!(Error::Cancelled.category().as_str(), "cancelled");

        let key = Error::Rejected {
            service: "data provider".into(),
            detail: "HTTP 401".into(),
            advice: Some("Invalid API key: set POLYGON_API_KEY".into()),
        };
        assert_eq!(key.user_message(), "Invalid API key: set POLYGON_API_KEY");
        assert!(!key.is_transient());

        let open = Error::CircuitOpen {
            service: "data provider".into(),
            failures: 5,
            retry_in: Duration::from_millis(29_100),
        };
        assert_eq!(
            open.user_message(),
            "Data provider unavailable — too many failures, pausing requests"
        );
        assert!(open.detail().contains("5 consecutive failures") && open.detail().contains("30s"));
        assert!(!open.is_transient());
    }
}
