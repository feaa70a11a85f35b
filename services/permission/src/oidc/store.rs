//! SQL for single sign-on: sign-ins under way (`oidc_logins`) and the identities linked to users
//! (`oidc_identities`).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::Result;

/// Stores a started sign-in until `expires_at`.
pub async fn insert_login(
    conn: &mut PgConnection,
    state: &str,
    provider: &str,
    nonce: &str,
    verifier: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO oidc_logins (state, provider, nonce, code_verifier, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(state)
    .bind(provider)
    .bind(nonce)
    .bind(verifier)
    .bind(now)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes (deletes and returns) a started sign-in of `provider`: `(nonce, verifier, expires_at)`.
/// Single use: taken whether or not the rest succeeds.
pub async fn take_login(
    conn: &mut PgConnection,
    state: &str,
    provider: &str,
) -> Result<Option<(String, String, DateTime<Utc>)>> {
    Ok(sqlx::query_as(
        "DELETE FROM oidc_logins WHERE state = $1 AND provider = $2
         RETURNING nonce, code_verifier, expires_at",
    )
    .bind(state)
    .bind(provider)
    .fetch_optional(conn)
    .await?)
}

/// Deletes sign-ins started and never finished before `now`; returns how many.
pub async fn purge_logins(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<u64> {
    Ok(sqlx::query("DELETE FROM oidc_logins WHERE expires_at < $1")
        .bind(now)
        .execute(conn)
        .await?
        .rows_affected())
}

/// The user linked to `(provider, subject)`.
pub async fn find_identity(
    conn: &mut PgConnection,
    provider: &str,
    subject: &str,
) -> Result<Option<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT user_id FROM oidc_identities WHERE provider = $1 AND subject = $2",
    )
    .bind(provider)
    .bind(subject)
    .fetch_optional(conn)
    .await?)
}

/// Links `(provider, subject)` to a user unless it is linked already; returns 1 when it linked,
/// 0 when a concurrent first sign-in linked it first.
pub async fn link_identity(
    conn: &mut PgConnection,
    provider: &str,
    subject: &str,
    user_id: Uuid,
) -> Result<u64> {
    Ok(sqlx::query(
        "INSERT INTO oidc_identities (provider, subject, user_id, created_at)
         VALUES ($1, $2, $3, now()) ON CONFLICT DO NOTHING",
    )
    .bind(provider)
    .bind(subject)
    .bind(user_id)
    .execute(conn)
    .await?
    .rows_affected())
}
