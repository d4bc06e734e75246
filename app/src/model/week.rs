//! The billing week: an ISO 8601 week (Monday 00:00 to the next Monday 00:00) in the business
//! time zone, written `2026-W48`. Weeks that cross a daylight-saving change last 167 or 169 hours.

use std::fmt;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// An ISO week, always one that exists (parse, don't validate).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BillingWeek {
    /// The ISO week-numbering year (not always the calendar year of every day in the week).
    year: i32,
    /// 1 to 52 or 53.
    week: u32,
}

impl BillingWeek {
    /// Parses `YYYY-Www`; the error says what is expected.
    pub fn parse(value: &str) -> Result<BillingWeek, String> {
        let bad = || format!("{value:?} is not a week: write YYYY-Www, for example 2026-W48");
        let (year, week) = value.trim().split_once("-W").ok_or_else(bad)?;
        if year.len() != 4 || week.len() != 2 || !year.bytes().chain(week.bytes()).all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let (year, week) = (year.parse().map_err(|_| bad())?, week.parse().map_err(|_| bad())?);
        NaiveDate::from_isoywd_opt(year, week, Weekday::Mon)
            .map(|_| BillingWeek { year, week })
            .ok_or_else(|| format!("{value:?} does not exist: {year} has no week {week}"))
    }

    /// The week in which the local date of `instant` in `tz` falls.
    pub fn containing(instant: DateTime<Utc>, tz: Tz) -> BillingWeek {
        let iso = instant.with_timezone(&tz).date_naive().iso_week();
        BillingWeek { year: iso.year(), week: iso.week() }
    }

    /// Its Monday.
    pub fn monday(self) -> NaiveDate {
        NaiveDate::from_isoywd_opt(self.year, self.week, Weekday::Mon).expect("a parsed week exists")
    }

    /// The week after.
    pub fn next(self) -> BillingWeek {
        let iso = (self.monday() + Duration::days(7)).iso_week();
        BillingWeek { year: iso.year(), week: iso.week() }
    }

    /// The week before.
    pub fn previous(self) -> BillingWeek {
        let iso = (self.monday() - Duration::days(7)).iso_week();
        BillingWeek { year: iso.year(), week: iso.week() }
    }

    /// The instant the week starts: Monday 00:00 in `tz`. Where a clock change skips midnight,
    /// the first instant of that Monday.
    pub fn start(self, tz: Tz) -> DateTime<Utc> {
        let midnight = self.monday().and_hms_opt(0, 0, 0).expect("midnight is a time");
        // A skipped local time (a spring-forward gap at midnight) resolves to the first valid
        // minute after it; gaps are at most a few hours.
        (0..=24 * 60)
            .find_map(|minutes| tz.from_local_datetime(&(midnight + Duration::minutes(minutes))).earliest())
            .expect("every day has a valid local time")
            .with_timezone(&Utc)
    }

    /// The instant the week ends (exclusive): the next week's start.
    pub fn end(self, tz: Tz) -> DateTime<Utc> {
        self.next().start(tz)
    }

    /// How long the week lasts in `tz`: 168 hours, or 167 / 169 across a clock change.
    pub fn hours(self, tz: Tz) -> i64 {
        (self.end(tz) - self.start(tz)).num_hours()
    }
}

impl fmt::Display for BillingWeek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-W{:02}", self.year, self.week)
    }
}

impl std::str::FromStr for BillingWeek {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BillingWeek::parse(s)
    }
}

impl Serialize for BillingWeek {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BillingWeek {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        BillingWeek::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_prints() {
        let week = BillingWeek::parse("2026-W48").unwrap();
        assert_eq!(week.to_string(), "2026-W48");
        assert_eq!(week.monday(), NaiveDate::from_ymd_opt(2026, 11, 23).unwrap());
        assert_eq!(BillingWeek::parse("2020-W53").unwrap().to_string(), "2020-W53");
        for bad in ["2026-48", "2026-W4", "2026-W048", "26-W48", "2026-w48", "2026-W00", "", "x"] {
            assert!(BillingWeek::parse(bad).is_err(), "{bad}");
        }
        assert!(BillingWeek::parse("2021-W53").unwrap_err().contains("2021 has no week 53"));
        assert_eq!(serde_json::to_string(&week).unwrap(), "\"2026-W48\"");
    }

    #[test]
    fn weeks_cross_years_the_iso_way() {
        // 2027-01-01 is a Friday: it belongs to 2026-W53.
        let friday = Utc.with_ymd_and_hms(2027, 1, 1, 12, 0, 0).unwrap();
        assert_eq!(BillingWeek::containing(friday, Tz::UTC).to_string(), "2026-W53");
        assert_eq!(BillingWeek::parse("2026-W53").unwrap().next().to_string(), "2027-W01");
        assert_eq!(BillingWeek::parse("2027-W01").unwrap().previous().to_string(), "2026-W53");
    }

    #[test]
    fn daylight_saving_weeks_are_167_or_169_hours() {
        let paris = chrono_tz::Europe::Paris;
        assert_eq!(
            BillingWeek::parse("2026-W13").unwrap().hours(paris),
            167,
            "clocks go forward on 29 March"
        );
        assert_eq!(BillingWeek::parse("2026-W43").unwrap().hours(paris), 169, "clocks go back on 25 October");
        assert_eq!(BillingWeek::parse("2026-W20").unwrap().hours(paris), 168);
        assert_eq!(BillingWeek::parse("2026-W13").unwrap().hours(Tz::UTC), 168);
        // Monday 00:00 in Paris is Sunday 23:00 UTC in winter.
        let week = BillingWeek::parse("2026-W48").unwrap();
        assert_eq!(week.start(paris), Utc.with_ymd_and_hms(2026, 11, 22, 23, 0, 0).unwrap());
    }

    #[test]
    fn weeks_start_on_their_monday_in_zones_that_change_clocks_at_midnight() {
        // Santiago, Havana and Beirut move their clocks at midnight; whatever day it falls on,
        // every week of twelve years starts on its own Monday, in the first two local hours.
        for tz in [chrono_tz::America::Santiago, chrono_tz::America::Havana, chrono_tz::Asia::Beirut] {
            let mut week = BillingWeek::parse("2015-W01").unwrap();
            for _ in 0..(52 * 12) {
                let start = week.start(tz);
                let local = start.with_timezone(&tz);
                assert_eq!(local.date_naive(), week.monday(), "{tz} {week}");
                assert!(local.time() < chrono::NaiveTime::from_hms_opt(2, 0, 0).unwrap(), "{tz} {week}");
                assert!(start < week.end(tz));
                week = week.next();
            }
        }
    }

    proptest! {
        #[test]
        fn every_instant_is_in_exactly_one_week(seconds in 0i64..4_102_444_800, zone in prop::sample::select(vec!["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "America/Santiago"])) {
            let tz: Tz = zone.parse().unwrap();
            let instant = DateTime::from_timestamp(seconds, 0).unwrap();
            let week = BillingWeek::containing(instant, tz);
            prop_assert!(week.start(tz) <= instant && instant < week.end(tz), "{} {}", week, instant);
            prop_assert_eq!(week.end(tz), week.next().start(tz));
            prop_assert!((167..=169).contains(&week.hours(tz)));
            prop_assert_eq!(BillingWeek::parse(&week.to_string()).unwrap(), week);
        }
    }
}
