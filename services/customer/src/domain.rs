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

pub use crm_record::event::Changes;
use crm_record::event::record_change;

/// Fields accounts and contacts share beyond the system ones.
mod shared_fields {
    use crm_record::field::{Field, FieldKind};

    pub const EMAIL: Field = Field::new("email", FieldKind::Email);
    pub const PHONE: Field = Field::new("phone", FieldKind::Phone);
    pub const TAGS: Field = Field::new("tags", FieldKind::TextList);
    pub const LIFECYCLE_STATUS: Field = Field::new("lifecycle_status", FieldKind::Choice);
    pub const GRADE: Field = Field::new("grade", FieldKind::Choice);
}

/// The built-in fields of accounts, by name: what field rules, masks, writable checks and
/// sharing conditions name (checked against the record's JSON in the tests).
pub mod account_fields {
    pub use super::shared_fields::*;
    pub use crm_record::field::system::*;
    use crm_record::field::{Field, FieldKind};

    pub const NAME: Field = Field::new("name", FieldKind::Text);
    pub const WEBSITE: Field = Field::new("website", FieldKind::Url);
    pub const INDUSTRY: Field = Field::new("industry", FieldKind::Text);

    /// In the order of the record's JSON.
    #[rustfmt::skip]
    pub const ALL: &[Field] = &[
        ID, NAME, WEBSITE, INDUSTRY, PHONE, EMAIL, OWNER_ID, DEPARTMENT_ID, TAGS, LIFECYCLE_STATUS,
        GRADE, VERSION, CREATED_AT, UPDATED_AT,
    ];
}

/// The built-in fields of contacts (see [`account_fields`]).
pub mod contact_fields {
    pub use super::shared_fields::*;
    pub use crm_record::field::system::*;
    use crm_record::field::{Field, FieldKind};

    pub const ACCOUNT_ID: Field = Field::new("account_id", FieldKind::Reference);
    pub const FIRST_NAME: Field = Field::new("first_name", FieldKind::Text);
    pub const LAST_NAME: Field = Field::new("last_name", FieldKind::Text);
    pub const TITLE: Field = Field::new("title", FieldKind::Text);

    /// In the order of the record's JSON.
    #[rustfmt::skip]
    pub const ALL: &[Field] = &[
        ID, ACCOUNT_ID, FIRST_NAME, LAST_NAME, EMAIL, PHONE, TITLE, OWNER_ID, DEPARTMENT_ID, TAGS,
        LIFECYCLE_STATUS, GRADE, VERSION, CREATED_AT, UPDATED_AT,
    ];
}

impl Account {
    /// Applies `patch`, returning the fields that really changed.
    pub fn apply(&mut self, patch: AccountPatch) -> Changes {
        let mut c = Changes::new();
        macro_rules! set {
            ($name:expr, $field:ident) => {
                if let Some(v) = patch.$field {
                    record_change(&mut c, $name.name(), &self.$field, &v);
                    self.$field = v;
                }
            };
        }
        set!(account_fields::NAME, name);
        set!(account_fields::WEBSITE, website);
        set!(account_fields::INDUSTRY, industry);
        set!(account_fields::PHONE, phone);
        set!(account_fields::EMAIL, email);
        set!(account_fields::OWNER_ID, owner_id);
        set!(account_fields::DEPARTMENT_ID, department_id);
        set!(account_fields::TAGS, tags);
        set!(account_fields::LIFECYCLE_STATUS, lifecycle_status);
        set!(account_fields::GRADE, grade);
        c
    }
}

impl Contact {
    pub fn apply(&mut self, patch: ContactPatch) -> Changes {
        let mut c = Changes::new();
        macro_rules! set {
            ($name:expr, $field:ident) => {
                if let Some(v) = patch.$field {
                    record_change(&mut c, $name.name(), &self.$field, &v);
                    self.$field = v;
                }
            };
        }
        set!(contact_fields::ACCOUNT_ID, account_id);
        set!(contact_fields::FIRST_NAME, first_name);
        set!(contact_fields::LAST_NAME, last_name);
        set!(contact_fields::EMAIL, email);
        set!(contact_fields::PHONE, phone);
        set!(contact_fields::TITLE, title);
        set!(contact_fields::OWNER_ID, owner_id);
        set!(contact_fields::DEPARTMENT_ID, department_id);
        set!(contact_fields::TAGS, tags);
        set!(contact_fields::LIFECYCLE_STATUS, lifecycle_status);
        set!(contact_fields::GRADE, grade);
        c
    }
}

/// Field rules (`crm_access::Scope`) over records and writes: which fields a write sets, and a
/// record as the caller may see it. Every field is named by its constant.
mod fields {
    use crm_access::Scope;
    use crm_record::Field;

    use super::*;

    impl Account {
        pub fn redact(&mut self, scope: &Scope) {
            use account_fields as f;
            f::NAME.show_required(scope, &mut self.name);
            f::WEBSITE.show(scope, &mut self.website);
            f::INDUSTRY.show(scope, &mut self.industry);
            f::PHONE.show(scope, &mut self.phone);
            f::EMAIL.show(scope, &mut self.email);
            // Not free text: hidden or shown, never masked.
            f::TAGS.hide(scope, &mut self.tags);
            f::GRADE.hide(scope, &mut self.grade);
        }
    }

    impl Contact {
        pub fn redact(&mut self, scope: &Scope) {
            use contact_fields as f;
            f::FIRST_NAME.show_required(scope, &mut self.first_name);
            f::LAST_NAME.show(scope, &mut self.last_name);
            f::EMAIL.show(scope, &mut self.email);
            f::PHONE.show(scope, &mut self.phone);
            f::TITLE.show(scope, &mut self.title);
            f::TAGS.hide(scope, &mut self.tags);
            f::GRADE.hide(scope, &mut self.grade);
        }
    }

    /// The names of the fields whose flag is set.
    fn names(fields: &[(Field, bool)]) -> Vec<&'static str> {
        fields
            .iter()
            .filter(|(_, set)| *set)
            .map(|(f, _)| f.name())
            .collect()
    }

    impl NewAccount {
        /// The fields this new record gives a value (the required name always).
        pub fn fields_set(&self) -> Vec<&'static str> {
            use account_fields as f;
            names(&[
                (f::NAME, true),
                (f::WEBSITE, self.website.is_some()),
                (f::INDUSTRY, self.industry.is_some()),
                (f::PHONE, self.phone.is_some()),
                (f::EMAIL, self.email.is_some()),
                (f::TAGS, !self.tags.is_empty()),
                (f::GRADE, self.grade.is_some()),
            ])
        }
    }

    impl AccountPatch {
        /// The fields this patch writes (ownership is checked apart, as an assignment).
        pub fn fields_set(&self) -> Vec<&'static str> {
            use account_fields as f;
            names(&[
                (f::NAME, self.name.is_some()),
                (f::WEBSITE, self.website.is_some()),
                (f::INDUSTRY, self.industry.is_some()),
                (f::PHONE, self.phone.is_some()),
                (f::EMAIL, self.email.is_some()),
                (f::TAGS, self.tags.is_some()),
                (f::LIFECYCLE_STATUS, self.lifecycle_status.is_some()),
                (f::GRADE, self.grade.is_some()),
            ])
        }
    }

    impl NewContact {
        pub fn fields_set(&self) -> Vec<&'static str> {
            use contact_fields as f;
            names(&[
                (f::ACCOUNT_ID, true),
                (f::FIRST_NAME, true),
                (f::LAST_NAME, self.last_name.is_some()),
                (f::EMAIL, self.email.is_some()),
                (f::PHONE, self.phone.is_some()),
                (f::TITLE, self.title.is_some()),
                (f::TAGS, !self.tags.is_empty()),
                (f::GRADE, self.grade.is_some()),
            ])
        }
    }

    impl ContactPatch {
        pub fn fields_set(&self) -> Vec<&'static str> {
            use contact_fields as f;
            names(&[
                (f::ACCOUNT_ID, self.account_id.is_some()),
                (f::FIRST_NAME, self.first_name.is_some()),
                (f::LAST_NAME, self.last_name.is_some()),
                (f::EMAIL, self.email.is_some()),
                (f::PHONE, self.phone.is_some()),
                (f::TITLE, self.title.is_some()),
                (f::TAGS, self.tags.is_some()),
                (f::LIFECYCLE_STATUS, self.lifecycle_status.is_some()),
                (f::GRADE, self.grade.is_some()),
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

    /// A struct field renamed without its `Field` constant (or the other way round) fails here.
    #[test]
    fn the_field_constants_name_every_key_of_the_records() {
        let now = Utc::now();
        let account = Account {
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
        crm_record::field::check_fields(
            account_fields::ALL,
            &serde_json::to_value(&account).unwrap(),
        )
        .unwrap();
        let contact = Contact {
            id: Uuid::nil(),
            account_id: Uuid::nil(),
            first_name: "Li".into(),
            last_name: None,
            email: None,
            phone: None,
            title: None,
            owner_id: Uuid::nil(),
            department_id: None,
            tags: vec![],
            lifecycle_status: LifecycleStatus::Prospect,
            grade: None,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        crm_record::field::check_fields(
            contact_fields::ALL,
            &serde_json::to_value(&contact).unwrap(),
        )
        .unwrap();
        // Only text fields are masked; the rest are hidden or shown.
        for field in account_fields::ALL.iter().chain(contact_fields::ALL) {
            if matches!(field.name(), "phone" | "email") {
                assert!(field.kind().maskable(), "{field}");
            }
        }
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
