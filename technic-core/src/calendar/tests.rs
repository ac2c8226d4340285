//! The calendar against the exchange_calendars fixture, and [`Market`] at chosen instants: holidays,
//! early closes, weekends, before publication and DST switch days.

use super::*;
use crate::clock::ManualClock;

const FIXTURE: &str = include_str!("../../tests/fixtures/calendar/xnys_2000_2030.csv");

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

/// `2026-11-27T17:30:00-05:00` as a UTC instant.
fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().with_timezone(&Utc)
}

fn market(rfc3339: &str) -> Market {
    Market::new(Arc::new(ManualClock::new(at(rfc3339))))
}

#[test]
fn every_xnys_session_and_close_2000_to_2030_matches_exchange_calendars() {
    let cal = MarketCalendar::nyse();
    let mut expected = Vec::new();
    for line in FIXTURE.lines().skip(1) {
        let (date, close) = line.split_once(',').unwrap();
        let date: NaiveDate = date.parse().unwrap();
        let close = NaiveTime::parse_from_str(close, "%H:%M").unwrap();
        expected.push((date, close));
    }
    assert_eq!(expected.len(), 7794, "fixture rows");
    let got: Vec<(NaiveDate, NaiveTime)> = cal
        .sessions(d(2000, 1, 1), d(2030, 12, 31))
        .into_iter()
        .map(|s| (s, cal.close_time(s).unwrap()))
        .collect();
    let missing: Vec<_> = expected.iter().filter(|e| !got.contains(e)).take(10).collect();
    let extra: Vec<_> = got.iter().filter(|g| !expected.contains(g)).take(10).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    assert_eq!(got, expected);
}

#[test]
fn thanksgiving_week_2026() {
    let cal = MarketCalendar::nyse();
    assert!(cal.is_session(d(2026, 11, 25)));
    assert_eq!(cal.holiday(d(2026, 11, 26)), Some("Thanksgiving Day"));
    assert!(cal.is_early_close(d(2026, 11, 27)));
    assert_eq!(
        cal.session_close(d(2026, 11, 27)),
        Some(at("2026-11-27T13:00:00-05:00"))
    );
    assert_eq!(
        cal.sessions(d(2026, 11, 25), d(2026, 11, 30)),
        vec![d(2026, 11, 25), d(2026, 11, 27), d(2026, 11, 30)]
    );
}

#[test]
fn last_completed_and_next_close_around_an_early_close() {
    let cal = MarketCalendar::nyse();
    // Friday after Thanksgiving, 12:59 and 13:00 New York time.
    assert_eq!(
        cal.last_completed_session(at("2026-11-27T12:59:00-05:00")),
        d(2026, 11, 25)
    );
    assert_eq!(
        cal.last_completed_session(at("2026-11-27T13:00:00-05:00")),
        d(2026, 11, 27)
    );
    assert_eq!(
        cal.next_session_close(at("2026-11-26T10:00:00-05:00")),
        at("2026-11-27T13:00:00-05:00")
    );
    // Saturday: the next close is Monday's.
    assert_eq!(
        cal.next_session_close(at("2026-11-28T10:00:00-05:00")),
        at("2026-11-30T16:00:00-05:00")
    );
}

#[test]
fn expected_session_waits_for_publication() {
    // Wednesday 16:10: closed but not yet published (20 min delay) → Tuesday.
    assert_eq!(
        market("2026-11-25T16:10:00-05:00").expected_session(),
        d(2026, 11, 24)
    );
    assert_eq!(
        market("2026-11-25T16:20:00-05:00").expected_session(),
        d(2026, 11, 25)
    );
    // Thanksgiving all day → Wednesday; Friday 13:20 → Friday.
    assert_eq!(
        market("2026-11-26T20:00:00-05:00").expected_session(),
        d(2026, 11, 25)
    );
    assert_eq!(
        market("2026-11-27T13:19:00-05:00").expected_session(),
        d(2026, 11, 25)
    );
    assert_eq!(
        market("2026-11-27T13:20:00-05:00").expected_session(),
        d(2026, 11, 27)
    );
    // The weekend → Friday; Monday morning too.
    assert_eq!(
        market("2026-11-29T09:00:00-05:00").expected_session(),
        d(2026, 11, 27)
    );
    assert_eq!(
        market("2026-11-30T09:00:00-05:00").expected_session(),
        d(2026, 11, 27)
    );
}

#[test]
fn the_machine_time_zone_never_matters() {
    // 20:00 New York on Wednesday is already Thursday in Tokyo and in UTC; the expected bar is still
    // Wednesday's, and the next one is Friday's early close plus the delay.
    let m = market("2026-11-26T10:00:00+09:00");
    assert_eq!(m.calendar.market_date(m.now()), d(2026, 11, 25));
    assert_eq!(m.expected_session(), d(2026, 11, 25));
    assert_eq!(m.next_bar_at(), at("2026-11-27T13:20:00-05:00"));
    let utc = market("2026-11-26T01:00:00Z");
    assert_eq!(utc.expected_session(), d(2026, 11, 25));
    let la = market("2026-11-25T17:00:00-08:00");
    assert_eq!(la.expected_session(), d(2026, 11, 25));
}

#[test]
fn dst_switch_days_close_at_16_new_york_time() {
    let cal = MarketCalendar::nyse();
    // 2026-03-09 is the Monday after the spring switch (EDT, UTC−4); 2026-11-02 after the fall one (EST).
    assert_eq!(cal.session_close(d(2026, 3, 9)), Some(at("2026-03-09T20:00:00Z")));
    assert_eq!(cal.session_close(d(2026, 3, 6)), Some(at("2026-03-06T21:00:00Z")));
    assert_eq!(
        cal.session_close(d(2026, 11, 2)),
        Some(at("2026-11-02T21:00:00Z"))
    );
    assert_eq!(
        cal.session_close(d(2026, 10, 30)),
        Some(at("2026-10-30T20:00:00Z"))
    );
    // On the switch Sunday itself, the expected bar is Friday's.
    assert_eq!(
        market("2026-03-08T12:00:00-04:00").expected_session(),
        d(2026, 3, 6)
    );
    assert_eq!(
        market("2026-11-01T12:00:00-05:00").expected_session(),
        d(2026, 10, 30)
    );
}

#[test]
fn messages_say_why_there_is_no_newer_bar() {
    assert!(
        market("2026-11-26T12:00:00-05:00")
            .why_no_newer_bar()
            .contains("Thanksgiving")
    );
    assert!(
        market("2026-11-28T12:00:00-05:00")
            .why_no_newer_bar()
            .contains("weekend")
    );
    assert!(
        market("2026-11-25T11:00:00-05:00")
            .why_no_newer_bar()
            .contains("still open")
    );
    assert!(
        market("2026-11-25T16:05:00-05:00")
            .why_no_newer_bar()
            .contains("expected from 16:20")
    );
    // Past the publication time the bar is late, not "expected from" a time already gone.
    let late = market("2026-11-25T19:30:00-05:00").why_no_newer_bar();
    assert!(
        late.contains("was due from 16:20") && late.contains("not published yet"),
        "{late}"
    );
}

#[test]
fn until_next_bar_counts_down_to_publication() {
    let m = market("2026-11-25T16:20:00-05:00");
    // Next: Friday 13:00 + 20 min.
    assert_eq!(m.until_next_bar(), Duration::from_secs((24 + 21) * 3600));
}
