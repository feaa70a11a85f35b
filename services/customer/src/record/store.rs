//! The SQL both stores share: how a read locks its row, the stored forms of the lifecycle
//! status and grade, and lists and counts — live rows in the caller's scope matching a
//! [`ListQuery`]'s filters (the scope predicate, text search and paging come from
//! `crm_record::page`). Each table's own statements are in `accounts/store.rs` and
//! `contacts/store.rs`.

use crm_access::Scope;
use crm_record::Table;
use sqlx::{PgConnection, Postgres, QueryBuilder};

use super::domain::{Grade, LifecycleStatus};
use super::list::ListQuery;
use crate::error::{Error, Result};

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
    /// The clause that ends the `SELECT`.
    pub fn sql(self) -> &'static str {
        match self {
            Lock::None => "",
            Lock::Share => " FOR SHARE",
            Lock::Update => " FOR UPDATE",
        }
    }
}

/// A stored `lifecycle_status`.
pub fn status(s: &str) -> Result<LifecycleStatus> {
    LifecycleStatus::parse(s).ok_or_else(|| Error::Corrupt(format!("lifecycle_status {s:?}")))
}

/// A stored `grade`.
pub fn grade(g: Option<String>) -> Result<Option<Grade>> {
    g.map(|g| Grade::parse(&g).ok_or_else(|| Error::Corrupt(format!("grade {g:?}"))))
        .transpose()
}

/// Appends the filters of `q` as `AND …` (after `Table::select`'s live-row and scope
/// predicate); a count runs with these alone.
fn push_filters(b: &mut QueryBuilder<Postgres>, q: &ListQuery, table: &Table) {
    if let Some(owner) = q.owner_id {
        b.push(" AND owner_id = ").push_bind(owner);
    }
    if let Some(tag) = &q.tag {
        b.push(" AND tags @> ARRAY[")
            .push_bind(tag.clone())
            .push("]::text[]");
    }
    if let Some(status) = q.status {
        b.push(" AND lifecycle_status = ")
            .push_bind(status.as_str());
    }
    if let Some(account) = q.account_id {
        b.push(" AND account_id = ").push_bind(account);
    }
    if let Some(text) = &q.text {
        table.push_search(b, text);
    }
    if let Some(condition) = &q.condition {
        b.push(" AND ");
        condition.push_sql(b);
    }
}

/// `SELECT <what> FROM <table>` over live rows in `scope` matching the filters of `q`.
pub fn select(
    what: &'static str,
    table: &'static Table,
    q: &ListQuery,
    scope: &Scope,
) -> QueryBuilder<Postgres> {
    let mut b = table.select(what, scope);
    push_filters(&mut b, q, table);
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
