//! SQL for accounts and contacts. Every write runs in one transaction together with its outbox
//! event; the version check and the change happen under a row lock (`FOR UPDATE`).

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::domain::{Account, Contact, Grade, LifecycleStatus};
use crate::error::{Error, Result};
use crm_access::Scope;

use crate::domain::{account_fields, contact_fields};
use crate::list::ListQuery;
use crm_record::Table;

const ACCOUNT_COLUMNS: &str = "id, name, website, industry, phone, email, owner_id, \
     department_id, tags, lifecycle_status, grade, version, created_at, updated_at";
const CONTACT_COLUMNS: &str = "id, account_id, first_name, last_name, email, phone, title, \
     owner_id, department_id, tags, lifecycle_status, grade, version, created_at, updated_at";

pub static ACCOUNT_TABLE: Table = Table {
    name: "accounts",
    name_column: "name",
    search: &["name", "email", "phone"],
    condition_columns: &["industry", "lifecycle_status", "grade"],
    fields: account_fields::ALL,
};
pub static CONTACT_TABLE: Table = Table {
    name: "contacts",
    name_column: "first_name",
    search: &["first_name", "last_name", "email", "phone"],
    condition_columns: &["title", "lifecycle_status", "grade"],
    fields: contact_fields::ALL,
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
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn status(s: &str) -> Result<LifecycleStatus> {
    LifecycleStatus::parse(s).ok_or_else(|| Error::Corrupt(format!("lifecycle_status {s:?}")))
}

fn grade(g: Option<String>) -> Result<Option<Grade>> {
    g.map(|g| Grade::parse(&g).ok_or_else(|| Error::Corrupt(format!("grade {g:?}"))))
        .transpose()
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
            lifecycle_status: status(&r.lifecycle_status)?,
            grade: grade(r.grade)?,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

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
            lifecycle_status: status(&r.lifecycle_status)?,
            grade: grade(r.grade)?,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// How a read locks the row until the transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    None,
    /// Others may read, not change or delete it (an account a contact is being attached to).
    Share,
    /// For the write that follows.
    Update,
}

impl Lock {
    fn sql(self) -> &'static str {
        match self {
            Lock::None => "",
            Lock::Share => " FOR SHARE",
            Lock::Update => " FOR UPDATE",
        }
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
                               department_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
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
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "sql accounts.update", skip_all, fields(db.system = "postgresql"))]
pub async fn update_account(conn: &mut PgConnection, a: &Account) -> Result<()> {
    sqlx::query(
        "UPDATE accounts SET name = $2, website = $3, industry = $4, phone = $5, email = $6,
                owner_id = $7, tags = $8, lifecycle_status = $9, grade = $10, version = $11,
                updated_at = $12, department_id = $13
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
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn live_contacts_of(conn: &mut PgConnection, account: Uuid) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM contacts WHERE account_id = $1 AND deleted_at IS NULL",
    )
    .bind(account)
    .fetch_one(conn)
    .await?)
}

#[tracing::instrument(name = "sql accounts.list", skip_all, fields(db.system = "postgresql"))]
pub async fn list_accounts(
    conn: &mut PgConnection,
    q: &ListQuery,
    scope: &Scope,
) -> Result<Vec<Account>> {
    let mut b = select(ACCOUNT_COLUMNS, &ACCOUNT_TABLE, q, scope);
    q.keyset.push_page(&mut b, &ACCOUNT_TABLE);
    let rows: Vec<AccountRow> = b.build_query_as().fetch_all(conn).await?;
    rows.into_iter().map(Account::try_from).collect()
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
                               department_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
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
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "sql contacts.update", skip_all, fields(db.system = "postgresql"))]
pub async fn update_contact(conn: &mut PgConnection, c: &Contact) -> Result<()> {
    sqlx::query(
        "UPDATE contacts SET account_id = $2, first_name = $3, last_name = $4, email = $5,
                phone = $6, title = $7, owner_id = $8, tags = $9, lifecycle_status = $10,
                grade = $11, version = $12, updated_at = $13, department_id = $14
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
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "sql contacts.list", skip_all, fields(db.system = "postgresql"))]
pub async fn list_contacts(
    conn: &mut PgConnection,
    q: &ListQuery,
    scope: &Scope,
) -> Result<Vec<Contact>> {
    let mut b = select(CONTACT_COLUMNS, &CONTACT_TABLE, q, scope);
    q.keyset.push_page(&mut b, &CONTACT_TABLE);
    let rows: Vec<ContactRow> = b.build_query_as().fetch_all(conn).await?;
    rows.into_iter().map(Contact::try_from).collect()
}

/// `SELECT <what> FROM <table>` over live rows in `scope` matching the filters of `q`.
fn select(
    what: &'static str,
    table: &'static Table,
    q: &ListQuery,
    scope: &Scope,
) -> QueryBuilder<Postgres> {
    let mut b = table.select(what, scope);
    q.push_filters(&mut b, table);
    b
}

/// How many live rows of `table` in `scope` match the filters of `q` (its cursor ignored).
#[tracing::instrument(name = "sql count", skip_all, fields(db.system = "postgresql", table = table.name))]
pub async fn count(
    conn: &mut PgConnection,
    table: &'static Table,
    q: &ListQuery,
    scope: &Scope,
) -> Result<i64> {
    let mut b = select("count(*)", table, q, scope);
    Ok(b.build_query_scalar().fetch_one(conn).await?)
}
