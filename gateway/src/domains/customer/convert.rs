//! API types ↔ generated protobuf types, as `From` / `TryFrom` impls.
//!
//! Requests go API → proto infallibly (the API types are already validated for shape). Responses
//! go proto → API fallibly: a service answering with a malformed id or an unspecified enum is a
//! bug on its side, reported as [`ConversionError`] and rendered as an internal error.
//!
//! Conventions of the proto packages handled here: empty strings mean "not set" (→ `null`), an
//! `optional` field in an update request means "change it", and an empty string in such a field
//! clears it.

use crm_proto::customer as pb;
use uuid::Uuid;

use super::model::{
    Account, AccountList, AccountPatch, Contact, ContactList, ContactPatch, ExportAccountsParams,
    ExportContactsParams, Grade, LifecycleStatus, ListAccountsParams, ListContactsParams,
    NewAccount, NewContact, SortField, SortOrder,
};

use crate::platform::convert::{
    ConversionError, Result, non_empty, optional_uuid, timestamp, uuid,
};

/// `None` (and `null` in a patch) becomes the empty string, the proto's "not set".
fn text(value: Option<String>) -> String {
    value.unwrap_or_default()
}

fn id_text(value: Option<Uuid>) -> String {
    value.map(|id| id.to_string()).unwrap_or_default()
}

// --- enums ------------------------------------------------------------------------------------

impl From<LifecycleStatus> for pb::LifecycleStatus {
    fn from(value: LifecycleStatus) -> Self {
        match value {
            LifecycleStatus::Prospect => pb::LifecycleStatus::Prospect,
            LifecycleStatus::Active => pb::LifecycleStatus::Active,
            LifecycleStatus::Inactive => pb::LifecycleStatus::Inactive,
            LifecycleStatus::Churned => pb::LifecycleStatus::Churned,
        }
    }
}

impl TryFrom<pb::LifecycleStatus> for LifecycleStatus {
    type Error = ConversionError;
    fn try_from(value: pb::LifecycleStatus) -> Result<Self> {
        match value {
            pb::LifecycleStatus::Prospect => Ok(LifecycleStatus::Prospect),
            pb::LifecycleStatus::Active => Ok(LifecycleStatus::Active),
            pb::LifecycleStatus::Inactive => Ok(LifecycleStatus::Inactive),
            pb::LifecycleStatus::Churned => Ok(LifecycleStatus::Churned),
            pb::LifecycleStatus::Unspecified => {
                Err(ConversionError::new("lifecycle_status", "unspecified"))
            }
        }
    }
}

fn lifecycle_status(value: i32) -> Result<LifecycleStatus> {
    pb::LifecycleStatus::try_from(value)
        .map_err(|_| ConversionError::new("lifecycle_status", format!("unknown value {value}")))?
        .try_into()
}

fn status_code(value: Option<LifecycleStatus>) -> i32 {
    value.map_or(pb::LifecycleStatus::Unspecified, pb::LifecycleStatus::from) as i32
}

impl From<Grade> for pb::Grade {
    fn from(value: Grade) -> Self {
        match value {
            Grade::A => pb::Grade::A,
            Grade::B => pb::Grade::B,
            Grade::C => pb::Grade::C,
            Grade::D => pb::Grade::D,
        }
    }
}

/// `GRADE_UNSPECIFIED` is "no grade", so this cannot fail for known values.
fn grade(value: i32) -> Result<Option<Grade>> {
    match pb::Grade::try_from(value) {
        Ok(pb::Grade::Unspecified) => Ok(None),
        Ok(pb::Grade::A) => Ok(Some(Grade::A)),
        Ok(pb::Grade::B) => Ok(Some(Grade::B)),
        Ok(pb::Grade::C) => Ok(Some(Grade::C)),
        Ok(pb::Grade::D) => Ok(Some(Grade::D)),
        Err(_) => Err(ConversionError::new(
            "grade",
            format!("unknown value {value}"),
        )),
    }
}

/// `None` (no grade / cleared) is `GRADE_UNSPECIFIED`.
fn grade_code(value: Option<Grade>) -> i32 {
    value.map_or(pb::Grade::Unspecified, pb::Grade::from) as i32
}

fn sort_code(value: Option<SortField>) -> i32 {
    (match value {
        None => pb::SortField::Unspecified,
        Some(SortField::CreatedAt) => pb::SortField::CreatedAt,
        Some(SortField::UpdatedAt) => pb::SortField::UpdatedAt,
        Some(SortField::Name) => pb::SortField::Name,
    }) as i32
}

fn descending(order: Option<SortOrder>) -> bool {
    order == Some(SortOrder::Desc)
}

// --- accounts ---------------------------------------------------------------------------------

impl TryFrom<pb::Account> for Account {
    type Error = ConversionError;
    fn try_from(a: pb::Account) -> Result<Self> {
        Ok(Account {
            id: uuid("id", &a.id)?,
            owner_id: optional_uuid("owner_id", &a.owner_id)?,
            department_id: optional_uuid("department_id", &a.department_id)?,
            lifecycle_status: lifecycle_status(a.lifecycle_status)?,
            grade: grade(a.grade)?,
            created_at: timestamp("created_at", a.created_at)?,
            updated_at: timestamp("updated_at", a.updated_at)?,
            name: a.name,
            website: non_empty(a.website),
            industry: non_empty(a.industry),
            phone: non_empty(a.phone),
            email: non_empty(a.email),
            tags: a.tags,
            version: a.version,
        })
    }
}

impl From<NewAccount> for pb::CreateAccountRequest {
    fn from(a: NewAccount) -> Self {
        pb::CreateAccountRequest {
            name: a.name,
            website: text(a.website),
            industry: text(a.industry),
            phone: text(a.phone),
            email: text(a.email),
            owner_id: id_text(a.owner_id),
            department_id: id_text(a.department_id),
            tags: a.tags,
            lifecycle_status: status_code(a.lifecycle_status),
            grade: grade_code(a.grade),
        }
    }
}

/// A patch addressed to one version of one account.
#[derive(Debug)]
pub struct AccountUpdate {
    pub id: Uuid,
    pub expected_version: i64,
    pub patch: AccountPatch,
}

impl From<AccountUpdate> for pb::UpdateAccountRequest {
    fn from(u: AccountUpdate) -> Self {
        let p = u.patch;
        pb::UpdateAccountRequest {
            id: u.id.to_string(),
            expected_version: u.expected_version,
            name: p.name,
            website: p.website.map(text),
            industry: p.industry.map(text),
            phone: p.phone.map(text),
            email: p.email.map(text),
            owner_id: p.owner_id.map(|id| id.to_string()),
            department_id: p.department_id.map(id_text),
            tags: p.tags.map(|values| pb::Tags { values }),
            lifecycle_status: p
                .lifecycle_status
                .map(|s| pb::LifecycleStatus::from(s) as i32),
            grade: p.grade.map(grade_code),
        }
    }
}

impl From<ListAccountsParams> for pb::ListAccountsRequest {
    fn from(q: ListAccountsParams) -> Self {
        pb::ListAccountsRequest {
            // Range-checked by the handler; 0 lets the service pick its default.
            page_size: q.page_size.map_or(0, |n| n.min(i32::MAX as u32) as i32),
            page_token: text(q.page_token),
            owner_id: id_text(q.owner_id),
            tag: text(q.tag),
            lifecycle_status: status_code(q.status),
            query: text(q.q),
            sort: sort_code(q.sort),
            descending: descending(q.order),
            include_total: q.include_total.unwrap_or(false),
        }
    }
}

impl TryFrom<pb::ListAccountsResponse> for AccountList {
    type Error = ConversionError;
    fn try_from(r: pb::ListAccountsResponse) -> Result<Self> {
        Ok(AccountList {
            items: r
                .accounts
                .into_iter()
                .map(Account::try_from)
                .collect::<Result<_>>()?,
            next_page_token: non_empty(r.next_page_token),
            // Zero when not asked for: the handler keeps it only when it asked.
            total_size: Some(r.total_size),
        })
    }
}

impl From<ExportAccountsParams> for pb::ExportAccountsRequest {
    fn from(q: ExportAccountsParams) -> Self {
        pb::ExportAccountsRequest {
            owner_id: id_text(q.owner_id),
            tag: text(q.tag),
            lifecycle_status: status_code(q.status),
            query: text(q.q),
            sort: sort_code(q.sort),
            descending: descending(q.order),
        }
    }
}

impl From<ExportContactsParams> for pb::ExportContactsRequest {
    fn from(q: ExportContactsParams) -> Self {
        pb::ExportContactsRequest {
            owner_id: id_text(q.owner_id),
            tag: text(q.tag),
            lifecycle_status: status_code(q.status),
            query: text(q.q),
            sort: sort_code(q.sort),
            descending: descending(q.order),
            account_id: id_text(q.account_id),
        }
    }
}

// --- contacts ---------------------------------------------------------------------------------

impl TryFrom<pb::Contact> for Contact {
    type Error = ConversionError;
    fn try_from(c: pb::Contact) -> Result<Self> {
        Ok(Contact {
            id: uuid("id", &c.id)?,
            account_id: optional_uuid("account_id", &c.account_id)?,
            owner_id: optional_uuid("owner_id", &c.owner_id)?,
            department_id: optional_uuid("department_id", &c.department_id)?,
            lifecycle_status: lifecycle_status(c.lifecycle_status)?,
            grade: grade(c.grade)?,
            created_at: timestamp("created_at", c.created_at)?,
            updated_at: timestamp("updated_at", c.updated_at)?,
            first_name: c.first_name,
            last_name: non_empty(c.last_name),
            email: non_empty(c.email),
            phone: non_empty(c.phone),
            title: non_empty(c.title),
            tags: c.tags,
            version: c.version,
        })
    }
}

impl From<NewContact> for pb::CreateContactRequest {
    fn from(c: NewContact) -> Self {
        pb::CreateContactRequest {
            account_id: id_text(c.account_id),
            first_name: c.first_name,
            last_name: text(c.last_name),
            email: text(c.email),
            phone: text(c.phone),
            title: text(c.title),
            owner_id: id_text(c.owner_id),
            department_id: id_text(c.department_id),
            tags: c.tags,
            lifecycle_status: status_code(c.lifecycle_status),
            grade: grade_code(c.grade),
        }
    }
}

/// A patch addressed to one version of one contact.
#[derive(Debug)]
pub struct ContactUpdate {
    pub id: Uuid,
    pub expected_version: i64,
    pub patch: ContactPatch,
}

impl From<ContactUpdate> for pb::UpdateContactRequest {
    fn from(u: ContactUpdate) -> Self {
        let p = u.patch;
        pb::UpdateContactRequest {
            id: u.id.to_string(),
            expected_version: u.expected_version,
            account_id: p.account_id.map(|id| id.to_string()),
            first_name: p.first_name,
            last_name: p.last_name.map(text),
            email: p.email.map(text),
            phone: p.phone.map(text),
            title: p.title.map(text),
            owner_id: p.owner_id.map(|id| id.to_string()),
            department_id: p.department_id.map(id_text),
            tags: p.tags.map(|values| pb::Tags { values }),
            lifecycle_status: p
                .lifecycle_status
                .map(|s| pb::LifecycleStatus::from(s) as i32),
            grade: p.grade.map(grade_code),
        }
    }
}

impl From<ListContactsParams> for pb::ListContactsRequest {
    fn from(q: ListContactsParams) -> Self {
        pb::ListContactsRequest {
            page_size: q.page_size.map_or(0, |n| n.min(i32::MAX as u32) as i32),
            page_token: text(q.page_token),
            owner_id: id_text(q.owner_id),
            tag: text(q.tag),
            lifecycle_status: status_code(q.status),
            query: text(q.q),
            sort: sort_code(q.sort),
            descending: descending(q.order),
            account_id: id_text(q.account_id),
            include_total: q.include_total.unwrap_or(false),
        }
    }
}

impl TryFrom<pb::ListContactsResponse> for ContactList {
    type Error = ConversionError;
    fn try_from(r: pb::ListContactsResponse) -> Result<Self> {
        Ok(ContactList {
            items: r
                .contacts
                .into_iter()
                .map(Contact::try_from)
                .collect::<Result<_>>()?,
            next_page_token: non_empty(r.next_page_token),
            // Zero when not asked for: the handler keeps it only when it asked.
            total_size: Some(r.total_size),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proto_account() -> pb::Account {
        pb::Account {
            id: Uuid::now_v7().to_string(),
            name: "Acme".into(),
            website: String::new(),
            industry: "Anvils".into(),
            phone: String::new(),
            email: String::new(),
            owner_id: Uuid::new_v4().to_string(),
            department_id: String::new(),
            tags: vec!["vip".into()],
            lifecycle_status: pb::LifecycleStatus::Active as i32,
            grade: pb::Grade::Unspecified as i32,
            version: 3,
            created_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 5,
            }),
            updated_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_001,
                nanos: 0,
            }),
        }
    }

    #[test]
    fn empty_strings_and_unspecified_grade_become_null() {
        let account = Account::try_from(proto_account()).unwrap();
        assert_eq!(account.website, None);
        assert_eq!(account.industry.as_deref(), Some("Anvils"));
        assert_eq!(account.grade, None);
        assert_eq!(account.lifecycle_status, LifecycleStatus::Active);
        let json = serde_json::to_value(&account).unwrap();
        assert!(json["website"].is_null());
        assert!(json["grade"].is_null());
    }

    #[test]
    fn malformed_responses_are_errors() {
        let mut bad = proto_account();
        bad.id = "not-a-uuid".into();
        assert!(Account::try_from(bad).is_err());
        let mut bad = proto_account();
        bad.lifecycle_status = 0;
        assert!(Account::try_from(bad).is_err());
        let mut bad = proto_account();
        bad.created_at = None;
        assert!(Account::try_from(bad).is_err());
    }

    #[test]
    fn patch_null_clears_and_absent_keeps() {
        let patch: AccountPatch = serde_json::from_value(serde_json::json!({
            "website": null, "grade": null, "tags": []
        }))
        .unwrap();
        let id = Uuid::new_v4();
        let req = pb::UpdateAccountRequest::from(AccountUpdate {
            id,
            expected_version: 2,
            patch,
        });
        assert_eq!(req.id, id.to_string());
        assert_eq!(req.expected_version, 2);
        assert_eq!(req.website.as_deref(), Some(""));
        assert_eq!(req.grade, Some(pb::Grade::Unspecified as i32));
        assert_eq!(req.tags, Some(pb::Tags { values: vec![] }));
        assert_eq!(req.name, None);
        assert_eq!(req.industry, None);
        assert_eq!(req.lifecycle_status, None);
    }

    #[test]
    fn list_params_map_onto_the_request() {
        let req = pb::ListContactsRequest::from(ListContactsParams {
            page_size: Some(10),
            sort: Some(SortField::Name),
            order: Some(SortOrder::Desc),
            status: Some(LifecycleStatus::Churned),
            ..Default::default()
        });
        assert_eq!(req.page_size, 10);
        assert_eq!(req.sort, pb::SortField::Name as i32);
        assert!(req.descending);
        assert_eq!(req.lifecycle_status, pb::LifecycleStatus::Churned as i32);
        assert_eq!(req.account_id, "");
    }
}
