//! [`MarketCalendar`]: NYSE trading sessions, holidays, special closures and early closes, in New York
//! time; and [`Market`], the calendar with a clock and a publication delay, which decides how fresh daily
//! bars should be.
//!
//! The calendar is rules (weekend moves, Easter for Good Friday, Juneteenth from 2022) plus a short list
//! of exceptions (special closures, three irregular early closes). It is checked against a golden fixture
//! of every XNYS session and early close from 2000 to 2030 generated with the PyPI package
//! `exchange_calendars` (`technic-core/tests/fixtures/calendar/generate_xnys.py`). No crate covering NYSE
//! early closes and special closures was both maintained and verifiable against that fixture, so the rules
//! live here, where the fixture test pins them. Dates outside 2000–2030 follow the same rules; special
//! closures announced after this build are not known to it.
//!
//! Every conversion goes through `America/New_York` with chrono-tz, so the machine's time zone never
//! matters and DST switches are handled by the tz database.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::America::New_York;

use crate::clock::Clock;

/// Market days closed although the rules say open (from the fixture).
const SPECIAL_CLOSURES: [(i32, u32, u32); 10] = [
    (2001, 9, 11), // September 11 attacks, four days
    (2001, 9, 12),
    (2001, 9, 13),
    (2001, 9, 14),
    (2004, 6, 11),  // President Reagan's funeral
    (2007, 1, 2),   // President Ford's funeral
    (2012, 10, 29), // Hurricane Sandy, two days
    (2012, 10, 30),
    (2018, 12, 5), // President G. H. W. Bush's funeral
    (2025, 1, 9),  // President Carter's funeral
];

/// Early closes the rules do not give: in 2002 the July early close was on the 5th, not the 3rd, and
/// 2003 closed early on Friday 26 December.
const EXTRA_EARLY_CLOSES: [(i32, u32, u32); 2] = [(2002, 7, 5), (2003, 12, 26)];
/// A day the rules would close early that ran a full session.
const FULL_DAYS: [(i32, u32, u32); 1] = [(2002, 7, 3)];

fn ymd((y, m, d): (i32, u32, u32)) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
}

/// The NYSE calendar (XNYS). A plain value: cheap to copy, no I/O.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MarketCalendar;

impl MarketCalendar {
    /// The New York Stock Exchange.
    pub fn nyse() -> Self {
        Self
    }

    /// True when the market trades on `date`.
    pub fn is_session(&self, date: NaiveDate) -> bool {
        !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && self.holiday(date).is_none()
    }

    /// Why the market is closed on weekday `date`, or `None` when it trades (weekends return `None`).
    pub fn holiday(&self, date: NaiveDate) -> Option<&'static str> {
        if SPECIAL_CLOSURES.iter().any(|d| ymd(*d) == date) {
            return Some("special closure");
        }
        let y = date.year();
        let observed = |d: NaiveDate| match d.weekday() {
            Weekday::Sat => d - Days::new(1),
            Weekday::Sun => d + Days::new(1),
            _ => d,
        };
        let fixed = |m, d| NaiveDate::from_ymd_opt(y, m, d).map(observed);
        // New Year's Day on a Saturday is not moved to Friday 31 December: that day trades.
        let new_year = NaiveDate::from_ymd_opt(y, 1, 1)
            .filter(|d| d.weekday() != Weekday::Sat)
            .map(observed);
        let rules: [(Option<NaiveDate>, &'static str); 10] = [
            (new_year, "New Year's Day"),
            (
                nth_weekday(y, 1, Weekday::Mon, 3).filter(|_| y >= 1998),
                "Martin Luther King Jr. Day",
            ),
            (nth_weekday(y, 2, Weekday::Mon, 3), "Washington's Birthday"),
            (easter(y).map(|e| e - Days::new(2)), "Good Friday"),
            (last_weekday_of(y, 5, Weekday::Mon), "Memorial Day"),
            (fixed(6, 19).filter(|_| y >= 2022), "Juneteenth"),
            (fixed(7, 4), "Independence Day"),
            (nth_weekday(y, 9, Weekday::Mon, 1), "Labor Day"),
            (nth_weekday(y, 11, Weekday::Thu, 4), "Thanksgiving Day"),
            (fixed(12, 25), "Christmas Day"),
        ];
        rules
            .into_iter()
            .find(|(d, _)| *d == Some(date))
            .map(|(_, name)| name)
    }

    /// True when `date` is a session that closes at 13:00 New York time.
    pub fn is_early_close(&self, date: NaiveDate) -> bool {
        if !self.is_session(date) || FULL_DAYS.iter().any(|d| ymd(*d) == date) {
            return false;
        }
        if EXTRA_EARLY_CLOSES.iter().any(|d| ymd(*d) == date) {
            return true;
        }
        let y = date.year();
        let weekday = !matches!(date.weekday(), Weekday::Sat | Weekday::Sun | Weekday::Fri);
        let july_3 = NaiveDate::from_ymd_opt(y, 7, 3) == Some(date) && weekday;
        let christmas_eve = NaiveDate::from_ymd_opt(y, 12, 24) == Some(date) && weekday;
        let after_thanksgiving = nth_weekday(y, 11, Weekday::Thu, 4).map(|t| t + Days::new(1)) == Some(date);
        july_3 || christmas_eve || after_thanksgiving
    }

    /// The closing time of session `date` in New York (16:00, or 13:00 on early closes); `None` when
    /// the market does not trade that day.
    pub fn close_time(&self, date: NaiveDate) -> Option<NaiveTime> {
        if !self.is_session(date) {
            return None;
        }
        let hour = if self.is_early_close(date) { 13 } else { 16 };
        NaiveTime::from_hms_opt(hour, 0, 0)
    }

    /// The instant session `date` closes, in UTC; `None` when it is not a session.
    pub fn session_close(&self, date: NaiveDate) -> Option<DateTime<Utc>> {
        let local = date.and_time(self.close_time(date)?);
        New_York
            .from_local_datetime(&local)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The New York calendar date at instant `now`.
    pub fn market_date(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&New_York).date_naive()
    }

    /// The first session on or after `date`.
    pub fn session_on_or_after(&self, date: NaiveDate) -> NaiveDate {
        let mut d = date;
        // No gap between sessions is longer than a week (the 2001 closure was four days plus a weekend).
        for _ in 0..14 {
            if self.is_session(d) {
                return d;
            }
            d = d.succ_opt().unwrap_or(d);
        }
        d
    }

    /// The last session on or before `date`.
    pub fn session_on_or_before(&self, date: NaiveDate) -> NaiveDate {
        let mut d = date;
        for _ in 0..14 {
            if self.is_session(d) {
                return d;
            }
            d = d.pred_opt().unwrap_or(d);
        }
        d
    }

    /// The session before `date` (strictly).
    pub fn previous_session(&self, date: NaiveDate) -> NaiveDate {
        self.session_on_or_before(date.pred_opt().unwrap_or(date))
    }

    /// The session after `date` (strictly).
    pub fn next_session(&self, date: NaiveDate) -> NaiveDate {
        self.session_on_or_after(date.succ_opt().unwrap_or(date))
    }

    /// The last session whose close is at or before `now`.
    pub fn last_completed_session(&self, now: DateTime<Utc>) -> NaiveDate {
        self.last_closed_before(now, Duration::ZERO)
    }

    /// The close of the first session that closes strictly after `now`.
    pub fn next_session_close(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let mut d = self.session_on_or_after(self.market_date(now));
        loop {
            match self.session_close(d) {
                Some(close) if close > now => return close,
                _ => d = self.next_session(d),
            }
        }
    }

    /// Every session from `from` to `to`, both included, ascending.
    pub fn sessions(&self, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
        from.iter_days()
            .take_while(|d| *d <= to)
            .filter(|d| self.is_session(*d))
            .collect()
    }

    /// The last session whose close plus `delay` is at or before `now`.
    fn last_closed_before(&self, now: DateTime<Utc>, delay: Duration) -> NaiveDate {
        let delay = chrono::Duration::from_std(delay).unwrap_or_default();
        let mut d = self.session_on_or_before(self.market_date(now));
        loop {
            match self.session_close(d) {
                Some(close) if close + delay <= now => return d,
                _ => d = self.previous_session(d),
            }
        }
    }
}

/// The `n`-th (1-based) `weekday` of `month` in `year`.
fn nth_weekday(year: i32, month: u32, weekday: Weekday, n: u8) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, month, weekday, n)
}

/// The last `weekday` of `month` in `year`.
fn last_weekday_of(year: i32, month: u32, weekday: Weekday) -> Option<NaiveDate> {
    nth_weekday(year, month, weekday, 5).or_else(|| nth_weekday(year, month, weekday, 4))
}

/// Western Easter Sunday (the anonymous Gregorian algorithm).
fn easter(year: i32) -> Option<NaiveDate> {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32)
}

/// How long after a session's close its daily bar is published by default.
pub const DEFAULT_PUBLICATION_DELAY: Duration = Duration::from_secs(20 * 60);

/// The calendar, a clock and the publication delay: decides which daily bar should exist now and until
/// when a set of daily bars stays current. Cheap to clone.
#[derive(Clone)]
pub struct Market {
    /// The trading calendar.
    pub calendar: MarketCalendar,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    /// Time from a session's close until its bar is published.
    pub publication_delay: Duration,
}

impl fmt::Debug for Market {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Market")
            .field("now", &self.clock.now())
            .field("publication_delay", &self.publication_delay)
            .finish()
    }
}

impl Default for Market {
    fn default() -> Self {
        Self::new(Arc::new(crate::clock::SystemClock))
    }
}

impl Market {
    /// NYSE with `clock` and the default publication delay.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            calendar: MarketCalendar::nyse(),
            clock,
            publication_delay: DEFAULT_PUBLICATION_DELAY,
        }
    }

    /// The market a program runs on: the clock of [`crate::clock::from_env`] (`TECHNIC_NOW` fixes the
    /// instant) and the publication delay in minutes from `TECHNIC_PUBLICATION_DELAY_MIN` (default 20,
    /// at most 1440). A malformed value is an error naming the variable.
    pub fn from_env() -> crate::Result<Self> {
        let market = Self::new(crate::clock::from_env()?);
        match std::env::var("TECHNIC_PUBLICATION_DELAY_MIN") {
            Ok(text) if !text.trim().is_empty() => {
                let minutes: u64 = text.trim().parse().ok().filter(|m| *m <= 1440).ok_or_else(|| {
                    crate::Error::config(format!(
                        "TECHNIC_PUBLICATION_DELAY_MIN=`{text}` is not a number of minutes from 0 to 1440; \
                             unset it for the default of 20"
                    ))
                })?;
                Ok(market.with_publication_delay(Duration::from_secs(minutes * 60)))
            }
            _ => Ok(market),
        }
    }

    /// The same with another publication delay.
    pub fn with_publication_delay(mut self, delay: Duration) -> Self {
        self.publication_delay = delay;
        self
    }

    /// Now, from the clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The date of the newest daily bar that should exist now: the last session whose close plus the
    /// publication delay has passed.
    pub fn expected_session(&self) -> NaiveDate {
        self.expected_session_at(self.now())
    }

    /// [`Market::expected_session`] at instant `now`.
    pub fn expected_session_at(&self, now: DateTime<Utc>) -> NaiveDate {
        self.calendar.last_closed_before(now, self.publication_delay)
    }

    /// The instant the next daily bar becomes expected (the next session close plus the delay).
    pub fn next_bar_at(&self) -> DateTime<Utc> {
        let now = self.now();
        let delay = chrono::Duration::from_std(self.publication_delay).unwrap_or_default();
        let next = self.calendar.next_session(self.expected_session_at(now));
        self.calendar
            .session_close(next)
            .map_or(now + chrono::Duration::days(1), |close| close + delay)
    }

    /// Time left until [`Market::next_bar_at`] (zero when it has passed).
    pub fn until_next_bar(&self) -> Duration {
        (self.next_bar_at() - self.now()).to_std().unwrap_or_default()
    }

    /// Why there is no newer bar than the expected one, in words, for messages: "market closed for
    /// Thanksgiving Day", "today's bar is published at 16:20 New York time", or "weekend".
    pub fn why_no_newer_bar(&self) -> String {
        let now = self.now();
        let today = self.calendar.market_date(now);
        if let Some(holiday) = self.calendar.holiday(today)
            && !matches!(today.weekday(), Weekday::Sat | Weekday::Sun)
        {
            return format!("market closed today for {holiday}");
        }
        if matches!(today.weekday(), Weekday::Sat | Weekday::Sun) {
            return "market closed for the weekend".to_owned();
        }
        match self.calendar.session_close(today) {
            Some(close) if now < close => "today's session is still open".to_owned(),
            Some(close) => {
                let at = close + chrono::Duration::from_std(self.publication_delay).unwrap_or_default();
                let at_text = at.with_timezone(&New_York).format("%H:%M");
                if now < at {
                    format!("today's bar is expected from {at_text} New York time")
                } else {
                    format!("today's bar was due from {at_text} New York time and is not published yet")
                }
            }
            None => "market closed today".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests;
