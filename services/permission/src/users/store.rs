//! SQL for users (`users`: accounts and their credentials) and the organisation's settings
//! (`org_settings`). Every write runs inside the caller's transaction, together with its outbox
//! event. A user's place in the organisation (`manager_id`, `org_version`) is
//! [`crate::org::store`]'s.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::domain::{OrgSettings, User, UserStatus};
use crate::error::{Error, Result};

const USER_COLUMNS: &str = "id, username, display_name, email, status, time_zone, locale, version, \
     created_at, updated_at";

#[derive(sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    username: String,
    display_name: String,
    email: Option<String>,
    status: String,
    time_zone: Option<String>,
    locale: Option<String>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<UserRow> for User {
    type Error = Error;
    fn try_from(r: UserRow) -> Result<Self> {
        Ok(User {
            status: UserStatus::parse(&r.status)
                .ok_or_else(|| Error::Corrupt(format!("user status {:?}", r.status)))?,
            time_zone: r.time_zone.as_deref().and_then(|name| {
                let tz = crm_access::preferences::parse_time_zone(name);
                if tz.is_none() {
                    // Valid when stored; a tz database that dropped the name (it never has:
                    // retired zones become links) must not make the user unreadable.
                    tracing::warn!(user_id = %r.id, time_zone = name, "stored time zone unknown; the organisation default applies");
                }
                tz
            }),
            locale: r
                .locale
                .as_deref()
                .map(|l| {
                    crm_access::Locale::parse(l)
                        .ok_or_else(|| Error::Corrupt(format!("user locale {l:?}")))
                })
                .transpose()?,
            id: r.id,
            username: r.username,
            display_name: r.display_name,
            email: r.email,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// A user with the credential needed to sign in. Only the login path reads it.
pub struct Credentials {
    pub user: User,
    /// Argon2id PHC string; `None` for SSO-only users.
    pub password_hash: Option<String>,
}

#[derive(sqlx::FromRow)]
struct CredentialsRow {
    #[sqlx(flatten)]
    user: UserRow,
    password_hash: Option<String>,
}

pub const USERNAME_CONSTRAINT: &str = "users_username_key";

// --- users ------------------------------------------------------------------------------------

#[tracing::instrument(name = "sql users.insert", skip_all, fields(db.system = "postgresql"))]
pub async fn insert_user(
    conn: &mut PgConnection,
    user: &User,
    password_hash: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO users (id, username, display_name, email, status, password_hash, version,
                            created_at, updated_at, time_zone, locale)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(user.id)
    .bind(&user.username)
    .bind(&user.display_name)
    .bind(&user.email)
    .bind(user.status.as_str())
    .bind(password_hash)
    .bind(user.version)
    .bind(user.created_at)
    .bind(user.updated_at)
    .bind(user.time_zone.map(|tz| tz.name()))
    .bind(user.locale.map(|l| l.as_str()))
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "sql users.select", skip_all, fields(db.system = "postgresql"))]
pub async fn get_user(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<User>> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(User::try_from).transpose()
}

/// Reads a user and holds a share lock until the transaction ends: a concurrent status or
/// password change (which locks the row for update) waits, or is waited for.
#[tracing::instrument(name = "sql users.select_shared", skip_all, fields(db.system = "postgresql"))]
pub async fn lock_user_shared(conn: &mut PgConnection, id: Uuid) -> Result<Option<User>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1 FOR SHARE");
    let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(User::try_from).transpose()
}

/// The user with this (already normalised) username, with its password hash.
#[tracing::instrument(name = "sql users.select_credentials", skip_all, fields(db.system = "postgresql"))]
pub async fn find_credentials(
    conn: &mut PgConnection,
    username: &str,
) -> Result<Option<Credentials>> {
    let sql = format!(
        "SELECT {USER_COLUMNS}, password_hash FROM users WHERE lower(username) = lower($1)"
    );
    let row: Option<CredentialsRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(username)
        .fetch_optional(conn)
        .await?;
    row.map(|r| {
        Ok(Credentials {
            user: r.user.try_into()?,
            password_hash: r.password_hash,
        })
    })
    .transpose()
}

#[tracing::instrument(name = "sql users.update_status", skip_all, fields(db.system = "postgresql"))]
pub async fn update_status(conn: &mut PgConnection, user: &User) -> Result<()> {
    sqlx::query("UPDATE users SET status = $2, version = $3, updated_at = $4 WHERE id = $1")
        .bind(user.id)
        .bind(user.status.as_str())
        .bind(user.version)
        .bind(user.updated_at)
        .execute(conn)
        .await?;
    Ok(())
}

#[tracing::instrument(name = "sql users.update_profile", skip_all, fields(db.system = "postgresql"))]
pub async fn update_profile(conn: &mut PgConnection, user: &User) -> Result<()> {
    sqlx::query(
        "UPDATE users SET display_name = $2, time_zone = $3, locale = $4, version = $5,
                          updated_at = $6
          WHERE id = $1",
    )
    .bind(user.id)
    .bind(&user.display_name)
    .bind(user.time_zone.map(|tz| tz.name()))
    .bind(user.locale.map(|l| l.as_str()))
    .bind(user.version)
    .bind(user.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "sql users.update_password", skip_all, fields(db.system = "postgresql"))]
pub async fn update_password(conn: &mut PgConnection, user: &User, hash: &str) -> Result<()> {
    sqlx::query(
        "UPDATE users SET password_hash = $2, version = $3, updated_at = $4,
                          password_changed_at = $4
          WHERE id = $1",
    )
    .bind(user.id)
    .bind(hash)
    .bind(user.version)
    .bind(user.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces a password hash made with older parameters, compare-and-set on the old hash (a
/// password changed meanwhile is left alone); returns how many rows changed (0 or 1).
pub async fn replace_password_hash(
    conn: &mut PgConnection,
    user_id: Uuid,
    old: &str,
    new: &str,
) -> Result<u64> {
    Ok(
        sqlx::query("UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2")
            .bind(user_id)
            .bind(old)
            .bind(new)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

// --- organisation settings -------------------------------------------------------------------

#[derive(sqlx::FromRow)]
struct OrgSettingsRow {
    default_time_zone: String,
    default_locale: String,
    version: i64,
    updated_at: DateTime<Utc>,
}

impl TryFrom<OrgSettingsRow> for OrgSettings {
    type Error = Error;
    fn try_from(r: OrgSettingsRow) -> Result<Self> {
        Ok(OrgSettings {
            default_time_zone: crm_access::preferences::parse_time_zone(&r.default_time_zone)
                .ok_or_else(|| {
                    Error::Corrupt(format!("organisation time zone {:?}", r.default_time_zone))
                })?,
            default_locale: crm_access::Locale::parse(&r.default_locale).ok_or_else(|| {
                Error::Corrupt(format!("organisation locale {:?}", r.default_locale))
            })?,
            version: r.version,
            updated_at: r.updated_at,
        })
    }
}

/// Writes the first organisation settings (from the configuration) unless they exist.
#[tracing::instrument(name = "sql org_settings.insert", skip_all, fields(db.system = "postgresql"))]
pub async fn insert_org_settings(conn: &mut PgConnection, initial: &OrgSettings) -> Result<()> {
    sqlx::query(
        "INSERT INTO org_settings (id, default_time_zone, default_locale, version, updated_at)
         VALUES (true, $1, $2, $3, $4)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(initial.default_time_zone.name())
    .bind(initial.default_locale.as_str())
    .bind(initial.version)
    .bind(initial.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The organisation's settings, if written yet; `lock`: until the transaction ends.
#[tracing::instrument(name = "sql org_settings.select", skip_all, fields(db.system = "postgresql"))]
pub async fn get_org_settings(conn: &mut PgConnection, lock: bool) -> Result<Option<OrgSettings>> {
    let sql = format!(
        "SELECT default_time_zone, default_locale, version, updated_at FROM org_settings{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row: Option<OrgSettingsRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_optional(conn)
        .await?;
    row.map(OrgSettings::try_from).transpose()
}

#[tracing::instrument(name = "sql org_settings.update", skip_all, fields(db.system = "postgresql"))]
pub async fn update_org_settings(conn: &mut PgConnection, s: &OrgSettings) -> Result<()> {
    sqlx::query(
        "UPDATE org_settings
            SET default_time_zone = $1, default_locale = $2, version = $3, updated_at = $4",
    )
    .bind(s.default_time_zone.name())
    .bind(s.default_locale.as_str())
    .bind(s.version)
    .bind(s.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}
