//! Collecting field violations at a service's edge: every bad field of a request is reported in
//! one answer (`InvalidArgument` with one `FieldViolation` each), so a client fixes all of them
//! in one round trip.
//!
//! Services wrap [`Violations`] in a type of their own (with `Deref`) to add checks for their
//! domain; the text rules that every service shares live here, so they cannot drift apart.

use std::ops::{Deref, DerefMut};

use crate::{ApiError, FieldViolation};

/// Longest e-mail address accepted (RFC 5321 path limit).
pub const MAX_EMAIL: usize = 254;
/// Longest URL accepted.
pub const MAX_URL: usize = 2048;
/// Longest phone number accepted, as written (with spaces and punctuation).
pub const MAX_PHONE: usize = 32;
/// Long text (notes, a follow-up's content): about four pages.
pub const MAX_LONG: usize = 10_000;

#[derive(Debug, Default)]
pub struct Violations(pub Vec<FieldViolation>);

impl Deref for Violations {
    type Target = Vec<FieldViolation>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Violations {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Violations {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldViolation::new(field, message));
    }

    /// `Ok` when nothing was violated, else one `InvalidArgument` naming every field.
    pub fn into_result(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(self.0))
        }
    }

    /// Trimmed text of at most `max` characters without control characters; `None` (and a
    /// violation) otherwise.
    pub fn text(&mut self, field: &str, value: &str, max: usize) -> Option<String> {
        let value = value.trim();
        if value.chars().count() > max {
            self.add(field, format!("must be at most {max} characters"));
            return None;
        }
        if value.chars().any(char::is_control) {
            self.add(field, "must not contain control characters");
            return None;
        }
        Some(value.to_string())
    }

    /// A required text field, trimmed.
    pub fn required(&mut self, field: &str, value: &str, max: usize) -> String {
        match self.text(field, value, max) {
            Some(v) if v.is_empty() => {
                self.add(field, "must not be empty");
                v
            }
            Some(v) => v,
            None => String::new(),
        }
    }

    /// An optional text field: empty means absent.
    pub fn optional(&mut self, field: &str, value: &str, max: usize) -> Option<String> {
        self.text(field, value, max).filter(|v| !v.is_empty())
    }

    /// An optional e-mail address.
    pub fn email(&mut self, field: &str, value: &str) -> Option<String> {
        let v = self.optional(field, value, MAX_EMAIL)?;
        if !is_email(&v) {
            self.add(field, "must be an email address like name@example.com");
            return None;
        }
        Some(v)
    }

    /// Optional long text (a follow-up's content): line breaks and tabs are kept, other control
    /// characters refused; empty means absent.
    pub fn long_text(&mut self, field: &str, value: &str, max: usize) -> Option<String> {
        let value = value.trim();
        if value.chars().count() > max {
            self.add(field, format!("must be at most {max} characters"));
            return None;
        }
        if value
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            self.add(
                field,
                "must not contain control characters other than line breaks and tabs",
            );
            return None;
        }
        (!value.is_empty()).then(|| value.to_string())
    }

    pub fn phone(&mut self, field: &str, value: &str) -> Option<String> {
        let v = self.optional(field, value, MAX_PHONE)?;
        let digits = v.chars().filter(char::is_ascii_digit).count();
        let allowed = v
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c));
        if !allowed || digits < 3 {
            self.add(
                field,
                "must be a phone number: digits, spaces and + - ( ) . only",
            );
            return None;
        }
        Some(v)
    }

    pub fn website(&mut self, field: &str, value: &str) -> Option<String> {
        let v = self.optional(field, value, MAX_URL)?;
        let lower = v.to_ascii_lowercase();
        let ok = (lower.starts_with("http://") || lower.starts_with("https://"))
            && !v.contains(char::is_whitespace)
            && v.split("://").nth(1).is_some_and(|rest| !rest.is_empty());
        if !ok {
            self.add(field, "must be an http(s) URL");
            return None;
        }
        Some(v)
    }
}

/// A pragmatic address check: one `@`, a non-empty local part of at most 64 bytes, a dotted
/// domain of letters, digits and hyphens, no whitespace. (Full RFC 5322 accepts far more than
/// any mail system delivers to.)
pub fn is_email(v: &str) -> bool {
    let Some((local, domain)) = v.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !local.contains('@')
        && !v.contains(char::is_whitespace)
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_rules() {
        for ok in ["a@b.co", "first.last+tag@sub.example.com"] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in [
            "", "a", "a@b", "@b.co", "a@.co", "a b@c.co", "a@b..co", "a@b.co.",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn collects_every_violation_in_order() {
        let mut v = Violations::default();
        v.required("name", "   ", 10);
        v.email("email", "nope");
        v.optional("note", "x\u{7}", 10);
        v.required("title", &"t".repeat(11), 10);
        let fields: Vec<_> = v.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["name", "email", "note", "title"]);
        assert!(v.into_result().is_err());
        assert!(Violations::default().into_result().is_ok());
    }
}
