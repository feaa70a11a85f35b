//! Domain types and input validation. Nothing here knows about gRPC or SQL: values are checked
//! once, at the edge, and cannot be invalid past it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleStatus {
    Prospect,
    Active,
    Inactive,
    Churned,
}

impl LifecycleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prospect => "prospect",
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::Churned => "churned",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Prospect, Self::Active, Self::Inactive, Self::Churned]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Grade {
    A,
    B,
    C,
    D,
}

impl Grade {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::B => "B",
            Self::C => "C",
            Self::D => "D",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::A, Self::B, Self::C, Self::D]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub id: Uuid,
    pub name: String,
    pub website: Option<String>,
    pub industry: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub owner_id: Uuid,
    pub department_id: Option<Uuid>,
    pub tags: Vec<String>,
    pub lifecycle_status: LifecycleStatus,
    pub grade: Option<Grade>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub id: Uuid,
    pub account_id: Uuid,
    pub first_name: String,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub title: Option<String>,
    pub owner_id: Uuid,
    pub department_id: Option<Uuid>,
    pub tags: Vec<String>,
    pub lifecycle_status: LifecycleStatus,
    pub grade: Option<Grade>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A validated new account.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub name: String,
    pub website: Option<String>,
    pub industry: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub owner_id: Uuid,
    /// `None`: the caller's primary department when the caller owns the record, else none.
    pub department_id: Option<Uuid>,
    pub tags: Vec<String>,
    pub lifecycle_status: LifecycleStatus,
    pub grade: Option<Grade>,
}

/// A validated change to an account; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct AccountPatch {
    pub name: Option<String>,
    pub website: Option<Option<String>>,
    pub industry: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub owner_id: Option<Uuid>,
    pub department_id: Option<Option<Uuid>>,
    pub tags: Option<Vec<String>>,
    pub lifecycle_status: Option<LifecycleStatus>,
    pub grade: Option<Option<Grade>>,
}

#[derive(Debug, Clone)]
pub struct NewContact {
    pub account_id: Uuid,
    pub first_name: String,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub title: Option<String>,
    pub owner_id: Uuid,
    /// `None`: the caller's primary department when the caller owns the record, else none.
    pub department_id: Option<Uuid>,
    pub tags: Vec<String>,
    pub lifecycle_status: LifecycleStatus,
    pub grade: Option<Grade>,
}

#[derive(Debug, Clone, Default)]
pub struct ContactPatch {
    pub account_id: Option<Uuid>,
    pub first_name: Option<String>,
    pub last_name: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub title: Option<Option<String>>,
    pub owner_id: Option<Uuid>,
    pub department_id: Option<Option<Uuid>>,
    pub tags: Option<Vec<String>>,
    pub lifecycle_status: Option<LifecycleStatus>,
    pub grade: Option<Option<Grade>>,
}

/// Field changes of an update, `{field: {old, new}}`, as carried by `…updated` events.
pub type Changes = serde_json::Map<String, serde_json::Value>;

fn record_change<T: Serialize + PartialEq>(changes: &mut Changes, field: &str, old: &T, new: &T) {
    if old != new {
        changes.insert(
            field.to_string(),
            serde_json::json!({ "old": old, "new": new }),
        );
    }
}

impl Account {
    /// Applies `patch`, returning the fields that really changed.
    pub fn apply(&mut self, patch: AccountPatch) -> Changes {
        let mut c = Changes::new();
        macro_rules! set {
            ($field:ident) => {
                if let Some(v) = patch.$field {
                    record_change(&mut c, stringify!($field), &self.$field, &v);
                    self.$field = v;
                }
            };
        }
        set!(name);
        set!(website);
        set!(industry);
        set!(phone);
        set!(email);
        set!(owner_id);
        set!(department_id);
        set!(tags);
        set!(lifecycle_status);
        set!(grade);
        c
    }
}

impl Contact {
    pub fn apply(&mut self, patch: ContactPatch) -> Changes {
        let mut c = Changes::new();
        macro_rules! set {
            ($field:ident) => {
                if let Some(v) = patch.$field {
                    record_change(&mut c, stringify!($field), &self.$field, &v);
                    self.$field = v;
                }
            };
        }
        set!(account_id);
        set!(first_name);
        set!(last_name);
        set!(email);
        set!(phone);
        set!(title);
        set!(owner_id);
        set!(department_id);
        set!(tags);
        set!(lifecycle_status);
        set!(grade);
        c
    }
}

/// Field rules (`crm_access::Scope`) over records and writes: which fields a write sets, and a
/// record as the caller may see it.
mod fields {
    use crm_access::Scope;

    use super::*;

    /// The caller-visible form of a required text: hidden is empty, masked is masked.
    fn show_required(scope: &Scope, field: &str, value: &mut String) {
        *value = scope
            .show(field, Some(std::mem::take(value)))
            .unwrap_or_default();
    }

    fn show(scope: &Scope, field: &str, value: &mut Option<String>) {
        *value = scope.show(field, value.take());
    }

    /// Fields that are not free text can be hidden, never masked.
    fn hidden(scope: &Scope, field: &str) -> bool {
        scope.field(field).visibility == crm_access::Visibility::Hidden
    }

    impl Account {
        pub fn redact(&mut self, scope: &Scope) {
            show_required(scope, "name", &mut self.name);
            show(scope, "website", &mut self.website);
            show(scope, "industry", &mut self.industry);
            show(scope, "phone", &mut self.phone);
            show(scope, "email", &mut self.email);
            if hidden(scope, "tags") {
                self.tags.clear();
            }
            if hidden(scope, "grade") {
                self.grade = None;
            }
        }
    }

    impl Contact {
        pub fn redact(&mut self, scope: &Scope) {
            show_required(scope, "first_name", &mut self.first_name);
            show(scope, "last_name", &mut self.last_name);
            show(scope, "email", &mut self.email);
            show(scope, "phone", &mut self.phone);
            show(scope, "title", &mut self.title);
            if hidden(scope, "tags") {
                self.tags.clear();
            }
            if hidden(scope, "grade") {
                self.grade = None;
            }
        }
    }

    /// The names whose flag is set.
    fn names(fields: &[(&'static str, bool)]) -> Vec<&'static str> {
        fields
            .iter()
            .filter(|(_, set)| *set)
            .map(|(f, _)| *f)
            .collect()
    }

    impl NewAccount {
        /// The fields this new record gives a value (the required name always).
        pub fn fields_set(&self) -> Vec<&'static str> {
            names(&[
                ("name", true),
                ("website", self.website.is_some()),
                ("industry", self.industry.is_some()),
                ("phone", self.phone.is_some()),
                ("email", self.email.is_some()),
                ("tags", !self.tags.is_empty()),
                ("grade", self.grade.is_some()),
            ])
        }
    }

    impl AccountPatch {
        /// The fields this patch writes (ownership is checked apart, as an assignment).
        pub fn fields_set(&self) -> Vec<&'static str> {
            names(&[
                ("name", self.name.is_some()),
                ("website", self.website.is_some()),
                ("industry", self.industry.is_some()),
                ("phone", self.phone.is_some()),
                ("email", self.email.is_some()),
                ("tags", self.tags.is_some()),
                ("lifecycle_status", self.lifecycle_status.is_some()),
                ("grade", self.grade.is_some()),
            ])
        }
    }

    impl NewContact {
        pub fn fields_set(&self) -> Vec<&'static str> {
            names(&[
                ("account_id", true),
                ("first_name", true),
                ("last_name", self.last_name.is_some()),
                ("email", self.email.is_some()),
                ("phone", self.phone.is_some()),
                ("title", self.title.is_some()),
                ("tags", !self.tags.is_empty()),
                ("grade", self.grade.is_some()),
            ])
        }
    }

    impl ContactPatch {
        pub fn fields_set(&self) -> Vec<&'static str> {
            names(&[
                ("account_id", self.account_id.is_some()),
                ("first_name", self.first_name.is_some()),
                ("last_name", self.last_name.is_some()),
                ("email", self.email.is_some()),
                ("phone", self.phone.is_some()),
                ("title", self.title.is_some()),
                ("tags", self.tags.is_some()),
                ("lifecycle_status", self.lifecycle_status.is_some()),
                ("grade", self.grade.is_some()),
            ])
        }
    }
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

pub const MAX_NAME: usize = 200;
pub const MAX_SHORT: usize = 100;
pub const MAX_URL: usize = 2048;
pub use crm_errors::validation::MAX_EMAIL;
pub const MAX_PHONE: usize = 32;
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG: usize = 50;

impl Violations {
    pub fn into_result(self) -> Result<(), crm_errors::ApiError> {
        self.0.into_result()
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

    pub fn uuid(&mut self, field: &str, value: &str) -> Option<Uuid> {
        match Uuid::parse_str(value.trim()) {
            Ok(id) => Some(id),
            Err(_) => {
                self.add(field, "must be a UUID");
                None
            }
        }
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

    #[test]
    fn patch_reports_only_real_changes() {
        let now = Utc::now();
        let mut a = Account {
            id: Uuid::nil(),
            name: "Acme".into(),
            website: None,
            industry: None,
            phone: None,
            email: None,
            owner_id: Uuid::nil(),
            department_id: None,
            tags: vec![],
            lifecycle_status: LifecycleStatus::Prospect,
            grade: None,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let changes = a.apply(AccountPatch {
            name: Some("Acme".into()),
            grade: Some(Some(Grade::A)),
            ..Default::default()
        });
        assert_eq!(changes.keys().collect::<Vec<_>>(), ["grade"]);
        assert_eq!(
            changes["grade"],
            serde_json::json!({"old": null, "new": "A"})
        );
    }
}
