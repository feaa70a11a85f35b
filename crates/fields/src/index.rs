//! Indexes on custom fields, built by the owning service itself, online: an administrator marks
//! a field `indexed` (a `unique` one is indexed too) and never runs a migration.
//!
//! [`Indexer`] reconciles what the definitions ask for with what the record tables have: every
//! live indexed field gets `cf_<table>_<key>`, built with `CREATE INDEX CONCURRENTLY` (writes go
//! on meanwhile), and an index whose field is no longer indexed (or deleted) is dropped the same
//! way. It runs at start, after every definition change in this process, and every
//! [`RECHECK`] (so a change made through another replica is picked up), one replica at a time
//! (a session advisory lock). A build that died half-way leaves an INVALID index, which the
//! next pass drops and builds again.
//!
//! Why not a `crm-jobs` job: `CREATE INDEX CONCURRENTLY` cannot run inside a transaction, and a
//! job's effect commits in the job's. Desired state plus reconciliation survives restarts just
//! the same: the definitions are the record of what must exist.
//!
//! The indexed expressions are the ones the condition language compiles to
//! (`crm_condition`, ADR 0017), so `filter=` uses them: `((custom ->> 'key') COLLATE "C")` for
//! text-like values (text, choices, ids, dates and date-times in their fixed-width forms,
//! booleans), `((custom ->> 'key')::numeric)` for numbers; both partial on live rows. A multi
//! select's elements are not indexed by these (a GIN index the condition's SQL cannot use yet).

use std::sync::Arc;
use std::time::Duration;

use sqlx::{AssertSqlSafe, PgConnection, PgPool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::Result;
use crate::definition::{Definition, FieldType, is_valid_key};
use crate::service::Entity;
use crate::store;

/// How often a replica looks for changes made elsewhere.
pub const RECHECK: Duration = Duration::from_secs(30);

/// What a reconciliation pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    /// Index names built.
    pub built: Vec<String>,
    /// Index names dropped.
    pub dropped: Vec<String>,
    /// Another replica held the lock: nothing was looked at.
    pub skipped: bool,
}

/// Keeps custom fields' indexes as their definitions say.
#[derive(Clone)]
pub struct Indexer {
    pool: PgPool,
    entities: &'static [Entity],
    wake: Arc<Notify>,
}

impl Indexer {
    pub fn new(pool: PgPool, entities: &'static [Entity]) -> Self {
        Self {
            pool,
            entities,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Asks for a pass now (after a definition change).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Passes until `stop`: at once, when woken, and every [`RECHECK`]. Failures are logged and
    /// retried at the next pass.
    pub async fn run(self, stop: CancellationToken) {
        loop {
            match self.reconcile().await {
                Ok(pass) if !pass.built.is_empty() || !pass.dropped.is_empty() => {
                    tracing::info!(built = ?pass.built, dropped = ?pass.dropped, "custom field indexes reconciled");
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "custom field indexes: pass failed; retrying")
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(RECHECK) => {}
            }
        }
    }

    /// One pass over every entity, under the lock (skipped when another replica holds it).
    pub async fn reconcile(&self) -> Result<Pass> {
        let mut conn = self.pool.acquire().await?;
        let locked: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_lock(hashtext('custom_fields'), hashtext('indexes'))",
        )
        .fetch_one(&mut *conn)
        .await?;
        if !locked {
            return Ok(Pass {
                skipped: true,
                ..Default::default()
            });
        }
        let pass = self.pass(&mut conn).await;
        sqlx::query("SELECT pg_advisory_unlock(hashtext('custom_fields'), hashtext('indexes'))")
            .execute(&mut *conn)
            .await?;
        pass
    }

    async fn pass(&self, conn: &mut PgConnection) -> Result<Pass> {
        let mut pass = Pass::default();
        let names: Vec<&str> = self.entities.iter().map(|e| e.resource.as_str()).collect();
        let definitions = store::all(conn, &names).await?;
        for entity in self.entities {
            let table = entity.table.name;
            let wanted: Vec<(String, String)> = definitions
                .iter()
                .filter(|d| d.entity == entity.resource.as_str() && d.indexed)
                .filter_map(|d| index_sql(table, d).map(|sql| (index_name(table, &d.key), sql)))
                .collect();
            let existing: Vec<(String, bool)> = sqlx::query_as(
                "SELECT c.relname::text, i.indisvalid
                   FROM pg_index i
                   JOIN pg_class c ON c.oid = i.indexrelid
                   JOIN pg_class t ON t.oid = i.indrelid
                  WHERE t.relname = $1 AND c.relname LIKE 'cf\\_%'",
            )
            .bind(table)
            .fetch_all(&mut *conn)
            .await?;
            for (name, valid) in &existing {
                let keep = *valid && wanted.iter().any(|(w, _)| w == name);
                if !keep {
                    drop_index(conn, name).await?;
                    if !wanted.iter().any(|(w, _)| w == name) {
                        pass.dropped.push(name.clone());
                    }
                }
            }
            for (name, sql) in wanted {
                let present = existing.iter().any(|(n, valid)| *n == name && *valid);
                if !present {
                    sqlx::query(AssertSqlSafe(sql)).execute(&mut *conn).await?;
                    pass.built.push(name);
                }
            }
        }
        Ok(pass)
    }
}

async fn drop_index(conn: &mut PgConnection, name: &str) -> Result<()> {
    // Only names this module made (`cf_` + a table constant + a checked key) reach here.
    sqlx::query(AssertSqlSafe(format!(
        "DROP INDEX CONCURRENTLY IF EXISTS {name}"
    )))
    .execute(conn)
    .await?;
    Ok(())
}

/// What the index of `key` holds, and what queries that should use it compare: the stored
/// value as text under the "C" collation, or as a number. `key` must be a valid key.
pub(crate) fn expression(key: &str, numeric: bool) -> String {
    if numeric {
        format!("(custom ->> '{key}')::numeric")
    } else {
        format!("(custom ->> '{key}') COLLATE \"C\"")
    }
}

/// `cf_<table>_<key>`.
pub fn index_name(table: &str, key: &str) -> String {
    format!("cf_{table}_{key}")
}

/// The statement that builds `d`'s index on `table`; `None` for a field no btree serves (a
/// multi select) or a key that is not one (never for a stored definition).
pub fn index_sql(table: &str, d: &Definition) -> Option<String> {
    if !is_valid_key(&d.key) {
        return None;
    }
    let key = &d.key;
    if d.field_type == FieldType::MultiSelect {
        return None;
    }
    let expression = format!("({})", expression(key, d.field_type.is_numeric()));
    Some(format!(
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON {table} ({expression}) WHERE deleted_at IS NULL",
        index_name(table, key)
    ))
}
