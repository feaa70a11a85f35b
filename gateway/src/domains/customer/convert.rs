//! API types ↔ generated protobuf types, as `From` / `TryFrom` impls.
//!
//! Requests go API → proto infallibly (the API types are already validated for shape). Responses
//! go proto → API fallibly: a service answering with a malformed id or an unspecified enum is a
//! bug on its side, reported as [`ConversionError`] and rendered as an internal error.
//!
//! Conventions of the proto packages handled here: empty strings mean "not set" (→ `null`), an
//! `optional` field in an update request means "change it", and an empty string in such a field
//! clears it.

use chrono::{DateTime, Utc};
use crm_proto::customer as pb;
use uuid::Uuid;

use super::model::{
    Account, AccountList, AccountPatch, Contact, ContactList, ContactPatch, ExportAccountsParams,
    ExportContactsParams, ExportFollowUpsParams, FollowUp, FollowUpKind, FollowUpList,
    FollowUpPatch, FollowUpSortField, Grade, LifecycleStatus, ListAccountsParams,
    ListContactsParams, ListFollowUpsParams, NewAccount, NewContact, NewFollowUp, SortField,
    SortOrder,
};

use crate::platform::convert::{
    ConversionError, Result, non_empty, optional_uuid, timestamp, to_timestamp, uuid,
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

/// Custom values on the wire (`custom_json`): a JSON object, empty when there are none.
fn custom_text(values: serde_json::Map<String, serde_json::Value>) -> String {
    if values.is_empty() {
        String::new()
    } else {
        serde_json::Value::Object(values).to_string()
    }
}

/// Custom values from the wire: a JSON object (empty text: none).
fn custom_values(
    field: &'static str,
    raw: &str,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    if raw.is_empty() {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_str(raw) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        _ => Err(ConversionError::new(field, "is not a JSON object")),
    }
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
            custom: custom_values("custom_json", &a.custom_json)?,
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
            custom_json: custom_text(a.custom),
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
            custom_json: custom_text(p.custom),
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
            filter: text(q.filter),
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
            // Zero when not asked for: the list handler leaves it out then (`Paged`).
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
            filter: text(q.filter),
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
            filter: text(q.filter),
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
            custom: custom_values("custom_json", &c.custom_json)?,
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
            custom_json: custom_text(c.custom),
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
            custom_json: custom_text(p.custom),
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
            filter: text(q.filter),
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
            // Zero when not asked for: the list handler leaves it out then (`Paged`).
            total_size: Some(r.total_size),
        })
    }
}

// --- follow-ups -------------------------------------------------------------------------------

impl From<FollowUpKind> for pb::FollowUpKind {
    fn from(value: FollowUpKind) -> Self {
        match value {
            FollowUpKind::Call => pb::FollowUpKind::Call,
            FollowUpKind::Meeting => pb::FollowUpKind::Meeting,
            FollowUpKind::Visit => pb::FollowUpKind::Visit,
            FollowUpKind::Note => pb::FollowUpKind::Note,
            FollowUpKind::Email => pb::FollowUpKind::Email,
        }
    }
}

/// Every follow-up has a kind: `FOLLOW_UP_KIND_UNSPECIFIED` in an answer is a bug.
fn follow_up_kind(value: i32) -> Result<FollowUpKind> {
    match pb::FollowUpKind::try_from(value) {
        Ok(pb::FollowUpKind::Call) => Ok(FollowUpKind::Call),
        Ok(pb::FollowUpKind::Meeting) => Ok(FollowUpKind::Meeting),
        Ok(pb::FollowUpKind::Visit) => Ok(FollowUpKind::Visit),
        Ok(pb::FollowUpKind::Note) => Ok(FollowUpKind::Note),
        Ok(pb::FollowUpKind::Email) => Ok(FollowUpKind::Email),
        Ok(pb::FollowUpKind::Unspecified) => Err(ConversionError::new("kind", "unspecified")),
        Err(_) => Err(ConversionError::new(
            "kind",
            format!("unknown value {value}"),
        )),
    }
}

/// `None` (not given) is `FOLLOW_UP_KIND_UNSPECIFIED`, which the service reports as missing.
fn kind_code(value: Option<FollowUpKind>) -> i32 {
    value.map_or(pb::FollowUpKind::Unspecified, pb::FollowUpKind::from) as i32
}

/// Follow-ups have no name: their `SORT_FIELD_NAME` is the subject.
fn follow_up_sort_code(value: Option<FollowUpSortField>) -> i32 {
    (match value {
        None => pb::SortField::Unspecified,
        Some(FollowUpSortField::CreatedAt) => pb::SortField::CreatedAt,
        Some(FollowUpSortField::UpdatedAt) => pb::SortField::UpdatedAt,
        Some(FollowUpSortField::Subject) => pb::SortField::Name,
        Some(FollowUpSortField::OccurredAt) => pb::SortField::Time,
    }) as i32
}

/// An optional time of an answer: unset is `None`.
fn optional_timestamp(
    field: &'static str,
    value: Option<prost_types::Timestamp>,
) -> Result<Option<DateTime<Utc>>> {
    value.map(|t| timestamp(field, Some(t))).transpose()
}

impl TryFrom<pb::FollowUp> for FollowUp {
    type Error = ConversionError;
    fn try_from(f: pb::FollowUp) -> Result<Self> {
        Ok(FollowUp {
            id: uuid("id", &f.id)?,
            account_id: uuid("account_id", &f.account_id)?,
            contact_id: optional_uuid("contact_id", &f.contact_id)?,
            kind: follow_up_kind(f.kind)?,
            occurred_at: timestamp("occurred_at", f.occurred_at)?,
            next_follow_up_at: optional_timestamp("next_follow_up_at", f.next_follow_up_at)?,
            owner_id: uuid("owner_id", &f.owner_id)?,
            department_id: optional_uuid("department_id", &f.department_id)?,
            created_at: timestamp("created_at", f.created_at)?,
            updated_at: timestamp("updated_at", f.updated_at)?,
            subject: f.subject,
            content: non_empty(f.content),
            outcome: non_empty(f.outcome),
            version: f.version,
        })
    }
}

impl From<NewFollowUp> for pb::CreateFollowUpRequest {
    fn from(f: NewFollowUp) -> Self {
        pb::CreateFollowUpRequest {
            account_id: id_text(f.account_id),
            contact_id: id_text(f.contact_id),
            kind: kind_code(f.kind),
            subject: f.subject,
            content: text(f.content),
            outcome: text(f.outcome),
            // Unset: the service records it as happening now.
            occurred_at: f.occurred_at.map(to_timestamp),
            next_follow_up_at: f.next_follow_up_at.map(to_timestamp),
            owner_id: id_text(f.owner_id),
            department_id: id_text(f.department_id),
        }
    }
}

/// A patch addressed to one version of one follow-up.
#[derive(Debug)]
pub struct FollowUpUpdate {
    pub id: Uuid,
    pub expected_version: i64,
    pub patch: FollowUpPatch,
}

impl From<FollowUpUpdate> for pb::UpdateFollowUpRequest {
    fn from(u: FollowUpUpdate) -> Self {
        let p = u.patch;
        pb::UpdateFollowUpRequest {
            id: u.id.to_string(),
            expected_version: u.expected_version,
            contact_id: p.contact_id.map(id_text),
            kind: p.kind.map(|k| pb::FollowUpKind::from(k) as i32),
            subject: p.subject,
            content: p.content.map(text),
            outcome: p.outcome.map(text),
            occurred_at: p.occurred_at.map(to_timestamp),
            // A message field cannot say "clear" by being empty: `null` is its own flag.
            next_follow_up_at: p.next_follow_up_at.flatten().map(to_timestamp),
            clear_next_follow_up: matches!(p.next_follow_up_at, Some(None)),
            owner_id: p.owner_id.map(|id| id.to_string()),
            department_id: p.department_id.map(id_text),
        }
    }
}

impl From<ListFollowUpsParams> for pb::ListFollowUpsRequest {
    fn from(q: ListFollowUpsParams) -> Self {
        pb::ListFollowUpsRequest {
            // Range-checked by the handler; 0 lets the service pick its default.
            page_size: q.page_size.map_or(0, |n| n.min(i32::MAX as u32) as i32),
            page_token: text(q.page_token),
            account_id: id_text(q.account_id),
            owner_id: id_text(q.owner_id),
            query: text(q.q),
            filter: text(q.filter),
            sort: follow_up_sort_code(q.sort),
            descending: descending(q.order),
            include_total: q.include_total.unwrap_or(false),
        }
    }
}

impl TryFrom<pb::ListFollowUpsResponse> for FollowUpList {
    type Error = ConversionError;
    fn try_from(r: pb::ListFollowUpsResponse) -> Result<Self> {
        Ok(FollowUpList {
            items: r
                .follow_ups
                .into_iter()
                .map(FollowUp::try_from)
                .collect::<Result<_>>()?,
            next_page_token: non_empty(r.next_page_token),
            // Zero when not asked for: the list handler leaves it out then (`Paged`).
            total_size: Some(r.total_size),
        })
    }
}

impl From<ExportFollowUpsParams> for pb::ExportFollowUpsRequest {
    fn from(q: ExportFollowUpsParams) -> Self {
        pb::ExportFollowUpsRequest {
            account_id: id_text(q.account_id),
            owner_id: id_text(q.owner_id),
            query: text(q.q),
            filter: text(q.filter),
            sort: follow_up_sort_code(q.sort),
            descending: descending(q.order),
        }
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
            custom_json: r#"{"budget":"12.50"}"#.into(),
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

    fn proto_follow_up() -> pb::FollowUp {
        pb::FollowUp {
            id: Uuid::now_v7().to_string(),
            account_id: Uuid::now_v7().to_string(),
            contact_id: String::new(),
            kind: pb::FollowUpKind::Meeting as i32,
            subject: "Quarterly review".into(),
            content: String::new(),
            outcome: "Asked for a quote".into(),
            occurred_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            next_follow_up_at: None,
            owner_id: Uuid::new_v4().to_string(),
            department_id: String::new(),
            version: 1,
            created_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_100,
                nanos: 0,
            }),
            updated_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_100,
                nanos: 0,
            }),
        }
    }

    #[test]
    fn a_follow_up_answer_becomes_json_with_nulls_for_what_is_unset() {
        let f = FollowUp::try_from(proto_follow_up()).unwrap();
        assert_eq!(f.kind, FollowUpKind::Meeting);
        assert_eq!(f.contact_id, None);
        assert_eq!(f.content, None);
        assert_eq!(f.next_follow_up_at, None);
        assert_eq!(f.outcome.as_deref(), Some("Asked for a quote"));
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["kind"], "meeting");
        assert_eq!(json["occurred_at"], "2023-11-14T22:13:20Z");
        assert!(json["next_follow_up_at"].is_null() && json["contact_id"].is_null());

        let mut bad = proto_follow_up();
        bad.kind = pb::FollowUpKind::Unspecified as i32;
        assert!(FollowUp::try_from(bad).is_err());
        let mut bad = proto_follow_up();
        bad.occurred_at = None;
        assert!(FollowUp::try_from(bad).is_err());
        let mut bad = proto_follow_up();
        bad.account_id = String::new();
        assert!(FollowUp::try_from(bad).is_err());
    }

    #[test]
    fn a_follow_up_patch_clears_the_next_date_with_its_flag() {
        let update = |patch: serde_json::Value| {
            pb::UpdateFollowUpRequest::from(FollowUpUpdate {
                id: Uuid::nil(),
                expected_version: 4,
                patch: serde_json::from_value(patch).unwrap(),
            })
        };
        let cleared = update(serde_json::json!({"next_follow_up_at": null, "outcome": null}));
        assert!(cleared.clear_next_follow_up);
        assert_eq!(cleared.next_follow_up_at, None);
        assert_eq!(cleared.outcome.as_deref(), Some(""));
        assert_eq!(cleared.expected_version, 4);
        assert_eq!(
            (cleared.subject, cleared.kind, cleared.contact_id),
            (None, None, None)
        );

        let moved = update(serde_json::json!({
            "next_follow_up_at": "2030-01-02T03:04:05Z", "kind": "call", "contact_id": null
        }));
        assert!(!moved.clear_next_follow_up);
        assert_eq!(
            moved.next_follow_up_at,
            Some(prost_types::Timestamp {
                seconds: 1_893_553_445,
                nanos: 0
            })
        );
        assert_eq!(moved.kind, Some(pb::FollowUpKind::Call as i32));
        assert_eq!(moved.contact_id.as_deref(), Some(""));

        let untouched = update(serde_json::json!({"subject": "Call back"}));
        assert!(!untouched.clear_next_follow_up);
        assert_eq!(untouched.next_follow_up_at, None);
    }

    #[test]
    fn a_new_follow_up_leaves_unset_what_the_service_defaults() {
        let req = pb::CreateFollowUpRequest::from(NewFollowUp {
            subject: "Intro call".into(),
            ..Default::default()
        });
        assert_eq!(req.kind, pb::FollowUpKind::Unspecified as i32);
        assert_eq!(req.occurred_at, None);
        assert_eq!(req.account_id, "");
        let list = pb::ListFollowUpsRequest::from(ListFollowUpsParams {
            sort: Some(FollowUpSortField::Subject),
            order: Some(SortOrder::Desc),
            ..Default::default()
        });
        assert_eq!(list.sort, pb::SortField::Name as i32);
        assert!(list.descending);
    }
}
