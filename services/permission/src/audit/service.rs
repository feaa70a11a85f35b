//! The use cases of the audit trail: writing entries from events ([`AuditHandler`], run by
//! [`follow_sources`] as an idempotent consumer of the event topics), and reading a page of
//! them as one reader may see it ([`Audit::list`]).

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use crm_access::Scope;
use crm_events::{Envelope, EventError};
use crm_lifecycle::CancellationToken;
use crm_proto::permission as pb;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::domain::{AuditEntry, AuditPage, AuditQuery, FieldView, entry_from};
use super::store;
use crate::access::Access;
use crate::error::Result;
use crate::org::domain::{Action, Resource};
use crate::settings::AuditSettings;

/// Writes entries from events (inside the consumer's exactly-once transaction). The services'
/// declarations of their resources travel the same topics: they go to the registry
/// ([`crate::registry`]) instead, since they record no one's action.
pub struct AuditHandler;

impl crm_events::consumer::Handler for AuditHandler {
    async fn handle(&self, tx: &mut PgConnection, event: &Envelope) -> Result<(), EventError> {
        if crm_record::registry::Declaration::is_declaration(&event.event_type) {
            return crate::registry::service::apply_event(tx, event).await;
        }
        let entry = entry_from(event, crm_telemetry::current_trace_id());
        store::insert(tx, &entry).await.map_err(EventError::Db)
    }
}

/// Makes the audit trail from the event topics until `stop`. The replicas share
/// the partitions through leases in this service's database, and commit each partition's offset
/// with the audit entries (`crm_events::consumer`, ADR 0013), so a replica killed and restarted,
/// alone or not, resumes from its last entry within one `kafka.session_timeout_ms`. The topics
/// are made first (a topic that does not exist has no partitions to read yet); a broker that is
/// not there yet is retried.
pub async fn follow_sources(
    pool: sqlx::PgPool,
    kafka: crm_settings::KafkaSettings,
    audit: AuditSettings,
    own_topic: String,
    stop: CancellationToken,
) {
    let mut topics = audit.topics.clone();
    if !topics.contains(&own_topic) {
        topics.push(own_topic);
    }
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let mut delay = Duration::from_millis(200);
    while let Err(err) = crm_events::kafka::ensure_topics(&kafka, &names).await {
        tracing::warn!(error = %err, "audit: cannot make sure the source topics exist yet");
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
    match crm_events::consumer::IdempotentConsumer::new(
        &audit.consumer_group,
        &kafka,
        &names,
        pool,
        AuditHandler,
    ) {
        Ok(consumer) => consumer.run(stop).await,
        Err(err) => tracing::error!(error = %err, "audit consumer could not start"),
    }
}

/// Reading the trail.
#[derive(Clone)]
pub struct Audit {
    pool: PgPool,
    decisions: Access,
}

impl Audit {
    pub fn new(pool: PgPool) -> Self {
        Self {
            decisions: Access::new(pool.clone()),
            pool,
        }
    }

    /// One page of entries for `reader`, whose READ scope on the trail is `scope`: narrower
    /// than everything, only the actions of the users it covers. The table keeps everything;
    /// the reader sees each entry through their own field rules.
    pub async fn list(
        &self,
        reader: Uuid,
        scope: &Scope,
        mut query: AuditQuery,
    ) -> Result<AuditPage> {
        if !scope.all {
            // Narrower than everything: the actions of the users the scope covers.
            query.visible_actors = Some(scope.owner_ids.clone());
        }
        let mut page = {
            let mut conn = self.pool.acquire().await?;
            store::list(&mut conn, &query).await?
        };
        let views = self.field_views(reader, &page.entries).await?;
        for entry in &mut page.entries {
            if let Some(view) = views.get(&entry.resource) {
                entry.redact(view);
            }
        }
        Ok(page)
    }

    /// The reader's view of each resource the entries are about, compiled once per resource
    /// (`CompileScope`'s own code, READ). Entries about what is not a registered resource
    /// (sign-ins, roles, users, …: nothing a grant or field rule can name) get none and pass
    /// unchanged.
    async fn field_views(
        &self,
        reader: Uuid,
        entries: &[AuditEntry],
    ) -> Result<HashMap<String, FieldView>> {
        let resources: BTreeSet<&str> = entries.iter().map(|e| e.resource.as_str()).collect();
        let registered = crate::registry::store::names(&self.pool).await?;
        let mut views = HashMap::with_capacity(resources.len());
        for name in resources {
            let Some(resource) = Resource::parse(name).filter(|_| registered.contains(name)) else {
                continue;
            };
            let compiled = self
                .decisions
                .compile_scope(reader, resource, Action::Read)
                .await?;
            // The wire form services get, read back with the code they use (`Scope::show`):
            // deliberately through `pb::CompiledScope`, so the trail masks exactly as they do.
            let scope = Scope::try_from(pb::CompiledScope::from(compiled))?;
            views.insert(name.to_string(), FieldView::of_read_scope(scope));
        }
        Ok(views)
    }
}
