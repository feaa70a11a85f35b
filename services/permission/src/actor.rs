//! Who is acting, for the events of administration calls made through the gateway: the caller's
//! access context (`crm-access-bin`) names them. Held in a task-local for the duration of one
//! call, so every event the call writes (through `service::enqueue` or `OrgTx::event`) says who
//! did it — the audit trail's "who" for permission changes.
//!
//! A call with a context is also checked: its caller must hold the organisation grant for the
//! action (the gateway checked already; the service does not take it on trust). A call without
//! one comes from inside the cluster (administration tools, other services) and is trusted, as
//! before: the network policy keeps everyone else out.

use crm_access::{Access, Action, Resource};
use serde_json::Value;
use tonic::metadata::MetadataMap;

tokio::task_local! {
    static ACTOR: Value;
}

/// The actor of the current call, if it came with an access context.
pub fn current() -> Option<Value> {
    ACTOR.try_with(Clone::clone).ok()
}

/// Runs `work` as the caller of `metadata`, after checking they may `action` the organisation.
pub async fn scoped<T>(
    metadata: &MetadataMap,
    action: Action,
    work: impl Future<Output = Result<T, tonic::Status>>,
) -> Result<T, tonic::Status> {
    match Access::from_metadata(metadata) {
        Ok(access) => {
            access.scope(Resource::Organisation, action)?;
            ACTOR.scope(access.actor(), work).await
        }
        // No context: an internal caller.
        Err(err) if err.code == crm_errors::Code::Unauthenticated => work.await,
        Err(err) => Err(err.into()),
    }
}

/// Adds the current actor to an event's data (unless it names one already).
pub fn stamp(data: &mut Value) {
    if let (Some(actor), Some(object)) = (current(), data.as_object_mut()) {
        object.entry("actor").or_insert(actor);
    }
}
