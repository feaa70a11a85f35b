//! `/api/v1/admin/shares` and `/api/v1/admin/sharing-rules`: sharing beyond the roles' data
//! scopes (`crm.permission.v1.SharingService`).
//!
//! Sharing widens which records an action a grant already gives reaches; it never grants an
//! action. `read` access counts for read and export, `edit` also for update. A share gives one
//! user one record; a sharing rule gives the members of a department (and of the departments
//! below it), or the holders of a role (or of a role inheriting from it), the records owned
//! within another department (and below it), or the records matching a condition. Every change
//! moves the permission version, so it is felt within about a second.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use crm_access::Access;
use crm_proto::permission as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::vocabulary::{ResourceName, ShareAccess};
use crate::platform::convert::{self, ConversionError, optional_uuid, timestamp, uuid};
use crate::platform::error::{Error, Result};
use crate::platform::extract::{ApiJson, ApiPath, IdPath};
use crate::platform::response::no_content;
use crate::upstream::permission::PermissionService;
use crate::upstream::{reply, request as call};

/// The body of `POST /api/v1/admin/shares`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareBody {
    /// A resource of the services (`account`, `contact`, …).
    pub resource: ResourceName,
    pub record_id: Uuid,
    pub user_id: Uuid,
    pub access: ShareAccess,
}

/// One record shared with one user.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecordShare {
    pub resource: ResourceName,
    pub record_id: Uuid,
    pub user_id: Uuid,
    pub access: ShareAccess,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<pb::RecordShare> for RecordShare {
    type Error = ConversionError;
    fn try_from(s: pb::RecordShare) -> convert::Result<Self> {
        Ok(RecordShare {
            resource: ResourceName::from_wire(&s.resource_name, s.resource)?,
            record_id: uuid("record_id", &s.record_id)?,
            user_id: uuid("user_id", &s.user_id)?,
            access: ShareAccess::from_pb(s.access)?,
            created_at: timestamp("created_at", s.created_at)?,
        })
    }
}

/// The users a record is shared with.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecordShareList {
    pub items: Vec<RecordShare>,
}

impl TryFrom<pb::ListRecordSharesResponse> for RecordShareList {
    type Error = ConversionError;
    fn try_from(r: pb::ListRecordSharesResponse) -> convert::Result<Self> {
        Ok(RecordShareList {
            items: r
                .shares
                .into_iter()
                .map(RecordShare::try_from)
                .collect::<convert::Result<_>>()?,
        })
    }
}

/// Records whose field has a value (`grade` = `A`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordCondition {
    /// The field as the resource names it (`grade`, `industry`).
    #[schema(example = "grade")]
    pub field: String,
    #[schema(example = "A")]
    pub equals: String,
}

/// A sharing rule: who (a department's members or a role's holders) gets which records (those
/// owned within a department, or matching a condition).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SharingRule {
    pub id: Uuid,
    pub name: String,
    pub resource: ResourceName,
    pub access: ShareAccess,
    /// The members of this department and of the departments below it (or `grantee_role_id`).
    pub grantee_department_id: Option<Uuid>,
    /// The holders of this role or of a role inheriting from it (or `grantee_department_id`).
    pub grantee_role_id: Option<Uuid>,
    /// The records owned within this department and below it (or `condition`).
    pub source_department_id: Option<Uuid>,
    /// The records matching this (or `source_department_id`).
    pub condition: Option<RecordCondition>,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<pb::SharingRule> for SharingRule {
    type Error = ConversionError;
    fn try_from(r: pb::SharingRule) -> convert::Result<Self> {
        Ok(SharingRule {
            id: uuid("id", &r.id)?,
            resource: ResourceName::from_wire(&r.resource_name, r.resource)?,
            access: ShareAccess::from_pb(r.access)?,
            grantee_department_id: optional_uuid(
                "grantee_department_id",
                &r.grantee_department_id,
            )?,
            grantee_role_id: optional_uuid("grantee_role_id", &r.grantee_role_id)?,
            source_department_id: optional_uuid("source_department_id", &r.source_department_id)?,
            condition: r.condition.map(|c| RecordCondition {
                field: c.field,
                equals: c.equals,
            }),
            name: r.name,
            created_at: timestamp("created_at", r.created_at)?,
        })
    }
}

impl TryFrom<pb::SharingRuleResponse> for SharingRule {
    type Error = ConversionError;
    fn try_from(r: pb::SharingRuleResponse) -> convert::Result<Self> {
        convert::required("rule", r.rule)?.try_into()
    }
}

/// Every sharing rule.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SharingRuleList {
    /// By resource, then name.
    pub items: Vec<SharingRule>,
}

impl TryFrom<pb::ListSharingRulesResponse> for SharingRuleList {
    type Error = ConversionError;
    fn try_from(r: pb::ListSharingRulesResponse) -> convert::Result<Self> {
        Ok(SharingRuleList {
            items: r
                .rules
                .into_iter()
                .map(SharingRule::try_from)
                .collect::<convert::Result<_>>()?,
        })
    }
}

/// The body of `POST /api/v1/admin/sharing-rules`: exactly one grantee and exactly one source.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSharingRule {
    /// 1 to 100 characters, unique per resource.
    #[schema(example = "North accounts for East Sales")]
    pub name: String,
    /// A resource of the services (`account`, `contact`, …).
    pub resource: ResourceName,
    pub access: ShareAccess,
    #[serde(default)]
    pub grantee_department_id: Option<Uuid>,
    #[serde(default)]
    pub grantee_role_id: Option<Uuid>,
    #[serde(default)]
    pub source_department_id: Option<Uuid>,
    #[serde(default)]
    pub condition: Option<RecordCondition>,
}

/// `/shares/{resource}/{record_id}`.
#[derive(Debug, Clone, Deserialize)]
pub struct RecordPath {
    pub resource: ResourceName,
    pub record_id: Uuid,
}

/// `/shares/{resource}/{record_id}/{user_id}`.
#[derive(Debug, Clone, Deserialize)]
pub struct SharePath {
    pub resource: ResourceName,
    pub record_id: Uuid,
    pub user_id: Uuid,
}

fn id_text(id: Option<Uuid>) -> String {
    id.map(|id| id.to_string()).unwrap_or_default()
}

/// Share one record with one user.
#[utoipa::path(post, path = "/api/v1/admin/shares", tag = "admin", operation_id = "admin_share_record",
    request_body(content = ShareBody, content_type = "application/json"),
    responses((status = 204, description = "Shared (again, with this access).")),
    security(("bearer" = [])))]
pub async fn share(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    ApiJson(body): ApiJson<ShareBody>,
) -> Result<Response> {
    state
        .sharing()
        .share_record(call(
            pb::ShareRecordRequest {
                resource: body.resource.to_pb(),
                resource_name: body.resource.name(),
                record_id: body.record_id.to_string(),
                user_id: body.user_id.to_string(),
                access: body.access.to_pb(),
            },
            &access,
        ))
        .await
        .map_err(Error::from_status)?;
    Ok(no_content())
}

/// List the users a record is shared with.
#[utoipa::path(get, path = "/api/v1/admin/shares/{resource}/{record_id}", tag = "admin", operation_id = "admin_list_record_shares",
    params(("resource" = ResourceName, Path, description = "The record's resource"),
        ("record_id" = Uuid, Path, description = "The record")),
    responses((status = 200, description = "The record's shares (none: an empty list).", body = RecordShareList)),
    security(("bearer" = [])))]
pub async fn list_shares(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    ApiPath(path): ApiPath<RecordPath>,
) -> Result<Response> {
    let list: RecordShareList = reply(state.sharing().list_record_shares(call(
        pb::ListRecordSharesRequest {
            resource: path.resource.to_pb(),
            resource_name: path.resource.name(),
            record_id: path.record_id.to_string(),
        },
        &access,
    )))
    .await?;
    Ok(axum::Json(list).into_response())
}

/// Stop sharing a record with a user.
#[utoipa::path(delete, path = "/api/v1/admin/shares/{resource}/{record_id}/{user_id}", tag = "admin", operation_id = "admin_unshare_record",
    params(("resource" = ResourceName, Path, description = "The record's resource"),
        ("record_id" = Uuid, Path, description = "The record"),
        ("user_id" = Uuid, Path, description = "The user")),
    responses((status = 204, description = "No longer shared (or never was).")),
    security(("bearer" = [])))]
pub async fn unshare(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    ApiPath(path): ApiPath<SharePath>,
) -> Result<Response> {
    state
        .sharing()
        .unshare_record(call(
            pb::UnshareRecordRequest {
                resource: path.resource.to_pb(),
                resource_name: path.resource.name(),
                record_id: path.record_id.to_string(),
                user_id: path.user_id.to_string(),
            },
            &access,
        ))
        .await
        .map_err(Error::from_status)?;
    Ok(no_content())
}

/// List the sharing rules.
#[utoipa::path(get, path = "/api/v1/admin/sharing-rules", tag = "admin", operation_id = "admin_list_sharing_rules",
    responses((status = 200, description = "Every sharing rule, by resource, then name.", body = SharingRuleList)),
    security(("bearer" = [])))]
pub async fn list_rules(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
) -> Result<Response> {
    let list: SharingRuleList = reply(
        state
            .sharing()
            .list_sharing_rules(call(pb::ListSharingRulesRequest {}, &access)),
    )
    .await?;
    Ok(axum::Json(list).into_response())
}

/// Create a sharing rule.
#[utoipa::path(post, path = "/api/v1/admin/sharing-rules", tag = "admin", operation_id = "admin_create_sharing_rule",
    description = "Give exactly one of `grantee_department_id` and `grantee_role_id`, and exactly one of \
        `source_department_id` and `condition`. Send `Idempotency-Key` to make retries safe.",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries of this request safe for 24 h")),
    request_body(content = NewSharingRule, content_type = "application/json"),
    responses((status = 201, description = "The rule.", body = SharingRule)),
    security(("bearer" = [])))]
pub async fn create_rule(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    ApiJson(body): ApiJson<NewSharingRule>,
) -> Result<Response> {
    let rule: SharingRule = reply(state.sharing().create_sharing_rule(call(
        pb::CreateSharingRuleRequest {
            name: body.name,
            resource: body.resource.to_pb(),
            resource_name: body.resource.name(),
            access: body.access.to_pb(),
            grantee_department_id: id_text(body.grantee_department_id),
            grantee_role_id: id_text(body.grantee_role_id),
            source_department_id: id_text(body.source_department_id),
            condition: body.condition.map(|c| pb::RecordCondition {
                field: c.field,
                equals: c.equals,
            }),
        },
        &access,
    )))
    .await?;
    Ok((StatusCode::CREATED, axum::Json(rule)).into_response())
}

/// Delete a sharing rule.
#[utoipa::path(delete, path = "/api/v1/admin/sharing-rules/{id}", tag = "admin", operation_id = "admin_delete_sharing_rule",
    params(("id" = Uuid, Path, description = "The rule id")),
    responses((status = 204, description = "Deleted.")),
    security(("bearer" = [])))]
pub async fn delete_rule(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    IdPath(id): IdPath,
) -> Result<Response> {
    state
        .sharing()
        .delete_sharing_rule(call(
            pb::DeleteSharingRuleRequest { id: id.to_string() },
            &access,
        ))
        .await
        .map_err(Error::from_status)?;
    Ok(no_content())
}
