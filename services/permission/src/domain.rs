//! Domain types and input validation. Nothing here knows about gRPC or SQL: values are checked
//! once, at the edge, and cannot be invalid past it.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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
/// stays in [`crate::store`] and can never end up in a response or an event by accident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: Uuid,
    /// Lower case; unique.
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub status: UserStatus,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
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
/// What a login event keeps of the username as typed.
pub const MAX_LOGGED_USERNAME: usize = 64;
/// Throttle keys are cut here: no valid username is longer, and the table must not grow with
/// whatever an attacker sends.
const MAX_THROTTLE_KEY: usize = 128;

/// The key failed sign-ins are counted under: the username as typed, trimmed and lower-cased —
/// the same normalisation usernames are stored with, so `Alice` and `alice ` share a counter.
/// It does not depend on whether the user exists (see the crate docs).
pub fn throttle_key(username: &str) -> String {
    username
        .trim()
        .to_lowercase()
        .chars()
        .take(MAX_THROTTLE_KEY)
        .collect()
}

/// The first `max` characters of `s` (never splits a character).
pub fn truncate_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Violations of a request: the shared checks of [`crm_errors::validation::Violations`] (through
/// `Deref`) plus this service's own.
#[derive(Default)]
pub struct Violations(pub crm_errors::validation::Violations);

impl std::ops::Deref for Violations {
    type Target = crm_errors::validation::Violations;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Violations {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Violations {
    pub fn into_result(self) -> Result<(), crm_errors::ApiError> {
        self.0.into_result()
    }

    /// Lower-cased, 3 to 64 of `a-z 0-9 . _ - @`.
    pub fn username(&mut self, field: &str, value: &str) -> String {
        let v = value.trim().to_lowercase();
        let len = v.chars().count();
        if !(MIN_USERNAME..=MAX_USERNAME).contains(&len) {
            self.add(
                field,
                format!("must be {MIN_USERNAME} to {MAX_USERNAME} characters"),
            );
        } else if !v
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-@".contains(c))
        {
            self.add(field, "may contain only letters a-z, digits and . _ - @");
        }
        v
    }

    /// A new password: 12 to 256 characters, taken exactly as given (spaces count).
    pub fn password(&mut self, field: &str, value: &str) -> SecretString {
        let len = value.chars().count();
        if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&len) {
            self.add(
                field,
                format!("must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"),
            );
        }
        SecretString::from(value)
    }

    /// An optional new password: empty means none.
    pub fn optional_password(&mut self, field: &str, value: &str) -> Option<SecretString> {
        (!value.is_empty()).then(|| self.password(field, value))
    }

    pub fn uuid(&mut self, field: &str, value: &str) -> Option<Uuid> {
        match Uuid::parse_str(value.trim()) {
            Ok(id) => Some(id),
            Err(_) => {
                self.add(field, "must be a UUID");
                None
            }
        }
    }

    /// An optional reference: empty means none, anything else must be a UUID.
    pub fn optional_uuid(&mut self, field: &str, value: &str) -> Option<Uuid> {
        if value.trim().is_empty() {
            None
        } else {
            self.uuid(field, value)
        }
    }

    pub fn version(&mut self, field: &str, raw: i64) -> i64 {
        if raw < 1 {
            self.add(field, "must be the version you read (1 or more)");
        }
        raw
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
        let username = v.username("username", username);
        let display_name = v
            .optional("display_name", display_name, MAX_DISPLAY_NAME)
            .unwrap_or_else(|| username.clone());
        let new = NewUser {
            email: v.email("email", email),
            password: v.optional_password("password", password),
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

/// The same rules as the customer service's contact e-mails (kept local: services share no
/// domain code).
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lower_cased_and_checked() {
        let mut v = Violations::default();
        assert_eq!(v.username("u", "  Alice.Smith@ACME "), "alice.smith@acme");
        assert_eq!(v.username("u", "a_b-c.d"), "a_b-c.d");
        assert!(v.0.is_empty());
        for bad in ["ab", "has space", "ümlaut", "semi;colon", &"x".repeat(65)] {
            let mut v = Violations::default();
            v.username("username", bad);
            assert_eq!(v.0.len(), 1, "{bad:?}");
        }
    }

    #[test]
    fn password_policy_counts_characters_and_keeps_spaces() {
        let mut v = Violations::default();
        v.password("p", "  twelve chars ");
        v.password("p", &"ü".repeat(256));
        assert!(v.0.is_empty());
        for bad in ["short", &"x".repeat(257), "eleven char"] {
            let mut v = Violations::default();
            v.password("password", bad);
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
    fn throttle_key_ignores_case_and_surrounding_space_and_is_bounded() {
        assert_eq!(throttle_key("  Alice "), "alice");
        assert_eq!(throttle_key(&"A".repeat(1000)).len(), 128);
    }
}
