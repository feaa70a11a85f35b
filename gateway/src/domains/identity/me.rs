//! `/api/v1/me`: the signed-in user's own profile — display name, time zone and language. Any
//! signed-in user may read and change their own (no organisation grant needed: `authz::signed_in`);
//! the user is always the token's, never a path parameter, and the permission service checks
//! again that the context's user is the one being changed.
//!
//! The time zone and language chosen here travel with every later call of the user (in the
//! access context), so "today", months and report periods are theirs. A change reaches every
//! gateway within about a second (`permission.user.updated`, followed by `principals`).

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use crm_access::Access;
use crm_proto::permission as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::admin::{ProfilePatch, profile_request};
use crate::platform::convert::non_empty;
use crate::platform::error::{Error, Result};
use crate::platform::extract::{ApiJson, IfMatch};
use crate::platform::response::with_etag;
use crate::security::auth::AuthUser;
use crate::upstream::permission::PermissionService;
use crate::upstream::request as call;

/// The signed-in user's profile.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Profile {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    /// Their own time zone, an IANA name; `null`: the organisation's default applies.
    #[schema(example = "Asia/Shanghai")]
    pub time_zone: Option<String>,
    /// Their own language, `zh-CN` or `en`; `null`: the organisation's default applies.
    #[schema(example = "zh-CN")]
    pub locale: Option<String>,
    /// The time zone that applies: their own, else the organisation's default.
    #[schema(example = "Asia/Shanghai")]
    pub effective_time_zone: String,
    /// The language that applies: their own, else the organisation's default.
    #[schema(example = "zh-CN")]
    pub effective_locale: String,
    /// Sent as the `ETag` and expected back in `If-Match`.
    pub version: i64,
}

impl From<pb::User> for Profile {
    fn from(u: pb::User) -> Self {
        Profile {
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

async fn own(state: &PermissionService, access: &Access) -> Result<pb::User> {
    Ok(state
        .users()
        .get_user(call(
            pb::GetUserRequest {
                id: access.user_id.to_string(),
            },
            access,
        ))
        .await
        .map_err(Error::from_status)?
        .into_inner())
}

/// Your profile.
#[utoipa::path(get, path = "/api/v1/me", tag = "me", operation_id = "get_me",
    responses((status = 200, description = "Your profile.", body = Profile,
        headers(("ETag" = String, description = "Its version")))),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
) -> Result<Response> {
    let profile = Profile::from(own(&state, &access).await?);
    Ok(with_etag(StatusCode::OK, profile.version, &profile))
}

/// Change your display name, time zone or language. An API client's token cannot: its service
/// user's profile is an administrator's to change (`PATCH /api/v1/admin/users/{id}`).
#[utoipa::path(patch, path = "/api/v1/me", tag = "me", operation_id = "update_me",
    params(("If-Match" = String, Header, description = "ETag of the version being changed (`\"3\"`), or `*`")),
    request_body(content = ProfilePatch, content_type = "application/json"),
    responses((status = 200, description = "Your profile after the change.", body = Profile,
        headers(("ETag" = String, description = "Its new version")))),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    Extension(user): Extension<AuthUser>,
    if_match: IfMatch,
    ApiJson(patch): ApiJson<ProfilePatch>,
) -> Result<Response> {
    if let Some(client) = &user.client {
        return Err(Error::Api(crm_errors::ApiError::new(
            crm_errors::Code::PermissionDenied,
            format!(
                "the token of API client {:?} cannot change a profile; an administrator can",
                client.client_id
            ),
        )));
    }
    let expected_version = match if_match {
        IfMatch::Version(version) => version,
        IfMatch::Any => own(&state, &access).await?.version,
    };
    let user = state
        .users()
        .update_user_profile(call(
            profile_request(access.user_id, expected_version, patch),
            &access,
        ))
        .await
        .map_err(Error::from_status)?
        .into_inner();
    let profile = Profile::from(user);
    Ok(with_etag(StatusCode::OK, profile.version, &profile))
}
