//! Input checks accounts and contacts share: [`Violations`], this service's wrapper around
//! [`crm_errors::validation::Violations`], so every bad field of a request is reported at once,
//! and the limits on lengths and counts.
//!
//! Both kinds of record take the same ids, versions, owners, phones, websites and tags, so those
//! checks live here, in `Violations`' one `impl`. The parsing of wire enums (lifecycle status,
//! grade, sort) is [`crate::wire`]'s; a check only one aggregate needs would be a free function
//! over `&mut Violations` in its `domain.rs`.

use uuid::Uuid;

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

pub const MAX_NAME: usize = 200;
pub const MAX_SHORT: usize = 100;
pub use crm_errors::validation::{MAX_EMAIL, MAX_LONG, MAX_PHONE, MAX_URL};
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG: usize = 50;

impl Violations {
    pub fn into_result(self) -> Result<(), crm_errors::ApiError> {
        self.0.into_result()
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

    /// An optional id: empty is none.
    pub fn optional_id(&mut self, field: &str, given: &str) -> Option<Uuid> {
        (!given.trim().is_empty())
            .then(|| self.uuid(field, given))
            .flatten()
    }

    /// The record's `id`; the nil UUID stands in when it is invalid (`into_result` never lets it
    /// through).
    pub fn id(&mut self, raw: &str) -> Uuid {
        self.uuid("id", raw).unwrap_or_default()
    }

    pub fn version(&mut self, field: &str, raw: i64) -> i64 {
        if raw < 1 {
            self.add(field, "must be the version you read (1 or more)");
        }
        raw
    }

    /// An explicit owner, else the caller.
    pub fn owner(&mut self, given: &str, caller: Uuid) -> Uuid {
        if !given.trim().is_empty() {
            return self.uuid("owner_id", given).unwrap_or_default();
        }
        caller
    }

    /// Trimmed, non-empty, unique (first occurrence kept), bounded in count and length.
    pub fn tags(&mut self, field: &str, tags: &[String]) -> Vec<String> {
        if tags.len() > MAX_TAGS {
            self.add(field, format!("at most {MAX_TAGS} tags"));
            return Vec::new();
        }
        let mut out: Vec<String> = Vec::with_capacity(tags.len());
        for (i, tag) in tags.iter().enumerate() {
            let path = format!("{field}[{i}]");
            match self.text(&path, tag, MAX_TAG) {
                Some(t) if t.is_empty() => self.add(&path, "must not be empty"),
                Some(t) if !out.contains(&t) => out.push(t),
                // Duplicates are dropped; invalid ones were reported by `text`.
                Some(_) | None => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_all_violations_with_paths() {
        let mut v = Violations::default();
        v.required("name", "   ", MAX_NAME);
        v.email("email", "nope");
        v.tags("tags", &["ok".into(), "".into(), "x".repeat(51)]);
        v.phone("phone", "12");
        let fields: Vec<_> = v.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["name", "email", "tags[1]", "tags[2]", "phone"]);
    }

    #[test]
    fn tags_are_trimmed_and_deduplicated() {
        let mut v = Violations::default();
        assert_eq!(
            v.tags("tags", &[" vip ".into(), "vip".into(), "erp".into()]),
            ["vip", "erp"]
        );
        assert!(v.0.is_empty());
    }
}
