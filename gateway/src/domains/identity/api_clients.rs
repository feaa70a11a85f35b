//! `/api/v1/admin/api-clients`: external systems (ERP, OA, e-commerce) calling the API with
//! OAuth 2.0 client credentials at `POST /api/v1/auth/token`
//! (`crm.permission.v1.ApiClientService`).
//!
//! A client is backed by a service user with the client's id (`api.<client_id>`): give it roles
//! at `POST /api/v1/admin/users/{id}/roles` like any user, and its records are those roles'. Its
//! `scopes` then limit which resources and actions its tokens may be used for at all.
//!
//! The secret is answered once, when the client is made and at every rotation, and only its
//! hash is kept. Those answers are `Cache-Control: no-store`, and the routes take no
//! `Idempotency-Key`: a stored replay would keep the secret in Redis.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use chrono::{DateTime, Utc};
use crm_access::Access;
use crm_proto::permission as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::vocabulary::Status;
use crate::platform::convert::{self, ConversionError, timestamp, uuid};
use crate::platform::error::Result;
use crate::platform::extract::{ApiJson, IdPath};
use crate::platform::response::{created, with_etag};
use crate::upstream::permission::PermissionService;
use crate::upstream::{reply, request as call};

/// An API client.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiClient {
    /// The record id; also the id of the client's service user (give it roles with it).
    pub id: Uuid,
    /// What the client authenticates as at `POST /api/v1/auth/token`.
    #[schema(example = "erp")]
    pub client_id: String,
    #[schema(example = "SAP ERP")]
    pub name: String,
    /// `<resource>:<action>`, sorted: the only routes its tokens may be used for.
    #[schema(example = json!(["account:read", "contact:read"]))]
    pub scopes: Vec<String>,
    /// Requests per rate-limit window for all of the client's tokens together; `null`: the
    /// gateway's per-user default.
    pub requests_per_window: Option<u32>,
    /// A disabled client gets no tokens, and the ones already out are refused.
    pub status: Status,
    /// Bumped by every change; sent as the `ETag`.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<pb::ApiClient> for ApiClient {
    type Error = ConversionError;
    fn try_from(c: pb::ApiClient) -> convert::Result<Self> {
        Ok(ApiClient {
            id: uuid("id", &c.id)?,
            client_id: c.client_id,
            name: c.name,
            scopes: c.scopes,
            requests_per_window: (c.requests_per_window > 0).then_some(c.requests_per_window),
            status: Status::from_pb(c.status)?,
            version: c.version,
            created_at: timestamp("created_at", c.created_at)?,
            updated_at: timestamp("updated_at", c.updated_at)?,
        })
    }
}

/// A client with its secret, shown this once.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiClientWithSecret {
    pub client: ApiClient,
    /// Keep it in the client's secret store: it cannot be read again, only rotated.
    pub client_secret: String,
}

impl TryFrom<pb::CreatedApiClient> for ApiClientWithSecret {
    type Error = ConversionError;
    fn try_from(c: pb::CreatedApiClient) -> convert::Result<Self> {
        Ok(ApiClientWithSecret {
            client: convert::required("client", c.client)?.try_into()?,
            client_secret: c.client_secret,
        })
    }
}

/// The body of `POST /api/v1/admin/api-clients`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiClient {
    /// 3 to 64 of a-z 0-9 . _ -, starting with a letter; unique.
    #[schema(example = "erp")]
    pub client_id: String,
    /// For people.
    #[schema(example = "SAP ERP")]
    pub name: String,
    /// `<resource>:<action>` (`account:read`): the only routes its tokens may be used for.
    #[schema(example = json!(["account:read", "account:create"]))]
    pub scopes: Vec<String>,
    /// Requests per rate-limit window for all of its tokens together; absent or `null`: the
    /// gateway's per-user default.
    #[serde(default)]
    pub requests_per_window: Option<u32>,
}

/// The body of `PUT /api/v1/admin/api-clients/{id}/status`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiClientStatusBody {
    /// `disabled` also refuses the tokens already out.
    pub status: Status,
}

fn location(id: Uuid) -> String {
    format!("/api/v1/admin/api-clients/{id}")
}

/// A response carrying a secret: never cached, by anyone.
fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Create an API client; answers its secret, once.
#[utoipa::path(post, path = "/api/v1/admin/api-clients", tag = "admin", operation_id = "admin_create_api_client",
    description = "The client's service user holds no roles yet: give it some at \
        `POST /api/v1/admin/users/{id}/roles` with the client's `id`. Takes no `Idempotency-Key` \
        (the answer carries the secret, which is never stored).",
    request_body(content = NewApiClient, content_type = "application/json"),
    responses((status = 201, description = "The client and its secret (`Cache-Control: no-store`).", body = ApiClientWithSecret,
        headers(("Location" = String, description = "Its URL"), ("ETag" = String, description = "Its version")))),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    ApiJson(body): ApiJson<NewApiClient>,
) -> Result<Response> {
    let made: ApiClientWithSecret = reply(state.api_clients().create_api_client(call(
        pb::CreateApiClientRequest {
            client_id: body.client_id,
            name: body.name,
            scopes: body.scopes,
            requests_per_window: body.requests_per_window.unwrap_or(0),
        },
        &access,
    )))
    .await?;
    Ok(no_store(created(
        &location(made.client.id),
        made.client.version,
        &made,
    )))
}

/// Read an API client (never its secret).
#[utoipa::path(get, path = "/api/v1/admin/api-clients/{id}", tag = "admin", operation_id = "admin_get_api_client",
    params(("id" = Uuid, Path, description = "The client's record id")),
    responses((status = 200, description = "The client.", body = ApiClient,
        headers(("ETag" = String, description = "Its version")))),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    IdPath(id): IdPath,
) -> Result<Response> {
    let client: ApiClient = reply(state.api_clients().get_api_client(call(
        pb::GetApiClientRequest { id: id.to_string() },
        &access,
    )))
    .await?;
    Ok(with_etag(StatusCode::OK, client.version, &client))
}

/// Give an API client a new secret. The old one stops working at once; tokens already issued
/// run out.
#[utoipa::path(post, path = "/api/v1/admin/api-clients/{id}/secret", tag = "admin", operation_id = "admin_rotate_api_client_secret",
    params(("id" = Uuid, Path, description = "The client's record id")),
    responses((status = 200, description = "The client and its new secret (`Cache-Control: no-store`).", body = ApiClientWithSecret,
        headers(("ETag" = String, description = "Its version")))),
    security(("bearer" = [])))]
pub async fn rotate_secret(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    IdPath(id): IdPath,
) -> Result<Response> {
    let rotated: ApiClientWithSecret = reply(state.api_clients().rotate_api_client_secret(call(
        pb::RotateApiClientSecretRequest { id: id.to_string() },
        &access,
    )))
    .await?;
    Ok(no_store(with_etag(
        StatusCode::OK,
        rotated.client.version,
        &rotated,
    )))
}

/// Enable or disable an API client. Disabling refuses its tokens already out too.
#[utoipa::path(put, path = "/api/v1/admin/api-clients/{id}/status", tag = "admin", operation_id = "admin_set_api_client_status",
    params(("id" = Uuid, Path, description = "The client's record id")),
    request_body(content = ApiClientStatusBody, content_type = "application/json"),
    responses((status = 200, description = "The client.", body = ApiClient,
        headers(("ETag" = String, description = "Its version")))),
    security(("bearer" = [])))]
pub async fn set_status(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<ApiClientStatusBody>,
) -> Result<Response> {
    let client: ApiClient = reply(state.api_clients().set_api_client_status(call(
        pb::SetApiClientStatusRequest {
            id: id.to_string(),
            status: body.status.to_pb(),
        },
        &access,
    )))
    .await?;
    Ok(with_etag(StatusCode::OK, client.version, &client))
}
