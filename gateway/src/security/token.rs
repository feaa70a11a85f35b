//! Subjects and development tokens.
//!
//! Services identify users by UUID (`owner_id`, the `x-crm-user-id` metadata). A token's `sub` is
//! used as is when it is a UUID; any other subject (a user name, an identity provider's opaque
//! id) is mapped to a name-based UUID (v5) in [`SUBJECT_NAMESPACE`], so the same subject always
//! gives the same user id on every replica, without a lookup table.
//!
//! [`mint`] signs RS256 tokens for local development and tests (`crm-token`, `./dev token`).

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use uuid::{Uuid, uuid};

/// The namespace of name-based user ids. Never change it: every stored `owner_id` of a
/// non-UUID subject was derived from it.
pub const SUBJECT_NAMESPACE: Uuid = uuid!("9c8c7257-46b4-4c43-a759-997ebd095e5f");

/// The user id for a token subject (see the module docs).
pub fn user_id_for(subject: &str) -> Uuid {
    Uuid::parse_str(subject)
        .unwrap_or_else(|_| Uuid::new_v5(&SUBJECT_NAMESPACE, subject.as_bytes()))
}

/// The claims a gateway token carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub iss: String,
    pub aud: String,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
}

/// What to put in a development token.
#[derive(Debug, Clone)]
pub struct TokenRequest<'a> {
    /// A user name or UUID; becomes `name`, and `sub` through [`user_id_for`].
    pub user: &'a str,
    pub issuer: &'a str,
    pub audience: &'a str,
    pub ttl_secs: u64,
    pub kid: Option<&'a str>,
}

impl TokenRequest<'_> {
    /// The claims of a token issued at `now` (seconds since the epoch).
    pub fn claims(&self, now: u64) -> Claims {
        Claims {
            sub: user_id_for(self.user).to_string(),
            name: Some(self.user.to_string()),
            iss: self.issuer.to_string(),
            aud: self.audience.to_string(),
            iat: now,
            nbf: now,
            exp: now.saturating_add(self.ttl_secs),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the private key is not an RSA key in PEM form: {0}")]
    Key(#[source] jsonwebtoken::errors::Error),
    #[error("signing failed: {0}")]
    Sign(#[source] jsonwebtoken::errors::Error),
}

/// Signs an RS256 token for `request` with an RSA private key in PEM form.
pub fn mint(private_key_pem: &[u8], request: &TokenRequest<'_>) -> Result<String, TokenError> {
    let key = EncodingKey::from_rsa_pem(private_key_pem).map_err(TokenError::Key)?;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = request.kid.map(str::to_string);
    let claims = request.claims(jsonwebtoken::get_current_timestamp());
    jsonwebtoken::encode(&header, &claims, &key).map_err(TokenError::Sign)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_map_to_stable_user_ids() {
        let admin = user_id_for("admin");
        assert_eq!(admin, user_id_for("admin"));
        assert_eq!(admin.get_version_num(), 5);
        assert_ne!(admin, user_id_for("alice"));
        let id = Uuid::new_v4();
        assert_eq!(user_id_for(&id.to_string()), id);
    }

    #[test]
    fn claims_cover_the_validity_window() {
        let request = TokenRequest {
            user: "admin",
            issuer: "iss",
            audience: "aud",
            ttl_secs: 60,
            kid: Some("dev"),
        };
        let claims = request.claims(1_000);
        assert_eq!(claims.sub, user_id_for("admin").to_string());
        assert_eq!(claims.name.as_deref(), Some("admin"));
        assert_eq!((claims.iat, claims.nbf, claims.exp), (1_000, 1_000, 1_060));
    }
}
