//! SQL for signing keys (`signing_keys`). Rotation runs in the caller's transaction, under a
//! transaction-scoped advisory lock ([`lock_rotation`]) that makes the replicas take turns.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::domain::{ALGORITHM, NewKey};
use crate::error::Result;

/// `pg_advisory_xact_lock` key serialising key rotation across replicas ("crm_keys").
const ROTATION_LOCK: i64 = 0x6372_6d5f_6b65_7973;

/// A key that may sign, its private half sealed.
#[derive(sqlx::FromRow)]
pub struct PrivateRow {
    pub kid: String,
    pub private_key_nonce: Vec<u8>,
    pub private_key_ciphertext: Vec<u8>,
    pub not_after_signing: DateTime<Utc>,
}

/// A published key.
#[derive(sqlx::FromRow)]
pub struct PublicRow {
    pub kid: String,
    pub public_key: Vec<u8>,
}

/// Waits for, then holds until the transaction ends, the rotation lock.
pub async fn lock_rotation(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(ROTATION_LOCK)
        .execute(conn)
        .await?;
    Ok(())
}

/// The newest key that may still sign at `now`.
pub async fn current(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<Option<PrivateRow>> {
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

pub async fn insert(
    conn: &mut PgConnection,
    key: &NewKey,
    now: DateTime<Utc>,
    not_after_signing: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, algorithm, public_key, private_key_nonce,
                                   private_key_ciphertext, created_at, not_after_signing)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&key.kid)
    .bind(ALGORITHM)
    .bind(key.public_key.as_slice())
    .bind(&key.private_key_nonce)
    .bind(&key.private_key_ciphertext)
    .bind(now)
    .bind(not_after_signing)
    .execute(conn)
    .await?;
    Ok(())
}

/// Retires the keys whose verification window ended (`not_after_signing + verify_window`),
/// deleting their private halves; returns their ids.
pub async fn retire(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    verify_window: chrono::Duration,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "UPDATE signing_keys
            SET retired_at = $1, private_key_nonce = NULL, private_key_ciphertext = NULL
          WHERE retired_at IS NULL AND not_after_signing + $2 <= $1
      RETURNING kid",
    )
    .bind(now)
    .bind(verify_window)
    .fetch_all(conn)
    .await?)
}

/// Every key that still has its private half: `(kid, nonce, ciphertext)`.
pub async fn sealed(conn: &mut PgConnection) -> Result<Vec<(String, Vec<u8>, Vec<u8>)>> {
    Ok(sqlx::query_as(
        "SELECT kid, private_key_nonce, private_key_ciphertext FROM signing_keys
          WHERE private_key_ciphertext IS NOT NULL",
    )
    .fetch_all(conn)
    .await?)
}

/// Stores a private half sealed again (under the current key-encryption key).
pub async fn reseal(
    conn: &mut PgConnection,
    kid: &str,
    nonce: &[u8],
    ciphertext: &[u8],
) -> Result<()> {
    sqlx::query(
        "UPDATE signing_keys SET private_key_nonce = $2, private_key_ciphertext = $3
          WHERE kid = $1",
    )
    .bind(kid)
    .bind(nonce)
    .bind(ciphertext)
    .execute(conn)
    .await?;
    Ok(())
}

/// The keys whose tokens may still be valid at `now`, newest first. By the timeline, not by
/// `retired_at` alone: a key is unpublished on time even when maintenance has not run yet.
pub async fn published(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    verify_window: chrono::Duration,
) -> Result<Vec<PublicRow>> {
    Ok(sqlx::query_as(
        "SELECT kid, public_key FROM signing_keys
          WHERE retired_at IS NULL AND not_after_signing + $2 > $1
          ORDER BY created_at DESC",
    )
    .bind(now)
    .bind(verify_window)
    .fetch_all(conn)
    .await?)
}
