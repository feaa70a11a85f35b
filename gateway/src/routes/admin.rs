//! `/api/v1/admin`: administering the organisation through the gateway — users, their status,
//! profile (display name, time zone, language) and roles, record shares, and the organisation's
//! settings (the default time zone and language). Routes declare the `organisation` resource like
//! every other route; the permission service checks the caller's context again and writes who
//! acted into the events, so the audit trail names the administrator.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_access::Access;
use crm_proto::permission as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::extract::{ApiJson, IfMatch};
use crate::routes::with_etag;
use crate::startup::AppState;

use crate::customer::request as call;

fn status_name(raw: i32) -> &'static str {
    match pb::UserStatus::try_from(raw) {
        Ok(pb::UserStatus::Active) => "active",
        Ok(pb::UserStatus::Disabled) => "disabled",
        _ => "unknown",
    }
}

/// A user account.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AdminUser {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    /// `active` or `disabled`.
    pub status: String,
    /// The user's own time zone, an IANA name; `null`: the organisation's default applies.
    #[schema(example = "Asia/Shanghai")]
    pub time_zone: Option<String>,
    /// The user's own language, `zh-CN` or `en`; `null`: the organisation's default applies.
    #[schema(example = "zh-CN")]
    pub locale: Option<String>,
    /// The time zone that applies: the user's own, else the organisation's default. "Today",
    /// months and report periods are computed in it.
    #[schema(example = "Asia/Shanghai")]
    pub effective_time_zone: String,
    /// The language that applies: the user's own, else the organisation's default.
    #[schema(example = "zh-CN")]
    pub effective_locale: String,
    /// Bumped by every change; sent as the `ETag` and expected back in `If-Match`.
    pub version: i64,
}

pub(crate) fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

impl From<pb::User> for AdminUser {
    fn from(u: pb::User) -> Self {
        AdminUser {
            status: status_name(u.status).into(),
            email: non_empty(u.email),
            id: u.id,
            username: u.username,
            display_name: u.display_name,
            time_zone: non_empty(u.time_zone),
            locale: non_empty(u.locale),
            effective_time_zone: u.effective_time_zone,
            effective_locale: u.effective_locale,
            version: u.version,
        }
    }
}

/// The body of `PATCH /api/v1/admin/users/{id}` and `PATCH /api/v1/me` (JSON merge-patch:
/// absent fields stay, `null` clears).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    /// 1 to 200 characters; `""` resets it to the username.
    #[serde(default, deserialize_with = "crate::model::present")]
    #[schema(value_type = String, example = "Zhang Wei")]
    pub display_name: Option<String>,
    /// An IANA time zone name (`Asia/Shanghai`, `America/New_York`, `UTC`); `null` (or `""`)
    /// clears it, and the organisation's default applies.
    #[serde(default, deserialize_with = "crate::model::nullable")]
    #[schema(value_type = Option<String>, example = "Europe/Berlin")]
    pub time_zone: Option<Option<String>>,
    /// `zh-CN` or `en`; `null` (or `""`) clears it, and the organisation's default applies.
    #[serde(default, deserialize_with = "crate::model::nullable")]
    #[schema(value_type = Option<String>, example = "en")]
    pub locale: Option<Option<String>>,
}

/// The request that applies `patch` to user `id` at `expected_version` (clearing is `""` on the
/// wire).
pub(crate) fn profile_request(
    id: Uuid,
    expected_version: i64,
    patch: ProfilePatch,
) -> pb::UpdateUserProfileRequest {
    pb::UpdateUserProfileRequest {
        id: id.to_string(),
        expected_version,
        display_name: patch.display_name,
        time_zone: patch.time_zone.map(Option::unwrap_or_default),
        locale: patch.locale.map(Option::unwrap_or_default),
    }
}

/// The body of `POST /api/v1/admin/users`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAdminUser {
    pub username: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub email: Option<String>,
    /// Absent: the user can only sign in through single sign-on.
    #[serde(default)]
    pub password: Option<String>,
}

/// Create a user.
#[utoipa::path(post, path = "/api/v1/admin/users", tag = "admin", operation_id = "admin_create_user",
    request_body(content = NewAdminUser, content_type = "application/json"),
    responses((status = 201, description = "The user.", body = AdminUser)),
    security(("bearer" = [])))]
pub async fn create_user(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    ApiJson(body): ApiJson<NewAdminUser>,
) -> Result<Response> {
    let user = state
        .permission
        .users()
        .create_user(call(
            pb::CreateUserRequest {
                username: body.username,
                display_name: body.display_name,
                email: body.email.unwrap_or_default(),
                password: body.password.unwrap_or_default(),
            },
            &access,
        ))
        .await
        .map_err(Error::from_status)?
        .into_inner();
    Ok((StatusCode::CREATED, axum::Json(AdminUser::from(user))).into_response())
}

async fn get(state: &AppState, access: &Access, id: Uuid) -> Result<pb::User> {
    Ok(state
        .permission
        .users()
        .get_user(call(pb::GetUserRequest { id: id.to_string() }, access))
        .await
        .map_err(Error::from_status)?
        .into_inner())
}

/// Read a user.
#[utoipa::path(get, path = "/api/v1/admin/users/{id}", tag = "admin", operation_id = "admin_get_user",
    params(("id" = Uuid, Path, description = "The user id")),
    responses((status = 200, description = "The user.", body = AdminUser,
        headers(("ETag" = String, description = "Its version")))),
    security(("bearer" = [])))]
pub async fn get_user(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    crate::extract::IdPath(id): crate::extract::IdPath,
) -> Result<Response> {
    let user = AdminUser::from(get(&state, &access, id).await?);
    Ok(with_etag(StatusCode::OK, user.version, &user))
}

/// Change a user's display name, time zone or language. The change reaches every gateway within
/// about a second (`permission.user.updated`), and with it the time zone and language that
/// travel with the user's calls.
#[utoipa::path(patch, path = "/api/v1/admin/users/{id}", tag = "admin", operation_id = "admin_update_user",
    params(("id" = Uuid, Path, description = "The user id"),
        ("If-Match" = String, Header, description = "ETag of the version being changed (`\"3\"`), or `*`")),
    request_body(content = ProfilePatch, content_type = "application/json"),
    responses((status = 200, description = "The user after the change.", body = AdminUser,
        headers(("ETag" = String, description = "Its new version")))),
    security(("bearer" = [])))]
pub async fn update_user(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    crate::extract::IdPath(id): crate::extract::IdPath,
    if_match: IfMatch,
    ApiJson(patch): ApiJson<ProfilePatch>,
) -> Result<Response> {
    let expected_version = match if_match {
        IfMatch::Version(version) => version,
        IfMatch::Any => get(&state, &access, id).await?.version,
    };
    let user = state
        .permission
        .users()
        .update_user_profile(call(profile_request(id, expected_version, patch), &access))
        .await
        .map_err(Error::from_status)?
        .into_inner();
    let user = AdminUser::from(user);
    Ok(with_etag(StatusCode::OK, user.version, &user))
}

/// The body of `PUT /api/v1/admin/users/{id}/status`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    /// `active` or `disabled`. Disabling signs the user out everywhere at once.
    pub status: String,
}

/// Enable or disable a user.
#[utoipa::path(put, path = "/api/v1/admin/users/{id}/status", tag = "admin", operation_id = "admin_set_user_status",
    params(("id" = Uuid, Path, description = "The user id")),
    request_body(content = StatusBody, content_type = "application/json"),
    responses((status = 200, description = "The user.", body = AdminUser,
        headers(("ETag" = String, description = "Its version")))),
    security(("bearer" = [])))]
pub async fn set_status(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<StatusBody>,
) -> Result<Response> {
    let status = match body.status.as_str() {
        "active" => pb::UserStatus::Active,
        "disabled" => pb::UserStatus::Disabled,
        _ => {
            return Err(Error::Api(crm_errors::ApiError::invalid(vec![
                crm_errors::FieldViolation::new("status", "must be active or disabled"),
            ])));
        }
    };
    let current = get(&state, &access, id).await?;
    let user = state
        .permission
        .users()
        .set_user_status(call(
            pb::SetUserStatusRequest {
                id: id.to_string(),
                status: status as i32,
                expected_version: current.version,
            },
            &access,
        ))
        .await
        .map_err(Error::from_status)?
        .into_inner();
    let user = AdminUser::from(user);
    Ok(with_etag(StatusCode::OK, user.version, &user))
}

// --- organisation settings ------------------------------------------------------------------

/// The organisation's settings: the defaults for users who chose no time zone or language.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrgSettings {
    /// An IANA time zone name.
    #[schema(example = "Asia/Shanghai")]
    pub default_time_zone: String,
    /// `zh-CN` or `en`.
    #[schema(example = "zh-CN")]
    pub default_locale: String,
    /// Sent as the `ETag` and expected back in `If-Match`.
    pub version: i64,
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<pb::OrgSettings> for OrgSettings {
    fn from(s: pb::OrgSettings) -> Self {
        OrgSettings {
            default_time_zone: s.default_time_zone,
            default_locale: s.default_locale,
            version: s.version,
            updated_at: s
                .updated_at
                .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32)),
        }
    }
}

/// The body of `PUT /api/v1/admin/organisation/settings`: the whole record.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgSettingsBody {
    /// An IANA time zone name (`Asia/Shanghai`).
    #[schema(example = "Asia/Shanghai")]
    pub default_time_zone: String,
    /// `zh-CN` or `en`.
    #[schema(example = "zh-CN")]
    pub default_locale: String,
}

async fn org_settings(state: &AppState, access: &Access) -> Result<pb::OrgSettings> {
    Ok(state
        .permission
        .users()
        .get_org_settings(call(pb::GetOrgSettingsRequest {}, access))
        .await
        .map_err(Error::from_status)?
        .into_inner())
}

/// Read the organisation's settings.
#[utoipa::path(get, path = "/api/v1/admin/organisation/settings", tag = "admin", operation_id = "admin_get_org_settings",
    responses((status = 200, description = "The settings.", body = OrgSettings,
        headers(("ETag" = String, description = "Their version")))),
    security(("bearer" = [])))]
pub async fn get_org_settings(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
) -> Result<Response> {
    let settings = OrgSettings::from(org_settings(&state, &access).await?);
    Ok(with_etag(StatusCode::OK, settings.version, &settings))
}

/// Change the organisation's default time zone and language. Every user without their own
/// follows the new defaults within about a second (`permission.organisation.settings_updated`).
#[utoipa::path(put, path = "/api/v1/admin/organisation/settings", tag = "admin", operation_id = "admin_update_org_settings",
    params(("If-Match" = String, Header, description = "ETag of the version being changed (`\"3\"`), or `*`")),
    request_body(content = OrgSettingsBody, content_type = "application/json"),
    responses((status = 200, description = "The settings after the change.", body = OrgSettings,
        headers(("ETag" = String, description = "Their new version")))),
    security(("bearer" = [])))]
pub async fn update_org_settings(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    if_match: IfMatch,
    ApiJson(body): ApiJson<OrgSettingsBody>,
) -> Result<Response> {
    let expected_version = match if_match {
        IfMatch::Version(version) => version,
        IfMatch::Any => org_settings(&state, &access).await?.version,
    };
    let settings = state
        .permission
        .users()
        .update_org_settings(call(
            pb::UpdateOrgSettingsRequest {
                expected_version,
                default_time_zone: Some(body.default_time_zone),
                default_locale: Some(body.default_locale),
            },
            &access,
        ))
        .await
        .map_err(Error::from_status)?
        .into_inner();
    let settings = OrgSettings::from(settings);
    Ok(with_etag(StatusCode::OK, settings.version, &settings))
}

/// A role.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AdminRole {
    pub id: String,
    pub name: String,
    pub description: String,
    pub parent_role_id: Option<String>,
}

/// Every role.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AdminRoleList {
    pub items: Vec<AdminRole>,
}

/// List the roles.
#[utoipa::path(get, path = "/api/v1/admin/roles", tag = "admin", operation_id = "admin_list_roles",
    responses((status = 200, description = "Every role, by name.", body = AdminRoleList)),
    security(("bearer" = [])))]
pub async fn list_roles(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
) -> Result<Response> {
    let roles = state
        .permission
        .org()
        .list_roles(call(pb::ListRolesRequest {}, &access))
        .await
        .map_err(Error::from_status)?
        .into_inner()
        .roles;
    let items = roles
        .into_iter()
        .map(|r| AdminRole {
            parent_role_id: (!r.parent_role_id.is_empty()).then_some(r.parent_role_id),
            id: r.id,
            name: r.name,
            description: r.description,
        })
        .collect();
    Ok(axum::Json(AdminRoleList { items }).into_response())
}

/// The body of `POST /api/v1/admin/users/{id}/roles`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    pub role_id: Uuid,
}

/// The roles a user holds directly.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserRoles {
    pub user_id: String,
    pub role_ids: Vec<String>,
}

async fn user_org_version(state: &AppState, access: &Access, user: Uuid) -> Result<i64> {
    Ok(state
        .permission
        .org()
        .get_user_org(call(
            pb::GetUserOrgRequest {
                user_id: user.to_string(),
            },
            access,
        ))
        .await
        .map_err(Error::from_status)?
        .into_inner()
        .version)
}

/// Give a user a role (effective on every gateway within about a second).
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/roles", tag = "admin", operation_id = "admin_assign_role",
    params(("id" = Uuid, Path, description = "The user id")),
    request_body(content = RoleBody, content_type = "application/json"),
    responses((status = 200, description = "The user's roles.", body = UserRoles)),
    security(("bearer" = [])))]
pub async fn assign_role(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<RoleBody>,
) -> Result<Response> {
    let version = user_org_version(&state, &access, id).await?;
    let org = state
        .permission
        .org()
        .assign_role(call(
            pb::AssignRoleRequest {
                user_id: id.to_string(),
                expected_version: version,
                role_id: body.role_id.to_string(),
            },
            &access,
        ))
        .await
        .map_err(Error::from_status)?
        .into_inner()
        .user_org
        .unwrap_or_default();
    Ok(axum::Json(UserRoles {
        user_id: org.user_id,
        role_ids: org.role_ids,
    })
    .into_response())
}

/// Take a role from a user.
#[utoipa::path(delete, path = "/api/v1/admin/users/{id}/roles/{role_id}", tag = "admin", operation_id = "admin_unassign_role",
    params(("id" = Uuid, Path, description = "The user id"), ("role_id" = Uuid, Path, description = "The role id")),
    responses((status = 204, description = "The user no longer holds the role.")),
    security(("bearer" = [])))]
pub async fn unassign_role(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path((id, role_id)): Path<(Uuid, Uuid)>,
) -> Result<Response> {
    let version = user_org_version(&state, &access, id).await?;
    state
        .permission
        .org()
        .unassign_role(call(
            pb::UnassignRoleRequest {
                user_id: id.to_string(),
                expected_version: version,
                role_id: role_id.to_string(),
            },
            &access,
        ))
        .await
        .map_err(Error::from_status)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The body of `POST /api/v1/admin/shares`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareBody {
    /// `account`, `contact`, …
    pub resource: String,
    pub record_id: Uuid,
    pub user_id: Uuid,
    /// `read` or `edit`.
    pub access: String,
}

fn resource_of(name: &str, field: &str) -> Result<crm_access::Resource> {
    crm_access::Resource::parse(name).ok_or_else(|| {
        Error::Api(crm_errors::ApiError::invalid(vec![
            crm_errors::FieldViolation::new(field, "is not a resource"),
        ]))
    })
}

/// Share one record with one user.
#[utoipa::path(post, path = "/api/v1/admin/shares", tag = "admin", operation_id = "admin_share_record",
    request_body(content = ShareBody, content_type = "application/json"),
    responses((status = 204, description = "Shared (again, with this access).")),
    security(("bearer" = [])))]
pub async fn share(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    ApiJson(body): ApiJson<ShareBody>,
) -> Result<Response> {
    let resource = resource_of(&body.resource, "resource")?;
    let share_access = match body.access.as_str() {
        "read" => pb::ShareAccess::Read,
        "edit" => pb::ShareAccess::Edit,
        _ => {
            return Err(Error::Api(crm_errors::ApiError::invalid(vec![
                crm_errors::FieldViolation::new("access", "must be read or edit"),
            ])));
        }
    };
    state
        .permission
        .sharing()
        .share_record(call(
            pb::ShareRecordRequest {
                resource: resource.to_pb() as i32,
                record_id: body.record_id.to_string(),
                user_id: body.user_id.to_string(),
                access: share_access as i32,
            },
            &access,
        ))
        .await
        .map_err(Error::from_status)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Stop sharing a record with a user.
#[utoipa::path(delete, path = "/api/v1/admin/shares/{resource}/{record_id}/{user_id}", tag = "admin", operation_id = "admin_unshare_record",
    params(("resource" = String, Path, description = "account, contact, …"), ("record_id" = Uuid, Path, description = "The record"), ("user_id" = Uuid, Path, description = "The user")),
    responses((status = 204, description = "No longer shared.")),
    security(("bearer" = [])))]
pub async fn unshare(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path((resource, record_id, user_id)): Path<(String, Uuid, Uuid)>,
) -> Result<Response> {
    let resource = resource_of(&resource, "resource")?;
    state
        .permission
        .sharing()
        .unshare_record(call(
            pb::UnshareRecordRequest {
                resource: resource.to_pb() as i32,
                record_id: record_id.to_string(),
                user_id: user_id.to_string(),
            },
            &access,
        ))
        .await
        .map_err(Error::from_status)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
