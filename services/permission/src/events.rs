//! What every use case that writes shares: [`enqueue`] puts its event into the transactional
//! outbox, in the caller's transaction, stamped with the actor of the call ([`crate::actor`]);
//! [`now`] is the time every write stores. Organisation writes go through
//! [`crate::org::service::OrgTx`], which adds the permission version.

use chrono::{DateTime, SubsecRound, Utc};
use crm_events::outbox::{NewEvent, Outbox};
use sqlx::PgConnection;

use crate::error::Result;

/// Postgres keeps microseconds: what a write returns must equal what a later read returns.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Enqueues one event in `tx`, with the current actor added to `data`.
pub async fn enqueue(
    outbox: &Outbox,
    tx: &mut PgConnection,
    event_type: &str,
    subject: String,
    data: serde_json::Value,
) -> Result<()> {
    let mut data = data;
    crate::actor::stamp(&mut data);
    outbox
        .enqueue(
            tx,
            NewEvent {
                event_type: event_type.into(),
                subject,
                data,
            },
        )
        .await?;
    Ok(())
}
