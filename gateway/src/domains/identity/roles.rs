//! `/api/v1/admin/roles`: roles, what they grant and their field rules
//! (`crm.permission.v1.OrgService`).
//!
//! A role inherits every grant of its parent role; its own field rules override inherited ones
//! field by field. Grants and field rules are parts of their role: each change takes the role's
//! `If-Match` and answers the role with its new `ETag`, so a console editing a role sees a
//! concurrent edit as a `412` instead of overwriting it. Setting what is already there changes
//! nothing (no new version). Roles are given to users at `POST /api/v1/admin/users/{id}/roles`.

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

use super::vocabulary::{ActionName, DataScope, Mask, ResourceName, Visibility, unnested};
use crate::platform::convert::{self, ConversionError, optional_uuid, timestamp, uuid};
use crate::platform::error::{Error, Result};
use crate::platform::extract::{ApiJson, ApiPath, IdPath, IfMatch};
use crate::platform::fields::{nullable, present};
use crate::platform::response::{created, no_content, with_etag};
use crate::upstream::permission::PermissionService;
use crate::upstream::{reply, request as call};

/// One action on one resource within a data scope.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Grant {
    pub resource: ResourceName,
    pub action: ActionName,
    pub scope: DataScope,
}

/// How one field of a resource is shown to the role's holders.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FieldRule {
    pub resource: ResourceName,
    /// The field as the resource names it (`phone`, `email`, `id_number`).
    pub field: String,
    pub visibility: Visibility,
    /// Only with `read_only`; `null`: shown as it is.
    pub mask: Option<Mask>,
}

/// A role.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Role {
    pub id: Uuid,
    /// A key such as `sales_rep`: 2 to 64 of a-z 0-9 _, starting with a letter; unique.
    #[schema(example = "sales_rep")]
    pub name: String,
    /// `""` when it has none.
    pub description: String,
    /// The role it inherits every grant from; `null`: none.
    pub parent_role_id: Option<Uuid>,
    /// Its own grants (not the inherited ones), by resource and action.
    pub grants: Vec<Grant>,
    /// Its own field rules (not the inherited ones), by resource and field.
    pub field_rules: Vec<FieldRule>,
    /// Bumped by every change, its grants and field rules included; sent as the `ETag` and
    /// expected back in `If-Match`.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<pb::Grant> for Grant {
    type Error = ConversionError;
    fn try_from(g: pb::Grant) -> convert::Result<Self> {
        Ok(Grant {
            resource: ResourceName::from_wire(&g.resource_name, g.resource)?,
            action: ActionName::from_pb(g.action)?,
            scope: DataScope::from_pb(g.scope)?,
        })
    }
}

impl TryFrom<pb::FieldRule> for FieldRule {
    type Error = ConversionError;
    fn try_from(f: pb::FieldRule) -> convert::Result<Self> {
        Ok(FieldRule {
            resource: ResourceName::from_wire(&f.resource_name, f.resource)?,
            field: f.field,
            visibility: Visibility::from_pb(f.visibility)?,
            mask: match f.mask {
                0 => None,
                raw => Some(Mask::from_pb(raw)?),
            },
        })
    }
}

impl TryFrom<pb::Role> for Role {
    type Error = ConversionError;
    fn try_from(r: pb::Role) -> convert::Result<Self> {
        Ok(Role {
            id: uuid("id", &r.id)?,
            parent_role_id: optional_uuid("parent_role_id", &r.parent_role_id)?,
            name: r.name,
            description: r.description,
            grants: r
                .grants
                .into_iter()
                .map(Grant::try_from)
                .collect::<convert::Result<_>>()?,
            field_rules: r
                .field_rules
                .into_iter()
                .map(FieldRule::try_from)
                .collect::<convert::Result<_>>()?,
            version: r.version,
            created_at: timestamp("created_at", r.created_at)?,
            updated_at: timestamp("updated_at", r.updated_at)?,
        })
    }
}

impl TryFrom<pb::RoleResponse> for Role {
    type Error = ConversionError;
    fn try_from(r: pb::RoleResponse) -> convert::Result<Self> {
        convert::required("role", r.role)?.try_into()
    }
}

/// Every role.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoleList {
    /// By name.
    pub items: Vec<Role>,
}

impl TryFrom<pb::ListRolesResponse> for RoleList {
    type Error = ConversionError;
    fn try_from(r: pb::ListRolesResponse) -> convert::Result<Self> {
        Ok(RoleList {
            items: r
                .roles
                .into_iter()
                .map(Role::try_from)
                .collect::<convert::Result<_>>()?,
        })
    }
}

/// The body of `POST /api/v1/admin/roles`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    /// 2 to 64 of a-z 0-9 _, starting with a letter; unique.
    #[schema(example = "key_account_manager")]
    pub name: String,
    /// Up to 500 characters.
    #[serde(default)]
    pub description: Option<String>,
    /// The role to inherit every grant from.
    #[serde(default)]
    pub parent_role_id: Option<Uuid>,
}

/// The body of `PATCH /api/v1/admin/roles/{id}` (JSON merge-patch: absent fields stay, `null`
/// clears).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolePatch {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// `null`: inherit nothing. A parent that is the role itself or inherits from it is
    /// refused (`409`).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub parent_role_id: Option<Option<Uuid>>,
}

/// The body of `PUT /api/v1/admin/roles/{id}/grants/{resource}/{action}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    pub scope: DataScope,
}

/// The body of `PUT /api/v1/admin/roles/{id}/field-rules/{resource}/{field}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldRuleBody {
    pub visibility: Visibility,
    /// Only with `read_only`; absent or `null`: unmasked.
    #[serde(default)]
    pub mask: Option<Mask>,
}

/// `/roles/{id}/grants/{resource}/{action}`.
#[derive(Debug, Clone, Deserialize)]
pub struct GrantPath {
    pub id: Uuid,
    pub resource: ResourceName,
    pub action: ActionName,
}

/// `/roles/{id}/field-rules/{resource}/{field}`.
#[derive(Debug, Clone, Deserialize)]
pub struct FieldRulePath {
    pub id: Uuid,
    pub resource: ResourceName,
    pub field: String,
}

fn location(id: Uuid) -> String {
    format!("/api/v1/admin/roles/{id}")
}

async fn fetch(state: &PermissionService, access: &Access, id: Uuid) -> Result<Role> {
    reply(
        state
            .org()
            .get_role(call(pb::GetRoleRequest { id: id.to_string() }, access)),
    )
    .await
}

/// The role's version a write expects (`*`: the current one).
async fn expected(
    state: &PermissionService,
    access: &Access,
    id: Uuid,
    if_match: IfMatch,
) -> Result<i64> {
    if_match
        .or_current(async { Ok(fetch(state, access, id).await?.version) })
        .await
}

fn answer(role: &Role) -> Response {
    with_etag(StatusCode::OK, role.version, role)
}

/// List the roles.
#[utoipa::path(get, path = "/api/v1/admin/roles", tag = "admin", operation_id = "admin_list_roles",
    responses((status = 200, description = "Every role, by name, with its own grants and field rules.", body = RoleList)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
) -> Result<Response> {
    let list: RoleList = reply(
        state
            .org()
            .list_roles(call(pb::ListRolesRequest {}, &access)),
    )
    .await?;
    Ok(axum::Json(list).into_response())
}

/// Create a role (without grants: add them with `PUT …/grants/{resource}/{action}`).
#[utoipa::path(post, path = "/api/v1/admin/roles", tag = "admin", operation_id = "admin_create_role",
    description = "Send `Idempotency-Key` to make retries safe.",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries of this request safe for 24 h")),
    request_body(content = NewRole, content_type = "application/json"),
    responses((status = 201, description = "The role.", body = Role,
        headers(("Location" = String, description = "Its URL"), ("ETag" = String, description = "Its version")))),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    ApiJson(body): ApiJson<NewRole>,
) -> Result<Response> {
    let role: Role = reply(
        state.org().create_role(call(
            pb::CreateRoleRequest {
                name: body.name,
                description: body.description.unwrap_or_default(),
                parent_role_id: body
                    .parent_role_id
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
            },
            &access,
        )),
    )
    .await?;
    Ok(created(&location(role.id), role.version, &role))
}

/// Read a role, with its own grants and field rules.
#[utoipa::path(get, path = "/api/v1/admin/roles/{id}", tag = "admin", operation_id = "admin_get_role",
    params(("id" = Uuid, Path, description = "The role id")),
    responses((status = 200, description = "The role.", body = Role,
        headers(("ETag" = String, description = "Its version")))),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    IdPath(id): IdPath,
) -> Result<Response> {
    Ok(answer(&fetch(&state, &access, id).await?))
}

/// Rename, describe or re-parent a role.
#[utoipa::path(patch, path = "/api/v1/admin/roles/{id}", tag = "admin", operation_id = "admin_update_role",
    params(("id" = Uuid, Path, description = "The role id"),
        ("If-Match" = String, Header, description = "ETag of the version being changed (`\"3\"`), or `*`")),
    request_body(content = RolePatch, content_type = "application/json"),
    responses((status = 200, description = "The role after the change.", body = Role,
        headers(("ETag" = String, description = "Its new version")))),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    IdPath(id): IdPath,
    if_match: IfMatch,
    ApiJson(patch): ApiJson<RolePatch>,
) -> Result<Response> {
    let expected_version = expected(&state, &access, id, if_match).await?;
    let role: Role = reply(
        state.org().update_role(call(
            pb::UpdateRoleRequest {
                id: id.to_string(),
                expected_version,
                name: patch.name,
                description: patch.description.map(Option::unwrap_or_default),
                parent_role_id: patch
                    .parent_role_id
                    .map(|parent| parent.map(|id| id.to_string()).unwrap_or_default()),
            },
            &access,
        )),
    )
    .await?;
    Ok(answer(&role))
}

/// Delete a role, with its grants and field rules. Refused (`409`) while other roles inherit
/// from it or users hold it.
#[utoipa::path(delete, path = "/api/v1/admin/roles/{id}", tag = "admin", operation_id = "admin_delete_role",
    params(("id" = Uuid, Path, description = "The role id"),
        ("If-Match" = Option<String>, Header, description = "When given, deletes only that version")),
    responses((status = 204, description = "Deleted.")),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    IdPath(id): IdPath,
    if_match: Option<IfMatch>,
) -> Result<Response> {
    state
        .org()
        .delete_role(call(
            pb::DeleteRoleRequest {
                id: id.to_string(),
                expected_version: if_match.map_or(0, IfMatch::expected_version),
            },
            &access,
        ))
        .await
        .map_err(Error::from_status)?;
    Ok(no_content())
}

/// Grant the role an action on a resource within a data scope, or change the scope of that
/// grant.
#[utoipa::path(put, path = "/api/v1/admin/roles/{id}/grants/{resource}/{action}", tag = "admin", operation_id = "admin_set_grant",
    params(("id" = Uuid, Path, description = "The role id"),
        ("resource" = ResourceName, Path, description = "The resource"),
        ("action" = ActionName, Path, description = "The action"),
        ("If-Match" = String, Header, description = "ETag of the role's version being changed (`\"3\"`), or `*`")),
    request_body(content = GrantBody, content_type = "application/json"),
    responses((status = 200, description = "The role after the change.", body = Role,
        headers(("ETag" = String, description = "Its new version")))),
    security(("bearer" = [])))]
pub async fn set_grant(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    ApiPath(path): ApiPath<GrantPath>,
    if_match: IfMatch,
    ApiJson(body): ApiJson<GrantBody>,
) -> Result<Response> {
    let expected_version = expected(&state, &access, path.id, if_match).await?;
    let role: Role = reply(state.org().set_grant(call(
        pb::SetGrantRequest {
            role_id: path.id.to_string(),
            expected_version,
            grant: Some(pb::Grant {
                resource: path.resource.to_pb(),
                resource_name: path.resource.name(),
                action: path.action.to_pb(),
                scope: body.scope.to_pb(),
            }),
        },
        &access,
    )))
    .await
    .map_err(|e| unnested(e, "grant."))?;
    Ok(answer(&role))
}

/// Take a grant from the role (its holders may still have the action through another role).
#[utoipa::path(delete, path = "/api/v1/admin/roles/{id}/grants/{resource}/{action}", tag = "admin", operation_id = "admin_remove_grant",
    params(("id" = Uuid, Path, description = "The role id"),
        ("resource" = ResourceName, Path, description = "The resource"),
        ("action" = ActionName, Path, description = "The action"),
        ("If-Match" = String, Header, description = "ETag of the role's version being changed (`\"3\"`), or `*`")),
    responses((status = 200, description = "The role after the change.", body = Role,
        headers(("ETag" = String, description = "Its new version")))),
    security(("bearer" = [])))]
pub async fn remove_grant(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    ApiPath(path): ApiPath<GrantPath>,
    if_match: IfMatch,
) -> Result<Response> {
    let expected_version = expected(&state, &access, path.id, if_match).await?;
    let role: Role = reply(state.org().remove_grant(call(
        pb::RemoveGrantRequest {
            role_id: path.id.to_string(),
            expected_version,
            resource: path.resource.to_pb(),
            resource_name: path.resource.name(),
            action: path.action.to_pb(),
        },
        &access,
    )))
    .await?;
    Ok(answer(&role))
}

/// Set how the role's holders see one field of a resource.
#[utoipa::path(put, path = "/api/v1/admin/roles/{id}/field-rules/{resource}/{field}", tag = "admin", operation_id = "admin_set_field_rule",
    params(("id" = Uuid, Path, description = "The role id"),
        ("resource" = ResourceName, Path, description = "The resource"),
        ("field" = String, Path, description = "The field as the resource names it (`phone`)"),
        ("If-Match" = String, Header, description = "ETag of the role's version being changed (`\"3\"`), or `*`")),
    request_body(content = FieldRuleBody, content_type = "application/json"),
    responses((status = 200, description = "The role after the change.", body = Role,
        headers(("ETag" = String, description = "Its new version")))),
    security(("bearer" = [])))]
pub async fn set_field_rule(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    ApiPath(path): ApiPath<FieldRulePath>,
    if_match: IfMatch,
    ApiJson(body): ApiJson<FieldRuleBody>,
) -> Result<Response> {
    if body.mask.is_some() && body.visibility.0 != crm_access::Visibility::ReadOnly {
        return Err(Error::invalid(vec![crm_errors::FieldViolation::new(
            "mask",
            "is only allowed with visibility read_only",
        )]));
    }
    let expected_version = expected(&state, &access, path.id, if_match).await?;
    let role: Role = reply(state.org().set_field_rule(call(
        pb::SetFieldRuleRequest {
            role_id: path.id.to_string(),
            expected_version,
            rule: Some(pb::FieldRule {
                resource: path.resource.to_pb(),
                resource_name: path.resource.name(),
                field: path.field,
                visibility: body.visibility.to_pb(),
                mask: body.mask.map_or(0, Mask::to_pb),
            }),
        },
        &access,
    )))
    .await
    .map_err(|e| unnested(e, "rule."))?;
    Ok(answer(&role))
}

/// Remove the role's rule for one field (the field is then as inherited, or editable).
#[utoipa::path(delete, path = "/api/v1/admin/roles/{id}/field-rules/{resource}/{field}", tag = "admin", operation_id = "admin_remove_field_rule",
    params(("id" = Uuid, Path, description = "The role id"),
        ("resource" = ResourceName, Path, description = "The resource"),
        ("field" = String, Path, description = "The field as the resource names it (`phone`)"),
        ("If-Match" = String, Header, description = "ETag of the role's version being changed (`\"3\"`), or `*`")),
    responses((status = 200, description = "The role after the change.", body = Role,
        headers(("ETag" = String, description = "Its new version")))),
    security(("bearer" = [])))]
pub async fn remove_field_rule(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    ApiPath(path): ApiPath<FieldRulePath>,
    if_match: IfMatch,
) -> Result<Response> {
    let expected_version = expected(&state, &access, path.id, if_match).await?;
    let role: Role = reply(state.org().remove_field_rule(call(
        pb::RemoveFieldRuleRequest {
            role_id: path.id.to_string(),
            expected_version,
            resource: path.resource.to_pb(),
            resource_name: path.resource.name(),
            field: path.field,
        },
        &access,
    )))
    .await?;
    Ok(answer(&role))
}
