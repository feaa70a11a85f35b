//! SQL for accounts (table `accounts`). Every write runs inside the caller's transaction,
//! together with its outbox event; the version check and the change happen under a row lock
//! (`FOR UPDATE`). The list filters, counts and row locks both stores share are
//! [`crate::record::store`]'s; soft delete is `crm_record::store`'s.

use chrono::{DateTime, Utc};
use crm_access::Scope;
use crm_fields::Values;
use crm_record::Table;
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, PgConnection};
use uuid::Uuid;

use super::domain::{Account, account_fields};
use crate::error::{Error, Result};
use crate::record::domain::Grade;
use crate::record::list::ListQuery;
use crate::record::store::{self as records, Lock};

const ACCOUNT_COLUMNS: &str = "id, name, website, industry, phone, email, owner_id, \
     department_id, tags, lifecycle_status, grade, custom, version, created_at, updated_at";

pub static ACCOUNT_TABLE: Table = Table {
    name: "accounts",
    name_column: "name",
    time_column: None,
    search: &["name", "email", "phone"],
    condition_columns: &["industry", "lifecycle_status", "grade"],
    fields: account_fields::ALL,
};

#[derive(sqlx::FromRow)]
struct AccountRow {
    id: Uuid,
    name: String,
    website: Option<String>,
    industry: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    owner_id: Uuid,
    department_id: Option<Uuid>,
    tags: Vec<String>,
    lifecycle_status: String,
    grade: Option<String>,
    custom: Json<Values>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<AccountRow> for Account {
    type Error = Error;
    fn try_from(r: AccountRow) -> Result<Self> {
        Ok(Account {
            id: r.id,
            name: r.name,
            website: r.website,
            industry: r.industry,
            phone: r.phone,
            email: r.email,
            owner_id: r.owner_id,
            department_id: r.department_id,
            tags: r.tags,
            lifecycle_status: records::status(&r.lifecycle_status)?,
            grade: records::grade(r.grade)?,
            custom: r.custom.0,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[tracing::instrument(name = "sql accounts.select", skip_all, fields(db.system = "postgresql"))]
pub async fn get_account(conn: &mut PgConnection, id: Uuid, lock: Lock) -> Result<Option<Account>> {
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1 AND deleted_at IS NULL{}",
        lock.sql()
    );
    let row: Option<AccountRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(Account::try_from).transpose()
}

#[tracing::instrument(name = "sql accounts.insert", skip_all, fields(db.system = "postgresql"))]
pub async fn insert_account(conn: &mut PgConnection, a: &Account) -> Result<()> {
    sqlx::query(
        "INSERT INTO accounts (id, name, website, industry, phone, email, owner_id, tags,
                               lifecycle_status, grade, version, created_at, updated_at,
                               department_id, custom)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(a.id)
    .bind(&a.name)
    .bind(&a.website)
    .bind(&a.industry)
    .bind(&a.phone)
    .bind(&a.email)
    .bind(a.owner_id)
    .bind(&a.tags)
    .bind(a.lifecycle_status.as_str())
    .bind(a.grade.map(Grade::as_str))
    .bind(a.version)
    .bind(a.created_at)
    .bind(a.updated_at)
    .bind(a.department_id)
    .bind(Json(&a.custom))
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "sql accounts.update", skip_all, fields(db.system = "postgresql"))]
pub async fn update_account(conn: &mut PgConnection, a: &Account) -> Result<()> {
    sqlx::query(
        "UPDATE accounts SET name = $2, website = $3, industry = $4, phone = $5, email = $6,
                owner_id = $7, tags = $8, lifecycle_status = $9, grade = $10, version = $11,
                updated_at = $12, department_id = $13,
                custom = $14
         WHERE id = $1",
    )
    .bind(a.id)
    .bind(&a.name)
    .bind(&a.website)
    .bind(&a.industry)
    .bind(&a.phone)
    .bind(&a.email)
    .bind(a.owner_id)
    .bind(&a.tags)
    .bind(a.lifecycle_status.as_str())
    .bind(a.grade.map(Grade::as_str))
    .bind(a.version)
    .bind(a.updated_at)
    .bind(a.department_id)
    .bind(Json(&a.custom))
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "sql accounts.list", skip_all, fields(db.system = "postgresql"))]
pub async fn list_accounts(
    conn: &mut PgConnection,
    q: &ListQuery,
    scope: &Scope,
) -> Result<Vec<Account>> {
    let mut b = records::select(ACCOUNT_COLUMNS, &ACCOUNT_TABLE, q, scope);
    q.keyset.push_page(&mut b, &ACCOUNT_TABLE);
    let rows: Vec<AccountRow> = b.build_query_as().fetch_all(conn).await?;
    rows.into_iter().map(Account::try_from).collect()
}
