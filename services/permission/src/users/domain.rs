//! Users as values: the account ([`User`], [`UserStatus`]), a new user and a profile change
//! with their rules (username, password, time zone and language), and the organisation's
//! defaults for users who chose none ([`OrgSettings`]). Nothing here knows about gRPC or SQL:
//! values are checked once, at the edge, and cannot be invalid past it.

use chrono::{DateTime, Utc};
use crm_access::{Locale, Preferences, Tz};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::validation::Violations;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Active,
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Active, Self::Disabled]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// A user as clients and events see it. The password hash is deliberately not part of it: it
/// stays in [`super::store`] and can never end up in a response or an event by accident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: Uuid,
    /// Lower case; unique.
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub status: UserStatus,
    /// The user's own time zone and language; `None`: the organisation's default applies.
    pub time_zone: Option<Tz>,
    pub locale: Option<Locale>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl User {
    /// What applies to the user: their own values, else the organisation's.
    pub fn effective(&self, org: &OrgSettings) -> Preferences {
        Preferences {
            time_zone: self.time_zone.unwrap_or(org.default_time_zone),
            locale: self.locale.unwrap_or(org.default_locale),
        }
    }
}

/// A validated change of a user's profile: `None` leaves a field as it is; for time zone and
/// language `Some(None)` clears the user's own value (the organisation default applies).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProfilePatch {
    pub display_name: Option<String>,
    pub time_zone: Option<Option<Tz>>,
    pub locale: Option<Option<Locale>>,
}

impl ProfilePatch {
    /// Validates the fields that are set; every bad one is reported. An empty display name is
    /// resolved to the username by the caller (it needs the record).
    pub fn parse(
        display_name: Option<&str>,
        time_zone: Option<&str>,
        locale: Option<&str>,
    ) -> Result<Self, crm_errors::ApiError> {
        let mut v = Violations::default();
        let patch = ProfilePatch {
            display_name: display_name.map(|d| {
                v.optional("display_name", d, MAX_DISPLAY_NAME)
                    .unwrap_or_default()
            }),
            time_zone: time_zone.map(|t| optional_time_zone(&mut v, "time_zone", t)),
            locale: locale.map(|l| optional_locale(&mut v, "locale", l)),
        };
        v.into_result()?;
        Ok(patch)
    }
}

/// The organisation's settings (one record): the defaults for users who chose none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgSettings {
    pub default_time_zone: Tz,
    pub default_locale: Locale,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

/// A validated change of the organisation's settings (`None`: unchanged).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct OrgSettingsPatch {
    pub default_time_zone: Option<Tz>,
    pub default_locale: Option<Locale>,
}

impl OrgSettingsPatch {
    pub fn parse(
        default_time_zone: Option<&str>,
        default_locale: Option<&str>,
    ) -> Result<Self, crm_errors::ApiError> {
        let mut v = Violations::default();
        let patch = OrgSettingsPatch {
            default_time_zone: default_time_zone
                .and_then(|t| required_time_zone(&mut v, "default_time_zone", t)),
            default_locale: default_locale
                .and_then(|l| required_locale(&mut v, "default_locale", l)),
        };
        v.into_result()?;
        Ok(patch)
    }
}

/// A validated new user.
#[derive(Debug)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    /// `None`: the user can only sign in through SSO.
    pub password: Option<SecretString>,
}

pub const MIN_USERNAME: usize = 3;
pub const MAX_USERNAME: usize = 64;
pub const MAX_DISPLAY_NAME: usize = 200;
pub use crm_errors::validation::MAX_EMAIL;
pub const MIN_PASSWORD: usize = 12;
pub const MAX_PASSWORD: usize = 256;
/// Lower-cased, 3 to 64 of `a-z 0-9 . _ - @`.
pub fn username(v: &mut Violations, field: &str, value: &str) -> String {
    let u = value.trim().to_lowercase();
    let len = u.chars().count();
    if !(MIN_USERNAME..=MAX_USERNAME).contains(&len) {
        v.add(
            field,
            format!("must be {MIN_USERNAME} to {MAX_USERNAME} characters"),
        );
    } else if !u
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-@".contains(c))
    {
        v.add(field, "may contain only letters a-z, digits and . _ - @");
    }
    u
}

/// A new password: 12 to 256 characters, taken exactly as given (spaces count).
pub fn password(v: &mut Violations, field: &str, value: &str) -> SecretString {
    let len = value.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&len) {
        v.add(
            field,
            format!("must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"),
        );
    }
    SecretString::from(value)
}

/// An optional new password: empty means none.
pub fn optional_password(v: &mut Violations, field: &str, value: &str) -> Option<SecretString> {
    (!value.is_empty()).then(|| password(v, field, value))
}

/// An IANA time zone name, exactly as the tz database spells it (surrounding spaces ignored).
pub fn required_time_zone(v: &mut Violations, field: &str, value: &str) -> Option<Tz> {
    let value = value.trim();
    if value.is_empty() {
        v.add(field, "must not be empty");
        return None;
    }
    let tz = crm_access::preferences::parse_time_zone(value);
    if tz.is_none() {
        v.add(field, crm_access::preferences::TIME_ZONE_EXPECTED);
    }
    tz
}

/// A time zone, or empty for none.
pub fn optional_time_zone(v: &mut Violations, field: &str, value: &str) -> Option<Tz> {
    if value.trim().is_empty() {
        None
    } else {
        required_time_zone(v, field, value)
    }
}

/// `zh-CN` or `en`, any case.
pub fn required_locale(v: &mut Violations, field: &str, value: &str) -> Option<Locale> {
    let locale = Locale::parse(value.trim());
    if locale.is_none() {
        v.add(field, Locale::EXPECTED);
    }
    locale
}

/// A language, or empty for none.
pub fn optional_locale(v: &mut Violations, field: &str, value: &str) -> Option<Locale> {
    if value.trim().is_empty() {
        None
    } else {
        required_locale(v, field, value)
    }
}

impl NewUser {
    /// Validates a new user; an empty display name becomes the username.
    pub fn parse(
        username: &str,
        display_name: &str,
        email: &str,
        password: &str,
    ) -> Result<Self, crm_errors::ApiError> {
        let mut v = Violations::default();
        let username = self::username(&mut v, "username", username);
        let display_name = v
            .optional("display_name", display_name, MAX_DISPLAY_NAME)
            .unwrap_or_else(|| username.clone());
        let new = NewUser {
            email: v.email("email", email),
            password: optional_password(&mut v, "password", password),
            username,
            display_name,
        };
        v.into_result()?;
        Ok(new)
    }

    pub fn has_password(&self) -> bool {
        self.password
            .as_ref()
            .is_some_and(|p| !p.expose_secret().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lower_cased_and_checked() {
        let mut v = Violations::default();
        assert_eq!(
            username(&mut v, "u", "  Alice.Smith@ACME "),
            "alice.smith@acme"
        );
        assert_eq!(username(&mut v, "u", "a_b-c.d"), "a_b-c.d");
        assert!(v.0.is_empty());
        for bad in ["ab", "has space", "ümlaut", "semi;colon", &"x".repeat(65)] {
            let mut v = Violations::default();
            username(&mut v, "username", bad);
            assert_eq!(v.0.len(), 1, "{bad:?}");
        }
    }

    #[test]
    fn password_policy_counts_characters_and_keeps_spaces() {
        let mut v = Violations::default();
        password(&mut v, "p", "  twelve chars ");
        password(&mut v, "p", &"ü".repeat(256));
        assert!(v.0.is_empty());
        for bad in ["short", &"x".repeat(257), "eleven char"] {
            let mut v = Violations::default();
            password(&mut v, "password", bad);
            assert_eq!(v.0.len(), 1, "{bad:?}");
        }
    }

    #[test]
    fn new_user_reports_every_bad_field_with_its_path() {
        let err = NewUser::parse("x", &"d".repeat(201), "not-an-email", "short").unwrap_err();
        let fields: Vec<_> = err.violations.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["username", "display_name", "email", "password"]);
        let ok = NewUser::parse("Bob", "", "", "").unwrap();
        assert_eq!(ok.display_name, "bob");
        assert!(!ok.has_password());
    }

    #[test]
    fn profile_patches_check_time_zone_and_language_and_name_the_field() {
        let p = ProfilePatch::parse(None, Some(" Asia/Shanghai "), Some("ZH-cn")).unwrap();
        assert_eq!(p.time_zone, Some(Some(Tz::Asia__Shanghai)));
        assert_eq!(p.locale, Some(Some(Locale::ZhCn)));
        assert_eq!(p.display_name, None);
        let clear = ProfilePatch::parse(Some(""), Some(""), Some("")).unwrap();
        assert_eq!(
            (clear.display_name, clear.time_zone, clear.locale),
            (Some(String::new()), Some(None), Some(None))
        );
        let err = ProfilePatch::parse(Some(&"d".repeat(201)), Some("Asia/Beijing"), Some("fr"))
            .unwrap_err();
        let fields: Vec<_> = err.violations.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["display_name", "time_zone", "locale"]);
        assert!(err.violations[1].message.contains("IANA"));
        assert_eq!(err.violations[2].message, "must be zh-CN or en");
    }

    #[test]
    fn organisation_defaults_cannot_be_cleared() {
        let err = OrgSettingsPatch::parse(Some(""), Some("")).unwrap_err();
        let fields: Vec<_> = err.violations.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["default_time_zone", "default_locale"]);
        let ok = OrgSettingsPatch::parse(Some("Europe/Berlin"), None).unwrap();
        assert_eq!(ok.default_time_zone, Some(Tz::Europe__Berlin));
        assert_eq!(ok.default_locale, None);
    }

    #[test]
    fn effective_values_are_the_users_else_the_organisations() {
        let org = OrgSettings {
            default_time_zone: Tz::Asia__Shanghai,
            default_locale: Locale::ZhCn,
            version: 1,
            updated_at: Utc::now(),
        };
        let mut user = User {
            id: Uuid::nil(),
            username: "u".into(),
            display_name: "u".into(),
            email: None,
            status: UserStatus::Active,
            time_zone: None,
            locale: None,
            version: 1,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        assert_eq!(user.effective(&org).time_zone, Tz::Asia__Shanghai);
        user.time_zone = Some(Tz::America__New_York);
        user.locale = Some(Locale::En);
        let p = user.effective(&org);
        assert_eq!((p.time_zone, p.locale), (Tz::America__New_York, Locale::En));
    }
}
