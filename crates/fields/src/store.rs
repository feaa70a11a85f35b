//! SQL for definitions (table `custom_fields`, this crate's [`crate::MIGRATOR`]) and the checks
//! a write of values needs against the record table (uniqueness, whether a field holds values).
//! Record table names come from `crm_record::Table` constants; keys and values are bound.

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, PgConnection};

use crate::Result;
use crate::definition::Definition;
use crate::values::Schema;

#[derive(sqlx::FromRow)]
struct Row {
    definition: serde_json::Value,
}

fn decode(row: Row) -> Result<Definition> {
    serde_json::from_value(row.definition).map_err(|e| crate::Error::Corrupt(e.to_string()))
}

/// Every live definition of `entity` (active or not): what writes are checked against and
/// reads shown by.
#[tracing::instrument(name = "sql custom_fields.schema", skip_all, fields(db.system = "postgresql"))]
pub async fn schema(conn: &mut PgConnection, entity: &str) -> Result<Schema> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT definition FROM custom_fields WHERE entity = $1 AND deleted_at IS NULL",
    )
    .bind(entity)
    .fetch_all(conn)
    .await?;
    Ok(Schema::new(
        rows.into_iter().map(decode).collect::<Result<_>>()?,
    ))
}

/// Every live definition of every entity in `entities`, for the registry's declaration.
pub async fn all(conn: &mut PgConnection, entities: &[&str]) -> Result<Vec<Definition>> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT definition FROM custom_fields
          WHERE entity = ANY($1) AND deleted_at IS NULL ORDER BY entity, key",
    )
    .bind(entities)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(decode).collect()
}

/// One live definition, locked for a change when `lock`.
pub async fn get(
    conn: &mut PgConnection,
    entity: &str,
    key: &str,
    lock: bool,
) -> Result<Option<Definition>> {
    let sql = format!(
        "SELECT definition FROM custom_fields
          WHERE entity = $1 AND key = $2 AND deleted_at IS NULL{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row: Option<Row> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(entity)
        .bind(key)
        .fetch_optional(conn)
        .await?;
    row.map(decode).transpose()
}

/// Whether `key` was ever used by `entity` (live or deleted): keys are never reused.
pub async fn key_taken(conn: &mut PgConnection, entity: &str, key: &str) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM custom_fields WHERE entity = $1 AND key = $2)",
    )
    .bind(entity)
    .bind(key)
    .fetch_one(conn)
    .await?)
}

/// How many live fields `entity` has, and the next position.
pub async fn count(conn: &mut PgConnection, entity: &str) -> Result<(i64, i32)> {
    let (n, last): (i64, Option<i32>) = sqlx::query_as(
        "SELECT count(*), max((definition->>'position')::int) FROM custom_fields
          WHERE entity = $1 AND deleted_at IS NULL",
    )
    .bind(entity)
    .fetch_one(conn)
    .await?;
    Ok((n, last.map_or(0, |p| p + 1)))
}

/// Serialises definition changes of one entity (a count checked, then an insert).
pub async fn lock_entity(conn: &mut PgConnection, entity: &str) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('custom_fields'), hashtext($1))")
        .bind(entity)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn insert(conn: &mut PgConnection, d: &Definition) -> Result<()> {
    sqlx::query(
        "INSERT INTO custom_fields (id, entity, key, definition, active, version, created_at,
                                    updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(d.id)
    .bind(&d.entity)
    .bind(&d.key)
    .bind(serde_json::to_value(d).map_err(|e| crate::Error::Corrupt(e.to_string()))?)
    .bind(d.active)
    .bind(d.version)
    .bind(d.created_at)
    .bind(d.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn update(conn: &mut PgConnection, d: &Definition) -> Result<()> {
    sqlx::query(
        "UPDATE custom_fields SET definition = $2, active = $3, version = $4, updated_at = $5
          WHERE id = $1",
    )
    .bind(d.id)
    .bind(serde_json::to_value(d).map_err(|e| crate::Error::Corrupt(e.to_string()))?)
    .bind(d.active)
    .bind(d.version)
    .bind(d.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks a definition deleted (its key stays taken).
pub async fn delete(conn: &mut PgConnection, d: &Definition, at: DateTime<Utc>) -> Result<()> {
    sqlx::query("UPDATE custom_fields SET deleted_at = $2, active = false WHERE id = $1")
        .bind(d.id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// How many records of `table` (live or deleted: a restore must not bring back values of a
/// field that no longer exists) hold a value under `key`.
pub async fn holders(conn: &mut PgConnection, table: &str, key: &str) -> Result<i64> {
    let sql = format!("SELECT count(*) FROM {table} WHERE custom ? $1");
    Ok(sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(key)
        .fetch_one(conn)
        .await?)
}

/// Removes `key` from at most `batch` records of `table`; how many it changed. The records'
/// versions do not move: the field is deleted, nobody can read or write it any more, and the
/// purge is in the audit trail as one event.
pub async fn purge_batch(
    conn: &mut PgConnection,
    table: &str,
    key: &str,
    batch: i64,
) -> Result<u64> {
    let sql = format!(
        "UPDATE {table} SET custom = custom - $1::text
          WHERE id IN (SELECT id FROM {table} WHERE custom ? $1 LIMIT $2 FOR UPDATE SKIP LOCKED)"
    );
    Ok(sqlx::query(AssertSqlSafe(sql))
        .bind(key)
        .bind(batch)
        .execute(conn)
        .await?
        .rows_affected())
}

/// Whether a live record of `table` other than `except` holds the claimed value. The caller
/// holds [`lock_value`] for it, so two writers of one value cannot both see "free". Compared
/// through the field's index expression (`crate::index`), so the check is an index probe.
pub async fn value_taken(
    conn: &mut PgConnection,
    table: &str,
    claim: &crate::values::Claim,
    except: uuid::Uuid,
) -> Result<bool> {
    if !crate::definition::is_valid_key(&claim.key) {
        return Err(crate::Error::Corrupt(format!("key {:?}", claim.key)));
    }
    let expression = crate::index::expression(&claim.key, claim.numeric);
    let text = match &claim.value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let operand = if claim.numeric { "$1::numeric" } else { "$1" };
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM {table}
                         WHERE deleted_at IS NULL AND {expression} = {operand} AND id <> $2)"
    );
    Ok(sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(text)
        .bind(except)
        .fetch_one(conn)
        .await?)
}

/// A transaction lock on one (table, key, value): writers of the same unique value queue here
/// until the first commits, then see its row.
pub async fn lock_value(
    conn: &mut PgConnection,
    table: &str,
    key: &str,
    value: &serde_json::Value,
) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2 || ':' || $3::text))")
        .bind(table)
        .bind(key)
        .bind(value)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct RuleRow {
    rule: serde_json::Value,
}

fn decode_rule(row: RuleRow) -> Result<crate::rules::ValidationRule> {
    serde_json::from_value(row.rule).map_err(|e| crate::Error::Corrupt(e.to_string()))
}

fn encode_rule(rule: &crate::rules::ValidationRule) -> Result<serde_json::Value> {
    serde_json::to_value(rule).map_err(|e| crate::Error::Corrupt(e.to_string()))
}

/// Every validation rule of `entity`, in key order.
pub async fn rules(
    conn: &mut PgConnection,
    entity: &str,
) -> Result<Vec<crate::rules::ValidationRule>> {
    let rows: Vec<RuleRow> =
        sqlx::query_as("SELECT rule FROM validation_rules WHERE entity = $1 ORDER BY key")
            .bind(entity)
            .fetch_all(conn)
            .await?;
    rows.into_iter().map(decode_rule).collect()
}

/// One rule, locked for a change when `lock`.
pub async fn rule(
    conn: &mut PgConnection,
    entity: &str,
    key: &str,
    lock: bool,
) -> Result<Option<crate::rules::ValidationRule>> {
    let sql = format!(
        "SELECT rule FROM validation_rules WHERE entity = $1 AND key = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row: Option<RuleRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(entity)
        .bind(key)
        .fetch_optional(conn)
        .await?;
    row.map(decode_rule).transpose()
}

pub async fn insert_rule(conn: &mut PgConnection, r: &crate::rules::ValidationRule) -> Result<()> {
    sqlx::query(
        "INSERT INTO validation_rules (id, entity, key, rule, version) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(r.id)
    .bind(&r.entity)
    .bind(&r.key)
    .bind(encode_rule(r)?)
    .bind(r.version)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn update_rule(conn: &mut PgConnection, r: &crate::rules::ValidationRule) -> Result<()> {
    sqlx::query("UPDATE validation_rules SET rule = $2, version = $3 WHERE id = $1")
        .bind(r.id)
        .bind(encode_rule(r)?)
        .bind(r.version)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete_rule(conn: &mut PgConnection, id: uuid::Uuid) -> Result<()> {
    sqlx::query("DELETE FROM validation_rules WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
