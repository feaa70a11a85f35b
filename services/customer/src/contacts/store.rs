//! SQL for contacts (table `contacts`). Every write runs inside the caller's transaction,
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

use super::domain::{Contact, contact_fields};
use crate::error::{Error, Result};
use crate::record::domain::Grade;
use crate::record::list::ListQuery;
use crate::record::store::{self as records, Lock};

const CONTACT_COLUMNS: &str = "id, account_id, first_name, last_name, email, phone, title, \
     owner_id, department_id, tags, lifecycle_status, grade, custom, version, created_at, updated_at";

pub static CONTACT_TABLE: Table = Table {
    name: "contacts",
    name_column: "first_name",
    time_column: None,
    search: &["first_name", "last_name", "email", "phone"],
    condition_columns: &["title", "lifecycle_status", "grade"],
    fields: contact_fields::ALL,
};

#[derive(sqlx::FromRow)]
struct ContactRow {
    id: Uuid,
    account_id: Uuid,
    first_name: String,
    last_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    title: Option<String>,
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

impl TryFrom<ContactRow> for Contact {
    type Error = Error;
    fn try_from(r: ContactRow) -> Result<Self> {
        Ok(Contact {
            id: r.id,
            account_id: r.account_id,
            first_name: r.first_name,
            last_name: r.last_name,
            email: r.email,
            phone: r.phone,
            title: r.title,
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

#[tracing::instrument(name = "sql contacts.select", skip_all, fields(db.system = "postgresql"))]
pub async fn get_contact(conn: &mut PgConnection, id: Uuid, lock: Lock) -> Result<Option<Contact>> {
    let sql = format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = $1 AND deleted_at IS NULL{}",
        lock.sql()
    );
    let row: Option<ContactRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(Contact::try_from).transpose()
}

#[tracing::instrument(name = "sql contacts.insert", skip_all, fields(db.system = "postgresql"))]
pub async fn insert_contact(conn: &mut PgConnection, c: &Contact) -> Result<()> {
    sqlx::query(
        "INSERT INTO contacts (id, account_id, first_name, last_name, email, phone, title, owner_id,
                               tags, lifecycle_status, grade, version, created_at, updated_at,
                               department_id, custom)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(c.id)
    .bind(c.account_id)
    .bind(&c.first_name)
    .bind(&c.last_name)
    .bind(&c.email)
    .bind(&c.phone)
    .bind(&c.title)
    .bind(c.owner_id)
    .bind(&c.tags)
    .bind(c.lifecycle_status.as_str())
    .bind(c.grade.map(Grade::as_str))
    .bind(c.version)
    .bind(c.created_at)
    .bind(c.updated_at)
    .bind(c.department_id)
    .bind(Json(&c.custom))
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "sql contacts.update", skip_all, fields(db.system = "postgresql"))]
pub async fn update_contact(conn: &mut PgConnection, c: &Contact) -> Result<()> {
    sqlx::query(
        "UPDATE contacts SET account_id = $2, first_name = $3, last_name = $4, email = $5,
                phone = $6, title = $7, owner_id = $8, tags = $9, lifecycle_status = $10,
                grade = $11, version = $12, updated_at = $13, department_id = $14,
                custom = $15
         WHERE id = $1",
    )
    .bind(c.id)
    .bind(c.account_id)
    .bind(&c.first_name)
    .bind(&c.last_name)
    .bind(&c.email)
    .bind(&c.phone)
    .bind(&c.title)
    .bind(c.owner_id)
    .bind(&c.tags)
    .bind(c.lifecycle_status.as_str())
    .bind(c.grade.map(Grade::as_str))
    .bind(c.version)
    .bind(c.updated_at)
    .bind(c.department_id)
    .bind(Json(&c.custom))
    .execute(conn)
    .await?;
    Ok(())
}

/// How many live contacts `account` has (an account with any cannot be deleted).
pub async fn live_contacts_of(conn: &mut PgConnection, account: Uuid) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM contacts WHERE account_id = $1 AND deleted_at IS NULL",
    )
    .bind(account)
    .fetch_one(conn)
    .await?)
}

#[tracing::instrument(name = "sql contacts.list", skip_all, fields(db.system = "postgresql"))]
pub async fn list_contacts(
    conn: &mut PgConnection,
    q: &ListQuery,
    scope: &Scope,
) -> Result<Vec<Contact>> {
    let mut b = records::select(CONTACT_COLUMNS, &CONTACT_TABLE, q, scope);
    q.keyset.push_page(&mut b, &CONTACT_TABLE);
    let rows: Vec<ContactRow> = b.build_query_as().fetch_all(conn).await?;
    rows.into_iter().map(Contact::try_from).collect()
}
