//! SQL every record table shares. Table names come from [`crate::Table`] constants, never
//! from input.

use sqlx::{AssertSqlSafe, PgConnection};
use uuid::Uuid;

use crate::Table;

/// Marks a live row deleted at `version` (soft delete: the row stays for the audit trail and
/// restores; every read and list skips it). False when there was no live row.
pub async fn soft_delete(
    conn: &mut PgConnection,
    table: &Table,
    id: Uuid,
    version: i64,
) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "UPDATE {} SET deleted_at = now(), version = $2, updated_at = now()
          WHERE id = $1 AND deleted_at IS NULL",
        table.name
    );
    let done = sqlx::query(AssertSqlSafe(sql))
        .bind(id)
        .bind(version)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}
