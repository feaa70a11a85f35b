//! The use cases of custom fields ([`CustomFields`]): define, change, (de)activate, delete and
//! purge definitions; and what the owning service's record writes call ([`CustomFields::schema`],
//! [`check_unique`]).
//!
//! Every definition change is one transaction with its event (`<service>.field.defined`,
//! `.changed`, `.deleted`: the audit trail keeps them with before and after) and a new
//! declaration of the service's resources to the permission service's registry, so field rules,
//! masks and the audit view know the field from the moment it exists.

use chrono::Utc;
use crm_access::{Access, Action, Resource};
use crm_errors::{ApiError, Code, FieldViolation};
use crm_events::outbox::{NewEvent, Outbox};
use crm_record::Table;
use crm_record::registry::{Declaration, DeclaredField};
use serde_json::{Map, Value, json};
use sqlx::{PgConnection, PgPool};

use crate::definition::{Definition, DefinitionPatch, MAX_FIELDS, NewDefinition};
use crate::index::Indexer;
use crate::values::Schema;
use crate::{Result, store};

/// Who may change the data model (fields, layouts, rules): a platform resource owned by the
/// permission service; only its grants (any data scope) matter.
pub const CUSTOMIZATION: Resource = Resource::named("customization");

/// The job that removes a deleted field's values from its records, in batches.
pub const PURGE_JOB: &str = "fields.purge";
/// Records a purge batch changes in one transaction.
pub const PURGE_BATCH: i64 = 5_000;

/// An entity of the owning service that has custom fields.
#[derive(Debug, Clone, Copy)]
pub struct Entity {
    pub resource: Resource,
    /// Its record table, which has a `custom JSONB` column.
    pub table: &'static Table,
}

/// Custom fields of one owning service's entities.
#[derive(Clone)]
pub struct CustomFields {
    pool: PgPool,
    outbox: Outbox,
    /// The service's name: the first segment of its event types.
    service: &'static str,
    entities: &'static [Entity],
    /// The service's declaration of its built-in fields, which custom fields are added to.
    base: Declaration,
    /// Builds and drops the indexes of `indexed` fields ([`crate::index`]).
    indexer: Indexer,
}

impl CustomFields {
    pub fn new(
        pool: PgPool,
        outbox: Outbox,
        service: &'static str,
        entities: &'static [Entity],
        base: Declaration,
    ) -> Self {
        Self {
            indexer: Indexer::new(pool.clone(), entities),
            pool,
            outbox,
            service,
            entities,
            base,
        }
    }

    /// The index builder of these fields, for the service's background tasks
    /// ([`Indexer::run`]).
    pub fn indexer(&self) -> &Indexer {
        &self.indexer
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The entity named `name`, if it has custom fields here (else NOT_FOUND).
    pub fn entity(&self, name: &str) -> Result<Entity> {
        self.entities
            .iter()
            .copied()
            .find(|e| e.resource.as_str() == name)
            .ok_or_else(|| ApiError::not_found(&format!("entity {name:?}")).into())
    }

    fn targets(&self) -> Vec<&'static str> {
        self.entities.iter().map(|e| e.resource.as_str()).collect()
    }

    /// The definitions of `entity`, for anyone who may read its records (clients draw forms
    /// from them) or change the data model.
    pub async fn list(&self, access: &Access, entity: &str) -> Result<Vec<Definition>> {
        let e = self.entity(entity)?;
        may_read(access, e)?;
        let mut conn = self.pool.acquire().await?;
        Ok(store::schema(&mut conn, entity)
            .await?
            .definitions()
            .to_vec())
    }

    pub async fn get(&self, access: &Access, entity: &str, key: &str) -> Result<Definition> {
        let e = self.entity(entity)?;
        may_read(access, e)?;
        let mut conn = self.pool.acquire().await?;
        store::get(&mut conn, entity, key, false)
            .await?
            .ok_or_else(|| not_found(entity, key))
    }

    /// The schema a record write or read of `entity` goes by (in the caller's transaction, so
    /// a write is checked against the definitions it commits with).
    pub async fn schema(&self, conn: &mut PgConnection, entity: Resource) -> Result<Schema> {
        store::schema(conn, entity.as_str()).await
    }

    pub async fn create(
        &self,
        access: &Access,
        entity: &str,
        new: NewDefinition,
    ) -> Result<Definition> {
        let e = self.entity(entity)?;
        access.scope(CUSTOMIZATION, Action::Create)?;
        let targets = self.targets();
        let mut tx = self.pool.begin().await?;
        store::lock_entity(&mut tx, entity).await?;
        let (count, position) = store::count(&mut tx, entity).await?;
        let definition = new
            .check(entity, &targets, position, crm_record::now())
            .map_err(|v| ApiError::invalid(v.0))?;
        if count as usize >= MAX_FIELDS {
            return Err(ApiError::new(
                Code::FailedPrecondition,
                format!("{entity} already has {MAX_FIELDS} custom fields"),
            )
            .into());
        }
        if e.table.field(&definition.key).is_some() {
            return Err(ApiError::invalid(vec![FieldViolation::new(
                "key",
                format!("{entity} has a built-in field {:?}", definition.key),
            )])
            .into());
        }
        if store::key_taken(&mut tx, entity, &definition.key).await? {
            return Err(ApiError::new(
                Code::AlreadyExists,
                format!(
                    "{entity} has or had a custom field {:?} (keys of deleted fields are not reused)",
                    definition.key
                ),
            )
            .into());
        }
        store::insert(&mut tx, &definition).await?;
        self.config_event(
            &mut tx,
            access,
            ("field", "defined"),
            definition.id,
            &definition,
            Map::new(),
        )
        .await?;
        self.declare(&mut tx).await?;
        tx.commit().await?;
        self.outbox.notify_committed();
        self.indexer.wake();
        Ok(definition)
    }

    /// Changes a definition at `expected_version`. Making a field unique is refused while two
    /// records hold one value; deactivating one that configuration uses ([`Self::users`]) is
    /// refused unless `force`.
    pub async fn update(
        &self,
        access: &Access,
        entity: &str,
        key: &str,
        expected_version: i64,
        patch: DefinitionPatch,
        force: bool,
    ) -> Result<Definition> {
        let e = self.entity(entity)?;
        access.scope(CUSTOMIZATION, Action::Update)?;
        let targets = self.targets();
        let mut tx = self.pool.begin().await?;
        let current = store::get(&mut tx, entity, key, true)
            .await?
            .ok_or_else(|| not_found(entity, key))?;
        ApiError::check_version(expected_version, current.version)?;
        let mut next = patch
            .apply(&current, &targets, crm_record::now())
            .map_err(|v| ApiError::invalid(v.0))?;
        let changes = diff(&current, &next);
        if changes.is_empty() {
            return Ok(current);
        }
        if current.active && !next.active && !force {
            refuse_if_used(&mut tx, e, &current, "deactivate").await?;
        }
        if next.unique && !current.unique {
            let duplicated = duplicated_values(&mut tx, e.table, key).await?;
            if duplicated > 0 {
                return Err(ApiError::invalid(vec![FieldViolation::new(
                    "unique",
                    format!("{duplicated} value(s) are held by more than one record: make them unique first"),
                )])
                .into());
            }
        }
        next.version = current.version + 1;
        store::update(&mut tx, &next).await?;
        self.config_event(
            &mut tx,
            access,
            ("field", "changed"),
            next.id,
            &next,
            Map::from_iter([("changes".to_string(), Value::Object(changes))]),
        )
        .await?;
        self.declare(&mut tx).await?;
        tx.commit().await?;
        self.outbox.notify_committed();
        self.indexer.wake();
        Ok(next)
    }

    /// Deletes a definition. Without `purge`, only a field no record holds a value of; with
    /// it, the values go too (hidden at once, removed from the records in the background by
    /// the [`PURGE_JOB`]), and the event says how many records held one. A field configuration
    /// uses is kept unless `force`. The key is never reused.
    pub async fn delete(
        &self,
        access: &Access,
        entity: &str,
        key: &str,
        expected_version: Option<i64>,
        purge: bool,
        force: bool,
    ) -> Result<i64> {
        let e = self.entity(entity)?;
        access.scope(CUSTOMIZATION, Action::Delete)?;
        let mut tx = self.pool.begin().await?;
        let current = store::get(&mut tx, entity, key, true)
            .await?
            .ok_or_else(|| not_found(entity, key))?;
        if !force {
            refuse_if_used(&mut tx, e, &current, "delete").await?;
        }
        if let Some(expected) = expected_version {
            ApiError::check_version(expected, current.version)?;
        }
        let holders = store::holders(&mut tx, e.table.name, key).await?;
        if holders > 0 && !purge {
            return Err(ApiError::new(
                Code::FailedPrecondition,
                format!(
                    "{holders} record(s) hold a value of {}: deactivate the field to hide it, or delete with purge=true to erase the values too",
                    current.name()
                ),
            )
            .into());
        }
        let now = crm_record::now();
        store::delete(&mut tx, &current, now).await?;
        if holders > 0 {
            crm_jobs::schedule(
                &mut tx,
                &crm_jobs::NewJob {
                    kind: PURGE_JOB.into(),
                    key: Some(format!("{}:{key}", e.table.name)),
                    payload: json!({ "table": e.table.name, "key": key }),
                    run_at: now,
                },
            )
            .await
            .map_err(|crm_jobs::JobError::Db(e)| crate::Error::Db(e))?;
        }
        self.config_event(
            &mut tx,
            access,
            ("field", "deleted"),
            current.id,
            &current,
            Map::from_iter([("purged_records".to_string(), json!(holders))]),
        )
        .await?;
        self.declare(&mut tx).await?;
        tx.commit().await?;
        self.outbox.notify_committed();
        self.indexer.wake();
        Ok(current.version + 1)
    }

    /// The event of a configuration change, `<service>.<kind>.<verb>` with the actor, the
    /// thing as it is now under `kind` and `extra` (a change's `changes`, a purge's count): what
    /// the audit trail keeps.
    pub(crate) async fn config_event(
        &self,
        tx: &mut PgConnection,
        access: &Access,
        (kind, verb): (&str, &str),
        id: uuid::Uuid,
        thing: &impl serde::Serialize,
        extra: Map<String, Value>,
    ) -> Result<()> {
        let mut data = extra;
        data.insert("actor".into(), access.actor());
        data.insert(
            kind.into(),
            serde_json::to_value(thing).map_err(|e| crate::Error::Corrupt(e.to_string()))?,
        );
        self.outbox
            .enqueue(
                tx,
                NewEvent {
                    event_type: format!("{}.{kind}.{verb}", self.service),
                    subject: id.to_string(),
                    data: Value::Object(data),
                },
            )
            .await?;
        Ok(())
    }

    /// Enqueues the service's whole declaration (built-in fields and the active custom ones),
    /// in the transaction of the change that calls for it.
    async fn declare(&self, tx: &mut PgConnection) -> Result<()> {
        let declaration = self.declaration(tx).await?;
        crm_record::registry::enqueue(tx, &self.outbox, &declaration).await?;
        Ok(())
    }

    /// The service's declaration with its active custom fields: what it declares at start and
    /// after every definition change.
    pub async fn declaration(&self, conn: &mut PgConnection) -> Result<Declaration> {
        declaration(conn, self.base.clone(), self.entities).await
    }
}

/// What of the entity's configuration uses `field` (issue 11, section 4): validation rules
/// whose condition names it or that report at it. Layouts, segments and automation rules join
/// as they are built; field rules and sharing conditions live in the permission service.
pub async fn users(
    conn: &mut PgConnection,
    entity: Entity,
    field: &Definition,
) -> Result<Vec<String>> {
    let name = field.name();
    let custom = store::schema(conn, entity.resource.as_str()).await?;
    let everything = crm_access::Scope::everything();
    let fields = crate::filter::RecordFields {
        table: entity.table,
        custom: &custom,
        scope: &everything,
    };
    let mut users = Vec::new();
    for rule in store::rules(conn, entity.resource.as_str()).await? {
        let reports_at = rule.field.as_deref() == Some(name.as_str());
        let tests =
            crm_condition::compile(&rule.condition, &fields, chrono_tz::UTC, chrono::Utc::now())
                .is_ok_and(|c| c.fields().contains(&name));
        if reports_at || tests {
            users.push(format!("validation rule {}", rule.key));
        }
    }
    Ok(users)
}

/// FAILED_PRECONDITION naming what uses `field`, if anything does.
async fn refuse_if_used(
    conn: &mut PgConnection,
    entity: Entity,
    field: &Definition,
    doing: &str,
) -> Result<()> {
    let users = users(conn, entity, field).await?;
    if users.is_empty() {
        return Ok(());
    }
    Err(ApiError::new(
        Code::FailedPrecondition,
        format!(
            "{} is used by {}: change those first, or {doing} with force=true (they then no longer apply)",
            field.name(),
            users.join(", ")
        ),
    )
    .into())
}

/// `base` with the active custom fields of `entities` added to their resources.
pub async fn declaration(
    conn: &mut PgConnection,
    mut base: Declaration,
    entities: &[Entity],
) -> Result<Declaration> {
    let names: Vec<&str> = entities.iter().map(|e| e.resource.as_str()).collect();
    for d in store::all(conn, &names).await? {
        if !d.active {
            continue;
        }
        if let Some(r) = base.resources.iter_mut().find(|r| r.name == d.entity) {
            r.fields.push(DeclaredField {
                name: d.name(),
                kind: d.field_type.kind().as_str().to_string(),
                governed: true,
                // Sharing rules' conditions test built-in columns; custom fields join them
                // with the condition language.
                condition: false,
                custom: true,
            });
        }
    }
    Ok(base)
}

/// Checks that no other live record of `table` holds the unique values a write sets, under a
/// lock per value until the write's transaction ends. The answer names the field, never the
/// record that holds the value (it may be outside the caller's scope).
pub async fn check_unique(
    conn: &mut PgConnection,
    table: &Table,
    record: uuid::Uuid,
    unique: &[crate::values::Claim],
) -> Result<()> {
    let mut violations = Vec::new();
    for claim in unique {
        store::lock_value(conn, table.name, &claim.key, &claim.value).await?;
        if store::value_taken(conn, table.name, claim, record).await? {
            violations.push(FieldViolation::new(
                crate::definition::name(&claim.key),
                "another record already has this value",
            ));
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(violations).into())
    }
}

/// How many values of `key` more than one live record holds.
async fn duplicated_values(conn: &mut PgConnection, table: &Table, key: &str) -> Result<i64> {
    let sql = format!(
        "SELECT count(*) FROM (SELECT custom -> $1 FROM {} WHERE deleted_at IS NULL AND custom ? $1
                               GROUP BY custom -> $1 HAVING count(*) > 1) d",
        table.name
    );
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(key)
        .fetch_one(conn)
        .await?)
}

/// The parts of a configuration object (a definition, a rule) that differ, its version and
/// time aside: `{part: {old, new}}`.
pub(crate) fn diff(
    before: &impl serde::Serialize,
    after: &impl serde::Serialize,
) -> Map<String, Value> {
    let (Ok(Value::Object(b)), Ok(Value::Object(a))) =
        (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return Map::new();
    };
    let mut changes = Map::new();
    for (k, new) in &a {
        if matches!(k.as_str(), "updated_at" | "version") {
            continue;
        }
        let old = b.get(k).cloned().unwrap_or(Value::Null);
        if &old != new {
            changes.insert(k.clone(), json!({ "old": old, "new": new }));
        }
    }
    for (k, old) in &b {
        if !a.contains_key(k) {
            changes.insert(k.clone(), json!({ "old": old, "new": null }));
        }
    }
    changes
}

fn may_read(access: &Access, e: Entity) -> Result<()> {
    if access.scope(e.resource, Action::Read).is_ok()
        || access.scope(CUSTOMIZATION, Action::Read).is_ok()
    {
        return Ok(());
    }
    Err(crm_access::denied(e.resource, Action::Read).into())
}

fn not_found(entity: &str, key: &str) -> crate::Error {
    ApiError::not_found(&format!("custom field {entity}.{key}")).into()
}

/// Removes a deleted field's values from its records, one batch per run (the [`PURGE_JOB`]).
pub struct Purge;

impl crm_jobs::Handler for Purge {
    fn run<'a>(
        &'a self,
        job: &'a crm_jobs::Job,
        tx: &'a mut PgConnection,
    ) -> crm_jobs::HandlerFuture<'a> {
        Box::pin(async move {
            let table = job.payload["table"].as_str().unwrap_or_default();
            let key = job.payload["key"].as_str().unwrap_or_default();
            // Only names this crate wrote: a table constant and a checked key.
            if !crm_record::registry::valid_field_name(table)
                || !crate::definition::is_valid_key(key)
            {
                return Err(format!("bad purge job payload {}", job.payload).into());
            }
            let changed = store::purge_batch(tx, table, key, PURGE_BATCH).await?;
            tracing::info!(table, key, changed, "custom field values purged");
            Ok(if changed == 0 {
                crm_jobs::Outcome::Done
            } else {
                // Due at once again: the next batch runs in its own transaction.
                crm_jobs::Outcome::Later(job.run_at.min(Utc::now()))
            })
        })
    }
}
