//! Input checks every aggregate shares: [`Violations`], this service's wrapper around
//! [`crm_errors::validation::Violations`], so every bad field of a request is reported at once.
//!
//! Only the checks that mean the same everywhere live here (ids, versions). An aggregate's own
//! rules are free functions over `&mut Violations` in its `domain.rs` (a username, a role name,
//! a client's scopes); the parsing of wire enums in its `grpc.rs`. So `Violations` has its one
//! `impl` here, and each aggregate keeps its rules to itself.

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

    /// An optional reference: empty means none, anything else must be a UUID.
    pub fn optional_uuid(&mut self, field: &str, value: &str) -> Option<Uuid> {
        if value.trim().is_empty() {
            None
        } else {
            self.uuid(field, value)
        }
    }

    /// A required id; the nil UUID stands in when it is invalid (`into_result` never lets it
    /// through).
    pub fn id(&mut self, field: &str, raw: &str) -> Uuid {
        self.uuid(field, raw).unwrap_or_default()
    }

    pub fn version(&mut self, field: &str, raw: i64) -> i64 {
        if raw < 1 {
            self.add(field, "must be the version you read (1 or more)");
        }
        raw
    }
}

/// The first `max` characters of `s` (never splits a character).
pub fn truncate_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}
