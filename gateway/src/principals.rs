//! Whether the user behind a valid token may still act (and, for `authz`, the newest
//! permission version): a token outlives a disabled account by
//! up to its lifetime, so the gateway asks.
//!
//! Each replica keeps `user id → active?` in memory, filled from the permission service
//! (`UserService.GetUser`) and forgotten after `ttl`. To act within a second rather than a TTL,
//! every replica also listens to the permission service's events (its own consumer group, from
//! the newest offset: it only needs what happens from now on) and forgets a user as soon as any
//! `permission.user.*` or `permission.session.*` event about them arrives; the next request asks
//! again and sees the new status.
//!
//! If the permission service cannot be asked, a known answer is kept for up to `stale_ttl`;
//! without one the request fails with 503, never silently in.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_events::Envelope;
use crm_proto::permission as pb;
use crm_proto::permission::user_service_client::UserServiceClient;
use crm_settings::KafkaSettings;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::error::Error;

#[derive(Clone)]
pub struct Principals {
    inner: Arc<Inner>,
}

struct Inner {
    /// Told the `permission_version` of every event, for the authorisation cache.
    versions: std::sync::OnceLock<crate::authz::PermissionVersion>,
    /// Set once the event consumer has partitions: from then on, no change is missed.
    following: tokio::sync::watch::Sender<bool>,
    users: UserServiceClient<crate::permission::Channel>,
    entries: Mutex<HashMap<Uuid, (bool, Instant)>>,
    ttl: Duration,
    stale_ttl: Duration,
}

impl Principals {
    pub fn new(channel: crate::permission::Channel, ttl: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                versions: std::sync::OnceLock::new(),
                following: tokio::sync::watch::channel(false).0,
                users: UserServiceClient::new(channel),
                entries: Mutex::new(HashMap::new()),
                ttl,
                stale_ttl: ttl.max(Duration::from_secs(600)),
            }),
        }
    }

    /// Also reports each event's permission version to `versions`.
    pub fn with_versions(self, versions: crate::authz::PermissionVersion) -> Self {
        let _ = self.inner.versions.set(versions);
        self
    }

    /// Whether `user` exists and is active.
    pub async fn is_active(&self, user: Uuid) -> Result<bool, Error> {
        let known = self.inner.entries.lock().await.get(&user).copied();
        if let Some((active, at)) = known
            && at.elapsed() < self.inner.ttl
        {
            return Ok(active);
        }
        let request = crate::permission::request(pb::GetUserRequest {
            id: user.to_string(),
        });
        let answer = self.inner.users.clone().get_user(request).await;
        let active = match answer {
            Ok(found) => found.into_inner().status == pb::UserStatus::Active as i32,
            Err(status) if status.code() == tonic::Code::NotFound => false,
            Err(status) => {
                return match known {
                    Some((active, at)) if at.elapsed() < self.inner.stale_ttl => {
                        tracing::warn!(grpc_code = ?status.code(), "permission service unavailable; using the last known user status");
                        Ok(active)
                    }
                    _ => Err(Error::from_status(status)),
                };
            }
        };
        self.inner
            .entries
            .lock()
            .await
            .insert(user, (active, Instant::now()));
        Ok(active)
    }

    /// Waits until the event consumer has joined (true) or `limit` passed (false). A replica
    /// that reports ready before this could miss a revocation made meanwhile.
    pub async fn wait_following(&self, limit: Duration) -> bool {
        let mut following = self.inner.following.subscribe();
        tokio::time::timeout(limit, following.wait_for(|f| *f))
            .await
            .is_ok()
    }

    pub async fn forget(&self, user: Uuid) {
        self.inner.entries.lock().await.remove(&user);
    }

    /// Follows the permission events until `stop`, forgetting each user they mention.
    pub async fn listen(self, kafka: KafkaSettings, topic: String, stop: CancellationToken) {
        // Subscribing to a topic that does not exist yet would wait for a metadata refresh.
        if let Err(err) = crm_events::kafka::ensure_topics(&kafka, &[topic.as_str()]).await {
            tracing::warn!(error = %err, %topic, "cannot make sure the permission topic exists");
        }
        let consumer: StreamConsumer = match crm_events::kafka::client_config(&kafka)
            // Every replica must see every event: a group of its own, nothing committed.
            .set(
                "group.id",
                format!("crm-gateway-{}", Uuid::new_v4().simple()),
            )
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "latest")
            // Notice a topic created after start-up within seconds, not minutes.
            .set("topic.metadata.refresh.interval.ms", "5000")
            .create()
        {
            Ok(consumer) => consumer,
            Err(err) => {
                tracing::error!(error = %err, "cannot follow permission events; user status is refreshed by TTL only");
                return;
            }
        };
        if let Err(err) = consumer.subscribe(&[topic.as_str()]) {
            tracing::error!(error = %err, "cannot subscribe to permission events");
            return;
        }
        let mut check = tokio::time::interval(Duration::from_millis(100));
        loop {
            let message = tokio::select! {
                _ = stop.cancelled() => break,
                m = consumer.recv() => m,
                // Partitions are assigned while the consumer polls; notice when that happened.
                _ = check.tick(), if !*self.inner.following.borrow() => {
                    if consumer.assignment().is_ok_and(|a| a.count() > 0) {
                        tracing::info!(%topic, "following permission events");
                        self.inner.following.send_replace(true);
                    }
                    continue;
                }
            };
            match message {
                Ok(message) => {
                    let Some(Ok(event)) = message.payload().map(Envelope::from_bytes) else {
                        continue;
                    };
                    if let Some(user) = user_of(&event) {
                        self.forget(user).await;
                    }
                    if let (Some(versions), Some(version)) = (
                        self.inner.versions.get(),
                        event
                            .data
                            .get("permission_version")
                            .and_then(|v| v.as_i64()),
                    ) {
                        versions.observe(version);
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "permission events: receive failed");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        consumer.unsubscribe();
    }
}

/// The user an event is about: the subject of user events, `user_id` in the data of others.
fn user_of(event: &Envelope) -> Option<Uuid> {
    if event.event_type.starts_with("permission.user.") {
        return Uuid::parse_str(&event.subject).ok();
    }
    if event.event_type.starts_with("permission.") {
        return event
            .data
            .get("user_id")
            .and_then(|v| v.as_str())
            .and_then(|s| Uuid::parse_str(s).ok());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: &str, subject: &str, data: serde_json::Value) -> Envelope {
        Envelope::new(
            Uuid::now_v7(),
            "crm/permission",
            event_type,
            subject,
            chrono::Utc::now(),
            data,
        )
    }

    #[test]
    fn finds_the_user_an_event_is_about() {
        let id = Uuid::now_v7();
        assert_eq!(
            user_of(&event(
                "permission.user.status_changed",
                &id.to_string(),
                serde_json::json!({})
            )),
            Some(id)
        );
        assert_eq!(
            user_of(&event(
                "permission.session.revoked",
                "x",
                serde_json::json!({"user_id": id.to_string()})
            )),
            Some(id)
        );
        assert_eq!(
            user_of(&event(
                "customer.account.created",
                &id.to_string(),
                serde_json::json!({})
            )),
            None
        );
        assert_eq!(
            user_of(&event(
                "permission.login.failed",
                "alice",
                serde_json::json!({"user_id": null})
            )),
            None
        );
    }
}
