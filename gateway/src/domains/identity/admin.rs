//! `/api/v1/admin/users` and `/api/v1/admin/organisation/settings`: user accounts — their
//! status, profile (display name, time zone, language) and password — and the organisation's
//! settings (the default time zone and language). A user's departments, manager and roles are
//! in [`super::user_org`]; departments, roles and sharing in their own modules. Routes declare
//! the `organisation` resource like every other route; the permission service checks the
//! caller's context again and writes who acted into the events, so the audit trail names the
//! administrator (not yet for a password set: `SetPassword` does not take the caller's context).

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_access::Access;
use crm_proto::permission as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::vocabulary::Status;
use crate::platform::convert::non_empty;
use crate::platform::error::{Error, Result};
use crate::platform::extract::{ApiJson, IdPath, IfMatch};
use crate::platform::response::{no_content, with_etag};
use crate::upstream::permission::PermissionService;

use crate::upstream::request as call;

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

impl From<pb::User> for AdminUser {
    fn from(u: pb::User) -> Self {
        AdminUser {
            status: Status::from_pb(u.status)
                .map_or("unknown", Status::as_str)
                .into(),
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
    #[serde(default, deserialize_with = "crate::platform::fields::present")]
    #[schema(value_type = String, example = "Zhang Wei")]
    pub display_name: Option<String>,
    /// An IANA time zone name (`Asia/Shanghai`, `America/New_York`, `UTC`); `null` (or `""`)
    /// clears it, and the organisation's default applies.
    #[serde(default, deserialize_with = "crate::platform::fields::nullable")]
    #[schema(value_type = Option<String>, example = "Europe/Berlin")]
    pub time_zone: Option<Option<String>>,
    /// `zh-CN` or `en`; `null` (or `""`) clears it, and the organisation's default applies.
    #[serde(default, deserialize_with = "crate::platform::fields::nullable")]
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
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    ApiJson(body): ApiJson<NewAdminUser>,
) -> Result<Response> {
    let user = state
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

async fn get(state: &PermissionService, access: &Access, id: Uuid) -> Result<pb::User> {
    Ok(state
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
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    IdPath(id): IdPath,
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
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    IdPath(id): IdPath,
    if_match: IfMatch,
    ApiJson(patch): ApiJson<ProfilePatch>,
) -> Result<Response> {
    let expected_version = match if_match {
        IfMatch::Version(version) => version,
        IfMatch::Any => get(&state, &access, id).await?.version,
    };
    let user = state
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
    /// `disabled` signs the user out everywhere at once.
    pub status: Status,
}

/// Enable or disable a user.
#[utoipa::path(put, path = "/api/v1/admin/users/{id}/status", tag = "admin", operation_id = "admin_set_user_status",
    params(("id" = Uuid, Path, description = "The user id")),
    request_body(content = StatusBody, content_type = "application/json"),
    responses((status = 200, description = "The user.", body = AdminUser,
        headers(("ETag" = String, description = "Its version")))),
    security(("bearer" = [])))]
pub async fn set_status(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<StatusBody>,
) -> Result<Response> {
    let current = get(&state, &access, id).await?;
    let user = state
        .users()
        .set_user_status(call(
            pb::SetUserStatusRequest {
                id: id.to_string(),
                status: body.status.to_pb(),
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

/// The body of `PUT /api/v1/admin/users/{id}/password`.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    /// The new password (the permission service's length rules apply).
    pub password: String,
}

/// Set a user's password. Every session of the user ends at once (their refresh tokens are
/// revoked); access tokens already out run out within their short lifetime.
#[utoipa::path(put, path = "/api/v1/admin/users/{id}/password", tag = "admin", operation_id = "admin_set_user_password",
    params(("id" = Uuid, Path, description = "The user id")),
    request_body(content = PasswordBody, content_type = "application/json"),
    responses((status = 204, description = "The password is set.")),
    security(("bearer" = [])))]
pub async fn set_password(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<PasswordBody>,
) -> Result<Response> {
    state
        .users()
        .set_password(call(
            pb::SetPasswordRequest {
                id: id.to_string(),
                password: body.password,
            },
            &access,
        ))
        .await
        .map_err(Error::from_status)?;
    Ok(no_content())
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

async fn org_settings(state: &PermissionService, access: &Access) -> Result<pb::OrgSettings> {
    Ok(state
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
    State(state): State<PermissionService>,
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
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    if_match: IfMatch,
    ApiJson(body): ApiJson<OrgSettingsBody>,
) -> Result<Response> {
    let expected_version = match if_match {
        IfMatch::Version(version) => version,
        IfMatch::Any => org_settings(&state, &access).await?.version,
    };
    let settings = state
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
