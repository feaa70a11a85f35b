//! SQL for follow-ups (table `follow_ups`). Every write runs inside the caller's transaction,
//! together with its outbox event; the version check and the change happen under a row lock
//! (`FOR UPDATE`). Lists and counts are [`crate::record::store`]'s; soft delete is
//! `crm_record::store`'s.

use chrono::{DateTime, Utc};
use crm_access::Scope;
use crm_record::Table;
use sqlx::{AssertSqlSafe, PgConnection};
use uuid::Uuid;

use super::domain::{FollowUp, FollowUpKind, follow_up_fields};
use crate::error::{Error, Result};
use crate::record::list::ListQuery;
use crate::record::store::{self as records, Lock};

const FOLLOW_UP_COLUMNS: &str = "id, account_id, contact_id, kind, subject, content, outcome, \
     occurred_at, next_follow_up_at, owner_id, department_id, version, created_at, updated_at";

pub static FOLLOW_UP_TABLE: Table = Table {
    name: "follow_ups",
    name_column: "subject",
    time_column: Some("occurred_at"),
    search: &["subject", "content", "outcome"],
    condition_columns: &["kind", "outcome"],
    fields: follow_up_fields::ALL,
};

#[derive(sqlx::FromRow)]
struct FollowUpRow {
    id: Uuid,
    account_id: Uuid,
    contact_id: Option<Uuid>,
    kind: String,
    subject: String,
    content: Option<String>,
    outcome: Option<String>,
    occurred_at: DateTime<Utc>,
    next_follow_up_at: Option<DateTime<Utc>>,
    owner_id: Uuid,
    department_id: Option<Uuid>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<FollowUpRow> for FollowUp {
    type Error = Error;
    fn try_from(r: FollowUpRow) -> Result<Self> {
        Ok(FollowUp {
            kind: FollowUpKind::parse(&r.kind)
                .ok_or_else(|| Error::Corrupt(format!("follow-up kind {:?}", r.kind)))?,
            id: r.id,
            account_id: r.account_id,
            contact_id: r.contact_id,
            subject: r.subject,
            content: r.content,
            outcome: r.outcome,
            occurred_at: r.occurred_at,
            next_follow_up_at: r.next_follow_up_at,
            owner_id: r.owner_id,
            department_id: r.department_id,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[tracing::instrument(name = "sql follow_ups.select", skip_all, fields(db.system = "postgresql"))]
pub async fn get_follow_up(
    conn: &mut PgConnection,
    id: Uuid,
    lock: Lock,
) -> Result<Option<FollowUp>> {
    let sql = format!(
        "SELECT {FOLLOW_UP_COLUMNS} FROM follow_ups WHERE id = $1 AND deleted_at IS NULL{}",
        lock.sql()
    );
    let row: Option<FollowUpRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(FollowUp::try_from).transpose()
}

#[tracing::instrument(name = "sql follow_ups.insert", skip_all, fields(db.system = "postgresql"))]
pub async fn insert_follow_up(conn: &mut PgConnection, f: &FollowUp) -> Result<()> {
    sqlx::query(
        "INSERT INTO follow_ups (id, account_id, contact_id, kind, subject, content, outcome,
                                 occurred_at, next_follow_up_at, owner_id, department_id,
                                 version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(f.id)
    .bind(f.account_id)
    .bind(f.contact_id)
    .bind(f.kind.as_str())
    .bind(&f.subject)
    .bind(&f.content)
    .bind(&f.outcome)
    .bind(f.occurred_at)
    .bind(f.next_follow_up_at)
    .bind(f.owner_id)
    .bind(f.department_id)
    .bind(f.version)
    .bind(f.created_at)
    .bind(f.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "sql follow_ups.update", skip_all, fields(db.system = "postgresql"))]
pub async fn update_follow_up(conn: &mut PgConnection, f: &FollowUp) -> Result<()> {
    sqlx::query(
        "UPDATE follow_ups SET contact_id = $2, kind = $3, subject = $4, content = $5,
                outcome = $6, occurred_at = $7, next_follow_up_at = $8, owner_id = $9,
                department_id = $10, version = $11, updated_at = $12
         WHERE id = $1",
    )
    .bind(f.id)
    .bind(f.contact_id)
    .bind(f.kind.as_str())
    .bind(&f.subject)
    .bind(&f.content)
    .bind(&f.outcome)
    .bind(f.occurred_at)
    .bind(f.next_follow_up_at)
    .bind(f.owner_id)
    .bind(f.department_id)
    .bind(f.version)
    .bind(f.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "sql follow_ups.list", skip_all, fields(db.system = "postgresql"))]
pub async fn list_follow_ups(
    conn: &mut PgConnection,
    q: &ListQuery,
    scope: &Scope,
) -> Result<Vec<FollowUp>> {
    let mut b = records::select(FOLLOW_UP_COLUMNS, &FOLLOW_UP_TABLE, q, scope);
    q.keyset.push_page(&mut b, &FOLLOW_UP_TABLE);
    let rows: Vec<FollowUpRow> = b.build_query_as().fetch_all(conn).await?;
    rows.into_iter().map(FollowUp::try_from).collect()
}
