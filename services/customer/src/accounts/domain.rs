//! Accounts as values: the record ([`Account`]), a new account ([`NewAccount`]) and a change to
//! one ([`AccountPatch`]), their built-in fields ([`account_fields`]), and their rules — what a
//! patch changes, what a write sets, what field rules leave visible, where an account sits in
//! the organisation ([`Record`]). Nothing here knows about gRPC or SQL: values are checked
//! once, at the edge, and cannot be invalid past it.

use chrono::{DateTime, Utc};
use crm_access::{Resource, Scope};
use crm_record::event::record_change;
use crm_record::{Place, Record, Table};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crm_fields::{Input, Values};

use crate::record::domain::{Changes, Custom, Grade, LifecycleStatus, names};

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
    /// Custom field values (`custom.<key>`), normalised by crm-fields.
    #[serde(default)]
    pub custom: Values,
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
    /// Custom field values as sent: checked against the definitions in the write's transaction.
    pub custom: Input,
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
    /// Custom field values to set (`null` clears); keys left out stay as they are.
    pub custom: Input,
}

/// The built-in fields of accounts, by name: what field rules, masks, writable checks and
/// sharing conditions name (checked against the record's JSON in the tests).
pub mod account_fields {
    pub use crate::record::domain::shared_fields::*;
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

    /// Field rules (`crm_access::Scope`): the account as the caller may see it.
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
        self.custom.redact(scope);
    }
}

impl NewAccount {
    /// The fields this new record gives a value (the required name always).
    pub fn fields_set(&self) -> Vec<String> {
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
        .into_iter()
        .chain(self.custom.keys().map(|k| crm_fields::definition::name(k)))
        .collect()
    }
}

impl AccountPatch {
    /// The fields this patch writes (ownership is checked apart, as an assignment).
    pub fn fields_set(&self) -> Vec<String> {
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
        .into_iter()
        .chain(self.custom.keys().map(|k| crm_fields::definition::name(k)))
        .collect()
    }
}

impl Custom for Account {
    fn custom_mut(&mut self) -> Option<&mut Values> {
        Some(&mut self.custom)
    }
}

impl Record for Account {
    const KIND: &'static str = "account";
    const RESOURCE: Resource = Resource::ACCOUNT;
    const TABLE: &'static Table = &super::store::ACCOUNT_TABLE;
    fn id(&self) -> Uuid {
        self.id
    }
    fn version(&self) -> i64 {
        self.version
    }
    fn stamp(&mut self, version: i64, at: DateTime<Utc>) {
        self.version = version;
        self.updated_at = at;
    }
    fn place(&self) -> Place {
        (Some(self.owner_id), self.department_id)
    }
    fn attribute(&self, field: &str) -> Option<String> {
        use account_fields as f;
        match Self::TABLE.field(field)? {
            f::INDUSTRY => self.industry.clone(),
            f::LIFECYCLE_STATUS => Some(self.lifecycle_status.as_str().to_string()),
            f::GRADE => self.grade.map(|g| g.as_str().to_string()),
            _ => None,
        }
    }
    fn redact(&mut self, scope: &Scope) {
        Account::redact(self, scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acme() -> Account {
        let now = Utc::now();
        Account {
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
            custom: Values::default(),
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    /// A struct field renamed without its `Field` constant (or the other way round) fails here.
    #[test]
    fn the_field_constants_name_every_key_of_the_record() {
        crm_record::field::check_fields(
            account_fields::ALL,
            &serde_json::to_value(acme()).unwrap(),
        )
        .unwrap();
        // Only text fields are masked; the rest are hidden or shown.
        for field in account_fields::ALL {
            if matches!(field.name(), "phone" | "email") {
                assert!(field.kind().maskable(), "{field}");
            }
        }
    }

    #[test]
    fn patch_reports_only_real_changes() {
        let mut a = acme();
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
