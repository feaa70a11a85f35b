//! The JSON shapes of the public API (requests, responses, query strings).
//!
//! These are the gateway's own types: the generated protobuf types never appear in the API, so a
//! wire change between services cannot silently change what clients see. [`super::convert`] maps
//! between the two.
//!
//! Parsing is strict (`deny_unknown_fields`) so a typo such as `"emial"` is an error rather than
//! a silently ignored field. The gateway checks the *shape* (types, known fields, UUID syntax);
//! the customer service checks the *meaning* (required fields, lengths, email syntax) and answers
//! with field violations that the gateway passes on.
//!
//! PATCH bodies follow JSON merge-patch conventions: an absent field is left unchanged, `null`
//! clears an optional field, and `null` on a field that cannot be cleared is a type error.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::platform::fields::{bool_from_str, nullable, number_from_str, present};
use utoipa::{IntoParams, ToSchema};

pub use crate::platform::export::ExportFormat;
use crate::platform::records::{Exported, Paged, Versioned};
use uuid::Uuid;

/// Where a customer is in its relationship with us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleStatus {
    Prospect,
    Active,
    Inactive,
    Churned,
}

/// A sales grade, A (best) to D.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Grade {
    A,
    B,
    C,
    D,
}

/// A company we sell to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Account {
    pub id: Uuid,
    #[schema(example = "Acme Corp")]
    pub name: String,
    #[schema(example = "https://acme.example")]
    pub website: Option<String>,
    pub industry: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    /// The user who owns the account (defaults to its creator).
    pub owner_id: Option<Uuid>,
    /// The department it belongs to (defaults to its creator's primary department);
    /// department data scopes go by it.
    pub department_id: Option<Uuid>,
    pub tags: Vec<String>,
    pub lifecycle_status: LifecycleStatus,
    pub grade: Option<Grade>,
    /// Custom field values by key (their definitions: `GET /api/v1/fields/{entity}`):
    /// decimals and amounts as strings, dates `YYYY-MM-DD`, date-times in UTC. Fields that are
    /// deactivated or that the caller's rules hide are left out; masked ones are masked.
    #[schema(value_type = Object)]
    pub custom: serde_json::Map<String, serde_json::Value>,
    /// Bumped by every write; sent as the `ETag` and expected back in `If-Match`.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The body of `POST /api/v1/accounts`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    /// Required (checked by the customer service).
    #[serde(default)]
    #[schema(required = true, example = "Acme Corp")]
    pub name: String,
    #[serde(default)]
    pub website: Option<String>,
    #[serde(default)]
    pub industry: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// Defaults to the caller.
    #[serde(default)]
    pub owner_id: Option<Uuid>,
    /// Defaults to the caller's primary department.
    #[serde(default)]
    pub department_id: Option<Uuid>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Defaults to `prospect`.
    #[serde(default)]
    pub lifecycle_status: Option<LifecycleStatus>,
    #[serde(default)]
    pub grade: Option<Grade>,
    /// Custom field values by key; each is checked against its definition (a bad one answers
    /// 422 at `custom.<key>`). Send decimals as strings (`"12.50"`) to keep them exact.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub custom: serde_json::Map<String, serde_json::Value>,
}

/// The body of `PATCH /api/v1/accounts/{id}`: absent fields stay, `null` clears.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub website: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub industry: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Uuid)]
    pub owner_id: Option<Uuid>,
    /// Moving a record to another owner or department needs the `assign` permission.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub department_id: Option<Option<Uuid>>,
    /// Replaces the whole list.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Vec<String>)]
    pub tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = LifecycleStatus)]
    pub lifecycle_status: Option<LifecycleStatus>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Grade>)]
    pub grade: Option<Option<Grade>>,
    /// Custom field values to set, as a merge patch: `null` clears one, keys left out stay.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub custom: serde_json::Map<String, serde_json::Value>,
}

/// A person, usually at an account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Contact {
    pub id: Uuid,
    pub account_id: Option<Uuid>,
    #[schema(example = "Ada")]
    pub first_name: String,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub title: Option<String>,
    pub owner_id: Option<Uuid>,
    pub department_id: Option<Uuid>,
    pub tags: Vec<String>,
    pub lifecycle_status: LifecycleStatus,
    pub grade: Option<Grade>,
    /// Custom field values by key (their definitions: `GET /api/v1/fields/{entity}`):
    /// decimals and amounts as strings, dates `YYYY-MM-DD`, date-times in UTC. Fields that are
    /// deactivated or that the caller's rules hide are left out; masked ones are masked.
    #[schema(value_type = Object)]
    pub custom: serde_json::Map<String, serde_json::Value>,
    /// Bumped by every write; sent as the `ETag` and expected back in `If-Match`.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The body of `POST /api/v1/contacts`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContact {
    /// Required (checked by the customer service).
    #[serde(default)]
    #[schema(required = true, value_type = Uuid)]
    pub account_id: Option<Uuid>,
    /// Required (checked by the customer service).
    #[serde(default)]
    #[schema(required = true, example = "Ada")]
    pub first_name: String,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    /// Defaults to the caller.
    #[serde(default)]
    pub owner_id: Option<Uuid>,
    /// Defaults to the caller's primary department.
    #[serde(default)]
    pub department_id: Option<Uuid>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Defaults to `prospect`.
    #[serde(default)]
    pub lifecycle_status: Option<LifecycleStatus>,
    #[serde(default)]
    pub grade: Option<Grade>,
    /// Custom field values by key; each is checked against its definition (a bad one answers
    /// 422 at `custom.<key>`). Send decimals as strings (`"12.50"`) to keep them exact.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub custom: serde_json::Map<String, serde_json::Value>,
}

/// The body of `PATCH /api/v1/contacts/{id}`: absent fields stay, `null` clears.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactPatch {
    /// Moves the contact to another account.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Uuid)]
    pub account_id: Option<Uuid>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String)]
    pub first_name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub last_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub title: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Uuid)]
    pub owner_id: Option<Uuid>,
    /// Moving a record to another owner or department needs the `assign` permission.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub department_id: Option<Option<Uuid>>,
    /// Replaces the whole list.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Vec<String>)]
    pub tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = LifecycleStatus)]
    pub lifecycle_status: Option<LifecycleStatus>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Grade>)]
    pub grade: Option<Option<Grade>>,
    /// Custom field values to set, as a merge patch: `null` clears one, keys left out stay.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub custom: serde_json::Map<String, serde_json::Value>,
}

/// What lists are ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortField {
    CreatedAt,
    UpdatedAt,
    Name,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    Asc,
    Desc,
}

/// Query string of `GET /api/v1/accounts`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListAccountsParams {
    /// Records per page, 1 to 200 (default 50).
    #[serde(default, deserialize_with = "number_from_str")]
    #[param(minimum = 1, maximum = 200, value_type = Option<u32>)]
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page.
    pub page_token: Option<String>,
    /// Only records owned by this user.
    pub owner_id: Option<Uuid>,
    /// Only records carrying this tag.
    pub tag: Option<String>,
    /// Only records in this lifecycle status.
    #[param(inline)]
    pub status: Option<LifecycleStatus>,
    /// Case-insensitive substring of name, email or phone.
    pub q: Option<String>,
    /// A condition (ADR 0017) over built-in and custom fields, e.g.
    /// `grade in ('A', 'B') and custom.region = 'east' and created_at >= today - 30d`
    /// (relative dates in your time zone). It narrows what you may see; fields your rules hide
    /// or mask cannot be used. A bad one answers 400 on `filter` with the position.
    pub filter: Option<String>,
    /// Default `created_at`.
    #[param(inline)]
    pub sort: Option<SortField>,
    /// Default `asc`.
    #[param(inline)]
    pub order: Option<SortOrder>,
    /// Also count every matching record you may see (`total_size`).
    #[serde(default, deserialize_with = "bool_from_str")]
    #[param(value_type = Option<bool>)]
    pub include_total: Option<bool>,
}

/// Query string of `GET /api/v1/contacts`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListContactsParams {
    /// Records per page, 1 to 200 (default 50).
    #[serde(default, deserialize_with = "number_from_str")]
    #[param(minimum = 1, maximum = 200, value_type = Option<u32>)]
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page.
    pub page_token: Option<String>,
    /// Only contacts of this account.
    pub account_id: Option<Uuid>,
    /// Only records owned by this user.
    pub owner_id: Option<Uuid>,
    /// Only records carrying this tag.
    pub tag: Option<String>,
    /// Only records in this lifecycle status.
    #[param(inline)]
    pub status: Option<LifecycleStatus>,
    /// Case-insensitive substring of first/last name, email or phone.
    pub q: Option<String>,
    /// A condition (ADR 0017) over built-in and custom fields, e.g.
    /// `grade in ('A', 'B') and custom.region = 'east' and created_at >= today - 30d`
    /// (relative dates in your time zone). It narrows what you may see; fields your rules hide
    /// or mask cannot be used. A bad one answers 400 on `filter` with the position.
    pub filter: Option<String>,
    /// Default `created_at`.
    #[param(inline)]
    pub sort: Option<SortField>,
    /// Default `asc`.
    #[param(inline)]
    pub order: Option<SortOrder>,
    /// Also count every matching record you may see (`total_size`).
    #[serde(default, deserialize_with = "bool_from_str")]
    #[param(value_type = Option<bool>)]
    pub include_total: Option<bool>,
}

/// One page of accounts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AccountList {
    pub items: Vec<Account>,
    /// Pass as `page_token` to get the next page; `null` on the last page.
    pub next_page_token: Option<String>,
    /// With `include_total=true`: every matching record you may see, across all pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_size: Option<i64>,
}

/// One page of contacts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ContactList {
    pub items: Vec<Contact>,
    /// Pass as `page_token` to get the next page; `null` on the last page.
    pub next_page_token: Option<String>,
    /// With `include_total=true`: every matching record you may see, across all pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_size: Option<i64>,
}

/// Query string of `GET /api/v1/accounts/export`: the filters and sort of a list, no paging.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportAccountsParams {
    /// Default `ndjson`.
    #[param(inline)]
    pub format: Option<ExportFormat>,
    pub owner_id: Option<Uuid>,
    pub tag: Option<String>,
    #[param(inline)]
    pub status: Option<LifecycleStatus>,
    pub q: Option<String>,
    /// A condition (ADR 0017), as for lists.
    pub filter: Option<String>,
    #[param(inline)]
    pub sort: Option<SortField>,
    #[param(inline)]
    pub order: Option<SortOrder>,
}

/// Query string of `GET /api/v1/contacts/export`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportContactsParams {
    /// Default `ndjson`.
    #[param(inline)]
    pub format: Option<ExportFormat>,
    pub account_id: Option<Uuid>,
    pub owner_id: Option<Uuid>,
    pub tag: Option<String>,
    #[param(inline)]
    pub status: Option<LifecycleStatus>,
    pub q: Option<String>,
    /// A condition (ADR 0017), as for lists.
    pub filter: Option<String>,
    #[param(inline)]
    pub sort: Option<SortField>,
    #[param(inline)]
    pub order: Option<SortOrder>,
}

// --- follow-ups -------------------------------------------------------------------------------

/// What kind of contact with the customer a follow-up records: a phone `call`, a `meeting`
/// (in person or online), a `visit` at the customer's site, a `note` (no contact with the
/// customer), an `email`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpKind {
    Call,
    Meeting,
    Visit,
    Note,
    Email,
}

/// A follow-up (跟进记录): what someone did with a customer — a call, a meeting, a visit, a
/// note, an e-mail — when, with what outcome, and when to follow up next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FollowUp {
    pub id: Uuid,
    /// The account it is about. A follow-up stays with its account: it cannot be moved to
    /// another one.
    pub account_id: Uuid,
    /// The contact at that account it was with; `null`: the account as a whole.
    pub contact_id: Option<Uuid>,
    pub kind: FollowUpKind,
    /// A one-line summary.
    #[schema(example = "Quarterly review")]
    pub subject: String,
    /// What was said or done.
    pub content: Option<String>,
    /// What came of it.
    #[schema(example = "Asked for a quote")]
    pub outcome: Option<String>,
    /// When it happened (RFC 3339; defaults to when it was recorded).
    pub occurred_at: DateTime<Utc>,
    /// When to follow up next (RFC 3339, after `occurred_at`); `null` when nothing is planned.
    /// Reminders go by it.
    pub next_follow_up_at: Option<DateTime<Utc>>,
    /// Who followed up: the author, unless recorded for someone else.
    pub owner_id: Uuid,
    /// The department it belongs to (defaults to its creator's primary department);
    /// department data scopes go by it.
    pub department_id: Option<Uuid>,
    /// Bumped by every write; sent as the `ETag` and expected back in `If-Match`.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The body of `POST /api/v1/follow-ups`. Recording one needs `read` on its account (and
/// contact): one you may not read is refused as `no such account` (`no such contact`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFollowUp {
    /// Required (checked by the customer service): an account you may read.
    #[serde(default)]
    #[schema(required = true, value_type = Uuid)]
    pub account_id: Option<Uuid>,
    /// A contact of that account you may read; absent or `null`: the account as a whole.
    #[serde(default)]
    pub contact_id: Option<Uuid>,
    /// Required (checked by the customer service).
    #[serde(default)]
    #[schema(required = true, value_type = FollowUpKind)]
    pub kind: Option<FollowUpKind>,
    /// Required (checked by the customer service).
    #[serde(default)]
    #[schema(required = true, example = "Quarterly review")]
    pub subject: String,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub outcome: Option<String>,
    /// RFC 3339, not in the future; defaults to now.
    #[serde(default)]
    pub occurred_at: Option<DateTime<Utc>>,
    /// RFC 3339, after `occurred_at`.
    #[serde(default)]
    pub next_follow_up_at: Option<DateTime<Utc>>,
    /// Defaults to the caller.
    #[serde(default)]
    pub owner_id: Option<Uuid>,
    /// Defaults to the caller's primary department.
    #[serde(default)]
    pub department_id: Option<Uuid>,
}

/// The body of `PATCH /api/v1/follow-ups/{id}`: absent fields stay, `null` clears. There is no
/// `account_id`: a follow-up stays with its account.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowUpPatch {
    /// Another contact of the same account (one you may read); `null`: the account as a whole.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub contact_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = FollowUpKind)]
    pub kind: Option<FollowUpKind>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String)]
    pub subject: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub content: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub outcome: Option<Option<String>>,
    /// RFC 3339, not in the future.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: Option<DateTime<Utc>>,
    /// RFC 3339, after `occurred_at`; `null`: nothing planned any more.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_follow_up_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Uuid)]
    pub owner_id: Option<Uuid>,
    /// Moving a record to another owner or department needs the `assign` permission.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub department_id: Option<Option<Uuid>>,
}

/// What follow-up lists are ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpSortField {
    CreatedAt,
    UpdatedAt,
    Subject,
    /// When it happened: `sort=occurred_at&order=desc` is the newest first, as on a timeline.
    OccurredAt,
}

/// Query string of `GET /api/v1/follow-ups`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListFollowUpsParams {
    /// Records per page, 1 to 200 (default 50).
    #[serde(default, deserialize_with = "number_from_str")]
    #[param(minimum = 1, maximum = 200, value_type = Option<u32>)]
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page.
    pub page_token: Option<String>,
    /// Only follow-ups about this account.
    pub account_id: Option<Uuid>,
    /// Only follow-ups owned by this user.
    pub owner_id: Option<Uuid>,
    /// Case-insensitive substring of subject, content or outcome.
    pub q: Option<String>,
    /// A condition (ADR 0017) over built-in and custom fields, e.g.
    /// `grade in ('A', 'B') and custom.region = 'east' and created_at >= today - 30d`
    /// (relative dates in your time zone). It narrows what you may see; fields your rules hide
    /// or mask cannot be used. A bad one answers 400 on `filter` with the position.
    pub filter: Option<String>,
    /// Default `created_at`.
    #[param(inline)]
    pub sort: Option<FollowUpSortField>,
    /// Default `asc`.
    #[param(inline)]
    pub order: Option<SortOrder>,
    /// Also count every matching record you may see (`total_size`).
    #[serde(default, deserialize_with = "bool_from_str")]
    #[param(value_type = Option<bool>)]
    pub include_total: Option<bool>,
}

/// One page of follow-ups.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FollowUpList {
    pub items: Vec<FollowUp>,
    /// Pass as `page_token` to get the next page; `null` on the last page.
    pub next_page_token: Option<String>,
    /// With `include_total=true`: every matching record you may see, across all pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_size: Option<i64>,
}

/// Query string of `GET /api/v1/follow-ups/export`: the filters and sort of a list, no paging.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportFollowUpsParams {
    /// Default `ndjson`.
    #[param(inline)]
    pub format: Option<ExportFormat>,
    /// Only follow-ups about this account.
    pub account_id: Option<Uuid>,
    /// Only follow-ups owned by this user.
    pub owner_id: Option<Uuid>,
    /// Case-insensitive substring of subject, content or outcome.
    pub q: Option<String>,
    /// A condition (ADR 0017), as for lists.
    pub filter: Option<String>,
    /// Default `created_at`.
    #[param(inline)]
    pub sort: Option<FollowUpSortField>,
    /// Default `asc`.
    #[param(inline)]
    pub order: Option<SortOrder>,
}

macro_rules! record_traits {
    ($record:ty, $list:ty, $export:ty) => {
        impl Versioned for $record {
            fn id(&self) -> Uuid {
                self.id
            }
            fn version(&self) -> i64 {
                self.version
            }
        }

        impl Paged for $list {
            fn page_size(&self) -> Option<u32> {
                self.page_size
            }
            fn include_total(&self) -> bool {
                self.include_total.unwrap_or(false)
            }
        }

        impl Exported for $export {
            fn format(&self) -> ExportFormat {
                self.format.unwrap_or_default()
            }
        }
    };
}

record_traits!(Account, ListAccountsParams, ExportAccountsParams);
record_traits!(Contact, ListContactsParams, ExportContactsParams);
record_traits!(FollowUp, ListFollowUpsParams, ExportFollowUpsParams);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patch_tells_absent_from_null() {
        let patch: AccountPatch =
            serde_json::from_value(json!({"website": null, "grade": "B"})).unwrap();
        assert_eq!(patch.website, Some(None));
        assert_eq!(patch.industry, None);
        assert_eq!(patch.grade, Some(Some(Grade::B)));
        assert_eq!(patch.name, None);
    }

    #[test]
    fn patch_refuses_null_where_nothing_can_be_cleared() {
        assert!(serde_json::from_value::<AccountPatch>(json!({"name": null})).is_err());
        assert!(serde_json::from_value::<AccountPatch>(json!({"tags": null})).is_err());
        assert!(serde_json::from_value::<ContactPatch>(json!({"first_name": null})).is_err());
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_value::<NewAccount>(json!({"name": "a", "nmae": "b"})).is_err());
        assert!(serde_json::from_value::<ContactPatch>(json!({"frist_name": "b"})).is_err());
    }

    #[test]
    fn follow_up_patch_tells_absent_from_null() {
        let patch: FollowUpPatch = serde_json::from_value(
            json!({"next_follow_up_at": null, "outcome": "Won", "contact_id": null}),
        )
        .unwrap();
        assert_eq!(patch.next_follow_up_at, Some(None));
        assert_eq!(patch.contact_id, Some(None));
        assert_eq!(patch.outcome, Some(Some("Won".into())));
        assert_eq!(patch.content, None);
        assert_eq!(patch.occurred_at, None);
        for cannot_clear in ["subject", "kind", "occurred_at", "owner_id"] {
            let body = json!({ cannot_clear: null });
            assert!(
                serde_json::from_value::<FollowUpPatch>(body).is_err(),
                "{cannot_clear}"
            );
        }
        // A follow-up stays with its account.
        let moved = json!({"account_id": Uuid::nil()});
        assert!(serde_json::from_value::<FollowUpPatch>(moved).is_err());
    }

    #[test]
    fn follow_up_times_are_rfc_3339() {
        let new: NewFollowUp = serde_json::from_value(json!({
            "kind": "visit", "occurred_at": "2025-03-01T09:30:00+08:00"
        }))
        .unwrap();
        assert_eq!(new.kind, Some(FollowUpKind::Visit));
        assert_eq!(
            new.occurred_at.unwrap().to_rfc3339(),
            "2025-03-01T01:30:00+00:00"
        );
        assert!(
            serde_json::from_value::<NewFollowUp>(json!({"occurred_at": "yesterday"})).is_err()
        );
        assert!(serde_json::from_value::<NewFollowUp>(json!({"kind": "fax"})).is_err());
    }

    #[test]
    fn enums_use_the_documented_spelling() {
        assert_eq!(
            serde_json::to_value(LifecycleStatus::Churned).unwrap(),
            "churned"
        );
        assert_eq!(serde_json::to_value(Grade::A).unwrap(), "A");
        assert!(serde_json::from_value::<SortField>(json!("updated_at")).is_ok());
        assert_eq!(serde_json::to_value(FollowUpKind::Email).unwrap(), "email");
        assert!(serde_json::from_value::<FollowUpSortField>(json!("subject")).is_ok());
    }
}
