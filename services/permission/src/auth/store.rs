//! SQL for sign-in: the throttle counters (`login_throttle`) and refresh tokens
//! (`refresh_tokens`). Every write runs inside the caller's transaction, together with its outbox
//! event. The users' credentials are read through [`crate::users::store`].

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::throttle::ThrottleState;
use crate::error::Result;

// --- sign-in throttling -----------------------------------------------------------------------

/// Reads a username's counter under a row lock, creating it when missing: every attempt for the
/// same key waits here for the one before it, so counting cannot race.
#[tracing::instrument(name = "sql login_throttle.lock", skip_all, fields(db.system = "postgresql"))]
pub async fn lock_throttle(conn: &mut PgConnection, key: &str) -> Result<ThrottleState> {
    sqlx::query("INSERT INTO login_throttle (username_key) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(key)
        .execute(&mut *conn)
        .await?;
    let (failures, lock_count, locked_until, last_failure_at) = sqlx::query_as(
        "SELECT failures, lock_count, locked_until, last_failure_at
           FROM login_throttle WHERE username_key = $1 FOR UPDATE",
    )
    .bind(key)
    .fetch_one(conn)
    .await?;
    Ok(ThrottleState {
        failures,
        lock_count,
        locked_until,
        last_failure_at,
    })
}

#[tracing::instrument(name = "sql login_throttle.update", skip_all, fields(db.system = "postgresql"))]
pub async fn save_throttle(conn: &mut PgConnection, key: &str, s: &ThrottleState) -> Result<()> {
    sqlx::query(
        "UPDATE login_throttle
            SET failures = $2, lock_count = $3, locked_until = $4, last_failure_at = $5
          WHERE username_key = $1",
    )
    .bind(key)
    .bind(s.failures)
    .bind(s.lock_count)
    .bind(s.locked_until)
    .bind(s.last_failure_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A successful sign-in forgets every earlier failure.
#[tracing::instrument(name = "sql login_throttle.delete", skip_all, fields(db.system = "postgresql"))]
pub async fn clear_throttle(conn: &mut PgConnection, key: &str) -> Result<()> {
    sqlx::query("DELETE FROM login_throttle WHERE username_key = $1")
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes counters of usernames that have been quiet since `before` and are not locked.
pub async fn purge_throttle(conn: &mut PgConnection, before: DateTime<Utc>) -> Result<u64> {
    Ok(sqlx::query(
        "DELETE FROM login_throttle
          WHERE coalesce(last_failure_at, '-infinity') < $1
            AND coalesce(locked_until, '-infinity') < $1",
    )
    .bind(before)
    .execute(conn)
    .await?
    .rows_affected())
}

// --- refresh tokens ---------------------------------------------------------------------------

/// A refresh token's row (the token itself is never stored, only its SHA-256).
#[derive(Debug, sqlx::FromRow)]
pub struct RefreshRow {
    pub id: Uuid,
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub struct NewRefresh<'a> {
    pub id: Uuid,
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub token_hash: &'a [u8],
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub client_ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

#[tracing::instrument(name = "sql refresh_tokens.insert", skip_all, fields(db.system = "postgresql"))]
pub async fn insert_refresh(conn: &mut PgConnection, r: &NewRefresh<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, issued_at, expires_at,
                                     client_ip, user_agent)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(r.id)
    .bind(r.family_id)
    .bind(r.user_id)
    .bind(r.token_hash)
    .bind(r.issued_at)
    .bind(r.expires_at)
    .bind(r.client_ip)
    .bind(r.user_agent)
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "sql refresh_tokens.select", skip_all, fields(db.system = "postgresql"))]
pub async fn find_refresh(
    conn: &mut PgConnection,
    token_hash: &[u8],
    lock: bool,
) -> Result<Option<RefreshRow>> {
    let sql = format!(
        "SELECT id, family_id, user_id, expires_at, used_at, revoked_at
           FROM refresh_tokens WHERE token_hash = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(token_hash)
        .fetch_optional(conn)
        .await?)
}

#[tracing::instrument(name = "sql refresh_tokens.mark_used", skip_all, fields(db.system = "postgresql"))]
pub async fn mark_used(conn: &mut PgConnection, id: Uuid, at: DateTime<Utc>) -> Result<()> {
    sqlx::query("UPDATE refresh_tokens SET used_at = $2 WHERE id = $1")
        .bind(id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Revokes every live token of a family; returns how many were live.
#[tracing::instrument(name = "sql refresh_tokens.revoke_family", skip_all, fields(db.system = "postgresql"))]
pub async fn revoke_family(
    conn: &mut PgConnection,
    family_id: Uuid,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $3, revoked_reason = $2
          WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family_id)
    .bind(reason)
    .bind(at)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Revokes every live token of a user; returns the families (sessions) that had one.
#[tracing::instrument(name = "sql refresh_tokens.revoke_user", skip_all, fields(db.system = "postgresql"))]
pub async fn revoke_user(
    conn: &mut PgConnection,
    user_id: Uuid,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "WITH revoked AS (
            UPDATE refresh_tokens SET revoked_at = $3, revoked_reason = $2
             WHERE user_id = $1 AND revoked_at IS NULL
         RETURNING family_id)
         SELECT DISTINCT family_id FROM revoked ORDER BY family_id",
    )
    .bind(user_id)
    .bind(reason)
    .bind(at)
    .fetch_all(conn)
    .await?)
}

/// Deletes tokens that expired before `before`: presenting one is refused as unknown anyway, and
/// reuse detection only matters while a token could still be valid.
pub async fn purge_refresh(conn: &mut PgConnection, before: DateTime<Utc>) -> Result<u64> {
    Ok(
        sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
            .bind(before)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}
