//! The registry's use cases: applying an owner's declaration, the checks the organisation and
//! sharing use cases make inside their transactions, and reading it.

use crm_errors::{ApiError, FieldViolation};
use crm_events::{Envelope, EventError};
use crm_record::registry::Declaration;
use sqlx::{PgConnection, PgPool};

use super::domain::{RegisteredResource, condition_refusal, rule_refusal};
use super::store;
use crate::error::Result;
use crate::org::domain::{MaskKind, Resource};

/// Applies a declaration event (inside the consumer's transaction). A malformed declaration, or
/// one claiming a resource another service owns, is a bug of its sender: logged and skipped,
/// so it cannot stop the consumer behind it.
pub async fn apply_event(tx: &mut PgConnection, event: &Envelope) -> Result<(), EventError> {
    let declaration: Declaration = match serde_json::from_value(event.data.clone()) {
        Ok(d) => d,
        Err(err) => {
            tracing::warn!(event_type = %event.event_type, error = %err, "malformed resource declaration; skipped");
            return Ok(());
        }
    };
    apply(tx, &declaration, event.time)
        .await
        .map_err(|err| match err {
            crate::error::Error::Db(db) => EventError::Db(db),
            other => EventError::Malformed(other.to_string()),
        })
}

async fn apply(
    conn: &mut PgConnection,
    declaration: &Declaration,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    let problems = declaration.problems();
    if !problems.is_empty() {
        tracing::warn!(owner = %declaration.owner, ?problems, "invalid resource declaration; skipped");
        return Ok(());
    }
    for resource in &declaration.resources {
        match store::owner(conn, &resource.name).await? {
            Some(owner) if owner != declaration.owner => {
                tracing::warn!(
                    resource = %resource.name,
                    %owner,
                    claimed_by = %declaration.owner,
                    "a service declared a resource another service owns; skipped"
                );
            }
            _ => store::upsert(conn, &declaration.owner, resource, at).await?,
        }
    }
    tracing::info!(owner = %declaration.owner, resources = declaration.resources.len(), "resources declared");
    Ok(())
}

/// Applies `declaration` now, outside any event: for tools and tests that stand in for an
/// owning service.
pub async fn declare(pool: &PgPool, declaration: &Declaration) -> Result<()> {
    let mut tx = pool.begin().await?;
    apply(&mut tx, declaration, crate::events::now()).await?;
    tx.commit().await?;
    Ok(())
}

fn invalid(path: &str, reason: String) -> crate::error::Error {
    ApiError::invalid(vec![FieldViolation::new(path, reason)]).into()
}

/// Refuses a resource the registry does not hold (`path` names the request field).
pub async fn require_resource(
    conn: &mut PgConnection,
    resource: Resource,
    path: &str,
) -> Result<()> {
    match store::owner(conn, resource.as_str()).await? {
        Some(_) => Ok(()),
        None => Err(invalid(
            path,
            format!("{resource} is not a registered resource"),
        )),
    }
}

/// Refuses a field rule naming a field the registry does not hold for the resource, one no
/// rule may govern, or a mask on a value that is not text.
pub async fn require_rule_field(
    conn: &mut PgConnection,
    resource: Resource,
    field: &str,
    mask: Option<MaskKind>,
    (resource_path, field_path): (&str, &str),
) -> Result<()> {
    require_resource(conn, resource, resource_path).await?;
    let registered = store::field(conn, resource.as_str(), field).await?;
    match rule_refusal(resource.as_str(), field, registered.as_ref(), mask) {
        None => Ok(()),
        Some(reason) => Err(invalid(field_path, reason)),
    }
}

/// Refuses a sharing condition on a field not declared for conditions.
pub async fn require_condition_field(
    conn: &mut PgConnection,
    resource: Resource,
    field: &str,
    path: &str,
) -> Result<()> {
    let registered = store::field(conn, resource.as_str(), field).await?;
    match condition_refusal(resource.as_str(), field, registered.as_ref()) {
        None => Ok(()),
        Some(reason) => Err(invalid(path, reason)),
    }
}

/// Reading the registry.
#[derive(Clone)]
pub struct Registry {
    pool: PgPool,
}

impl Registry {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub async fn list(&self) -> Result<Vec<RegisteredResource>> {
        store::list(&self.pool).await
    }
}
