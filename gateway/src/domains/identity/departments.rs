//! `/api/v1/admin/departments`: the department tree (`crm.permission.v1.OrgService`). Users are
//! placed in departments at `PUT /api/v1/admin/users/{id}/departments` ([`super::user_org`]);
//! department data scopes and sharing rules go by them. Every change moves the permission
//! version, so it is felt by every gateway within about a second.

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

use crate::platform::convert::{self, ConversionError, optional_uuid, timestamp, uuid};
use crate::platform::error::{Error, Result};
use crate::platform::extract::{ApiJson, IdPath, IfMatch};
use crate::platform::fields::{nullable, present};
use crate::platform::response::{created, no_content, with_etag};
use crate::upstream::permission::PermissionService;
use crate::upstream::{reply, request as call};

/// A department.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Department {
    pub id: Uuid,
    #[schema(example = "East Sales")]
    pub name: String,
    /// `null` for a root.
    pub parent_id: Option<Uuid>,
    /// Bumped by every change; sent as the `ETag` and expected back in `If-Match`.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<pb::Department> for Department {
    type Error = ConversionError;
    fn try_from(d: pb::Department) -> convert::Result<Self> {
        Ok(Department {
            id: uuid("id", &d.id)?,
            parent_id: optional_uuid("parent_id", &d.parent_id)?,
            name: d.name,
            version: d.version,
            created_at: timestamp("created_at", d.created_at)?,
            updated_at: timestamp("updated_at", d.updated_at)?,
        })
    }
}

impl TryFrom<pb::DepartmentResponse> for Department {
    type Error = ConversionError;
    fn try_from(r: pb::DepartmentResponse) -> convert::Result<Self> {
        convert::required("department", r.department)?.try_into()
    }
}

/// Every department.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DepartmentList {
    /// The whole tree as a flat list: parents before their children, siblings by name.
    pub items: Vec<Department>,
}

impl TryFrom<pb::ListDepartmentsResponse> for DepartmentList {
    type Error = ConversionError;
    fn try_from(r: pb::ListDepartmentsResponse) -> convert::Result<Self> {
        Ok(DepartmentList {
            items: r
                .departments
                .into_iter()
                .map(Department::try_from)
                .collect::<convert::Result<_>>()?,
        })
    }
}

/// The body of `POST /api/v1/admin/departments`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDepartment {
    /// 1 to 100 characters, unique among its siblings (ignoring case).
    #[schema(example = "East Sales")]
    pub name: String,
    /// The department it belongs under; absent or `null`: a new root.
    #[serde(default)]
    pub parent_id: Option<Uuid>,
}

/// The body of `PATCH /api/v1/admin/departments/{id}` (JSON merge-patch: absent fields stay).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepartmentPatch {
    /// Renames it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, example = "East & Central Sales")]
    pub name: Option<String>,
    /// Moves it under another department; `null` makes it a root. Moving a department under
    /// itself or one of its descendants is refused (`409`).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub parent_id: Option<Option<Uuid>>,
}

fn location(id: Uuid) -> String {
    format!("/api/v1/admin/departments/{id}")
}

async fn fetch(state: &PermissionService, access: &Access, id: Uuid) -> Result<Department> {
    reply(state.org().get_department(call(
        pb::GetDepartmentRequest { id: id.to_string() },
        access,
    )))
    .await
}

/// List the departments.
#[utoipa::path(get, path = "/api/v1/admin/departments", tag = "admin", operation_id = "admin_list_departments",
    responses((status = 200, description = "The whole tree, parents before their children.", body = DepartmentList)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
) -> Result<Response> {
    let list: DepartmentList = reply(
        state
            .org()
            .list_departments(call(pb::ListDepartmentsRequest {}, &access)),
    )
    .await?;
    Ok(axum::Json(list).into_response())
}

/// Create a department.
#[utoipa::path(post, path = "/api/v1/admin/departments", tag = "admin", operation_id = "admin_create_department",
    description = "Send `Idempotency-Key` to make retries safe.",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries of this request safe for 24 h")),
    request_body(content = NewDepartment, content_type = "application/json"),
    responses((status = 201, description = "The department.", body = Department,
        headers(("Location" = String, description = "Its URL"), ("ETag" = String, description = "Its version")))),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    ApiJson(body): ApiJson<NewDepartment>,
) -> Result<Response> {
    let department: Department = reply(state.org().create_department(call(
        pb::CreateDepartmentRequest {
            name: body.name,
            parent_id: body.parent_id.map(|id| id.to_string()).unwrap_or_default(),
        },
        &access,
    )))
    .await?;
    Ok(created(
        &location(department.id),
        department.version,
        &department,
    ))
}

/// Read a department.
#[utoipa::path(get, path = "/api/v1/admin/departments/{id}", tag = "admin", operation_id = "admin_get_department",
    params(("id" = Uuid, Path, description = "The department id")),
    responses((status = 200, description = "The department.", body = Department,
        headers(("ETag" = String, description = "Its version")))),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    IdPath(id): IdPath,
) -> Result<Response> {
    let department = fetch(&state, &access, id).await?;
    Ok(with_etag(StatusCode::OK, department.version, &department))
}

/// Rename or move a department.
#[utoipa::path(patch, path = "/api/v1/admin/departments/{id}", tag = "admin", operation_id = "admin_update_department",
    params(("id" = Uuid, Path, description = "The department id"),
        ("If-Match" = String, Header, description = "ETag of the version being changed (`\"3\"`), or `*`")),
    request_body(content = DepartmentPatch, content_type = "application/json"),
    responses((status = 200, description = "The department after the change.", body = Department,
        headers(("ETag" = String, description = "Its new version")))),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    IdPath(id): IdPath,
    if_match: IfMatch,
    ApiJson(patch): ApiJson<DepartmentPatch>,
) -> Result<Response> {
    let expected_version = if_match
        .or_current(async { Ok(fetch(&state, &access, id).await?.version) })
        .await?;
    let department: Department = reply(
        state.org().update_department(call(
            pb::UpdateDepartmentRequest {
                id: id.to_string(),
                expected_version,
                name: patch.name,
                parent_id: patch
                    .parent_id
                    .map(|parent| parent.map(|id| id.to_string()).unwrap_or_default()),
            },
            &access,
        )),
    )
    .await?;
    Ok(with_etag(StatusCode::OK, department.version, &department))
}

/// Delete a department. Refused (`409`) while it has child departments or members.
#[utoipa::path(delete, path = "/api/v1/admin/departments/{id}", tag = "admin", operation_id = "admin_delete_department",
    params(("id" = Uuid, Path, description = "The department id"),
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
        .delete_department(call(
            pb::DeleteDepartmentRequest {
                id: id.to_string(),
                expected_version: if_match.map_or(0, IfMatch::expected_version),
            },
            &access,
        ))
        .await
        .map_err(Error::from_status)?;
    Ok(no_content())
}
