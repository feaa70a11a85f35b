//! Who is acting, for the events of administration calls made through the gateway: the caller's
//! access context (`crm-access-bin`) names them. Held in a task-local for the duration of one
//! call, so every event the call writes (through `events::enqueue` or `OrgTx::event`) says who
//! did it — the audit trail's "who" for permission changes.
//!
//! A call that acts for a user is also checked: the user must hold the organisation grant for
//! the action (the gateway checked already; the service does not take it on trust). A call made
//! by a service as itself got here only because `identity.callers.<it>.rpcs` grants it this
//! method (checked by `crm_identity` before any handler runs, ADR 0012); its events name that
//! service as the actor. There is no third kind: an unverified call never reaches a handler.

use crm_access::{Action, Resource};
use crm_identity::Caller;
use serde_json::Value;
use uuid::Uuid;

tokio::task_local! {
    static ACTOR: Value;
}

/// The verified caller of `request` (set by `crm_identity`'s layer before any handler runs).
pub fn caller<T>(request: &tonic::Request<T>) -> Option<Caller> {
    request.extensions().get::<Caller>().cloned()
}

/// The actor of the current call, if it came with an access context.
pub fn current() -> Option<Value> {
    ACTOR.try_with(Clone::clone).ok()
}

/// Runs `work` as the verified `caller`, after checking that a user may `action` the
/// organisation.
pub async fn scoped<T>(
    caller: Option<Caller>,
    action: Action,
    work: impl Future<Output = Result<T, tonic::Status>>,
) -> Result<T, tonic::Status> {
    let caller = caller
        .ok_or_else(|| tonic::Status::unauthenticated("the call carries no verified identity"))?;
    let actor = match &caller.access {
        Some(access) => {
            access.scope(Resource::ORGANISATION, action)?;
            access.actor()
        }
        None => serde_json::json!({ "service": caller.principal }),
    };
    ACTOR.scope(actor, work).await
}

/// Like [`scoped`], with any one of `actions` enough (reading before a change: READ or UPDATE).
pub async fn scoped_any<T>(
    caller: Option<Caller>,
    actions: &[Action],
    work: impl Future<Output = Result<T, tonic::Status>>,
) -> Result<T, tonic::Status> {
    scoped_for(caller, None, actions, work).await
}

/// Like [`scoped_any`], for methods about one user's own record (reading it, changing their own
/// profile): a user acting on `subject` — themselves — needs no grant; anyone else needs the
/// organisation grant for one of `actions`. A service calling as itself passed its grants
/// already.
pub async fn scoped_or_self<T>(
    caller: Option<Caller>,
    subject: Uuid,
    actions: &[Action],
    work: impl Future<Output = Result<T, tonic::Status>>,
) -> Result<T, tonic::Status> {
    scoped_for(caller, Some(subject), actions, work).await
}

async fn scoped_for<T>(
    caller: Option<Caller>,
    subject: Option<Uuid>,
    actions: &[Action],
    work: impl Future<Output = Result<T, tonic::Status>>,
) -> Result<T, tonic::Status> {
    let caller = caller
        .ok_or_else(|| tonic::Status::unauthenticated("the call carries no verified identity"))?;
    let actor = match &caller.access {
        Some(access) => {
            if subject != Some(access.user_id) {
                let granted = actions
                    .iter()
                    .any(|&action| access.scope(Resource::ORGANISATION, action).is_ok());
                if !granted {
                    let action = actions.first().copied().unwrap_or(Action::Read);
                    return Err(crm_access::denied(Resource::ORGANISATION, action).into());
                }
            }
            access.actor()
        }
        None => serde_json::json!({ "service": caller.principal }),
    };
    ACTOR.scope(actor, work).await
}

/// Adds the current actor to an event's data (unless it names one already).
pub fn stamp(data: &mut Value) {
    if let (Some(actor), Some(object)) = (current(), data.as_object_mut()) {
        object.entry("actor").or_insert(actor);
    }
}
