//! A versioned read-through cache in Redis for single-record reads.
//!
//! Each entry is a hash `{v: version, d: json}` (an empty `d` is a tombstone for a deleted record).
//! Every write goes through one Lua script that stores the value only if its version is newer than
//! the cached one, so:
//! - a reader that loaded an old row from Postgres cannot overwrite a newer value that a writer
//!   stored after its commit (the classic read-through race);
//! - after a write made through the service, the cache holds that version or a newer one: no stale
//!   read.
//!
//! Redis is an optimisation, never a dependency: every call is bounded by `redis.timeout_ms`, and a
//! failure or timeout is logged and treated as a miss (reads) or skipped (writes). If storing a
//! write's new version fails, the entry is deleted instead; entries also expire (TTL) as a last
//! bound on staleness. See `docs/adr/0004-cache-invalidation.md`.

use std::sync::Arc;
use std::time::{Duration, Instant};

pub mod connect;

pub use connect::ConnectError;
use crm_settings::RedisSettings;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

const PUT_IF_NEWER: &str = r#"
local cur = redis.call('HGET', KEYS[1], 'v')
if (not cur) or tonumber(cur) < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'v', ARGV[1], 'd', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0
"#;

/// What the cache knows about a record.
#[derive(Debug, PartialEq)]
pub enum Cached<T> {
    Present(T),
    /// The record was deleted at this version.
    Deleted,
    Miss,
}

#[derive(Clone)]
pub struct VersionedCache {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    conn: Mutex<Option<ConnectionManager>>,
    last_attempt: Mutex<Option<Instant>>,
    prefix: String,
    ttl: Duration,
    timeout: Duration,
    script: redis::Script,
}

impl VersionedCache {
    /// Fails only on a configuration mistake (a bad URL, an unreadable TLS file), so it stops
    /// the start; with no Redis reachable the cache is simply a miss until it comes.
    pub fn new(
        settings: &RedisSettings,
        namespace: &str,
        ttl: Duration,
    ) -> Result<Self, ConnectError> {
        let client = connect::client(settings)?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                conn: Mutex::new(None),
                last_attempt: Mutex::new(None),
                prefix: format!("{}:{namespace}", settings.key_prefix),
                ttl,
                timeout: Duration::from_millis(settings.timeout_ms),
                script: redis::Script::new(PUT_IF_NEWER),
            }),
        })
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}:{kind}:{id}", self.inner.prefix)
    }

    /// A connection, or None while Redis is unreachable (reconnects at most once a second).
    async fn conn(&self) -> Option<ConnectionManager> {
        let client = &self.inner.client;
        if let Some(conn) = self.inner.conn.lock().await.as_ref() {
            return Some(conn.clone());
        }
        {
            let mut last = self.inner.last_attempt.lock().await;
            if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
                return None;
            }
            *last = Some(Instant::now());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.inner.timeout))
            .set_response_timeout(Some(self.inner.timeout))
            .set_number_of_retries(1);
        match tokio::time::timeout(
            self.inner.timeout * 2,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        {
            Ok(Ok(conn)) => {
                *self.inner.conn.lock().await = Some(conn.clone());
                Some(conn)
            }
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "redis unavailable; serving without cache");
                None
            }
            Err(_) => {
                tracing::warn!("redis connect timed out; serving without cache");
                None
            }
        }
    }

    async fn bounded<T>(&self, op: impl Future<Output = redis::RedisResult<T>>) -> Option<T> {
        match tokio::time::timeout(self.inner.timeout, op).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "redis command failed");
                None
            }
            Err(_) => {
                tracing::warn!("redis command timed out");
                None
            }
        }
    }

    pub async fn get<T: DeserializeOwned>(&self, kind: &str, id: &str) -> Cached<T> {
        let Some(mut conn) = self.conn().await else {
            return Cached::Miss;
        };
        let key = self.key(kind, id);
        let found: Option<(Option<i64>, Option<String>)> = self
            .bounded(
                redis::cmd("HMGET")
                    .arg(&key)
                    .arg("v")
                    .arg("d")
                    .query_async(&mut conn),
            )
            .await;
        match found {
            Some((Some(_), Some(d))) if d.is_empty() => Cached::Deleted,
            Some((Some(_), Some(d))) => match serde_json::from_str(&d) {
                Ok(value) => Cached::Present(value),
                Err(err) => {
                    // An entry from an older release with another shape: drop it.
                    tracing::warn!(error = %err, %key, "undecodable cache entry");
                    self.delete(kind, id).await;
                    Cached::Miss
                }
            },
            _ => Cached::Miss,
        }
    }

    /// Stores `value` (None: a deletion) at `version` unless a newer version is cached.
    pub async fn put<T: Serialize>(&self, kind: &str, id: &str, version: i64, value: Option<&T>) {
        let data = match value.map(serde_json::to_string).transpose() {
            Ok(d) => d.unwrap_or_default(),
            Err(err) => {
                tracing::error!(error = %err, "cache value not serialisable");
                return;
            }
        };
        let Some(mut conn) = self.conn().await else {
            return;
        };
        let key = self.key(kind, id);
        let ttl_ms = self.inner.ttl.as_millis() as u64;
        let stored: Option<i64> = self
            .bounded(
                self.inner
                    .script
                    .key(&key)
                    .arg(version)
                    .arg(data)
                    .arg(ttl_ms)
                    .invoke_async(&mut conn),
            )
            .await;
        if stored.is_none() {
            // We could not store the new version; make sure no older one survives.
            self.delete(kind, id).await;
        }
    }

    pub async fn delete(&self, kind: &str, id: &str) {
        let Some(mut conn) = self.conn().await else {
            return;
        };
        let key = self.key(kind, id);
        let _: Option<i64> = self
            .bounded(redis::cmd("DEL").arg(&key).query_async(&mut conn))
            .await;
    }
}
