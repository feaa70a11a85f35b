//! What the tokens look like: access-token claims and opaque refresh tokens (API clients'
//! secrets are made and hashed the same way). A helper of [`super`]; no I/O.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The claims of an access token (a JWT signed with EdDSA, `kid` in the header).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: String,
    /// The username, for logs and display; authorisation goes by `sub`.
    pub name: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// This token's id.
    pub jti: String,
    /// The session: the refresh-token family this token was issued with (an API client's id
    /// for its tokens).
    pub sid: String,
    /// API client tokens only: the client, its granted scopes (`account:read …`, space-separated)
    /// and its request quota per rate-limit window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rl: Option<u32>,
}

/// A new refresh token: 32 random bytes, base64url. Only its hash is stored.
pub fn new_refresh_token() -> Result<SecretString> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| Error::Crypto("no randomness for a refresh token".into()))?;
    Ok(SecretString::from(URL_SAFE_NO_PAD.encode(bytes)))
}

/// SHA-256 of a presented refresh token: what the database stores and looks up. A token has
/// 256 random bits, so an unsalted fast hash is enough — nobody can guess one from its hash,
/// and a copy of the table lets nobody sign in.
pub fn refresh_token_hash(token: &SecretString) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.expose_secret().as_bytes())
        .as_ref()
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_are_random_and_stored_as_sha256() {
        let a = new_refresh_token().unwrap();
        let b = new_refresh_token().unwrap();
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(
            a.expose_secret().len(),
            43,
            "32 bytes in unpadded base64url"
        );
        let hash = refresh_token_hash(&a);
        assert_eq!(hash.len(), 32);
        assert_eq!(hash, refresh_token_hash(&a));
        assert_eq!(
            hex(&refresh_token_hash(&SecretString::from("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
