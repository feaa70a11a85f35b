//! Sign-in: `/api/v1/auth/{login,refresh,logout}` and the JWKS, over the permission service.
//!
//! These routes take no bearer token (they are how one gets a token) and no `Idempotency-Key`
//! (a replayed login would hand out the same refresh token twice, which the permission service
//! treats as theft). The gateway adds what only it knows — the client's address and user agent —
//! and otherwise passes the service's answer on: one generic 401 for every failed sign-in, and
//! 429 with `Retry-After` while a username is locked out.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use crm_proto::permission as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::platform::ClientInfo;
use crate::platform::error::{Error, Result};
use crate::platform::extract::ApiJson;
use crate::platform::response::no_content;
use crate::upstream::permission::PermissionService;

/// The body of `POST /api/v1/auth/login`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    pub username: String,
    pub password: String,
}

/// The body of `POST /api/v1/auth/refresh` and `POST /api/v1/auth/logout`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    pub refresh_token: String,
}

/// Tokens after a sign-in or a refresh (the shape of an OAuth 2.0 token response).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// A JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until `access_token` expires.
    pub expires_in: i64,
    /// Single use: exchange it at `/api/v1/auth/refresh` for a new pair. Presenting a used one
    /// again signs out every session descended from the same sign-in.
    pub refresh_token: String,
    pub refresh_expires_in: i64,
    pub user_id: String,
}

impl From<pb::TokenPair> for TokenResponse {
    fn from(t: pb::TokenPair) -> Self {
        Self {
            access_token: t.access_token,
            token_type: t.token_type,
            expires_in: t.expires_in,
            refresh_token: t.refresh_token,
            refresh_expires_in: t.refresh_expires_in,
            user_id: t.user_id,
        }
    }
}

/// The form of `POST /api/v1/auth/token` (OAuth 2.0 client credentials, RFC 6749 §4.4).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ClientCredentialsForm {
    /// Must be `client_credentials`.
    pub grant_type: String,
    /// With `client_secret`, unless sent as HTTP Basic credentials.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Space-separated subset of the client's scopes; absent: all of them.
    #[serde(default)]
    pub scope: Option<String>,
}

/// An API client's access token (no refresh token: ask again when it expires).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClientTokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    pub expires_in: i64,
    /// The scopes granted (`account:read contact:read`).
    pub scope: String,
}

/// `Authorization: Basic` client credentials (RFC 6749 §2.3.1: both parts form-urlencoded).
fn basic_credentials(headers: &axum::http::HeaderMap) -> Result<Option<(String, String)>> {
    use base64::Engine as _;
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || Error::bad_request("the Basic credentials are malformed");
    let value = value.to_str().map_err(|_| malformed())?;
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return Err(Error::bad_request(
            "only Basic credentials are accepted here",
        ));
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let unescape = |s: &str| form_unescape(s).ok_or_else(malformed);
    Ok(Some((unescape(id)?, unescape(secret)?)))
}

/// `application/x-www-form-urlencoded` decoding of one value: `+` is a space, `%XX` a byte.
fn form_unescape(s: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(s.len());
    let mut input = s.bytes();
    while let Some(b) = input.next() {
        match b {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = [input.next()?, input.next()?];
                bytes.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
            }
            other => bytes.push(other),
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_decoded() {
        use base64::Engine as _;
        let mut headers = axum::http::HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode("erp%2Bx:s3cr%3At+x");
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
        );
        assert_eq!(
            basic_credentials(&headers).unwrap(),
            Some(("erp+x".to_string(), "s3cr:t x".to_string()))
        );
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!"));
        assert!(basic_credentials(&headers).is_err());
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert!(basic_credentials(&headers).is_err());
        assert_eq!(form_unescape("%zz"), None);
    }
}

/// Get an access token for an API client (OAuth 2.0 client credentials).
///
/// For external systems (ERP, OA, e-commerce). Send `application/x-www-form-urlencoded` with
/// `grant_type=client_credentials`, and the client's id and secret either as HTTP Basic
/// credentials or as `client_id` / `client_secret` fields. The token acts as the client's
/// service user (its roles decide which records), is only good for the client's scopes, and
/// counts against the client's own quota.
#[utoipa::path(
    post,
    path = "/api/v1/auth/token",
    tag = "auth",
    operation_id = "client_token",
    request_body(content = ClientCredentialsForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "An access token.", body = ClientTokenResponse),
        (status = 401, description = "Unknown client, wrong secret or disabled client (one answer for all)."),
    )
)]
pub async fn client_token(
    State(state): State<PermissionService>,
    client: ClientInfo,
    headers: axum::http::HeaderMap,
    form: std::result::Result<
        axum::Form<ClientCredentialsForm>,
        axum::extract::rejection::FormRejection,
    >,
) -> Result<Response> {
    let axum::Form(form) =
        form.map_err(|e| Error::bad_request(format!("the form is malformed: {}", e.body_text())))?;
    if form.grant_type != "client_credentials" {
        let mut err = crm_errors::ApiError::new(
            crm_errors::Code::InvalidArgument,
            "unsupported grant_type: only client_credentials is served here",
        );
        err.violations.push(crm_errors::FieldViolation::new(
            "grant_type",
            "must be client_credentials",
        ));
        return Err(Error::Api(err));
    }
    let (client_id, client_secret) = match basic_credentials(&headers)? {
        Some(pair) => pair,
        None => (
            form.client_id.unwrap_or_default(),
            form.client_secret.unwrap_or_default(),
        ),
    };
    let token = state
        .auth()
        .client_credentials(crate::upstream::anonymous(pb::ClientCredentialsRequest {
            client_id,
            client_secret,
            scope: form.scope.unwrap_or_default(),
            client_ip: client.ip,
            user_agent: client.user_agent,
        }))
        .await
        .map_err(Error::from_status)?
        .into_inner();
    let mut response = axum::Json(ClientTokenResponse {
        access_token: token.access_token,
        token_type: token.token_type,
        expires_in: token.expires_in,
        scope: token.scope,
    })
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Query string of the single sign-on callback (what the provider appends).
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OidcCallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    /// Set by the provider instead of `code` when the user or the provider refused.
    pub error: Option<String>,
    pub error_description: Option<String>,
    #[serde(default)]
    pub iss: Option<String>,
    #[serde(default)]
    pub session_state: Option<String>,
}

/// Sign in through a single sign-on provider: redirects the browser to it.
#[utoipa::path(
    get,
    path = "/api/v1/auth/oidc/{provider}/start",
    tag = "auth",
    operation_id = "oidc_start",
    params(("provider" = String, Path, description = "The provider's name, as configured")),
    responses(
        (status = 302, description = "To the provider's sign-in page (authorization code flow with PKCE).",
            headers(("Location" = String, description = "The provider's authorization URL"))),
        (status = 404, description = "No such provider."),
    )
)]
pub async fn oidc_start(
    State(state): State<PermissionService>,
    axum::extract::Path(provider): axum::extract::Path<String>,
) -> Result<Response> {
    let started = state
        .auth()
        .oidc_start(crate::upstream::anonymous(pb::OidcStartRequest {
            provider,
        }))
        .await
        .map_err(Error::from_status)?
        .into_inner();
    let location = HeaderValue::from_str(&started.authorization_url)
        .map_err(|_| Error::internal(anyhow::anyhow!("an authorization URL is not a header")))?;
    Ok((
        axum::http::StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response())
}

/// Where the single sign-on provider sends the browser back: answers the session's tokens.
#[utoipa::path(
    get,
    path = "/api/v1/auth/oidc/{provider}/callback",
    tag = "auth",
    operation_id = "oidc_callback",
    params(("provider" = String, Path, description = "The provider's name"), OidcCallbackParams),
    responses(
        (status = 200, description = "Signed in.", body = TokenResponse),
        (status = 401, description = "The sign-in failed or was refused: start again."),
    )
)]
pub async fn oidc_callback(
    State(state): State<PermissionService>,
    client: ClientInfo,
    axum::extract::Path(provider): axum::extract::Path<String>,
    axum::extract::Query(params): axum::extract::Query<OidcCallbackParams>,
) -> Result<Response> {
    if let Some(error) = params.error {
        tracing::info!(%error, description = ?params.error_description, "SSO refused by the provider");
        return Err(Error::Api(crm_errors::ApiError::new(
            crm_errors::Code::Unauthenticated,
            "single sign-on failed: start again",
        )));
    }
    let pair = state
        .auth()
        .oidc_callback(crate::upstream::anonymous(pb::OidcCallbackRequest {
            provider,
            code: params.code.unwrap_or_default(),
            state: params.state.unwrap_or_default(),
            client_ip: client.ip,
            user_agent: client.user_agent,
        }))
        .await
        .map_err(Error::from_status)?
        .into_inner();
    Ok(token_response(pair))
}

fn token_response(pair: pb::TokenPair) -> Response {
    let mut response = axum::Json(TokenResponse::from(pair)).into_response();
    // RFC 6749 §5.1: token responses must not be cached.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Sign in with a username and password.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    operation_id = "login",
    request_body(content = LoginBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Signed in.", body = TokenResponse),
        (status = 401, description = "Wrong username or password, or the user cannot sign in (one answer for all, so usernames cannot be probed)."),
        (status = 429, description = "Too many failed attempts for this username: wait `Retry-After` seconds."),
    )
)]
pub async fn login(
    State(state): State<PermissionService>,
    client: ClientInfo,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response> {
    let pair = state
        .auth()
        .login(crate::upstream::anonymous(pb::LoginRequest {
            username: body.username,
            password: body.password,
            client_ip: client.ip,
            user_agent: client.user_agent,
        }))
        .await
        .map_err(Error::from_status)?
        .into_inner();
    Ok(token_response(pair))
}

/// Exchange a refresh token for a new token pair (the old refresh token is used up).
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    tag = "auth",
    operation_id = "refresh",
    request_body(content = RefreshBody, content_type = "application/json"),
    responses(
        (status = 200, description = "A new token pair.", body = TokenResponse),
        (status = 401, description = "The refresh token is unknown, expired, revoked or was already used (which revokes its whole family)."),
    )
)]
pub async fn refresh(
    State(state): State<PermissionService>,
    client: ClientInfo,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<Response> {
    let pair = state
        .auth()
        .refresh(crate::upstream::anonymous(pb::RefreshRequest {
            refresh_token: body.refresh_token,
            client_ip: client.ip,
            user_agent: client.user_agent,
        }))
        .await
        .map_err(Error::from_status)?
        .into_inner();
    Ok(token_response(pair))
}

/// Sign out: revokes the refresh token and every token descended from the same sign-in.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    operation_id = "logout",
    request_body(content = RefreshBody, content_type = "application/json"),
    responses((status = 204, description = "Signed out (also when the token was already revoked)."))
)]
pub async fn logout(
    State(state): State<PermissionService>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<Response> {
    state
        .auth()
        .logout(crate::upstream::anonymous(pb::LogoutRequest {
            refresh_token: body.refresh_token,
        }))
        .await
        .map_err(Error::from_status)?;
    Ok(no_content())
}

/// The public keys that verify access tokens (RFC 7517), for systems that check our tokens.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "auth",
    operation_id = "jwks",
    responses((status = 200, description = "The JSON Web Key Set.", content_type = "application/json"))
)]
pub async fn jwks(State(state): State<PermissionService>) -> Result<Response> {
    let jwks = state
        .auth()
        .get_jwks(crate::upstream::anonymous(pb::GetJwksRequest {}))
        .await
        .map_err(Error::from_status)?
        .into_inner();
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=60"),
            ),
        ],
        jwks.json,
    )
        .into_response())
}
