//! SQL for the registry (`resources`, `resource_fields`).

use chrono::{DateTime, Utc};
use crm_record::registry::DeclaredResource;
use sqlx::{PgConnection, PgPool};

use super::domain::{RegisteredField, RegisteredResource};
use crate::error::Result;

/// The owner of `resource`, if it is registered.
pub async fn owner(conn: &mut PgConnection, resource: &str) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT owner FROM resources WHERE name = $1")
            .bind(resource)
            .fetch_optional(conn)
            .await?,
    )
}

/// The names of every registered resource.
pub async fn names(pool: &PgPool) -> Result<std::collections::BTreeSet<String>> {
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM resources")
        .fetch_all(pool)
        .await?;
    Ok(names.into_iter().collect())
}

/// Registers `resource` for `owner` (or refreshes its declaration time), and makes its
/// built-in fields exactly `declared.fields`: new ones added, known ones updated, the ones no
/// longer declared marked inactive.
pub async fn upsert(
    conn: &mut PgConnection,
    owner: &str,
    declared: &DeclaredResource,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO resources (name, owner, declared_at) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET declared_at = EXCLUDED.declared_at",
    )
    .bind(&declared.name)
    .bind(owner)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    let names: Vec<&str> = declared.fields.iter().map(|f| f.name.as_str()).collect();
    sqlx::query(
        "UPDATE resource_fields SET active = false
         WHERE resource = $1 AND active AND NOT (name = ANY($2))",
    )
    .bind(&declared.name)
    .bind(&names)
    .execute(&mut *conn)
    .await?;
    for f in &declared.fields {
        sqlx::query(
            "INSERT INTO resource_fields (resource, name, kind, governed, condition, built_in, active)
             VALUES ($1, $2, $3, $4, $5, $6, true)
             ON CONFLICT (resource, name) DO UPDATE
             SET kind = EXCLUDED.kind, governed = EXCLUDED.governed,
                 condition = EXCLUDED.condition, built_in = EXCLUDED.built_in, active = true",
        )
        .bind(&declared.name)
        .bind(&f.name)
        .bind(&f.kind)
        .bind(f.governed)
        .bind(f.condition)
        .bind(!f.custom)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// One field of a resource.
pub async fn field(
    conn: &mut PgConnection,
    resource: &str,
    name: &str,
) -> Result<Option<RegisteredField>> {
    Ok(sqlx::query_as(
        "SELECT name, kind, governed, condition, built_in, active
         FROM resource_fields WHERE resource = $1 AND name = $2",
    )
    .bind(resource)
    .bind(name)
    .fetch_optional(conn)
    .await?)
}

/// Every resource with its fields, by name (fields by name too).
pub async fn list(pool: &PgPool) -> Result<Vec<RegisteredResource>> {
    let resources: Vec<(String, String, Option<DateTime<Utc>>)> =
        sqlx::query_as("SELECT name, owner, declared_at FROM resources ORDER BY name")
            .fetch_all(pool)
            .await?;
    let fields: Vec<(String, String, String, bool, bool, bool, bool)> = sqlx::query_as(
        "SELECT resource, name, kind, governed, condition, built_in, active
         FROM resource_fields ORDER BY resource, name",
    )
    .fetch_all(pool)
    .await?;
    Ok(resources
        .into_iter()
        .map(|(name, owner, declared_at)| RegisteredResource {
            fields: fields
                .iter()
                .filter(|f| f.0 == name)
                .map(|f| RegisteredField {
                    name: f.1.clone(),
                    kind: f.2.clone(),
                    governed: f.3,
                    condition: f.4,
                    built_in: f.5,
                    active: f.6,
                })
                .collect(),
            name,
            owner,
            declared_at,
        })
        .collect())
}
