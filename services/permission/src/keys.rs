//! Access-token signing keys: Ed25519 pairs made with aws-lc-rs, stored with the private half
//! encrypted (AES-256-GCM under the key-encryption key), rotated on a timeline, published as a
//! JWKS.
//!
//! Timeline of a key created at `c`, with rotation `r` and access-token lifetime `t`:
//! - `c .. c + r` (`not_after_signing`): the current key, signs new access tokens;
//! - `c .. c + r + t + skew` (`auth.clock_skew_secs`): in the JWKS, so every token it signed
//!   verifies until it expires;
//! - after that: retired — gone from the JWKS, its private half deleted from the row.
//!
//! Any replica may find the current key too old (lazily when signing, or in the periodic
//! maintenance) and make the next one; a transaction-scoped advisory lock makes the replicas take
//! turns, and the one that waited then sees the new key and uses it instead of making another.
//! Private keys exist decrypted only in this process' memory.

use std::sync::{Arc, RwLock};

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use jsonwebtoken::EncodingKey;
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use sqlx::{PgConnection, PgPool};

use crate::error::{Error, Result};

/// The only algorithm this service signs with.
pub const ALGORITHM: &str = "EdDSA";
/// `pg_advisory_xact_lock` key serialising key rotation across replicas ("crm_keys").
const ROTATION_LOCK: i64 = 0x6372_6d5f_6b65_7973;
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
/// it also holds the previous keys: what they sealed still opens, and [`KeyRing::maintain`]
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
    pub fn sign<T: serde::Serialize>(&self, claims: &T) -> Result<String> {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key)
            .map_err(|e| Error::Crypto(format!("signing an access token failed: {e}")))
    }
}

#[derive(sqlx::FromRow)]
struct PrivateRow {
    kid: String,
    private_key_nonce: Vec<u8>,
    private_key_ciphertext: Vec<u8>,
    not_after_signing: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct PublicRow {
    kid: String,
    public_key: Vec<u8>,
}

struct Inner {
    pool: PgPool,
    kek: Kek,
    /// How long a key signs.
    rotation: chrono::Duration,
    /// How long a key stays published after it stopped signing: access-token lifetime + skew.
    verify_window: chrono::Duration,
    /// The decrypted current key, so signing costs no query until it is too old.
    current: RwLock<Option<Arc<Signer>>>,
    /// One refresh of `current` at a time in this process: when the key ages out under load,
    /// one request rotates and the others wait for it instead of each holding a connection
    /// while queueing for the advisory lock.
    refreshing: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
pub struct KeyRing(Arc<Inner>);

impl KeyRing {
    /// `clock_skew`: how much longer than `access_ttl` a key stays published after it stopped
    /// signing (verifiers accept tokens up to their leeway past `exp`).
    pub fn new(
        pool: PgPool,
        kek: Kek,
        rotation: chrono::Duration,
        access_ttl: chrono::Duration,
        clock_skew: chrono::Duration,
    ) -> Self {
        Self(Arc::new(Inner {
            pool,
            kek,
            rotation,
            verify_window: access_ttl + clock_skew,
            current: RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        }))
    }

    /// The key to sign with now, rotating first when the current one is too old.
    pub async fn signer(&self) -> Result<Arc<Signer>> {
        if let Some(signer) = self.cached() {
            return Ok(signer);
        }
        let _refreshing = self.0.refreshing.lock().await;
        // Whoever held the lock before may have refreshed it already.
        match self.cached() {
            Some(signer) => Ok(signer),
            None => self.maintain().await,
        }
    }

    fn cached(&self) -> Option<Arc<Signer>> {
        let now = Utc::now();
        self.0
            .current
            .read()
            .expect("lock never poisoned")
            .clone()
            .filter(|s| s.not_after_signing > now)
    }

    /// Makes sure a current key exists (creating one when needed), retires keys past their
    /// verification window, and caches the current key. Safe to run on every replica at once.
    #[tracing::instrument(name = "signing keys maintain", skip_all)]
    pub async fn maintain(&self) -> Result<Arc<Signer>> {
        let now = Utc::now();
        let mut tx = self.0.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(ROTATION_LOCK)
            .execute(&mut *tx)
            .await?;
        let row = match current_row(&mut tx, now).await? {
            Some(row) => row,
            None => {
                let row = self.create(&mut tx, now).await?;
                tracing::info!(kid = %row.kid, "created a new signing key");
                row
            }
        };
        let retired: Vec<String> = sqlx::query_scalar(
            "UPDATE signing_keys
                SET retired_at = $1, private_key_nonce = NULL, private_key_ciphertext = NULL
              WHERE retired_at IS NULL AND not_after_signing + $2 <= $1
          RETURNING kid",
        )
        .bind(now)
        .bind(self.0.verify_window)
        .fetch_all(&mut *tx)
        .await?;
        self.reseal(&mut tx).await?;
        tx.commit().await?;
        for kid in retired {
            tracing::info!(%kid, "retired a signing key");
        }
        let pkcs8 = self.0.kek.open(
            &row.kid,
            &row.private_key_nonce,
            &row.private_key_ciphertext,
        )?;
        let signer = Arc::new(Signer {
            key: EncodingKey::from_ed_der(pkcs8.expose_secret()),
            kid: row.kid,
            not_after_signing: row.not_after_signing,
        });
        *self.0.current.write().expect("lock never poisoned") = Some(signer.clone());
        Ok(signer)
    }

    /// Seals again, under the current key-encryption key, every private key a previous one
    /// sealed: after one run on any replica the previous keys can be dropped from the settings.
    async fn reseal(&self, conn: &mut PgConnection) -> Result<()> {
        if self.0.kek.1.is_empty() {
            return Ok(());
        }
        let rows: Vec<(String, Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SELECT kid, private_key_nonce, private_key_ciphertext FROM signing_keys
              WHERE private_key_ciphertext IS NOT NULL",
        )
        .fetch_all(&mut *conn)
        .await?;
        for (kid, nonce, ciphertext) in rows {
            let (plain, current) = self.0.kek.open_any(&kid, &nonce, &ciphertext)?;
            if current {
                continue;
            }
            let (nonce, ciphertext) = self.0.kek.seal(&kid, plain.expose_secret())?;
            sqlx::query(
                "UPDATE signing_keys SET private_key_nonce = $2, private_key_ciphertext = $3
                  WHERE kid = $1",
            )
            .bind(&kid)
            .bind(&nonce)
            .bind(&ciphertext)
            .execute(&mut *conn)
            .await?;
            tracing::info!(%kid, "signing key sealed again under the new key-encryption key");
        }
        Ok(())
    }

    async fn create(&self, conn: &mut PgConnection, now: DateTime<Utc>) -> Result<PrivateRow> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| Error::Crypto("Ed25519 key generation failed".into()))?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map_err(|_| Error::Crypto("generated Ed25519 key does not load".into()))?;
        let mut id = [0u8; 16];
        aws_lc_rs::rand::fill(&mut id)
            .map_err(|_| Error::Crypto("no randomness for a key id".into()))?;
        let kid = URL_SAFE_NO_PAD.encode(id);
        let (nonce, ciphertext) = self.0.kek.seal(&kid, pkcs8.as_ref())?;
        let not_after_signing = now + self.0.rotation;
        sqlx::query(
            "INSERT INTO signing_keys (kid, algorithm, public_key, private_key_nonce,
                                       private_key_ciphertext, created_at, not_after_signing)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&kid)
        .bind(ALGORITHM)
        .bind(pair.public_key().as_ref())
        .bind(&nonce)
        .bind(&ciphertext)
        .bind(now)
        .bind(not_after_signing)
        .execute(conn)
        .await?;
        Ok(PrivateRow {
            kid,
            private_key_nonce: nonce,
            private_key_ciphertext: ciphertext,
            not_after_signing,
        })
    }

    /// The RFC 7517 key set of every key whose tokens may still be valid, newest first.
    pub async fn jwks(&self) -> Result<String> {
        let mut rows = self.published().await?;
        if rows.is_empty() {
            // Fresh database, asked before maintenance ran: make the first key now.
            self.maintain().await?;
            rows = self.published().await?;
        }
        let keys: Vec<_> = rows
            .into_iter()
            .map(|r| {
                serde_json::json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": URL_SAFE_NO_PAD.encode(&r.public_key),
                    "kid": r.kid,
                    "alg": ALGORITHM,
                    "use": "sig",
                })
            })
            .collect();
        Ok(serde_json::json!({ "keys": keys }).to_string())
    }

    async fn published(&self) -> Result<Vec<PublicRow>> {
        // By the timeline, not by `retired_at` alone: a key is unpublished on time even when
        // maintenance has not run yet.
        Ok(sqlx::query_as(
            "SELECT kid, public_key FROM signing_keys
              WHERE retired_at IS NULL AND not_after_signing + $2 > $1
              ORDER BY created_at DESC",
        )
        .bind(Utc::now())
        .bind(self.0.verify_window)
        .fetch_all(&self.0.pool)
        .await?)
    }
}

async fn current_row(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<Option<PrivateRow>> {
    Ok(sqlx::query_as(
        "SELECT kid, private_key_nonce, private_key_ciphertext, not_after_signing
           FROM signing_keys
          WHERE retired_at IS NULL AND not_after_signing > $1
          ORDER BY created_at DESC
          LIMIT 1",
    )
    .bind(now)
    .fetch_optional(conn)
    .await?)
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
