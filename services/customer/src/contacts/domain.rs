//! Contacts as values: the record ([`Contact`]), a new contact ([`NewContact`]) and a change to
//! one ([`ContactPatch`]), their built-in fields ([`contact_fields`]), and their rules — what a
//! patch changes, what a write sets, what field rules leave visible, where a contact sits in
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
    /// Custom field values (`custom.<key>`), normalised by crm-fields.
    #[serde(default)]
    pub custom: Values,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A validated new contact.
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
    /// Custom field values as sent: checked against the definitions in the write's transaction.
    pub custom: Input,
}

/// A validated change to a contact; `None` leaves a field as it is, `Some(None)` clears it.
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
    /// Custom field values to set (`null` clears); keys left out stay as they are.
    pub custom: Input,
}

/// The built-in fields of contacts, by name (see `account_fields`).
pub mod contact_fields {
    pub use crate::record::domain::shared_fields::*;
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

impl Contact {
    /// Applies `patch`, returning the fields that really changed.
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

    /// Field rules (`crm_access::Scope`): the contact as the caller may see it.
    pub fn redact(&mut self, scope: &Scope) {
        use contact_fields as f;
        f::FIRST_NAME.show_required(scope, &mut self.first_name);
        f::LAST_NAME.show(scope, &mut self.last_name);
        f::EMAIL.show(scope, &mut self.email);
        f::PHONE.show(scope, &mut self.phone);
        f::TITLE.show(scope, &mut self.title);
        // Not free text: hidden or shown, never masked.
        f::TAGS.hide(scope, &mut self.tags);
        f::GRADE.hide(scope, &mut self.grade);
        self.custom.redact(scope);
    }
}

impl NewContact {
    /// The fields this new record gives a value (the account and first name always).
    pub fn fields_set(&self) -> Vec<String> {
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
        .into_iter()
        .chain(self.custom.keys().map(|k| crm_fields::definition::name(k)))
        .collect()
    }
}

impl ContactPatch {
    /// The fields this patch writes (ownership is checked apart, as an assignment).
    pub fn fields_set(&self) -> Vec<String> {
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
        .into_iter()
        .chain(self.custom.keys().map(|k| crm_fields::definition::name(k)))
        .collect()
    }
}

impl Custom for Contact {
    fn custom_mut(&mut self) -> Option<&mut Values> {
        Some(&mut self.custom)
    }
}

impl Record for Contact {
    const KIND: &'static str = "contact";
    const RESOURCE: Resource = Resource::CONTACT;
    const TABLE: &'static Table = &super::store::CONTACT_TABLE;
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
        use contact_fields as f;
        match Self::TABLE.field(field)? {
            f::TITLE => self.title.clone(),
            f::LIFECYCLE_STATUS => Some(self.lifecycle_status.as_str().to_string()),
            f::GRADE => self.grade.map(|g| g.as_str().to_string()),
            _ => None,
        }
    }
    fn redact(&mut self, scope: &Scope) {
        Contact::redact(self, scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A struct field renamed without its `Field` constant (or the other way round) fails here.
    #[test]
    fn the_field_constants_name_every_key_of_the_record() {
        let now = Utc::now();
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
            custom: Values::default(),
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
        for field in contact_fields::ALL {
            if matches!(field.name(), "phone" | "email") {
                assert!(field.kind().maskable(), "{field}");
            }
        }
    }
}
