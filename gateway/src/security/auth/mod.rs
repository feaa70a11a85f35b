//! Bearer-token authentication: the [`Authenticator`] that verifies JWTs and the [`AuthUser`]
//! extractor that handlers take.
//!
//! A token is accepted only if all of these hold:
//! - its header `alg` is in `auth.algorithms` — asymmetric algorithms only: `none` cannot even be
//!   parsed, and `HS*` is refused at start-up, because an HMAC "secret" that is really our public
//!   key would let anyone forge tokens (algorithm confusion);
//! - a key of the same family (and, for JWKS keys, the same pinned `alg`) verifies the signature;
//! - `exp` and `sub` are present, `exp` and `nbf` hold within `auth.leeway_secs`, and `iss` and
//!   `aud` are the configured ones.
//!
//! Failures are 401 problems with a `WWW-Authenticate: Bearer` challenge and a detail that says
//! what is wrong without repeating the token.

mod keys;

use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use crm_errors::ApiError;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, AlgorithmFamily, Validation};
use serde::Deserialize;
use uuid::Uuid;

pub use keys::{REFETCH_AFTER_SUCCESS, VerifyingKey};

use crate::platform::error::Error;
use crate::settings::AuthSettings;

/// The caller, as established from a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    /// The user id services see (`x-crm-user-id`): `sub` if it is a UUID, else derived from it.
    pub user_id: Uuid,
    /// The token's `sub` as given.
    pub subject: String,
    /// The token's `name` claim, if any (for logs and audit, never for decisions).
    pub name: Option<String>,
    /// Set for an API client's token (client credentials).
    pub client: Option<ClientGrant>,
}

/// What an API client's token carries beyond the user: the client, the resources and actions
/// it may be used for at all, and the client's own quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientGrant {
    pub client_id: String,
    pub scopes: Vec<(crm_access::Resource, crm_access::Action)>,
    /// Requests per rate-limit window; `None`: the per-user default.
    pub requests_per_window: Option<u32>,
}

impl ClientGrant {
    /// From the `scope` claim (`account:read contact:read`); unknown entries grant nothing.
    fn parse(client_id: String, scope: &str, requests_per_window: Option<u32>) -> Self {
        let scopes = scope
            .split_whitespace()
            .filter_map(|s| {
                let (resource, action) = s.split_once(':')?;
                Some((
                    crm_access::Resource::parse(resource)?,
                    crm_access::Action::parse(action)?,
                ))
            })
            .collect();
        ClientGrant {
            client_id,
            scopes,
            requests_per_window,
        }
    }

    pub fn allows(&self, resource: crm_access::Resource, action: crm_access::Action) -> bool {
        self.scopes.contains(&(resource, action))
    }
}

/// The claims the gateway reads; the standard ones are checked by `jsonwebtoken` itself.
#[derive(Debug, Deserialize)]
struct Claims {
    /// Optional here so that a token without it fails the required-claims check (a clear
    /// "lacks `sub`") rather than claim deserialisation ("malformed").
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    name: Option<String>,
    /// API client tokens: the client, its scopes and its quota.
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    rl: Option<u32>,
}

/// Verifies bearer tokens (see the module docs). Built once at start-up.
pub struct Authenticator {
    issuer: String,
    audience: String,
    leeway_secs: u64,
    algorithms: Vec<Algorithm>,
    /// From `public_key_pem` / `public_key_file`: valid for any `kid`.
    static_keys: Vec<VerifyingKey>,
    jwks: Option<keys::Jwks>,
    /// Whether a token's user is still active (when the permission service is configured).
    principals: Option<super::principals::Principals>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("algorithms", &self.algorithms)
            .field("static_keys", &self.static_keys.len())
            .field("jwks", &self.jwks.is_some())
            .finish()
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("this API needs a bearer token: send `Authorization: Bearer <token>`")]
    Missing,
    #[error("the Authorization header must use the Bearer scheme")]
    NotBearer,
    #[error("the bearer token is not a well-formed JWT")]
    Malformed,
    #[error("the token's signing algorithm is not accepted")]
    AlgorithmNotAllowed,
    #[error("the token's key id (kid) is not known")]
    UnknownKey,
    #[error("no configured key can verify this token")]
    NoKey,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token was not issued by the accepted issuer")]
    WrongIssuer,
    #[error("the token is not meant for this API (aud)")]
    WrongAudience,
    #[error("the token lacks the required `{0}` claim")]
    MissingClaim(String),
    #[error("the token's `{0}` claim is malformed")]
    BadClaim(String),
    #[error("the token could not be verified")]
    Unverifiable,
    /// The identity provider's keys could not be fetched: not the caller's fault.
    #[error("the identity provider's keys are unavailable")]
    KeysUnavailable,
}

impl From<AuthError> for Error {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::KeysUnavailable => {
                Error::Api(ApiError::unavailable("the identity provider's key set"))
            }
            AuthError::Missing => Error::Unauthenticated {
                detail: err.to_string(),
                missing: true,
            },
            other => Error::unauthenticated(other.to_string()),
        }
    }
}

impl From<jsonwebtoken::errors::Error> for AuthError {
    fn from(err: jsonwebtoken::errors::Error) -> Self {
        match err.kind() {
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
            ErrorKind::InvalidAudience => AuthError::WrongAudience,
            ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim(claim.clone()),
            ErrorKind::InvalidClaimFormat(claim) => AuthError::BadClaim(claim.clone()),
            ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
                AuthError::AlgorithmNotAllowed
            }
            ErrorKind::InvalidToken
            | ErrorKind::Base64(_)
            | ErrorKind::Json(_)
            | ErrorKind::Utf8(_)
            | ErrorKind::InvalidAlgorithmName => AuthError::Malformed,
            _ => {
                // A key problem on our side (a bad JWKS entry), not a bad token: worth a log line.
                tracing::warn!(error = %err, "token verification failed");
                AuthError::Unverifiable
            }
        }
    }
}

impl Authenticator {
    /// Checks the settings and loads the PEM keys; the JWKS is fetched on first use.
    pub fn new(settings: &AuthSettings) -> Result<Self, Error> {
        let config = |msg: String| Error::Config(msg);
        if settings.issuer.trim().is_empty() || settings.audience.trim().is_empty() {
            return Err(config("auth.issuer and auth.audience must be set".into()));
        }
        let algorithms = allowed_algorithms(&settings.algorithms).map_err(config)?;

        let mut pems = Vec::new();
        if let Some(pem) = settings
            .public_key_pem
            .as_deref()
            .filter(|p| !p.trim().is_empty())
        {
            pems.push(("auth.public_key_pem".to_string(), pem.as_bytes().to_vec()));
        }
        if let Some(path) = settings
            .public_key_file
            .as_deref()
            .filter(|p| !p.trim().is_empty())
        {
            let pem = std::fs::read(path)
                .map_err(|e| config(format!("auth.public_key_file {path}: {e}")))?;
            pems.push((format!("auth.public_key_file {path}"), pem));
        }
        let mut static_keys = Vec::new();
        for (source, pem) in pems {
            let key = keys::from_pem(&pem).map_err(|e| config(format!("{source}: {e}")))?;
            if !algorithms.iter().any(|a| a.family() == key.family()) {
                return Err(config(format!(
                    "{source} is a {:?} key but auth.algorithms allows no algorithm for it",
                    key.family()
                )));
            }
            static_keys.push(VerifyingKey { key, alg: None });
        }

        let jwks = match settings
            .jwks_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
        {
            Some(url) => Some(keys::Jwks::new(url).map_err(config)?),
            None => None,
        };
        if static_keys.is_empty() && jwks.is_none() {
            return Err(config(
                "no token verification key: set auth.public_key_pem, auth.public_key_file or \
                 auth.jwks_url"
                    .into(),
            ));
        }
        Ok(Self {
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            leeway_secs: settings.leeway_secs,
            algorithms,
            static_keys,
            jwks,
            principals: None,
        })
    }

    /// Verifies `token` and returns its user.
    pub async fn verify(&self, token: &str) -> Result<AuthUser, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        let alg = header.alg;
        if !self.algorithms.contains(&alg) || alg.family() == AlgorithmFamily::Hmac {
            return Err(AuthError::AlgorithmNotAllowed);
        }

        let mut candidates = Vec::new();
        let mut unknown_kid = false;
        if let Some(jwks) = &self.jwks {
            match jwks.lookup(header.kid.as_deref(), alg).await {
                keys::Lookup::Found(found) => candidates.extend(found),
                keys::Lookup::UnknownKid => unknown_kid = true,
                keys::Lookup::Unavailable if self.static_keys.is_empty() => {
                    return Err(AuthError::KeysUnavailable);
                }
                keys::Lookup::Unavailable => {}
            }
        }
        candidates.extend(self.static_keys.iter().cloned());
        candidates.retain(|k| k.accepts(alg));
        if candidates.is_empty() {
            return Err(if unknown_kid {
                AuthError::UnknownKey
            } else {
                AuthError::NoKey
            });
        }

        let validation = self.validation(alg);
        let mut outcome = Err(AuthError::BadSignature);
        for candidate in &candidates {
            match jsonwebtoken::decode::<Claims>(token, &candidate.key, &validation) {
                Ok(data) => {
                    outcome = Ok(data.claims);
                    break;
                }
                // Another key may still match (rotation: old and new key both configured).
                Err(err) if *err.kind() == ErrorKind::InvalidSignature => continue,
                Err(err) => {
                    outcome = Err(err.into());
                    break;
                }
            }
        }
        let claims = match outcome {
            Err(AuthError::BadSignature) if unknown_kid => return Err(AuthError::UnknownKey),
            other => other?,
        };
        let subject = claims.sub.filter(|s| !s.trim().is_empty());
        let Some(subject) = subject else {
            return Err(AuthError::BadClaim("sub".into()));
        };
        let client = claims.client_id.map(|client_id| {
            ClientGrant::parse(client_id, claims.scope.as_deref().unwrap_or(""), claims.rl)
        });
        Ok(AuthUser {
            user_id: crate::security::token::user_id_for(&subject),
            subject,
            name: claims.name,
            client,
        })
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut validation = Validation::new(alg);
        validation.leeway = self.leeway_secs;
        validation.validate_exp = true;
        // jsonwebtoken does not check nbf unless asked to.
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation
    }

    /// The bearer token of a request, or why there is none.
    pub fn bearer(headers: &HeaderMap) -> Result<&str, AuthError> {
        let value = headers
            .get(header::AUTHORIZATION)
            .ok_or(AuthError::Missing)?;
        let value = value.to_str().map_err(|_| AuthError::Malformed)?;
        let (scheme, token) = value.trim().split_once(' ').ok_or(AuthError::NotBearer)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::NotBearer);
        }
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Malformed);
        }
        Ok(token)
    }

    /// Authenticates a request from its headers.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<AuthUser, AuthError> {
        self.verify(Self::bearer(headers)?).await
    }

    /// Also refuse valid tokens of users that are disabled or gone.
    pub fn with_principals(mut self, principals: super::principals::Principals) -> Self {
        self.principals = Some(principals);
        self
    }

    /// The user's effective time zone and language when the user may act (`None` when the
    /// gateway runs without the permission service, or it did not say); 401 for a disabled or
    /// unknown user.
    pub async fn check_active(
        &self,
        user: &AuthUser,
    ) -> Result<Option<crm_access::Preferences>, Error> {
        let Some(principals) = &self.principals else {
            return Ok(None);
        };
        let principal = principals.principal(user.user_id).await?;
        if !principal.active {
            return Err(Error::unauthenticated(
                "the user is disabled or no longer exists",
            ));
        }
        Ok(principal.preferences)
    }
}

/// Parses `auth.algorithms`, refusing anything symmetric or unknown.
fn allowed_algorithms(names: &[String]) -> Result<Vec<Algorithm>, String> {
    if names.is_empty() {
        return Err("auth.algorithms is empty".into());
    }
    names
        .iter()
        .map(|name| {
            let alg = Algorithm::from_str(name.trim())
                .map_err(|_| format!("auth.algorithms: {name:?} is not a supported algorithm"))?;
            if alg.family() == AlgorithmFamily::Hmac {
                return Err(format!(
                    "auth.algorithms: {name} is symmetric; only RS*, PS*, ES* and EdDSA are allowed"
                ));
            }
            Ok(alg)
        })
        .collect()
}

/// The authenticated caller of a request. Verifies the token once per request: when a middleware
/// (idempotency) already did, it reuses that result from the request extensions. Leaves the
/// user's effective time zone and language ([`crm_access::Preferences`]) in the extensions too,
/// for the access context (`authz`).
impl<S> FromRequestParts<S> for AuthUser
where
    S: Send + Sync,
    Arc<Authenticator>: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        if let Some(user) = parts.extensions.get::<AuthUser>() {
            return Ok(user.clone());
        }
        let authenticator = Arc::<Authenticator>::from_ref(state);
        let user = authenticator.authenticate(&parts.headers).await?;
        // Learnt with the status, from the same cache: no call of its own (see `principals`).
        if let Some(preferences) = authenticator.check_active(&user).await? {
            parts.extensions.insert(preferences);
        }
        tracing::Span::current().record("user_id", tracing::field::display(user.user_id));
        parts.extensions.insert(user.clone());
        Ok(user)
    }
}

#[cfg(test)]
mod tests;
