//! SQL for API clients (`api_clients`, read together with their service user's status). Writes
//! run inside the caller's transaction, together with the client's service user and its event.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::domain::ApiClient;
use crate::error::{Error, Result};
use crate::users::domain::UserStatus;

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    client_id: String,
    name: String,
    secret_hash: Vec<u8>,
    scopes: Vec<String>,
    requests_per_window: i32,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    status: String,
}

const SELECT: &str = "SELECT c.id, c.client_id, c.name, c.secret_hash, c.scopes,
        c.requests_per_window, c.version, c.created_at, c.updated_at, u.status
   FROM api_clients c JOIN users u ON u.id = c.id";

impl TryFrom<Row> for (ApiClient, Vec<u8>) {
    type Error = Error;
    fn try_from(r: Row) -> Result<Self> {
        let status = UserStatus::parse(&r.status)
            .ok_or_else(|| Error::Corrupt(format!("user status {:?}", r.status)))?;
        Ok((
            ApiClient {
                id: r.id,
                client_id: r.client_id,
                name: r.name,
                scopes: r.scopes,
                requests_per_window: r.requests_per_window.max(0) as u32,
                status,
                version: r.version,
                created_at: r.created_at,
                updated_at: r.updated_at,
            },
            r.secret_hash,
        ))
    }
}

/// By `client_id` (what clients authenticate as; never a UUID, so never a record id).
pub async fn find_by_client_id(
    conn: &mut PgConnection,
    client_id: &str,
) -> Result<Option<(ApiClient, Vec<u8>)>> {
    let sql = format!("{SELECT} WHERE c.client_id = $1");
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(client_id)
        .fetch_optional(conn)
        .await?;
    row.map(<(ApiClient, Vec<u8>)>::try_from).transpose()
}

/// By record id or by `client_id` (administration accepts either).
pub async fn find(conn: &mut PgConnection, key: &str) -> Result<Option<(ApiClient, Vec<u8>)>> {
    let Ok(id) = Uuid::parse_str(key) else {
        return find_by_client_id(conn, key.trim()).await;
    };
    let sql = format!("{SELECT} WHERE c.id = $1");
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(<(ApiClient, Vec<u8>)>::try_from).transpose()
}

pub const CLIENT_ID_CONSTRAINT: &str = "api_clients_client_id_key";

pub async fn insert(conn: &mut PgConnection, client: &ApiClient, secret_hash: &[u8]) -> Result<()> {
    sqlx::query(
        "INSERT INTO api_clients (id, client_id, name, secret_hash, scopes,
                                  requests_per_window, version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(client.id)
    .bind(&client.client_id)
    .bind(&client.name)
    .bind(secret_hash)
    .bind(&client.scopes)
    .bind(client.requests_per_window as i32)
    .bind(client.version)
    .bind(client.created_at)
    .bind(client.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes a new secret with the client's new version.
pub async fn update_secret(
    conn: &mut PgConnection,
    client: &ApiClient,
    secret_hash: &[u8],
) -> Result<()> {
    sqlx::query(
        "UPDATE api_clients SET secret_hash = $2, version = $3, updated_at = $4 WHERE id = $1",
    )
    .bind(client.id)
    .bind(secret_hash)
    .bind(client.version)
    .bind(client.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}
