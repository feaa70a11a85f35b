//! Whether the user behind a valid token may still act (and, for `authz`, the newest
//! permission version): a token outlives a disabled account by
//! up to its lifetime, so the gateway asks.
//!
//! Each replica keeps `user id → (active?, time zone and language)` in memory, filled from the
//! permission service (`UserService.GetUser`, whose answer carries the user's *effective* time
//! zone and language: their own, else the organisation's) and forgotten after `ttl`. The time
//! zone and language travel with every call in the access context (see `authz`). To act within a
//! second rather than a TTL, every replica also listens to the permission service's events (its
//! own consumer group, from the newest offset: it only needs what happens from now on) and
//! forgets a user as soon as any `permission.user.*` or `permission.session.*` event about them
//! arrives — a status change, and equally a profile change (`permission.user.updated`) — and
//! forgets every user when the organisation's defaults change
//! (`permission.organisation.settings_updated`); the next request asks again.
//!
//! If the permission service cannot be asked, a known answer is kept for up to `stale_ttl`;
//! without one the request fails with 503, never silently in.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_access::{Locale, Preferences};
use crm_events::Envelope;
use crm_proto::permission as pb;
use crm_proto::permission::user_service_client::UserServiceClient;
use crm_settings::KafkaSettings;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::platform::error::Error;

/// What the gateway knows about a token's user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    /// Exists and is enabled.
    pub active: bool,
    /// Their effective time zone and language; `None` from a permission service that does not
    /// send them yet.
    pub preferences: Option<Preferences>,
}

impl Principal {
    const UNKNOWN: Principal = Principal {
        active: false,
        preferences: None,
    };

    fn from_user(user: &pb::User) -> Self {
        let time_zone = crm_access::preferences::parse_time_zone(&user.effective_time_zone);
        let locale = Locale::parse(&user.effective_locale);
        Principal {
            active: user.status == pb::UserStatus::Active as i32,
            preferences: time_zone
                .zip(locale)
                .map(|(time_zone, locale)| Preferences { time_zone, locale }),
        }
    }
}

#[derive(Clone)]
pub struct Principals {
    inner: Arc<Inner>,
}

struct Inner {
    /// Told the `permission_version` of every event, for the authorisation cache.
    versions: std::sync::OnceLock<super::authz::PermissionVersion>,
    /// Set once the event consumer has partitions: from then on, no change is missed.
    following: tokio::sync::watch::Sender<bool>,
    users: UserServiceClient<crate::upstream::permission::Channel>,
    entries: Mutex<HashMap<Uuid, (Principal, Instant)>>,
    ttl: Duration,
    stale_ttl: Duration,
}

impl Principals {
    pub fn new(channel: crate::upstream::permission::Channel, ttl: Duration) -> Self {
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
    pub fn with_versions(self, versions: super::authz::PermissionVersion) -> Self {
        let _ = self.inner.versions.set(versions);
        self
    }

    /// Whether `user` exists and is active.
    pub async fn is_active(&self, user: Uuid) -> Result<bool, Error> {
        Ok(self.principal(user).await?.active)
    }

    /// Whether `user` exists and is active, and their effective time zone and language: from
    /// memory while fresh, else asked of the permission service.
    pub async fn principal(&self, user: Uuid) -> Result<Principal, Error> {
        let known = self.inner.entries.lock().await.get(&user).copied();
        if let Some((principal, at)) = known
            && at.elapsed() < self.inner.ttl
        {
            return Ok(principal);
        }
        let request = crate::upstream::permission::request(pb::GetUserRequest {
            id: user.to_string(),
        });
        let answer = self.inner.users.clone().get_user(request).await;
        let principal = match answer {
            Ok(found) => Principal::from_user(found.get_ref()),
            Err(status) if status.code() == tonic::Code::NotFound => Principal::UNKNOWN,
            Err(status) => {
                return match known {
                    Some((principal, at)) if at.elapsed() < self.inner.stale_ttl => {
                        tracing::warn!(grpc_code = ?status.code(), "permission service unavailable; using the last known user status");
                        Ok(principal)
                    }
                    _ => Err(Error::from_status(status)),
                };
            }
        };
        self.inner
            .entries
            .lock()
            .await
            .insert(user, (principal, Instant::now()));
        Ok(principal)
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

    /// Forgets every user: the organisation's defaults, which any of them may follow, changed.
    pub async fn forget_all(&self) {
        self.inner.entries.lock().await.clear();
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
                    } else if concerns_everyone(&event) {
                        self.forget_all().await;
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

/// Whether an event changes what every user's entry holds: the organisation's default time zone
/// or language.
fn concerns_everyone(event: &Envelope) -> bool {
    event.event_type == "permission.organisation.settings_updated"
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
        // A profile change is about its user, like a status change.
        assert_eq!(
            user_of(&event(
                "permission.user.updated",
                &id.to_string(),
                serde_json::json!({"changes": {"time_zone": {"old": null, "new": "Europe/Berlin"}}})
            )),
            Some(id)
        );
        let defaults = event(
            "permission.organisation.settings_updated",
            "settings",
            serde_json::json!({}),
        );
        assert_eq!(user_of(&defaults), None);
        assert!(concerns_everyone(&defaults));
        assert!(!concerns_everyone(&event(
            "permission.user.updated",
            &id.to_string(),
            serde_json::json!({})
        )));
    }

    #[test]
    fn a_users_effective_time_zone_and_language_come_from_get_user() {
        let user = pb::User {
            status: pb::UserStatus::Active as i32,
            effective_time_zone: "Asia/Shanghai".into(),
            effective_locale: "zh-CN".into(),
            ..Default::default()
        };
        assert_eq!(
            Principal::from_user(&user),
            Principal {
                active: true,
                preferences: Some(Preferences {
                    time_zone: crm_access::Tz::Asia__Shanghai,
                    locale: Locale::ZhCn,
                }),
            }
        );
        // An older permission service says nothing: none, rather than a guess.
        let older = pb::User {
            status: pb::UserStatus::Disabled as i32,
            ..Default::default()
        };
        assert_eq!(Principal::from_user(&older), Principal::UNKNOWN);
    }
}
