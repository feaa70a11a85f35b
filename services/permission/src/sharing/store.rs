//! SQL for sharing: records shared with users (`record_shares`) and sharing rules
//! (`sharing_rules`). Writes run inside the caller's organisation transaction
//! ([`crate::org::service::OrgTx`]). What decisions read of them is loaded with the snapshot
//! ([`crate::access::store`]).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::domain::{Grantee, RecordShare, SharingRule, Source, access_str};
use crate::error::{Error, Result};
use crate::org::domain::Resource;

async fn found(conn: &mut PgConnection, sql: &'static str, id: Uuid) -> Result<bool> {
    let found: Option<Uuid> = sqlx::query_scalar(sql)
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

pub async fn user_exists(conn: &mut PgConnection, id: Uuid) -> Result<bool> {
    found(conn, "SELECT id FROM users WHERE id = $1", id).await
}

pub async fn department_exists(conn: &mut PgConnection, id: Uuid) -> Result<bool> {
    found(conn, "SELECT id FROM departments WHERE id = $1", id).await
}

pub async fn role_exists(conn: &mut PgConnection, id: Uuid) -> Result<bool> {
    found(conn, "SELECT id FROM roles WHERE id = $1", id).await
}

// --- record shares ----------------------------------------------------------------------------

/// The stored access of a share (`read` or `edit`), locked until the transaction ends.
pub async fn lock_share(
    conn: &mut PgConnection,
    resource: Resource,
    record_id: Uuid,
    user_id: Uuid,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT access FROM record_shares
          WHERE resource = $1 AND record_id = $2 AND user_id = $3 FOR UPDATE",
    )
    .bind(resource.as_str())
    .bind(record_id)
    .bind(user_id)
    .fetch_optional(conn)
    .await?)
}

/// Shares a record, or changes the access of an existing share (keeping its `created_at`).
pub async fn upsert_share(conn: &mut PgConnection, share: &RecordShare) -> Result<()> {
    sqlx::query(
        "INSERT INTO record_shares (resource, record_id, user_id, access, created_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (resource, record_id, user_id) DO UPDATE SET access = $4",
    )
    .bind(share.resource.as_str())
    .bind(share.record_id)
    .bind(share.user_id)
    .bind(access_str(share.edit))
    .bind(share.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes a share; returns how many rows went (0 or 1).
pub async fn delete_share(
    conn: &mut PgConnection,
    resource: Resource,
    record_id: Uuid,
    user_id: Uuid,
) -> Result<u64> {
    Ok(sqlx::query(
        "DELETE FROM record_shares WHERE resource = $1 AND record_id = $2 AND user_id = $3",
    )
    .bind(resource.as_str())
    .bind(record_id)
    .bind(user_id)
    .execute(conn)
    .await?
    .rows_affected())
}

/// The shares of one record, oldest first.
pub async fn list_shares(
    conn: &mut PgConnection,
    resource: Resource,
    record_id: Uuid,
) -> Result<Vec<RecordShare>> {
    let rows: Vec<(Uuid, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT user_id, access, created_at FROM record_shares
          WHERE resource = $1 AND record_id = $2 ORDER BY created_at, user_id",
    )
    .bind(resource.as_str())
    .bind(record_id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(user_id, access, created_at)| RecordShare {
            resource,
            record_id,
            user_id,
            edit: access == "edit",
            created_at,
        })
        .collect())
}

// --- sharing rules ----------------------------------------------------------------------------

/// Inserts a rule. A rule of the same name for the resource is a unique violation.
pub async fn insert_rule(conn: &mut PgConnection, rule: &SharingRule) -> Result<()> {
    let (grantee_department, grantee_role) = match rule.grantee {
        Grantee::Department(d) => (Some(d), None),
        Grantee::Role(r) => (None, Some(r)),
    };
    let (source_department, field, equals) = match &rule.source {
        Source::Department(d) => (Some(*d), None, None),
        Source::Condition { field, equals } => (None, Some(field.clone()), Some(equals.clone())),
    };
    sqlx::query(
        "INSERT INTO sharing_rules (id, name, resource, access, grantee_department_id,
                                    grantee_role_id, source_department_id, condition_field,
                                    condition_equals, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(rule.id)
    .bind(&rule.name)
    .bind(rule.resource.as_str())
    .bind(access_str(rule.edit))
    .bind(grantee_department)
    .bind(grantee_role)
    .bind(source_department)
    .bind(field)
    .bind(equals)
    .bind(rule.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes a rule; returns how many rows went (0 or 1).
pub async fn delete_rule(conn: &mut PgConnection, id: Uuid) -> Result<u64> {
    Ok(sqlx::query("DELETE FROM sharing_rules WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected())
}

/// Every rule, by resource and name.
pub async fn list_rules(conn: &mut PgConnection) -> Result<Vec<SharingRule>> {
    type Row = (
        Uuid,
        String,
        String,
        String,
        Option<Uuid>,
        Option<Uuid>,
        Option<Uuid>,
        Option<String>,
        Option<String>,
        DateTime<Utc>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, name, resource, access, grantee_department_id, grantee_role_id,
                source_department_id, condition_field, condition_equals, created_at
           FROM sharing_rules ORDER BY resource, name",
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(
            |(id, name, resource, access, gd, gr, sd, field, equals, created_at)| {
                let corrupt = || Error::Corrupt(format!("sharing rule {id}"));
                Ok(SharingRule {
                    id,
                    name,
                    resource: Resource::parse(&resource).ok_or_else(corrupt)?,
                    edit: access == "edit",
                    grantee: match (gd, gr) {
                        (Some(d), None) => Grantee::Department(d),
                        (None, Some(r)) => Grantee::Role(r),
                        _ => return Err(corrupt()),
                    },
                    source: match (sd, field, equals) {
                        (Some(d), None, None) => Source::Department(d),
                        (None, Some(field), Some(equals)) => Source::Condition { field, equals },
                        _ => return Err(corrupt()),
                    },
                    created_at,
                })
            },
        )
        .collect()
}
