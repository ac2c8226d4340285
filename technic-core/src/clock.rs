//! The [`Clock`] seam: everything in the core that asks "what time is it" asks a clock it was given.
//!
//! Production code uses [`SystemClock`]; tests use [`ManualClock`] to run at a chosen instant (a holiday,
//! a Friday evening in New York, a DST switch) whatever the machine's own time and time zone. Instants are
//! UTC; market dates come from [`crate::calendar::MarketCalendar`], which converts to New York time. The
//! machine's local time zone is never consulted.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

/// A source of the current instant.
pub trait Clock: Send + Sync + Debug {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that shows a set instant until it is moved; clones share the instant.
#[derive(Debug, Clone)]
pub struct ManualClock {
    at: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock stopped at `at`.
    pub fn new(at: DateTime<Utc>) -> Self {
        Self {
            at: Arc::new(Mutex::new(at)),
        }
    }

    /// Moves the clock to `at`.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.at.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        let mut at = self.at.lock().unwrap_or_else(|e| e.into_inner());
        *at += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.at.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The clock a program uses: [`SystemClock`] unless `TECHNIC_NOW` holds an RFC 3339 instant (e.g.
/// `2026-11-27T17:30:00-05:00`), which fixes "now" for replaying a day or testing a frontend end to end.
/// A malformed `TECHNIC_NOW` is an error naming the variable, never silently ignored.
pub fn from_env() -> crate::Result<Arc<dyn Clock>> {
    match std::env::var("TECHNIC_NOW") {
        Ok(text) if !text.trim().is_empty() => {
            let at = DateTime::parse_from_rfc3339(text.trim()).map_err(|e| {
                crate::Error::config(format!(
                    "TECHNIC_NOW=`{text}` is not an RFC 3339 instant ({e}); use e.g. \
                     2026-11-27T17:30:00-05:00, or unset it to use the system clock"
                ))
            })?;
            Ok(Arc::new(ManualClock::new(at.with_timezone(&Utc))))
        }
        _ => Ok(Arc::new(SystemClock)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let at = DateTime::parse_from_rfc3339("2026-11-26T12:00:00-05:00")
            .unwrap()
            .with_timezone(&Utc);
        let clock = ManualClock::new(at);
        let shared = clock.clone();
        assert_eq!(clock.now(), at);
        shared.advance(chrono::Duration::hours(2));
        assert_eq!(clock.now(), at + chrono::Duration::hours(2));
        clock.set(at);
        assert_eq!(shared.now(), at);
    }
}
