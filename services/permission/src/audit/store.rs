//! SQL for the audit trail (`audit_entries`, append only: a trigger refuses updates and
//! deletes).

use sqlx::{PgConnection, Postgres, QueryBuilder};

use super::domain::{AuditEntry, AuditPage, AuditQuery, page_token};
use crate::error::Result;

/// Writes an entry; an entry already written (a redelivered event) changes nothing.
pub async fn insert(conn: &mut PgConnection, e: &AuditEntry) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_entries (id, occurred_at, event_type, source, resource, record_id,
                                    action, actor_user_id, api_client_id, client_ip, user_agent,
                                    trace_id, changes, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(e.id)
    .bind(e.occurred_at)
    .bind(&e.event_type)
    .bind(&e.source)
    .bind(&e.resource)
    .bind(&e.record_id)
    .bind(&e.action)
    .bind(e.actor_user_id)
    .bind(&e.api_client_id)
    .bind(&e.client_ip)
    .bind(&e.user_agent)
    .bind(&e.trace_id)
    .bind(&e.changes)
    .bind(&e.details)
    .execute(conn)
    .await?;
    Ok(())
}

/// One page of entries, newest first, and the token of the next page when there is one.
pub async fn list(conn: &mut PgConnection, q: &AuditQuery) -> Result<AuditPage> {
    let mut b: QueryBuilder<Postgres> = QueryBuilder::new(
        "SELECT id, occurred_at, event_type, source, resource, record_id, action, actor_user_id,
                api_client_id, client_ip, user_agent, trace_id, changes, details
           FROM audit_entries WHERE true",
    );
    if let Some(actors) = &q.visible_actors {
        b.push(" AND actor_user_id = ANY(")
            .push_bind(actors.clone())
            .push(")");
    }
    if let Some(record) = &q.record_id {
        b.push(" AND record_id = ").push_bind(record.clone());
    }
    if let Some(actor) = q.actor_user_id {
        b.push(" AND actor_user_id = ").push_bind(actor);
    }
    if let Some(from) = q.from {
        b.push(" AND occurred_at >= ").push_bind(from);
    }
    if let Some(to) = q.to {
        b.push(" AND occurred_at < ").push_bind(to);
    }
    if let Some((t, id)) = q.after {
        b.push(" AND (occurred_at, id) < (")
            .push_bind(t)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    b.push(" ORDER BY occurred_at DESC, id DESC LIMIT ")
        .push_bind(q.page_size + 1);
    let mut entries: Vec<AuditEntry> = b.build_query_as().fetch_all(conn).await?;
    let more = entries.len() as i64 > q.page_size;
    entries.truncate(q.page_size as usize);
    let next_page_token = more.then(|| {
        let last = entries.last().expect("a full page has a last entry");
        page_token(last.occurred_at, last.id)
    });
    Ok(AuditPage {
        entries,
        next_page_token,
    })
}
