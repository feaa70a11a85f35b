//! A user's time zone and language, and the calendar arithmetic that follows from them.
//!
//! Every user has an effective time zone (an IANA name such as `Asia/Shanghai`) and locale
//! (`zh-CN` or `en`): their own, or else the organisation's default, both kept by the permission
//! service. The gateway puts the effective pair into the access context of every call
//! ([`crate::Access::time_zone`], [`crate::Access::locale`]), so whatever an owning service later
//! computes about "today", a month, quiet hours or a report period is the caller's, not the
//! server's (servers run in UTC).
//!
//! The tz database is compiled in (`chrono-tz`); a newer database arrives with a newer
//! `chrono-tz`.

use chrono::{DateTime, Datelike as _, Days, Months, NaiveDate, NaiveTime, TimeZone, Utc};
pub use chrono_tz::Tz;

/// The languages the CRM speaks. Closed: a new language is a release (texts, formats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Locale {
    /// Simplified Chinese (mainland China): `zh-CN`.
    ZhCn,
    /// English: `en`.
    En,
}

impl Locale {
    pub const ALL: &'static [Locale] = &[Locale::ZhCn, Locale::En];

    /// The BCP 47 tag: `zh-CN`, `en`.
    pub fn as_str(self) -> &'static str {
        match self {
            Locale::ZhCn => "zh-CN",
            Locale::En => "en",
        }
    }

    /// From a BCP 47 tag, ignoring case (tags are case-insensitive): `zh-CN`, `zh-cn`, `en`,
    /// `EN`. Anything else — `zh`, `zh_CN`, `en-US`, `fr` — is `None`.
    pub fn parse(tag: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|l| l.as_str().eq_ignore_ascii_case(tag))
    }

    /// What a field error says when [`Self::parse`] refused a value.
    pub const EXPECTED: &'static str = "must be zh-CN or en";
}

/// As its tag (`"zh-CN"`), in events and settings.
impl serde::Serialize for Locale {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Locale {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let tag = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Locale::parse(&tag)
            .ok_or_else(|| serde::de::Error::custom(format!("{tag:?} {}", Locale::EXPECTED)))
    }
}

impl std::fmt::Display for Locale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An IANA time zone by its exact name (`Asia/Shanghai`, `America/New_York`, `UTC`); `None` for
/// anything the compiled tz database does not know. Names are case-sensitive, as in the
/// database; backward-compatible links (`Asia/Chongqing`, `US/Eastern`) are accepted.
pub fn parse_time_zone(name: &str) -> Option<Tz> {
    name.parse::<Tz>().ok()
}

/// What a field error says when [`parse_time_zone`] refused a value.
pub const TIME_ZONE_EXPECTED: &str =
    "must be an IANA time zone name, such as Asia/Shanghai or America/New_York";

/// The time zone and language that apply to a user: their own, else the organisation's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preferences {
    pub time_zone: Tz,
    pub locale: Locale,
}

impl Preferences {
    /// What applies when nothing is known (a context from a caller that predates these fields):
    /// UTC and English. The gateway always sends the effective values, so services meet this only
    /// for calls that were not made for a user through it.
    pub const FALLBACK: Preferences = Preferences {
        time_zone: Tz::UTC,
        locale: Locale::En,
    };
}

/// The calendar date in `tz` at the instant `now`: at 2025-03-10T16:30Z it is already the 11th
/// in Asia/Shanghai and still the 10th in UTC.
pub fn today(tz: Tz, now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&tz).date_naive()
}

/// The instant a local calendar day begins in `tz`. Usually local midnight; on a day whose
/// midnight falls in a daylight-saving gap (America/Santiago starts summer time at 24:00, so
/// 00:00 never happens) it is the first local time that exists; when midnight happens twice,
/// the earlier one.
pub fn start_of_day(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_time(NaiveTime::MIN);
    // Gaps are at most a few hours in the tz database; step through them a minute at a time.
    for minutes in 0..=(24 * 60) {
        let local = midnight + chrono::Duration::minutes(minutes);
        if let Some(start) = tz.from_local_datetime(&local).earliest() {
            return start.with_timezone(&Utc);
        }
    }
    // Unreachable with real zones; UTC midnight is a defined answer nonetheless.
    midnight.and_utc()
}

/// The half-open interval `[start, end)` of one local day in `tz`, as UTC instants: what a
/// query for "today's" records compares `created_at` with. It is 23 or 25 hours long on the
/// days daylight-saving time starts or ends.
pub fn day_range(tz: Tz, date: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let next = date.checked_add_days(Days::new(1)).unwrap_or(date);
    (start_of_day(tz, date), start_of_day(tz, next))
}

/// The half-open interval of the local calendar month that contains `date`, as UTC instants
/// (a monthly report period).
pub fn month_range(tz: Tz, date: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let first = date.with_day0(0).unwrap_or(date);
    let next = first.checked_add_months(Months::new(1)).unwrap_or(first);
    (start_of_day(tz, first), start_of_day(tz, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    const SHANGHAI: Tz = Tz::Asia__Shanghai;
    const NEW_YORK: Tz = Tz::America__New_York;

    #[test]
    fn locales_are_two_and_case_insensitive() {
        assert_eq!(Locale::parse("zh-CN"), Some(Locale::ZhCn));
        assert_eq!(Locale::parse("zh-cn"), Some(Locale::ZhCn));
        assert_eq!(Locale::parse("EN"), Some(Locale::En));
        for bad in ["", "zh", "zh_CN", "zh-TW", "en-US", "fr", " en"] {
            assert_eq!(Locale::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Locale::ZhCn.to_string(), "zh-CN");
    }

    #[test]
    fn time_zones_are_iana_names() {
        assert_eq!(parse_time_zone("Asia/Shanghai"), Some(SHANGHAI));
        assert_eq!(parse_time_zone("UTC"), Some(Tz::UTC));
        assert_eq!(
            parse_time_zone("US/Eastern").map(|t| t.name()),
            Some("US/Eastern")
        );
        for bad in [
            "",
            "asia/shanghai",
            "Asia/Beijing",
            "+08:00",
            "CST",
            "Mars/Olympus",
        ] {
            assert_eq!(parse_time_zone(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn today_in_shanghai_starts_eight_hours_before_utc() {
        // 23:59:59 in Shanghai, 15:59:59 in UTC: both still the 10th.
        let before = utc("2025-03-10T15:59:59Z");
        assert_eq!(today(SHANGHAI, before), date(2025, 3, 10));
        assert_eq!(today(Tz::UTC, before), date(2025, 3, 10));
        // One second later Shanghai is on the 11th; UTC stays on the 10th until 24:00Z.
        let after = utc("2025-03-10T16:00:00Z");
        assert_eq!(today(SHANGHAI, after), date(2025, 3, 11));
        assert_eq!(today(Tz::UTC, after), date(2025, 3, 10));
        assert_eq!(
            today(Tz::UTC, utc("2025-03-10T23:59:59Z")),
            date(2025, 3, 10)
        );
        assert_eq!(
            today(SHANGHAI, utc("2025-03-10T23:59:59Z")),
            date(2025, 3, 11)
        );

        let (start, end) = day_range(SHANGHAI, date(2025, 3, 11));
        assert_eq!(start, utc("2025-03-10T16:00:00Z"));
        assert_eq!(end, utc("2025-03-11T16:00:00Z"));
    }

    #[test]
    fn new_york_days_follow_daylight_saving_time() {
        // Summer time starts on 2025-03-09 at 02:00 EST (07:00Z): that day has 23 hours.
        assert_eq!(
            today(NEW_YORK, utc("2025-03-09T04:59:59Z")),
            date(2025, 3, 8)
        );
        assert_eq!(
            today(NEW_YORK, utc("2025-03-09T05:00:00Z")),
            date(2025, 3, 9)
        );
        let (start, end) = day_range(NEW_YORK, date(2025, 3, 9));
        assert_eq!(start, utc("2025-03-09T05:00:00Z")); // midnight EST (-05:00)
        assert_eq!(end, utc("2025-03-10T04:00:00Z")); // midnight EDT (-04:00)
        assert_eq!((end - start).num_hours(), 23);
        // The next midnight is at 04:00Z now.
        assert_eq!(
            today(NEW_YORK, utc("2025-03-10T03:59:59Z")),
            date(2025, 3, 9)
        );
        assert_eq!(
            today(NEW_YORK, utc("2025-03-10T04:00:00Z")),
            date(2025, 3, 10)
        );
        // It ends on 2025-11-02 at 02:00 EDT: 25 hours.
        let (start, end) = day_range(NEW_YORK, date(2025, 11, 2));
        assert_eq!(start, utc("2025-11-02T04:00:00Z"));
        assert_eq!(end, utc("2025-11-03T05:00:00Z"));
        assert_eq!((end - start).num_hours(), 25);
    }

    #[test]
    fn a_day_whose_midnight_does_not_exist_starts_at_the_first_local_time_that_does() {
        // Chile moved its clocks from 24:00 to 01:00 on 2024-09-08.
        let santiago = parse_time_zone("America/Santiago").unwrap();
        assert_eq!(
            start_of_day(santiago, date(2024, 9, 8)),
            utc("2024-09-08T04:00:00Z")
        );
        assert_eq!(
            start_of_day(santiago, date(2024, 9, 7)),
            utc("2024-09-07T04:00:00Z")
        );
    }

    #[test]
    fn months_are_local_months() {
        let (start, end) = month_range(SHANGHAI, date(2025, 2, 14));
        assert_eq!(start, utc("2025-01-31T16:00:00Z"));
        assert_eq!(end, utc("2025-02-28T16:00:00Z"));
        // March in New York spans the switch to summer time.
        let (start, end) = month_range(NEW_YORK, date(2025, 3, 31));
        assert_eq!(start, utc("2025-03-01T05:00:00Z"));
        assert_eq!(end, utc("2025-04-01T04:00:00Z"));
    }
}
