//! API clients as values: a client, a new client and its rules (client id, scopes, quota), its
//! secret, and which of its scopes a token gets. No I/O.

use chrono::{DateTime, Utc};
use crm_errors::{ApiError, Code, FieldViolation};
use secrecy::SecretString;
use serde::Serialize;
use uuid::Uuid;

use crate::auth::tokens;
use crate::error::Result;
use crate::org::domain::{Action, Resource};
use crate::users::domain::UserStatus;
use crate::validation::Violations;

/// What clients are told for every failed authentication.
pub const INVALID_CLIENT: &str = "invalid client credentials";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiClient {
    pub id: Uuid,
    pub client_id: String,
    pub name: String,
    /// `<resource>:<action>`, sorted.
    pub scopes: Vec<String>,
    pub requests_per_window: u32,
    /// The service user's.
    pub status: UserStatus,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A validated new client.
#[derive(Debug, Clone)]
pub struct NewApiClient {
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub requests_per_window: u32,
}

pub const MAX_CLIENT_ID: usize = 64;
pub const MAX_NAME: usize = 100;
pub const MAX_REQUESTS_PER_WINDOW: u32 = 1_000_000;

/// 3 to 64 of a-z 0-9 . _ -, starting with a letter.
pub fn client_id(v: &mut Violations, field: &str, value: &str) -> String {
    let id = value.trim().to_string();
    let ok = (3..=MAX_CLIENT_ID).contains(&id.chars().count())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if !ok {
        v.add(
            field,
            format!("must be 3 to {MAX_CLIENT_ID} of a-z 0-9 . _ -, starting with a letter"),
        );
    }
    id
}

/// `<resource>:<action>` entries, at least one; sorted and without duplicates.
pub fn scopes(v: &mut Violations, field: &str, values: &[String]) -> Vec<String> {
    if values.is_empty() {
        v.add(field, "at least one scope (resource:action) is required");
    }
    let mut out = Vec::with_capacity(values.len());
    for (i, raw) in values.iter().enumerate() {
        match parse_scope(raw) {
            Some(scope) => out.push(scope),
            None => v.add(
                &format!("{field}[{i}]"),
                "must be <resource>:<action>, e.g. account:read",
            ),
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `account:read` (any case, surrounding spaces ignored) in its canonical form.
pub fn parse_scope(raw: &str) -> Option<String> {
    let (resource, action) = raw
        .trim()
        .to_ascii_lowercase()
        .split_once(':')
        .map(|(r, a)| (r.to_string(), a.to_string()))?;
    let resource = Resource::parse(&resource)?;
    let action = Action::parse(&action)?;
    Some(format!("{resource}:{action}"))
}

impl NewApiClient {
    pub fn parse(
        client_id: &str,
        name: &str,
        scopes: &[String],
        requests_per_window: u32,
    ) -> std::result::Result<Self, ApiError> {
        let mut v = Violations::default();
        let client_id = self::client_id(&mut v, "client_id", client_id);
        let name = v.required("name", name, MAX_NAME);
        let scopes = self::scopes(&mut v, "scopes", scopes);
        if requests_per_window > MAX_REQUESTS_PER_WINDOW {
            v.add(
                "requests_per_window",
                format!("must be at most {MAX_REQUESTS_PER_WINDOW} (0: the gateway default)"),
            );
        }
        v.into_result()?;
        Ok(NewApiClient {
            client_id,
            name,
            scopes,
            requests_per_window,
        })
    }

    /// The service user's username.
    pub fn username(&self) -> String {
        service_username(&self.client_id)
    }
}

pub fn service_username(client_id: &str) -> String {
    format!("api.{client_id}")
}

/// A new secret: 32 random bytes, base64url (made like a refresh token).
pub fn new_secret() -> Result<SecretString> {
    tokens::new_refresh_token()
}

/// What is stored of a secret: its SHA-256.
pub fn secret_hash(secret: &SecretString) -> Vec<u8> {
    tokens::refresh_token_hash(secret)
}

/// A client with its secret, right after it was made or rotated.
pub struct WithSecret {
    pub client: ApiClient,
    pub secret: SecretString,
}

/// The answer when the `client_id` is in use.
pub fn taken() -> ApiError {
    let mut api = ApiError::new(Code::AlreadyExists, "the client_id is taken");
    api.violations
        .push(FieldViolation::new("client_id", "is taken"));
    api
}

/// The requested subset of the client's scopes (all of them when nothing is asked for).
pub fn granted_scopes(held: &[String], requested: &str) -> Result<String> {
    if requested.trim().is_empty() {
        return Ok(held.join(" "));
    }
    let mut granted = Vec::new();
    for raw in requested.split_whitespace() {
        match parse_scope(raw) {
            Some(scope) if held.contains(&scope) => granted.push(scope),
            _ => {
                return Err(ApiError::invalid(vec![FieldViolation::new(
                    "scope",
                    format!("{raw:?} is not one of the client's scopes"),
                )])
                .into());
            }
        }
    }
    granted.sort();
    granted.dedup();
    Ok(granted.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_checked_and_canonical() {
        assert_eq!(
            parse_scope(" Account:READ ").as_deref(),
            Some("account:read")
        );
        assert_eq!(parse_scope("account"), None);
        assert_eq!(parse_scope("account:fly"), None);
        // A well-formed name passes here; whether it is registered is the registry's to say.
        assert_eq!(parse_scope("planet:read").as_deref(), Some("planet:read"));
        assert_eq!(parse_scope("pl@net:read"), None);
        let mut v = Violations::default();
        let scopes = scopes(
            &mut v,
            "scopes",
            &[
                "contact:read".into(),
                "account:read".into(),
                "account:read".into(),
                "x".into(),
            ],
        );
        assert_eq!(scopes, ["account:read", "contact:read"]);
        let fields: Vec<_> = v.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["scopes[3]"]);
    }

    #[test]
    fn bad_clients_name_every_field() {
        let err = NewApiClient::parse("9x", "", &[], 2_000_000).unwrap_err();
        let fields: Vec<_> = err.violations.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            ["client_id", "name", "scopes", "requests_per_window"]
        );
    }

    #[test]
    fn a_token_gets_the_requested_subset_or_everything() {
        let held = ["account:read".to_string(), "contact:read".to_string()];
        assert_eq!(
            granted_scopes(&held, "").unwrap(),
            "account:read contact:read"
        );
        assert_eq!(
            granted_scopes(&held, "contact:read").unwrap(),
            "contact:read"
        );
        assert!(granted_scopes(&held, "account:delete").is_err());
    }
}
