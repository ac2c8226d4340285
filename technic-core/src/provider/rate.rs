//! [`RateLimit`]: how fast requests may go to a data provider, as plans state it: `50` (a second),
//! `5/min`, `100/h`, `0.5` (one request every two seconds) or a daily quota `25/day`, and several at once
//! (`5/min,500/day`). Always available (frontends parse the flag whether or not the HTTP provider is built).

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

/// One window of a [`RateLimit`]: at most `burst` requests at once, then one every `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateWindow {
    /// Time between requests once the burst is spent.
    pub interval: Duration,
    /// Requests that may go at once.
    pub burst: NonZeroU32,
}

/// A request budget: every window must allow a request before it is sent. Empty: no limit.
///
/// Per-second rates keep a second's worth as a burst (`50` allows 50 at once, then one every 20 ms).
/// Slower windows send one request at a time, evenly spaced, so no window of the plan's length ever
/// holds more than it allows: `5/min` is one request every 12 s, `25/day` one every 57.6 minutes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimit {
    windows: Vec<RateWindow>,
    text: String,
}

impl RateLimit {
    /// No limit.
    pub fn none() -> Self {
        Self::default()
    }

    /// `n` requests a second (0: no limit), with a second's worth as a burst.
    pub fn per_second(n: u32) -> Self {
        match NonZeroU32::new(n) {
            Some(burst) => Self {
                windows: vec![RateWindow {
                    interval: Duration::from_secs(1) / n,
                    burst,
                }],
                text: n.to_string(),
            },
            None => Self::none(),
        }
    }

    /// The windows, tightest first; empty when there is no limit.
    pub fn windows(&self) -> &[RateWindow] {
        &self.windows
    }

    /// True when nothing is limited.
    pub fn is_none(&self) -> bool {
        self.windows.is_empty()
    }

    /// The steady request rate the tightest window allows, per second (`None`: unlimited).
    pub fn per_second_rate(&self) -> Option<f64> {
        self.windows
            .iter()
            .map(|w| 1.0 / w.interval.as_secs_f64())
            .reduce(f64::min)
    }

    /// Parses `RATE[,RATE…]` where `RATE` is `N` or `N/UNIT` (`s`, `min`, `h`, `day`; long forms and
    /// plurals too); `N` is a positive number (`0` alone means no limit).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text == "0" {
            return Ok(Self::none());
        }
        let mut windows = Vec::new();
        for part in text.split(',') {
            windows.push(window(part.trim())?);
        }
        windows.sort_by_key(|w| w.interval);
        Ok(Self {
            windows,
            text: text.to_owned(),
        })
    }
}

/// One `N` or `N/UNIT`.
fn window(part: &str) -> Result<RateWindow, String> {
    let usage = || {
        format!(
            "`{part}` is not a rate: write requests per second (50, 0.5), or per period (5/min, 100/h, \
             25/day), several joined with commas (5/min,500/day), or 0 for no limit"
        )
    };
    let (count, unit) = part.split_once('/').unwrap_or((part, "s"));
    let period = match unit.trim().to_ascii_lowercase().as_str() {
        "s" | "sec" | "second" | "seconds" => 1,
        "m" | "min" | "minute" | "minutes" => 60,
        "h" | "hr" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        _ => return Err(usage()),
    };
    let n: f64 = count.trim().parse().map_err(|_| usage())?;
    if !(n.is_finite() && n > 0.0) {
        return Err(usage());
    }
    let interval = Duration::from_secs_f64(f64::from(period) / n);
    if interval < Duration::from_micros(100) || interval > Duration::from_secs(86_400 * 366) {
        return Err(format!(
            "`{part}` is out of range: from one request a year to 10,000 a second"
        ));
    }
    // A per-second rate keeps its second's worth as a burst; slower windows go one at a time.
    let burst = if period == 1 && n >= 1.0 {
        NonZeroU32::new(n.floor() as u32).unwrap_or(NonZeroU32::MIN)
    } else {
        NonZeroU32::MIN
    };
    Ok(RateWindow { interval, burst })
}

impl FromStr for RateLimit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.windows.is_empty() {
            f.write_str("0")
        } else {
            f.write_str(&self.text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_as_they_are_written() {
        let w = |s: &str| RateLimit::parse(s).unwrap().windows().to_vec();
        let one = |secs: f64| RateWindow {
            interval: Duration::from_secs_f64(secs),
            burst: NonZeroU32::MIN,
        };
        assert_eq!(w("5/min"), vec![one(12.0)]);
        assert_eq!(w("100/h"), vec![one(36.0)]);
        assert_eq!(w("0.5"), vec![one(2.0)]);
        assert_eq!(w("25/day"), vec![one(3456.0)]);
        assert_eq!(
            w("50"),
            vec![RateWindow {
                interval: Duration::from_millis(20),
                burst: NonZeroU32::new(50).unwrap()
            }]
        );
        assert_eq!(
            w("500/day, 5/Minute"),
            vec![one(12.0), one(172.8)],
            "tightest first"
        );
        assert!(RateLimit::parse("0").unwrap().is_none());
        assert_eq!(RateLimit::parse("5/min").unwrap().to_string(), "5/min");
        assert_eq!(
            RateLimit::parse("5/min").unwrap().per_second_rate(),
            Some(1.0 / 12.0)
        );
        assert_eq!(RateLimit::per_second(20), RateLimit::parse("20").unwrap());
        for bad in [
            "", "-1", "five", "5/week", "5/", "/min", "NaN", "inf", "0/min", "1e9", "0,5/min",
        ] {
            let e = RateLimit::parse(bad).unwrap_err();
            // The message names the part that is wrong.
            let part = bad.split(',').next().unwrap_or_default();
            assert!(e.contains(&format!("`{part}`")), "{bad}: {e}");
        }
    }
}
