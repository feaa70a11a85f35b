//! `/api/v1/audit`: the audit trail, for holders of `audit:read` (see the permission service's
//! `AuditService`; the decision and its scope travel with the call like everywhere else).

use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use crm_access::Access;
use crm_proto::permission as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::platform::error::{Error, Result};
use crate::platform::extract::ApiQuery;
use crate::upstream::permission::PermissionService;

/// Query string of `GET /api/v1/audit`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Entries per page, 1 to 200 (default 50).
    #[serde(default, deserialize_with = "crate::platform::fields::number_from_str")]
    #[param(minimum = 1, maximum = 200, value_type = Option<u32>)]
    pub page_size: Option<u32>,
    pub page_token: Option<String>,
    /// Only entries about this record (its id).
    pub record_id: Option<String>,
    /// Only entries of what this user did.
    pub user_id: Option<Uuid>,
    /// From this time on (RFC 3339, inclusive).
    pub from: Option<DateTime<Utc>>,
    /// Before this time (RFC 3339, exclusive).
    pub to: Option<DateTime<Utc>>,
}

/// One thing that happened.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// The id of the event it was made from.
    pub id: String,
    pub occurred_at: DateTime<Utc>,
    /// e.g. `customer.account.updated`, `permission.login.failed`.
    pub event_type: String,
    pub source: String,
    /// `account`, `contact`, `user`, `login`, `role`, …
    pub resource: String,
    pub record_id: Option<String>,
    /// `created`, `updated`, `deleted`, `failed`, …
    pub action: String,
    pub actor_user_id: Option<String>,
    pub api_client_id: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub trace_id: Option<String>,
    /// Per changed field: `{"old": …, "new": …}`.
    #[schema(value_type = Object)]
    pub changes: serde_json::Value,
    /// Everything else the event said.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// One page of the trail, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditList {
    pub items: Vec<AuditEntry>,
    pub next_page_token: Option<String>,
}

use crate::platform::convert::{ConversionError, non_empty as some, timestamp, to_timestamp};

fn json(
    field: &'static str,
    text: &str,
) -> std::result::Result<serde_json::Value, ConversionError> {
    serde_json::from_str(text).map_err(|e| ConversionError::new(field, e.to_string()))
}

impl TryFrom<pb::AuditEntry> for AuditEntry {
    type Error = ConversionError;
    fn try_from(e: pb::AuditEntry) -> std::result::Result<Self, ConversionError> {
        Ok(AuditEntry {
            occurred_at: timestamp("occurred_at", e.occurred_at)?,
            changes: json("changes_json", &e.changes_json)?,
            details: json("details_json", &e.details_json)?,
            id: e.id,
            event_type: e.event_type,
            source: e.source,
            resource: e.resource,
            record_id: some(e.record_id),
            action: e.action,
            actor_user_id: some(e.actor_user_id),
            api_client_id: some(e.api_client_id),
            client_ip: some(e.client_ip),
            user_agent: some(e.user_agent),
            trace_id: some(e.trace_id),
        })
    }
}

/// Search the audit trail.
///
/// Every write of every service (who, which record, each field before and after, when, from
/// which address and client, the trace id), every sign-in, sign-out and failed sign-in, and every
/// permission change. Needs `audit:read`; a scope narrower than `all` shows the actions of the
/// users it covers.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    operation_id = "list_audit_entries",
    params(AuditParams),
    responses((status = 200, description = "One page of entries, newest first.", body = AuditList)),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> Result<Response> {
    crate::platform::response::check_page_size(params.page_size)?;
    let request = crate::upstream::request(
        pb::ListAuditEntriesRequest {
            page_size: params
                .page_size
                .map_or(0, |n| n.min(i32::MAX as u32) as i32),
            page_token: params.page_token.unwrap_or_default(),
            record_id: params.record_id.unwrap_or_default(),
            actor_user_id: params.user_id.map(|u| u.to_string()).unwrap_or_default(),
            from: params.from.map(to_timestamp),
            to: params.to.map(to_timestamp),
        },
        &access,
    );
    let page = state
        .audit()
        .list_audit_entries(request)
        .await
        .map_err(Error::from_status)?
        .into_inner();
    let items = page
        .entries
        .into_iter()
        .map(AuditEntry::try_from)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(Error::internal)?;
    Ok(axum::Json(AuditList {
        items,
        next_page_token: some(page.next_page_token),
    })
    .into_response())
}
