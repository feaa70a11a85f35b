//! `/api/v1/admin/users/{id}/…`: a user's place in the organisation — their departments,
//! manager and roles (`crm.permission.v1.OrgService`). The three are one record, the user's
//! organisation, with its own version (separate from the user account's): its `ETag` guards
//! changes to departments and manager. Every change moves the permission version, so the user's
//! data scopes follow within about a second.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use crm_access::Access;
use crm_proto::permission as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::platform::convert::{self, ConversionError, optional_uuid, uuid};
use crate::platform::error::{Error, Result};
use crate::platform::extract::{ApiJson, ApiPath, IdPath, IfMatch};
use crate::platform::fields::required;
use crate::platform::response::{no_content, with_etag};
use crate::upstream::permission::PermissionService;
use crate::upstream::{reply, request as call};

/// A user's place in the organisation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserOrg {
    pub user_id: Uuid,
    /// `null` when the user belongs to no department. New records of the user are filed there.
    pub primary_department_id: Option<Uuid>,
    /// Every department of the user, the primary one included.
    pub department_ids: Vec<Uuid>,
    /// `null`: no manager. Managers oversee their reports, transitively
    /// (`own_and_subordinates`).
    pub manager_id: Option<Uuid>,
    /// The roles the user holds directly (not the ones those inherit from).
    pub role_ids: Vec<Uuid>,
    /// Bumped by every change of the above; sent as the `ETag` and expected back in `If-Match`.
    pub version: i64,
}

fn uuids(field: &'static str, ids: Vec<String>) -> convert::Result<Vec<Uuid>> {
    ids.iter().map(|id| uuid(field, id)).collect()
}

impl TryFrom<pb::UserOrg> for UserOrg {
    type Error = ConversionError;
    fn try_from(u: pb::UserOrg) -> convert::Result<Self> {
        Ok(UserOrg {
            user_id: uuid("user_id", &u.user_id)?,
            primary_department_id: optional_uuid(
                "primary_department_id",
                &u.primary_department_id,
            )?,
            department_ids: uuids("department_ids", u.department_ids)?,
            manager_id: optional_uuid("manager_id", &u.manager_id)?,
            role_ids: uuids("role_ids", u.role_ids)?,
            version: u.version,
        })
    }
}

impl TryFrom<pb::UserOrgResponse> for UserOrg {
    type Error = ConversionError;
    fn try_from(r: pb::UserOrgResponse) -> convert::Result<Self> {
        convert::required("user_org", r.user_org)?.try_into()
    }
}

/// The body of `PUT /api/v1/admin/users/{id}/departments`: the user's memberships, replaced.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserDepartments {
    /// Required; `null` (with no others) takes the user out of every department.
    #[serde(deserialize_with = "required")]
    #[schema(value_type = Option<Uuid>, required = true)]
    pub primary_department_id: Option<Uuid>,
    /// Further departments (at most 49); needs a primary one.
    #[serde(default)]
    pub other_department_ids: Vec<Uuid>,
}

/// The body of `PUT /api/v1/admin/users/{id}/manager`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserManager {
    /// Required; `null`: no manager. The user or one of their (transitive) reports is refused
    /// (`409`).
    #[serde(deserialize_with = "required")]
    #[schema(value_type = Option<Uuid>, required = true)]
    pub manager_id: Option<Uuid>,
}

/// The body of `POST /api/v1/admin/users/{id}/roles`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    pub role_id: Uuid,
}

/// `/users/{id}/roles/{role_id}`.
#[derive(Debug, Clone, Deserialize)]
pub struct RolePath {
    pub id: Uuid,
    pub role_id: Uuid,
}

async fn fetch(state: &PermissionService, access: &Access, user: Uuid) -> Result<UserOrg> {
    reply(state.org().get_user_org(call(
        pb::GetUserOrgRequest {
            user_id: user.to_string(),
        },
        access,
    )))
    .await
}

/// The version a change expects: the one named in `If-Match`, else (absent or `*`) the
/// current one.
async fn expected(
    state: &PermissionService,
    access: &Access,
    user: Uuid,
    if_match: Option<IfMatch>,
) -> Result<i64> {
    if_match
        .unwrap_or(IfMatch::Any)
        .or_current(async { Ok(fetch(state, access, user).await?.version) })
        .await
}

fn answer(org: &UserOrg) -> Response {
    with_etag(StatusCode::OK, org.version, org)
}

/// Read a user's departments, manager and roles.
#[utoipa::path(get, path = "/api/v1/admin/users/{id}/org", tag = "admin", operation_id = "admin_get_user_org",
    params(("id" = Uuid, Path, description = "The user id")),
    responses((status = 200, description = "The user's place in the organisation.", body = UserOrg,
        headers(("ETag" = String, description = "Its version")))),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    IdPath(id): IdPath,
) -> Result<Response> {
    Ok(answer(&fetch(&state, &access, id).await?))
}

/// Replace a user's departments.
#[utoipa::path(put, path = "/api/v1/admin/users/{id}/departments", tag = "admin", operation_id = "admin_set_user_departments",
    params(("id" = Uuid, Path, description = "The user id"),
        ("If-Match" = String, Header, description = "ETag of the user's organisation (`GET …/users/{id}/org`), or `*`")),
    request_body(content = UserDepartments, content_type = "application/json"),
    responses((status = 200, description = "The user's place in the organisation after the change.", body = UserOrg,
        headers(("ETag" = String, description = "Its new version")))),
    security(("bearer" = [])))]
pub async fn set_departments(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    IdPath(id): IdPath,
    if_match: IfMatch,
    ApiJson(body): ApiJson<UserDepartments>,
) -> Result<Response> {
    let expected_version = expected(&state, &access, id, Some(if_match)).await?;
    let org: UserOrg = reply(
        state.org().set_user_departments(call(
            pb::SetUserDepartmentsRequest {
                user_id: id.to_string(),
                expected_version,
                primary_department_id: body
                    .primary_department_id
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
                other_department_ids: body
                    .other_department_ids
                    .iter()
                    .map(Uuid::to_string)
                    .collect(),
            },
            &access,
        )),
    )
    .await?;
    Ok(answer(&org))
}

/// Set or clear a user's manager.
#[utoipa::path(put, path = "/api/v1/admin/users/{id}/manager", tag = "admin", operation_id = "admin_set_user_manager",
    params(("id" = Uuid, Path, description = "The user id"),
        ("If-Match" = String, Header, description = "ETag of the user's organisation (`GET …/users/{id}/org`), or `*`")),
    request_body(content = UserManager, content_type = "application/json"),
    responses((status = 200, description = "The user's place in the organisation after the change.", body = UserOrg,
        headers(("ETag" = String, description = "Its new version")))),
    security(("bearer" = [])))]
pub async fn set_manager(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    IdPath(id): IdPath,
    if_match: IfMatch,
    ApiJson(body): ApiJson<UserManager>,
) -> Result<Response> {
    let expected_version = expected(&state, &access, id, Some(if_match)).await?;
    let org: UserOrg = reply(state.org().set_user_manager(call(
        pb::SetUserManagerRequest {
            user_id: id.to_string(),
            expected_version,
            manager_id: body.manager_id.map(|id| id.to_string()).unwrap_or_default(),
        },
        &access,
    )))
    .await?;
    Ok(answer(&org))
}

/// Give a user a role (effective on every gateway within about a second). Giving a role the
/// user holds changes nothing.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/roles", tag = "admin", operation_id = "admin_assign_role",
    params(("id" = Uuid, Path, description = "The user id"),
        ("If-Match" = Option<String>, Header, description = "When given, ETag of the user's organisation: changes only that version")),
    request_body(content = RoleBody, content_type = "application/json"),
    responses((status = 200, description = "The user's place in the organisation, with their roles.", body = UserOrg,
        headers(("ETag" = String, description = "Its new version")))),
    security(("bearer" = [])))]
pub async fn assign_role(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    IdPath(id): IdPath,
    if_match: Option<IfMatch>,
    ApiJson(body): ApiJson<RoleBody>,
) -> Result<Response> {
    let expected_version = expected(&state, &access, id, if_match).await?;
    let org: UserOrg = reply(state.org().assign_role(call(
        pb::AssignRoleRequest {
            user_id: id.to_string(),
            expected_version,
            role_id: body.role_id.to_string(),
        },
        &access,
    )))
    .await?;
    Ok(answer(&org))
}

/// Take a role from a user.
#[utoipa::path(delete, path = "/api/v1/admin/users/{id}/roles/{role_id}", tag = "admin", operation_id = "admin_unassign_role",
    params(("id" = Uuid, Path, description = "The user id"), ("role_id" = Uuid, Path, description = "The role id"),
        ("If-Match" = Option<String>, Header, description = "When given, ETag of the user's organisation: changes only that version")),
    responses((status = 204, description = "The user no longer holds the role.")),
    security(("bearer" = [])))]
pub async fn unassign_role(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    ApiPath(RolePath { id, role_id }): ApiPath<RolePath>,
    if_match: Option<IfMatch>,
) -> Result<Response> {
    let expected_version = expected(&state, &access, id, if_match).await?;
    state
        .org()
        .unassign_role(call(
            pb::UnassignRoleRequest {
                user_id: id.to_string(),
                expected_version,
                role_id: role_id.to_string(),
            },
            &access,
        ))
        .await
        .map_err(Error::from_status)?;
    Ok(no_content())
}
