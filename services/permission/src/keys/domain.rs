//! Signing keys as values: the key-encryption key ([`Kek`]) that seals private keys at rest, a
//! fresh key pair ([`generate`]), the [`Signer`] of access tokens, and a key's JWKS entry
//! ([`jwk`]). Cryptography only: no SQL, no clock; [`super::service::KeyRing`] decides when.

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use jsonwebtoken::EncodingKey;
use secrecy::{ExposeSecret, SecretSlice, SecretString};

use crate::error::{Error, Result};

/// The only algorithm this service signs with.
pub const ALGORITHM: &str = "EdDSA";
const NONCE_LEN: usize = 12;

/// Why a key-encryption key was refused. Messages never include the value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KekError {
    #[error("auth.key_encryption_key is required (base64 of 32 random bytes)")]
    Missing,
    #[error("auth.key_encryption_key is not valid base64")]
    NotBase64,
    #[error("auth.key_encryption_key must be 32 bytes (AES-256), got {0}")]
    WrongLength(usize),
}

/// The key-encryption key: AES-256-GCM over the private signing keys at rest. During a rotation
/// it also holds the previous keys: what they sealed still opens, and [`super::service::KeyRing::maintain`]
/// seals it again under the current one.
pub struct Kek(Aes256Gcm, Vec<Aes256Gcm>);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek([REDACTED])")
    }
}

/// Binds a ciphertext to its key id, so a row's encrypted key cannot be swapped into another.
fn aad(kid: &str) -> Vec<u8> {
    format!("crm-permission/signing-key/v1/{kid}").into_bytes()
}

impl Kek {
    /// From base64 (standard alphabet, padded) of exactly 32 bytes.
    pub fn parse(encoded: &SecretString) -> std::result::Result<Self, KekError> {
        let encoded = encoded.expose_secret().trim();
        if encoded.is_empty() {
            return Err(KekError::Missing);
        }
        let bytes = SecretSlice::from(STANDARD.decode(encoded).map_err(|_| KekError::NotBase64)?);
        let bytes = bytes.expose_secret();
        if bytes.len() != 32 {
            return Err(KekError::WrongLength(bytes.len()));
        }
        let cipher = Aes256Gcm::new_from_slice(bytes).map_err(|_| KekError::WrongLength(32))?;
        Ok(Self(cipher, Vec::new()))
    }

    /// Adds keys used before this one (`auth.previous_key_encryption_keys`).
    pub fn with_previous(mut self, previous: Vec<Kek>) -> Self {
        self.1.extend(previous.into_iter().map(|k| k.0));
        self
    }

    /// Whether keys used before this one are configured (a rotation is under way).
    pub fn has_previous(&self) -> bool {
        !self.1.is_empty()
    }

    /// Encrypts `plaintext` for the key `kid`: returns (nonce, ciphertext with tag).
    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
        // A fresh random nonce per encryption: one key encrypts few messages (a key a month),
        // far below the birthday bound of 96-bit random nonces.
        let nonce = Nonce::generate();
        let aad = aad(kid);
        let ciphertext = self
            .0
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| Error::Crypto("encrypting a signing key failed".into()))?;
        Ok((nonce.to_vec(), ciphertext))
    }

    /// Decrypts what [`Self::seal`] made for `kid`; fails with another KEK, another kid or any
    /// change to the bytes.
    pub fn open(&self, kid: &str, nonce: &[u8], ciphertext: &[u8]) -> Result<SecretSlice<u8>> {
        self.open_any(kid, nonce, ciphertext)
            .map(|(plain, _)| plain)
    }

    /// As [`Self::open`], also saying whether the current key opened it (else a previous one).
    pub fn open_any(
        &self,
        kid: &str,
        nonce: &[u8],
        ciphertext: &[u8],
    ) -> Result<(SecretSlice<u8>, bool)> {
        let nonce: [u8; NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| Error::Corrupt(format!("signing key {kid}: bad nonce length")))?;
        let aad = aad(kid);
        let payload = || Payload {
            msg: ciphertext,
            aad: &aad,
        };
        if let Ok(plain) = self.0.decrypt(&Nonce::from(nonce), payload()) {
            return Ok((SecretSlice::from(plain), true));
        }
        for previous in &self.1 {
            if let Ok(plain) = previous.decrypt(&Nonce::from(nonce), payload()) {
                return Ok((SecretSlice::from(plain), false));
            }
        }
        Err(Error::Crypto(format!(
            "signing key {kid} does not decrypt: was auth.key_encryption_key changed without \
             listing the old one in auth.previous_key_encryption_keys?"
        )))
    }
}

/// The key new access tokens are signed with.
pub struct Signer {
    pub kid: String,
    pub not_after_signing: DateTime<Utc>,
    key: EncodingKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .field("not_after_signing", &self.not_after_signing)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// The signer of the key `kid`, from its decrypted PKCS#8 document.
    pub fn from_pkcs8(kid: String, not_after_signing: DateTime<Utc>, pkcs8: &[u8]) -> Self {
        Self {
            key: EncodingKey::from_ed_der(pkcs8),
            kid,
            not_after_signing,
        }
    }

    pub fn sign<T: serde::Serialize>(&self, claims: &T) -> Result<String> {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key)
            .map_err(|e| Error::Crypto(format!("signing an access token failed: {e}")))
    }
}

/// A new signing key: its id, its public half, and its private half sealed under the KEK.
pub struct NewKey {
    pub kid: String,
    pub public_key: Vec<u8>,
    pub private_key_nonce: Vec<u8>,
    pub private_key_ciphertext: Vec<u8>,
}

/// Makes a fresh Ed25519 pair with a random key id and seals its private half under `kek`.
pub fn generate(kek: &Kek) -> Result<NewKey> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| Error::Crypto("Ed25519 key generation failed".into()))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| Error::Crypto("generated Ed25519 key does not load".into()))?;
    let mut id = [0u8; 16];
    aws_lc_rs::rand::fill(&mut id)
        .map_err(|_| Error::Crypto("no randomness for a key id".into()))?;
    let kid = URL_SAFE_NO_PAD.encode(id);
    let (nonce, ciphertext) = kek.seal(&kid, pkcs8.as_ref())?;
    Ok(NewKey {
        kid,
        public_key: pair.public_key().as_ref().to_vec(),
        private_key_nonce: nonce,
        private_key_ciphertext: ciphertext,
    })
}

/// One key of the RFC 7517 key set.
pub fn jwk(kid: &str, public_key: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": URL_SAFE_NO_PAD.encode(public_key),
        "kid": kid,
        "alg": ALGORITHM,
        "use": "sig",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek(byte: u8) -> Kek {
        Kek::parse(&SecretString::from(STANDARD.encode([byte; 32]))).unwrap()
    }

    #[test]
    fn kek_must_be_base64_of_32_bytes() {
        let parse = |s: &str| Kek::parse(&SecretString::from(s)).map(|_| ());
        assert_eq!(parse(""), Err(KekError::Missing));
        assert_eq!(parse("   "), Err(KekError::Missing));
        assert_eq!(parse("not base64!"), Err(KekError::NotBase64));
        assert_eq!(
            parse(&STANDARD.encode([1u8; 16])),
            Err(KekError::WrongLength(16))
        );
        assert_eq!(parse(&STANDARD.encode([1u8; 32])), Ok(()));
        assert!(!format!("{:?}", kek(1)).contains("AQEB"));
    }

    #[test]
    fn sealed_keys_open_only_with_the_same_kek_and_kid() {
        let secret = b"pkcs8 document bytes";
        let (nonce, ciphertext) = kek(1).seal("kid-a", secret).unwrap();
        assert!(!ciphertext.windows(secret.len()).any(|w| w == secret));
        assert_eq!(
            kek(1)
                .open("kid-a", &nonce, &ciphertext)
                .unwrap()
                .expose_secret(),
            secret
        );
        assert!(kek(2).open("kid-a", &nonce, &ciphertext).is_err());
        assert!(kek(1).open("kid-b", &nonce, &ciphertext).is_err());
        let (nonce2, _) = kek(1).seal("kid-a", secret).unwrap();
        assert_ne!(nonce, nonce2, "a fresh nonce per encryption");
    }
}
